//! One direction of an MQTT connection: bytes in (in any pieces), packets out, with the
//! offsets, the raw bytes and whether a transcript redaction touched them.
//!
//! After bytes that do not decode, the stream drops what it holds and starts again at the
//! next piece (a send or a received block): a protocol analyser's resynchronisation, which
//! works because sim7k sends whole packets per `send_data` and brokers' packets rarely span
//! a read boundary mid-error.

use super::send::{Chunk, Hole};
use crate::mqtt::{Packet, Protocol, decode};
use crate::redact::REDACTED;

/// Longest secret searched for when a redaction's length is unknown (hex-mode and
/// variable-length sends).
const MAX_HIDDEN: usize = 4096;

/// What a stream made of its bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// A packet.
    Packet {
        /// Stream offset of its first byte.
        offset: usize,
        /// Its bytes.
        raw: Vec<u8>,
        /// The packet.
        packet: Box<Packet>,
        /// The version it was decoded in.
        protocol: Protocol,
        /// A redaction (`***`) touched its bytes.
        redacted: bool,
    },
    /// Bytes that are not a packet.
    Undecodable {
        /// Stream offset of the first byte.
        offset: usize,
        /// Bytes dropped.
        length: usize,
        /// Why.
        reason: String,
        /// A redaction (`***`) touched them.
        redacted: bool,
    },
}

/// One direction's decoder.
#[derive(Debug)]
pub(crate) struct Stream {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: usize,
    protocol: Protocol,
    /// Stream ranges that hold (or may hold) redacted bytes.
    redacted: Vec<(usize, usize)>,
}

