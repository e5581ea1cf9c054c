//! An embedded, real MQTT broker for the offline first run and for tests (feature
//! `embedded-broker`, on by default).
//!
//! [`EmbeddedBroker::start`] runs [rumqttd](https://crates.io/crates/rumqttd) in-process with
//! an MQTT 3.1.1 and an MQTT 5 listener on loopback, behind one recording front door on a free
//! `127.0.0.1` port ([`EmbeddedBroker::addr`]): each client connection is passed through to the
//! matching rumqttd listener (chosen from the protocol level of its CONNECT), and every PUBLISH
//! the client sends is recorded as a [`ReceivedMessage`] exactly as it arrived (topic, payload,
//! QoS, retain flag).
//!
//! Why record on the wire rather than through an in-process `Broker::link` subscribed to `#`:
//! rumqttd rewrites the QoS of forwarded messages to the subscriber's QoS and keeps
//! `Publish::qos` private, so a link cannot tell what QoS a client used.
//!
//! Lifetime: rumqttd has no shutdown API, so its threads live until the process exits.
//! Dropping an [`EmbeddedBroker`] only closes the front door (new connections are refused;
//! established ones keep working until either side closes).
//!
//! Logging: rumqttd logs through `tracing`; sim7k installs no subscriber for it, so it is
//! silent unless the application installs a global one (then filter `rumqttd=off`).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A PUBLISH the broker received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Topic name (lossy UTF-8; empty when a v5 client used a topic alias alone).
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS the client published with (0, 1 or 2).
    pub qos: u8,
    /// Retain flag as sent.
    pub retain: bool,
}

#[derive(Default)]
struct Record {
    msgs: Mutex<Vec<ReceivedMessage>>,
    cv: Condvar,
}

impl Record {
    fn push(&self, m: ReceivedMessage) {
        if let Ok(mut v) = self.msgs.lock() {
            v.push(m);
        }
        self.cv.notify_all();
    }
}

/// A running in-process MQTT broker with a record of what it received.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    record: Arc<Record>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn server(name: &str, listen: SocketAddr) -> rumqttd::ServerSettings {
    rumqttd::ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 16 << 20,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

impl EmbeddedBroker {
    /// Start rumqttd and the recording front door on a free loopback port.
    pub fn start() -> io::Result<EmbeddedBroker> {
        // rumqttd cannot listen on port 0: pick free ports and retry if one was taken meanwhile.
        let mut last = io::Error::other("embedded broker did not start");
        for _ in 0..3 {
            match Self::start_once() {
                Ok(b) => return Ok(b),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once() -> io::Result<EmbeddedBroker> {
        let v4: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let v5: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 1000,
                max_outgoing_packet_count: 200,
                max_segment_size: 1024 * 1024,
                max_segment_count: 10,
                ..Default::default()
            },
            v4: Some(HashMap::from([("1".to_string(), server("sim7k-v4", v4))])),
            v5: Some(HashMap::from([("1".to_string(), server("sim7k-v5", v5))])),
            ..Default::default()
        };
        thread::Builder::new()
            .name("sim7k-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                let _ = broker.start();
            })?;
        for a in [v4, v5] {
            if !wait_listening(a, Duration::from_secs(5)) {
                return Err(io::Error::other(format!(
                    "embedded broker did not start listening on {a} (port taken?)"
                )));
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let record = Arc::new(Record::default());
        let closed = Arc::new(AtomicBool::new(false));
        {
            let record = Arc::clone(&record);
            let closed = Arc::clone(&closed);
            thread::Builder::new()
                .name("sim7k-broker-door".into())
                .spawn(move || accept_loop(&listener, v4, v5, &record, &closed))?;
        }
        Ok(EmbeddedBroker {
            addr,
            record,
            closed,
        })
    }

    /// Where clients connect (MQTT 3.1, 3.1.1 and 5).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every PUBLISH received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.record
            .msgs
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Wait until at least `n` messages were received or `timeout` passed; returns what was
    /// received (possibly fewer than `n`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let end = Instant::now() + timeout;
        let Ok(mut v) = self.record.msgs.lock() else {
            return Vec::new();
        };
        while v.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.record.cv.wait_timeout(v, left) {
                Ok((g, _)) => v = g,
                Err(_) => return Vec::new(),
            }
        }
        v.clone()
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: &TcpListener,
    v4: SocketAddr,
    v5: SocketAddr,
    record: &Arc<Record>,
    closed: &AtomicBool,
) {
    while !closed.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let record = Arc::clone(record);
                let _ = thread::Builder::new()
                    .name("sim7k-broker-conn".into())
                    .spawn(move || {
                        let _ = proxy(client, v4, v5, &record);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Split one complete MQTT packet off the front of `buf`: `(first byte, body)`.
/// `Ok(None)` = incomplete, `Err(())` = malformed remaining length.
fn take_packet(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, ()> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut shift = 0;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7F) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if i > 4 {
            return Err(());
        }
    }
    if buf.len() < i + len {
        return Ok(None);
    }
    let body = buf[i..i + len].to_vec();
    buf.drain(..i + len);
    Ok(Some((first, body)))
}

fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, &x) in b.iter().enumerate().take(4) {
        v |= usize::from(x & 0x7F) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Protocol level of a CONNECT body (3, 4 or 5).
fn connect_level(body: &[u8]) -> Option<u8> {
    let n = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    body.get(2 + n).copied()
}

fn parse_publish(first: u8, body: &[u8], v5: bool) -> Option<ReceivedMessage> {
    let qos = (first >> 1) & 3;
    let retain = first & 1 == 1;
    let tlen = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = String::from_utf8_lossy(body.get(2..2 + tlen)?).into_owned();
    let mut at = 2 + tlen;
    if qos > 0 {
        at += 2;
    }
    if v5 {
        let (plen, used) = varint(body.get(at..)?)?;
        at += used + plen;
    }
    Some(ReceivedMessage {
        topic,
        payload: body.get(at..)?.to_vec(),
        qos,
        retain,
    })
}

fn proxy(mut client: TcpStream, v4: SocketAddr, v5: SocketAddr, record: &Record) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    // Read the CONNECT to choose the listener.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (first, body) = loop {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut probe = buf.clone();
        match take_packet(&mut probe) {
            Ok(Some(p)) => break p,
            Ok(None) => continue,
            Err(()) => return Ok(()),
        }
    };
    let is_v5 = first >> 4 == 1 && connect_level(&body) == Some(5);
    let mut backend = TcpStream::connect(if is_v5 { v5 } else { v4 })?;
    backend.set_nodelay(true)?;
    client.set_nodelay(true)?;
    client.set_read_timeout(None)?;
    backend.write_all(&buf)?;
    // Anything after the CONNECT in the first reads is parsed below.
    let mut pending = buf;
    let _ = take_packet(&mut pending);

