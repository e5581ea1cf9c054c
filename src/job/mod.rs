//! The job: a sans-IO interpreter of one recipe on one modem.
//!
//! A [`Job`] owns what a run of a recipe knows: its vars and secrets, the engine
//! [`Session`], the step cursor, conditions (`if:`), `say:`, scripts (through a
//! [`ScriptHost`]), captures and validation, `on_fail`, `on_message` hooks and the messages
//! waiting for one, the start-up sync, the teardown (`finally:`), `{{link.tcp}}` and
//! `{{link.mqtt}}`, and the result ([`RunOutcome`]). It never touches a port, a file, a
//! thread or a clock: the driver (`crate::runner` on a real port, the in-memory harness in
//! `tests/in_memory.rs` under a virtual clock) moves bytes and time.
//!
//! # Call contract
//!
//! The methods sort, as in quinn-proto's `Connection`, into:
//! * **getters**: [`Job::vars`], [`Job::link`], [`Job::is_done`], [`Job::in_teardown`];
//! * **handle** (inputs, any time): [`Job::handle_bytes`] (what the modem sent),
//!   [`Job::handle_interrupt`] (a signal or a closed output), [`Job::handle_port_error`]
//!   (the port failed: nothing more can be written);
//! * **poll** (outputs): [`Job::poll`] says what to do next, [`Job::poll_event`] hands over
//!   what happened (progress, traffic, `say:` lines, messages, transcript notes);
//! * **finish**: [`Job::into_outcome`] once [`Job::poll`] returned [`JobAction::Done`].
//!
//! A driver loops: `let action = job.poll(now)`, then drains [`Job::poll_event`] (events
//! come before the action they lead to: a transcript hold before the secret step's
//! command), then acts: on [`JobAction::Write`] write the bytes and poll again; on
//! [`JobAction::Wait`]`(t)` read from the modem until `t` or until bytes arrive, hand them to
//! [`Job::handle_bytes`], and poll again. A `t` that is not later than `now` means: take in
//! what has already arrived without waiting, then poll again (the job asks so before each
//! step's first command, so that lines that arrived between steps are read as unsolicited,
//! and after a script, to learn the time it took). On [`JobAction::Done`] stop polling and
//! call [`Job::into_outcome`]. A failed read or write is [`Job::handle_port_error`]; a
//! Ctrl-C is [`Job::handle_interrupt`] (the job runs its teardown, then ends with exit 130).
//!
//! **Time.** `now` is a monotonic [`Instant`] (real or virtual), never earlier than the `now`
//! of a previous call. The job reads no clock: the time a script took is learned at the next
//! poll; the deadline handed to a [`ScriptHost`] is on the driver's clock. Waking early is
//! harmless; waking late only delays what was due.
//!
//! **Scripts** run inside [`Job::poll`] and [`Job::handle_bytes`] (hooks): they are
//! computation, not IO. Without a host, a `script:` step or hook fails as a recipe error.
//!
//! # Module map
//!
//! * [`outcome`]: the result model ([`RunFailure`], [`StepResult`], [`RunOutcome`],
//!   [`Measurement`], [`MessageRecord`]);
//! * [`identity`]: [`RecipeIdentity`], what `--resume` matches on;
//! * `step`: one step from its condition to its record; the sync; the teardown;
//! * `traffic`: engine events into [`JobEvent`]s, messages, hooks.

pub mod identity;
pub mod outcome;
mod step;
mod traffic;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

pub use identity::RecipeIdentity;
pub use outcome::{
    FailureInfo, Interrupt, Limits, Measurement, MessageRecord, RunFailure, RunOutcome, StepResult,
    StepStatus, Verdict,
};

use crate::engine::Session;
use crate::engine::mqtt::Message;
use crate::recipe::load::LoadedRecipe;
use crate::recipe::program::ProgramStep;
use crate::recipe::vars::{LinkState, Vars};
use crate::redact::Secrets;

/// Most `said` lines and most `messages` kept in the outcome (the rest are counted in
/// [`RunOutcome::omitted`]).
pub const MAX_KEPT: usize = 10_000;

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobAction {
    /// Write these bytes to the modem.
    Write(Vec<u8>),
    /// Read from the modem until this instant (or until bytes arrive), then poll again. Not
    /// later than `now`: take in what already arrived, without waiting.
    Wait(Instant),
    /// The run is over: call [`Job::into_outcome`].
    Done,
}

