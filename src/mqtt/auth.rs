//! AUTH (spec 3.15, MQTT 5.0 only): reason code and properties, both omitted when the code is
//! 0 (success) and there are no properties. When properties are present they must include the
//! authentication method.

use super::error::{DecodeError, EncodeError};
use super::primitives::Reader;
use super::properties::{Context, Properties};
use super::reason::{allowed_codes, list, reason_text};
use super::{PacketType, Protocol};

/// An AUTH packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// Reason code: 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    pub code: u8,
    /// Properties (authentication method required unless the packet is empty).
    pub properties: Properties,
}

impl Auth {
    /// Human text of the reason code.
    pub fn reason_text(&self) -> String {
        reason_text(PacketType::Auth, self.code, Protocol::V5)
    }

    fn is_short(&self) -> bool {
        self.code == 0 && self.properties.is_empty()
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if protocol != Protocol::V5 {
            return Err(EncodeError::new(
                "AUTH",
                format!(
                    "AUTH exists only in MQTT 5.0, encoding MQTT {}",
                    protocol.name()
                ),
            ));
        }
        let allowed = allowed_codes(PacketType::Auth, protocol);
        if !allowed.contains(&self.code) {
            return Err(EncodeError::new(
                "AUTH reason code",
                format!(
                    "0x{:02X} is not an AUTH reason code (allowed: {})",
                    self.code,
                    list(allowed)
                ),
            ));
        }
        self.properties.validate(Context::Auth, protocol, "AUTH")?;
        if !self.is_short() && self.properties.authentication_method.is_none() {
            return Err(EncodeError::new(
                "AUTH property authentication method",
                "required unless the AUTH packet is empty (code 0, no properties)",
            ));
        }
        Ok(())
    }

    pub(crate) fn write(&self, _protocol: Protocol, out: &mut Vec<u8>) {
        if !self.is_short() {
            out.push(self.code);
            self.properties.write(out);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, _protocol: Protocol) -> Result<Auth, DecodeError> {
        if r.remaining() == 0 {
            return Ok(Auth::default());
        }
        let at = r.offset();
        let code = r.u8("reason code")?;
        let allowed = allowed_codes(PacketType::Auth, Protocol::V5);
        if !allowed.contains(&code) {
            return Err(r.err(
                at,
                "reason code",
                format!(
                    "0x{code:02X} is not an AUTH reason code (allowed: {})",
                    list(allowed)
                ),
            ));
        }
        let props_at = r.offset();
        let properties = Properties::decode(r, Context::Auth)?;
        if properties.authentication_method.is_none() {
            return Err(r.err(
                props_at,
                "property authentication method",
                "required unless the AUTH packet is empty (code 0, no properties)",
            ));
        }
        Ok(Auth { code, properties })
    }
}
