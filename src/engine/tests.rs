//! Step engine tests: bytes in, actions out, with a hand-driven clock.

use std::time::{Duration, Instant};

use super::*;

/// Drive a session: `script` is a list of (bytes the modem sends in reply to the n-th
/// write). Returns the writes and the outcome.
struct Drive {
    session: Session,
    now: Instant,
    writes: Vec<Vec<u8>>,
}

impl Drive {
    fn new() -> Drive {
        Drive {
            session: Session::new(Vec::new()),
            now: Instant::now(),
            writes: Vec::new(),
        }
    }

    fn with_rules(rules: Vec<UrcRule>) -> Drive {
        Drive {
            session: Session::new(rules),
            ..Drive::new()
        }
    }

    /// Run a step; `reply(write_index, written_bytes)` gives the modem's answer to each
    /// write. Time only advances when the engine waits with nothing to read.
    fn run(
        &mut self,
        plan: StepPlan,
        mut reply: impl FnMut(usize, &[u8]) -> Vec<u8>,
    ) -> StepOutcome {
        self.session.start(plan, self.now, None);
        for _ in 0..10_000 {
            match self.session.poll(self.now) {
                Action::Write(bytes) => {
                    let idx = self.writes.len();
                    self.writes.push(bytes.clone());
                    let answer = reply(idx, &bytes);
                    if !answer.is_empty() {
                        self.session.feed(&answer, self.now);
                    }
                }
                Action::Wait(t) => {
                    assert!(t >= self.now, "engine asked to wait in the past");
                    self.now = t;
                }
                Action::Done(o) => return o,
            }
        }
        panic!("step never finished: {:?}", self.session);
    }

    fn events(&mut self) -> Vec<Event> {
        self.session.drain_events().collect()
    }

    fn written(&self) -> Vec<String> {
        self.writes
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }
}

fn plan(line: &str) -> StepPlan {
    StepPlan::command(line, Duration::from_secs(5))
}

fn m(p: &str) -> Matcher {
    Matcher::parse(p).unwrap()
}

fn default_aborts() -> Vec<Matcher> {
    ["ERROR", "+CME ERROR", "CONNECT FAIL", "SEND FAIL"]
        .iter()
        .map(|p| m(p))
        .collect()
}

#[test]
fn ok_with_echo_on_and_off() {
    let mut d = Drive::new();
    let o = d.run(plan("ATE0"), |_, _| b"ATE0\r\r\nOK\r\n".to_vec());
    assert!(o.passed(), "{o:?}");
    assert_eq!(d.session.echo(), Echo::Off);
    let o = d.run(plan("AT"), |_, _| b"\r\nOK\r\n".to_vec());
    assert!(o.passed());
    assert_eq!(d.written(), vec!["ATE0\r", "AT\r"]);
}

