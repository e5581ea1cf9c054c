//! Topic filter matching (MQTT 3.1.1 and 5.0, section 4.7).
//!
//! Filters reaching this module were already checked by the codec (`+` and `#` occupy whole
//! levels, `#` is last), so matching only walks the levels.

/// True when the topic name `topic` matches the topic filter `filter`.
///
/// `+` matches exactly one level (an empty one too), `#` matches the parent level and any
/// number of levels below it. A filter starting with a wildcard does not match a topic whose
/// first character is `$` (spec 4.7.2: `#` does not match `$SYS/uptime`, `$SYS/#` does).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn single_and_multi_level_wildcards() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/+", "a/"),
            ("+/+", "/x"),
            ("+", "a"),
            ("#", "a/b/c"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("sport/tennis/+", "sport/tennis/player1"),
            ("sport/+/player1", "sport/tennis/player1"),
            ("/+", "/finance"),
            ("$SYS/#", "$SYS/uptime"),
            ("$SYS/+", "$SYS/x"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        let no = [
            ("a/b", "a/b/c"),
            ("a/+", "a/b/c"),
            ("a/+", "a"),
            ("+", "/finance"),
            ("a/b/#", "a/c"),
            ("A/b", "a/b"),
            ("#", "$SYS/uptime"),
            ("+/uptime", "$SYS/uptime"),
            ("+", "$x"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }
}
