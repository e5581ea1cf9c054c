//! Why a step failed: typed [`Failure`]s with the exit code they mean ([`Failure::kind`]).

use std::time::Duration;

use crate::exit::Exit;
use crate::mqtt::PacketType;

/// When the modem last answered a command (for "the modem did not answer" messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAnswer {
    /// The command it answered.
    pub command: String,
    /// How long before the failure.
    pub ago: Duration,
}

/// Why a step (or one attempt of it) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Something arrived, but nothing conclusive within the attempt's timeout.
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
    /// The modem sent nothing at all in answer to a command (`times` times in a row).
    NoReply {
        /// The command.
        command: String,
        /// How long each attempt waited.
        waited: Duration,
        /// Unanswered sends in a row.
        times: u32,
        /// The modem echoed the command but answered nothing.
        echo_only: bool,
        /// When the modem last answered anything, if ever in this run.
        last_answer: Option<LastAnswer>,
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
    /// `until` never matched within the step's deadline (the modem kept answering).
    UntilNotMet {
        /// The patterns.
        patterns: Vec<String>,
        /// How many times the command was sent.
        polls: u32,
    },
    /// A `wait` step's `expect` never matched, while the modem was alive.
    WaitNotMet {
        /// The patterns.
        patterns: Vec<String>,
        /// How long the step waited.
        waited: Duration,
        /// How sim7k knows the modem was alive.
        alive: String,
    },
    /// A URC handler with `action: fail` matched.
    Urc {
        /// The URC line.
        line: String,
        /// The handler's message.
        message: String,
    },
    /// The modem restarted mid-run (confirmed, see `engine::boot`).
    Rebooted {
        /// The line that announced it.
        line: String,
        /// What confirmed it.
        evidence: String,
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
    /// The MQTT session failed.
    Mqtt(MqttFailure),
    /// The TLS handshake (or the TLS connection) failed: a named reason with what to check.
    Tls(crate::tls::TlsFailure),
}

/// How an MQTT session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttFailure {
    /// The broker refused: CONNACK, SUBACK, PUBACK/PUBREC/PUBCOMP or UNSUBACK with a failure
    /// code.
    Refused {
        /// The packet that refused.
        packet: PacketType,
        /// The (first) failure code.
        code: u8,
        /// What the code means, and which filter or packet id it concerns.
        reason: String,
    },
    /// The broker sent DISCONNECT.
    Disconnected {
        /// Its reason.
        reason: String,
    },
    /// The TCP connection closed while the session was needed.
    Closed {
        /// What was being waited for.
        waiting_for: String,
    },
    /// The broker did not answer PINGREQ within the keep-alive interval.
    PingUnanswered {
        /// The interval.
        interval: Duration,
    },
    /// The broker's bytes cannot be read as MQTT, or cannot be proven intact.
    Garbled {
        /// Why.
        reason: String,
    },
    /// A reply the protocol requires (an acknowledgement whose packet id holds the byte
    /// 0x1A) cannot be sent in the SIM7000's hex mode.
    HexReply,
    /// A reply could not be encoded.
    Encode {
        /// The packet.
        packet: &'static str,
        /// The encoder's error.
        error: String,
    },
    /// The TLS connection under the session failed (an alert, a record that does not
    /// decrypt).
    Tls(crate::tls::TlsFailure),
}

impl Failure {
    /// The exit code this failure means: no answer at all and deadlines are
    /// [`Exit::Timeout`], everything else [`Exit::StepFailed`].
    pub fn kind(&self) -> Exit {
        match self {
            Failure::Timeout { .. } | Failure::Deadline { .. } | Failure::NoReply { .. } => {
                Exit::Timeout
            }
            _ => Exit::StepFailed,
        }
    }

    /// True for failures whose exit code is [`Exit::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.kind() == Exit::Timeout
    }

    /// True for failures that end the run even for `on_fail: continue` steps and are not
    /// retried (URC handlers, restarts).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Failure::Urc { .. } | Failure::Rebooted { .. })
    }
}

