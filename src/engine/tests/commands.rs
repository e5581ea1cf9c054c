//! Command steps: reply shapes, echo, retries, polls, waits.

use std::time::Duration;

use super::*;

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
    // Issue 10 point 3: nothing at all came back: "no reply", a timeout (exit 3).
    assert_eq!(
        o.failure,
        Some(Failure::NoReply {
            command: "AT".into(),
            waited: Duration::from_millis(300),
            times: 1,
            echo_only: false,
            last_answer: None,
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

/// Issue 11 point 15 (engine side): no wait inside a step outlives the step's or the
/// recipe's deadline, whatever the command's own timeout.
#[test]
fn no_exchange_outlives_the_tightest_deadline() {
    let mut d = Drive::new();
    let mut p = plan("AT+CIPSTART=\"TCP\",\"b\",1883");
    p.timeout = Duration::from_secs(75);
    p.deadline = Some(Duration::from_secs(20));
    let start = d.now;
    d.session
        .start(p, start, Some(start + Duration::from_secs(5)));
    let o = d.run_continue();
    assert!(matches!(o.failure, Some(Failure::Deadline { .. })), "{o:?}");
    assert_eq!(d.now - start, Duration::from_secs(5));
}

#[test]
fn an_unanswered_poll_is_polled_again() {
    let mut d = Drive::new();
    let mut p = plan("AT+CEREG?");
    p.until = vec![m("+CEREG: 0,1")];
    p.timeout = Duration::from_millis(300);
    p.interval = Duration::from_millis(100);
    p.deadline = Some(Duration::from_secs(10));
    let o = d.run(p.clone(), |i, _| match i {
        0 => Vec::new(), // a lost reply
        1 => b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n".to_vec(),
        2 => Vec::new(), // another, not in a row
        _ => b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n".to_vec(),
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.polls, 4);
}

/// Issue 10 point 3: two polls in a row without any reply end the step as "no reply"
/// (exit 3), naming the command and when the modem last answered; before, it polled on
/// until the deadline and reported "no line matched" (exit 1).
#[test]
fn two_silent_polls_in_a_row_are_no_reply() {
    let mut d = Drive::new();
    assert!(
        d.run(plan("AT+CSQ"), |_, _| b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n"
            .to_vec())
            .passed()
    );
    let mut p = plan("AT+CEREG?");
    p.until = vec![m("+CEREG: 0,1")];
    p.timeout = Duration::from_millis(300);
    p.interval = Duration::from_millis(100);
    p.deadline = Some(Duration::from_secs(180));
    let start = d.now;
    // The modem answers twice, then goes silent (write 0 was `AT+CSQ`).
    let o = d.run(p.clone(), |i, _| match i {
        1 | 2 => b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n".to_vec(),
        _ => Vec::new(),
    });
    match &o.failure {
        Some(
            f @ Failure::NoReply {
                command,
                times,
                last_answer,
                ..
            },
        ) => {
            assert_eq!(command, "AT+CEREG?");
            assert_eq!(*times, 2);
            assert_eq!(
                last_answer.as_ref().map(|a| a.command.as_str()),
                Some("AT+CEREG?")
            );
            assert_eq!(f.kind(), crate::exit::Exit::Timeout);
            let text = f.to_string();
            assert!(text.contains("did not answer `AT+CEREG?`"), "{text}");
            assert!(text.contains("last answered"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.polls, 4);
    // Ended after the two silent polls, not at the deadline.
    assert!(
        d.now - start < Duration::from_secs(5),
        "{:?}",
        d.now - start
    );
    // Replies that never match keep their exit 1 until the deadline.
    let mut p = p;
    p.deadline = Some(Duration::from_secs(3));
    let o = d.run(p, |_, _| b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n".to_vec());
    assert!(
        matches!(&o.failure, Some(f @ Failure::UntilNotMet { .. }) if f.kind() == crate::exit::Exit::StepFailed),
        "{o:?}"
    );
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

/// A modem stuck echoing (it echoes every command and answers nothing) did not answer.
#[test]
fn an_echo_alone_is_no_reply() {
    let mut d = Drive::new();
    let mut p = plan("AT+CEREG?");
    p.until = vec![m("+CEREG: 0,1")];
    p.timeout = Duration::from_millis(300);
    p.deadline = Some(Duration::from_secs(60));
    let o = d.run(p, |_, w| w.to_vec());
    match &o.failure {
        Some(f @ Failure::NoReply { echo_only, .. }) => {
            assert!(*echo_only);
            assert!(f.to_string().contains("only echoed"), "{f}");
        }
        other => panic!("{other:?}"),
    }
}
