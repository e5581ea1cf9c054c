//! UNSUBSCRIBE (spec 3.10): fixed-header flags 0b0010 (MQTT 3.1: 0b1010 on a re-delivery);
//! packet id, (5.0) properties, one or more topic filters.

use super::Protocol;
use super::error::{DecodeError, EncodeError};
use super::primitives::{Reader, check_string, put_string, put_u16};
use super::properties::{Context, Properties};
use super::topic::check_topic_filter;

/// An UNSUBSCRIBE packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unsubscribe {
    /// DUP flag: a re-delivery (MQTT 3.1 only; 3.1.1 and 5.0 have no DUP on UNSUBSCRIBE).
    pub dup: bool,
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// Topic filters (at least one).
    pub filters: Vec<String>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE from one filter.
    pub fn new(packet_id: u16, filter: impl Into<String>) -> Unsubscribe {
        Unsubscribe {
            dup: false,
            packet_id,
            filters: vec![filter.into()],
            properties: Properties::default(),
        }
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        super::check_dup(super::PacketType::Unsubscribe, self.dup, protocol)?;
        if self.packet_id == 0 {
            return Err(EncodeError::new("UNSUBSCRIBE packet id", "must not be 0"));
        }
        if self.filters.is_empty() {
            return Err(EncodeError::new(
                "UNSUBSCRIBE topic filters",
                "at least one topic filter is required",
            ));
        }
        self.properties
            .validate(Context::Unsubscribe, protocol, "UNSUBSCRIBE")?;
        for (i, f) in self.filters.iter().enumerate() {
            let field = format!("UNSUBSCRIBE topic filter {}", i + 1);
            check_string(&field, f)?;
            check_topic_filter(f, protocol).map_err(|(_, m)| EncodeError::new(&field, m))?;
        }
        Ok(())
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id);
        if protocol == Protocol::V5 {
            self.properties.write(out);
        }
        for f in &self.filters {
            put_string(out, f);
        }
    }

    pub(crate) fn decode(
        r: &mut Reader<'_>,
        protocol: Protocol,
    ) -> Result<Unsubscribe, DecodeError> {
        let id_at = r.offset();
        let packet_id = r.u16("packet id")?;
        if packet_id == 0 {
            return Err(r.err(id_at, "packet id", "must not be 0"));
        }
        let properties = if protocol == Protocol::V5 {
            Properties::decode(r, Context::Unsubscribe)?
        } else {
            Properties::default()
        };
        if r.remaining() == 0 {
            return Err(r.err(
                r.offset(),
                "topic filters",
                "at least one topic filter is required",
            ));
        }
        let mut filters = Vec::new();
        while r.remaining() > 0 {
            let field = format!("topic filter {}", filters.len() + 1);
            let at = r.offset();
            let filter = r.string(&field)?;
            check_topic_filter(&filter, protocol).map_err(|(i, m)| {
                r.err(if filter.is_empty() { at } else { at + 2 + i }, &field, m)
            })?;
            filters.push(filter);
        }
        Ok(Unsubscribe {
            dup: false,
            packet_id,
            filters,
            properties,
        })
    }
}
