//! The built-in views: yield per recipe and day, failures by step, devices by firmware.
//!
//! Computed from a JSONL file here, or by the database views of [`super::pg::schema`]; both
//! give the same rows in the same order (the sorting is done here for both, so the
//! database's collation does not matter), rendered as a table or as JSON.
//!
//! * a device is its IMEI, or its record id (run/device) when no IMEI was read;
//! * a day is the UTC date the run started;
//! * yield is passed runs / runs, in percent with one decimal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::Serialize;

use super::record::Record;
use super::url::SinkUrl;
use crate::util::escape::{escape_text, shorten};

/// Which view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Yield per recipe and day.
    Yield,
    /// Failures by step.
    Failures,
    /// Devices by firmware.
    Firmware,
}

/// A row of the yield view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct YieldRow {
    /// UTC date (`2025-11-25`).
    pub day: String,
    /// Recipe name.
    pub recipe: String,
    /// Device runs.
    pub runs: u64,
    /// Runs that passed.
    pub passed: u64,
    /// Runs that did not.
    pub failed: u64,
    /// Distinct devices.
    pub devices: u64,
    /// `passed / runs` in percent, one decimal.
    pub yield_percent: f64,
}

/// A row of the failures view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRow {
    /// Recipe name.
    pub recipe: String,
    /// The step that ended the run (`(none)` when the record names none).
    pub step: String,
    /// Runs that ended there.
    pub failures: u64,
    /// Distinct devices among them.
    pub devices: u64,
    /// Start of the latest such run (RFC 3339 UTC).
    pub last_seen: String,
    /// Its reason.
    pub last_reason: Option<String>,
}

/// A row of the firmware view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirmwareRow {
    /// Firmware revision (`(unknown)` when not captured).
    pub firmware: String,
    /// Distinct devices seen with it.
    pub devices: u64,
    /// Distinct devices that passed at least once with it.
    pub passed_devices: u64,
    /// Device runs.
    pub runs: u64,
    /// Start of the latest run (RFC 3339 UTC).
    pub last_seen: String,
}

/// The rows of one view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Rows {
    /// Yield per recipe and day.
    Yield(Vec<YieldRow>),
    /// Failures by step.
    Failures(Vec<FailureRow>),
    /// Devices by firmware.
    Firmware(Vec<FirmwareRow>),
}

fn percent(passed: u64, runs: u64) -> f64 {
    if runs == 0 {
        return 0.0;
    }
    (passed as f64 * 1000.0 / runs as f64).round() / 10.0
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Compute a view from records.
pub fn from_records(view: View, records: &[Record]) -> Rows {
    match view {
        View::Yield => {
            // (day, recipe) -> (runs, passed, devices)
            let mut m: BTreeMap<(String, String), (u64, u64, BTreeSet<String>)> = BTreeMap::new();
            for r in records {
                let day = rfc3339(r.started()).chars().take(10).collect::<String>();
                let e = m.entry((day, r.recipe().to_string())).or_default();
                e.0 += 1;
                e.1 += u64::from(r.passed());
                e.2.insert(r.device_key());
            }
            let mut rows: Vec<YieldRow> = m
                .into_iter()
                .map(|((day, recipe), (runs, passed, devices))| YieldRow {
                    day,
                    recipe,
                    runs,
                    passed,
                    failed: runs - passed,
                    devices: devices.len() as u64,
                    yield_percent: percent(passed, runs),
                })
                .collect();
            sort_yield(&mut rows);
            Rows::Yield(rows)
        }
        View::Failures => {
            struct Acc {
                failures: u64,
                devices: BTreeSet<String>,
                last: Option<(SystemTime, String, String, Option<String>)>,
            }
            let mut m: BTreeMap<(String, String), Acc> = BTreeMap::new();
            for r in records.iter().filter(|r| !r.passed()) {
                let step = r.failed_step().unwrap_or("(none)").to_string();
                let e = m.entry((r.recipe().to_string(), step)).or_insert(Acc {
                    failures: 0,
                    devices: BTreeSet::new(),
                    last: None,
                });
                e.failures += 1;
                e.devices.insert(r.device_key());
                // Latest by start, then run and device (as the SQL's COLLATE "C").
                let key = (
                    r.started(),
                    r.id.run.clone(),
                    r.id.device.clone(),
                    r.reason().map(str::to_string),
                );
                let newer = match &e.last {
                    None => true,
                    Some((t, run, dev, _)) => (key.0, &key.1, &key.2) > (*t, run, dev),
                };
                if newer {
                    e.last = Some(key);
                }
            }
            let mut rows: Vec<FailureRow> = m
                .into_iter()
                .map(|((recipe, step), a)| {
                    let (last_seen, last_reason) = match a.last {
                        Some((t, _, _, reason)) => (rfc3339(t), reason),
                        None => (String::new(), None),
                    };
                    FailureRow {
                        recipe,
                        step,
                        failures: a.failures,
                        devices: a.devices.len() as u64,
                        last_seen,
                        last_reason,
                    }
                })
                .collect();
            sort_failures(&mut rows);
            Rows::Failures(rows)
        }
        View::Firmware => {
            let mut m: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>, u64, SystemTime)> =
                BTreeMap::new();
            for r in records {
                let fw = r.firmware().unwrap_or("(unknown)").to_string();
                let e = m.entry(fw).or_insert_with(|| {
                    (BTreeSet::new(), BTreeSet::new(), 0, SystemTime::UNIX_EPOCH)
                });
                let key = r.device_key();
                if r.passed() {
                    e.1.insert(key.clone());
                }
                e.0.insert(key);
                e.2 += 1;
                e.3 = e.3.max(r.started());
            }
            let mut rows: Vec<FirmwareRow> = m
                .into_iter()
                .map(|(firmware, (devices, passed, runs, last))| FirmwareRow {
                    firmware,
                    devices: devices.len() as u64,
                    passed_devices: passed.len() as u64,
                    runs,
                    last_seen: rfc3339(last),
                })
                .collect();
            sort_firmware(&mut rows);
            Rows::Firmware(rows)
        }
    }
}

