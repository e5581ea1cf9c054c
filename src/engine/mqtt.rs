//! The MQTT session seen through the modem, sans-IO: reassembles broker bytes (from any
//! receive mode, whatever the read boundaries) into packets, answers what the protocol
//! requires (PUBACK, PUBREC/PUBREL/PUBCOMP, PINGREQ on keep-alive), and keeps the packets a
//! recipe waits for.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::mqtt::{
    Packet, PacketType, Protocol, PubAck, PubComp, PubRec, PubRel, QoS, StreamDecoder,
};

/// Most packets kept unconsumed (older ones are dropped first).
pub const INBOX_LIMIT: usize = 1024;

/// An incoming application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS (0–2).
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
}

/// How received TCP data reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RxMode {
    /// Pushed as it arrives (`AT+CIPRXGET=0`), with or without a `+IPD` header.
    #[default]
    Push,
    /// Kept by the modem until read with `AT+CIPRXGET=2` (`AT+CIPRXGET=1`).
    Manual,
}

/// MQTT state of the connection.
#[derive(Debug)]
pub struct MqttLink {
    incoming: StreamDecoder,
    outgoing: StreamDecoder,
    outgoing_broken: bool,
    protocol: Protocol,
    inbox: VecDeque<Packet>,
    replies: VecDeque<Packet>,
    inbound_qos2: BTreeSet<u16>,
    keep_alive: Option<Duration>,
    last_tx: Option<Instant>,
    ping_sent: Option<Instant>,
    error: Option<String>,
    /// TCP connection is up (between `CONNECT OK` and `CLOSED`/close/shut).
    pub connected: bool,
    /// Manual receive: the modem says data is waiting.
    pub rx_waiting: bool,
    /// Receive mode in force.
    pub rx_mode: RxMode,
    /// `+IPD,<len>:` headers on pushed data (`AT+CIPHEAD=1`).
    pub header: bool,
    /// Messages received so far.
    pub messages: u64,
    /// Messages already counted by finished message waits.
    pub consumed: u64,
}

impl Default for MqttLink {
    fn default() -> Self {
        Self::new()
    }
}

/// Largest packet accepted from the broker (as the embedded broker's limit).
pub const MAX_PACKET: usize = 16 << 20;

fn decoder(protocol: Protocol) -> StreamDecoder {
    StreamDecoder::new(protocol).with_max_packet_size(MAX_PACKET)
}

impl MqttLink {
    /// A link with no connection.
    pub fn new() -> MqttLink {
        MqttLink {
            incoming: decoder(Protocol::V311),
            outgoing: decoder(Protocol::V311),
            outgoing_broken: false,
            protocol: Protocol::V311,
            inbox: VecDeque::new(),
            replies: VecDeque::new(),
            inbound_qos2: BTreeSet::new(),
            keep_alive: None,
            last_tx: None,
            ping_sent: None,
            error: None,
            connected: false,
            rx_waiting: false,
            rx_mode: RxMode::Push,
            header: false,
            messages: 0,
            consumed: 0,
        }
    }

    /// A new TCP connection: forget the previous session's bytes and state.
    pub fn reset_connection(&mut self, connected: bool) {
        let (mode, header) = (self.rx_mode, self.header);
        *self = MqttLink::new();
        self.rx_mode = mode;
        self.header = header;
        self.connected = connected;
    }

    /// The protocol version in use (learned from our CONNECT).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Keep-alive interval (learned from our CONNECT), if any.
    pub fn keep_alive(&self) -> Option<Duration> {
        self.keep_alive
    }

