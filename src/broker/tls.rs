//! The embedded broker's TLS edge, for `sim7k run --emulate` with TLS recipes: a CA made at
//! start (ECDSA P-256, with rcgen on ring), whose PEM is written to a private temporary
//! directory ([`TlsAcceptor::ca_file`]) for the run to trust, and a TLS edge that
//! presents, for whatever name the client sends in SNI, a certificate for that name
//! issued by the CA (made on first use and kept). Without SNI it presents one for
//! `localhost`, `127.0.0.1` and `::1`. TLS 1.2 and 1.3, server authentication only;
//! sessions resume (tickets and ids kept in memory).
//!
//! Each accepted connection is a [`TlsServerStream`] served by the same reader and writer
//! threads as a plain TCP one ([`super::ByteStream`]).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};

use super::tcp::ByteStream;

/// Names kept with a certificate each (a client sending random SNI names cannot grow it
/// without bound).
const MAX_NAMES: usize = 64;

/// The CA and the certificates it issued, by server name.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("broker TLS certificates: {e}"))
}

impl Authority {
    fn new() -> io::Result<Authority> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(tls_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "sim7k embedded broker test CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "sim7k --emulate");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(tls_error)?;
        Ok(Authority {
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            issued: Mutex::new(HashMap::new()),
        })
    }

    fn ca_pem(&self) -> String {
        let mut b64 = String::new();
        base64_lines(self.ca_der.as_ref(), &mut b64);
        format!("-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n")
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<CertifiedKey>>> {
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The certificate for `name` (`None`: no SNI), issued now on first use.
    fn certificate(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let key_name = name.unwrap_or("").to_ascii_lowercase();
        if let Some(c) = self.lock().get(&key_name) {
            return Some(Arc::clone(c));
        }
        let names: Vec<String> = match name {
            Some(n) => vec![n.to_string()],
            None => vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).ok()?;
        let mut params = CertificateParams::new(names.clone()).ok()?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).ok()?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = self.provider.key_provider.load_private_key(der).ok()?;
        let certified = Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signing,
        ));
        let mut issued = self.lock();
        if issued.len() < MAX_NAMES {
            issued.insert(key_name, Arc::clone(&certified));
        }
        Some(certified)
    }
}

/// Standard base64 in 64-character lines (PEM bodies).
fn base64_lines(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut line = 0;
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            let c = if i <= chunk.len() {
                char::from(ALPHABET[((n >> shift) & 63) as usize])
            } else {
                '='
            };
            out.push(c);
            line += 1;
            if line == 64 {
                out.push('\n');
                line = 0;
            }
        }
    }
    if line > 0 {
        out.push('\n');
    }
}

#[derive(Debug)]
struct SniResolver(Arc<Authority>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.certificate(client_hello.server_name())
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("sim7k-broker-ca-{}-{n}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The TLS side of the embedded broker: its CA, where the CA's PEM is, and the server
/// configuration every TLS connection uses. The broker serves TLS and plain MQTT on one
/// port: a connection whose first byte is a TLS handshake record (`0x16`; an MQTT CONNECT
/// starts with `0x10`) is served through TLS.
#[derive(Debug)]
pub(super) struct TlsAcceptor {
    config: Arc<ServerConfig>,
    ca_file: PathBuf,
    _dir: TempDir,
}

impl TlsAcceptor {
    /// A CA made now, its PEM written to a private temporary directory (removed on drop).
    pub(super) fn new() -> io::Result<TlsAcceptor> {
        let authority = Arc::new(Authority::new()?);
        let dir = TempDir::new()?;
        let ca_file = dir.0.join("ca.pem");
        std::fs::write(&ca_file, authority.ca_pem())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver(authority)));
        Ok(TlsAcceptor {
            config: Arc::new(config),
            ca_file,
            _dir: dir,
        })
    }

    /// The CA certificate (PEM) clients must trust; removed when the broker stops.
    pub(super) fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Wrap an accepted TCP connection (the handshake happens as bytes flow).
    pub(super) fn wrap(&self, tcp: TcpStream) -> io::Result<TlsServerStream> {
        let conn = ServerConnection::new(Arc::clone(&self.config)).map_err(tls_error)?;
        Ok(TlsServerStream {
            tcp,
            conn: Arc::new(Mutex::new(conn)),
            raw: vec![0; 16 * 1024],
        })
    }
}

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
pub(super) const TLS_HANDSHAKE: u8 = 0x16;

