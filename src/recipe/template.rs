//! `{{var}}` templates: parsing (at load) and the parsed [`Template`] that is expanded at
//! run time.
//!
//! A template may contain:
//!
//! * `{{name}}`: the value of var `name` (`[A-Za-z_][A-Za-z0-9_]*`),
//! * `{{env.NAME}}`: the environment variable `NAME`,
//! * `{{link.tcp}}` / `{{link.mqtt}}`: built-in read-only vars the run keeps current
//!   (`true` while a TCP connection is open / while an MQTT session is up),
//! * `{{{{`: a literal `{{`.
//!
//! Spaces just inside the braces are allowed (`{{ name }}`). Anything else between
//! `{{` and `}}` is an error, as is a `{{` without its `}}`. A lone `}}` is plain text.
//! No expanded text may be longer than [`MAX_EXPANDED`] bytes.

/// Longest text any `{{…}}` expansion may produce (a var default, a command line, a
/// message): 4 MiB, the longest string a script may hold.
pub const MAX_EXPANDED: usize = 4 << 20;

/// A built-in var about the modem's connection, kept current by the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkVar {
    /// `{{link.tcp}}`: `true` while a TCP connection is open.
    Tcp,
    /// `{{link.mqtt}}`: `true` after an accepted CONNACK, until DISCONNECT is sent or the
    /// connection closes.
    Mqtt,
}

impl LinkVar {
    /// `tcp` or `mqtt` (the part after `link.`).
    pub fn from_name(name: &str) -> Option<LinkVar> {
        match name {
            "tcp" => Some(LinkVar::Tcp),
            "mqtt" => Some(LinkVar::Mqtt),
            _ => None,
        }
    }

    /// The placeholder as written (`{{link.tcp}}`).
    pub fn placeholder(self) -> &'static str {
        match self {
            LinkVar::Tcp => "{{link.tcp}}",
            LinkVar::Mqtt => "{{link.mqtt}}",
        }
    }
}

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The template itself is malformed (`{{ }}`, `{{1x}}`, an unclosed `{{`).
    #[error("{message}")]
    Syntax {
        /// Byte offset of the offending `{{` in the template.
        offset: usize,
        /// Byte length of the offending placeholder.
        len: usize,
        /// What is wrong.
        message: String,
    },
    /// `{{name}}` names no var.
    #[error("unknown var `{0}` in `{{{{{0}}}}}`")]
    UnknownVar(String),
    /// `{{env.NAME}}` is not set.
    #[error("environment variable `{0}` is not set (used as `{{{{env.{0}}}}}`)")]
    UnsetEnv(String),
    /// The var holds bytes, which cannot be placed into text.
    #[error("var `{0}` holds bytes, not text: use it with `send_data`, or convert it in a script")]
    BytesVar(String),
    /// A `/regex/` pattern does not compile after expansion.
    #[error("invalid regex: {0}")]
    Regex(String),
    /// The expanded text would be longer than [`MAX_EXPANDED`].
    #[error(
        "the text would be {0} bytes long after expanding `{{{{…}}}}`, over the limit of {limit} bytes (4 MiB)",
        limit = MAX_EXPANDED
    )]
    TooLong(usize),
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Literal text (with `{{{{` already turned into `{{`).
    Text(std::borrow::Cow<'a, str>),
    /// `{{name}}`.
    Var(&'a str),
    /// `{{env.NAME}}`.
    Env(&'a str),
    /// `{{link.tcp}}` or `{{link.mqtt}}`.
    Link(LinkVar),
}

/// A placeholder found in a template: its kind, name and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placeholder<'a> {
    pub env: bool,
    pub name: &'a str,
    pub offset: usize,
    pub len: usize,
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Split a template into pieces, with the byte range of each placeholder.
pub(crate) fn parse_template(
    template: &str,
) -> Result<Vec<(Piece<'_>, Option<Placeholder<'_>>)>, ExpandError> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut lit_start = 0usize;
    let mut borrowed = true;
    let mut i = 0usize;
    let bytes = template.as_bytes();
    let flush = |out: &mut Vec<_>, literal: &mut String, borrowed: bool, from: usize, to: usize| {
        if borrowed {
            if to > from {
                out.push((
                    Piece::Text(std::borrow::Cow::Borrowed(&template[from..to])),
                    None,
                ));
            }
        } else if !literal.is_empty() {
            out.push((
                Piece::Text(std::borrow::Cow::Owned(std::mem::take(literal))),
                None,
            ));
        }
    };
    while i < bytes.len() {
        if !template[i..].starts_with("{{") {
            let ch_len = template[i..].chars().next().map_or(1, char::len_utf8);
            if !borrowed {
                literal.push_str(&template[i..i + ch_len]);
            }
            i += ch_len;
            continue;
        }
        if template[i..].starts_with("{{{{") {
            // Escaped `{{`: switch to an owned literal.
            if borrowed {
                literal.push_str(&template[lit_start..i]);
                borrowed = false;
            }
            literal.push_str("{{");
            i += 4;
            continue;
        }
        let Some(close) = template[i + 2..].find("}}") else {
            return Err(ExpandError::Syntax {
                offset: i,
                len: 2,
                message: "`{{` without a closing `}}` (write `{{{{` for a literal `{{`)".into(),
            });
        };
        let end = i + 2 + close + 2;
        let inner = template[i + 2..i + 2 + close].trim();
        let whole = &template[i..end];
        if let Some(rest) = inner.strip_prefix("link.") {
            let Some(link) = LinkVar::from_name(rest) else {
                return Err(ExpandError::Syntax {
                    offset: i,
                    len: end - i,
                    message: format!(
                        "unknown built-in var `{whole}`: sim7k keeps `{{{{link.tcp}}}}` and `{{{{link.mqtt}}}}`"
                    ),
                });
            };
            if borrowed {
                flush(&mut out, &mut literal, true, lit_start, i);
            } else {
                flush(&mut out, &mut literal, false, 0, 0);
                borrowed = true;
            }
            let ph = Placeholder {
                env: false,
                name: rest,
                offset: i,
                len: end - i,
            };
            out.push((Piece::Link(link), Some(ph)));
            i = end;
            lit_start = end;
            continue;
        }
        let (env, name) = match inner.strip_prefix("env.") {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        if inner.is_empty() {
            return Err(ExpandError::Syntax {
                offset: i,
                len: end - i,
                message: format!(
                    "empty placeholder `{whole}`: write `{{{{name}}}}` or `{{{{env.NAME}}}}`"
                ),
            });
        }
        if !is_var_name(name) {
            return Err(ExpandError::Syntax {
                offset: i,
                len: end - i,
                message: format!(
                    "bad placeholder `{whole}`: write `{{{{name}}}}` or `{{{{env.NAME}}}}`, where a name \
                     starts with a letter or `_` and has only letters, digits and `_`"
                ),
            });
        }
        if borrowed {
            flush(&mut out, &mut literal, true, lit_start, i);
        } else {
            flush(&mut out, &mut literal, false, 0, 0);
            borrowed = true;
        }
        let ph = Placeholder {
            env,
            name,
            offset: i,
            len: end - i,
        };
        let piece = if env {
            Piece::Env(name)
        } else {
            Piece::Var(name)
        };
        out.push((piece, Some(ph)));
        i = end;
        lit_start = end;
    }
    if borrowed {
        flush(&mut out, &mut literal, true, lit_start, template.len());
    } else {
        flush(&mut out, &mut literal, false, 0, 0);
    }
    Ok(out)
}

/// The placeholders of a template that refer to vars or the environment (the built-in
/// `{{link.*}}` are always defined), or its syntax error.
pub(crate) fn placeholders(template: &str) -> Result<Vec<Placeholder<'_>>, ExpandError> {
    Ok(parse_template(template)?
        .into_iter()
        .filter(|(p, _)| !matches!(p, Piece::Link(_)))
        .filter_map(|(_, ph)| ph)
        .collect())
}

/// A text with `{{…}}` placeholders, parsed once (at load). Expand it with
/// [`Vars::expand_template`](super::vars::Vars::expand_template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<TemplatePiece>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePiece {
    /// Literal text.
    Text(String),
    /// `{{name}}`.
    Var(String),
    /// `{{env.NAME}}`.
    Env(String),
    /// `{{link.tcp}}` / `{{link.mqtt}}`.
    Link(LinkVar),
}

