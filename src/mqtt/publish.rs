//! PUBLISH (spec 3.3): flags DUP / QoS / RETAIN in the fixed header; topic name, packet id
//! (QoS 1 and 2 only), (5.0) properties, payload.

use super::error::{DecodeError, EncodeError};
use super::primitives::{Reader, check_string, put_string, put_u16};
use super::properties::{Context, Properties};
use super::topic::check_topic_name;
use super::{Protocol, QoS};

/// A PUBLISH packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publish {
    /// DUP flag (re-delivery); must be false for QoS 0.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name (no wildcards; empty only in 5.0 with a topic alias).
    pub topic: String,
    /// Packet identifier: `None` for QoS 0, `Some(non-zero)` for QoS 1 and 2.
    pub packet_id: Option<u16>,
    /// Application message.
    pub payload: Vec<u8>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl Publish {
    /// A QoS 0 PUBLISH of `payload` to `topic`.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Publish {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            ..Publish::default()
        }
    }

    /// The fixed-header flags: DUP (bit 3), QoS (bits 2-1), RETAIN (bit 0).
    pub fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        check_string("PUBLISH topic", &self.topic)?;
        let alias = protocol == Protocol::V5 && self.properties.topic_alias.is_some();
        check_topic_name(&self.topic, alias).map_err(|(_, m)| {
            let m = if self.topic.is_empty() && protocol == Protocol::V5 {
                format!("{m} (MQTT 5.0 allows an empty topic only with a topic alias)")
            } else {
                m
            };
            EncodeError::new("PUBLISH topic", m)
        })?;
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, Some(id)) => {
                return Err(EncodeError::new(
                    "PUBLISH packet id",
                    format!("QoS 0 has no packet id (got {id})"),
                ));
            }
            (QoS::AtMostOnce, None) => {}
            (q, None) => {
                return Err(EncodeError::new(
                    "PUBLISH packet id",
                    format!("QoS {} needs a packet id", q as u8),
                ));
            }
            (_, Some(0)) => {
                return Err(EncodeError::new(
                    "PUBLISH packet id",
                    "must not be 0 when QoS > 0",
                ));
            }
            _ => {}
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::new(
                "PUBLISH DUP flag",
                "DUP must be 0 for QoS 0",
            ));
        }
        self.properties
            .validate(Context::Publish, protocol, "PUBLISH")
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        out.reserve(self.topic.len() + self.payload.len() + 8);
        put_string(out, &self.topic);
        if let Some(id) = self.packet_id {
            put_u16(out, id);
        }
        if protocol == Protocol::V5 {
            self.properties.write(out);
        }
        out.extend_from_slice(&self.payload);
    }

    pub(crate) fn decode(
        r: &mut Reader<'_>,
        flags: u8,
        protocol: Protocol,
    ) -> Result<Publish, DecodeError> {
        let qos = QoS::from_u8((flags >> 1) & 0x03).unwrap_or_default();
        let topic_at = r.offset();
        let topic = r.string("topic")?;
        if let Err((i, m)) = check_topic_name(&topic, true) {
            return Err(r.err(topic_at + 2 + i, "topic", m));
        }
        let packet_id = if qos != QoS::AtMostOnce {
            let at = r.offset();
            let id = r.u16("packet id")?;
            if id == 0 {
                return Err(r.err(at, "packet id", "must not be 0 when QoS > 0"));
            }
            Some(id)
        } else {
            None
        };
        let properties = if protocol == Protocol::V5 {
            Properties::decode(r, Context::Publish)?
        } else {
            Properties::default()
        };
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(r.err(
                topic_at,
                "topic",
                if protocol == Protocol::V5 {
                    "topic must not be empty (MQTT 5.0 allows an empty topic only with a topic alias)"
                } else {
                    "topic must not be empty"
                },
            ));
        }
        let payload = r.rest().to_vec();
        Ok(Publish {
            dup: flags & 0x08 != 0,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            payload,
            properties,
        })
    }
}
