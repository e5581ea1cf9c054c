//! SUBACK (spec 3.9): packet id, (5.0) properties, one return / reason code per filter.

use super::error::{DecodeError, EncodeError};
use super::primitives::{Reader, put_u16};
use super::properties::{Context, Properties};
use super::reason::{allowed_codes, list, reason_text};
use super::{PacketType, Protocol, QoS};

/// A SUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE (non-zero).
    pub packet_id: u16,
    /// One code per topic filter: granted QoS 0, 1, 2, or a failure (0x80; 5.0: ≥ 0x80).
    pub codes: Vec<u8>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl SubAck {
    /// True when `code` is a failure (0x80 in 3.1.1, any code ≥ 0x80 in 5.0).
    pub fn is_failure_code(code: u8) -> bool {
        code >= 0x80
    }

    /// True when every filter was granted.
    pub fn is_success(&self) -> bool {
        !self.codes.iter().any(|c| Self::is_failure_code(*c))
    }

    /// The granted QoS of filter `i` (`None` for a failure or a missing index).
    pub fn granted_qos(&self, i: usize) -> Option<QoS> {
        self.codes.get(i).and_then(|c| QoS::from_u8(*c))
    }

    /// Human text of each code.
    pub fn reason_texts(&self, protocol: Protocol) -> Vec<String> {
        self.codes
            .iter()
            .map(|c| reason_text(PacketType::SubAck, *c, protocol))
            .collect()
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::new("SUBACK packet id", "must not be 0"));
        }
        if self.codes.is_empty() {
            return Err(EncodeError::new(
                "SUBACK codes",
                "at least one code is required",
            ));
        }
        let allowed = allowed_codes(PacketType::SubAck, protocol);
        for (i, c) in self.codes.iter().enumerate() {
            if !allowed.contains(c) {
                return Err(EncodeError::new(
                    format!("SUBACK code {}", i + 1),
                    format!(
                        "0x{c:02X} is not a SUBACK code in MQTT {} (allowed: {})",
                        protocol.name(),
                        list(allowed)
                    ),
                ));
            }
        }
        self.properties
            .validate(Context::SubAck, protocol, "SUBACK")
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id);
        if protocol == Protocol::V5 {
            self.properties.write(out);
        }
        out.extend_from_slice(&self.codes);
    }

    pub(crate) fn decode(r: &mut Reader<'_>, protocol: Protocol) -> Result<SubAck, DecodeError> {
        let id_at = r.offset();
        let packet_id = r.u16("packet id")?;
        if packet_id == 0 {
            return Err(r.err(id_at, "packet id", "must not be 0"));
        }
        let properties = if protocol == Protocol::V5 {
            Properties::decode(r, Context::SubAck)?
        } else {
            Properties::default()
        };
        if r.remaining() == 0 {
            return Err(r.err(r.offset(), "codes", "at least one code is required"));
        }
        let start = r.offset();
        let codes = r.rest().to_vec();
        let allowed = allowed_codes(PacketType::SubAck, protocol);
        for (i, c) in codes.iter().enumerate() {
            if !allowed.contains(c) {
                return Err(r.err(
                    start + i,
                    &format!("code {}", i + 1),
                    format!(
                        "0x{c:02X} is not a SUBACK code in MQTT {} (allowed: {})",
                        protocol.name(),
                        list(allowed)
                    ),
                ));
            }
        }
        Ok(SubAck {
            packet_id,
            codes,
            properties,
        })
    }
}
