//! The bytes a data send carried: what sim7k typed after the `> ` prompt of `AT+CIPSEND`,
//! read the way the SIM7000 reads it (see `src/emulator/modem`'s payload input):
//!
//! * binary, fixed length (`AT+CIPSEND=<n>`): the next `n` bytes;
//! * binary, variable length (`AT+CIPSEND`): bytes up to Ctrl-Z (0x1A sends, ESC cancels);
//! * hex mode (`AT+CIPSENDHEX=1`): hex text, spaces and line ends ignored; with `AT+CIPSEND`
//!   the pair `1A` (or a raw Ctrl-Z) ends it.
//!
//! A transcript shows a secret as `***` (see [`crate::redact`]), so the written bytes may be
//! shorter or longer than what went to the modem. Each `***` becomes a [`Hole`]; its length
//! is known when the send announced its length and holds one hole, and otherwise left for the
//! MQTT layer to work out (see `stream.rs`).

use crate::redact::REDACTED;

/// Bytes a transcript hid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hole {
    /// Position in [`Chunk::bytes`] where the hidden bytes were.
    pub at: usize,
    /// How many bytes were hidden, when the send's length says so.
    pub len: Option<usize>,
    /// The `***` may be the data itself (a binary send whose length is not announced).
    pub maybe_literal: bool,
}

/// The payload of one completed send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Chunk {
    /// The bytes, without the `***` markers of the holes.
    pub bytes: Vec<u8>,
    /// Redacted spans, in order.
    pub holes: Vec<Hole>,
    /// The bytes contain `***` that were taken as data (lengths agreed): it may be a
    /// redacted secret of exactly three bytes.
    pub marker_in_data: bool,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The modem took these bytes.
    Sent(Chunk),
    /// ESC: nothing was sent.
    Cancelled,
}

/// A send in progress.
#[derive(Debug)]
pub(crate) struct Send {
    /// Connection (0 without `AT+CIPMUX=1`).
    pub link: u8,
    /// TCP data (`AT+CIPSEND`), as opposed to other prompting commands (`AT+SMPUB`, SMS).
    pub tcp: bool,
    /// The prompt arrived: what is written now is the payload.
    pub prompted: bool,
    want: Option<usize>,
    hex: bool,
    written: Vec<u8>,
    buf: Vec<u8>,
    nibble: Option<u8>,
    holes: Vec<Hole>,
    stars: usize,
}

impl Send {
    /// A send announced by a prompting command: `want` bytes (`None`: up to Ctrl-Z), in hex
    /// mode or not.
    pub(crate) fn new(link: u8, tcp: bool, want: Option<usize>, hex: bool) -> Send {
        Send {
            link,
            tcp,
            prompted: false,
            want,
            hex,
            written: Vec::new(),
            buf: Vec::new(),
            nibble: None,
            holes: Vec::new(),
            stars: 0,
        }
    }

    /// Feed one transcript entry of written bytes. `Some` when the send is complete.
    pub(crate) fn feed(&mut self, entry: &[u8]) -> Option<Outcome> {
        self.written.extend_from_slice(entry);
        match (self.hex, self.want) {
            (false, Some(want)) => self.fixed_binary(want),
            _ => self.scan(entry),
        }
    }

    /// The modem ended the send early: the bytes written so far, with the connection.
    pub(crate) fn into_chunk(self) -> Option<(u8, Chunk)> {
        if self.written.is_empty() {
            return None;
        }
        let bytes = if self.hex || self.want.is_none() {
            self.buf
        } else {
            self.written
        };
        let marker_in_data = bytes
            .windows(REDACTED.len())
            .any(|w| w == REDACTED.as_bytes());
        Some((
            self.link,
            Chunk {
                bytes,
                holes: self.holes,
                marker_in_data,
            },
        ))
    }

    /// Bytes written after the prompt so far (what a modem with echo on sends back).
    pub(crate) fn written(&self) -> &[u8] {
        &self.written
    }

    /// Binary with an announced length: decided per entry, since a redaction changes the
    /// length (sim7k writes a chunk in one write).
    fn fixed_binary(&mut self, want: usize) -> Option<Outcome> {
        let have = self.written.len();
        let marker = REDACTED.as_bytes();
        let found: Vec<usize> = find_all(&self.written, marker);
        if have == want {
            let chunk = Chunk {
                marker_in_data: !found.is_empty(),
                bytes: std::mem::take(&mut self.written),
                holes: Vec::new(),
            };
            return Some(Outcome::Sent(chunk));
        }
        if found.is_empty() {
            if have < want {
                return None; // more follows in the next entry
            }
            let mut bytes = std::mem::take(&mut self.written);
            bytes.truncate(want);
            return Some(Outcome::Sent(Chunk {
                bytes,
                ..Chunk::default()
            }));
        }
        // Redacted: the marker stands for `want - (have - 3k)` bytes in all.
        let k = found.len();
        let hidden = (want + k * marker.len()).checked_sub(have);
        let mut bytes = Vec::with_capacity(have);
        let mut holes = Vec::with_capacity(k);
        let mut from = 0;
        for &at in &found {
            bytes.extend_from_slice(self.written.get(from..at).unwrap_or_default());
            holes.push(Hole {
                at: bytes.len(),
                len: if k == 1 {
                    hidden.filter(|n| *n > 0)
                } else {
                    None
                },
                maybe_literal: false,
            });
            from = at + marker.len();
        }
        bytes.extend_from_slice(self.written.get(from..).unwrap_or_default());
        self.written.clear();
        Some(Outcome::Sent(Chunk {
            bytes,
            holes,
            marker_in_data: false,
        }))
    }

