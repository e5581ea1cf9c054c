//! Records pushed to a real PostgreSQL (started here, in a temporary directory) and a real
//! mosquitto, checked with independent clients (`psql`, `mosquitto_sub`).

mod records_support;

use std::path::Path;
use std::time::{Duration, Instant};

use records_support::*;
use sim7k::records::{self, Outcome, Sinks};

const RUN: &str = "20251125T153000Z-4242";

fn rows(pg: &PgServer, sql: &str) -> Vec<String> {
    let out = pg.sql(sql);
    out.lines().map(str::to_string).collect()
}

#[test]
fn records_of_eight_devices_arrive_in_both_sinks() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let mut sub = Subscriber::start(&broker, "factory/#", None);
    let dir = TempDir::new("eight");
    let jsonl = dir.path().join("line.jsonl");
    let sinks =
        Sinks::from_urls(&[pg.url(""), broker.url("", "factory", "")], "station-7").unwrap();
    sinks.keep_ledgers_next_to(&jsonl).unwrap();
    let recs: Vec<_> = (0..8).map(|n| device_record(RUN, n)).collect();
    for r in &recs {
        // As the fleet does: the JSONL first, then the sinks.
        write_jsonl(&jsonl, std::slice::from_ref(r));
        let report = sinks.push(r);
        assert!(!report.behind(), "{:?}", report.warnings());
        assert_eq!(report.sinks.len(), 2);
    }

    // PostgreSQL: one row per device with its identity, verdict and recipe.
    let got = rows(
        &pg,
        "SELECT device, imei, iccid, imsi, firmware, recipe, verdict, station, exit_code,
                coalesce(failed_step, '-'), to_char(started AT TIME ZONE 'UTC', 'HH24:MI'), steps_total
         FROM device_runs ORDER BY device",
    );
    assert_eq!(got.len(), 8, "{got:?}");
    assert_eq!(
        got[0],
        "emu00|869951031234560|8988303000000000000|466010000000000|1351B04SIM7000G|SIM7000 factory provisioning|passed|station-7|0|-|15:00|20"
    );
    assert_eq!(
        got[3],
        "emu03|869951031234563|8988303000000000003|466010000000003|1351B05SIM7000G|SIM7000 factory provisioning|failed|station-7|1|signal|15:03|20"
    );
    // Measurements and captures in their own tables; the secret capture stays redacted.
    assert_eq!(
        rows(
            &pg,
            "SELECT count(*), count(*) FILTER (WHERE NOT passed), min(low), max(high) FROM device_measurements"
        ),
        ["8|2|10|31"]
    );
    assert_eq!(
        rows(
            &pg,
            "SELECT DISTINCT value FROM device_captures WHERE name = 'mqtt_password'"
        ),
        ["***"]
    );
    // The whole record is kept as JSON.
    assert_eq!(
        rows(
            &pg,
            "SELECT record->>'transcript' FROM device_runs WHERE device = 'emu05'"
        ),
        ["logs/emu05.log"]
    );

    // MQTT: each record as JSON on <prefix>/<station>/<imei>.
    let msgs = sub.messages("factory/", 8, Duration::from_secs(10));
    assert_eq!(msgs.len(), 8, "{msgs:?}");
    for (n, (topic, payload)) in msgs.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let imei = format!("86995103{:07}", 1_234_560 + n);
        assert_eq!(topic, &format!("factory/station-7/{imei}"));
        assert_eq!(v["imei"], imei.as_str());
        assert_eq!(v["record_id"], format!("{RUN}/emu{n:02}"));
        assert_eq!(v["station"], "station-7");
        assert_eq!(v["captures"]["mqtt_password"], "***");
    }
    // The broker's acknowledgements are in the ledger next to the JSONL.
    let ledger: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("line.jsonl.sent-")
        })
        .collect();
    assert_eq!(ledger.len(), 1);
    let text = std::fs::read_to_string(ledger[0].path()).unwrap();
    assert_eq!(text.lines().count(), 8);
    let status = sinks.status();
    assert!(
        status.iter().all(|s| s.delivered == 8 && s.behind == 0),
        "{status:?}"
    );
}

