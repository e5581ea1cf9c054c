//! Real MQTT sessions through the emulated modem and a real broker: subscribing and
//! receiving messages another client publishes, QoS 1/2 in both directions, refused
//! credentials, keep-alive pings during a long wait, a 1 MB payload, and reassembly when
//! the modem drips bytes and interleaves URCs, in each receive mode. Each broker test runs
//! against mosquitto when it is installed and against the in-process broker always.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use sim7k::broker::EmbeddedBroker;
use sim7k::mqtt::QoS;
use support::emulator::{EmulatorProcess, sim7k};
use support::mqtt_client::Client;
use support::{Mosquitto, TempDir};

/// The brokers to test against: the embedded one, and mosquitto when present.
fn brokers() -> Vec<(&'static str, SocketAddr, Box<dyn std::any::Any>)> {
    let mut out: Vec<(&'static str, SocketAddr, Box<dyn std::any::Any>)> = Vec::new();
    let embedded = EmbeddedBroker::start().expect("embedded broker");
    out.push(("embedded", embedded.addr(), Box::new(embedded)));
    if let Some(m) = Mosquitto::start() {
        out.push(("mosquitto", m.addr, Box::new(m)));
    }
    out
}

/// A `sim7k run` in the background with stdout piped.
struct Background {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Background {
    fn start(recipe: &str, port: &str, transcript: &Path, args: &[&str]) -> Background {
        let mut child = sim7k()
            .args(["run", recipe, "--port", port, "--transcript"])
            .arg(transcript)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sim7k run");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Background { child, stdout }
    }

    /// Read stdout lines until one contains `text` (the recipe's `say:` output).
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

    /// Wait for the exit; returns (code, rest of stdout as bytes, stderr).
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

/// Count transcript lines where sim7k wrote exactly these bytes.
fn writes_of(transcript: &str, escaped: &str) -> usize {
    transcript
        .lines()
        .filter(|l| l.split_once(" > ").is_some_and(|(_, w)| w == escaped))
        .count()
}

/// True when some write contains these (escaped) bytes.
fn wrote(transcript: &str, escaped: &str) -> bool {
    transcript.lines().any(|l| {
        l.split_once(" > ")
            .is_some_and(|(_, w)| w.contains(escaped))
    })
}

#[test]
fn subscribe_receives_what_another_client_publishes_at_every_qos() {
    for (name, addr, _keep) in brokers() {
        let dir = TempDir::new("sub");
        let emu = EmulatorProcess::start(dir.path(), &addr.to_string(), &[]);
        let transcript = dir.path().join("t.log");
        let mut run = Background::start(
            "recipes/mqtt-subscribe.yaml",
            emu.port(),
            &transcript,
            &[
                "--set",
                "topic=e2e/sub",
                "--set",
                "qos=2",
                "--set",
                "count=3",
            ],
        );
        run.wait_for_line("subscribed to e2e/sub");
        let mut publisher = Client::connect(addr, "e2e-publisher");
        publisher.publish("e2e/sub", b"zero", QoS::AtMostOnce);
        publisher.publish("e2e/sub", b"one\r\nOK\r\n", QoS::AtLeastOnce);
        publisher.publish("e2e/sub", b"\x00two\x1a\x1b", QoS::ExactlyOnce);
        let (code, stdout, stderr) = run.finish();
        assert_eq!(code, 0, "{name}: {stderr}");
        let out = stdout;
        for payload in [&b"zero"[..], b"one\r\nOK\r\n", b"\x00two\x1a\x1b"] {
            let mut line = b"e2e/sub ".to_vec();
            line.extend_from_slice(payload);
            line.push(b'\n');
            assert!(
                out.windows(line.len()).any(|w| w == line.as_slice()),
                "{name}: {:?} not printed in {:?}",
                String::from_utf8_lossy(payload),
                String::from_utf8_lossy(&out)
            );
        }
        assert!(
            String::from_utf8_lossy(&out).contains("received 3 message(s)"),
            "{name}"
        );
        // Delivered at QoS 2 (the subscription's): PUBREC and PUBCOMP went out.
        let t = std::fs::read_to_string(&transcript).unwrap_or_default();
        assert!(wrote(&t, "P\\x02\\x00"), "{name}: no PUBREC in\n{t}");
        assert!(wrote(&t, "p\\x02\\x00"), "{name}: no PUBCOMP in\n{t}");
    }
}

#[test]
fn refused_credentials_are_a_clear_failure() {
    let dir = TempDir::new("auth");
    let pw = dir.path().join("passwd");
    let ok = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&pw)
        .args(["device", "right-password"])
        .status();
    if ok.map(|s| !s.success()).unwrap_or(true) {
        assert!(
            !support::mosquitto_required(),
            "mosquitto_passwd is missing"
        );
        eprintln!("mosquitto_passwd not installed: skipping");
        return;
    }
    let conf = format!("allow_anonymous false\npassword_file {}\n", pw.display());
    let Some(broker) = Mosquitto::start_with(&conf) else {
        return;
    };
    let emu = EmulatorProcess::start(dir.path(), &broker.addr.to_string(), &[]);
    let out = sim7k()
        .args(["run", "recipes/fareastone-nbiot.yaml", "--port", emu.port()])
        .args([
            "--set",
            "username=device",
            "--set",
            "password=wrong-password",
            "--json",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broker refused the connection"), "{stderr}");
    assert!(
        stderr.contains("not authorized") || stderr.contains("bad user name or password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-password"),
        "the password is redacted: {stderr}"
    );
    // The right password passes.
    let out = sim7k()
        .args(["run", "recipes/fareastone-nbiot.yaml", "--port", emu.port()])
        .args([
            "--set",
            "username=device",
            "--set",
            "password=right-password",
        ])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A broker that refuses every subscription (SUBACK 0x80), as brokers with ACLs do: a real
/// TCP peer speaking MQTT through sim7k's codec.
fn refusing_broker() -> SocketAddr {
    use sim7k::mqtt::{ConnAck, Packet, Protocol, StreamDecoder, SubAck};
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut dec = StreamDecoder::new(Protocol::V311);
        let mut buf = [0u8; 4096];
        loop {
            while let Ok(Some(p)) = dec.next_packet() {
                let reply = match p {
                    Packet::Connect(_) => Packet::ConnAck(ConnAck::new(0)),
                    Packet::Subscribe(sub) => Packet::SubAck(SubAck {
                        packet_id: sub.packet_id,
                        codes: vec![0x80; sub.filters.len()],
                        properties: Default::default(),
                    }),
                    _ => continue,
                };
                if let Ok(bytes) = reply.encode(Protocol::V311) {
                    let _ = s.write_all(&bytes);
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => dec.push(&buf[..n]),
            }
        }
    });
    addr
}

#[test]
fn a_refused_subscription_is_a_clear_failure() {
    let dir = TempDir::new("suback");
    let emu = EmulatorProcess::start(dir.path(), &refusing_broker().to_string(), &[]);
    let out = sim7k()
        .args(["run", "recipes/mqtt-subscribe.yaml", "--port", emu.port()])
        .args(["--set", "filter=forbidden/x", "--set", "qos=1"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SUBACK: filter 1 refused"), "{stderr}");
    assert!(stderr.contains("step `SUBACK`"), "{stderr}");
}

#[test]
fn keep_alive_pings_hold_a_long_wait() {
    for (name, addr, _keep) in brokers() {
        let dir = TempDir::new("ka");
        let emu = EmulatorProcess::start(dir.path(), &addr.to_string(), &[]);
        let transcript = dir.path().join("t.log");
        let mut run = Background::start(
            "recipes/mqtt-subscribe.yaml",
            emu.port(),
            &transcript,
            &[
                "--set",
                "topic=e2e/ka",
                "--set",
                "keep_alive=1",
                "--set",
                "count=1",
            ],
        );
        run.wait_for_line("subscribed to e2e/ka");
        // Four keep-alive intervals of silence: a client that does not ping is dropped
        // after 1.5 intervals by mosquitto.
        std::thread::sleep(Duration::from_millis(4200));
        Client::connect(addr, "e2e-late-publisher").publish("e2e/ka", b"late", QoS::AtMostOnce);
        let (code, stdout, stderr) = run.finish();
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(
            String::from_utf8_lossy(&stdout).contains("e2e/ka late"),
            "{name}"
        );
        let t = std::fs::read_to_string(&transcript).unwrap_or_default();
        let pings = writes_of(&t, "\\xc0\\x00");
        assert!(pings >= 2, "{name}: {pings} PINGREQ in\n{t}");
        assert!(
            t.contains("\\xd0\\x00"),
            "{name}: no PINGRESP in the transcript"
        );
    }
}

fn ramp(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

#[test]
fn a_one_megabyte_publish_arrives_byte_exact() {
    for (name, addr, _keep) in brokers() {
        let dir = TempDir::new("big");
        let emu = EmulatorProcess::start(dir.path(), &addr.to_string(), &[]);
        let mut sub = Client::connect(addr, "e2e-big-subscriber");
        sub.subscribe("e2e/big");
        let out = sim7k()
            .args(["run", "recipes/fareastone-nbiot.yaml", "--port", emu.port()])
            .args([
                "--set",
                "topic=e2e/big",
                "--set",
                "qos=1",
                "--set",
                "payload_size=1048576",
            ])
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = sub.messages(1, Duration::from_secs(30));
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(got[0].payload.len(), 1_048_576, "{name}");
        assert!(got[0].payload == ramp(1_048_576), "{name}: payload differs");
    }
}

/// (receive mode vars, what they exercise)
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

#[test]
fn reassembly_survives_dripping_bytes_and_interleaved_urcs_in_every_receive_mode() {
    let broker = EmbeddedBroker::start().expect("broker");
    let addr = broker.addr();
    for (mode, what) in MODES {
        let dir = TempDir::new("drip");
        let emu = EmulatorProcess::start(
            dir.path(),
            &addr.to_string(),
            &[
                "--fault",
                "drip=1ms",
                "--fault",
                "urc-in-response",
                "--fault",
                "extra-rxget=2",
            ],
        );
        let transcript = dir.path().join("t.log");
        let mut args = vec![
            "--set",
            "topic=e2e/drip",
            "--set",
            "qos=1",
            "--set",
            "count=2",
        ];
        args.extend_from_slice(mode);
        let mut run = Background::start(
            "recipes/mqtt-subscribe.yaml",
            emu.port(),
            &transcript,
            &args,
        );
        run.wait_for_line("subscribed to e2e/drip");
        let mut publisher = Client::connect(addr, "e2e-drip-publisher");
        publisher.publish("e2e/drip", b"first\r\n+CIPRXGET: 1\r\n", QoS::AtLeastOnce);
        publisher.publish("e2e/drip", &ramp(300), QoS::AtLeastOnce);
        let (code, stdout, stderr) = run.finish();
        let t = std::fs::read_to_string(&transcript).unwrap_or_default();
        if *what == "pushed raw" && code != 0 {
            // Issue 10 point 10 (deliberate change): pushed raw, nothing but the packet
            // length frames the data, and the CR LF in the first payload may as well be a
            // break between the module's blocks: not provably intact, so the step fails
            // naming why instead of delivering bytes it cannot vouch for. (When both
            // packets come in one pushed block, the second one's length rules the other
            // reading out: then the bytes are proven and must arrive exactly, as below.)
            assert_eq!(code, 1, "{what}: {stderr}\n{t}");
            assert!(
                stderr.contains("cannot be proven intact"),
                "{what}: {stderr}"
            );
            assert!(stderr.contains("AT+CIPHEAD=1"), "{what}: {stderr}");
            continue;
        }
        assert_eq!(code, 0, "{what}: {stderr}\n{t}");
        let mut want = b"e2e/drip ".to_vec();
        want.extend_from_slice(&ramp(300));
        want.push(b'\n');
        assert!(
            stdout.windows(want.len()).any(|w| w == want.as_slice()),
            "{what}: binary payload"
        );
        assert!(
            String::from_utf8_lossy(&stdout).contains("e2e/drip first\r\n+CIPRXGET: 1\r\n\n"),
            "{what}: {}",
            String::from_utf8_lossy(&stdout)
        );
    }
}
