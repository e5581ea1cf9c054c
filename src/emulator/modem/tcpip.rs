//! The single-connection TCP/IP application (`AT+CIP...`, `AT+CSTT`, `AT+CIICR`, `AT+CIFSR`):
//! states, connecting, sending, closing (receiving is in `receive.rs`).

use std::time::Instant;

use super::parse::{Form, Param, params};
use super::{
    AppPdp, BAD_PARAM, Busy, Cmd, ConnId, Fail, IpState, Modem, NOT_ALLOWED, NOT_SUPPORTED,
    NetEvent, NetRequest, Outcome, PayloadKind, SYNTAX, Settings, TcpConn, Tk, Trigger, take_use,
};

/// Largest `AT+CIPSEND` payload (`AT+CIPSEND?`).
const MAX_SEND: usize = crate::at::limits::MAX_SEND;

type Get = fn(&Settings) -> u8;
type Set = fn(&mut Settings, u8);

impl Modem {
    pub(super) fn exec_tcpip(&mut self, cmd: &Cmd) -> Option<Outcome> {
        let form = &cmd.form;
        let o = match cmd.name.as_str() {
            "+CIPMUX" => match form {
                Form::Read => {
                    self.line("+CIPMUX: 0");
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CIPMUX: (0,1)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim() {
                    "0" | "1" if self.ip.state != IpState::Initial => NOT_ALLOWED,
                    "0" => Outcome::Ok,
                    "1" => {
                        self.note("multi-connection mode (CIPMUX=1) is not emulated".into());
                        NOT_SUPPORTED
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CSTT" => self.cstt(form),
            "+CIICR" => match form {
                Form::Exec => {
                    if self.ip.state != IpState::Start {
                        return Some(NOT_ALLOWED);
                    }
                    self.ip.state = IpState::Config;
                    self.busy = Some(Busy::Ciicr);
                    let d = self.jitter(self.cfg.latency.attach);
                    self.after(d, Tk::CiicrDone);
                    Outcome::Async
                }
                Form::Test => Outcome::Ok,
                _ => SYNTAX,
            },
            "+CIFSR" | "+CIFSREX" => match form {
                Form::Exec => {
                    if !self.ip.state.context_active() {
                        return Some(NOT_ALLOWED);
                    }
                    if self.ip.state == IpState::GprsAct {
                        self.ip.state = IpState::Status;
                    }
                    let ip = self.local_ip().to_string();
                    if cmd.name == "+CIFSR" {
                        self.line(&ip);
                        Outcome::NoFinal
                    } else {
                        self.line(&format!("+CIFSREX: {ip}"));
                        Outcome::Ok
                    }
                }
                Form::Test => Outcome::Ok,
                _ => SYNTAX,
            },
            "+CIPSTATUS" => match form {
                Form::Exec => {
                    self.result_ok();
                    let l = format!("STATE: {}", self.ip.state.text());
                    self.line(&l);
                    Outcome::Done
                }
                Form::Test => Outcome::Ok,
                _ => SYNTAX,
            },
            "+CIPSTART" => self.cipstart(form),
            "+CIPSEND" => self.cipsend(form),
            "+CIPQSEND" => self.flag(
                "+CIPQSEND",
                form,
                1,
                |s| u8::from(s.cipqsend),
                |s, v| s.cipqsend = v == 1,
            ),
            "+CIPHEAD" => self.flag(
                "+CIPHEAD",
                form,
                1,
                |s| u8::from(s.ciphead),
                |s, v| s.ciphead = v == 1,
            ),
            "+CIPSRIP" => self.flag(
                "+CIPSRIP",
                form,
                1,
                |s| u8::from(s.cipsrip),
                |s, v| s.cipsrip = v == 1,
            ),
            "+CIPSHOWTP" => self.flag(
                "+CIPSHOWTP",
                form,
                1,
                |s| u8::from(s.cipshowtp),
                |s, v| s.cipshowtp = v == 1,
            ),
            "+CIPSENDHEX" => self.flag(
                "+CIPSENDHEX",
                form,
                1,
                |s| u8::from(s.cipsendhex),
                |s, v| s.cipsendhex = v == 1,
            ),
            "+CIPSPRT" => self.flag("+CIPSPRT", form, 2, |s| s.cipsprt, |s, v| s.cipsprt = v),
            "+CIPRXGET" => self.ciprxget(form),
            "+CIPCLOSE" => match form {
                Form::Exec | Form::Write(_) => {
                    if let Form::Write(p) = form
                        && !matches!(p.trim(), "0" | "1")
                    {
                        return Some(BAD_PARAM);
                    }
                    if !matches!(self.ip.state, IpState::TcpConnecting | IpState::ConnectOk) {
                        return Some(NOT_ALLOWED);
                    }
                    self.drop_conn_socket();
                    self.ip.state = IpState::TcpClosed;
                    self.line("CLOSE OK");
                    Outcome::Done
                }
                Form::Test => Outcome::Ok,
                Form::Read => SYNTAX,
            },
            "+CIPSHUT" => match form {
                Form::Exec => {
                    self.drop_conn_socket();
                    self.ip = super::Ip::new();
                    self.line("SHUT OK");
                    Outcome::Done
                }
                Form::Test => Outcome::Ok,
                _ => SYNTAX,
            },
            "+CIPTKA" => match form {
                Form::Read => {
                    let (m, i, n, c) = self.s.ciptka;
                    self.line(&format!("+CIPTKA: {m},{i},{n},{c}"));
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CIPTKA: (0,1),(30-7200),(30-600),(1-9)");
                    Outcome::Ok
                }
                Form::Write(p) => {
                    let Ok(v) = params(p) else {
                        return Some(BAD_PARAM);
                    };
                    let get = |i: usize, lo: i64, hi: i64, d: i64| -> Option<i64> {
                        match v.get(i) {
                            None => Some(d),
                            Some(x) if x.is_empty() => Some(d),
                            Some(x) => x.int().filter(|n| (lo..=hi).contains(n)),
                        }
                    };
                    let (m, i, n, c) = self.s.ciptka;
                    match (
                        get(0, 0, 1, -1),
                        get(1, 30, 7200, i64::from(i)),
                        get(2, 30, 600, i64::from(n)),
                        get(3, 1, 9, i64::from(c)),
                    ) {
                        (Some(mm @ 0..=1), Some(ii), Some(nn), Some(cc)) if v.len() <= 4 => {
                            let _ = m;
                            self.s.ciptka = (mm as u8, ii as u32, nn as u32, cc as u8);
                            Outcome::Ok
                        }
                        _ => BAD_PARAM,
                    }
                }
                Form::Exec => SYNTAX,
            },
            "+CIPACK" => match form {
                Form::Exec => {
                    let (tx, ack) = (self.ip.tx_total, self.ip.acked);
                    self.line(&format!("+CIPACK: {tx},{ack},{}", tx.saturating_sub(ack)));
                    Outcome::Ok
                }
                Form::Test => Outcome::Ok,
                _ => SYNTAX,
            },
            "+CIPMODE" => match form {
                Form::Read => {
                    self.line("+CIPMODE: 0");
                    Outcome::Ok
                }
                Form::Test => {
                    self.line("+CIPMODE: (0,1)");
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim() {
                    "0" => Outcome::Ok,
                    "1" => {
                        self.note("transparent mode (CIPMODE=1) is not emulated".into());
                        NOT_SUPPORTED
                    }
                    _ => BAD_PARAM,
                },
                Form::Exec => SYNTAX,
            },
            "+CIPRDTIMER" => match form {
                Form::Read => {
                    let (a, b) = self.s.ciprdtimer;
                    self.line(&format!("+CIPRDTIMER: {a},{b}"));
                    Outcome::Ok
                }
                Form::Write(p) => {
                    let Ok(v) = params(p) else {
                        return Some(BAD_PARAM);
                    };
                    match (
                        v.first().and_then(Param::int),
                        v.get(1).and_then(Param::int),
                    ) {
                        (Some(a @ 100..=4000), Some(b @ 100..=7000)) if v.len() == 2 => {
                            self.s.ciprdtimer = (a as u32, b as u32);
                            Outcome::Ok
                        }
                        _ => BAD_PARAM,
                    }
                }
                _ => SYNTAX,
            },
            "+CIPOPTION" => match form {
                Form::Read => {
                    self.line("+CIPOPTION: 0");
                    Outcome::Ok
                }
                Form::Write(p) if matches!(p.trim(), "0" | "1") => Outcome::Ok,
                Form::Write(_) => BAD_PARAM,
                _ => SYNTAX,
            },
            "+CIPCCFG" => match form {
                Form::Read => {
                    self.line("+CIPCCFG: 5,2,1024,1,0,1460,50");
                    Outcome::Ok
                }
                Form::Write(p) if params(p).is_ok() => Outcome::Ok,
                Form::Write(_) => BAD_PARAM,
                _ => SYNTAX,
            },
            "+CNACT" => self.cnact(form),
            _ => return None,
        };
        Some(o)
    }

    fn flag(&mut self, name: &str, form: &Form, max: u8, get: Get, set: Set) -> Outcome {
        match form {
            Form::Read => {
                let l = format!("{name}: {}", get(&self.s));
                self.line(&l);
                Outcome::Ok
            }
            Form::Test => {
                self.line(&format!("{name}: (0-{max})"));
                Outcome::Ok
            }
            Form::Write(p) => match p.trim().parse::<u8>() {
                Ok(v) if v <= max => {
                    set(&mut self.s, v);
                    Outcome::Ok
                }
                _ => BAD_PARAM,
            },
            Form::Exec => SYNTAX,
        }
    }

    fn cstt(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                let (a, u, p) = self.s.apn.clone();
                self.line(&format!("+CSTT: \"{a}\",\"{u}\",\"{p}\""));
                Outcome::Ok
            }
            Form::Test => {
                self.line("+CSTT: \"APN\",\"USER\",\"PWD\"");
                Outcome::Ok
            }
            Form::Exec | Form::Write(_) => {
                if self.ip.state != IpState::Initial {
                    return NOT_ALLOWED;
                }
                let v = match form {
                    Form::Write(p) => match params(p) {
                        Ok(v) => v,
                        Err(()) => return BAD_PARAM,
                    },
                    _ => Vec::new(),
                };
                if v.len() > 3 || v.iter().any(|p| p.text.len() > 50) {
                    return BAD_PARAM;
                }
                let get = |i: usize| v.get(i).map(|p| p.text.clone()).unwrap_or_default();
                let apn = if v.is_empty() {
                    "CMNET".to_string()
                } else {
                    get(0)
                };
                self.s.apn = (apn, get(1), get(2));
                self.ip.state = IpState::Start;
                Outcome::Ok
            }
        }
    }

    pub(super) fn ciicr_done(&mut self) {
        if self.busy != Some(Busy::Ciicr) {
            return;
        }
        self.busy = None;
        if self.registered() && self.s.attached {
            self.ip.state = IpState::GprsAct;
            self.note(format!("PDP context up, IP {}", self.local_ip()));
            self.result_ok();
            self.trigger(Trigger::PdpUp);
        } else {
            self.ip.state = IpState::PdpDeact;
            self.note("CIICR failed: not registered/attached".into());
            self.result_fail(Fail::Cme(148));
        }
    }

    fn cipstart(&mut self, form: &Form) -> Outcome {
        let p = match form {
            Form::Write(p) => p,
            Form::Test => {
                self.lines(&[
                    "+CIPSTART: (\"TCP\",\"UDP\"),(\"(0-255).(0-255).(0-255).(0-255)\"),(1-65535)",
                    "+CIPSTART: (\"TCP\",\"UDP\"),(\"DOMAIN NAME\"),(1-65535)",
                ]);
                return Outcome::Ok;
            }
            _ => return SYNTAX,
        };
        let Ok(v) = params(p) else { return BAD_PARAM };
        if v.len() != 3 {
            return BAD_PARAM;
        }
        let mode = v[0].text.to_ascii_uppercase();
        let host = v[1].text.trim().to_string();
        let Some(port) = v[2].int().filter(|p| (1..=65535).contains(p)) else {
            return BAD_PARAM;
        };
        let port = port as u16;
        match mode.as_str() {
            "TCP" => {}
            "UDP" => {
                self.note("UDP connections are not emulated".into());
                return NOT_SUPPORTED;
            }
            _ => return BAD_PARAM,
        }
        if host.is_empty() {
            return BAD_PARAM;
        }
        match self.ip.state {
            IpState::ConnectOk | IpState::TcpConnecting => {
                self.result_fail(Fail::Plain);
                self.line("ALREADY CONNECT");
                return Outcome::Done;
            }
            IpState::Initial => {
                if !self.registered() {
                    return Outcome::Fail(Fail::Cme(30));
                }
            }
            IpState::Status => {}
            IpState::TcpClosed if self.cfg.cipstart_from_closed => {}
            _ => return NOT_ALLOWED,
        }
        if let Some(max) = self.faults.long_host
            && host.len() > max
        {
            self.note(format!("fault: host name longer than {max} rejected"));
            return NOT_ALLOWED;
        }
        let auto = self.ip.state == IpState::Initial;
        let id = self.new_conn_id();
        self.ip.conn = Some(TcpConn {
            id,
            host: host.clone(),
            port,
            peer: None,
            open: false,
            gone: false,
            requested_at: self.now,
            rx: Default::default(),
        });
        self.ip.tx_total = 0;
        self.ip.acked = 0;
        self.ip.state = IpState::TcpConnecting;
        self.result_ok();
        if take_use(&mut self.faults.connect_fail) {
            self.note(format!("fault: connect to {host}:{port} fails"));
            if let Some(c) = self.ip.conn.as_mut() {
                c.gone = true;
            }
            let d = self.jitter(self.cfg.latency.connect_fail);
            self.after(d, Tk::ConnectFail(id));
        } else if auto {
            self.note("CIPSTART from IP INITIAL: bringing up the PDP context first".into());
            let d = self.jitter(self.cfg.latency.attach);
            self.after(d, Tk::AutoAttached(id));
        } else {
            self.note(format!("connect #{id} to {host}:{port}"));
            self.net_out
                .push_back(NetRequest::Connect { id, host, port });
            self.arm_connect_timer(id, self.now);
        }
        Outcome::Done
    }

    /// Start the module's own connect timer for connection `id`, requested at `since`.
    pub(super) fn arm_connect_timer(&mut self, id: ConnId, since: Instant) {
        let t = self.cfg.latency.connect_timeout;
        if !t.is_zero() {
            self.at(super::plus(since, t), Tk::ConnectTimeout(id));
        }
    }

    /// When a connection that failed at the edge reports `CONNECT FAIL`: a refusal after the
    /// `connect_fail` latency, a host that did not answer when the module's own connect timer
    /// runs out. Both counted from the request.
    pub(super) fn connect_fail_at(&mut self, requested: Instant, refused: bool) -> Instant {
        let d = if refused {
            self.jitter(self.cfg.latency.connect_fail)
        } else {
            self.cfg.latency.connect_timeout
        };
        super::plus(requested, d).max(self.now)
    }

    /// The module's own connect timer ran out: give up on a connection still opening.
    pub(super) fn connect_timeout(&mut self, id: ConnId) {
        if let Some(c) = self.ip.conn.as_mut().filter(|c| c.id == id && !c.open) {
            if !c.gone {
                c.gone = true;
                self.note(format!("connection #{id}: no answer, the module gives up"));
                self.net_out.push_back(NetRequest::Close { id });
            }
            self.connect_fail(id);
        } else if self.sm.conn_id() == Some(id) {
            self.sm_connect_timeout(id);
        }
    }

    pub(super) fn auto_attached(&mut self, id: u64) {
        let Some(c) = self
            .ip
            .conn
            .as_ref()
            .filter(|c| c.id == id && !c.open && !c.gone)
        else {
            return;
        };
        let (host, port, c_requested) = (c.host.clone(), c.port, c.requested_at);
        if self.registered() {
            self.trigger(Trigger::PdpUp);
            self.note(format!("connect #{id} to {host}:{port}"));
            self.net_out
                .push_back(NetRequest::Connect { id, host, port });
            let since = c_requested;
            self.arm_connect_timer(id, since);
        } else {
            self.connect_fail(id);
        }
    }

    pub(super) fn connect_ok(&mut self, id: u64) {
        if self.ip.state != IpState::TcpConnecting {
            return;
        }
        let Some(c) = self
            .ip
            .conn
            .as_mut()
            .filter(|c| c.id == id && !c.open && !c.gone)
        else {
            return;
        };
        c.open = true;
        let early: Vec<u8> = c.rx.drain(..).collect();
        self.ip.state = IpState::ConnectOk;
        self.line("CONNECT OK");
        self.trigger(Trigger::Connected);
        if !early.is_empty() {
            self.deliver(early);
        }
    }

    pub(super) fn connect_fail(&mut self, id: u64) {
        if self.ip.state != IpState::TcpConnecting {
            return;
        }
        let Some(c) = self.ip.conn.take() else { return };
        if c.id != id || c.open {
            self.ip.conn = Some(c);
            return;
        }
        if !c.gone {
            self.net_out.push_back(NetRequest::Close { id });
        }
        self.ip.state = IpState::TcpClosed;
        self.line("STATE: TCP CLOSED");
        self.line("CONNECT FAIL");
    }

    /// Close our side of the CIP socket (if any) and forget about pending sends.
    fn drop_conn_socket(&mut self) {
        if let Some(c) = self.ip.conn.as_mut() {
            if !c.gone {
                self.net_out.push_back(NetRequest::Close { id: c.id });
            }
            c.gone = true;
            c.open = false;
        }
    }

    fn cipsend(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                self.line(&format!("+CIPSEND: {MAX_SEND}"));
                Outcome::Ok
            }
            Form::Test => {
                self.line(&format!("+CIPSEND: (1-{MAX_SEND})"));
                Outcome::Ok
            }
            Form::Exec | Form::Write(_) => {
                let kind = match form {
                    Form::Write(p) => match p.trim().parse::<usize>() {
                        Ok(n) if (1..=MAX_SEND).contains(&n) => PayloadKind::CipFixed(n),
                        _ => return BAD_PARAM,
                    },
                    _ => PayloadKind::CipVariable,
                };
                if self.ip.state != IpState::ConnectOk {
                    return NOT_ALLOWED;
                }
                let hex = self.s.cipsendhex;
                self.start_payload(kind, hex);
                if self.s.cipsprt == 1 {
                    self.raw(b"\r\n> ");
                }
                Outcome::Prompt
            }
        }
    }

    pub(super) fn cip_payload_complete(&mut self, data: Vec<u8>) {
        let conn = self
            .ip
            .conn
            .as_ref()
            .filter(|c| c.open && !c.gone && self.ip.state == IpState::ConnectOk)
            .map(|c| c.id);
        let Some(id) = conn else {
            self.note("payload complete but the connection is gone".into());
            self.result_fail(Fail::Plain);
            return;
        };
        if data.is_empty() {
            self.result_fail(Fail::Plain);
            return;
        }
        let len = data.len();
        if take_use(&mut self.faults.send_fail) {
            self.note(format!("fault: send of {len} byte(s) fails"));
            if self.s.cipqsend {
                self.line("SEND FAIL");
            } else {
                self.busy = Some(Busy::Send { id, len });
                let d = self.jitter(self.cfg.latency.send);
                self.after(d, Tk::SendResult { ok: false });
            }
            return;
        }
        self.net_out.push_back(NetRequest::Send { id, data });
        self.ip.tx_total += len as u64;
        self.ip.send_delivered = false;
        if self.s.cipqsend {
            self.line(&format!("DATA ACCEPT:{len}"));
        } else {
            self.busy = Some(Busy::Send { id, len });
        }
    }

    pub(super) fn send_result(&mut self, ok: bool) {
        if !matches!(self.busy, Some(Busy::Send { .. })) {
            return;
        }
        self.busy = None;
        if !ok {
            self.line("SEND FAIL");
        } else if self.s.cipsprt != 2 {
            self.line("SEND OK");
        }
    }

    pub(super) fn tcp_event(&mut self, ev: NetEvent) {
        let Some(c) = self.ip.conn.as_mut() else {
            return;
        };
        let id = c.id;
        match ev {
            NetEvent::Connected { peer, .. } => {
                if c.open || c.gone {
                    return;
                }
                c.peer = Some(peer);
                self.note(format!("connection #{id} established to {peer}"));
                let d = self.jitter(self.cfg.latency.connect);
                self.after(d, Tk::ConnectOk(id));
            }
            NetEvent::ConnectFailed {
                reason, refused, ..
            } => {
                if c.open || c.gone {
                    return;
                }
                c.gone = true;
                let at = c.requested_at;
                self.note(format!("connection #{id} failed: {reason}"));
                let t = self.connect_fail_at(at, refused);
                self.at(t, Tk::ConnectFail(id));
            }
            NetEvent::Sent { len, .. } => {
                self.ip.acked += len as u64;
                if self.busy == (Some(Busy::Send { id, len })) && !self.s.cipqsend {
                    self.ip.send_delivered = true;
                    let d = self.jitter(self.cfg.latency.send);
                    self.after(d, Tk::SendResult { ok: true });
                }
            }
            NetEvent::SendFailed { reason, .. } => {
                self.note(format!("send on #{id} failed: {reason}"));
                if matches!(self.busy, Some(Busy::Send { id: b, .. }) if b == id) {
                    self.after(std::time::Duration::ZERO, Tk::SendResult { ok: false });
                }
            }
            NetEvent::Received { data, .. } => {
                if c.gone {
                    return;
                }
                if c.open {
                    self.deliver(data);
                } else {
                    c.rx.extend(data);
                }
            }
            NetEvent::Closed { .. } => {
                if c.gone {
                    return;
                }
                c.gone = true;
                let was_open = std::mem::replace(&mut c.open, false);
                let at = c.requested_at;
                self.note(format!("connection #{id} closed by the peer"));
                if was_open {
                    self.peer_closed();
                } else {
                    let t = self.connect_fail_at(at, true);
                    self.at(t, Tk::ConnectFail(id));
                }
            }
        }
    }

    /// The open CIP connection was closed by the far end. A send whose bytes already
    /// reached the peer still gets its `SEND OK` (the peer acknowledged them before closing,
    /// e.g. a broker closing after DISCONNECT); one still in flight fails.
    fn peer_closed(&mut self) {
        if matches!(self.busy, Some(Busy::Send { .. })) {
            self.busy = None;
            if self.ip.send_delivered && self.s.cipsprt != 2 {
                self.line("SEND OK");
            } else if !self.ip.send_delivered {
                self.line("SEND FAIL");
            }
        }
        self.ip.state = IpState::TcpClosed;
        self.line("CLOSED");
    }

    /// The network released the CIP PDP context.
    pub(super) fn pdp_deact_cip(&mut self) {
        self.drop_conn_socket();
        if matches!(self.busy, Some(Busy::Send { .. })) {
            self.busy = None;
            self.line("SEND FAIL");
        }
        if self.busy == Some(Busy::Ciicr) {
            self.busy = None;
            self.result_fail(Fail::Cme(148));
        }
        self.ip.state = IpState::PdpDeact;
        self.line("+PDP: DEACT");
    }

    /// Fault: the peer closes whatever is connected. False when nothing is.
    pub(super) fn fault_peer_close(&mut self) -> bool {
        let mut any = false;
        if self.ip.state == IpState::ConnectOk
            && let Some(c) = self.ip.conn.as_mut()
            && c.open
            && !c.gone
        {
            let id = c.id;
            c.gone = true;
            c.open = false;
            self.note(format!("fault: peer closes connection #{id}"));
            self.net_out.push_back(NetRequest::Close { id });
            self.peer_closed();
            any = true;
        }
        if self.sm.online() {
            self.note("fault: broker closes the MQTT connection".into());
            self.sm_drop();
            any = true;
        }
        any
    }

    /// Fault: `+PDP: DEACT`. False when no context is active.
    pub(super) fn fault_pdp_deact(&mut self) -> bool {
        let cip = self.ip.state.context_active();
        let app = self.app == AppPdp::Active;
        if !cip && !app {
            return false;
        }
        self.note("fault: network deactivates the PDP context".into());
        if cip {
            self.pdp_deact_cip();
        }
        if app {
            self.app_deact();
        }
        true
    }
}