/// A TLS server connection over TCP, shareable between the reader and writer threads of
/// one broker connection: each handle has the socket (cloned) and the same rustls state.
pub(super) struct TlsServerStream {
    tcp: TcpStream,
    conn: Arc<Mutex<ServerConnection>>,
    raw: Vec<u8>,
}

impl TlsServerStream {
    fn lock(&self) -> MutexGuard<'_, ServerConnection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Write what rustls has for the peer.
    fn flush_tls(conn: &mut ServerConnection, mut tcp: &TcpStream) -> io::Result<()> {
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        tcp.flush()
    }
}

impl Read for TlsServerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = self.lock();
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            let n = self.tcp.read(&mut self.raw)?;
            if n == 0 {
                return Ok(0);
            }
            let mut conn = self.lock();
            let mut data = self.raw.get(..n).unwrap_or_default();
            while !data.is_empty() {
                if conn.read_tls(&mut data)? == 0 {
                    break;
                }
                if let Err(e) = conn.process_new_packets() {
                    // Tell the client why (the alert), then give up.
                    let _ = Self::flush_tls(&mut conn, &self.tcp);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            Self::flush_tls(&mut conn, &self.tcp)?;
        }
    }
}

impl Write for TlsServerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut conn = self.lock();
        conn.writer().write_all(buf)?;
        Self::flush_tls(&mut conn, &self.tcp)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut conn = self.lock();
        Self::flush_tls(&mut conn, &self.tcp)
    }
}

impl ByteStream for TlsServerStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(TlsServerStream {
            tcp: self.tcp.try_clone()?,
            conn: Arc::clone(&self.conn),
            raw: vec![0; 16 * 1024],
        })
    }

    fn shutdown(&self) {
        {
            let mut conn = self.lock();
            conn.send_close_notify();
            let _ = Self::flush_tls(&mut conn, &self.tcp);
        }
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An MQTT 3.1.1 CONNECT (clean session, keep-alive 60, empty client id).
    const CONNECT: [u8; 14] = [
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ];

    #[test]
    fn one_port_serves_tls_and_plain_mqtt() {
        use rustls::pki_types::pem::PemObject;
        let broker = crate::broker::EmbeddedBroker::start_tls(Default::default()).unwrap();
        let ca = broker.ca_file().unwrap().to_path_buf();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("broker.example").unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut tcp = TcpStream::connect(broker.addr()).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        tls.write_all(&CONNECT).unwrap();
        let mut connack = [0u8; 4];
        tls.read_exact(&mut connack).unwrap();
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
        // The certificate was issued for the name sent in SNI.
        let leaf = conn.peer_certificates().unwrap()[0].clone();
        let leaf = crate::tls::CertSummary::from_der(leaf.as_ref()).unwrap();
        assert_eq!(leaf.dns_names, vec!["broker.example".to_string()]);

        let mut plain = TcpStream::connect(broker.addr()).unwrap();
        plain.write_all(&CONNECT).unwrap();
        let mut connack = [0u8; 4];
        plain.read_exact(&mut connack).unwrap();
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);

        drop(broker);
        assert!(!ca.exists(), "the CA file goes with the broker");
    }

    #[test]
    fn base64_matches_the_standard() {
        let mut s = String::new();
        base64_lines(b"Man", &mut s);
        assert_eq!(s, "TWFu\n");
        let mut s = String::new();
        base64_lines(b"Ma", &mut s);
        assert_eq!(s, "TWE=\n");
        let mut s = String::new();
        base64_lines(b"M", &mut s);
        assert_eq!(s, "TQ==\n");
        let mut s = String::new();
        base64_lines(&[0u8; 48], &mut s);
        assert_eq!(s, format!("{}\n", "A".repeat(64)));
    }

    #[test]
    fn a_certificate_per_sni_name_issued_by_the_ca() {
        let a = Authority::new().unwrap();
        let c = a.certificate(Some("broker.example")).unwrap();
        let leaf = crate::tls::CertSummary::from_der(c.cert[0].as_ref()).unwrap();
        assert_eq!(leaf.dns_names, vec!["broker.example".to_string()]);
        assert!(leaf.issuer.contains("sim7k embedded broker test CA"));
        assert!(Arc::ptr_eq(
            &c,
            &a.certificate(Some("BROKER.example")).unwrap()
        ));
        let none = a.certificate(None).unwrap();
        let leaf = crate::tls::CertSummary::from_der(none.cert[0].as_ref()).unwrap();
        assert!(leaf.dns_names.contains(&"localhost".to_string()));
    }
}
