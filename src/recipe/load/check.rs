//! Checks of one step (and of patterns and templates) against the YAML tree, so every
//! error points at the key or value at fault.

use std::sync::Arc;
use std::time::Duration;

use super::super::diag::{SourceFile, Spot};
use super::super::model::{OneOrMany, Pattern, Step};
use super::super::vars::{self, ExpandError, Piece, compile_regex, is_var_name};
use super::loader::Ref;
use super::spot::{node_error, node_spot, spot_at, sub_spot};
use super::tree::{Kind, Node};
use super::yaml::sanitize;
use super::{MAX_BACKOFF, MAX_CHUNK, MAX_RETRY_PAUSE, RecipeError, RecipeWarning};

pub(super) fn unset_env_error(spot: Spot, name: &str) -> RecipeError {
    RecipeError::new(format!("environment variable `{name}` is not set"), spot)
        .with_label("used here")
        .with_help(format!("export {name}=... before the run"))
}

pub(super) fn template_error(spot: &Spot, template: &str, err: &ExpandError) -> RecipeError {
    match err {
        ExpandError::Syntax {
            offset,
            len,
            message,
        } => RecipeError::new(message.clone(), sub_spot(spot, template, *offset, *len))
            .with_label("bad placeholder"),
        other => RecipeError::new(other.to_string(), spot.clone()),
    }
}

/// The `{{…}}` references of a template written at `node`, or its syntax error.
pub(super) fn template_refs(
    file: &Arc<SourceFile>,
    node: &Node,
    template: &str,
) -> Result<Vec<Ref>, RecipeError> {
    let spot = node_spot(file, node);
    let phs = vars::placeholders(template).map_err(|e| template_error(&spot, template, &e))?;
    Ok(phs
        .into_iter()
        .map(|p| Ref {
            name: p.name.to_owned(),
            env: p.env,
            spot: sub_spot(&spot, template, p.offset, p.len),
        })
        .collect())
}

/// The summary line of a regex error ("unclosed group").
pub(super) fn regex_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || text.lines().last().unwrap_or("").trim().to_owned(),
            str::to_owned,
        )
}

/// Check a pattern's placeholders and, for a `/regex/`, that it compiles.
pub(super) fn check_pattern(
    file: &Arc<SourceFile>,
    node: &Node,
    field: &str,
    p: &Pattern,
) -> Result<Vec<Ref>, RecipeError> {
    let text = p.as_str();
    if text.is_empty() || text == "//" {
        return Err(node_error(
            file,
            node,
            format!("empty pattern in `{field}`: it would match every line"),
        ));
    }
    let refs = template_refs(file, node, text)?;
    if p.is_regex() {
        let body = &text[1..text.len() - 1];
        let spot = node_spot(file, node);
        let pieces = vars::parse_template(body).map_err(|e| template_error(&spot, body, &e))?;
        let mut probe = String::new();
        for (piece, _) in pieces {
            match piece {
                Piece::Text(t) => probe.push_str(&t),
                Piece::Var(_) | Piece::Env(_) | Piece::Link(_) => probe.push('x'),
            }
        }
        if let Err(e) = compile_regex(&probe) {
            return Err(node_error(
                file,
                node,
                format!("invalid regex in `{field}`: {}", regex_summary(&e)),
            )
            .with_label("this regex")
            .with_help(format!("{e}"))
            .with_help("text written `/like this/` is a regex; write it without slashes to match plain text"));
        }
    }
    Ok(refs)
}

/// What a step's checks found out.
pub(super) struct StepFacts {
    pub(super) refs: Vec<Ref>,
    pub(super) captures: Vec<String>,
    pub(super) send_data: Option<(String, Spot)>,
    pub(super) warnings: Vec<RecipeWarning>,
}

pub(super) const ACTIONS: [&str; 6] =
    ["send", "send_data", "wait", "include", "expect_mqtt", "tls"];

/// Packet names `expect_mqtt` accepts.
pub(super) const MQTT_PACKETS: [&str; 8] = [
    "connack", "suback", "unsuback", "puback", "pubrec", "pubcomp", "pingresp", "publish",
];

