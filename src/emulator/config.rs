//! Emulator configuration: identity, boot mode, latencies, registration, network routing.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::fault::Fault;

/// Everything that shapes one emulated SIM7000.
///
/// `EmulatorConfig::default()` is a zero-latency, faithful SIM7000E (R1351 firmware with native
/// MQTT) on an NB-IoT network: autobaud, echo on, `CMEE=0`, registered at once, dialling the
/// real hosts given to `AT+CIPSTART`, no faults.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// What the module says about itself (IMEI, ICCID, ATI text, operator, signal...).
    pub identity: Identity,
    /// Baud mode at power-on: decides which start-up URCs are printed and when.
    pub boot: BootMode,
    /// Echo state after power-on (the real module: on).
    pub echo: bool,
    /// `AT+CMEE` after power-on (not stated by the manual; drivers set it; 0).
    pub cmee: u8,
    /// Timing of slow operations.
    pub latency: Latency,
    /// How network registration progresses after boot.
    pub registration: Registration,
    /// Where `AT+CIPSTART` / `AT+SMCONN` connections really go.
    pub network: Network,
    /// Faults active from power-on.
    pub faults: Vec<Fault>,
    /// Framing of pushed data in automatic receive mode (`AT+CIPRXGET=0`).
    pub push: PushFraming,
    /// Accept `AT+CIPSTART` directly from `TCP CLOSED` (SIM900 heritage; default true).
    pub cipstart_from_closed: bool,
    /// Final result after ESC cancels a `CIPSEND` (undocumented; default `OK`).
    pub cancel_reply: String,
    /// Echo payload bytes typed after a `> ` prompt while echo is on (default true).
    pub echo_payload: bool,
    /// Firmware build with the native MQTT `AT+SM*` commands (default true). Without it every
    /// `AT+SM...` command answers `ERROR`, as on builds like 1351B03.
    pub sm_commands: bool,
    /// Seed for the latency jitter (deterministic per seed).
    pub seed: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            identity: Identity::default(),
            boot: BootMode::Autobaud,
            echo: true,
            cmee: 0,
            latency: Latency::zero(),
            registration: Registration::default(),
            network: Network::Real,
            faults: Vec::new(),
            push: PushFraming::default(),
            cipstart_from_closed: true,
            cancel_reply: "OK".to_string(),
            echo_payload: true,
            sm_commands: true,
            seed: 0x5157_7000,
        }
    }
}

impl EmulatorConfig {
    /// A realistic NB-IoT module for demos: boot 1 s, registration ~4 s after power-on, CIICR ~2 s,
    /// CONNECT OK 1–3 s, SEND OK 0.5–1 s, CONNECT FAIL 5 s after a refusal and 75 s after
    /// `AT+CIPSTART` to a host that does not answer.
    pub fn nbiot_demo() -> Self {
        EmulatorConfig {
            latency: Latency::nbiot(),
            // Registration takes time, whether or not the host polls (a recipe that only
            // waits for `+CGATT: 1` must attach too).
            registration: Registration {
                searching_polls: 0,
                searching_for: Duration::from_secs(4),
                nbiot_sim: false,
            },
            ..EmulatorConfig::default()
        }
    }
}

