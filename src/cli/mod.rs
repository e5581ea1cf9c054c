//! The `sim7k` command line.

mod builtin;
pub mod color;
mod console;
pub mod emulate;
mod fleet;
mod generate;
mod logging;
mod mqtt;
mod ports;
mod record_to;
mod records;
mod signal;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::exit::Exit;
use crate::recipe::load::{LoadOptions, LoadedRecipe, load};
use crate::runner::{RunOptions, Runner};
use crate::transcript::Transcript;

/// The part of `sim7k run --help` after the exit codes.
const RUN_MORE_HELP: &str = "\
Several devices (--port repeated or a glob, --ports-file, --emulate-count, or any of
--report/--junit/--csv/--transcript-dir/--resume) run in parallel, one job per port. The exit
code is 0 when every device passed (or was skipped by --resume because it passed before),
else the highest code among the devices: 130 > 4 > 3 > 2 > 1. It is at least 4 when a record
could not be written.

Output: -v shows the AT traffic, -vv adds the MQTT packets decoded both ways, -vvv adds the
engine's events; RUST_LOG (e.g. RUST_LOG=sim7k=debug) selects library diagnostics. -q prints
only errors.

Factory line:
  sim7k run recipes/provision-sim7000.yaml --port '/dev/ttyUSB*' \\
      --report line.jsonl --junit line.xml --csv line.csv --transcript-dir logs/
  sim7k run recipes/provision-sim7000.yaml --ports-file bench.txt --report line.jsonl --resume
  sim7k run recipes/provision-sim7000.yaml --emulate --emulate-count 8 --fault-on 3:error=CIICR";

fn run_after_help() -> String {
    format!("{}\n\n{RUN_MORE_HELP}", Exit::help_text())
}