fn dur(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
    ))
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" or ")
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
                dur(*waited)
            ),
            Failure::Deadline { waiting_for } => {
                write!(f, "deadline reached while waiting for {waiting_for}")
            }
            Failure::NoReply {
                command,
                waited,
                times,
                echo_only,
                last_answer,
            } => {
                write!(f, "timed out: the modem did not answer `{command}` (")?;
                f.write_str(if *echo_only {
                    "it only echoed the command"
                } else {
                    "no reply at all"
                })?;
                if *times > 1 {
                    write!(f, " {times} times in a row, {} each", dur(*waited))?;
                } else {
                    write!(f, " within {}", dur(*waited))?;
                }
                match last_answer {
                    Some(a) => write!(
                        f,
                        "); it last answered {} earlier (`{}`)",
                        dur(a.ago),
                        a.command
                    ),
                    None => write!(f, "); it has not answered anything in this run"),
                }
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
                "no line matched {} after {polls} poll{} (the modem answered each)",
                list(patterns),
                if *polls == 1 { "" } else { "s" }
            ),
            Failure::WaitNotMet {
                patterns,
                waited,
                alive,
            } => write!(
                f,
                "no line matched {} within {} ({alive})",
                list(patterns),
                dur(*waited)
            ),
            Failure::Urc { line, message } => write!(f, "{message} (`{line}`)"),
            Failure::Rebooted { line, evidence } => {
                write!(f, "the modem restarted mid-run (`{line}`; {evidence})")
            }
            Failure::Data { message } | Failure::Validation { message } => f.write_str(message),
            Failure::Mqtt(m) => m.fmt(f),
            Failure::Tls(t) => t.fmt(f),
        }
    }
}

impl std::fmt::Display for MqttFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MqttFailure::Refused {
                packet: PacketType::ConnAck,
                code,
                reason,
            } => write!(
                f,
                "the broker refused the connection: {reason} (CONNACK code 0x{code:02X})"
            ),
            MqttFailure::Refused { reason, .. } => f.write_str(reason),
            MqttFailure::Disconnected { reason } => {
                write!(f, "the broker disconnected: {reason}")
            }
            MqttFailure::Closed { waiting_for } => {
                write!(
                    f,
                    "the TCP connection is closed while waiting for {waiting_for}"
                )
            }
            MqttFailure::PingUnanswered { interval } => write!(
                f,
                "the broker did not answer PINGREQ within {}: the connection is dead",
                dur(*interval)
            ),
            MqttFailure::Garbled { reason } => f.write_str(reason),
            MqttFailure::HexReply => f.write_str(
                "an MQTT reply the protocol requires (an acknowledgement whose packet id \
                 contains the byte 0x1A) cannot be sent in the SIM7000's hex mode; use \
                 binary sends (AT+CIPSENDHEX=0) for MQTT sessions",
            ),
            MqttFailure::Encode { packet, error } => write!(f, "cannot encode {packet}: {error}"),
            MqttFailure::Tls(t) => t.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_texts() {
        let silent = Failure::NoReply {
            command: "AT+CEREG?".into(),
            waited: Duration::from_secs(5),
            times: 2,
            echo_only: false,
            last_answer: Some(LastAnswer {
                command: "AT+CSQ".into(),
                ago: Duration::from_millis(12_300),
            }),
        };
        assert_eq!(silent.kind(), Exit::Timeout);
        let text = silent.to_string();
        assert!(text.contains("timed out"), "{text}");
        assert!(text.contains("did not answer `AT+CEREG?`"), "{text}");
        assert!(text.contains("2 times in a row"), "{text}");
        assert!(text.contains("12s 300ms earlier (`AT+CSQ`)"), "{text}");
        let unmet = Failure::UntilNotMet {
            patterns: vec!["+CEREG: 0,1".into()],
            polls: 3,
        };
        assert_eq!(unmet.kind(), Exit::StepFailed);
        let refused = Failure::Mqtt(MqttFailure::Refused {
            packet: PacketType::ConnAck,
            code: 5,
            reason: "not authorized".into(),
        });
        assert_eq!(refused.kind(), Exit::StepFailed);
        assert!(
            refused
                .to_string()
                .contains("refused the connection: not authorized (CONNACK code 0x05)")
        );
    }
}
