//! The driver of a [`Job`] on a real port: it moves bytes between the job and the
//! [`Transport`], keeps the [`Transcript`], turns a stop request (a signal, a closed output)
//! into [`Job::handle_interrupt`] and a failed port into [`Job::handle_port_error`], and
//! forwards the job's [`JobEvent`]s to an [`Observer`]. Every rule of a run (conditions,
//! scripts, validation, hooks, teardown, the result) lives in [`crate::job`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::job::{
    Interrupt, Job, JobAction, JobEvent, JobOptions, ReceivedMessage, RunOutcome, ScriptHost,
    StepResult,
};
use crate::recipe::load::LoadedRecipe;
use crate::transcript::Transcript;
use crate::transport::Transport;

/// Longest single read wait, so a stop request is noticed quickly.
const READ_SLICE: Duration = Duration::from_millis(200);

/// Reads in a row that take in what already arrived (without waiting).
const DRAIN_READS: usize = 64;

/// Receives progress while a recipe runs. Every text is already redacted.
pub trait Observer {
    /// A step starts. `index` is 0-based; the start-up sync is reported as `sync`.
    fn step_started(&mut self, _index: usize, _total: usize, _name: &str) {}
    /// A step ended.
    fn step_finished(&mut self, _result: &StepResult) {}
    /// Modem traffic and engine events, one line each (`> AT`, `< OK`, `! DST: 1`, …).
    fn traffic(&mut self, _line: &str) {}
    /// A `say:` line, or a line a script printed.
    fn say(&mut self, _text: &str) {}
    /// An MQTT message from the broker.
    fn message(&mut self, _message: &ReceivedMessage) {}
    /// Whether to decode the MQTT packets going over the modem (`-vv`) for
    /// [`Observer::packet`]; asked once when the run starts.
    fn wants_packets(&self) -> bool {
        false
    }
    /// One decoded MQTT packet, both ways (`> MQTT CONNECT …`, `< MQTT CONNACK …`), secrets
    /// replaced.
    fn packet(&mut self, _line: &str) {}
    /// Asked after every event and read: `Some` stops the run (e.g. the console's reader
    /// went away: [`Interrupt::BrokenPipe`]). The teardown still runs.
    fn stop(&mut self) -> Option<Interrupt> {
        None
    }
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// What stops runs from outside: a signal handler stores the signal's number, an output
/// writer [`StopFlag::broken_pipe`]. Cheap to clone; shared by every device of a fleet.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicI32>);

/// Stored for a closed output.
const BROKEN_PIPE: i32 = -1;

impl StopFlag {
    /// A flag that is not set.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// The atomic a signal handler stores the signal number in (async-signal-safe).
    pub fn atomic(&self) -> &AtomicI32 {
        &self.0
    }

    /// Stop because of signal `signo` (the first cause is kept).
    pub fn signal(&self, signo: i32) {
        let _ = self
            .0
            .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Stop because the reader of our output went away.
    pub fn broken_pipe(&self) {
        self.signal(BROKEN_PIPE);
    }

    /// Why runs should stop, if they should.
    pub fn cause(&self) -> Option<Interrupt> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            BROKEN_PIPE => Some(Interrupt::BrokenPipe),
            libc::SIGINT => Some(Interrupt::Signal("SIGINT".into())),
            libc::SIGTERM => Some(Interrupt::Signal("SIGTERM".into())),
            libc::SIGHUP => Some(Interrupt::Signal("SIGHUP".into())),
            n => Some(Interrupt::Signal(format!("signal {n}"))),
        }
    }
}

/// Options for one run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Set to stop the run (Ctrl-C).
    pub interrupt: Option<StopFlag>,
    /// Port name for the outcome.
    pub port: String,
}

/// Runs one recipe against one modem.
pub struct Runner<'a> {
    recipe: &'a LoadedRecipe,
    port: &'a mut dyn Transport,
    transcript: &'a mut Transcript,
    observer: &'a mut dyn Observer,
    scripts: Option<&'a mut dyn ScriptHost>,
    options: RunOptions,
}

