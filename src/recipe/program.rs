//! The typed program a recipe compiles into when it loads.
//!
//! [`Program`] is what runs: every default is applied (timeouts, deadlines, retry pauses,
//! the recipe's `abort` list), every pattern without `{{vars}}` is compiled, and what a step
//! does is one [`StepAction`] whose fields are only those that action can use (an `until`
//! poll exists only on a command, captures only on a command, chunking only on a data
//! send). Text that needs run-time vars stays a [`Template`], parsed at load. Nothing here
//! refers to the YAML model, so a run (today the runner, later a sans-IO job) interprets a
//! program without it.
//!
//! Steps are numbered by [`ProgramStep::id`]: the main steps `0..steps.len()`, then the
//! teardown (`finally`) steps after them. Scripts are compiled per id.

mod build;
mod plan;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

pub(crate) use self::build::{BuildContext, build_step};
pub use self::plan::{engine_plan, starts_with_disconnect};
use super::diag::Origin;
use super::model::OnFail;
use super::template::{ExpandError, Template};
use super::vars::Vars;
use crate::engine::Matcher;
use crate::mqtt::PacketType;

/// Deadline of the teardown (`finally`) when the recipe sets no `finally_deadline`.
pub const DEFAULT_FINALLY_DEADLINE: Duration = Duration::from_secs(30);
/// Memory the scripts of one step may hold when the recipe sets no `limits.script_memory`.
pub const DEFAULT_SCRIPT_MEMORY: u64 = 64 << 20;
/// Largest `limits.script_memory`.
pub const MAX_SCRIPT_MEMORY: u64 = 1 << 30;

/// A compiled recipe.
#[derive(Debug, Clone)]
pub struct Program {
    /// Bound on the whole run (teardown excluded).
    pub deadline: Option<Duration>,
    /// Start-up sync, `None` when off.
    pub sync: Option<SyncPlan>,
    /// URC handlers, included files first.
    pub urc: Vec<UrcHandler>,
    /// The steps in run order.
    pub steps: Vec<ProgramStep>,
    /// The teardown steps, run after the steps whatever their outcome.
    pub finally: Vec<ProgramStep>,
    /// Bound on the whole teardown, from its start.
    pub finally_deadline: Duration,
    /// Resource limits.
    pub limits: Limits,
    /// The TLS clients its `tls:` steps loaded (shared by clones of the program): a driver
    /// may save their session cache files at the end of a run.
    pub tls_clients: super::tls::TlsClients,
}

impl Program {
    /// Every step, main steps first, then teardown steps (ordered by id).
    pub fn all_steps(&self) -> impl Iterator<Item = &ProgramStep> {
        self.steps.iter().chain(self.finally.iter())
    }

    /// The step with this id.
    pub fn step(&self, id: usize) -> Option<&ProgramStep> {
        self.all_steps().find(|s| s.id == id)
    }

    /// True when a step (or teardown step) does a TLS handshake (`tls:` with settings).
    pub fn uses_tls(&self) -> bool {
        self.all_steps()
            .any(|s| matches!(&s.action, StepAction::Tls(t) if t.is_handshake()))
    }
}

/// Start-up sync: `AT` every `interval` until `OK`, for at most `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPlan {
    /// How long to keep trying.
    pub within: Duration,
    /// How long to wait for `OK` after each `AT`.
    pub interval: Duration,
}

/// Resource limits of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the scripts of one step may hold (values and vars).
    pub script_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            script_memory: DEFAULT_SCRIPT_MEMORY,
        }
    }
}

/// A URC handler.
#[derive(Debug, Clone)]
pub struct UrcHandler {
    /// Tried against each unsolicited line.
    pub pattern: CompiledPattern,
    /// `true`: fail the run; `false`: only log.
    pub fail: bool,
    /// The message (default: "URC matched `…`").
    pub message: Template,
}

