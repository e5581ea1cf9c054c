//! Waiting: `wait` steps, MQTT waits, and the link's background work that runs whatever
//! step is in progress.
//!
//! **Background work.** While an MQTT session is live (our CONNECT went out on an open
//! connection), and during MQTT waits, the engine sends what the protocol requires between
//! the steps' commands: acknowledgements of incoming messages, a PINGREQ when the
//! keep-alive interval passed since the last send (and it checks the PINGRESP), and reads of
//! data the modem holds in manual receive mode. That happens before the next command of any
//! step and during `wait` steps, `until` and retry pauses (never while a command is in
//! flight: the AT protocol has one command at a time). Messages that arrive are reported as
//! [`Event::Message`] whatever step runs. A PINGREQ left unanswered for a whole interval
//! loses the session: an MQTT wait fails at once, other steps go on and the next MQTT wait
//! fails with it.
//!
//! **Silence.** A `wait` step whose `expect` is not met, or an MQTT wait that times out,
//! during which the modem sent nothing at all, sends one `AT` (bounded by
//! [`PROBE_TIMEOUT`](super::step::PROBE_TIMEOUT) and the deadlines): no answer is
//! [`Failure::NoReply`] (exit 3); an answer means the modem is alive and the expectation
//! simply was not met ([`Failure::WaitNotMet`], exit 1; an MQTT wait keeps its timeout).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::data::{DataSend, Next};
use super::exchange::Purpose;
use super::failure::{Failure, MqttFailure};
use super::link::mqtt::check_result;
use super::session::Session;
use super::step::{Phase, describe_expect, sources};
use super::timers::Timer;
use super::{Event, MqttWant, PlanAction, StepPlan};
use crate::at::dialect::RxMode;
use crate::util::time::later;

