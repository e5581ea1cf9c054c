//! `sim7k run --record-to URL [--station NAME] [--record-required]`: each device's record
//! also goes to PostgreSQL or MQTT as the device finishes (`crate::records::live`).
//!
//! The JSONL stays the source of truth: `--report FILE`, or without it a file sim7k keeps
//! (`records::live::kept_file_for`), removed at the end when every sink got every record.

use crate::exit::Exit;
use crate::fleet::progress::Progress;
use crate::records::live::{Live, kept_file_for};
use crate::report::DeviceRecord;
use crate::report::jsonl::JsonlWriter;

use super::RunArgs;

/// The record sinks of one `sim7k run`.
pub(super) struct RecordTo {
    live: Live,
    own: Option<JsonlWriter>,
    required: bool,
    quiet: bool,
}

/// Check `--station NAME`.
fn station_of(args: &RunArgs) -> Result<String, String> {
    match &args.station {
        None => Ok(crate::records::default_station()),
        Some(s) if s.trim().is_empty() => Err("--station: the name is empty".into()),
        Some(s)
            if s.chars()
                .any(|c| c.is_control() || matches!(c, '/' | '+' | '#')) =>
        {
            Err(format!(
                "--station {}: a station name is one MQTT topic level: no `/`, `+`, `#` or control characters",
                crate::util::escape::escape_text(s)
            ))
        }
        Some(s) => Ok(s.clone()),
    }
}

/// Set up the sinks of `--record-to` (none contacted yet); `None` without `--record-to`.
/// `report` is the `--report` writer; without one, sim7k opens its own file.
pub(super) fn start(
    args: &RunArgs,
    run_id: &str,
    report: Option<&JsonlWriter>,
) -> Result<Option<RecordTo>, Exit> {
    if args.record_to.is_empty() {
        return Ok(None);
    }
    let station = station_of(args).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Usage
    })?;
    for u in &args.record_to {
        if let Err(e) = crate::records::SinkUrl::parse(u) {
            eprintln!("error: --record-to: {e}");
            return Err(Exit::Usage);
        }
    }
    let (file, own) = match report {
        Some(w) => (w.path().to_path_buf(), None),
        None => {
            let path = kept_file_for(run_id);
            match JsonlWriter::open(&path) {
                Ok(w) => (path, Some(w)),
                Err(e) => {
                    eprintln!(
                        "error: no --report, and cannot keep the records of the run in {}: {e} (give --report FILE.jsonl)",
                        path.display()
                    );
                    return Err(Exit::Io);
                }
            }
        }
    };
    let live = Live::new(
        &args.record_to,
        &station,
        &file,
        own.is_some(),
        args.station.as_deref(),
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        Exit::Io
    })?;
    Ok(Some(RecordTo {
        live,
        own,
        required: args.record_required,
        quiet: args.quiet,
    }))
}

impl RecordTo {
    /// sim7k's own JSONL when there is no `--report` (every record is appended to it).
    pub(super) fn writer(&self) -> Option<&JsonlWriter> {
        self.own.as_ref()
    }

    /// Queue a finished device's record (after it is in the JSONL).
    pub(super) fn submit(&self, record: &DeviceRecord) {
        self.live.submit(record);
    }

    /// Run the fleet with the records worker beside it; its warnings go through `progress`.
    pub(super) fn run_with<R>(&self, progress: &Progress, body: impl FnOnce() -> R) -> R {
        let quiet = self.quiet;
        let say = move |line: &str| {
            if !quiet {
                progress.println(line);
            }
        };
        self.live.run_with(&say, body)
    }

    /// At the end of the run: say which sinks are behind and how to catch them up; the exit
    /// code this asks for (4 with `--record-required` when a sink is behind) and a JSON
    /// summary for `--json`.
    pub(super) fn finish(&self) -> (Exit, serde_json::Value) {
        let summary = self.live.finish();
        let behind = summary.behind();
        for line in self.live.summary_lines(&summary) {
            if self.required {
                eprintln!("error: {}", line.trim_start_matches("warning: "));
            } else if !self.quiet {
                eprintln!("{line}");
            }
        }
        if self.own.is_some() && summary.file_kept && (behind || !self.quiet) {
            eprintln!(
                "note: no --report: the records of this run are kept in {}",
                summary.file.display()
            );
        }
        let json = serde_json::to_value(&summary).unwrap_or_default();
        let code = if behind && self.required {
            Exit::Io
        } else {
            Exit::Success
        };
        (code, json)
    }
}
