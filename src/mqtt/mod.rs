//! An MQTT 3.1, 3.1.1 and 5.0 codec: sans-IO, strict, with errors that name the byte and the
//! field.
//!
//! * [`Packet::encode`] builds the bytes of one packet after checking every rule of the spec;
//!   [`Packet::encode_unchecked`] and [`RawPacket`] build deliberately invalid packets for
//!   negative tests.
//! * [`decode`] decodes one packet from the start of a buffer; [`StreamDecoder`] takes bytes as
//!   they arrive (one at a time or many packets at once) and yields packets.
//! * [`Packet::warnings`] says what a server makes of a well-formed packet's values (a CONNECT
//!   it must refuse with CONNACK 0x02, a long MQTT 3.1 client id it commonly tolerates):
//!   anything wrong with the bytes is a [`DecodeError`], never a warning.
//! * [`Packet::describe`], [`Packet::summary`] and [`Packet::to_json`] show the fields the
//!   packet's version has, escaped for a terminal, optionally shortened.
//! * [`list_packets`] is the logic of `sim7k mqtt decode` (the clap definitions live in the
//!   CLI).
//!
//! The protocol version is a parameter: MQTT 5.0 packets carry properties and reason codes.
//! A CONNECT carries its own version (`MQIsdp` level 3, `MQTT` level 4 or 5).
//!
//! The MQTT 3.1 rules cited are from the IBM/Eurotech specification,
//! <http://public.dhe.ibm.com/software/dw/webservices/ws-mqtt/mqtt-v3r1.html>; 3.1.1 and 5.0
//! rules by their OASIS conformance numbers (`[MQTT-3.1.3-8]`).

// One file per packet (and per shared concern); the files are implementation detail; the
// items below are the one public path to everything the codec offers.
mod ack;
mod auth;
mod connack;
mod connect;
mod decoder;
mod describe;
mod disconnect;
mod error;
mod header;
mod listing;
mod ping;
mod primitives;
mod properties;
mod puback;
mod pubcomp;
mod publish;
mod pubrec;
mod pubrel;
mod raw;
mod reason;
mod suback;
mod subscribe;
mod topic;
mod unsuback;
mod unsubscribe;

pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, LastWill};
pub use decoder::{DEFAULT_MAX_PACKET_SIZE, StreamDecoder};
pub use describe::JSON_SHOWN_BYTES;
pub use disconnect::Disconnect;
pub use error::{DecodeError, DecodeErrorKind, EncodeError, Warning, WarningKind};
pub use header::{FixedHeader, MAX_REMAINING_LENGTH, PacketType, encode_remaining_length};
pub use listing::{ListOptions, ToolError, list_packets, parse_hex_input};
pub use properties::{Properties, PropertyValue};
pub use puback::PubAck;
pub use pubcomp::PubComp;
pub use publish::Publish;
pub use pubrec::PubRec;
pub use pubrel::PubRel;
pub use raw::RawPacket;
pub use reason::{allowed_codes, reason_text};
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, SubscribeFilter};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

use primitives::Reader;
use std::fmt;
use std::str::FromStr;

/// The MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    V311,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl Protocol {
    /// The protocol level byte of CONNECT: 3, 4 or 5.
    pub fn level(self) -> u8 {
        match self {
            Protocol::V31 => 3,
            Protocol::V311 => 4,
            Protocol::V5 => 5,
        }
    }

    /// The version as people write it: `"3.1"`, `"3.1.1"` or `"5.0"`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V31 => "3.1",
            Protocol::V311 => "3.1.1",
            Protocol::V5 => "5.0",
        }
    }

    /// The protocol name carried in CONNECT: `"MQIsdp"` for 3.1, `"MQTT"` otherwise.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Protocol::V31 => "MQIsdp",
            _ => "MQTT",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// Accepts `3.1`, `3.1.1`, `5` and `5.0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "3.1" => Ok(Protocol::V31),
            "3.1.1" => Ok(Protocol::V311),
            "5" | "5.0" => Ok(Protocol::V5),
            other => Err(format!(
                "unknown MQTT version '{other}' (expected 3.1, 3.1.1 or 5)"
            )),
        }
    }
}

/// Quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum QoS {
    /// QoS 0.
    #[default]
    AtMostOnce = 0,
    /// QoS 1.
    AtLeastOnce = 1,
    /// QoS 2.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for 0, 1 or 2 (`None` for anything else, 3 included).
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// `"at most once"`, `"at least once"` or `"exactly once"`.
    pub fn description(self) -> &'static str {
        match self {
            QoS::AtMostOnce => "at most once",
            QoS::AtLeastOnce => "at least once",
            QoS::ExactlyOnce => "exactly once",
        }
    }
}

/// One MQTT control packet.
// Packets are handled one at a time, never stored in bulk: boxing CONNECT (two property
// blocks) would only make the API clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client → server).
    Connect(Connect),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PubAck),
    /// PUBREC.
    PubRec(PubRec),
    /// PUBREL.
    PubRel(PubRel),
    /// PUBCOMP.
    PubComp(PubComp),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5.0 only).
    Auth(Auth),
}

macro_rules! from_impls {
    ($($t:ident),*) => {$(
        impl From<$t> for Packet {
            fn from(p: $t) -> Packet {
                Packet::$t(p)
            }
        }
    )*};
}
from_impls!(
    Connect,
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
    Auth
);

impl Packet {
    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The version this packet is encoded in: a CONNECT's own version, else `protocol`.
    pub fn effective_protocol(&self, protocol: Protocol) -> Protocol {
        match self {
            Packet::Connect(c) => c.protocol,
            _ => protocol,
        }
    }

    fn first_byte(&self) -> u8 {
        let dup = match self {
            Packet::PubRel(p) => p.dup,
            Packet::Subscribe(p) => p.dup,
            Packet::Unsubscribe(p) => p.dup,
            _ => false,
        };
        let flags = match self {
            Packet::Publish(p) => p.flags(),
            _ if dup => self.packet_type().required_flags().unwrap_or(0) | header::DUP_FLAG,
            _ => self.packet_type().required_flags().unwrap_or(0),
        };
        ((self.packet_type() as u8) << 4) | flags
    }

    /// What a server makes of this packet's values in `protocol` (see [`Warning`]); empty for
    /// almost every packet. A packet with a [`WarningKind::Refused`] warning decodes, but
    /// [`Packet::encode`] refuses to build it.
    pub fn warnings(&self, _protocol: Protocol) -> Vec<Warning> {
        match self {
            Packet::Connect(c) => c.warnings(),
            _ => Vec::new(),
        }
    }

    /// Check every rule of the spec for this packet in `protocol`.
    pub fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        let protocol = self.effective_protocol(protocol);
        match self {
            Packet::Connect(p) => p.validate(),
            Packet::ConnAck(p) => p.validate(protocol),
            Packet::Publish(p) => p.validate(protocol),
            Packet::PubAck(p) => p.validate(protocol),
            Packet::PubRec(p) => p.validate(protocol),
            Packet::PubRel(p) => p.validate(protocol),
            Packet::PubComp(p) => p.validate(protocol),
            Packet::Subscribe(p) => p.validate(protocol),
            Packet::SubAck(p) => p.validate(protocol),
            Packet::Unsubscribe(p) => p.validate(protocol),
            Packet::UnsubAck(p) => p.validate(protocol),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(p) => p.validate(protocol),
            Packet::Auth(p) => p.validate(protocol),
        }
    }

    fn body(&self, protocol: Protocol) -> Vec<u8> {
        let protocol = self.effective_protocol(protocol);
        let mut out = Vec::new();
        match self {
            Packet::Connect(p) => p.write(&mut out),
            Packet::ConnAck(p) => p.write(protocol, &mut out),
            Packet::Publish(p) => p.write(protocol, &mut out),
            Packet::PubAck(p) => p.write(protocol, &mut out),
            Packet::PubRec(p) => p.write(protocol, &mut out),
            Packet::PubRel(p) => p.write(protocol, &mut out),
            Packet::PubComp(p) => p.write(protocol, &mut out),
            Packet::Subscribe(p) => p.write(protocol, &mut out),
            Packet::SubAck(p) => p.write(protocol, &mut out),
            Packet::Unsubscribe(p) => p.write(protocol, &mut out),
            Packet::UnsubAck(p) => p.write(protocol, &mut out),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(p) => p.write(protocol, &mut out),
            Packet::Auth(p) => p.write(protocol, &mut out),
        }
        out
    }

    /// Encode the packet for `protocol` after checking every rule (a CONNECT uses its own
    /// `protocol` field instead). The error names the offending field.
    pub fn encode(&self, protocol: Protocol) -> Result<Vec<u8>, EncodeError> {
        self.validate(protocol)?;
        let body = self.body(protocol);
        if body.len() > MAX_REMAINING_LENGTH {
            return Err(EncodeError::new(
                format!("{} remaining length", self.packet_type().name()),
                format!(
                    "{} bytes exceed the maximum remaining length of {MAX_REMAINING_LENGTH}",
                    body.len()
                ),
            ));
        }
        Ok(header::frame(self.first_byte(), &body))
    }

    /// Encode **without any check**, for negative tests: wildcards in topics, QoS 0 with a
    /// packet id, packet id 0, properties in 3.1.1, reason codes that do not exist, strings
    /// longer than 65,535 bytes (their length prefix wraps), remaining lengths above the
    /// maximum (more than 4 length bytes)... The layout still follows the packet's fields; for
    /// arbitrary bytes (reserved flags, bad lengths) use [`RawPacket`].
    pub fn encode_unchecked(&self, protocol: Protocol) -> Vec<u8> {
        header::frame(self.first_byte(), &self.body(protocol))
    }
}

