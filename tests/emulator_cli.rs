//! `sim7k emulate` end to end (in-process): link created and usable, SIGTERM stops it and
//! removes the link.

#[path = "emulator_client/mod.rs"]
mod client;

use std::time::{Duration, Instant};

use clap::Parser;
use client::{Client, Dir, show};
use sim7k::cli::emulate::{EmulateArgs, run};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EmulateArgs,
}

#[test]
fn emulate_serves_until_sigterm_and_removes_the_link() {
    let dir = Dir::new("cli");
    let link = dir.join("ttySIM7000");
    let log = dir.join("emu.log");
    let cli = Cli::try_parse_from([
        "emulate",
        "--link",
        link.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--imei",
        "490154203237518",
        "--boot",
        "fixed",
        "--fault",
        "error=CIICR:1",
    ])
    .unwrap();
    let server = std::thread::spawn(move || run(&cli.args));
    let end = Instant::now() + client::GUARD;
    while std::fs::symlink_metadata(&link).is_err() {
        assert!(Instant::now() < end, "hang guard: link never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    {
        let mut c = Client::open(&link);
        c.until(b"SMS Ready\r\n");
        c.send(b"AT+GSN\r");
        assert_eq!(
            show(&c.until(b"OK\r\n")),
            show(b"AT+GSN\r\r\n490154203237518\r\n\r\nOK\r\n")
        );
        c.send(b"AT+CSTT;+CIICR\r");
        assert_eq!(
            show(&c.until(b"ERROR\r\n")),
            show(b"AT+CSTT;+CIICR\r\r\nERROR\r\n")
        );
    }
    // SAFETY: raising a signal for which `run` installed a handler.
    unsafe {
        libc::raise(libc::SIGTERM);
    }
    let code = server.join().unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    let t = std::fs::read_to_string(&log).unwrap();
    assert!(t.contains("fault: ERROR for CIICR"), "{t}");
}

#[test]
fn emulate_refuses_to_replace_a_regular_file() {
    let dir = Dir::new("cli-file");
    let file = dir.join("not-a-link");
    std::fs::write(&file, b"keep me").unwrap();
    let cli = Cli::try_parse_from(["emulate", "--link", file.to_str().unwrap()]).unwrap();
    let code = run(&cli.args);
    assert_eq!(code, std::process::ExitCode::from(4));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}
