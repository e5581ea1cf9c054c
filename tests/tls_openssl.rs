//! The TLS core against `openssl s_server` over real TCP sockets, bytes moved as the modem
//! moves them (≤ 1460-byte sends; 1460-byte, 1-byte and odd-sized reads): TLS 1.2 and 1.3,
//! RSA and ECDSA servers, ALPN, SNI, resumption, and each failure a user can meet.

mod tls_support;

use sim7k::tls::{TlsClient, TlsConfig, TlsFailure, TlsVersion};
use std::net::TcpListener;
use std::time::Duration;
use tls_support::memory::Feed;
use tls_support::net::Link;
use tls_support::peers::OpensslServer;
use tls_support::{ALWAYS, Alg, Ca, Issued, Pki};

struct Lab {
    pki: Pki,
    ca: Ca,
    server: Issued,
}

fn lab(tag: &str, alg: Alg) -> Lab {
    let pki = Pki::new(tag);
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server = pki.server(&ca, "server", &["localhost", "127.0.0.1"], alg, ALWAYS);
    Lab { pki, ca, server }
}

fn s_server(cert: &Issued, extra: &[&str]) -> Option<OpensslServer> {
    let cert_path = cert.cert.to_string_lossy().into_owned();
    let key_path = cert.key.to_string_lossy().into_owned();
    let mut args = vec!["-cert", &cert_path, "-key", &key_path];
    args.extend_from_slice(extra);
    OpensslServer::start(&args)
}

fn trusting(ca: &Ca) -> TlsConfig {
    TlsConfig {
        ca_file: Some(ca.issued.cert.clone()),
        ..TlsConfig::default()
    }
}

fn only(v: TlsVersion, c: TlsConfig) -> TlsConfig {
    TlsConfig {
        min_version: v,
        max_version: v,
        ..c
    }
}

/// Handshake, send a line, and get it back reversed (`s_server -rev`): proves data both ways
/// and, in TLS 1.3, that the session tickets sent after the handshake have arrived.
fn echo(client: &TlsClient, server: &OpensslServer, feed: Feed, host: &str) -> Link {
    let tls = client.connect(host).expect("connect");
    let mut link = Link::connect(server.addr, tls, feed);
    link.handshake()
        .unwrap_or_else(|f| panic!("{f}\n{}", server.output()));
    link.send(b"hello sim7k\n").expect("send");
    let back = link
        .recv_until(|b| b.windows(11).any(|w| w == b"k7mis olleh"))
        .expect("echo");
    assert!(
        back.windows(11).any(|w| w == b"k7mis olleh"),
        "{:?}",
        String::from_utf8_lossy(&back)
    );
    link
}

/// Run a connection that must fail; the failure may come after the client's Finished (TLS 1.3
/// client authentication), so send a little and keep reading for the alert.
fn failure(client: &TlsClient, server: &OpensslServer, host: &str) -> TlsFailure {
    let tls = client.connect(host).expect("connect");
    let mut link = Link::connect(server.addr, tls, Feed::split());
    let f = link
        .handshake()
        .and_then(|_| link.send(b"x\n"))
        .and_then(|_| link.drain(Duration::from_secs(10)))
        .and_then(|_| link.tls.failure().cloned().map_or(Ok(()), Err));
    let f = f.expect_err("the connection must fail");
    eprintln!("{}: {f}\n", f.name());
    assert_eq!(f.kind(), sim7k::exit::Exit::StepFailed);
    f
}

#[test]
fn tls12_and_tls13_with_rsa_and_ecdsa_servers_in_every_feed() {
    for alg in [Alg::EcdsaP256, Alg::Rsa2048] {
        let lab = lab("ossl-ok", alg);
        for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
            let flag = match version {
                TlsVersion::V1_2 => "-tls1_2",
                TlsVersion::V1_3 => "-tls1_3",
            };
            let Some(server) = s_server(&lab.server, &[flag, "-rev"]) else {
                return;
            };
            for feed in [Feed::modem(), Feed::drip(), Feed::split()] {
                // A fresh client each time: full handshakes.
                let client = trusting(&lab.ca).build().expect("client");
                let mut link = echo(&client, &server, feed.clone(), "localhost");
                let info = link.tls.session().expect("session").clone();
                assert_eq!(info.version, version, "{alg:?} {feed:?}");
                assert!(!info.resumed);
                assert!(link.largest_send <= feed.chunk);
                link.close();
            }
        }
    }
}

