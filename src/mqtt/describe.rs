//! Human and JSON views of a packet: every field the packet's version has (and only those),
//! binary data as hex plus text when it is UTF-8.
//!
//! Every view takes a `limit`: `None` shows everything; `Some(n)` cuts binary data and long
//! text to about `n` characters per field and says how much was left out, so a 2 MiB PUBLISH
//! stays one readable line. Text is always escaped (Rust's `{:?}` quoting, which escapes
//! control characters, ESC and the bidirectional overrides), so no payload byte reaches a
//! terminal raw.

use serde_json::{Map, Value, json};

use super::properties::{PropertyValue, property_key, property_name};
use super::reason::reason_text;
use super::{Packet, PacketType, Properties, Protocol, QoS};
use crate::util::hex::hex;

/// Bytes of binary data a JSON view keeps when it is shortened (see [`Packet::to_json_with`]).
pub const JSON_SHOWN_BYTES: usize = 4096;

/// `n byte` / `n bytes`.
fn bytes_word(n: usize) -> String {
    format!("{n} byte{}", if n == 1 { "" } else { "s" })
}

/// Is `b` text worth showing as text: UTF-8 without control characters other than tab, CR
/// and LF?
fn as_text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok().filter(|s| {
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    })
}

/// The longest prefix of `s` of at most `max` bytes ending on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.get(..cut).unwrap_or_default()
}

/// `"text"` (quoted, escaped) when `b` is text, `hex 01 02 …` otherwise; shortened to about
/// `limit` characters with `… N more bytes` when longer.
fn show_bytes(b: &[u8], limit: Option<usize>) -> String {
    match as_text(b) {
        Some(s) => show_str(s, limit),
        None => {
            let keep = limit.map_or(b.len(), |n| (n / 3).max(1)).min(b.len());
            let shown = format!("hex {}", hex(b.get(..keep).unwrap_or_default(), " "));
            match b.len() - keep {
                0 => shown,
                more => format!("{shown} … {} more", bytes_word(more)),
            }
        }
    }
}

/// `"text"` quoted and escaped, shortened to about `limit` bytes with `… N more bytes`.
fn show_str(s: &str, limit: Option<usize>) -> String {
    let shown = prefix(s, limit.unwrap_or(usize::MAX));
    match s.len() - shown.len() {
        0 => format!("{shown:?}"),
        more => format!("{shown:?} … {} more", bytes_word(more)),
    }
}

/// `"<name> (<n> bytes)"`.
fn sized_name(name: &str, b: &[u8]) -> String {
    format!("{name} ({})", bytes_word(b.len()))
}

fn qos_text(q: QoS) -> String {
    format!("{} ({})", q as u8, q.description())
}

struct Lines {
    lines: Vec<String>,
    limit: Option<usize>,
}

impl Lines {
    fn add(&mut self, k: &str, v: impl std::fmt::Display) {
        self.lines.push(format!("  {k}: {v}"));
    }

    fn bytes(&mut self, k: &str, b: &[u8]) {
        let shown = show_bytes(b, self.limit);
        self.add(&sized_name(k, b), shown);
    }

