//! Native MQTT (`AT+SM*`).

use std::time::Duration;

use super::*;
use crate::emulator::config::{EmulatorConfig, Latency, Registration, Span};
use crate::emulator::fault::Fault;

// ----- native MQTT -----------------------------------------------------------------------------

#[test]
fn sm_needs_the_app_bearer() {
    let mut h = H::quiet();
    h.expect("AT+SMCONF=\"URL\",\"b\",1883", b"\r\nOK\r\n");
    h.expect("AT+SMCONN", b"\r\nERROR\r\n");
    h.expect("AT+SMSTATE?", b"\r\n+SMSTATE: 0\r\n\r\nOK\r\n");
    h.expect("AT+CNACT?", b"\r\n+CNACT: 0,\"0.0.0.0\"\r\n\r\nOK\r\n");
    h.expect("AT+CNACT=1,\"iot\"", b"\r\nOK\r\n\r\n+APP PDP: ACTIVE\r\n");
    h.expect("AT+CNACT?", b"\r\n+CNACT: 1,\"10.64.23.17\"\r\n\r\nOK\r\n");
    h.expect("AT+CNACT=0", b"\r\nOK\r\n\r\n+APP PDP: DEACTIVE\r\n");
}

#[test]
fn sm_full_session() {
    let mut h = H::quiet();
    let id = h.sm_connect();
    h.expect("AT+SMSTATE?", b"\r\n+SMSTATE: 1\r\n\r\nOK\r\n");
    // Subscribe.
    assert!(h.cmd("AT+SMSUB=\"cmd/#\",1").is_empty());
    assert_eq!(sends(&h.reqs()), vec![wire::subscribe(1, "cmd/#", 1)]);
    assert_eq!(
        show(&h.net(NetEvent::Received {
            id,
            data: vec![0x90, 3, 0, 1, 1]
        })),
        show(b"\r\nOK\r\n")
    );
    // Incoming publish (QoS 1) → URC and PUBACK.
    let o = h.net(NetEvent::Received {
        id,
        data: wire::publish("cmd/led", b"on", 1, false, 9),
    });
    assert_eq!(show(&o), show(b"\r\n+SMSUB: \"cmd/led\",\"on\"\r\n"));
    assert_eq!(sends(&h.reqs()), vec![vec![0x40, 2, 0, 9]]);
    // Publish QoS 1 with a length given quoted.
    assert_eq!(show(&h.cmd("AT+SMPUB=\"up\",\"5\",1,0")), show(b"\r\n> "));
    assert!(h.send(b"he\x1allo"[..5].as_ref()).is_empty());
    assert_eq!(
        sends(&h.reqs()),
        vec![wire::publish("up", b"he\x1all", 1, false, 2)]
    );
    assert_eq!(
        show(&h.net(NetEvent::Received {
            id,
            data: vec![0x40, 2, 0, 2]
        })),
        show(b"\r\nOK\r\n")
    );
    // QoS 0: OK once the bytes are out.
    h.cmd("AT+SMPUB=\"up\",2,0,1");
    h.send(b"ok");
    assert_eq!(
        sends(&h.reqs()),
        vec![wire::publish("up", b"ok", 0, true, 0)]
    );
    assert_eq!(
        show(&h.net(NetEvent::Sent { id, len: 6 })),
        show(b"\r\nOK\r\n")
    );
    // QoS 2.
    h.cmd("AT+SMPUB=\"up\",1,2,0");
    h.send(b"!");
    h.reqs();
    h.net(NetEvent::Received {
        id,
        data: vec![0x50, 2, 0, 3],
    });
    assert_eq!(sends(&h.reqs()), vec![vec![0x62, 2, 0, 3]]);
    assert_eq!(
        show(&h.net(NetEvent::Received {
            id,
            data: vec![0x70, 2, 0, 3]
        })),
        show(b"\r\nOK\r\n")
    );
    // Unsubscribe, disconnect.
    assert!(h.cmd("AT+SMUNSUB=\"cmd/#\"").is_empty());
    assert_eq!(sends(&h.reqs()), vec![wire::unsubscribe(4, "cmd/#")]);
    assert_eq!(
        show(&h.net(NetEvent::Received {
            id,
            data: vec![0xB0, 2, 0, 4]
        })),
        show(b"\r\nOK\r\n")
    );
    h.expect("AT+SMDISC", b"\r\nOK\r\n");
    assert_eq!(
        h.reqs(),
        vec![
            NetRequest::Send {
                id,
                data: vec![0xE0, 0]
            },
            NetRequest::Close { id }
        ]
    );
    h.expect("AT+SMSTATE?", b"\r\n+SMSTATE: 0\r\n\r\nOK\r\n");
}

#[test]
fn sm_parameter_checks() {
    let mut h = H::quiet();
    h.sm_connect();
    h.expect("AT+SMPUB=\"t\",513,0,0", b"\r\nERROR\r\n");
    h.expect("AT+SMPUB=\"t\",5,3,0", b"\r\nERROR\r\n");
    h.expect("AT+SMPUB=\"t\",5,0", b"\r\nERROR\r\n");
    h.expect("AT+SMSUB=\"t\"", b"\r\nERROR\r\n");
    h.expect("AT+SMCONF=\"BOGUS\",1", b"\r\nERROR\r\n");
    h.expect("AT+SMCONN", b"\r\nERROR\r\n");
}

