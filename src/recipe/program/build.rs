//! Compiling one checked step of the YAML model into a [`ProgramStep`], applying every
//! default once.
//!
//! The loader has already checked the step (one action, keys that need each other,
//! patterns, templates, durations), so the errors here are for what only compiling
//! finds; they point at the step.

use std::time::Duration;

use super::{
    Check, CompiledPattern, ExpectMqttStep, InlineScript, MqttWant, Poll, ProgramStep, Retry,
    SendDataStep, SendStep, Setting, StepAction, WaitStep,
};
use crate::recipe::diag::Origin;
use crate::recipe::load::{DEFAULT_POLL_INTERVAL, DEFAULT_RETRY_DELAY, DEFAULT_UNTIL_DEADLINE};
use crate::recipe::model::{Pattern, Scalar, Step, parse_duration};
use crate::recipe::template::Template;

/// What a step inherits from its recipe.
pub(crate) struct BuildContext {
    /// The recipe's per-attempt timeout (its default applied).
    pub timeout: Duration,
    /// The recipe's `abort` list (its default applied), compiled.
    pub abort: Vec<CompiledPattern>,
    /// The program's TLS clients, shared by its `tls:` steps.
    pub tls_clients: crate::recipe::tls::TlsClients,
}

/// Compile `step` (written at `origin`) as step `id`.
pub(crate) fn build_step(
    ctx: &BuildContext,
    id: usize,
    origin: Origin,
    step: &Step,
    script: Option<InlineScript>,
) -> Result<ProgramStep, String> {
    let template =
        |what: &str, text: &str| Template::parse(text).map_err(|e| format!("`{what}`: {e}"));
    let opt_template =
        |what: &str, text: &Option<String>| text.as_deref().map(|t| template(what, t)).transpose();
    let patterns = |what: &str, list: &[Pattern]| -> Result<Vec<CompiledPattern>, String> {
        list.iter()
            .map(|p| {
                CompiledPattern::parse(p.as_str())
                    .map_err(|e| format!("`{what}` pattern `{}`: {e}", p.as_str()))
            })
            .collect()
    };
    let retry = || -> Result<Retry, String> {
        Ok(Retry {
            retries: step.retries.unwrap_or(0),
            delay: step.retry_delay.unwrap_or(DEFAULT_RETRY_DELAY),
            backoff: step.backoff.unwrap_or(1.0),
            recover: step
                .recover
                .as_slice()
                .iter()
                .map(|c| template("recover", c))
                .collect::<Result<_, _>>()?,
        })
    };
    let own_abort = patterns("abort", step.abort.as_slice())?;
    let with_recipe_abort = |own: Vec<CompiledPattern>| {
        let mut all = ctx.abort.clone();
        all.extend(own);
        all
    };

    let mut deadline = step.deadline;
    let action = if let Some(send) = &step.send {
        let until = patterns("until", step.until.as_slice())?;
        let poll = if until.is_empty() {
            None
        } else {
            // An `until` step polls for two minutes unless it says otherwise.
            deadline = deadline.or(Some(DEFAULT_UNTIL_DEADLINE));
            Some(Poll {
                until,
                interval: step.interval.unwrap_or(DEFAULT_POLL_INTERVAL),
            })
        };
        // A poll ignores the recipe's `abort` list: an `ERROR` there means "poll again".
        let abort = if poll.is_some() {
            own_abort
        } else {
            with_recipe_abort(own_abort)
        };
        let capture = step
            .capture
            .as_slice()
            .iter()
            .map(|c| crate::engine::compile(c).map_err(|e| format!("`capture` `{c}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let validate = step
            .validate
            .iter()
            .map(|(name, v)| {
                Check::from_validator(v)
                    .map(|c| (name.clone(), c))
                    .map_err(|e| format!("`validate.{name}.regex`: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        StepAction::Send(SendStep {
            command: template("send", send)?,
            prompt_data: step.prompt_data.as_ref().map(|v| v.trim().to_owned()),
            expect: patterns("expect", step.expect.as_slice())?,
            abort,
            poll,
            capture,
            validate,
            secret: step.secret,
            retry: retry()?,
        })
    } else if let Some(var) = &step.send_data {
        let opts = step.data.clone().unwrap_or_default();
        StepAction::SendData(SendDataStep {
            var: var.trim().to_owned(),
            chunk: opts.chunk,
            hex: opts.hex,
            abort: with_recipe_abort(own_abort),
            retry: retry()?,
        })
    } else if let Some(duration) = step.wait {
        StepAction::Wait(WaitStep {
            duration,
            expect: patterns("expect", step.expect.as_slice())?,
            abort: with_recipe_abort(own_abort),
        })
    } else if let Some(em) = &step.expect_mqtt {
        let spec = em.spec();
        let packet = spec.packet.trim();
        let want = if packet.contains("{{") {
            MqttWant::Templated(template("expect_mqtt", packet)?)
        } else if packet.eq_ignore_ascii_case("publish") {
            MqttWant::Messages {
                count: spec
                    .count
                    .as_ref()
                    .map(|c| number_setting("count", c))
                    .transpose()?,
                duration: spec
                    .duration
                    .as_deref()
                    .map(|d| duration_setting("duration", d))
                    .transpose()?,
            }
        } else {
            match crate::engine::mqtt::parse_packet_type(packet) {
                Some(t) => MqttWant::Packet(t),
                None => return Err(format!("expect_mqtt: unknown packet `{packet}`")),
            }
        };
        let packet_id = match &spec.packet_id {
            None => None,
            Some(Scalar::Text(t)) if t.contains("{{") => {
                Some(Setting::Template(template("packet_id", t)?))
            }
            Some(s) => {
                let text = s.to_text();
                let id = text
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|&id| id > 0)
                    .ok_or_else(|| {
                        format!("expect_mqtt packet_id: `{text}` is not a packet id (1-65535)")
                    })?;
                Some(Setting::Fixed(id))
            }
        };
        StepAction::ExpectMqtt(ExpectMqttStep {
            want,
            packet_id,
            keep_alive: spec.keep_alive,
            on_message: spec.on_message.clone(),
            quiet: spec.quiet,
            abort: with_recipe_abort(own_abort),
        })
    } else if let Some(tls) = &step.tls {
        StepAction::Tls(crate::recipe::tls::build(tls, &ctx.tls_clients)?)
    } else {
        StepAction::Local
    };

    Ok(ProgramStep {
        id,
        origin,
        name: opt_template("name", &step.name)?,
        condition: opt_template("if", &step.condition)?,
        say: opt_template("say", &step.say)?,
        script,
        delay: step.delay.unwrap_or(Duration::ZERO),
        timeout: step.timeout.unwrap_or(ctx.timeout),
        deadline,
        on_fail: step.on_fail,
        action,
    })
}

fn number_setting(what: &str, value: &Scalar) -> Result<Setting<u64>, String> {
    match value {
        Scalar::Text(t) if t.contains("{{") => Template::parse(t)
            .map(Setting::Template)
            .map_err(|e| format!("expect_mqtt {what}: {e}")),
        other => {
            let text = other.to_text();
            text.trim()
                .parse::<u64>()
                .map(Setting::Fixed)
                .map_err(|_| format!("expect_mqtt {what}: `{text}` is not a whole number"))
        }
    }
}

fn duration_setting(what: &str, text: &str) -> Result<Setting<Duration>, String> {
    if text.contains("{{") {
        Template::parse(text)
            .map(Setting::Template)
            .map_err(|e| format!("expect_mqtt {what}: {e}"))
    } else {
        parse_duration(text)
            .map(Setting::Fixed)
            .map_err(|e| format!("expect_mqtt {what}: {e}"))
    }
}
