//! The step machine: attempts, retries, `until` polls, `recover` commands, data sends and
//! the end of a step, driven by the timer table.
//!
//! Silence is told from disagreement everywhere: an exchange that times out having received
//! no byte at all since it was sent is "no reply" ([`Failure::NoReply`], exit 3); an `until`
//! step ends so after two silent polls in a row, naming the command and when the modem last
//! answered. Replies that do not match keep their own failures (exit 1).
//!
//! A reply still arriving when its timeout comes (a slow UART) is given time to finish: the
//! timeout moves while bytes keep coming ([`QUIET_GAP`] apart), up to one more timeout (at
//! least [`MIN_EXTENSION`]), never past the step's or the recipe's deadline.

use std::time::{Duration, Instant};

use super::data::{DataSend, Next, Typed};
use super::exchange::{Exchange, Purpose, waiting_for};
use super::failure::Failure;
use super::session::Session;
use super::timers::Timer;
use super::{Event, PlanAction, StepOutcome, StepPlan};
use crate::at::command::{Command, Shape};
use crate::at::effects::Effect;
use crate::at::line::ResultCode;
use crate::util::time::{earliest, later};

/// Longest pause between retries, whatever the backoff.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// A reply is still arriving when its last byte came less than this long ago.
pub const QUIET_GAP: Duration = Duration::from_millis(200);
/// A timeout may be moved by at least this much while a reply is arriving.
pub const MIN_EXTENSION: Duration = Duration::from_secs(2);
/// Bound on one exchange the link makes in the background (acks, PINGREQ, reads).
pub(super) const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the `AT` liveness probe at the end of a wait that heard nothing.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the step is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for [`Timer::Pause`]: the first attempt, a retry, the next poll.
    Pause,
    /// Its own exchange is in flight.
    Busy,
    /// A `wait` step, until [`Timer::Wait`].
    Waiting,
    /// An MQTT wait, until [`Timer::MqttWait`].
    MqttWait,
    /// The liveness probe after a wait is in flight.
    Probing,
    /// A `tls:` step waits for the handshake (or `close_notify`) to get through, until
    /// [`Timer::Tls`].
    Tls,
}

/// The step in progress.
#[derive(Debug)]
pub(super) struct StepRun {
    /// What the step does.
    pub plan: StepPlan,
    /// When it started.
    pub started: Instant,
    /// The attempt in progress (1-based).
    pub attempt: u32,
    /// `until` polls sent so far.
    pub polls: u32,
    /// Pause before the next retry (grows with `backoff`).
    pub retry_delay: Duration,
    /// What it is doing.
    pub phase: Phase,
    /// Captures of the attempt in progress.
    pub captures: Vec<(String, String)>,
    /// Response lines of the attempt in progress.
    pub lines: Vec<String>,
    /// A line matched `expect`.
    pub expect_matched: bool,
    /// A line matched `until`.
    pub until_matched: bool,
    /// The data send in progress (`send_data` steps).
    pub data: Option<DataSend>,
    /// Next `recover` command to send before the retry (`None`: none pending).
    pub recover_next: Option<usize>,
    /// Exchanges in a row that got no byte at all.
    pub silent: u32,
    /// Bytes received before the step started.
    pub rx_at_start: u64,
}

impl StepRun {
    /// A response line to the step's own command or data chunk: collect, match, capture.
    /// `Some(failure)` when an abort pattern matched.
    pub(super) fn on_response(
        &mut self,
        line: &str,
        purpose: Purpose,
        code: Option<&ResultCode>,
    ) -> Option<Failure> {
        self.lines.push(line.to_string());
        let expect_hit =
            purpose == Purpose::Step && self.plan.expect.iter().any(|m| m.is_match(line));
        if expect_hit {
            self.expect_matched = true;
        }
        if purpose == Purpose::Step && self.plan.until.iter().any(|m| m.is_match(line)) {
            self.until_matched = true;
        }
        // The step's abort patterns judge the step's own exchanges; the replies to the link's
        // background work (acknowledgements, PINGREQ, `close_notify`, reads) are judged by the
        // link (`background_done`): an `ERROR` for a `close_notify` sent after the peer closed
        // must not stop the teardown's `AT+CIPSHUT` from going out.
        if purpose.is_step()
            && !expect_hit
            && let Some(m) = self.plan.abort.iter().find(|m| m.is_match(line))
        {
            return Some(Failure::Aborted {
                pattern: m.source().to_string(),
                line: line.to_string(),
            });
        }
        if purpose == Purpose::Step && code.is_none() {
            let caps = super::captures(&self.plan.capture, line);
            self.captures.extend(caps);
        }
        None
    }
}

