//! `sim7k mqtt encode|decode` as a user runs them: the real binary, its stdout, stderr and
//! exit code.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use sim7k::mqtt::parse_hex_input as parse_hex;

/// A failed run: its exit code and its error message (without `error: `).
#[derive(Debug)]
struct Failure {
    code: i32,
    message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sim7k"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Run `sim7k mqtt ARGS` with `stdin`: its stdout, or its failure.
fn sim7k(args: &[&str], stdin: &str) -> Result<String, Failure> {
    let (code, out, err) = run_bytes(args, stdin.as_bytes());
    if code == 0 {
        assert!(err.is_empty() || err.starts_with("warning: "), "{err}");
        return Ok(String::from_utf8(out).expect("UTF-8 output"));
    }
    Err(Failure {
        code,
        message: err
            .trim_end()
            .strip_prefix("error: ")
            .unwrap_or(&err)
            .to_owned(),
    })
}

/// Run `sim7k mqtt ARGS`: exit code, stdout bytes, stderr text.
fn run_bytes(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = bin()
        .arg("mqtt")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sim7k");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("sim7k runs");
    let _ = writer.join();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn encode_connect_original_script_shape() {
    let out = sim7k(
        &[
            "encode",
            "connect",
            "--client-id",
            "SIM7000",
            "--username",
            "user",
            "--password",
            "pass",
            "--keep-alive",
            "60",
            "--clean",
            "--version",
            "3.1",
        ],
        "",
    )
    .unwrap();
    assert_eq!(
        out.trim(),
        "10 21 00 06 4D 51 49 73 64 70 03 C2 00 3C 00 07 53 49 4D 37 30 30 30 00 04 75 73 65 72 00 04 70 61 73 73"
    );
}

#[test]
fn encode_connect_with_will_compact() {
    let out = sim7k(
        &[
            "encode",
            "connect",
            "--client-id",
            "id",
            "--username",
            "u",
            "--password",
            "p",
            "--keep-alive",
            "10",
            "--clean",
            "--will-topic",
            "w",
            "--will-payload",
            "bye",
            "--will-qos",
            "1",
            "--will-retain",
            "--compact",
        ],
        "",
    )
    .unwrap();
    // Same bytes as the 3.1.1 golden vector (connect flags 0xEE).
    assert_eq!(
        out.trim(),
        "101C00044D51545404EE000A0002696400017700036279650001750001 70".replace(' ', "")
    );
}

#[test]
fn encode_publish_variants() {
    let out = sim7k(
        &[
            "encode",
            "publish",
            "--topic",
            "a/b",
            "--payload",
            "hi",
            "--qos",
            "1",
            "--packet-id",
            "10",
            "--retain",
        ],
        "",
    )
    .unwrap();
    assert_eq!(out.trim(), "33 09 00 03 61 2F 62 00 0A 68 69");
    let out = sim7k(
        &[
            "encode",
            "publish",
            "--topic",
            "a/b",
            "--payload-hex",
            "0x68 69",
            "--qos",
            "2",
            "--packet-id",
            "11",
            "--dup",
        ],
        "",
    )
    .unwrap();
    assert_eq!(out.trim(), "3C 09 00 03 61 2F 62 00 0B 68 69");
    let out = sim7k(
        &[
            "encode",
            "publish",
            "--topic",
            "a/b",
            "--payload",
            "hi",
            "--qos",
            "1",
            "--packet-id",
            "7",
            "--version",
            "5",
        ],
        "",
    )
    .unwrap();
    assert_eq!(out.trim(), "32 0A 00 03 61 2F 62 00 07 00 68 69");
}

#[test]
fn encode_other_packets() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "encode",
                "subscribe",
                "--filter",
                "a/#",
                "--filter",
                "b/+/c",
                "--qos",
                "1",
                "--packet-id",
                "3",
            ],
            "82 10 00 03 00 03 61 2F 23 01 00 05 62 2F 2B 2F 63 01",
        ),
        (
            &[
                "encode",
                "unsubscribe",
                "--filter",
                "a/#",
                "--filter",
                "b",
                "--packet-id",
                "4",
            ],
            "A2 0A 00 04 00 03 61 2F 23 00 01 62",
        ),
        (&["encode", "pingreq"], "C0 00"),
        (&["encode", "pingresp"], "D0 00"),
        (&["encode", "disconnect"], "E0 00"),
        (
            &["encode", "disconnect", "--version", "5", "--code", "0x04"],
            "E0 01 04",
        ),
        (&["encode", "puback", "--packet-id", "10"], "40 02 00 0A"),
        (&["encode", "pubrec", "--packet-id", "10"], "50 02 00 0A"),
        (&["encode", "pubrel", "--packet-id", "10"], "62 02 00 0A"),
        (
            &[
                "encode",
                "pubcomp",
                "--packet-id",
                "10",
                "--version",
                "5",
                "--code",
                "0x92",
            ],
            "70 03 00 0A 92",
        ),
        (&["encode", "connack", "--code", "4"], "20 02 00 04"),
        (
            &[
                "encode",
                "suback",
                "--packet-id",
                "3",
                "--code",
                "1",
                "--code",
                "0x80",
            ],
            "90 04 00 03 01 80",
        ),
        (&["encode", "unsuback", "--packet-id", "4"], "B0 02 00 04"),
        (&["encode", "auth", "--version", "5"], "F0 00"),
        (
            &[
                "encode",
                "publish",
                "--topic",
                "t",
                "--payload",
                "x",
                "--version",
                "5",
                "--user-property",
                "k=v",
            ],
            "30 0C 00 01 74 07 26 00 01 6B 00 01 76 78",
        ),
    ];
    for (args, hex) in cases {
        assert_eq!(sim7k(args, "").unwrap().trim(), *hex, "{args:?}");
    }
}

