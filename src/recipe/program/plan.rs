//! From a program step to the engine's [`StepPlan`]: the run-time half of compiling a
//! step, where `{{vars}}` are expanded and the vars' bytes are taken.

use std::time::Duration;

use super::{
    CompiledPattern, MqttWant as ProgramMqttWant, ProgramStep, Retry, Setting, StepAction,
};
use crate::engine::mqtt::parse_packet_type;
use crate::engine::{DataPlan, Matcher, MqttPlan, MqttWant, PlanAction, StepPlan};
use crate::recipe::vars::{ExpandError, Vars};

/// The engine plan of a step, with `vars` expanded now; `None` for a step without modem
/// IO. `elapsed` is how long the step has run already (its script), taken off its deadline.
pub fn engine_plan(
    step: &ProgramStep,
    vars: &Vars,
    name: &str,
    elapsed: Duration,
) -> Result<Option<StepPlan>, String> {
    let e = |e: ExpandError| e.to_string();
    let matchers = |pats: &[CompiledPattern]| -> Result<Vec<Matcher>, String> {
        pats.iter()
            .map(|p| {
                p.matcher(vars)
                    .map_err(|err| format!("pattern `{}`: {err}", p.source()))
            })
            .collect()
    };
    let bytes_of = |what: &str, var: &str| -> Result<std::sync::Arc<[u8]>, String> {
        match vars.get(var) {
            // Bytes a script built go to the engine without a copy.
            Some(v) => Ok(v.shared_bytes()),
            None => Err(format!(
                "{what}: var `{var}` is not set (a script step must build it first)"
            )),
        }
    };
    let mut plan = StepPlan::command("", step.timeout);
    plan.name = name.to_string();
    plan.delay = step.delay;
    // What remains of the step's deadline after its script.
    plan.deadline = step
        .deadline
        .map(|d| d.saturating_sub(elapsed).max(Duration::from_millis(1)));
    let retry = |plan: &mut StepPlan, r: &Retry| {
        plan.retries = r.retries;
        plan.retry_delay = r.delay;
        plan.backoff = r.backoff;
        r.recover
            .iter()
            .map(|c| vars.expand_template(c).map_err(e))
            .collect::<Result<Vec<_>, _>>()
            .map(|rec| plan.recover = rec)
    };
    match &step.action {
        StepAction::Local => return Ok(None),
        StepAction::Send(send) => {
            let line = vars.expand_template(&send.command).map_err(e)?;
            if line.contains(['\r', '\n']) {
                return Err(format!(
                    "the command holds a line break after expanding `{}`: the modem would read two commands",
                    send.command.source()
                ));
            }
            plan.action = PlanAction::Command(line);
            plan.expect = matchers(&send.expect)?;
            plan.abort = matchers(&send.abort)?;
            if let Some(poll) = &send.poll {
                plan.until = matchers(&poll.until)?;
                plan.interval = poll.interval;
            }
            plan.capture = send.capture.clone();
            plan.prompt_data = match &send.prompt_data {
                Some(var) => Some(bytes_of("prompt_data", var)?),
                None => None,
            };
            retry(&mut plan, &send.retry)?;
        }
        StepAction::SendData(data) => {
            let payload = bytes_of("send_data", &data.var)?;
            plan.action = PlanAction::Data(DataPlan {
                // The one place the MQTT session's parameters are learned: the CONNECT the
                // recipe sends, decoded once when its send is planned.
                session: crate::engine::MqttParams::of_connect(&payload),
                payload,
                chunk: data.chunk,
                hex: data.hex,
                // No chunk boundary falls inside a secret.
                secrets: vars.secrets(),
            });
            plan.abort = matchers(&data.abort)?;
            retry(&mut plan, &data.retry)?;
        }
        StepAction::Wait(wait) => {
            plan.action = PlanAction::Wait(wait.duration);
            plan.expect = matchers(&wait.expect)?;
            plan.abort = matchers(&wait.abort)?;
        }
        StepAction::ExpectMqtt(em) => {
            let messages =
                |count: &Option<Setting<u64>>, duration: bool| -> Result<MqttWant, String> {
                    let count = count
                        .as_ref()
                        .map(|c| c.resolve(vars, "expect_mqtt count"))
                        .transpose()?;
                    // Neither a count nor a time: one message.
                    Ok(MqttWant::Messages {
                        count: count.or((!duration).then_some(1)),
                    })
                };
            let (want, duration) = match &em.want {
                ProgramMqttWant::Packet(t) => (MqttWant::Packet(*t), None),
                ProgramMqttWant::Messages { count, duration } => {
                    let d = duration
                        .as_ref()
                        .map(|d| d.resolve(vars, "expect_mqtt duration"))
                        .transpose()?;
                    (messages(count, d.is_some())?, d)
                }
                ProgramMqttWant::Templated(t) => {
                    let packet = vars.expand_template(t).map_err(e)?;
                    if packet.trim().eq_ignore_ascii_case("publish") {
                        (messages(&None, false)?, None)
                    } else {
                        match parse_packet_type(&packet) {
                            Some(t) => (MqttWant::Packet(t), None),
                            None => {
                                return Err(format!(
                                    "expect_mqtt: unknown packet `{packet}` (connack, suback, unsuback, puback, pubrec, pubcomp, pingresp, publish)"
                                ));
                            }
                        }
                    }
                }
            };
            plan.action = PlanAction::Mqtt(MqttPlan {
                want,
                packet_id: em
                    .packet_id
                    .as_ref()
                    .map(|p| p.resolve(vars, "expect_mqtt packet_id"))
                    .transpose()?,
                duration,
                keep_alive: em.keep_alive,
            });
            plan.abort = matchers(&em.abort)?;
        }
    }
    Ok(Some(plan))
}

