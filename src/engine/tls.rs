//! TLS steps and TLS around the step machine.
//!
//! **The handshake step** (`tls:` in a recipe, [`TlsPlan::Handshake`]) runs over the
//! connection the recipe opened (`AT+CIPSTART` … `CONNECT OK`). It asks the modem for its
//! largest send (`AT+CIPSEND?`) unless the step names a chunk, puts sim7k's TLS client in
//! the stream's transform slot, and waits until the handshake completes: the ClientHello and
//! every later flight go out as `AT+CIPSEND=<n>` chunks, the server's records come in
//! through whatever receive mode is in force (`+CIPRXGET: 2` reads, `+IPD`, raw push
//! framed as TLS records), all by the link's background work, which also runs during
//! other steps. The step fails with the TLS failure's name and advice
//! ([`Failure::Tls`](super::Failure::Tls), exit 1) after the alert that tells the server
//! why went out; when the socket closes mid-handshake; or with a timeout (exit 3) when the
//! server does not finish within the step's `timeout`. On success it captures
//! `tls_version`, `tls_cipher`, `tls_resumed`, `tls_alpn`, `tls_handshake_sent` and
//! `tls_handshake_received`.
//!
//! **Afterwards** `send_data` payloads are encrypted (each send seals its payload when its
//! first chunk is due, and nothing else goes out between its chunks), received data is
//! decrypted for the MQTT session, and keep-alive and acknowledgements work as in plain
//! TCP. A connection opened later starts plain again.
//!
//! **Closing.** Before a command that closes the connection (`AT+CIPCLOSE`, `AT+CIPSHUT`)
//! while TLS is up, the engine sends `close_notify` first (the TLS counterpart of the
//! acknowledgements the MQTT protocol requires: a broker otherwise logs an unexpected EOF).
//! A `tls: close` step sends it explicitly.

use std::time::{Duration, Instant};

use super::failure::Failure;
use super::link::stream::Stream;
use super::link::tls::TlsTransform;
use super::session::Session;
use super::step::Phase;
use super::timers::Timer;
use super::{Event, PlanAction, StepPlan, TlsPlan};
use crate::at::command::Command;
use crate::at::dialect::RxMode;
use crate::at::effects::Effect;
use crate::tls::TlsState;
use crate::util::time::later;

/// What a TLS step waits for, in words.
pub(super) fn describe(plan: &StepPlan) -> String {
    match &plan.action {
        PlanAction::Tls(TlsPlan::Handshake(h)) => match &h.host {
            Some(host) => format!("the TLS handshake with {host}"),
            None => "the TLS handshake".to_string(),
        },
        PlanAction::Tls(TlsPlan::Close) => "TLS close_notify to go out".to_string(),
        _ => super::step::describe_expect(plan),
    }
}

