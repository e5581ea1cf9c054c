//! Rhai scripts in recipes: compile errors at YAML positions, the sandbox limits, vars in
//! and out, and the MQTT natives.

mod support;

// The sandbox's memory cap reads this allocator's count, as in the `sim7k` binary.
#[global_allocator]
static ALLOC: sim7k::script::memory::CountingAllocator = sim7k::script::memory::CountingAllocator;

use sim7k::recipe::{LoadOptions, LoadedRecipe, VarValue, load};
use sim7k::script::{Host, ScriptError, compile};
use support::TempDir;

fn recipe(dir: &TempDir, yaml: &str) -> LoadedRecipe {
    let path = dir.path().join("r.yaml");
    std::fs::write(&path, yaml).unwrap();
    load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(yaml: &str) -> Vec<ScriptError> {
    let dir = TempDir::new("script");
    compile(&recipe(&dir, yaml)).expect_err("expected a script error")
}

/// Run step 0's script; returns the vars and printed lines, or the error.
fn run(yaml: &str) -> Result<(sim7k::recipe::Vars, Vec<String>), ScriptError> {
    let dir = TempDir::new("script");
    let r = recipe(&dir, yaml);
    let compiled = compile(&r).unwrap_or_else(|e| panic!("{}", e[0]));
    let mut host = Host::new(compiled);
    let mut vars = r.vars.clone();
    let lines = host.run_step(0, &mut vars)?;
    Ok((vars, lines))
}

fn blob(vars: &sim7k::recipe::Vars, name: &str) -> Vec<u8> {
    match vars.get(name) {
        Some(VarValue::Bytes(b)) => b.to_vec(),
        other => panic!("{name} is not bytes: {other:?}"),
    }
}

#[test]
fn syntax_error_in_a_block_script_points_into_the_yaml() {
    let e = errors("steps:\n  - name: x\n    script: |\n      let a = 1;\n      let b = a +* 2;\n");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (5, 18), "{}", e[0]);
    assert!(e[0].to_string().contains("r.yaml:5:18"), "{}", e[0]);
    assert!(e[0].to_string().contains("let b = a +* 2;"), "{}", e[0]);
}

#[test]
fn syntax_error_in_a_one_line_script_and_in_a_library_file() {
    let e = errors("steps:\n  - script: let x = ;\n");
    assert_eq!(e[0].line, 2, "{}", e[0]);
    assert!(e[0].column >= 15, "{}", e[0]);
    let dir = TempDir::new("lib");
    std::fs::write(dir.path().join("lib.rhai"), "fn ok() { 1 }\nfn bad( { }\n").unwrap();
    let path = dir.path().join("r.yaml");
    std::fs::write(&path, "scripts: lib.rhai\nsteps:\n  - script: x = ok();\n").unwrap();
    let r = load(&path, &LoadOptions::default()).unwrap();
    let e = compile(&r).expect_err("a script error");
    assert!(e[0].file.ends_with("lib.rhai"), "{}", e[0]);
    assert_eq!(e[0].line, 2, "{}", e[0]);
}

#[test]
fn scripts_read_and_set_vars() {
    let (vars, lines) = run(
        "vars:\n  name: sim7k\n  n: 41\nsteps:\n  - script: |\n      let greeting = \"hi \" + name;\n      let answer = parse_int(n) + 1;\n      let bytes = blob(\"ab\");\n      set_var(\"other\", \"x\");\n      print(\"done\");\n",
    )
    .unwrap();
    assert_eq!(
        vars.get("greeting").and_then(|v| v.as_text()),
        Some("hi sim7k")
    );
    assert_eq!(vars.get("answer").and_then(|v| v.as_text()), Some("42"));
    assert_eq!(blob(&vars, "bytes"), b"ab");
    assert_eq!(vars.get("other").and_then(|v| v.as_text()), Some("x"));
    assert_eq!(lines, vec!["done"]);
}

#[test]
fn set_var_wins_over_an_unchanged_scope_copy() {
    let (vars, _) = run(
        "vars:\n  topic: a\n  other: x\nsteps:\n  - script: |\n      set_var(\"topic\", \"b\");\n      other = \"y\";\n",
    )
    .unwrap();
    assert_eq!(vars.get("topic").and_then(|v| v.as_text()), Some("b"));
    assert_eq!(vars.get("other").and_then(|v| v.as_text()), Some("y"));
}