/// sim7k: run YAML recipes of AT commands on SIMCom SIM7000 modems.
#[derive(Debug, Parser)]
#[command(name = "sim7k", version, about, after_help = Exit::help_text())]
pub struct Cli {
    /// When to colour the output: `auto` colours a terminal unless NO_COLOR is set or
    /// TERM=dumb.
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    color: color::ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a recipe against a modem, or against many at once (factory line).
    #[command(after_help = run_after_help())]
    Run(RunArgs),
    /// Validate recipes (and their scripts) without touching a port.
    Check(CheckArgs),
    /// Print the JSON Schema (draft-07) of the recipe format.
    Schema,
    /// Encode or decode MQTT packets, or follow the MQTT conversation of a transcript.
    #[command(subcommand, after_help = mqtt::MQTT_EXIT_CODES)]
    Mqtt(mqtt::MqttCommand),
    /// Act as a SIM7000 on a pseudo-terminal until stopped.
    Emulate(emulate::EmulateArgs),
    /// List serial ports (USB VID:PID, interface, product where known).
    Ports(ports::PortsArgs),
    /// Factory records: push a JSONL report to PostgreSQL or MQTT; yield, failures, firmware.
    #[command(subcommand)]
    Records(records::RecordsCommand),
    /// List the built-in recipes, or write them (with their scripts) out with --extract.
    Recipes(builtin::RecipesArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(generate::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --dir.
    Man(generate::ManArgs),
}

/// Where the emulated modem's TCP connections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmulateMode {
    /// To an embedded MQTT broker in this process (works offline).
    Broker,
    /// To the real hosts named in `AT+CIPSTART`.
    Host,
}

/// Arguments of `sim7k run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The recipe file.
    pub recipe: PathBuf,
    /// Serial port (`/dev/ttyUSB2`) or `tcp://host:port` for a modem behind ser2net. Repeat it,
    /// or give a quoted glob (`'/dev/ttyUSB*'`), to run on several modems at once.
    #[arg(long = "port", short = 'p', value_name = "PORT", env = "SIM7K_PORT")]
    pub ports: Vec<String>,
    /// Read ports from FILE, one per line: `PORT [KEY=VALUE ...]` (vars for that device only;
    /// `#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub ports_file: Option<PathBuf>,
    /// Baud rate (the SIM7000 autobauds between 9600 and 115200).
    #[arg(long, default_value_t = 115_200, env = "SIM7K_BAUD")]
    pub baud: u32,
    /// Set a recipe var: `--set apn=nbiot` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::recipe::load::parse_override)]
    pub set: Vec<(String, String)>,
    /// Write a timestamped transcript of every byte to FILE (one port).
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,
    /// Write each device's transcript to `DIR/<device>.log` (never overwriting an earlier
    /// one: then `DIR/<device>.2.log`, ...).
    #[arg(long, value_name = "DIR", env = "SIM7K_TRANSCRIPT_DIR")]
    pub transcript_dir: Option<PathBuf>,
    /// Append one JSON record per device to FILE (JSON Lines), written and fsynced as each
    /// device finishes.
    #[arg(long, value_name = "FILE.jsonl")]
    pub report: Option<PathBuf>,
    /// Write a JUnit XML report (one testcase per device) when the run ends.
    #[arg(long, value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,
    /// Write a CSV report (one row per device) when the run ends.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Skip devices whose latest record in the --report file (matched by IMEI, read first from
    /// each port with AT+CGSN) passed; new records are appended to it.
    #[arg(long, requires = "report")]
    pub resume: bool,
    /// Also send each device's record, as the device finishes, to a PostgreSQL database
    /// (`postgres://USER@HOST/DB`) or an MQTT broker (`mqtt://HOST:PORT/TOPIC/PREFIX`);
    /// repeatable. A sink that is down never stops the line: see `sim7k records push`.
    #[arg(long = "record-to", value_name = "URL")]
    pub record_to: Vec<String>,
    /// Station name in the records and MQTT topics (default: the host name).
    #[arg(long, value_name = "NAME", requires = "record_to")]
    pub station: Option<String>,
    /// Exit 4 when a --record-to sink did not get every record of the run.
    #[arg(long, requires = "record_to")]
    pub record_required: bool,
    /// Print a JSON summary of the run on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print only errors (not with -v).
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show the AT traffic; -vv adds the MQTT packets decoded both ways, -vvv the engine's
    /// events.
    #[arg(long, short, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Run against the built-in SIM7000 emulator instead of a port: `--emulate` leads its
    /// TCP connections to an embedded MQTT broker, `--emulate=host` to the real hosts.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "broker", conflicts_with = "ports_file")]
    pub emulate: Option<EmulateMode>,
    /// Run on N emulated modems at once (distinct IMEIs and ICCIDs, one shared broker).
    #[arg(long, value_name = "N", requires = "emulate",
          value_parser = clap::value_parser!(u16).range(1..=i64::from(fleet::MAX_EMULATED)))]
    pub emulate_count: Option<u16>,
    /// Emulator fault to inject (repeatable): drip, error=CIICR:2, connect-fail, send-fail,
    /// peer-close-after=2s, pdp-deact-after=3s, reboot-after=5s, silent, echo-stuck, …
    #[arg(long = "fault", value_name = "FAULT", requires = "emulate")]
    pub faults: Vec<crate::emulator::Fault>,
    /// Fault for emulated modem N only (repeatable): `--fault-on 3:error=CIICR`,
    /// `--fault-on 5:silent-after=1s`. `--fault` applies to every modem.
    #[arg(long = "fault-on", value_name = "N:FAULT", requires = "emulate_count", value_parser = fleet::parse_fault_on)]
    pub fault_on: Vec<(u16, crate::emulator::Fault)>,
    /// Emulator latency profile.
    #[arg(long, value_enum, default_value = "nbiot", requires = "emulate")]
    pub emulator_profile: emulate::Profile,
    /// Write the emulator's own timestamped transcript to FILE (with --emulate-count: to
    /// FILE/emuNN.log, FILE being a directory).
    #[arg(long, value_name = "FILE", requires = "emulate")]
    pub emulator_log: Option<PathBuf>,
}

/// Arguments of `sim7k check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Recipe files.
    #[arg(required = true)]
    pub recipes: Vec<PathBuf>,
    /// Set a recipe var (used for `{{var}}` in include paths).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::recipe::load::parse_override)]
    pub set: Vec<(String, String)>,
}

