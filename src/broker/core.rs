//! The sans-IO broker core: connections, CONNECT, keep-alive, wills, and the packet dispatch.
//!
//! The core never touches a socket, a thread or the clock. An edge (the TCP listener in
//! `tcp.rs`, or an in-memory harness) tells it that a connection opened
//! ([`Broker::connect`]), hands it the bytes the client sent ([`Broker::handle_bytes`]), takes
//! the bytes to send back ([`Broker::poll_output`]), closes the connection once
//! [`Broker::wants_close`] says so, reports a closed connection ([`Broker::disconnect`]), and
//! calls [`Broker::poll`] by the deadline it returns (keep-alive and session expiry). Every
//! call that needs the time takes it as `now`.
//!
//! Routing (PUBLISH, SUBSCRIBE, the QoS flows, retained messages) is in `route.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mqtt::{
    ConnAck, Connect, DecodeError, DecodeErrorKind, Disconnect, LastWill, Packet, Protocol,
    StreamDecoder,
};

use super::ReceivedMessage;
use super::session::{Link, MAX_INFLIGHT, Message, Session};

/// Identifies one connection to the core; the edge chooses it (unique while it is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A user name and password the broker demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Vec<u8>,
}

/// Settings of a [`Broker`].
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `None` (the default): any client may connect, with any user name and password or none.
    /// `Some`: only these; others get CONNACK "bad user name or password" (3.x code 4, 5.0
    /// 0x86) when they sent credentials, "not authorized" (5 / 0x87) when they sent none.
    pub credentials: Option<Credentials>,
    /// Largest packet a client may send, fixed header included; larger ones close the
    /// connection. Default: room for a 16 MiB payload.
    pub max_packet_size: usize,
    /// How long a connection may stay open without sending CONNECT. Default 30 s.
    pub connect_timeout: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            credentials: None,
            max_packet_size: MAX_PAYLOAD + 128 * 1024,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Largest payload the default configuration accepts: 16 MiB.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// Topic aliases an MQTT 5.0 client may use towards the broker.
pub(super) const TOPIC_ALIAS_MAX: u16 = 16;

/// Output held for one connection beyond which QoS 0 deliveries to it are dropped.
pub(super) const MAX_OUTBOX: usize = 64 << 20;

/// What a connected client told us in its CONNECT.
#[derive(Debug)]
pub(super) struct Client {
    pub client_id: String,
    pub protocol: Protocol,
    keep_alive: u16,
    will: Option<LastWill>,
    /// 5.0 topic aliases the client set: alias → topic.
    pub aliases: HashMap<u16, String>,
}

#[derive(Debug)]
pub(super) enum Phase {
    /// Waiting for CONNECT.
    AwaitConnect,
    /// CONNECT accepted.
    Connected(Box<Client>),
    /// Ended: output is flushed, then the edge closes the connection.
    Closed,
}

/// One connection.
#[derive(Debug)]
pub(super) struct Conn {
    decoder: StreamDecoder,
    pub out: Vec<u8>,
    /// The first bytes before CONNECT was accepted: enough to read the protocol level of a
    /// CONNECT the decoder refused, to answer it in the right version.
    early: Vec<u8>,
    opened: Instant,
    last_seen: Instant,
    pub phase: Phase,
}

/// The connections and which of them have new output (or want to be closed).
#[derive(Debug, Default)]
pub(super) struct Conns {
    pub map: HashMap<ConnId, Conn>,
    woken: BTreeSet<ConnId>,
}

impl Conns {
    /// Queue bytes for `id`.
    pub(super) fn write(&mut self, id: ConnId, bytes: &[u8]) {
        if let Some(c) = self.map.get_mut(&id) {
            c.out.extend_from_slice(bytes);
            self.woken.insert(id);
        }
    }

    /// Encode `p` in `protocol` and queue it for `id` (a packet that does not encode is
    /// dropped: the core builds only valid ones).
    pub(super) fn send(&mut self, id: ConnId, protocol: Protocol, p: &Packet) {
        if let Ok(bytes) = p.encode(protocol) {
            self.write(id, &bytes);
        }
    }

    /// Bytes waiting for `id`.
    pub(super) fn pending(&self, id: ConnId) -> usize {
        self.map.get(&id).map_or(0, |c| c.out.len())
    }
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// DISCONNECT with reason 0: the will is discarded.
    Normal,
    /// The network went away, keep-alive expired, a protocol error, a takeover, or a 5.0
    /// DISCONNECT with a non-zero reason: the will is published. With `Some(code)` a 5.0
    /// client is first sent a DISCONNECT with that reason code.
    Abnormal(Option<u8>),
}

