//! Every named TLS failure against an in-memory rustls server (or raw bytes), with the
//! message's content: what failed, the certificate's subject and validity where relevant,
//! what to check. The same failures against `openssl s_server` are in tls_openssl.rs.

mod tls_support;

use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;
use sim7k::exit::Exit;
use sim7k::tls::{TlsConfig, TlsFailure, TlsState, TlsStream, TlsVersion};
use std::sync::Arc;
use std::time::Duration;
use tls_support::memory::{Feed, MemServer, ServerOpts, pump, server_config};
use tls_support::{ALWAYS, Alg, Pki};

#[derive(Debug)]
struct FixedClock(u64);

impl TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(self.0)))
    }
}

/// 2019-01-01 and 2100-01-01, as seconds since the epoch.
const YEAR_2019: u64 = 1_546_300_800;
const YEAR_2100: u64 = 4_102_444_800;

struct Setup {
    pki: Pki,
    ca: tls_support::Ca,
    server: tls_support::Issued,
}

fn setup(tag: &str) -> Setup {
    let pki = Pki::new(tag);
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    Setup { pki, ca, server }
}

fn trusting(ca: &std::path::Path) -> TlsConfig {
    TlsConfig {
        ca_file: Some(ca.to_path_buf()),
        ..TlsConfig::default()
    }
}

/// Run a handshake (and a little data, for failures that come after the client's Finished
/// in TLS 1.3) and return the client's failure.
fn fail(tls: &mut TlsStream, opts: &ServerOpts, s: &Setup) -> TlsFailure {
    let config = server_config(&s.server, opts);
    let mut server = MemServer::new(&config);
    let result = pump(tls, &mut server, &Feed::split()).and_then(|_| {
        tls.write(b"after handshake")?;
        pump(tls, &mut server, &Feed::split())
    });
    let failure = result.expect_err("the handshake must fail");
    eprintln!("{}: {failure}\n", failure.name());
    assert_eq!(failure.kind(), Exit::StepFailed);
    assert_eq!(tls.state(), TlsState::Failed);
    assert_eq!(tls.failure(), Some(&failure));
    assert_eq!(tls.write(b"x"), Err(failure.clone()), "the failure sticks");
    failure
}

