//! The checks run on every output path before anything runs.

use std::fs::{FileType, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::{OutputError, OutputKind, Shape};

/// Most symlinks followed by hand (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// One output of a run: what it is for and its path as given.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// What the path is for.
    pub kind: OutputKind,
    /// The path as given on the command line.
    pub path: &'a Path,
}

impl<'a> Output<'a> {
    /// An output of `kind` at `path`.
    pub fn new(kind: OutputKind, path: &'a Path) -> Output<'a> {
        Output { kind, path }
    }
}

/// Check every output path of a run against what it may be and against each other and the
/// run's inputs (`(what, path)`: `("the recipe", …)`, `("the ports file", …)`, `("the
/// port", …)`). Returns the first problem found; nothing has been written then.
///
/// * A symlink counts as its target (writes go through it).
/// * A directory is refused except for `--transcript-dir` and `--emulator-log DIR`, which
///   must be one (or not exist yet).
/// * A block device or a socket is always refused.
/// * A character device or a FIFO is accepted for the streamed outputs (`--transcript
///   /dev/stderr`, `--transcript >(grep …)`), refused for `--report` (appended and fsynced,
///   read back by `--resume`) and for `--junit` / `--csv` (replaced when the run ends).
/// * Two outputs may not be the same file (a character device may be shared).
/// * No output may be one of the inputs.
pub fn check_outputs(outputs: &[Output<'_>], inputs: &[(&str, &Path)]) -> Result<(), OutputError> {
    let mut seen: Vec<(Output<'_>, Identity)> = Vec::new();
    for out in outputs {
        let err = |problem: String| OutputError {
            flag: out.kind.flag(),
            path: out.path.display().to_string(),
            problem,
        };
        if out.path.as_os_str().is_empty() {
            return Err(err("an empty path; give a file name".into()));
        }
        let meta = match std::fs::metadata(out.path) {
            Ok(m) => Some(m),
            // Not there (or a parent is no directory: said by the ancestor check).
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                None
            }
            Err(e) => return Err(err(format!("cannot look at it ({e})"))),
        };
        match &meta {
            Some(m) => check_type(out.kind, m.file_type()).map_err(err)?,
            None => check_ancestors(out.path).map_err(err)?,
        }
        let id = identity(out.path, meta.as_ref());
        for (other, other_id) in &seen {
            if id.same_as(other_id) && !id.char_device {
                return Err(err(format!(
                    "is the same file as {} {}; each output needs its own file",
                    other.kind.flag(),
                    other.path.display()
                )));
            }
        }
        for (what, input) in inputs {
            let input_meta = std::fs::metadata(input).ok();
            if input_meta.is_none() {
                continue;
            }
            let input_id = identity(input, input_meta.as_ref());
            if id.same_as(&input_id) {
                let shown = if input.as_os_str() == out.path.as_os_str() {
                    String::new()
                } else {
                    format!(" ({})", input.display())
                };
                return Err(err(format!(
                    "is {what}{shown}; sim7k would write the {} into it: give another path",
                    out.kind.what()
                )));
            }
        }
        seen.push((*out, id));
    }
    Ok(())
}

/// What `kind` may be, given the type of the existing file (symlinks followed).
fn check_type(kind: OutputKind, t: FileType) -> Result<(), String> {
    let shape = kind.shape();
    let described = describe(t);
    if t.is_dir() {
        return match shape {
            Shape::Dir => Ok(()),
            _ => Err(format!(
                "is a directory; give a file name (e.g. {}/{})",
                "DIR",
                example_name(kind)
            )),
        };
    }
    if shape == Shape::Dir {
        return Err(format!(
            "{described}, not a directory; {} names a directory sim7k writes one file per device in",
            kind.flag()
        ));
    }
    if t.is_file() {
        return Ok(());
    }
    if t.is_block_device() || t.is_socket() {
        return Err(format!(
            "{described}; sim7k writes its {} only to a regular file",
            kind.what()
        ));
    }
    match shape {
        Shape::Stream => Ok(()),
        Shape::Append => Err(format!(
            "{described}; the report is appended, fsynced and read back by --resume: give a regular file"
        )),
        Shape::Replace | Shape::Dir => Err(format!(
            "{described}; the {} is written to a temporary file and renamed over this path when the run ends: give a regular file",
            kind.what()
        )),
    }
}

/// The existing ancestor of a path that does not exist must be a directory.
fn check_ancestors(path: &Path) -> Result<(), String> {
    let mut p = path;
    while let Some(parent) = p.parent() {
        if parent.as_os_str().is_empty() {
            return Ok(());
        }
        match std::fs::metadata(parent) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(m) => {
                return Err(format!(
                    "{} {}, not a directory",
                    parent.display(),
                    describe(m.file_type()).trim_start_matches("is ")
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => p = parent,
            Err(e) => return Err(format!("cannot look at {} ({e})", parent.display())),
        }
    }
    Ok(())
}

/// "is a regular file", "is a FIFO (named pipe)", …
pub(crate) fn describe(t: FileType) -> String {
    let s = if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device (a disk or a partition)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    };
    format!("is {s}")
}

fn example_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Report => "line.jsonl",
        OutputKind::Junit => "line.xml",
        OutputKind::Csv => "line.csv",
        _ => "run.log",
    }
}

/// What identifies a file: its device and inode when it exists, else the absolute path it
/// will be created at (symlinks resolved).
#[derive(Debug)]
struct Identity {
    inode: Option<(u64, u64)>,
    path: PathBuf,
    char_device: bool,
}

impl Identity {
    fn same_as(&self, other: &Identity) -> bool {
        match (self.inode, other.inode) {
            (Some(a), Some(b)) => a == b,
            _ => self.path == other.path,
        }
    }
}

fn identity(path: &Path, meta: Option<&Metadata>) -> Identity {
    Identity {
        inode: meta.map(|m| (m.dev(), m.ino())),
        path: resolve(path),
        char_device: meta.is_some_and(|m| m.file_type().is_char_device()),
    }
}

/// Where writes to `path` land: its canonical path when it exists; for a path that does not
/// exist yet, a dangling symlink's final target, under the canonical form of its deepest
/// existing ancestor.
pub(crate) fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::read_link(&p) {
            Ok(target) => {
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Err(_) => break,
        }
    }
    // The deepest ancestor that exists, canonical, then the rest as written.
    let mut rest = Vec::new();
    let mut base = p.as_path();
    loop {
        if let Ok(c) = std::fs::canonicalize(base) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => break,
        }
    }
    let absolute = if p.is_absolute() {
        p.clone()
    } else {
        std::env::current_dir().unwrap_or_default().join(&p)
    };
    normalize(&absolute)
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sim7k-outcheck-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn check(outputs: &[(OutputKind, &Path)], inputs: &[(&str, &Path)]) -> Result<(), String> {
        let outs: Vec<Output<'_>> = outputs.iter().map(|(k, p)| Output::new(*k, p)).collect();
        check_outputs(&outs, inputs).map_err(|e| e.to_string())
    }

    #[test]
    fn new_and_regular_files_pass() {
        let d = dir("ok");
        let existing = d.join("old.csv");
        std::fs::write(&existing, "x").unwrap();
        check(
            &[
                (OutputKind::Csv, &existing),
                (OutputKind::Junit, &d.join("new/sub/line.xml")),
                (OutputKind::TranscriptDir, &d.join("logs")),
                (OutputKind::Transcript, Path::new("/dev/null")),
                (OutputKind::EmulatorLog, Path::new("/dev/null")),
            ],
            &[],
        )
        .unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_where_they_cannot_work() {
        let d = dir("kinds");
        let fifo = d.join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let e = check(&[(OutputKind::Csv, Path::new("/dev/full"))], &[]).unwrap_err();
        assert!(e.contains("--csv /dev/full: is a character device"), "{e}");
        let e = check(&[(OutputKind::Junit, &fifo)], &[]).unwrap_err();
        assert!(e.contains("is a FIFO"), "{e}");
        let e = check(&[(OutputKind::Report, &fifo)], &[]).unwrap_err();
        assert!(e.contains("--resume"), "{e}");
        let e = check(&[(OutputKind::Report, &d)], &[]).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        let file = d.join("f");
        std::fs::write(&file, "").unwrap();
        let e = check(&[(OutputKind::TranscriptDir, &file)], &[]).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        let e = check(&[(OutputKind::Csv, &file.join("x.csv"))], &[]).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        // A symlink to a device counts as the device.
        let link = d.join("full-link");
        symlink("/dev/full", &link).unwrap();
        let e = check(&[(OutputKind::Csv, &link)], &[]).unwrap_err();
        assert!(e.contains("character device"), "{e}");
        // Streams may be a FIFO or a device.
        check(&[(OutputKind::Transcript, &link)], &[]).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_same_file_twice_is_refused_also_through_links() {
        let d = dir("same");
        let a = d.join("x");
        let e = check(&[(OutputKind::Report, &a), (OutputKind::Csv, &a)], &[]).unwrap_err();
        assert!(
            e.contains("--csv") && e.contains("same file as --report"),
            "{e}"
        );
        // A symlink (dangling: the file does not exist yet) to the other output.
        let link = d.join("link");
        symlink("x", &link).unwrap();
        let e = check(&[(OutputKind::Junit, &a), (OutputKind::Csv, &link)], &[]).unwrap_err();
        assert!(e.contains("same file"), "{e}");
        // A hard link to an existing file.
        std::fs::write(&a, "").unwrap();
        let hard = d.join("hard");
        std::fs::hard_link(&a, &hard).unwrap();
        let e = check(&[(OutputKind::Junit, &a), (OutputKind::Csv, &hard)], &[]).unwrap_err();
        assert!(e.contains("same file"), "{e}");
        // `./x` and `sub/../x`.
        std::fs::create_dir(d.join("sub")).unwrap();
        let e = check(
            &[
                (OutputKind::Junit, &d.join("./y")),
                (OutputKind::Csv, &d.join("sub/../y")),
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.contains("same file"), "{e}");
        // A shared character device is fine.
        check(
            &[
                (OutputKind::Transcript, Path::new("/dev/null")),
                (OutputKind::EmulatorLog, Path::new("/dev/null")),
            ],
            &[],
        )
        .unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_input_is_never_an_output() {
        let d = dir("inputs");
        let recipe = d.join("r.yaml");
        std::fs::write(&recipe, "name: r\n").unwrap();
        let link = d.join("r-link.jsonl");
        symlink(&recipe, &link).unwrap();
        let e = check(&[(OutputKind::Report, &link)], &[("the recipe", &recipe)]).unwrap_err();
        assert!(e.contains("is the recipe"), "{e}");
        let e = check(
            &[(OutputKind::Transcript, &recipe)],
            &[("the recipe", &recipe)],
        )
        .unwrap_err();
        assert!(
            e.contains("--transcript") && e.contains("the recipe"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
