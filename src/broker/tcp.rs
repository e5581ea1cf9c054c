//! The TCP edge: a listener on a free loopback port, a reader and a writer thread per
//! connection, and a ticker thread for keep-alive, all around one [`Broker`] core behind a
//! mutex.
//!
//! The connection threads are generic over [`ByteStream`], so a TLS stream can be served the
//! same way as a plain TCP one.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::tls::{TLS_HANDSHAKE, TlsAcceptor};
use super::{Broker, BrokerConfig, ConnId, ReceivedMessage};

/// A byte stream the edge can serve: a TCP stream, or a TLS stream over one.
pub trait ByteStream: Read + Write + Send + Sized + 'static {
    /// A second handle on the same stream (the writer thread writes through it while the
    /// reader thread blocks in `read` on the first).
    fn try_clone(&self) -> io::Result<Self>;
    /// Close both directions; a `read` blocked in another handle returns.
    fn shutdown(&self);
}

impl ByteStream for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }

    fn shutdown(&self) {
        let _ = TcpStream::shutdown(self, Shutdown::Both);
    }
}

/// Longest the ticker sleeps between two keep-alive checks.
const TICK: Duration = Duration::from_millis(250);

/// Stack of each connection thread (up to 256 connections means 512 of them).
const CONN_STACK: usize = 256 * 1024;

struct State {
    broker: Broker,
    /// Wakes the writer thread of each connection.
    writers: HashMap<ConnId, Arc<Condvar>>,
    /// Closes each connection's stream (on stop).
    closers: HashMap<ConnId, Box<dyn Fn() + Send>>,
    threads: Vec<JoinHandle<()>>,
    next_id: u64,
}

impl State {
    /// Wake the writers of connections with new output or a close to carry out.
    fn wake(&mut self) {
        for id in self.broker.take_woken() {
            if let Some(cv) = self.writers.get(&id) {
                cv.notify_one();
            }
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a connection handed bytes to the core (a PUBLISH may have been
    /// recorded).
    recorded: Condvar,
    /// Wakes the ticker (on stop).
    tick: Condvar,
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another connection thread must not take the broker down with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// A running MQTT broker on a loopback port (MQTT 3.1, 3.1.1 and 5.0), with a record of every
/// PUBLISH it received. Stops on [`stop`](Self::stop) or drop.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    tls: Option<Arc<TlsAcceptor>>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EmbeddedBroker {
    /// Start a broker that accepts every client, on a free `127.0.0.1` port.
    pub fn start() -> io::Result<EmbeddedBroker> {
        Self::start_with(BrokerConfig::default())
    }

    /// Start a broker with `config` on a free `127.0.0.1` port.
    pub fn start_with(config: BrokerConfig) -> io::Result<EmbeddedBroker> {
        Self::start_inner(config, None)
    }

    /// Start a broker with `config` on a free `127.0.0.1` port that also speaks MQTT over
    /// TLS on the same port (a connection starting with a TLS handshake record is served
    /// through TLS), with a CA made now: [`ca_file`](Self::ca_file) is its PEM, for clients
    /// to trust. The server presents a certificate for whatever name the client sends in
    /// SNI, issued by that CA.
    pub fn start_tls(config: BrokerConfig) -> io::Result<EmbeddedBroker> {
        Self::start_inner(config, Some(Arc::new(TlsAcceptor::new()?)))
    }

    /// The PEM file of the CA of the TLS listener ([`start_tls`](Self::start_tls)), which
    /// lives as long as the broker.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.tls.as_deref().map(TlsAcceptor::ca_file)
    }

    fn start_inner(
        config: BrokerConfig,
        tls: Option<Arc<TlsAcceptor>>,
    ) -> io::Result<EmbeddedBroker> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                broker: Broker::new(config),
                writers: HashMap::new(),
                closers: HashMap::new(),
                threads: Vec::new(),
                next_id: 0,
            }),
            recorded: Condvar::new(),
            tick: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            let tls = tls.clone();
            thread::Builder::new()
                .name("sim7k-broker-accept".into())
                .spawn(move || accept_loop(&listener, &shared, tls.as_ref()))?
        };
        let ticker = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("sim7k-broker-tick".into())
                .spawn(move || tick_loop(&shared))
        };
        let mut broker = EmbeddedBroker {
            addr,
            tls,
            shared,
            accept: Some(accept),
            ticker: None,
        };
        broker.ticker = Some(ticker?);
        Ok(broker)
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every PUBLISH received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().broker.received().to_vec()
    }

    /// Wait until at least `n` messages were received or `timeout` passed; returns what was
    /// received (possibly fewer than `n`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let end = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.broker.received().len() < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = match self.shared.recorded.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        st.broker.received().to_vec()
    }

    /// Serve one more connection on this broker: any [`ByteStream`] (a TLS edge accepts and
    /// handshakes, then hands its stream here).
    pub fn serve<S: ByteStream>(&self, stream: S) -> io::Result<()> {
        serve(&self.shared, stream)
    }

    /// Stop: refuse new connections, close every open one, and wait for every thread.
    /// Idempotent; drop calls it.
    pub fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Unblock `accept` with one last connection.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let threads = {
            let mut st = self.shared.lock();
            for close in st.closers.values() {
                close();
            }
            for cv in st.writers.values() {
                cv.notify_all();
            }
            std::mem::take(&mut st.threads)
        };
        self.shared.tick.notify_all();
        for h in threads {
            let _ = h.join();
        }
        if let Some(h) = self.ticker.take() {
            let _ = h.join();
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, tls: Option<&Arc<TlsAcceptor>>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            return;
        }
        match stream {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                match tls {
                    None => {
                        let _ = serve(shared, s);
                    }
                    Some(tls) => sniff(shared, tls, s),
                }
            }
            // Out of file descriptors or the like: try again shortly.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Longest a connection may stay silent before its first byte tells TLS from MQTT.
