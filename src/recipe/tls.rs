//! TLS in recipes: the `tls:` step, from the YAML model to the engine's [`TlsPlan`].
//!
//! ```yaml
//! - name: open TCP to the broker
//!   send: AT+CIPSTART="TCP","{{broker_host}}",{{broker_port}}
//! - name: TLS handshake
//!   tls:
//!     ca_file: "{{ca_file}}"          # empty: the bundled Mozilla roots
//!     client_cert: "{{client_cert}}"  # mutual TLS, with client_key
//!     client_key: "{{client_key}}"
//!     sni: "{{sni}}"                  # empty: the broker host; `false`: none; a name
//!     alpn: "{{alpn}}"                # comma-separated, or a list
//!   timeout: 60s
//! # … send_data / expect_mqtt as over plain TCP: the engine encrypts and decrypts …
//! finally:
//!   - send: AT+CIPSHUT                # close_notify goes out first, by itself
//! ```
//!
//! Every setting takes `{{vars}}` (so `--set` and `{{env.X}}` work); an empty value means
//! the default. Files are read once per run when the first handshake with these settings
//! is planned, and the loaded client is kept for the whole run (shared by every `tls:` step
//! of the recipe and every device of a fleet), so later connections resume their TLS
//! session. Relative paths are relative to the directory sim7k runs in. See docs/tls.md.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::model::{OneOrMany, Scalar};
use super::template::Template;
use super::vars::Vars;
use crate::engine::{TlsHandshake, TlsPlan};
use crate::tls::{TlsClient, TlsConfig, TlsVersion};

/// Largest chunk a `tls:` step may set (the SIM7000's `AT+CIPSEND?` size).
pub const MAX_TLS_CHUNK: usize = crate::at::limits::MAX_SEND;

/// Vars a passed TLS handshake sets.
pub const TLS_CAPTURES: [&str; 6] = [
    "tls_version",
    "tls_cipher",
    "tls_resumed",
    "tls_alpn",
    "tls_handshake_sent",
    "tls_handshake_received",
];

/// `tls:` on a step: settings for a handshake over the open connection (a map; `{}` for
/// the defaults), or `close` to send `close_notify`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum TlsStep {
    /// `tls: close`: send `close_notify` (sim7k also sends it by itself before
    /// `AT+CIPCLOSE` / `AT+CIPSHUT` while TLS is up).
    Action(TlsAction),
    /// A handshake with these settings.
    Settings(Box<TlsSettings>),
}

/// What `tls:` does when written as a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsAction {
    /// Send `close_notify`.
    Close,
}

/// Settings of a TLS handshake. Every text takes `{{vars}}`; an empty value is the default.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The host the connection was opened to, for SNI and the certificate check (default:
    /// the host of the `AT+CIPSTART` that opened it).
    #[serde(default)]
    pub host: Option<String>,
    /// PEM file of the CA certificate(s) to trust (default: the bundled Mozilla roots).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM file of the client certificate chain, leaf first (mutual TLS; needs
    /// `client_key`).
    #[serde(default)]
    pub client_cert: Option<String>,
    /// PEM file of the client's private key: PKCS#8, SEC1 or PKCS#1 RSA, unencrypted
    /// (decrypt an encrypted key with `openssl pkey`). Read by the TLS client only, never
    /// shown.
    #[serde(default)]
    pub client_key: Option<String>,
    /// The name to check the server's certificate against and send in SNI, instead of
    /// the host (a broker reached by IP address, or through a tunnel).
    #[serde(default)]
    pub server_name: Option<String>,
    /// SNI: empty or `true` sends the host (or `server_name`); `false` sends none; any
    /// other text is the name to send and to check the certificate against.
    #[serde(default)]
    pub sni: Option<Scalar>,
    /// ALPN protocols to offer, a list or comma-separated (`x-amzn-mqtt-ca` for AWS IoT on
    /// port 443).
    #[serde(default)]
    pub alpn: OneOrMany<String>,
    /// TLS versions: `1.2`, `1.3`, `1.2-1.3` (the default) or `1.2+`.
    #[serde(default)]
    pub versions: Option<Scalar>,
    /// Accept any server certificate. For a lab only: anyone on the path can then read and
    /// change the traffic; sim7k warns loudly.
    #[serde(default)]
    pub insecure_skip_verify: Option<Scalar>,
    /// Resume TLS sessions between the run's connections (default `true`).
    #[serde(default)]
    pub resumption: Option<Scalar>,
    /// A file keeping, across runs, the key-exchange group each server chose (no secrets).
    #[serde(default)]
    pub session_cache: Option<String>,
    /// Append the session secrets to this file in `SSLKEYLOGFILE` format, for Wireshark.
    /// Off by default; whoever holds the file can decrypt the sessions; sim7k warns.
    #[serde(default)]
    pub key_log: Option<String>,
    /// Largest `AT+CIPSEND` chunk for the handshake's records (default: what
    /// `AT+CIPSEND?` reports). Data sends keep their own `data.chunk`.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1460))]
    pub chunk: Option<usize>,
}

