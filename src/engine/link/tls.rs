//! TLS in the stream's [`Transform`] slot: sim7k's own TLS client ([`crate::tls`]) between
//! the MQTT session and the socket. Plaintext written is encrypted into records, records
//! received are decrypted, and what TLS itself must send (the handshake, alerts,
//! `close_notify`) waits in [`Transform::poll_transmit`] for the engine to send it.
//!
//! Every record both ways, the plaintext both ways (decoded as MQTT packets when it is
//! MQTT) and the handshake's outcome are kept as [`TlsTrace`]s for the transcript. None
//! holds a key or a session secret; a CONNECT's password shows as its length only.

use std::fmt;
use std::sync::Arc;

use super::stream::{Transform, TransformError};
use crate::mqtt::{Packet, Protocol, StreamDecoder};
use crate::tls::{CloseKind, SessionInfo, TlsEvent, TlsFailure, TlsRecord, TlsStream};

/// Characters of a payload shown in a decrypted-packet line.
const SHOWN: usize = 60;
/// Largest plaintext packet decoded for the transcript (bigger ones are named by size).
const MAX_SHOWN_PACKET: usize = 1 << 24;

/// What the transcript shows of TLS, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrace {
    /// A record sent (`sent`) or received, as what it is: type, length, and for clear-text
    /// handshake records the messages in it.
    Record {
        /// Sent by sim7k.
        sent: bool,
        /// The record.
        record: TlsRecord,
    },
    /// Plaintext sent or received, one line per MQTT packet (or a byte count when it is
    /// not MQTT).
    Plain {
        /// Sent by sim7k.
        sent: bool,
        /// The packet's summary.
        text: String,
    },
    /// The handshake completed.
    Handshake(SessionInfo),
    /// `close_notify` sent (`sent`) or received.
    CloseNotify {
        /// Sent by sim7k.
        sent: bool,
    },
    /// The socket closed under the TLS connection.
    SocketClosed(CloseKind),
    /// The connection failed.
    Failed(TlsFailure),
    /// Bytes received that are not TLS.
    NotTls(String),
}

impl fmt::Display for TlsTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = |sent: bool| if sent { ">" } else { "<" };
        match self {
            TlsTrace::Record { sent, record } => write!(f, "tls {} {record}", arrow(*sent)),
            TlsTrace::Plain { sent, text } => write!(f, "tls {} decrypted: {text}", arrow(*sent)),
            TlsTrace::Handshake(info) => write!(f, "tls: handshake complete: {info}"),
            TlsTrace::CloseNotify { sent: true } => f.write_str("tls > close_notify"),
            TlsTrace::CloseNotify { sent: false } => f.write_str("tls < close_notify"),
            TlsTrace::SocketClosed(CloseKind::Clean) => {
                f.write_str("tls: the socket closed after the server's close_notify")
            }
            TlsTrace::SocketClosed(CloseKind::Truncated) => {
                f.write_str("tls: the socket closed without the server's close_notify")
            }
            TlsTrace::Failed(e) => write!(f, "tls: failed ({}): {e}", e.name()),
            TlsTrace::NotTls(what) => write!(f, "tls < not TLS: {what}"),
        }
    }
}

/// Decodes one direction's plaintext into MQTT packet summaries.
#[derive(Debug)]
struct PlainView {
    decoder: StreamDecoder,
    /// The plaintext is not MQTT (or not decodable): only byte counts from now on.
    opaque: bool,
}

impl PlainView {
    fn new() -> PlainView {
        PlainView {
            decoder: StreamDecoder::new(Protocol::V311).with_max_packet_size(MAX_SHOWN_PACKET),
            opaque: false,
        }
    }

    fn lines(&mut self, bytes: &[u8], protocol: Option<Protocol>) -> Vec<String> {
        if self.opaque {
            return vec![format!("{} B (not MQTT)", bytes.len())];
        }
        if let Some(p) = protocol {
            self.decoder.set_protocol(p);
        }
        self.decoder.push(bytes);
        let mut out = Vec::new();
        loop {
            match self.decoder.next_packet() {
                Ok(Some(p)) => out.push(show(&p, self.decoder.protocol())),
                Ok(None) => break,
                Err(_) => {
                    self.opaque = true;
                    out.push(format!("{} B (not MQTT)", bytes.len()));
                    break;
                }
            }
        }
        out
    }
}

fn show(p: &Packet, protocol: Protocol) -> String {
    crate::util::escape::escape_text(&p.summary(protocol, Some(SHOWN)))
}