#[test]
fn encode_refuses_invalid_packets_naming_the_field() {
    let e = sim7k(
        &["encode", "publish", "--topic", "a/+", "--payload", "x"],
        "",
    )
    .unwrap_err();
    assert_eq!(e.code, 2, "bad input is a usage error");
    assert_eq!(
        e.to_string(),
        "cannot encode: PUBLISH topic: wildcard '+' not allowed in a topic name"
    );
    let e = sim7k(&["encode", "publish", "--topic", "t", "--qos", "1"], "").unwrap_err();
    assert!(e.to_string().contains("PUBLISH packet id"), "{e}");
    let e = sim7k(
        &[
            "encode",
            "connect",
            "--password",
            "p",
            "--client-id",
            "c",
            "--clean",
        ],
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("CONNECT password"), "{e}");
    let e = sim7k(&["encode", "auth"], "").unwrap_err();
    assert!(e.to_string().contains("AUTH"), "{e}");
    // --unchecked builds it anyway, for negative tests.
    let out = sim7k(
        &[
            "encode",
            "publish",
            "--topic",
            "a/+",
            "--payload",
            "x",
            "--unchecked",
        ],
        "",
    )
    .unwrap();
    assert_eq!(out.trim(), "30 06 00 03 61 2F 2B 78");
}

