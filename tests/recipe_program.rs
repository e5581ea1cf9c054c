//! The typed program a recipe compiles into (issue 12 §1), the teardown's order across
//! includes, the built-in `{{link.*}}`, and the loader checks of issues 10 and 11 that are
//! easier to show with a whole recipe than with one malformed file.

mod support;

use std::time::Duration;

use sim7k::recipe::load::{LoadOptions, LoadedRecipe, load, load_str};
use sim7k::recipe::program::{MqttWant, Setting, StepAction};
use sim7k::recipe::vars::Env;
use support::TempDir;
use support::emulator::sim7k;

fn opts() -> LoadOptions {
    LoadOptions {
        overrides: Vec::new(),
        env: Env::from_pairs([("HOME", "/root")]),
    }
}

fn load_yaml(yaml: &str) -> LoadedRecipe {
    load_str("p.yaml", yaml, &opts()).unwrap_or_else(|e| panic!("{e}"))
}

fn sends(steps: &[sim7k::recipe::program::ProgramStep]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match &s.action {
            StepAction::Send(send) => send.command.source().to_owned(),
            _ => format!("#{}", s.id),
        })
        .collect()
}

#[test]
fn defaults_are_applied_once_at_load() {
    let r = load_yaml(
        r#"
timeout: 7s
abort: ["ERROR", "/^BUSY {{apn}}$/"]
vars:
  apn: internet
steps:
  - send: AT+CEREG?
    until: '/^\+CEREG: \d,[15]/'
  - send: AT+CIICR
    retries: 2
    recover: AT+CIPSHUT
  - send_data: packet
  - wait: 3s
    expect: "+CPIN: READY"
  - expect_mqtt: { packet: puback, packet_id: "{{id}}" }
  - expect_mqtt: { packet: publish, count: 2 }
  - say: hi
"#,
    );
    let p = &r.program;
    assert!(p.finally.is_empty());
    assert_eq!(p.finally_deadline, Duration::from_secs(30));
    assert_eq!(p.limits.script_memory, 64 << 20);
    let [poll, retry, data, wait, ack, messages, say] = p.steps.as_slice() else {
        panic!("7 steps");
    };
    // An `until` step: a two-minute deadline, one-second polls, no recipe `abort`.
    let StepAction::Send(s) = &poll.action else {
        panic!("send");
    };
    assert_eq!(poll.deadline, Some(Duration::from_secs(120)));
    assert_eq!(poll.timeout, Duration::from_secs(7));
    let until = s.poll.as_ref().expect("a poll");
    assert_eq!(until.interval, Duration::from_secs(1));
    assert!(until.until[0].is_compiled(), "compiled at load");
    assert!(s.abort.is_empty());
    // A plain command: the recipe's `abort` list, retry defaults, recover parsed.
    let StepAction::Send(s) = &retry.action else {
        panic!("send");
    };
    let aborts: Vec<(&str, bool)> = s
        .abort
        .iter()
        .map(|a| (a.source(), a.is_compiled()))
        .collect();
    assert_eq!(aborts, [("ERROR", true), ("/^BUSY {{apn}}$/", false)]);
    assert_eq!(s.retry.retries, 2);
    assert_eq!(s.retry.delay, Duration::from_secs(1));
    assert_eq!(s.retry.backoff, 1.0);
    assert_eq!(s.retry.recover[0].source(), "AT+CIPSHUT");
    assert!(
        matches!(&data.action, StepAction::SendData(d) if d.var == "packet" && d.chunk.is_none())
    );
    assert!(matches!(&wait.action, StepAction::Wait(w) if w.duration == Duration::from_secs(3)));
    match &ack.action {
        StepAction::ExpectMqtt(e) => {
            assert!(matches!(e.want, MqttWant::Packet(_)));
            assert!(matches!(e.packet_id, Some(Setting::Template(_))));
        }
        other => panic!("{other:?}"),
    }
    match &messages.action {
        StepAction::ExpectMqtt(e) => assert!(matches!(
            e.want,
            MqttWant::Messages {
                count: Some(Setting::Fixed(2)),
                duration: None
            }
        )),
        other => panic!("{other:?}"),
    }
    assert!(matches!(say.action, StepAction::Local) && say.say.is_some());
    assert_eq!(say.deadline, None);
}

