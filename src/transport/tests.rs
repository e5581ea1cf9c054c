//! Transport tests on real pseudo-terminals, files and sockets.

use super::*;
use serialport::SerialPort;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

/// Read with a zero timeout until bytes come (hang guard: a few seconds of retries).
fn poll_until_bytes(t: &mut dyn Transport) -> Vec<u8> {
    let mut buf = [0u8; 64];
    for _ in 0..500 {
        match t.read_timeout(&mut buf, Duration::ZERO) {
            Ok(0) => std::thread::sleep(Duration::from_millis(10)),
            Ok(n) => return buf[..n].to_vec(),
            Err(e) => panic!("zero-timeout read failed: {e}"),
        }
    }
    panic!("no bytes arrived");
}

#[test]
fn tcp_zero_timeout_polls_and_blocking_reads_still_work() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut t = TcpTransport::connect(&addr).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    // Nothing there: no error (std refuses a zero read timeout), no bytes.
    assert_eq!(t.read_timeout(&mut buf, Duration::ZERO).unwrap(), 0);
    peer.write_all(b"OK\r\n").unwrap();
    assert_eq!(poll_until_bytes(&mut t), b"OK\r\n");
    // The socket is blocking again: a timed read waits for the next bytes.
    peer.write_all(b"RDY\r\n").unwrap();
    let n = t.read_timeout(&mut buf, Duration::from_secs(10)).unwrap();
    assert_eq!(&buf[..n], b"RDY\r\n");
    drop(peer);
    let mut closed = false;
    for _ in 0..500 {
        match t.read_timeout(&mut buf, Duration::ZERO) {
            Ok(0) => std::thread::sleep(Duration::from_millis(10)),
            Ok(_) => panic!("bytes after close"),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the closed connection was not reported");
}

#[test]
fn serial_zero_timeout_polls() {
    let (mut master, slave) = serialport::TTYPort::pair().unwrap();
    let name = slave.name().unwrap();
    drop(slave);
    let mut t = SerialTransport::open(&name, 115_200).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(t.read_timeout(&mut buf, Duration::ZERO).unwrap(), 0);
    master.write_all(b"OK\r\n").unwrap();
    assert_eq!(poll_until_bytes(&mut t), b"OK\r\n");
}

fn open_error(path: &str) -> String {
    match SerialTransport::open(path, 115_200) {
        Ok(_) => panic!("{path} opened"),
        Err(e) => e.to_string(),
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sim7k-transport-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Regression (issue 10 point 19): a regular file, a FIFO and `/dev/null` were "Not a
/// typewriter".
#[test]
fn paths_that_cannot_be_a_modem_say_what_they_are() {
    let d = temp("kinds");
    let file = d.join("ttyUSB0");
    std::fs::write(&file, "").unwrap();
    let e = open_error(file.to_str().unwrap());
    assert!(
        e.contains(": is a regular file, not a serial device"),
        "{e}"
    );
    assert!(e.contains("sim7k ports"), "{e}");
    let fifo = d.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let e = open_error(fifo.to_str().unwrap());
    assert!(
        e.contains("is a FIFO (named pipe), not a serial device"),
        "{e}"
    );
    let e = open_error(d.to_str().unwrap());
    assert!(e.contains("is a directory, not a serial device"), "{e}");
    let e = open_error("/dev/null");
    assert!(
        e.contains("/dev/null: is a character device that is not a serial port"),
        "{e}"
    );
    assert!(!e.starts_with("cannot open"), "{e}");
    let e = open_error(d.join("ttyUSB9").to_str().unwrap());
    assert!(e.contains("no such port"), "{e}");
    let link = d.join("by-id");
    std::os::unix::fs::symlink("/dev/ttyNOPE-sim7k", &link).unwrap();
    let e = open_error(link.to_str().unwrap());
    assert!(e.contains("no such port") && e.contains("unplugged"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Regression (issue 10 point 19): a busy port was "no such port".
#[test]
fn a_busy_port_is_in_use_not_missing() {
    let (_master, slave) = serialport::TTYPort::pair().unwrap();
    let name = slave.name().unwrap();
    drop(slave);
    let _first = SerialTransport::open(&name, 115_200).unwrap();
    let e = open_error(&name);
    assert!(e.contains("is in use by another program"), "{e}");
    assert!(!e.contains("no such port"), "{e}");
    // This process holds it: said so.
    assert!(e.contains("this sim7k run"), "{e}");
}

/// Regression (issue 11 point 15): the connect timeout (10 s) ignored a shorter deadline.
#[test]
fn the_tcp_connect_ends_by_the_deadline() {
    // A listener whose accept queue is full: further connects get no answer.
    // SAFETY: plain socket calls on a descriptor this test owns and closes.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_in of `len` bytes.
    let bound = unsafe { libc::bind(fd, (&raw const addr).cast(), len) };
    assert_eq!(bound, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
    let mut got: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut got_len = len;
    // SAFETY: `got` has room for `got_len` bytes.
    let r = unsafe { libc::getsockname(fd, (&raw mut got).cast(), &mut got_len) };
    assert_eq!(r, 0);
    let port = u16::from_be(got.sin_port);
    let target = format!("127.0.0.1:{port}");
    // Fill the queue until a connect gets no answer.
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(
            &target.parse().unwrap(),
            Duration::from_millis(300),
        ) {
            Ok(s) => held.push(s),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    if !full {
        eprintln!("skipped: this kernel answers every connect (syncookies?)");
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
        return;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_millis(500);
    let e = match TcpTransport::connect_by(&target, Some(deadline)) {
        Ok(_) => panic!("connected to a full queue"),
        Err(e) => e.to_string(),
    };
    let took = started.elapsed();
    assert!(
        e.contains("no answer within 500ms (the run's deadline)"),
        "{e}"
    );
    // Far below the 10 s connect timeout it used to wait (not a timing measurement).
    assert!(took < CONNECT_TIMEOUT - Duration::from_secs(2), "{took:?}");
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    drop(held);
}

#[test]
fn a_refused_tcp_port_is_missing_and_says_what_to_check() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let e = match open(&format!("tcp://{addr}"), 115_200, None) {
        Ok(_) => panic!("connected"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("no such port") && e.contains("ser2net"), "{e}");
    let _ = Path::new("");
}
