//! MQTT encoders and a decoder for recipe scripts, built on [`crate::mqtt`].
//!
//! Every function takes an option map whose unknown keys are errors:
//!
//! ```rhai
//! let c = mqtt_connect(#{ client_id: "dev-1", username: "u", password: password,
//!                         keep_alive: 60, clean: true, version: "3.1.1",
//!                         will: #{ topic: "dev/1/status", payload: "offline", qos: 1, retain: true } });
//! let p = mqtt_publish("dev/1/temp", "21.5", #{ qos: 1, retain: false });   // packet id assigned
//! let s = mqtt_subscribe(["cmd/#", "cfg/+"], #{ qos: 1 });
//! let u = mqtt_unsubscribe("cmd/#");
//! let d = mqtt_disconnect();
//! let m = mqtt_decode(bytes);          // a map of the packet's fields
//! ```
//!
//! The version (`"3.1"`, `"3.1.1"`, `"5"`) defaults to the one of the last `mqtt_connect`
//! in the run, else 3.1.1. MQTT 5 properties are a map (`message_expiry_interval`,
//! `content_type`, `response_topic`, `correlation_data`, `user_properties: #{k: "v"}`…).

use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::Shared;
use crate::mqtt::{
    Connect, Disconnect, LastWill, Packet, Properties, Protocol, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, RetainHandling, Subscribe, SubscribeFilter, Unsubscribe,
};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(ctx: &NativeCallContext, func: &str, msg: impl std::fmt::Display) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(format!("{func}: {msg}")),
        ctx.call_position(),
    )))
}

/// Reads an option map, checking key names and types.
struct Opts<'a> {
    func: &'static str,
    map: Map,
    ctx: &'a NativeCallContext<'a>,
}

impl<'a> Opts<'a> {
    fn new(
        ctx: &'a NativeCallContext<'a>,
        func: &'static str,
        map: Map,
        allowed: &[&str],
    ) -> Res<Opts<'a>> {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return fail(
                    ctx,
                    func,
                    format!(
                        "unknown option `{key}` (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        Ok(Opts { func, map, ctx })
    }

    fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    fn type_err<T>(&self, key: &str, want: &str, got: &Dynamic) -> Res<T> {
        fail(
            self.ctx,
            self.func,
            format!("option `{key}` must be {want}, not {}", got.type_name()),
        )
    }

    fn string(&mut self, key: &str) -> Res<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(v.into_string().ok()),
            Some(v) => self.type_err(key, "a string", &v),
        }
    }

    fn bytes(&mut self, key: &str) -> Res<Option<Vec<u8>>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match to_bytes(&v) {
                Some(b) => Ok(Some(b)),
                None => self.type_err(key, "a string or a BLOB", &v),
            },
        }
    }

    fn bool(&mut self, key: &str) -> Res<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.as_bool() {
                Ok(b) => Ok(Some(b)),
                Err(_) => self.type_err(key, "true or false", &v),
            },
        }
    }

    fn int(&mut self, key: &str, min: i64, max: i64) -> Res<Option<i64>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => {
                let n = match v.as_int() {
                    Ok(n) => n,
                    Err(_) => match v
                        .clone()
                        .into_string()
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                    {
                        Some(n) => n,
                        None => return self.type_err(key, "a whole number", &v),
                    },
                };
                if n < min || n > max {
                    return fail(
                        self.ctx,
                        self.func,
                        format!("option `{key}` = {n} is out of range ({min} to {max})"),
                    );
                }
                Ok(Some(n))
            }
        }
    }

    fn qos(&mut self, key: &str) -> Res<Option<QoS>> {
        Ok(self
            .int(key, 0, 2)?
            .and_then(|n| QoS::from_u8(u8::try_from(n).unwrap_or(0))))
    }

    fn map(&mut self, key: &str) -> Res<Option<Map>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_map() => Ok(v.try_cast::<Map>()),
            Some(v) => self.type_err(key, "a map `#{...}`", &v),
        }
    }

    fn version(&mut self, default: Protocol) -> Res<Protocol> {
        match self.take("version") {
            None => Ok(default),
            Some(v) => {
                let text = if let Ok(n) = v.as_int() {
                    match n {
                        3 => "3.1".to_string(),
                        4 => "3.1.1".to_string(),
                        5 => "5".to_string(),
                        _ => n.to_string(),
                    }
                } else if let Ok(f) = v.as_float() {
                    f.to_string()
                } else {
                    v.to_string()
                };
                text.parse::<Protocol>()
                    .or_else(|e| fail(self.ctx, self.func, format!("option `version`: {e}")))
            }
        }
    }

    fn properties(&mut self) -> Res<Properties> {
        match self.map("properties")? {
            None => Ok(Properties::default()),
            Some(m) => properties(self.ctx, self.func, m),
        }
    }
}

