//! MQTT 5.0 properties (spec 2.2.2): typed fields, which packet each may appear in, which may
//! repeat, and the value rules. Encoding and decoding of the property block.

use super::error::{DecodeError, EncodeError};
use super::primitives::{
    MAX_VARINT, Reader, check_binary, check_string, put_binary, put_string, put_u16, put_u32,
    put_varint,
};
use super::topic::check_topic_name;
use super::{Protocol, QoS};

/// MQTT 5.0 properties of one packet (or of a CONNECT's will). All fields are optional; only
/// the properties the spec allows for the packet may be set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01 (PUBLISH, will): `true` = payload is UTF-8 text.
    pub payload_format_indicator: Option<bool>,
    /// 0x02 (PUBLISH, will): lifetime of the message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 (PUBLISH, will): MIME-like content type.
    pub content_type: Option<String>,
    /// 0x08 (PUBLISH, will): topic for a response (no wildcards).
    pub response_topic: Option<String>,
    /// 0x09 (PUBLISH, will): correlation data for request/response.
    pub correlation_data: Option<Vec<u8>>,
    /// 0x0B (PUBLISH: may repeat; SUBSCRIBE: at most one): subscription identifiers, 1..=268,435,455.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11 (CONNECT, CONNACK, DISCONNECT): session expiry in seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x12 (CONNACK): client identifier assigned by the server.
    pub assigned_client_identifier: Option<String>,
    /// 0x13 (CONNACK): keep alive imposed by the server.
    pub server_keep_alive: Option<u16>,
    /// 0x15 (CONNECT, CONNACK, AUTH): authentication method.
    pub authentication_method: Option<String>,
    /// 0x16 (CONNECT, CONNACK, AUTH): authentication data (needs a method).
    pub authentication_data: Option<Vec<u8>>,
    /// 0x17 (CONNECT): request problem information.
    pub request_problem_information: Option<bool>,
    /// 0x18 (will): will delay in seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19 (CONNECT): request response information.
    pub request_response_information: Option<bool>,
    /// 0x1A (CONNACK): response information.
    pub response_information: Option<String>,
    /// 0x1C (CONNACK, DISCONNECT): another server to use.
    pub server_reference: Option<String>,
    /// 0x1F (acks, DISCONNECT, AUTH): human-readable reason.
    pub reason_string: Option<String>,
    /// 0x21 (CONNECT, CONNACK): receive maximum, non-zero.
    pub receive_maximum: Option<u16>,
    /// 0x22 (CONNECT, CONNACK): topic alias maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 (PUBLISH): topic alias, non-zero.
    pub topic_alias: Option<u16>,
    /// 0x24 (CONNACK): maximum QoS, 0 or 1 only.
    pub maximum_qos: Option<QoS>,
    /// 0x25 (CONNACK): retain available.
    pub retain_available: Option<bool>,
    /// 0x26 (every packet with properties, may repeat): user properties in order.
    pub user_properties: Vec<(String, String)>,
    /// 0x27 (CONNECT, CONNACK): maximum packet size, non-zero.
    pub maximum_packet_size: Option<u32>,
    /// 0x28 (CONNACK): wildcard subscriptions available.
    pub wildcard_subscription_available: Option<bool>,
    /// 0x29 (CONNACK): subscription identifiers available.
    pub subscription_identifier_available: Option<bool>,
    /// 0x2A (CONNACK): shared subscriptions available.
    pub shared_subscription_available: Option<bool>,
}

/// Where a property block sits: decides which properties are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl Context {
    fn name(self) -> &'static str {
        use Context::*;
        match self {
            Connect => "CONNECT",
            Will => "will properties",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }

    /// Field prefix inside the packet: `property` or `will property`.
    fn prefix(self) -> &'static str {
        if self == Context::Will {
            "will property"
        } else {
            "property"
        }
    }
}

