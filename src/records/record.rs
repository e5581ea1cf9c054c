//! A device record as the sinks see it: the JSON object of one JSONL line, read through
//! accessors that tolerate fields being added (and a few being moved) by later versions.
//!
//! The record's identity is [`RecordId`]: the run id plus the device label, unique within a
//! run, so the same record pushed twice is stored once.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::report::DeviceRecord;

/// What identifies a device record everywhere: the run (`20251125T154439Z-31253`) and the
/// device label within it (`ttyUSB2`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId {
    /// The `run` of the record.
    pub run: String,
    /// The `device` of the record.
    pub device: String,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.run, self.device)
    }
}

/// One step of a record, when the record lists its steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRow {
    /// Position in the record (0-based).
    pub index: i64,
    /// Step name.
    pub name: String,
    /// `passed`, `failed`, `failed_continued`, `skipped`, …
    pub status: String,
    /// Duration, when recorded.
    pub seconds: Option<f64>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Where it is written (`file:line:column`).
    pub origin: Option<String>,
}

/// One measurement of a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasurementRow {
    /// Position in the record (0-based).
    pub index: i64,
    /// The captured var.
    pub name: String,
    /// The measured value.
    pub value: Option<String>,
    /// Whether it passed its checks.
    pub passed: bool,
    /// The step that measured it.
    pub step: Option<String>,
    /// `limits.min`.
    pub low: Option<f64>,
    /// `limits.max`.
    pub high: Option<f64>,
    /// The whole `limits` object.
    pub limits: Value,
}

/// A record ready to be pushed: its id and its JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its identity.
    pub id: RecordId,
    value: Map<String, Value>,
    started: SystemTime,
}

/// The text a secret capture holds in a record.
const REDACTED: &str = crate::redact::REDACTED;

impl Record {
    /// A record from a [`DeviceRecord`].
    pub fn from_device_record(r: &DeviceRecord) -> Result<Record, String> {
        let v = serde_json::to_value(r).map_err(|e| format!("cannot encode the record: {e}"))?;
        Record::from_value(v)
    }

    /// A record from one JSONL line's JSON. Needs `run`, `device`, `verdict` and a `started`
    /// in RFC 3339; every other field is optional and extra fields are kept.
    pub fn from_value(v: Value) -> Result<Record, String> {
        let Value::Object(value) = v else {
            return Err("a record is a JSON object".into());
        };
        let text = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let run = text("run").ok_or("the record has no `run`")?;
        let device = text("device").ok_or("the record has no `device`")?;
        if text("verdict").is_none() {
            return Err(format!("the record {run}/{device} has no `verdict`"));
        }
        let started =
            text("started").ok_or_else(|| format!("the record {run}/{device} has no `started`"))?;
        let started = humantime::parse_rfc3339_weak(&started).map_err(|e| {
            format!(
                "the record {run}/{device}: `started` is not an RFC 3339 time ({}): {e}",
                crate::util::escape::shorten(&started, 40)
            )
        })?;
        Ok(Record {
            id: RecordId { run, device },
            value,
            started,
        })
    }

    /// The record as JSON (exactly the fields it was made from).
    pub fn json(&self) -> &Map<String, Value> {
        &self.value
    }

