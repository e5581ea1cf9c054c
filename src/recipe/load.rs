//! Recipe loading: YAML parsing, `profile:`/`include:` resolution, var defaults,
//! validation, and errors that point at `file:line:column`.
//!
//! All YAML parsing of the crate lives here (serde-saphyr changes its API often).
//!
//! # What `load` does
//!
//! 1. Reads the file (at most [`MAX_FILE_BYTES`], UTF-8, a leading BOM is skipped)
//!    and parses it into the [model](super::model) with a budget against alias
//!    bombs. Unknown keys, duplicate keys, wrong types and bad durations are errors.
//! 2. Walks `profile:`, then `include:` entries, then `- include:` steps, each
//!    relative to the including file, recursively (cycles and nesting deeper than
//!    [`MAX_INCLUDE_DEPTH`] are errors). Include paths may use `{{var}}`.
//! 3. Merges: a file's own `vars` and recipe-level settings win over those of the
//!    files it includes; among included files the first one listed wins (`profile`
//!    first). URC handlers and scripts are concatenated, included files first.
//!    Steps of `profile`/`include` files run before the including file's steps; a
//!    `- include:` step is replaced by the steps of that file.
//! 4. Expands var defaults (`{{other}}`, `{{env.X}}`), then applies `--set`.
//! 5. Validates every step and pattern, and collects warnings.

mod tree;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::{Location, MessageFormatter};

use self::tree::{Kind, Node};
pub use super::diag::{Origin, RecipeError, RecipeWarning};
use super::diag::{SourceFile, Spot};
use super::model::{OneOrMany, Pattern, Recipe, Scalar, Step, SyncSpec, UrcHandler, VarDef};
use super::vars::{self, Env, ExpandError, Piece, VarValue, Vars, compile_regex, is_var_name};

/// Largest recipe, include or script file read (bytes).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Deepest chain of includes (the top file is depth 0).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Most files read for one recipe (the same file included twice counts twice).
pub const MAX_FILES: usize = 256;
/// Per-attempt timeout when neither the step nor the recipe sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Recipe-level `abort` patterns when the recipe sets none.
pub const DEFAULT_ABORT: [&str; 5] = [
    "ERROR",
    "+CME ERROR",
    "+CMS ERROR",
    "CONNECT FAIL",
    "SEND FAIL",
];
/// Start-up sync: how long to keep sending `AT`.
pub const DEFAULT_SYNC_WITHIN: Duration = Duration::from_secs(10);
/// Start-up sync: how long to wait for `OK` after each `AT`.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(300);
/// Bound on a whole `until` step that sets no `deadline`.
pub const DEFAULT_UNTIL_DEADLINE: Duration = Duration::from_secs(120);
/// Pause between `until` polls when the step sets no `interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Pause before a retry when the step sets no `retry_delay`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Largest `data.chunk` (the SIM7000's `AT+CIPSEND?` size).
pub const MAX_CHUNK: usize = crate::at::limits::MAX_SEND;

/// How to load a recipe.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--set name=value`, in command-line order (a later one wins). The value is
    /// taken literally except for `{{env.NAME}}`, which reads the environment (so a
    /// secret need not be on the command line). A name the recipe does not declare is
    /// added as a var (scripts may read it); a warning is given when the recipe never
    /// mentions it.
    pub overrides: Vec<(String, String)>,
    /// Where `{{env.NAME}}` is read from.
    pub env: Env,
}

/// Parse one `--set name=value` argument (for clap's `value_parser`).
pub fn parse_override(arg: &str) -> Result<(String, String), String> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err(format!("`{arg}` is not `name=value`"));
    };
    let name = name.trim();
    if !is_var_name(name) {
        return Err(format!(
            "`{name}` is not a var name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Start-up sync settings with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSettings {
    /// Whether to sync at all (`sync: false` turns it off).
    pub enabled: bool,
    /// How long to keep trying.
    pub within: Duration,
    /// How long to wait for `OK` after each `AT`.
    pub interval: Duration,
}

/// A Rhai script file listed under `scripts:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSource {
    /// The path (relative paths are joined onto the listing file's directory).
    pub path: PathBuf,
    /// The script text.
    pub text: String,
}

/// A step ready to run, with where it was written.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// The step as written (includes are already spliced away, so `include` is
    /// always `None`).
    pub step: Step,
    /// File, line and column of the step (for included steps: in the included file).
    pub origin: Origin,
}

/// What the recipe says about a var (for `sim7k check` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarInfo {
    /// The var name.
    pub name: String,
    /// Its `description`, if any.
    pub description: Option<String>,
    /// Whether the run refuses to start while it is empty.
    pub required: bool,
    /// Whether its value is secret.
    pub secret: bool,
    /// Where it is declared (the winning declaration), or `None` for a var that only
    /// comes from `--set`.
    pub origin: Option<Origin>,
}

/// A loaded, validated recipe with every include resolved.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    /// The top recipe file as given.
    pub path: PathBuf,
    /// `name`, or the file stem.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// Per-attempt timeout for steps that set none.
    pub timeout: Duration,
    /// Recipe-level abort patterns.
    pub abort: Vec<Pattern>,
    /// Bound on the whole run.
    pub deadline: Option<Duration>,
    /// Start-up sync.
    pub sync: SyncSettings,
    /// URC handlers, included files first.
    pub urc: Vec<UrcHandler>,
    /// Script files, included files first (each file once).
    pub scripts: Vec<ScriptSource>,
    /// The steps in run order, includes flattened.
    pub steps: Vec<PlannedStep>,
    /// The vars: defaults expanded, then `--set` applied.
    pub vars: Vars,
    /// Declared vars with their flags, in declaration order.
    pub var_info: Vec<VarInfo>,
    /// Things worth telling the user that do not stop the run.
    pub warnings: Vec<RecipeWarning>,
    /// Every file read (the top file first), with its text, for mapping positions
    /// (e.g. script errors) back onto snippets.
    pub sources: Vec<(PathBuf, Arc<str>)>,
}

impl LoadedRecipe {
    /// The text of a file read while loading.
    pub fn source_text(&self, file: &Path) -> Option<&str> {
        self.sources
            .iter()
            .find(|(p, _)| p == file)
            .map(|(_, t)| &**t)
    }
}

/// Load and validate the recipe at `path`.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<LoadedRecipe, RecipeError> {
    let text = match read_text(path) {
        Ok(t) => t,
        Err(ReadError::Io(e)) => {
            return Err(RecipeError::in_file(
                path,
                format!("cannot read recipe: {e}"),
            ));
        }
        Err(ReadError::TooLarge(n)) => {
            return Err(RecipeError::in_file(path, too_large_message(n)));
        }
        Err(ReadError::NotUtf8 { lossy, offset }) => {
            return Err(not_utf8_error(path, lossy, offset));
        }
    };
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Loader::new(opts).run(path.to_path_buf(), canonical, text)
}

