//! [`Session`]: the conversation with one modem across steps. It owns the framer and the
//! modem's modes (changed only by [`Effect`]s of successful commands), routes every line
//! (echo, response, URC), and hands the step machine ([`super::step`]) what it needs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::boot::{Boot, BootVerdict};
use super::data::DataSend;
use super::exchange::{Exchange, Purpose, Verdict, verdict};
use super::failure::{Failure, LastAnswer, MqttFailure};
use super::link::Link;
use super::modes::{Echo, Modes};
use super::step::{Phase, StepRun};
use super::timers::{Timer, TimerTable};
use super::{Action, Event, Matcher, StepOutcome};
use crate::at::command::{Command, Shape};
use crate::at::dialect::SocketState;
use crate::at::effects::{Effect, numeric_result};
use crate::at::framer::{Frame, Framer};
use crate::at::line::{Urc, known_urc, result_code};
use crate::util::time::{earliest, later};

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

/// Most unsolicited lines kept between steps for a `wait` step that starts next.
const BACKLOG: usize = 64;
pub(super) use crate::at::push::PUSH_SETTLE;
/// A pause this long in the echo of typed data means the echo stopped: the window closes
/// and what comes next is read as modem lines.
pub const ECHO_QUIET: Duration = Duration::from_secs(1);

/// The conversation with one modem. See the [module documentation](super) for the call
/// contract.
#[derive(Debug)]
pub struct Session {
    pub(super) framer: Framer,
    pub(super) modes: Modes,
    pub(super) rules: Vec<UrcRule>,
    pub(super) boot: Boot,
    pub(super) timers: TimerTable,
    pub(super) events: VecDeque<Event>,
    pub(super) outbox: VecDeque<Vec<u8>>,
    /// The one command in flight (the step's, or the link's in the background).
    pub(super) exchange: Option<Exchange>,
    pub(super) run: Option<StepRun>,
    pub(super) done: Option<StepOutcome>,
    /// Largest send block reported by the modem.
    pub(super) max_send: Option<usize>,
    /// A fatal URC that arrived between steps: the next step fails with it.
    pub(super) pending_fatal: Option<Failure>,
    /// Socket, stream and MQTT session.
    pub(super) link: Link,
    /// Replies the MQTT protocol requires, being sent between commands.
    pub(super) background: Option<DataSend>,
    /// Unsolicited lines since the last step ended: a `wait` step that starts next sees
    /// them (a URC such as `+APP PDP: ACTIVE` can follow a command's `OK` at once).
    pub(super) backlog: Vec<String>,
    /// Bytes received so far (did the modem send anything since…?).
    pub(super) rx_total: u64,
    /// When the last byte arrived.
    pub(super) last_rx: Option<Instant>,
    /// The last complete line received.
    pub(super) last_line: Option<String>,
    /// When the modem last finished answering a command, and which.
    pub(super) last_answer: Option<(Instant, String)>,
    /// When data was last typed after a prompt.
    pub(super) typed_at: Option<Instant>,
    /// `rx_total` when a pushed packet was last settled (no new bytes: nothing to settle).
    pub(super) settled_rx: Option<u64>,
    /// The host the open connection was opened to (for TLS's server name).
    pub(super) opened_host: Option<String>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Session {
    /// A session with the recipe's URC handlers.
    pub fn new(rules: Vec<UrcRule>) -> Session {
        Session {
            framer: Framer::new(),
            modes: Modes::default(),
            rules,
            boot: Boot::default(),
            timers: TimerTable::default(),
            events: VecDeque::new(),
            outbox: VecDeque::new(),
            exchange: None,
            run: None,
            done: None,
            max_send: None,
            pending_fatal: None,
            link: Link::default(),
            background: None,
            backlog: Vec::new(),
            rx_total: 0,
            last_rx: None,
            last_line: None,
            last_answer: None,
            typed_at: None,
            settled_rx: None,
            opened_host: None,
        }
    }

    /// The connection (socket, stream, MQTT session) as the engine follows it.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The current belief about the command echo.
    pub fn echo(&self) -> Echo {
        self.modes.echo
    }

    /// Take the events recorded so far.
    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }

