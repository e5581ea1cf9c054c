//! `sim7k mqtt encode|decode|follow`: the clap definitions, and their lowering onto the
//! library ([`crate::mqtt`] builds and lists packets, [`crate::follow`] reads transcripts).
//!
//! Exit codes: 0 done; 2 bad input (hex, bytes that do not decode, a packet that cannot be
//! encoded, a file that is not a transcript or cannot be read); 4 a read or write failing
//! mid-stream. A reader of stdout that goes away (`sim7k mqtt decode … | head -1`) is not a
//! failure: printing stops and the exit code is 0, as with `ripgrep` and other tools meant
//! for pipelines (a 141 would fail a `set -o pipefail` script for asking for less output).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::exit::Exit;
use crate::follow::{FollowOptions, Format};
use crate::mqtt::{
    Auth, ConnAck, Connect, Disconnect, LastWill, ListOptions, Packet, Properties, Protocol,
    PubAck, PubComp, PubRec, PubRel, Publish, QoS, RetainHandling, SubAck, Subscribe,
    SubscribeFilter, ToolError, UnsubAck, Unsubscribe, WarningKind,
};
use crate::util::hex::hex;

/// Exit codes of `sim7k mqtt`, for its help.
pub(super) const MQTT_EXIT_CODES: &str = "\
Exit codes:
  0    done (also when the reader of the output went away, e.g. `| head -1`)
  2    bad input: not hex, bytes that do not decode, a packet that cannot be encoded, a file
       that cannot be read or is not a transcript
  4    reading the input or writing the output failed";

/// `sim7k mqtt <cmd>`.
#[derive(Subcommand, Debug, Clone)]
pub(super) enum MqttCommand {
    /// Encode one MQTT packet and print it as hex.
    #[command(after_help = MQTT_EXIT_CODES)]
    Encode(EncodeArgs),
    /// Decode hex bytes (one packet or a stream of packets) and print every field.
    #[command(disable_version_flag = true, after_help = MQTT_EXIT_CODES)]
    Decode(DecodeArgs),
    /// Rebuild the MQTT conversation of a sim7k transcript (`--transcript FILE`): every packet
    /// sent through AT+CIPSEND and received from the modem, decoded, in order, with times.
    #[command(disable_version_flag = true, after_help = MQTT_EXIT_CODES)]
    Follow(FollowArgs),
}

/// Arguments of `sim7k mqtt encode`.
#[derive(Args, Debug, Clone)]
pub(super) struct EncodeArgs {
    /// The packet to encode.
    #[command(subcommand)]
    pub packet: EncodePacket,
}

