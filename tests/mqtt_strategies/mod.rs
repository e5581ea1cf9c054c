//! Proptest strategies for valid MQTT packets of each version, shared by the MQTT property
//! and differential tests (included with `#[path]`; this file has no tests of its own).
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use sim7k::mqtt::*;

pub(crate) fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::V31),
        Just(Protocol::V311),
        Just(Protocol::V5)
    ]
}

pub(crate) fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Valid MQTT string content (no U+0000), including multi-byte characters.
pub(crate) fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _é€😀\u{1}-]{0,10}"
}

pub(crate) fn topic_name() -> impl Strategy<Value = String> {
    "[a-z0-9é$]{1,4}(/[a-z0-9 ]{0,4}){0,3}"
}

pub(crate) fn topic_filter() -> impl Strategy<Value = String> {
    (
        vec(prop_oneof![Just("+".to_owned()), "[a-z0-9é]{0,4}"], 1..4),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            let f = levels.join("/");
            if f.is_empty() { "e".into() } else { f }
        })
}

pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

pub(crate) fn code(t: PacketType, p: Protocol) -> impl Strategy<Value = u8> {
    let codes = allowed_codes(t, p).to_vec();
    if codes.is_empty() {
        Just(0u8).boxed()
    } else {
        proptest::sample::select(codes).boxed()
    }
}

