//! The sans-IO core driven in memory under a virtual clock: exact time rules (keep-alive at
//! 1.5 times, the connect timeout, session expiry), the deadline `poll` returns, and the
//! bounds on what is queued.

use std::time::{Duration, Instant};

use super::session::MAX_QUEUED;
use super::{Broker, BrokerConfig, ConnId};
use crate::mqtt::*;

struct Harness {
    broker: Broker,
    t0: Instant,
    /// Packets read after a CONNACK, returned by the next `packets`.
    backlog: Vec<Packet>,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            broker: Broker::new(BrokerConfig::default()),
            t0: Instant::now(),
            backlog: Vec::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn send(&mut self, id: u64, p: &Packet, v: Protocol, ms: u64) {
        let bytes = p.encode(v).unwrap();
        let now = self.at(ms);
        self.broker.handle_bytes(ConnId(id), &bytes, now);
    }

    /// Open connection `id` and CONNECT with `c` at `ms`; the CONNACK.
    fn connect(&mut self, id: u64, c: Connect, ms: u64) -> ConnAck {
        let v = c.protocol;
        self.broker.connect(ConnId(id), self.at(ms));
        self.send(id, &Packet::Connect(c), v, ms);
        let mut got = self.packets(id, v).into_iter();
        let ack = match got.next() {
            Some(Packet::ConnAck(a)) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        };
        self.backlog = got.collect();
        ack
    }

    /// Everything the broker has for `id` now, decoded.
    fn packets(&mut self, id: u64, v: Protocol) -> Vec<Packet> {
        let out = self.broker.poll_output(ConnId(id));
        let mut d = StreamDecoder::new(v).with_max_packet_size(32 << 20);
        d.push(&out);
        let mut all = std::mem::take(&mut self.backlog);
        all.extend(d.map(|p| p.unwrap()));
        all
    }
}

fn with_will(id: &str, keep_alive: u16) -> Connect {
    Connect {
        keep_alive,
        will: Some(LastWill {
            topic: format!("will/{id}"),
            payload: b"bye".to_vec(),
            ..LastWill::default()
        }),
        ..Connect::new(Protocol::V311, id)
    }
}

#[test]
fn keep_alive_expires_at_one_and_a_half_times_and_publishes_the_will() {
    let mut h = Harness::new();
    h.connect(1, Connect::new(Protocol::V311, "watch"), 0);
    h.send(
        1,
        &Packet::Subscribe(Subscribe::new(1, "will/#", QoS::AtMostOnce)),
        Protocol::V311,
        0,
    );
    assert!(matches!(
        h.packets(1, Protocol::V311)[..],
        [Packet::SubAck(_)]
    ));
    h.connect(2, with_will("quiet", 10), 0);
    // The next deadline is the quiet client's: 15 s after it was last heard.
    assert_eq!(h.broker.poll(h.at(1000)), Some(h.at(15_000)));
    // A PINGREQ at 10 s moves it to 25 s.
    h.send(2, &Packet::PingReq, Protocol::V311, 10_000);
    assert_eq!(h.packets(2, Protocol::V311), [Packet::PingResp]);
    h.broker.poll(h.at(24_999));
    assert!(!h.broker.wants_close(ConnId(2)));
    assert!(h.packets(1, Protocol::V311).is_empty());
    h.broker.poll(h.at(25_000));
    assert!(h.broker.wants_close(ConnId(2)));
    assert!(h.broker.take_woken().contains(&ConnId(2)));
    let got = h.packets(1, Protocol::V311);
    assert!(
        matches!(&got[..], [Packet::Publish(p)] if p.topic == "will/quiet"),
        "{got:?}"
    );
    // The edge then closes the socket: no second will.
    h.broker.disconnect(ConnId(2), h.at(25_001));
    assert!(h.packets(1, Protocol::V311).is_empty());
    // Keep-alive 0 means no deadline; the watcher has the default 60 s.
    h.connect(3, with_will("forever", 0), 30_000);
    assert_eq!(h.broker.poll(h.at(30_000)), Some(h.at(90_000)));
}

#[test]
fn a_connection_without_connect_is_closed_after_the_connect_timeout() {
    let mut h = Harness::new();
    h.broker.connect(ConnId(7), h.at(0));
    h.broker.handle_bytes(ConnId(7), &[0x10], h.at(5));
    assert_eq!(h.broker.poll(h.at(10)), Some(h.at(30_000)));
    assert!(!h.broker.wants_close(ConnId(7)));
    h.broker.poll(h.at(30_000));
    assert!(h.broker.wants_close(ConnId(7)));
    assert!(h.broker.poll_output(ConnId(7)).is_empty());
}

#[test]
fn an_offline_v5_session_ends_at_its_expiry() {
    let mut h = Harness::new();
    let c = Connect {
        clean_session: false,
        keep_alive: 0,
        properties: Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        },
        ..Connect::new(Protocol::V5, "exp")
    };
    assert!(!h.connect(1, c.clone(), 0).session_present);
    h.broker.disconnect(ConnId(1), h.at(1000));
    assert_eq!(h.broker.poll(h.at(2000)), Some(h.at(61_000)));
    // Back before the expiry: the session is there.
    assert!(h.connect(2, c.clone(), 60_000).session_present);
    h.broker.disconnect(ConnId(2), h.at(60_000));
    h.broker.poll(h.at(120_000));
    assert!(!h.connect(3, c, 120_000).session_present);
}

#[test]
fn queued_messages_for_an_offline_client_are_bounded() {
    let mut h = Harness::new();
    let v = Protocol::V311;
    let sub = Connect {
        clean_session: false,
        ..Connect::new(v, "offline")
    };
    h.connect(1, sub.clone(), 0);
    h.send(
        1,
        &Packet::Subscribe(Subscribe::new(1, "q", QoS::AtLeastOnce)),
        v,
        0,
    );
    h.broker.disconnect(ConnId(1), h.at(0));
    h.connect(2, Connect::new(v, "pub"), 0);
    for i in 0..MAX_QUEUED + 10 {
        let p = Publish {
            qos: QoS::AtLeastOnce,
            packet_id: Some(1),
            ..Publish::new("q", i.to_string().into_bytes())
        };
        h.send(2, &Packet::Publish(p), v, 1);
    }
    assert_eq!(h.broker.received().len(), MAX_QUEUED + 10);
    assert!(h.connect(3, sub, 2).session_present);
    // 64 in flight at once; the rest follow as they are acknowledged.
    let first = h.packets(3, v);
    assert_eq!(first.len(), super::session::MAX_INFLIGHT);
    let mut delivered = first.len();
    let mut pending = first;
    while !pending.is_empty() {
        for p in pending {
            let Packet::Publish(p) = p else {
                panic!("{p:?}")
            };
            let ack = Packet::PubAck(PubAck::new(p.packet_id.unwrap()));
            h.send(3, &ack, v, 3);
        }
        pending = h.packets(3, v);
        delivered += pending.len();
    }
    assert_eq!(
        delivered, MAX_QUEUED,
        "newer messages beyond the queue are dropped"
    );
}

#[test]
fn output_and_close_of_unknown_connections() {
    let mut h = Harness::new();
    assert!(h.broker.wants_close(ConnId(99)));
    assert!(h.broker.poll_output(ConnId(99)).is_empty());
    h.broker.handle_bytes(ConnId(99), b"\x10\x00", h.at(0));
    h.broker.disconnect(ConnId(99), h.at(0));
    assert_eq!(h.broker.connection_count(), 0);
    assert_eq!(h.broker.poll(h.at(0)), None);
}
