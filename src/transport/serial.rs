//! Serial ports: `/dev/ttyUSB2`, a pseudo-terminal, a symlink to one.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{OpenError, Transport};

/// Most processes named as holding a busy port.
const MAX_HOLDERS: usize = 3;

/// A serial port (`/dev/ttyUSB2`, a pseudo-terminal, …) through the serialport crate.
pub struct SerialTransport {
    port: serialport::TTYPort,
    name: String,
}

impl SerialTransport {
    /// Open a serial device exclusively, 8N1, no flow control. Modem control lines are
    /// left alone (their ioctls fail on pseudo-terminals). A path that is no serial device
    /// is refused saying what it is; a port another program holds names that program.
    pub fn open(path: &str, baud: u32) -> Result<SerialTransport, OpenError> {
        check_path(path)?;
        let port = serialport::new(path, baud)
            .timeout(Duration::from_millis(100))
            .open_native()
            .map_err(|e| classify_open_error(path, e))?;
        Ok(SerialTransport {
            port,
            name: path.to_string(),
        })
    }
}

/// What the path is, before opening it: a missing path, or one that is no character device,
/// is refused with what it is.
fn check_path(path: &str) -> Result<(), OpenError> {
    let port = path.to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dangling = std::fs::symlink_metadata(path).is_ok();
            let reason = if dangling {
                format!("{e}; it is a symbolic link to a device that is gone: unplugged?")
            } else {
                format!("{e}; see `sim7k ports` for the serial ports of this machine")
            };
            return Err(OpenError::Missing { port, reason });
        }
        // Permission problems and the like: let the open say it.
        Err(_) => return Ok(()),
    };
    let t = meta.file_type();
    let what = if t.is_char_device() {
        return Ok(());
    } else if t.is_file() {
        "is a regular file, not a serial device".to_string()
    } else if t.is_dir() {
        "is a directory, not a serial device".to_string()
    } else if t.is_fifo() {
        "is a FIFO (named pipe), not a serial device".to_string()
    } else if t.is_socket() {
        "is a socket, not a serial device (for a modem behind ser2net give tcp://HOST:PORT)"
            .to_string()
    } else if t.is_block_device() {
        "is a block device (a disk), not a serial device".to_string()
    } else {
        "is not a serial device".to_string()
    };
    Err(OpenError::NotSerial { port, what })
}

pub(super) fn classify_open_error(path: &str, e: serialport::Error) -> OpenError {
    let reason = e.to_string();
    let port = path.to_string();
    match e.kind() {
        // serialport reports EBUSY (TIOCEXCL held) and a failed flock as `NoDevice`.
        serialport::ErrorKind::NoDevice => OpenError::Busy {
            holder: holders_of(Path::new(path)).unwrap_or(reason),
            port,
        },
        serialport::ErrorKind::Io(io::ErrorKind::NotFound) => OpenError::Missing { port, reason },
        serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => OpenError::Other {
            port,
            reason: format!("{reason}; is your user in the `dialout` group?"),
        },
        _ if reason.contains("Not a typewriter") || reason.contains("Inappropriate ioctl") => {
            OpenError::NotSerial {
                port,
                what: format!(
                    "is a character device that is not a serial port (it refuses terminal settings: {reason})"
                ),
            }
        }
        _ if reason.contains("No such device") || reason.contains("No such device or address") => {
            OpenError::Missing {
                port,
                reason: format!(
                    "{reason}; the device node is there but the device is not: unplugged?"
                ),
            }
        }
        _ => OpenError::Other { port, reason },
    }
}

/// The processes that have `device` open, as `pid 4242 (minicom)`, as
/// far as `/proc` tells (another user's processes are visible to root only).
fn holders_of(device: &Path) -> Option<String> {
    let target = std::fs::canonicalize(device).ok()?;
    let rdev = std::fs::metadata(&target).ok()?.rdev();
    let me = std::process::id();
    let mut found: Vec<String> = Vec::new();
    let mut more = 0usize;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !holds(&entry.path(), &target, rdev) {
            continue;
        }
        if pid == me {
            found.insert(
                0,
                format!("this sim7k run, pid {pid}: is the port given twice?"),
            );
            continue;
        }
        if found.len() >= MAX_HOLDERS {
            more += 1;
            continue;
        }
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let comm = crate::util::escape::shorten(comm.trim(), 40);
        found.push(format!("pid {pid} ({comm})"));
    }
    if found.is_empty() {
        return None;
    }
    let mut text = found.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    Some(text)
}

/// True when the process at `/proc/<pid>` has `target` open.
fn holds(proc_dir: &Path, target: &PathBuf, rdev: u64) -> bool {
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        let Ok(link) = std::fs::read_link(fd.path()) else {
            return false;
        };
        &link == target
            || (link.starts_with("/dev")
                && std::fs::metadata(fd.path())
                    .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == rdev))
    })
}

impl Transport for SerialTransport {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        use serialport::SerialPort;
        // A zero timeout polls without waiting (ppoll with a zero timespec).
        self.port.set_timeout(timeout).map_err(io::Error::other)?;
        match self.port.read(buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the port reported end of file",
            )),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        use serialport::SerialPort;
        let _ = self.port.set_timeout(Duration::from_secs(5));
        Write::write_all(&mut self.port, bytes)?;
        Write::flush(&mut self.port)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
