//! Timers: what the module waits for, the deterministic jitter, and firing what is due.

use std::time::{Duration, Instant};

use super::super::config::Span;
use super::{ConnId, Modem};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tk {
    BootDone,
    CiicrDone,
    CnactDone,
    AutoAttached(ConnId),
    ConnectOk(ConnId),
    ConnectFail(ConnId),
    /// The module's own connect timer ran out.
    ConnectTimeout(ConnId),
    SendResult {
        ok: bool,
    },
    SmConnectSend(ConnId),
    SmDone {
        ok: bool,
    },
    Keepalive(ConnId),
    RegCheck,
    SilenceEnd,
    Armed(u64),
}

/// `t + d`, with absurd durations (a user may ask for `1000000y`) capped at 100 years
/// instead of overflowing.
pub(super) fn plus(t: Instant, d: Duration) -> Instant {
    const CAP: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d.min(CAP)).unwrap_or(t)
}

/// A tiny deterministic PRNG (xorshift64*) for latency jitter.
#[derive(Debug, Clone)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Modem {
    pub(super) fn at(&mut self, when: Instant, tk: Tk) {
        self.timers.push((when, tk));
    }

    pub(super) fn after(&mut self, d: Duration, tk: Tk) {
        let t = plus(self.now, d);
        self.at(t, tk);
    }

    pub(super) fn jitter(&mut self, span: Span) -> Duration {
        let r = self.rng.next_f64();
        span.pick(r)
    }

    pub(super) fn run_timers(&mut self) {
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

    pub(super) fn fire(&mut self, tk: Tk) {
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
            Tk::ConnectTimeout(id) => self.connect_timeout(id),
            Tk::SendResult { ok } => self.send_result(ok),
        }
    }
}
