//! The TCP edge: carries out the modem core's [`NetRequest`]s with real sockets (a thread per
//! connection) and reports [`NetEvent`]s back through a channel.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::config::{Network, Target};
use super::modem::{ConnId, NetEvent, NetRequest};

/// How long one connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where network events go; returns false once nobody listens any more.
pub(crate) type EventSink = Arc<dyn Fn(NetEvent) -> bool + Send + Sync>;

enum WriterCmd {
    Send(Vec<u8>),
    Close,
}

struct Conn {
    writer: Sender<WriterCmd>,
    /// A clone of the socket once connected, to shut it down from outside.
    stream: Arc<Mutex<Option<TcpStream>>>,
}

/// Real TCP connections for one emulated modem.
pub(crate) struct NetEdge {
    network: Network,
    events: EventSink,
    conns: HashMap<ConnId, Conn>,
}

impl NetEdge {
    /// Events are delivered on `events`.
    pub(crate) fn new(network: Network, events: EventSink) -> NetEdge {
        NetEdge {
            network,
            events,
            conns: HashMap::new(),
        }
    }

    /// Carry out one request. Returns a note for the transcript when routing changed the
    /// destination.
    pub(crate) fn handle(&mut self, req: NetRequest) -> Option<String> {
        match req {
            NetRequest::Connect { id, host, port } => {
                let target = self.network.route(&host, port);
                let note = match &target {
                    Target::Addr(a) => {
                        Some(format!("connection #{id} to {host}:{port} routed to {a}"))
                    }
                    Target::Resolve(..) => None,
                };
                let (tx, rx) = channel();
                let slot = Arc::new(Mutex::new(None));
                self.conns.insert(
                    id,
                    Conn {
                        writer: tx,
                        stream: Arc::clone(&slot),
                    },
                );
                let events = Arc::clone(&self.events);
                let spawned = thread::Builder::new()
                    .name(format!("sim7k-emu-conn-{id}"))
                    .spawn(move || connection(id, target, rx, slot, events));
                if let Err(e) = spawned {
                    self.conns.remove(&id);
                    (self.events)(NetEvent::ConnectFailed {
                        id,
                        reason: format!("cannot start a connection thread: {e}"),
                        refused: true,
                    });
                }
                note
            }
            NetRequest::Send { id, data } => {
                let len = data.len();
                let ok = self
                    .conns
                    .get(&id)
                    .is_some_and(|c| c.writer.send(WriterCmd::Send(data)).is_ok());
                if !ok {
                    (self.events)(NetEvent::SendFailed {
                        id,
                        reason: format!("{len} byte(s): connection #{id} is gone"),
                    });
                }
                None
            }
            NetRequest::Close { id } => {
                if let Some(c) = self.conns.remove(&id) {
                    close(&c);
                }
                None
            }
        }
    }

    /// Close every connection.
    pub(crate) fn shutdown(&mut self) {
        for (_, c) in self.conns.drain() {
            close(&c);
        }
    }
}

impl Drop for NetEdge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn close(c: &Conn) {
    let _ = c.writer.send(WriterCmd::Close);
    if let Ok(slot) = c.stream.lock()
        && let Some(s) = slot.as_ref()
    {
        let _ = s.shutdown(Shutdown::Both);
    }
}

fn resolve(target: &Target) -> Result<Vec<SocketAddr>, String> {
    match target {
        Target::Addr(a) => Ok(vec![*a]),
        Target::Resolve(host, port) => {
            let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .collect();
            if addrs.is_empty() {
                Err(format!("{host} has no address"))
            } else {
                Ok(addrs)
            }
        }
    }
}

/// Dial the target. On failure: why, and whether the host refused (a TCP reset) rather than
/// not answering (no address, unreachable, timeout).
fn dial(target: &Target) -> Result<TcpStream, (String, bool)> {
    let mut last = (String::from("no address"), false);
    for a in resolve(target).map_err(|e| (e, false))? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = (
                    format!("{a}: {e}"),
                    e.kind() == ErrorKind::ConnectionRefused,
                )
            }
        }
    }
    Err(last)
}