/// Entry point of the `sim7k` binary.
pub fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let choice = color::from_args(&argv);
    color::init(choice);
    let parsed = Cli::command()
        .color(color::clap_choice(choice))
        .try_get_matches_from(&argv)
        .and_then(|m| {
            let mut cli = Cli::from_arg_matches(&m)?;
            settle(&m, &mut cli)?;
            Ok(cli)
        });
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    logging::init(match &cli.command {
        Command::Run(args) => args.verbose,
        _ => 0,
    });
    match cli.command {
        Command::Run(args) => run(&args).into(),
        Command::Check(args) => check(&args).into(),
        Command::Schema => {
            print!("{}", crate::recipe::schema::schema_json());
            Exit::Success.into()
        }
        Command::Emulate(args) => emulate::run(&args),
        Command::Ports(args) => ports::run(&args).into(),
        Command::Records(cmd) => records::run(&cmd).into(),
        Command::Mqtt(cmd) => mqtt::run(&cmd),
        Command::Recipes(args) => builtin::run(&args).into(),
        Command::Completions(args) => generate::completions(&args).into(),
        Command::Man(args) => generate::man(&args).into(),
    }
}

/// Settle what clap cannot: settings from the environment yield to the command line
/// (`SIM7K_PORT` is ignored when `--port`, `--ports-file` or `--emulate` is given,
/// `SIM7K_TRANSCRIPT_DIR` when `--transcript` is), and `--emulate` with a `--port` typed on
/// the command line is a usage error.
fn settle(matches: &clap::ArgMatches, cli: &mut Cli) -> Result<(), clap::Error> {
    use clap::parser::ValueSource;
    let Command::Run(args) = &mut cli.command else {
        return Ok(());
    };
    let Some(run) = matches.subcommand_matches("run") else {
        return Ok(());
    };
    let from_env = |id: &str| run.value_source(id) == Some(ValueSource::EnvVariable);
    if from_env("ports") && (args.emulate.is_some() || args.ports_file.is_some()) {
        args.ports.clear();
    }
    if from_env("transcript_dir") && args.transcript.is_some() {
        args.transcript_dir = None;
    }
    if args.emulate.is_some() && !args.ports.is_empty() {
        let mut cmd = Cli::command();
        let run_cmd = cmd
            .find_subcommand_mut("run")
            .map(|c| c.clone().bin_name("sim7k run"));
        return Err(run_cmd.unwrap_or(cmd).error(
            clap::error::ErrorKind::ArgumentConflict,
            "--emulate runs on the built-in emulator and cannot be used with --port \
             (drop one of them)",
        ));
    }
    Ok(())
}

fn load_recipe(path: &Path, set: &[(String, String)]) -> Result<LoadedRecipe, Exit> {
    let opts = LoadOptions {
        overrides: set.to_vec(),
        ..LoadOptions::default()
    };
    tracing::debug!(recipe = %path.display(), "loading the recipe");
    load(path, &opts).map_err(|e| {
        eprintln!("{}", render_error(&e));
        Exit::Usage
    })
}

/// A recipe error: the graphical diagnostic (source excerpt, labels) on a terminal or with
/// `--color=always`, coloured only when colour is on; one plain line otherwise.
fn render_error(e: &crate::recipe::RecipeError) -> String {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() || color::enabled() {
        e.render(color::enabled())
    } else {
        format!("error: {e}")
    }
}

fn print_warnings(recipe: &LoadedRecipe) {
    for w in &recipe.warnings {
        eprintln!("warning: {w}");
    }
}

/// Compile a recipe's scripts, printing every error.
fn compile_scripts(recipe: &LoadedRecipe) -> Result<crate::script::CompiledScripts, Exit> {
    crate::script::compile(recipe).map_err(|errors| {
        for e in errors {
            eprintln!("error: {e}");
        }
        Exit::Usage
    })
}