#[test]
fn echo_off_when_concatenated_with_other_basic_commands() {
    for cmd in ["ATE0V1", "ATE0&W", "ATE", "ATV1E0", "AT+CIFSR;E0"] {
        let mut d = Drive::new();
        d.run(plan("AT"), |_, _| b"AT\r\r\nOK\r\n".to_vec());
        assert_eq!(d.session.echo(), Echo::On);
        let echoed = format!("{cmd}\r\r\nOK\r\n").into_bytes();
        assert!(
            d.run(plan(cmd), move |_, _| echoed.clone()).passed(),
            "{cmd}"
        );
        assert_eq!(d.session.echo(), Echo::Off, "{cmd}");
        let mut p = plan("AT+CSQ");
        p.timeout = Duration::from_millis(200);
        assert!(
            d.run(p, |_, _| b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n".to_vec())
                .passed(),
            "{cmd}"
        );
    }
}

#[test]
fn numeric_result_codes_after_atv0() {
    let mut d = Drive::new();
    // ATV0's own reply is already numeric; CR alone ends it.
    assert!(d.run(plan("ATV0"), |_, _| b"0\r".to_vec()).passed());
    let mut p = plan("AT+CIICR");
    p.abort = default_aborts();
    let o = d.run(p, |_, _| b"4\r".to_vec());
    assert!(
        matches!(o.failure, Some(Failure::Aborted { ref line, .. }) if line == "ERROR"),
        "{o:?}"
    );
    let mut p = plan("AT+CSQ");
    p.capture = vec![compile(r"\+CSQ: (?P<rssi>\d+)").unwrap()];
    let o = d.run(p, |_, _| b"+CSQ: 17,99\r\n0\r".to_vec());
    assert_eq!(o.captures, vec![("rssi".into(), "17".into())]);
    assert!(d.run(plan("ATV1"), |_, _| b"0\r".to_vec()).passed());
    // Verbose again: a bare "0" is an information line, not OK.
    let mut p = plan("AT+X");
    p.timeout = Duration::from_millis(100);
    let o = d.run(p, |_, _| b"\r\n0\r\n".to_vec());
    assert!(matches!(o.failure, Some(Failure::Timeout { .. })), "{o:?}");
}

#[test]
fn capture_ignores_urcs_between_echo_and_final() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIMI");
    p.capture = vec![compile(r"^(?P<imsi>\d{6,15})$").unwrap()];
    p.expect = vec![m(r"/^\d+$/")];
    let o = d.run(p, |_, _| {
        b"AT+CIMI\r\r\nDST: 1\r\n\r\n*PSUTTZ: 24/11/25,06:26:46\",\"+32\",1\r\n\r\n466011234567890\r\n\r\nOK\r\n"
            .to_vec()
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.captures, vec![("imsi".into(), "466011234567890".into())]);
    assert_eq!(o.lines, vec!["466011234567890", "OK"]);
    let unsolicited = d
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Unsolicited { .. }))
        .count();
    assert_eq!(unsolicited, 2);
}

#[test]
fn a_urc_never_satisfies_expect() {
    let mut d = Drive::new();
    let mut p = plan("AT+CGSN");
    p.expect = vec![m("1")];
    p.timeout = Duration::from_millis(500);
    // `DST: 1` contains "1" but is a URC; the IMEI line has no "1".
    let o = d.run(p, |_, _| {
        b"\r\nDST: 1\r\n\r\n869999999999999\r\n\r\nOK\r\n".to_vec()
    });
    assert_eq!(
        o.failure,
        Some(Failure::NotMatched {
            expected: vec!["1".into()]
        })
    );
}

#[test]
fn response_one_byte_at_a_time() {
    let mut session = Session::new(Vec::new());
    let now = Instant::now();
    let mut p = plan("AT+CSQ");
    p.capture = vec![compile(r"\+CSQ: (?P<rssi>\d+),(?P<ber>\d+)").unwrap()];
    session.start(p, now, None);
    assert_eq!(session.poll(now), Action::Write(b"AT+CSQ\r".to_vec()));
    // Up to the CR that ends "OK", the step keeps waiting.
    for b in b"AT+CSQ\r\r\n+CSQ: 24,99\r\n\r\nOK" {
        assert!(matches!(session.poll(now), Action::Wait(_)));
        session.feed(&[*b], now);
    }
    assert!(matches!(session.poll(now), Action::Wait(_)));
    session.feed(b"\r", now);
    match session.poll(now) {
        Action::Done(o) => {
            assert!(o.passed());
            assert_eq!(
                o.captures,
                vec![("rssi".into(), "24".into()), ("ber".into(), "99".into())]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cifsr_bare_ip_without_ok() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIFSR");
    p.capture = vec![compile(r"^(?P<ip>\d+\.\d+\.\d+\.\d+)$").unwrap()];
    let o = d.run(p, |_, _| b"AT+CIFSR\r\r\n10.45.3.7\r\n".to_vec());
    assert!(o.passed());
    assert_eq!(o.captures, vec![("ip".into(), "10.45.3.7".into())]);
    assert_eq!(o.elapsed, Duration::ZERO, "must not wait for an OK");
}

#[test]
fn cipstart_two_phase() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIPSTART=\"TCP\",\"broker\",1883");
    p.abort = default_aborts();
    let o = d.run(p.clone(), |_, _| b"\r\nOK\r\n\r\nCONNECT OK\r\n".to_vec());
    assert!(o.passed());
    assert_eq!(o.lines, vec!["OK", "CONNECT OK"]);
    // OK alone is not enough: the step waits for the second phase.
    let mut d = Drive::new();
    p.timeout = Duration::from_secs(2);
    let o = d.run(p.clone(), |_, _| b"\r\nOK\r\n".to_vec());
    assert!(matches!(o.failure, Some(Failure::Timeout { .. })), "{o:?}");
    // Failure: STATE line, then CONNECT FAIL (an abort pattern).
    let mut d = Drive::new();
    let o = d.run(p, |_, _| {
        b"\r\nOK\r\n\r\nSTATE: TCP CLOSED\r\n\r\nCONNECT FAIL\r\n".to_vec()
    });
    assert_eq!(
        o.failure,
        Some(Failure::Aborted {
            pattern: "CONNECT FAIL".into(),
            line: "CONNECT FAIL".into()
        })
    );
}

#[test]
fn cipstatus_ok_then_state() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIPSTATUS");
    p.expect = vec![m("STATE: IP STATUS")];
    let o = d.run(p, |_, _| b"\r\nOK\r\n\r\nSTATE: IP STATUS\r\n".to_vec());
    assert!(o.passed());
}

