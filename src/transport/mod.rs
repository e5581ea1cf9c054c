//! Transports: where modem bytes come from and go to. A real serial port (including Linux
//! pseudo-terminals), or a TCP socket (`tcp://host:port`, a modem behind ser2net).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A byte pipe to a modem.
pub trait Transport: Send {
    /// Wait up to `timeout` for bytes; returns how many were read, `Ok(0)` when none came
    /// in time. A zero `timeout` only takes what is already there, without waiting. An
    /// error means the port is gone.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Write all bytes.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// What this transport is connected to (for messages).
    fn describe(&self) -> String;
}

/// Why a port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No such device.
    #[error("{port}: no such port ({reason})")]
    Missing {
        /// The port.
        port: String,
        /// What the OS said.
        reason: String,
    },
    /// In use by another program.
    #[error("{port}: port is busy ({reason}); is another program using it?")]
    Busy {
        /// The port.
        port: String,
        /// What the OS said.
        reason: String,
    },
    /// Anything else.
    #[error("{port}: cannot open ({reason})")]
    Other {
        /// The port.
        port: String,
        /// What the OS said.
        reason: String,
    },
}

/// Open `spec`: `tcp://host:port` or a serial device path.
pub fn open(spec: &str, baud: u32) -> Result<Box<dyn Transport>, OpenError> {
    if let Some(addr) = spec.strip_prefix("tcp://") {
        return Ok(Box::new(TcpTransport::connect(addr)?));
    }
    Ok(Box::new(SerialTransport::open(spec, baud)?))
}

/// A serial port (`/dev/ttyUSB2`, a pseudo-terminal, …) through the serialport crate.
pub struct SerialTransport {
    port: serialport::TTYPort,
    name: String,
}

impl SerialTransport {
    /// Open a serial device exclusively, 8N1, no flow control. Modem control lines are
    /// left alone (their ioctls fail on pseudo-terminals).
    pub fn open(path: &str, baud: u32) -> Result<SerialTransport, OpenError> {
        let port = serialport::new(path, baud)
            .timeout(Duration::from_millis(100))
            .open_native()
            .map_err(|e| classify_open_error(path, e))?;
        Ok(SerialTransport {
            port,
            name: path.to_string(),
        })
    }
}

fn classify_open_error(path: &str, e: serialport::Error) -> OpenError {
    let reason = e.to_string();
    let port = path.to_string();
    let lower = reason.to_lowercase();
    match e.kind() {
        serialport::ErrorKind::NoDevice => OpenError::Missing { port, reason },
        serialport::ErrorKind::Io(io::ErrorKind::NotFound) => OpenError::Missing { port, reason },
        _ if lower.contains("lock") || lower.contains("busy") => OpenError::Busy { port, reason },
        serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => OpenError::Other {
            port,
            reason: format!("{reason}; is your user in the `dialout` group?"),
        },
        _ => OpenError::Other { port, reason },
    }
}

impl Transport for SerialTransport {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        use serialport::SerialPort;
        // A zero timeout polls without waiting (ppoll with a zero timespec).
        self.port.set_timeout(timeout).map_err(io::Error::other)?;
        match self.port.read(buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the port reported end of file",
            )),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        use serialport::SerialPort;
        let _ = self.port.set_timeout(Duration::from_secs(5));
        Write::write_all(&mut self.port, bytes)?;
        Write::flush(&mut self.port)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// A modem behind a TCP socket (ser2net, a networked board).
pub struct TcpTransport {
    stream: TcpStream,
    name: String,
}

impl TcpTransport {
    /// Connect to `host:port` (10 s connect timeout).
    pub fn connect(addr: &str) -> Result<TcpTransport, OpenError> {
        let port = format!("tcp://{addr}");
        let other = |reason: String| OpenError::Other {
            port: port.clone(),
            reason,
        };
        let addrs: Vec<_> = addr
            .to_socket_addrs()
            .map_err(|e| other(e.to_string()))?
            .collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
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
                reason: e.to_string(),
            },
            Some(e) => other(e.to_string()),
            None => other("the address resolved to nothing".into()),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serialport::SerialPort;
    use std::net::TcpListener;

    /// Read with a zero timeout until bytes come (hang guard: a few seconds of retries).
    fn poll_until_bytes(t: &mut dyn Transport) -> Vec<u8> {
        let mut buf = [0u8; 64];
        for _ in 0..500 {
            match t.read_timeout(&mut buf, Duration::ZERO) {
                Ok(0) => std::thread::sleep(Duration::from_millis(10)),
                Ok(n) => return buf[..n].to_vec(),
                Err(e) => panic!("zero-timeout read failed: {e}"),
            }
        }
        panic!("no bytes arrived");
    }

    #[test]
    fn tcp_zero_timeout_polls_and_blocking_reads_still_work() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut t = TcpTransport::connect(&addr).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        // Nothing there: no error (std refuses a zero read timeout), no bytes.
        assert_eq!(t.read_timeout(&mut buf, Duration::ZERO).unwrap(), 0);
        peer.write_all(b"OK\r\n").unwrap();
        assert_eq!(poll_until_bytes(&mut t), b"OK\r\n");
        // The socket is blocking again: a timed read waits for the next bytes.
        peer.write_all(b"RDY\r\n").unwrap();
        let n = t.read_timeout(&mut buf, Duration::from_secs(10)).unwrap();
        assert_eq!(&buf[..n], b"RDY\r\n");
        drop(peer);
        let mut closed = false;
        for _ in 0..500 {
            match t.read_timeout(&mut buf, Duration::ZERO) {
                Ok(0) => std::thread::sleep(Duration::from_millis(10)),
                Ok(_) => panic!("bytes after close"),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
                    closed = true;
                    break;
                }
            }
        }
        assert!(closed, "the closed connection was not reported");
    }

    #[test]
    fn serial_zero_timeout_polls() {
        let (mut master, slave) = serialport::TTYPort::pair().unwrap();
        let name = slave.name().unwrap();
        drop(slave);
        let mut t = SerialTransport::open(&name, 115_200).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(t.read_timeout(&mut buf, Duration::ZERO).unwrap(), 0);
        master.write_all(b"OK\r\n").unwrap();
        assert_eq!(poll_until_bytes(&mut t), b"OK\r\n");
    }
}
