//! The sans-IO SIM7000 modem core.
//!
//! [`Modem`] is plain data: bytes from the host go in with [`Modem::feed`], network events with
//! [`Modem::handle_net`], time advances with [`Modem::poll`]; bytes for the host come out of
//! [`Modem::take_output`], connection requests out of [`Modem::take_net_requests`], and
//! human-readable notes for the transcript out of [`Modem::take_notes`]. No threads, sockets
//! or clocks inside: every entry point takes the current [`Instant`], and
//! [`Modem::next_deadline`] says when the core next wants to be polled.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::config::{BootMode, EmulatorConfig, Span};
use super::fault::{Fault, normalise_command};

mod general;
mod parse;
mod sm;
mod tcpip;
mod wire;

#[cfg(test)]
mod tests;

use parse::Cmd;

/// Identifies one TCP connection the modem asked for. Never reused.
pub type ConnId = u64;

/// What the modem asks of the network edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetRequest {
    /// Open a TCP connection to `host:port` as given to the modem (the edge applies
    /// [`super::Network`] routing and DNS).
    Connect {
        /// Connection id for later events.
        id: ConnId,
        /// Host name or dotted IP.
        host: String,
        /// Port.
        port: u16,
    },
    /// Send bytes on an open connection; answer with [`NetEvent::Sent`] or
    /// [`NetEvent::SendFailed`].
    Send {
        /// Connection.
        id: ConnId,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Close the connection (no further events are expected).
    Close {
        /// Connection.
        id: ConnId,
    },
}

/// What the network edge reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// The TCP connection is established.
    Connected {
        /// Connection.
        id: ConnId,
        /// Address actually connected to.
        peer: SocketAddr,
    },
    /// Resolution or connection failed (refused, unreachable, timeout).
    ConnectFailed {
        /// Connection.
        id: ConnId,
        /// Why, for the transcript.
        reason: String,
    },
    /// Bytes of a [`NetRequest::Send`] were handed to the peer.
    Sent {
        /// Connection.
        id: ConnId,
        /// How many.
        len: usize,
    },
    /// A [`NetRequest::Send`] failed.
    SendFailed {
        /// Connection.
        id: ConnId,
        /// Why.
        reason: String,
    },
    /// Bytes arrived from the peer.
    Received {
        /// Connection.
        id: ConnId,
        /// Bytes.
        data: Vec<u8>,
    },
    /// The peer closed the connection (or it was reset).
    Closed {
        /// Connection.
        id: ConnId,
    },
}

/// Outcome of one command of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Success; the line's final OK comes at the end.
    Ok,
    /// Success without a final result code (`AT+CIFSR`).
    NoFinal,
    /// Failure: stop the line, print the error.
    Fail(Fail),
    /// The command printed its own final result; stop the line.
    Done,
    /// The final result comes later; the modem is busy.
    Async,
    /// The modem now waits for payload after a `> ` prompt.
    Prompt,
}

/// How a failure is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// Always plain `ERROR` (unknown command, syntax error).
    Plain,
    /// `ERROR` / `+CME ERROR: <n>` / `+CME ERROR: <text>` according to CMEE.
    Cme(u16),
}

const NOT_ALLOWED: Outcome = Outcome::Fail(Fail::Cme(3));
const NOT_SUPPORTED: Outcome = Outcome::Fail(Fail::Cme(4));
const BAD_PARAM: Outcome = Outcome::Fail(Fail::Cme(50));
const SYNTAX: Outcome = Outcome::Fail(Fail::Plain);

fn cme_text(code: u16) -> &'static str {
    match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        13 => "SIM failure",
        14 => "SIM busy",
        30 => "no network service",
        50 => "Incorrect parameters",
        100 => "unknown",
        148 => "unspecified GPRS error",
        160 => "DNS resolve failed",
        161 => "socket open failed",
        180 => "gprs is not attached",
        181 => "tcpip stack is busy",
        767 => "operation failed",
        797 => "CFUN state is 0 or 4",
        _ => "unknown",
    }
}

/// Single-connection TCP/IP application states (`STATE: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpState {
    Initial,
    Start,
    Config,
    GprsAct,
    Status,
    TcpConnecting,
    ConnectOk,
    TcpClosed,
    PdpDeact,
}

impl IpState {
    fn text(self) -> &'static str {
        match self {
            IpState::Initial => "IP INITIAL",
            IpState::Start => "IP START",
            IpState::Config => "IP CONFIG",
            IpState::GprsAct => "IP GPRSACT",
            IpState::Status => "IP STATUS",
            IpState::TcpConnecting => "TCP CONNECTING",
            IpState::ConnectOk => "CONNECT OK",
            IpState::TcpClosed => "TCP CLOSED",
            IpState::PdpDeact => "PDP DEACT",
        }
    }

    /// The PDP context of the CIP application is up.
    fn context_active(self) -> bool {
        matches!(
            self,
            IpState::GprsAct
                | IpState::Status
                | IpState::TcpConnecting
                | IpState::ConnectOk
                | IpState::TcpClosed
        )
    }
}

