//! Evidence survives and output paths are never clobbered (issue 11 points 1, 2, 3 and 10),
//! through the real binary, on the emulator behind a pseudo-terminal (`--emulate`) or a
//! scripted modem on a real pseudo-terminal.

mod support;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::TempDir;
use support::emulator::sim7k;
use support::peer::{Peer, rule};

/// A recipe that does one command, then waits long enough to be stopped from outside.
const LONG_RUN: &str = r#"
name: long run
steps:
  - name: identity
    send: AT+CGSN
  - name: long wait
    wait: 10m
"#;

fn write_recipe(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("recipe.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Poll until `ready` says so (a cap only against hanging forever, not a timing check).
fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let cap = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < cap, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, signo: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, signo) }, 0);
}

/// Wait for the child (killing it if it hangs) and collect its output.
fn finish(mut child: Child) -> Output {
    let cap = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > cap {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The whole of stdout is one JSON document.
fn only_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"))
}

/// Regression (issue 11 point 1): the transcript was written only when the run ended (0 bytes
/// while it ran), and SIGHUP killed sim7k (exit 129) with an empty transcript and no `--json`.
#[test]
fn the_transcript_streams_and_sighup_ends_the_run_like_sigterm() {
    let dir = TempDir::new("out-stream");
    let recipe = write_recipe(dir.path(), LONG_RUN);
    let transcript = dir.path().join("t.log");
    let child = sim7k()
        .arg("run")
        .arg(&recipe)
        .args(["--emulate", "--emulator-profile", "zero", "--json"])
        .arg("--transcript")
        .arg(&transcript)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While the run waits, the first step and the start of the second are on disk.
    eventually("the transcript shows the running step", || {
        let t = text(&transcript);
        t.contains("AT+CGSN") && t.contains("long wait")
    });
    signal(&child, libc::SIGHUP);
    let out = finish(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let json = only_json(&out);
    assert_eq!(json["verdict"], "interrupted", "{json}");
    assert!(
        json["failure"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("SIGHUP")),
        "{json}"
    );
    let t = text(&transcript);
    assert!(t.contains("run ended: Interrupted"), "{t}");
}

/// Regression (issue 11 point 1): `--transcript-dir` files of devices still running were
/// empty; SIGTERM ends every device with its transcript finished.
#[test]
fn transcript_dir_files_of_running_devices_are_not_empty() {
    let dir = TempDir::new("out-stream-dir");
    let recipe = write_recipe(dir.path(), LONG_RUN);
    let tdir = dir.path().join("transcripts");
    let child = sim7k()
        .arg("run")
        .arg(&recipe)
        .args([
            "--emulate",
            "--emulator-profile",
            "zero",
            "--emulate-count",
            "2",
        ])
        .arg("--json")
        .arg("--transcript-dir")
        .arg(&tdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let files = || -> Vec<PathBuf> {
        std::fs::read_dir(&tdir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    eventually("both devices' transcripts show the running step", || {
        let f = files();
        f.len() == 2 && f.iter().all(|p| text(p).contains("long wait"))
    });
    signal(&child, libc::SIGTERM);
    let out = finish(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = only_json(&out);
    assert_eq!(json["interrupted"], 2, "{json}");
    // Regression (issue 10 point 19): the summary said "0 passed, 2 failed".
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 failed, 2 interrupted"), "{stderr}");
    for p in files() {
        assert!(text(&p).contains("run ended: Interrupted"), "{}", text(&p));
    }
}

/// Regression (issue 11 point 2): on a full disk the transcript was cut and the run PASSED
/// with exit 0. A transcript whose writes fail (`/dev/full` through a symlink) ends the run
/// with exit 4, naming the file.
#[test]
fn a_transcript_that_cannot_be_written_fails_the_run_with_exit_4() {
    let dir = TempDir::new("out-full");
    let link = dir.path().join("transcript.log");
    std::os::unix::fs::symlink("/dev/full", &link).unwrap();
    let out = sim7k()
        .args(["run", "recipes/modem-info.yaml", "--emulate"])
        .args(["--emulator-profile", "zero", "--json"])
        .arg("--transcript")
        .arg(&link)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let json = only_json(&out);
    assert_eq!(json["verdict"], "io_error", "{json}");
    let reason = json["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&link.display().to_string()) && reason.contains("transcript"),
        "{reason}"
    );
    // The run stopped at the first step whose transcript could not be kept.
    assert!(
        json["steps"].as_array().is_some_and(|s| s.len() <= 2),
        "{json}"
    );
}

/// `sim7k` with a tiny file-size limit: every write past `bytes` fails (EFBIG) as on a full
/// disk, in every file the process writes.
fn with_file_limit(cmd: &mut Command, bytes: u64) -> &mut Command {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A write past the limit then fails with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        })
    }
}

/// Regression (issue 11 point 2): a failed write of the report, the JUnit or the CSV file
/// ends with exit 4 and a message naming the file (a verdict whose record could not be kept
/// is not a pass); the transcript of `--transcript-dir` too.
#[test]
fn report_junit_csv_and_transcript_dir_write_errors_exit_4_naming_the_file() {
    for (flag, name) in [
        ("--report", "r.jsonl"),
        ("--junit", "j.xml"),
        ("--csv", "c.csv"),
        ("--transcript-dir", "tdir"),
    ] {
        let dir = TempDir::new("out-efbig");
        let path = dir.path().join(name);
        let mut cmd = sim7k();
        cmd.args(["run", "recipes/modem-info.yaml", "--emulate"])
            .args(["--emulator-profile", "zero", "--json", flag])
            .arg(&path);
        let out = with_file_limit(&mut cmd, 64).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "{flag}: {stderr}\n{stdout}");
        let named = path.display().to_string();
        assert!(
            stderr.contains(&named) || stdout.contains(&named),
            "{flag}: the file is not named:\n{stderr}\n{stdout}"
        );
    }
}

/// Copies of the shipped recipes and scripts, so a test that is refused writing into them
/// cannot harm the repository's even on old code.
fn recipes_copy(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["recipes", "recipes/carriers", "scripts"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    dir.join("recipes")
}

/// Regression (issue 11 point 3): `--csv`/`--junit` replaced a symlink, a FIFO or a device by
/// a regular file (exit 0); two outputs on one file, or an output on the recipe or one of
/// its includes, were written. Now: refused with exit 2 before anything runs (no output
/// file is created), and a symlink is written through to its target.
#[test]
fn unsafe_output_paths_are_refused_before_anything_runs() {
    let dir = TempDir::new("out-paths");
    let recipes = recipes_copy(dir.path());
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let a_dir = dir.path().join("a-dir");
    std::fs::create_dir(&a_dir).unwrap();
    let same = dir.path().join("same");
    let recipe = recipes.join("mqtt-publish.yaml");
    let include = recipes.join("network-attach.yaml");
    let include_before = std::fs::read(&include).unwrap();
    let recipe_before = std::fs::read(&recipe).unwrap();
    let witness = dir.path().join("witness").display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--csv".into(), fifo.display().to_string()], "--csv"),
        (
            vec!["--junit".into(), a_dir.display().to_string()],
            "directory",
        ),
        (vec!["--report".into(), "/dev/null".into()], "--report"),
        (vec!["--csv".into(), "/dev/full".into()], "--csv"),
        (
            vec![
                "--report".into(),
                same.display().to_string(),
                "--csv".into(),
                same.display().to_string(),
            ],
            "same file",
        ),
        (
            vec!["--report".into(), recipe.display().to_string()],
            "recipe",
        ),
        (
            vec!["--csv".into(), include.display().to_string()],
            "network-attach.yaml",
        ),
        // A single run (no fleet outputs) is checked the same way.
        (
            vec!["--transcript".into(), include.display().to_string()],
            "network-attach.yaml",
        ),
    ];
    for (args, says) in cases {
        let out = sim7k()
            .arg("run")
            .arg(&recipe)
            .args(["--emulate", "--emulator-profile", "zero"])
            .args(&args)
            .args(match args[0].as_str() {
                "--transcript" => vec![],
                "--junit" => vec!["--csv".to_string(), witness.clone()],
                _ => vec!["--junit".to_string(), witness.clone()],
            })
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!Path::new(&witness).exists(), "{args:?}: something ran");
        assert!(!same.exists(), "{args:?}");
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read(&include).unwrap(), include_before);
    assert_eq!(std::fs::read(&recipe).unwrap(), recipe_before);

    // A symlink is written through: the link stays, its target gets the file.
    let target = dir.path().join("target.csv");
    let link = dir.path().join("link.csv");
    std::fs::write(&target, "old").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = sim7k()
        .arg("run")
        .arg(recipes.join("modem-info.yaml"))
        .args(["--emulate", "--emulator-profile", "zero", "-q", "--csv"])
        .arg(&link)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        text(&target).starts_with("port,device,"),
        "{}",
        text(&target)
    );
}

