//! V.25ter, 3GPP and SIMCom general commands: echo, framing, identity, registration, radio.

use super::parse::{Form, Param, params};
use super::{AppPdp, BAD_PARAM, Cmd, Fail, IpState, Modem, NOT_ALLOWED, Outcome, Power, SYNTAX};

/// Fixed baud rates `AT+IPR` accepts (M106 §2.2.32); 0 = autobaud.
const IPR_RATES: &[u32] = &[
    0, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 921600, 2000000,
    2900000, 3000000, 3200000, 3686400, 4000000,
];

fn one_digit(form: &Form, max: u8) -> Option<u8> {
    match form {
        Form::Exec => Some(0),
        Form::Write(d) => d.parse::<u8>().ok().filter(|v| *v <= max),
        _ => None,
    }
}

impl Modem {
    pub(super) fn exec_general(&mut self, cmd: &Cmd) -> Option<Outcome> {
        let form = &cmd.form;
        let o = match cmd.name.as_str() {
            "" => Outcome::Ok,
            "E" => match one_digit(form, 1) {
                Some(v) => {
                    if v == 0 && self.faults.echo_stuck {
                        self.note("fault: echo stays on after ATE0".into());
                    } else {
                        self.s.echo = v == 1;
                    }
                    Outcome::Ok
                }
                None => SYNTAX,
            },
            "V" => match one_digit(form, 1) {
                Some(v) => {
                    self.s.verbose = v == 1;
                    Outcome::Ok
                }
                None => SYNTAX,
            },
            "Q" => match one_digit(form, 1) {
                Some(v) => {
                    self.s.quiet = v == 1;
                    Outcome::Ok
                }
                None => SYNTAX,
            },
            "I" => match one_digit(form, 0) {
                Some(_) => {
                    let t = self.cfg.identity.ati.clone();
                    self.line(&t);
                    Outcome::Ok
                }
                None => SYNTAX,
            },
            "&W" => match one_digit(form, 0) {
                Some(_) => {
                    self.nv.clts_saved = self.s.clts;
                    Outcome::Ok
                }
                None => SYNTAX,
            },
            "&D" | "&C" => match one_digit(form, 2) {
                Some(_) => Outcome::Ok,
                None => SYNTAX,
            },
            n if n.starts_with('S') && n.len() > 1 => {
                let reg: u8 = n[1..].parse().unwrap_or(255);
                let default: u32 = match reg {
                    0 => 0,
                    3 => 13,
                    4 => 10,
                    5 => 8,
                    6 => 2,
                    7 => 60,
                    8 => 2,
                    10 => 15,
                    _ => return Some(SYNTAX),
                };
                match form {
                    Form::Read => {
                        self.line(&format!("{default:03}"));
                        Outcome::Ok
                    }
                    Form::Write(v) => match v.parse::<u32>() {
                        // S3/S4 are fixed: only the defaults are accepted.
                        Ok(x) if (reg != 3 && reg != 4) || x == default => Outcome::Ok,
                        _ => SYNTAX,
                    },
                    _ => SYNTAX,
                }
            }
            "+CMEE" => match form {
                Form::Read => {
                    let l = format!("+CMEE: {}", self.s.cmee);
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CMEE: (0-2)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim().parse::<u8>() {
                    Ok(v) if v <= 2 => {
                        self.s.cmee = v;
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => {
                    self.s.cmee = 0;
                    Outcome::Ok
                }
            },
            "+CGMR" | "+GMR" => {
                self.info_exec(form, format!("Revision:{}", self.cfg.identity.revision))
            }
            "+GSN" | "+CGSN" => self.info_exec(form, self.cfg.identity.imei.clone()),
            "+CCID" => self.info_exec(form, self.cfg.identity.iccid.clone()),
            "+CIMI" => self.info_exec(form, self.cfg.identity.imsi.clone()),
            "+CGMI" | "+GMI" => self.info_exec(form, self.cfg.identity.manufacturer.clone()),
            "+CGMM" | "+GMM" => self.info_exec(form, self.cfg.identity.model.clone()),
            "+CPIN" => match form {
                Form::Read => {
                    if self.s.cfun == 1 {
                        self.line("+CPIN: READY");
                        Outcome::Ok
                    } else {
                        Outcome::Fail(Fail::Cme(10))
                    }
                }
                Form::Test => Outcome::Ok,
                _ => NOT_ALLOWED,
            },
            "+CSQ" => match form {
                Form::Exec => {
                    let (r, b) = if self.s.cfun == 1 {
                        (self.cfg.identity.rssi, self.cfg.identity.ber)
                    } else {
                        (99, 99)
                    };
                    self.line(&format!("+CSQ: {r},{b}"));
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CSQ: (0-31,99),(0-7,99)");
                    Outcome::Ok
                }
                _ => SYNTAX,
            },
            "+CGATT" => match form {
                Form::Read => {
                    let a = u8::from(self.s.attached && self.registered());
                    self.line(&format!("+CGATT: {a}"));
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CGATT: (0,1)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim() {
                    "1" => {
                        if self.registered() {
                            self.s.attached = true;
                            Outcome::Ok
                        } else {
                            Outcome::Fail(Fail::Cme(30))
                        }
                    }
                    "0" => {
                        self.s.attached = false;
                        self.result_ok();
                        self.network_lost("detach");
                        Outcome::Done
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CREG" | "+CGREG" | "+CEREG" => self.reg_cmd(cmd),
            "+COPS" => match form {
                Form::Read => {
                    if self.registered() {
                        let l = format!(
                            "+COPS: 0,0,\"{}\",{}",
                            self.cfg.identity.operator,
                            self.act()
                        );
                        self.line(&l);
                    } else {
                        self.line("+COPS: 0");
                    }
                    Outcome::Ok
                }
                Form::Write(p) => match params(p).ok().and_then(|v| v.first().and_then(Param::int))
                {
                    Some(0..=4) => Outcome::Ok,
                    _ => BAD_PARAM,
                },
                Form::Test => {
                    let op = self.cfg.identity.operator.clone();
                    let num = self.cfg.identity.mcc_mnc.replace('-', "");
                    let act = self.act();
                    self.line(&format!(
                        "+COPS: (2,\"{op}\",\"{op}\",\"{num}\",{act}),,(0-4),(0-2)"
                    ));
                    Outcome::Ok
                }
                Form::Exec => SYNTAX,
            },
            "+CNMP" => match form {
                Form::Read => {
                    let l = format!("+CNMP: {}", self.nv.cnmp);
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CNMP: (2,13,38,51)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim().parse::<u8>() {
                    Ok(v @ (2 | 13 | 38 | 51)) => {
                        self.nv.cnmp = v;
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CMNB" => match form {
                Form::Read => {
                    let l = format!("+CMNB: {}", self.nv.cmnb);
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CMNB: (1-3)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim().parse::<u8>() {
                    Ok(v @ 1..=3) => {
                        self.nv.cmnb = v;
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CBANDCFG" => self.bandcfg(form),
            "+CPSI" => match form {
                Form::Read => {
                    if self.registered() {
                        let mode = match self.cfg.identity.rat {
                            super::super::config::Rat::NbIot => "LTE NB-IOT",
                            super::super::config::Rat::CatM => "LTE CAT-M1",
                        };
                        let l = format!(
                            "+CPSI: {mode},Online,{},0xA411,243719872,308,EUTRAN-BAND20,6352,0,0,-11,-92,-64,8",
                            self.cfg.identity.mcc_mnc
                        );
                        self.line(&l);
                    } else {
                        self.line("+CPSI: NO SERVICE,Online");
                    }
                    Outcome::Ok
                }
                _ => SYNTAX,
            },
            "+CFUN" => self.cfun(form),
            "+IPR" => match form {
                Form::Read => {
                    let l = format!("+IPR: {}", self.nv.ipr);
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+IPR: (),(0,300,600,1200,2400,4800,9600,19200,38400,57600,115200,230400,921600,2000000,2900000,3000000,3200000,3686400,4000000)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim().parse::<u32>() {
                    Ok(r) if IPR_RATES.contains(&r) => {
                        self.nv.ipr = r;
                        self.note(format!("IPR={r} saved (takes effect on the host side only; a pty has no baud rate)"));
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CPSMS" => match form {
                Form::Read => {
                    let (m, t, a) = self.nv.cpsms.clone();
                    self.line(&format!("+CPSMS: {m},,,\"{t}\",\"{a}\""));
                    Outcome::Ok
                }
                Form::Write(p) => {
                    let Ok(v) = params(p) else {
                        return Some(BAD_PARAM);
                    };
                    let Some(m @ 0..=1) = v.first().and_then(Param::int) else {
                        return Some(BAD_PARAM);
                    };
                    let bits = |i: usize, dflt: &str| -> Option<String> {
                        match v.get(i) {
                            None => Some(dflt.to_string()),
                            Some(p) if p.is_empty() => Some(dflt.to_string()),
                            Some(p)
                                if p.text.len() == 8
                                    && p.text.bytes().all(|c| c == b'0' || c == b'1') =>
                            {
                                Some(p.text.clone())
                            }
                            _ => None,
                        }
                    };
                    let (Some(t), Some(a)) = (bits(3, &self.nv.cpsms.1), bits(4, &self.nv.cpsms.2))
                    else {
                        return Some(BAD_PARAM);
                    };
                    self.nv.cpsms = (m as u8, t, a);
                    Outcome::Ok
                }
                Form::Exec => {
                    self.nv.cpsms.0 = 0;
                    Outcome::Ok
                }
                Form::Test => {
                    self.line(
                        "+CPSMS: (0,1),,,(\"00000000\"-\"11111111\"),(\"00000000\"-\"11111111\")",
                    );
                    Outcome::Ok
                }
            },
            "+CEDRXS" => match form {
                Form::Read => {
                    let lines = [
                        format!("+CEDRXS: 4,\"{}\"", self.nv.cedrxs[0].1),
                        format!("+CEDRXS: 5,\"{}\"", self.nv.cedrxs[1].1),
                    ];
                    self.lines(&lines);
                    Outcome::Ok
                }
                Form::Write(p) => {
                    let Ok(v) = params(p) else {
                        return Some(BAD_PARAM);
                    };
                    let Some(n @ 0..=3) = v.first().and_then(Param::int) else {
                        return Some(BAD_PARAM);
                    };
                    let idx = match v.get(1).and_then(Param::int) {
                        Some(4) => 0,
                        Some(5) => 1,
                        None if v.len() < 2 => 0,
                        _ => return Some(BAD_PARAM),
                    };
                    if let Some(b) = v.get(2) {
                        if b.text.len() != 4 || !b.text.bytes().all(|c| c == b'0' || c == b'1') {
                            return Some(BAD_PARAM);
                        }
                        self.nv.cedrxs[idx].1 = b.text.clone();
                    }
                    self.nv.cedrxs[idx].0 = n as u8;
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CEDRXS: (0-3),(4,5),(\"0000\"-\"1111\")");
                    Outcome::Ok
                }
                Form::Exec => Outcome::Ok,
            },
            "+CGDCONT" => self.cgdcont(form),
            "+CGNAPN" => match form {
                Form::Exec => {
                    if self.registered() {
                        let l = format!("+CGNAPN: 1,\"{}\"", self.cfg.identity.network_apn);
                        self.line(&l);
                    } else {
                        self.line("+CGNAPN: 0,\"\"");
                    }
                    Outcome::Ok
                }
                _ => SYNTAX,
            },
            // M106 §5.2 (docs/sim7000.md, "Identity and status"); read back only: the
            // emulated network always hands out its APN.
            "+CAPNMODE" => match form {
                Form::Read => {
                    let l = format!("+CAPNMODE: {}", self.s.capnmode);
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CAPNMODE: (0,1)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim() {
                    "0" | "1" => {
                        self.s.capnmode = u8::from(p.trim() == "1");
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CLTS" => match form {
                Form::Read => {
                    let l = format!("+CLTS: {}", u8::from(self.s.clts));
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CLTS: (0,1)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim() {
                    "0" | "1" => {
                        self.s.clts = p.trim() == "1";
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CGACT" => match form {
                Form::Read => {
                    let l = format!("+CGACT: 1,{}", u8::from(self.s.cgact && self.registered()));
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Write(p) => {
                    let Ok(v) = params(p) else {
                        return Some(BAD_PARAM);
                    };
                    match v.first().and_then(Param::int) {
                        Some(1) if self.registered() => {
                            self.s.cgact = true;
                            Outcome::Ok
                        }
                        Some(1) => Outcome::Fail(Fail::Cme(30)),
                        Some(0) => {
                            self.s.cgact = false;
                            Outcome::Ok
                        }
                        _ => BAD_PARAM,
                    }
                }
                _ => SYNTAX,
            },
            "+IFC" => match form {
                Form::Read => {
                    self.line("+IFC: 0,0");
                    Outcome::Ok
                }
                Form::Write(p) => match params(p) {
                    Ok(v) if v.iter().all(|x| matches!(x.int(), Some(0 | 2))) => Outcome::Ok,
                    _ => BAD_PARAM,
                },
                _ => SYNTAX,
            },
            "+CSCLK" => match form {
                Form::Read => {
                    self.line("+CSCLK: 0");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim() {
                    "0" | "1" | "2" => Outcome::Ok,
                    _ => BAD_PARAM,
                },
                _ => SYNTAX,
            },
            "+CCLK" => match form {
                Form::Read => {
                    self.line("+CCLK: \"25/01/01,12:00:00+16\"");
                    Outcome::Ok
                }
                _ => SYNTAX,
            },
            "+CPOWD" => match form {
                Form::Write(p) if p.trim() == "1" => {
                    self.line("NORMAL POWER DOWN");
                    self.power_down();
                    Outcome::Done
                }
                Form::Write(p) if p.trim() == "0" => {
                    self.power_down();
                    Outcome::Done
                }
                _ => SYNTAX,
            },
            _ => return None,
        };
        Some(o)
    }

    /// Exec-only command printing one info line.
    fn info_exec(&mut self, form: &Form, text: String) -> Outcome {
        match form {
            Form::Exec => {
                self.line(&text);
                Outcome::Ok
            }
            Form::Test => Outcome::Ok,
            _ => SYNTAX,
        }
    }

    fn power_down(&mut self) {
        self.note("powered down: the module answers nothing until restarted".into());
        self.close_all_connections();
        self.busy = None;
        self.power = Power::Off;
        self.timers.clear();
    }

    fn reg_cmd(&mut self, cmd: &Cmd) -> Outcome {
        let (idx, name, max_n) = match cmd.name.as_str() {
            "+CREG" => (0usize, "+CREG", 2u8),
            "+CGREG" => (1, "+CGREG", 2),
            _ => (2, "+CEREG", 4),
        };
        match &cmd.form {
            Form::Read => {
                let stat = if idx == 0 {
                    self.cs_stat()
                } else {
                    self.ps_stat()
                };
                let n = [self.s.creg_n, self.s.cgreg_n, self.s.cereg_n][idx];
                let l = if n >= 2 && (stat == 1 || stat == 5) {
                    format!("{name}: {n},{stat},\"A411\",\"0E3D6C0\",{}", self.act())
                } else {
                    format!("{name}: {n},{stat}")
                };
                self.line(&l);
                self.reg.polls = self.reg.polls.saturating_add(1);
                Outcome::Ok
            }
            Form::Test => {
                self.line(&format!("{name}: (0-{max_n})"));
                Outcome::Ok
            }
            Form::Write(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max_n => {
                    match idx {
                        0 => self.s.creg_n = n,
                        1 => self.s.cgreg_n = n,
                        _ => self.s.cereg_n = n,
                    }
                    Outcome::Ok
                }
                _ => BAD_PARAM,
            },
            Form::Exec => {
                match idx {
                    0 => self.s.creg_n = 0,
                    1 => self.s.cgreg_n = 0,
                    _ => self.s.cereg_n = 0,
                }
                Outcome::Ok
            }
        }
    }

    fn bandcfg(&mut self, form: &Form) -> Outcome {
        let list = |b: &[u16]| b.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        match form {
            Form::Read => {
                let lines = [
                    format!("+CBANDCFG: \"CAT-M\",{}", list(&self.nv.bands_catm)),
                    format!("+CBANDCFG: \"NB-IOT\",{}", list(&self.nv.bands_nb)),
                ];
                self.lines(&lines);
                Outcome::Ok
            }
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                let Some(mode) = v.first() else {
                    return BAD_PARAM;
                };
                let mut bands = Vec::new();
                for b in &v[1..] {
                    match b.int() {
                        Some(x @ 1..=85) => bands.push(x as u16),
                        _ => return BAD_PARAM,
                    }
                }
                if bands.is_empty() {
                    return BAD_PARAM;
                }
                match mode.text.to_ascii_uppercase().as_str() {
                    "CAT-M" => self.nv.bands_catm = bands,
                    "NB-IOT" => self.nv.bands_nb = bands,
                    _ => return BAD_PARAM,
                }
                Outcome::Ok
            }
            Form::Test => {
                self.line("+CBANDCFG: (\"CAT-M\",\"NB-IOT\"),(1,2,3,4,5,8,12,13,14,18,19,20,25,26,27,28,66,71,85)");
                Outcome::Ok
            }
            Form::Exec => SYNTAX,
        }
    }

    fn cgdcont(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                let lines: Vec<String> = self
                    .nv
                    .cgdcont
                    .iter()
                    .map(|(cid, t, apn)| {
                        format!("+CGDCONT: {cid},\"{t}\",\"{apn}\",\"0.0.0.0\",0,0,0,0")
                    })
                    .collect();
                if !lines.is_empty() {
                    self.lines(&lines);
                }
                Outcome::Ok
            }
            Form::Test => {
                self.lines(&[
                    "+CGDCONT: (1-24),\"IP\",,,(0-2),(0-4),(0,1),(0,1)",
                    "+CGDCONT: (1-24),\"IPV6\",,,(0-2),(0-4),(0,1),(0,1)",
                    "+CGDCONT: (1-24),\"IPV4V6\",,,(0-2),(0-4),(0,1),(0,1)",
                    "+CGDCONT: (1-24),\"Non-IP\",,,(0-2),(0-4),(0,1),(0,1)",
                ]);
                Outcome::Ok
            }
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                let Some(cid) = v
                    .first()
                    .and_then(Param::int)
                    .filter(|c| (1..=24).contains(c))
                else {
                    return BAD_PARAM;
                };
                let cid = cid as u8;
                if v.len() == 1 {
                    self.nv.cgdcont.retain(|(c, _, _)| *c != cid);
                    return Outcome::Ok;
                }
                let pdp = v
                    .get(1)
                    .map(|p| p.text.to_ascii_uppercase())
                    .unwrap_or_default();
                let pdp = match pdp.as_str() {
                    "IP" => "IP",
                    "IPV6" => "IPV6",
                    "IPV4V6" => "IPV4V6",
                    "NON-IP" => "Non-IP",
                    _ => return BAD_PARAM,
                };
                let apn = v.get(2).map(|p| p.text.clone()).unwrap_or_default();
                if apn.len() > 99 {
                    return BAD_PARAM;
                }
                self.nv.cgdcont.retain(|(c, _, _)| *c != cid);
                self.nv.cgdcont.push((cid, pdp.to_string(), apn));
                self.nv.cgdcont.sort_by_key(|(c, _, _)| *c);
                Outcome::Ok
            }
            Form::Exec => SYNTAX,
        }
    }

    fn cfun(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                let l = format!("+CFUN: {}", self.s.cfun);
                self.line(&l);
                Outcome::Ok
            }
            Form::Test => {
                self.line("+CFUN: (0,1,4,5,6,7),(0,1)");
                Outcome::Ok
            }
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                let fun = v.first().and_then(Param::int);
                let rst = match v.get(1) {
                    None => Some(0),
                    Some(x) => x.int(),
                };
                match (fun, rst) {
                    (Some(f @ (0 | 1 | 4)), Some(0)) => {
                        let f = f as u8;
                        let was = self.s.cfun;
                        self.s.cfun = f;
                        self.result_ok();
                        if f == 1 && was != 1 {
                            self.line("+CPIN: READY");
                            self.restart_registration();
                        } else if f != 1 && was == 1 {
                            self.line("+CPIN: NOT READY");
                            self.network_lost("radio off");
                        }
                        Outcome::Done
                    }
                    (Some(1), Some(1)) => {
                        self.result_ok();
                        self.reboot("AT+CFUN=1,1");
                        Outcome::Done
                    }
                    _ => BAD_PARAM,
                }
            }
            Form::Exec => SYNTAX,
        }
    }

    /// The network dropped the module's bearers (detach, radio off, PDP deactivation).
    pub(super) fn network_lost(&mut self, why: &str) {
        self.note(format!("bearers lost ({why})"));
        if self.ip.state.context_active() || self.ip.state == IpState::Config {
            self.pdp_deact_cip();
        }
        if self.app != AppPdp::Inactive {
            self.app_deact();
        }
    }
}
