//! SUBSCRIBE (spec 3.8): fixed-header flags 0b0010 (MQTT 3.1: 0b1010 on a re-delivery); packet id, (5.0) properties, then one or
//! more topic filters each followed by a subscription options byte.

use super::error::{DecodeError, EncodeError};
use super::primitives::{Reader, check_string, put_string, put_u16};
use super::properties::{Context, Properties};
use super::topic::{check_topic_filter, is_shared};
use super::{Protocol, QoS};

/// MQTT 5.0 retain handling option of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send retained messages only if the subscription did not exist.
    SendIfNewSubscription = 1,
    /// 2: do not send retained messages.
    DoNotSend = 2,
}

impl RetainHandling {
    /// The option for 0, 1 or 2.
    pub fn from_u8(v: u8) -> Option<RetainHandling> {
        match v {
            0 => Some(RetainHandling::SendAtSubscribe),
            1 => Some(RetainHandling::SendIfNewSubscription),
            2 => Some(RetainHandling::DoNotSend),
            _ => None,
        }
    }
}

/// One topic filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeFilter {
    /// Topic filter (`+` and `#` wildcards allowed by the rules).
    pub filter: String,
    /// Maximum QoS requested.
    pub qos: QoS,
    /// 5.0: do not receive own publications (not allowed on shared subscriptions).
    pub no_local: bool,
    /// 5.0: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// 5.0: retain handling.
    pub retain_handling: RetainHandling,
}

impl SubscribeFilter {
    /// A filter with `qos` and default options.
    pub fn new(filter: impl Into<String>, qos: QoS) -> SubscribeFilter {
        SubscribeFilter {
            filter: filter.into(),
            qos,
            ..SubscribeFilter::default()
        }
    }

    /// The subscription options byte.
    pub fn options(&self) -> u8 {
        (self.qos as u8)
            | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | ((self.retain_handling as u8) << 4)
    }
}

/// A SUBSCRIBE packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe {
    /// DUP flag: a re-delivery (MQTT 3.1 only; 3.1.1 and 5.0 have no DUP on SUBSCRIBE).
    pub dup: bool,
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// Topic filters (at least one).
    pub filters: Vec<SubscribeFilter>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

impl Subscribe {
    /// A SUBSCRIBE to one filter.
    pub fn new(packet_id: u16, filter: impl Into<String>, qos: QoS) -> Subscribe {
        Subscribe {
            dup: false,
            packet_id,
            filters: vec![SubscribeFilter::new(filter, qos)],
            properties: Properties::default(),
        }
    }

    pub(crate) fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        super::check_dup(super::PacketType::Subscribe, self.dup, protocol)?;
        if self.packet_id == 0 {
            return Err(EncodeError::new("SUBSCRIBE packet id", "must not be 0"));
        }
        if self.filters.is_empty() {
            return Err(EncodeError::new(
                "SUBSCRIBE topic filters",
                "at least one topic filter is required",
            ));
        }
        self.properties
            .validate(Context::Subscribe, protocol, "SUBSCRIBE")?;
        for (i, f) in self.filters.iter().enumerate() {
            let field = format!("SUBSCRIBE topic filter {}", i + 1);
            check_string(&field, &f.filter)?;
            check_topic_filter(&f.filter, protocol)
                .map_err(|(_, m)| EncodeError::new(&field, m))?;
            let ofield = format!("SUBSCRIBE subscription options {}", i + 1);
            if protocol != Protocol::V5 {
                if f.no_local
                    || f.retain_as_published
                    || f.retain_handling != RetainHandling::SendAtSubscribe
                {
                    return Err(EncodeError::new(
                        ofield,
                        format!(
                            "no local, retain as published and retain handling exist only in MQTT 5.0, encoding MQTT {}",
                            protocol.name()
                        ),
                    ));
                }
            } else if f.no_local && is_shared(&f.filter) {
                return Err(EncodeError::new(
                    ofield,
                    "no local must be 0 on a shared subscription",
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn write(&self, protocol: Protocol, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id);
        if protocol == Protocol::V5 {
            self.properties.write(out);
        }
        for f in &self.filters {
            put_string(out, &f.filter);
            out.push(f.options());
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, protocol: Protocol) -> Result<Subscribe, DecodeError> {
        let id_at = r.offset();
        let packet_id = r.u16("packet id")?;
        if packet_id == 0 {
            return Err(r.err(id_at, "packet id", "must not be 0"));
        }
        let properties = if protocol == Protocol::V5 {
            Properties::decode(r, Context::Subscribe)?
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
            let n = filters.len() + 1;
            let field = format!("topic filter {n}");
            let at = r.offset();
            let filter = r.string(&field)?;
            check_topic_filter(&filter, protocol).map_err(|(i, m)| {
                r.err(if filter.is_empty() { at } else { at + 2 + i }, &field, m)
            })?;
            let ofield = format!("subscription options {n}");
            let oat = r.offset();
            let o = r.u8(&ofield)?;
            let reserved = if protocol == Protocol::V5 { 0xC0 } else { 0xFC };
            if o & reserved != 0 {
                return Err(r.err(
                    oat,
                    &ofield,
                    format!("reserved bits 0x{reserved:02X} must be 0, got 0x{o:02X}"),
                ));
            }
            let Some(qos) = QoS::from_u8(o & 0x03) else {
                return Err(r.err(
                    oat,
                    &ofield,
                    format!("QoS 3 is invalid (options 0x{o:02X})"),
                ));
            };
            let Some(retain_handling) = RetainHandling::from_u8((o >> 4) & 0x03) else {
                return Err(r.err(
                    oat,
                    &ofield,
                    format!("retain handling 3 is invalid (options 0x{o:02X})"),
                ));
            };
            let no_local = o & 0x04 != 0;
            if no_local && protocol == Protocol::V5 && is_shared(&filter) {
                return Err(r.err(oat, &ofield, "no local must be 0 on a shared subscription"));
            }
            filters.push(SubscribeFilter {
                filter,
                qos,
                no_local,
                retain_as_published: o & 0x08 != 0,
                retain_handling,
            });
        }
        Ok(Subscribe {
            dup: false,
            packet_id,
            filters,
            properties,
        })
    }
}