/// Decode one packet from the start of `buf`.
///
/// `Ok(None)`: `buf` holds only part of a packet. `Ok(Some((packet, n)))`: the packet used the
/// first `n` bytes. `protocol` decides the layout of every packet but CONNECT (which carries its
/// own version). Error offsets count from the start of `buf`.
pub fn decode(buf: &[u8], protocol: Protocol) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(h) = FixedHeader::parse(buf, protocol)? else {
        return Ok(None);
    };
    let Some(bytes) = buf.get(..h.packet_len()) else {
        return Ok(None);
    };
    Ok(Some((decode_packet(bytes, &h, protocol)?, h.packet_len())))
}

/// Decode a complete packet whose fixed header is `h`.
pub(crate) fn decode_packet(
    bytes: &[u8],
    h: &FixedHeader,
    protocol: Protocol,
) -> Result<Packet, DecodeError> {
    let mut r = Reader::new(bytes, h.header_len, h.packet_type.name());
    // `FixedHeader::parse` let DUP through only where the version has it (MQTT 3.1).
    let dup = h.flags & header::DUP_FLAG != 0;
    let p = match h.packet_type {
        PacketType::Connect => Packet::Connect(Connect::decode(&mut r)?),
        PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(&mut r, protocol)?),
        PacketType::Publish => Packet::Publish(Publish::decode(&mut r, h.flags, protocol)?),
        PacketType::PubAck => Packet::PubAck(PubAck::decode(&mut r, protocol)?),
        PacketType::PubRec => Packet::PubRec(PubRec::decode(&mut r, protocol)?),
        PacketType::PubRel => Packet::PubRel(PubRel {
            dup,
            ..PubRel::decode(&mut r, protocol)?
        }),
        PacketType::PubComp => Packet::PubComp(PubComp::decode(&mut r, protocol)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe {
            dup,
            ..Subscribe::decode(&mut r, protocol)?
        }),
        PacketType::SubAck => Packet::SubAck(SubAck::decode(&mut r, protocol)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe {
            dup,
            ..Unsubscribe::decode(&mut r, protocol)?
        }),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(&mut r, protocol)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut r, protocol)?),
        PacketType::Auth => Packet::Auth(Auth::decode(&mut r, protocol)?),
    };
    r.finish()?;
    Ok(p)
}

/// DUP on PUBREL, SUBSCRIBE and UNSUBSCRIBE exists only in MQTT 3.1 (MQTT 3.1 §2.1, §4.2; in
/// 3.1.1 and 5.0 their flags are fixed at 0b0010).
pub(crate) fn check_dup(t: PacketType, dup: bool, protocol: Protocol) -> Result<(), EncodeError> {
    if dup && protocol != Protocol::V31 {
        return Err(EncodeError::new(
            format!("{} dup", t.name()),
            format!(
                "DUP on {} exists only in MQTT 3.1, encoding MQTT {}",
                t.name(),
                protocol.name()
            ),
        ));
    }
    Ok(())
}