fn to_bytes(v: &Dynamic) -> Option<Vec<u8>> {
    if v.is_blob() {
        return v.clone().try_cast::<Blob>();
    }
    if v.is_string() {
        return v.clone().into_string().ok().map(String::into_bytes);
    }
    None
}

const PROPERTY_KEYS: &[&str] = &[
    "payload_format_indicator",
    "message_expiry_interval",
    "content_type",
    "response_topic",
    "correlation_data",
    "subscription_identifier",
    "session_expiry_interval",
    "authentication_method",
    "authentication_data",
    "request_problem_information",
    "will_delay_interval",
    "request_response_information",
    "reason_string",
    "receive_maximum",
    "topic_alias_maximum",
    "topic_alias",
    "maximum_packet_size",
    "user_properties",
];

fn properties(ctx: &NativeCallContext, func: &'static str, m: Map) -> Res<Properties> {
    let mut o = Opts::new(ctx, func, m, PROPERTY_KEYS)?;
    let u32max = i64::from(u32::MAX);
    let u16max = i64::from(u16::MAX);
    let mut p = Properties {
        payload_format_indicator: o.bool("payload_format_indicator")?,
        message_expiry_interval: o
            .int("message_expiry_interval", 0, u32max)?
            .map(|n| n as u32),
        content_type: o.string("content_type")?,
        response_topic: o.string("response_topic")?,
        correlation_data: o.bytes("correlation_data")?,
        session_expiry_interval: o
            .int("session_expiry_interval", 0, u32max)?
            .map(|n| n as u32),
        authentication_method: o.string("authentication_method")?,
        authentication_data: o.bytes("authentication_data")?,
        request_problem_information: o.bool("request_problem_information")?,
        will_delay_interval: o.int("will_delay_interval", 0, u32max)?.map(|n| n as u32),
        request_response_information: o.bool("request_response_information")?,
        reason_string: o.string("reason_string")?,
        receive_maximum: o.int("receive_maximum", 0, u16max)?.map(|n| n as u16),
        topic_alias_maximum: o.int("topic_alias_maximum", 0, u16max)?.map(|n| n as u16),
        topic_alias: o.int("topic_alias", 0, u16max)?.map(|n| n as u16),
        maximum_packet_size: o.int("maximum_packet_size", 0, u32max)?.map(|n| n as u32),
        ..Properties::default()
    };
    if let Some(id) = o.int("subscription_identifier", 0, 268_435_455)? {
        p.subscription_identifiers.push(id as u32);
    }
    match o.take("user_properties") {
        None => {}
        Some(v) if v.is_map() => {
            for (k, val) in v.try_cast::<Map>().unwrap_or_default() {
                p.user_properties.push((k.to_string(), val.to_string()));
            }
        }
        Some(v) if v.is_array() => {
            for pair in v.try_cast::<Array>().unwrap_or_default() {
                let items = pair.try_cast::<Array>().unwrap_or_default();
                match items.as_slice() {
                    [k, val] => p.user_properties.push((k.to_string(), val.to_string())),
                    _ => {
                        return fail(
                            ctx,
                            func,
                            "user_properties: a list must hold [key, value] pairs",
                        );
                    }
                }
            }
        }
        Some(v) => return o.type_err("user_properties", "a map or a list of [key, value]", &v),
    }
    Ok(p)
}

