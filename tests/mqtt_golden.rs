//! Golden byte vectors for every packet type in MQTT 3.1, 3.1.1 and 5.0, derived by hand from
//! the byte layouts of the specifications (MQTT 3.1 §3, MQTT 3.1.1 §2-3, MQTT 5.0 §2-3).
//! Each vector is checked both ways: our encoder produces exactly these bytes, and our decoder
//! turns these bytes back into the same packet.

use sim7k::mqtt::*;

/// Hex digits with anything else (spaces, `//` comments) ignored: comments must not contain
/// hex-looking words, so they are stripped first.
fn hex(s: &str) -> Vec<u8> {
    let mut digits = String::new();
    for line in s.lines() {
        let code = line.split("//").next().unwrap_or("");
        digits.extend(code.chars().filter(|c| c.is_ascii_hexdigit()));
    }
    assert!(digits.len().is_multiple_of(2), "odd hex in vector: {s}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn check(name: &str, protocol: Protocol, packet: Packet, vector: &str) {
    let bytes = hex(vector);
    let encoded = packet
        .encode(protocol)
        .unwrap_or_else(|e| panic!("{name}: encode failed: {e}"));
    assert_eq!(
        encoded, bytes,
        "{name}: encoding differs from the golden vector"
    );
    let (decoded, used) = decode(&bytes, protocol)
        .unwrap_or_else(|e| panic!("{name}: decode failed: {e}"))
        .unwrap_or_else(|| panic!("{name}: decode says incomplete"));
    assert_eq!(used, bytes.len(), "{name}: bytes used");
    assert_eq!(decoded, packet, "{name}: decoded packet differs");
    // Every strict prefix is incomplete, never an error.
    for n in 0..bytes.len() {
        assert_eq!(
            decode(&bytes[..n], protocol),
            Ok(None),
            "{name}: prefix of {n} bytes"
        );
    }
}

fn props() -> Properties {
    Properties::default()
}

#[test]
fn connect_mqtt31_original_script_shape() {
    // The user's original script: protocol "MQIsdp", level 3, flags 0xC2 (user name, password,
    // clean session), keep alive 60.
    let c = Connect {
        protocol: Protocol::V31,
        client_id: "SIM7000".into(),
        clean_session: true,
        keep_alive: 60,
        username: Some("user".into()),
        password: Some(b"pass".to_vec()),
        will: None,
        properties: props(),
    };
    check(
        "3.1 CONNECT",
        Protocol::V31,
        Packet::Connect(c),
        "10 21                      // CONNECT, remaining length 33
         00 06 4D 51 49 73 64 70    // protocol name \"MQIsdp\"
         03                         // protocol level 3
         C2                         // flags: user name 0x80 | password 0x40 | clean session 0x02
         00 3C                      // keep alive 60
         00 07 53 49 4D 37 30 30 30 // client id \"SIM7000\"
         00 04 75 73 65 72          // user name \"user\"
         00 04 70 61 73 73          // password \"pass\"",
    );
}

#[test]
fn connect_mqtt311() {
    check(
        "3.1.1 CONNECT minimal",
        Protocol::V311,
        Packet::Connect(Connect::new(Protocol::V311, "c1")),
        "10 0E                // CONNECT, remaining length 14
         00 04 4D 51 54 54    // \"MQTT\"
         04                   // level 4
         02                   // clean session
         00 3C                // keep alive 60
         00 02 63 31          // client id \"c1\"",
    );
    let c = Connect {
        protocol: Protocol::V311,
        client_id: "id".into(),
        clean_session: true,
        keep_alive: 10,
        username: Some("u".into()),
        password: Some(b"p".to_vec()),
        will: Some(LastWill {
            topic: "w".into(),
            payload: b"bye".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: props(),
        }),
        properties: props(),
    };
    check(
        "3.1.1 CONNECT with will",
        Protocol::V311,
        Packet::Connect(c),
        "10 1C                // CONNECT, remaining length 28
         00 04 4D 51 54 54 04 // \"MQTT\" level 4
         EE                   // user 0x80 | password 0x40 | will retain 0x20 | will QoS 1 (0x08) | will 0x04 | clean 0x02
         00 0A                // keep alive 10
         00 02 69 64          // client id \"id\"
         00 01 77             // will topic \"w\"
         00 03 62 79 65       // will payload \"bye\"
         00 01 75             // user name \"u\"
         00 01 70             // password \"p\"",
    );
}

#[test]
fn connect_mqtt5() {
    let mut c = Connect::new(Protocol::V5, "v5");
    c.keep_alive = 30;
    c.properties.session_expiry_interval = Some(120);
    c.properties.receive_maximum = Some(20);
    check(
        "5.0 CONNECT with properties",
        Protocol::V5,
        Packet::Connect(c),
        "10 17                // CONNECT, remaining length 23
         00 04 4D 51 54 54 05 // \"MQTT\" level 5
         02                   // clean start
         00 1E                // keep alive 30
         08                   // property length 8
         11 00 00 00 78       // session expiry interval 120
         21 00 14             // receive maximum 20
         00 02 76 35          // client id \"v5\"",
    );
    let mut c = Connect::new(Protocol::V5, "w");
    c.keep_alive = 0;
    c.will = Some(LastWill {
        topic: "t".into(),
        payload: b"x".to_vec(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(5),
            ..props()
        },
    });
    check(
        "5.0 CONNECT with will properties",
        Protocol::V5,
        Packet::Connect(c),
        "10 1A                // CONNECT, remaining length 26
         00 04 4D 51 54 54 05 // \"MQTT\" level 5
         06                   // will 0x04 | clean start 0x02
         00 00                // keep alive 0
         00                   // no CONNECT properties
         00 01 77             // client id \"w\"
         05 18 00 00 00 05    // will properties: length 5, will delay interval 5
         00 01 74             // will topic \"t\"
         00 01 78             // will payload \"x\"",
    );
}

#[test]
fn connack_all_versions() {
    check(
        "3.1 CONNACK not authorized",
        Protocol::V31,
        Packet::ConnAck(ConnAck::new(5)),
        "20 02 00 05 // CONNACK, length 2, reserved byte, return code 5",
    );
    check(
        "3.1.1 CONNACK session present",
        Protocol::V311,
        Packet::ConnAck(ConnAck {
            session_present: true,
            ..ConnAck::new(0)
        }),
        "20 02 01 00 // session present, accepted",
    );
    check(
        "3.1.1 CONNACK bad user name or password",
        Protocol::V311,
        Packet::ConnAck(ConnAck::new(4)),
        "20 02 00 04",
    );
    check(
        "5.0 CONNACK success",
        Protocol::V5,
        Packet::ConnAck(ConnAck::new(0)),
        "20 03 00 00 00 // flags 0, reason 0, property length 0",
    );
    let mut c = ConnAck::new(0x86);
    c.properties.reason_string = Some("no".into());
    check(
        "5.0 CONNACK bad user name with reason string",
        Protocol::V5,
        Packet::ConnAck(c),
        "20 08 00 86    // flags 0, reason 0x86 bad user name or password
         05 1F 00 02 6E 6F // properties: length 5, reason string \"no\"",
    );
    let mut c = ConnAck {
        session_present: true,
        ..ConnAck::new(0)
    };
    c.properties.topic_alias_maximum = Some(10);
    c.properties.assigned_client_identifier = Some("a".into());
    check(
        "5.0 CONNACK with properties",
        Protocol::V5,
        Packet::ConnAck(c),
        "20 0A 01 00    // session present, success
         07             // property length 7
         12 00 01 61    // assigned client identifier \"a\"
         22 00 0A       // topic alias maximum 10",
    );
}

#[test]
fn publish_all_versions() {
    for v in [Protocol::V31, Protocol::V311] {
        check(
            "PUBLISH QoS 0",
            v,
            Packet::Publish(Publish::new("a/b", b"hi".to_vec())),
            "30 07 00 03 61 2F 62 68 69 // QoS 0, topic \"a/b\", payload \"hi\"",
        );
        check(
            "PUBLISH QoS 1 retain",
            v,
            Packet::Publish(Publish {
                qos: QoS::AtLeastOnce,
                retain: true,
                packet_id: Some(10),
                ..Publish::new("a/b", b"hi".to_vec())
            }),
            "33 09 00 03 61 2F 62 00 0A 68 69 // 0x30 | QoS 1 << 1 | retain, packet id 10",
        );
        check(
            "PUBLISH QoS 2 dup",
            v,
            Packet::Publish(Publish {
                qos: QoS::ExactlyOnce,
                dup: true,
                packet_id: Some(11),
                ..Publish::new("a/b", b"hi".to_vec())
            }),
            "3C 09 00 03 61 2F 62 00 0B 68 69 // 0x30 | DUP 0x08 | QoS 2 << 1, packet id 11",
        );
    }
    check(
        "5.0 PUBLISH QoS 1",
        Protocol::V5,
        Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            packet_id: Some(7),
            ..Publish::new("a/b", b"hi".to_vec())
        }),
        "32 0A 00 03 61 2F 62 00 07 00 68 69 // topic, packet id 7, no properties, \"hi\"",
    );
    let mut p = Publish::new("", b"x".to_vec());
    p.properties.topic_alias = Some(5);
    check(
        "5.0 PUBLISH empty topic with alias",
        Protocol::V5,
        Packet::Publish(p),
        "30 07 00 00 03 23 00 05 78 // empty topic, properties: topic alias 5, payload \"x\"",
    );
    let mut p = Publish::new("t", b"{}".to_vec());
    p.properties.payload_format_indicator = Some(true);
    p.properties.message_expiry_interval = Some(60);
    p.properties.user_properties.push(("k".into(), "v".into()));
    check(
        "5.0 PUBLISH with properties",
        Protocol::V5,
        Packet::Publish(p),
        "30 14 00 01 74       // QoS 0, remaining 20, topic \"t\"
         0E                   // property length 14
         01 01                // payload format indicator: UTF-8
         02 00 00 00 3C       // message expiry interval 60
         26 00 01 6B 00 01 76 // user property k = v
         7B 7D                // payload \"{}\"",
    );
}

