//! What a modem line means: result codes and unsolicited result codes (URCs).

/// A result code that ends (or ends a phase of) a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultCode {
    /// `OK`
    Ok,
    /// `ERROR`
    Error,
    /// `+CME ERROR: <n or text>`
    CmeError(String),
    /// `+CMS ERROR: <n or text>`
    CmsError(String),
    /// `NO CARRIER`
    NoCarrier,
    /// `BUSY`
    Busy,
    /// `NO ANSWER`
    NoAnswer,
    /// `NO DIALTONE`
    NoDialtone,
    /// `CONNECT` (transparent mode, or a data call)
    Connect,
    /// `CONNECT OK` (second phase of `AT+CIPSTART`)
    ConnectOk,
    /// `CONNECT FAIL`
    ConnectFail,
    /// `ALREADY CONNECT`
    AlreadyConnect,
    /// `SEND OK`
    SendOk,
    /// `SEND FAIL`
    SendFail,
    /// `DATA ACCEPT:<len>` (quick-send mode); the text after the colon.
    DataAccept(String),
    /// `SHUT OK` (`AT+CIPSHUT`)
    ShutOk,
    /// `CLOSE OK` (`AT+CIPCLOSE`)
    CloseOk,
}

impl ResultCode {
    /// True for result codes that report a failure.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            ResultCode::Error
                | ResultCode::CmeError(_)
                | ResultCode::CmsError(_)
                | ResultCode::NoCarrier
                | ResultCode::Busy
                | ResultCode::NoAnswer
                | ResultCode::NoDialtone
                | ResultCode::ConnectFail
                | ResultCode::SendFail
        )
    }

    /// True for `OK`, `ERROR`, `+CME ERROR`, `+CMS ERROR`: the codes that end an ordinary
    /// command.
    pub fn is_generic_final(&self) -> bool {
        matches!(
            self,
            ResultCode::Ok | ResultCode::Error | ResultCode::CmeError(_) | ResultCode::CmsError(_)
        )
    }
}

/// Parse a result code. Multi-connection forms (`0, CONNECT OK`, `DATA ACCEPT:0,27`) are
/// recognised too.
pub fn result_code(line: &str) -> Option<ResultCode> {
    let t = line.trim();
    // Multi-connection prefix "<n>, ".
    let t = match t.split_once(", ") {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => t,
    };
    Some(match t {
        "OK" => ResultCode::Ok,
        "ERROR" => ResultCode::Error,
        "NO CARRIER" => ResultCode::NoCarrier,
        "BUSY" => ResultCode::Busy,
        "NO ANSWER" => ResultCode::NoAnswer,
        "NO DIALTONE" => ResultCode::NoDialtone,
        "CONNECT" => ResultCode::Connect,
        "CONNECT OK" => ResultCode::ConnectOk,
        "CONNECT FAIL" => ResultCode::ConnectFail,
        "ALREADY CONNECT" => ResultCode::AlreadyConnect,
        "SEND OK" => ResultCode::SendOk,
        "SEND FAIL" => ResultCode::SendFail,
        "SHUT OK" => ResultCode::ShutOk,
        "CLOSE OK" => ResultCode::CloseOk,
        _ => {
            if let Some(rest) = t.strip_prefix("+CME ERROR:") {
                ResultCode::CmeError(rest.trim().to_string())
            } else if let Some(rest) = t.strip_prefix("+CMS ERROR:") {
                ResultCode::CmsError(rest.trim().to_string())
            } else if let Some(rest) = t.strip_prefix("DATA ACCEPT:") {
                ResultCode::DataAccept(rest.trim().to_string())
            } else if t.starts_with("CONNECT ") && t[8..].bytes().all(|b| b.is_ascii_digit()) {
                ResultCode::Connect
            } else {
                return None;
            }
        }
    })
}

/// Kinds of unsolicited result codes sim7k knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urc {
    /// `RDY`: the module (re)started at a fixed baud rate.
    Rdy,
    /// `SMS Ready` / `Call Ready`: end of the boot sequence; mid-session it means a reboot.
    SmsReady,
    /// `+CFUN: <n>`
    Cfun,
    /// `+CPIN: <state>`
    Cpin,
    /// `NORMAL POWER DOWN`, under/over-voltage power down.
    PowerDown,
    /// Under/over-voltage warnings.
    VoltageWarning,
    /// `DST:`, `*PSUTTZ:`, `*PSNWID:`, `+CTZV:` (network time, with `AT+CLTS=1`).
    NetworkTime,
    /// `+PDP: DEACT`: the network released the PDP context.
    PdpDeact,
    /// `CLOSED`: the peer closed the TCP connection.
    Closed,
    /// `+CIPRXGET: 1`: data is waiting to be read with `AT+CIPRXGET=2`.
    RxData,
    /// `+IPD,<len>:` or `+RECEIVE,<n>,<len>:` headers of pushed data.
    DataHeader,
    /// `RECV FROM:<ip>:<port>` before pushed data.
    RecvFrom,
    /// `+APP PDP: ...` (bearer for `AT+CNACT`).
    AppPdp,
    /// `+SMSTATE: <n>` (native MQTT link state).
    SmState,
    /// `+SMSUB: "<topic>","<message>"` (native MQTT incoming message).
    SmSub,
    /// `+CREG:`/`+CGREG:`/`+CEREG:` registration reports.
    Registration,
    /// `RING`, `+CMTI:`, `+CMT:`, `+CLIP:` and similar telephony events.
    Telephony,
}

