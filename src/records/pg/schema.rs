//! The database schema of the records, versioned: `schema_version` holds one row per applied
//! migration; [`MIGRATIONS`] lists them in order. A station applies the missing ones on first
//! use, under an advisory lock so ten stations starting at once do not race.
//!
//! Migrations are append-only: a released migration is never edited; a change is a new entry.

/// The schema version this build writes.
pub const CURRENT: i64 = 1;

/// The advisory lock key taken while migrating (`sim7k` in ASCII).
pub const LOCK_KEY: i64 = 0x0073_696d_376b;

/// Created before anything else (outside the numbered migrations).
pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    applied timestamptz NOT NULL DEFAULT now(),
    description text NOT NULL
)";

/// `(version, description, SQL)`, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "device runs, steps, measurements, captures and the three views",
    V1,
)];

/// Version 1.
const V1: &str = r#"
CREATE TABLE device_runs (
    run_id        text NOT NULL,
    device        text NOT NULL,
    station       text NOT NULL,
    port          text,
    imei          text,
    iccid         text,
    imsi          text,
    firmware      text,
    recipe        text NOT NULL,
    recipe_path   text,
    recipe_hash   text,
    verdict       text NOT NULL,
    exit_code     integer,
    failed_step   text,
    failed_origin text,
    reason        text,
    started       timestamptz NOT NULL,
    ended         timestamptz,
    seconds       double precision,
    steps_total   integer,
    steps_passed  integer,
    steps_failed  integer,
    steps_skipped integer,
    transcript    text,
    record        jsonb NOT NULL,
    received      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, device)
);
CREATE INDEX device_runs_imei ON device_runs (imei);
CREATE INDEX device_runs_started ON device_runs (started);
CREATE INDEX device_runs_recipe_started ON device_runs (recipe, started);
CREATE INDEX device_runs_received ON device_runs (received);

CREATE TABLE device_steps (
    run_id  text NOT NULL,
    device  text NOT NULL,
    idx     integer NOT NULL,
    name    text NOT NULL,
    status  text NOT NULL,
    seconds double precision,
    reason  text,
    origin  text,
    PRIMARY KEY (run_id, device, idx),
    FOREIGN KEY (run_id, device) REFERENCES device_runs ON DELETE CASCADE
);

CREATE TABLE device_measurements (
    run_id  text NOT NULL,
    device  text NOT NULL,
    idx     integer NOT NULL,
    name    text NOT NULL,
    value   text,
    passed  boolean NOT NULL,
    step    text,
    low     double precision,
    high    double precision,
    limits  jsonb,
    PRIMARY KEY (run_id, device, idx),
    FOREIGN KEY (run_id, device) REFERENCES device_runs ON DELETE CASCADE
);

CREATE TABLE device_captures (
    run_id text NOT NULL,
    device text NOT NULL,
    name   text NOT NULL,
    value  text,
    PRIMARY KEY (run_id, device, name),
    FOREIGN KEY (run_id, device) REFERENCES device_runs ON DELETE CASCADE
);

CREATE VIEW yield_by_recipe_day AS
SELECT (started AT TIME ZONE 'UTC')::date AS day,
       recipe,
       count(*) AS runs,
       count(*) FILTER (WHERE verdict = 'passed') AS passed,
       count(*) FILTER (WHERE verdict <> 'passed') AS failed,
       count(DISTINCT coalesce(imei, run_id || '/' || device)) AS devices,
       round(100.0 * count(*) FILTER (WHERE verdict = 'passed') / count(*), 1) AS yield_percent
FROM device_runs
GROUP BY 1, 2;

CREATE VIEW failures_by_step AS
SELECT recipe,
       coalesce(failed_step, '(none)') AS step,
       count(*) AS failures,
       count(DISTINCT coalesce(imei, run_id || '/' || device)) AS devices,
       max(started) AS last_seen,
       (array_agg(reason ORDER BY started DESC, run_id COLLATE "C" DESC,
                  device COLLATE "C" DESC))[1] AS last_reason
FROM device_runs
WHERE verdict <> 'passed'
GROUP BY 1, 2;

CREATE VIEW devices_by_firmware AS
SELECT coalesce(firmware, '(unknown)') AS firmware,
       count(DISTINCT coalesce(imei, run_id || '/' || device)) AS devices,
       count(DISTINCT coalesce(imei, run_id || '/' || device))
           FILTER (WHERE verdict = 'passed') AS passed_devices,
       count(*) AS runs,
       max(started) AS last_seen
FROM device_runs
GROUP BY 1;
"#;

/// One record in one statement: the run row, and only when it is new (no conflict), its
/// steps, measurements and captures. Returns one row with the number of runs inserted (0 or
/// 1). A single statement is atomic on its own, and takes one round trip.
pub const INSERT: &str = r#"
WITH run AS (
    INSERT INTO device_runs (run_id, device, station, port, imei, iccid, imsi, firmware,
        recipe, recipe_path, recipe_hash, verdict, exit_code, failed_step, failed_origin,
        reason, started, ended, seconds, steps_total, steps_passed, steps_failed,
        steps_skipped, transcript, record)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::integer, $14, $15, $16,
        $17::timestamptz, $18::timestamptz, $19::double precision, $20::integer,
        $21::integer, $22::integer, $23::integer, $24, $25::jsonb)
    ON CONFLICT (run_id, device) DO NOTHING
    RETURNING run_id, device
), steps AS (
    INSERT INTO device_steps (run_id, device, idx, name, status, seconds, reason, origin)
    SELECT run.run_id, run.device, s.idx, s.name, s.status, s.seconds, s.reason, s.origin
    FROM run, jsonb_to_recordset($26::jsonb) AS s(idx integer, name text, status text,
        seconds double precision, reason text, origin text)
), measurements AS (
    INSERT INTO device_measurements (run_id, device, idx, name, value, passed, step, low,
        high, limits)
    SELECT run.run_id, run.device, m.idx, m.name, m.value, m.passed, m.step, m.low, m.high,
        m.limits
    FROM run, jsonb_to_recordset($27::jsonb) AS m(idx integer, name text, value text,
        passed boolean, step text, low double precision, high double precision, limits jsonb)
), captures AS (
    INSERT INTO device_captures (run_id, device, name, value)
    SELECT run.run_id, run.device, c.key, c.value
    FROM run, jsonb_each_text($28::jsonb) AS c
)
SELECT count(*) FROM run
"#;

/// The views as `sim7k records` reads them (sorted in Rust, the same for file and database).
pub const SELECT_YIELD: &str =
    "SELECT day::text, recipe, runs, passed, devices FROM yield_by_recipe_day";

/// See [`SELECT_YIELD`].
pub const SELECT_FAILURES: &str = r#"SELECT recipe, step, failures, devices,
    to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), last_reason
    FROM failures_by_step"#;

/// See [`SELECT_YIELD`].
pub const SELECT_FIRMWARE: &str = r#"SELECT firmware, devices, passed_devices, runs,
    to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    FROM devices_by_firmware"#;

/// The schema as documentation: the version table, then every migration.
pub fn full_sql() -> String {
    let mut s = format!("{VERSION_TABLE};\n");
    for (v, d, sql) in MIGRATIONS {
        s.push_str(&format!("\n-- version {v}: {d}\n{}\n", sql.trim()));
    }
    s
}
