//! Fault injection: what can go wrong with a real SIM7000, and a compact textual syntax.
//!
//! Syntax of one fault (`--fault SPEC`, repeatable; several specs may also be separated by
//! whitespace or `;` in one string parsed as [`Faults`]):
//!
//! | spec | effect |
//! |---|---|
//! | `drip[=<delay>]` | output leaves the module one byte at a time, `<delay>` apart (default 2ms) |
//! | `error=<CMD>[:<n>]` | `<CMD>` (e.g. `AT+CIICR`, `CIICR`, `+CIPSTART`) answers ERROR (first `n` times; default always) |
//! | `urc-in-response[=<CMD>][:<n>]` | `DST: 1` and `*PSUTTZ: ...` between the echo and the response (of `<CMD>`, or every command line) |
//! | `extra-rxget[=<k>]` | `k` extra `+CIPRXGET: 1` lines (default 2) before each reply to `AT+CIPRXGET=2/3/4` |
//! | `connect-fail[:<n>]` | `AT+CIPSTART` ends in `CONNECT FAIL` (and `AT+SMCONN` in ERROR) without dialling, as after a refusal |
//! | `send-fail[:<n>]` | `SEND FAIL` instead of `SEND OK` / `DATA ACCEPT` |
//! | `peer-close[-after=<d>]` | the peer closes the connection `<d>` after `CONNECT OK` / SMCONN (once) |
//! | `pdp-deact[-after=<d>]` | `+PDP: DEACT` `<d>` after the PDP context comes up (once) |
//! | `reboot[-after=<d>]` | the module reboots (`SMS Ready` mid-session) `<d>` after the host's first `AT` (once) |
//! | `silent[=<for>]`, `silent-after=<d>[,for=<for>]` | the module stops answering anything, for `<for>` or until rebooted/cleared |
//! | `echo-stuck` | `ATE0` answers OK but echo stays on |
//! | `smconn-hang` | `AT+SMCONN` never answers |
//! | `long-host-reject[=<n>]` | `AT+CIPSTART` with a host longer than `n` (default 50) → `+CME ERROR: operation not allowed` |
//!
//! Durations use humantime syntax (`500ms`, `3s`, `1m`). Injected at run time through
//! `PtyEmulator::inject`, the `-after` delays count from the injection when the triggering
//! condition already holds (connected, PDP active, host synced).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One fault. See the module documentation for the textual syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Output one byte at a time with this delay between bytes.
    Drip {
        /// Delay between two bytes.
        per_byte: Duration,
    },
    /// A command answers ERROR (CMEE-formatted) instead of running.
    Error {
        /// The command, normalised (upper case, no `AT`, no leading `+`), e.g. `CIICR`.
        command: String,
        /// Only the first `n` matching commands; `None` = always.
        times: Option<u32>,
    },
    /// `DST: 1` and `*PSUTTZ` URCs between the echo and the response.
    UrcInResponse {
        /// Only for this command (normalised like [`Fault::Error`]); `None` = every line.
        command: Option<String>,
        /// Only the first `n` times; `None` = always.
        times: Option<u32>,
    },
    /// Extra `+CIPRXGET: 1` lines before each reply to a CIPRXGET read/query.
    ExtraRxget {
        /// How many extra lines.
        lines: u32,
    },
    /// `AT+CIPSTART` fails with `CONNECT FAIL` (and `AT+SMCONN` with ERROR).
    ConnectFail {
        /// Only the first `n` attempts; `None` = always.
        times: Option<u32>,
    },
    /// `SEND FAIL` instead of `SEND OK`/`DATA ACCEPT`.
    SendFail {
        /// Only the first `n` sends; `None` = always.
        times: Option<u32>,
    },
    /// The peer closes the connection this long after it came up (once).
    PeerClose {
        /// Delay after `CONNECT OK` / SMCONN success (or after injection when connected).
        after: Duration,
    },
    /// The network deactivates the PDP context this long after it came up (once).
    PdpDeact {
        /// Delay after CIICR/CNACT success (or after injection when active).
        after: Duration,
    },
    /// The module reboots (prints `SMS Ready` again, state reset) (once).
    Reboot {
        /// Delay after the host's first `AT` (or after injection).
        after: Duration,
    },
    /// The module stops answering anything.
    Silent {
        /// Delay after the host's first `AT` (or after injection).
        after: Duration,
        /// How long; `None` = until a reboot or until faults are cleared.
        duration: Option<Duration>,
    },
    /// `ATE0` answers OK but echo stays on.
    EchoStuck,
    /// `AT+SMCONN` never answers.
    SmconnHang,
    /// Host names longer than `max` are rejected by `AT+CIPSTART`.
    LongHostReject {
        /// Longest accepted host name.
        max: usize,
    },
}

