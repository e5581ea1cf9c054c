//! Sink URLs: `postgres://…` and `mqtt://…` / `mqtts://…` (TLS by sim7k's own client), parsed once.
//!
//! Secrets: a password may be written in the URL, as an env reference `{{env.NAME}}` (in any
//! part of the URL, expanded after the URL is split, so the value needs no escaping), or for
//! PostgreSQL in `PGPASSWORD`. [`SinkUrl::redacted`] is the only form shown to people.

use std::fmt;
use std::time::Duration;

/// How long a push to a sink may take by default (connect, log in, store, acknowledge).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The topic prefix of an `mqtt://host:port` URL without a path.
pub const DEFAULT_TOPIC_PREFIX: &str = "sim7k/records";

/// A parsed sink URL.
#[derive(Clone, PartialEq, Eq)]
pub enum SinkUrl {
    /// A PostgreSQL database.
    Postgres(PgUrl),
    /// An MQTT broker and topic prefix.
    Mqtt(MqttUrl),
}

/// `sslmode` of a PostgreSQL URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// `disable`: plain TCP.
    Disable,
    /// `allow` / `prefer` (the libpq default): TLS if both sides have it. This build has no
    /// TLS yet, so these connect in plain TCP, as libpq built without SSL does.
    Prefer,
    /// `require`, `verify-ca`, `verify-full`: TLS or nothing (needs the TLS stage).
    Require,
}

/// Where a PostgreSQL sink connects.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (5432).
    pub port: u16,
    /// Login role.
    pub user: String,
    /// Password (URL, env reference or `PGPASSWORD`).
    pub password: Option<String>,
    /// Database name (defaults to the user name, as libpq does).
    pub dbname: String,
    /// TLS mode.
    pub sslmode: SslMode,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
    /// Bound on one push.
    pub timeout: Duration,
}

/// Where an MQTT sink publishes.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttUrl {
    /// `mqtts://`: TLS to the broker (sim7k's TLS client on the host: the bundled web roots,
    /// or `?ca=FILE`).
    pub tls: bool,
    /// `?ca=FILE`: PEM CA certificate(s) to trust for `mqtts://` instead of the web roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Host name or address.
    pub host: String,
    /// TCP port (1883, or 8883 for `mqtts`).
    pub port: u16,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Topic prefix: records go to `<prefix>/<station>/<imei>`.
    pub prefix: String,
    /// Client id prefix (`sim7k-rec` by default; the process id and a counter are added).
    pub client_id: String,
    /// Bound on one push.
    pub timeout: Duration,
}

impl SinkUrl {
    /// Parse a sink URL, expanding `{{env.NAME}}` references; `env` looks a variable up
    /// (`std::env::var` in the program, a map in tests).
    pub fn parse_with(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<SinkUrl, String> {
        let parts = split(text)?;
        match parts.scheme.as_str() {
            "postgres" | "postgresql" => parse_pg(&parts, env).map(SinkUrl::Postgres),
            "mqtt" | "mqtts" => parse_mqtt(&parts, env).map(SinkUrl::Mqtt),
            other => Err(format!(
                "unknown record sink `{other}://` in `{}` (use postgres://user@host:port/db or mqtt://host:port/topic/prefix)",
                redact_text(text)
            )),
        }
    }

    /// Parse with the process environment.
    pub fn parse(text: &str) -> Result<SinkUrl, String> {
        Self::parse_with(text, &|name| std::env::var(name).ok())
    }

    /// The URL without its password, for messages and summaries.
    pub fn redacted(&self) -> String {
        match self {
            SinkUrl::Postgres(u) => {
                let mode = match u.sslmode {
                    SslMode::Disable => "disable",
                    SslMode::Prefer => "prefer",
                    SslMode::Require => "require",
                };
                format!(
                    "postgres://{}{}@{}:{}/{}?sslmode={mode}",
                    u.user,
                    if u.password.is_some() { ":***" } else { "" },
                    host_text(&u.host),
                    u.port,
                    u.dbname
                )
            }
            SinkUrl::Mqtt(u) => {
                let auth = match (&u.username, &u.password) {
                    (Some(n), Some(_)) => format!("{n}:***@"),
                    (Some(n), None) => format!("{n}@"),
                    (None, Some(_)) => ":***@".to_string(),
                    (None, None) => String::new(),
                };
                format!(
                    "{}://{auth}{}:{}/{}",
                    if u.tls { "mqtts" } else { "mqtt" },
                    host_text(&u.host),
                    u.port,
                    u.prefix
                )
            }
        }
    }

    /// The bound on one push.
    pub fn timeout(&self) -> Duration {
        match self {
            SinkUrl::Postgres(u) => u.timeout,
            SinkUrl::Mqtt(u) => u.timeout,
        }
    }
}

impl fmt::Debug for SinkUrl {
    // Never print the password, not even in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl MqttUrl {
    /// What identifies where records go (scheme, host, port, prefix; no credentials): the
    /// key of the local ledger of acknowledged records.
    pub fn destination(&self) -> String {
        format!(
            "{}://{}:{}/{}",
            if self.tls { "mqtts" } else { "mqtt" },
            host_text(&self.host),
            self.port,
            self.prefix
        )
    }
}

fn host_text(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Best-effort removal of a password from a URL that did not parse.
pub fn redact_text(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => text.to_string(),
        },
        None => text.to_string(),
    }
}