fn encode(ctx: &NativeCallContext, func: &str, p: &Packet, protocol: Protocol) -> Res<Blob> {
    p.encode(protocol).or_else(|e| fail(ctx, func, e))
}

fn protocol_of(state: &Shared) -> Protocol {
    state.lock().map(|s| s.protocol).unwrap_or_default()
}

fn next_id(state: &Shared) -> u16 {
    match state.lock() {
        Ok(mut s) => {
            s.next_id = if s.next_id == u16::MAX {
                1
            } else {
                s.next_id + 1
            };
            s.next_id
        }
        Err(_) => 1,
    }
}

fn connect(ctx: NativeCallContext, state: &Shared, m: Map) -> Res<Blob> {
    const F: &str = "mqtt_connect";
    let mut o = Opts::new(
        &ctx,
        F,
        m,
        &[
            "client_id",
            "username",
            "password",
            "keep_alive",
            "clean",
            "will",
            "version",
            "properties",
        ],
    )?;
    let protocol = o.version(Protocol::V311)?;
    let mut c = Connect::new(protocol, o.string("client_id")?.unwrap_or_default());
    c.username = o.string("username")?.filter(|s| !s.is_empty());
    c.password = o.bytes("password")?.filter(|s| !s.is_empty());
    if let Some(k) = o.int("keep_alive", 0, 65_535)? {
        c.keep_alive = k as u16;
    }
    if let Some(clean) = o.bool("clean")? {
        c.clean_session = clean;
    }
    c.properties = o.properties()?;
    if let Some(w) = o.map("will")? {
        let mut wo = Opts::new(
            &ctx,
            "mqtt_connect will",
            w,
            &["topic", "payload", "qos", "retain", "properties"],
        )?;
        c.will = Some(LastWill {
            topic: wo.string("topic")?.unwrap_or_default(),
            payload: wo.bytes("payload")?.unwrap_or_default(),
            qos: wo.qos("qos")?.unwrap_or_default(),
            retain: wo.bool("retain")?.unwrap_or(false),
            properties: wo.properties()?,
        });
    }
    let bytes = encode(&ctx, F, &Packet::Connect(c), protocol)?;
    if let Ok(mut s) = state.lock() {
        s.protocol = protocol;
    }
    Ok(bytes)
}

fn publish(
    ctx: NativeCallContext,
    state: &Shared,
    topic: &str,
    payload: Dynamic,
    m: Map,
) -> Res<Blob> {
    const F: &str = "mqtt_publish";
    let Some(payload) = to_bytes(&payload) else {
        return fail(
            &ctx,
            F,
            format!(
                "the payload must be a string or a BLOB, not {}",
                payload.type_name()
            ),
        );
    };
    let mut o = Opts::new(
        &ctx,
        F,
        m,
        &["qos", "retain", "dup", "packet_id", "properties", "version"],
    )?;
    let protocol = o.version(protocol_of(state))?;
    let mut p = Publish::new(topic, payload);
    p.qos = o.qos("qos")?.unwrap_or_default();
    p.retain = o.bool("retain")?.unwrap_or(false);
    p.dup = o.bool("dup")?.unwrap_or(false);
    p.packet_id = match o.int("packet_id", 0, 65_535)? {
        Some(id) => Some(id as u16),
        None if p.qos != QoS::AtMostOnce => Some(next_id(state)),
        None => None,
    };
    p.properties = o.properties()?;
    encode(&ctx, F, &Packet::Publish(p), protocol)
}

