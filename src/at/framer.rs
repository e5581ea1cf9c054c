//! The AT byte framer: modem bytes in, [`Frame`]s out. No IO, no clock.
//!
//! The SIM7000 wraps every information line and result code as `\r\n<text>\r\n`, echoes
//! commands as `AT...\r`, prints the data prompt `> ` with no line end, and frames received
//! TCP data by length (`+IPD,<len>:<bytes>`, `+CIPRXGET: 2,<len>,<rest>\r\n<bytes>`,
//! `+RECEIVE,<n>,<len>:\r\n<bytes>`; which headers exist is the socket dialect's business,
//! [`crate::at::dialect`]). The framer turns that into lines, prompts and data blocks. It
//! splits lines on CR or LF (either alone ends a line; empty lines are dropped), so echoes
//! (`AT+CSQ\r`), `ATV0`-style `0\r` codes and ordinary `\r\n` lines all come out as clean
//! lines. What a line *means* (echo, final result, URC, information) is decided by
//! [`crate::at::line`] with the context of the command in flight.
//!
//! Two things need more than line splitting:
//! * the echo of data typed after a `> ` prompt ([`Framer::open_echo`]): payload bytes must
//!   never be read as modem lines, whatever the module does to the echo;
//! * MQTT packets pushed with no header ([`Framer::set_mqtt_push`], [`crate::at::push`]).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use super::dialect::{DataHeader, SocketDialect, default_dialect};
use super::push::{PushGrammar, PushPacket, Pushed};

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
    /// first as a [`Frame::Line`]), or a whole pushed MQTT packet.
    Data(Vec<u8>),
    /// Bytes that came back as the echo of data typed after a prompt.
    Echo(Vec<u8>),
    /// Pushed data that cannot be framed intact (see [`crate::at::push`]): why.
    Garbled(String),
}

#[derive(Debug)]
enum Mode {
    /// Assembling a line.
    Line,
    /// Collecting `remaining` bytes of a data block. `skip_lf`: the header line ended
    /// with CR, so a LF right after it is still part of the header's terminator.
    Raw { remaining: usize, skip_lf: bool },
    /// The next line is hex text of a read in hex mode.
    HexLine,
    /// Reassembling a pushed MQTT packet.
    Push(Box<PushPacket>),
}

/// The echo window of data typed after a prompt. The module echoes it (with `ATE1`), but
/// not always byte for byte: the rule sim7k follows is that printable bytes (0x20–0x7E)
/// come back as typed and in order, while any other byte (controls, CR, LF, bytes ≥ 0x80)
/// may be echoed, dropped or replaced by one other such byte; the echo may stop at any point;
/// and complete lines (URCs) may interrupt it. Bytes that fit this rule are echo, whatever
/// they spell (a payload line `SEND OK` or `+PDP: DEACT` is never a modem line). A line
/// that does not fit is a modem line when it looks like one (a result code, a URC, a `+…`
/// response); any other line is taken for an altered echo of the current payload line and
/// the window moves past it.
#[derive(Debug)]
struct EchoWindow {
    data: Arc<[u8]>,
    /// The typed bytes within `data`.
    range: Range<usize>,
    /// Next byte of `data` the echo should show.
    next: usize,
}

/// Splits modem output into [`Frame`]s. Feed bytes with [`Framer::push`], take frames with
/// [`Framer::next_frame`].
#[derive(Debug)]
pub struct Framer {
    dialect: &'static dyn SocketDialect,
    mode: Mode,
    line: Vec<u8>,
    raw: Vec<u8>,
    out: VecDeque<Frame>,
    /// A CR just ended a line: a following LF is part of the same terminator.
    after_cr: bool,
    prompt_expected: bool,
    /// A `>` prompt was reported; swallow one following space.
    after_prompt: bool,
    echo: Option<EchoWindow>,
    echo_seen: Vec<u8>,
    /// Echo bytes of the current echoed line (since the last CR/LF taken as echo).
    echo_line: Vec<u8>,
    /// The window's position where that line began.
    echo_line_start: usize,
    /// The line being assembled begins with this many bytes first taken as echo.
    line_echo_prefix: usize,
    /// The window's position where those bytes began.
    line_echo_start: usize,
    /// Received TCP data is pushed without a header: frame MQTT packets at line starts.
    mqtt_push: bool,
    /// MQTT framing paused (an ordinary command's reply is expected).
    mqtt_suspended: bool,
    /// Data bytes in the current pushed block (a block starts after a line break).
    block_used: usize,
    /// The next bytes are handed back from a failed packet start: line framing only.
    replaying: bool,
    /// Why the last pushed packet could not be delivered, while it is still undecided.
    undecided: Option<String>,
    /// Bytes handed back by the push reassembler, framed again before the next input.
    replay: VecDeque<u8>,
    /// What pushed data is: MQTT packets, or TLS records while sim7k runs TLS.
    push_grammar: PushGrammar,
    /// Things worth a transcript note (a pushed TLS record chosen among readings).
    notes: Vec<String>,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// A framer in line mode for the SIM7000 `AT+CIP` dialect.
    pub fn new() -> Framer {
        Self::with_dialect(default_dialect())
    }

