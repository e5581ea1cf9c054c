//! TLS on the host: sim7k speaks TLS itself (rustls 0.23, ring provider) and the modem
//! carries only TCP bytes (`AT+CIPSEND`, `AT+CIPRXGET`, `+IPD`, raw push). MQTT over TLS then
//! works on every module and firmware, whatever the modem's own SSL stack (`AT+CSSLCFG`,
//! `AT+CASSLCFG`, `AT+SMSSL`) can or cannot do: TLS 1.3, SNI, ALPN, any CA or chain size.
//!
//! # Plugging it in (the stream `Transform` slot)
//!
//! The core is sans-IO: no socket, no thread, no sleep, no clock read inside a connection.
//!
//! 1. Once per run (at recipe load): [`TlsConfig`] → [`TlsConfig::build`] → [`TlsClient`].
//!    All files are read here; a bad file is a [`TlsConfigError`] (exit 2) naming the file and
//!    the fix. Show [`TlsClient::warnings`] (verification off, key log on) before connecting.
//!    Keep the client for the whole run: sessions resume only between its connections.
//! 2. When the socket opens (`CONNECT OK`): [`TlsClient::connect`]`(broker_host)` →
//!    [`TlsStream`]. Its ClientHello is queued at once.
//! 3. Whenever the link may send: [`TlsStream::take_send`]`(max)` gives the next ≤ `max`
//!    bytes (the `AT+CIPSEND?` size, 1460 on most networks) until `None`.
//! 4. Every received chunk, however split (a record over many `+CIPRXGET` reads, a header
//!    cut in two, one byte at a time): [`TlsStream::receive`]. Then send again (step 3: the
//!    handshake answers), then [`TlsStream::read`] for the decrypted plaintext (MQTT bytes).
//! 5. Plaintext out (an MQTT packet): [`TlsStream::write`], then step 3. Writing before the
//!    handshake has completed is fine: the bytes wait and go right after the client Finished.
//! 6. Closing: [`TlsStream::close`] queues `close_notify`; send it (step 3) before
//!    `AT+CIPCLOSE`/`AT+CIPSHUT` (mosquitto logs "unexpected eof" otherwise). When the modem
//!    reports the socket closed: [`TlsStream::socket_closed`] (a failure mid-handshake; after
//!    it, [`CloseKind`] tells whether the peer's `close_notify` came first).
//! 7. On any [`TlsFailure`] (exit 1): still send what `take_send` gives (the alert telling the
//!    server why), then close the socket. The failure sticks: later calls return it again.
//! 8. At the end of the run: [`TlsClient::save_session_cache`] when a cache file is set.
//!
//! [`TlsStream::is_handshaking`] / [`TlsStream::session`] tell the MQTT layer when the
//! session is up and what was agreed ([`SessionInfo`]: version, suite, group, ALPN,
//! resumed or not, HelloRetryRequest or not, the server certificate, handshake bytes).
//!
//! # Transcripts
//!
//! [`TlsStream::set_observe`] records [`TlsEvent`]s in order: each TLS record sent and
//! received as what it is ([`TlsRecord`]: `handshake ClientHello, 512 B`,
//! `application_data (encrypted), 53 B`, `alert fatal unknown_ca`), the plaintext written
//! and decrypted (for the transcript's MQTT view, to be redacted like any MQTT bytes), the
//! handshake's outcome and the closes. [`RecordScanner`] does the record view alone for any
//! byte stream. No key or session secret is ever in an event, a `Debug` or a `Display`.
//! [`TlsConfig::key_log`] writes an `SSLKEYLOGFILE` for Wireshark (owner-only file, off by
//! default, announced in the warnings); it is the only file the core writes while a
//! connection runs.
//!
//! # Time
//!
//! Certificates are checked against rustls' `TimeProvider`: [`TlsConfig::build`] uses the
//! system clock (rustls' `DefaultTimeProvider`), [`TlsConfig::build_with_time`] takes any
//! other (tests, an emulator's virtual clock, a host whose clock is known wrong). The
//! stream never asks for the time itself; rustls asks the provider while it verifies the
//! certificate and stores tickets.
//!
//! # Resumption
//!
//! Within a run, every connection of one [`TlsClient`] resumes (TLS 1.3 tickets, TLS 1.2
//! session ids and tickets): a reconnect after `+PDP: DEACT`, the devices of a fleet that
//! share one client. Across runs only the key-exchange group is kept (the session cache
//! file): rustls 0.23 does not let a client serialise its session values; see [`session`].
//!
//! # Supported
//!
//! TLS 1.2 and 1.3 (bounds settable); AES-GCM and ChaCha20-Poly1305 suites with ECDHE
//! (X25519, P-256, P-384); RSA, ECDSA and Ed25519 certificates; a CA file (PEM, one or many
//! certificates) or the bundled Mozilla roots (feature `web-roots`, default on; webpki-roots
//! is licensed CDLA-Permissive-2.0); SNI from the host or an override (never for an IP
//! address), or off; ALPN (`x-amzn-mqtt-ca` for AWS IoT on 443); mutual TLS with a client
//! chain and a PKCS#8, SEC1 or PKCS#1 RSA key (unencrypted PEM); `insecure_skip_verify`.
//!
//! # Not supported (yet)
//!
//! * Certificate or public-key pinning (a CA file is the narrowest trust today).
//! * Pre-shared keys (TLS-PSK): rustls has no client PSK support.
//! * Hardware-backed keys (PKCS#11, TPM, secure elements): rustls' `SigningKey` trait would
//!   take them; no backend is wired.
//! * Encrypted PEM keys (decrypt with `openssl pkey`), PKCS#12 files, DER files.
//! * CRL and OCSP revocation checks; TLS 1.0/1.1; CBC and CCM suites; certificate
//!   compression (RFC 8879, which would shrink handshakes on the air).
//! * Session tickets that survive the process (see [`session`]).

mod client;
mod config;
mod failure;
mod keylog;
mod load;
mod observe;
pub mod records;
pub mod session;
mod stream;
pub mod x509;

pub use client::TlsClient;
pub use config::{TlsConfig, TlsVersion};
pub use failure::TlsFailure;
pub use load::TlsConfigError;
pub use records::{RecordScanner, ScanEvent, TlsRecord};
pub use stream::{CloseKind, SessionInfo, TlsEvent, TlsState, TlsStream};
pub use x509::CertSummary;
