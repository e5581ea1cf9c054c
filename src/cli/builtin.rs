//! `sim7k recipes`: the shipped recipes, scripts and schema, embedded in the binary at build
//! time (see `build.rs`), so they are there after `cargo install`, which copies only the
//! binary. `sim7k recipes` lists them; `--extract DIR` writes them out with their layout
//! (`DIR/recipes/…`, `DIR/scripts/…`, `DIR/recipe.schema.json`), so includes, scripts and
//! the editor schema resolve as in the source tree.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::exit::Exit;

/// Every embedded file: its path relative to the repository root, and its text.
pub(super) const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_recipes.rs"));

/// Arguments of `sim7k recipes`.
#[derive(Debug, Args)]
pub(super) struct RecipesArgs {
    /// Write the built-in recipes, scripts and schema under DIR (DIR/recipes/…,
    /// DIR/scripts/…), to run or edit them. Existing files are left alone unless --force.
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// With --extract: overwrite files that exist.
    #[arg(long, requires = "extract")]
    pub force: bool,
}

/// A recipe's name and the first line of its description, read loosely.
#[derive(Debug, Default, serde::Deserialize)]
struct Head {
    name: Option<String>,
    description: Option<String>,
}

/// The runnable recipes: `recipes/*.yaml` (files under `recipes/carriers/` are included by
/// them, not run alone).
pub(super) fn recipes() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES.iter().copied().filter(|(p, _)| {
        p.strip_prefix("recipes/")
            .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".yaml"))
    })
}

/// Run `sim7k recipes`.
pub(super) fn run(args: &RecipesArgs) -> Exit {
    match &args.extract {
        Some(dir) => extract(dir, args.force),
        None => list(),
    }
}

fn list() -> Exit {
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    for (path, body) in recipes() {
        let head: Head = serde_saphyr::from_str(body).unwrap_or_default();
        let file = path.trim_start_matches("recipes/");
        let about = head
            .name
            .as_deref()
            .or_else(|| head.description.as_deref().and_then(|d| d.lines().next()))
            .unwrap_or("");
        text.push_str(&format!("{file:<26} {about}\n"));
    }
    text.push_str(
        "\nWrite them out to run or edit: sim7k recipes --extract DIR\n\
         then e.g.: sim7k run DIR/recipes/mqtt-publish.yaml --emulate\n",
    );
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Exit::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success,
        Err(e) => {
            eprintln!("error: cannot write the list: {e}");
            Exit::Io
        }
    }
}

fn extract(dir: &Path, force: bool) -> Exit {
    let mut written = 0usize;
    let mut kept = Vec::new();
    for (rel, body) in FILES {
        let target = rel.split('/').fold(dir.to_path_buf(), |p, c| p.join(c));
        if let Some(parent) = target.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            eprintln!("error: cannot create {}: {e}", parent.display());
            return Exit::Io;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        match options
            .open(&target)
            .and_then(|mut f| f.write_all(body.as_bytes()))
        {
            Ok(()) => written += 1,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => kept.push(target),
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", target.display());
                return Exit::Io;
            }
        }
    }
    eprintln!("wrote {written} files under {}", dir.display());
    if !kept.is_empty() {
        eprintln!(
            "left {} existing file{} alone (--force overwrites), e.g. {}",
            kept.len(),
            if kept.len() == 1 { "" } else { "s" },
            kept[0].display()
        );
    }
    Exit::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lead_recipe_its_includes_and_scripts_are_embedded() {
        let paths: Vec<&str> = FILES.iter().map(|(p, _)| *p).collect();
        for want in [
            "recipes/mqtt-publish.yaml",
            "recipes/network-attach.yaml",
            "recipes/carriers/1nce.yaml",
            "scripts/mqtt.rhai",
            "recipe.schema.json",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
        assert!(recipes().all(|(p, _)| !p.contains("carriers")));
    }
}
