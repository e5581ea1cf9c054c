//! One line of a sim7k transcript (format: see [`crate::transcript`]):
//! `   0.012 > AT+CIPSEND=5\r`, `   0.020 < \r\nOK\r\n`, `   0.020 # step 3 passed`.

/// What a transcript line records.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `>`: bytes sim7k wrote to the modem.
    Written(Vec<u8>),
    /// `<`: bytes the modem sent.
    Read(Vec<u8>),
    /// `#`: a note (step boundaries, verdicts).
    Note,
}

/// A parsed transcript line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The timestamp as written (seconds since the run started, e.g. `0.012`).
    pub stamp: String,
    /// The same in seconds.
    pub seconds: f64,
    /// What the line records.
    pub kind: Kind,
}

/// Parse one transcript line; `None` for a line that is not an entry (blank, or text that
/// does not start with a timestamp and a direction).
pub(crate) fn parse_line(line: &str) -> Option<Entry> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let rest = line.trim_start();
    let (stamp, rest) = rest.split_once(' ')?;
    let seconds: f64 = stamp.parse().ok().filter(|s: &f64| s.is_finite())?;
    let mut chars = rest.chars();
    let dir = chars.next()?;
    // The payload follows one space; an empty entry may have lost it.
    let body = rest.get(1..).unwrap_or_default();
    let body = body.strip_prefix(' ').unwrap_or(body);
    let kind = match dir {
        '>' => Kind::Written(unescape(body)),
        '<' => Kind::Read(unescape(body)),
        '#' => Kind::Note,
        _ => return None,
    };
    Some(Entry {
        stamp: stamp.to_owned(),
        seconds,
        kind,
    })
}

/// Undo the transcript's escaping: `\r`, `\n`, `\t`, `\\` and `\xNN` (either case); anything
/// else (a backslash before another character, a bad `\x`) is kept as written.
pub(crate) fn unescape(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let digits = b
                    .get(i + 2..i + 4)
                    .and_then(|d| std::str::from_utf8(d).ok());
                match digits.and_then(|d| u8::from_str_radix(d, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                    None => {
                        out.extend_from_slice(b"\\x");
                    }
                }
            }
            Some(&other) => {
                out.push(b'\\');
                out.push(other);
            }
            None => {
                out.push(b'\\');
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_entry() {
        let e = parse_line("   0.012 > AT+CIPSEND=5\\r").unwrap();
        assert_eq!(e.stamp, "0.012");
        assert_eq!(e.kind, Kind::Written(b"AT+CIPSEND=5\r".to_vec()));
        let e = parse_line("   0.009 < > ").unwrap();
        assert_eq!(e.kind, Kind::Read(b"> ".to_vec()));
        let e = parse_line("12345.678 < \\r\\n+CIPRXGET: 2,8,0\\r\\n \\x02\\x00\\x00").unwrap();
        assert_eq!(
            e.kind,
            Kind::Read(b"\r\n+CIPRXGET: 2,8,0\r\n \x02\x00\x00".to_vec())
        );
        assert_eq!(
            parse_line("   0.020 # step 3 passed").unwrap().kind,
            Kind::Note
        );
        assert!(parse_line("ok    [1/30] echo off").is_none());
        assert!(parse_line("").is_none());
        assert!(parse_line("   nan > x").is_none());
    }

    #[test]
    fn unescape_is_the_inverse_of_the_transcript_escaping() {
        let all: Vec<u8> = (0..=255).collect();
        let escaped = crate::util::escape::escape_bytes(&all);
        assert_eq!(unescape(&escaped), all);
        assert_eq!(unescape("\\x1A\\x1a"), vec![0x1A, 0x1A]);
        // Not an escape: kept as is.
        assert_eq!(unescape("a\\qb\\x4"), b"a\\qb\\x4".to_vec());
        assert_eq!(unescape("end\\"), b"end\\".to_vec());
    }
}
