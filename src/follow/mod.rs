//! `sim7k mqtt follow`: the MQTT conversation inside a sim7k transcript, both ways, in order,
//! with timestamps, like a protocol analyser's "follow stream".
//!
//! A transcript (see [`crate::transcript`]) records every byte sim7k wrote (`>`) and the modem
//! sent (`<`). The follower reads the AT side of it (`modem.rs`): the bytes typed after the
//! prompt of each `AT+CIPSEND` (binary `=<len>` or variable length, hex mode after
//! `AT+CIPSENDHEX=1`; every chunk) are what went to the broker, and the data blocks the AT
//! framer finds in the modem's output (`+CIPRXGET: 2/3,…` reads, `+IPD,<n>:` and
//! `+RECEIVE,…` headers, raw pushed packets after `AT+CIPRXGET=0`) are what came back. Each
//! direction of each TCP connection (`AT+CIPSTART` starts one) is then decoded as MQTT
//! (`stream.rs`); the version comes from the client's CONNECT.
//!
//! Secrets stay redacted: a transcript shows them as `***`. A packet with redacted bytes is
//! decoded with the hidden bytes shown as `*` when their length can be worked out (from the
//! send's announced length, or from the packet's own lengths) and marked `redacted`;
//! otherwise it is reported as "redacted, not decodable".
//!
//! Sans-IO: feed transcript lines to [`Follower::line`], take [`Item`]s;
//! [`follow`] does it from a reader to a writer.

mod entry;
mod live;
mod modem;
mod render;
mod send;
mod stream;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use crate::mqtt::{Packet, Protocol, ToolError, Warning};
use entry::Kind;
use modem::{Event, Modem};
use stream::{Decoded, Stream};

pub use live::LiveView;
pub use render::Format;

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Written by sim7k through the modem: client to broker.
    Sent,
    /// Received from the broker through the modem.
    Received,
}

impl Direction {
    /// `"sent"` or `"received"`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// When something happened: the transcript's timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    /// As written in the transcript (`0.012`).
    pub text: String,
    /// Seconds since the run started.
    pub seconds: f64,
}

/// A decoded packet of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowedPacket {
    /// When its last byte was written or read.
    pub at: Stamp,
    /// Which way it went.
    pub direction: Direction,
    /// TCP connection number (1 for the first `AT+CIPSTART` of the transcript).
    pub connection: u32,
    /// Offset of its first byte in its direction of the connection.
    pub offset: usize,
    /// Its bytes (redacted bytes shown as `*`).
    pub raw: Vec<u8>,
    /// The packet.
    pub packet: Packet,
    /// The version it was decoded in.
    pub protocol: Protocol,
    /// The transcript hid bytes of it (`***`): fields may show `*` for them.
    pub redacted: bool,
    /// What a server makes of its values.
    pub warnings: Vec<Warning>,
}

/// What [`Follower`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A packet.
    Packet(Box<FollowedPacket>),
    /// Bytes that are not a packet: malformed, incomplete, or redacted beyond repair.
    Undecodable {
        /// When.
        at: Stamp,
        /// Which way.
        direction: Direction,
        /// TCP connection number.
        connection: u32,
        /// Offset of the first byte in its direction of the connection.
        offset: usize,
        /// Bytes concerned.
        length: usize,
        /// Why they do not decode.
        reason: String,
        /// The transcript hid bytes in them.
        redacted: bool,
    },
    /// A connection opened or closed.
    Note {
        /// When.
        at: Stamp,
        /// What happened.
        text: String,
    },
}

/// The stamp of a live feed.
fn live_stamp(seconds: f64) -> Stamp {
    Stamp {
        text: format!("{seconds:.3}"),
        seconds,
    }
}

/// One TCP connection's two directions.
#[derive(Debug)]
struct Connection {
    number: u32,
    sent: Stream,
    received: Stream,
}

