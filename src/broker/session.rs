//! What the broker keeps for one client id: its subscriptions, the QoS 1/2 messages in flight
//! to it (with their packet ids), the messages queued for it, and the QoS 2 packet ids it is
//! sending to us (so a re-sent PUBLISH is not routed twice).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::mqtt::{Properties, QoS};

use super::ConnId;

/// Most QoS 1/2 messages in flight to one client at a time (further ones wait in the queue);
/// an MQTT 5.0 client's smaller Receive Maximum wins.
pub(super) const MAX_INFLIGHT: usize = 64;

/// Most messages queued for one client (offline, or with its in-flight window full); newer
/// ones are dropped, as mosquitto's `max_queued_messages` does.
pub(super) const MAX_QUEUED: usize = 1000;

/// An application message being routed: a client's PUBLISH, a will, or a retained message.
#[derive(Debug)]
pub(super) struct Message {
    /// Topic name.
    pub topic: String,
    /// Payload, shared by every delivery.
    pub payload: Arc<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
    /// RETAIN flag it was published with.
    pub retain: bool,
    /// MQTT 5.0 properties forwarded to 5.0 subscribers (no topic alias, no subscription id).
    pub properties: Properties,
}

/// One message on its way to one client.
#[derive(Debug, Clone)]
pub(super) struct Delivery {
    /// The message.
    pub msg: Arc<Message>,
    /// QoS of this delivery: min(published, subscribed).
    pub qos: QoS,
    /// RETAIN flag of this delivery.
    pub retain: bool,
    /// MQTT 5.0 subscription identifiers of the matching subscriptions.
    pub sub_ids: Vec<u32>,
}

/// A message in flight to the client, by packet id.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published(Delivery),
    /// PUBREL sent; waiting for PUBCOMP.
    Released,
}

/// Options of one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SubOptions {
    /// Maximum QoS granted.
    pub qos: QoS,
    /// 5.0: not to the connection that published.
    pub no_local: bool,
    /// 5.0: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// 5.0: subscription identifier.
    pub id: Option<u32>,
}

/// How the client the session belongs to is connected, while it is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    /// The connection.
    pub conn: ConnId,
    /// Its protocol version.
    pub protocol: crate::mqtt::Protocol,
    /// Most QoS 1/2 messages in flight at once.
    pub receive_max: usize,
    /// Largest packet the client accepts (5.0 Maximum Packet Size), in bytes.
    pub max_packet: usize,
}

/// The state of one client id.
#[derive(Debug, Default)]
pub(super) struct Session {
    /// Topic filter → options.
    pub subscriptions: BTreeMap<String, SubOptions>,
    /// Packet id → message in flight to the client.
    pub inflight: BTreeMap<u16, Outgoing>,
    /// Waiting for an in-flight slot or for the client to come back.
    pub queue: VecDeque<Delivery>,
    /// QoS 2 packet ids received (PUBREC sent), waiting for PUBREL.
    pub incoming_qos2: HashSet<u16>,
    /// The connection, while the client is connected.
    pub link: Option<Link>,
    /// Whether the session outlives its connection (3.x clean session 0, 5.0 expiry > 0).
    pub persistent: bool,
    /// 5.0 Session Expiry Interval in seconds (`u32::MAX`: never).
    pub expiry_secs: u32,
    /// When an offline 5.0 session ends.
    pub expires_at: Option<Instant>,
    next_id: u16,
}

impl Session {
    /// A fresh packet id not in flight (`None` when all 65,535 are).
    pub(super) fn next_packet_id(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&self.next_id) {
                return Some(self.next_id);
            }
        }
        None
    }

    /// True when another QoS 1/2 message may be sent now.
    pub(super) fn has_window(&self) -> bool {
        let max = self.link.map_or(0, |l| l.receive_max);
        self.inflight.len() < max.min(MAX_INFLIGHT)
    }

    /// Queue a delivery for later; `false` when the queue is full (the delivery is dropped).
    pub(super) fn enqueue(&mut self, d: Delivery) -> bool {
        if self.queue.len() >= MAX_QUEUED {
            return false;
        }
        self.queue.push_back(d);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_skip_ids_in_flight_and_wrap() {
        let mut s = Session::default();
        assert_eq!(s.next_packet_id(), Some(1));
        s.inflight.insert(2, Outgoing::Released);
        assert_eq!(s.next_packet_id(), Some(3));
        s.next_id = u16::MAX - 1;
        assert_eq!(s.next_packet_id(), Some(u16::MAX));
        assert_eq!(s.next_packet_id(), Some(1));
    }
}
