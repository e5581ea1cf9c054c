//! Issue 10 point 3: a modem that stops answering is told from one that answers without
//! matching, in `until` polls and `wait` steps, on a scripted pty modem and on the emulator
//! (`--fault silent-after=…`); point 17: the start-up sync on a slow UART.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serialport::{SerialPort, TTYPort};
use support::TempDir;
use support::peer::{Peer, Reply, rule};

struct Outcome {
    code: i32,
    stderr: String,
}

fn sim7k(recipe: &Path, args: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_sim7k"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .arg(recipe)
        .args(args)
        .output()
        .expect("run sim7k");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn recipe(dir: &TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("recipe.yaml");
    std::fs::write(&p, text).expect("write recipe");
    p
}

const POLL: &str = "steps:
  - send: AT+CSQ
  - name: registration
    send: AT+CEREG?
    until: \"+CEREG: 0,1\"
    timeout: 300ms
    interval: 200ms
    deadline: 120s
";

/// Before: exit 1, "no line matched `+CEREG: 0,1` after N polls", after the whole deadline.
#[test]
fn a_modem_that_answers_twice_then_goes_silent_is_a_timeout() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", "\r\nOK\r\n"),
            rule("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
            rule("AT+CEREG?", "\r\n+CEREG: 0,2\r\n\r\nOK\r\n").times(2),
            rule("AT+CEREG?", "").reply(Reply::Silent).times(1000),
        ],
    );
    let dir = TempDir::new("silent-poll");
    let port = peer.path.to_str().unwrap_or_default().to_string();
    let o = sim7k(&recipe(&dir, POLL), &["--port", &port]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(
        o.stderr.contains("did not answer `AT+CEREG?`"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("2 times in a row"), "{}", o.stderr);
    assert!(o.stderr.contains("last answered"), "{}", o.stderr);
    // It stopped after the two silent polls, long before the deadline.
    let polls = peer
        .stop()
        .commands
        .iter()
        .filter(|c| *c == "AT+CEREG?")
        .count();
    assert_eq!(polls, 4, "two answered, two silent");
}

#[test]
fn replies_that_never_match_keep_exit_1() {
    let peer = Peer::spawn(
        false,
        vec![
            rule("AT", "\r\nOK\r\n"),
            rule("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
            rule("AT+CEREG?", "\r\n+CEREG: 0,2\r\n\r\nOK\r\n").times(1000),
        ],
    );
    let dir = TempDir::new("unmet-poll");
    let port = peer.path.to_str().unwrap_or_default().to_string();
    let text = POLL.replace("deadline: 120s", "deadline: 2s");
    let o = sim7k(&recipe(&dir, &text), &["--port", &port]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("no line matched"), "{}", o.stderr);
}

#[test]
fn the_emulator_going_silent_during_a_poll_is_a_timeout() {
    let dir = TempDir::new("silent-emu");
    let text = POLL.replace("+CEREG: 0,1", "+CEREG: 0,9");
    let o = sim7k(
        &recipe(&dir, &text),
        &[
            "--emulate",
            "--emulator-profile",
            "zero",
            "--fault",
            "silent-after=1500ms",
        ],
    );
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(
        o.stderr.contains("did not answer `AT+CEREG?`"),
        "{}",
        o.stderr
    );
}

/// A `wait` whose expectation is not met: one `AT` tells a silent modem (exit 3) from a
/// live one where the URC simply did not come (exit 1).
#[test]
fn an_unmet_wait_checks_the_modem_is_alive() {
    let text = "steps:
  - send: AT+CSQ
  - wait: 1s
    expect: \"+APP PDP: ACTIVE\"
";
    let dir = TempDir::new("wait-probe");
    let r = recipe(&dir, text);
    let silent = Peer::spawn(
        false,
        vec![
            rule("AT", "\r\nOK\r\n"),
            rule("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
            rule("AT", "").reply(Reply::Silent),
        ],
    );
    let port = silent.path.to_str().unwrap_or_default().to_string();
    let o = sim7k(&r, &["--port", &port]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("did not answer `AT`"), "{}", o.stderr);
    let alive = Peer::spawn(
        false,
        vec![
            rule("AT", "\r\nOK\r\n"),
            rule("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
            rule("AT", "\r\nOK\r\n"),
        ],
    );
    let port = alive.path.to_str().unwrap_or_default().to_string();
    let o = sim7k(&r, &["--port", &port]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("no line matched"), "{}", o.stderr);
    assert!(o.stderr.contains("answered `AT`"), "{}", o.stderr);
}

/// A modem on a slow UART: every byte it sends leaves 50 ms after the previous one (its
/// command echo and `OK` take about 0.5 s, longer than the sync's 300 ms per `AT`).
struct SlowModem {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl SlowModem {
    fn spawn(reply: &'static str) -> SlowModem {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
            // SAFETY: plain fcntl on fds we own.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
        let path = PathBuf::from(slave.name().expect("pts name"));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let _keep = slave;
            let _ = master.set_timeout(Duration::from_millis(20));
            let mut commands = Vec::new();
            let mut line = Vec::new();
            let mut out: std::collections::VecDeque<u8> = Default::default();
            let mut buf = [0u8; 256];
            while !stop2.load(Ordering::SeqCst) {
                if let Ok(n) = master.read(&mut buf) {
                    for &b in &buf[..n] {
                        if b == b'\r' {
                            let text = String::from_utf8_lossy(&line).trim().to_string();
                            line.clear();
                            if !text.is_empty() {
                                out.extend(format!("{text}\r").bytes());
                                out.extend(reply.bytes());
                                commands.push(text);
                            }
                        } else if b != b'\n' {
                            line.push(b);
                        }
                    }
                }
                if let Some(b) = out.pop_front() {
                    let _ = master.write_all(&[b]);
                    let _ = master.flush();
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            commands
        });
        SlowModem {
            path,
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for SlowModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Issue 10 point 17. Before: every `AT` timed out while its reply was still arriving, the
/// next one went out over it, and the run ended with "the modem did not answer `AT` with
/// `OK`" although the transcript showed `OK`s.
#[test]
fn the_sync_waits_for_a_reply_in_progress_on_a_slow_uart() {
    let modem = SlowModem::spawn("\r\nOK\r\n");
    let dir = TempDir::new("slow-uart");
    let port = modem.path.to_str().unwrap_or_default().to_string();
    let o = sim7k(&recipe(&dir, "steps:\n  - send: ATI\n"), &["--port", &port]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let commands = modem.stop();
    assert_eq!(commands.first().map(String::as_str), Some("AT"));
    assert_eq!(
        commands.iter().filter(|c| *c == "AT").count(),
        1,
        "one AT was enough: {commands:?}"
    );
}

/// The failure message says what was seen: here the modem answers, but never `OK`.
#[test]
fn a_sync_answered_without_ok_says_what_the_modem_said() {
    let peer = Peer::spawn(false, vec![rule("AT", "\r\nERROR\r\n").times(1000)]);
    let dir = TempDir::new("sync-error");
    let port = peer.path.to_str().unwrap_or_default().to_string();
    let text = "sync: { within: 1s, interval: 200ms }\nsteps:\n  - send: ATI\n";
    let o = sim7k(&recipe(&dir, text), &["--port", &port]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("answered `AT`, but not with `OK`"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("ERROR"), "{}", o.stderr);
}