#[test]
fn sandbox_stops_endless_loops_huge_blobs_and_deep_recursion() {
    let e = run("steps:\n  - script: |\n      let i = 0;\n      loop { i += 1; }\n").unwrap_err();
    assert!(e.message.contains("too long"), "{e}");
    assert_eq!(e.line, 4, "{e}");
    let e = run("steps:\n  - script: |\n      let b = blob(\"x\");\n      b.pad(100000000, 0);\n")
        .unwrap_err();
    assert!(e.message.contains("sandbox allows"), "{e}");
    let e = run("steps:\n  - script: |\n      fn f(n) { f(n + 1) }\n      f(0);\n").unwrap_err();
    assert!(e.message.contains("nested deeper"), "{e}");
    let e = errors("steps:\n  - script: let x = eval(\"40 + 2\");\n");
    assert!(e[0].message.contains("eval"), "{}", e[0]);
    assert_eq!((e[0].line, e[0].column), (2, 21), "{}", e[0]);
    let e = run("steps:\n  - script: |\n      import \"scripts/mqtt\" as m;\n").unwrap_err();
    assert!(e.message.to_lowercase().contains("module"), "{e}");
}

#[test]
fn mqtt_natives_build_what_the_codec_decodes() {
    let (vars, _) = run(
        "vars:\n  pw: { value: s3cret, secret: true }\nsteps:\n  - script: |\n      let c = mqtt_connect(#{ client_id: \"dev\", username: \"u\", password: pw, keep_alive: 30,\n                          will: #{ topic: \"dev/status\", payload: \"gone\", qos: 1, retain: true } });\n      let p = mqtt_publish(\"dev/t\", \"21.5\", #{ qos: 1 });\n      let s = mqtt_subscribe([\"a/#\", #{ filter: \"b/+\", qos: 2 }], #{ qos: 1 });\n      let d = mqtt_decode(p);\n      let topic = d.topic;\n      let pid = d.packet_id;\n",
    )
    .unwrap();
    use sim7k::mqtt::{Packet, Protocol, decode};
    let (c, _) = decode(&blob(&vars, "c"), Protocol::V311).unwrap().unwrap();
    match c {
        Packet::Connect(c) => {
            assert_eq!(c.client_id, "dev");
            assert_eq!(c.keep_alive, 30);
            assert_eq!(c.password.as_deref(), Some(&b"s3cret"[..]));
            let w = c.will.unwrap();
            assert_eq!((w.topic.as_str(), w.retain), ("dev/status", true));
        }
        other => panic!("{other:?}"),
    }
    let (p, _) = decode(&blob(&vars, "p"), Protocol::V311).unwrap().unwrap();
    match p {
        Packet::Publish(p) => {
            assert_eq!(p.payload, b"21.5");
            assert_eq!(p.packet_id, Some(1), "first automatic packet id");
        }
        other => panic!("{other:?}"),
    }
    let (s, _) = decode(&blob(&vars, "s"), Protocol::V311).unwrap().unwrap();
    match s {
        Packet::Subscribe(s) => {
            assert_eq!(s.packet_id, 2);
            assert_eq!(s.filters.len(), 2);
            assert_eq!(s.filters[1].qos as u8, 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(vars.get("topic").and_then(|v| v.as_text()), Some("dev/t"));
    assert_eq!(vars.get("pid").and_then(|v| v.as_text()), Some("1"));
}

#[test]
fn bad_mqtt_calls_are_clear_errors() {
    let cases = [
        (
            "mqtt_connect(#{ clientid: \"x\" })",
            "unknown option `clientid`",
        ),
        ("mqtt_publish(\"a/+\", \"x\")", "wildcard"),
        ("mqtt_publish(\"a\", \"x\", #{ qos: 3 })", "out of range"),
        (
            "mqtt_publish(\"a\", 5)",
            "payload must be a string or a BLOB",
        ),
        ("mqtt_subscribe(\"a/#/b\")", "#"),
        (
            "mqtt_connect(#{ version: \"4.0\" })",
            "unknown MQTT version",
        ),
        ("mqtt_decode(from_hex(\"30 05 00\"))", "incomplete"),
        ("from_hex(\"3g\")", "not a hex digit"),
        ("from_hex(\"30 0\")", "odd number of hex digits"),
        ("mqtt_connect(#{ keep_alive: \"soon\" })", "whole number"),
    ];
    for (code, want) in cases {
        let yaml = format!("steps:\n  - script: |\n      let x = {code};\n");
        let e = run(&yaml).expect_err(code);
        assert!(e.message.contains(want), "{code}: {e}");
        assert_eq!(e.line, 3, "{code}: {e}");
    }
}

/// Issue 10.18: an error in a shared file's top-level code points into that file.
#[test]
fn errors_in_a_library_files_top_level_point_at_that_file() {
    let dir = TempDir::new("lib-top");
    std::fs::write(
        dir.path().join("lib.rhai"),
        "// constants\nconst LIMIT = 3;\nlet broken = LIMIT / 0;\nfn ok() { 1 }\n",
    )
    .unwrap();
    let path = dir.path().join("r.yaml");
    std::fs::write(
        &path,
        "scripts: lib.rhai\nsteps:\n  - script: let x = ok();\n",
    )
    .unwrap();
    let r = load(&path, &LoadOptions::default()).unwrap();
    let mut host = Host::new(compile(&r).unwrap());
    let mut vars = r.vars.clone();
    let e = host.run_step(0, &mut vars).unwrap_err();
    assert!(e.file.ends_with("lib.rhai"), "{e}");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().contains("let broken = LIMIT / 0;"), "{e}");
    // A library constant is still visible to the step script.
    std::fs::write(dir.path().join("lib.rhai"), "const LIMIT = 3;\n").unwrap();
    std::fs::write(
        &path,
        "scripts: lib.rhai\nsteps:\n  - script: let x = LIMIT + 1;\n",
    )
    .unwrap();
    let r = load(&path, &LoadOptions::default()).unwrap();
    let mut host = Host::new(compile(&r).unwrap());
    let mut vars = r.vars.clone();
    host.run_step(0, &mut vars).unwrap();
    assert_eq!(vars.get("x").and_then(|v| v.as_text()), Some("4"));
}

/// Issue 10.7: the caller's deadline stops a running script, as a deadline (not an error).
#[test]
fn a_deadline_stops_a_script() {
    let dir = TempDir::new("deadline");
    let r = recipe(
        &dir,
        "steps:\n  - script: |\n      let i = 0;\n      loop { i += 1; }\n",
    );
    let mut host = Host::new(compile(&r).unwrap());
    let mut vars = r.vars.clone();
    let e = host
        .run_step_until(0, &mut vars, Some(std::time::Instant::now()))
        .unwrap_err();
    assert!(e.deadline, "{e}");
    assert!(e.message.contains("deadline"), "{e}");
    assert_eq!(e.line, 4, "{e}");
    // Without a deadline the same loop is an ordinary sandbox error.
    let e = host.run_step(0, &mut vars).unwrap_err();
    assert!(!e.deadline && e.message.contains("too long"), "{e}");
}

/// Issue 11.12: the total held by a script's values is capped (before: 7 GB, then abort).
#[test]
fn script_memory_is_capped() {
    // Each `s + …` is a new BLOB of about 4 MB (8 MB of capacity once grown).
    let script = |n: usize| {
        let mut text = String::from("let s = blob(\"\");\n      s.pad(4000000, 7);\n");
        for i in 0..n {
            text.push_str(&format!("      let a{i} = s + blob(\"{i}\");\n"));
        }
        text
    };
    let e = run(&format!(
        "limits: {{ script_memory: 16MiB }}\nsteps:\n  - script: |\n      {}",
        script(12)
    ))
    .unwrap_err();
    assert!(e.message.contains("limits.script_memory"), "{e}");
    assert!(!e.deadline);
    assert!(e.line >= 5, "the line where it stopped: {e}");
    // Under the default (64 MiB) a few of them are fine.
    run(&format!("steps:\n  - script: |\n      {}", script(3))).unwrap();
}

/// Issue 11.12: `set_var` cannot pile up copies past the cap (the reported case: a 4 MB
/// string set under a thousand names).
#[test]
fn set_var_respects_the_memory_cap() {
    let e = run(
        "steps:\n  - script: |\n      let s = \"x\";\n      s.pad(4000000, 'y');\n      for i in 0..1000 { set_var(\"v\" + i, s); }\n",
    )
    .unwrap_err();
    assert!(e.message.contains("limits.script_memory"), "{e}");
    assert_eq!(e.line, 5, "{e}");
}

/// Issue 11.13: a BLOB a script leaves behind moves into the vars as shared bytes.
#[test]
fn bytes_move_out_of_a_script_and_payloads_are_bounded() {
    let (vars, _) = run("steps:\n  - script: let packet = byte_ramp(8388608);\n").unwrap();
    assert_eq!(blob(&vars, "packet").len(), 8 << 20);
    let e = run("steps:\n  - script: let packet = byte_ramp(8388609);\n").unwrap_err();
    assert!(e.message.contains("8 MiB"), "{e}");
}