#[test]
fn sm_conf_read_back() {
    let mut h = H::quiet();
    h.expect("AT+SMCONF=\"URL\",broker.example:8883", b"\r\nOK\r\n");
    h.expect("AT+SMCONF=\"KEEPTIME\",30", b"\r\nOK\r\n");
    let o = h.cmds("AT+SMCONF?");
    assert!(o.contains("URL: \"broker.example\",8883\r\n"), "{o:?}");
    assert!(o.contains("KEEPTIME: 30\r\n"), "{o:?}");
}

#[test]
fn sm_refused_and_broker_loss() {
    let mut h = H::quiet();
    h.expect("AT+CNACT=1,\"iot\"", b"\r\nOK\r\n\r\n+APP PDP: ACTIVE\r\n");
    h.cmd("AT+SMCONF=\"URL\",\"b\",1883");
    h.cmd("AT+SMCONN");
    let id = match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    h.net(NetEvent::Connected { id, peer: peer() });
    h.reqs();
    // CONNACK "identifier rejected".
    assert_eq!(
        show(&h.net(NetEvent::Received {
            id,
            data: vec![0x20, 2, 0, 2]
        })),
        show(b"\r\nERROR\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    let id = h.sm_connect_again();
    assert_eq!(
        show(&h.net(NetEvent::Closed { id })),
        show(b"\r\n+SMSTATE: 0\r\n")
    );
}

impl H {
    pub(super) fn sm_connect_again(&mut self) -> u64 {
        self.cmd("AT+SMCONN");
        let id = match self.reqs().as_slice() {
            [NetRequest::Connect { id, .. }] => *id,
            other => panic!("{other:?}"),
        };
        self.net(NetEvent::Connected { id, peer: peer() });
        self.reqs();
        let o = self.net(NetEvent::Received {
            id,
            data: vec![0x20, 2, 0, 0],
        });
        assert_eq!(show(&o), show(b"\r\nOK\r\n"));
        id
    }
}

#[test]
fn sm_connect_failure_and_hang() {
    let mut h = with_faults(&["connect-fail:1", "smconn-hang"]);
    h.cmd("AT+CNACT=1,\"iot\"");
    h.cmd("AT+SMCONF=\"URL\",\"b\",1883");
    // The hang fault wins: nothing ever comes back, input is only echoed (echo off here).
    assert!(h.cmd("AT+SMCONN").is_empty());
    assert!(h.advance(Duration::from_secs(600)).is_empty());
    h.expect("AT", b"");
    h.m.inject(
        Fault::Reboot {
            after: Duration::ZERO,
        },
        h.t,
    );
    let o = h.send(b"AT\r");
    assert!(o.starts_with(b"\r\nOK\r\n"), "{}", show(&o));
}

#[test]
fn sm_connect_fault_fails() {
    let mut h = with_faults(&["connect-fail:1"]);
    h.cmd("AT+CNACT=1,\"iot\"");
    h.cmd("AT+SMCONF=\"URL\",\"b\",1883");
    h.expect("AT+SMCONN", b"\r\nERROR\r\n");
    assert!(h.reqs().is_empty());
}

#[test]
fn sm_pdp_loss_drops_session() {
    let mut h = H::quiet();
    let id = h.sm_connect();
    h.m.inject(
        Fault::PdpDeact {
            after: Duration::ZERO,
        },
        h.t,
    );
    assert_eq!(
        show(&h.out()),
        show(b"\r\n+APP PDP: DEACTIVE\r\n\r\n+SMSTATE: 0\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
}

#[test]
fn firmware_without_sm_commands() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        sm_commands: false,
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.cmd("AT+CMEE=2");
    h.expect("AT+SMCONF=\"URL\",\"b\",1883", b"\r\nERROR\r\n");
    h.expect("AT+SMSTATE?", b"\r\nERROR\r\n");
}

#[test]
fn sm_keepalive_pings() {
    let mut h = H::quiet();
    h.expect("AT+SMCONF=\"KEEPTIME\",30", b"\r\nOK\r\n");
    let id = h.sm_connect_with_keeptime();
    h.advance(Duration::from_secs(30));
    assert_eq!(
        h.reqs(),
        vec![NetRequest::Send {
            id,
            data: vec![0xC0, 0]
        }]
    );
}

impl H {
    fn sm_connect_with_keeptime(&mut self) -> u64 {
        self.cmd("AT+CNACT=1,\"iot\"");
        self.cmd("AT+SMCONF=\"URL\",\"b\",1883");
        self.sm_connect_again()
    }
}

#[test]
fn absurd_durations_do_not_overflow() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_for: Duration::MAX,
            ..Registration::default()
        },
        latency: Latency {
            attach: Span::fixed(Duration::MAX),
            ..Latency::zero()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n");
    h.m.inject(
        Fault::Silent {
            after: Duration::MAX,
            duration: Some(Duration::MAX),
        },
        h.t,
    );
    h.m.inject("drip=1000000000s".parse().unwrap(), h.t);
    h.cmd("AT+CSTT");
    assert!(h.cmd("AT+CIICR").len() <= 1);
    assert!(h.m.next_deadline().is_some());
}
