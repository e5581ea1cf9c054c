//! Transports: where modem bytes come from and go to. A real serial port (including Linux
//! pseudo-terminals), or a TCP socket (`tcp://host:port`, a modem behind ser2net).
//!
//! Opening says what went wrong in terms a bench operator can act on: a path that does not
//! exist, a path that is no serial device (a regular file, a FIFO, `/dev/null`: what it is and
//! why it cannot be a modem), a port in use by another program (which one, where the system
//! tells), a TCP peer that does not answer within the tightest of the connect timeout and the
//! run's deadline.

mod serial;
mod tcp;

use std::io;
use std::time::{Duration, Instant};

pub use serial::SerialTransport;
pub use tcp::TcpTransport;

/// Longest wait for a TCP connection when the run's deadline allows more.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
        /// What the OS said, and what to try.
        reason: String,
    },
    /// In use by another program.
    #[error("{port}: is in use by another program ({holder}); stop it or use another port")]
    Busy {
        /// The port.
        port: String,
        /// Who holds it (`pid 4242 minicom`), or what the OS said when that is unknown.
        holder: String,
    },
    /// The path exists but cannot be a modem.
    #[error("{port}: {what}; a modem is a serial device such as /dev/ttyUSB2 (see `sim7k ports`)")]
    NotSerial {
        /// The port.
        port: String,
        /// What the path is: `is a regular file`, `is not a serial device (…)`.
        what: String,
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

/// Open `spec`: `tcp://host:port` or a serial device path. Every wait while opening (name
/// resolution, the TCP connect) ends by `deadline` (the run's), and never takes longer than
/// [`CONNECT_TIMEOUT`].
pub fn open(
    spec: &str,
    baud: u32,
    deadline: Option<Instant>,
) -> Result<Box<dyn Transport>, OpenError> {
    if let Some(addr) = spec.strip_prefix("tcp://") {
        return Ok(Box::new(TcpTransport::connect_by(addr, deadline)?));
    }
    Ok(Box::new(SerialTransport::open(spec, baud)?))
}

#[cfg(test)]
mod tests;
