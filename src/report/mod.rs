//! Per-device records of a factory-line run, and the files they go to.
//!
//! * [`DeviceRecord`]: what one device did (port, times, verdict, failed step and reason,
//!   captured values, measurements, transcript path, the job's identity). A view of the
//!   run's [`RunOutcome`], built by [`DeviceRecord::of`]; secrets are already redacted
//!   there.
//! * [`jsonl`]: the `--report FILE.jsonl` log, one record per line, appended and `fsync`ed as
//!   each device finishes; read back by `--resume`.
//! * [`junit`] and [`csv`]: renderings of a list of records for CI dashboards and
//!   spreadsheets (pure functions), written with [`write_atomic`].

pub mod csv;
pub mod jsonl;
pub mod junit;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use crate::job::{Limits, Measurement, RecipeIdentity, Verdict};
use crate::job::{RunOutcome, StepStatus};

/// The step name used in records when the port could not be opened.
pub const OPEN_STEP: &str = "open port";

/// What one device did in a run: one line of the JSONL report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The port as given (`/dev/ttyUSB2`, `tcp://host:port`).
    pub port: String,
    /// Short name of the device in progress output and file names (`ttyUSB2`).
    pub device: String,
    /// Recipe name.
    pub recipe: String,
    /// IMEI: the captured var `imei` (unless secret), else the one read by the `--resume`
    /// probe.
    pub imei: Option<String>,
    /// Start, RFC 3339 UTC (`2025-11-25T15:32:00.123Z`).
    pub started: String,
    /// End, RFC 3339 UTC.
    pub ended: String,
    /// Duration in seconds.
    pub seconds: f64,
    /// How the run ended.
    pub verdict: Verdict,
    /// The exit code of this verdict (see `sim7k run --help`).
    pub exit_code: u8,
    /// The step that ended the run (`sync` for the start-up sync, `open port` when the port
    /// could not be opened); `None` when the device passed.
    pub failed_step: Option<String>,
    /// Where that step is written (`file:line:column`).
    pub failed_origin: Option<String>,
    /// Why it failed (with the measured value for a failed validation).
    pub reason: Option<String>,
    /// Values captured from the modem (secrets as `***`).
    pub captures: BTreeMap<String, String>,
    /// Validated captures, in the order the steps ran.
    pub measurements: Vec<Measurement>,
    /// Step counts.
    pub steps: StepCounts,
    /// The device's transcript file, if one was written.
    pub transcript: Option<String>,
    /// Identifies the `sim7k` invocation that wrote the record.
    pub run: String,
    /// Identifies the job: recipe path, hash of the recipe with its includes and scripts,
    /// non-secret vars. `--resume` skips a device only when this matches. Records written
    /// before it existed have none (and never match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<RecipeIdentity>,
}

/// How many steps did what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    /// Steps of the recipe (the start-up sync not counted).
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed (including optional steps that failed and let the run go on).
    pub failed: usize,
    /// Skipped by `if:`.
    pub skipped: usize,
}

/// What a record says beyond the run's outcome: where the device is and which invocation
/// ran it.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// Short name of the device.
    pub device: &'a str,
    /// Steps of the recipe (the sync not counted).
    pub total_steps: usize,
    /// The IMEI the `--resume` probe read, if it ran.
    pub probed_imei: Option<&'a str>,
    /// The device's transcript file, if one was written.
    pub transcript: Option<&'a Path>,
    /// Identifies the `sim7k` invocation.
    pub run: &'a str,
}

/// Seconds rounded to the millisecond.
fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A time in seconds since the Unix epoch (negative and non-finite values as the epoch).
fn epoch(seconds: f64) -> SystemTime {
    let s = if seconds.is_finite() {
        seconds.max(0.0)
    } else {
        0.0
    };
    SystemTime::UNIX_EPOCH + Duration::try_from_secs_f64(s).unwrap_or_default()
}

