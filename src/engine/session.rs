//! [`Session`]: the modem conversation across steps (framer, echo state, URC handling) and
//! the state machine of the step in progress.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::mqtt::{MqttLink, RxMode, check_result};
use super::{
    Action, Event, Failure, Matcher, MqttPlan, MqttWant, PlanAction, StepOutcome, StepPlan,
};
use crate::at::command::{Command, Shape, second_phase};
use crate::at::framer::{Frame, Framer};
use crate::at::line::{ResultCode, Urc, known_urc, result_code};
use crate::util::time::later;

/// Default largest chunk for `AT+CIPSEND=<len>` (`AT+CIPSEND?` reports it).
pub const DEFAULT_CHUNK: usize = crate::at::limits::MAX_SEND;
/// Largest chunk in hex mode (bytes before hex encoding).
pub const HEX_CHUNK: usize = crate::at::limits::MAX_HEX_SEND;
/// Longest pause between retries, whatever the backoff.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How long after the first step `RDY`/`SMS Ready` may still be the power-on boot.
pub const BOOT_GRACE: Duration = Duration::from_secs(30);
/// The same after an `AT+CFUN=…,1` reset.
pub const REBOOT_GRACE: Duration = Duration::from_secs(60);

/// Bound on one read or send exchange inside an MQTT wait.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes asked for per `AT+CIPRXGET=2` (the SIM7000's maximum).
pub const MANUAL_READ: usize = crate::at::limits::MAX_READ;

/// What sim7k believes about the modem's command echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Not known yet.
    Unknown,
    /// Echo on (the SIM7000's power-on default).
    On,
    /// Echo off (`ATE0`).
    Off,
}

/// A recipe URC handler, compiled.
#[derive(Debug, Clone)]
pub struct UrcRule {
    /// Pattern tried against unsolicited lines.
    pub matcher: Matcher,
    /// `true`: fail the run; `false`: log only.
    pub fail: bool,
    /// Message for the failure.
    pub message: String,
}

/// The conversation with one modem.
#[derive(Debug)]
pub struct Session {
    framer: Framer,
    echo: Echo,
    rules: Vec<UrcRule>,
    /// Boot URCs are still the power-on sequence (not a reboot).
    /// Until when `RDY`/`SMS Ready` are still the power-on (or `AT+CFUN=…,1`) boot.
    boot_until: Option<Instant>,
    /// The boot finished (`SMS Ready` seen): any later boot URC is a reboot.
    boot_done: bool,
    events: VecDeque<Event>,
    outbox: VecDeque<Vec<u8>>,
    run: Option<StepRun>,
    done: Option<StepOutcome>,
    /// Largest `AT+CIPSEND` chunk reported by the modem.
    max_send: Option<usize>,
    /// A fatal URC that arrived between steps: the next step fails with it.
    pending_fatal: Option<Failure>,
    /// The MQTT session over the modem's TCP connection.
    link: MqttLink,
    /// `AT+CIPSENDHEX=1` is in force.
    hex_mode: bool,
    /// `ATV0`: result codes come as digits (`0` for OK, `4` for ERROR).
    numeric: bool,
    /// Unsolicited lines since the last step ended: a `wait` step that starts next sees
    /// them (a URC such as `+APP PDP: ACTIVE` can follow a command's `OK` at once).
    backlog: Vec<String>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

#[derive(Debug)]
struct StepRun {
    plan: StepPlan,
    started: Instant,
    hard_deadline: Option<Instant>,
    attempt: u32,
    polls: u32,
    retry_delay: Duration,
    phase: Phase,
    captures: Vec<(String, String)>,
    lines: Vec<String>,
    expect_matched: bool,
    until_matched: bool,
    data: Option<DataProgress>,
    /// MQTT waits: when the wait times out, and messages consumed so far.
    mqtt_deadline: Option<Instant>,
    /// Next `recover` command to send before the retry (`None`: none pending).
    recover_next: Option<usize>,
}

#[derive(Debug)]
struct DataProgress {
    payload: Vec<u8>,
    offset: usize,
    chunk: Option<usize>,
    hex: bool,
    /// Size of the chunk in flight.
    in_flight: usize,
}

#[derive(Debug)]
enum Phase {
    /// Pause until the instant, then start an exchange.
    Pause(Instant),
    /// A command is in flight.
    InFlight(Exchange),
    /// A wait step.
    Waiting(Instant),
    /// An MQTT wait with nothing to do until the instant (or until data arrives).
    MqttIdle(Instant),
}

#[derive(Debug)]
struct Exchange {
    cmd: Command,
    purpose: Purpose,
    payload: Option<Vec<u8>>,
    payload_sent: bool,
    deadline: Instant,
    started: Instant,
    echo_seen: bool,
    /// The first phase ended OK (two-phase commands wait for the second).
    first_ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The step's own command.
    Step,
    /// `AT+CIPSEND?` before a data send.
    QueryMax,
    /// One chunk of a data send.
    Chunk,
    /// `AT+CIPRXGET=2,<len>` during an MQTT wait.
    MqttRead,
    /// A `recover` command before a retry.
    Recover,
}

enum Verdict {
    /// Exchange finished: `Ok(())` or the failure.
    Finished(Result<(), Failure>),
    Continue,
}

impl Session {
    /// A session with the recipe's URC handlers.
    pub fn new(rules: Vec<UrcRule>) -> Session {
        Session {
            framer: Framer::new(),
            echo: Echo::Unknown,
            rules,
            boot_until: None,
            boot_done: false,
            events: VecDeque::new(),
            outbox: VecDeque::new(),
            run: None,
            done: None,
            max_send: None,
            pending_fatal: None,
            link: MqttLink::new(),
            hex_mode: false,
            numeric: false,
            backlog: Vec::new(),
        }
    }

