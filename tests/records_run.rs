//! `sim7k run --record-to URL`: records of emulated devices reach a real PostgreSQL and a
//! real mosquitto as each device finishes; a sink that is down or refuses the login never
//! fails the line (exit 0 and a warning naming the sink and the catch-up command, exit 4
//! with `--record-required`); `sim7k records push` then completes it with no duplicates.
//!
//! Before `--record-to` existed, every one of these failed (`unexpected argument
//! '--record-to'`).

mod records_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use records_support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const MQTT_SECRET: &str = "pw-Zq81-secret";

/// `sim7k ARGS` from the repository root, with `XDG_STATE_HOME=state` and no PGPASSWORD.
fn sim7k(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .args(args)
        .current_dir(root())
        .env_remove("PGPASSWORD")
        .env("XDG_STATE_HOME", state)
        .output()
        .expect("run sim7k")
}

/// `sim7k run` of the provisioning recipe on `count` emulated modems, plus `extra`.
fn run_emulated(count: u16, extra: &[&str], state: &Path) -> Output {
    let recipe = root().join("recipes/provision-sim7000.yaml");
    let count = count.to_string();
    let password = format!("password={MQTT_SECRET}");
    let mut args = vec![
        "run",
        recipe.to_str().unwrap(),
        "--emulate",
        "--emulator-profile",
        "zero",
        "--set",
        "username=line7",
        "--set",
        &password,
    ];
    if count != "1" {
        args.extend(["--emulate-count", &count]);
    }
    args.extend_from_slice(extra);
    sim7k(&args, state)
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSONL line"))
        .collect()
}

fn no_secret(out: &Output, secrets: &[&str]) {
    let all = show(out);
    for s in secrets {
        assert!(!all.contains(s), "`{s}` was printed:\n{all}");
    }
}

