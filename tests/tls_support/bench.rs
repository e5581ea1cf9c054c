//! The whole TLS path in memory, under a virtual clock: sim7k's step engine drives the
//! emulated SIM7000 (`emulator::Bench`), whose TCP connections end at an in-memory rustls
//! server in front of the embedded broker's sans-IO core. No thread, no socket, no pty:
//! every receive mode, chunk size, drip and URC fault is deterministic.

use super::memory::{MemServer, ServerOpts, server_config};
use super::{Issued, Pki};
use rustls::ServerConfig;
use sim7k::broker::{Broker, BrokerConfig, ConnId as BrokerConn};
use sim7k::emulator::memory::{Connect, MemoryNetwork, PeerOutput};
use sim7k::emulator::{Bench, ConnId, EmulatorConfig, Fault};
use sim7k::engine::{
    Action, DataPlan, Event, Matcher, MqttParams, MqttPlan, MqttWant, PlanAction, Session,
    StepOutcome, StepPlan, TlsHandshake, TlsPlan,
};
use sim7k::mqtt::{Connect as MqttConnect, Packet, PacketType, Protocol, Publish, QoS};
use sim7k::tls::{TlsClient, TlsConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One server side: TLS over a broker connection.
pub(crate) struct Side {
    /// The TLS server.
    pub tls: MemServer,
    /// Ciphertext it received until its handshake completed.
    pub handshake_in: Option<usize>,
    /// Ciphertext it sent until its handshake completed.
    pub handshake_out: Option<usize>,
    /// It sent its alert and closed.
    pub closed: bool,
}

/// In-memory TLS in front of the broker core.
pub(crate) struct TlsBroker {
    /// The broker.
    pub broker: Broker,
    config: Arc<ServerConfig>,
    /// Connections by modem connection id.
    pub sides: HashMap<ConnId, Side>,
    /// Connections opened, in order (host, port).
    pub connects: Vec<(String, u16)>,
    now: Instant,
    next: Option<Instant>,
}

impl TlsBroker {
    /// A broker behind `server` (its certificate) with `opts`.
    pub(crate) fn new(server: &Issued, opts: &ServerOpts, start: Instant) -> TlsBroker {
        TlsBroker {
            broker: Broker::new(BrokerConfig::default()),
            config: server_config(server, opts),
            sides: HashMap::new(),
            connects: Vec::new(),
            now: start,
            next: None,
        }
    }
}

impl MemoryNetwork for TlsBroker {
    fn connect(&mut self, id: ConnId, host: &str, port: u16) -> Connect {
        self.connects.push((host.to_string(), port));
        self.broker.connect(BrokerConn(id), self.now);
        self.sides.insert(
            id,
            Side {
                tls: MemServer::new(&self.config),
                handshake_in: None,
                handshake_out: None,
                closed: false,
            },
        );
        Connect::Accept
    }

    fn send(&mut self, id: ConnId, data: &[u8]) {
        let Some(side) = self.sides.get_mut(&id) else {
            return;
        };
        side.tls.take_in(data);
        let plain = std::mem::take(&mut side.tls.plain_in);
        if !plain.is_empty() {
            self.broker.handle_bytes(BrokerConn(id), &plain, self.now);
        }
    }

    fn poll(&mut self, id: ConnId) -> PeerOutput {
        let Some(side) = self.sides.get_mut(&id) else {
            return PeerOutput::default();
        };
        if side.closed {
            return PeerOutput {
                data: Vec::new(),
                closed: true,
            };
        }
        let out = self.broker.poll_output(BrokerConn(id));
        if !out.is_empty() && !side.tls.conn.is_handshaking() {
            side.tls.write(&out);
        }
        let data = side.tls.take_out();
        if !side.tls.conn.is_handshaking() && side.handshake_out.is_none() {
            side.handshake_out = Some(side.tls.sent);
            side.handshake_in = Some(side.tls.received);
        }
        let closed = side.tls.error.is_some() || self.broker.wants_close(BrokerConn(id));
        side.closed = closed;
        PeerOutput { data, closed }
    }

    fn close(&mut self, id: ConnId) {
        self.broker.disconnect(BrokerConn(id), self.now);
    }

    fn advance(&mut self, now: Instant) {
        self.now = now;
        self.next = self.broker.poll(now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.next
    }
}

/// The engine driving the emulated modem over the in-memory TLS broker.
pub(crate) struct Rig {
    /// sim7k's step engine.
    pub session: Session,
    /// The emulated modem and its network.
    pub bench: Bench<TlsBroker>,
    /// Every engine event so far.
    pub events: Vec<Event>,
    /// Every byte the engine wrote.
    pub written: usize,
}

/// Test material for one rig: a CA and a server certificate for `broker.test`.
pub(crate) struct Certs {
    /// Where they are.
    pub pki: Pki,
    /// The CA.
    pub ca: super::Ca,
    /// The server's certificate.
    pub server: Issued,
}

impl Certs {
    /// A fresh CA and server certificate (ECDSA P-256).
    pub(crate) fn new(tag: &str) -> Certs {
        let pki = Pki::new(tag);
        let ca = pki.ca("bench", super::Alg::EcdsaP256);
        let server = pki.server(
            &ca,
            "server",
            &["broker.test"],
            super::Alg::EcdsaP256,
            super::ALWAYS,
        );
        Certs { pki, ca, server }
    }

    /// A client trusting the CA, with `edit` applied to its settings.
    pub(crate) fn client(&self, edit: impl FnOnce(&mut TlsConfig)) -> Arc<TlsClient> {
        let mut config = TlsConfig {
            ca_file: Some(self.ca.issued.cert.clone()),
            ..TlsConfig::default()
        };
        edit(&mut config);
        Arc::new(config.build().expect("client config"))
    }
}

/// A command plan with `timeout`.
pub(crate) fn cmd(line: &str) -> StepPlan {
    let mut p = StepPlan::command(line, Duration::from_secs(10));
    p.abort = ["ERROR", "+CME ERROR", "CONNECT FAIL", "SEND FAIL"]
        .iter()
        .map(|m| Matcher::parse(m).expect("pattern"))
        .collect();
    p
}

/// The handshake step.
pub(crate) fn handshake(client: &Arc<TlsClient>, chunk: Option<usize>) -> StepPlan {
    let mut p = cmd("tls");
    p.timeout = Duration::from_secs(120);
    p.action = PlanAction::Tls(TlsPlan::Handshake(TlsHandshake {
        client: Arc::clone(client),
        host: None,
        chunk,
    }));
    p
}

/// A data send of `payload` (chunks of at most `chunk`, or the modem's size).
pub(crate) fn data(payload: &[u8], chunk: Option<usize>) -> StepPlan {
    let mut p = cmd("send");
    p.timeout = Duration::from_secs(30);
    p.action = PlanAction::Data(DataPlan {
        payload: payload.to_vec().into(),
        chunk,
        hex: false,
        secrets: Default::default(),
        session: MqttParams::of_connect(payload),
    });
    p
}

/// An MQTT wait for `want`.
pub(crate) fn mqtt(want: MqttWant, packet_id: Option<u16>) -> StepPlan {
    let mut p = cmd("mqtt");
    p.timeout = Duration::from_secs(60);
    p.action = PlanAction::Mqtt(MqttPlan {
        want,
        packet_id,
        duration: None,
        keep_alive: None,
    });
    p
}

/// CONNECT (client id `dev`, keep-alive `keep_alive`).
pub(crate) fn connect_packet(keep_alive: u16) -> Vec<u8> {
    let mut c = MqttConnect::new(Protocol::V311, "dev");
    c.keep_alive = keep_alive;
    Packet::Connect(c).encode(Protocol::V311).expect("CONNECT")
}

/// PUBLISH of `payload` on `topic` at `qos` (packet id 1 for QoS 1 and 2).
pub(crate) fn publish_packet(topic: &str, payload: &[u8], qos: QoS) -> Vec<u8> {
    let mut p = Publish::new(topic, payload.to_vec());
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = Some(1);
    }
    Packet::Publish(p).encode(Protocol::V311).expect("PUBLISH")
}

/// How the modem hands over received data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rx {
    /// `AT+CIPRXGET=1`: `+CIPRXGET: 1`, then `AT+CIPRXGET=2,<n>` reads.
    Manual,
    /// `AT+CIPHEAD=1`: `+IPD,<n>:` headers.
    Ipd,
    /// `AT+CIPRXGET=0`, `AT+CIPHEAD=0`: raw push, framed by the TLS record lengths.
    Push,
}

