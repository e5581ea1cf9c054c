//! Sandboxed Rhai scripts in recipes.
//!
//! A step may carry an inline script (`script: |`), and a recipe may list shared script
//! files (`scripts: [../scripts/mqtt.rhai]`) whose functions every step script can call.
//! Scripts are compiled when the recipe loads, so `sim7k check` reports a script error at
//! the YAML file's line and column. At run time a step script sees every recipe var it
//! (or a shared file) mentions as a variable (text as strings, bytes as BLOBs) that it may
//! reassign; new variables are declared with `let`. Its top-level variables (strings,
//! BLOBs, numbers, booleans) are written back as recipe vars when it ends (BLOBs move,
//! without a copy, into shared bytes that the data send uses as they are). Shared
//! functions, which cannot see the caller's variables, use `get_var("name")` and
//! `set_var("name", value)`. The top-level statements of each shared file run before the
//! step script, in its scope, so an error there points into that file.
//!
//! The engine is hardened ([`sandbox`]): no module imports, no `eval`, bounded operations,
//! string/BLOB/array/map sizes and call depth; per run a wall-clock limit, the step's or
//! recipe's deadline (a timeout) and a memory cap ([`memory`]); `print`/`debug` go to the
//! run's log.

pub mod memory;
mod mqtt;
mod natives;
pub mod sandbox;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Position, Scope};

use self::sandbox::{Guard, Stop};
use crate::recipe::load::LoadedRecipe;
use crate::recipe::program::{InlineScript, ProgramStep, StepAction};
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
    /// The step's or the recipe's deadline stopped the script (a timeout, not a
    /// recipe error).
    pub deadline: bool,
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

/// A recipe's compiled scripts.
#[derive(Clone)]
pub struct CompiledScripts {
    /// Every library file merged (functions and top-level statements), for `on_message`.
    library: AST,
    /// Per library file: its top-level statements with every library function, run in
    /// the step's scope before each step script (so their errors point into that file).
    preludes: Vec<(PathBuf, AST)>,
    /// Per step id: the step's AST (library functions merged in) and where it is written.
    steps: BTreeMap<usize, (AST, InlineScript)>,
    /// Library sources, for snippets.
    files: BTreeMap<String, Arc<str>>,
    /// The library files' text, to tell which vars a script may read.
    library_text: String,
    /// `limits.script_memory`.
    memory_cap: u64,
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
    /// Most bytes the vars may hold (`limits.script_memory`).
    memory_cap: u64,
}

type Shared = Arc<Mutex<RunState>>;
type SharedGuard = Arc<Mutex<Option<Guard>>>;

