//! An in-memory rustls server and a pump that moves bytes between it and a `TlsStream` in
//! modem-sized pieces: sends cut at `chunk` bytes, receives fed in `reads` sizes (cycled),
//! so records split anywhere.

use super::Issued;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion};
use sim7k::tls::{TlsFailure, TlsStream};
use std::io::{Read, Write};
use std::sync::Arc;

/// What the in-memory server does.
#[derive(Clone)]
pub(crate) struct ServerOpts {
    /// Versions it accepts.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// Require a client certificate issued by this CA (PEM).
    pub client_ca: Option<String>,
    /// ALPN protocols it speaks.
    pub alpn: Vec<Vec<u8>>,
    /// Only the P-256 key exchange (forces a HelloRetryRequest on a first X25519 share).
    pub p256_only: bool,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            client_ca: None,
            alpn: Vec::new(),
            p256_only: false,
        }
    }
}

/// A server config for `cert`.
pub(crate) fn server_config(cert: &Issued, opts: &ServerOpts) -> Arc<ServerConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if opts.p256_only {
        provider.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&opts.versions)
        .expect("versions");
    let chain = vec![CertificateDer::from(cert.der.clone())];
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("server key");
    let builder = match &opts.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.expect("CA PEM")).expect("CA");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).expect("server cert");
    config.alpn_protocols = opts.alpn.clone();
    Arc::new(config)
}

/// The server side of an in-memory connection.
pub(crate) struct MemServer {
    /// The rustls connection.
    pub conn: ServerConnection,
    /// Plaintext it received.
    pub plain_in: Vec<u8>,
    /// Its error, if it failed.
    pub error: Option<rustls::Error>,
    /// It received the client's close_notify.
    pub got_close_notify: bool,
    /// Ciphertext bytes it received and sent.
    pub received: usize,
    /// Ciphertext bytes it sent.
    pub sent: usize,
}

impl MemServer {
    /// A fresh server connection.
    pub(crate) fn new(config: &Arc<ServerConfig>) -> MemServer {
        MemServer {
            conn: ServerConnection::new(config.clone()).expect("server connection"),
            plain_in: Vec::new(),
            error: None,
            got_close_notify: false,
            received: 0,
            sent: 0,
        }
    }

    /// Ciphertext from the client.
    pub(crate) fn take_in(&mut self, mut data: &[u8]) {
        self.received += data.len();
        while !data.is_empty() && self.error.is_none() {
            match self.conn.read_tls(&mut data) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            match self.conn.process_new_packets() {
                Ok(io) => {
                    let n = io.plaintext_bytes_to_read();
                    let start = self.plain_in.len();
                    self.plain_in.resize(start + n, 0);
                    self.conn
                        .reader()
                        .read_exact(&mut self.plain_in[start..])
                        .expect("server plaintext");
                    if io.peer_has_closed() {
                        self.got_close_notify = true;
                    }
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Ciphertext for the client.
    pub(crate) fn take_out(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).unwrap_or(0) == 0 {
                break;
            }
        }
        self.sent += out.len();
        out
    }

    /// Queue plaintext to the client.
    pub(crate) fn write(&mut self, data: &[u8]) {
        self.conn.writer().write_all(data).expect("server write");
    }
}

/// How bytes move: sends of at most `chunk` bytes; receives in pieces of `reads` (cycled).
#[derive(Debug, Clone)]
pub(crate) struct Feed {
    /// Largest send (`AT+CIPSEND` size).
    pub chunk: usize,
    /// Receive piece sizes, cycled (`[1]` drips byte by byte).
    pub reads: Vec<usize>,
}

impl Feed {
    /// 1460-byte sends and reads, as the SIM7000 does.
    pub(crate) fn modem() -> Feed {
        Feed {
            chunk: 1460,
            reads: vec![1460],
        }
    }

    /// Sends of 1460 bytes, receives dripping one byte at a time.
    pub(crate) fn drip() -> Feed {
        Feed {
            chunk: 1460,
            reads: vec![1],
        }
    }

    /// Odd sizes that split record headers: 1, 4, 5, 3, 7, 1460, 2.
    pub(crate) fn split() -> Feed {
        Feed {
            chunk: 97,
            reads: vec![1, 4, 5, 3, 7, 1460, 2],
        }
    }
}

/// Move bytes both ways until nothing moves. The client's failure ends the pump.
pub(crate) fn pump(
    client: &mut TlsStream,
    server: &mut MemServer,
    feed: &Feed,
) -> Result<(), TlsFailure> {
    let mut turn = 0usize;
    loop {
        let mut moved = false;
        while let Some(chunk) = client.take_send(feed.chunk) {
            assert!(
                chunk.len() <= feed.chunk,
                "a send larger than the chunk size"
            );
            server.take_in(&chunk);
            moved = true;
        }
        let back = server.take_out();
        let mut rest = &back[..];
        while !rest.is_empty() {
            let n = feed.reads[turn % feed.reads.len()].min(rest.len());
            turn += 1;
            let (piece, tail) = rest.split_at(n);
            rest = tail;
            moved = true;
            if let Err(f) = client.receive(piece) {
                // Deliver the client's alert before reporting.
                while let Some(chunk) = client.take_send(feed.chunk) {
                    server.take_in(&chunk);
                }
                return Err(f);
            }
        }
        if !moved {
            return Ok(());
        }
    }
}