#[test]
fn shut_ok_is_the_final_result() {
    let mut d = Drive::new();
    let o = d.run(plan("AT+CIPSHUT"), |_, _| b"\r\nSHUT OK\r\n".to_vec());
    assert!(o.passed());
}

#[test]
fn error_fails_and_retries_with_backoff() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIICR");
    p.abort = default_aborts();
    p.retries = 3;
    p.retry_delay = Duration::from_millis(100);
    p.backoff = 2.0;
    let start = d.now;
    let o = d.run(p, |i, _| {
        if i < 2 {
            b"\r\nERROR\r\n".to_vec()
        } else {
            b"\r\nOK\r\n".to_vec()
        }
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.attempts, 3);
    // Two pauses: 100 ms, then 200 ms.
    assert_eq!(d.now - start, Duration::from_millis(300));
    let retries: Vec<_> = d
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Retry { .. }))
        .collect();
    assert_eq!(retries.len(), 2);
}

#[test]
fn recover_commands_run_before_each_retry() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIICR");
    p.abort = default_aborts();
    p.retries = 1;
    p.retry_delay = Duration::ZERO;
    p.recover = vec!["AT+CIPSHUT".into(), "AT+CSTT=\"nbiot\"".into()];
    let o = d.run(p, |i, w| match (i, w) {
        (0, _) => b"\r\n+CME ERROR: operation failed\r\n".to_vec(),
        (_, b"AT+CIPSHUT\r") => b"\r\nSHUT OK\r\n".to_vec(),
        // A recover command's error is ignored.
        (_, b"AT+CSTT=\"nbiot\"\r") => b"\r\nERROR\r\n".to_vec(),
        _ => b"\r\nOK\r\n".to_vec(),
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(
        d.written(),
        vec![
            "AT+CIICR\r",
            "AT+CIPSHUT\r",
            "AT+CSTT=\"nbiot\"\r",
            "AT+CIICR\r"
        ]
    );
}

#[test]
fn retries_exhausted_report_the_last_failure() {
    let mut d = Drive::new();
    let mut p = plan("AT+CPIN?");
    p.retries = 1;
    p.retry_delay = Duration::ZERO;
    p.abort = default_aborts();
    let o = d.run(p, |_, _| b"\r\n+CME ERROR: SIM not inserted\r\n".to_vec());
    assert_eq!(o.attempts, 2);
    assert!(
        matches!(o.failure, Some(Failure::Aborted { ref line, .. }) if line.contains("SIM not inserted"))
    );
}

#[test]
fn timeout_when_silent() {
    let mut d = Drive::new();
    let mut p = plan("AT");
    p.timeout = Duration::from_millis(300);
    let o = d.run(p, |_, _| Vec::new());
    assert_eq!(
        o.failure,
        Some(Failure::Timeout {
            waited: Duration::from_millis(300),
            waiting_for: "the final result of `AT`".into()
        })
    );
    assert!(o.failure.as_ref().is_some_and(Failure::is_timeout));
}

#[test]
fn until_polls_within_deadline() {
    let mut d = Drive::new();
    let mut p = plan("AT+CEREG?");
    p.until = vec![m("+CEREG: 0,1"), m("+CEREG: 0,5")];
    p.interval = Duration::from_secs(2);
    p.deadline = Some(Duration::from_secs(60));
    let o = d.run(p.clone(), |i, _| {
        if i < 3 {
            b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n".to_vec()
        } else {
            b"\r\n+CEREG: 0,5\r\n\r\nOK\r\n".to_vec()
        }
    });
    assert!(o.passed());
    assert_eq!(o.polls, 4);
    // Never registering: fails at the deadline with the poll count.
    let mut d = Drive::new();
    p.deadline = Some(Duration::from_secs(7));
    let o = d.run(p, |_, _| b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n".to_vec());
    assert!(
        matches!(o.failure, Some(Failure::UntilNotMet { polls: 4, .. })),
        "{o:?}"
    );
}

#[test]
fn expect_takes_precedence_over_abort() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIPSTART=\"TCP\",\"x\",1");
    p.abort = default_aborts();
    p.expect = vec![m("CONNECT FAIL")];
    let o = d.run(p, |_, _| b"\r\nOK\r\n\r\nCONNECT FAIL\r\n".to_vec());
    assert!(o.passed(), "{o:?}");
}