fn filters(
    ctx: &NativeCallContext,
    func: &'static str,
    v: Dynamic,
    default_qos: QoS,
) -> Res<Vec<SubscribeFilter>> {
    let items: Vec<Dynamic> = if v.is_array() {
        v.try_cast::<Array>().unwrap_or_default()
    } else {
        vec![v]
    };
    let mut out = Vec::new();
    for item in items {
        if item.is_string() {
            out.push(SubscribeFilter::new(item.to_string(), default_qos));
        } else if item.is_map() {
            let mut o = Opts::new(
                ctx,
                func,
                item.try_cast::<Map>().unwrap_or_default(),
                &[
                    "filter",
                    "qos",
                    "no_local",
                    "retain_as_published",
                    "retain_handling",
                ],
            )?;
            let mut f = SubscribeFilter::new(
                o.string("filter")?.unwrap_or_default(),
                o.qos("qos")?.unwrap_or(default_qos),
            );
            f.no_local = o.bool("no_local")?.unwrap_or(false);
            f.retain_as_published = o.bool("retain_as_published")?.unwrap_or(false);
            if let Some(rh) = o.int("retain_handling", 0, 2)? {
                f.retain_handling =
                    RetainHandling::from_u8(rh as u8).unwrap_or(RetainHandling::SendAtSubscribe);
            }
            out.push(f);
        } else {
            return fail(
                ctx,
                func,
                format!(
                    "a filter must be a string or a map, not {}",
                    item.type_name()
                ),
            );
        }
    }
    Ok(out)
}

fn subscribe(ctx: NativeCallContext, state: &Shared, f: Dynamic, m: Map) -> Res<Blob> {
    const F: &str = "mqtt_subscribe";
    let mut o = Opts::new(&ctx, F, m, &["qos", "packet_id", "properties", "version"])?;
    let protocol = o.version(protocol_of(state))?;
    let qos = o.qos("qos")?.unwrap_or_default();
    let packet_id = match o.int("packet_id", 0, 65_535)? {
        Some(id) => id as u16,
        None => next_id(state),
    };
    let properties = o.properties()?;
    let s = Subscribe {
        dup: false,
        packet_id,
        filters: filters(&ctx, F, f, qos)?,
        properties,
    };
    encode(&ctx, F, &Packet::Subscribe(s), protocol)
}

fn unsubscribe(ctx: NativeCallContext, state: &Shared, f: Dynamic, m: Map) -> Res<Blob> {
    const F: &str = "mqtt_unsubscribe";
    let mut o = Opts::new(&ctx, F, m, &["packet_id", "properties", "version"])?;
    let protocol = o.version(protocol_of(state))?;
    let packet_id = match o.int("packet_id", 0, 65_535)? {
        Some(id) => id as u16,
        None => next_id(state),
    };
    let names: Vec<String> = if f.is_array() {
        f.try_cast::<Array>()
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    } else {
        vec![f.to_string()]
    };
    let u = Unsubscribe {
        dup: false,
        packet_id,
        filters: names,
        properties: o.properties()?,
    };
    encode(&ctx, F, &Packet::Unsubscribe(u), protocol)
}

fn disconnect(ctx: NativeCallContext, state: &Shared, m: Map) -> Res<Blob> {
    const F: &str = "mqtt_disconnect";
    let mut o = Opts::new(&ctx, F, m, &["reason", "properties", "version"])?;
    let protocol = o.version(protocol_of(state))?;
    let d = Disconnect {
        code: o.int("reason", 0, 255)?.unwrap_or(0) as u8,
        properties: o.properties()?,
    };
    encode(&ctx, F, &Packet::Disconnect(d), protocol)
}

fn decode(ctx: NativeCallContext, state: &Shared, bytes: Blob, m: Map) -> Res<Dynamic> {
    const F: &str = "mqtt_decode";
    let mut o = Opts::new(&ctx, F, m, &["version"])?;
    let protocol = o.version(protocol_of(state))?;
    match crate::mqtt::decode(&bytes, protocol) {
        Ok(Some((p, used))) => {
            if used != bytes.len() {
                return fail(
                    &ctx,
                    F,
                    format!(
                        "{} bytes after the first packet ({} bytes); decode them separately",
                        bytes.len() - used,
                        used
                    ),
                );
            }
            let json = p.to_json(p.effective_protocol(protocol));
            let mut map: Map = rhai::serde::to_dynamic(&json)
                .ok()
                .and_then(|d| d.try_cast::<Map>())
                .unwrap_or_default();
            if let Packet::Publish(publish) = &p {
                map.insert(
                    "payload".into(),
                    Dynamic::from_blob(publish.payload.clone()),
                );
            }
            Ok(Dynamic::from_map(map))
        }
        Ok(None) => fail(
            &ctx,
            F,
            format!(
                "incomplete packet: {} bytes is not a whole MQTT packet",
                bytes.len()
            ),
        ),
        Err(e) => fail(&ctx, F, e),
    }
}

