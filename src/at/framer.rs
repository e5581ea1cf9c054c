//! The AT byte framer: modem bytes in, [`Frame`]s out. No IO, no clock.
//!
//! The SIM7000 wraps every information line and result code as `\r\n<text>\r\n`, echoes
//! commands as `AT...\r`, prints the data prompt `> ` with no line end, and frames received
//! TCP data by length (`+IPD,<len>:<bytes>`, `+CIPRXGET: 2,<len>,<rest>\r\n<bytes>`,
//! `+RECEIVE,<n>,<len>:\r\n<bytes>`). The framer turns that into lines, prompts and data
//! blocks. It splits lines on CR or LF (either alone ends a line; empty lines are dropped),
//! so echoes (`AT+CSQ\r`), `ATV0`-style `0\r` codes and ordinary `\r\n` lines all come out
//! as clean lines. What a line *means* (echo, final result, URC, information) is decided
//! by [`crate::at::line`] with the context of the command in flight.

use std::collections::VecDeque;

/// Longest line kept; longer input is cut into pieces of this size (a modem never prints
/// lines this long, so this only bounds memory against garbage).
pub const MAX_LINE: usize = 4096;

/// One unit of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its terminator (bytes as received; usually ASCII).
    Line(Vec<u8>),
    /// The data prompt `> ` (only reported while a prompt is expected).
    Prompt,
    /// A length-framed block of received data, after its header line (which is reported
    /// first as a [`Frame::Line`]).
    Data(Vec<u8>),
    /// Bytes that came back identical to data just written (payload echo with ATE1).
    Echo(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Assembling a line.
    Line,
    /// Collecting `remaining` bytes of a data block. `skip_lf`: the header line ended
    /// with CR, so a LF right after it is still part of the header's terminator.
    Raw { remaining: usize, skip_lf: bool },
    /// The next line is hex text of a `+CIPRXGET: 3` block.
    HexLine,
    /// Reading the remaining-length bytes of a pushed MQTT packet (`raw` holds them).
    MqttHeader,
    /// Reading the body of a pushed MQTT packet: `remaining` bytes to go, `len` in all.
    MqttBody { remaining: usize, len: usize },
}

/// Largest length-framed block accepted from a `+IPD`, `+RECEIVE` or `+CIPRXGET: 2`
/// header (the SIM7000's receive buffer is about 2920 bytes; one read returns ≤ 1460).
/// A larger announced length is not a header: the line is kept as a line.
pub const MAX_BLOCK: usize = 2920;
/// Largest MQTT packet framed from pushed data.
pub const MAX_PUSHED_PACKET: usize = 16 << 20;

/// Splits modem output into [`Frame`]s. Feed bytes with [`Framer::push`], take frames with
/// [`Framer::next_frame`].
#[derive(Debug)]
pub struct Framer {
    mode: Mode,
    line: Vec<u8>,
    raw: Vec<u8>,
    out: VecDeque<Frame>,
    /// A CR just ended a line: a following LF is part of the same terminator.
    after_cr: bool,
    prompt_expected: bool,
    /// A `>` prompt was reported; swallow one following space.
    after_prompt: bool,
    /// Bytes we wrote that a modem with echo on may send back.
    echo: VecDeque<u8>,
    echo_seen: Vec<u8>,
    /// Received TCP data is pushed without a header: frame MQTT packets at line starts.
    mqtt_push: bool,
    /// MQTT framing paused (an ordinary command's reply is expected).
    mqtt_suspended: bool,
    /// The next byte is replayed line data: do not take it for an MQTT packet start.
    replaying: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// A framer in line mode.
    pub fn new() -> Framer {
        Framer {
            mode: Mode::Line,
            line: Vec::new(),
            raw: Vec::new(),
            out: VecDeque::new(),
            after_cr: false,
            prompt_expected: false,
            after_prompt: false,
            echo: VecDeque::new(),
            echo_seen: Vec::new(),
            mqtt_push: false,
            mqtt_suspended: false,
            replaying: false,
        }
    }

    /// Pause MQTT framing of pushed data while an ordinary command's reply (which may be a
    /// line starting with a digit, like an IP or an IMEI) is expected.
    pub fn suspend_mqtt(&mut self, on: bool) {
        self.mqtt_suspended = on;
    }

