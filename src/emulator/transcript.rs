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
//!
//! The run's secrets (a CONNECT password, an API key) never reach the file: each direction's
//! bytes go through a [`StreamRedactor`], which also catches a secret split across two
//! chunks and its hex and base64 forms (see [`crate::redact`]), and notes are redacted whole.
//! Bytes that may be the start of a secret wait for the next chunk of the same direction (or
//! the end of the transcript) before they are written.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use crate::redact::{Secrets, StreamRedactor};

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
pub struct Transcript {
    file: Option<File>,
    start: Instant,
    secrets: Secrets,
    from_host: StreamRedactor,
    to_host: StreamRedactor,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Transcript")
            .field("file", &self.file)
            .field("secrets", &self.secrets.forms().len())
            .finish_non_exhaustive()
    }
}

impl Transcript {
    /// Create (truncate) `path`, or a transcript that writes nothing when `path` is `None`.
    /// Every form of `secrets` is replaced by `***` in what is written.
    pub fn create(path: Option<&Path>, start: Instant, secrets: Secrets) -> io::Result<Transcript> {
        let file = match path {
            Some(p) => Some(File::create(p)?),
            None => None,
        };
        Ok(Transcript {
            file,
            start,
            secrets,
            from_host: StreamRedactor::new(),
            to_host: StreamRedactor::new(),
        })
    }

    /// Write one line for a chunk of bytes (nothing for an empty chunk, or while every byte
    /// of it may still be the start of a secret). Write errors are reported once on stderr
    /// and the transcript stops.
    pub fn bytes(&mut self, dir: Direction, bytes: &[u8], at: Instant) {
        if bytes.is_empty() {
            return;
        }
        let redactor = match dir {
            Direction::FromHost => &mut self.from_host,
            Direction::ToHost => &mut self.to_host,
            Direction::Note => {
                let text = String::from_utf8_lossy(bytes).into_owned();
                self.note(&text, at);
                return;
            }
        };
        let shown = redactor.push(&self.secrets, bytes);
        if !shown.is_empty() {
            self.write_line(dir, &escape(&shown), at);
        }
    }

    /// Write a note line (secrets redacted).
    pub fn note(&mut self, text: &str, at: Instant) {
        let text = self.secrets.redact_str(text).into_owned();
        self.write_line(Direction::Note, &text, at);
    }

    /// Write the bytes still held back (redacted), as at the end of the transcript.
    pub fn flush(&mut self, at: Instant) {
        let held = [
            (Direction::FromHost, self.from_host.flush(&self.secrets)),
            (Direction::ToHost, self.to_host.flush(&self.secrets)),
        ];
        for (dir, b) in held {
            if !b.is_empty() {
                self.write_line(dir, &escape(&b), at);
            }
        }
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

impl Drop for Transcript {
    fn drop(&mut self) {
        self.flush(Instant::now());
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
        let mut t = Transcript::create(Some(&p), start, Secrets::new()).unwrap();
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

    #[test]
    fn secrets_are_redacted_across_chunks_in_both_directions_and_in_notes() {
        let dir = std::env::temp_dir().join(format!("sim7k-tr-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.log");
        let start = Instant::now();
        let secrets = Secrets::from_values(["S3cr3t-XYZ"]);
        let mut t = Transcript::create(Some(&p), start, secrets).unwrap();
        t.bytes(Direction::FromHost, b"AT+SMCONF=\"PASSWORD\",\"S3cr", start);
        // The other direction in between does not release the held bytes.
        t.bytes(Direction::ToHost, b"AT+SMCONF=\"PASSWORD\",\"S3c", start);
        t.bytes(Direction::FromHost, b"3t-XYZ\"\r", start);
        for b in b"r3t-XYZ\"\r" {
            t.bytes(Direction::ToHost, &[*b], start);
        }
        t.bytes(
            Direction::FromHost,
            b"53 33 63 72 33 74 2D 58 59 5A 1A",
            start,
        );
        t.note("fault: ERROR for SMCONF=\"PASSWORD\",\"S3cr3t-XYZ\"", start);
        // Held at the end (could be the start of the secret): written when the file ends.
        t.bytes(Direction::ToHost, b"\r\nOK\r\nS3", start);
        drop(t);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(!s.contains("S3cr3t"), "{s}");
        assert!(!s.contains("53 33 63 72"), "{s}");
        assert!(s.contains(" < ***\"\\r\n"), "{s}");
        assert!(s.contains(" > ***\n"), "{s}");
        assert!(s.contains("< *** 1A"), "{s}");
        assert!(
            s.contains("# fault: ERROR for SMCONF=\"PASSWORD\",\"***\""),
            "{s}"
        );
        assert!(
            s.trim_end().ends_with("S3"),
            "held bytes written at the end: {s}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