impl Session {
    /// The TLS step's attempt begins.
    pub(super) fn tls_begin(&mut self, now: Instant) {
        let Some(run) = self.run.as_ref() else {
            return;
        };
        let PlanAction::Tls(plan) = &run.plan.action else {
            return;
        };
        let plan = plan.clone();
        let timeout = run.plan.timeout;
        match plan {
            TlsPlan::Close => {
                if self.link.socket.connected
                    && let Some(t) = self.link.stream.tls()
                    && matches!(t.stream().state(), TlsState::Open | TlsState::Handshaking)
                {
                    t.close();
                }
                self.enter_tls_wait(timeout, now);
            }
            TlsPlan::Handshake(h) => {
                let data = |message: &str| Failure::Data {
                    message: message.to_string(),
                };
                if !self.link.socket.connected {
                    let f = data(
                        "the TLS handshake needs an open TCP connection: run it after `AT+CIPSTART` answered `CONNECT OK`",
                    );
                    self.finish(Some(f), now);
                    return;
                }
                if self.link.socket.hex {
                    let f = data(
                        "TLS needs binary sends: hex mode (`AT+CIPSENDHEX=1`) cannot carry the byte 0x1A, which TLS records hold; send `AT+CIPSENDHEX=0` first",
                    );
                    self.finish(Some(f), now);
                    return;
                }
                if self.link.stream.tls_ref().is_some_and(|t| {
                    !matches!(t.stream().state(), TlsState::Closed | TlsState::Failed)
                }) {
                    let f = data(
                        "TLS already runs on this connection: one `tls:` step per connection (open a new one with `AT+CIPSTART` for another handshake)",
                    );
                    self.finish(Some(f), now);
                    return;
                }
                let dialect = self.link.socket.dialect;
                if h.chunk.is_none()
                    && self.max_send.is_none()
                    && let Some(q) = dialect.max_send_query()
                {
                    // Records go out in chunks of the module's size: ask it first.
                    self.issue(q.to_string(), super::exchange::Purpose::QueryMax, None, now);
                    return;
                }
                let Some(host) = h.host.clone().or_else(|| self.opened_host.clone()) else {
                    let f = data(
                        "the TLS step cannot tell which host the connection goes to: give it as `tls: { host: … }`",
                    );
                    self.finish(Some(f), now);
                    return;
                };
                for w in h.client.warnings() {
                    self.events.push_back(Event::Note(format!("WARNING: {w}")));
                }
                let stream = match h.client.connect(&host) {
                    Ok(s) => s,
                    Err(f) => {
                        self.finish(Some(Failure::Tls(f)), now);
                        return;
                    }
                };
                self.events.push_back(Event::Note(format!(
                    "TLS to {}: the server is checked against {}",
                    stream.server_name(),
                    h.client.trust()
                )));
                self.link.stream = Stream::new(Box::new(TlsTransform::new(stream, h.chunk)));
                self.sync_framer();
                self.collect_tls();
                self.enter_tls_wait(timeout, now);
            }
        }
    }

    fn enter_tls_wait(&mut self, timeout: Duration, now: Instant) {
        if let Some(run) = self.run.as_mut() {
            run.phase = Phase::Tls;
        }
        self.timers.set(Timer::Tls, later(now, timeout));
    }

    /// Is the TLS step done? True when the step ended.
    pub(super) fn tls_check(&mut self, now: Instant) -> bool {
        let Some(run) = self.run.as_ref() else {
            return false;
        };
        let PlanAction::Tls(plan) = &run.plan.action else {
            return false;
        };
        let closing = matches!(plan, TlsPlan::Close);
        let waited = now.saturating_duration_since(run.started);
        let waiting_for = describe(&run.plan);
        let rx_left = self.link.socket.rx_mode == RxMode::Manual && self.link.socket.rx_waiting;
        let connected = self.link.socket.connected;
        let idle = self.background.is_none();
        let Some(t) = self.link.stream.tls() else {
            // `tls: close` with no TLS on the connection: nothing to do.
            let f = (!closing).then(|| Failure::Data {
                message: "the TLS connection is gone (the TCP connection was replaced)".into(),
            });
            self.finish(f, now);
            return true;
        };
        if let Some(f) = t.stream().failure().cloned() {
            // Send the alert that tells the server why first, while that is possible.
            if t.pending() > 0 && connected && t.broken().is_none() {
                return false;
            }
            if !idle && connected {
                return false;
            }
            self.finish(Some(Failure::Tls(f)), now);
            return true;
        }
        if let Some(why) = t.broken() {
            let f = Failure::Data {
                message: format!("{waiting_for} failed: {why}"),
            };
            self.finish(Some(f), now);
            return true;
        }
        let handshaking = t.stream().is_handshaking();
        if closing {
            if !connected || (t.pending() == 0 && idle) {
                self.finish(None, now);
                return true;
            }
        } else if !handshaking && t.pending() == 0 && idle {
            let captures = t.stream().session().map(captures).unwrap_or_default();
            let line = t.stream().session().map(|s| s.to_string());
            if let Some(run) = self.run.as_mut() {
                run.captures = captures;
                run.lines.extend(line);
            }
            self.finish(None, now);
            return true;
        } else if !connected && !rx_left {
            // The socket closed mid-handshake (or right after it, before our Finished got
            // out): TLS names why.
            let f = match t.socket_closed() {
                Err(f) => Failure::Tls(f),
                Ok(_) => Failure::Data {
                    message: format!(
                        "the TCP connection closed before {waiting_for} finished sending"
                    ),
                },
            };
            self.collect_tls();
            self.finish(Some(f), now);
            return true;
        }
        if self.timers.expired(Timer::Tls, now) {
            self.timers.stop(Timer::Tls);
            let (sent, received) = self
                .link
                .stream
                .tls_ref()
                .map_or((0, 0), |t| t.stream().byte_counts());
            let f = Failure::Timeout {
                waited,
                waiting_for: format!(
                    "{waiting_for} ({sent} B sent, {received} B received{})",
                    if received == 0 {
                        "; the server sent nothing: check the port is its TLS port"
                    } else {
                        ""
                    }
                ),
            };
            self.finish(Some(f), now);
            return true;
        }
        false
    }

