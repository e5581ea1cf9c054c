//! Every shipped recipe, run by the sans-IO job and engine against the emulated SIM7000 in
//! memory (issue 12 §6): `emulator::memory::Bench` under a virtual clock, its connections
//! served by the embedded broker's sans-IO core (`broker::memory`). No pseudo-terminal, no
//! thread, no socket, no sleep: the `nbiot` profile's seconds of modem time (registration,
//! PDP activation, CONNECT OK, SEND OK latencies) cost milliseconds of CPU.
//!
//! Each recipe asserts its verdict and, for MQTT recipes, what the broker received (topic,
//! payload, QoS). A property test varies latencies, dripping output and URC noise; every
//! recipe still passes. `harness_cost` prints what a run costs (wall and virtual time).

#![cfg(feature = "embedded-broker")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sim7k::broker::ReceivedMessage;
use sim7k::broker::memory::{BrokerNetwork, MemoryBroker};
use sim7k::emulator::{Bench, EmulatorConfig, Fault, Latency, Span};
use sim7k::job::{Job, JobAction, JobEvent, JobOptions, RunOutcome, Verdict};
use sim7k::recipe::load::{LoadOptions, load};

/// Bounds one run's loop (a bug must fail the test, not hang it).
const MAX_ROUNDS: usize = 2_000_000;

/// What a run in memory produced.
struct Run {
    outcome: RunOutcome,
    received: Vec<ReceivedMessage>,
    events: Vec<JobEvent>,
    /// Virtual time the run took.
    modem_time: Duration,
    /// Real time it took.
    wall: Duration,
}

fn recipe_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("recipes")
        .join(name)
}

/// Run `name` (relative to `recipes/`) with `set` vars on an emulated modem with `config`.
fn run(name: &str, set: &[(&str, &str)], config: EmulatorConfig) -> Run {
    let opts = LoadOptions {
        overrides: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    };
    let recipe = match load(&recipe_path(name), &opts) {
        Ok(r) => r,
        Err(e) => panic!("{name} does not load: {e}"),
    };
    let compiled = match sim7k::script::compile(&recipe) {
        Ok(c) => c,
        Err(e) => panic!("{name}: scripts do not compile: {e:?}"),
    };
    let mut host = sim7k::script::Host::new(compiled);
    let wall = Instant::now();
    let t0 = Instant::now();
    let broker = MemoryBroker::default();
    let mut bench = Bench::new(config, broker.network(t0), t0);
    let options = JobOptions {
        port: "memory".into(),
        started: 0.0,
    };
    let mut job = Job::new(&recipe, options, t0).with_scripts(&mut host);
    let events = drive(&mut job, &mut bench);
    let modem_time = bench.now().saturating_duration_since(t0);
    let outcome = job.into_outcome();
    Run {
        outcome,
        received: broker.received(),
        events,
        modem_time,
        wall: wall.elapsed(),
    }
}

/// Drive the job against the bench: bytes both ways, virtual time moved to whichever comes
/// first, the job's wake-up or the modem's next event.
fn drive(job: &mut Job<'_>, bench: &mut Bench<BrokerNetwork>) -> Vec<JobEvent> {
    let mut events = Vec::new();
    let mut due_now = 0u32;
    for _ in 0..MAX_ROUNDS {
        let now = bench.now();
        let action = job.poll(now);
        events.extend(std::iter::from_fn(|| job.poll_event()));
        match action {
            JobAction::Write(bytes) => bench.write(&bytes),
            JobAction::Wait(until) => {
                let out = bench.read();
                if !out.is_empty() {
                    job.handle_bytes(&out, now);
                    continue;
                }
                let target = bench.next_deadline().map_or(until, |d| d.min(until));
                if target > now {
                    due_now = 0;
                    bench.advance_to(target);
                } else {
                    // Due now: poll again; a wake-up that stays due moves time by 1 ms.
                    due_now += 1;
                    if due_now > 2 {
                        bench.advance(Duration::from_millis(1));
                    }
                }
                let out = bench.read();
                if !out.is_empty() {
                    job.handle_bytes(&out, bench.now());
                }
            }
            JobAction::Done => {
                events.extend(std::iter::from_fn(|| job.poll_event()));
                return events;
            }
        }
    }
    panic!("the run did not end within {MAX_ROUNDS} rounds");
}