/// A fault spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault `{spec}`: {reason}")]
pub struct FaultParseError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Normalise a command name for fault matching: upper case, no `AT` prefix, no leading `+`.
pub(crate) fn normalise_command(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    let up = up.strip_prefix("AT").unwrap_or(&up);
    up.trim_start_matches('+').to_string()
}

fn parse_duration(spec: &str, v: &str) -> Result<Duration, FaultParseError> {
    humantime::parse_duration(v.trim()).map_err(|e| FaultParseError {
        spec: spec.to_string(),
        reason: format!("`{v}` is not a duration ({e}); use e.g. 500ms, 3s, 1m"),
    })
}

fn parse_count(spec: &str, v: &str) -> Result<u32, FaultParseError> {
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| FaultParseError {
            spec: spec.to_string(),
            reason: format!("`{v}` is not a positive count"),
        })
}

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(spec: &str) -> Result<Fault, FaultParseError> {
        let s = spec.trim();
        let err = |reason: &str| FaultParseError {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(err("empty fault spec"));
        }
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (s.to_ascii_lowercase(), None),
        };
        // `name:count` (no value) or `value:count`.
        let (name, name_count) = match name.split_once(':') {
            Some((n, c)) => (n.to_string(), Some(parse_count(spec, c)?)),
            None => (name, None),
        };
        let split_count = |v: &str| -> Result<(String, Option<u32>), FaultParseError> {
            match v.rsplit_once(':') {
                Some((a, c)) => Ok((a.trim().to_string(), Some(parse_count(spec, c)?))),
                None => Ok((v.trim().to_string(), None)),
            }
        };
        let no_value = |f: Fault| -> Result<Fault, FaultParseError> {
            if value.is_some() {
                Err(err("this fault takes no `=value`"))
            } else {
                Ok(f)
            }
        };
        let no_count = || -> Result<(), FaultParseError> {
            if name_count.is_some() {
                Err(err("this fault takes no `:count`"))
            } else {
                Ok(())
            }
        };
        let after = |v: Option<&str>| -> Result<Duration, FaultParseError> {
            match v {
                Some(v) => parse_duration(spec, v),
                None => Err(err("needs a delay, e.g. `=3s`")),
            }
        };
        match name.as_str() {
            "drip" => {
                no_count()?;
                let per_byte = match value {
                    Some(v) => parse_duration(spec, v)?,
                    None => Duration::from_millis(2),
                };
                Ok(Fault::Drip { per_byte })
            }
            "error" => {
                let Some(v) = value else {
                    return Err(err(
                        "needs a command, e.g. `error=AT+CIICR` or `error=CIICR:2`",
                    ));
                };
                let (cmd, times) = split_count(v)?;
                let command = normalise_command(&cmd);
                if command.is_empty() {
                    return Err(err("needs a command, e.g. `error=AT+CIICR`"));
                }
                Ok(Fault::Error {
                    command,
                    times: times.or(name_count),
                })
            }
            "urc-in-response" => match value {
                Some(v) => {
                    let (cmd, times) = split_count(v)?;
                    let command = normalise_command(&cmd);
                    Ok(Fault::UrcInResponse {
                        command: (!command.is_empty()).then_some(command),
                        times: times.or(name_count),
                    })
                }
                None => Ok(Fault::UrcInResponse {
                    command: None,
                    times: name_count,
                }),
            },
            "extra-rxget" => {
                no_count()?;
                let lines = match value {
                    Some(v) => parse_count(spec, v)?,
                    None => 2,
                };
                Ok(Fault::ExtraRxget { lines })
            }
            "connect-fail" => no_value(Fault::ConnectFail { times: name_count }),
            "send-fail" => no_value(Fault::SendFail { times: name_count }),
            "peer-close" => {
                no_count()?;
                no_value(Fault::PeerClose {
                    after: Duration::ZERO,
                })
            }
            "peer-close-after" => {
                no_count()?;
                Ok(Fault::PeerClose {
                    after: after(value)?,
                })
            }
            "pdp-deact" => {
                no_count()?;
                no_value(Fault::PdpDeact {
                    after: Duration::ZERO,
                })
            }
            "pdp-deact-after" => {
                no_count()?;
                Ok(Fault::PdpDeact {
                    after: after(value)?,
                })
            }
            "reboot" => {
                no_count()?;
                no_value(Fault::Reboot {
                    after: Duration::ZERO,
                })
            }
            "reboot-after" => {
                no_count()?;
                Ok(Fault::Reboot {
                    after: after(value)?,
                })
            }
            "silent" => {
                no_count()?;
                let duration = value.map(|v| parse_duration(spec, v)).transpose()?;
                Ok(Fault::Silent {
                    after: Duration::ZERO,
                    duration,
                })
            }
            "silent-after" => {
                no_count()?;
                let Some(v) = value else {
                    return Err(err(
                        "needs a delay, e.g. `silent-after=5s` or `silent-after=5s,for=10s`",
                    ));
                };
                let (a, rest) = match v.split_once(',') {
                    Some((a, rest)) => (a, Some(rest.trim())),
                    None => (v, None),
                };
                let duration = match rest {
                    None => None,
                    Some(r) => match r.split_once('=') {
                        Some((k, d)) if k.trim().eq_ignore_ascii_case("for") => {
                            Some(parse_duration(spec, d)?)
                        }
                        _ => return Err(err("expected `,for=<duration>` after the delay")),
                    },
                };
                Ok(Fault::Silent {
                    after: parse_duration(spec, a)?,
                    duration,
                })
            }
            "echo-stuck" => {
                no_count()?;
                no_value(Fault::EchoStuck)
            }
            "smconn-hang" => {
                no_count()?;
                no_value(Fault::SmconnHang)
            }
            "long-host-reject" => {
                no_count()?;
                let max = match value {
                    Some(v) => v.parse::<usize>().map_err(|_| err("expected a length"))?,
                    None => 50,
                };
                Ok(Fault::LongHostReject { max })
            }
            other => Err(err(&format!(
                "unknown fault `{other}`; known: drip, error, urc-in-response, extra-rxget, \
                 connect-fail, send-fail, peer-close[-after], pdp-deact[-after], \
                 reboot[-after], silent[-after], echo-stuck, smconn-hang, long-host-reject"
            ))),
        }
    }
}

