//! MQTT data representations (spec 1.5): two- and four-byte integers, variable byte integers,
//! UTF-8 encoded strings and binary data. A bounds-checked [`Reader`] for decoding that knows
//! byte offsets, and plain writers plus validators for encoding.

use super::error::{DecodeError, EncodeError};

/// Largest value a variable byte integer can hold (4 bytes): 268,435,455.
pub(crate) const MAX_VARINT: u32 = 268_435_455;

/// Largest length of an MQTT string or binary field (two-byte length prefix).
pub(crate) const MAX_STRING_LEN: usize = 65_535;

/// A cursor over one packet's bytes. Offsets in errors are positions in `buf` (plus `base`).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    packet: &'static str,
}

impl<'a> Reader<'a> {
    /// Read `buf` from `pos`; `packet` prefixes field names in errors (e.g. `"CONNECT"`).
    pub(crate) fn new(buf: &'a [u8], pos: usize, packet: &'static str) -> Self {
        Reader { buf, pos, packet }
    }

    /// `"<PACKET> <field>"`.
    pub(crate) fn field(&self, name: &str) -> String {
        format!("{} {}", self.packet, name)
    }

    /// Current offset.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes left before the end of the packet (or of the current sub-reader).
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// An error at `offset` about `field`.
    pub(crate) fn err(
        &self,
        offset: usize,
        field: &str,
        message: impl Into<String>,
    ) -> DecodeError {
        DecodeError::new(offset, self.field(field), message)
    }

    fn need(&self, n: usize, field: &str) -> Result<(), DecodeError> {
        let left = self.remaining();
        if left < n {
            return Err(self.err(
                self.pos,
                field,
                format!(
                    "packet ends inside this field: it needs {n} byte{}, only {left} left",
                    if n == 1 { "" } else { "s" }
                ),
            ));
        }
        Ok(())
    }

    /// Take `n` raw bytes.
    pub(crate) fn bytes(&mut self, n: usize, field: &str) -> Result<&'a [u8], DecodeError> {
        self.need(n, field)?;
        let s = self.buf.get(self.pos..self.pos + n).unwrap_or_default();
        self.pos += n;
        Ok(s)
    }

    /// Take everything up to the end.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }

    /// One byte.
    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, DecodeError> {
        let b = self.bytes(1, field)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    /// Two-byte big-endian integer.
    pub(crate) fn u16(&mut self, field: &str) -> Result<u16, DecodeError> {
        let b = self.bytes(2, field)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    /// Four-byte big-endian integer.
    pub(crate) fn u32(&mut self, field: &str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, field)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    /// Variable byte integer: at most 4 bytes, minimal encoding only.
    pub(crate) fn varint(&mut self, field: &str) -> Result<u32, DecodeError> {
        let start = self.pos;
        match parse_varint(self.buf.get(start..).unwrap_or_default()) {
            VarInt::Value(v, n) => {
                self.pos += n;
                Ok(v)
            }
            VarInt::Incomplete => Err(self.err(
                start,
                field,
                format!(
                    "packet ends inside this variable byte integer ({} byte{} left)",
                    self.remaining(),
                    if self.remaining() == 1 { "" } else { "s" }
                ),
            )),
            VarInt::TooLong => Err(self.err(
                start + 3,
                field,
                "variable byte integer longer than 4 bytes (4th byte has the continuation bit set)",
            )),
            VarInt::NonMinimal(n) => Err(self.err(
                start + n - 1,
                field,
                format!(
                    "variable byte integer is not minimally encoded ({n} bytes, last byte 0x00)"
                ),
            )),
        }
    }

    /// UTF-8 encoded string: two-byte length, valid UTF-8, no U+0000.
    pub(crate) fn string(&mut self, field: &str) -> Result<String, DecodeError> {
        let start = self.pos;
        let len = self.u16(field)? as usize;
        let data_start = self.pos;
        let bytes = self.bytes(len, field).map_err(|_| {
            self.err(
                start,
                field,
                format!(
                    "string length {len} runs past the end of the packet ({} bytes left after the length)",
                    self.remaining()
                ),
            )
        })?;
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                if let Some(i) = s.find('\0') {
                    return Err(self.err(
                        data_start + i,
                        field,
                        "string contains U+0000 (null character), not allowed in MQTT strings",
                    ));
                }
                Ok(s.to_owned())
            }
            Err(e) => {
                let at = data_start + e.valid_up_to();
                let bad = bytes.get(e.valid_up_to()).copied().unwrap_or_default();
                Err(self.err(
                    at,
                    field,
                    format!(
                        "invalid UTF-8 in string (byte 0x{bad:02X} at position {})",
                        e.valid_up_to()
                    ),
                ))
            }
        }
    }

    /// Binary data: two-byte length then that many bytes.
    pub(crate) fn binary(&mut self, field: &str) -> Result<Vec<u8>, DecodeError> {
        let start = self.pos;
        let len = self.u16(field)? as usize;
        let bytes = self.bytes(len, field).map_err(|_| {
            self.err(
                start,
                field,
                format!(
                    "binary length {len} runs past the end of the packet ({} bytes left after the length)",
                    self.remaining()
                ),
            )
        })?;
        Ok(bytes.to_vec())
    }

    /// A sub-reader over the next `len` bytes (same offsets); this reader skips past them.
    pub(crate) fn sub(&mut self, len: usize, field: &str) -> Result<Reader<'a>, DecodeError> {
        let start = self.pos;
        if self.remaining() < len {
            return Err(self.err(
                start,
                field,
                format!(
                    "length {len} runs past the end of the packet ({} bytes left)",
                    self.remaining()
                ),
            ));
        }
        let sub = Reader {
            buf: self.buf.get(..start + len).unwrap_or_default(),
            pos: start,
            packet: self.packet,
        };
        self.pos += len;
        Ok(sub)
    }

    /// Fail if bytes are left (the remaining length claims more than the content).
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        let left = self.remaining();
        if left > 0 {
            return Err(self.err(
                self.pos,
                "remaining length",
                format!(
                    "{left} unexpected byte{} after the end of the packet content",
                    if left == 1 { "" } else { "s" }
                ),
            ));
        }
        Ok(())
    }
}