/// Load a recipe from text. `name` is the path shown in errors; includes are
/// resolved relative to its directory.
pub fn load_str(
    name: impl AsRef<Path>,
    text: &str,
    opts: &LoadOptions,
) -> Result<LoadedRecipe, RecipeError> {
    let path = name.as_ref().to_path_buf();
    if text.len() > MAX_FILE_BYTES {
        return Err(RecipeError::in_file(&path, too_large_message(text.len())));
    }
    let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    Loader::new(opts).run(path, canonical, text.to_owned())
}

// ---------------------------------------------------------------------------
// Reading files

enum ReadError {
    Io(std::io::Error),
    TooLarge(usize),
    NotUtf8 { lossy: String, offset: usize },
}

fn read_text(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    // Only regular files: a FIFO or a device (`/dev/stdin`) could block the load.
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::Io(std::io::Error::other("not a regular file")));
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() > MAX_FILE_BYTES {
        let size = std::fs::metadata(path)
            .ok()
            .and_then(|m| usize::try_from(m.len()).ok())
            .unwrap_or(bytes.len());
        return Err(ReadError::TooLarge(size));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        ReadError::NotUtf8 {
            lossy: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            offset,
        }
    })
}

fn too_large_message(size: usize) -> String {
    format!(
        "file is too large ({size} bytes; recipes, includes and scripts are limited to {MAX_FILE_BYTES} bytes)"
    )
}

fn not_utf8_error(path: &Path, lossy: String, offset: usize) -> RecipeError {
    // The lossy text has the same bytes up to `offset`, so positions agree.
    let file = SourceFile::new(path.to_path_buf(), lossy);
    RecipeError::new(
        "file is not valid UTF-8 text",
        Spot::at_offset(&file, offset, Some(1)),
    )
    .with_label("invalid byte here")
    .with_help("save the file as UTF-8")
}

// ---------------------------------------------------------------------------
// YAML parsing

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 500_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 48,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 32,
        },
    }
}

fn parse_typed(file: &Arc<SourceFile>) -> Result<Recipe, RecipeError> {
    serde_saphyr::from_str_with_options::<Recipe>(&file.text, yaml_options())
        .map_err(|e| yaml_error(file, &e))
}

fn parse_tree(file: &Arc<SourceFile>) -> Result<Node, RecipeError> {
    serde_saphyr::from_str_with_options::<Node>(&file.text, yaml_options())
        .map_err(|e| yaml_error(file, &e))
}

/// Known field lists, to say where an unknown key is.
const KEY_CONTEXTS: [(&str, &str); 7] = [
    ("send_data", "in a step"),
    ("steps", "at the top level of the recipe"),
    ("required", "in a var"),
    ("equals", "in `validate`"),
    ("chunk", "in `data`"),
    ("within", "in `sync`"),
    ("action", "in a `urc` handler"),
];

