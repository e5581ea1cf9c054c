//! Reassembly of MQTT packets pushed raw (SIM7000 `AT+CIPRXGET=0` with `AT+CIPHEAD=0`),
//! where nothing but the MQTT length frames the data.
//!
//! # The rule, and where it comes from
//!
//! In this mode the SIM7000 writes the TCP data it receives to the UART as it arrives, with
//! no header (SIM7000 Series TCPIP Application Note V1.01 §2.1.1: the data simply appears;
//! AT Command Manual V1.06 §8.2.16 `AT+CIPHEAD=0`). The module hands data over in blocks of
//! at most 1460 bytes (its receive size: `AT+CIPCCFG` RxSize 1460, Manual §8.2.24; one
//! `AT+CIPRXGET=2` read is at most 1460 too, §8.2.27), and each block is written after a
//! line break, CR LF, as sim7k's emulator does (whether the real module writes that CR LF
//! is not documented; see docs/sim7000.md). Unsolicited lines (`DST: 1`, `+PDP: DEACT`) may
//! come between blocks, never inside one; after `CLOSED` no more data comes.
//!
//! So inside a pushed packet every CR LF is either two data bytes or a block break (after
//! which a URC line may follow), and a packet longer than the rest of its block must
//! contain a break. sim7k follows every reading the rule allows (a break only after 1 to
//! 1460 data bytes of the block; a break required once the block holds 1460; a URC line
//! only after a break) and checks what follows the packet in each reading (a line break,
//! or the start of a plausible MQTT packet). The packet is delivered when exactly one
//! reading is left. Because a block is written whole, a pause in the stream falls between
//! blocks ([`PushPacket::settle`]): a reading followed by a packet start cut short by the
//! pause is refuted. When several readings stay possible (a CR LF in the payload that may
//! as well be a block break, URC text that may as well be payload), or none does, the bytes
//! cannot be proven intact and the framer reports [`Pushed::Garbled`] naming why; the
//! remedy is a length-framed receive mode: `AT+CIPHEAD=1` (`+IPD,<len>:` headers) or
//! `AT+CIPRXGET=1` (manual reads).

use std::ops::Range;

use crate::at::limits::MAX_SEND;

/// Largest block the module pushes at once.
pub const MAX_PUSH_BLOCK: usize = MAX_SEND;
/// A pause this long in pushed data falls between the module's blocks (it writes each
/// block whole): a pushed packet waiting for what follows it is settled.
pub const PUSH_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);
/// Largest MQTT packet framed from pushed data.
pub const MAX_PUSHED_PACKET: usize = 16 << 20;
/// Most readings followed at once; more means the bytes cannot be told apart.
pub const MAX_READINGS: usize = 64;
/// Longest URC line accepted between two blocks.
const MAX_URC: usize = 160;
/// Data bytes kept per reading for the header and topic checks.
const HEAD: usize = 2 + 5 + 2 + 256;

/// What is pushed: MQTT packets (the default), or TLS records when sim7k runs TLS over the
/// connection. Both are framed by their own length; the block rule above is the same.
///
/// A TLS record starts with its content type (20 to 23), the record version (`03 01` to
/// `03 03`) and a 2-byte length of at most 18,432: three fixed bytes, so a misread record
/// boundary is found at once. Where the module's block breaks still leave two readings
/// (a CR LF inside the ciphertext that may as well be a break), TLS takes the one with the
/// fewest breaks, the likelier by far, instead of giving up: every record carries an
/// authentication tag, so a wrong reading cannot pass unnoticed (the connection then fails
/// with `bad_record_mac`), unlike an MQTT payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushGrammar {
    /// MQTT packets from a broker.
    #[default]
    Mqtt,
    /// TLS records from a server.
    Tls,
}

/// Largest TLS record body (2^14 plus the expansion TLS 1.2 allows).
pub const MAX_TLS_RECORD: usize = 16_384 + 2_048;

impl PushGrammar {
    /// Can `b` start a pushed unit (at a line start)?
    pub fn starts(self, b: u8) -> bool {
        match self {
            PushGrammar::Mqtt => is_mqtt_server_first_byte(b),
            PushGrammar::Tls => (20..=23).contains(&b),
        }
    }

