//! Issue 10 point 11: with echo on, payload bytes typed after `> ` are never modem lines,
//! whatever the echo does. Before, a payload holding the line `SEND OK` ended the send at
//! its echo, and one holding `+PDP: DEACT` failed the run through the URC handler.

use std::time::Duration;

use super::*;

const PAYLOAD: &[u8] = b"\x10abc\r\nSEND OK\r\n+PDP: DEACT\r\nxyz\x00";

fn rules() -> Vec<UrcRule> {
    vec![UrcRule {
        matcher: m("+PDP: DEACT"),
        fail: true,
        message: "the network released the PDP context".into(),
    }]
}

/// Answers the prompt, then `echo(payload)` and, if `result`, the real `SEND OK`.
fn modem(echo: impl Fn(&[u8]) -> Vec<u8>, result: bool) -> impl FnMut(usize, &[u8]) -> Vec<u8> {
    move |_, w| {
        if w.starts_with(b"AT+CIPSEND=") {
            let mut r = w.to_vec();
            r.extend_from_slice(b"\r\n> ");
            r
        } else {
            let mut r = echo(w);
            if result {
                r.extend_from_slice(b"\r\nSEND OK\r\n");
            }
            r
        }
    }
}

fn send(d: &mut Drive, echo: impl Fn(&[u8]) -> Vec<u8>, result: bool) -> StepOutcome {
    let mut p = data_plan(PAYLOAD, Some(1460));
    p.timeout = Duration::from_secs(2);
    d.run(p, modem(echo, result))
}

#[test]
fn the_echo_of_send_ok_does_not_end_the_send() {
    // Only the echo comes back, no result: the send must not pass.
    let mut d = Drive::with_rules(rules());
    let o = send(&mut d, |w| w.to_vec(), false);
    assert!(matches!(o.failure, Some(Failure::Timeout { .. })), "{o:?}");
    // With the real result after the echo: it passes, on that result.
    let mut d = Drive::with_rules(rules());
    let o = send(&mut d, |w| w.to_vec(), true);
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.lines, vec!["SEND OK"]);
    assert!(
        !d.events()
            .iter()
            .any(|e| matches!(e, Event::Unsolicited { .. })),
        "no payload line taken for a URC"
    );
}

/// Type the payload; the modem echoes `echo`, then after `pause` sends the result.
fn send_with_pause(d: &mut Drive, echo: &[u8], pause: Duration) -> StepOutcome {
    let mut p = data_plan(PAYLOAD, Some(1460));
    p.timeout = Duration::from_secs(5);
    d.session.start(p, d.now, None);
    let mut result_at = None;
    for _ in 0..1000 {
        match d.session.poll(d.now) {
            Action::Write(w) => {
                if w.starts_with(b"AT+CIPSEND=") {
                    d.session.feed(b"\r\n> ", d.now);
                } else {
                    d.session.feed(echo, d.now);
                    result_at = Some(d.now + pause);
                }
                d.writes.push(w);
            }
            Action::Wait(t) => match result_at {
                Some(r) if r <= t => {
                    d.now = r.max(d.now);
                    result_at = None;
                    d.session.feed(b"\r\nSEND OK\r\n", d.now);
                }
                _ => d.now = t,
            },
            Action::Done(o) => return o,
        }
    }
    panic!("never finished");
}

#[test]
fn an_echo_without_control_bytes_that_stops_early() {
    // Stops in the middle of a payload line.
    let mut d = Drive::with_rules(rules());
    let o = send_with_pause(&mut d, b"ab", Duration::ZERO);
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.lines, vec!["SEND OK"]);
    // Stops right before the payload's own `SEND OK` line: the real one, after the network
    // round trip, is told from its echo by the pause (see `ECHO_QUIET`).
    let mut d = Drive::with_rules(rules());
    let o = send_with_pause(&mut d, b"abc\r\n", Duration::from_millis(1500));
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.lines, vec!["SEND OK"]);
    // Without a pause that case is ambiguous: a timeout, never a pass on payload bytes.
    let mut d = Drive::with_rules(rules());
    let o = send_with_pause(&mut d, b"abc\r\n", Duration::ZERO);
    assert!(matches!(o.failure, Some(Failure::Timeout { .. })), "{o:?}");
}

#[test]
fn an_echo_interrupted_by_a_urc() {
    let mut d = Drive::with_rules(rules());
    let interrupted = |w: &[u8]| -> Vec<u8> {
        let mut r = w[..8].to_vec();
        r.extend_from_slice(b"\r\n+CIPRXGET: 1\r\n");
        r.extend_from_slice(&w[8..]);
        r
    };
    let o = send(&mut d, interrupted, true);
    assert!(o.passed(), "{o:?}");
    let urcs: Vec<String> = d
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Unsolicited { line, .. } => Some(line),
            _ => None,
        })
        .collect();
    assert_eq!(urcs, vec!["+CIPRXGET: 1"]);
}

#[test]
fn an_echo_that_sim7k_believed_off() {
    // `ATE0` answered OK, but the module keeps echoing (echo-stuck firmware).
    let mut d = Drive::with_rules(rules());
    assert!(d.run(plan("ATE0"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    assert_eq!(d.session.echo(), Echo::Off);
    let o = send(&mut d, |w| w.to_vec(), false);
    assert!(o.failure.is_some_and(|f| !matches!(f, Failure::Urc { .. })));
}
