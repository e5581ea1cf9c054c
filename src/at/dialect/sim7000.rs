//! The SIM7000's TCP/IP application toolkit (`AT+CIP*`), single connection. Sources:
//! SIM7000 Series AT Command Manual V1.06 §8.2 and the SIM7000 Series TCPIP Application
//! Note V1.01; see docs/sim7000.md.

use super::{DataHeader, ReadHeader, RxMode, SocketDialect, SocketState, SocketUrc};
use crate::at::effects::Effect;
use crate::at::limits::{MAX_HEX_READ, MAX_HEX_SEND, MAX_READ, MAX_SEND, RX_BUFFER};
use crate::at::split::{Form, Part};

/// The SIM7000 `AT+CIP*` socket dialect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sim7000Cip;

/// A `+CIPRXGET: …` reply to a read (`AT+CIPRXGET=2/3,<len>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxGet {
    /// 2 (raw) or 3 (hex).
    pub mode: u8,
    /// Bytes that follow now.
    pub len: usize,
    /// Bytes still buffered in the modem.
    pub remaining: usize,
}

/// Parse `+CIPRXGET: 2,<n>,<rest>` (single connection), `+CIPRXGET: 2,<id>,<n>,<rest>`
/// (multi), each optionally followed by `,"<ip>:<port>"` (`AT+CIPSRIP=1`); spaces are
/// optional. `None` for anything else (mode 1 and 4 reports included).
pub fn parse_rxget(line: &str) -> Option<RxGet> {
    let rest = line.trim().strip_prefix("+CIPRXGET:")?;
    let mut fields: Vec<&str> = rest
        .split(',')
        .map(|f| f.trim().trim_matches('"'))
        .collect();
    // A trailing remote address (`1.2.3.4:1883`) is not a count.
    if fields
        .last()
        .is_some_and(|f| f.contains(':') || f.contains('.'))
    {
        fields.pop();
    }
    let mode: u8 = fields.first()?.parse().ok()?;
    if mode != 2 && mode != 3 {
        return None;
    }
    let (n, rem) = match fields.len() {
        3 => (fields.get(1)?, fields.get(2)?),
        4 => (fields.get(2)?, fields.get(3)?),
        _ => return None,
    };
    Some(RxGet {
        mode,
        len: n.parse().ok()?,
        remaining: rem.parse().ok()?,
    })
}

