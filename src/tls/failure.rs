//! [`TlsFailure`]: why a TLS connection failed, named, with what to check. Every variant is a
//! step failure (exit 1). Classification uses rustls' error plus what the handshake callbacks
//! saw ([`Observations`]): the server's certificate for certificate errors, and whether the
//! server asked for a client certificate for the alerts that usually mean "no or wrong
//! client certificate".

use super::client::ClientContext;
use super::observe::Observations;
use super::records::alert_name;
use super::x509::{CertSummary, format_unix};
use crate::util::escape::escape_text;
use crate::util::hex::hex;
use rustls::{AlertDescription, CertificateError, Error, PeerIncompatible};
use std::fmt;

/// A TLS connection failure a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate does not chain to a trusted CA.
    UnknownCa {
        /// The server name checked.
        server: String,
        /// The server's certificate.
        cert: Option<Box<CertSummary>>,
        /// What the client trusts.
        trust: String,
    },
    /// The server's certificate has expired.
    Expired {
        /// The server name checked.
        server: String,
        /// The server's certificate.
        cert: Option<Box<CertSummary>>,
        /// The time it was checked against.
        now: Option<i64>,
    },
    /// The server's certificate is not valid yet.
    NotYetValid {
        /// The server name checked.
        server: String,
        /// The server's certificate.
        cert: Option<Box<CertSummary>>,
        /// The time it was checked against.
        now: Option<i64>,
    },
    /// The server's certificate is not valid for the name connected to.
    HostnameMismatch {
        /// The name checked (the broker host, or the configured server name).
        server: String,
        /// The names the certificate is valid for.
        presented: Vec<String>,
        /// The server's certificate.
        cert: Option<Box<CertSummary>>,
    },
    /// Any other reason the server's certificate was refused.
    BadCertificate {
        /// The server name checked.
        server: String,
        /// What rustls found.
        reason: String,
        /// The server's certificate.
        cert: Option<Box<CertSummary>>,
    },
    /// The server wants a client certificate and none is configured.
    ClientCertRequired {
        /// The server.
        server: String,
        /// The CA names the server accepts, when it said.
        acceptable_issuers: Vec<String>,
        /// The alert it sent, if any.
        alert: Option<u8>,
    },
    /// The server refused the client certificate that was sent.
    ClientCertRejected {
        /// The server.
        server: String,
        /// The alert it sent.
        alert: u8,
        /// The client certificate.
        identity: Option<Box<CertSummary>>,
    },
    /// No protocol version in common.
    VersionMismatch {
        /// The server.
        server: String,
        /// What sim7k offered: `TLS 1.2 to 1.3`.
        offered: String,
        /// What happened.
        detail: String,
    },
    /// No cipher suite, key-exchange group or signature scheme in common.
    NoCommonAlgorithms {
        /// The server.
        server: String,
        /// What happened.
        detail: String,
    },
    /// The server does not know the name sent in SNI.
    UnknownServerName {
        /// The name sent.
        server: String,
    },
    /// The server speaks none of the offered ALPN protocols.
    AlpnRefused {
        /// The server.
        server: String,
        /// The protocols offered.
        offered: Vec<String>,
    },
    /// The server ended the connection with an alert not covered above.
    Alert {
        /// The server.
        server: String,
        /// The alert description code.
        alert: u8,
        /// Whether the handshake was still running.
        during_handshake: bool,
    },
    /// The socket closed before the handshake finished.
    ClosedMidHandshake {
        /// The server.
        server: String,
        /// Bytes received from the server before the close.
        received: u64,
    },
    /// The server answered with bytes that are not TLS.
    NotTls {
        /// The server.
        server: String,
        /// Its first bytes.
        first_bytes: Vec<u8>,
    },
    /// Another protocol error (a peer that breaks the rules, corrupted bytes).
    Protocol {
        /// The server.
        server: String,
        /// What rustls found.
        detail: String,
    },
    /// The host (or configured server name) cannot be used as a TLS server name.
    ServerName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Plaintext written after the connection was closed.
    Closed {
        /// The server.
        server: String,
    },
}

impl TlsFailure {
    /// Every TLS failure fails the step: [`Exit::StepFailed`](crate::exit::Exit::StepFailed).
    pub fn kind(&self) -> crate::exit::Exit {
        crate::exit::Exit::StepFailed
    }

