//! Topic name and topic filter rules (spec 4.7).
//!
//! Validators return the byte index of the problem inside the string and a message, so the
//! decoder can point at the exact byte and the encoder can name the field.

use super::Protocol;

/// A problem in a topic name or filter: byte index in the string and a message.
pub(crate) type TopicProblem = (usize, String);

/// A topic name (PUBLISH, will topic, response topic): no wildcards; non-empty unless
/// `allow_empty` (MQTT 5.0 PUBLISH carrying a topic alias).
pub(crate) fn check_topic_name(topic: &str, allow_empty: bool) -> Result<(), TopicProblem> {
    if topic.is_empty() && !allow_empty {
        return Err((0, "topic must not be empty".into()));
    }
    if let Some(i) = topic.find(['+', '#']) {
        let c = &topic[i..i + 1];
        return Err((i, format!("wildcard '{c}' not allowed in a topic name")));
    }
    Ok(())
}

/// A topic filter (SUBSCRIBE, UNSUBSCRIBE): non-empty; `#` only as the whole last level;
/// `+` only as a whole level; in MQTT 5.0 a `$share/<name>/<filter>` must have a valid name and
/// a filter.
pub(crate) fn check_topic_filter(filter: &str, protocol: Protocol) -> Result<(), TopicProblem> {
    if filter.is_empty() {
        return Err((0, "topic filter must not be empty".into()));
    }
    let mut body = filter;
    let mut base = 0;
    if protocol == Protocol::V5
        && let Some(rest) = filter.strip_prefix("$share/")
    {
        let Some(slash) = rest.find('/') else {
            return Err((
                filter.len(),
                "shared subscription needs '$share/<share name>/<topic filter>'".into(),
            ));
        };
        let share = &rest[..slash];
        if share.is_empty() {
            return Err((
                7,
                "shared subscription: share name must not be empty".into(),
            ));
        }
        if let Some(i) = share.find(['+', '#']) {
            return Err((
                7 + i,
                "shared subscription: share name must not contain wildcards".into(),
            ));
        }
        body = &rest[slash + 1..];
        base = 7 + slash + 1;
        if body.is_empty() {
            return Err((
                base,
                "shared subscription: topic filter after the share name is empty".into(),
            ));
        }
    }
    let mut pos = 0;
    let levels: Vec<&str> = body.split('/').collect();
    let last = levels.len() - 1;
    for (n, level) in levels.iter().enumerate() {
        if let Some(i) = level.find('#') {
            if *level != "#" {
                return Err((base + pos + i, "'#' must occupy a whole level".into()));
            }
            if n != last {
                return Err((
                    base + pos + i,
                    "'#' must be the last level of the filter".into(),
                ));
            }
        }
        if let Some(i) = level.find('+')
            && *level != "+"
        {
            return Err((base + pos + i, "'+' must occupy a whole level".into()));
        }
        pos += level.len() + 1;
    }
    Ok(())
}

/// True for an MQTT 5.0 shared subscription filter (`$share/...`).
pub(crate) fn is_shared(filter: &str) -> bool {
    filter.starts_with("$share/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_topic_name("a/b", false).is_ok());
        assert_eq!(check_topic_name("a/+", false).unwrap_err().0, 2);
        assert_eq!(check_topic_name("#", false).unwrap_err().0, 0);
        assert!(check_topic_name("", false).is_err());
        assert!(check_topic_name("", true).is_ok());
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/",
            "a//b",
            "$SYS/#",
            "sport/+/player1",
        ] {
            assert!(check_topic_filter(ok, Protocol::V311).is_ok(), "{ok}");
        }
        for (bad, at) in [
            ("a#", 1),
            ("a/#/b", 2),
            ("a/b+", 3),
            ("+a", 0),
            ("#/", 0),
            ("", 0),
        ] {
            assert_eq!(
                check_topic_filter(bad, Protocol::V311).unwrap_err().0,
                at,
                "{bad}"
            );
        }
        assert!(check_topic_filter("$share/g/a/#", Protocol::V5).is_ok());
        assert!(check_topic_filter("$share//a", Protocol::V5).is_err());
        assert!(check_topic_filter("$share/g", Protocol::V5).is_err());
        assert!(check_topic_filter("$share/g+/a", Protocol::V5).is_err());
        assert!(check_topic_filter("$share/g", Protocol::V311).is_ok());
    }
}
