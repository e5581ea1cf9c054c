//! Command-line conventions (issue 14): completions and man page from the clap definitions,
//! colour rules (`--color`, `NO_COLOR`, `TERM=dumb`, terminal only), settings from the
//! environment, built-in recipes, the exit-code table, contradictory options. Each test runs
//! the built binary; the colour tests give it a real pseudo-terminal as stderr.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn sim7k() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sim7k"));
    for v in [
        "NO_COLOR",
        "TERM",
        "RUST_LOG",
        "SIM7K_PORT",
        "SIM7K_BAUD",
        "SIM7K_TRANSCRIPT_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "sim7k-cli-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A recipe with one step the emulator answers.
fn tiny_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.yaml");
    std::fs::write(&p, "name: tiny\nsteps:\n  - send: AT\n    expect: OK\n").unwrap();
    p
}

/// A recipe with an unknown key: a miette diagnostic.
fn bad_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("bad.yaml");
    std::fs::write(&p, "name: bad\nsteps:\n  - sned: AT\n").unwrap();
    p
}

/// Run with stderr on a fresh pseudo-terminal; returns (exit code, what the terminal got).
fn on_terminal(mut cmd: Command) -> (Option<i32>, String) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors; null name/termios/winsize are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last writer has closed the terminal.
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().unwrap();
    // Our copy of the slave went into `cmd`; drop it so the reader sees the end.
    drop(cmd);
    let status = child.wait().unwrap();
    let got = reader.join().unwrap();
    (status.code(), text(&got))
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn completions_are_generated_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = output(sim7k().args(["completions", shell]));
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o.stderr));
        let script = text(&o.stdout);
        assert!(script.contains("sim7k"), "{shell}: {script}");
        // Subcommands and their options come from the same definitions as --help.
        assert!(script.contains("emulate-count"), "{shell}");
    }
    let o = output(sim7k().args(["completions", "tcsh"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_page_is_roff_from_the_clap_definitions() {
    let o = output(sim7k().arg("man"));
    assert_eq!(o.status.code(), Some(0));
    let page = text(&o.stdout);
    assert!(page.contains(".TH sim7k 1"), "{page}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SUBCOMMANDS"));
    assert!(page.contains("completions"));
    let dir = scratch("man");
    let o = output(sim7k().args(["man", "--dir"]).arg(&dir));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let run = std::fs::read_to_string(dir.join("sim7k-run.1")).unwrap();
    assert!(run.contains("emulate\\-count"), "{run}");
}

#[test]
fn help_and_readme_show_the_one_exit_code_table() {
    let help = text(&output(sim7k().arg("--help")).stdout);
    let run_help = text(&output(sim7k().args(["run", "--help"])).stdout);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // clap may wrap long lines to the terminal's width.
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (help, run_help) = (flat(&help), flat(&run_help));
    for (exit, meaning) in sim7k::exit::TABLE {
        let line = flat(&format!("{} {meaning}", exit.code()));
        assert!(help.contains(&line), "--help lacks `{line}`:\n{help}");
        assert!(run_help.contains(&line), "run --help lacks `{line}`");
        let row = format!("| {} | {meaning} |", exit.code());
        assert!(readme.contains(&row), "README lacks `{row}`");
    }
}

#[test]
fn recipe_diagnostics_follow_no_color_term_dumb_and_color_option() {
    let dir = scratch("diag");
    let bad = bad_recipe(&dir);
    let mut plain = sim7k();
    plain.arg("check").arg(&bad);
    let (code, got) = on_terminal(plain);
    assert_eq!(code, Some(2));
    assert!(got.contains("sned"), "{got}");
    assert!(
        got.contains('\x1b'),
        "a terminal gets colour by default: {got:?}"
    );

    let mut no_color = sim7k();
    no_color.env("NO_COLOR", "1").arg("check").arg(&bad);
    let (code, got) = on_terminal(no_color);
    assert_eq!(code, Some(2));
    assert!(got.contains("sned"), "{got}");
    assert!(
        !got.contains('\x1b'),
        "NO_COLOR=1 coloured the diagnostic: {got:?}"
    );

    let mut dumb = sim7k();
    dumb.env("TERM", "dumb").arg("check").arg(&bad);
    let (_, got) = on_terminal(dumb);
    assert!(
        !got.contains('\x1b'),
        "TERM=dumb coloured the diagnostic: {got:?}"
    );

    let mut never = sim7k();
    never.args(["--color", "never", "check"]).arg(&bad);
    let (_, got) = on_terminal(never);
    assert!(!got.contains('\x1b'), "--color never coloured: {got:?}");

    // Into a pipe: plain, unless asked.
    let o = output(sim7k().arg("check").arg(&bad));
    assert!(!text(&o.stderr).contains('\x1b'));
    let o = output(sim7k().args(["check", "--color=always"]).arg(&bad));
    assert!(text(&o.stderr).contains('\x1b'));
}

#[test]
fn verdicts_are_coloured_on_a_terminal_only() {
    let dir = scratch("verdict");
    let recipe = tiny_recipe(&dir);
    let run = |extra: &[&str]| {
        let mut c = sim7k();
        c.arg("run")
            .arg(&recipe)
            .args(["--emulate", "--emulator-profile", "zero"])
            .args(extra);
        c
    };
    let o = output(&mut run(&[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("PASSED tiny") && !err.contains('\x1b'),
        "{err:?}"
    );

    let (code, got) = on_terminal(run(&[]));
    assert_eq!(code, Some(0));
    assert!(got.contains("\x1b[32mPASSED\x1b[0m tiny"), "{got:?}");

    let mut c = run(&[]);
    c.env("NO_COLOR", "1");
    let (_, got) = on_terminal(c);
    assert!(
        got.contains("PASSED tiny") && !got.contains("\x1b[32m"),
        "{got:?}"
    );

    let o = output(&mut run(&["--color=always"]));
    assert!(text(&o.stderr).contains("\x1b[32mok\x1b[0m"));
}

#[test]
fn contradictory_options_are_usage_errors() {
    let dir = scratch("usage");
    let recipe = tiny_recipe(&dir);
    let o = output(
        sim7k()
            .arg("run")
            .arg(&recipe)
            .args(["-q", "-v", "--emulate"]),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--quiet"), "{}", text(&o.stderr));
    let o = output(
        sim7k()
            .arg("run")
            .arg(&recipe)
            .args(["--emulate", "--port", "/dev/ttyUSB0"]),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--emulate"), "{}", text(&o.stderr));
    let o =
        output(
            sim7k()
                .arg("run")
                .arg(&recipe)
                .args(["--port", "/dev/ttyUSB0", "--fault", "drip"]),
        );
    assert_eq!(o.status.code(), Some(2));
    let o = output(sim7k().args(["recipes", "--force"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn settings_come_from_the_environment_and_yield_to_the_command_line() {
    let help = text(&output(sim7k().args(["run", "--help"])).stdout);
    for var in ["SIM7K_PORT", "SIM7K_BAUD", "SIM7K_TRANSCRIPT_DIR"] {
        assert!(help.contains(&format!("[env: {var}")), "--help lacks {var}");
    }
    let dir = scratch("env");
    let recipe = tiny_recipe(&dir);
    // SIM7K_BAUD is read: a bad value is a usage error naming it.
    let o = output(
        sim7k()
            .env("SIM7K_BAUD", "fast")
            .arg("run")
            .arg(&recipe)
            .args(["--emulate", "--emulator-profile", "zero"]),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    // SIM7K_PORT is read: the run tries that port.
    let missing = dir.join("no-such-port");
    let o = output(sim7k().env("SIM7K_PORT", &missing).arg("run").arg(&recipe));
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no-such-port"));
    // ... and yields to --emulate given on the command line.
    let o = output(
        sim7k()
            .env("SIM7K_PORT", &missing)
            .arg("run")
            .arg(&recipe)
            .args(["--emulate", "--emulator-profile", "zero"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn built_in_recipes_are_listed_and_extracted_with_their_scripts() {
    let o = output(sim7k().arg("recipes"));
    assert_eq!(o.status.code(), Some(0));
    let list = text(&o.stdout);
    assert!(list.contains("mqtt-publish.yaml"), "{list}");
    assert!(!list.contains("carriers/"), "{list}");

    let dir = scratch("extract");
    let o = output(sim7k().args(["recipes", "--extract"]).arg(&dir));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(dir.join("scripts/mqtt.rhai").is_file());
    assert!(dir.join("recipe.schema.json").is_file());
    // Includes and scripts resolve from where they were written.
    let o = output(
        sim7k()
            .arg("check")
            .arg(dir.join("recipes/mqtt-subscribe.yaml"))
            .arg(dir.join("recipes/provision-sim7000.yaml")),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // A second extraction keeps edited files.
    let edited = dir.join("recipes/modem-info.yaml");
    std::fs::write(&edited, "edited").unwrap();
    let o = output(sim7k().args(["recipes", "--extract"]).arg(&dir));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), "edited");
    assert!(text(&o.stderr).contains("--force"));
    let o = output(sim7k().args(["recipes", "--force", "--extract"]).arg(&dir));
    assert_eq!(o.status.code(), Some(0));
    assert_ne!(std::fs::read_to_string(&edited).unwrap(), "edited");
}

#[test]
fn fleet_tags_are_coloured_on_a_terminal_only() {
    let dir = scratch("fleet");
    let recipe = tiny_recipe(&dir);
    let fleet = || {
        let mut c = sim7k();
        c.arg("run").arg(&recipe).args([
            "--emulate",
            "--emulator-profile",
            "zero",
            "--emulate-count",
            "2",
        ]);
        c
    };
    // TERM unset: indicatif hides its bars, yet every verdict line is printed (it was lost).
    let (code, got) = on_terminal(fleet());
    assert_eq!(code, Some(0), "{got}");
    assert!(got.contains("\x1b[32mPASS\x1b[0m"), "{got:?}");
    // With bars.
    let mut c = fleet();
    c.env("TERM", "xterm");
    let (code, got) = on_terminal(c);
    assert_eq!(code, Some(0), "{got}");
    assert!(got.contains("\x1b[32mPASS\x1b[0m"), "{got:?}");

    let mut c = fleet();
    c.env("NO_COLOR", "1").env("TERM", "xterm");
    let (code, got) = on_terminal(c);
    assert_eq!(code, Some(0), "{got}");
    assert!(got.contains("PASS "), "{got:?}");
    // Bars still move the cursor; no colour codes.
    for colour in ["\x1b[32m", "\x1b[36m", "\x1b[34m", "\x1b[2m"] {
        assert!(!got.contains(colour), "NO_COLOR, yet {colour:?} in {got:?}");
    }

    let o = output(&mut fleet());
    assert!(!text(&o.stderr).contains('\x1b'), "{}", text(&o.stderr));
}
