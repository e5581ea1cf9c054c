//! The [`Sink`] abstraction, and [`Sinks`]: the set of sinks a station pushes each record to.
//!
//! A push is bounded by the sink's timeout. A sink that fails is *down* for
//! [`RETRY_AFTER`]: pushes in that window return "behind" at once instead of waiting again,
//! so a dead database never slows the line by more than one timeout per window. What a sink
//! missed is still in the JSONL, and [`crate::records::push_file`] sends it later.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::record::{Record, RecordId};
use super::url::SinkUrl;
use crate::report::DeviceRecord;

/// How long a sink that failed is left alone before the next push tries it again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// What kind of failure a sink reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkErrorKind {
    /// The sink could not be reached (connection refused, reset, DNS).
    Unreachable,
    /// No answer within the timeout.
    Timeout,
    /// The sink refused us (credentials, permissions).
    Refused,
    /// The sink refused this record (bad data); other records may go through.
    Rejected,
    /// The sink said something we do not understand.
    Protocol,
    /// The URL asks for something this build cannot do (TLS).
    Config,
}

/// Why a push did not reach a sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkError {
    /// The kind.
    pub kind: SinkErrorKind,
    /// What happened, for a person (never holds a password).
    pub message: String,
}

impl SinkError {
    /// An error.
    pub fn new(kind: SinkErrorKind, message: impl Into<String>) -> SinkError {
        SinkError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SinkError {}

/// How a record reached a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Stored now.
    Stored,
    /// The sink already had it (same run and device): nothing changed.
    AlreadyStored,
    /// Published and acknowledged (MQTT PUBACK).
    Published,
}

/// A destination for device records.
pub trait Sink: Send {
    /// The sink's URL without its password.
    fn name(&self) -> String;

    /// The bound on one push.
    fn timeout(&self) -> Duration;

    /// Deliver one record before `deadline`.
    fn push(
        &mut self,
        record: &Record,
        station: &str,
        deadline: Instant,
    ) -> Result<Delivery, SinkError>;

    /// Which of `records` the sink already holds.
    fn present(
        &mut self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<HashSet<RecordId>, SinkError>;

    /// Keep what the sink acknowledged next to the JSONL file `jsonl` (sinks that cannot be
    /// asked what they hold, such as MQTT); a no-op for the others.
    fn keep_ledger_next_to(&mut self, jsonl: &Path) -> std::io::Result<()> {
        let _ = jsonl;
        Ok(())
    }

    /// Connect (and for a database, create or check the schema) before `deadline`.
    fn probe(&mut self, deadline: Instant) -> Result<(), SinkError>;
}

/// Open the sink a URL names (no IO yet: it connects on first use).
pub fn open(url: &SinkUrl) -> Box<dyn Sink> {
    match url {
        SinkUrl::Postgres(u) => Box::new(super::pg::PgSink::new(u.clone())),
        SinkUrl::Mqtt(u) => Box::new(super::mqtt::MqttSink::new(u.clone())),
    }
}

/// What happened to one record at one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// It got there.
    Delivered {
        /// How.
        delivery: Delivery,
    },
    /// It did not get there; it is in the JSONL and `records push` sends it later.
    Behind {
        /// Why.
        error: SinkError,
        /// True when the sink was not even tried (it failed moments ago).
        skipped: bool,
    },
}

/// The result of pushing one record to every sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// The record (none when the record itself is unusable).
    pub id: Option<RecordId>,
    /// One entry per sink: (sink URL without password, outcome).
    pub sinks: Vec<(String, Outcome)>,
}

