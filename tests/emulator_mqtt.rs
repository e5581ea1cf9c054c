//! MQTT through the emulator against real brokers: the embedded broker (always) and mosquitto
//! (when installed; required in CI with SIM7K_REQUIRE_MOSQUITTO=1). Both the raw-TCP path
//! (MQTT packets pushed with AT+CIPSEND) and the native AT+SM* path.

#[path = "emulator_client/mod.rs"]
mod client;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client::{Client, show};
#[cfg(feature = "embedded-broker")]
use sim7k::broker::{EmbeddedBroker, ReceivedMessage};
use sim7k::emulator::{EmulatorConfig, Network, PtyEmulator, Route};

fn mqtt_str(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut p = vec![first, body.len() as u8];
    p.extend_from_slice(body);
    p
}

fn connect(client_id: &str) -> Vec<u8> {
    let mut b = mqtt_str("MQTT");
    b.extend_from_slice(&[4, 0x02, 0, 60]);
    b.extend(mqtt_str(client_id));
    packet(0x10, &b)
}

fn publish_qos1(topic: &str, pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = mqtt_str(topic);
    b.extend_from_slice(&pkid.to_be_bytes());
    b.extend_from_slice(payload);
    packet(0x32, &b)
}

fn subscribe(pkid: u16, topic: &str) -> Vec<u8> {
    let mut b = pkid.to_be_bytes().to_vec();
    b.extend(mqtt_str(topic));
    b.push(0);
    packet(0x82, &b)
}

fn emulator(network: Network) -> (PtyEmulator, Client) {
    let emu = PtyEmulator::spawn(
        EmulatorConfig {
            echo: false,
            network,
            ..EmulatorConfig::default()
        },
        None,
        None,
    )
    .unwrap();
    let mut c = Client::open(emu.port_path());
    c.send(b"AT\r");
    c.until(b"SMS Ready\r\n");
    (emu, c)
}

/// Send one MQTT packet with fixed-length CIPSEND; expect SEND OK.
fn cipsend(c: &mut Client, bytes: &[u8]) {
    c.send(format!("AT+CIPSEND={}\r", bytes.len()).as_bytes());
    assert_eq!(show(&c.take(4)), show(b"\r\n> "));
    c.send(bytes);
    assert_eq!(show(&c.until(b"SEND OK\r\n")), show(b"\r\nSEND OK\r\n"));
}

