//! Loading valid recipes: defaults, includes and profiles, vars, env, secrets,
//! merge keys, warnings.

mod support;

use std::path::Path;
use std::time::Duration;

use sim7k::recipe::load::{
    DEFAULT_ABORT, LoadOptions, LoadedRecipe, load, load_str, parse_override,
};
use sim7k::recipe::{Env, VarValue};
use support::TempDir;

fn opts() -> LoadOptions {
    LoadOptions {
        overrides: Vec::new(),
        env: Env::from_pairs([("MQTT_PASSWORD", "pa55-word"), ("APN_ENV", "iot.env")]),
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn sends(r: &LoadedRecipe) -> Vec<String> {
    r.steps
        .iter()
        .map(|s| {
            s.step
                .send
                .clone()
                .or_else(|| s.step.say.clone())
                .unwrap_or_default()
        })
        .collect()
}

fn text(r: &LoadedRecipe, name: &str) -> String {
    match r.vars.get(name) {
        Some(VarValue::Text(t)) => t.clone(),
        other => panic!("var {name}: {other:?}"),
    }
}

#[test]
fn built_in_defaults() {
    let r = load_str("recipes/hello.yaml", "steps:\n  - send: AT\n", &opts()).unwrap();
    assert_eq!(r.name, "hello");
    assert_eq!(r.description, None);
    assert_eq!(r.timeout, Duration::from_secs(5));
    let abort: Vec<&str> = r.abort.iter().map(|p| p.as_str()).collect();
    assert_eq!(abort, DEFAULT_ABORT);
    assert_eq!(
        abort,
        [
            "ERROR",
            "+CME ERROR",
            "+CMS ERROR",
            "CONNECT FAIL",
            "SEND FAIL"
        ]
    );
    assert_eq!(r.deadline, None);
    assert!(r.sync.enabled);
    assert_eq!(r.sync.within, Duration::from_secs(10));
    assert_eq!(r.sync.interval, Duration::from_millis(300));
    assert!(r.urc.is_empty() && r.scripts.is_empty());
    assert!(r.vars.is_empty());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.steps.len(), 1);
    assert_eq!(r.steps[0].origin.to_string(), "recipes/hello.yaml:2:5");
}

#[test]
fn recipe_level_settings_are_read() {
    let yaml = r#"
name: Settings
description: all the knobs
timeout: 2s
deadline: 1m 30s
abort: [ERROR, "/^\\+CME ERROR: \\d+$/"]
sync: { within: 3s, interval: 100ms }
urc:
  - match: "+CPIN: NOT READY"
    message: SIM gone
  - { match: "/^\\+CSQ/", action: log }
steps:
  - send: AT
"#;
    let r = load_str("x.yaml", yaml, &opts()).unwrap();
    assert_eq!(r.name, "Settings");
    assert_eq!(r.description.as_deref(), Some("all the knobs"));
    assert_eq!(r.timeout, Duration::from_secs(2));
    assert_eq!(r.deadline, Some(Duration::from_secs(90)));
    assert_eq!(r.abort.len(), 2);
    assert!(r.abort[1].is_regex());
    assert_eq!(r.sync.within, Duration::from_secs(3));
    assert_eq!(r.sync.interval, Duration::from_millis(100));
    assert_eq!(r.urc.len(), 2);
    assert_eq!(r.urc[1].action, sim7k::recipe::UrcAction::Log);
    let off = load_str("x.yaml", "sync: false\nsteps: [{send: AT}]\n", &opts()).unwrap();
    assert!(!off.sync.enabled);
}

#[test]
fn includes_and_profile_merge_in_order() {
    let dir = TempDir::new("recipe-inc");
    let d = dir.path();
    write(
        d,
        "carriers/telekom.yaml",
        r#"
vars:
  apn: internet.telekom
  band: "8"
  shared: from-profile
timeout: 7s
urc:
  - match: "+PDP: DEACT"
scripts: [../lib/profile.rhai]
steps:
  - send: AT+CSTT="{{apn}}"
"#,
    );
    write(d, "lib/profile.rhai", "fn p() { 1 }\n");
    write(d, "lib/common.rhai", "fn c() { 2 }\n");
    write(
        d,
        "common.yaml",
        r#"
vars:
  shared: from-common
  broker: test.mosquitto.org
  band: "20"
timeout: 9s
deadline: 5m
urc:
  - match: "+CFUN: 0"
scripts: lib/common.rhai
steps:
  - send: AT+CMEE=2
  - include: tail.yaml
"#,
    );
    write(
        d,
        "tail.yaml",
        "vars:\n  tail_var: t\nsteps:\n  - say: tail {{tail_var}}\n",
    );
    write(
        d,
        "mid.yaml",
        "vars:\n  shared: from-mid\nsteps:\n  - send: AT+MID\n",
    );
    write(
        d,
        "main.yaml",
        r#"
name: main
profile: carriers/{{carrier}}.yaml
include: [common.yaml]
vars:
  carrier: telekom
  broker: broker.local
urc:
  - match: "+CPIN: NOT READY"
steps:
  - send: AT
  - include: mid.yaml
  - send: AT+CIICR
"#,
    );
    let r = load(&d.join("main.yaml"), &opts()).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(
        sends(&r),
        [
            "AT+CSTT=\"{{apn}}\"",
            "AT+CMEE=2",
            "tail {{tail_var}}",
            "AT",
            "AT+MID",
            "AT+CIICR"
        ]
    );
    // Origins point into the file each step comes from.
    assert_eq!(
        r.steps[0].origin.file,
        d.join("carriers/telekom.yaml"),
        "{}",
        r.steps[0].origin
    );
    assert_eq!(r.steps[0].origin.line, 11);
    assert_eq!(r.steps[2].origin.file, d.join("tail.yaml"));
    assert_eq!(r.steps[4].origin.file, d.join("mid.yaml"));
    assert_eq!(r.steps[5].origin.file, d.join("main.yaml"));
    // The including file wins; among included files the first one listed wins
    // (profile, then include:, then include steps).
    assert_eq!(text(&r, "broker"), "broker.local");
    assert_eq!(text(&r, "shared"), "from-profile");
    assert_eq!(text(&r, "band"), "8");
    assert_eq!(text(&r, "apn"), "internet.telekom");
    assert_eq!(text(&r, "tail_var"), "t");
    // Settings: top file unset, so the first included file that sets one wins.
    assert_eq!(r.timeout, Duration::from_secs(7));
    assert_eq!(r.deadline, Some(Duration::from_secs(300)));
    // URC handlers and scripts: included first.
    let urc: Vec<&str> = r.urc.iter().map(|u| u.pattern.as_str()).collect();
    assert_eq!(urc, ["+PDP: DEACT", "+CFUN: 0", "+CPIN: NOT READY"]);
    let scripts: Vec<&str> = r.scripts.iter().map(|s| s.text.trim()).collect();
    assert_eq!(scripts, ["fn p() { 1 }", "fn c() { 2 }"]);
    assert_eq!(r.scripts[0].path, d.join("carriers/../lib/profile.rhai"));
    // Every file read is available for snippets.
    assert!(
        r.source_text(&d.join("mid.yaml"))
            .unwrap()
            .contains("AT+MID")
    );
    assert_eq!(r.sources.len(), 5);

    // `--set carrier=...` picks another profile file.
    write(
        d,
        "carriers/vodafone.yaml",
        "vars:\n  apn: web.vodafone.de\nsteps: []\n",
    );
    let mut o = opts();
    o.overrides.push(("carrier".into(), "vodafone".into()));
    let r = load(&d.join("main.yaml"), &o).unwrap();
    assert_eq!(text(&r, "apn"), "web.vodafone.de");
    assert_eq!(sends(&r)[0], "AT+CMEE=2");
}

#[test]
fn include_path_can_use_env_and_diamonds_are_not_cycles() {
    let dir = TempDir::new("recipe-diamond");
    let d = dir.path();
    write(
        d,
        "leaf.yaml",
        "urc: [{match: LEAF}]\nsteps: [{send: AT+LEAF}]\n",
    );
    write(d, "a.yaml", "include: leaf.yaml\nsteps: [{send: AT+A}]\n");
    write(d, "b.yaml", "include: leaf.yaml\nsteps: [{send: AT+B}]\n");
    write(
        d,
        "top.yaml",
        "include: [a.yaml, \"{{env.WHICH}}.yaml\"]\nsteps: [{send: AT+TOP}]\n",
    );
    let mut o = opts();
    o.env = Env::from_pairs([("WHICH", "b")]);
    let r = load(&d.join("top.yaml"), &o).unwrap();
    assert_eq!(sends(&r), ["AT+LEAF", "AT+A", "AT+LEAF", "AT+B", "AT+TOP"]);
    // The leaf's URC handler is contributed once.
    assert_eq!(r.urc.len(), 1);
}

#[test]
fn overrides_and_defaults_expand() {
    let yaml = r#"
vars:
  host: broker.example
  port: 1883
  url: "tcp://{{host}}:{{port}}"
  pin: 0000
  phone: +4917012345
  version: 1.10
  flag: yes
  empty:
  apn: { value: "{{env.APN_ENV}}", description: the APN }
steps:
  - send: AT+CIPSTART="TCP","{{host}}",{{port}}
"#;
    let r = load_str("x.yaml", yaml, &opts()).unwrap();
    assert_eq!(text(&r, "url"), "tcp://broker.example:1883");
    // Numbers keep their spelling.
    assert_eq!(text(&r, "pin"), "0000");
    assert_eq!(text(&r, "phone"), "+4917012345");
    assert_eq!(text(&r, "version"), "1.10");
    assert_eq!(text(&r, "flag"), "true");
    assert_eq!(text(&r, "empty"), "");
    assert_eq!(text(&r, "apn"), "iot.env");
    let info = r.var_info.iter().find(|v| v.name == "apn").unwrap();
    assert_eq!(info.description.as_deref(), Some("the APN"));
    assert_eq!(info.origin.as_ref().unwrap().to_string(), "x.yaml:11:3");
    // Declaration order is kept.
    let names: Vec<&str> = r.vars.iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names,
        [
            "host", "port", "url", "pin", "phone", "version", "flag", "empty", "apn"
        ]
    );

    let mut o = opts();
    o.overrides = vec![
        ("host".into(), "first".into()),
        ("host".into(), "10.0.0.2".into()),
    ];
    let r = load_str("x.yaml", yaml, &o).unwrap();
    // The last --set wins, and defaults that use the var see the override.
    assert_eq!(text(&r, "host"), "10.0.0.2");
    assert_eq!(text(&r, "url"), "tcp://10.0.0.2:1883");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // An undeclared --set that nothing mentions is an error (it was a warning: issue 10.5).
    o.overrides.push(("script_only".into(), "42".into()));
    let e = load_str("x.yaml", yaml, &o).unwrap_err().to_string();
    assert!(
        e.contains("--set script_only=…: the recipe declares no var `script_only`"),
        "{e}"
    );
    // A name a script (or any file of the recipe) mentions is added as a var.
    let mentioned = format!("{yaml}  - script: let x = get_var(\"script_only\");\n");
    let r = load_str("x.yaml", &mentioned, &o).unwrap();
    assert_eq!(text(&r, "script_only"), "42");
}