#[test]
fn teardown_order_across_includes() {
    let dir = TempDir::new("finally-order");
    let d = dir.path();
    std::fs::write(
        d.join("a.yaml"),
        "steps:\n  - send: AT+A\nfinally:\n  - send: AT+A-DOWN\n",
    )
    .unwrap();
    std::fs::write(
        d.join("b.yaml"),
        "include: a.yaml\nsteps:\n  - send: AT+B\nfinally:\n  - send: AT+B-DOWN\n",
    )
    .unwrap();
    std::fs::write(
        d.join("c.yaml"),
        "steps:\n  - send: AT+C\nfinally:\n  - send: AT+C-DOWN\n",
    )
    .unwrap();
    std::fs::write(d.join("shut.yaml"), "steps:\n  - send: AT+CIPSHUT\n").unwrap();
    std::fs::write(
        d.join("top.yaml"),
        "include: b.yaml\nfinally_deadline: 45s\nsteps:\n  - send: AT+TOP\n  - include: c.yaml\n  - include: a.yaml\nfinally:\n  - send: AT+TOP-DOWN\n  - include: shut.yaml\n",
    )
    .unwrap();
    let r = load(&d.join("top.yaml"), &opts()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sends(&r.program.steps),
        ["AT+A", "AT+B", "AT+TOP", "AT+C", "AT+A"]
    );
    // This file's own teardown, then the included files' teardowns, last included first;
    // each file contributes its `finally` once (a.yaml is included twice).
    assert_eq!(
        sends(&r.program.finally),
        [
            "AT+TOP-DOWN",
            "AT+CIPSHUT",
            "AT+C-DOWN",
            "AT+B-DOWN",
            "AT+A-DOWN"
        ]
    );
    assert_eq!(r.program.finally_deadline, Duration::from_secs(45));
    // Ids continue after the steps, so each step's script has its own id.
    let ids: Vec<usize> = r.program.all_steps().map(|s| s.id).collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert_eq!(r.finally.len(), 5);
}

#[test]
fn link_vars_are_always_defined() {
    let r = load_yaml(
        "steps:\n  - send: AT\nfinally:\n  - if: \"{{link.mqtt}}\"\n    say: \"tcp {{ link.tcp }}\"\n",
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let step = &r.program.finally[0];
    let mut vars = r.vars.clone();
    let cond = step.condition.as_ref().unwrap();
    assert_eq!(vars.expand_template(cond).unwrap(), "false");
    vars.set_link(sim7k::recipe::vars::LinkState {
        tcp: true,
        mqtt: true,
    });
    assert_eq!(vars.expand_template(cond).unwrap(), "true");
    assert_eq!(
        vars.expand_template(step.say.as_ref().unwrap()).unwrap(),
        "tcp true"
    );
    // Read-only: neither a var declaration nor `--set` can name them.
    assert!(sim7k::recipe::load::parse_override("link.tcp=true").is_err());
}

/// Issue 10.9: the documented hex-mode setup loads (before: refused as prompting).
#[test]
fn cipsendhex_is_not_a_prompting_command() {
    let r = load_yaml(
        "steps:\n  - send: AT+CIPSENDHEX=1\n  - send: AT+CIPSENDHEX?\n  - send: AT+CIPSENDHEX=0\n  - send: AT+CIPSEND?\n",
    );
    assert_eq!(r.program.steps.len(), 4);
    // Real prompts still need their data.
    for send in ["AT+CIPSEND=5", "AT+CIPSEND", "AT+SMPUB=\"t\",5,0,0"] {
        let e =
            load_str("p.yaml", &format!("steps:\n  - send: '{send}'\n"), &opts()).expect_err(send);
        assert!(e.message().contains("prompts `> `"), "{send}: {e}");
    }
}

/// Issue 10.19: many aliases of one anchor are fine (the old heuristic refused more than
/// 10 per anchor once there were 100, pointing at the file's end).
#[test]
fn many_merges_of_one_anchor_load() {
    let mut yaml = String::from("anchors:\n  slow: &slow { timeout: 30s, retries: 1 }\nsteps:\n");
    for i in 0..150 {
        yaml.push_str(&format!("  - <<: *slow\n    send: AT+N{i}\n"));
    }
    let r = load_yaml(&yaml);
    assert_eq!(r.program.steps.len(), 150);
    assert_eq!(r.program.steps[149].timeout, Duration::from_secs(30));
}

/// Issue 11.11: runaway var chains stop at the expansion budget, at load (before: 65 s and
/// 1.2 GB at 8 levels, SIGABRT at 9).
#[test]
fn runaway_var_chains_stop_at_the_budget() {
    let mut yaml = String::from("vars:\n  v0: xxxxxxxxxx\n");
    for i in 1..=12 {
        yaml.push_str(&format!(
            "  v{i}: \"{}\"\n",
            format!("{{{{v{}}}}}", i - 1).repeat(10)
        ));
    }
    yaml.push_str("steps:\n  - say: \"{{v12}}\"\n");
    let e = load_str("bomb.yaml", &yaml, &opts()).expect_err("too large");
    assert!(
        e.message().contains("over the limit of 4194304 bytes"),
        "{e}"
    );
    assert_eq!(e.origin().map(|o| o.line), Some(8), "{e}");
    // At run time too: a value built by a script cannot be expanded past the budget.
    let mut vars = sim7k::recipe::vars::Vars::new(Env::default());
    vars.set("big", "x".repeat(3 << 20).into(), false);
    let e = vars.expand("{{big}}{{big}}").unwrap_err();
    assert!(e.to_string().contains("over the limit"), "{e}");
}

/// Issue 11.8: the lines of a file that is not a recipe are never shown.
#[test]
fn non_recipe_files_are_never_shown() {
    let dir = TempDir::new("not-a-recipe");
    let secret = dir.path().join("notes.txt");
    std::fs::write(&secret, "password: hunter2-very-secret\n").unwrap();
    let e = load(&secret, &opts()).expect_err("not a recipe");
    let plain = e.to_string();
    let graphical = e.render(false);
    assert!(
        !plain.contains("hunter2") && !graphical.contains("hunter2"),
        "{plain}\n{graphical}"
    );
    assert!(plain.contains("not shown"), "{plain}");
    assert!(
        plain.starts_with(&format!("{}:1:1:", secret.display())),
        "{plain}"
    );
    // An include or profile of a non-recipe file is refused before it is read.
    let out = sim7k()
        .arg("check")
        .arg("/dev/stdin")
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(2));
    let top = dir.path().join("r.yaml");
    std::fs::write(&top, "profile: /proc/self/environ\nsteps:\n  - send: AT\n").unwrap();
    let out = sim7k()
        .arg("check")
        .arg(&top)
        .env("SIM7K_TEST_PROBE", "probe-value-4711")
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("probe-value-4711"), "{stderr}");
    assert!(stderr.contains("is not a recipe file"), "{stderr}");
}

