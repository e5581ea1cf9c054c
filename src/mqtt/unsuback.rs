//! UNSUBACK (spec 3.11): packet id; in 5.0 also properties and one reason code per filter.

use super::error::{DecodeError, EncodeError};
use super::primitives::{Reader, put_u16};
use super::properties::{Context, Properties};
use super::reason::{allowed_codes, list, reason_text};
use super::{PacketType, Protocol};

/// An UNSUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE (non-zero).
    pub packet_id: u16,
    /// 5.0 only: one reason code per topic filter (at least one); empty in 3.1 / 3.1.1.
    pub codes: Vec<u8>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl UnsubAck {
    /// A 3.1.1-style UNSUBACK (no codes).
    pub fn new(packet_id: u16) -> UnsubAck {
        UnsubAck {
            packet_id,
            ..UnsubAck::default()
        }
    }

    /// True when no code is a failure (≥ 0x80).
    pub fn is_success(&self) -> bool {
        !self.codes.iter().any(|c| *c >= 0x80)
    }

    /// Human text of each code.
    pub fn reason_texts(&self, protocol: Protocol) -> Vec<String> {
        self.codes
            .iter()
            .map(|c| reason_text(PacketType::UnsubAck, *c, protocol))
            .collect()
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::new("UNSUBACK packet id", "must not be 0"));
        }
        if protocol != Protocol::V5 {
            if !self.codes.is_empty() {
                return Err(EncodeError::new(
                    "UNSUBACK codes",
                    format!(
                        "reason codes exist only in MQTT 5.0, encoding MQTT {}",
                        protocol.name()
                    ),
                ));
            }
        } else {
            if self.codes.is_empty() {
                return Err(EncodeError::new(
                    "UNSUBACK codes",
                    "MQTT 5.0 needs at least one reason code",
                ));
            }
            let allowed = allowed_codes(PacketType::UnsubAck, protocol);
            for (i, c) in self.codes.iter().enumerate() {
                if !allowed.contains(c) {
                    return Err(EncodeError::new(
                        format!("UNSUBACK code {}", i + 1),
                        format!(
                            "0x{c:02X} is not an UNSUBACK reason code (allowed: {})",
                            list(allowed)
                        ),
                    ));
                }
            }
        }
        self.properties
            .validate(Context::UnsubAck, protocol, "UNSUBACK")
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id);
        if protocol == Protocol::V5 {
            self.properties.write(out);
            out.extend_from_slice(&self.codes);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, protocol: Protocol) -> Result<UnsubAck, DecodeError> {
        let id_at = r.offset();
        let packet_id = r.u16("packet id")?;
        if packet_id == 0 {
            return Err(r.err(id_at, "packet id", "must not be 0"));
        }
        if protocol != Protocol::V5 {
            return Ok(UnsubAck::new(packet_id));
        }
        let properties = Properties::decode(r, Context::UnsubAck)?;
        if r.remaining() == 0 {
            return Err(r.err(
                r.offset(),
                "codes",
                "MQTT 5.0 needs at least one reason code",
            ));
        }
        let start = r.offset();
        let codes = r.rest().to_vec();
        let allowed = allowed_codes(PacketType::UnsubAck, protocol);
        for (i, c) in codes.iter().enumerate() {
            if !allowed.contains(c) {
                return Err(r.err(
                    start + i,
                    &format!("code {}", i + 1),
                    format!(
                        "0x{c:02X} is not an UNSUBACK reason code (allowed: {})",
                        list(allowed)
                    ),
                ));
            }
        }
        Ok(UnsubAck {
            packet_id,
            codes,
            properties,
        })
    }
}