    /// True while a step is running.
    pub fn busy(&self) -> bool {
        self.run.is_some()
    }

    /// Feed bytes received from the modem at `now`.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        if bytes.is_empty() {
            return;
        }
        self.rx_total = self
            .rx_total
            .saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        self.last_rx = Some(now);
        // Line by line, so that a mode a line changes (a connection opened or closed)
        // applies to the bytes after it.
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            self.framer.push(piece);
            while let Some(frame) = self.framer.next_frame() {
                self.on_frame(frame, now);
            }
            self.sync_framer();
        }
        self.collect_tls();
    }

    /// What to do next at `now`: bytes to write, a time to wake up at, or the step's end.
    pub fn poll(&mut self, now: Instant) -> Action {
        if let Some(bytes) = self.outbox.pop_front() {
            return Action::Write(bytes);
        }
        self.advance(now);
        self.tls_settle_closed();
        self.sync_framer();
        self.collect_tls();
        if let Some(bytes) = self.outbox.pop_front() {
            return Action::Write(bytes);
        }
        if let Some(outcome) = self.done.take() {
            return Action::Done(outcome);
        }
        self.arm_link_timers(now);
        // With a command in flight only its timeout, the end of an echo and the deadline
        // can change anything.
        let next = if self.exchange.is_some() {
            earliest(
                earliest(
                    self.timers.get(Timer::Exchange),
                    self.timers.get(Timer::Deadline),
                ),
                earliest(self.timers.get(Timer::Echo), self.timers.get(Timer::Settle)),
            )
        } else {
            self.timers.next()
        };
        let wake = next.unwrap_or_else(|| later(now, Duration::from_secs(3600)));
        Action::Wait(wake.max(now))
    }

    /// The framer's flags follow the modes, in this one place.
    pub(super) fn sync_framer(&mut self) {
        self.framer.set_mqtt_push(self.link.socket.raw_push());
        // While sim7k runs TLS, pushed data is TLS records.
        self.framer.set_push_grammar(if self.link.stream.is_tls() {
            crate::at::push::PushGrammar::Tls
        } else {
            crate::at::push::PushGrammar::Mqtt
        });
        // An ordinary reply may start with a digit (an IP, an IMEI): no MQTT framing now.
        let ordinary = self
            .exchange
            .as_ref()
            .is_some_and(|ex| ex.purpose.is_step() && ex.cmd.shape != Shape::Prompt);
        self.framer.suspend_mqtt(ordinary);
    }

    /// Keep-alive and boot window in the timer table (future instants only: what is due
    /// now was done by `advance`, or waits for the command in flight).
    fn arm_link_timers(&mut self, now: Instant) {
        let wait_override = self.mqtt_wait_keep_alive();
        let live = self.link.session_live() || wait_override.is_some();
        match self.link.mqtt.keep_alive_at(wait_override.flatten()) {
            Some(at) if live && self.link.socket.connected && at > now => {
                self.timers.set(Timer::KeepAlive, at)
            }
            _ => self.timers.stop(Timer::KeepAlive),
        }
        match self.boot.window_end() {
            Some(at) if self.run.is_some() && at > now => self.timers.set(Timer::Boot, at),
            _ => self.timers.stop(Timer::Boot),
        }
        match self.echo_quiet_at() {
            Some(at) if at > now => self.timers.set(Timer::Echo, at),
            _ => self.timers.stop(Timer::Echo),
        }
        match self.settle_at() {
            Some(at) if at > now => self.timers.set(Timer::Settle, at),
            _ => self.timers.stop(Timer::Settle),
        }
    }

    /// While a pushed packet waits for what follows it: when a pause settles it.
    pub(super) fn settle_at(&self) -> Option<Instant> {
        self.framer.undecided_push()?;
        if self.settled_rx == Some(self.rx_total) {
            return None;
        }
        Some(later(self.last_rx?, PUSH_SETTLE))
    }

    /// Settle a pushed packet after a pause; its frames are handled now.
    pub(super) fn settle_push(&mut self, now: Instant) {
        self.settled_rx = Some(self.rx_total);
        self.framer.settle();
        while let Some(frame) = self.framer.next_frame() {
            self.on_frame(frame, now);
        }
        self.sync_framer();
    }

    /// While typed data may still be echoed: when its echo counts as over (nothing came
    /// for [`ECHO_QUIET`] since the data was typed or the last byte arrived; the module
    /// echoes as it receives, so a pause means the echo stopped).
    pub(super) fn echo_quiet_at(&self) -> Option<Instant> {
        if !self.framer.echo_open() {
            return None;
        }
        let from = match (self.typed_at, self.last_rx) {
            (Some(t), Some(r)) => t.max(r),
            (t, r) => t.or(r)?,
        };
        Some(later(from, ECHO_QUIET))
    }

    /// `Some(interval override)` while an MQTT wait runs.
    pub(super) fn mqtt_wait_keep_alive(&self) -> Option<Option<Duration>> {
        match self.run.as_ref().map(|r| (&r.plan.action, &r.phase)) {
            Some((super::PlanAction::Mqtt(m), Phase::MqttWait)) => Some(m.keep_alive),
            _ => None,
        }
    }

    /// When the modem last answered, relative to `now`.
    pub(super) fn last_answer(&self, now: Instant) -> Option<LastAnswer> {
        self.last_answer.as_ref().map(|(t, c)| LastAnswer {
            command: c.clone(),
            ago: now.saturating_duration_since(*t),
        })
    }

    /// Follow the effects of a command that succeeded.
    pub(super) fn apply_effects(&mut self, cmd: &Command) {
        for effect in cmd.effects_in(self.link.socket.dialect) {
            if effect == Effect::SocketOpen {
                self.opened_host = super::tls::opened_host(&cmd.text);
            }
            self.modes.apply(effect);
            let change = self.link.socket.apply(effect);
            self.link.on_socket(change);
            if matches!(effect, Effect::Reboot | Effect::FactoryDefaults) {
                self.framer.reset();
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        match frame {
            Frame::Line(bytes) => {
                let line = String::from_utf8_lossy(&bytes).trim().to_string();
                if !line.is_empty() {
                    self.last_line = Some(line.clone());
                    self.on_line(line, now);
                }
            }
            Frame::Prompt => {
                self.events.push_back(Event::Prompt);
                self.on_prompt(now);
            }
            Frame::Data(data) => {
                let messages = self.link.on_received(data.clone());
                self.events.push_back(Event::Data(data));
                self.collect_tls();
                for m in messages {
                    self.events.push_back(Event::Message(m));
                }
            }
            Frame::Echo(bytes) => {
                self.events
                    .push_back(Event::Echo(String::from_utf8_lossy(&bytes).into_owned()));
            }
            Frame::Garbled(reason) => {
                self.events.push_back(Event::Note(reason.clone()));
                if let Some(t) = self.link.stream.tls() {
                    t.set_broken(reason.clone());
                }
                self.link.mqtt.fail(MqttFailure::Garbled { reason });
            }
        }
    }

    fn on_prompt(&mut self, now: Instant) {
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        ex.replied = true;
        if ex.payload_sent {
            return;
        }
        if let Some(typed) = ex.payload.take() {
            ex.payload_sent = true;
            // Whatever sim7k believes about echo: the bytes may come back (echo-stuck
            // modules), and must never be read as modem lines. One exception: TLS records
            // pushed raw while `ATE0` is verified in force. The server's answer can arrive
            // before `SEND OK`, and binary records differing from ours only in control
            // bytes would fit the echo rule: with echo off, they are data.
            let tls_push = self.link.socket.raw_push() && self.link.stream.is_tls();
            let echo_off = self.modes.echo == Echo::Off && self.modes.echo_verified_off;
            if !(tls_push && echo_off) {
                self.framer
                    .open_echo(typed.data.clone(), typed.range.clone());
            }
            self.typed_at = Some(now);
            self.events.push_back(Event::SentData(typed.range.len()));
            self.outbox.push_back(typed.bytes().to_vec());
        }
    }

    fn on_line(&mut self, line: String, now: Instant) {
        let Some(ex) = self.exchange.as_ref() else {
            let line = self.verbose(line, false);
            self.on_unsolicited(line, now);
            return;
        };
        // With ATV0 (and for ATV0's own reply) result codes are digits.
        let own_v0 = ex.cmd.effects().contains(&Effect::Verbose(false));
        let line = self.verbose(line, own_v0);
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        if ex.cmd.is_echo(&line) {
            ex.echo_seen = true;
            self.events.push_back(Event::Echo(line));
            self.on_command_echo(now);
            return;
        }
        let urc = known_urc(&line);
        // `+CIPRXGET: 1` is a URC even during `AT+CIPRXGET=2,…` (only `AT+CIPRXGET?` owns it).
        let owned = ex.cmd.owns(&line) && (urc != Some(Urc::RxData) || ex.cmd.text.contains('?'));
        if !owned && (urc.is_some() || (self.modes.echo == Echo::On && !ex.echo_seen)) {
            // A URC, or (with echo on) a line before our echo: it predates the command.
            self.on_unsolicited(line, now);
            return;
        }
        self.events.push_back(Event::Response(line.clone()));
        self.on_response(line, now);
    }

    fn verbose(&self, line: String, own_v0: bool) -> String {
        match numeric_result(&line) {
            Some(text) if self.modes.numeric || own_v0 => text.to_string(),
            _ => line,
        }
    }

    /// Our command came back as echo: echo is on. After the recipe's `ATE0` was seen in
    /// force, that means the setting is gone.
    fn on_command_echo(&mut self, now: Instant) {
        if self.modes.echo == Echo::Off && self.modes.echo_verified_off {
            self.restart_evidence(
                "the command echo came back after `ATE0` had switched it off".into(),
                now,
            );
        }
        self.modes.echo = Echo::On;
        self.modes.echo_verified_off = false;
    }

    /// A setting the recipe made is gone: confirms a suspected restart.
    fn restart_evidence(&mut self, why: String, now: Instant) {
        if let Some((line, evidence)) = self.boot.on_evidence(why) {
            self.fail_run(Failure::Rebooted { line, evidence }, now);
        }
    }

    fn on_response(&mut self, line: String, now: Instant) {
        let dialect = self.link.socket.dialect;
        if dialect.state(&line) == Some(SocketState::Initial) && self.link.socket.connected {
            self.restart_evidence(
                format!("`{line}` while a connection was open: the bearer and socket are gone"),
                now,
            );
            let change = self.link.socket.apply(Effect::BearerDown);
            self.link.on_socket(change);
        }
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        ex.replied = true;
        let code = result_code(&line);
        match ex.purpose {
            Purpose::Step | Purpose::Chunk => {
                if let Some(run) = self.run.as_mut()
                    && let Some(failure) = run.on_response(&line, ex.purpose, code.as_ref())
                {
                    self.framer.expect_prompt(false);
                    self.end_exchange();
                    self.attempt_failed(failure, now);
                    return;
                }
            }
            Purpose::Read => {
                if let Some(h) = dialect.parse_read(&line) {
                    self.link.socket.rx_waiting = h.remaining > 0;
                }
            }
            Purpose::QueryMax => {
                if let Some(size) = dialect.parse_max_send(&line) {
                    self.max_send = Some(size);
                }
            }
            Purpose::Recover | Purpose::Probe | Purpose::Background => {}
        }
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        if let Verdict::Finished(result) = verdict(ex, &line, code.as_ref()) {
            self.exchange_finished(result, now);
        }
    }

    /// Close the exchange in flight (its prompt and echo window with it).
    pub(super) fn end_exchange(&mut self) -> Option<Exchange> {
        self.timers.stop(Timer::Exchange);
        self.framer.expect_prompt(false);
        self.framer.clear_echo();
        self.exchange.take()
    }

    fn on_unsolicited(&mut self, line: String, now: Instant) {
        let urc = known_urc(&line);
        if self.run.is_none() && self.backlog.len() < BACKLOG {
            self.backlog.push(line.clone());
        }
        if let Some((_, change)) = self.link.socket.on_urc(&line) {
            self.link.on_socket(change);
            // A send still waiting for its prompt will only get `ERROR` now: that reply is
            // still to come and ends the exchange (a chunk fails the step, a background send
            // loses the session). Ending the exchange here instead would hand that `ERROR` to
            // the next command (the teardown's `AT+CIPSHUT` after a late `close_notify`).
        }
        self.events.push_back(Event::Unsolicited {
            line: line.clone(),
            urc,
        });
        // A wait step matches any line, URCs included.
        if let Some(run) = self.run.as_mut()
            && matches!(run.phase, Phase::Waiting)
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
        let boot = is_boot_line(&line).then(|| self.boot.on_line(&line, now));
        // Recipe handlers first: they may turn a restart into a logged event.
        if let Some(rule) = self.rules.iter().find(|r| r.matcher.is_match(&line)) {
            if rule.fail && boot != Some(BootVerdict::Boot) {
                let failure = Failure::Urc {
                    line,
                    message: rule.message.clone(),
                };
                self.fail_run(failure, now);
            }
            return;
        }
        match boot {
            Some(BootVerdict::Boot) => self.events.push_back(Event::Boot(line)),
            Some(BootVerdict::Suspected) => self.events.push_back(Event::Note(format!(
                "modem restart suspected: `{line}` after start-up; sim7k goes on, and fails \
                 the run if `RDY` follows or a setting the recipe made is found gone"
            ))),
            Some(BootVerdict::Confirmed(evidence)) => {
                self.fail_run(Failure::Rebooted { line, evidence }, now)
            }
            Some(BootVerdict::Nothing) | None => {}
        }
    }

    /// A URC handler or a restart ends the step at once, whatever it was doing.
    pub(super) fn fail_run(&mut self, failure: Failure, now: Instant) {
        if self.run.is_some() {
            self.end_exchange();
            self.finish(Some(failure), now);
        } else {
            // Between steps: report it with the next step.
            self.pending_fatal = Some(failure);
        }
    }

    /// The exchange got its final result.
    pub(super) fn exchange_finished(&mut self, result: Result<(), Failure>, now: Instant) {
        let Some(ex) = self.end_exchange() else {
            return;
        };
        self.boot.on_answer();
        self.last_answer = Some((now, ex.cmd.text.clone()));
        if self.modes.echo == Echo::Off && !ex.echo_seen {
            // The recipe's `ATE0` is in force: a suspected restart is ruled out.
            self.modes.echo_verified_off = true;
            if let Some(line) = self.boot.on_settings_intact() {
                self.events.push_back(Event::Note(format!(
                    "not a restart after all (`{line}`): the command echo is still off"
                )));
            }
        }
        if result.is_ok() && matches!(ex.purpose, Purpose::Step | Purpose::Recover) {
            self.apply_effects(&ex.cmd);
        }
        self.step_exchange_done(ex, result, now);
    }
}

/// Lines the module prints when it boots: `RDY`, `SMS Ready`, `Call Ready`, `+CPIN: READY`.
fn is_boot_line(line: &str) -> bool {
    matches!(
        line.trim(),
        "RDY" | "SMS Ready" | "Call Ready" | "+CPIN: READY"
    )
}
