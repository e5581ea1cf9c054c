//! AT layer throughput and engine cost per step, without any IO (criterion;
//! `cargo bench --bench at`). Figures and their reading are in docs/performance.md.
//!
//! * `framer/*`: modem output through the [`Framer`] in 64-byte reads (what a pty read
//!   typically returns), in bytes per second.
//! * `session/*`: the CPU one recipe step costs in the sans-IO [`Session`]: start the plan,
//!   take the write, feed the modem's canned reply, take the outcome. This is the part of the
//!   per-step overhead measured by `benches/compare.py` that is not IO or scheduling.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sim7k::at::{Frame, Framer};
use sim7k::engine::{Action, DataPlan, PlanAction, Session, StepPlan};

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

fn block(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// About 64 KiB of `unit`.
fn repeat_to_64k(unit: &[u8]) -> Vec<u8> {
    unit.repeat((64 << 10) / unit.len().max(1) + 1)
}

fn frame_all(input: &[u8], mqtt_push: bool) -> usize {
    let mut f = Framer::new();
    f.set_mqtt_push(mqtt_push);
    let mut n = 0;
    for piece in input.chunks(64) {
        f.push(piece);
        while let Some(frame) = f.next_frame() {
            if let Frame::Data(d) | Frame::Line(d) = &frame {
                n += d.len();
            }
            black_box(frame);
        }
    }
    n
}

fn framer(c: &mut Criterion) {
    let mut g = c.benchmark_group("framer");
    let data = block(1460);
    let mut ipd = b"\r\n+IPD,1460:".to_vec();
    ipd.extend_from_slice(&data);
    let mut rxget = b"AT+CIPRXGET=2,1460\r\r\n+CIPRXGET: 2,1460,0\r\n".to_vec();
    rxget.extend_from_slice(&data);
    rxget.extend_from_slice(b"\r\nOK\r\n");
    // A 100 KB PUBLISH pushed raw as the module writes it: CR LF + blocks of 1460 bytes.
    let mut push_100k = Vec::new();
    for piece in push_packet(100 << 10).chunks(1460) {
        push_100k.extend_from_slice(b"\r\n");
        push_100k.extend_from_slice(piece);
    }
    let cases: [(&str, Vec<u8>, bool); 5] = [
        (
            "replies",
            repeat_to_64k(b"AT+CSQ\r\r\n+CSQ: 24,99\r\n\r\nOK\r\n"),
            false,
        ),
        ("ipd_1460", repeat_to_64k(&ipd), false),
        ("ciprxget2_1460", repeat_to_64k(&rxget), false),
        // Pushed PUBLISH packets as `AT+CIPRXGET=0` delivers them (no header line, each
        // block after a line break).
        (
            "mqtt_push_1400",
            repeat_to_64k(&[&b"\r\n"[..], &push_packet(1400)].concat()),
            true,
        ),
        ("mqtt_push_100k_blocks", push_100k, true),
    ];
    for (name, input, mqtt) in cases {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &input, |b, input| {
            b.iter(|| frame_all(black_box(input), mqtt))
        });
    }
    g.finish();
}

/// A QoS 0 PUBLISH to topic `t` with an `n`-byte payload, as raw bytes.
fn push_packet(n: usize) -> Vec<u8> {
    let publish = sim7k::mqtt::Publish::new("t", block(n));
    sim7k::mqtt::Packet::Publish(publish)
        .encode(sim7k::mqtt::Protocol::V311)
        .unwrap_or_default()
}

/// Run one step against a canned reply; returns whether it passed.
fn one_step(session: &mut Session, plan: StepPlan, reply: &dyn Fn(&[u8]) -> Vec<u8>) -> bool {
    let now = Instant::now();
    session.start(plan, now, None);
    for _ in 0..64 {
        match session.poll(now) {
            Action::Write(bytes) => {
                let answer = reply(&bytes);
                session.feed(&answer, now);
            }
            Action::Wait(_) => return false,
            Action::Done(outcome) => {
                session.drain_events().for_each(drop);
                return outcome.passed();
            }
        }
    }
    false
}

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    let command = StepPlan::command("AT+CSQ", Duration::from_secs(5));
    g.bench_function("command_step", |b| {
        let mut s = Session::new(Vec::new());
        let reply = |w: &[u8]| {
            let mut r = w.to_vec();
            r.extend_from_slice(b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
            r
        };
        b.iter(|| assert!(one_step(&mut s, command.clone(), &reply)))
    });
    let mut capture = command.clone();
    capture.capture =
        vec![sim7k::engine::compile(r"^\+CSQ: (?P<rssi>\d+),(?P<ber>\d+)$").expect("regex")];
    g.bench_function("command_step_with_capture", |b| {
        let mut s = Session::new(Vec::new());
        let reply = |w: &[u8]| {
            let mut r = w.to_vec();
            r.extend_from_slice(b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
            r
        };
        b.iter(|| assert!(one_step(&mut s, capture.clone(), &reply)))
    });
    let mut data = StepPlan::command("send", Duration::from_secs(5));
    let mut plan = DataPlan::new(block(1460));
    plan.chunk = Some(1460);
    data.action = PlanAction::Data(plan);
    g.throughput(Throughput::Bytes(1460));
    g.bench_function("send_data_1460", |b| {
        let mut s = Session::new(Vec::new());
        let reply = |w: &[u8]| {
            if w.starts_with(b"AT+CIPSEND=") {
                let mut r = w.to_vec();
                r.extend_from_slice(b"\r\n> ");
                r
            } else {
                let mut r = w.to_vec();
                r.extend_from_slice(b"\r\nSEND OK\r\n");
                r
            }
        };
        b.iter(|| assert!(one_step(&mut s, data.clone(), &reply)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = framer, session
}
criterion_main!(benches);
