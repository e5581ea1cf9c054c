//! The in-memory bench: a trivial echo peer, virtual time, refusals, delays, and a guard
//! that the modem core never reads the real clock, sleeps, spawns or opens sockets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;
use crate::emulator::escape as show;

/// Echoes every byte back; closes when it receives `bye`; refuses port 1, never answers
/// port 2.
#[derive(Default)]
struct Echo {
    conns: HashMap<ConnId, PeerOutput>,
    connects: Vec<(String, u16)>,
    closed_by_modem: Vec<ConnId>,
}

impl MemoryNetwork for Echo {
    fn connect(&mut self, id: ConnId, host: &str, port: u16) -> Connect {
        self.connects.push((host.to_string(), port));
        match port {
            1 => Connect::Refuse,
            2 => Connect::Unreachable,
            _ => {
                self.conns.insert(id, PeerOutput::default());
                Connect::Accept
            }
        }
    }
    fn send(&mut self, id: ConnId, data: &[u8]) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.data.extend_from_slice(data);
            if data.ends_with(b"bye") {
                c.closed = true;
            }
        }
    }
    fn poll(&mut self, id: ConnId) -> PeerOutput {
        match self.conns.get_mut(&id) {
            Some(c) if c.closed => self.conns.remove(&id).unwrap_or_default(),
            Some(c) => std::mem::take(c),
            None => PeerOutput::default(),
        }
    }
    fn close(&mut self, id: ConnId) {
        self.conns.remove(&id);
        self.closed_by_modem.push(id);
    }
}

impl Echo {
    /// The far side sends on its own (e.g. a broker forwarding another client's publish).
    fn push(&mut self, id: ConnId, data: &[u8]) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.data.extend_from_slice(data);
        }
    }
}

fn text(b: &mut Bench<Echo>) -> String {
    show(&b.read())
}

/// Echo off, synced, zero latency.
fn bench() -> Bench<Echo> {
    let mut b = Bench::new(
        EmulatorConfig {
            echo: false,
            ..EmulatorConfig::default()
        },
        Echo::default(),
        Instant::now(),
    );
    b.write(b"AT\r");
    b.read();
    b
}

fn cmd(b: &mut Bench<Echo>, line: &str) -> String {
    b.write(format!("{line}\r").as_bytes());
    text(b)
}

#[test]
fn echo_peer_round_trip() {
    let mut b = bench();
    assert_eq!(cmd(&mut b, "AT+CSTT=\"iot\""), "\\r\\nOK\\r\\n");
    assert_eq!(cmd(&mut b, "AT+CIICR"), "\\r\\nOK\\r\\n");
    cmd(&mut b, "AT+CIFSR");
    assert_eq!(
        cmd(&mut b, "AT+CIPSTART=\"TCP\",\"10.1.2.3\",7"),
        "\\r\\nOK\\r\\n\\r\\nCONNECT OK\\r\\n"
    );
    assert_eq!(b.network().connects, vec![("10.1.2.3".to_string(), 7)]);
    assert_eq!(cmd(&mut b, "AT+CIPSEND=5"), "\\r\\n> ");
    b.write(b"he\x1alo");
    // SEND OK, then the echo pushed with the default framing.
    assert_eq!(text(&mut b), "\\r\\nSEND OK\\r\\n\\r\\nhe\\x1alo");
    let ids: Vec<ConnId> = b.open_connections().collect();
    assert_eq!(ids.len(), 1);
    // The peer closes after `bye`.
    cmd(&mut b, "AT+CIPSEND=3");
    b.write(b"bye");
    assert_eq!(
        text(&mut b),
        "\\r\\nSEND OK\\r\\n\\r\\nbye\\r\\nCLOSED\\r\\n"
    );
    assert_eq!(b.open_connections().count(), 0);
    assert_eq!(cmd(&mut b, "AT+CIPSHUT"), "\\r\\nSHUT OK\\r\\n");
}

#[test]
fn data_the_peer_sends_by_itself_arrives_on_the_next_advance() {
    let mut b = bench();
    cmd(&mut b, "AT+CIPSTART=\"TCP\",\"h\",7");
    let id = b.open_connections().next().expect("one connection");
    b.network_mut().push(id, b"news");
    assert_eq!(text(&mut b), "");
    b.advance(Duration::ZERO);
    assert_eq!(text(&mut b), "\\r\\nnews");
}

#[test]
fn modem_close_reaches_the_network() {
    let mut b = bench();
    cmd(&mut b, "AT+CIPSTART=\"TCP\",\"h\",7");
    let id = b.open_connections().next().expect("one connection");
    assert_eq!(cmd(&mut b, "AT+CIPCLOSE=1"), "\\r\\nCLOSE OK\\r\\n");
    assert_eq!(b.network().closed_by_modem, vec![id]);
}

#[test]
fn refused_and_unreachable_in_the_zero_profile_fail_at_once() {
    let mut b = bench();
    for port in [1, 2] {
        cmd(&mut b, "AT+CIPSHUT");
        assert_eq!(
            cmd(&mut b, &format!("AT+CIPSTART=\"TCP\",\"h\",{port}")),
            "\\r\\nOK\\r\\n\\r\\nSTATE: TCP CLOSED\\r\\n\\r\\nCONNECT FAIL\\r\\n"
        );
    }
}