    fn text(&mut self, k: &str, s: &str) {
        let shown = show_str(s, self.limit);
        self.add(k, shown);
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
                PropertyValue::Str(s) => show_str(s, self.limit),
                PropertyValue::Bin(b) => {
                    label = sized_name(&label, b);
                    show_bytes(b, self.limit)
                }
                PropertyValue::Pair(k, x) => {
                    format!("{} = {}", show_str(k, self.limit), show_str(x, self.limit))
                }
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

/// The DUP flag of PUBREL, SUBSCRIBE and UNSUBSCRIBE, which only MQTT 3.1 has.
fn dup_of(p: &Packet) -> Option<bool> {
    match p {
        Packet::PubRel(a) => Some(a.dup),
        Packet::Subscribe(s) => Some(s.dup),
        Packet::Unsubscribe(u) => Some(u.dup),
        _ => None,
    }
}

impl Packet {
    /// A multi-line description: the packet name, then one `  field: value` line per field
    /// the version has. `protocol` is the version of non-CONNECT packets (it decides the
    /// fields and the code texts). Shows everything; see [`Packet::describe_with`].
    pub fn describe(&self, protocol: Protocol) -> String {
        self.describe_with(protocol, None)
    }

    /// [`Packet::describe`] with binary data and long text cut to about `limit` characters
    /// per field (`None`: everything), each cut saying how many bytes were left out.
    pub fn describe_with(&self, protocol: Protocol, limit: Option<usize>) -> String {
        let t = self.packet_type();
        let v5 = protocol == Protocol::V5;
        let mut l = Lines {
            lines: vec![t.name().to_owned()],
            limit,
        };
        if protocol == Protocol::V31
            && let Some(dup) = dup_of(self)
        {
            l.add("dup", dup);
        }
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
                l.text("client id", &c.client_id);
                match &c.will {
                    Some(w) => {
                        l.text("will topic", &w.topic);
                        l.bytes("will payload", &w.payload);
                        l.add("will QoS", qos_text(w.qos));
                        l.add("will retain", w.retain);
                        l.props("will property", &w.properties);
                    }
                    None => l.add("will", "none"),
                }
                match &c.username {
                    Some(u) => l.text("user name", u),
                    None => l.add("user name", "none"),
                }
                match &c.password {
                    Some(p) => l.bytes("password", p),
                    None => l.add("password", "none"),
                }
            }
            Packet::ConnAck(c) => {
                if protocol != Protocol::V31 {
                    l.add("session present", c.session_present);
                }
                let name = if v5 { "reason code" } else { "return code" };
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
                l.text("topic", &p.topic);
                match p.packet_id {
                    Some(id) => l.add("packet id", id),
                    None => l.add("packet id", "none (QoS 0)"),
                }
                l.props("property", &p.properties);
                l.bytes("payload", &p.payload);
            }
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
                let empty = Properties::default();
                let (id, code, props) = self.ack_fields().unwrap_or((0, 0, &empty));
                l.add("packet id", id);
                if v5 {
                    code_line(&mut l, t, code, protocol);
                    l.props("property", props);
                }
            }
            Packet::Subscribe(s) => {
                l.add("packet id", s.packet_id);
                l.props("property", &s.properties);
                for (i, f) in s.filters.iter().enumerate() {
                    let mut o = format!("{} QoS {}", show_str(&f.filter, limit), f.qos as u8);
                    if v5 {
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
                    l.text(&format!("topic filter {}", i + 1), f);
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
                if v5 {
                    code_line(&mut l, t, d.code, protocol);
                }
                l.props("property", &d.properties);
            }
            Packet::Auth(a) => {
                code_line(&mut l, t, a.code, Protocol::V5);
                l.props("property", &a.properties);
            }
        }
        l.lines.join("\n")
    }

    /// One line naming the packet and its main fields, e.g.
    /// `PUBLISH "sim7k/demo" QoS 1 id 7: "hello"` or `CONNACK 0x00 Connection accepted`,
    /// with text and binary data cut to about `limit` characters (`None`: everything).
    pub fn summary(&self, protocol: Protocol, limit: Option<usize>) -> String {
        let t = self.packet_type();
        let v5 = protocol == Protocol::V5;
        let mut s = t.name().to_owned();
        if protocol == Protocol::V31 && dup_of(self) == Some(true) {
            s.push_str(" (dup)");
        }
        let code = |code: u8| format!("0x{code:02X} {}", reason_text(t, code, protocol));
        match self {
            Packet::Connect(c) => {
                s.push_str(&format!(
                    " MQTT {}, client id {}, keep alive {} s",
                    c.protocol.name(),
                    show_str(&c.client_id, limit),
                    c.keep_alive
                ));
                if c.clean_session {
                    s.push_str(if c.protocol == Protocol::V5 {
                        ", clean start"
                    } else {
                        ", clean session"
                    });
                }
                if let Some(u) = &c.username {
                    s.push_str(&format!(", user {}", show_str(u, limit)));
                }
                if let Some(p) = &c.password {
                    s.push_str(&format!(", password ({})", bytes_word(p.len())));
                }
                if let Some(w) = &c.will {
                    s.push_str(&format!(
                        ", will {} QoS {}{}",
                        show_str(&w.topic, limit),
                        w.qos as u8,
                        if w.retain { " retain" } else { "" }
                    ));
                }
            }
            Packet::ConnAck(c) => {
                s.push_str(&format!(" {}", code(c.code)));
                if c.session_present {
                    s.push_str(", session present");
                }
            }
            Packet::Publish(p) => {
                s.push_str(&format!(
                    " {} QoS {}",
                    show_str(&p.topic, limit),
                    p.qos as u8
                ));
                if let Some(id) = p.packet_id {
                    s.push_str(&format!(" id {id}"));
                }
                if p.retain {
                    s.push_str(" retain");
                }
                if p.dup {
                    s.push_str(" dup");
                }
                s.push_str(&format!(
                    " ({}): {}",
                    bytes_word(p.payload.len()),
                    show_bytes(&p.payload, limit)
                ));
            }
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
                let empty = Properties::default();
                let (id, c, _) = self.ack_fields().unwrap_or((0, 0, &empty));
                s.push_str(&format!(" id {id}"));
                if v5 && c != 0 {
                    s.push_str(&format!(", {}", code(c)));
                }
            }
            Packet::Subscribe(sub) => {
                let f: Vec<String> = sub
                    .filters
                    .iter()
                    .map(|f| format!("{} QoS {}", show_str(&f.filter, limit), f.qos as u8))
                    .collect();
                s.push_str(&format!(" id {}: {}", sub.packet_id, f.join(", ")));
            }
            Packet::SubAck(a) => {
                let c: Vec<String> = a.codes.iter().map(|c| code(*c)).collect();
                s.push_str(&format!(" id {}: {}", a.packet_id, c.join(", ")));
            }
            Packet::Unsubscribe(u) => {
                let f: Vec<String> = u.filters.iter().map(|f| show_str(f, limit)).collect();
                s.push_str(&format!(" id {}: {}", u.packet_id, f.join(", ")));
            }
            Packet::UnsubAck(u) => {
                s.push_str(&format!(" id {}", u.packet_id));
                if v5 {
                    let c: Vec<String> = u.codes.iter().map(|c| code(*c)).collect();
                    s.push_str(&format!(": {}", c.join(", ")));
                }
            }
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(d) => {
                if v5 && d.code != 0 {
                    s.push_str(&format!(" {}", code(d.code)));
                }
            }
            Packet::Auth(a) => s.push_str(&format!(
                " 0x{:02X} {}",
                a.code,
                reason_text(t, a.code, Protocol::V5)
            )),
        }
        s
    }