impl Rig {
    /// A zero-latency modem with `faults`, its connections served by `net`.
    pub(crate) fn new(net: TlsBroker, start: Instant, faults: Vec<Fault>) -> Rig {
        let config = EmulatorConfig {
            faults,
            ..EmulatorConfig::default()
        };
        Rig {
            session: Session::new(Vec::new()),
            bench: Bench::new(config, net, start),
            events: Vec::new(),
            written: 0,
        }
    }

    /// Run one step to its end.
    pub(crate) fn step(&mut self, plan: StepPlan) -> StepOutcome {
        let name = plan.name.clone();
        self.session.start(plan, self.bench.now(), None);
        for _ in 0..20_000_000u64 {
            let out = self.bench.read();
            if !out.is_empty() {
                self.session.feed(&out, self.bench.now());
            }
            match self.session.poll(self.bench.now()) {
                Action::Write(bytes) => {
                    self.written += bytes.len();
                    self.bench.write(&bytes);
                }
                Action::Wait(t) => {
                    let out = self.bench.read();
                    if !out.is_empty() {
                        self.session.feed(&out, self.bench.now());
                        continue;
                    }
                    let next = self.bench.next_deadline().map_or(t, |d| d.min(t));
                    self.bench.advance_to(next.max(self.bench.now()));
                }
                Action::Done(o) => {
                    self.events.extend(self.session.drain_events());
                    return o;
                }
            }
            self.events.extend(self.session.drain_events());
        }
        panic!("step `{name}` never finished");
    }