    /// Drop any partial block, prompt or echo expectation and go back to reading lines
    /// (after a timeout: a bogus length header must not swallow the rest of the session).
    pub fn reset(&mut self) {
        self.mode = Mode::Line;
        self.raw.clear();
        self.line.clear();
        self.after_cr = false;
        self.prompt_expected = false;
        self.after_prompt = false;
        self.echo.clear();
        self.echo_seen.clear();
    }

    /// Frame headerless pushed data as MQTT packets (`AT+CIPRXGET=0`, `AT+CIPHEAD=0`): a
    /// byte that can only start a broker-to-client MQTT packet, at the start of a line,
    /// begins a packet whose remaining length is then read; the packet comes out as one
    /// [`Frame::Data`]. Lines that start with a digit would be misread, so do not query
    /// numeric-only values (IMEI, IP) while an MQTT session is pushed this way.
    pub fn set_mqtt_push(&mut self, on: bool) {
        self.mqtt_push = on;
    }

    /// Report `> ` at the start of a line as [`Frame::Prompt`] (set after sending a
    /// command that prompts for data; cleared once the prompt was seen).
    pub fn expect_prompt(&mut self, on: bool) {
        self.prompt_expected = on;
        if on {
            self.check_prompt();
        }
    }

    /// True while a prompt is expected and has not arrived.
    pub fn prompt_expected(&self) -> bool {
        self.prompt_expected
    }

    /// Data just written after a prompt: if the modem echoes it back byte for byte, those
    /// bytes are reported as one [`Frame::Echo`] instead of being framed as lines.
    pub fn expect_echo(&mut self, data: &[u8]) {
        self.echo.clear();
        self.echo.extend(data.iter().copied());
        self.echo_seen.clear();
    }

    /// Stop waiting for a data echo (reports what was echoed so far, if anything).
    pub fn clear_echo(&mut self) {
        self.echo.clear();
        self.flush_echo();
    }

    /// Bytes of an incomplete line (for diagnostics).
    pub fn partial_line(&self) -> &[u8] {
        &self.line
    }