/// Any properties (all fields), values within their rules.
pub(crate) fn any_properties() -> impl Strategy<Value = Properties> {
    let a = (
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic_name()),
        option::of(bytes(6)),
        vec(1u32..=268_435_455, 0..3),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(any::<u16>()),
        option::of((text(), option::of(bytes(6)))),
    );
    let b = (
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(1u16..),
        option::of(any::<u16>()),
        option::of(1u16..),
        option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
    );
    let c = (
        option::of(any::<bool>()),
        vec((text(), text()), 0..3),
        option::of(1u32..),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
    );
    (a, b, c).prop_map(|(a, b, c)| Properties {
        payload_format_indicator: a.0,
        message_expiry_interval: a.1,
        content_type: a.2,
        response_topic: a.3,
        correlation_data: a.4,
        subscription_identifiers: a.5,
        session_expiry_interval: a.6,
        assigned_client_identifier: a.7,
        server_keep_alive: a.8,
        authentication_method: a.9.as_ref().map(|x| x.0.clone()),
        authentication_data: a.9.and_then(|x| x.1),
        request_problem_information: b.0,
        will_delay_interval: b.1,
        request_response_information: b.2,
        response_information: b.3,
        server_reference: b.4,
        reason_string: b.5,
        receive_maximum: b.6,
        topic_alias_maximum: b.7,
        topic_alias: b.8,
        maximum_qos: b.9,
        retain_available: c.0,
        user_properties: c.1,
        maximum_packet_size: c.2,
        wildcard_subscription_available: c.3,
        subscription_identifier_available: c.4,
        shared_subscription_available: c.5,
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    Ack,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

/// Keep only the properties the spec allows in `ctx` (MQTT 5.0 §2.2.2.2 table).
pub(crate) fn mask(p: Properties, ctx: Ctx, v: Protocol) -> Properties {
    if v != Protocol::V5 {
        return Properties::default();
    }
    let mut o = Properties {
        user_properties: p.user_properties.clone(),
        ..Properties::default()
    };
    match ctx {
        Ctx::Connect => {
            o.session_expiry_interval = p.session_expiry_interval;
            o.authentication_method = p.authentication_method;
            o.authentication_data = p.authentication_data;
            o.request_problem_information = p.request_problem_information;
            o.request_response_information = p.request_response_information;
            o.receive_maximum = p.receive_maximum;
            o.topic_alias_maximum = p.topic_alias_maximum;
            o.maximum_packet_size = p.maximum_packet_size;
        }
        Ctx::Will | Ctx::Publish => {
            o.payload_format_indicator = p.payload_format_indicator;
            o.message_expiry_interval = p.message_expiry_interval;
            o.content_type = p.content_type;
            o.response_topic = p.response_topic;
            o.correlation_data = p.correlation_data;
            if ctx == Ctx::Will {
                o.will_delay_interval = p.will_delay_interval;
            } else {
                o.topic_alias = p.topic_alias;
                o.subscription_identifiers = p.subscription_identifiers;
            }
        }
        Ctx::ConnAck => {
            o.session_expiry_interval = p.session_expiry_interval;
            o.assigned_client_identifier = p.assigned_client_identifier;
            o.server_keep_alive = p.server_keep_alive;
            o.authentication_method = p.authentication_method;
            o.authentication_data = p.authentication_data;
            o.response_information = p.response_information;
            o.server_reference = p.server_reference;
            o.reason_string = p.reason_string;
            o.receive_maximum = p.receive_maximum;
            o.topic_alias_maximum = p.topic_alias_maximum;
            o.maximum_qos = p.maximum_qos;
            o.retain_available = p.retain_available;
            o.maximum_packet_size = p.maximum_packet_size;
            o.wildcard_subscription_available = p.wildcard_subscription_available;
            o.subscription_identifier_available = p.subscription_identifier_available;
            o.shared_subscription_available = p.shared_subscription_available;
        }
        Ctx::Ack => o.reason_string = p.reason_string,
        Ctx::Subscribe => {
            o.subscription_identifiers = p.subscription_identifiers.into_iter().take(1).collect()
        }
        Ctx::Unsubscribe => {}
        Ctx::Disconnect => {
            o.session_expiry_interval = p.session_expiry_interval;
            o.server_reference = p.server_reference;
            o.reason_string = p.reason_string;
        }
        Ctx::Auth => {
            o.authentication_method = p.authentication_method;
            o.authentication_data = p.authentication_data;
            o.reason_string = p.reason_string;
        }
    }
    o
}

pub(crate) fn props(ctx: Ctx, v: Protocol) -> impl Strategy<Value = Properties> {
    any_properties().prop_map(move |p| mask(p, ctx, v))
}

pub(crate) fn connect(v: Protocol) -> impl Strategy<Value = Packet> {
    let will = option::of((
        topic_name(),
        bytes(8),
        qos(),
        any::<bool>(),
        props(Ctx::Will, v),
    ));
    (
        "[a-zA-Z0-9-]{0,30}",
        any::<bool>(),
        any::<u16>(),
        option::of(text()),
        option::of(bytes(8)),
        will,
        props(Ctx::Connect, v),
    )
        .prop_map(
            move |(mut id, clean, keep_alive, username, mut password, will, properties)| {
                let mut clean_session = clean;
                match v {
                    // Longer than 23 characters is tolerated (a warning), empty is refused.
                    Protocol::V31 if id.is_empty() => id.push('x'),
                    Protocol::V311 if id.is_empty() => clean_session = true,
                    _ => {}
                }
                if v != Protocol::V5 && username.is_none() {
                    password = None;
                }
                Packet::Connect(Connect {
                    protocol: v,
                    client_id: id,
                    clean_session,
                    keep_alive,
                    username,
                    password,
                    will: will.map(|(topic, payload, qos, retain, properties)| LastWill {
                        topic,
                        payload,
                        qos,
                        retain,
                        properties,
                    }),
                    properties,
                })
            },
        )
}

pub(crate) fn publish(v: Protocol) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        any::<bool>(),
        1u16..,
        bytes(40),
        props(Ctx::Publish, v),
    )
        .prop_map(
            move |(dup, qos, retain, topic, empty, id, payload, properties)| {
                let q0 = qos == QoS::AtMostOnce;
                let topic = if empty && properties.topic_alias.is_some() {
                    String::new()
                } else {
                    topic
                };
                Packet::Publish(Publish {
                    dup: dup && !q0,
                    qos,
                    retain,
                    topic,
                    packet_id: if q0 { None } else { Some(id) },
                    payload,
                    properties,
                })
            },
        )
}

