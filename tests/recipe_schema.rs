//! The checked-in `recipe.schema.json` must equal what the model generates.
//!
//! Regenerate with `cargo run -- schema > recipe.schema.json` (once the CLI has the
//! subcommand) or `SIM7K_BLESS=1 cargo test --test recipe_schema`.

use std::path::Path;

use serde_json::Value;
use sim7k::recipe::schema::schema_json;

fn schema() -> Value {
    serde_json::from_str(&schema_json()).expect("schema_json() is JSON")
}

#[test]
fn checked_in_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipe.schema.json");
    let generated = schema_json();
    if std::env::var_os("SIM7K_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write recipe.schema.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "recipe.schema.json is out of date with the recipe model.\n\
         Regenerate it with `cargo run -- schema > recipe.schema.json` \
         or `SIM7K_BLESS=1 cargo test --test recipe_schema`."
    );
}

#[test]
fn schema_is_draft07_and_closed() {
    let s = schema();
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(s["title"], "Recipe");
    assert_eq!(s["type"], "object");
    assert_eq!(s["additionalProperties"], false);
    let defs = s["definitions"].as_object().expect("definitions");
    for name in [
        "Step",
        "VarSpec",
        "SyncTuning",
        "UrcHandler",
        "DataOptions",
        "Validator",
    ] {
        assert_eq!(
            defs[name]["additionalProperties"], false,
            "{name} must refuse unknown keys"
        );
    }
    // Every top-level key of the model is described.
    let props = s["properties"].as_object().unwrap();
    for key in [
        "name",
        "description",
        "include",
        "profile",
        "vars",
        "scripts",
        "timeout",
        "abort",
        "deadline",
        "sync",
        "urc",
        "steps",
        "finally",
        "finally_deadline",
        "limits",
        "anchors",
    ] {
        assert!(props.contains_key(key), "missing {key}");
        assert!(
            props[key].get("description").is_some(),
            "{key} has no description"
        );
    }
}

#[test]
fn either_or_types_render_as_any_of() {
    let s = schema();
    let defs = &s["definitions"];
    // VarDef: a scalar or the long form.
    let var_def = defs["VarDef"]["anyOf"].as_array().expect("VarDef anyOf");
    assert_eq!(var_def.len(), 2);
    // Scalar: string, number, boolean, or empty.
    let scalar = serde_json::to_string(&defs["Scalar"]).unwrap();
    for t in ["boolean", "number", "string", "null"] {
        assert!(scalar.contains(t), "Scalar lacks {t}: {scalar}");
    }
    // SyncSpec: a boolean or the tuning map.
    let sync = serde_json::to_string(&defs["SyncSpec"]).unwrap();
    assert!(
        sync.contains("boolean") && sync.contains("SyncTuning"),
        "{sync}"
    );
    // OneOrMany<Pattern>: one string or a list of strings.
    let expect = serde_json::to_string(&defs["Step"]["properties"]["expect"]).unwrap();
    let one_or_many = expect
        .split('"')
        .find(|w| w.starts_with("#/definitions/OneOrMany"))
        .expect("expect refers to a OneOrMany definition");
    let name = one_or_many.trim_start_matches("#/definitions/");
    assert_eq!(name, "OneOrMany_Pattern");
    let oom = serde_json::to_string(&defs[name]).unwrap();
    assert!(oom.contains("\"type\":\"array\""), "{oom}");
    assert!(oom.contains("\"type\":\"null\""), "{oom}");
    // steps are plain Step objects (the Spanned wrapper is invisible), and so are the
    // teardown's.
    assert_eq!(
        s["properties"]["steps"]["items"]["$ref"],
        "#/definitions/Step"
    );
    assert_eq!(
        s["properties"]["finally"]["items"]["$ref"],
        "#/definitions/Step"
    );
    // limits.script_memory: a number of bytes or a size with a unit.
    let size = serde_json::to_string(&defs["ByteSize"]).unwrap();
    assert!(size.contains("integer") && size.contains("MiB"), "{size}");
    // script is a string, durations are patterned strings.
    let script = serde_json::to_string(&defs["Step"]["properties"]["script"]).unwrap();
    assert!(script.contains("string"), "{script}");
    let timeout = serde_json::to_string(&defs["Step"]["properties"]["timeout"]).unwrap();
    assert!(
        timeout.contains("DurationText") || timeout.contains("pattern"),
        "{timeout}"
    );
}

