//! Records pushed live by `sim7k run --record-to URL`: each device's record is queued as the
//! device finishes and a background worker pushes it to every sink, so a slow or dead sink
//! never holds up the line.
//!
//! The JSONL the records are also written to (`--report FILE`, or a file sim7k keeps when
//! there is no `--report`, see [`kept_file_for`]) stays the source of truth: what a sink
//! misses is sent later by `sim7k records push FILE --to URL`. The worker says when a sink
//! goes behind (once per outage, naming the sink without its password and the command that
//! catches it up) and when it comes back.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::record::Record;
use super::sink::{Outcome, SinkError, SinkErrorKind, Sinks};
use crate::report::DeviceRecord;

/// How long the end of a run waits for records still queued for the sinks. What is not
/// pushed by then stays in the JSONL, counted as behind.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(15);

/// Where the records of a run go when there is no `--report`: a JSONL file of its own,
/// `$XDG_STATE_HOME/sim7k/records/<run>.jsonl` (`~/.local/state/sim7k/records/…` when
/// `XDG_STATE_HOME` is not set, the temp directory when neither is known). It is removed at
/// the end of the run when every sink got every record, and kept otherwise.
pub fn kept_file_for(run_id: &str) -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local").join("state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    state
        .join("sim7k")
        .join("records")
        .join(format!("{run_id}.jsonl"))
}

/// How a run's records reached one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveSinkStatus {
    /// The sink URL without password.
    pub sink: String,
    /// Records it got (stored, already there, or acknowledged).
    pub delivered: usize,
    /// Records it did not get (they are in the JSONL).
    pub behind: usize,
    /// The last error, when it is behind.
    pub error: Option<SinkError>,
}

/// What the live pushes of a run came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveSummary {
    /// The station name in the records.
    pub station: String,
    /// The JSONL holding every record of the run.
    pub file: PathBuf,
    /// False when `file` was sim7k's own file and was removed because nothing was behind.
    pub file_kept: bool,
    /// One entry per sink.
    pub sinks: Vec<LiveSinkStatus>,
}

impl LiveSummary {
    /// True when some sink lacks some record of the run.
    pub fn behind(&self) -> bool {
        self.sinks.iter().any(|s| s.behind > 0)
    }
}

/// The queue between the device threads and the worker.
#[derive(Default)]
struct Queue {
    items: VecDeque<Record>,
    closed: bool,
    give_up_at: Option<Instant>,
    /// Records no sink could take at all (not encodable), with why.
    unusable: Vec<String>,
    /// Records dropped at the drain limit.
    abandoned: usize,
}

/// The live pushes of one run: [`Live::submit`] from the device threads, [`Live::run_with`]
/// around the fleet.
pub struct Live {
    sinks: Sinks,
    file: PathBuf,
    own_file: bool,
    hint_station: Option<String>,
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("sinks", &self.sinks)
            .field("file", &self.file)
            .finish()
    }
}

impl Live {
    /// Prepare the sinks (no IO to them yet). `file` is the JSONL every record is written to
    /// (the MQTT ledgers are kept next to it); `own_file` says sim7k chose it (no `--report`)
    /// and may remove it when nothing is behind. `explicit_station` is the `--station` given,
    /// repeated in the catch-up command.
    pub fn new(
        urls: &[String],
        station: &str,
        file: &Path,
        own_file: bool,
        explicit_station: Option<&str>,
    ) -> Result<Live, String> {
        Live::with_sinks(
            Sinks::from_urls(urls, station)?,
            file,
            own_file,
            explicit_station,
        )
    }

    /// [`Live::new`] with ready-made sinks.
    pub fn with_sinks(
        sinks: Sinks,
        file: &Path,
        own_file: bool,
        explicit_station: Option<&str>,
    ) -> Result<Live, String> {
        sinks.keep_ledgers_next_to(file).map_err(|e| {
            format!(
                "cannot keep the MQTT ledger next to {}: {e}",
                file.display()
            )
        })?;
        Ok(Live {
            sinks,
            file: file.to_path_buf(),
            own_file,
            hint_station: explicit_station.map(str::to_string),
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        })
    }

    /// The JSONL holding every record of the run.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The station name.
    pub fn station(&self) -> &str {
        self.sinks.station()
    }

