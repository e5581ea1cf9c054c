//! The emulator's own log (`--emulator-log`) never shows a secret var: not raw, not as hex
//! (upper, lower, spaced), not as base64, not when the modem prints it one byte at a time
//! (`--fault drip`), in every emulated mode (embedded broker, `--emulate=host`, a fleet).
//!
//! Regression (issue 11 point 6): the CONNECT password was in the log in clear.

mod support;

use std::path::{Path, PathBuf};

use sim7k::redact::{Secrets, base64_standard};
use support::TempDir;
use support::emulator::sim7k;

const SECRET: &str = "pw-S3cr3t-Zq81";

/// Every form of the secret a log could show it in.
fn forms() -> Vec<Vec<u8>> {
    let mut v = Secrets::from_values([SECRET]).forms().to_vec();
    v.push(base64_standard(SECRET.as_bytes()).into_bytes());
    v
}

fn assert_clean(log: &Path) {
    let bytes = std::fs::read(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(!bytes.is_empty(), "{} is empty", log.display());
    for f in forms() {
        assert!(
            !bytes.windows(f.len()).any(|w| w == f.as_slice()),
            "{} shows the secret as {:?}:\n{}",
            log.display(),
            String::from_utf8_lossy(&f),
            String::from_utf8_lossy(&bytes)
        );
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("***"), "nothing was redacted:\n{text}");
}

/// A recipe that puts the secret through every path of the emulator: an AT command and
/// its echo, a read-back, bytes after a `> ` prompt typed raw and as hex, and other vars
/// that hold the secret's lower-case hex and base64 forms.
fn recipe(dir: &Path) -> PathBuf {
    let p = dir.join("secret.yaml");
    std::fs::write(
        &p,
        r#"name: a secret in every form
timeout: 5s
vars:
  password: { value: "", secret: true }
  hex_lower: ""
  b64: ""
steps:
  - send: AT+SMCONF="PASSWORD","{{password}}"
  - send: AT+SMCONF="USERNAME","{{b64}}"
  - send: AT+SMCONF="CLIENTID","{{hex_lower}}"
  - send: AT+SMCONF?
  - send: AT+CIPSTART="TCP","broker.example",1883
    expect: CONNECT OK
    timeout: 30s
  - script: |
      let body = blob(password);
  - send_data: body
    on_fail: continue
  # Typed as spaced upper-case hex (the module is not in hex mode, so no SEND OK comes:
  # the step ends after its timeout; only what the log shows matters here).
  - send_data: body
    data: { hex: true }
    timeout: 1s
    on_fail: continue
  - send: AT+CIPSHUT
    expect: SHUT OK
"#,
    )
    .expect("write recipe");
    p
}

fn run(dir: &Path, extra: &[&str]) -> std::process::Output {
    let hex_lower: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let b64 = base64_standard(SECRET.as_bytes());
    sim7k()
        .arg("run")
        .arg(recipe(dir))
        .args(["--emulator-profile", "zero", "--fault", "drip=1ms", "-q"])
        .args(["--set", &format!("password={SECRET}")])
        .args(["--set", &format!("hex_lower={hex_lower}")])
        .args(["--set", &format!("b64={b64}")])
        .args(extra)
        .output()
        .expect("run sim7k")
}

fn show(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn embedded_broker_mode() {
    let dir = TempDir::new("emu-log-secret");
    let log = dir.path().join("emulator.log");
    let o = run(
        dir.path(),
        &["--emulate", "--emulator-log", log.to_str().unwrap()],
    );
    assert!(o.status.code().is_some(), "{}", show(&o));
    assert_clean(&log);
    // The secret did go through the emulator: the password's echo was logged, redacted.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("PASSWORD"), "{text}");
}

#[cfg(feature = "embedded-broker")]
#[test]
fn host_mode() {
    let broker = sim7k::broker::EmbeddedBroker::start().expect("broker");
    let dir = TempDir::new("emu-log-secret-host");
    let log = dir.path().join("emulator.log");
    // The recipe's host is dialled for real: point it at the in-process broker.
    let path = recipe(dir.path());
    let text = std::fs::read_to_string(&path).unwrap_or_default().replace(
        "\"broker.example\",1883",
        &format!("\"127.0.0.1\",{}", broker.addr().port()),
    );
    std::fs::write(&path, text).expect("rewrite recipe");
    let hex_lower: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let o = sim7k()
        .arg("run")
        .arg(&path)
        .args(["--emulate=host", "--emulator-profile", "zero", "-q"])
        .args(["--fault", "drip=1ms"])
        .args(["--set", &format!("password={SECRET}")])
        .args(["--set", &format!("hex_lower={hex_lower}")])
        .args([
            "--set",
            &format!("b64={}", base64_standard(SECRET.as_bytes())),
        ])
        .args(["--emulator-log", log.to_str().unwrap()])
        .output()
        .expect("run sim7k");
    assert!(o.status.code().is_some(), "{}", show(&o));
    assert_clean(&log);
}

#[test]
fn fleet_mode() {
    let dir = TempDir::new("emu-log-secret-fleet");
    let logs = dir.path().join("logs");
    let o = run(
        dir.path(),
        &[
            "--emulate",
            "--emulate-count",
            "2",
            "--emulator-log",
            logs.to_str().unwrap(),
        ],
    );
    assert!(o.status.code().is_some(), "{}", show(&o));
    let mut n = 0;
    for e in std::fs::read_dir(&logs).expect("log dir") {
        assert_clean(&e.expect("entry").path());
        n += 1;
    }
    assert_eq!(n, 2, "{}", show(&o));
}
