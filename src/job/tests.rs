//! The job's rules, sans IO: a [`Job`] driven against the emulated SIM7000 in memory
//! ([`Bench`]) under a virtual clock. Conditions, `say:`, validation, `on_fail: continue`,
//! hooks and pending messages, `{{link.mqtt}}`, the teardown's order and deadline, an
//! interrupt (teardown, then exit 130), a failed port (no teardown).

use std::time::{Duration, Instant};

use super::*;
use crate::emulator::memory::{Bench, Connect, MemoryNetwork, PeerOutput};
use crate::emulator::{ConnId, EmulatorConfig, Fault};
use crate::exit::Exit;
use crate::recipe::load::{LoadOptions, LoadedRecipe, load_str};
use crate::recipe::vars::VarValue;
use crate::redact::REDACTED;

/// A network that refuses every connection.
struct NoNet;

impl MemoryNetwork for NoNet {
    fn connect(&mut self, _id: ConnId, _host: &str, _port: u16) -> Connect {
        Connect::Refuse
    }
    fn send(&mut self, _id: ConnId, _data: &[u8]) {}
    fn poll(&mut self, _id: ConnId) -> PeerOutput {
        PeerOutput::default()
    }
    fn close(&mut self, _id: ConnId) {}
}

/// What the driver does besides moving bytes and time.
#[derive(Default)]
struct Ctl {
    /// Interrupt the job when a step whose name contains this starts.
    interrupt_at: Option<&'static str>,
    /// Fail the port when a command containing this is written (instead of writing it).
    port_fails_at: Option<&'static str>,
    /// Make the modem silent when a transcript note starts with this.
    silence_at: Option<&'static str>,
}

/// What a driven run produced.
struct Ran {
    outcome: RunOutcome,
    events: Vec<JobEvent>,
    /// Command lines written, in order (data bytes left out).
    commands: Vec<String>,
    /// Virtual time the run took.
    took: Duration,
}

impl Ran {
    fn notes(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                JobEvent::Note(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    fn status(&self) -> Vec<(String, StepStatus)> {
        self.outcome
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.status))
            .collect()
    }
}

