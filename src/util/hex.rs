//! Hex text: one formatter and one parser for the whole crate.

use std::fmt;

/// Upper-case hex pairs separated by `sep` (`"48 69"` or `"4869"`).
pub fn hex(bytes: &[u8], sep: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * (2 + sep.len()));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Why a hex text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexError {
    /// Byte offset of the offending character in the input.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad hex at character {}: {}",
            self.position, self.message
        )
    }
}

impl std::error::Error for HexError {}

/// Parse hex: pairs of digits, optionally separated by whitespace or commas, each group
/// optionally prefixed with `0x`; `#` starts a comment to the end of the line.
pub fn parse_hex(input: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut pending: Option<(usize, u8)> = None;
    let mut chars = input.char_indices().peekable();
    let mut in_comment = false;
    let mut at_group_start = true;
    while let Some((pos, c)) = chars.next() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if c == '#' || c.is_whitespace() || c == ',' {
            if let Some((p, _)) = pending {
                return Err(HexError {
                    position: p,
                    message: "odd number of hex digits in this group".into(),
                });
            }
            in_comment = c == '#';
            at_group_start = true;
            continue;
        }
        if at_group_start
            && c == '0'
            && pending.is_none()
            && matches!(chars.peek(), Some((_, 'x' | 'X')))
        {
            chars.next();
            at_group_start = false;
            continue;
        }
        at_group_start = false;
        let Some(d) = c.to_digit(16) else {
            return Err(HexError {
                position: pos,
                message: format!("'{c}' is not a hex digit"),
            });
        };
        // to_digit(16) is below 16.
        let d = d as u8;
        pending = match pending {
            None => Some((pos, d)),
            Some((_, hi)) => {
                out.push(hi << 4 | d);
                None
            }
        };
    }
    if let Some((p, _)) = pending {
        return Err(HexError {
            position: p,
            message: "odd number of hex digits in this group".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let bytes = [0x00, 0x1a, 0xff, 0x48];
        assert_eq!(hex(&bytes, " "), "00 1A FF 48");
        assert_eq!(hex(&bytes, ""), "001AFF48");
        assert_eq!(parse_hex("00 1A ff 48").unwrap(), bytes);
        assert_eq!(parse_hex("0x001a,0xff48 # comment\n").unwrap(), bytes);
    }

    #[test]
    fn odd_groups_and_bad_digits_are_errors() {
        let e = parse_hex("00 1 ff").unwrap_err();
        assert_eq!(e.position, 3);
        assert!(e.message.contains("odd"));
        let e = parse_hex("0g").unwrap_err();
        assert_eq!(e.position, 1);
    }
}
