//! The socket's state as the engine follows it: connected or not, receive mode, length
//! headers, hex sends, data waiting. The commands and URCs themselves are the dialect's
//! ([`crate::at::dialect`]).

use crate::at::dialect::{RxMode, SocketDialect, SocketUrc, default_dialect};
use crate::at::effects::Effect;

/// The TCP socket through the modem.
#[derive(Debug, Clone, Copy)]
pub struct Socket {
    /// The modem family's socket commands.
    pub dialect: &'static dyn SocketDialect,
    /// A connection is open (between the open's success and `CLOSED`/close/shut).
    pub connected: bool,
    /// Receive mode in force.
    pub rx_mode: RxMode,
    /// Length headers on pushed data (SIM7000 `AT+CIPHEAD=1`).
    pub header: bool,
    /// Hex-mode sends in force (SIM7000 `AT+CIPSENDHEX=1`).
    pub hex: bool,
    /// Manual receive: the modem said data is waiting.
    pub rx_waiting: bool,
}

impl Default for Socket {
    fn default() -> Self {
        Socket::new(default_dialect())
    }
}

/// What a change to the socket means for the rest of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketChange {
    /// Nothing beyond the socket's own state.
    None,
    /// A new connection: the byte stream and the MQTT session start afresh.
    Opened,
    /// The connection is gone.
    Closed,
}

impl Socket {
    /// A socket of `dialect`, closed, in the module's power-on modes.
    pub fn new(dialect: &'static dyn SocketDialect) -> Socket {
        Socket {
            dialect,
            connected: false,
            rx_mode: RxMode::Push,
            header: false,
            hex: false,
            rx_waiting: false,
        }
    }

    /// Follow a successful command's effect.
    pub fn apply(&mut self, effect: Effect) -> SocketChange {
        match effect {
            Effect::Receive(m) => self.rx_mode = m,
            Effect::DataHeader(on) => self.header = on,
            Effect::HexSend(on) => self.hex = on,
            Effect::SocketOpen => {
                self.connected = true;
                self.rx_waiting = false;
                return SocketChange::Opened;
            }
            Effect::SocketClose | Effect::BearerDown => return self.close(true),
            Effect::Reboot | Effect::FactoryDefaults => {
                // The module starts over: power-on modes, no connection.
                let was = self.connected;
                *self = Socket::new(self.dialect);
                if was {
                    return SocketChange::Closed;
                }
            }
            Effect::Echo(_) | Effect::Verbose(_) => {}
        }
        SocketChange::None
    }

    /// Follow an unsolicited line; `None` when it says nothing about the socket.
    pub fn on_urc(&mut self, line: &str) -> Option<(SocketUrc, SocketChange)> {
        let urc = self.dialect.urc(line)?;
        let change = match urc {
            SocketUrc::DataWaiting => {
                self.rx_waiting = true;
                SocketChange::None
            }
            // Data the module received before the peer closed can still be read.
            SocketUrc::Closed => self.close(false),
            SocketUrc::BearerLost => self.close(true),
        };
        Some((urc, change))
    }

    fn close(&mut self, drop_data: bool) -> SocketChange {
        let was = self.connected;
        self.connected = false;
        if drop_data {
            self.rx_waiting = false;
        }
        if was {
            SocketChange::Closed
        } else {
            SocketChange::None
        }
    }

    /// Received data is pushed with nothing but its own length to frame it.
    pub fn raw_push(&self) -> bool {
        self.connected && self.rx_mode == RxMode::Push && !self.header
    }
}