/// Identity and status values the module reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// 15-digit IMEI (`AT+GSN`, `AT+CGSN`).
    pub imei: String,
    /// ICCID, possibly with hex digits such as `F` (`AT+CCID`).
    pub iccid: String,
    /// IMSI (`AT+CIMI`).
    pub imsi: String,
    /// `ATI` text, e.g. `SIM7000E R1351`.
    pub ati: String,
    /// Firmware revision printed after `Revision:` (`AT+CGMR`).
    pub revision: String,
    /// Manufacturer (`AT+CGMI`).
    pub manufacturer: String,
    /// Model (`AT+CGMM`).
    pub model: String,
    /// Operator long name (`AT+COPS?`).
    pub operator: String,
    /// Operator MCC-MNC (`AT+CPSI?`), e.g. `466-01`.
    pub mcc_mnc: String,
    /// APN the network hands out (`AT+CGNAPN`, default CGDCONT).
    pub network_apn: String,
    /// Radio access technology the module registers on.
    pub rat: Rat,
    /// `AT+CSQ` rssi (0–31, 99).
    pub rssi: u8,
    /// `AT+CSQ` ber (0–7, 99).
    pub ber: u8,
    /// The IP address the network assigns (`AT+CIFSR`).
    pub local_ip: Ipv4Addr,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            imei: "869951031234564".into(),
            iccid: "89470060200114806F80".into(),
            imsi: "242016000012345".into(),
            ati: "SIM7000E R1351".into(),
            revision: "1351B04SIM7000E".into(),
            manufacturer: "SIMCOM_Ltd".into(),
            model: "SIMCOM_SIM7000E".into(),
            operator: "Far EasTone".into(),
            mcc_mnc: "466-01".into(),
            network_apn: "nbiot".into(),
            rat: Rat::NbIot,
            rssi: 24,
            ber: 99,
            local_ip: Ipv4Addr::new(10, 64, 23, 17),
        }
    }
}

/// Radio access technology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rat {
    /// LTE Cat-M1 (`AcT` 7).
    CatM,
    /// NB-IoT (`AcT` 9).
    NbIot,
}

/// UART baud mode at power-on (`AT+IPR`, persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// Autobaud (`AT+IPR=0`, the factory default): no `RDY`; `+CFUN: 1`, `+CPIN: READY` and
    /// `SMS Ready` are held until the first `AT` and printed after its `OK`.
    Autobaud,
    /// A fixed rate: `RDY`, `+CFUN: 1`, `+CPIN: READY`, `SMS Ready` printed at start-up.
    Fixed(u32),
}

/// A duration picked uniformly in `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Lower bound.
    pub min: Duration,
    /// Upper bound (clamped to at least `min`).
    pub max: Duration,
}

impl Span {
    /// Always zero.
    pub const ZERO: Span = Span {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// A fixed duration.
    pub fn fixed(d: Duration) -> Span {
        Span { min: d, max: d }
    }

    /// A range in milliseconds.
    pub fn millis(min: u64, max: u64) -> Span {
        Span {
            min: Duration::from_millis(min),
            max: Duration::from_millis(max),
        }
    }

    /// Pick a value using `r` in `[0, 1)`.
    pub(crate) fn pick(&self, r: f64) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        self.min + (self.max - self.min).mul_f64(r.clamp(0.0, 1.0))
    }
}

/// Timing of slow operations. [`Latency::zero`] for tests, [`Latency::nbiot`] for demos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Power-on / reboot until the module answers.
    pub boot: Duration,
    /// PDP activation: `AT+CIICR` until `OK`, `AT+CNACT=1` until `+APP PDP: ACTIVE`.
    pub attach: Span,
    /// TCP established until `CONNECT OK` (added to the real connect time).
    pub connect: Span,
    /// `AT+CIPSTART` until `CONNECT FAIL` when the peer refuses the connection (and for the
    /// `connect-fail` fault); `AT+SMCONN` until `ERROR` likewise.
    pub connect_fail: Span,
    /// The module's own TCP connect timer: a host that does not answer (unreachable, no
    /// route, no DNS answer) gets `CONNECT FAIL` this long after `AT+CIPSTART`, whatever the
    /// network edge does meanwhile. About 75 s on real modules (docs/sim7000.md,
    /// "CIPSTART timing"). Zero: no timer of its own; `CONNECT FAIL` as soon as the edge
    /// gives up.
    pub connect_timeout: Duration,
    /// Data handed to the peer until `SEND OK` (and MQTT acknowledgements).
    pub send: Span,
}

impl Latency {
    /// Everything immediate.
    pub fn zero() -> Latency {
        Latency {
            boot: Duration::ZERO,
            attach: Span::ZERO,
            connect: Span::ZERO,
            connect_fail: Span::ZERO,
            connect_timeout: Duration::ZERO,
            send: Span::ZERO,
        }
    }

