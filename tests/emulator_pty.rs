//! The emulator on a real pseudo-terminal, opened with the serialport crate, driving real TCP
//! connections to a local echo server.

#[path = "emulator_client/mod.rs"]
mod client;

use std::time::Duration;

use client::{Client, Dir, echo_server, show};
use sim7k::emulator::{BootMode, EmulatorConfig, Fault, PtyEmulator};

#[test]
fn complete_tcp_session_against_an_echo_server() {
    let dir = Dir::new("tcp");
    let link = dir.join("modem");
    let log = dir.join("emu.log");
    let emu = PtyEmulator::spawn(EmulatorConfig::default(), Some(&link), Some(&log)).unwrap();
    assert_eq!(emu.port_path(), link.as_path());
    assert!(std::fs::read_link(&link).unwrap().starts_with("/dev/pts"));
    let echo = echo_server();
    let mut c = Client::open(emu.port_path());

    // Autobaud: the first AT is echoed, answered, then the held start-up URCs arrive.
    c.send(b"AT\r");
    let o = c.until(b"SMS Ready\r\n");
    assert_eq!(
        show(&o),
        show(b"AT\r\r\nOK\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
    c.send(b"ATE0\r");
    assert_eq!(show(&c.until(b"OK\r\n")), show(b"ATE0\r\r\nOK\r\n"));
    c.expect("AT+CGSN", b"\r\n869951031234564\r\n\r\nOK\r\n");
    c.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    c.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
    c.expect("AT+CSTT=\"iot\"", b"\r\nOK\r\n");
    c.expect("AT+CIICR", b"\r\nOK\r\n");
    c.expect("AT+CIFSR;E0", b"\r\n10.64.23.17\r\n\r\nOK\r\n");
    c.expect(
        &format!("AT+CIPSTART=\"TCP\",\"127.0.0.1\",\"{}\"", echo.port()),
        b"\r\nOK\r\n",
    );
    assert_eq!(
        show(&c.until(b"CONNECT OK\r\n")),
        show(b"\r\nCONNECT OK\r\n")
    );

    // Fixed-length send of awkward bytes; the echo server sends them back, pushed raw.
    let payload: &[u8] = b"\x10\x1a\x1b\x00\r\n\xff";
    c.send(format!("AT+CIPSEND={}\r", payload.len()).as_bytes());
    assert_eq!(show(&c.take(4)), show(b"\r\n> "));
    c.send(payload);
    let mut want = b"\r\nSEND OK\r\n\r\n".to_vec();
    want.extend_from_slice(payload);
    assert_eq!(show(&c.take(want.len())), show(&want));

    // Variable-length send ends at Ctrl-Z.
    c.send(b"AT+CIPSEND\r");
    assert_eq!(show(&c.take(4)), show(b"\r\n> "));
    c.send(b"hello\x1a");
    assert_eq!(
        show(&c.take(b"\r\nSEND OK\r\n\r\nhello".len())),
        show(b"\r\nSEND OK\r\n\r\nhello")
    );
    c.expect("AT+CIPSTATUS", b"\r\nOK\r\n\r\nSTATE: CONNECT OK\r\n");
    c.expect("AT+CIPACK", b"\r\n+CIPACK: 12,12,0\r\n\r\nOK\r\n");
    c.expect("AT+CIPCLOSE", b"\r\nCLOSE OK\r\n");

    // Manual receive mode on a second connection.
    c.expect("AT+CIPRXGET=1", b"\r\nOK\r\n");
    c.expect(
        &format!("AT+CIPSTART=\"TCP\",\"localhost\",{}", echo.port()),
        b"\r\nOK\r\n",
    );
    c.until(b"CONNECT OK\r\n");
    c.send(b"AT+CIPSEND=11\r");
    c.take(4);
    c.send(b"HELLO WORLD");
    assert_eq!(
        show(&c.take(b"\r\nSEND OK\r\n\r\n+CIPRXGET: 1\r\n".len())),
        show(b"\r\nSEND OK\r\n\r\n+CIPRXGET: 1\r\n")
    );
    c.expect("AT+CIPRXGET=4", b"\r\n+CIPRXGET: 4,11\r\n\r\nOK\r\n");
    c.expect(
        "AT+CIPRXGET=2,5",
        b"\r\n+CIPRXGET: 2,5,6\r\nHELLO\r\nOK\r\n",
    );
    c.expect(
        "AT+CIPRXGET=3,100",
        b"\r\n+CIPRXGET: 3,6,0\r\n20574F524C44\r\nOK\r\n",
    );
    c.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
    c.pump(Duration::from_millis(200));
    assert!(c.buf.is_empty(), "nothing unsolicited: {}", show(&c.buf));
    drop(c);
    emu.stop();
    assert!(!link.exists(), "link removed on stop");

    // The transcript shows both directions, escaped, with notes.
    let t = std::fs::read_to_string(&log).unwrap();
    assert!(t.contains(" < AT+CIPSEND=7\\r"), "{t}");
    assert!(t.contains(" < \\x10\\x1a\\x1b\\x00\\r\\n\\xff"), "{t}");
    assert!(t.contains(" > \\r\\nSEND OK\\r\\n"), "{t}");
    assert!(t.contains(" # connect #1 to 127.0.0.1:"), "{t}");
    assert!(t.contains(" # emulator stopped"), "{t}");
    for line in t.lines() {
        let mut f = line.split_whitespace();
        let secs: f64 = f.next().unwrap().parse().unwrap();
        assert!(secs >= 0.0);
        assert!(matches!(f.next(), Some("<" | ">" | "#")), "{line}");
    }
}

#[test]
fn connect_fail_against_a_closed_port() {
    let emu = PtyEmulator::spawn(
        EmulatorConfig {
            echo: false,
            ..EmulatorConfig::default()
        },
        None,
        None,
    )
    .unwrap();
    let mut c = Client::open(emu.port_path());
    c.send(b"AT\r");
    c.until(b"SMS Ready\r\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    c.expect(
        &format!("AT+CIPSTART=\"TCP\",\"127.0.0.1\",{port}"),
        b"\r\nOK\r\n",
    );
    assert_eq!(
        show(&c.until(b"CONNECT FAIL\r\n")),
        show(b"\r\nSTATE: TCP CLOSED\r\n\r\nCONNECT FAIL\r\n")
    );
    c.expect("AT+CIPSTATUS", b"\r\nOK\r\n\r\nSTATE: TCP CLOSED\r\n");
}

#[test]
fn close_and_reopen_the_port() {
    let dir = Dir::new("reopen");
    let link = dir.join("ttySIM");
    let log = dir.join("t.log");
    let emu = PtyEmulator::spawn(
        EmulatorConfig {
            boot: BootMode::Fixed(115200),
            ..EmulatorConfig::default()
        },
        Some(&link),
        Some(&log),
    )
    .unwrap();
    {
        let mut c = Client::open(&link);
        // Fixed baud: the module powers on with the port and greets.
        assert_eq!(
            show(&c.until(b"SMS Ready\r\n")),
            show(b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
        );
        c.send(b"ATE0\r");
        c.until(b"OK\r\n");
    }
    // While nobody has the port open, what the module prints is lost (as on a real UART).
    // Wait until the emulator has noticed the close (it says so in its transcript).
    let end = std::time::Instant::now() + client::GUARD;
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("client closed the port")
    {
        assert!(
            std::time::Instant::now() < end,
            "hang guard: close never noticed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    emu.inject(Fault::Reboot {
        after: Duration::ZERO,
    });
    for round in 0..3 {
        let mut c = Client::open(&link);
        c.send(b"AT\r");
        let o = c.until(b"OK\r\n");
        // After the reboot echo is on again; nothing stale precedes the answer.
        assert_eq!(show(&o), show(b"AT\r\r\nOK\r\n"), "round {round}");
    }
    drop(emu);
    let t = std::fs::read_to_string(&log).unwrap();
    assert!(t.contains("client closed the port"), "{t}");
    assert!(t.contains("lost: nobody has the port open"), "{t}");
}

#[test]
fn exclusive_open_while_a_client_holds_the_port() {
    let emu = PtyEmulator::spawn(EmulatorConfig::default(), None, None).unwrap();
    let _c = Client::open(emu.port_path());
    let second = serialport::new(emu.port_path().to_string_lossy(), 115_200).open_native();
    assert!(second.is_err(), "a second client must not get the port");
}

#[test]
fn runtime_faults_through_the_handle() {
    let emu = PtyEmulator::spawn(
        EmulatorConfig {
            echo: false,
            ..EmulatorConfig::default()
        },
        None,
        None,
    )
    .unwrap();
    let echo = echo_server();
    let mut c = Client::open(emu.port_path());
    c.send(b"AT\r");
    c.until(b"SMS Ready\r\n");
    c.expect("AT+CSTT", b"\r\nOK\r\n");
    c.expect("AT+CIICR", b"\r\nOK\r\n");
    c.expect("AT+CIFSR", b"\r\n10.64.23.17\r\n");
    c.expect(
        &format!("AT+CIPSTART=\"TCP\",\"127.0.0.1\",{}", echo.port()),
        b"\r\nOK\r\n",
    );
    c.until(b"CONNECT OK\r\n");
    emu.inject(Fault::PeerClose {
        after: Duration::ZERO,
    });
    assert_eq!(show(&c.until(b"CLOSED\r\n")), show(b"\r\nCLOSED\r\n"));
    emu.inject("error=CSQ:1".parse().unwrap());
    emu.inject("drip=1ms".parse().unwrap());
    // Injection is asynchronous: the next command sees it.
    c.expect("AT+CSQ", b"\r\nERROR\r\n");
    c.expect("AT+CSQ", b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
    emu.inject("silent".parse().unwrap());
    c.send(b"AT\r");
    c.pump(Duration::from_millis(300));
    assert!(c.buf.is_empty(), "silent: {}", show(&c.buf));
    emu.clear_faults();
    c.expect("AT", b"\r\nOK\r\n");
    emu.inject(Fault::Reboot {
        after: Duration::ZERO,
    });
    c.send(b"AT\r");
    assert_eq!(
        show(&c.until(b"SMS Ready\r\n")),
        show(b"\r\nOK\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
}

#[test]
fn dripping_output_still_assembles() {
    let dir = Dir::new("drip");
    let log = dir.join("t.log");
    let emu = PtyEmulator::spawn(
        EmulatorConfig {
            faults: vec!["drip=1ms".parse().unwrap()],
            ..EmulatorConfig::default()
        },
        None,
        Some(&log),
    )
    .unwrap();
    let mut c = Client::open(emu.port_path());
    c.send(b"ATI\r");
    assert_eq!(
        show(&c.until(b"SMS Ready\r\n")),
        show(b"ATI\r\r\nSIM7000E R1351\r\n\r\nOK\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
    drop(emu);
    let t = std::fs::read_to_string(&log).unwrap();
    let out_lines: Vec<&str> = t.lines().filter(|l| l.contains(" > ")).collect();
    assert!(out_lines.len() > 20, "one transcript line per byte: {t}");
    assert!(out_lines.iter().all(|l| {
        let bytes = l.split(" > ").nth(1).unwrap();
        bytes.len() == 1 || bytes.starts_with('\\')
    }));
}
