//! The runner: drives the sans-IO [`Session`] over a [`Transport`] for every step of a
//! [`LoadedRecipe`], keeps vars and the transcript, and produces a [`RunReport`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::engine::mqtt::{Message, parse_packet_type};
use crate::engine::{
    Action, DataPlan, Event, Failure, Matcher, MqttParams, MqttPlan, MqttWant, PlanAction, Session,
    StepOutcome, StepPlan, UrcRule, compile,
};
use crate::exit::Exit;
use crate::recipe::load::{LoadedRecipe, Origin, PlannedStep};
use crate::recipe::model::{OnFail, Step, UrcAction, Validator};
use crate::recipe::vars::{VarValue, Vars};
use crate::transcript::Transcript;
use crate::transport::Transport;

/// Longest single read wait, so an interrupt is noticed quickly.
const READ_SLICE: Duration = Duration::from_millis(200);
/// Default deadline of an `until` step that sets none.
pub const DEFAULT_UNTIL_DEADLINE: Duration = Duration::from_secs(120);

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

/// Runs `script:` steps (provided by the script module).
pub trait ScriptHost {
    /// Run a step's inline script with the recipe vars; returns lines it printed.
    fn run_step_script(
        &mut self,
        index: usize,
        step: &PlannedStep,
        vars: &mut Vars,
    ) -> Result<Vec<String>, String>;

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
            .urc
            .iter()
            .map(|h| {
                let matcher = self
                    .vars
                    .matcher(&h.pattern)
                    .map_err(|e| self.recipe_error("urc", None, e.to_string()))?;
                Ok(UrcRule {
                    matcher,
                    fail: h.action == UrcAction::Fail,
                    message: h
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("URC matched `{}`", h.pattern.as_str())),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.session = Session::new(rules);

        if self.recipe.sync.enabled {
            self.sync()?;
        }
        let total = self.recipe.steps.len();
        for (index, planned) in self.recipe.steps.iter().enumerate() {
            self.step(index, total, planned)?;
        }
        Ok(())
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

    fn step(
        &mut self,
        index: usize,
        total: usize,
        planned: &PlannedStep,
    ) -> Result<(), (Verdict, FailureReport)> {
        let step = &planned.step;
        let origin = planned.origin.to_string();
        let name = self.step_name(index, step);
        let started = Instant::now();
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            let reason = "the recipe's deadline passed".to_string();
            return Err((
                Verdict::Timeout,
                self.failure_report(&name, Some(&planned.origin), reason),
            ));
        }
        if let Some(cond) = &step.condition {
            let value = self
                .vars
                .expand(cond)
                .map_err(|e| self.recipe_error(&name, Some(&planned.origin), e.to_string()))?;
            if !truthy(&value) {
                let record = StepRecord {
                    index: Some(index),
                    name,
                    origin: Some(origin),
                    status: StepStatus::Skipped,
                    attempts: 0,
                    seconds: 0.0,
                    reason: None,
                };
                self.observer.step_finished(&record);
                self.records.push(record);
                return Ok(());
            }
        }
        self.observer.step_started(index, total, &name);
        self.transcript
            .note(&format!("step {} `{}` ({origin})", index + 1, name));
        if let Some(text) = &step.say {
            let text = self
                .vars
                .expand(text)
                .map_err(|e| self.recipe_error(&name, Some(&planned.origin), e.to_string()))?;
            let text = self.vars.redact(&text);
            self.transcript.note(&format!("say: {text}"));
            self.observer.say(&text);
        }
        if step.script.is_some() {
            let result = match self.scripts.as_deref_mut() {
                Some(host) => host.run_step_script(index, planned, &mut self.vars),
                None => Err("this build has no script support".to_string()),
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
                Err(e) => return Err(self.recipe_error(&name, Some(&planned.origin), e)),
            }
        }
        let plan = self
            .plan(step, &name)
            .map_err(|e| self.recipe_error(&name, Some(&planned.origin), e))?;
        // A step that captures secrets keeps its traffic back until they are known.
        if step.secret {
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
                if let Some(em) = &step.expect_mqtt {
                    let spec = em.spec();
                    self.print_messages = !spec.quiet;
                    self.hook = spec.on_message.clone();
                    if self.hook.is_some() {
                        for m in std::mem::take(&mut self.pending_messages) {
                            let printing = std::mem::replace(&mut self.print_messages, false);
                            self.deliver(m);
                            self.print_messages = printing;
                        }
                    }
                }
                let result = self.drive(plan);
                if self.hook.is_some() {
                    // A hook may have set secret vars.
                    self.transcript.set_secrets(self.vars.secret_forms());
                }
                if step
                    .expect_mqtt
                    .as_ref()
                    .is_some_and(|e| e.spec().packet.trim().eq_ignore_ascii_case("publish"))
                {
                    // Messages counted by this wait are not handed to a later hook.
                    self.pending_messages.clear();
                }
                self.hook = None;
                self.print_messages = true;
                let outcome =
                    result.map_err(|stop| self.stopped(stop, &name, Some(&planned.origin)))?;
                if let Some(e) = self.hook_error.take() {
                    return Err(self.recipe_error(&name, Some(&planned.origin), e));
                }
                outcome
            }
        };
        let mut failure = outcome.failure.clone();
        if failure.is_none() {
            for (k, v) in &outcome.captures {
                self.vars.set(k, VarValue::Text(v.clone()), step.secret);
            }
            if step.secret {
                self.transcript.set_secrets(self.vars.secret_forms());
            }
        }
        if step.secret {
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
        let status = match (&failure, step.on_fail) {
            (None, _) => StepStatus::Passed,
            (Some(_), OnFail::Continue) if !fatal => StepStatus::FailedContinued,
            (Some(_), _) => StepStatus::Failed,
        };
        let record = StepRecord {
            index: Some(index),
            name: name.clone(),
            origin: Some(origin),
            status,
            attempts: outcome.attempts,
            seconds: started.elapsed().as_secs_f64(),
            reason: reason.clone(),
        };
        self.transcript.note(&format!(
            "step {} `{}` {}",
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
                self.failure_report(&name, Some(&planned.origin), reason),
            ));
        }
        Ok(())
    }

    /// Build the engine plan of a step; `None` for steps without IO.
    fn plan(&self, step: &Step, name: &str) -> Result<Option<StepPlan>, String> {
        let e = |e: crate::recipe::vars::ExpandError| e.to_string();
        let action = if let Some(send) = &step.send {
            PlanAction::Command(self.vars.expand(send).map_err(e)?)
        } else if let Some(var) = &step.send_data {
            let payload: Arc<[u8]> = match self.vars.get(var) {
                Some(v) => Arc::from(v.as_bytes()),
                None => {
                    return Err(format!(
                        "send_data: var `{var}` is not set (a script step must build it first)"
                    ));
                }
            };
            let opts = step.data.clone().unwrap_or_default();
            PlanAction::Data(DataPlan {
                // The one place the MQTT session's parameters are learned: our own
                // CONNECT, decoded once at plan time.
                session: MqttParams::of_connect(&payload),
                payload,
                chunk: opts.chunk,
                hex: opts.hex,
            })
        } else if let Some(w) = step.wait {
            PlanAction::Wait(w)
        } else if let Some(em) = &step.expect_mqtt {
            let spec = em.spec();
            let packet = self.vars.expand(&spec.packet).map_err(e)?;
            let number = |what: &str,
                          v: &Option<crate::recipe::model::Scalar>|
             -> Result<Option<u64>, String> {
                match v {
                    None => Ok(None),
                    Some(v) => {
                        let text = self.vars.expand(&v.to_text()).map_err(e)?;
                        text.trim().parse::<u64>().map(Some).map_err(|_| {
                            format!("expect_mqtt {what}: `{text}` is not a whole number")
                        })
                    }
                }
            };
            let want = if packet.trim().eq_ignore_ascii_case("publish") {
                let count = number("count", &spec.count)?;
                MqttWant::Messages {
                    // Neither a count nor a time: one message.
                    count: count.or(spec.duration.is_none().then_some(1)),
                }
            } else {
                match parse_packet_type(&packet) {
                    Some(t) => MqttWant::Packet(t),
                    None => {
                        return Err(format!(
                            "expect_mqtt: unknown packet `{packet}` (connack, suback, unsuback, puback, pubrec, pubcomp, pingresp, publish)"
                        ));
                    }
                }
            };
            let packet_id = match number("packet_id", &spec.packet_id)? {
                Some(id) => Some(u16::try_from(id).map_err(|_| {
                    format!("expect_mqtt packet_id: {id} is not a packet id (1-65535)")
                })?),
                None => None,
            };
            let duration = match &spec.duration {
                Some(text) => {
                    let text = self.vars.expand(text).map_err(e)?;
                    Some(
                        crate::recipe::model::parse_duration(&text)
                            .map_err(|err| format!("expect_mqtt duration: {err}"))?,
                    )
                }
                None => None,
            };
            PlanAction::Mqtt(MqttPlan {
                want,
                packet_id,
                duration,
                keep_alive: spec.keep_alive,
            })
        } else {
            return Ok(None);
        };
        let matchers = |pats: &[crate::recipe::model::Pattern]| -> Result<Vec<Matcher>, String> {
            pats.iter()
                .map(|p| {
                    self.vars
                        .matcher(p)
                        .map_err(|err| format!("pattern `{}`: {err}", p.as_str()))
                })
                .collect()
        };
        let until = matchers(step.until.as_slice())?;
        let mut abort = if until.is_empty() {
            matchers(&self.recipe.abort)?
        } else {
            Vec::new()
        };
        abort.extend(matchers(step.abort.as_slice())?);
        let capture = step
            .capture
            .as_slice()
            .iter()
            .map(|c| compile(c).map_err(|err| format!("capture `{c}`: {err}")))
            .collect::<Result<Vec<_>, _>>()?;
        let deadline = step.deadline.or(if until.is_empty() {
            None
        } else {
            Some(DEFAULT_UNTIL_DEADLINE)
        });
        Ok(Some(StepPlan {
            name: name.to_string(),
            action,
            expect: matchers(step.expect.as_slice())?,
            abort,
            until,
            capture,
            timeout: step.timeout.unwrap_or(self.recipe.timeout),
            deadline,
            retries: step.retries.unwrap_or(0),
            prompt_data: match &step.prompt_data {
                Some(var) => match self.vars.get(var) {
                    Some(v) => Some(Arc::from(v.as_bytes())),
                    None => return Err(format!("prompt_data: var `{var}` is not set")),
                },
                None => None,
            },
            recover: step
                .recover
                .as_slice()
                .iter()
                .map(|c| self.vars.expand(c).map_err(e))
                .collect::<Result<Vec<_>, _>>()?,
            retry_delay: step.retry_delay.unwrap_or(Duration::from_secs(1)),
            backoff: step.backoff.unwrap_or(1.0),
            interval: step.interval.unwrap_or(Duration::from_secs(1)),
            delay: step.delay.unwrap_or(Duration::ZERO),
        }))
    }

    /// Drive the session until the step is done.
    fn drive(&mut self, plan: StepPlan) -> Result<StepOutcome, Stop> {
        // Whatever arrived between steps is unsolicited: take it in before sending.
        self.drain_input()?;
        self.session.start(plan, Instant::now(), self.deadline);
        loop {
            self.flush_events();
            if self
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

    fn validate(&self, step: &Step) -> Option<String> {
        for (name, v) in &step.validate {
            let value = self
                .vars
                .get(name)
                .and_then(|v| v.as_text())
                .map(str::to_string);
            let Some(value) = value else {
                return Some(format!("validate: `{name}` was not captured"));
            };
            if let Some(msg) = check(name, &value, v) {
                return Some(self.vars.redact(&msg));
            }
        }
        None
    }

    fn step_name(&self, index: usize, step: &Step) -> String {
        if let Some(n) = &step.name {
            let name = self.vars.expand(n).unwrap_or_else(|_| n.clone());
            return self.vars.redact(&name);
        }
        if let Some(s) = &step.send {
            let s = self.vars.expand(s).unwrap_or_else(|_| s.clone());
            return self.vars.redact(&s);
        }
        if let Some(v) = &step.send_data {
            return format!("send_data {v}");
        }
        if let Some(w) = step.wait {
            return format!("wait {}", humantime::format_duration(w));
        }
        format!("step {}", index + 1)
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
    if let Some(eq) = &v.equals
        && value != eq
    {
        return Some(format!("{name} = `{value}`, expected `{eq}`"));
    }
    if v.not.iter().any(|n| n == value) {
        return Some(format!("{name} = `{value}`, which is not allowed"));
    }
    if let Some(re) = &v.regex {
        match compile(re) {
            Ok(r) if !r.is_match(value) => {
                return Some(format!("{name} = `{value}` does not match /{re}/"));
            }
            Err(e) => return Some(format!("validate {name}: bad regex: {e}")),
            _ => {}
        }
    }
    if v.min.is_some() || v.max.is_some() {
        let Ok(n) = value.trim().parse::<f64>() else {
            return Some(format!("{name} = `{value}` is not a number"));
        };
        if let Some(min) = v.min
            && n < min
        {
            return Some(format!("{name} = {value}, below the minimum {min}"));
        }
        if let Some(max) = v.max
            && n > max
        {
            return Some(format!("{name} = {value}, above the maximum {max}"));
        }
    }
    None
}
