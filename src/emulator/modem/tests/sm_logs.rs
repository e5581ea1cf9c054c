//! Native MQTT replayed against a real module's log: the SIM7000 session with AWS IoT in
//! botletics/SIM7000-LTE-Shield, `SIM7000 Documentation/AT Command Logs/SIM7000_AWS_Log.txt`
//! (docs/sim7000.md, "Native MQTT"). Echo is on, as in the log; every byte is compared.

use std::time::Duration;

use super::*;
use crate::emulator::config::{EmulatorConfig, Registration};

/// Echo on, synced, boot URCs consumed.
fn echoing() -> H {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    h
}

fn only_connect(h: &mut H) -> u64 {
    match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("expected one connect request, got {other:?}"),
    }
}

/// Regression (issue 10 points 12 and 14): when the broker drops the link while a QoS 1
/// publish waits for its PUBACK, the module prints `+SMSTATE: 0` and then `OK`. The old
/// emulator printed `ERROR` (or `+CME ERROR: operation failed`) before `+SMSTATE: 0`.
#[test]
fn aws_log_session_with_the_link_dropped_after_a_publish() {
    let mut h = echoing();
    h.expect(
        "AT+CNACT=1,\"cmnet\"",
        b"AT+CNACT=1,\"cmnet\"\r\r\nOK\r\n\r\n+APP PDP: ACTIVE\r\n",
    );
    h.expect(
        "AT+CNACT?",
        b"AT+CNACT?\r\r\n+CNACT: 1,\"10.64.23.17\"\r\n\r\nOK\r\n",
    );
    // The log's URL is unquoted and its tag lower case.
    h.expect(
        "AT+SMCONF=url,broker.example,8883",
        b"AT+SMCONF=url,broker.example,8883\r\r\nOK\r\n",
    );
    h.expect(
        "AT+SMCONF=\"clientid\",\"basicPubSub\"",
        b"AT+SMCONF=\"clientid\",\"basicPubSub\"\r\r\nOK\r\n",
    );
    h.expect(
        "AT+SMCONF=\"KEEPTIME\",60",
        b"AT+SMCONF=\"KEEPTIME\",60\r\r\nOK\r\n",
    );
    // SMCONN: the echo now, OK when the broker accepts (26 s later in the log).
    h.expect("AT+SMCONN", b"AT+SMCONN\r");
    let id = only_connect(&mut h);
    assert!(h.net(NetEvent::Connected { id, peer: peer() }).is_empty());
    match h.reqs().as_slice() {
        [NetRequest::Send { data, .. }] => assert_eq!(
            data,
            &wire::connect(&wire::ConnectOpts {
                client_id: "basicPubSub".into(),
                keepalive: 60,
                ..Default::default()
            })
        ),
        other => panic!("{other:?}"),
    }
    assert!(h.advance(Duration::from_secs(26)).is_empty());
    assert_eq!(
        show(&h.net(NetEvent::Received {
            id,
            data: vec![0x20, 2, 0, 0]
        })),
        show(b"\r\nOK\r\n")
    );
    h.expect("AT+SMSUB=\"ryan\",1", b"AT+SMSUB=\"ryan\",1\r");
    assert_eq!(sends(&h.reqs()), vec![wire::subscribe(1, "ryan", 1)]);
    assert_eq!(
        show(&h.net(NetEvent::Received {
            id,
            data: vec![0x90, 3, 0, 1, 1]
        })),
        show(b"\r\nOK\r\n")
    );
    // The publish of the log: length quoted, QoS 1, retain 1, eight bytes echoed.
    h.expect(
        "AT+SMPUB=\"ryan\",\"8\",1,1",
        b"AT+SMPUB=\"ryan\",\"8\",1,1\r\r\n> ",
    );
    assert_eq!(show(&h.send(b"test626\n")), show(b"test626\n"));
    assert_eq!(
        sends(&h.reqs()),
        vec![wire::publish("ryan", b"test626\n", 1, true, 2)]
    );
    // No PUBACK: the broker closes the connection (6 s later in the log).
    assert!(h.advance(Duration::from_secs(6)).is_empty());
    assert_eq!(
        show(&h.net(NetEvent::Closed { id })),
        show(b"\r\n+SMSTATE: 0\r\n\r\nOK\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    h.expect("AT+SMSTATE?", b"AT+SMSTATE?\r\r\n+SMSTATE: 0\r\n\r\nOK\r\n");
}

/// The same drop at QoS 0, and a subscribe cut short: `+SMSTATE: 0` comes first in both
/// cases; the publish still ends in `OK` (as logged), the subscribe in `ERROR` (inferred).
#[test]
fn link_drop_during_a_qos0_publish_or_a_subscribe() {
    let mut h = H::quiet();
    let id = h.sm_connect();
    h.cmd("AT+SMPUB=\"t\",2,0,0");
    h.send(b"hi");
    h.reqs();
    assert_eq!(
        show(&h.net(NetEvent::Closed { id })),
        show(b"\r\n+SMSTATE: 0\r\n\r\nOK\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    let id = h.sm_connect_again();
    assert!(h.cmd("AT+SMSUB=\"t\",0").is_empty());
    assert_eq!(
        show(&h.net(NetEvent::Closed { id })),
        show(b"\r\n+SMSTATE: 0\r\n\r\nERROR\r\n")
    );
    // A publish on a link already down is refused before the prompt.
    h.expect("AT+SMPUB=\"t\",2,0,0", b"\r\nERROR\r\n");
}

/// The log's TLS set-up lines are accepted; TLS itself is not emulated, so `AT+SMCONN`
/// with `AT+SMSSL=1` fails and says why in the emulator's log.
#[test]
fn aws_log_tls_setup_is_accepted_but_tls_is_not_emulated() {
    let mut h = echoing();
    for line in [
        "at+csslcfg=convert,2,x.cer",
        "at+csslcfg=convert,1,test crt.crt,test key.key",
        "AT+CSSLCFG=\"sslversion\",0,3",
        "AT+SMSSL=1,x.cer,test crt.crt",
    ] {
        h.expect(line, format!("{line}\r\r\nOK\r\n").as_bytes());
    }
    h.expect(
        "AT+SMSSL?",
        b"AT+SMSSL?\r\r\n+SMSSL: 1,\"x.cer\",\"test crt.crt\"\r\n\r\nOK\r\n",
    );
    h.expect(
        "AT+CSSLCFG=\"bogus\",1",
        b"AT+CSSLCFG=\"bogus\",1\r\r\nERROR\r\n",
    );
    h.cmd("AT+CNACT=1,\"cmnet\"");
    h.cmd("AT+SMCONF=url,broker.example,8883");
    h.expect("AT+SMCONN", b"AT+SMCONN\r\r\nERROR\r\n");
    assert!(h.reqs().is_empty(), "nothing dialled");
    let notes = h.m.take_notes().join("\n");
    assert!(notes.contains("TLS is not emulated"), "{notes}");
    h.expect("AT+SMSSL=0", b"AT+SMSSL=0\r\r\nOK\r\n");
    h.expect("AT+SMCONN", b"AT+SMCONN\r");
    only_connect(&mut h);
}

/// The nbiot profile: a broker that never answers gets `ERROR` about 75 s after
/// `AT+SMCONN`, like `CONNECT FAIL` for CIPSTART.
#[test]
fn nbiot_smconn_to_an_unreachable_broker_fails_after_75s() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration::default(),
        ..EmulatorConfig::nbiot_demo()
    });
    h.advance(Duration::from_secs(1));
    h.cmd("AT");
    h.cmd("AT+CNACT=1,\"iot\"");
    h.advance(Duration::from_secs(3));
    h.cmd("AT+SMCONF=\"URL\",\"10.255.255.1\",1883");
    assert!(h.cmd("AT+SMCONN").is_empty());
    let id = only_connect(&mut h);
    assert!(h.advance(Duration::from_millis(74_999)).is_empty());
    assert_eq!(
        show(&h.advance(Duration::from_millis(1))),
        show(b"\r\nERROR\r\n")
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
}
