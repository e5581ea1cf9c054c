//! PINGREQ and PINGRESP (spec 3.12, 3.13): a fixed header only, remaining length 0. They are
//! the unit variants [`Packet::PingReq`](super::Packet::PingReq) and
//! [`Packet::PingResp`](super::Packet::PingResp); this file only says so.
