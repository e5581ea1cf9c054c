//! Our encoder's bytes against real brokers over raw TCP, and our decoder on what they answer.
//!
//! * mosquitto (tests/support; skipped when not installed unless SIM7K_REQUIRE_MOSQUITTO=1):
//!   the happy path in MQTT 3.1, 3.1.1 and 5.0, and a refused CONNECT (wrong password).
//! * rumqttd in-process (always runs): the happy path in 3.1.1 and 5.0 (rumqttd has no 3.1),
//!   with a QoS 0 subscriber (see `rumqttd_happy_path_v311_and_v5`).
//!
//! Happy path: a subscriber connects and subscribes with QoS 2; a publisher connects and
//! publishes with QoS 0, 1 and 2 (CONNACK, PUBACK, PUBREC → PUBREL → PUBCOMP checked with our
//! decoder); the subscriber receives each PUBLISH, which must equal byte for byte our own
//! encoding of the expected packet (with the broker's packet id), and completes the QoS flows.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sim7k::mqtt::*;

/// Hang guard only: brokers answer in milliseconds.
const DEADLINE: Duration = Duration::from_secs(20);

struct Client {
    stream: TcpStream,
    decoder: StreamDecoder,
    received: Vec<u8>,
    protocol: Protocol,
}

impl Client {
    fn connect(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let protocol = connect.protocol;
        let stream = TcpStream::connect(addr).expect("connect to broker");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut c = Client {
            stream,
            decoder: StreamDecoder::new(protocol),
            received: Vec::new(),
            protocol,
        };
        c.send(&Packet::Connect(connect));
        let Packet::ConnAck(ack) = c.recv().0 else {
            panic!("expected CONNACK")
        };
        (c, ack)
    }

    fn send(&mut self, p: &Packet) {
        let bytes = p.encode(self.protocol).expect("strict encode");
        self.stream.write_all(&bytes).expect("write to broker");
    }

    /// The next packet and its exact bytes.
    fn recv(&mut self) -> (Packet, Vec<u8>) {
        let start = Instant::now();
        loop {
            let from = self.decoder.stream_offset();
            if let Some(p) = self
                .decoder
                .next_packet()
                .expect("broker sent a valid packet")
            {
                let raw = self.received[from..self.decoder.stream_offset()].to_vec();
                return (p, raw);
            }
            assert!(start.elapsed() < DEADLINE, "no packet from the broker");
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("broker closed the connection"),
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    self.decoder.push(&buf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read from broker: {e}"),
            }
        }
    }

