//! The emulated module in memory: no threads, no pseudo-terminal, no sockets, and a virtual
//! clock the caller advances.
//!
//! A [`Bench`] owns a [`Modem`] and a [`MemoryNetwork`] that serves the modem's connections
//! (`AT+CIPSTART`, `AT+SMCONN`). The caller types bytes with [`Bench::write`], moves time on
//! with [`Bench::advance`] / [`Bench::advance_to`], and takes what the module printed with
//! [`Bench::read`]. Time only moves when the caller says so: the `nbiot` profile's 75 s
//! `CONNECT FAIL` costs microseconds of CPU.
//!
//! The network sees each connection as the modem asked for it (host and port as typed; the
//! [`super::Network`] routing of the pty edge does not apply) and answers with plain calls:
//! accept, refuse or never answer a connect; take the bytes the modem sends; hand back the
//! bytes its side has for the modem, and say when its side closed. A sans-IO MQTT broker core
//! (`Broker::connect(id)`, `handle_bytes(id, &[u8])`, `poll_output(id)`, `disconnect(id)`)
//! plugs in with a few lines:
//!
//! ```text
//! impl MemoryNetwork for BrokerNet {
//!     fn connect(&mut self, id: ConnId, _host: &str, _port: u16) -> Connect {
//!         self.broker.connect(id);
//!         Connect::Accept
//!     }
//!     fn send(&mut self, id: ConnId, data: &[u8]) { self.broker.handle_bytes(id, data); }
//!     fn poll(&mut self, id: ConnId) -> PeerOutput {
//!         PeerOutput { data: self.broker.poll_output(id), closed: self.broker.is_closed(id) }
//!     }
//!     fn close(&mut self, id: ConnId) { self.broker.disconnect(id); }
//! }
//! ```
//!
//! Event order follows the TCP edge: the modem learns that its bytes left ([`NetEvent::Sent`])
//! before it sees the peer's answer to them. An optional one-way delay
//! ([`Bench::with_delay`]) holds every network event back by that much virtual time.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::config::EmulatorConfig;
use super::fault::Fault;
use super::modem::{ConnId, Modem, NetEvent, NetRequest};
use crate::util::time::later;

/// How the network answers a connection request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// The peer accepts: the modem gets `CONNECT OK` (after its `connect` latency).
    Accept,
    /// The peer refuses (a TCP reset): `CONNECT FAIL` after the `connect_fail` latency.
    Refuse,
    /// Nobody answers: `CONNECT FAIL` when the module's own connect timer runs out
    /// (75 s in the `nbiot` profile, at once in the `zero` profile).
    Unreachable,
}

/// What the far side of one connection has for the modem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerOutput {
    /// Bytes for the modem (may be empty).
    pub data: Vec<u8>,
    /// The far side closed the connection (after `data`).
    pub closed: bool,
}

/// A network served in memory: the far ends of the modem's TCP connections.
///
/// Connection ids come from the modem and are never reused by it; every modem counts from 1,
/// so a network shared by several benches (one broker, many modems) tells them apart in
/// its adapter (one adapter per bench, mapping ids). Calls for one id come in the order
/// connect → (send | poll)* → close; `close` is not called after `poll` reported `closed`.
pub trait MemoryNetwork {
    /// The modem asks for a connection to `host:port` (as given to the modem).
    fn connect(&mut self, id: ConnId, host: &str, port: u16) -> Connect;
    /// Bytes the modem sends on accepted connection `id`.
    fn send(&mut self, id: ConnId, data: &[u8]);
    /// What the far side of `id` has for the modem now.
    fn poll(&mut self, id: ConnId) -> PeerOutput;
    /// The modem closed `id`.
    fn close(&mut self, id: ConnId);
    /// Virtual time moved to `now` (for the network's own timers). Default: nothing.
    fn advance(&mut self, _now: Instant) {}
    /// When the network next wants [`MemoryNetwork::advance`]. Default: never.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

/// Bounds the work of one instant, in case a network keeps producing events forever.
const MAX_ROUNDS: usize = 100_000;

/// A [`Modem`] and a [`MemoryNetwork`] under a virtual clock (see the module documentation).
pub struct Bench<N: MemoryNetwork> {
    modem: Modem,
    net: N,
    now: Instant,
    delay: Duration,
    /// Connections the network accepted and nobody closed yet.
    open: BTreeSet<ConnId>,
    /// Network events waiting for their delivery time, in order of (due, sequence).
    pending: Vec<(Instant, u64, NetEvent)>,
    seq: u64,
    out: Vec<u8>,
    notes: Vec<String>,
}

impl<N: MemoryNetwork> std::fmt::Debug for Bench<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bench")
            .field("open", &self.open)
            .field("pending", &self.pending.len())
            .field("unread", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl<N: MemoryNetwork> Bench<N> {
    /// Power the module on at virtual time `start`, its connections served by `net`.
    pub fn new(config: EmulatorConfig, net: N, start: Instant) -> Bench<N> {
        let mut b = Bench {
            modem: Modem::new(config, start),
            net,
            now: start,
            delay: Duration::ZERO,
            open: BTreeSet::new(),
            pending: Vec::new(),
            seq: 0,
            out: Vec::new(),
            notes: Vec::new(),
        };
        b.settle();
        b
    }

    /// Hold every network event (connect answers, `Sent`, data, close) back by `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Bench<N> {
        self.delay = delay;
        self
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Bytes typed by the host, at the current virtual time.
    pub fn write(&mut self, bytes: &[u8]) {
        self.modem.feed(bytes, self.now);
        self.settle();
    }

    /// Move time on by `d`, stopping at every deadline in between (timers, dripping output,
    /// delayed network events) so that everything happens at its own instant.
    pub fn advance(&mut self, d: Duration) {
        let to = later(self.now, d);
        self.advance_to(to);
    }

    /// Move time on to `to` (time stays when `to` is not later than now; what the network
    /// produced meanwhile is delivered either way).
    pub fn advance_to(&mut self, to: Instant) {
        self.settle();
        while let Some(t) = self.next_deadline().filter(|t| *t <= to) {
            self.now = t;
            self.settle();
        }
        if to > self.now {
            self.now = to;
            self.settle();
        }
    }

    /// When something next happens by itself (`None`: only input will change anything).
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.modem.next_deadline(),
            self.pending.iter().map(|(t, _, _)| *t).min(),
            self.net.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > self.now)
        .min()
    }