#[test]
fn set_values_are_literal_and_override_env_defaults() {
    let yaml =
        "vars:\n  pw: { value: \"{{env.NOT_SET_ANYWHERE}}\", secret: true }\nsteps: [{send: AT}]\n";
    assert!(load_str("x.yaml", yaml, &opts()).is_err());
    let mut o = opts();
    o.overrides.push(("pw".into(), "{{literal}}".into()));
    let r = load_str("x.yaml", yaml, &o).unwrap();
    assert_eq!(text(&r, "pw"), "{{literal}}");
    assert!(r.vars.is_secret("pw"));
}

#[test]
fn parse_override_checks_the_name() {
    assert_eq!(
        parse_override("apn=a=b").unwrap(),
        ("apn".to_owned(), "a=b".to_owned())
    );
    assert_eq!(
        parse_override("x=").unwrap(),
        ("x".to_owned(), String::new())
    );
    assert!(parse_override("novalue").is_err());
    assert!(parse_override("1x=2").is_err());
    let err = load_str(
        "x.yaml",
        "steps: [{send: AT}]\n",
        &LoadOptions {
            overrides: vec![("a-b".into(), "1".into())],
            env: Env::default(),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("`a-b` is not a var name"), "{err}");
}

#[test]
fn secrets_from_env_are_redacted_and_propagate() {
    let yaml = r#"
vars:
  user: device-1
  password: { value: "{{env.MQTT_PASSWORD}}", secret: true }
  auth: "{{user}}:{{password}}"
steps:
  - send: AT+SECRET="{{password}}"
"#;
    let r = load_str("x.yaml", yaml, &opts()).unwrap();
    assert!(r.vars.is_secret("password"));
    assert!(
        r.vars.is_secret("auth"),
        "a var built from a secret is secret"
    );
    assert!(!r.vars.is_secret("user"));
    assert_eq!(
        r.vars.secret_values(),
        [b"pa55-word".to_vec(), b"device-1:pa55-word".to_vec()]
    );
    let line = r
        .vars
        .expand(r.steps[0].step.send.as_deref().unwrap())
        .unwrap();
    assert_eq!(line, "AT+SECRET=\"pa55-word\"");
    assert_eq!(r.vars.redact(&line), "AT+SECRET=\"***\"");
    assert_eq!(
        r.vars.redact("auth device-1:pa55-word"),
        "auth ***",
        "the longest secret wins"
    );
    let json = r.vars.to_json();
    assert_eq!(json["password"], "***");
    assert_eq!(json["auth"], "***");
    assert_eq!(json["user"], "device-1");
    assert!(!format!("{:?}", r.vars).contains("pa55"));
}

#[test]
fn merge_keys_in_steps() {
    let yaml = r#"
anchors:
  slow: &slow
    timeout: 30s
    retries: 3
    retry_delay: 2s
    expect: /^OK$/
steps:
  - <<: *slow
    send: AT+CIICR
  - <<: *slow
    send: AT+CIFSR
    retries: 1
    expect: "."
"#;
    let r = load_str("x.yaml", yaml, &opts()).unwrap();
    let a = &r.steps[0].step;
    assert_eq!(a.timeout, Some(Duration::from_secs(30)));
    assert_eq!(a.retries, Some(3));
    assert_eq!(a.retry_delay, Some(Duration::from_secs(2)));
    assert_eq!(a.expect.as_slice()[0].as_str(), "/^OK$/");
    let b = &r.steps[1].step;
    assert_eq!(
        b.retries,
        Some(1),
        "the step's own key beats the merged one"
    );
    assert_eq!(b.expect.as_slice()[0].as_str(), ".");
    assert_eq!(b.timeout, Some(Duration::from_secs(30)));
    assert_eq!(r.steps[1].origin.line, 11);
}

#[test]
fn step_shapes_that_are_allowed() {
    let yaml = r#"
vars:
  payload: ""
steps:
  - script: |
      let x = 1;
  - say: hello
  - send: AT+CSQ
    script: let y = 2;
    capture: '\+CSQ: (?P<rssi>\d+),(?P<ber>\d+)'
    validate:
      rssi: { min: 1, max: 31, not: ["99"] }
      ber: { regex: '^\d+$' }
    secret: false
  - send: AT+CIPSTATUS
    until: ["STATE: IP STATUS", "/STATE: CONNECT OK/"]
    interval: 2s
    retries: 2
    deadline: 1m
  - send_data: payload
    data: { chunk: 512, quick: true }
    abort: CLOSED
  - wait: 3s
  - send: AT+CIPCLOSE
    on_fail: continue
    if: "{{rssi}}"
    delay: 500ms
    backoff: 2.0
    retries: 1
    expect: 42
"#;
    let r = load_str("x.yaml", yaml, &opts()).unwrap();
    assert_eq!(r.steps.len(), 7);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.steps[6].step.expect.as_slice()[0].as_str(), "42");
    assert_eq!(r.steps[5].step.wait, Some(Duration::from_secs(3)));
}

