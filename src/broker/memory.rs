//! The broker core as the in-memory network of emulated modems: no sockets, no threads, the
//! emulator's virtual clock.
//!
//! [`MemoryBroker`] is one [`Broker`] shared by any number of
//! [`crate::emulator::memory::Bench`]es (one per emulated modem, all in one thread); each
//! bench gets its own [`BrokerNetwork`] from [`MemoryBroker::network`]. Every modem numbers
//! its connections from 1, so each network maps its modem's connection ids onto ids unique
//! in the broker. A connection the broker ends (a protocol error, a keep-alive expiry, a
//! takeover) is reported to the modem as closed by the peer once its last bytes were
//! delivered ([`Broker::wants_close`]).
//!
//! Every connection request is accepted, whatever host and port the modem dialled (the
//! shipped recipes name public brokers); [`BrokerNetwork::refuse`] and
//! [`BrokerNetwork::unreachable`] make given ports fail instead.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use super::{Broker, BrokerConfig, ConnId, ReceivedMessage};
use crate::emulator::memory::{Connect, MemoryNetwork, PeerOutput};

/// One broker core shared by the networks of several benches (single-threaded).
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    broker: Rc<RefCell<Broker>>,
    next_id: Rc<Cell<u64>>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::new(BrokerConfig::default())
    }
}

impl MemoryBroker {
    /// A broker with this configuration and no connections.
    pub fn new(config: BrokerConfig) -> MemoryBroker {
        MemoryBroker {
            broker: Rc::new(RefCell::new(Broker::new(config))),
            next_id: Rc::new(Cell::new(0)),
        }
    }

    /// A network for one more bench, its clock starting at `now`.
    pub fn network(&self, now: Instant) -> BrokerNetwork {
        BrokerNetwork {
            shared: self.clone(),
            ids: BTreeMap::new(),
            now,
            next: None,
            connects: Vec::new(),
            refused: Vec::new(),
            unreachable: Vec::new(),
        }
    }

    /// Every PUBLISH clients sent so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.broker.borrow().received().to_vec()
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.broker.borrow().connection_count()
    }

    /// Run `f` on the broker core (e.g. to act as another client between steps).
    pub fn with<R>(&self, f: impl FnOnce(&mut Broker) -> R) -> R {
        f(&mut self.broker.borrow_mut())
    }

    fn alloc(&self) -> ConnId {
        let id = self.next_id.get().wrapping_add(1);
        self.next_id.set(id);
        ConnId(id)
    }
}

/// The far side of one modem's connections: the shared broker (see the module
/// documentation).
#[derive(Debug)]
pub struct BrokerNetwork {
    shared: MemoryBroker,
    /// The modem's connection id → the broker's.
    ids: BTreeMap<crate::emulator::ConnId, ConnId>,
    now: Instant,
    next: Option<Instant>,
    connects: Vec<(String, u16)>,
    refused: Vec<u16>,
    unreachable: Vec<u16>,
}

impl BrokerNetwork {
    /// Refuse connections to `port` (a TCP reset: `CONNECT FAIL` soon).
    pub fn refuse(mut self, port: u16) -> BrokerNetwork {
        self.refused.push(port);
        self
    }

    /// Leave connections to `port` unanswered (`CONNECT FAIL` when the module gives up).
    pub fn unreachable(mut self, port: u16) -> BrokerNetwork {
        self.unreachable.push(port);
        self
    }

    /// Every `host:port` the modem dialled, in order.
    pub fn connects(&self) -> &[(String, u16)] {
        &self.connects
    }

    /// The shared broker.
    pub fn broker(&self) -> &MemoryBroker {
        &self.shared
    }
}

impl MemoryNetwork for BrokerNetwork {
    fn connect(&mut self, id: crate::emulator::ConnId, host: &str, port: u16) -> Connect {
        self.connects.push((host.to_string(), port));
        if self.refused.contains(&port) {
            return Connect::Refuse;
        }
        if self.unreachable.contains(&port) {
            return Connect::Unreachable;
        }
        let bid = self.shared.alloc();
        self.ids.insert(id, bid);
        self.shared.broker.borrow_mut().connect(bid, self.now);
        Connect::Accept
    }

    fn send(&mut self, id: crate::emulator::ConnId, data: &[u8]) {
        if let Some(bid) = self.ids.get(&id) {
            self.shared
                .broker
                .borrow_mut()
                .handle_bytes(*bid, data, self.now);
        }
    }

    fn poll(&mut self, id: crate::emulator::ConnId) -> PeerOutput {
        let Some(bid) = self.ids.get(&id).copied() else {
            return PeerOutput {
                data: Vec::new(),
                closed: true,
            };
        };
        let mut broker = self.shared.broker.borrow_mut();
        let data = broker.poll_output(bid);
        let closed = broker.wants_close(bid);
        if closed {
            broker.disconnect(bid, self.now);
            drop(broker);
            self.ids.remove(&id);
        }
        PeerOutput { data, closed }
    }