/// The `nbiot` profile, as `sim7k run --emulate --emulator-profile nbiot` uses it.
fn nbiot() -> EmulatorConfig {
    EmulatorConfig::nbiot_demo()
}

fn explain(r: &Run) -> String {
    let notes: Vec<&str> = r
        .events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Note(n) | JobEvent::Traffic(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    let start = notes.len().saturating_sub(60);
    format!(
        "{:?}: {:?}\n{}",
        r.outcome.verdict,
        r.outcome.failure.as_ref().map(|f| (&f.step, &f.reason)),
        notes[start..].join("\n")
    )
}

fn passes(r: &Run) {
    assert_eq!(r.outcome.verdict, Verdict::Passed, "{}", explain(r));
    assert_eq!(r.outcome.exit_code, 0);
}

/// One PUBLISH the broker received: topic, payload, QoS.
fn published(r: &Run) -> Vec<(String, String, u8)> {
    r.received
        .iter()
        .map(|m| {
            (
                m.topic.clone(),
                String::from_utf8_lossy(&m.payload).into_owned(),
                m.qos,
            )
        })
        .collect()
}

fn said(r: &Run, text: &str) -> bool {
    r.outcome.said.iter().any(|l| l.contains(text))
}

fn imei() -> String {
    sim7k::emulator::Identity::default().imei
}

/// A publish recipe (mqtt-publish.yaml or a wrapper of it): one PUBLISH of the default
/// payload, DISCONNECT and CIPSHUT in the teardown.
fn publishes_hello(name: &str, topic: &str, qos: u8) {
    let r = run(name, &[], nbiot());
    passes(&r);
    assert_eq!(
        published(&r),
        [(topic.to_string(), "hello from sim7k".to_string(), qos)],
        "{name}"
    );
    assert!(
        said(&r, "published `hello from sim7k`"),
        "{:?}",
        r.outcome.said
    );
    let teardown: Vec<&str> = r
        .outcome
        .steps
        .iter()
        .filter(|s| s.teardown)
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        teardown
            .iter()
            .any(|n| n.contains("CIPSHUT") || n.contains("shut")),
        "{teardown:?}"
    );
}

#[test]
fn mqtt_publish() {
    publishes_hello("mqtt-publish.yaml", "sim7k/demo", 0);
}

#[test]
fn mqtt_qos1() {
    publishes_hello("mqtt-qos1.yaml", "sim7k/qos1", 1);
}

#[test]
fn carrier_1nce_catm() {
    publishes_hello("1nce-catm.yaml", "sim7k/demo", 0);
}

#[test]
fn carrier_chunghwa_nbiot() {
    publishes_hello("chunghwa-nbiot.yaml", "sim7k/demo", 0);
}

#[test]
fn carrier_fareastone_nbiot() {
    publishes_hello("fareastone-nbiot.yaml", "sim7k/demo", 0);
}

#[test]
fn carrier_hologram_catm() {
    publishes_hello("hologram-catm.yaml", "sim7k/demo", 0);
}

#[test]
fn carrier_soracom_catm() {
    publishes_hello("soracom-catm.yaml", "sim7k/demo", 0);
}

#[test]
fn carrier_taiwan_mobile_nbiot() {
    publishes_hello("taiwan-mobile-nbiot.yaml", "sim7k/demo", 0);
}

#[test]
fn carrier_twilio_catm() {
    publishes_hello("twilio-catm.yaml", "sim7k/demo", 0);
}

#[test]
fn mqtt_native() {
    let r = run("mqtt-native.yaml", &[], nbiot());
    passes(&r);
    assert_eq!(
        published(&r),
        [(
            "sim7k/native".to_string(),
            "hello from the SIM7000's own MQTT client".to_string(),
            0
        )]
    );
}

