//! What a command line sent to the modem makes the modem answer: its response prefix and
//! the shape of its reply (SIM7000 Series AT Command Manual V1.06 §8.2, TCPIP Application
//! Note V1.01; see docs/sim7000.md), what it changes ([`Command::effects`]) and whether it
//! prompts for data ([`prompts_for_data`]).

use super::dialect::{Sim7000Cip, SocketDialect};
use super::effects::{Effect, effects_of};
use super::line::ResultCode;
use super::split::{Form, Part, split};

/// How the SIM7000 ends its reply to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Information lines, then `OK` or an error result.
    Standard,
    /// One bare information line and **no** `OK` (`AT+CIFSR` prints only the IP).
    BareLine,
    /// `OK` (or an error) now, then a second result later: `AT+CIPSTART` (`CONNECT OK`,
    /// `CONNECT FAIL`, `ALREADY CONNECT`), `AT+CIPSTATUS` (`STATE: ...`).
    TwoPhase(SecondPhase),
    /// A command-specific result instead of `OK`: `SHUT OK`, `CLOSE OK`.
    Own(OwnResult),
    /// A `> ` prompt for data, then a send result (`AT+CIPSEND`, `AT+SMPUB`).
    Prompt,
}

/// The second result of a two-phase command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondPhase {
    /// `CONNECT OK` / `CONNECT` (transparent) / `CONNECT FAIL` / `ALREADY CONNECT` /
    /// `CLOSE OK` (TLS handshake failure).
    Connect,
    /// `STATE: <state>`.
    State,
}

/// The result that replaces `OK` for some commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnResult {
    /// `SHUT OK`
    Shut,
    /// `CLOSE OK`
    Close,
}

/// A command line as sent, with what its reply will look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The line as sent, without CR.
    pub text: String,
    /// The prefix of its own information lines, e.g. `+CSQ:` for `AT+CSQ`. Lines with this
    /// prefix are response lines even when they look like URCs (`+CPIN: READY`).
    pub prefix: Option<String>,
    /// The reply's shape.
    pub shape: Shape,
    /// The line's commands ([`split`]); empty when the line is not valid AT syntax.
    pub parts: Vec<Part>,
}

impl Command {
    /// Parse a command line.
    pub fn parse(text: &str) -> Command {
        let text = text.trim_end_matches(['\r', '\n']).to_string();
        let parts = split(&text).unwrap_or_default();
        let prefix = parts
            .first()
            .filter(|p| p.is_extended())
            .map(|p| format!("{}:", p.name));
        let shape = match parts.as_slice() {
            // `AT+CIFSR;E0` and other chained lines end with the final code of the last part.
            [one] => shape_of(one),
            _ => Shape::Standard,
        };
        Command {
            text,
            prefix,
            shape,
            parts,
        }
    }

    /// What this line changes in the module when it succeeds, in order (echo, result
    /// format, receive mode, hex sends, socket, reset), as the SIM7000 `AT+CIP` dialect
    /// understands socket commands.
    pub fn effects(&self) -> Vec<Effect> {
        self.effects_in(&Sim7000Cip)
    }

    /// [`effects`](Self::effects) with another socket dialect.
    pub fn effects_in(&self, dialect: &dyn SocketDialect) -> Vec<Effect> {
        effects_of(&self.parts, dialect)
    }

    /// True when the modem answers this line with a `> ` prompt for data (see
    /// [`prompts_for_data`]).
    pub fn prompts(&self) -> bool {
        self.shape == Shape::Prompt
    }

    /// True when `line` is this command's own information line (prefix match).
    pub fn owns(&self, line: &str) -> bool {
        match &self.prefix {
            Some(p) => line.trim_start().to_ascii_uppercase().starts_with(p),
            None => false,
        }
    }

    /// True when `line` is the echo of this command.
    pub fn is_echo(&self, line: &str) -> bool {
        line.trim().eq_ignore_ascii_case(self.text.trim())
    }

    /// Does this result code end the first (or only) phase of the reply?
    pub fn ends_with(&self, code: &ResultCode) -> bool {
        match self.shape {
            Shape::Standard | Shape::BareLine | Shape::TwoPhase(_) => code.is_generic_final(),
            Shape::Own(OwnResult::Shut) => {
                matches!(code, ResultCode::ShutOk) || code.is_generic_final()
            }
            Shape::Own(OwnResult::Close) => {
                matches!(code, ResultCode::CloseOk) || code.is_generic_final()
            }
            Shape::Prompt => code.is_generic_final() || code.is_failure(),
        }
    }
}

