//! Routing: a PUBLISH in (recorded, acknowledged, retained, forwarded), the QoS 1 and 2 flows
//! in both directions, SUBSCRIBE and UNSUBSCRIBE (with retained messages), and the queue of
//! an offline or busy client.

use std::sync::Arc;
use std::time::Instant;

use crate::mqtt::{
    LastWill, Packet, Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, RetainHandling,
    SubAck, Subscribe, UnsubAck, Unsubscribe,
};

use super::ReceivedMessage;
use super::core::{Broker, ConnId, Conns, End, MAX_OUTBOX, Phase, TOPIC_ALIAS_MAX};
use super::session::{Delivery, Message, Outgoing, Session, SubOptions};
use super::topic::matches;

impl Broker {
    pub(super) fn on_publish(
        &mut self,
        id: ConnId,
        client_id: &str,
        protocol: Protocol,
        mut p: Publish,
        now: Instant,
    ) {
        // 5.0 topic alias: a topic sets it, an empty topic uses it.
        if let Some(alias) = p.properties.topic_alias.take() {
            let Some(Phase::Connected(c)) = self.conns.map.get_mut(&id).map(|c| &mut c.phase)
            else {
                return;
            };
            if alias == 0 || alias > TOPIC_ALIAS_MAX {
                // 0x94: Topic Alias invalid.
                return self.end(id, End::Abnormal(Some(0x94)), now);
            }
            if p.topic.is_empty() {
                match c.aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => return self.end(id, End::Abnormal(Some(0x82)), now),
                }
            } else {
                c.aliases.insert(alias, p.topic.clone());
            }
        }
        if p.topic.is_empty() {
            return self.end(id, End::Abnormal(Some(0x82)), now);
        }
        let first = match (p.qos, p.packet_id) {
            (QoS::ExactlyOnce, Some(pid)) => self
                .sessions
                .get_mut(client_id)
                .is_some_and(|s| s.incoming_qos2.insert(pid)),
            _ => true,
        };
        // 5.0: PUBACK 0x10 "No matching subscribers", as mosquitto answers (its PUBREC
        // stays 0x00).
        let mut matched = true;
        if first {
            // One shared copy of the payload for the record and the routing.
            let payload: Arc<[u8]> = Arc::from(std::mem::take(&mut p.payload));
            self.received.push(ReceivedMessage {
                topic: p.topic.clone(),
                payload: payload.clone(),
                qos: p.qos as u8,
                retain: p.retain,
            });
            let mut properties = std::mem::take(&mut p.properties);
            properties.subscription_identifiers.clear();
            let msg = Message {
                topic: std::mem::take(&mut p.topic),
                payload,
                qos: p.qos,
                retain: p.retain,
                properties,
            };
            matched = self.publish(msg, Some(id));
        }
        let code = if protocol == Protocol::V5 && !matched {
            0x10
        } else {
            0x00
        };
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(packet_id)) => {
                let ack = PubAck {
                    packet_id,
                    code,
                    ..PubAck::default()
                };
                self.conns.send(id, protocol, &Packet::PubAck(ack))
            }
            (QoS::ExactlyOnce, Some(packet_id)) => {
                self.conns
                    .send(id, protocol, &Packet::PubRec(PubRec::new(packet_id)))
            }
            _ => {}
        }
    }

    /// Publish a client's will on its behalf.
    pub(super) fn publish_will(&mut self, w: LastWill) {
        let mut properties = w.properties;
        properties.will_delay_interval = None;
        let msg = Message {
            topic: w.topic,
            payload: Arc::from(w.payload),
            qos: w.qos,
            retain: w.retain,
            properties,
        };
        self.publish(msg, None);
    }

    /// Retain (or clear) `msg` if it asks to be, and forward it to every matching session.
    /// True when some subscription matched.
    fn publish(&mut self, msg: Message, from: Option<ConnId>) -> bool {
        let msg = Arc::new(msg);
        if msg.retain {
            if msg.payload.is_empty() {
                self.retained.remove(&msg.topic);
            } else {
                self.retained.insert(msg.topic.clone(), Arc::clone(&msg));
            }
        }
        let mut matched = false;
        for s in self.sessions.values_mut() {
            let mut best: Option<QoS> = None;
            let mut keep_retain = false;
            let mut sub_ids = Vec::new();
            for (filter, o) in &s.subscriptions {
                if !matches(filter, &msg.topic) {
                    continue;
                }
                if o.no_local && from.is_some() && s.link.map(|l| l.conn) == from {
                    continue;
                }
                best = best.max(Some(o.qos));
                keep_retain |= o.retain_as_published;
                sub_ids.extend(o.id);
            }
            if let Some(q) = best {
                matched = true;
                let d = Delivery {
                    qos: q.min(msg.qos),
                    retain: keep_retain && msg.retain,
                    sub_ids,
                    msg: Arc::clone(&msg),
                };
                deliver(s, &mut self.conns, d);
            }
        }
        matched
    }

    /// A client came back to its session: re-send what was in flight, then the queue.
    pub(super) fn resume(&mut self, client_id: &str) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let Some(link) = s.link else {
            return;
        };
        for (pid, o) in &s.inflight {
            match o {
                Outgoing::Published(d) => {
                    if let Some(b) = publish_bytes(d, Some(*pid), true, link.protocol) {
                        self.conns.write(link.conn, &b);
                    }
                }
                Outgoing::Released => {
                    self.conns
                        .send(link.conn, link.protocol, &Packet::PubRel(PubRel::new(*pid)))
                }
            }
        }
        drain(s, &mut self.conns);
    }

    pub(super) fn on_puback(&mut self, client_id: &str, pid: u16) {
        if let Some(s) = self.sessions.get_mut(client_id) {
            if let Some(Outgoing::Published(d)) = s.inflight.get(&pid)
                && d.qos == QoS::AtLeastOnce
            {
                s.inflight.remove(&pid);
            }
            drain(s, &mut self.conns);
        }
    }

    pub(super) fn on_pubrec(&mut self, id: ConnId, client_id: &str, protocol: Protocol, r: PubRec) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if r.code >= 0x80 {
            // 5.0: the client refused the message; the exchange ends here.
            s.inflight.remove(&r.packet_id);
            return drain(s, &mut self.conns);
        }
        let mut rel = PubRel::new(r.packet_id);
        match s.inflight.get_mut(&r.packet_id) {
            Some(o @ Outgoing::Published(_)) => *o = Outgoing::Released,
            Some(Outgoing::Released) => {}
            // 0x92: Packet Identifier not found.
            None if protocol == Protocol::V5 => rel.code = 0x92,
            None => {}
        }
        self.conns.send(id, protocol, &Packet::PubRel(rel));
    }

    pub(super) fn on_pubrel(&mut self, id: ConnId, client_id: &str, protocol: Protocol, pid: u16) {
        let known = self
            .sessions
            .get_mut(client_id)
            .is_some_and(|s| s.incoming_qos2.remove(&pid));
        let mut comp = PubComp::new(pid);
        if !known && protocol == Protocol::V5 {
            comp.code = 0x92;
        }
        self.conns.send(id, protocol, &Packet::PubComp(comp));
    }

    pub(super) fn on_pubcomp(&mut self, client_id: &str, pid: u16) {
        if let Some(s) = self.sessions.get_mut(client_id) {
            if let Some(Outgoing::Released) = s.inflight.get(&pid) {
                s.inflight.remove(&pid);
            }
            drain(s, &mut self.conns);
        }
    }

    pub(super) fn on_subscribe(
        &mut self,
        id: ConnId,
        client_id: &str,
        protocol: Protocol,
        sub: Subscribe,
    ) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let sub_id = sub.properties.subscription_identifiers.first().copied();
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut retained = Vec::new();
        for f in sub.filters {
            if protocol == Protocol::V5 && f.filter.starts_with("$share/") {
                // 0x9E: Shared Subscriptions not supported.
                codes.push(0x9E);
                continue;
            }
            let o = SubOptions {
                qos: f.qos,
                no_local: f.no_local,
                retain_as_published: f.retain_as_published,
                id: sub_id,
            };
            let existed = s.subscriptions.insert(f.filter.clone(), o).is_some();
            codes.push(f.qos as u8);
            let send = match f.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNewSubscription => !existed,
                RetainHandling::DoNotSend => false,
            };
            if send {
                for (topic, m) in &self.retained {
                    if matches(&f.filter, topic) {
                        retained.push(Delivery {
                            msg: Arc::clone(m),
                            qos: m.qos.min(f.qos),
                            retain: true,
                            sub_ids: sub_id.into_iter().collect(),
                        });
                    }
                }
            }
        }
        let ack = SubAck {
            packet_id: sub.packet_id,
            codes,
            ..SubAck::default()
        };
        self.conns.send(id, protocol, &Packet::SubAck(ack));
        for d in retained {
            deliver(s, &mut self.conns, d);
        }
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        id: ConnId,
        client_id: &str,
        protocol: Protocol,
        u: Unsubscribe,
    ) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let mut ack = UnsubAck::new(u.packet_id);
        for f in &u.filters {
            let existed = s.subscriptions.remove(f).is_some();
            if protocol == Protocol::V5 {
                // 0x11: No subscription existed.
                ack.codes.push(if existed { 0x00 } else { 0x11 });
            }
        }
        self.conns.send(id, protocol, &Packet::UnsubAck(ack));
    }
}

