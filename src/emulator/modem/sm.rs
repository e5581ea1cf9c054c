//! Native MQTT (`AT+SMCONF`, `AT+SMCONN`, `AT+SMPUB`, `AT+SMSUB`, ...) speaking real MQTT 3.1.1.

use std::time::{Duration, Instant};

use super::parse::{Form, Param, params};
use super::wire::{self, AckKind, ConnectOpts, Incoming};
use super::{
    AppPdp, BAD_PARAM, Busy, Cmd, ConnId, Fail, Modem, NOT_ALLOWED, NetEvent, NetRequest, Outcome,
    PayloadKind, SYNTAX, Tk, Trigger, take_use,
};

/// Largest `AT+SMPUB` payload.
const MAX_SMPUB: usize = 512;

/// What an `AT+SM...` command waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SmWait {
    Conn,
    Pub { pkid: u16, qos: u8 },
    Sub { pkid: u16 },
    Unsub { pkid: u16 },
}

/// `AT+SMCONF` values.
#[derive(Debug, Clone)]
struct SmConf {
    clientid: String,
    host: Option<String>,
    port: u16,
    keeptime: u16,
    cleanss: bool,
    username: String,
    password: String,
    qos: u8,
    topic: String,
    message: String,
    retain: bool,
    subhex: bool,
    asyncmode: bool,
    /// `AT+SMSSL`: (index, CA file, client certificate file); index 0 = plain MQTT.
    ssl: (u8, String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshake,
    Online,
}

#[derive(Debug, Clone)]
struct SmConn {
    id: ConnId,
    phase: Phase,
    requested_at: Instant,
    rx: Vec<u8>,
}

/// The native MQTT client.
#[derive(Debug, Clone)]
pub(super) struct Sm {
    conf: SmConf,
    conn: Option<SmConn>,
    next_pkid: u16,
}

impl Sm {
    pub(super) fn new() -> Sm {
        Sm {
            conf: SmConf {
                clientid: String::new(),
                host: None,
                port: 1883,
                keeptime: 60,
                cleanss: false,
                username: String::new(),
                password: String::new(),
                qos: 0,
                topic: String::new(),
                message: String::new(),
                retain: false,
                subhex: false,
                asyncmode: false,
                ssl: (0, String::new(), String::new()),
            },
            conn: None,
            next_pkid: 1,
        }
    }

    pub(super) fn conn_id(&self) -> Option<ConnId> {
        self.conn.as_ref().map(|c| c.id)
    }

    pub(super) fn online(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.phase == Phase::Online)
    }

    fn pkid(&mut self) -> u16 {
        let id = self.next_pkid;
        self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
        id
    }
}

fn flag(p: Option<&Param>) -> Option<bool> {
    match p.and_then(Param::int) {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    }
}

