//! Factory-line runs on `sim7k emulate` processes: a failed measurement, a modem that
//! vanishes mid-run and a missing port each end only their own device; globs, ports files
//! with per-device vars, `sim7k ports`, and usage errors.

mod fleet_support;
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use fleet_support::{Emulator, provision_recipe, read_jsonl, show, sim7k, wait_until};
use support::TempDir;

#[test]
fn failing_vanishing_and_missing_devices_do_not_touch_the_others() {
    let dir = TempDir::new("devices");
    let hub = dir.path().join("hub");
    std::fs::create_dir_all(&hub).unwrap();
    let report = dir.path().join("line.jsonl");
    let good = Emulator::spawn(&hub.join("good"), &["--imei", "490154203237518"]);
    let weak = Emulator::spawn(
        &hub.join("weak"),
        &["--imei", "356938035643809", "--csq", "5"],
    );
    // Never registers: still running when it is unplugged.
    let mut gone = Emulator::spawn(
        &hub.join("gone"),
        &["--imei", "353918058401786", "--search-polls", "1000000"],
    );
    let missing = hub.join("missing");

    let recipe = provision_recipe();
    let run = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .arg("run")
        .arg(&recipe)
        .arg("--port")
        .arg(&good.link)
        .arg("--port")
        .arg(&weak.link)
        .arg("--port")
        .arg(&gone.link)
        .arg("--port")
        .arg(&missing)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Unplug `gone` once the others have finished.
    wait_until("three records", || read_jsonl(&report).len() >= 3);
    gone.kill();
    let out = run.wait_with_output().unwrap();
    // The worst class: an I/O error (4) beats a failed step (1).
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));

    let records: BTreeMap<String, serde_json::Value> = read_jsonl(&report)
        .into_iter()
        .map(|r| (r["device"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(records.len(), 4, "{records:?}");

    let g = &records["good"];
    assert_eq!(g["verdict"], "passed", "{g}");
    assert_eq!(g["imei"], "490154203237518");

    // The failed measurement: the value is in the reason, the captures and the measurement.
    let w = &records["weak"];
    assert_eq!(w["verdict"], "failed", "{w}");
    assert_eq!(w["exit_code"], 1);
    assert_eq!(w["failed_step"], "signal");
    let reason = w["reason"].as_str().unwrap();
    assert!(
        reason.contains("rssi = 5, below the minimum 10"),
        "{reason}"
    );
    assert_eq!(w["captures"]["rssi"], "5");
    let rssi = w["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "rssi")
        .expect("rssi measurement");
    assert_eq!(rssi["value"], "5");
    assert_eq!(rssi["passed"], false);
    assert_eq!(rssi["limits"]["min"], 10.0);
    assert_eq!(rssi["limits"]["max"], 31.0);
    // The checks before it passed.
    for m in w["measurements"].as_array().unwrap() {
        if m["name"] != "rssi" {
            assert_eq!(m["passed"], true, "{m}");
        }
    }

    let v = &records["gone"];
    assert_eq!(v["verdict"], "io_error", "{v}");
    assert_eq!(v["exit_code"], 4);
    // Unplugged mid-run: the port failed in a step of the recipe (read or write).
    assert_ne!(v["failed_step"], "open port", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("vanished") || reason.contains("write to the port failed"),
        "{v}"
    );

    let m = &records["missing"];
    assert_eq!(m["verdict"], "io_error");
    assert_eq!(m["failed_step"], "open port");
    assert!(
        m["reason"].as_str().unwrap().contains("no such port"),
        "{m}"
    );
    assert!(m["imei"].is_null());

    // One verdict line per device on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (tag, dev) in [
        ("PASS", "good"),
        ("FAIL", "weak"),
        ("I/O ERR", "gone"),
        ("I/O ERR", "missing"),
    ] {
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l.starts_with(tag) && l.contains(&format!(" {dev} ")))
                .count(),
            1,
            "{tag} {dev}:\n{stderr}"
        );
    }
    assert!(stderr.contains("4 devices: 1 passed, 3 failed"), "{stderr}");
    drop((good, weak));
}

