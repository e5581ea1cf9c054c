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
use std::time::Instant;

use super::config::EmulatorConfig;
use super::fault::Fault;

mod bearer;
mod general;
mod injected;
mod input;
mod parse;
mod power;
mod receive;
mod sm;
mod state;
mod tcpip;
mod timers;
mod wire;

#[cfg(test)]
mod tests;

use injected::{FaultState, Trigger, take_use};
use parse::Cmd;
use state::{AppPdp, Busy, Input, Ip, IpState, PayloadKind, Power, Reg, Settings, Stored, TcpConn};
use timers::{Rng, Tk, plus};

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
    /// Resolution or connection failed.
    ConnectFailed {
        /// Connection.
        id: ConnId,
        /// Why, for the transcript.
        reason: String,
        /// The peer refused (TCP reset): `CONNECT FAIL` after [`super::Latency::connect_fail`].
        /// Otherwise the host did not answer (unreachable, timeout, no DNS answer):
        /// `CONNECT FAIL` at [`super::Latency::connect_timeout`] after the request.
        refused: bool,
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