/// True when `payload` starts with an MQTT DISCONNECT packet (type 14): after sending it
/// the session is over, whatever the broker does.
pub fn starts_with_disconnect(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b >> 4 == 14)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::load::{LoadOptions, load_str};
    use crate::recipe::vars::VarValue;

    fn program(yaml: &str) -> (crate::recipe::program::Program, Vars) {
        let r = load_str("plan.yaml", yaml, &LoadOptions::default()).expect("loads");
        (r.program, r.vars)
    }

    #[test]
    fn plans_carry_the_compiled_defaults() {
        let (p, vars) = program(
            "timeout: 3s\nsteps:\n  - send: AT+CEREG?\n    until: '+CEREG: 0,1'\n  - say: hi\n",
        );
        let plan = engine_plan(&p.steps[0], &vars, "reg", Duration::from_secs(1))
            .unwrap()
            .expect("IO");
        assert_eq!(plan.timeout, Duration::from_secs(3));
        // Two minutes by default, less what the step already used.
        assert_eq!(plan.deadline, Some(Duration::from_secs(119)));
        assert_eq!(plan.interval, Duration::from_secs(1));
        assert!(plan.abort.is_empty(), "no recipe abort list while polling");
        assert!(
            engine_plan(&p.steps[1], &vars, "say", Duration::ZERO)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_command_that_expands_to_two_lines_is_refused() {
        let (p, mut vars) = program("vars:\n  cmd: AT\nsteps:\n  - send: \"{{cmd}}\"\n");
        vars.set("cmd", VarValue::Text("AT\r\nAT+CFUN=0".into()), false);
        let e = engine_plan(&p.steps[0], &vars, "x", Duration::ZERO).unwrap_err();
        assert!(e.contains("line break"), "{e}");
    }

    #[test]
    fn disconnect_is_recognised_by_its_first_byte() {
        assert!(starts_with_disconnect(&[0xE0, 0x00]));
        assert!(!starts_with_disconnect(&[0x30, 0x00]));
        assert!(!starts_with_disconnect(&[]));
    }
}
