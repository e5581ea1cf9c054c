//! Factory line: one recipe on many modems at once.
//!
//! [`run`] starts one thread per [`Device`] (blocking serial IO; dependencies.md §3). Each
//! thread opens its own port and builds its own [`Runner`] with its own script host,
//! [`Transcript`] and vars, so a device that fails, hangs or vanishes only ends its own run.
//! What happens is reported through [`FleetEvents`] (progress, records) as it happens; the
//! outcome of every device comes back from [`run`] in the order the devices were given.
//!
//! * [`ports`]: `--port` values, globs and `--ports-file` turned into devices.
//! * [`identity`]: distinct, valid IMEI/ICCID/IMSI for emulated fleets.
//! * [`progress`]: the multi-device console (indicatif bars on a terminal, plain lines
//!   otherwise).
//!
//! `--resume`: when [`FleetOptions::skip_passed`] is set, each device's IMEI is probed first
//! (start-up sync, then `AT+CGSN`); a device whose IMEI already has a passed record is
//! skipped.

pub mod identity;
pub mod ports;
pub mod progress;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use crate::recipe::load::{LoadOptions, LoadedRecipe, load_str};
use crate::report::{DeviceRecord, OPEN_STEP};
use crate::runner::{Observer, RunOptions, Runner, Silent, Verdict};
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
pub struct Job<'a> {
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
    /// Set to stop every device (Ctrl-C).
    pub interrupt: Option<Arc<AtomicBool>>,
    /// `--resume`: by IMEI, the earlier records that passed (the latest record of each
    /// IMEI); devices found here are skipped.
    pub skip_passed: Option<BTreeMap<String, DeviceRecord>>,
    /// Identifies this invocation in the records.
    pub run_id: String,
}

/// What became of one device.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The recipe ran (or the port could not be opened): its new record.
    Ran(DeviceRecord),
    /// Skipped by `--resume`: the earlier passed record of its IMEI.
    Skipped(DeviceRecord),
}

impl Outcome {
    /// The record that describes the device's state (new or earlier).
    pub fn record(&self) -> &DeviceRecord {
        match self {
            Outcome::Ran(r) | Outcome::Skipped(r) => r,
        }
    }

    /// The exit code this device contributes (a skipped device passed before).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Ran(r) => r.exit_code,
            Outcome::Skipped(_) => 0,
        }
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

/// Run every job in parallel, one thread each; returns the outcomes in job order.
pub fn run(jobs: &[Job<'_>], options: &FleetOptions, events: &dyn FleetEvents) -> Vec<Outcome> {
    let probe = match &options.skip_passed {
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
    std::thread::scope(|scope| {
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
                let failed = |reason: String| {
                    let now = SystemTime::now();
                    let record = DeviceRecord::not_started(
                        &job.device.port,
                        &job.device.label,
                        job.recipe,
                        Verdict::IoError,
                        OPEN_STEP,
                        &reason,
                        &options.run_id,
                        now,
                        now,
                    );
                    events.finished(job.device, &record);
                    Outcome::Ran(record)
                };
                match spawned {
                    Ok(h) => match h.join() {
                        Ok(outcome) => outcome,
                        Err(_) => failed("the device thread died".into()),
                    },
                    Err(e) => failed(format!("cannot start a thread for this device: {e}")),
                }
            })
            .collect()
    })
}

/// Run one device; a panic (a bug) becomes a failed record instead of ending the fleet.
fn guarded(
    job: &Job<'_>,
    options: &FleetOptions,
    probe: Option<&LoadedRecipe>,
    events: &dyn FleetEvents,
) -> Outcome {
    let started = SystemTime::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_device(job, options, probe, events)
    }));
    match result {
        Ok(o) => o,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            let record = DeviceRecord::not_started(
                &job.device.port,
                &job.device.label,
                job.recipe,
                Verdict::Failed,
                "internal",
                &format!("internal error (a bug in sim7k, please report it): {msg}"),
                &options.run_id,
                started,
                SystemTime::now(),
            );
            events.finished(job.device, &record);
            Outcome::Ran(record)
        }
    }
}

fn run_device(
    job: &Job<'_>,
    options: &FleetOptions,
    probe: Option<&LoadedRecipe>,
    events: &dyn FleetEvents,
) -> Outcome {
    let device = job.device;
    let started = SystemTime::now();
    let not_started = |verdict: Verdict, step: &str, reason: String| {
        let record = DeviceRecord::not_started(
            &device.port,
            &device.label,
            job.recipe,
            verdict,
            step,
            &reason,
            &options.run_id,
            started,
            SystemTime::now(),
        );
        events.finished(device, &record);
        Outcome::Ran(record)
    };
    // The recipe's deadline bounds opening the port too (a `tcp://` connect).
    let open_by = job
        .recipe
        .deadline
        .map(|d| crate::util::time::later(Instant::now(), d));
    let mut port = match crate::transport::open(&device.port, options.baud, open_by) {
        Ok(p) => p,
        Err(e) => return not_started(Verdict::IoError, OPEN_STEP, e.to_string()),
    };

    let mut probed: Option<String> = None;
    if let (Some(passed), Some(probe)) = (&options.skip_passed, probe) {
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
        if report.verdict == Verdict::Interrupted {
            return not_started(Verdict::Interrupted, "IMEI probe", "interrupted".into());
        }
        probed = report.captures.get("imei").cloned();
        if let Some(imei) = &probed
            && let Some(previous) = passed.get(imei)
        {
            events.skipped(device, imei, previous);
            return Outcome::Skipped(previous.clone());
        }
    }

    let start = Instant::now();
    let (mut transcript, transcript_path) = match &options.transcript_dir {
        Some(dir) => match create_transcript(dir, &device.label, start) {
            Ok((t, p)) => (t, Some(p)),
            Err(e) => {
                return not_started(
                    Verdict::IoError,
                    "transcript",
                    format!(
                        "cannot write a transcript in {}: {e} (no AT command was sent)",
                        dir.display()
                    ),
                );
            }
        },
        None => (Transcript::memory(start), None),
    };
    if let Some(imei) = &probed {
        transcript.note(&format!("IMEI probe: {imei} (no passed record: running)"));
    }
    let mut host = crate::script::Host::new(job.scripts.clone());
    let report = {
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
    let record = DeviceRecord::from_run(
        &device.port,
        &device.label,
        job.recipe,
        &report,
        probed.as_deref(),
        transcript_path.as_deref(),
        &options.run_id,
        SystemTime::now(),
    );
    events.finished(device, &record);
    Outcome::Ran(record)
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
