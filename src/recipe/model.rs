//! The recipe data model: what a YAML recipe file deserializes into.
//!
//! These types are plain data. Loading (YAML parsing, `include:` resolution, error
//! rendering) lives in [`super::load`](mod@super::load); variable interpolation in [`super::vars`].
//! Every struct denies unknown keys so a typo is an error with a location, never a
//! silently ignored setting.

use std::collections::BTreeMap;
use std::time::Duration;

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// A whole recipe file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Human-readable name shown in progress output and reports.
    #[serde(default)]
    pub name: Option<String>,
    /// What the recipe does.
    #[serde(default)]
    pub description: Option<String>,
    /// Other YAML files (paths relative to this file, `{{var}}` allowed) whose `vars`
    /// are merged underneath this file's and whose `steps` run before this file's steps,
    /// in the order listed.
    #[serde(default)]
    pub include: OneOrMany<String>,
    /// A per-carrier profile file: the same as one more `include:` entry, listed first.
    #[serde(default)]
    pub profile: Option<String>,
    /// Variables with their defaults. Override with `--set key=value`.
    #[serde(default)]
    pub vars: BTreeMap<String, VarDef>,
    /// Rhai script files (relative to this file) whose functions every `script:` step
    /// of this recipe can call.
    #[serde(default)]
    pub scripts: OneOrMany<String>,
    /// Default per-attempt timeout for steps that do not set one (default `5s`).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<Duration>,
    /// Patterns that fail any step at once. Defaults to `ERROR`, `+CME ERROR`,
    /// `+CMS ERROR`, `CONNECT FAIL`, `SEND FAIL`.
    #[serde(default)]
    pub abort: Option<Vec<Pattern>>,
    /// Bound on the whole run, start-up sync included.
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub deadline: Option<Duration>,
    /// Start-up sync: send `AT` until `OK` (the SIM7000 autobauds). `false` disables it.
    #[serde(default)]
    pub sync: Option<SyncSpec>,
    /// Handlers for unsolicited result codes.
    #[serde(default)]
    pub urc: Vec<UrcHandler>,
    /// The steps, run in order.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
    /// Teardown: steps (same syntax) that run after the steps, whether the run passed,
    /// failed or was interrupted, under `finally_deadline`, without changing the verdict.
    /// This file's `finally` steps run first, then those of the files it includes, the
    /// last included first. Use `if: "{{link.mqtt}}"` / `if: "{{link.tcp}}"` to act only
    /// on an open session or connection.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    pub finally: Vec<Spanned<Step>>,
    /// Bound on the whole teardown (`finally`), counted from its start (default `30s`).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub finally_deadline: Option<Duration>,
    /// Resource limits of the run.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// A place for YAML anchors (`&name`) that steps reuse with merge keys
    /// (`<<: *name`). Its content is not otherwise read.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub anchors: Option<de::IgnoredAny>,
}

/// Resource limits of a run.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most memory the scripts of one step may hold at once, vars included
    /// (default `64MiB`; at most `1GiB`). A size: `64MiB`, `512KiB`, `1000000`.
    #[serde(default)]
    pub script_memory: Option<ByteSize>,
}

/// A size in bytes, written as a whole number (`1048576`) or with a unit: `B`, `KiB`,
/// `MiB`, `GiB` (powers of 1024) or `kB`, `MB`, `GB` (powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(with = "ByteSizeText")]
pub struct ByteSize(pub u64);

/// Schema of [`ByteSize`].
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum ByteSizeText {
    Bytes(u64),
    Text(#[schemars(pattern(r"^\s*\d+\s*(B|KiB|MiB|GiB|kB|KB|MB|GB)?\s*$"))] String),
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as `64MiB`, `512KiB` or `1000000`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parse `64MiB`, `512 KiB`, `10MB`, `1000`. Units are case-sensitive except `k`/`K`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let help = "write e.g. `64MiB`, `512KiB` or `1000000`";
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid size `{t}`: {help}"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit `{other}` in `{t}`: {help}")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("size `{t}` is too large"))
}

/// A variable definition: a bare value, or a map with a value and flags.
///
/// An empty value (`name:`) is the empty text.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum VarDef {
    /// `name: value` (strings, numbers and booleans are all kept as text).
    Plain(Scalar),
    /// `name: { value: ..., secret: true }`
    Full(VarSpec),
}

