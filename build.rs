//! Embeds the shipped recipes, scripts and recipe schema into the binary, so that
//! `sim7k recipes` lists them and `sim7k recipes --extract DIR` writes them out after a
//! `cargo install` (which copies only the binary). Every file under `recipes/` and `scripts/`
//! is taken: a new recipe needs no list to be kept up to date.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x == "yaml" || x == "yml" || x == "rhai")
        {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = Vec::new();
    for d in ["recipes", "scripts"] {
        println!("cargo:rerun-if-changed={d}");
        walk(&root.join(d), &mut files);
    }
    println!("cargo:rerun-if-changed=recipe.schema.json");
    files.push(root.join("recipe.schema.json"));
    files.sort();
    let mut code = String::from("&[\n");
    for f in &files {
        let Ok(rel) = f.strip_prefix(&root) else {
            continue;
        };
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let _ = writeln!(
            code,
            "    ({:?}, include_str!({:?})),",
            rel.join("/"),
            f.display().to_string()
        );
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out.join("builtin_recipes.rs"), code) {
        panic!("cannot write builtin_recipes.rs: {e}");
    }
}
