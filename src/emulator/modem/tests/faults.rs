//! Injected faults.

use std::time::Duration;

use super::*;
use crate::emulator::config::{BootMode, EmulatorConfig};
use crate::emulator::fault::Fault;

// ----- faults ----------------------------------------------------------------------------------

#[test]
fn fault_drip() {
    let mut h = with_faults(&["drip=10ms"]);
    // The first AT's output is dripping out already; drain it.
    for _ in 0..200 {
        h.advance(Duration::from_millis(10));
    }
    h.m.feed(b"AT\r", h.t);
    let first = h.m.take_output(h.t);
    assert_eq!(first, b"\r");
    assert_eq!(h.m.next_deadline(), Some(h.t + Duration::from_millis(10)));
    let mut all = first;
    for _ in 0..5 {
        let b = h.advance(Duration::from_millis(10));
        assert_eq!(b.len(), 1);
        all.extend(b);
    }
    assert_eq!(all, b"\r\nOK\r\n");
    assert_eq!(h.m.next_deadline(), None);
}

#[test]
fn fault_error_by_count() {
    let mut h = with_faults(&["error=AT+CIICR:2"]);
    h.cmd("AT+CSTT");
    h.expect("AT+CIICR", b"\r\nERROR\r\n");
    assert_eq!(h.state(), "PDP DEACT");
    h.cmd("AT+CIPSHUT");
    h.cmd("AT+CSTT");
    h.expect("AT+CIICR", b"\r\nERROR\r\n");
    h.cmd("AT+CIPSHUT");
    h.cmd("AT+CSTT");
    h.expect("AT+CIICR", b"\r\nOK\r\n");
    h.expect("AT+CMEE=2", b"\r\nOK\r\n");
}

#[test]
fn fault_error_matches_names_not_prefixes() {
    let mut h = with_faults(&["error=CIPSEND"]);
    h.connect();
    h.expect("AT+CIPSENDHEX=0", b"\r\nOK\r\n");
    h.expect("AT+CMEE=2", b"\r\nOK\r\n");
    h.expect("AT+CIPSEND=3", b"\r\n+CME ERROR: operation failed\r\n");
    h.expect("AT+CIPSEND?", b"\r\n+CME ERROR: operation failed\r\n");
}

