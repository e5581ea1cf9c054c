//! Receiving on the CIP connection: pushed data (`AT+CIPRXGET=0`, `+IPD`, `RECV FROM`) and
//! manual reads (`AT+CIPRXGET=1..4`).

use super::parse::{Form, Param, params};
use super::state::IpState;
use super::{BAD_PARAM, Modem, NOT_ALLOWED, Outcome, SYNTAX};

/// Largest CIPRXGET=2 read.
const MAX_SEND: usize = crate::at::limits::MAX_SEND;
/// Largest CIPRXGET=3 (hex) read.
const MAX_HEX_READ: usize = crate::at::limits::MAX_HEX_READ;

impl Modem {
    pub(super) fn ciprxget(&mut self, form: &Form) -> Outcome {
        match form {
            Form::Read => {
                let l = format!("+CIPRXGET: {}", self.s.ciprxget);
                self.line(&l);
                Outcome::Ok
            }
            Form::Test => {
                self.line("+CIPRXGET: (0-4),(1-1460)");
                Outcome::Ok
            }
            Form::Exec => SYNTAX,
            Form::Write(p) => {
                let Ok(v) = params(p) else { return BAD_PARAM };
                let mode = v.first().and_then(Param::int);
                match mode {
                    Some(m @ (0 | 1)) => {
                        if v.len() != 1 {
                            return BAD_PARAM;
                        }
                        if matches!(self.ip.state, IpState::TcpConnecting | IpState::ConnectOk) {
                            return NOT_ALLOWED;
                        }
                        self.s.ciprxget = m as u8;
                        Outcome::Ok
                    }
                    Some(m @ (2..=4)) => {
                        if self.s.ciprxget != 1 || self.ip.conn.is_none() {
                            return NOT_ALLOWED;
                        }
                        let len = if m == 4 {
                            if v.len() != 1 {
                                return BAD_PARAM;
                            }
                            0
                        } else {
                            let max = if m == 2 { MAX_SEND } else { MAX_HEX_READ };
                            match v.get(1).and_then(Param::int) {
                                Some(n) if n >= 1 && (n as usize) <= max && v.len() == 2 => {
                                    n as usize
                                }
                                _ => return BAD_PARAM,
                            }
                        };
                        for _ in 0..self.faults.extra_rxget {
                            self.line("+CIPRXGET: 1");
                        }
                        let Some(c) = self.ip.conn.as_mut() else {
                            return NOT_ALLOWED;
                        };
                        if m == 4 {
                            let n = c.rx.len();
                            self.line(&format!("+CIPRXGET: 4,{n}"));
                            return Outcome::Ok;
                        }
                        let n = len.min(c.rx.len());
                        let data: Vec<u8> = c.rx.drain(..n).collect();
                        let rem = c.rx.len();
                        self.line(&format!("+CIPRXGET: {m},{n},{rem}"));
                        if m == 2 {
                            self.raw(&data);
                        } else {
                            let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
                            self.raw(hex.as_bytes());
                        }
                        Outcome::Ok
                    }
                    _ => BAD_PARAM,
                }
            }
        }
    }

    /// Data from the peer of the CIP connection (connection open).
    pub(super) fn deliver(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let srip = self.s.cipsrip;
        let peer = self.ip.conn.as_ref().and_then(|c| c.peer);
        if self.s.ciprxget == 1 {
            let Some(c) = self.ip.conn.as_mut() else {
                return;
            };
            let was_empty = c.rx.is_empty();
            c.rx.extend(data);
            if was_empty {
                match (srip, peer) {
                    (true, Some(p)) => self.line(&format!("+CIPRXGET: 1,{}:{}", p.ip(), p.port())),
                    _ => self.line("+CIPRXGET: 1"),
                }
            }
            return;
        }
        for chunk in data.chunks(MAX_SEND) {
            let mut v = self.cfg.push.prefix.clone();
            if let (true, Some(p)) = (srip, peer) {
                v.extend_from_slice(format!("RECV FROM:{}:{}\r\n", p.ip(), p.port()).as_bytes());
            }
            if self.s.ciphead {
                if self.s.cipshowtp {
                    v.extend_from_slice(format!("+IPD,{},TCP:", chunk.len()).as_bytes());
                } else {
                    v.extend_from_slice(format!("+IPD,{}:", chunk.len()).as_bytes());
                }
            }
            v.extend_from_slice(chunk);
            v.extend_from_slice(&self.cfg.push.suffix);
            self.raw(&v);
        }
    }
}
