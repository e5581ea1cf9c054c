//! MQTT over TLS to a real mosquitto, with the crate's own codec, over a real socket moved as
//! the modem moves bytes: CONNECT/CONNACK, SUBSCRIBE, PUBLISH of 0 B, 1 KB and 1 MiB at QoS
//! 0, 1 and 2 received back byte-exact, PINGREQ/PINGRESP, DISCONNECT and close_notify (no
//! "unexpected eof" in the broker's log), mutual TLS with `require_certificate true`, and
//! resumption against the broker.

mod tls_support;

use sim7k::mqtt::{
    Connect, Disconnect, Packet, Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS,
    StreamDecoder, Subscribe,
};
use sim7k::tls::{TlsClient, TlsConfig, TlsFailure, TlsVersion};
use std::time::Duration;
use tls_support::memory::Feed;
use tls_support::net::Link;
use tls_support::peers::MosquittoTls;
use tls_support::{ALWAYS, Alg, Ca, Issued, Pki};

const PROTOCOL: Protocol = Protocol::V311;

/// An MQTT client over a TLS link.
struct Mqtt {
    link: Link,
    decoder: StreamDecoder,
}

impl Mqtt {
    fn open(
        client: &TlsClient,
        broker: &MosquittoTls,
        feed: Feed,
        id: &str,
    ) -> Result<Mqtt, TlsFailure> {
        let tls = client.connect("localhost").expect("connect");
        let mut link = Link::connect(broker.addr, tls, feed);
        link.handshake()?;
        let mut mqtt = Mqtt {
            link,
            decoder: StreamDecoder::new(PROTOCOL).with_max_packet_size(4 << 20),
        };
        mqtt.send(Connect::new(PROTOCOL, id).into())?;
        match mqtt.packet()? {
            Packet::ConnAck(ack) => assert_eq!(ack.code, 0, "CONNACK refused"),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        Ok(mqtt)
    }

    fn send(&mut self, p: Packet) -> Result<(), TlsFailure> {
        self.link.send(&p.encode(PROTOCOL).expect("encode"))
    }

    fn packet(&mut self) -> Result<Packet, TlsFailure> {
        loop {
            if let Some(p) = self.decoder.next_packet().expect("decode") {
                return Ok(p);
            }
            let bytes = self.link.recv_until(|b| !b.is_empty())?;
            assert!(!bytes.is_empty(), "the broker closed the connection");
            self.decoder.push(&bytes);
        }
    }

    /// Publish and wait for the broker's acknowledgement and the copy our subscription gets;
    /// returns the payload received.
    fn round_trip(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        id: u16,
    ) -> Result<Vec<u8>, TlsFailure> {
        let mut publish = Publish::new(topic, payload.to_vec());
        publish.qos = qos;
        publish.packet_id = (qos != QoS::AtMostOnce).then_some(id);
        self.send(publish.into())?;
        let mut ours_done = qos == QoS::AtMostOnce;
        let mut received: Option<Vec<u8>> = None;
        let mut theirs_done = false;
        while !(ours_done && theirs_done) {
            match self.packet()? {
                Packet::PubAck(a) if a.packet_id == id => ours_done = true,
                Packet::PubRec(r) if r.packet_id == id => self.send(PubRel::new(id).into())?,
                Packet::PubComp(c) if c.packet_id == id => ours_done = true,
                Packet::Publish(p) => {
                    assert_eq!(p.topic, topic);
                    match (p.qos, p.packet_id) {
                        (QoS::AtLeastOnce, Some(pid)) => {
                            self.send(PubAck::new(pid).into())?;
                            theirs_done = true;
                        }
                        (QoS::ExactlyOnce, Some(pid)) => self.send(PubRec::new(pid).into())?,
                        _ => theirs_done = true,
                    }
                    received = Some(p.payload);
                }
                Packet::PubRel(r) => {
                    self.send(PubComp::new(r.packet_id).into())?;
                    theirs_done = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        Ok(received.expect("our subscription's copy"))
    }

    fn disconnect(mut self) {
        self.send(Disconnect::default().into()).expect("DISCONNECT");
        self.link.close();
    }
}

struct Broker {
    _pki: Pki,
    ca: Ca,
    device: Issued,
    broker: MosquittoTls,
}

fn broker(tag: &str, extra: &str) -> Option<Broker> {
    let pki = Pki::new(tag);
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server = pki.server(&ca, "server", &["localhost"], Alg::Rsa2048, ALWAYS);
    let device = pki.client(&ca, "device", "device-1", Alg::EcdsaP256);
    let broker = MosquittoTls::start(&ca.issued.cert, &server.cert, &server.key, extra)?;
    Some(Broker {
        _pki: pki,
        ca,
        device,
        broker,
    })
}

fn trusting(ca: &Ca, version: TlsVersion) -> TlsConfig {
    TlsConfig {
        ca_file: Some(ca.issued.cert.clone()),
        max_version: version,
        min_version: version,
        ..TlsConfig::default()
    }
}

#[test]
fn publish_and_subscribe_back_byte_exact_at_every_qos_over_both_versions() {
    let Some(b) = broker("mosq-data", "") else {
        return;
    };
    let small: Vec<u8> = (0..1024u32).map(|i| (i % 253) as u8).collect();
    let big: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let client = trusting(&b.ca, version).build().expect("client");
        let id = format!("sim7k-tls-{}", version.name());
        let mut mqtt = Mqtt::open(&client, &b.broker, Feed::modem(), &id).expect("session");
        assert_eq!(mqtt.link.tls.session().expect("info").version, version);
        mqtt.send(Subscribe::new(1, "t/tls/#", QoS::ExactlyOnce).into())
            .expect("SUBSCRIBE");
        assert!(matches!(mqtt.packet().expect("SUBACK"), Packet::SubAck(_)));
        let mut pid = 10;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for payload in [&[][..], &small[..], &big[..]] {
                pid += 1;
                let topic = format!("t/tls/{}/{}", qos as u8, payload.len());
                let back = mqtt
                    .round_trip(&topic, payload, qos, pid)
                    .expect("round trip");
                assert!(
                    back == payload,
                    "{version} QoS {} {} B: not byte-exact",
                    qos as u8,
                    payload.len()
                );
            }
        }
        // Keep-alive over TLS.
        mqtt.send(Packet::PingReq).expect("PINGREQ");
        assert_eq!(mqtt.packet().expect("PINGRESP"), Packet::PingResp);
        assert!(mqtt.link.largest_send <= 1460);
        mqtt.disconnect();
        b.broker.wait_log(&format!("Client {id} disconnected."));
    }
}

#[test]
fn the_handshake_survives_dripping_and_odd_splits() {
    let Some(b) = broker("mosq-drip", "") else {
        return;
    };
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        for (n, feed) in [Feed::drip(), Feed::split()].into_iter().enumerate() {
            let client = trusting(&b.ca, version).build().expect("client");
            let id = format!("drip-{}-{n}", version.name());
            let mut mqtt = Mqtt::open(&client, &b.broker, feed, &id).expect("session");
            mqtt.send(Subscribe::new(1, "t/drip", QoS::AtLeastOnce).into())
                .expect("SUBSCRIBE");
            assert!(matches!(mqtt.packet().expect("SUBACK"), Packet::SubAck(_)));
            let payload = vec![0x5a; 3000];
            assert_eq!(
                mqtt.round_trip("t/drip", &payload, QoS::AtLeastOnce, 7)
                    .expect("rt"),
                payload
            );
            mqtt.disconnect();
        }
    }
}

/// The broker's log lines about one client, from its connection to its end.
fn segment(log: &str, id: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(&format!(" as {id} (")))
        .unwrap_or_else(|| panic!("{id} never connected:\n{log}"));
    let end = lines[start..]
        .iter()
        .position(|l| l.contains(&format!("Client {id} ")) && !l.contains("connected from"))
        .map_or(lines.len(), |i| start + i + 1);
    lines[start..end].join("\n")
}