#[test]
fn unknown_placeholders_are_warnings() {
    let yaml = r#"
vars:
  apn: internet
steps:
  - send: AT+CSQ
    capture: '(?P<rssi>\d+)'
  - say: "rssi {{rssi}} on {{apn}}, {{mystery}} and {{mystery}}"
  - script: |
      vars.built = 1;
  - say: "{{built}}"
  - say: "{{apm}}"
"#;
    let r = load_str("w.yaml", yaml, &opts()).unwrap();
    let warnings: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        // The caller writes `warning: ` (the Display no longer repeats it: issue 10.5).
        warnings[0].starts_with("w.yaml:7:37: `mystery` is not a declared var"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].starts_with("w.yaml:11:11: `apm`"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings[1].contains("did you mean `apn`?"),
        "{}",
        warnings[1]
    );
    assert!(r.warnings[1].render(false).contains("╭─[w.yaml:11:11]"));
}

#[test]
fn capture_used_before_it_is_captured_warns() {
    let yaml = "steps:\n  - say: \"{{rssi}}\"\n  - send: AT+CSQ\n    capture: '(?P<rssi>\\d+)'\n";
    let r = load_str("w.yaml", yaml, &opts()).unwrap();
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].origin().unwrap().to_string(), "w.yaml:2:11");
}

