//! TLS records as what they are, for transcripts: a [`RecordScanner`] takes the bytes of one
//! direction as they cross the link (split anywhere: a 5-byte header over two reads, a record
//! over many `AT+CIPRXGET` chunks, many records in one chunk) and names each record when its
//! last byte has passed: content type, record version, length, and for the records still in
//! clear text the handshake messages or the alert inside.
//!
//! It never sees keys and never decrypts: encrypted records are shown as such with their
//! length. Bytes that cannot be TLS (a plaintext MQTT broker answering on the TLS port, an
//! HTTP server) are reported once as [`ScanEvent::NotTls`] and the scanner stops parsing.

use crate::util::hex::hex;
use std::fmt;

/// Largest record body a peer may send (2^14 plus the expansion TLS 1.2 allows).
const MAX_RECORD_BODY: usize = 16_384 + 2_048;
/// Bytes of each handshake message kept to describe it (header, version, random).
const HANDSHAKE_PEEK: usize = 38;
/// The ServerHello random that marks a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The content type of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// 20.
    ChangeCipherSpec,
    /// 21.
    Alert,
    /// 22.
    Handshake,
    /// 23: application data, and in TLS 1.3 every encrypted record.
    ApplicationData,
    /// 24.
    Heartbeat,
}

impl ContentType {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            24 => ContentType::Heartbeat,
            _ => return None,
        })
    }

    /// The RFC name: `handshake`, `application_data`…
    pub fn name(self) -> &'static str {
        match self {
            ContentType::ChangeCipherSpec => "change_cipher_spec",
            ContentType::Alert => "alert",
            ContentType::Handshake => "handshake",
            ContentType::ApplicationData => "application_data",
            ContentType::Heartbeat => "heartbeat",
        }
    }
}

/// What the scanner could tell about a record's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordDetail {
    /// Clear-text handshake record: the messages that start in it, in order
    /// (`ClientHello`, `ServerHello`, `HelloRetryRequest`, `Certificate`…). Empty when the
    /// record only continues a message begun in an earlier record.
    Handshake(Vec<&'static str>),
    /// A clear-text alert: level (1 warning, 2 fatal) and description code.
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert description code ([`alert_name`] names it).
        description: u8,
    },
    /// An encrypted record (application data, a TLS 1.3 handshake, an alert after the
    /// keys changed): only its length is known.
    Encrypted,
    /// Anything else (change_cipher_spec, heartbeat).
    Other,
}

/// One complete TLS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRecord {
    /// The content type.
    pub content_type: ContentType,
    /// The record-layer version (`0x0301` in a first ClientHello, `0x0303` after).
    pub version: u16,
    /// The body length (the record is 5 bytes longer on the wire).
    pub length: usize,
    /// What the body holds, as far as it can be read without keys.
    pub detail: RecordDetail,
}

impl TlsRecord {
    /// Bytes on the wire: header plus body.
    pub fn wire_len(&self) -> usize {
        self.length + 5
    }
}

impl fmt::Display for TlsRecord {
    /// `handshake ClientHello, 512 B`, `alert fatal unknown_ca`,
    /// `application_data (encrypted), 53 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_type.name())?;
        match &self.detail {
            RecordDetail::Handshake(msgs) if msgs.is_empty() => {
                f.write_str(" (continued)")?;
            }
            RecordDetail::Handshake(msgs) => write!(f, " {}", msgs.join(" + "))?,
            RecordDetail::Alert { level, description } => {
                let level = match level {
                    1 => "warning",
                    2 => "fatal",
                    _ => "level?",
                };
                return match alert_name(*description) {
                    Some(name) => write!(f, " {level} {name}"),
                    None => write!(f, " {level} {description}"),
                };
            }
            RecordDetail::Encrypted => f.write_str(" (encrypted)")?,
            RecordDetail::Other => {}
        }
        write!(f, ", {} B", self.length)
    }
}

