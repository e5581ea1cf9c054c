//! Helpers for the fleet tests: `sim7k emulate` processes, running `sim7k`, reading records,
//! and independent readers for the CSV and JUnit files (not sim7k's own).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Hang guard for waits (not a timing assertion).
pub(crate) const GUARD: Duration = Duration::from_secs(120);

/// The repository root (recipes live there).
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The provisioning recipe.
pub(crate) fn provision_recipe() -> PathBuf {
    root().join("recipes/provision-sim7000.yaml")
}

/// A `sim7k emulate` process serving a pty behind `link`; killed on drop.
pub(crate) struct Emulator {
    child: Child,
    /// The link clients open.
    pub link: PathBuf,
}

impl Emulator {
    /// Start `sim7k emulate --link LINK --embedded-broker ARGS...` and wait until it serves.
    pub(crate) fn spawn(link: &Path, args: &[&str]) -> Emulator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sim7k"))
            .arg("emulate")
            .arg("--link")
            .arg(link)
            .arg("--embedded-broker")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sim7k emulate");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the emulator's ready line");
        assert_eq!(
            line.trim(),
            link.display().to_string(),
            "sim7k emulate did not come up"
        );
        Emulator {
            child,
            link: link.to_path_buf(),
        }
    }

    /// Kill the process at once (the modem "vanishes"), leaving its link behind.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.link);
    }
}

/// Run `sim7k ARGS...` to completion.
pub(crate) fn sim7k(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run sim7k")
}

/// Exit code, stdout and stderr of a finished run, for messages.
pub(crate) fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every line of a JSONL file, parsed (panics on a line that is not JSON).
pub(crate) fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {l}", path.display(), i + 1))
        })
        .collect()
}

/// Wait until `cond` holds (hang guard only).
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + GUARD;
    while !cond() {
        assert!(Instant::now() < end, "hang guard: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Luhn check of a digit string.
pub(crate) fn luhn_ok(n: &str) -> bool {
    let digits: Vec<u32> = n.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != n.len() || digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A minimal RFC 4180 reader: rows of fields, header first.
pub(crate) fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_quotes {
            if c == '"' {
                if chars.get(i + 1) == Some(&'"') {
                    field.push('"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' {
            in_quotes = true;
        } else if c == ',' {
            row.push(std::mem::take(&mut field));
        } else if c == '\r' && chars.get(i + 1) == Some(&'\n') {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
            i += 1;
        } else {
            field.push(c);
        }
        i += 1;
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "CSV does not end with CRLF"
    );
    rows
}

/// CSV rows as maps from the header.
pub(crate) fn csv_records(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let rows = csv_rows(text);
    let (header, body) = rows.split_first().expect("CSV header");
    body.iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "CSV row width");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

/// One JUnit testcase: name, and the tag and `type` of its failure/error if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Case {
    pub name: String,
    pub outcome: Option<(String, String)>,
    pub properties: Vec<(String, String)>,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The testcases of a JUnit file, and the suite's `tests`/`failures`/`errors` counts.
pub(crate) fn junit(xml: &str) -> (Vec<Case>, (usize, usize, usize)) {
    let attr = |tag: &str, name: &str| -> String {
        let re = regex::Regex::new(&format!(r#"\b{name}="([^"]*)""#)).unwrap();
        re.captures(tag)
            .map(|c| unescape(&c[1]))
            .unwrap_or_default()
    };
    let suite_re = regex::Regex::new(r"<testsuite [^>]*>").unwrap();
    let suite = suite_re.find(xml).expect("a <testsuite>").as_str();
    let counts = (
        attr(suite, "tests").parse().unwrap(),
        attr(suite, "failures").parse().unwrap(),
        attr(suite, "errors").parse().unwrap(),
    );
    let case_re = regex::Regex::new(r"(?s)<testcase ([^>]*)>(.*?)</testcase>").unwrap();
    let prop_re = regex::Regex::new(r#"<property name="([^"]*)" value="([^"]*)"/>"#).unwrap();
    let fail_re = regex::Regex::new(r"<(failure|error) ([^>]*)>").unwrap();
    let cases = case_re
        .captures_iter(xml)
        .map(|c| {
            let head = c.get(1).unwrap().as_str();
            let body = c.get(2).unwrap().as_str();
            Case {
                name: attr(head, "name"),
                outcome: fail_re
                    .captures(body)
                    .map(|f| (f[1].to_string(), attr(&f[2], "type"))),
                properties: prop_re
                    .captures_iter(body)
                    .map(|p| (unescape(&p[1]), unescape(&p[2])))
                    .collect(),
            }
        })
        .collect();
    (cases, counts)
}
