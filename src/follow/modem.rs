//! The AT side of a transcript: which written bytes went out through `AT+CIPSEND`, which
//! received bytes were TCP data, and when connections opened and closed.
//!
//! Received bytes go through the crate's AT framer ([`crate::at::Framer`]), configured the way
//! the engine configures it while it runs (prompt expected after a prompting command, payload
//! echo, MQTT framing of pushed data after `AT+CIPRXGET=0` without `AT+CIPHEAD=1`, paused
//! while an ordinary command's reply is due), so `+CIPRXGET: 2,…` reads, `+CIPRXGET: 3,…` hex
//! reads, `+IPD,<n>:` and `+RECEIVE,<id>,<n>:` headers and raw pushed packets all come out as
//! data blocks exactly as they did for the engine. Written bytes are read the way the modem
//! reads them (see `send.rs`).

use super::send::{Chunk, Outcome, Send};
use crate::at::dialect::parse_rxget;
use crate::at::{Command, Frame, Framer, ResultCode, Shape, result_code};
use crate::redact::REDACTED;

/// What the modem side of the transcript shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// `AT+CIPSTART` was written: a new TCP connection on `link`.
    Opening {
        /// Connection id (0 without `AT+CIPMUX=1`).
        link: u8,
        /// `"TCP","host",port` as written.
        target: String,
    },
    /// The connection on `link` ended (or never opened), with the modem's words.
    Closed {
        /// Connection id; `None`: all of them (`SHUT OK`, `+PDP: DEACT`).
        link: Option<u8>,
        /// The line that says so.
        line: String,
    },
    /// A send completed: these bytes went to the peer.
    Sent {
        /// Connection id.
        link: u8,
        /// The bytes, with the transcript's redactions marked.
        chunk: Chunk,
    },
    /// A block of received TCP data.
    Received {
        /// Connection id.
        link: u8,
        /// The bytes.
        bytes: Vec<u8>,
        /// The transcript hid something in the entries these bytes came from.
        redacted: bool,
    },
    /// Pushed bytes that cannot be framed intact (the engine fails its step on them too).
    Garbled {
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    Unknown,
    On,
    Off,
}

/// The modem's state as far as the transcript shows it.
#[derive(Debug)]
pub(crate) struct Modem {
    framer: Framer,
    echo: Echo,
    /// `AT+CIPRXGET=0` (pushed data) rather than `=1` (kept until read).
    push: bool,
    /// `AT+CIPHEAD=1`.
    header: bool,
    /// `AT+CIPSENDHEX=1`.
    hex: bool,
    /// `AT+CIPMUX=1`.
    mux: bool,
    /// `ATV0`: numeric result codes.
    numeric: bool,
    /// A command whose final result is due (upper case, spaces removed).
    pending: Option<String>,
    send: Option<Send>,
    /// Connection of the next data block (from its header line).
    data_link: u8,
    /// A read entry since the last data block held `***`.
    redacted: bool,
}

impl Modem {
    pub(crate) fn new() -> Modem {
        Modem {
            framer: Framer::new(),
            echo: Echo::Unknown,
            push: true,
            header: false,
            hex: false,
            mux: false,
            numeric: false,
            pending: None,
            send: None,
            data_link: 0,
            redacted: false,
        }
    }

    /// Bytes sim7k wrote (one transcript entry).
    pub(crate) fn written(&mut self, bytes: &[u8]) -> Vec<Event> {
        if let Some(send) = self.send.as_mut()
            && send.prompted
        {
            let outcome = send.feed(bytes);
            let Some(outcome) = outcome else {
                return Vec::new();
            };
            let (link, tcp) = (send.link, send.tcp);
            if self.echo != Echo::Off {
                let echoed: std::sync::Arc<[u8]> = std::sync::Arc::from(send.written());
                let len = echoed.len();
                self.framer.open_echo(echoed, 0..len);
            }
            self.send = None;
            return match outcome {
                Outcome::Sent(chunk) if tcp => vec![Event::Sent { link, chunk }],
                _ => Vec::new(),
            };
        }
        let text = String::from_utf8_lossy(bytes);
        let mut out = Vec::new();
        // One command per write; a line end inside splits what a modem would see as two.
        for line in text.split(['\r', '\n']).filter(|l| !l.trim().is_empty()) {
            self.command(line.trim(), &mut out);
        }
        out
    }

