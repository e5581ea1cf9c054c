//! Issue 10 point 10 end to end: MQTT messages of 3000 bytes and 100 KB, published by
//! another client, arrive byte for byte through the emulated modem in all three receive
//! modes (manual reads, `+IPD` headers, raw push). Before, a 3000-byte message pushed raw
//! came out with CR LF inserted at the module's 1460-byte block breaks, its tail missing,
//! and the run passed.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

use sim7k::broker::EmbeddedBroker;
use sim7k::mqtt::QoS;
use support::TempDir;
use support::emulator::{EmulatorProcess, sim7k};
use support::mqtt_client::Client;

/// A `sim7k run` in the background with stdout piped.
struct Background {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Background {
    fn start(port: &str, transcript: &Path, args: &[&str]) -> Background {
        let mut child = sim7k()
            .args([
                "run",
                "recipes/mqtt-subscribe.yaml",
                "--port",
                port,
                "--transcript",
            ])
            .arg(transcript)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sim7k run");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Background { child, stdout }
    }

    fn wait_for_line(&mut self, text: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).expect("read stdout");
            assert!(n > 0, "sim7k ended before printing `{text}`");
            if line.contains(text) {
                return;
            }
        }
    }

    fn finish(mut self) -> (i32, Vec<u8>, String) {
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let code = self.child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
        (code, rest, err)
    }
}

/// Printable bytes without CR or LF (the message is printed as a stdout line), no CR LF
/// pair anywhere.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'!' + ((i * 7) % 90) as u8).collect()
}

const MODES: &[(&[&str], &str)] = &[
    (
        &["--set", "ciprxget=1", "--set", "ciphead=0"],
        "manual AT+CIPRXGET=2 reads",
    ),
    (
        &["--set", "ciprxget=0", "--set", "ciphead=1"],
        "pushed with +IPD headers",
    ),
    (&["--set", "ciprxget=0", "--set", "ciphead=0"], "pushed raw"),
];

fn receive(size: usize, faults: &[&str]) {
    let broker = EmbeddedBroker::start().expect("broker");
    let addr = broker.addr();
    for (mode, what) in MODES {
        let dir = TempDir::new("recv");
        let emu = EmulatorProcess::start(dir.path(), &addr.to_string(), faults);
        let transcript = dir.path().join("t.log");
        let topic = format!("e2e/recv{size}");
        let mut args = vec!["--set", "qos=1", "--set", "count=1", "--set"];
        let topic_arg = format!("topic={topic}");
        args.push(&topic_arg);
        args.extend_from_slice(mode);
        let mut run = Background::start(emu.port(), &transcript, &args);
        run.wait_for_line(&format!("subscribed to {topic}"));
        let body = payload(size);
        Client::connect(addr, "e2e-recv-publisher").publish(&topic, &body, QoS::AtLeastOnce);
        let (code, stdout, stderr) = run.finish();
        let t = std::fs::read_to_string(&transcript).unwrap_or_default();
        assert_eq!(code, 0, "{what} {size}: {stderr}\n{}", t.len());
        let mut want = format!("{topic} ").into_bytes();
        want.extend_from_slice(&body);
        want.push(b'\n');
        assert!(
            stdout.windows(want.len()).any(|w| w == want.as_slice()),
            "{what} {size}: the message is not printed byte for byte"
        );
    }
}

#[test]
fn a_3000_byte_message_arrives_intact_in_every_receive_mode_with_dripping_bytes() {
    receive(
        3000,
        &[
            "--fault",
            "drip=1ms",
            "--fault",
            "urc-in-response",
            "--fault",
            "extra-rxget=2",
        ],
    );
}

#[test]
fn a_100_kb_message_arrives_intact_in_every_receive_mode() {
    receive(100 * 1024, &["--fault", "urc-in-response"]);
}
