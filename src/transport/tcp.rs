//! Modems behind a TCP socket: `tcp://host:port` (ser2net, a networked board).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{CONNECT_TIMEOUT, OpenError, Transport};

/// A modem behind a TCP socket (ser2net, a networked board).
pub struct TcpTransport {
    stream: TcpStream,
    name: String,
}

impl TcpTransport {
    /// Connect to `host:port` within [`CONNECT_TIMEOUT`].
    pub fn connect(addr: &str) -> Result<TcpTransport, OpenError> {
        TcpTransport::connect_by(addr, None)
    }

    /// Connect to `host:port`, name resolution included, within [`CONNECT_TIMEOUT`] and by
    /// `deadline` (the run's), whichever comes first.
    pub fn connect_by(addr: &str, deadline: Option<Instant>) -> Result<TcpTransport, OpenError> {
        let port = format!("tcp://{addr}");
        let other = |reason: String| OpenError::Other {
            port: port.clone(),
            reason,
        };
        let start = Instant::now();
        let own = crate::util::time::later(start, CONNECT_TIMEOUT);
        let end = crate::util::time::earliest(Some(own), deadline).unwrap_or(own);
        let bound = end.saturating_duration_since(start);
        let bounded_by = if end < own {
            format!(
                "{} (the run's deadline)",
                humantime::format_duration(round_ms(bound))
            )
        } else {
            humantime::format_duration(CONNECT_TIMEOUT).to_string()
        };
        let addrs = resolve(addr, end).map_err(|e| match e {
            Resolve::Failed(e) => other(e.to_string()),
            Resolve::TooSlow => other(format!("the name did not resolve within {bounded_by}")),
        })?;
        let mut last = None;
        for a in addrs {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = Some(io::Error::new(io::ErrorKind::TimedOut, "no time left"));
                break;
            }
            match TcpStream::connect_timeout(&a, left) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    // A stalled peer must not block a run forever.
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
                    return Ok(TcpTransport { stream, name: port });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => OpenError::Missing {
                port: port.clone(),
                reason: format!("{e}; is the serial server (ser2net) running on that port?"),
            },
            Some(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                other(format!("no answer within {bounded_by}"))
            }
            Some(e) => other(e.to_string()),
            None => other("the address resolved to nothing".into()),
        })
    }
}

/// `d` to the nearest tenth of a second, for messages.
fn round_ms(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms.saturating_add(50) / 100 * 100)
}

enum Resolve {
    Failed(io::Error),
    TooSlow,
}

/// Resolve `addr` by `end`. A literal address needs no lookup; a name is looked up on a
/// helper thread, so a slow resolver cannot hold the run past its deadline (the thread ends
/// by itself when the lookup returns).
fn resolve(addr: &str, end: Instant) -> Result<Vec<SocketAddr>, Resolve> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let (tx, rx) = mpsc::channel();
    let name = addr.to_string();
    std::thread::Builder::new()
        .name("sim7k-resolve".into())
        .spawn(move || {
            let result = name.to_socket_addrs().map(|a| a.collect::<Vec<_>>());
            let _ = tx.send(result);
        })
        .map_err(Resolve::Failed)?;
    match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        Ok(r) => r.map_err(Resolve::Failed),
        Err(_) => Err(Resolve::TooSlow),
    }
}

impl Transport for TcpTransport {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // std refuses a zero read timeout: poll without waiting through a non-blocking read.
        let poll = timeout.is_zero();
        if poll {
            self.stream.set_nonblocking(true)?;
        } else {
            self.stream.set_read_timeout(Some(timeout))?;
        }
        let result = self.stream.read(buf);
        if poll {
            self.stream.set_nonblocking(false)?;
        }
        match result {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection was closed",
            )),
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.stream, bytes)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