    let mut to_client = client.try_clone()?;
    let mut from_backend = backend.try_clone()?;
    let back = thread::Builder::new()
        .name("sim7k-broker-back".into())
        .spawn(move || {
            let _ = io::copy(&mut from_backend, &mut to_client);
            let _ = to_client.shutdown(Shutdown::Both);
        })?;
    let mut parsing = true;
    loop {
        while parsing {
            match take_packet(&mut pending) {
                Ok(Some((f, b))) => {
                    if f >> 4 == 3
                        && let Some(m) = parse_publish(f, &b, is_v5)
                    {
                        record.push(m);
                    }
                }
                Ok(None) => break,
                Err(()) => parsing = false,
            }
        }
        let n = match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if backend.write_all(&chunk[..n]).is_err() {
            break;
        }
        if parsing {
            pending.extend_from_slice(&chunk[..n]);
        }
    }
    let _ = backend.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let _ = back.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_packet(level: u8, id: &str) -> Vec<u8> {
        let mut b = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 30];
        if level == 5 {
            b.push(0); // no properties
        }
        b.extend_from_slice(&(id.len() as u16).to_be_bytes());
        b.extend_from_slice(id.as_bytes());
        let mut p = vec![0x10, b.len() as u8];
        p.extend(b);
        p
    }

    fn read_packet(s: &mut TcpStream) -> (u8, Vec<u8>) {
        let mut buf = Vec::new();
        let mut c = [0u8; 512];
        loop {
            let mut probe = buf.clone();
            if let Ok(Some(p)) = take_packet(&mut probe) {
                return p;
            }
            let n = s.read(&mut c).unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&c[..n]);
        }
    }

    #[test]
    fn records_v4_and_v5_publishes_exactly() {
        let b = EmbeddedBroker::start().unwrap();
        // MQTT 3.1.1: QoS 1 retained publish.
        let mut s = TcpStream::connect(b.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(&connect_packet(4, "t4")).unwrap();
        let (f, body) = read_packet(&mut s);
        assert_eq!((f, body), (0x20, vec![0, 0]));
        s.write_all(&[0x33, 9, 0, 3, b'a', b'/', b'b', 0, 1, 0xFF, 0x00])
            .unwrap();
        let (f, body) = read_packet(&mut s);
        assert_eq!((f, body), (0x40, vec![0, 1]), "PUBACK from rumqttd");
        // MQTT 5: QoS 0 with a property.
        let mut s5 = TcpStream::connect(b.addr()).unwrap();
        s5.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s5.write_all(&connect_packet(5, "t5")).unwrap();
        let (f, _) = read_packet(&mut s5);
        assert_eq!(f, 0x20);
        s5.write_all(&[0x30, 8, 0, 1, b'c', 2, 0x01, 0x01, b'h', b'i'])
            .unwrap();
        let got = b.wait_for(2, Duration::from_secs(20));
        assert_eq!(
            got,
            vec![
                ReceivedMessage {
                    topic: "a/b".into(),
                    payload: vec![0xFF, 0x00],
                    qos: 1,
                    retain: true
                },
                ReceivedMessage {
                    topic: "c".into(),
                    payload: b"hi".to_vec(),
                    qos: 0,
                    retain: false
                }
            ]
        );
        assert_eq!(b.received().len(), 2);
    }

    #[test]
    fn wait_for_returns_what_arrived_on_timeout() {
        let b = EmbeddedBroker::start().unwrap();
        assert!(b.wait_for(1, Duration::from_millis(50)).is_empty());
    }

    #[test]
    fn packet_splitting() {
        let mut buf = vec![0x30, 0x80];
        assert_eq!(take_packet(&mut buf), Ok(None));
        let mut bad = vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        assert_eq!(take_packet(&mut bad), Err(()));
        assert_eq!(connect_level(&connect_packet(5, "x")[2..]), Some(5));
        assert_eq!(parse_publish(0x30, &[0, 5, b'a'], false), None);
    }
}
