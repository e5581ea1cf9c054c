//! Sandboxed Rhai scripts in recipes.
//!
//! A step may carry an inline script (`script: |`), and a recipe may list shared script
//! files (`scripts: [../scripts/mqtt.rhai]`) whose functions every step script can call.
//! Scripts are compiled when the recipe loads, so `sim7k check` reports a script error at
//! the YAML file's line and column. At run time a step script sees every recipe var as a
//! variable (text as strings, bytes as BLOBs) that it may reassign; new variables are
//! declared with `let`. Its top-level variables (strings, BLOBs, numbers, booleans) are
//! written back as recipe vars when it ends. Shared functions, which
//! cannot see the caller's variables, use `get_var("name")` and `set_var("name", value)`.
//!
//! The engine is hardened ([`sandbox`]): no module imports, no `eval`, bounded operations,
//! string/BLOB/array/map sizes, call depth and wall-clock time; `print`/`debug` go to the
//! run's log.

mod mqtt;
mod natives;
pub mod sandbox;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{AST, Dynamic, Engine, EvalAltResult, Position, Scope};

use crate::recipe::load::{LoadedRecipe, PlannedStep};
use crate::recipe::vars::{VarValue, Vars};

/// A script error with its place in a recipe or script file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// File (the YAML recipe for inline scripts, the `.rhai` file otherwise).
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What went wrong.
    pub message: String,
    /// The source line, when known.
    pub snippet: Option<String>,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: script error: {}",
                self.file.display(),
                self.line,
                self.column.max(1),
                self.message
            )?;
        } else {
            write!(f, "{}: script error: {}", self.file.display(), self.message)?;
        }
        if let Some(s) = &self.snippet {
            write!(f, "\n    | {s}")?;
            if self.column > 0 {
                write!(f, "\n    | {}^", " ".repeat(self.column.saturating_sub(1)))?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScriptError {}

/// Where an inline script's text starts in its YAML file.
#[derive(Debug, Clone)]
struct InlineOrigin {
    file: PathBuf,
    /// YAML line of the script's first line.
    line: usize,
    /// YAML column of the script's first character.
    column: usize,
    /// The YAML file's text (for snippets).
    yaml: Arc<str>,
}

/// A recipe's compiled scripts.
#[derive(Clone)]
pub struct CompiledScripts {
    library: AST,
    /// Per step index: the step's AST (library merged in) and where it is written.
    steps: BTreeMap<usize, (AST, InlineOrigin)>,
    /// Library sources, for snippets.
    files: BTreeMap<String, Arc<str>>,
}

impl fmt::Debug for CompiledScripts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledScripts")
            .field("steps", &self.steps.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Output of `print`/`debug` and shared var access during one script run.
#[derive(Default)]
struct RunState {
    log: Vec<String>,
    vars: Option<Vars>,
    /// MQTT version of the last `mqtt_connect` (the default for later packets).
    protocol: crate::mqtt::Protocol,
    /// Last packet id handed out.
    next_id: u16,
}

type Shared = Arc<Mutex<RunState>>;

/// Build a hardened engine with sim7k's native functions.
fn build_engine(state: Shared) -> Engine {
    let mut engine = Engine::new();
    sandbox::harden(&mut engine);
    let s1 = state.clone();
    engine.on_print(move |text| {
        if let Ok(mut st) = s1.lock() {
            st.log.push(text.to_string());
        }
    });
    let s2 = state.clone();
    engine.on_debug(move |text, _src, pos| {
        if let Ok(mut st) = s2.lock() {
            st.log.push(format!("debug {pos}: {text}"));
        }
    });
    natives::register(&mut engine, state.clone());
    mqtt::register(&mut engine, state);
    engine
}

/// Compile a recipe's scripts: library files first, then each step's inline script.
pub fn compile(recipe: &LoadedRecipe) -> Result<CompiledScripts, Vec<ScriptError>> {
    let engine = build_engine(Shared::default());
    let mut errors = Vec::new();
    let mut library = AST::empty();
    let mut files = BTreeMap::new();
    for src in &recipe.scripts {
        let name = src.path.display().to_string();
        let text: Arc<str> = Arc::from(src.text.as_str());
        match engine.compile(&src.text) {
            Ok(mut ast) => {
                ast.set_source(name.clone());
                // Top-level statements of a shared file (e.g. `const` values) run at the
                // start of every step script; its functions are callable from all of them.
                library = library.merge(&ast);
            }
            Err(e) => errors.push(file_error(&src.path, &text, e.1, e.0.to_string())),
        }
        files.insert(name, text);
    }
    for planned in &recipe.steps {
        let Some(hook) = planned
            .step
            .expect_mqtt
            .as_ref()
            .and_then(|e| e.spec().on_message)
        else {
            continue;
        };
        let found = library
            .iter_functions()
            .any(|f| f.name == hook.as_str() && f.params.len() == 4);
        if !found {
            errors.push(ScriptError {
                file: planned.origin.file.clone(),
                line: planned.origin.line as usize,
                column: planned.origin.column as usize,
                message: format!(
                    "on_message: no function `{hook}(topic, payload, qos, retain)` in the recipe's `scripts:` files"
                ),
                snippet: None,
            });
        }
    }
    let mut steps = BTreeMap::new();
    let mut yaml_cache: BTreeMap<PathBuf, Arc<str>> = BTreeMap::new();
    for (index, planned) in recipe.steps.iter().enumerate() {
        let Some(script) = &planned.step.script else {
            continue;
        };
        let yaml = yaml_cache
            .entry(planned.origin.file.clone())
            .or_insert_with(|| {
                Arc::from(
                    std::fs::read_to_string(&planned.origin.file)
                        .unwrap_or_default()
                        .as_str(),
                )
            })
            .clone();
        let origin = inline_origin(&planned.origin.file, script, &yaml);
        match engine.compile(&script.value) {
            Ok(ast) => {
                let merged = library.merge(&ast);
                steps.insert(index, (merged, origin));
            }
            Err(e) => errors.push(inline_error(&origin, e.1, e.0.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(CompiledScripts {
            library,
            steps,
            files,
        })
    } else {
        Err(errors)
    }
}

/// Locate the first character of an inline script in its YAML file. serde-saphyr reports
/// the position of the scalar; for a block scalar (`|`) the text starts on the next line.
fn inline_origin(
    file: &Path,
    script: &serde_saphyr::Spanned<String>,
    yaml: &Arc<str>,
) -> InlineOrigin {
    let line = script.referenced.line() as usize;
    let column = script.referenced.column() as usize;
    let yaml_line = yaml.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let at = yaml_line
        .char_indices()
        .nth(column.saturating_sub(1))
        .map(|(i, _)| &yaml_line[i..])
        .unwrap_or("");
    let (line, column) = if at.starts_with('|') || at.starts_with('>') {
        // Block scalar: content starts on the next non-empty line, at its indentation.
        let mut l = line + 1;
        let mut col = 1;
        for text in yaml.lines().skip(line) {
            if !text.trim().is_empty() {
                col = text.len() - text.trim_start().len() + 1;
                break;
            }
            l += 1;
        }
        (l, col)
    } else if at.starts_with('"') || at.starts_with('\'') {
        (line, column + 1)
    } else {
        (line, column)
    };
    InlineOrigin {
        file: file.to_path_buf(),
        line,
        column,
        yaml: yaml.clone(),
    }
}

fn snippet_of(text: &str, line: usize) -> Option<String> {
    if line == 0 {
        return None;
    }
    text.lines().nth(line - 1).map(|s| s.trim_end().to_string())
}

fn file_error(path: &Path, text: &str, pos: Position, message: String) -> ScriptError {
    let line = pos.line().unwrap_or(0);
    ScriptError {
        file: path.to_path_buf(),
        line,
        column: pos.position().unwrap_or(0),
        message: strip_position(&message),
        snippet: snippet_of(text, line),
    }
}

fn inline_error(origin: &InlineOrigin, pos: Position, message: String) -> ScriptError {
    let (line, column) = match (pos.line(), pos.position()) {
        (Some(l), c) => {
            let yaml_line = origin.line + l - 1;
            let col = match c {
                Some(c) if l == 1 => origin.column + c - 1,
                Some(c) => {
                    // Later lines of a block scalar keep the block's indentation.
                    origin.column + c - 1
                }
                None => 0,
            };
            (yaml_line, col)
        }
        (None, _) => (origin.line, origin.column),
    };
    ScriptError {
        file: origin.file.clone(),
        line,
        column,
        message: strip_position(&message),
        snippet: snippet_of(&origin.yaml, line),
    }
}

/// Rhai appends ` (line 2, position 6)` to messages; the location is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// Runs step scripts during a recipe run ([`crate::runner::ScriptHost`]).
pub struct Host {
    engine: Engine,
    compiled: CompiledScripts,
    state: Shared,
}

impl Host {
    /// A host for a recipe's compiled scripts.
    pub fn new(compiled: CompiledScripts) -> Host {
        let state = Shared::default();
        Host {
            engine: build_engine(state.clone()),
            compiled,
            state,
        }
    }

    /// Run the script of step `index` with `vars`; returns printed lines.
    pub fn run_step(&mut self, index: usize, vars: &mut Vars) -> Result<Vec<String>, ScriptError> {
        let Some((ast, origin)) = self.compiled.steps.get(&index) else {
            return Ok(Vec::new());
        };
        let mut scope = Scope::new();
        for (name, value, _) in vars.iter() {
            if !is_identifier(name) {
                continue;
            }
            match value {
                VarValue::Text(t) => scope.push(name.to_string(), t.clone()),
                VarValue::Bytes(b) => scope.push(name.to_string(), b.clone()),
            };
        }
        if let Ok(mut st) = self.state.lock() {
            st.log.clear();
            st.vars = Some(vars.clone());
        }
        let result = self.engine.run_ast_with_scope(&mut scope, ast);
        let (log, shared_vars) = match self.state.lock() {
            Ok(mut st) => (std::mem::take(&mut st.log), st.vars.take()),
            Err(_) => (Vec::new(), None),
        };
        if let Err(err) = result {
            return Err(self.runtime_error(origin, &err));
        }
        // Top-level variables the script created or changed, then what it set with
        // set_var() (which wins over an unchanged copy of the var in the scope).
        let before = vars.clone();
        for (name, _, value) in scope.iter() {
            if let Some(v) = to_var(&value)
                && before.get(name) != Some(&v)
            {
                let secret = vars.is_secret(name);
                vars.set(name, v, secret);
            }
        }
        if let Some(updated) = shared_vars {
            for (name, value, secret) in updated.iter() {
                if before.get(name) != Some(value) {
                    let secret = secret || vars.is_secret(name);
                    vars.set(name, value.clone(), secret);
                }
            }
        }
        Ok(log)
    }

    fn runtime_error(&self, origin: &InlineOrigin, err: &EvalAltResult) -> ScriptError {
        // Errors inside a library function carry that file as their source.
        let mut inner = err;
        let mut source: Option<&str> = None;
        while let EvalAltResult::ErrorInFunctionCall(_, src, e, _) = inner {
            if !src.is_empty() {
                source = Some(src.as_str());
            }
            inner = e;
        }
        let message = friendly(err);
        match source.and_then(|s| self.compiled.files.get(s).map(|t| (s, t))) {
            Some((name, text)) => file_error(Path::new(name), text, inner.position(), message),
            None => inline_error(origin, err.position(), message),
        }
    }

    /// The compiled library (for tests and `check`).
    pub fn library(&self) -> &AST {
        &self.compiled.library
    }
}

impl crate::runner::ScriptHost for Host {
    fn run_step_script(
        &mut self,
        index: usize,
        _step: &PlannedStep,
        vars: &mut Vars,
    ) -> Result<Vec<String>, String> {
        self.run_step(index, vars).map_err(|e| e.to_string())
    }

    fn on_message(
        &mut self,
        name: &str,
        message: &crate::engine::mqtt::Message,
        vars: &mut Vars,
    ) -> Result<Vec<String>, String> {
        self.call_hook(name, message, vars)
            .map_err(|e| e.to_string())
    }
}

impl Host {
    /// Call a library function `name(topic, payload, qos, retain)` for an MQTT message.
    pub fn call_hook(
        &mut self,
        name: &str,
        m: &crate::engine::mqtt::Message,
        vars: &mut Vars,
    ) -> Result<Vec<String>, ScriptError> {
        if let Ok(mut st) = self.state.lock() {
            st.log.clear();
            st.vars = Some(vars.clone());
        }
        let mut scope = Scope::new();
        let args = (
            m.topic.clone(),
            Dynamic::from_blob(m.payload.clone()),
            i64::from(m.qos),
            m.retain,
        );
        let result = self
            .engine
            .call_fn::<Dynamic>(&mut scope, &self.compiled.library, name, args);
        let (log, shared_vars) = match self.state.lock() {
            Ok(mut st) => (std::mem::take(&mut st.log), st.vars.take()),
            Err(_) => (Vec::new(), None),
        };
        if let Err(err) = result {
            let mut inner: &EvalAltResult = &err;
            while let EvalAltResult::ErrorInFunctionCall(_, _, e, _) = inner {
                inner = e;
            }
            let (file, text) = self
                .compiled
                .files
                .iter()
                .next()
                .map(|(f, t)| (PathBuf::from(f), t.clone()))
                .unwrap_or_default();
            return Err(file_error(
                &file,
                &text,
                inner.position(),
                format!("on_message `{name}`: {}", friendly(&err)),
            ));
        }
        if let Some(updated) = shared_vars {
            for (n, value, secret) in updated.iter() {
                let secret = secret || vars.is_secret(n);
                vars.set(n, value.clone(), secret);
            }
        }
        Ok(log)
    }
}

/// Readable messages for the sandbox limits.
fn friendly(err: &EvalAltResult) -> String {
    let mut inner = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, e, _) = inner {
        inner = e;
    }
    match inner {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the script ran too long (more than {} operations): is there an endless loop?",
            sandbox::MAX_OPERATIONS
        ),
        EvalAltResult::ErrorTerminated(_, _) => format!(
            "the script ran longer than {} s and was stopped",
            sandbox::MAX_SECONDS
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "calls nested deeper than {} levels (endless recursion?)",
            sandbox::MAX_CALL_LEVELS
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "{what}: the sandbox allows strings up to {} bytes, BLOBs and arrays up to {} items, maps up to {} entries",
            sandbox::MAX_STRING,
            sandbox::MAX_ARRAY,
            sandbox::MAX_MAP
        ),
        _ => strip_position(&err.to_string()),
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !sandbox::is_reserved(name)
}

/// A script value as a recipe var, for the types that have one.
fn to_var(value: &Dynamic) -> Option<VarValue> {
    if value.is_blob() {
        return value.clone().try_cast::<rhai::Blob>().map(VarValue::Bytes);
    }
    if value.is_string() {
        return value.clone().into_string().ok().map(VarValue::Text);
    }
    if value.is_int() || value.is_float() || value.is_bool() || value.is_char() {
        return Some(VarValue::Text(value.to_string()));
    }
    None
}
