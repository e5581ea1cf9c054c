//! PUBCOMP (spec 3.7): completes a QoS 2 exchange (step 3). Packet id, then in 5.0 an optional reason code and
//! optional properties.

use super::ack;
use super::error::{DecodeError, EncodeError};
use super::primitives::Reader;
use super::properties::{Context, Properties};
use super::reason::reason_text;
use super::{PacketType, Protocol};

/// A PUBCOMP packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubComp {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// Reason code (5.0 only; 0 = success).
    pub code: u8,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl PubComp {
    /// A PUBCOMP for `packet_id` with reason code 0 and no properties.
    pub fn new(packet_id: u16) -> PubComp {
        PubComp {
            packet_id,
            ..PubComp::default()
        }
    }

    /// True when the reason code is below 0x80.
    pub fn is_success(&self) -> bool {
        self.code < 0x80
    }

    /// Human text of the reason code.
    pub fn reason_text(&self, protocol: Protocol) -> String {
        reason_text(PacketType::PubComp, self.code, protocol)
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        ack::validate(
            PacketType::PubComp,
            Context::PubComp,
            self.packet_id,
            self.code,
            &self.properties,
            protocol,
        )
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        ack::write(self.packet_id, self.code, &self.properties, protocol, out)
    }

    pub(crate) fn decode(r: &mut Reader<'_>, protocol: Protocol) -> Result<PubComp, DecodeError> {
        let (packet_id, code, properties) =
            ack::decode(r, PacketType::PubComp, Context::PubComp, protocol)?;
        Ok(PubComp {
            packet_id,
            code,
            properties,
        })
    }
}
