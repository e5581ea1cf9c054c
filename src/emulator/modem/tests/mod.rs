//! Unit tests of the sans-IO core: no ports, no sockets, time passed in by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::wire;
use super::{Modem, NetEvent, NetRequest};

mod boot_and_status;
mod faults;
mod sm;
mod sm_logs;
mod tcpip_receive;
mod tcpip_send;
use crate::emulator::config::EmulatorConfig;

/// A modem plus a hand-driven clock.
pub(super) struct H {
    pub(super) m: Modem,
    pub(super) t: Instant,
}

pub(super) fn peer() -> SocketAddr {
    "192.0.2.7:5000".parse().unwrap()
}

/// Render bytes readably in assertion messages.
pub(super) fn show(b: &[u8]) -> String {
    crate::emulator::transcript::escape(b)
}

impl H {
    pub(super) fn new(cfg: EmulatorConfig) -> H {
        let t = Instant::now();
        let mut h = H {
            m: Modem::new(cfg, t),
            t,
        };
        h.out();
        h
    }

    /// Default config, echo off, boot URCs already consumed.
    pub(super) fn quiet() -> H {
        let mut h = H::new(EmulatorConfig {
            echo: false,
            ..EmulatorConfig::default()
        });
        h.cmd("AT");
        h
    }

    pub(super) fn out(&mut self) -> Vec<u8> {
        self.m.take_output(self.t)
    }

    pub(super) fn send(&mut self, b: &[u8]) -> Vec<u8> {
        self.m.feed(b, self.t);
        self.out()
    }

    /// Send `line\r` and return everything the module printed.
    pub(super) fn cmd(&mut self, line: &str) -> Vec<u8> {
        self.send(format!("{line}\r").as_bytes())
    }

    pub(super) fn cmds(&mut self, line: &str) -> String {
        String::from_utf8_lossy(&self.cmd(line)).into_owned()
    }

    pub(super) fn advance(&mut self, d: Duration) -> Vec<u8> {
        self.t += d;
        self.m.poll(self.t);
        self.out()
    }

    pub(super) fn net(&mut self, ev: NetEvent) -> Vec<u8> {
        self.m.handle_net(ev, self.t);
        self.out()
    }

    pub(super) fn reqs(&mut self) -> Vec<NetRequest> {
        self.m.take_net_requests()
    }

    pub(super) fn expect(&mut self, line: &str, want: &[u8]) {
        let got = self.cmd(line);
        assert_eq!(show(&got), show(want), "after {line:?}");
    }

    /// Bring the CIP application to IP STATUS.
    pub(super) fn bring_up(&mut self) {
        self.expect("AT+CSTT=\"iot\"", b"\r\nOK\r\n");
        self.expect("AT+CIICR", b"\r\nOK\r\n");
        let ip = self.cmd("AT+CIFSR");
        assert_eq!(show(&ip), show(b"\r\n10.64.23.17\r\n"));
    }

    /// Connect the CIP application; returns the connection id.
    pub(super) fn connect(&mut self) -> u64 {
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

    pub(super) fn state(&mut self) -> String {
        let o = self.cmds("AT+CIPSTATUS");
        let rest = o
            .strip_prefix("\r\nOK\r\n\r\nSTATE: ")
            .unwrap_or_else(|| panic!("bad CIPSTATUS reply {o:?}"));
        rest.trim_end().to_string()
    }

    /// Connect the native MQTT client to a fake broker; returns the connection id.
    pub(super) fn sm_connect(&mut self) -> u64 {
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

pub(super) fn sends(reqs: &[NetRequest]) -> Vec<Vec<u8>> {
    reqs.iter()
        .filter_map(|r| match r {
            NetRequest::Send { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// Default config with these faults, echo off, synced.
pub(super) fn with_faults(faults: &[&str]) -> H {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h
}