/// One step of the program.
#[derive(Debug, Clone)]
pub struct ProgramStep {
    /// Unique in the program: main steps `0..n`, then teardown steps.
    pub id: usize,
    /// Where the step is written.
    pub origin: Origin,
    /// The step's own `name`, if written.
    pub name: Option<Template>,
    /// `if:`: run only when this expands to a truthy text.
    pub condition: Option<Template>,
    /// `say:`: printed before the action.
    pub say: Option<Template>,
    /// `script:`: run before the action.
    pub script: Option<InlineScript>,
    /// Pause before the step.
    pub delay: Duration,
    /// Per-attempt timeout (the recipe's when the step sets none).
    pub timeout: Duration,
    /// Bound on the whole step, script included (`until` steps: two minutes by default).
    pub deadline: Option<Duration>,
    /// What a failure does.
    pub on_fail: OnFail,
    /// The modem IO of the step.
    pub action: StepAction,
}

impl ProgramStep {
    /// The name shown for the step: its `name`, else the command, else a description of
    /// the action (not redacted: the caller redacts).
    pub fn display_name(&self, vars: &Vars) -> String {
        let expand = |t: &Template| {
            vars.expand_template(t)
                .unwrap_or_else(|_| t.source().to_owned())
        };
        if let Some(n) = &self.name {
            return expand(n);
        }
        match &self.action {
            StepAction::Send(s) => expand(&s.command),
            StepAction::SendData(d) => format!("send_data {}", d.var),
            StepAction::Wait(w) => format!("wait {}", humantime::format_duration(w.duration)),
            StepAction::Tls(t) => t.describe().to_string(),
            StepAction::ExpectMqtt(_) | StepAction::Local => format!("step {}", self.id + 1),
        }
    }
}

/// A step's inline script with where its text starts.
#[derive(Debug, Clone)]
pub struct InlineScript {
    /// The script text.
    pub text: Arc<str>,
    /// The YAML file it is written in.
    pub file: PathBuf,
    /// 1-based line of its first character in that file.
    pub line: usize,
    /// 1-based column of its first character.
    pub column: usize,
    /// The YAML file's text (for snippets).
    pub yaml: Arc<str>,
}

/// The modem IO a step performs.
#[derive(Debug, Clone)]
pub enum StepAction {
    /// None: the step only runs its script and/or prints its message (the loader makes
    /// sure it has at least one of them).
    Local,
    /// `send:` a command line.
    Send(SendStep),
    /// `send_data:` bytes through `AT+CIPSEND`.
    SendData(SendDataStep),
    /// `wait:`.
    Wait(WaitStep),
    /// `expect_mqtt:`.
    ExpectMqtt(ExpectMqttStep),
    /// `tls:`: a handshake over the open connection, or `close_notify`.
    Tls(super::tls::TlsProgram),
}

/// A command step.
#[derive(Debug, Clone)]
pub struct SendStep {
    /// The command line (CR is appended when sent); never holds CR or LF as written.
    pub command: Template,
    /// Var whose bytes are typed after the command's `> ` prompt.
    pub prompt_data: Option<String>,
    /// Any of these completes the step (empty: `OK` does).
    pub expect: Vec<CompiledPattern>,
    /// The recipe's `abort` list (not for polls) and the step's.
    pub abort: Vec<CompiledPattern>,
    /// `until` polling.
    pub poll: Option<Poll>,
    /// Regexes with named groups.
    pub capture: Vec<Regex>,
    /// Checks of captured values, in the order written.
    pub validate: Vec<(String, Check)>,
    /// Captured vars are secret.
    pub secret: bool,
    /// Retries.
    pub retry: Retry,
}

/// `until` polling of a command.
#[derive(Debug, Clone)]
pub struct Poll {
    /// Any of these ends the poll successfully.
    pub until: Vec<CompiledPattern>,
    /// Pause between polls.
    pub interval: Duration,
}

/// Retries of a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Extra attempts.
    pub retries: u32,
    /// Pause before the first retry.
    pub delay: Duration,
    /// Factor applied to the pause after each retry (1.0 to 10.0).
    pub backoff: f64,
    /// Commands sent before each retry (results ignored).
    pub recover: Vec<Template>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            retries: 0,
            delay: super::load::DEFAULT_RETRY_DELAY,
            backoff: 1.0,
            recover: Vec::new(),
        }
    }
}

/// A data send.
#[derive(Debug, Clone)]
pub struct SendDataStep {
    /// The var holding the bytes.
    pub var: String,
    /// Largest chunk (`None`: ask the modem).
    pub chunk: Option<usize>,
    /// Hex mode.
    pub hex: bool,
    /// The recipe's `abort` list and the step's.
    pub abort: Vec<CompiledPattern>,
    /// Retries.
    pub retry: Retry,
}

