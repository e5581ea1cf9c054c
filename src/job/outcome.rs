//! The result model of a run: one typed [`RunFailure`], one [`StepResult`] per step, one
//! [`RunOutcome`] built once when the run ends. The exit code follows from the failure's
//! [`RunFailure::kind`]; the verdict from the exit code. Records, JUnit and CSV are views of
//! the outcome (see `crate::report`).
//!
//! Every text in here is already redacted (secrets as `***`) and, where it came from outside
//! (the modem, a broker), escaped, except the typed [`RunFailure`] kept in
//! [`FailureInfo::cause`], which holds the values as they were (for programs matching on it;
//! it is never serialized).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Failure;
use crate::exit::Exit;
use crate::recipe::program::Check;

use super::identity::RecipeIdentity;

/// What stopped a run from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    /// A signal (`SIGINT`, `SIGTERM`, `SIGHUP`), by name.
    Signal(String),
    /// The reader of our output went away (a closed stdout pipe).
    BrokenPipe,
}

impl std::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Interrupt::Signal(name) => write!(f, "interrupted by {name}"),
            Interrupt::BrokenPipe => {
                f.write_str("interrupted: the reader of the output went away (broken pipe)")
            }
        }
    }
}

/// How a run ended, derived from the exit code of its failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every step passed (optional steps may have failed).
    Passed,
    /// A step failed.
    Failed,
    /// A step or the recipe deadline timed out, or the modem did not answer.
    Timeout,
    /// The port failed or vanished, or an output file could not be written.
    IoError,
    /// A `{{var}}` or script problem found while running.
    RecipeError,
    /// Stopped by a signal or a closed output.
    Interrupted,
}

impl Verdict {
    /// The verdict an exit code means.
    pub fn of(exit: Exit) -> Verdict {
        match exit {
            Exit::Success => Verdict::Passed,
            Exit::StepFailed => Verdict::Failed,
            Exit::Timeout => Verdict::Timeout,
            Exit::Io => Verdict::IoError,
            Exit::Usage => Verdict::RecipeError,
            Exit::Interrupted => Verdict::Interrupted,
        }
    }

    /// The process exit code of this verdict.
    pub fn exit(self) -> Exit {
        match self {
            Verdict::Passed => Exit::Success,
            Verdict::Failed => Exit::StepFailed,
            Verdict::Timeout => Exit::Timeout,
            Verdict::IoError => Exit::Io,
            Verdict::RecipeError => Exit::Usage,
            Verdict::Interrupted => Exit::Interrupted,
        }
    }
}

/// Why a run (or a step) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunFailure {
    /// The modem did not do what the step asked (from the engine).
    Step {
        /// The engine's typed failure.
        failure: Failure,
        /// The modem's reply lines to the last attempt (shown for failures that are not
        /// timeouts).
        replies: Vec<String>,
    },
    /// The start-up sync got no `OK` to `AT`.
    Sync {
        /// The engine's failure.
        failure: Failure,
        /// How long sync tried.
        within: Duration,
        /// What the modem said meanwhile.
        replies: Vec<String>,
    },
    /// A captured value failed its `validate:` check.
    Validation {
        /// What failed (the message shows the value).
        message: String,
    },
    /// A step's `script:` failed.
    Script {
        /// The script's error, with its file and line.
        message: String,
        /// The step's or the recipe's deadline stopped it.
        timed_out: bool,
    },
    /// An `on_message` hook failed.
    Hook {
        /// The hook's error.
        message: String,
    },
    /// A `{{var}}`, a pattern or a setting could not be resolved when the step ran.
    Recipe {
        /// What went wrong.
        message: String,
    },
    /// The recipe's deadline (or the teardown's) passed before the step could start.
    Deadline {
        /// It was the teardown's deadline (`finally_deadline`).
        teardown: bool,
    },
    /// The port failed or vanished.
    Port {
        /// What the driver saw.
        message: String,
    },
    /// An output the run writes (the transcript) could not be written.
    Output {
        /// What failed, naming the file.
        message: String,
    },
    /// Stopped from outside.
    Interrupted(Interrupt),
    /// A bug in sim7k (a panic caught by the fleet).
    Internal {
        /// The panic message.
        message: String,
    },
}