/// Read `n` bytes with CIPRXGET=2, polling until they are all there.
fn rxget(c: &mut Client, n: usize) -> Vec<u8> {
    let end = Instant::now() + client::GUARD;
    let mut got = Vec::new();
    while got.len() < n {
        assert!(Instant::now() < end, "hang guard: have {}", show(&got));
        c.send(format!("AT+CIPRXGET=2,{}\r", n - got.len()).as_bytes());
        c.until(b"+CIPRXGET: 2,");
        let nums = String::from_utf8_lossy(&c.until(b"\r\n")).into_owned();
        let k: usize = nums.split(',').next().unwrap().trim().parse().unwrap();
        got.extend(c.take(k));
        assert_eq!(show(&c.take(6)), show(b"\r\nOK\r\n"));
        if k == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    got
}

/// The raw-TCP recipe path: CONNECT, SUBSCRIBE, PUBLISH QoS 1 over CIPSEND, replies read back
/// with manual receive.
fn raw_session(c: &mut Client, host: &str, port: u16) {
    c.expect("AT+CIPRXGET=1", b"\r\nOK\r\n");
    c.expect("AT+CSTT=\"iot\"", b"\r\nOK\r\n");
    c.expect("AT+CIICR", b"\r\nOK\r\n");
    c.expect("AT+CIFSR", b"\r\n10.64.23.17\r\n");
    c.expect(
        &format!("AT+CIPSTART=\"TCP\",\"{host}\",\"{port}\""),
        b"\r\nOK\r\n",
    );
    c.until(b"CONNECT OK\r\n");
    cipsend(c, &connect("sim7k-raw"));
    assert_eq!(rxget(c, 4), vec![0x20, 2, 0, 0], "CONNACK accepted");
    cipsend(c, &subscribe(1, "sim7k/raw"));
    assert_eq!(rxget(c, 5), vec![0x90, 3, 0, 1, 0], "SUBACK");
    let payload = b"t=21.5\x00\x1a";
    cipsend(c, &publish_qos1("sim7k/raw", 2, payload));
    // PUBACK plus our own message delivered back (QoS 0 subscription), in either order.
    let mut want_pub = vec![0x30];
    let body_len = 2 + "sim7k/raw".len() + payload.len();
    want_pub.push(body_len as u8);
    want_pub.extend(mqtt_str("sim7k/raw"));
    want_pub.extend_from_slice(payload);
    let got = rxget(c, 4 + want_pub.len());
    let puback = [0x40, 2, 0, 2];
    let ok = got == [puback.to_vec(), want_pub.clone()].concat()
        || got == [want_pub.clone(), puback.to_vec()].concat();
    assert!(ok, "got {}", show(&got));
    c.expect("AT+CIPCLOSE=1", b"\r\nCLOSE OK\r\n");
}

/// The native MQTT path: CNACT, SMCONF, SMCONN, SMSUB, SMPUB, the +SMSUB URC, SMDISC.
fn sm_session(c: &mut Client, host: &str, port: u16) {
    c.expect("AT+CNACT=1,\"iot\"", b"\r\nOK\r\n\r\n+APP PDP: ACTIVE\r\n");
    c.expect(
        &format!("AT+SMCONF=\"URL\",\"{host}\",{port}"),
        b"\r\nOK\r\n",
    );
    c.expect("AT+SMCONF=\"CLIENTID\",\"sim7k-sm\"", b"\r\nOK\r\n");
    c.expect("AT+SMCONF=\"CLEANSS\",1", b"\r\nOK\r\n");
    c.expect("AT+SMCONN", b"\r\nOK\r\n");
    c.expect("AT+SMSTATE?", b"\r\n+SMSTATE: 1\r\n\r\nOK\r\n");
    c.expect("AT+SMSUB=\"sim7k/sm\",1", b"\r\nOK\r\n");
    c.send(b"AT+SMPUB=\"sim7k/sm\",5,1,0\r");
    assert_eq!(show(&c.take(4)), show(b"\r\n> "));
    c.send(b"hello");
    // OK for the publish and the URC for our own message, in either order.
    let mut got = c.until(b"\"hello\"\r\n");
    if !got.windows(6).any(|w| w == b"\r\nOK\r\n") {
        got.extend(c.until(b"\r\nOK\r\n"));
    }
    let s = String::from_utf8_lossy(&got);
    assert!(
        s.contains("\r\n+SMSUB: \"sim7k/sm\",\"hello\"\r\n"),
        "{s:?}"
    );
    assert!(s.contains("\r\nOK\r\n"), "{s:?}");
    c.expect("AT+SMUNSUB=\"sim7k/sm\"", b"\r\nOK\r\n");
    c.expect("AT+SMDISC", b"\r\nOK\r\n");
    c.expect("AT+SMSTATE?", b"\r\n+SMSTATE: 0\r\n\r\nOK\r\n");
}

#[cfg(feature = "embedded-broker")]
#[test]
fn raw_mqtt_over_cipsend_to_the_embedded_broker() {
    let broker = EmbeddedBroker::start().unwrap();
    let (_emu, mut c) = emulator(Network::Redirect(broker.addr()));
    // The recipe names a public broker; the redirect leads the modem to the embedded one.
    raw_session(&mut c, "broker.hivemq.com", 1883);
    let got = broker.wait_for(1, client::GUARD);
    assert_eq!(
        got,
        vec![ReceivedMessage {
            topic: "sim7k/raw".into(),
            payload: b"t=21.5\x00\x1a".to_vec().into(),
            qos: 1,
            retain: false
        }]
    );
}

#[cfg(feature = "embedded-broker")]
#[test]
fn native_sm_commands_against_the_embedded_broker() {
    let broker = EmbeddedBroker::start().unwrap();
    let (_emu, mut c) = emulator(Network::Redirect(broker.addr()));
    sm_session(&mut c, "mqtt.example.org", 1883);
    let got = broker.wait_for(1, client::GUARD);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, "sim7k/sm");
    assert_eq!(&*got[0].payload, b"hello");
    assert_eq!(got[0].qos, 1);
}

