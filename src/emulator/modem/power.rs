//! Power (boot, reboot, power down) and network registration with its URCs.

use super::super::config::Rat;
use super::injected::Trigger;
use super::state::{AppPdp, Input, Ip, Power, Settings};
use super::timers::{Tk, plus};
use super::{Modem, NetRequest, sm};

impl Modem {
    // ----- power ------------------------------------------------------------------------

    pub(super) fn start_boot(&mut self) {
        self.power = Power::Booting;
        let boot = self.cfg.latency.boot;
        self.after(boot, Tk::BootDone);
    }

    pub(super) fn boot_done(&mut self) {
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
    pub(super) fn reboot(&mut self, why: &str) {
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

    pub(super) fn close_all_connections(&mut self) {
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

    pub(super) fn restart_registration(&mut self) {
        self.reg.since = self.now;
        self.reg.polls = 0;
        self.reg.last = [self.cs_stat(), self.ps_stat(), self.ps_stat()];
        let t = self.cfg.registration.searching_for;
        if !t.is_zero() {
            self.after(t, Tk::RegCheck);
        }
    }

    pub(super) fn registered(&self) -> bool {
        self.s.cfun == 1
            && self.reg.polls >= self.cfg.registration.searching_polls
            && self.now >= plus(self.reg.since, self.cfg.registration.searching_for)
    }

    /// PS domain stat (CGREG / CEREG).
    pub(super) fn ps_stat(&self) -> u8 {
        if self.s.cfun != 1 {
            0
        } else if self.registered() {
            1
        } else {
            2
        }
    }

    /// CS domain stat (CREG): stays 0 on an NB-IoT-only SIM.
    pub(super) fn cs_stat(&self) -> u8 {
        if self.cfg.registration.nbiot_sim {
            0
        } else {
            self.ps_stat()
        }
    }

    pub(super) fn act(&self) -> u8 {
        match self.cfg.identity.rat {
            Rat::CatM => 7,
            Rat::NbIot => 9,
        }
    }

    /// Registration URCs on change (for n ≥ 1), network time with CLTS=1.
    pub(super) fn check_registration(&mut self) {
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
            // DST before *PSUTTZ, as logged (docs/sim7000.md, "Network time").
            self.line("DST: 0");
            self.line("*PSUTTZ: 25/01/01,12:00:00\",\"+04\",0");
        }
    }
}
