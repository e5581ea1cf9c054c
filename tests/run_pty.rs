//! `sim7k run` against a scripted modem on a real pseudo-terminal.

mod support;

use std::process::Command;

use support::TempDir;
use support::peer::{Peer, Reply, rule};

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    transcript: String,
    json: serde_json::Value,
}

fn run(peer: &Peer, recipe: &str, extra: &[&str]) -> Outcome {
    let dir = TempDir::new("run");
    let path = dir.path().join("recipe.yaml");
    std::fs::write(&path, recipe).unwrap();
    let transcript = dir.path().join("transcript.log");
    let out = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .arg("run")
        .arg(&path)
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
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        transcript: std::fs::read_to_string(&transcript).unwrap_or_default(),
    }
}

const SYNC: &str = "\r\nOK\r\n";

#[test]
fn echo_on_urcs_inside_replies_captures_and_cifsr() {
    let peer = Peer::spawn(
        true,
        vec![
            rule("AT", SYNC),
            rule(
                "AT+CGSN",
                "\r\nDST: 1\r\n\r\n869951031234567\r\n\r\n*PSUTTZ: 24/11/25,06:26:46\",\"+32\",0\r\n\r\nOK\r\n",
            ),
            rule("AT+CSQ", "\r\n+CSQ: 24,99\r\n\r\nOK\r\n").drip(),
            rule("AT+CIFSR", "\r\n10.45.3.7\r\n"),
            rule("ATE0", SYNC),
        ],
    );
    let recipe = r#"
name: identity
steps:
  - name: imei
    send: AT+CGSN
    capture: '^(?P<imei>\d{15})$'
  - send: AT+CSQ
    capture: '\+CSQ: (?P<rssi>\d+),'
    validate:
      rssi: { min: 10, not: ["99"] }
  - send: AT+CIFSR
    capture: '^(?P<ip>[0-9.]+)$'
  - send: ATE0
"#;
    let o = run(&peer, recipe, &[]);
    assert_eq!(o.code, 0, "{}\n{}", o.stderr, o.transcript);
    assert_eq!(o.json["captures"]["imei"], "869951031234567");
    assert_eq!(o.json["captures"]["rssi"], "24");
    assert_eq!(o.json["captures"]["ip"], "10.45.3.7");
    assert_eq!(o.json["verdict"], "passed");
    let log = peer.stop();
    assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
    assert_eq!(
        log.commands,
        ["AT", "AT+CGSN", "AT+CSQ", "AT+CIFSR", "ATE0"]
    );
    // The transcript has both directions with escaped control bytes.
    assert!(o.transcript.contains("> AT+CGSN\\r"), "{}", o.transcript);
    assert!(o.transcript.contains("< AT+CGSN\\r"), "{}", o.transcript);
    assert!(o.transcript.contains("DST: 1"));
}

#[test]
fn echo_off_prompt_and_two_phase_cipstart() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", SYNC),
            rule(
                "AT+CIPSTART=\"TCP\",\"broker.example\",1883",
                "\r\nOK\r\n\r\nCONNECT OK\r\n",
            ),
            rule("AT+CIPSEND=5", "\r\n> ").data(5, "\r\nSEND OK\r\n"),
            rule("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: CONNECT OK\r\n"),
        ],
    );
    // `send_data` of a text var sends its bytes through the fixed-length form.
    let recipe = r#"
vars:
  host: broker.example
  payload: hello
steps:
  - send: AT+CIPSTART="TCP","{{host}}",1883
    timeout: 75s
  - send_data: payload
    data: { chunk: 1460 }
  - send: AT+CIPSTATUS
    expect: 'STATE: CONNECT OK'
"#;
    let o = run(&peer, recipe, &[]);
    assert_eq!(o.code, 0, "{}\n{}", o.stderr, o.transcript);
    let log = peer.stop();
    assert_eq!(log.data, vec![b"hello".to_vec()]);
    assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
}

#[test]
fn retries_then_success_and_abort_patterns() {
    let peer = Peer::spawn(
        true,
        vec![
            rule("AT", SYNC),
            rule("AT+CIICR", "\r\nERROR\r\n").times(2),
            rule("AT+CIICR", "\r\nOK\r\n"),
            rule(
                "AT+CIPSTART=*",
                "\r\nOK\r\n\r\nSTATE: TCP CLOSED\r\n\r\nCONNECT FAIL\r\n",
            ),
        ],
    );
    let recipe = r#"
steps:
  - send: AT+CIICR
    retries: 3
    retry_delay: 50ms
    backoff: 2
  - send: AT+CIPSTART="TCP","10.0.0.1",1883
"#;
    let o = run(&peer, recipe, &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.json["steps"][1]["attempts"], 3);
    assert_eq!(
        o.json["failure"]["step"],
        "AT+CIPSTART=\"TCP\",\"10.0.0.1\",1883"
    );
    let reason = o.json["failure"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("CONNECT FAIL"), "{reason}");
    assert!(
        o.stderr.contains("recipe.yaml:"),
        "the error names the step's location: {}",
        o.stderr
    );
    assert!(o.stderr.contains("last transcript lines"), "{}", o.stderr);
}