    /// A short stable name for records and tests: `unknown-ca`, `expired`…
    pub fn name(&self) -> &'static str {
        match self {
            TlsFailure::UnknownCa { .. } => "unknown-ca",
            TlsFailure::Expired { .. } => "expired",
            TlsFailure::NotYetValid { .. } => "not-yet-valid",
            TlsFailure::HostnameMismatch { .. } => "hostname-mismatch",
            TlsFailure::BadCertificate { .. } => "bad-certificate",
            TlsFailure::ClientCertRequired { .. } => "client-certificate-required",
            TlsFailure::ClientCertRejected { .. } => "client-certificate-rejected",
            TlsFailure::VersionMismatch { .. } => "version-mismatch",
            TlsFailure::NoCommonAlgorithms { .. } => "no-common-algorithms",
            TlsFailure::UnknownServerName { .. } => "unknown-server-name",
            TlsFailure::AlpnRefused { .. } => "alpn-refused",
            TlsFailure::Alert { .. } => "alert",
            TlsFailure::ClosedMidHandshake { .. } => "closed-mid-handshake",
            TlsFailure::NotTls { .. } => "not-tls",
            TlsFailure::Protocol { .. } => "protocol",
            TlsFailure::ServerName { .. } => "server-name",
            TlsFailure::Closed { .. } => "closed",
        }
    }
}

fn alert_text(code: u8) -> String {
    match alert_name(code) {
        Some(name) => format!("{name} ({code})"),
        None => format!("alert {code}"),
    }
}

fn cert_text(cert: &Option<Box<CertSummary>>) -> String {
    match cert {
        Some(c) => format!(" The server's certificate: {c}."),
        None => String::new(),
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UnknownCa {
                server,
                cert,
                trust,
            } => write!(
                f,
                "TLS to {server}: the server's certificate is not signed by a CA sim7k trusts ({trust}).{} Check that the CA file holds the CA that issued the broker's certificate (the broker's operator publishes it; `openssl s_client -connect HOST:PORT -showcerts` shows the chain the broker sends).",
                cert_text(cert)
            ),
            TlsFailure::Expired { server, cert, now } => write!(
                f,
                "TLS to {server}: the server's certificate has expired{}.{} Check the host clock, then ask the broker's operator to renew the certificate.",
                now.map_or(String::new(), |t| format!(
                    " (checked at {})",
                    format_unix(t)
                )),
                cert_text(cert)
            ),
            TlsFailure::NotYetValid { server, cert, now } => write!(
                f,
                "TLS to {server}: the server's certificate is not valid yet{}.{} Check the host clock (a clock in the past makes every new certificate look not yet valid).",
                now.map_or(String::new(), |t| format!(
                    " (checked at {})",
                    format_unix(t)
                )),
                cert_text(cert)
            ),
            TlsFailure::HostnameMismatch {
                server,
                presented,
                cert,
            } => write!(
                f,
                "TLS to {server}: the server's certificate is not valid for the name {server}; it names {}.{} Check the broker host, or set the server name to one the certificate names.",
                if presented.is_empty() {
                    "no DNS name or address".to_string()
                } else {
                    crate::util::escape::shorten(&presented.join(", "), 300)
                },
                cert_text(cert)
            ),
            TlsFailure::BadCertificate {
                server,
                reason,
                cert,
            } => write!(
                f,
                "TLS to {server}: the server's certificate was refused: {reason}.{}",
                cert_text(cert)
            ),
            TlsFailure::ClientCertRequired {
                server,
                acceptable_issuers,
                alert,
            } => write!(
                f,
                "TLS to {server}: the server requires a client certificate and none is configured{}{}. Set the client certificate and key (mutual TLS).",
                alert.map_or(String::new(), |a| format!(
                    " (it answered {})",
                    alert_text(a)
                )),
                if acceptable_issuers.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; it accepts certificates issued by {}",
                        crate::util::escape::shorten(&acceptable_issuers.join("; "), 300)
                    )
                }
            ),
            TlsFailure::ClientCertRejected {
                server,
                alert,
                identity,
            } => write!(
                f,
                "TLS to {server}: the server refused the client certificate ({}).{} Check that it was issued by a CA the broker trusts, has not expired, and is registered/activated on the broker.",
                alert_text(*alert),
                identity
                    .as_ref()
                    .map_or(String::new(), |c| format!(" The client certificate: {c}."))
            ),
            TlsFailure::VersionMismatch {
                server,
                offered,
                detail,
            } => write!(
                f,
                "TLS to {server}: no TLS version in common ({detail}); sim7k offered {offered}. Check the version settings against what the broker accepts."
            ),
            TlsFailure::NoCommonAlgorithms { server, detail } => write!(
                f,
                "TLS to {server}: the handshake failed: {detail}. sim7k offers AES-GCM and ChaCha20-Poly1305 suites with ECDHE (X25519, P-256, P-384) and RSA/ECDSA/Ed25519 signatures; check the broker's cipher settings and versions."
            ),
            TlsFailure::UnknownServerName { server } => write!(
                f,
                "TLS to {server}: the server does not serve the name {server} (unrecognized_name alert to SNI). Check the broker host or set the server name the broker expects."
            ),
            TlsFailure::AlpnRefused { server, offered } => write!(
                f,
                "TLS to {server}: the server speaks none of the ALPN protocols offered ({}). Check the ALPN setting (AWS IoT on port 443 wants x-amzn-mqtt-ca; port 8883 needs none).",
                offered.join(", ")
            ),
            TlsFailure::Alert {
                server,
                alert,
                during_handshake,
            } => write!(
                f,
                "TLS to {server}: the server sent the alert {}{}.",
                alert_text(*alert),
                if *during_handshake {
                    " during the handshake"
                } else {
                    ""
                }
            ),
            TlsFailure::ClosedMidHandshake { server, received } => {
                if *received == 0 {
                    write!(
                        f,
                        "TLS to {server}: the connection closed before the server answered the TLS hello. Check the port is the broker's TLS port (usually 8883; 1883 is plaintext) and the broker log."
                    )
                } else {
                    write!(
                        f,
                        "TLS to {server}: the connection closed during the TLS handshake, after {received} bytes from the server. Check the broker log (it may have refused a client certificate or a setting without sending an alert)."
                    )
                }
            }
            TlsFailure::NotTls {
                server,
                first_bytes,
            } => write!(
                f,
                "TLS to {server}: the server answered with bytes that are not TLS ({}). Check the port is the broker's TLS port, not a plaintext one.",
                hex(first_bytes, " ")
            ),
            TlsFailure::Protocol { server, detail } => {
                write!(f, "TLS to {server}: protocol error: {detail}.")
            }
            TlsFailure::ServerName { name, reason } => {
                write!(f, "TLS server name {name}: {reason}")
            }
            TlsFailure::Closed { server } => write!(
                f,
                "TLS to {server}: the connection is closed; nothing more can be sent."
            ),
        }
    }
}