/// The long form of a variable.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VarSpec {
    /// Default value. May reference `{{env.NAME}}` and other vars.
    #[serde(default)]
    pub value: Option<Scalar>,
    /// Secret values are shown as `***` in logs, transcripts and reports.
    #[serde(default)]
    pub secret: bool,
    /// The run refuses to start while a required var is empty.
    #[serde(default)]
    pub required: bool,
    /// What the variable is for (shown by `sim7k check`).
    #[serde(default)]
    pub description: Option<String>,
    /// Checks on the value (its default and any `--set`), made when the recipe loads,
    /// e.g. `{ max_len: 512 }` for a payload or `{ min: 0, max: 8388608 }` for a size.
    #[serde(default)]
    pub validate: Option<Validator>,
}

/// A YAML scalar kept as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// Anything else, as written.
    Text(String),
}

impl Scalar {
    /// The scalar as the text `{{var}}` expands to.
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// One item or a list of items. An empty value (`key:`) is an empty list.
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany<T> {
    /// A single item written without a list.
    One(T),
    /// A list of items.
    Many(Vec<T>),
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    /// The items as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t),
            OneOrMany::Many(v) => v,
        }
    }
    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

/// A match pattern. Plain text matches as a substring of one whole line;
/// text written `/like this/` is a regular expression (Rust `regex` syntax) tried
/// against one whole line. `{{var}}` is expanded first (regex-escaped inside `/.../`).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(transparent)]
pub struct Pattern(#[schemars(with = "TextLike")] pub String);

impl Pattern {
    /// The pattern as written (with the `/.../` delimiters of a regex).
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// True when written `/regex/`.
    pub fn is_regex(&self) -> bool {
        self.0.len() >= 2 && self.0.starts_with('/') && self.0.ends_with('/')
    }
}

/// Start-up sync settings.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum SyncSpec {
    /// `sync: false` turns it off; `sync: true` uses the defaults.
    Enabled(bool),
    /// Tuned sync.
    Tuned(SyncTuning),
}

/// Tuning for the start-up sync.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncTuning {
    /// How long to keep trying (default `10s`).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub within: Option<Duration>,
    /// Wait for `OK` after each `AT` this long (default `300ms`).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub interval: Option<Duration>,
}

/// What to do when an unsolicited result code matches.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrcHandler {
    /// Pattern tried against each URC line.
    #[serde(rename = "match")]
    pub pattern: Pattern,
    /// `fail` ends the run with an error, `log` only records it (default `fail`).
    #[serde(default)]
    pub action: UrcAction,
    /// Message for the error or log line.
    #[serde(default)]
    pub message: Option<String>,
}

/// Action taken by a URC handler.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UrcAction {
    /// Fail the run at once.
    #[default]
    Fail,
    /// Record the URC and go on.
    Log,
}

/// What happens when a step fails after its retries.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    /// Stop the run (default).
    #[default]
    Fail,
    /// Record the failure and go on with the next step.
    Continue,
}