    /// The unit's whole length once its header is readable: `Ok(None)` needs more bytes,
    /// `Err(())` cannot be a unit of this grammar.
    fn total(self, head: &[u8]) -> Result<Option<usize>, ()> {
        match self {
            PushGrammar::Mqtt => {
                if head.len() >= 2 && header_len(head).is_none() {
                    return if head.len() >= 5 { Err(()) } else { Ok(None) };
                }
                match (header_len(head), remaining_len(head)) {
                    (Some(h), Some(len)) => {
                        let first = head.first().copied().unwrap_or(0);
                        if plausible_mqtt(first, len) {
                            Ok(Some(h + len))
                        } else {
                            Err(())
                        }
                    }
                    _ => Ok(None),
                }
            }
            PushGrammar::Tls => {
                let ok = head.first().is_some_and(|t| (20..=23).contains(t))
                    && head.get(1).is_none_or(|v| *v == 3)
                    && head.get(2).is_none_or(|v| (1..=3).contains(v));
                if !ok {
                    return Err(());
                }
                let (Some(&a), Some(&b)) = (head.get(3), head.get(4)) else {
                    return Ok(None);
                };
                let len = usize::from(u16::from_be_bytes([a, b]));
                let ccs = head.first() == Some(&20);
                if len == 0 || len > MAX_TLS_RECORD || (ccs && len != 1) {
                    return Err(());
                }
                Ok(Some(5 + len))
            }
        }
    }

    /// For a unit being framed (`head` = its first bytes): do its first fields make sense?
    fn plausible_start(self, head: &[u8], total: Option<usize>) -> bool {
        match self {
            PushGrammar::Mqtt => plausible_publish_start(head, total),
            PushGrammar::Tls => true,
        }
    }

    /// How many bytes confirm that the bytes are a unit of this grammar.
    fn confirm_len(self, head: &[u8]) -> usize {
        match self {
            PushGrammar::Mqtt => confirm_len(head),
            PushGrammar::Tls => 5,
        }
    }

    fn unit_name(self, first: u8) -> &'static str {
        match self {
            PushGrammar::Mqtt => packet_name(first),
            PushGrammar::Tls => "record",
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            PushGrammar::Mqtt => "MQTT",
            PushGrammar::Tls => "TLS",
        }
    }
}