    /// True when the broker closes the connection (read returns 0 or a reset).
    fn closed_by_peer(&mut self) -> bool {
        let start = Instant::now();
        let mut buf = [0u8; 256];
        while start.elapsed() < DEADLINE {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

fn happy_path(addr: SocketAddr, v: Protocol, tag: &str, sub_qos: QoS) {
    let topic = format!("sim7k/{tag}/{}", v.level());
    // Subscriber.
    let (mut sub, ack) = Client::connect(addr, Connect::new(v, format!("s{tag}{}", v.level())));
    assert!(
        ack.is_success(),
        "subscriber CONNACK: {}",
        ack.reason_text(v)
    );
    assert!(!ack.session_present);
    sub.send(&Packet::Subscribe(Subscribe::new(
        1,
        format!("{topic}/#"),
        sub_qos,
    )));
    let Packet::SubAck(sa) = sub.recv().0 else {
        panic!("expected SUBACK")
    };
    assert_eq!(sa.packet_id, 1);
    assert_eq!(sa.codes.len(), 1);
    let granted = sa
        .granted_qos(0)
        .unwrap_or_else(|| panic!("subscription refused: {:?}", sa.reason_texts(v)));

    // Publisher.
    let (mut publ, ack) = Client::connect(addr, Connect::new(v, format!("p{tag}{}", v.level())));
    assert!(
        ack.is_success(),
        "publisher CONNACK: {}",
        ack.reason_text(v)
    );
    let mut sent = Vec::new();
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let id = 10 + i as u16;
        let p = Publish {
            qos,
            packet_id: (qos != QoS::AtMostOnce).then_some(id),
            ..Publish::new(
                format!("{topic}/q{}", qos as u8),
                format!("payload {} \u{e9}\u{20ac}", qos as u8).into_bytes(),
            )
        };
        publ.send(&Packet::Publish(p.clone()));
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => assert_eq!(publ.recv().0, Packet::PubAck(PubAck::new(id))),
            QoS::ExactlyOnce => {
                assert_eq!(publ.recv().0, Packet::PubRec(PubRec::new(id)));
                publ.send(&Packet::PubRel(PubRel::new(id)));
                assert_eq!(publ.recv().0, Packet::PubComp(PubComp::new(id)));
            }
        }
        sent.push(p);
    }
    publ.send(&Packet::PingReq);
    assert_eq!(publ.recv().0, Packet::PingResp);
    publ.send(&Packet::Disconnect(Disconnect::default()));

    // Deliveries, in order, byte for byte.
    for p in &sent {
        let (got, raw) = sub.recv();
        let Packet::Publish(d) = &got else {
            panic!("expected PUBLISH, got {got:?}")
        };
        let qos = p.qos.min(granted);
        let expected = Publish {
            qos,
            packet_id: d.packet_id,
            properties: d.properties.clone(),
            ..p.clone()
        };
        assert_eq!(d.packet_id.is_some(), qos != QoS::AtMostOnce);
        assert!(
            d.properties.is_empty(),
            "unexpected properties {:?}",
            d.properties
        );
        let expected_bytes = Packet::Publish(expected).encode(v).unwrap();
        assert_eq!(raw, expected_bytes, "delivered PUBLISH bytes");
        match (qos, d.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => sub.send(&Packet::PubAck(PubAck::new(id))),
            (QoS::ExactlyOnce, Some(id)) => {
                sub.send(&Packet::PubRec(PubRec::new(id)));
                assert_eq!(sub.recv().0, Packet::PubRel(PubRel::new(id)));
                sub.send(&Packet::PubComp(PubComp::new(id)));
            }
            _ => {}
        }
    }
    sub.send(&Packet::Unsubscribe(Unsubscribe::new(
        2,
        format!("{topic}/#"),
    )));
    let Packet::UnsubAck(ua) = sub.recv().0 else {
        panic!("expected UNSUBACK")
    };
    assert_eq!(ua.packet_id, 2);
    assert!(ua.is_success());
    assert_eq!(ua.codes.len(), if v == Protocol::V5 { 1 } else { 0 });
    sub.send(&Packet::Disconnect(Disconnect::default()));
}

#[test]
fn mosquitto_happy_path_all_versions() {
    let Some(m) = support::Mosquitto::start() else {
        return;
    };
    for v in [Protocol::V31, Protocol::V311, Protocol::V5] {
        happy_path(m.addr, v, "mosq", QoS::ExactlyOnce);
    }
}

#[test]
fn mosquitto_accepts_the_original_script_connect() {
    // MQIsdp level 3, flags 0xC2, keep alive 60 (user name + password + clean session).
    let Some(m) = support::Mosquitto::start() else {
        return;
    };
    let c = Connect {
        username: Some("user".into()),
        password: Some(b"pass".to_vec()),
        ..Connect::new(Protocol::V31, "SIM7000-test")
    };
    assert_eq!(c.flags(), 0xC2);
    let (_, ack) = Client::connect(m.addr, c);
    assert_eq!(ack, ConnAck::new(0));
}

/// A mosquitto that needs user `alice` with `right-password`, and the directory of its
/// password file (kept alive as long as the broker).
fn password_broker() -> Option<(support::Mosquitto, support::TempDir)> {
    let dir = support::TempDir::new("mqtt-passwd");
    let file = dir.path().join("passwd");
    let ok = std::process::Command::new("/usr/bin/mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&file)
        .args(["alice", "right-password"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(!support::mosquitto_required(), "mosquitto_passwd failed");
        eprintln!("mosquitto_passwd unavailable: skipping");
        return None;
    }
    let conf = format!("allow_anonymous false\npassword_file {}\n", file.display());
    support::Mosquitto::start_with(&conf).map(|m| (m, dir))
}

#[test]
fn mosquitto_refuses_a_wrong_password() {
    let Some((m, _dir)) = password_broker() else {
        return;
    };
    // mosquitto 2.0 answers a wrong password with "not authorized" (3.x return code 5, 5.0
    // reason code 0x87), not "bad user name or password" (4 / 0x86).
    for (v, refused) in [
        (Protocol::V31, 5u8),
        (Protocol::V311, 5),
        (Protocol::V5, 0x87),
    ] {
        let wrong = Connect {
            username: Some("alice".into()),
            password: Some(b"wrong".to_vec()),
            ..Connect::new(v, format!("bad{}", v.level()))
        };
        let (mut c, ack) = Client::connect(m.addr, wrong);
        assert!(!ack.is_success());
        assert_eq!(ack.code, refused, "MQTT {v}: {}", ack.reason_text(v));
        assert!(!ack.session_present);
        let text = ack.reason_text(v).to_lowercase();
        assert!(text.contains("not authorized"), "{text}");
        assert!(c.closed_by_peer(), "broker keeps a refused connection open");

        let right = Connect {
            username: Some("alice".into()),
            password: Some(b"right-password".to_vec()),
            ..Connect::new(v, format!("good{}", v.level()))
        };
        let (_, ack) = Client::connect(m.addr, right);
        assert!(ack.is_success(), "MQTT {v}: {}", ack.reason_text(v));
    }
}

#[test]
fn mosquitto_closes_on_invalid_subscribe_flags() {
    // The unchecked path produces what a strict broker must reject: SUBSCRIBE flags 0b0000.
    let Some(m) = support::Mosquitto::start() else {
        return;
    };
    let (mut c, ack) = Client::connect(m.addr, Connect::new(Protocol::V311, "raw-neg"));
    assert!(ack.is_success());
    let bad = RawPacket::new(0x80).u16(1).string("a/b").u8(0).encode();
    assert!(
        decode(&bad, Protocol::V311).is_err(),
        "our decoder rejects it too"
    );
    c.stream.write_all(&bad).unwrap();
    assert!(c.closed_by_peer());
}

/// Start rumqttd in this process with an MQTT 3.1.1 and an MQTT 5.0 listener; their addresses.
fn start_rumqttd() -> (SocketAddr, SocketAddr) {
    use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
    let settings = |name: &str, port: u16| ServerSettings {
        name: name.into(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let (p4, p5) = (support::free_port(), support::free_port());
    let config = Config {
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 10 << 20,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), settings("v4", p4))])),
        v5: Some(HashMap::from([("1".to_owned(), settings("v5", p5))])),
        ..Config::default()
    };
    std::thread::spawn(move || {
        let _ = rumqttd::Broker::new(config).start();
    });
    let addrs: Vec<SocketAddr> = [p4, p5]
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    for &addr in &addrs {
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                start.elapsed() < DEADLINE,
                "rumqttd did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (addrs[0], addrs[1])
}

#[test]
fn rumqttd_happy_path_v311_and_v5() {
    let (v4, v5) = start_rumqttd();
    // rumqttd delivers at the subscription's QoS instead of min(publish QoS, subscription
    // QoS) (a QoS 0 PUBLISH arrives as QoS 2 for a QoS 2 subscription), so the subscriber
    // uses QoS 0 here; mosquitto covers the QoS 1 and 2 delivery flows.
    happy_path(v4, Protocol::V311, "rum", QoS::AtMostOnce);
    happy_path(v5, Protocol::V5, "rum", QoS::AtMostOnce);
}
