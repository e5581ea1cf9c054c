//! Receiving: push mode, manual mode, peer close.

use std::time::Duration;

use super::*;
use crate::emulator::config::{EmulatorConfig, Latency, Span};

// ----- receiving -------------------------------------------------------------------------------

#[test]
fn push_mode_framing() {
    let mut h = H::quiet();
    let id = h.connect();
    let o = h.net(NetEvent::Received {
        id,
        data: b"hello".to_vec(),
    });
    assert_eq!(show(&o), show(b"\r\nhello"));
    h.expect("AT+CIPHEAD=1", b"\r\nOK\r\n");
    let o = h.net(NetEvent::Received {
        id,
        data: b"test1".to_vec(),
    });
    assert_eq!(show(&o), show(b"\r\n+IPD,5:test1"));
    h.expect("AT+CIPSHOWTP=1", b"\r\nOK\r\n");
    h.expect("AT+CIPSRIP=1", b"\r\nOK\r\n");
    let o = h.net(NetEvent::Received {
        id,
        data: b"xy".to_vec(),
    });
    assert_eq!(
        show(&o),
        show(b"\r\nRECV FROM:192.0.2.7:5000\r\n+IPD,2,TCP:xy")
    );
}

#[test]
fn push_mode_custom_framing_and_chunking() {
    let mut cfg = EmulatorConfig {
        echo: false,
        ..EmulatorConfig::default()
    };
    cfg.push.prefix = Vec::new();
    cfg.push.suffix = b"\r\n".to_vec();
    let mut h = H::new(cfg);
    h.cmd("AT");
    let id = h.connect();
    h.cmd("AT+CIPHEAD=1");
    let o = h.net(NetEvent::Received {
        id,
        data: vec![b'z'; 1500],
    });
    let mut want = b"+IPD,1460:".to_vec();
    want.extend([b'z'; 1460]);
    want.extend(b"\r\n+IPD,40:");
    want.extend([b'z'; 40]);
    want.extend(b"\r\n");
    assert_eq!(o, want);
}

#[test]
fn data_before_connect_ok_is_held() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        latency: Latency {
            connect: Span::fixed(Duration::from_secs(1)),
            ..Latency::zero()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.bring_up();
    h.cmd("AT+CIPSTART=\"TCP\",\"h\",1");
    let id = match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    assert!(h.net(NetEvent::Connected { id, peer: peer() }).is_empty());
    assert!(
        h.net(NetEvent::Received {
            id,
            data: b"banner".to_vec()
        })
        .is_empty()
    );
    assert_eq!(
        show(&h.advance(Duration::from_secs(1))),
        show(b"\r\nCONNECT OK\r\n\r\nbanner")
    );
}

#[test]
fn manual_receive() {
    let mut h = H::quiet();
    h.expect("AT+CIPRXGET=1", b"\r\nOK\r\n");
    h.expect("AT+CIPRXGET?", b"\r\n+CIPRXGET: 1\r\n\r\nOK\r\n");
    let id = h.connect();
    h.expect("AT+CIPRXGET=0", b"\r\nERROR\r\n");
    // One URC per empty → non-empty transition.
    let o = h.net(NetEvent::Received {
        id,
        data: b"HELLO ".to_vec(),
    });
    assert_eq!(show(&o), show(b"\r\n+CIPRXGET: 1\r\n"));
    let o = h.net(NetEvent::Received {
        id,
        data: b"WORLD\r\n\x00\x1a".to_vec(),
    });
    assert!(o.is_empty());
    h.expect("AT+CIPRXGET=4", b"\r\n+CIPRXGET: 4,15\r\n\r\nOK\r\n");
    h.expect(
        "AT+CIPRXGET=2,5",
        b"\r\n+CIPRXGET: 2,5,10\r\nHELLO\r\nOK\r\n",
    );
    h.expect(
        "AT+CIPRXGET=3,3",
        b"\r\n+CIPRXGET: 3,3,7\r\n20574F\r\nOK\r\n",
    );
    h.expect(
        "AT+CIPRXGET=2,1460",
        b"\r\n+CIPRXGET: 2,7,0\r\nRLD\r\n\x00\x1a\r\nOK\r\n",
    );
    h.expect("AT+CIPRXGET=2,10", b"\r\n+CIPRXGET: 2,0,0\r\n\r\nOK\r\n");
    // Empty again: the next data raises the URC again.
    let o = h.net(NetEvent::Received {
        id,
        data: b"again".to_vec(),
    });
    assert_eq!(show(&o), show(b"\r\n+CIPRXGET: 1\r\n"));
    // Limits.
    h.expect("AT+CIPRXGET=2,1461", b"\r\nERROR\r\n");
    h.expect("AT+CIPRXGET=2,0", b"\r\nERROR\r\n");
    h.expect("AT+CIPRXGET=3,731", b"\r\nERROR\r\n");
    h.expect(
        "AT+CIPRXGET=3,730",
        b"\r\n+CIPRXGET: 3,5,0\r\n616761696E\r\nOK\r\n",
    );
    // Data buffered before a peer close stays readable.
    h.net(NetEvent::Received {
        id,
        data: b"last".to_vec(),
    });
    let o = h.net(NetEvent::Closed { id });
    assert_eq!(show(&o), show(b"\r\nCLOSED\r\n"));
    h.expect(
        "AT+CIPRXGET=2,100",
        b"\r\n+CIPRXGET: 2,4,0\r\nlast\r\nOK\r\n",
    );
}

#[test]
fn manual_receive_reads_need_mode_1() {
    let mut h = H::quiet();
    h.connect();
    h.expect("AT+CIPRXGET=2,10", b"\r\nERROR\r\n");
    h.expect("AT+CIPRXGET=4", b"\r\nERROR\r\n");
    h.expect("AT+CIPRXGET=5", b"\r\nERROR\r\n");
}

#[test]
fn peer_close_gives_closed() {
    let mut h = H::quiet();
    let id = h.connect();
    assert_eq!(
        show(&h.net(NetEvent::Closed { id })),
        show(b"\r\nCLOSED\r\n")
    );
    assert_eq!(h.state(), "TCP CLOSED");
    h.expect("AT+CIPSEND=1", b"\r\nERROR\r\n");
    h.expect("AT+CIPCLOSE", b"\r\nERROR\r\n");
}

#[test]
fn peer_close_after_delivery_is_send_ok_then_closed() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        latency: Latency {
            send: Span::fixed(Duration::from_secs(1)),
            ..Latency::zero()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    let id = h.connect();
    h.cmd("AT+CIPSEND=1");
    h.send(b"x");
    h.net(NetEvent::Sent { id, len: 1 });
    assert_eq!(
        show(&h.net(NetEvent::Closed { id })),
        show(b"\r\nSEND OK\r\n\r\nCLOSED\r\n")
    );
}

#[test]
fn peer_close_during_send_wait_is_send_fail_then_closed() {
    let mut h = H::quiet();
    let id = h.connect();
    h.cmd("AT+CIPSEND=1");
    h.send(b"x");
    assert_eq!(
        show(&h.net(NetEvent::Closed { id })),
        show(b"\r\nSEND FAIL\r\n\r\nCLOSED\r\n")
    );
}
