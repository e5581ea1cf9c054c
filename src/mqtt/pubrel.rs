//! PUBREL (spec 3.6): releases a QoS 2 PUBLISH (step 2; fixed-header flags 0b0010, in MQTT 3.1
//! 0b1010 on a re-delivery). Packet id, then in 5.0 an optional reason code and optional
//! properties.

use super::ack;
use super::error::{DecodeError, EncodeError};
use super::primitives::Reader;
use super::properties::{Context, Properties};
use super::reason::reason_text;
use super::{PacketType, Protocol};

/// A PUBREL packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubRel {
    /// DUP flag: a re-delivery (MQTT 3.1 only; 3.1.1 and 5.0 have no DUP on PUBREL).
    pub dup: bool,
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// Reason code (5.0 only; 0 = success).
    pub code: u8,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl PubRel {
    /// A PUBREL for `packet_id` with reason code 0 and no properties.
    pub fn new(packet_id: u16) -> PubRel {
        PubRel {
            packet_id,
            ..PubRel::default()
        }
    }

    /// True when the reason code is below 0x80.
    pub fn is_success(&self) -> bool {
        self.code < 0x80
    }

    /// Human text of the reason code.
    pub fn reason_text(&self, protocol: Protocol) -> String {
        reason_text(PacketType::PubRel, self.code, protocol)
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        super::check_dup(PacketType::PubRel, self.dup, protocol)?;
        ack::validate(
            PacketType::PubRel,
            Context::PubRel,
            self.packet_id,
            self.code,
            &self.properties,
            protocol,
        )
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        ack::write(self.packet_id, self.code, &self.properties, protocol, out)
    }

    pub(crate) fn decode(r: &mut Reader<'_>, protocol: Protocol) -> Result<PubRel, DecodeError> {
        let (packet_id, code, properties) =
            ack::decode(r, PacketType::PubRel, Context::PubRel, protocol)?;
        Ok(PubRel {
            dup: false,
            packet_id,
            code,
            properties,
        })
    }
}
