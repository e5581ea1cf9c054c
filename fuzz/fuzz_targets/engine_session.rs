//! Arbitrary modem output into the step engine ([`Session`]) for a few step plans in a row.
//!
//! Input: `[plan, plan, plan, seed, bytes...]`. Each `plan` byte picks one of the plans below
//! (commands of every reply shape, `until` polling, a binary and a hex data send, MQTT waits, a
//! wait step). The bytes are the modem's output, handed over in pseudo-random chunks whenever
//! the engine writes or waits; when they run out, the clock jumps to the instant the engine
//! asked to be woken at. Every step must end (`Action::Done`) within its deadline, the engine
//! never asks to wait in the past, and captures of a command step never come from a URC line.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sim7k::at::{Command, Urc, known_urc};
use sim7k::engine::{
    Action, DataPlan, Matcher, MqttParams, MqttPlan, MqttWant, PlanAction, Session, StepPlan, UrcRule, compile,
};
use sim7k::mqtt::PacketType;

/// Bound on one step, whatever its plan says.
const DEADLINE: Duration = Duration::from_secs(120);

fn m(p: &str) -> Matcher {
    Matcher::parse(p).expect("pattern")
}

/// Compiled once: regex compilation would otherwise dominate every execution.
struct Patterns {
    any_line: regex::Regex,
    registered: Matcher,
    cpin: Matcher,
    csq: Matcher,
    ok: Matcher,
    error: Matcher,
    cme: Matcher,
    pdp: Matcher,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| Patterns {
    any_line: compile(r"^(?P<line>.+)$").expect("regex"),
    registered: m(r"/^\+CEREG: \d,[15]/"),
    cpin: m("+CPIN: READY"),
    csq: m("/^\\+CSQ: (\\d+)/"),
    ok: m("OK"),
    error: m("ERROR"),
    cme: m("+CME ERROR"),
    pdp: m("+PDP: DEACT"),
});

fn plan(pick: u8) -> StepPlan {
    let cmd = |line: &str| StepPlan::command(line, Duration::from_secs(2));
    let pat = &*PATTERNS;
    let data = |payload: Vec<u8>, hex: bool| {
        PlanAction::Data(DataPlan {
            session: MqttParams::of_connect(&payload),
            payload: payload.into(),
            chunk: None,
            hex,
            secrets: Default::default(),
        })
    };
    let mqtt = |want: MqttWant| {
        PlanAction::Mqtt(MqttPlan {
            want,
            packet_id: None,
            duration: None,
            keep_alive: Some(Duration::from_secs(5)),
        })
    };
    let mut p = match pick % 14 {
        0 => cmd("AT+CSQ"),
        1 => cmd("AT+CPIN?"),
        2 => cmd("AT+CIFSR"),
        3 => cmd("AT+CIPSTART=\"TCP\",\"broker\",1883"),
        4 => cmd("AT+CIPSHUT"),
        5 => cmd("AT+CIPSTATUS"),
        6 => cmd("AT+CIPRXGET=1"),
        7 => cmd("ATE0"),
        8 => {
            let mut p = cmd("AT+CEREG?");
            p.until = vec![pat.registered.clone()];
            p.deadline = Some(Duration::from_secs(10));
            p
        }
        9 => {
            let mut p = cmd("send");
            p.action = data((0..3000u32).map(|i| (i % 251) as u8).collect(), false);
            p
        }
        10 => {
            let mut p = cmd("send");
            p.action = data(
                b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00".to_vec(),
                true,
            );
            p
        }
        11 => {
            let mut p = cmd("wait");
            p.action = mqtt(MqttWant::Packet(PacketType::ConnAck));
            p
        }
        12 => {
            let mut p = cmd("wait");
            p.action = mqtt(MqttWant::Messages { count: Some(2) });
            p
        }
        _ => {
            let mut p = cmd("wait");
            p.action = PlanAction::Wait(Duration::from_secs(3));
            p.expect = vec![pat.cpin.clone()];
            p
        }
    };
    if pick & 0x10 != 0 {
        p.retries = 2;
        p.retry_delay = Duration::from_millis(500);
    }
    if pick & 0x20 != 0 {
        p.abort = vec![pat.error.clone(), pat.cme.clone()];
    }
    if pick & 0x40 != 0 {
        p.expect = vec![pat.csq.clone(), pat.ok.clone()];
    }
    if matches!(p.action, PlanAction::Command(_)) {
        p.capture = vec![pat.any_line.clone()];
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let [p0, p1, p2, seed, bytes @ ..] = data else {
        return;
    };
    let rules = vec![UrcRule {
        matcher: PATTERNS.pdp.clone(),
        fail: true,
        message: "PDP released".into(),
    }];
    let mut session = Session::new(rules);
    let mut now = Instant::now();
    let mut state = u32::from(*seed) | 1;
    let mut input = bytes;
    let mut next_chunk = move || -> Option<&[u8]> {
        if input.is_empty() {
            return None;
        }
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + (state % 64) as usize).min(input.len());
        let (a, b) = input.split_at(n);
        input = b;
        Some(a)
    };
    for pick in [p0, p1, p2] {
        let plan = plan(*pick);
        let command = match &plan.action {
            PlanAction::Command(c) => Some(Command::parse(c)),
            _ => None,
        };
        let start = now;
        session.start(plan, now, Some(start + DEADLINE));
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(steps < 200_000, "the step never ended");
            match session.poll(now) {
                Action::Write(_) => {
                    if let Some(c) = next_chunk() {
                        session.feed(c, now);
                    }
                }
                Action::Wait(t) => {
                    assert!(t >= now, "asked to wait in the past");
                    assert!(t <= start + DEADLINE, "asked to wait past the deadline");
                    match next_chunk() {
                        Some(c) => {
                            now = (now + Duration::from_millis(5)).min(t);
                            session.feed(c, now);
                        }
                        None => now = t,
                    }
                }
                Action::Done(outcome) => {
                    assert!(now <= start + DEADLINE, "ended past the deadline");
                    if let Some(cmd) = &command {
                        for (_, v) in &outcome.captures {
                            // A URC the command does not own (`AT+CPIN?` owns `+CPIN: …`).
                            let urc = known_urc(v);
                            let owned =
                                cmd.owns(v) && (urc != Some(Urc::RxData) || cmd.text.contains('?'));
                            assert!(urc.is_none() || owned, "captured a URC line: {v:?}");
                        }
                    }
                    if outcome.passed() {
                        assert!(outcome.attempts >= 1);
                    } else {
                        assert!(outcome.captures.is_empty());
                    }
                    break;
                }
            }
            session.drain_events().for_each(drop);
        }
    }
});
