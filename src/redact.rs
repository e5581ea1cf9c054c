//! Redaction: the one place that knows what a secret looks like in output.
//!
//! A secret var's value can reach an output in several forms: as is, as hex (upper or lower
//! case, with or without spaces, as sim7k prints payloads and hex-mode sends), or as base64.
//! [`Secrets`] holds every form of every secret, longest first, and replaces each by
//! [`REDACTED`]. [`StreamRedactor`] does the same for output written piece by piece (a
//! transcript, a log, a terminal): it holds back the few bytes at the end of a piece that
//! could be the start of a secret, so a value split across two writes is still caught.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "***";

/// Every output form of a set of secret values. Its `Debug` shows how many forms it holds,
/// never the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest first, no duplicates, none empty.
    forms: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("forms", &self.forms.len())
            .finish()
    }
}

impl Secrets {
    /// No secrets.
    pub fn new() -> Secrets {
        Secrets::default()
    }

    /// The forms of these secret values.
    pub fn from_values<I, V>(values: I) -> Secrets
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let mut s = Secrets::new();
        for v in values {
            s.add(v.as_ref());
        }
        s
    }

    /// Add a secret value (all its forms). An empty value hides nothing.
    pub fn add(&mut self, value: &[u8]) {
        if value.is_empty() {
            return;
        }
        let upper = crate::util::hex::hex(value, "");
        let spaced = crate::util::hex::hex(value, " ");
        let mut forms = vec![
            value.to_vec(),
            upper.to_ascii_lowercase().into_bytes(),
            spaced.to_ascii_lowercase().into_bytes(),
            upper.into_bytes(),
            spaced.into_bytes(),
        ];
        // base64 of the value alone; shorter values have too little of their own in it.
        if value.len() >= 3 {
            let std = base64(value, STANDARD);
            forms.push(std.trim_end_matches('=').as_bytes().to_vec());
            forms.push(
                base64(value, URL_SAFE)
                    .trim_end_matches('=')
                    .as_bytes()
                    .to_vec(),
            );
        }
        self.forms.extend(forms);
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        self.forms.dedup();
    }

    /// Add every form of another set.
    pub fn extend(&mut self, other: &Secrets) {
        self.forms.extend(other.forms.iter().cloned());
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        self.forms.dedup();
    }

    /// True when nothing is secret.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// The forms, longest first.
    pub fn forms(&self) -> &[Vec<u8>] {
        &self.forms
    }

    /// True when `bytes` contains a secret in any form.
    pub fn found_in(&self, bytes: &[u8]) -> bool {
        self.forms
            .iter()
            .any(|f| bytes.windows(f.len()).any(|w| w == f.as_slice()))
    }

    /// Where secret forms occur in `bytes`, as ranges in order (overlapping occurrences
    /// merged). A data send keeps each range in one chunk, so no chunk boundary shows a piece
    /// of a secret.
    pub fn occurrences(&self, bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
        let mut out: Vec<std::ops::Range<usize>> = Vec::new();
        if self.forms.is_empty() {
            return out;
        }
        for i in 0..bytes.len() {
            let Some(len) = self.match_at(&bytes[i..]) else {
                continue;
            };
            let r = i..i + len;
            match out.last_mut() {
                Some(last) if r.start < last.end => last.end = last.end.max(r.end),
                _ => out.push(r),
            }
        }
        out
    }

    /// `bytes` with every secret form replaced by [`REDACTED`].
    pub fn redact<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.found_in(bytes) {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match self.match_at(&bytes[i..]) {
                Some(len) => {
                    out.extend_from_slice(REDACTED.as_bytes());
                    i += len;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        Cow::Owned(out)
    }

    /// Text with every secret form replaced by [`REDACTED`].
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
        }
    }

    /// Length of the secret form that starts `bytes`, if one does.
    fn match_at(&self, bytes: &[u8]) -> Option<usize> {
        self.forms
            .iter()
            .find(|f| bytes.starts_with(f))
            .map(|f| f.len())
    }

    /// True when `tail` is a proper beginning of some secret form.
    fn could_start(&self, tail: &[u8]) -> bool {
        self.forms
            .iter()
            .any(|f| f.len() > tail.len() && f.starts_with(tail))
    }
}