/// Something that happened, for the console, the transcript and progress output. Every
/// text is already redacted; text from the modem or a broker is escaped.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// A step starts (teardown steps are not announced). The sync is `index` 0 named `sync`.
    StepStarted {
        /// 0-based index among the recipe's steps.
        index: usize,
        /// Steps of the recipe.
        total: usize,
        /// Name shown.
        name: String,
    },
    /// A step ended (also skipped steps and teardown steps).
    StepFinished(StepResult),
    /// Modem traffic and engine events, one line each (`> AT`, `< OK`, `! DST: 1`, …).
    Traffic(String),
    /// A `say:` line, or a line a script or hook printed.
    Say(String),
    /// An MQTT message from the broker, to print (not sent for `quiet` waits).
    Message(ReceivedMessage),
    /// A line for the transcript.
    Note(String),
    /// The secrets changed: redact the transcript with these from now on.
    Secrets(Secrets),
    /// Hold transcript entries back until [`JobEvent::ReleaseTranscript`] (a step that
    /// captures secrets: its traffic is written once the captured values are known).
    HoldTranscript,
    /// Write the held entries, redacted with the secrets known now.
    ReleaseTranscript,
}

/// A message from the broker: its bytes (secrets replaced) for a terminal that prints them
/// raw, and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// Topic and payload with secrets replaced (payload bytes otherwise as received).
    pub message: Message,
    /// The escaped, shortened record (as in [`RunOutcome::messages`]).
    pub record: MessageRecord,
}

/// Why a step's script failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailure {
    /// What went wrong, with the script's file and line.
    pub message: String,
    /// The step's or the recipe's deadline stopped the script (a timeout).
    pub timed_out: bool,
}

/// Runs `script:` steps and `on_message` hooks (provided by `crate::script`).
pub trait ScriptHost {
    /// Run a step's inline script with the recipe vars, stopping it at `deadline` (an
    /// instant on the driver's clock); returns the lines it printed.
    fn run_step_script(
        &mut self,
        step: &ProgramStep,
        vars: &mut Vars,
        deadline: Option<Instant>,
    ) -> Result<Vec<String>, ScriptFailure>;

    /// Call the `on_message` function `name(topic, payload, qos, retain)`; returns the lines
    /// it printed.
    fn on_message(
        &mut self,
        name: &str,
        message: &Message,
        vars: &mut Vars,
    ) -> Result<Vec<String>, String>;
}

/// Settings of one run that the job cannot know by itself.
#[derive(Debug, Clone, Default)]
pub struct JobOptions {
    /// The port as given (for the outcome).
    pub port: String,
    /// Wall-clock start, seconds since the Unix epoch (the driver reads the wall clock).
    pub started: f64,
}

/// Which list of steps runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The sync and the recipe's steps.
    Main,
    /// The `finally:` steps.
    Teardown,
    /// Nothing more runs.
    Over,
}

/// What the job does now.
enum Phase<'a> {
    /// Not started: the URC rules and the sync come first.
    Start,
    /// Between steps: the next one of the stage starts at the next poll.
    Next,
    /// A step passed its condition, `say:` and script; its IO starts once the driver took in
    /// what arrived meanwhile (`drained`).
    Ready { active: Active<'a>, drained: bool },
    /// The engine runs the step.
    Running(Active<'a>),
    /// The run is over.
    Done,
}

/// The step in progress.
struct Active<'a> {
    /// The program step (`None`: the start-up sync).
    step: Option<&'a ProgramStep>,
    /// Name shown (redacted; `teardown: …` for teardown steps).
    name: String,
    /// When it started (its condition was checked).
    started: Instant,
    /// A teardown step.
    teardown: bool,
    /// Its wait is for a CONNACK: passing it brings `{{link.mqtt}}` up.
    connack: bool,
    /// Its data send starts with DISCONNECT: sending it takes `{{link.mqtt}}` down.
    disconnects: bool,
}

