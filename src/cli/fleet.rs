//! `sim7k run` on several devices: `--port A --port B`, `--port '/dev/ttyUSB*'`,
//! `--ports-file FILE`, or `--emulate --emulate-count N`; records with `--report`, `--junit`,
//! `--csv`; `--resume`.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use super::{EmulateMode, RunArgs, compile_scripts, load_recipe};
use crate::emulator::{Fault, PtyEmulator};
use crate::exit::Exit;
use crate::fleet::progress::{ConsoleMode, Progress};
use crate::fleet::{Device, DeviceJob, FleetEvents, FleetOptions};
use crate::recipe::load::LoadedRecipe;
use crate::report::DeviceRecord;
use crate::report::jsonl::JsonlWriter;
use crate::runner::Observer;
use crate::script::CompiledScripts;

/// Most emulated modems `--emulate-count` starts (each holds a few file descriptors and
/// threads).
pub(super) const MAX_EMULATED: u16 = 256;

/// Whether these arguments ask for a multi-device run.
pub(super) fn wanted(args: &RunArgs) -> bool {
    args.ports.len() > 1
        || args.ports.iter().any(|p| crate::fleet::ports::is_glob(p))
        || args.ports_file.is_some()
        || args.emulate_count.is_some()
        || args.report.is_some()
        || args.junit.is_some()
        || args.csv.is_some()
        || args.transcript_dir.is_some()
        || args.resume
        || !args.record_to.is_empty()
}

/// Parse `--fault-on N:FAULT`.
pub(super) fn parse_fault_on(s: &str) -> Result<(u16, Fault), String> {
    let Some((n, spec)) = s.split_once(':') else {
        return Err(format!(
            "expected N:FAULT (device number, then a fault such as error=CIICR), got `{s}`"
        ));
    };
    let n: u16 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("`{n}` is not a device number (1, 2, …)"))?;
    let fault = spec.parse::<Fault>().map_err(|e| e.to_string())?;
    Ok((n, fault))
}

/// In-process emulated modems sharing one embedded broker; links in a temporary directory.
struct EmulatedFleet {
    dir: PathBuf,
    modems: Vec<PtyEmulator>,
    #[cfg(feature = "embedded-broker")]
    broker: Option<crate::broker::EmbeddedBroker>,
}