    /// Byte by byte: variable-length binary, or hex text.
    fn scan(&mut self, entry: &[u8]) -> Option<Outcome> {
        let variable = self.want.is_none();
        for &b in entry {
            if b == b'*' {
                self.stars += 1;
                if self.stars == REDACTED.len() {
                    self.stars = 0;
                    self.holes.push(Hole {
                        at: self.buf.len(),
                        len: None,
                        maybe_literal: !self.hex,
                    });
                }
                continue;
            }
            // A lone `*` or `**` is data (binary) or a stray character (hex).
            if !self.hex {
                self.buf.extend(std::iter::repeat_n(b'*', self.stars));
            }
            self.stars = 0;
            if variable && b == 0x1A {
                return Some(self.complete());
            }
            if variable && b == 0x1B {
                return Some(Outcome::Cancelled);
            }
            if !self.hex {
                self.buf.push(b);
            } else if let Some(v) = (b as char).to_digit(16) {
                let v = v as u8;
                match self.nibble.take() {
                    None => self.nibble = Some(v),
                    Some(hi) => {
                        let byte = (hi << 4) | v;
                        if variable && byte == 0x1A {
                            return Some(self.complete());
                        }
                        self.buf.push(byte);
                    }
                }
            }
            if self.holes.is_empty() && self.want.is_some_and(|w| self.buf.len() >= w) {
                return Some(self.complete());
            }
        }
        // A fixed-length hex send with a hole: its length is what the hole leaves over.
        if let Some(w) = self.want
            && !self.holes.is_empty()
        {
            return Some(self.complete_with(w));
        }
        None
    }

    fn complete(&mut self) -> Outcome {
        if self.stars > 0 && !self.hex {
            self.buf.extend(std::iter::repeat_n(b'*', self.stars));
        }
        Outcome::Sent(Chunk {
            bytes: std::mem::take(&mut self.buf),
            holes: std::mem::take(&mut self.holes),
            marker_in_data: false,
        })
    }

    fn complete_with(&mut self, want: usize) -> Outcome {
        if let [hole] = self.holes.as_mut_slice() {
            hole.len = want.checked_sub(self.buf.len()).filter(|n| *n > 0);
        }
        self.complete()
    }
}

/// Start offsets of the non-overlapping occurrences of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if hay.get(i..i + needle.len()) == Some(needle) {
            out.push(i);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(o: Option<Outcome>) -> Chunk {
        match o {
            Some(Outcome::Sent(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fixed_binary_takes_the_announced_bytes() {
        let mut s = Send::new(0, true, Some(4), false);
        assert_eq!(s.feed(b"\xe0\x00"), None);
        let c = sent(s.feed(b"\xc0\x00"));
        assert_eq!(c.bytes, b"\xe0\x00\xc0\x00");
        assert!(c.holes.is_empty());
    }

    #[test]
    fn fixed_binary_with_one_redaction_knows_its_length() {
        // 10 bytes announced, the secret `hunter2` (7 bytes) written as `***`.
        let mut s = Send::new(0, true, Some(10), false);
        let c = sent(s.feed(b"ab***c"));
        assert_eq!(c.bytes, b"abc");
        assert_eq!(
            c.holes,
            vec![Hole {
                at: 2,
                len: Some(7),
                maybe_literal: false
            }]
        );
        // A two-byte secret makes the written entry longer than announced.
        let mut s = Send::new(0, true, Some(4), false);
        let c = sent(s.feed(b"a***bc"));
        assert_eq!(c.holes[0].len, Some(1));
    }

    #[test]
    fn variable_binary_ends_at_ctrl_z_and_cancels_at_esc() {
        let mut s = Send::new(0, true, None, false);
        assert_eq!(s.feed(b"\x10\x02"), None);
        let c = sent(s.feed(b"\x00\x00\x1a"));
        assert_eq!(c.bytes, b"\x10\x02\x00\x00");
        let mut s = Send::new(0, true, None, false);
        assert_eq!(s.feed(b"abc\x1b"), Some(Outcome::Cancelled));
    }

    #[test]
    fn hex_mode_reads_pairs_until_1a() {
        let mut s = Send::new(0, true, None, true);
        let c = sent(s.feed(b"10 02 00 3C\r\n1A"));
        assert_eq!(c.bytes, vec![0x10, 0x02, 0x00, 0x3C]);
        let mut s = Send::new(0, true, None, true);
        let c = sent(s.feed(b"E0 00 *** 1A"));
        assert_eq!(c.bytes, vec![0xE0, 0x00]);
        assert_eq!(c.holes.len(), 1);
        assert_eq!(c.holes[0].len, None);
        // Fixed-length hex: the hole is what is missing.
        let mut s = Send::new(0, true, Some(5), true);
        let c = sent(s.feed(b"E0 00 ***"));
        assert_eq!(c.holes[0].len, Some(3));
    }
}