#[test]
fn silent_modem_times_out_with_exit_3() {
    let peer = Peer::spawn(
        true,
        vec![rule("AT", SYNC), rule("AT+CSQ", "").reply(Reply::Silent)],
    );
    let recipe = "steps:\n  - send: AT+CSQ\n    timeout: 300ms\n";
    let o = run(&peer, recipe, &[]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert_eq!(o.json["verdict"], "timeout");
    assert!(o.stderr.contains("timed out"), "{}", o.stderr);
}

#[test]
fn no_answer_to_sync_is_a_clear_timeout() {
    let peer = Peer::spawn(true, vec![rule("AT", "").reply(Reply::Silent).times(1000)]);
    let recipe = "sync: { within: 600ms, interval: 200ms }\nsteps:\n  - send: ATI\n";
    let o = run(&peer, recipe, &[]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("did not answer `AT`"), "{}", o.stderr);
    let log = peer.stop();
    assert!(log.commands.len() >= 2, "sync retried: {:?}", log.commands);
}

#[test]
fn until_polls_registration() {
    let peer = Peer::spawn(
        true,
        vec![
            rule("AT", SYNC),
            rule("AT+CEREG?", "\r\n+CEREG: 0,2\r\n\r\nOK\r\n").times(3),
            rule("AT+CEREG?", "\r\n+CEREG: 0,5\r\n\r\nOK\r\n"),
        ],
    );
    let recipe = r#"
steps:
  - name: registered
    send: AT+CEREG?
    until: ['+CEREG: 0,1', '+CEREG: 0,5']
    interval: 50ms
    deadline: 20s
"#;
    let o = run(&peer, recipe, &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(peer.stop().commands.len(), 5);
}

#[test]
fn vanishing_port_is_an_io_error_with_the_transcript_flushed() {
    let peer = Peer::spawn(
        true,
        vec![
            rule("AT", SYNC),
            rule("ATI", "\r\nSIM7000E R1351\r\n\r\nOK\r\n"),
            rule("AT+CSQ", "").reply(Reply::Hangup),
        ],
    );
    let recipe = "steps:\n  - send: ATI\n  - send: AT+CSQ\n    timeout: 30s\n";
    let started = std::time::Instant::now();
    let o = run(&peer, recipe, &[]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert_eq!(o.json["verdict"], "io_error");
    assert!(o.transcript.contains("SIM7000E R1351"), "{}", o.transcript);
    assert!(o.transcript.contains("run ended"), "{}", o.transcript);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "must not wait for the 30 s timeout"
    );
}

#[test]
fn secrets_never_reach_transcript_or_report() {
    let peer = Peer::spawn(
        true,
        vec![
            rule("AT", SYNC),
            rule("AT+CSTT=*", "\r\nOK\r\n").drip(),
            rule("AT+CCID", "\r\n8988303000001234567F\r\n\r\nOK\r\n").drip(),
            rule("AT+X=*", "\r\nOK\r\n"),
        ],
    );
    let recipe = r#"
vars:
  apn: internet
  apn_password: { value: "", secret: true }
steps:
  - send: AT+CSTT="{{apn}}","user","{{apn_password}}"
  - name: ICCID (secret)
    send: AT+CCID
    capture: '^(?P<iccid>[0-9A-F]{19,20})$'
    secret: true
  - send: AT+X="{{iccid}}"
"#;
    let o = run(&peer, recipe, &["--set", "apn_password=s3cr3tpw", "-v"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    for secret in ["s3cr3tpw", "8988303000001234567F"] {
        assert!(!o.transcript.contains(secret), "{}", o.transcript);
        assert!(!o.stdout.contains(secret), "{}", o.stdout);
        assert!(!o.stderr.contains(secret), "{}", o.stderr);
    }
    assert_eq!(o.json["captures"]["iccid"], "***");
    assert!(o.transcript.contains("***"));
    assert_eq!(o.json["vars"]["apn_password"], "***");
    // The modem did receive the real password.
    assert_eq!(
        peer.stop().commands[1],
        "AT+CSTT=\"internet\",\"user\",\"s3cr3tpw\""
    );
}

#[test]
fn missing_port_is_an_io_error() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("r.yaml");
    std::fs::write(&path, "steps:\n  - send: AT\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .args(["run"])
        .arg(&path)
        .args(["--port", "/dev/does-not-exist-sim7k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/does-not-exist-sim7k"));
}

#[test]
fn ctrl_c_stops_the_run_and_flushes_the_transcript() {
    let peer = Peer::spawn(
        true,
        vec![rule("AT", SYNC), rule("AT+CSQ", "").reply(Reply::Silent)],
    );
    let dir = TempDir::new("sigint");
    let path = dir.path().join("recipe.yaml");
    std::fs::write(&path, "steps:\n  - send: AT+CSQ\n    timeout: 60s\n").unwrap();
    let transcript = dir.path().join("t.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .arg("run")
        .arg(&path)
        .arg("--port")
        .arg(&peer.path)
        .arg("--transcript")
        .arg(&transcript)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the command is on the wire, then interrupt.
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
    let t = std::fs::read_to_string(&transcript).unwrap_or_default();
    assert!(t.contains("> AT+CSQ\\r"), "{t}");
    assert!(
        t.lines().last().is_some_and(|l| l.contains("run ended")),
        "{t}"
    );
}