/// One step of a recipe.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Name shown in progress output, errors and reports (default: the command sent).
    #[serde(default)]
    pub name: Option<String>,
    /// Splice the steps of another YAML file here (its vars merge underneath).
    #[serde(default)]
    pub include: Option<String>,
    /// Run this step only when the text (after `{{var}}` expansion) is non-empty and not
    /// `false`/`0`.
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
    /// Print a message (after `{{var}}` expansion).
    #[serde(default)]
    pub say: Option<String>,
    /// Inline Rhai script (use a `|` block). Runs before `send`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub script: Option<Spanned<String>>,
    /// Command line to send (`{{var}}` expanded; CR appended).
    #[serde(default)]
    pub send: Option<String>,
    /// Name of a var whose bytes are typed after the `> ` prompt of the `send` command
    /// (e.g. the payload of `AT+SMPUB="topic",<len>,0,0`).
    #[serde(default)]
    pub prompt_data: Option<String>,
    /// Name of a var holding bytes (built by a script) to send through the binary-safe
    /// `AT+CIPSEND=<len>` form, in chunks.
    #[serde(default)]
    pub send_data: Option<String>,
    /// Options for `send_data`.
    #[serde(default)]
    pub data: Option<DataOptions>,
    /// Wait for an MQTT packet from the broker: `connack`, `suback`, `puback`, `pubrec`,
    /// `pubcomp`, `unsuback`, `pingresp`, or `publish` (incoming messages). The packet's
    /// result is checked (a refused CONNECT or SUBSCRIBE fails the step).
    #[serde(default)]
    pub expect_mqtt: Option<ExpectMqtt>,
    /// Wait this long doing nothing but handle URCs (a timeout-only step).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub wait: Option<Duration>,
    /// Patterns of which any one completes the step. Without `expect`, a step
    /// succeeds on the final `OK`.
    #[serde(default)]
    pub expect: OneOrMany<Pattern>,
    /// Patterns that fail the step at once, added to the recipe's `abort` list.
    #[serde(default)]
    pub abort: OneOrMany<Pattern>,
    /// Repeat the command until one of these matches (polling), within `deadline`.
    #[serde(default)]
    pub until: OneOrMany<Pattern>,
    /// Pause between polls of `until` (default `1s`).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub interval: Option<Duration>,
    /// Per-attempt timeout (default: the recipe's `timeout`).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<Duration>,
    /// Bound on the whole step, all retries and polls included.
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub deadline: Option<Duration>,
    /// Extra attempts after a failure.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Commands sent before each retry to bring the modem back to a state where the step
    /// can succeed (their results are ignored), e.g. `AT+CIPSHUT` and `AT+CSTT=…` before
    /// retrying `AT+CIICR`, which the SIM7000 refuses after a failed attempt.
    #[serde(default)]
    pub recover: OneOrMany<String>,
    /// Pause before a retry (default `1s`).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub retry_delay: Option<Duration>,
    /// Multiply `retry_delay` by this after each retry (default `1.0`, at most `10`).
    #[serde(default)]
    #[schemars(range(min = 1.0, max = 10.0))]
    pub backoff: Option<f64>,
    /// Pause before the step starts.
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub delay: Option<Duration>,
    /// Regexes (plain, not `/…/`) with named groups; each named group becomes a var.
    #[serde(default)]
    pub capture: OneOrMany<String>,
    /// Checks on captured values; a failed check fails the step with the value.
    #[serde(default)]
    pub validate: BTreeMap<String, Validator>,
    /// Captured vars that are secret.
    #[serde(default)]
    pub secret: bool,
    /// `continue` makes the step optional.
    #[serde(default)]
    pub on_fail: OnFail,
}

/// `expect_mqtt: connack` or the long form with options.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ExpectMqtt {
    /// Just the packet type.
    Packet(String),
    /// The packet type with options.
    Full(ExpectMqttSpec),
}

impl ExpectMqtt {
    /// The options (defaults for the short form).
    pub fn spec(&self) -> ExpectMqttSpec {
        match self {
            ExpectMqtt::Packet(p) => ExpectMqttSpec {
                packet: p.clone(),
                ..ExpectMqttSpec::default()
            },
            ExpectMqtt::Full(s) => s.clone(),
        }
    }
}

/// Options of an MQTT wait.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectMqttSpec {
    /// Packet type: `connack`, `suback`, `unsuback`, `puback`, `pubrec`, `pubcomp`,
    /// `pingresp`, or `publish` for incoming messages.
    pub packet: String,
    /// Only the acknowledgement of this packet id counts (`{{var}}` allowed).
    #[serde(default)]
    pub packet_id: Option<Scalar>,
    /// For `publish`: how many messages to receive (`{{var}}` allowed).
    #[serde(default)]
    pub count: Option<Scalar>,
    /// For `publish`: listen this long, then end successfully (`10m`; `{{var}}` allowed).
    #[serde(default)]
    pub duration: Option<String>,
    /// Send PINGREQ at this interval while waiting (default: the CONNECT's keep-alive).
    #[serde(default, deserialize_with = "duration_opt::deserialize")]
    #[schemars(with = "Option<DurationText>")]
    pub keep_alive: Option<Duration>,
    /// Rhai function called as `fn(topic, payload, qos, retain)` for each message.
    #[serde(default)]
    pub on_message: Option<String>,
    /// Do not print received messages on stdout.
    #[serde(default)]
    pub quiet: bool,
}

/// Options for a `send_data` step.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataOptions {
    /// Largest chunk per `AT+CIPSEND` (default 1460, or what `AT+CIPSEND?` reported).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1460))]
    pub chunk: Option<usize>,
    /// Send as hex text after `AT+CIPSENDHEX=1` (the original script's mode).
    #[serde(default)]
    pub hex: bool,
    /// Documents that `AT+CIPQSEND=1` is in force. sim7k accepts `DATA ACCEPT:<len>` as
    /// well as `SEND OK` either way, so this changes nothing.
    #[serde(default)]
    pub quick: bool,
}

