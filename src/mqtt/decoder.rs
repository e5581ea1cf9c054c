//! A streaming decoder: push bytes as they arrive (in any pieces), pull whole packets.

use super::error::DecodeError;
use super::header::{FixedHeader, MAX_REMAINING_LENGTH};
use super::{Packet, Protocol, decode_packet};

/// Default maximum packet size of a [`StreamDecoder`]: 1 MiB (fixed header included).
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1 << 20;

/// Turns a byte stream into packets.
///
/// Feed it with [`push`](Self::push) and drain it with [`next_packet`](Self::next_packet)
/// until that returns `Ok(None)`. A packet may arrive one byte at a time, or several packets in
/// one push. Errors are reported as soon as the bytes seen are wrong (the first byte, the
/// remaining length, a packet larger than the maximum) without waiting for the rest, with
/// offsets counted from the first byte ever pushed. After an error the stream cannot be
/// re-synchronised: the error is returned again until [`reset`](Self::reset).
///
/// The protocol version decides how non-CONNECT packets are laid out; a decoded CONNECT sets it.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    start: usize,
    protocol: Protocol,
    max_packet_size: usize,
    consumed: usize,
    error: Option<DecodeError>,
}

impl StreamDecoder {
    /// A decoder for `protocol` with [`DEFAULT_MAX_PACKET_SIZE`].
    pub fn new(protocol: Protocol) -> StreamDecoder {
        StreamDecoder {
            buf: Vec::new(),
            start: 0,
            protocol,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            consumed: 0,
            error: None,
        }
    }

    /// Set the maximum size of one packet, fixed header included (capped at the protocol
    /// maximum of 268,435,460 bytes). Larger packets are an error as soon as their header is seen.
    pub fn with_max_packet_size(mut self, max: usize) -> StreamDecoder {
        self.max_packet_size = max.min(MAX_REMAINING_LENGTH + 5);
        self
    }

    /// The protocol version used for non-CONNECT packets.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Change the protocol version (e.g. after sending a CONNECT of another version).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// The maximum packet size.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Append bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes pushed but not yet returned as packets.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Stream offset of the first buffered byte (bytes consumed by returned packets).
    pub fn stream_offset(&self) -> usize {
        self.consumed
    }

    /// The total size of the packet being received, once its fixed header is complete.
    pub fn pending_packet_len(&self) -> Option<usize> {
        match FixedHeader::parse(self.pending(), self.protocol) {
            Ok(Some(h)) => Some(h.packet_len()),
            _ => None,
        }
    }

    /// Forget buffered bytes and any error (offsets keep counting).
    pub fn reset(&mut self) {
        self.consumed += self.buffered_len();
        self.buf.clear();
        self.start = 0;
        self.error = None;
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    fn fail(&mut self, e: DecodeError) -> Result<Option<Packet>, DecodeError> {
        let e = e.shifted(self.consumed);
        self.error = Some(e.clone());
        Err(e)
    }

    /// The next complete packet: `Ok(None)` when more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, DecodeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let header = match FixedHeader::parse(self.pending(), self.protocol) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(e) => return self.fail(e),
        };
        let len = header.packet_len();
        if len > self.max_packet_size {
            let e = DecodeError::too_large(
                1,
                format!("{} remaining length", header.packet_type.name()),
                format!(
                    "packet of {len} bytes exceeds the maximum packet size of {} bytes",
                    self.max_packet_size
                ),
            );
            return self.fail(e);
        }
        let Some(bytes) = self.pending().get(..len) else {
            return Ok(None);
        };
        match decode_packet(bytes, &header, self.protocol) {
            Ok(p) => {
                if let Packet::Connect(c) = &p {
                    self.protocol = c.protocol;
                }
                self.start += len;
                self.consumed += len;
                Ok(Some(p))
            }
            Err(e) => self.fail(e),
        }
    }
}

impl Iterator for StreamDecoder {
    type Item = Result<Packet, DecodeError>;

    /// Yields packets until more bytes are needed; yields an error once (and then ends).
    fn next(&mut self) -> Option<Self::Item> {
        if self.error.is_some() {
            return None;
        }
        self.next_packet().transpose()
    }
}