const SNIFF_LIMIT: Duration = Duration::from_secs(60);

/// Serve `s` through TLS or plain, by its first byte, decided on a thread of its own (the
/// client speaks first in both protocols; the accept loop must not wait for it).
fn sniff(shared: &Arc<Shared>, tls: &Arc<TlsAcceptor>, s: TcpStream) {
    let (shared2, tls) = (Arc::clone(shared), Arc::clone(tls));
    let handle = thread::Builder::new()
        .name("sim7k-broker-sniff".into())
        .stack_size(CONN_STACK)
        .spawn(move || {
            let shared = shared2;
            let end = Instant::now() + SNIFF_LIMIT;
            // Short read timeouts so that `stop` is not held up by a silent client.
            let _ = s.set_read_timeout(Some(TICK));
            let mut first = [0u8; 1];
            let tls_first = loop {
                if shared.stopping() || Instant::now() >= end {
                    return;
                }
                match s.peek(&mut first) {
                    Ok(0) => return,
                    Ok(_) => break first[0] == TLS_HANDSHAKE,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return,
                }
            };
            let _ = s.set_read_timeout(None);
            let _ = if tls_first {
                tls.wrap(s).and_then(|t| serve(&shared, t))
            } else {
                serve(&shared, s)
            };
        });
    if let Ok(h) = handle {
        let mut st = shared.lock();
        st.threads.retain(|h| !h.is_finished());
        st.threads.push(h);
    }
}

fn tick_loop(shared: &Shared) {
    let mut st = shared.lock();
    while !shared.stopping() {
        let now = Instant::now();
        let next = st.broker.poll(now);
        st.wake();
        let wait = next.map_or(TICK, |t| t.saturating_duration_since(now).min(TICK));
        st = match shared
            .tick
            .wait_timeout(st, wait.max(Duration::from_millis(1)))
        {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

fn serve<S: ByteStream>(shared: &Arc<Shared>, stream: S) -> io::Result<()> {
    let writer = stream.try_clone()?;
    let closer = stream.try_clone()?;
    let cv = Arc::new(Condvar::new());
    let mut st = shared.lock();
    if shared.stopping() {
        stream.shutdown();
        return Ok(());
    }
    let id = ConnId(st.next_id);
    st.next_id += 1;
    st.broker.connect(id, Instant::now());
    st.writers.insert(id, Arc::clone(&cv));
    st.closers.insert(id, Box::new(move || closer.shutdown()));
    let w = {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name("sim7k-broker-tx".into())
            .stack_size(CONN_STACK)
            .spawn(move || write_loop(&shared, id, writer, &cv))
    };
    let r = {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name("sim7k-broker-rx".into())
            .stack_size(CONN_STACK)
            .spawn(move || read_loop(&shared, id, stream))
    };
    st.threads.retain(|h| !h.is_finished());
    let spawned = [w, r].into_iter().try_fold(Vec::new(), |mut v, h| {
        v.push(h?);
        Ok::<_, io::Error>(v)
    });
    match spawned {
        Ok(hs) => {
            st.threads.extend(hs);
            Ok(())
        }
        Err(e) => {
            // The thread that did start ends once the connection is gone.
            if let Some(close) = st.closers.remove(&id) {
                close();
            }
            st.broker.disconnect(id, Instant::now());
            if let Some(cv) = st.writers.remove(&id) {
                cv.notify_all();
            }
            Err(e)
        }
    }
}

fn read_loop<S: ByteStream>(shared: &Shared, id: ConnId, mut stream: S) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut st = shared.lock();
                st.broker.handle_bytes(id, &buf[..n], Instant::now());
                st.wake();
                drop(st);
                shared.recorded.notify_all();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut st = shared.lock();
    st.broker.disconnect(id, Instant::now());
    st.wake();
    st.closers.remove(&id);
    if let Some(cv) = st.writers.remove(&id) {
        cv.notify_all();
    }
    drop(st);
    stream.shutdown();
}

fn write_loop<S: ByteStream>(shared: &Shared, id: ConnId, mut stream: S, cv: &Condvar) {
    loop {
        let out = {
            let mut st = shared.lock();
            loop {
                if shared.stopping() {
                    drop(st);
                    return stream.shutdown();
                }
                let out = st.broker.poll_output(id);
                if !out.is_empty() {
                    break out;
                }
                if st.broker.wants_close(id) {
                    drop(st);
                    return stream.shutdown();
                }
                st = match cv.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
        };
        if stream
            .write_all(&out)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return stream.shutdown();
        }
    }
}