fn sanitize(text: &str) -> String {
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
fn yaml_error(file: &Arc<SourceFile>, err: &serde_saphyr::Error) -> RecipeError {
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
fn only_comments_before(text: &str, offset: usize) -> bool {
    text.get(..offset).unwrap_or("").lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// The closest candidate within a small edit distance.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let max = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
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

// ---------------------------------------------------------------------------
// Positions

fn spot_at(file: &Arc<SourceFile>, loc: &Location) -> Spot {
    if loc.line() == 0 {
        return Spot::file_start(file);
    }
    let span = loc.span();
    if let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        let len = usize::try_from(len).unwrap_or(0);
        if off <= file.text.len() {
            // Label one line at most.
            let line_len = file.text[off..].find('\n').unwrap_or(file.text.len() - off);
            let len = if len == 0 || len > line_len {
                None
            } else {
                Some(len)
            };
            return Spot::at_offset(file, off, len);
        }
    }
    let line = u32::try_from(loc.line()).unwrap_or(u32::MAX);
    let col = u32::try_from(loc.column()).unwrap_or(u32::MAX);
    Spot::at_line_col(file, line, col, None)
}

fn node_spot(file: &Arc<SourceFile>, node: &Node) -> Spot {
    spot_at(file, &node.defined)
}

/// An error at a node; for a node that comes from an alias or a `<<` merge, the
/// place of use is shown too.
fn node_error(file: &Arc<SourceFile>, node: &Node, message: impl Into<String>) -> RecipeError {
    let e = RecipeError::new(message, node_spot(file, node));
    if node.referenced != node.defined && node.referenced.line() > 0 {
        e.with_secondary(
            spot_at(file, &node.referenced),
            "used here (alias or `<<` merge)",
        )
    } else {
        e
    }
}

/// The spot of a byte range inside a scalar's text, when the scalar is written
/// plainly enough to find it; otherwise the scalar itself.
fn sub_spot(value: &Spot, template: &str, offset: usize, len: usize) -> Spot {
    let text = &value.file.text;
    let start = value.offset;
    let piece = template.get(offset..offset + len).unwrap_or("");
    let rest = text.get(start..).unwrap_or("");
    if rest.starts_with(template) {
        return Spot::at_offset(&value.file, start + offset, Some(len));
    }
    if (rest.starts_with('"') || rest.starts_with('\''))
        && rest.get(1..).is_some_and(|r| r.starts_with(template))
    {
        return Spot::at_offset(&value.file, start + 1 + offset, Some(len));
    }
    if !piece.is_empty() {
        let window_end = (start + template.len() * 2 + 64).min(text.len());
        let mut end = window_end;
        while end > start && !text.is_char_boundary(end) {
            end -= 1;
        }
        if let Some(i) = text.get(start..end).and_then(|w| w.find(piece)) {
            return Spot::at_offset(&value.file, start + i, Some(len));
        }
    }
    value.clone()
}

// ---------------------------------------------------------------------------
// The loader

#[derive(Debug, Clone)]
struct Ref {
    name: String,
    env: bool,
    spot: Spot,
}

struct VarEntry {
    name: String,
    template: String,
    secret: bool,
    required: bool,
    description: Option<String>,
    key: Spot,
    value: Spot,
    chain: Vec<Origin>,
}

struct Planned {
    step: PlannedStep,
    refs: Vec<Ref>,
    captures: Vec<String>,
    send_data: Option<(String, Spot)>,
    script: Option<String>,
    chain: Vec<Origin>,
}

#[derive(Default)]
struct Settings {
    timeout: Option<Duration>,
    abort: Option<Vec<Pattern>>,
    deadline: Option<Duration>,
    sync: Option<SyncSpec>,
}

struct Frame {
    canonical: PathBuf,
    display: PathBuf,
}

struct Loader<'o> {
    opts: &'o LoadOptions,
    overrides: BTreeMap<String, String>,
    defs: Vec<VarEntry>,
    def_index: BTreeMap<String, usize>,
    settings: Settings,
    urc: Vec<UrcHandler>,
    urc_refs: Vec<(Ref, Vec<Origin>)>,
    scripts: Vec<ScriptSource>,
    contributed: HashSet<PathBuf>,
    stack: Vec<Frame>,
    /// Include directives leading to the current file, outermost first.
    chain: Vec<Origin>,
    files_read: usize,
    sources: Vec<Arc<SourceFile>>,
    warnings: Vec<RecipeWarning>,
    top: Option<(Recipe, Arc<SourceFile>, Option<Spot>)>,
}

impl<'o> Loader<'o> {
    fn new(opts: &'o LoadOptions) -> Self {
        Loader {
            opts,
            overrides: opts.overrides.iter().cloned().collect(),
            defs: Vec::new(),
            def_index: BTreeMap::new(),
            settings: Settings::default(),
            urc: Vec::new(),
            urc_refs: Vec::new(),
            scripts: Vec::new(),
            contributed: HashSet::new(),
            stack: Vec::new(),
            chain: Vec::new(),
            files_read: 0,
            sources: Vec::new(),
            warnings: Vec::new(),
            top: None,
        }
    }

    fn chain_innermost_first(&self) -> Vec<Origin> {
        self.chain.iter().rev().cloned().collect()
    }

    fn run(
        mut self,
        path: PathBuf,
        canonical: PathBuf,
        text: String,
    ) -> Result<LoadedRecipe, RecipeError> {
        for (name, _) in &self.opts.overrides {
            if !is_var_name(name) {
                return Err(RecipeError::in_file(
                    &path,
                    format!(
                        "--set `{name}=…`: `{name}` is not a var name (letters, digits and `_`, not starting with a digit)"
                    ),
                ));
            }
        }
        // `--set password={{env.MQTT_PASSWORD}}` reads the environment (and only that: the
        // rest of a `--set` value is literal), so secrets need not appear on command lines.
        for value in self.overrides.values_mut() {
            if !value.contains("{{env.") {
                continue;
            }
            let mut out = String::new();
            let pieces = vars::parse_template(value).map_err(|e| {
                RecipeError::in_file(&path, format!("--set value `{}`: {e}", sanitize(value)))
            })?;
            for (piece, _) in pieces {
                match piece {
                    vars::Piece::Text(t) => out.push_str(&t),
                    vars::Piece::Var(name) => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                    vars::Piece::Env(name) => match self.opts.env.get(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            return Err(RecipeError::in_file(
                                &path,
                                format!(
                                    "--set: the environment variable `{name}` is not set (export it, or give the value directly)"
                                ),
                            ));
                        }
                    },
                }
            }
            *value = out;
        }
        let planned = self.load_file(path.clone(), canonical, text)?;
        self.finish(path, planned)
    }

    /// Parse one file and everything it includes; returns its steps in run order.
    fn load_file(
        &mut self,
        display: PathBuf,
        canonical: PathBuf,
        text: String,
    ) -> Result<Vec<Planned>, RecipeError> {
        self.files_read += 1;
        let text = match text.strip_prefix('\u{feff}') {
            Some(t) => t.to_owned(),
            None => text,
        };
        let file = SourceFile::new(display.clone(), text);
        self.sources.push(Arc::clone(&file));
        self.stack.push(Frame {
            canonical: canonical.clone(),
            display,
        });
        let chain = self.chain_innermost_first();
        let result = self.load_parsed(&file, &canonical);
        self.stack.pop();
        result.map_err(|e| e.with_chain(&chain))
    }

    fn load_parsed(
        &mut self,
        file: &Arc<SourceFile>,
        canonical: &Path,
    ) -> Result<Vec<Planned>, RecipeError> {
        let is_top = self.top.is_none();
        if file.text.trim().lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
        }) {
            return Err(
                RecipeError::new("the file is empty", Spot::file_start(file))
                    .with_label("no content")
                    .with_help("a recipe is a YAML map, e.g.\nname: hello\nsteps:\n  - send: AT"),
            );
        }
        let recipe = parse_typed(file)?;
        let tree = parse_tree(file)?;
        if !matches!(tree.kind, Kind::Map(_)) {
            return Err(node_error(
                file,
                &tree,
                "a recipe must be a YAML map with keys such as `name`, `vars` and `steps`",
            ));
        }
        let chain = self.chain_innermost_first();

        self.record_vars(file, &recipe, &tree, &chain)?;
        self.record_settings(file, &recipe, &tree)?;

        let dir = file
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut planned = Vec::new();

        // profile, then include entries.
        let mut includes: Vec<(&str, &Node)> = Vec::new();
        if let (Some(p), Some(node)) = (&recipe.profile, tree.get("profile")) {
            includes.push((p.as_str(), node));
        }
        if let Some(node) = tree.get("include") {
            let nodes = node.items_or_self();
            for (i, inc) in recipe.include.as_slice().iter().enumerate() {
                includes.push((inc.as_str(), nodes.get(i).copied().unwrap_or(node)));
            }
        }
        for (inc, node) in includes {
            planned.extend(self.include(file, &dir, inc, node)?);
        }

        // Own steps, with `- include:` steps spliced in place.
        let steps_node = tree.get("steps");
        for (i, step) in recipe.steps.iter().enumerate() {
            let Some(node) = steps_node.and_then(|n| n.item(i)) else {
                continue;
            };
            let facts = self.check_step(file, &step.value, node)?;
            if let Some(inc) = &step.value.include {
                let inc_node = node.get("include").unwrap_or(node);
                planned.extend(self.include(file, &dir, inc, inc_node)?);
                continue;
            }
            let spot = node_spot(file, node);
            planned.push(Planned {
                step: PlannedStep {
                    step: step.value.clone(),
                    origin: spot.origin(),
                },
                refs: facts.refs,
                captures: facts.captures,
                send_data: facts.send_data,
                script: step.value.script.as_ref().map(|s| s.value.clone()),
                chain: chain.clone(),
            });
        }

        // URC handlers and scripts: included files first, each file once.
        if self.contributed.insert(canonical.to_path_buf()) {
            self.record_urc(file, &recipe, &tree, &chain)?;
            self.record_scripts(file, &dir, &recipe, &tree)?;
        }

        if is_top {
            let steps_spot = tree.get("steps").map(|n| node_spot(file, n));
            self.top = Some((recipe, Arc::clone(file), steps_spot));
        }
        Ok(planned)
    }

    /// Resolve and load one include directive written at `node` of `file`.
    fn include(
        &mut self,
        file: &Arc<SourceFile>,
        dir: &Path,
        raw: &str,
        node: &Node,
    ) -> Result<Vec<Planned>, RecipeError> {
        let spot = node_spot(file, node);
        let expanded = self.expand_include_path(raw, &spot)?;
        if expanded.trim().is_empty() {
            return Err(node_error(file, node, "empty include path"));
        }
        let rel = PathBuf::from(expanded.trim());
        let path = if rel.is_absolute() {
            rel
        } else {
            dir.join(rel)
        };
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(node_error(
                file,
                node,
                format!("includes are nested more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        if self.files_read >= MAX_FILES {
            return Err(node_error(
                file,
                node,
                format!("too many includes (more than {MAX_FILES} files read)"),
            ));
        }
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(ReadError::Io(e)) => {
                return Err(node_error(
                    file,
                    node,
                    format!("cannot read include `{}`: {e}", path.display()),
                )
                .with_label("included here")
                .with_help("include paths are relative to the including file's directory"));
            }
            Err(ReadError::TooLarge(n)) => {
                return Err(node_error(
                    file,
                    node,
                    format!(
                        "cannot include `{}`: {}",
                        path.display(),
                        too_large_message(n)
                    ),
                ));
            }
            Err(ReadError::NotUtf8 { lossy, offset }) => {
                return Err(not_utf8_error(&path, lossy, offset)
                    .with_chain(&self.chain_with(spot.origin())));
            }
        };
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if let Some(pos) = self.stack.iter().position(|f| f.canonical == canonical) {
            let mut names: Vec<String> = self.stack[pos..]
                .iter()
                .map(|f| f.display.display().to_string())
                .collect();
            names.push(path.display().to_string());
            return Err(
                node_error(file, node, format!("include cycle: {}", names.join(" → ")))
                    .with_label("includes a file that is already being loaded"),
            );
        }
        self.chain.push(spot.origin());
        let result = self.load_file(path, canonical, text);
        self.chain.pop();
        result
    }

    fn chain_with(&self, innermost: Origin) -> Vec<Origin> {
        let mut c = vec![innermost];
        c.extend(self.chain_innermost_first());
        c
    }

    fn expand_include_path(&self, raw: &str, spot: &Spot) -> Result<String, RecipeError> {
        let pieces = vars::parse_template(raw).map_err(|e| template_error(spot, raw, &e))?;
        let mut out = String::new();
        for (piece, ph) in pieces {
            let here = |ph: &Option<vars::Placeholder<'_>>| match ph {
                Some(p) => sub_spot(spot, raw, p.offset, p.len),
                None => spot.clone(),
            };
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Env(name) => match self.opts.env.get(name) {
                    Some(v) => out.push_str(&v),
                    None => return Err(unset_env_error(here(&ph), name)),
                },
                Piece::Var(name) => match self.resolve_var(name, &mut Vec::new())? {
                    Some((v, _)) => out.push_str(&v),
                    None => {
                        return Err(RecipeError::new(
                            format!("include path uses `{{{{{name}}}}}`, but no var `{name}` is defined at this point"),
                            here(&ph),
                        )
                        .with_label("unknown var")
                        .with_help(format!(
                            "declare `{name}` under `vars:` in this file (or a file included before this one), or pass `--set {name}=...`"
                        )));
                    }
                },
            }
        }
        Ok(out)
    }

    /// The value of a var from `--set` or its (expanded) default; `None` when the
    /// var is not declared. The flag says whether a secret var fed the value.
    fn resolve_var(
        &self,
        name: &str,
        visiting: &mut Vec<String>,
    ) -> Result<Option<(String, bool)>, RecipeError> {
        let def = self.def_index.get(name).and_then(|&i| self.defs.get(i));
        if let Some(v) = self.overrides.get(name) {
            return Ok(Some((v.clone(), def.is_some_and(|d| d.secret))));
        }
        let Some(def) = def else {
            return Ok(None);
        };
        if let Some(pos) = visiting.iter().position(|n| n == name) {
            let mut cycle: Vec<&str> = visiting[pos..].iter().map(String::as_str).collect();
            cycle.push(name);
            return Err(RecipeError::new(
                format!("var `{name}` refers to itself: {}", cycle.join(" → ")),
                def.value.clone(),
            )
            .with_chain(&def.chain));
        }
        visiting.push(name.to_owned());
        let pieces = vars::parse_template(&def.template)
            .map_err(|e| template_error(&def.value, &def.template, &e).with_chain(&def.chain))?;
        let mut out = String::new();
        let mut secret = def.secret;
        for (piece, ph) in pieces {
            let here = || match &ph {
                Some(p) => sub_spot(&def.value, &def.template, p.offset, p.len),
                None => def.value.clone(),
            };
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Env(env) => match self.opts.env.get(env) {
                    Some(v) => out.push_str(&v),
                    None => return Err(unset_env_error(here(), env).with_chain(&def.chain)),
                },
                Piece::Var(other) => match self.resolve_var(other, visiting)? {
                    Some((v, s)) => {
                        out.push_str(&v);
                        secret |= s;
                    }
                    None => {
                        return Err(RecipeError::new(
                            format!("the default of var `{name}` uses `{{{{{other}}}}}`, but no var `{other}` is defined"),
                            here(),
                        )
                        .with_label("unknown var")
                        .with_help(format!("declare `{other}` under `vars:` or pass `--set {other}=...`"))
                        .with_chain(&def.chain));
                    }
                },
            }
        }
        visiting.pop();
        Ok(Some((out, secret)))
    }

    fn record_vars(
        &mut self,
        file: &Arc<SourceFile>,
        recipe: &Recipe,
        tree: &Node,
        chain: &[Origin],
    ) -> Result<(), RecipeError> {
        let Some(vars_node) = tree.get("vars") else {
            return Ok(());
        };
        let Kind::Map(entries) = &vars_node.kind else {
            return Ok(());
        };
        for (key, value_node) in entries {
            let name = key.text.as_str();
            let key_spot = spot_at(file, &key.defined);
            if !is_var_name(name) {
                return Err(RecipeError::new(
                    format!("`{}` is not a var name: use letters, digits and `_`, not starting with a digit", sanitize(name)),
                    key_spot,
                )
                .with_label("bad var name"));
            }
            if name == "env" {
                return Err(RecipeError::new(
                    "`env` is reserved for `{{env.NAME}}`: choose another var name",
                    key_spot,
                ));
            }
            let Some(def) = recipe.vars.get(name) else {
                continue;
            };
            let (scalar, secret, required, description, val_node) = match def {
                VarDef::Plain(s) => (Some(s), false, false, None, value_node),
                VarDef::Full(spec) => (
                    spec.value.as_ref(),
                    spec.secret,
                    spec.required,
                    spec.description.clone(),
                    value_node.get("value").unwrap_or(value_node),
                ),
            };
            let value_spot = node_spot(file, val_node);
            let template = scalar.map_or_else(String::new, |s| as_written(s, &value_spot));
            vars::placeholders(&template)
                .map_err(|e| template_error(&value_spot, &template, &e))?;
            match self.def_index.get(name) {
                Some(&i) => {
                    // An earlier (higher-precedence) declaration wins; flags add up.
                    if let Some(d) = self.defs.get_mut(i) {
                        d.secret |= secret;
                        d.required |= required;
                        if d.description.is_none() {
                            d.description = description;
                        }
                    }
                }
                None => {
                    self.def_index.insert(name.to_owned(), self.defs.len());
                    self.defs.push(VarEntry {
                        name: name.to_owned(),
                        template,
                        secret,
                        required,
                        description,
                        key: key_spot,
                        value: value_spot,
                        chain: chain.to_vec(),
                    });
                }
            }
        }
        Ok(())
    }

    fn record_settings(
        &mut self,
        file: &Arc<SourceFile>,
        recipe: &Recipe,
        tree: &Node,
    ) -> Result<(), RecipeError> {
        for (key, value) in [("timeout", recipe.timeout), ("deadline", recipe.deadline)] {
            if value == Some(Duration::ZERO) {
                let node = tree.get(key).unwrap_or(tree);
                return Err(node_error(
                    file,
                    node,
                    format!("`{key}` must be longer than 0"),
                ));
            }
        }
        if let Some(SyncSpec::Tuned(t)) = &recipe.sync {
            for (key, value) in [("within", t.within), ("interval", t.interval)] {
                if value == Some(Duration::ZERO) {
                    let node = tree.get("sync").and_then(|n| n.get(key)).unwrap_or(tree);
                    return Err(node_error(
                        file,
                        node,
                        format!("`sync.{key}` must be longer than 0"),
                    ));
                }
            }
        }
        if let Some(abort) = &recipe.abort {
            let node = tree.get("abort").unwrap_or(tree);
            let nodes = node.items_or_self();
            for (i, p) in abort.iter().enumerate() {
                let n = nodes.get(i).copied().unwrap_or(node);
                check_pattern(file, n, "abort", p)?;
            }
        }
        let s = &mut self.settings;
        if s.timeout.is_none() {
            s.timeout = recipe.timeout;
        }
        if s.abort.is_none() {
            s.abort.clone_from(&recipe.abort);
        }
        if s.deadline.is_none() {
            s.deadline = recipe.deadline;
        }
        if s.sync.is_none() {
            s.sync.clone_from(&recipe.sync);
        }
        Ok(())
    }

    fn record_urc(
        &mut self,
        file: &Arc<SourceFile>,
        recipe: &Recipe,
        tree: &Node,
        chain: &[Origin],
    ) -> Result<(), RecipeError> {
        let urc_node = tree.get("urc");
        for (i, handler) in recipe.urc.iter().enumerate() {
            let node = urc_node.and_then(|n| n.item(i)).unwrap_or(tree);
            let match_node = node.get("match").unwrap_or(node);
            let refs = check_pattern(file, match_node, "urc match", &handler.pattern)?;
            let mut all = refs;
            if let Some(msg) = &handler.message {
                let msg_node = node.get("message").unwrap_or(node);
                all.extend(template_refs(file, msg_node, msg)?);
            }
            for r in all {
                self.urc_refs.push((r, chain.to_vec()));
            }
            self.urc.push(handler.clone());
        }
        Ok(())
    }

    fn record_scripts(
        &mut self,
        file: &Arc<SourceFile>,
        dir: &Path,
        recipe: &Recipe,
        tree: &Node,
    ) -> Result<(), RecipeError> {
        let scripts_node = tree.get("scripts");
        let nodes = scripts_node.map(Node::items_or_self).unwrap_or_default();
        for (i, script) in recipe.scripts.as_slice().iter().enumerate() {
            let node = nodes.get(i).copied().unwrap_or(tree);
            let rel = PathBuf::from(script.trim());
            let path = if rel.is_absolute() {
                rel
            } else {
                dir.join(rel)
            };
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if self.scripts.iter().any(|s| {
                std::fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone()) == canonical
            }) {
                continue;
            }
            let text = match read_text(&path) {
                Ok(t) => t,
                Err(ReadError::Io(e)) => {
                    return Err(node_error(
                        file,
                        node,
                        format!("cannot read script `{}`: {e}", path.display()),
                    )
                    .with_help("script paths are relative to the recipe file's directory"));
                }
                Err(ReadError::TooLarge(n)) => {
                    return Err(node_error(
                        file,
                        node,
                        format!(
                            "cannot read script `{}`: {}",
                            path.display(),
                            too_large_message(n)
                        ),
                    ));
                }
                Err(ReadError::NotUtf8 { lossy, offset }) => {
                    return Err(not_utf8_error(&path, lossy, offset));
                }
            };
            self.scripts.push(ScriptSource { path, text });
        }
        Ok(())
    }

    fn check_step(
        &mut self,
        file: &Arc<SourceFile>,
        step: &Step,
        node: &Node,
    ) -> Result<StepFacts, RecipeError> {
        let facts = check_step(file, step, node)?;
        for w in &facts.warnings {
            self.warnings
                .push(w.clone().with_chain(&self.chain_innermost_first()));
        }
        Ok(facts)
    }

    fn finish(mut self, path: PathBuf, planned: Vec<Planned>) -> Result<LoadedRecipe, RecipeError> {
        let Some((top, top_file, steps_spot)) = self.top.take() else {
            return Err(RecipeError::in_file(&path, "nothing was loaded"));
        };

        // Vars: defaults expanded, `--set` applied.
        let mut vars = Vars::new(self.opts.env.clone());
        let mut var_info = Vec::new();
        for def in &self.defs {
            let (value, tainted) = self
                .resolve_var(&def.name, &mut Vec::new())?
                .unwrap_or_default();
            let secret = def.secret || tainted;
            if def.required && value.is_empty() {
                return Err(RecipeError::new(
                    format!("required var `{}` is empty", def.name),
                    def.key.clone(),
                )
                .with_label("required")
                .with_help(format!(
                    "set it with `--set {}=...`{}",
                    def.name,
                    def.description
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ))
                .with_chain(&def.chain));
            }
            vars.set(&def.name, VarValue::Text(value), secret);
            var_info.push(VarInfo {
                name: def.name.clone(),
                description: def.description.clone(),
                required: def.required,
                secret,
                origin: Some(def.key.origin()),
            });
        }
        let all_text = self.mention_text();
        let mut seen = BTreeSet::new();
        for (name, _) in &self.opts.overrides {
            if self.def_index.contains_key(name) || !seen.insert(name.clone()) {
                continue; // declared (applied above), or repeated (the last one won)
            }
            let value = self.overrides.get(name).cloned().unwrap_or_default();
            vars.set(name, VarValue::Text(value), false);
            var_info.push(VarInfo {
                name: name.clone(),
                description: None,
                required: false,
                secret: false,
                origin: None,
            });
            if !mentions(&all_text, name) {
                let mut w = RecipeWarning::without_position(format!(
                    "--set {name}: the recipe declares no var `{name}` and never uses it"
                ));
                if let Some(near) = closest(name, self.defs.iter().map(|d| d.name.as_str())) {
                    w = w.with_help(format!("did you mean `--set {near}=...`?"));
                }
                self.warnings.push(w);
            }
        }

        // Every `{{env.X}}` must be set; unknown `{{name}}`s are warnings.
        let mut known: BTreeSet<String> = vars.iter().map(|(n, _, _)| n.to_owned()).collect();
        let mut warned: BTreeSet<String> = BTreeSet::new();
        let mut script_text = self
            .scripts
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for p in &planned {
            for r in p.refs.iter().filter(|r| r.env) {
                if self.opts.env.get(&r.name).is_none() {
                    return Err(unset_env_error(r.spot.clone(), &r.name).with_chain(&p.chain));
                }
            }
        }
        for (r, chain) in self.urc_refs.iter().filter(|(r, _)| r.env) {
            if self.opts.env.get(&r.name).is_none() {
                return Err(unset_env_error(r.spot.clone(), &r.name).with_chain(chain));
            }
        }
        let all_captures: BTreeSet<String> = planned
            .iter()
            .flat_map(|p| p.captures.iter().cloned())
            .collect();
        for p in &planned {
            if let Some(s) = &p.script {
                script_text.push('\n');
                script_text.push_str(s);
            }
            let mut uses: Vec<(&str, &Spot)> = p
                .refs
                .iter()
                .filter(|r| !r.env)
                .map(|r| (r.name.as_str(), &r.spot))
                .collect();
            if let Some((name, spot)) = &p.send_data {
                uses.push((name.as_str(), spot));
            }
            for (name, spot) in uses {
                if known.contains(name)
                    || mentions(&script_text, name)
                    || !warned.insert(name.to_owned())
                {
                    continue;
                }
                let mut w = RecipeWarning::new(
                    format!("`{name}` is not a declared var, a `--set` or a capture of an earlier step"),
                    spot.clone(),
                )
                .with_label("unknown var")
                .with_help(format!(
                    "a script may set it; otherwise declare it under `vars:` or pass `--set {name}=...`"
                ))
                .with_chain(&p.chain);
                if let Some(near) = closest(name, known.iter().map(String::as_str)) {
                    w = w.with_help(format!("did you mean `{near}`?"));
                }
                self.warnings.push(w);
            }
            known.extend(p.captures.iter().cloned());
        }
        for (r, chain) in self.urc_refs.iter().filter(|(r, _)| !r.env) {
            if known.contains(&r.name)
                || all_captures.contains(&r.name)
                || mentions(&script_text, &r.name)
                || !warned.insert(r.name.clone())
            {
                continue;
            }
            self.warnings.push(
                RecipeWarning::new(
                    format!("`{}` is not a declared var, a `--set` or a capture", r.name),
                    r.spot.clone(),
                )
                .with_label("unknown var")
                .with_chain(chain),
            );
        }

        if planned.is_empty() {
            let spot = steps_spot.unwrap_or_else(|| Spot::file_start(&top_file));
            return Err(RecipeError::new("the recipe has no steps", spot)
                .with_help("add a `steps:` list, e.g.\nsteps:\n  - send: AT"));
        }

        let sync = match &self.settings.sync {
            None | Some(SyncSpec::Enabled(true)) => SyncSettings {
                enabled: true,
                within: DEFAULT_SYNC_WITHIN,
                interval: DEFAULT_SYNC_INTERVAL,
            },
            Some(SyncSpec::Enabled(false)) => SyncSettings {
                enabled: false,
                within: DEFAULT_SYNC_WITHIN,
                interval: DEFAULT_SYNC_INTERVAL,
            },
            Some(SyncSpec::Tuned(t)) => SyncSettings {
                enabled: true,
                within: t.within.unwrap_or(DEFAULT_SYNC_WITHIN),
                interval: t.interval.unwrap_or(DEFAULT_SYNC_INTERVAL),
            },
        };
        let name = top.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string())
        });
        Ok(LoadedRecipe {
            name,
            description: top.description.clone(),
            timeout: self.settings.timeout.unwrap_or(DEFAULT_TIMEOUT),
            abort: self.settings.abort.clone().unwrap_or_else(|| {
                DEFAULT_ABORT
                    .iter()
                    .map(|p| Pattern((*p).to_owned()))
                    .collect()
            }),
            deadline: self.settings.deadline,
            sync,
            urc: self.urc,
            scripts: self.scripts,
            steps: planned.into_iter().map(|p| p.step).collect(),
            vars,
            var_info,
            warnings: self.warnings,
            sources: self
                .sources
                .iter()
                .map(|s| (s.path.clone(), Arc::clone(&s.text)))
                .collect(),
            path,
        })
    }

    /// All text that could mention a var name: every file read and every script.
    fn mention_text(&self) -> String {
        let mut text = String::new();
        for s in &self.sources {
            text.push_str(&s.text);
            text.push('\n');
        }
        for s in &self.scripts {
            text.push_str(&s.text);
            text.push('\n');
        }
        text
    }
}