/// The RFC name of an alert description (`unknown_ca`, `certificate_required`…).
pub fn alert_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return None,
    })
}

fn handshake_name(t: u8) -> &'static str {
    match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        22 => "CertificateStatus",
        24 => "KeyUpdate",
        _ => "unknown handshake message",
    }
}

/// What the scanner reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEvent {
    /// A record whose last byte has just passed.
    Record(TlsRecord),
    /// Bytes that cannot be TLS, at `offset` in this direction's stream: the first of them
    /// (at most 16) in hex. The scanner parses nothing after this.
    NotTls {
        /// Offset of the first bad byte from the start of the stream.
        offset: u64,
        /// The first bad bytes.
        bytes: Vec<u8>,
    },
}

impl fmt::Display for ScanEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanEvent::Record(r) => r.fmt(f),
            ScanEvent::NotTls { offset, bytes } => write!(
                f,
                "not TLS at byte {offset}: {} (a plaintext port, or another protocol)",
                hex(bytes, " ")
            ),
        }
    }
}

/// Names the records of one direction of a TLS byte stream, however it is split.
#[derive(Debug, Default, Clone)]
pub struct RecordScanner {
    header: Vec<u8>,
    body_len: usize,
    body_seen: usize,
    body_peek: Vec<u8>,
    /// Handshake messages starting in the current record.
    messages: Vec<&'static str>,
    /// Bytes still to come of the handshake message in progress (across records).
    message_left: usize,
    /// The start of the handshake message in progress, kept to name it.
    message_head: Vec<u8>,
    /// The message in progress has been named.
    message_named: bool,
    /// A change_cipher_spec passed: later handshake and alert records are encrypted.
    encrypted: bool,
    offset: u64,
    broken: bool,
}

impl RecordScanner {
    /// A scanner at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes seen so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The record in progress, if any: its content type, body length and body bytes seen.
    pub fn in_progress(&self) -> Option<(ContentType, usize, usize)> {
        let t = ContentType::from_u8(*self.header.first()?)?;
        (self.header.len() == 5).then_some((t, self.body_len, self.body_seen))
    }

