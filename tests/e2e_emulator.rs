//! End to end through the whole real path: `sim7k run` on the shipped recipe → a
//! pseudo-terminal → the SIM7000 emulator → real TCP → a real broker → a subscriber that
//! checks topic, payload and QoS byte for byte. Once with mosquitto (a separate emulator
//! process, as a user would run it) and once with the embedded broker (`run --emulate`, so
//! plain `cargo test` passes without mosquitto). Then every injected fault, with the
//! outcome a user needs.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sim7k::mqtt::QoS;
use support::emulator::{EmulatorProcess, sim7k};
use support::mqtt_client::Client;
use support::{Mosquitto, TempDir};

const RECIPE: &str = "recipes/fareastone-nbiot.yaml";
/// Every byte a Ctrl-Z-terminated or line-based send would break.
const BINARY_HEX: &str = "00 1A 1B 0D 0A 00 41 1A 0D 0A FF 1B";

fn binary() -> Vec<u8> {
    BINARY_HEX
        .split(' ')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

struct Run {
    code: i32,
    stderr: String,
    json: serde_json::Value,
    transcript: String,
}

fn run(args: &[&str], dir: &Path) -> Run {
    let transcript = dir.join("run.transcript");
    let out = sim7k()
        .arg("run")
        .arg(RECIPE)
        .args(args)
        .arg("--transcript")
        .arg(&transcript)
        .arg("--json")
        .output()
        .expect("run sim7k");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = stdout
        .find("{\n")
        .and_then(|i| serde_json::from_str(&stdout[i..]).ok())
        .unwrap_or(serde_json::Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        json,
        transcript: std::fs::read_to_string(&transcript).unwrap_or_default(),
    }
}

#[test]
fn publish_through_mosquitto_at_each_qos_with_a_binary_payload() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let addr = broker.addr.to_string();
    let mut sub = Client::connect(broker.addr, "e2e-subscriber");
    sub.subscribe("sim7k/e2e/#");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let dir = TempDir::new("e2e-mosq");
        let emu = EmulatorProcess::start(dir.path(), &addr, &[]);
        let topic = format!("sim7k/e2e/{}", qos as u8);
        let r = run(
            &[
                "--port",
                emu.link.to_str().unwrap(),
                "--set",
                &format!("topic={topic}"),
                "--set",
                &format!("qos={}", qos as u8),
                "--set",
                &format!("payload_hex={BINARY_HEX}"),
                "--set",
                "client_id=e2e-device",
            ],
            dir.path(),
        );
        assert_eq!(
            r.code, 0,
            "QoS {}: {}\n{}",
            qos as u8, r.stderr, r.transcript
        );
        let got = sub.messages(1, Duration::from_secs(10));
        assert_eq!(got.len(), 1, "QoS {}: nothing delivered", qos as u8);
        assert_eq!(got[0].topic, topic);
        assert_eq!(got[0].payload, binary(), "payload byte for byte");
        assert_eq!(got[0].qos, qos, "delivered at the published QoS");
        // The run really waited for the acknowledgement of its QoS.
        let steps = r.json["steps"].as_array().cloned().unwrap_or_default();
        let status = |name: &str| {
            steps
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| s["status"].clone())
        };
        let (puback, pubcomp) = (status("PUBACK"), status("PUBCOMP"));
        match qos {
            QoS::AtMostOnce => assert_eq!(
                (puback, pubcomp),
                (Some("skipped".into()), Some("skipped".into()))
            ),
            QoS::AtLeastOnce => assert_eq!(puback, Some("passed".into())),
            QoS::ExactlyOnce => assert_eq!(pubcomp, Some("passed".into())),
        }
        drop(emu);
    }
}

#[test]
fn offline_first_run_publishes_to_the_embedded_broker() {
    let dir = TempDir::new("e2e-embedded");
    let r = run(
        &[
            "--emulate",
            "--emulator-profile",
            "zero",
            "--set",
            &format!("payload_hex={BINARY_HEX}"),
            "--set",
            "qos=1",
            "--set",
            "retain=true",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.transcript);
    let received = r.json["emulator"]["received"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(received.len(), 1, "{}", r.json);
    assert_eq!(received[0]["topic"], "sim7k/demo");
    assert_eq!(received[0]["payload_hex"], BINARY_HEX.replace(' ', ""));
    assert_eq!(received[0]["qos"], 1);
    assert_eq!(received[0]["retain"], true);
    assert!(r.stderr.contains("embedded broker"), "{}", r.stderr);
    // Captures made it into the summary; the password var stays redacted.
    assert_eq!(r.json["captures"]["imei"].as_str().map(str::len), Some(15));
    assert_eq!(r.json["vars"]["password"], "***");
}

/// (fault, exit code, text the user sees in the failure reason)
const FAULTS: &[(&str, i32, &str)] = &[
    ("drip", 0, ""),
    ("urc-in-response", 0, ""),
    ("extra-rxget=3", 0, ""),
    ("echo-stuck", 0, ""),
    ("error=CIICR:1", 0, ""),
    ("error=CIPSTART", 1, "ERROR"),
    ("connect-fail", 1, "CONNECT FAIL"),
    ("send-fail", 1, "SEND FAIL"),
    ("peer-close-after=0s", 1, ""),
    ("pdp-deact-after=0s", 1, "PDP context"),
    ("silent", 3, "timed out"),
];

#[test]
fn injected_faults_end_as_a_user_needs() {
    for (fault, code, text) in FAULTS {
        let dir = TempDir::new("e2e-fault");
        let r = run(
            &["--emulate", "--emulator-profile", "zero", "--fault", fault],
            dir.path(),
        );
        assert_eq!(
            r.code, *code,
            "fault {fault}: {}\n{}",
            r.stderr, r.transcript
        );
        let reason = r.json["failure"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(text), "fault {fault}: reason `{reason}`");
        // Transcript flushed in every case, with the verdict at its end.
        let last = r.transcript.lines().last().unwrap_or_default();
        assert!(
            last.contains("run passed") || last.contains("run ended"),
            "fault {fault}: transcript ends with `{last}`"
        );
        if *code == 0 {
            let got = r.json["emulator"]["received"].as_array().map(Vec::len);
            assert_eq!(got, Some(1), "fault {fault}: the message still arrives");
        }
    }
}

/// A recipe that idles long enough for a timed fault to fire mid-run.
fn idle_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("idle.yaml");
    std::fs::write(
        &p,
        "name: idle\nsteps:\n  - send: ATE0\n  - send: AT+CSQ\n  - wait: 2s\n  - send: AT+CSQ\n    timeout: 1s\n  - send: AT+CSQ\n    timeout: 1s\n  - wait: 1s\n",
    )
    .unwrap();
    p
}

/// Run the idle recipe on the emulator with one fault; returns (exit code, stderr).
fn idle_run_with(fault: &str) -> (Option<i32>, String) {
    let dir = TempDir::new("e2e-idle");
    let out = sim7k()
        .arg("run")
        .arg(idle_recipe(dir.path()))
        .args(["--emulate", "--emulator-profile", "zero", "--fault", fault])
        .output()
        .expect("run sim7k");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_reboot_mid_run_fails_clearly() {
    let (code, stderr) = idle_run_with("reboot-after=500ms");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("restarted mid-run"), "{stderr}");
}

#[test]
fn a_modem_going_silent_mid_run_times_out() {
    let (code, stderr) = idle_run_with("silent-after=500ms");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
}
