//! Step engine tests: bytes in, actions out, with a hand-driven clock. One file per
//! concern; the harness and plan helpers are here.

use std::time::{Duration, Instant};

use super::*;

/// Drive a session: `script` is a list of (bytes the modem sends in reply to the n-th
/// write). Returns the writes and the outcome.
struct Drive {
    session: Session,
    now: Instant,
    writes: Vec<Vec<u8>>,
}

impl Drive {
    fn new() -> Drive {
        Drive {
            session: Session::new(Vec::new()),
            now: Instant::now(),
            writes: Vec::new(),
        }
    }

    fn with_rules(rules: Vec<UrcRule>) -> Drive {
        Drive {
            session: Session::new(rules),
            ..Drive::new()
        }
    }

    /// Run a step; `reply(write_index, written_bytes)` gives the modem's answer to each
    /// write. Time only advances when the engine waits with nothing to read.
    fn run(
        &mut self,
        plan: StepPlan,
        mut reply: impl FnMut(usize, &[u8]) -> Vec<u8>,
    ) -> StepOutcome {
        self.session.start(plan, self.now, None);
        for _ in 0..10_000 {
            match self.session.poll(self.now) {
                Action::Write(bytes) => {
                    let idx = self.writes.len();
                    self.writes.push(bytes.clone());
                    let answer = reply(idx, &bytes);
                    if !answer.is_empty() {
                        self.session.feed(&answer, self.now);
                    }
                }
                Action::Wait(t) => {
                    assert!(t >= self.now, "engine asked to wait in the past");
                    self.now = t;
                }
                Action::Done(o) => return o,
            }
        }
        panic!("step never finished: {:?}", self.session);
    }

    /// Go on with a step already started on the session (modem silent).
    fn run_continue(&mut self) -> StepOutcome {
        self.run_continue_with(|_, _| Vec::new())
    }

    /// Go on with a step already started on the session.
    fn run_continue_with(&mut self, mut reply: impl FnMut(usize, &[u8]) -> Vec<u8>) -> StepOutcome {
        for _ in 0..10_000 {
            match self.session.poll(self.now) {
                Action::Write(bytes) => {
                    let idx = self.writes.len();
                    self.writes.push(bytes.clone());
                    let answer = reply(idx, &bytes);
                    if !answer.is_empty() {
                        self.session.feed(&answer, self.now);
                    }
                }
                Action::Wait(t) => {
                    assert!(t >= self.now, "engine asked to wait in the past");
                    self.now = t;
                }
                Action::Done(o) => return o,
            }
        }
        panic!("step never finished: {:?}", self.session);
    }

    /// Like [`Drive::run`], but the modem's bytes leave it one every `per_byte` (a slow
    /// UART): they are fed as the clock reaches them. `at(t)` may add bytes the modem
    /// sends on its own at instants of the run (`None`: nothing).
    fn run_timed(
        &mut self,
        plan: StepPlan,
        per_byte: Duration,
        mut reply: impl FnMut(usize, &[u8]) -> Vec<u8>,
    ) -> StepOutcome {
        self.session.start(plan, self.now, None);
        let mut pending: std::collections::VecDeque<(Instant, u8)> = Default::default();
        for _ in 0..200_000 {
            match self.session.poll(self.now) {
                Action::Write(bytes) => {
                    let idx = self.writes.len();
                    self.writes.push(bytes.clone());
                    let mut t = pending.back().map_or(self.now, |p| p.0.max(self.now));
                    for b in reply(idx, &bytes) {
                        t += per_byte;
                        pending.push_back((t, b));
                    }
                }
                Action::Wait(t) => {
                    assert!(t >= self.now, "engine asked to wait in the past");
                    match pending.front().copied() {
                        Some((bt, b)) if bt <= t => {
                            pending.pop_front();
                            self.now = bt.max(self.now);
                            self.session.feed(&[b], self.now);
                        }
                        _ => self.now = t,
                    }
                }
                Action::Done(o) => return o,
            }
        }
        panic!("step never finished: {:?}", self.session);
    }

    fn events(&mut self) -> Vec<Event> {
        self.session.drain_events().collect()
    }

    fn written(&self) -> Vec<String> {
        self.writes
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }
}

fn plan(line: &str) -> StepPlan {
    StepPlan::command(line, Duration::from_secs(5))
}

fn m(p: &str) -> Matcher {
    Matcher::parse(p).unwrap()
}

fn default_aborts() -> Vec<Matcher> {
    ["ERROR", "+CME ERROR", "CONNECT FAIL", "SEND FAIL"]
        .iter()
        .map(|p| m(p))
        .collect()
}

fn data_plan(payload: &[u8], chunk: Option<usize>) -> StepPlan {
    let mut p = plan("send");
    p.action = PlanAction::Data(DataPlan {
        payload: payload.to_vec().into(),
        chunk,
        hex: false,
        session: MqttParams::of_connect(payload),
        secrets: Default::default(),
    });
    p.abort = default_aborts();
    p
}

use crate::mqtt::{Connect, Packet, Protocol};

fn mqtt_plan(want: MqttWant, timeout: Duration) -> StepPlan {
    let mut p = plan("mqtt");
    p.action = PlanAction::Mqtt(MqttPlan {
        want,
        packet_id: None,
        duration: None,
        keep_alive: None,
    });
    p.timeout = timeout;
    p.abort = default_aborts();
    p
}

/// A modem that accepts sends: answers the size query, prompts, and confirms data.
fn sender(_: usize, w: &[u8]) -> Vec<u8> {
    if w == b"AT+CIPSEND?\r" {
        b"\r\n+CIPSEND: 1460\r\n\r\nOK\r\n".to_vec()
    } else if w.starts_with(b"AT+CIPSEND=") {
        b"\r\n> ".to_vec()
    } else {
        b"\r\nSEND OK\r\n".to_vec()
    }
}

fn enc(p: Packet) -> Vec<u8> {
    p.encode(Protocol::V311).unwrap()
}

/// A modem that accepts sends and answers every PINGREQ with a pushed PINGRESP
/// (`+IPD` header mode).
fn sender_with_pong(i: usize, w: &[u8]) -> Vec<u8> {
    let mut r = sender(i, w);
    if w == [0xC0, 0x00] {
        r.extend_from_slice(b"\r\n+IPD,2:\xd0\x00");
    }
    r
}

/// Connect the session's link: a mode command, CIPSTART, and our CONNECT sent.
fn connected(d: &mut Drive, mode_cmd: &str, keep_alive: u16) {
    assert!(
        d.run(plan(mode_cmd), |_, _| b"\r\nOK\r\n".to_vec())
            .passed()
    );
    assert!(
        d.run(plan("AT+CIPSTART=\"TCP\",\"b\",1883"), |_, _| {
            b"\r\nOK\r\n\r\nCONNECT OK\r\n".to_vec()
        })
        .passed()
    );
    let mut c = Connect::new(Protocol::V311, "dev");
    c.keep_alive = keep_alive;
    let o = d.run(data_plan(&enc(Packet::Connect(c)), Some(1460)), sender);
    assert!(o.passed(), "{o:?}");
}

mod boot;
mod commands;
mod data;
mod echo;
mod keepalive;
mod mqtt;
mod push;
mod silence;
