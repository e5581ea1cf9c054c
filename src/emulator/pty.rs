//! The pseudo-terminal edge: the emulated module behind a pty slave a client opens like a
//! serial port, a driver thread running the [`Modem`] core, and real TCP connections.
//!
//! Port behaviour, as with a USB-serial adapter in front of a real module:
//! * the emulator keeps its own slave fd open, so clients can open, close and reopen the port;
//! * the module is powered on when a client first opens the port (or first writes to it);
//! * bytes the module prints while no client has the port open are lost (noted in the
//!   transcript) instead of piling up for the next client. Client presence is tracked with
//!   inotify open/close events on the pts device; where inotify is unavailable, output is
//!   always written;
//! * exclusive-mode opens (`TIOCEXCL`, what the serialport crate does) are released when the
//!   client closes, so non-root users can reopen the port.

use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

use super::config::EmulatorConfig;
use super::fault::Fault;
use super::modem::{Modem, NetEvent};
use super::net::{EventSink, NetEdge};
use super::transcript::{Direction, Transcript};
use crate::redact::Secrets;

/// Messages for the driver thread.
enum Msg {
    Host(Vec<u8>),
    Net(NetEvent),
    Inject(Fault),
    Clear,
    ClientOpened,
    ClientClosed,
    /// Client tracking lost track (inotify overflow): assume a client is present.
    PresenceUnknown,
    Stop,
}

/// A running emulated SIM7000 on a pseudo-terminal. Dropping it stops it.
pub struct PtyEmulator {
    port_path: PathBuf,
    pts_path: PathBuf,
    link: Option<PathBuf>,
    tx: Sender<Msg>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for PtyEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyEmulator")
            .field("port_path", &self.port_path)
            .field("pts_path", &self.pts_path)
            .finish_non_exhaustive()
    }
}

fn io_err(e: serialport::Error) -> io::Error {
    io::Error::other(format!("pseudo-terminal: {e}"))
}

impl PtyEmulator {
    /// Create the pty, symlink `link` to its slave (replacing an existing symlink, never a
    /// regular file), open the transcript `log`, and start serving. No secrets to hide: see
    /// [`PtyEmulator::spawn_redacted`].
    pub fn spawn(
        config: EmulatorConfig,
        link: Option<&Path>,
        log: Option<&Path>,
    ) -> io::Result<PtyEmulator> {
        PtyEmulator::spawn_redacted(config, link, log, Secrets::new())
    }

    /// [`PtyEmulator::spawn`], with every form of the run's `secrets` (raw, hex, base64, also
    /// split across writes) replaced by `***` in the transcript `log`.
    pub fn spawn_redacted(
        config: EmulatorConfig,
        link: Option<&Path>,
        log: Option<&Path>,
        secrets: Secrets,
    ) -> io::Result<PtyEmulator> {
        let start = Instant::now();
        let (mut master, slave) = TTYPort::pair().map_err(io_err)?;
        let pts_path = PathBuf::from(
            slave
                .name()
                .ok_or_else(|| io::Error::other("pseudo-terminal without a slave name"))?,
        );
        let mut transcript = Transcript::create(log, start, secrets)?;
        if let Some(l) = link {
            check_link(l)?;
        }
        let port_path = link.map_or_else(|| pts_path.clone(), Path::to_path_buf);
        transcript.note(
            &format!(
                "emulator on {} ({})",
                pts_path.display(),
                port_path.display()
            ),
            start,
        );
        master
            .set_timeout(Duration::from_millis(100))
            .map_err(io_err)?;
        let mut reader = master.try_clone_native().map_err(io_err)?;
        let (tx, rx) = channel::<Msg>();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();

        // Host → modem.
        {
            let tx = tx.clone();
            let stop = Arc::clone(&stop);
            threads.push(
                thread::Builder::new()
                    .name("sim7k-emu-pty-read".into())
                    .spawn(move || {
                        let mut buf = [0u8; 4096];
                        while !stop.load(Ordering::Relaxed) {
                            match reader.read(&mut buf) {
                                Ok(0) => {}
                                Ok(n) => {
                                    if tx.send(Msg::Host(buf[..n].to_vec())).is_err() {
                                        return;
                                    }
                                }
                                Err(e) if e.kind() == ErrorKind::TimedOut => {}
                                Err(_) => thread::sleep(Duration::from_millis(50)),
                            }
                        }
                    })?,
            );
        }

        // Client presence.
        let watching = match presence::Watch::new(&pts_path) {
            Ok(w) => {
                let tx = tx.clone();
                let stop = Arc::clone(&stop);
                threads.push(
                    thread::Builder::new()
                        .name("sim7k-emu-pty-watch".into())
                        .spawn(move || w.run(&stop, &tx))?,
                );
                true
            }
            Err(e) => {
                transcript.note(
                    &format!("client tracking unavailable ({e}): output always written"),
                    start,
                );
                false
            }
        };

        // The driver.
        {
            let sink_tx = Mutex::new(tx.clone());
            let sink: EventSink =
                Arc::new(move |e| sink_tx.lock().is_ok_and(|t| t.send(Msg::Net(e)).is_ok()));
            let edge = NetEdge::new(config.network.clone(), sink);
            let driver = Driver {
                config: Some(config),
                modem: None,
                edge,
                transcript,
                master,
                slave,
                clients: 0,
                assumed_open: false,
                tracking: watching,
                pending: Vec::new(),
            };
            threads.push(
                thread::Builder::new()
                    .name("sim7k-emu-driver".into())
                    .spawn(move || driver.run(&rx))?,
            );
        }

        let emu = PtyEmulator {
            port_path,
            pts_path,
            link: link.map(Path::to_path_buf),
            tx,
            stop,
            threads,
        };
        // Last: once the link exists a client may open it, and its open must be seen.
        if let Some(l) = link {
            make_link(&emu.pts_path, l)?;
        }
        Ok(emu)
    }