    /// Queue a device record for every sink; never blocks on a sink.
    pub fn submit(&self, record: &DeviceRecord) {
        let mut q = self.lock();
        match Record::from_device_record(record) {
            Ok(r) => q.items.push_back(r),
            Err(e) => q.unusable.push(e),
        }
        drop(q);
        self.ready.notify_all();
    }

    /// The command that sends `sink` what it lacks.
    pub fn catch_up_command(&self, sink: &str) -> String {
        let station = match &self.hint_station {
            Some(s) => format!(" --station {}", shell_word(s)),
            None => String::new(),
        };
        format!(
            "sim7k records push {} --to {}{station}",
            shell_word(&self.file.display().to_string()),
            shell_word(sink)
        )
    }

    /// Run `body` (the fleet) with the worker pushing records beside it; when `body`
    /// returns, wait for the queued records (at most [`DRAIN_LIMIT`]). `say` prints a line
    /// for people (warnings; called from the worker thread).
    pub fn run_with<R>(&self, say: &(dyn Fn(&str) + Sync), body: impl FnOnce() -> R) -> R {
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("sim7k-records".into())
                .spawn_scoped(scope, || self.work(say));
            let result = body();
            self.close();
            match worker {
                Ok(h) => {
                    if h.join().is_err() {
                        say(
                            "error: the records worker panicked (a bug in sim7k); the records are in the JSONL",
                        );
                    }
                }
                Err(e) => {
                    say(&format!(
                        "warning: cannot start the records worker ({e}); pushing the records now"
                    ));
                    self.work(say);
                }
            }
            result
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.give_up_at = Some(Instant::now() + DRAIN_LIMIT);
        drop(q);
        self.ready.notify_all();
    }