impl<'de> Deserialize<'de> for TlsStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TlsStep;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("TLS settings (a map; `{}` for the defaults) or `close`")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TlsStep, A::Error> {
                TlsSettings::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|s| TlsStep::Settings(Box::new(s)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TlsStep, E> {
                match v.trim() {
                    "close" => Ok(TlsStep::Action(TlsAction::Close)),
                    other => Err(E::custom(format!(
                        "`tls: {}` is not a TLS action: write `tls: close`, or settings such as `tls: {{ ca_file: ca.pem }}` (`tls: {{}}` for the defaults)",
                        crate::util::escape::shorten(other, 40)
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The loaded TLS clients of a program, one per distinct configuration, shared by every
/// `tls:` step (and every run of the program): a client is built (its files read) once,
/// and sessions resume between the connections it makes.
#[derive(Clone, Default)]
pub struct TlsClients(Arc<Mutex<Vec<LoadedClient>>>);

/// A configuration and the client built from it.
type LoadedClient = (TlsConfig, Arc<TlsClient>);

impl std::fmt::Debug for TlsClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |v| v.len());
        write!(f, "TlsClients({n} loaded)")
    }
}

impl TlsClients {
    /// The client for `config`, built now if it is the first use.
    pub fn get(&self, config: &TlsConfig) -> Result<Arc<TlsClient>, String> {
        let mut list = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = list.iter().find(|(k, _)| k == config) {
            return Ok(Arc::clone(c));
        }
        let client = Arc::new(config.build().map_err(|e| e.to_string())?);
        list.push((config.clone(), Arc::clone(&client)));
        Ok(client)
    }

    /// Write each client's session cache file (the key-exchange groups learned), for those
    /// that have one. Errors are returned as text, one per file.
    pub fn save_session_caches(&self) -> Vec<String> {
        let list = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        list.iter()
            .filter_map(|(_, c)| c.save_session_cache().err().map(|e| e.to_string()))
            .collect()
    }
}

/// A compiled `tls:` step.
#[derive(Debug, Clone)]
pub enum TlsProgram {
    /// A handshake.
    Handshake(Box<TlsHandshakeStep>),
    /// `close_notify`.
    Close,
}

/// A compiled handshake: templates, expanded when the step runs.
#[derive(Debug, Clone)]
pub struct TlsHandshakeStep {
    host: Option<Template>,
    ca_file: Option<Template>,
    client_cert: Option<Template>,
    client_key: Option<Template>,
    server_name: Option<Template>,
    sni: Option<Template>,
    alpn: Vec<Template>,
    versions: Option<Template>,
    insecure_skip_verify: Option<Template>,
    resumption: Option<Template>,
    session_cache: Option<Template>,
    key_log: Option<Template>,
    chunk: Option<usize>,
    clients: TlsClients,
}

/// Compile a `tls:` step; `clients` is the program's shared cache.
pub(crate) fn build(step: &TlsStep, clients: &TlsClients) -> Result<TlsProgram, String> {
    let s = match step {
        TlsStep::Action(TlsAction::Close) => return Ok(TlsProgram::Close),
        TlsStep::Settings(s) => s,
    };
    let t = |what: &str, text: &Option<String>| {
        text.as_deref()
            .map(|v| Template::parse(v).map_err(|e| format!("`tls.{what}`: {e}")))
            .transpose()
    };
    let sc = |what: &str, v: &Option<Scalar>| t(what, &v.as_ref().map(Scalar::to_text));
    Ok(TlsProgram::Handshake(Box::new(TlsHandshakeStep {
        host: t("host", &s.host)?,
        ca_file: t("ca_file", &s.ca_file)?,
        client_cert: t("client_cert", &s.client_cert)?,
        client_key: t("client_key", &s.client_key)?,
        server_name: t("server_name", &s.server_name)?,
        sni: sc("sni", &s.sni)?,
        alpn: s
            .alpn
            .as_slice()
            .iter()
            .map(|a| Template::parse(a).map_err(|e| format!("`tls.alpn`: {e}")))
            .collect::<Result<_, _>>()?,
        versions: sc("versions", &s.versions)?,
        insecure_skip_verify: sc("insecure_skip_verify", &s.insecure_skip_verify)?,
        resumption: sc("resumption", &s.resumption)?,
        session_cache: t("session_cache", &s.session_cache)?,
        key_log: t("key_log", &s.key_log)?,
        chunk: s.chunk,
        clients: clients.clone(),
    })))
}

impl TlsProgram {
    /// The engine plan, `vars` expanded now (the client is loaded on first use).
    pub fn plan(&self, vars: &Vars) -> Result<TlsPlan, String> {
        match self {
            TlsProgram::Close => Ok(TlsPlan::Close),
            TlsProgram::Handshake(h) => h.plan(vars),
        }
    }

    /// True for a handshake (not `tls: close`).
    pub fn is_handshake(&self) -> bool {
        matches!(self, TlsProgram::Handshake(_))
    }

    /// A short description for step names.
    pub fn describe(&self) -> &'static str {
        match self {
            TlsProgram::Close => "tls close",
            TlsProgram::Handshake(_) => "tls handshake",
        }
    }
}

impl TlsHandshakeStep {
    fn plan(&self, vars: &Vars) -> Result<TlsPlan, String> {
        let config = self.config(vars)?;
        let client = self.clients.get(&config)?;
        let host = self.text(vars, "host", &self.host)?;
        Ok(TlsPlan::Handshake(TlsHandshake {
            client,
            host,
            chunk: self.chunk,
        }))
    }

    /// The expanded text of a setting, `None` when absent or empty.
    fn text(
        &self,
        vars: &Vars,
        what: &str,
        t: &Option<Template>,
    ) -> Result<Option<String>, String> {
        let Some(t) = t else {
            return Ok(None);
        };
        let v = vars
            .expand_template(t)
            .map_err(|e| format!("`tls.{what}`: {e}"))?;
        let v = v.trim();
        Ok((!v.is_empty()).then(|| v.to_string()))
    }

    /// The settings with `vars` expanded.
    pub fn config(&self, vars: &Vars) -> Result<TlsConfig, String> {
        let path = |what: &str, t: &Option<Template>| -> Result<Option<PathBuf>, String> {
            Ok(self.text(vars, what, t)?.map(PathBuf::from))
        };
        let flag = |what: &str, t: &Option<Template>, default: bool| -> Result<bool, String> {
            match self.text(vars, what, t)? {
                None => Ok(default),
                Some(v) => parse_flag(&v)
                    .ok_or_else(|| format!("`tls.{what}`: `{}` is not true or false", shorten(&v))),
            }
        };
        let mut config = TlsConfig {
            ca_file: path("ca_file", &self.ca_file)?,
            client_cert: path("client_cert", &self.client_cert)?,
            client_key: path("client_key", &self.client_key)?,
            server_name: self.text(vars, "server_name", &self.server_name)?,
            session_cache: path("session_cache", &self.session_cache)?,
            key_log: path("key_log", &self.key_log)?,
            insecure_skip_verify: flag("insecure_skip_verify", &self.insecure_skip_verify, false)?,
            resumption: flag("resumption", &self.resumption, true)?,
            ..TlsConfig::default()
        };
        if let Some(sni) = self.text(vars, "sni", &self.sni)? {
            match parse_flag(&sni) {
                Some(on) => config.sni = on,
                None => {
                    if let Some(name) = &config.server_name
                        && !name.eq_ignore_ascii_case(&sni)
                    {
                        return Err(format!(
                            "`tls.sni` ({}) and `tls.server_name` ({}) name different servers: the certificate is checked against the name sent in SNI; give one of them",
                            shorten(&sni),
                            shorten(name)
                        ));
                    }
                    config.server_name = Some(sni);
                }
            }
        }
        for t in &self.alpn {
            let v = vars
                .expand_template(t)
                .map_err(|e| format!("`tls.alpn`: {e}"))?;
            config.alpn.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string),
            );
        }
        if let Some(v) = self.text(vars, "versions", &self.versions)? {
            let (min, max) = parse_versions(&v)?;
            config.min_version = min;
            config.max_version = max;
        }
        Ok(config)
    }
}

fn shorten(s: &str) -> String {
    crate::util::escape::shorten(s, 60)
}

/// `true`/`false` and their usual spellings; `None` for anything else.
pub fn parse_flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" | "none" => Some(false),
        _ => None,
    }
}

