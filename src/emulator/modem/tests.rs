//! Unit tests of the sans-IO core: no ports, no sockets, time passed in by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::wire;
use super::{Modem, NetEvent, NetRequest};
use crate::emulator::config::{BootMode, EmulatorConfig, Latency, Registration, Span};
use crate::emulator::fault::Fault;

/// A modem plus a hand-driven clock.
struct H {
    m: Modem,
    t: Instant,
}

fn peer() -> SocketAddr {
    "192.0.2.7:5000".parse().unwrap()
}

/// Render bytes readably in assertion messages.
fn show(b: &[u8]) -> String {
    crate::emulator::transcript::escape(b)
}

impl H {
    fn new(cfg: EmulatorConfig) -> H {
        let t = Instant::now();
        let mut h = H {
            m: Modem::new(cfg, t),
            t,
        };
        h.out();
        h
    }

    /// Default config, echo off, boot URCs already consumed.
    fn quiet() -> H {
        let mut h = H::new(EmulatorConfig {
            echo: false,
            ..EmulatorConfig::default()
        });
        h.cmd("AT");
        h
    }

    fn out(&mut self) -> Vec<u8> {
        self.m.take_output(self.t)
    }

    fn send(&mut self, b: &[u8]) -> Vec<u8> {
        self.m.feed(b, self.t);
        self.out()
    }

    /// Send `line\r` and return everything the module printed.
    fn cmd(&mut self, line: &str) -> Vec<u8> {
        self.send(format!("{line}\r").as_bytes())
    }

    fn cmds(&mut self, line: &str) -> String {
        String::from_utf8_lossy(&self.cmd(line)).into_owned()
    }

    fn advance(&mut self, d: Duration) -> Vec<u8> {
        self.t += d;
        self.m.poll(self.t);
        self.out()
    }

    fn net(&mut self, ev: NetEvent) -> Vec<u8> {
        self.m.handle_net(ev, self.t);
        self.out()
    }

    fn reqs(&mut self) -> Vec<NetRequest> {
        self.m.take_net_requests()
    }

    fn expect(&mut self, line: &str, want: &[u8]) {
        let got = self.cmd(line);
        assert_eq!(show(&got), show(want), "after {line:?}");
    }

    /// Bring the CIP application to IP STATUS.
    fn bring_up(&mut self) {
        self.expect("AT+CSTT=\"iot\"", b"\r\nOK\r\n");
        self.expect("AT+CIICR", b"\r\nOK\r\n");
        let ip = self.cmd("AT+CIFSR");
        assert_eq!(show(&ip), show(b"\r\n10.64.23.17\r\n"));
    }

    /// Connect the CIP application; returns the connection id.
    fn connect(&mut self) -> u64 {
        self.bring_up();
        self.expect("AT+CIPSTART=\"TCP\",\"example.com\",80", b"\r\nOK\r\n");
        let id = match self.reqs().as_slice() {
            [NetRequest::Connect { id, host, port }] => {
                assert_eq!((host.as_str(), *port), ("example.com", 80));
                *id
            }
            other => panic!("expected one connect request, got {other:?}"),
        };
        let o = self.net(NetEvent::Connected { id, peer: peer() });
        assert_eq!(show(&o), show(b"\r\nCONNECT OK\r\n"));
        id
    }

    fn state(&mut self) -> String {
        let o = self.cmds("AT+CIPSTATUS");
        let rest = o
            .strip_prefix("\r\nOK\r\n\r\nSTATE: ")
            .unwrap_or_else(|| panic!("bad CIPSTATUS reply {o:?}"));
        rest.trim_end().to_string()
    }

