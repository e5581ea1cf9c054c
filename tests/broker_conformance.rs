//! The embedded broker against the MQTT specification, over real TCP with a raw client built
//! on sim7k's codec (tests/broker_client): every feature in MQTT 3.1, 3.1.1 and 5.0, the QoS
//! flows byte for byte, 1 MiB payloads, malformed input, keep-alive expiry with its will.
//!
//! "Nothing arrived" checks are not timed: the publisher first completes a QoS 1 flow (the
//! broker has routed the message before it answers PUBACK), then the subscriber does a
//! PINGREQ round trip, which returns whatever the broker had queued for it before.
#![cfg(feature = "embedded-broker")]

mod broker_client;

use broker_client::{Raw, publish};
use sim7k::broker::{BrokerConfig, Credentials, EmbeddedBroker, ReceivedMessage};
use sim7k::mqtt::*;

const ALL: [Protocol; 3] = [Protocol::V31, Protocol::V311, Protocol::V5];

fn tag(v: Protocol) -> u8 {
    v.level()
}

#[test]
fn qos_flows_are_byte_exact_in_every_version() {
    let b = EmbeddedBroker::start().unwrap();
    for v in ALL {
        let (mut sub, ack, raw) = Raw::connect(b.addr(), Connect::new(v, format!("s{}", tag(v))));
        assert!(ack.is_success());
        // CONNACK: 20 02 00 00 in 3.x; 5.0 carries properties (decoded above).
        if v != Protocol::V5 {
            assert_eq!(raw, [0x20, 0x02, 0x00, 0x00]);
        }
        let t = format!("q/{}", tag(v));
        assert_eq!(sub.subscribe(7, &format!("{t}/#"), QoS::ExactlyOnce), [2]);
        let mut publ = Raw::client(b.addr(), v, &format!("p{}", tag(v)));

        // QoS 1 in: PUBACK 40 02 00 0A (5.0 omits reason code 0 and empty properties).
        publ.send(&Packet::Publish(publish(
            &format!("{t}/a"),
            b"one",
            QoS::AtLeastOnce,
            10,
            false,
        )));
        assert_eq!(publ.recv().1, [0x40, 0x02, 0x00, 0x0A]);
        // QoS 2 in: PUBREC 50 02 00 0B, PUBREL 62 02 00 0B, PUBCOMP 70 02 00 0B.
        publ.send(&Packet::Publish(publish(
            &format!("{t}/b"),
            b"two",
            QoS::ExactlyOnce,
            11,
            false,
        )));
        assert_eq!(publ.recv().1, [0x50, 0x02, 0x00, 0x0B]);
        publ.send_raw(&[0x62, 0x02, 0x00, 0x0B]);
        assert_eq!(publ.recv().1, [0x70, 0x02, 0x00, 0x0B]);

        // Out to the subscriber, at the QoS published (subscription QoS 2), packet ids 1, 2.
        let (p1, raw1) = sub.publish_in();
        let mut want = publish(&format!("{t}/a"), b"one", QoS::AtLeastOnce, 1, false);
        assert_eq!(raw1, Packet::Publish(want.clone()).encode(v).unwrap());
        assert_eq!(p1, want);
        sub.send_raw(&[0x40, 0x02, 0x00, 0x01]);
        let (p2, raw2) = sub.publish_in();
        want = publish(&format!("{t}/b"), b"two", QoS::ExactlyOnce, 2, false);
        assert_eq!(raw2, Packet::Publish(want.clone()).encode(v).unwrap());
        assert_eq!(p2, want);
        sub.send_raw(&[0x50, 0x02, 0x00, 0x02]);
        assert_eq!(
            sub.recv().1,
            [0x62, 0x02, 0x00, 0x02],
            "PUBREL to subscriber"
        );
        sub.send_raw(&[0x70, 0x02, 0x00, 0x02]);
        // QoS 0 in: nothing back; out as it came.
        publ.send(&Packet::Publish(publish(
            &format!("{t}/c"),
            b"zero",
            QoS::AtMostOnce,
            0,
            false,
        )));
        let (_, raw3) = sub.publish_in();
        want = publish(&format!("{t}/c"), b"zero", QoS::AtMostOnce, 0, false);
        assert_eq!(raw3, Packet::Publish(want).encode(v).unwrap());
        // PINGREQ C0 00 → PINGRESP D0 00.
        sub.send_raw(&[0xC0, 0x00]);
        assert_eq!(sub.recv().1, [0xD0, 0x00]);
        // DISCONNECT: the broker closes.
        sub.send(&Packet::Disconnect(Disconnect::default()));
        assert!(sub.closed().is_empty());
    }
    // Recorded with the QoS each client published with.
    let qos: Vec<(String, u8)> = b.received().into_iter().map(|m| (m.topic, m.qos)).collect();
    assert_eq!(qos.len(), 9);
    assert_eq!(
        qos[0..3],
        [
            ("q/3/a".into(), 1),
            ("q/3/b".into(), 2),
            ("q/3/c".into(), 0)
        ]
    );
}