    /// Run a step that must pass.
    pub(crate) fn ok(&mut self, plan: StepPlan) -> StepOutcome {
        let name = plan.name.clone();
        let o = self.step(plan);
        assert!(
            o.passed(),
            "step `{name}` failed: {:?}\nlast events:\n{}",
            o.failure,
            self.tail(80)
        );
        o
    }

    /// The last `n` events, one per line.
    pub(crate) fn tail(&self, n: usize) -> String {
        let skip = self.events.len().saturating_sub(n);
        self.events
            .iter()
            .skip(skip)
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Attach and open TCP to `broker.test:8883` with receive mode `rx`.
    pub(crate) fn open(&mut self, rx: Rx) {
        self.ok(cmd("AT"));
        self.ok(cmd("ATE0"));
        let (rxget, head) = match rx {
            Rx::Manual => (1, 0),
            Rx::Ipd => (0, 1),
            Rx::Push => (0, 0),
        };
        self.ok(cmd(&format!("AT+CIPRXGET={rxget}")));
        self.ok(cmd(&format!("AT+CIPHEAD={head}")));
        self.ok(cmd("AT+CSTT=\"iot\""));
        self.ok(cmd("AT+CIICR"));
        let mut ip = cmd("AT+CIFSR");
        ip.expect = vec![Matcher::parse("/^\\d+\\.\\d+\\.\\d+\\.\\d+$/").expect("pattern")];
        self.ok(ip);
        let mut open = cmd("AT+CIPSTART=\"TCP\",\"broker.test\",8883");
        open.expect = vec![Matcher::parse("CONNECT OK").expect("pattern")];
        self.ok(open);
    }

    /// CONNECT + PUBLISH over the session, the CONNACK and the QoS's acknowledgement.
    pub(crate) fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, chunk: Option<usize>) {
        let mut bytes = connect_packet(60);
        bytes.extend_from_slice(&publish_packet(topic, payload, qos));
        self.ok(data(&bytes, chunk));
        self.ok(mqtt(MqttWant::Packet(PacketType::ConnAck), None));
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.ok(mqtt(MqttWant::Packet(PacketType::PubAck), Some(1)));
            }
            QoS::ExactlyOnce => {
                self.ok(mqtt(MqttWant::Packet(PacketType::PubComp), Some(1)));
            }
        }
    }

    /// The TLS transcript lines so far.
    pub(crate) fn tls_lines(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Tls(t) => Some(t.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Let `d` of virtual time pass with the engine idle between steps.
    pub(crate) fn idle(&mut self, d: Duration) {
        self.bench.advance(d);
        let out = self.bench.read();
        self.session.feed(&out, self.bench.now());
        self.events.extend(self.session.drain_events());
    }
}