    /// Connect the native MQTT client to a fake broker; returns the connection id.
    fn sm_connect(&mut self) -> u64 {
        self.expect("AT+CNACT=1,\"iot\"", b"\r\nOK\r\n\r\n+APP PDP: ACTIVE\r\n");
        self.expect("AT+SMCONF=\"URL\",\"broker.example\",1883", b"\r\nOK\r\n");
        self.expect("AT+SMCONF=\"CLIENTID\",\"dev1\"", b"\r\nOK\r\n");
        self.expect("AT+SMCONF=\"CLEANSS\",1", b"\r\nOK\r\n");
        assert!(self.cmd("AT+SMCONN").is_empty());
        let id = match self.reqs().as_slice() {
            [NetRequest::Connect { id, host, port }] => {
                assert_eq!((host.as_str(), *port), ("broker.example", 1883));
                *id
            }
            other => panic!("{other:?}"),
        };
        assert!(
            self.net(NetEvent::Connected { id, peer: peer() })
                .is_empty()
        );
        match self.reqs().as_slice() {
            [NetRequest::Send { data, .. }] => {
                assert_eq!(
                    data,
                    &wire::connect(&wire::ConnectOpts {
                        client_id: "dev1".into(),
                        keepalive: 60,
                        clean_session: true,
                        ..Default::default()
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        let o = self.net(NetEvent::Received {
            id,
            data: vec![0x20, 2, 0, 0],
        });
        assert_eq!(show(&o), show(b"\r\nOK\r\n"));
        id
    }
}

fn sends(reqs: &[NetRequest]) -> Vec<Vec<u8>> {
    reqs.iter()
        .filter_map(|r| match r {
            NetRequest::Send { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

// ----- framing, echo, boot -------------------------------------------------------------------

#[test]
fn autobaud_holds_boot_urcs_until_first_at() {
    let mut h = H::new(EmulatorConfig::default());
    assert!(h.out().is_empty(), "autobaud prints nothing at power-on");
    let o = h.cmd("AT");
    assert_eq!(
        show(&o),
        show(b"AT\r\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
    assert_eq!(show(&h.cmd("AT")), show(b"AT\r\r\nOK\r\n"));
}

#[test]
fn fixed_baud_prints_boot_urcs_at_start() {
    let t = Instant::now();
    let mut m = Modem::new(
        EmulatorConfig {
            boot: BootMode::Fixed(115200),
            ..EmulatorConfig::default()
        },
        t,
    );
    assert_eq!(
        show(&m.take_output(t)),
        show(b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
    m.feed(b"AT\r", t);
    assert_eq!(show(&m.take_output(t)), show(b"AT\r\r\nOK\r\n"));
}

#[test]
fn boot_latency_ignores_input_until_ready() {
    let t = Instant::now();
    let mut m = Modem::new(
        EmulatorConfig {
            latency: Latency {
                boot: Duration::from_secs(2),
                ..Latency::zero()
            },
            ..EmulatorConfig::default()
        },
        t,
    );
    m.feed(b"AT\r", t + Duration::from_secs(1));
    assert!(m.take_output(t + Duration::from_secs(1)).is_empty());
    assert_eq!(m.next_deadline(), Some(t + Duration::from_secs(2)));
    m.feed(b"AT\r", t + Duration::from_secs(3));
    assert!(
        m.take_output(t + Duration::from_secs(3))
            .starts_with(b"AT\r\r\nOK\r\n")
    );
}

#[test]
fn echo_is_raw_and_ate0_line_is_still_echoed() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    assert_eq!(show(&h.send(b"ATE0\r\n")), show(b"ATE0\r\n\r\nOK\r\n"));
    assert_eq!(show(&h.cmd("AT")), show(b"\r\nOK\r\n"));
    assert_eq!(show(&h.cmd("ATE1")), show(b"\r\nOK\r\n"));
    assert_eq!(show(&h.cmd("at")), show(b"at\r\r\nOK\r\n"));
}

#[test]
fn echo_byte_by_byte_and_backspace() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    let mut all = Vec::new();
    for b in b"ATI\x08\x08T\r" {
        all.extend(h.send(&[*b]));
    }
    assert_eq!(show(&all), show(b"ATI\x08\x08T\r\r\nOK\r\n"));
}

#[test]
fn verbose_off_gives_numeric_codes() {
    let mut h = H::quiet();
    h.expect("ATV0", b"0\r");
    h.expect("AT+CSQ", b"+CSQ: 24,99\r\n0\r");
    h.expect("AT+NOPE", b"4\r");
    h.expect("ATV1", b"\r\nOK\r\n");
}

#[test]
fn cmee_modes() {
    let mut h = H::quiet();
    // Not allowed in IP INITIAL.
    h.expect("AT+CIICR", b"\r\nERROR\r\n");
    h.expect("AT+CMEE=1", b"\r\nOK\r\n");
    h.expect("AT+CIICR", b"\r\n+CME ERROR: 3\r\n");
    h.expect("AT+CMEE=2", b"\r\nOK\r\n");
    h.expect("AT+CIICR", b"\r\n+CME ERROR: operation not allowed\r\n");
    h.expect("AT+CMEE?", b"\r\n+CMEE: 2\r\n\r\nOK\r\n");
    // Unknown commands answer plain ERROR whatever CMEE says.
    h.expect("AT+FOOBAR", b"\r\nERROR\r\n");
    h.expect("AT+CMEE=3", b"\r\n+CME ERROR: Incorrect parameters\r\n");
}

#[test]
fn quiet_mode_suppresses_result_codes() {
    let mut h = H::quiet();
    h.expect("ATQ1", b"");
    h.expect("AT+CSQ", b"\r\n+CSQ: 24,99\r\n");
    h.expect("ATQ0", b"\r\nOK\r\n");
}

#[test]
fn lines_without_at_are_ignored_and_case_is_free() {
    let mut h = H::quiet();
    h.expect("hello", b"");
    h.expect("", b"");
    h.expect("xxAT", b"\r\nOK\r\n");
    h.expect("aT+cSq", b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
}

#[test]
fn a_slash_repeats_last_line() {
    let mut h = H::quiet();
    h.expect("AT+CSQ", b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
    assert_eq!(show(&h.send(b"A/")), show(b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n"));
}

#[test]
fn line_length_limit() {
    let mut h = H::quiet();
    // 559 characters in total: accepted.
    let ok = format!(
        "AT{}",
        "E0".repeat(39 - 1) + " ".repeat(559 - 2 - 76).as_str()
    );
    assert_eq!(ok.len(), 559);
    h.expect(&ok, b"\r\nOK\r\n");
    // 560: rejected and nothing runs (echo stays on after the failed ATE1).
    let long = format!("ATE1;+CMEE=2{}", " ".repeat(560 - 12));
    assert_eq!(long.len(), 560);
    h.expect(&long, b"\r\nERROR\r\n");
    h.expect("AT+CMEE?", b"\r\n+CMEE: 0\r\n\r\nOK\r\n");
    // Too many commands.
    h.expect(&format!("AT{}", "E0;".repeat(40)), b"\r\nERROR\r\n");
}

#[test]
fn chained_commands_stop_at_the_first_error() {
    let mut h = H::quiet();
    h.expect("AT+CMEE=1;+CSQ", b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
    h.expect("AT+CMEE=0;+BOGUS;+CMEE=2", b"\r\nERROR\r\n");
    h.expect("AT+CMEE?", b"\r\n+CMEE: 0\r\n\r\nOK\r\n");
}

// ----- identity and status ---------------------------------------------------------------------

#[test]
fn identity_commands() {
    let mut cfg = EmulatorConfig {
        echo: false,
        ..EmulatorConfig::default()
    };
    cfg.identity.imei = "490154203237518".into();
    cfg.identity.iccid = "8944500102198304826F".into();
    cfg.identity.imsi = "001010123456789".into();
    cfg.identity.ati = "SIM7000G R1529".into();
    cfg.identity.revision = "1529B11SIM7000G".into();
    cfg.identity.rssi = 17;
    let mut h = H::new(cfg);
    h.cmd("AT");
    h.expect("ATI", b"\r\nSIM7000G R1529\r\n\r\nOK\r\n");
    h.expect("AT+CGMR", b"\r\nRevision:1529B11SIM7000G\r\n\r\nOK\r\n");
    h.expect("AT+GMR", b"\r\nRevision:1529B11SIM7000G\r\n\r\nOK\r\n");
    h.expect("AT+GSN", b"\r\n490154203237518\r\n\r\nOK\r\n");
    h.expect("AT+CGSN", b"\r\n490154203237518\r\n\r\nOK\r\n");
    h.expect("AT+CCID", b"\r\n8944500102198304826F\r\n\r\nOK\r\n");
    h.expect("AT+CIMI", b"\r\n001010123456789\r\n\r\nOK\r\n");
    h.expect("AT+CGMI", b"\r\nSIMCOM_Ltd\r\n\r\nOK\r\n");
    h.expect("AT+CPIN?", b"\r\n+CPIN: READY\r\n\r\nOK\r\n");
    h.expect("AT+CSQ", b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n");
    h.expect(
        "AT+COPS?",
        b"\r\n+COPS: 0,0,\"Far EasTone\",9\r\n\r\nOK\r\n",
    );
    h.expect("AT&W", b"\r\nOK\r\n");
    h.expect("ATZ", b"\r\nERROR\r\n");
}

#[test]
fn radio_settings_read_back() {
    let mut h = H::quiet();
    h.expect("AT+CNMP=38", b"\r\nOK\r\n");
    h.expect("AT+CNMP?", b"\r\n+CNMP: 38\r\n\r\nOK\r\n");
    h.expect("AT+CNMP=7", b"\r\nERROR\r\n");
    h.expect("AT+CMNB=2", b"\r\nOK\r\n");
    h.expect("AT+CMNB?", b"\r\n+CMNB: 2\r\n\r\nOK\r\n");
    h.expect("AT+CBANDCFG=\"NB-IOT\",8,20", b"\r\nOK\r\n");
    let o = h.cmds("AT+CBANDCFG?");
    assert!(o.starts_with("\r\n+CBANDCFG: \"CAT-M\",1,2,3"), "{o:?}");
    assert!(
        o.ends_with("\r\n+CBANDCFG: \"NB-IOT\",8,20\r\n\r\nOK\r\n"),
        "{o:?}"
    );
    h.expect("AT+CPSMS=1,,,\"00100001\",\"00000101\"", b"\r\nOK\r\n");
    h.expect(
        "AT+CPSMS?",
        b"\r\n+CPSMS: 1,,,\"00100001\",\"00000101\"\r\n\r\nOK\r\n",
    );
    h.expect("AT+CPSMS=1,,,\"2\"", b"\r\nERROR\r\n");
    h.expect("AT+CEDRXS=1,5,\"0101\"", b"\r\nOK\r\n");
    h.expect(
        "AT+CEDRXS?",
        b"\r\n+CEDRXS: 4,\"0000\"\r\n+CEDRXS: 5,\"0101\"\r\n\r\nOK\r\n",
    );
    h.expect("AT+IPR=115200", b"\r\nOK\r\n");
    h.expect("AT+IPR?", b"\r\n+IPR: 115200\r\n\r\nOK\r\n");
    h.expect("AT+IPR=12345", b"\r\nERROR\r\n");
    h.expect("AT+CLTS=1", b"\r\nOK\r\n");
    h.expect("AT+CLTS?", b"\r\n+CLTS: 1\r\n\r\nOK\r\n");
    let o = h.cmds("AT+CPSI?");
    assert!(
        o.starts_with("\r\n+CPSI: LTE NB-IOT,Online,466-01,0xA411,"),
        "{o:?}"
    );
    h.expect("AT+CGNAPN", b"\r\n+CGNAPN: 1,\"nbiot\"\r\n\r\nOK\r\n");
}

#[test]
fn cgdcont_several_cids() {
    let mut h = H::quiet();
    h.expect(
        "AT+CGDCONT?",
        b"\r\n+CGDCONT: 1,\"IP\",\"nbiot\",\"0.0.0.0\",0,0,0,0\r\n\r\nOK\r\n",
    );
    h.expect("AT+CGDCONT=3,\"IPV4V6\",\"three\"", b"\r\nOK\r\n");
    h.expect("AT+CGDCONT=1,\"IP\",\"one\"", b"\r\nOK\r\n");
    h.expect(
        "AT+CGDCONT?",
        b"\r\n+CGDCONT: 1,\"IP\",\"one\",\"0.0.0.0\",0,0,0,0\r\n+CGDCONT: 3,\"IPV4V6\",\"three\",\"0.0.0.0\",0,0,0,0\r\n\r\nOK\r\n",
    );
    h.expect("AT+CGDCONT=3", b"\r\nOK\r\n");
    h.expect(
        "AT+CGDCONT?",
        b"\r\n+CGDCONT: 1,\"IP\",\"one\",\"0.0.0.0\",0,0,0,0\r\n\r\nOK\r\n",
    );
    h.expect("AT+CGDCONT=99,\"IP\",\"x\"", b"\r\nERROR\r\n");
    h.expect("AT+CGDCONT=2,\"PPP\",\"x\"", b"\r\nERROR\r\n");
}

#[test]
fn registration_searches_for_n_polls() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_polls: 2,
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CGATT?", b"\r\n+CGATT: 0\r\n\r\nOK\r\n");
    h.expect("AT+COPS?", b"\r\n+COPS: 0\r\n\r\nOK\r\n");
    h.expect("AT+CPSI?", b"\r\n+CPSI: NO SERVICE,Online\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CGREG?", b"\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CGATT?", b"\r\n+CGATT: 1\r\n\r\nOK\r\n");
}

#[test]
fn registration_searches_for_a_duration_with_urcs() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_for: Duration::from_secs(5),
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CEREG=1", b"\r\nOK\r\n");
    h.expect("AT+CGREG=2", b"\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 1,2\r\n\r\nOK\r\n");
    assert!(h.advance(Duration::from_secs(2)).is_empty());
    let o = h.advance(Duration::from_secs(3));
    assert_eq!(
        show(&o),
        show(b"\r\n+CGREG: 1,\"A411\",\"0E3D6C0\",9\r\n\r\n+CEREG: 1\r\n")
    );
    h.expect(
        "AT+CGREG?",
        b"\r\n+CGREG: 2,1,\"A411\",\"0E3D6C0\",9\r\n\r\nOK\r\n",
    );
}

#[test]
fn nbiot_sim_keeps_creg_unregistered() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            nbiot_sim: true,
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CREG?", b"\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    h.expect("AT+CGREG?", b"\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
}

#[test]
fn clts_reports_network_time_on_registration() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_polls: 1,
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CLTS=1", b"\r\nOK\r\n");
    let o = h.cmds("AT+CEREG?");
    assert!(
        o.starts_with("\r\n+CEREG: 0,2\r\n\r\nOK\r\n\r\n*PSUTTZ: "),
        "{o:?}"
    );
    assert!(o.ends_with("\r\nDST: 0\r\n"), "{o:?}");
}

#[test]
fn cfun_radio_off_and_on() {
    let mut h = H::quiet();
    h.bring_up();
    h.expect(
        "AT+CFUN=0",
        b"\r\nOK\r\n\r\n+CPIN: NOT READY\r\n\r\n+PDP: DEACT\r\n",
    );
    assert_eq!(h.state(), "PDP DEACT");
    h.expect("AT+CFUN?", b"\r\n+CFUN: 0\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,0\r\n\r\nOK\r\n");
    h.expect("AT+CSQ", b"\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
    h.expect("AT+CPIN?", b"\r\nERROR\r\n");
    h.expect("AT+CFUN=1", b"\r\nOK\r\n\r\n+CPIN: READY\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
    h.bring_up();
}

#[test]
fn cfun_1_1_reboots_and_resets_state() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    h.expect("ATE0", b"ATE0\r\r\nOK\r\n");
    h.expect("AT+CMEE=2", b"\r\nOK\r\n");
    h.expect("AT+CNMP=38", b"\r\nOK\r\n");
    h.expect("AT+IPR=115200", b"\r\nOK\r\n");
    let id = h.connect();
    h.expect(
        "AT+CFUN=1,1",
        b"\r\nOK\r\n\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n",
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    // Echo back on, CMEE back to 0, IP INITIAL; CNMP (AUTO_SAVE) survives.
    assert_eq!(
        show(&h.cmd("AT+CMEE?")),
        show(b"AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n")
    );
    h.expect("ATE0", b"ATE0\r\r\nOK\r\n");
    assert_eq!(h.state(), "IP INITIAL");
    h.expect("AT+CNMP?", b"\r\n+CNMP: 38\r\n\r\nOK\r\n");
    // Events of the old connection are ignored.
    assert!(
        h.net(NetEvent::Received {
            id,
            data: b"late".to_vec()
        })
        .is_empty()
    );
}

#[test]
fn power_down() {
    let mut h = H::quiet();
    h.expect("AT+CPOWD=1", b"\r\nNORMAL POWER DOWN\r\n");
    h.expect("AT", b"");
    assert!(h.m.is_silent());
}

// ----- TCP/IP state machine ---------------------------------------------------------------------

#[test]
fn tcpip_state_machine_and_permissions() {
    let mut h = H::quiet();
    assert_eq!(h.state(), "IP INITIAL");
    h.expect("AT+CIICR", b"\r\nERROR\r\n");
    h.expect("AT+CIFSR", b"\r\nERROR\r\n");
    h.expect("AT+CIPSEND", b"\r\nERROR\r\n");
    h.expect("AT+CIPCLOSE", b"\r\nERROR\r\n");
    h.expect("AT+CIPMUX=0", b"\r\nOK\r\n");
    h.expect("AT+CSTT=\"internet\",\"user\",\"pw\"", b"\r\nOK\r\n");
    assert_eq!(h.state(), "IP START");
    h.expect(
        "AT+CSTT?",
        b"\r\n+CSTT: \"internet\",\"user\",\"pw\"\r\n\r\nOK\r\n",
    );
    h.expect("AT+CSTT=\"again\"", b"\r\nERROR\r\n");
    h.expect("AT+CIPMUX=0", b"\r\nERROR\r\n");
    h.expect("AT+CIFSR", b"\r\nERROR\r\n");
    h.expect("AT+CIICR", b"\r\nOK\r\n");
    assert_eq!(h.state(), "IP GPRSACT");
    // CIPSTART is not valid before CIFSR.
    h.expect("AT+CIPSTART=\"TCP\",\"a.b\",1", b"\r\nERROR\r\n");
    h.expect("AT+CIFSREX", b"\r\n+CIFSREX: 10.64.23.17\r\n\r\nOK\r\n");
    assert_eq!(h.state(), "IP STATUS");
    // CIFSR: bare IP, no OK.
    h.expect("AT+CIFSR", b"\r\n10.64.23.17\r\n");
    // TinyGSM's trick: the E0 supplies the OK.
    h.expect("AT+CIFSR;E0", b"\r\n10.64.23.17\r\n\r\nOK\r\n");
    h.expect("AT+CIPCLOSE", b"\r\nERROR\r\n");
    h.expect("AT+CIPSTART=\"TCP\",\"host\",\"8080\"", b"\r\nOK\r\n");
    assert_eq!(h.state(), "TCP CONNECTING");
    let id = match h.reqs().as_slice() {
        [
            NetRequest::Connect {
                id,
                host,
                port: 8080,
            },
        ] if host == "host" => *id,
        other => panic!("{other:?}"),
    };
    h.expect(
        "AT+CIPSTART=\"TCP\",\"host\",8080",
        b"\r\nERROR\r\n\r\nALREADY CONNECT\r\n",
    );
    assert_eq!(
        show(&h.net(NetEvent::Connected { id, peer: peer() })),
        show(b"\r\nCONNECT OK\r\n")
    );
    assert_eq!(h.state(), "CONNECT OK");
    h.expect(
        "AT+CIPSTART=\"TCP\",\"host\",8080",
        b"\r\nERROR\r\n\r\nALREADY CONNECT\r\n",
    );
    h.expect("AT+CIPCLOSE=1", b"\r\nCLOSE OK\r\n");
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    assert_eq!(h.state(), "TCP CLOSED");
    h.expect("AT+CIFSR", b"\r\n10.64.23.17\r\n");
    // CIPSTART again from TCP CLOSED (allowed by default).
    h.expect("AT+CIPSTART=\"TCP\",\"host\",8080", b"\r\nOK\r\n");
    assert_eq!(h.reqs().len(), 1);
    h.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
    assert_eq!(h.reqs().len(), 1, "the pending connection is closed");
    assert_eq!(h.state(), "IP INITIAL");
    h.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
}

#[test]
fn cipstart_parameters() {
    let mut h = H::quiet();
    h.bring_up();
    h.expect("AT+CIPSTART=\"TCP\",\"h\"", b"\r\nERROR\r\n");
    h.expect("AT+CIPSTART=\"TCP\",\"h\",0", b"\r\nERROR\r\n");
    h.expect("AT+CIPSTART=\"TCP\",\"h\",70000", b"\r\nERROR\r\n");
    h.expect("AT+CIPSTART=\"XYZ\",\"h\",1", b"\r\nERROR\r\n");
    h.expect("AT+CIPSTART=\"TCP\",\"\",1", b"\r\nERROR\r\n");
    h.expect("AT+CIPSTART=0,\"TCP\",\"h\",1", b"\r\nERROR\r\n");
    assert!(h.reqs().is_empty());
    assert_eq!(h.state(), "IP STATUS");
}

#[test]
fn cipstart_from_closed_can_be_refused() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        cipstart_from_closed: false,
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.connect();
    h.expect("AT+CIPCLOSE", b"\r\nCLOSE OK\r\n");
    h.expect("AT+CIPSTART=\"TCP\",\"h\",1", b"\r\nERROR\r\n");
}

#[test]
fn cipstart_from_ip_initial_brings_the_context_up() {
    let mut h = H::quiet();
    h.expect("AT+CIPSTART=\"TCP\",\"h\",1", b"\r\nOK\r\n");
    let id = match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    h.net(NetEvent::Connected { id, peer: peer() });
    assert_eq!(h.state(), "CONNECT OK");
}

#[test]
fn connect_fail_reports_state_then_connect_fail() {
    let mut h = H::quiet();
    h.bring_up();
    h.expect("AT+CIPSTART=\"TCP\",\"127.0.0.1\",9", b"\r\nOK\r\n");
    let id = match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    let o = h.net(NetEvent::ConnectFailed {
        id,
        reason: "refused".into(),
    });
    assert_eq!(
        show(&o),
        show(b"\r\nSTATE: TCP CLOSED\r\n\r\nCONNECT FAIL\r\n")
    );
    assert_eq!(h.state(), "TCP CLOSED");
}

#[test]
fn connect_fail_waits_the_configured_delay() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        latency: Latency {
            connect_fail: Span::fixed(Duration::from_secs(75)),
            ..Latency::zero()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.bring_up();
    h.expect("AT+CIPSTART=\"TCP\",\"127.0.0.1\",9", b"\r\nOK\r\n");
    let id = match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    assert!(
        h.net(NetEvent::ConnectFailed {
            id,
            reason: "refused".into()
        })
        .is_empty()
    );
    assert!(h.advance(Duration::from_secs(74)).is_empty());
    assert_eq!(h.state(), "TCP CONNECTING");
    assert!(
        h.advance(Duration::from_secs(1))
            .ends_with(b"\r\nCONNECT FAIL\r\n")
    );
}

#[test]
fn nbiot_latencies() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        ..EmulatorConfig::nbiot_demo()
    });
    // Still booting.
    assert!(h.cmd("AT").is_empty());
    h.advance(Duration::from_secs(1));
    h.expect("AT", b"\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n");
    // Searching for about 4 s after power-on, however often the host polls...
    for _ in 0..3 {
        h.expect("AT+CEREG?", b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n");
    }
    h.advance(Duration::from_secs(2));
    h.expect("AT+CGATT?", b"\r\n+CGATT: 0\r\n\r\nOK\r\n");
    // ...and registered after it, even without a registration poll.
    h.advance(Duration::from_secs(2));
    h.expect("AT+CGATT?", b"\r\n+CGATT: 1\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CSTT=\"iot\"", b"\r\nOK\r\n");
    h.expect("AT+CIICR", b"");
    assert!(
        h.cmd("AT+CIPSTATUS").is_empty(),
        "busy: the module only echoes (echo is off)"
    );
    let o = h.advance(Duration::from_millis(2500));
    assert_eq!(show(&o), show(b"\r\nOK\r\n"));
    assert_eq!(h.state(), "IP GPRSACT");
    h.cmd("AT+CIFSR");
    h.expect("AT+CIPSTART=\"TCP\",\"h\",1", b"\r\nOK\r\n");
    let id = match h.reqs().as_slice() {
        [NetRequest::Connect { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    assert!(h.net(NetEvent::Connected { id, peer: peer() }).is_empty());
    assert_eq!(
        show(&h.advance(Duration::from_secs(3))),
        show(b"\r\nCONNECT OK\r\n")
    );
    assert_eq!(show(&h.cmd("AT+CIPSEND=2")), show(b"\r\n> "));
    assert!(h.send(b"hi").is_empty());
    assert!(h.net(NetEvent::Sent { id, len: 2 }).is_empty());
    assert_eq!(
        show(&h.advance(Duration::from_secs(1))),
        show(b"\r\nSEND OK\r\n")
    );
}

#[test]
fn busy_module_only_echoes() {
    let mut h = H::new(EmulatorConfig {
        latency: Latency {
            attach: Span::fixed(Duration::from_secs(2)),
            ..Latency::zero()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.cmd("AT+CSTT");
    assert_eq!(show(&h.cmd("AT+CIICR")), show(b"AT+CIICR\r"));
    assert_eq!(show(&h.cmd("AT")), show(b"AT\r"));
    assert_eq!(
        show(&h.advance(Duration::from_secs(2))),
        show(b"\r\nOK\r\n")
    );
    assert_eq!(show(&h.cmd("AT")), show(b"AT\r\r\nOK\r\n"));
}

#[test]
fn ciicr_without_registration_fails_to_pdp_deact() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_polls: 5,
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.cmd("AT+CSTT=\"x\"");
    h.expect("AT+CIICR", b"\r\nERROR\r\n");
    assert_eq!(h.state(), "PDP DEACT");
    h.expect("AT+CSTT=\"x\"", b"\r\nERROR\r\n");
    h.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
    assert_eq!(h.state(), "IP INITIAL");
}

// ----- sending ---------------------------------------------------------------------------------

const NASTY: &[u8] = b"a\x1a b\x1b c\x00 d\r e\n f\r\n\x1a";

#[test]
fn fixed_length_send_is_binary_safe() {
    let mut h = H::quiet();
    let id = h.connect();
    h.expect("AT+CIPSEND?", b"\r\n+CIPSEND: 1460\r\n\r\nOK\r\n");
    let prompt = h.cmd(&format!("AT+CIPSEND={}", NASTY.len()));
    assert_eq!(show(&prompt), show(b"\r\n> "));
    assert!(h.send(NASTY).is_empty());
    assert_eq!(
        h.reqs(),
        vec![NetRequest::Send {
            id,
            data: NASTY.to_vec()
        }]
    );
    let o = h.net(NetEvent::Sent {
        id,
        len: NASTY.len(),
    });
    assert_eq!(show(&o), show(b"\r\nSEND OK\r\n"));
    h.expect(
        "AT+CIPACK",
        format!("\r\n+CIPACK: {0},{0},0\r\n\r\nOK\r\n", NASTY.len()).as_bytes(),
    );
}

#[test]
fn fixed_length_payload_is_echoed_when_echo_is_on() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    h.cmd("ATE0");
    let id = h.connect();
    h.expect("ATE1", b"\r\nOK\r\n");
    assert_eq!(show(&h.cmd("AT+CIPSEND=3")), show(b"AT+CIPSEND=3\r\r\n> "));
    assert_eq!(show(&h.send(b"a\x1ab")), show(b"a\x1ab"));
    assert_eq!(
        show(&h.net(NetEvent::Sent { id, len: 3 })),
        show(b"\r\nSEND OK\r\n")
    );
}

#[test]
fn fixed_length_limits() {
    let mut h = H::quiet();
    h.connect();
    h.expect("AT+CIPSEND=1461", b"\r\nERROR\r\n");
    h.expect("AT+CIPSEND=0", b"\r\nERROR\r\n");
    assert_eq!(show(&h.cmd("AT+CIPSEND=1460")), show(b"\r\n> "));
    assert!(h.send(&[0x55; 1460]).is_empty());
    assert_eq!(sends(&h.reqs()), vec![vec![0x55; 1460]]);
}

#[test]
fn variable_length_send_stops_at_ctrl_z() {
    let mut h = H::quiet();
    let id = h.connect();
    assert_eq!(show(&h.cmd("AT+CIPSEND")), show(b"\r\n> "));
    // The payload's own 0x1A ends the frame; what follows is parsed as commands.
    let o = h.send(b"ab\x00\r\ncd\x1aef\x1bAT\r");
    assert_eq!(
        h.reqs(),
        vec![NetRequest::Send {
            id,
            data: b"ab\x00\r\ncd".to_vec()
        }]
    );
    assert!(o.is_empty(), "busy until SEND OK: {}", show(&o));
    let o = h.net(NetEvent::Sent { id, len: 7 });
    assert_eq!(show(&o), show(b"\r\nSEND OK\r\n"));
    h.expect("AT", b"\r\nOK\r\n");
}

#[test]
fn variable_length_escape_cancels() {
    let mut h = H::quiet();
    h.connect();
    h.cmd("AT+CIPSEND");
    let o = h.send(b"hello\x1b");
    assert_eq!(show(&o), show(b"\r\nOK\r\n"));
    assert!(h.reqs().is_empty());
    h.expect("AT", b"\r\nOK\r\n");
}

#[test]
fn variable_length_overflow_and_empty() {
    let mut h = H::quiet();
    h.connect();
    h.cmd("AT+CIPSEND");
    let o = h.send(&[b'x'; 1461]);
    assert_eq!(show(&o), show(b"\r\nERROR\r\n"));
    h.cmd("AT+CIPSEND");
    assert_eq!(show(&h.send(b"\x1a")), show(b"\r\nERROR\r\n"));
    assert!(h.reqs().is_empty());
}

#[test]
fn hex_send_mode() {
    let mut h = H::quiet();
    let id = h.connect();
    h.expect("AT+CIPSENDHEX=1", b"\r\nOK\r\n");
    h.expect("AT+CIPSENDHEX?", b"\r\n+CIPSENDHEX: 1\r\n\r\nOK\r\n");
    h.cmd("AT+CIPSEND");
    // Upper/lower hex pairs, spaces and line breaks ignored, the pair `1A` sends.
    h.send(b"10 0c 00 04 4D 51\r\n54 54 1A");
    assert_eq!(
        h.reqs(),
        vec![NetRequest::Send {
            id,
            data: vec![0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T']
        }]
    );
    h.net(NetEvent::Sent { id, len: 8 });
    // A raw 0x1A also sends.
    h.cmd("AT+CIPSEND");
    h.send(b"4142\x1a");
    assert_eq!(sends(&h.reqs()), vec![b"AB".to_vec()]);
    h.net(NetEvent::Sent { id, len: 2 });
    // Non-hex → ERROR.
    h.cmd("AT+CIPSEND");
    assert_eq!(show(&h.send(b"4G")), show(b"\r\nERROR\r\n"));
    // Fixed length counts decoded bytes.
    h.cmd("AT+CIPSEND=2");
    h.send(b"1A1B");
    assert_eq!(sends(&h.reqs()), vec![vec![0x1A, 0x1B]]);
}

#[test]
fn quick_send_and_sprt() {
    let mut h = H::quiet();
    let id = h.connect();
    h.expect("AT+CIPQSEND=1", b"\r\nOK\r\n");
    h.cmd("AT+CIPSEND=5");
    assert_eq!(show(&h.send(b"hello")), show(b"\r\nDATA ACCEPT:5\r\n"));
    assert!(h.net(NetEvent::Sent { id, len: 5 }).is_empty());
    h.expect("AT+CIPQSEND=0", b"\r\nOK\r\n");
    h.expect("AT+CIPSPRT=0", b"\r\nOK\r\n");
    assert!(h.cmd("AT+CIPSEND=1").is_empty());
    h.send(b"x");
    assert_eq!(
        show(&h.net(NetEvent::Sent { id, len: 1 })),
        show(b"\r\nSEND OK\r\n")
    );
    h.expect("AT+CIPSPRT=2", b"\r\nOK\r\n");
    assert!(h.cmd("AT+CIPSEND=1").is_empty());
    h.send(b"y");
    assert!(h.net(NetEvent::Sent { id, len: 1 }).is_empty());
    h.expect("AT", b"\r\nOK\r\n");
    h.expect("AT+CIPACK", b"\r\n+CIPACK: 7,7,0\r\n\r\nOK\r\n");
}

#[test]
fn send_fails_when_the_network_says_so() {
    let mut h = H::quiet();
    let id = h.connect();
    h.cmd("AT+CIPSEND=2");
    h.send(b"hi");
    let o = h.net(NetEvent::SendFailed {
        id,
        reason: "broken pipe".into(),
    });
    assert_eq!(show(&o), show(b"\r\nSEND FAIL\r\n"));
}

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

// ----- faults ----------------------------------------------------------------------------------

fn with_faults(faults: &[&str]) -> H {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h
}

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
        "AT+CIPSHUT\r\r\n*PSUTTZ: 25/01/01,12:00:00\",\"+04\",1\r\n\r\nDST: 1\r\n\r\nSHUT OK\r\n"
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
        show(b"AT\r\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
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
    fn sm_connect_again(&mut self) -> u64 {
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
