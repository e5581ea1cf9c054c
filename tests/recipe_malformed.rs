//! Every file in `tests/malformed/` (not its `parts/` helpers) is a recipe that must
//! fail to load with a located error. Each starts with two comment lines:
//!
//! ```yaml
//! # expect: <a substring of the error message>
//! # at: <line>[:<col>]            (or <file relative to tests/malformed>:<line>[:<col>])
//! ```
//!
//! The loader must return an error (never panic), the message must contain the
//! expected text, the position must match, and both renderings must work.
//! Set `SIM7K_MALFORMED_DUMP=1` to print every error.

use std::path::{Path, PathBuf};

use sim7k::recipe::load::{LoadOptions, load};
use sim7k::recipe::{Env, RecipeError};

struct Case {
    path: PathBuf,
    expect: String,
    at_file: PathBuf,
    at_line: u32,
    at_col: Option<u32>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

fn header(path: &Path) -> Case {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    let expect = lines
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{}: first line must be `# expect: …`", path.display()))
        .trim()
        .to_owned();
    let at = lines
        .next()
        .and_then(|l| l.strip_prefix("# at: "))
        .unwrap_or_else(|| panic!("{}: second line must be `# at: …`", path.display()))
        .trim()
        .to_owned();
    let parts: Vec<&str> = at.split(':').collect();
    let (at_file, nums) = match parts.as_slice() {
        [line] => (path.to_path_buf(), vec![*line]),
        [a, b] if a.parse::<u32>().is_ok() => (path.to_path_buf(), vec![*a, *b]),
        [file, rest @ ..] => (dir().join(file), rest.to_vec()),
        [] => unreachable!(),
    };
    let at_line = nums[0].parse().expect("line number");
    let at_col = nums.get(1).map(|c| c.parse().expect("column number"));
    Case {
        path: path.to_path_buf(),
        expect,
        at_file,
        at_line,
        at_col,
    }
}

fn cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| header(p)).collect()
}

fn opts() -> LoadOptions {
    LoadOptions {
        overrides: Vec::new(),
        env: Env::from_pairs([("HOME", "/root")]),
    }
}

/// Paths in errors are the include path joined onto the including file's directory;
/// compare them after resolving `..`.
fn same_file(a: &Path, b: &Path) -> bool {
    let ca = std::fs::canonicalize(a).unwrap_or_else(|_| a.to_path_buf());
    let cb = std::fs::canonicalize(b).unwrap_or_else(|_| b.to_path_buf());
    ca == cb
}

fn check(case: &Case) -> Result<(), String> {
    let path = case.path.clone();
    let result = std::panic::catch_unwind(move || load(&path, &opts()));
    let err: RecipeError = match result {
        Err(_) => return Err("the loader panicked".into()),
        Ok(Ok(_)) => return Err("loaded without error".into()),
        Ok(Err(e)) => e,
    };
    let plain = err.to_string();
    if std::env::var_os("SIM7K_MALFORMED_DUMP").is_some() {
        eprintln!(
            "=== {}\n{plain}\n{}",
            case.path.display(),
            err.render(false)
        );
    }
    if !err.message().contains(&case.expect) {
        return Err(format!(
            "message does not contain {:?}:\n{plain}",
            case.expect
        ));
    }
    let Some(origin) = err.origin() else {
        return Err(format!("error has no position:\n{plain}"));
    };
    if !same_file(&origin.file, &case.at_file)
        || origin.line != case.at_line
        || case.at_col.is_some_and(|c| c != origin.column)
    {
        return Err(format!(
            "error at {origin}, expected {}:{}{}:\n{plain}",
            case.at_file.display(),
            case.at_line,
            case.at_col.map(|c| format!(":{c}")).unwrap_or_default()
        ));
    }
    let prefix = format!(
        "{}:{}:{}: ",
        origin.file.display(),
        origin.line,
        origin.column
    );
    if !plain.starts_with(&prefix) {
        return Err(format!(
            "plain form does not start with {prefix:?}:\n{plain}"
        ));
    }
    // A file that is not text (or not a recipe) gets no snippet: its lines are never
    // shown, only where the problem is (issue 11.8).
    let hidden = plain.contains("the line is not shown");
    if !hidden && !plain.contains(&format!("{} | ", origin.line)) {
        return Err(format!("plain form has no snippet line:\n{plain}"));
    }
    let rendered = err.render(false);
    let header = if hidden {
        prefix.trim_end().to_owned()
    } else {
        format!(
            "╭─[{}:{}:{}]",
            origin.file.display(),
            origin.line,
            origin.column
        )
    };
    // The graphical form wraps long messages: look for their first words.
    let start: String = err
        .message()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    if !rendered.contains(&header) || !rendered.contains(&start) {
        return Err(format!(
            "graphical form lacks {header:?} or the message:\n{rendered}"
        ));
    }
    let colored = err.render(true);
    if !colored.contains('\u{1b}') {
        return Err(format!("colour rendering has no ANSI escapes:\n{colored}"));
    }
    Ok(())
}

