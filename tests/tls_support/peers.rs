//! Real TLS peers on loopback: `openssl s_server` and mosquitto with a TLS listener. Both
//! are killed on drop.

use super::{TempDir, find_program};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free TCP port on loopback.
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `openssl s_server` on 127.0.0.1.
pub(crate) struct OpensslServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it printed (stdout and stderr).
    pub output: Arc<Mutex<String>>,
}

impl OpensslServer {
    /// Start `openssl s_server -accept PORT <args>`; `None` when openssl is missing (skip).
    pub(crate) fn start(args: &[&str]) -> Option<OpensslServer> {
        let bin = find_program("openssl")?;
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .arg("s_server")
                .args(["-accept", &port.to_string(), "-4"])
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn openssl s_server");
            let output = Arc::new(Mutex::new(String::new()));
            let (tx, rx) = std::sync::mpsc::channel();
            for pipe in [
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                let out = output.clone();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        if line.contains("ACCEPT") {
                            let _ = tx.send(());
                        }
                        if let Ok(mut o) = out.lock() {
                            o.push_str(&line);
                            o.push('\n');
                        }
                    }
                });
            }
            if rx.recv_timeout(Duration::from_secs(10)).is_ok() {
                let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
                return Some(OpensslServer {
                    child,
                    addr,
                    output,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("openssl s_server did not start");
    }

    /// What it printed so far.
    pub(crate) fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// mosquitto with one TLS listener on 127.0.0.1; its log (stderr) goes to a file.
pub(crate) struct MosquittoTls {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl MosquittoTls {
    /// Start with `cafile`/`certfile`/`keyfile` and extra listener lines (e.g.
    /// `require_certificate true`). `None` when mosquitto is missing (skip).
    pub(crate) fn start(
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
        extra: &str,
    ) -> Option<MosquittoTls> {
        let bin = find_program("mosquitto")?;
        let dir = TempDir::new("mosquitto-tls");
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.join("mosquitto.conf");
            let text = format!(
                "per_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\nconnection_messages true\nlistener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n{extra}\n",
                ca.display(),
                cert.display(),
                key.display()
            );
            super::write_file(&conf, text.as_bytes());
            let log = dir.join("mosquitto.log");
            let log_file = std::fs::File::create(&log).expect("log file");
            let mut child = Command::new(&bin)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::from(log_file))
                .spawn()
                .expect("spawn mosquitto");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                if log_text.contains("Opening ipv4 listen socket")
                    && TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
                {
                    return Some(MosquittoTls {
                        child,
                        addr,
                        log,
                        _dir: dir,
                    });
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Error") && !text.contains("Address already in use") {
                panic!("mosquitto did not start:\n{text}");
            }
        }
        panic!("mosquitto did not start listening");
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (up to 10 s); the log either way.
    pub(crate) fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) || start.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MosquittoTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