    fn command(&mut self, line: &str, out: &mut Vec<Event>) {
        let up: String = line
            .to_ascii_uppercase()
            .chars()
            .filter(|c| *c != ' ')
            .collect();
        if !up.starts_with("AT") {
            return;
        }
        let cmd = Command::parse(line);
        if cmd.shape == Shape::Prompt {
            self.framer.expect_prompt(true);
            self.framer.suspend_mqtt(false);
            self.send = Some(self.prompted_send(&up));
        } else {
            // An ordinary reply may start with a digit: no MQTT framing of pushed data until
            // its result. Reads of received data are not ordinary replies.
            let read = up.starts_with("AT+CIPRXGET=2") || up.starts_with("AT+CIPRXGET=3");
            self.framer.suspend_mqtt(!read);
        }
        for part in parts(&up) {
            if let Some(args) = part.strip_prefix("+CIPSTART=") {
                let (link, target) = self.split_link(args, line);
                out.push(Event::Opening { link, target });
                self.framer.set_mqtt_push(self.push && !self.header);
            }
        }
        self.pending = Some(up);
    }

    /// The send a prompting command announces.
    fn prompted_send(&self, up: &str) -> Send {
        let Some(args) = up.strip_prefix("AT+CIPSEND") else {
            // `AT+SMPUB=…,<len>,…`, `AT+CMGS`…: a payload, but not TCP data.
            let want = up
                .strip_prefix("AT+SMPUB=")
                .and_then(|a| a.split(',').nth(1))
                .and_then(|n| n.parse().ok());
            return Send::new(0, false, want, false);
        };
        let nums: Vec<usize> = args
            .trim_start_matches('=')
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        let (link, want) = match (self.mux, nums.as_slice()) {
            (true, [id, n, ..]) => (*id, Some(*n)),
            (true, [id]) => (*id, None),
            (false, [n, ..]) => (0, Some(*n)),
            _ => (0, None),
        };
        Send::new(u8::try_from(link).unwrap_or(u8::MAX), true, want, self.hex)
    }

    /// `<id>,"TCP",…` with `AT+CIPMUX=1`, `"TCP",…` without; the target as written.
    fn split_link(&self, args: &str, line: &str) -> (u8, String) {
        let written = line
            .split_once('=')
            .map_or(line, |(_, a)| a)
            .trim()
            .to_owned();
        if self.mux
            && let Some((id, _)) = args.split_once(',')
            && let Ok(id) = id.parse::<u8>()
        {
            let target = written
                .split_once(',')
                .map_or(written.as_str(), |(_, t)| t)
                .to_owned();
            return (id, target);
        }
        (0, written)
    }

    /// The line paused: settle a pushed packet that waits for what follows it.
    pub(crate) fn settle(&mut self) -> Vec<Event> {
        self.framer.settle();
        self.frames()
    }

    /// The transcript ended: a pushed packet still undecided cannot be proven intact.
    pub(crate) fn finish(&mut self) -> Vec<Event> {
        let mut out = self.settle();
        if let Some(reason) = self.framer.undecided_push() {
            out.push(Event::Garbled {
                reason: reason.to_string(),
            });
            self.framer.reset();
        }
        out
    }

    /// Bytes the modem sent (one transcript entry).
    pub(crate) fn read(&mut self, bytes: &[u8]) -> Vec<Event> {
        if bytes
            .windows(REDACTED.len())
            .any(|w| w == REDACTED.as_bytes())
        {
            self.redacted = true;
        }
        self.framer.push(bytes);
        self.frames()
    }

    /// The frames the framer has ready, as events.
    fn frames(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(frame) = self.framer.next_frame() {
            match frame {
                Frame::Line(l) => {
                    let line = String::from_utf8_lossy(&l).trim().to_owned();
                    self.line(&line, &mut out);
                }
                Frame::Prompt => {
                    if let Some(s) = self.send.as_mut() {
                        s.prompted = true;
                    }
                }
                Frame::Data(bytes) => {
                    out.push(Event::Received {
                        link: std::mem::take(&mut self.data_link),
                        bytes,
                        redacted: std::mem::take(&mut self.redacted),
                    });
                }
                Frame::Echo(_) => {}
                Frame::Garbled(reason) => out.push(Event::Garbled { reason }),
            }
        }
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if self.echo == Echo::Unknown
            && self
                .pending
                .as_deref()
                .is_some_and(|p| p == line.to_ascii_uppercase().replace(' ', ""))
        {
            self.echo = Echo::On;
            return;
        }
        self.data_header(line);
        let code = match (self.numeric, line) {
            (true, "0") => Some(ResultCode::Ok),
            (true, "4") => Some(ResultCode::Error),
            _ => result_code(line),
        };
        let (link, rest) = split_link_prefix(line);
        let closed = matches!(rest, "CLOSED" | "CONNECT FAIL" | "CLOSE OK")
            || matches!(code, Some(ResultCode::ConnectFail | ResultCode::CloseOk));
        if closed {
            out.push(Event::Closed {
                link: Some(link.unwrap_or(0)),
                line: line.to_owned(),
            });
            self.framer.set_mqtt_push(false);
        } else if matches!(code, Some(ResultCode::ShutOk)) || line.starts_with("+PDP: DEACT") {
            out.push(Event::Closed {
                link: None,
                line: line.to_owned(),
            });
            self.framer.set_mqtt_push(false);
        }
        let Some(code) = code else {
            return;
        };
        let is_final = code.is_generic_final()
            || code.is_failure()
            || matches!(
                code,
                ResultCode::SendOk
                    | ResultCode::SendFail
                    | ResultCode::DataAccept(_)
                    | ResultCode::ShutOk
                    | ResultCode::CloseOk
            );
        if !is_final {
            return;
        }
        // A send still open is over: never prompted (ERROR), or ended by the modem before
        // the bytes it announced were all written (what was written is what it sent).
        // The command is over: so is the echo of what was typed after its prompt (the
        // engine closes the window when the exchange ends, too).
        self.framer.clear_echo();
        if let Some(send) = self.send.take() {
            self.framer.expect_prompt(false);
            if send.prompted
                && send.tcp
                && !code.is_failure()
                && let Some(chunk) = send.into_chunk()
            {
                out.push(Event::Sent {
                    link: chunk.0,
                    chunk: chunk.1,
                });
            }
        }
        if let Some(cmd) = self.pending.take()
            && !code.is_failure()
        {
            self.apply(&cmd);
        }
        self.framer.suspend_mqtt(false);
    }

