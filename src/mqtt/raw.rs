//! The escape hatch for negative tests: build packets byte by byte, with no rule checked.
//!
//! Nothing here validates anything; the strict path is [`Packet::encode`](super::Packet::encode).
//! For typed packets with invalid field values see
//! [`Packet::encode_unchecked`](super::Packet::encode_unchecked).
//!
//! ```
//! use sim7k::mqtt::RawPacket;
//! // SUBSCRIBE with reserved flags 0b0000 instead of 0b0010, and a wildcard in the wrong place.
//! let bytes = RawPacket::new(0x80).u16(1).string("a/#/b").u8(0).encode();
//! assert_eq!(bytes[..4], [0x80, 0x0A, 0x00, 0x01]);
//! ```

use super::PacketType;
use super::primitives::put_varint;

/// A packet assembled from raw parts. The remaining length is the body length unless
/// overridden with [`remaining_length`](Self::remaining_length).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawPacket {
    first_byte: u8,
    remaining_length: Option<usize>,
    body: Vec<u8>,
}

impl RawPacket {
    /// Start with any first byte (type nibble and flags).
    pub fn new(first_byte: u8) -> RawPacket {
        RawPacket {
            first_byte,
            ..RawPacket::default()
        }
    }

    /// Start with a type and any flags (only the low 4 bits of `flags` are used).
    pub fn of_type(t: PacketType, flags: u8) -> RawPacket {
        RawPacket::new(((t as u8) << 4) | (flags & 0x0F))
    }

    /// Claim this remaining length whatever the body is (values above 268,435,455 encode to
    /// more than 4 bytes).
    pub fn remaining_length(mut self, len: usize) -> RawPacket {
        self.remaining_length = Some(len);
        self
    }

    /// Append one byte.
    pub fn u8(mut self, v: u8) -> RawPacket {
        self.body.push(v);
        self
    }

    /// Append a big-endian two-byte integer.
    pub fn u16(mut self, v: u16) -> RawPacket {
        self.body.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Append a big-endian four-byte integer.
    pub fn u32(mut self, v: u32) -> RawPacket {
        self.body.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Append a (minimal) variable byte integer of any size.
    pub fn varint(mut self, v: usize) -> RawPacket {
        put_varint(&mut self.body, v);
        self
    }

    /// Append a two-byte length (wrapping above 65,535) and the bytes of `s`.
    pub fn string(self, s: &str) -> RawPacket {
        self.binary(s.as_bytes())
    }

    /// Append a two-byte length (wrapping above 65,535) and `b`.
    pub fn binary(self, b: &[u8]) -> RawPacket {
        self.u16(b.len() as u16).bytes(b)
    }

    /// Append bytes as they are.
    pub fn bytes(mut self, b: &[u8]) -> RawPacket {
        self.body.extend_from_slice(b);
        self
    }

    /// The packet bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 5);
        out.push(self.first_byte);
        put_varint(&mut out, self.remaining_length.unwrap_or(self.body.len()));
        out.extend_from_slice(&self.body);
        out
    }
}
