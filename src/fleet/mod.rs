//! Factory line: one recipe on many modems at once; a single device is a fleet of one.
//!
//! [`run`] starts one thread per [`DeviceJob`] (blocking serial IO). Each thread opens its
//! own port and drives its own [`crate::job::Job`] (through the [`Runner`]) with its own
//! script host, [`Transcript`] and vars, so a device that fails, hangs or vanishes only ends
//! its own run. What happens is reported through [`FleetEvents`] (a per-device observer,
//! records) as it happens; the [`FleetResult`] comes back from [`run`] with every device's
//! [`DeviceOutcome`] in the order the devices were given, and the counts (passed, failed,
//! interrupted, skipped) a summary prints.
//!
//! * [`ports`]: `--port` values, globs and `--ports-file` turned into devices.
//! * [`identity`]: distinct, valid IMEI/ICCID/IMSI for emulated fleets.
//! * [`progress`]: the multi-device console (indicatif bars on a terminal, plain lines
//!   otherwise).
//!
//! `--resume`: when [`FleetOptions::resume`] holds the earlier records, each device's IMEI is
//! probed first (start-up sync, then `AT+CGSN`); a device whose latest record for this job
//! (same recipe hash and non-secret vars, see [`crate::job::RecipeIdentity`]) passed is
//! skipped.

pub mod identity;
pub mod ports;
pub mod progress;

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::exit::Exit;
use crate::job::{RecipeIdentity, RunFailure, RunOutcome, Verdict};
use crate::recipe::load::{LoadOptions, LoadedRecipe, load_str};
use crate::report::jsonl::Previous;
use crate::report::{DeviceRecord, OPEN_STEP, RecordContext};
use crate::runner::{Observer, RunOptions, Runner, Silent, StopFlag};
use crate::script::CompiledScripts;
use crate::transcript::Transcript;

/// Stack of a device thread (the main thread's size: Rhai recursion is bounded by the
/// sandbox, not by a small thread stack).
const DEVICE_STACK: usize = 8 << 20;

/// One modem of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// What to open: a serial device path or `tcp://host:port`.
    pub port: String,
    /// Short unique name (port basename), for output and file names.
    pub label: String,
    /// Vars for this device only (`--ports-file` lines: `PORT key=value ...`).
    pub vars: Vec<(String, String)>,
}

/// A device with the recipe it runs.
#[derive(Debug, Clone, Copy)]
pub struct DeviceJob<'a> {
    /// The device.
    pub device: &'a Device,
    /// Its recipe (loaded with its own vars).
    pub recipe: &'a LoadedRecipe,
    /// The recipe's compiled scripts.
    pub scripts: &'a CompiledScripts,
}

/// Settings shared by every device of a run.
#[derive(Clone, Default)]
pub struct FleetOptions {
    /// Baud rate of serial ports.
    pub baud: u32,
    /// Write each device's transcript to `DIR/<label>.log` (never overwriting: a later run
    /// in the same directory writes `<label>.2.log`, …).
    pub transcript_dir: Option<PathBuf>,
    /// Write the transcript to this file (created or truncated): for a fleet of one
    /// (`--transcript FILE`). With several devices they would share it: use
    /// `transcript_dir`.
    pub transcript_file: Option<PathBuf>,
    /// Stops every device (Ctrl-C, SIGTERM, a closed output).
    pub interrupt: Option<StopFlag>,
    /// `--resume`: the earlier records. A device whose latest record for its job passed is
    /// skipped.
    pub resume: Option<Previous>,
    /// Identifies this invocation in the records.
    pub run_id: String,
}

/// What became of one device.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceOutcome {
    /// The recipe ran (or the port could not be opened): its outcome, and the record
    /// written for it (a view of the outcome).
    Ran {
        /// The run's outcome.
        outcome: Box<RunOutcome>,
        /// Its record.
        record: DeviceRecord,
    },
    /// Skipped by `--resume`.
    Skipped {
        /// The IMEI the probe read.
        imei: String,
        /// The earlier passed record of this IMEI for this job.
        previous: DeviceRecord,
    },
}

