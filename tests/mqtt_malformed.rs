//! The malformed-packet corpus (tests/data/mqtt/malformed/*.hex): each file names the MQTT
//! version and the error expected (`# error: byte N, FIELD`). Every case must fail with that
//! offset and field, through `decode`, through the streaming decoder fed one byte at a time,
//! and through the `sim7k mqtt decode` listing; nothing may panic.

use std::path::Path;

use sim7k::mqtt::{ListOptions, Protocol, StreamDecoder, decode, list_packets, parse_hex_input};

struct Case {
    name: String,
    protocol: Protocol,
    offset: usize,
    field: String,
    bytes: Vec<u8>,
    text: String,
}

fn load() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mqtt/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let mut protocol = None;
            let mut expect = None;
            let mut digits = String::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("# version: ") {
                    protocol = Some(v.parse::<Protocol>().unwrap());
                } else if let Some(e) = line.strip_prefix("# error: byte ") {
                    let (n, f) = e.split_once(", ").unwrap();
                    expect = Some((n.parse::<usize>().unwrap(), f.to_owned()));
                } else if !line.starts_with('#') {
                    digits.extend(line.chars().filter(|c| !c.is_whitespace()));
                }
            }
            let bytes = (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
                .collect();
            let (offset, field) = expect.unwrap_or_else(|| panic!("{p:?}: no '# error:' line"));
            Case {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                protocol: protocol.unwrap_or_else(|| panic!("{p:?}: no '# version:' line")),
                offset,
                field,
                bytes,
                text,
            }
        })
        .collect()
}

#[test]
fn corpus_is_large_enough() {
    assert!(load().len() >= 60, "corpus shrank");
}

#[test]
fn every_case_fails_with_offset_and_field() {
    let mut failures = Vec::new();
    for c in load() {
        match decode(&c.bytes, c.protocol) {
            Err(e) => {
                if e.offset() != c.offset || e.field() != c.field || e.message().is_empty() {
                    failures.push(format!(
                        "{}: expected 'byte {}, {}', got '{e}'",
                        c.name, c.offset, c.field
                    ));
                }
                // Display carries both the offset and the field.
                let shown = e.to_string();
                if !shown.starts_with(&format!("byte {}, {}: ", c.offset, c.field)) {
                    failures.push(format!("{}: displayed as '{shown}'", c.name));
                }
            }
            Ok(r) => failures.push(format!("{}: expected an error, got {r:?}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn streaming_one_byte_at_a_time_reports_the_same_error() {
    for c in load() {
        let mut d = StreamDecoder::new(c.protocol);
        let mut err = None;
        for b in &c.bytes {
            d.push(std::slice::from_ref(b));
            match d.next_packet() {
                Ok(None) => {}
                Ok(Some(p)) => panic!("{}: decoded {p:?}", c.name),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let e = err.unwrap_or_else(|| panic!("{}: no error after all bytes", c.name));
        assert_eq!(
            (e.offset(), e.field()),
            (c.offset, c.field.as_str()),
            "{}",
            c.name
        );
        // The error is sticky.
        assert_eq!(d.next_packet().unwrap_err(), e, "{}", c.name);
    }
}

#[test]
fn errors_are_reported_at_stream_offsets_after_good_packets() {
    // A PINGREQ (2 bytes) then each malformed case: offsets shift by 2.
    for c in load() {
        let mut d = StreamDecoder::new(c.protocol);
        d.push(&[0xC0, 0x00]);
        d.push(&c.bytes);
        assert!(d.next_packet().unwrap().is_some());
        let e = d.next_packet().unwrap_err();
        assert_eq!(e.offset(), c.offset + 2, "{}", c.name);
    }
}

#[test]
fn tool_decode_fails_naming_byte_and_field() {
    for c in load() {
        let opts = ListOptions {
            protocol: c.protocol,
            json: false,
            full: false,
        };
        let mut out = Vec::new();
        let bytes = parse_hex_input(&c.text).unwrap();
        let err = list_packets(&bytes, &opts, &mut out).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("byte {}, {}", c.offset, c.field)),
            "{}: {msg}",
            c.name
        );
    }
}