impl Template {
    /// Parse a template (the loader has already reported syntax errors at their place).
    pub fn parse(text: &str) -> Result<Template, ExpandError> {
        let pieces = parse_template(text)?
            .into_iter()
            .map(|(p, _)| match p {
                Piece::Text(t) => TemplatePiece::Text(t.into_owned()),
                Piece::Var(n) => TemplatePiece::Var(n.to_owned()),
                Piece::Env(n) => TemplatePiece::Env(n.to_owned()),
                Piece::Link(l) => TemplatePiece::Link(l),
            })
            .collect();
        Ok(Template {
            source: text.to_owned(),
            pieces,
        })
    }

    /// A template of plain text (nothing to expand).
    pub fn literal(text: &str) -> Template {
        Template {
            source: text.replace("{{", "{{{{"),
            pieces: vec![TemplatePiece::Text(text.to_owned())],
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The pieces in order.
    pub fn pieces(&self) -> &[TemplatePiece] {
        &self.pieces
    }

    /// The text, when the template has no placeholder.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                TemplatePiece::Text(t) => out.push_str(t),
                _ => return None,
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_vars_parse_and_unknown_ones_are_located() {
        let t = Template::parse("x {{ link.tcp }} {{link.mqtt}}").unwrap();
        assert_eq!(
            t.pieces(),
            [
                TemplatePiece::Text("x ".into()),
                TemplatePiece::Link(LinkVar::Tcp),
                TemplatePiece::Text(" ".into()),
                TemplatePiece::Link(LinkVar::Mqtt),
            ]
        );
        match Template::parse("ab{{link.udp}}") {
            Err(ExpandError::Syntax {
                offset, message, ..
            }) => {
                assert_eq!(offset, 2);
                assert!(message.contains("link.tcp"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Built-ins are not references to declared vars.
        assert!(placeholders("{{link.tcp}}{{a}}").unwrap().len() == 1);
    }

    #[test]
    fn literal_round_trips() {
        let t = Template::literal("AT {{x}}");
        assert_eq!(t.as_literal().as_deref(), Some("AT {{x}}"));
        assert_eq!(Template::parse(t.source()).unwrap(), t);
    }
}