/// The subscribe recipe's loopback: two messages out, both back through the subscription,
/// counted by the `on_message` hook of scripts/mqtt.rhai, recorded in `messages`.
#[test]
fn mqtt_subscribe() {
    let r = run("mqtt-subscribe.yaml", &[("loopback", "2")], nbiot());
    passes(&r);
    assert_eq!(
        published(&r),
        [
            ("sim7k/demo".to_string(), "loopback 1".to_string(), 0),
            ("sim7k/demo".to_string(), "loopback 2".to_string(), 0)
        ]
    );
    let got: Vec<(&str, &str)> = r
        .outcome
        .messages
        .iter()
        .map(|m| (m.topic.as_str(), m.payload.as_str()))
        .collect();
    assert_eq!(
        got,
        [("sim7k/demo", "loopback 1"), ("sim7k/demo", "loopback 2")]
    );
    assert!(said(&r, "received 2 message(s)"), "{:?}", r.outcome.said);
}

#[test]
fn modem_info() {
    let r = run("modem-info.yaml", &[], nbiot());
    passes(&r);
    assert!(r.received.is_empty());
    assert_eq!(
        r.outcome.captures.get("imei").map(String::as_str),
        Some(imei().as_str())
    );
}

#[test]
fn network_attach() {
    let r = run("network-attach.yaml", &[], nbiot());
    passes(&r);
    assert!(r.received.is_empty());
    assert_eq!(
        r.outcome.captures.get("ip").map(String::as_str),
        Some("10.64.23.17"),
        "{:?}",
        r.outcome.captures
    );
}

#[test]
fn provision_sim7000() {
    let r = run("provision-sim7000.yaml", &[], nbiot());
    passes(&r);
    let got = published(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    let (topic, payload, qos) = &got[0];
    assert_eq!(topic, &format!("factory/{}/provisioned", imei()));
    assert!(
        payload.contains(&format!("\"imei\":\"{}\"", imei())),
        "{payload}"
    );
    assert_eq!(*qos, 1);
    // Validated captures are measured once, at validation.
    assert!(!r.outcome.measurements.is_empty());
    assert!(r.outcome.measurements.iter().all(|m| m.passed));
}

fn carrier_profile(name: &str) {
    let r = run(&format!("carriers/{name}.yaml"), &[], nbiot());
    passes(&r);
    assert!(r.received.is_empty());
}

#[test]
fn profile_1nce() {
    carrier_profile("1nce");
}

#[test]
fn profile_chunghwa() {
    carrier_profile("chunghwa");
}

#[test]
fn profile_fareastone() {
    carrier_profile("fareastone");
}

#[test]
fn profile_hologram() {
    carrier_profile("hologram");
}

#[test]
fn profile_soracom() {
    carrier_profile("soracom");
}

#[test]
fn profile_taiwan_mobile() {
    carrier_profile("taiwan-mobile");
}

#[test]
fn profile_twilio() {
    carrier_profile("twilio");
}

/// Recipes in `recipes/` with a test above. TLS recipes run over a TLS server and are
/// tested with it (tests/tls_*.rs).
const COVERED: &[&str] = &[
    "1nce-catm.yaml",
    "chunghwa-nbiot.yaml",
    "fareastone-nbiot.yaml",
    "hologram-catm.yaml",
    "modem-info.yaml",
    "mqtt-native.yaml",
    "mqtt-publish.yaml",
    "mqtt-qos1.yaml",
    "mqtt-subscribe.yaml",
    "network-attach.yaml",
    "provision-sim7000.yaml",
    "soracom-catm.yaml",
    "taiwan-mobile-nbiot.yaml",
    "twilio-catm.yaml",
    "carriers/1nce.yaml",
    "carriers/chunghwa.yaml",
    "carriers/fareastone.yaml",
    "carriers/hologram.yaml",
    "carriers/soracom.yaml",
    "carriers/taiwan-mobile.yaml",
    "carriers/twilio.yaml",
];

/// A recipe added to `recipes/` gets a test here.
#[test]
fn every_shipped_recipe_has_a_test() {
    let root = recipe_path("");
    for dir in ["", "carriers"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let Some(file) = p.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let name = if dir.is_empty() {
                file.to_string()
            } else {
                format!("{dir}/{file}")
            };
            let tls = ["mqtts", "aws-iot", "hivemq-cloud"]
                .iter()
                .any(|t| name.contains(t));
            assert!(
                tls || COVERED.contains(&name.as_str()),
                "recipes/{name} has no test in tests/in_memory.rs"
            );
        }
    }
}

