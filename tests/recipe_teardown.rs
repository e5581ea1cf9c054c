//! Recipes run end to end on a scripted modem (a real pseudo-terminal): the teardown
//! (`finally:`), `{{link.*}}`, the native MQTT recipe's `+SMSTATE: 0`, script deadlines and
//! the `--set` checks (issues 10.4, 10.5, 10.7, 10.12, 11.9).

mod support;

use std::process::Command;

use support::TempDir;
use support::emulator::sim7k;
use support::peer::{Peer, Reply, rule};

struct Outcome {
    code: i32,
    stderr: String,
    transcript: String,
    json: serde_json::Value,
}

fn run_file(peer: &Peer, path: &std::path::Path, dir: &TempDir, extra: &[&str]) -> Outcome {
    let transcript = dir.path().join("transcript.log");
    let out = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .arg("run")
        .arg(path)
        .arg("--port")
        .arg(&peer.path)
        .arg("--transcript")
        .arg(&transcript)
        .arg("--json")
        .args(extra)
        .output()
        .expect("run sim7k");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json_start = stdout.find("{\n").unwrap_or(stdout.len());
    Outcome {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout[json_start..]).unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        transcript: std::fs::read_to_string(&transcript).unwrap_or_default(),
    }
}

fn run(peer: &Peer, recipe: &str, extra: &[&str]) -> Outcome {
    let dir = TempDir::new("teardown");
    let path = dir.path().join("recipe.yaml");
    std::fs::write(&path, recipe).unwrap();
    run_file(peer, &path, &dir, extra)
}

const OK: &str = "\r\nOK\r\n";

fn teardown_steps(json: &serde_json::Value) -> Vec<(String, String)> {
    json["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["teardown"] == true)
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or("").to_owned(),
                        s["status"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Issue 10.4: the teardown runs after a failure, in order, and the verdict stays.
#[test]
fn finally_runs_after_a_failure_and_keeps_the_verdict() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", OK),
            rule("AT+CSQ", "\r\nERROR\r\n"),
            rule("AT+CIPSHUT", "\r\nSHUT OK\r\n"),
            rule("AT+CFUN?", "\r\n+CFUN: 1\r\n\r\nOK\r\n"),
        ],
    );
    let o = run(
        &peer,
        "steps:\n  - send: AT+CSQ\n  - send: AT+NEVER\nfinally:\n  - send: AT+CIPSHUT\n  - name: \"tcp was {{link.tcp}}\"\n    send: AT+CFUN?\n",
        &[],
    );
    assert_eq!(o.code, 1, "{}\n{}", o.stderr, o.transcript);
    assert_eq!(o.json["verdict"], "failed");
    assert!(
        o.json["failure"]["step"]
            .as_str()
            .is_some_and(|s| s.contains("AT+CSQ")),
        "{}",
        o.json
    );
    assert_eq!(
        teardown_steps(&o.json),
        [
            ("teardown: AT+CIPSHUT".to_owned(), "passed".to_owned()),
            ("teardown: tcp was false".to_owned(), "passed".to_owned())
        ]
    );
    assert!(
        o.transcript.contains("teardown: 2 step(s)"),
        "{}",
        o.transcript
    );
    let log = peer.stop();
    assert_eq!(log.commands, ["AT", "AT+CSQ", "AT+CIPSHUT", "AT+CFUN?"]);
}

/// Issue 10.4: a failing teardown step neither fails a passed run nor stops the rest.
#[test]
fn a_failing_teardown_step_does_not_change_a_pass() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", OK),
            rule("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
            rule("AT+SMDISC", "\r\nERROR\r\n"),
            rule("AT+CNACT=0", OK),
        ],
    );
    let o = run(
        &peer,
        "steps:\n  - send: AT+CSQ\nfinally:\n  - send: AT+SMDISC\n  - send: AT+CNACT=0\n",
        &[],
    );
    assert_eq!(o.code, 0, "{}\n{}", o.stderr, o.transcript);
    assert_eq!(o.json["verdict"], "passed");
    assert_eq!(
        teardown_steps(&o.json),
        [
            (
                "teardown: AT+SMDISC".to_owned(),
                "failed_continued".to_owned()
            ),
            ("teardown: AT+CNACT=0".to_owned(), "passed".to_owned())
        ]
    );
    let log = peer.stop();
    assert_eq!(log.commands.last().map(String::as_str), Some("AT+CNACT=0"));
}