    /// The MQTT session state.
    pub fn link(&self) -> &MqttLink {
        &self.link
    }

    /// The current belief about echo.
    pub fn echo(&self) -> Echo {
        self.echo
    }

    /// True while boot URCs are the expected boot, not a reboot.
    fn booting(&self, now: Instant) -> bool {
        !self.boot_done && self.boot_until.is_none_or(|t| now < t)
    }

    /// Take the events recorded so far.
    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }

    /// True while a step is running.
    pub fn busy(&self) -> bool {
        self.run.is_some()
    }

    /// Start a step. `hard_deadline` is the recipe's deadline, if any.
    pub fn start(&mut self, plan: StepPlan, now: Instant, hard_deadline: Option<Instant>) {
        let step_deadline = plan.deadline.map(|d| later(now, d));
        let hard_deadline = match (step_deadline, hard_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let reboot_expected =
            matches!(&plan.action, PlanAction::Command(c) if is_reboot_command(c));
        let phase = match &plan.action {
            PlanAction::Wait(d) => Phase::Waiting(later(later(now, plan.delay), *d)),
            _ => Phase::Pause(later(now, plan.delay)),
        };
        let data = match &plan.action {
            PlanAction::Data(d) => Some(DataProgress {
                payload: d.payload.clone(),
                offset: 0,
                chunk: d.chunk,
                hex: d.hex || self.hex_mode,
                in_flight: 0,
            }),
            _ => None,
        };
        let mqtt_deadline = match &plan.action {
            PlanAction::Mqtt(m) => Some(match (&m.want, m.duration) {
                (MqttWant::Messages { .. }, Some(d)) => later(later(now, plan.delay), d),
                _ => later(later(now, plan.delay), plan.timeout),
            }),
            _ => None,
        };
        self.done = None;
        self.run = Some(StepRun {
            retry_delay: plan.retry_delay,
            plan,
            started: now,
            hard_deadline,
            attempt: 1,
            polls: 0,
            phase,
            captures: Vec::new(),
            lines: Vec::new(),
            expect_matched: false,
            until_matched: false,
            data,
            mqtt_deadline,
            recover_next: None,
        });
        // Boot URCs belong to the power-on boot until its `SMS Ready` (a fixed-baud module
        // prints `RDY` first and `SMS Ready` seconds later; an autobauding one after the
        // first `OK`), within BOOT_GRACE of the first step; likewise after `AT+CFUN=…,1`.
        if reboot_expected {
            self.boot_until = Some(later(now, REBOOT_GRACE));
            self.boot_done = false;
        } else if self.boot_until.is_none() {
            self.boot_until = Some(later(now, BOOT_GRACE));
        }
        if let Some(failure) = self.pending_fatal.take() {
            self.finish(Some(failure), now);
            return;
        }
        let backlog = std::mem::take(&mut self.backlog);
        if let Some(run) = self.run.as_mut()
            && matches!(run.phase, Phase::Waiting(_))
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

    /// Feed bytes received from the modem.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        self.framer.push(bytes);
        while let Some(frame) = self.framer.next_frame() {
            self.on_frame(frame, now);
        }
    }

    /// What to do next.
    pub fn poll(&mut self, now: Instant) -> Action {
        if let Some(bytes) = self.outbox.pop_front() {
            return Action::Write(bytes);
        }
        self.advance(now);
        if let Some(bytes) = self.outbox.pop_front() {
            return Action::Write(bytes);
        }
        if let Some(outcome) = self.done.take() {
            return Action::Done(outcome);
        }
        match &self.run {
            None => Action::Wait(later(now, Duration::from_secs(3600))),
            Some(run) => {
                let mut wake = match &run.phase {
                    Phase::Pause(t) | Phase::Waiting(t) | Phase::MqttIdle(t) => *t,
                    Phase::InFlight(ex) => ex.deadline,
                };
                if let Some(h) = run.hard_deadline {
                    wake = wake.min(h);
                }
                Action::Wait(wake.max(now))
            }
        }
    }

    /// Time-driven transitions.
    fn advance(&mut self, now: Instant) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if let Some(h) = run.hard_deadline
            && now >= h
        {
            let waiting_for = match &run.phase {
                Phase::InFlight(ex) => waiting_for(ex, &run.plan),
                Phase::Pause(_) => "the next attempt".to_string(),
                Phase::Waiting(_) => describe_expect(&run.plan),
                Phase::MqttIdle(_) => describe_mqtt(&run.plan),
            };
            let failure = if !run.plan.until.is_empty() && run.polls > 0 {
                Failure::UntilNotMet {
                    patterns: sources(&run.plan.until),
                    polls: run.polls,
                }
            } else {
                Failure::Deadline { waiting_for }
            };
            self.finish(Some(failure), now);
            return;
        }
        match &run.phase {
            Phase::Pause(t) if now >= *t && matches!(run.plan.action, PlanAction::Mqtt(_)) => {
                self.mqtt_next(now)
            }
            Phase::MqttIdle(_) => self.mqtt_next(now),
            Phase::Pause(t) if now >= *t => self.begin_attempt(now),
            Phase::Waiting(t) if now >= *t => {
                if run.plan.expect.is_empty() {
                    self.finish(None, now);
                } else {
                    let failure = Failure::Timeout {
                        waited: now.saturating_duration_since(run.started),
                        waiting_for: describe_expect(&run.plan),
                    };
                    self.finish(Some(failure), now);
                }
            }
            Phase::InFlight(ex) if now >= ex.deadline && ex.purpose == Purpose::Recover => {
                // A recover command that gets no answer is skipped; the retry decides.
                self.framer.expect_prompt(false);
                run.phase = Phase::Pause(now);
                self.begin_attempt(now);
            }
            Phase::InFlight(ex)
                if now >= ex.deadline
                    && ex.purpose == Purpose::Step
                    && !run.plan.until.is_empty() =>
            {
                // A poll that got no answer is polled again, like one that got ERROR.
                self.framer.reset();
                self.events.push_back(Event::Poll { polls: run.polls });
                let next = later(now, run.plan.interval);
                if run.hard_deadline.is_some_and(|h| next >= h) {
                    let failure = Failure::UntilNotMet {
                        patterns: sources(&run.plan.until),
                        polls: run.polls,
                    };
                    self.finish(Some(failure), now);
                } else {
                    run.phase = Phase::Pause(next);
                }
            }
            Phase::InFlight(ex) if now >= ex.deadline => {
                let failure = Failure::Timeout {
                    waited: now.saturating_duration_since(ex.started),
                    waiting_for: waiting_for(ex, &run.plan),
                };
                if ex.cmd.shape == Shape::Prompt && ex.payload_sent {
                    // The modem may still be in data mode: ESC cancels a send.
                    self.outbox.push_back(vec![0x1B]);
                }
                // Nothing conclusive came: whatever the framer was in the middle of (a
                // length-framed block that never completed) must not eat what follows.
                self.framer.reset();
                self.attempt_failed(failure, now);
            }
            _ => {}
        }
    }