/// What the harness costs: each recipe's wall time against its modem time (printed; run
/// with `--nocapture`). No timing is asserted (the machine is shared).
#[test]
fn harness_cost() {
    let mut lines = Vec::new();
    for name in COVERED {
        let set: &[(&str, &str)] = if *name == "mqtt-subscribe.yaml" {
            &[("loopback", "2")]
        } else {
            &[]
        };
        let r = run(name, set, nbiot());
        passes(&r);
        lines.push(format!(
            "{name:<28} modem {:>7.2} s  wall {:>7.2} ms",
            r.modem_time.as_secs_f64(),
            r.wall.as_secs_f64() * 1000.0
        ));
    }
    println!("in-memory harness, nbiot profile:\n{}", lines.join("\n"));
}

/// A latency span from two millisecond bounds.
fn span(a: u64, b: u64) -> Span {
    Span::millis(a.min(b), a.max(b))
}

fn noisy_config(seed: u64, lat: [u64; 8], drip: Option<u64>, urc_noise: bool) -> EmulatorConfig {
    let mut c = nbiot();
    c.seed = seed;
    c.latency = Latency {
        boot: Duration::from_millis(lat[0] % 2000),
        attach: span(lat[1] % 3000, lat[2] % 3000),
        connect: span(lat[3] % 3000, lat[4] % 3000),
        connect_fail: Span::millis(5000, 5000),
        connect_timeout: Duration::from_secs(75),
        send: span(lat[5] % 1500, lat[6] % 1500),
    };
    c.registration.searching_for = Duration::from_millis(lat[7] % 8000);
    if let Some(ms) = drip {
        c.faults.push(Fault::Drip {
            per_byte: Duration::from_millis(ms),
        });
    }
    if urc_noise {
        c.faults.push(Fault::UrcInResponse {
            command: None,
            times: None,
        });
    }
    c
}

/// The faults the property test mixes in really act: dripping output (one byte every 2 ms)
/// and URCs inside every reply take modem time, and the recipe still passes.
#[test]
fn drip_and_urc_noise_act_and_the_recipe_passes() {
    let quiet = run("mqtt-publish.yaml", &[], nbiot());
    let mut noisy = nbiot();
    noisy.faults.push(Fault::Drip {
        per_byte: Duration::from_millis(2),
    });
    noisy.faults.push(Fault::UrcInResponse {
        command: None,
        times: None,
    });
    let r = run("mqtt-publish.yaml", &[], noisy);
    passes(&r);
    assert_eq!(published(&r).len(), 1);
    // Virtual time: the bytes dripped (no wall-clock timing here).
    assert!(
        r.modem_time > quiet.modem_time + Duration::from_secs(1),
        "{:?} vs {:?}",
        r.modem_time,
        quiet.modem_time
    );
    let urcs = r
        .events
        .iter()
        .filter(|e| matches!(e, JobEvent::Traffic(l) if l.contains("PSUTTZ")))
        .count();
    assert!(urcs > 10, "{urcs} URC lines");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Random latencies, dripping output and URC noise: every recipe still passes, and the
    /// MQTT recipes still deliver their message.
    #[test]
    fn every_recipe_passes_under_random_latency_drip_and_urc_noise(
        seed in any::<u64>(),
        lat in proptest::array::uniform8(0u64..10_000),
        drip in proptest::option::of(0u64..3),
        urc_noise in any::<bool>(),
    ) {
        let config = noisy_config(seed, lat, drip, urc_noise);
        for name in COVERED {
            let set: &[(&str, &str)] = if *name == "mqtt-subscribe.yaml" {
                &[("loopback", "2")]
            } else {
                &[]
            };
            let r = run(name, set, config.clone());
            prop_assert_eq!(r.outcome.verdict, Verdict::Passed, "{}: {}", name, explain(&r));
            let expect = match *name {
                "mqtt-subscribe.yaml" => 2,
                "modem-info.yaml" | "network-attach.yaml" => 0,
                n if n.starts_with("carriers/") => 0,
                _ => 1,
            };
            prop_assert_eq!(r.received.len(), expect, "{}", name);
        }
    }
}