impl DeviceOutcome {
    /// The record that describes the device's state (new or earlier).
    pub fn record(&self) -> &DeviceRecord {
        match self {
            DeviceOutcome::Ran { record, .. } => record,
            DeviceOutcome::Skipped { previous, .. } => previous,
        }
    }

    /// The run's outcome (`None` when skipped).
    pub fn outcome(&self) -> Option<&RunOutcome> {
        match self {
            DeviceOutcome::Ran { outcome, .. } => Some(outcome),
            DeviceOutcome::Skipped { .. } => None,
        }
    }

    /// The exit code this device contributes (a skipped device passed before).
    pub fn exit(&self) -> Exit {
        match self {
            DeviceOutcome::Ran { outcome, .. } => outcome.exit(),
            DeviceOutcome::Skipped { .. } => Exit::Success,
        }
    }
}

/// How many devices did what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Devices in the run.
    pub devices: usize,
    /// Ran and passed.
    pub passed: usize,
    /// Ran and failed (a step, a timeout, the port, a recipe error).
    pub failed: usize,
    /// Stopped by Ctrl-C, a signal or a closed output.
    pub interrupted: usize,
    /// Skipped by `--resume` (passed this job before).
    pub skipped: usize,
}

/// The result of a fleet run.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetResult {
    /// Every device's outcome, in the order the devices were given.
    pub devices: Vec<DeviceOutcome>,
    /// The counts.
    pub counts: Counts,
}

impl FleetResult {
    /// The result of these device outcomes.
    pub fn new(devices: Vec<DeviceOutcome>) -> FleetResult {
        let mut counts = Counts {
            devices: devices.len(),
            ..Counts::default()
        };
        for d in &devices {
            match d {
                DeviceOutcome::Skipped { .. } => counts.skipped += 1,
                DeviceOutcome::Ran { outcome, .. } => match outcome.verdict {
                    Verdict::Passed => counts.passed += 1,
                    Verdict::Interrupted => counts.interrupted += 1,
                    _ => counts.failed += 1,
                },
            }
        }
        FleetResult { devices, counts }
    }

    /// The worst exit code of the devices (interrupted is the worst).
    pub fn exit(&self) -> Exit {
        self.devices
            .iter()
            .map(DeviceOutcome::exit)
            .max()
            .unwrap_or(Exit::Success)
    }

    /// True when a device was interrupted (the summary then says so).
    pub fn interrupted(&self) -> bool {
        self.counts.interrupted > 0
    }

    /// The records of every device, in order.
    pub fn records(&self) -> Vec<DeviceRecord> {
        self.devices.iter().map(|d| d.record().clone()).collect()
    }
}

/// Receives what happens during a fleet run. Called from the device threads.
pub trait FleetEvents: Sync {
    /// The observer of one device's run (created in the device's thread).
    fn observer(&self, device: &Device) -> Box<dyn Observer + '_>;
    /// A device finished; its record is final. Write it before returning.
    fn finished(&self, device: &Device, record: &DeviceRecord);
    /// A device was skipped by `--resume` (`previous` is its earlier passed record).
    fn skipped(&self, device: &Device, imei: &str, previous: &DeviceRecord);
}

/// Events that do nothing (tests, library use).
pub struct NoEvents;

impl FleetEvents for NoEvents {
    fn observer(&self, _device: &Device) -> Box<dyn Observer + '_> {
        Box::new(Silent)
    }
    fn finished(&self, _device: &Device, _record: &DeviceRecord) {}
    fn skipped(&self, _device: &Device, _imei: &str, _previous: &DeviceRecord) {}
}

/// A run identifier: UTC start time and process id (`20251125T153200Z-4242`).
pub fn run_id(now: SystemTime) -> String {
    let t = humantime::format_rfc3339_seconds(now).to_string();
    let compact: String = t.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{}", std::process::id())
}

