//! The transcript: every byte in and out, timestamped, control bytes escaped, secrets
//! redacted. Written to a file (`--transcript FILE`, `--transcript-dir DIR`) as the run goes,
//! and kept as a short tail in memory for error messages.
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
//! ASCII are written `\r`, `\n`, `\t`, `\xNN`; a backslash is `\\`. Notes are text from the
//! recipe, scripts and the modem: control characters in them are escaped the same way
//! ([`crate::util::escape::escape_text`]), so an entry is always one line.
//!
//! **Streaming.** Entries go through a buffered writer that is flushed to the file at every
//! note (step boundaries, verdicts), at every step end with an `fsync`
//! ([`Transcript::checkpoint`]), and whenever an entry has waited [`FLUSH_WITHIN`]: the check
//! runs on every write and in [`Transcript::tick`], which the driver calls from its read loop
//! (waiting no longer than [`Transcript::next_flush`]). A `kill -9` or a power cut loses at
//! most the last fraction of a second. Received bytes are gathered up to a line end before
//! they are written, or until they have waited [`FLUSH_WITHIN`].
//!
//! **Secrets.** Written and noted text is redacted whole; received bytes pass through a
//! [`StreamRedactor`], so a secret the modem sends in pieces (dripped, or cut by the flush
//! deadline) is still caught: bytes that may begin a secret wait for the next received bytes.
//! sim7k's own writes are whole commands and whole data chunks, and the engine never splits
//! a secret between two chunks (see [`crate::engine::DataPlan::secrets`]). A step that
//! captures a secret holds its entries back ([`Transcript::hold`]) until the value is known
//! ([`Transcript::release`]), then writes them redacted.
//!
//! **Errors.** The first write or `fsync` error is kept ([`Transcript::error`]) and nothing
//! more is written to the file; the driver ends the run with exit 4 naming the file.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::output::WriteError;
use crate::redact::{Secrets, StreamRedactor};
use crate::util::escape::{SHOWN_CHARS, escape_bytes, escape_text, shorten};

/// Lines kept for error messages.
pub const TAIL_LINES: usize = 12;

/// Longest time an entry waits in memory before it is written to the file.
pub const FLUSH_WITHIN: Duration = Duration::from_millis(200);

/// Received bytes without a line end are written once this many are gathered.
const RX_LINE_MAX: usize = 4096;

pub use crate::recipe::vars::{REDACTED, redact_bytes};

/// The file side of a transcript.
struct Sink {
    writer: BufWriter<File>,
    path: PathBuf,
    /// Written but not yet flushed since then.
    dirty_since: Option<Instant>,
}

/// An entry kept back by [`Transcript::hold`].
struct Held {
    stamp: String,
    dir: char,
    bytes: Vec<u8>,
}