#[test]
fn delivery_qos_is_the_lower_of_publish_and_subscription() {
    let b = EmbeddedBroker::start().unwrap();
    for v in ALL {
        let mut sub = Raw::client(b.addr(), v, &format!("low{}", tag(v)));
        sub.subscribe(1, "low/#", QoS::AtLeastOnce);
        let mut publ = Raw::client(b.addr(), v, &format!("lowp{}", tag(v)));
        publ.publish(publish("low/2", b"x", QoS::ExactlyOnce, 5, false));
        publ.publish(publish("low/0", b"y", QoS::AtMostOnce, 0, false));
        let (p, _) = sub.publish_in();
        assert_eq!((p.qos, p.packet_id), (QoS::AtLeastOnce, Some(1)));
        sub.ack(&p);
        let (p, _) = sub.publish_in();
        assert_eq!((p.qos, p.packet_id), (QoS::AtMostOnce, None));
        sub.send(&Packet::Unsubscribe(Unsubscribe::new(2, "low/#")));
        let Packet::UnsubAck(u) = sub.recv().0 else {
            panic!("expected UNSUBACK")
        };
        assert_eq!(u.packet_id, 2);
        assert_eq!(u.codes, if v == Protocol::V5 { vec![0] } else { vec![] });
        publ.publish(publish("low/1", b"z", QoS::AtLeastOnce, 6, false));
        assert!(sub.sync().is_empty(), "delivered after UNSUBSCRIBE");
        sub.send(&Packet::Unsubscribe(Unsubscribe::new(
            3,
            "never/subscribed",
        )));
        let Packet::UnsubAck(u) = sub.recv().0 else {
            panic!("expected UNSUBACK")
        };
        if v == Protocol::V5 {
            assert_eq!(u.codes, [0x11], "no subscription existed");
        }
    }
}