pub(crate) fn packet(v: Protocol) -> BoxedStrategy<Packet> {
    let ack = move |t: PacketType| (1u16.., code(t, v), props(Ctx::Ack, v));
    let filters = vec(
        (topic_filter(), qos(), any::<bool>(), any::<bool>(), 0u8..3),
        1..4,
    )
    .prop_map(move |fs| {
        fs.into_iter()
            .map(|(filter, qos, nl, rap, rh)| {
                let five = v == Protocol::V5;
                SubscribeFilter {
                    filter,
                    qos,
                    no_local: five && nl,
                    retain_as_published: five && rap,
                    retain_handling: if five {
                        RetainHandling::from_u8(rh).unwrap()
                    } else {
                        RetainHandling::SendAtSubscribe
                    },
                }
            })
            .collect::<Vec<_>>()
    });
    let mut s = vec![
        connect(v).boxed(),
        (
            any::<bool>(),
            code(PacketType::ConnAck, v),
            props(Ctx::ConnAck, v),
        )
            .prop_map(move |(sp, code, properties)| {
                Packet::ConnAck(ConnAck {
                    session_present: sp && code == 0 && v != Protocol::V31,
                    code,
                    properties,
                })
            })
            .boxed(),
        publish(v).boxed(),
        ack(PacketType::PubAck)
            .prop_map(|(packet_id, code, properties)| {
                Packet::PubAck(PubAck {
                    packet_id,
                    code,
                    properties,
                })
            })
            .boxed(),
        ack(PacketType::PubRec)
            .prop_map(|(packet_id, code, properties)| {
                Packet::PubRec(PubRec {
                    packet_id,
                    code,
                    properties,
                })
            })
            .boxed(),
        (ack(PacketType::PubRel), any::<bool>())
            .prop_map(move |((packet_id, code, properties), dup)| {
                Packet::PubRel(PubRel {
                    // DUP on PUBREL exists only in MQTT 3.1.
                    dup: dup && v == Protocol::V31,
                    packet_id,
                    code,
                    properties,
                })
            })
            .boxed(),
        ack(PacketType::PubComp)
            .prop_map(|(packet_id, code, properties)| {
                Packet::PubComp(PubComp {
                    packet_id,
                    code,
                    properties,
                })
            })
            .boxed(),
        (1u16.., filters, props(Ctx::Subscribe, v), any::<bool>())
            .prop_map(move |(packet_id, filters, properties, dup)| {
                Packet::Subscribe(Subscribe {
                    dup: dup && v == Protocol::V31,
                    packet_id,
                    filters,
                    properties,
                })
            })
            .boxed(),
        (
            1u16..,
            vec(code(PacketType::SubAck, v), 1..5),
            props(Ctx::Ack, v),
        )
            .prop_map(|(packet_id, codes, properties)| {
                Packet::SubAck(SubAck {
                    packet_id,
                    codes,
                    properties,
                })
            })
            .boxed(),
        (
            1u16..,
            vec(topic_filter(), 1..4),
            props(Ctx::Unsubscribe, v),
            any::<bool>(),
        )
            .prop_map(move |(packet_id, filters, properties, dup)| {
                Packet::Unsubscribe(Unsubscribe {
                    dup: dup && v == Protocol::V31,
                    packet_id,
                    filters,
                    properties,
                })
            })
            .boxed(),
        (
            1u16..,
            vec(code(PacketType::UnsubAck, v), 1..4),
            props(Ctx::Ack, v),
        )
            .prop_map(move |(packet_id, codes, properties)| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    codes: if v == Protocol::V5 { codes } else { Vec::new() },
                    properties,
                })
            })
            .boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        (code(PacketType::Disconnect, v), props(Ctx::Disconnect, v))
            .prop_map(|(code, properties)| Packet::Disconnect(Disconnect { code, properties }))
            .boxed(),
    ];
    if v == Protocol::V5 {
        s.push(
            (code(PacketType::Auth, v), props(Ctx::Auth, v), text())
                .prop_map(|(code, mut properties, method)| {
                    if code != 0 || !properties.is_empty() {
                        properties.authentication_method.get_or_insert(method);
                    }
                    Packet::Auth(Auth { code, properties })
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(s).boxed()
}

pub(crate) fn versioned_packet() -> impl Strategy<Value = (Protocol, Packet)> {
    protocol().prop_flat_map(|v| (Just(v), packet(v)))
}

pub(crate) fn versioned_stream() -> impl Strategy<Value = (Protocol, Vec<Packet>, Vec<usize>)> {
    protocol().prop_flat_map(|v| {
        (
            Just(v),
            // No CONNECT: a CONNECT of this version would not change anything, but keep the
            // stream to packets that share one version.
            vec(packet(v), 1..8).prop_map(|ps| {
                ps.into_iter()
                    .filter(|p| !matches!(p, Packet::Connect(_)))
                    .collect::<Vec<_>>()
            }),
            vec(1usize..20, 1..64),
        )
    })
}
