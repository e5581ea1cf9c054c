//! What a successful command changes in the module: echo, result-code format, receive mode,
//! hex sends, the socket, a reset. The engine follows these instead of parsing the commands
//! it sent.

use super::dialect::{RxMode, SocketDialect};
use super::split::Part;

/// One change a command makes when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `ATE0` / `ATE1` (a bare `ATE` is `ATE0`): command echo off / on.
    Echo(bool),
    /// `ATV0` / `ATV1`: numeric (`0`, `4`) / verbose (`OK`, `ERROR`) result codes.
    Verbose(bool),
    /// `AT&F`: factory settings (echo on, verbose result codes).
    FactoryDefaults,
    /// `AT+CFUN=<fun>,1`: the module resets (boot URCs follow, settings are lost).
    Reboot,
    /// The receive mode (SIM7000: `AT+CIPRXGET=0/1`).
    Receive(RxMode),
    /// Length headers on pushed data (SIM7000: `AT+CIPHEAD=0/1`).
    DataHeader(bool),
    /// Hex-mode sends (SIM7000: `AT+CIPSENDHEX=0/1`).
    HexSend(bool),
    /// A TCP connection is opened (SIM7000: `AT+CIPSTART=…`).
    SocketOpen,
    /// The connection is closed (SIM7000: `AT+CIPCLOSE`).
    SocketClose,
    /// The bearer and every socket are shut (SIM7000: `AT+CIPSHUT`).
    BearerDown,
}

/// The general (not socket) effect of one command: V.25ter basic commands and `+CFUN`.
pub fn general_effect(part: &Part) -> Option<Effect> {
    match part.name.as_str() {
        "E" => Some(Effect::Echo(part.basic_value()? != 0)),
        "V" => Some(Effect::Verbose(part.basic_value()? != 0)),
        "&F" => Some(Effect::FactoryDefaults),
        // AT+CFUN=<fun>,<rst>: rst 1 resets the module first (Manual §3.2.11).
        "+CFUN" => (part.param(1).as_deref() == Some("1")).then_some(Effect::Reboot),
        _ => None,
    }
}

/// The effects of a line's commands, in order, as `dialect` understands its socket commands.
pub fn effects_of(parts: &[Part], dialect: &dyn SocketDialect) -> Vec<Effect> {
    parts
        .iter()
        .filter_map(|p| general_effect(p).or_else(|| dialect.effect(p)))
        .collect()
}

/// The verbose text of a numeric result code (`ATV0`, V.25ter Table 1).
pub fn numeric_result(line: &str) -> Option<&'static str> {
    Some(match line.trim() {
        "0" => "OK",
        "1" => "CONNECT",
        "2" => "RING",
        "3" => "NO CARRIER",
        "4" => "ERROR",
        "6" => "NO DIALTONE",
        "7" => "BUSY",
        "8" => "NO ANSWER",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::dialect::Sim7000Cip;
    use crate::at::split::split;

    fn effects(line: &str) -> Vec<Effect> {
        effects_of(&split(line).unwrap_or_default(), &Sim7000Cip)
    }

    #[test]
    fn basic_and_chained() {
        assert_eq!(effects("ATE0"), vec![Effect::Echo(false)]);
        assert_eq!(effects("ATE"), vec![Effect::Echo(false)]);
        assert_eq!(
            effects("ATV1E0"),
            vec![Effect::Verbose(true), Effect::Echo(false)]
        );
        assert_eq!(effects("AT+CIFSR;E0"), vec![Effect::Echo(false)]);
        assert_eq!(effects("ATE0&W"), vec![Effect::Echo(false)]);
        assert_eq!(effects("AT+CFUN=1,1"), vec![Effect::Reboot]);
        assert_eq!(effects("AT+CFUN=1"), vec![]);
        assert_eq!(
            effects("AT+CIPRXGET=1;+CIPHEAD=1"),
            vec![Effect::Receive(RxMode::Manual), Effect::DataHeader(true)]
        );
        assert_eq!(effects("AT+CSTT=\"a;E1\""), vec![]);
        assert_eq!(effects("ATI"), vec![]);
    }

    #[test]
    fn numeric_codes() {
        assert_eq!(numeric_result("0"), Some("OK"));
        assert_eq!(numeric_result("4"), Some("ERROR"));
        assert_eq!(numeric_result("5"), None);
    }
}
