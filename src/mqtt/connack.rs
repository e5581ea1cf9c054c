//! CONNACK (spec 3.2): acknowledge flags (session present), return / reason code, (5.0)
//! properties.

use super::error::{DecodeError, EncodeError};
use super::primitives::Reader;
use super::properties::{Context, Properties};
use super::reason::{allowed_codes, list, reason_text};
use super::{PacketType, Protocol};

/// A CONNACK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck {
    /// Session present (3.1.1 and 5.0 only; must be false unless the code is 0).
    pub session_present: bool,
    /// Return code (3.1, 3.1.1: 0 to 5) or reason code (5.0).
    pub code: u8,
    /// CONNACK properties (5.0 only).
    pub properties: Properties,
}

impl ConnAck {
    /// A CONNACK with `code` and nothing else.
    pub fn new(code: u8) -> ConnAck {
        ConnAck {
            code,
            ..ConnAck::default()
        }
    }

    /// True when the connection was accepted (code 0).
    pub fn is_success(&self) -> bool {
        self.code == 0
    }

    /// Human text of the code, e.g. `Connection refused: bad user name or password` (3.1.1)
    /// or `Bad User Name or Password` (5.0).
    pub fn reason_text(&self, protocol: Protocol) -> String {
        reason_text(PacketType::ConnAck, self.code, protocol)
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if protocol == Protocol::V31 && self.session_present {
            return Err(EncodeError::new(
                "CONNACK session present",
                "MQTT 3.1 has no session present flag",
            ));
        }
        check_code(protocol, self.code).map_err(|m| EncodeError::new(code_field(protocol), m))?;
        if self.session_present && self.code != 0 {
            return Err(EncodeError::new(
                "CONNACK session present",
                format!(
                    "must be 0 when the code is not 0 (code 0x{:02X})",
                    self.code
                ),
            ));
        }
        self.properties
            .validate(Context::ConnAck, protocol, "CONNACK")
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        out.push(u8::from(self.session_present));
        out.push(self.code);
        if protocol == Protocol::V5 {
            self.properties.write(out);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, protocol: Protocol) -> Result<ConnAck, DecodeError> {
        let flags_at = r.offset();
        let flags = r.u8("acknowledge flags")?;
        if protocol == Protocol::V31 && flags != 0 {
            return Err(r.err(
                flags_at,
                "acknowledge flags",
                format!("reserved byte must be 0 in MQTT 3.1, got 0x{flags:02X}"),
            ));
        }
        if flags & 0xFE != 0 {
            return Err(r.err(
                flags_at,
                "acknowledge flags",
                format!("reserved bits 7-1 must be 0, got 0x{flags:02X}"),
            ));
        }
        let code_at = r.offset();
        let code = r.u8(code_field(protocol).trim_start_matches("CONNACK "))?;
        check_code(protocol, code).map_err(|m| {
            r.err(
                code_at,
                code_field(protocol).trim_start_matches("CONNACK "),
                m,
            )
        })?;
        let session_present = flags & 1 != 0;
        if session_present && code != 0 {
            return Err(r.err(
                flags_at,
                "acknowledge flags",
                format!("session present must be 0 when the code is not 0 (code 0x{code:02X})"),
            ));
        }
        let properties = if protocol == Protocol::V5 {
            Properties::decode(r, Context::ConnAck)?
        } else {
            Properties::default()
        };
        Ok(ConnAck {
            session_present,
            code,
            properties,
        })
    }
}

fn code_field(protocol: Protocol) -> &'static str {
    if protocol == Protocol::V5 {
        "CONNACK reason code"
    } else {
        "CONNACK return code"
    }
}

fn check_code(protocol: Protocol, code: u8) -> Result<(), String> {
    let allowed = allowed_codes(PacketType::ConnAck, protocol);
    if allowed.contains(&code) {
        return Ok(());
    }
    Err(if protocol == Protocol::V5 {
        format!(
            "0x{code:02X} is not a CONNACK reason code (allowed: {})",
            list(allowed)
        )
    } else {
        format!("{code} is not a valid return code (expected 0 to 5)")
    })
}