#[test]
fn publish_acks_all_versions() {
    for v in [Protocol::V31, Protocol::V311, Protocol::V5] {
        check("PUBACK", v, Packet::PubAck(PubAck::new(10)), "40 02 00 0A");
        check("PUBREC", v, Packet::PubRec(PubRec::new(10)), "50 02 00 0A");
        check(
            "PUBREL",
            v,
            Packet::PubRel(PubRel::new(10)),
            "62 02 00 0A // flags 0b0010",
        );
        check(
            "PUBCOMP",
            v,
            Packet::PubComp(PubComp::new(10)),
            "70 02 00 0A",
        );
    }
    check(
        "5.0 PUBACK no matching subscribers",
        Protocol::V5,
        Packet::PubAck(PubAck {
            code: 0x10,
            ..PubAck::new(10)
        }),
        "40 03 00 0A 10 // reason code without properties",
    );
    let mut r = PubRec {
        code: 0x80,
        ..PubRec::new(10)
    };
    r.properties.reason_string = Some("x".into());
    check(
        "5.0 PUBREC error with reason string",
        Protocol::V5,
        Packet::PubRec(r),
        "50 08 00 0A 80 04 1F 00 01 78 // id 10, unspecified error, props: reason string \"x\"",
    );
    check(
        "5.0 PUBREL packet id not found",
        Protocol::V5,
        Packet::PubRel(PubRel {
            code: 0x92,
            ..PubRel::new(10)
        }),
        "62 03 00 0A 92",
    );
    check(
        "5.0 PUBCOMP packet id not found",
        Protocol::V5,
        Packet::PubComp(PubComp {
            code: 0x92,
            ..PubComp::new(10)
        }),
        "70 03 00 0A 92",
    );
}