/// Regression (issue 11 point 10): escape sequences from the modem reached the transcript,
/// the console (`-v`, "the modem said"), the JUnit and the CSV as they were, and a long line
/// without CR/LF was printed whole. Everywhere now: control bytes shown as `\xNN`, long
/// lines shortened.
#[test]
fn text_from_the_modem_is_escaped_and_shortened_in_every_output() {
    let long = "A".repeat(5000);
    let reply = format!("\r\n\u{1b}]0;owned\u{7}\u{1b}[2J{long}\r\n\r\nERROR\r\n");
    let peer = Peer::spawn(
        false,
        vec![rule("AT", "\r\nOK\r\n"), rule("AT+CGSN", &reply)],
    );
    let dir = TempDir::new("out-escape");
    let recipe = write_recipe(
        dir.path(),
        "name: esc\nsteps:\n  - name: identity\n    send: AT+CGSN\n",
    );
    let tdir = dir.path().join("t");
    let junit = dir.path().join("j.xml");
    let csv = dir.path().join("c.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .arg("run")
        .arg(&recipe)
        .arg("--port")
        .arg(&peer.path)
        .args(["-v", "--json"])
        .arg("--transcript-dir")
        .arg(&tdir)
        .arg("--junit")
        .arg(&junit)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    drop(peer);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut outputs: Vec<(String, Vec<u8>)> = vec![
        ("stdout".into(), out.stdout.clone()),
        ("stderr".into(), out.stderr.clone()),
        ("junit".into(), std::fs::read(&junit).unwrap()),
        ("csv".into(), std::fs::read(&csv).unwrap()),
    ];
    for e in std::fs::read_dir(&tdir).unwrap() {
        let p = e.unwrap().path();
        outputs.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    assert_eq!(outputs.len(), 5);
    for (name, bytes) in &outputs {
        assert!(
            !bytes.iter().any(|&b| b == 0x1b || b == 0x07),
            "{name}: a raw control byte"
        );
        // No output shown to a person or kept as a record repeats the 5000-byte line
        // whole; the transcript file is the evidence and keeps every byte (escaped).
        assert!(
            name.ends_with(".log") || !String::from_utf8_lossy(bytes).contains(&"A".repeat(1000)),
            "{name}: the long line is not shortened"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\\x1b]0;owned\\x07"), "{stderr}");
}

/// A loopback listener whose accept queue is full, so a further connect gets no answer.
/// `None` when this kernel answers every connect anyway (syncookies): the test then skips.
fn full_listener() -> Option<(i32, String, Vec<std::net::TcpStream>)> {
    // SAFETY: plain socket calls on a descriptor this test owns (closed by the caller).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    // SAFETY: an all-zero sockaddr_in is valid.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_in of `len` bytes.
    assert_eq!(unsafe { libc::bind(fd, (&raw const addr).cast(), len) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
    // SAFETY: an all-zero sockaddr_in is valid.
    let mut got: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut got_len = len;
    // SAFETY: `got` has room for `got_len` bytes.
    let r = unsafe { libc::getsockname(fd, (&raw mut got).cast(), &mut got_len) };
    assert_eq!(r, 0);
    let target = format!("127.0.0.1:{}", u16::from_be(got.sin_port));
    let mut held = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(
            &target.parse().unwrap(),
            Duration::from_millis(300),
        ) {
            Ok(s) => held.push(s),
            Err(_) => return Some((fd, target, held)),
        }
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    None
}

/// Regression (issue 11 point 15): `--port tcp://…` waited the 10 s connect timeout although
/// the recipe's deadline was 1 s; the connect now ends by the deadline (exit 4, saying so), on
/// one port and in a fleet.
#[test]
fn a_tcp_port_connect_ends_by_the_recipe_deadline() {
    let Some((fd, target, held)) = full_listener() else {
        eprintln!("skipped: this kernel answers every connect (syncookies?)");
        return;
    };
    let dir = TempDir::new("out-tcp");
    let recipe = write_recipe(
        dir.path(),
        "name: tcp\ndeadline: 1s\nsteps:\n  - send: AT\n",
    );
    let port = format!("tcp://{target}");
    for fleet in [false, true] {
        let mut cmd = sim7k();
        cmd.arg("run").arg(&recipe).args(["--port", &port]);
        if fleet {
            cmd.arg("--csv").arg(dir.path().join("c.csv"));
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let csv = text(&dir.path().join("c.csv"));
        assert_eq!(out.status.code(), Some(4), "fleet {fleet}: {stderr}");
        assert!(
            stderr.contains("the run's deadline") || csv.contains("the run's deadline"),
            "fleet {fleet}: {stderr}\n{csv}"
        );
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    drop(held);
}