/// The whole nbiot timeline (boot 1 s, ~4 s registration, CIICR ~2 s, a host that never
/// answers: 75 s) runs on virtual time only.
#[test]
fn nbiot_timeline_on_virtual_time() {
    let start = Instant::now();
    let mut b = Bench::new(
        EmulatorConfig {
            echo: false,
            ..EmulatorConfig::nbiot_demo()
        },
        Echo::default(),
        start,
    );
    b.write(b"AT\r");
    assert!(b.read().is_empty(), "still booting");
    b.advance(Duration::from_secs(1));
    assert_eq!(
        cmd(&mut b, "AT"),
        "\\r\\nOK\\r\\n\\r\\n+CFUN: 1\\r\\n\\r\\n+CPIN: READY\\r\\n\\r\\nSMS Ready\\r\\n"
    );
    assert_eq!(
        cmd(&mut b, "AT+CGATT?"),
        "\\r\\n+CGATT: 0\\r\\n\\r\\nOK\\r\\n"
    );
    b.advance(Duration::from_secs(4));
    assert_eq!(
        cmd(&mut b, "AT+CGATT?"),
        "\\r\\n+CGATT: 1\\r\\n\\r\\nOK\\r\\n"
    );
    cmd(&mut b, "AT+CSTT=\"iot\"");
    assert_eq!(cmd(&mut b, "AT+CIICR"), "");
    b.advance(Duration::from_secs(3));
    assert_eq!(text(&mut b), "\\r\\nOK\\r\\n");
    cmd(&mut b, "AT+CIFSR");
    let asked = b.now();
    assert_eq!(cmd(&mut b, "AT+CIPSTART=\"TCP\",\"h\",2"), "\\r\\nOK\\r\\n");
    b.advance(Duration::from_secs(74));
    assert_eq!(text(&mut b), "");
    b.advance(Duration::from_secs(1));
    assert_eq!(
        text(&mut b),
        "\\r\\nSTATE: TCP CLOSED\\r\\n\\r\\nCONNECT FAIL\\r\\n"
    );
    assert_eq!(b.now() - asked, Duration::from_secs(75));
    assert!(b.next_deadline().is_none(), "nothing left to happen");
}

#[test]
fn a_network_delay_holds_send_ok_and_data_back() {
    let mut b = bench().with_delay(Duration::from_millis(300));
    assert_eq!(cmd(&mut b, "AT+CIPSTART=\"TCP\",\"h\",7"), "\\r\\nOK\\r\\n");
    b.advance(Duration::from_millis(299));
    assert_eq!(text(&mut b), "");
    b.advance(Duration::from_millis(1));
    assert_eq!(text(&mut b), "\\r\\nCONNECT OK\\r\\n");
    cmd(&mut b, "AT+CIPSEND=2");
    b.write(b"hi");
    assert_eq!(text(&mut b), "");
    assert_eq!(
        b.next_deadline(),
        Some(b.now() + Duration::from_millis(300))
    );
    b.advance(Duration::from_millis(300));
    assert_eq!(text(&mut b), "\\r\\nSEND OK\\r\\n\\r\\nhi");
}

#[test]
fn dripping_output_comes_out_over_virtual_time() {
    let mut b = bench();
    b.inject("drip=10ms".parse().expect("fault"));
    b.write(b"AT+CSQ\r");
    let mut got = b.read();
    let mut steps = 0;
    while let Some(t) = b.next_deadline() {
        b.advance_to(t);
        got.extend(b.read());
        steps += 1;
    }
    assert_eq!(show(&got), "\\r\\n+CSQ: 24,99\\r\\n\\r\\nOK\\r\\n");
    assert!(
        steps >= got.len() - 1,
        "one byte per deadline: {steps} steps"
    );
}

/// The modem core is sans-IO: no real clock, no sleeping, no threads, no sockets. A change
/// that adds one fails here (and would break the in-memory harness's virtual time).
#[test]
fn the_modem_core_never_reads_the_clock_or_sleeps() {
    let sources = [
        ("modem/mod.rs", include_str!("../modem/mod.rs")),
        ("modem/bearer.rs", include_str!("../modem/bearer.rs")),
        ("modem/receive.rs", include_str!("../modem/receive.rs")),
        ("modem/general.rs", include_str!("../modem/general.rs")),
        ("modem/injected.rs", include_str!("../modem/injected.rs")),
        ("modem/input.rs", include_str!("../modem/input.rs")),
        ("modem/parse.rs", include_str!("../modem/parse.rs")),
        ("modem/power.rs", include_str!("../modem/power.rs")),
        ("modem/sm.rs", include_str!("../modem/sm.rs")),
        ("modem/state.rs", include_str!("../modem/state.rs")),
        ("modem/tcpip.rs", include_str!("../modem/tcpip.rs")),
        ("modem/timers.rs", include_str!("../modem/timers.rs")),
        ("modem/wire.rs", include_str!("../modem/wire.rs")),
        ("config.rs", include_str!("../config.rs")),
        ("fault.rs", include_str!("../fault.rs")),
        ("memory.rs", include_str!("../memory.rs")),
    ];
    let forbidden = [
        "Instant::now",
        "SystemTime",
        "sleep(",
        "thread::",
        "TcpStream",
        "UdpSocket",
        "std::fs",
        "std::io::stdin",
    ];
    for (name, src) in sources {
        for f in forbidden {
            assert!(!src.contains(f), "src/emulator/{name} uses `{f}`");
        }
    }
}
