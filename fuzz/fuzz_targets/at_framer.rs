//! Arbitrary modem output into the AT framer.
//!
//! Input: `[seed, flags, echo_len, bytes...]`. `flags` bit 0 turns on MQTT push framing, bit 1
//! expects a `> ` prompt, bit 2 expects the first `echo_len` bytes back as a data echo. The
//! bytes go through three framers: whole, in pseudo-random chunks of 1–16 bytes (seeded by
//! `seed`), and one byte at a time; all three must give the same frames. Every line is
//! non-empty, at most `MAX_LINE` bytes, without CR or LF; the frames never hold more bytes
//! than went in; the partial line stays bounded. With MQTT push framing on, pushed packets
//! go through the block-framing reassembler (`sim7k::at::push`), which may also report a
//! packet it cannot prove intact (`Frame::Garbled`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim7k::at::framer::MAX_LINE;
use sim7k::at::{Frame, Framer};

fn framer(flags: u8, echo: &[u8]) -> Framer {
    let mut f = Framer::new();
    f.set_mqtt_push(flags & 1 != 0);
    if flags & 2 != 0 {
        f.expect_prompt(true);
    }
    if flags & 4 != 0 {
        f.open_echo(echo.to_vec().into(), 0..echo.len());
    }
    f
}

fn drain(f: &mut Framer, out: &mut Vec<Frame>) {
    while let Some(frame) = f.next_frame() {
        out.push(frame);
    }
    assert!(
        f.partial_line().len() < MAX_LINE,
        "partial line past MAX_LINE"
    );
}

fuzz_target!(|data: &[u8]| {
    let [seed, flags, echo_len, bytes @ ..] = data else {
        return;
    };
    let echo = &bytes[..usize::from(*echo_len).min(bytes.len())];

    let mut whole = Vec::new();
    let mut f = framer(*flags, echo);
    f.push(bytes);
    drain(&mut f, &mut whole);

    let mut chunked = Vec::new();
    let mut f = framer(*flags, echo);
    let mut state = u32::from(*seed) | 1;
    let mut i = 0;
    while i < bytes.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + (state % 16) as usize).min(bytes.len() - i);
        f.push(&bytes[i..i + n]);
        drain(&mut f, &mut chunked);
        i += n;
    }
    assert_eq!(whole, chunked, "whole vs chunked");

    let mut drip = Vec::new();
    let mut f = framer(*flags, echo);
    for b in bytes {
        f.push(std::slice::from_ref(b));
        drain(&mut f, &mut drip);
    }
    assert_eq!(whole, drip, "whole vs one byte at a time");

    let mut total = 0;
    for frame in &whole {
        match frame {
            Frame::Line(l) => {
                assert!(!l.is_empty(), "empty line");
                assert!(l.len() <= MAX_LINE, "line of {} bytes", l.len());
                assert!(!l.contains(&b'\r') && !l.contains(&b'\n'), "CR/LF in {l:?}");
                total += l.len();
            }
            Frame::Data(d) | Frame::Echo(d) => total += d.len(),
            Frame::Prompt => total += 1,
            Frame::Garbled(_) => {}
        }
    }
    assert!(
        total <= bytes.len(),
        "{total} bytes of frames from {} bytes",
        bytes.len()
    );
});
