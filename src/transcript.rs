//! The transcript: every byte in and out, timestamped, control bytes escaped, secrets
//! redacted. Written to a file (`--transcript FILE`) and kept as a short tail in memory for
//! error messages.
//!
//! Format, one entry per line:
//!
//! ```text
//!    0.012 > AT+CSQ\r
//!    0.020 < AT+CSQ\r\r\n+CSQ: 24,99\r\n\r\nOK\r\n
//!    0.020 # step 3 `signal` passed
//! ```
//!
//! `>` is what sim7k wrote, `<` what the modem sent, `#` a note. Bytes outside printable
//! ASCII are written `\r`, `\n`, `\t`, `\xNN`; a backslash is `\\`. Received bytes are
//! gathered up to a line end before they are written, so a secret echoed back one byte at
//! a time is still redacted.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use crate::util::escape::escape_bytes as escape;

/// Lines kept for error messages.
pub const TAIL_LINES: usize = 12;

pub use crate::recipe::vars::{REDACTED, redact_bytes};

/// A transcript of one modem conversation.
pub struct Transcript {
    file: Option<BufWriter<File>>,
    start: Instant,
    secrets: Vec<Vec<u8>>,
    pending_rx: Vec<u8>,
    tail: VecDeque<String>,
    error: Option<io::Error>,
    /// Entries kept back (stamp, direction, bytes) until [`Transcript::release`].
    held: Option<Vec<(String, char, Vec<u8>)>>,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("file", &self.file.is_some())
            .field("tail", &self.tail)
            .finish()
    }
}

impl Transcript {
    /// A transcript kept in memory only (for the error tail).
    pub fn memory(start: Instant) -> Transcript {
        Transcript {
            file: None,
            start,
            secrets: Vec::new(),
            pending_rx: Vec::new(),
            tail: VecDeque::new(),
            error: None,
            held: None,
        }
    }

    /// Keep entries back instead of writing them: a step that captures a secret (an
    /// ICCID, a token) holds its traffic until the captured value is known as a secret.
    pub fn hold(&mut self) {
        self.flush_rx();
        self.held.get_or_insert_with(Vec::new);
    }

    /// Write the entries held back, redacted with the secrets known now.
    pub fn release(&mut self) {
        self.flush_rx();
        if let Some(held) = self.held.take() {
            for (stamp, dir, bytes) in held {
                self.write_entry(&stamp, dir, &bytes);
            }
        }
    }

    /// A transcript written to `path` (created or truncated).
    pub fn create(path: &Path, start: Instant) -> io::Result<Transcript> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(path)?;
        let mut t = Transcript::memory(start);
        t.file = Some(BufWriter::new(file));
        Ok(t)
    }

    /// Set the forms of the secrets to redact (see
    /// [`crate::recipe::vars::Vars::secret_forms`]: raw bytes and hex forms, longest first).
    pub fn set_secrets(&mut self, forms: Vec<Vec<u8>>) {
        self.secrets = forms;
    }

    /// Record bytes written to the modem.
    pub fn tx(&mut self, bytes: &[u8]) {
        self.flush_rx();
        self.entry('>', bytes);
    }

    /// Record bytes received from the modem.
    pub fn rx(&mut self, bytes: &[u8]) {
        self.pending_rx.extend_from_slice(bytes);
        // Write out everything up to the last line end; keep a partial line pending.
        if let Some(pos) = self.pending_rx.iter().rposition(|b| *b == b'\n') {
            let rest = self.pending_rx.split_off(pos + 1);
            let done = std::mem::replace(&mut self.pending_rx, rest);
            self.entry('<', &done);
        } else if self.pending_rx.len() > 4096 {
            let done = std::mem::take(&mut self.pending_rx);
            self.entry('<', &done);
        }
    }

    /// Record a note (step boundaries, verdicts).
    pub fn note(&mut self, text: &str) {
        self.flush_rx();
        let stamp = self.stamp();
        match self.held.as_mut() {
            Some(held) => held.push((stamp, '#', text.as_bytes().to_vec())),
            None => self.write_entry(&stamp, '#', text.as_bytes()),
        }
    }

    /// The last lines written (escaped and redacted), oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// Write out pending bytes and flush the file. Returns the first write error, if any.
    pub fn flush(&mut self) -> io::Result<()> {
        self.release();
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush()
        {
            self.error.get_or_insert(e);
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn flush_rx(&mut self) {
        if !self.pending_rx.is_empty() {
            let done = std::mem::take(&mut self.pending_rx);
            self.entry('<', &done);
        }
    }

    fn stamp(&self) -> String {
        format!("{:>8.3}", self.start.elapsed().as_secs_f64())
    }

    fn entry(&mut self, dir: char, bytes: &[u8]) {
        let stamp = self.stamp();
        match self.held.as_mut() {
            Some(held) => held.push((stamp, dir, bytes.to_vec())),
            None => self.write_entry(&stamp, dir, bytes),
        }
    }

    fn write_entry(&mut self, stamp: &str, dir: char, bytes: &[u8]) {
        let redacted = self.redact(bytes);
        if dir == '#' {
            let line = format!("{stamp} # {}", String::from_utf8_lossy(&redacted));
            self.write_line(&line, false);
        } else {
            let line = format!("{stamp} {dir} {}", escape(&redacted));
            self.write_line(&line, true);
        }
    }

    fn write_line(&mut self, line: &str, keep: bool) {
        if keep {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line.trim_start().to_string());
        }
        if let Some(f) = self.file.as_mut()
            && let Err(e) = writeln!(f, "{line}")
        {
            self.error.get_or_insert(e);
        }
    }

    fn redact(&self, bytes: &[u8]) -> Vec<u8> {
        redact_bytes(bytes, &self.secrets)
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_raw_and_hex_forms_even_when_dripped() {
        let dir = std::env::temp_dir().join(format!("sim7k-transcript-{}", std::process::id()));
        let path = dir.join("t.log");
        let mut t = Transcript::create(&path, Instant::now()).unwrap();
        let mut vars = crate::recipe::vars::Vars::new(Default::default());
        vars.set(
            "pw",
            crate::recipe::vars::VarValue::Text("hunter2".into()),
            true,
        );
        t.set_secrets(vars.secret_forms());
        t.tx(b"AT+CSTT=\"nbiot\",\"user\",\"hunter2\"\r");
        for b in b"AT+CSTT=\"nbiot\",\"user\",\"hunter2\"\r\r\nOK\r\n" {
            t.rx(&[*b]);
        }
        t.tx(b"00 07 68 75 6E 74 65 72 32 1A");
        t.note("password is hunter2");
        t.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("68 75 6E 74 65 72 32"), "{text}");
        assert_eq!(text.matches("***").count(), 4, "{text}");
        assert!(t.tail().iter().any(|l| l.contains("< AT+CSTT")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