    /// Packet id, code and properties of PUBACK, PUBREC, PUBREL and PUBCOMP.
    fn ack_fields(&self) -> Option<(u16, u8, &Properties)> {
        match self {
            Packet::PubAck(a) => Some((a.packet_id, a.code, &a.properties)),
            Packet::PubRec(a) => Some((a.packet_id, a.code, &a.properties)),
            Packet::PubRel(a) => Some((a.packet_id, a.code, &a.properties)),
            Packet::PubComp(a) => Some((a.packet_id, a.code, &a.properties)),
            _ => None,
        }
    }

    /// A JSON object with stable snake_case keys: `type` (e.g. `"PUBLISH"`) and every field
    /// the packet's version has (no reason codes or properties before 5.0, no session present
    /// in 3.1, `dup` on PUBREL/SUBSCRIBE/UNSUBSCRIBE only in 3.1). Binary fields are
    /// upper-case hex strings, with a `<name>_text` twin when they are UTF-8. Shows everything;
    /// see [`Packet::to_json_with`].
    pub fn to_json(&self, protocol: Protocol) -> Value {
        self.to_json_with(protocol, None)
    }

    /// [`Packet::to_json`] with binary fields longer than `limit` bytes cut to their first
    /// `limit` bytes; a cut field gets `<name>_length` (its full length) and
    /// `<name>_truncated: true`, so a reader never takes a part for the whole.
    pub fn to_json_with(&self, protocol: Protocol, limit: Option<usize>) -> Value {
        let t = self.packet_type();
        let v5 = protocol == Protocol::V5;
        let mut m = Map::new();
        m.insert("type".into(), json!(t.name()));
        if protocol == Protocol::V31
            && let Some(dup) = dup_of(self)
        {
            m.insert("dup".into(), json!(dup));
        }
        let props = |m: &mut Map<String, Value>, p: &Properties| {
            if v5 {
                m.insert("properties".into(), properties_json(p, limit));
            }
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
                binary(&mut m, "password", c.password.as_deref(), limit);
                let will = c.will.as_ref().map(|w| {
                    let mut wm = Map::new();
                    wm.insert("topic".into(), json!(w.topic));
                    binary(&mut wm, "payload", Some(&w.payload), limit);
                    wm.insert("qos".into(), json!(w.qos as u8));
                    wm.insert("retain".into(), json!(w.retain));
                    if v == Protocol::V5 {
                        wm.insert("properties".into(), properties_json(&w.properties, limit));
                    }
                    Value::Object(wm)
                });
                m.insert("will".into(), will.unwrap_or(Value::Null));
                if v == Protocol::V5 {
                    m.insert("properties".into(), properties_json(&c.properties, limit));
                }
            }
            Packet::ConnAck(c) => {
                if protocol != Protocol::V31 {
                    m.insert("session_present".into(), json!(c.session_present));
                }
                m.insert("code".into(), json!(c.code));
                m.insert("reason".into(), json!(c.reason_text(protocol)));
                m.insert("success".into(), json!(c.is_success()));
                props(&mut m, &c.properties);
            }
            Packet::Publish(p) => {
                m.insert("dup".into(), json!(p.dup));
                m.insert("qos".into(), json!(p.qos as u8));
                m.insert("retain".into(), json!(p.retain));
                m.insert("topic".into(), json!(p.topic));
                m.insert("packet_id".into(), json!(p.packet_id));
                binary(&mut m, "payload", Some(&p.payload), limit);
                m.insert("payload_length".into(), json!(p.payload.len()));
                props(&mut m, &p.properties);
            }
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
                let empty = Properties::default();
                let (id, code, p) = self.ack_fields().unwrap_or((0, 0, &empty));
                m.insert("packet_id".into(), json!(id));
                if v5 {
                    m.insert("code".into(), json!(code));
                    m.insert("reason".into(), json!(reason_text(t, code, protocol)));
                }
                props(&mut m, p);
            }
            Packet::Subscribe(s) => {
                m.insert("packet_id".into(), json!(s.packet_id));
                let f: Vec<Value> = s
                    .filters
                    .iter()
                    .map(|f| {
                        let mut o = Map::new();
                        o.insert("filter".into(), json!(f.filter));
                        o.insert("qos".into(), json!(f.qos as u8));
                        if v5 {
                            o.insert("no_local".into(), json!(f.no_local));
                            o.insert("retain_as_published".into(), json!(f.retain_as_published));
                            o.insert("retain_handling".into(), json!(f.retain_handling as u8));
                        }
                        Value::Object(o)
                    })
                    .collect();
                m.insert("filters".into(), Value::Array(f));
                props(&mut m, &s.properties);
            }
            Packet::SubAck(s) => {
                m.insert("packet_id".into(), json!(s.packet_id));
                m.insert("codes".into(), json!(s.codes));
                m.insert("reasons".into(), json!(s.reason_texts(protocol)));
                props(&mut m, &s.properties);
            }
            Packet::Unsubscribe(u) => {
                m.insert("packet_id".into(), json!(u.packet_id));
                m.insert("filters".into(), json!(u.filters));
                props(&mut m, &u.properties);
            }
            Packet::UnsubAck(u) => {
                m.insert("packet_id".into(), json!(u.packet_id));
                if v5 {
                    m.insert("codes".into(), json!(u.codes));
                    m.insert("reasons".into(), json!(u.reason_texts(protocol)));
                }
                props(&mut m, &u.properties);
            }
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(d) => {
                if v5 {
                    m.insert("code".into(), json!(d.code));
                    m.insert("reason".into(), json!(d.reason_text(protocol)));
                }
                props(&mut m, &d.properties);
            }
            Packet::Auth(a) => {
                m.insert("code".into(), json!(a.code));
                m.insert("reason".into(), json!(a.reason_text()));
                props(&mut m, &a.properties);
            }
        }
        Value::Object(m)
    }
}