    fn close(&mut self, id: crate::emulator::ConnId) {
        if let Some(bid) = self.ids.remove(&id) {
            self.shared.broker.borrow_mut().disconnect(bid, self.now);
        }
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.next = self.shared.broker.borrow_mut().poll(self.now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::EmulatorConfig;
    use crate::emulator::memory::Bench;
    use crate::mqtt::{Connect as ConnectPacket, Packet, Protocol, Publish};

    fn bench(broker: &MemoryBroker, t0: Instant) -> Bench<BrokerNetwork> {
        let config = EmulatorConfig {
            echo: false,
            ..EmulatorConfig::default()
        };
        let mut b = Bench::new(config, broker.network(t0), t0);
        b.write(b"AT\r");
        b.read();
        b
    }

    fn cmd(b: &mut Bench<BrokerNetwork>, line: &str) -> String {
        b.write(format!("{line}\r").as_bytes());
        b.advance(std::time::Duration::from_millis(10));
        String::from_utf8_lossy(&b.read()).into_owned()
    }

    fn send(b: &mut Bench<BrokerNetwork>, bytes: &[u8]) -> String {
        let prompt = cmd(b, &format!("AT+CIPSEND={}", bytes.len()));
        assert!(prompt.contains('>'), "{prompt}");
        b.write(bytes);
        b.advance(std::time::Duration::from_millis(10));
        String::from_utf8_lossy(&b.read()).into_owned()
    }

    fn connect_packet(id: &str) -> Vec<u8> {
        let mut c = ConnectPacket::new(Protocol::V311, id);
        c.keep_alive = 60;
        Packet::Connect(c).encode(Protocol::V311).unwrap()
    }

    /// Two modems on one broker: both number their connection 1; the broker tells them
    /// apart, and the PUBLISH of each lands once.
    #[test]
    fn two_benches_share_one_broker() {
        let t0 = Instant::now();
        let broker = MemoryBroker::default();
        let mut a = bench(&broker, t0);
        let mut b = bench(&broker, t0);
        for (m, id) in [(&mut a, "a"), (&mut b, "b")] {
            for c in ["AT+CSTT=\"nbiot\"", "AT+CIICR", "AT+CIFSR"] {
                cmd(m, c);
            }
            let r = cmd(m, "AT+CIPSTART=\"TCP\",\"broker.example\",1883");
            assert!(r.contains("CONNECT OK"), "{r}");
            let r = send(m, &connect_packet(id));
            assert!(r.contains("SEND OK"), "{r}");
        }
        assert_eq!(broker.connection_count(), 2);
        let publish = Publish::new("t/x", b"hello".to_vec());
        let bytes = Packet::Publish(publish).encode(Protocol::V311).unwrap();
        let r = send(&mut b, &bytes);
        assert!(r.contains("SEND OK"), "{r}");
        let got = broker.received();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].topic.as_str(), &got[0].payload[..]),
            ("t/x", &b"hello"[..])
        );
        assert_eq!(
            a.network().connects(),
            [("broker.example".to_string(), 1883)]
        );
    }

    /// A connection the broker ends (garbage instead of CONNECT) is closed to the modem.
    #[test]
    fn a_connection_the_broker_ends_is_closed_by_the_peer() {
        let t0 = Instant::now();
        let broker = MemoryBroker::default();
        let mut a = bench(&broker, t0);
        for c in ["AT+CSTT=\"nbiot\"", "AT+CIICR", "AT+CIFSR"] {
            cmd(&mut a, c);
        }
        cmd(&mut a, "AT+CIPSTART=\"TCP\",\"broker.example\",1883");
        let r = send(&mut a, b"\xff\xff\xff\xff\xff");
        assert!(r.contains("CLOSED"), "{r}");
        assert_eq!(broker.connection_count(), 0);
        assert_eq!(a.open_connections().count(), 0);
    }

    #[test]
    fn refused_ports_fail_to_connect() {
        let t0 = Instant::now();
        let broker = MemoryBroker::default();
        let config = EmulatorConfig {
            echo: false,
            ..EmulatorConfig::default()
        };
        let mut a = Bench::new(config, broker.network(t0).refuse(1883), t0);
        a.write(b"AT\r");
        for c in ["AT+CSTT=\"nbiot\"", "AT+CIICR", "AT+CIFSR"] {
            cmd(&mut a, c);
        }
        let r = cmd(&mut a, "AT+CIPSTART=\"TCP\",\"broker.example\",1883");
        assert!(r.contains("CONNECT FAIL"), "{r}");
    }
}
