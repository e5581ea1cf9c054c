//! Transports: where modem bytes come from and go to. A real serial port (including Linux
//! pseudo-terminals), or a TCP socket (`tcp://host:port`, a modem behind ser2net).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A byte pipe to a modem.
pub trait Transport: Send {
    /// Wait up to `timeout` for bytes; returns how many were read, `Ok(0)` when none came
    /// in time. An error means the port is gone.
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
        self.port
            .set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(io::Error::other)?;
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
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.stream.read(buf) {
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