fn sort_yield(rows: &mut [YieldRow]) {
    rows.sort_by(|a, b| (&a.day, &a.recipe).cmp(&(&b.day, &b.recipe)));
}

fn sort_failures(rows: &mut [FailureRow]) {
    rows.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| (&a.recipe, &a.step).cmp(&(&b.recipe, &b.step)))
    });
}

fn sort_firmware(rows: &mut [FirmwareRow]) {
    rows.sort_by(|a, b| a.firmware.cmp(&b.firmware));
}

/// Compute a view in a database (`postgres://…`).
pub fn from_database(view: View, url: &str) -> Result<Rows, String> {
    let url = match SinkUrl::parse(url)? {
        SinkUrl::Postgres(u) => u,
        other => {
            return Err(format!(
                "{} is not a database: views read a postgres:// URL (or --file)",
                other.redacted()
            ));
        }
    };
    use super::pg::{read, schema};
    let sql = match view {
        View::Yield => schema::SELECT_YIELD,
        View::Failures => schema::SELECT_FAILURES,
        View::Firmware => schema::SELECT_FIRMWARE,
    };
    let rows = read(&url, sql).map_err(|e| e.message)?;
    let text = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten();
    let num = |row: &[Option<String>], i: usize| {
        text(row, i)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(match view {
        View::Yield => {
            let mut out: Vec<YieldRow> = rows
                .iter()
                .map(|r| {
                    let (runs, passed) = (num(r, 2), num(r, 3));
                    YieldRow {
                        day: text(r, 0).unwrap_or_default(),
                        recipe: text(r, 1).unwrap_or_default(),
                        runs,
                        passed,
                        failed: runs.saturating_sub(passed),
                        devices: num(r, 4),
                        yield_percent: percent(passed, runs),
                    }
                })
                .collect();
            sort_yield(&mut out);
            Rows::Yield(out)
        }
        View::Failures => {
            let mut out: Vec<FailureRow> = rows
                .iter()
                .map(|r| FailureRow {
                    recipe: text(r, 0).unwrap_or_default(),
                    step: text(r, 1).unwrap_or_default(),
                    failures: num(r, 2),
                    devices: num(r, 3),
                    last_seen: text(r, 4).unwrap_or_default(),
                    last_reason: text(r, 5),
                })
                .collect();
            sort_failures(&mut out);
            Rows::Failures(out)
        }
        View::Firmware => {
            let mut out: Vec<FirmwareRow> = rows
                .iter()
                .map(|r| FirmwareRow {
                    firmware: text(r, 0).unwrap_or_default(),
                    devices: num(r, 1),
                    passed_devices: num(r, 2),
                    runs: num(r, 3),
                    last_seen: text(r, 4).unwrap_or_default(),
                })
                .collect();
            sort_firmware(&mut out);
            Rows::Firmware(out)
        }
    })
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Yield(r) => r.len(),
            Rows::Failures(r) => r.len(),
            Rows::Firmware(r) => r.len(),
        }
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows as an aligned text table (outside text escaped and shortened).
    pub fn table(&self) -> String {
        let cell = |s: &str| shorten(&escape_text(s), 60);
        let (head, body): (Vec<&str>, Vec<Vec<String>>) = match self {
            Rows::Yield(rows) => (
                vec![
                    "day", "recipe", "runs", "passed", "failed", "devices", "yield",
                ],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.day.clone(),
                            cell(&r.recipe),
                            r.runs.to_string(),
                            r.passed.to_string(),
                            r.failed.to_string(),
                            r.devices.to_string(),
                            format!("{:.1}%", r.yield_percent),
                        ]
                    })
                    .collect(),
            ),
            Rows::Failures(rows) => (
                vec![
                    "recipe",
                    "step",
                    "failures",
                    "devices",
                    "last seen",
                    "last reason",
                ],
                rows.iter()
                    .map(|r| {
                        vec![
                            cell(&r.recipe),
                            cell(&r.step),
                            r.failures.to_string(),
                            r.devices.to_string(),
                            r.last_seen.clone(),
                            cell(r.last_reason.as_deref().unwrap_or("")),
                        ]
                    })
                    .collect(),
            ),
            Rows::Firmware(rows) => (
                vec!["firmware", "devices", "passed", "runs", "last seen"],
                rows.iter()
                    .map(|r| {
                        vec![
                            cell(&r.firmware),
                            r.devices.to_string(),
                            r.passed_devices.to_string(),
                            r.runs.to_string(),
                            r.last_seen.clone(),
                        ]
                    })
                    .collect(),
            ),
        };
        let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
        for row in &body {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            let mut s = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ");
            s.truncate(s.trim_end().len());
            s.push('\n');
            s
        };
        let mut out = line(head.iter().map(|h| h.to_string()).collect());
        for row in body {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(run: &str, dev: &str, imei: Option<&str>, verdict: &str, started: &str) -> Record {
        let mut v = json!({"run": run, "device": dev, "verdict": verdict, "started": started,
                           "recipe": "Provision", "captures": {"firmware": "1351B04"}});
        if let Some(i) = imei {
            v["imei"] = json!(i);
        }
        if verdict != "passed" {
            v["failed_step"] = json!("signal");
            v["reason"] = json!(format!("{dev} weak"));
        }
        Record::from_value(v).unwrap()
    }

    #[test]
    fn yield_per_recipe_and_day() {
        let rs = [
            rec("r1", "a", Some("1"), "passed", "2025-11-25T23:59:59.000Z"),
            rec("r1", "b", Some("2"), "failed", "2025-11-25T10:00:00.000Z"),
            rec("r2", "b", Some("2"), "passed", "2025-11-26T00:00:01.000Z"),
            rec("r2", "c", None, "timeout", "2025-11-26T00:00:02.000Z"),
        ];
        let Rows::Yield(rows) = from_records(View::Yield, &rs) else {
            panic!()
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].day, "2025-11-25");
        assert_eq!((rows[0].runs, rows[0].passed, rows[0].devices), (2, 1, 2));
        assert_eq!(rows[0].yield_percent, 50.0);
        assert_eq!((rows[1].runs, rows[1].failed), (2, 1));
        let t = Rows::Yield(rows).table();
        assert!(t.starts_with("day "), "{t}");
        assert!(t.contains("50.0%"), "{t}");
    }

    #[test]
    fn failures_keep_the_latest_reason() {
        let rs = [
            rec("r1", "a", Some("1"), "failed", "2025-11-25T10:00:00.000Z"),
            rec("r1", "b", Some("2"), "failed", "2025-11-25T11:00:00.000Z"),
            rec("r2", "a", Some("1"), "failed", "2025-11-25T09:00:00.000Z"),
            rec("r2", "z", Some("3"), "passed", "2025-11-25T12:00:00.000Z"),
        ];
        let Rows::Failures(rows) = from_records(View::Failures, &rs) else {
            panic!()
        };
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].failures, rows[0].devices), (3, 2));
        assert_eq!(rows[0].last_seen, "2025-11-25T11:00:00.000Z");
        assert_eq!(rows[0].last_reason.as_deref(), Some("b weak"));
    }

    #[test]
    fn firmware_counts_devices_once() {
        let rs = [
            rec("r1", "a", Some("1"), "failed", "2025-11-25T10:00:00.000Z"),
            rec("r2", "a", Some("1"), "passed", "2025-11-25T11:00:00.000Z"),
            rec("r2", "b", Some("2"), "failed", "2025-11-25T11:00:00.000Z"),
        ];
        let Rows::Firmware(rows) = from_records(View::Firmware, &rs) else {
            panic!()
        };
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].devices, rows[0].passed_devices, rows[0].runs),
            (2, 1, 3)
        );
        let j = serde_json::to_value(Rows::Firmware(rows)).unwrap();
        assert_eq!(j[0]["firmware"], "1351B04");
    }

    #[test]
    fn percent_rounds_to_one_decimal() {
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(2, 3), 66.7);
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(7, 7), 100.0);
    }
}