    /// Everything the module printed since the last call.
    pub fn read(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The module's notes (network activity, faults) since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Inject a fault now.
    pub fn inject(&mut self, fault: Fault) {
        self.modem.inject(fault, self.now);
        self.settle();
    }

    /// The modem.
    pub fn modem(&self) -> &Modem {
        &self.modem
    }

    /// The network.
    pub fn network(&self) -> &N {
        &self.net
    }

    /// The network, to change it between steps (e.g. publish from another client).
    /// Call [`Bench::advance`] (even by zero) afterwards to deliver what it produced.
    pub fn network_mut(&mut self) -> &mut N {
        &mut self.net
    }

    /// Connections open between the modem and the network.
    pub fn open_connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.open.iter().copied()
    }

    /// Run everything due at the current instant until nothing changes.
    fn settle(&mut self) {
        let now = self.now;
        self.net.advance(now);
        for _ in 0..MAX_ROUNDS {
            self.modem.poll(now);
            self.out.extend(self.modem.take_output(now));
            self.notes.extend(self.modem.take_notes());
            let mut busy = false;
            for req in self.modem.take_net_requests() {
                busy = true;
                self.request(req);
            }
            let ids: Vec<ConnId> = self.open.iter().copied().collect();
            for id in ids {
                let p = self.net.poll(id);
                if !p.data.is_empty() {
                    self.schedule(NetEvent::Received { id, data: p.data });
                }
                if p.closed {
                    self.open.remove(&id);
                    self.schedule(NetEvent::Closed { id });
                }
            }
            while let Some(ev) = self.take_due() {
                busy = true;
                self.modem.handle_net(ev, now);
            }
            if !busy {
                return;
            }
        }
        self.notes
            .push("memory bench: the network kept producing events; stopped this instant".into());
    }

    fn request(&mut self, req: NetRequest) {
        match req {
            NetRequest::Connect { id, host, port } => match self.net.connect(id, &host, port) {
                Connect::Accept => {
                    self.open.insert(id);
                    let ip = host
                        .parse::<IpAddr>()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
                    self.schedule(NetEvent::Connected {
                        id,
                        peer: SocketAddr::new(ip, port),
                    });
                }
                Connect::Refuse => self.schedule(NetEvent::ConnectFailed {
                    id,
                    reason: format!("{host}:{port} refused the connection"),
                    refused: true,
                }),
                Connect::Unreachable => self.schedule(NetEvent::ConnectFailed {
                    id,
                    reason: format!("{host}:{port} does not answer"),
                    refused: false,
                }),
            },
            NetRequest::Send { id, data } => {
                if self.open.contains(&id) {
                    self.net.send(id, &data);
                    self.schedule(NetEvent::Sent {
                        id,
                        len: data.len(),
                    });
                } else {
                    self.schedule(NetEvent::SendFailed {
                        id,
                        reason: format!("connection #{id} is closed"),
                    });
                }
            }
            NetRequest::Close { id } => {
                if self.open.remove(&id) {
                    self.net.close(id);
                }
            }
        }
    }

    fn schedule(&mut self, ev: NetEvent) {
        self.seq += 1;
        self.pending
            .push((later(self.now, self.delay), self.seq, ev));
    }

    fn take_due(&mut self) -> Option<NetEvent> {
        let i = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, (t, _, _))| *t <= self.now)
            .min_by_key(|(_, (t, s, _))| (*t, *s))
            .map(|(i, _)| i)?;
        Some(self.pending.remove(i).2)
    }
}

#[cfg(test)]
mod tests;
