//! PINGREQ and PINGRESP (spec 3.12, 3.13): a fixed header only, remaining length 0. They are
//! the unit variants [`Packet::PingReq`](super::Packet::PingReq) and
//! [`Packet::PingResp`](super::Packet::PingResp).

/// The two bytes of a PINGREQ.
pub const PINGREQ_BYTES: [u8; 2] = [0xC0, 0x00];
/// The two bytes of a PINGRESP.
pub const PINGRESP_BYTES: [u8; 2] = [0xD0, 0x00];
