//! Recipe variables and `{{var}}` interpolation.
//!
//! The template syntax is in [`super::template`]. A var holding bytes (built by a script
//! for `send_data`) cannot be expanded into text: that is an error naming the var. The
//! built-in `{{link.tcp}}` and `{{link.mqtt}}` are not entries of the store: the run sets
//! them with [`Vars::set_link`], and nothing else can.
//!
//! [`Vars`] is the runtime store: ordered, one secret flag per var. Secret values are
//! replaced by `***` by [`Vars::redact`] and [`Vars::to_json`]; once a var is secret
//! it stays secret whatever is stored in it later.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::model::Pattern;
pub use super::template::{
    ExpandError, LinkVar, MAX_EXPANDED, Template, TemplatePiece, is_var_name,
};
pub(crate) use super::template::{Piece, Placeholder, parse_template, placeholders};
use crate::util::hex::hex as hex_sep;

/// Upper-case hex without separators.
/// Byte vars up to this size are shown in full in [`Vars::to_json`].
pub const JSON_BYTES_MAX: usize = 4096;

fn hex(bytes: &[u8]) -> String {
    hex_sep(bytes, "")
}

pub use crate::engine::{Matcher, REGEX_SIZE_LIMIT, compile as compile_regex};

/// Where `{{env.NAME}}` is read from.
#[derive(Debug, Clone, Default)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// A fixed map (tests, or a caller that filters the environment).
    Map(BTreeMap<String, String>),
}

impl Env {
    /// The value of `name`, or `None` when it is unset (or not valid UTF-8).
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(map) => map.get(name).cloned(),
        }
    }

    /// A fixed environment from `(name, value)` pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// The value of a var.
#[derive(Clone, PartialEq, Eq)]
pub enum VarValue {
    /// Text: defaults, `--set`, captures.
    Text(String),
    /// Bytes built by a script (an MQTT packet for `send_data`), shared without copying
    /// with the send that carries them.
    Bytes(Arc<[u8]>),
}

impl VarValue {
    /// The text, when the value is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            VarValue::Text(t) => Some(t),
            VarValue::Bytes(_) => None,
        }
    }

    /// The raw bytes (UTF-8 of a text value).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            VarValue::Text(t) => t.as_bytes(),
            VarValue::Bytes(b) => b,
        }
    }

    /// The bytes as a shared buffer: the var's own buffer for bytes (no copy), a new one
    /// holding the UTF-8 of a text.
    pub fn shared_bytes(&self) -> Arc<[u8]> {
        match self {
            VarValue::Text(t) => Arc::from(t.as_bytes()),
            VarValue::Bytes(b) => Arc::clone(b),
        }
    }

    /// True for the empty text and for zero bytes.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl fmt::Debug for VarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarValue::Text(t) => write!(f, "Text({t:?})"),
            VarValue::Bytes(b) => write!(f, "Bytes({})", hex(b)),
        }
    }
}

impl From<&str> for VarValue {
    fn from(s: &str) -> Self {
        VarValue::Text(s.to_owned())
    }
}

impl From<String> for VarValue {
    fn from(s: String) -> Self {
        VarValue::Text(s)
    }
}

impl From<Vec<u8>> for VarValue {
    fn from(b: Vec<u8>) -> Self {
        VarValue::Bytes(b.into())
    }
}

impl From<Arc<[u8]>> for VarValue {
    fn from(b: Arc<[u8]>) -> Self {
        VarValue::Bytes(b)
    }
}

impl VarValue {
    /// The value's size in bytes (what it holds in memory, roughly).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when both hold the same value; shared bytes compare by pointer first.
    pub fn same_as(&self, other: &VarValue) -> bool {
        match (self, other) {
            (VarValue::Bytes(a), VarValue::Bytes(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => self == other,
        }
    }
}

#[derive(Clone)]
struct Entry {
    name: String,
    value: VarValue,
    secret: bool,
}

/// The runtime variable store: ordered, with a secret flag per var, and the
/// environment `{{env.X}}` reads.
#[derive(Clone, Default)]
pub struct Vars {
    entries: Vec<Entry>,
    index: BTreeMap<String, usize>,
    env: Env,
    link: LinkState,
}

/// The connection state behind `{{link.tcp}}` and `{{link.mqtt}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    /// A TCP connection is open.
    pub tcp: bool,
    /// An MQTT session is up (CONNACK accepted, no DISCONNECT sent, connection open).
    pub mqtt: bool,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for e in &self.entries {
            if e.secret {
                map.entry(&e.name, &"***");
            } else {
                map.entry(&e.name, &e.value);
            }
        }
        map.finish()
    }
}

