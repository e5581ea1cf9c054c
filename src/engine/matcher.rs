//! Compiled match patterns: literal substrings or regular expressions, tried against one
//! whole line at a time.

use regex::{Regex, RegexBuilder};

/// Size limit for user-written regexes (the `regex` crate is linear-time; this bounds the
/// compiled program).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Matcher {
    source: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Literal(String),
    Regex(Regex),
}

impl Matcher {
    /// A literal: matches lines that contain `text`.
    pub fn literal(text: &str) -> Matcher {
        Matcher {
            source: text.to_string(),
            kind: Kind::Literal(text.to_string()),
        }
    }

    /// A regular expression (without `/` delimiters).
    pub fn regex(pattern: &str) -> Result<Matcher, regex::Error> {
        Ok(Matcher {
            source: format!("/{pattern}/"),
            kind: Kind::Regex(compile(pattern)?),
        })
    }

    /// Report this matcher as `source` (the pattern as written, before `{{var}}` expansion).
    pub fn described_as(mut self, source: &str) -> Matcher {
        self.source = source.to_string();
        self
    }

    /// From pattern text as written in a recipe: `/regex/` or a literal.
    pub fn parse(text: &str) -> Result<Matcher, regex::Error> {
        if text.len() >= 2 && text.starts_with('/') && text.ends_with('/') {
            Matcher::regex(&text[1..text.len() - 1])
        } else {
            Ok(Matcher::literal(text))
        }
    }

    /// Does the pattern match this line?
    pub fn is_match(&self, line: &str) -> bool {
        match &self.kind {
            Kind::Literal(t) => line.contains(t.as_str()),
            Kind::Regex(r) => r.is_match(line),
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Compiled regexes kept for reuse: a factory line runs the same recipe on many devices,
/// and each step's patterns would otherwise be compiled again per device and per step.
const CACHE_LIMIT: usize = 4096;

static CACHE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Regex>>> =
    std::sync::OnceLock::new();

/// Compile a user-written regex (without `/…/` delimiters) with the crate-wide limits.
/// Every regex from a recipe goes through this, at load time and at run time; compiled
/// regexes are cached (a `Regex` clone shares the compiled program).
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(map) = cache.lock()
        && let Some(re) = map.get(pattern)
    {
        return Ok(re.clone());
    }
    let re = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(64)
        .build()?;
    if let Ok(mut map) = cache.lock() {
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(pattern.to_string(), re.clone());
    }
    Ok(re)
}

/// Apply capture regexes to a line: every named group that participated becomes a
/// `(name, value)` pair.
pub fn captures(regexes: &[Regex], line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for re in regexes {
        if let Some(caps) = re.captures(line) {
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    out.push((name.to_string(), m.as_str().to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_regex() {
        let m = Matcher::parse("+CEREG: 0,1").unwrap();
        assert!(m.is_match("+CEREG: 0,1"));
        assert!(!m.is_match("+CEREG: 0,2"));
        let r = Matcher::parse(r"/^\+CEREG: \d,[15]$/").unwrap();
        assert!(r.is_match("+CEREG: 0,5"));
        assert!(!r.is_match("+CEREG: 0,2"));
        assert_eq!(r.source(), r"/^\+CEREG: \d,[15]$/");
        assert!(Matcher::parse("/(/").is_err());
        // A lone slash is a literal.
        assert!(Matcher::parse("/").unwrap().is_match("a/b"));
    }

    #[test]
    fn named_captures() {
        let re = compile(r"\+CSQ: (?P<rssi>\d+),(?P<ber>\d+)").unwrap();
        assert_eq!(
            captures(&[re], "+CSQ: 24,99"),
            vec![("rssi".into(), "24".into()), ("ber".into(), "99".into())]
        );
    }
}