/// `pattern` or `pattern`, as written.
pub(super) fn describe_expect(plan: &StepPlan) -> String {
    if plan.expect.is_empty() {
        "OK".to_string()
    } else {
        sources(&plan.expect)
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// The patterns as written.
pub(super) fn sources(ms: &[super::Matcher]) -> Vec<String> {
    ms.iter().map(|m| m.source().to_string()).collect()
}

impl Session {
    /// Start a step at `now`. `hard_deadline` is the recipe's deadline, if any; the step's
    /// own deadline and every wait inside it end no later than it.
    pub fn start(&mut self, plan: StepPlan, now: Instant, hard_deadline: Option<Instant>) {
        self.done = None;
        self.abandon_step_exchange();
        self.timers.stop_step();
        if let Some(h) = earliest(plan.deadline.map(|d| later(now, d)), hard_deadline) {
            self.timers.set(Timer::Deadline, h);
        }
        let reset = matches!(&plan.action, PlanAction::Command(c)
            if Command::parse(c).effects().contains(&Effect::Reboot));
        self.boot.on_step(now, reset);
        let first = later(now, plan.delay);
        let phase = match &plan.action {
            PlanAction::Wait(d) => {
                self.timers.set(Timer::Wait, later(first, *d));
                Phase::Waiting
            }
            _ => {
                self.timers.set(Timer::Pause, first);
                Phase::Pause
            }
        };
        // The payload goes through the stream's transform when its first chunk is due
        // (`begin_attempt`), not now: bytes a transform produces must go out in the order it
        // produced them, and replies may still go out before this step's first chunk.
        let data = None;
        if let PlanAction::Data(d) = &plan.action
            && let Some(params) = d.session
            && self.link.socket.connected
        {
            // Our CONNECT goes out now: the broker's answer decodes with its version.
            self.link.mqtt.begin(params, now);
        }
        self.run = Some(StepRun {
            retry_delay: plan.retry_delay,
            plan,
            started: now,
            attempt: 1,
            polls: 0,
            phase,
            captures: Vec::new(),
            lines: Vec::new(),
            expect_matched: false,
            until_matched: false,
            data,
            recover_next: None,
            silent: 0,
            rx_at_start: self.rx_total,
        });
        if let Some(failure) = self.pending_fatal.take() {
            self.finish(Some(failure), now);
            return;
        }
        let backlog = std::mem::take(&mut self.backlog);
        if let Some(run) = self.run.as_mut()
            && run.phase == Phase::Waiting
            && let Some(line) = backlog
                .into_iter()
                .find(|l| run.plan.expect.iter().any(|m| m.is_match(l)))
        {
            run.captures
                .extend(super::captures(&run.plan.capture, &line));
            run.lines.push(line);
            self.finish(None, now);
            return;
        }
        self.advance(now);
    }

    /// Time-driven transitions, until nothing more changes at `now`.
    pub(super) fn advance(&mut self, now: Instant) {
        for _ in 0..16 {
            if !self.advance_once(now) {
                break;
            }
        }
    }

    fn advance_once(&mut self, now: Instant) -> bool {
        if self.run.is_some() && self.timers.expired(Timer::Deadline, now) {
            self.deadline_passed(now);
            return true;
        }
        if self.settle_at().is_some_and(|t| now >= t) {
            self.timers.stop(Timer::Settle);
            self.settle_push(now);
            return true;
        }
        if self.echo_quiet_at().is_some_and(|t| now >= t) {
            // The echo of the typed data stopped: what comes now is the modem's.
            self.framer.clear_echo();
            self.timers.stop(Timer::Echo);
            return true;
        }
        if self.exchange.is_some() && self.timers.expired(Timer::Exchange, now) {
            self.exchange_timed_out(now);
            return true;
        }
        if self.run.is_none() || self.exchange.is_some() {
            return false;
        }
        if self.background_work(now) {
            return true;
        }
        let Some(run) = self.run.as_ref() else {
            return false;
        };
        match run.phase {
            Phase::Pause if self.timers.expired(Timer::Pause, now) => {
                self.timers.stop(Timer::Pause);
                if matches!(run.plan.action, PlanAction::Mqtt(_)) {
                    self.enter_mqtt_wait(now);
                } else {
                    self.begin_attempt(now);
                }
                true
            }
            Phase::Waiting if self.timers.expired(Timer::Wait, now) => {
                self.timers.stop(Timer::Wait);
                self.wait_over(now);
                true
            }
            Phase::MqttWait => self.mqtt_check(now),
            Phase::Tls => self.tls_check(now),
            _ => false,
        }
    }

    /// Start (or restart) the exchange of the current attempt or poll.
    fn begin_attempt(&mut self, now: Instant) {
        let dialect = self.link.socket.dialect;
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if let Some(i) = run.recover_next {
            match run.plan.recover.get(i).cloned() {
                Some(line) => {
                    run.recover_next = Some(i + 1);
                    self.issue(line, Purpose::Recover, None, now);
                    return;
                }
                None => run.recover_next = None,
            }
        }
        run.lines.clear();
        run.captures.clear();
        run.expect_matched = false;
        run.until_matched = false;
        if let PlanAction::Command(c) = &run.plan.action {
            let c = c.clone();
            if self.close_notify_first(&c, now) {
                return;
            }
        }
        let Some(run) = self.run.as_mut() else {
            return;
        };
        match &run.plan.action {
            PlanAction::Command(c) => {
                let line = c.clone();
                let payload = run.plan.prompt_data.clone().map(Typed::all);
                if !run.plan.until.is_empty() {
                    run.polls += 1;
                }
                self.issue(line, Purpose::Step, payload, now);
            }
            PlanAction::Data(d) => {
                if run.data.is_none() {
                    let (payload, chunk, hex) = (d.payload.clone(), d.chunk, d.hex);
                    // Each secret in the bytes on the wire goes out in one chunk (never split
                    // where no redaction could recognise its pieces).
                    let secrets = d.secrets.clone();
                    match self.link.seal(payload) {
                        Ok(wire) => {
                            let hex = hex || self.link.socket.hex;
                            let keep = secrets.occurrences(&wire);
                            run.data = Some(DataSend::new(wire, chunk, hex).keeping_whole(keep));
                        }
                        Err(f) => {
                            self.finish(Some(Failure::Mqtt(f)), now);
                            return;
                        }
                    }
                }
                let Some(send) = run.data.as_mut() else {
                    self.finish(None, now);
                    return;
                };
                match send.next(dialect, self.max_send) {
                    Ok(Next::Query(q)) => self.issue(q, Purpose::QueryMax, None, now),
                    Ok(Next::Chunk(cmd, typed)) => {
                        self.issue(cmd, Purpose::Chunk, Some(typed), now)
                    }
                    Ok(Next::Done) => self.finish(None, now),
                    Err(message) => self.finish(Some(Failure::Data { message }), now),
                }
            }
            PlanAction::Tls(_) => self.tls_begin(now),
            PlanAction::Wait(_) | PlanAction::Mqtt(_) => {}
        }
    }

    /// Write a command line and put its exchange in flight.
    pub(super) fn issue(
        &mut self,
        line: String,
        purpose: Purpose,
        payload: Option<Typed>,
        now: Instant,
    ) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let mut cmd = Command::parse(&line);
        if payload.is_some() {
            // Whatever the command, data to type means it prompts.
            cmd.shape = Shape::Prompt;
        }
        if cmd.shape == Shape::Prompt {
            self.framer.expect_prompt(true);
        }
        let timeout = match purpose {
            Purpose::Background | Purpose::Read => run
                .plan
                .timeout
                .clamp(Duration::from_secs(5), BACKGROUND_TIMEOUT),
            Purpose::Probe => run
                .plan
                .timeout
                .clamp(Duration::from_secs(1), PROBE_TIMEOUT),
            _ => run.plan.timeout,
        };
        if purpose.is_step() && purpose != Purpose::Probe {
            run.phase = Phase::Busy;
        }
        let deadline = self.timers.get(Timer::Deadline);
        let until = earliest(Some(later(now, timeout)), deadline).unwrap_or(now);
        let extension = timeout.max(MIN_EXTENSION);
        let limit = earliest(Some(later(later(now, timeout), extension)), deadline).unwrap_or(now);
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\r');
        self.outbox.push_back(bytes);
        self.events.push_back(Event::Sent(line));
        self.timers.set(Timer::Exchange, until);
        self.exchange = Some(Exchange {
            cmd,
            purpose,
            payload,
            payload_sent: false,
            started: now,
            deadline: until,
            limit,
            rx_at_start: self.rx_total,
            replied: false,
            echo_seen: false,
            first_ok: false,
        });
        self.sync_framer();
    }

    /// A step that ended without its command's answer (the run was interrupted while it
    /// waited) leaves its exchange behind: a new step must not wait for that answer. An
    /// open prompt is cancelled with ESC; the framer forgets what it was in the middle of.
    /// Background exchanges (acks, PINGREQ, reads) are the link's and go on.
    fn abandon_step_exchange(&mut self) {
        let Some(ex) = self.exchange.as_ref() else {
            return;
        };
        if !ex.purpose.is_step() {
            return;
        }
        let prompt_open = ex.cmd.shape == Shape::Prompt && ex.payload_sent;
        let text = ex.cmd.text.clone();
        self.end_exchange();
        if prompt_open {
            self.outbox.push_back(vec![0x1B]);
        }
        self.framer.reset();
        self.events.push_back(Event::Note(format!(
            "`{text}` was left without its answer: the next step does not wait for it"
        )));
    }

    /// The exchange in flight got no conclusive answer in time.
    fn exchange_timed_out(&mut self, now: Instant) {
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        let heard = self.rx_total > ex.rx_at_start;
        // Bytes still being framed (a line without its end, a data block) are an answer of
        // sorts too: not silence.
        let replied = ex.replied || self.framer.busy();
        let echo_only = ex.echo_seen && !replied;
        // A reply still arriving (slow UART): give it time to finish.
        let arriving = self.framer.busy()
            || self
                .last_rx
                .is_some_and(|t| now.saturating_duration_since(t) < QUIET_GAP);
        if heard && arriving && now < ex.limit {
            let from = self.last_rx.map_or(now, |t| t.max(now));
            let next = later(from, QUIET_GAP).min(ex.limit);
            if next > now {
                ex.deadline = next;
                self.timers.set(Timer::Exchange, next);
                return;
            }
        }
        let waited = now.saturating_duration_since(ex.started);
        let prompt_open = ex.cmd.shape == Shape::Prompt && ex.payload_sent;
        let Some(ex) = self.end_exchange() else {
            return;
        };
        if prompt_open {
            // The modem may still be in data mode: ESC cancels a send.
            self.outbox.push_back(vec![0x1B]);
        }
        // Whatever the framer was in the middle of (a length-framed block that never
        // completed) must not eat what follows.
        if ex.purpose != Purpose::Recover {
            self.framer.reset();
        }
        let expect = self.run.as_ref().and_then(|r| {
            (ex.purpose == Purpose::Step && !r.plan.expect.is_empty())
                .then(|| describe_expect(&r.plan))
        });
        let timeout = Failure::Timeout {
            waited,
            waiting_for: waiting_for(&ex, expect),
        };
        let silent = if replied {
            if let Some(run) = self.run.as_mut() {
                run.silent = 0;
            }
            0
        } else {
            self.run.as_mut().map_or(1, |r| {
                r.silent += 1;
                r.silent
            })
        };
        let no_reply = |s: &Session, times: u32| Failure::NoReply {
            command: ex.cmd.text.clone(),
            waited,
            times,
            echo_only,
            last_answer: s.last_answer(now),
        };
        match ex.purpose {
            Purpose::Recover => {
                // A recover command that gets no answer is skipped; the retry decides.
                self.pause_until(now);
            }
            Purpose::Probe => {
                if replied {
                    self.wait_alive("the modem is alive: it answered `AT`".into(), now);
                } else {
                    let f = no_reply(self, 1);
                    self.finish(Some(f), now);
                }
            }
            Purpose::Background | Purpose::Read => {
                self.background = None;
                let f = if replied {
                    timeout
                } else {
                    no_reply(self, silent)
                };
                self.finish(Some(f), now);
            }
            Purpose::Step if self.run.as_ref().is_some_and(|r| !r.plan.until.is_empty()) => {
                if silent >= 2 {
                    let f = no_reply(self, silent);
                    self.finish(Some(f), now);
                } else {
                    // A poll that got no answer (or an incomplete one) is polled again.
                    self.next_poll(now);
                }
            }
            Purpose::Step | Purpose::QueryMax | Purpose::Chunk => {
                if let Some(d) = self.run.as_mut().and_then(|r| r.data.as_mut()) {
                    d.chunk_failed();
                }
                let f = if replied {
                    timeout
                } else {
                    no_reply(self, silent)
                };
                self.attempt_failed(f, now);
            }
        }
    }

    fn pause_until(&mut self, at: Instant) {
        if let Some(run) = self.run.as_mut() {
            run.phase = Phase::Pause;
            self.timers.set(Timer::Pause, at);
        }
    }

    /// Schedule the next `until` poll, or end the step when the deadline comes first.
    fn next_poll(&mut self, now: Instant) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        self.events.push_back(Event::Poll { polls: run.polls });
        let next = later(now, run.plan.interval);
        if self.timers.get(Timer::Deadline).is_some_and(|h| next >= h) {
            let failure = Failure::UntilNotMet {
                patterns: sources(&run.plan.until),
                polls: run.polls,
            };
            self.finish(Some(failure), now);
        } else {
            self.pause_until(next);
        }
    }

    /// The step's or the recipe's deadline passed.
    fn deadline_passed(&mut self, now: Instant) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        let in_flight = self.exchange.as_ref().map(|ex| {
            let expect = (ex.purpose == Purpose::Step && !run.plan.expect.is_empty())
                .then(|| describe_expect(&run.plan));
            (
                waiting_for(ex, expect),
                ex.replied,
                ex.cmd.text.clone(),
                now.saturating_duration_since(ex.started),
                ex.cmd.shape == Shape::Prompt && ex.payload_sent,
            )
        });
        let waiting = match (&in_flight, run.phase) {
            (Some((w, ..)), _) => w.clone(),
            (None, Phase::Pause) => "the next attempt".to_string(),
            (None, Phase::MqttWait) => super::wait::describe_mqtt(&run.plan),
            (None, Phase::Tls) => super::tls::describe(&run.plan),
            (None, _) => describe_expect(&run.plan),
        };
        let failure = if !run.plan.until.is_empty() && run.polls > 0 {
            match &in_flight {
                Some((_, false, command, waited, _)) if run.silent >= 1 => Failure::NoReply {
                    command: command.clone(),
                    waited: *waited,
                    times: run.silent + 1,
                    echo_only: false,
                    last_answer: self.last_answer(now),
                },
                _ => Failure::UntilNotMet {
                    patterns: sources(&run.plan.until),
                    polls: run.polls,
                },
            }
        } else {
            Failure::Deadline {
                waiting_for: waiting,
            }
        };
        if in_flight.as_ref().is_some_and(|f| f.4) {
            self.outbox.push_back(vec![0x1B]);
        }
        if self.end_exchange().is_some() {
            self.framer.reset();
        }
        self.background = None;
        self.finish(Some(failure), now);
    }

    /// An exchange ended with its final result (see `Session::exchange_finished`).
    pub(super) fn step_exchange_done(
        &mut self,
        ex: Exchange,
        result: Result<(), Failure>,
        now: Instant,
    ) {
        if let Some(run) = self.run.as_mut() {
            run.silent = 0;
        }
        match ex.purpose {
            Purpose::QueryMax => {
                // Whatever the answer, go on with the chunks (default size on failure).
                if self.max_send.is_none() {
                    self.max_send = Some(self.link.socket.dialect.max_send());
                }
                self.pause_until(now);
            }
            Purpose::Chunk => match result {
                Ok(()) => {
                    self.link.mqtt.on_sent(now);
                    let done = self
                        .run
                        .as_mut()
                        .and_then(|r| r.data.as_mut())
                        .is_none_or(DataSend::chunk_sent);
                    if done {
                        self.finish(None, now);
                    } else {
                        self.pause_until(now);
                    }
                }
                Err(failure) => {
                    if let Some(d) = self.run.as_mut().and_then(|r| r.data.as_mut()) {
                        d.chunk_failed();
                    }
                    self.attempt_failed(failure, now);
                }
            },
            Purpose::Recover => self.pause_until(now),
            Purpose::Probe => self.wait_alive("the modem is alive: it answered `AT`".into(), now),
            Purpose::Background | Purpose::Read => self.background_done(ex.purpose, result, now),
            Purpose::Step => self.step_command_done(result, now),
        }
    }

    fn step_command_done(&mut self, result: Result<(), Failure>, now: Instant) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        let plan = &run.plan;
        if !plan.until.is_empty() {
            if run.until_matched {
                self.finish(None, now);
            } else {
                self.next_poll(now);
            }
            return;
        }
        let outcome = if run.expect_matched {
            Ok(())
        } else {
            match result {
                Err(f) => Err(f),
                Ok(()) if plan.expect.is_empty() => Ok(()),
                Ok(()) => Err(Failure::NotMatched {
                    expected: sources(&plan.expect),
                }),
            }
        };
        match outcome {
            Ok(()) => self.finish(None, now),
            Err(f) => self.attempt_failed(f, now),
        }
    }

    /// An attempt failed: retry (after `recover` and `retry_delay`) or end the step.
    pub(super) fn attempt_failed(&mut self, failure: Failure, now: Instant) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if run.attempt <= run.plan.retries && !failure.is_fatal() {
            let next = later(now, run.retry_delay);
            if self.timers.get(Timer::Deadline).is_none_or(|h| next < h) {
                self.events.push_back(Event::Retry {
                    attempt: run.attempt,
                    failure,
                });
                run.attempt += 1;
                let factor = if run.plan.backoff.is_finite() && run.plan.backoff >= 1.0 {
                    run.plan.backoff
                } else {
                    1.0
                };
                run.retry_delay =
                    Duration::try_from_secs_f64(run.retry_delay.as_secs_f64() * factor)
                        .unwrap_or(MAX_RETRY_DELAY)
                        .min(MAX_RETRY_DELAY);
                if !run.plan.recover.is_empty() {
                    run.recover_next = Some(0);
                }
                self.pause_until(next);
                return;
            }
        }
        self.finish(Some(failure), now);
    }

    /// End the step.
    pub(super) fn finish(&mut self, failure: Option<Failure>, now: Instant) {
        let Some(run) = self.run.take() else {
            return;
        };
        if self
            .exchange
            .as_ref()
            .is_some_and(|ex| ex.purpose.is_step())
        {
            self.end_exchange();
        }
        self.timers.stop_step();
        let failure = failure.map(|f| self.tls_explain(f));
        let passed = failure.is_none();
        self.done = Some(StepOutcome {
            failure,
            attempts: run.attempt,
            polls: run.polls,
            captures: if passed { run.captures } else { Vec::new() },
            lines: run.lines,
            elapsed: now.saturating_duration_since(run.started),
        });
        self.sync_framer();
    }
}