/// `1.2`, `1.3`, `1.2-1.3`, `1.2..1.3`, `1.2+`: the lowest and highest version.
pub fn parse_versions(v: &str) -> Result<(TlsVersion, TlsVersion), String> {
    let t = v.trim();
    let err = |e: String| format!("`tls.versions`: {e}");
    if let Some(min) = t.strip_suffix('+') {
        let min: TlsVersion = min.parse().map_err(err)?;
        return Ok((min, TlsVersion::V1_3));
    }
    let (a, b) = match t.split_once("..").or_else(|| t.split_once('-')) {
        Some((a, b)) => (a, b),
        None => (t, t),
    };
    let min: TlsVersion = a.parse().map_err(err)?;
    let max: TlsVersion = b.parse().map_err(err)?;
    if min > max {
        return Err(format!(
            "`tls.versions`: `{}` goes from a higher version to a lower one",
            shorten(t)
        ));
    }
    Ok((min, max))
}

/// Point a TLS recipe's vars at the embedded broker of `sim7k run --emulate`, whose
/// certificates come from a CA made at start (`ca_file`): the var `ca_file` (when the
/// recipe has it) becomes that CA, and `client_cert` / `client_key` become empty (that
/// broker asks for no client certificate, and the recipe's files are usually not there
/// offline). A var given with `--set` (`set`) is left alone. Returns a line per change,
/// for the user.
pub fn trust_emulated_broker(
    vars: &mut Vars,
    set: &[(String, String)],
    ca_file: &std::path::Path,
) -> Vec<String> {
    let given = |name: &str| set.iter().any(|(k, _)| k == name);
    let mut notes = Vec::new();
    if vars.get("ca_file").is_some() && !given("ca_file") {
        let path = ca_file.display().to_string();
        notes.push(format!(
            "ca_file = {path} (the embedded broker's CA, made at start; --set ca_file=… to use another)"
        ));
        vars.set("ca_file", path.into(), false);
    }
    for name in ["client_cert", "client_key"] {
        let filled = vars.get(name).is_some_and(|v| !v.is_empty());
        if filled && !given(name) {
            notes.push(format!(
                "{name} not used: the embedded broker asks for no client certificate"
            ));
            let secret = vars.is_secret(name);
            vars.set(name, "".into(), secret);
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_flags() {
        use TlsVersion::{V1_2, V1_3};
        assert_eq!(parse_versions("1.2").unwrap(), (V1_2, V1_2));
        assert_eq!(parse_versions("1.2-1.3").unwrap(), (V1_2, V1_3));
        assert_eq!(parse_versions("TLSv1.2..TLSv1.3").unwrap(), (V1_2, V1_3));
        assert_eq!(parse_versions("1.3+").unwrap(), (V1_3, V1_3));
        assert!(parse_versions("1.3-1.2").unwrap_err().contains("higher"));
        assert!(parse_versions("1.1").unwrap_err().contains("obsolete"));
        assert_eq!(parse_flag("Yes"), Some(true));
        assert_eq!(parse_flag("off"), Some(false));
        assert_eq!(parse_flag("broker.example"), None);
    }
}
