//! The emulator's own timestamped transcript (`--log FILE`).
//!
//! One line per chunk: elapsed seconds since the emulator started, a direction from the
//! modem's point of view (`<` received from the host, `>` sent to the host, `#` a note about
//! network activity or faults), then the bytes with control characters escaped:
//!
//! ```text
//!     0.000213 < AT+CIPSEND=5\r
//!     0.000298 > AT+CIPSEND=5\r\r\n>
//!     0.001022 # connect #1 to example.com:80
//! ```
//!
//! Every line is flushed as it is written, so a failing test always shows both sides.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

pub use crate::util::escape::escape_bytes as escape;

/// Direction of a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Bytes the modem received from the host.
    FromHost,
    /// Bytes the modem sent to the host.
    ToHost,
    /// A note (network activity, faults).
    Note,
}

impl Direction {
    fn mark(self) -> char {
        match self {
            Direction::FromHost => '<',
            Direction::ToHost => '>',
            Direction::Note => '#',
        }
    }
}

/// A transcript file (or a no-op when no file was asked for).
#[derive(Debug)]
pub struct Transcript {
    file: Option<File>,
    start: Instant,
}

impl Transcript {
    /// Create (truncate) `path`, or a transcript that writes nothing when `path` is `None`.
    pub fn create(path: Option<&Path>, start: Instant) -> io::Result<Transcript> {
        let file = match path {
            Some(p) => Some(File::create(p)?),
            None => None,
        };
        Ok(Transcript { file, start })
    }

    /// Write one line for a chunk of bytes (nothing for an empty chunk). Write errors are
    /// reported once on stderr and the transcript stops.
    pub fn bytes(&mut self, dir: Direction, bytes: &[u8], at: Instant) {
        if bytes.is_empty() {
            return;
        }
        self.write_line(dir, &escape(bytes), at);
    }

    /// Write a note line.
    pub fn note(&mut self, text: &str, at: Instant) {
        self.write_line(Direction::Note, text, at);
    }

    fn write_line(&mut self, dir: Direction, text: &str, at: Instant) {
        let Some(f) = self.file.as_mut() else { return };
        let t = at.saturating_duration_since(self.start).as_secs_f64();
        let r = writeln!(f, "{t:12.6} {} {text}", dir.mark()).and_then(|()| f.flush());
        if let Err(e) = r {
            eprintln!("sim7k emulate: transcript write failed, transcript stopped: {e}");
            self.file = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_bytes() {
        assert_eq!(escape(b"AT\r\r\nOK\r\n"), "AT\\r\\r\\nOK\\r\\n");
        assert_eq!(escape(b"\x1a\x1b\x00\\x\xff"), "\\x1a\\x1b\\x00\\\\x\\xff");
        assert_eq!(escape(b"> "), "> ");
    }

    #[test]
    fn writes_lines_and_flushes() {
        let dir = std::env::temp_dir().join(format!("sim7k-tr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.log");
        let start = Instant::now();
        let mut t = Transcript::create(Some(&p), start).unwrap();
        t.bytes(Direction::FromHost, b"AT\r", start);
        t.bytes(Direction::ToHost, b"", start);
        t.bytes(Direction::ToHost, b"\r\nOK\r\n", start);
        t.note("connect #1", start);
        // Flushed: readable while the transcript is still open.
        let s = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3, "{s}");
        assert!(lines[0].ends_with(" < AT\\r"), "{s}");
        assert!(lines[1].ends_with(" > \\r\\nOK\\r\\n"), "{s}");
        assert!(lines[2].ends_with(" # connect #1"), "{s}");
        assert!(lines[0].trim_start().starts_with("0.0"), "{s}");
        drop(t);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
