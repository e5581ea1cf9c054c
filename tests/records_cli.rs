//! `sim7k records`: push and the views, through the binary, against a real PostgreSQL and
//! mosquitto; the views of a file and of the database it was pushed to agree.

mod records_support;

use std::process::{Command, Output};

use records_support::*;
use sim7k::records::{self, View};

fn sim7k(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sim7k"));
    c.args(args).env_remove("PGPASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run sim7k")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Records over three days and two recipes: re-tests of one IMEI, devices without IMEI,
/// unknown firmware, failures at two steps.
fn varied_records() -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for n in 0..24usize {
        let run = format!("2025112{}T080000Z-{}", 5 + n / 10, 100 + n / 10);
        let mut v = serde_json::to_value(device_record(&run, n)).unwrap();
        v["started"] = format!(
            "2025-11-2{}T{:02}:{:02}:00.{:03}Z",
            5 + n / 10,
            n % 24,
            n,
            n
        )
        .into();
        if n % 5 == 0 {
            v["recipe"] = "modem info".into();
        }
        if n % 7 == 0 {
            v["imei"] = serde_json::Value::Null;
            v["captures"].as_object_mut().unwrap().remove("imei");
        }
        if n % 6 == 0 {
            // A re-test of device 1's IMEI.
            v["imei"] = "869951031234561".into();
        }
        if n % 9 == 0 {
            v["captures"].as_object_mut().unwrap().remove("firmware");
        }
        if n % 8 == 2 {
            v["verdict"] = "timeout".into();
            v["failed_step"] = "attach".into();
            v["reason"] = format!("no +CGATT: 1 within 60s (try {n})").into();
        }
        out.push(v);
    }
    out
}

fn write_values(path: &std::path::Path, values: &[serde_json::Value]) {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    write(path, &text);
}

#[test]
fn views_of_a_file_and_of_its_database_agree() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let dir = TempDir::new("views");
    let jsonl = dir.path().join("line.jsonl");
    write_values(&jsonl, &varied_records());
    let s = records::push_file(&jsonl, &pg.url(""), "st").unwrap();
    assert!(s.complete() && s.sent == 24, "{s:?}");
    let (recs, bad) = records::read_records(&jsonl).unwrap();
    assert!(bad.is_empty());
    for view in [View::Yield, View::Failures, View::Firmware] {
        let file = records::views::from_records(view, &recs);
        let db = records::views::from_database(view, &pg.url("")).unwrap();
        assert!(!file.is_empty());
        assert_eq!(file, db, "{view:?}");
    }
    // Spot checks against hand counts.
    let records::Rows::Yield(y) = records::views::from_records(View::Yield, &recs) else {
        panic!()
    };
    let total: u64 = y.iter().map(|r| r.runs).sum();
    assert_eq!(total, 24);
    assert_eq!(
        y.iter()
            .map(|r| r.day.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );

    // The same through the binary, as JSON.
    let url = pg.url("");
    for v in ["yield", "failures", "firmware"] {
        let f = sim7k(
            &["records", v, "--file", jsonl.to_str().unwrap(), "--json"],
            &[],
        );
        let d = sim7k(&["records", v, "--db", &url, "--json"], &[]);
        assert!(
            f.status.success() && d.status.success(),
            "{}{}",
            text(&f.stderr),
            text(&d.stderr)
        );
        assert_eq!(text(&f.stdout), text(&d.stdout), "{v}");
    }
    let t = sim7k(
        &["records", "failures", "--file", jsonl.to_str().unwrap()],
        &[],
    );
    let out = text(&t.stdout);
    assert!(
        out.starts_with("recipe") && out.contains("attach") && out.contains("signal"),
        "{out}"
    );
}

#[test]
fn records_push_sends_what_is_missing_and_says_when_a_sink_is_behind() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let mut sub = Subscriber::start(&broker, "cli/#", None);
    let dir = TempDir::new("cli-push");
    let jsonl = dir.path().join("line.jsonl");
    let recs: Vec<_> = (0..8)
        .map(|n| device_record("20251125T153000Z-9", n))
        .collect();
    write_jsonl(&jsonl, &recs);
    // The password from an environment reference.
    let pg_url = format!(
        "postgres://{LINE_USER}:{{{{env.LINE_DB_PASSWORD}}}}@127.0.0.1:{}/factory?sslmode=disable",
        pg.port
    );
    let mqtt_url = broker.url("", "cli", "");
    let file = jsonl.to_str().unwrap();
    let env = [("LINE_DB_PASSWORD", LINE_PASSWORD)];
    let o = sim7k(
        &[
            "records",
            "push",
            file,
            "--to",
            &pg_url,
            "--to",
            &mqtt_url,
            "--station",
            "bench-1",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("8 records in the file, 0 already there, 8 sent"),
        "{out}"
    );
    assert!(
        !out.contains(LINE_PASSWORD) && out.contains(":***@"),
        "{out}"
    );
    assert_eq!(
        pg.sql("SELECT count(*), min(station) FROM device_runs"),
        "8|bench-1"
    );
    let o = sim7k(
        &[
            "records", "push", file, "--to", &pg_url, "--to", &mqtt_url, "--json",
        ],
        &env,
    );
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j[0]["already"], 8);
    assert_eq!(j[1]["sent"], 0);
    assert_eq!(
        sub.messages("cli/", 16, std::time::Duration::from_secs(2))
            .len(),
        8
    );

    // A sink that is down: exit 4 and why; a missing env var: exit 2.
    let closed = free_port();
    let down = format!("postgres://line:x@127.0.0.1:{closed}/factory?timeout=1s");
    let o = sim7k(&["records", "push", file, "--to", &down], &[]);
    assert_eq!(o.status.code(), Some(4));
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot connect") && text(&o.stdout).contains("8 not sent"),
        "{err}"
    );
    let o = sim7k(&["records", "push", file, "--to", &pg_url], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("LINE_DB_PASSWORD, which is not set"));
    let o = sim7k(&["records", "yield"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn records_schema_prints_the_versioned_sql() {
    let o = sim7k(&["records", "schema"], &[]);
    assert!(o.status.success());
    let sql = text(&o.stdout);
    for want in [
        "CREATE TABLE IF NOT EXISTS schema_version",
        "-- version 1:",
        "CREATE TABLE device_runs",
        "imei ",
        "CREATE VIEW yield_by_recipe_day",
        "CREATE VIEW failures_by_step",
        "CREATE VIEW devices_by_firmware",
    ] {
        assert!(sql.contains(want), "{want}");
    }
}
