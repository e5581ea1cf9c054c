//! Store and forward: the JSONL report is the source of truth; [`push_file`] sends a sink
//! what it lacks. A database is asked which records it holds; a broker's acknowledged records
//! are read from the ledger next to the JSONL (see [`super::ledger`]).

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::record::{Record, RecordId};
use super::sink::{self, Delivery, Sink, SinkError, SinkErrorKind};
use super::url::SinkUrl;

/// What one `records push` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushSummary {
    /// The sink URL without password.
    pub sink: String,
    /// Usable records in the file (one per run and device).
    pub records: usize,
    /// Records the sink had before.
    pub already: usize,
    /// Records delivered now.
    pub sent: usize,
    /// Records the sink still lacks because it failed (see `error`).
    pub not_sent: usize,
    /// Records the sink refused, with why (bad data: pushing again does not help).
    pub rejected: Vec<(String, String)>,
    /// Lines of the file that are not usable records: `(1-based line, why)`.
    pub bad_lines: BadLines,
    /// Why the push stopped early.
    pub error: Option<SinkError>,
}

impl PushSummary {
    /// True when every usable record is now in the sink.
    pub fn complete(&self) -> bool {
        self.not_sent == 0 && self.error.is_none() && self.rejected.is_empty()
    }

    /// One line for people.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}: {} record{} in the file, {} already there, {} sent",
            self.sink,
            self.records,
            if self.records == 1 { "" } else { "s" },
            self.already,
            self.sent
        );
        if self.not_sent > 0 {
            s.push_str(&format!(", {} not sent", self.not_sent));
        }
        if !self.rejected.is_empty() {
            s.push_str(&format!(", {} refused", self.rejected.len()));
        }
        s
    }
}

/// Lines of a file that are not usable records: `(1-based line, why)`.
pub type BadLines = Vec<(usize, String)>;

/// The records of a JSONL file (one per id: a repeated id keeps its first line), and the
/// lines that are not usable records.
pub fn read_records(path: &Path) -> Result<(Vec<Record>, BadLines), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(parse_records(&String::from_utf8_lossy(&bytes)))
}

/// [`read_records`] on text.
pub fn parse_records(text: &str) -> (Vec<Record>, BadLines) {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(Record::from_value);
        match parsed {
            Ok(r) => {
                if seen.insert(r.id.clone()) {
                    records.push(r);
                }
            }
            Err(e) => bad.push((i + 1, e)),
        }
    }
    (records, bad)
}

/// Send `url` every record of the JSONL file `path` it lacks. `station` is used for records
/// that do not name their own.
pub fn push_file(path: &Path, url: &str, station: &str) -> Result<PushSummary, String> {
    let parsed = SinkUrl::parse(url)?;
    let (records, bad_lines) = read_records(path)?;
    let mut sink = sink::open(&parsed);
    sink.keep_ledger_next_to(path).map_err(|e| {
        format!(
            "cannot open the ledger of {} next to {}: {e}",
            parsed.redacted(),
            path.display()
        )
    })?;
    let mut summary = push_missing(&records, sink.as_mut(), station);
    summary.bad_lines = bad_lines;
    Ok(summary)
}

/// Send `sink` the `records` it lacks. Stops at the first failure of the sink itself (the
/// rest are counted as not sent); a record the sink refuses is skipped and listed.
pub fn push_missing(records: &[Record], sink: &mut dyn Sink, station: &str) -> PushSummary {
    let mut summary = PushSummary {
        sink: sink.name(),
        records: records.len(),
        ..PushSummary::default()
    };
    // Log in first, so a wrong URL or password is reported even for an empty file.
    let have = sink
        .probe(Instant::now() + sink.timeout())
        .and_then(|()| sink.present(records, Instant::now() + sink.timeout()));
    let have: HashSet<RecordId> = match have {
        Ok(h) => h,
        Err(e) => {
            summary.not_sent = records.len();
            summary.error = Some(e);
            return summary;
        }
    };
    let missing: Vec<&Record> = records.iter().filter(|r| !have.contains(&r.id)).collect();
    summary.already = records.len() - missing.len();
    for (i, r) in missing.iter().enumerate() {
        let station = r.station().unwrap_or(station);
        match sink.push(r, station, Instant::now() + sink.timeout()) {
            Ok(Delivery::AlreadyStored) => summary.already += 1,
            Ok(_) => summary.sent += 1,
            Err(e) if e.kind == SinkErrorKind::Rejected => {
                summary.rejected.push((r.id.to_string(), e.message));
            }
            Err(e) => {
                summary.not_sent = missing.len() - i;
                summary.error = Some(e);
                break;
            }
        }
    }
    summary
}
