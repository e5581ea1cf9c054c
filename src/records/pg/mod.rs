//! The PostgreSQL sink: one row per device run in `device_runs`, its steps, measurements and
//! captures in their own tables; the schema created and migrated on first use.
//!
//! Idempotence: the primary key of `device_runs` is `(run_id, device)` and the insert says
//! `ON CONFLICT DO NOTHING`; the child rows are inserted only with a new run row, in the same
//! statement, so pushing a record twice stores it once, atomically.

pub mod schema;
pub mod wire;

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::record::{Record, RecordId};
use super::sink::{Delivery, Sink, SinkError, SinkErrorKind};
use super::url::{PgUrl, SinkUrl};
use wire::{Connection, QueryError, Row, ServerError};

/// A PostgreSQL database as a record sink.
pub struct PgSink {
    url: PgUrl,
    conn: Option<Connection>,
}

impl PgSink {
    /// A sink for `url`; it connects on first use.
    pub fn new(url: PgUrl) -> PgSink {
        PgSink { url, conn: None }
    }

    /// The open connection, or a new one with the schema checked (and created or migrated).
    fn connection(&mut self, deadline: Instant) -> Result<(&mut Connection, bool), SinkError> {
        let reused = self.conn.is_some();
        if self.conn.is_none() {
            let mut c = Connection::connect(&self.url, deadline)?;
            ensure_schema(&mut c)?;
            self.conn = Some(c);
        }
        match self.conn.as_mut() {
            Some(c) => {
                c.set_deadline(deadline);
                Ok((c, reused))
            }
            None => Err(SinkError::new(SinkErrorKind::Protocol, "no connection")),
        }
    }

    /// Run `f` on a connection; a reused connection that turns out dead (the server was
    /// restarted since) is replaced once, within the same deadline.
    fn with_connection<T>(
        &mut self,
        deadline: Instant,
        f: &mut dyn FnMut(&mut Connection) -> Result<T, QueryError>,
    ) -> Result<T, SinkError> {
        for attempt in 0..2 {
            let (conn, reused) = self.connection(deadline)?;
            let place = conn.place().to_string();
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(QueryError::Server(e)) => {
                    let err = server_error(&place, &e);
                    if err.kind != SinkErrorKind::Rejected {
                        self.conn = None;
                    }
                    return Err(err);
                }
                Err(QueryError::Link(e)) => {
                    self.conn = None;
                    if !(reused && attempt == 0 && e.kind != SinkErrorKind::Timeout) {
                        return Err(e);
                    }
                }
            }
        }
        Err(SinkError::new(
            SinkErrorKind::Unreachable,
            format!(
                "PostgreSQL at {}:{}: the connection keeps failing",
                self.url.host, self.url.port
            ),
        ))
    }
}

impl Sink for PgSink {
    fn name(&self) -> String {
        SinkUrl::Postgres(self.url.clone()).redacted()
    }

    fn timeout(&self) -> Duration {
        self.url.timeout
    }

    fn push(
        &mut self,
        record: &Record,
        station: &str,
        deadline: Instant,
    ) -> Result<Delivery, SinkError> {
        let params = insert_params(record, station);
        let refs: Vec<Option<&str>> = params.iter().map(Option::as_deref).collect();
        let rows = self.with_connection(deadline, &mut |c| c.query(schema::INSERT, &refs))?;
        match first_int(&rows) {
            Some(1) => Ok(Delivery::Stored),
            Some(0) => Ok(Delivery::AlreadyStored),
            _ => Err(SinkError::new(
                SinkErrorKind::Protocol,
                "the insert returned no count",
            )),
        }
    }