/// A sans-IO run of one recipe (see the [module documentation](self) for the call contract).
pub struct Job<'a> {
    recipe: &'a LoadedRecipe,
    options: JobOptions,
    scripts: Option<&'a mut dyn ScriptHost>,
    vars: Vars,
    secrets: Secrets,
    session: Session,
    start: Instant,
    ended: Option<Instant>,
    /// The recipe's deadline, then the teardown's.
    deadline: Option<Instant>,
    stage: Stage,
    /// Index of the next step in the stage's list.
    next: usize,
    phase: Phase<'a>,
    results: Vec<StepResult>,
    failure: Option<FailureInfo>,
    captures: BTreeMap<String, String>,
    measurements: Vec<crate::job::Measurement>,
    said: Vec<String>,
    messages: Vec<MessageRecord>,
    omitted: u64,
    events: VecDeque<JobEvent>,
    /// `on_message` hook of the running MQTT wait.
    hook: Option<String>,
    /// Print messages (false during a `quiet` wait).
    print_messages: bool,
    /// Messages that arrived while no hook was active (handed to the next one).
    pending_messages: Vec<Message>,
    /// First error of an `on_message` hook in the running step.
    hook_error: Option<String>,
    /// Traffic lines held back while a step captures secrets (redacted on release).
    held_traffic: Option<Vec<String>>,
    /// An accepted CONNACK and no DISCONNECT sent since (with the engine's session state,
    /// `{{link.mqtt}}`).
    mqtt_up: bool,
    interrupt: Option<Interrupt>,
    port_error: Option<String>,
    /// An output of the run (the transcript) could not be written.
    output_error: Option<String>,
}