    /// Before a command that closes the connection while TLS is up: queue `close_notify`
    /// (sent by the background work before the command). True when the command waits.
    pub(super) fn close_notify_first(&mut self, command: &str, now: Instant) -> bool {
        if !self.link.socket.connected {
            return false;
        }
        let dialect = self.link.socket.dialect;
        let closes = Command::parse(command)
            .effects_in(dialect)
            .iter()
            .any(|e| matches!(e, Effect::SocketClose | Effect::BearerDown));
        if !closes {
            return false;
        }
        let Some(t) = self.link.stream.tls() else {
            return false;
        };
        if !matches!(t.stream().state(), TlsState::Open | TlsState::Handshaking) {
            return false;
        }
        t.close();
        self.collect_tls();
        if let Some(run) = self.run.as_mut() {
            run.phase = Phase::Pause;
        }
        self.timers.set(Timer::Pause, now);
        true
    }

    /// A step failed after the connection closed under TLS: when the server had asked for
    /// a client certificate, got none and sent nothing since, that is the cause to name
    /// (a TLS 1.3 server checks the certificate after the handshake, then closes).
    pub(super) fn tls_explain(&self, failure: Failure) -> Failure {
        if matches!(failure, Failure::Tls(_)) || self.link.socket.connected {
            return failure;
        }
        match self
            .link
            .stream
            .tls_ref()
            .and_then(|t| t.stream().missing_client_cert())
        {
            Some(f) => Failure::Tls(f),
            None => failure,
        }
    }

    /// Hand the TLS traces and the framer's notes to the events.
    pub(super) fn collect_tls(&mut self) {
        for note in self.framer.take_notes() {
            self.events.push_back(Event::Note(note));
        }
        if let Some(t) = self.link.stream.tls() {
            for trace in t.take_traces() {
                self.events.push_back(Event::Tls(trace));
            }
        }
    }

    /// The socket under an open TLS connection closed and nothing is left to read: tell TLS
    /// (the transcript shows whether the server's `close_notify` came first).
    pub(super) fn tls_settle_closed(&mut self) {
        if self.link.socket.connected
            || (self.link.socket.rx_mode == RxMode::Manual && self.link.socket.rx_waiting)
            || self.run.as_ref().is_some_and(|r| r.phase == Phase::Tls)
        {
            return;
        }
        if let Some(t) = self.link.stream.tls()
            && matches!(t.stream().state(), TlsState::Open | TlsState::Closing)
        {
            let _ = t.socket_closed();
            self.collect_tls();
        }
    }
}

/// The host of a command that opens a connection: its last quoted parameter that is not
/// the protocol (`AT+CIPSTART="TCP","broker.example",8883` → `broker.example`).
pub(super) fn opened_host(command: &str) -> Option<String> {
    let (_, params) = command.split_once('=')?;
    params
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|p| !p.is_empty() && !matches!(p.to_ascii_uppercase().as_str(), "TCP" | "UDP"))
        .last()
        .map(str::to_string)
}

/// The vars a passed handshake sets.
fn captures(s: &crate::tls::SessionInfo) -> Vec<(String, String)> {
    vec![
        ("tls_version".into(), s.version.name().to_string()),
        ("tls_cipher".into(), s.cipher_suite.clone()),
        ("tls_resumed".into(), s.resumed.to_string()),
        ("tls_alpn".into(), s.alpn.clone().unwrap_or_default()),
        ("tls_handshake_sent".into(), s.handshake_sent.to_string()),
        (
            "tls_handshake_received".into(),
            s.handshake_received.to_string(),
        ),
    ]
}