impl Urc {
    /// A short description used in logs.
    pub fn describe(self) -> &'static str {
        match self {
            Urc::Rdy => "module started",
            Urc::SmsReady => "boot finished",
            Urc::Cfun => "functionality changed",
            Urc::Cpin => "SIM state",
            Urc::PowerDown => "power down",
            Urc::VoltageWarning => "voltage warning",
            Urc::NetworkTime => "network time",
            Urc::PdpDeact => "PDP context released by the network",
            Urc::Closed => "TCP connection closed by the peer",
            Urc::RxData => "data waiting",
            Urc::DataHeader => "data received",
            Urc::RecvFrom => "data source",
            Urc::AppPdp => "app bearer state",
            Urc::SmState => "MQTT link state",
            Urc::SmSub => "MQTT message",
            Urc::Registration => "registration",
            Urc::Telephony => "telephony event",
        }
    }

    /// True for URCs that mean the module restarted.
    pub fn is_reboot(self) -> bool {
        matches!(self, Urc::Rdy | Urc::SmsReady)
    }
}

/// Recognise a known URC by its text.
pub fn known_urc(line: &str) -> Option<Urc> {
    let t = line.trim();
    let starts = |p: &str| t.starts_with(p);
    Some(match t {
        "RDY" => Urc::Rdy,
        "SMS Ready" | "Call Ready" => Urc::SmsReady,
        "NORMAL POWER DOWN" | "UNDER-VOLTAGE POWER DOWN" | "OVER-VOLTAGE POWER DOWN" => {
            Urc::PowerDown
        }
        "UNDER-VOLTAGE WARNNING"
        | "OVER-VOLTAGE WARNNING"
        | "UNDER-VOLTAGE WARNING"
        | "OVER-VOLTAGE WARNING" => Urc::VoltageWarning,
        "+PDP: DEACT" => Urc::PdpDeact,
        "CLOSED" | "CLOSE(D)" => Urc::Closed,
        "RING" => Urc::Telephony,
        _ if starts("+CFUN:") => Urc::Cfun,
        _ if starts("+CPIN:") => Urc::Cpin,
        _ if starts("DST:") || starts("*PSUTTZ:") || starts("*PSNWID:") || starts("+CTZV:") => {
            Urc::NetworkTime
        }
        _ if starts("+PDP: DEACT") => Urc::PdpDeact,
        _ if is_multi_closed(t) => Urc::Closed,
        _ if starts("+CIPRXGET: 1") => Urc::RxData,
        _ if starts("+IPD,") || starts("+RECEIVE,") => Urc::DataHeader,
        _ if starts("RECV FROM:") => Urc::RecvFrom,
        _ if starts("+APP PDP:") => Urc::AppPdp,
        _ if starts("+SMSTATE:") => Urc::SmState,
        _ if starts("+SMSUB:") => Urc::SmSub,
        _ if starts("+CREG:") || starts("+CGREG:") || starts("+CEREG:") => Urc::Registration,
        _ if starts("+CMTI:") || starts("+CMT:") || starts("+CLIP:") || starts("+CDS:") => {
            Urc::Telephony
        }
        _ => return None,
    })
}

fn is_multi_closed(t: &str) -> bool {
    matches!(t.split_once(", "), Some((n, "CLOSED")) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes() {
        assert_eq!(result_code("OK"), Some(ResultCode::Ok));
        assert_eq!(
            result_code("+CME ERROR: operation not allowed"),
            Some(ResultCode::CmeError("operation not allowed".into()))
        );
        assert_eq!(
            result_code("DATA ACCEPT:27"),
            Some(ResultCode::DataAccept("27".into()))
        );
        assert_eq!(result_code("0, CONNECT OK"), Some(ResultCode::ConnectOk));
        assert_eq!(result_code("CONNECT 115200"), Some(ResultCode::Connect));
        assert_eq!(result_code("+CSQ: 24,99"), None);
        assert_eq!(result_code("OKAY"), None);
        assert!(ResultCode::SendFail.is_failure());
        assert!(!ResultCode::ShutOk.is_failure());
    }

    #[test]
    fn urcs() {
        assert_eq!(known_urc("DST: 1"), Some(Urc::NetworkTime));
        assert_eq!(
            known_urc("*PSUTTZ: 2019/05/08,06:26:46\",\"+32\",1"),
            Some(Urc::NetworkTime)
        );
        assert_eq!(known_urc("+CIPRXGET: 1"), Some(Urc::RxData));
        assert_eq!(known_urc("+CIPRXGET: 2,5,0"), None);
        assert_eq!(known_urc("1, CLOSED"), Some(Urc::Closed));
        assert_eq!(known_urc("SMS Ready"), Some(Urc::SmsReady));
        assert_eq!(known_urc("+CSQ: 20,99"), None);
        assert!(Urc::Rdy.is_reboot());
    }
}