/// A borrowed property value, as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyValue<'a> {
    /// A byte that must be 0 or 1.
    Bool(bool),
    /// A byte.
    Byte(u8),
    /// Two-byte integer.
    U16(u16),
    /// Four-byte integer.
    U32(u32),
    /// Variable byte integer.
    VarInt(u32),
    /// UTF-8 string.
    Str(&'a str),
    /// Binary data.
    Bin(&'a [u8]),
    /// UTF-8 string pair (user property).
    Pair(&'a str, &'a str),
}

struct Meta {
    id: u8,
    name: &'static str,
    key: &'static str,
    allowed: &'static [Context],
}

use Context as C;
const ACKS_ETC: &[Context] = &[
    C::ConnAck,
    C::PubAck,
    C::PubRec,
    C::PubRel,
    C::PubComp,
    C::SubAck,
    C::UnsubAck,
    C::Disconnect,
    C::Auth,
];
const ALL: &[Context] = &[
    C::Connect,
    C::Will,
    C::ConnAck,
    C::Publish,
    C::PubAck,
    C::PubRec,
    C::PubRel,
    C::PubComp,
    C::Subscribe,
    C::SubAck,
    C::Unsubscribe,
    C::UnsubAck,
    C::Disconnect,
    C::Auth,
];
const PUB_WILL: &[Context] = &[C::Publish, C::Will];

const TABLE: &[Meta] = &[
    Meta {
        id: 0x01,
        name: "payload format indicator",
        key: "payload_format_indicator",
        allowed: PUB_WILL,
    },
    Meta {
        id: 0x02,
        name: "message expiry interval",
        key: "message_expiry_interval",
        allowed: PUB_WILL,
    },
    Meta {
        id: 0x03,
        name: "content type",
        key: "content_type",
        allowed: PUB_WILL,
    },
    Meta {
        id: 0x08,
        name: "response topic",
        key: "response_topic",
        allowed: PUB_WILL,
    },
    Meta {
        id: 0x09,
        name: "correlation data",
        key: "correlation_data",
        allowed: PUB_WILL,
    },
    Meta {
        id: 0x0B,
        name: "subscription identifier",
        key: "subscription_identifiers",
        allowed: &[C::Publish, C::Subscribe],
    },
    Meta {
        id: 0x11,
        name: "session expiry interval",
        key: "session_expiry_interval",
        allowed: &[C::Connect, C::ConnAck, C::Disconnect],
    },
    Meta {
        id: 0x12,
        name: "assigned client identifier",
        key: "assigned_client_identifier",
        allowed: &[C::ConnAck],
    },
    Meta {
        id: 0x13,
        name: "server keep alive",
        key: "server_keep_alive",
        allowed: &[C::ConnAck],
    },
    Meta {
        id: 0x15,
        name: "authentication method",
        key: "authentication_method",
        allowed: &[C::Connect, C::ConnAck, C::Auth],
    },
    Meta {
        id: 0x16,
        name: "authentication data",
        key: "authentication_data",
        allowed: &[C::Connect, C::ConnAck, C::Auth],
    },
    Meta {
        id: 0x17,
        name: "request problem information",
        key: "request_problem_information",
        allowed: &[C::Connect],
    },
    Meta {
        id: 0x18,
        name: "will delay interval",
        key: "will_delay_interval",
        allowed: &[C::Will],
    },
    Meta {
        id: 0x19,
        name: "request response information",
        key: "request_response_information",
        allowed: &[C::Connect],
    },
    Meta {
        id: 0x1A,
        name: "response information",
        key: "response_information",
        allowed: &[C::ConnAck],
    },
    Meta {
        id: 0x1C,
        name: "server reference",
        key: "server_reference",
        allowed: &[C::ConnAck, C::Disconnect],
    },
    Meta {
        id: 0x1F,
        name: "reason string",
        key: "reason_string",
        allowed: ACKS_ETC,
    },
    Meta {
        id: 0x21,
        name: "receive maximum",
        key: "receive_maximum",
        allowed: &[C::Connect, C::ConnAck],
    },
    Meta {
        id: 0x22,
        name: "topic alias maximum",
        key: "topic_alias_maximum",
        allowed: &[C::Connect, C::ConnAck],
    },
    Meta {
        id: 0x23,
        name: "topic alias",
        key: "topic_alias",
        allowed: &[C::Publish],
    },
    Meta {
        id: 0x24,
        name: "maximum QoS",
        key: "maximum_qos",
        allowed: &[C::ConnAck],
    },
    Meta {
        id: 0x25,
        name: "retain available",
        key: "retain_available",
        allowed: &[C::ConnAck],
    },
    Meta {
        id: 0x26,
        name: "user property",
        key: "user_properties",
        allowed: ALL,
    },
    Meta {
        id: 0x27,
        name: "maximum packet size",
        key: "maximum_packet_size",
        allowed: &[C::Connect, C::ConnAck],
    },
    Meta {
        id: 0x28,
        name: "wildcard subscription available",
        key: "wildcard_subscription_available",
        allowed: &[C::ConnAck],
    },
    Meta {
        id: 0x29,
        name: "subscription identifier available",
        key: "subscription_identifier_available",
        allowed: &[C::ConnAck],
    },
    Meta {
        id: 0x2A,
        name: "shared subscription available",
        key: "shared_subscription_available",
        allowed: &[C::ConnAck],
    },
];

fn meta(id: u8) -> Option<&'static Meta> {
    TABLE.iter().find(|m| m.id == id)
}

