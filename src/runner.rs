//! The runner: drives the sans-IO [`Session`] over a [`Transport`] for every step of a
//! [`LoadedRecipe`], keeps vars and the transcript, and produces a [`RunReport`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::engine::mqtt::Message;
use crate::engine::{
    Action, Event, Failure, MqttPlan, MqttWant, PlanAction, Session, StepOutcome, StepPlan, UrcRule,
};
use crate::exit::Exit;
use crate::recipe::load::{LoadedRecipe, Origin};
use crate::recipe::model::{OnFail, Validator};
use crate::recipe::program::{Check, ProgramStep, StepAction, engine_plan, starts_with_disconnect};
use crate::recipe::vars::{LinkState, VarValue, Vars};
use crate::transcript::Transcript;
use crate::transport::Transport;

/// Longest single read wait, so an interrupt is noticed quickly.
const READ_SLICE: Duration = Duration::from_millis(200);

/// Receives progress while a recipe runs. Every text is already redacted.
pub trait Observer {
    /// A step starts. `index` is 0-based; the start-up sync is reported as `sync`.
    fn step_started(&mut self, _index: usize, _total: usize, _name: &str) {}
    /// A step ended.
    fn step_finished(&mut self, _record: &StepRecord) {}
    /// Modem traffic and engine events, one line each (`> AT`, `< OK`, `! DST: 1`, …).
    fn traffic(&mut self, _line: &str) {}
    /// A `say:` message.
    fn say(&mut self, _text: &str) {}
    /// An MQTT message from the broker (printed as `<topic> <payload>` by the console).
    fn message(&mut self, _message: &Message) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Why a step's script failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailure {
    /// What went wrong, with the script's file and line.
    pub message: String,
    /// The step's or the recipe's deadline stopped the script (a timeout).
    pub timed_out: bool,
}

/// Runs `script:` steps (provided by the script module).
pub trait ScriptHost {
    /// Run a step's inline script with the recipe vars, stopping it at `deadline`;
    /// returns lines it printed.
    fn run_step_script(
        &mut self,
        step: &ProgramStep,
        vars: &mut Vars,
        deadline: Option<Instant>,
    ) -> Result<Vec<String>, ScriptFailure>;

    /// Call the `on_message` function `name(topic, payload, qos, retain)`.
    fn on_message(
        &mut self,
        name: &str,
        message: &Message,
        vars: &mut Vars,
    ) -> Result<Vec<String>, String>;
}

/// Options for one run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Set to stop the run (Ctrl-C).
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Port name for the report.
    pub port: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every step passed (optional steps may have failed).
    Passed,
    /// A step failed.
    Failed,
    /// A step or the recipe deadline timed out.
    Timeout,
    /// The port failed or vanished.
    IoError,
    /// A `{{var}}` or script problem found while running.
    RecipeError,
    /// Stopped by the user.
    Interrupted,
}

impl Verdict {
    /// The process exit code for this verdict.
    pub fn exit(self) -> Exit {
        match self {
            Verdict::Passed => Exit::Success,
            Verdict::Failed => Exit::StepFailed,
            Verdict::Timeout => Exit::Timeout,
            Verdict::IoError => Exit::Io,
            Verdict::RecipeError => Exit::Usage,
            Verdict::Interrupted => Exit::Interrupted,
        }
    }
}

/// The status of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It passed.
    Passed,
    /// It failed and ended the run.
    Failed,
    /// It failed, but `on_fail: continue`.
    FailedContinued,
    /// Its `if:` was false.
    Skipped,
}

/// What happened in one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// 0-based index among the recipe's steps (the sync is not counted).
    pub index: Option<usize>,
    /// Name.
    pub name: String,
    /// Where the step is written.
    pub origin: Option<String>,
    /// Status.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Time spent, in seconds.
    pub seconds: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A teardown (`finally`) step: it ran after the steps and does not count towards
    /// the verdict.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub teardown: bool,
}