fn fmt_dur(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

fn fmt_times(t: Option<u32>) -> String {
    t.map(|n| format!(":{n}")).unwrap_or_default()
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Drip { per_byte } => write!(f, "drip={}", fmt_dur(*per_byte)),
            Fault::Error { command, times } => write!(f, "error={command}{}", fmt_times(*times)),
            Fault::UrcInResponse { command, times } => match command {
                Some(c) => write!(f, "urc-in-response={c}{}", fmt_times(*times)),
                None => write!(f, "urc-in-response{}", fmt_times(*times)),
            },
            Fault::ExtraRxget { lines } => write!(f, "extra-rxget={lines}"),
            Fault::ConnectFail { times } => write!(f, "connect-fail{}", fmt_times(*times)),
            Fault::SendFail { times } => write!(f, "send-fail{}", fmt_times(*times)),
            Fault::PeerClose { after } => write!(f, "peer-close-after={}", fmt_dur(*after)),
            Fault::PdpDeact { after } => write!(f, "pdp-deact-after={}", fmt_dur(*after)),
            Fault::Reboot { after } => write!(f, "reboot-after={}", fmt_dur(*after)),
            Fault::Silent { after, duration } => {
                write!(f, "silent-after={}", fmt_dur(*after))?;
                if let Some(d) = duration {
                    write!(f, ",for={}", fmt_dur(*d))?;
                }
                Ok(())
            }
            Fault::EchoStuck => write!(f, "echo-stuck"),
            Fault::SmconnHang => write!(f, "smconn-hang"),
            Fault::LongHostReject { max } => write!(f, "long-host-reject={max}"),
        }
    }
}

