//! The end of a load: vars expanded and `--set` applied, references checked, the
//! loaded recipe assembled.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::super::diag::Spot;
use super::super::model::{Pattern, Scalar, SyncSpec, UrcAction};
use super::super::program::{
    BuildContext, CompiledPattern, DEFAULT_FINALLY_DEADLINE, DEFAULT_SCRIPT_MEMORY, Limits,
    Program, SyncPlan, UrcHandler, build_step,
};
use super::super::template::Template;
use super::super::vars::{REDACTED, VarValue, Vars};
use super::check::unset_env_error;
use super::loader::{Loaded, Loader, Planned};
use super::yaml::closest;
use super::{
    DEFAULT_ABORT, DEFAULT_SYNC_INTERVAL, DEFAULT_SYNC_WITHIN, DEFAULT_TIMEOUT, LoadedRecipe,
    RecipeError, RecipeWarning, SyncSettings, VarInfo,
};

impl Loader<'_> {
    pub(super) fn finish(
        mut self,
        path: PathBuf,
        loaded: Loaded,
    ) -> Result<LoadedRecipe, RecipeError> {
        let Some((top, top_file, steps_spot)) = self.top.take() else {
            return Err(RecipeError::in_file(&path, "nothing was loaded"));
        };
        let Loaded {
            steps: planned,
            teardown,
        } = loaded;

        let (vars, var_info) = self.vars(&path)?;
        self.check_refs(&vars, &planned, &teardown)?;

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
        let timeout = self.settings.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let abort = self.settings.abort.clone().unwrap_or_else(|| {
            DEFAULT_ABORT
                .iter()
                .map(|p| Pattern((*p).to_owned()))
                .collect()
        });
        let program = self.program(&path, &planned, &teardown, timeout, &abort, sync)?;
        Ok(LoadedRecipe {
            name,
            description: top.description.clone(),
            timeout,
            abort,
            deadline: self.settings.deadline,
            sync,
            urc: self.urc,
            scripts: self.scripts,
            steps: planned.into_iter().map(|p| p.step).collect(),
            finally: teardown.into_iter().map(|p| p.step).collect(),
            program,
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

    /// The vars: defaults expanded and checked, `--set` applied. A `--set` of a name the
    /// recipe neither declares nor mentions is an error (a typo would otherwise run with
    /// the default, and the value would be carried along unredacted).
    fn vars(&self, path: &Path) -> Result<(Vars, Vec<VarInfo>), RecipeError> {
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
            if let Some((check, spot)) = &def.validate
                && let Some(mut msg) = check.verdict(&def.name, &value)
            {
                if secret && !value.is_empty() {
                    msg = msg.replace(&value, REDACTED);
                }
                let from = if self.overrides.contains_key(&def.name) {
                    format!("--set {}=…: ", def.name)
                } else {
                    format!("the default of var `{}`: ", def.name)
                };
                return Err(RecipeError::new(format!("{from}{msg}"), spot.clone())
                    .with_label("checked here")
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
            if !mentions(&all_text, name) {
                // Never print the value: it may be a secret given to a mistyped name.
                let mut e = RecipeError::in_file(
                    path,
                    format!(
                        "--set {name}=…: the recipe declares no var `{name}` and never uses it"
                    ),
                );
                if let Some(near) = closest(name, self.defs.iter().map(|d| d.name.as_str())) {
                    e = e.with_help(format!("did you mean `--set {near}=...`?"));
                }
                return Err(e.with_help(
                    "`--set` gives a value to a var the recipe declares under `vars:` (in it or its includes), or to a name its scripts read",
                ));
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
        }
        Ok((vars, var_info))
    }

    /// Every `{{env.X}}` must be set; `{{name}}`s that nothing defines are warnings.
    fn check_refs(
        &mut self,
        vars: &Vars,
        planned: &[Planned],
        teardown: &[Planned],
    ) -> Result<(), RecipeError> {
        let mut known: BTreeSet<String> = vars.iter().map(|(n, _, _)| n.to_owned()).collect();
        let mut warned: BTreeSet<String> = BTreeSet::new();
        let mut script_text = self
            .scripts
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for p in planned.iter().chain(teardown) {
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
            .chain(teardown)
            .flat_map(|p| p.captures.iter().cloned())
            .collect();
        for p in planned.iter().chain(teardown) {
            if let Some(s) = &p.script {
                script_text.push('\n');
                script_text.push_str(&s.text);
            }
        }
        // The teardown runs after the steps: their captures count as known there.
        for p in planned.iter().chain(teardown) {
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
        Ok(())
    }

    /// The typed program: main steps numbered from 0, then the teardown.
    fn program(
        &self,
        path: &Path,
        planned: &[Planned],
        teardown: &[Planned],
        timeout: Duration,
        abort: &[Pattern],
        sync: SyncSettings,
    ) -> Result<Program, RecipeError> {
        let compile = |p: &Pattern| {
            CompiledPattern::parse(p.as_str())
                .map_err(|e| RecipeError::in_file(path, format!("pattern `{}`: {e}", p.as_str())))
        };
        let ctx = BuildContext {
            timeout,
            abort: abort.iter().map(compile).collect::<Result<_, _>>()?,
            tls_clients: crate::recipe::tls::TlsClients::default(),
        };
        let mut steps = Vec::new();
        let mut finally = Vec::new();
        for (id, p) in planned.iter().chain(teardown).enumerate() {
            let step = build_step(
                &ctx,
                id,
                p.step.origin.clone(),
                &p.step.step,
                p.script.clone(),
            )
            .map_err(|msg| {
                RecipeError::in_file(&p.step.origin.file, format!("{}: {msg}", p.step.origin))
            })?;
            if id < planned.len() {
                steps.push(step);
            } else {
                finally.push(step);
            }
        }
        let urc = self
            .urc
            .iter()
            .map(|h| {
                Ok(UrcHandler {
                    pattern: compile(&h.pattern)?,
                    fail: h.action == UrcAction::Fail,
                    message: match &h.message {
                        Some(m) => Template::parse(m).map_err(|e| {
                            RecipeError::in_file(path, format!("urc message `{m}`: {e}"))
                        })?,
                        None => Template::literal(&format!("URC matched `{}`", h.pattern.as_str())),
                    },
                })
            })
            .collect::<Result<Vec<_>, RecipeError>>()?;
        Ok(Program {
            deadline: self.settings.deadline,
            sync: sync.enabled.then_some(SyncPlan {
                within: sync.within,
                interval: sync.interval,
            }),
            urc,
            steps,
            finally,
            finally_deadline: self
                .settings
                .finally_deadline
                .unwrap_or(DEFAULT_FINALLY_DEADLINE),
            limits: Limits {
                script_memory: self.settings.script_memory.unwrap_or(DEFAULT_SCRIPT_MEMORY),
            },
            tls_clients: ctx.tls_clients,
        })
    }

    /// All text that could mention a var name: every file read and every script.
    pub(super) fn mention_text(&self) -> String {
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
pub(super) fn mentions(text: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// A scalar as the user wrote it: numbers keep their spelling (`0000`, `+49…`,
/// `1.10`), booleans become `true`/`false`.
pub(super) fn as_written(s: &Scalar, spot: &Spot) -> String {
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