/// The one list of commands that answer with a `> ` prompt and wait for data typed after
/// it. Used by the loader (a `send:` of such a command needs data), the engine (expect the
/// prompt) and the emulator. Sources: SIM7000 Series AT Command Manual V1.06 §8.2.3
/// (`AT+CIPSEND`, `AT+CIPSEND=<len>`; not `AT+CIPSEND?` / `=?`), §4.2 (`AT+CMGS`,
/// `AT+CMGW`, 3GPP TS 27.005); MQTT(S) Application Note V1.02 §3.2.5 (`AT+SMPUB=…`);
/// SIM7080 `AT+CASEND=<cid>,<len>` and Quectel `AT+QISEND=…` for the other socket
/// dialects. Mode setters such as `AT+CIPSENDHEX=1` or `AT+SMPUBHEX=1` do not prompt.
pub fn prompts_for_data(part: &Part) -> bool {
    matches!(
        (part.name.as_str(), &part.form),
        ("+CIPSEND" | "+CMGW", Form::Exec | Form::Write(_))
            | ("+SMPUB" | "+CMGS" | "+CASEND" | "+QISEND", Form::Write(_))
    )
}

fn shape_of(part: &Part) -> Shape {
    if prompts_for_data(part) {
        return Shape::Prompt;
    }
    match (part.name.as_str(), &part.form) {
        ("+CIFSR", Form::Exec) => Shape::BareLine,
        ("+CIPSTART", Form::Write(_)) => Shape::TwoPhase(SecondPhase::Connect),
        ("+CIPSTATUS", Form::Exec) => Shape::TwoPhase(SecondPhase::State),
        ("+CIPSHUT", Form::Exec) => Shape::Own(OwnResult::Shut),
        ("+CIPCLOSE", Form::Exec | Form::Write(_)) => Shape::Own(OwnResult::Close),
        _ => Shape::Standard,
    }
}

/// The outcome of the second phase of a two-phase command, if `line` is one.
pub fn second_phase(phase: SecondPhase, line: &str) -> Option<bool> {
    match phase {
        SecondPhase::Connect => match super::line::result_code(line)? {
            ResultCode::ConnectOk | ResultCode::Connect | ResultCode::AlreadyConnect => Some(true),
            ResultCode::ConnectFail | ResultCode::CloseOk => Some(false),
            _ => None,
        },
        SecondPhase::State => line.trim().starts_with("STATE:").then_some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(Command::parse("AT+CIFSR").shape, Shape::BareLine);
        assert_eq!(Command::parse("AT+CIFSR;E0").shape, Shape::Standard);
        assert_eq!(
            Command::parse("AT+CIPSTART=\"TCP\",\"h\",1883").shape,
            Shape::TwoPhase(SecondPhase::Connect)
        );
        assert_eq!(
            Command::parse("at+cipstatus").shape,
            Shape::TwoPhase(SecondPhase::State)
        );
        assert_eq!(
            Command::parse("AT+CIPSHUT").shape,
            Shape::Own(OwnResult::Shut)
        );
        assert_eq!(
            Command::parse("AT+CIPCLOSE=1").shape,
            Shape::Own(OwnResult::Close)
        );
        assert_eq!(Command::parse("AT+CIPSEND=12").shape, Shape::Prompt);
        assert_eq!(Command::parse("AT+CIPSEND?").shape, Shape::Standard);
        assert_eq!(Command::parse("AT+CSQ").shape, Shape::Standard);
        assert_eq!(Command::parse("AT+CIPSTATUS=0").shape, Shape::Standard);
    }

    /// Issue 10 point 9: only commands that really show `> ` prompt.
    #[test]
    fn only_real_prompting_commands_prompt() {
        for line in [
            "AT+CIPSEND",
            "AT+CIPSEND=12",
            "at+cipsend=0,12",
            "AT+SMPUB=\"t\",5,1,0",
            "AT+CMGS=\"+886912345678\"",
            "AT+CMGW",
            "AT+CASEND=0,5",
        ] {
            assert!(Command::parse(line).prompts(), "{line}");
        }
        for line in [
            "AT+CIPSENDHEX=1",
            "AT+CIPSENDHEX=0",
            "AT+CIPSENDHEX?",
            "AT+CIPSEND?",
            "AT+CIPSEND=?",
            "AT+SMPUB=?",
            "AT+SMPUBHEX=1",
            "AT+CMGS=?",
            "AT+CIPQSEND=1",
        ] {
            assert!(!Command::parse(line).prompts(), "{line}");
        }
    }

    #[test]
    fn prefixes_and_echo() {
        let c = Command::parse("AT+CPIN?");
        assert_eq!(c.prefix.as_deref(), Some("+CPIN:"));
        assert!(c.owns("+CPIN: READY"));
        assert!(!c.owns("+CSQ: 1,2"));
        assert!(c.is_echo("AT+CPIN?\r"));
        assert!(c.is_echo("at+cpin?"));
        assert!(Command::parse("ATI").prefix.is_none());
        assert_eq!(
            Command::parse("AT+CIPRXGET=2,1460").prefix.as_deref(),
            Some("+CIPRXGET:")
        );
    }

    #[test]
    fn phases() {
        assert_eq!(second_phase(SecondPhase::Connect, "CONNECT OK"), Some(true));
        assert_eq!(
            second_phase(SecondPhase::Connect, "CONNECT FAIL"),
            Some(false)
        );
        assert_eq!(
            second_phase(SecondPhase::Connect, "STATE: TCP CLOSED"),
            None
        );
        assert_eq!(
            second_phase(SecondPhase::State, "STATE: IP STATUS"),
            Some(true)
        );
    }
}