    /// Feed bytes from the modem.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push_byte(b);
        }
    }

    /// Take the next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    fn flush_echo(&mut self) {
        if !self.echo_seen.is_empty() {
            let seen = std::mem::take(&mut self.echo_seen);
            self.out.push_back(Frame::Echo(seen));
        }
    }

    fn push_byte(&mut self, b: u8) {
        if self.after_prompt {
            self.after_prompt = false;
            if b == b' ' {
                return;
            }
        }
        if let Some(&want) = self.echo.front() {
            // Only an echo that starts at a line boundary counts.
            if self.mode == Mode::Line && self.line.is_empty() && b == want {
                self.echo.pop_front();
                self.echo_seen.push(b);
                if self.echo.is_empty() {
                    self.flush_echo();
                }
                self.after_cr = false;
                return;
            }
            // Mismatch: the modem is not echoing (any more).
            self.echo.clear();
            self.flush_echo();
        }
        match self.mode {
            Mode::Raw { remaining, skip_lf } => {
                // A pushed MQTT packet keeps its header: `raw` already holds it.
                if skip_lf {
                    self.mode = Mode::Raw {
                        remaining,
                        skip_lf: false,
                    };
                    if b == b'\n' {
                        return;
                    }
                }
                self.raw.push(b);
                if remaining <= 1 {
                    self.mode = Mode::Line;
                    self.after_cr = false;
                    let data = std::mem::take(&mut self.raw);
                    self.out.push_back(Frame::Data(data));
                } else {
                    self.mode = Mode::Raw {
                        remaining: remaining - 1,
                        skip_lf: false,
                    };
                }
            }
            Mode::MqttHeader => {
                self.raw.push(b);
                // raw = [first byte, remaining-length bytes…]
                if b & 0x80 == 0 {
                    let mut len: usize = 0;
                    for (i, lb) in self.raw.iter().skip(1).enumerate() {
                        len |= usize::from(lb & 0x7f) << (7 * i);
                    }
                    let first = self.raw.first().copied().unwrap_or(0);
                    if !plausible_mqtt(first, len) {
                        self.replay_as_line();
                    } else if len == 0 {
                        self.mode = Mode::Line;
                        let data = std::mem::take(&mut self.raw);
                        self.out.push_back(Frame::Data(data));
                    } else {
                        self.mode = Mode::MqttBody {
                            remaining: len,
                            len,
                        };
                    }
                } else if self.raw.len() >= 5 {
                    // Not a valid remaining length: these bytes were a line.
                    self.replay_as_line();
                }
            }
            Mode::MqttBody { remaining, len } => {
                self.raw.push(b);
                if !plausible_publish_start(&self.raw, len) {
                    self.replay_as_line();
                } else if remaining <= 1 {
                    self.mode = Mode::Line;
                    self.after_cr = false;
                    let data = std::mem::take(&mut self.raw);
                    self.out.push_back(Frame::Data(data));
                } else {
                    self.mode = Mode::MqttBody {
                        remaining: remaining - 1,
                        len,
                    };
                }
            }
            Mode::Line | Mode::HexLine => {
                let replaying = std::mem::take(&mut self.replaying);
                if self.mqtt_push
                    && !self.mqtt_suspended
                    && !replaying
                    && self.mode == Mode::Line
                    && self.line.is_empty()
                    && is_mqtt_server_first_byte(b)
                {
                    self.raw = vec![b];
                    self.mode = Mode::MqttHeader;
                    return;
                }
                self.push_line_byte(b)
            }
        }
    }

    /// What looked like the start of a pushed MQTT packet was not one: hand the bytes back
    /// to line framing.
    fn replay_as_line(&mut self) {
        self.mode = Mode::Line;
        let bytes = std::mem::take(&mut self.raw);
        self.replaying = true;
        for b in bytes {
            self.push_byte(b);
        }
        self.replaying = false;
    }

    fn push_line_byte(&mut self, b: u8) {
        match b {
            b'\n' if self.after_cr => {
                self.after_cr = false;
            }
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                self.end_line();
            }
            _ => {
                self.after_cr = false;
                self.line.push(b);
                if self.line.len() >= MAX_LINE {
                    self.end_line();
                    return;
                }
                self.check_prompt();
                self.check_ipd();
            }
        }
    }

    fn check_prompt(&mut self) {
        if self.prompt_expected && self.mode == Mode::Line && self.line.as_slice() == b">" {
            self.line.clear();
            self.prompt_expected = false;
            self.after_prompt = true;
            self.out.push_back(Frame::Prompt);
        }
    }

    /// `+IPD,<len>:` (optionally `+IPD,<len>,TCP:`) has no line end: data follows the colon.
    fn check_ipd(&mut self) {
        if self.mode != Mode::Line || self.line.last() != Some(&b':') {
            return;
        }
        if let Some(len) = parse_ipd_header(&self.line).filter(|n| *n <= MAX_BLOCK) {
            let header = std::mem::take(&mut self.line);
            self.out.push_back(Frame::Line(header));
            self.start_raw(len, false);
        }
    }

    fn start_raw(&mut self, len: usize, skip_lf: bool) {
        if len == 0 {
            self.out.push_back(Frame::Data(Vec::new()));
        } else {
            self.raw = Vec::with_capacity(len.min(1 << 16));
            self.mode = Mode::Raw {
                remaining: len,
                skip_lf,
            };
        }
    }

    fn end_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.line);
        if self.mode == Mode::HexLine {
            self.mode = Mode::Line;
            match decode_hex(&line) {
                Some(data) => {
                    self.out.push_back(Frame::Data(data));
                    return;
                }
                None => {
                    // Not hex after all: report it as a line.
                    self.out.push_back(Frame::Line(line));
                    return;
                }
            }
        }
        let header = classify_data_header(&line);
        self.out.push_back(Frame::Line(line));
        match header {
            // The header's line end may be CR LF: the LF belongs to the header.
            Some(DataHeader::Raw(len)) if len <= MAX_BLOCK => self.start_raw(len, self.after_cr),
            Some(DataHeader::Raw(_)) => {}
            Some(DataHeader::HexLine) => self.mode = Mode::HexLine,
            None => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataHeader {
    Raw(usize),
    HexLine,
}

/// Could a packet with this first byte and remaining length come from a broker? (Rejects
/// lines that merely start with a digit or a space.)
fn plausible_mqtt(first: u8, len: usize) -> bool {
    match first {
        0x20 => (2..=255).contains(&len), // CONNACK
        0x40 | 0x50 | 0x62 | 0x70 | 0xb0 => (2..=1024).contains(&len), // acks, UNSUBACK
        0x90 => (3..=4096).contains(&len), // SUBACK
        0xd0 => len == 0,                 // PINGRESP
        0xe0 | 0xf0 => len <= 1024,       // DISCONNECT, AUTH
        0x30..=0x3d => (3..=MAX_PUSHED_PACKET).contains(&len), // PUBLISH
        _ => false,
    }
}

/// For a PUBLISH being framed (`raw` = header + body so far): its topic length must fit
/// the packet and its topic must be text.
fn plausible_publish_start(raw: &[u8], len: usize) -> bool {
    let Some(&first) = raw.first() else {
        return true;
    };
    let header = raw
        .iter()
        .skip(1)
        .position(|b| b & 0x80 == 0)
        .map_or(raw.len(), |i| i + 2);
    let body = raw.get(header..).unwrap_or_default();
    if first == 0x20 {
        // CONNACK: the acknowledge flags are 0 or 1 (session present).
        return body.first().is_none_or(|f| *f <= 1);
    }
    if !(0x30..=0x3d).contains(&first) {
        return true;
    }
    if body.len() < 2 {
        return true;
    }
    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let id_len = if first & 0x06 != 0 { 2 } else { 0 };
    if topic_len == 0 || topic_len + 2 + id_len > len {
        return false;
    }
    if body.len() > topic_len + 3 {
        return true; // the topic was checked when it arrived
    }
    // The topic bytes seen so far must be printable text (no CR, LF or NUL).
    body.iter()
        .skip(2)
        .take(topic_len)
        .all(|&c| c >= 0x20 && c != 0x7f)
}

/// First bytes of packets a broker sends: CONNACK, PUBLISH (QoS 0-2, DUP, retain), PUBACK,
/// PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP, DISCONNECT, AUTH.
fn is_mqtt_server_first_byte(b: u8) -> bool {
    matches!(
        b,
        0x20 | 0x30..=0x35 | 0x3a..=0x3d | 0x40 | 0x50 | 0x62 | 0x70 | 0x90 | 0xb0 | 0xd0 | 0xe0 | 0xf0
    )
}

/// A `+CIPRXGET: …` reply to a read (`AT+CIPRXGET=2/3,<len>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxGet {
    /// 2 (raw) or 3 (hex).
    pub mode: u8,
    /// Bytes that follow now.
    pub len: usize,
    /// Bytes still buffered in the modem.
    pub remaining: usize,
}