impl Drop for EmulatedFleet {
    fn drop(&mut self) {
        // Each stop waits for the modem's threads (up to a read timeout): stop them together.
        std::thread::scope(|s| {
            for m in self.modems.drain(..) {
                if let Err(e) = std::thread::Builder::new().spawn_scoped(s, move || m.stop()) {
                    eprintln!("warning: cannot stop an emulated modem in parallel: {e}");
                }
            }
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_fleet(
    args: &RunArgs,
    mode: EmulateMode,
    count: u16,
    secrets: &crate::redact::Secrets,
    tls: bool,
) -> Result<EmulatedFleet, String> {
    let dir = std::env::temp_dir().join(format!("sim7k-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut fleet = EmulatedFleet {
        dir: dir.clone(),
        modems: Vec::new(),
        #[cfg(feature = "embedded-broker")]
        broker: None,
    };
    let net = super::emulate::EmulatedNetwork::start(mode == EmulateMode::Broker, tls)?;
    let network = net.network.clone();
    #[cfg(feature = "embedded-broker")]
    {
        fleet.broker = net.broker;
    }
    // With --emulate-count, --emulator-log names a directory (one log per modem).
    let log_dir = args.emulate_count.and(args.emulator_log.as_ref());
    if let Some(logs) = log_dir {
        std::fs::create_dir_all(logs)
            .map_err(|e| format!("--emulator-log {}: {e}", logs.display()))?;
    }
    let digits = count.to_string().len().max(2);
    for n in 1..=count {
        let mut config = args.emulator_profile.config();
        config.identity = crate::fleet::identity::derive(&config.identity, u64::from(n - 1));
        config.seed = config.seed.wrapping_add(u64::from(n));
        config.network = network.clone();
        config.faults.extend(args.faults.iter().cloned());
        config.faults.extend(
            args.fault_on
                .iter()
                .filter(|(k, _)| *k == n)
                .map(|(_, f)| f.clone()),
        );
        let name = format!("emu{n:0digits$}");
        let link = dir.join(&name);
        let log = match log_dir {
            Some(d) => Some(d.join(format!("{name}.log"))),
            None => args.emulator_log.clone(),
        };
        let modem =
            PtyEmulator::spawn_redacted(config, Some(&link), log.as_deref(), secrets.clone())
                .map_err(|e| format!("cannot start emulated modem {n} of {count}: {e}"))?;
        fleet.modems.push(modem);
    }
    Ok(fleet)
}

/// The progress console and the JSONL writer, fed by the device threads.
struct Events<'a> {
    progress: &'a Progress,
    jsonl: Option<&'a JsonlWriter>,
    record_to: Option<&'a super::record_to::RecordTo>,
    write_errors: Mutex<Vec<String>>,
}

impl FleetEvents for Events<'_> {
    fn observer(&self, device: &Device) -> Box<dyn Observer + '_> {
        Box::new(self.progress.device(&device.label))
    }

    fn finished(&self, device: &Device, record: &DeviceRecord) {
        if let Some(w) = self.jsonl
            && let Err(e) = w.append(record)
        {
            let msg = format!(
                "error: cannot write the record of {} to {}: {e}",
                device.port,
                w.path().display()
            );
            self.progress.println(&msg);
            if let Ok(mut v) = self.write_errors.lock() {
                v.push(msg);
            }
        }
        if let Some(r) = self.record_to {
            r.submit(record);
        }
        self.progress.finished(record);
    }

    fn skipped(&self, device: &Device, imei: &str, previous: &DeviceRecord) {
        self.progress.skipped(&device.label, imei, previous);
    }
}

/// Run the recipe on every device.
pub(super) fn run(args: &RunArgs) -> Exit {
    if args.transcript.is_some() {
        eprintln!(
            "error: --transcript FILE is for a run on one port; with several devices use --transcript-dir DIR (one DIR/<device>.log each)"
        );
        return Exit::Usage;
    }
    // Mutated only to trust the embedded broker's TLS CA.
    #[cfg_attr(not(feature = "embedded-broker"), allow(unused_mut))]
    let mut base = match load_recipe(&args.recipe, &args.set) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Err(code) = super::check_output_paths(args, &base) {
        return code;
    }
    let base_scripts = match compile_scripts(&base) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut warnings: BTreeSet<String> = base.warnings.iter().map(|w| w.to_string()).collect();

    // The devices.
    let emulated = match args.emulate {
        Some(mode) => {
            let count = args.emulate_count.unwrap_or(1);
            if let Some((n, _)) = args.fault_on.iter().find(|(n, _)| *n > count) {
                eprintln!("error: --fault-on {n}:…: there are only {count} emulated devices");
                return Exit::Usage;
            }
            match start_fleet(
                args,
                mode,
                count,
                &base.vars.secrets(),
                super::uses_tls(&base),
            ) {
                Ok(f) => {
                    #[cfg(feature = "embedded-broker")]
                    super::trust_emulated_ca(f.broker.as_ref(), &mut base, args);
                    Some(f)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Exit::Io;
                }
            }
        }
        None => None,
    };
    let devices = match &emulated {
        Some(f) => f
            .modems
            .iter()
            .map(|m| {
                let port = m.port_path().display().to_string();
                Device {
                    label: crate::fleet::ports::label_of(&port),
                    port,
                    vars: Vec::new(),
                }
            })
            .collect(),
        None => match list_devices(args, &mut warnings) {
            Ok(d) => d,
            Err(code) => return code,
        },
    };
    if devices.is_empty() {
        eprintln!("error: no devices to run on");
        return Exit::Usage;
    }

    // One recipe per distinct set of device vars.
    let mut recipes: HashMap<Vec<(String, String)>, (LoadedRecipe, CompiledScripts)> =
        HashMap::new();
    for d in devices.iter().filter(|d| !d.vars.is_empty()) {
        if recipes.contains_key(&d.vars) {
            continue;
        }
        let mut set = args.set.clone();
        set.extend(d.vars.iter().cloned());
        let loaded = load_recipe(&args.recipe, &set).and_then(|r| {
            let c = compile_scripts(&r)?;
            Ok((r, c))
        });
        match loaded {
            Ok((r, c)) => {
                warnings.extend(r.warnings.iter().map(|w| w.to_string()));
                recipes.insert(d.vars.clone(), (r, c));
            }
            Err(code) => {
                eprintln!("  (with the vars of {}: {})", d.port, vars_text(&d.vars));
                return code;
            }
        }
    }
    if !args.quiet {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }

    // Earlier records, and the report file.
    let mut skip_passed = None;
    if args.resume
        && let Some(path) = &args.report
    {
        match crate::report::jsonl::read(path) {
            Ok(prev) => {
                for (line, e) in &prev.bad_lines {
                    eprintln!(
                        "warning: {}:{line}: not a record, ignored ({e})",
                        path.display()
                    );
                }
                skip_passed = Some(prev);
            }
            Err(e) => {
                eprintln!("error: cannot read the report {}: {e}", path.display());
                return Exit::Io;
            }
        }
    }
    let jsonl = match &args.report {
        Some(p) => match JsonlWriter::open(p) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("error: cannot open the report {}: {e}", p.display());
                return Exit::Io;
            }
        },
        None => None,
    };