    /// A decoding error on the incoming stream, if one happened.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Bytes from the broker. Returns the application messages they completed.
    pub fn on_data(&mut self, bytes: &[u8]) -> Vec<Message> {
        if self.error.is_some() {
            return Vec::new();
        }
        self.incoming.push(bytes);
        let mut out = Vec::new();
        loop {
            match self.incoming.next_packet() {
                Ok(Some(p)) => {
                    if let Some(m) = self.on_packet(p) {
                        out.push(m);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.error = Some(format!("the broker's bytes do not decode as MQTT: {e}"));
                    break;
                }
            }
        }
        out
    }

    fn on_packet(&mut self, p: Packet) -> Option<Message> {
        let mut message = None;
        match &p {
            Packet::Publish(publish) => {
                self.messages += 1;
                match (publish.qos, publish.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => {
                        self.replies.push_back(Packet::PubAck(PubAck::new(id)));
                    }
                    (QoS::ExactlyOnce, Some(id)) => {
                        self.inbound_qos2.insert(id);
                        self.replies.push_back(Packet::PubRec(PubRec::new(id)));
                    }
                    _ => {}
                }
                message = Some(Message {
                    topic: publish.topic.clone(),
                    payload: publish.payload.clone(),
                    qos: publish.qos as u8,
                    retain: publish.retain,
                });
            }
            Packet::PubRel(r) => {
                self.inbound_qos2.remove(&r.packet_id);
                self.replies
                    .push_back(Packet::PubComp(PubComp::new(r.packet_id)));
            }
            Packet::PubRec(r) => {
                // Our QoS 2 publish was received: release it.
                self.replies
                    .push_back(Packet::PubRel(PubRel::new(r.packet_id)));
            }
            Packet::PingResp => self.ping_sent = None,
            _ => {}
        }
        // Messages are handed out as events and counted; only other packets are kept.
        if !matches!(p, Packet::Publish(_)) {
            if self.inbox.len() >= INBOX_LIMIT {
                self.inbox.pop_front();
            }
            self.inbox.push_back(p);
        }
        message
    }

    /// Bytes we sent through the modem: learn the protocol and keep-alive from our CONNECT.
    pub fn on_sent(&mut self, bytes: &[u8], now: Instant) {
        self.last_tx = Some(now);
        if self.outgoing_broken {
            return;
        }
        self.outgoing.push(bytes);
        loop {
            match self.outgoing.next_packet() {
                Ok(Some(Packet::Connect(c))) => {
                    self.protocol = c.protocol;
                    self.incoming.set_protocol(c.protocol);
                    self.keep_alive =
                        (c.keep_alive > 0).then(|| Duration::from_secs(u64::from(c.keep_alive)));
                }
                Ok(Some(Packet::PingReq)) => {
                    self.ping_sent.get_or_insert(now);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    // Not MQTT (a raw TCP recipe): stop looking.
                    self.outgoing_broken = true;
                    break;
                }
            }
        }
    }

    /// Encoded replies the protocol requires, if any (taken).
    pub fn take_replies(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(p) = self.replies.pop_front() {
            match p.encode(self.protocol) {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => {
                    self.error = Some(format!("cannot encode {}: {e}", p.packet_type().name()));
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Queue a PINGREQ when the keep-alive interval has passed since the last send.
    /// `Err` when an earlier PINGREQ went unanswered for a whole interval.
    pub fn keep_alive_due(
        &mut self,
        now: Instant,
        interval: Option<Duration>,
    ) -> Result<Option<Instant>, String> {
        let Some(interval) = interval.or(self.keep_alive) else {
            return Ok(None);
        };
        if let Some(sent) = self.ping_sent {
            let deadline = crate::util::time::later(sent, interval);
            if now >= deadline {
                return Err(format!(
                    "the broker did not answer PINGREQ within {}: the connection is dead",
                    humantime::format_duration(interval)
                ));
            }
            return Ok(Some(deadline));
        }
        let due = self
            .last_tx
            .map_or(now, |t| crate::util::time::later(t, interval));
        if now >= due {
            self.replies.push_back(Packet::PingReq);
            return Ok(None);
        }
        Ok(Some(due))
    }

    /// True while an incoming QoS 2 message waits for the broker's PUBREL (our PUBCOMP is
    /// owed once it comes).
    pub fn qos2_in_flight(&self) -> bool {
        !self.inbound_qos2.is_empty()
    }

    /// True when replies are waiting to be sent.
    pub fn has_replies(&self) -> bool {
        !self.replies.is_empty()
    }

    /// Take the first kept packet of type `want` (and packet id, if given).
    pub fn take(&mut self, want: PacketType, packet_id: Option<u16>) -> Option<Packet> {
        let pos = self.inbox.iter().position(|p| {
            p.packet_type() == want && packet_id.is_none_or(|id| packet_id_of(p) == Some(id))
        })?;
        self.inbox.remove(pos)
    }
}

/// The packet id of acknowledgements and publishes.
pub fn packet_id_of(p: &Packet) -> Option<u16> {
    match p {
        Packet::Publish(x) => x.packet_id,
        Packet::PubAck(x) => Some(x.packet_id),
        Packet::PubRec(x) => Some(x.packet_id),
        Packet::PubRel(x) => Some(x.packet_id),
        Packet::PubComp(x) => Some(x.packet_id),
        Packet::SubAck(x) => Some(x.packet_id),
        Packet::UnsubAck(x) => Some(x.packet_id),
        Packet::Subscribe(x) => Some(x.packet_id),
        Packet::Unsubscribe(x) => Some(x.packet_id),
        _ => None,
    }
}

/// Check an awaited packet: `Err` names why the broker refused.
pub fn check_result(p: &Packet, protocol: Protocol) -> Result<(), String> {
    match p {
        Packet::ConnAck(c) if !c.is_success() => Err(format!(
            "the broker refused the connection: {} (CONNACK code 0x{:02X})",
            c.reason_text(protocol),
            c.code
        )),
        Packet::SubAck(s) if !s.is_success() => {
            let texts = s.reason_texts(protocol);
            let refused: Vec<String> = s
                .codes
                .iter()
                .enumerate()
                .filter(|(_, c)| crate::mqtt::SubAck::is_failure_code(**c))
                .map(|(i, c)| {
                    format!(
                        "filter {} refused: {} (0x{c:02X})",
                        i + 1,
                        texts.get(i).cloned().unwrap_or_default()
                    )
                })
                .collect();
            Err(format!("SUBACK: {}", refused.join("; ")))
        }
        Packet::PubAck(a) if a.code >= 0x80 => Err(format!(
            "PUBACK for packet {} refused the message (reason 0x{:02X})",
            a.packet_id, a.code
        )),
        Packet::PubRec(a) if a.code >= 0x80 => Err(format!(
            "PUBREC for packet {} refused the message (reason 0x{:02X})",
            a.packet_id, a.code
        )),
        Packet::PubComp(a) if a.code >= 0x80 => Err(format!(
            "PUBCOMP for packet {} reports an error (reason 0x{:02X})",
            a.packet_id, a.code
        )),
        Packet::UnsubAck(a) if a.codes.iter().any(|c| *c >= 0x80) => Err(format!(
            "UNSUBACK for packet {} refused a filter (codes {:02X?})",
            a.packet_id, a.codes
        )),
        Packet::Disconnect(d) => Err(format!(
            "the broker disconnected: {}",
            d.reason_text(protocol)
        )),
        _ => Ok(()),
    }
}

/// Parse a packet type name as written in recipes (`connack`, `suback`, `publish`…).
pub fn parse_packet_type(name: &str) -> Option<PacketType> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "connack" => PacketType::ConnAck,
        "publish" => PacketType::Publish,
        "puback" => PacketType::PubAck,
        "pubrec" => PacketType::PubRec,
        "pubrel" => PacketType::PubRel,
        "pubcomp" => PacketType::PubComp,
        "suback" => PacketType::SubAck,
        "unsuback" => PacketType::UnsubAck,
        "pingresp" => PacketType::PingResp,
        "disconnect" => PacketType::Disconnect,
        "auth" => PacketType::Auth,
        _ => return None,
    })
}