impl Vars {
    /// An empty store reading `{{env.X}}` from `env`.
    pub fn new(env: Env) -> Vars {
        Vars {
            entries: Vec::new(),
            index: BTreeMap::new(),
            env,
            link: LinkState::default(),
        }
    }

    /// Update `{{link.tcp}}` and `{{link.mqtt}}` (the run does this as the connection
    /// changes).
    pub fn set_link(&mut self, link: LinkState) {
        self.link = link;
    }

    /// The state behind `{{link.tcp}}` and `{{link.mqtt}}`.
    pub fn link(&self) -> LinkState {
        self.link
    }

    /// Total bytes held by the values of all vars.
    pub fn total_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.value.len() + e.name.len())
            .fold(0usize, usize::saturating_add)
    }

    /// The environment `{{env.X}}` reads.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Set a var (new vars go last). A var that is secret stays secret: `secret`
    /// can only add the flag.
    pub fn set(&mut self, name: &str, value: VarValue, secret: bool) {
        match self.index.get(name) {
            Some(&i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    e.value = value;
                    e.secret |= secret;
                }
            }
            None => {
                self.index.insert(name.to_owned(), self.entries.len());
                self.entries.push(Entry {
                    name: name.to_owned(),
                    value,
                    secret,
                });
            }
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&VarValue> {
        self.index
            .get(name)
            .and_then(|&i| self.entries.get(i))
            .map(|e| &e.value)
    }

    /// True when `name` is a secret var.
    pub fn is_secret(&self, name: &str) -> bool {
        self.index
            .get(name)
            .and_then(|&i| self.entries.get(i))
            .is_some_and(|e| e.secret)
    }

    /// Number of vars.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no vars.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Expand `{{name}}`, `{{env.NAME}}` and `{{{{` in `template`.
    pub fn expand(&self, template: &str) -> Result<String, ExpandError> {
        self.expand_with(template, |s, out| out.push_str(s))
    }

    fn expand_with(
        &self,
        template: &str,
        push_value: impl FnMut(&str, &mut String),
    ) -> Result<String, ExpandError> {
        let parsed = Template::parse(template)?;
        self.expand_pieces(parsed.pieces(), push_value)
    }

    /// Expand a template parsed at load.
    pub fn expand_template(&self, template: &Template) -> Result<String, ExpandError> {
        self.expand_pieces(template.pieces(), |s, out| out.push_str(s))
    }

    /// Expand a regex body parsed at load, regex-escaping every inserted value.
    pub fn expand_regex_template(&self, template: &Template) -> Result<String, ExpandError> {
        self.expand_pieces(template.pieces(), |s, out| out.push_str(&regex::escape(s)))
    }

    fn expand_pieces(
        &self,
        pieces: &[TemplatePiece],
        mut push_value: impl FnMut(&str, &mut String),
    ) -> Result<String, ExpandError> {
        let mut out = String::new();
        for piece in pieces {
            match piece {
                TemplatePiece::Text(t) => out.push_str(t),
                TemplatePiece::Var(name) => match self.get(name) {
                    Some(VarValue::Text(t)) => {
                        check_len(out.len(), t.len())?;
                        push_value(t, &mut out);
                    }
                    Some(VarValue::Bytes(_)) => return Err(ExpandError::BytesVar(name.clone())),
                    None => return Err(ExpandError::UnknownVar(name.clone())),
                },
                TemplatePiece::Env(name) => match self.env.get(name) {
                    Some(v) => {
                        check_len(out.len(), v.len())?;
                        push_value(&v, &mut out);
                    }
                    None => return Err(ExpandError::UnsetEnv(name.clone())),
                },
                TemplatePiece::Link(l) => {
                    let on = match l {
                        LinkVar::Tcp => self.link.tcp,
                        LinkVar::Mqtt => self.link.mqtt,
                    };
                    out.push_str(if on { "true" } else { "false" });
                }
            }
            if out.len() > MAX_EXPANDED {
                return Err(ExpandError::TooLong(out.len()));
            }
        }
        Ok(out)
    }

    /// Expand a pattern. For plain text the result is the text to look for. For a
    /// `/regex/` the result is the regex source **without** the delimiters, with
    /// every inserted value regex-escaped (so a var matches literally).
    pub fn expand_pattern(&self, p: &Pattern) -> Result<String, ExpandError> {
        if p.is_regex() {
            let body = &p.as_str()[1..p.as_str().len() - 1];
            self.expand_with(body, |s, out| out.push_str(&regex::escape(s)))
        } else {
            self.expand(p.as_str())
        }
    }

    /// Expand and compile a pattern into a [`Matcher`] (reported as written).
    pub fn matcher(&self, p: &Pattern) -> Result<Matcher, ExpandError> {
        let expanded = self.expand_pattern(p)?;
        let m = if p.is_regex() {
            Matcher::regex(&expanded).map_err(|e| ExpandError::Regex(e.to_string()))?
        } else {
            Matcher::literal(&expanded)
        };
        Ok(m.described_as(p.as_str()))
    }

    /// The raw bytes of every non-empty secret value (defaults pulled from the
    /// environment included), without duplicates.
    pub fn secret_values(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.secret && !e.value.is_empty())
        {
            let bytes = e.value.as_bytes().to_vec();
            if !out.contains(&bytes) {
                out.push(bytes);
            }
        }
        out
    }

    /// Every form in which a secret may show up, longest first: its raw bytes and its hex
    /// forms (upper, lower, upper with spaces), as `AT+CIPSENDHEX` sends and transcripts
    /// and logs show bytes. The transcript and [`Vars::redact`] both redact these.
    pub fn secret_forms(&self) -> Vec<Vec<u8>> {
        self.secrets().forms().to_vec()
    }

    /// Every form of every secret value (see [`crate::redact::Secrets`]).
    pub fn secrets(&self) -> crate::redact::Secrets {
        crate::redact::Secrets::from_values(self.secret_values())
    }

    /// Replace every secret (in each of its [`Vars::secret_forms`]) in `text` by `***`.
    pub fn redact(&self, text: &str) -> String {
        let forms = self.secret_forms();
        if forms.is_empty() {
            return text.to_owned();
        }
        String::from_utf8_lossy(&redact_bytes(text.as_bytes(), &forms)).into_owned()
    }

    /// The vars as a JSON object: secrets as `"***"`, bytes as upper-case hex. Bytes over
    /// [`JSON_BYTES_MAX`] (a 1 MiB PUBLISH built by a script) are shown by their first 64
    /// bytes and their length: the outcome of every device would otherwise hold twice the
    /// packet as text.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        let secrets = self.secret_values();
        for e in &self.entries {
            let v = if e.secret {
                "***".to_owned()
            } else {
                match &e.value {
                    VarValue::Text(t) => self.redact(t),
                    // Bytes that carry a secret (a CONNECT with the password) are not
                    // shown at all: hex would give the secret away.
                    VarValue::Bytes(b)
                        if secrets
                            .iter()
                            .any(|s| !s.is_empty() && b.windows(s.len()).any(|w| w == s)) =>
                    {
                        format!("*** ({} bytes)", b.len())
                    }
                    VarValue::Bytes(b) if b.len() > JSON_BYTES_MAX => {
                        let head = b.get(..64).unwrap_or(b);
                        format!("{}… ({} bytes)", hex(head), b.len())
                    }
                    VarValue::Bytes(b) => hex(b),
                }
            };
            map.insert(e.name.clone(), serde_json::Value::String(v));
        }
        serde_json::Value::Object(map)
    }

    /// `(name, value, secret)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &VarValue, bool)> {
        self.entries
            .iter()
            .map(|e| (e.name.as_str(), &e.value, e.secret))
    }
}

