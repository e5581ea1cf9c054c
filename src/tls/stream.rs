//! [`TlsStream`]: one TLS client connection, sans-IO. The caller moves bytes: ciphertext it
//! received goes into [`receive`](TlsStream::receive), ciphertext to send comes out of
//! [`take_send`](TlsStream::take_send) in chunks of the size the socket takes, plaintext goes
//! in with [`write`](TlsStream::write) and comes out of [`read`](TlsStream::read). The stream
//! reads no clock (rustls gets the time from the client's `TimeProvider`), opens no socket,
//! sleeps never.

use super::TlsVersion;
use super::client::ClientContext;
use super::failure::{FailureContext, TlsFailure, classify};
use super::observe::{Observations, observing};
use super::records::{RecordScanner, ScanEvent, TlsRecord};
use super::x509::CertSummary;
use crate::util::escape::escape_text;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion};
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsState {
    /// The handshake is running (plaintext written now is sent when it completes).
    Handshaking,
    /// Application data flows both ways.
    Open,
    /// This side sent `close_notify`; nothing more can be written.
    Closing,
    /// The peer sent `close_notify`, or the socket closed.
    Closed,
    /// A failure ended the connection ([`TlsStream::failure`]).
    Failed,
}

/// How the socket's close looked from TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// The peer had sent `close_notify`: everything it sent arrived.
    Clean,
    /// The socket closed without the peer's `close_notify`: the last data may be cut short
    /// (MQTT brokers often close like this after a DISCONNECT; the MQTT layer decides).
    Truncated,
}

/// What the handshake agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The protocol version.
    pub version: TlsVersion,
    /// The cipher suite, by its IANA name (`TLS13_AES_128_GCM_SHA256`).
    pub cipher_suite: String,
    /// The key-exchange group (`X25519`, `secp256r1`), when one was used.
    pub key_exchange: Option<String>,
    /// The ALPN protocol the server chose.
    pub alpn: Option<String>,
    /// The session was resumed (no certificate exchanged).
    pub resumed: bool,
    /// The server asked for another key share first (a HelloRetryRequest round trip).
    pub hello_retry: bool,
    /// The server's certificate (on a resumed session, the one verified when the session
    /// was made).
    pub server_cert: Option<CertSummary>,
    /// The server's certificate was verified (false only with `insecure_skip_verify`).
    pub verified: bool,
    /// A client certificate was sent (mutual TLS).
    pub client_cert_sent: bool,
    /// Ciphertext bytes sent until the handshake completed (client Finished included).
    pub handshake_sent: u64,
    /// Ciphertext bytes received until the handshake completed.
    pub handshake_received: u64,
}

impl fmt::Display for SessionInfo {
    /// `TLS 1.3, TLS13_AES_256_GCM_SHA384, X25519, resumed, ALPN x-amzn-mqtt-ca, handshake 636 B sent + 538 B received`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.version, self.cipher_suite)?;
        if let Some(kx) = &self.key_exchange {
            write!(f, ", {kx}")?;
        }
        f.write_str(if self.resumed {
            ", resumed"
        } else {
            ", full handshake"
        })?;
        if self.hello_retry {
            f.write_str(" after HelloRetryRequest")?;
        }
        if let Some(alpn) = &self.alpn {
            write!(f, ", ALPN {alpn}")?;
        }
        if self.client_cert_sent {
            f.write_str(", client certificate sent")?;
        }
        if !self.verified {
            f.write_str(", SERVER NOT VERIFIED")?;
        }
        write!(
            f,
            ", handshake {} B sent + {} B received",
            self.handshake_sent, self.handshake_received
        )
    }
}

/// What a transcript can show, in order, when observation is on
/// ([`TlsStream::set_observe`]). Never holds a key or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvent {
    /// A record queued to send.
    RecordSent(TlsRecord),
    /// A record received whole.
    RecordReceived(TlsRecord),
    /// Received bytes that are not TLS.
    NotTls(ScanEvent),
    /// Plaintext the caller wrote (before encryption).
    PlaintextSent(Vec<u8>),
    /// Plaintext decrypted from the peer.
    PlaintextReceived(Vec<u8>),
    /// The handshake completed.
    HandshakeComplete(SessionInfo),
    /// This side queued `close_notify`.
    CloseNotifySent,
    /// The peer's `close_notify` arrived.
    CloseNotifyReceived,
    /// The connection failed.
    Failed(TlsFailure),
}