/// A wait.
#[derive(Debug, Clone)]
pub struct WaitStep {
    /// How long.
    pub duration: Duration,
    /// Any line (URCs included) matching one of these ends the wait successfully.
    pub expect: Vec<CompiledPattern>,
    /// The recipe's `abort` list and the step's.
    pub abort: Vec<CompiledPattern>,
}

/// An MQTT wait.
#[derive(Debug, Clone)]
pub struct ExpectMqttStep {
    /// What ends it.
    pub want: MqttWant,
    /// Only the acknowledgement of this packet id counts.
    pub packet_id: Option<Setting<u16>>,
    /// PINGREQ interval.
    pub keep_alive: Option<Duration>,
    /// Rhai hook called for each message.
    pub on_message: Option<String>,
    /// Do not print messages.
    pub quiet: bool,
    /// The recipe's `abort` list.
    pub abort: Vec<CompiledPattern>,
}

/// What an MQTT wait waits for.
#[derive(Debug, Clone)]
pub enum MqttWant {
    /// One packet of this type (an acknowledgement), whose result is checked.
    Packet(PacketType),
    /// Incoming messages: `count` of them, or as many as come in `duration` (neither: one).
    Messages {
        /// How many.
        count: Option<Setting<u64>>,
        /// How long.
        duration: Option<Setting<Duration>>,
    },
    /// The packet type is a template (`packet: "{{ack}}"`), resolved when the step runs.
    Templated(Template),
}

impl MqttWant {
    /// True when the wait is for incoming messages.
    pub fn is_messages(&self) -> bool {
        matches!(self, MqttWant::Messages { .. })
    }
}

/// A value fixed at load, or a template resolved when the step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting<T> {
    /// Known at load.
    Fixed(T),
    /// `{{var}}` text, resolved at run time.
    Template(Template),
}

impl Setting<u64> {
    /// The number, expanding a template.
    pub fn resolve(&self, vars: &Vars, what: &str) -> Result<u64, String> {
        match self {
            Setting::Fixed(n) => Ok(*n),
            Setting::Template(t) => {
                let text = vars.expand_template(t).map_err(|e| e.to_string())?;
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{what}: `{text}` is not a whole number"))
            }
        }
    }
}

impl Setting<u16> {
    /// The packet id, expanding a template.
    pub fn resolve(&self, vars: &Vars, what: &str) -> Result<u16, String> {
        match self {
            Setting::Fixed(n) => Ok(*n),
            Setting::Template(t) => {
                let id = Setting::<u64>::Template(t.clone()).resolve(vars, what)?;
                u16::try_from(id)
                    .ok()
                    .filter(|&id| id > 0)
                    .ok_or_else(|| format!("{what}: {id} is not a packet id (1-65535)"))
            }
        }
    }
}

impl Setting<Duration> {
    /// The duration, expanding a template.
    pub fn resolve(&self, vars: &Vars, what: &str) -> Result<Duration, String> {
        match self {
            Setting::Fixed(d) => Ok(*d),
            Setting::Template(t) => {
                let text = vars.expand_template(t).map_err(|e| e.to_string())?;
                super::model::parse_duration(&text).map_err(|e| format!("{what}: {e}"))
            }
        }
    }
}

/// A pattern: compiled at load when it has no `{{vars}}`, else a template compiled when
/// the step runs.
#[derive(Debug, Clone)]
pub struct CompiledPattern {
    source: String,
    regex: bool,
    /// The text (or regex body) to expand.
    body: Template,
    compiled: Option<Matcher>,
}

