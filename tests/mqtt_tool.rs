//! `sim7k mqtt encode|decode` through clap (wrapped the way the lead will wire it: a top-level
//! command with `version` and `propagate_version`) and [`run`].

use clap::{Parser, Subcommand};
use sim7k::mqtt::tool::{MqttCommand, ToolError, parse_hex, run};

#[derive(Parser, Debug)]
#[command(name = "sim7k", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Subcommand, Debug)]
enum Top {
    /// MQTT codec tools.
    #[command(subcommand)]
    Mqtt(MqttCommand),
}

fn sim7k(args: &[&str], stdin: &str) -> Result<String, ToolError> {
    let mut argv = vec!["sim7k", "mqtt"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Top::Mqtt(cmd) = cli.cmd;
    let mut out = Vec::new();
    run(&cmd, &mut stdin.as_bytes(), &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
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
    assert!(matches!(e, ToolError::Encode(_)));
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
        "byte 0, PUBLISH: input ends inside the packet (4 of 7 bytes present)"
    );
    let e = sim7k(&["decode", "30"], "").unwrap_err();
    assert!(matches!(e, ToolError::Truncated { .. }), "{e}");
    let e = sim7k(&["decode", "30 0G"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid hex input at character 4: 'G' is not a hex digit"
    );
    let e = sim7k(&["decode", "30 0"], "").unwrap_err();
    assert!(matches!(e, ToolError::Hex { position: 3, .. }), "{e}");
    assert!(matches!(
        sim7k(&["decode", " # nothing"], "").unwrap_err(),
        ToolError::Empty
    ));
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
