//! Per-device records of a factory-line run, and the files they go to.
//!
//! * [`DeviceRecord`]: what one device did (port, times, verdict, failed step and reason,
//!   captured values, measurements, transcript path). Built from a [`RunReport`] by
//!   [`DeviceRecord::from_run`]; secrets are already redacted there.
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

use crate::recipe::load::LoadedRecipe;
use crate::recipe::model::Validator;
use crate::runner::{RunReport, StepStatus, Verdict, check};

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
    /// IMEI: the captured var `imei`, else the one read by the `--resume` probe.
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
}

/// A validated capture (OpenHTF's "measurement").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The captured var.
    pub name: String,
    /// The measured value (`***` for a secret), `None` when it was not captured.
    pub value: Option<String>,
    /// Whether it passed its checks.
    pub passed: bool,
    /// The checks, as written in the recipe.
    pub limits: Limits,
    /// The step that measured it.
    pub step: String,
}

/// The checks of a `validate:` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Regex the value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Lowest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Required text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Forbidden texts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not: Vec<String>,
}

impl From<&Validator> for Limits {
    fn from(v: &Validator) -> Limits {
        Limits {
            regex: v.regex.clone(),
            min: v.min,
            max: v.max,
            equals: v.equals.clone(),
            not: v.not.clone(),
        }
    }
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

/// Seconds rounded to the millisecond.
fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl DeviceRecord {
    /// The record of a run that took place.
    #[allow(clippy::too_many_arguments)]
    pub fn from_run(
        port: &str,
        device: &str,
        recipe: &LoadedRecipe,
        report: &RunReport,
        probed_imei: Option<&str>,
        transcript: Option<&Path>,
        run: &str,
        ended: SystemTime,
    ) -> DeviceRecord {
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(report.started.max(0.0));
        let imei = report
            .captures
            .get("imei")
            .filter(|v| !v.is_empty() && v.as_str() != crate::transcript::REDACTED)
            .cloned()
            .or_else(|| probed_imei.map(str::to_string));
        let mut steps = StepCounts {
            total: recipe.steps.len(),
            ..StepCounts::default()
        };
        for s in report.steps.iter().filter(|s| s.index.is_some()) {
            match s.status {
                StepStatus::Passed => steps.passed += 1,
                StepStatus::Failed | StepStatus::FailedContinued => steps.failed += 1,
                StepStatus::Skipped => steps.skipped += 1,
            }
        }
        let failure = report.failure.as_ref();
        DeviceRecord {
            port: port.to_string(),
            device: device.to_string(),
            recipe: report.recipe.clone(),
            imei,
            started: timestamp(started),
            ended: timestamp(ended),
            seconds: millis(report.seconds),
            verdict: report.verdict,
            exit_code: report.exit_code,
            failed_step: failure.map(|f| f.step.clone()),
            failed_origin: failure.and_then(|f| f.origin.clone()),
            reason: failure.map(|f| f.reason.clone()),
            captures: report.captures.clone(),
            measurements: measurements(recipe, report),
            steps,
            transcript: transcript.map(|p| p.display().to_string()),
            run: run.to_string(),
        }
    }

    /// The record of a device whose port could not be opened (or that failed before its
    /// recipe could start).
    #[allow(clippy::too_many_arguments)]
    pub fn not_started(
        port: &str,
        device: &str,
        recipe: &LoadedRecipe,
        verdict: Verdict,
        step: &str,
        reason: &str,
        run: &str,
        started: SystemTime,
        ended: SystemTime,
    ) -> DeviceRecord {
        DeviceRecord {
            port: port.to_string(),
            device: device.to_string(),
            recipe: recipe.name.clone(),
            imei: None,
            started: timestamp(started),
            ended: timestamp(ended),
            seconds: millis(
                ended
                    .duration_since(started)
                    .unwrap_or_default()
                    .as_secs_f64(),
            ),
            verdict,
            exit_code: verdict.exit().code(),
            failed_step: Some(step.to_string()),
            failed_origin: None,
            reason: Some(reason.to_string()),
            captures: BTreeMap::new(),
            measurements: Vec::new(),
            steps: StepCounts {
                total: recipe.steps.len(),
                ..StepCounts::default()
            },
            transcript: None,
            run: run.to_string(),
        }
    }

    /// Whether the device passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}

/// The validated captures of the steps that ran.
fn measurements(recipe: &LoadedRecipe, report: &RunReport) -> Vec<Measurement> {
    let mut out = Vec::new();
    for rec in &report.steps {
        let Some(index) = rec.index else { continue };
        if rec.status == StepStatus::Skipped {
            continue;
        }
        let Some(planned) = recipe.steps.get(index) else {
            continue;
        };
        for (name, v) in &planned.step.validate {
            let value = report.captures.get(name).cloned();
            let passed = match &value {
                None => false,
                // A secret cannot be checked again here: the step's status says it all.
                Some(x) if x == crate::transcript::REDACTED => rec.status == StepStatus::Passed,
                Some(x) => check(name, x, v).is_none(),
            };
            out.push(Measurement {
                name: name.clone(),
                value,
                passed,
                limits: Limits::from(v),
                step: rec.name.clone(),
            });
        }
    }
    out
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