#[test]
fn resumption_against_openssl_in_both_versions() {
    let lab = lab("ossl-resume", Alg::Rsa2048);
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let Some(server) = s_server(&lab.server, &["-rev"]) else {
            return;
        };
        let client = only(version, trusting(&lab.ca)).build().expect("client");
        let mut sizes = Vec::new();
        for round in 0..2 {
            let mut link = echo(&client, &server, Feed::modem(), "localhost");
            let info = link.tls.session().expect("session").clone();
            assert_eq!(info.resumed, round == 1, "{version} round {round}: {info}");
            sizes.push((info.handshake_sent, info.handshake_received));
            link.close();
        }
        eprintln!(
            "{version} openssl RSA-2048: full {:?}, resumed {:?}",
            sizes[0], sizes[1]
        );
        let total = |(a, b): (u64, u64)| a + b;
        assert!(total(sizes[1]) < total(sizes[0]), "{sizes:?}");
        assert!(
            sizes[1].1 * 2 < sizes[0].1,
            "no certificate comes down: {sizes:?}"
        );
    }
}

#[test]
fn alpn_reaches_the_server_and_a_mismatch_is_refused() {
    let lab = lab("ossl-alpn", Alg::EcdsaP256);
    let Some(server) = s_server(&lab.server, &["-alpn", "x-amzn-mqtt-ca", "-rev"]) else {
        return;
    };
    let client = TlsConfig {
        alpn: vec!["x-amzn-mqtt-ca".into()],
        ..trusting(&lab.ca)
    }
    .build()
    .expect("client");
    let mut link = echo(&client, &server, Feed::split(), "localhost");
    assert_eq!(
        link.tls.session().expect("session").alpn.as_deref(),
        Some("x-amzn-mqtt-ca")
    );
    // s_server serves one connection at a time.
    link.close();
    drop(link);

    // OpenSSL 3 refuses a client whose ALPN list it does not share (no_application_protocol).
    let client = TlsConfig {
        alpn: vec!["mqtt".into()],
        ..trusting(&lab.ca)
    }
    .build()
    .expect("client");
    let f = failure(&client, &server, "localhost");
    assert!(matches!(f, TlsFailure::AlpnRefused { .. }), "{f:?}");
    assert!(f.to_string().contains("(mqtt)"), "{f}");
}

#[test]
fn sni_is_sent_and_a_name_the_server_does_not_serve_is_named() {
    let lab = lab("ossl-sni", Alg::EcdsaP256);
    let other = lab
        .pki
        .server(&lab.ca, "other", &["other.test"], Alg::EcdsaP256, ALWAYS);
    let other_cert = other.cert.to_string_lossy().into_owned();
    let other_key = other.key.to_string_lossy().into_owned();
    let Some(server) = s_server(
        &lab.server,
        &[
            "-servername",
            "other.test",
            "-servername_fatal",
            "-cert2",
            &other_cert,
            "-key2",
            &other_key,
            "-rev",
        ],
    ) else {
        return;
    };
    // The name the server knows: it switches to the second certificate.
    let client = TlsConfig {
        server_name: Some("other.test".into()),
        ..trusting(&lab.ca)
    }
    .build()
    .expect("client");
    let mut link = echo(&client, &server, Feed::modem(), "127.0.0.1");
    let cert = link
        .tls
        .session()
        .and_then(|s| s.server_cert.clone())
        .expect("cert");
    assert_eq!(
        cert.subject, "CN=other.test",
        "the server switched certificates on SNI"
    );
    link.close();
    drop(link);

    // A name it does not know: fatal unrecognized_name.
    let client = trusting(&lab.ca).build().expect("client");
    let f = failure(&client, &server, "localhost");
    assert!(matches!(f, TlsFailure::UnknownServerName { .. }), "{f:?}");
}

#[test]
fn certificate_failures_against_openssl() {
    let lab = lab("ossl-cert", Alg::Rsa2048);
    let expired = lab.pki.server(
        &lab.ca,
        "expired",
        &["localhost"],
        Alg::EcdsaP256,
        ((2020, 1, 1), (2021, 6, 1)),
    );
    let future = lab.pki.server(
        &lab.ca,
        "future",
        &["localhost"],
        Alg::EcdsaP256,
        ((2090, 1, 1), (2099, 1, 1)),
    );
    let other = lab.pki.ca("other", Alg::EcdsaP256);

    let Some(server) = s_server(&lab.server, &[]) else {
        return;
    };
    let f = failure(
        &trusting(&other).build().expect("client"),
        &server,
        "localhost",
    );
    assert!(matches!(f, TlsFailure::UnknownCa { .. }), "{f:?}");
    assert!(f.to_string().contains("RSA 2048"), "{f}");
    let f = failure(
        &trusting(&lab.ca).build().expect("client"),
        &server,
        "broker.test",
    );
    assert!(matches!(f, TlsFailure::HostnameMismatch { .. }), "{f:?}");
    assert!(
        f.to_string().contains("it names localhost, 127.0.0.1"),
        "{f}"
    );
    drop(server);

    let Some(server) = s_server(&expired, &[]) else {
        return;
    };
    let f = failure(
        &trusting(&lab.ca).build().expect("client"),
        &server,
        "localhost",
    );
    assert!(matches!(f, TlsFailure::Expired { .. }), "{f:?}");
    assert!(f.to_string().contains("to 2021-06-01 00:00:00 UTC"), "{f}");
    drop(server);

    let Some(server) = s_server(&future, &[]) else {
        return;
    };
    let f = failure(
        &trusting(&lab.ca).build().expect("client"),
        &server,
        "localhost",
    );
    assert!(matches!(f, TlsFailure::NotYetValid { .. }), "{f:?}");
    assert!(f.to_string().contains("valid 2090-01-01"), "{f}");
}