#[test]
fn decode_prints_every_field_of_every_packet() {
    // CONNECT (3.1) then PUBLISH QoS 1, with 0x prefixes, newlines and a comment.
    let input = "0x10 0x21 00 06 4D 51 49 73 64 70 03 C2 00 3C 00 07 53 49 4D 37 30 30 30\n\
                 00 04 75 73 65 72 00 04 70 61 73 73 # CONNECT\n\
                 3309 0003612F62 000A 6869\n";
    let out = sim7k(&["decode", input], "").unwrap();
    for needle in [
        "# packet 1: bytes 0..35 (35 bytes, MQTT 3.1)",
        "CONNECT",
        "  protocol: MQTT 3.1 (name \"MQIsdp\", level 3)",
        "  connect flags: 0xC2",
        "  clean session: true",
        "  keep alive: 60 s",
        "  client id: \"SIM7000\"",
        "  user name: \"user\"",
        "  password (4 bytes): \"pass\"",
        "# packet 2: bytes 35..46 (11 bytes, MQTT 3.1)",
        "PUBLISH",
        "  QoS: 1 (at least once)",
        "  retain: true",
        "  topic: \"a/b\"",
        "  packet id: 10",
        "  payload (2 bytes): \"hi\"",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // Binary payload shown as hex.
    let out = sim7k(&["decode", "30 05 00 01 74 00 FF"], "").unwrap();
    assert!(out.contains("  payload (2 bytes): hex 00 FF"), "{out}");
}

#[test]
fn decode_from_stdin_with_version_and_json() {
    let out = sim7k(
        &["decode", "-", "--version", "5", "--json"],
        "20 08 00 86 05 1F 00 02 6E 6F\n",
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["type"], "CONNACK");
    assert_eq!(v["code"], 0x86);
    assert_eq!(v["reason"], "Bad User Name or Password");
    assert_eq!(v["success"], false);
    assert_eq!(v["properties"]["reason_string"], "no");
    assert_eq!(v["offset"], 0);
    assert_eq!(v["length"], 10);
    let out = sim7k(&["decode", "30 07 00 03 61 2F 62 68 69", "--json"], "").unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (
            v["topic"].as_str(),
            v["payload"].as_str(),
            v["payload_text"].as_str()
        ),
        (Some("a/b"), Some("6869"), Some("hi"))
    );
}

