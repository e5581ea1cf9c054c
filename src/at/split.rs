//! The one AT command-line splitter: a line (`AT+CIFSR;E0`, `ATE0V1&W`, `AT+CSTT="a;b"`)
//! into its commands, as the SIM7000 reads it (V.25ter §5.2, SIM7000 Series AT Command
//! Manual V1.06 §1.4). The engine (modes), the recipe loader (what a `send:` does) and the
//! emulator (what to execute) all split lines here.
//!
//! Rules: one leading `AT` (any case); extended commands (`+X`, `*X`, `$X`, `#X`, `^X`,
//! `!X`) end at `;` (outside quotes) or at the end of the line; basic commands (`E0`, `V1`,
//! `&W`, `I`, `S3=13`) follow each other directly (`E0V1&W`) and need no `;`. At most
//! [`MAX_CHAINED`] commands per line.

use crate::at::limits::MAX_CHAINED;

/// The form of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `AT+X`, or a basic command without digits (`ATE`).
    Exec,
    /// `AT+X?`
    Read,
    /// `AT+X=?`
    Test,
    /// `AT+X=<params>` (the text after `=`, trimmed), or a basic command with digits
    /// (`ATE0` → `"0"`, `ATS3=13` → `"13"`).
    Write(String),
}

/// One command of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Upper-case name: `+CIPSTART`, `E`, `&W`, `I`, `S3`, or empty for a bare `AT`.
    pub name: String,
    /// Its form.
    pub form: Form,
}

impl Part {
    /// True for extended commands (`+X`, `*X`, …).
    pub fn is_extended(&self) -> bool {
        self.name.bytes().next().is_some_and(is_ext_prefix)
    }

    /// The write parameters, when this is a write (`AT+X=<params>`).
    pub fn params(&self) -> Option<&str> {
        match &self.form {
            Form::Write(p) => Some(p),
            _ => None,
        }
    }

    /// The numeric argument of a basic command (`E0` → 0, `E` → 0 as V.25ter says).
    pub fn basic_value(&self) -> Option<u32> {
        if self.is_extended() {
            return None;
        }
        match &self.form {
            Form::Exec => Some(0),
            Form::Write(v) => v.parse().ok(),
            _ => None,
        }
    }

    /// The `n`-th comma-separated parameter of a write, unquoted and trimmed.
    pub fn param(&self, n: usize) -> Option<String> {
        let params = self.params()?;
        split_params(params).into_iter().nth(n)
    }
}

/// Why a line could not be split (the module answers `ERROR` and runs nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// The line does not start with `AT`.
    NoAt,
    /// A character that starts no command, an unterminated quote, junk after a command.
    Syntax,
    /// More than [`MAX_CHAINED`] commands.
    TooMany,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SplitError::NoAt => "the line does not start with `AT`",
            SplitError::Syntax => "the line is not valid AT syntax",
            SplitError::TooMany => "more commands on one line than the module accepts",
        })
    }
}

impl std::error::Error for SplitError {}

/// Split a whole command line (`AT…`, any case, trailing CR/LF ignored).
pub fn split(line: &str) -> Result<Vec<Part>, SplitError> {
    let t = line.trim_end_matches(['\r', '\n']).trim();
    let bytes = t.as_bytes();
    match bytes {
        [a, t2, rest @ ..] if a.eq_ignore_ascii_case(&b'A') && t2.eq_ignore_ascii_case(&b'T') => {
            split_body(rest)
        }
        _ => Err(SplitError::NoAt),
    }
}

fn is_ext_prefix(c: u8) -> bool {
    matches!(c, b'+' | b'*' | b'$' | b'#' | b'^' | b'!')
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'%' | b'-' | b'.' | b'/' | b':' | b'!')
}