/// Options every `encode` packet takes.
#[derive(Args, Debug, Clone)]
pub(super) struct CommonArgs {
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
pub(super) struct HexBytes(pub Vec<u8>);

fn parse_hex_arg(s: &str) -> Result<HexBytes, String> {
    crate::util::hex::parse_hex(s)
        .map(HexBytes)
        .map_err(|e| e.to_string())
}

/// The packet kinds `encode` knows. Each takes `--version` for the MQTT version, so clap's
/// own `--version` flag is disabled on them (it would clash under `propagate_version`).
#[derive(Subcommand, Debug, Clone)]
pub(super) enum EncodePacket {
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

/// The client id `encode connect` uses unless told otherwise: valid in every version (MQTT 3.1
/// needs 1 to 23 characters; an empty id needs a clean session in 3.1.1).
pub(super) const DEFAULT_CLIENT_ID: &str = "sim7k";

/// `encode connect`.
#[derive(Args, Debug, Clone)]
pub(super) struct ConnectArgs {
    /// Client identifier (`""` for none: MQTT 3.1.1 then needs --clean, 3.1 refuses it).
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
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
pub(super) struct ConnackArgs {
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
pub(super) struct PublishArgs {
    /// Topic name.
    #[arg(long)]
    pub topic: String,
    /// Payload (text).
    #[arg(long, conflicts_with_all = ["payload_hex", "payload_file"])]
    pub payload: Option<String>,
    /// Payload (hex bytes).
    #[arg(long, value_parser = parse_hex_arg, conflicts_with = "payload_file")]
    pub payload_hex: Option<HexBytes>,
    /// Payload read from a file (any size, bytes as they are), or `-` for stdin.
    #[arg(long, value_name = "PATH")]
    pub payload_file: Option<PathBuf>,
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
pub(super) struct AckArgs {
    /// Packet identifier.
    #[arg(long)]
    pub packet_id: u16,
    /// MQTT 5.0 reason code, decimal or 0x hex.
    #[arg(long, value_parser = parse_code, default_value = "0")]
    pub code: u8,
    /// MQTT 5.0 reason string.
    #[arg(long)]
    pub reason_string: Option<String>,
    /// DUP flag (PUBREL in MQTT 3.1 only: a re-delivery).
    #[arg(long)]
    pub dup: bool,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode subscribe`.
#[derive(Args, Debug, Clone)]
pub(super) struct SubscribeArgs {
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
    /// DUP flag (MQTT 3.1 only: a re-delivery).
    #[arg(long)]
    pub dup: bool,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode unsubscribe`.
#[derive(Args, Debug, Clone)]
pub(super) struct UnsubscribeArgs {
    /// Topic filter (repeatable).
    #[arg(long = "filter", required = true)]
    pub filters: Vec<String>,
    /// Packet identifier.
    #[arg(long, default_value_t = 1)]
    pub packet_id: u16,
    /// DUP flag (MQTT 3.1 only: a re-delivery).
    #[arg(long)]
    pub dup: bool,
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode suback|unsuback`.
#[derive(Args, Debug, Clone)]
pub(super) struct CodesArgs {
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
pub(super) struct PlainArgs {
    /// Common options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `encode disconnect`.
#[derive(Args, Debug, Clone)]
pub(super) struct DisconnectArgs {
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
pub(super) struct AuthArgs {
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
pub(super) struct DecodeArgs {
    /// Hex bytes (spaces, newlines, `0x` prefixes and `#` comments allowed), or `-` for stdin.
    pub input: String,
    /// MQTT version of non-CONNECT packets: 3.1, 3.1.1 or 5 (a CONNECT in the input sets it).
    #[arg(long = "version", value_name = "VERSION", default_value = "3.1.1", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// Print one JSON object per packet instead of the description.
    #[arg(long)]
    pub json: bool,
    /// Print every byte: long hex, payloads and fields are shortened otherwise (with their
    /// full length shown).
    #[arg(long)]
    pub full: bool,
}

/// Arguments of `sim7k mqtt follow`.
#[derive(Args, Debug, Clone)]
pub(super) struct FollowArgs {
    /// A transcript written by `sim7k run … --transcript FILE` (or `--transcript-dir`), or `-`
    /// for stdin.
    pub transcript: PathBuf,
    /// MQTT version assumed until the transcript's CONNECT says which: 3.1, 3.1.1 or 5.
    #[arg(long = "version", value_name = "VERSION", default_value = "3.1.1", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// Print one JSON object per packet.
    #[arg(long, conflicts_with = "fields")]
    pub json: bool,
    /// Print every field of each packet below its line.
    #[arg(long)]
    pub fields: bool,
    /// Print every byte: payloads and long fields are shortened otherwise.
    #[arg(long)]
    pub full: bool,
}

fn props_with_users(common: &CommonArgs) -> Properties {
    Properties {
        user_properties: common.user_properties.clone(),
        ..Properties::default()
    }
}

/// Read a whole file, or stdin for `-`.
fn read_all(path: &std::path::Path, stdin: &mut dyn Read) -> Result<Vec<u8>, ToolError> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        stdin.read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| ToolError::Input(format!("cannot read {}: {e}", path.display())))?;
    Ok(bytes)
}

/// Build the packet `encode` describes, and its common options.
fn build_packet<'a>(
    p: &'a EncodePacket,
    stdin: &mut dyn Read,
) -> Result<(Packet, &'a CommonArgs), ToolError> {
    Ok(match p {
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
            let payload = match (&a.payload, &a.payload_hex, &a.payload_file) {
                (Some(t), _, _) => t.clone().into_bytes(),
                (None, Some(h), _) => h.0.clone(),
                (None, None, Some(path)) => read_all(path, stdin)?,
                (None, None, None) => Vec::new(),
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
                    dup: a.dup,
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
            if a.dup && !matches!(p, EncodePacket::Pubrel(_)) {
                return Err(ToolError::Input(
                    "--dup exists only on PUBREL (MQTT 3.1) among the acknowledgements".into(),
                ));
            }
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
                    dup: a.dup,
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
                dup: a.dup,
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
    })
}

/// Run `sim7k mqtt <cmd>` with these streams: warnings go to `err`.
pub(super) fn run_with(
    cmd: &MqttCommand,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ToolError> {
    match cmd {
        MqttCommand::Encode(args) => {
            let (packet, common) = build_packet(&args.packet, stdin)?;
            let bytes = if common.unchecked {
                packet.encode_unchecked(common.protocol)
            } else {
                packet.encode(common.protocol)?
            };
            if !common.unchecked {
                for w in packet.warnings(common.protocol) {
                    if w.kind() == WarningKind::Tolerated {
                        let _ = writeln!(err, "warning: {w}");
                    }
                }
            }
            let sep = if common.compact { "" } else { " " };
            writeln!(stdout, "{}", hex(&bytes, sep))?;
        }
        MqttCommand::Decode(args) => {
            let text = if args.input == "-" {
                let mut s = String::new();
                stdin.read_to_string(&mut s)?;
                s
            } else {
                args.input.clone()
            };
            let bytes = crate::mqtt::parse_hex_input(&text)?;
            let opts = ListOptions {
                protocol: args.protocol,
                json: args.json,
                full: args.full,
            };
            crate::mqtt::list_packets(&bytes, &opts, stdout)?;
        }
        MqttCommand::Follow(args) => {
            let opts = FollowOptions {
                protocol: args.protocol,
                format: if args.json {
                    Format::Json
                } else if args.fields {
                    Format::Fields
                } else {
                    Format::Lines
                },
                full: args.full,
            };
            if args.transcript.as_os_str() == "-" {
                crate::follow::follow(stdin, &opts, stdout)?;
            } else {
                let file = std::fs::File::open(&args.transcript).map_err(|e| {
                    ToolError::Input(format!("cannot read {}: {e}", args.transcript.display()))
                })?;
                crate::follow::follow(&mut BufReader::new(file), &opts, stdout)?;
            }
        }
    }
    stdout.flush()?;
    Ok(())
}

/// Run `sim7k mqtt <cmd>` on the process's streams and return its exit code.
pub(super) fn run(cmd: &MqttCommand) -> ExitCode {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let mut stderr = std::io::stderr();
    let result = run_with(cmd, &mut stdin, &mut stdout, &mut stderr);
    // Whatever is still buffered goes out before an error message.
    let flushed = stdout.flush();
    match result {
        Ok(()) => match flushed {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                let _ = writeln!(stderr, "error: I/O error: {e}");
                Exit::Io.into()
            }
            _ => Exit::Success.into(),
        },
        // The reader went away: it wanted no more output; nothing failed.
        Err(e) if e.is_broken_pipe() => Exit::Success.into(),
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            e.kind().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The way the top-level CLI wires it, with clap's own `--version` propagated (the
    /// packet commands take `--version` for the MQTT version instead).
    #[derive(Parser, Debug)]
    #[command(name = "sim7k", version, propagate_version = true)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(Subcommand, Debug)]
    enum Top {
        #[command(subcommand)]
        Mqtt(MqttCommand),
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn follow_reads_stdin_and_warnings_go_to_stderr() {
        let cli = Cli::try_parse_from([
            "sim7k",
            "mqtt",
            "encode",
            "connect",
            "--version",
            "3.1",
            "--client-id",
            "abcdefghijklmnopqrstuvwxyz",
        ])
        .unwrap();
        let Top::Mqtt(cmd) = cli.cmd;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        run_with(&cmd, &mut &b""[..], &mut out, &mut err).unwrap();
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("warning: CONNECT client id: 26 characters"),
            "{err}"
        );
        let cli = Cli::try_parse_from(["sim7k", "mqtt", "follow", "-"]).unwrap();
        let Top::Mqtt(cmd) = cli.cmd;
        let transcript = "   0.001 > AT+CIPSEND=2\\r\n   0.002 < \\r\\n> \n   0.003 > \\xc0\\x00\n";
        let mut out = Vec::new();
        run_with(&cmd, &mut transcript.as_bytes(), &mut out, &mut Vec::new()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("   0.003 -> PINGREQ"), "{out}");
    }
}