/// Turns transcript lines into the MQTT conversation.
#[derive(Debug)]
pub struct Follower {
    modem: Modem,
    protocol: Protocol,
    links: BTreeMap<u8, Connection>,
    opened: u32,
    entries: usize,
    last: Stamp,
}

impl Follower {
    /// A follower; `protocol` is the version assumed until a CONNECT says otherwise.
    pub fn new(protocol: Protocol) -> Follower {
        Follower {
            modem: Modem::new(),
            protocol,
            links: BTreeMap::new(),
            opened: 0,
            entries: 0,
            last: Stamp {
                text: "0.000".into(),
                seconds: 0.0,
            },
        }
    }

    /// Transcript entries seen so far (lines that are not entries are skipped).
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Feed one transcript line.
    pub fn line(&mut self, line: &str) -> Vec<Item> {
        let Some(e) = entry::parse_line(line) else {
            return Vec::new();
        };
        self.entries += 1;
        let at = Stamp {
            text: e.stamp,
            seconds: e.seconds,
        };
        self.entry(&e.kind, at)
    }

    /// Feed bytes sim7k wrote to the modem `seconds` after the run started: a live run
    /// followed as it goes (`sim7k run -vv`), without a transcript.
    pub fn written(&mut self, bytes: &[u8], seconds: f64) -> Vec<Item> {
        self.entry(&Kind::Written(bytes.to_vec()), live_stamp(seconds))
    }

    /// Feed bytes the modem sent `seconds` after the run started (see [`Follower::written`]).
    pub fn read(&mut self, bytes: &[u8], seconds: f64) -> Vec<Item> {
        self.entry(&Kind::Read(bytes.to_vec()), live_stamp(seconds))
    }

    fn entry(&mut self, kind: &Kind, at: Stamp) -> Vec<Item> {
        let e_seconds = at.seconds;
        // A pause in the transcript is a pause on the line: a pushed packet waiting for
        // what follows it settles, as in the engine.
        let paused = e_seconds - self.last.seconds >= crate::at::push::PUSH_SETTLE.as_secs_f64();
        self.last = at.clone();
        let mut events = if paused {
            self.modem.settle()
        } else {
            Vec::new()
        };
        events.extend(match kind {
            Kind::Written(b) => self.modem.written(b),
            Kind::Read(b) => self.modem.read(b),
            Kind::Note => Vec::new(),
        });
        let mut out = Vec::new();
        for ev in events {
            self.event(ev, &at, &mut out);
        }
        out
    }

    /// The transcript ended: report packets left incomplete.
    pub fn finish(&mut self) -> Vec<Item> {
        let at = self.last.clone();
        let mut out = Vec::new();
        // The line is quiet after the last entry: a pushed packet still waiting settles.
        for ev in self.modem.finish() {
            self.event(ev, &at, &mut out);
        }
        let links: Vec<u8> = self.links.keys().copied().collect();
        for link in links {
            self.close(link, "the transcript ends", &at, &mut out);
        }
        out
    }