/// Power state of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Booting,
    On,
    Off,
}

/// Volatile settings, reset by a reboot.
#[derive(Debug, Clone)]
struct Settings {
    echo: bool,
    verbose: bool,
    quiet: bool,
    cmee: u8,
    creg_n: u8,
    cgreg_n: u8,
    cereg_n: u8,
    cfun: u8,
    attached: bool,
    clts: bool,
    cipqsend: bool,
    ciphead: bool,
    cipsrip: bool,
    cipshowtp: bool,
    cipsprt: u8,
    cipsendhex: bool,
    ciprxget: u8,
    ciptka: (u8, u32, u32, u8),
    ciprdtimer: (u32, u32),
    apn: (String, String, String),
    cgact: bool,
    smpubhex: bool,
}

impl Settings {
    fn new(cfg: &EmulatorConfig, nv: &Stored) -> Settings {
        Settings {
            echo: cfg.echo,
            verbose: true,
            quiet: false,
            cmee: cfg.cmee.min(2),
            creg_n: 0,
            cgreg_n: 0,
            cereg_n: 0,
            cfun: 1,
            attached: true,
            clts: nv.clts_saved,
            cipqsend: false,
            ciphead: false,
            cipsrip: false,
            cipshowtp: false,
            cipsprt: 1,
            cipsendhex: false,
            ciprxget: 0,
            ciptka: (0, 7200, 75, 9),
            ciprdtimer: (2000, 3500),
            apn: ("CMNET".into(), String::new(), String::new()),
            cgact: true,
            smpubhex: false,
        }
    }
}

/// Settings that survive a reboot (AUTO_SAVE commands, `AT&W`).
#[derive(Debug, Clone)]
struct Stored {
    ipr: u32,
    cnmp: u8,
    cmnb: u8,
    bands_catm: Vec<u16>,
    bands_nb: Vec<u16>,
    cpsms: (u8, String, String),
    cedrxs: [(u8, String); 2],
    cgdcont: Vec<(u8, String, String)>,
    clts_saved: bool,
}

impl Stored {
    fn new(cfg: &EmulatorConfig) -> Stored {
        Stored {
            ipr: match cfg.boot {
                BootMode::Autobaud => 0,
                BootMode::Fixed(r) => r,
            },
            cnmp: 2,
            cmnb: 3,
            bands_catm: vec![
                1, 2, 3, 4, 5, 8, 12, 13, 14, 18, 19, 20, 25, 26, 27, 28, 66, 85,
            ],
            bands_nb: vec![1, 2, 3, 4, 5, 8, 12, 13, 18, 19, 20, 25, 26, 28, 66, 71, 85],
            cpsms: (0, "00000001".into(), "00000001".into()),
            cedrxs: [(0, "0000".into()), (0, "0000".into())],
            cgdcont: vec![(1, "IP".into(), cfg.identity.network_apn.clone())],
            clts_saved: false,
        }
    }
}

/// The CIP application's single connection.
#[derive(Debug, Clone)]
struct TcpConn {
    id: ConnId,
    host: String,
    port: u16,
    peer: Option<SocketAddr>,
    /// Established and reported (`CONNECT OK`).
    open: bool,
    /// The socket is gone (closed by either side or failed).
    gone: bool,
    requested_at: Instant,
    /// Manual-mode receive buffer (and early data before CONNECT OK).
    rx: VecDeque<u8>,
}

/// TCP/IP application state.
#[derive(Debug, Clone)]
struct Ip {
    state: IpState,
    conn: Option<TcpConn>,
    tx_total: u64,
    acked: u64,
    /// The bytes of the send in progress reached the peer's TCP stack (its `SEND OK` is
    /// only waiting for the configured latency).
    send_delivered: bool,
}

impl Ip {
    fn new() -> Ip {
        Ip {
            state: IpState::Initial,
            conn: None,
            tx_total: 0,
            acked: 0,
            send_delivered: false,
        }
    }
}

/// `AT+CNACT` application bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppPdp {
    Inactive,
    Activating,
    Active,
}

/// What the module is busy with (input is echoed and dropped meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Busy {
    Ciicr,
    Send {
        id: ConnId,
        len: usize,
    },
    Sm(sm::SmWait),
    /// Never answers (SMCONN hang fault).
    Hang,
}

/// What the module is reading from the host.
#[derive(Debug, Clone)]
enum Input {
    Line(Vec<u8>),
    Payload(Payload),
}

#[derive(Debug, Clone)]
enum PayloadKind {
    /// `AT+CIPSEND`: until Ctrl-Z, ESC cancels.
    CipVariable,
    /// `AT+CIPSEND=<n>`: exactly n bytes.
    CipFixed(usize),
    /// `AT+SMPUB`: exactly n bytes.
    SmPub {
        topic: String,
        qos: u8,
        retain: bool,
        want: usize,
    },
}