impl<'a> Runner<'a> {
    /// Prepare a run.
    pub fn new(
        recipe: &'a LoadedRecipe,
        port: &'a mut dyn Transport,
        transcript: &'a mut Transcript,
        observer: &'a mut dyn Observer,
        options: RunOptions,
    ) -> Runner<'a> {
        Runner {
            recipe,
            port,
            transcript,
            observer,
            scripts: None,
            options,
        }
    }

    /// Use this host for `script:` steps.
    pub fn with_scripts(mut self, host: &'a mut dyn ScriptHost) -> Runner<'a> {
        self.scripts = Some(host);
        self
    }

    /// Run every step; never panics on modem input, always flushes the transcript.
    pub fn run(self) -> RunOutcome {
        let Runner {
            recipe,
            port,
            transcript,
            observer,
            scripts,
            options,
        } = self;
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let job_options = JobOptions {
            port: options.port.clone(),
            started,
        };
        let mut job = Job::new(recipe, job_options, Instant::now());
        if let Some(host) = scripts {
            job = job.with_scripts(host);
        }
        let packets = observer
            .wants_packets()
            .then(|| PacketLines::new(Instant::now()));
        let mut driver = Driver {
            port,
            transcript,
            observer,
            stop: options.interrupt,
            buf: vec![0u8; 4096],
            packets,
            output_reported: false,
        };
        driver.drive(&mut job);
        driver.finish_packets();
        let mut outcome = job.into_outcome();
        if let Err(e) = driver.transcript.flush() {
            // Named once: the run may already have ended on this error.
            let message = e.to_string();
            if !outcome
                .failure
                .as_ref()
                .is_some_and(|f| f.reason.contains(&message))
            {
                outcome.output_failed(&message);
            }
        }
        outcome.set_tail(driver.transcript.tail());
        outcome
    }
}

/// The IO side of one run.
struct Driver<'a> {
    port: &'a mut dyn Transport,
    transcript: &'a mut Transcript,
    observer: &'a mut dyn Observer,
    stop: Option<StopFlag>,
    buf: Vec<u8>,
    /// The `-vv` view of the MQTT packets, when the observer wants it.
    packets: Option<PacketLines>,
    /// The transcript's write error was handed to the job.
    output_reported: bool,
}

/// Decoded MQTT packets for the observer: secrets replaced with the ones known when the line
/// is shown, held back with the transcript while a step captures secrets.
struct PacketLines {
    view: crate::follow::LiveView,
    secrets: crate::redact::Secrets,
    held: Option<Vec<String>>,
}

impl PacketLines {
    fn new(start: Instant) -> PacketLines {
        PacketLines {
            view: crate::follow::LiveView::new(start),
            secrets: crate::redact::Secrets::default(),
            held: None,
        }
    }

    fn shown(&self, line: &str) -> String {
        crate::util::escape::shorten(
            &self.secrets.redact_str(line),
            crate::util::escape::SHOWN_CHARS,
        )
    }

    /// Lines to show now (none while held).
    fn take(&mut self, lines: Vec<String>) -> Vec<String> {
        match self.held.as_mut() {
            Some(held) => {
                held.extend(lines);
                Vec::new()
            }
            None => lines.iter().map(|l| self.shown(l)).collect(),
        }
    }

    fn release(&mut self) -> Vec<String> {
        let held = self.held.take().unwrap_or_default();
        held.iter().map(|l| self.shown(l)).collect()
    }
}