#[test]
fn fault_urc_in_response() {
    let mut h = H::new(EmulatorConfig {
        faults: vec!["urc-in-response=CIPSHUT:1".parse().unwrap()],
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    let o = h.cmds("AT+CIPSHUT");
    assert_eq!(
        o,
        "AT+CIPSHUT\r\r\nDST: 1\r\n\r\n*PSUTTZ: 25/01/01,12:00:00\",\"+04\",1\r\n\r\nSHUT OK\r\n"
    );
    assert_eq!(h.cmds("AT+CIPSHUT"), "AT+CIPSHUT\r\r\nSHUT OK\r\n");
}

#[test]
fn fault_extra_rxget() {
    let mut h = with_faults(&["extra-rxget=2"]);
    h.cmd("AT+CIPRXGET=1");
    let id = h.connect();
    h.net(NetEvent::Received {
        id,
        data: b"abc".to_vec(),
    });
    h.expect(
        "AT+CIPRXGET=2,10",
        b"\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 2,3,0\r\nabc\r\nOK\r\n",
    );
    h.expect(
        "AT+CIPRXGET=4",
        b"\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 4,0\r\n\r\nOK\r\n",
    );
}

#[test]
fn fault_connect_fail_then_success() {
    let mut h = with_faults(&["connect-fail:1"]);
    h.bring_up();
    let o = h.cmd("AT+CIPSTART=\"TCP\",\"h\",1");
    assert_eq!(
        show(&o),
        show(b"\r\nOK\r\n\r\nSTATE: TCP CLOSED\r\n\r\nCONNECT FAIL\r\n")
    );
    assert!(h.reqs().is_empty(), "no dialling for a faked failure");
    h.expect("AT+CIPSTART=\"TCP\",\"h\",1", b"\r\nOK\r\n");
    assert_eq!(h.reqs().len(), 1);
}

#[test]
fn fault_send_fail() {
    let mut h = with_faults(&["send-fail:1"]);
    h.connect();
    h.cmd("AT+CIPSEND=2");
    assert_eq!(show(&h.send(b"hi")), show(b"\r\nSEND FAIL\r\n"));
    assert!(h.reqs().is_empty());
    h.cmd("AT+CIPSEND=2");
    h.send(b"hi");
    assert_eq!(sends(&h.reqs()), vec![b"hi".to_vec()]);
}

#[test]
fn fault_peer_close_after_connect() {
    let mut h = with_faults(&["peer-close-after=3s"]);
    let id = h.connect();
    assert!(h.advance(Duration::from_secs(2)).is_empty());
    assert_eq!(
        show(&h.advance(Duration::from_secs(1))),
        show(b"\r\nCLOSED\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    assert_eq!(h.state(), "TCP CLOSED");
    // Once only.
    h.cmd("AT+CIPSTART=\"TCP\",\"h\",1");
    let id2 = match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    h.net(NetEvent::Connected {
        id: id2,
        peer: peer(),
    });
    assert!(h.advance(Duration::from_secs(10)).is_empty());
}

#[test]
fn fault_pdp_deact_mid_session() {
    let mut h = with_faults(&["pdp-deact-after=3s"]);
    let id = h.connect();
    assert_eq!(
        show(&h.advance(Duration::from_secs(3))),
        show(b"\r\n+PDP: DEACT\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    assert_eq!(h.state(), "PDP DEACT");
    h.expect("AT+CIPSTART=\"TCP\",\"h\",1", b"\r\nERROR\r\n");
    h.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
}

#[test]
fn fault_reboot_mid_session() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    h.cmd("ATE0");
    let id = h.connect();
    h.m.inject(
        Fault::Reboot {
            after: Duration::from_secs(1),
        },
        h.t,
    );
    assert!(h.out().is_empty());
    // Autobaud: nothing until the host syncs again.
    assert!(h.advance(Duration::from_secs(1)).is_empty());
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    assert_eq!(
        show(&h.cmd("AT")),
        show(b"AT\r\r\nOK\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
    assert_eq!(
        show(&h.cmd("AT+CIPSTATUS")),
        show(b"AT+CIPSTATUS\r\r\nOK\r\n\r\nSTATE: IP INITIAL\r\n")
    );
}

#[test]
fn fault_reboot_after_first_at_from_config() {
    let mut h = H::new(EmulatorConfig {
        boot: BootMode::Fixed(115200),
        echo: false,
        faults: vec!["reboot-after=5s".parse().unwrap()],
        ..EmulatorConfig::default()
    });
    assert!(
        h.advance(Duration::from_secs(10)).is_empty(),
        "counts from the first AT"
    );
    h.cmd("AT");
    assert_eq!(
        show(&h.advance(Duration::from_secs(5))),
        show(b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
}

#[test]
fn fault_silent_for_a_while() {
    let mut h = with_faults(&["silent-after=1s,for=5s"]);
    assert!(h.advance(Duration::from_secs(1)).is_empty());
    h.expect("AT", b"");
    assert!(h.m.is_silent());
    h.advance(Duration::from_secs(5));
    h.expect("AT", b"\r\nOK\r\n");
}

#[test]
fn fault_silent_until_cleared_or_rebooted() {
    let mut h = H::quiet();
    let id = h.connect();
    h.m.inject("silent".parse().unwrap(), h.t);
    h.expect("AT", b"");
    // URCs are lost too.
    assert!(h.net(NetEvent::Closed { id }).is_empty());
    h.m.clear_faults(h.t);
    h.expect("AT", b"\r\nOK\r\n");
    h.m.inject("silent".parse().unwrap(), h.t);
    h.m.inject("reboot".parse().unwrap(), h.t);
    assert!(!h.m.is_silent());
}

#[test]
fn fault_echo_stuck() {
    let mut h = H::new(EmulatorConfig {
        faults: vec![Fault::EchoStuck],
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    assert_eq!(show(&h.cmd("ATE0")), show(b"ATE0\r\r\nOK\r\n"));
    assert_eq!(show(&h.cmd("AT")), show(b"AT\r\r\nOK\r\n"));
}

#[test]
fn fault_long_host_reject() {
    let mut h = with_faults(&["long-host-reject=10"]);
    h.bring_up();
    h.cmd("AT+CMEE=2");
    h.expect(
        "AT+CIPSTART=\"TCP\",\"a-very-long-host.example\",1",
        b"\r\n+CME ERROR: operation not allowed\r\n",
    );
    h.expect("AT+CIPSTART=\"TCP\",\"short.ex\",1", b"\r\nOK\r\n");
}

#[test]
fn runtime_injection_counts_from_now_when_connected() {
    let mut h = H::quiet();
    let id = h.connect();
    h.advance(Duration::from_secs(100));
    h.m.inject(
        Fault::PeerClose {
            after: Duration::from_secs(2),
        },
        h.t,
    );
    assert!(h.advance(Duration::from_secs(1)).is_empty());
    assert_eq!(
        show(&h.advance(Duration::from_secs(1))),
        show(b"\r\nCLOSED\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
}
