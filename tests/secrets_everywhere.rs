//! Secrets hidden in every output (issue 11 points 5 and 9's scan), and a closed stdout
//! (issue 10 point 2), through the real binary on the emulator behind a pseudo-terminal
//! (`--emulate`) with its embedded broker.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use sim7k::redact::Secrets;
use support::TempDir;
use support::emulator::sim7k;

const SECRET: &str = "S3cr3t-XYZ";

/// Copies of the shipped recipes and scripts in `dir` (a test recipe can include them).
fn recipes_copy(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["recipes", "recipes/carriers", "scripts"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    dir.join("recipes")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A CONNECT whose password (the secret) straddles the 16-byte chunks: fixed header 2, variable
/// header 10, client id `abcd` 6, user name `u` 3, then the password's length at 21..23 and the
/// password at 23..33, across the chunk end at 32.
const STRADDLE: &str = r#"
name: straddle
scripts: ../scripts/mqtt.rhai
vars:
  client_id: abcd
  username: u
  password: { value: "", secret: true }
  keep_alive: 60
  mqtt_version: "3.1.1"
  hexmode: 0
steps:
  - include: network-attach.yaml
  - name: hex mode
    send: AT+CIPSENDHEX={{hexmode}}
  - name: open TCP to the broker
    send: AT+CIPSTART="TCP","broker.example",1883
    timeout: 75s
  - name: CONNECT
    script: let packet = connect_packet();
    send_data: packet
    data: { chunk: 16 }
  - name: CONNACK
    expect_mqtt: connack
finally:
  - send: AT+CIPSHUT
"#;

/// Regression (issue 11 point 5): a secret straddling two `send_data` chunks showed as
/// `…S3cr3t-XY` then `Z…` in the transcript and `-v` (the same in hex mode), where no
/// redaction could recognise it. Now each occurrence goes out within one chunk.
#[test]
fn a_secret_straddling_send_data_chunks_is_hidden_in_binary_and_hex_mode() {
    let dir = TempDir::new("sec-straddle");
    let recipes = recipes_copy(dir.path());
    let recipe = recipes.join("straddle.yaml");
    std::fs::write(&recipe, STRADDLE).unwrap();
    // Any piece of the secret long enough to matter, in every form it can take.
    let piece = &SECRET.as_bytes()[..6];
    let hex_upper: String = piece.iter().map(|b| format!("{b:02X}")).collect();
    let forms = [
        String::from_utf8_lossy(piece).into_owned(),
        hex_upper.clone(),
        hex_upper.to_lowercase(),
        piece
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" "),
        piece
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    ];
    for hexmode in ["0", "1"] {
        let transcript = dir.path().join(format!("t{hexmode}.log"));
        let out = sim7k()
            .arg("run")
            .arg(&recipe)
            .args(["--emulate", "--emulator-profile", "zero", "-v"])
            .args(["--set", &format!("password={SECRET}")])
            .args(["--set", &format!("hexmode={hexmode}")])
            .arg("--transcript")
            .arg(&transcript)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let t = std::fs::read_to_string(&transcript).unwrap();
        assert_eq!(out.status.code(), Some(0), "hex {hexmode}: {stderr}\n{t}");
        // The CONNECT went out in several chunks, and the secret was there, hidden.
        assert!(t.matches("> AT+CIPSEND").count() >= 3, "{t}");
        assert!(t.contains("***"), "{t}");
        for (name, text) in [("transcript", &t), ("stderr", &stderr)] {
            for form in &forms {
                assert!(
                    !text.contains(form.as_str()),
                    "hex {hexmode}: {name} shows a piece of the secret ({form}):\n{text}"
                );
            }
        }
    }
}

/// Run `sim7k` with `args` in `dir`; every byte it wrote to stdout, stderr and any file
/// under `dir` must be free of the secret in every form ([`Secrets::found_in`]: raw, hex in
/// four spellings, base64).
fn assert_no_secret(label: &str, out: &Output, dir: &Path) {
    let secrets = Secrets::from_values([SECRET]);
    assert!(
        !secrets.found_in(&out.stdout),
        "{label}: stdout shows the secret:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !secrets.found_in(&out.stderr),
        "{label}: stderr shows the secret:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = files_under(dir);
    assert!(!files.is_empty(), "{label}: no output files");
    for f in files {
        if f.extension().is_some_and(|e| e == "yaml" || e == "rhai") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !secrets.found_in(&bytes),
            "{label}: {} shows the secret:\n{}",
            f.display(),
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// Issue 11 points 5 to 9: a shipped MQTT recipe with a secret password and a payload
/// carrying it, in every output mode at once (`-v`, `--json`, `--transcript`,
/// `--transcript-dir`, `--report`, `--junit`, `--csv`, `--emulator-log`, failure messages,
/// the embedded broker's summary), passing and failing mid-send: the secret appears in no
/// file, nor on stdout or stderr.
#[test]
fn the_secret_appears_in_no_output() {
    let recipe = "recipes/mqtt-publish.yaml";
    let sets = [
        "--set".to_string(),
        format!("password={SECRET}"),
        "--set".to_string(),
        "username=user".to_string(),
        "--set".to_string(),
        format!("payload=the password is {SECRET}!"),
    ];
    // One device: --transcript and --emulator-log FILE.
    for fault in [None, Some("send-fail")] {
        let dir = TempDir::new("sec-single");
        let mut cmd = sim7k();
        cmd.args(["run", recipe, "--emulate", "--emulator-profile", "zero"])
            .args(["-v", "--json"])
            .args(&sets)
            .arg("--transcript")
            .arg(dir.path().join("t.log"))
            .arg("--emulator-log")
            .arg(dir.path().join("emu.log"));
        if let Some(f) = fault {
            cmd.args(["--fault", f]);
        }
        let out = cmd.output().unwrap();
        let want = if fault.is_some() { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(want),
            "{fault:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if fault.is_none() {
            // The payload really reached the broker (hidden in its summary).
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("the password is ***"), "{stdout}");
        }
        assert_no_secret(&format!("single {fault:?}"), &out, dir.path());
    }
    // The fleet outputs: --report, --junit, --csv, --transcript-dir, --emulator-log DIR.
    for fault in [None, Some("send-fail")] {
        let dir = TempDir::new("sec-fleet");
        let mut cmd = sim7k();
        cmd.args(["run", recipe, "--emulate", "--emulator-profile", "zero"])
            .args(["--emulate-count", "2", "-v", "--json"])
            .args(&sets)
            .arg("--report")
            .arg(dir.path().join("r.jsonl"))
            .arg("--junit")
            .arg(dir.path().join("j.xml"))
            .arg("--csv")
            .arg(dir.path().join("c.csv"))
            .arg("--transcript-dir")
            .arg(dir.path().join("transcripts"))
            .arg("--emulator-log")
            .arg(dir.path().join("emulator-logs"));
        if let Some(f) = fault {
            cmd.args(["--fault", f]);
        }
        let out = cmd.output().unwrap();
        let want = if fault.is_some() { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(want),
            "{fault:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(dir.path().join("transcripts").is_dir());
        assert_no_secret(&format!("fleet {fault:?}"), &out, dir.path());
    }
}

/// Wait for the child (killing it if it hangs) and collect its output.
fn finish(mut child: Child) -> Output {
    let cap = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > cap {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Regression (issue 10 point 2): `sim7k run … | head -1` panicked on the closed stdout
/// (exit 101) and left the modem's session open. Now the closed stdout stops the run like an
/// interrupt: the teardown runs, the transcript is finished, exit 130.
#[test]
fn a_closed_stdout_stops_the_run_through_its_teardown() {
    let dir = TempDir::new("sec-pipe");
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(
        &recipe,
        r#"
name: closed stdout
steps:
  - name: one
    say: one
    wait: 1s
  - name: two
    say: two
    wait: 1s
  - name: three
    say: three
    wait: 10m
finally:
  - name: goodbye
    send: AT
"#,
    )
    .unwrap();
    let transcript = dir.path().join("t.log");
    let mut child = sim7k()
        .arg("run")
        .arg(&recipe)
        .args(["--emulate", "--emulator-profile", "zero"])
        .arg("--transcript")
        .arg(&transcript)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away (as `head -c0` would) before the second `say:` line.
    drop(child.stdout.take());
    let out = finish(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("broken pipe"), "{stderr}");
    let t = std::fs::read_to_string(&transcript).unwrap();
    assert!(
        t.contains("teardown step 1 `goodbye`") || t.contains("goodbye"),
        "{t}"
    );
    assert!(t.contains("run ended: Interrupted"), "{t}");

    // With --json, stdout is written once, at the end: a reader that went away costs only
    // that document, never a panic; the run and its transcript end as usual.
    let recipe = "recipes/mqtt-publish.yaml";
    let mut child = sim7k()
        .args([
            "run",
            recipe,
            "--emulate",
            "--emulator-profile",
            "zero",
            "--json",
        ])
        .arg("--transcript")
        .arg(&transcript)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = finish(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let t = std::fs::read_to_string(&transcript).unwrap();
    assert!(t.contains("run passed"), "{t}");
}