impl PushReport {
    /// True when some sink did not get the record.
    pub fn behind(&self) -> bool {
        self.sinks
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Behind { .. }))
    }

    /// One line per sink that is behind, for the console.
    pub fn warnings(&self) -> Vec<String> {
        let id = self
            .id
            .as_ref()
            .map_or_else(|| "a record".to_string(), |i| format!("record {i}"));
        self.sinks
            .iter()
            .filter_map(|(name, o)| match o {
                Outcome::Behind { error, skipped } => Some(format!(
                    "{name} is behind: {id} not delivered ({}{}); it stays in the JSONL for `sim7k records push`",
                    if *skipped { "sink down: " } else { "" },
                    error.message
                )),
                Outcome::Delivered { .. } => None,
            })
            .collect()
    }
}

/// A sink with its down-window bookkeeping.
struct Slot {
    name: String,
    state: Mutex<SlotState>,
}

struct SlotState {
    sink: Box<dyn Sink>,
    down: Option<(Instant, SinkError)>,
    delivered: usize,
    behind: usize,
}

/// How one sink fared over a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    /// The sink URL without password.
    pub sink: String,
    /// Records delivered (stored, already there, or acknowledged).
    pub delivered: usize,
    /// Records that did not get there.
    pub behind: usize,
    /// The last error, while the sink is down.
    pub error: Option<SinkError>,
}

/// The sinks of a station: each record goes to all of them.
pub struct Sinks {
    station: String,
    slots: Vec<Slot>,
}

