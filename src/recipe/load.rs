//! Recipe loading. (Stand-in with the agreed API; the full loader replaces it.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::{Pattern, Recipe, Step, UrcHandler};
use super::vars::{Env, VarValue, Vars};

/// Options for [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--set key=value` pairs.
    pub overrides: Vec<(String, String)>,
    /// Where `{{env.X}}` comes from.
    pub env: Env,
}

/// Where a step came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Start-up sync settings.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Sync at all.
    pub enabled: bool,
    /// Keep trying this long.
    pub within: Duration,
    /// Per-try wait.
    pub interval: Duration,
}

/// A script file.
#[derive(Debug, Clone)]
pub struct ScriptSource {
    /// Path.
    pub path: PathBuf,
    /// Text.
    pub text: String,
}

/// A step with its origin.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// The step.
    pub step: Step,
    /// Where it is written.
    pub origin: Origin,
}

/// A loaded recipe.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    /// File.
    pub path: PathBuf,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Default per-attempt timeout.
    pub timeout: Duration,
    /// Abort patterns.
    pub abort: Vec<Pattern>,
    /// Whole-run deadline.
    pub deadline: Option<Duration>,
    /// Sync.
    pub sync: SyncSettings,
    /// URC handlers.
    pub urc: Vec<UrcHandler>,
    /// Scripts.
    pub scripts: Vec<ScriptSource>,
    /// Steps.
    pub steps: Vec<PlannedStep>,
    /// Vars.
    pub vars: Vars,
}

/// Errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecipeError(pub String);

/// Load a recipe file (stand-in: no includes).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<LoadedRecipe, RecipeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RecipeError(format!("{}: {e}", path.display())))?;
    load_str(path, &text, opts)
}

/// Load recipe text.
pub fn load_str(path: &Path, text: &str, opts: &LoadOptions) -> Result<LoadedRecipe, RecipeError> {
    let r: Recipe = serde_saphyr::from_str(text)
        .map_err(|e| RecipeError(format!("{}: {e}", path.display())))?;
    let mut vars = Vars::new(opts.env.clone());
    for (k, v) in &r.vars {
        let (val, secret) = match v {
            super::model::VarDef::Plain(s) => (s.to_text(), false),
            super::model::VarDef::Full(spec) => (
                spec.value.as_ref().map(|s| s.to_text()).unwrap_or_default(),
                spec.secret,
            ),
        };
        let val = vars.expand(&val).map_err(|e| RecipeError(e.to_string()))?;
        vars.set(k, VarValue::Text(val), secret);
    }
    for (k, v) in &opts.overrides {
        let secret = vars.is_secret(k);
        vars.set(k, VarValue::Text(v.clone()), secret);
    }
    Ok(LoadedRecipe {
        path: path.to_path_buf(),
        name: r.name.clone().unwrap_or_else(|| "recipe".into()),
        description: r.description.clone(),
        timeout: r.timeout.unwrap_or(Duration::from_secs(5)),
        abort: r.abort.clone().unwrap_or_else(|| {
            [
                "ERROR",
                "+CME ERROR",
                "+CMS ERROR",
                "CONNECT FAIL",
                "SEND FAIL",
            ]
            .iter()
            .map(|s| Pattern(s.to_string()))
            .collect()
        }),
        deadline: r.deadline,
        sync: SyncSettings {
            enabled: !matches!(r.sync, Some(super::model::SyncSpec::Enabled(false))),
            within: Duration::from_secs(10),
            interval: Duration::from_millis(300),
        },
        urc: r.urc.clone(),
        scripts: Vec::new(),
        steps: r
            .steps
            .iter()
            .map(|s| PlannedStep {
                step: s.value.clone(),
                origin: Origin {
                    file: path.to_path_buf(),
                    line: s.referenced.line() as u32,
                    column: s.referenced.column() as u32,
                },
            })
            .collect(),
        vars,
    })
}