impl Driver<'_> {
    fn drive(&mut self, job: &mut Job<'_>) {
        // The previous wait took in what had arrived without waiting.
        let mut drained = false;
        loop {
            self.check_stop(job);
            let now = Instant::now();
            let action = job.poll(now);
            self.forward(job);
            match action {
                JobAction::Write(bytes) => {
                    drained = false;
                    tracing::trace!(target: "sim7k::engine", "write {} bytes", bytes.len());
                    self.transcript.tx(&bytes);
                    self.packets_of(&bytes, true);
                    if let Err(e) = self.port.write_all(&bytes) {
                        job.handle_port_error(
                            format!("write to the port failed: {e}"),
                            Instant::now(),
                        );
                    }
                }
                JobAction::Wait(until) => {
                    // The transcript's flush deadline bounds the wait too.
                    let until =
                        crate::util::time::earliest(Some(until), self.transcript.next_flush())
                            .unwrap_or(until);
                    let wait = until.saturating_duration_since(now);
                    tracing::trace!(target: "sim7k::engine", "wait up to {wait:?}");
                    if wait.is_zero() && !drained {
                        drained = true;
                        for _ in 0..DRAIN_READS {
                            if self.read(job, Duration::ZERO) == 0 {
                                break;
                            }
                        }
                    } else {
                        // At least 1 ms: a wake-up that is due now must not spin.
                        drained = false;
                        self.read(job, wait.clamp(Duration::from_millis(1), READ_SLICE));
                    }
                }
                JobAction::Done => break,
            }
            self.transcript.tick(Instant::now());
            self.check_output(job);
        }
        self.forward(job);
    }

    /// Read once, waiting at most `wait`; hand the bytes to the job. Returns how many.
    fn read(&mut self, job: &mut Job<'_>, wait: Duration) -> usize {
        match self.port.read_timeout(&mut self.buf, wait) {
            Ok(0) => 0,
            Ok(n) => {
                let bytes = &self.buf[..n.min(self.buf.len())];
                self.transcript.rx(bytes);
                job.handle_bytes(bytes, Instant::now());
                self.forward(job);
                tracing::trace!(target: "sim7k::engine", "read {n} bytes");
                let bytes = self.buf.get(..n).unwrap_or_default().to_vec();
                self.packets_of(&bytes, false);
                n
            }
            Err(e) => {
                let message = format!("the port {} failed or vanished: {e}", self.port.describe());
                job.handle_port_error(message, Instant::now());
                0
            }
        }
    }

    /// A transcript that can no longer be written ends the run (exit 4), once.
    fn check_output(&mut self, job: &mut Job<'_>) {
        if !self.output_reported
            && let Some(e) = self.transcript.error()
        {
            self.output_reported = true;
            job.handle_output_error(e.to_string(), Instant::now());
        }
    }

    fn check_stop(&mut self, job: &mut Job<'_>) {
        let cause = self
            .stop
            .as_ref()
            .and_then(StopFlag::cause)
            .or_else(|| self.observer.stop());
        if let Some(cause) = cause {
            job.handle_interrupt(cause, Instant::now());
        }
    }

    /// Hand the job's events to the transcript and the observer.
    fn forward(&mut self, job: &mut Job<'_>) {
        while let Some(ev) = job.poll_event() {
            match ev {
                JobEvent::StepStarted { index, total, name } => {
                    self.observer.step_started(index, total, &name)
                }
                JobEvent::StepFinished(result) => {
                    // Every step end makes the transcript durable.
                    self.transcript.checkpoint();
                    self.observer.step_finished(&result)
                }
                JobEvent::Traffic(line) => self.observer.traffic(&line),
                JobEvent::Say(line) => self.observer.say(&line),
                JobEvent::Message(m) => self.observer.message(&m),
                JobEvent::Note(text) => self.transcript.note(&text),
                JobEvent::Secrets(s) => {
                    self.transcript.set_secrets(s.forms().to_vec());
                    if let Some(p) = self.packets.as_mut() {
                        p.secrets = s;
                    }
                }
                JobEvent::HoldTranscript => {
                    self.transcript.hold();
                    if let Some(p) = self.packets.as_mut() {
                        p.held.get_or_insert_with(Vec::new);
                    }
                }
                JobEvent::ReleaseTranscript => {
                    self.transcript.release();
                    if let Some(p) = self.packets.as_mut() {
                        for line in p.release() {
                            self.observer.packet(&line);
                        }
                    }
                }
            }
        }
    }

    /// Decode the MQTT packets in bytes written (`sent`) or read, for `-vv`.
    fn packets_of(&mut self, bytes: &[u8], sent: bool) {
        let Some(p) = self.packets.as_mut() else {
            return;
        };
        let now = Instant::now();
        let lines = if sent {
            p.view.written(bytes, now)
        } else {
            p.view.read(bytes, now)
        };
        for line in p.take(lines) {
            self.observer.packet(&line);
        }
    }

    /// The run ended: what is held and what is incomplete.
    fn finish_packets(&mut self) {
        let Some(p) = self.packets.as_mut() else {
            return;
        };
        let mut lines = p.release();
        let rest = p.view.finish();
        lines.extend(rest.iter().map(|l| p.shown(l)));
        for line in lines {
            self.observer.packet(&line);
        }
    }
}
