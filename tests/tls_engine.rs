//! TLS through the step engine and the emulated SIM7000, in memory under a virtual clock:
//! the handshake and MQTT over it in every receive mode (`+CIPRXGET: 2` reads, `+IPD`,
//! raw push framed by record lengths), every chunk size, bytes dripping, URCs inside
//! replies, extra `+CIPRXGET: 1` lines; payloads byte-exact; `close_notify` before
//! `AT+CIPSHUT`; the transcript's record and decrypted-packet lines; resumption within a
//! run (TLS 1.2 and 1.3) with the second handshake's bytes measured; keep-alive over TLS;
//! failures named.

mod tls_support;

use sim7k::engine::{Event, Failure, MqttWant, TlsTrace};
use sim7k::mqtt::{PacketType, QoS};
use sim7k::tls::TlsVersion;
use std::time::{Duration, Instant};
use tls_support::bench::{Certs, Rig, Rx, TlsBroker, cmd, handshake, mqtt};
use tls_support::memory::ServerOpts;

fn rig(certs: &Certs, opts: &ServerOpts, faults: Vec<sim7k::emulator::Fault>) -> Rig {
    let start = Instant::now();
    Rig::new(TlsBroker::new(&certs.server, opts, start), start, faults)
}

fn payload(n: usize) -> Vec<u8> {
    // Every byte value, CR LF pairs and 0x1A included.
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The broker received exactly these messages.
fn received(r: &Rig) -> Vec<(String, Vec<u8>, u8)> {
    r.bench
        .network()
        .broker
        .received()
        .iter()
        .map(|m| (m.topic.clone(), m.payload.to_vec(), m.qos))
        .collect()
}

#[test]
fn publish_over_tls_in_every_receive_mode_and_qos() {
    let certs = Certs::new("engine-modes");
    let client = certs.client(|_| {});
    for rx in [Rx::Manual, Rx::Ipd, Rx::Push] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut r = rig(&certs, &ServerOpts::default(), Vec::new());
            r.open(rx);
            let o = r.ok(handshake(&client, None));
            let caps: std::collections::HashMap<_, _> = o.captures.iter().cloned().collect();
            assert!(caps.contains_key("tls_version"), "{caps:?}");
            let body = payload(1024);
            r.publish("t/tls", &body, qos, None);
            assert_eq!(
                received(&r),
                vec![("t/tls".to_string(), body.clone(), qos as u8)],
                "{rx:?} {qos:?}"
            );
        }
    }
}

#[test]
fn handshake_records_go_out_in_every_chunk_size() {
    let certs = Certs::new("engine-chunks");
    let client = certs.client(|_| {});
    for chunk in [1, 7, 64, 500, 1460] {
        let mut r = rig(&certs, &ServerOpts::default(), Vec::new());
        r.open(Rx::Ipd);
        r.ok(handshake(&client, Some(chunk)));
        let body = payload(3000);
        r.publish("t/chunk", &body, QoS::AtLeastOnce, Some(chunk));
        assert_eq!(received(&r).len(), 1, "chunk {chunk}");
        assert_eq!(received(&r)[0].1, body, "chunk {chunk}");
    }
}

#[test]
fn dripping_bytes_urcs_and_extra_rxget_lines_do_not_break_tls() {
    use sim7k::emulator::Fault;
    let certs = Certs::new("engine-faults");
    let client = certs.client(|_| {});
    let faults = [
        vec![Fault::Drip {
            per_byte: Duration::from_micros(100),
        }],
        vec![Fault::UrcInResponse {
            command: None,
            times: None,
        }],
        vec![Fault::ExtraRxget { lines: 3 }],
    ];
    for f in faults {
        for rx in [Rx::Manual, Rx::Ipd, Rx::Push] {
            let mut r = rig(&certs, &ServerOpts::default(), f.clone());
            r.open(rx);
            r.ok(handshake(&client, None));
            let body = payload(2000);
            r.publish("t/faults", &body, QoS::ExactlyOnce, None);
            assert_eq!(
                received(&r),
                vec![("t/faults".into(), body, 2)],
                "{f:?} {rx:?}"
            );
        }
    }
}

#[test]
fn close_notify_goes_out_before_the_connection_closes() {
    let certs = Certs::new("engine-close");
    let client = certs.client(|_| {});
    let mut r = rig(&certs, &ServerOpts::default(), Vec::new());
    r.open(Rx::Manual);
    r.ok(handshake(&client, None));
    r.publish("t/close", b"x", QoS::AtMostOnce, None);
    r.ok(cmd("AT+CIPSHUT"));
    let side = r
        .bench
        .network()
        .sides
        .values()
        .next()
        .expect("a connection");
    assert!(side.tls.got_close_notify, "the server got close_notify");
    assert!(
        r.tls_lines().iter().any(|l| l == "tls > close_notify"),
        "{:?}",
        r.tls_lines()
    );
}

