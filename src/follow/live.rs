//! The MQTT conversation of a run as it happens (`sim7k run -vv`): the bytes the runner
//! writes to the modem and reads from it go through the same [`Follower`] as a transcript
//! does, and each decoded packet becomes one line. The lines are not redacted here: the
//! runner replaces the run's secrets in them before they are shown.

use std::time::Instant;

use super::{Direction, Follower, Item};
use crate::mqtt::Protocol;
use crate::util::escape::SHOWN_CHARS;

/// Decoded MQTT lines from live traffic.
#[derive(Debug)]
pub struct LiveView {
    follower: Follower,
    start: Instant,
}

impl LiveView {
    /// A view of a run that started at `start` (MQTT 3.1.1 until a CONNECT says otherwise).
    pub fn new(start: Instant) -> LiveView {
        LiveView {
            follower: Follower::new(Protocol::V311),
            start,
        }
    }

    fn seconds(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.start).as_secs_f64()
    }

    /// Bytes written to the modem: the lines of the packets they complete.
    pub fn written(&mut self, bytes: &[u8], now: Instant) -> Vec<String> {
        let at = self.seconds(now);
        lines(self.follower.written(bytes, at))
    }

    /// Bytes read from the modem: the lines of the packets they complete.
    pub fn read(&mut self, bytes: &[u8], now: Instant) -> Vec<String> {
        let at = self.seconds(now);
        lines(self.follower.read(bytes, at))
    }

    /// The run ended: packets left incomplete.
    pub fn finish(&mut self) -> Vec<String> {
        lines(self.follower.finish())
    }
}

fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::Sent => ">",
        Direction::Received => "<",
    }
}

fn lines(items: Vec<Item>) -> Vec<String> {
    items.iter().map(line).collect()
}

/// One line per item: `> MQTT CONNECT …`, `< MQTT CONNACK 0x00 …`.
fn line(item: &Item) -> String {
    match item {
        Item::Packet(p) => {
            let mut s = format!(
                "{} MQTT {}",
                arrow(p.direction),
                p.packet.summary(p.protocol, Some(SHOWN_CHARS))
            );
            for w in &p.warnings {
                s.push_str(&format!(" (warning: {w})"));
            }
            s
        }
        Item::Undecodable {
            direction,
            length,
            reason,
            ..
        } => format!(
            "{} MQTT {length} bytes that do not decode: {reason}",
            arrow(*direction)
        ),
        Item::Note { text, .. } => format!("  MQTT {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Connect, Packet};

    #[test]
    fn a_cipsend_payload_and_the_pushed_reply_become_packet_lines() {
        let start = Instant::now();
        let mut v = LiveView::new(start);
        let connect = Packet::Connect(Connect::new(Protocol::V311, "dev1"))
            .encode(Protocol::V311)
            .unwrap();
        let mut got = Vec::new();
        got.extend(v.written(b"AT+CIPSTART=\"TCP\",\"broker\",1883\r", start));
        got.extend(v.read(b"\r\nOK\r\n\r\nCONNECT OK\r\n", start));
        got.extend(v.written(format!("AT+CIPSEND={}\r", connect.len()).as_bytes(), start));
        got.extend(v.read(b"\r\n> ", start));
        got.extend(v.written(&connect, start));
        got.extend(v.read(b"\r\nSEND OK\r\n", start));
        let text = got.join("\n");
        assert!(text.contains("> MQTT CONNECT"), "{text}");
        assert!(text.contains("dev1"), "{text}");
    }
}