impl Stream {
    pub(crate) fn new(protocol: Protocol) -> Stream {
        Stream {
            buf: Vec::new(),
            start: 0,
            protocol,
            redacted: Vec::new(),
        }
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub(crate) fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Bytes received (`redacted`: the transcript hid something in them).
    pub(crate) fn push(&mut self, bytes: &[u8], redacted: bool) -> Vec<Decoded> {
        if redacted {
            let at = self.start + self.buf.len();
            self.redacted.push((at, at + bytes.len()));
        }
        self.buf.extend_from_slice(bytes);
        self.drain()
    }

    /// A sent chunk, its redactions resolved when they can be.
    pub(crate) fn push_chunk(&mut self, chunk: Chunk) -> Vec<Decoded> {
        if chunk.holes.is_empty() {
            return self.push(&chunk.bytes, chunk.marker_in_data);
        }
        let known: Option<Vec<usize>> = chunk.holes.iter().map(|h| h.len).collect();
        let lens = match known {
            Some(lens) => Some(lens),
            None if self.buf.is_empty() => self.search(&chunk),
            None => None,
        };
        match lens {
            Some(lens) => {
                let (bytes, spans) = fill(&chunk.bytes, &chunk.holes, &lens);
                let at = self.start + self.buf.len();
                self.redacted
                    .extend(spans.iter().map(|(s, e)| (at + s, at + e)));
                self.buf.extend_from_slice(&bytes);
                self.drain()
            }
            None => {
                let offset = self.start;
                let length = self.buf.len() + chunk.bytes.len();
                self.start += length;
                self.buf.clear();
                self.redacted.clear();
                vec![Decoded::Undecodable {
                    offset,
                    length,
                    reason: "redacted, not decodable: the transcript hides bytes of unknown \
                             length here"
                        .into(),
                    redacted: true,
                }]
            }
        }
    }

    /// The lengths of the unknown holes that make the chunk whole packets: the literal `***`
    /// first where that is possible, then one unknown hole of every length up to
    /// [`MAX_HIDDEN`].
    fn search(&self, chunk: &Chunk) -> Option<Vec<usize>> {
        let literal: Option<Vec<usize>> = chunk
            .holes
            .iter()
            .map(|h| h.len.or(h.maybe_literal.then_some(REDACTED.len())))
            .collect();
        if let Some(lens) = literal
            && self.whole(&chunk.bytes, &chunk.holes, &lens)
        {
            return Some(lens);
        }
        let unknown = chunk.holes.iter().filter(|h| h.len.is_none()).count();
        if unknown != 1 {
            return None;
        }
        (1..=MAX_HIDDEN).find_map(|n| {
            let lens: Vec<usize> = chunk.holes.iter().map(|h| h.len.unwrap_or(n)).collect();
            self.whole(&chunk.bytes, &chunk.holes, &lens)
                .then_some(lens)
        })
    }

    /// Do these bytes, holes filled, decode into whole packets, to the last byte?
    fn whole(&self, bytes: &[u8], holes: &[Hole], lens: &[usize]) -> bool {
        let (filled, _) = fill(bytes, holes, lens);
        let mut v = self.protocol;
        let mut at = 0;
        while at < filled.len() {
            match decode(filled.get(at..).unwrap_or_default(), v) {
                Ok(Some((p, n))) => {
                    if let Packet::Connect(c) = &p {
                        v = c.protocol;
                    }
                    at += n;
                }
                _ => return false,
            }
        }
        !filled.is_empty()
    }

    /// Decode what the buffer holds.
    fn drain(&mut self) -> Vec<Decoded> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let rest = self.buf.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            match decode(rest, self.protocol) {
                Ok(Some((packet, n))) => {
                    let raw = rest.get(..n).unwrap_or_default().to_vec();
                    let offset = self.start + pos;
                    let protocol = packet.effective_protocol(self.protocol);
                    if let Packet::Connect(c) = &packet {
                        self.protocol = c.protocol;
                    }
                    let redacted =
                        self.touches(offset, offset + n) || find(&raw, REDACTED.as_bytes());
                    out.push(Decoded::Packet {
                        offset,
                        raw,
                        packet: Box::new(packet),
                        protocol,
                        redacted,
                    });
                    pos += n;
                }
                Ok(None) => break,
                Err(e) => {
                    let offset = self.start + pos;
                    let length = rest.len();
                    let redacted = self.touches(offset, offset + length);
                    let e = e.shifted(offset);
                    let reason = if redacted {
                        format!("redacted, not decodable ({e})")
                    } else {
                        format!("malformed: {e}")
                    };
                    out.push(Decoded::Undecodable {
                        offset,
                        length,
                        reason,
                        redacted,
                    });
                    pos += length;
                }
            }
        }
        self.buf.drain(..pos);
        self.start += pos;
        let start = self.start;
        self.redacted.retain(|(_, end)| *end > start);
        out
    }

    fn touches(&self, from: usize, to: usize) -> bool {
        self.redacted.iter().any(|(s, e)| *s < to && from < *e)
    }

    /// The connection ended (or the transcript did): bytes left over are an incomplete packet.
    pub(crate) fn finish(&mut self, why: &str) -> Option<Decoded> {
        if self.buf.is_empty() {
            return None;
        }
        let offset = self.start;
        let length = self.buf.len();
        let need = crate::mqtt::FixedHeader::parse(&self.buf, self.protocol)
            .ok()
            .flatten()
            .map(|h| h.packet_len());
        let what = need.map_or_else(
            || "the fixed header".to_owned(),
            |n| format!("a packet of {n} bytes"),
        );
        let redacted = self.touches(offset, offset + length);
        self.start += length;
        self.buf.clear();
        self.redacted.clear();
        Some(Decoded::Undecodable {
            offset,
            length,
            reason: format!("incomplete: {why} after {length} bytes of {what}"),
            redacted,
        })
    }
}