#[test]
fn pushing_the_same_file_twice_stores_each_record_once() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let mut sub = Subscriber::start(&broker, "twice/#", None);
    let dir = TempDir::new("twice");
    let jsonl = dir.path().join("line.jsonl");
    let recs: Vec<_> = (0..8).map(|n| device_record(RUN, n)).collect();
    write_jsonl(&jsonl, &recs);
    let mqtt = broker.url("", "twice", "");
    for round in 0..2 {
        let s = records::push_file(&jsonl, &pg.url(""), "st").unwrap();
        assert!(s.complete(), "{s:?}");
        assert_eq!(s.records, 8);
        assert_eq!(
            (s.sent, s.already),
            if round == 0 { (8, 0) } else { (0, 8) }
        );
        let s = records::push_file(&jsonl, &mqtt, "st").unwrap();
        assert!(s.complete(), "{s:?}");
        assert_eq!(
            (s.sent, s.already),
            if round == 0 { (8, 0) } else { (0, 8) }
        );
    }
    assert_eq!(rows(&pg, "SELECT count(*) FROM device_runs"), ["8"]);
    assert_eq!(rows(&pg, "SELECT count(*) FROM device_measurements"), ["8"]);
    // The database refuses a duplicate even when asked to insert it directly.
    let sinks = Sinks::from_urls(&[pg.url("")], "st").unwrap();
    let r = sinks.push(&recs[0]);
    assert!(
        matches!(
            r.sinks[0].1,
            Outcome::Delivered {
                delivery: records::Delivery::AlreadyStored
            }
        ),
        "{r:?}"
    );
    assert_eq!(rows(&pg, "SELECT count(*) FROM device_runs"), ["8"]);
    // Eight messages, not sixteen.
    let msgs = sub.messages("twice/", 16, Duration::from_secs(2));
    assert_eq!(msgs.len(), 8, "{msgs:?}");
}

#[test]
fn a_database_stopped_mid_run_is_completed_later_without_duplicates() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let dir = TempDir::new("stopped");
    let jsonl = dir.path().join("line.jsonl");
    let sinks = Sinks::from_urls(&[pg.url("&timeout=2s")], "st").unwrap();
    let recs: Vec<_> = (0..8).map(|n| device_record(RUN, n)).collect();
    let mut behind = 0;
    for (i, r) in recs.iter().enumerate() {
        if i == 3 {
            pg.stop();
        }
        write_jsonl(&jsonl, std::slice::from_ref(r));
        let report = sinks.push(r);
        if report.behind() {
            behind += 1;
            let w = report.warnings().join("\n");
            assert!(w.contains("is behind") && w.contains("records push"), "{w}");
        }
    }
    assert_eq!(behind, 5, "the five records after the stop are behind");
    let status = sinks.status();
    assert_eq!((status[0].delivered, status[0].behind), (3, 5));
    assert!(status[0].error.is_some());
    // The JSONL holds all eight.
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 8);

    // While the server is down, `records push` says so and sends nothing.
    let s = records::push_file(&jsonl, &pg.url("&timeout=2s"), "st").unwrap();
    assert!(!s.complete());
    assert_eq!(s.not_sent, 8);
    assert!(
        s.error
            .as_ref()
            .unwrap()
            .message
            .contains("PostgreSQL at 127.0.0.1"),
        "{s:?}"
    );

    pg.restart();
    let s = records::push_file(&jsonl, &pg.url(""), "st").unwrap();
    assert!(s.complete(), "{s:?}");
    assert_eq!((s.records, s.already, s.sent), (8, 3, 5));
    assert_eq!(
        rows(
            &pg,
            "SELECT count(*), count(DISTINCT (run_id, device)) FROM device_runs"
        ),
        ["8|8"]
    );
    let s = records::push_file(&jsonl, &pg.url(""), "st").unwrap();
    assert_eq!((s.already, s.sent), (8, 0));
    assert_eq!(rows(&pg, "SELECT count(*) FROM device_runs"), ["8"]);
}

