//! Loading certificates and keys from PEM files, with errors that say which file and what to
//! do about it. PEM parsing is `rustls-pki-types`' `PemObject` (rustls-pemfile is archived).

use super::x509::CertSummary;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};

/// A TLS setting or file that cannot be used. Exit code: usage (2), like a recipe that does
/// not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfigError {
    /// A file named by the settings cannot be used.
    File {
        /// What the file is for: `CA`, `client certificate`, `client key`…
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Settings that contradict each other or cannot work.
    Settings(String),
}

impl TlsConfigError {
    /// The exit code class: [`Exit::Usage`](crate::exit::Exit::Usage).
    pub fn kind(&self) -> crate::exit::Exit {
        crate::exit::Exit::Usage
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::File { what, path, reason } => {
                write!(f, "TLS {what} file {}: {reason}", path.display())
            }
            TlsConfigError::Settings(msg) => write!(f, "TLS settings: {msg}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

fn file_error(what: &'static str, path: &Path, reason: impl Into<String>) -> TlsConfigError {
    TlsConfigError::File {
        what,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Read a PEM file, refusing what is clearly not PEM with a hint.
fn read_pem(what: &'static str, path: &Path, convert: &str) -> Result<Vec<u8>, TlsConfigError> {
    let bytes =
        std::fs::read(path).map_err(|e| file_error(what, path, format!("cannot read it: {e}")))?;
    if bytes.first() == Some(&0x30) && !contains(&bytes, b"-----BEGIN ") {
        return Err(file_error(
            what,
            path,
            format!(
                "it holds DER (binary), not PEM text: convert it with `{}`",
                convert.replace("FILE", &path.display().to_string())
            ),
        ));
    }
    Ok(bytes)
}

fn pem_error(e: pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a PEM block is not closed (missing `-----END {}-----`): the file is cut short",
            String::from_utf8_lossy(&end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "malformed PEM line {:?}",
            crate::util::escape::shorten_bytes(&line, 80)
        ),
        pem::Error::Base64Decode(e) => format!("a PEM block is not valid base64 ({e})"),
        pem::Error::SectionTooLarge => "a PEM block is larger than 256 MB".into(),
        other => other.to_string(),
    }
}

/// Every certificate of a PEM file, in order; an error when there is none.
pub(super) fn load_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let bytes = read_pem(
        what,
        path,
        "openssl x509 -inform der -in FILE -out FILE.pem",
    )?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, pem_error(e)))?;
    if certs.is_empty() {
        let hint = if contains(&bytes, b"PRIVATE KEY-----") {
            " (it holds a private key: name the certificate file here)"
        } else {
            ""
        };
        return Err(file_error(
            what,
            path,
            format!("no certificate in it (expected `-----BEGIN CERTIFICATE-----` blocks){hint}"),
        ));
    }
    for (i, cert) in certs.iter().enumerate() {
        if CertSummary::from_der(cert).is_none() {
            return Err(file_error(
                what,
                path,
                format!(
                    "certificate {} of {} is not a readable X.509 certificate",
                    i + 1,
                    certs.len()
                ),
            ));
        }
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, SEC1 or PKCS#1 RSA).
pub(super) fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    const WHAT: &str = "client key";
    let bytes = read_pem(
        WHAT,
        path,
        "openssl pkey -inform der -in FILE -out FILE.pem",
    )?;
    if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(&bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(file_error(
            WHAT,
            path,
            format!(
                "encrypted PEM keys are not supported: decrypt it with `openssl pkey -in {0} -out {0}.plain.pem` and keep the result private",
                path.display()
            ),
        ));
    }
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let hint = if contains(&bytes, b"-----BEGIN CERTIFICATE-----") {
                " (it holds a certificate: name the key file here)"
            } else {
                ""
            };
            Err(file_error(
                WHAT,
                path,
                format!(
                    "no private key in it (expected `-----BEGIN PRIVATE KEY-----`, `-----BEGIN EC PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----`){hint}"
                ),
            ))
        }
        Err(e) => Err(file_error(WHAT, path, pem_error(e))),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