    /// `+CIPRXGET: 2,<id>,<n>,<rest>` and `+RECEIVE,<id>,<n>:` name the connection of the data
    /// block that follows.
    fn data_header(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("+RECEIVE,") {
            self.data_link = rest
                .split(',')
                .next()
                .and_then(|id| id.trim().parse().ok())
                .unwrap_or(0);
        } else if self.mux
            && parse_rxget(line).is_some()
            && let Some(id) = line
                .split_once(':')
                .and_then(|(_, r)| r.split(',').nth(1))
                .and_then(|id| id.trim().parse().ok())
        {
            self.data_link = id;
        }
    }

    /// A command succeeded: the modes it sets are in force.
    fn apply(&mut self, cmd: &str) {
        for part in parts(cmd) {
            match part {
                "+CIPRXGET=0" => self.push = true,
                "+CIPRXGET=1" => self.push = false,
                "+CIPHEAD=0" => self.header = false,
                "+CIPHEAD=1" => self.header = true,
                "+CIPSENDHEX=0" => self.hex = false,
                "+CIPSENDHEX=1" => self.hex = true,
                "+CIPMUX=0" => self.mux = false,
                "+CIPMUX=1" => self.mux = true,
                "Z" | "&F" | "&F0" | "Z0" => {
                    self.echo = Echo::Unknown;
                    self.numeric = false;
                }
                _ => {
                    // Basic commands run together: `E0V1`, `E1`.
                    if !part.starts_with('+') {
                        self.basic(part);
                    }
                }
            }
        }
    }

    fn basic(&mut self, part: &str) {
        let b = part.as_bytes();
        for (i, c) in b.iter().enumerate() {
            let v = b.get(i + 1).copied();
            match (c, v) {
                (b'E', Some(b'0')) => self.echo = Echo::Off,
                (b'E', Some(b'1')) => self.echo = Echo::On,
                (b'V', Some(b'0')) => self.numeric = true,
                (b'V', Some(b'1')) => self.numeric = false,
                _ => {}
            }
        }
    }
}

/// The parts of a command line: `AT+A;+B` → `+A`, `+B`; `ATE0` → `E0`.
fn parts(up: &str) -> impl Iterator<Item = &str> {
    let body = up.strip_prefix("AT").unwrap_or(up);
    body.split(';').map(|p| p.trim_start_matches("AT"))
}

