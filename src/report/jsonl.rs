//! The JSONL report: one [`DeviceRecord`] per line, appended as each device finishes.
//!
//! Durability: every record is written with a single `write` on a file opened in append mode,
//! then `fsync`ed before the next device's record, so a crash or a `kill -9` loses no
//! finished device. A record cut short by a crash mid-write is at worst a truncated last line:
//! the next writer starts on a fresh line, and [`read`] reports such a line instead of failing.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{DeviceRecord, RecipeIdentity};

/// Appends records to a JSONL file; shared by the device threads.
#[derive(Debug)]
pub struct JsonlWriter {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonlWriter {
    /// Open `path` for appending (created if missing; existing records are kept).
    pub fn open(path: &Path) -> io::Result<JsonlWriter> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        // A crash mid-record leaves a last line without its newline: start a fresh line.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        if !existed {
            file.sync_all()?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(JsonlWriter {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record as one line and `fsync` it.
    pub fn append(&self, record: &DeviceRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("the report writer was poisoned by a panic"))?;
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// What an existing report holds.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    /// The records that parsed, in file order.
    pub records: Vec<DeviceRecord>,
    /// Lines that did not parse: `(1-based line, error)`.
    pub bad_lines: Vec<(usize, String)>,
}

impl Previous {
    /// The record `--resume` skips a device for: the latest record of this IMEI **for this
    /// job** (same recipe hash, same non-secret vars: [`RecipeIdentity::same_job`]), when it
    /// passed. A device that passed and later failed the same job (a re-test) runs again; a
    /// pass of another recipe, or of this one with other vars, or a record without an
    /// identity (written by an older sim7k) does not count.
    pub fn passed_for(&self, imei: &str, job: &RecipeIdentity) -> Option<&DeviceRecord> {
        self.records
            .iter()
            .rev()
            .find(|r| {
                r.imei.as_deref() == Some(imei)
                    && r.identity.as_ref().is_some_and(|id| id.same_job(job))
            })
            .filter(|r| r.passed())
    }

    /// The IMEIs whose latest record for this job passed, with that record.
    pub fn passed_by_imei(&self, job: &RecipeIdentity) -> BTreeMap<String, DeviceRecord> {
        let mut latest: BTreeMap<&str, &DeviceRecord> = BTreeMap::new();
        for r in &self.records {
            if let Some(imei) = &r.imei
                && r.identity.as_ref().is_some_and(|id| id.same_job(job))
            {
                latest.insert(imei, r);
            }
        }
        latest
            .into_iter()
            .filter(|(_, r)| r.passed())
            .map(|(imei, r)| (imei.to_string(), r.clone()))
            .collect()
    }
}

/// Parse report text (blank lines ignored).
pub fn parse(text: &str) -> Previous {
    let mut prev = Previous::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<DeviceRecord>(line) {
            Ok(r) => prev.records.push(r),
            Err(e) => prev.bad_lines.push((i + 1, e.to_string())),
        }
    }
    prev
}

/// Read a report; a missing file is an empty report.
pub fn read(path: &Path) -> io::Result<Previous> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Previous::default()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Verdict;
    use crate::report::tests::sample;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sim7k-jsonl-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("report.jsonl")
    }

