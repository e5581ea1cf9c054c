//! Recording what each file declares: vars, recipe-level settings, URC handlers and
//! script files, in precedence order (the first declaration wins).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::super::diag::SourceFile;
use super::super::model::{Recipe, SyncSpec, VarDef};
use super::super::program::{Check, MAX_SCRIPT_MEMORY};
use super::super::vars::{self, is_var_name};
use super::check::{check_pattern, template_error, template_refs};
use super::finish::as_written;
use super::loader::{Loader, VarEntry};
use super::read::{ReadError, read_text, too_large_message};
use super::spot::{node_error, node_spot, spot_at};
use super::tree::{Kind, Node};
use super::yaml::sanitize;
use super::{Origin, RecipeError, ScriptSource};

impl Loader<'_> {
    pub(super) fn record_vars(
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
            let validate = match def {
                VarDef::Full(spec) => match &spec.validate {
                    Some(v) => {
                        let vnode = value_node.get("validate").unwrap_or(value_node);
                        let check = Check::from_validator(v).map_err(|e| {
                            node_error(
                                file,
                                vnode.get("regex").unwrap_or(vnode),
                                format!("invalid regex in `validate.regex` of var `{name}`: {e}"),
                            )
                        })?;
                        if let (Some(min), Some(max)) = (v.min, v.max)
                            && min > max
                        {
                            return Err(node_error(
                                file,
                                vnode,
                                format!(
                                    "`validate` of var `{name}`: `min` ({min}) is larger than `max` ({max})"
                                ),
                            ));
                        }
                        Some((check, node_spot(file, vnode)))
                    }
                    None => None,
                },
                VarDef::Plain(_) => None,
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
                        if d.validate.is_none() {
                            d.validate = validate;
                        }
                    }
                }
                None => {
                    self.def_index.insert(name.to_owned(), self.defs.len());
                    self.resolved.borrow_mut().clear();
                    self.defs.push(VarEntry {
                        validate,
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

    pub(super) fn record_settings(
        &mut self,
        file: &Arc<SourceFile>,
        recipe: &Recipe,
        tree: &Node,
    ) -> Result<(), RecipeError> {
        for (key, value) in [
            ("timeout", recipe.timeout),
            ("deadline", recipe.deadline),
            ("finally_deadline", recipe.finally_deadline),
        ] {
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
        let script_memory = match recipe.limits.as_ref().and_then(|l| l.script_memory) {
            Some(size) => {
                let node = tree
                    .get("limits")
                    .and_then(|n| n.get("script_memory"))
                    .unwrap_or(tree);
                if size.0 == 0 || size.0 > MAX_SCRIPT_MEMORY {
                    return Err(node_error(
                        file,
                        node,
                        format!(
                            "`limits.script_memory` must be between 1 byte and 1GiB, not {} bytes",
                            size.0
                        ),
                    ));
                }
                Some(size.0)
            }
            None => None,
        };
        let s = &mut self.settings;
        if s.script_memory.is_none() {
            s.script_memory = script_memory;
        }
        if s.finally_deadline.is_none() {
            s.finally_deadline = recipe.finally_deadline;
        }
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

    pub(super) fn record_urc(
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

    pub(super) fn record_scripts(
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
            if path.extension().is_none_or(|e| e != "rhai") {
                return Err(node_error(
                    file,
                    node,
                    format!(
                        "`{}` is not a script file: `scripts:` lists `.rhai` files",
                        sanitize(&path.display().to_string())
                    ),
                ));
            }
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
                Err(ReadError::NotUtf8 { offset, .. }) => {
                    return Err(node_error(
                        file,
                        node,
                        format!(
                            "cannot read script `{}`: it is not UTF-8 text (invalid byte at offset {offset})",
                            path.display()
                        ),
                    ));
                }
            };
            self.scripts.push(ScriptSource { path, text });
        }
        Ok(())
    }
}