impl DeviceRecord {
    /// The record of a run: a view of its outcome.
    pub fn of(outcome: &RunOutcome, ctx: &RecordContext<'_>) -> DeviceRecord {
        let started = epoch(outcome.started);
        let ended = epoch(outcome.started + outcome.seconds.max(0.0));
        let imei = outcome
            .captures
            .get("imei")
            .filter(|v| !v.is_empty() && !outcome.is_secret("imei"))
            .cloned()
            .or_else(|| ctx.probed_imei.map(str::to_string));
        let mut steps = StepCounts {
            total: ctx.total_steps,
            ..StepCounts::default()
        };
        for s in outcome.steps.iter().filter(|s| s.index.is_some()) {
            match s.status {
                StepStatus::Passed => steps.passed += 1,
                StepStatus::Failed | StepStatus::FailedContinued => steps.failed += 1,
                StepStatus::Skipped => steps.skipped += 1,
            }
        }
        let failure = outcome.failure.as_ref();
        DeviceRecord {
            port: outcome.port.clone(),
            device: ctx.device.to_string(),
            recipe: outcome.recipe.clone(),
            imei,
            started: timestamp(started),
            ended: timestamp(ended),
            seconds: millis(outcome.seconds),
            verdict: outcome.verdict,
            exit_code: outcome.exit_code,
            failed_step: failure.map(|f| f.step.clone()),
            failed_origin: failure.and_then(|f| f.origin.clone()),
            reason: failure.map(|f| f.reason.clone()),
            captures: outcome.captures.clone(),
            measurements: outcome.measurements.clone(),
            steps,
            transcript: ctx.transcript.map(|p| p.display().to_string()),
            run: ctx.run.to_string(),
            identity: Some(outcome.identity.clone()),
        }
    }

    /// Whether the device passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}

/// Write `contents` to `path` atomically: a temporary file in the same directory, `fsync`,
/// then rename over `path` (through a symlink to its target; a FIFO or a device is refused).
/// See [`crate::output::replace`].
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    crate::output::replace(path, contents)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record for rendering tests.
    pub(crate) fn sample(device: &str, verdict: Verdict) -> DeviceRecord {
        let passed = verdict == Verdict::Passed;
        DeviceRecord {
            port: format!("/dev/{device}"),
            device: device.to_string(),
            recipe: "Provision <SIM7000> & \"test\"".into(),
            imei: Some("869951031234564".into()),
            started: "2025-11-25T15:32:00.000Z".into(),
            ended: "2025-11-25T15:32:01.500Z".into(),
            seconds: 1.5,
            verdict,
            exit_code: verdict.exit().code(),
            failed_step: (!passed).then(|| "signal".to_string()),
            failed_origin: (!passed).then(|| "r.yaml:10:5".to_string()),
            reason: (!passed).then(|| "rssi = 5, below the minimum 10".to_string()),
            captures: [
                ("imei".to_string(), "869951031234564".to_string()),
                ("rssi".to_string(), "5".to_string()),
            ]
            .into_iter()
            .collect(),
            measurements: vec![Measurement {
                name: "rssi".into(),
                value: Some("5".into()),
                passed,
                secret: false,
                limits: Limits {
                    min: Some(10.0),
                    not: vec!["99".into()],
                    ..Limits::default()
                },
                step: "signal".into(),
            }],
            steps: StepCounts {
                total: 4,
                passed: 3,
                failed: usize::from(!passed),
                skipped: 0,
            },
            transcript: Some(format!("logs/{device}.log")),
            run: "test".into(),
            identity: None,
        }
    }

    #[test]
    fn record_round_trips_through_json() {
        let r = sample("ttyUSB0", Verdict::Failed);
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains('\n'));
        let back: DeviceRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["verdict"], "failed");
        assert_eq!(v["measurements"][0]["limits"]["min"], 10.0);
        assert!(v["measurements"][0]["limits"].get("max").is_none());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_084_720_123);
        assert_eq!(timestamp(t), "2025-11-25T15:32:00.123Z");
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("sim7k-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.csv");
        std::fs::write(&p, "old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
