//! The step engine: a sans-IO state machine that runs one recipe step at a time over a
//! layered connection to the modem.
//!
//! The engine never touches a port or a clock. The driver feeds it the bytes the modem
//! sent and the current [`Instant`]; the engine answers with [`Action`]s: bytes to write,
//! a time to wake up at, or the step's [`StepOutcome`]. Everything the engine saw is also
//! reported as [`Event`]s for transcripts and progress output.
//!
//! ```text
//!   driver ──bytes, now──▶ Session::feed / Session::poll ──▶ Action::Write / Wait / Done
//! ```
//!
//! # Call contract
//!
//! [`Session`] methods sort into:
//! * **getters**: [`Session::busy`], [`Session::echo`], [`Session::link`];
//! * **mutators**: [`Session::start`] begins a step (only when not [`busy`](Session::busy));
//! * **handle**: [`Session::feed`] takes bytes from the modem, whenever they arrive;
//! * **poll**: [`Session::poll`] says what to do next, and
//!   [`Session::drain_events`] hands over what happened.
//!
//! A driver runs each step so: `start(plan, now, recipe_deadline)`, then loop on
//! `poll(now)`: on [`Action::Write`] write the bytes and poll again at once; on
//! [`Action::Wait`]`(t)` read from the modem until `t` (or until bytes arrive), `feed`
//! them, and poll again; on [`Action::Done`] the step is over (drain the events). Bytes
//! read between steps are fed too: they are unsolicited lines (a `wait` step that starts
//! next sees them).
//!
//! **Time.** `now` is a monotonic [`Instant`] (never wall-clock time), never earlier than
//! the `now` of a previous call on the same session. The engine never asks to wait in the
//! past: [`Action::Wait`] carries an instant `>= now`. Waking early is harmless (poll again);
//! waking late only delays what was due. Every wait inside a step (exchange timeouts,
//! pauses, keep-alive, probes) ends no later than the step's and the recipe's deadline.
//!
//! # Layers
//!
//! * [`session`](Session): owns the AT framer and the modem's modes, routes lines;
//! * `step`: attempts, retries, `until` polls, `recover`, data sends ([`DataPlan`]);
//! * `wait`: `wait` steps, MQTT waits, background link work (keep-alive between steps);
//! * `boot`: start-up and restart detection;
//! * `timers`: one table of every wake-up;
//! * `tls`: the `tls:` step (handshake, `close_notify`) and `close_notify` before a
//!   closing command;
//! * [`link`]: socket (through the AT socket dialect), byte stream (a transform slot, where
//!   a `tls:` step puts TLS), MQTT session (told its protocol version and keep-alive by the
//!   plan).

mod boot;
mod data;
mod exchange;
mod failure;
pub mod link;
mod matcher;
mod modes;
mod plan;
mod session;
mod step;
mod timers;
mod tls;
mod wait;

pub use boot::{BOOT_GRACE, REBOOT_GRACE};
pub use failure::{Failure, LastAnswer, MqttFailure};
pub use link::mqtt;
pub use link::tls::TlsTrace;
pub use matcher::{Matcher, REGEX_SIZE_LIMIT, captures, compile};
pub use modes::Echo;
pub use plan::{
    DataPlan, MqttParams, MqttPlan, MqttWant, PlanAction, StepPlan, TlsHandshake, TlsPlan,
};
pub use session::{ECHO_QUIET, Session, UrcRule};
pub use step::{MAX_RETRY_DELAY, MIN_EXTENSION, PROBE_TIMEOUT, QUIET_GAP};
pub use timers::{Timer, TimerTable};

use std::time::{Duration, Instant};

use crate::at::line::Urc;

/// What the driver must do next.
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

/// Something the engine saw or did, for transcripts and progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command line was written.
    Sent(String),
    /// Data bytes were written after a prompt.
    SentData(usize),
    /// The echo of our command, or of data typed after a prompt.
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
    /// An MQTT application message from the broker (whatever step runs).
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
    /// Something the user should know that does not end the step (a suspected restart, an
    /// MQTT session lost between steps, pushed data that cannot be proven intact).
    Note(String),
    /// TLS on the connection: a record sent or received (type, length), the decrypted MQTT
    /// packets, the handshake's outcome, `close_notify`. Its `Display` is the transcript
    /// line; no key or session secret is ever in it.
    Tls(TlsTrace),
}

#[cfg(test)]
mod tests;