#[test]
fn subscribe_suback_all_versions() {
    for v in [Protocol::V31, Protocol::V311] {
        let s = Subscribe {
            dup: false,
            packet_id: 3,
            filters: vec![
                SubscribeFilter::new("a/#", QoS::AtLeastOnce),
                SubscribeFilter::new("b/+/c", QoS::ExactlyOnce),
            ],
            properties: props(),
        };
        check(
            "SUBSCRIBE two filters",
            v,
            Packet::Subscribe(s),
            "82 10                   // SUBSCRIBE flags 0b0010, remaining 16
             00 03                   // packet id 3
             00 03 61 2F 23 01       // \"a/#\" QoS 1
             00 05 62 2F 2B 2F 63 02 // \"b/+/c\" QoS 2",
        );
        check(
            "SUBACK",
            v,
            Packet::SubAck(SubAck {
                packet_id: 3,
                codes: vec![1, 2, 0x80],
                properties: props(),
            }),
            "90 05 00 03 01 02 80 // granted 1, granted 2, failure",
        );
        check(
            "UNSUBSCRIBE",
            v,
            Packet::Unsubscribe(Unsubscribe {
                dup: false,
                packet_id: 4,
                filters: vec!["a/#".into(), "b".into()],
                properties: props(),
            }),
            "A2 0A 00 04 00 03 61 2F 23 00 01 62 // flags 0b0010, id 4, \"a/#\", \"b\"",
        );
        check(
            "UNSUBACK",
            v,
            Packet::UnsubAck(UnsubAck::new(4)),
            "B0 02 00 04",
        );
    }
    let mut s = Subscribe {
        dup: false,
        packet_id: 3,
        filters: vec![SubscribeFilter {
            filter: "t".into(),
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::DoNotSend,
        }],
        properties: props(),
    };
    s.properties.subscription_identifiers.push(5);
    check(
        "5.0 SUBSCRIBE with options",
        Protocol::V5,
        Packet::Subscribe(s),
        "82 09 00 03 // id 3
         02 0B 05    // properties: subscription identifier 5
         00 01 74 2D // \"t\", options: QoS 1 | no local 0x04 | RAP 0x08 | retain handling 2 << 4",
    );
    check(
        "5.0 SUBACK",
        Protocol::V5,
        Packet::SubAck(SubAck {
            packet_id: 3,
            codes: vec![0x00, 0x97, 0xA2],
            properties: props(),
        }),
        "90 06 00 03 00 00 97 A2 // id, no properties, granted 0, quota exceeded, wildcards unsupported",
    );
    check(
        "5.0 UNSUBSCRIBE",
        Protocol::V5,
        Packet::Unsubscribe(Unsubscribe::new(4, "a")),
        "A2 06 00 04 00 00 01 61",
    );
    check(
        "5.0 UNSUBACK",
        Protocol::V5,
        Packet::UnsubAck(UnsubAck {
            packet_id: 4,
            codes: vec![0x00, 0x11],
            properties: props(),
        }),
        "B0 05 00 04 00 00 11 // id 4, no properties, success, no subscription existed",
    );
}

