//! What a command line sent to the modem makes the modem answer: its response prefix and
//! the shape of its reply (see `sim7000-behaviour.md` §2).

use super::line::ResultCode;

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
}

impl Command {
    /// Parse a command line.
    pub fn parse(text: &str) -> Command {
        let text = text.trim_end_matches(['\r', '\n']).to_string();
        let upper = text.trim().to_ascii_uppercase();
        let body = upper.strip_prefix("AT").unwrap_or(&upper);
        // `AT+CIFSR;E0` and other chained lines end with the final code of the last part.
        let chained = body.contains(';');
        let first = body.split(';').next().unwrap_or("");
        let name_end = first.find(['=', '?']).unwrap_or(first.len());
        let name = &first[..name_end];
        let args = &first[name_end..];
        let prefix = if name.starts_with('+') || name.starts_with('*') {
            Some(format!("{name}:"))
        } else {
            None
        };
        let shape = if chained {
            Shape::Standard
        } else {
            shape_of(name, args)
        };
        Command {
            text,
            prefix,
            shape,
        }
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

fn shape_of(name: &str, args: &str) -> Shape {
    match name {
        "+CIFSR" if args.is_empty() => Shape::BareLine,
        "+CIPSTART" if args.starts_with('=') => Shape::TwoPhase(SecondPhase::Connect),
        "+CIPSTATUS" if args.is_empty() => Shape::TwoPhase(SecondPhase::State),
        "+CIPSHUT" if args.is_empty() => Shape::Own(OwnResult::Shut),
        "+CIPCLOSE" if !args.starts_with('?') => Shape::Own(OwnResult::Close),
        "+CIPSEND" if args.is_empty() || (args.starts_with('=') && args != "=?") => Shape::Prompt,
        "+SMPUB" if args.starts_with('=') && args != "=?" => Shape::Prompt,
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