/// (key, keys of which one must be present, why)
pub(super) const NEEDS: [(&str, &[&str], &str); 12] = [
    (
        "prompt_data",
        &["send"],
        "`prompt_data` is typed after a command's `> ` prompt: it needs `send`",
    ),
    (
        "recover",
        &["retries"],
        "`recover` commands run before a retry: they need `retries`",
    ),
    (
        "until",
        &["send"],
        "`until` polls a command: it needs `send`",
    ),
    (
        "interval",
        &["until"],
        "`interval` is the pause between `until` polls: it needs `until`",
    ),
    (
        "data",
        &["send_data"],
        "`data` configures `send_data`: it needs `send_data`",
    ),
    (
        "expect",
        &["send", "wait"],
        "`expect` checks a command's response (or, with `wait`, any line): it needs `send` or `wait` (a `send_data` step passes on `SEND OK`)",
    ),
    (
        "abort",
        &["send", "send_data", "wait"],
        "`abort` fails a command early: it needs `send`, `send_data` or `wait`",
    ),
    (
        "capture",
        &["send"],
        "`capture` reads a command's response: it needs `send`",
    ),
    (
        "validate",
        &["capture"],
        "`validate` checks captured values: it needs `capture`",
    ),
    (
        "retries",
        &["send", "send_data"],
        "`retries` repeats a command: it needs `send` or `send_data`",
    ),
    (
        "retry_delay",
        &["send", "send_data"],
        "`retry_delay` is the pause before a retry: it needs `send` or `send_data`",
    ),
    (
        "backoff",
        &["send", "send_data"],
        "`backoff` stretches `retry_delay`: it needs `send` or `send_data`",
    ),
];