/// Seconds since the Unix epoch.
fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Run every job in parallel, one thread each.
pub fn run(
    jobs: &[DeviceJob<'_>],
    options: &FleetOptions,
    events: &dyn FleetEvents,
) -> FleetResult {
    let probe = match &options.resume {
        Some(_) => match probe_recipe() {
            Ok(p) => Some(p),
            Err(e) => {
                // The probe recipe is built in; failing to load it is a bug. Run everything.
                eprintln!("warning: cannot prepare the IMEI probe ({e}); running every device");
                None
            }
        },
        None => None,
    };
    let probe = probe.as_ref();
    let devices = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| {
                let spawned = std::thread::Builder::new()
                    .name(format!("sim7k-{}", job.device.label))
                    .stack_size(DEVICE_STACK)
                    .spawn_scoped(scope, move || guarded(job, options, probe, events));
                (job, spawned)
            })
            .collect();
        handles
            .into_iter()
            .map(|(job, spawned)| {
                let failed = |cause: RunFailure| {
                    let now = epoch_seconds(SystemTime::now());
                    not_started(job, options, events, OPEN_STEP, cause, now)
                };
                match spawned {
                    Ok(h) => match h.join() {
                        Ok(outcome) => outcome,
                        Err(_) => failed(RunFailure::Internal {
                            message: "the device thread died".into(),
                        }),
                    },
                    Err(e) => failed(RunFailure::Port {
                        message: format!("cannot start a thread for this device: {e}"),
                    }),
                }
            })
            .collect()
    });
    FleetResult::new(devices)
}

/// The outcome and record of a device whose recipe could not start; the record is handed to
/// `events` before returning.
fn not_started(
    job: &DeviceJob<'_>,
    options: &FleetOptions,
    events: &dyn FleetEvents,
    step: &str,
    cause: RunFailure,
    started: f64,
) -> DeviceOutcome {
    let seconds = (epoch_seconds(SystemTime::now()) - started).max(0.0);
    let outcome =
        RunOutcome::not_started(job.recipe, &job.device.port, step, cause, started, seconds);
    let record = DeviceRecord::of(
        &outcome,
        &RecordContext {
            device: &job.device.label,
            total_steps: job.recipe.program.steps.len(),
            probed_imei: None,
            transcript: None,
            run: &options.run_id,
        },
    );
    events.finished(job.device, &record);
    DeviceOutcome::Ran {
        outcome: Box::new(outcome),
        record,
    }
}

/// Run one device; a panic (a bug) becomes a failed record instead of ending the fleet.
fn guarded(
    job: &DeviceJob<'_>,
    options: &FleetOptions,
    probe: Option<&LoadedRecipe>,
    events: &dyn FleetEvents,
) -> DeviceOutcome {
    let started = epoch_seconds(SystemTime::now());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_device(job, options, probe, events)
    }));
    match result {
        Ok(o) => o,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            let cause = RunFailure::Internal { message };
            not_started(job, options, events, "internal", cause, started)
        }
    }
}

