//! Eight emulated SIM7000s at once (in-process emulators on real pseudo-terminals, real TCP,
//! the embedded MQTT broker), some failing through fault injection: every record present
//! and correct, JUnit and CSV consistent with the JSONL, no secret anywhere.

mod fleet_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use fleet_support::{csv_records, junit, luhn_ok, provision_recipe, read_jsonl, show, sim7k};
use support::TempDir;

const SECRET: &str = "pw-Zq81-secret";

#[test]
fn eight_modems_with_faults_give_one_correct_record_each() {
    let dir = TempDir::new("fleet8");
    let report = dir.path().join("line.jsonl");
    let junit_path = dir.path().join("line.xml");
    let csv_path = dir.path().join("line.csv");
    let logs = dir.path().join("logs");
    let recipe = provision_recipe();
    let out = sim7k(&[
        "run",
        recipe.to_str().unwrap(),
        "--emulate",
        "--emulator-profile",
        "zero",
        "--emulate-count",
        "8",
        "--fault-on",
        "3:error=CIICR",
        "--fault-on",
        "5:connect-fail",
        "--fault-on",
        "6:silent",
        "--fault-on",
        "7:error=CCID",
        "--set",
        "username=line7",
        "--set",
        &format!("password={SECRET}"),
        "--report",
        report.to_str().unwrap(),
        "--junit",
        junit_path.to_str().unwrap(),
        "--csv",
        csv_path.to_str().unwrap(),
        "--transcript-dir",
        logs.to_str().unwrap(),
        "--json",
    ]);
    // The worst failure class: a timeout (3) beats a failed step (1).
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));

    // --- JSONL: one record per device.
    let records = read_jsonl(&report);
    assert_eq!(records.len(), 8, "{}", show(&out));
    let by_device: BTreeMap<String, &serde_json::Value> = records
        .iter()
        .map(|r| (r["device"].as_str().unwrap().to_string(), r))
        .collect();
    let expected: BTreeSet<String> = (1..=8).map(|n| format!("emu{n:02}")).collect();
    assert_eq!(by_device.keys().cloned().collect::<BTreeSet<_>>(), expected);

    let failures: BTreeMap<&str, (&str, Option<&str>)> = [
        ("emu03", ("failed", Some("bring up the bearer"))),
        ("emu05", ("failed", Some("open TCP to the broker"))),
        ("emu06", ("timeout", None)),
        ("emu07", ("failed", Some("ICCID"))),
    ]
    .into_iter()
    .collect();
    let stamp = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    let mut imeis = BTreeSet::new();
    let mut passed_imeis = BTreeSet::new();
    for (device, r) in &by_device {
        assert!(stamp.is_match(r["started"].as_str().unwrap()), "{r}");
        assert!(stamp.is_match(r["ended"].as_str().unwrap()), "{r}");
        assert!(r["started"].as_str() <= r["ended"].as_str());
        assert_eq!(r["recipe"], "SIM7000 factory provisioning");
        let transcript = r["transcript"].as_str().expect("transcript path");
        let text = std::fs::read_to_string(transcript).expect("transcript file");
        assert!(
            transcript.ends_with(&format!("logs/{device}.log")),
            "{transcript}"
        );
        assert!(!text.contains(SECRET), "secret in {transcript}");
        if let Some(imei) = r["imei"].as_str() {
            assert!(luhn_ok(imei) && imei.len() == 15, "{imei}");
            assert!(imeis.insert(imei.to_string()), "IMEI {imei} twice");
            assert_eq!(r["captures"]["imei"], imei);
            assert!(text.contains(imei), "the transcript shows the IMEI");
        }
        match failures.get(device.as_str()) {
            None => {
                assert_eq!(r["verdict"], "passed", "{r}");
                assert_eq!(r["exit_code"], 0);
                assert!(r["failed_step"].is_null() && r["reason"].is_null());
                let c = &r["captures"];
                for key in ["imei", "iccid", "imsi", "firmware", "model", "rssi", "ber"] {
                    assert!(c[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {r}");
                }
                assert!(luhn_ok(c["iccid"].as_str().unwrap()));
                assert_eq!(c["rssi"], "24");
                let names: Vec<&str> = r["measurements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["name"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    names,
                    ["model", "firmware", "imei", "iccid", "imsi", "rssi"]
                );
                for m in r["measurements"].as_array().unwrap() {
                    assert_eq!(m["passed"], true, "{m}");
                    assert_eq!(m["value"], c[m["name"].as_str().unwrap()]);
                }
                assert_eq!(r["steps"]["failed"], 0);
                assert!(text.contains("# run passed"));
                passed_imeis.insert(r["imei"].as_str().unwrap().to_string());
            }
            Some((verdict, step)) => {
                assert_eq!(r["verdict"], *verdict, "{r}");
                if let Some(step) = step {
                    assert_eq!(r["failed_step"], *step, "{r}");
                    assert_eq!(r["exit_code"], 1);
                } else {
                    assert_eq!(r["exit_code"], 3);
                }
                assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
                assert!(text.contains("# run ended"), "{text}");
            }
        }
    }
    assert_eq!(passed_imeis.len(), 4);
    assert!(
        by_device["emu03"]["reason"]
            .as_str()
            .unwrap()
            .contains("ERROR")
    );
    assert!(
        by_device["emu05"]["reason"]
            .as_str()
            .unwrap()
            .contains("CONNECT FAIL")
    );

    // --- The broker got one test publish per passed device, on its IMEI's topic.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(&stdout[stdout.find('{').unwrap()..]).expect("--json summary");
    assert_eq!(summary["devices"], 8);
    assert_eq!(summary["passed"], 4);
    assert_eq!(summary["failed"], 4);
    assert_eq!(summary["exit_code"], 3);
    assert_eq!(summary["emulator"]["messages"], 4);
    let topics: BTreeSet<String> = summary["emulator"]["topics"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let want: BTreeSet<String> = passed_imeis
        .iter()
        .map(|i| format!("factory/{i}/provisioned"))
        .collect();
    assert_eq!(topics, want);

    // --- JUnit: one testcase per device, outcome = verdict.
    let xml = std::fs::read_to_string(&junit_path).unwrap();
    let (cases, (tests, failures_n, errors_n)) = junit(&xml);
    assert_eq!((tests, failures_n, errors_n), (8, 4, 0));
    assert_eq!(cases.len(), 8);
    for case in &cases {
        let r = by_device[&case.name];
        match &case.outcome {
            None => assert_eq!(r["verdict"], "passed"),
            Some((tag, kind)) => {
                assert_eq!(tag, "failure");
                assert_eq!(r["verdict"], kind.as_str());
            }
        }
        let prop = |k: &str| {
            case.properties
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(prop("imei").as_deref(), r["imei"].as_str());
        assert_eq!(prop("port").as_deref(), r["port"].as_str());
        for (k, v) in r["captures"].as_object().unwrap() {
            assert_eq!(prop(&format!("capture.{k}")).as_deref(), v.as_str());
        }
    }

    // --- CSV: one row per device, same values as the JSONL.
    let rows = csv_records(&std::fs::read_to_string(&csv_path).unwrap());
    assert_eq!(rows.len(), 8);
    for row in &rows {
        let r = by_device[&row["device"]];
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for key in [
            "port",
            "imei",
            "verdict",
            "exit_code",
            "failed_step",
            "failed_origin",
            "reason",
            "started",
            "ended",
            "transcript",
            "run",
        ] {
            assert_eq!(row[key], text(&r[key]), "{key} of {}", row["device"]);
        }
        let secs: f64 = row["seconds"].parse().unwrap();
        assert!((secs - r["seconds"].as_f64().unwrap()).abs() < 0.001);
        for (k, v) in row.iter().filter(|(k, _)| k.starts_with("capture.")) {
            assert_eq!(v, &text(&r["captures"][&k["capture.".len()..]]), "{k}");
        }
        for m in r["measurements"].as_array().unwrap() {
            let col = format!("check.{}", m["name"].as_str().unwrap());
            let want = if m["passed"] == true { "pass" } else { "fail" };
            assert_eq!(row[&col], want);
        }
    }

    // --- No secret in any file the run wrote.
    for p in [&report, &junit_path, &csv_path] {
        assert!(!std::fs::read_to_string(p).unwrap().contains(SECRET));
    }
    assert!(!stdout.contains(SECRET));
}
