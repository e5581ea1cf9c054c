//! The MQTT session over the byte stream, sans-IO: reassembles the broker's bytes into
//! packets, answers what the protocol requires (PUBACK, PUBREC/PUBREL/PUBCOMP, PINGREQ on
//! keep-alive), and keeps the packets a recipe waits for. It is told the protocol version
//! and keep-alive by the plan ([`MqttParams`]); it never decodes our own outgoing bytes.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::engine::failure::MqttFailure;
use crate::engine::plan::MqttParams;
use crate::mqtt::{
    Packet, PacketType, Protocol, PubAck, PubComp, PubRec, PubRel, QoS, StreamDecoder,
};

/// Most packets kept unconsumed (older ones are dropped first).
pub const INBOX_LIMIT: usize = 1024;
/// Largest packet accepted from the broker (as the embedded broker's limit).
pub const MAX_PACKET: usize = 16 << 20;

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

fn decoder(protocol: Protocol) -> StreamDecoder {
    StreamDecoder::new(protocol).with_max_packet_size(MAX_PACKET)
}

/// The MQTT state of one connection.
#[derive(Debug)]
pub struct MqttSession {
    incoming: StreamDecoder,
    params: Option<MqttParams>,
    inbox: VecDeque<Packet>,
    replies: VecDeque<Packet>,
    inbound_qos2: BTreeSet<u16>,
    last_tx: Option<Instant>,
    ping_sent: Option<Instant>,
    error: Option<MqttFailure>,
    /// Messages received so far on this connection.
    pub messages: u64,
    /// Messages already counted by finished message waits.
    pub consumed: u64,
}

impl Default for MqttSession {
    fn default() -> Self {
        Self::new()
    }
}

impl MqttSession {
    /// No session: the broker's bytes decode as MQTT 3.1.1 until told otherwise.
    pub fn new() -> MqttSession {
        MqttSession {
            incoming: decoder(Protocol::V311),
            params: None,
            inbox: VecDeque::new(),
            replies: VecDeque::new(),
            inbound_qos2: BTreeSet::new(),
            last_tx: None,
            ping_sent: None,
            error: None,
            messages: 0,
            consumed: 0,
        }
    }

    /// Our CONNECT with these parameters was sent: the session is active (kept alive,
    /// read in the background).
    pub fn begin(&mut self, params: MqttParams, now: Instant) {
        self.params = Some(params);
        self.incoming.set_protocol(params.protocol);
        self.last_tx = Some(now);
        self.ping_sent = None;
    }

    /// True once a CONNECT was sent on this connection (and it was not lost).
    pub fn active(&self) -> bool {
        self.params.is_some() && self.error.is_none()
    }

    /// The protocol version in use.
    pub fn protocol(&self) -> Protocol {
        self.params.map_or(Protocol::V311, |p| p.protocol)
    }

    /// Keep-alive interval of the session, if any.
    pub fn keep_alive(&self) -> Option<Duration> {
        self.params.and_then(|p| p.keep_alive)
    }

    /// The failure that ended the session, if one did.
    pub fn error(&self) -> Option<&MqttFailure> {
        self.error.as_ref()
    }

    /// Record a failure of the session (the first one is kept).
    pub fn fail(&mut self, failure: MqttFailure) {
        self.error.get_or_insert(failure);
    }

    /// Bytes from the broker (plaintext). Returns the application messages they completed.
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
                    self.fail(MqttFailure::Garbled {
                        reason: format!("the broker's bytes do not decode as MQTT: {e}"),
                    });
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

    /// Bytes went out on the connection (anything counts for keep-alive).
    pub fn on_sent(&mut self, now: Instant) {
        self.last_tx = Some(now);
    }

