//! Framer tests.

use super::*;

fn frames(f: &mut Framer) -> Vec<Frame> {
    std::iter::from_fn(|| f.next_frame()).collect()
}

fn line(s: &str) -> Frame {
    Frame::Line(s.as_bytes().to_vec())
}

#[test]
fn lines_with_echo_and_empty_lines() {
    let mut f = Framer::new();
    f.push(b"AT+CSQ\r\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
    assert_eq!(
        frames(&mut f),
        vec![line("AT+CSQ"), line("+CSQ: 24,99"), line("OK")]
    );
}

#[test]
fn one_byte_at_a_time_gives_the_same_frames() {
    let input = b"\r\n+CIPRXGET: 2,5,0\r\nhe\r\nl\r\nOK\r\n+IPD,3:\x00\x1a\rDST: 1\r\n";
    let mut whole = Framer::new();
    whole.push(input);
    let mut drip = Framer::new();
    let mut got = Vec::new();
    for b in input {
        drip.push(&[*b]);
        got.extend(frames(&mut drip));
    }
    let expected = vec![
        line("+CIPRXGET: 2,5,0"),
        Frame::Data(b"he\r\nl".to_vec()),
        line("OK"),
        line("+IPD,3:"),
        Frame::Data(vec![0, 0x1a, b'\r']),
        line("DST: 1"),
    ];
    assert_eq!(frames(&mut whole), expected);
    assert_eq!(got, expected);
}

#[test]
fn prompt_only_when_expected() {
    let mut f = Framer::new();
    f.push(b"\r\n> ");
    assert!(frames(&mut f).is_empty());
    assert_eq!(f.partial_line(), b"> ");
    let mut f = Framer::new();
    f.expect_prompt(true);
    f.push(b"AT+CIPSEND=3\r\r\n> ");
    assert_eq!(frames(&mut f), vec![line("AT+CIPSEND=3"), Frame::Prompt]);
    assert!(!f.prompt_expected());
    // The space after '>' is swallowed even when it arrives later; then a data echo.
    let mut f = Framer::new();
    f.expect_prompt(true);
    f.push(b"\r\n>");
    assert_eq!(frames(&mut f), vec![Frame::Prompt]);
    f.open_echo(b"\x1a\r\nA".to_vec().into(), 0..4);
    f.push(b" \x1a\r\nA\r\nSEND OK\r\n");
    assert_eq!(
        frames(&mut f),
        vec![Frame::Echo(b"\x1a\r\nA".to_vec()), line("SEND OK")]
    );
}

#[test]
fn echo_mismatch_falls_back_to_lines() {
    let mut f = Framer::new();
    f.open_echo(b"xyz".to_vec().into(), 0..3);
    f.push(b"\r\nSEND OK\r\n");
    assert_eq!(frames(&mut f), vec![line("SEND OK")]);
    // A partial echo followed by other output is reported, then framing resumes.
    let mut f = Framer::new();
    f.open_echo(b"abcd".to_vec().into(), 0..4);
    f.push(b"ab\r\nSEND FAIL\r\n");
    assert_eq!(
        frames(&mut f),
        vec![Frame::Echo(b"ab".to_vec()), line("SEND FAIL")]
    );
}

#[test]
fn receive_headers() {
    let mut f = Framer::new();
    f.push(b"+RECEIVE,0,4:\r\n\r\nab\r\nOK\r\n");
    assert_eq!(
        frames(&mut f),
        vec![
            line("+RECEIVE,0,4:"),
            Frame::Data(b"\r\nab".to_vec()),
            line("OK")
        ]
    );
    let mut f = Framer::new();
    f.push(b"+CIPRXGET: 3,2,0\r\n0A1B\r\nOK\r\n");
    assert_eq!(
        frames(&mut f),
        vec![
            line("+CIPRXGET: 3,2,0"),
            Frame::Data(vec![0x0a, 0x1b]),
            line("OK")
        ]
    );
    // Multi-connection form of mode 2, and a zero-length read.
    let mut f = Framer::new();
    f.push(b"+CIPRXGET: 2,0,2,0\r\nhi\r\nOK\r\n+CIPRXGET: 2,0,0\r\nOK\r\n");
    assert_eq!(
        frames(&mut f),
        vec![
            line("+CIPRXGET: 2,0,2,0"),
            Frame::Data(b"hi".to_vec()),
            line("OK"),
            line("+CIPRXGET: 2,0,0"),
            Frame::Data(Vec::new()),
            line("OK"),
        ]
    );
}

#[test]
fn garbage_is_bounded() {
    let mut f = Framer::new();
    f.push(&vec![b'x'; MAX_LINE * 2 + 5]);
    let got = frames(&mut f);
    assert_eq!(got.len(), 2);
    assert_eq!(f.partial_line().len(), 5);
    // An absurd +IPD length is not taken as a header.
    let mut f = Framer::new();
    f.push(b"+IPD,99999999999:abc\r\n");
    assert_eq!(frames(&mut f), vec![line("+IPD,99999999999:abc")]);
}

#[test]
fn pushed_mqtt_packets_are_framed_by_length() {
    let mut input = b"\r\nSEND OK\r\n\r\n".to_vec();
    input.extend_from_slice(&[0x20, 0x02, 0x00, 0x00]);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&[
        0x30, 0x09, 0x00, 0x03, b'a', b'/', b'b', b'h', b'\r', b'\n', b'i',
    ]);
    input.extend_from_slice(b"\r\nCLOSED\r\n");
    for drip in [false, true] {
        let mut f = Framer::new();
        f.set_mqtt_push(true);
        let mut got = Vec::new();
        if drip {
            for b in &input {
                f.push(&[*b]);
                got.extend(frames(&mut f));
            }
        } else {
            f.push(&input);
            got = frames(&mut f);
        }
        assert_eq!(
            got,
            vec![
                line("SEND OK"),
                Frame::Data(vec![0x20, 0x02, 0x00, 0x00]),
                Frame::Data(vec![
                    0x30, 0x09, 0x00, 0x03, b'a', b'/', b'b', b'h', b'\r', b'\n', b'i'
                ]),
                line("CLOSED"),
            ]
        );
    }
    // PINGRESP has remaining length 0.
    let mut f = Framer::new();
    f.set_mqtt_push(true);
    f.push(&[0xd0, 0x00]);
    assert_eq!(frames(&mut f), vec![Frame::Data(vec![0xd0, 0x00])]);
}

