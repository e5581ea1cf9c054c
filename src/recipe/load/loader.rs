//! The loader: reads a recipe and everything it includes, records vars, settings, URC
//! handlers and scripts in precedence order.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::super::diag::{SourceFile, Spot};
use super::super::model::{Pattern, Recipe, Step, SyncSpec, UrcHandler};
use super::super::program::{Check, InlineScript};
use super::super::vars::{self, MAX_EXPANDED, Piece, is_var_name};
use super::check::{StepFacts, check_step, template_error, unset_env_error};
use super::read::{ReadError, alternatives, is_recipe_file, read_text, too_large_message};
use super::spot::{inline_script, node_error, node_spot, sub_spot};
use super::tree::{Kind, Node};
use super::yaml::{check_events, parse_tree, parse_typed, sanitize};
use super::{
    LoadOptions, LoadedRecipe, MAX_FILES, MAX_INCLUDE_DEPTH, Origin, PlannedStep, RecipeError,
    RecipeWarning, ScriptSource,
};

#[derive(Debug, Clone)]
pub(super) struct Ref {
    pub(super) name: String,
    pub(super) env: bool,
    pub(super) spot: Spot,
}

pub(super) struct VarEntry {
    /// Checks made on the final value, with the place of `validate`.
    pub(super) validate: Option<(Check, Spot)>,
    pub(super) name: String,
    pub(super) template: String,
    pub(super) secret: bool,
    pub(super) required: bool,
    pub(super) description: Option<String>,
    pub(super) key: Spot,
    pub(super) value: Spot,
    pub(super) chain: Vec<Origin>,
}

pub(super) struct Planned {
    pub(super) step: PlannedStep,
    pub(super) refs: Vec<Ref>,
    pub(super) captures: Vec<String>,
    pub(super) send_data: Option<(String, Spot)>,
    pub(super) script: Option<InlineScript>,
    pub(super) chain: Vec<Origin>,
}

/// The steps of a file (its includes spliced in) and its teardown.
#[derive(Default)]
pub(super) struct Loaded {
    /// Steps in run order.
    pub(super) steps: Vec<Planned>,
    /// Teardown steps in run order: this file's `finally`, then its includes' (the last
    /// included first).
    pub(super) teardown: Vec<Planned>,
}

#[derive(Default)]
pub(super) struct Settings {
    pub(super) timeout: Option<Duration>,
    pub(super) abort: Option<Vec<Pattern>>,
    pub(super) deadline: Option<Duration>,
    pub(super) sync: Option<SyncSpec>,
    pub(super) finally_deadline: Option<Duration>,
    pub(super) script_memory: Option<u64>,
}

pub(super) struct Frame {
    pub(super) canonical: PathBuf,
    pub(super) display: PathBuf,
}

pub(super) struct Loader<'o> {
    pub(super) opts: &'o LoadOptions,
    pub(super) overrides: BTreeMap<String, String>,
    pub(super) defs: Vec<VarEntry>,
    pub(super) def_index: BTreeMap<String, usize>,
    pub(super) settings: Settings,
    pub(super) urc: Vec<UrcHandler>,
    pub(super) urc_refs: Vec<(Ref, Vec<Origin>)>,
    pub(super) scripts: Vec<ScriptSource>,
    pub(super) contributed: HashSet<PathBuf>,
    pub(super) stack: Vec<Frame>,
    /// Include directives leading to the current file, outermost first.
    pub(super) chain: Vec<Origin>,
    pub(super) files_read: usize,
    pub(super) sources: Vec<Arc<SourceFile>>,
    pub(super) warnings: Vec<RecipeWarning>,
    pub(super) top: Option<(Recipe, Arc<SourceFile>, Option<Spot>)>,
    /// Var defaults already expanded (name → value, secret).
    pub(super) resolved: RefCell<BTreeMap<String, (String, bool)>>,
}

