//! A run stopped from outside ends through its teardown, with its transcript and `--json`:
//! issue 10 point 2 (`sim7k run … | head -1`: the reader of stdout goes away; exit 101 with
//! a panic before) and issue 11 point 1 (SIGHUP, the terminal or SSH session closing, is
//! handled like SIGTERM; before: killed, exit 129, empty transcript, no `--json`).

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use support::TempDir;
use support::emulator::sim7k;

fn chatty_recipe(dir: &TempDir) -> std::path::PathBuf {
    let recipe = dir.path().join("chatty.yaml");
    let mut yaml = String::from("name: chatty\nsteps:\n  - say: \"line 0\"\n");
    for i in 1..=40 {
        yaml.push_str(&format!(
            "  - send: AT+CSQ\n    delay: 50ms\n  - say: \"line {i}\"\n"
        ));
    }
    yaml.push_str("finally:\n  - send: AT+CIPSHUT\n");
    std::fs::write(&recipe, yaml).expect("recipe");
    recipe
}

#[test]
fn sighup_is_handled_like_sigterm() {
    let dir = TempDir::new("sighup");
    let recipe = chatty_recipe(&dir);
    let transcript = dir.path().join("run.log");
    let mut child = sim7k()
        .arg("run")
        .arg(&recipe)
        .args([
            "--emulate",
            "--emulator-profile",
            "zero",
            "--json",
            "--transcript",
        ])
        .arg(&transcript)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // With --json the `say:` lines go to stderr: wait for the first, then hang up.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    while !seen.contains("line 1") {
        let mut l = String::new();
        if stderr.read_line(&mut l).expect("stderr") == 0 {
            panic!("ended before the signal:\n{seen}");
        }
        seen.push_str(&l);
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{seen}{rest}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json printed");
    assert_eq!(json["verdict"], "interrupted", "{json}");
    let log = std::fs::read_to_string(&transcript).expect("transcript");
    assert!(log.contains("SIGHUP"), "{log}");
    assert!(log.contains("AT+CIPSHUT"), "the teardown ran:\n{log}");
}

#[test]
fn a_closed_stdout_ends_the_run_through_its_teardown() {
    let dir = TempDir::new("broken-pipe");
    let recipe = chatty_recipe(&dir);
    let transcript = dir.path().join("run.log");
    let mut child = sim7k()
        .arg("run")
        .arg(&recipe)
        .args(["--emulate", "--emulator-profile", "zero", "--transcript"])
        .arg(&transcript)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read the first line, then go away as `head -1` does.
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    assert_eq!(first.trim_end(), "line 0");
    // (the reader is dropped here: the pipe is closed)
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(130),
        "a broken pipe is an interrupt: {stderr}"
    );
    let log = std::fs::read_to_string(&transcript).expect("transcript");
    assert!(log.contains("broken pipe"), "{log}");
    assert!(log.contains("AT+CIPSHUT"), "the teardown ran:\n{log}");
    // It stopped early: far fewer than the 40 polls ran.
    let polls = log.matches("> AT+CSQ").count();
    assert!(polls < 40, "{polls} polls: the run did not stop\n{log}");
}
