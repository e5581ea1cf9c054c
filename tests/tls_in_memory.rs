//! recipes/mqtts-publish.yaml run by the sans-IO job and engine against the emulated
//! SIM7000 in memory, under a virtual clock, its connection ending at an in-memory rustls
//! server in front of the embedded broker's core (tests/tls_support/bench.rs): the shipped
//! TLS recipe in every receive mode (`AT+CIPRXGET=1` reads, `+IPD` headers, raw push),
//! with bytes dripping, URCs inside replies and extra `+CIPRXGET: 1` lines, at every QoS.
//! (Chunk sizes of the handshake and data sends are covered step by step in
//! tests/tls_engine.rs.)

mod tls_support;

use std::time::{Duration, Instant};

use sim7k::emulator::{Bench, EmulatorConfig, Fault};
use sim7k::job::{Job, JobAction, JobOptions, RunOutcome, Verdict};
use sim7k::recipe::load::{LoadOptions, load};
use tls_support::bench::{Certs, TlsBroker};
use tls_support::memory::ServerOpts;

/// Bounds one run's loop (a bug must fail the test, not hang it).
const MAX_ROUNDS: usize = 2_000_000;

/// Run mqtts-publish.yaml with `set` against a TLS broker with `faults`; the outcome and
/// what the broker received (topic, payload, QoS).
fn run(
    certs: &Certs,
    set: &[(&str, String)],
    faults: Vec<Fault>,
) -> (RunOutcome, Vec<(String, Vec<u8>, u8)>) {
    run_recipe(
        "mqtts-publish.yaml",
        certs,
        &ServerOpts::default(),
        set,
        faults,
    )
}