fn ack(ctx: NativeCallContext, state: &Shared, func: &'static str, id: i64) -> Res<Blob> {
    let protocol = protocol_of(state);
    let Ok(id) = u16::try_from(id) else {
        return fail(
            &ctx,
            func,
            format!("packet id {id} is out of range (1 to 65535)"),
        );
    };
    let p = match func {
        "mqtt_puback" => Packet::PubAck(PubAck::new(id)),
        "mqtt_pubrec" => Packet::PubRec(PubRec::new(id)),
        "mqtt_pubrel" => Packet::PubRel(PubRel::new(id)),
        _ => Packet::PubComp(PubComp::new(id)),
    };
    encode(&ctx, func, &p, protocol)
}

pub(super) fn register(engine: &mut Engine, state: Shared) {
    let s = state.clone();
    engine.register_fn("mqtt_connect", move |ctx: NativeCallContext, m: Map| {
        connect(ctx, &s, m)
    });
    let s = state.clone();
    engine.register_fn("mqtt_connect", move |ctx: NativeCallContext| {
        connect(ctx, &s, Map::new())
    });
    let s = state.clone();
    engine.register_fn(
        "mqtt_publish",
        move |ctx: NativeCallContext, t: &str, p: Dynamic, m: Map| publish(ctx, &s, t, p, m),
    );
    let s = state.clone();
    engine.register_fn(
        "mqtt_publish",
        move |ctx: NativeCallContext, t: &str, p: Dynamic| publish(ctx, &s, t, p, Map::new()),
    );
    let s = state.clone();
    engine.register_fn(
        "mqtt_subscribe",
        move |ctx: NativeCallContext, f: Dynamic, m: Map| subscribe(ctx, &s, f, m),
    );
    let s = state.clone();
    engine.register_fn(
        "mqtt_subscribe",
        move |ctx: NativeCallContext, f: Dynamic| subscribe(ctx, &s, f, Map::new()),
    );
    let s = state.clone();
    engine.register_fn(
        "mqtt_unsubscribe",
        move |ctx: NativeCallContext, f: Dynamic, m: Map| unsubscribe(ctx, &s, f, m),
    );
    let s = state.clone();
    engine.register_fn(
        "mqtt_unsubscribe",
        move |ctx: NativeCallContext, f: Dynamic| unsubscribe(ctx, &s, f, Map::new()),
    );
    engine.register_fn("mqtt_pingreq", || -> Blob { vec![0xC0, 0x00] });
    let s = state.clone();
    engine.register_fn("mqtt_disconnect", move |ctx: NativeCallContext| {
        disconnect(ctx, &s, Map::new())
    });
    let s = state.clone();
    engine.register_fn("mqtt_disconnect", move |ctx: NativeCallContext, m: Map| {
        disconnect(ctx, &s, m)
    });
    for func in ["mqtt_puback", "mqtt_pubrec", "mqtt_pubrel", "mqtt_pubcomp"] {
        let s = state.clone();
        engine.register_fn(func, move |ctx: NativeCallContext, id: i64| {
            ack(ctx, &s, func, id)
        });
    }
    let s = state.clone();
    engine.register_fn("mqtt_decode", move |ctx: NativeCallContext, b: Blob| {
        decode(ctx, &s, b, Map::new())
    });
    let s = state.clone();
    engine.register_fn(
        "mqtt_decode",
        move |ctx: NativeCallContext, b: Blob, m: Map| decode(ctx, &s, b, m),
    );
    let s = state;
    engine.register_fn("next_packet_id", move || -> i64 { i64::from(next_id(&s)) });
}