/// Split the text after `AT` into commands.
pub fn split_body(body: &[u8]) -> Result<Vec<Part>, SplitError> {
    let mut cmds = Vec::new();
    let n = body.len();
    let at = |i: usize| body.get(i).copied();
    let skip_ws = |i: &mut usize| {
        while at(*i) == Some(b' ') {
            *i += 1;
        }
    };
    let text = |a: usize, b: usize| String::from_utf8_lossy(body.get(a..b).unwrap_or_default());
    let mut i = 0;
    skip_ws(&mut i);
    if i == n {
        cmds.push(Part {
            name: String::new(),
            form: Form::Exec,
        });
        return Ok(cmds);
    }
    while i < n {
        skip_ws(&mut i);
        let Some(c) = at(i) else { break };
        if c == b';' {
            i += 1;
            continue;
        }
        if is_ext_prefix(c) {
            let start = i;
            i += 1;
            while at(i).is_some_and(is_name_char) {
                i += 1;
            }
            if i == start + 1 {
                return Err(SplitError::Syntax);
            }
            let name = text(start, i).to_ascii_uppercase();
            skip_ws(&mut i);
            let form = match at(i) {
                Some(b'?') => {
                    i += 1;
                    Form::Read
                }
                Some(b'=') => {
                    i += 1;
                    skip_ws(&mut i);
                    if at(i) == Some(b'?') {
                        i += 1;
                        Form::Test
                    } else {
                        let pstart = i;
                        let mut quoted = false;
                        while let Some(b) = at(i) {
                            if b == b';' && !quoted {
                                break;
                            }
                            if b == b'"' {
                                quoted = !quoted;
                            }
                            i += 1;
                        }
                        if quoted {
                            return Err(SplitError::Syntax);
                        }
                        Form::Write(text(pstart, i).trim().to_string())
                    }
                }
                _ => Form::Exec,
            };
            skip_ws(&mut i);
            if at(i).is_some_and(|b| b != b';') {
                return Err(SplitError::Syntax);
            }
            cmds.push(Part { name, form });
        } else if c.is_ascii_alphabetic() || c == b'&' {
            let start = i;
            i += 1;
            if c == b'&' {
                if !at(i).is_some_and(|b| b.is_ascii_alphabetic()) {
                    return Err(SplitError::Syntax);
                }
                i += 1;
            }
            let name = text(start, i).to_ascii_uppercase();
            let ds = i;
            while at(i).is_some_and(|b| b.is_ascii_digit()) {
                i += 1;
            }
            if name == "S" {
                // S-register: S<n>? or S<n>=<v>
                if ds == i {
                    return Err(SplitError::Syntax);
                }
                let reg = text(ds, i).to_string();
                let form = match at(i) {
                    Some(b'?') => {
                        i += 1;
                        Form::Read
                    }
                    Some(b'=') => {
                        i += 1;
                        let vs = i;
                        while at(i).is_some_and(|b| b.is_ascii_digit()) {
                            i += 1;
                        }
                        Form::Write(text(vs, i).to_string())
                    }
                    _ => return Err(SplitError::Syntax),
                };
                cmds.push(Part {
                    name: format!("S{reg}"),
                    form,
                });
            } else {
                let form = if ds == i {
                    Form::Exec
                } else {
                    Form::Write(text(ds, i).to_string())
                };
                cmds.push(Part { name, form });
            }
        } else {
            return Err(SplitError::Syntax);
        }
        if cmds.len() > MAX_CHAINED {
            return Err(SplitError::TooMany);
        }
    }
    Ok(cmds)
}

/// Split `a,"b,c",,d` into unquoted, trimmed parameters (lenient: an unterminated quote
/// runs to the end).
pub fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<(String, Form)> {
        split(s)
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.form))
            .collect()
    }

    #[test]
    fn splits_chains_and_basic_commands() {
        assert_eq!(names("AT"), vec![(String::new(), Form::Exec)]);
        assert_eq!(
            names("AT+CIFSR;E0"),
            vec![
                ("+CIFSR".into(), Form::Exec),
                ("E".into(), Form::Write("0".into()))
            ]
        );
        assert_eq!(
            names("ATE0V1&W"),
            vec![
                ("E".into(), Form::Write("0".into())),
                ("V".into(), Form::Write("1".into())),
                ("&W".into(), Form::Exec)
            ]
        );
        assert_eq!(
            names("at+creg?;+cgreg?\r\n"),
            vec![("+CREG".into(), Form::Read), ("+CGREG".into(), Form::Read)]
        );
        assert_eq!(names("AT+CSQ=?"), vec![("+CSQ".into(), Form::Test)]);
        assert_eq!(
            names("AT+CSTT=\"a;b\",\"u\";&W"),
            vec![
                ("+CSTT".into(), Form::Write("\"a;b\",\"u\"".into())),
                ("&W".into(), Form::Exec)
            ]
        );
        assert_eq!(names("ATS3?"), vec![("S3".into(), Form::Read)]);
        assert_eq!(names("ATE"), vec![("E".into(), Form::Exec)]);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(split("AT+"), Err(SplitError::Syntax));
        assert_eq!(split("AT+CSTT=\"open"), Err(SplitError::Syntax));
        assert_eq!(split("AT+CSQ junk"), Err(SplitError::Syntax));
        assert_eq!(split("AT@"), Err(SplitError::Syntax));
        assert_eq!(split("AT&"), Err(SplitError::Syntax));
        assert_eq!(split("CSQ"), Err(SplitError::NoAt));
        let many = format!("AT{}", "E0;".repeat(40));
        assert_eq!(split(&many), Err(SplitError::TooMany));
    }

    #[test]
    fn parameters_and_values() {
        let p = &split("AT+CIPSTART=\"TCP\",\"h,x\",1883").unwrap()[0];
        assert_eq!(p.param(0).as_deref(), Some("TCP"));
        assert_eq!(p.param(1).as_deref(), Some("h,x"));
        assert_eq!(p.param(2).as_deref(), Some("1883"));
        assert_eq!(p.param(3), None);
        assert_eq!(split("ATE").unwrap()[0].basic_value(), Some(0));
        assert_eq!(split("ATV1").unwrap()[0].basic_value(), Some(1));
        assert_eq!(split("AT+CSQ").unwrap()[0].basic_value(), None);
    }
}