#[derive(Debug, Clone)]
struct Payload {
    kind: PayloadKind,
    hex: bool,
    nibble: Option<u8>,
    buf: Vec<u8>,
}

/// Registration progress.
#[derive(Debug, Clone)]
struct Reg {
    since: Instant,
    polls: u32,
    /// Last reported stat for CREG, CGREG, CEREG.
    last: [u8; 3],
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tk {
    BootDone,
    CiicrDone,
    CnactDone,
    AutoAttached(ConnId),
    ConnectOk(ConnId),
    ConnectFail(ConnId),
    SendResult { ok: bool },
    SmConnectSend(ConnId),
    SmDone { ok: bool },
    Keepalive(ConnId),
    RegCheck,
    SilenceEnd,
    Armed(u64),
}

/// Faults with a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArmedKind {
    PeerClose,
    PdpDeact,
    Reboot,
    Silent(Option<Duration>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Connected,
    PdpUp,
    Synced,
}

impl ArmedKind {
    fn trigger(self) -> Trigger {
        match self {
            ArmedKind::PeerClose => Trigger::Connected,
            ArmedKind::PdpDeact => Trigger::PdpUp,
            ArmedKind::Reboot | ArmedKind::Silent(_) => Trigger::Synced,
        }
    }
}

#[derive(Debug, Clone)]
struct Armed {
    id: u64,
    kind: ArmedKind,
    after: Duration,
    scheduled: bool,
}

/// Active faults.
#[derive(Debug, Clone, Default)]
struct FaultState {
    drip: Option<Duration>,
    errors: Vec<(String, Option<u32>)>,
    urcs: Vec<(Option<String>, Option<u32>)>,
    extra_rxget: u32,
    connect_fail: Option<Option<u32>>,
    send_fail: Option<Option<u32>>,
    echo_stuck: bool,
    smconn_hang: bool,
    long_host: Option<usize>,
    armed: Vec<Armed>,
    next_armed: u64,
    /// `Some(None)`: silent until cleared or rebooted.
    silent: Option<Option<Instant>>,
}

/// Consume one use of a counted fault; true when it applies.
fn take_use(slot: &mut Option<Option<u32>>) -> bool {
    match slot {
        None => false,
        Some(None) => true,
        Some(Some(n)) => {
            *n = n.saturating_sub(1);
            if *n == 0 {
                *slot = None;
            }
            true
        }
    }
}

/// Does a fault command pattern match this command text?
fn pattern_matches(pattern: &str, text: &str) -> bool {
    text.starts_with(pattern)
        && text[pattern.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// `t + d`, with absurd durations (a user may ask for `1000000y`) capped at 100 years
/// instead of overflowing.
fn plus(t: Instant, d: Duration) -> Instant {
    const CAP: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d.min(CAP)).unwrap_or(t)
}

/// A tiny deterministic PRNG (xorshift64*) for latency jitter.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The emulated SIM7000 (sans-IO).
#[derive(Debug, Clone)]
pub struct Modem {
    cfg: EmulatorConfig,
    now: Instant,
    rng: Rng,
    out: VecDeque<u8>,
    drip_next: Option<Instant>,
    net_out: VecDeque<NetRequest>,
    notes: Vec<String>,
    power: Power,
    synced: bool,
    held_boot_urcs: bool,
    s: Settings,
    nv: Stored,
    input: Input,
    busy: Option<Busy>,
    reg: Reg,
    ip: Ip,
    app: AppPdp,
    sm: sm::Sm,
    faults: FaultState,
    timers: Vec<(Instant, Tk)>,
    next_conn: ConnId,
    last_line: Option<Vec<u8>>,
}

impl Modem {
    /// Power the module on at `now`.
    pub fn new(config: EmulatorConfig, now: Instant) -> Modem {
        let nv = Stored::new(&config);
        let s = Settings::new(&config, &nv);
        let faults = config.faults.clone();
        let seed = config.seed.max(1);
        let mut m = Modem {
            now,
            rng: Rng(seed),
            out: VecDeque::new(),
            drip_next: None,
            net_out: VecDeque::new(),
            notes: Vec::new(),
            power: Power::Booting,
            synced: false,
            held_boot_urcs: false,
            s,
            nv,
            input: Input::Line(Vec::new()),
            busy: None,
            reg: Reg {
                since: now,
                polls: 0,
                last: [0; 3],
            },
            ip: Ip::new(),
            app: AppPdp::Inactive,
            sm: sm::Sm::new(),
            faults: FaultState::default(),
            timers: Vec::new(),
            next_conn: 1,
            last_line: None,
            cfg: config,
        };
        for f in faults {
            m.add_fault(f, false);
        }
        m.start_boot();
        m.run_timers();
        m
    }

    // ----- public API -------------------------------------------------------------------

    /// Bytes typed by the host.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        self.poll(now);
        if self.power != Power::On {
            if !bytes.is_empty() {
                self.note(format!(
                    "{} byte(s) ignored: module {}",
                    bytes.len(),
                    if self.power == Power::Off {
                        "powered down"
                    } else {
                        "still booting"
                    }
                ));
            }
            return;
        }
        if self.faults.silent.is_some() {
            self.note(format!("{} byte(s) ignored: silent fault", bytes.len()));
            return;
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if self.power != Power::On || self.faults.silent.is_some() {
                break;
            }
            if self.busy.is_some() {
                if self.s.echo {
                    self.raw(&[b]);
                }
                continue;
            }
            let lf_follows = bytes.get(i) == Some(&b'\n');
            if self.byte(b, lf_follows) {
                i += 1;
            }
        }
        self.run_timers();
    }

    /// A network event from the edge.
    pub fn handle_net(&mut self, event: NetEvent, now: Instant) {
        self.poll(now);
        self.net_event(event);
        self.run_timers();
    }

    /// Advance time: fire every timer due at or before `now`.
    pub fn poll(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        self.run_timers();
    }

    /// When the core next needs [`Modem::poll`] (timers, dripping output).
    pub fn next_deadline(&self) -> Option<Instant> {
        let t = self.timers.iter().map(|(t, _)| *t).min();
        let d = if self.faults.drip.is_some() && !self.out.is_empty() {
            self.drip_next
        } else {
            None
        };
        match (t, d) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Bytes for the host that are due at `now` (all of them, unless dripping).
    pub fn take_output(&mut self, now: Instant) -> Vec<u8> {
        self.poll(now);
        match self.faults.drip {
            None => self.out.drain(..).collect(),
            Some(per_byte) => {
                let mut v = Vec::new();
                let mut next = self.drip_next.unwrap_or(now);
                if plus(next, per_byte) < now {
                    next = now;
                }
                while next <= now {
                    let Some(b) = self.out.pop_front() else {
                        break;
                    };
                    v.push(b);
                    next = plus(next, per_byte);
                }
                self.drip_next = Some(next);
                v
            }
        }
    }

    /// Connection requests for the network edge.
    pub fn take_net_requests(&mut self) -> Vec<NetRequest> {
        self.net_out.drain(..).collect()
    }

    /// Human-readable notes (network activity, faults) for the transcript.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Inject a fault at run time. Delayed faults count from now when their trigger already
    /// holds (connected, PDP active, host synced).
    pub fn inject(&mut self, fault: Fault, now: Instant) {
        self.poll(now);
        self.note(format!("fault injected: {fault}"));
        self.add_fault(fault, true);
        self.run_timers();
        self.after_activity();
    }

    /// Remove every fault and end a silence.
    pub fn clear_faults(&mut self, now: Instant) {
        self.poll(now);
        self.faults = FaultState {
            next_armed: self.faults.next_armed,
            ..FaultState::default()
        };
        self.timers
            .retain(|(_, t)| !matches!(t, Tk::Armed(_) | Tk::SilenceEnd));
        self.note("faults cleared".into());
    }

    /// Whether the host currently gets no answers at all (silent fault or powered down).
    pub fn is_silent(&self) -> bool {
        self.faults.silent.is_some() || self.power == Power::Off
    }

    // ----- output helpers ---------------------------------------------------------------

    fn note(&mut self, s: String) {
        self.notes.push(s);
    }

    fn raw(&mut self, b: &[u8]) {
        if self.faults.silent.is_some() || self.power == Power::Off {
            return;
        }
        if self.out.is_empty() && self.faults.drip.is_some() {
            self.drip_next = Some(self.drip_next.map_or(self.now, |t| t.max(self.now)));
        }
        self.out.extend(b.iter().copied());
    }

    /// One URC or info line.
    fn line(&mut self, text: &str) {
        self.lines(&[text]);
    }

    /// An information block (lines of one command) or a URC.
    fn lines<S: AsRef<str>>(&mut self, lines: &[S]) {
        let mut v = Vec::new();
        if self.s.verbose {
            v.extend_from_slice(b"\r\n");
            for (i, l) in lines.iter().enumerate() {
                if i > 0 {
                    v.extend_from_slice(b"\r\n");
                }
                v.extend_from_slice(l.as_ref().as_bytes());
            }
            v.extend_from_slice(b"\r\n");
        } else {
            for l in lines {
                v.extend_from_slice(l.as_ref().as_bytes());
                v.extend_from_slice(b"\r\n");
            }
        }
        self.raw(&v);
    }

    fn result_ok(&mut self) {
        if self.s.quiet {
            return;
        }
        if self.s.verbose {
            self.raw(b"\r\nOK\r\n");
        } else {
            self.raw(b"0\r");
        }
    }

    fn result_fail(&mut self, f: Fail) {
        if self.s.quiet {
            return;
        }
        match (f, self.s.cmee) {
            (Fail::Cme(n), 1) => self.line(&format!("+CME ERROR: {n}")),
            (Fail::Cme(n), 2) => self.line(&format!("+CME ERROR: {}", cme_text(n))),
            _ => {
                if self.s.verbose {
                    self.raw(b"\r\nERROR\r\n");
                } else {
                    self.raw(b"4\r");
                }
            }
        }
    }

    fn result_text(&mut self, ok: bool, text: &str) {
        if ok {
            self.result_ok();
        } else if !text.is_empty() {
            self.line(text);
        }
    }

    // ----- timers -----------------------------------------------------------------------

    fn at(&mut self, when: Instant, tk: Tk) {
        self.timers.push((when, tk));
    }

    fn after(&mut self, d: Duration, tk: Tk) {
        let t = plus(self.now, d);
        self.at(t, tk);
    }

    fn jitter(&mut self, span: Span) -> Duration {
        let r = self.rng.next_f64();
        span.pick(r)
    }

    fn run_timers(&mut self) {
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, (t, _))| *t <= self.now)
                .min_by_key(|(_, (t, _))| *t)
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let (_, tk) = self.timers.swap_remove(i);
            self.fire(tk);
        }
        self.after_activity();
    }

    fn fire(&mut self, tk: Tk) {
        match tk {
            Tk::BootDone => self.boot_done(),
            Tk::SilenceEnd => {
                if matches!(self.faults.silent, Some(Some(t)) if t <= self.now) {
                    self.faults.silent = None;
                    self.note("silence ends".into());
                }
            }
            Tk::Armed(id) => self.fire_armed(id),
            Tk::RegCheck => self.check_registration(),
            Tk::Keepalive(id) => self.sm_keepalive(id),
            Tk::SmConnectSend(id) => self.sm_send_connect(id),
            Tk::SmDone { ok } => self.sm_done(ok),
            Tk::CiicrDone => self.ciicr_done(),
            Tk::CnactDone => self.cnact_done(),
            Tk::AutoAttached(id) => self.auto_attached(id),
            Tk::ConnectOk(id) => self.connect_ok(id),
            Tk::ConnectFail(id) => self.connect_fail(id),
            Tk::SendResult { ok } => self.send_result(ok),
        }
    }

    // ----- power ------------------------------------------------------------------------

    fn start_boot(&mut self) {
        self.power = Power::Booting;
        let boot = self.cfg.latency.boot;
        self.after(boot, Tk::BootDone);
    }

    fn boot_done(&mut self) {
        if self.power != Power::Booting {
            return;
        }
        self.power = Power::On;
        self.restart_registration();
        if self.nv.ipr == 0 {
            self.held_boot_urcs = true;
        } else {
            self.line("RDY");
            self.line("+CFUN: 1");
            self.line("+CPIN: READY");
            self.line("SMS Ready");
        }
        self.note(format!(
            "module ready ({})",
            if self.nv.ipr == 0 {
                "autobaud: start-up URCs held until the first AT".to_string()
            } else {
                format!("fixed baud {}", self.nv.ipr)
            }
        ));
    }

    /// Reboot: every volatile setting, connection and the PDP context is gone.
    fn reboot(&mut self, why: &str) {
        self.note(format!("reboot ({why})"));
        self.close_all_connections();
        self.s = Settings::new(&self.cfg, &self.nv);
        self.ip = Ip::new();
        self.app = AppPdp::Inactive;
        self.sm = sm::Sm::new();
        self.input = Input::Line(Vec::new());
        self.busy = None;
        self.synced = false;
        self.held_boot_urcs = false;
        if self.faults.silent.take().is_some() {
            self.note("silence ends (power cycle)".into());
        }
        self.timers.retain(|(_, t)| matches!(t, Tk::Armed(_)));
        for a in &mut self.faults.armed {
            if a.kind.trigger() != Trigger::Synced {
                a.scheduled = false;
            }
        }
        let armed: Vec<u64> = self
            .faults
            .armed
            .iter()
            .filter(|a| !a.scheduled)
            .map(|a| a.id)
            .collect();
        self.timers
            .retain(|(_, t)| !matches!(t, Tk::Armed(id) if armed.contains(id)));
        self.start_boot();
    }

    fn close_all_connections(&mut self) {
        if let Some(c) = self.ip.conn.take()
            && !c.gone
        {
            self.net_out.push_back(NetRequest::Close { id: c.id });
        }
        if let Some(id) = self.sm.conn_id() {
            self.net_out.push_back(NetRequest::Close { id });
        }
    }

    // ----- registration -----------------------------------------------------------------

    fn restart_registration(&mut self) {
        self.reg.since = self.now;
        self.reg.polls = 0;
        self.reg.last = [self.cs_stat(), self.ps_stat(), self.ps_stat()];
        let t = self.cfg.registration.searching_for;
        if !t.is_zero() {
            self.after(t, Tk::RegCheck);
        }
    }

    fn registered(&self) -> bool {
        self.s.cfun == 1
            && self.reg.polls >= self.cfg.registration.searching_polls
            && self.now >= plus(self.reg.since, self.cfg.registration.searching_for)
    }

    /// PS domain stat (CGREG / CEREG).
    fn ps_stat(&self) -> u8 {
        if self.s.cfun != 1 {
            0
        } else if self.registered() {
            1
        } else {
            2
        }
    }

    /// CS domain stat (CREG): stays 0 on an NB-IoT-only SIM.
    fn cs_stat(&self) -> u8 {
        if self.cfg.registration.nbiot_sim {
            0
        } else {
            self.ps_stat()
        }
    }

    fn act(&self) -> u8 {
        match self.cfg.identity.rat {
            super::config::Rat::CatM => 7,
            super::config::Rat::NbIot => 9,
        }
    }

    /// Registration URCs on change (for n ≥ 1), network time with CLTS=1.
    fn check_registration(&mut self) {
        if self.power != Power::On {
            return;
        }
        let now = [self.cs_stat(), self.ps_stat(), self.ps_stat()];
        let names = ["+CREG", "+CGREG", "+CEREG"];
        let ns = [self.s.creg_n, self.s.cgreg_n, self.s.cereg_n];
        let became_registered = self.reg.last[1] != 1 && now[1] == 1;
        for i in 0..3 {
            if now[i] != self.reg.last[i] {
                self.reg.last[i] = now[i];
                match ns[i] {
                    0 => {}
                    1 => self.line(&format!("{}: {}", names[i], now[i])),
                    _ => {
                        let l = if now[i] == 1 || now[i] == 5 {
                            format!(
                                "{}: {},\"A411\",\"0E3D6C0\",{}",
                                names[i],
                                now[i],
                                self.act()
                            )
                        } else {
                            format!("{}: {}", names[i], now[i])
                        };
                        self.line(&l);
                    }
                }
            }
        }
        if became_registered && self.s.clts {
            self.line("*PSUTTZ: 25/01/01,12:00:00\",\"+04\",0");
            self.line("DST: 0");
        }
    }

    // ----- faults -----------------------------------------------------------------------

    fn add_fault(&mut self, f: Fault, runtime: bool) {
        let arm = |m: &mut Modem, kind: ArmedKind, after: Duration| {
            let id = m.faults.next_armed;
            m.faults.next_armed += 1;
            m.faults.armed.push(Armed {
                id,
                kind,
                after,
                scheduled: false,
            });
            let holds = match kind.trigger() {
                Trigger::Connected => m.ip.state == IpState::ConnectOk || m.sm.online(),
                Trigger::PdpUp => m.ip.state.context_active() || m.app == AppPdp::Active,
                Trigger::Synced => runtime || m.synced,
            };
            if holds {
                m.schedule_armed(id);
            }
        };
        match f {
            Fault::Drip { per_byte } => self.faults.drip = Some(per_byte),
            Fault::Error { command, times } => self
                .faults
                .errors
                .push((normalise_command(&command), times)),
            Fault::UrcInResponse { command, times } => self
                .faults
                .urcs
                .push((command.map(|c| normalise_command(&c)), times)),
            Fault::ExtraRxget { lines } => self.faults.extra_rxget = lines,
            Fault::ConnectFail { times } => self.faults.connect_fail = Some(times),
            Fault::SendFail { times } => self.faults.send_fail = Some(times),
            Fault::EchoStuck => self.faults.echo_stuck = true,
            Fault::SmconnHang => self.faults.smconn_hang = true,
            Fault::LongHostReject { max } => self.faults.long_host = Some(max),
            Fault::PeerClose { after } => arm(self, ArmedKind::PeerClose, after),
            Fault::PdpDeact { after } => arm(self, ArmedKind::PdpDeact, after),
            Fault::Reboot { after } => arm(self, ArmedKind::Reboot, after),
            Fault::Silent { after, duration } => arm(self, ArmedKind::Silent(duration), after),
        }
    }

    fn schedule_armed(&mut self, id: u64) {
        let Some(a) = self.faults.armed.iter_mut().find(|a| a.id == id) else {
            return;
        };
        if a.scheduled {
            return;
        }
        a.scheduled = true;
        let after = a.after;
        self.after(after, Tk::Armed(id));
    }

    fn trigger(&mut self, t: Trigger) {
        let ids: Vec<u64> = self
            .faults
            .armed
            .iter()
            .filter(|a| !a.scheduled && a.kind.trigger() == t)
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.schedule_armed(id);
        }
    }

    fn fire_armed(&mut self, id: u64) {
        let Some(pos) = self.faults.armed.iter().position(|a| a.id == id) else {
            return;
        };
        let kind = self.faults.armed[pos].kind;
        let done = match kind {
            ArmedKind::PeerClose => self.fault_peer_close(),
            ArmedKind::PdpDeact => self.fault_pdp_deact(),
            ArmedKind::Reboot => {
                self.reboot("fault");
                true
            }
            ArmedKind::Silent(d) => {
                self.note(match d {
                    Some(d) => format!("silent for {}", humantime::format_duration(d)),
                    None => "silent until cleared or rebooted".into(),
                });
                self.faults.silent = Some(d.map(|d| plus(self.now, d)));
                if let Some(d) = d {
                    self.after(d, Tk::SilenceEnd);
                }
                true
            }
        };
        if done {
            self.faults.armed.retain(|a| a.id != id);
        } else if let Some(a) = self.faults.armed.iter_mut().find(|a| a.id == id) {
            // Condition no longer holds: wait for the next trigger.
            a.scheduled = false;
        }
    }

    fn fault_error(&mut self, cmd: &Cmd) -> bool {
        let text = cmd.fault_text();
        for (pat, times) in &mut self.faults.errors {
            if pattern_matches(pat, &text) {
                let mut slot = Some(*times);
                let hit = take_use(&mut slot);
                match slot {
                    Some(t) => *times = t,
                    None => *times = Some(0),
                }
                if hit {
                    self.faults.errors.retain(|(_, t)| *t != Some(0));
                    return true;
                }
            }
        }
        false
    }

    fn fault_urcs(&mut self, cmds: &[Cmd]) {
        let texts: Vec<String> = cmds.iter().map(Cmd::fault_text).collect();
        let mut hit = false;
        for (pat, times) in &mut self.faults.urcs {
            let matches = match pat {
                None => true,
                Some(p) => texts.iter().any(|t| pattern_matches(p, t)),
            };
            if matches {
                let mut slot = Some(*times);
                if take_use(&mut slot) {
                    hit = true;
                    *times = slot.unwrap_or(Some(0));
                }
            }
        }
        self.faults.urcs.retain(|(_, t)| *t != Some(0));
        if hit {
            self.line("*PSUTTZ: 25/01/01,12:00:00\",\"+04\",1");
            self.line("DST: 1");
        }
    }

    // ----- input ------------------------------------------------------------------------

    /// One byte from the host. Returns true when the following LF was consumed.
    fn byte(&mut self, b: u8, lf_follows: bool) -> bool {
        match &mut self.input {
            Input::Line(buf) => {
                match b {
                    b'\r' => {
                        let line = std::mem::take(buf);
                        let mut echo = vec![b'\r'];
                        if lf_follows {
                            echo.push(b'\n');
                        }
                        if self.s.echo {
                            self.raw(&echo);
                        }
                        self.run_line(line);
                        return lf_follows;
                    }
                    0x08 | 0x7F => {
                        buf.pop();
                    }
                    b'/' if buf
                        .iter()
                        .filter(|c| !c.is_ascii_whitespace())
                        .copied()
                        .collect::<Vec<u8>>()
                        .eq_ignore_ascii_case(b"A") =>
                    {
                        buf.clear();
                        if self.s.echo {
                            self.raw(b"/");
                        }
                        if let Some(last) = self.last_line.clone() {
                            self.run_line(last);
                        }
                        return false;
                    }
                    _ => {
                        if buf.len() < 4096 {
                            buf.push(b);
                        }
                    }
                }
                if self.s.echo {
                    self.raw(&[b]);
                }
                false
            }
            Input::Payload(_) => {
                self.payload_byte(b);
                false
            }
        }
    }

    fn run_line(&mut self, raw: Vec<u8>) {
        let Some(at) = raw.windows(2).position(|w| w.eq_ignore_ascii_case(b"AT")) else {
            if raw.iter().any(|c| !c.is_ascii_whitespace() && *c != 0) {
                self.note("line without AT prefix ignored".into());
            }
            return;
        };
        let line = &raw[at..];
        if !self.synced {
            self.synced = true;
            self.trigger(Trigger::Synced);
        }
        self.last_line = Some(line.to_vec());
        let body = &line[2..];
        let cmds = if line.len() > parse::MAX_LINE {
            self.note(format!("line of {} characters exceeds 559", line.len()));
            Err(())
        } else {
            parse::split_line(body)
        };
        match cmds {
            Err(()) => self.result_fail(Fail::Plain),
            Ok(cmds) => {
                self.fault_urcs(&cmds);
                self.run_cmds(&cmds);
            }
        }
        if self.held_boot_urcs && self.busy.is_none() {
            self.held_boot_urcs = false;
            self.line("+CPIN: READY");
            self.line("SMS Ready");
        }
    }

    fn run_cmds(&mut self, cmds: &[Cmd]) {
        let mut last = Outcome::Ok;
        for cmd in cmds {
            let o = if self.fault_error(cmd) {
                self.note(format!("fault: ERROR for {}", cmd.fault_text()));
                if cmd.name == "+CIICR" && self.ip.state == IpState::Start {
                    self.ip.state = IpState::PdpDeact;
                }
                Outcome::Fail(Fail::Cme(767))
            } else {
                self.exec(cmd)
            };
            last = o;
            match o {
                Outcome::Ok | Outcome::NoFinal => continue,
                Outcome::Fail(f) => {
                    self.result_fail(f);
                    return;
                }
                Outcome::Done | Outcome::Async | Outcome::Prompt => return,
            }
        }
        if last == Outcome::Ok {
            self.result_ok();
        }
    }

    fn exec(&mut self, cmd: &Cmd) -> Outcome {
        if let Some(o) = self.exec_general(cmd) {
            return o;
        }
        if let Some(o) = self.exec_tcpip(cmd) {
            return o;
        }
        if cmd.name.starts_with("+SM") {
            if !self.cfg.sm_commands {
                return SYNTAX;
            }
            if let Some(o) = self.exec_sm(cmd) {
                return o;
            }
        }
        SYNTAX
    }

    fn start_payload(&mut self, kind: PayloadKind, hex: bool) {
        self.input = Input::Payload(Payload {
            kind,
            hex,
            nibble: None,
            buf: Vec::new(),
        });
    }

    fn payload_byte(&mut self, b: u8) {
        let Input::Payload(p) = &mut self.input else {
            return;
        };
        let variable = matches!(p.kind, PayloadKind::CipVariable);
        let want = match &p.kind {
            PayloadKind::CipVariable => None,
            PayloadKind::CipFixed(n) => Some(*n),
            PayloadKind::SmPub { want, .. } => Some(*want),
        };
        enum Step {
            Continue,
            Complete,
            Cancel,
            Error,
        }
        let mut echo = self.cfg.echo_payload && self.s.echo;
        let step = if !p.hex {
            if variable && b == 0x1A {
                echo = false;
                Step::Complete
            } else if variable && b == 0x1B {
                echo = false;
                Step::Cancel
            } else {
                p.buf.push(b);
                if want.is_some_and(|w| p.buf.len() >= w) {
                    Step::Complete
                } else if variable && p.buf.len() > crate::at::limits::MAX_SEND {
                    Step::Error
                } else {
                    Step::Continue
                }
            }
        } else if variable && b == 0x1A {
            echo = false;
            Step::Complete
        } else if variable && b == 0x1B {
            echo = false;
            Step::Cancel
        } else if matches!(b, b' ' | b'\r' | b'\n') {
            Step::Continue
        } else if let Some(v) = parse::hex_val(b) {
            match p.nibble.take() {
                None => {
                    p.nibble = Some(v);
                    Step::Continue
                }
                Some(hi) => {
                    let byte = (hi << 4) | v;
                    if variable && byte == 0x1A {
                        Step::Complete
                    } else {
                        p.buf.push(byte);
                        if want.is_some_and(|w| p.buf.len() >= w) {
                            Step::Complete
                        } else if variable && p.buf.len() > crate::at::limits::MAX_SEND {
                            Step::Error
                        } else {
                            Step::Continue
                        }
                    }
                }
            }
        } else {
            Step::Error
        };
        if echo {
            self.raw(&[b]);
        }
        match step {
            Step::Continue => {}
            Step::Cancel => {
                self.input = Input::Line(Vec::new());
                let reply = self.cfg.cancel_reply.clone();
                self.result_text(reply == "OK", &reply);
            }
            Step::Error => {
                self.input = Input::Line(Vec::new());
                self.note("payload rejected".into());
                self.result_fail(Fail::Plain);
            }
            Step::Complete => {
                let Input::Payload(p) = std::mem::replace(&mut self.input, Input::Line(Vec::new()))
                else {
                    return;
                };
                match p.kind {
                    PayloadKind::CipVariable | PayloadKind::CipFixed(_) => {
                        self.cip_payload_complete(p.buf)
                    }
                    PayloadKind::SmPub {
                        topic, qos, retain, ..
                    } => self.sm_payload_complete(topic, qos, retain, p.buf),
                }
            }
        }
    }

    /// Housekeeping after any activity: registration URCs, held boot URCs.
    fn after_activity(&mut self) {
        if self.power == Power::On {
            let now = [self.cs_stat(), self.ps_stat(), self.ps_stat()];
            if now != self.reg.last {
                self.check_registration();
            }
        }
    }

    fn new_conn_id(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    fn local_ip(&self) -> Ipv4Addr {
        self.cfg.identity.local_ip
    }

    fn net_event(&mut self, ev: NetEvent) {
        let id = match &ev {
            NetEvent::Connected { id, .. }
            | NetEvent::ConnectFailed { id, .. }
            | NetEvent::Sent { id, .. }
            | NetEvent::SendFailed { id, .. }
            | NetEvent::Received { id, .. }
            | NetEvent::Closed { id } => *id,
        };
        if self.ip.conn.as_ref().is_some_and(|c| c.id == id) {
            self.tcp_event(ev);
        } else if self.sm.conn_id() == Some(id) {
            self.sm_event(ev);
        } else if let NetEvent::Connected { .. } | NetEvent::Received { .. } = ev {
            // A connection the module no longer knows: drop it.
            self.net_out.push_back(NetRequest::Close { id });
        }
    }
}
