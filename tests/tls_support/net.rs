//! A test driver that runs a `TlsStream` over a real TCP socket the way the modem would:
//! every send at most `feed.chunk` bytes (`AT+CIPSEND`), every read at most the next size of
//! `feed.reads` (`AT+CIPRXGET=2,<n>`, or one byte at a time when dripping).

use super::memory::Feed;
use sim7k::tls::{TlsFailure, TlsStream};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Longest a test waits for a peer before declaring it stuck (not a timing assertion).
const STUCK: Duration = Duration::from_secs(30);

/// A TLS connection over a real socket.
pub(crate) struct Link {
    /// The socket.
    pub sock: TcpStream,
    /// The TLS stream.
    pub tls: TlsStream,
    /// How bytes move.
    pub feed: Feed,
    turn: usize,
    /// Ciphertext bytes written to the socket.
    pub sent: usize,
    /// Ciphertext bytes read from the socket.
    pub received: usize,
    /// Largest single write.
    pub largest_send: usize,
    /// Number of writes (one `AT+CIPSEND` each).
    pub sends: usize,
    /// Number of reads that returned bytes (one `AT+CIPRXGET` each).
    pub reads: usize,
    /// The size of every write, in order.
    pub send_sizes: Vec<usize>,
    /// The size of every read that returned bytes, in order.
    pub read_sizes: Vec<usize>,
    /// The socket reached EOF.
    pub eof: bool,
}

impl Link {
    /// Connect to `addr` and start driving `tls`.
    pub(crate) fn connect(addr: SocketAddr, tls: TlsStream, feed: Feed) -> Link {
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        sock.set_nodelay(true).expect("nodelay");
        Link {
            sock,
            tls,
            feed,
            turn: 0,
            sent: 0,
            received: 0,
            largest_send: 0,
            sends: 0,
            reads: 0,
            send_sizes: Vec::new(),
            read_sizes: Vec::new(),
            eof: false,
        }
    }

    /// Send what the stream has queued, in chunks.
    pub(crate) fn flush(&mut self) {
        while let Some(chunk) = self.tls.take_send(self.feed.chunk) {
            self.largest_send = self.largest_send.max(chunk.len());
            self.sends += 1;
            self.send_sizes.push(chunk.len());
            self.sent += chunk.len();
            // A peer that already hung up is the test's subject, not an error here.
            if self.sock.write_all(&chunk).is_err() {
                return;
            }
        }
    }

    /// One read of at most the next read size; feeds the stream. `Ok(false)` when nothing
    /// came (timeout); the socket's EOF goes to `socket_closed`.
    fn pump_once(&mut self) -> Result<bool, TlsFailure> {
        if self.eof {
            return Ok(false);
        }
        let size = self.feed.reads[self.turn % self.feed.reads.len()];
        let mut buf = vec![0u8; size];
        match self.sock.read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                self.tls.socket_closed()?;
                Ok(true)
            }
            Ok(n) => {
                self.turn += 1;
                self.reads += 1;
                self.read_sizes.push(n);
                self.received += n;
                let r = self.tls.receive(&buf[..n]);
                self.flush();
                r.map(|_| true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                self.eof = true;
                self.tls.socket_closed()?;
                Ok(true)
            }
            Err(e) => panic!("socket read: {e}"),
        }
    }

    /// Run the handshake to its end.
    pub(crate) fn handshake(&mut self) -> Result<(), TlsFailure> {
        let start = Instant::now();
        self.flush();
        while self.tls.is_handshaking() {
            assert!(start.elapsed() < STUCK, "handshake stuck");
            if !self.pump_once()? && self.eof {
                break;
            }
        }
        Ok(())
    }

    /// Write plaintext and send it.
    pub(crate) fn send(&mut self, plain: &[u8]) -> Result<(), TlsFailure> {
        self.tls.write(plain)?;
        self.flush();
        Ok(())
    }

    /// Read until `done` says the plaintext gathered so far is enough; returns it all.
    pub(crate) fn recv_until(
        &mut self,
        mut done: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, TlsFailure> {
        let start = Instant::now();
        let mut got = Vec::new();
        loop {
            got.extend(self.tls.read());
            if done(&got) {
                return Ok(got);
            }
            assert!(start.elapsed() < STUCK, "no answer from the peer");
            if self.eof {
                return Ok(got);
            }
            self.pump_once()?;
        }
    }

    /// Keep reading (for a late alert) until the peer closes or `wait` passes.
    pub(crate) fn drain(&mut self, wait: Duration) -> Result<(), TlsFailure> {
        let start = Instant::now();
        while !self.eof && start.elapsed() < wait {
            self.pump_once()?;
        }
        Ok(())
    }

    /// Send close_notify, then close our side and wait for the peer's close.
    pub(crate) fn close(&mut self) {
        self.tls.close();
        self.flush();
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
        let start = Instant::now();
        while !self.eof && start.elapsed() < Duration::from_secs(5) {
            if self.pump_once().is_err() {
                return;
            }
        }
    }
}