/// True when `name` appears in `text` as a whole word.
fn mentions(text: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// A scalar as the user wrote it: numbers keep their spelling (`0000`, `+49…`,
/// `1.10`), booleans become `true`/`false`.
fn as_written(s: &Scalar, spot: &Spot) -> String {
    match s {
        Scalar::Int(_) | Scalar::Float(_) => {
            let text = &spot.file.text;
            let raw = text.get(spot.offset..spot.offset + spot.len).unwrap_or("");
            let raw = raw.trim();
            let looks_numeric = !raw.is_empty()
                && raw
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_'));
            if looks_numeric {
                raw.to_owned()
            } else {
                s.to_text()
            }
        }
        _ => s.to_text(),
    }
}

fn unset_env_error(spot: Spot, name: &str) -> RecipeError {
    RecipeError::new(format!("environment variable `{name}` is not set"), spot)
        .with_label("used here")
        .with_help(format!("export {name}=... before the run"))
}

fn template_error(spot: &Spot, template: &str, err: &ExpandError) -> RecipeError {
    match err {
        ExpandError::Syntax {
            offset,
            len,
            message,
        } => RecipeError::new(message.clone(), sub_spot(spot, template, *offset, *len))
            .with_label("bad placeholder"),
        other => RecipeError::new(other.to_string(), spot.clone()),
    }
}

/// The `{{…}}` references of a template written at `node`, or its syntax error.
fn template_refs(
    file: &Arc<SourceFile>,
    node: &Node,
    template: &str,
) -> Result<Vec<Ref>, RecipeError> {
    let spot = node_spot(file, node);
    let phs = vars::placeholders(template).map_err(|e| template_error(&spot, template, &e))?;
    Ok(phs
        .into_iter()
        .map(|p| Ref {
            name: p.name.to_owned(),
            env: p.env,
            spot: sub_spot(&spot, template, p.offset, p.len),
        })
        .collect())
}

/// The summary line of a regex error ("unclosed group").
fn regex_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || text.lines().last().unwrap_or("").trim().to_owned(),
            str::to_owned,
        )
}

