//! Start-up and restart detection.
//!
//! The SIM7000 prints `RDY` (at a fixed baud rate only), `+CFUN: 1`, `+CPIN: READY` and
//! `SMS Ready` when it boots (SIM7000 Series AT Command Manual V1.06 §20.3; with autobaud
//! they follow the first `AT`). The rules sim7k follows:
//!
//! * **Boot window.** From the first step until `SMS Ready`, at most [`BOOT_GRACE`] (after
//!   an `AT+CFUN=<fun>,1` reset: [`REBOOT_GRACE`]), these lines are the expected boot.
//! * **`RDY`** is printed only at power-on: once the modem has answered a command, a `RDY`
//!   (not announced by `AT+CFUN=…,1`) is a confirmed restart, at any time.
//! * **A lone `SMS Ready`, `Call Ready` or `+CPIN: READY`** outside the window is only a
//!   *suspected* restart (some modules print them late, or after a SIM event): it is logged.
//!   It is confirmed when a setting the recipe made is found gone — the command echo comes
//!   back after `ATE0` had been seen in force, or the socket status says `IP INITIAL` while
//!   a connection was open — and ruled out when a command still comes back without echo.
//! * A confirmed restart fails the run.

use std::time::{Duration, Instant};

use crate::util::time::later;

/// How long after the first step boot lines may still be the power-on boot.
pub const BOOT_GRACE: Duration = Duration::from_secs(30);
/// The same after an `AT+CFUN=…,1` reset.
pub const REBOOT_GRACE: Duration = Duration::from_secs(60);

/// What a boot line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BootVerdict {
    /// Part of the expected boot.
    Boot,
    /// A restart is suspected (log it).
    Suspected,
    /// A restart is confirmed: why.
    Confirmed(String),
    /// Already suspected: nothing new.
    Nothing,
}

/// Restart detection state.
#[derive(Debug, Clone, Default)]
pub(super) struct Boot {
    /// Until when boot lines are the expected boot.
    window_until: Option<Instant>,
    /// The expected boot finished (`SMS Ready` seen).
    done: bool,
    /// The modem answered a command since the last expected boot began.
    answered: bool,
    /// A suspected restart: its line.
    suspect: Option<String>,
    /// Evidence that a setting is gone, waiting for a suspicion to confirm.
    evidence: Option<String>,
    /// An `AT+CFUN=…,1` reset was sent: its `RDY` is expected.
    expect_rdy: bool,
}

impl Boot {
    /// A step starts; `reset`: it is an `AT+CFUN=…,1` (a restart is expected).
    pub(super) fn on_step(&mut self, now: Instant, reset: bool) {
        if reset {
            self.window_until = Some(later(now, REBOOT_GRACE));
            self.done = false;
            self.answered = false;
            self.suspect = None;
            self.evidence = None;
            self.expect_rdy = true;
        } else if self.window_until.is_none() {
            self.window_until = Some(later(now, BOOT_GRACE));
        }
    }

    /// When the boot window closes (for the timer table), while it is open.
    pub(super) fn window_end(&self) -> Option<Instant> {
        if self.done { None } else { self.window_until }
    }

    fn booting(&self, now: Instant) -> bool {
        !self.done && self.window_until.is_none_or(|t| now < t)
    }

    /// A command got its final result.
    pub(super) fn on_answer(&mut self) {
        self.answered = true;
    }

    /// A boot line arrived (`RDY`, `SMS Ready`, `Call Ready`, `+CPIN: READY`).
    pub(super) fn on_line(&mut self, line: &str, now: Instant) -> BootVerdict {
        let t = line.trim();
        if t == "RDY" {
            if std::mem::take(&mut self.expect_rdy) || !self.answered {
                self.answered = false;
                return BootVerdict::Boot;
            }
            return BootVerdict::Confirmed(
                "`RDY` is printed only at power-on, and the modem had answered commands before"
                    .into(),
            );
        }
        if self.booting(now) {
            if t == "SMS Ready" || t == "Call Ready" {
                self.done = true;
            }
            return BootVerdict::Boot;
        }
        if self.suspect.is_some() {
            return BootVerdict::Nothing;
        }
        self.suspect = Some(t.to_string());
        match self.evidence.clone() {
            Some(e) => BootVerdict::Confirmed(e),
            None => BootVerdict::Suspected,
        }
    }

    /// A setting the recipe made is gone (`why`): confirms a suspicion, or waits for one.
    pub(super) fn on_evidence(&mut self, why: String) -> Option<(String, String)> {
        match self.suspect.clone() {
            Some(line) => Some((line, why)),
            None => {
                self.evidence = Some(why);
                None
            }
        }
    }

    /// A setting the recipe made is still in force: a suspicion is ruled out. Returns the
    /// suspected line.
    pub(super) fn on_settings_intact(&mut self) -> Option<String> {
        self.evidence = None;
        self.suspect.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let t0 = Instant::now();
        let mut b = Boot::default();
        b.on_step(t0, false);
        // RDY before any answer: the power-on boot.
        assert_eq!(b.on_line("RDY", t0), BootVerdict::Boot);
        b.on_answer();
        assert_eq!(b.on_line("SMS Ready", t0), BootVerdict::Boot);
        // After the boot: a lone SMS Ready is suspected, RDY is confirmed.
        assert_eq!(b.on_line("SMS Ready", t0), BootVerdict::Suspected);
        assert_eq!(b.on_line("+CPIN: READY", t0), BootVerdict::Nothing);
        assert!(matches!(b.on_line("RDY", t0), BootVerdict::Confirmed(_)));
        assert_eq!(b.on_settings_intact().as_deref(), Some("SMS Ready"));
        // Evidence first, then the suspicion: confirmed.
        assert_eq!(b.on_evidence("echo is back".into()), None);
        assert_eq!(
            b.on_line("+CPIN: READY", t0),
            BootVerdict::Confirmed("echo is back".into())
        );
        // A reset re-opens the window; RDY within it is the expected boot.
        b.on_step(t0, true);
        assert_eq!(b.on_line("RDY", t0), BootVerdict::Boot);
        // A restart of a running modem in the first seconds: RDY after an answer.
        let mut b = Boot::default();
        b.on_step(t0, false);
        b.on_answer();
        assert!(matches!(b.on_line("RDY", t0), BootVerdict::Confirmed(_)));
    }
}
