//! A serial client for the emulator integration tests: opens the emulated port with the
//! serialport crate exactly like sim7k (or any host program) would.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serialport::TTYPort;

/// Generous hang guard for every wait (never a timing assertion).
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// Render bytes readably in assertion messages.
pub(crate) fn show(b: &[u8]) -> String {
    sim7k::emulator::escape(b)
}

/// An open serial port plus what has been read but not consumed yet.
pub(crate) struct Client {
    pub port: TTYPort,
    pub buf: Vec<u8>,
}

impl Client {
    /// Open the port (115200 8N1, 100 ms read timeout).
    pub(crate) fn open(path: &Path) -> Client {
        let port = serialport::new(path.to_string_lossy(), 115_200)
            .timeout(Duration::from_millis(100))
            .open_native()
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Client {
            port,
            buf: Vec::new(),
        }
    }

    /// Write bytes.
    pub(crate) fn send(&mut self, b: &[u8]) {
        self.port.write_all(b).expect("write to the emulated port");
        self.port.flush().expect("flush");
    }

    /// Read what is available within `d`.
    pub(crate) fn pump(&mut self, d: Duration) {
        let end = Instant::now() + d;
        let mut chunk = [0u8; 4096];
        while Instant::now() < end {
            match self.port.read(&mut chunk) {
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Read until `pat` appears; return everything up to and including it (consumed).
    pub(crate) fn until(&mut self, pat: &[u8]) -> Vec<u8> {
        let end = Instant::now() + GUARD;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(i) = self.buf.windows(pat.len()).position(|w| w == pat) {
                let rest = self.buf.split_off(i + pat.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            assert!(
                Instant::now() < end,
                "hang guard: waited for {} but got {}",
                show(pat),
                show(&self.buf)
            );
            match self.port.read(&mut chunk) {
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Read exactly `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Vec<u8> {
        let end = Instant::now() + GUARD;
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            assert!(
                Instant::now() < end,
                "hang guard: wanted {n} bytes, have {}",
                show(&self.buf)
            );
            match self.port.read(&mut chunk) {
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Send `line\r` and read up to and including `end`; returns that text.
    pub(crate) fn cmd(&mut self, line: &str, end: &str) -> String {
        self.send(format!("{line}\r").as_bytes());
        String::from_utf8_lossy(&self.until(end.as_bytes())).into_owned()
    }

    /// Send `line\r` and expect exactly `want` back (echo off), waiting for all of it.
    pub(crate) fn expect(&mut self, line: &str, want: &[u8]) {
        self.send(format!("{line}\r").as_bytes());
        let got = self.take(want.len());
        assert_eq!(show(&got), show(want), "after {line:?}");
    }
}

/// A temporary directory removed on drop.
pub(crate) struct Dir(pub std::path::PathBuf);

impl Dir {
    pub(crate) fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sim7k-emu-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Dir(p)
    }
    pub(crate) fn join(&self, s: &str) -> std::path::PathBuf {
        self.0.join(s)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP echo server on loopback (one thread per connection).
pub(crate) fn echo_server() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                loop {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&b[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}