#[test]
fn retry_delay_without_retries_warns() {
    let yaml = "steps:\n  - send: AT\n    retry_delay: 1s\n";
    let r = load_str("w.yaml", yaml, &opts()).unwrap();
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0]
            .message()
            .contains("no effect without `retries`")
    );
}

#[test]
fn included_errors_point_into_the_included_file() {
    let dir = TempDir::new("recipe-incerr");
    let d = dir.path();
    write(
        d,
        "inner.yaml",
        "steps:\n  - send: AT\n    expect: \"/(/\"\n",
    );
    write(
        d,
        "main.yaml",
        "steps:\n  - send: AT\n  - include: inner.yaml\n",
    );
    let err = load(&d.join("main.yaml"), &opts()).unwrap_err();
    let text = err.to_string();
    let inner = d.join("inner.yaml").display().to_string();
    assert!(
        text.starts_with(&format!("{inner}:3:13: invalid regex in `expect`")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "included from {}:3:14",
            d.join("main.yaml").display()
        )),
        "{text}"
    );
    let rendered = err.render(false);
    assert!(
        rendered.contains(&format!("╭─[{inner}:3:13]")),
        "{rendered}"
    );
}

#[test]
fn huge_document_is_refused() {
    let dir = TempDir::new("recipe-huge");
    let mut text = String::from("steps:\n");
    while text.len() <= sim7k::recipe::load::MAX_FILE_BYTES {
        text.push_str("  - send: AT+CSQ\n");
    }
    let path = dir.path().join("huge.yaml");
    std::fs::write(&path, &text).unwrap();
    let err = load(&path, &opts()).unwrap_err();
    assert!(err.to_string().contains("file is too large"), "{err}");
    let err = load_str("huge.yaml", &text, &opts()).unwrap_err();
    assert!(err.to_string().contains("file is too large"), "{err}");
}