/// The broker: sessions by client id, retained messages, and the record of every PUBLISH
/// received. See the module documentation for how an edge drives it.
#[derive(Debug)]
pub struct Broker {
    pub(super) config: BrokerConfig,
    pub(super) conns: Conns,
    pub(super) sessions: HashMap<String, Session>,
    pub(super) retained: BTreeMap<String, Arc<Message>>,
    pub(super) received: Vec<ReceivedMessage>,
    assigned: u64,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new(BrokerConfig::default())
    }
}

impl Broker {
    /// A broker with no connections.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            config,
            conns: Conns::default(),
            sessions: HashMap::new(),
            retained: BTreeMap::new(),
            received: Vec::new(),
            assigned: 0,
        }
    }

    /// A connection opened. Its first packet must be CONNECT, within the connect timeout.
    pub fn connect(&mut self, id: ConnId, now: Instant) {
        let decoder =
            StreamDecoder::new(Protocol::V311).with_max_packet_size(self.config.max_packet_size);
        self.conns.map.insert(
            id,
            Conn {
                decoder,
                out: Vec::new(),
                early: Vec::new(),
                opened: now,
                last_seen: now,
                phase: Phase::AwaitConnect,
            },
        );
    }

    /// Bytes the client sent (in any pieces). Unknown or closing connections are ignored.
    pub fn handle_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(c) = self.conns.map.get_mut(&id) else {
            return;
        };
        if matches!(c.phase, Phase::Closed) {
            return;
        }
        // Any byte counts as activity: a large PUBLISH can take longer than the keep-alive
        // to trickle in over a cellular link.
        c.last_seen = now;
        if matches!(c.phase, Phase::AwaitConnect) && c.early.len() < 16 {
            let take = bytes.len().min(16 - c.early.len());
            c.early.extend_from_slice(&bytes[..take]);
        }
        c.decoder.push(bytes);
        loop {
            let Some(c) = self.conns.map.get_mut(&id) else {
                return;
            };
            if matches!(c.phase, Phase::Closed) {
                return;
            }
            match c.decoder.next_packet() {
                Ok(Some(p)) => self.dispatch(id, p, now),
                Ok(None) => return,
                Err(e) => return self.malformed(id, &e, now),
            }
        }
    }

    /// The bytes to send to the client now (empty when there are none).
    pub fn poll_output(&mut self, id: ConnId) -> Vec<u8> {
        self.conns
            .map
            .get_mut(&id)
            .map(|c| std::mem::take(&mut c.out))
            .unwrap_or_default()
    }

    /// True when the edge should close the connection once [`poll_output`](Self::poll_output)
    /// returned everything (also for a connection the core does not know).
    pub fn wants_close(&self, id: ConnId) -> bool {
        self.conns
            .map
            .get(&id)
            .is_none_or(|c| matches!(c.phase, Phase::Closed))
    }

    /// Connections whose output or close state changed since the last call.
    pub fn take_woken(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.conns.woken).into_iter().collect()
    }

    /// The connection closed (by the client, the network or the edge). A client that had
    /// not sent DISCONNECT gets its will published.
    pub fn disconnect(&mut self, id: ConnId, now: Instant) {
        self.end(id, End::Abnormal(None), now);
        self.conns.map.remove(&id);
        self.conns.woken.remove(&id);
    }

    /// Enforce the time rules: CONNECT within the connect timeout, a packet within 1.5 times
    /// the keep-alive, offline 5.0 sessions ending at their expiry. Returns when to call
    /// again at the latest (`None`: nothing is timed).
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (id, c) in &self.conns.map {
            let deadline = match &c.phase {
                Phase::AwaitConnect => Some(c.opened + self.config.connect_timeout),
                Phase::Connected(cl) if cl.keep_alive > 0 => {
                    Some(c.last_seen + Duration::from_millis(u64::from(cl.keep_alive) * 1500))
                }
                _ => None,
            };
            match deadline {
                Some(d) if d <= now => expired.push(*id),
                Some(d) => next = Some(next.map_or(d, |n| n.min(d))),
                None => {}
            }
        }
        for id in expired {
            // 0x8D: Keep Alive timeout (only sent to a connected 5.0 client).
            self.end(id, End::Abnormal(Some(0x8D)), now);
        }
        self.sessions.retain(|_, s| match s.expires_at {
            Some(t) if s.link.is_none() => t > now,
            _ => true,
        });
        for t in self.sessions.values().filter_map(|s| s.expires_at) {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        next
    }

    /// Every PUBLISH received from clients so far, in arrival order, with the QoS and RETAIN
    /// flag the client sent.
    pub fn received(&self) -> &[ReceivedMessage] {
        &self.received
    }

    /// Open connections (connected or not yet).
    pub fn connection_count(&self) -> usize {
        self.conns.map.len()
    }

    /// The client id and protocol of a connected client.
    pub(super) fn client(&self, id: ConnId) -> Option<(String, Protocol)> {
        match &self.conns.map.get(&id)?.phase {
            Phase::Connected(c) => Some((c.client_id.clone(), c.protocol)),
            _ => None,
        }
    }

    fn dispatch(&mut self, id: ConnId, p: Packet, now: Instant) {
        let Some((client_id, protocol)) = self.client(id) else {
            match p {
                Packet::Connect(c) => self.on_connect(id, c, now),
                // The first packet must be CONNECT.
                _ => self.end(id, End::Abnormal(None), now),
            }
            return;
        };
        // 0x82: Protocol Error.
        let protocol_error = End::Abnormal(Some(0x82));
        match p {
            Packet::Publish(pk) => self.on_publish(id, &client_id, protocol, pk, now),
            Packet::PubAck(a) => self.on_puback(&client_id, a.packet_id),
            Packet::PubRec(r) => self.on_pubrec(id, &client_id, protocol, r),
            Packet::PubRel(r) => self.on_pubrel(id, &client_id, protocol, r.packet_id),
            Packet::PubComp(c) => self.on_pubcomp(&client_id, c.packet_id),
            Packet::Subscribe(s) => self.on_subscribe(id, &client_id, protocol, s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(id, &client_id, protocol, u),
            Packet::PingReq => self.conns.send(id, protocol, &Packet::PingResp),
            Packet::Disconnect(d) => self.on_disconnect(id, &client_id, &d, now),
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp
            | Packet::Auth(_) => self.end(id, protocol_error, now),
        }
    }

    fn malformed(&mut self, id: ConnId, e: &DecodeError, now: Instant) {
        if self.client(id).is_some() {
            // 0x95 Packet too large, 0x81 Malformed Packet.
            let code = match e.kind() {
                DecodeErrorKind::PacketTooLarge => 0x95,
                DecodeErrorKind::Malformed => 0x81,
            };
            return self.end(id, End::Abnormal(Some(code)), now);
        }
        // A CONNECT we cannot accept: answer what the spec asks for, then close.
        let level = self
            .conns
            .map
            .get(&id)
            .and_then(|c| connect_level(&c.early));
        let field = e.field();
        let refusal = match level {
            Some(l) if field.ends_with("protocol level") && !(3..=5).contains(&l) => {
                Some((Protocol::V311, 0x01))
            }
            Some(5) if field.ends_with("client id") => Some((Protocol::V5, 0x85)),
            Some(3) if field.ends_with("client id") => Some((Protocol::V31, 0x02)),
            Some(4) if field.ends_with("client id") => Some((Protocol::V311, 0x02)),
            _ => None,
        };
        if let Some((protocol, code)) = refusal {
            self.conns
                .send(id, protocol, &Packet::ConnAck(ConnAck::new(code)));
        }
        self.end(id, End::Abnormal(None), now);
    }

    fn on_connect(&mut self, id: ConnId, c: Connect, now: Instant) {
        let protocol = c.protocol;
        let v5 = protocol == Protocol::V5;
        // What the spec tells a server to refuse (an empty 3.1 id, an empty 3.1.1 id without
        // a clean session) decodes with a `Refused` warning; ids that brokers tolerate (3.1
        // ids over 23 characters) are accepted, as mosquitto does.
        if let Some(code) = c.warnings().iter().find_map(|w| match w.kind() {
            crate::mqtt::WarningKind::Refused { code } => Some(code),
            crate::mqtt::WarningKind::Tolerated => None,
        }) {
            self.conns
                .send(id, protocol, &Packet::ConnAck(ConnAck::new(code)));
            return self.end(id, End::Abnormal(None), now);
        }
        if let Some(cred) = &self.config.credentials {
            let ok = c.username.as_deref() == Some(cred.username.as_str())
                && c.password.as_deref() == Some(cred.password.as_slice());
            if !ok {
                let none = c.username.is_none() && c.password.is_none();
                let code = match (v5, none) {
                    (false, false) => 0x04,
                    (false, true) => 0x05,
                    (true, false) => 0x86,
                    (true, true) => 0x87,
                };
                self.conns
                    .send(id, protocol, &Packet::ConnAck(ConnAck::new(code)));
                return self.end(id, End::Abnormal(None), now);
            }
        }
        let assigned = c.client_id.is_empty();
        let client_id = if assigned {
            self.assigned += 1;
            format!("sim7k-broker-{}", self.assigned)
        } else {
            c.client_id
        };
        // Session takeover: the older connection of this client id is closed (0x8E).
        if let Some(old) = self
            .sessions
            .get(&client_id)
            .and_then(|s| s.link)
            .map(|l| l.conn)
        {
            self.end(old, End::Abnormal(Some(0x8E)), now);
        }
        if c.clean_session {
            self.sessions.remove(&client_id);
        }
        let present = self.sessions.contains_key(&client_id);
        let expiry = c.properties.session_expiry_interval.unwrap_or(0);
        let session = self.sessions.entry(client_id.clone()).or_default();
        session.persistent = if v5 { expiry > 0 } else { !c.clean_session };
        session.expiry_secs = expiry;
        session.expires_at = None;
        session.link = Some(Link {
            conn: id,
            protocol,
            receive_max: c
                .properties
                .receive_maximum
                .map_or(MAX_INFLIGHT, usize::from),
            max_packet: c
                .properties
                .maximum_packet_size
                .and_then(|m| usize::try_from(m).ok())
                .unwrap_or(usize::MAX),
        });
        if let Some(conn) = self.conns.map.get_mut(&id) {
            conn.early = Vec::new();
            conn.phase = Phase::Connected(Box::new(Client {
                client_id: client_id.clone(),
                protocol,
                keep_alive: c.keep_alive,
                will: c.will,
                aliases: HashMap::new(),
            }));
        }
        let mut ack = ConnAck::new(0);
        ack.session_present = present && protocol != Protocol::V31;
        if v5 {
            let p = &mut ack.properties;
            p.assigned_client_identifier = assigned.then(|| client_id.clone());
            p.topic_alias_maximum = Some(TOPIC_ALIAS_MAX);
            p.shared_subscription_available = Some(false);
            p.maximum_packet_size = u32::try_from(self.config.max_packet_size).ok();
        }
        self.conns.send(id, protocol, &Packet::ConnAck(ack));
        if present {
            self.resume(&client_id);
        }
    }

    fn on_disconnect(&mut self, id: ConnId, client_id: &str, d: &Disconnect, now: Instant) {
        if let (Some(s), Some(e)) = (
            self.sessions.get_mut(client_id),
            d.properties.session_expiry_interval,
        ) {
            s.expiry_secs = e;
            s.persistent = e > 0;
        }
        // 5.0: any reason but 0 (0x04 "Disconnect with Will Message" among them) keeps the will.
        let end = if d.code == 0 {
            End::Normal
        } else {
            End::Abnormal(None)
        };
        self.end(id, end, now);
    }

    /// End a connection: detach its session (dropping a non-persistent one), publish its will
    /// unless it ended normally, and mark it to be closed once its output is flushed.
    pub(super) fn end(&mut self, id: ConnId, end: End, now: Instant) {
        let Some(conn) = self.conns.map.get_mut(&id) else {
            return;
        };
        let phase = std::mem::replace(&mut conn.phase, Phase::Closed);
        self.conns.woken.insert(id);
        let Phase::Connected(client) = phase else {
            return;
        };
        if let (End::Abnormal(Some(code)), Protocol::V5) = (end, client.protocol) {
            let d = Disconnect {
                code,
                ..Disconnect::default()
            };
            self.conns.send(id, Protocol::V5, &Packet::Disconnect(d));
        }
        if let Some(s) = self.sessions.get_mut(&client.client_id)
            && s.link.is_some_and(|l| l.conn == id)
        {
            s.link = None;
            if !s.persistent {
                self.sessions.remove(&client.client_id);
            } else if s.expiry_secs != u32::MAX && client.protocol == Protocol::V5 {
                s.expires_at = Some(now + Duration::from_secs(u64::from(s.expiry_secs)));
            }
        }
        if let (End::Abnormal(_), Some(w)) = (end, client.will) {
            self.publish_will(w);
        }
    }
}

/// The protocol level of a CONNECT from its first bytes (fixed header, protocol name, level).
fn connect_level(early: &[u8]) -> Option<u8> {
    if early.first()? >> 4 != 1 {
        return None;
    }
    // Skip the remaining length (1 to 4 bytes, the last without the continuation bit).
    let len_bytes = early.get(1..)?.iter().position(|b| b & 0x80 == 0)? + 1;
    let name_at = 1 + len_bytes;
    let name_len = u16::from_be_bytes([*early.get(name_at)?, *early.get(name_at + 1)?]);
    early.get(name_at + 2 + usize::from(name_len)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_level_reads_the_level_byte() {
        assert_eq!(
            connect_level(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 5]),
            Some(5)
        );
        assert_eq!(
            connect_level(&[0x10, 0x80, 1, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3]),
            Some(3)
        );
        assert_eq!(connect_level(&[0x10, 12, 0, 4, b'M']), None);
        assert_eq!(connect_level(&[0x30, 2, 0, 0]), None);
    }
}