/// Parse `+CIPRXGET: 2,<n>,<rest>` (single connection), `+CIPRXGET: 2,<id>,<n>,<rest>`
/// (multi), each optionally followed by `,"<ip>:<port>"` (`AT+CIPSRIP=1`); spaces are
/// optional. `None` for anything else (mode 1 and 4 reports included).
pub fn parse_rxget(line: &str) -> Option<RxGet> {
    let rest = line.trim().strip_prefix("+CIPRXGET:")?;
    let mut fields: Vec<&str> = rest
        .split(',')
        .map(|f| f.trim().trim_matches('"'))
        .collect();
    // A trailing remote address (`1.2.3.4:1883`) is not a count.
    if fields
        .last()
        .is_some_and(|f| f.contains(':') || f.contains('.'))
    {
        fields.pop();
    }
    let mode: u8 = fields.first()?.parse().ok()?;
    if mode != 2 && mode != 3 {
        return None;
    }
    let (n, rem) = match fields.len() {
        3 => (fields.get(1)?, fields.get(2)?),
        4 => (fields.get(2)?, fields.get(3)?),
        _ => return None,
    };
    Some(RxGet {
        mode,
        len: n.parse().ok()?,
        remaining: rem.parse().ok()?,
    })
}

/// `+CIPRXGET: 2,…` announces raw bytes; mode 3 announces a hex line;
/// `+RECEIVE,<id>,<len>:` announces `len` bytes.
fn classify_data_header(line: &[u8]) -> Option<DataHeader> {
    let text = std::str::from_utf8(line).ok()?.trim();
    if text.starts_with("+CIPRXGET:") {
        let r = parse_rxget(text)?;
        return match r.mode {
            2 => Some(DataHeader::Raw(r.len)),
            3 if r.len > 0 => Some(DataHeader::HexLine),
            _ => None,
        };
    }
    if let Some(rest) = text.strip_prefix("+RECEIVE,") {
        let rest = rest.strip_suffix(':')?;
        let (_, len) = rest.split_once(',')?;
        return Some(DataHeader::Raw(len.trim().parse().ok()?));
    }
    None
}