#[test]
fn missing_top_file_is_an_error_naming_it() {
    let err = load(Path::new("/nonexistent/sim7k/r.yaml"), &opts()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/sim7k/r.yaml: cannot read recipe"),
        "{err}"
    );
}

#[test]
fn bom_is_skipped() {
    let r = load_str("b.yaml", "\u{feff}steps:\n  - send: AT\n", &opts()).unwrap();
    assert_eq!(r.steps[0].origin.to_string(), "b.yaml:2:5");
}

/// The complete examples of docs/recipes.md load (those that need other files are
/// only checked against the schema, in recipe_schema.rs).
#[test]
fn documented_examples_load() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes.md"))
            .unwrap();
    let mut loaded = 0;
    for block in docs.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        if yaml.contains("include:") || yaml.contains("profile:") {
            continue;
        }
        let r =
            load_str("docs/example.yaml", yaml, &opts()).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert!(r.warnings.is_empty(), "{:?}\n{yaml}", r.warnings);
        loaded += 1;
    }
    assert!(loaded >= 5, "only {loaded} examples loaded");
}

#[test]
fn include_depth_is_capped() {
    let dir = TempDir::new("recipe-deep");
    let d = dir.path();
    for i in 0..20 {
        write(
            d,
            &format!("f{i}.yaml"),
            &format!("include: f{}.yaml\nsteps: [{{send: AT+F{i}}}]\n", i + 1),
        );
    }
    write(d, "f20.yaml", "steps: [{send: AT+LAST}]\n");
    let err = load(&d.join("f0.yaml"), &opts()).unwrap_err();
    assert!(err.message().contains("nested more than 16 deep"), "{err}");
    // The error sits in the 17th file, with the whole chain as notes.
    assert_eq!(err.origin().unwrap().file, d.join("f16.yaml"));
    assert_eq!(err.help().unwrap().matches("included from").count(), 16);
    // 16 levels are fine.
    let r = load(&d.join("f4.yaml"), &opts()).unwrap();
    assert_eq!(r.steps.len(), 17);
    assert_eq!(sends(&r)[0], "AT+LAST");
}

#[test]
fn set_of_a_var_a_script_reads_does_not_warn() {
    let yaml = "steps:\n  - script: |\n      let t = vars.threshold;\n  - send: AT\n";
    let mut o = opts();
    o.overrides.push(("threshold".into(), "7".into()));
    let r = load_str("x.yaml", yaml, &o).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(text(&r, "threshold"), "7");
    let info = r.var_info.iter().find(|v| v.name == "threshold").unwrap();
    assert_eq!(info.origin, None);
}

#[test]
fn errors_and_recipes_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<sim7k::recipe::RecipeError>();
    send_sync::<sim7k::recipe::RecipeWarning>();
    send_sync::<LoadedRecipe>();
}