/// MQTT 3.1 sets DUP on a re-delivered PUBREL, SUBSCRIBE or UNSUBSCRIBE (MQTT 3.1 §2.1
/// "DUP", §4.2 "Message delivery retry":
/// <http://public.dhe.ibm.com/software/dw/webservices/ws-mqtt/mqtt-v3r1.html>). Fails on the
/// old code, which applied the 3.1.1 rule (flags fixed at 0b0010) to 3.1 and rejected `6A`.
#[test]
fn mqtt31_dup_on_pubrel_subscribe_unsubscribe() {
    check(
        "3.1 PUBREL re-delivered",
        Protocol::V31,
        Packet::PubRel(PubRel {
            dup: true,
            ..PubRel::new(1)
        }),
        "6A 02 00 01 // PUBREL, DUP + QoS 1, id 1",
    );
    check(
        "3.1 SUBSCRIBE re-delivered",
        Protocol::V31,
        Packet::Subscribe(Subscribe {
            dup: true,
            ..Subscribe::new(2, "a", QoS::AtLeastOnce)
        }),
        "8A 06 00 02 00 01 61 01",
    );
    check(
        "3.1 UNSUBSCRIBE re-delivered",
        Protocol::V31,
        Packet::Unsubscribe(Unsubscribe {
            dup: true,
            ..Unsubscribe::new(3, "a")
        }),
        "AA 05 00 03 00 01 61",
    );
    // 3.1.1 and 5.0 keep the fixed flags: DUP there is malformed, and not encoded.
    for v in [Protocol::V311, Protocol::V5] {
        let e = decode(&hex("6A 02 00 01"), v).unwrap_err();
        assert_eq!(e.field(), "PUBREL fixed header flags", "{v}");
        assert!(
            e.message()
                .contains("DUP on PUBREL exists only in MQTT 3.1"),
            "{e}"
        );
        let p = Packet::PubRel(PubRel {
            dup: true,
            ..PubRel::new(1)
        });
        let e = p.encode(v).unwrap_err();
        assert_eq!(e.field(), "PUBREL dup", "{v}");
    }
    // In 3.1 the other bits stay fixed: QoS 1, no RETAIN.
    for first in [0x60u8, 0x68, 0x63, 0x6B, 0x64] {
        assert!(
            decode(&[first, 2, 0, 1], Protocol::V31).is_err(),
            "{first:02X}"
        );
    }
    // Nothing else gains a DUP flag in 3.1.
    assert!(decode(&hex("48 02 00 01"), Protocol::V31).is_err());
}

