//! Input from the host: command lines (echo, `A/`, the 559-character limit), running the
//! commands of a line, and payload after a `> ` prompt.

use super::injected::Trigger;
use super::parse::{self, Cmd};
use super::state::{Input, Payload, PayloadKind};
use super::state::{IpState, Power};
use super::{Fail, Modem, Outcome, SYNTAX};

impl Modem {
    // ----- input ------------------------------------------------------------------------

    /// One byte from the host. Returns true when the following LF was consumed.
    pub(super) fn byte(&mut self, b: u8, lf_follows: bool) -> bool {
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

    pub(super) fn run_line(&mut self, raw: Vec<u8>) {
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
            self.line("+CFUN: 1");
            self.line("+CPIN: READY");
            self.line("SMS Ready");
        }
    }

    pub(super) fn run_cmds(&mut self, cmds: &[Cmd]) {
        let mut last = Outcome::Ok;
        for cmd in cmds {
            let o = if self.fault_error(cmd) {
                self.note(format!("fault: ERROR for {}", parse::fault_text(cmd)));
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

    pub(super) fn exec(&mut self, cmd: &Cmd) -> Outcome {
        if let Some(o) = self.exec_general(cmd) {
            return o;
        }
        if let Some(o) = self.exec_tcpip(cmd) {
            return o;
        }
        if cmd.name == "+CSSLCFG" {
            return self.csslcfg(&cmd.form);
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

    pub(super) fn start_payload(&mut self, kind: PayloadKind, hex: bool) {
        self.input = Input::Payload(Payload {
            kind,
            hex,
            nibble: None,
            buf: Vec::new(),
        });
    }

    pub(super) fn payload_byte(&mut self, b: u8) {
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
    pub(super) fn after_activity(&mut self) {
        if self.power == Power::On {
            let now = [self.cs_stat(), self.ps_stat(), self.ps_stat()];
            if now != self.reg.last {
                self.check_registration();
            }
        }
    }
}
