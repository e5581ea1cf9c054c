//! Property tests of the AT framer (`sim7k::at::Framer`): the same invariants as the
//! `at_framer` fuzz target, in the normal test run.
//!
//! * any chunking of a byte stream gives the same frames;
//! * random bytes never panic, and lines are never empty, never longer than `MAX_LINE`, never
//!   hold CR or LF;
//! * length-framed data (`+IPD`, `+CIPRXGET: 2`, `+RECEIVE`, pushed MQTT packets) and data
//!   echoes come out byte for byte, whatever bytes they carry.

use proptest::prelude::*;
use sim7k::at::framer::MAX_LINE;
use sim7k::at::{Frame, Framer};

/// Feed `input` in pieces whose sizes cycle through `chunks` (all ≥ 1).
fn frames(mut f: Framer, input: &[u8], chunks: &[usize]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < input.len() {
        let n = chunks
            .get(k % chunks.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        let end = (i + n).min(input.len());
        f.push(&input[i..end]);
        out.extend(std::iter::from_fn(|| f.next_frame()));
        i = end;
        k += 1;
    }
    out
}

fn framer(mqtt_push: bool) -> Framer {
    let mut f = Framer::new();
    f.set_mqtt_push(mqtt_push);
    f
}

fn line(s: &str) -> Frame {
    Frame::Line(s.as_bytes().to_vec())
}

/// Bytes that make the framer do something: line ends, headers, prompts, MQTT first bytes.
fn at_noise() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"OK".to_vec()),
        Just(b"> ".to_vec()),
        Just(b"+IPD,3:".to_vec()),
        Just(b"+IPD,0:".to_vec()),
        Just(b"+CIPRXGET: 2,4,0\r\n".to_vec()),
        Just(b"+CIPRXGET: 3,2,0\r\n".to_vec()),
        Just(b"+CIPRXGET: 2,0,3,0\r\n".to_vec()),
        Just(b"+RECEIVE,0,2:\r\n".to_vec()),
        Just(vec![0x20, 0x02, 0x00, 0x00]),
        Just(vec![0x30, 0x80, 0x80, 0x80, 0x80]),
        Just(vec![0xd0, 0x00]),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

/// A text line that is not a data header and does not start like an MQTT packet.
fn text_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-OQ-Z][A-Z0-9 ,.:]{0,30}",
        "\\+C[A-Z]{2,5}: [0-9,\"A-Z]{1,12}",
        Just("OK".to_string()),
        Just("SEND OK".to_string()),
    ]
}

fn line_end() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![Just(&b"\r\n"[..]), Just(&b"\r"[..]), Just(&b"\n"[..])]
}

/// One segment of modem output and the frames it must give.
#[derive(Debug, Clone)]
enum Segment {
    Line(String, &'static [u8]),
    Blank,
    Ipd(Vec<u8>),
    RxGet(Vec<u8>),
    Receive(Vec<u8>),
    RxGetHex(Vec<u8>),
}

impl Segment {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Segment::Line(s, end) => [s.as_bytes(), end].concat(),
            Segment::Blank => b"\r\n".to_vec(),
            Segment::Ipd(d) => [format!("+IPD,{}:", d.len()).as_bytes(), d].concat(),
            Segment::RxGet(d) => [
                format!("\r\n+CIPRXGET: 2,{},0\r\n", d.len()).as_bytes(),
                d,
                b"\r\nOK\r\n",
            ]
            .concat(),
            Segment::Receive(d) => [format!("+RECEIVE,0,{}:\r\n", d.len()).as_bytes(), d].concat(),
            Segment::RxGetHex(d) => {
                let hex: String = d.iter().map(|b| format!("{b:02X}")).collect();
                format!("+CIPRXGET: 3,{},0\r\n{hex}\r\nOK\r\n", d.len()).into_bytes()
            }
        }
    }

    fn frames(&self) -> Vec<Frame> {
        match self {
            Segment::Line(s, _) => vec![line(s)],
            Segment::Blank => vec![],
            Segment::Ipd(d) => vec![line(&format!("+IPD,{}:", d.len())), Frame::Data(d.clone())],
            Segment::RxGet(d) => vec![
                line(&format!("+CIPRXGET: 2,{},0", d.len())),
                Frame::Data(d.clone()),
                line("OK"),
            ],
            Segment::Receive(d) => vec![
                line(&format!("+RECEIVE,0,{}:", d.len())),
                Frame::Data(d.clone()),
            ],
            Segment::RxGetHex(d) => vec![
                line(&format!("+CIPRXGET: 3,{},0", d.len())),
                Frame::Data(d.clone()),
                line("OK"),
            ],
        }
    }
}