/// A URL split into its parts (percent-decoded, env references not yet expanded).
struct Parts {
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    query: Vec<(String, String)>,
    shown: String,
}

fn split(text: &str) -> Result<Parts, String> {
    let shown = redact_text(text);
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| format!("`{shown}` is not a URL (expected scheme://host…)"))?;
    let scheme = scheme.to_ascii_lowercase();
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((n, p)) => (Some(decode(n, &shown)?), Some(decode(p, &shown)?)),
            None => (Some(decode(u, &shown)?), None),
        },
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{shown}`: unclosed `[` in the host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p, &shown)?),
            None if after.is_empty() => None,
            None => return Err(format!("`{shown}`: unexpected `{after}` after the host")),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(parse_port(p, &shown)?)),
            None => (hostport.to_string(), None),
        }
    };
    let host = decode(&host, &shown)?;
    if host.is_empty() {
        return Err(format!("`{shown}` names no host"));
    }
    let mut pairs = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((decode(k, &shown)?, decode(v, &shown)?));
    }
    Ok(Parts {
        scheme,
        user,
        password,
        host,
        port,
        path: decode(path, &shown)?,
        query: pairs,
        shown,
    })
}

fn parse_port(p: &str, shown: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{shown}`: `{p}` is not a TCP port (1–65535)"))
}

/// Percent-decoding (`%40` is `@`).
fn decode(s: &str, shown: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{shown}`: bad percent escape in `{s}`"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{shown}`: `{s}` is not UTF-8 once decoded"))
}

/// Expand `{{env.NAME}}` references.
fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>, shown: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`{shown}`: `{{{{` without its `}}}}`"))?;
        let inner = after[..end].trim();
        let name = inner.strip_prefix("env.").ok_or_else(|| {
            format!("`{shown}`: only `{{{{env.NAME}}}}` references are allowed in a sink URL, not `{{{{{inner}}}}}`")
        })?;
        let value = env(name).ok_or_else(|| {
            format!("`{shown}` refers to the environment variable {name}, which is not set")
        })?;
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn opt_expand(
    s: &Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    shown: &str,
) -> Result<Option<String>, String> {
    s.as_deref().map(|v| expand(v, env, shown)).transpose()
}

fn parse_timeout(v: &str, shown: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(v)
        .map_err(|e| format!("`{shown}`: timeout `{v}`: {e} (e.g. timeout=5s)"))?;
    if d.is_zero() {
        return Err(format!("`{shown}`: the timeout must be more than 0"));
    }
    Ok(d)
}

