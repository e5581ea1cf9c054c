//! `--resume` skips a device only when its latest passed record is of the same job: the same
//! recipe content (hash over the recipe, its includes and scripts) and the same non-secret
//! vars (issue 11.4). Before, any passed record of the IMEI skipped the device: running
//! `provision-sim7000.yaml --resume` after `modem-info.yaml` provisioned nothing and counted
//! every device as passed.

mod fleet_support;
mod support;

use fleet_support::{read_jsonl, root, show, sim7k};
use support::TempDir;

fn recipe(name: &str) -> String {
    root().join("recipes").join(name).display().to_string()
}

/// Two emulated modems; their IMEIs are the same in every run (derived from the device's
/// index), so each run meets the same devices.
fn run_on_two(recipe_name: &str, report: &str, extra: &[&str]) -> std::process::Output {
    let r = recipe(recipe_name);
    let mut args = vec![
        "run",
        r.as_str(),
        "--emulate",
        "--emulate-count",
        "2",
        "--emulator-profile",
        "zero",
        "--report",
        report,
        "--json",
        "-q",
    ];
    args.extend_from_slice(extra);
    sim7k(&args)
}

/// The fleet summary `--json` prints.
fn summary(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .find('{')
        .and_then(|i| serde_json::from_str(&stdout[i..]).ok())
        .unwrap_or_default()
}

#[test]
fn resume_skips_only_devices_that_passed_the_same_job() {
    let dir = TempDir::new("resume-identity");
    let report = dir.path().join("r.jsonl");
    let report = report.to_str().expect("utf-8 path");

    let out = run_on_two("modem-info.yaml", report, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let first = read_jsonl(std::path::Path::new(report));
    assert_eq!(first.len(), 2);
    let info_hash = first[0]["identity"]["hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(info_hash.starts_with("sha256:"), "{}", first[0]);
    assert!(
        first[0]["identity"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("modem-info.yaml")),
        "{}",
        first[0]
    );

    // Another recipe on the same devices: it runs (it was skipped before).
    let out = run_on_two("provision-sim7000.yaml", report, &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(summary(&out)["skipped"], 0, "{}", show(&out));
    assert_eq!(summary(&out)["passed"], 2, "{}", show(&out));
    let all = read_jsonl(std::path::Path::new(report));
    assert_eq!(all.len(), 4, "provisioning must run on both devices");
    let provision_hash = all[2]["identity"]["hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_ne!(provision_hash, info_hash);
    for r in &all[2..] {
        assert_eq!(r["verdict"], "passed", "{r}");
        assert_eq!(r["identity"]["hash"], provision_hash.as_str());
        assert_eq!(r["identity"]["vars"]["topic_prefix"], "factory", "{r}");
        assert!(r["identity"]["vars"].get("password").is_none(), "{r}");
    }

    // The same job again: both devices are skipped, nothing is appended.
    let out = run_on_two("provision-sim7000.yaml", report, &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(summary(&out)["skipped"], 2, "{}", show(&out));
    assert_eq!(read_jsonl(std::path::Path::new(report)).len(), 4);

    // The same recipe with other vars is another job: it runs.
    let out = run_on_two(
        "provision-sim7000.yaml",
        report,
        &["--resume", "--set", "topic_prefix=line2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let all = read_jsonl(std::path::Path::new(report));
    assert_eq!(all.len(), 6);
    assert_eq!(all[5]["identity"]["vars"]["topic_prefix"], "line2");
}