    /// What a client opens: the link if one was given, else the pts path.
    pub fn port_path(&self) -> &Path {
        &self.port_path
    }

    /// The pseudo-terminal slave (`/dev/pts/N`).
    pub fn pts_path(&self) -> &Path {
        &self.pts_path
    }

    /// Inject a fault now (see [`Fault`] for when delayed faults start counting).
    pub fn inject(&self, fault: Fault) {
        let _ = self.tx.send(Msg::Inject(fault));
    }

    /// Remove every active fault and end a silence.
    pub fn clear_faults(&self) {
        let _ = self.tx.send(Msg::Clear);
    }

    /// Stop serving, close connections, remove the link.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for PtyEmulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.tx.send(Msg::Stop);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(l) = &self.link
            && std::fs::read_link(l).is_ok_and(|t| t == self.pts_path)
        {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// Fail early when `link` exists and is not a symlink.
fn check_link(link: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if !m.file_type().is_symlink() => Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a symlink: not replacing it",
                link.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Symlink `link` → `target`, replacing an existing symlink but never another file.
fn make_link(target: &Path, link: &Path) -> io::Result<()> {
    check_link(link)?;
    if std::fs::symlink_metadata(link).is_ok() {
        std::fs::remove_file(link)?;
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create link {}: {e}", link.display()),
        )
    })
}

struct Driver {
    /// Taken when the module powers on.
    config: Option<EmulatorConfig>,
    modem: Option<Modem>,
    edge: NetEdge,
    transcript: Transcript,
    master: TTYPort,
    /// Kept open so clients can close and reopen the port.
    slave: TTYPort,
    /// Clients that have the port open, from open/close events.
    clients: u32,
    /// Bytes arrived while no open was seen: a client's open event is late.
    assumed_open: bool,
    tracking: bool,
    /// Faults injected before power-on.
    pending: Vec<Fault>,
}

impl Driver {
    fn run(mut self, rx: &Receiver<Msg>) {
        if !self.tracking {
            self.power_on(Instant::now());
        }
        loop {
            let now = Instant::now();
            let wait = self.modem.as_ref().and_then(Modem::next_deadline).map_or(
                Duration::from_millis(200),
                |d| {
                    d.saturating_duration_since(now)
                        .min(Duration::from_millis(200))
                },
            );
            let msg = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let now = Instant::now();
            match msg {
                Some(Msg::Stop) => break,
                Some(Msg::Host(b)) => {
                    self.transcript.bytes(Direction::FromHost, &b, now);
                    if self.clients == 0 {
                        // Bytes prove a client is there even if its open event is late.
                        self.assumed_open = true;
                    }
                    self.power_on(now);
                    if let Some(m) = self.modem.as_mut() {
                        m.feed(&b, now);
                    }
                }
                Some(Msg::Net(ev)) => {
                    if let Some(m) = self.modem.as_mut() {
                        m.handle_net(ev, now);
                    }
                }
                Some(Msg::Inject(f)) => match self.modem.as_mut() {
                    Some(m) => m.inject(f, now),
                    None => self.pending.push(f),
                },
                Some(Msg::Clear) => {
                    self.pending.clear();
                    if let Some(cfg) = self.config.as_mut() {
                        cfg.faults.clear();
                    }
                    if let Some(m) = self.modem.as_mut() {
                        m.clear_faults(now);
                    }
                }
                Some(Msg::ClientOpened) => {
                    self.clients += 1;
                    self.assumed_open = false;
                    self.transcript.note("client opened the port", now);
                    self.power_on(now);
                }
                Some(Msg::ClientClosed) => {
                    self.clients = self.clients.saturating_sub(1);
                    self.transcript.note("client closed the port", now);
                    if self.clients == 0 {
                        presence::release_exclusive(&self.slave);
                    }
                }
                Some(Msg::PresenceUnknown) => {
                    self.tracking = false;
                    self.transcript
                        .note("client tracking lost: output always written", now);
                    self.power_on(now);
                }
                None => {}
            }
            self.flush(now);
        }
        self.edge.shutdown();
        let now = Instant::now();
        self.transcript.flush(now);
        self.transcript.note("emulator stopped", now);
    }