/// Build a hardened engine with sim7k's native functions.
fn build_engine(state: Shared, guard: SharedGuard) -> Engine {
    let mut engine = Engine::new();
    sandbox::harden(&mut engine, guard);
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

/// Compile a recipe's scripts: library files first, then each step's inline script
/// (teardown steps included).
pub fn compile(recipe: &LoadedRecipe) -> Result<CompiledScripts, Vec<ScriptError>> {
    let engine = build_engine(Shared::default(), SharedGuard::default());
    let mut errors = Vec::new();
    let mut library = AST::empty();
    let mut file_asts = Vec::new();
    let mut files = BTreeMap::new();
    let mut library_text = String::new();
    for src in &recipe.scripts {
        let name = src.path.display().to_string();
        let text: Arc<str> = Arc::from(src.text.as_str());
        library_text.push_str(&src.text);
        library_text.push('\n');
        match engine.compile(&src.text) {
            Ok(mut ast) => {
                ast.set_source(name.clone());
                library = library.merge(&ast);
                file_asts.push((src.path.clone(), ast));
            }
            Err(e) => errors.push(file_error(&src.path, &text, e.1, e.0.to_string())),
        }
        files.insert(name, text);
    }
    let functions = library.clone_functions_only();
    let preludes = file_asts
        .into_iter()
        .map(|(path, mut ast)| {
            ast.clear_functions();
            (path, functions.merge(&ast))
        })
        .collect();
    let program = &recipe.program;
    for step in program.all_steps() {
        let StepAction::ExpectMqtt(em) = &step.action else {
            continue;
        };
        let Some(hook) = &em.on_message else {
            continue;
        };
        let found = library
            .iter_functions()
            .any(|f| f.name == hook.as_str() && f.params.len() == 4);
        if !found {
            errors.push(ScriptError {
                file: step.origin.file.clone(),
                line: step.origin.line as usize,
                column: step.origin.column as usize,
                message: format!(
                    "on_message: no function `{hook}(topic, payload, qos, retain)` in the recipe's `scripts:` files"
                ),
                snippet: None,
                deadline: false,
            });
        }
    }
    let mut steps = BTreeMap::new();
    for step in program.all_steps() {
        let Some(script) = &step.script else {
            continue;
        };
        match engine.compile(&*script.text) {
            Ok(ast) => {
                steps.insert(step.id, (functions.merge(&ast), script.clone()));
            }
            Err(e) => errors.push(inline_error(script, e.1, e.0.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(CompiledScripts {
            library,
            preludes,
            steps,
            files,
            library_text,
            memory_cap: program.limits.script_memory,
        })
    } else {
        Err(errors)
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
        deadline: false,
    }
}

fn inline_error(origin: &InlineScript, pos: Position, message: String) -> ScriptError {
    let (line, column) = match (pos.line(), pos.position()) {
        (Some(l), c) => {
            let yaml_line = origin.line + l - 1;
            // Later lines of a block scalar keep the block's indentation, so the same
            // column offset applies to every line.
            let col = c.map_or(0, |c| origin.column + c - 1);
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
        deadline: false,
    }
}

/// Rhai appends ` (line 2, position 6)` to messages; the location is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// Runs step scripts during a recipe run ([`crate::job::ScriptHost`]).
pub struct Host {
    engine: Engine,
    compiled: CompiledScripts,
    state: Shared,
    guard: SharedGuard,
    counting: bool,
}

impl Host {
    /// A host for a recipe's compiled scripts.
    pub fn new(compiled: CompiledScripts) -> Host {
        let state = Shared::default();
        let guard = SharedGuard::default();
        Host {
            engine: build_engine(state.clone(), guard.clone()),
            compiled,
            state,
            guard,
            counting: memory::counting(),
        }
    }

    /// Run the script of step `id` with `vars`; returns printed lines.
    pub fn run_step(&mut self, id: usize, vars: &mut Vars) -> Result<Vec<String>, ScriptError> {
        self.run_step_until(id, vars, None)
    }

    /// Run the script of step `id` with `vars`, stopping it at `deadline` (the step's or
    /// the recipe's); returns printed lines.
    pub fn run_step_until(
        &mut self,
        id: usize,
        vars: &mut Vars,
        deadline: Option<Instant>,
    ) -> Result<Vec<String>, ScriptError> {
        let Some((ast, origin)) = self.compiled.steps.get(&id) else {
            return Ok(Vec::new());
        };
        // Only the vars the script (or a library file) mentions enter its scope: a BLOB
        // in the scope is a copy, and a payload may be megabytes.
        let mut scope = Scope::new();
        for (name, value, _) in vars.iter() {
            if !is_identifier(name)
                || !(mentions(&origin.text, name) || mentions(&self.compiled.library_text, name))
            {
                continue;
            }
            match value {
                VarValue::Text(t) => scope.push(name.to_string(), t.clone()),
                VarValue::Bytes(b) => scope.push(name.to_string(), b.to_vec()),
            };
        }
        let cap = self.compiled.memory_cap;
        if let Ok(mut st) = self.state.lock() {
            st.log.clear();
            st.vars = Some(vars.clone());
            st.memory_cap = cap;
        }
        if let Ok(mut g) = self.guard.lock() {
            *g = Some(Guard::start(deadline, cap, self.counting));
        }
        let mut result = Ok(());
        for (path, prelude) in &self.compiled.preludes {
            if let Err(err) = self.engine.run_ast_with_scope(&mut scope, prelude) {
                let text = self
                    .compiled
                    .files
                    .get(&path.display().to_string())
                    .cloned()
                    .unwrap_or_default();
                result = Err(self.prelude_error(path, &text, &err));
                break;
            }
        }
        if result.is_ok()
            && let Err(err) = self.engine.run_ast_with_scope(&mut scope, ast)
        {
            result = Err(self.runtime_error(origin, &err));
        }
        if let Ok(mut g) = self.guard.lock() {
            *g = None;
        }
        let (log, shared_vars) = match self.state.lock() {
            Ok(mut st) => (std::mem::take(&mut st.log), st.vars.take()),
            Err(_) => (Vec::new(), None),
        };
        result?;
        // Top-level variables the script created or changed, then what it set with
        // set_var() (which wins over an unchanged copy of the var in the scope). The
        // scope is consumed: BLOBs move into the vars.
        let before = vars.clone();
        for (name, value, _) in scope {
            if let Some(v) = into_var(value)
                && !before.get(&name).is_some_and(|b| b.same_as(&v))
            {
                let secret = vars.is_secret(&name);
                vars.set(&name, v, secret);
            }
        }
        if let Some(updated) = shared_vars {
            for (name, value, secret) in updated.iter() {
                if !before.get(name).is_some_and(|b| b.same_as(value)) {
                    let secret = secret || vars.is_secret(name);
                    vars.set(name, value.clone(), secret);
                }
            }
        }
        let total = vars.total_bytes();
        if u64::try_from(total).is_ok_and(|t| t > cap) {
            let mut e = inline_error(
                origin,
                Position::new(1, 1),
                format!(
                    "the vars hold {total} bytes after this script, over the limit of {cap} bytes (`limits.script_memory`)"
                ),
            );
            e.column = origin.column;
            return Err(e);
        }
        Ok(log)
    }

    fn prelude_error(&self, path: &Path, text: &str, err: &EvalAltResult) -> ScriptError {
        let mut inner = err;
        while let EvalAltResult::ErrorInFunctionCall(_, _, e, _) = inner {
            inner = e;
        }
        let mut e = file_error(path, text, inner.position(), friendly(err));
        e.deadline = stopped_by(err) == Some(Stop::Deadline);
        e
    }

    fn runtime_error(&self, origin: &InlineScript, err: &EvalAltResult) -> ScriptError {
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
        let mut e = match source.and_then(|s| self.compiled.files.get(s).map(|t| (s, t))) {
            Some((name, text)) => file_error(Path::new(name), text, inner.position(), message),
            None => inline_error(origin, err.position(), message),
        };
        e.deadline = stopped_by(err) == Some(Stop::Deadline);
        e
    }

    /// The compiled library (for tests and `check`).
    pub fn library(&self) -> &AST {
        &self.compiled.library
    }
}

impl crate::job::ScriptHost for Host {
    fn run_step_script(
        &mut self,
        step: &ProgramStep,
        vars: &mut Vars,
        deadline: Option<Instant>,
    ) -> Result<Vec<String>, crate::job::ScriptFailure> {
        self.run_step_until(step.id, vars, deadline)
            .map_err(|e| crate::job::ScriptFailure {
                timed_out: e.deadline,
                message: e.to_string(),
            })
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
        let cap = self.compiled.memory_cap;
        if let Ok(mut st) = self.state.lock() {
            st.log.clear();
            st.vars = Some(vars.clone());
            st.memory_cap = cap;
        }
        if let Ok(mut g) = self.guard.lock() {
            *g = Some(Guard::start(None, cap, self.counting));
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
        if let Ok(mut g) = self.guard.lock() {
            *g = None;
        }
        let (log, shared_vars) = match self.state.lock() {
            Ok(mut st) => (std::mem::take(&mut st.log), st.vars.take()),
            Err(_) => (Vec::new(), None),
        };
        if let Err(err) = result {
            let mut inner: &EvalAltResult = &err;
            let mut source: Option<&str> = None;
            while let EvalAltResult::ErrorInFunctionCall(_, src, e, _) = inner {
                if !src.is_empty() {
                    source = Some(src.as_str());
                }
                inner = e;
            }
            let (file, text) = source
                .and_then(|s| self.compiled.files.get_key_value(s))
                .or_else(|| self.compiled.files.iter().next())
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

/// The sandbox stop that ended a run, if one did.
fn stopped_by(err: &EvalAltResult) -> Option<Stop> {
    let mut inner = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, e, _) = inner {
        inner = e;
    }
    match inner {
        EvalAltResult::ErrorTerminated(token, _) => token
            .clone()
            .into_immutable_string()
            .ok()
            .and_then(|t| Stop::from_token(&t)),
        _ => None,
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
        EvalAltResult::ErrorTerminated(..) => match stopped_by(err) {
            Some(Stop::Deadline) => {
                "the step's or the recipe's deadline passed while the script ran: it was stopped"
                    .to_owned()
            }
            Some(Stop::Memory) => {
                "the script holds more memory than `limits.script_memory` allows (64 MiB unless the recipe sets it): it was stopped"
                    .to_owned()
            }
            _ => format!(
                "the script ran longer than {} s and was stopped",
                sandbox::MAX_SECONDS
            ),
        },
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

/// A script value as a recipe var, for the types that have one (BLOBs move, uncopied
/// until they become shared bytes).
fn into_var(value: Dynamic) -> Option<VarValue> {
    if value.is_blob() {
        return value
            .try_cast::<rhai::Blob>()
            .map(|b| VarValue::Bytes(b.into()));
    }
    if value.is_string() {
        return value.into_string().ok().map(VarValue::Text);
    }
    if value.is_int() || value.is_float() || value.is_bool() || value.is_char() {
        return Some(VarValue::Text(value.to_string()));
    }
    None
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