/// What the reassembler says after a byte.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Still collecting.
    Pending,
    /// These bytes were no MQTT packet after all: hand them back to line framing.
    NotMqtt(Vec<u8>),
    /// A packet: the URC lines found between its blocks, its bytes, the bytes that follow
    /// it (to be framed again), and how full its last block is.
    Packet {
        /// URC lines found between the packet's blocks.
        urcs: Vec<Vec<u8>>,
        /// The packet.
        data: Vec<u8>,
        /// Bytes after the packet.
        rest: Vec<u8>,
        /// Data bytes in the block the packet ended in.
        block: usize,
    },
    /// An MQTT packet whose bytes cannot be proven intact.
    Garbled {
        /// Why.
        reason: String,
        /// Bytes after the point of failure, to be framed again.
        rest: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum St {
    /// Reading data bytes.
    Data,
    /// A CR that may begin a block break (at this raw index).
    BreakCr(usize),
    /// A break (CR LF at this raw index) just ended: a block or a URC line follows.
    AfterBreak(usize),
    /// A URC line starting at this raw index.
    Urc(usize),
    /// The CR ending a URC line.
    UrcCr(usize),
    /// After a URC line: the next block's break must follow.
    NeedBreak,
    /// Complete; checking the bytes that follow (`cont` of them seen).
    Done { end: usize },
}

#[derive(Debug, Clone)]
struct Reading {
    /// Another reading with different bytes reached the same state: whatever follows
    /// cannot tell them apart.
    twins: bool,
    skips: Vec<Range<usize>>,
    urcs: Vec<Range<usize>>,
    head: Vec<u8>,
    total: Option<usize>,
    data: usize,
    block: usize,
    state: St,
}

/// The check of what follows a complete reading.
#[derive(Debug, PartialEq, Eq)]
enum Follow {
    Valid,
    Pending,
    Invalid,
}

/// One packet being reassembled from pushed bytes.
#[derive(Debug)]
pub struct PushPacket {
    raw: Vec<u8>,
    readings: Vec<Reading>,
    /// Spare storage for the next byte's readings.
    scratch: Vec<Reading>,
    /// The packet passed the header and topic checks: failing now is an error, not a line.
    confirmed: bool,
    grammar: PushGrammar,
    /// Why the last delivery chose among several readings (TLS only), until taken.
    chose: Option<String>,
}

impl PushPacket {
    /// A packet starting with `first`, at `block_used` data bytes into the current block.
    pub fn start(first: u8, block_used: usize) -> PushPacket {
        Self::start_with(PushGrammar::Mqtt, first, block_used)
    }

    /// A unit of `grammar` starting with `first`, at `block_used` data bytes into the
    /// current block.
    pub fn start_with(grammar: PushGrammar, first: u8, block_used: usize) -> PushPacket {
        let mut r = Reading {
            twins: false,
            skips: Vec::new(),
            urcs: Vec::new(),
            head: Vec::new(),
            total: None,
            data: 0,
            block: block_used.min(MAX_PUSH_BLOCK),
            state: St::Data,
        };
        let mut p = PushPacket {
            raw: vec![first],
            readings: Vec::new(),
            scratch: Vec::new(),
            confirmed: false,
            grammar,
            chose: None,
        };
        if r.block >= MAX_PUSH_BLOCK {
            // The block is full: this byte cannot be data of it.
            return p;
        }
        if r.add_data(grammar, first) {
            p.readings.push(r);
        }
        p
    }

    /// When the last delivered unit was chosen among several readings (TLS): why.
    pub fn take_choice(&mut self) -> Option<String> {
        self.chose.take()
    }

    /// Bytes collected so far.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// True before any byte (never, in practice: a packet starts with its first byte).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Why no reading was delivered yet, when one is complete but others are still open.
    pub fn undecided(&self) -> Option<String> {
        let complete = self
            .readings
            .iter()
            .filter(|r| matches!(r.state, St::Done { .. }))
            .count();
        (complete > 0).then(|| ambiguity(self.readings.len()))
    }

    /// The first outcome, before any other byte: a packet cannot be judged on one byte.
    pub fn first_outcome(&mut self) -> Pushed {
        if self.readings.is_empty() {
            return Pushed::NotMqtt(std::mem::take(&mut self.raw));
        }
        self.decide()
    }

    /// Feed the next byte.
    pub fn push(&mut self, b: u8) -> Pushed {
        let i = self.raw.len();
        self.raw.push(b);
        // The common case: one reading inside a block, a byte that cannot start a break.
        if b != b'\r'
            && self.confirmed
            && let [r] = self.readings.as_mut_slice()
            && r.state == St::Data
            && r.block < MAX_PUSH_BLOCK
        {
            if !r.add_data(self.grammar, b) {
                self.readings.clear();
            } else if r.state == (St::Done { end: 0 }) {
                r.state = St::Done { end: i + 1 };
            }
            return self.decide();
        }
        let mut next = std::mem::take(&mut self.scratch);
        next.clear();
        for r in self.readings.drain(..) {
            step(self.grammar, r, b, i, &self.raw, &mut next);
        }
        if next.len() > 1 {
            merge(self.grammar, &mut next);
        }
        self.scratch = std::mem::replace(&mut self.readings, next);
        if !self.confirmed
            && self
                .readings
                .iter()
                .any(|r| r.head.len() >= self.grammar.confirm_len(&r.head))
        {
            self.confirmed = true;
        }
        if self.readings.len() > MAX_READINGS {
            return self.garbled(ambiguity(self.readings.len()));
        }
        let max = match self.grammar {
            PushGrammar::Mqtt => MAX_PUSHED_PACKET + MAX_PUSHED_PACKET / 8,
            PushGrammar::Tls => 2 * (MAX_TLS_RECORD + 5),
        };
        if self.raw.len() > max {
            return self.garbled("the packet is larger than sim7k accepts".into());
        }
        self.decide()
    }

    /// The stream paused (the module writes each block and each URC line whole, so a pause
    /// falls between them): a reading that is inside a break or a URC line, or whose packet
    /// is complete but followed by the beginning of another packet that stops mid-way (a
    /// block cut short), is refuted.
    pub fn settle(&mut self) -> Pushed {
        let raw = &self.raw;
        let grammar = self.grammar;
        self.readings.retain(|r| match r.state {
            St::Done { end } => {
                let after = raw.get(end..).unwrap_or_default();
                after.is_empty() || follow(grammar, after) != Follow::Pending
            }
            // Between blocks: the packet goes on in the next block, or a URC line ended.
            St::Data | St::NeedBreak => true,
            // Within a break or a URC line: the module writes those whole.
            St::BreakCr(_) | St::AfterBreak(_) | St::Urc(_) | St::UrcCr(_) => false,
        });
        self.decide()
    }

    fn decide(&mut self) -> Pushed {
        if self.readings.is_empty() {
            if self.confirmed {
                return self.garbled(
                    "its bytes fit no reading of the module's block framing (a CR LF break \
                     is required after every 1460 data bytes)"
                        .into(),
                );
            }
            return Pushed::NotMqtt(std::mem::take(&mut self.raw));
        }
        if self.readings.len() == 1 {
            if let Some(r) = self.readings.first()
                && let St::Done { end } = r.state
            {
                if r.twins {
                    return self.garbled(ambiguity(2));
                }
                let r = r.clone();
                return self.deliver(&r, end);
            }
            return Pushed::Pending;
        }
        // Several readings: decide only when every one is complete and all but one are
        // refuted by what follows them.
        if self
            .readings
            .iter()
            .any(|r| !matches!(r.state, St::Done { .. }))
        {
            return Pushed::Pending;
        }
        let follows: Vec<Follow> = self
            .readings
            .iter()
            .map(|r| match r.state {
                St::Done { end } => follow(self.grammar, self.raw.get(end..).unwrap_or_default()),
                _ => Follow::Pending,
            })
            .collect();
        let alive: Vec<usize> = (0..self.readings.len())
            .filter(|i| follows.get(*i) != Some(&Follow::Invalid))
            .collect();
        if self.grammar == PushGrammar::Tls && alive.len() > 1 {
            // TLS: the reading with the fewest breaks, once it is followed by something
            // plausible (the record's tag proves it; see [`PushGrammar`]).
            let best = alive
                .iter()
                .copied()
                .min_by_key(|i| self.readings.get(*i).map_or(usize::MAX, |r| r.skips.len()));
            let Some(best) = best else {
                return Pushed::Pending;
            };
            if follows.get(best) != Some(&Follow::Valid) {
                return Pushed::Pending;
            }
            let Some(r) = self.readings.get(best).cloned() else {
                return Pushed::Pending;
            };
            let St::Done { end } = r.state else {
                return Pushed::Pending;
            };
            self.chose = Some(format!(
                "{} readings of a pushed TLS record of {} bytes fit the module's block breaks; \
                 sim7k took the one with the fewest breaks (the record's authentication tag \
                 checks it)",
                alive.len(),
                r.data
            ));
            return self.deliver(&r, end);
        }
        match alive.as_slice() {
            [] => self.garbled("no reading of its bytes is followed by a plausible line".into()),
            [one] => {
                if follows.get(*one) == Some(&Follow::Pending) {
                    return Pushed::Pending;
                }
                let Some(r) = self.readings.get(*one).cloned() else {
                    return Pushed::Pending;
                };
                let St::Done { end } = r.state else {
                    return Pushed::Pending;
                };
                if r.twins {
                    return self.garbled(ambiguity(2));
                }
                self.deliver(&r, end)
            }
            many => {
                if many
                    .iter()
                    .filter(|i| follows.get(**i) == Some(&Follow::Valid))
                    .count()
                    >= 2
                {
                    self.garbled(ambiguity(many.len()))
                } else {
                    Pushed::Pending
                }
            }
        }
    }

    fn deliver(&mut self, r: &Reading, end: usize) -> Pushed {
        let raw = std::mem::take(&mut self.raw);
        let mut data = Vec::with_capacity(r.data);
        let mut at = 0;
        for s in &r.skips {
            if let Some(piece) = raw.get(at..s.start.min(end)) {
                data.extend_from_slice(piece);
            }
            at = s.end;
        }
        if let Some(piece) = raw.get(at..end) {
            data.extend_from_slice(piece);
        }
        let urcs = r
            .urcs
            .iter()
            .filter_map(|u| raw.get(u.clone()).map(<[u8]>::to_vec))
            .collect();
        Pushed::Packet {
            urcs,
            data,
            rest: raw.get(end..).unwrap_or_default().to_vec(),
            block: r.block,
        }
    }

    fn garbled(&mut self, why: String) -> Pushed {
        let first = self.raw.first().copied().unwrap_or(0);
        let reason = format!(
            "a pushed {} {} of {} bytes cannot be proven intact: {why}; in raw push mode \
             (AT+CIPRXGET=0 with AT+CIPHEAD=0) only the {} length frames the data, so use \
             AT+CIPHEAD=1 (+IPD length headers) or AT+CIPRXGET=1 (manual reads)",
            self.grammar.protocol(),
            self.grammar.unit_name(first),
            self.raw.len(),
            match self.grammar {
                PushGrammar::Mqtt => "packet",
                PushGrammar::Tls => "record",
            },
        );
        // The first byte was taken as a packet start; what follows is framed again.
        let rest = self.raw.get(1..).unwrap_or_default().to_vec();
        self.raw.clear();
        self.readings.clear();
        Pushed::Garbled { reason, rest }
    }
}

fn ambiguity(n: usize) -> String {
    format!(
        "{n} readings fit its bytes (a CR LF in the payload may also be a break between \
         the module's 1460-byte blocks)"
    )
}

fn packet_name(first: u8) -> &'static str {
    match first >> 4 {
        2 => "CONNACK",
        3 => "PUBLISH",
        9 => "SUBACK",
        _ => "packet",
    }
}

