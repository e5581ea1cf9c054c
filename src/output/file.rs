//! Opening and writing output files.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::check::{describe, resolve};

/// Open a streamed output (a transcript, a log) for writing: a regular file is created (with
/// its missing parent directories) or truncated, through a symlink to its target; a
/// character device (`/dev/stderr`) is written as it is; a FIFO is written as it is when a
/// program reads it (else an error: sim7k does not wait for a reader). Anything else (a
/// directory, a block device, a socket) is refused.
pub fn open_stream(path: &Path) -> io::Result<File> {
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_fifo() => open_fifo(path),
        Ok(m) if m.file_type().is_char_device() => OpenOptions::new().write(true).open(path),
        Ok(m) if !m.is_file() => Err(io::Error::other(format!(
            "{}; a transcript is written to a regular file, a character device or a FIFO",
            describe(m.file_type())
        ))),
        _ => {
            create_parent(path)?;
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
        }
    }
}

/// Open a FIFO for writing without blocking when nobody reads it, then make writes
/// blocking again (a slow reader slows the run down rather than losing lines).
fn open_fifo(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                io::Error::other("a FIFO that no program reads (start the reader first)")
            } else {
                e
            }
        })?;
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a file descriptor this function owns (through `file`); F_GETFL and
    // F_SETFL take and return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// True when `file` is a regular file (`fsync` means something for it; a terminal or a
/// pipe refuses it).
pub fn is_regular(file: &File) -> bool {
    file.metadata().is_ok_and(|m| m.is_file())
}

/// Make what was written to `file` durable: `fsync` for a regular file, nothing for a
/// device or a FIFO.
pub fn sync(file: &File) -> io::Result<()> {
    if is_regular(file) {
        file.sync_data()
    } else {
        Ok(())
    }
}

/// Tells temporary files of one process apart.
static TEMP_SEQ: AtomicU32 = AtomicU32::new(0);

/// Replace the file at `path` with `contents`, atomically: written and fsynced to a
/// temporary file in the target's directory, then renamed over the target (and the
/// directory fsynced). A symlink is written through: its target is replaced, the link stays.
/// An existing target keeps its permissions. A target that exists and is not a regular file
/// (a FIFO, a device, a directory) is refused, never replaced.
pub fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let target = target_of(path)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} is not a file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let permissions = std::fs::metadata(&target).ok().map(|m| m.permissions());
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Some(p) = permissions {
            f.set_permissions(p)?;
        }
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)?;
        if let Ok(d) = File::open(&dir) {
            // Some file systems refuse to fsync a directory; the rename is done either way.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The file a replace of `path` lands on: a symlink's (final) target; refused when that
/// exists and is not a regular file.
fn target_of(path: &Path) -> io::Result<PathBuf> {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let target = if is_link {
        resolve(path)
    } else {
        path.to_path_buf()
    };
    match std::fs::metadata(&target) {
        Ok(m) if !m.is_file() => Err(io::Error::other(format!(
            "{} {}; it is never replaced",
            target.display(),
            describe(m.file_type())
        ))),
        _ => Ok(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sim7k-outfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replace_writes_through_a_symlink_and_keeps_permissions() {
        let d = dir("replace");
        let real = d.join("real.csv");
        std::fs::write(&real, "old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.join("link.csv");
        symlink("real.csv", &link).unwrap();
        replace(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // A dangling symlink: its target is created.
        let dangling = d.join("dangling.xml");
        symlink("sub/made.xml", &dangling).unwrap();
        replace(&dangling, b"<x/>").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("sub/made.xml")).unwrap(),
            "<x/>"
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replace_refuses_a_device_behind_a_link() {
        let d = dir("device");
        let link = d.join("full.csv");
        symlink("/dev/full", &link).unwrap();
        let e = replace(&link, b"x").unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let e = replace(Path::new("/dev/full"), b"x").unwrap_err();
        assert!(e.to_string().contains("never replaced"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn streams_open_devices_and_fifos_with_a_reader() {
        let d = dir("stream");
        let f = open_stream(&d.join("new/t.log")).unwrap();
        assert!(is_regular(&f));
        let null = open_stream(Path::new("/dev/null")).unwrap();
        assert!(!is_regular(&null));
        sync(&null).unwrap();
        let fifo = d.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Nobody reads: an error at once, no hang.
        let e = open_stream(&fifo).unwrap_err();
        assert!(e.to_string().contains("no program reads"), "{e}");
        // With a reader: written as it is.
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut w = open_stream(&fifo).unwrap();
        w.write_all(b"line\n").unwrap();
        let mut buf = [0u8; 16];
        let n = reader.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"line\n");
        assert!(open_stream(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
