//! Injected faults at run time: counted faults, faults armed by a trigger, and silence.

use std::time::{Duration, Instant};

use super::super::fault::{Fault, normalise_command};
use super::parse::Cmd;
use super::state::AppPdp;
use super::timers::{Tk, plus};
use super::{IpState, Modem};

/// Faults with a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArmedKind {
    PeerClose,
    PdpDeact,
    Reboot,
    Silent(Option<Duration>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    Connected,
    PdpUp,
    Synced,
}

impl ArmedKind {
    pub(super) fn trigger(self) -> Trigger {
        match self {
            ArmedKind::PeerClose => Trigger::Connected,
            ArmedKind::PdpDeact => Trigger::PdpUp,
            ArmedKind::Reboot | ArmedKind::Silent(_) => Trigger::Synced,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Armed {
    pub(super) id: u64,
    pub(super) kind: ArmedKind,
    pub(super) after: Duration,
    pub(super) scheduled: bool,
}

/// Active faults.
#[derive(Debug, Clone, Default)]
pub(super) struct FaultState {
    pub(super) drip: Option<Duration>,
    pub(super) errors: Vec<(String, Option<u32>)>,
    pub(super) urcs: Vec<(Option<String>, Option<u32>)>,
    pub(super) extra_rxget: u32,
    pub(super) connect_fail: Option<Option<u32>>,
    pub(super) send_fail: Option<Option<u32>>,
    pub(super) echo_stuck: bool,
    pub(super) smconn_hang: bool,
    pub(super) long_host: Option<usize>,
    pub(super) armed: Vec<Armed>,
    pub(super) next_armed: u64,
    /// `Some(None)`: silent until cleared or rebooted.
    pub(super) silent: Option<Option<Instant>>,
}

/// Consume one use of a counted fault; true when it applies.
pub(super) fn take_use(slot: &mut Option<Option<u32>>) -> bool {
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
pub(super) fn pattern_matches(pattern: &str, text: &str) -> bool {
    text.starts_with(pattern)
        && text[pattern.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
}

impl Modem {
    // ----- faults -----------------------------------------------------------------------

    pub(super) fn add_fault(&mut self, f: Fault, runtime: bool) {
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

    pub(super) fn schedule_armed(&mut self, id: u64) {
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

    pub(super) fn trigger(&mut self, t: Trigger) {
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

    pub(super) fn fire_armed(&mut self, id: u64) {
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

    pub(super) fn fault_error(&mut self, cmd: &Cmd) -> bool {
        let text = super::parse::fault_text(cmd);
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

    pub(super) fn fault_urcs(&mut self, cmds: &[Cmd]) {
        let texts: Vec<String> = cmds.iter().map(super::parse::fault_text).collect();
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
            self.line("DST: 1");
            self.line("*PSUTTZ: 25/01/01,12:00:00\",\"+04\",1");
        }
    }
}
