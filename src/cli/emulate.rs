//! `sim7k emulate`: serve an emulated SIM7000 on a pseudo-terminal until SIGINT/SIGTERM.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::emulator::{BootMode, EmulatorConfig, Fault, Network, PtyEmulator, Rat, Route};
use crate::exit::Exit;

/// Latency profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Everything immediate (tests).
    Zero,
    /// A plausible NB-IoT module (demos): CIICR ~2 s, CONNECT OK 1–3 s, SEND OK 0.5–1 s,
    /// CONNECT FAIL 75 s after CIPSTART to a host that does not answer.
    Nbiot,
}

/// Baud mode at power-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BootArg {
    /// Autobaud (factory default): no `RDY`; `+CFUN: 1`, `+CPIN: READY`, `SMS Ready` after
    /// the first AT.
    Autobaud,
    /// Fixed rate (`--baud`): `RDY`, `+CFUN: 1`, `+CPIN: READY`, `SMS Ready` at power-on.
    Fixed,
}

/// Radio access technology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RatArg {
    /// NB-IoT (`AcT` 9).
    Nbiot,
    /// LTE Cat-M1 (`AcT` 7).
    Catm,
}

/// Arguments of `sim7k emulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulateArgs {
    /// Symlink to create to the emulated port (what clients open).
    #[arg(long, value_name = "PATH")]
    pub link: PathBuf,
    /// Write the emulator's own timestamped transcript here.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// IMEI reported by AT+GSN/AT+CGSN (15 digits).
    #[arg(long)]
    pub imei: Option<String>,
    /// ICCID reported by AT+CCID (19–20 hex digits).
    #[arg(long)]
    pub iccid: Option<String>,
    /// IMSI reported by AT+CIMI (up to 15 digits).
    #[arg(long)]
    pub imsi: Option<String>,
    /// ATI text, e.g. "SIM7000G R1529".
    #[arg(long)]
    pub ati: Option<String>,
    /// Firmware revision printed after `Revision:` by AT+CGMR.
    #[arg(long)]
    pub revision: Option<String>,
    /// Operator name in AT+COPS?.
    #[arg(long)]
    pub operator: Option<String>,
    /// Signal quality (AT+CSQ rssi, 0–31 or 99).
    #[arg(long)]
    pub csq: Option<u8>,
    /// Radio access technology the module registers on.
    #[arg(long, value_enum, default_value_t = RatArg::Nbiot)]
    pub rat: RatArg,
    /// Latency profile.
    #[arg(long, value_enum, default_value_t = Profile::Zero)]
    pub profile: Profile,
    /// Baud mode at power-on.
    #[arg(long, value_enum, default_value_t = BootArg::Autobaud)]
    pub boot: BootArg,
    /// Fixed baud rate reported by AT+IPR? with --boot fixed.
    #[arg(long, default_value_t = 115200)]
    pub baud: u32,
    /// Registration queries answered "searching" before the module registers.
    #[arg(long, value_name = "N")]
    pub search_polls: Option<u32>,
    /// Minimum time the module searches before registering (e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub search_time: Option<Duration>,
    /// NB-IoT-only SIM: +CREG stays 0,0 while +CGREG/+CEREG report registered.
    #[arg(long)]
    pub nbiot_sim: bool,
    /// Firmware without the native MQTT AT+SM* commands (they answer ERROR).
    #[arg(long)]
    pub no_sm: bool,
    /// Fault to inject (repeatable), e.g. `drip`, `error=CIICR:2`, `pdp-deact-after=3s`,
    /// `connect-fail:1`, `silent-after=5s,for=10s`. See the emulator documentation.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<Fault>,
    /// Send every connection (CIPSTART, SMCONN) to HOST:PORT instead.
    #[arg(long, value_name = "HOST:PORT")]
    pub redirect: Option<String>,
    /// Send connections for HOST:PORT to ADDR:PORT (repeatable), e.g.
    /// `broker.example:1883=127.0.0.1:1883`.
    #[arg(long = "map", value_name = "HOST:PORT=ADDR:PORT")]
    pub map: Vec<String>,
    /// Start an in-process MQTT broker and send every connection to it.
    #[cfg(feature = "embedded-broker")]
    #[arg(long, conflicts_with = "redirect")]
    pub embedded_broker: bool,
}

fn resolve_one(s: &str, what: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("{what} `{s}`: {e}"))?
        .next()
        .ok_or_else(|| format!("{what} `{s}` has no address"))
}