impl From<Vec<Vec<u8>>> for Secrets {
    /// Secrets from forms already made (such as [`Secrets::forms`] of another set): each is
    /// redacted as given, no further forms are derived.
    fn from(mut forms: Vec<Vec<u8>>) -> Secrets {
        forms.retain(|f| !f.is_empty());
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Secrets { forms }
    }
}

/// Redacts output written piece by piece: a secret split across pieces is still replaced.
#[derive(Debug, Clone, Default)]
pub struct StreamRedactor {
    held: Vec<u8>,
}

impl StreamRedactor {
    /// A redactor with nothing held.
    pub fn new() -> StreamRedactor {
        StreamRedactor::default()
    }

    /// Take the next piece; returns what can be written now (redacted). Bytes that may be
    /// the beginning of a secret are held until the next piece or [`StreamRedactor::flush`].
    pub fn push(&mut self, secrets: &Secrets, bytes: &[u8]) -> Vec<u8> {
        if secrets.is_empty() && self.held.is_empty() {
            return bytes.to_vec();
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            if let Some(len) = secrets.match_at(&buf[i..]) {
                out.extend_from_slice(REDACTED.as_bytes());
                i += len;
            } else if secrets.could_start(&buf[i..]) {
                self.held = buf[i..].to_vec();
                return out;
            } else {
                out.push(buf[i]);
                i += 1;
            }
        }
        out
    }

    /// True when bytes are held back.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Everything held back, redacted.
    pub fn flush(&mut self, secrets: &Secrets) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        secrets.redact(&held).into_owned()
    }
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 with padding, for the secret forms (and for tests that look for them).
pub fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                let idx = (n >> (18 - 6 * k)) & 0x3f;
                s.push(char::from(alphabet[idx as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Standard base64 of `bytes` (padded).
pub fn base64_standard(bytes: &[u8]) -> String {
    base64(bytes, STANDARD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_redacted() {
        let s = Secrets::from_values(["hunter2"]);
        let text = "hunter2 68756E74657232 68756e74657232 68 75 6E 74 65 72 32 aHVudGVyMg hunter";
        assert_eq!(s.redact_str(text), "*** *** *** *** *** hunter");
    }

    #[test]
    fn base64_matches_the_usual_encoding() {
        assert_eq!(base64_standard(b"hunter2"), "aHVudGVyMg==");
        assert_eq!(base64_standard(b"abc"), "YWJj");
        assert_eq!(base64_standard(b""), "");
        assert_eq!(base64(&[0xfb, 0xff], URL_SAFE), "-_8=");
    }

    #[test]
    fn a_secret_split_across_pieces_is_caught() {
        let s = Secrets::from_values(["S3cr3t-XYZ"]);
        let mut r = StreamRedactor::new();
        let mut out = r.push(&s, b"password S3cr3t-");
        assert!(r.holding());
        out.extend(r.push(&s, b"XYZ and more"));
        out.extend(r.flush(&s));
        assert_eq!(String::from_utf8(out).unwrap(), "password *** and more");
    }

    #[test]
    fn a_false_start_is_released() {
        let s = Secrets::from_values(["secret"]);
        let mut r = StreamRedactor::new();
        let mut out = r.push(&s, b"sec");
        assert!(out.is_empty());
        out.extend(r.push(&s, b"ond"));
        assert_eq!(out, b"second");
        assert!(!r.holding());
    }

    #[test]
    fn occurrences_are_found_and_merged() {
        let s = Secrets::from_values(["S3cr3t-XYZ"]);
        let text = b"pw S3cr3t-XYZ and 5333637233742D58595A, S3cr3t-XYZS3cr3t-XYZ";
        let r = s.occurrences(text);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(r[0], 3..13);
        assert_eq!(r[1], 18..38);
        assert_eq!(r[3], text.len() - 10..text.len());
        assert!(Secrets::new().occurrences(text).is_empty());
        let forms = Secrets::from(s.forms().to_vec());
        assert_eq!(forms, s);
    }

    #[test]
    fn the_longest_secret_wins() {
        let s = Secrets::from_values(["abc", "abcdef"]);
        assert_eq!(s.redact_str("xabcdefy abcx"), "x***y ***x");
    }
}