impl RunFailure {
    /// The exit code this failure means.
    pub fn kind(&self) -> Exit {
        match self {
            RunFailure::Step { failure, .. } | RunFailure::Sync { failure, .. } => failure.kind(),
            RunFailure::Validation { .. } | RunFailure::Internal { .. } => Exit::StepFailed,
            RunFailure::Script {
                timed_out: true, ..
            }
            | RunFailure::Deadline { .. } => Exit::Timeout,
            RunFailure::Script { .. } | RunFailure::Hook { .. } | RunFailure::Recipe { .. } => {
                Exit::Usage
            }
            RunFailure::Port { .. } | RunFailure::Output { .. } => Exit::Io,
            RunFailure::Interrupted(_) => Exit::Interrupted,
        }
    }

    /// True for failures that end the run even for `on_fail: continue` steps (URC handlers
    /// with `action: fail`, a confirmed restart).
    pub fn is_fatal(&self) -> bool {
        match self {
            RunFailure::Step { failure, .. } => failure.is_fatal(),
            _ => false,
        }
    }
}

/// The modem's reply lines as a failure shows them: each escaped and shortened to
/// [`SHOWN_CHARS`](crate::util::escape::SHOWN_CHARS) characters (a 1 MB line without CR/LF
/// would otherwise fill the terminal and every record).
fn shown(replies: &[String]) -> String {
    replies
        .iter()
        .map(|r| crate::util::escape::shorten(r, crate::util::escape::SHOWN_CHARS))
        .collect::<Vec<_>>()
        .join(" | ")
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFailure::Step { failure, replies } => {
                write!(f, "{failure}")?;
                if !replies.is_empty() && !failure.is_timeout() {
                    write!(f, "; the modem said: {}", shown(replies))?;
                }
                Ok(())
            }
            RunFailure::Sync {
                failure,
                within,
                replies,
            } => {
                let within = humantime::format_duration(*within);
                match failure {
                    Failure::NoReply { .. } => write!(
                        f,
                        "the modem did not answer `AT` within {within} ({failure}); is it powered, on this port, at this baud rate?"
                    ),
                    _ if replies.is_empty() => write!(
                        f,
                        "the modem did not answer `AT` with `OK` within {within} ({failure}); it sent bytes that were no answer: is the baud rate right?"
                    ),
                    _ => write!(
                        f,
                        "the modem answered `AT`, but not with `OK`, within {within} ({failure}); its last reply: {}",
                        shown(replies)
                    ),
                }
            }
            RunFailure::Validation { message }
            | RunFailure::Hook { message }
            | RunFailure::Recipe { message }
            | RunFailure::Port { message }
            | RunFailure::Output { message } => f.write_str(message),
            RunFailure::Script { message, .. } => f.write_str(message),
            RunFailure::Deadline { teardown: true } => {
                f.write_str("the teardown's deadline (`finally_deadline`) passed")
            }
            RunFailure::Deadline { teardown: false } => f.write_str("the recipe's deadline passed"),
            RunFailure::Interrupted(i) => write!(f, "{i}"),
            RunFailure::Internal { message } => write!(
                f,
                "internal error (a bug in sim7k, please report it): {message}"
            ),
        }
    }
}

/// The status of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It passed.
    Passed,
    /// It failed and ended the run.
    Failed,
    /// It failed, but `on_fail: continue` (or it is a teardown step) let the run go on.
    FailedContinued,
    /// Its `if:` was false.
    Skipped,
}

/// What happened in one step (the start-up sync included, as `sync`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    /// 0-based index among the recipe's steps (`None` for the sync and teardown steps).
    pub index: Option<usize>,
    /// Name (teardown steps are named `teardown: …`).
    pub name: String,
    /// Where the step is written (`file:line:column`).
    pub origin: Option<String>,
    /// Status.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Time spent, in seconds.
    pub seconds: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A teardown (`finally`) step: it ran after the steps and does not count towards the
    /// verdict.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub teardown: bool,
}

