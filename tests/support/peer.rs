//! A scripted modem on the master side of a real pseudo-terminal: it reads command lines,
//! checks them against a script, and writes canned replies (optionally one byte at a time).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serialport::{SerialPort, TTYPort};

/// What the peer does when a command arrives.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// Write these bytes.
    Bytes(Vec<u8>),
    /// Write these bytes one at a time with a short pause between them.
    Drip(Vec<u8>),
    /// Write nothing.
    Silent,
    /// Close the pseudo-terminal (the device vanishes).
    Hangup,
}

/// One expected command.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    /// Exact command text, or a prefix ending in `*`.
    pub command: String,
    /// How many times in a row this rule matches.
    pub times: usize,
    /// The reply.
    pub reply: Reply,
    /// After the reply, read this many data bytes (after a `> ` prompt), then send `after`.
    pub data: Option<(usize, Reply)>,
}

/// `rule("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")`
pub(crate) fn rule(command: &str, reply: &str) -> Rule {
    Rule {
        command: command.to_string(),
        times: 1,
        reply: Reply::Bytes(reply.as_bytes().to_vec()),
        data: None,
    }
}

impl Rule {
    /// Repeat this rule `n` times.
    pub(crate) fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }
    /// Drip the reply.
    pub(crate) fn drip(mut self) -> Rule {
        if let Reply::Bytes(b) = self.reply {
            self.reply = Reply::Drip(b);
        }
        self
    }
    /// Use another reply.
    pub(crate) fn reply(mut self, reply: Reply) -> Rule {
        self.reply = reply;
        self
    }
    /// Expect `n` data bytes after the reply (a prompt), then answer `after`.
    pub(crate) fn data(mut self, n: usize, after: &str) -> Rule {
        self.data = Some((n, Reply::Bytes(after.as_bytes().to_vec())));
        self
    }
    fn matches(&self, line: &str) -> bool {
        match self.command.strip_suffix('*') {
            Some(prefix) => line.starts_with(prefix),
            None => line == self.command,
        }
    }
}

/// What the peer saw.
#[derive(Default, Debug, Clone)]
pub(crate) struct PeerLog {
    /// Command lines received, in order.
    pub commands: Vec<String>,
    /// Data blocks received after prompts.
    pub data: Vec<Vec<u8>>,
    /// Commands that matched no rule.
    pub unexpected: Vec<String>,
}

/// A scripted modem on a pseudo-terminal.
pub(crate) struct Peer {
    /// Path a client opens.
    pub path: PathBuf,
    log: Arc<Mutex<PeerLog>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Peer {
    /// Start a peer. `echo`: echo command lines back as the SIM7000 does at power-on.
    pub(crate) fn spawn(echo: bool, rules: Vec<Rule>) -> Peer {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        // Keep these fds out of child processes, or a spawned `sim7k` would hold the master
        // open and never see the device vanish.
        for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
            // SAFETY: plain fcntl on fds we own.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
        let path = PathBuf::from(slave.name().expect("pts name"));
        let log = Arc::new(Mutex::new(PeerLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        let handle = std::thread::spawn(move || serve(master, slave, echo, rules, log2, stop2));
        Peer {
            path,
            log,
            stop,
            handle: Some(handle),
        }
    }

    /// What the peer saw so far.
    pub(crate) fn log(&self) -> PeerLog {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stop the peer thread.
    pub(crate) fn stop(mut self) -> PeerLog {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.log()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn write(master: &mut TTYPort, reply: &Reply) -> bool {
    match reply {
        Reply::Bytes(b) => {
            let _ = master.write_all(b);
            true
        }
        Reply::Drip(b) => {
            for byte in b {
                let _ = master.write_all(&[*byte]);
                let _ = master.flush();
                std::thread::sleep(Duration::from_millis(2));
            }
            true
        }
        Reply::Silent => true,
        Reply::Hangup => false,
    }
}

fn serve(
    mut master: TTYPort,
    slave: TTYPort,
    echo: bool,
    rules: Vec<Rule>,
    log: Arc<Mutex<PeerLog>>,
    stop: Arc<AtomicBool>,
) {
    let _keep_slave_open = slave;
    let _ = master.set_timeout(Duration::from_millis(50));
    let mut rules: std::collections::VecDeque<Rule> = rules.into();
    let mut line = Vec::new();
    let mut want_data: Option<(usize, Reply, Vec<u8>)> = None;
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        let n = match master.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => continue,
        };
        for &b in &buf[..n] {
            if let Some((need, after, got)) = want_data.as_mut() {
                got.push(b);
                if got.len() == *need {
                    let data = std::mem::take(got);
                    let after = after.clone();
                    want_data = None;
                    if let Ok(mut l) = log.lock() {
                        l.data.push(data);
                    }
                    write(&mut master, &after);
                }
                continue;
            }
            if b == b'\r' {
                let text = String::from_utf8_lossy(&line).trim().to_string();
                line.clear();
                if text.is_empty() {
                    continue;
                }
                if echo {
                    let _ = master.write_all(format!("{text}\r").as_bytes());
                }
                if let Ok(mut l) = log.lock() {
                    l.commands.push(text.clone());
                }
                let matched = rules.front().is_some_and(|r| r.matches(&text));
                if !matched {
                    if let Ok(mut l) = log.lock() {
                        l.unexpected.push(text);
                    }
                    let _ = master.write_all(b"\r\nERROR\r\n");
                    continue;
                }
                let Some(rule) = rules.front_mut() else {
                    continue;
                };
                let reply = rule.reply.clone();
                let data = rule.data.clone();
                rule.times -= 1;
                if rule.times == 0 {
                    rules.pop_front();
                }
                if !write(&mut master, &reply) {
                    // Hang up: drop both ends so the client's reads fail.
                    return;
                }
                if let Some((need, after)) = data {
                    want_data = Some((need, after, Vec::new()));
                }
            } else if b != b'\n' {
                line.push(b);
            }
        }
    }
}