fn check_digits(
    v: &str,
    what: &str,
    lens: std::ops::RangeInclusive<usize>,
    hex: bool,
) -> Result<(), String> {
    let ok_chars = v.chars().all(|c| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    });
    if !ok_chars || !lens.contains(&v.len()) {
        return Err(format!(
            "--{what} `{v}`: expected {}–{} {}",
            lens.start(),
            lens.end(),
            if hex { "hex digits" } else { "digits" }
        ));
    }
    Ok(())
}

impl Profile {
    /// The emulator configuration of this profile (before any other option).
    pub fn config(self) -> EmulatorConfig {
        match self {
            Profile::Zero => EmulatorConfig::default(),
            Profile::Nbiot => EmulatorConfig::nbiot_demo(),
        }
    }
}

impl EmulateArgs {
    /// The emulator configuration these arguments describe (without `--embedded-broker`,
    /// which needs a running broker: see [`run`]).
    pub fn config(&self) -> Result<EmulatorConfig, String> {
        let mut c = self.profile.config();
        if let Some(v) = &self.imei {
            check_digits(v, "imei", 15..=15, false)?;
            c.identity.imei = v.clone();
        }
        if let Some(v) = &self.iccid {
            check_digits(v, "iccid", 19..=20, true)?;
            c.identity.iccid = v.clone();
        }
        if let Some(v) = &self.imsi {
            check_digits(v, "imsi", 6..=15, false)?;
            c.identity.imsi = v.clone();
        }
        if let Some(v) = &self.ati {
            c.identity.ati = v.clone();
        }
        if let Some(v) = &self.revision {
            c.identity.revision = v.clone();
        }
        if let Some(v) = &self.operator {
            c.identity.operator = v.clone();
        }
        if let Some(v) = self.csq {
            if v > 31 && v != 99 {
                return Err(format!("--csq {v}: expected 0–31 or 99"));
            }
            c.identity.rssi = v;
        }
        c.identity.rat = match self.rat {
            RatArg::Nbiot => Rat::NbIot,
            RatArg::Catm => Rat::CatM,
        };
        c.boot = match self.boot {
            BootArg::Autobaud => BootMode::Autobaud,
            BootArg::Fixed => BootMode::Fixed(self.baud),
        };
        if let Some(n) = self.search_polls {
            c.registration.searching_polls = n;
        }
        if let Some(d) = self.search_time {
            c.registration.searching_for = d;
        }
        c.registration.nbiot_sim = self.nbiot_sim;
        c.sm_commands = !self.no_sm;
        c.faults = self.faults.clone();
        if let Some(r) = &self.redirect {
            c.network = Network::Redirect(resolve_one(r, "--redirect")?);
        } else if !self.map.is_empty() {
            let mut routes = Vec::new();
            for m in &self.map {
                let Some((from, to)) = m.split_once('=') else {
                    return Err(format!("--map `{m}`: expected HOST:PORT=ADDR:PORT"));
                };
                let Some((host, port)) = from.rsplit_once(':') else {
                    return Err(format!("--map `{m}`: `{from}` needs a port"));
                };
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("--map `{m}`: bad port `{port}`"))?;
                routes.push(Route {
                    host: host.to_string(),
                    port,
                    to: resolve_one(to, "--map target")?,
                });
            }
            c.network = Network::Map(routes);
        }
        Ok(c)
    }
}

/// Where emulated modems' TCP connections go: to the embedded broker this process starts, or
/// to the real hosts. The one bring-up behind `run --emulate`, `run --emulate-count` and
/// `sim7k emulate --embedded-broker`.
pub struct EmulatedNetwork {
    /// The emulator's network setting.
    pub network: Network,
    /// The embedded broker, running while this lives.
    #[cfg(feature = "embedded-broker")]
    pub broker: Option<crate::broker::EmbeddedBroker>,
}