    /// The record as JSON with `record_id` and `station` added (the MQTT payload); a
    /// `station` the record already has is kept.
    pub fn json_for(&self, station: &str) -> Value {
        let mut m = self.value.clone();
        m.insert("record_id".into(), Value::String(self.id.to_string()));
        if !m.get("station").is_some_and(Value::is_string) {
            m.insert("station".into(), Value::String(station.to_string()));
        }
        Value::Object(m)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    fn captured(&self, names: &[&str]) -> Option<&str> {
        let caps = self.value.get("captures").and_then(Value::as_object)?;
        names
            .iter()
            .filter_map(|n| caps.get(*n).and_then(Value::as_str))
            .find(|v| !v.is_empty() && *v != REDACTED)
    }

    /// A top-level text field, else the first of `captures` that holds a (non-secret) value.
    fn identity(&self, key: &str, captures: &[&str]) -> Option<&str> {
        self.str(key)
            .filter(|v| !v.is_empty() && *v != REDACTED)
            .or_else(|| self.captured(captures))
    }

    /// The station of the record, when the record names one.
    pub fn station(&self) -> Option<&str> {
        self.str("station").filter(|s| !s.is_empty())
    }

    /// The IMEI: the `imei` field, else the capture.
    pub fn imei(&self) -> Option<&str> {
        self.identity("imei", &["imei"])
    }

    /// The ICCID: an `iccid` field, else the capture `iccid` (or `ccid`).
    pub fn iccid(&self) -> Option<&str> {
        self.identity("iccid", &["iccid", "ccid"])
    }

    /// The IMSI: an `imsi` field, else the capture.
    pub fn imsi(&self) -> Option<&str> {
        self.identity("imsi", &["imsi"])
    }

    /// The firmware: a `firmware` field, else the capture `firmware` (or `revision`, `fw`).
    pub fn firmware(&self) -> Option<&str> {
        self.identity("firmware", &["firmware", "revision", "fw"])
    }

    /// The port.
    pub fn port(&self) -> Option<&str> {
        self.str("port")
    }

    /// The verdict (`passed`, `failed`, …).
    pub fn verdict(&self) -> &str {
        self.str("verdict").unwrap_or("")
    }

    /// Whether the device passed.
    pub fn passed(&self) -> bool {
        self.verdict() == "passed"
    }

    /// The exit code.
    pub fn exit_code(&self) -> Option<i64> {
        self.value.get("exit_code").and_then(Value::as_i64)
    }

    /// When the run started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// `started` as text, as in the record.
    pub fn started_text(&self) -> &str {
        self.str("started").unwrap_or("")
    }

    /// `ended` as text.
    pub fn ended_text(&self) -> Option<&str> {
        self.str("ended").filter(|s| !s.is_empty())
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> Option<f64> {
        self.value.get("seconds").and_then(Value::as_f64)
    }

    /// The step that ended the run.
    pub fn failed_step(&self) -> Option<&str> {
        self.str("failed_step")
    }

    /// Where that step is written.
    pub fn failed_origin(&self) -> Option<&str> {
        self.str("failed_origin")
    }

    /// Why it failed.
    pub fn reason(&self) -> Option<&str> {
        self.str("reason")
    }

    /// The transcript file.
    pub fn transcript(&self) -> Option<&str> {
        self.str("transcript")
    }

    /// The recipe's identity: an object `recipe: {name, path, hash}`, or `recipe` (name)
    /// with `recipe_path` / `recipe_hash` beside it, or an `identity: {name, path, hash, vars}`
    /// object (what `sim7k run` writes), or a `job: {path, hash}` object.
    fn recipe_part(&self, part: &str) -> Option<&str> {
        if let Some(o) = self.value.get("recipe").and_then(Value::as_object)
            && let Some(v) = o.get(part).and_then(Value::as_str)
        {
            return Some(v);
        }
        if let Some(v) = self.str(&format!("recipe_{part}")) {
            return Some(v);
        }
        ["identity", "job", "recipe_identity"]
            .iter()
            .filter_map(|k| self.value.get(*k).and_then(Value::as_object))
            .find_map(|o| o.get(part).and_then(Value::as_str))
    }

    /// Recipe name.
    pub fn recipe(&self) -> &str {
        self.str("recipe")
            .or_else(|| self.recipe_part("name"))
            .unwrap_or("")
    }

    /// Recipe path.
    pub fn recipe_path(&self) -> Option<&str> {
        self.recipe_part("path")
    }

    /// Hash of the recipe with its includes and scripts.
    pub fn recipe_hash(&self) -> Option<&str> {
        self.recipe_part("hash")
    }

    /// Step counts `(total, passed, failed, skipped)`: the `steps` object, or counted from a
    /// list of steps.
    pub fn step_counts(&self) -> Option<[i64; 4]> {
        let counts = ["steps", "step_counts"]
            .iter()
            .filter_map(|k| self.value.get(*k).and_then(Value::as_object))
            .next();
        if let Some(o) = counts {
            let n = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(0);
            return Some([n("total"), n("passed"), n("failed"), n("skipped")]);
        }
        let steps = self.steps();
        if steps.is_empty() {
            return None;
        }
        let count = |f: &dyn Fn(&str) -> bool| steps.iter().filter(|s| f(&s.status)).count() as i64;
        Some([
            steps.len() as i64,
            count(&|s| s == "passed"),
            count(&|s| s.starts_with("failed")),
            count(&|s| s == "skipped"),
        ])
    }

    /// The steps, when the record lists them (`steps` or `step_results` as an array of
    /// `{name, status, seconds, reason, origin}`); empty when it only counts them.
    pub fn steps(&self) -> Vec<StepRow> {
        let list = ["steps", "step_results"]
            .iter()
            .filter_map(|k| self.value.get(*k).and_then(Value::as_array))
            .next();
        let Some(list) = list else {
            return Vec::new();
        };
        list.iter()
            .filter_map(Value::as_object)
            .enumerate()
            .map(|(i, o)| {
                let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
                StepRow {
                    index: i as i64,
                    name: s("name").unwrap_or_default(),
                    status: s("status").or_else(|| s("verdict")).unwrap_or_default(),
                    seconds: o.get("seconds").and_then(Value::as_f64),
                    reason: s("reason"),
                    origin: s("origin"),
                }
            })
            .collect()
    }

    /// The measurements (`measurements`).
    pub fn measurements(&self) -> Vec<MeasurementRow> {
        let Some(list) = self.value.get("measurements").and_then(Value::as_array) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(Value::as_object)
            .enumerate()
            .map(|(i, o)| {
                let limits = o.get("limits").cloned().unwrap_or(Value::Null);
                let lim = |k: &str| limits.get(k).and_then(Value::as_f64);
                MeasurementRow {
                    index: i as i64,
                    name: o
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    value: o.get("value").and_then(value_text),
                    passed: o.get("passed").and_then(Value::as_bool).unwrap_or(false),
                    step: o.get("step").and_then(Value::as_str).map(str::to_string),
                    low: lim("min"),
                    high: lim("max"),
                    limits: limits.clone(),
                }
            })
            .collect()
    }

    /// The captured values (`captures`), as text.
    pub fn captures(&self) -> BTreeMap<String, String> {
        let Some(o) = self.value.get("captures").and_then(Value::as_object) else {
            return BTreeMap::new();
        };
        o.iter()
            .filter_map(|(k, v)| value_text(v).map(|t| (k.clone(), t)))
            .collect()
    }

    /// What identifies the device across runs in the views: its IMEI, else the record id.
    pub fn device_key(&self) -> String {
        match self.imei() {
            Some(i) => i.to_string(),
            None => self.id.to_string(),
        }
    }
}

/// A JSON scalar as text (`null` is none).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "run": "20251125T154439Z-31253", "device": "ttyUSB2", "verdict": "failed",
            "started": "2025-11-25T15:32:00.123Z", "recipe": "Provision",
            "captures": {"imei": "869951031234564", "iccid": "8988303000001234567",
                         "imsi": "466011234567890", "firmware": "1351B04SIM7000G",
                         "password": "***", "rssi": "5"},
            "measurements": [{"name": "rssi", "value": "5", "passed": false,
                              "limits": {"min": 10.0, "not": ["99"]}, "step": "signal"}],
            "steps": {"total": 4, "passed": 3, "failed": 1, "skipped": 0}
        })
    }

    #[test]
    fn identities_come_from_fields_or_captures() {
        let r = Record::from_value(base()).unwrap();
        assert_eq!(r.id.to_string(), "20251125T154439Z-31253/ttyUSB2");
        assert_eq!(r.imei(), Some("869951031234564"));
        assert_eq!(r.iccid(), Some("8988303000001234567"));
        assert_eq!(r.imsi(), Some("466011234567890"));
        assert_eq!(r.firmware(), Some("1351B04SIM7000G"));
        assert_eq!(r.step_counts(), Some([4, 3, 1, 0]));
        let m = r.measurements();
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].low, m[0].high, m[0].passed),
            (Some(10.0), None, false)
        );
        assert_eq!(
            r.captures().get("password").map(String::as_str),
            Some("***")
        );
        // A top-level field wins over the capture; a redacted one does not count.
        let mut v = base();
        v["imei"] = json!("111111111111111");
        v["firmware"] = json!("***");
        let r = Record::from_value(v).unwrap();
        assert_eq!(r.imei(), Some("111111111111111"));
        assert_eq!(r.firmware(), Some("1351B04SIM7000G"));
    }

    #[test]
    fn recipe_identity_in_any_of_its_shapes() {
        let mut v = base();
        v["recipe_path"] = json!("recipes/p.yaml");
        v["recipe_hash"] = json!("abc");
        let r = Record::from_value(v).unwrap();
        assert_eq!(
            (r.recipe(), r.recipe_path(), r.recipe_hash()),
            ("Provision", Some("recipes/p.yaml"), Some("abc"))
        );
        let mut v = base();
        v["recipe"] = json!({"name": "Provision", "path": "p.yaml", "hash": "h1"});
        let r = Record::from_value(v).unwrap();
        assert_eq!(
            (r.recipe(), r.recipe_path(), r.recipe_hash()),
            ("Provision", Some("p.yaml"), Some("h1"))
        );
        let mut v = base();
        v["job"] = json!({"path": "q.yaml", "hash": "h2", "vars": {"apn": "nbiot"}});
        let r = Record::from_value(v).unwrap();
        assert_eq!(
            (r.recipe_path(), r.recipe_hash()),
            (Some("q.yaml"), Some("h2"))
        );
    }

    #[test]
    fn a_list_of_steps_is_read_and_counted() {
        let mut v = base();
        v["steps"] = json!([
            {"name": "echo off", "status": "passed", "seconds": 0.1},
            {"name": "signal", "status": "failed", "reason": "rssi = 5", "origin": "p.yaml:9:5"},
            {"name": "attach", "status": "skipped"}
        ]);
        let r = Record::from_value(v).unwrap();
        let s = r.steps();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].reason.as_deref(), Some("rssi = 5"));
        assert_eq!(r.step_counts(), Some([3, 1, 1, 1]));
    }

    #[test]
    fn bad_records_say_why() {
        for (v, want) in [
            (json!([1]), "JSON object"),
            (
                json!({"device": "a", "verdict": "passed", "started": "2025-01-01T00:00:00Z"}),
                "no `run`",
            ),
            (
                json!({"run": "r", "verdict": "passed", "started": "2025-01-01T00:00:00Z"}),
                "no `device`",
            ),
            (
                json!({"run": "r", "device": "a", "started": "2025-01-01T00:00:00Z"}),
                "no `verdict`",
            ),
            (
                json!({"run": "r", "device": "a", "verdict": "passed", "started": "yesterday"}),
                "RFC 3339",
            ),
        ] {
            let e = Record::from_value(v).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn the_payload_carries_the_id_and_station() {
        let r = Record::from_value(base()).unwrap();
        let p = r.json_for("line-3");
        assert_eq!(p["record_id"], "20251125T154439Z-31253/ttyUSB2");
        assert_eq!(p["station"], "line-3");
        assert_eq!(p["verdict"], "failed");
        let mut v = base();
        v["station"] = json!("own");
        let r = Record::from_value(v).unwrap();
        assert_eq!(r.json_for("line-3")["station"], "own");
        assert_eq!(r.station(), Some("own"));
    }
}
