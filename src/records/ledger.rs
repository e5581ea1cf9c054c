//! The local ledger of records an MQTT broker acknowledged.
//!
//! A broker cannot be asked which records it has delivered, so the station keeps the list:
//! `<report>.jsonl.sent-<16 hex digits>` next to the JSONL report, the digits a hash (FNV-1a,
//! 64 bits) of the destination (`mqtt://host:port/prefix`, no credentials), so each broker and
//! prefix has its own. One line per acknowledged record, `["<run>","<device>"]`, appended with
//! a single `write` and `fsync`ed after the PUBACK, like the JSONL itself: a crash loses at
//! most the line being written, and a torn last line is ignored on reading — that record is
//! then sent again (at least once; subscribers deduplicate by `record_id`).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::record::RecordId;

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The ledger file for `jsonl` and a destination.
pub fn path_for(jsonl: &Path, destination: &str) -> PathBuf {
    let mut name = jsonl
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "records.jsonl".into());
    name.push(format!(".sent-{:016x}", fnv1a64(destination.as_bytes())));
    jsonl.with_file_name(name)
}

/// An open ledger: what it holds, and the file to append to.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
    sent: HashSet<RecordId>,
}

impl Ledger {
    /// Open (or create) the ledger at `path` and read what it holds.
    pub fn open(path: &Path) -> io::Result<Ledger> {
        let sent = read(path)?;
        let existed = path.exists();
        let mut file = OpenOptions::new().append(true).create(true).open(path)?;
        // A torn last line (crash mid-write): start a fresh line.
        let len = file.metadata()?.len();
        if len > 0 {
            let text = std::fs::read(path)?;
            if text.last() != Some(&b'\n') {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        if !existed {
            file.sync_all()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && let Ok(d) = File::open(dir)
            {
                let _ = d.sync_all();
            }
        }
        Ok(Ledger {
            path: path.to_path_buf(),
            file,
            sent,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the broker acknowledged `id` before.
    pub fn contains(&self, id: &RecordId) -> bool {
        self.sent.contains(id)
    }

    /// Everything acknowledged.
    pub fn sent(&self) -> &HashSet<RecordId> {
        &self.sent
    }

    /// Record an acknowledgement: one line, one write, fsynced.
    pub fn add(&mut self, id: &RecordId) -> io::Result<()> {
        if self.sent.contains(id) {
            return Ok(());
        }
        let mut line = serde_json::to_vec(&(&id.run, &id.device)).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.sent.insert(id.clone());
        Ok(())
    }
}

/// The ids a ledger file holds (a missing file holds none; bad lines are skipped).
pub fn read(path: &Path) -> io::Result<HashSet<RecordId>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| serde_json::from_str::<(String, String)>(l).ok())
        .map(|(run, device)| RecordId { run, device })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(d: &str) -> RecordId {
        RecordId {
            run: "r1".into(),
            device: d.into(),
        }
    }

    #[test]
    fn ledger_survives_reopening_and_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("sim7k-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = path_for(&dir.join("line.jsonl"), "mqtt://b:1883/x");
        assert!(
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("line.jsonl.sent-")
        );
        let mut l = Ledger::open(&p).unwrap();
        l.add(&id("a")).unwrap();
        l.add(&id("a/with/slashes")).unwrap();
        l.add(&id("a")).unwrap();
        drop(l);
        // A crash mid-line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"[\"r1\",\"tor").unwrap();
        drop(f);
        let mut l = Ledger::open(&p).unwrap();
        assert_eq!(l.sent().len(), 2);
        assert!(l.contains(&id("a/with/slashes")));
        l.add(&id("b")).unwrap();
        assert_eq!(read(&p).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_destination_has_its_own_ledger() {
        let j = Path::new("/x/line.jsonl");
        assert_ne!(
            path_for(j, "mqtt://a:1883/p"),
            path_for(j, "mqtt://a:1883/q")
        );
        assert_eq!(
            path_for(j, "mqtt://a:1883/p"),
            path_for(j, "mqtt://a:1883/p")
        );
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    }
}