impl CompiledPattern {
    /// From pattern text as written (`/regex/` or plain text). The loader has already
    /// checked the syntax; an error here names the problem.
    pub fn parse(source: &str) -> Result<CompiledPattern, ExpandError> {
        let regex = source.len() >= 2 && source.starts_with('/') && source.ends_with('/');
        let body_text = if regex {
            &source[1..source.len() - 1]
        } else {
            source
        };
        let body = Template::parse(body_text)?;
        let compiled = match body.as_literal() {
            Some(text) if regex => Some(
                Matcher::regex(&text)
                    .map_err(|e| ExpandError::Regex(e.to_string()))?
                    .described_as(source),
            ),
            Some(text) => Some(Matcher::literal(&text).described_as(source)),
            None => None,
        };
        Ok(CompiledPattern {
            source: source.to_owned(),
            regex,
            body,
            compiled,
        })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when compiled at load (no `{{vars}}`).
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    /// The matcher: the one compiled at load, or the template expanded (regex-escaping
    /// values inside `/…/`) and compiled now.
    pub fn matcher(&self, vars: &Vars) -> Result<Matcher, ExpandError> {
        if let Some(m) = &self.compiled {
            return Ok(m.clone());
        }
        let m = if self.regex {
            let body = vars.expand_regex_template(&self.body)?;
            Matcher::regex(&body).map_err(|e| ExpandError::Regex(e.to_string()))?
        } else {
            Matcher::literal(&vars.expand_template(&self.body)?)
        };
        Ok(m.described_as(&self.source))
    }
}

/// A check of a captured (or declared) value, with its regex compiled.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// The value must match this regex.
    pub regex: Option<Regex>,
    /// At least this, read as a number.
    pub min: Option<f64>,
    /// At most this, read as a number.
    pub max: Option<f64>,
    /// Equal to this.
    pub equals: Option<String>,
    /// None of these.
    pub not: Vec<String>,
    /// At most this many bytes long.
    pub max_len: Option<u64>,
}

impl Check {
    /// From a validator as written; `Err` names a regex that does not compile.
    pub fn from_validator(v: &super::model::Validator) -> Result<Check, regex::Error> {
        Ok(Check {
            regex: v.regex.as_deref().map(crate::engine::compile).transpose()?,
            min: v.min,
            max: v.max,
            equals: v.equals.clone(),
            not: v.not.clone(),
            max_len: v.max_len,
        })
    }

    /// `Some(message)` when `value` fails the check. The message shows the value: the
    /// caller redacts it (or does not show it) when it is secret.
    pub fn verdict(&self, name: &str, value: &str) -> Option<String> {
        if let Some(max) = self.max_len
            && u64::try_from(value.len()).unwrap_or(u64::MAX) > max
        {
            return Some(format!(
                "{name} is {} bytes long, over the maximum of {max}",
                value.len()
            ));
        }
        if let Some(eq) = &self.equals
            && value != eq
        {
            return Some(format!("{name} = `{value}`, expected `{eq}`"));
        }
        if self.not.iter().any(|n| n == value) {
            return Some(format!("{name} = `{value}`, which is not allowed"));
        }
        if let Some(re) = &self.regex
            && !re.is_match(value)
        {
            return Some(format!(
                "{name} = `{value}` does not match /{}/",
                re.as_str()
            ));
        }
        if self.min.is_some() || self.max.is_some() {
            let Ok(n) = value.trim().parse::<f64>() else {
                return Some(format!("{name} = `{value}` is not a number"));
            };
            if let Some(min) = self.min
                && n < min
            {
                return Some(format!("{name} = {value}, below the minimum {min}"));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Some(format!("{name} = {value}, above the maximum {max}"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::vars::{Env, VarValue};

    #[test]
    fn patterns_without_vars_are_compiled_once() {
        let p = CompiledPattern::parse("/^\\+CSQ: \\d+/").unwrap();
        assert!(p.is_compiled());
        let vars = Vars::new(Env::default());
        assert!(p.matcher(&vars).unwrap().is_match("+CSQ: 20,99"));
        let mut vars = Vars::new(Env::default());
        vars.set("ip", VarValue::Text("10.0.0.1".into()), false);
        let p = CompiledPattern::parse("/^{{ip}}$/").unwrap();
        assert!(!p.is_compiled());
        let m = p.matcher(&vars).unwrap();
        assert!(m.is_match("10.0.0.1") && !m.is_match("10a0b0c1"));
        assert_eq!(m.source(), "/^{{ip}}$/");
    }

    #[test]
    fn checks_name_what_failed() {
        let c = Check {
            max_len: Some(3),
            ..Check::default()
        };
        assert!(c.verdict("p", "abcd").unwrap().contains("4 bytes long"));
        assert!(c.verdict("p", "abc").is_none());
    }
}