/// The failure that ended a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureInfo {
    /// Step name (`sync` for the start-up sync, `open port` when the port could not be
    /// opened).
    pub step: String,
    /// Where the step is written.
    pub origin: Option<String>,
    /// What went wrong, redacted.
    pub reason: String,
    /// The last transcript lines (escaped, redacted), filled in by the driver.
    pub tail: Vec<String>,
    /// The typed failure (values as they were: never shown, never serialized).
    #[serde(skip)]
    pub cause: RunFailure,
}

/// A validated capture (OpenHTF's "measurement"), computed once when the step validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The captured var.
    pub name: String,
    /// The measured value (`***` for a secret), `None` when it was not captured.
    pub value: Option<String>,
    /// The value is secret (shown as `***`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Whether it passed its checks.
    pub passed: bool,
    /// The checks, as written in the recipe.
    pub limits: Limits,
    /// The step that measured it.
    pub step: String,
}

/// The checks of a `validate:` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Regex the value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Lowest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Required text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Forbidden texts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not: Vec<String>,
    /// Longest allowed value, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<u64>,
}

impl From<&Check> for Limits {
    fn from(c: &Check) -> Limits {
        Limits {
            regex: c.regex.as_ref().map(|r| r.as_str().to_owned()),
            min: c.min,
            max: c.max,
            equals: c.equals.clone(),
            not: c.not.clone(),
            max_len: c.max_len,
        }
    }
}

/// Payload characters kept in a [`MessageRecord`].
pub const MESSAGE_TEXT_CHARS: usize = 1000;
/// Payload bytes shown as hex in a [`MessageRecord`] (non-UTF-8 payloads).
pub const MESSAGE_HEX_BYTES: usize = 512;

/// An MQTT message received from the broker, as recorded (redacted and escaped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Topic (secrets replaced, control characters escaped, shortened).
    pub topic: String,
    /// Payload as text: UTF-8 escaped, other bytes as `\xNN`; shortened to
    /// [`MESSAGE_TEXT_CHARS`] characters with `… N bytes more`.
    pub payload: String,
    /// Payload length in bytes, as received.
    pub payload_len: usize,
    /// For a payload that is not UTF-8: its first [`MESSAGE_HEX_BYTES`] bytes as hex
    /// (upper case, secrets replaced before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_hex: Option<String>,
    /// QoS of the delivery.
    pub qos: u8,
    /// RETAIN flag of the delivery.
    pub retain: bool,
    /// A secret was replaced in the topic or payload.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl MessageRecord {
    /// The record of a received message, with `secrets` replaced.
    pub fn of(m: &crate::engine::mqtt::Message, secrets: &crate::redact::Secrets) -> Self {
        use crate::util::escape::{SHOWN_CHARS, shorten, shorten_bytes};
        let topic = secrets.redact_str(&m.topic);
        let payload = secrets.redact(&m.payload);
        let redacted = matches!(topic, std::borrow::Cow::Owned(_))
            || matches!(payload, std::borrow::Cow::Owned(_));
        let (text, hex) = match std::str::from_utf8(&payload) {
            Ok(t) => (shorten(t, MESSAGE_TEXT_CHARS), None),
            Err(_) => {
                let head = payload.get(..MESSAGE_HEX_BYTES).unwrap_or(&payload);
                (
                    shorten_bytes(&payload, MESSAGE_TEXT_CHARS),
                    Some(crate::util::hex::hex(head, "")),
                )
            }
        };
        MessageRecord {
            topic: shorten(&topic, SHOWN_CHARS),
            payload: text,
            payload_len: m.payload.len(),
            payload_hex: hex,
            qos: m.qos,
            retain: m.retain,
            redacted,
        }
    }
}

