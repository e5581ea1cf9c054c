//! YAML parsing with a budget, and serde-saphyr errors turned into located recipe errors.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_saphyr::MessageFormatter;

use super::super::diag::{SourceFile, Spot};
use super::super::model::Recipe;
use super::RecipeError;
use super::tree::Node;

pub(super) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 500_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 48,
            // The replay bounds below stop alias bombs; this heuristic (more than 10
            // aliases per anchor once there are 100) refused ordinary recipes that merge
            // one anchor into many steps, and pointed at the file's end.
            enforce_alias_anchor_ratio: false,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 32,
        },
    }
}

pub(super) fn parse_typed(file: &Arc<SourceFile>) -> Result<Recipe, RecipeError> {
    serde_saphyr::from_str_with_options::<Recipe>(&file.text, yaml_options())
        .map_err(|e| yaml_error(file, &e))
}

pub(super) fn parse_tree(file: &Arc<SourceFile>) -> Result<Node, RecipeError> {
    serde_saphyr::from_str_with_options::<Node>(&file.text, yaml_options())
        .map_err(|e| yaml_error(file, &e))
}

/// Known field lists, to say where an unknown key is.
pub(super) const KEY_CONTEXTS: [(&str, &str); 7] = [
    ("send_data", "in a step"),
    ("steps", "at the top level of the recipe"),
    ("required", "in a var"),
    ("equals", "in `validate`"),
    ("chunk", "in `data`"),
    ("within", "in `sync`"),
    ("action", "in a `urc` handler"),
];

pub(super) fn sanitize(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Turn a serde-saphyr error into a located recipe error with a friendlier message.
pub(super) fn yaml_error(file: &Arc<SourceFile>, err: &serde_saphyr::Error) -> RecipeError {
    use serde_saphyr::Error as E;
    let mut inner = err.without_snippet();
    if let E::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let raw = sanitize(&serde_saphyr::DefaultMessageFormatter.format_message(inner));
    let spot = err.location().filter(|l| l.line() > 0).map_or_else(
        || Spot::file_start(file),
        |l| {
            let line = u32::try_from(l.line()).unwrap_or(u32::MAX);
            let col = u32::try_from(l.column()).unwrap_or(u32::MAX);
            Spot::at_line_col(file, line, col, None)
        },
    );
    let line_text = file
        .text
        .lines()
        .nth(usize::try_from(spot.line.saturating_sub(1)).unwrap_or(usize::MAX))
        .unwrap_or("");
    let mut help: Vec<String> = Vec::new();
    let (message, label) = match inner {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let context = KEY_CONTEXTS
                .iter()
                .find(|(k, _)| expected.contains(k))
                .map_or("here", |(_, c)| c);
            let mut msg = format!("unknown key `{}` {context}", sanitize(field));
            if let Some(near) = closest(field, expected.iter().copied()) {
                let _ = write!(msg, "; did you mean `{near}`?");
            }
            help.push(format!("valid keys {context}: {}", expected.join(", ")));
            (msg, "unknown key".to_owned())
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!(
                "unknown value `{}`: expected one of {}",
                sanitize(variant),
                expected
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "unknown value".to_owned(),
        ),
        E::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("duplicate key `{}`", sanitize(k)),
                None => "duplicate key".to_owned(),
            },
            "second time here".to_owned(),
        ),
        E::InvalidScalar { ty, .. } => {
            let what = match *ty {
                "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
                "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
                "f32" | "f64" => "a number",
                "bool" => "`true` or `false`",
                other => other,
            };
            (format!("expected {what}"), format!("not {what}"))
        }
        E::Unexpected { expected, .. }
            if *expected == "mapping start"
                && spot.column == 1
                && only_comments_before(&file.text, spot.offset) =>
        {
            (
                "a recipe must be a YAML map with keys such as `name`, `vars` and `steps`"
                    .to_owned(),
                "not a map".to_owned(),
            )
        }
        E::Unexpected { expected, .. } => {
            let expected = match *expected {
                "string scalar" => "a text value",
                "sequence start" => "a list (`- item` lines or `[a, b]`)",
                "mapping start" => "a map (`key: value` lines or `{a: 1}`)",
                other => other,
            };
            (
                format!("expected {expected}"),
                format!("expected {expected}"),
            )
        }
        E::Budget { breach, .. } => {
            use serde_saphyr::budget::BudgetBreach as B;
            let what = match breach {
                B::Depth { .. } => "it is nested too deeply".to_owned(),
                B::Events { .. } | B::Nodes { .. } | B::ScalarBytes { .. } => {
                    "it is too large".to_owned()
                }
                B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => {
                    "it uses too many aliases or anchors".to_owned()
                }
                other => format!("{other:?}"),
            };
            help.push(
                "recipes are small: this looks like an alias bomb or a runaway document".to_owned(),
            );
            (
                format!("the YAML is refused: {what}"),
                "limit reached here".to_owned(),
            )
        }
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => {
            help.push(
                "recipes are small: this looks like an alias bomb (\"billion laughs\")".to_owned(),
            );
            (
                format!("the YAML is refused: aliases expand to too much data ({raw})"),
                "limit reached here".to_owned(),
            )
        }
        E::MultipleDocuments { .. } => (
            "a recipe file holds one YAML document (remove the second `---`)".to_owned(),
            "second document".to_owned(),
        ),
        _ => {
            let msg = raw
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(&raw)
                .to_owned();
            (msg, "here".to_owned())
        }
    };
    if message.contains("unknown escape") {
        help.push(
            "inside double quotes a backslash starts an escape: write regexes in single quotes, \
             e.g. expect: '/^\\+CSQ: (\\d+)/'"
                .to_owned(),
        );
    }
    if line_text.contains('\t') && message.contains("tab") {
        help.push("indent with spaces: YAML does not allow tabs in indentation".to_owned());
    }
    if line_text.contains(": {{") || line_text.contains("- {{") {
        help.push(
            "a value that starts with `{{` must be quoted, e.g. `send: \"{{cmd}}\"` \
             (unquoted, YAML reads `{` as the start of a map)"
                .to_owned(),
        );
    }
    let mut e = RecipeError::new(message, spot).with_label(label);
    for h in help {
        e = e.with_help(h);
    }
    e
}