#[test]
fn close_notify_keeps_the_broker_log_clean_and_its_absence_shows() {
    let Some(b) = broker("mosq-close", "") else {
        return;
    };
    let client = trusting(&b.ca, TlsVersion::V1_3).build().expect("client");
    // DISCONNECT, then close_notify: the way sim7k ends a session.
    let polite = Mqtt::open(&client, &b.broker, Feed::modem(), "polite").expect("session");
    polite.disconnect();
    b.broker.wait_log("Client polite disconnected.");
    // close_notify alone.
    let mut closer = Mqtt::open(&client, &b.broker, Feed::modem(), "closer").expect("session");
    closer.link.close();
    b.broker.wait_log("Client closer closed its connection.");
    // Control: neither (a socket that just closes).
    let rude = Mqtt::open(&client, &b.broker, Feed::modem(), "rude").expect("session");
    drop(rude);
    let log = b.broker.wait_log("Client rude closed its connection.");

    let rude = segment(&log, "rude");
    assert!(
        rude.contains("unexpected eof"),
        "the control shows the broker's complaint:\n{rude}"
    );
    for id in ["polite", "closer"] {
        let seg = segment(&log, id);
        assert!(
            !seg.contains("eof") && !seg.contains("Error"),
            "{id}:\n{seg}"
        );
    }
}

