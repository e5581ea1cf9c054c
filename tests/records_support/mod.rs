//! Real servers for the records tests: a PostgreSQL cluster in a temporary directory (run as
//! an unprivileged user, since the server refuses root), mosquitto with or without a password
//! file, and `mosquitto_sub` as an independent subscriber.
//!
//! A missing server binary skips the test with a printed reason, or fails it when
//! `SIM7K_REQUIRE_POSTGRES=1` (PostgreSQL) / `SIM7K_REQUIRE_MOSQUITTO=1` (mosquitto) is set,
//! as CI does.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sim7k::report::DeviceRecord;

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sim7k-rec-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// The path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on loopback.
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// Skip (return `None`) or fail, as the `SIM7K_REQUIRE_*` flag says.
fn missing<T>(flag_name: &str, what: &str) -> Option<T> {
    if flag(flag_name) {
        panic!("{what} is required ({flag_name}=1) but not installed");
    }
    eprintln!("SKIPPED: {what} is not installed (set {flag_name}=1 to make this a failure)");
    None
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// How the test cluster checks passwords on TCP.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgAuth {
    /// `md5` in pg_hba.conf: SCRAM for roles stored with SCRAM, MD5 for roles stored as MD5.
    Password,
    /// `trust`: no password asked.
    Trust,
}

/// A PostgreSQL cluster in a temporary directory, stopped on drop.
pub(crate) struct PgServer {
    bin: PathBuf,
    user: Option<String>,
    dir: TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    options: String,
}

/// The roles every test cluster has (all on database `factory`, owned by `line`).
pub(crate) const LINE_USER: &str = "line";
/// Password of [`LINE_USER`] (stored as SCRAM-SHA-256).
pub(crate) const LINE_PASSWORD: &str = "line-Pa55";
/// A role whose password is stored as MD5 (logs in with the MD5 exchange).
pub(crate) const MD5_USER: &str = "oldline";
/// Password of [`MD5_USER`].
pub(crate) const MD5_PASSWORD: &str = "old-Pa55";

fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.reverse();
    dirs.extend(["/usr/local/bin", "/usr/bin"].map(PathBuf::from));
    dirs.into_iter().find(|d| {
        d.join("initdb").exists() && d.join("pg_ctl").exists() && d.join("postgres").exists()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl PgServer {
    /// Start a cluster with the roles above. `None` (skip) when PostgreSQL is not installed,
    /// unless `SIM7K_REQUIRE_POSTGRES=1`.
    pub(crate) fn start(auth: PgAuth) -> Option<PgServer> {
        Self::start_with(
            auth,
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        )
    }

    /// Start with extra server options (`-c name=value …`).
    pub(crate) fn start_with(auth: PgAuth, extra: &str) -> Option<PgServer> {
        let Some(bin) = pg_bin_dir() else {
            return missing(
                "SIM7K_REQUIRE_POSTGRES",
                "PostgreSQL (initdb, pg_ctl, postgres)",
            );
        };
        // The server refuses to run as root: run it as `postgres` (the Debian package's
        // user) or `nobody`.
        let user = if is_root() {
            Some(
                if user_exists("postgres") {
                    "postgres"
                } else {
                    "nobody"
                }
                .to_string(),
            )
        } else {
            None
        };
        let dir = TempDir::new("pg");
        std::fs::create_dir_all(dir.path().join("sock")).expect("mkdir sock");
        if let Some(u) = &user {
            let ok = Command::new("chown")
                .arg("-R")
                .arg(u)
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {} to {u}", dir.path().display());
        }
        let mut server = PgServer {
            bin,
            user,
            port: 0,
            options: String::new(),
            dir,
        };
        let data = server.data();
        let out = server
            .as_user("initdb")
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let method = match auth {
            PgAuth::Password => "md5",
            PgAuth::Trust => "trust",
        };
        let hba = format!(
            "local all all trust\nhost all all 127.0.0.1/32 {method}\nhost all all ::1/128 {method}\n"
        );
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        for attempt in 0..5 {
            server.port = free_port();
            server.options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 {extra}",
                server.port,
                server.dir.path().join("sock").display()
            );
            if server.pg_ctl_start() {
                break;
            }
            assert!(attempt < 4, "PostgreSQL did not start: {}", server.log());
        }
        server.psql_super(&format!(
            "CREATE ROLE {LINE_USER} LOGIN PASSWORD '{LINE_PASSWORD}';
             SET password_encryption = 'md5';
             CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}';"
        ));
        // CREATE DATABASE cannot share a transaction with anything.
        server.psql_super(&format!("CREATE DATABASE factory OWNER {LINE_USER}"));
        server.psql_super_db(
            "factory",
            &format!("GRANT ALL ON SCHEMA public TO {MD5_USER};"),
        );
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn as_user(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn pg_ctl_start(&self) -> bool {
        self.as_user("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &self.options, "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stop the server (fast shutdown), keeping its data.
    pub(crate) fn stop(&self) {
        let _ = self
            .as_user("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Start it again on the same port.
    pub(crate) fn restart(&self) {
        assert!(
            self.pg_ctl_start(),
            "PostgreSQL did not restart: {}",
            self.log()
        );
    }

    /// `postgres://line:PASSWORD@127.0.0.1:PORT/factory?sslmode=disable` plus `extra`.
    pub(crate) fn url(&self, extra: &str) -> String {
        format!(
            "postgres://{LINE_USER}:{LINE_PASSWORD}@127.0.0.1:{}/factory?sslmode=disable{extra}",
            self.port
        )
    }

    /// Run SQL as the superuser on database `factory` through `psql` (an independent client);
    /// the rows as `|`-separated lines.
    pub(crate) fn sql(&self, sql: &str) -> String {
        self.psql_super_db("factory", sql)
    }

    fn psql_super(&self, sql: &str) -> String {
        self.psql_super_db("postgres", sql)
    }

    fn psql_super_db(&self, db: &str, sql: &str) -> String {
        let psql = if self.bin.join("psql").exists() {
            self.bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let out = Command::new(psql)
            .arg("-h")
            .arg(self.dir.path().join("sock"))
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .as_user("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------
// mosquitto

fn find(names: &[&str]) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        for n in names {
            let p = PathBuf::from(dir).join(n);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

/// A mosquitto broker on 127.0.0.1, killed on drop.
pub(crate) struct Mosquitto {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl Mosquitto {
    /// Anonymous access.
    pub(crate) fn start() -> Option<Mosquitto> {
        Self::start_inner(None)
    }

    /// Only `user` with `password` may connect (`allow_anonymous false`, a password file).
    pub(crate) fn start_with_password(user: &str, password: &str) -> Option<Mosquitto> {
        Self::start_inner(Some((user, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> Option<Mosquitto> {
        let Some(bin) = find(&["mosquitto"]) else {
            return missing("SIM7K_REQUIRE_MOSQUITTO", "mosquitto");
        };
        let dir = TempDir::new("mosq");
        let auth_conf = match auth {
            None => "allow_anonymous true\n".to_string(),
            Some((user, password)) => {
                let passwd = find(&["mosquitto_passwd"]).expect("mosquitto_passwd");
                let file = dir.path().join("passwd");
                let ok = Command::new(passwd)
                    .arg("-b")
                    .arg("-c")
                    .arg(&file)
                    .args([user, password])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "mosquitto_passwd failed");
                // mosquitto drops to its own user when started as root: let it read the file.
                let _ = Command::new("chmod").arg("0644").arg(&file).status();
                format!("allow_anonymous false\npassword_file {}\n", file.display())
            }
        };
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.path().join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!("listener {port} 127.0.0.1\npersistence false\n{auth_conf}"),
            )
            .expect("write mosquitto.conf");
            let mut child = Command::new(&bin)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn mosquitto");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Some(Mosquitto {
                        child,
                        addr,
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
        }
        panic!("mosquitto did not start listening");
    }

    /// `mqtt://[auth@]127.0.0.1:PORT/<prefix>` plus `extra`.
    pub(crate) fn url(&self, auth: &str, prefix: &str, extra: &str) -> String {
        format!(
            "mqtt://{auth}127.0.0.1:{}/{prefix}{extra}",
            self.addr.port()
        )
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_sub` subscribed to a filter (an independent MQTT client).
pub(crate) struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Subscriber {
    /// Subscribe (QoS 1) and wait until the broker confirmed the subscription.
    pub(crate) fn start(
        broker: &Mosquitto,
        filter: &str,
        auth: Option<(&str, &str)>,
    ) -> Subscriber {
        let bin = find(&["mosquitto_sub"]).expect("mosquitto_sub (package mosquitto-clients)");
        // Line-buffered: its debug lines ("Subscribed …") would otherwise wait in a pipe buffer.
        let mut cmd = Command::new("stdbuf");
        cmd.arg("-oL").arg(bin);
        cmd.args(["-h", "127.0.0.1", "-p", &broker.addr.port().to_string()])
            .args(["-t", filter, "-q", "1", "-v", "-d"]);
        if let Some((u, p)) = auth {
            cmd.args(["-u", u, "-P", p]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto_sub");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.starts_with("Subscribed") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("mosquitto_sub did not subscribe");
                }
            }
        }
        Subscriber { child, lines: rx }
    }

    /// Collect `(topic, payload)` messages whose topic starts with `prefix`, until `n` have
    /// arrived or `quiet` passes without any.
    pub(crate) fn messages(
        &mut self,
        prefix: &str,
        n: usize,
        quiet: Duration,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.lines.recv_timeout(quiet) {
                Ok(l) => {
                    if l.starts_with(prefix)
                        && let Some((t, p)) = l.split_once(' ')
                    {
                        out.push((t.to_string(), p.to_string()));
                    }
                }
                Err(_) => break,
            }
        }
        out
    }
}

impl Subscriber {
    /// Like [`Subscriber::messages`], with the QoS each message was delivered at (from
    /// `mosquitto_sub -d`'s `received PUBLISH (d0, q1, …)` line before it): `(topic, payload,
    /// qos)`. The subscription is QoS 1, so a message arrives at QoS 1 only when it was
    /// published at QoS 1 (or 2).
    pub(crate) fn messages_with_qos(
        &mut self,
        prefix: &str,
        n: usize,
        quiet: Duration,
    ) -> Vec<(String, String, Option<u8>)> {
        let mut out = Vec::new();
        let mut qos = None;
        while out.len() < n {
            match self.lines.recv_timeout(quiet) {
                Ok(l) => {
                    if let Some(i) = l.find("received PUBLISH (") {
                        qos = l[i..]
                            .split(", q")
                            .nth(1)
                            .and_then(|r| r.chars().next())
                            .and_then(|c| c.to_digit(10))
                            .and_then(|d| u8::try_from(d).ok());
                    } else if l.starts_with(prefix)
                        && let Some((t, p)) = l.split_once(' ')
                    {
                        out.push((t.to_string(), p.to_string(), qos.take()));
                    }
                }
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// records

/// A device record as `sim7k run` writes it: device `emuNN`, IMEI from `n`, firmware, a
/// measurement, and a failure on every fourth device.
pub(crate) fn device_record(run: &str, n: usize) -> DeviceRecord {
    let passed = n % 4 != 3;
    let imei = format!("86995103{:07}", 1_234_560 + n);
    let value = serde_json::json!({
        "port": format!("/dev/pts/{}", 10 + n),
        "device": format!("emu{n:02}"),
        "recipe": "SIM7000 factory provisioning",
        "imei": imei,
        "started": format!("2025-11-25T15:{:02}:00.000Z", n % 60),
        "ended": format!("2025-11-25T15:{:02}:01.500Z", n % 60),
        "seconds": 1.5,
        "verdict": if passed { "passed" } else { "failed" },
        "exit_code": if passed { 0 } else { 1 },
        "failed_step": if passed { None } else { Some("signal") },
        "failed_origin": if passed { None } else { Some("recipes/provision-sim7000.yaml:92:5") },
        "reason": if passed { None } else { Some("rssi = 5, below the minimum 10") },
        "captures": {
            "imei": imei,
            "iccid": format!("898830300000{:07}", n),
            "imsi": format!("46601{:010}", n),
            "firmware": if n.is_multiple_of(2) { "1351B04SIM7000G" } else { "1351B05SIM7000G" },
            "rssi": if passed { "20" } else { "5" },
            "mqtt_password": "***"
        },
        "measurements": [{
            "name": "rssi", "value": if passed { "20" } else { "5" }, "passed": passed,
            "limits": {"min": 10.0, "max": 31.0, "not": ["99"]}, "step": "signal"
        }],
        "steps": {"total": 20, "passed": if passed { 20 } else { 9 }, "failed": u8::from(!passed), "skipped": 0},
        "transcript": format!("logs/emu{n:02}.log"),
        "run": run
    });
    serde_json::from_value(value).expect(
        "the test's DeviceRecord JSON no longer matches report::DeviceRecord: update records_support::device_record",
    )
}

/// Append records to a JSONL file with the real report writer.
pub(crate) fn write_jsonl(path: &Path, records: &[DeviceRecord]) {
    let w = sim7k::report::jsonl::JsonlWriter::open(path).expect("open JSONL");
    for r in records {
        w.append(r).expect("append");
    }
}

/// A TCP listener that accepts connections and never answers (a hung server).
pub(crate) struct Silent {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Silent {
    /// Start it.
    pub(crate) fn start() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok((c, _)) = l.accept() {
                    held.push(c);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Silent {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP server that answers every connection with fixed bytes (an HTTP error, garbage),
/// then keeps it open.
pub(crate) fn talker(reply: &'static [u8]) -> (SocketAddr, Silent) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let addr = l.local_addr().expect("addr");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !s.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok((mut c, _)) = l.accept() {
                let _ = c.write_all(reply);
                held.push(c);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (
        addr,
        Silent {
            addr,
            stop,
            thread: Some(thread),
        },
    )
}

/// Write `text` to `path`.
pub(crate) fn write(path: &Path, text: &str) {
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(text.as_bytes()).expect("write");
}