#[test]
fn globs_and_a_ports_file_with_per_device_vars() {
    let dir = TempDir::new("glob");
    let hub = dir.path().join("hub");
    std::fs::create_dir_all(&hub).unwrap();
    let a1 = Emulator::spawn(&hub.join("a1"), &["--imei", "490154203237518"]);
    let a2 = Emulator::spawn(&hub.join("a2"), &["--imei", "356938035643809"]);
    let b1 = Emulator::spawn(&hub.join("b1"), &["--imei", "353918058401786"]);
    let ports_file = dir.path().join("bench.txt");
    std::fs::write(
        &ports_file,
        format!(
            "# bench 7\n{}  topic_prefix=line7\n{}\n",
            b1.link.display(),
            a1.link.display()
        ),
    )
    .unwrap();
    let report = dir.path().join("r.jsonl");
    let logs = dir.path().join("logs");
    let recipe = provision_recipe();
    let glob = format!("{}/a*", hub.display());
    let out = sim7k(&[
        "run",
        recipe.to_str().unwrap(),
        "--port",
        &glob,
        "--ports-file",
        ports_file.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--transcript-dir",
        logs.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listed twice"), "{stderr}");
    let records = read_jsonl(&report);
    let mut devices: Vec<&str> = records
        .iter()
        .map(|r| r["device"].as_str().unwrap())
        .collect();
    devices.sort();
    assert_eq!(devices, ["a1", "a2", "b1"]);
    for r in &records {
        let transcript = std::fs::read_to_string(r["transcript"].as_str().unwrap()).unwrap();
        let imei = r["imei"].as_str().unwrap();
        let prefix = if r["device"] == "b1" {
            "line7"
        } else {
            "factory"
        };
        let want = format!("published to {prefix}/{imei}/provisioned");
        assert!(transcript.contains(&want), "{want} not in {transcript}");
    }
    drop((a1, a2, b1));
}

#[test]
fn usage_errors_are_reported_before_any_port_is_touched() {
    let dir = TempDir::new("usage");
    let recipe = provision_recipe();
    let r = recipe.to_str().unwrap();
    let out = sim7k(&[
        "run",
        r,
        "--port",
        "/dev/null",
        "--port",
        "/dev/zero",
        "--transcript",
        dir.path().join("t.log").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--transcript-dir"));

    let none = format!("{}/nothing-here*", dir.path().display());
    let out = sim7k(&["run", r, "--port", &none]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches no port"));

    let out = sim7k(&["run", r, "--port", "/dev/null", "--resume"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    let bad = dir.path().join("ports.txt");
    std::fs::write(&bad, "/dev/ttyUSB0 not-a-var\n").unwrap();
    let out = sim7k(&["run", r, "--ports-file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ports.txt:1:"),
        "{}",
        show(&out)
    );

    let out = sim7k(&[
        "run",
        r,
        "--emulate",
        "--emulate-count",
        "2",
        "--fault-on",
        "3:silent",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only 2 emulated devices"));
}

#[test]
fn ports_lists_serial_ports_or_says_there_are_none() {
    let out = sim7k(&["ports"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.is_empty() {
        assert!(stderr.contains("no serial ports found"), "{stderr}");
    } else {
        assert!(stdout.starts_with("PORT "), "{stdout}");
        assert!(
            stdout
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("/dev/"))
        );
    }
    let out = sim7k(&["ports", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for p in list.as_array().expect("an array") {
        assert!(
            p["port"].as_str().is_some_and(|s| s.starts_with("/dev/")),
            "{p}"
        );
        assert!(["usb", "pci", "bluetooth", "other"].contains(&p["kind"].as_str().unwrap()));
    }
}