#[test]
fn require_certificate_true_wants_the_device_certificate() {
    let Some(b) = broker(
        "mosq-mtls",
        "require_certificate true\nuse_identity_as_username true",
    ) else {
        return;
    };
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let with_cert = TlsConfig {
            client_cert: Some(b.device.cert.clone()),
            client_key: Some(b.device.key.clone()),
            ..trusting(&b.ca, version)
        }
        .build()
        .expect("client");
        let id = format!("mtls-{}", version.name());
        let mut mqtt = Mqtt::open(&with_cert, &b.broker, Feed::split(), &id).expect("session");
        assert!(mqtt.link.tls.session().expect("info").client_cert_sent);
        mqtt.send(Packet::PingReq).expect("PINGREQ");
        assert_eq!(mqtt.packet().expect("PINGRESP"), Packet::PingResp);
        mqtt.disconnect();
        let log = b.broker.wait_log("u'device-1'");
        assert!(
            log.contains("u'device-1'"),
            "the broker took the certificate's CN as user: {log}"
        );

        let without = trusting(&b.ca, version).build().expect("client");
        let f = match Mqtt::open(&without, &b.broker, Feed::split(), "anonymous") {
            Ok(mut m) => {
                let r = m.link.drain(Duration::from_secs(10));
                r.err()
                    .or_else(|| m.link.tls.failure().cloned())
                    .expect("must fail")
            }
            Err(f) => f,
        };
        assert!(
            matches!(f, TlsFailure::ClientCertRequired { .. }),
            "{version}: {f:?}"
        );
    }
}

#[test]
fn a_second_connection_to_the_broker_resumes() {
    let Some(b) = broker("mosq-resume", "") else {
        return;
    };
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let client = trusting(&b.ca, version).build().expect("client");
        let mut sizes = Vec::new();
        for round in 0..2 {
            let mut mqtt = Mqtt::open(
                &client,
                &b.broker,
                Feed::modem(),
                &format!("resume-{round}"),
            )
            .expect("session");
            // In TLS 1.3 the tickets follow the handshake: a ping round trip lets them arrive.
            mqtt.send(Packet::PingReq).expect("PINGREQ");
            assert_eq!(mqtt.packet().expect("PINGRESP"), Packet::PingResp);
            let info = mqtt.link.tls.session().expect("info").clone();
            assert_eq!(info.resumed, round == 1, "{version} round {round}: {info}");
            sizes.push(info.handshake_sent + info.handshake_received);
            mqtt.disconnect();
        }
        eprintln!(
            "mosquitto {version}: full {} B, resumed {} B",
            sizes[0], sizes[1]
        );
        assert!(sizes[1] < sizes[0]);
    }
}

/// Issue 15 with issue 13: the MQTT record sink speaks TLS with sim7k's own client
/// (`--record-to mqtts://HOST:PORT/PREFIX?ca=FILE`). A device's record reaches a TLS-only
/// mosquitto at QoS 1 on `<prefix>/<station>/<imei>`; a CA that does not match is a clear
/// message naming TLS, and with `--record-required` the run exits 4 (the record stays kept).
#[test]
fn records_go_to_an_mqtts_sink() {
    let Some(b) = broker("mosq-records", "") else {
        return;
    };
    let client = trusting(&b.ca, TlsVersion::V1_3).build().expect("client");
    let mut sub = Mqtt::open(&client, &b.broker, Feed::modem(), "records-sub").expect("session");
    sub.send(Subscribe::new(1, "fac/#", QoS::AtLeastOnce).into())
        .expect("SUBSCRIBE");
    assert!(matches!(sub.packet().expect("SUBACK"), Packet::SubAck(_)));
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/modem-info.yaml");
    let run = |ca: &std::path::Path| {
        let url = format!(
            "mqtts://localhost:{}/fac?ca={}",
            b.broker.addr.port(),
            ca.display()
        );
        std::process::Command::new(env!("CARGO_BIN_EXE_sim7k"))
            .args(["run", recipe, "--emulate", "--emulator-profile", "zero"])
            .args(["--record-to", &url, "--station", "st1", "--record-required"])
            .output()
            .expect("run")
    };
    let out = run(&b.ca.issued.cert);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let p = loop {
        if let Packet::Publish(p) = sub.packet().expect("the record") {
            break p;
        }
    };
    assert!(p.topic.starts_with("fac/st1/"), "{}", p.topic);
    assert_eq!(p.qos, QoS::AtLeastOnce);
    let record: serde_json::Value = serde_json::from_slice(&p.payload).expect("JSON record");
    assert!(record["record_id"].is_string(), "{record}");
    assert_eq!(record["station"], "st1");
    // A CA that did not sign the broker's certificate.
    let other = b._pki.ca("other", Alg::EcdsaP256);
    let out = run(&other.issued.cert);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
    sub.disconnect();
}