#[test]
fn lines_before_the_echo_are_stale() {
    let mut d = Drive::new();
    d.run(plan("AT"), |_, _| b"AT\r\r\nOK\r\n".to_vec());
    assert_eq!(d.session.echo(), Echo::On);
    let mut p = plan("AT+CSQ");
    p.expect = vec![m("+CSQ:")];
    // A stray OK from an earlier command arrives before our echo.
    let o = d.run(p, |_, _| {
        b"\r\nOK\r\nAT+CSQ\r\r\n+CSQ: 5,99\r\n\r\nOK\r\n".to_vec()
    });
    assert!(o.passed());
    assert_eq!(o.lines, vec!["+CSQ: 5,99", "OK"]);
}

fn data_plan(payload: &[u8], chunk: Option<usize>) -> StepPlan {
    let mut p = plan("send");
    p.action = PlanAction::Data(DataPlan {
        payload: payload.to_vec(),
        chunk,
        hex: false,
    });
    p.abort = default_aborts();
    p
}

#[test]
fn data_send_binary_safe_in_chunks_with_size_query() {
    let payload: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut d = Drive::new();
    let o = d.run(data_plan(&payload, None), |_, w| {
        let w = String::from_utf8_lossy(w);
        if w == "AT+CIPSEND?\r" {
            b"\r\n+CIPSEND: 1460\r\n\r\nOK\r\n".to_vec()
        } else if w.starts_with("AT+CIPSEND=") {
            b"\r\n> ".to_vec()
        } else {
            b"\r\nSEND OK\r\n".to_vec()
        }
    });
    assert!(o.passed(), "{o:?}");
    let w = &d.writes;
    assert_eq!(w[0], b"AT+CIPSEND?\r");
    assert_eq!(w[1], b"AT+CIPSEND=1460\r");
    assert_eq!(w[3], b"AT+CIPSEND=1460\r");
    assert_eq!(w[5], b"AT+CIPSEND=80\r");
    let sent: Vec<u8> = [&w[2], &w[4], &w[6]]
        .iter()
        .flat_map(|v| v.iter().copied())
        .collect();
    assert_eq!(sent, payload);
}

