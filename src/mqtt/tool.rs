//! `sim7k mqtt encode|decode`: the logic behind the CLI subcommands.
//!
//! The lead wires [`MqttCommand`] into the top-level clap enum and calls [`run`].

use std::io::{Read, Write};

use clap::{Args, Subcommand};

use super::error::{DecodeError, EncodeError};
use super::header::{FixedHeader, MAX_REMAINING_LENGTH};
use super::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, Properties, Protocol, PubAck, PubComp,
    PubRec, PubRel, Publish, QoS, RetainHandling, StreamDecoder, SubAck, Subscribe,
    SubscribeFilter, UnsubAck, Unsubscribe,
};
use crate::util::hex::hex;

/// `sim7k mqtt <cmd>`.
#[derive(Subcommand, Debug, Clone)]
pub enum MqttCommand {
    /// Encode one MQTT packet and print it as hex.
    Encode(EncodeArgs),
    /// Decode hex bytes (one packet or a stream of packets) and print every field.
    #[command(disable_version_flag = true)]
    Decode(DecodeArgs),
}

/// Arguments of `sim7k mqtt encode`.
#[derive(Args, Debug, Clone)]
pub struct EncodeArgs {
    /// The packet to encode.
    #[command(subcommand)]
    pub packet: EncodePacket,
}

/// Options every `encode` packet takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// MQTT version: 3.1, 3.1.1 or 5.
    #[arg(long = "version", value_name = "VERSION", default_value = "3.1.1", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// Print hex without spaces.
    #[arg(long)]
    pub compact: bool,
    /// Skip every check (build a deliberately invalid packet for negative tests).
    #[arg(long)]
    pub unchecked: bool,
    /// MQTT 5.0 user property NAME=VALUE (repeatable).
    #[arg(long = "user-property", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub user_properties: Vec<(String, String)>,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse()
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got '{s}'"))
}

fn parse_qos(s: &str) -> Result<QoS, String> {
    s.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("QoS must be 0, 1 or 2, got '{s}'"))
}

fn parse_code(s: &str) -> Result<u8, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u8::from_str_radix(h, 16),
        None => t.parse::<u8>(),
    };
    r.map_err(|_| format!("expected a code 0..255 or 0x00..0xFF, got '{s}'"))
}

/// Bytes given as hex on the command line (a newtype so clap takes one value, not a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

fn parse_hex_arg(s: &str) -> Result<HexBytes, String> {
    parse_hex(s).map(HexBytes).map_err(|e| e.to_string())
}

/// The packet kinds `encode` knows. Each takes `--version` for the MQTT version, so clap's
/// own `--version` flag is disabled on them (it would clash under `propagate_version`).
#[derive(Subcommand, Debug, Clone)]
pub enum EncodePacket {
    /// CONNECT.
    #[command(disable_version_flag = true)]
    Connect(ConnectArgs),
    /// CONNACK.
    #[command(disable_version_flag = true)]
    Connack(ConnackArgs),
    /// PUBLISH.
    #[command(disable_version_flag = true)]
    Publish(PublishArgs),
    /// PUBACK.
    #[command(disable_version_flag = true)]
    Puback(AckArgs),
    /// PUBREC.
    #[command(disable_version_flag = true)]
    Pubrec(AckArgs),
    /// PUBREL.
    #[command(disable_version_flag = true)]
    Pubrel(AckArgs),
    /// PUBCOMP.
    #[command(disable_version_flag = true)]
    Pubcomp(AckArgs),
    /// SUBSCRIBE.
    #[command(disable_version_flag = true)]
    Subscribe(SubscribeArgs),
    /// SUBACK.
    #[command(disable_version_flag = true)]
    Suback(CodesArgs),
    /// UNSUBSCRIBE.
    #[command(disable_version_flag = true)]
    Unsubscribe(UnsubscribeArgs),
    /// UNSUBACK.
    #[command(disable_version_flag = true)]
    Unsuback(CodesArgs),
    /// PINGREQ.
    #[command(disable_version_flag = true)]
    Pingreq(PlainArgs),
    /// PINGRESP.
    #[command(disable_version_flag = true)]
    Pingresp(PlainArgs),
    /// DISCONNECT.
    #[command(disable_version_flag = true)]
    Disconnect(DisconnectArgs),
    /// AUTH (MQTT 5.0).
    #[command(disable_version_flag = true)]
    Auth(AuthArgs),
}

