//! Human and JSON views of a packet: every field, binary data as hex plus text when it is
//! UTF-8.

use serde_json::{Map, Value, json};

use super::properties::{PropertyValue, property_key, property_name};
use super::reason::reason_text;
use super::{Packet, PacketType, Properties, Protocol, QoS};
use crate::util::hex::hex;

/// `"text"` (quoted, escaped) when `b` is UTF-8 without control characters other than tab,
/// CR and LF; hex pairs otherwise.
pub fn show_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            format!("{s:?}")
        }
        _ => format!("hex {}", hex(b, " ")),
    }
}

/// `"<name> (<n> bytes)"`.
fn sized_name(name: &str, b: &[u8]) -> String {
    let n = b.len();
    format!("{name} ({n} byte{})", if n == 1 { "" } else { "s" })
}

fn qos_text(q: QoS) -> String {
    format!("{} ({})", q as u8, q.description())
}

struct Lines(Vec<String>);

impl Lines {
    fn add(&mut self, k: &str, v: impl std::fmt::Display) {
        self.0.push(format!("  {k}: {v}"));
    }

    fn bytes(&mut self, k: &str, b: &[u8]) {
        self.add(&sized_name(k, b), show_bytes(b));
    }

    fn props(&mut self, prefix: &str, p: &Properties) {
        for (id, v) in p.entries() {
            let name = property_name(id).unwrap_or("property");
            let mut label = format!("{prefix} {name} (0x{id:02X})");
            let text = match v {
                PropertyValue::Bool(b) => b.to_string(),
                PropertyValue::Byte(b) => b.to_string(),
                PropertyValue::U16(x) => x.to_string(),
                PropertyValue::U32(x) | PropertyValue::VarInt(x) => x.to_string(),
                PropertyValue::Str(s) => format!("{s:?}"),
                PropertyValue::Bin(b) => {
                    label = sized_name(&label, b);
                    show_bytes(b)
                }
                PropertyValue::Pair(k, x) => format!("{k:?} = {x:?}"),
            };
            self.add(&label, text);
        }
    }
}

fn code_line(l: &mut Lines, t: PacketType, code: u8, protocol: Protocol) {
    l.add(
        "reason code",
        format!("0x{code:02X} ({})", reason_text(t, code, protocol)),
    );
}