/// The result of one run of a recipe on one modem: built once when the run ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// Recipe name.
    pub recipe: String,
    /// The port as given.
    pub port: String,
    /// How the run ended (follows from `failure`).
    pub verdict: Verdict,
    /// The process exit code of the verdict.
    pub exit_code: u8,
    /// Start, seconds since the Unix epoch.
    pub started: f64,
    /// Duration in seconds (teardown included).
    pub seconds: f64,
    /// The steps that ran, in order (the sync first, teardown steps last).
    pub steps: Vec<StepResult>,
    /// The failure, if the run did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureInfo>,
    /// Values captured from the modem (secrets as `***`).
    pub captures: BTreeMap<String, String>,
    /// Validated captures, in the order the steps ran.
    pub measurements: Vec<Measurement>,
    /// Every `say:` line and every line a script or hook printed, redacted, in order.
    pub said: Vec<String>,
    /// Every MQTT message received from the broker, redacted and escaped, in order.
    pub messages: Vec<MessageRecord>,
    /// Lines of `said` and entries of `messages` left out beyond the kept maximum.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted: u64,
    /// All vars at the end (secrets as `***`, bytes as hex).
    pub vars: serde_json::Value,
    /// What identifies the job (recipe file, its hash, the non-secret vars).
    pub identity: RecipeIdentity,
    /// Names of the vars that are secret at the end (their values show as `***`).
    #[serde(skip)]
    pub secret_vars: std::collections::BTreeSet<String>,
}

/// The names of the secret vars.
pub(super) fn secret_names(vars: &crate::recipe::vars::Vars) -> std::collections::BTreeSet<String> {
    vars.iter()
        .filter(|(_, _, secret)| *secret)
        .map(|(name, _, _)| name.to_string())
        .collect()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RunOutcome {
    /// The exit code of the run.
    pub fn exit(&self) -> Exit {
        self.verdict.exit()
    }

    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    /// The outcome of a run that never started (the port could not be opened, a transcript
    /// could not be created, a thread could not start): no step ran.
    pub fn not_started(
        recipe: &crate::recipe::load::LoadedRecipe,
        port: &str,
        step: &str,
        cause: RunFailure,
        started: f64,
        seconds: f64,
    ) -> RunOutcome {
        let secrets = recipe.vars.secrets();
        let reason = secrets.redact_str(&cause.to_string()).into_owned();
        let exit = cause.kind();
        RunOutcome {
            recipe: recipe.name.clone(),
            port: port.to_string(),
            verdict: Verdict::of(exit),
            exit_code: exit.code(),
            started,
            seconds,
            steps: Vec::new(),
            failure: Some(FailureInfo {
                step: step.to_string(),
                origin: None,
                reason,
                tail: Vec::new(),
                cause,
            }),
            captures: BTreeMap::new(),
            measurements: Vec::new(),
            said: Vec::new(),
            messages: Vec::new(),
            omitted: 0,
            vars: recipe.vars.to_json(),
            identity: RecipeIdentity::of(recipe),
            secret_vars: secret_names(&recipe.vars),
        }
    }

    /// True when the var `name` is secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.secret_vars.contains(name)
    }

    /// An output of the run (its transcript) could not be written: a run that passed now
    /// fails with exit 4 (a verdict whose evidence was lost is not a pass); a failed run
    /// keeps its failure, with the write error added to its reason.
    pub fn output_failed(&mut self, message: &str) {
        match self.failure.as_mut() {
            Some(f) => f.reason.push_str(&format!(" ({message})")),
            None => {
                let cause = RunFailure::Output {
                    message: message.to_string(),
                };
                let exit = cause.kind();
                self.verdict = Verdict::of(exit);
                self.exit_code = exit.code();
                self.failure = Some(FailureInfo {
                    step: "transcript".into(),
                    origin: None,
                    reason: message.to_string(),
                    tail: Vec::new(),
                    cause,
                });
            }
        }
    }

    /// Set the transcript tail shown with the failure (the driver owns the transcript).
    pub fn set_tail(&mut self, tail: Vec<String>) {
        if let Some(f) = self.failure.as_mut() {
            f.tail = tail;
        }
    }
}