/// How many data bytes confirm that the bytes are an MQTT packet (header, and for a
/// PUBLISH its topic length and the first topic bytes).
fn confirm_len(head: &[u8]) -> usize {
    let hdr = header_len(head).unwrap_or(5);
    match head.first() {
        Some(0x30..=0x3d) => hdr + 2 + 4,
        _ => hdr + 1,
    }
}

/// Length of the fixed header (first byte + remaining length), once complete.
fn header_len(head: &[u8]) -> Option<usize> {
    head.iter()
        .skip(1)
        .take(4)
        .position(|b| b & 0x80 == 0)
        .map(|i| i + 2)
}

fn remaining_len(head: &[u8]) -> Option<usize> {
    let n = header_len(head)?;
    let mut len = 0usize;
    for (i, b) in head.get(1..n)?.iter().enumerate() {
        len |= usize::from(b & 0x7f) << (7 * i);
    }
    Some(len)
}

impl Reading {
    /// Take `b` as a data byte. False when the reading is refuted.
    fn add_data(&mut self, grammar: PushGrammar, b: u8) -> bool {
        self.data += 1;
        self.block += 1;
        if self.head.len() < HEAD {
            self.head.push(b);
            if self.total.is_none() {
                match grammar.total(&self.head) {
                    Err(()) => return false,
                    Ok(total) => self.total = total,
                }
            }
            if self.total.is_some() && !grammar.plausible_start(&self.head, self.total) {
                return false;
            }
        }
        if self.total.is_some_and(|t| self.data >= t) {
            self.state = St::Done { end: 0 };
        }
        true
    }
}

