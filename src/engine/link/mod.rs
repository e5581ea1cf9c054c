//! The layered connection below the step machine:
//!
//! ```text
//!   MqttSession  (packets, acks, keep-alive; told protocol and keep-alive by the plan)
//!       │ plaintext
//!   Stream       (a Transform slot: identity now, TLS next)
//!       │ bytes on the wire
//!   Socket       (connected, receive mode, data waiting; commands from the dialect)
//! ```
//!
//! No layer imports the step machine; the session module drives them.

pub mod mqtt;
pub mod socket;
pub mod stream;

use std::sync::Arc;
use std::time::Instant;

use crate::engine::failure::MqttFailure;
use crate::engine::plan::MqttParams;
use mqtt::{Message, MqttSession};
use socket::{Socket, SocketChange};
use stream::Stream;

/// The connection: socket, stream, MQTT session.
#[derive(Debug, Default)]
pub struct Link {
    /// The socket.
    pub socket: Socket,
    /// The byte stream over it.
    pub stream: Stream,
    /// The MQTT session over the stream.
    pub mqtt: MqttSession,
}

impl Link {
    /// Follow a change of the socket: a new connection starts a new stream and session
    /// (what the old one received stays readable until then).
    pub fn on_socket(&mut self, change: SocketChange) {
        if change == SocketChange::Opened {
            self.stream.reset();
            self.mqtt = MqttSession::new();
        }
    }

    /// Bytes received on the socket. Returns the MQTT messages they completed.
    pub fn on_received(&mut self, wire: Vec<u8>) -> Vec<Message> {
        match self.stream.open(wire) {
            Ok(plain) => self.mqtt.on_data(&plain),
            Err(e) => {
                self.mqtt.fail(MqttFailure::Garbled {
                    reason: format!(
                        "the {} transform refused the received bytes: {e}",
                        self.stream.transform_name()
                    ),
                });
                Vec::new()
            }
        }
    }

    /// Plaintext to send → the bytes for the socket.
    pub fn seal(&mut self, plain: Arc<[u8]>) -> Result<Arc<[u8]>, MqttFailure> {
        self.stream.seal(plain).map_err(|e| MqttFailure::Garbled {
            reason: format!(
                "the {} transform cannot send the data: {e}",
                self.stream.transform_name()
            ),
        })
    }

    /// Bytes went out on the socket; `session`: they opened an MQTT session.
    pub fn on_sent(&mut self, session: Option<MqttParams>, now: Instant) {
        if let Some(params) = session {
            self.mqtt.begin(params, now);
        }
        self.mqtt.on_sent(now);
    }

    /// The MQTT session runs over an open connection: it is kept alive and read in the
    /// background, whatever step runs.
    pub fn session_live(&self) -> bool {
        self.socket.connected && self.mqtt.active()
    }
}