/// Result of parsing a variable byte integer from the start of a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarInt {
    /// Value and number of bytes used.
    Value(u32, usize),
    /// The slice ends before the last byte.
    Incomplete,
    /// The 4th byte still has the continuation bit.
    TooLong,
    /// Valid but longer than needed (ends in a 0x00 continuation).
    NonMinimal(usize),
}

pub(crate) fn parse_varint(buf: &[u8]) -> VarInt {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(i) else {
            return VarInt::Incomplete;
        };
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return VarInt::NonMinimal(i + 1);
            }
            return VarInt::Value(value, i + 1);
        }
    }
    VarInt::TooLong
}

/// Append a variable byte integer. Values above [`MAX_VARINT`] produce more than 4 bytes
/// (invalid; only reachable through the unchecked encoders).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let mut b = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            b |= 0x80;
        }
        out.push(b);
        if value == 0 {
            break;
        }
    }
}

/// Number of bytes [`put_varint`] writes for `value`.
#[cfg(test)]
pub(crate) fn varint_len(value: usize) -> usize {
    let mut n = 1;
    let mut v = value >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append a length-prefixed string. Longer than 65,535 bytes: the length wraps (unchecked path).
pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    put_binary(out, s.as_bytes());
}

/// Append length-prefixed binary data. Longer than 65,535 bytes: the length wraps.
pub(crate) fn put_binary(out: &mut Vec<u8>, b: &[u8]) {
    put_u16(out, b.len() as u16);
    out.extend_from_slice(b);
}

/// Check an MQTT string for encoding: at most 65,535 bytes, no U+0000.
pub(crate) fn check_string(field: &str, s: &str) -> Result<(), EncodeError> {
    if s.len() > MAX_STRING_LEN {
        return Err(EncodeError::new(
            field,
            format!("string is {} bytes, the maximum is 65535", s.len()),
        ));
    }
    if let Some(i) = s.find('\0') {
        return Err(EncodeError::new(
            field,
            format!(
                "string contains U+0000 (null character) at byte {i}, not allowed in MQTT strings"
            ),
        ));
    }
    Ok(())
}

/// Check binary data for encoding: at most 65,535 bytes.
pub(crate) fn check_binary(field: &str, b: &[u8]) -> Result<(), EncodeError> {
    if b.len() > MAX_STRING_LEN {
        return Err(EncodeError::new(
            field,
            format!("binary data is {} bytes, the maximum is 65535", b.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries() {
        for (v, bytes) in [
            (0usize, vec![0x00]),
            (127, vec![0x7F]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xFF, 0x7F]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (2_097_151, vec![0xFF, 0xFF, 0x7F]),
            (2_097_152, vec![0x80, 0x80, 0x80, 0x01]),
            (268_435_455, vec![0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes, "encode {v}");
            assert_eq!(varint_len(v), bytes.len());
            assert_eq!(parse_varint(&bytes), VarInt::Value(v as u32, bytes.len()));
        }
        assert_eq!(parse_varint(&[0x80, 0x00]), VarInt::NonMinimal(2));
        assert_eq!(
            parse_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            VarInt::TooLong
        );
        assert_eq!(parse_varint(&[0xFF, 0xFF]), VarInt::Incomplete);
        assert_eq!(parse_varint(&[]), VarInt::Incomplete);
    }

    #[test]
    fn reader_string_errors_name_offset() {
        // length 3, then 'a', 0xED 0xA0 (start of a UTF-16 surrogate encoded in UTF-8)
        let buf = [0x00, 0x03, b'a', 0xED, 0xA0];
        let e = Reader::new(&buf, 0, "PUBLISH").string("topic").unwrap_err();
        assert_eq!(e.offset(), 3);
        assert_eq!(e.field(), "PUBLISH topic");
        let buf = [0x00, 0x02, b'a', 0x00];
        let e = Reader::new(&buf, 0, "PUBLISH").string("topic").unwrap_err();
        assert_eq!(e.offset(), 3);
        assert!(e.message().contains("U+0000"), "{e}");
        let buf = [0x00, 0x05, b'a'];
        let e = Reader::new(&buf, 0, "PUBLISH").string("topic").unwrap_err();
        assert_eq!(e.offset(), 0);
        assert!(e.message().contains("runs past"), "{e}");
    }
}
