//! Escaping of text that comes from outside (the modem, a broker, a recipe) before it reaches
//! a terminal or a record: control bytes (ESC sequences among them) are shown as `\xNN`, and
//! long text is shortened so one runaway line cannot flood a console.

/// Escape bytes for a one-line entry: printable ASCII as is, a backslash doubled, `\r`, `\n`,
/// `\t` and every other byte (control bytes, DEL, non-ASCII) as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 8);
    for &b in bytes {
        push_escaped_byte(&mut s, b);
    }
    s
}

fn push_escaped_byte(s: &mut String, b: u8) {
    match b {
        b'\r' => s.push_str("\\r"),
        b'\n' => s.push_str("\\n"),
        b'\t' => s.push_str("\\t"),
        b'\\' => s.push_str("\\\\"),
        0x20..=0x7e => s.push(char::from(b)),
        _ => {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            s.push_str("\\x");
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
    }
}

/// Make text safe for a terminal line or a record field: printable characters (any script)
/// are kept, control characters (C0, DEL, C1, among them ESC and the CSI that start terminal
/// escape sequences) become `\xNN` / `\u{NNNN}`, a backslash stays as is.
pub fn escape_text(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            match c {
                '\r' => s.push_str("\\r"),
                '\n' => s.push_str("\\n"),
                '\t' => s.push_str("\\t"),
                c if (c as u32) < 0x100 => s.push_str(&format!("\\x{:02x}", c as u32)),
                c => s.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            }
        } else {
            s.push(c);
        }
    }
    s
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional overrides and isolates can reorder what a terminal shows.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Longest text shown in one console line before it is shortened.
pub const SHOWN_CHARS: usize = 200;

/// [`escape_text`], then shortened to `max` characters with `… N bytes more` when longer.
pub fn shorten(text: &str, max: usize) -> String {
    let escaped = escape_text(text);
    match escaped.char_indices().nth(max) {
        None => escaped,
        Some((cut, _)) => {
            let more = escaped.len() - cut;
            format!("{}… {more} bytes more", &escaped[..cut])
        }
    }
}

/// [`escape_bytes`], then shortened to `max` characters with `… N bytes more` (counting the
/// original bytes not shown).
pub fn shorten_bytes(bytes: &[u8], max: usize) -> String {
    let mut s = String::with_capacity(max.min(bytes.len() * 4) + 24);
    for (i, &b) in bytes.iter().enumerate() {
        if s.len() >= max {
            return format!("{s}… {} bytes more", bytes.len() - i);
        }
        push_escaped_byte(&mut s, b);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(
            escape_bytes(b"AT\r\n\x1a\x00\\ok"),
            "AT\\r\\n\\x1a\\x00\\\\ok"
        );
        assert_eq!(escape_text("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape_text("caf\u{e9} \u{9b}"), "caf\u{e9} \\x9b");
        assert_eq!(escape_text("plain"), "plain");
    }

    #[test]
    fn long_text_is_shortened() {
        let long = "x".repeat(1000);
        let s = shorten(&long, 200);
        assert!(s.starts_with(&"x".repeat(200)));
        assert!(s.ends_with("… 800 bytes more"), "{s}");
        assert_eq!(shorten("short", 200), "short");
        let b = shorten_bytes(&vec![b'y'; 1000], 10);
        assert_eq!(b, format!("{}… 990 bytes more", "y".repeat(10)));
    }
}
