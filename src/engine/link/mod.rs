//! The layered connection below the step machine:
//!
//! ```text
//!   MqttSession  (packets, acks, keep-alive; told protocol and keep-alive by the plan)
//!       │ plaintext
//!   Stream       (a Transform slot: identity, or TLS after a recipe's `tls:` step)
//!       │ bytes on the wire
//!   Socket       (connected, receive mode, data waiting; commands from the dialect)
//! ```
//!
//! No layer imports the step machine; the session module drives them.

pub mod mqtt;
pub mod socket;
pub mod stream;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use crate::engine::failure::MqttFailure;
use crate::engine::plan::MqttParams;
use mqtt::{Message, MqttSession};
use socket::{Socket, SocketChange};
use stream::{Stream, TransformError};

fn mqtt_failure(e: TransformError, name: &str, what: &str) -> MqttFailure {
    match e {
        TransformError::Tls(t) => MqttFailure::Tls(t),
        TransformError::Other(reason) => MqttFailure::Garbled {
            reason: format!("the {name} transform {what}: {reason}"),
        },
    }
}

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
            Ok(plain) if plain.is_empty() => Vec::new(),
            Ok(plain) => self.mqtt.on_data(&plain),
            Err(e) => {
                let name = self.stream.transform_name();
                self.mqtt
                    .fail(mqtt_failure(e, name, "refused the received bytes"));
                Vec::new()
            }
        }
    }

    /// Plaintext to send → the bytes for the socket.
    pub fn seal(&mut self, plain: Arc<[u8]>) -> Result<Arc<[u8]>, MqttFailure> {
        let name = self.stream.transform_name();
        self.stream
            .seal(plain)
            .map_err(|e| mqtt_failure(e, name, "cannot send the data"))
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

    /// The link works in the background (reads, replies, TLS's own bytes): an MQTT
    /// session runs, or TLS does.
    pub fn background_live(&self) -> bool {
        self.socket.connected && (self.mqtt.active() || self.stream.is_tls())
    }
}
