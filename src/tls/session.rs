//! Session resumption: what can be kept in the process, and what can be kept in a file.
//!
//! rustls 0.23 keeps TLS 1.3 tickets and TLS 1.2 sessions in opaque values
//! (`Tls13ClientSessionValue`, `Tls12ClientSessionValue`) with private fields, no public
//! constructor and no encoding: a custom `ClientSessionStore` can hold them but cannot write
//! them to disk or read them back (rustls issue #2287 "Barriers to implementing persistent
//! `ClientSessionStore`"; requests #3051 and #3103 were closed unmerged). A resumed session is
//! also tied to the very `ServerCertVerifier` and client-certificate resolver objects that
//! made it (rustls compares the pointers), so a session survives only as long as the
//! [`TlsClient`](super::TlsClient) that made it.
//!
//! So [`SessionStore`] does two things:
//! * tickets and session ids live **in the process**, in rustls' own memory cache, and every
//!   connection made from the same `TlsClient` (a reconnect within a run, every device of a
//!   fleet sharing one client) resumes;
//! * the **key-exchange group** each server chose is the one thing rustls lets a client
//!   persist (`NamedGroup` is a public number). It is written to the session cache file, so
//!   the next run sends a key share the server accepts and skips a HelloRetryRequest round
//!   trip (a second ClientHello) with servers that do not take X25519. The file holds no
//!   secret.

use rustls::client::{ClientSessionMemoryCache, ClientSessionStore};
use rustls::{NamedGroup, client::Tls12ClientSessionValue, client::Tls13ClientSessionValue};
use rustls_pki_types::ServerName;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::TlsConfigError;

/// The first line of a session cache file.
const HEADER: &str =
    "# sim7k TLS session cache: the key-exchange group each server chose (no secrets)";
/// Servers remembered in memory (rustls' cache size) and in the file.
const MAX_SERVERS: usize = 256;

/// rustls' in-memory session cache plus key-exchange hints that can be saved to a file.
#[derive(Debug)]
pub struct SessionStore {
    memory: Option<ClientSessionMemoryCache>,
    hints: Mutex<BTreeMap<String, u16>>,
    file: Option<PathBuf>,
    changed: AtomicBool,
}

impl SessionStore {
    /// A store; `resume` false keeps no tickets (every handshake is full), `file` names the
    /// cache file whose hints are loaded now (a missing file is an empty cache).
    pub fn new(resume: bool, file: Option<&Path>) -> Result<SessionStore, TlsConfigError> {
        let hints = match file {
            Some(path) => load_hints(path)?,
            None => BTreeMap::new(),
        };
        Ok(SessionStore {
            memory: resume.then(|| ClientSessionMemoryCache::new(MAX_SERVERS)),
            hints: Mutex::new(hints),
            file: file.map(Path::to_path_buf),
            changed: AtomicBool::new(false),
        })
    }

    /// The cache file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The remembered key-exchange group for `server` (its IANA number), if any.
    pub fn kx_hint_for(&self, server: &str) -> Option<u16> {
        self.hints.lock().ok()?.get(server).copied()
    }

    /// Write the hints to the cache file when they changed (atomically: a temporary file
    /// renamed over the old one). Does nothing without a file.
    pub fn save(&self) -> Result<(), TlsConfigError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        if !self.changed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let hints = match self.hints.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut text = format!("{HEADER}\n");
        for (server, group) in &hints {
            text.push_str(&format!("kx {server} {group}\n"));
        }
        let err = |e: std::io::Error| TlsConfigError::File {
            what: "session cache",
            path: path.clone(),
            reason: format!("cannot write it: {e}"),
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(err)?;
        self.changed.store(false, Ordering::SeqCst);
        Ok(())
    }
}

fn load_hints(path: &Path) -> Result<BTreeMap<String, u16>, TlsConfigError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(TlsConfigError::File {
                what: "session cache",
                path: path.to_path_buf(),
                reason: format!("cannot read it: {e} (delete it, or fix its permissions)"),
            });
        }
    };
    // A cache is an optimisation: lines that do not parse are skipped, never fatal.
    let mut hints = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("kx"), Some(server), Some(group), None) =
            (words.next(), words.next(), words.next(), words.next())
            && let Ok(group) = group.parse::<u16>()
            && hints.len() < MAX_SERVERS
        {
            hints.insert(server.to_string(), group);
        }
    }
    Ok(hints)
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        let key = server_name.to_str().into_owned();
        let value = u16::from(group);
        if let Ok(mut hints) = self.hints.lock()
            && hints.get(&key) != Some(&value)
            && (hints.len() < MAX_SERVERS || hints.contains_key(&key))
        {
            hints.insert(key, value);
            self.changed.store(true, Ordering::SeqCst);
        }
        if let Some(m) = &self.memory {
            m.set_kx_hint(server_name, group);
        }
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.hints
            .lock()
            .ok()?
            .get(server_name.to_str().as_ref())
            .map(|g| NamedGroup::from(*g))
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        if let Some(m) = &self.memory {
            m.set_tls12_session(server_name, value);
        }
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.memory.as_ref()?.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        if let Some(m) = &self.memory {
            m.remove_tls12_session(server_name);
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        if let Some(m) = &self.memory {
            m.insert_tls13_ticket(server_name, value);
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.memory.as_ref()?.take_tls13_ticket(server_name)
    }
}
