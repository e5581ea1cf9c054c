//! Start-up and restart detection (issue 10 point 13: a lone `SMS Ready` or
//! `+CPIN: READY` is only suspected; `RDY` or a lost setting confirms; a confirmed restart
//! fails at any time, also in the first 30 s).

use std::time::Duration;

use super::*;

fn notes(d: &mut Drive) -> Vec<String> {
    d.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Note(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn csq_ok() -> Vec<u8> {
    b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n".to_vec()
}

#[test]
fn boot_urcs_after_sync_are_the_boot_and_a_later_lone_one_is_only_suspected() {
    let mut d = Drive::new();
    // Sync, then the autobaud boot URCs arrive during the first step.
    assert!(d.run(plan("AT"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    let o = d.run(plan("ATE0"), |_, _| {
        b"ATE0\r\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n".to_vec()
    });
    assert!(o.passed());
    assert!(d.events().iter().any(|e| matches!(e, Event::Boot(_))));
    // Before: a lone `SMS Ready` failed the run as a restart. Now it is logged.
    let o = d.run(plan("AT+CSQ"), |_, _| {
        let mut r = csq_ok();
        r.extend_from_slice(b"\r\nSMS Ready\r\n");
        r
    });
    assert!(o.passed(), "{o:?}");
    assert!(
        notes(&mut d)
            .iter()
            .any(|n| n.contains("restart suspected")),
        "the suspicion is logged"
    );
    // A reset command re-opens the window: its RDY and SMS Ready are not a failure.
    let mut p = plan("AT+CFUN=1,1");
    p.timeout = Duration::from_secs(10);
    assert!(d.run(p, |_, _| b"\r\nOK\r\n".to_vec()).passed());
    let o = d.run(plan("AT"), |_, _| {
        b"\r\nOK\r\n\r\nRDY\r\n\r\nSMS Ready\r\n".to_vec()
    });
    assert!(o.passed(), "{o:?}");
}

#[test]
fn a_late_sms_ready_after_rdy_is_the_boot_not_a_reboot() {
    let mut d = Drive::new();
    // Fixed baud: RDY during the sync, SMS Ready seconds later, during the third step.
    assert!(
        d.run(plan("AT"), |_, _| b"\r\nRDY\r\n\r\nOK\r\n".to_vec())
            .passed()
    );
    assert!(d.run(plan("ATE0"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    assert!(d.run(plan("AT+CSQ"), |_, _| csq_ok()).passed());
    d.now += Duration::from_secs(5);
    let o = d.run(plan("AT+CPIN?"), |_, _| {
        b"\r\n+CPIN: READY\r\n\r\nOK\r\n\r\nSMS Ready\r\n".to_vec()
    });
    assert!(o.passed(), "{o:?}");
    // After that boot, a new RDY is a restart.
    let o = d.run(plan("AT+CSQ"), |_, _| b"\r\nRDY\r\n".to_vec());
    assert!(matches!(o.failure, Some(Failure::Rebooted { .. })), "{o:?}");
}

/// Before: within 30 s of the first step any RDY was taken for the power-on boot.
#[test]
fn a_restart_in_the_first_seconds_of_a_running_modem_is_caught() {
    let mut d = Drive::new();
    assert!(d.run(plan("AT"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    let o = d.run(plan("AT+CSQ"), |_, _| b"\r\nRDY\r\n".to_vec());
    match o.failure {
        Some(Failure::Rebooted { line, evidence }) => {
            assert_eq!(line, "RDY");
            assert!(evidence.contains("only at power-on"), "{evidence}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_suspected_restart_is_confirmed_when_the_echo_comes_back_after_ate0() {
    let mut d = Drive::new();
    assert!(
        d.run(plan("AT"), |_, _| b"AT\r\r\nOK\r\n".to_vec())
            .passed()
    );
    assert!(
        d.run(plan("ATE0"), |_, _| b"ATE0\r\r\nOK\r\n".to_vec())
            .passed()
    );
    // ATE0 is seen in force.
    assert!(d.run(plan("AT+CSQ"), |_, _| csq_ok()).passed());
    d.now += Duration::from_secs(40);
    // A lone `+CPIN: READY` long after the start: suspected only.
    let o = d.run(plan("AT+CSQ"), |_, _| {
        let mut r = csq_ok();
        r.extend_from_slice(b"\r\n+CPIN: READY\r\n");
        r
    });
    assert!(o.passed(), "{o:?}");
    // The module echoes again: the recipe's setting is gone, it restarted.
    let o = d.run(plan("AT+CSQ"), |_, _| {
        let mut r = b"AT+CSQ\r".to_vec();
        r.extend_from_slice(&csq_ok());
        r
    });
    match o.failure {
        Some(Failure::Rebooted { line, evidence }) => {
            assert_eq!(line, "+CPIN: READY");
            assert!(evidence.contains("echo came back"), "{evidence}");
            let text = Failure::Rebooted { line, evidence }.to_string();
            assert!(text.contains("restarted mid-run"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_suspected_restart_is_ruled_out_when_echo_stays_off() {
    let mut d = Drive::new();
    assert!(
        d.run(plan("ATE0"), |_, _| b"ATE0\r\r\nOK\r\n".to_vec())
            .passed()
    );
    assert!(d.run(plan("AT+CSQ"), |_, _| csq_ok()).passed());
    d.now += Duration::from_secs(40);
    let o = d.run(plan("AT"), |_, _| b"\r\nOK\r\n\r\nSMS Ready\r\n".to_vec());
    assert!(o.passed());
    assert!(d.run(plan("AT+CSQ"), |_, _| csq_ok()).passed());
    let n = notes(&mut d);
    assert!(n.iter().any(|n| n.contains("not a restart")), "{n:?}");
    // Ruled out: a later echo (say, the recipe's own ATE1) confirms nothing.
    assert!(d.run(plan("ATE1"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    assert!(
        d.run(plan("AT"), |_, _| b"AT\r\r\nOK\r\n".to_vec())
            .passed()
    );
}

#[test]
fn a_module_that_ignores_ate0_is_no_restart() {
    // `echo-stuck`: ATE0 answers OK but echo stays on; a late SMS Ready then proves nothing.
    let mut d = Drive::new();
    assert!(
        d.run(plan("ATE0"), |_, _| b"ATE0\r\r\nOK\r\n".to_vec())
            .passed()
    );
    let echoed = |_: usize, w: &[u8]| {
        let mut r = w.to_vec();
        r.extend_from_slice(b"\r\nOK\r\n");
        r
    };
    assert!(d.run(plan("AT"), echoed).passed());
    d.now += Duration::from_secs(40);
    let o = d.run(plan("AT"), |_, _| {
        b"AT\r\r\nOK\r\n\r\nSMS Ready\r\n".to_vec()
    });
    assert!(o.passed(), "{o:?}");
    assert!(d.run(plan("AT"), echoed).passed());
}

#[test]
fn ip_initial_while_connected_confirms_a_suspected_restart() {
    let mut d = Drive::new();
    assert!(d.run(plan("AT"), |_, _| b"\r\nOK\r\n".to_vec()).passed());
    let mut p = plan("AT+CIPSTART=\"TCP\",\"b\",1883");
    p.timeout = Duration::from_secs(10);
    assert!(
        d.run(p, |_, _| b"\r\nOK\r\n\r\nCONNECT OK\r\n".to_vec())
            .passed()
    );
    d.now += Duration::from_secs(40);
    let o = d.run(plan("AT"), |_, _| b"\r\nOK\r\n\r\nSMS Ready\r\n".to_vec());
    assert!(o.passed());
    let o = d.run(plan("AT+CIPSTATUS"), |_, _| {
        b"\r\nOK\r\n\r\nSTATE: IP INITIAL\r\n".to_vec()
    });
    match o.failure {
        Some(Failure::Rebooted { evidence, .. }) => {
            assert!(evidence.contains("IP INITIAL"), "{evidence}")
        }
        other => panic!("{other:?}"),
    }
}