fn run_device(
    job: &DeviceJob<'_>,
    options: &FleetOptions,
    probe: Option<&LoadedRecipe>,
    events: &dyn FleetEvents,
) -> DeviceOutcome {
    let device = job.device;
    let started = epoch_seconds(SystemTime::now());
    // The recipe's deadline bounds opening the port too (a `tcp://` connect).
    let open_by = job
        .recipe
        .deadline
        .map(|d| crate::util::time::later(Instant::now(), d));
    let mut port = match crate::transport::open(&device.port, options.baud, open_by) {
        Ok(p) => p,
        Err(e) => {
            let cause = RunFailure::Port {
                message: e.to_string(),
            };
            return not_started(job, options, events, OPEN_STEP, cause, started);
        }
    };

    let mut probed: Option<String> = None;
    if let (Some(previous), Some(probe)) = (&options.resume, probe) {
        let mut scratch = Transcript::memory(Instant::now());
        let report = Runner::new(
            probe,
            port.as_mut(),
            &mut scratch,
            &mut Silent,
            RunOptions {
                interrupt: options.interrupt.clone(),
                port: device.port.clone(),
            },
        )
        .run();
        if let Some(f) = report
            .failure
            .as_ref()
            .filter(|_| report.verdict == Verdict::Interrupted)
        {
            let cause = f.cause.clone();
            return not_started(job, options, events, "IMEI probe", cause, started);
        }
        probed = report.captures.get("imei").cloned();
        if let Some(imei) = &probed {
            let identity = RecipeIdentity::of(job.recipe);
            if let Some(earlier) = previous.passed_for(imei, &identity) {
                events.skipped(device, imei, earlier);
                return DeviceOutcome::Skipped {
                    imei: imei.clone(),
                    previous: earlier.clone(),
                };
            }
        }
    }

    let start = Instant::now();
    let transcript = match (&options.transcript_file, &options.transcript_dir) {
        (Some(file), _) => Transcript::create(file, start)
            .map(|t| (t, Some(file.clone())))
            .map_err(|e| (file.clone(), e)),
        (None, Some(dir)) => create_transcript(dir, &device.label, start)
            .map(|(t, p)| (t, Some(p)))
            .map_err(|e| (dir.clone(), e)),
        (None, None) => Ok((Transcript::memory(start), None)),
    };
    let (mut transcript, transcript_path) = match transcript {
        Ok(pair) => pair,
        Err((path, e)) => {
            let cause = RunFailure::Output {
                message: format!(
                    "cannot write a transcript in {}: {e} (no AT command was sent)",
                    path.display()
                ),
            };
            return not_started(job, options, events, "transcript", cause, started);
        }
    };
    if let Some(imei) = &probed {
        transcript.note(&format!("IMEI probe: {imei} (no passed record: running)"));
    }
    let mut host = crate::script::Host::new(job.scripts.clone());
    let outcome = {
        let mut observer = events.observer(device);
        Runner::new(
            job.recipe,
            port.as_mut(),
            &mut transcript,
            observer.as_mut(),
            RunOptions {
                interrupt: options.interrupt.clone(),
                port: device.port.clone(),
            },
        )
        .with_scripts(&mut host)
        .run()
    };
    drop(transcript);
    drop(port);
    let record = DeviceRecord::of(
        &outcome,
        &RecordContext {
            device: &device.label,
            total_steps: job.recipe.program.steps.len(),
            probed_imei: probed.as_deref(),
            transcript: transcript_path.as_deref(),
            run: &options.run_id,
        },
    );
    events.finished(device, &record);
    DeviceOutcome::Ran {
        outcome: Box::new(outcome),
        record,
    }
}