impl<'o> Loader<'o> {
    pub(super) fn new(opts: &'o LoadOptions) -> Self {
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
            resolved: RefCell::new(BTreeMap::new()),
        }
    }

    pub(super) fn chain_innermost_first(&self) -> Vec<Origin> {
        self.chain.iter().rev().cloned().collect()
    }

    pub(super) fn run(
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
                    vars::Piece::Link(l) => out.push_str(&l.placeholder().replace("{{", "{{{{")),
                }
            }
            *value = out;
        }
        let loaded = self.load_file(path.clone(), canonical, text)?;
        self.finish(path, loaded)
    }

    /// Parse one file and everything it includes; returns its steps and teardown.
    pub(super) fn load_file(
        &mut self,
        display: PathBuf,
        canonical: PathBuf,
        text: String,
    ) -> Result<Loaded, RecipeError> {
        self.files_read += 1;
        let text = match text.strip_prefix('\u{feff}') {
            Some(t) => t.to_owned(),
            None => text,
        };
        let file = SourceFile::new(display.clone(), text);
        // Never show lines of a file that is not a recipe (`sim7k check /etc/shadow`).
        let file = if is_recipe_file(&display) {
            file
        } else {
            SourceFile::hidden(&file, "it is not a `.yaml` recipe file")
        };
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

    pub(super) fn load_parsed(
        &mut self,
        file: &Arc<SourceFile>,
        canonical: &Path,
    ) -> Result<Loaded, RecipeError> {
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
        check_events(file)?;
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
        let mut loaded = Loaded::default();
        let mut inner_teardowns: Vec<Vec<Planned>> = Vec::new();

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
            let inner = self.include(file, &dir, inc, node)?;
            loaded.steps.extend(inner.steps);
            inner_teardowns.push(inner.teardown);
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
                let inner = self.include(file, &dir, inc, inc_node)?;
                loaded.steps.extend(inner.steps);
                inner_teardowns.push(inner.teardown);
                continue;
            }
            loaded.steps.push(planned(
                file,
                &step.value,
                &step.value.script,
                node,
                facts,
                &chain,
            ));
        }

        // Teardown, URC handlers and scripts: each file contributes them once.
        if self.contributed.insert(canonical.to_path_buf()) {
            let finally_node = tree.get("finally");
            for (i, step) in recipe.finally.iter().enumerate() {
                let Some(node) = finally_node.and_then(|n| n.item(i)) else {
                    continue;
                };
                let facts = self.check_step(file, &step.value, node)?;
                if let Some(inc) = &step.value.include {
                    let inc_node = node.get("include").unwrap_or(node);
                    let inner = self.include(file, &dir, inc, inc_node)?;
                    loaded.teardown.extend(inner.steps);
                    loaded.teardown.extend(inner.teardown);
                    continue;
                }
                loaded.teardown.push(planned(
                    file,
                    &step.value,
                    &step.value.script,
                    node,
                    facts,
                    &chain,
                ));
            }
            self.record_urc(file, &recipe, &tree, &chain)?;
            self.record_scripts(file, &dir, &recipe, &tree)?;
        }
        // What was set up last is torn down first.
        for t in inner_teardowns.into_iter().rev() {
            loaded.teardown.extend(t);
        }

        if is_top {
            let steps_spot = tree.get("steps").map(|n| node_spot(file, n));
            self.top = Some((recipe, Arc::clone(file), steps_spot));
        }
        Ok(loaded)
    }

    /// Resolve and load one include directive written at `node` of `file`.
    pub(super) fn include(
        &mut self,
        file: &Arc<SourceFile>,
        dir: &Path,
        raw: &str,
        node: &Node,
    ) -> Result<Loaded, RecipeError> {
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
        if !is_recipe_file(&path) {
            // Never read (and so never show) a file that is not a recipe: an include of
            // `/proc/self/environ` would print the environment in the error snippet.
            return Err(node_error(
                file,
                node,
                format!(
                    "`{}` is not a recipe file: includes and profiles are `.yaml` or `.yml` files",
                    sanitize(&path.display().to_string())
                ),
            )
            .with_label("included here"));
        }
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
                let err = node_error(
                    file,
                    node,
                    format!("cannot read include `{}`: {e}", path.display()),
                )
                .with_label("included here");
                let missing = e.kind() == std::io::ErrorKind::NotFound;
                return Err(
                    match alternatives(raw, &path, &expanded).filter(|_| missing) {
                        Some((message, help)) => {
                            let mut err =
                                node_error(file, node, message).with_label("included here");
                            for h in help {
                                err = err.with_help(h);
                            }
                            err
                        }
                        None => err.with_help(
                            "include paths are relative to the including file's directory",
                        ),
                    },
                );
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
            Err(ReadError::NotUtf8 { offset, .. }) => {
                // Not text: say so without showing its bytes.
                return Err(node_error(
                    file,
                    node,
                    format!(
                        "cannot include `{}`: it is not UTF-8 text (invalid byte at offset {offset})",
                        path.display()
                    ),
                )
                .with_label("included here")
                .with_help("save the file as UTF-8"));
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

    pub(super) fn expand_include_path(
        &self,
        raw: &str,
        spot: &Spot,
    ) -> Result<String, RecipeError> {
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
                Piece::Link(l) => {
                    return Err(RecipeError::new(
                        format!(
                            "`{}` changes while the recipe runs: it cannot choose an include",
                            l.placeholder()
                        ),
                        here(&ph),
                    ));
                }
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
    pub(super) fn resolve_var(
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
        if let Some(hit) = self.resolved.borrow().get(name) {
            return Ok(Some(hit.clone()));
        }
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
            let too_long = |len: usize| {
                RecipeError::new(
                    format!(
                        "the default of var `{name}` would be {len} bytes long after expanding `{{{{…}}}}`, over the limit of {MAX_EXPANDED} bytes (4 MiB)"
                    ),
                    def.value.clone(),
                )
                .with_label("expands to too much")
                .with_help("vars that repeat other vars grow fast: is this a runaway chain?")
                .with_chain(&def.chain)
            };
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Env(env) => match self.opts.env.get(env) {
                    Some(v) => out.push_str(&v),
                    None => return Err(unset_env_error(here(), env).with_chain(&def.chain)),
                },
                Piece::Link(l) => {
                    return Err(RecipeError::new(
                        format!(
                            "`{}` changes while the recipe runs: use it in steps (`if:`, `send:` …), not in a var default",
                            l.placeholder()
                        ),
                        here(),
                    )
                    .with_chain(&def.chain));
                }
                Piece::Var(other) => match self.resolve_var(other, visiting)? {
                    Some((v, s)) => {
                        if out.len().saturating_add(v.len()) > MAX_EXPANDED {
                            return Err(too_long(out.len().saturating_add(v.len())));
                        }
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
        self.resolved
            .borrow_mut()
            .insert(name.to_owned(), (out.clone(), secret));
        Ok(Some((out, secret)))
    }

    pub(super) fn check_step(
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
}

/// A checked step ready for the program, with where its inline script starts.
fn planned(
    file: &Arc<SourceFile>,
    step: &Step,
    script: &Option<Spanned<String>>,
    node: &Node,
    facts: StepFacts,
    chain: &[Origin],
) -> Planned {
    Planned {
        step: PlannedStep {
            step: step.clone(),
            origin: node_spot(file, node).origin(),
        },
        refs: facts.refs,
        captures: facts.captures,
        send_data: facts.send_data,
        script: script.as_ref().map(|s| inline_script(file, s)),
        chain: chain.to_vec(),
    }
}
