//! What rustls' callbacks saw during one connection's handshake, for failure messages: the
//! server's certificate (subject, validity, names), the clock used to check it, and whether
//! the server asked for a client certificate.
//!
//! The verifier and the client-certificate resolver are shared by every connection of a
//! [`TlsClient`](super::TlsClient) (rustls only resumes a session made with the very same
//! objects), so they cannot hold per-connection state. rustls calls them synchronously from
//! `process_new_packets`, which [`TlsStream`](super::TlsStream) calls on its own thread; the
//! stream lends its [`Observations`] to a thread-local slot for the duration of that call
//! ([`observing`]), and the callbacks write there. No lock, no cross-talk between
//! connections on other threads.

use super::x509::CertSummary;
use rustls::DigitallySignedStruct;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{Error, SignatureScheme};
use std::cell::RefCell;
use std::sync::Arc;

/// What one connection's handshake callbacks saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Observations {
    /// The server's end-entity certificate, as far as it could be read.
    pub server_cert: Option<CertSummary>,
    /// How many intermediate certificates the server sent.
    pub intermediates: usize,
    /// The time the certificate was checked against (seconds since the Unix epoch).
    pub checked_at: Option<i64>,
    /// The server sent a CertificateRequest.
    pub client_cert_requested: bool,
    /// The CA names the server said it accepts for client certificates.
    pub acceptable_issuers: Vec<String>,
    /// A client certificate was available to answer it.
    pub client_cert_offered: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Observations>> = const { RefCell::new(None) };
}

/// Run `f` with `obs` as this thread's current observations, then hand them back.
pub(crate) fn observing<R>(obs: &mut Observations, f: impl FnOnce() -> R) -> R {
    struct Restore<'a>(&'a mut Observations);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            if let Some(seen) = CURRENT.with(|c| c.borrow_mut().take()) {
                *self.0 = seen;
            }
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(std::mem::take(obs)));
    let _restore = Restore(obs);
    f()
}

fn record(f: impl FnOnce(&mut Observations)) {
    CURRENT.with(|c| {
        if let Some(obs) = c.borrow_mut().as_mut() {
            f(obs);
        }
    });
}

/// Wraps the real verifier (webpki, or the insecure one) and notes the server's certificate.
#[derive(Debug)]
pub(crate) struct ObservingVerifier {
    pub(crate) inner: Arc<dyn ServerCertVerifier>,
}

impl ServerCertVerifier for ObservingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        record(|o| {
            o.server_cert = CertSummary::from_der(end_entity);
            o.intermediates = intermediates.len();
            o.checked_at = i64::try_from(now.as_secs()).ok();
        });
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: accepts any certificate for any name. The handshake signatures are
/// still checked (so the peer holds the key of the certificate it sent), which proves
/// nothing about who the peer is.
#[derive(Debug)]
pub(crate) struct AcceptAnyCertificate {
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Answers a CertificateRequest with the configured client certificate (or none) and notes
/// that the server asked.
pub(crate) struct ObservingResolver {
    pub(crate) key: Option<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ObservingResolver {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservingResolver")
            .field("has_client_certificate", &self.key.is_some())
            .finish()
    }
}

impl ResolvesClientCert for ObservingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let usable = self
            .key
            .as_ref()
            .filter(|k| k.key.choose_scheme(sigschemes).is_some());
        record(|o| {
            o.client_cert_requested = true;
            o.client_cert_offered = usable.is_some();
            o.acceptable_issuers = root_hint_subjects
                .iter()
                .take(8)
                .map(|dn| super::x509::format_distinguished_name(dn))
                .collect();
        });
        usable.cloned()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}