    /// Encoded replies the protocol requires, if any (taken).
    pub fn take_replies(&mut self) -> Option<Vec<u8>> {
        let protocol = self.protocol();
        let mut out = Vec::new();
        while let Some(p) = self.replies.pop_front() {
            match p.encode(protocol) {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => self.fail(MqttFailure::Encode {
                    packet: p.packet_type().name(),
                    error: e.to_string(),
                }),
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// True when replies are waiting to be sent.
    pub fn has_replies(&self) -> bool {
        !self.replies.is_empty()
    }

    /// The keep-alive interval in force: `wait_override` (an MQTT wait's own) or the
    /// session's.
    pub fn interval(&self, wait_override: Option<Duration>) -> Option<Duration> {
        wait_override.or(self.keep_alive()).filter(|d| !d.is_zero())
    }

    /// When keep-alive next needs attention: the PINGREQ due time, or the instant the
    /// PINGRESP we wait for is late.
    pub fn keep_alive_at(&self, wait_override: Option<Duration>) -> Option<Instant> {
        if !self.active() {
            return None;
        }
        let interval = self.interval(wait_override)?;
        match self.ping_sent {
            Some(sent) => Some(crate::util::time::later(sent, interval)),
            None => self.last_tx.map(|t| crate::util::time::later(t, interval)),
        }
    }

    /// Queue a PINGREQ when the interval has passed since the last send; `Err` when the
    /// last PINGREQ went unanswered for a whole interval (the session is then lost).
    pub fn poll_keep_alive(
        &mut self,
        now: Instant,
        wait_override: Option<Duration>,
    ) -> Result<(), MqttFailure> {
        let Some(at) = self.keep_alive_at(wait_override) else {
            return Ok(());
        };
        if now < at {
            return Ok(());
        }
        if self.ping_sent.is_some() {
            let failure = MqttFailure::PingUnanswered {
                interval: self.interval(wait_override).unwrap_or_default(),
            };
            self.fail(failure.clone());
            return Err(failure);
        }
        self.replies.push_back(Packet::PingReq);
        self.ping_sent = Some(now);
        Ok(())
    }

    /// True while an incoming QoS 2 message waits for the broker's PUBREL (our PUBCOMP is
    /// owed once it comes).
    pub fn qos2_in_flight(&self) -> bool {
        !self.inbound_qos2.is_empty()
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
pub fn check_result(p: &Packet, protocol: Protocol) -> Result<(), MqttFailure> {
    let refused = |packet, code, reason| {
        Err(MqttFailure::Refused {
            packet,
            code,
            reason,
        })
    };
    match p {
        Packet::ConnAck(c) if !c.is_success() => {
            refused(PacketType::ConnAck, c.code, c.reason_text(protocol))
        }
        Packet::SubAck(s) if !s.is_success() => {
            let texts = s.reason_texts(protocol);
            let mut first = 0;
            let refused_filters: Vec<String> = s
                .codes
                .iter()
                .enumerate()
                .filter(|(_, c)| crate::mqtt::SubAck::is_failure_code(**c))
                .map(|(i, c)| {
                    if first == 0 {
                        first = *c;
                    }
                    format!(
                        "filter {} refused: {} (0x{c:02X})",
                        i + 1,
                        texts.get(i).cloned().unwrap_or_default()
                    )
                })
                .collect();
            refused(
                PacketType::SubAck,
                first,
                format!("SUBACK: {}", refused_filters.join("; ")),
            )
        }
        Packet::PubAck(a) if a.code >= 0x80 => refused(
            PacketType::PubAck,
            a.code,
            format!(
                "PUBACK for packet {} refused the message (reason 0x{:02X})",
                a.packet_id, a.code
            ),
        ),
        Packet::PubRec(a) if a.code >= 0x80 => refused(
            PacketType::PubRec,
            a.code,
            format!(
                "PUBREC for packet {} refused the message (reason 0x{:02X})",
                a.packet_id, a.code
            ),
        ),
        Packet::PubComp(a) if a.code >= 0x80 => refused(
            PacketType::PubComp,
            a.code,
            format!(
                "PUBCOMP for packet {} reports an error (reason 0x{:02X})",
                a.packet_id, a.code
            ),
        ),
        Packet::UnsubAck(a) if a.codes.iter().any(|c| *c >= 0x80) => refused(
            PacketType::UnsubAck,
            a.codes.iter().copied().find(|c| *c >= 0x80).unwrap_or(0x80),
            format!(
                "UNSUBACK for packet {} refused a filter (codes {:02X?})",
                a.packet_id, a.codes
            ),
        ),
        Packet::Disconnect(d) => Err(MqttFailure::Disconnected {
            reason: d.reason_text(protocol),
        }),
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