fn recipe(yaml: &str) -> LoadedRecipe {
    match load_str("job.yaml", yaml, &LoadOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn quiet_modem() -> EmulatorConfig {
    EmulatorConfig {
        echo: false,
        ..EmulatorConfig::default()
    }
}

fn run(yaml: &str, ctl: Ctl) -> Ran {
    let r = recipe(yaml);
    let t0 = Instant::now();
    let mut bench = Bench::new(quiet_modem(), NoNet, t0);
    drive(Job::new(&r, JobOptions::default(), t0), &mut bench, ctl)
}

fn drive<N: MemoryNetwork>(mut job: Job<'_>, bench: &mut Bench<N>, ctl: Ctl) -> Ran {
    let t0 = bench.now();
    let mut events = Vec::new();
    let mut commands = Vec::new();
    let mut due_now = 0;
    for _ in 0..1_000_000 {
        let now = bench.now();
        let action = job.poll(now);
        while let Some(ev) = job.poll_event() {
            match &ev {
                JobEvent::StepStarted { name, .. }
                    if ctl.interrupt_at.is_some_and(|n| name.contains(n)) =>
                {
                    job.handle_interrupt(Interrupt::Signal("SIGINT".into()), now);
                }
                JobEvent::Note(n) if ctl.silence_at.is_some_and(|s| n.starts_with(s)) => {
                    bench.inject(Fault::Silent {
                        after: Duration::ZERO,
                        duration: None,
                    });
                }
                _ => {}
            }
            events.push(ev);
        }
        match action {
            JobAction::Write(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim_end().to_string();
                if text.starts_with("AT") {
                    if ctl.port_fails_at.is_some_and(|c| text.contains(c)) {
                        job.handle_port_error("the port vanished".into(), now);
                        continue;
                    }
                    commands.push(text);
                }
                bench.write(&bytes);
            }
            JobAction::Wait(until) => {
                let out = bench.read();
                if !out.is_empty() {
                    job.handle_bytes(&out, now);
                    continue;
                }
                let target = bench.next_deadline().map_or(until, |d| d.min(until));
                if target > now {
                    due_now = 0;
                    bench.advance_to(target);
                } else {
                    due_now += 1;
                    if due_now > 2 {
                        bench.advance(Duration::from_millis(1));
                    }
                }
                let out = bench.read();
                if !out.is_empty() {
                    job.handle_bytes(&out, bench.now());
                }
            }
            JobAction::Done => {
                events.extend(std::iter::from_fn(|| job.poll_event()));
                let took = bench.now().saturating_duration_since(t0);
                return Ran {
                    outcome: job.into_outcome(),
                    events,
                    commands,
                    took,
                };
            }
        }
    }
    panic!("the job never ended");
}

fn s(name: &str, status: StepStatus) -> (String, StepStatus) {
    (name.to_string(), status)
}

#[test]
fn conditions_skip_or_run_a_step() {
    let r = run(
        "vars:\n  flag: \"no\"\nsteps:\n  - if: \"{{flag}}\"\n    send: AT+CSQ\n  - if: \" Yes \"\n    send: AT+CGSN\n",
        Ctl::default(),
    );
    assert_eq!(r.outcome.verdict, Verdict::Passed);
    assert_eq!(r.commands, ["AT", "AT+CGSN"]);
    assert_eq!(
        r.status(),
        [
            s("sync", StepStatus::Passed),
            s("AT+CSQ", StepStatus::Skipped),
            s("AT+CGSN", StepStatus::Passed)
        ]
    );
    for (text, want) in [
        ("", false),
        ("0", false),
        ("OFF", false),
        ("no", false),
        ("1", true),
        ("x", true),
    ] {
        assert_eq!(step::truthy(text), want, "{text:?}");
    }
}

/// A condition that cannot be expanded when the step runs is a recipe error (exit 2) at
/// that step; the rest does not run.
#[test]
fn a_condition_that_cannot_expand_is_a_recipe_error() {
    let r = run(
        "steps:\n  - if: \"{{later}}\"\n    send: AT+CSQ\n  - send: AT+CGSN\n",
        Ctl::default(),
    );
    assert_eq!(r.outcome.exit(), Exit::Usage);
    assert_eq!(r.outcome.verdict, Verdict::RecipeError);
    let f = r.outcome.failure.as_ref().expect("failure");
    assert_eq!(f.step, "AT+CSQ");
    assert!(
        matches!(f.cause, RunFailure::Recipe { .. }),
        "{:?}",
        f.cause
    );
    assert!(f.reason.contains("later"), "{}", f.reason);
    assert_eq!(r.commands, ["AT"]);
}

/// `say:` lines are said (events, transcript, outcome) with secrets replaced.
#[test]
fn say_lines_are_recorded_redacted() {
    let r = run(
        "vars:\n  password: { value: hunter2, secret: true }\n  who: bench\nsteps:\n  - say: \"hello {{who}}, pw {{password}}\"\n  - name: two lines\n    say: \"a\\nb\"\n",
        Ctl::default(),
    );
    assert_eq!(r.outcome.verdict, Verdict::Passed);
    assert_eq!(r.outcome.said, ["hello bench, pw ***", "a\nb"]);
    let says: Vec<&JobEvent> = r
        .events
        .iter()
        .filter(|e| matches!(e, JobEvent::Say(_)))
        .collect();
    assert_eq!(says.len(), 2);
    assert!(r.notes().contains(&"say: hello bench, pw ***"));
    assert!(!format!("{:?}", r.events).contains("hunter2"));
    assert!(
        !serde_json::to_string(&r.outcome)
            .unwrap()
            .contains("hunter2")
    );
}

/// Validation: every `validate:` entry is measured once, with its secret flag; the first
/// that fails fails the step with the value shown (never a secret's).
#[test]
fn validation_measures_once_with_the_secret_flag() {
    let r = run(
        r#"steps:
  - name: identity
    send: AT+CCID
    capture: '^(?P<iccid>[0-9A-F]{18,20})'
    secret: true
    validate: { iccid: { regex: '^89' } }
  - name: signal
    send: AT+CSQ
    capture: '^\+CSQ: (?P<rssi>\d+),'
    validate: { rssi: { min: 30, not: ["99"] } }
  - send: AT+CGSN
"#,
        Ctl::default(),
    );
    assert_eq!(
        r.outcome.verdict,
        Verdict::Failed,
        "{:?}",
        r.outcome.failure
    );
    let f = r.outcome.failure.as_ref().expect("failure");
    assert_eq!(f.step, "signal");
    assert!(matches!(f.cause, RunFailure::Validation { .. }));
    assert!(
        f.reason.contains("rssi = 24, below the minimum 30"),
        "{}",
        f.reason
    );
    let m: Vec<(&str, Option<&str>, bool, bool)> = r
        .outcome
        .measurements
        .iter()
        .map(|m| (m.name.as_str(), m.value.as_deref(), m.secret, m.passed))
        .collect();
    assert_eq!(
        m,
        [
            ("iccid", Some(REDACTED), true, true),
            ("rssi", Some("24"), false, false)
        ]
    );
    assert_eq!(r.outcome.measurements[1].limits.min, Some(30.0));
    assert_eq!(
        r.outcome.captures.get("iccid").map(String::as_str),
        Some(REDACTED)
    );
    assert!(r.outcome.is_secret("iccid"));
    // The secret step's traffic was held until the ICCID was known, then released.
    let hold = r.events.iter().position(|e| *e == JobEvent::HoldTranscript);
    let release = r
        .events
        .iter()
        .position(|e| *e == JobEvent::ReleaseTranscript);
    assert!(hold.is_some() && hold < release, "{:?}", r.events);
    let iccid = "89470060200114806";
    for e in &r.events {
        if let JobEvent::Traffic(l) | JobEvent::Note(l) = e {
            assert!(!l.contains(iccid), "{l}");
        }
    }
    assert_eq!(r.commands, ["AT", "AT+CCID", "AT+CSQ"]);
}

/// `on_fail: continue`: the failure is recorded, the run goes on and can pass.
#[test]
fn on_fail_continue_goes_on() {
    let r = run(
        "steps:\n  - send: AT+NOPE\n    on_fail: continue\n  - send: AT+CGSN\n",
        Ctl::default(),
    );
    assert_eq!(
        r.outcome.verdict,
        Verdict::Passed,
        "{:?}",
        r.outcome.failure
    );
    assert_eq!(
        r.status(),
        [
            s("sync", StepStatus::Passed),
            s("AT+NOPE", StepStatus::FailedContinued),
            s("AT+CGSN", StepStatus::Passed)
        ]
    );
    assert!(
        r.outcome.steps[1]
            .reason
            .as_deref()
            .is_some_and(|x| x.contains("ERROR"))
    );
}

/// The teardown runs after a failure, in order, marked as teardown; the verdict and the
/// failing step stay those of the main steps; a failing teardown step changes nothing.
#[test]
fn the_teardown_runs_in_order_after_a_failure() {
    let r = run(
        "steps:\n  - send: AT+NOPE\n  - send: AT+NEVER\nfinally:\n  - send: AT+CSQ\n  - send: AT+ALSONOPE\n  - send: AT+CGSN\n",
        Ctl::default(),
    );
    assert_eq!(r.outcome.exit(), Exit::StepFailed);
    assert_eq!(
        r.outcome.failure.as_ref().map(|f| f.step.as_str()),
        Some("AT+NOPE")
    );
    assert_eq!(
        r.commands,
        ["AT", "AT+NOPE", "AT+CSQ", "AT+ALSONOPE", "AT+CGSN"]
    );
    let teardown: Vec<(String, StepStatus)> = r
        .outcome
        .steps
        .iter()
        .filter(|s| s.teardown)
        .map(|s| (s.name.clone(), s.status))
        .collect();
    assert_eq!(
        teardown,
        [
            s("teardown: AT+CSQ", StepStatus::Passed),
            s("teardown: AT+ALSONOPE", StepStatus::FailedContinued),
            s("teardown: AT+CGSN", StepStatus::Passed)
        ]
    );
    let notes = r.notes();
    let begin = notes
        .iter()
        .position(|n| n.starts_with("teardown: 3 step(s) within 30s"));
    let done = notes.iter().position(|n| *n == "teardown done");
    assert!(begin.is_some() && begin < done, "{notes:?}");
    assert!(
        notes
            .last()
            .is_some_and(|n| n.starts_with("run ended: Failed in `AT+NOPE`"))
    );
}

/// The teardown's own deadline bounds a modem gone silent: the step in progress ends at
/// the deadline, the rest is not sent, and the verdict stays a pass.
#[test]
fn the_teardown_deadline_bounds_a_silent_modem() {
    let r = run(
        "finally_deadline: 2s\nsteps:\n  - send: AT+CSQ\nfinally:\n  - send: AT+CGSN\n    timeout: 5m\n  - send: AT+NEVER\n",
        Ctl {
            silence_at: Some("teardown:"),
            ..Ctl::default()
        },
    );
    assert_eq!(r.outcome.verdict, Verdict::Passed);
    assert_eq!(r.commands, ["AT", "AT+CSQ", "AT+CGSN"]);
    let last = r.outcome.steps.last().expect("a teardown step");
    assert_eq!(last.status, StepStatus::FailedContinued);
    assert!(
        r.notes()
            .contains(&"teardown stopped: its deadline (`finally_deadline`) passed")
    );
    // Virtual time: the deadline, not the step's five minutes.
    assert!(r.took < Duration::from_secs(3), "{:?}", r.took);
}

/// An interrupt stops the step in progress, the teardown still runs (an interrupt during
/// it changes nothing), and the run ends as interrupted (exit 130) with its cause.
#[test]
fn an_interrupt_runs_the_teardown_then_exits_130() {
    let r = run(
        "steps:\n  - send: AT+CSQ\n  - wait: 10m\n  - send: AT+NEVER\nfinally:\n  - name: close\n    send: AT+CIPSHUT\n",
        Ctl {
            interrupt_at: Some("wait"),
            ..Ctl::default()
        },
    );
    assert_eq!(r.outcome.exit(), Exit::Interrupted);
    assert_eq!(r.outcome.verdict, Verdict::Interrupted);
    let f = r.outcome.failure.as_ref().expect("failure");
    assert_eq!(f.step, "wait 10m");
    assert_eq!(
        f.cause,
        RunFailure::Interrupted(Interrupt::Signal("SIGINT".into()))
    );
    assert_eq!(f.reason, "interrupted by SIGINT");
    assert_eq!(r.commands, ["AT", "AT+CSQ", "AT+CIPSHUT"]);
    assert!(r.took < Duration::from_secs(1), "{:?}", r.took);
    assert_eq!(
        r.outcome.steps.last().map(|s| (s.name.as_str(), s.status)),
        Some(("teardown: close", StepStatus::Passed))
    );
}

/// A failed port ends the run as an I/O error (exit 4) and skips the teardown: nothing can
/// be sent.
#[test]
fn a_port_error_skips_the_teardown() {
    let r = run(
        "steps:\n  - send: AT+CSQ\n  - send: AT+CGSN\nfinally:\n  - send: AT+CIPSHUT\n",
        Ctl {
            port_fails_at: Some("AT+CGSN"),
            ..Ctl::default()
        },
    );
    assert_eq!(r.outcome.exit(), Exit::Io);
    assert_eq!(r.outcome.verdict, Verdict::IoError);
    let f = r.outcome.failure.as_ref().expect("failure");
    assert_eq!(f.step, "AT+CGSN");
    assert!(f.reason.contains("vanished"), "{}", f.reason);
    assert_eq!(r.commands, ["AT", "AT+CSQ"]);
    assert!(
        r.notes()
            .contains(&"teardown skipped: the port failed, nothing can be sent")
    );
}

/// The recipe's deadline is a timeout (exit 3) at the step that could not start in time.
#[test]
fn the_recipe_deadline_is_a_timeout() {
    let r = run(
        "deadline: 5s\nsteps:\n  - wait: 4s\n  - wait: 4s\n  - send: AT\n",
        Ctl::default(),
    );
    assert_eq!(r.outcome.exit(), Exit::Timeout, "{:?}", r.outcome.failure);
    assert!(r.took <= Duration::from_secs(6), "{:?}", r.took);
}

/// The outcome is built once, and the record is a view of it.
#[test]
fn the_exit_code_follows_from_the_failure() {
    let r = run("steps:\n  - send: AT+NOPE\n", Ctl::default());
    let f = r.outcome.failure.as_ref().expect("failure");
    assert_eq!(f.cause.kind(), Exit::StepFailed);
    assert_eq!(r.outcome.exit_code, 1);
    assert!(
        f.reason.contains("the modem said") || f.reason.contains("ERROR"),
        "{}",
        f.reason
    );
    assert_eq!(Verdict::of(Exit::Timeout), Verdict::Timeout);
    for v in [
        Verdict::Passed,
        Verdict::Failed,
        Verdict::Timeout,
        Verdict::IoError,
        Verdict::RecipeError,
        Verdict::Interrupted,
    ] {
        assert_eq!(Verdict::of(v.exit()), v);
    }
}

/// A script host for the MQTT tests: builds packets with the crate's codec, and an
/// `on_message` hook that prints what it got (or fails).
#[cfg(feature = "embedded-broker")]
struct Packets {
    hook_fails: bool,
    hook_calls: usize,
}

#[cfg(feature = "embedded-broker")]
impl ScriptHost for Packets {
    fn run_step_script(
        &mut self,
        step: &ProgramStep,
        vars: &mut Vars,
        _deadline: Option<Instant>,
    ) -> Result<Vec<String>, ScriptFailure> {
        use crate::mqtt::{Connect, Disconnect, Packet, Protocol, Publish, Subscribe};
        let enc = |p: Packet| p.encode(Protocol::V311).unwrap_or_default();
        let text = step
            .script
            .as_ref()
            .map(|s| s.text.to_string())
            .unwrap_or_default();
        let bytes = match text.trim() {
            "connect" => {
                let mut c = Connect::new(Protocol::V311, "job-test");
                c.keep_alive = 60;
                let mut out = enc(Packet::Connect(c));
                out.extend(enc(Packet::Subscribe(Subscribe::new(
                    1,
                    "t/#",
                    crate::mqtt::QoS::AtMostOnce,
                ))));
                ("packet", out)
            }
            "publish" => {
                let mut out = enc(Packet::Publish(Publish::new("t/a", b"one".to_vec())));
                out.extend(enc(Packet::Publish(Publish::new("t/b", b"two".to_vec()))));
                ("own", out)
            }
            "bye" => ("bye", enc(Packet::Disconnect(Disconnect::default()))),
            other => {
                return Err(ScriptFailure {
                    message: format!("unknown test script {other}"),
                    timed_out: false,
                });
            }
        };
        vars.set(bytes.0, VarValue::Bytes(bytes.1.into()), false);
        Ok(vec![format!("built {}", bytes.0)])
    }

    fn on_message(
        &mut self,
        name: &str,
        message: &Message,
        vars: &mut Vars,
    ) -> Result<Vec<String>, String> {
        self.hook_calls += 1;
        if self.hook_fails {
            return Err(format!("{name}: the hook failed"));
        }
        vars.set("last", VarValue::Text(message.topic.clone()), false);
        Ok(vec![format!(
            "hook {} {}",
            message.topic,
            String::from_utf8_lossy(&message.payload)
        )])
    }
}

#[cfg(feature = "embedded-broker")]
const MQTT_RECIPE: &str = r#"steps:
  - send: AT+CSTT="nbiot"
  - send: AT+CIICR
  - send: AT+CIFSR
    expect: /^\d+\.\d+\.\d+\.\d+$/
  - send: AT+CIPSTART="TCP","broker.example",1883
  - script: connect
  - send_data: packet
  - expect_mqtt: connack
  - expect_mqtt: { packet: suback, packet_id: 1 }
  - say: "mqtt {{link.mqtt}} tcp {{link.tcp}}"
  - script: publish
  - send_data: own
  - wait: 2s
  - name: messages
    expect_mqtt: { packet: publish, count: 2, on_message: on_message }
  - say: "last {{last}}"
finally:
  - if: "{{link.mqtt}}"
    script: bye
    send_data: bye
  - say: "after: mqtt {{link.mqtt}}"
"#;

#[cfg(feature = "embedded-broker")]
fn run_mqtt(host: &mut Packets) -> Ran {
    let r = recipe(&format!("vars:\n  last: none\n{MQTT_RECIPE}"));
    let t0 = Instant::now();
    let broker = crate::broker::memory::MemoryBroker::default();
    let mut bench = Bench::new(quiet_modem(), broker.network(t0), t0);
    let job = Job::new(&r, JobOptions::default(), t0).with_scripts(host);
    drive(job, &mut bench, Ctl::default())
}

/// Messages that arrive while no hook runs are recorded at once and handed to the next
/// hook; `{{link.mqtt}}` comes up with the CONNACK and goes down with our DISCONNECT.
#[cfg(feature = "embedded-broker")]
#[test]
fn hooks_get_pending_messages_and_link_mqtt_follows_the_session() {
    let mut host = Packets {
        hook_fails: false,
        hook_calls: 0,
    };
    let r = run_mqtt(&mut host);
    assert_eq!(
        r.outcome.verdict,
        Verdict::Passed,
        "{:?}\n{:?}",
        r.outcome.failure,
        r.notes()
    );
    assert_eq!(host.hook_calls, 2);
    let said: Vec<&str> = r.outcome.said.iter().map(String::as_str).collect();
    assert_eq!(
        said,
        [
            "built packet",
            "mqtt true tcp true",
            "built own",
            "hook t/a one",
            "hook t/b two",
            "last t/b",
            "built bye",
            "after: mqtt false"
        ]
    );
    let got: Vec<(&str, &str, usize)> = r
        .outcome
        .messages
        .iter()
        .map(|m| (m.topic.as_str(), m.payload.as_str(), m.payload_len))
        .collect();
    assert_eq!(got, [("t/a", "one", 3), ("t/b", "two", 3)]);
    // Recorded when they arrived (during the wait), printed then too.
    let printed = r
        .events
        .iter()
        .filter(|e| matches!(e, JobEvent::Message(_)))
        .count();
    assert_eq!(printed, 2);
}

/// A hook that fails ends the run as a recipe error (exit 2) at the step that called it,
/// and the teardown still sends DISCONNECT.
#[cfg(feature = "embedded-broker")]
#[test]
fn a_failing_hook_is_a_recipe_error() {
    let mut host = Packets {
        hook_fails: true,
        hook_calls: 0,
    };
    let r = run_mqtt(&mut host);
    assert_eq!(r.outcome.exit(), Exit::Usage);
    let f = r.outcome.failure.as_ref().expect("failure");
    assert_eq!(f.step, "messages");
    assert!(matches!(f.cause, RunFailure::Hook { .. }));
    assert!(
        r.outcome.said.iter().any(|l| l == "built bye"),
        "{:?}",
        r.outcome.said
    );
}

/// A message whose payload carries a secret is recorded with the secret replaced; a
/// binary payload is shown escaped, with its hex.
#[test]
fn message_records_are_redacted_and_escaped() {
    let secrets = crate::redact::Secrets::from_values(["hunter2"]);
    let m = Message {
        topic: "t/\u{1b}[2J".into(),
        payload: b"pw=hunter2".to_vec(),
        qos: 1,
        retain: true,
    };
    let rec = MessageRecord::of(&m, &secrets);
    assert_eq!(rec.payload, "pw=***");
    assert_eq!(rec.payload_len, 10);
    assert!(rec.redacted && rec.retain && rec.qos == 1);
    assert!(!rec.topic.contains('\u{1b}'), "{}", rec.topic);
    let bin = Message {
        payload: vec![0xff, 0x00, b'a'],
        ..m
    };
    let rec = MessageRecord::of(&bin, &secrets);
    assert_eq!(rec.payload_hex.as_deref(), Some("FF0061"));
    assert!(!rec.redacted);
}