/// `encode connect`.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Client identifier.
    #[arg(long, default_value = "")]
    pub client_id: String,
    /// User name.
    #[arg(long)]
    pub username: Option<String>,
    /// Password (text).
    #[arg(long, conflicts_with = "password_hex")]
    pub password: Option<String>,
    /// Password (hex bytes).
    #[arg(long, value_parser = parse_hex_arg)]
    pub password_hex: Option<HexBytes>,
    /// Keep alive in seconds.
    #[arg(long, default_value_t = 60)]
    pub keep_alive: u16,
    /// Clean session (3.1, 3.1.1) / clean start (5.0).
    #[arg(long)]
    pub clean: bool,
    /// Will topic (enables the will).
    #[arg(long)]
    pub will_topic: Option<String>,
    /// Will payload (text).
    #[arg(long, requires = "will_topic")]
    pub will_payload: Option<String>,
    /// Will QoS.
    #[arg(long, value_parser = parse_qos, default_value = "0", requires = "will_topic")]
    pub will_qos: QoS,
    /// Will retain.
    #[arg(long, requires = "will_topic")]
    pub will_retain: bool,
    /// MQTT 5.0 session expiry interval in seconds.
    #[arg(long)]
    pub session_expiry: Option<u32>,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode connack`.
#[derive(Args, Debug, Clone)]
pub struct ConnackArgs {
    /// Session present flag.
    #[arg(long)]
    pub session_present: bool,
    /// Return code (3.1.1) or reason code (5.0), decimal or 0x hex.
    #[arg(long, value_parser = parse_code, default_value = "0")]
    pub code: u8,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode publish`.