    /// A plausible NB-IoT module.
    pub fn nbiot() -> Latency {
        Latency {
            boot: Duration::from_secs(1),
            attach: Span::millis(1500, 2500),
            connect: Span::millis(1000, 3000),
            connect_fail: Span::millis(5000, 5000),
            connect_timeout: Duration::from_secs(75),
            send: Span::millis(500, 1000),
        }
    }
}

/// How network registration progresses after power-on or `AT+CFUN=1`.
///
/// The module reports "searching" (stat 2) until **both** at least `searching_polls`
/// registration queries (`+CREG?`, `+CGREG?`, `+CEREG?`) were answered **and**
/// `searching_for` has elapsed; then "registered, home" (stat 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Registration {
    /// Number of registration queries answered with "searching" first.
    pub searching_polls: u32,
    /// Minimum time spent searching.
    pub searching_for: Duration,
    /// NB-IoT-only SIM: `+CREG` stays `0` (not registered) while `+CGREG`/`+CEREG` report 1.
    pub nbiot_sim: bool,
}

/// Framing of data pushed in automatic receive mode (`AT+CIPRXGET=0`). The reference leaves
/// it open whether a CRLF precedes the payload; the default is `\r\n` before, nothing after.
/// `+IPD,<len>:` (CIPHEAD=1) and `RECV FROM:` (CIPSRIP=1) come between prefix and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushFraming {
    /// Bytes before each pushed chunk.
    pub prefix: Vec<u8>,
    /// Bytes after each pushed chunk.
    pub suffix: Vec<u8>,
}

impl Default for PushFraming {
    fn default() -> Self {
        PushFraming {
            prefix: b"\r\n".to_vec(),
            suffix: Vec::new(),
        }
    }
}

/// Where the emulated module's TCP connections really go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// Dial the host and port given to the modem (DNS names resolved by the host machine).
    #[default]
    Real,
    /// Every connection goes to this address, whatever the modem was asked.
    Redirect(SocketAddr),
    /// Listed `host:port` pairs go to the given address; others are dialled for real.
    Map(Vec<Route>),
}

/// One entry of [`Network::Map`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Host as given to the modem (compared case-insensitively).
    pub host: String,
    /// Port as given to the modem.
    pub port: u16,
    /// Where to connect instead.
    pub to: SocketAddr,
}

/// Result of routing a connection request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Connect to this address.
    Addr(SocketAddr),
    /// Resolve this host name (or literal IP) and connect.
    Resolve(String, u16),
}

impl Network {
    /// Where a connection to `host:port` requested by the modem should go.
    pub fn route(&self, host: &str, port: u16) -> Target {
        match self {
            Network::Real => Target::Resolve(host.to_string(), port),
            Network::Redirect(to) => Target::Addr(*to),
            Network::Map(routes) => routes
                .iter()
                .find(|r| r.port == port && r.host.eq_ignore_ascii_case(host))
                .map(|r| Target::Addr(r.to))
                .unwrap_or_else(|| Target::Resolve(host.to_string(), port)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        let a: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        assert_eq!(
            Network::Real.route("example.com", 80),
            Target::Resolve("example.com".into(), 80)
        );
        assert_eq!(Network::Redirect(a).route("x", 1), Target::Addr(a));
        let m = Network::Map(vec![Route {
            host: "Broker.Example".into(),
            port: 1883,
            to: a,
        }]);
        assert_eq!(m.route("broker.example", 1883), Target::Addr(a));
        assert_eq!(
            m.route("broker.example", 1884),
            Target::Resolve("broker.example".into(), 1884)
        );
    }

    #[test]
    fn span_pick_within_bounds() {
        let s = Span::millis(100, 300);
        assert_eq!(s.pick(0.0), Duration::from_millis(100));
        assert_eq!(s.pick(1.0), Duration::from_millis(300));
        let mid = s.pick(0.5);
        assert!(mid > Duration::from_millis(100) && mid < Duration::from_millis(300));
        assert_eq!(Span::millis(500, 100).pick(0.9), Duration::from_millis(500));
    }
}