#[test]
fn decode_errors_name_byte_and_field() {
    let e = sim7k(&["decode", "10 0C 00 04 4D 51 54 54 07 02 00 3C 00 00"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed packet: byte 8, CONNECT protocol level: unsupported level 7 (expected 3, 4 or 5)"
    );
    // An error in the second packet counts from the start of the input.
    let e = sim7k(&["decode", "C0 00 82 02 00 01"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed packet: byte 6, SUBSCRIBE topic filters: at least one topic filter is required"
    );
    let e = sim7k(&["decode", "30 05 00 01"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "byte 0, PUBLISH: the input ends inside the packet: 4 bytes of its 7 bytes present, \
         the last 3 bytes missing"
    );
    let e = sim7k(&["decode", "30"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "byte 0, PUBLISH fixed header: the input ends after the first byte: the remaining \
         length (1 to 4 bytes) is missing"
    );
    let e = sim7k(&["decode", "30 0G"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid hex input at character 4: 'G' is not a hex digit"
    );
    let e = sim7k(&["decode", "30 0"], "").unwrap_err();
    assert!(
        e.message.starts_with("invalid hex input at character 3"),
        "{e}"
    );
    assert_eq!(
        sim7k(&["decode", " # nothing"], "").unwrap_err().message,
        "no bytes to decode"
    );
}

#[test]
fn hex_parser_accepts_common_spellings() {
    for s in [
        "10 0C",
        "100C",
        "0x10 0x0C",
        "0x100C",
        "10,0c",
        "10\n0C\n",
        "10 # c\n0C",
    ] {
        assert_eq!(parse_hex(s).unwrap(), vec![0x10, 0x0C], "{s:?}");
    }
}

// ---- Issue 10 point 8: bad input is exit 2 (usage/input), not 1 ("a step failed"). ----

/// Fails on the old code, which exited 1 for every one of these.
#[test]
fn bad_input_exits_2() {
    let cases: &[&[&str]] = &[
        &["decode", "30 0G"],                                     // not hex
        &["decode", " # nothing"],                                // no bytes
        &["decode", "30 05 00 01"],                               // truncated
        &["decode", "10 0C 00 04 4D 51 54 54 07 02 00 3C 00 00"], // malformed
        &["encode", "publish", "--topic", "a/+"],                 // refused by the encoder
        &[
            "encode",
            "publish",
            "--topic",
            "t",
            "--payload-file",
            "/nonexistent/payload",
        ],
        &["follow", "/nonexistent/transcript.log"],
    ];
    for args in cases {
        let e = sim7k(args, "").unwrap_err();
        assert_eq!(e.code, 2, "{args:?}: {e}");
    }
    // A clap usage error stays 2 as well.
    assert_eq!(sim7k(&["decode"], "").unwrap_err().code, 2);
}

// ---- Issue 10 point 19: defaults valid for every version; only the version's fields. ----

/// Fails on the old code: the default client id was empty with clean session off, which
/// 3.1.1 and 3.1 refuse.
#[test]
fn encode_connect_defaults_are_valid_in_every_version() {
    for v in ["3.1", "3.1.1", "5"] {
        let out = sim7k(&["encode", "connect", "--version", v], "")
            .unwrap_or_else(|e| panic!("MQTT {v}: {e}"));
        let decoded = sim7k(&["decode", out.trim(), "--json"], "").unwrap();
        let j: serde_json::Value = serde_json::from_str(decoded.trim()).unwrap();
        assert_eq!(j["client_id"], "sim7k", "{v}");
        assert_eq!(j["warnings"], serde_json::json!([]), "{v}");
    }
    // An empty id without --clean is still refused in 3.1.1, saying what to do.
    let e = sim7k(&["encode", "connect", "--client-id", ""], "").unwrap_err();
    assert_eq!(e.code, 2);
    assert!(e.message.contains("identifier rejected"), "{e}");
    assert!(
        e.message.contains("give a client id or set clean session"),
        "{e}"
    );
    sim7k(&["encode", "connect", "--client-id", "", "--clean"], "").unwrap();
}

/// Fails on the old code, which gave 3.1.1 acks and DISCONNECT `code: 0`, `reason:
/// "Success"` and `properties: {}`, none of which 3.1.1 has.
#[test]
fn decode_json_shows_only_what_the_version_has() {
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        sim7k(args, "")
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, DISCONNECT in 3.1.1.
    let v = lines(&[
        "decode",
        "40 02 00 01 50 02 00 01 62 02 00 01 70 02 00 01 B0 02 00 01 E0 00",
        "--json",
    ]);
    assert_eq!(v.len(), 6);
    for p in &v {
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        for absent in ["code", "reason", "properties", "codes", "reasons", "dup"] {
            assert!(!keys.contains(&absent), "{absent} in {p}");
        }
    }
    assert_eq!(v[0]["packet_id"], 1);
    // The same in 5.0 have them.
    let v = lines(&["decode", "40 02 00 01 E0 00", "--json", "--version", "5"]);
    assert_eq!(v[0]["reason"], "Success");
    assert_eq!(v[1]["code"], 0);
    assert!(v[1]["properties"].is_object());
    // 3.1: no session present on CONNACK; DUP on PUBREL.
    let v = lines(&[
        "decode",
        "20 02 00 00 6A 02 00 01",
        "--json",
        "--version",
        "3.1",
    ]);
    assert!(v[0].get("session_present").is_none(), "{}", v[0]);
    assert_eq!(v[1]["dup"], true);
    // The text view follows the same rule.
    let out = sim7k(&["decode", "40 02 00 01 E0 00"], "").unwrap();
    assert!(!out.contains("reason code"), "{out}");
}

// ---- Issue 10 point 15: MQTT 3.1 DUP, long ids, identifier rejected, truncation. ----

/// Fails on the old code: `6A 02 00 01` was "malformed" in MQTT 3.1.
#[test]
fn decode_mqtt31_dup_pubrel() {
    let out = sim7k(&["decode", "6a020001", "--version", "3.1"], "").unwrap();
    assert!(out.contains("PUBREL\n  dup: true\n  packet id: 1"), "{out}");
    let e = sim7k(&["decode", "6a020001"], "").unwrap_err();
    assert!(
        e.message.contains("DUP on PUBREL exists only in MQTT 3.1"),
        "{e}"
    );
    let out = sim7k(
        &[
            "encode",
            "pubrel",
            "--packet-id",
            "1",
            "--dup",
            "--version",
            "3.1",
        ],
        "",
    )
    .unwrap();
    assert_eq!(out.trim(), "6A 02 00 01");
}

/// Fails on the old code: a 24-character MQTT 3.1 id was "malformed", and an empty 3.1.1 id
/// without clean session was "malformed" instead of "identifier rejected".
#[test]
fn decode_client_id_warnings() {
    // MQTT 3.1, 24 characters: decoded, with a warning (brokers accept it).
    let long = "10 26 00 06 4D 51 49 73 64 70 03 02 00 3C 00 18 61 62 63 64 65 66 67 68 69 6A 6B \
                6C 6D 6E 6F 70 71 72 73 74 75 76 77 78";
    let out = sim7k(&["decode", long], "").unwrap();
    assert!(
        out.contains("client id: \"abcdefghijklmnopqrstuvwx\""),
        "{out}"
    );
    assert!(
        out.contains("  warning: CONNECT client id: 24 characters; MQTT 3.1 allows at most 23"),
        "{out}"
    );
    // Encoding it works too, with the warning on stderr.
    let (code, stdout, stderr) = run_bytes(
        &[
            "encode",
            "connect",
            "--version",
            "3.1",
            "--clean",
            "--client-id",
            "abcdefghijklmnopqrstuvwx",
        ],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    let words: Vec<&str> = long.split_whitespace().collect();
    assert_eq!(String::from_utf8_lossy(&stdout).trim(), words.join(" "));
    assert!(
        stderr.starts_with("warning: CONNECT client id: 24 characters"),
        "{stderr}"
    );
    // MQTT 3.1.1, empty id, clean session 0: identifier rejected, not malformed.
    let out = sim7k(
        &[
            "decode",
            "10 0C 00 04 4D 51 54 54 04 00 00 3C 00 00",
            "--json",
        ],
        "",
    )
    .unwrap();
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let w = j["warnings"][0].as_str().unwrap();
    assert!(w.contains("CONNACK 0x02 (identifier rejected)"), "{w}");
    assert!(w.contains("[MQTT-3.1.3-8]"), "{w}");
}

// ---- Issue 14 point 8: --payload-file, any size. ----

/// Fails on the old code (no --payload-file; a 300 KiB payload does not fit an argument).
#[test]
fn encode_publish_payload_file_of_any_size() {
    let dir = std::env::temp_dir().join(format!("sim7k-mqtt-tool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("payload.bin");
    let payload: Vec<u8> = (0..300 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &payload).unwrap();
    let args = [
        "encode",
        "publish",
        "--topic",
        "big",
        "--compact",
        "--payload-file",
    ];
    let mut with_path = args.to_vec();
    let p = path.to_str().unwrap();
    with_path.push(p);
    let from_file = sim7k(&with_path, "").unwrap();
    let bytes = parse_hex(from_file.trim()).unwrap();
    // 0x30, a 3-byte remaining length, topic "big", then the payload.
    assert_eq!(bytes.len(), 1 + 3 + 5 + payload.len());
    assert_eq!(&bytes[9..], &payload[..]);
    // The same from stdin with `-`.
    let mut with_stdin = args.to_vec();
    with_stdin.push("-");
    let (code, out, err) = run_bytes(&with_stdin, &payload);
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), from_file);
    // --payload and --payload-file together is a usage error.
    let e = sim7k(
        &[
            "encode",
            "publish",
            "--topic",
            "t",
            "--payload",
            "x",
            "--payload-file",
            p,
        ],
        "",
    )
    .unwrap_err();
    assert_eq!(e.code, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Issue 14 point 9: big packets stay readable; nothing raw reaches a terminal. ----

/// Fails on the old code, which printed the 2 MiB packet's 6 MB hex on one line.
#[test]
fn decode_shortens_big_packets_unless_full() {
    let payload: Vec<u8> = (0..2 << 20).map(|i| (i % 256) as u8).collect();
    let mut packet = vec![0x30];
    let len = 2 + 3 + payload.len();
    let mut l = len;
    loop {
        let mut b = (l % 128) as u8;
        l /= 128;
        if l > 0 {
            b |= 0x80;
        }
        packet.push(b);
        if l == 0 {
            break;
        }
    }
    packet.extend_from_slice(&[0x00, 0x03, b'b', b'i', b'g']);
    packet.extend_from_slice(&payload);
    let hex: String = packet.iter().map(|b| format!("{b:02X}")).collect();
    let (code, out, err) = run_bytes(&["decode", "-"], hex.as_bytes());
    assert_eq!(code, 0, "{err}");
    let text = String::from_utf8(out).unwrap();
    let longest = text.lines().map(str::len).max().unwrap();
    assert!(longest < 400, "a line of {longest} characters");
    assert!(
        text.contains(&format!("({} bytes, MQTT 3.1.1)", packet.len())),
        "{text}"
    );
    assert!(text.contains("(--full shows all)"), "{text}");
    assert!(
        text.contains(&format!("payload ({} bytes): hex 00 01 02", payload.len())),
        "{text}"
    );
    assert!(text.contains("bytes more"), "{text}");
    // Every byte is printable (the payload holds ESC and every control byte).
    assert!(
        text.bytes()
            .all(|b| b == b'\n' || (0x20..0x7f).contains(&b) || b >= 0x80),
        "raw control bytes in the output"
    );
    assert!(!text.contains('\u{1b}'));
    // JSON: cut too, and says so.
    let (_, out, _) = run_bytes(&["decode", "-", "--json"], hex.as_bytes());
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(j["payload_length"], payload.len());
    assert_eq!(j["payload_truncated"], true);
    assert!(out.len() < 20_000, "{} bytes of JSON", out.len());
    // --full prints every byte.
    let (_, out, _) = run_bytes(&["decode", "-", "--full", "--json"], hex.as_bytes());
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(j["payload"].as_str().unwrap().len(), 2 * payload.len());
    assert!(j.get("payload_truncated").is_none());
}

/// A text payload with terminal escape sequences is shown escaped.
#[test]
fn decode_never_writes_control_bytes_raw() {
    // PUBLISH "t" with payload ESC [2J, BEL, CSI (U+009B) and a bidi override.
    let payload = "\u{1b}[2J\u{7}x\u{9b}1m\u{202e}";
    let mut packet = vec![0x30, (3 + payload.len()) as u8, 0x00, 0x01, b't'];
    packet.extend_from_slice(payload.as_bytes());
    let hex: String = packet.iter().map(|b| format!("{b:02X} ")).collect();
    let out = sim7k(&["decode", &hex], "").unwrap();
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}') && !out.contains('\u{9b}'));
    assert!(!out.contains('\u{202e}'), "{out}");
}

// ---- Issue 10 point 2: a closed stdout is the reader going away. ----

/// `sim7k mqtt decode … | head -1`: a real pipe closed after the first line. Fails on the old
/// code, which ended with `error: I/O error: Broken pipe` (exit 1; 101 where it panicked).
#[test]
fn closed_stdout_ends_quietly_with_exit_0() {
    for json in [false, true] {
        // 50,000 PINGREQs: about 2.5 MB of description, far more than a pipe buffer holds,
        // so the writer is still writing when the reader goes.
        let input = "C0 00 ".repeat(50_000);
        let mut args = vec!["mqtt", "decode", "-"];
        if json {
            args.push("--json");
        }
        let mut child = bin()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert!(
            first.contains("PINGREQ") || first.starts_with('#'),
            "{first}"
        );
        drop(reader); // `head -1` exits
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        let _ = writer.join();
        assert_eq!(status.code(), Some(0), "json {json}: stderr {err}");
        assert!(err.is_empty(), "json {json}: {err}");
    }
}