/// Details of the failure that ended a run.
#[derive(Debug, Clone, Serialize)]
pub struct FailureReport {
    /// Step name (`sync` for the start-up sync).
    pub step: String,
    /// Where the step is written.
    pub origin: Option<String>,
    /// What went wrong.
    pub reason: String,
    /// The last transcript lines.
    pub tail: Vec<String>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Recipe name.
    pub recipe: String,
    /// Port.
    pub port: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Exit code.
    pub exit_code: u8,
    /// Start, seconds since the Unix epoch.
    pub started: f64,
    /// Duration in seconds.
    pub seconds: f64,
    /// Steps run.
    pub steps: Vec<StepRecord>,
    /// The failure, if the run did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReport>,
    /// Values captured from the modem (secrets as `***`).
    pub captures: BTreeMap<String, String>,
    /// All vars at the end (secrets as `***`, bytes as hex).
    pub vars: serde_json::Value,
}

impl RunReport {
    /// The exit code.
    pub fn exit(&self) -> Exit {
        self.verdict.exit()
    }
}

/// Why the drive loop stopped early.
enum Stop {
    Io(String),
    Interrupted,
}

/// Runs one recipe against one modem.
pub struct Runner<'a> {
    recipe: &'a LoadedRecipe,
    port: &'a mut dyn Transport,
    transcript: &'a mut Transcript,
    observer: &'a mut dyn Observer,
    scripts: Option<&'a mut dyn ScriptHost>,
    options: RunOptions,
    vars: Vars,
    session: Session,
    captures: BTreeMap<String, String>,
    records: Vec<StepRecord>,
    deadline: Option<Instant>,
    buf: Vec<u8>,
    /// `on_message` hook of the running MQTT wait.
    hook: Option<String>,
    /// Print messages on stdout.
    print_messages: bool,
    /// Messages that arrived while no hook was active (delivered to the next one).
    pending_messages: Vec<Message>,
    /// First error of an `on_message` hook in the running step.
    hook_error: Option<String>,
    /// Traffic lines held back while a step captures secrets (redacted on release).
    held_traffic: Option<Vec<String>>,
    /// The teardown is running: interrupts no longer stop a step.
    in_teardown: bool,
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
        let vars = recipe.vars.clone();
        Runner {
            recipe,
            port,
            transcript,
            observer,
            scripts: None,
            options,
            vars,
            session: Session::default(),
            captures: BTreeMap::new(),
            records: Vec::new(),
            deadline: None,
            buf: vec![0u8; 4096],
            hook: None,
            print_messages: true,
            pending_messages: Vec::new(),
            hook_error: None,
            held_traffic: None,
            in_teardown: false,
        }
    }

    /// Use this host for `script:` steps.
    pub fn with_scripts(mut self, host: &'a mut dyn ScriptHost) -> Runner<'a> {
        self.scripts = Some(host);
        self
    }

    /// Run every step; never panics on modem input, always flushes the transcript.
    pub fn run(mut self) -> RunReport {
        let started_wall = SystemTime::now();
        let started = Instant::now();
        self.deadline = self.recipe.deadline.map(|d| started + d);
        self.transcript.set_secrets(self.vars.secret_forms());
        let (verdict, failure) = match self.run_inner() {
            Ok(()) => (Verdict::Passed, None),
            Err((v, f)) => (v, Some(f)),
        };
        self.teardown(verdict);
        if let Some(f) = &failure {
            self.transcript.note(&format!(
                "run ended: {:?} in `{}`: {}",
                verdict, f.step, f.reason
            ));
        } else {
            self.transcript.note("run passed");
        }
        let flush_err = self.transcript.flush().err();
        let mut failure = failure;
        if let Some(e) = flush_err
            && let Some(f) = failure.as_mut()
        {
            f.reason
                .push_str(&format!(" (transcript write failed: {e})"));
        }
        let tail_ready = failure.map(|mut f| {
            f.tail = self.transcript.tail();
            f
        });
        RunReport {
            recipe: self.recipe.name.clone(),
            port: self.options.port.clone(),
            verdict,
            exit_code: verdict.exit().code(),
            started: started_wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            seconds: started.elapsed().as_secs_f64(),
            steps: self.records,
            failure: tail_ready,
            captures: self.captures,
            vars: self.vars.to_json(),
        }
    }

    fn run_inner(&mut self) -> Result<(), (Verdict, FailureReport)> {
        let rules = self
            .recipe
            .program
            .urc
            .iter()
            .map(|h| {
                let matcher = h
                    .pattern
                    .matcher(&self.vars)
                    .map_err(|e| self.recipe_error("urc", None, e.to_string()))?;
                let message = self
                    .vars
                    .expand_template(&h.message)
                    .unwrap_or_else(|_| h.message.source().to_owned());
                Ok(UrcRule {
                    matcher,
                    fail: h.fail,
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.session = Session::new(rules);

        if self.recipe.program.sync.is_some() {
            self.sync()?;
        }
        let recipe = self.recipe;
        let total = recipe.program.steps.len();
        for step in &recipe.program.steps {
            self.step(total, step, false)?;
        }
        Ok(())
    }

    /// Run the teardown (`finally`) steps after the steps, whatever their outcome: each
    /// one runs (a failure is recorded and the next goes on) within `finally_deadline`
    /// from now; the verdict stays as it was. A failed port ends it (nothing can be sent);
    /// a Ctrl-C that stopped the steps does not stop the teardown, which the deadline
    /// bounds.
    fn teardown(&mut self, verdict: Verdict) {
        let recipe = self.recipe;
        let program = &recipe.program;
        if program.finally.is_empty() {
            return;
        }
        if verdict == Verdict::IoError {
            self.transcript
                .note("teardown skipped: the port failed, nothing can be sent");
            return;
        }
        self.transcript.note(&format!(
            "teardown: {} step(s) within {}",
            program.finally.len(),
            humantime::format_duration(program.finally_deadline)
        ));
        self.deadline = Some(crate::util::time::later(
            Instant::now(),
            program.finally_deadline,
        ));
        self.in_teardown = true;
        let total = program.steps.len();
        for step in &program.finally {
            let result = self.step(total, step, true);
            if matches!(result, Err((Verdict::IoError, _))) {
                break;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                self.transcript
                    .note("teardown stopped: its deadline (`finally_deadline`) passed");
                break;
            }
        }
        self.in_teardown = false;
        self.transcript.note("teardown done");
    }

    /// Keep `{{link.tcp}}` and `{{link.mqtt}}` current: TCP from the session's link,
    /// MQTT set by an accepted CONNACK and cleared by a DISCONNECT we sent or a closed
    /// connection.
    fn refresh_link(&mut self) {
        let tcp = self.session.link().socket.connected;
        let link = self.vars.link();
        self.vars.set_link(LinkState {
            tcp,
            mqtt: link.mqtt && tcp,
        });
    }

    fn sync(&mut self) -> Result<(), (Verdict, FailureReport)> {
        let s = &self.recipe.sync;
        let mut plan = StepPlan::command("AT", s.interval);
        plan.name = "sync".into();
        let tries = (s.within.as_millis() / s.interval.as_millis().max(1)).max(1);
        plan.retries = u32::try_from(tries).unwrap_or(u32::MAX).saturating_sub(1);
        plan.retry_delay = Duration::ZERO;
        plan.deadline = Some(s.within);
        self.observer
            .step_started(0, self.recipe.steps.len(), "sync");
        self.transcript.note("sync: AT until OK");
        let outcome = self
            .drive(plan)
            .map_err(|stop| self.stopped(stop, "sync", None))?;
        let record = StepRecord {
            index: None,
            name: "sync".into(),
            origin: None,
            status: if outcome.passed() {
                StepStatus::Passed
            } else {
                StepStatus::Failed
            },
            attempts: outcome.attempts,
            seconds: outcome.elapsed.as_secs_f64(),
            reason: None,
            teardown: false,
        };
        self.observer.step_finished(&record);
        self.records.push(record);
        if let Some(f) = outcome.failure {
            // Say what was seen: silence, bytes that were no answer, or answers without OK.
            let within = humantime::format_duration(s.within);
            let seen: Vec<String> = outcome.lines.iter().map(|l| self.vars.redact(l)).collect();
            let reason = match &f {
                Failure::NoReply { .. } => format!(
                    "the modem did not answer `AT` within {within} ({f}); is it powered, on this port, at this baud rate?"
                ),
                _ if seen.is_empty() => format!(
                    "the modem did not answer `AT` with `OK` within {within} ({f}); it sent bytes that were no answer: is the baud rate right?"
                ),
                _ => format!(
                    "the modem answered `AT`, but not with `OK`, within {within} ({f}); its last reply: {}",
                    seen.join(" | ")
                ),
            };
            let verdict = if f.is_timeout() {
                Verdict::Timeout
            } else {
                Verdict::Failed
            };
            if let Some(r) = self.records.last_mut() {
                r.reason = Some(reason.clone());
            }
            return Err((verdict, self.failure_report("sync", None, reason)));
        }
        Ok(())
    }

    /// Run one step of the program. A teardown step never ends the run: its failure is
    /// recorded as continued.
    fn step(
        &mut self,
        total: usize,
        step: &ProgramStep,
        teardown: bool,
    ) -> Result<(), (Verdict, FailureReport)> {
        let index = step.id;
        let origin = step.origin.to_string();
        self.refresh_link();
        let mut name = self.vars.redact(&step.display_name(&self.vars));
        if teardown {
            name = format!("teardown: {name}");
        }
        let record_index = (!teardown).then_some(index);
        let started = Instant::now();
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            let reason = if teardown {
                "the teardown's deadline (`finally_deadline`) passed".to_string()
            } else {
                "the recipe's deadline passed".to_string()
            };
            return Err((
                Verdict::Timeout,
                self.failure_report(&name, Some(&step.origin), reason),
            ));
        }
        if let Some(cond) = &step.condition {
            let value = self
                .vars
                .expand_template(cond)
                .map_err(|e| self.recipe_error(&name, Some(&step.origin), e.to_string()))?;
            if !truthy(&value) {
                let record = StepRecord {
                    index: record_index,
                    name,
                    origin: Some(origin),
                    status: StepStatus::Skipped,
                    attempts: 0,
                    seconds: 0.0,
                    reason: None,
                    teardown,
                };
                self.observer.step_finished(&record);
                self.records.push(record);
                return Ok(());
            }
        }
        if !teardown {
            self.observer.step_started(index, total, &name);
        }
        self.transcript.note(&format!(
            "{} {} `{}` ({origin})",
            if teardown { "teardown step" } else { "step" },
            index + 1,
            name
        ));
        // The step's deadline covers its script too; the recipe's bounds both.
        let step_deadline = crate::util::time::earliest(
            step.deadline.map(|d| crate::util::time::later(started, d)),
            self.deadline,
        );
        if let Some(text) = &step.say {
            let text = self
                .vars
                .expand_template(text)
                .map_err(|e| self.recipe_error(&name, Some(&step.origin), e.to_string()))?;
            let text = self.vars.redact(&text);
            self.transcript.note(&format!("say: {text}"));
            self.observer.say(&text);
        }
        if step.script.is_some() {
            let result = match self.scripts.as_deref_mut() {
                Some(host) => host.run_step_script(step, &mut self.vars, step_deadline),
                None => Err(ScriptFailure {
                    message: "this build has no script support".to_string(),
                    timed_out: false,
                }),
            };
            match result {
                Ok(lines) => {
                    for l in lines {
                        let l = self.vars.redact(&l);
                        self.transcript.note(&format!("script: {l}"));
                        self.observer.say(&l);
                    }
                    self.transcript.set_secrets(self.vars.secret_forms());
                }
                Err(f) if f.timed_out => {
                    let reason = self.vars.redact(&f.message);
                    let report = self.failure_report(&name, Some(&step.origin), reason);
                    return Err((Verdict::Timeout, report));
                }
                Err(f) => return Err(self.recipe_error(&name, Some(&step.origin), f.message)),
            }
        }
        let plan = self
            .plan(step, &name, started)
            .map_err(|e| self.recipe_error(&name, Some(&step.origin), e))?;
        let secret = matches!(&step.action, StepAction::Send(s) if s.secret);
        // A step that captures secrets keeps its traffic back until they are known.
        if secret {
            self.transcript.hold();
            self.held_traffic = Some(Vec::new());
        }
        let outcome = match plan {
            None => StepOutcome {
                failure: None,
                attempts: 1,
                polls: 0,
                captures: Vec::new(),
                lines: Vec::new(),
                elapsed: started.elapsed(),
            },
            Some(plan) => {
                let mqtt = match &step.action {
                    StepAction::ExpectMqtt(em) => Some(em),
                    _ => None,
                };
                if let Some(em) = mqtt {
                    self.print_messages = !em.quiet;
                    self.hook = em.on_message.clone();
                    if self.hook.is_some() {
                        for m in std::mem::take(&mut self.pending_messages) {
                            let printing = std::mem::replace(&mut self.print_messages, false);
                            self.deliver(m);
                            self.print_messages = printing;
                        }
                    }
                }
                let disconnects = match &plan.action {
                    PlanAction::Data(d) => starts_with_disconnect(&d.payload),
                    _ => false,
                };
                let connack = matches!(
                    &plan.action,
                    PlanAction::Mqtt(MqttPlan {
                        want: MqttWant::Packet(crate::mqtt::PacketType::ConnAck),
                        ..
                    })
                );
                let result = self.drive(plan);
                if self.hook.is_some() {
                    // A hook may have set secret vars.
                    self.transcript.set_secrets(self.vars.secret_forms());
                }
                if mqtt.is_some_and(|em| em.want.is_messages()) {
                    // Messages counted by this wait are not handed to a later hook.
                    self.pending_messages.clear();
                }
                self.hook = None;
                self.print_messages = true;
                let outcome =
                    result.map_err(|stop| self.stopped(stop, &name, Some(&step.origin)))?;
                if let Some(e) = self.hook_error.take() {
                    return Err(self.recipe_error(&name, Some(&step.origin), e));
                }
                if outcome.passed() {
                    let mut link = self.vars.link();
                    if connack {
                        link.mqtt = true;
                    }
                    if disconnects {
                        link.mqtt = false;
                    }
                    self.vars.set_link(link);
                }
                outcome
            }
        };
        self.refresh_link();
        let mut failure = outcome.failure.clone();
        if failure.is_none() {
            for (k, v) in &outcome.captures {
                self.vars.set(k, VarValue::Text(v.clone()), secret);
            }
            if secret {
                self.transcript.set_secrets(self.vars.secret_forms());
            }
        }
        if secret {
            self.transcript.release();
            for line in self.held_traffic.take().unwrap_or_default() {
                let line = self.vars.redact(&line);
                self.observer.traffic(&line);
            }
        }
        if failure.is_none() {
            for (k, v) in &outcome.captures {
                let shown = if self.vars.is_secret(k) {
                    crate::transcript::REDACTED.to_string()
                } else {
                    v.clone()
                };
                self.captures.insert(k.clone(), shown);
            }
            if let Some(msg) = self.validate(step) {
                failure = Some(Failure::Validation { message: msg });
            }
        }
        let reason = failure.as_ref().map(|f| self.vars.redact(&f.to_string()));
        let fatal = failure.as_ref().is_some_and(Failure::is_fatal);
        let on_fail = if teardown {
            OnFail::Continue
        } else {
            step.on_fail
        };
        let status = match (&failure, on_fail) {
            (None, _) => StepStatus::Passed,
            (Some(_), OnFail::Continue) if !fatal || teardown => StepStatus::FailedContinued,
            (Some(_), _) => StepStatus::Failed,
        };
        let record = StepRecord {
            index: record_index,
            name: name.clone(),
            origin: Some(origin),
            status,
            attempts: outcome.attempts,
            seconds: started.elapsed().as_secs_f64(),
            reason: reason.clone(),
            teardown,
        };
        self.transcript.note(&format!(
            "{} {} `{}` {}",
            if teardown { "teardown step" } else { "step" },
            index + 1,
            name,
            match &reason {
                None => "passed".to_string(),
                Some(r) => format!("failed: {r}"),
            }
        ));
        self.observer.step_finished(&record);
        self.records.push(record);
        if status == StepStatus::Failed {
            let f = failure.unwrap_or(Failure::Data {
                message: "failed".into(),
            });
            let verdict = if f.is_timeout() {
                Verdict::Timeout
            } else {
                Verdict::Failed
            };
            let mut reason = reason.unwrap_or_default();
            if !outcome.lines.is_empty() && !f.is_timeout() {
                let lines: Vec<String> =
                    outcome.lines.iter().map(|l| self.vars.redact(l)).collect();
                reason.push_str(&format!("; the modem said: {}", lines.join(" | ")));
            }
            return Err((
                verdict,
                self.failure_report(&name, Some(&step.origin), reason),
            ));
        }
        Ok(())
    }

    /// Build the engine plan of a step; `None` for steps without IO. The step started at
    /// `started` (its script may have used part of its deadline).
    fn plan(
        &self,
        step: &ProgramStep,
        name: &str,
        started: Instant,
    ) -> Result<Option<StepPlan>, String> {
        engine_plan(step, &self.vars, name, started.elapsed())
    }

    /// Drive the session until the step is done.
    fn drive(&mut self, plan: StepPlan) -> Result<StepOutcome, Stop> {
        // Whatever arrived between steps is unsolicited: take it in before sending.
        self.drain_input()?;
        self.session.start(plan, Instant::now(), self.deadline);
        loop {
            self.flush_events();
            if !self.in_teardown
                && self
                    .options
                    .interrupt
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::SeqCst))
            {
                return Err(Stop::Interrupted);
            }
            let now = Instant::now();
            match self.session.poll(now) {
                Action::Write(bytes) => {
                    self.transcript.tx(&bytes);
                    if let Err(e) = self.port.write_all(&bytes) {
                        return Err(Stop::Io(format!("write to the port failed: {e}")));
                    }
                }
                Action::Wait(until) => {
                    // At least 1 ms: a wake-up that is due now must not spin.
                    let wait = until
                        .saturating_duration_since(now)
                        .clamp(Duration::from_millis(1), READ_SLICE);
                    self.read_some(wait)?;
                }
                Action::Done(outcome) => {
                    self.flush_events();
                    return Ok(outcome);
                }
            }
        }
    }

    fn read_some(&mut self, wait: Duration) -> Result<usize, Stop> {
        match self.port.read_timeout(&mut self.buf, wait) {
            Ok(0) => Ok(0),
            Ok(n) => {
                let bytes = self.buf[..n].to_vec();
                self.transcript.rx(&bytes);
                self.session.feed(&bytes, Instant::now());
                Ok(n)
            }
            Err(e) => Err(Stop::Io(format!(
                "the port {} failed or vanished: {e}",
                self.port.describe()
            ))),
        }
    }

    fn drain_input(&mut self) -> Result<(), Stop> {
        for _ in 0..64 {
            if self.read_some(Duration::ZERO)? == 0 {
                break;
            }
        }
        self.flush_events();
        Ok(())
    }

    fn flush_events(&mut self) {
        let events: Vec<Event> = self.session.drain_events().collect();
        for ev in events {
            let line = match &ev {
                Event::Sent(l) => format!("> {l}"),
                Event::SentData(n) => format!("> [{n} data bytes]"),
                Event::Echo(l) => format!("< {l} (echo)"),
                Event::Response(l) => format!("< {l}"),
                Event::Unsolicited { line, urc } => match urc {
                    Some(u) => format!("! {line} ({})", u.describe()),
                    None => format!("! {line}"),
                },
                Event::Prompt => "< >".to_string(),
                Event::Data(d) => format!("< [{} bytes received]", d.len()),
                Event::Message(m) => {
                    self.deliver(m.clone());
                    format!(
                        "MQTT message on `{}` ({} bytes, QoS {})",
                        m.topic,
                        m.payload.len(),
                        m.qos
                    )
                }
                Event::Retry { attempt, failure } => {
                    format!("attempt {attempt} failed ({failure}); retrying")
                }
                Event::Poll { polls } => format!("poll {polls}: not yet"),
                Event::Boot(l) => format!("! {l} (modem finished booting)"),
                Event::Note(n) => format!("note: {n}"),
                Event::Tls(t) => t.to_string(),
            };
            match self.held_traffic.as_mut() {
                Some(held) => held.push(line),
                None => {
                    let line = self.vars.redact(&line);
                    self.observer.traffic(&line);
                }
            }
        }
    }

    /// Print a message and hand it to the running step's hook (or keep it for the next).
    fn deliver(&mut self, m: Message) {
        if self.print_messages {
            self.observer.message(&m);
        }
        let Some(hook) = self.hook.clone() else {
            if self.pending_messages.len() < 10_000 {
                self.pending_messages.push(m);
            }
            return;
        };
        let result = match self.scripts.as_deref_mut() {
            Some(host) => host.on_message(&hook, &m, &mut self.vars),
            None => Err("this build has no script support".to_string()),
        };
        match result {
            Ok(lines) => {
                for l in lines {
                    let l = self.vars.redact(&l);
                    self.transcript.note(&format!("on_message: {l}"));
                    self.observer.say(&l);
                }
            }
            Err(e) => {
                self.hook_error.get_or_insert(e);
            }
        }
    }

    fn validate(&self, step: &ProgramStep) -> Option<String> {
        let StepAction::Send(send) = &step.action else {
            return None;
        };
        for (name, check) in &send.validate {
            let value = self
                .vars
                .get(name)
                .and_then(|v| v.as_text())
                .map(str::to_string);
            let Some(value) = value else {
                return Some(format!("validate: `{name}` was not captured"));
            };
            if let Some(msg) = check.verdict(name, &value) {
                return Some(self.vars.redact(&msg));
            }
        }
        None
    }

    fn failure_report(&self, step: &str, origin: Option<&Origin>, reason: String) -> FailureReport {
        FailureReport {
            step: step.to_string(),
            origin: origin.map(|o| o.to_string()),
            reason,
            tail: Vec::new(),
        }
    }

    fn recipe_error(
        &self,
        step: &str,
        origin: Option<&Origin>,
        reason: String,
    ) -> (Verdict, FailureReport) {
        (
            Verdict::RecipeError,
            self.failure_report(step, origin, self.vars.redact(&reason)),
        )
    }

    fn stopped(&self, stop: Stop, step: &str, origin: Option<&Origin>) -> (Verdict, FailureReport) {
        match stop {
            Stop::Io(msg) => (Verdict::IoError, self.failure_report(step, origin, msg)),
            Stop::Interrupted => (
                Verdict::Interrupted,
                self.failure_report(step, origin, "interrupted".into()),
            ),
        }
    }
}

/// `if:` truthiness: empty, `false`, `0`, `no`, `off` are false.
pub fn truthy(text: &str) -> bool {
    !matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "" | "false" | "0" | "no" | "off"
    )
}

/// Check a captured value; `Some(message)` when it fails.
pub fn check(name: &str, value: &str, v: &Validator) -> Option<String> {
    match Check::from_validator(v) {
        Ok(c) => c.verdict(name, value),
        Err(e) => Some(format!("validate {name}: bad regex: {e}")),
    }
}
