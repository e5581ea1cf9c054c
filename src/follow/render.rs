//! How `sim7k mqtt follow` prints the conversation.
//!
//! Text, one line per packet (`--fields` adds every field below it):
//!
//! ```text
//!    0.007 == connection 1: AT+CIPSTART="TCP","test.mosquitto.org",1883
//!    0.009 -> CONNECT MQTT 3.1.1, client id "sim7k-869951031234564", keep alive 60 s, clean session
//!    0.025 <- CONNACK 0x00 Connection accepted
//! ```
//!
//! `->` is client to broker, `<-` broker to client, `==` a connection event, `!!` bytes that
//! do not decode. JSON: one object per packet (and per undecodable stretch), see
//! [`write_item`].

use std::io::Write;

use serde_json::{Value, json};

use super::{FollowOptions, Item, Summary};
use crate::mqtt::{JSON_SHOWN_BYTES, ToolError};
use crate::util::escape::SHOWN_CHARS;

/// The output format of `sim7k mqtt follow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per packet.
    Lines,
    /// One line per packet, then every field of it.
    Fields,
    /// One JSON object per packet.
    Json,
}

fn arrow(d: super::Direction) -> &'static str {
    match d {
        super::Direction::Sent => "->",
        super::Direction::Received => "<-",
    }
}

/// Write one item. JSON objects carry `time` (seconds), `direction` (`sent`/`received`),
/// `connection`, `offset`, `length`, `protocol`, `redacted`, `warnings` and the packet's
/// fields (as `sim7k mqtt decode --json`); an undecodable stretch has `error` instead of the
/// fields. Connection notes are text only.
pub(super) fn write_item(
    it: &Item,
    opts: &FollowOptions,
    summary: &mut Summary,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    let text_limit = (!opts.full).then_some(SHOWN_CHARS);
    match it {
        Item::Packet(p) => {
            summary.packets += 1;
            if opts.format == Format::Json {
                let mut v = p
                    .packet
                    .to_json_with(p.protocol, (!opts.full).then_some(JSON_SHOWN_BYTES));
                if let Some(o) = v.as_object_mut() {
                    o.insert("time".into(), json!(p.at.seconds));
                    o.insert("direction".into(), json!(p.direction.name()));
                    o.insert("connection".into(), json!(p.connection));
                    o.insert("offset".into(), json!(p.offset));
                    o.insert("length".into(), json!(p.raw.len()));
                    o.insert("protocol".into(), json!(p.protocol.name()));
                    o.insert("redacted".into(), json!(p.redacted));
                    let w: Vec<Value> = p.warnings.iter().map(|w| json!(w.to_string())).collect();
                    o.insert("warnings".into(), Value::Array(w));
                }
                writeln!(out, "{v}")?;
                return Ok(());
            }
            let mut line = format!(
                "{:>8} {} {}",
                p.at.text,
                arrow(p.direction),
                p.packet.summary(p.protocol, text_limit)
            );
            if p.redacted {
                line.push_str("  [redacted in the transcript: * marks hidden bytes]");
            }
            writeln!(out, "{line}")?;
            if opts.format == Format::Fields {
                let fields = p.packet.describe_with(p.protocol, text_limit);
                for f in fields.lines().skip(1) {
                    writeln!(out, "{:>8}    {f}", "")?;
                }
            }
            for w in &p.warnings {
                writeln!(out, "{:>8}    warning: {w}", "")?;
            }
        }
        Item::Undecodable {
            at,
            direction,
            connection,
            offset,
            length,
            reason,
            redacted,
        } => {
            summary.undecodable += 1;
            if opts.format == Format::Json {
                let v = json!({
                    "time": at.seconds,
                    "direction": direction.name(),
                    "connection": connection,
                    "offset": offset,
                    "length": length,
                    "redacted": redacted,
                    "error": reason,
                });
                writeln!(out, "{v}")?;
                return Ok(());
            }
            writeln!(
                out,
                "{:>8} !! {} {length} bytes at offset {offset}: {reason}",
                at.text,
                direction.name()
            )?;
        }
        Item::Note { at, text } => {
            if opts.format != Format::Json {
                writeln!(out, "{:>8} == {text}", at.text)?;
            }
        }
    }
    Ok(())
}