#[test]
fn malformed_recipes_fail_with_located_errors() {
    let cases = cases();
    assert!(cases.len() >= 25, "only {} malformed recipes", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check(c)
                .err()
                .map(|e| format!("{}: {e}", c.path.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} malformed recipes misbehaved:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_harness_catches_a_wrong_expectation() {
    // A guard against a harness that passes everything: a valid recipe fails the check,
    // and so does a wrong position.
    let valid = dir().join("parts/ok_steps.yaml");
    let case = Case {
        path: valid.clone(),
        expect: "anything".into(),
        at_file: valid,
        at_line: 1,
        at_col: None,
    };
    assert_eq!(check(&case), Err("loaded without error".into()));
    let mut case = header(&dir().join("two_actions.yaml"));
    case.at_line += 1;
    assert!(check(&case).unwrap_err().contains("expected"));
}

mod fuzz {
    use proptest::prelude::*;
    use sim7k::recipe::load::load_str;

    const SEED: &str = r#"name: seed
vars:
  apn: internet
  pw: { value: "x{{apn}}", secret: true }
anchors:
  d: &d { retries: 2, timeout: 3s }
urc: [{ match: "+CPIN", action: log }]
steps:
  - <<: *d
    send: AT+CSTT="{{apn}}"
    expect: [OK, '/^\+CSQ: (\d+)/']
    capture: '(?P<rssi>\d+)'
    validate: { rssi: { min: 1 } }
  - send: AT+CGATT?
    until: "+CGATT: 1"
    interval: 1s
  - say: "{{rssi}} {{{{ }}"
"#;

    fn load_never_panics(text: &str) {
        let text = text.to_owned();
        let outcome = std::panic::catch_unwind(move || {
            match load_str("fuzz/seed.yaml", &text, &super::opts()) {
                Ok(r) => {
                    for w in &r.warnings {
                        let _ = (w.to_string(), w.render(false));
                    }
                }
                Err(e) => {
                    let _ = (e.to_string(), e.render(false), e.render(true));
                }
            }
        });
        assert!(outcome.is_ok(), "the loader panicked");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Random byte edits of a valid recipe: an error or a recipe, never a panic.
        #[test]
        fn mutated_recipes_never_panic(edits in prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..6)) {
            let mut bytes = SEED.as_bytes().to_vec();
            for (pos, byte, op) in edits {
                let i = usize::from(pos) % (bytes.len() + 1);
                match op {
                    0 => bytes.insert(i, byte),
                    1 if i < bytes.len() => { bytes.remove(i); }
                    _ if i < bytes.len() => bytes[i] = byte,
                    _ => {}
                }
            }
            load_never_panics(&String::from_utf8_lossy(&bytes));
        }

        /// Random text from YAML-ish pieces.
        #[test]
        fn yamlish_noise_never_panics(pieces in prop::collection::vec(prop::sample::select(vec![
            "steps:", "\n", "  ", "- ", "send: ", "AT", "{{", "}}", "env.", "x", ": ", "[", "]", "{", "}",
            "&a ", "*a", "<<: ", "'", "\"", "/", "\\", "#", "\t", "until: ", "capture: ", "(?P<n>", ")",
            "vars:", "include: ", "é", "\u{feff}", "---", "validate:", "0", "5s", "wait: ",
        ]), 0..60)) {
            load_never_panics(&pieces.concat());
        }
    }
}
