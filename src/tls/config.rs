//! [`TlsConfig`]: everything a recipe can say about TLS, and [`TlsConfig::build`], which
//! loads the files once and gives the [`TlsClient`] every connection is made from.

use super::client::{ClientContext, TlsClient};
use super::keylog::KeyLogFile;
use super::load::{TlsConfigError, load_certificates, load_private_key};
use super::observe::{AcceptAnyCertificate, ObservingResolver, ObservingVerifier};
use super::session::SessionStore;
use super::x509::CertSummary;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::{Resumption, Tls12Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, RootCertStore};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// A TLS protocol version sim7k speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    V1_2,
    /// TLS 1.3 (RFC 8446).
    V1_3,
}

impl TlsVersion {
    /// `"1.2"` or `"1.3"`.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }

    fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS {}", self.name())
    }
}

impl FromStr for TlsVersion {
    type Err = String;

    /// Accepts `1.2`, `1.3`, `tls1.2`, `TLSv1.3`, `TLS 1.2`…
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace([' ', '_'], "");
        let t = t.trim_start_matches("tls").trim_start_matches('v');
        match t {
            "1.2" | "12" => Ok(TlsVersion::V1_2),
            "1.3" | "13" => Ok(TlsVersion::V1_3),
            _ => Err(format!(
                "unknown TLS version '{}' (sim7k speaks 1.2 and 1.3; 1.0 and 1.1 are obsolete and refused)",
                crate::util::escape::shorten(s, 40)
            )),
        }
    }
}

/// Everything a recipe can say about TLS on a connection. `Default` is: verify the server
/// against the bundled web roots (or fail if the `web-roots` feature is off), SNI from the
/// host, no ALPN, no client certificate, TLS 1.2 and 1.3, in-process resumption, no cache
/// file, no key log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) to trust (one or many). `None`: the bundled Mozilla
    /// roots (feature `web-roots`).
    pub ca_file: Option<PathBuf>,
    /// The name to send in SNI and to check the certificate against, instead of the broker
    /// host (for a broker reached by IP address, or through a tunnel).
    pub server_name: Option<String>,
    /// Send SNI (default on). An IP address never goes in SNI, whatever this says.
    pub sni: bool,
    /// ALPN protocols to offer, in order (`x-amzn-mqtt-ca` for AWS IoT on port 443).
    pub alpn: Vec<String>,
    /// PEM file of the client certificate chain (leaf first) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client's private key (PKCS#8, SEC1 or PKCS#1 RSA, unencrypted).
    pub client_key: Option<PathBuf>,
    /// Lowest version to accept.
    pub min_version: TlsVersion,
    /// Highest version to offer.
    pub max_version: TlsVersion,
    /// Resume sessions between connections of the same [`TlsClient`] (default on).
    pub resumption: bool,
    /// File keeping, across runs, what can be kept: each server's key-exchange group (see
    /// [`session`](super::session) for why tickets cannot be).
    pub session_cache: Option<PathBuf>,
    /// Append the session secrets to this file in `SSLKEYLOGFILE` format (Wireshark). Off by
    /// default; whoever holds the file can decrypt the sessions.
    pub key_log: Option<PathBuf>,
    /// Accept any server certificate. For a lab only: anyone on the path can then read and
    /// change the traffic. [`TlsClient::warnings`] says so loudly.
    pub insecure_skip_verify: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_file: None,
            server_name: None,
            sni: true,
            alpn: Vec::new(),
            client_cert: None,
            client_key: None,
            min_version: TlsVersion::V1_2,
            max_version: TlsVersion::V1_3,
            resumption: true,
            session_cache: None,
            key_log: None,
            insecure_skip_verify: false,
        }
    }
}