impl Packet {
    /// A multi-line description: the packet name, then one `  field: value` line per field.
    /// `protocol` is the version used for non-CONNECT packets (it decides the code texts).
    pub fn describe(&self, protocol: Protocol) -> String {
        let t = self.packet_type();
        let mut l = Lines(vec![t.name().to_owned()]);
        match self {
            Packet::Connect(c) => {
                let v = c.protocol;
                l.add(
                    "protocol",
                    format!(
                        "MQTT {} (name {:?}, level {})",
                        v.name(),
                        v.protocol_name(),
                        v.level()
                    ),
                );
                l.add("connect flags", format!("0x{:02X}", c.flags()));
                l.add(
                    if v == Protocol::V5 {
                        "clean start"
                    } else {
                        "clean session"
                    },
                    c.clean_session,
                );
                l.add("keep alive", format!("{} s", c.keep_alive));
                l.props("property", &c.properties);
                l.add("client id", format!("{:?}", c.client_id));
                match &c.will {
                    Some(w) => {
                        l.add("will topic", format!("{:?}", w.topic));
                        l.bytes("will payload", &w.payload);
                        l.add("will QoS", qos_text(w.qos));
                        l.add("will retain", w.retain);
                        l.props("will property", &w.properties);
                    }
                    None => l.add("will", "none"),
                }
                match &c.username {
                    Some(u) => l.add("user name", format!("{u:?}")),
                    None => l.add("user name", "none"),
                }
                match &c.password {
                    Some(p) => l.bytes("password", p),
                    None => l.add("password", "none"),
                }
            }
            Packet::ConnAck(c) => {
                l.add("session present", c.session_present);
                let name = if protocol == Protocol::V5 {
                    "reason code"
                } else {
                    "return code"
                };
                l.add(
                    name,
                    format!("0x{:02X} ({})", c.code, c.reason_text(protocol)),
                );
                l.props("property", &c.properties);
            }
            Packet::Publish(p) => {
                l.add("dup", p.dup);
                l.add("QoS", qos_text(p.qos));
                l.add("retain", p.retain);
                l.add("topic", format!("{:?}", p.topic));
                match p.packet_id {
                    Some(id) => l.add("packet id", id),
                    None => l.add("packet id", "none (QoS 0)"),
                }
                l.props("property", &p.properties);
                l.bytes("payload", &p.payload);
            }
            Packet::PubAck(a) => {
                l.add("packet id", a.packet_id);
                code_line(&mut l, t, a.code, protocol);
                l.props("property", &a.properties);
            }
            Packet::PubRec(a) => {
                l.add("packet id", a.packet_id);
                code_line(&mut l, t, a.code, protocol);
                l.props("property", &a.properties);
            }
            Packet::PubRel(a) => {
                l.add("packet id", a.packet_id);
                code_line(&mut l, t, a.code, protocol);
                l.props("property", &a.properties);
            }
            Packet::PubComp(a) => {
                l.add("packet id", a.packet_id);
                code_line(&mut l, t, a.code, protocol);
                l.props("property", &a.properties);
            }
            Packet::Subscribe(s) => {
                l.add("packet id", s.packet_id);
                l.props("property", &s.properties);
                for (i, f) in s.filters.iter().enumerate() {
                    let mut o = format!("{:?} QoS {}", f.filter, f.qos as u8);
                    if protocol == Protocol::V5 {
                        o.push_str(&format!(
                            ", no local {}, retain as published {}, retain handling {}",
                            f.no_local, f.retain_as_published, f.retain_handling as u8
                        ));
                    }
                    l.add(&format!("topic filter {}", i + 1), o);
                }
            }
            Packet::SubAck(s) => {
                l.add("packet id", s.packet_id);
                l.props("property", &s.properties);
                for (i, c) in s.codes.iter().enumerate() {
                    l.add(
                        &format!("code {}", i + 1),
                        format!("0x{c:02X} ({})", reason_text(t, *c, protocol)),
                    );
                }
            }
            Packet::Unsubscribe(u) => {
                l.add("packet id", u.packet_id);
                l.props("property", &u.properties);
                for (i, f) in u.filters.iter().enumerate() {
                    l.add(&format!("topic filter {}", i + 1), format!("{f:?}"));
                }
            }
            Packet::UnsubAck(u) => {
                l.add("packet id", u.packet_id);
                l.props("property", &u.properties);
                for (i, c) in u.codes.iter().enumerate() {
                    l.add(
                        &format!("code {}", i + 1),
                        format!("0x{c:02X} ({})", reason_text(t, *c, protocol)),
                    );
                }
            }
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(d) => {
                if protocol == Protocol::V5 {
                    code_line(&mut l, t, d.code, protocol);
                }
                l.props("property", &d.properties);
            }
            Packet::Auth(a) => {
                code_line(&mut l, t, a.code, Protocol::V5);
                l.props("property", &a.properties);
            }
        }
        l.0.join("\n")
    }