/// One connection: dial, then write what the modem sends while a reader thread reports what
/// arrives.
fn connection(
    id: ConnId,
    target: Target,
    cmds: Receiver<WriterCmd>,
    slot: Arc<Mutex<Option<TcpStream>>>,
    events: EventSink,
) {
    let mut stream = match dial(&target) {
        Ok(s) => s,
        Err((reason, refused)) => {
            events(NetEvent::ConnectFailed {
                id,
                reason,
                refused,
            });
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (peer, reader) = match (stream.peer_addr(), stream.try_clone()) {
        (Ok(p), Ok(r)) => (p, r),
        (Err(e), _) | (_, Err(e)) => {
            events(NetEvent::ConnectFailed {
                id,
                reason: e.to_string(),
                refused: true,
            });
            return;
        }
    };
    if let (Ok(mut s), Ok(c)) = (slot.lock(), stream.try_clone()) {
        *s = Some(c);
    }
    if !events(NetEvent::Connected { id, peer }) {
        return;
    }
    // Held while a write is in progress and its `Sent` is reported, and while the reader
    // reports, so that `Sent` always precedes the peer's reaction to those bytes.
    let gate = Arc::new(Mutex::new(()));
    let rx_events = Arc::clone(&events);
    let rx_gate = Arc::clone(&gate);
    let read_thread = thread::Builder::new()
        .name(format!("sim7k-emu-read-{id}"))
        .spawn(move || read_loop(id, reader, rx_events, &rx_gate));
    if read_thread.is_err() {
        let _ = stream.shutdown(Shutdown::Both);
        events(NetEvent::Closed { id });
        return;
    }
    for cmd in cmds {
        match cmd {
            WriterCmd::Send(data) => {
                let _held = gate.lock();
                let r = stream.write_all(&data).and_then(|()| stream.flush());
                let ev = match r {
                    Ok(()) => NetEvent::Sent {
                        id,
                        len: data.len(),
                    },
                    Err(e) => NetEvent::SendFailed {
                        id,
                        reason: e.to_string(),
                    },
                };
                if !events(ev) {
                    break;
                }
            }
            WriterCmd::Close => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn read_loop(id: ConnId, mut stream: TcpStream, events: EventSink, gate: &Mutex<()>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let r = stream.read(&mut buf);
        let _held = gate.lock();
        match r {
            Ok(0) | Err(_) => {
                events(NetEvent::Closed { id });
                return;
            }
            Ok(n) => {
                if !events(NetEvent::Received {
                    id,
                    data: buf[..n].to_vec(),
                }) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc::RecvTimeoutError;

    fn sink(tx: Sender<NetEvent>) -> EventSink {
        let tx = Mutex::new(tx);
        Arc::new(move |e| tx.lock().is_ok_and(|t| t.send(e).is_ok()))
    }

    fn next(rx: &Receiver<NetEvent>) -> NetEvent {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout) => panic!("no network event (hang guard)"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn echo_round_trip_and_peer_close() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
            // then close
        });
        let (tx, rx) = channel();
        let mut edge = NetEdge::new(Network::Redirect(addr), sink(tx));
        let note = edge.handle(NetRequest::Connect {
            id: 1,
            host: "example.invalid".into(),
            port: 1,
        });
        assert!(note.unwrap().contains("routed to"));
        assert!(matches!(next(&rx), NetEvent::Connected { id: 1, peer } if peer == addr));
        edge.handle(NetRequest::Send {
            id: 1,
            data: b"\x00\x1a\r\nz".to_vec(),
        });
        let mut got = Vec::new();
        let mut sent = false;
        loop {
            match next(&rx) {
                NetEvent::Sent { id: 1, len: 5 } => sent = true,
                NetEvent::Received { data, .. } => got.extend(data),
                NetEvent::Closed { id: 1 } => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(sent);
        assert_eq!(got, b"\x00\x1a\r\nz");
        server.join().unwrap();
    }

    #[test]
    fn refused_and_unknown() {
        // A port nobody listens on: bind, read, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (tx, rx) = channel();
        let mut edge = NetEdge::new(Network::Real, sink(tx));
        edge.handle(NetRequest::Connect {
            id: 7,
            host: "127.0.0.1".into(),
            port,
        });
        assert!(matches!(
            next(&rx),
            NetEvent::ConnectFailed {
                id: 7,
                refused: true,
                ..
            }
        ));
        edge.handle(NetRequest::Send {
            id: 99,
            data: b"x".to_vec(),
        });
        assert!(matches!(next(&rx), NetEvent::SendFailed { id: 99, .. }));
    }
}
