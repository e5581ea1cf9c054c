//! A factory-line run killed mid-way (SIGKILL) keeps every finished device's record intact,
//! and `--resume` skips the devices that passed (matched by IMEI, even on another port) and
//! completes the rest. `sim7k emulate` processes on real pseudo-terminals stand in for the
//! modems; each has its own embedded broker.

mod fleet_support;
mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use fleet_support::{
    Emulator, GUARD, csv_records, junit, provision_recipe, read_jsonl, show, sim7k,
};
use support::TempDir;

/// Valid (Luhn) IMEIs, one per modem.
const IMEIS: [&str; 6] = [
    "490154203237518",
    "356938035643809",
    "353918058401786",
    "861234050012342",
    "869951031234564",
    "352099001761481",
];

fn complete_lines(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.matches('\n').count()
}

#[test]
fn a_killed_run_keeps_finished_records_and_resume_completes_the_rest() {
    let dir = TempDir::new("resume");
    let ports = dir.path().join("hub");
    std::fs::create_dir_all(&ports).unwrap();
    let report = dir.path().join("line.jsonl");
    let logs = dir.path().join("logs");
    let link = |n: usize| ports.join(format!("modem{n}"));

    // Modems 1-3 answer at once; 4-6 never find the network (they stay in "searching"), so
    // the run is still busy with them when it is killed.
    let mut emulators: Vec<Option<Emulator>> = (1..=6)
        .map(|n| {
            let imei = IMEIS[n - 1];
            let mut args = vec!["--imei", imei];
            if n > 3 {
                args.extend(["--search-polls", "1000000"]);
            }
            Some(Emulator::spawn(&link(n), &args))
        })
        .collect();

    let recipe = provision_recipe();
    let glob = format!("{}/modem*", ports.display());
    let mut run = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .args(["run", recipe.to_str().unwrap(), "--port", &glob])
        .arg("--report")
        .arg(&report)
        .arg("--transcript-dir")
        .arg(&logs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + GUARD;
    while complete_lines(&report) < 3 {
        if let Ok(Some(status)) = run.try_wait() {
            panic!("the run ended before it was killed: {status}");
        }
        assert!(Instant::now() < end, "hang guard: no three records");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run.kill().unwrap(); // SIGKILL: no chance to flush anything
    run.wait().unwrap();

    // Every finished device's record is there, whole.
    let after_kill = std::fs::read_to_string(&report).unwrap();
    assert!(after_kill.ends_with('\n'));
    let records = read_jsonl(&report);
    assert_eq!(records.len(), 3, "{after_kill}");
    let mut first: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            assert_eq!(r["verdict"], "passed", "{r}");
            (
                r["device"].as_str().unwrap().to_string(),
                r["imei"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    first.sort();
    assert_eq!(
        first,
        (1..=3)
            .map(|n| (format!("modem{n}"), IMEIS[n - 1].to_string()))
            .collect::<Vec<_>>()
    );
    let first_run = records[0]["run"].as_str().unwrap().to_string();

    // The line restarts: modems 4-6 are power-cycled and now find the network; modem 1 is
    // plugged into another hub port (modem9).
    for n in 4..=6 {
        emulators[n - 1] = None;
        emulators[n - 1] = Some(Emulator::spawn(&link(n), &["--imei", IMEIS[n - 1]]));
    }
    emulators[0] = None;
    emulators[0] = Some(Emulator::spawn(&link(9), &["--imei", IMEIS[0]]));

    let junit_path = dir.path().join("line.xml");
    let csv_path = dir.path().join("line.csv");
    let out = sim7k(&[
        "run",
        recipe.to_str().unwrap(),
        "--port",
        &glob,
        "--report",
        report.to_str().unwrap(),
        "--resume",
        "--junit",
        junit_path.to_str().unwrap(),
        "--csv",
        csv_path.to_str().unwrap(),
        "--transcript-dir",
        logs.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for n in [9, 2, 3] {
        let skip = stderr
            .lines()
            .find(|l| l.starts_with("SKIP") && l.contains(&format!("modem{n} ")))
            .unwrap_or_else(|| panic!("modem{n} not skipped:\n{stderr}"));
        assert!(skip.contains(&first_run), "{skip}");
    }

    // The report grew by exactly the three devices that had not passed; the old records
    // are untouched.
    let now = std::fs::read_to_string(&report).unwrap();
    assert!(now.starts_with(&after_kill));
    let records = read_jsonl(&report);
    assert_eq!(records.len(), 6, "{now}");
    let new: Vec<&serde_json::Value> = records[3..].iter().collect();
    let mut new_devices: Vec<&str> = new.iter().map(|r| r["device"].as_str().unwrap()).collect();
    new_devices.sort();
    assert_eq!(new_devices, ["modem4", "modem5", "modem6"]);
    let second_run = new[0]["run"].as_str().unwrap().to_string();
    assert_ne!(second_run, first_run);
    for r in &new {
        assert_eq!(r["verdict"], "passed", "{r}");
        assert_eq!(r["run"], second_run.as_str());
        let n: usize = r["device"].as_str().unwrap()["modem".len()..]
            .parse()
            .unwrap();
        assert_eq!(r["imei"], IMEIS[n - 1]);
        // The killed run's transcript is kept; the new one has its own file.
        let t = r["transcript"].as_str().unwrap();
        assert!(t.ends_with(&format!("modem{n}.2.log")), "{t}");
        assert!(logs.join(format!("modem{n}.log")).exists());
    }
    // Skipped devices did not get a new transcript.
    assert!(!logs.join("modem2.2.log").exists());
    assert!(!logs.join("modem9.log").exists());

    // JUnit and CSV: every device of this run, the skipped ones with their earlier record.
    let (cases, counts) = junit(&std::fs::read_to_string(&junit_path).unwrap());
    assert_eq!(counts, (6, 0, 0));
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    // modem9 is IMEI 1, whose passed record was made on modem1.
    assert_eq!(
        names,
        ["modem1", "modem2", "modem3", "modem4", "modem5", "modem6"]
    );
    let rows = csv_records(&std::fs::read_to_string(&csv_path).unwrap());
    assert_eq!(rows.len(), 6);
    let old_rows = rows.iter().filter(|r| r["run"] == first_run).count();
    let new_rows = rows.iter().filter(|r| r["run"] == second_run).count();
    assert_eq!((old_rows, new_rows), (3, 3));
    let mut imeis: Vec<&str> = rows.iter().map(|r| r["imei"].as_str()).collect();
    imeis.sort();
    let mut want = IMEIS.to_vec();
    want.sort();
    assert_eq!(imeis, want);
    drop(emulators);
}