/// Readings in the same state (data so far, block fill, where they are) have the same
/// future: keep one, marked as having a twin (its bytes are then ambiguous).
/// (TLS keeps the one with the fewest breaks instead; see [`PushGrammar`].)
fn merge(grammar: PushGrammar, readings: &mut Vec<Reading>) {
    let mut k = 0;
    while k < readings.len() {
        let same = readings.iter().take(k).position(|o| {
            readings.get(k).is_some_and(|r| {
                o.data == r.data && o.block == r.block && o.total == r.total && o.state == r.state
            })
        });
        match same {
            Some(j) => {
                let r = readings.remove(k);
                if let Some(o) = readings.get_mut(j) {
                    if grammar == PushGrammar::Tls {
                        if r.skips.len() < o.skips.len() {
                            *o = r;
                        }
                    } else {
                        o.twins = true;
                    }
                }
            }
            None => k += 1,
        }
    }
}

/// Advance one reading by the byte `b` at raw index `i`; surviving readings go to `out`.
fn step(grammar: PushGrammar, mut r: Reading, b: u8, i: usize, raw: &[u8], out: &mut Vec<Reading>) {
    match r.state.clone() {
        St::Data => {
            let full = r.block >= MAX_PUSH_BLOCK;
            if b == b'\r' && r.block >= 1 {
                // Either data, or the start of a block break.
                let mut brk = r.clone();
                brk.state = St::BreakCr(i);
                out.push(brk);
            }
            if full {
                return;
            }
            if r.add_data(grammar, b) {
                if r.state == (St::Done { end: 0 }) {
                    r.state = St::Done { end: i + 1 };
                }
                out.push(r);
            }
        }
        St::BreakCr(s) => {
            if b == b'\n' {
                r.state = St::AfterBreak(s);
                out.push(r);
            }
        }
        St::AfterBreak(s) => {
            r.skips.push(s..i);
            r.block = 0;
            if (0x20..0x7f).contains(&b) {
                // Perhaps a URC line between two blocks.
                let mut urc = r.clone();
                urc.state = St::Urc(i);
                out.push(urc);
            }
            r.state = St::Data;
            if r.add_data(grammar, b) {
                if r.state == (St::Done { end: 0 }) {
                    r.state = St::Done { end: i + 1 };
                }
                out.push(r);
            }
        }
        St::Urc(start) => {
            if b == b'\r' {
                use crate::at::line::{Urc, known_urc};
                let text = String::from_utf8_lossy(raw.get(start..i).unwrap_or_default());
                // After `CLOSED` or `+PDP: DEACT` no more data of this packet can come.
                let urc = known_urc(&text);
                if urc.is_some_and(|u| !matches!(u, Urc::Closed | Urc::PdpDeact)) {
                    r.state = St::UrcCr(start);
                    out.push(r);
                }
            } else if (0x20..0x7f).contains(&b) && i - start < MAX_URC {
                out.push(r);
            }
        }
        St::UrcCr(start) => {
            if b == b'\n' {
                r.urcs.push(start..i - 1);
                r.skips.push(start..i + 1);
                r.state = St::NeedBreak;
                out.push(r);
            }
        }
        St::NeedBreak => {
            if b == b'\r' {
                r.state = St::BreakCr(i);
                out.push(r);
            }
        }
        St::Done { end } => {
            if follow(grammar, raw.get(end..).unwrap_or_default()) != Follow::Invalid {
                out.push(r);
            }
        }
    }
}

