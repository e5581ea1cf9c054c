//! Issue 10 point 16: while an MQTT session is live, PINGREQ goes out on time whatever step
//! runs (between commands, during `wait` steps and `until` pauses), PINGRESP is checked,
//! and messages keep arriving and are reported. Before, keep-alive ran only inside
//! `expect_mqtt` waits.

use std::time::Duration;

use super::*;
use crate::mqtt::{Packet, PacketType, Publish, QoS};

fn pings(d: &Drive, from: usize) -> usize {
    d.writes[from..]
        .iter()
        .filter(|w| w.as_slice() == [0xC0, 0x00])
        .count()
}

fn wait_step(d: Duration) -> StepPlan {
    let mut p = plan("wait");
    p.action = PlanAction::Wait(d);
    p
}

#[test]
fn pings_go_out_during_a_wait_step() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 2);
    let before = d.writes.len();
    let start = d.now;
    let o = d.run(wait_step(Duration::from_secs(10)), sender_with_pong);
    assert!(o.passed(), "{o:?}");
    assert_eq!(
        d.now - start,
        Duration::from_secs(10),
        "the wait keeps its length"
    );
    assert_eq!(pings(&d, before), 5, "one every 2 s");
}

#[test]
fn pings_go_out_between_slow_until_polls() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 2);
    let before = d.writes.len();
    let mut p = plan("AT+CEREG?");
    p.until = vec![m("+CEREG: 0,1")];
    p.interval = Duration::from_secs(5);
    p.deadline = Some(Duration::from_secs(60));
    let mut polls = 0;
    let o = d.run(p, |i, w| {
        if w == b"AT+CEREG?\r" {
            polls += 1;
            if polls < 4 {
                b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n".to_vec()
            } else {
                b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n".to_vec()
            }
        } else {
            sender_with_pong(i, w)
        }
    });
    assert!(o.passed(), "{o:?}");
    // 15 s of polling at keep-alive 2 s: a ping in each 5 s pause (or two).
    assert!(pings(&d, before) >= 6, "{}", pings(&d, before));
}

#[test]
fn an_unanswered_ping_loses_the_session_and_the_next_mqtt_wait_says_so() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 2);
    let o = d.run(wait_step(Duration::from_secs(10)), sender);
    assert!(o.passed(), "a wait step goes on: {o:?}");
    assert!(
        d.events()
            .iter()
            .any(|e| matches!(e, Event::Note(n) if n.contains("PINGREQ"))),
        "the loss is reported at once"
    );
    let o = d.run(
        mqtt_plan(
            MqttWant::Messages { count: Some(1) },
            Duration::from_secs(5),
        ),
        sender,
    );
    assert!(
        matches!(
            o.failure,
            Some(Failure::Mqtt(MqttFailure::PingUnanswered { .. }))
        ),
        "{o:?}"
    );
}

#[test]
fn messages_during_a_wait_are_reported_and_acknowledged() {
    for mode in ["AT+CIPHEAD=1", "AT+CIPRXGET=1"] {
        let mut d = Drive::new();
        connected(&mut d, mode, 60);
        let mut p = Publish::new("a/b", b"during the wait".to_vec());
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some(9);
        let publish = enc(Packet::Publish(p));
        let manual = mode == "AT+CIPRXGET=1";
        let mut session = std::mem::take(&mut d.session);
        let now = d.now;
        session.start(wait_step(Duration::from_secs(3)), now, None);
        assert!(matches!(session.poll(now), Action::Wait(_)));
        if manual {
            session.feed(b"\r\n+CIPRXGET: 1\r\n", now);
        } else {
            let mut pushed = format!("\r\n+IPD,{}:", publish.len()).into_bytes();
            pushed.extend_from_slice(&publish);
            session.feed(&pushed, now);
        }
        d.session = session;
        let publish2 = publish.clone();
        let before = d.writes.len();
        let o = d.run_continue_with(move |i, w| {
            if w.starts_with(b"AT+CIPRXGET=2") {
                let mut r = format!("\r\n+CIPRXGET: 2,{},0\r\n", publish2.len()).into_bytes();
                r.extend_from_slice(&publish2);
                r.extend_from_slice(b"\r\nOK\r\n");
                r
            } else {
                sender(i, w)
            }
        });
        assert!(o.passed(), "{mode}: {o:?}");
        assert!(
            d.events()
                .iter()
                .any(|e| matches!(e, Event::Message(m) if m.payload == b"during the wait")),
            "{mode}"
        );
        assert!(
            d.writes[before..].contains(&vec![0x40, 0x02, 0x00, 0x09]),
            "{mode}: PUBACK sent"
        );
        // The message counts for a later wait.
        let o = d.run(
            mqtt_plan(
                MqttWant::Messages { count: Some(1) },
                Duration::from_secs(1),
            ),
            sender,
        );
        assert!(o.passed(), "{mode}: {o:?}");
        let _ = PacketType::PubAck;
    }
}