// A small draft-07 validator for the keywords the generated schema uses. It lets
// the tests check that the schema accepts every valid recipe and refuses typos,
// without a JSON Schema dependency. Unknown keywords make the check fail loudly.

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other}"),
    }
}

fn check_schema(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    if schema == &Value::Bool(true) {
        return;
    }
    let Some(obj) = schema.as_object() else {
        errors.push(format!("{path}: refused by schema {schema}"));
        return;
    };
    for (key, rule) in obj {
        match key.as_str() {
            "$schema" | "title" | "description" | "default" | "format" | "definitions" => {}
            "$ref" => {
                let name = rule.as_str().unwrap().trim_start_matches("#/definitions/");
                check_schema(root, &root["definitions"][name], v, path, errors);
            }
            "type" => {
                let ok = match rule {
                    Value::String(t) => type_ok(t, v),
                    Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
                    _ => panic!("bad type rule"),
                };
                if !ok {
                    errors.push(format!("{path}: {v} is not of type {rule}"));
                }
            }
            "properties" => {
                if let Some(map) = v.as_object() {
                    for (k, sub) in rule.as_object().unwrap() {
                        if let Some(x) = map.get(k) {
                            check_schema(root, sub, x, &format!("{path}.{k}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(map) = v.as_object() {
                    let props = obj.get("properties").and_then(Value::as_object);
                    for (k, x) in map {
                        if props.is_some_and(|p| p.contains_key(k)) {
                            continue;
                        }
                        match rule {
                            Value::Bool(false) => {
                                errors.push(format!("{path}: unknown key `{k}`"));
                            }
                            sub => check_schema(root, sub, x, &format!("{path}.{k}"), errors),
                        }
                    }
                }
            }
            "required" => {
                if let Some(map) = v.as_object() {
                    for k in rule.as_array().unwrap() {
                        if !map.contains_key(k.as_str().unwrap()) {
                            errors.push(format!("{path}: missing `{k}`"));
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = v.as_array() {
                    for (i, x) in items.iter().enumerate() {
                        check_schema(root, rule, x, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            "anyOf" | "oneOf" | "allOf" => {
                let results: Vec<Vec<String>> = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|sub| {
                        let mut e = Vec::new();
                        check_schema(root, sub, v, path, &mut e);
                        e
                    })
                    .collect();
                let n = results.iter().filter(|e| e.is_empty()).count();
                let ok = match key.as_str() {
                    "anyOf" => n >= 1,
                    "oneOf" => n == 1,
                    _ => n == results.len(),
                };
                if !ok {
                    let inner: Vec<String> = results.into_iter().flatten().collect();
                    errors.push(format!(
                        "{path}: {v} does not match {key} ({})",
                        inner.join("; ")
                    ));
                }
            }
            "const" => {
                if v != rule {
                    errors.push(format!("{path}: {v} is not {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(v) {
                    errors.push(format!("{path}: {v} not in {rule}"));
                }
            }
            "pattern" => {
                if let Some(s) = v.as_str() {
                    let re = regex::Regex::new(rule.as_str().unwrap()).unwrap();
                    if !re.is_match(s) {
                        errors.push(format!("{path}: {s:?} does not match {rule}"));
                    }
                }
            }
            "minimum" | "maximum" => {
                if let (Some(x), Some(limit)) = (v.as_f64(), rule.as_f64()) {
                    let ok = if key == "minimum" {
                        x >= limit
                    } else {
                        x <= limit
                    };
                    if !ok {
                        errors.push(format!("{path}: {x} violates {key} {limit}"));
                    }
                }
            }
            other => panic!("the test validator does not know the keyword `{other}`"),
        }
    }
}

fn schema_errors(yaml: &str) -> Vec<String> {
    let root = schema();
    let value: Value = serde_saphyr::from_str(yaml).expect("YAML parses");
    let mut errors = Vec::new();
    check_schema(&root, &root, &value, "$", &mut errors);
    errors
}

const VALID: &[&str] = &[
    "steps:\n  - send: AT\n",
    r#"
name: Everything
description: every key once
include: [a.yaml, b.yaml]
profile: carriers/{{carrier}}.yaml
vars:
  carrier: telekom
  pin: 0000
  port: 1883
  ratio: 1.5
  flag: true
  empty:
  password: { value: "{{env.PW}}", secret: true, required: true, description: broker password }
  plain_long: { value: 42 }
scripts: lib/mqtt.rhai
timeout: 5s
abort: [ERROR, "/^\\+CME ERROR/"]
deadline: 10m
sync: { within: 10s, interval: 300ms }
urc:
  - { match: "+CPIN: NOT READY", action: fail, message: SIM removed }
  - match: /^\+CSQ/
    action: log
anchors:
  slow: &slow { timeout: 30s, retries: 2, retry_delay: 1s, backoff: 2 }
steps:
  - name: attach
    <<: *slow
    send: AT+CGATT?
    until: "+CGATT: 1"
    interval: 2s
    deadline: 1m
  - send: AT+CSQ
    capture: '\+CSQ: (?P<rssi>\d+),(?P<ber>\d+)'
    validate:
      rssi: { min: 1, max: 31, not: [99] }
      ber: { regex: '^\d$', equals: 0 }
    secret: false
    expect: [OK, 42]
    abort: "+CME ERROR: 10"
    on_fail: continue
    if: "{{flag}}"
    delay: 100ms
  - script: |
      let p = mqtt_connect(#{ client_id: "x" });
  - send_data: packet
    data: { chunk: 1460, hex: false, quick: true }
  - wait: 2s
  - say: done
  - include: tail.yaml
"#,
    "sync: false\nsteps: [{send: AT, expect:}]\n",
];

#[test]
fn schema_accepts_valid_recipes() {
    for yaml in VALID {
        let errors = schema_errors(yaml);
        assert!(errors.is_empty(), "{errors:#?}\n{yaml}");
    }
}

#[test]
fn schema_refuses_typos_and_wrong_types() {
    for (yaml, needle) in [
        ("stpes: []\n", "unknown key `stpes`"),
        (
            "steps:\n  - send: AT\n    expct: OK\n",
            "unknown key `expct`",
        ),
        (
            "vars:\n  p: { value: x, secert: true }\n",
            "does not match anyOf",
        ),
        (
            "steps:\n  - send: AT\n    timeout: 5\n",
            "does not match anyOf",
        ),
        (
            "steps:\n  - send: AT\n    on_fail: ignore\n",
            "\"ignore\" does not match",
        ),
        (
            "steps:\n  - send_data: p\n    data: { chunk: 0 }\n",
            "violates minimum",
        ),
        (
            "steps:\n  - send: AT\n    backoff: 0.5\n",
            "violates minimum",
        ),
        ("urc:\n  - action: log\n", "missing `\"match\"`"),
    ] {
        let errors = schema_errors(yaml);
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{yaml}: expected {needle:?} in {errors:#?}"
        );
    }
}

/// Every ```yaml block of docs/recipes.md is a complete recipe the schema accepts.
#[test]
fn schema_accepts_the_documented_examples() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes.md"))
            .expect("docs/recipes.md");
    let mut n = 0;
    for block in docs.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        let errors = schema_errors(yaml);
        assert!(errors.is_empty(), "{errors:#?}\n{yaml}");
        n += 1;
    }
    assert!(n >= 5, "only {n} yaml examples in docs/recipes.md");
}
