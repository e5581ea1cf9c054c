//! The `SSLKEYLOGFILE`-format key log, for decrypting a capture in Wireshark. Off unless a
//! path is given; the file is created owner-only (0600) and appended to. Anyone who holds it
//! can read every session it lists, so [`super::TlsClient::warnings`] says so.
//!
//! This is the one place the TLS core writes a file while a connection runs: Wireshark
//! reads the log live, so each line is written when rustls derives the secret.

use crate::util::hex::hex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::TlsConfigError;

/// Appends `LABEL <client_random> <secret>` lines (NSS key log format).
pub(super) struct KeyLogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl std::fmt::Debug for KeyLogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyLogFile {
    /// Open (create, owner-only) `path` for appending.
    pub(super) fn open(path: &Path) -> Result<KeyLogFile, TlsConfigError> {
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(|e| TlsConfigError::File {
            what: "key log",
            path: path.to_path_buf(),
            reason: format!("cannot open it for appending: {e}"),
        })?;
        Ok(KeyLogFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!(
            "{label} {} {}\n",
            hex(client_random, "").to_ascii_lowercase(),
            hex(secret, "").to_ascii_lowercase()
        );
        let mut file = match self.file.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A key log is a debugging aid: a failed write must not fail the connection.
        let _ = file.write_all(line.as_bytes());
    }
}