/// A check on a captured value.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// The value must match this regex.
    #[serde(default)]
    pub regex: Option<String>,
    /// The value, read as a number, must be at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// The value, read as a number, must be at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// The value must equal this text.
    #[serde(default)]
    #[schemars(with = "Option<TextLike>")]
    pub equals: Option<String>,
    /// The value must not equal any of these (e.g. `99` for CSQ's "unknown").
    #[serde(default)]
    #[schemars(with = "Vec<TextLike>")]
    pub not: Vec<String>,
    /// The value must be at most this many bytes long.
    #[serde(default)]
    pub max_len: Option<u64>,
}

// Hand-written `Deserialize` for the "either this or that" types. Serde's
// `#[serde(untagged)]` buffers the value and, when no variant fits, reports only
// "data did not match any variant", losing the real problem (an unknown key in a
// var spec, say). These dispatch on the YAML node kind instead, so errors inside a
// map still name the key and point at it.

impl<'de> Deserialize<'de> for VarDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VarDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a value (text, number or boolean) or a map with `value`, `secret`, `validate`, \
                     `required`, `description`",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VarDef, A::Error> {
                VarSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(VarDef::Full)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<VarDef, E> {
                Ok(VarDef::Plain(Scalar::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<VarDef, E> {
                Ok(VarDef::Plain(Scalar::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<VarDef, E> {
                Ok(VarDef::Plain(Scalar::from_u64(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<VarDef, E> {
                Ok(VarDef::Plain(Scalar::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VarDef, E> {
                Ok(VarDef::Plain(Scalar::Text(v.to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<VarDef, E> {
                Ok(VarDef::Plain(Scalar::Text(String::new())))
            }
            fn visit_none<E: de::Error>(self) -> Result<VarDef, E> {
                self.visit_unit()
            }
        }
        d.deserialize_any(V)
    }
}

impl Scalar {
    fn from_u64(v: u64) -> Scalar {
        i64::try_from(v).map_or_else(|_| Scalar::Text(v.to_string()), Scalar::Int)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a text, number or boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::from_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Text(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                self.visit_unit()
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> V<T> {
            fn text<E: de::Error>(v: String) -> Result<OneOrMany<T>, E> {
                let de: de::value::StringDeserializer<E> = v.into_deserializer();
                T::deserialize(de).map(OneOrMany::One)
            }
        }
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("one item or a list of items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            // Numbers and booleans are taken as their text (`expect: 42`).
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Self::text(v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Self::text(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Self::text(v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Self::text(v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Self::text(v.to_owned())
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Self::text(v)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OneOrMany::Many(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                self.visit_unit()
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for SyncSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SyncSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true`, `false` or a map with `within` and `interval`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SyncSpec, E> {
                Ok(SyncSpec::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SyncSpec, A::Error> {
                SyncTuning::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(SyncSpec::Tuned)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SyncSpec, E> {
                Err(E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// Text in the schema; YAML numbers and booleans are read as their text too
/// (`equals: 1`, `not: [99]`).
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum TextLike {
    Text(String),
    Number(f64),
    Bool(bool),
}

impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A YAML scalar kept as text: a string, number or boolean (empty is the empty text).",
            "type": ["string", "number", "boolean", "null"]
        })
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        format!("sim7k::OneOrMany<{}>", T::schema_id()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let item = generator.subschema_for::<T>();
        schemars::json_schema!({
            "description": "One item or a list of items (empty means none).",
            "anyOf": [
                item,
                { "type": "array", "items": item },
                { "type": "null" }
            ]
        })
    }
}

/// Duration text: `500ms`, `85s`, `2m`, `1m 30s`.
#[derive(JsonSchema)]
#[schemars(transparent)]
pub struct DurationText(
    #[schemars(pattern(
        r"^\s*\d+(\.\d+)?\s*(ns|us|ms|s|sec|m|min|h)(\s*\d+(\.\d+)?\s*(ns|us|ms|s|sec|m|min|h))*\s*$"
    ))]
    #[allow(dead_code)]
    String,
);

/// Serde helper for `Option<Duration>` written as humantime text.
pub mod duration_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// Deserialize `"5s"`-style text into a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(t) => super::parse_duration(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parse `500ms`, `85s`, `2m`, `1m 30s`. A bare number is refused (units are required).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration: write e.g. `500ms`, `85s` or `2m`".into());
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "duration `{t}` has no unit: write e.g. `{t}s` or `{t}ms`"
        ));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration `{t}` ({e}): write e.g. `500ms`, `85s` or `2m`"))
}