/// The bytes with each hole filled by `*` of its length, and the filled spans.
fn fill(bytes: &[u8], holes: &[Hole], lens: &[usize]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut out = Vec::with_capacity(bytes.len() + lens.iter().sum::<usize>());
    let mut spans = Vec::with_capacity(holes.len());
    let mut from = 0;
    for (h, n) in holes.iter().zip(lens) {
        out.extend_from_slice(bytes.get(from..h.at).unwrap_or_default());
        let s = out.len();
        out.extend(std::iter::repeat_n(b'*', *n));
        spans.push((s, out.len()));
        from = h.at.max(from);
    }
    out.extend_from_slice(bytes.get(from..).unwrap_or_default());
    (out, spans)
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Connect, Publish};

    fn connect_with_password(pw: &[u8]) -> Vec<u8> {
        let mut c = Connect::new(Protocol::V311, "dev");
        c.username = Some("u".into());
        c.password = Some(pw.to_vec());
        Packet::Connect(c).encode(Protocol::V311).unwrap()
    }

    #[test]
    fn packets_come_out_whatever_the_pieces() {
        let mut s = Stream::new(Protocol::V311);
        let bytes = Packet::Publish(Publish::new("a/b", "hi"))
            .encode(Protocol::V311)
            .unwrap();
        let (a, b) = bytes.split_at(3);
        assert!(s.push(a, false).is_empty());
        let out = s.push(b, false);
        assert!(matches!(
            &out[..],
            [Decoded::Packet {
                offset: 0,
                redacted: false,
                ..
            }]
        ));
    }

    #[test]
    fn a_hole_of_unknown_length_is_found_from_the_packet() {
        let bytes = connect_with_password(b"hunter2");
        let pos = bytes.windows(7).position(|w| w == b"hunter2").unwrap();
        let mut visible = bytes[..pos].to_vec();
        visible.extend_from_slice(&bytes[pos + 7..]);
        let chunk = Chunk {
            bytes: visible,
            holes: vec![Hole {
                at: pos,
                len: None,
                maybe_literal: false,
            }],
            marker_in_data: false,
        };
        let mut s = Stream::new(Protocol::V311);
        let out = s.push_chunk(chunk);
        let [
            Decoded::Packet {
                packet,
                redacted: true,
                ..
            },
        ] = &out[..]
        else {
            panic!("{out:?}")
        };
        let Packet::Connect(c) = packet.as_ref() else {
            panic!("{packet:?}")
        };
        assert_eq!(c.password.as_deref(), Some(&b"*******"[..]));
    }

    #[test]
    fn an_unresolvable_hole_is_reported_not_decoded() {
        let chunk = Chunk {
            bytes: vec![0x30, 0x05],
            holes: vec![
                Hole {
                    at: 2,
                    len: None,
                    maybe_literal: false,
                },
                Hole {
                    at: 2,
                    len: None,
                    maybe_literal: false,
                },
            ],
            marker_in_data: false,
        };
        let mut s = Stream::new(Protocol::V311);
        let out = s.push_chunk(chunk);
        assert!(
            matches!(&out[..], [Decoded::Undecodable { redacted: true, reason, .. }] if reason.starts_with("redacted, not decodable")),
            "{out:?}"
        );
        // The stream goes on after it.
        let out = s.push(&[0xC0, 0x00], false);
        assert!(
            matches!(&out[..], [Decoded::Packet { offset: 2, .. }]),
            "{out:?}"
        );
    }

    #[test]
    fn garbage_is_reported_and_the_stream_resyncs() {
        let mut s = Stream::new(Protocol::V311);
        let out = s.push(&[0x00, 0x01], false);
        assert!(matches!(
            &out[..],
            [Decoded::Undecodable {
                offset: 0,
                length: 2,
                ..
            }]
        ));
        let out = s.push(&[0xD0, 0x00], false);
        assert!(matches!(&out[..], [Decoded::Packet { offset: 2, .. }]));
        assert!(s.push(&[0x30, 0x09, 0x00], false).is_empty());
        let Some(Decoded::Undecodable { reason, .. }) = s.finish("the connection closed") else {
            panic!()
        };
        assert_eq!(
            reason,
            "incomplete: the connection closed after 3 bytes of a packet of 11 bytes"
        );
    }
}