/// Issue 10.18: an unknown carrier profile lists the available ones and suggests the
/// nearest (here a differently-cased one).
#[test]
fn unknown_carrier_profile_lists_the_profiles() {
    let out = sim7k()
        .args([
            "check",
            "recipes/mqtt-publish.yaml",
            "--set",
            "carrier_profile=Hologram",
        ])
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the available ones are: 1nce, chunghwa, fareastone, hologram, soracom, taiwan-mobile, twilio"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did you mean `--set carrier_profile=hologram`?"),
        "{stderr}"
    );
    let out = sim7k()
        .args([
            "check",
            "recipes/mqtt-publish.yaml",
            "--set",
            "carrier_profile=sorcom",
        ])
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`--set carrier_profile=soracom`"),
        "{stderr}"
    );
}

/// Issue 11.13: a payload too large for the sandbox fails at load, not at step 22 after
/// attaching; the native recipe's 512-byte AT+SMPUB limit too.
#[test]
fn payload_limits_are_checked_at_load() {
    let out = sim7k()
        .args([
            "check",
            "recipes/mqtt-publish.yaml",
            "--set",
            "payload_size=9000000",
        ])
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--set payload_size=…: payload_size = 9000000, above the maximum 8388608"),
        "{stderr}"
    );
    assert!(stderr.contains("mqtt-publish.yaml:"), "located: {stderr}");
    let out = sim7k()
        .args([
            "check",
            "recipes/mqtt-qos1.yaml",
            "--set",
            "payload_size=8388608",
        ])
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(0));
    let long = "x".repeat(513);
    let out = sim7k()
        .args(["check", "recipes/mqtt-native.yaml", "--set"])
        .arg(format!("payload={long}"))
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("513 bytes long, over the maximum of 512"),
        "{stderr}"
    );
}

/// Issue 10.4: every shipped MQTT recipe tears its session and bearer down in `finally`.
#[test]
fn shipped_mqtt_recipes_tear_down() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    for name in [
        "mqtt-publish.yaml",
        "mqtt-qos1.yaml",
        "mqtt-subscribe.yaml",
        "provision-sim7000.yaml",
        "1nce-catm.yaml",
        "hologram-catm.yaml",
        "fareastone-nbiot.yaml",
        "mqtt-native.yaml",
    ] {
        let r = load(&root.join(name), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let downs = sends(&r.program.finally);
        let steps = sends(&r.program.steps);
        if name == "mqtt-native.yaml" {
            assert_eq!(downs, ["AT+SMSTATE?", "AT+SMDISC", "AT+CNACT=0"], "{name}");
            assert!(!steps.iter().any(|s| s == "AT+SMDISC"), "{name}");
            continue;
        }
        let first = format!("#{}", r.program.finally[0].id);
        assert_eq!(downs, [first.as_str(), "AT+CIPSHUT"], "{name}");
        let disconnect = &r.program.finally[0];
        assert_eq!(
            disconnect.condition.as_ref().map(|c| c.source()),
            Some("{{link.mqtt}}"),
            "{name}"
        );
        assert!(matches!(&disconnect.action, StepAction::SendData(d) if d.var == "bye"));
        // The ordinary steps no longer disconnect by themselves.
        assert!(
            !r.program
                .steps
                .iter()
                .any(|s| matches!(&s.action, StepAction::SendData(d) if d.var == "bye")),
            "{name}"
        );
    }
}