#[derive(Args, Debug, Clone)]
pub struct PublishArgs {
    /// Topic name.
    #[arg(long)]
    pub topic: String,
    /// Payload (text).
    #[arg(long, conflicts_with = "payload_hex")]
    pub payload: Option<String>,
    /// Payload (hex bytes).
    #[arg(long, value_parser = parse_hex_arg)]
    pub payload_hex: Option<HexBytes>,
    /// QoS.
    #[arg(long, value_parser = parse_qos, default_value = "0")]
    pub qos: QoS,
    /// Packet identifier (QoS 1 and 2).
    #[arg(long)]
    pub packet_id: Option<u16>,
    /// RETAIN flag.
    #[arg(long)]
    pub retain: bool,
    /// DUP flag.
    #[arg(long)]
    pub dup: bool,
    /// MQTT 5.0 topic alias.
    #[arg(long)]
    pub topic_alias: Option<u16>,
    /// MQTT 5.0 message expiry interval in seconds.
    #[arg(long)]
    pub message_expiry: Option<u32>,
    /// MQTT 5.0 content type.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode puback|pubrec|pubrel|pubcomp`.
#[derive(Args, Debug, Clone)]
pub struct AckArgs {
    /// Packet identifier.
    #[arg(long)]
    pub packet_id: u16,
    /// MQTT 5.0 reason code, decimal or 0x hex.
    #[arg(long, value_parser = parse_code, default_value = "0")]
    pub code: u8,
    /// MQTT 5.0 reason string.
    #[arg(long)]
    pub reason_string: Option<String>,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode subscribe`.
#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {
    /// Topic filter (repeatable).
    #[arg(long = "filter", required = true)]
    pub filters: Vec<String>,
    /// Requested QoS for every filter.
    #[arg(long, value_parser = parse_qos, default_value = "0")]
    pub qos: QoS,
    /// Packet identifier.
    #[arg(long, default_value_t = 1)]
    pub packet_id: u16,
    /// MQTT 5.0 no local option.
    #[arg(long)]
    pub no_local: bool,
    /// MQTT 5.0 retain as published option.
    #[arg(long)]
    pub retain_as_published: bool,
    /// MQTT 5.0 retain handling (0, 1 or 2).
    #[arg(long, default_value_t = 0)]
    pub retain_handling: u8,
    /// MQTT 5.0 subscription identifier.
    #[arg(long)]
    pub subscription_id: Option<u32>,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode unsubscribe`.
#[derive(Args, Debug, Clone)]
pub struct UnsubscribeArgs {
    /// Topic filter (repeatable).
    #[arg(long = "filter", required = true)]
    pub filters: Vec<String>,
    /// Packet identifier.
    #[arg(long, default_value_t = 1)]
    pub packet_id: u16,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode suback|unsuback`.
#[derive(Args, Debug, Clone)]
pub struct CodesArgs {
    /// Packet identifier.
    #[arg(long)]
    pub packet_id: u16,
    /// Return / reason code (repeatable), decimal or 0x hex.
    #[arg(long = "code", value_parser = parse_code)]
    pub codes: Vec<u8>,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode pingreq|pingresp`.
#[derive(Args, Debug, Clone)]
pub struct PlainArgs {
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode disconnect`.
#[derive(Args, Debug, Clone)]
pub struct DisconnectArgs {
    /// MQTT 5.0 reason code, decimal or 0x hex.
    #[arg(long, value_parser = parse_code, default_value = "0")]
    pub code: u8,
    /// MQTT 5.0 reason string.
    #[arg(long)]
    pub reason_string: Option<String>,
    /// MQTT 5.0 session expiry interval.
    #[arg(long)]
    pub session_expiry: Option<u32>,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode auth`.
#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// Reason code (0x00, 0x18, 0x19).
    #[arg(long, value_parser = parse_code, default_value = "0")]
    pub code: u8,
    /// Authentication method.
    #[arg(long)]
    pub method: Option<String>,
    /// Authentication data (hex).
    #[arg(long, value_parser = parse_hex_arg)]
    pub data_hex: Option<HexBytes>,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `sim7k mqtt decode`.
#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Hex bytes (spaces, newlines, `0x` prefixes and `#` comments allowed), or `-` for stdin.
    pub input: String,
    /// MQTT version of non-CONNECT packets: 3.1, 3.1.1 or 5 (a CONNECT in the input sets it).
    #[arg(long = "version", value_name = "VERSION", default_value = "3.1.1", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// Print one JSON object per packet instead of the description.
    #[arg(long)]
    pub json: bool,
}

/// What `sim7k mqtt` can fail with. Every variant maps to a non-zero exit code.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The hex input is not hex.
    #[error("invalid hex input at character {position}: {message}")]
    Hex {
        /// 0-based character index in the input.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// The input holds no bytes.
    #[error("no bytes to decode")]
    Empty,
    /// The input ends inside a packet.
    #[error(
        "byte {offset}, {packet}: input ends inside the packet ({have} of {need} bytes present)"
    )]
    Truncated {
        /// Offset of the packet's first byte.
        offset: usize,
        /// Packet name, or `fixed header` when even the header is incomplete.
        packet: String,
        /// Bytes present.
        have: usize,
        /// Bytes the packet needs (0 when unknown).
        need: usize,
    },
    /// The packet breaks a rule (strict encoding).
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The bytes break a rule.
    #[error("malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// Reading stdin or writing stdout failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Parse hex (see [`crate::util::hex::parse_hex`]) for the command line.
pub fn parse_hex(input: &str) -> Result<Vec<u8>, ToolError> {
    crate::util::hex::parse_hex(input).map_err(|e| ToolError::Hex {
        position: e.position,
        message: e.message,
    })
}

fn props_with_users(common: &CommonArgs) -> Properties {
    Properties {
        user_properties: common.user_properties.clone(),
        ..Properties::default()
    }
}

/// Build the packet `encode` describes, and the version to encode it in.
pub fn build_packet(p: &EncodePacket) -> (Packet, &CommonArgs) {
    match p {
        EncodePacket::Connect(a) => {
            let mut properties = props_with_users(&a.common);
            properties.session_expiry_interval = a.session_expiry;
            let will = a.will_topic.as_ref().map(|t| LastWill {
                topic: t.clone(),
                payload: a.will_payload.clone().unwrap_or_default().into_bytes(),
                qos: a.will_qos,
                retain: a.will_retain,
                properties: Properties::default(),
            });
            let password = match (&a.password, &a.password_hex) {
                (Some(p), _) => Some(p.clone().into_bytes()),
                (None, Some(h)) => Some(h.0.clone()),
                (None, None) => None,
            };
            let c = Connect {
                protocol: a.common.protocol,
                client_id: a.client_id.clone(),
                clean_session: a.clean,
                keep_alive: a.keep_alive,
                username: a.username.clone(),
                password,
                will,
                properties,
            };
            (Packet::Connect(c), &a.common)
        }
        EncodePacket::Connack(a) => (
            Packet::ConnAck(ConnAck {
                session_present: a.session_present,
                code: a.code,
                properties: props_with_users(&a.common),
            }),
            &a.common,
        ),
        EncodePacket::Publish(a) => {
            let mut properties = props_with_users(&a.common);
            properties.topic_alias = a.topic_alias;
            properties.message_expiry_interval = a.message_expiry;
            properties.content_type = a.content_type.clone();
            let payload = match (&a.payload, &a.payload_hex) {
                (Some(t), _) => t.clone().into_bytes(),
                (None, Some(h)) => h.0.clone(),
                (None, None) => Vec::new(),
            };
            (
                Packet::Publish(Publish {
                    dup: a.dup,
                    qos: a.qos,
                    retain: a.retain,
                    topic: a.topic.clone(),
                    packet_id: a.packet_id,
                    payload,
                    properties,
                }),
                &a.common,
            )
        }
        EncodePacket::Puback(a)
        | EncodePacket::Pubrec(a)
        | EncodePacket::Pubrel(a)
        | EncodePacket::Pubcomp(a) => {
            let mut properties = props_with_users(&a.common);
            properties.reason_string = a.reason_string.clone();
            let (packet_id, code) = (a.packet_id, a.code);
            let packet = match p {
                EncodePacket::Puback(_) => Packet::PubAck(PubAck {
                    packet_id,
                    code,
                    properties,
                }),
                EncodePacket::Pubrec(_) => Packet::PubRec(PubRec {
                    packet_id,
                    code,
                    properties,
                }),
                EncodePacket::Pubrel(_) => Packet::PubRel(PubRel {
                    packet_id,
                    code,
                    properties,
                }),
                _ => Packet::PubComp(PubComp {
                    packet_id,
                    code,
                    properties,
                }),
            };
            (packet, &a.common)
        }
        EncodePacket::Subscribe(a) => {
            let mut properties = props_with_users(&a.common);
            properties
                .subscription_identifiers
                .extend(a.subscription_id);
            let retain_handling = match a.retain_handling {
                1 => RetainHandling::SendIfNewSubscription,
                2 => RetainHandling::DoNotSend,
                _ => RetainHandling::SendAtSubscribe,
            };
            let filters = a
                .filters
                .iter()
                .map(|f| SubscribeFilter {
                    filter: f.clone(),
                    qos: a.qos,
                    no_local: a.no_local,
                    retain_as_published: a.retain_as_published,
                    retain_handling,
                })
                .collect();
            (
                Packet::Subscribe(Subscribe {
                    packet_id: a.packet_id,
                    filters,
                    properties,
                }),
                &a.common,
            )
        }
        EncodePacket::Suback(a) => (
            Packet::SubAck(SubAck {
                packet_id: a.packet_id,
                codes: a.codes.clone(),
                properties: props_with_users(&a.common),
            }),
            &a.common,
        ),
        EncodePacket::Unsubscribe(a) => (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: a.packet_id,
                filters: a.filters.clone(),
                properties: props_with_users(&a.common),
            }),
            &a.common,
        ),
        EncodePacket::Unsuback(a) => (
            Packet::UnsubAck(UnsubAck {
                packet_id: a.packet_id,
                codes: a.codes.clone(),
                properties: props_with_users(&a.common),
            }),
            &a.common,
        ),
        EncodePacket::Pingreq(a) => (Packet::PingReq, &a.common),
        EncodePacket::Pingresp(a) => (Packet::PingResp, &a.common),
        EncodePacket::Disconnect(a) => {
            let mut properties = props_with_users(&a.common);
            properties.reason_string = a.reason_string.clone();
            properties.session_expiry_interval = a.session_expiry;
            (
                Packet::Disconnect(Disconnect {
                    code: a.code,
                    properties,
                }),
                &a.common,
            )
        }
        EncodePacket::Auth(a) => {
            let mut properties = props_with_users(&a.common);
            properties.authentication_method = a.method.clone();
            properties.authentication_data = a.data_hex.as_ref().map(|h| h.0.clone());
            (
                Packet::Auth(Auth {
                    code: a.code,
                    properties,
                }),
                &a.common,
            )
        }
    }
}