/// Send `d` to the session's client now, or queue it (QoS 1/2 while offline or with the
/// in-flight window full). QoS 0 to an offline client, or to one whose output is backed up
/// past [`MAX_OUTBOX`], is dropped.
fn deliver(s: &mut Session, conns: &mut Conns, d: Delivery) {
    let Some(link) = s.link else {
        if d.qos != QoS::AtMostOnce {
            s.enqueue(d);
        }
        return;
    };
    if d.qos == QoS::AtMostOnce {
        if conns.pending(link.conn) > MAX_OUTBOX {
            return;
        }
        if let Some(b) = publish_bytes(&d, None, false, link.protocol)
            && b.len() <= link.max_packet
        {
            conns.write(link.conn, &b);
        }
        return;
    }
    if !s.queue.is_empty() || !s.has_window() {
        s.enqueue(d);
        return;
    }
    send_inflight(s, conns, d);
}

/// Send queued deliveries while the in-flight window has room.
fn drain(s: &mut Session, conns: &mut Conns) {
    while s.link.is_some() && s.has_window() {
        let Some(d) = s.queue.pop_front() else {
            return;
        };
        send_inflight(s, conns, d);
    }
}

/// Give a QoS 1/2 delivery a packet id and send it (a packet larger than the client accepts
/// is dropped, as the spec asks).
fn send_inflight(s: &mut Session, conns: &mut Conns, d: Delivery) {
    let Some(link) = s.link else {
        return;
    };
    let Some(pid) = s.next_packet_id() else {
        s.enqueue(d);
        return;
    };
    let Some(b) = publish_bytes(&d, Some(pid), false, link.protocol) else {
        return;
    };
    if b.len() > link.max_packet {
        return;
    }
    s.inflight.insert(pid, Outgoing::Published(d));
    conns.write(link.conn, &b);
}

/// The PUBLISH of a delivery, encoded for `protocol` (`None` if it does not encode).
fn publish_bytes(
    d: &Delivery,
    packet_id: Option<u16>,
    dup: bool,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    let mut properties = crate::mqtt::Properties::default();
    if protocol == Protocol::V5 {
        properties = d.msg.properties.clone();
        properties.subscription_identifiers = d.sub_ids.clone();
    }
    let p = Publish {
        dup: dup && d.qos != QoS::AtMostOnce,
        qos: d.qos,
        retain: d.retain,
        topic: d.msg.topic.clone(),
        packet_id,
        payload: d.msg.payload.to_vec(),
        properties,
    };
    Packet::Publish(p).encode(protocol).ok()
}