    fn connection(&mut self, link: u8, at: &Stamp, out: &mut Vec<Item>) -> &mut Connection {
        let protocol = self.protocol;
        match self.links.entry(link) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                // Data before any `AT+CIPSTART`: the transcript starts mid-connection.
                self.opened += 1;
                out.push(Item::Note {
                    at: at.clone(),
                    text: format!(
                        "connection {}: opened before the transcript starts",
                        self.opened
                    ),
                });
                v.insert(Connection {
                    number: self.opened,
                    sent: Stream::new(protocol),
                    received: Stream::new(protocol),
                })
            }
        }
    }

    fn event(&mut self, ev: Event, at: &Stamp, out: &mut Vec<Item>) {
        match ev {
            Event::Opening { link, target } => {
                self.close(link, "a new connection opens", at, out);
                self.opened += 1;
                out.push(Item::Note {
                    at: at.clone(),
                    text: format!(
                        "connection {}: AT+CIPSTART={}",
                        self.opened,
                        crate::util::escape::escape_text(&target)
                    ),
                });
                self.links.insert(
                    link,
                    Connection {
                        number: self.opened,
                        sent: Stream::new(self.protocol),
                        received: Stream::new(self.protocol),
                    },
                );
            }
            Event::Closed { link, line } => {
                let links: Vec<u8> = match link {
                    Some(l) => vec![l],
                    None => self.links.keys().copied().collect(),
                };
                for l in links {
                    if let Some(n) = self.links.get(&l).map(|c| c.number) {
                        out.push(Item::Note {
                            at: at.clone(),
                            text: format!(
                                "connection {n}: {}",
                                crate::util::escape::escape_text(&line)
                            ),
                        });
                    }
                    self.close(l, "the connection closed", at, out);
                }
            }
            Event::Garbled { reason } => {
                // The engine fails its step on such bytes; the follower says so too.
                let number = self.links.values().last().map_or(0, |c| c.number);
                out.push(Item::Undecodable {
                    at: at.clone(),
                    direction: Direction::Received,
                    connection: number,
                    offset: 0,
                    length: 0,
                    reason: format!("pushed bytes that cannot be proven intact: {reason}"),
                    redacted: false,
                });
            }
            Event::Sent { link, chunk } => {
                let c = self.connection(link, at, out);
                let number = c.number;
                let decoded = c.sent.push_chunk(chunk);
                for d in decoded {
                    // The client's CONNECT sets the version of what comes back.
                    if let Decoded::Packet { packet, .. } = &d
                        && let Packet::Connect(p) = packet.as_ref()
                        && let Some(c) = self.links.get_mut(&link)
                    {
                        c.received.set_protocol(p.protocol);
                    }
                    out.push(item(d, Direction::Sent, number, at));
                }
            }
            Event::Received {
                link,
                bytes,
                redacted,
            } => {
                let c = self.connection(link, at, out);
                let number = c.number;
                for d in c.received.push(&bytes, redacted) {
                    out.push(item(d, Direction::Received, number, at));
                }
            }
        }
    }

    fn close(&mut self, link: u8, why: &str, at: &Stamp, out: &mut Vec<Item>) {
        let Some(mut c) = self.links.remove(&link) else {
            return;
        };
        // What the client said last decides the version of the next connection's start.
        self.protocol = c.sent.protocol();
        if let Some(d) = c.sent.finish(why) {
            out.push(item(d, Direction::Sent, c.number, at));
        }
        if let Some(d) = c.received.finish(why) {
            out.push(item(d, Direction::Received, c.number, at));
        }
    }
}

fn item(d: Decoded, direction: Direction, connection: u32, at: &Stamp) -> Item {
    match d {
        Decoded::Packet {
            offset,
            raw,
            packet,
            protocol,
            redacted,
        } => Item::Packet(Box::new(FollowedPacket {
            at: at.clone(),
            direction,
            connection,
            offset,
            warnings: packet.warnings(protocol),
            raw,
            packet: *packet,
            protocol,
            redacted,
        })),
        Decoded::Undecodable {
            offset,
            length,
            reason,
            redacted,
        } => Item::Undecodable {
            at: at.clone(),
            direction,
            connection,
            offset,
            length,
            reason,
            redacted,
        },
    }
}

/// Options of [`follow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    /// The MQTT version assumed until a CONNECT in the transcript says otherwise.
    pub protocol: Protocol,
    /// How to print.
    pub format: Format,
    /// Show every byte: no shortening of payloads and long fields.
    pub full: bool,
}

/// What [`follow`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Transcript entries read.
    pub entries: usize,
    /// Packets decoded.
    pub packets: usize,
    /// Stretches of bytes that did not decode.
    pub undecodable: usize,
}