impl Modem {
    pub(super) fn exec_sm(&mut self, cmd: &Cmd) -> Option<Outcome> {
        let form = &cmd.form;
        let o = match cmd.name.as_str() {
            "+SMCONF" => self.smconf(form),
            "+SMCONN" => match form {
                Form::Exec => self.smconn(),
                _ => SYNTAX,
            },
            "+SMPUB" => match form {
                Form::Write(p) => self.smpub(p),
                Form::Test => {
                    self.line("+SMPUB: 128,512,(0-2),(0-1)");
                    Outcome::Ok
                }
                _ => SYNTAX,
            },
            "+SMPUBHEX" => match form {
                Form::Read => {
                    let l = format!("+SMPUBHEX: {}", u8::from(self.s.smpubhex));
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Write(p) => match p.trim() {
                    "0" | "1" => {
                        self.s.smpubhex = p.trim() == "1";
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                },
                _ => SYNTAX,
            },
            "+SMSUB" => match form {
                Form::Write(p) => {
                    let Ok(v) = params(p) else {
                        return Some(BAD_PARAM);
                    };
                    let (Some(topic), Some(qos @ 0..=2)) =
                        (v.first(), v.get(1).and_then(Param::int))
                    else {
                        return Some(BAD_PARAM);
                    };
                    if v.len() != 2 || topic.text.is_empty() {
                        return Some(BAD_PARAM);
                    }
                    let topic = topic.text.clone();
                    self.sm_request(|pkid| {
                        (
                            wire::subscribe(pkid, &topic, qos as u8),
                            SmWait::Sub { pkid },
                        )
                    })
                }
                _ => SYNTAX,
            },
            "+SMUNSUB" => match form {
                Form::Write(p) => {
                    let Ok(v) = params(p) else {
                        return Some(BAD_PARAM);
                    };
                    let Some(topic) = v.first().filter(|t| !t.text.is_empty() && v.len() == 1)
                    else {
                        return Some(BAD_PARAM);
                    };
                    let topic = topic.text.clone();
                    self.sm_request(|pkid| {
                        (wire::unsubscribe(pkid, &topic), SmWait::Unsub { pkid })
                    })
                }
                _ => SYNTAX,
            },
            "+SMSSL" => self.smssl(form),
            "+SMSTATE" => match form {
                Form::Read => {
                    let l = format!("+SMSTATE: {}", u8::from(self.sm.online()));
                    self.line(&l);
                    Outcome::Ok
                }
                Form::Test => Outcome::Ok,
                _ => SYNTAX,
            },
            "+SMDISC" => match form {
                Form::Exec => {
                    let Some(c) = self.sm.conn.take() else {
                        return Some(NOT_ALLOWED);
                    };
                    if c.phase == Phase::Online {
                        self.net_out.push_back(NetRequest::Send {
                            id: c.id,
                            data: wire::disconnect(),
                        });
                    }
                    self.net_out.push_back(NetRequest::Close { id: c.id });
                    self.note(format!("MQTT connection #{} disconnected", c.id));
                    Outcome::Ok
                }
                _ => SYNTAX,
            },
            _ => return None,
        };
        Some(o)
    }

    fn smconf(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                let c = &self.sm.conf;
                let url = match &c.host {
                    Some(h) => format!("URL: \"{h}\",{}", c.port),
                    None => "URL: \"\",1883".to_string(),
                };
                let lines = vec![
                    "+SMCONF: ".to_string(),
                    format!("CLIENTID: \"{}\"", c.clientid),
                    url,
                    format!("KEEPTIME: {}", c.keeptime),
                    format!("USERNAME: \"{}\"", c.username),
                    format!("PASSWORD: \"{}\"", c.password),
                    format!("CLEANSS: {}", u8::from(c.cleanss)),
                    format!("QOS: {}", c.qos),
                    format!("TOPIC: \"{}\"", c.topic),
                    format!("MESSAGE: \"{}\"", c.message),
                    format!("RETAIN: {}", u8::from(c.retain)),
                    format!("SUBHEX: {}", u8::from(c.subhex)),
                    format!("ASYNCMODE: {}", u8::from(c.asyncmode)),
                ];
                self.lines(&lines);
                Outcome::Ok
            }
            Form::Test => {
                self.line("+SMCONF: \"CLIENTID\",\"URL\",\"KEEPTIME\",\"USERNAME\",\"PASSWORD\",\"CLEANSS\",\"QOS\",\"TOPIC\",\"MESSAGE\",\"RETAIN\",\"SUBHEX\",\"ASYNCMODE\"");
                Outcome::Ok
            }
            Form::Exec => SYNTAX,
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                let Some(tag) = v.first().map(|t| t.text.to_ascii_uppercase()) else {
                    return BAD_PARAM;
                };
                if self.sm.conn.is_some() {
                    return NOT_ALLOWED;
                }
                let text = v.get(1).map(|x| x.text.clone());
                let c = &mut self.sm.conf;
                let ok = match tag.as_str() {
                    "CLIENTID" | "USERNAME" | "PASSWORD" | "TOPIC" | "MESSAGE" => match text {
                        Some(t) if v.len() == 2 && t.len() <= 256 => {
                            match tag.as_str() {
                                "CLIENTID" => c.clientid = t,
                                "USERNAME" => c.username = t,
                                "PASSWORD" => c.password = t,
                                "TOPIC" => c.topic = t,
                                _ => c.message = t,
                            }
                            true
                        }
                        _ => false,
                    },
                    "URL" => {
                        let host = text.unwrap_or_default();
                        let (host, port) = match v.get(2) {
                            Some(p) => (host, p.int()),
                            None => match host.rsplit_once(':') {
                                Some((h, p)) => (h.to_string(), p.parse::<i64>().ok()),
                                None => (host, Some(1883)),
                            },
                        };
                        match port {
                            Some(port @ 1..=65535) if !host.is_empty() && v.len() <= 3 => {
                                c.host = Some(host);
                                c.port = port as u16;
                                true
                            }
                            _ => false,
                        }
                    }
                    "KEEPTIME" => match v.get(1).and_then(Param::int) {
                        Some(k @ 0..=65535) => {
                            c.keeptime = k as u16;
                            true
                        }
                        _ => false,
                    },
                    "QOS" => match v.get(1).and_then(Param::int) {
                        Some(q @ 0..=2) => {
                            c.qos = q as u8;
                            true
                        }
                        _ => false,
                    },
                    "CLEANSS" | "RETAIN" | "SUBHEX" | "ASYNCMODE" => match flag(v.get(1)) {
                        Some(b) => {
                            match tag.as_str() {
                                "CLEANSS" => c.cleanss = b,
                                "RETAIN" => c.retain = b,
                                "SUBHEX" => c.subhex = b,
                                _ => c.asyncmode = b,
                            }
                            true
                        }
                        None => false,
                    },
                    _ => false,
                };
                if ok { Outcome::Ok } else { BAD_PARAM }
            }
        }
    }

    /// `AT+SMSSL=<index>[,"<ca>","<cert>"]` (ANMQTT §3.2.2): stored and read back; a
    /// connection with TLS on is refused by `AT+SMCONN` (TLS is not emulated).
    fn smssl(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                let (i, ca, cert) = self.sm.conf.ssl.clone();
                self.line(&format!("+SMSSL: {i},\"{ca}\",\"{cert}\""));
                Outcome::Ok
            }
            Form::Test => {
                self.line("+SMSSL: (0-6),\"ca list\",\"cert name\"");
                Outcome::Ok
            }
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                let Some(i @ 0..=6) = v.first().and_then(Param::int) else {
                    return BAD_PARAM;
                };
                if v.len() > 3 || v.iter().any(|x| x.text.len() > 255) {
                    return BAD_PARAM;
                }
                if self.sm.conn.is_some() {
                    return NOT_ALLOWED;
                }
                let text = |n: usize| v.get(n).map(|x| x.text.clone()).unwrap_or_default();
                self.sm.conf.ssl = (i as u8, text(1), text(2));
                Outcome::Ok
            }
            Form::Exec => SYNTAX,
        }
    }

    /// `AT+CSSLCFG="sslversion",<ctx>,<ver>` / `="convert",<type>,<file>[,<key>]` and the other
    /// SSL settings (ANMQTT §3.2.3; docs/sim7000.md, "Native MQTT"): accepted with `OK` so
    /// that set-up sequences like the AWS log's run; there are no certificate files and no
    /// TLS in the emulator.
    pub(super) fn csslcfg(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                let Some(tag) = v.first().map(|t| t.text.to_ascii_lowercase()) else {
                    return BAD_PARAM;
                };
                let ok = match tag.as_str() {
                    "sslversion" => {
                        v.len() == 3
                            && matches!(v[1].int(), Some(0..=5))
                            && matches!(v[2].int(), Some(0..=4))
                    }
                    "convert" => {
                        (3..=4).contains(&v.len())
                            && matches!(v[1].int(), Some(1 | 2))
                            && v[2..].iter().all(|f| !f.text.is_empty())
                    }
                    "ciphersuite" | "ignorertctime" | "protocol" | "sni" | "ctxindex" => {
                        v.len() >= 2
                    }
                    _ => false,
                };
                if !ok {
                    return BAD_PARAM;
                }
                self.note(format!("AT+CSSLCFG {tag}: accepted (TLS is not emulated)"));
                Outcome::Ok
            }
            Form::Test => {
                self.line("+CSSLCFG: \"sslversion\",(0-5),(0-4)");
                Outcome::Ok
            }
            _ => SYNTAX,
        }
    }

    fn smconn(&mut self) -> Outcome {
        if self.app != AppPdp::Active || self.sm.conn.is_some() {
            return NOT_ALLOWED;
        }
        if self.sm.conf.ssl.0 != 0 {
            self.note(
                "AT+SMCONN with AT+SMSSL on: MQTT over TLS is not emulated (set AT+SMSSL=0)".into(),
            );
            return Outcome::Fail(Fail::Cme(767));
        }
        let Some(host) = self.sm.conf.host.clone() else {
            return NOT_ALLOWED;
        };
        let port = self.sm.conf.port;
        self.busy = Some(Busy::Sm(SmWait::Conn));
        if self.faults.smconn_hang {
            self.note("fault: SMCONN hangs (the module answers nothing until rebooted)".into());
            self.busy = Some(Busy::Hang);
            return Outcome::Async;
        }
        if take_use(&mut self.faults.connect_fail) {
            self.note(format!("fault: MQTT connect to {host}:{port} fails"));
            let d = self.jitter(self.cfg.latency.connect_fail);
            self.after(d, Tk::SmDone { ok: false });
            return Outcome::Async;
        }
        let id = self.new_conn_id();
        self.sm.conn = Some(SmConn {
            id,
            phase: Phase::Connecting,
            requested_at: self.now,
            rx: Vec::new(),
        });
        self.note(format!("MQTT connect #{id} to {host}:{port}"));
        self.net_out
            .push_back(NetRequest::Connect { id, host, port });
        self.arm_connect_timer(id, self.now);
        Outcome::Async
    }

    fn smpub(&mut self, p: &str) -> Outcome {
        let Ok(v) = params(p) else { return BAD_PARAM };
        if v.len() != 4 {
            return BAD_PARAM;
        }
        let topic = v[0].text.clone();
        let (Some(len), Some(qos @ 0..=2), Some(retain)) = (v[1].int(), v[2].int(), flag(v.get(3)))
        else {
            return BAD_PARAM;
        };
        if topic.is_empty() || !(0..=MAX_SMPUB as i64).contains(&len) {
            return BAD_PARAM;
        }
        if !self.sm.online() {
            return NOT_ALLOWED;
        }
        let want = len as usize;
        let qos = qos as u8;
        if want == 0 {
            self.sm_payload_complete(topic, qos, retain, Vec::new());
            return Outcome::Async;
        }
        let hex = self.s.smpubhex;
        self.start_payload(
            PayloadKind::SmPub {
                topic,
                qos,
                retain,
                want,
            },
            hex,
        );
        self.raw(b"\r\n> ");
        Outcome::Prompt
    }

    /// Send one SUBSCRIBE/UNSUBSCRIBE and wait for its acknowledgement.
    fn sm_request(&mut self, build: impl FnOnce(u16) -> (Vec<u8>, SmWait)) -> Outcome {
        let Some(id) = self
            .sm
            .conn
            .as_ref()
            .filter(|c| c.phase == Phase::Online)
            .map(|c| c.id)
        else {
            return NOT_ALLOWED;
        };
        let pkid = self.sm.pkid();
        let (data, wait) = build(pkid);
        self.net_out.push_back(NetRequest::Send { id, data });
        self.busy = Some(Busy::Sm(wait));
        Outcome::Async
    }

    pub(super) fn sm_payload_complete(
        &mut self,
        topic: String,
        qos: u8,
        retain: bool,
        data: Vec<u8>,
    ) {
        let Some(id) = self
            .sm
            .conn
            .as_ref()
            .filter(|c| c.phase == Phase::Online)
            .map(|c| c.id)
        else {
            self.result_fail(Fail::Cme(3));
            return;
        };
        let pkid = if qos > 0 { self.sm.pkid() } else { 0 };
        self.net_out.push_back(NetRequest::Send {
            id,
            data: wire::publish(&topic, &data, qos, retain, pkid),
        });
        self.busy = Some(Busy::Sm(SmWait::Pub { pkid, qos }));
    }

    pub(super) fn sm_send_connect(&mut self, id: ConnId) {
        let Some(c) = self
            .sm
            .conn
            .as_mut()
            .filter(|c| c.id == id && c.phase == Phase::Handshake)
        else {
            return;
        };
        c.phase = Phase::Handshake;
        let conf = &self.sm.conf;
        let opts = ConnectOpts {
            client_id: conf.clientid.clone(),
            keepalive: conf.keeptime,
            clean_session: conf.cleanss,
            username: (!conf.username.is_empty()).then(|| conf.username.clone()),
            password: (!conf.password.is_empty()).then(|| conf.password.clone()),
            will: (!conf.topic.is_empty()).then(|| {
                (
                    conf.topic.clone(),
                    conf.message.clone().into_bytes(),
                    conf.qos,
                    conf.retain,
                )
            }),
        };
        self.net_out.push_back(NetRequest::Send {
            id,
            data: wire::connect(&opts),
        });
    }

    /// The module's connect timer ran out while the broker did not answer.
    pub(super) fn sm_connect_timeout(&mut self, id: ConnId) {
        if self
            .sm
            .conn
            .as_ref()
            .is_some_and(|c| c.id == id && c.phase == Phase::Connecting)
        {
            self.sm.conn = None;
            self.note(format!(
                "MQTT connection #{id}: no answer, the module gives up"
            ));
            self.net_out.push_back(NetRequest::Close { id });
            self.sm_done(false);
        }
    }

    pub(super) fn sm_done(&mut self, ok: bool) {
        if !matches!(self.busy, Some(Busy::Sm(_))) {
            return;
        }
        self.busy = None;
        if ok {
            self.result_ok();
        } else {
            self.result_fail(Fail::Cme(767));
        }
    }

    pub(super) fn sm_keepalive(&mut self, id: ConnId) {
        if !self.sm.online() || self.sm.conn_id() != Some(id) {
            return;
        }
        self.net_out.push_back(NetRequest::Send {
            id,
            data: wire::pingreq(),
        });
        let k = Duration::from_secs(u64::from(self.sm.conf.keeptime));
        self.after(k, Tk::Keepalive(id));
    }

    /// The MQTT connection is gone (peer close, bearer loss): `+SMSTATE: 0` if it was online,
    /// then the final result of a command waiting on the broker. A publish waiting for its
    /// acknowledgement ends in `OK`, as the module answered in the AWS log
    /// (`+SMSTATE: 0` then `OK`, docs/sim7000.md "AT+SMPUB"); any other wait in `ERROR`.
    pub(super) fn sm_drop(&mut self) {
        let Some(c) = self.sm.conn.take() else { return };
        self.net_out.push_back(NetRequest::Close { id: c.id });
        if c.phase == Phase::Online {
            self.line("+SMSTATE: 0");
        }
        match self.busy {
            Some(Busy::Sm(SmWait::Pub { .. })) => {
                self.note("the MQTT link dropped before the publish was acknowledged: OK anyway, as the real module does".into());
                self.sm_done(true);
            }
            Some(Busy::Sm(_)) => self.sm_done(false),
            _ => {}
        }
    }

    pub(super) fn sm_event(&mut self, ev: NetEvent) {
        let Some(c) = self.sm.conn.as_mut() else {
            return;
        };
        let id = c.id;
        match ev {
            NetEvent::Connected { peer, .. } => {
                if c.phase != Phase::Connecting {
                    return;
                }
                c.phase = Phase::Handshake;
                self.note(format!("MQTT connection #{id} established to {peer}"));
                let d = self.jitter(self.cfg.latency.connect);
                self.after(d, Tk::SmConnectSend(id));
            }
            NetEvent::ConnectFailed {
                reason, refused, ..
            } => {
                if c.phase != Phase::Connecting {
                    return;
                }
                let at = c.requested_at;
                self.sm.conn = None;
                self.note(format!("MQTT connection #{id} failed: {reason}"));
                let t = self.connect_fail_at(at, refused);
                self.at(t, Tk::SmDone { ok: false });
            }
            NetEvent::Sent { .. } => {
                if matches!(self.busy, Some(Busy::Sm(SmWait::Pub { qos: 0, .. }))) {
                    let d = self.jitter(self.cfg.latency.send);
                    self.after(d, Tk::SmDone { ok: true });
                }
            }
            NetEvent::SendFailed { reason, .. } => {
                self.note(format!("MQTT send on #{id} failed: {reason}"));
                self.sm_drop();
            }
            NetEvent::Received { data, .. } => {
                c.rx.extend_from_slice(&data);
                while let Some(c) = self.sm.conn.as_mut().filter(|c| c.id == id) {
                    match wire::take_packet(&mut c.rx) {
                        Ok(Some(p)) => self.sm_packet(id, p),
                        Ok(None) => break,
                        Err(()) => {
                            self.note(format!("malformed MQTT packet on #{id}: dropping"));
                            self.sm_drop();
                            break;
                        }
                    }
                }
            }
            NetEvent::Closed { .. } => {
                self.note(format!("MQTT connection #{id} closed by the broker"));
                self.sm_drop();
            }
        }
    }

    fn sm_packet(&mut self, id: ConnId, p: Incoming) {
        let send =
            |m: &mut Modem, data: Vec<u8>| m.net_out.push_back(NetRequest::Send { id, data });
        match p {
            Incoming::Connack { return_code } => {
                if self.busy != Some(Busy::Sm(SmWait::Conn)) {
                    return;
                }
                if return_code == 0 {
                    if let Some(c) = self.sm.conn.as_mut() {
                        c.phase = Phase::Online;
                    }
                    self.note(format!("MQTT session #{id} accepted"));
                    self.sm_done(true);
                    self.trigger(Trigger::Connected);
                    let k = self.sm.conf.keeptime;
                    if k > 0 {
                        self.after(Duration::from_secs(u64::from(k)), Tk::Keepalive(id));
                    }
                } else {
                    self.note(format!("MQTT CONNACK return code {return_code}: refused"));
                    if let Some(c) = self.sm.conn.take() {
                        self.net_out.push_back(NetRequest::Close { id: c.id });
                    }
                    self.sm_done(false);
                }
            }
            Incoming::Suback { pkid, codes } => {
                if self.busy == Some(Busy::Sm(SmWait::Sub { pkid })) {
                    self.sm_done(!codes.contains(&0x80));
                }
            }
            Incoming::Unsuback { pkid } => {
                if self.busy == Some(Busy::Sm(SmWait::Unsub { pkid })) {
                    self.sm_done(true);
                }
            }
            Incoming::Ack { kind, pkid } => match kind {
                AckKind::Puback | AckKind::Pubcomp => {
                    let want = if kind == AckKind::Puback { 1 } else { 2 };
                    if self.busy == Some(Busy::Sm(SmWait::Pub { pkid, qos: want })) {
                        let d = self.jitter(self.cfg.latency.send);
                        self.after(d, Tk::SmDone { ok: true });
                    }
                }
                AckKind::Pubrec => {
                    if self.busy == Some(Busy::Sm(SmWait::Pub { pkid, qos: 2 })) {
                        send(self, wire::ack(AckKind::Pubrel, pkid));
                    }
                }
                AckKind::Pubrel => send(self, wire::ack(AckKind::Pubcomp, pkid)),
            },
            Incoming::Publish {
                topic,
                payload,
                qos,
                pkid,
            } => {
                match qos {
                    1 => send(self, wire::ack(AckKind::Puback, pkid)),
                    2 => send(self, wire::ack(AckKind::Pubrec, pkid)),
                    _ => {}
                }
                let mut v = Vec::new();
                if self.s.verbose {
                    v.extend_from_slice(b"\r\n");
                }
                v.extend_from_slice(b"+SMSUB: \"");
                v.extend_from_slice(&topic);
                v.extend_from_slice(b"\",\"");
                if self.sm.conf.subhex {
                    v.extend(payload.iter().flat_map(|b| format!("{b:02X}").into_bytes()));
                } else {
                    v.extend_from_slice(&payload);
                }
                v.extend_from_slice(b"\"\r\n");
                self.raw(&v);
            }
            Incoming::Pingresp | Incoming::Other { .. } => {}
        }
    }
}
