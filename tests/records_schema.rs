//! The PostgreSQL schema: created on first use, versioned, safe when many stations start at
//! once, refused when newer than this build; records with a list of steps fill
//! `device_steps`.

mod records_support;

use records_support::*;
use sim7k::records::Sinks;

const RUN: &str = "20251125T160000Z-77";

#[test]
fn ten_stations_starting_at_once_create_the_schema_once() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    assert_eq!(
        pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'device_runs'"),
        "0"
    );
    let url = pg.url("&timeout=30s");
    std::thread::scope(|s| {
        for station in 0..10 {
            let url = url.clone();
            s.spawn(move || {
                let sinks = Sinks::from_urls(&[url], &format!("station-{station}")).unwrap();
                for n in 0..4 {
                    let mut r = device_record(RUN, n);
                    r.device = format!("st{station}-emu{n:02}");
                    let report = sinks.push(&r);
                    assert!(!report.behind(), "{:?}", report.warnings());
                }
            });
        }
    });
    assert_eq!(
        pg.sql("SELECT version, description FROM schema_version"),
        "1|device runs, steps, measurements, captures and the three views"
    );
    assert_eq!(
        pg.sql("SELECT count(*), count(DISTINCT station) FROM device_runs"),
        "40|10"
    );
    // The columns issue 15 names, and the views.
    assert_eq!(
        pg.sql("SELECT imei, recipe, verdict, to_char(started AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM device_runs WHERE device = 'st0-emu00'"),
        "869951031234560|SIM7000 factory provisioning|passed|2025-11-25"
    );
    assert_eq!(
        pg.sql("SELECT day, runs, passed, failed, devices, yield_percent FROM yield_by_recipe_day"),
        "2025-11-25|40|30|10|4|75.0"
    );
}

#[test]
fn a_newer_schema_is_refused_and_a_missing_permission_is_explained() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    // A role that may not create tables, on a database with no schema yet.
    let md5 = format!(
        "postgres://{MD5_USER}:{MD5_PASSWORD}@127.0.0.1:{}/factory?sslmode=disable",
        pg.port
    );
    pg.sql(&format!("REVOKE ALL ON SCHEMA public FROM {MD5_USER}"));
    let sinks = Sinks::from_urls(std::slice::from_ref(&md5), "st").unwrap();
    let e = sinks.probe().remove(0).1.unwrap_err();
    assert!(
        e.message
            .contains("cannot create or migrate the records schema")
            && e.message.contains("permission denied"),
        "{e}"
    );
    // Once the owner created it, the role only needs to insert and select.
    let sinks = Sinks::from_urls(&[pg.url("")], "st").unwrap();
    assert!(!sinks.push(&device_record(RUN, 0)).behind());
    pg.sql(&format!(
        "GRANT USAGE ON SCHEMA public TO {MD5_USER};
         GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {MD5_USER};"
    ));
    let sinks = Sinks::from_urls(&[md5], "st").unwrap();
    let r = sinks.push(&device_record(RUN, 1));
    assert!(!r.behind(), "{:?}", r.warnings());

    // A later sim7k migrated the database further: this one refuses to write.
    pg.sql("INSERT INTO schema_version (version, description) VALUES (99, 'future')");
    let sinks = Sinks::from_urls(&[pg.url("")], "st").unwrap();
    let w = sinks.push(&device_record(RUN, 2)).warnings().join("\n");
    assert!(
        w.contains("the records schema is version 99, newer than this sim7k knows (1)"),
        "{w}"
    );
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "2");
}

#[test]
fn a_record_that_lists_its_steps_fills_device_steps() {
    let Some(pg) = PgServer::start(PgAuth::Password) else {
        return;
    };
    let mut v = serde_json::to_value(device_record(RUN, 3)).unwrap();
    // The result model may list every step, and name the recipe's path and hash.
    v["steps"] = serde_json::json!([
        {"name": "echo off", "status": "passed", "seconds": 0.05},
        {"name": "signal", "status": "failed", "seconds": 2.0, "reason": "rssi = 5, below the minimum 10",
         "origin": "recipes/provision-sim7000.yaml:92:5"},
        {"name": "attach", "status": "skipped"}
    ]);
    v["recipe_path"] = "recipes/provision-sim7000.yaml".into();
    v["recipe_hash"] = "sha256:0f3a".into();
    v["station"] = "from-the-record".into();
    let sinks = Sinks::from_urls(&[pg.url("")], "st").unwrap();
    let r = sinks.push_value(v.clone());
    assert!(!r.behind(), "{:?}", r.warnings());
    assert_eq!(
        pg.sql("SELECT idx, name, status, coalesce(seconds::text, '-'), coalesce(reason, '-') FROM device_steps ORDER BY idx"),
        "0|echo off|passed|0.05|-\n1|signal|failed|2|rssi = 5, below the minimum 10\n2|attach|skipped|-|-"
    );
    assert_eq!(
        pg.sql(
            "SELECT recipe_path, recipe_hash, station, steps_total, steps_failed FROM device_runs"
        ),
        "recipes/provision-sim7000.yaml|sha256:0f3a|from-the-record|3|1"
    );
    // A record the database cannot take is refused alone; the sink stays up.
    let mut bad = v.clone();
    bad["device"] = "emu-bad".into();
    bad["reason"] = "nul \u{0} byte".into();
    let r = sinks.push_value(bad);
    let w = r.warnings().join("\n");
    assert!(w.contains("refused the record"), "{w}");
    let mut ok = v;
    ok["device"] = "emu-ok".into();
    let r = sinks.push_value(ok);
    assert!(!r.behind(), "{:?}", r.warnings());
    assert_eq!(pg.sql("SELECT count(*) FROM device_runs"), "2");
    // Unusable records never reach a sink.
    let r = sinks.push_value(serde_json::json!({"device": "x"}));
    assert!(r.id.is_none() && r.behind());
}