#[test]
fn eight_emulated_devices_reach_postgres_and_mqtt_as_they_finish() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let Some(mosq) = Mosquitto::start() else {
        return;
    };
    let mut sub = Subscriber::start(&mosq, "fac/rec/#", None);
    let dir = TempDir::new("run8");
    let report = dir.path().join("line.jsonl");
    let pg_url = pg.url("");
    let mqtt_url = mosq.url("", "fac/rec", "");
    let out = run_emulated(
        8,
        &[
            "--report",
            report.to_str().unwrap(),
            "--record-to",
            &pg_url,
            "--record-to",
            &mqtt_url,
            "--station",
            "line-3",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    no_secret(&out, &[LINE_PASSWORD, MQTT_SECRET]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("behind"),
        "{}",
        show(&out)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json");
    let sinks = summary["record_to"]["sinks"].as_array().expect("record_to");
    assert_eq!(sinks.len(), 2, "{summary}");
    for s in sinks {
        assert_eq!(
            (s["delivered"].as_u64(), s["behind"].as_u64()),
            (Some(8), Some(0)),
            "{s}"
        );
        assert!(!s["sink"].as_str().unwrap().contains(LINE_PASSWORD));
    }
    assert_eq!(summary["record_to"]["station"], "line-3");

    let records = read_jsonl(&report);
    assert_eq!(records.len(), 8);
    let run = records[0]["run"].as_str().unwrap().to_string();

    // PostgreSQL: one row per device, with the identities from the captures.
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "8");
    let rows = pg.sql(
        "SELECT device, run_id, station, imei, iccid, imsi, firmware, recipe, recipe_path, \
         recipe_hash, verdict, exit_code, coalesce(failed_step, '-'), started IS NOT NULL \
         FROM device_runs ORDER BY device",
    );
    let rows: BTreeMap<String, Vec<String>> = rows
        .lines()
        .map(|l| {
            let f: Vec<String> = l.split('|').map(str::to_string).collect();
            (f[0].clone(), f)
        })
        .collect();
    assert_eq!(rows.len(), 8, "{rows:?}");
    for r in &records {
        let device = r["device"].as_str().unwrap();
        let row = &rows[device];
        let caps = &r["captures"];
        let identity = &r["identity"];
        assert_eq!(row[1], run);
        assert_eq!(row[2], "line-3");
        assert_eq!(row[3], r["imei"].as_str().unwrap());
        assert_eq!(row[4], caps["iccid"].as_str().unwrap());
        assert_eq!(row[5], caps["imsi"].as_str().unwrap());
        assert_eq!(row[6], caps["firmware"].as_str().unwrap());
        assert_eq!(row[7], "SIM7000 factory provisioning");
        assert_eq!(row[8], identity["path"].as_str().unwrap());
        assert!(identity["hash"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(row[9], identity["hash"].as_str().unwrap());
        assert_eq!((row[10].as_str(), row[11].as_str()), ("passed", "0"));
        assert_eq!((row[12].as_str(), row[13].as_str()), ("-", "t"));
    }
    let steps =
        pg.sql("SELECT count(DISTINCT device) FROM device_measurements WHERE name = 'rssi'");
    assert_eq!(steps, "8");

    // MQTT: one QoS 1 message per device on <prefix>/<station>/<imei>.
    let got = sub.messages_with_qos("fac/rec/", 8, Duration::from_secs(10));
    assert_eq!(got.len(), 8, "{got:?}");
    let want: BTreeSet<String> = records
        .iter()
        .map(|r| format!("fac/rec/line-3/{}", r["imei"].as_str().unwrap()))
        .collect();
    let topics: BTreeSet<String> = got.iter().map(|(t, _, _)| t.clone()).collect();
    assert_eq!(topics, want);
    for (topic, payload, qos) in &got {
        assert_eq!(*qos, Some(1), "{topic}");
        let v: serde_json::Value = serde_json::from_str(payload).expect("JSON payload");
        assert_eq!(v["station"], "line-3");
        assert_eq!(
            v["record_id"].as_str().unwrap(),
            format!("{run}/{}", v["device"].as_str().unwrap())
        );
        assert!(topic.ends_with(v["imei"].as_str().unwrap()));
        assert!(!payload.contains(MQTT_SECRET));
    }
    // Every acknowledged record is in the ledger: pushing the file again sends nothing.
    let again = sim7k(
        &[
            "records",
            "push",
            report.to_str().unwrap(),
            "--to",
            &mqtt_url,
            "--to",
            &pg_url,
        ],
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(text.matches("8 already there, 0 sent").count(), 2, "{text}");
    assert!(
        sub.messages("fac/rec/", 1, Duration::from_millis(500))
            .is_empty(),
        "a record was published twice"
    );
}

#[test]
fn a_database_down_between_runs_warns_and_records_push_completes_it() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let dir = TempDir::new("rundown");
    let report = dir.path().join("line.jsonl");
    let url = pg.url("&timeout=2s");
    let port = pg.port.to_string();
    let base = ["--report", report.to_str().unwrap(), "--record-to", &url];

    // Up: delivered.
    let out = run_emulated(4, &base, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "4");

    // Down: the line goes on, exit 0, a warning naming the sink and the catch-up command.
    pg.stop();
    let out = run_emulated(4, &base, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let shown = format!("postgres://line:***@127.0.0.1:{port}/factory");
    assert!(
        err.contains(&format!("warning: record sink {shown}")),
        "{err}"
    );
    assert!(err.contains("missed 4 of 4 records"), "{err}");
    assert!(
        err.contains(&format!("sim7k records push {}", report.display())),
        "{err}"
    );
    no_secret(&out, &[LINE_PASSWORD, MQTT_SECRET]);
    assert_eq!(read_jsonl(&report).len(), 8, "the JSONL has every record");

    // Down, and records are required: exit 4.
    let mut required = base.to_vec();
    required.push("--record-required");
    let out = run_emulated(4, &required, dir.path());
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!("error: record sink {shown}")),
        "{err}"
    );
    no_secret(&out, &[LINE_PASSWORD]);

    // Back up: `records push` sends the 8 it lacks, once.
    pg.restart();
    let push = |_: ()| {
        sim7k(
            &["records", "push", report.to_str().unwrap(), "--to", &url],
            dir.path(),
        )
    };
    let out = push(());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("12 records in the file, 4 already there, 8 sent"),
        "{text}"
    );
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "12");
    assert_eq!(
        pg.sql("SELECT count(DISTINCT run_id) FROM device_runs"),
        "3"
    );
    let out = push(());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("12 already there, 0 sent"),
        "{}",
        show(&out)
    );
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "12");

    // And with the database up, --record-required is satisfied.
    let out = run_emulated(4, &required, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "16");
}

/// The records file sim7k keeps without `--report`: named in the note on stderr.
fn kept_file(out: &Output) -> Option<PathBuf> {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("note: no --report: the records of this run are kept in "))?;
    Some(PathBuf::from(line.trim_start_matches(
        "note: no --report: the records of this run are kept in ",
    )))
}