/// Check a pattern's placeholders and, for a `/regex/`, that it compiles.
fn check_pattern(
    file: &Arc<SourceFile>,
    node: &Node,
    field: &str,
    p: &Pattern,
) -> Result<Vec<Ref>, RecipeError> {
    let text = p.as_str();
    if text.is_empty() || text == "//" {
        return Err(node_error(
            file,
            node,
            format!("empty pattern in `{field}`: it would match every line"),
        ));
    }
    let refs = template_refs(file, node, text)?;
    if p.is_regex() {
        let body = &text[1..text.len() - 1];
        let spot = node_spot(file, node);
        let pieces = vars::parse_template(body).map_err(|e| template_error(&spot, body, &e))?;
        let mut probe = String::new();
        for (piece, _) in pieces {
            match piece {
                Piece::Text(t) => probe.push_str(&t),
                Piece::Var(_) | Piece::Env(_) => probe.push('x'),
            }
        }
        if let Err(e) = compile_regex(&probe) {
            return Err(node_error(
                file,
                node,
                format!("invalid regex in `{field}`: {}", regex_summary(&e)),
            )
            .with_label("this regex")
            .with_help(format!("{e}"))
            .with_help("text written `/like this/` is a regex; write it without slashes to match plain text"));
        }
    }
    Ok(refs)
}