impl std::error::Error for TlsFailure {}

/// Everything classification looks at.
pub(crate) struct FailureContext<'a> {
    pub server: &'a str,
    pub client: &'a ClientContext,
    pub seen: &'a Observations,
    pub handshaking: bool,
    pub first_bytes: &'a [u8],
    pub not_tls: bool,
    pub received: u64,
}

/// Name a rustls error.
pub(crate) fn classify(e: &Error, cx: &FailureContext<'_>) -> TlsFailure {
    let server = escape_text(cx.server);
    let cert = cx.seen.server_cert.clone().map(Box::new);
    match e {
        _ if cx.not_tls => TlsFailure::NotTls {
            server,
            first_bytes: cx.first_bytes.to_vec(),
        },
        Error::InvalidCertificate(ce) => classify_certificate(ce, server, cert, cx),
        Error::AlertReceived(alert) => classify_alert(u8::from(*alert), server, cx),
        Error::PeerIncompatible(pi) => match pi {
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled => TlsFailure::VersionMismatch {
                server,
                offered: cx.client.versions(),
                detail: format!("the server chose a version sim7k did not offer: {pi:?}"),
            },
            PeerIncompatible::NoCipherSuitesInCommon
            | PeerIncompatible::NoKxGroupsInCommon
            | PeerIncompatible::NoSignatureSchemesInCommon
            | PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon => {
                TlsFailure::NoCommonAlgorithms {
                    server,
                    detail: format!("{pi:?}"),
                }
            }
            other => TlsFailure::Protocol {
                server,
                detail: format!("the server is incompatible: {other:?}"),
            },
        },
        Error::NoCertificatesPresented => TlsFailure::BadCertificate {
            server,
            reason: "the server sent no certificate".into(),
            cert,
        },
        Error::NoApplicationProtocol => TlsFailure::AlpnRefused {
            server,
            offered: cx.client.alpn.clone(),
        },
        other => TlsFailure::Protocol {
            server,
            detail: escape_text(&other.to_string()),
        },
    }
}

