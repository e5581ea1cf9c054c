//! MQTT over the modem.

use std::time::Duration;

use super::*;
use crate::mqtt::{ConnAck, Packet, PacketType, Publish, QoS};

#[test]
fn connack_through_manual_receive() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPRXGET=1", 60);
    let connack = enc(Packet::ConnAck(ConnAck::new(0)));
    let mut session = std::mem::take(&mut d.session);
    // The URC arrives while waiting; the engine reads with AT+CIPRXGET=2.
    session.feed(b"\r\n+CIPRXGET: 1\r\n", d.now);
    d.session = session;
    let o = d.run(
        mqtt_plan(
            MqttWant::Packet(PacketType::ConnAck),
            Duration::from_secs(10),
        ),
        |_, w| {
            assert_eq!(w, b"AT+CIPRXGET=2,1460\r");
            let mut r = format!("\r\n+CIPRXGET: 2,{},0\r\n", connack.len()).into_bytes();
            r.extend_from_slice(&connack);
            r.extend_from_slice(b"\r\nOK\r\n");
            r
        },
    );
    assert!(o.passed(), "{o:?}");
}

#[test]
fn refused_connack_names_the_reason() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 60);
    let connack = enc(Packet::ConnAck(ConnAck::new(4)));
    let mut pushed = format!("\r\n+IPD,{}:", connack.len()).into_bytes();
    pushed.extend_from_slice(&connack);
    pushed.extend_from_slice(b"\r\nCLOSED\r\n");
    d.session.feed(&pushed, d.now);
    let o = d.run(
        mqtt_plan(
            MqttWant::Packet(PacketType::ConnAck),
            Duration::from_secs(10),
        ),
        |_, _| Vec::new(),
    );
    match o.failure {
        Some(Failure::Mqtt(m)) => {
            let message = m.to_string();
            assert!(message.contains("bad user name or password"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pushed_qos1_messages_are_acknowledged_and_counted() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPRXGET=0", 60);
    // (A CR LF in a raw-pushed payload cannot be proven intact: see the push tests.)
    let mut p = Publish::new("a/b", b"hi there\x00\x1a".to_vec());
    p.qos = QoS::AtLeastOnce;
    p.packet_id = Some(7);
    let publish = enc(Packet::Publish(p));
    let mut bytes = b"\r\n".to_vec();
    bytes.extend_from_slice(&publish);
    // Drip the packet in: the framer reassembles it whatever the boundaries.
    for b in &bytes {
        d.session.feed(&[*b], d.now);
    }
    let o = d.run(
        mqtt_plan(
            MqttWant::Messages { count: Some(1) },
            Duration::from_secs(10),
        ),
        sender,
    );
    assert!(o.passed(), "{o:?}");
    let ev = d.events();
    assert!(ev.iter().any(
        |e| matches!(e, Event::Message(m) if m.topic == "a/b" && m.payload == b"hi there\x00\x1a")
    ));
    // The PUBACK for packet 7 was sent before the step ended.
    let w = d.written();
    let n = w.len();
    assert_eq!(w[n - 2], "AT+CIPSEND=4\r");
    assert_eq!(d.writes[n - 1], vec![0x40, 0x02, 0x00, 0x07]);
}

#[test]
fn keep_alive_pings_and_a_dead_broker_is_detected() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 2);
    let mut p = mqtt_plan(
        MqttWant::Messages { count: Some(1) },
        Duration::from_secs(60),
    );
    p.abort = default_aborts();
    let before = d.writes.len();
    // The broker never answers: one PINGREQ after 2 s, then failure 2 s later.
    let o = d.run(p, sender);
    match o.failure {
        Some(Failure::Mqtt(m)) => assert!(m.to_string().contains("PINGREQ"), "{m}"),
        other => panic!("{other:?}"),
    }
    let w = &d.writes[before..];
    // Replies and pings go out in the module's default block size: no size query.
    assert_eq!(w[0], b"AT+CIPSEND=2\r");
    assert_eq!(w[1], vec![0xC0, 0x00]);
    assert_eq!(w.len(), 2, "one PINGREQ, then the failure");
}

#[test]
fn closed_connection_ends_an_mqtt_wait() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 0);
    d.session.feed(b"\r\nCLOSED\r\n", d.now);
    let o = d.run(
        mqtt_plan(
            MqttWant::Packet(PacketType::SubAck),
            Duration::from_secs(10),
        ),
        |_, _| Vec::new(),
    );
    assert!(
        matches!(o.failure, Some(Failure::Mqtt(ref m)) if m.to_string().contains("closed")),
        "{o:?}"
    );
}

#[test]
fn listening_for_a_duration_ends_successfully() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 0);
    let mut p = mqtt_plan(MqttWant::Messages { count: None }, Duration::from_secs(5));
    if let PlanAction::Mqtt(m) = &mut p.action {
        m.duration = Some(Duration::from_secs(3));
    }
    let start = d.now;
    let o = d.run(p, |_, _| Vec::new());
    assert!(o.passed(), "{o:?}");
    assert_eq!(d.now - start, Duration::from_secs(3));
}
#[test]
fn raw_push_mode_does_not_take_an_ip_line_for_mqtt() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPRXGET=0", 0);
    let mut p = plan("AT+CIFSR");
    p.capture = vec![compile(r"^(?P<ip>[\d.]+)$").unwrap()];
    let o = d.run(p, |_, _| b"\r\n10.64.12.7\r\n".to_vec());
    assert_eq!(o.captures, vec![("ip".into(), "10.64.12.7".into())]);
    assert!(
        d.run(plan("AT+CSQ"), |_, _| b"\r\n+CSQ: 5,99\r\n\r\nOK\r\n"
            .to_vec())
            .passed()
    );
}