    fn present(
        &mut self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<HashSet<RecordId>, SinkError> {
        let runs: BTreeSet<&str> = records.iter().map(|r| r.id.run.as_str()).collect();
        let mut have = HashSet::new();
        for run in runs {
            let rows = self.with_connection(deadline, &mut |c| {
                c.query(
                    "SELECT device FROM device_runs WHERE run_id = $1",
                    &[Some(run)],
                )
            })?;
            for row in rows {
                if let Some(Some(device)) = row.into_iter().next() {
                    have.insert(RecordId {
                        run: run.to_string(),
                        device,
                    });
                }
            }
        }
        Ok(have)
    }

    fn probe(&mut self, deadline: Instant) -> Result<(), SinkError> {
        self.with_connection(deadline, &mut |c| c.simple("SELECT 1").map(|_| ()))
    }
}

/// Run one query (for the views) on a fresh connection.
pub fn read(url: &PgUrl, sql: &str) -> Result<Vec<Row>, SinkError> {
    let deadline = Instant::now() + url.timeout.max(Duration::from_secs(30));
    let mut c = Connection::connect(url, deadline)?;
    let place = c.place().to_string();
    c.query(sql, &[]).map_err(|e| match e {
        QueryError::Server(e) if e.code == "42P01" => SinkError::new(
            SinkErrorKind::Config,
            format!(
                "{place}: this database holds no sim7k records yet ({}); push some with `sim7k records push`",
                e.message
            ),
        ),
        QueryError::Server(e) => server_error(&place, &e),
        QueryError::Link(e) => e,
    })
}

/// The first column of the first row as an integer.
fn first_int(rows: &[Row]) -> Option<i64> {
    rows.first()?.first()?.as_deref()?.parse().ok()
}

/// Check the schema version; create or migrate it when it is missing or older.
fn ensure_schema(c: &mut Connection) -> Result<(), SinkError> {
    let place = c.place().to_string();
    match c.simple("SELECT coalesce(max(version), 0) FROM schema_version") {
        Ok(rows) => {
            let v = first_int(&rows).unwrap_or(0);
            if v == schema::CURRENT {
                return Ok(());
            }
            if v > schema::CURRENT {
                return Err(newer(&place, v));
            }
        }
        Err(QueryError::Server(e)) if e.code == "42P01" => {}
        Err(QueryError::Server(e)) => return Err(server_error(&place, &e)),
        Err(QueryError::Link(e)) => return Err(e),
    }
    migrate(c).map_err(|e| match e {
        QueryError::Server(e) => SinkError::new(
            SinkErrorKind::Refused,
            format!(
                "{place}: cannot create or migrate the records schema: {e} — run sim7k once as a role that may create tables in this database (or GRANT CREATE ON SCHEMA public to this user)"
            ),
        ),
        QueryError::Link(e) => e,
    })
}

fn newer(place: &str, v: i64) -> SinkError {
    SinkError::new(
        SinkErrorKind::Config,
        format!(
            "{place}: the records schema is version {v}, newer than this sim7k knows ({}): upgrade sim7k on this station",
            schema::CURRENT
        ),
    )
}

fn migrate(c: &mut Connection) -> Result<(), QueryError> {
    c.simple(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({}); {}",
        schema::LOCK_KEY,
        schema::VERSION_TABLE
    ))?;
    let r = (|| {
        let v = first_int(&c.simple("SELECT coalesce(max(version), 0) FROM schema_version")?)
            .unwrap_or(0);
        if v > schema::CURRENT {
            return Err(QueryError::Link(newer(c.place(), v)));
        }
        for (version, description, sql) in schema::MIGRATIONS {
            if *version <= v {
                continue;
            }
            c.simple(sql)?;
            let version = version.to_string();
            c.query(
                "INSERT INTO schema_version (version, description) VALUES ($1::integer, $2)",
                &[Some(&version), Some(description)],
            )?;
        }
        c.simple("COMMIT")?;
        Ok(())
    })();
    if r.is_err() {
        let _ = c.simple("ROLLBACK");
    }
    r
}

/// A server error as a sink error: bad data rejects the record only; the rest is about the
/// sink.
fn server_error(place: &str, e: &ServerError) -> SinkError {
    let class = e.code.get(..2).unwrap_or("");
    let kind = match class {
        "22" | "23" => SinkErrorKind::Rejected,
        "08" | "57" | "53" => SinkErrorKind::Unreachable,
        "28" | "42" => SinkErrorKind::Refused,
        _ => SinkErrorKind::Protocol,
    };
    let what = if kind == SinkErrorKind::Rejected {
        "refused the record"
    } else {
        "failed"
    };
    SinkError::new(kind, format!("{place} {what}: {e}"))
}

/// The 28 parameters of [`schema::INSERT`].
fn insert_params(r: &Record, station: &str) -> Vec<Option<String>> {
    let s = |v: Option<&str>| v.map(str::to_string);
    let counts = r.step_counts();
    let count = |i: usize| {
        counts
            .and_then(|c| c.get(i).copied())
            .map(|n| n.to_string())
    };
    let steps: Vec<Value> = r
        .steps()
        .iter()
        .map(|st| {
            json!({"idx": st.index, "name": st.name, "status": st.status, "seconds": st.seconds,
                   "reason": st.reason, "origin": st.origin})
        })
        .collect();
    let measurements: Vec<Value> = r
        .measurements()
        .iter()
        .map(|m| {
            json!({"idx": m.index, "name": m.name, "value": m.value, "passed": m.passed,
                   "step": m.step, "low": m.low, "high": m.high, "limits": m.limits})
        })
        .collect();
    vec![
        Some(r.id.run.clone()),
        Some(r.id.device.clone()),
        Some(station.to_string()),
        s(r.port()),
        s(r.imei()),
        s(r.iccid()),
        s(r.imsi()),
        s(r.firmware()),
        Some(r.recipe().to_string()),
        s(r.recipe_path()),
        s(r.recipe_hash()),
        Some(r.verdict().to_string()),
        r.exit_code().map(|c| c.to_string()),
        s(r.failed_step()),
        s(r.failed_origin()),
        s(r.reason()),
        Some(r.started_text().to_string()),
        s(r.ended_text()),
        r.seconds().filter(|x| x.is_finite()).map(|x| x.to_string()),
        count(0),
        count(1),
        count(2),
        count(3),
        s(r.transcript()),
        Some(Value::Object(r.json().clone()).to_string()),
        Some(Value::Array(steps).to_string()),
        Some(Value::Array(measurements).to_string()),
        Some(json!(r.captures()).to_string()),
    ]
}