fn parse_pg(p: &Parts, env: &dyn Fn(&str) -> Option<String>) -> Result<PgUrl, String> {
    let shown = &p.shown;
    let user = match opt_expand(&p.user, env, shown)? {
        Some(u) if !u.is_empty() => u,
        _ => env("PGUSER")
            .or_else(|| env("USER"))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| format!("`{shown}` names no user (postgres://USER@host/db)"))?,
    };
    let password = match opt_expand(&p.password, env, shown)? {
        Some(pw) => Some(pw),
        None => env("PGPASSWORD"),
    };
    let dbname = expand(p.path.trim_end_matches('/'), env, shown)?;
    let dbname = if dbname.is_empty() {
        user.clone()
    } else {
        dbname
    };
    let mut url = PgUrl {
        host: expand(&p.host, env, shown)?,
        port: p.port.unwrap_or(5432),
        user,
        password,
        dbname,
        sslmode: SslMode::Prefer,
        application_name: "sim7k".into(),
        timeout: DEFAULT_TIMEOUT,
    };
    for (k, v) in &p.query {
        let v = expand(v, env, shown)?;
        match k.as_str() {
            "sslmode" => {
                url.sslmode = match v.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" | "verify-ca" | "verify-full" => SslMode::Require,
                    other => {
                        return Err(format!(
                            "`{shown}`: unknown sslmode `{other}` (disable, allow, prefer, require, verify-ca, verify-full)"
                        ));
                    }
                }
            }
            "connect_timeout" => {
                let secs: u64 = v.parse().map_err(|_| {
                    format!("`{shown}`: connect_timeout is a number of seconds, not `{v}`")
                })?;
                if secs > 0 {
                    url.timeout = Duration::from_secs(secs);
                }
            }
            "timeout" => url.timeout = parse_timeout(&v, shown)?,
            "application_name" => url.application_name = v,
            other => {
                return Err(format!(
                    "`{shown}`: unknown option `{other}` (known: sslmode, connect_timeout, timeout, application_name)"
                ));
            }
        }
    }
    Ok(url)
}

