//! MQTT over TLS end to end through the whole real path: `sim7k run
//! recipes/mqtts-publish.yaml` → a pseudo-terminal → the SIM7000 emulator (its own process)
//! → real TCP → mosquitto with a TLS listener and certificates made in the test. A
//! subscriber on a second, plaintext listener of the same mosquitto checks what arrived.
//! Mutual TLS (`require_certificate true`), and the failures a user must be able to act
//! on (unknown CA, hostname mismatch, a missing client certificate): exit 1 and a message
//! saying what to check. Skipped without mosquitto unless `SIM7K_REQUIRE_MOSQUITTO=1`.

mod support;
mod tls_support;

use std::path::Path;
use std::time::Duration;

use sim7k::mqtt::QoS;
use support::emulator::{EmulatorProcess, sim7k};
use support::mqtt_client::Client;
use tls_support::peers::{MosquittoTls, free_port};
use tls_support::{ALWAYS, Alg, Ca, Issued, Pki};

const RECIPE: &str = "recipes/mqtts-publish.yaml";
/// Bytes a line-based or Ctrl-Z-terminated send would break.
const BINARY_HEX: &str = "00 1A 1B 0D 0A 16 03 01 FF";

fn binary() -> Vec<u8> {
    BINARY_HEX
        .split(' ')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

/// mosquitto with a TLS listener (server certificate for `localhost`) and a plaintext one
/// for the test's subscriber.
struct Setup {
    pki: Pki,
    ca: Ca,
    device: Issued,
    broker: MosquittoTls,
    plain: std::net::SocketAddr,
}

fn setup(tag: &str, tls_extra: &str) -> Option<Setup> {
    let pki = Pki::new(tag);
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let device = pki.client(&ca, "device", "device-1", Alg::EcdsaP256);
    let plain_port = free_port();
    let extra = format!("{tls_extra}\nlistener {plain_port} 127.0.0.1\n");
    let broker = MosquittoTls::start(&ca.issued.cert, &server.cert, &server.key, &extra)?;
    let plain: std::net::SocketAddr = format!("127.0.0.1:{plain_port}").parse().ok()?;
    // The TLS listener is up (MosquittoTls::start waited for it); the plain one opens
    // right after it.
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect_timeout(&plain, Duration::from_millis(100)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mosquitto's plain listener did not open:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Setup {
        pki,
        ca,
        device,
        broker,
        plain,
    })
}

struct Run {
    code: i32,
    stderr: String,
    transcript: String,
}

