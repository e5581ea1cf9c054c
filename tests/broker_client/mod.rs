//! A raw MQTT client for the broker tests: sim7k's codec over a TCP socket, keeping the exact
//! bytes of every packet it receives (for byte-exact checks).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sim7k::mqtt::*;

/// Hang guard only: a broker on loopback answers in milliseconds.
pub(crate) const GUARD: Duration = Duration::from_secs(20);

/// A client connection.
pub(crate) struct Raw {
    /// The socket.
    pub stream: TcpStream,
    decoder: StreamDecoder,
    received: Vec<u8>,
    /// The version packets are encoded in.
    pub protocol: Protocol,
}

impl Raw {
    /// Open a TCP connection (no CONNECT yet).
    pub(crate) fn open(addr: SocketAddr, protocol: Protocol) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to the broker");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            decoder: StreamDecoder::new(protocol).with_max_packet_size(20 << 20),
            received: Vec::new(),
            protocol,
        }
    }

    /// Connect with `c`; the CONNACK and its bytes.
    pub(crate) fn connect(addr: SocketAddr, c: Connect) -> (Raw, ConnAck, Vec<u8>) {
        let mut r = Raw::open(addr, c.protocol);
        r.send(&Packet::Connect(c));
        match r.recv() {
            (Packet::ConnAck(a), raw) => (r, a, raw),
            (other, _) => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connect with a clean session and expect success.
    pub(crate) fn client(addr: SocketAddr, v: Protocol, id: &str) -> Raw {
        let (r, ack, _) = Raw::connect(addr, Connect::new(v, id));
        assert!(ack.is_success(), "CONNACK {ack:?}");
        r
    }

    /// Send a packet (strictly encoded).
    pub(crate) fn send(&mut self, p: &Packet) {
        let b = p.encode(self.protocol).expect("strict encode");
        self.send_raw(&b);
    }

    /// Send bytes as they are.
    pub(crate) fn send_raw(&mut self, b: &[u8]) {
        self.stream.write_all(b).expect("write to the broker");
    }

    /// The next packet and its exact bytes (panics if the broker closes or stays silent).
    pub(crate) fn recv(&mut self) -> (Packet, Vec<u8>) {
        match self.next() {
            Ok(p) => p,
            Err(why) => panic!("no packet from the broker: {why}"),
        }
    }

    /// The next packet, or why there is none (closed, timeout).
    pub(crate) fn next(&mut self) -> Result<(Packet, Vec<u8>), String> {
        let start = Instant::now();
        loop {
            let from = self.decoder.stream_offset();
            if let Some(p) = self
                .decoder
                .next_packet()
                .map_err(|e| format!("undecodable: {e}"))?
            {
                let len = self.decoder.stream_offset() - from;
                let raw = self.received.drain(..len).collect();
                return Ok((p, raw));
            }
            if start.elapsed() > GUARD {
                return Err("timeout".into());
            }
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("closed".into()),
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    self.decoder.push(&buf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// The next packet, which must be a PUBLISH.
    pub(crate) fn publish_in(&mut self) -> (Publish, Vec<u8>) {
        match self.recv() {
            (Packet::Publish(p), raw) => (p, raw),
            (other, _) => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// True once the broker closes the connection (after any packets still coming, which are
    /// returned); panics when it stays open.
    pub(crate) fn closed(&mut self) -> Vec<Packet> {
        let mut got = Vec::new();
        loop {
            match self.next() {
                Ok((p, _)) => got.push(p),
                Err(e) if e == "closed" || e.starts_with("read") => return got,
                Err(e) => panic!("the broker kept the connection open ({e}); got {got:?}"),
            }
        }
    }

    /// Subscribe to one filter and return the SUBACK codes.
    pub(crate) fn subscribe(&mut self, id: u16, filter: &str, qos: QoS) -> Vec<u8> {
        self.send(&Packet::Subscribe(Subscribe::new(id, filter, qos)));
        match self.recv().0 {
            Packet::SubAck(a) => {
                assert_eq!(a.packet_id, id);
                a.codes
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publish and complete the QoS flow as a publisher (QoS 0: a PINGREQ round trip), so the
    /// broker has routed the message when this returns; the packets received meanwhile (a
    /// 5.0 broker may answer 0x10 "no matching subscribers", a success too).
    pub(crate) fn publish(&mut self, p: Publish) -> Vec<Packet> {
        let (qos, id) = (p.qos, p.packet_id);
        self.send(&Packet::Publish(p));
        let mut acks = Vec::new();
        match (qos, id) {
            (QoS::AtLeastOnce, Some(id)) => {
                let ack = self.recv().0;
                assert!(
                    matches!(&ack, Packet::PubAck(a) if a.packet_id == id && a.is_success()),
                    "{ack:?}"
                );
                acks.push(ack);
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let rec = self.recv().0;
                assert!(
                    matches!(&rec, Packet::PubRec(r) if r.packet_id == id && r.is_success()),
                    "{rec:?}"
                );
                self.send(&Packet::PubRel(PubRel::new(id)));
                let comp = self.recv().0;
                assert_eq!(comp, Packet::PubComp(PubComp::new(id)));
                acks.extend([rec, comp]);
            }
            // QoS 0 has no answer: a PINGREQ round trip makes sure the broker has it.
            _ => acks.extend(self.sync()),
        }
        acks
    }

    /// Acknowledge a received PUBLISH as a subscriber (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    pub(crate) fn ack(&mut self, p: &Publish) {
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.send(&Packet::PubAck(PubAck::new(id))),
            (QoS::ExactlyOnce, Some(id)) => {
                self.send(&Packet::PubRec(PubRec::new(id)));
                assert_eq!(self.recv().0, Packet::PubRel(PubRel::new(id)));
                self.send(&Packet::PubComp(PubComp::new(id)));
            }
            _ => {}
        }
    }

    /// A round trip (PINGREQ → PINGRESP): everything the broker had for us before is read.
    pub(crate) fn sync(&mut self) -> Vec<Packet> {
        self.send(&Packet::PingReq);
        let mut before = Vec::new();
        loop {
            match self.recv().0 {
                Packet::PingResp => return before,
                p => before.push(p),
            }
        }
    }
}

/// A publish with QoS, packet id and retain set.
pub(crate) fn publish(topic: &str, payload: &[u8], qos: QoS, id: u16, retain: bool) -> Publish {
    Publish {
        qos,
        retain,
        packet_id: (qos != QoS::AtMostOnce).then_some(id),
        ..Publish::new(topic, payload.to_vec())
    }
}
