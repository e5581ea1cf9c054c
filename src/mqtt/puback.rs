//! PUBACK (spec 3.4): acknowledges a QoS 1 PUBLISH. Packet id, then in 5.0 an optional reason code and
//! optional properties.

use super::ack;
use super::error::{DecodeError, EncodeError};
use super::primitives::Reader;
use super::properties::{Context, Properties};
use super::reason::reason_text;
use super::{PacketType, Protocol};

/// A PUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubAck {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// Reason code (5.0 only; 0 = success).
    pub code: u8,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl PubAck {
    /// A PUBACK for `packet_id` with reason code 0 and no properties.
    pub fn new(packet_id: u16) -> PubAck {
        PubAck {
            packet_id,
            ..PubAck::default()
        }
    }

    /// True when the reason code is below 0x80.
    pub fn is_success(&self) -> bool {
        self.code < 0x80
    }

    /// Human text of the reason code.
    pub fn reason_text(&self, protocol: Protocol) -> String {
        reason_text(PacketType::PubAck, self.code, protocol)
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        ack::validate(
            PacketType::PubAck,
            Context::PubAck,
            self.packet_id,
            self.code,
            &self.properties,
            protocol,
        )
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        ack::write(self.packet_id, self.code, &self.properties, protocol, out)
    }

    pub(crate) fn decode(r: &mut Reader<'_>, protocol: Protocol) -> Result<PubAck, DecodeError> {
        let (packet_id, code, properties) =
            ack::decode(r, PacketType::PubAck, Context::PubAck, protocol)?;
        Ok(PubAck {
            packet_id,
            code,
            properties,
        })
    }
}