    /// A JSON object with stable snake_case keys: `type` (e.g. `"PUBLISH"`) and every field.
    /// Binary fields are upper-case hex strings, with a `<name>_text` twin when they are UTF-8.
    pub fn to_json(&self, protocol: Protocol) -> Value {
        let t = self.packet_type();
        let mut m = Map::new();
        m.insert("type".into(), json!(t.name()));
        let ack = |m: &mut Map<String, Value>, id: u16, code: u8, p: &Properties| {
            m.insert("packet_id".into(), json!(id));
            m.insert("code".into(), json!(code));
            m.insert("reason".into(), json!(reason_text(t, code, protocol)));
            m.insert("properties".into(), properties_json(p));
        };
        match self {
            Packet::Connect(c) => {
                let v = c.protocol;
                m.insert("protocol".into(), json!(v.name()));
                m.insert("protocol_name".into(), json!(v.protocol_name()));
                m.insert("protocol_level".into(), json!(v.level()));
                m.insert("clean_session".into(), json!(c.clean_session));
                m.insert("keep_alive".into(), json!(c.keep_alive));
                m.insert("client_id".into(), json!(c.client_id));
                m.insert("username".into(), json!(c.username));
                binary(&mut m, "password", c.password.as_deref());
                let will = c.will.as_ref().map(|w| {
                    let mut wm = Map::new();
                    wm.insert("topic".into(), json!(w.topic));
                    binary(&mut wm, "payload", Some(&w.payload));
                    wm.insert("qos".into(), json!(w.qos as u8));
                    wm.insert("retain".into(), json!(w.retain));
                    wm.insert("properties".into(), properties_json(&w.properties));
                    Value::Object(wm)
                });
                m.insert("will".into(), will.unwrap_or(Value::Null));
                m.insert("properties".into(), properties_json(&c.properties));
            }
            Packet::ConnAck(c) => {
                m.insert("session_present".into(), json!(c.session_present));
                m.insert("code".into(), json!(c.code));
                m.insert("reason".into(), json!(c.reason_text(protocol)));
                m.insert("success".into(), json!(c.is_success()));
                m.insert("properties".into(), properties_json(&c.properties));
            }
            Packet::Publish(p) => {
                m.insert("dup".into(), json!(p.dup));
                m.insert("qos".into(), json!(p.qos as u8));
                m.insert("retain".into(), json!(p.retain));
                m.insert("topic".into(), json!(p.topic));
                m.insert("packet_id".into(), json!(p.packet_id));
                binary(&mut m, "payload", Some(&p.payload));
                m.insert("payload_length".into(), json!(p.payload.len()));
                m.insert("properties".into(), properties_json(&p.properties));
            }
            Packet::PubAck(a) => ack(&mut m, a.packet_id, a.code, &a.properties),
            Packet::PubRec(a) => ack(&mut m, a.packet_id, a.code, &a.properties),
            Packet::PubRel(a) => ack(&mut m, a.packet_id, a.code, &a.properties),
            Packet::PubComp(a) => ack(&mut m, a.packet_id, a.code, &a.properties),
            Packet::Subscribe(s) => {
                m.insert("packet_id".into(), json!(s.packet_id));
                let f: Vec<Value> = s
                    .filters
                    .iter()
                    .map(|f| {
                        json!({
                            "filter": f.filter,
                            "qos": f.qos as u8,
                            "no_local": f.no_local,
                            "retain_as_published": f.retain_as_published,
                            "retain_handling": f.retain_handling as u8,
                        })
                    })
                    .collect();
                m.insert("filters".into(), Value::Array(f));
                m.insert("properties".into(), properties_json(&s.properties));
            }
            Packet::SubAck(s) => {
                m.insert("packet_id".into(), json!(s.packet_id));
                m.insert("codes".into(), json!(s.codes));
                m.insert("reasons".into(), json!(s.reason_texts(protocol)));
                m.insert("properties".into(), properties_json(&s.properties));
            }
            Packet::Unsubscribe(u) => {
                m.insert("packet_id".into(), json!(u.packet_id));
                m.insert("filters".into(), json!(u.filters));
                m.insert("properties".into(), properties_json(&u.properties));
            }
            Packet::UnsubAck(u) => {
                m.insert("packet_id".into(), json!(u.packet_id));
                m.insert("codes".into(), json!(u.codes));
                m.insert("reasons".into(), json!(u.reason_texts(protocol)));
                m.insert("properties".into(), properties_json(&u.properties));
            }
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(d) => {
                m.insert("code".into(), json!(d.code));
                m.insert("reason".into(), json!(d.reason_text(protocol)));
                m.insert("properties".into(), properties_json(&d.properties));
            }
            Packet::Auth(a) => {
                m.insert("code".into(), json!(a.code));
                m.insert("reason".into(), json!(a.reason_text()));
                m.insert("properties".into(), properties_json(&a.properties));
            }
        }
        Value::Object(m)
    }
}

/// `key: hex` plus `key_text` when UTF-8; `key: null` when absent.
fn binary(m: &mut Map<String, Value>, key: &str, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            m.insert(key.into(), json!(hex(b, "")));
            if let Ok(s) = std::str::from_utf8(b) {
                m.insert(format!("{key}_text"), json!(s));
            }
        }
        None => {
            m.insert(key.into(), Value::Null);
        }
    }
}

/// JSON object of the properties that are set (keys as in [`Properties`] field names).
pub fn properties_json(p: &Properties) -> Value {
    let mut m = Map::new();
    let mut users = Vec::new();
    let mut sub_ids = Vec::new();
    for (id, v) in p.entries() {
        let key = property_key(id).unwrap_or("unknown");
        match v {
            PropertyValue::Bool(b) => {
                m.insert(key.into(), json!(b));
            }
            PropertyValue::Byte(b) => {
                m.insert(key.into(), json!(b));
            }
            PropertyValue::U16(x) => {
                m.insert(key.into(), json!(x));
            }
            PropertyValue::U32(x) => {
                m.insert(key.into(), json!(x));
            }
            PropertyValue::VarInt(x) => sub_ids.push(json!(x)),
            PropertyValue::Str(s) => {
                m.insert(key.into(), json!(s));
            }
            PropertyValue::Bin(b) => binary(&mut m, key, Some(b)),
            PropertyValue::Pair(k, x) => users.push(json!({"name": k, "value": x})),
        }
    }
    if !sub_ids.is_empty() {
        m.insert("subscription_identifiers".into(), Value::Array(sub_ids));
    }
    if !users.is_empty() {
        m.insert("user_properties".into(), Value::Array(users));
    }
    Value::Object(m)
}
