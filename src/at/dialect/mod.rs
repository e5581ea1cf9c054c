//! The socket dialect seam: how one modem family opens a TCP socket, sends N bytes, reads,
//! closes, and which of its lines mean "data waiting" or "closed".
//!
//! The engine speaks to the socket only through [`SocketDialect`]; the SIM7000's `AT+CIP*`
//! toolkit ([`Sim7000Cip`]) is the first implementation. A second family (SIM7080's
//! `AT+CAOPEN/CASEND/CARECV`, Quectel's `AT+QIOPEN/QISEND/QIRD`) is a new file here
//! implementing the trait, plus emulator support.

mod sim7000;

pub use sim7000::{RxGet, Sim7000Cip, parse_rxget};

use super::effects::Effect;
use super::split::Part;

/// How received TCP data reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RxMode {
    /// Pushed to the UART as it arrives (SIM7000: `AT+CIPRXGET=0`, the default), with or
    /// without a length header.
    #[default]
    Push,
    /// Kept by the module until the host reads it (SIM7000: `AT+CIPRXGET=1`).
    Manual,
}

/// What an unsolicited line means for the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketUrc {
    /// Data is waiting to be read (manual receive).
    DataWaiting,
    /// The peer closed the connection.
    Closed,
    /// The network released the bearer (PDP context): every socket is gone.
    BearerLost,
}

/// The header of a read reply: how many bytes follow now and how many stay buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadHeader {
    /// The bytes follow as one line of hex text (else raw).
    pub hex: bool,
    /// Bytes that follow now.
    pub len: usize,
    /// Bytes still buffered in the module.
    pub remaining: usize,
}

/// A line of modem output that announces length-framed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataHeader {
    /// This many raw bytes follow the line.
    Raw(usize),
    /// The next line is hex text.
    HexLine,
}

/// What a socket status query reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    /// Nothing is set up: no bearer, no socket (the module's power-on state).
    Initial,
    /// A connection is open.
    Connected,
    /// Anything else (bearer up, connecting, closed, …).
    Other,
}

/// One modem family's socket commands and messages. Implementations are stateless; the
/// engine keeps the socket's state (`engine::link::socket`).
pub trait SocketDialect: std::fmt::Debug + Sync {
    /// A short name for messages (`SIM7000 AT+CIP`).
    fn name(&self) -> &'static str;

    /// The command that sends exactly `len` bytes typed after its `> ` prompt (binary-safe).
    fn send_fixed(&self, len: usize) -> String;
    /// A variable-length send in hex mode: the command and the text to type after the
    /// prompt (hex of `bytes` and the terminator). `None` when the family has no hex mode.
    fn send_hex(&self, bytes: &[u8]) -> Option<(String, Vec<u8>)>;
    /// Largest [`send_fixed`](Self::send_fixed) block when the module was not asked.
    fn max_send(&self) -> usize;
    /// Largest hex-mode block, in bytes before hex encoding.
    fn max_hex_send(&self) -> usize;
    /// The query for the largest send block, if the family has one.
    fn max_send_query(&self) -> Option<&'static str>;
    /// The size in the query's answer line.
    fn parse_max_send(&self, line: &str) -> Option<usize>;

    /// The command that reads up to `max` bytes in manual receive mode.
    fn read(&self, max: usize) -> String;
    /// Largest read.
    fn max_read(&self) -> usize;
    /// The header line of a read's reply.
    fn parse_read(&self, line: &str) -> Option<ReadHeader>;

    /// A complete line that announces length-framed data.
    fn data_header(&self, line: &[u8]) -> Option<DataHeader>;
    /// A header with no line end (data follows directly), checked on the line being
    /// assembled: the announced length.
    fn inline_header(&self, partial: &[u8]) -> Option<usize>;

    /// What an unsolicited line means for the socket.
    fn urc(&self, line: &str) -> Option<SocketUrc>;
    /// What one command of a line does to the socket (open, close, receive mode…).
    fn effect(&self, part: &Part) -> Option<Effect>;
    /// The socket state in a reply line to a status query, if it is one.
    fn state(&self, line: &str) -> Option<SocketState>;
}

/// The dialect sim7k uses (the SIM7000 `AT+CIP*` toolkit).
pub fn default_dialect() -> &'static dyn SocketDialect {
    &Sim7000Cip
}
