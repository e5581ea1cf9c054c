//! A small MQTT 3.1.1 client over a raw TCP socket, built on sim7k's codec: the independent
//! subscriber/publisher of the end-to-end tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sim7k::mqtt::{
    Connect, Packet, Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, StreamDecoder,
    Subscribe,
};

/// A connected client.
pub(crate) struct Client {
    stream: TcpStream,
    decoder: StreamDecoder,
    next_id: u16,
}

impl Client {
    /// Connect with a clean session.
    pub(crate) fn connect(addr: SocketAddr, client_id: &str) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream.set_nodelay(true).ok();
        let mut c = Client {
            stream,
            decoder: StreamDecoder::new(Protocol::V311).with_max_packet_size(16 << 20),
            next_id: 0,
        };
        c.send(&Packet::Connect(Connect::new(Protocol::V311, client_id)));
        match c.next(Duration::from_secs(10)) {
            Some(Packet::ConnAck(a)) if a.is_success() => c,
            other => panic!("no CONNACK: {other:?}"),
        }
    }

    /// Subscribe to `filter` at QoS 2 (so publishes arrive at the QoS they were sent with).
    pub(crate) fn subscribe(&mut self, filter: &str) {
        self.next_id += 1;
        let s = Subscribe::new(self.next_id, filter, QoS::ExactlyOnce);
        self.send(&Packet::Subscribe(s));
        match self.next(Duration::from_secs(10)) {
            Some(Packet::SubAck(a)) if a.is_success() => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    }

    /// Publish and complete the QoS flow.
    pub(crate) fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) {
        let mut p = Publish::new(topic, payload.to_vec());
        p.qos = qos;
        if qos != QoS::AtMostOnce {
            self.next_id += 1;
            p.packet_id = Some(self.next_id);
        }
        self.send(&Packet::Publish(p));
        let deadline = Duration::from_secs(10);
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                assert!(matches!(self.next(deadline), Some(Packet::PubAck(_))));
            }
            QoS::ExactlyOnce => {
                assert!(matches!(self.next(deadline), Some(Packet::PubRec(_))));
                self.send(&Packet::PubRel(PubRel::new(self.next_id)));
                assert!(matches!(self.next(deadline), Some(Packet::PubComp(_))));
            }
        }
    }

    /// Wait for `n` PUBLISH packets (acknowledging them), within `timeout`.
    pub(crate) fn messages(&mut self, n: usize, timeout: Duration) -> Vec<Publish> {
        let end = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next(left) {
                Some(Packet::Publish(p)) => {
                    match (p.qos, p.packet_id) {
                        (QoS::AtLeastOnce, Some(id)) => self.send(&Packet::PubAck(PubAck::new(id))),
                        (QoS::ExactlyOnce, Some(id)) => self.send(&Packet::PubRec(PubRec::new(id))),
                        _ => {}
                    }
                    out.push(p);
                }
                Some(Packet::PubRel(r)) => self.send(&Packet::PubComp(PubComp::new(r.packet_id))),
                Some(_) => {}
                None => break,
            }
        }
        out
    }

    fn send(&mut self, p: &Packet) {
        let bytes = p.encode(Protocol::V311).expect("encode");
        self.stream.write_all(&bytes).expect("write");
    }

    /// The next packet, or `None` on timeout or close.
    pub(crate) fn next(&mut self, timeout: Duration) -> Option<Packet> {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 65536];
        loop {
            if let Ok(Some(p)) = self.decoder.next_packet() {
                return Some(p);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).ok();
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(_) => return None,
            }
        }
    }
}
