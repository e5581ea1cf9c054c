//! Issue 10 point 3 (no reply at all vs replies that do not match, in every step type) and
//! point 17 (a reply still arriving on a slow UART is waited for).

use std::time::Duration;

use super::*;
use crate::exit::Exit;
use crate::mqtt::PacketType;

fn wait_plan(expect: &str, d: Duration) -> StepPlan {
    let mut p = plan("wait");
    p.action = PlanAction::Wait(d);
    p.expect = vec![m(expect)];
    p
}

/// Before: an unmet `wait` was "timed out" whether or not the modem was alive.
#[test]
fn an_unmet_wait_on_a_silent_modem_probes_it_once() {
    let mut d = Drive::new();
    assert!(
        d.run(plan("AT+CSQ"), |_, _| b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n"
            .to_vec())
            .passed()
    );
    let before = d.writes.len();
    let o = d.run(
        wait_plan("+APP PDP: ACTIVE", Duration::from_secs(10)),
        |_, _| Vec::new(),
    );
    assert_eq!(d.written()[before..], ["AT\r"], "one probe");
    match &o.failure {
        Some(
            f @ Failure::NoReply {
                command,
                last_answer,
                ..
            },
        ) => {
            assert_eq!(command, "AT");
            assert_eq!(f.kind(), Exit::Timeout);
            assert_eq!(
                last_answer.as_ref().map(|a| a.command.as_str()),
                Some("AT+CSQ")
            );
        }
        other => panic!("{other:?}"),
    }
    // Alive (it answers the probe): the expectation was simply not met, exit 1.
    let o = d.run(
        wait_plan("+APP PDP: ACTIVE", Duration::from_secs(10)),
        |_, _| b"\r\nOK\r\n".to_vec(),
    );
    match &o.failure {
        Some(f @ Failure::WaitNotMet { alive, .. }) => {
            assert_eq!(f.kind(), Exit::StepFailed);
            assert!(alive.contains("answered `AT`"), "{alive}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unmet_wait_that_heard_the_modem_needs_no_probe() {
    let mut d = Drive::new();
    let mut session = std::mem::take(&mut d.session);
    let now = d.now;
    session.start(
        wait_plan("+APP PDP: ACTIVE", Duration::from_secs(5)),
        now,
        None,
    );
    assert!(matches!(session.poll(now), Action::Wait(_)));
    session.feed(b"\r\nDST: 1\r\n", now);
    d.session = session;
    let before = d.writes.len();
    let o = d.run_continue();
    assert_eq!(d.writes.len(), before, "no probe");
    assert!(
        matches!(&o.failure, Some(Failure::WaitNotMet { alive, .. }) if alive.contains("DST: 1")),
        "{o:?}"
    );
}

#[test]
fn an_mqtt_wait_on_a_dead_modem_is_no_reply() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPRXGET=1", 0);
    let o = d.run(
        mqtt_plan(
            MqttWant::Packet(PacketType::ConnAck),
            Duration::from_secs(5),
        ),
        |_, _| Vec::new(),
    );
    assert!(
        matches!(&o.failure, Some(Failure::NoReply { command, .. }) if command == "AT"),
        "{o:?}"
    );
    // A live modem, a silent broker: the wait keeps its timeout, and says so.
    let o = d.run(
        mqtt_plan(
            MqttWant::Packet(PacketType::ConnAck),
            Duration::from_secs(5),
        ),
        |_, _| b"\r\nOK\r\n".to_vec(),
    );
    match &o.failure {
        Some(f @ Failure::Timeout { waiting_for, .. }) => {
            assert!(
                waiting_for.contains("the broker sent nothing"),
                "{waiting_for}"
            );
            assert_eq!(f.kind(), Exit::Timeout);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_background_exchange_the_modem_never_answers_is_no_reply() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPHEAD=1", 2);
    // A `wait` step: the PINGREQ's `AT+CIPSEND=2` gets nothing back.
    let mut p = plan("wait");
    p.action = PlanAction::Wait(Duration::from_secs(30));
    let o = d.run(p, |_, _| Vec::new());
    assert!(
        matches!(&o.failure, Some(Failure::NoReply { command, .. }) if command == "AT+CIPSEND=2"),
        "{o:?}"
    );
}

/// Issue 10 point 17: one byte every 50 ms; the sync's 300 ms per `AT` is shorter than the
/// reply. Before, each attempt timed out mid-reply and the next `AT` went out over it.
#[test]
fn a_reply_on_a_slow_uart_is_waited_for() {
    let mut d = Drive::new();
    let mut p = plan("AT");
    p.name = "sync".into();
    p.timeout = Duration::from_millis(300);
    p.retries = 32;
    p.retry_delay = Duration::ZERO;
    p.deadline = Some(Duration::from_secs(10));
    let o = d.run_timed(p, Duration::from_millis(50), |_, w| {
        let mut r = w.to_vec(); // echo on
        r.extend_from_slice(b"\r\nOK\r\n");
        r
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.attempts, 1);
    assert_eq!(d.written(), vec!["AT\r"]);
    // A reply that never completes still ends: the wait is bounded.
    let mut p = plan("AT+CSQ");
    p.timeout = Duration::from_millis(300);
    let o = d.run_timed(p, Duration::from_millis(50), |_, _| vec![b'x'; 400]);
    assert!(matches!(o.failure, Some(Failure::Timeout { .. })), "{o:?}");
    assert!(
        o.elapsed <= Duration::from_millis(300) + MIN_EXTENSION,
        "{:?}",
        o.elapsed
    );
}
