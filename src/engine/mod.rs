//! The step engine: a sans-IO state machine that runs one recipe step at a time.
//!
//! The engine never touches a port or a clock. The runner feeds it the bytes the modem
//! sent and the current [`Instant`]; the engine answers with [`Action`]s: bytes to write,
//! a time to wake up at, or the step's [`StepOutcome`]. Everything the engine saw is also
//! reported as [`Event`]s for transcripts and progress output.
//!
//! ```text
//!   runner ──bytes, now──▶ Session::feed / Session::poll ──▶ Action::Write / Wait / Done
//! ```

mod matcher;
pub mod mqtt;
mod session;

pub use matcher::{Matcher, REGEX_SIZE_LIMIT, captures, compile};
pub use session::{Echo, Session, UrcRule};

use std::time::{Duration, Instant};

use crate::at::line::Urc;

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
    pub prompt_data: Option<Vec<u8>>,
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
    /// Send bytes through `AT+CIPSEND`.
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
    /// PINGREQ interval while waiting (default: the keep-alive of our CONNECT).
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
    /// The bytes.
    pub payload: Vec<u8>,
    /// Largest chunk per `AT+CIPSEND`; `None`: ask the modem (`AT+CIPSEND?`), else 1460.
    pub chunk: Option<usize>,
    /// Hex mode (`AT+CIPSENDHEX=1` set by the recipe): variable-length `AT+CIPSEND`, hex
    /// text, `1A` terminator. Cannot carry a 0x1A byte.
    pub hex: bool,
}

/// What the runner must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the modem.
    Write(Vec<u8>),
    /// Read from the modem until this instant (or until bytes arrive), then feed and poll.
    Wait(Instant),
    /// The step is over.
    Done(StepOutcome),
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// `None` on success.
    pub failure: Option<Failure>,
    /// Attempts made (1 when the first one passed).
    pub attempts: u32,
    /// Polls made by an `until` step.
    pub polls: u32,
    /// Captured `(name, value)` pairs of the successful attempt.
    pub captures: Vec<(String, String)>,
    /// Response lines of the last attempt (no echoes, no URCs).
    pub lines: Vec<String>,
    /// Time from the step's start to its end.
    pub elapsed: Duration,
}

impl StepOutcome {
    /// True when the step passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Why a step (or one attempt of it) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing conclusive arrived within the attempt's timeout.
    Timeout {
        /// How long the attempt waited.
        waited: Duration,
        /// What it was waiting for.
        waiting_for: String,
    },
    /// The step's or the recipe's deadline passed.
    Deadline {
        /// What it was waiting for.
        waiting_for: String,
    },
    /// The modem answered with an error result (`ERROR`, `+CME ERROR: …`, `SEND FAIL`…).
    ErrorResult {
        /// The result line.
        line: String,
    },
    /// An abort pattern matched.
    Aborted {
        /// The pattern.
        pattern: String,
        /// The line it matched.
        line: String,
    },
    /// The command finished but no line matched `expect`.
    NotMatched {
        /// The patterns.
        expected: Vec<String>,
    },
    /// `until` never matched within the step's deadline.
    UntilNotMet {
        /// The patterns.
        patterns: Vec<String>,
        /// How many times the command was sent.
        polls: u32,
    },
    /// A URC handler with `action: fail` matched.
    Urc {
        /// The URC line.
        line: String,
        /// The handler's message.
        message: String,
    },
    /// The modem restarted mid-run (`SMS Ready`/`RDY` after the start-up).
    Rebooted {
        /// The URC line.
        line: String,
    },
    /// A `send_data` step cannot be done as asked.
    Data {
        /// Why.
        message: String,
    },
    /// A captured value failed its `validate:` check (the message shows the value).
    Validation {
        /// What failed.
        message: String,
    },
    /// The MQTT session failed: refused CONNECT/SUBSCRIBE, dead broker, garbled stream.
    Mqtt {
        /// Why.
        message: String,
    },
}

impl Failure {
    /// True for timeouts and deadlines (exit code 3).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::Timeout { .. } | Failure::Deadline { .. })
    }

    /// True for failures that end the run even for `on_fail: continue` steps and are not
    /// retried (URC handlers, reboots).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Failure::Urc { .. } | Failure::Rebooted { .. })
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout {
                waited,
                waiting_for,
            } => write!(
                f,
                "timed out after {} waiting for {waiting_for}",
                humantime::format_duration(round_ms(*waited))
            ),
            Failure::Deadline { waiting_for } => {
                write!(f, "deadline reached while waiting for {waiting_for}")
            }
            Failure::ErrorResult { line } => write!(f, "modem answered `{line}`"),
            Failure::Aborted { pattern, line } => {
                write!(f, "abort pattern `{pattern}` matched `{line}`")
            }
            Failure::NotMatched { expected } => write!(
                f,
                "the command finished but no line matched {}",
                list(expected)
            ),
            Failure::UntilNotMet { patterns, polls } => write!(
                f,
                "no line matched {} after {polls} poll{}",
                list(patterns),
                if *polls == 1 { "" } else { "s" }
            ),
            Failure::Urc { line, message } => write!(f, "{message} (`{line}`)"),
            Failure::Rebooted { line } => {
                write!(f, "the modem restarted mid-run (`{line}`)")
            }
            Failure::Data { message }
            | Failure::Validation { message }
            | Failure::Mqtt { message } => f.write_str(message),
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Something the engine saw or did, for transcripts and progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command line was written.
    Sent(String),
    /// Data bytes were written after a prompt.
    SentData(usize),
    /// The echo of our command.
    Echo(String),
    /// A line of the reply to the command in flight.
    Response(String),
    /// A line nobody asked for (a URC, or a stray line between commands).
    Unsolicited {
        /// The line.
        line: String,
        /// What kind of URC, when known.
        urc: Option<Urc>,
    },
    /// The `> ` prompt.
    Prompt,
    /// A block of received TCP data (`+IPD`, `+CIPRXGET: 2`, `+RECEIVE`, pushed MQTT).
    Data(Vec<u8>),
    /// An MQTT application message from the broker.
    Message(mqtt::Message),
    /// An attempt failed and will be retried.
    Retry {
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Why.
        failure: Failure,
    },
    /// An `until` poll did not match yet.
    Poll {
        /// Polls so far.
        polls: u32,
    },
    /// The modem booted (power-on sequence).
    Boot(String),
}

#[cfg(test)]
mod tests;