/// Refuse an expansion that would pass [`MAX_EXPANDED`] before copying the value.
fn check_len(have: usize, adding: usize) -> Result<(), ExpandError> {
    let total = have.saturating_add(adding);
    if total > MAX_EXPANDED {
        Err(ExpandError::TooLong(total))
    } else {
        Ok(())
    }
}

/// Replacement for a secret.
pub use crate::redact::REDACTED;

/// Replace every occurrence of each form in `bytes` with `***` (`forms` longest first).
pub fn redact_bytes(bytes: &[u8], forms: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'outer: while i < bytes.len() {
        for f in forms {
            if !f.is_empty() && bytes[i..].starts_with(f) {
                out.extend_from_slice(REDACTED.as_bytes());
                i += f.len();
                continue 'outer;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_raw_and_every_hex_form() {
        let mut v = Vars::new(Env::default());
        v.set("pw", VarValue::Text("hunter2".into()), true);
        let text = "hunter2 68756E74657232 68756e74657232 68 75 6E 74 65 72 32 hunter";
        assert_eq!(v.redact(text), "*** *** *** *** hunter");
    }

    fn vars() -> Vars {
        let mut v = Vars::new(Env::from_pairs([
            ("HOME_APN", "iot.example"),
            ("PW", "hunter2"),
        ]));
        v.set("apn", "internet".into(), false);
        v.set("pw", "s3cr3t!".into(), true);
        v.set("packet", VarValue::from(vec![0x10, 0x02]), false);
        v
    }

    #[test]
    fn expands_vars_env_and_escapes() {
        let v = vars();
        assert_eq!(
            v.expand("AT+CSTT=\"{{apn}}\",\"{{ env.HOME_APN }}\"")
                .unwrap(),
            "AT+CSTT=\"internet\",\"iot.example\""
        );
        assert_eq!(v.expand("{{{{apn}} }}").unwrap(), "{{apn}} }}");
        assert_eq!(v.expand("no placeholders").unwrap(), "no placeholders");
        assert_eq!(v.expand("").unwrap(), "");
        assert_eq!(v.expand("ünï{{apn}}cödé").unwrap(), "ünïinternetcödé");
    }

    #[test]
    fn big_byte_vars_are_shown_by_head_and_length_in_json() {
        let mut v = Vars::default();
        v.set("small", VarValue::Bytes(vec![0xAB; 3].into()), false);
        v.set("big", VarValue::Bytes(vec![0x30; 1 << 20].into()), false);
        let j = v.to_json();
        assert_eq!(j["small"], "ABABAB");
        let big = j["big"].as_str().unwrap_or_default();
        assert_eq!(big, format!("{}… (1048576 bytes)", "30".repeat(64)));
    }

    #[test]
    fn expansion_errors_name_the_problem() {
        let v = vars();
        assert_eq!(
            v.expand("{{nope}}"),
            Err(ExpandError::UnknownVar("nope".into()))
        );
        assert_eq!(
            v.expand("{{env.NOPE}}"),
            Err(ExpandError::UnsetEnv("NOPE".into()))
        );
        assert_eq!(
            v.expand("{{packet}}"),
            Err(ExpandError::BytesVar("packet".into()))
        );
        for bad in [
            "{{ }}",
            "{{1x}}",
            "{{a-b}}",
            "x {{apn",
            "{{env.}}",
            "{{{apn}}}",
        ] {
            match v.expand(bad) {
                Err(ExpandError::Syntax { offset, .. }) => assert!(offset < bad.len(), "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let Err(ExpandError::Syntax { offset, len, .. }) = v.expand("ab{{1x}}") else {
            panic!("expected a syntax error");
        };
        assert_eq!((offset, len), (2, 6));
    }

    #[test]
    fn regex_patterns_escape_values() {
        let mut v = vars();
        v.set("ip", "10.0.0.1".into(), false);
        let p = Pattern("/^\\+CIFSR: {{ip}}$/".into());
        assert_eq!(v.expand_pattern(&p).unwrap(), "^\\+CIFSR: 10\\.0\\.0\\.1$");
        let m = v.matcher(&p).unwrap();
        assert!(m.is_match("+CIFSR: 10.0.0.1"));
        assert!(!m.is_match("+CIFSR: 10a0b0c1"));
        let plain = Pattern("IP {{ip}}".into());
        assert_eq!(v.expand_pattern(&plain).unwrap(), "IP 10.0.0.1");
        assert!(v.matcher(&plain).unwrap().is_match("STATE: IP 10.0.0.1 ok"));
    }

    #[test]
    fn secrets_are_sticky_and_redacted() {
        let mut v = vars();
        assert!(v.is_secret("pw"));
        v.set("pw", "other".into(), false);
        assert!(v.is_secret("pw"), "secret flag must survive a later set");
        v.set("token", VarValue::from(b"tok".to_vec()), true);
        v.set("empty", "".into(), true);
        assert_eq!(v.secret_values(), vec![b"other".to_vec(), b"tok".to_vec()]);
        assert_eq!(
            v.redact("user other pw, hex 746F6B and 746f6b, apn internet"),
            "user *** pw, hex *** and ***, apn internet"
        );
        let json = v.to_json();
        assert_eq!(json["pw"], "***");
        assert_eq!(json["apn"], "internet");
        assert_eq!(json["packet"], "1002");
        assert!(!format!("{v:?}").contains("other"));
        let names: Vec<_> = v.iter().map(|(n, _, s)| (n, s)).collect();
        assert_eq!(
            names,
            [
                ("apn", false),
                ("pw", true),
                ("packet", false),
                ("token", true),
                ("empty", true)
            ]
        );
    }

    #[test]
    fn redaction_prefers_the_longest_secret() {
        let mut v = Vars::new(Env::default());
        v.set("a", "abc".into(), true);
        v.set("b", "abcdef".into(), true);
        assert_eq!(v.redact("xabcdefy abc"), "x***y ***");
    }

    #[test]
    fn var_names() {
        for ok in ["a", "_", "apn_2", "A9"] {
            assert!(is_var_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é"] {
            assert!(!is_var_name(bad), "{bad}");
        }
    }
}