    /// A framer that knows the data headers of `dialect`.
    pub fn with_dialect(dialect: &'static dyn SocketDialect) -> Framer {
        Framer {
            dialect,
            mode: Mode::Line,
            line: Vec::new(),
            raw: Vec::new(),
            out: VecDeque::new(),
            after_cr: false,
            prompt_expected: false,
            after_prompt: false,
            echo: None,
            echo_seen: Vec::new(),
            echo_line: Vec::new(),
            echo_line_start: 0,
            line_echo_prefix: 0,
            line_echo_start: 0,
            mqtt_push: false,
            mqtt_suspended: false,
            block_used: 0,
            replaying: false,
            undecided: None,
            replay: VecDeque::new(),
            push_grammar: PushGrammar::Mqtt,
            notes: Vec::new(),
        }
    }

    /// Frame headerless pushed data as `grammar` units: MQTT packets (the default) or TLS
    /// records (while sim7k runs TLS over the connection; see [`PushGrammar`]).
    pub fn set_push_grammar(&mut self, grammar: PushGrammar) {
        if self.push_grammar != grammar && matches!(self.mode, Mode::Push(_)) {
            self.mode = Mode::Line;
        }
        self.push_grammar = grammar;
    }

    /// Notes for the transcript since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
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
        self.echo = None;
        self.echo_seen.clear();
        self.echo_line.clear();
        self.line_echo_prefix = 0;
        self.undecided = None;
        self.replaying = false;
    }

    /// Frame headerless pushed data as MQTT packets (`AT+CIPRXGET=0`, `AT+CIPHEAD=0`): a
    /// byte that can only start a broker-to-client MQTT packet, at the start of a line,
    /// begins a packet reassembled by [`crate::at::push`]; it comes out as one
    /// [`Frame::Data`], or as [`Frame::Garbled`] when its bytes cannot be proven intact.
    pub fn set_mqtt_push(&mut self, on: bool) {
        self.mqtt_push = on;
        if !on && matches!(self.mode, Mode::Push(_)) {
            self.mode = Mode::Line;
        }
    }

    /// True while pushed MQTT framing is on.
    pub fn mqtt_push(&self) -> bool {
        self.mqtt_push
    }

    /// Why a pushed packet is complete in one reading but not delivered yet (other
    /// readings of its bytes are still possible), if that is the case.
    pub fn undecided_push(&self) -> Option<&str> {
        self.undecided.as_deref()
    }

    /// The modem paused: settle a pushed packet that waits for what follows it (see
    /// [`PushPacket::settle`]).
    pub fn settle(&mut self) {
        if let Mode::Push(packet) = &mut self.mode {
            let outcome = packet.settle();
            self.undecided = packet.undecided();
            if let Some(note) = packet.take_choice() {
                self.notes.push(note);
            }
            self.on_pushed(outcome);
            while let Some(r) = self.replay.pop_front() {
                self.push_byte(r);
            }
        }
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

    /// Data `data[range]` was just typed after a prompt: open its echo window (see
    /// `EchoWindow`). Bytes the rule takes for echo come out as [`Frame::Echo`].
    pub fn open_echo(&mut self, data: Arc<[u8]>, range: Range<usize>) {
        self.flush_echo();
        let range = range.start.min(data.len())..range.end.min(data.len());
        self.echo_line.clear();
        self.echo_line_start = range.start;
        self.line_echo_prefix = 0;
        self.echo = Some(EchoWindow {
            next: range.start,
            data,
            range,
        });
    }

    /// Close the echo window (the exchange ended); reports what was echoed, if anything.
    pub fn clear_echo(&mut self) {
        self.echo = None;
        self.echo_line.clear();
        self.line_echo_prefix = 0;
        self.flush_echo();
    }

    /// True while an echo window is open and not fully echoed.
    pub fn echo_open(&self) -> bool {
        self.echo.is_some()
    }

    /// Bytes of an incomplete line (for diagnostics).
    pub fn partial_line(&self) -> &[u8] {
        &self.line
    }

    /// True while a line, a data block or a pushed packet is being assembled.
    pub fn busy(&self) -> bool {
        !self.line.is_empty() || !matches!(self.mode, Mode::Line)
    }

    /// Feed bytes from the modem.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push_byte(b);
            while let Some(r) = self.replay.pop_front() {
                self.push_byte(r);
            }
        }
    }

    /// Frame these bytes again, before any further input.
    fn replay_front(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().rev() {
            self.replay.push_front(b);
        }
    }

    /// Take the next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    fn emit(&mut self, frame: Frame) {
        self.flush_echo();
        self.out.push_back(frame);
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
        if matches!(self.mode, Mode::Line) && self.line.is_empty() {
            if self.take_echo(b) {
                return;
            }
            if !self.echo_line.is_empty() {
                // The echo of this line stopped here: what it took so far begins the line
                // (judged when the line ends, see `echo_line`).
                self.line = std::mem::take(&mut self.echo_line);
                self.line_echo_prefix = self.line.len();
                self.line_echo_start = self.echo_line_start;
                self.echo_line_start = self.echo.as_ref().map_or(0, |w| w.next);
            }
        }
        match &mut self.mode {
            Mode::Raw { remaining, skip_lf } => {
                if std::mem::take(skip_lf) && b == b'\n' {
                    return;
                }
                self.raw.push(b);
                *remaining -= 1;
                if *remaining == 0 {
                    self.mode = Mode::Line;
                    self.after_cr = false;
                    let data = std::mem::take(&mut self.raw);
                    self.emit(Frame::Data(data));
                }
            }
            Mode::Push(packet) => {
                let outcome = packet.push(b);
                if outcome == Pushed::Pending {
                    self.undecided = packet.undecided();
                }
                if let Some(note) = packet.take_choice() {
                    self.notes.push(note);
                }
                self.on_pushed(outcome);
            }
            Mode::Line | Mode::HexLine => {
                let replaying = std::mem::take(&mut self.replaying);
                // A TLS record starts with a control byte no modem line starts with: no
                // need to pause its framing during a command's reply.
                let suspended = self.mqtt_suspended && self.push_grammar == PushGrammar::Mqtt;
                if self.mqtt_push
                    && !suspended
                    && !replaying
                    && matches!(self.mode, Mode::Line)
                    && self.line.is_empty()
                    && self.push_grammar.starts(b)
                {
                    let mut packet = Box::new(PushPacket::start_with(
                        self.push_grammar,
                        b,
                        self.block_used,
                    ));
                    let outcome = packet.first_outcome();
                    self.mode = Mode::Push(packet);
                    self.on_pushed(outcome);
                    return;
                }
                self.push_line_byte(b)
            }
        }
    }

    fn on_pushed(&mut self, outcome: Pushed) {
        match outcome {
            Pushed::Pending => {}
            Pushed::NotMqtt(bytes) => {
                self.mode = Mode::Line;
                self.undecided = None;
                // The first byte goes to line framing; the rest is framed afresh.
                self.replaying = true;
                self.replay_front(&bytes);
            }
            Pushed::Packet {
                urcs,
                data,
                rest,
                block,
            } => {
                self.mode = Mode::Line;
                self.undecided = None;
                self.after_cr = false;
                for u in urcs {
                    self.emit(Frame::Line(u));
                }
                self.emit(Frame::Data(data));
                self.block_used = block;
                self.replay_front(&rest);
            }
            Pushed::Garbled { reason, rest } => {
                self.mode = Mode::Line;
                self.undecided = None;
                self.emit(Frame::Garbled(reason));
                self.replaying = true;
                self.replay_front(&rest);
            }
        }
    }

    /// At a line start with an echo window open: is `b` echo? (See [`EchoWindow`].)
    fn take_echo(&mut self, b: u8) -> bool {
        let Some(w) = self.echo.as_mut() else {
            return false;
        };
        let end = w.range.end;
        let mut k = w.next;
        let mut taken = false;
        while let Some(&p) = w.data.get(k).filter(|_| k < end) {
            if p == b {
                w.next = k + 1;
                taken = true;
                break;
            }
            // This byte may have been dropped by the echo (but a line end from the modem
            // matches only where the echo stands: it may as well end a URC line).
            if !is_printable(p) && b != b'\r' && b != b'\n' {
                k += 1;
                continue;
            }
            break;
        }
        if !taken
            && let Some(&p) = w.data.get(w.next).filter(|_| w.next < end)
            && !is_printable(p)
            && !is_printable(b)
            && b != b'\r'
            && b != b'\n'
        {
            // A control byte echoed as another one.
            w.next += 1;
            taken = true;
        }
        if !taken {
            return false;
        }
        self.echo_seen.push(b);
        self.after_cr = false;
        if b == b'\r' || b == b'\n' {
            self.echo_line.clear();
            self.echo_line_start = w.next;
        } else {
            self.echo_line.push(b);
        }
        // The whole payload came back. Mid-line, the window stays until the line ends: the
        // bytes may as well be the start of a modem line (a 1-byte payload `S` before
        // `SEND OK`), which `echo_line` then gives back.
        if w.next >= end && self.echo_line.is_empty() {
            self.echo = None;
            self.flush_echo();
        }
        true
    }

    /// A line that arrived inside the echo window without fitting the echo (it may begin
    /// with bytes first taken as echo): a modem line, the end of an echo that stopped, or
    /// an altered echo (then the window moves to the next payload line). True when it is
    /// echo.
    fn echo_line(&mut self, line: &[u8]) -> bool {
        let prefix = std::mem::take(&mut self.line_echo_prefix);
        let Some(w) = self.echo.as_mut() else {
            return false;
        };
        if prefix >= line.len() {
            // Only echo, then a line break: the echo stopped or was interrupted here.
            if w.next >= w.range.end {
                self.echo = None;
                self.flush_echo();
            }
            return true;
        }
        if looks_like_modem_line(line) {
            if prefix > 0 {
                // Its first bytes matched the payload by chance: they were no echo.
                w.next = self.line_echo_start;
                let keep = self.echo_seen.len().saturating_sub(prefix);
                self.echo_seen.truncate(keep);
            }
            return false;
        }
        let end = w.range.end;
        let mut k = if prefix > 0 {
            self.line_echo_start
        } else {
            w.next
        };
        while w.data.get(k).is_some_and(|p| *p != b'\r' && *p != b'\n') && k < end {
            k += 1;
        }
        while w.data.get(k).is_some_and(|p| *p == b'\r' || *p == b'\n') && k < end {
            k += 1;
        }
        w.next = k;
        self.echo_line_start = k;
        if k >= end {
            self.echo = None;
        }
        self.echo_seen
            .extend_from_slice(line.get(prefix..).unwrap_or_default());
        self.flush_echo();
        true
    }

    fn push_line_byte(&mut self, b: u8) {
        match b {
            b'\n' if self.after_cr => {
                self.after_cr = false;
            }
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                self.block_used = 0;
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
                self.check_inline_header();
            }
        }
    }

    fn check_prompt(&mut self) {
        if self.prompt_expected && matches!(self.mode, Mode::Line) && self.line.as_slice() == b">" {
            self.line.clear();
            self.prompt_expected = false;
            self.after_prompt = true;
            self.emit(Frame::Prompt);
        }
    }

    /// A header with no line end (`+IPD,<len>:`): data follows directly.
    fn check_inline_header(&mut self) {
        if !matches!(self.mode, Mode::Line) {
            return;
        }
        if let Some(len) = self.dialect.inline_header(&self.line) {
            let header = std::mem::take(&mut self.line);
            self.emit(Frame::Line(header));
            self.start_raw(len, false);
        }
    }

    fn start_raw(&mut self, len: usize, skip_lf: bool) {
        if len == 0 {
            self.emit(Frame::Data(Vec::new()));
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
        if matches!(self.mode, Mode::HexLine) {
            self.mode = Mode::Line;
            match decode_hex(&line) {
                Some(data) => self.emit(Frame::Data(data)),
                // Not hex after all: report it as a line.
                None => self.emit(Frame::Line(line)),
            }
            return;
        }
        if self.echo_line(&line) {
            return;
        }
        let header = self.dialect.data_header(&line);
        self.emit(Frame::Line(line));
        match header {
            // The header's line end may be CR LF: the LF belongs to the header.
            Some(DataHeader::Raw(len)) => self.start_raw(len, self.after_cr),
            Some(DataHeader::HexLine) => self.mode = Mode::HexLine,
            None => {}
        }
    }
}

fn is_printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// Lines a modem prints while data is echoed: result codes, URCs, `+…`/`*…` responses.
fn looks_like_modem_line(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let t = text.trim();
    ((t.starts_with('+') || t.starts_with('*')) && t.contains(':'))
        || super::line::result_code(t).is_some()
        || super::line::known_urc(t).is_some()
}

/// Decode hex text (spaces allowed between digits); `None` when it is not hex.
pub fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    let text: Vec<u8> = text.iter().copied().filter(|b| *b != b' ').collect();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let hi = char::from(*pair.first()?).to_digit(16)?;
            let lo = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
#[path = "framer_tests.rs"]
mod tests;
