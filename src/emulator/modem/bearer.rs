//! The `AT+CNACT` application bearer (what the native MQTT commands use).

use super::injected::Trigger;
use super::parse::{Form, Param, params};
use super::state::AppPdp;
use super::timers::Tk;
use super::{BAD_PARAM, Fail, Modem, NOT_ALLOWED, Outcome, SYNTAX};

impl Modem {
    pub(super) fn cnact(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                let l = if self.app == AppPdp::Active {
                    format!("+CNACT: 1,\"{}\"", self.local_ip())
                } else {
                    "+CNACT: 0,\"0.0.0.0\"".to_string()
                };
                self.line(&l);
                Outcome::Ok
            }
            Form::Test => {
                self.line("+CNACT: (0-2),\"APN\"");
                Outcome::Ok
            }
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                if v.len() > 2 || v.get(1).is_some_and(|a| a.text.len() > 50) {
                    return BAD_PARAM;
                }
                match v.first().and_then(Param::int) {
                    Some(1 | 2) => {
                        if self.app != AppPdp::Inactive {
                            return NOT_ALLOWED;
                        }
                        if !self.registered() {
                            return Outcome::Fail(Fail::Cme(30));
                        }
                        self.app = AppPdp::Activating;
                        let d = self.jitter(self.cfg.latency.attach);
                        self.after(d, Tk::CnactDone);
                        Outcome::Ok
                    }
                    Some(0) => {
                        self.result_ok();
                        if self.app != AppPdp::Inactive {
                            self.app_deact();
                        }
                        Outcome::Done
                    }
                    _ => BAD_PARAM,
                }
            }
            Form::Exec => SYNTAX,
        }
    }

    pub(super) fn cnact_done(&mut self) {
        if self.app != AppPdp::Activating {
            return;
        }
        if self.registered() {
            self.app = AppPdp::Active;
            self.line("+APP PDP: ACTIVE");
            self.trigger(Trigger::PdpUp);
        } else {
            self.app = AppPdp::Inactive;
            self.line("+APP PDP: DEACTIVE");
        }
    }

    /// The application bearer went down.
    pub(super) fn app_deact(&mut self) {
        self.app = AppPdp::Inactive;
        self.line("+APP PDP: DEACTIVE");
        self.sm_drop();
    }
}