/// Issue 10.4: the teardown has its own deadline; a silent modem cannot hold the exit.
#[test]
fn the_teardown_deadline_bounds_a_silent_modem() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", OK),
            rule("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
            rule("AT+CIPSHUT", "").reply(Reply::Silent),
        ],
    );
    let o = run(
        &peer,
        "finally_deadline: 1s\nsteps:\n  - send: AT+CSQ\nfinally:\n  - send: AT+CIPSHUT\n    timeout: 5m\n  - send: AT+NEVER\n",
        &[],
    );
    assert_eq!(o.code, 0, "{}\n{}", o.stderr, o.transcript);
    assert!(
        o.transcript
            .contains("deadline (`finally_deadline`) passed"),
        "{}",
        o.transcript
    );
    let log = peer.stop();
    assert!(!log.commands.iter().any(|c| c == "AT+NEVER"), "{log:?}");
}

/// Issue 10.4: Ctrl-C stops the steps, then the teardown still runs (exit 130).
#[test]
fn the_teardown_runs_after_an_interrupt() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", OK),
            rule("AT+CSQ", "").reply(Reply::Silent),
            rule("AT+CIPSHUT", "\r\nSHUT OK\r\n"),
        ],
    );
    let dir = TempDir::new("teardown-sigint");
    let path = dir.path().join("recipe.yaml");
    std::fs::write(
        &path,
        "steps:\n  - send: AT+CSQ\n    timeout: 60s\nfinally:\n  - send: AT+CIPSHUT\n",
    )
    .unwrap();
    let transcript = dir.path().join("t.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .arg("run")
        .arg(&path)
        .arg("--port")
        .arg(&peer.path)
        .arg("--transcript")
        .arg(&transcript)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    while !peer.log().commands.iter().any(|c| c == "AT+CSQ") {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never sent"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let log = peer.stop();
    let t = std::fs::read_to_string(&transcript).unwrap_or_default();
    eprintln!("TRANSCRIPT\n{t}");
    assert_eq!(log.commands, ["AT", "AT+CSQ", "AT+CIPSHUT"]);
    assert!(t.contains("teardown step"), "{t}");
}

/// Issue 10.4: `{{link.tcp}}` follows the connection, so the teardown acts only on an
/// open one.
#[test]
fn link_tcp_follows_the_connection() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", OK),
            rule(
                "AT+CIPSTART=\"TCP\",\"broker.example\",1883",
                "\r\nOK\r\n\r\nCONNECT OK\r\n",
            ),
            rule("AT+CIPCLOSE", "\r\nCLOSE OK\r\n"),
            rule("AT+CIPSHUT", "\r\nSHUT OK\r\n"),
        ],
    );
    let o = run(
        &peer,
        "steps:\n  - send: AT+CIPSTART=\"TCP\",\"broker.example\",1883\n  - say: \"open: {{link.tcp}}\"\n  - send: AT+FAILS\nfinally:\n  - if: \"{{link.tcp}}\"\n    send: AT+CIPCLOSE\n  - if: \"{{link.tcp}}\"\n    name: not run\n    send: AT+CIPCLOSE\n  - send: AT+CIPSHUT\n",
        &[],
    );
    assert_eq!(o.code, 1, "{}\n{}", o.stderr, o.transcript);
    assert!(o.transcript.contains("say: open: true"), "{}", o.transcript);
    let log = peer.stop();
    // The second close is skipped: the first one closed the connection.
    assert_eq!(
        log.commands,
        [
            "AT",
            "AT+CIPSTART=\"TCP\",\"broker.example\",1883",
            "AT+FAILS",
            "AT+CIPCLOSE",
            "AT+CIPSHUT"
        ]
    );
    assert!(
        teardown_steps(&o.json).contains(&("teardown: not run".to_owned(), "skipped".to_owned())),
        "{}",
        o.json
    );
}