fn run(args: &RunArgs) -> Exit {
    if fleet::wanted(args) {
        return fleet::run(args);
    }
    let mut recipe = match load_recipe(&args.recipe, &args.set) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Err(code) = check_output_paths(args, &recipe) {
        return code;
    }
    if !args.quiet {
        print_warnings(&recipe);
    }
    let mut scripts = match compile_scripts(&recipe) {
        Ok(c) => crate::script::Host::new(c),
        Err(code) => return code,
    };
    // The emulator (and its broker) live until the end of the run.
    let emulated = match args.emulate {
        Some(mode) => match start_emulator(args, mode, recipe.vars.secrets(), uses_tls(&recipe)) {
            Ok(e) => {
                e.trust_broker(&mut recipe, args);
                Some(e)
            }
            Err(msg) => {
                eprintln!("error: {msg}");
                return Exit::Io;
            }
        },
        None => None,
    };
    let port_spec = match (args.ports.first(), &emulated) {
        (Some(p), _) => p.clone(),
        (None, Some(e)) => e.modem.port_path().display().to_string(),
        (None, None) => {
            eprintln!(
                "error: no port given: use --port PATH (or --port tcp://host:port), or --emulate to try the recipe on the built-in SIM7000 emulator"
            );
            return Exit::Usage;
        }
    };
    let interrupt = signal::install();
    let start = Instant::now();
    let mut transcript = match &args.transcript {
        Some(p) => match Transcript::create(p, start) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot write the transcript {}: {e}", p.display());
                return Exit::Io;
            }
        },
        None => Transcript::memory(start),
    };
    // The recipe's deadline bounds opening the port too (a `tcp://` connect).
    let open_by = recipe
        .deadline
        .map(|d| crate::util::time::later(Instant::now(), d));
    tracing::debug!(port = %port_spec, baud = args.baud, "opening the port");
    let mut port = match crate::transport::open(&port_spec, args.baud, open_by) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Io;
        }
    };
    let mut console = console::Console::new(args.quiet, args.verbose, &recipe.name).json(args.json);
    let options = RunOptions {
        interrupt: Some(interrupt),
        port: port_spec,
    };
    let report = Runner::new(
        &recipe,
        port.as_mut(),
        &mut transcript,
        &mut console,
        options,
    )
    .with_scripts(&mut scripts)
    .run();
    save_tls_session_caches(&recipe);
    console.finish(&report, args.transcript.as_deref());
    drop(transcript);
    drop(port);
    let broker = emulated
        .as_ref()
        .map(|e| e.summary(args.quiet, &recipe.vars.secrets()));
    if let Some(e) = emulated {
        e.modem.stop();
    }
    if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        if let (Some(b), Some(obj)) = (broker, value.as_object_mut()) {
            obj.insert("emulator".into(), b);
        }
        print_json(&value);
    }
    report.exit()
}

/// Refuse output paths that cannot work or would clobber something (exit 2), before
/// anything runs (see [`crate::output::check_outputs`]).
fn check_output_paths(args: &RunArgs, recipe: &LoadedRecipe) -> Result<(), Exit> {
    use crate::output::{Output, OutputKind};
    let log_kind = match args.emulate_count {
        Some(_) => OutputKind::EmulatorLogDir,
        None => OutputKind::EmulatorLog,
    };
    let outputs: Vec<Output<'_>> = [
        (OutputKind::Transcript, &args.transcript),
        (OutputKind::TranscriptDir, &args.transcript_dir),
        (OutputKind::Report, &args.report),
        (OutputKind::Junit, &args.junit),
        (OutputKind::Csv, &args.csv),
        (log_kind, &args.emulator_log),
    ]
    .into_iter()
    .filter_map(|(kind, p)| p.as_deref().map(|p| Output::new(kind, p)))
    .collect();
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    for (i, f) in recipe.files().into_iter().enumerate() {
        let what = if i == 0 {
            "the recipe"
        } else {
            "a file of the recipe (an include or a script)"
        };
        inputs.push((what, f));
    }
    if let Some(p) = &args.ports_file {
        inputs.push(("the ports file", p));
    }
    for p in &args.ports {
        if !p.starts_with("tcp://") && !crate::fleet::ports::is_glob(p) {
            inputs.push(("the port", Path::new(p)));
        }
    }
    crate::output::check_outputs(&outputs, &inputs).map_err(|e| {
        eprintln!("error: {e}");
        e.kind()
    })
}

/// The in-process emulator of `run --emulate`.
struct Emulated {
    modem: crate::emulator::PtyEmulator,
    #[cfg(feature = "embedded-broker")]
    broker: Option<crate::broker::EmbeddedBroker>,
}

/// Write the TLS session cache files the recipe's `tls:` steps name (`session_cache:`); a
/// file that cannot be written is a warning, never a verdict.
fn save_tls_session_caches(recipe: &LoadedRecipe) {
    for e in recipe.program.tls_clients.save_session_caches() {
        eprintln!("warning: {e}");
    }
}