#[test]
fn sinks_that_refuse_the_login_say_so_and_the_records_are_kept() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let Some(mosq) = Mosquitto::start_with_password("station", "mq-Pa55-right") else {
        return;
    };
    let dir = TempDir::new("runauth");
    let state = dir.path().join("state");
    let bad_pg = format!(
        "postgres://{LINE_USER}:wrong-Pg-77@127.0.0.1:{}/factory?sslmode=disable",
        pg.port
    );
    let bad_mqtt = mosq.url("station:wrong-Mq-77@", "fac/rec", "");
    // One device, no --report (a single device is a fleet of one).
    let out = run_emulated(
        1,
        &["--record-to", &bad_pg, "--record-to", &bad_mqtt],
        &state,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("refused the login"), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(
        err.contains("check the user `line` and its password"),
        "{err}"
    );
    assert!(err.contains("refused the connection"), "{err}");
    assert!(err.contains("check the user name and password"), "{err}");
    no_secret(&out, &["wrong-Pg-77", "wrong-Mq-77", MQTT_SECRET]);
    let kept = kept_file(&out).unwrap_or_else(|| panic!("no kept file named:\n{err}"));
    assert!(kept.starts_with(state.join("sim7k/records")), "{kept:?}");
    assert_eq!(read_jsonl(&kept).len(), 1);

    // Required: exit 4.
    let out = run_emulated(1, &["--record-to", &bad_pg, "--record-required"], &state);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));

    // The kept file catches up once the right password is given.
    let out = sim7k(
        &[
            "records",
            "push",
            kept.to_str().unwrap(),
            "--to",
            &pg.url(""),
        ],
        &state,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "1");

    // With every sink up, sim7k's own file is removed at the end of the run.
    let before: BTreeSet<PathBuf> = list(&state.join("sim7k/records"));
    let out = run_emulated(1, &["--record-to", &pg.url("")], &state);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(kept_file(&out).is_none(), "{}", show(&out));
    assert_eq!(list(&state.join("sim7k/records")), before);
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "2");
}

fn list(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_bad_record_to_url_or_station_is_a_usage_error() {
    let dir = TempDir::new("runusage");
    let out = run_emulated(1, &["--record-to", "ftp://x/y"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--record-to"),
        "{}",
        show(&out)
    );
    let out = run_emulated(
        1,
        &["--record-to", "mqtt://127.0.0.1:1/p", "--station", "a/b"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn a_sink_that_never_answers_is_behind_and_the_line_goes_on() {
    // A server that accepts and never answers: each push ends at its timeout, then the
    // sink is left alone; the devices' records are all in the JSONL and the run passes.
    let hung = Silent::start();
    let dir = TempDir::new("runhung");
    let report = dir.path().join("line.jsonl");
    let url = format!(
        "postgres://line@{}/factory?sslmode=disable&timeout=1s",
        hung.addr
    );
    let out = run_emulated(
        4,
        &["--report", report.to_str().unwrap(), "--record-to", &url],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!(
            "warning: record sink postgres://line@{}",
            hung.addr
        )),
        "{err}"
    );
    assert!(err.contains("missed 4 of 4 records"), "{err}");
    assert_eq!(read_jsonl(&report).len(), 4);
}

#[test]
fn the_database_stopped_mid_run_misses_only_what_finished_after() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let dir = TempDir::new("runmid");
    let report = dir.path().join("line.jsonl");
    let url = pg.url("&timeout=2s");
    // Device 4 answers one byte every 20 ms: it finishes seconds after the other three.
    let recipe = root().join("recipes/provision-sim7000.yaml");
    let password = format!("password={MQTT_SECRET}");
    let child = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .args([
            "run",
            recipe.to_str().unwrap(),
            "--emulate",
            "--emulator-profile",
            "zero",
            "--emulate-count",
            "4",
            "--fault-on",
            "4:drip=20ms",
            "--set",
            "username=line7",
            "--set",
            &password,
            "--report",
            report.to_str().unwrap(),
            "--record-to",
            &url,
        ])
        .current_dir(root())
        .env_remove("PGPASSWORD")
        .env("XDG_STATE_HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sim7k");
    // Stop the database once the first three records are in (hang guard only).
    let guard = std::time::Instant::now();
    let count = || {
        if pg.sql("SELECT to_regclass('device_runs') IS NULL") == "t" {
            "0".to_string()
        } else {
            pg.sql("SELECT count(*) FROM device_runs")
        }
    };
    while count() != "3" {
        assert!(
            guard.elapsed() < Duration::from_secs(60),
            "the first three records never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    pg.stop();
    let out = child.wait_with_output().expect("wait for sim7k");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("missed 1 of 4 records"), "{err}");
    assert!(err.contains("sim7k records push"), "{err}");
    no_secret(&out, &[LINE_PASSWORD]);

    pg.restart();
    let out = sim7k(
        &["records", "push", report.to_str().unwrap(), "--to", &url],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("4 records in the file, 3 already there, 1 sent"),
        "{}",
        show(&out)
    );
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "4");
    assert_eq!(
        pg.sql("SELECT device FROM device_runs ORDER BY received DESC LIMIT 1"),
        "emu04"
    );
}
