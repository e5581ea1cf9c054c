//! An interrupted multi-device run says so (issue 10.19): every device's record is
//! `interrupted`, the fleet result counts them as interrupted (not failed), the teardown ran
//! on each device, and the exit code is 130. Before, the summary said "0 passed, 3 failed".

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use support::TempDir;

#[test]
fn an_interrupted_fleet_counts_interrupted_devices() {
    let dir = TempDir::new("fleet-interrupt");
    let recipe = dir.path().join("long.yaml");
    std::fs::write(
        &recipe,
        "steps:\n  - send: AT+CSQ\n  - wait: 10m\nfinally:\n  - send: AT+CIPSHUT\n",
    )
    .expect("write recipe");
    let report = dir.path().join("r.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .arg("run")
        .arg(&recipe)
        .args([
            "--emulate",
            "--emulate-count",
            "3",
            "--emulator-profile",
            "zero",
        ])
        .arg("--report")
        .arg(&report)
        .arg("--json")
        .arg("--transcript-dir")
        .arg(dir.path().join("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sim7k");
    // The run announces itself once the signal handler is in place.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "sim7k ended before the run started:\n{seen}");
        seen.push_str(&line);
        if line.contains("on 3 devices") {
            break;
        }
    }
    // Let the devices reach the wait (an earlier interrupt is an interrupt too).
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    let summary: serde_json::Value = stdout
        .find('{')
        .and_then(|i| serde_json::from_str(&stdout[i..]).ok())
        .unwrap_or_default();
    assert_eq!(summary["interrupted"], 3, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["passed"], 0, "{summary}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&report)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r["verdict"], "interrupted", "{r}");
        assert_eq!(r["exit_code"], 130, "{r}");
        assert!(
            r["reason"].as_str().is_some_and(|x| x.contains("SIGINT")),
            "{r}"
        );
        let log = r["transcript"].as_str().expect("a transcript per device");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            text.contains("`teardown: AT+CIPSHUT` passed"),
            "the teardown did not run:\n{text}"
        );
    }
}
