//! The logic of `sim7k mqtt decode`: every packet of a byte string, described field by field
//! (or one JSON object per packet), long fields shortened unless asked otherwise, and errors
//! that say where the input went wrong and what is missing.

use std::io::Write;

use super::describe::JSON_SHOWN_BYTES;
use super::error::{DecodeError, EncodeError};
use super::header::{FixedHeader, MAX_REMAINING_LENGTH, PacketType};
use super::{Protocol, StreamDecoder};
use crate::exit::Exit;
use crate::util::escape::SHOWN_CHARS;
use crate::util::hex::hex;

/// Bytes of a packet shown as hex in the `# packet` line of a shortened listing.
const SHOWN_HEX_BYTES: usize = 32;

/// How [`list_packets`] shows packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOptions {
    /// Version of non-CONNECT packets (a CONNECT in the input sets it for what follows).
    pub protocol: Protocol,
    /// One JSON object per packet instead of the description.
    pub json: bool,
    /// Show every byte: no shortening of hex, payloads and other long fields.
    pub full: bool,
}

/// What `sim7k mqtt encode|decode|follow` can fail with. Each has an exit code
/// ([`ToolError::kind`]).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The hex input is not hex.
    #[error("invalid hex input at character {position}: {message}")]
    Hex {
        /// 0-based character index in the input.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// The input holds no bytes.
    #[error("no bytes to decode")]
    Empty,
    /// The input ends inside a packet.
    #[error("{}", truncated_text(*offset, packet, *have, *need))]
    Truncated {
        /// Offset of the packet's first byte.
        offset: usize,
        /// The packet's type (from its first byte).
        packet: PacketType,
        /// Bytes of the packet present.
        have: usize,
        /// Bytes the packet needs in all, once its fixed header is complete.
        need: Option<usize>,
    },
    /// The packet breaks a rule (strict encoding).
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The bytes break a rule.
    #[error("malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// A file or argument the command needs cannot be used.
    #[error("{0}")]
    Input(String),
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ToolError {
    /// The exit code: bad input (hex, bytes, a packet that cannot be encoded, a file that
    /// cannot be read) is a usage error (2); a failing read or write of a stream is an I/O
    /// error (4).
    pub fn kind(&self) -> Exit {
        match self {
            ToolError::Io(_) => Exit::Io,
            _ => Exit::Usage,
        }
    }

    /// True when the error is a write to a reader that has gone (`… | head -1`): not a
    /// failure, the output is simply no longer wanted.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ToolError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

fn truncated_text(offset: usize, packet: &PacketType, have: usize, need: Option<usize>) -> String {
    let bytes = |n: usize| format!("{n} byte{}", if n == 1 { "" } else { "s" });
    match need {
        Some(need) => format!(
            "byte {offset}, {packet}: the input ends inside the packet: {} of its {} present, \
             the last {} missing",
            bytes(have),
            bytes(need),
            bytes(need.saturating_sub(have))
        ),
        None if have <= 1 => format!(
            "byte {offset}, {packet} fixed header: the input ends after the first byte: the \
             remaining length (1 to 4 bytes) is missing"
        ),
        None => format!(
            "byte {offset}, {packet} fixed header: the input ends inside the remaining length: \
             {} present, each with the continuation bit set, so at least one more is missing",
            bytes(have - 1)
        ),
    }
}

/// Parse hex input (see [`crate::util::hex::parse_hex`]: spaces, newlines, commas, `0x`
/// prefixes and `#` comments allowed).
pub fn parse_hex_input(input: &str) -> Result<Vec<u8>, ToolError> {
    crate::util::hex::parse_hex(input).map_err(|e| ToolError::Hex {
        position: e.position,
        message: e.message,
    })
}

/// Decode every packet of `bytes` and write it to `out`; fail on malformed or truncated input
/// (after writing the packets before it). Text: a `# packet N: bytes a..b (…)` line with the
/// packet's hex, the fields, and a `  warning:` line per [`Warning`](super::Warning). JSON:
/// one object per packet with `offset`, `length` and `warnings`.
pub fn list_packets(
    bytes: &[u8],
    opts: &ListOptions,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    if bytes.is_empty() {
        return Err(ToolError::Empty);
    }
    let text_limit = (!opts.full).then_some(SHOWN_CHARS);
    let json_limit = (!opts.full).then_some(JSON_SHOWN_BYTES);
    let mut dec = StreamDecoder::new(opts.protocol).with_max_packet_size(MAX_REMAINING_LENGTH + 5);
    dec.push(bytes);
    let mut n = 0;
    loop {
        let start = dec.stream_offset();
        let version = dec.protocol();
        match dec.next_packet()? {
            Some(p) => {
                n += 1;
                let len = dec.stream_offset() - start;
                let raw = bytes.get(start..start + len).unwrap_or_default();
                let v = p.effective_protocol(version);
                let warnings = p.warnings(v);
                if opts.json {
                    let mut j = p.to_json_with(v, json_limit);
                    if let Some(o) = j.as_object_mut() {
                        o.insert("offset".into(), start.into());
                        o.insert("length".into(), len.into());
                        let w: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
                        o.insert("warnings".into(), w.into());
                    }
                    writeln!(out, "{j}")?;
                } else {
                    if n > 1 {
                        writeln!(out)?;
                    }
                    writeln!(
                        out,
                        "# packet {n}: bytes {start}..{} ({len} bytes, MQTT {}): {}",
                        start + len,
                        v.name(),
                        packet_hex(raw, opts.full)
                    )?;
                    writeln!(out, "{}", p.describe_with(version, text_limit))?;
                    for w in &warnings {
                        writeln!(out, "  warning: {w}")?;
                    }
                }
            }
            None => {
                if dec.buffered_len() == 0 {
                    return Ok(());
                }
                return Err(truncated(bytes, start, version));
            }
        }
    }
}

/// The hex of a packet, cut after [`SHOWN_HEX_BYTES`] unless `full`.
fn packet_hex(raw: &[u8], full: bool) -> String {
    if full || raw.len() <= SHOWN_HEX_BYTES {
        return hex(raw, " ");
    }
    let shown = raw.get(..SHOWN_HEX_BYTES).unwrap_or_default();
    format!(
        "{} … {} more (--full shows all)",
        hex(shown, " "),
        raw.len() - SHOWN_HEX_BYTES
    )
}

/// The error for input ending inside the packet that starts at `start`.
fn truncated(bytes: &[u8], start: usize, version: Protocol) -> ToolError {
    let rest = bytes.get(start..).unwrap_or_default();
    let packet = rest
        .first()
        .and_then(|b| PacketType::from_u8(b >> 4))
        .unwrap_or(PacketType::Connect);
    let need = match FixedHeader::parse(rest, version) {
        Ok(Some(h)) => Some(h.packet_len()),
        _ => None,
    };
    ToolError::Truncated {
        offset: start,
        packet,
        have: rest.len(),
        need,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(hex: &str) -> Result<String, ToolError> {
        let bytes = parse_hex_input(hex)?;
        let mut out = Vec::new();
        let opts = ListOptions {
            protocol: Protocol::V311,
            json: false,
            full: false,
        };
        list_packets(&bytes, &opts, &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    // Fails on the old code, which said "byte 2, fixed header: input ends inside the packet
    // (1 of 0 bytes present)".
    #[test]
    fn truncation_says_what_is_missing() {
        let e = list("C0 00 30").unwrap_err().to_string();
        assert_eq!(
            e,
            "byte 2, PUBLISH fixed header: the input ends after the first byte: the remaining \
             length (1 to 4 bytes) is missing"
        );
        let e = list("30 80").unwrap_err().to_string();
        assert!(
            e.contains("inside the remaining length: 1 byte present"),
            "{e}"
        );
        let e = list("30 05 00 03 61").unwrap_err().to_string();
        assert_eq!(
            e,
            "byte 0, PUBLISH: the input ends inside the packet: 5 bytes of its 7 bytes \
             present, the last 2 bytes missing"
        );
        assert_eq!(list("30 05 00 03 61").unwrap_err().kind(), Exit::Usage);
    }
}