/// What a step's checks found out.
struct StepFacts {
    refs: Vec<Ref>,
    captures: Vec<String>,
    send_data: Option<(String, Spot)>,
    warnings: Vec<RecipeWarning>,
}

const ACTIONS: [&str; 5] = ["send", "send_data", "wait", "include", "expect_mqtt"];

/// Packet names `expect_mqtt` accepts.
const MQTT_PACKETS: [&str; 8] = [
    "connack", "suback", "unsuback", "puback", "pubrec", "pubcomp", "pingresp", "publish",
];

/// (key, keys of which one must be present, why)
const NEEDS: [(&str, &[&str], &str); 12] = [
    (
        "prompt_data",
        &["send"],
        "`prompt_data` is typed after a command's `> ` prompt: it needs `send`",
    ),
    (
        "recover",
        &["retries"],
        "`recover` commands run before a retry: they need `retries`",
    ),
    (
        "until",
        &["send"],
        "`until` polls a command: it needs `send`",
    ),
    (
        "interval",
        &["until"],
        "`interval` is the pause between `until` polls: it needs `until`",
    ),
    (
        "data",
        &["send_data"],
        "`data` configures `send_data`: it needs `send_data`",
    ),
    (
        "expect",
        &["send", "wait"],
        "`expect` checks a command's response (or, with `wait`, any line): it needs `send` or `wait` (a `send_data` step passes on `SEND OK`)",
    ),
    (
        "abort",
        &["send", "send_data", "wait"],
        "`abort` fails a command early: it needs `send`, `send_data` or `wait`",
    ),
    (
        "capture",
        &["send"],
        "`capture` reads a command's response: it needs `send`",
    ),
    (
        "validate",
        &["capture"],
        "`validate` checks captured values: it needs `capture`",
    ),
    (
        "retries",
        &["send", "send_data"],
        "`retries` repeats a command: it needs `send` or `send_data`",
    ),
    (
        "retry_delay",
        &["send", "send_data"],
        "`retry_delay` is the pause before a retry: it needs `send` or `send_data`",
    ),
    (
        "backoff",
        &["send", "send_data"],
        "`backoff` stretches `retry_delay`: it needs `send` or `send_data`",
    ),
];