    /// The worker: probe the sinks, then push each queued record until the queue is closed
    /// and empty (or the drain limit passed).
    fn work(&self, say: &(dyn Fn(&str) + Sync)) {
        let mut down: BTreeMap<String, bool> = BTreeMap::new();
        for (name, r) in self.sinks.probe() {
            if let Err(e) = r {
                say(&self.behind_warning(&name, &e));
                down.insert(name, true);
            }
        }
        loop {
            let record = {
                let mut q = self.lock();
                loop {
                    if let Some(at) = q.give_up_at
                        && Instant::now() >= at
                        && !q.items.is_empty()
                    {
                        q.abandoned += q.items.len();
                        q.items.clear();
                    }
                    if let Some(r) = q.items.pop_front() {
                        break Some(r);
                    }
                    if q.closed {
                        break None;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some(record) = record else { break };
            let report = self.sinks.push_record(&record);
            for (name, outcome) in &report.sinks {
                let was_down = down.get(name).copied().unwrap_or(false);
                match outcome {
                    Outcome::Behind { error, .. } if error.kind == SinkErrorKind::Rejected => {
                        // Bad data, not a sick sink: say so for this record only.
                        say(&format!(
                            "warning: {name} refused record {}: {}; it stays in {}",
                            record.id,
                            error.message,
                            self.file.display()
                        ));
                    }
                    Outcome::Behind { error, .. } => {
                        if !was_down {
                            say(&self.behind_warning(name, error));
                            down.insert(name.clone(), true);
                        }
                    }
                    Outcome::Delivered { .. } => {
                        if was_down {
                            say(&format!(
                                "note: {name} takes records again; what it missed stays behind until `{}`",
                                self.catch_up_command(name)
                            ));
                            down.insert(name.clone(), false);
                        }
                    }
                }
            }
        }
    }

    fn behind_warning(&self, name: &str, error: &SinkError) -> String {
        format!(
            "warning: record sink {name} is behind: {}. The line goes on; every record is in {}: send what the sink missed with `{}`",
            error.message,
            self.file.display(),
            self.catch_up_command(name)
        )
    }

    /// After [`Live::run_with`]: how each sink fared. Removes sim7k's own file (and its
    /// ledgers) when every sink got every record.
    pub fn finish(&self) -> LiveSummary {
        let q = self.lock();
        let lost = q.abandoned + q.unusable.len();
        drop(q);
        let sinks: Vec<LiveSinkStatus> = self
            .sinks
            .status()
            .into_iter()
            .map(|s| {
                let behind = s.behind + lost;
                LiveSinkStatus {
                    error: if behind > 0 {
                        s.error.or_else(|| {
                            (lost > 0).then(|| {
                                SinkError::new(
                                    SinkErrorKind::Timeout,
                                    format!(
                                        "{lost} record(s) were still queued when the run ended"
                                    ),
                                )
                            })
                        })
                    } else {
                        None
                    },
                    sink: s.sink,
                    delivered: s.delivered,
                    behind,
                }
            })
            .collect();
        let nothing_behind = sinks.iter().all(|s| s.behind == 0);
        let mut file_kept = true;
        if self.own_file && nothing_behind {
            file_kept = !remove_with_ledgers(&self.file);
        }
        LiveSummary {
            station: self.station().to_string(),
            file: self.file.clone(),
            file_kept,
            sinks,
        }
    }

    /// Lines for the end of the run: one per sink that is behind, with the command that
    /// catches it up.
    pub fn summary_lines(&self, summary: &LiveSummary) -> Vec<String> {
        summary
            .sinks
            .iter()
            .filter(|s| s.behind > 0)
            .map(|s| {
                format!(
                    "warning: record sink {} missed {} of {} record{} of this run{}; they are in {}: send them with `{}`",
                    s.sink,
                    s.behind,
                    s.behind + s.delivered,
                    if s.behind + s.delivered == 1 { "" } else { "s" },
                    s.error
                        .as_ref()
                        .map(|e| format!(" (last error: {})", e.message))
                        .unwrap_or_default(),
                    summary.file.display(),
                    self.catch_up_command(&s.sink)
                )
            })
            .collect()
    }
}

/// Remove `file` and the MQTT ledgers beside it (`<file>.sent-…`); true when `file` is gone.
fn remove_with_ledgers(file: &Path) -> bool {
    if let (Some(dir), Some(name)) = (file.parent(), file.file_name()) {
        let prefix = format!("{}.sent-", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    std::fs::remove_file(file).is_ok() || !file.exists()
}

/// `s` quoted for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@,+=%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("line.jsonl"), "line.jsonl");
        assert_eq!(
            shell_word("postgres://line:***@db:5432/r?sslmode=disable"),
            "'postgres://line:***@db:5432/r?sslmode=disable'"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::records::record::RecordId;
    use crate::records::sink::{Delivery, Sink};

    /// A sink that stores records in memory, or fails every push with `fail`.
    struct Memory {
        fail: Option<SinkErrorKind>,
        stored: Arc<AtomicUsize>,
    }

    impl Sink for Memory {
        fn name(&self) -> String {
            format!("mem://{:?}", self.fail)
        }
        fn timeout(&self) -> Duration {
            Duration::from_secs(1)
        }
        fn push(&mut self, _: &Record, _: &str, _: Instant) -> Result<Delivery, SinkError> {
            match self.fail {
                Some(kind) => Err(SinkError::new(kind, "no")),
                None => {
                    self.stored.fetch_add(1, Ordering::SeqCst);
                    Ok(Delivery::Stored)
                }
            }
        }
        fn present(&mut self, _: &[Record], _: Instant) -> Result<HashSet<RecordId>, SinkError> {
            Ok(HashSet::new())
        }
        fn probe(&mut self, _: Instant) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn temp_file(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sim7k-live-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("run.jsonl");
        std::fs::write(&file, "").unwrap();
        std::fs::write(dir.join("run.jsonl.sent-0123456789abcdef"), "").unwrap();
        file
    }

    fn record(n: usize) -> DeviceRecord {
        crate::report::tests::sample(&format!("emu{n:02}"), crate::job::Verdict::Passed)
    }

    #[test]
    fn a_down_sink_warns_once_and_misses_every_record_the_other_gets() {
        let stored = Arc::new(AtomicUsize::new(0));
        let sinks = Sinks::from_sinks(
            vec![
                Box::new(Memory {
                    fail: None,
                    stored: stored.clone(),
                }),
                Box::new(Memory {
                    fail: Some(SinkErrorKind::Unreachable),
                    stored: Arc::new(AtomicUsize::new(0)),
                }),
            ],
            "line-3",
        );
        let file = temp_file("down");
        let live = Live::with_sinks(sinks, &file, true, Some("line 3")).unwrap();
        let said = Mutex::new(Vec::<String>::new());
        let say = |l: &str| said.lock().unwrap().push(l.to_string());
        live.run_with(&say, || {
            for n in 0..6 {
                live.submit(&record(n));
            }
        });
        let said = said.into_inner().unwrap();
        // One warning for the outage, not one per record.
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("mem://Some(Unreachable) is behind: no"),
            "{said:?}"
        );
        assert!(
            said[0].contains(&format!(
                "`sim7k records push {} --to 'mem://Some(Unreachable)' --station 'line 3'`",
                file.display()
            )),
            "{said:?}"
        );
        assert_eq!(stored.load(Ordering::SeqCst), 6);
        let summary = live.finish();
        assert!(summary.behind());
        assert!(
            summary.file_kept && file.exists(),
            "kept while a sink is behind"
        );
        let counts: Vec<(usize, usize)> = summary
            .sinks
            .iter()
            .map(|s| (s.delivered, s.behind))
            .collect();
        assert_eq!(counts, [(6, 0), (0, 6)]);
        let lines = live.summary_lines(&summary);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("missed 6 of 6 records"), "{lines:?}");
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }

    #[test]
    fn sim7k_s_own_file_goes_when_every_sink_has_every_record() {
        let stored = Arc::new(AtomicUsize::new(0));
        let sinks = Sinks::from_sinks(
            vec![Box::new(Memory {
                fail: None,
                stored: stored.clone(),
            })],
            "line-3",
        );
        let file = temp_file("own");
        let live = Live::with_sinks(sinks, &file, true, None).unwrap();
        live.run_with(&|l| panic!("unexpected: {l}"), || live.submit(&record(1)));
        let summary = live.finish();
        assert!(!summary.behind() && !summary.file_kept);
        assert!(!file.exists());
        let left: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
        assert!(left.is_empty(), "the ledgers go with it: {left:?}");
        assert_eq!(stored.load(Ordering::SeqCst), 1);
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }

    /// A sink whose pushes wait for the test to open a gate (at most 10 s).
    struct Gated {
        gate: Arc<(Mutex<bool>, Condvar)>,
        stored: Arc<AtomicUsize>,
    }

    impl Sink for Gated {
        fn name(&self) -> String {
            "mem://gated".into()
        }
        fn timeout(&self) -> Duration {
            Duration::from_secs(10)
        }
        fn push(&mut self, _: &Record, _: &str, _: Instant) -> Result<Delivery, SinkError> {
            let (open, cv) = &*self.gate;
            let guard = open.lock().unwrap();
            let _ = cv
                .wait_timeout_while(guard, Duration::from_secs(10), |o| !*o)
                .unwrap();
            self.stored.fetch_add(1, Ordering::SeqCst);
            Ok(Delivery::Stored)
        }
        fn present(&mut self, _: &[Record], _: Instant) -> Result<HashSet<RecordId>, SinkError> {
            Ok(HashSet::new())
        }
        fn probe(&mut self, _: Instant) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_sink_never_holds_up_the_devices() {
        // Fails on a synchronous push: `submit` would wait at the closed gate and the
        // records would be stored before the check below.
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let stored = Arc::new(AtomicUsize::new(0));
        let sinks = Sinks::from_sinks(
            vec![Box::new(Gated {
                gate: gate.clone(),
                stored: stored.clone(),
            })],
            "line-3",
        );
        let file = temp_file("slow");
        let live = Live::with_sinks(sinks, &file, false, None).unwrap();
        live.run_with(&|_| {}, || {
            for n in 0..3 {
                live.submit(&record(n));
            }
            assert_eq!(
                stored.load(Ordering::SeqCst),
                0,
                "a device waited for the sink"
            );
            *gate.0.lock().unwrap() = true;
            gate.1.notify_all();
        });
        // The end of the run waited for the queue.
        assert_eq!(stored.load(Ordering::SeqCst), 3);
        assert!(!live.finish().behind());
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }

    #[test]
    fn the_kept_file_is_under_the_state_directory() {
        let p = kept_file_for("20251125T153000Z-42");
        assert!(
            p.ends_with("sim7k/records/20251125T153000Z-42.jsonl"),
            "{p:?}"
        );
    }
}