/// True when `--emulate` should give the embedded broker a TLS listener.
fn uses_tls(recipe: &LoadedRecipe) -> bool {
    recipe.program.uses_tls()
}

/// Under `--emulate` with a TLS recipe: say where the embedded broker's CA is, and point the
/// recipe's `ca_file` at it (see `recipe::tls::trust_emulated_broker`).
#[cfg(feature = "embedded-broker")]
fn trust_emulated_ca(
    broker: Option<&crate::broker::EmbeddedBroker>,
    recipe: &mut LoadedRecipe,
    args: &RunArgs,
) {
    let Some((b, ca)) = broker.and_then(|b| b.ca_file().map(|ca| (b, ca))) else {
        return;
    };
    let notes = crate::recipe::tls::trust_emulated_broker(&mut recipe.vars, &args.set, ca);
    if !args.quiet {
        eprintln!(
            "embedded broker: MQTT over TLS on {} too; its CA certificate (made at start, removed at exit): {}",
            b.addr(),
            ca.display()
        );
        for n in notes {
            eprintln!("  {n}");
        }
    }
}

impl Emulated {
    /// See [`trust_emulated_ca`].
    fn trust_broker(&self, recipe: &mut LoadedRecipe, args: &RunArgs) {
        #[cfg(feature = "embedded-broker")]
        trust_emulated_ca(self.broker.as_ref(), recipe, args);
        #[cfg(not(feature = "embedded-broker"))]
        let _ = (recipe, args);
    }

    /// Print what the embedded broker received; the same as JSON. `secrets` are hidden in both.
    fn summary(&self, quiet: bool, secrets: &crate::redact::Secrets) -> serde_json::Value {
        #[cfg(feature = "embedded-broker")]
        if let Some(b) = &self.broker {
            // Give in-flight publishes a moment to land.
            let got = b.wait_for(usize::MAX, std::time::Duration::from_millis(300));
            if !quiet {
                eprintln!(
                    "embedded broker ({}) received {} message{}",
                    b.addr(),
                    got.len(),
                    if got.len() == 1 { "" } else { "s" }
                );
                for m in &got {
                    eprintln!("  {}", m.summary_line(secrets));
                }
            }
            let list: Vec<serde_json::Value> = got.iter().map(|m| m.to_json(secrets)).collect();
            return serde_json::json!({ "broker": b.addr().to_string(), "received": list });
        }
        let _ = (quiet, secrets);
        serde_json::json!({ "network": "real hosts" })
    }
}

fn start_emulator(
    args: &RunArgs,
    mode: EmulateMode,
    secrets: crate::redact::Secrets,
    tls: bool,
) -> Result<Emulated, String> {
    use crate::emulator::PtyEmulator;
    let mut config = args.emulator_profile.config();
    config.faults.extend(args.faults.iter().cloned());
    let net = emulate::EmulatedNetwork::start(mode == EmulateMode::Broker, tls)?;
    config.network = net.network.clone();
    let modem = PtyEmulator::spawn_redacted(config, None, args.emulator_log.as_deref(), secrets)
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    tracing::debug!(pty = %modem.port_path().display(), network = ?config_network_name(mode), "emulator started");
    Ok(Emulated {
        modem,
        #[cfg(feature = "embedded-broker")]
        broker: net.broker,
    })
}

fn config_network_name(mode: EmulateMode) -> &'static str {
    match mode {
        EmulateMode::Broker => "embedded broker",
        EmulateMode::Host => "real hosts",
    }
}

fn print_json(report: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    match serde_json::to_string_pretty(report) {
        Ok(s) => {
            let _ = writeln!(out, "{s}");
        }
        Err(e) => eprintln!("error: cannot encode the JSON summary: {e}"),
    }
}

fn check(args: &CheckArgs) -> Exit {
    let mut worst = Exit::Success;
    for path in &args.recipes {
        match load_recipe(path, &args.set).and_then(|r| compile_scripts(&r).map(|_| r)) {
            Ok(r) => {
                print_warnings(&r);
                println!(
                    "ok: {} ({}, {} step{})",
                    path.display(),
                    r.name,
                    r.steps.len(),
                    if r.steps.len() == 1 { "" } else { "s" }
                )
            }
            Err(code) => worst = worst.max(code),
        }
    }
    worst
}