/// Issue 10.12: the shipped native MQTT recipe fails when the module answers a QoS 1
/// publish with `+SMSTATE: 0` (before: PASSED), and its teardown releases the bearer.
#[test]
fn native_mqtt_recipe_fails_on_smstate_0() {
    let payload = "hello from the SIM7000's own MQTT client";
    let smpub = format!("AT+SMPUB=\"sim7k/native\",{},1,0", payload.len());
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", OK),
            rule("ATE0", OK),
            rule("AT+CMEE=2", OK),
            rule("AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n"),
            rule("AT+CNMP=38", OK),
            rule("AT+CMNB=2", OK),
            rule("AT+CGDCONT=1,\"IP\",\"nbiot\"", OK),
            rule("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n"),
            rule("AT+CNACT=1,\"nbiot\"", "\r\nOK\r\n\r\n+APP PDP: ACTIVE\r\n"),
            rule("AT+SMCONF=\"URL\",\"test.mosquitto.org\",\"1883\"", OK),
            rule("AT+SMCONF=\"CLIENTID\",\"sim7k-native\"", OK),
            rule("AT+SMCONF=\"KEEPTIME\",60", OK),
            rule("AT+SMCONN", OK),
            // As the SIM7000 with AWS IoT logged it (botletics/SIM7000-LTE-Shield,
            // SIM7000_AWS_Log.txt): prompt, payload, `+SMSTATE: 0`, then `OK`.
            rule(&smpub, "\r\n> ").data(payload.len(), "\r\n+SMSTATE: 0\r\n\r\nOK\r\n"),
            rule("AT+SMSTATE?", "\r\n+SMSTATE: 0\r\n\r\nOK\r\n"),
            rule("AT+CNACT=0", OK),
        ],
    );
    let dir = TempDir::new("native");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/mqtt-native.yaml");
    let o = run_file(&peer, &path, &dir, &["--set", "qos=1"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stderr, o.transcript);
    assert_eq!(o.json["verdict"], "failed");
    let reason = o.json["failure"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("+SMSTATE: 0"), "{}", o.json);
    assert_eq!(o.json["failure"]["step"], "publish");
    let log = peer.stop();
    assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
    assert_eq!(log.data, [payload.as_bytes().to_vec()]);
    // The teardown asked for the state, skipped SMDISC (not connected), released the bearer.
    assert_eq!(
        &log.commands[log.commands.len() - 2..],
        ["AT+SMSTATE?", "AT+CNACT=0"]
    );
}

/// Issue 10.7: a step's deadline stops its running script: a timeout (exit 3), not the
/// sandbox's 10 s limit (exit 2).
#[test]
fn a_step_deadline_stops_a_running_script() {
    let peer = Peer::spawn(false, vec![rule("AT", OK)]);
    // Each operation allocates a megabyte: the operation limit is far away, the 10 s
    // limit later than the deadline.
    let o = run(
        &peer,
        "steps:\n  - name: busy\n    deadline: 1s\n    script: |\n      let n = 0;\n      loop { let b = byte_ramp(1000000); n += 1; }\n",
        &[],
    );
    assert_eq!(o.code, 3, "{}\n{}", o.stderr, o.transcript);
    assert_eq!(o.json["verdict"], "timeout");
    let reason = o.json["failure"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("deadline"), "{reason}");
    assert!(
        reason.contains("recipe.yaml:6:"),
        "the script's line: {reason}"
    );
}

/// Issues 10.5 and 11.9: a `--set` of a name the recipe neither declares nor uses is an
/// error (exit 2) that never prints the value; nothing runs, so `--json` shows no vars.
#[test]
fn unknown_set_name_is_an_error_that_hides_the_value() {
    let dir = TempDir::new("set-typo");
    let path = dir.path().join("r.yaml");
    std::fs::write(
        &path,
        "vars:\n  password: { value: \"\", secret: true }\nsteps:\n  - send: AT\n",
    )
    .unwrap();
    let out = sim7k()
        .arg("run")
        .arg(&path)
        .args(["--emulate", "--emulator-profile", "zero", "--json"])
        .args(["--set", "pasword=S3cr3t-hunter2"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("--set pasword=…"), "{stderr}");
    assert!(
        stderr.contains("did you mean `--set password=...`?"),
        "{stderr}"
    );
    assert!(!stderr.contains("warning: warning:"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains("hunter2"), "the value leaked: {text}");
    }
    // `check` says the same.
    let out = sim7k()
        .arg("check")
        .arg(&path)
        .args(["--set", "pasword=S3cr3t-hunter2"])
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
}

/// Issue 10.5: warnings are printed once as `warning: file:line:col: …`.
#[test]
fn warnings_are_not_doubled() {
    let dir = TempDir::new("warn");
    let path = dir.path().join("w.yaml");
    std::fs::write(&path, "steps:\n  - say: \"{{mystery}}\"\n").unwrap();
    let out = sim7k().arg("check").arg(&path).output().expect("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning: "), "{stderr}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
}