pub(super) fn check_step(
    file: &Arc<SourceFile>,
    step: &Step,
    node: &Node,
) -> Result<StepFacts, RecipeError> {
    let Kind::Map(entries) = &node.kind else {
        return Err(node_error(
            file,
            node,
            "a step must be a map (e.g. `- send: AT`)",
        ));
    };
    let has = |k: &str| {
        entries
            .iter()
            .any(|(key, v)| key.text == k && !matches!(v.kind, Kind::Null))
    };
    let key_error = |k: &str, msg: String| -> RecipeError {
        match entries.iter().find(|(key, _)| key.text == k) {
            Some((key, _)) => {
                let e = RecipeError::new(msg, spot_at(file, &key.defined));
                if key.referenced != key.defined && key.referenced.line() > 0 {
                    e.with_secondary(spot_at(file, &key.referenced), "merged here")
                } else {
                    e
                }
                .with_label(format!("`{k}`"))
            }
            None => node_error(file, node, msg),
        }
    };

    // One action per step.
    let actions: Vec<&str> = entries
        .iter()
        .map(|(k, _)| k.text.as_str())
        .filter(|k| ACTIONS.contains(k))
        .collect();
    if let [first, second, ..] = actions.as_slice() {
        return Err(key_error(
            second,
            format!("a step does one thing, but this one has both `{first}` and `{second}`"),
        )
        .with_help("split it into two steps"));
    }
    // An action key without a value would make a step that does nothing.
    if let Some(key) = actions.first().copied()
        && let Some((_, value)) = entries.iter().find(|(k, _)| k.text == key)
    {
        let blank = matches!(value.kind, Kind::Null)
            || (key == "send" && step.send.as_deref().is_some_and(|t| t.trim().is_empty()));
        if blank {
            let what = match key {
                "send" => "give the command line to send, e.g. `send: AT+CSQ`",
                "send_data" => "give the name of a var holding bytes, e.g. `send_data: packet`",
                "wait" => "give a duration, e.g. `wait: 5s`",
                "expect_mqtt" => "give the packet to wait for, e.g. `expect_mqtt: connack`",
                "tls" => {
                    "give TLS settings, e.g. `tls: { ca_file: ca.pem }` (`tls: {}` for the defaults), or `tls: close`"
                }
                _ => "give the path of a `.yaml` file, e.g. `include: carriers/hologram.yaml`",
            };
            return Err(key_error(key, format!("`{key}` is empty: {what}")));
        }
    }
    if actions.is_empty() && step.script.is_none() && step.say.is_none() {
        return Err(node_error(
            file,
            node,
            "this step does nothing: give it `send`, `send_data`, `wait`, `expect_mqtt`, `tls`, `include`, `script` or `say`",
        ));
    }
    if step.include.is_some() {
        if let Some((key, _)) = entries.iter().find(|(k, _)| k.text != "include") {
            return Err(key_error(
                &key.text,
                format!(
                    "an `include` step takes no other keys, but `{}` is set",
                    key.text
                ),
            )
            .with_help("put the key on the steps of the included file instead"));
        }
        return Ok(StepFacts {
            refs: template_refs(
                file,
                node.get("include").unwrap_or(node),
                step.include.as_deref().unwrap_or(""),
            )?,
            captures: Vec::new(),
            send_data: None,
            warnings: Vec::new(),
        });
    }
    for (key, needs, why) in NEEDS {
        if has(key) && !needs.iter().any(|n| has(n)) {
            return Err(key_error(key, why.to_owned()));
        }
    }
    // One command per `send`: a line break would type two commands.
    for (key, texts) in [
        ("send", step.send.iter().collect::<Vec<_>>()),
        ("recover", step.recover.as_slice().iter().collect()),
    ] {
        if texts.iter().any(|t| t.contains(['\r', '\n'])) {
            return Err(key_error(
                key,
                format!("`{key}` holds a line break: the modem would read two commands"),
            )
            .with_help("give each command its own step (a `|` block keeps a final line break: write the command on the key's line)"));
        }
    }
    // A command that shows `> ` waits for data that nothing would type.
    if let Some(send) = &step.send
        && step.prompt_data.is_none()
        && crate::at::command::Command::parse(send).shape == crate::at::command::Shape::Prompt
    {
        return Err(key_error(
            "send",
            "this command prompts `> ` for data, and nothing would type it: use `send_data: VAR` for `AT+CIPSEND`, or add `prompt_data: VAR`".to_owned(),
        ));
    }
    if has("until") && has("expect") {
        return Err(key_error(
            "expect",
            "`until` and `expect` both decide when the step passes: use one of them".to_owned(),
        ));
    }
    if let Some(em) = &step.expect_mqtt {
        let spec = em.spec();
        let packet = spec.packet.trim().to_ascii_lowercase();
        if !packet.contains("{{") && !MQTT_PACKETS.contains(&packet.as_str()) {
            return Err(key_error(
                "expect_mqtt",
                format!(
                    "`expect_mqtt` waits for one of {}, not `{}`",
                    MQTT_PACKETS.join(", "),
                    sanitize(&spec.packet)
                ),
            ));
        }
        if let Some(d) = &spec.duration
            && !d.contains("{{")
            && let Err(msg) = crate::recipe::model::parse_duration(d)
        {
            return Err(key_error("expect_mqtt", format!("`duration`: {msg}")));
        }
        if packet != "publish"
            && (spec.count.is_some() || spec.duration.is_some() || spec.on_message.is_some())
        {
            return Err(key_error(
                "expect_mqtt",
                "`count`, `duration` and `on_message` are for `packet: publish` (incoming messages)"
                    .to_owned(),
            ));
        }
    }
    if step.secret && !has("capture") {
        return Err(key_error(
            "secret",
            "`secret` marks captured vars as secret: it needs `capture`".to_owned(),
        ));
    }

    // Numbers and durations.
    if let Some(b) = step.backoff
        && (!b.is_finite() || !(1.0..=MAX_BACKOFF).contains(&b))
    {
        return Err(node_error(
            file,
            node.get("backoff").unwrap_or(node),
            format!(
                "`backoff` must be between 1.0 and {MAX_BACKOFF} (it multiplies `retry_delay` after each retry), not {b:?}"
            ),
        ));
    }
    if let Some(retries) = step.retries.filter(|&r| r > 0) {
        let delay = step
            .retry_delay
            .unwrap_or(super::DEFAULT_RETRY_DELAY)
            .as_secs_f64();
        let exponent = i32::try_from(retries - 1).unwrap_or(i32::MAX);
        let longest = delay * step.backoff.unwrap_or(1.0).powi(exponent);
        if longest > MAX_RETRY_PAUSE.as_secs_f64() {
            let key = if step.backoff.is_some() {
                "backoff"
            } else {
                "retry_delay"
            };
            return Err(node_error(
                file,
                node.get(key).unwrap_or(node),
                format!(
                    "the pause before the last retry would be {}, longer than the limit of {}",
                    describe_secs(longest),
                    humantime::format_duration(MAX_RETRY_PAUSE)
                ),
            )
            .with_help("lower `retries`, `retry_delay` or `backoff`"));
        }
    }
    for (key, value) in [
        ("timeout", step.timeout),
        ("deadline", step.deadline),
        ("interval", step.interval),
    ] {
        if value == Some(Duration::ZERO) {
            return Err(node_error(
                file,
                node.get(key).unwrap_or(node),
                format!("`{key}` must be longer than 0"),
            ));
        }
    }
    if let Some(chunk) = step.data.as_ref().and_then(|d| d.chunk)
        && (chunk == 0 || chunk > MAX_CHUNK)
    {
        let n = node
            .get("data")
            .and_then(|d| d.get("chunk"))
            .unwrap_or(node);
        return Err(node_error(
            file,
            n,
            format!(
                "`data.chunk` must be between 1 and {MAX_CHUNK} (the SIM7000's `AT+CIPSEND?` size), not {chunk}"
            ),
        ));
    }
    let mut warnings = Vec::new();
    if step.retries.is_none() {
        for key in ["retry_delay", "backoff"] {
            if let Some((k, _)) = entries.iter().find(|(k, _)| k.text == key) {
                warnings.push(
                    RecipeWarning::new(
                        format!("`{key}` has no effect without `retries`"),
                        spot_at(file, &k.defined),
                    )
                    .with_label("ignored"),
                );
            }
        }
    }

    // Templates and patterns.
    let mut refs = Vec::new();
    for (key, text) in [
        ("name", step.name.as_deref()),
        ("if", step.condition.as_deref()),
        ("say", step.say.as_deref()),
        ("send", step.send.as_deref()),
    ] {
        if let (Some(text), Some(n)) = (text, node.get(key)) {
            refs.extend(template_refs(file, n, text)?);
        }
    }
    if let Some(n) = node.get("recover") {
        let nodes = n.items_or_self();
        for (i, text) in step.recover.as_slice().iter().enumerate() {
            refs.extend(template_refs(
                file,
                nodes.get(i).copied().unwrap_or(n),
                text,
            )?);
        }
    }
    for (key, patterns) in [
        ("expect", &step.expect),
        ("abort", &step.abort),
        ("until", &step.until),
    ] {
        refs.extend(check_patterns(file, node, key, patterns)?);
    }

    // send_data names a var.
    let mut send_data = None;
    if let Some(name) = &step.send_data {
        let n = node.get("send_data").unwrap_or(node);
        let trimmed = name.trim();
        if is_yaml_word(trimmed) {
            return Err(node_error(
                file,
                n,
                format!(
                    "`send_data: {}` names no var: give the name of a var holding bytes (built by a script), e.g. `send_data: packet`",
                    sanitize(trimmed)
                ),
            ));
        }
        if !is_var_name(trimmed) {
            let mut e = node_error(
                file,
                n,
                format!(
                    "`send_data` takes the name of a var holding bytes, not `{}`",
                    sanitize(name)
                ),
            );
            if let Some(inner) = trimmed
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
            {
                e = e.with_help(format!(
                    "write the name without braces: `send_data: {}`",
                    inner.trim()
                ));
            }
            return Err(e);
        }
        send_data = Some((trimmed.to_owned(), node_spot(file, n)));
    }
    if let (Some(name), Some(n)) = (&step.prompt_data, node.get("prompt_data")) {
        let trimmed = name.trim();
        if is_yaml_word(trimmed) || !is_var_name(trimmed) {
            return Err(node_error(
                file,
                n,
                format!(
                    "`prompt_data` takes the name of a var holding the bytes to type, not `{}`",
                    sanitize(name)
                ),
            ));
        }
        refs.push(Ref {
            name: trimmed.to_owned(),
            env: false,
            spot: node_spot(file, n),
        });
    }

    // Captures: plain regexes with named groups.
    let mut captures = Vec::new();
    if let Some(cap_node) = node.get("capture") {
        let nodes = cap_node.items_or_self();
        for (i, source) in step.capture.as_slice().iter().enumerate() {
            let n = nodes.get(i).copied().unwrap_or(cap_node);
            let re = compile_regex(source).map_err(|e| {
                node_error(
                    file,
                    n,
                    format!("invalid regex in `capture`: {}", regex_summary(&e)),
                )
                .with_label("this regex")
                .with_help(e.to_string())
            })?;
            let names: Vec<&str> = re.capture_names().flatten().collect();
            if names.is_empty() {
                return Err(node_error(
                    file,
                    n,
                    "a `capture` regex needs at least one named group, e.g. `\\+CSQ: (?P<rssi>\\d+)`",
                )
                .with_label("no named group")
                .with_help("each named group `(?P<name>…)` sets the var `name`"));
            }
            for name in names {
                if !is_var_name(name) || name == "env" {
                    return Err(node_error(
                        file,
                        n,
                        format!(
                            "capture group `{name}` is not a usable var name (letters, digits and `_`, not `env`)"
                        ),
                    ));
                }
                if !captures.iter().any(|c| c == name) {
                    captures.push(name.to_owned());
                }
            }
        }
    }

    // validate: keys are names captured by this step.
    if let Some(val_node) = node.get("validate") {
        for (name, validator) in &step.validate {
            let (key, vnode) = val_node
                .entry(name)
                .map_or((None, val_node), |(k, v)| (Some(k), v));
            if !captures.iter().any(|c| c == name) {
                let spot =
                    key.map_or_else(|| node_spot(file, val_node), |k| spot_at(file, &k.defined));
                let mut e = RecipeError::new(
                    format!("`validate` checks `{name}`, but this step captures no `{name}`"),
                    spot,
                )
                .with_label("not captured");
                e = if captures.is_empty() {
                    e.with_help("add a named group `(?P<name>…)` to `capture`")
                } else {
                    e.with_help(format!("this step captures: {}", captures.join(", ")))
                };
                return Err(e);
            }
            if let Some(source) = &validator.regex {
                let rn = vnode.get("regex").unwrap_or(vnode);
                compile_regex(source).map_err(|e| {
                    node_error(
                        file,
                        rn,
                        format!(
                            "invalid regex in `validate.{name}.regex`: {}",
                            regex_summary(&e)
                        ),
                    )
                    .with_help(e.to_string())
                })?;
            }
            if let (Some(min), Some(max)) = (validator.min, validator.max)
                && min > max
            {
                return Err(node_error(
                    file,
                    vnode,
                    format!("`validate.{name}`: `min` ({min}) is larger than `max` ({max})"),
                ));
            }
        }
    }

    if let (Some(tls), Some(n)) = (&step.tls, node.get("tls")) {
        let (tls_refs, tls_captures) = super::tls::check_tls(file, tls, n)?;
        refs.extend(tls_refs);
        captures.extend(tls_captures);
    }

    Ok(StepFacts {
        refs,
        captures,
        send_data,
        warnings,
    })
}

pub(super) fn check_patterns(
    file: &Arc<SourceFile>,
    step_node: &Node,
    key: &str,
    patterns: &OneOrMany<Pattern>,
) -> Result<Vec<Ref>, RecipeError> {
    let Some(node) = step_node.get(key) else {
        return Ok(Vec::new());
    };
    let nodes = node.items_or_self();
    let mut refs = Vec::new();
    for (i, p) in patterns.as_slice().iter().enumerate() {
        let n = nodes.get(i).copied().unwrap_or(node);
        refs.extend(check_pattern(file, n, key, p)?);
    }
    Ok(refs)
}

/// Words YAML reads as booleans or null: never a var name a step means.
fn is_yaml_word(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
    )
}

/// Seconds as a readable duration (`3h 20m`), or in seconds when too large to show so.
fn describe_secs(secs: f64) -> String {
    if secs.is_finite() && secs < 1e12 {
        humantime::format_duration(std::time::Duration::from_secs_f64(secs.max(0.0))).to_string()
    } else {
        format!("{secs:e} s")
    }
}