/// Create `DIR/<label>.log`, or `<label>.2.log`, … when taken: an earlier run's transcript
/// (which an earlier record points to) is never overwritten.
fn create_transcript(dir: &Path, label: &str, start: Instant) -> io::Result<(Transcript, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    for n in 1..10_000u32 {
        let name = if n == 1 {
            format!("{label}.log")
        } else {
            format!("{label}.{n}.log")
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return Ok((Transcript::create(&path, start)?, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "too many transcripts named {label}.*.log"
    )))
}

/// The built-in recipe `--resume` runs first on every device: sync, then `AT+CGSN`.
pub const PROBE_RECIPE: &str = r#"
name: IMEI probe
timeout: 3s
steps:
  - name: IMEI
    send: AT+CGSN
    capture: '^(?P<imei>\d{15})$'
    retries: 2
    retry_delay: 500ms
"#;

fn probe_recipe() -> Result<LoadedRecipe, String> {
    load_str("<imei probe>", PROBE_RECIPE, &LoadOptions::default()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_probe_recipe_loads() {
        let r = probe_recipe().unwrap();
        assert_eq!(r.steps.len(), 1);
        assert!(r.sync.enabled);
    }

    #[test]
    fn run_ids_are_compact_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_084_720);
        let id = run_id(t);
        assert!(id.starts_with("20251125T153200Z-"), "{id}");
    }

    /// Records what one device's observer saw.
    #[derive(Default)]
    struct Seen {
        said: std::sync::Mutex<Vec<String>>,
        records: std::sync::Mutex<Vec<DeviceRecord>>,
    }

    struct SeenObserver<'a>(&'a Seen);

    impl Observer for SeenObserver<'_> {
        fn say(&mut self, text: &str) {
            if let Ok(mut v) = self.0.said.lock() {
                v.push(text.to_string());
            }
        }
    }

    impl FleetEvents for Seen {
        fn observer(&self, _device: &Device) -> Box<dyn Observer + '_> {
            Box::new(SeenObserver(self))
        }
        fn finished(&self, _device: &Device, record: &DeviceRecord) {
            if let Ok(mut v) = self.records.lock() {
                v.push(record.clone());
            }
        }
        fn skipped(&self, _device: &Device, _imei: &str, _previous: &DeviceRecord) {}
    }

    /// A single device is a fleet of one: its observer sees the run, its transcript goes to
    /// the given file, its outcome (with what it said) and its record come back.
    #[test]
    fn a_single_device_is_a_fleet_of_one() {
        let emulator = crate::emulator::PtyEmulator::spawn(
            crate::emulator::EmulatorConfig::default(),
            None,
            None,
        )
        .expect("emulator");
        let dir = std::env::temp_dir().join(format!("sim7k-fleet-one-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let transcript = dir.join("one.log");
        let recipe = load_str(
            "one.yaml",
            "steps:\n  - send: AT+CGSN\n    capture: '^(?P<imei>\\d{15})$'\n  - say: \"imei {{imei}}\"\n",
            &LoadOptions::default(),
        )
        .unwrap();
        let scripts = crate::script::compile(&recipe).unwrap();
        let port = emulator.port_path().display().to_string();
        let device = Device {
            label: ports::label_of(&port),
            port,
            vars: Vec::new(),
        };
        let job = DeviceJob {
            device: &device,
            recipe: &recipe,
            scripts: &scripts,
        };
        let options = FleetOptions {
            transcript_file: Some(transcript.clone()),
            run_id: "one".into(),
            ..FleetOptions::default()
        };
        let seen = Seen::default();
        let result = run(&[job], &options, &seen);
        emulator.stop();
        assert_eq!(result.counts.passed, 1);
        assert_eq!(result.exit(), Exit::Success);
        let outcome = result.devices[0].outcome().expect("it ran");
        let imei = crate::emulator::Identity::default().imei;
        assert_eq!(outcome.said, [format!("imei {imei}")]);
        assert_eq!(seen.said.lock().unwrap().clone(), outcome.said);
        let records = seen.records.lock().unwrap().clone();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].imei.as_deref(), Some(imei.as_str()));
        assert_eq!(records[0], result.devices[0].record().clone());
        let text = std::fs::read_to_string(&transcript).unwrap();
        assert!(text.contains("> AT+CGSN"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn counts_say_interrupted() {
        let recipe = probe_recipe().unwrap();
        let outcome = |cause: Option<RunFailure>| {
            let mut o = RunOutcome::not_started(
                &recipe,
                "p",
                "s",
                RunFailure::Internal {
                    message: String::new(),
                },
                0.0,
                0.0,
            );
            match cause {
                None => {
                    o.failure = None;
                    o.verdict = Verdict::Passed;
                    o.exit_code = 0;
                }
                Some(c) => {
                    o.verdict = Verdict::of(c.kind());
                    o.exit_code = c.kind().code();
                }
            }
            let record = DeviceRecord::of(
                &o,
                &RecordContext {
                    device: "d",
                    total_steps: 1,
                    probed_imei: None,
                    transcript: None,
                    run: "r",
                },
            );
            DeviceOutcome::Ran {
                outcome: Box::new(o),
                record,
            }
        };
        let interrupted = || {
            Some(RunFailure::Interrupted(crate::job::Interrupt::Signal(
                "SIGINT".into(),
            )))
        };
        let r = FleetResult::new(vec![
            outcome(None),
            outcome(interrupted()),
            outcome(interrupted()),
            outcome(Some(RunFailure::Deadline { teardown: false })),
        ]);
        assert_eq!(
            r.counts,
            Counts {
                devices: 4,
                passed: 1,
                failed: 1,
                interrupted: 2,
                skipped: 0
            }
        );
        assert!(r.interrupted());
        assert_eq!(r.exit(), Exit::Interrupted);
    }

    #[test]
    fn transcripts_are_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("sim7k-fleet-tr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (_, a) = create_transcript(&dir, "ttyUSB0", Instant::now()).unwrap();
        let (_, b) = create_transcript(&dir, "ttyUSB0", Instant::now()).unwrap();
        assert_eq!(a.file_name().unwrap(), "ttyUSB0.log");
        assert_eq!(b.file_name().unwrap(), "ttyUSB0.2.log");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