fn parse_mqtt(p: &Parts, env: &dyn Fn(&str) -> Option<String>) -> Result<MqttUrl, String> {
    let shown = &p.shown;
    let tls = p.scheme == "mqtts";
    let prefix = expand(p.path.trim_matches('/'), env, shown)?;
    let prefix = if prefix.is_empty() {
        DEFAULT_TOPIC_PREFIX.to_string()
    } else {
        prefix
    };
    if prefix.contains(['+', '#', '\0']) {
        return Err(format!(
            "`{shown}`: the topic prefix `{prefix}` may not contain `+`, `#` or NUL"
        ));
    }
    let mut url = MqttUrl {
        tls,
        ca_file: None,
        host: expand(&p.host, env, shown)?,
        port: p.port.unwrap_or(if tls { 8883 } else { 1883 }),
        username: opt_expand(&p.user, env, shown)?.filter(|u| !u.is_empty()),
        password: opt_expand(&p.password, env, shown)?,
        prefix,
        client_id: "sim7k-rec".into(),
        timeout: DEFAULT_TIMEOUT,
    };
    for (k, v) in &p.query {
        let v = expand(v, env, shown)?;
        match k.as_str() {
            "timeout" => url.timeout = parse_timeout(&v, shown)?,
            "client_id" => url.client_id = v,
            "ca" if tls => url.ca_file = Some(v.into()),
            other => {
                return Err(format!(
                    "`{shown}`: unknown option `{other}` (known: timeout, client_id{})",
                    if tls { ", ca" } else { "" }
                ));
            }
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "LINE_PW" => Some("p@ss/w:rd".into()),
            "PGPASSWORD" => Some("from-pgpassword".into()),
            "USER" => Some("operator".into()),
            _ => None,
        }
    }

    fn pg(text: &str) -> PgUrl {
        match SinkUrl::parse_with(text, &env).unwrap() {
            SinkUrl::Postgres(u) => u,
            other => panic!("{other:?}"),
        }
    }

    fn mqtt(text: &str) -> MqttUrl {
        match SinkUrl::parse_with(text, &env).unwrap() {
            SinkUrl::Mqtt(u) => u,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn postgres_url_with_everything() {
        let u = pg("postgres://line:s%40cret@db.example:6543/factory?sslmode=disable&timeout=2s");
        assert_eq!(u.host, "db.example");
        assert_eq!(u.port, 6543);
        assert_eq!(u.user, "line");
        assert_eq!(u.password.as_deref(), Some("s@cret"));
        assert_eq!(u.dbname, "factory");
        assert_eq!(u.sslmode, SslMode::Disable);
        assert_eq!(u.timeout, Duration::from_secs(2));
    }

    #[test]
    fn postgres_defaults_follow_libpq() {
        let u = pg("postgresql://line@localhost");
        assert_eq!(u.port, 5432);
        assert_eq!(u.dbname, "line");
        assert_eq!(u.sslmode, SslMode::Prefer);
        // No password in the URL: PGPASSWORD.
        assert_eq!(u.password.as_deref(), Some("from-pgpassword"));
        assert_eq!(u.timeout, DEFAULT_TIMEOUT);
        let u = pg("postgres://localhost/db");
        assert_eq!(u.user, "operator");
        let u = pg("postgres://line@[::1]:5433/db?connect_timeout=3");
        assert_eq!((u.host.as_str(), u.port), ("::1", 5433));
        assert_eq!(u.timeout, Duration::from_secs(3));
    }

    #[test]
    fn env_references_are_expanded_after_splitting() {
        // The value holds `@`, `/` and `:`, which would break the URL if pasted in.
        let u = pg("postgres://line:{{env.LINE_PW}}@db/factory");
        assert_eq!(u.password.as_deref(), Some("p@ss/w:rd"));
        assert_eq!(u.host, "db");
        let e = SinkUrl::parse_with("postgres://line:{{env.NOPE}}@db/f", &env).unwrap_err();
        assert!(e.contains("NOPE, which is not set"), "{e}");
        let e = SinkUrl::parse_with("postgres://line:{{secret}}@db/f", &env).unwrap_err();
        assert!(e.contains("only `{{env.NAME}}`"), "{e}");
    }

    #[test]
    fn passwords_never_show() {
        let u = SinkUrl::parse_with("postgres://line:hunter2@db/f", &env).unwrap();
        assert_eq!(u.redacted(), "postgres://line:***@db:5432/f?sslmode=prefer");
        assert!(!format!("{u:?}").contains("hunter2"));
        let u = SinkUrl::parse_with("mqtt://dev:hunter2@broker/factory/line1", &env).unwrap();
        assert_eq!(u.redacted(), "mqtt://dev:***@broker:1883/factory/line1");
        let e = SinkUrl::parse_with("postgres://line:hunter2@db/f?sslmode=bad", &env).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = SinkUrl::parse_with("ftp://line:hunter2@db/f", &env).unwrap_err();
        assert!(
            !e.contains("hunter2") && e.contains("unknown record sink"),
            "{e}"
        );
    }

    #[test]
    fn mqtt_url() {
        let u = mqtt("mqtt://broker:1884/factory/line1/?timeout=500ms");
        assert_eq!((u.host.as_str(), u.port), ("broker", 1884));
        assert_eq!(u.prefix, "factory/line1");
        assert_eq!(u.timeout, Duration::from_millis(500));
        assert!(!u.tls);
        let u = mqtt("mqtt://broker");
        assert_eq!(u.prefix, DEFAULT_TOPIC_PREFIX);
        let u = mqtt("mqtts://broker/x");
        assert!(u.tls);
        assert_eq!(u.port, 8883);
        assert_eq!(u.destination(), "mqtts://broker:8883/x");
        let u = mqtt("mqtt://a:b@broker/x");
        assert_eq!(u.destination(), "mqtt://broker:1883/x");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (text, want) in [
            ("mqtt://broker/a/+/b", "may not contain"),
            ("mqtt://broker:0/x", "not a TCP port"),
            ("mqtt://broker:99999/x", "not a TCP port"),
            ("mqtt://broker/x?qos=2", "unknown option `qos`"),
            ("mqtt://broker/x?timeout=0s", "more than 0"),
            ("postgres://line@db/f?sslmode=maybe", "unknown sslmode"),
            (
                "postgres://line@db/f?connect_timeout=x",
                "number of seconds",
            ),
            ("postgres://line@/f", "names no host"),
            ("postgres://line@db/f%zz", "bad percent escape"),
            ("just-a-host", "is not a URL"),
        ] {
            let e = SinkUrl::parse_with(text, &env).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