/// The record scanners always run (so they stay aligned with the streams); events are kept
/// only while recording.
#[derive(Debug, Default)]
struct Observer {
    recording: bool,
    events: Vec<TlsEvent>,
    /// Records sent before recording started (the ClientHello), kept until it starts.
    unreported_sent: Vec<TlsRecord>,
    sent: RecordScanner,
    received: RecordScanner,
}

impl Observer {
    fn push(&mut self, event: TlsEvent) {
        if self.recording {
            self.events.push(event);
        }
    }
}

/// One TLS client connection over bytes the caller moves.
pub struct TlsStream {
    conn: ClientConnection,
    server: String,
    context: Arc<ClientContext>,
    seen: Observations,
    out: Vec<u8>,
    out_pos: usize,
    plain_in: Vec<u8>,
    state: TlsState,
    failure: Option<TlsFailure>,
    sent: u64,
    received: u64,
    session: Option<SessionInfo>,
    first_bytes: Vec<u8>,
    observer: Observer,
}

impl fmt::Debug for TlsStream {
    // Never the connection itself: it holds the session keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("server", &self.server)
            .field("state", &self.state)
            .field("session", &self.session)
            .field("sent", &self.sent)
            .field("received", &self.received)
            .field("pending_send", &self.pending_send())
            .field("pending_read", &self.plain_in.len())
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        context: Arc<ClientContext>,
    ) -> Result<TlsStream, TlsFailure> {
        let server = escape_text(&name.to_str());
        let mut conn = ClientConnection::new(config, name).map_err(|e| TlsFailure::Protocol {
            server: server.clone(),
            detail: escape_text(&e.to_string()),
        })?;
        // The caller decides how much to hold: rustls must never refuse plaintext.
        conn.set_buffer_limit(None);
        let mut stream = TlsStream {
            conn,
            server,
            context,
            seen: Observations::default(),
            out: Vec::new(),
            out_pos: 0,
            plain_in: Vec::new(),
            state: TlsState::Handshaking,
            failure: None,
            sent: 0,
            received: 0,
            session: None,
            first_bytes: Vec::new(),
            observer: Observer::default(),
        };
        stream.drain_out();
        Ok(stream)
    }

    /// Record [`TlsEvent`]s (records both ways, plaintext both ways, handshake, close) for a
    /// transcript; take them with [`take_events`](Self::take_events). Off by default (it
    /// copies the plaintext). Turn it on right after [`TlsClient::connect`](super::TlsClient::connect)
    /// to see the ClientHello: records queued before are reported when turned on.
    pub fn set_observe(&mut self, on: bool) {
        self.observer.recording = on;
        if on {
            let queued = std::mem::take(&mut self.observer.unreported_sent);
            self.observer
                .events
                .extend(queued.into_iter().map(TlsEvent::RecordSent));
        }
    }

    /// The events recorded since the last call.
    pub fn take_events(&mut self) -> Vec<TlsEvent> {
        std::mem::take(&mut self.observer.events)
    }

    /// The server name this connection checks (escaped for display).
    pub fn server_name(&self) -> &str {
        &self.server
    }

    /// Where the connection is.
    pub fn state(&self) -> TlsState {
        self.state
    }

    /// True until the handshake completes (or fails).
    pub fn is_handshaking(&self) -> bool {
        self.state == TlsState::Handshaking
    }

    /// The failure that ended the connection, if any.
    pub fn failure(&self) -> Option<&TlsFailure> {
        self.failure.as_ref()
    }

    /// What the handshake agreed on, once it completed.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// Ciphertext bytes queued so far (sent or waiting) and received so far.
    pub fn byte_counts(&self) -> (u64, u64) {
        (self.sent, self.received)
    }

    /// The server asked for a client certificate during the handshake, none was sent, and
    /// nothing came from the server since: under TLS 1.3 a server that requires one checks
    /// it only after the handshake and then closes the connection (its alert may never be
    /// read). A driver that sees the connection close names that cause with this.
    pub fn missing_client_cert(&self) -> Option<TlsFailure> {
        let session = self.session.as_ref()?;
        (self.seen.client_cert_requested
            && !self.seen.client_cert_offered
            && self.received <= session.handshake_received)
            .then(|| TlsFailure::ClientCertRequired {
                server: self.server.clone(),
                acceptable_issuers: self.seen.acceptable_issuers.clone(),
                alert: None,
            })
    }

    /// Ciphertext waiting to be sent.
    pub fn pending_send(&self) -> usize {
        self.out.len().saturating_sub(self.out_pos)
    }

    /// The next at most `max` bytes of ciphertext to send (one `AT+CIPSEND` each), or `None`
    /// when nothing waits. Even after a failure: the alert that tells the server why must
    /// still go out.
    pub fn take_send(&mut self, max: usize) -> Option<Vec<u8>> {
        let pending = self.out.get(self.out_pos..)?;
        if pending.is_empty() || max == 0 {
            return None;
        }
        let n = pending.len().min(max);
        let chunk = pending.get(..n)?.to_vec();
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        Some(chunk)
    }

    /// All ciphertext waiting to be sent.
    pub fn take_all_send(&mut self) -> Vec<u8> {
        let all = self.out.split_off(self.out_pos.min(self.out.len()));
        self.out.clear();
        self.out_pos = 0;
        all
    }

    /// Plaintext received so far (taken: the next call returns only newer bytes).
    pub fn read(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.plain_in)
    }

    /// Queue plaintext (an MQTT packet). Before the handshake completes it waits inside and
    /// goes out right after the client's Finished.
    pub fn write(&mut self, plaintext: &[u8]) -> Result<(), TlsFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        if matches!(self.state, TlsState::Closing | TlsState::Closed) {
            return Err(TlsFailure::Closed {
                server: self.server.clone(),
            });
        }
        if let Err(e) = self.conn.writer().write_all(plaintext) {
            let failure = TlsFailure::Protocol {
                server: self.server.clone(),
                detail: format!("cannot queue plaintext: {e}"),
            };
            return Err(self.fail(failure));
        }
        if self.observer.recording {
            self.observer
                .push(TlsEvent::PlaintextSent(plaintext.to_vec()));
        }
        self.drain_out();
        Ok(())
    }

    /// Feed ciphertext received from the socket, split anywhere. Decrypted plaintext waits
    /// for [`read`](Self::read); handshake answers wait for [`take_send`](Self::take_send).
    /// On failure, send what [`take_send`](Self::take_send) still gives (the alert), then
    /// close the socket.
    pub fn receive(&mut self, mut data: &[u8]) -> Result<(), TlsFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        self.received += data.len() as u64;
        if self.state == TlsState::Handshaking && self.first_bytes.len() < 16 {
            let take = (16 - self.first_bytes.len()).min(data.len());
            self.first_bytes.extend_from_slice(&data[..take]);
        }
        for ev in self.observer.received.push(data) {
            self.observer.push(match ev {
                ScanEvent::Record(r) => TlsEvent::RecordReceived(r),
                other => TlsEvent::NotTls(other),
            });
        }
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                // rustls takes nothing after the peer's close_notify: drop the rest.
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    let failure = TlsFailure::Protocol {
                        server: self.server.clone(),
                        detail: format!("cannot take received bytes: {e}"),
                    };
                    return Err(self.fail(failure));
                }
            }
            self.process()?;
        }
        Ok(())
    }

    /// Tell the stream the socket closed (`CLOSED` from the modem, EOF). During the
    /// handshake this is a failure; after it, says whether the peer closed cleanly.
    pub fn socket_closed(&mut self) -> Result<CloseKind, TlsFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let mut eof: &[u8] = &[];
        let _ = self.conn.read_tls(&mut eof);
        self.process()?;
        if self.state == TlsState::Handshaking {
            let failure = if self.observer.received.is_broken() {
                TlsFailure::NotTls {
                    server: self.server.clone(),
                    first_bytes: self.first_bytes.clone(),
                }
            } else {
                TlsFailure::ClosedMidHandshake {
                    server: self.server.clone(),
                    received: self.received,
                }
            };
            return Err(self.fail(failure));
        }
        let clean = self.state == TlsState::Closed;
        self.state = TlsState::Closed;
        Ok(if clean {
            CloseKind::Clean
        } else {
            CloseKind::Truncated
        })
    }

    /// Queue `close_notify` (send it before closing the socket: without it a broker logs an
    /// unexpected EOF). Nothing more can be written afterwards.
    pub fn close(&mut self) {
        if self.failure.is_some() || matches!(self.state, TlsState::Closing) {
            return;
        }
        self.conn.send_close_notify();
        self.observer.push(TlsEvent::CloseNotifySent);
        if self.state != TlsState::Closed {
            self.state = TlsState::Closing;
        }
        self.drain_out();
    }

    fn process(&mut self) -> Result<(), TlsFailure> {
        let conn = &mut self.conn;
        let result = observing(&mut self.seen, || conn.process_new_packets());
        match result {
            Ok(io) => {
                let n = io.plaintext_bytes_to_read();
                if n > 0 {
                    let start = self.plain_in.len();
                    self.plain_in.resize(start + n, 0);
                    let got = self
                        .conn
                        .reader()
                        .read(self.plain_in.get_mut(start..).unwrap_or_default())
                        .unwrap_or(0);
                    self.plain_in.truncate(start + got);
                    if self.observer.recording {
                        let fresh = self.plain_in.get(start..).unwrap_or_default().to_vec();
                        self.observer.push(TlsEvent::PlaintextReceived(fresh));
                    }
                }
                if io.peer_has_closed() && self.state != TlsState::Closed {
                    self.observer.push(TlsEvent::CloseNotifyReceived);
                    if self.state != TlsState::Handshaking {
                        self.state = TlsState::Closed;
                    }
                }
                self.drain_out();
                if self.state == TlsState::Handshaking && !self.conn.is_handshaking() {
                    self.handshake_done();
                }
                Ok(())
            }
            Err(e) => {
                self.drain_out();
                let failure = classify(
                    &e,
                    &FailureContext {
                        server: &self.server,
                        client: &self.context,
                        seen: &self.seen,
                        handshaking: self.state == TlsState::Handshaking,
                        first_bytes: &self.first_bytes,
                        not_tls: self.state == TlsState::Handshaking
                            && self.observer.received.is_broken(),
                        received: self.received,
                    },
                );
                Err(self.fail(failure))
            }
        }
    }

    fn handshake_done(&mut self) {
        let version = match self.conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => TlsVersion::V1_2,
            _ => TlsVersion::V1_3,
        };
        let kind = self.conn.handshake_kind();
        let info = SessionInfo {
            version,
            cipher_suite: self
                .conn
                .negotiated_cipher_suite()
                .map(|s| {
                    let suite = s.suite();
                    suite
                        .as_str()
                        .map_or_else(|| format!("{suite:?}"), str::to_string)
                })
                .unwrap_or_default(),
            key_exchange: self.conn.negotiated_key_exchange_group().map(|g| {
                let name = g.name();
                name.as_str()
                    .map_or_else(|| format!("{name:?}"), str::to_string)
            }),
            alpn: self
                .conn
                .alpn_protocol()
                .map(crate::util::escape::escape_bytes),
            resumed: kind == Some(HandshakeKind::Resumed),
            hello_retry: kind == Some(HandshakeKind::FullWithHelloRetryRequest),
            server_cert: self
                .conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| CertSummary::from_der(c)),
            verified: self.context.verified,
            client_cert_sent: self.seen.client_cert_requested && self.seen.client_cert_offered,
            handshake_sent: self.sent,
            handshake_received: self.received,
        };
        self.state = if self.conn.is_handshaking() {
            TlsState::Handshaking
        } else {
            TlsState::Open
        };
        self.observer
            .push(TlsEvent::HandshakeComplete(info.clone()));
        self.session = Some(info);
    }

    /// Move rustls' pending ciphertext into the send queue.
    fn drain_out(&mut self) {
        let before = self.out.len();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let fresh = self.out.get(before..).unwrap_or_default();
        self.sent += fresh.len() as u64;
        for ev in self.observer.sent.push(fresh) {
            if let ScanEvent::Record(r) = ev {
                if self.observer.recording {
                    self.observer.events.push(TlsEvent::RecordSent(r));
                } else if self.observer.unreported_sent.len() < 16 {
                    self.observer.unreported_sent.push(r);
                }
            }
        }
    }

    fn fail(&mut self, failure: TlsFailure) -> TlsFailure {
        self.state = TlsState::Failed;
        self.observer.push(TlsEvent::Failed(failure.clone()));
        self.failure = Some(failure.clone());
        failure
    }
}