/// Is `after` (the bytes after a complete reading) a plausible continuation: a line break,
/// or the start of a plausible unit of the grammar?
fn follow(grammar: PushGrammar, after: &[u8]) -> Follow {
    let Some(&first) = after.first() else {
        return Follow::Pending;
    };
    if first == b'\r' || first == b'\n' {
        return Follow::Valid;
    }
    if !grammar.starts(first) {
        return Follow::Invalid;
    }
    if grammar == PushGrammar::Tls {
        let head = after.get(..after.len().min(5)).unwrap_or_default();
        return match grammar.total(head) {
            Err(()) => Follow::Invalid,
            Ok(None) => Follow::Pending,
            Ok(Some(_)) => Follow::Valid,
        };
    }
    let head = after.get(..after.len().min(HEAD)).unwrap_or_default();
    let Some(len) = remaining_len(head) else {
        return if head.len() >= 5 {
            Follow::Invalid
        } else {
            Follow::Pending
        };
    };
    let total = header_len(head).map(|h| h + len);
    if !plausible_mqtt(first, len) || !plausible_publish_start(head, total) {
        return Follow::Invalid;
    }
    if head.len() >= confirm_len(head) || total.is_some_and(|t| head.len() >= t) {
        Follow::Valid
    } else {
        Follow::Pending
    }
}

/// Could a packet with this first byte and remaining length come from a broker? (Rejects
/// lines that merely start with a digit or a space.)
pub fn plausible_mqtt(first: u8, len: usize) -> bool {
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

/// For a packet being framed (`head` = its first data bytes): a CONNACK's flags are 0 or 1;
/// a PUBLISH's topic length fits the packet and its topic is text.
fn plausible_publish_start(head: &[u8], total: Option<usize>) -> bool {
    let (Some(&first), Some(h)) = (head.first(), header_len(head)) else {
        return true;
    };
    let body = head.get(h..).unwrap_or_default();
    if first == 0x20 {
        return body.first().is_none_or(|f| *f <= 1);
    }
    if !(0x30..=0x3d).contains(&first) {
        return true;
    }
    let (Some(&a), Some(&b)) = (body.first(), body.get(1)) else {
        return true;
    };
    let topic_len = usize::from(u16::from_be_bytes([a, b]));
    let id_len = if first & 0x06 != 0 { 2 } else { 0 };
    let len = total.unwrap_or(usize::MAX).saturating_sub(h);
    if topic_len == 0 || topic_len + 2 + id_len > len {
        return false;
    }
    // The topic bytes seen so far must be printable text (no CR, LF or NUL).
    body.iter()
        .skip(2)
        .take(topic_len)
        .all(|&c| c >= 0x20 && c != 0x7f)
}

/// First bytes of packets a broker sends: CONNACK, PUBLISH (QoS 0-2, DUP, retain), PUBACK,
/// PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP, DISCONNECT, AUTH.
pub fn is_mqtt_server_first_byte(b: u8) -> bool {
    matches!(
        b,
        0x20 | 0x30..=0x35 | 0x3a..=0x3d | 0x40 | 0x50 | 0x62 | 0x70 | 0x90 | 0xb0 | 0xd0 | 0xe0 | 0xf0
    )
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
