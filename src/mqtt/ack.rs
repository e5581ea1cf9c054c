//! The shared layout of PUBACK, PUBREC, PUBREL and PUBCOMP (spec 3.4 to 3.7): packet id, then
//! in 5.0 an optional reason code and optional properties.

use super::error::{DecodeError, EncodeError};
use super::primitives::{Reader, put_u16};
use super::properties::{Context, Properties};
use super::reason::{allowed_codes, list};
use super::{PacketType, Protocol};

pub(crate) fn validate(
    t: PacketType,
    ctx: Context,
    packet_id: u16,
    code: u8,
    props: &Properties,
    protocol: Protocol,
) -> Result<(), EncodeError> {
    let name = t.name();
    if packet_id == 0 {
        return Err(EncodeError::new(
            format!("{name} packet id"),
            "must not be 0",
        ));
    }
    if protocol != Protocol::V5 {
        if code != 0 {
            return Err(EncodeError::new(
                format!("{name} reason code"),
                format!(
                    "reason codes exist only in MQTT 5.0, encoding MQTT {}",
                    protocol.name()
                ),
            ));
        }
    } else if !allowed_codes(t, protocol).contains(&code) {
        return Err(EncodeError::new(
            format!("{name} reason code"),
            format!(
                "0x{code:02X} is not a {name} reason code (allowed: {})",
                list(allowed_codes(t, protocol))
            ),
        ));
    }
    props.validate(ctx, protocol, name)
}

pub(crate) fn write(
    packet_id: u16,
    code: u8,
    props: &Properties,
    protocol: Protocol,
    out: &mut Vec<u8>,
) {
    put_u16(out, packet_id);
    if protocol == Protocol::V5 && (code != 0 || !props.is_empty()) {
        out.push(code);
        if !props.is_empty() {
            props.write(out);
        }
    }
}

pub(crate) fn decode(
    r: &mut Reader<'_>,
    t: PacketType,
    ctx: Context,
    protocol: Protocol,
) -> Result<(u16, u8, Properties), DecodeError> {
    let id_at = r.offset();
    let packet_id = r.u16("packet id")?;
    if packet_id == 0 {
        return Err(r.err(id_at, "packet id", "must not be 0"));
    }
    if protocol != Protocol::V5 || r.remaining() == 0 {
        return Ok((packet_id, 0, Properties::default()));
    }
    let code_at = r.offset();
    let code = r.u8("reason code")?;
    let allowed = allowed_codes(t, protocol);
    if !allowed.contains(&code) {
        return Err(r.err(
            code_at,
            "reason code",
            format!(
                "0x{code:02X} is not a {} reason code (allowed: {})",
                t.name(),
                list(allowed)
            ),
        ));
    }
    let props = if r.remaining() > 0 {
        Properties::decode(r, ctx)?
    } else {
        Properties::default()
    };
    Ok((packet_id, code, props))
}