impl EmulatedNetwork {
    /// Start the embedded broker (`embedded_broker`; with a TLS listener and a CA made at
    /// start when the recipe speaks `tls`), or go to the real hosts.
    pub fn start(embedded_broker: bool, tls: bool) -> Result<EmulatedNetwork, String> {
        #[cfg(not(feature = "embedded-broker"))]
        let _ = tls;
        #[cfg(feature = "embedded-broker")]
        if embedded_broker {
            let b = if tls {
                crate::broker::EmbeddedBroker::start_tls(Default::default())
            } else {
                crate::broker::EmbeddedBroker::start()
            }
            .map_err(|e| format!("cannot start the embedded MQTT broker: {e}"))?;
            tracing::debug!(addr = %b.addr(), "embedded broker started");
            return Ok(EmulatedNetwork {
                network: Network::Redirect(b.addr()),
                broker: Some(b),
            });
        }
        #[cfg(not(feature = "embedded-broker"))]
        if embedded_broker {
            return Err(
                "this build has no embedded broker (feature `embedded-broker`); use --emulate=host"
                    .into(),
            );
        }
        Ok(EmulatedNetwork {
            network: Network::Real,
            #[cfg(feature = "embedded-broker")]
            broker: None,
        })
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let h = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
    }
}

/// Run `sim7k emulate`: create the pty, link it, print the link path (one line on stdout)
/// once it is ready, and serve until SIGINT/SIGTERM; the link is removed on exit.
pub fn run(args: &EmulateArgs) -> ExitCode {
    #[allow(unused_mut)]
    let mut config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sim7k emulate: {e}");
            return Exit::Usage.into();
        }
    };
    #[cfg(feature = "embedded-broker")]
    let _broker = if args.embedded_broker {
        match EmulatedNetwork::start(true, false) {
            Ok(net) => {
                if let Some(b) = &net.broker {
                    eprintln!("sim7k emulate: embedded MQTT broker on {}", b.addr());
                }
                config.network = net.network;
                net.broker
            }
            Err(e) => {
                eprintln!("sim7k emulate: {e}");
                return Exit::Io.into();
            }
        }
    } else {
        None
    };
    install_signal_handlers();
    let emu = match PtyEmulator::spawn(config, Some(&args.link), args.log.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sim7k emulate: {e}");
            return Exit::Io.into();
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", emu.port_path().display())
        .and_then(|()| out.flush())
        .is_err()
    {
        return Exit::Io.into();
    }
    drop(out);
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    emu.stop();
    Exit::Success.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulateArgs,
    }

    fn parse(v: &[&str]) -> Result<EmulateArgs, String> {
        let mut all = vec!["emulate"];
        all.extend_from_slice(v);
        Cli::try_parse_from(all)
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_a_full_command_line() {
        let a = parse(&[
            "--link",
            "/tmp/x",
            "--imei",
            "490154203237518",
            "--profile",
            "nbiot",
            "--boot",
            "fixed",
            "--fault",
            "drip",
            "--fault",
            "error=CIICR:2",
            "--fault",
            "pdp-deact-after=3s",
            "--redirect",
            "127.0.0.1:1883",
            "--search-time",
            "2s",
        ])
        .unwrap();
        assert_eq!(a.faults.len(), 3);
        let c = a.config().unwrap();
        assert_eq!(c.identity.imei, "490154203237518");
        assert_eq!(c.boot, BootMode::Fixed(115200));
        assert_eq!(
            c.network,
            Network::Redirect("127.0.0.1:1883".parse().unwrap())
        );
        assert_eq!(c.registration.searching_for, Duration::from_secs(2));
        assert_eq!(c.latency, crate::emulator::Latency::nbiot());
    }

    #[test]
    fn rejects_bad_values_with_the_flag_name() {
        assert!(parse(&[]).is_err(), "--link is required");
        let e = parse(&["--link", "/tmp/x", "--fault", "bogus"]).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = parse(&["--link", "/tmp/x", "--imei", "12ab"])
            .unwrap()
            .config()
            .unwrap_err();
        assert!(e.contains("--imei"), "{e}");
        let e = parse(&["--link", "/tmp/x", "--map", "nohost"])
            .unwrap()
            .config()
            .unwrap_err();
        assert!(e.contains("--map"), "{e}");
        let e = parse(&["--link", "/tmp/x", "--csq", "40"])
            .unwrap()
            .config()
            .unwrap_err();
        assert!(e.contains("--csq"), "{e}");
    }

    #[test]
    fn map_routes() {
        let c = parse(&[
            "--link",
            "/tmp/x",
            "--map",
            "broker.example:1883=127.0.0.1:2000",
        ])
        .unwrap()
        .config()
        .unwrap();
        assert_eq!(
            c.network.route("broker.example", 1883),
            crate::emulator::Target::Addr("127.0.0.1:2000".parse().unwrap())
        );
    }
}
