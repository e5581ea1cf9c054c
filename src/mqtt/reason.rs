//! Return codes (MQTT 3.1 / 3.1.1 CONNACK and SUBACK) and MQTT 5.0 reason codes (spec 2.4):
//! which codes each packet may carry and their human text.

use super::{PacketType, Protocol};

/// MQTT 5.0 reason codes allowed in CONNACK.
pub(crate) const CONNACK_V5: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// MQTT 5.0 reason codes allowed in PUBACK and PUBREC.
pub(crate) const PUBACK_V5: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
/// MQTT 5.0 reason codes allowed in PUBREL and PUBCOMP.
pub(crate) const PUBREL_V5: &[u8] = &[0x00, 0x92];
/// MQTT 5.0 reason codes allowed in SUBACK.
pub(crate) const SUBACK_V5: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// MQTT 5.0 reason codes allowed in UNSUBACK.
pub(crate) const UNSUBACK_V5: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
/// MQTT 5.0 reason codes allowed in DISCONNECT.
pub(crate) const DISCONNECT_V5: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
/// MQTT 5.0 reason codes allowed in AUTH.
pub(crate) const AUTH_V5: &[u8] = &[0x00, 0x18, 0x19];
/// MQTT 3.1 / 3.1.1 CONNACK return codes.
pub(crate) const CONNACK_V3: &[u8] = &[0, 1, 2, 3, 4, 5];
/// MQTT 3.1 / 3.1.1 SUBACK return codes.
pub(crate) const SUBACK_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];

/// The codes a packet type may carry in `protocol` (empty: the packet has no code there).
pub fn allowed_codes(packet: PacketType, protocol: Protocol) -> &'static [u8] {
    use PacketType::*;
    if protocol != Protocol::V5 {
        return match packet {
            ConnAck => CONNACK_V3,
            SubAck => SUBACK_V3,
            _ => &[],
        };
    }
    match packet {
        ConnAck => CONNACK_V5,
        PubAck | PubRec => PUBACK_V5,
        PubRel | PubComp => PUBREL_V5,
        SubAck => SUBACK_V5,
        UnsubAck => UNSUBACK_V5,
        Disconnect => DISCONNECT_V5,
        Auth => AUTH_V5,
        _ => &[],
    }
}

/// The spec name of an MQTT 5.0 reason code, as used in `packet`.
pub(crate) fn v5_reason_name(packet: PacketType, code: u8) -> Option<&'static str> {
    Some(match code {
        0x00 => match packet {
            PacketType::Disconnect => "Normal disconnection",
            PacketType::SubAck => "Granted QoS 0",
            _ => "Success",
        },
        0x01 => "Granted QoS 1",
        0x02 => "Granted QoS 2",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x11 => "No subscription existed",
        0x18 => "Continue authentication",
        0x19 => "Re-authenticate",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription Identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => return None,
    })
}

/// The MQTT 3.1 / 3.1.1 CONNACK return code text.
pub(crate) fn v3_connack_text(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "Connection accepted",
        1 => "Connection refused: unacceptable protocol version",
        2 => "Connection refused: identifier rejected",
        3 => "Connection refused: server unavailable",
        4 => "Connection refused: bad user name or password",
        5 => "Connection refused: not authorized",
        _ => return None,
    })
}

/// Human text for a return / reason code of `packet` in `protocol` (always some text).
pub fn reason_text(packet: PacketType, code: u8, protocol: Protocol) -> String {
    let known = if protocol == Protocol::V5 {
        if allowed_codes(packet, protocol).contains(&code) {
            v5_reason_name(packet, code)
        } else {
            None
        }
    } else {
        match (packet, code) {
            (PacketType::ConnAck, c) => v3_connack_text(c),
            (PacketType::SubAck, 0) => Some("Success: maximum QoS 0"),
            (PacketType::SubAck, 1) => Some("Success: maximum QoS 1"),
            (PacketType::SubAck, 2) => Some("Success: maximum QoS 2"),
            (PacketType::SubAck, 0x80) => Some("Failure"),
            (_, 0) => Some("Success"),
            _ => None,
        }
    };
    match known {
        Some(t) => t.to_owned(),
        None => format!("unknown code 0x{code:02X} for {}", packet.name()),
    }
}

/// `"0x87 (Not authorized)"` or `"0x01, 0x02 or 0x80"`-style lists for error messages.
pub(crate) fn list(codes: &[u8]) -> String {
    let v: Vec<String> = codes.iter().map(|c| format!("0x{c:02X}")).collect();
    v.join(", ")
}
