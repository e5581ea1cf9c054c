//! Tests of the raw-push reassembler (`super`).
use super::*;

/// A QoS 0 PUBLISH on `t/x` carrying `payload`.
fn publish(payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x03, b't', b'/', b'x'];
    body.extend_from_slice(payload);
    let mut p = vec![0x30];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        p.push(b);
        if n == 0 {
            break;
        }
    }
    p.extend_from_slice(&body);
    p
}

/// `\r\n` + blocks of the given sizes, as the module pushes them.
fn pushed(packet: &[u8], blocks: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for &n in blocks {
        out.extend_from_slice(b"\r\n");
        let end = (at + n).min(packet.len());
        out.extend_from_slice(&packet[at..end]);
        at = end;
    }
    assert_eq!(at, packet.len(), "blocks cover the packet");
    out
}

/// Feed `stream` (which starts at a line start) through the reassembler.
fn run(stream: &[u8]) -> Pushed {
    let mut i = 0;
    while stream.get(i) == Some(&b'\r') || stream.get(i) == Some(&b'\n') {
        i += 1;
    }
    let mut p = PushPacket::start(stream[i], 0);
    let mut out = p.first_outcome();
    for &b in &stream[i + 1..] {
        if out != Pushed::Pending {
            break;
        }
        out = p.push(b);
    }
    out
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn full_blocks_and_a_short_tail() {
    let packet = publish(&payload(3000));
    let mut stream = pushed(&packet, &[1460, 1460, packet.len() - 2920]);
    stream.extend_from_slice(b"\r\nDST: 1\r\n");
    match run(&stream) {
        Pushed::Packet { data, rest, .. } => {
            assert_eq!(data, packet);
            assert!(b"\r\nDST: 1\r\n".starts_with(&rest), "{rest:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_blocks_from_network_reads() {
    // 4096-byte network reads: blocks of 1460, 1460, 1176, then the rest.
    let packet = publish(&payload(5000));
    let blocks = [1460, 1460, 1176, packet.len() - 4096];
    let mut stream = pushed(&packet, &blocks);
    stream.extend_from_slice(b"\r\n");
    match run(&stream) {
        Pushed::Packet { data, .. } => assert_eq!(data, packet),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_urc_between_blocks_is_reported_not_delivered() {
    let packet = publish(&payload(2000));
    let mut stream = b"\r\n".to_vec();
    stream.extend_from_slice(&packet[..1460]);
    stream.extend_from_slice(b"\r\n+CIPRXGET: 1\r\n\r\n");
    stream.extend_from_slice(&packet[1460..]);
    stream.extend_from_slice(b"\r\nOK\r\n");
    match run(&stream) {
        Pushed::Packet { data, urcs, .. } => {
            assert_eq!(data, packet);
            assert_eq!(urcs, vec![b"+CIPRXGET: 1".to_vec()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_crlf_in_the_payload_that_may_be_a_break_is_garbled() {
    // The stream reads as `a\r\nb` in one block, or `a` + break + `b…` + the next
    // block's CR LF as data: both end in a plausible line.
    let packet = publish(b"hello\r\nworld");
    let mut stream = pushed(&packet, &[packet.len()]);
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(&publish(b"next"));
    match run(&stream) {
        Pushed::Garbled { reason, .. } => {
            assert!(reason.contains("cannot be proven intact"), "{reason}");
            assert!(reason.contains("AT+CIPHEAD=1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_crlf_in_the_payload_is_resolved_by_what_follows() {
    // Followed by nothing yet: one reading is complete, others are open.
    let packet = publish(b"hello\r\nworld");
    let mut p = PushPacket::start(packet[0], 0);
    assert_eq!(p.first_outcome(), Pushed::Pending);
    for &b in &packet[1..] {
        assert_eq!(p.push(b), Pushed::Pending);
    }
    assert!(p.undecided().is_some());
    // Followed by a URC and a packet: the reading with a break after `hello` (and the
    // URC between blocks) would take the packet's first two bytes as its last data and
    // then be followed by `0x00`, which starts nothing: refuted.
    let mut stream = pushed(&packet, &[packet.len()]);
    stream.extend_from_slice(b"\r\nDST: 1\r\n\r\n");
    stream.extend_from_slice(&[0x30, 0x05, 0x00, 0x01, b'a', b'b', b'c']);
    match run(&stream) {
        Pushed::Packet { data, .. } => assert_eq!(data, packet),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pause_refutes_a_reading_followed_by_a_cut_packet_start() {
    // Blocks 1000 + 300: the reading taking the break as data ends 2 bytes early, and
    // its last bytes `05` look like a PUBLISH start: only a pause tells.
    let mut body = payload(1290);
    let n = body.len();
    body[n - 2] = 0x30;
    body[n - 1] = 0x05;
    let packet = publish(&body);
    let stream = pushed(&packet, &[1000, packet.len() - 1000]);
    let mut p = PushPacket::start(stream[2], 0);
    assert_eq!(p.first_outcome(), Pushed::Pending);
    let mut last = Pushed::Pending;
    for &b in &stream[3..] {
        last = p.push(b);
    }
    assert_eq!(last, Pushed::Pending);
    match p.settle() {
        Pushed::Packet { data, .. } => assert_eq!(data, packet),
        other => panic!("{other:?}"),
    }
}

#[test]
fn more_than_1460_bytes_without_a_break_is_garbled() {
    let packet = publish(&payload(2000));
    let mut stream = b"\r\n".to_vec();
    stream.extend_from_slice(&packet);
    match run(&stream) {
        Pushed::Garbled { reason, .. } => assert!(reason.contains("1460"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lines_that_only_look_like_packets_go_back() {
    assert!(matches!(run(b"10.64.12.7\r\n"), Pushed::NotMqtt(_)));
    assert!(matches!(run(b" 3x\r\n"), Pushed::NotMqtt(_)));
}

#[test]
fn pingresp_and_connack() {
    assert!(matches!(
        run(&[0xd0, 0x00]),
        Pushed::Packet { ref data, .. } if data == &[0xd0, 0x00]
    ));
    assert!(matches!(
        run(&[0x20, 0x02, 0x00, 0x00, b'\r', b'\n']),
        Pushed::Packet { ref data, .. } if data == &[0x20, 0x02, 0x00, 0x00]
    ));
}
