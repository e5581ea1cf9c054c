//! Property tests: arbitrary valid packets round-trip through encode/decode in every version;
//! the streaming decoder returns the same packets for any chunking of a concatenated stream;
//! arbitrary bytes never panic, and whatever decodes re-encodes to something that decodes to
//! the same packet (strictly, unless a warning says a server must refuse it).

#[path = "mqtt_strategies/mod.rs"]
mod strategies;

use proptest::collection::vec;
use proptest::prelude::*;
use sim7k::mqtt::*;
use strategies::*;

/// Re-encode a decoded packet: with every check, except for values a server must refuse
/// (they decode, with a warning, but the strict encoder does not build them).
fn reencode(p: &Packet, v: Protocol) -> Result<Vec<u8>, TestCaseError> {
    let refused = p
        .warnings(v)
        .iter()
        .any(|w| matches!(w.kind(), WarningKind::Refused { .. }));
    if refused {
        prop_assert!(p.encode(v).is_err(), "refused but encodable: {p:?}");
        return Ok(p.encode_unchecked(v));
    }
    p.encode(v)
        .map_err(|e| TestCaseError::fail(format!("re-encode {p:?}: {e}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn valid_packets_round_trip((v, p) in versioned_packet()) {
        let bytes = p.encode(v).map_err(|e| TestCaseError::fail(format!("{e} for {p:?}")))?;
        let (d, n) = decode(&bytes, v).map_err(|e| TestCaseError::fail(format!("{e} for {bytes:02X?}")))?.expect("complete");
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(&d, &p);
        // encode_unchecked of a valid packet is the same bytes.
        prop_assert_eq!(p.encode_unchecked(v), bytes);
        // The views never panic and name the packet.
        prop_assert!(p.describe(v).starts_with(p.packet_type().name()));
        let j = p.to_json(v);
        prop_assert_eq!(j["type"].as_str(), Some(p.packet_type().name()));
    }

    #[test]
    fn stream_chunking_gives_the_same_packets((v, packets, cuts) in versioned_stream()) {
        let mut stream = Vec::new();
        for p in &packets {
            stream.extend(p.encode(v).unwrap());
        }
        let mut d = StreamDecoder::new(v);
        let mut got = Vec::new();
        let mut i = 0;
        let mut cut = cuts.iter().cycle();
        while i < stream.len() {
            let n = (*cut.next().unwrap()).min(stream.len() - i);
            d.push(&stream[i..i + n]);
            i += n;
            while let Some(p) = d.next_packet().unwrap() {
                got.push(p);
            }
        }
        prop_assert_eq!(got, packets);
        prop_assert_eq!(d.buffered_len(), 0);
        prop_assert_eq!(d.stream_offset(), stream.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(v in protocol(), data in bytes(64), cuts in vec(1usize..9, 1..16)) {
        if let Ok(Some((p, n))) = decode(&data, v) {
            prop_assert!(n <= data.len());
            let v2 = p.effective_protocol(v);
            let again = reencode(&p, v2)?;
            let (q, _) = decode(&again, v2).unwrap().unwrap();
            prop_assert_eq!(q, p);
        }
        let mut d = StreamDecoder::new(v).with_max_packet_size(64);
        let mut i = 0;
        let mut cut = cuts.iter().cycle();
        'outer: while i < data.len() {
            let n = (*cut.next().unwrap()).min(data.len() - i);
            d.push(&data[i..i + n]);
            i += n;
            loop {
                match d.next_packet() {
                    Ok(Some(p)) => { let _ = p.describe(d.protocol()); let _ = p.to_json(d.protocol()); }
                    Ok(None) => break,
                    Err(e) => { prop_assert!(e.offset() < data.len() + 5); break 'outer; }
                }
            }
            prop_assert!(d.buffered_len() <= 64 + 5 + 8);
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic((v, p) in versioned_packet(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = p.encode(v).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(Some((q, _))) = decode(&bytes, v) {
            let v2 = q.effective_protocol(v);
            let again = reencode(&q, v2)?;
            prop_assert_eq!(decode(&again, v2).unwrap().unwrap().0, q);
        }
    }
}
