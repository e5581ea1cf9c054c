//! Issue 10 point 16 end to end: subscribe with keep-alive 2 s, then a 10 s `wait` and a
//! slow `until` poll. PINGREQ goes out on time between the AT commands, the broker keeps the
//! session, a message published during the wait is printed while the wait runs, and a later
//! one still arrives. Before, keep-alive ran only inside `expect_mqtt` waits: the broker
//! dropped the client (mosquitto after 1.5 keep-alive intervals) and nothing was printed
//! during the wait.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use sim7k::broker::EmbeddedBroker;
use sim7k::mqtt::QoS;
use support::emulator::{EmulatorProcess, sim7k};
use support::mqtt_client::Client;
use support::{Mosquitto, TempDir};

/// `recipes/mqtt-subscribe.yaml` with a long wait and a slow poll between the SUBACK and the
/// messages step.
fn recipe(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("recipes/mqtt-subscribe.yaml"))
        .expect("read mqtt-subscribe.yaml");
    let text = text
        .replace(
            "scripts: ../scripts/mqtt.rhai",
            &format!("scripts: {}", root.join("scripts/mqtt.rhai").display()),
        )
        .replace(
            "include: network-attach.yaml",
            &format!(
                "include: {}",
                root.join("recipes/network-attach.yaml").display()
            ),
        )
        .replace(
            "  - name: messages\n",
            "  - name: idle\n    wait: 10s\n  - name: slow poll\n    send: AT+CSQ\n    until: \"+CSQ: 99,99\"\n    interval: 3s\n    deadline: 7s\n    on_fail: continue\n  - say: waiting for messages\n  - name: messages\n",
        );
    assert!(text.contains("name: idle"), "recipe rewritten");
    let p = dir.join("keepalive.yaml");
    std::fs::write(&p, text).expect("write recipe");
    p
}

struct Background {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    seen: Vec<String>,
}

impl Background {
    fn wait_for_line(&mut self, text: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).expect("read stdout");
            assert!(
                n > 0,
                "sim7k ended before printing `{text}`: {:?}",
                self.seen
            );
            self.seen.push(line.trim_end().to_string());
            if line.contains(text) {
                return;
            }
        }
    }

    fn finish(mut self) -> (i32, Vec<String>, String) {
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        self.seen.extend(rest.lines().map(str::to_string));
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let code = self.child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
        (code, self.seen, err)
    }
}

#[test]
fn keep_alive_holds_the_session_through_other_steps_and_messages_keep_arriving() {
    let mut brokers: Vec<(&str, std::net::SocketAddr, Box<dyn std::any::Any>)> = Vec::new();
    let embedded = EmbeddedBroker::start().expect("embedded broker");
    brokers.push(("embedded", embedded.addr(), Box::new(embedded)));
    if let Some(m) = Mosquitto::start() {
        brokers.push(("mosquitto", m.addr, Box::new(m)));
    }
    for (name, addr, _keep) in brokers {
        let dir = TempDir::new("keepalive");
        let emu = EmulatorProcess::start(dir.path(), &addr.to_string(), &[]);
        let transcript = dir.path().join("t.log");
        let mut child = sim7k()
            .arg("run")
            .arg(recipe(dir.path()))
            .args(["--port", emu.port(), "--transcript"])
            .arg(&transcript)
            .args([
                "--set",
                "topic=e2e/ka2",
                "--set",
                "keep_alive=2",
                "--set",
                "qos=1",
                "--set",
                "count=2",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sim7k run");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut run = Background {
            child,
            stdout,
            seen: Vec::new(),
        };
        run.wait_for_line("subscribed to e2e/ka2");
        // Into the 10 s wait: well past 1.5 keep-alive intervals of AT-only traffic.
        std::thread::sleep(Duration::from_secs(4));
        Client::connect(addr, "e2e-ka-during").publish(
            "e2e/ka2",
            b"during the wait",
            QoS::AtLeastOnce,
        );
        run.wait_for_line("waiting for messages");
        Client::connect(addr, "e2e-ka-after").publish(
            "e2e/ka2",
            b"after the poll",
            QoS::AtLeastOnce,
        );
        let (code, lines, stderr) = run.finish();
        let t = std::fs::read_to_string(&transcript).unwrap_or_default();
        assert_eq!(code, 0, "{name}: {stderr}\n{lines:?}");
        let during = lines.iter().position(|l| l == "e2e/ka2 during the wait");
        let said = lines
            .iter()
            .position(|l| l.contains("waiting for messages"));
        assert!(
            matches!((during, said), (Some(d), Some(s)) if d < s),
            "{name}: the message is printed during the wait: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l == "e2e/ka2 after the poll"),
            "{name}: the session survived: {lines:?}"
        );
        let pings = t
            .lines()
            .filter(|l| l.split_once(" > ").is_some_and(|(_, w)| w == "\\xc0\\x00"))
            .count();
        assert!(
            pings >= 6,
            "{name}: {pings} PINGREQ in 17 s at keep-alive 2 s"
        );
        assert!(t.contains("\\xd0\\x00"), "{name}: PINGRESP seen");
    }
}