#[test]
fn ping_disconnect_auth() {
    for v in [Protocol::V31, Protocol::V311, Protocol::V5] {
        check("PINGREQ", v, Packet::PingReq, "C0 00");
        check("PINGRESP", v, Packet::PingResp, "D0 00");
        check(
            "DISCONNECT",
            v,
            Packet::Disconnect(Disconnect::default()),
            "E0 00",
        );
    }
    check(
        "5.0 DISCONNECT with will",
        Protocol::V5,
        Packet::Disconnect(Disconnect {
            code: 0x04,
            properties: props(),
        }),
        "E0 01 04",
    );
    let mut d = Disconnect {
        code: 0x8E,
        properties: props(),
    };
    d.properties.reason_string = Some("ok".into());
    check(
        "5.0 DISCONNECT session taken over",
        Protocol::V5,
        Packet::Disconnect(d),
        "E0 07 8E 05 1F 00 02 6F 6B",
    );
    check(
        "5.0 AUTH success",
        Protocol::V5,
        Packet::Auth(Auth::default()),
        "F0 00",
    );
    let mut a = Auth {
        code: 0x18,
        properties: props(),
    };
    a.properties.authentication_method = Some("SCRAM".into());
    a.properties.authentication_data = Some(vec![1, 2]);
    check(
        "5.0 AUTH continue",
        Protocol::V5,
        Packet::Auth(a),
        "F0 0F 18                   // AUTH, remaining 15, continue authentication
         0D                         // property length 13
         15 00 05 53 43 52 41 4D    // authentication method \"SCRAM\"
         16 00 02 01 02             // authentication data 01 02",
    );
}

#[test]
fn remaining_length_boundaries_header_encoder() {
    for (len, bytes) in [
        (0usize, "00"),
        (127, "7F"),
        (128, "80 01"),
        (16_383, "FF 7F"),
        (16_384, "80 80 01"),
        (2_097_151, "FF FF 7F"),
        (2_097_152, "80 80 80 01"),
        (268_435_455, "FF FF FF 7F"),
    ] {
        let b = hex(bytes);
        assert_eq!(encode_remaining_length(len).unwrap(), b, "encode {len}");
        let mut packet = vec![0x30];
        packet.extend_from_slice(&b);
        let h = FixedHeader::parse(&packet, Protocol::V311)
            .unwrap()
            .unwrap();
        assert_eq!(h.remaining_length, len);
        assert_eq!(h.header_len, 1 + b.len());
        // Until the body is there, the packet is incomplete (not an error).
        if len > 0 {
            assert_eq!(decode(&packet, Protocol::V311), Ok(None));
        }
    }
    let e = encode_remaining_length(268_435_456).unwrap_err();
    assert_eq!(e.field(), "remaining length");
    // Non-minimal and overlong encodings are rejected.
    let e = decode(&hex("30 80 00"), Protocol::V311).unwrap_err();
    assert_eq!((e.offset(), e.field()), (2, "PUBLISH remaining length"));
    let e = decode(&hex("30 FF FF FF FF 01"), Protocol::V311).unwrap_err();
    assert_eq!((e.offset(), e.field()), (4, "PUBLISH remaining length"));
}

#[test]
fn remaining_length_boundaries_real_packets() {
    // PUBLISH QoS 0 to "t": remaining length = 3 (topic) + payload length.
    for (remaining, header) in [
        (127usize, "30 7F"),
        (128, "30 80 01"),
        (16_383, "30 FF 7F"),
        (16_384, "30 80 80 01"),
        (2_097_151, "30 FF FF 7F"),
        (2_097_152, "30 80 80 80 01"),
    ] {
        let payload: Vec<u8> = (0..remaining - 3).map(|i| (i % 251) as u8).collect();
        let p = Packet::Publish(Publish::new("t", payload));
        let bytes = p.encode(Protocol::V311).unwrap();
        let head = hex(header);
        assert_eq!(&bytes[..head.len()], &head[..], "header for {remaining}");
        assert_eq!(&bytes[head.len()..head.len() + 3], &[0x00, 0x01, b't']);
        assert_eq!(bytes.len(), head.len() + remaining);
        let (d, n) = decode(&bytes, Protocol::V311).unwrap().unwrap();
        assert_eq!((d, n), (p, bytes.len()));
    }
}