/// A transcript of one modem conversation.
pub struct Transcript {
    sink: Option<Sink>,
    start: Instant,
    secrets: Secrets,
    rx_redactor: StreamRedactor,
    pending_rx: Vec<u8>,
    /// When the first byte of `pending_rx` arrived.
    pending_since: Option<Instant>,
    tail: VecDeque<String>,
    error: Option<WriteError>,
    /// Entries kept back until [`Transcript::release`].
    held: Option<Vec<Held>>,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Transcript")
            .field("path", &self.sink.as_ref().map(|s| &s.path))
            .field("tail", &self.tail)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Transcript {
    /// A transcript kept in memory only (for the error tail).
    pub fn memory(start: Instant) -> Transcript {
        Transcript {
            sink: None,
            start,
            secrets: Secrets::new(),
            rx_redactor: StreamRedactor::new(),
            pending_rx: Vec::new(),
            pending_since: None,
            tail: VecDeque::new(),
            error: None,
            held: None,
        }
    }

    /// A transcript written to `path` as the run goes: a regular file is created (with its
    /// directories) or truncated, through a symlink to its target; a character device or a
    /// FIFO with a reader is written as it is (see [`crate::output::open_stream`]).
    pub fn create(path: &Path, start: Instant) -> io::Result<Transcript> {
        let file = crate::output::open_stream(path)?;
        let mut t = Transcript::memory(start);
        t.sink = Some(Sink {
            writer: BufWriter::new(file),
            path: path.to_path_buf(),
            dirty_since: None,
        });
        Ok(t)
    }

    /// The file written, if any.
    pub fn path(&self) -> Option<&Path> {
        match (&self.sink, &self.error) {
            (Some(s), _) => Some(&s.path),
            (None, Some(e)) => Some(&e.path),
            (None, None) => None,
        }
    }

    /// The first write or `fsync` error on the file; once set, nothing more is written to
    /// it (the tail in memory goes on). The run that owns the transcript must not pass.
    pub fn error(&self) -> Option<&WriteError> {
        self.error.as_ref()
    }

    /// Set the secrets to redact: a [`Secrets`], or its forms
    /// ([`crate::recipe::vars::Vars::secret_forms`]).
    pub fn set_secrets(&mut self, secrets: impl Into<Secrets>) {
        self.secrets = secrets.into();
    }

    /// Keep entries back instead of writing them: a step that captures a secret (an
    /// ICCID, a token) holds its traffic until the captured value is known as a secret.
    pub fn hold(&mut self) {
        self.write_pending_rx(Instant::now());
        self.held.get_or_insert_with(Vec::new);
    }

    /// Write the entries held back, redacted with the secrets known now.
    pub fn release(&mut self) {
        let now = Instant::now();
        if self.held.is_none() {
            return;
        }
        // Bytes received while holding are part of what is released.
        self.write_pending_rx(now);
        for h in self.held.take().unwrap_or_default() {
            self.write_entry(&h.stamp, h.dir, &h.bytes, now);
        }
        self.flush_file();
    }

    /// Record bytes written to the modem.
    pub fn tx(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        self.write_pending_rx(now);
        self.entry('>', bytes, now);
    }

    /// Record bytes received from the modem.
    pub fn rx(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let now = Instant::now();
        if self.pending_rx.is_empty() {
            self.pending_since = Some(now);
        }
        self.pending_rx.extend_from_slice(bytes);
        // Write out everything up to the last line end; keep a partial line pending.
        if let Some(pos) = self.pending_rx.iter().rposition(|b| *b == b'\n') {
            let rest = self.pending_rx.split_off(pos + 1);
            let done = std::mem::replace(&mut self.pending_rx, rest);
            self.pending_since = (!self.pending_rx.is_empty()).then_some(now);
            self.entry('<', &done, now);
        } else if self.pending_rx.len() > RX_LINE_MAX {
            self.write_pending_rx(now);
        }
        self.tick(now);
    }

    /// Record a note (step boundaries, verdicts, `say:` lines); written to the file at once.
    pub fn note(&mut self, text: &str) {
        let now = Instant::now();
        self.write_pending_rx(now);
        self.entry('#', text.as_bytes(), now);
        if self.held.is_none() {
            self.flush_file();
        }
    }

    /// A step ended: write every entry not held back (a partial received line too) and make
    /// the file durable (`fsync`).
    pub fn checkpoint(&mut self) {
        let now = Instant::now();
        if self.held.is_some() {
            return;
        }
        self.write_pending_rx(now);
        self.flush_rx_redactor(now);
        self.flush_file();
        if let Some(sink) = self.sink.as_mut()
            && let Err(e) = crate::output::sync(sink.writer.get_ref())
        {
            self.fail(&e);
        }
    }

    /// Called from the driver's read loop: write received bytes that have waited
    /// [`FLUSH_WITHIN`] without a line end, and flush the file when an entry has waited that
    /// long.
    pub fn tick(&mut self, now: Instant) {
        if self.held.is_some() {
            return;
        }
        if self
            .pending_since
            .is_some_and(|t| now.saturating_duration_since(t) >= FLUSH_WITHIN)
        {
            // These bytes have waited long enough: out to the file with them.
            self.write_pending_rx(now);
            self.flush_file();
        }
        if self
            .sink
            .as_ref()
            .and_then(|s| s.dirty_since)
            .is_some_and(|t| now.saturating_duration_since(t) >= FLUSH_WITHIN)
        {
            self.flush_file();
        }
    }

    /// When [`Transcript::tick`] has something to do: the driver waits no longer than this.
    /// `None` when nothing waits.
    pub fn next_flush(&self) -> Option<Instant> {
        if self.held.is_some() || self.sink.is_none() {
            return None;
        }
        let dirty = self.sink.as_ref().and_then(|s| s.dirty_since);
        [self.pending_since, dirty]
            .into_iter()
            .flatten()
            .min()
            .map(|t| crate::util::time::later(t, FLUSH_WITHIN))
    }

    /// The last lines written (escaped, redacted, each shortened to
    /// [`SHOWN_CHARS`] characters), oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// The end of the run: write everything (held entries too), flush and `fsync`. Returns
    /// the first write error of the whole transcript, if any.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.release();
        self.checkpoint();
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn write_pending_rx(&mut self, now: Instant) {
        if !self.pending_rx.is_empty() {
            let done = std::mem::take(&mut self.pending_rx);
            self.pending_since = None;
            self.entry('<', &done, now);
        }
    }

    /// Bytes the redactor keeps back as a possible start of a secret: written (redacted
    /// whole) as their own entry.
    fn flush_rx_redactor(&mut self, now: Instant) {
        if self.rx_redactor.holding() {
            let rest = self.rx_redactor.flush(&self.secrets);
            let stamp = self.stamp();
            self.write_line(&stamp, '<', &escape_bytes(&rest), now);
        }
    }

    fn stamp(&self) -> String {
        format!("{:>8.3}", self.start.elapsed().as_secs_f64())
    }

    fn entry(&mut self, dir: char, bytes: &[u8], now: Instant) {
        let stamp = self.stamp();
        match self.held.as_mut() {
            Some(held) => held.push(Held {
                stamp,
                dir,
                bytes: bytes.to_vec(),
            }),
            None => self.write_entry(&stamp, dir, bytes, now),
        }
    }

    fn write_entry(&mut self, stamp: &str, dir: char, bytes: &[u8], now: Instant) {
        let body = match dir {
            '#' => escape_text(&self.secrets.redact_str(&String::from_utf8_lossy(bytes))),
            '<' => {
                let out = self.rx_redactor.push(&self.secrets, bytes);
                if out.is_empty() {
                    // All of it may begin a secret: it waits for the next bytes.
                    return;
                }
                escape_bytes(&out)
            }
            _ => escape_bytes(&self.secrets.redact(bytes)),
        };
        self.write_line(stamp, dir, &body, now);
    }

    fn write_line(&mut self, stamp: &str, dir: char, body: &str, now: Instant) {
        if dir != '#' {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(format!(
                "{} {dir} {}",
                stamp.trim_start(),
                shorten(body, SHOWN_CHARS)
            ));
        }
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let result = writeln!(sink.writer, "{stamp} {dir} {body}");
        if let Err(e) = result {
            self.fail(&e);
            return;
        }
        let due = match sink.dirty_since {
            None => {
                sink.dirty_since = Some(now);
                false
            }
            Some(t) => now.saturating_duration_since(t) >= FLUSH_WITHIN,
        };
        if due {
            self.flush_file();
        }
    }

    fn flush_file(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if sink.dirty_since.take().is_some()
            && let Err(e) = sink.writer.flush()
        {
            self.fail(&e);
        }
    }

    /// Keep the first error; stop writing to the file (what is buffered is dropped).
    fn fail(&mut self, e: &io::Error) {
        if let Some(sink) = self.sink.take() {
            self.error
                .get_or_insert_with(|| WriteError::new("transcript", &sink.path, e));
            // Drop the buffer without writing it again: a full disk would fail again.
            let (_file, _unwritten) = sink.writer.into_parts();
        }
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests;