fn classify_certificate(
    ce: &CertificateError,
    server: String,
    cert: Option<Box<CertSummary>>,
    cx: &FailureContext<'_>,
) -> TlsFailure {
    let now = cx.seen.checked_at;
    match ce {
        CertificateError::UnknownIssuer => TlsFailure::UnknownCa {
            server,
            cert,
            trust: cx.client.trust.clone(),
        },
        CertificateError::Expired => TlsFailure::Expired { server, cert, now },
        CertificateError::ExpiredContext { time, .. } => TlsFailure::Expired {
            server,
            cert,
            now: i64::try_from(time.as_secs()).ok().or(now),
        },
        CertificateError::NotValidYet => TlsFailure::NotYetValid { server, cert, now },
        CertificateError::NotValidYetContext { time, .. } => TlsFailure::NotYetValid {
            server,
            cert,
            now: i64::try_from(time.as_secs()).ok().or(now),
        },
        CertificateError::NotValidForName => TlsFailure::HostnameMismatch {
            presented: cert.as_deref().map_or_else(Vec::new, presented_names),
            server,
            cert,
        },
        CertificateError::NotValidForNameContext { presented, .. } => {
            // rustls' own list is Debug text (`DnsName("x")`): prefer the certificate's.
            let presented = match &cert {
                Some(c) => presented_names(c),
                None => presented.iter().map(|p| escape_text(p)).collect(),
            };
            TlsFailure::HostnameMismatch {
                server,
                presented,
                cert,
            }
        }
        other => TlsFailure::BadCertificate {
            server,
            reason: escape_text(&rustls::Error::InvalidCertificate(other.clone()).to_string()),
            cert,
        },
    }
}

fn presented_names(c: &CertSummary) -> Vec<String> {
    let mut names: Vec<String> = c.dns_names.iter().map(|n| escape_text(n)).collect();
    names.extend(c.ip_addresses.iter().map(|ip| ip.to_string()));
    names
}

fn classify_alert(code: u8, server: String, cx: &FailureContext<'_>) -> TlsFailure {
    let asked_without_cert = cx.seen.client_cert_requested && !cx.seen.client_cert_offered;
    let sent_cert = cx.seen.client_cert_requested && cx.seen.client_cert_offered;
    match AlertDescription::from(code) {
        AlertDescription::CertificateRequired => TlsFailure::ClientCertRequired {
            server,
            acceptable_issuers: cx.seen.acceptable_issuers.clone(),
            alert: Some(code),
        },
        AlertDescription::HandshakeFailure | AlertDescription::BadCertificate
            if asked_without_cert =>
        {
            TlsFailure::ClientCertRequired {
                server,
                acceptable_issuers: cx.seen.acceptable_issuers.clone(),
                alert: Some(code),
            }
        }
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateRevoked
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnknownCA
        | AlertDescription::AccessDenied
        | AlertDescription::DecryptError
            if sent_cert =>
        {
            TlsFailure::ClientCertRejected {
                server,
                alert: code,
                identity: cx.client.identity.clone().map(Box::new),
            }
        }
        AlertDescription::ProtocolVersion => TlsFailure::VersionMismatch {
            server,
            offered: cx.client.versions(),
            detail: "the server answered protocol_version".into(),
        },
        AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity
            if cx.handshaking =>
        {
            TlsFailure::NoCommonAlgorithms {
                server,
                detail: format!(
                    "the server answered {}: usually no cipher suite, key-exchange group or signature algorithm in common",
                    alert_text(code)
                ),
            }
        }
        AlertDescription::UnrecognisedName => TlsFailure::UnknownServerName { server },
        AlertDescription::NoApplicationProtocol => TlsFailure::AlpnRefused {
            server,
            offered: cx.client.alpn.clone(),
        },
        AlertDescription::CloseNotify if cx.handshaking => TlsFailure::ClosedMidHandshake {
            server,
            received: cx.received,
        },
        _ => TlsFailure::Alert {
            server,
            alert: code,
            during_handshake: cx.handshaking,
        },
    }
}