#[test]
fn implausible_mqtt_starts_are_lines() {
    let mut f = Framer::new();
    f.set_mqtt_push(true);
    // '1' is a PUBLISH first byte, '0' a length of 48, but ".6" is no topic length.
    f.push(b"10.64.12.7\r\n\r\nOK\r\n");
    assert_eq!(frames(&mut f), vec![line("10.64.12.7"), line("OK")]);
    // A space is CONNACK's first byte, but `  x` has no plausible length.
    f.push(b" 3x\r\n");
    assert_eq!(frames(&mut f), vec![line(" 3x")]);
}

#[test]
fn rxget_header_with_an_address() {
    let mut f = Framer::new();
    f.push(b"+CIPRXGET: 2,2,0,\"1.2.3.4:1883\"\r\nhi\r\nOK\r\n");
    assert_eq!(
        frames(&mut f),
        vec![
            line("+CIPRXGET: 2,2,0,\"1.2.3.4:1883\""),
            Frame::Data(b"hi".to_vec()),
            line("OK")
        ]
    );
}

#[test]
fn lone_cr_and_lf_end_lines() {
    let mut f = Framer::new();
    f.push(b"0\rRING\nOK\r\n");
    assert_eq!(frames(&mut f), vec![line("0"), line("RING"), line("OK")]);
}

/// Issue 10 point 11: payload bytes are never modem lines, whatever the echo does.
fn echoed(payload: &[u8], modem: &[u8]) -> Vec<Frame> {
    let mut f = Framer::new();
    f.expect_prompt(true);
    f.push(b"\r\n> ");
    assert_eq!(frames(&mut f), vec![Frame::Prompt]);
    f.open_echo(payload.to_vec().into(), 0..payload.len());
    let mut got = Vec::new();
    for b in modem {
        f.push(&[*b]);
        got.extend(frames(&mut f));
    }
    f.clear_echo();
    got.extend(frames(&mut f));
    got
}

fn lines_of(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Line(l) => Some(String::from_utf8_lossy(l).into_owned()),
            _ => None,
        })
        .collect()
}

const TRICKY: &[u8] = b"abc\r\nSEND OK\r\n+PDP: DEACT\r\nxyz";

#[test]
fn a_full_echo_of_a_payload_holding_result_lines_is_echo() {
    let mut modem = TRICKY.to_vec();
    modem.extend_from_slice(b"\r\nSEND OK\r\n");
    let got = echoed(TRICKY, &modem);
    assert_eq!(lines_of(&got), vec!["SEND OK"]);
    assert_eq!(got.first(), Some(&Frame::Echo(TRICKY.to_vec())));
}

#[test]
fn an_echo_that_stops_early_then_the_result() {
    let mut modem = b"ab".to_vec();
    modem.extend_from_slice(b"\r\nSEND OK\r\n");
    assert_eq!(lines_of(&echoed(TRICKY, &modem)), vec!["SEND OK"]);
    // Stopping after the payload's first line: its `SEND OK` never came.
    let mut modem = b"abc\r\n".to_vec();
    modem.extend_from_slice(b"\r\nSEND FAIL\r\n");
    assert_eq!(lines_of(&echoed(TRICKY, &modem)), vec!["SEND FAIL"]);
}

