//! Splitting an AT command line into commands and parameters: the line is split by the
//! one AT-layer splitter ([`crate::at::split`]), the same the engine and the recipe loader
//! use; what is left here is the emulator's own reading of parameters.

pub(crate) use crate::at::split::{Form, Part as Cmd};

/// Longest command line the module accepts (SIM7000 manual V1.06 §1.4.4).
pub(crate) const MAX_LINE: usize = crate::at::limits::MAX_COMMAND_LINE;

/// The command as text, normalised for fault matching (no leading `+`).
pub(crate) fn fault_text(cmd: &Cmd) -> String {
    let n = cmd.name.trim_start_matches('+');
    match &cmd.form {
        Form::Exec => n.to_string(),
        Form::Read => format!("{n}?"),
        Form::Test => format!("{n}=?"),
        Form::Write(p) if cmd.name.starts_with('+') => {
            format!("{n}={}", p.to_ascii_uppercase())
        }
        Form::Write(p) => format!("{n}{p}"),
    }
}

/// Parse the text after `AT` into commands. `Err(())` on a syntax error or too many
/// commands (the whole line then answers ERROR and nothing runs).
pub(crate) fn split_line(body: &[u8]) -> Result<Vec<Cmd>, ()> {
    crate::at::split::split_body(body).map_err(|_| ())
}

/// One parameter of a write command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    /// Text without quotes.
    pub text: String,
    /// Whether it was quoted.
    pub quoted: bool,
}

impl Param {
    /// Integer value (quoted or not), if any.
    pub(super) fn int(&self) -> Option<i64> {
        self.text.trim().parse().ok()
    }
    /// Empty (omitted) parameter.
    pub(super) fn is_empty(&self) -> bool {
        !self.quoted && self.text.is_empty()
    }
}

/// Split `a,"b,c",,d` into parameters. `Err(())` on an unterminated quote or junk after a
/// closing quote.
pub(crate) fn params(s: &str) -> Result<Vec<Param>, ()> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i < b.len() && b[i] == b'"' {
            let start = i + 1;
            let Some(end) = s[start..].find('"').map(|e| start + e) else {
                return Err(());
            };
            out.push(Param {
                text: s[start..end].to_string(),
                quoted: true,
            });
            i = end + 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && b[i] != b',' {
                return Err(());
            }
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            out.push(Param {
                text: s[start..i].trim().to_string(),
                quoted: false,
            });
        }
        if i >= b.len() {
            break;
        }
        i += 1; // the comma
    }
    if out.len() == 1 && out[0].is_empty() {
        out.clear();
    }
    Ok(out)
}

/// Parse one hex digit.
pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<(String, Form)> {
        split_line(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.form))
            .collect()
    }

    /// The line after `AT` goes through the one AT-layer splitter (`at::split`, tested
    /// there in full): an empty line is a bare `AT`, case is folded, quotes are kept.
    #[test]
    fn the_line_after_at_is_split_by_the_at_layer() {
        assert_eq!(names(""), vec![(String::new(), Form::Exec)]);
        assert_eq!(
            names("+creg?;+CSTT=\"a;b\";E0"),
            vec![
                ("+CREG".into(), Form::Read),
                ("+CSTT".into(), Form::Write("\"a;b\"".into())),
                ("E".into(), Form::Write("0".into()))
            ]
        );
    }

    #[test]
    fn syntax_errors() {
        assert!(split_line(b"+").is_err());
        assert!(split_line(b"+CSTT=\"open").is_err());
        assert!(split_line(b"+CSQ junk").is_err());
        assert!(split_line(b"@").is_err());
        assert!(split_line(b"&").is_err());
        let many = "E0;".repeat(40);
        assert!(split_line(many.as_bytes()).is_err());
    }

    #[test]
    fn parameters() {
        let p = params("\"TCP\",\"host\",80").unwrap();
        assert_eq!(p.len(), 3);
        assert!(p[0].quoted);
        assert_eq!(p[2].int(), Some(80));
        let p = params("1,,,\"00100001\"").unwrap();
        assert_eq!(p.len(), 4);
        assert!(p[1].is_empty());
        assert_eq!(p[3].text, "00100001");
        assert_eq!(params("").unwrap().len(), 0);
        assert_eq!(params("\"a,b\"").unwrap()[0].text, "a,b");
        assert!(params("\"a").is_err());
        assert!(params("\"a\"x").is_err());
        assert_eq!(params("\"\"").unwrap()[0].text, "");
    }

    #[test]
    fn fault_text_is_normalised() {
        let c = &split_line(b"+cipstart=\"tcp\",\"h\",1").unwrap()[0];
        assert_eq!(super::fault_text(c), "CIPSTART=\"TCP\",\"H\",1");
        let c = &split_line(b"E0").unwrap()[0];
        assert_eq!(super::fault_text(c), "E0");
    }
}