fn check_step(file: &Arc<SourceFile>, step: &Step, node: &Node) -> Result<StepFacts, RecipeError> {
    let Kind::Map(entries) = &node.kind else {
        return Err(node_error(
            file,
            node,
            "a step must be a map (e.g. `- send: AT`)",
        ));
    };
    let has = |k: &str| {
        entries
            .iter()
            .any(|(key, v)| key.text == k && !matches!(v.kind, Kind::Null))
    };
    let key_error = |k: &str, msg: String| -> RecipeError {
        match entries.iter().find(|(key, _)| key.text == k) {
            Some((key, _)) => {
                let e = RecipeError::new(msg, spot_at(file, &key.defined));
                if key.referenced != key.defined && key.referenced.line() > 0 {
                    e.with_secondary(spot_at(file, &key.referenced), "merged here")
                } else {
                    e
                }
                .with_label(format!("`{k}`"))
            }
            None => node_error(file, node, msg),
        }
    };

    // One action per step.
    let actions: Vec<&str> = entries
        .iter()
        .map(|(k, _)| k.text.as_str())
        .filter(|k| ACTIONS.contains(k))
        .collect();
    if let [first, second, ..] = actions.as_slice() {
        return Err(key_error(
            second,
            format!("a step does one thing, but this one has both `{first}` and `{second}`"),
        )
        .with_help("split it into two steps"));
    }
    if actions.is_empty() && step.script.is_none() && step.say.is_none() {
        return Err(node_error(
            file,
            node,
            "this step does nothing: give it `send`, `send_data`, `wait`, `expect_mqtt`, `include`, `script` or `say`",
        ));
    }
    if step.include.is_some() {
        if let Some((key, _)) = entries.iter().find(|(k, _)| k.text != "include") {
            return Err(key_error(
                &key.text,
                format!(
                    "an `include` step takes no other keys, but `{}` is set",
                    key.text
                ),
            )
            .with_help("put the key on the steps of the included file instead"));
        }
        return Ok(StepFacts {
            refs: template_refs(
                file,
                node.get("include").unwrap_or(node),
                step.include.as_deref().unwrap_or(""),
            )?,
            captures: Vec::new(),
            send_data: None,
            warnings: Vec::new(),
        });
    }
    for (key, needs, why) in NEEDS {
        if has(key) && !needs.iter().any(|n| has(n)) {
            return Err(key_error(key, why.to_owned()));
        }
    }
    if let Some(send) = &step.send
        && step.prompt_data.is_none()
    {
        let up = send.trim().to_ascii_uppercase().replace(' ', "");
        let prompts = (up.starts_with("AT+CIPSEND")
            && !up.starts_with("AT+CIPSEND?")
            && !up.starts_with("AT+CIPSEND=?"))
            || (up.starts_with("AT+SMPUB=") && up != "AT+SMPUB=?");
        if prompts {
            return Err(key_error(
                "send",
                "this command prompts `> ` for data, and nothing would type it: use `send_data: VAR` for `AT+CIPSEND`, or add `prompt_data: VAR`".to_owned(),
            ));
        }
    }
    if has("until") && has("expect") {
        return Err(key_error(
            "expect",
            "`until` and `expect` both decide when the step passes: use one of them".to_owned(),
        ));
    }
    if let Some(em) = &step.expect_mqtt {
        let spec = em.spec();
        let packet = spec.packet.trim().to_ascii_lowercase();
        if !packet.contains("{{") && !MQTT_PACKETS.contains(&packet.as_str()) {
            return Err(key_error(
                "expect_mqtt",
                format!(
                    "`expect_mqtt` waits for one of {}, not `{}`",
                    MQTT_PACKETS.join(", "),
                    sanitize(&spec.packet)
                ),
            ));
        }
        if let Some(d) = &spec.duration
            && !d.contains("{{")
            && let Err(msg) = crate::recipe::model::parse_duration(d)
        {
            return Err(key_error("expect_mqtt", format!("`duration`: {msg}")));
        }
        if packet != "publish"
            && (spec.count.is_some() || spec.duration.is_some() || spec.on_message.is_some())
        {
            return Err(key_error(
                "expect_mqtt",
                "`count`, `duration` and `on_message` are for `packet: publish` (incoming messages)"
                    .to_owned(),
            ));
        }
    }
    if step.secret && !has("capture") {
        return Err(key_error(
            "secret",
            "`secret` marks captured vars as secret: it needs `capture`".to_owned(),
        ));
    }

    // Numbers and durations.
    if let Some(b) = step.backoff
        && (!b.is_finite() || b < 1.0)
    {
        return Err(node_error(
            file,
            node.get("backoff").unwrap_or(node),
            format!(
                "`backoff` must be at least 1.0 (it multiplies `retry_delay` after each retry), not {b}"
            ),
        ));
    }
    for (key, value) in [
        ("timeout", step.timeout),
        ("deadline", step.deadline),
        ("interval", step.interval),
    ] {
        if value == Some(Duration::ZERO) {
            return Err(node_error(
                file,
                node.get(key).unwrap_or(node),
                format!("`{key}` must be longer than 0"),
            ));
        }
    }
    if let Some(chunk) = step.data.as_ref().and_then(|d| d.chunk)
        && (chunk == 0 || chunk > MAX_CHUNK)
    {
        let n = node
            .get("data")
            .and_then(|d| d.get("chunk"))
            .unwrap_or(node);
        return Err(node_error(
            file,
            n,
            format!(
                "`data.chunk` must be between 1 and {MAX_CHUNK} (the SIM7000's `AT+CIPSEND?` size), not {chunk}"
            ),
        ));
    }
    let mut warnings = Vec::new();
    if step.retries.is_none() {
        for key in ["retry_delay", "backoff"] {
            if let Some((k, _)) = entries.iter().find(|(k, _)| k.text == key) {
                warnings.push(
                    RecipeWarning::new(
                        format!("`{key}` has no effect without `retries`"),
                        spot_at(file, &k.defined),
                    )
                    .with_label("ignored"),
                );
            }
        }
    }

    // Templates and patterns.
    let mut refs = Vec::new();
    for (key, text) in [
        ("name", step.name.as_deref()),
        ("if", step.condition.as_deref()),
        ("say", step.say.as_deref()),
        ("send", step.send.as_deref()),
    ] {
        if let (Some(text), Some(n)) = (text, node.get(key)) {
            refs.extend(template_refs(file, n, text)?);
        }
    }
    if let Some(n) = node.get("recover") {
        let nodes = n.items_or_self();
        for (i, text) in step.recover.as_slice().iter().enumerate() {
            refs.extend(template_refs(
                file,
                nodes.get(i).copied().unwrap_or(n),
                text,
            )?);
        }
    }
    for (key, patterns) in [
        ("expect", &step.expect),
        ("abort", &step.abort),
        ("until", &step.until),
    ] {
        refs.extend(check_patterns(file, node, key, patterns)?);
    }

    // send_data names a var.
    let mut send_data = None;
    if let Some(name) = &step.send_data {
        let n = node.get("send_data").unwrap_or(node);
        let trimmed = name.trim();
        if !is_var_name(trimmed) {
            let mut e = node_error(
                file,
                n,
                format!(
                    "`send_data` takes the name of a var holding bytes, not `{}`",
                    sanitize(name)
                ),
            );
            if let Some(inner) = trimmed
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
            {
                e = e.with_help(format!(
                    "write the name without braces: `send_data: {}`",
                    inner.trim()
                ));
            }
            return Err(e);
        }
        send_data = Some((trimmed.to_owned(), node_spot(file, n)));
    }

    // Captures: plain regexes with named groups.
    let mut captures = Vec::new();
    if let Some(cap_node) = node.get("capture") {
        let nodes = cap_node.items_or_self();
        for (i, source) in step.capture.as_slice().iter().enumerate() {
            let n = nodes.get(i).copied().unwrap_or(cap_node);
            let re = compile_regex(source).map_err(|e| {
                node_error(
                    file,
                    n,
                    format!("invalid regex in `capture`: {}", regex_summary(&e)),
                )
                .with_label("this regex")
                .with_help(e.to_string())
            })?;
            let names: Vec<&str> = re.capture_names().flatten().collect();
            if names.is_empty() {
                return Err(node_error(
                    file,
                    n,
                    "a `capture` regex needs at least one named group, e.g. `\\+CSQ: (?P<rssi>\\d+)`",
                )
                .with_label("no named group")
                .with_help("each named group `(?P<name>…)` sets the var `name`"));
            }
            for name in names {
                if !is_var_name(name) || name == "env" {
                    return Err(node_error(
                        file,
                        n,
                        format!(
                            "capture group `{name}` is not a usable var name (letters, digits and `_`, not `env`)"
                        ),
                    ));
                }
                if !captures.iter().any(|c| c == name) {
                    captures.push(name.to_owned());
                }
            }
        }
    }

    // validate: keys are names captured by this step.
    if let Some(val_node) = node.get("validate") {
        for (name, validator) in &step.validate {
            let (key, vnode) = val_node
                .entry(name)
                .map_or((None, val_node), |(k, v)| (Some(k), v));
            if !captures.iter().any(|c| c == name) {
                let spot =
                    key.map_or_else(|| node_spot(file, val_node), |k| spot_at(file, &k.defined));
                let mut e = RecipeError::new(
                    format!("`validate` checks `{name}`, but this step captures no `{name}`"),
                    spot,
                )
                .with_label("not captured");
                e = if captures.is_empty() {
                    e.with_help("add a named group `(?P<name>…)` to `capture`")
                } else {
                    e.with_help(format!("this step captures: {}", captures.join(", ")))
                };
                return Err(e);
            }
            if let Some(source) = &validator.regex {
                let rn = vnode.get("regex").unwrap_or(vnode);
                compile_regex(source).map_err(|e| {
                    node_error(
                        file,
                        rn,
                        format!(
                            "invalid regex in `validate.{name}.regex`: {}",
                            regex_summary(&e)
                        ),
                    )
                    .with_help(e.to_string())
                })?;
            }
            if let (Some(min), Some(max)) = (validator.min, validator.max)
                && min > max
            {
                return Err(node_error(
                    file,
                    vnode,
                    format!("`validate.{name}`: `min` ({min}) is larger than `max` ({max})"),
                ));
            }
        }
    }

    Ok(StepFacts {
        refs,
        captures,
        send_data,
        warnings,
    })
}

fn check_patterns(
    file: &Arc<SourceFile>,
    step_node: &Node,
    key: &str,
    patterns: &OneOrMany<Pattern>,
) -> Result<Vec<Ref>, RecipeError> {
    let Some(node) = step_node.get(key) else {
        return Ok(Vec::new());
    };
    let nodes = node.items_or_self();
    let mut refs = Vec::new();
    for (i, p) in patterns.as_slice().iter().enumerate() {
        let n = nodes.get(i).copied().unwrap_or(node);
        refs.extend(check_pattern(file, n, key, p)?);
    }
    Ok(refs)
}