    let jobs: Vec<DeviceJob<'_>> = devices
        .iter()
        .map(|d| {
            let (recipe, scripts) = match recipes.get(&d.vars) {
                Some((r, c)) => (r, c),
                None => (&base, &base_scripts),
            };
            DeviceJob {
                device: d,
                recipe,
                scripts,
            }
        })
        .collect();
    let started = SystemTime::now();
    let options = FleetOptions {
        baud: args.baud,
        transcript_dir: args.transcript_dir.clone(),
        interrupt: Some(super::signal::install()),
        resume: skip_passed,
        run_id: crate::fleet::run_id(started),
        ..FleetOptions::default()
    };
    let mode = ConsoleMode {
        quiet: args.quiet,
        verbose: args.verbose,
        bars: !args.quiet && std::io::stderr().is_terminal() && !super::color::dumb_terminal(),
        color: super::color::enabled(),
    };
    let progress = Progress::new(
        devices.len(),
        devices.iter().map(|d| d.label.as_str()),
        mode,
    );
    progress.info(&format!(
        "{} on {} device{} (run {})",
        base.name,
        devices.len(),
        if devices.len() == 1 { "" } else { "s" },
        options.run_id
    ));
    let record_to = match super::record_to::start(args, &options.run_id, jsonl.as_ref()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let clock = Instant::now();
    let events = Events {
        progress: &progress,
        jsonl: jsonl
            .as_ref()
            .or(record_to.as_ref().and_then(|r| r.writer())),
        record_to: record_to.as_ref(),
        write_errors: Mutex::new(Vec::new()),
    };
    let result = match &record_to {
        Some(r) => r.run_with(&progress, || crate::fleet::run(&jobs, &options, &events)),
        None => crate::fleet::run(&jobs, &options, &events),
    };
    super::save_tls_session_caches(&base);
    for (r, _) in recipes.values() {
        super::save_tls_session_caches(r);
    }
    let wall = clock.elapsed();
    let write_failed = events
        .write_errors
        .into_inner()
        .map(|v| !v.is_empty())
        .unwrap_or(true);
    progress.finish(wall);
    let mut worst = result.exit().code();
    if write_failed {
        worst = worst.max(Exit::Io.code());
    }
    let sinks = record_to.as_ref().map(|r| {
        let (code, json) = r.finish();
        worst = worst.max(code.code());
        json
    });

    // JUnit and CSV: one entry per device of this run, consistent with the JSONL.
    let records: Vec<DeviceRecord> = result.records();
    for (imei, ports) in shared_imeis(&records) {
        eprintln!(
            "warning: IMEI {imei} answered on {}: several ports of one modem? Give only its AT port (see `sim7k ports`, the USB interface number).",
            ports.join(" and ")
        );
    }
    let mut written = Vec::new();
    if let Some(p) = &args.junit {
        written.push(crate::report::junit::write(
            p,
            &records,
            &base.name,
            wall.as_secs_f64(),
        ));
    }
    if let Some(p) = &args.csv {
        written.push(crate::report::csv::write(p, &records));
    }
    for e in written.into_iter().filter_map(Result::err) {
        eprintln!("error: {e}");
        worst = worst.max(e.kind().code());
    }
    let passed_now = result.counts.passed;
    let mut run_secrets = base.vars.secrets();
    for (r, _) in recipes.values() {
        run_secrets.extend(&r.vars.secrets());
    }
    let broker = emulated
        .as_ref()
        .map(|f| broker_summary(f, passed_now.max(1), args.quiet, &run_secrets));
    drop(emulated);

    if args.json {
        let counts = result.counts;
        let mut value = serde_json::json!({
            "recipe": base.name,
            "run": options.run_id,
            "devices": counts.devices,
            "passed": counts.passed,
            "skipped": counts.skipped,
            "failed": counts.failed,
            "interrupted": counts.interrupted,
            "exit_code": worst,
            "seconds": wall.as_secs_f64(),
            "records": records,
        });
        if let (Some(b), Some(obj)) = (broker, value.as_object_mut()) {
            obj.insert("emulator".into(), b);
        }
        if let (Some(s), Some(obj)) = (sinks, value.as_object_mut()) {
            obj.insert("record_to".into(), s);
        }
        super::print_json(&value);
    }
    exit_from_code(worst)
}

/// IMEIs that more than one port of this run reported, with those ports.
fn shared_imeis(records: &[DeviceRecord]) -> Vec<(String, Vec<String>)> {
    let mut by_imei: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for r in records {
        if let Some(imei) = &r.imei {
            by_imei.entry(imei).or_default().push(r.port.clone());
        }
    }
    by_imei
        .into_iter()
        .filter(|(_, ports)| ports.len() > 1)
        .map(|(imei, ports)| (imei.to_string(), ports))
        .collect()
}

fn exit_from_code(code: u8) -> Exit {
    [
        Exit::Success,
        Exit::StepFailed,
        Exit::Usage,
        Exit::Timeout,
        Exit::Io,
        Exit::Interrupted,
    ]
    .into_iter()
    .find(|e| e.code() == code)
    .unwrap_or(Exit::StepFailed)
}

fn vars_text(vars: &[(String, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn list_devices(args: &RunArgs, warnings: &mut BTreeSet<String>) -> Result<Vec<Device>, Exit> {
    let file_text = match &args.ports_file {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some((p.display().to_string(), t)),
            Err(e) => {
                eprintln!("error: cannot read the ports file {}: {e}", p.display());
                return Err(Exit::Usage);
            }
        },
        None => None,
    };
    if args.ports.is_empty() && file_text.is_none() {
        eprintln!(
            "error: no port given: use --port PATH (repeatable, or a glob such as '/dev/ttyUSB*'), --ports-file FILE, or --emulate --emulate-count N"
        );
        return Err(Exit::Usage);
    }
    match crate::fleet::ports::devices(
        &args.ports,
        file_text.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
    ) {
        Ok((devices, w)) => {
            warnings.extend(w);
            Ok(devices)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(Exit::Usage)
        }
    }
}

/// What the embedded broker received, as JSON (and a count on stderr); `secrets` are hidden.
/// Waits up to 300 ms for publishes still in flight, less once `expected` arrived.
fn broker_summary(
    fleet: &EmulatedFleet,
    expected: usize,
    quiet: bool,
    secrets: &crate::redact::Secrets,
) -> serde_json::Value {
    #[cfg(feature = "embedded-broker")]
    if let Some(b) = &fleet.broker {
        let got = b.wait_for(expected, std::time::Duration::from_millis(300));
        if !quiet {
            eprintln!(
                "embedded broker ({}) received {} message{}",
                b.addr(),
                got.len(),
                if got.len() == 1 { "" } else { "s" }
            );
        }
        let mut topics: std::collections::BTreeMap<String, usize> =
            std::collections::BTreeMap::new();
        for m in &got {
            *topics.entry(m.shown_topic(secrets)).or_default() += 1;
        }
        return serde_json::json!({
            "broker": b.addr().to_string(),
            "messages": got.len(),
            "topics": topics,
        });
    }
    let _ = (fleet, expected, quiet, secrets);
    serde_json::json!({ "network": "real hosts" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_on_parses() {
        let (n, f) = parse_fault_on("3:error=CIICR:2").unwrap();
        assert_eq!(n, 3);
        assert_eq!(f, "error=CIICR:2".parse::<Fault>().unwrap());
        assert!(
            parse_fault_on("0:silent")
                .unwrap_err()
                .contains("device number")
        );
        assert!(parse_fault_on("silent").unwrap_err().contains("N:FAULT"));
        assert!(parse_fault_on("2:bogus").unwrap_err().contains("bogus"));
    }

    #[test]
    fn shared_imeis_are_found() {
        let rec = |port: &str, imei: Option<&str>| {
            let mut r = crate::report::tests::sample("x", crate::job::Verdict::Passed);
            r.port = port.into();
            r.imei = imei.map(str::to_string);
            r
        };
        let records = [
            rec("/dev/ttyUSB2", Some("490154203237518")),
            rec("/dev/ttyUSB3", Some("490154203237518")),
            rec("/dev/ttyUSB7", Some("356938035643809")),
            rec("/dev/ttyUSB8", None),
            rec("/dev/ttyUSB9", None),
        ];
        assert_eq!(
            shared_imeis(&records),
            [(
                "490154203237518".to_string(),
                vec!["/dev/ttyUSB2".to_string(), "/dev/ttyUSB3".to_string()]
            )]
        );
    }

    #[test]
    fn exit_codes_map_back() {
        for e in [
            Exit::Success,
            Exit::StepFailed,
            Exit::Usage,
            Exit::Timeout,
            Exit::Io,
            Exit::Interrupted,
        ] {
            assert_eq!(exit_from_code(e.code()), e);
        }
    }
}
