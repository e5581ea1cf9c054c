//! DISCONNECT (spec 3.14): empty in 3.1 / 3.1.1; in 5.0 an optional reason code and optional
//! properties (remaining length 0 means reason code 0, normal disconnection).

use super::error::{DecodeError, EncodeError};
use super::primitives::Reader;
use super::properties::{Context, Properties};
use super::reason::{allowed_codes, list, reason_text};
use super::{PacketType, Protocol};

/// A DISCONNECT packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Reason code (5.0 only; 0 = normal disconnection).
    pub code: u8,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl Disconnect {
    /// Human text of the reason code.
    pub fn reason_text(&self, protocol: Protocol) -> String {
        reason_text(PacketType::Disconnect, self.code, protocol)
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if protocol != Protocol::V5 {
            if self.code != 0 {
                return Err(EncodeError::new(
                    "DISCONNECT reason code",
                    format!(
                        "reason codes exist only in MQTT 5.0, encoding MQTT {}",
                        protocol.name()
                    ),
                ));
            }
        } else if !allowed_codes(PacketType::Disconnect, protocol).contains(&self.code) {
            return Err(EncodeError::new(
                "DISCONNECT reason code",
                format!(
                    "0x{:02X} is not a DISCONNECT reason code (allowed: {})",
                    self.code,
                    list(allowed_codes(PacketType::Disconnect, protocol))
                ),
            ));
        }
        self.properties
            .validate(Context::Disconnect, protocol, "DISCONNECT")
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        if protocol == Protocol::V5 && (self.code != 0 || !self.properties.is_empty()) {
            out.push(self.code);
            if !self.properties.is_empty() {
                self.properties.write(out);
            }
        }
    }

    pub(crate) fn decode(
        r: &mut Reader<'_>,
        protocol: Protocol,
    ) -> Result<Disconnect, DecodeError> {
        if protocol != Protocol::V5 || r.remaining() == 0 {
            return Ok(Disconnect::default());
        }
        let at = r.offset();
        let code = r.u8("reason code")?;
        let allowed = allowed_codes(PacketType::Disconnect, protocol);
        if !allowed.contains(&code) {
            return Err(r.err(
                at,
                "reason code",
                format!(
                    "0x{code:02X} is not a DISCONNECT reason code (allowed: {})",
                    list(allowed)
                ),
            ));
        }
        let properties = if r.remaining() > 0 {
            Properties::decode(r, Context::Disconnect)?
        } else {
            Properties::default()
        };
        Ok(Disconnect { code, properties })
    }
}