/// `1, CLOSED` → (Some(1), "CLOSED") (multi-connection reports); anything else as is.
fn split_link_prefix(line: &str) -> (Option<u8>, &str) {
    if let Some((id, rest)) = line.split_once(',')
        && let Ok(id) = id.trim().parse::<u8>()
    {
        return (Some(id), rest.trim());
    }
    (None, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &mut Modem, script: &[(&str, &[u8])]) -> Vec<Event> {
        let mut out = Vec::new();
        for (dir, bytes) in script {
            out.extend(if *dir == ">" {
                m.written(bytes)
            } else {
                m.read(bytes)
            });
        }
        out
    }

    #[test]
    fn binary_send_and_manual_read() {
        let mut m = Modem::new();
        let ev = run(
            &mut m,
            &[
                (">", b"AT+CIPRXGET=1\r"),
                ("<", b"\r\nOK\r\n"),
                (">", b"AT+CIPSTART=\"TCP\",\"h\",1883\r"),
                ("<", b"\r\nOK\r\n\r\nCONNECT OK\r\n"),
                (">", b"AT+CIPSEND=2\r"),
                ("<", b"\r\n> "),
                (">", b"\xc0\x00"),
                ("<", b"\r\nSEND OK\r\n\r\n+CIPRXGET: 1\r\n"),
                (">", b"AT+CIPRXGET=2,1460\r"),
                ("<", b"\r\n+CIPRXGET: 2,2,0\r\n\xd0\x00\r\nOK\r\n"),
            ],
        );
        assert_eq!(
            ev,
            vec![
                Event::Opening {
                    link: 0,
                    target: "\"TCP\",\"h\",1883".into()
                },
                Event::Sent {
                    link: 0,
                    chunk: Chunk {
                        bytes: vec![0xC0, 0x00],
                        ..Chunk::default()
                    }
                },
                Event::Received {
                    link: 0,
                    bytes: vec![0xD0, 0x00],
                    redacted: false
                },
            ]
        );
    }

    #[test]
    fn hex_mode_sends_and_hex_reads() {
        let mut m = Modem::new();
        let ev = run(
            &mut m,
            &[
                (">", b"AT+CIPHEAD=0;+CIPSENDHEX=1\r"),
                ("<", b"\r\nOK\r\n"),
                (">", b"AT+CIPSEND\r"),
                ("<", b"\r\n> "),
                (">", b"C0 00 1A"),
                ("<", b"\r\nSEND OK\r\n"),
                (">", b"AT+CIPRXGET=3,730\r"),
                ("<", b"\r\n+CIPRXGET: 3,2,0\r\nD000\r\nOK\r\n"),
            ],
        );
        assert!(matches!(&ev[0], Event::Sent { chunk, .. } if chunk.bytes == [0xC0, 0x00]));
        assert!(matches!(&ev[1], Event::Received { bytes, .. } if bytes == &[0xD0, 0x00]));
    }

    #[test]
    fn pushed_packets_with_and_without_header_and_multi_connection() {
        let mut m = Modem::new();
        let ev = run(
            &mut m,
            &[
                (">", b"AT+CIPRXGET=0\r"),
                ("<", b"\r\nOK\r\n"),
                (">", b"AT+CIPSTART=\"TCP\",\"h\",1883\r"),
                ("<", b"\r\nOK\r\n\r\nCONNECT OK\r\n"),
                ("<", b"\r\n \x02\x00\x00\r\n"),
                ("<", b"\r\nCLOSED\r\n"),
                (">", b"AT+CIPHEAD=1\r"),
                ("<", b"\r\nOK\r\n"),
                (">", b"AT+CIPSTART=\"TCP\",\"h\",1883\r"),
                ("<", b"\r\nOK\r\n\r\nCONNECT OK\r\n+IPD,2:\xd0\x00"),
                (">", b"AT+CIPMUX=1\r"),
                ("<", b"\r\nOK\r\n"),
                ("<", b"\r\n+RECEIVE,3,2:\r\n\xd0\x00"),
                ("<", b"\r\n3, CLOSED\r\n"),
            ],
        );
        let received: Vec<(u8, Vec<u8>)> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Received { link, bytes, .. } => Some((*link, bytes.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            received,
            vec![
                (0, vec![0x20, 0x02, 0x00, 0x00]),
                (0, vec![0xD0, 0x00]),
                (3, vec![0xD0, 0x00])
            ]
        );
        assert!(ev.contains(&Event::Closed {
            link: Some(3),
            line: "3, CLOSED".into()
        }));
    }

    #[test]
    fn a_payload_echo_is_not_data() {
        let mut m = Modem::new();
        let ev = run(
            &mut m,
            &[
                (">", b"ATE1\r"),
                ("<", b"ATE1\r\r\nOK\r\n"),
                (">", b"AT+CIPRXGET=0;+CIPHEAD=0\r"),
                ("<", b"AT+CIPRXGET=0;+CIPHEAD=0\r\r\nOK\r\n"),
                (">", b"AT+CIPSTART=\"TCP\",\"h\",1\r"),
                (
                    "<",
                    b"AT+CIPSTART=\"TCP\",\"h\",1\r\r\nOK\r\n\r\nCONNECT OK\r\n",
                ),
                (">", b"AT+CIPSEND=4\r"),
                ("<", b"AT+CIPSEND=4\r\r\n> "),
                (">", b"\x30\x02\x00\x00"),
                ("<", b"\x30\x02\x00\x00\r\nSEND OK\r\n"),
            ],
        );
        assert!(
            !ev.iter().any(|e| matches!(e, Event::Received { .. })),
            "{ev:?}"
        );
    }
}