impl<'a> Job<'a> {
    /// A run of `recipe` starting at `now` (its deadline counts from here).
    pub fn new(recipe: &'a LoadedRecipe, options: JobOptions, now: Instant) -> Job<'a> {
        let vars = recipe.vars.clone();
        let secrets = vars.secrets();
        let mut job = Job {
            recipe,
            options,
            scripts: None,
            vars,
            secrets: secrets.clone(),
            session: Session::default(),
            start: now,
            ended: None,
            deadline: recipe
                .program
                .deadline
                .map(|d| crate::util::time::later(now, d)),
            stage: Stage::Main,
            next: 0,
            phase: Phase::Start,
            results: Vec::new(),
            failure: None,
            captures: BTreeMap::new(),
            measurements: Vec::new(),
            said: Vec::new(),
            messages: Vec::new(),
            omitted: 0,
            events: VecDeque::new(),
            hook: None,
            print_messages: true,
            pending_messages: Vec::new(),
            hook_error: None,
            held_traffic: None,
            mqtt_up: false,
            interrupt: None,
            port_error: None,
            output_error: None,
        };
        job.events.push_back(JobEvent::Secrets(secrets));
        job
    }

    /// Use this host for `script:` steps and `on_message` hooks.
    pub fn with_scripts(mut self, host: &'a mut dyn ScriptHost) -> Job<'a> {
        self.scripts = Some(host);
        self
    }

    // ----- getters -----

    /// The vars as they are now.
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    /// `{{link.tcp}}` and `{{link.mqtt}}` as they are now.
    pub fn link(&self) -> LinkState {
        self.vars.link()
    }

    /// True once [`Job::poll`] returned [`JobAction::Done`].
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// True while the teardown runs (an interrupt no longer stops a step).
    pub fn in_teardown(&self) -> bool {
        self.stage == Stage::Teardown
    }

    // ----- handle -----

    /// Bytes the modem sent, at `now`.
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        if self.is_done() {
            return;
        }
        self.session.feed(bytes, now);
        self.flush_engine_events();
    }

    /// Stop the run from outside: the step in progress ends, the teardown runs, the verdict
    /// is [`Verdict::Interrupted`] (exit 130). During the teardown (which its own deadline
    /// bounds) or after the last step it changes nothing.
    pub fn handle_interrupt(&mut self, cause: Interrupt, _now: Instant) {
        if self.stage == Stage::Main && self.interrupt.is_none() {
            self.interrupt = Some(cause);
        }
    }

    /// An output of the run (its transcript) could not be written: the step in progress
    /// ends and the run fails with exit 4 (a verdict whose evidence is lost is not a pass);
    /// the teardown still runs (the port works). During the teardown it changes nothing
    /// here (the driver reports it on the outcome).
    pub fn handle_output_error(&mut self, message: String, _now: Instant) {
        if self.stage == Stage::Main && self.output_error.is_none() {
            self.output_error = Some(message);
        }
    }

    /// The port failed (a read or write error, the device vanished): the run ends at the
    /// next poll without its teardown (nothing can be sent), as an I/O error unless it had
    /// already failed.
    pub fn handle_port_error(&mut self, message: String, _now: Instant) {
        if !self.is_done() && self.port_error.is_none() {
            self.port_error = Some(message);
        }
    }

    // ----- poll -----

    /// What to do next at `now`.
    pub fn poll(&mut self, now: Instant) -> JobAction {
        loop {
            if let Some(action) = self.stop_if_asked(now) {
                return action;
            }
            match std::mem::replace(&mut self.phase, Phase::Next) {
                Phase::Start => self.start_run(now),
                Phase::Next => self.next_step(now),
                Phase::Ready { active, drained } => {
                    if !drained {
                        self.phase = Phase::Ready {
                            active,
                            drained: true,
                        };
                        return JobAction::Wait(now);
                    }
                    self.start_io(active, now);
                }
                Phase::Running(active) => {
                    let action = self.session.poll(now);
                    self.flush_engine_events();
                    match action {
                        crate::engine::Action::Write(bytes) => {
                            self.phase = Phase::Running(active);
                            return JobAction::Write(bytes);
                        }
                        crate::engine::Action::Wait(t) => {
                            self.phase = Phase::Running(active);
                            return JobAction::Wait(t);
                        }
                        crate::engine::Action::Done(outcome) => {
                            self.finish_io(active, outcome, now)
                        }
                    }
                }
                Phase::Done => {
                    self.phase = Phase::Done;
                    return JobAction::Done;
                }
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<JobEvent> {
        self.events.pop_front()
    }

    // ----- finish -----

    /// The result of the run. Call once [`Job::poll`] returned [`JobAction::Done`] (before
    /// that, the outcome describes the run so far: it passed unless something failed).
    pub fn into_outcome(self) -> RunOutcome {
        let ended = self.ended.unwrap_or(self.start);
        let exit = self
            .failure
            .as_ref()
            .map_or(crate::exit::Exit::Success, |f| f.cause.kind());
        RunOutcome {
            recipe: self.recipe.name.clone(),
            port: self.options.port.clone(),
            verdict: Verdict::of(exit),
            exit_code: exit.code(),
            started: self.options.started,
            seconds: ended.saturating_duration_since(self.start).as_secs_f64(),
            steps: self.results,
            failure: self.failure,
            captures: self.captures,
            measurements: self.measurements,
            said: self.said,
            messages: self.messages,
            omitted: self.omitted,
            vars: self.vars.to_json(),
            identity: RecipeIdentity::of(self.recipe),
            secret_vars: outcome::secret_names(&self.vars),
        }
    }

    // ----- internals shared by the submodules -----

    /// Redact, then escape, text for a reason or record.
    fn shown(&self, text: &str) -> String {
        crate::util::escape::escape_text(&self.secrets.redact_str(text))
    }

    /// Re-read the secrets from the vars (after a script, a hook or a secret capture); tell
    /// the driver when they changed.
    fn refresh_secrets(&mut self) {
        let now = self.vars.secrets();
        if now != self.secrets {
            self.secrets = now.clone();
            self.events.push_back(JobEvent::Secrets(now));
        }
    }

    /// Keep `{{link.tcp}}` and `{{link.mqtt}}` current: TCP from the engine's socket, MQTT
    /// from an accepted CONNACK (cleared by a DISCONNECT sent) while the engine's session
    /// lives (connection open, no session failure).
    fn refresh_link(&mut self) {
        let link = self.session.link();
        let tcp = link.socket.connected;
        let mqtt = self.mqtt_up && link.session_live();
        if !mqtt {
            self.mqtt_up = false;
        }
        self.vars.set_link(LinkState { tcp, mqtt });
    }

    fn note(&mut self, text: String) {
        self.events.push_back(JobEvent::Note(text));
    }

    fn say(&mut self, line: String, note_prefix: &str) {
        self.note(format!("{note_prefix}: {line}"));
        self.events.push_back(JobEvent::Say(line.clone()));
        if self.said.len() < MAX_KEPT {
            self.said.push(line);
        } else {
            self.omitted += 1;
        }
    }
}