    /// Start (or restart) the exchange of the current attempt or poll.
    fn begin_attempt(&mut self, now: Instant) {
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
        let (line, purpose, payload) = match &run.plan.action {
            PlanAction::Command(c) => (c.clone(), Purpose::Step, run.plan.prompt_data.clone()),
            PlanAction::Wait(_) => return,
            PlanAction::Data(_) | PlanAction::Mqtt(_) => {
                let Some(progress) = run.data.as_mut() else {
                    return;
                };
                match next_data_exchange(progress, self.max_send) {
                    Ok(x) => x,
                    Err(message) => {
                        self.finish(Some(Failure::Data { message }), now);
                        return;
                    }
                }
            }
        };
        if purpose == Purpose::Step && !run.plan.until.is_empty() {
            run.polls += 1;
        }
        self.issue(line, purpose, payload, now);
    }

    /// Write a command line and put its exchange in flight.
    fn issue(&mut self, line: String, purpose: Purpose, payload: Option<Vec<u8>>, now: Instant) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let mut cmd = Command::parse(&line);
        if payload.is_some() {
            // Whatever the command, data to type means it prompts (`AT+CMGS`, `AT+CASEND`…).
            cmd.shape = Shape::Prompt;
        }
        if cmd.shape == Shape::Prompt {
            self.framer.expect_prompt(true);
        }
        // An ordinary reply may start with a digit (an IP, an IMEI): no MQTT framing now.
        self.framer
            .suspend_mqtt(purpose == Purpose::Step && cmd.shape != Shape::Prompt);
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\r');
        self.outbox.push_back(bytes);
        self.events.push_back(Event::Sent(line));
        let deadline = match run.mqtt_deadline {
            // Reads and sends inside an MQTT wait get their own short bound.
            Some(_) => {
                now + run
                    .plan
                    .timeout
                    .min(EXCHANGE_TIMEOUT)
                    .max(Duration::from_secs(1))
            }
            None => later(now, run.plan.timeout),
        };
        run.phase = Phase::InFlight(Exchange {
            cmd,
            purpose,
            payload,
            payload_sent: false,
            deadline,
            started: now,
            echo_seen: false,
            first_ok: false,
        });
    }

    /// Start sending the link's pending replies (acks, PINGREQ); false when none or when
    /// the connection is gone.
    fn send_replies(&mut self, now: Instant) -> bool {
        if !self.link.connected || !self.link.has_replies() {
            return false;
        }
        let Some(bytes) = self.link.take_replies() else {
            return false;
        };
        if self.hex_mode && bytes.contains(&0x1A) {
            let failure = Failure::Mqtt {
                message: "an MQTT reply the protocol requires (an acknowledgement whose packet id \
                          contains the byte 0x1A) cannot be sent in the SIM7000's hex mode; use \
                          binary sends (AT+CIPSENDHEX=0) for MQTT sessions"
                    .into(),
            };
            self.finish(Some(failure), now);
            return true;
        }
        let Some(run) = self.run.as_mut() else {
            return false;
        };
        run.data = Some(DataProgress {
            payload: bytes,
            offset: 0,
            chunk: None,
            hex: self.hex_mode,
            in_flight: 0,
        });
        run.phase = Phase::Pause(now);
        self.begin_attempt(now);
        true
    }

    /// Decide the next move of an MQTT wait.
    fn mqtt_next(&mut self, now: Instant) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        let PlanAction::Mqtt(plan) = &run.plan.action else {
            return;
        };
        let plan: MqttPlan = plan.clone();
        let started = run.started;
        let deadline = run.mqtt_deadline.unwrap_or(now);
        let waiting_for = describe_mqtt(&run.plan);
        if let Some(e) = self.link.error() {
            let failure = Failure::Mqtt {
                message: e.to_string(),
            };
            self.finish(Some(failure), now);
            return;
        }
        // Acknowledgements the protocol requires go out before anything else.
        if self.send_replies(now) {
            return;
        }
        // Is what we wait for here?
        match &plan.want {
            MqttWant::Packet(t) => {
                if let Some(p) = self.link.take(*t, plan.packet_id) {
                    if let Some(run) = self.run.as_mut() {
                        run.lines.push(p.packet_type().name().to_string());
                    }
                    let result = check_result(&p, self.link.protocol());
                    self.finish(result.err().map(|message| Failure::Mqtt { message }), now);
                    return;
                }
            }
            MqttWant::Messages { count } => {
                let available = self.link.messages.saturating_sub(self.link.consumed);
                // Done when enough arrived and no QoS 2 exchange is left half-way.
                if let Some(c) = count
                    && available >= *c
                    && !self.link.qos2_in_flight()
                {
                    self.link.consumed += *c;
                    self.finish(None, now);
                    return;
                }
            }
        }
        if let Some(p) = self.link.take(crate::mqtt::PacketType::Disconnect, None) {
            let message = check_result(&p, self.link.protocol())
                .err()
                .unwrap_or_else(|| "the broker sent DISCONNECT".into());
            self.finish(Some(Failure::Mqtt { message }), now);
            return;
        }
        if now >= deadline {
            let failure = match plan.want {
                MqttWant::Messages { count } if plan.duration.is_some() => {
                    // The listening time is over: that is success.
                    let available = self.link.messages.saturating_sub(self.link.consumed);
                    self.link.consumed += available.min(count.unwrap_or(available));
                    None
                }
                _ => Some(Failure::Timeout {
                    waited: now.saturating_duration_since(started),
                    waiting_for,
                }),
            };
            self.finish(failure, now);
            return;
        }
        // Keep-alive: a due PINGREQ is queued as a reply.
        let next_ping = match self.link.keep_alive_due(now, plan.keep_alive) {
            Ok(t) => t,
            Err(message) => {
                self.finish(Some(Failure::Mqtt { message }), now);
                return;
            }
        };
        if self.send_replies(now) {
            return;
        }
        if self.link.rx_mode == RxMode::Manual && self.link.rx_waiting {
            self.issue(
                format!("AT+CIPRXGET=2,{MANUAL_READ}"),
                Purpose::MqttRead,
                None,
                now,
            );
            return;
        }
        if !self.link.connected {
            let failure = Failure::Mqtt {
                message: format!("the TCP connection is closed while waiting for {waiting_for}"),
            };
            self.finish(Some(failure), now);
            return;
        }
        let wake = next_ping.map_or(deadline, |t| t.min(deadline));
        if let Some(run) = self.run.as_mut() {
            run.phase = Phase::MqttIdle(wake);
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        match frame {
            Frame::Line(bytes) => {
                let line = String::from_utf8_lossy(&bytes).trim().to_string();
                if !line.is_empty() {
                    self.on_line(line, now);
                }
            }
            Frame::Prompt => {
                self.events.push_back(Event::Prompt);
                self.on_prompt();
            }
            Frame::Data(data) => {
                for m in self.link.on_data(&data) {
                    self.events.push_back(Event::Message(m));
                }
                self.events.push_back(Event::Data(data));
            }
            Frame::Echo(bytes) => {
                self.echo = Echo::On;
                self.events
                    .push_back(Event::Echo(String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }

    fn on_prompt(&mut self) {
        let echo = self.echo;
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let Phase::InFlight(ex) = &mut run.phase else {
            return;
        };
        if ex.payload_sent {
            return;
        }
        if let Some(payload) = ex.payload.take() {
            ex.payload_sent = true;
            if echo != Echo::Off {
                self.framer.expect_echo(&payload);
            }
            self.events.push_back(Event::SentData(payload.len()));
            self.outbox.push_back(payload);
        }
    }

    fn on_line(&mut self, line: String, now: Instant) {
        // Is there a command in flight that this line may belong to?
        let in_flight = match self.run.as_ref().map(|r| &r.phase) {
            Some(Phase::InFlight(ex)) => Some((ex.cmd.clone(), ex.echo_seen)),
            _ => None,
        };
        // With ATV0 (and for ATV0's own reply) result codes are digits.
        let numeric = self.numeric
            || in_flight
                .as_ref()
                .is_some_and(|(c, _)| verbose_change(&c.text) == Some(false));
        let line = match numeric_result(&line) {
            Some(text) if numeric => text.to_string(),
            _ => line,
        };
        let Some((cmd, echo_seen)) = in_flight else {
            self.on_unsolicited(line, now);
            return;
        };
        if cmd.is_echo(&line) {
            self.echo = Echo::On;
            if let Some(Phase::InFlight(ex)) = self.run.as_mut().map(|r| &mut r.phase) {
                ex.echo_seen = true;
            }
            self.events.push_back(Event::Echo(line));
            return;
        }
        let urc = known_urc(&line);
        // `+CIPRXGET: 1` is a URC even during `AT+CIPRXGET=2,…` (only `AT+CIPRXGET?` owns it).
        let owned = cmd.owns(&line) && (urc != Some(Urc::RxData) || cmd.text.contains('?'));
        if !owned {
            if urc.is_some() {
                self.on_unsolicited(line, now);
                return;
            }
            // With echo on, anything before our echo predates the command.
            if self.echo == Echo::On && !echo_seen {
                self.on_unsolicited(line, now);
                return;
            }
        }
        self.events.push_back(Event::Response(line.clone()));
        self.on_response(line, now);
    }

    fn on_unsolicited(&mut self, line: String, now: Instant) {
        let urc = known_urc(&line);
        if self.run.is_none() && self.backlog.len() < 64 {
            self.backlog.push(line.clone());
        }
        match urc {
            Some(Urc::RxData) => self.link.rx_waiting = true,
            Some(Urc::Closed | Urc::PdpDeact) => {
                self.link.connected = false;
                self.framer.set_mqtt_push(false);
                // A send still waiting for its prompt will only get ERROR now.
                if let Some(Phase::InFlight(ex)) = self.run.as_ref().map(|r| &r.phase)
                    && ex.purpose == Purpose::Chunk
                    && !ex.payload_sent
                {
                    self.framer.expect_prompt(false);
                    let failure = Failure::ErrorResult { line: line.clone() };
                    self.finish(Some(failure), now);
                }
            }
            _ => {}
        }
        self.events.push_back(Event::Unsolicited {
            line: line.clone(),
            urc,
        });
        // A wait step matches any line, URCs included.
        if let Some(run) = self.run.as_mut()
            && matches!(run.phase, Phase::Waiting(_))
        {
            if run.plan.expect.iter().any(|m| m.is_match(&line)) {
                run.lines.push(line.clone());
                run.captures
                    .extend(super::captures(&run.plan.capture, &line));
                self.finish(None, now);
                return;
            }
            if let Some(m) = run.plan.abort.iter().find(|m| m.is_match(&line)) {
                let failure = Failure::Aborted {
                    pattern: m.source().to_string(),
                    line,
                };
                self.finish(Some(failure), now);
                return;
            }
        }
        // Recipe handlers first: they may turn a reboot into a logged event.
        if let Some(rule) = self.rules.iter().find(|r| r.matcher.is_match(&line)) {
            let booting = self.booting(now);
            if urc == Some(Urc::SmsReady) && booting {
                self.boot_done = true;
            }
            if rule.fail && !(urc.is_some_and(Urc::is_reboot) && booting) {
                let failure = Failure::Urc {
                    line,
                    message: rule.message.clone(),
                };
                self.fail_run(failure, now);
            }
            return;
        }
        if urc.is_some_and(Urc::is_reboot) {
            if self.booting(now) {
                if urc == Some(Urc::SmsReady) {
                    self.boot_done = true;
                }
                self.events.push_back(Event::Boot(line));
            } else {
                self.fail_run(Failure::Rebooted { line }, now);
            }
        }
    }

    fn on_response(&mut self, line: String, now: Instant) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let Phase::InFlight(ex) = &mut run.phase else {
            return;
        };
        let purpose = ex.purpose;
        let code = result_code(&line);
        if purpose == Purpose::Step {
            run.lines.push(line.clone());
            let expect_hit = run.plan.expect.iter().any(|m| m.is_match(&line));
            if expect_hit {
                run.expect_matched = true;
            }
            if run.plan.until.iter().any(|m| m.is_match(&line)) {
                run.until_matched = true;
            }
            if !expect_hit && let Some(m) = run.plan.abort.iter().find(|m| m.is_match(&line)) {
                let failure = Failure::Aborted {
                    pattern: m.source().to_string(),
                    line,
                };
                self.framer.expect_prompt(false);
                self.attempt_failed(failure, now);
                return;
            }
            if code.is_none() {
                let caps = super::captures(&run.plan.capture, &line);
                run.captures.extend(caps);
            }
        } else if purpose == Purpose::MqttRead {
            if let Some(r) = crate::at::framer::parse_rxget(&line) {
                self.link.rx_waiting = r.remaining > 0;
            }
        } else if purpose == Purpose::QueryMax {
            if let Some(size) = parse_cipsend_size(&line) {
                self.max_send = Some(size);
            }
        } else if purpose == Purpose::Chunk {
            run.lines.push(line.clone());
            if let Some(m) = run.plan.abort.iter().find(|m| m.is_match(&line)) {
                let failure = Failure::Aborted {
                    pattern: m.source().to_string(),
                    line,
                };
                self.framer.expect_prompt(false);
                self.attempt_failed(failure, now);
                return;
            }
        }
        match exchange_verdict(ex, &line, code.as_ref()) {
            Verdict::Continue => {}
            Verdict::Finished(result) => {
                self.framer.expect_prompt(false);
                self.exchange_finished(result, now);
            }
        }
    }

    fn exchange_finished(&mut self, result: Result<(), Failure>, now: Instant) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let Phase::InFlight(ex) = &run.phase else {
            return;
        };
        match ex.purpose {
            Purpose::QueryMax => {
                // Whatever the answer, go on with the chunks (default size on failure).
                if self.max_send.is_none() {
                    self.max_send = Some(DEFAULT_CHUNK);
                }
                run.phase = Phase::Pause(now);
                self.begin_attempt(now);
            }
            Purpose::Chunk => match result {
                Ok(()) => {
                    let done = match run.data.as_mut() {
                        Some(p) => {
                            let end = (p.offset + p.in_flight).min(p.payload.len());
                            if let Some(sent) = p.payload.get(p.offset..end) {
                                self.link.on_sent(sent, now);
                            }
                            p.offset = end;
                            p.in_flight = 0;
                            p.offset >= p.payload.len()
                        }
                        None => true,
                    };
                    let mqtt = matches!(run.plan.action, PlanAction::Mqtt(_));
                    if done && mqtt {
                        run.data = None;
                        run.phase = Phase::Pause(now);
                        self.mqtt_next(now);
                    } else if done {
                        self.finish(None, now);
                    } else {
                        run.phase = Phase::Pause(now);
                        self.begin_attempt(now);
                    }
                }
                Err(failure) => self.attempt_failed(failure, now),
            },
            Purpose::Recover => {
                // Results are ignored: go on with the next recover command or the retry.
                if result.is_ok() {
                    let text = ex.cmd.text.clone();
                    self.track_modes(&text);
                }
                let Some(run) = self.run.as_mut() else {
                    return;
                };
                run.phase = Phase::Pause(now);
                self.begin_attempt(now);
            }
            Purpose::MqttRead => {
                if result.is_err() {
                    // The modem has nothing to give (or no connection any more).
                    self.link.rx_waiting = false;
                }
                run.phase = Phase::Pause(now);
                self.mqtt_next(now);
            }
            Purpose::Step => {
                let plan = &run.plan;
                if !plan.until.is_empty() {
                    if run.until_matched {
                        self.finish(None, now);
                    } else {
                        self.events.push_back(Event::Poll { polls: run.polls });
                        let next = later(now, plan.interval);
                        if run.hard_deadline.is_some_and(|h| next >= h) {
                            let failure = Failure::UntilNotMet {
                                patterns: sources(&plan.until),
                                polls: run.polls,
                            };
                            self.finish(Some(failure), now);
                        } else {
                            run.phase = Phase::Pause(next);
                        }
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
        }
    }

    fn attempt_failed(&mut self, failure: Failure, now: Instant) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if run.attempt <= run.plan.retries && !failure.is_fatal() {
            let next = later(now, run.retry_delay);
            if run.hard_deadline.is_none_or(|h| next < h) {
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
                run.phase = Phase::Pause(next);
                if !run.plan.recover.is_empty() {
                    run.recover_next = Some(0);
                }
                if let Some(p) = run.data.as_mut() {
                    p.in_flight = 0;
                }
                return;
            }
        }
        self.finish(Some(failure), now);
    }

    /// A URC handler or a reboot ends the step at once, whatever it was doing.
    fn fail_run(&mut self, failure: Failure, now: Instant) {
        if self.run.is_some() {
            self.framer.expect_prompt(false);
            self.finish(Some(failure), now);
        } else {
            // Between steps: report it with the next step.
            self.pending_fatal = Some(failure);
        }
    }

    fn finish(&mut self, failure: Option<Failure>, now: Instant) {
        let Some(run) = self.run.take() else {
            return;
        };
        self.framer.suspend_mqtt(false);
        let passed = failure.is_none();
        if passed && let PlanAction::Command(c) = &run.plan.action {
            if let Some(e) = echo_change(c) {
                self.echo = e;
            }
            if let Some(v) = verbose_change(c) {
                self.numeric = !v;
            }
            self.track_modes(c);
        }
        self.done = Some(StepOutcome {
            failure,
            attempts: run.attempt,
            polls: run.polls,
            captures: if passed { run.captures } else { Vec::new() },
            lines: run.lines,
            elapsed: now.saturating_duration_since(run.started),
        });
    }
}

impl Session {
    /// Follow the TCP/IP settings and connection state a successful command changed.
    fn track_modes(&mut self, line: &str) {
        let up = line.trim().to_ascii_uppercase().replace(' ', "");
        let Some(body) = up.strip_prefix("AT") else {
            return;
        };
        for part in body.split(';') {
            let part = part.trim_start_matches("AT");
            match part {
                "+CIPRXGET=1" => self.link.rx_mode = RxMode::Manual,
                "+CIPRXGET=0" => self.link.rx_mode = RxMode::Push,
                "+CIPHEAD=1" => self.link.header = true,
                "+CIPHEAD=0" => self.link.header = false,
                "+CIPSENDHEX=1" => self.hex_mode = true,
                "+CIPSENDHEX=0" => self.hex_mode = false,
                "+CIPSHUT" | "+CIPCLOSE" | "+CIPCLOSE=0" | "+CIPCLOSE=1" => {
                    self.link.connected = false;
                    self.framer.set_mqtt_push(false);
                }
                _ if part.starts_with("+CIPSTART=") => {
                    self.link.reset_connection(true);
                    let push = self.link.rx_mode == RxMode::Push && !self.link.header;
                    self.framer.set_mqtt_push(push);
                }
                _ => {}
            }
        }
    }
}

/// The next command of a data send: the size query, or the next chunk.
fn next_data_exchange(
    d: &mut DataProgress,
    max_send: Option<usize>,
) -> Result<(String, Purpose, Option<Vec<u8>>), String> {
    if d.hex
        && let Some(pos) = d.payload.iter().position(|b| *b == 0x1A)
    {
        return Err(format!(
            "hex mode cannot send this payload: byte {pos} is 0x1A, which ends a hex-mode \
             send early on the SIM7000; use binary mode (`AT+CIPSENDHEX=0`, no `hex: true`)"
        ));
    }
    let chunk = match (d.chunk, max_send) {
        (Some(c), _) => c,
        (None, Some(m)) => m,
        (None, None) if !d.hex => {
            return Ok(("AT+CIPSEND?".to_string(), Purpose::QueryMax, None));
        }
        (None, None) => DEFAULT_CHUNK,
    };
    let chunk = if d.hex { chunk.min(HEX_CHUNK) } else { chunk }.max(1);
    let start = d.offset.min(d.payload.len());
    let end = (start + chunk).min(d.payload.len());
    let piece = d.payload.get(start..end).unwrap_or_default().to_vec();
    d.in_flight = piece.len();
    if d.hex {
        let text = format!("{} 1A", crate::util::hex::hex(&piece, " "));
        Ok((
            "AT+CIPSEND".to_string(),
            Purpose::Chunk,
            Some(text.into_bytes()),
        ))
    } else {
        Ok((
            format!("AT+CIPSEND={}", piece.len()),
            Purpose::Chunk,
            Some(piece),
        ))
    }
}

/// Did this response line end the exchange?
fn exchange_verdict(ex: &mut Exchange, line: &str, code: Option<&ResultCode>) -> Verdict {
    let fail = |line: &str| Verdict::Finished(Err(Failure::ErrorResult { line: line.into() }));
    match ex.cmd.shape {
        Shape::Standard | Shape::Own(_) => match code {
            Some(c) if ex.cmd.ends_with(c) => {
                if c.is_failure() {
                    fail(line)
                } else {
                    Verdict::Finished(Ok(()))
                }
            }
            _ => Verdict::Continue,
        },
        Shape::BareLine => match code {
            Some(c) if c.is_failure() => fail(line),
            _ => Verdict::Finished(Ok(())),
        },
        Shape::TwoPhase(phase) => {
            if !ex.first_ok {
                match code {
                    Some(c) if c.is_generic_final() => {
                        if c.is_failure() {
                            return fail(line);
                        }
                        ex.first_ok = true;
                        return Verdict::Continue;
                    }
                    _ => {}
                }
            }
            match second_phase(phase, line) {
                Some(true) => Verdict::Finished(Ok(())),
                Some(false) => fail(line),
                None => Verdict::Continue,
            }
        }
        Shape::Prompt => match code {
            Some(c) if c.is_failure() => fail(line),
            Some(ResultCode::SendOk | ResultCode::DataAccept(_) | ResultCode::Ok)
                if ex.payload_sent =>
            {
                Verdict::Finished(Ok(()))
            }
            // Prompt suppressed (`AT+CIPSPRT=2`) or a command without payload.
            Some(ResultCode::Ok) if ex.payload.is_none() && !ex.payload_sent => {
                Verdict::Finished(Ok(()))
            }
            _ => Verdict::Continue,
        },
    }
}

fn waiting_for(ex: &Exchange, plan: &StepPlan) -> String {
    match ex.cmd.shape {
        Shape::Prompt if !ex.payload_sent => format!("the `> ` prompt after `{}`", ex.cmd.text),
        Shape::Prompt => "SEND OK".to_string(),
        _ if ex.purpose == Purpose::Step && !plan.expect.is_empty() => describe_expect(plan),
        Shape::BareLine => format!("the reply to `{}`", ex.cmd.text),
        Shape::TwoPhase(_) if ex.first_ok => format!("the result of `{}`", ex.cmd.text),
        _ => format!("the final result of `{}`", ex.cmd.text),
    }
}

fn describe_mqtt(plan: &StepPlan) -> String {
    match &plan.action {
        PlanAction::Mqtt(m) => match &m.want {
            MqttWant::Packet(t) => match m.packet_id {
                Some(id) => format!("MQTT {} for packet {id}", t.name()),
                None => format!("MQTT {}", t.name()),
            },
            MqttWant::Messages { count: Some(c) } => format!("{c} MQTT message(s)"),
            MqttWant::Messages { count: None } => "MQTT messages".to_string(),
        },
        _ => describe_expect(plan),
    }
}

fn describe_expect(plan: &StepPlan) -> String {
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

fn sources(ms: &[Matcher]) -> Vec<String> {
    ms.iter().map(|m| m.source().to_string()).collect()
}

/// `+CIPSEND: 1460` (single) or `+CIPSEND: 0,1460` (multi).
fn parse_cipsend_size(line: &str) -> Option<usize> {
    let rest = line.trim().strip_prefix("+CIPSEND:")?;
    let last = rest.rsplit(',').next()?.trim();
    let n: usize = last.parse().ok()?;
    (n > 0).then_some(n)
}

/// The basic commands of a command line (`ATE0V1&W` → `E0`, `V1`, `&W`), with their
/// numeric argument (none: 0, as in V.25ter). Extended commands (`+X`, `*X`) are skipped.
fn basic_commands(line: &str) -> Vec<(String, u32)> {
    let up = line.trim().to_ascii_uppercase();
    let Some(body) = up.strip_prefix("AT") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in body.split(';') {
        let part = part.trim();
        if part.starts_with('+') || part.starts_with('*') {
            continue;
        }
        let mut chars = part.chars().peekable();
        while let Some(c) = chars.next() {
            let mut name = String::new();
            if c == '&' {
                name.push('&');
                match chars.next() {
                    Some(l) => name.push(l),
                    None => break,
                }
            } else if c.is_ascii_alphabetic() {
                name.push(c);
            } else {
                continue;
            }
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            out.push((name, digits.parse().unwrap_or(0)));
        }
    }
    out
}

/// `ATV0`/`ATV1` (alone, concatenated or chained): `Some(false)` for numeric result codes.
fn verbose_change(line: &str) -> Option<bool> {
    basic_commands(line)
        .into_iter()
        .rev()
        .find(|(n, _)| n == "V")
        .map(|(_, v)| v != 0)
}

/// The verbose text of a numeric result code (`ATV0`).
fn numeric_result(line: &str) -> Option<&'static str> {
    Some(match line.trim() {
        "0" => "OK",
        "1" => "CONNECT",
        "2" => "RING",
        "3" => "NO CARRIER",
        "4" => "ERROR",
        "6" => "NO DIALTONE",
        "7" => "BUSY",
        "8" => "NO ANSWER",
        _ => return None,
    })
}

/// `ATE0`/`ATE1` (alone, concatenated as `ATE0V1`, or chained as `AT+CIFSR;E0`; a bare
/// `ATE` is `ATE0`) switch echo.
fn echo_change(line: &str) -> Option<Echo> {
    basic_commands(line)
        .into_iter()
        .rev()
        .find(|(n, _)| n == "E")
        .map(|(_, v)| if v == 0 { Echo::Off } else { Echo::On })
}

/// `AT+CFUN=<fun>,1` resets the module.
fn is_reboot_command(line: &str) -> bool {
    let up = line.trim().to_ascii_uppercase().replace(' ', "");
    up.starts_with("AT+CFUN=") && up.ends_with(",1")
}
