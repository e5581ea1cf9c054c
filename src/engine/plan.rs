//! What one step does, fully expanded and compiled: the engine's input.

use std::sync::Arc;
use std::time::Duration;

use super::Matcher;
use crate::mqtt::{Protocol, StreamDecoder};
use crate::redact::Secrets;

/// What one step does, fully expanded (no `{{vars}}` left) and compiled.
#[derive(Debug, Clone)]
pub struct StepPlan {
    /// Name for messages.
    pub name: String,
    /// What to send.
    pub action: PlanAction,
    /// Any of these completes the step (empty: success on `OK`).
    pub expect: Vec<Matcher>,
    /// Any of these fails the attempt at once.
    pub abort: Vec<Matcher>,
    /// Poll until one of these matches (empty: no polling).
    pub until: Vec<Matcher>,
    /// Regexes with named groups applied to response lines.
    pub capture: Vec<regex::Regex>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Bound on the whole step (all attempts and polls).
    pub deadline: Option<Duration>,
    /// Extra attempts after a failed one.
    pub retries: u32,
    /// Commands sent (results ignored) before each retry.
    pub recover: Vec<String>,
    /// Bytes typed after the command's `> ` prompt.
    pub prompt_data: Option<Arc<[u8]>>,
    /// Pause before a retry.
    pub retry_delay: Duration,
    /// Factor applied to `retry_delay` after each retry.
    pub backoff: f64,
    /// Pause between `until` polls.
    pub interval: Duration,
    /// Pause before the first attempt.
    pub delay: Duration,
}

impl StepPlan {
    /// A plan that sends one command line and waits for `OK`, with defaults.
    pub fn command(line: &str, timeout: Duration) -> StepPlan {
        StepPlan {
            name: line.to_string(),
            action: PlanAction::Command(line.to_string()),
            expect: Vec::new(),
            abort: Vec::new(),
            until: Vec::new(),
            capture: Vec::new(),
            timeout,
            deadline: None,
            retries: 0,
            recover: Vec::new(),
            prompt_data: None,
            retry_delay: Duration::from_secs(1),
            backoff: 1.0,
            interval: Duration::from_secs(1),
            delay: Duration::ZERO,
        }
    }
}

/// The IO a step performs.
#[derive(Debug, Clone)]
pub enum PlanAction {
    /// Send a command line (CR is appended).
    Command(String),
    /// Send bytes through the socket (SIM7000: `AT+CIPSEND`).
    Data(DataPlan),
    /// Wait this long, handling URCs; `expect` may match any line, URCs included.
    Wait(Duration),
    /// Wait for MQTT packets from the broker, reading and acknowledging as needed.
    Mqtt(MqttPlan),
}

/// An MQTT wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttPlan {
    /// What ends the wait.
    pub want: MqttWant,
    /// Only an acknowledgement with this packet id counts.
    pub packet_id: Option<u16>,
    /// Listen this long for messages (the wait then ends successfully).
    pub duration: Option<Duration>,
    /// PINGREQ interval while waiting (default: the session's keep-alive).
    pub keep_alive: Option<Duration>,
}

/// What an MQTT wait waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttWant {
    /// One packet of this type (CONNACK, SUBACK, PUBACK…), whose result is checked.
    Packet(crate::mqtt::PacketType),
    /// Incoming PUBLISH messages: `count` of them (or as many as come in `duration`).
    Messages {
        /// How many.
        count: Option<u64>,
    },
}

/// A binary-safe send through the modem's TCP connection.
#[derive(Debug, Clone)]
pub struct DataPlan {
    /// The bytes, shared: chunks are ranges of it, never copies of the whole.
    pub payload: Arc<[u8]>,
    /// Largest chunk per send; `None`: ask the modem (`AT+CIPSEND?`), else 1460.
    pub chunk: Option<usize>,
    /// Hex mode (`AT+CIPSENDHEX=1` set by the recipe): variable-length `AT+CIPSEND`, hex
    /// text, `1A` terminator. Cannot carry a 0x1A byte.
    pub hex: bool,
    /// The payload opens an MQTT session with these parameters (its first packet is a
    /// CONNECT): the engine then reads the broker's bytes with this protocol version and
    /// keeps the session alive at this interval.
    pub session: Option<MqttParams>,
    /// The run's secrets: the chunks never split one (each occurrence in the bytes sent goes
    /// out within one chunk when it fits), so no output shows a piece of a secret at a chunk
    /// boundary.
    pub secrets: Secrets,
}

impl DataPlan {
    /// A plan sending `payload` with default chunking, in binary mode, opening no session.
    pub fn new(payload: impl Into<Arc<[u8]>>) -> DataPlan {
        DataPlan {
            payload: payload.into(),
            chunk: None,
            hex: false,
            session: None,
            secrets: Secrets::new(),
        }
    }
}

/// What the engine needs to know about an MQTT session it keeps alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttParams {
    /// Protocol version (decides how the broker's packets decode).
    pub protocol: Protocol,
    /// Keep-alive interval (`None`: 0, no PINGREQ).
    pub keep_alive: Option<Duration>,
}

impl MqttParams {
    /// The parameters of the CONNECT that starts `bytes`, if it starts with one (decoded
    /// with the codec; a payload that is not MQTT gives `None`). For the job to call at plan
    /// time, once, on the bytes it is about to send.
    pub fn of_connect(bytes: &[u8]) -> Option<MqttParams> {
        // Any version decodes a CONNECT's fixed part; the packet names its own version.
        let mut dec = StreamDecoder::new(Protocol::V311);
        dec.push(bytes.get(..bytes.len().min(1 << 16))?);
        match dec.next_packet() {
            Ok(Some(crate::mqtt::Packet::Connect(c))) => Some(MqttParams {
                protocol: c.protocol,
                keep_alive: (c.keep_alive > 0)
                    .then(|| Duration::from_secs(u64::from(c.keep_alive))),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Connect, Packet};

    #[test]
    fn params_of_a_connect() {
        for protocol in [Protocol::V31, Protocol::V311, Protocol::V5] {
            let mut c = Connect::new(protocol, "dev");
            c.keep_alive = 30;
            let mut bytes = Packet::Connect(c).encode(protocol).unwrap();
            bytes.extend_from_slice(&[0x82, 0x05]); // a SUBSCRIBE follows
            assert_eq!(
                MqttParams::of_connect(&bytes),
                Some(MqttParams {
                    protocol,
                    keep_alive: Some(Duration::from_secs(30))
                })
            );
        }
        assert_eq!(MqttParams::of_connect(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(MqttParams::of_connect(&[0x30, 0x02, 0, 0]), None);
        assert_eq!(MqttParams::of_connect(&[]), None);
    }
}