#[test]
fn against_mosquitto() {
    let Some(m) = support::Mosquitto::start() else {
        return;
    };
    // Map only the broker's name; everything else would be dialled for real.
    let (_emu, mut c) = emulator(Network::Map(vec![Route {
        host: "broker.test".into(),
        port: 1883,
        to: m.addr,
    }]));
    raw_session(&mut c, "broker.test", 1883);
    sm_session(&mut c, "broker.test", 1883);
}

#[test]
fn smconn_to_nothing_fails() {
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (_emu, mut c) = emulator(Network::Redirect(closed));
    c.expect("AT+CNACT=1,\"iot\"", b"\r\nOK\r\n\r\n+APP PDP: ACTIVE\r\n");
    c.expect("AT+SMCONF=\"URL\",\"b\",1883", b"\r\nOK\r\n");
    c.send(b"AT+SMCONN\r");
    assert_eq!(show(&c.until(b"ERROR\r\n")), show(b"\r\nERROR\r\n"));
}

/// A broker that accepts one client, answers its CONNECT and SUBSCRIBE, and drops the link
/// when it gets a PUBLISH (as AWS IoT did with the retained publish of the AWS log).
fn dropping_broker() -> SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            // One whole packet (lengths below 128 here) at the front of `buf`?
            while buf.len() >= 2 && buf.len() >= 2 + usize::from(buf[1]) {
                let first = buf[0];
                let len = 2 + usize::from(buf[1]);
                let p: Vec<u8> = buf.drain(..len).collect();
                match first >> 4 {
                    1 => {
                        let _ = s.write_all(&[0x20, 2, 0, 0]);
                    }
                    8 => {
                        let _ = s.write_all(&[0x90, 3, p[2], p[3], 1]);
                    }
                    3 => return, // PUBLISH: drop the link
                    _ => {}
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    addr
}

/// Regression (issue 10 points 12 and 14): the module answers `+SMSTATE: 0` then `OK` when
/// the broker drops the link while a QoS 1 publish waits for its PUBACK, as in the AWS log
/// (echo on, length quoted); the old emulator answered `ERROR` first.
#[test]
fn broker_dropping_a_publish_gives_smstate_0_then_ok() {
    let emu = PtyEmulator::spawn(
        EmulatorConfig {
            network: Network::Redirect(dropping_broker()),
            ..EmulatorConfig::default()
        },
        None,
        None,
    )
    .unwrap();
    let mut c = Client::open(emu.port_path());
    c.send(b"AT\r");
    c.until(b"SMS Ready\r\n");
    c.cmd("AT+CNACT=1,\"cmnet\"", "+APP PDP: ACTIVE\r\n");
    c.cmd("AT+SMCONF=url,aws.example,8883", "OK\r\n");
    c.cmd("AT+SMCONF=\"clientid\",\"basicPubSub\"", "OK\r\n");
    assert_eq!(
        show(c.cmd("AT+SMCONN", "OK\r\n").as_bytes()),
        show(b"AT+SMCONN\r\r\nOK\r\n")
    );
    c.cmd("AT+SMSUB=\"ryan\",1", "OK\r\n");
    assert_eq!(
        show(c.cmd("AT+SMPUB=\"ryan\",\"8\",1,1", "> ").as_bytes()),
        show(b"AT+SMPUB=\"ryan\",\"8\",1,1\r\r\n> ")
    );
    c.send(b"test626\n");
    assert_eq!(
        show(&c.until(b"OK\r\n")),
        show(b"test626\n\r\n+SMSTATE: 0\r\n\r\nOK\r\n")
    );
}