#[test]
fn a_sink_that_refuses_credentials_says_so_clearly() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let port = pg.port;
    // SCRAM, wrong password.
    let url = format!("postgres://line:wrong@127.0.0.1:{port}/factory?sslmode=disable");
    let s = records::push_file(Path::new("/dev/null"), &url, "st");
    // An empty file: nothing to push, but the login is still tried.
    let s = s.unwrap();
    let e = s.error.expect("a refused login").message;
    assert!(
        e.contains("refused the login")
            && e.contains("password authentication failed for user \"line\"")
            && e.contains("check the user `line` and its password"),
        "{e}"
    );
    assert!(!e.contains("wrong"), "the password leaked: {e}");
    // No password at all (and no PGPASSWORD): what to do.
    let sinks = Sinks::from_urls(
        &[format!(
            "postgres://line:@127.0.0.1:{port}/factory?sslmode=disable"
        )],
        "st",
    )
    .unwrap();
    let probe = sinks.probe();
    let e = probe[0].1.as_ref().unwrap_err();
    assert_eq!(e.kind, records::SinkErrorKind::Refused, "{e}");
    // MD5: the right password works, a wrong one is refused.
    let md5 =
        format!("postgres://{MD5_USER}:{MD5_PASSWORD}@127.0.0.1:{port}/factory?sslmode=disable");
    let sinks = Sinks::from_urls(&[md5], "st").unwrap();
    let r = sinks.push(&device_record(RUN, 0));
    assert!(!r.behind(), "{:?}", r.warnings());
    let bad = format!("postgres://{MD5_USER}:nope@127.0.0.1:{port}/factory?sslmode=disable");
    let sinks = Sinks::from_urls(&[bad], "st").unwrap();
    let r = sinks.push(&device_record(RUN, 1));
    let w = r.warnings().join("\n");
    assert!(w.contains("password authentication failed"), "{w}");
    // sslmode=require needs the TLS stage: said plainly.
    let sinks = Sinks::from_urls(&[pg.url("").replace("disable", "require")], "st").unwrap();
    let w = sinks.push(&device_record(RUN, 3)).warnings().join("\n");
    assert!(w.contains("needs TLS"), "{w}");

    let Some(broker) = Mosquitto::start_with_password("station", "s3cret") else {
        return;
    };
    let url = broker.url("station:bad@", "auth", "");
    let sinks = Sinks::from_urls(&[url], "st").unwrap();
    let w = sinks.push(&device_record(RUN, 0)).warnings().join("\n");
    assert!(
        w.contains("refused the connection")
            && w.contains("not authori")
            && w.contains("check the user name and password"),
        "{w}"
    );
    assert!(!w.contains("bad@"), "{w}");
    let url = broker.url("", "auth", "");
    let sinks = Sinks::from_urls(&[url], "st").unwrap();
    let w = sinks.push(&device_record(RUN, 0)).warnings().join("\n");
    assert!(w.contains("refused the connection"), "{w}");
    let mut sub = Subscriber::start(&broker, "auth/#", Some(("station", "s3cret")));
    let url = broker.url("station:s3cret@", "auth", "");
    let sinks = Sinks::from_urls(&[url], "st").unwrap();
    assert!(!sinks.push(&device_record(RUN, 0)).behind());
    assert_eq!(sub.messages("auth/", 1, Duration::from_secs(10)).len(), 1);
}

#[test]
fn an_unreachable_sink_does_not_block_past_its_timeout() {
    // A server that accepts and never answers, and a port nobody listens on.
    let silent = Silent::start();
    let closed = free_port();
    let urls = [
        format!(
            "postgres://line:pw@{}/factory?sslmode=disable&timeout=300ms",
            silent.addr
        ),
        format!("mqtt://{}/x?timeout=300ms", silent.addr),
        format!("postgres://line:pw@127.0.0.1:{closed}/factory?timeout=300ms"),
        format!("mqtt://127.0.0.1:{closed}/x?timeout=300ms"),
    ];
    let sinks = Sinks::from_urls(&urls, "st").unwrap();
    let start = Instant::now();
    let r = sinks.push(&device_record(RUN, 0));
    let first = start.elapsed();
    assert!(r.behind());
    let kinds: Vec<_> = r
        .sinks
        .iter()
        .map(|(_, o)| match o {
            Outcome::Behind { error, skipped } => (error.kind, *skipped),
            other => panic!("{other:?}"),
        })
        .collect();
    use records::SinkErrorKind::{Timeout, Unreachable};
    assert_eq!(
        kinds,
        [
            (Timeout, false),
            (Timeout, false),
            (Unreachable, false),
            (Unreachable, false)
        ]
    );
    // The four pushes run side by side, each bounded by 300 ms (generous margin for a
    // loaded machine; without the bound the silent server would hold the push forever).
    assert!(first < Duration::from_secs(10), "{first:?}");
    // Right after, the sinks are known down: the next push does not wait at all.
    let r = sinks.push(&device_record(RUN, 1));
    assert!(
        r.sinks
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Behind { skipped: true, .. })),
        "{r:?}"
    );
    let w = r.warnings().join("\n");
    assert!(
        w.contains("sink down: ") && w.contains("no answer in time"),
        "{w}"
    );
}

#[test]
fn a_server_that_is_not_the_sink_is_an_error_not_a_hang() {
    // An HTTP server on the port: its first bytes would read as a PostgreSQL message of
    // 1.4 GB, and as an MQTT packet that is not a CONNACK.
    let (addr, _keep) = talker(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let urls = [
        format!("postgres://line:pw@{addr}/factory?sslmode=disable&timeout=20s"),
        format!("mqtt://{addr}/x?timeout=20s"),
    ];
    let sinks = Sinks::from_urls(&urls, "st").unwrap();
    let start = Instant::now();
    let r = sinks.push(&device_record(RUN, 0));
    let w = r.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("does not speak the PostgreSQL protocol (it sent `HTTP/1.1 400"),
        "{}",
        w[0]
    );
    assert!(
        w[1].contains("MQTT broker at") && w[1].contains("bad packet"),
        "{}",
        w[1]
    );
    // Told at once, not after the 20 s timeout.
    assert!(start.elapsed() < Duration::from_secs(15));
}
