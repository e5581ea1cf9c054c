//! `sim7k emulate` in its own process, as a user runs it; stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `sim7k` binary, run from the repository root.
pub(crate) fn sim7k() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sim7k"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// A running emulator process.
pub(crate) struct EmulatorProcess {
    child: Child,
    /// What a client opens.
    pub link: PathBuf,
}

impl EmulatorProcess {
    /// Zero-latency emulator in `dir`, its TCP connections redirected to `redirect`.
    pub(crate) fn start(dir: &Path, redirect: &str, extra: &[&str]) -> EmulatorProcess {
        let link = dir.join("modem");
        let mut child = sim7k()
            .args([
                "emulate",
                "--profile",
                "zero",
                "--redirect",
                redirect,
                "--link",
            ])
            .arg(&link)
            .arg("--log")
            .arg(dir.join("emulator.log"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sim7k emulate");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("emulator prints its link");
        assert!(
            line.contains(link.to_str().unwrap_or("?")),
            "unexpected first line: {line}"
        );
        EmulatorProcess { child, link }
    }

    /// The port path as a string.
    pub(crate) fn port(&self) -> &str {
        self.link.to_str().unwrap_or_default()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}