fn segment() -> impl Strategy<Value = Segment> {
    let data = prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        4 => (text_line(), line_end()).prop_map(|(s, e)| Segment::Line(s, e)),
        1 => Just(Segment::Blank),
        2 => data.clone().prop_map(Segment::Ipd),
        2 => data.clone().prop_map(Segment::RxGet),
        2 => data.prop_map(Segment::Receive),
        1 => prop::collection::vec(any::<u8>(), 1..200).prop_map(Segment::RxGetHex),
    ]
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..80, 1..12)
}

fn check_lines(frames: &[Frame]) -> Result<(), TestCaseError> {
    for f in frames {
        if let Frame::Line(l) = f {
            prop_assert!(!l.is_empty(), "empty line");
            prop_assert!(l.len() <= MAX_LINE, "line of {} bytes", l.len());
            prop_assert!(
                !l.contains(&b'\r') && !l.contains(&b'\n'),
                "CR or LF in line {:?}",
                l
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes, and bytes full of AT tokens: no panic, the same frames however the
    /// stream is cut, clean lines, never more bytes out than in.
    #[test]
    fn any_chunking_gives_the_same_frames(
        random in prop::collection::vec(any::<u8>(), 0..600),
        noise in at_noise(),
        mqtt_push: bool,
        prompt: bool,
        cut in chunks(),
    ) {
        for input in [random, noise] {
            let make = || {
                let mut f = framer(mqtt_push);
                f.expect_prompt(prompt);
                f
            };
            let whole = frames(make(), &input, &[input.len().max(1)]);
            let drip = frames(make(), &input, &[1]);
            let cut_up = frames(make(), &input, &cut);
            prop_assert_eq!(&whole, &drip);
            prop_assert_eq!(&whole, &cut_up);
            check_lines(&whole)?;
            let out: usize = whole
                .iter()
                .map(|f| match f {
                    Frame::Line(b) | Frame::Data(b) | Frame::Echo(b) => b.len(),
                    Frame::Prompt => 1,
                    Frame::Garbled(_) => 0,
                })
                .sum();
            prop_assert!(out <= input.len());
        }
    }

    /// Lines and length-framed data blocks carrying any bytes (CR, LF, `OK`, NUL, 0x1A...):
    /// every block comes out whole, and every line as sent.
    #[test]
    fn framed_data_is_preserved(segments in prop::collection::vec(segment(), 0..12), cut in chunks()) {
        let input: Vec<u8> = segments.iter().flat_map(Segment::bytes).collect();
        let expected: Vec<Frame> = segments.iter().flat_map(Segment::frames).collect();
        prop_assert_eq!(frames(framer(false), &input, &cut), expected);
    }

    /// Pushed MQTT packets (`AT+CIPRXGET=0`, no header) between result lines come out as one
    /// data frame each, payload bytes untouched (payloads without CR: nothing in them can be
    /// a block break, see `pushed_packets_are_intact_or_reported` for the rest).
    #[test]
    fn pushed_mqtt_packets_are_preserved(
        items in prop::collection::vec(
            prop_oneof![
                ("[A-OQ-Z+][A-Z ]{0,20}", line_end()).prop_map(|(s, e)| Err((s, e))),
                ("[a-z/]{1,20}", prop::collection::vec(any::<u8>().prop_filter("no CR", |b| *b != b'\r'), 0..400))
                    .prop_map(|(topic, payload)| Ok((topic, payload))),
            ],
            0..10,
        ),
        cut in chunks(),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for item in items {
            match item {
                Err((text, end)) => {
                    input.extend_from_slice(text.as_bytes());
                    input.extend_from_slice(end);
                    expected.push(line(&text));
                }
                Ok((topic, payload)) => {
                    let packet = sim7k::mqtt::Packet::Publish(sim7k::mqtt::Publish::new(topic, payload))
                        .encode(sim7k::mqtt::Protocol::V311)
                        .expect("valid PUBLISH");
                    // The module writes each block of pushed data after a line break.
                    input.extend_from_slice(b"\r\n");
                    input.extend_from_slice(&packet);
                    expected.push(Frame::Data(packet));
                }
            }
        }
        prop_assert_eq!(frames(framer(true), &input, &cut), expected);
    }

    /// Data written after a prompt and echoed back (ATE1) is one echo frame, whatever it holds.
    #[test]
    fn data_echo_is_preserved(payload in prop::collection::vec(any::<u8>(), 1..500), cut in chunks()) {
        let mut f = Framer::new();
        f.expect_prompt(true);
        let mut got = frames(f, b"AT+CIPSEND=9\r\r\n> ", &[64]);
        prop_assert_eq!(&got, &vec![line("AT+CIPSEND=9"), Frame::Prompt]);
        let mut f = Framer::new();
        f.open_echo(payload.clone().into(), 0..payload.len());
        let input = [payload.as_slice(), b"\r\nSEND OK\r\n"].concat();
        got = frames(f, &input, &cut);
        prop_assert_eq!(got, vec![Frame::Echo(payload), line("SEND OK")]);
    }

    /// Issue 10 point 11: whatever the echo of typed data does (drops control bytes, stops
    /// early, is interrupted by a URC), no payload line is ever a modem line: the lines out
    /// are the URC and the real result only (the result may be swallowed only when the echo
    /// stopped exactly before a payload line spelling the same result: a timeout, never a
    /// false pass).
    #[test]
    fn payload_echo_is_never_a_modem_line(
        lines in prop::collection::vec(prop_oneof![
            Just("SEND OK".to_string()),
            Just("+PDP: DEACT".to_string()),
            Just("CLOSED".to_string()),
            Just("ERROR".to_string()),
            "[a-z ]{1,12}",
        ], 1..6),
        binary in prop::collection::vec(any::<u8>(), 0..6),
        drop_controls: bool,
        stop in any::<prop::sample::Index>(),
        urc_at in any::<prop::sample::Index>(),
        with_urc: bool,
        result in prop_oneof![Just("SEND OK"), Just("SEND FAIL")],
        cut in chunks(),
    ) {
        let mut payload = binary.clone();
        for l in &lines {
            payload.extend_from_slice(l.as_bytes());
            payload.extend_from_slice(b"\r\n");
        }
        let mut echo: Vec<u8> = if drop_controls {
            payload.iter().copied().filter(|b| (0x20..0x7f).contains(b)).collect()
        } else {
            payload.clone()
        };
        echo.truncate(stop.index(echo.len() + 1));
        if with_urc {
            let at = urc_at.index(echo.len() + 1);
            echo.splice(at..at, b"\r\n+CIPRXGET: 1\r\n".iter().copied());
        }
        let mut input = echo;
        input.extend_from_slice(format!("\r\n{result}\r\n").as_bytes());
        let mut f = Framer::new();
        f.open_echo(payload.clone().into(), 0..payload.len());
        let got: Vec<String> = frames(f, &input, &cut)
            .into_iter()
            .filter_map(|fr| match fr {
                Frame::Line(l) => Some(String::from_utf8_lossy(&l).into_owned()),
                _ => None,
            })
            .collect();
        for l in &got {
            prop_assert!(l == result || l == "+CIPRXGET: 1", "payload read as a line: {l:?} in {got:?}");
        }
        if !lines.iter().any(|l| l.starts_with("SEND")) {
            prop_assert!(got.iter().any(|l| l == result), "result lost: {got:?}");
        }
    }

    /// Issue 10 point 10: packets pushed raw as the module does (CR LF + blocks of at most
    /// 1460 bytes, cut anywhere by network reads, URC lines between blocks), whatever their
    /// payload: every data frame before a `Garbled` report is the next packet, byte for
    /// byte. Nothing corrupted is ever delivered.
    #[test]
    fn pushed_packets_are_intact_or_reported(
        packets in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..3000),
                prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), Just(0x30u8)], 0..40),
            ],
            1..4,
        ),
        splits in prop::collection::vec(1usize..1461, 1..8),
        urcs in prop::collection::vec(any::<bool>(), 8),
        cut in chunks(),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let mut k = 0;
        for payload in packets {
            let packet = sim7k::mqtt::Packet::Publish(sim7k::mqtt::Publish::new("t/x", payload))
                .encode(sim7k::mqtt::Protocol::V311)
                .expect("valid PUBLISH");
            let mut at = 0;
            while at < packet.len() {
                let n = splits[k % splits.len()].min(packet.len() - at);
                if urcs[k % urcs.len()] {
                    input.extend_from_slice(b"\r\nDST: 1\r\n");
                }
                input.extend_from_slice(b"\r\n");
                input.extend_from_slice(&packet[at..at + n]);
                at += n;
                k += 1;
            }
            expected.push(packet);
        }
        input.extend_from_slice(b"\r\nOK\r\n");
        let got = frames(framer(true), &input, &cut);
        let mut delivered = Vec::new();
        for f in got {
            match f {
                Frame::Data(d) => delivered.push(d),
                Frame::Garbled(_) => break,
                _ => {}
            }
        }
        prop_assert!(delivered.len() <= expected.len());
        for (d, e) in delivered.iter().zip(&expected) {
            prop_assert_eq!(d, e);
        }
    }
}