/// Run `sim7k mqtt <cmd>`: read stdin when the decode input is `-`, print to `stdout`.
pub fn run(
    cmd: &MqttCommand,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> Result<(), ToolError> {
    match cmd {
        MqttCommand::Encode(args) => {
            let (packet, common) = build_packet(&args.packet);
            let bytes = if common.unchecked {
                packet.encode_unchecked(common.protocol)
            } else {
                packet.encode(common.protocol)?
            };
            writeln!(
                stdout,
                "{}",
                hex(&bytes, if common.compact { "" } else { " " })
            )?;
            Ok(())
        }
        MqttCommand::Decode(args) => {
            let text = if args.input == "-" {
                let mut s = String::new();
                stdin.read_to_string(&mut s)?;
                s
            } else {
                args.input.clone()
            };
            let bytes = parse_hex(&text)?;
            decode_all(&bytes, args.protocol, args.json, stdout)
        }
    }
}

/// Decode every packet of `bytes` and print it; fail on malformed or truncated input (after
/// printing the packets before it).
pub fn decode_all(
    bytes: &[u8],
    protocol: Protocol,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    if bytes.is_empty() {
        return Err(ToolError::Empty);
    }
    let mut dec = StreamDecoder::new(protocol).with_max_packet_size(MAX_REMAINING_LENGTH + 5);
    dec.push(bytes);
    let mut n = 0;
    loop {
        let start = dec.stream_offset();
        let version = dec.protocol();
        match dec.next_packet()? {
            Some(p) => {
                n += 1;
                let len = dec.stream_offset() - start;
                let raw = bytes.get(start..start + len).unwrap_or_default();
                if json {
                    let mut v = p.to_json(p.effective_protocol(version));
                    if let Some(o) = v.as_object_mut() {
                        o.insert("offset".into(), start.into());
                        o.insert("length".into(), len.into());
                    }
                    writeln!(out, "{v}")?;
                } else {
                    if n > 1 {
                        writeln!(out)?;
                    }
                    writeln!(
                        out,
                        "# packet {n}: bytes {start}..{} ({len} bytes, MQTT {}): {}",
                        start + len,
                        p.effective_protocol(version).name(),
                        hex(raw, " ")
                    )?;
                    writeln!(out, "{}", p.describe(version))?;
                }
            }
            None => {
                let have = dec.buffered_len();
                if have == 0 {
                    return Ok(());
                }
                let rest = bytes.get(start..).unwrap_or_default();
                let (packet, need) = match FixedHeader::parse(rest, version) {
                    Ok(Some(h)) => (h.packet_type.name().to_owned(), h.packet_len()),
                    _ => ("fixed header".to_owned(), 0),
                };
                return Err(ToolError::Truncated {
                    offset: start,
                    packet,
                    have,
                    need,
                });
            }
        }
    }
}