/// A list of faults, parsed from specs separated by whitespace or `;`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Faults(pub Vec<Fault>);

impl FromStr for Faults {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Faults, FaultParseError> {
        s.split(|c: char| c.is_whitespace() || c == ';')
            .filter(|p| !p.is_empty())
            .map(Fault::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Faults)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, x) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Fault {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_examples() {
        assert_eq!(
            p("drip"),
            Fault::Drip {
                per_byte: Duration::from_millis(2)
            }
        );
        assert_eq!(
            p("drip=5ms"),
            Fault::Drip {
                per_byte: Duration::from_millis(5)
            }
        );
        assert_eq!(
            p("error=CIICR:2"),
            Fault::Error {
                command: "CIICR".into(),
                times: Some(2)
            }
        );
        assert_eq!(
            p("error=AT+CIICR"),
            Fault::Error {
                command: "CIICR".into(),
                times: None
            }
        );
        assert_eq!(
            p("pdp-deact-after=3s"),
            Fault::PdpDeact {
                after: Duration::from_secs(3)
            }
        );
        assert_eq!(
            p("urc-in-response=at+cipshut:1"),
            Fault::UrcInResponse {
                command: Some("CIPSHUT".into()),
                times: Some(1)
            }
        );
        assert_eq!(
            p("urc-in-response"),
            Fault::UrcInResponse {
                command: None,
                times: None
            }
        );
        assert_eq!(p("connect-fail:1"), Fault::ConnectFail { times: Some(1) });
        assert_eq!(p("send-fail"), Fault::SendFail { times: None });
        assert_eq!(p("extra-rxget=3"), Fault::ExtraRxget { lines: 3 });
        assert_eq!(
            p("silent-after=5s,for=10s"),
            Fault::Silent {
                after: Duration::from_secs(5),
                duration: Some(Duration::from_secs(10))
            }
        );
        assert_eq!(
            p("silent"),
            Fault::Silent {
                after: Duration::ZERO,
                duration: None
            }
        );
        assert_eq!(p("echo-stuck"), Fault::EchoStuck);
        assert_eq!(p("smconn-hang"), Fault::SmconnHang);
        assert_eq!(p("long-host-reject"), Fault::LongHostReject { max: 50 });
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "drip=7ms",
            "error=CIPSTART:3",
            "urc-in-response",
            "urc-in-response=CIPSHUT:1",
            "extra-rxget=4",
            "connect-fail",
            "send-fail:2",
            "peer-close-after=1s 500ms",
            "pdp-deact-after=3s",
            "reboot-after=0s",
            "silent-after=2s,for=1m",
            "silent-after=2s",
            "echo-stuck",
            "smconn-hang",
            "long-host-reject=12",
        ] {
            let f: Fault = s.replace(' ', "").parse().unwrap();
            let again: Fault = f.to_string().parse().unwrap();
            assert_eq!(f, again, "{s}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        for bad in [
            "",
            "bogus",
            "error",
            "error=",
            "drip=fast",
            "connect-fail=3",
            "error=CIICR:0",
            "echo-stuck=1",
            "pdp-deact-after",
            "silent-after=1s,during=3s",
        ] {
            let e = bad.parse::<Fault>().unwrap_err();
            assert!(!e.reason.is_empty(), "{bad}");
            assert!(e.to_string().contains("bad fault"), "{bad}");
        }
    }

    #[test]
    fn fault_list() {
        let f: Faults = "--fault-ignored"
            .strip_prefix("--fault-ignored")
            .unwrap()
            .parse()
            .unwrap();
        assert!(f.0.is_empty());
        let f: Faults = "drip error=CIICR:2; pdp-deact-after=3s".parse().unwrap();
        assert_eq!(f.0.len(), 3);
        assert_eq!(f.to_string(), "drip=2ms error=CIICR:2 pdp-deact-after=3s");
    }
}
