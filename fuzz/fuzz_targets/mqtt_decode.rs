//! Arbitrary bytes into the MQTT decoders, for MQTT 3.1, 3.1.1 and 5.0.
//!
//! The first input byte seeds the chunking. For each version the bytes go (a) through repeated
//! `decode` on the whole buffer and (b) through a `StreamDecoder` in pseudo-random chunks; both
//! must yield the same packets and the same first error (same stream offset). Every decoded
//! packet must pass the strict encoder (unless a warning says a server must refuse it: then
//! the encoder must refuse it too), and its encoding must decode to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim7k::mqtt::{DecodeError, Packet, Protocol, StreamDecoder, WarningKind, decode};

fn check_round_trip(p: &Packet, v: Protocol) {
    let v = p.effective_protocol(v);
    let refused = p
        .warnings(v)
        .iter()
        .any(|w| matches!(w.kind(), WarningKind::Refused { .. }));
    let bytes = if refused {
        assert!(p.encode(v).is_err(), "refused but encodable: {p:?}");
        p.encode_unchecked(v)
    } else {
        p.encode(v)
            .unwrap_or_else(|e| panic!("decoded packet does not re-encode: {e}\n{p:?}"))
    };
    let (q, n) = decode(&bytes, v)
        .unwrap_or_else(|e| panic!("re-encoded packet does not decode: {e}\n{p:?}"))
        .expect("complete");
    assert_eq!(n, bytes.len());
    assert_eq!(&q, p);
    assert!(p.describe(v).starts_with(p.packet_type().name()));
    let _ = p.to_json(v);
    let _ = p.summary(v, Some(200));
}

/// Repeated `decode` over the whole buffer, switching version on CONNECT like the stream does.
fn whole(bytes: &[u8], mut v: Protocol) -> (Vec<Packet>, Option<(usize, String, String)>) {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        match decode(&bytes[at..], v) {
            Ok(Some((p, n))) => {
                if let Packet::Connect(c) = &p {
                    v = c.protocol;
                }
                at += n;
                out.push(p);
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(shifted(e, at))),
        }
    }
}

/// The error with its offset counted from the start of the whole input.
fn shifted(e: DecodeError, by: usize) -> (usize, String, String) {
    (e.offset() + by, e.field().to_owned(), e.message().to_owned())
}

fn streamed(
    bytes: &[u8],
    v: Protocol,
    seed: u8,
) -> (Vec<Packet>, Option<(usize, String, String)>) {
    let mut d = StreamDecoder::new(v).with_max_packet_size(usize::MAX);
    let mut out = Vec::new();
    let mut state = u32::from(seed) | 1;
    let mut i = 0;
    while i < bytes.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + (state % 16) as usize).min(bytes.len() - i);
        d.push(&bytes[i..i + n]);
        i += n;
        loop {
            match d.next_packet() {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(e) => return (out, Some(shifted(e, 0))),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    for v in [Protocol::V31, Protocol::V311, Protocol::V5] {
        let (a, ea) = whole(bytes, v);
        let (b, eb) = streamed(bytes, v, seed);
        assert_eq!(a, b, "whole vs streamed packets ({v})");
        assert_eq!(ea, eb, "whole vs streamed error ({v})");
        let mut cur = v;
        for p in &a {
            check_round_trip(p, cur);
            if let Packet::Connect(c) = p {
                cur = c.protocol;
            }
        }
    }
});