    fn power_on(&mut self, now: Instant) {
        if let Some(cfg) = self.config.take() {
            self.transcript.note("module powered on", now);
            let mut m = Modem::new(cfg, now);
            for f in self.pending.drain(..) {
                m.inject(f, now);
            }
            self.modem = Some(m);
        }
    }

    fn flush(&mut self, now: Instant) {
        let Some(m) = self.modem.as_mut() else { return };
        m.poll(now);
        for n in m.take_notes() {
            self.transcript.note(&n, now);
        }
        for r in m.take_net_requests() {
            if let Some(n) = self.edge.handle(r) {
                self.transcript.note(&n, now);
            }
        }
        let out = m.take_output(now);
        if out.is_empty() {
            return;
        }
        if self.tracking && self.clients == 0 && !self.assumed_open {
            self.transcript.note(
                &format!("{} byte(s) lost: nobody has the port open", out.len()),
                now,
            );
            self.transcript.bytes(Direction::ToHost, &out, now);
            return;
        }
        self.transcript.bytes(Direction::ToHost, &out, now);
        let mut rest: &[u8] = &out;
        let deadline = now + Duration::from_secs(2);
        while !rest.is_empty() {
            match self.master.write(rest) {
                Ok(0) => break,
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::TimedOut && Instant::now() < deadline => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.transcript.note(
                        &format!(
                            "{} byte(s) lost: the client is not reading ({e})",
                            rest.len()
                        ),
                        Instant::now(),
                    );
                    break;
                }
            }
        }
        let _ = self.master.flush();
    }
}

/// Client presence on the pts device through inotify, and TIOCEXCL release.
mod presence {
    use super::Msg;
    use serialport::TTYPort;
    use std::ffi::CString;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::Sender;

    /// An inotify watch for open/close of one file.
    pub(super) struct Watch {
        fd: libc::c_int,
    }

    impl Watch {
        pub(super) fn new(path: &Path) -> io::Result<Watch> {
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::other("path contains NUL"))?;
            // SAFETY: plain syscalls on a fresh fd and a valid C string.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let w = Watch { fd };
            let mask = libc::IN_OPEN | libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE;
            // SAFETY: `fd` is our inotify fd, `c` a valid NUL-terminated path.
            let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) };
            if wd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(w)
        }

        pub(super) fn run(self, stop: &AtomicBool, tx: &Sender<Msg>) {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let mut pfd = libc::pollfd {
                    fd: self.fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut pfd, 1, 100) };
                if r <= 0 {
                    continue;
                }
                // SAFETY: reading into a buffer we own, of the given length.
                let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    continue;
                }
                let n = n as usize;
                let hdr = std::mem::size_of::<libc::inotify_event>();
                let mut at = 0;
                while at + hdr <= n {
                    // SAFETY: the kernel wrote a whole event header at `at`; read unaligned.
                    let ev: libc::inotify_event =
                        unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
                    at += hdr + ev.len as usize;
                    let msg = if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                        Msg::PresenceUnknown
                    } else if ev.mask & libc::IN_OPEN != 0 {
                        Msg::ClientOpened
                    } else if ev.mask & (libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE) != 0 {
                        Msg::ClientClosed
                    } else {
                        continue;
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            // SAFETY: closing the fd we own, once.
            unsafe {
                libc::close(self.fd);
            }
        }
    }

    /// Clear an exclusive-open flag a departed client left on the tty (serialport sets
    /// TIOCEXCL; the tty stays open through our own fd, so the flag would stay and block
    /// reopening for non-root users).
    pub(super) fn release_exclusive(slave: &TTYPort) {
        // SAFETY: ioctl without argument on a tty fd we own.
        unsafe {
            libc::ioctl(slave.as_raw_fd(), libc::TIOCNXCL);
        }
    }
}