#[test]
fn wildcards_and_dollar_topics() {
    let b = EmbeddedBroker::start().unwrap();
    let mut all = Raw::client(b.addr(), Protocol::V311, "all");
    all.subscribe(1, "#", QoS::AtMostOnce);
    let mut plus = Raw::client(b.addr(), Protocol::V311, "plus");
    plus.subscribe(1, "+/b/+", QoS::AtMostOnce);
    let mut sys = Raw::client(b.addr(), Protocol::V311, "sys");
    sys.subscribe(1, "$SYS/#", QoS::AtMostOnce);
    let mut publ = Raw::client(b.addr(), Protocol::V311, "pub");
    for t in ["a/b/c", "a/b", "$SYS/x", "x/b/", "a/b/c/d"] {
        publ.publish(publish(t, t.as_bytes(), QoS::AtLeastOnce, 1, false));
    }
    let topics = |c: &mut Raw| -> Vec<String> {
        c.sync()
            .into_iter()
            .map(|p| match p {
                Packet::Publish(p) => p.topic,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    // `#` matches everything but topics starting with `$`.
    assert_eq!(topics(&mut all), ["a/b/c", "a/b", "x/b/", "a/b/c/d"]);
    assert_eq!(topics(&mut plus), ["a/b/c", "x/b/"]);
    assert_eq!(topics(&mut sys), ["$SYS/x"]);
}

#[test]
fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
    let b = EmbeddedBroker::start().unwrap();
    let mut sub = Raw::client(b.addr(), Protocol::V311, "overlap");
    sub.subscribe(1, "o/#", QoS::AtMostOnce);
    sub.subscribe(2, "o/+", QoS::AtLeastOnce);
    let mut publ = Raw::client(b.addr(), Protocol::V311, "overlap-pub");
    publ.publish(publish("o/x", b"1", QoS::ExactlyOnce, 1, false));
    let got = sub.sync();
    assert_eq!(got.len(), 1, "{got:?}");
    let Packet::Publish(p) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(p.qos, QoS::AtLeastOnce);
}

#[test]
fn retained_messages_in_every_version() {
    let b = EmbeddedBroker::start().unwrap();
    for v in ALL {
        let t = format!("r/{}", tag(v));
        let mut publ = Raw::client(b.addr(), v, &format!("rp{}", tag(v)));
        publ.publish(publish(&t, b"kept", QoS::AtLeastOnce, 1, true));
        // A live subscriber gets the message without RETAIN...
        let mut live = Raw::client(b.addr(), v, &format!("rl{}", tag(v)));
        live.subscribe(1, &t, QoS::AtLeastOnce);
        let (p, _) = live.publish_in();
        assert!(p.retain, "sent at subscribe time: RETAIN 1");
        live.ack(&p);
        publ.publish(publish(&t, b"newer", QoS::AtLeastOnce, 2, true));
        let (p, _) = live.publish_in();
        assert!(!p.retain, "forwarded live: RETAIN 0");
        assert_eq!(p.payload, b"newer");
        live.ack(&p);
        // ...a new one the latest retained message, at min(QoS), with RETAIN.
        let mut late = Raw::client(b.addr(), v, &format!("rn{}", tag(v)));
        late.subscribe(1, "r/+", QoS::AtMostOnce);
        let got = late.sync();
        let retained: Vec<&Publish> = got
            .iter()
            .filter_map(|p| match p {
                Packet::Publish(p) if p.topic == t => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(retained.len(), 1, "{got:?}");
        assert_eq!(
            (
                retained[0].payload.as_slice(),
                retained[0].qos,
                retained[0].retain
            ),
            (&b"newer"[..], QoS::AtMostOnce, true)
        );
        // An empty retained payload clears it.
        publ.publish(publish(&t, b"", QoS::AtMostOnce, 0, true));
        publ.sync();
        let mut after = Raw::client(b.addr(), v, &format!("ra{}", tag(v)));
        after.subscribe(1, &t, QoS::AtMostOnce);
        assert!(after.sync().is_empty(), "cleared retained message sent");
    }
}

#[test]
fn v5_subscription_options() {
    let b = EmbeddedBroker::start().unwrap();
    let v = Protocol::V5;
    let mut publ = Raw::client(b.addr(), v, "opt-pub");
    publ.publish(publish("opt/r", b"kept", QoS::AtMostOnce, 0, true));
    let mut c = Raw::client(b.addr(), v, "opt");
    let mut s = Subscribe::new(1, "opt/#", QoS::AtLeastOnce);
    s.filters[0].no_local = true;
    s.filters[0].retain_as_published = true;
    s.filters[0].retain_handling = RetainHandling::DoNotSend;
    s.properties.subscription_identifiers = vec![42];
    let mut shared = SubscribeFilter::new("$share/g/opt/#", QoS::AtMostOnce);
    shared.no_local = false;
    s.filters.push(shared);
    c.send(&Packet::Subscribe(s));
    let Packet::SubAck(a) = c.recv().0 else {
        panic!("expected SUBACK")
    };
    assert_eq!(a.codes, [1, 0x9E], "shared subscriptions are refused");
    assert!(
        c.sync().is_empty(),
        "retain handling 2 sent a retained message"
    );
    // No local: our own publish does not come back; another client's does, with its RETAIN
    // flag kept and the subscription identifier.
    c.publish(publish("opt/own", b"me", QoS::AtLeastOnce, 3, false));
    publ.publish(publish("opt/other", b"you", QoS::AtLeastOnce, 4, true));
    let got = c.sync();
    assert_eq!(got.len(), 1, "{got:?}");
    let Packet::Publish(p) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(p.topic, "opt/other");
    assert!(p.retain, "retain as published");
    assert_eq!(p.properties.subscription_identifiers, [42]);
}

#[test]
fn v5_topic_alias_and_properties_are_forwarded() {
    let b = EmbeddedBroker::start().unwrap();
    let v = Protocol::V5;
    let (mut publ, ack, _) = Raw::connect(b.addr(), Connect::new(v, "alias"));
    assert!(ack.properties.topic_alias_maximum.unwrap_or(0) >= 1);
    let mut sub = Raw::client(b.addr(), v, "alias-sub");
    sub.subscribe(1, "al/#", QoS::AtMostOnce);
    let mut p = publish("al/t", b"first", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(1);
    p.properties.content_type = Some("text/plain".into());
    p.properties.user_properties = vec![("k".into(), "v".into())];
    publ.send(&Packet::Publish(p));
    let mut p = publish("", b"second", QoS::AtLeastOnce, 9, false);
    p.properties.topic_alias = Some(1);
    publ.send(&Packet::Publish(p));
    assert_eq!(publ.recv().0, Packet::PubAck(PubAck::new(9)));
    let (a, _) = sub.publish_in();
    assert_eq!(a.topic, "al/t");
    assert_eq!(a.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(a.properties.user_properties, [("k".into(), "v".into())]);
    assert_eq!(a.properties.topic_alias, None);
    let (c, _) = sub.publish_in();
    assert_eq!(
        (c.topic.as_str(), c.payload.as_slice()),
        ("al/t", &b"second"[..])
    );
    assert_eq!(
        b.received()[1].topic,
        "al/t",
        "recorded with the aliased topic"
    );
    // An alias never set is a protocol error: DISCONNECT 0x82, then close.
    let mut p = publish("", b"x", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(2);
    publ.send(&Packet::Publish(p));
    let end = publ.closed();
    assert!(
        matches!(end.as_slice(), [Packet::Disconnect(d)] if d.code == 0x82),
        "{end:?}"
    );
}

#[test]
fn sessions_persist_with_clean_session_0_and_v5_expiry() {
    let b = EmbeddedBroker::start().unwrap();
    for v in [Protocol::V311, Protocol::V5] {
        let id = format!("persist{}", tag(v));
        let mut c = Connect::new(v, id.clone());
        c.clean_session = false;
        if v == Protocol::V5 {
            c.properties.session_expiry_interval = Some(300);
        }
        let (mut s, ack, _) = Raw::connect(b.addr(), c.clone());
        assert!(!ack.session_present);
        s.subscribe(1, "ps/#", QoS::ExactlyOnce);
        s.send(&Packet::Disconnect(Disconnect::default()));
        s.closed();
        // Offline: QoS 1 and 2 are queued, QoS 0 is not.
        let mut publ = Raw::client(b.addr(), v, &format!("pp{}", tag(v)));
        publ.publish(publish("ps/0", b"0", QoS::AtMostOnce, 0, false));
        publ.publish(publish("ps/1", b"1", QoS::AtLeastOnce, 1, false));
        publ.publish(publish("ps/2", b"2", QoS::ExactlyOnce, 2, false));
        let (mut s, ack, _) = Raw::connect(b.addr(), c.clone());
        assert!(ack.session_present, "MQTT {v}: session present");
        let (p1, _) = s.publish_in();
        let (p2, _) = s.publish_in();
        assert_eq!((p1.topic.as_str(), p1.qos), ("ps/1", QoS::AtLeastOnce));
        assert_eq!((p2.topic.as_str(), p2.qos), ("ps/2", QoS::ExactlyOnce));
        // Leave them unacknowledged: they come again, DUP set, with the same ids.
        drop(s);
        let (mut s, ack, _) = Raw::connect(b.addr(), c.clone());
        assert!(ack.session_present);
        let (r1, _) = s.publish_in();
        let (r2, _) = s.publish_in();
        assert!(r1.dup && r2.dup);
        assert_eq!((r1.packet_id, r2.packet_id), (p1.packet_id, p2.packet_id));
        s.ack(&r1);
        s.ack(&r2);
        assert!(s.sync().is_empty());
        // The subscription survived too.
        publ.publish(publish("ps/again", b"a", QoS::AtLeastOnce, 3, false));
        let (p, _) = s.publish_in();
        assert_eq!(p.topic, "ps/again");
        s.ack(&p);
        drop(s);
        // A clean session starts over.
        c.clean_session = true;
        let (_s, ack, _) = Raw::connect(b.addr(), c);
        assert!(!ack.session_present);
    }
    // 3.1 has no session present flag: CONNACK stays 20 02 00 00.
    let mut c = Connect::new(Protocol::V31, "persist3");
    c.clean_session = false;
    let (s, _, _) = Raw::connect(b.addr(), c.clone());
    drop(s);
    let (_s, _, raw) = Raw::connect(b.addr(), c);
    assert_eq!(raw, [0x20, 0x02, 0x00, 0x00]);
}

#[test]
fn a_second_connection_with_the_same_client_id_takes_over() {
    let b = EmbeddedBroker::start().unwrap();
    for v in ALL {
        let id = format!("twin{}", tag(v));
        let mut first = Raw::client(b.addr(), v, &id);
        let _second = Raw::client(b.addr(), v, &id);
        let end = first.closed();
        if v == Protocol::V5 {
            assert!(
                matches!(end.as_slice(), [Packet::Disconnect(d)] if d.code == 0x8E),
                "{end:?}"
            );
        } else {
            assert!(end.is_empty(), "{end:?}");
        }
    }
}

#[test]
fn credentials_are_accepted_by_default_and_refused_when_configured() {
    let open = EmbeddedBroker::start().unwrap();
    for v in ALL {
        let c = Connect {
            username: Some("any".into()),
            password: Some(b"thing".to_vec()),
            ..Connect::new(v, format!("cred{}", tag(v)))
        };
        assert!(Raw::connect(open.addr(), c).1.is_success());
    }
    let config = BrokerConfig {
        credentials: Some(Credentials {
            username: "alice".into(),
            password: b"right".to_vec(),
        }),
        ..BrokerConfig::default()
    };
    let b = EmbeddedBroker::start_with(config).unwrap();
    for (v, bad, none) in [
        (Protocol::V31, 4, 5),
        (Protocol::V311, 4, 5),
        (Protocol::V5, 0x86, 0x87),
    ] {
        let wrong = Connect {
            username: Some("alice".into()),
            password: Some(b"wrong".to_vec()),
            ..Connect::new(v, format!("w{}", tag(v)))
        };
        let (mut c, ack, _) = Raw::connect(b.addr(), wrong);
        assert_eq!((ack.code, ack.session_present), (bad, false), "MQTT {v}");
        assert!(c.closed().is_empty());
        let (mut c, ack, _) = Raw::connect(b.addr(), Connect::new(v, format!("n{}", tag(v))));
        assert_eq!(ack.code, none, "MQTT {v}");
        assert!(c.closed().is_empty());
        let right = Connect {
            username: Some("alice".into()),
            password: Some(b"right".to_vec()),
            ..Connect::new(v, format!("r{}", tag(v)))
        };
        assert!(Raw::connect(b.addr(), right).1.is_success());
    }
}

#[test]
fn empty_client_ids() {
    let b = EmbeddedBroker::start().unwrap();
    // 3.1.1 with a clean session: accepted; 5.0: accepted with an assigned id.
    assert!(
        Raw::connect(b.addr(), Connect::new(Protocol::V311, ""))
            .1
            .is_success()
    );
    let (_c, ack, _) = Raw::connect(b.addr(), Connect::new(Protocol::V5, ""));
    assert!(ack.is_success());
    assert!(ack.properties.assigned_client_identifier.is_some());
    // 3.1.1 without a clean session: CONNACK 2 (identifier rejected), then close.
    let mut c = Connect::new(Protocol::V311, "");
    c.clean_session = false;
    let mut r = Raw::open(b.addr(), Protocol::V311);
    r.send_raw(&Packet::Connect(c).encode_unchecked(Protocol::V311));
    assert_eq!(r.closed(), [Packet::ConnAck(ConnAck::new(2))]);
    // 3.1 with an empty id: CONNACK 2 (MQTT 3.1 §3.1 asks for 1 to 23 characters).
    let c = Connect::new(Protocol::V31, "");
    let mut r = Raw::open(b.addr(), Protocol::V31);
    r.send_raw(&Packet::Connect(c).encode_unchecked(Protocol::V31));
    assert_eq!(r.closed(), [Packet::ConnAck(ConnAck::new(2))]);
    // 3.1 with a 24-character id: accepted, as mosquitto and most brokers do.
    assert!(
        Raw::connect(b.addr(), Connect::new(Protocol::V31, "x".repeat(24)))
            .1
            .is_success()
    );
}

#[test]
fn keep_alive_expiry_publishes_the_will() {
    let b = EmbeddedBroker::start().unwrap();
    for v in ALL {
        let mut watcher = Raw::client(b.addr(), v, &format!("watch{}", tag(v)));
        watcher.subscribe(1, "will/#", QoS::AtLeastOnce);
        let t = format!("will/{}", tag(v));
        let c = Connect {
            keep_alive: 1,
            will: Some(LastWill {
                topic: t.clone(),
                payload: b"gone".to_vec(),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::default(),
            }),
            ..Connect::new(v, format!("silent{}", tag(v)))
        };
        let (mut silent, ack, _) = Raw::connect(b.addr(), c);
        assert!(ack.is_success());
        // Say nothing: after 1.5 s the broker closes (5.0: DISCONNECT 0x8D first) and
        // publishes the will.
        let end = silent.closed();
        if v == Protocol::V5 {
            assert!(
                matches!(end.as_slice(), [Packet::Disconnect(d)] if d.code == 0x8D),
                "{end:?}"
            );
        } else {
            assert!(end.is_empty(), "{end:?}");
        }
        let (w, _) = watcher.publish_in();
        assert_eq!(
            (w.topic.as_str(), w.payload.as_slice()),
            (t.as_str(), &b"gone"[..])
        );
        assert_eq!(w.qos, QoS::AtLeastOnce);
        watcher.ack(&w);
    }
}

#[test]
fn wills_on_a_lost_connection_but_not_after_disconnect() {
    let b = EmbeddedBroker::start().unwrap();
    let mut watcher = Raw::client(b.addr(), Protocol::V5, "w-watch");
    watcher.subscribe(1, "lw/#", QoS::AtMostOnce);
    let with_will = |id: &str, v: Protocol| Connect {
        will: Some(LastWill {
            topic: format!("lw/{id}"),
            payload: id.as_bytes().to_vec(),
            ..LastWill::default()
        }),
        ..Connect::new(v, id)
    };
    // Graceful DISCONNECT: no will.
    let (mut c, _, _) = Raw::connect(b.addr(), with_will("polite", Protocol::V311));
    c.send(&Packet::Disconnect(Disconnect::default()));
    c.closed();
    // 5.0 DISCONNECT 0x04 "with will message": the will.
    let (mut c, _, _) = Raw::connect(b.addr(), with_will("v5will", Protocol::V5));
    c.send(&Packet::Disconnect(Disconnect {
        code: 0x04,
        ..Disconnect::default()
    }));
    c.closed();
    // The socket just closes: the will.
    let (c, _, _) = Raw::connect(b.addr(), with_will("dropped", Protocol::V311));
    drop(c);
    let (w1, _) = watcher.publish_in();
    let (w2, _) = watcher.publish_in();
    assert_eq!([w1.topic, w2.topic], ["lw/v5will", "lw/dropped"]);
    // A protocol error (a second CONNECT): the will.
    let (mut c, _, _) = Raw::connect(b.addr(), with_will("rude", Protocol::V311));
    c.send(&Packet::Connect(Connect::new(Protocol::V311, "rude")));
    c.closed();
    let (w3, _) = watcher.publish_in();
    assert_eq!(w3.topic, "lw/rude");
    assert!(watcher.sync().is_empty());
}

#[test]
fn one_mib_payloads_both_ways() {
    let b = EmbeddedBroker::start().unwrap();
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for v in [Protocol::V311, Protocol::V5] {
        let mut sub = Raw::client(b.addr(), v, &format!("big{}", tag(v)));
        sub.subscribe(1, "big", QoS::ExactlyOnce);
        let mut publ = Raw::client(b.addr(), v, &format!("bigp{}", tag(v)));
        publ.publish(publish("big", &payload, QoS::ExactlyOnce, 1, false));
        let (p, raw) = sub.publish_in();
        assert!(p.payload == payload, "payload changed on the way");
        assert!(raw.len() > 1 << 20);
        sub.ack(&p);
    }
    let got = b.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| *m.payload == *payload && m.qos == 2));
}

#[test]
fn malformed_input_closes_the_connection() {
    let b = EmbeddedBroker::start().unwrap();
    let cases: &[(&str, &[u8])] = &[
        ("reserved packet type 0", &[0x00, 0x00]),
        ("PUBLISH before CONNECT", &[0x30, 0x03, 0x00, 0x01, b'a']),
        (
            "remaining length of 5 bytes",
            &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
        (
            "unknown protocol name",
            &[
                0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'X', b'X', 4, 2, 0, 60, 0, 0,
            ],
        ),
    ];
    for (what, bytes) in cases {
        let mut r = Raw::open(b.addr(), Protocol::V311);
        r.send_raw(bytes);
        assert!(r.closed().is_empty(), "{what}");
    }
    // Unsupported protocol level: CONNACK 1 (3.1.1 layout), then close.
    let mut r = Raw::open(b.addr(), Protocol::V311);
    r.send_raw(&[
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 0,
    ]);
    assert_eq!(r.closed(), [Packet::ConnAck(ConnAck::new(1))]);
    // After CONNECT: bad SUBSCRIBE flags, a server-only packet, a truncated PUBLISH body.
    let after: &[(&str, &[u8])] = &[
        (
            "SUBSCRIBE flags 0",
            &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00],
        ),
        ("CONNACK from a client", &[0x20, 0x02, 0x00, 0x00]),
        (
            "topic longer than the packet",
            &[0x30, 0x03, 0x00, 0x09, b'a'],
        ),
        ("PUBLISH QoS 3", &[0x36, 0x03, 0x00, 0x01, b'a']),
    ];
    for v in [Protocol::V311, Protocol::V5] {
        for (what, bytes) in after {
            let mut r = Raw::client(b.addr(), v, &format!("bad{}", tag(v)));
            r.send_raw(bytes);
            let end = r.closed();
            if v == Protocol::V5 {
                assert!(
                    matches!(end.as_slice(), [Packet::Disconnect(d)] if d.code >= 0x80),
                    "{what}: {end:?}"
                );
            } else {
                assert!(end.is_empty(), "{what}: {end:?}");
            }
        }
    }
    // The broker still serves.
    let mut ok = Raw::client(b.addr(), Protocol::V311, "still-fine");
    ok.publish(publish("fine", b"1", QoS::AtLeastOnce, 1, false));
    assert_eq!(
        b.received(),
        [ReceivedMessage {
            topic: "fine".into(),
            payload: b"1".to_vec().into(),
            qos: 1,
            retain: false
        }]
    );
}

#[test]
fn stop_closes_every_connection() {
    let mut b = EmbeddedBroker::start().unwrap();
    let addr = b.addr();
    let mut c = Raw::client(addr, Protocol::V311, "stopped");
    b.stop();
    assert!(c.closed().is_empty());
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
    b.stop();
}
