//! The fixed header (spec 2.1): packet type, flags and the remaining length.

use super::Protocol;
use super::error::{DecodeError, EncodeError};
use super::primitives::{MAX_VARINT, VarInt, parse_varint, put_varint};

/// Largest remaining length MQTT can express: 268,435,455 bytes.
pub const MAX_REMAINING_LENGTH: usize = MAX_VARINT as usize;

/// The DUP flag of the fixed header (bit 3).
pub(crate) const DUP_FLAG: u8 = 0b1000;

/// The 15 MQTT control packet types (value = the upper nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// 1: client asks to connect.
    Connect = 1,
    /// 2: connect acknowledgement.
    ConnAck = 2,
    /// 3: publish message.
    Publish = 3,
    /// 4: publish acknowledgement (QoS 1).
    PubAck = 4,
    /// 5: publish received (QoS 2, step 1).
    PubRec = 5,
    /// 6: publish release (QoS 2, step 2).
    PubRel = 6,
    /// 7: publish complete (QoS 2, step 3).
    PubComp = 7,
    /// 8: subscribe request.
    Subscribe = 8,
    /// 9: subscribe acknowledgement.
    SubAck = 9,
    /// 10: unsubscribe request.
    Unsubscribe = 10,
    /// 11: unsubscribe acknowledgement.
    UnsubAck = 11,
    /// 12: ping request.
    PingReq = 12,
    /// 13: ping response.
    PingResp = 13,
    /// 14: disconnect notification.
    Disconnect = 14,
    /// 15: authentication exchange (MQTT 5.0 only).
    Auth = 15,
}

impl PacketType {
    /// The type for an upper-nibble value 1..=15.
    pub fn from_u8(v: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match v {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The spec's upper-case name, e.g. `"CONNACK"`.
    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
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
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }

    /// The fixed-header flags the spec requires for every type except PUBLISH (MQTT 3.1 also
    /// allows DUP, bit 3, on PUBREL, SUBSCRIBE and UNSUBSCRIBE: see [`FixedHeader::parse`]).
    pub fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

impl std::fmt::Display for PacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// The remaining length (variable header + payload).
    pub remaining_length: usize,
    /// Bytes used by the fixed header itself (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// Size of the whole packet: fixed header plus remaining length.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_length
    }

    /// Parse a fixed header at the start of `buf`. `Ok(None)`: more bytes are needed.
    ///
    /// Checks the packet type (0 is reserved, AUTH needs 5.0), the flags, the remaining length
    /// encoding (at most 4 bytes, minimal) and, for packets of fixed size, the length itself,
    /// so garbage is reported as early as possible.
    pub fn parse(buf: &[u8], protocol: Protocol) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let nibble = first >> 4;
        let flags = first & 0x0F;
        let Some(packet_type) = PacketType::from_u8(nibble) else {
            return Err(DecodeError::new(
                0,
                "fixed header packet type",
                format!("reserved packet type 0 (first byte 0x{first:02X})"),
            ));
        };
        let name = packet_type.name();
        if packet_type == PacketType::Auth && protocol != Protocol::V5 {
            return Err(DecodeError::new(
                0,
                "fixed header packet type",
                format!(
                    "AUTH (type 15) exists only in MQTT 5.0, decoding MQTT {}",
                    protocol.name()
                ),
            ));
        }
        match packet_type.required_flags() {
            // MQTT 3.1 sets DUP (bit 3) on a re-delivered PUBREL, SUBSCRIBE or UNSUBSCRIBE
            // (MQTT 3.1 §2.1 "DUP", §4.2 "Message delivery retry"); 3.1.1 and 5.0 fixed these
            // flags at 0b0010 ([MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]).
            Some(0b0010) if flags == 0b0010 | DUP_FLAG && protocol == Protocol::V31 => {}
            Some(req) if flags != req => {
                let hint = if flags == req | DUP_FLAG && req != 0 {
                    format!(
                        "; DUP on {name} exists only in MQTT 3.1, decoding MQTT {}",
                        protocol.name()
                    )
                } else if req != 0 && protocol == Protocol::V31 {
                    " (0xA with DUP in MQTT 3.1)".to_owned()
                } else {
                    String::new()
                };
                return Err(DecodeError::new(
                    0,
                    format!("{name} fixed header flags"),
                    format!(
                        "reserved flags must be 0x{req:X}, got 0x{flags:X} (first byte 0x{first:02X}){hint}"
                    ),
                ));
            }
            Some(_) => {}
            None => {
                let qos = (flags >> 1) & 0b11;
                if qos == 3 {
                    return Err(DecodeError::new(
                        0,
                        "PUBLISH QoS",
                        format!("QoS 3 is invalid (first byte 0x{first:02X})"),
                    ));
                }
                if qos == 0 && flags & 0b1000 != 0 {
                    return Err(DecodeError::new(
                        0,
                        "PUBLISH DUP flag",
                        format!("DUP must be 0 for QoS 0 (first byte 0x{first:02X})"),
                    ));
                }
            }
        }
        let field = format!("{name} remaining length");
        let (remaining_length, used) = match parse_varint(buf.get(1..).unwrap_or_default()) {
            VarInt::Value(v, n) => (v as usize, n),
            VarInt::Incomplete => return Ok(None),
            VarInt::TooLong => {
                return Err(DecodeError::new(
                    4,
                    field,
                    "more than 4 bytes (the 4th byte has the continuation bit set)",
                ));
            }
            VarInt::NonMinimal(n) => {
                return Err(DecodeError::new(
                    n,
                    field,
                    format!("not minimally encoded ({n} bytes where fewer suffice)"),
                ));
            }
        };
        if let Some(expected) = fixed_remaining_length(packet_type, protocol)
            && remaining_length != expected
        {
            return Err(DecodeError::new(
                1,
                field,
                format!(
                    "{name} has remaining length {expected} in MQTT {}, got {remaining_length}",
                    protocol.name()
                ),
            ));
        }
        Ok(Some(FixedHeader {
            packet_type,
            flags,
            remaining_length,
            header_len: 1 + used,
        }))
    }
}

/// The remaining length a packet type must have when it is fixed for the protocol.
fn fixed_remaining_length(t: PacketType, protocol: Protocol) -> Option<usize> {
    use PacketType::*;
    match t {
        PingReq | PingResp => Some(0),
        _ if protocol == Protocol::V5 => None,
        ConnAck | PubAck | PubRec | PubRel | PubComp | UnsubAck => Some(2),
        Disconnect => Some(0),
        _ => None,
    }
}

/// The 1 to 4 bytes encoding `len` as a remaining length (minimal encoding).
pub fn encode_remaining_length(len: usize) -> Result<Vec<u8>, EncodeError> {
    if len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::new(
            "remaining length",
            format!("{len} exceeds the maximum of {MAX_REMAINING_LENGTH}"),
        ));
    }
    let mut out = Vec::with_capacity(4);
    put_varint(&mut out, len);
    Ok(out)
}

/// Wrap a body into a packet: first byte, remaining length, body.
pub(crate) fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    put_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out
}