fn run(emu: &EmulatorProcess, dir: &Path, set: &[String]) -> Run {
    let transcript = dir.join("run.transcript");
    let mut cmd = sim7k();
    cmd.arg("run")
        .arg(RECIPE)
        .args(["--port", emu.port(), "--transcript"])
        .arg(&transcript)
        .args(["--set", "broker_host=localhost"]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("run sim7k");
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        transcript: std::fs::read_to_string(&transcript).unwrap_or_default(),
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn mqtts_publish_through_the_pty_emulator_to_mosquitto_at_each_qos() {
    let Some(s) = setup("e2e-mqtts", "") else {
        return;
    };
    let mut sub = Client::connect(s.plain, "tls-e2e-subscriber");
    sub.subscribe("sim7k/tls/#");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let dir = s.pki.dir.join(&format!("qos{}", qos as u8));
        std::fs::create_dir_all(&dir).unwrap();
        let emu = EmulatorProcess::start(&dir, &s.broker.addr.to_string(), &[]);
        let topic = format!("sim7k/tls/{}", qos as u8);
        let r = run(
            &emu,
            &dir,
            &[
                format!("ca_file={}", path(&s.ca.issued.cert)),
                format!("topic={topic}"),
                format!("qos={}", qos as u8),
                format!("payload_hex={BINARY_HEX}"),
            ],
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
        assert_eq!(got[0].qos, qos);
        // The transcript shows the TLS records as what they are and, separately, the
        // decrypted MQTT packets.
        assert!(
            r.transcript.contains("tls > handshake ClientHello")
                && r.transcript.contains("tls > decrypted: PUBLISH")
                && r.transcript.contains("tls < decrypted: CONNACK"),
            "{}",
            r.transcript
        );
        drop(emu);
    }
    // close_notify went out before the socket closed: the only "unexpected eof" in the
    // broker's log is the readiness probe's (a plain connect and close at start).
    let log = s.broker.log();
    assert!(log.matches("unexpected eof").count() <= 1, "{log}");
}

#[test]
fn mutual_tls_with_require_certificate() {
    let Some(s) = setup("e2e-mtls", "require_certificate true") else {
        return;
    };
    let mut sub = Client::connect(s.plain, "mtls-subscriber");
    sub.subscribe("sim7k/mtls");
    let emu = EmulatorProcess::start(s.pki.dir.path(), &s.broker.addr.to_string(), &[]);
    let r = run(
        &emu,
        s.pki.dir.path(),
        &[
            format!("ca_file={}", path(&s.ca.issued.cert)),
            format!("client_cert={}", path(&s.device.cert)),
            format!("client_key={}", path(&s.device.key)),
            "topic=sim7k/mtls".into(),
            "qos=1".into(),
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.transcript);
    let got = sub.messages(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "nothing delivered");
    // The private key never shows, wherever the path of its file does.
    assert!(!r.transcript.contains("PRIVATE KEY"));
    assert!(!r.transcript.contains(&path(&s.device.key)));
    assert!(!r.stderr.contains(&path(&s.device.key)));
    drop(emu);

    // Without the device certificate the broker refuses: a failure, exit 1, saying so.
    let emu = EmulatorProcess::start(s.pki.dir.path(), &s.broker.addr.to_string(), &[]);
    let r = run(
        &emu,
        s.pki.dir.path(),
        &[format!("ca_file={}", path(&s.ca.issued.cert))],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stderr, r.transcript);
    assert!(
        r.stderr
            .contains("requires a client certificate and none is configured"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unknown_ca_is_a_named_failure_saying_what_to_check() {
    let Some(s) = setup("e2e-unknown-ca", "") else {
        return;
    };
    let other = s.pki.ca("other-ca", Alg::EcdsaP256);
    let emu = EmulatorProcess::start(s.pki.dir.path(), &s.broker.addr.to_string(), &[]);
    let r = run(
        &emu,
        s.pki.dir.path(),
        &[format!("ca_file={}", path(&other.issued.cert))],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stderr, r.transcript);
    assert!(
        r.stderr.contains("not signed by a CA sim7k trusts")
            && r.stderr.contains("Check that the CA file"),
        "{}",
        r.stderr
    );
    // The certificate the server sent is described: its subject.
    assert!(r.stderr.contains("CN=localhost"), "{}", r.stderr);
}

#[test]
fn a_hostname_mismatch_is_a_named_failure_saying_what_to_check() {
    let Some(s) = setup("e2e-hostname", "") else {
        return;
    };
    let emu = EmulatorProcess::start(s.pki.dir.path(), &s.broker.addr.to_string(), &[]);
    let r = run(
        &emu,
        s.pki.dir.path(),
        &[
            format!("ca_file={}", path(&s.ca.issued.cert)),
            // The emulator redirects every connection to mosquitto; the name differs.
            "broker_host=broker.wrong.example".into(),
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stderr, r.transcript);
    assert!(
        r.stderr
            .contains("not valid for the name broker.wrong.example")
            && r.stderr.contains("Check the broker host"),
        "{}",
        r.stderr
    );
}

/// `run --emulate` with a TLS recipe: the embedded broker speaks TLS with a CA made at
/// start, sim7k says where that CA is and trusts it by default; a CA given with `--set`
/// is kept (so the named failure can be tried offline). No mosquitto needed.
#[test]
fn offline_run_trusts_the_embedded_brokers_ca_and_says_where_it_is() {
    let out = sim7k()
        .args(["run", RECIPE, "--emulate", "--emulator-profile", "zero"])
        .output()
        .expect("run sim7k");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("its CA certificate"), "{stderr}");
    assert!(stderr.contains("ca_file = "), "{stderr}");
    assert!(stderr.contains("received 1 message"), "{stderr}");

    let pki = Pki::new("e2e-offline");
    let other = pki.ca("other-ca", Alg::EcdsaP256);
    let out = sim7k()
        .args([
            "run",
            RECIPE,
            "--emulate",
            "--emulator-profile",
            "zero",
            "--set",
        ])
        .arg(format!("ca_file={}", path(&other.issued.cert)))
        .output()
        .expect("run sim7k");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not signed by a CA sim7k trusts")
            && stderr.contains("sim7k embedded broker test CA"),
        "{stderr}"
    );
}