/// The spec name of a property identifier (e.g. `0x23` → `"topic alias"`).
pub(crate) fn property_name(id: u8) -> Option<&'static str> {
    meta(id).map(|m| m.name)
}

/// The snake_case JSON key of a property identifier (e.g. `0x23` → `"topic_alias"`).
pub(crate) fn property_key(id: u8) -> Option<&'static str> {
    meta(id).map(|m| m.key)
}

fn may_repeat(id: u8, ctx: Context) -> bool {
    id == 0x26 || (id == 0x0B && ctx == Context::Publish)
}

/// Value rules shared by encoder and decoder (beyond the wire type).
fn value_rule(id: u8, v: &PropertyValue<'_>) -> Result<(), (usize, String)> {
    match (id, v) {
        (0x0B, PropertyValue::VarInt(x)) if *x == 0 || *x > MAX_VARINT => {
            Err((0, format!("value {x} is out of range (1 to {MAX_VARINT})")))
        }
        (0x21 | 0x23, PropertyValue::U16(0)) | (0x27, PropertyValue::U32(0)) => {
            Err((0, "value 0 is not allowed (must be 1 or more)".into()))
        }
        (0x24, PropertyValue::Byte(q)) if *q > 1 => {
            Err((0, format!("value {q} is not allowed (must be 0 or 1)")))
        }
        (0x08, PropertyValue::Str(t)) => check_topic_name(t, false).map_err(|(i, m)| (2 + i, m)),
        _ => Ok(()),
    }
}

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Every property set, in identifier order (user properties and subscription identifiers
    /// in their own order), with its identifier.
    pub fn entries(&self) -> Vec<(u8, PropertyValue<'_>)> {
        use PropertyValue as V;
        let mut e: Vec<(u8, PropertyValue<'_>)> = Vec::new();
        fn s(x: &Option<String>) -> Option<PropertyValue<'_>> {
            x.as_deref().map(PropertyValue::Str)
        }
        fn b(x: &Option<Vec<u8>>) -> Option<PropertyValue<'_>> {
            x.as_deref().map(PropertyValue::Bin)
        }
        fn push<'a>(e: &mut Vec<(u8, PropertyValue<'a>)>, id: u8, v: Option<PropertyValue<'a>>) {
            if let Some(v) = v {
                e.push((id, v));
            }
        }
        push(&mut e, 0x01, self.payload_format_indicator.map(V::Bool));
        push(&mut e, 0x02, self.message_expiry_interval.map(V::U32));
        push(&mut e, 0x03, s(&self.content_type));
        push(&mut e, 0x08, s(&self.response_topic));
        push(&mut e, 0x09, b(&self.correlation_data));
        for id in &self.subscription_identifiers {
            e.push((0x0B, V::VarInt(*id)));
        }
        push(&mut e, 0x11, self.session_expiry_interval.map(V::U32));
        push(&mut e, 0x12, s(&self.assigned_client_identifier));
        push(&mut e, 0x13, self.server_keep_alive.map(V::U16));
        push(&mut e, 0x15, s(&self.authentication_method));
        push(&mut e, 0x16, b(&self.authentication_data));
        push(&mut e, 0x17, self.request_problem_information.map(V::Bool));
        push(&mut e, 0x18, self.will_delay_interval.map(V::U32));
        push(&mut e, 0x19, self.request_response_information.map(V::Bool));
        push(&mut e, 0x1A, s(&self.response_information));
        push(&mut e, 0x1C, s(&self.server_reference));
        push(&mut e, 0x1F, s(&self.reason_string));
        push(&mut e, 0x21, self.receive_maximum.map(V::U16));
        push(&mut e, 0x22, self.topic_alias_maximum.map(V::U16));
        push(&mut e, 0x23, self.topic_alias.map(V::U16));
        push(&mut e, 0x24, self.maximum_qos.map(|q| V::Byte(q as u8)));
        push(&mut e, 0x25, self.retain_available.map(V::Bool));
        for (k, v) in &self.user_properties {
            e.push((0x26, V::Pair(k, v)));
        }
        push(&mut e, 0x27, self.maximum_packet_size.map(V::U32));
        push(
            &mut e,
            0x28,
            self.wildcard_subscription_available.map(V::Bool),
        );
        push(
            &mut e,
            0x29,
            self.subscription_identifier_available.map(V::Bool),
        );
        push(
            &mut e,
            0x2A,
            self.shared_subscription_available.map(V::Bool),
        );
        e
    }

    /// Check the properties for `ctx` before encoding. `packet` names the packet in errors.
    pub(crate) fn validate(
        &self,
        ctx: Context,
        protocol: Protocol,
        packet: &str,
    ) -> Result<(), EncodeError> {
        if self.is_empty() {
            return Ok(());
        }
        let what = if ctx == Context::Will {
            "will properties"
        } else {
            "properties"
        };
        if protocol != Protocol::V5 {
            return Err(EncodeError::new(
                format!("{packet} {what}"),
                format!(
                    "properties exist only in MQTT 5.0, encoding MQTT {}",
                    protocol.name()
                ),
            ));
        }
        let mut seen = 0u64;
        for (id, v) in self.entries() {
            let m = meta(id).map(|m| m.name).unwrap_or("property");
            let field = format!("{packet} {} {m}", ctx.prefix());
            if !meta(id).is_some_and(|m| m.allowed.contains(&ctx)) {
                return Err(EncodeError::new(
                    field,
                    format!("not allowed in {}", ctx.name()),
                ));
            }
            if seen & (1 << id) != 0 && !may_repeat(id, ctx) {
                return Err(EncodeError::new(
                    field,
                    format!("may appear only once in {}", ctx.name()),
                ));
            }
            seen |= 1 << id;
            value_rule(id, &v).map_err(|(_, msg)| EncodeError::new(&field, msg))?;
            match v {
                PropertyValue::Str(x) => check_string(&field, x)?,
                PropertyValue::Bin(x) => check_binary(&field, x)?,
                PropertyValue::Pair(k, x) => {
                    check_string(&format!("{field} name"), k)?;
                    check_string(&format!("{field} value"), x)?;
                }
                _ => {}
            }
        }
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(EncodeError::new(
                format!("{packet} {} authentication data", ctx.prefix()),
                "authentication data without an authentication method",
            ));
        }
        let len = self.body_len();
        if len > MAX_VARINT as usize {
            return Err(EncodeError::new(
                format!("{packet} {what}"),
                format!("{len} bytes of properties exceed the maximum of {MAX_VARINT}"),
            ));
        }
        Ok(())
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        for (id, v) in self.entries() {
            out.push(id);
            match v {
                PropertyValue::Bool(b) => out.push(u8::from(b)),
                PropertyValue::Byte(b) => out.push(b),
                PropertyValue::U16(x) => put_u16(out, x),
                PropertyValue::U32(x) => put_u32(out, x),
                PropertyValue::VarInt(x) => put_varint(out, x as usize),
                PropertyValue::Str(s) => put_string(out, s),
                PropertyValue::Bin(b) => put_binary(out, b),
                PropertyValue::Pair(k, x) => {
                    put_string(out, k);
                    put_string(out, x);
                }
            }
        }
    }

    fn body_len(&self) -> usize {
        let mut v = Vec::new();
        self.write_body(&mut v);
        v.len()
    }

    /// Append the property length and the properties (no checks).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        self.write_body(&mut body);
        put_varint(out, body.len());
        out.extend_from_slice(&body);
    }

    /// Read a property length and the properties allowed in `ctx`.
    pub(crate) fn decode(r: &mut Reader<'_>, ctx: Context) -> Result<Properties, DecodeError> {
        let what = if ctx == Context::Will {
            "will properties"
        } else {
            "properties"
        };
        let len_field = format!("{what} length");
        let len_at = r.offset();
        let len = r.varint(&len_field)? as usize;
        let start = r.offset();
        let left = r.remaining();
        let mut sub = r.sub(len, &len_field).map_err(|_| {
            r.err(
                len_at,
                &len_field,
                format!(
                    "property length {len} runs past the end of the packet ({left} bytes left)"
                ),
            )
        })?;
        let mut p = Properties::default();
        let mut seen = 0u64;
        while sub.remaining() > 0 {
            let at = sub.offset();
            let id = sub.u8(&format!("{what} identifier"))?;
            let Some(m) = meta(id) else {
                return Err(sub.err(
                    at,
                    &format!("{what} identifier"),
                    format!("unknown property identifier 0x{id:02X}"),
                ));
            };
            let f = format!("{} {}", ctx.prefix(), m.name);
            if !m.allowed.contains(&ctx) {
                return Err(sub.err(
                    at,
                    &f,
                    format!("property 0x{id:02X} is not allowed in {}", ctx.name()),
                ));
            }
            if seen & (1 << id) != 0 && !may_repeat(id, ctx) {
                return Err(sub.err(
                    at,
                    &f,
                    format!("property 0x{id:02X} may appear only once in {}", ctx.name()),
                ));
            }
            seen |= 1 << id;
            let vat = sub.offset();
            let check = |sub: &Reader<'_>, v: PropertyValue<'_>| {
                value_rule(id, &v).map_err(|(i, msg)| sub.err(vat + i, &f, msg))
            };
            let boolean = |sub: &mut Reader<'_>| -> Result<bool, DecodeError> {
                match sub.u8(&f)? {
                    0 => Ok(false),
                    1 => Ok(true),
                    x => Err(sub.err(
                        vat,
                        &f,
                        format!("value {x} is not allowed (must be 0 or 1)"),
                    )),
                }
            };
            match id {
                0x01 => p.payload_format_indicator = Some(boolean(&mut sub)?),
                0x02 => p.message_expiry_interval = Some(sub.u32(&f)?),
                0x03 => p.content_type = Some(sub.string(&f)?),
                0x08 => {
                    let t = sub.string(&f)?;
                    check(&sub, PropertyValue::Str(&t))?;
                    p.response_topic = Some(t);
                }
                0x09 => p.correlation_data = Some(sub.binary(&f)?),
                0x0B => {
                    let v = sub.varint(&f)?;
                    check(&sub, PropertyValue::VarInt(v))?;
                    p.subscription_identifiers.push(v);
                }
                0x11 => p.session_expiry_interval = Some(sub.u32(&f)?),
                0x12 => p.assigned_client_identifier = Some(sub.string(&f)?),
                0x13 => p.server_keep_alive = Some(sub.u16(&f)?),
                0x15 => p.authentication_method = Some(sub.string(&f)?),
                0x16 => p.authentication_data = Some(sub.binary(&f)?),
                0x17 => p.request_problem_information = Some(boolean(&mut sub)?),
                0x18 => p.will_delay_interval = Some(sub.u32(&f)?),
                0x19 => p.request_response_information = Some(boolean(&mut sub)?),
                0x1A => p.response_information = Some(sub.string(&f)?),
                0x1C => p.server_reference = Some(sub.string(&f)?),
                0x1F => p.reason_string = Some(sub.string(&f)?),
                0x21 => {
                    let v = sub.u16(&f)?;
                    check(&sub, PropertyValue::U16(v))?;
                    p.receive_maximum = Some(v);
                }
                0x22 => p.topic_alias_maximum = Some(sub.u16(&f)?),
                0x23 => {
                    let v = sub.u16(&f)?;
                    check(&sub, PropertyValue::U16(v))?;
                    p.topic_alias = Some(v);
                }
                0x24 => {
                    let v = sub.u8(&f)?;
                    check(&sub, PropertyValue::Byte(v))?;
                    p.maximum_qos = Some(if v == 0 {
                        QoS::AtMostOnce
                    } else {
                        QoS::AtLeastOnce
                    });
                }
                0x25 => p.retain_available = Some(boolean(&mut sub)?),
                0x26 => {
                    let k = sub.string(&format!("{f} name"))?;
                    let v = sub.string(&format!("{f} value"))?;
                    p.user_properties.push((k, v));
                }
                0x27 => {
                    let v = sub.u32(&f)?;
                    check(&sub, PropertyValue::U32(v))?;
                    p.maximum_packet_size = Some(v);
                }
                0x28 => p.wildcard_subscription_available = Some(boolean(&mut sub)?),
                0x29 => p.subscription_identifier_available = Some(boolean(&mut sub)?),
                0x2A => p.shared_subscription_available = Some(boolean(&mut sub)?),
                _ => {
                    return Err(sub.err(at, &f, format!("unknown property identifier 0x{id:02X}")));
                }
            }
        }
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(r.err(
                start,
                &format!("{} authentication data", ctx.prefix()),
                "authentication data without an authentication method",
            ));
        }
        Ok(p)
    }
}