impl fmt::Debug for Sinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sinks")
            .field("station", &self.station)
            .field(
                "sinks",
                &self.slots.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Sinks {
    /// Parse the URLs (`--record-to`, repeatable); nothing is contacted yet. `station` names
    /// this station in records and topics (a record's own `station` field wins).
    pub fn from_urls(urls: &[String], station: &str) -> Result<Sinks, String> {
        let mut slots = Vec::new();
        for u in urls {
            let url = SinkUrl::parse(u)?;
            slots.push(Slot {
                name: url.redacted(),
                state: Mutex::new(SlotState {
                    sink: open(&url),
                    down: None,
                    delivered: 0,
                    behind: 0,
                }),
            });
        }
        Ok(Sinks {
            station: station.to_string(),
            slots,
        })
    }

    /// Sinks from ready-made [`Sink`]s (tests, other transports).
    pub fn from_sinks(sinks: Vec<Box<dyn Sink>>, station: &str) -> Sinks {
        Sinks {
            station: station.to_string(),
            slots: sinks
                .into_iter()
                .map(|sink| Slot {
                    name: sink.name(),
                    state: Mutex::new(SlotState {
                        sink,
                        down: None,
                        delivered: 0,
                        behind: 0,
                    }),
                })
                .collect(),
        }
    }

    /// Keep the MQTT ledgers of acknowledged records next to the run's JSONL file, so
    /// `records push` later sends only what the broker did not acknowledge.
    pub fn keep_ledgers_next_to(&self, jsonl: &Path) -> std::io::Result<()> {
        for slot in &self.slots {
            lock(&slot.state).sink.keep_ledger_next_to(jsonl)?;
        }
        Ok(())
    }

    /// No sinks at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The station name.
    pub fn station(&self) -> &str {
        &self.station
    }

    /// Push a device record to every sink (in parallel), each bounded by its timeout.
    pub fn push(&self, record: &DeviceRecord) -> PushReport {
        match Record::from_device_record(record) {
            Ok(r) => self.push_record(&r),
            Err(e) => self.unusable(e),
        }
    }

    /// Push a record given as JSON (a JSONL line).
    pub fn push_value(&self, value: serde_json::Value) -> PushReport {
        match Record::from_value(value) {
            Ok(r) => self.push_record(&r),
            Err(e) => self.unusable(e),
        }
    }

    fn unusable(&self, e: String) -> PushReport {
        let error = SinkError::new(SinkErrorKind::Rejected, e);
        PushReport {
            id: None,
            sinks: self
                .slots
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        Outcome::Behind {
                            error: error.clone(),
                            skipped: true,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Push a record to every sink.
    pub fn push_record(&self, record: &Record) -> PushReport {
        let station = record.station().unwrap_or(&self.station);
        let sinks = if self.slots.len() <= 1 {
            self.slots
                .iter()
                .map(|s| (s.name.clone(), push_one(s, record, station)))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .slots
                    .iter()
                    .map(|s| scope.spawn(move || push_one(s, record, station)))
                    .collect();
                self.slots
                    .iter()
                    .zip(handles)
                    .map(|(s, h)| {
                        let outcome = h.join().unwrap_or_else(|_| Outcome::Behind {
                            error: SinkError::new(
                                SinkErrorKind::Protocol,
                                "the push panicked (a bug in sim7k)",
                            ),
                            skipped: false,
                        });
                        (s.name.clone(), outcome)
                    })
                    .collect()
            })
        };
        PushReport {
            id: Some(record.id.clone()),
            sinks,
        }
    }

    /// Try every sink now (connect, log in, create or check the schema): for a warning at
    /// the start of a run. A failure here does not stop later pushes from trying again.
    pub fn probe(&self) -> Vec<(String, Result<(), SinkError>)> {
        self.slots
            .iter()
            .map(|s| {
                let mut st = lock(&s.state);
                let deadline = Instant::now() + st.sink.timeout();
                let r = st.sink.probe(deadline);
                if let Err(e) = &r {
                    st.down = Some((Instant::now(), e.clone()));
                }
                (s.name.clone(), r)
            })
            .collect()
    }

    /// How each sink fared so far.
    pub fn status(&self) -> Vec<SinkStatus> {
        self.slots
            .iter()
            .map(|s| {
                let st = lock(&s.state);
                SinkStatus {
                    sink: s.name.clone(),
                    delivered: st.delivered,
                    behind: st.behind,
                    error: st.down.as_ref().map(|(_, e)| e.clone()),
                }
            })
            .collect()
    }
}

fn lock(m: &Mutex<SlotState>) -> std::sync::MutexGuard<'_, SlotState> {
    // A panic in another pusher leaves the sink usable: its state is only counters.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn push_one(slot: &Slot, record: &Record, station: &str) -> Outcome {
    let mut st = lock(&slot.state);
    if let Some((since, error)) = &st.down
        && since.elapsed() < RETRY_AFTER
    {
        let error = error.clone();
        st.behind += 1;
        return Outcome::Behind {
            error,
            skipped: true,
        };
    }
    let deadline = Instant::now() + st.sink.timeout();
    match st.sink.push(record, station, deadline) {
        Ok(delivery) => {
            st.down = None;
            st.delivered += 1;
            Outcome::Delivered { delivery }
        }
        Err(error) => {
            // A record the sink refuses says nothing about the sink's health.
            if error.kind != SinkErrorKind::Rejected {
                st.down = Some((Instant::now(), error.clone()));
            }
            st.behind += 1;
            Outcome::Behind {
                error,
                skipped: false,
            }
        }
    }
}

/// Open a TCP connection to `host:port` before `deadline`, trying each address the name
/// resolves to; errors name `place` (`PostgreSQL at db:5432`, `MQTT broker at …`).
pub(crate) fn connect_tcp(
    host: &str,
    port: u16,
    place: &str,
    deadline: Instant,
) -> Result<std::net::TcpStream, SinkError> {
    use std::net::{TcpStream, ToSocketAddrs};
    let unreachable = |what: String| SinkError::new(SinkErrorKind::Unreachable, what);
    let timed_out = || {
        SinkError::new(
            SinkErrorKind::Timeout,
            format!("{place}: no answer in time (connecting)"),
        )
    };
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("{place}: cannot resolve the host: {e}")))?;
    let mut last = None;
    for a in addrs {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(timed_out)?;
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::TimedOut => timed_out(),
        Some(e) => unreachable(format!("{place}: cannot connect: {e}")),
        None => unreachable(format!("{place}: the host resolves to no address")),
    })
}