/// `key: hex` plus `key_text` when UTF-8 (`key: null` when absent); beyond `limit` bytes the
/// value is cut and `key_length` / `key_truncated` say so.
fn binary(m: &mut Map<String, Value>, key: &str, b: Option<&[u8]>, limit: Option<usize>) {
    let Some(b) = b else {
        m.insert(key.into(), Value::Null);
        return;
    };
    let keep = limit.unwrap_or(usize::MAX).min(b.len());
    let shown = b.get(..keep).unwrap_or_default();
    m.insert(key.into(), json!(hex(shown, "")));
    match std::str::from_utf8(shown) {
        Ok(s) => {
            m.insert(format!("{key}_text"), json!(s));
        }
        // A cut in the middle of a character: the text up to it.
        Err(e) if keep < b.len() && std::str::from_utf8(b).is_ok() => {
            let valid = shown.get(..e.valid_up_to()).unwrap_or_default();
            let s = std::str::from_utf8(valid).unwrap_or_default();
            m.insert(format!("{key}_text"), json!(s));
        }
        Err(_) => {}
    }
    if keep < b.len() {
        m.insert(format!("{key}_length"), json!(b.len()));
        m.insert(format!("{key}_truncated"), json!(true));
    }
}

/// JSON object of the properties that are set (keys as in [`Properties`] field names).
fn properties_json(p: &Properties, limit: Option<usize>) -> Value {
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
            PropertyValue::Bin(b) => binary(&mut m, key, Some(b), limit),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_cut_and_say_how_much_is_left() {
        assert_eq!(show_str("abcdef", Some(4)), "\"abcd\" … 2 bytes more");
        assert_eq!(show_str("abc", Some(4)), "\"abc\"");
        // A cut never splits a character.
        assert_eq!(show_str("ééé", Some(3)), "\"é\" … 4 bytes more");
        assert_eq!(
            show_bytes(&[0, 1, 2, 3, 4, 5, 6, 7], Some(9)),
            "hex 00 01 02 … 5 bytes more"
        );
        assert_eq!(show_bytes(&[0, 1], None), "hex 00 01");
    }

    #[test]
    fn control_bytes_in_text_are_escaped() {
        let s = show_bytes(b"a\x1b[2Jb\xe2\x80\xae", None);
        assert!(!s.contains('\x1b') && !s.contains('\u{202e}'), "{s}");
    }

    #[test]
    fn json_cut_marks_the_field() {
        let mut m = Map::new();
        binary(&mut m, "payload", Some(&[0x41; 10]), Some(4));
        assert_eq!(m["payload"], json!("41414141"));
        assert_eq!(m["payload_text"], json!("AAAA"));
        assert_eq!(m["payload_length"], json!(10));
        assert_eq!(m["payload_truncated"], json!(true));
    }
}