/// What an MQTT wait waits for, in words.
pub(super) fn describe_mqtt(plan: &StepPlan) -> String {
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

impl Session {
    /// The MQTT wait begins (after the step's `delay`).
    pub(super) fn enter_mqtt_wait(&mut self, now: Instant) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let PlanAction::Mqtt(m) = &run.plan.action else {
            return;
        };
        let span = match (&m.want, m.duration) {
            (MqttWant::Messages { .. }, Some(d)) => d,
            _ => run.plan.timeout,
        };
        run.phase = Phase::MqttWait;
        self.timers.set(Timer::MqttWait, later(now, span));
    }

    /// Is what the MQTT wait waits for here? Returns true when the step ended.
    pub(super) fn mqtt_check(&mut self, now: Instant) -> bool {
        let Some(run) = self.run.as_ref() else {
            return false;
        };
        let PlanAction::Mqtt(plan) = &run.plan.action else {
            return false;
        };
        let plan = plan.clone();
        let waiting_for = describe_mqtt(&run.plan);
        let heard = self.rx_total > run.rx_at_start;
        let mqtt = &mut self.link.mqtt;
        if let Some(e) = mqtt.error().cloned() {
            self.finish(Some(Failure::Mqtt(e)), now);
            return true;
        }
        match &plan.want {
            MqttWant::Packet(t) => {
                if let Some(p) = mqtt.take(*t, plan.packet_id) {
                    let protocol = mqtt.protocol();
                    if let Some(run) = self.run.as_mut() {
                        run.lines.push(p.packet_type().name().to_string());
                    }
                    let result = check_result(&p, protocol);
                    self.finish(result.err().map(Failure::Mqtt), now);
                    return true;
                }
            }
            MqttWant::Messages { count } => {
                let available = mqtt.messages.saturating_sub(mqtt.consumed);
                // Done when enough arrived, acknowledged, and no QoS 2 exchange is left
                // half-way.
                if let Some(c) = count
                    && available >= *c
                    && !mqtt.qos2_in_flight()
                    && (!mqtt.has_replies() || !self.link.socket.connected)
                {
                    self.link.mqtt.consumed += *c;
                    self.finish(None, now);
                    return true;
                }
            }
        }
        let mqtt = &mut self.link.mqtt;
        if let Some(p) = mqtt.take(crate::mqtt::PacketType::Disconnect, None) {
            let failure =
                check_result(&p, mqtt.protocol())
                    .err()
                    .unwrap_or(MqttFailure::Disconnected {
                        reason: "no reason given".into(),
                    });
            self.finish(Some(Failure::Mqtt(failure)), now);
            return true;
        }
        if self.timers.expired(Timer::MqttWait, now) {
            self.timers.stop(Timer::MqttWait);
            if let Some(reason) = self.framer.undecided_push() {
                let failure = MqttFailure::Garbled {
                    reason: reason.to_string(),
                };
                self.finish(Some(Failure::Mqtt(failure)), now);
                return true;
            }
            match plan.want {
                MqttWant::Messages { count } if plan.duration.is_some() => {
                    // The listening time is over: that is success.
                    let mqtt = &mut self.link.mqtt;
                    let available = mqtt.messages.saturating_sub(mqtt.consumed);
                    mqtt.consumed += available.min(count.unwrap_or(available));
                    self.finish(None, now);
                }
                _ if heard => {
                    let waited = self
                        .run
                        .as_ref()
                        .map_or(Duration::ZERO, |r| now.saturating_duration_since(r.started));
                    let failure = Failure::Timeout {
                        waited,
                        waiting_for,
                    };
                    self.finish(Some(failure), now);
                }
                _ => self.probe(now),
            }
            return true;
        }
        let rx_left = self.link.socket.rx_mode == RxMode::Manual && self.link.socket.rx_waiting;
        if !self.link.socket.connected && !rx_left && !self.link.mqtt.has_replies() {
            let failure = MqttFailure::Closed { waiting_for };
            self.finish(Some(Failure::Mqtt(failure)), now);
            return true;
        }
        false
    }

    /// Send what the link needs (acks, PINGREQ, reads), if anything. True when an exchange
    /// was started or the step ended.
    pub(super) fn background_work(&mut self, now: Instant) -> bool {
        if self.exchange.is_some() || self.run.is_none() {
            return false;
        }
        let wait_override = self.mqtt_wait_keep_alive();
        let in_wait = wait_override.is_some();
        if !self.link.background_live() && !in_wait {
            return false;
        }
        let dialect = self.link.socket.dialect;
        // A reply being sent: its next chunk.
        if let Some(send) = self.background.as_mut() {
            let max = self
                .link
                .stream
                .tls_ref()
                .and_then(|t| t.chunk())
                .or(self.max_send)
                .or(Some(dialect.max_send()));
            match send.next(dialect, max) {
                Ok(Next::Chunk(cmd, typed)) => {
                    self.issue(cmd, Purpose::Background, Some(typed), now);
                    return true;
                }
                Ok(Next::Query(_) | Next::Done) => self.background = None,
                Err(_) => self.background = None,
            }
        }
        // Nothing starts between two chunks of the step's own send: the bytes of a stream
        // (and a TLS record sequence) must not interleave.
        let step_sending = self
            .run
            .as_ref()
            .and_then(|r| r.data.as_ref())
            .is_some_and(DataSend::unfinished);
        if self.link.socket.connected && !step_sending {
            if let Err(f) = self.link.mqtt.poll_keep_alive(now, wait_override.flatten()) {
                self.events.push_back(Event::Note(format!(
                    "{f}; the next MQTT step fails with this"
                )));
                if in_wait {
                    self.finish(Some(Failure::Mqtt(f)), now);
                    return true;
                }
                return false;
            }
            if let Some(bytes) = self.link.mqtt.take_replies() {
                if self.link.socket.hex && bytes.contains(&0x1A) {
                    self.link.mqtt.fail(MqttFailure::HexReply);
                    if in_wait {
                        self.finish(Some(Failure::Mqtt(MqttFailure::HexReply)), now);
                        return true;
                    }
                    return false;
                }
                match self.link.seal(Arc::from(bytes)) {
                    Ok(wire) => {
                        self.background = Some(DataSend::new(wire, None, self.link.socket.hex));
                        return self.background_work(now);
                    }
                    Err(f) => self.link.mqtt.fail(f),
                }
                return false;
            }
            // What TLS sends by itself: handshake flights, alerts, close_notify.
            if let Some(wire) = self.link.stream.poll_transmit() {
                self.background = Some(DataSend::new(wire, None, self.link.socket.hex));
                return self.background_work(now);
            }
        }
        if self.link.socket.rx_mode == RxMode::Manual && self.link.socket.rx_waiting {
            let read = dialect.read(dialect.max_read());
            self.issue(read, Purpose::Read, None, now);
            return true;
        }
        false
    }

    /// A background exchange ended.
    pub(super) fn background_done(
        &mut self,
        purpose: Purpose,
        result: Result<(), Failure>,
        now: Instant,
    ) {
        match (purpose, result) {
            (Purpose::Background, Ok(())) => {
                self.link.mqtt.on_sent(now);
                if self.background.as_mut().is_none_or(DataSend::chunk_sent) {
                    self.background = None;
                }
            }
            (Purpose::Background, Err(f)) => {
                // No connection any more (ERROR, SEND FAIL): the session is lost.
                self.background = None;
                if let Some(t) = self.link.stream.tls() {
                    t.set_broken(format!("the modem refused TLS bytes ({f})"));
                }
                self.events.push_back(Event::Note(format!(
                    "an MQTT acknowledgement or PINGREQ could not be sent: {f}"
                )));
                self.link.mqtt.fail(MqttFailure::Closed {
                    waiting_for: "an acknowledgement or PINGREQ to go out".into(),
                });
            }
            // The modem has nothing to give (or no connection any more).
            (_, Err(_)) => self.link.socket.rx_waiting = false,
            (_, Ok(())) => {}
        }
    }

    /// A `wait` step's time is up.
    pub(super) fn wait_over(&mut self, now: Instant) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        if run.plan.expect.is_empty() {
            self.finish(None, now);
        } else if self.rx_total > run.rx_at_start {
            let alive = match &self.last_line {
                Some(l) => format!("the modem is alive: it sent `{l}` meanwhile"),
                None => "the modem is alive: it sent bytes meanwhile".into(),
            };
            self.wait_alive(alive, now);
        } else {
            self.probe(now);
        }
    }

    /// Nothing was heard during the wait: is the modem alive?
    fn probe(&mut self, now: Instant) {
        if let Some(run) = self.run.as_mut() {
            run.phase = Phase::Probing;
        }
        self.issue("AT".into(), Purpose::Probe, None, now);
    }

    /// The wait ended unmet, and the modem is alive.
    pub(super) fn wait_alive(&mut self, alive: String, now: Instant) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        let waited = now.saturating_duration_since(run.started);
        let failure = match &run.plan.action {
            PlanAction::Mqtt(_) => Failure::Timeout {
                waited,
                waiting_for: format!(
                    "{} ({alive}; the broker sent nothing)",
                    describe_mqtt(&run.plan)
                ),
            },
            _ => Failure::WaitNotMet {
                patterns: sources(&run.plan.expect),
                waited,
                alive,
            },
        };
        self.finish(Some(failure), now);
    }
}
