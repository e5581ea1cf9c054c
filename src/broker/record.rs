//! What the broker received, and how it is shown: one line for a terminal or one JSON object,
//! with secrets replaced ([`crate::redact::Secrets`]) and text from the client escaped.

use crate::redact::Secrets;
use crate::util::escape::{shorten, shorten_bytes};

/// A PUBLISH the broker received from a client, exactly as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Topic name (a 5.0 topic alias is resolved to its topic).
    pub topic: String,
    /// Payload bytes (shared: the summary, the JSON and every copy of the list hold one
    /// buffer).
    pub payload: std::sync::Arc<[u8]>,
    /// QoS the client published with (0, 1 or 2).
    pub qos: u8,
    /// RETAIN flag as sent.
    pub retain: bool,
}

/// Payload characters shown on one summary line.
const LINE_PAYLOAD: usize = 80;

/// Payloads up to this size are shown in full in JSON (as text and hex); larger ones by
/// length and checksum only.
pub const JSON_PAYLOAD_MAX: usize = 4096;

impl ReceivedMessage {
    /// The topic for output: secrets replaced, control characters escaped.
    pub fn shown_topic(&self, secrets: &Secrets) -> String {
        shorten(
            &secrets.redact_str(&self.topic),
            crate::util::escape::SHOWN_CHARS,
        )
    }

    /// One line for a terminal: `topic (QoS 1, retained): payload`, secrets replaced, control
    /// bytes escaped, a long payload shortened.
    pub fn summary_line(&self, secrets: &Secrets) -> String {
        let payload = secrets.redact(&self.payload);
        let shown = match std::str::from_utf8(&payload) {
            Ok(text) => shorten(text, LINE_PAYLOAD),
            Err(_) => shorten_bytes(&payload, LINE_PAYLOAD),
        };
        format!(
            "{} (QoS {}{}): {shown}",
            self.shown_topic(secrets),
            self.qos,
            if self.retain { ", retained" } else { "" },
        )
    }

    /// A JSON object: `topic`, `payload_len`, `payload_fnv1a64`, `qos`, `retain`, and for
    /// payloads up to [`JSON_PAYLOAD_MAX`] bytes `payload` (lossy UTF-8) and `payload_hex`.
    ///
    /// A payload that carries a secret is shown with the secret replaced, its checksum is that
    /// of the payload as shown, and `"redacted": true` says so (`payload_len` stays the length
    /// received).
    pub fn to_json(&self, secrets: &Secrets) -> serde_json::Value {
        let payload = secrets.redact(&self.payload);
        let redacted = matches!(payload, std::borrow::Cow::Owned(_));
        let mut j = serde_json::json!({
            "topic": secrets.redact_str(&self.topic),
            "payload_len": self.payload.len(),
            "payload_fnv1a64": format!("{:016x}", fnv1a64(&payload)),
            "qos": self.qos,
            "retain": self.retain,
        });
        if payload.len() <= JSON_PAYLOAD_MAX {
            let text = String::from_utf8_lossy(&payload);
            j["payload"] = secrets.redact_str(&text).into();
            let hex = crate::util::hex::hex(&payload, "");
            j["payload_hex"] = secrets.redact_str(&hex).into();
        }
        if redacted {
            j["redacted"] = true.into();
        }
        j
    }
}

/// FNV-1a, 64-bit: a checksum for payloads in JSON summaries.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(payload: &[u8]) -> ReceivedMessage {
        ReceivedMessage {
            topic: "t/\x1b[2J".into(),
            payload: payload.into(),
            qos: 1,
            retain: true,
        }
    }

    #[test]
    fn lines_escape_and_shorten() {
        let none = Secrets::new();
        assert_eq!(
            msg(b"hi\x1b]0;x\x07").summary_line(&none),
            "t/\\x1b[2J (QoS 1, retained): hi\\x1b]0;x\\x07"
        );
        let long = msg(&[b'a'; 100]).summary_line(&none);
        assert!(long.ends_with("… 20 bytes more"), "{long}");
        assert!(
            msg(&[0xFF, 0x00])
                .summary_line(&none)
                .ends_with("\\xff\\x00")
        );
    }

    #[test]
    fn secrets_are_hidden_in_lines_and_json() {
        // Regression (issue 11 point 7): the summary and --json showed a payload's secret.
        let s = Secrets::from_values(["S3cr3t-XYZ"]);
        let m = msg(b"{\"pw\":\"S3cr3t-XYZ\"}");
        let line = m.summary_line(&s);
        assert!(!line.contains("S3cr3t"), "{line}");
        assert!(line.contains("***"), "{line}");
        let j = m.to_json(&s).to_string();
        assert!(!s.found_in(j.as_bytes()), "{j}");
        assert!(j.contains("\"redacted\":true"), "{j}");
        // Without secrets the JSON carries the payload as is.
        let plain = m.to_json(&Secrets::new());
        assert_eq!(plain["payload"], "{\"pw\":\"S3cr3t-XYZ\"}");
        assert_eq!(plain["payload_len"], 19);
        assert!(plain.get("redacted").is_none());
    }

    #[test]
    fn large_payloads_by_length_and_checksum() {
        let j = msg(&vec![7u8; JSON_PAYLOAD_MAX + 1]).to_json(&Secrets::new());
        assert!(j.get("payload").is_none());
        assert_eq!(j["payload_len"], JSON_PAYLOAD_MAX + 1);
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
