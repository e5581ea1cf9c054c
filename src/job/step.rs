//! One step from its condition to its record; the start-up sync; the teardown; how a run
//! stops (a failure, an interrupt, a failed port).

use std::time::{Duration, Instant};

use super::outcome::{FailureInfo, Limits, Measurement, RunFailure, StepResult, StepStatus};
use super::{Active, Job, JobEvent, Phase, Stage};
use crate::engine::{MqttPlan, MqttWant, PlanAction, Session, StepOutcome, StepPlan, UrcRule};
use crate::recipe::model::OnFail;
use crate::recipe::program::{ProgramStep, StepAction, engine_plan, starts_with_disconnect};
use crate::recipe::vars::VarValue;
use crate::redact::REDACTED;
use crate::util::time::{earliest, later};

/// `if:` truthiness: empty, `false`, `0`, `no`, `off` (any case, trimmed) are false.
pub(super) fn truthy(text: &str) -> bool {
    !matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "" | "false" | "0" | "no" | "off"
    )
}

impl<'a> Job<'a> {
    /// The URC rules, then the sync (or the first step).
    pub(super) fn start_run(&mut self, now: Instant) {
        let rules = self
            .recipe
            .program
            .urc
            .iter()
            .map(|h| {
                let matcher = h.pattern.matcher(&self.vars).map_err(|e| e.to_string())?;
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
            .collect::<Result<Vec<_>, String>>();
        match rules {
            Ok(rules) => self.session = Session::new(rules),
            Err(message) => {
                return self.fail("urc".into(), None, RunFailure::Recipe { message }, now);
            }
        }
        if self.recipe.program.sync.is_none() {
            self.phase = Phase::Next;
            return;
        }
        self.events.push_back(JobEvent::StepStarted {
            index: 0,
            total: self.recipe.program.steps.len(),
            name: "sync".into(),
        });
        self.note("sync: AT until OK".into());
        self.phase = Phase::Ready {
            active: Active {
                step: None,
                name: "sync".into(),
                started: now,
                teardown: false,
                connack: false,
                disconnects: false,
            },
            drained: false,
        };
    }

    /// Start the next step of the stage, or move to the next stage.
    pub(super) fn next_step(&mut self, now: Instant) {
        let program = &self.recipe.program;
        let list = match self.stage {
            Stage::Main => &program.steps,
            Stage::Teardown => &program.finally,
            Stage::Over => {
                self.phase = Phase::Done;
                return;
            }
        };
        let Some(step) = list.get(self.next) else {
            return match self.stage {
                Stage::Main => self.begin_teardown(now),
                _ => self.end_teardown(now),
            };
        };
        let teardown = self.stage == Stage::Teardown;
        if teardown && self.deadline.is_some_and(|d| now >= d) {
            self.note("teardown stopped: its deadline (`finally_deadline`) passed".into());
            return self.end_teardown(now);
        }
        self.next += 1;
        self.begin_step(step, teardown, now);
    }

    /// A step's condition, `say:` and script; then it is ready for its IO.
    fn begin_step(&mut self, step: &'a ProgramStep, teardown: bool, now: Instant) {
        self.refresh_link();
        let mut name = self.shown(&step.display_name(&self.vars));
        if teardown {
            name = format!("teardown: {name}");
        }
        let origin = step.origin.to_string();
        if !teardown && self.deadline.is_some_and(|d| now >= d) {
            let cause = RunFailure::Deadline { teardown: false };
            return self.fail(name, Some(origin), cause, now);
        }
        if let Some(cond) = &step.condition {
            match self.vars.expand_template(cond) {
                Err(e) => {
                    let cause = RunFailure::Recipe {
                        message: e.to_string(),
                    };
                    return self.step_error(step, name, cause, teardown, now);
                }
                Ok(value) if !truthy(&value) => {
                    let result = StepResult {
                        index: (!teardown).then_some(step.id),
                        name,
                        origin: Some(origin),
                        status: StepStatus::Skipped,
                        attempts: 0,
                        seconds: 0.0,
                        reason: None,
                        teardown,
                    };
                    self.record(result);
                    return;
                }
                Ok(_) => {}
            }
        }
        if !teardown {
            self.events.push_back(JobEvent::StepStarted {
                index: step.id,
                total: self.recipe.program.steps.len(),
                name: name.clone(),
            });
        }
        self.note(format!(
            "{} {} `{}` ({origin})",
            kind(teardown),
            step.id + 1,
            name
        ));
        if let Some(text) = &step.say {
            match self.vars.expand_template(text) {
                Ok(text) => {
                    let line = self.shown_lines(&text);
                    self.say(line, "say");
                }
                Err(e) => {
                    let cause = RunFailure::Recipe {
                        message: e.to_string(),
                    };
                    return self.step_error(step, name, cause, teardown, now);
                }
            }
        }
        if step.script.is_some() {
            // The step's deadline covers its script too; the recipe's bounds both.
            let deadline = earliest(step.deadline.map(|d| later(now, d)), self.deadline);
            let result = match self.scripts.as_deref_mut() {
                Some(host) => host.run_step_script(step, &mut self.vars, deadline),
                None => Err(super::ScriptFailure {
                    message: "this build has no script support".to_string(),
                    timed_out: false,
                }),
            };
            self.refresh_secrets();
            match result {
                Ok(lines) => {
                    for l in lines {
                        let l = self.shown(&l);
                        self.say(l, "script");
                    }
                }
                Err(f) => {
                    let cause = RunFailure::Script {
                        message: f.message,
                        timed_out: f.timed_out,
                    };
                    return self.step_error(step, name, cause, teardown, now);
                }
            }
        }
        self.phase = Phase::Ready {
            active: Active {
                step: Some(step),
                name,
                started: now,
                teardown,
                connack: false,
                disconnects: false,
            },
            drained: false,
        };
    }

    /// Plan the step's IO with the vars as they are now and hand it to the engine.
    pub(super) fn start_io(&mut self, mut active: Active<'a>, now: Instant) {
        let Some(step) = active.step else {
            // The start-up sync: `AT` every `interval` until `OK`, for at most `within`.
            let Some(sync) = self.recipe.program.sync else {
                self.phase = Phase::Next;
                return;
            };
            let mut plan = StepPlan::command("AT", sync.interval);
            plan.name = "sync".into();
            let tries = (sync.within.as_millis() / sync.interval.as_millis().max(1)).max(1);
            plan.retries = u32::try_from(tries).unwrap_or(u32::MAX).saturating_sub(1);
            plan.retry_delay = Duration::ZERO;
            plan.deadline = Some(sync.within);
            self.session.start(plan, now, self.deadline);
            self.phase = Phase::Running(active);
            return;
        };
        let elapsed = now.saturating_duration_since(active.started);
        let plan = match engine_plan(step, &self.vars, &active.name, elapsed) {
            Ok(Some(plan)) => plan,
            Ok(None) => {
                let outcome = StepOutcome {
                    failure: None,
                    attempts: 1,
                    polls: 0,
                    captures: Vec::new(),
                    lines: Vec::new(),
                    elapsed,
                };
                return self.finish_step(step, active, outcome, now);
            }
            Err(message) => {
                let cause = RunFailure::Recipe { message };
                return self.step_error(step, active.name, cause, active.teardown, now);
            }
        };
        if matches!(&step.action, StepAction::Send(s) if s.secret) {
            // A step that captures secrets keeps its traffic back until they are known.
            self.events.push_back(JobEvent::HoldTranscript);
            self.held_traffic = Some(Vec::new());
        }
        if let StepAction::ExpectMqtt(em) = &step.action {
            self.print_messages = !em.quiet;
            self.hook = em.on_message.clone();
            if self.hook.is_some() {
                for m in std::mem::take(&mut self.pending_messages) {
                    self.dispatch(m);
                }
            }
        }
        active.disconnects = match &plan.action {
            PlanAction::Data(d) => starts_with_disconnect(&d.payload),
            _ => false,
        };
        active.connack = matches!(
            &plan.action,
            PlanAction::Mqtt(MqttPlan {
                want: MqttWant::Packet(crate::mqtt::PacketType::ConnAck),
                ..
            })
        );
        self.session.start(plan, now, self.deadline);
        self.phase = Phase::Running(active);
    }

    /// The engine finished the step's IO.
    pub(super) fn finish_io(&mut self, active: Active<'a>, outcome: StepOutcome, now: Instant) {
        let Some(step) = active.step else {
            return self.finish_sync(active, outcome, now);
        };
        if self.hook.is_some() {
            // A hook may have set secret vars.
            self.refresh_secrets();
        }
        if let StepAction::ExpectMqtt(em) = &step.action
            && em.want.is_messages()
        {
            // Messages counted by this wait are not handed to a later hook.
            self.pending_messages.clear();
        }
        self.hook = None;
        self.print_messages = true;
        if let Some(message) = self.hook_error.take() {
            let cause = RunFailure::Hook { message };
            return self.step_error(step, active.name, cause, active.teardown, now);
        }
        if outcome.passed() {
            if active.connack {
                self.mqtt_up = true;
            }
            if active.disconnects {
                self.mqtt_up = false;
            }
        }
        self.finish_step(step, active, outcome, now);
    }

    /// Captures, validation, the step's record, and what its failure does.
    fn finish_step(
        &mut self,
        step: &'a ProgramStep,
        active: Active<'a>,
        outcome: StepOutcome,
        now: Instant,
    ) {
        self.refresh_link();
        let secret = matches!(&step.action, StepAction::Send(s) if s.secret);
        if outcome.passed() {
            for (k, v) in &outcome.captures {
                self.vars.set(k, VarValue::Text(v.clone()), secret);
            }
            if secret {
                self.refresh_secrets();
            }
        }
        if secret {
            self.release_traffic();
        }
        let mut failure = outcome.failure.clone().map(|failure| RunFailure::Step {
            failure,
            replies: outcome.lines.clone(),
        });
        if failure.is_none() {
            for (k, v) in &outcome.captures {
                let shown = if self.vars.is_secret(k) {
                    REDACTED.to_string()
                } else {
                    self.shown(v)
                };
                self.captures.insert(k.clone(), shown);
            }
        }
        let validation = self.validate(step, &active.name, failure.is_none());
        if failure.is_none() {
            failure = validation;
        }
        // The step's own reason leaves out the modem's lines (the run's failure shows them).
        let reason = failure.as_ref().map(|f| match f {
            RunFailure::Step { failure, .. } => self.shown(&failure.to_string()),
            other => self.shown(&other.to_string()),
        });
        let fatal = failure.as_ref().is_some_and(RunFailure::is_fatal);
        let on_fail = if active.teardown {
            OnFail::Continue
        } else {
            step.on_fail
        };
        let status = match (&failure, on_fail) {
            (None, _) => StepStatus::Passed,
            (Some(_), OnFail::Continue) if !fatal || active.teardown => StepStatus::FailedContinued,
            (Some(_), _) => StepStatus::Failed,
        };
        let origin = step.origin.to_string();
        self.note(format!(
            "{} {} `{}` {}",
            kind(active.teardown),
            step.id + 1,
            active.name,
            match &reason {
                None => "passed".to_string(),
                Some(r) => format!("failed: {r}"),
            }
        ));
        let result = StepResult {
            index: (!active.teardown).then_some(step.id),
            name: active.name.clone(),
            origin: Some(origin.clone()),
            status,
            attempts: outcome.attempts,
            seconds: now.saturating_duration_since(active.started).as_secs_f64(),
            reason,
            teardown: active.teardown,
        };
        self.record(result);
        if status == StepStatus::Failed
            && let Some(cause) = failure
        {
            self.fail(active.name, Some(origin), cause, now);
        }
    }

    /// Check the step's captured values: one measurement per `validate:` entry (all of them,
    /// with their secret flag); the first that fails is the step's failure. A step whose
    /// command failed measured nothing.
    fn validate(&mut self, step: &ProgramStep, name: &str, ran: bool) -> Option<RunFailure> {
        let StepAction::Send(send) = &step.action else {
            return None;
        };
        let mut first = None;
        for (var, check) in &send.validate {
            let value = if ran {
                self.vars
                    .get(var)
                    .and_then(VarValue::as_text)
                    .map(str::to_owned)
            } else {
                None
            };
            let secret = self.vars.is_secret(var);
            let verdict = match &value {
                _ if !ran => None,
                None => Some(format!("validate: `{var}` was not captured")),
                Some(v) => check.verdict(var, v),
            };
            self.measurements.push(Measurement {
                name: var.clone(),
                value: value.map(|v| {
                    if secret {
                        REDACTED.to_string()
                    } else {
                        self.shown(&v)
                    }
                }),
                secret,
                passed: ran && verdict.is_none(),
                limits: Limits::from(check),
                step: name.to_string(),
            });
            if first.is_none()
                && let Some(message) = verdict
            {
                first = Some(RunFailure::Validation { message });
            }
        }
        first
    }

    /// The sync ended.
    fn finish_sync(&mut self, active: Active<'a>, outcome: StepOutcome, now: Instant) {
        let mut result = StepResult {
            index: None,
            name: active.name,
            origin: None,
            status: StepStatus::Passed,
            attempts: outcome.attempts,
            seconds: outcome.elapsed.as_secs_f64(),
            reason: None,
            teardown: false,
        };
        let Some(failure) = outcome.failure else {
            self.record(result);
            return;
        };
        let within = self
            .recipe
            .program
            .sync
            .map_or(Duration::ZERO, |s| s.within);
        let cause = RunFailure::Sync {
            failure,
            within,
            replies: outcome.lines,
        };
        result.status = StepStatus::Failed;
        result.reason = Some(self.shown(&cause.to_string()));
        self.record(result);
        self.fail("sync".into(), None, cause, now);
    }

    /// Keep a step's result and report it.
    fn record(&mut self, result: StepResult) {
        self.events
            .push_back(JobEvent::StepFinished(result.clone()));
        self.results.push(result);
    }

    /// A step could not run (a `{{var}}`, a script, a hook): in the main steps this ends
    /// the run; in the teardown it is recorded and the next teardown step goes on.
    fn step_error(
        &mut self,
        step: &ProgramStep,
        name: String,
        cause: RunFailure,
        teardown: bool,
        now: Instant,
    ) {
        self.release_traffic();
        let origin = step.origin.to_string();
        if !teardown {
            return self.fail(name, Some(origin), cause, now);
        }
        let reason = self.shown(&cause.to_string());
        self.note(format!(
            "{} {} `{}` failed: {reason}",
            kind(true),
            step.id + 1,
            name
        ));
        self.record(StepResult {
            index: None,
            name,
            origin: Some(origin),
            status: StepStatus::FailedContinued,
            attempts: 0,
            seconds: 0.0,
            reason: Some(reason),
            teardown: true,
        });
        self.phase = Phase::Next;
    }

    /// The run failed (the first failure is kept): the main steps stop, the teardown runs.
    pub(super) fn fail(
        &mut self,
        step: String,
        origin: Option<String>,
        cause: RunFailure,
        now: Instant,
    ) {
        if self.failure.is_none() {
            let reason = self.shown(&cause.to_string());
            self.failure = Some(FailureInfo {
                step,
                origin,
                reason,
                tail: Vec::new(),
                cause,
            });
        }
        match self.stage {
            Stage::Main => self.begin_teardown(now),
            Stage::Teardown => self.phase = Phase::Next,
            Stage::Over => self.phase = Phase::Done,
        }
    }

    /// The main steps are over: run the teardown (unless the port failed), within its own
    /// deadline from now.
    fn begin_teardown(&mut self, now: Instant) {
        self.hook = None;
        self.print_messages = true;
        let program = &self.recipe.program;
        if program.finally.is_empty() {
            return self.finish(now);
        }
        if self
            .failure
            .as_ref()
            .is_some_and(|f| matches!(f.cause, RunFailure::Port { .. }))
        {
            self.note("teardown skipped: the port failed, nothing can be sent".into());
            return self.finish(now);
        }
        self.note(format!(
            "teardown: {} step(s) within {}",
            program.finally.len(),
            humantime::format_duration(program.finally_deadline)
        ));
        self.deadline = Some(later(now, program.finally_deadline));
        self.stage = Stage::Teardown;
        self.next = 0;
        self.phase = Phase::Next;
    }

    fn end_teardown(&mut self, now: Instant) {
        self.note("teardown done".into());
        self.finish(now);
    }

    /// Nothing more runs.
    fn finish(&mut self, now: Instant) {
        self.stage = Stage::Over;
        self.ended = Some(now);
        let note = match &self.failure {
            Some(f) => format!(
                "run ended: {:?} in `{}`: {}",
                super::Verdict::of(f.cause.kind()),
                f.step,
                f.reason
            ),
            None => "run passed".into(),
        };
        self.note(note);
        self.phase = Phase::Done;
    }

    /// Act on an interrupt or a failed port before anything else.
    pub(super) fn stop_if_asked(&mut self, now: Instant) -> Option<super::JobAction> {
        if let Some(message) = self.port_error.take() {
            self.release_traffic();
            match self.stage {
                Stage::Main => {
                    let (step, origin) = self.current_step().unwrap_or_default();
                    self.fail(step, origin, RunFailure::Port { message }, now);
                }
                Stage::Teardown => {
                    self.note(format!("teardown stopped: the port failed ({message})"));
                    self.end_teardown(now);
                }
                Stage::Over => {}
            }
            return None;
        }
        if self.stage == Stage::Main
            && self.output_error.is_some()
            && let Some((step, origin)) = self.current_step()
            && let Some(message) = self.output_error.take()
        {
            self.release_traffic();
            self.fail(step, origin, RunFailure::Output { message }, now);
        }
        if self.stage == Stage::Main
            && self.interrupt.is_some()
            && let Some((step, origin)) = self.current_step()
            && let Some(cause) = self.interrupt.take()
        {
            self.release_traffic();
            self.fail(step, origin, RunFailure::Interrupted(cause), now);
        }
        None
    }

    /// The step running or about to run in the main stage: its name and origin.
    fn current_step(&self) -> Option<(String, Option<String>)> {
        let origin_of = |a: &Active<'_>| a.step.map(|s| s.origin.to_string());
        match &self.phase {
            Phase::Ready { active, .. } | Phase::Running(active) => {
                Some((active.name.clone(), origin_of(active)))
            }
            Phase::Start if self.recipe.program.sync.is_some() => Some(("sync".into(), None)),
            Phase::Start | Phase::Next => {
                let step = self.recipe.program.steps.get(self.next)?;
                let name = self.shown(&step.display_name(&self.vars));
                Some((name, Some(step.origin.to_string())))
            }
            Phase::Done => None,
        }
    }

    /// Write held traffic (and the held transcript), redacted with the secrets known now.
    fn release_traffic(&mut self) {
        if let Some(held) = self.held_traffic.take() {
            self.events.push_back(JobEvent::ReleaseTranscript);
            for line in held {
                let line = self.traffic_line(&line);
                self.events.push_back(JobEvent::Traffic(line));
            }
        }
    }
}

fn kind(teardown: bool) -> &'static str {
    if teardown { "teardown step" } else { "step" }
}