/// True when only blank and comment lines come before `offset`.
pub(super) fn only_comments_before(text: &str, offset: usize) -> bool {
    text.get(..offset).unwrap_or("").lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// The closest candidate within a small edit distance.
pub(super) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let max = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Most aliases (`*name`) in one file.
pub(super) const MAX_ALIASES: usize = 1000;

/// Tags that only restate a YAML core type (`!!str 0000`) or force text (`!`).
fn harmless_tag(tag: &granit_parser::Tag) -> bool {
    match tag.handle() {
        "tag:yaml.org,2002:" => matches!(
            tag.suffix(),
            "str" | "int" | "float" | "bool" | "null" | "map" | "seq"
        ),
        "!" => tag.suffix().is_empty(),
        _ => false,
    }
}

/// Checks the parser's events before deserializing: a YAML tag other than a core type is an
/// error at the tag (serde would drop `!include x.yaml` and keep the text `x.yaml`), and so
/// is the alias past [`MAX_ALIASES`]. Syntax errors are left to the deserializer, whose
/// messages are better.
pub(super) fn check_events(file: &Arc<SourceFile>) -> Result<(), RecipeError> {
    use granit_parser::{Event, Parser};
    let mut aliases = 0usize;
    for item in Parser::new_from_str(&file.text) {
        let Ok((event, span)) = item else {
            return Ok(());
        };
        let tag = match &event {
            Event::Scalar(_, _, _, tag)
            | Event::SequenceStart(_, _, tag)
            | Event::MappingStart(_, _, tag) => tag.as_deref(),
            Event::Alias(_) => {
                aliases += 1;
                if aliases > MAX_ALIASES {
                    return Err(RecipeError::new(
                        format!(
                            "more than {MAX_ALIASES} aliases (`*name`) in one file: the YAML is refused"
                        ),
                        marker_spot(file, &span.start),
                    )
                    .with_label("alias over the limit")
                    .with_help(
                        "recipes are small: this looks like an alias bomb; share settings with fewer anchors or split the file with `include:`",
                    ));
                }
                None
            }
            _ => None,
        };
        let Some(tag) = tag.filter(|t| !harmless_tag(t)) else {
            continue;
        };
        let at = span.tag_start.unwrap_or(span.start);
        let spot = marker_spot(file, &at);
        let written: String = file
            .text
            .get(spot.offset..)
            .unwrap_or("")
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(40)
            .collect();
        let written = if written.starts_with('!') {
            written
        } else {
            format!("{}{}", tag.handle(), tag.suffix())
        };
        let spot = Spot::at_offset(file, spot.offset, Some(written.len()));
        let mut err = RecipeError::new(
            format!(
                "YAML tag `{}` is not supported: the tag would be dropped and the text after it used as is",
                sanitize(&written)
            ),
            spot,
        )
        .with_label("unknown tag");
        err = if tag.suffix().eq_ignore_ascii_case("include") {
            err.with_help(
                "include a file with a step `- include: file.yaml` or the top-level `include:` list",
            )
        } else {
            err.with_help("remove the tag; to keep a value as text, quote it")
        };
        return Err(err);
    }
    Ok(())
}

/// The spot of a parser marker (1-based line, 0-based column).
fn marker_spot(file: &Arc<SourceFile>, m: &granit_parser::Marker) -> Spot {
    match m.byte_offset() {
        Some(off) => Spot::at_offset(file, off, None),
        None => Spot::at_line_col(
            file,
            u32::try_from(m.line()).unwrap_or(u32::MAX),
            u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
            None,
        ),
    }
}