    #[test]
    fn appends_one_line_per_record_and_reads_them_back() {
        let p = temp("append");
        let w = JsonlWriter::open(&p).unwrap();
        w.append(&sample("a", Verdict::Passed)).unwrap();
        w.append(&sample("b", Verdict::Failed)).unwrap();
        drop(w);
        // Reopening keeps what is there.
        let w = JsonlWriter::open(&p).unwrap();
        w.append(&sample("c", Verdict::Timeout)).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        let prev = read(&p).unwrap();
        assert!(prev.bad_lines.is_empty());
        let devices: Vec<_> = prev.records.iter().map(|r| r.device.as_str()).collect();
        assert_eq!(devices, ["a", "b", "c"]);
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_truncated_last_line_is_reported_and_the_next_record_starts_fresh() {
        let p = temp("trunc");
        let full = serde_json::to_string(&sample("a", Verdict::Passed)).unwrap();
        let cut = &serde_json::to_string(&sample("b", Verdict::Passed)).unwrap()[..40];
        std::fs::write(&p, format!("{full}\n{cut}")).unwrap();
        let w = JsonlWriter::open(&p).unwrap();
        w.append(&sample("c", Verdict::Failed)).unwrap();
        let prev = read(&p).unwrap();
        assert_eq!(prev.records.len(), 2);
        assert_eq!(prev.records[1].device, "c");
        assert_eq!(prev.bad_lines.len(), 1);
        assert_eq!(prev.bad_lines[0].0, 2);
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    fn job(hash: &str, apn: &str) -> RecipeIdentity {
        RecipeIdentity {
            name: "provision".into(),
            path: "recipes/provision.yaml".into(),
            hash: hash.into(),
            vars: [("apn".to_string(), apn.to_string())].into_iter().collect(),
        }
    }

    #[test]
    fn passed_by_imei_keeps_devices_whose_latest_record_of_the_job_passed() {
        let provision = job("sha256:aa", "internet");
        let with = |device: &str, v: Verdict, imei: Option<&str>| {
            let mut r = sample(device, v);
            r.imei = imei.map(str::to_string);
            r.identity = Some(provision.clone());
            r
        };
        let other = |device: &str, v: Verdict, imei: &str, id: Option<RecipeIdentity>| {
            let mut r = sample(device, v);
            r.imei = Some(imei.to_string());
            r.identity = id;
            r
        };
        let prev = Previous {
            records: vec![
                with("a", Verdict::Failed, Some("111111111111111")),
                with("b", Verdict::Passed, Some("222222222222222")),
                with("c", Verdict::Passed, None),
                // Failed, then passed on a re-run: skipped.
                with("d", Verdict::Timeout, Some("444444444444444")),
                with("d2", Verdict::Passed, Some("444444444444444")),
                // Passed, then failed a re-test: runs again.
                with("e", Verdict::Passed, Some("555555555555555")),
                with("e", Verdict::Failed, Some("555555555555555")),
                // Passed another recipe only: runs (issue 11.4).
                other(
                    "f",
                    Verdict::Passed,
                    "666666666666666",
                    Some(job("sha256:bb", "internet")),
                ),
                // Passed this recipe with other vars: runs.
                other(
                    "g",
                    Verdict::Passed,
                    "777777777777777",
                    Some(job("sha256:aa", "iot")),
                ),
                // A record without an identity (older sim7k): runs.
                other("h", Verdict::Passed, "888888888888888", None),
                // Passed this job, then failed another recipe: still skipped for this job.
                with("i", Verdict::Passed, Some("999999999999999")),
                other(
                    "i",
                    Verdict::Failed,
                    "999999999999999",
                    Some(job("sha256:bb", "x")),
                ),
            ],
            bad_lines: Vec::new(),
        };
        let passed = prev.passed_by_imei(&provision);
        let keys: Vec<&str> = passed.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["222222222222222", "444444444444444", "999999999999999"]
        );
        assert_eq!(passed["444444444444444"].device, "d2");
        for imei in [
            "111111111111111",
            "555555555555555",
            "666666666666666",
            "777777777777777",
            "888888888888888",
        ] {
            assert!(prev.passed_for(imei, &provision).is_none(), "{imei}");
        }
        assert_eq!(
            prev.passed_for("444444444444444", &provision)
                .map(|r| r.device.as_str()),
            Some("d2")
        );
    }

    /// A failed write or fsync is returned, never ignored (issue 11 point 2; the CLI ends the
    /// run with exit 4 naming the file).
    #[test]
    fn a_write_error_is_returned() {
        let w = JsonlWriter::open(Path::new("/dev/full")).unwrap();
        let e = w.append(&sample("a", Verdict::Passed)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn a_missing_report_is_empty() {
        let prev = read(Path::new("/nonexistent/sim7k/report.jsonl")).unwrap();
        assert!(prev.records.is_empty() && prev.bad_lines.is_empty());
    }
}