/// Read a transcript from `input` and print its MQTT conversation to `out`. Fails when the
/// input has no transcript entry at all (it is not a transcript), or on I/O errors.
pub fn follow(
    input: &mut dyn BufRead,
    opts: &FollowOptions,
    out: &mut dyn Write,
) -> Result<Summary, ToolError> {
    let mut f = Follower::new(opts.protocol);
    let mut summary = Summary::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        for it in f.line(&text) {
            render::write_item(&it, opts, &mut summary, out)?;
        }
    }
    for it in f.finish() {
        render::write_item(&it, opts, &mut summary, out)?;
    }
    summary.entries = f.entries();
    if summary.entries == 0 {
        return Err(ToolError::Input(
            "not a sim7k transcript: no line like `   0.012 > AT+CIPSEND=5\\r` (write one \
             with `sim7k run … --transcript FILE`)"
                .into(),
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{ConnAck, Connect, Publish};
    use crate::util::escape::escape_bytes;

    /// Transcript lines from `(direction, bytes)`, one millisecond apart.
    fn transcript(entries: &[(char, &[u8])]) -> Vec<String> {
        entries
            .iter()
            .enumerate()
            .map(|(i, (d, b))| format!("{:>8.3} {d} {}", i as f64 / 1000.0, escape_bytes(b)))
            .collect()
    }

    fn items(lines: &[String], protocol: Protocol) -> Vec<Item> {
        let mut f = Follower::new(protocol);
        let mut out: Vec<Item> = lines.iter().flat_map(|l| f.line(l)).collect();
        out.extend(f.finish());
        out
    }

    fn packets(items: &[Item]) -> Vec<(u32, Direction, Packet)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Packet(p) => Some((p.connection, p.direction, p.packet.clone())),
                _ => None,
            })
            .collect()
    }

    fn enc(p: Packet, v: Protocol) -> Vec<u8> {
        p.encode(v).unwrap()
    }

    #[test]
    fn two_connections_with_cipmux() {
        let ping = enc(Packet::PingReq, Protocol::V311);
        let pong = enc(Packet::PingResp, Protocol::V311);
        let lines = transcript(&[
            ('>', b"AT+CIPMUX=1\r"),
            ('<', b"\r\nOK\r\n"),
            ('>', b"AT+CIPSTART=0,\"TCP\",\"a\",1883\r"),
            ('<', b"\r\nOK\r\n\r\n0, CONNECT OK\r\n"),
            ('>', b"AT+CIPSTART=1,\"TCP\",\"b\",1883\r"),
            ('<', b"\r\nOK\r\n\r\n1, CONNECT OK\r\n"),
            ('>', b"AT+CIPSEND=1,2\r"),
            ('<', b"\r\n> "),
            ('>', &ping),
            ('<', b"\r\n1, SEND OK\r\n\r\n+RECEIVE,1,2:\r\n\xd0\x00"),
            ('<', b"\r\n1, CLOSED\r\n"),
            ('>', b"AT+CIPSEND=0,2\r"),
            ('<', b"\r\n> "),
            ('>', &ping),
            ('<', b"\r\n0, SEND OK\r\n\r\n+RECEIVE,0,2:\r\n"),
            ('<', &pong),
        ]);
        let it = items(&lines, Protocol::V311);
        assert_eq!(
            packets(&it),
            vec![
                (2, Direction::Sent, Packet::PingReq),
                (2, Direction::Received, Packet::PingResp),
                (1, Direction::Sent, Packet::PingReq),
                (1, Direction::Received, Packet::PingResp),
            ]
        );
        assert!(
            it.iter()
                .any(|i| matches!(i, Item::Note { text, .. } if text == "connection 2: 1, CLOSED"))
        );
    }

    #[test]
    fn mid_connection_start_incomplete_end_and_garbage() {
        let lines = transcript(&[
            ('<', b"\r\n+IPD,2:\xd0\x00"),
            ('<', b"\r\n+IPD,2:\x00\x00"),
            ('<', b"\r\n+IPD,2:\xd0\x00"),
            ('<', b"\r\n+IPD,3:\x30\x09\x00"),
        ]);
        let it = items(&lines, Protocol::V311);
        assert!(
            matches!(&it[0], Item::Note { text, .. } if text.contains("opened before the transcript starts"))
        );
        assert!(matches!(&it[1], Item::Packet(p) if p.packet == Packet::PingResp));
        assert!(
            matches!(&it[2], Item::Undecodable { offset: 2, length: 2, reason, .. } if reason.starts_with("malformed: byte 2, fixed header packet type")),
            "{:?}",
            it[2]
        );
        assert!(matches!(&it[3], Item::Packet(p) if p.offset == 4));
        assert!(
            matches!(&it[4], Item::Undecodable { reason, .. } if reason.contains("the transcript ends after 3 bytes of a packet of 11 bytes")),
            "{:?}",
            it[4]
        );
    }

    #[test]
    fn the_clients_connect_sets_the_version_of_both_directions() {
        for v in [Protocol::V31, Protocol::V5] {
            let connect = enc(Packet::Connect(Connect::new(v, "c")), v);
            let connack = enc(Packet::ConnAck(ConnAck::new(0)), v);
            let cmd = format!("AT+CIPSEND={}\r", connect.len());
            let lines = transcript(&[
                ('>', b"AT+CIPSTART=\"TCP\",\"h\",1\r"),
                ('<', b"\r\nOK\r\n\r\nCONNECT OK\r\n"),
                ('>', cmd.as_bytes()),
                ('<', b"\r\n> "),
                ('>', &connect),
                ('<', b"\r\nSEND OK\r\n\r\n+CIPRXGET: 1\r\n"),
                ('>', b"AT+CIPRXGET=2,1460\r"),
                (
                    '<',
                    format!("\r\n+CIPRXGET: 2,{},0\r\n", connack.len()).as_bytes(),
                ),
                ('<', &connack),
                ('<', b"\r\nOK\r\n"),
            ]);
            // Told 3.1.1, the CONNECT says otherwise: a 5.0 CONNACK (3 bytes) decodes as 5.0.
            let it = items(&lines, Protocol::V311);
            let got: Vec<Protocol> = it
                .iter()
                .filter_map(|i| match i {
                    Item::Packet(p) => Some(p.protocol),
                    _ => None,
                })
                .collect();
            assert_eq!(got, vec![v, v], "{it:?}");
        }
    }

    #[test]
    fn three_stars_that_are_data_decode_and_are_flagged() {
        let publish = enc(Packet::Publish(Publish::new("t", "a***b")), Protocol::V311);
        let cmd = format!("AT+CIPSEND={}\r", publish.len());
        let lines = transcript(&[
            ('>', cmd.as_bytes()),
            ('<', b"\r\n> "),
            ('>', &publish),
            ('<', b"\r\nSEND OK\r\n"),
        ]);
        let it = items(&lines, Protocol::V311);
        let Some(Item::Packet(p)) = it.iter().find(|i| matches!(i, Item::Packet(_))) else {
            panic!("{it:?}")
        };
        assert!(p.redacted);
        assert_eq!(p.packet, Packet::Publish(Publish::new("t", "a***b")));
    }

    #[test]
    fn a_cancelled_send_and_a_send_the_modem_refused_send_nothing() {
        let lines = transcript(&[
            ('>', b"AT+CIPSEND\r"),
            ('<', b"\r\n> "),
            ('>', b"\xc0\x00\x1b"),
            ('<', b"\r\nOK\r\n"),
            ('>', b"AT+CIPSEND=2\r"),
            ('<', b"\r\nERROR\r\n"),
            ('>', b"AT+CIPSHUT\r"),
            ('<', b"\r\nSHUT OK\r\n"),
        ]);
        let it = items(&lines, Protocol::V311);
        assert!(packets(&it).is_empty(), "{it:?}");
    }
}