#[test]
fn data_send_skips_payload_echo_and_handles_quick_send() {
    let payload = b"\x10\x1a\r\nOK\r\n\x1b\x00".to_vec();
    let mut d = Drive::new();
    d.run(plan("AT"), |_, _| b"AT\r\r\nOK\r\n".to_vec()); // echo on
    // Quick-send mode (`AT+CIPQSEND=1`) answers `DATA ACCEPT:<len>` instead of `SEND OK`.
    let p = data_plan(&payload, Some(1460));
    let o = d.run(p, |i, w| match i {
        1 => {
            let mut v = w.to_vec();
            v.extend_from_slice(b"\r\n> ");
            v
        }
        // The modem echoes the payload, then accepts it.
        _ => {
            let mut v = w.to_vec();
            v.extend_from_slice(b"\r\nDATA ACCEPT:10\r\n");
            v
        }
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.lines, vec!["DATA ACCEPT:10"]);
}

#[test]
fn data_send_failure_is_reported() {
    let mut d = Drive::new();
    let o = d.run(data_plan(b"abc", Some(1460)), |i, _| {
        if i == 0 {
            b"\r\n> ".to_vec()
        } else {
            b"\r\nSEND FAIL\r\n".to_vec()
        }
    });
    assert!(matches!(o.failure, Some(Failure::Aborted { ref line, .. }) if line == "SEND FAIL"));
}

#[test]
fn no_prompt_times_out_with_a_clear_reason() {
    let mut d = Drive::new();
    let mut p = data_plan(b"abc", Some(1460));
    p.timeout = Duration::from_secs(1);
    let o = d.run(p, |_, _| Vec::new());
    assert_eq!(
        o.failure,
        Some(Failure::Timeout {
            waited: Duration::from_secs(1),
            waiting_for: "the `> ` prompt after `AT+CIPSEND=3`".into()
        })
    );
}

#[test]
fn hex_mode_refuses_ctrl_z_and_sends_hex_text() {
    let mut d = Drive::new();
    let mut p = data_plan(b"\x30\x1a", None);
    if let PlanAction::Data(dp) = &mut p.action {
        dp.hex = true;
    }
    let o = d.run(p.clone(), |_, _| Vec::new());
    assert!(
        matches!(o.failure, Some(Failure::Data { ref message }) if message.contains("byte 1 is 0x1A"))
    );
    let mut d = Drive::new();
    if let PlanAction::Data(dp) = &mut p.action {
        dp.payload = vec![0x30, 0x00, 0xff];
    }
    let o = d.run(p, |i, _| {
        if i == 0 {
            b"\r\n> ".to_vec()
        } else {
            b"\r\nSEND OK\r\n".to_vec()
        }
    });
    assert!(o.passed());
    assert_eq!(d.written(), vec!["AT+CIPSEND\r", "30 00 FF 1A"]);
}

#[test]
fn prompt_data_is_typed_after_the_prompt() {
    let mut d = Drive::new();
    let mut p = plan("AT+SMPUB=\"t\",5,0,0");
    p.prompt_data = Some(b"hello".to_vec());
    p.abort = default_aborts();
    let o = d.run(p, |i, _| match i {
        0 => b"\r\n> ".to_vec(),
        _ => b"\r\nOK\r\n".to_vec(),
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(d.written(), vec!["AT+SMPUB=\"t\",5,0,0\r", "hello"]);
}

#[test]
fn wait_step_matches_urcs() {
    let mut session = Session::new(Vec::new());
    let now = Instant::now();
    let mut p = plan("wait");
    p.action = PlanAction::Wait(Duration::from_secs(30));
    p.expect = vec![m("SMS Ready")];
    session.start(p, now, None);
    assert!(matches!(session.poll(now), Action::Wait(_)));
    session.feed(b"\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n", now);
    assert!(matches!(session.poll(now), Action::Done(o) if o.passed()));
}

#[test]
fn urc_handler_fails_the_step_at_once() {
    let rules = vec![UrcRule {
        matcher: m("+PDP: DEACT"),
        fail: true,
        message: "network released the PDP context".into(),
    }];
    let mut d = Drive::with_rules(rules);
    let mut p = plan("AT+CIPSEND=5");
    p.retries = 5;
    let o = d.run(p, |_, _| b"\r\n+PDP: DEACT\r\n".to_vec());
    assert_eq!(o.attempts, 1, "fatal failures are not retried");
    assert_eq!(
        o.failure,
        Some(Failure::Urc {
            line: "+PDP: DEACT".into(),
            message: "network released the PDP context".into()
        })
    );
}

#[test]
fn boot_urcs_after_sync_are_not_a_reboot_but_later_ones_are() {
    let mut d = Drive::new();
    // Sync, then the autobaud boot URCs arrive during the first step.
    assert!(d.run(plan("AT"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    let o = d.run(plan("ATE0"), |_, _| {
        b"ATE0\r\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n".to_vec()
    });
    assert!(o.passed());
    assert!(d.events().iter().any(|e| matches!(e, Event::Boot(_))));
    let o = d.run(plan("AT+CSQ"), |_, _| b"\r\nSMS Ready\r\n".to_vec());
    assert_eq!(
        o.failure,
        Some(Failure::Rebooted {
            line: "SMS Ready".into()
        })
    );
    // A reboot command re-opens the window.
    let mut p = plan("AT+CFUN=1,1");
    p.timeout = Duration::from_secs(10);
    assert!(d.run(p, |_, _| b"\r\nOK\r\n".to_vec()).passed());
    // The reboot's URCs arrive during the next step: not a failure.
    let o = d.run(plan("AT"), |_, _| {
        b"\r\nOK\r\n\r\nRDY\r\n\r\nSMS Ready\r\n".to_vec()
    });
    assert!(o.passed(), "{o:?}");
}

#[test]
fn extra_rxget_urcs_before_the_read_reply() {
    let mut d = Drive::new();
    let o = d.run(plan("AT+CIPRXGET=2,1460"), |_, _| {
        b"\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 2,3,0\r\n\x20\x02\x00\r\nOK\r\n".to_vec()
    });
    assert!(o.passed());
    let ev = d.events();
    assert!(ev.contains(&Event::Data(vec![0x20, 0x02, 0x00])));
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(
                e,
                Event::Unsolicited {
                    urc: Some(crate::at::Urc::RxData),
                    ..
                }
            ))
            .count(),
        2
    );
}

#[test]
fn deadline_bounds_retries() {
    let mut d = Drive::new();
    let mut p = plan("AT");
    p.timeout = Duration::from_secs(1);
    p.retries = 100;
    p.retry_delay = Duration::from_secs(1);
    p.deadline = Some(Duration::from_secs(5));
    let start = d.now;
    let o = d.run(p, |_, _| Vec::new());
    assert!(o.failure.as_ref().is_some_and(Failure::is_timeout));
    assert!(d.now - start <= Duration::from_secs(5));
}

// ---- MQTT over the modem -------------------------------------------------------------

use crate::mqtt::{ConnAck, Connect, Packet, PacketType, Protocol, Publish, QoS};

fn mqtt_plan(want: MqttWant, timeout: Duration) -> StepPlan {
    let mut p = plan("mqtt");
    p.action = PlanAction::Mqtt(MqttPlan {
        want,
        packet_id: None,
        duration: None,
        keep_alive: None,
    });
    p.timeout = timeout;
    p.abort = default_aborts();
    p
}

/// A modem that accepts sends: answers the size query, prompts, and confirms data.
fn sender(_: usize, w: &[u8]) -> Vec<u8> {
    if w == b"AT+CIPSEND?\r" {
        b"\r\n+CIPSEND: 1460\r\n\r\nOK\r\n".to_vec()
    } else if w.starts_with(b"AT+CIPSEND=") {
        b"\r\n> ".to_vec()
    } else {
        b"\r\nSEND OK\r\n".to_vec()
    }
}

fn enc(p: Packet) -> Vec<u8> {
    p.encode(Protocol::V311).unwrap()
}

/// Connect the session's link: a mode command, CIPSTART, and our CONNECT sent.
fn connected(d: &mut Drive, mode_cmd: &str, keep_alive: u16) {
    assert!(
        d.run(plan(mode_cmd), |_, _| b"\r\nOK\r\n".to_vec())
            .passed()
    );
    assert!(
        d.run(plan("AT+CIPSTART=\"TCP\",\"b\",1883"), |_, _| {
            b"\r\nOK\r\n\r\nCONNECT OK\r\n".to_vec()
        })
        .passed()
    );
    let mut c = Connect::new(Protocol::V311, "dev");
    c.keep_alive = keep_alive;
    let o = d.run(data_plan(&enc(Packet::Connect(c)), Some(1460)), sender);
    assert!(o.passed(), "{o:?}");
}

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
        Some(Failure::Mqtt { message }) => {
            assert!(message.contains("bad user name or password"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pushed_qos1_messages_are_acknowledged_and_counted() {
    let mut d = Drive::new();
    connected(&mut d, "AT+CIPRXGET=0", 60);
    let mut p = Publish::new("a/b", b"hi\r\nthere".to_vec());
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
        |e| matches!(e, Event::Message(m) if m.topic == "a/b" && m.payload == b"hi\r\nthere")
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
        Some(Failure::Mqtt { message }) => assert!(message.contains("PINGREQ"), "{message}"),
        other => panic!("{other:?}"),
    }
    let w = &d.writes[before..];
    assert_eq!(w[0], b"AT+CIPSEND?\r");
    assert_eq!(w[1], b"AT+CIPSEND=2\r");
    assert_eq!(w[2], vec![0xC0, 0x00]);
    assert_eq!(w.len(), 3, "one PINGREQ, then the failure");
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
        matches!(o.failure, Some(Failure::Mqtt { ref message }) if message.contains("closed")),
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

// ---- regressions from review ---------------------------------------------------------

#[test]
fn a_late_sms_ready_after_rdy_is_the_boot_not_a_reboot() {
    let mut d = Drive::new();
    // Fixed baud: RDY during the sync, SMS Ready seconds later, during the third step.
    assert!(
        d.run(plan("AT"), |_, _| b"\r\nRDY\r\n\r\nOK\r\n".to_vec())
            .passed()
    );
    assert!(d.run(plan("ATE0"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    assert!(
        d.run(plan("AT+CSQ"), |_, _| b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n"
            .to_vec())
            .passed()
    );
    d.now += Duration::from_secs(5);
    let o = d.run(plan("AT+CPIN?"), |_, _| {
        b"\r\n+CPIN: READY\r\n\r\nOK\r\n\r\nSMS Ready\r\n".to_vec()
    });
    assert!(o.passed(), "{o:?}");
    // After that boot, a new RDY is a reboot.
    let o = d.run(plan("AT+CSQ"), |_, _| b"\r\nRDY\r\n".to_vec());
    assert!(matches!(o.failure, Some(Failure::Rebooted { .. })), "{o:?}");
}

#[test]
fn an_unanswered_poll_is_polled_again() {
    let mut d = Drive::new();
    let mut p = plan("AT+CEREG?");
    p.until = vec![m("+CEREG: 0,1")];
    p.timeout = Duration::from_millis(300);
    p.interval = Duration::from_millis(100);
    p.deadline = Some(Duration::from_secs(10));
    let o = d.run(p, |i, _| match i {
        0 | 1 => Vec::new(), // lost replies
        _ => b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n".to_vec(),
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.polls, 3);
}

#[test]
fn extreme_retry_settings_do_not_panic() {
    let mut d = Drive::new();
    let mut p = plan("AT");
    p.timeout = Duration::from_millis(10);
    p.retries = 3;
    p.retry_delay = Duration::from_secs(1);
    p.backoff = 1e30;
    p.deadline = Some(Duration::MAX);
    p.abort = default_aborts();
    let o = d.run(p, |i, _| {
        if i < 2 {
            b"\r\nERROR\r\n".to_vec()
        } else {
            b"\r\nOK\r\n".to_vec()
        }
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.attempts, 3);
    // The second pause was clamped to an hour, not 1e30 seconds.
    assert!(
        o.elapsed <= Duration::from_secs(1 + 3600),
        "{:?}",
        o.elapsed
    );
    // A huge delay or timeout saturates instead of overflowing.
    let mut p = plan("AT");
    p.delay = Duration::MAX / 2;
    p.timeout = Duration::MAX;
    p.deadline = Some(Duration::from_secs(5));
    let o = d.run(p, |_, _| Vec::new());
    assert!(o.failure.is_some_and(|f| f.is_timeout()));
}

#[test]
fn a_bogus_length_header_does_not_swallow_the_next_command() {
    let mut d = Drive::new();
    let mut p = plan("AT+X");
    p.timeout = Duration::from_millis(200);
    // A header announcing 2000 bytes that never come.
    let o = d.run(p, |_, _| b"\r\n+RECEIVE,0,2000:\r\nabc".to_vec());
    assert!(matches!(o.failure, Some(Failure::Timeout { .. })));
    assert!(d.run(plan("AT"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
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