#[test]
fn transcript_shows_records_and_decrypted_packets_never_secrets() {
    let certs = Certs::new("engine-transcript");
    let client = certs.client(|_| {});
    let mut r = rig(&certs, &ServerOpts::default(), Vec::new());
    r.open(Rx::Ipd);
    r.ok(handshake(&client, None));
    r.publish("t/view", b"visible payload", QoS::AtLeastOnce, None);
    let lines = r.tls_lines();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("tls > handshake ClientHello"), "{lines:#?}");
    assert!(has("tls < handshake ServerHello"), "{lines:#?}");
    assert!(has("tls: handshake complete: TLS 1.3"), "{lines:#?}");
    assert!(has("tls > application_data (encrypted)"), "{lines:#?}");
    assert!(has("tls > decrypted: CONNECT"), "{lines:#?}");
    assert!(has("tls > decrypted: PUBLISH"), "{lines:#?}");
    assert!(has("tls < decrypted: CONNACK"), "{lines:#?}");
    assert!(has("tls < decrypted: PUBACK"), "{lines:#?}");
}

#[test]
fn resumption_within_a_run_costs_fewer_bytes() {
    let certs = Certs::new("engine-resume");
    for version in [TlsVersion::V1_3, TlsVersion::V1_2] {
        let client = certs.client(|c| {
            c.min_version = version;
            c.max_version = version;
        });
        let mut r = rig(&certs, &ServerOpts::default(), Vec::new());
        let mut sizes = Vec::new();
        for round in 0..2 {
            if round == 0 {
                r.open(Rx::Manual);
            } else {
                let mut open = cmd("AT+CIPSTART=\"TCP\",\"broker.test\",8883");
                open.expect = vec![sim7k::engine::Matcher::parse("CONNECT OK").unwrap()];
                r.ok(open);
            }
            let o = r.ok(handshake(&client, None));
            let caps: std::collections::HashMap<_, _> = o.captures.iter().cloned().collect();
            assert_eq!(caps["tls_resumed"], (round == 1).to_string(), "{version:?}");
            let total: u64 = caps["tls_handshake_sent"].parse::<u64>().unwrap()
                + caps["tls_handshake_received"].parse::<u64>().unwrap();
            sizes.push(total);
            r.publish("t/resume", b"hi", QoS::AtLeastOnce, None);
            r.ok(cmd("AT+CIPCLOSE"));
        }
        eprintln!(
            "{version}: full handshake {} B, resumed {} B",
            sizes[0], sizes[1]
        );
        // With this small ECDSA certificate the certificate flight is ~40 % of a full
        // TLS 1.3 handshake; a resumed one skips it (and its signature).
        assert!(
            sizes[1] < sizes[0] * 3 / 4,
            "{version}: resumed {} B is not well under the full {} B",
            sizes[1],
            sizes[0]
        );
    }
}

#[test]
fn keep_alive_pings_go_through_tls() {
    let certs = Certs::new("engine-keepalive");
    let client = certs.client(|_| {});
    let mut r = rig(&certs, &ServerOpts::default(), Vec::new());
    r.open(Rx::Manual);
    r.ok(handshake(&client, None));
    let mut bytes = tls_support::bench::connect_packet(5);
    bytes.extend_from_slice(&tls_support::bench::publish_packet(
        "t/ka",
        b"x",
        QoS::AtMostOnce,
    ));
    r.ok(tls_support::bench::data(&bytes, None));
    r.ok(mqtt(MqttWant::Packet(PacketType::ConnAck), None));
    // A 20 s listen: a PINGREQ every 5 s, each answered.
    let mut listen = mqtt(MqttWant::Messages { count: None }, None);
    if let sim7k::engine::PlanAction::Mqtt(m) = &mut listen.action {
        m.duration = Some(Duration::from_secs(20));
    }
    r.ok(listen);
    let lines = r.tls_lines();
    let pings = lines
        .iter()
        .filter(|l| l.contains("decrypted: PINGREQ"))
        .count();
    let pongs = lines
        .iter()
        .filter(|l| l.contains("decrypted: PINGRESP"))
        .count();
    assert!(pings >= 3, "{pings} PINGREQ in {lines:#?}");
    assert!(pongs >= 3, "{pongs} PINGRESP");
}

#[test]
fn an_unknown_ca_fails_the_handshake_by_name() {
    let certs = Certs::new("engine-unknown-ca");
    let other = certs.pki.ca("other", tls_support::Alg::EcdsaP256);
    let client = {
        let config = sim7k::tls::TlsConfig {
            ca_file: Some(other.issued.cert.clone()),
            ..Default::default()
        };
        std::sync::Arc::new(config.build().unwrap())
    };
    let mut r = rig(&certs, &ServerOpts::default(), Vec::new());
    r.open(Rx::Manual);
    let o = r.step(handshake(&client, None));
    match &o.failure {
        Some(Failure::Tls(f)) => {
            assert_eq!(f.name(), "unknown-ca");
            assert!(f.to_string().contains("CN=broker.test"), "{f}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.failure.unwrap().kind(), sim7k::exit::Exit::StepFailed);
    // The alert went out before the step ended: the server saw it.
    let side = r
        .bench
        .network()
        .sides
        .values()
        .next()
        .expect("a connection");
    assert!(side.tls.error.is_some(), "the server got the alert");
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::Tls(TlsTrace::Failed(_)))),
        "traced"
    );
}