#[test]
fn unknown_ca_names_the_certificate_and_the_trusted_file() {
    let s = setup("fail-ca");
    let other = s.pki.ca("other", Alg::EcdsaP256);
    let client = trusting(&other.issued.cert).build().expect("client");
    let mut tls = client.connect("localhost").expect("connect");
    let f = fail(&mut tls, &ServerOpts::default(), &s);
    assert!(matches!(f, TlsFailure::UnknownCa { .. }), "{f:?}");
    let msg = f.to_string();
    for needle in [
        "not signed by a CA sim7k trusts",
        "other.pem",
        "\"CN=other test CA, O=sim7k tests\"",
        "subject \"CN=localhost\"",
        "issued by \"CN=ca test CA, O=sim7k tests\"",
        "valid 2020-01-01 00:00:00 UTC to 2099-01-01 00:00:00 UTC",
        "ECDSA P-256",
        "-showcerts",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
}

#[test]
fn expired_and_not_yet_valid_use_the_clock_the_client_was_given() {
    let s = setup("fail-time");
    for (now, expired) in [(YEAR_2100, true), (YEAR_2019, false)] {
        let client = trusting(&s.ca.issued.cert)
            .build_with_time(Arc::new(FixedClock(now)))
            .expect("client");
        let mut tls = client.connect("localhost").expect("connect");
        let f = fail(&mut tls, &ServerOpts::default(), &s);
        let msg = f.to_string();
        if expired {
            assert!(matches!(f, TlsFailure::Expired { .. }), "{f:?}");
            assert!(
                msg.contains("has expired (checked at 2100-01-01 00:00:00 UTC)"),
                "{msg}"
            );
        } else {
            assert!(matches!(f, TlsFailure::NotYetValid { .. }), "{f:?}");
            assert!(
                msg.contains("not valid yet (checked at 2019-01-01 00:00:00 UTC)"),
                "{msg}"
            );
        }
        assert!(
            msg.contains("valid 2020-01-01 00:00:00 UTC to 2099-01-01"),
            "{msg}"
        );
        assert!(msg.contains("host clock"), "{msg}");
    }
}

#[test]
fn a_certificate_that_expired_for_real_is_named() {
    let s = setup("fail-expired");
    let old = s.pki.server(
        &s.ca,
        "old",
        &["localhost"],
        Alg::EcdsaP256,
        ((2020, 1, 1), (2021, 1, 1)),
    );
    let s = Setup { server: old, ..s };
    let client = trusting(&s.ca.issued.cert).build().expect("client");
    let mut tls = client.connect("localhost").expect("connect");
    let f = fail(&mut tls, &ServerOpts::default(), &s);
    assert!(matches!(f, TlsFailure::Expired { .. }), "{f:?}");
    assert!(f.to_string().contains("to 2021-01-01 00:00:00 UTC"), "{f}");
}

#[test]
fn hostname_mismatch_lists_the_names_the_certificate_has() {
    let s = setup("fail-name");
    let client = trusting(&s.ca.issued.cert).build().expect("client");
    let mut tls = client.connect("broker.example.com").expect("connect");
    let f = fail(&mut tls, &ServerOpts::default(), &s);
    match &f {
        TlsFailure::HostnameMismatch {
            server, presented, ..
        } => {
            assert_eq!(server, "broker.example.com");
            assert_eq!(presented, &vec!["localhost".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(f.to_string().contains("set the server name"), "{f}");
}

#[test]
fn a_server_that_wants_a_client_certificate_says_so_in_both_versions() {
    let s = setup("fail-nocert");
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let client = TlsConfig {
            min_version: version,
            max_version: version,
            ..trusting(&s.ca.issued.cert)
        }
        .build()
        .expect("client");
        let mut tls = client.connect("localhost").expect("connect");
        let opts = ServerOpts {
            client_ca: Some(s.ca.issued.cert_pem.clone()),
            ..ServerOpts::default()
        };
        let f = fail(&mut tls, &opts, &s);
        assert!(
            matches!(f, TlsFailure::ClientCertRequired { .. }),
            "{version}: {f:?}"
        );
        let msg = f.to_string();
        assert!(msg.contains("requires a client certificate"), "{msg}");
        assert!(
            msg.contains("CN=ca test CA"),
            "the CA the server accepts: {msg}"
        );
    }
}

#[test]
fn a_client_certificate_from_another_ca_is_rejected_by_name() {
    let s = setup("fail-badcert");
    let rogue = s.pki.ca("rogue", Alg::EcdsaP256);
    let device = s.pki.client(&rogue, "device", "device-42", Alg::EcdsaP256);
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let client = TlsConfig {
            client_cert: Some(device.cert.clone()),
            client_key: Some(device.key.clone()),
            min_version: version,
            max_version: version,
            ..trusting(&s.ca.issued.cert)
        }
        .build()
        .expect("client");
        let mut tls = client.connect("localhost").expect("connect");
        let opts = ServerOpts {
            client_ca: Some(s.ca.issued.cert_pem.clone()),
            ..ServerOpts::default()
        };
        let f = fail(&mut tls, &opts, &s);
        assert!(
            matches!(f, TlsFailure::ClientCertRejected { .. }),
            "{version}: {f:?}"
        );
        assert!(f.to_string().contains("subject \"CN=device-42\""), "{f}");
    }
}

#[test]
fn no_version_in_common_either_way() {
    let s = setup("fail-version");
    let cases = [
        (TlsVersion::V1_2, &rustls::version::TLS13),
        (TlsVersion::V1_3, &rustls::version::TLS12),
    ];
    for (client_version, server_version) in cases {
        let client = TlsConfig {
            min_version: client_version,
            max_version: client_version,
            ..trusting(&s.ca.issued.cert)
        }
        .build()
        .expect("client");
        let mut tls = client.connect("localhost").expect("connect");
        let opts = ServerOpts {
            versions: vec![server_version],
            ..ServerOpts::default()
        };
        let f = fail(&mut tls, &opts, &s);
        assert!(matches!(f, TlsFailure::VersionMismatch { .. }), "{f:?}");
        assert!(
            f.to_string().contains(&format!("offered {client_version}")),
            "{f}"
        );
    }
}

#[test]
fn alpn_that_the_server_does_not_speak() {
    let s = setup("fail-alpn");
    let client = TlsConfig {
        alpn: vec!["x-amzn-mqtt-ca".into()],
        ..trusting(&s.ca.issued.cert)
    }
    .build()
    .expect("client");
    let mut tls = client.connect("localhost").expect("connect");
    let opts = ServerOpts {
        alpn: vec![b"mqtt".to_vec()],
        ..ServerOpts::default()
    };
    let f = fail(&mut tls, &opts, &s);
    assert!(matches!(f, TlsFailure::AlpnRefused { .. }), "{f:?}");
    assert!(f.to_string().contains("x-amzn-mqtt-ca"), "{f}");
}

fn raw_client(s: &Setup) -> TlsStream {
    let client = trusting(&s.ca.issued.cert).build().expect("client");
    let mut tls = client.connect("localhost").expect("connect");
    let hello = tls.take_all_send();
    assert_eq!(hello.first(), Some(&0x16), "a ClientHello record");
    tls
}

#[test]
fn a_plaintext_answer_is_not_tls() {
    let s = setup("fail-plain");
    let mut tls = raw_client(&s);
    // An MQTT CONNACK: what a plaintext broker port might send.
    let f = tls.receive(b"\x20\x02\x00\x00").expect_err("not TLS");
    assert!(matches!(f, TlsFailure::NotTls { .. }), "{f:?}");
    assert!(f.to_string().contains("20 02 00 00"), "{f}");

    let mut tls = raw_client(&s);
    tls.receive(b"HTTP/1.1 400 Bad Request\r\n")
        .expect_err("not TLS");
    assert!(matches!(tls.failure(), Some(TlsFailure::NotTls { .. })));
}

#[test]
fn the_socket_closing_mid_handshake() {
    let s = setup("fail-closed");
    let mut tls = raw_client(&s);
    let f = tls.socket_closed().expect_err("mid-handshake");
    assert_eq!(
        f,
        TlsFailure::ClosedMidHandshake {
            server: "localhost".into(),
            received: 0
        }
    );
    assert!(f.to_string().contains("TLS port"), "{f}");

    // After part of the server's flight.
    let config = server_config(&s.server, &ServerOpts::default());
    let client = trusting(&s.ca.issued.cert).build().expect("client");
    let mut tls = client.connect("localhost").expect("connect");
    let mut server = MemServer::new(&config);
    let hello = tls.take_all_send();
    let mut input: &[u8] = &hello;
    server.conn.read_tls(&mut input).expect("server read");
    server.conn.process_new_packets().expect("server process");
    let mut flight = Vec::new();
    server.conn.write_tls(&mut flight).expect("server write");
    tls.receive(&flight[..40]).expect("part of the flight");
    let f = tls.socket_closed().expect_err("mid-handshake");
    assert_eq!(
        f,
        TlsFailure::ClosedMidHandshake {
            server: "localhost".into(),
            received: 40
        }
    );
}

#[test]
fn any_other_alert_from_the_server_is_named() {
    let s = setup("fail-alert");
    let mut tls = raw_client(&s);
    // fatal internal_error
    let f = tls
        .receive(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50])
        .expect_err("alert");
    assert_eq!(
        f,
        TlsFailure::Alert {
            server: "localhost".into(),
            alert: 80,
            during_handshake: true
        }
    );
    assert!(f.to_string().contains("internal_error (80)"), "{f}");

    // unrecognized_name: the SNI was not known.
    let mut tls = raw_client(&s);
    let f = tls
        .receive(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112])
        .expect_err("alert");
    assert!(matches!(f, TlsFailure::UnknownServerName { .. }), "{f:?}");
}

#[test]
fn a_host_that_is_no_server_name() {
    let s = setup("fail-sname");
    let client = trusting(&s.ca.issued.cert).build().expect("client");
    let f = client.connect("not a host!").expect_err("bad name");
    assert!(matches!(f, TlsFailure::ServerName { .. }), "{f:?}");
    assert_eq!(f.kind(), Exit::StepFailed);
    // IPv6 in brackets is fine.
    client.connect("[::1]").expect("an IPv6 literal");
}

#[test]
fn every_failure_has_its_own_name() {
    use std::collections::BTreeSet;
    let names: BTreeSet<&str> = [
        TlsFailure::UnknownCa {
            server: String::new(),
            cert: None,
            trust: String::new(),
        },
        TlsFailure::Expired {
            server: String::new(),
            cert: None,
            now: None,
        },
        TlsFailure::NotYetValid {
            server: String::new(),
            cert: None,
            now: None,
        },
        TlsFailure::HostnameMismatch {
            server: String::new(),
            presented: vec![],
            cert: None,
        },
        TlsFailure::ClientCertRequired {
            server: String::new(),
            acceptable_issuers: vec![],
            alert: None,
        },
        TlsFailure::ClientCertRejected {
            server: String::new(),
            alert: 48,
            identity: None,
        },
        TlsFailure::VersionMismatch {
            server: String::new(),
            offered: String::new(),
            detail: String::new(),
        },
        TlsFailure::NoCommonAlgorithms {
            server: String::new(),
            detail: String::new(),
        },
        TlsFailure::AlpnRefused {
            server: String::new(),
            offered: vec![],
        },
        TlsFailure::Alert {
            server: String::new(),
            alert: 80,
            during_handshake: false,
        },
        TlsFailure::ClosedMidHandshake {
            server: String::new(),
            received: 0,
        },
        TlsFailure::NotTls {
            server: String::new(),
            first_bytes: vec![],
        },
    ]
    .iter()
    .map(|f| f.name())
    .collect();
    assert_eq!(names.len(), 12);
}