fn parse_ipd_header(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix("+IPD,")?.strip_suffix(':')?;
    let len = rest.split(',').next()?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 7 {
        return None;
    }
    len.parse().ok()
}

/// Decode hex text (no separators); `None` when it is not hex.
pub fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    let text: Vec<u8> = text.iter().copied().filter(|b| *b != b' ').collect();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(f: &mut Framer) -> Vec<Frame> {
        std::iter::from_fn(|| f.next_frame()).collect()
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_with_echo_and_empty_lines() {
        let mut f = Framer::new();
        f.push(b"AT+CSQ\r\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
        assert_eq!(
            frames(&mut f),
            vec![line("AT+CSQ"), line("+CSQ: 24,99"), line("OK")]
        );
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_frames() {
        let input = b"\r\n+CIPRXGET: 2,5,0\r\nhe\r\nl\r\nOK\r\n+IPD,3:\x00\x1a\rDST: 1\r\n";
        let mut whole = Framer::new();
        whole.push(input);
        let mut drip = Framer::new();
        let mut got = Vec::new();
        for b in input {
            drip.push(&[*b]);
            got.extend(frames(&mut drip));
        }
        let expected = vec![
            line("+CIPRXGET: 2,5,0"),
            Frame::Data(b"he\r\nl".to_vec()),
            line("OK"),
            line("+IPD,3:"),
            Frame::Data(vec![0, 0x1a, b'\r']),
            line("DST: 1"),
        ];
        assert_eq!(frames(&mut whole), expected);
        assert_eq!(got, expected);
    }

    #[test]
    fn prompt_only_when_expected() {
        let mut f = Framer::new();
        f.push(b"\r\n> ");
        assert!(frames(&mut f).is_empty());
        assert_eq!(f.partial_line(), b"> ");
        let mut f = Framer::new();
        f.expect_prompt(true);
        f.push(b"AT+CIPSEND=3\r\r\n> ");
        assert_eq!(frames(&mut f), vec![line("AT+CIPSEND=3"), Frame::Prompt]);
        assert!(!f.prompt_expected());
        // The space after '>' is swallowed even when it arrives later; then a data echo.
        let mut f = Framer::new();
        f.expect_prompt(true);
        f.push(b"\r\n>");
        assert_eq!(frames(&mut f), vec![Frame::Prompt]);
        f.expect_echo(b"\x1a\r\nA");
        f.push(b" \x1a\r\nA\r\nSEND OK\r\n");
        assert_eq!(
            frames(&mut f),
            vec![Frame::Echo(b"\x1a\r\nA".to_vec()), line("SEND OK")]
        );
    }

    #[test]
    fn echo_mismatch_falls_back_to_lines() {
        let mut f = Framer::new();
        f.expect_echo(b"xyz");
        f.push(b"\r\nSEND OK\r\n");
        assert_eq!(frames(&mut f), vec![line("SEND OK")]);
        // A partial echo followed by other output is reported, then framing resumes.
        let mut f = Framer::new();
        f.expect_echo(b"abcd");
        f.push(b"ab\r\nSEND FAIL\r\n");
        assert_eq!(
            frames(&mut f),
            vec![Frame::Echo(b"ab".to_vec()), line("SEND FAIL")]
        );
    }

    #[test]
    fn receive_headers() {
        let mut f = Framer::new();
        f.push(b"+RECEIVE,0,4:\r\n\r\nab\r\nOK\r\n");
        assert_eq!(
            frames(&mut f),
            vec![
                line("+RECEIVE,0,4:"),
                Frame::Data(b"\r\nab".to_vec()),
                line("OK")
            ]
        );
        let mut f = Framer::new();
        f.push(b"+CIPRXGET: 3,2,0\r\n0A1B\r\nOK\r\n");
        assert_eq!(
            frames(&mut f),
            vec![
                line("+CIPRXGET: 3,2,0"),
                Frame::Data(vec![0x0a, 0x1b]),
                line("OK")
            ]
        );
        // Multi-connection form of mode 2, and a zero-length read.
        let mut f = Framer::new();
        f.push(b"+CIPRXGET: 2,0,2,0\r\nhi\r\nOK\r\n+CIPRXGET: 2,0,0\r\nOK\r\n");
        assert_eq!(
            frames(&mut f),
            vec![
                line("+CIPRXGET: 2,0,2,0"),
                Frame::Data(b"hi".to_vec()),
                line("OK"),
                line("+CIPRXGET: 2,0,0"),
                Frame::Data(Vec::new()),
                line("OK"),
            ]
        );
    }

    #[test]
    fn garbage_is_bounded() {
        let mut f = Framer::new();
        f.push(&vec![b'x'; MAX_LINE * 2 + 5]);
        let got = frames(&mut f);
        assert_eq!(got.len(), 2);
        assert_eq!(f.partial_line().len(), 5);
        // An absurd +IPD length is not taken as a header.
        let mut f = Framer::new();
        f.push(b"+IPD,99999999999:abc\r\n");
        assert_eq!(frames(&mut f), vec![line("+IPD,99999999999:abc")]);
    }

    #[test]
    fn pushed_mqtt_packets_are_framed_by_length() {
        let mut input = b"\r\nSEND OK\r\n\r\n".to_vec();
        input.extend_from_slice(&[0x20, 0x02, 0x00, 0x00]);
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&[
            0x30, 0x09, 0x00, 0x03, b'a', b'/', b'b', b'h', b'\r', b'\n', b'i',
        ]);
        input.extend_from_slice(b"\r\nCLOSED\r\n");
        for drip in [false, true] {
            let mut f = Framer::new();
            f.set_mqtt_push(true);
            let mut got = Vec::new();
            if drip {
                for b in &input {
                    f.push(&[*b]);
                    got.extend(frames(&mut f));
                }
            } else {
                f.push(&input);
                got = frames(&mut f);
            }
            assert_eq!(
                got,
                vec![
                    line("SEND OK"),
                    Frame::Data(vec![0x20, 0x02, 0x00, 0x00]),
                    Frame::Data(vec![
                        0x30, 0x09, 0x00, 0x03, b'a', b'/', b'b', b'h', b'\r', b'\n', b'i'
                    ]),
                    line("CLOSED"),
                ]
            );
        }
        // PINGRESP has remaining length 0.
        let mut f = Framer::new();
        f.set_mqtt_push(true);
        f.push(&[0xd0, 0x00]);
        assert_eq!(frames(&mut f), vec![Frame::Data(vec![0xd0, 0x00])]);
    }

    #[test]
    fn implausible_mqtt_starts_are_lines() {
        let mut f = Framer::new();
        f.set_mqtt_push(true);
        // '1' is a PUBLISH first byte, '0' a length of 48, but ".6" is no topic length.
        f.push(b"10.64.12.7\r\n\r\nOK\r\n");
        assert_eq!(frames(&mut f), vec![line("10.64.12.7"), line("OK")]);
        // A space is CONNACK's first byte, but `  x` has no plausible length.
        f.push(b" 3x\r\n");
        assert_eq!(frames(&mut f), vec![line(" 3x")]);
    }

    #[test]
    fn rxget_headers_with_addresses_and_without_spaces() {
        assert_eq!(
            parse_rxget("+CIPRXGET: 2,5,0,\"1.2.3.4:1883\""),
            Some(RxGet {
                mode: 2,
                len: 5,
                remaining: 0
            })
        );
        assert_eq!(
            parse_rxget("+CIPRXGET:2,3,7"),
            Some(RxGet {
                mode: 2,
                len: 3,
                remaining: 7
            })
        );
        assert_eq!(
            parse_rxget("+CIPRXGET: 2,1,4,0"),
            Some(RxGet {
                mode: 2,
                len: 4,
                remaining: 0
            })
        );
        assert_eq!(parse_rxget("+CIPRXGET: 1"), None);
        let mut f = Framer::new();
        f.push(b"+CIPRXGET: 2,2,0,\"1.2.3.4:1883\"\r\nhi\r\nOK\r\n");
        assert_eq!(
            frames(&mut f),
            vec![
                line("+CIPRXGET: 2,2,0,\"1.2.3.4:1883\""),
                Frame::Data(b"hi".to_vec()),
                line("OK")
            ]
        );
    }

    #[test]
    fn lone_cr_and_lf_end_lines() {
        let mut f = Framer::new();
        f.push(b"0\rRING\nOK\r\n");
        assert_eq!(frames(&mut f), vec![line("0"), line("RING"), line("OK")]);
    }
}