#[test]
fn an_echo_interrupted_by_a_urc() {
    let mut modem = b"abc\r\nSE".to_vec();
    modem.extend_from_slice(b"\r\n+CIPRXGET: 1\r\n");
    modem.extend_from_slice(b"ND OK\r\n+PDP: DEACT\r\nxyz");
    modem.extend_from_slice(b"\r\nSEND OK\r\n");
    assert_eq!(
        lines_of(&echoed(TRICKY, &modem)),
        vec!["+CIPRXGET: 1", "SEND OK"]
    );
}

#[test]
fn an_echo_without_control_bytes_or_with_altered_text() {
    // Controls dropped (firmware that echoes printable bytes only).
    let payload = b"\x10\x00a\x1a\r\nSEND OK\r\nb\x00";
    let mut modem = b"a\r\nSEND OK\r\nb".to_vec();
    modem.extend_from_slice(b"\r\nSEND OK\r\n");
    assert_eq!(lines_of(&echoed(payload, &modem)), vec!["SEND OK"]);
    // A payload line echoed altered: the window moves on to the next payload line.
    let mut modem = b"abX\r\nSEND OK\r\n+PDP: DEACT\r\nxyz".to_vec();
    modem.extend_from_slice(b"\r\nSEND OK\r\n");
    assert_eq!(lines_of(&echoed(TRICKY, &modem)), vec!["SEND OK"]);
}

#[test]
fn no_echo_at_all() {
    let payload = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c";
    assert_eq!(
        lines_of(&echoed(payload, b"\r\nSEND OK\r\n")),
        vec!["SEND OK"]
    );
    assert_eq!(
        lines_of(&echoed(TRICKY, b"\r\nSEND OK\r\n")),
        vec!["SEND OK"]
    );
}

#[test]
fn a_pushed_packet_that_cannot_be_proven_intact_is_reported() {
    let mut f = Framer::new();
    f.set_mqtt_push(true);
    // `h\r\ni` may be one block, or `h` + a block break + `i` + the next CR LF as data.
    let publish = [
        0x30, 0x09, 0x00, 0x03, b'a', b'/', b'b', b'h', b'\r', b'\n', b'i',
    ];
    let mut input = b"\r\n".to_vec();
    input.extend_from_slice(&publish);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&[0xd0, 0x00]);
    f.push(&input);
    let got = frames(&mut f);
    assert!(
        got.iter()
            .any(|fr| matches!(fr, Frame::Garbled(r) if r.contains("cannot be proven intact"))),
        "{got:?}"
    );
}

/// Cases the `payload_echo_is_never_a_modem_line` property found.
#[test]
fn a_urc_around_an_echo_that_stops_early() {
    let payload = b"\x00\x00\x7f\nCLOSED\r\n";
    let mut modem = b"\r\n+CIPRXGET: 1\r\n\x00\x00\x7f\nC".to_vec();
    modem.extend_from_slice(b"\r\nSEND OK\r\n");
    assert_eq!(
        lines_of(&echoed(payload, &modem)),
        vec!["+CIPRXGET: 1", "SEND OK"]
    );
    let payload = b" +PDP: DEACT\r\n";
    let modem = b" \r\n+CIPRXGET: 1\r\n+\r\nSEND OK\r\n";
    assert_eq!(
        lines_of(&echoed(payload, modem)),
        vec!["+CIPRXGET: 1", "SEND OK"]
    );
}

/// A one-byte payload `S` with echo off: the modem's `SEND OK` starts with the same byte.
/// The window used to close on that byte and leave `END OK` (regression: a TLS handshake
/// sent in 1-byte chunks timed out waiting for `SEND OK`).
#[test]
fn a_payload_that_matches_the_start_of_send_ok_is_no_echo() {
    let mut f = Framer::new();
    f.expect_prompt(true);
    f.push(b"\r\n> ");
    assert_eq!(f.next_frame(), Some(Frame::Prompt));
    let data: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"S"[..]);
    f.open_echo(data, 0..1);
    f.push(b"\r\nSEND OK\r\n");
    let frames: Vec<Frame> = std::iter::from_fn(|| f.next_frame()).collect();
    assert!(
        frames.contains(&Frame::Line(b"SEND OK".to_vec())),
        "{frames:?}"
    );
    // With echo on, the same byte echoed before the result is still echo.
    let mut f = Framer::new();
    let data: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"S"[..]);
    f.open_echo(data, 0..1);
    f.push(b"S\r\nSEND OK\r\n");
    let frames: Vec<Frame> = std::iter::from_fn(|| f.next_frame()).collect();
    assert!(frames.contains(&Frame::Echo(b"S".to_vec())), "{frames:?}");
    assert!(
        frames.contains(&Frame::Line(b"SEND OK".to_vec())),
        "{frames:?}"
    );
}