fn on_off(part: &Part) -> Option<bool> {
    match part.params()?.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

impl SocketDialect for Sim7000Cip {
    fn name(&self) -> &'static str {
        "SIM7000 AT+CIP"
    }

    fn send_fixed(&self, len: usize) -> String {
        format!("AT+CIPSEND={len}")
    }

    /// `AT+CIPSEND` (variable length) with `AT+CIPSENDHEX=1` in force: upper-case hex pairs
    /// separated by spaces, ended by the two characters `1A` (driver practice; the decoded
    /// byte 0x1A ends the frame, so a payload holding 0x1A cannot be sent this way).
    fn send_hex(&self, bytes: &[u8]) -> Option<(String, Vec<u8>)> {
        let text = format!("{} 1A", crate::util::hex::hex(bytes, " "));
        Some(("AT+CIPSEND".to_string(), text.into_bytes()))
    }

    fn max_send(&self) -> usize {
        MAX_SEND
    }

    fn max_hex_send(&self) -> usize {
        MAX_HEX_SEND
    }

    fn max_send_query(&self) -> Option<&'static str> {
        Some("AT+CIPSEND?")
    }

    /// `+CIPSEND: 1460` (single) or `+CIPSEND: 0,1460` (multi).
    fn parse_max_send(&self, line: &str) -> Option<usize> {
        let rest = line.trim().strip_prefix("+CIPSEND:")?;
        let last = rest.rsplit(',').next()?.trim();
        let n: usize = last.parse().ok()?;
        (n > 0).then_some(n)
    }

    fn read(&self, max: usize) -> String {
        format!("AT+CIPRXGET=2,{}", max.clamp(1, MAX_READ))
    }

    fn max_read(&self) -> usize {
        MAX_READ
    }

    fn parse_read(&self, line: &str) -> Option<ReadHeader> {
        let r = parse_rxget(line)?;
        Some(ReadHeader {
            hex: r.mode == 3,
            len: r.len,
            remaining: r.remaining,
        })
    }

    /// `+CIPRXGET: 2,…` announces raw bytes (≤ [`MAX_READ`]); mode 3 a hex line
    /// (≤ [`MAX_HEX_READ`] bytes); `+RECEIVE,<id>,<len>:` (multi-connection push) `len`
    /// bytes. Larger announced lengths are no headers (the module's buffer is
    /// [`RX_BUFFER`] bytes): such a line stays a line.
    fn data_header(&self, line: &[u8]) -> Option<DataHeader> {
        let text = std::str::from_utf8(line).ok()?.trim();
        if text.starts_with("+CIPRXGET:") {
            let r = parse_rxget(text)?;
            return match r.mode {
                2 if r.len <= RX_BUFFER => Some(DataHeader::Raw(r.len)),
                3 if r.len > 0 && r.len <= RX_BUFFER.max(MAX_HEX_READ) => Some(DataHeader::HexLine),
                _ => None,
            };
        }
        if let Some(rest) = text.strip_prefix("+RECEIVE,") {
            let rest = rest.strip_suffix(':')?;
            let (_, len) = rest.split_once(',')?;
            let len: usize = len.trim().parse().ok()?;
            return (len <= RX_BUFFER).then_some(DataHeader::Raw(len));
        }
        None
    }

    /// `+IPD,<len>:` (optionally `+IPD,<len>,TCP:`, `AT+CIPSHOWTP=1`): data follows the
    /// colon with no line end (`AT+CIPHEAD=1`, Manual §8.2.16).
    fn inline_header(&self, partial: &[u8]) -> Option<usize> {
        if partial.last() != Some(&b':') {
            return None;
        }
        let text = std::str::from_utf8(partial).ok()?;
        let rest = text.strip_prefix("+IPD,")?.strip_suffix(':')?;
        let len = rest.split(',').next()?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 7 {
            return None;
        }
        len.parse().ok().filter(|n| *n <= RX_BUFFER)
    }

    fn urc(&self, line: &str) -> Option<SocketUrc> {
        use crate::at::line::{Urc, known_urc};
        match known_urc(line)? {
            Urc::RxData => Some(SocketUrc::DataWaiting),
            Urc::Closed => Some(SocketUrc::Closed),
            Urc::PdpDeact => Some(SocketUrc::BearerLost),
            _ => None,
        }
    }

    fn effect(&self, part: &Part) -> Option<Effect> {
        match (part.name.as_str(), &part.form) {
            ("+CIPRXGET", Form::Write(_)) => match part.params()?.trim() {
                "0" => Some(Effect::Receive(RxMode::Push)),
                "1" => Some(Effect::Receive(RxMode::Manual)),
                _ => None,
            },
            ("+CIPHEAD", Form::Write(_)) => on_off(part).map(Effect::DataHeader),
            ("+CIPSENDHEX", Form::Write(_)) => on_off(part).map(Effect::HexSend),
            ("+CIPSTART", Form::Write(_)) => Some(Effect::SocketOpen),
            ("+CIPCLOSE", Form::Exec | Form::Write(_)) => Some(Effect::SocketClose),
            ("+CIPSHUT", Form::Exec) => Some(Effect::BearerDown),
            _ => None,
        }
    }

    /// `STATE: IP INITIAL` / `STATE: CONNECT OK` (reply to `AT+CIPSTATUS`, Manual §8.2.13).
    fn state(&self, line: &str) -> Option<SocketState> {
        let state = line.trim().strip_prefix("STATE:")?.trim();
        Some(match state {
            "IP INITIAL" => SocketState::Initial,
            "CONNECT OK" => SocketState::Connected,
            _ => SocketState::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::split::split;

    fn effect(line: &str) -> Option<Effect> {
        Sim7000Cip.effect(split(line).ok()?.first()?)
    }

    #[test]
    fn effects_of_cip_commands() {
        assert_eq!(
            effect("AT+CIPRXGET=1"),
            Some(Effect::Receive(RxMode::Manual))
        );
        assert_eq!(effect("AT+CIPRXGET=2,1460"), None);
        assert_eq!(effect("AT+CIPHEAD=1"), Some(Effect::DataHeader(true)));
        assert_eq!(effect("AT+CIPSENDHEX=0"), Some(Effect::HexSend(false)));
        assert_eq!(effect("AT+CIPSENDHEX?"), None);
        assert_eq!(
            effect("AT+CIPSTART=\"TCP\",\"h\",1"),
            Some(Effect::SocketOpen)
        );
        assert_eq!(effect("AT+CIPCLOSE=1"), Some(Effect::SocketClose));
        assert_eq!(effect("AT+CIPSHUT"), Some(Effect::BearerDown));
        assert_eq!(effect("AT+CIPSTATUS"), None);
    }

    #[test]
    fn headers_and_reads() {
        let d = Sim7000Cip;
        assert_eq!(d.inline_header(b"+IPD,12:"), Some(12));
        assert_eq!(d.inline_header(b"+IPD,12,TCP:"), Some(12));
        assert_eq!(d.inline_header(b"+IPD,99999999999:"), None);
        assert_eq!(d.data_header(b"+CIPRXGET: 2,5,0"), Some(DataHeader::Raw(5)));
        assert_eq!(
            d.data_header(b"+CIPRXGET: 3,5,0"),
            Some(DataHeader::HexLine)
        );
        assert_eq!(d.data_header(b"+RECEIVE,0,4:"), Some(DataHeader::Raw(4)));
        assert_eq!(d.data_header(b"+CIPRXGET: 1"), None);
        assert_eq!(d.parse_max_send("+CIPSEND: 0,1024"), Some(1024));
        assert_eq!(d.read(99_999), "AT+CIPRXGET=2,1460");
        assert_eq!(d.state("STATE: IP INITIAL"), Some(SocketState::Initial));
        assert_eq!(d.urc("+PDP: DEACT"), Some(SocketUrc::BearerLost));
        assert_eq!(d.urc("1, CLOSED"), Some(SocketUrc::Closed));
    }

    #[test]
    fn rxget_headers_with_addresses_and_without_spaces() {
        assert_eq!(
            parse_rxget("+CIPRXGET: 2,5,0,\"1.2.3.4:1883\""),
            Some(RxGet {
                mode: 2,
                len: 5,
                remaining: 0
            })
        );
        assert_eq!(
            parse_rxget("+CIPRXGET:2,3,7"),
            Some(RxGet {
                mode: 2,
                len: 3,
                remaining: 7
            })
        );
        assert_eq!(
            parse_rxget("+CIPRXGET: 2,1,4,0"),
            Some(RxGet {
                mode: 2,
                len: 4,
                remaining: 0
            })
        );
        assert_eq!(parse_rxget("+CIPRXGET: 1"), None);
    }
}
