//! Verbosity (issue 14.3): `-v` AT traffic, `-vv` the MQTT packets decoded both ways (secrets
//! replaced), `-vvv` engine events, `RUST_LOG` library diagnostics, `-q` only errors. Runs
//! the built binary on the lead recipe against the built-in emulator (zero latency,
//! embedded broker).

use std::process::{Command, Output, Stdio};

const SECRET: &str = "Zq8-secret-user";

fn run(extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sim7k"));
    c.env_remove("RUST_LOG").env_remove("SIM7K_PORT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args([
        "run",
        concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/mqtt-publish.yaml"),
    ])
    .args(["--emulate", "--emulator-profile", "zero"])
    // The user name is shown by a CONNECT's summary; the same text as the secret
    // password makes it a secret everywhere.
    .args(["--set", &format!("username={SECRET}")])
    .args(["--set", &format!("password={SECRET}")])
    .args(extra)
    .stdin(Stdio::null());
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn v_shows_at_traffic_and_vv_adds_the_decoded_mqtt_packets_redacted() {
    let o = run(&["-v"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let one = stderr(&o);
    assert!(one.contains("> AT+CIPSTART"), "{one}");
    assert!(!one.contains("MQTT CONNECT"), "-v decoded packets:\n{one}");

    let o = run(&["-vv"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let two = stderr(&o);
    assert!(two.contains("> AT+CIPSTART"), "{two}");
    // Both ways, in order: CONNECT and PUBLISH sent, CONNACK received, DISCONNECT sent.
    let sent = two.find("> MQTT CONNECT").expect("CONNECT line");
    let publish = two
        .find("> MQTT PUBLISH \"sim7k/demo\"")
        .expect("PUBLISH line");
    let connack = two.find("< MQTT CONNACK 0x00").expect("CONNACK line");
    let disconnect = two.find("> MQTT DISCONNECT").expect("DISCONNECT line");
    assert!(sent < publish && publish < connack.max(publish) && connack < disconnect);
    assert!(
        !two.contains(SECRET),
        "a secret reached the terminal:\n{two}"
    );
    assert!(two.contains("user \"***\""), "{two}");
    assert!(!two.contains("sim7k::engine"), "-vv printed engine events");
}

#[test]
fn vvv_adds_engine_events_and_rust_log_selects_library_diagnostics() {
    let o = run(&["-vvv"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let three = stderr(&o);
    assert!(three.contains("> MQTT CONNECT"), "{three}");
    assert!(
        three.contains("sim7k::engine") && three.contains("wait up to"),
        "{three}"
    );
    assert!(!three.contains(SECRET));

    let o = run(&[], &[("RUST_LOG", "sim7k=debug")]);
    assert_eq!(o.status.code(), Some(0));
    let log = stderr(&o);
    assert!(log.contains("emulator started"), "{log}");
    assert!(
        !log.contains("wait up to"),
        "debug level printed trace events:\n{log}"
    );
}

#[test]
fn q_prints_only_errors() {
    let o = run(&["-q"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "", "-q printed on a pass");
    let o = run(&["-q", "--fault", "error=CIPSTART"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("FAILED"), "{err}");
    assert!(!err.contains("ok "), "{err}");
}

#[test]
fn vv_shows_each_devices_packets_in_a_fleet() {
    let o = run(&["-vv", "--emulate-count", "2"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let connects = err.lines().filter(|l| l.contains("> MQTT CONNECT")).count();
    assert_eq!(connects, 2, "{err}");
    assert!(!err.contains(SECRET), "{err}");
}