impl TlsConfig {
    /// Load the files and build the client, checking certificates against the system clock.
    pub fn build(&self) -> Result<TlsClient, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let time: Arc<dyn TimeProvider> = Arc::new(rustls::time_provider::DefaultTimeProvider);
        self.build_with(provider, time)
    }

    /// [`build`](Self::build) with the clock certificates are checked against (tests, an
    /// emulator under a virtual clock, a device whose host clock is known to be wrong).
    pub fn build_with_time(
        &self,
        time: Arc<dyn TimeProvider>,
    ) -> Result<TlsClient, TlsConfigError> {
        self.build_with(Arc::new(rustls::crypto::ring::default_provider()), time)
    }

    fn build_with(
        &self,
        provider: Arc<CryptoProvider>,
        time: Arc<dyn TimeProvider>,
    ) -> Result<TlsClient, TlsConfigError> {
        if self.min_version > self.max_version {
            return Err(TlsConfigError::Settings(format!(
                "the lowest version ({}) is above the highest ({})",
                self.min_version, self.max_version
            )));
        }
        let versions: Vec<&'static rustls::SupportedProtocolVersion> =
            [TlsVersion::V1_2, TlsVersion::V1_3]
                .into_iter()
                .filter(|v| (self.min_version..=self.max_version).contains(v))
                .map(TlsVersion::rustls)
                .collect();
        if let Some(name) = &self.server_name {
            super::client::parse_server_name(name)
                .map_err(|reason| TlsConfigError::Settings(format!("server name: {reason}")))?;
        }
        if self.alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
            return Err(TlsConfigError::Settings(
                "an ALPN protocol name must be 1 to 255 bytes long".into(),
            ));
        }
        let mut warnings = Vec::new();

        let (verifier, trust): (Arc<dyn ServerCertVerifier>, String) = if self.insecure_skip_verify
        {
            warnings.push(
                "TLS certificate verification is OFF (insecure_skip_verify): anyone on the network path can read and change this traffic; never use it outside a lab"
                    .to_string(),
            );
            (
                Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }),
                "nothing (verification off)".to_string(),
            )
        } else {
            let (roots, trust) = self.roots()?;
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsConfigError::Settings(format!("certificate verifier: {e}")))?;
            (verifier, trust)
        };
        let verifier = Arc::new(ObservingVerifier { inner: verifier });

        let (key, identity) = self.client_identity(&provider)?;
        let resolver = Arc::new(ObservingResolver { key });

        let store = Arc::new(SessionStore::new(
            self.resumption,
            self.session_cache.as_deref(),
        )?);
        let mut config = ClientConfig::builder_with_details(provider, time)
            .with_protocol_versions(&versions)
            .map_err(|e| TlsConfigError::Settings(format!("versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(resolver);
        config.alpn_protocols = self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.enable_sni = self.sni;
        config.resumption = if self.resumption {
            Resumption::store(store.clone())
        } else {
            Resumption::store(store.clone()).tls12_resumption(Tls12Resumption::Disabled)
        };
        if let Some(path) = &self.key_log {
            let log = KeyLogFile::open(path)?;
            warnings.push(format!(
                "TLS session secrets are being written to {} (key log): whoever holds that file can decrypt these sessions; delete it after debugging",
                path.display()
            ));
            config.key_log = Arc::new(log);
        }
        Ok(TlsClient::new(
            Arc::new(config),
            store,
            ClientContext {
                trust,
                identity,
                alpn: self.alpn.clone(),
                min_version: self.min_version,
                max_version: self.max_version,
                server_name: self.server_name.clone(),
                verified: !self.insecure_skip_verify,
            },
            warnings,
        ))
    }

    fn roots(&self) -> Result<(RootCertStore, String), TlsConfigError> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = load_certificates("CA", path)?;
                let mut names = Vec::new();
                for (i, cert) in certs.iter().enumerate() {
                    let summary = CertSummary::from_der(cert);
                    roots.add(cert.clone()).map_err(|e| TlsConfigError::File {
                        what: "CA",
                        path: path.clone(),
                        reason: format!(
                            "certificate {} of {} cannot be a trust anchor: {e}",
                            i + 1,
                            certs.len()
                        ),
                    })?;
                    if let Some(s) = summary {
                        names.push(format!("\"{}\"", s.subject));
                    }
                }
                let trust = format!(
                    "CA file {} ({} certificate{}: {})",
                    path.display(),
                    certs.len(),
                    if certs.len() == 1 { "" } else { "s" },
                    crate::util::escape::shorten(&names.join(", "), 300)
                );
                Ok((roots, trust))
            }
            None => web_roots(roots),
        }
    }

    fn client_identity(
        &self,
        provider: &CryptoProvider,
    ) -> Result<(Option<Arc<CertifiedKey>>, Option<CertSummary>), TlsConfigError> {
        let (cert_path, key_path) = match (&self.client_cert, &self.client_key) {
            (None, None) => return Ok((None, None)),
            (Some(c), Some(k)) => (c, k),
            (Some(_), None) => {
                return Err(TlsConfigError::Settings(
                    "a client certificate needs its private key too (client_key)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(TlsConfigError::Settings(
                    "a client key needs its certificate too (client_cert)".into(),
                ));
            }
        };
        let chain = load_certificates("client certificate", cert_path)?;
        let key = load_private_key(key_path)?;
        let leaf = chain.first().and_then(|c| CertSummary::from_der(c));
        let signing = provider.key_provider.load_private_key(key).map_err(|e| {
            TlsConfigError::File {
                what: "client key",
                path: key_path.clone(),
                reason: format!(
                    "the key cannot be used ({e}): sim7k signs with RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519 keys"
                ),
            }
        })?;
        let certified = CertifiedKey::new(chain, signing);
        if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
            certified.keys_match()
        {
            return Err(TlsConfigError::File {
                what: "client key",
                path: key_path.clone(),
                reason: format!(
                    "the key does not match the certificate in {} ({}): use the key the certificate was issued for",
                    cert_path.display(),
                    leaf.as_ref()
                        .map_or("unreadable certificate".to_string(), |l| format!(
                            "subject \"{}\"",
                            l.subject
                        ))
                ),
            });
        }
        Ok((Some(Arc::new(certified)), leaf))
    }
}

#[cfg(feature = "web-roots")]
fn web_roots(mut roots: RootCertStore) -> Result<(RootCertStore, String), TlsConfigError> {
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let trust = format!(
        "the bundled Mozilla roots ({} CAs, webpki-roots)",
        roots.len()
    );
    Ok((roots, trust))
}

#[cfg(not(feature = "web-roots"))]
fn web_roots(_roots: RootCertStore) -> Result<(RootCertStore, String), TlsConfigError> {
    Err(TlsConfigError::Settings(
        "no CA file given and this build has no bundled web roots (feature `web-roots`): set the CA file"
            .into(),
    ))
}