/// Run `recipes/<name>` against a TLS broker with `server` options.
fn run_recipe(
    name: &str,
    certs: &Certs,
    server: &ServerOpts,
    set: &[(&str, String)],
    faults: Vec<Fault>,
) -> (RunOutcome, Vec<(String, Vec<u8>, u8)>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("recipes")
        .join(name);
    let mut overrides = vec![
        ("broker_host".to_string(), "broker.test".to_string()),
        (
            "ca_file".to_string(),
            certs.ca.issued.cert.display().to_string(),
        ),
    ];
    overrides.extend(set.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let opts = LoadOptions {
        overrides,
        ..LoadOptions::default()
    };
    let recipe = load(&path, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let compiled = sim7k::script::compile(&recipe).unwrap_or_else(|e| panic!("{e:?}"));
    let mut host = sim7k::script::Host::new(compiled);
    let t0 = Instant::now();
    let config = EmulatorConfig {
        faults,
        ..EmulatorConfig::nbiot_demo()
    };
    let net = TlsBroker::new(&certs.server, server, t0);
    let mut bench = Bench::new(config, net, t0);
    let options = JobOptions {
        port: "memory".into(),
        started: 0.0,
    };
    let mut job = Job::new(&recipe, options, t0).with_scripts(&mut host);
    drive(&mut job, &mut bench);
    let received = bench
        .network()
        .broker
        .received()
        .iter()
        .map(|m| (m.topic.clone(), m.payload.to_vec(), m.qos))
        .collect();
    (job.into_outcome(), received)
}

/// Drive the job against the bench (as tests/in_memory.rs does).
fn drive(job: &mut Job<'_>, bench: &mut Bench<TlsBroker>) {
    let mut due_now = 0u32;
    for _ in 0..MAX_ROUNDS {
        let now = bench.now();
        let action = job.poll(now);
        while let Some(e) = job.poll_event() {
            if std::env::var("TLS_MEM_DEBUG").is_ok() {
                eprintln!("{e:?}");
            }
        }
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
            JobAction::Done => return,
        }
    }
    panic!("the run did not end within {MAX_ROUNDS} rounds");
}

/// The receive modes as the recipe's vars: (name, ciprxget, ciphead).
const MODES: [(&str, &str, &str); 3] = [
    ("CIPRXGET manual", "1", "0"),
    ("+IPD", "0", "1"),
    ("raw push", "0", "0"),
];

/// Every byte value, CR LF and 0x1A included.
fn payload_hex(n: usize) -> (String, Vec<u8>) {
    let bytes: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
    (sim7k::util::hex::hex(&bytes, ""), bytes)
}

#[test]
fn mqtts_publish_in_every_receive_mode_and_qos() {
    let certs = Certs::new("mem-mqtts-modes");
    let (hex, bytes) = payload_hex(2000);
    for (mode, rxget, head) in MODES {
        for qos in 0..=2u8 {
            let (outcome, received) = run(
                &certs,
                &[
                    ("ciprxget", rxget.into()),
                    ("ciphead", head.into()),
                    ("qos", qos.to_string()),
                    ("payload_hex", hex.clone()),
                    ("topic", "sim7k/tls/mem".into()),
                ],
                Vec::new(),
            );
            assert_eq!(
                outcome.verdict,
                Verdict::Passed,
                "{mode} QoS {qos}: {:?}",
                outcome.failure
            );
            assert_eq!(
                received,
                vec![("sim7k/tls/mem".to_string(), bytes.clone(), qos)],
                "{mode} QoS {qos}"
            );
        }
    }
}

#[test]
fn mqtts_publish_survives_dripping_urcs_and_extra_rxget_lines() {
    let certs = Certs::new("mem-mqtts-faults");
    let faults = [
        Fault::Drip {
            per_byte: Duration::from_micros(200),
        },
        Fault::UrcInResponse {
            command: None,
            times: None,
        },
        Fault::ExtraRxget { lines: 3 },
    ];
    for fault in faults {
        for (mode, rxget, head) in MODES {
            let (outcome, received) = run(
                &certs,
                &[
                    ("ciprxget", rxget.into()),
                    ("ciphead", head.into()),
                    ("qos", "1".into()),
                ],
                vec![fault.clone()],
            );
            assert_eq!(
                outcome.verdict,
                Verdict::Passed,
                "{fault:?} {mode}: {:?}",
                outcome.failure
            );
            assert_eq!(received.len(), 1, "{fault:?} {mode}");
        }
    }
}

#[test]
fn aws_iot_mutual_tls_on_443_with_alpn() {
    let certs = Certs::new("mem-aws-iot");
    let device = certs
        .pki
        .client(&certs.ca, "device", "thing-1", tls_support::Alg::EcdsaP256);
    let server = ServerOpts {
        client_ca: Some(certs.ca.issued.cert_pem.clone()),
        alpn: vec![b"x-amzn-mqtt-ca".to_vec()],
        ..ServerOpts::default()
    };
    let set = [
        ("endpoint", "broker.test".to_string()),
        ("broker_port", "443".into()),
        ("alpn", "x-amzn-mqtt-ca".into()),
        ("client_cert", device.cert.display().to_string()),
        ("client_key", device.key.display().to_string()),
    ];
    let (outcome, received) = run_recipe("aws-iot.yaml", &certs, &server, &set, Vec::new());
    assert_eq!(outcome.verdict, Verdict::Passed, "{:?}", outcome.failure);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, "sim7k/telemetry");
    assert_eq!(received[0].2, 1, "AWS IoT recipe publishes at QoS 1");

    // Without the device certificate: the named failure, exit 1.
    let set = [
        ("endpoint", "broker.test".to_string()),
        ("client_cert", String::new()),
        ("client_key", String::new()),
    ];
    let (outcome, received) = run_recipe("aws-iot.yaml", &certs, &server, &set, Vec::new());
    assert_eq!(outcome.verdict, Verdict::Failed);
    let reason = outcome.failure.map(|f| f.reason).unwrap_or_default();
    assert!(reason.contains("requires a client certificate"), "{reason}");
    assert!(received.is_empty());
}