/// sim7k's TLS client in the stream slot.
pub struct TlsTransform {
    stream: TlsStream,
    traces: Vec<TlsTrace>,
    out_view: PlainView,
    in_view: PlainView,
    /// Largest chunk for the bytes TLS sends itself (`None`: what the modem reports).
    chunk: Option<usize>,
    /// The byte stream under TLS broke (a send the modem refused, pushed bytes that could
    /// not be framed): why.
    broken: Option<String>,
    /// The server's `close_notify` was traced.
    peer_closed: bool,
}

impl fmt::Debug for TlsTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransform")
            .field("stream", &self.stream)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl TlsTransform {
    /// Over a new connection (its ClientHello queued).
    pub fn new(mut stream: TlsStream, chunk: Option<usize>) -> TlsTransform {
        stream.set_observe(true);
        let mut t = TlsTransform {
            stream,
            traces: Vec::new(),
            out_view: PlainView::new(),
            in_view: PlainView::new(),
            chunk,
            broken: None,
            peer_closed: false,
        };
        t.collect();
        t
    }

    /// The TLS connection.
    pub fn stream(&self) -> &TlsStream {
        &self.stream
    }

    /// Largest chunk for TLS's own bytes, when the recipe set one.
    pub fn chunk(&self) -> Option<usize> {
        self.chunk
    }

    /// The byte stream under TLS broke: bytes were lost or refused, so no later record
    /// can be trusted to line up.
    pub fn set_broken(&mut self, why: String) {
        self.broken.get_or_insert(why);
    }

    /// Why the byte stream under TLS broke, if it did.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Bytes TLS waits to send.
    pub fn pending(&self) -> usize {
        self.stream.pending_send()
    }

    /// The socket closed (nothing more will be received): a failure during the handshake.
    pub fn socket_closed(&mut self) -> Result<CloseKind, TlsFailure> {
        let r = self.stream.socket_closed();
        self.collect();
        if let Ok(kind) = r {
            self.traces.push(TlsTrace::SocketClosed(kind));
        }
        r
    }

    /// Queue `close_notify` (nothing more can be written).
    pub fn close(&mut self) {
        self.stream.close();
        self.collect();
    }

    /// Take the traces recorded since the last call.
    pub fn take_traces(&mut self) -> Vec<TlsTrace> {
        std::mem::take(&mut self.traces)
    }

    /// Turn the stream's events into traces.
    fn collect(&mut self) {
        for ev in self.stream.take_events() {
            match ev {
                TlsEvent::RecordSent(record) => {
                    self.traces.push(TlsTrace::Record { sent: true, record })
                }
                TlsEvent::RecordReceived(record) => self.traces.push(TlsTrace::Record {
                    sent: false,
                    record,
                }),
                TlsEvent::NotTls(ev) => self.traces.push(TlsTrace::NotTls(ev.to_string())),
                TlsEvent::PlaintextSent(bytes) => {
                    for text in self.out_view.lines(&bytes, None) {
                        self.traces.push(TlsTrace::Plain { sent: true, text });
                    }
                }
                TlsEvent::PlaintextReceived(bytes) => {
                    let protocol =
                        (!self.out_view.opaque).then(|| self.out_view.decoder.protocol());
                    for text in self.in_view.lines(&bytes, protocol) {
                        self.traces.push(TlsTrace::Plain { sent: false, text });
                    }
                }
                TlsEvent::HandshakeComplete(info) => self.traces.push(TlsTrace::Handshake(info)),
                TlsEvent::CloseNotifySent => self.traces.push(TlsTrace::CloseNotify { sent: true }),
                TlsEvent::CloseNotifyReceived => {
                    self.peer_closed = true;
                    self.traces.push(TlsTrace::CloseNotify { sent: false })
                }
                TlsEvent::Failed(f) => self.traces.push(TlsTrace::Failed(f)),
            }
        }
    }
}

impl Transform for TlsTransform {
    fn name(&self) -> &'static str {
        "TLS"
    }

    fn seal(&mut self, plain: Arc<[u8]>) -> Result<Arc<[u8]>, TransformError> {
        let r = self.stream.write(&plain);
        self.collect();
        r.map_err(TransformError::Tls)?;
        Ok(Arc::from(self.stream.take_all_send()))
    }

    fn open(&mut self, wire: Vec<u8>) -> Result<Vec<u8>, TransformError> {
        let r = self.stream.receive(&wire);
        self.collect();
        r.map_err(TransformError::Tls)?;
        Ok(self.stream.read())
    }

    fn poll_transmit(&mut self) -> Option<Arc<[u8]>> {
        let bytes = self.stream.take_all_send();
        (!bytes.is_empty()).then(|| Arc::from(bytes))
    }

    fn tls(&mut self) -> Option<&mut TlsTransform> {
        Some(self)
    }

    fn tls_ref(&self) -> Option<&TlsTransform> {
        Some(self)
    }
}