#[test]
fn client_certificates_required_missing_and_rejected() {
    let lab = lab("ossl-mtls", Alg::EcdsaP256);
    let ca_path = lab.ca.issued.cert.to_string_lossy().into_owned();
    let device = lab
        .pki
        .client(&lab.ca, "device", "device-7", Alg::EcdsaP256);
    let rogue = lab.pki.ca("rogue", Alg::EcdsaP256);
    let stranger = lab
        .pki
        .client(&rogue, "stranger", "stranger-1", Alg::EcdsaP256);
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let Some(server) = s_server(
            &lab.server,
            &[
                "-CAfile",
                &ca_path,
                "-Verify",
                "1",
                "-verify_return_error",
                "-rev",
            ],
        ) else {
            return;
        };
        let with = |who: Option<&Issued>| {
            only(
                version,
                TlsConfig {
                    client_cert: who.map(|d| d.cert.clone()),
                    client_key: who.map(|d| d.key.clone()),
                    ..trusting(&lab.ca)
                },
            )
            .build()
            .expect("client")
        };
        let mut link = echo(&with(Some(&device)), &server, Feed::split(), "localhost");
        assert!(link.tls.session().expect("session").client_cert_sent);
        link.close();
        drop(link);

        let f = failure(&with(None), &server, "localhost");
        assert!(
            matches!(f, TlsFailure::ClientCertRequired { .. }),
            "{version}: {f:?}"
        );
        assert!(f.to_string().contains("CN=ca test CA"), "{f}");

        let f = failure(&with(Some(&stranger)), &server, "localhost");
        assert!(
            matches!(f, TlsFailure::ClientCertRejected { .. }),
            "{version}: {f:?}"
        );
        assert!(f.to_string().contains("CN=stranger-1"), "{f}");
    }
}

#[test]
fn versions_and_ciphers_without_common_ground() {
    let lab = lab("ossl-proto", Alg::Rsa2048);
    let cases: [(&[&str], TlsVersion, &str); 4] = [
        (&["-tls1_3"], TlsVersion::V1_2, "version-mismatch"),
        (&["-tls1_2"], TlsVersion::V1_3, "version-mismatch"),
        // CBC with RSA key exchange only: rustls has neither.
        (
            &["-tls1_2", "-cipher", "AES128-SHA"],
            TlsVersion::V1_2,
            "no-common-algorithms",
        ),
        // CCM only: rustls (ring) has no CCM suite.
        (
            &["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"],
            TlsVersion::V1_3,
            "no-common-algorithms",
        ),
    ];
    for (args, version, expected) in cases {
        let Some(server) = s_server(&lab.server, args) else {
            return;
        };
        let client = only(version, trusting(&lab.ca)).build().expect("client");
        let f = failure(&client, &server, "localhost");
        assert_eq!(f.name(), expected, "{args:?}: {f}");
    }
}

#[test]
fn a_peer_that_closes_mid_handshake_or_answers_plaintext() {
    let lab = lab("ossl-raw", Alg::EcdsaP256);
    let client = trusting(&lab.ca).build().expect("client");
    for (answer, expected) in [
        (&b""[..], "closed-mid-handshake"),
        (&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..], "not-tls"),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut sock, _) = listener.accept().expect("accept");
            let mut hello = [0u8; 64];
            let _ = sock.read(&mut hello);
            let _ = sock.write_all(answer);
        });
        let tls = client.connect("localhost").expect("connect");
        let mut link = Link::connect(addr, tls, Feed::drip());
        let f = link
            .handshake()
            .and_then(|_| link.drain(Duration::from_secs(5)))
            .expect_err("must fail");
        peer.join().expect("peer");
        assert_eq!(f.name(), expected, "{f}");
    }
}
