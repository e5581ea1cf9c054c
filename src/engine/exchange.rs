//! One command in flight: what it is for, when it times out, and which reply line ends it.

use std::time::Instant;

use super::data::Typed;
use super::failure::Failure;
use crate::at::command::{Command, Shape, second_phase};
use crate::at::line::ResultCode;

/// Why a command was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The step's own command.
    Step,
    /// The largest-send query before a data send.
    QueryMax,
    /// One chunk of the step's data send.
    Chunk,
    /// A `recover` command before a retry.
    Recover,
    /// `AT`, sent once at the end of a `wait` (or MQTT wait) that heard nothing: is the
    /// modem alive?
    Probe,
    /// One chunk of replies the MQTT protocol requires (acks, PINGREQ), sent between steps'
    /// commands.
    Background,
    /// A read of data waiting in manual receive mode.
    Read,
}

impl Purpose {
    /// True for exchanges that belong to the step (not to the link in the background).
    pub(super) fn is_step(self) -> bool {
        !matches!(self, Purpose::Background | Purpose::Read)
    }
}

/// The command in flight.
#[derive(Debug)]
pub(super) struct Exchange {
    /// The command.
    pub cmd: Command,
    /// What for.
    pub purpose: Purpose,
    /// Data to type after the prompt (taken when typed).
    pub payload: Option<Typed>,
    /// The data was typed.
    pub payload_sent: bool,
    /// When it was sent.
    pub started: Instant,
    /// When it times out (may be moved while a reply line is still arriving).
    pub deadline: Instant,
    /// The latest the deadline may be moved to.
    pub limit: Instant,
    /// Bytes received before it was sent (anything more: the modem sent something).
    pub rx_at_start: u64,
    /// A reply came: a response line, a prompt or data (its own echo and URCs are no
    /// reply).
    pub replied: bool,
    /// Its echo was seen.
    pub echo_seen: bool,
    /// The first phase ended OK (two-phase commands wait for the second).
    pub first_ok: bool,
}

/// Did a response line end the exchange?
pub(super) enum Verdict {
    /// Finished: `Ok(())` or the failure.
    Finished(Result<(), Failure>),
    /// Not yet.
    Continue,
}

/// Judge a response line (`code`: its result code, if it is one).
pub(super) fn verdict(ex: &mut Exchange, line: &str, code: Option<&ResultCode>) -> Verdict {
    let fail = |line: &str| Verdict::Finished(Err(Failure::ErrorResult { line: line.into() }));
    match ex.cmd.shape {
        Shape::Standard | Shape::Own(_) => match code {
            Some(c) if ex.cmd.ends_with(c) => {
                if c.is_failure() {
                    fail(line)
                } else {
                    Verdict::Finished(Ok(()))
                }
            }
            _ => Verdict::Continue,
        },
        Shape::BareLine => match code {
            Some(c) if c.is_failure() => fail(line),
            _ => Verdict::Finished(Ok(())),
        },
        Shape::TwoPhase(phase) => {
            if !ex.first_ok
                && let Some(c) = code.filter(|c| c.is_generic_final())
            {
                if c.is_failure() {
                    return fail(line);
                }
                ex.first_ok = true;
                return Verdict::Continue;
            }
            match second_phase(phase, line) {
                Some(true) => Verdict::Finished(Ok(())),
                Some(false) => fail(line),
                None => Verdict::Continue,
            }
        }
        Shape::Prompt => match code {
            Some(c) if c.is_failure() => fail(line),
            Some(ResultCode::SendOk | ResultCode::DataAccept(_) | ResultCode::Ok)
                if ex.payload_sent =>
            {
                Verdict::Finished(Ok(()))
            }
            // Prompt suppressed (`AT+CIPSPRT=2`) or a command without payload.
            Some(ResultCode::Ok) if ex.payload.is_none() && !ex.payload_sent => {
                Verdict::Finished(Ok(()))
            }
            _ => Verdict::Continue,
        },
    }
}

/// What the exchange is waiting for, for messages (`expect`: the step's patterns, when the
/// exchange is the step's own command).
pub(super) fn waiting_for(ex: &Exchange, expect: Option<String>) -> String {
    match ex.cmd.shape {
        Shape::Prompt if !ex.payload_sent => format!("the `> ` prompt after `{}`", ex.cmd.text),
        Shape::Prompt => "SEND OK".to_string(),
        _ if expect.is_some() => expect.unwrap_or_default(),
        Shape::BareLine => format!("the reply to `{}`", ex.cmd.text),
        Shape::TwoPhase(_) if ex.first_ok => format!("the result of `{}`", ex.cmd.text),
        _ => format!("the final result of `{}`", ex.cmd.text),
    }
}