    /// Whether bytes that cannot be TLS were seen.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Take the next bytes of the stream; returns the records they completed.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<ScanEvent> {
        let mut events = Vec::new();
        while !bytes.is_empty() && !self.broken {
            if self.header.len() < 5 {
                let take = (5 - self.header.len()).min(bytes.len());
                let (head, rest) = bytes.split_at(take);
                self.header.extend_from_slice(head);
                bytes = rest;
                if let Some(bad) = self.check_header() {
                    self.broken = true;
                    events.push(ScanEvent::NotTls {
                        offset: self.offset,
                        bytes: bad,
                    });
                    return events;
                }
                self.offset += take as u64;
                if self.header.len() == 5 && self.body_len == 0 {
                    events.push(self.finish_record());
                }
                continue;
            }
            let take = (self.body_len - self.body_seen).min(bytes.len());
            let (body, rest) = bytes.split_at(take);
            self.body(body);
            self.body_seen += take;
            self.offset += take as u64;
            bytes = rest;
            if self.body_seen == self.body_len {
                events.push(self.finish_record());
            }
        }
        events
    }

    /// Check what is known of the header; the offending bytes when it cannot be TLS.
    fn check_header(&mut self) -> Option<Vec<u8>> {
        let h = &self.header;
        let bad = match h.len() {
            0 => false,
            1 | 2 => ContentType::from_u8(h[0]).is_none() || h.get(1).is_some_and(|v| *v != 3),
            3 | 4 => ContentType::from_u8(h[0]).is_none() || h[1] != 3 || h[2] > 4,
            _ => {
                let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
                self.body_len = len;
                ContentType::from_u8(h[0]).is_none()
                    || h[1] != 3
                    || h[2] > 4
                    || len > MAX_RECORD_BODY
            }
        };
        bad.then(|| self.header.iter().copied().take(16).collect())
    }

    fn body(&mut self, bytes: &[u8]) {
        let content = self.header.first().copied().and_then(ContentType::from_u8);
        if self.body_peek.len() < 2 {
            let take = (2 - self.body_peek.len()).min(bytes.len());
            self.body_peek.extend_from_slice(&bytes[..take]);
        }
        if content == Some(ContentType::Handshake) && !self.encrypted {
            self.handshake_bytes(bytes);
        }
    }

    /// Follow handshake message boundaries (a message may span records, a record may hold
    /// many messages).
    fn handshake_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.message_head.len() < 4 {
                // A message header (type and 3-byte length), possibly split.
                let take = (4 - self.message_head.len()).min(bytes.len());
                self.message_head.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if let [t, a, b, c] = self.message_head[..] {
                    self.message_left =
                        (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
                    self.message_named = false;
                    self.name_message(t, self.message_left == 0);
                    if self.message_left == 0 {
                        self.message_head.clear();
                    }
                }
                continue;
            }
            let take = self.message_left.min(bytes.len());
            let keep = HANDSHAKE_PEEK
                .saturating_sub(self.message_head.len())
                .min(take);
            self.message_head.extend_from_slice(&bytes[..keep]);
            self.message_left -= take;
            bytes = &bytes[take..];
            if let Some(&t) = self.message_head.first() {
                self.name_message(t, self.message_left == 0);
            }
            if self.message_left == 0 {
                self.message_head.clear();
            }
        }
    }

    /// Name the message in progress once enough of it is known (a ServerHello needs its
    /// random to tell a HelloRetryRequest), or at its end.
    fn name_message(&mut self, t: u8, at_end: bool) {
        if self.message_named || !(at_end || t != 2 || self.message_head.len() >= HANDSHAKE_PEEK) {
            return;
        }
        let name = if t == 2 && self.message_head.get(6..38) == Some(&HRR_RANDOM[..]) {
            "HelloRetryRequest"
        } else {
            handshake_name(t)
        };
        self.messages.push(name);
        self.message_named = true;
    }

    fn finish_record(&mut self) -> ScanEvent {
        let h = &self.header;
        let content_type = ContentType::from_u8(h[0]).unwrap_or(ContentType::ApplicationData);
        let version = u16::from_be_bytes([h[1], h[2]]);
        let detail = match content_type {
            ContentType::Handshake if self.encrypted => RecordDetail::Encrypted,
            ContentType::Handshake => RecordDetail::Handshake(std::mem::take(&mut self.messages)),
            ContentType::Alert if self.body_len == 2 => RecordDetail::Alert {
                level: self.body_peek.first().copied().unwrap_or(0),
                description: self.body_peek.get(1).copied().unwrap_or(0),
            },
            ContentType::Alert | ContentType::ApplicationData => RecordDetail::Encrypted,
            ContentType::ChangeCipherSpec => {
                self.encrypted = true;
                RecordDetail::Other
            }
            ContentType::Heartbeat => RecordDetail::Other,
        };
        let record = TlsRecord {
            content_type,
            version,
            length: self.body_len,
            detail,
        };
        self.header.clear();
        self.body_peek.clear();
        self.body_len = 0;
        self.body_seen = 0;
        ScanEvent::Record(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t: u8, version: u16, body: &[u8]) -> Vec<u8> {
        let mut r = vec![t];
        r.extend_from_slice(&version.to_be_bytes());
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn message(t: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut m = vec![t, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        m.extend_from_slice(body);
        m
    }

    /// A server flight: ServerHello + Certificate in one record, then a Certificate that
    /// spans two records, ServerHelloDone, CCS, an encrypted Finished, data and an alert.
    fn flight() -> Vec<u8> {
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[7u8; 32]);
        hello.push(0);
        let mut first = message(2, &hello);
        first.extend(message(11, &[1, 2, 3]));
        let big = message(11, &[9u8; 300]);
        let mut s = record(22, 0x0303, &first);
        s.extend(record(22, 0x0303, &big[..100]));
        let mut tail = big[100..].to_vec();
        tail.extend(message(14, &[]));
        s.extend(record(22, 0x0303, &tail));
        s.extend(record(20, 0x0303, &[1]));
        s.extend(record(22, 0x0303, &[0xaa; 40]));
        s.extend(record(23, 0x0303, &[0xbb; 53]));
        s.extend(record(21, 0x0303, &[2, 48]));
        s
    }

    fn names(events: &[ScanEvent]) -> Vec<String> {
        events.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn records_are_named_whole_and_split_anywhere() {
        let stream = flight();
        let whole = RecordScanner::new().push(&stream);
        assert_eq!(
            names(&whole),
            [
                "handshake ServerHello + Certificate, 46 B",
                "handshake Certificate, 100 B",
                "handshake ServerHelloDone, 208 B",
                "change_cipher_spec, 1 B",
                "handshake (encrypted), 40 B",
                "application_data (encrypted), 53 B",
                "alert fatal unknown_ca",
            ]
        );
        // Byte by byte, and every cut in two.
        let mut drip = RecordScanner::new();
        let dripped: Vec<ScanEvent> = stream.iter().flat_map(|b| drip.push(&[*b])).collect();
        assert_eq!(dripped, whole);
        for cut in 0..stream.len() {
            let mut s = RecordScanner::new();
            let mut events = s.push(&stream[..cut]);
            events.extend(s.push(&stream[cut..]));
            assert_eq!(events, whole, "cut at {cut}");
            assert_eq!(s.offset(), stream.len() as u64);
        }
    }

    #[test]
    fn a_record_in_progress_is_visible() {
        let stream = record(23, 0x0303, &[0; 100]);
        let mut s = RecordScanner::new();
        assert!(s.push(&stream[..3]).is_empty());
        assert_eq!(s.in_progress(), None);
        assert!(s.push(&stream[3..50]).is_empty());
        assert_eq!(
            s.in_progress(),
            Some((ContentType::ApplicationData, 100, 45))
        );
        assert_eq!(s.push(&stream[50..]).len(), 1);
        assert_eq!(s.in_progress(), None);
    }

    #[test]
    fn a_hello_retry_request_is_told_from_a_server_hello() {
        let mut body = vec![3, 3];
        body.extend_from_slice(&HRR_RANDOM);
        body.extend_from_slice(&[0, 0x13, 0x01, 0]);
        let stream = record(22, 0x0303, &message(2, &body));
        for cut in 0..stream.len() {
            let mut s = RecordScanner::new();
            let mut events = s.push(&stream[..cut]);
            events.extend(s.push(&stream[cut..]));
            assert_eq!(
                names(&events),
                [format!(
                    "handshake HelloRetryRequest, {} B",
                    stream.len() - 5
                )]
            );
        }
    }

    #[test]
    fn bytes_that_are_not_tls_stop_the_scanner() {
        for (bytes, offset) in [
            (&b"\x20\x02\x00\x00"[..], 0u64),
            (&b"HTTP/1.1 400"[..], 0),
            (&b"\x16\x03\x03\xff\xff"[..], 0),
        ] {
            let mut s = RecordScanner::new();
            let events = s.push(bytes);
            assert!(
                matches!(&events[..], [ScanEvent::NotTls { offset: o, .. }] if *o == offset),
                "{bytes:?}: {events:?}"
            );
            assert!(s.is_broken());
            assert!(s.push(b"\x16\x03\x03\x00\x00").is_empty(), "nothing after");
        }
        // After a good record.
        let mut stream = record(23, 0x0303, &[1, 2]);
        stream.extend_from_slice(b"\x20\x02");
        let events = RecordScanner::new().push(&stream);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1].to_string(),
            "not TLS at byte 7: 20 02 (a plaintext port, or another protocol)"
        );
    }
}
