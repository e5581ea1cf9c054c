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
//!    `- include:` step is replaced by the steps of that file. The teardown is a file's
//!    own `finally:` steps, then the teardowns of the files it includes, the last one
//!    first (what was set up last is torn down first); each file contributes its URC
//!    handlers, scripts and `finally:` once.
//! 4. Expands var defaults (`{{other}}`, `{{env.X}}`, within [`MAX_EXPANDED`] bytes),
//!    checks their `validate`, then applies `--set` (an unknown name is an error).
//! 5. Validates every step and pattern, collects warnings, and compiles the
//!    [`Program`].
//!
//! [`MAX_EXPANDED`]: super::template::MAX_EXPANDED

mod check;
mod finish;
mod loader;
mod read;
mod record;
mod spot;
mod tree;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use self::loader::Loader;
use self::read::{ReadError, not_utf8_error, read_text, too_large_message};
pub use super::diag::{Origin, RecipeError, RecipeWarning};
use super::model::{Pattern, Step, UrcHandler};
use super::program::Program;
use super::vars::{Env, Vars, is_var_name};

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
/// Largest `backoff`.
pub const MAX_BACKOFF: f64 = 10.0;
/// Longest pause before a retry (`retry_delay` stretched by `backoff`).
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(3600);
/// Largest `data.chunk` (the SIM7000's `AT+CIPSEND?` size).
pub const MAX_CHUNK: usize = crate::at::limits::MAX_SEND;

/// How to load a recipe.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--set name=value`, in command-line order (a later one wins). The value is
    /// taken literally except for `{{env.NAME}}`, which reads the environment (so a
    /// secret need not be on the command line). A name the recipe does not declare is
    /// added as a var when the recipe, an include or a script mentions it (scripts may
    /// read it); otherwise it is an error.
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
    /// The steps in run order, includes flattened, as written.
    pub steps: Vec<PlannedStep>,
    /// The teardown (`finally`) steps in run order, as written.
    pub finally: Vec<PlannedStep>,
    /// What runs: the steps compiled, every default applied.
    pub program: Program,
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
    /// Every file the recipe was made of: the recipe, its includes, its scripts. Outputs
    /// must never be one of them (see [`crate::output::check_outputs`]).
    pub fn files(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = self.sources.iter().map(|(p, _)| p.as_path()).collect();
        for s in &self.scripts {
            if !files.contains(&s.path.as_path()) {
                files.push(&s.path);
            }
        }
        files
    }

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
