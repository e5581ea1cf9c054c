//! Shared helpers for integration tests: a real mosquitto broker on a free loopback port.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mosquitto process on 127.0.0.1, killed on drop.
pub(crate) struct Mosquitto {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: TempDir,
}

/// True when CI demands the real broker (`SIM7K_REQUIRE_MOSQUITTO=1`): tests that need
/// mosquitto then fail instead of skipping when it is missing.
pub(crate) fn mosquitto_required() -> bool {
    std::env::var("SIM7K_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1")
}

fn find_mosquitto() -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = PathBuf::from(dir).join("mosquitto");
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// A free TCP port on loopback (bind to 0, read the port, release it).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    /// Make a fresh directory under the system temp dir.
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sim7k-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    /// The path.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Mosquitto {
    /// Start mosquitto with anonymous access. Returns `None` (test should skip) when the
    /// binary is missing, unless [`mosquitto_required`], in which case it panics.
    pub(crate) fn start() -> Option<Mosquitto> {
        Self::start_with("")
    }

    /// Start mosquitto with extra configuration lines appended.
    pub(crate) fn start_with(extra_conf: &str) -> Option<Mosquitto> {
        let Some(bin) = find_mosquitto() else {
            if mosquitto_required() {
                panic!("mosquitto is required (SIM7K_REQUIRE_MOSQUITTO=1) but not installed");
            }
            eprintln!("mosquitto not installed: skipping this test");
            return None;
        };
        let dir = TempDir::new("mosquitto");
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.path().join("mosquitto.conf");
            let mut f = std::fs::File::create(&conf).expect("write mosquitto.conf");
            writeln!(
                f,
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra_conf}"
            )
            .expect("write conf");
            drop(f);
            let mut child = Command::new(&bin)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn mosquitto");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Some(Mosquitto {
                        child,
                        addr,
                        _dir: dir,
                    });
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("mosquitto did not start listening");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) mod emulator;
pub(crate) mod mqtt_client;
pub(crate) mod peer;
