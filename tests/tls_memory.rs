//! The TLS core against an in-memory rustls server: handshakes and data both ways in every
//! modem-like split, resumption, the session cache file, SNI/ALPN, mutual TLS with every key
//! format, the transcript view. Failures are in tls_failures.rs, loading errors in
//! tls_config.rs, real peers in tls_openssl.rs and tls_mosquitto.rs.

mod tls_support;

use sim7k::tls::{
    CloseKind, TlsClient, TlsConfig, TlsEvent, TlsRecord, TlsState, TlsVersion,
    records::{ContentType, RecordDetail},
};
use tls_support::memory::{Feed, MemServer, ServerOpts, pump, server_config};
use tls_support::{ALWAYS, Alg, Pki};

fn versions(v: TlsVersion) -> Vec<&'static rustls::SupportedProtocolVersion> {
    match v {
        TlsVersion::V1_2 => vec![&rustls::version::TLS12],
        TlsVersion::V1_3 => vec![&rustls::version::TLS13],
    }
}

fn client_for(ca: &std::path::Path) -> TlsConfig {
    TlsConfig {
        ca_file: Some(ca.to_path_buf()),
        ..TlsConfig::default()
    }
}

#[test]
fn handshake_and_data_both_ways_in_every_split() {
    let pki = Pki::new("mem-data");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let client = client_for(&ca.issued.cert).build().expect("client");
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let config = server_config(
            &server_cert,
            &ServerOpts {
                versions: versions(version),
                ..ServerOpts::default()
            },
        );
        for feed in [Feed::modem(), Feed::drip(), Feed::split()] {
            let mut tls = client.connect("localhost").expect("connect");
            assert_eq!(tls.state(), TlsState::Handshaking);
            assert!(tls.pending_send() > 0, "the ClientHello is ready at once");
            // Written before the handshake completes: held, then sent after Finished.
            tls.write(b"CONNECT-before-handshake").expect("write");
            let mut server = MemServer::new(&config);
            pump(&mut tls, &mut server, &feed).expect("handshake");
            assert_eq!(tls.state(), TlsState::Open, "{version} {feed:?}");
            assert_eq!(server.plain_in, b"CONNECT-before-handshake");
            let info = tls.session().expect("session info").clone();
            assert_eq!(info.version, version);
            // One client for every feed: after the first, sessions resume.
            assert_eq!(
                info.resumed,
                feed.reads != Feed::modem().reads,
                "{version} {feed:?}"
            );
            assert!(info.verified);
            assert!(
                info.server_cert
                    .as_ref()
                    .is_some_and(|c| c.subject == "CN=localhost")
            );

            server.write(&big);
            pump(&mut tls, &mut server, &feed).expect("data");
            assert_eq!(tls.read(), big, "byte-exact through {feed:?}");
            assert!(tls.read().is_empty(), "read takes what it returns");

            tls.write(&big).expect("write big");
            pump(&mut tls, &mut server, &feed).expect("data up");
            assert_eq!(&server.plain_in[24..], &big[..]);

            tls.close();
            assert_eq!(tls.state(), TlsState::Closing);
            pump(&mut tls, &mut server, &feed).expect("close");
            assert!(server.got_close_notify, "close_notify reached the server");
            assert!(tls.write(b"late").is_err(), "no write after close");
        }
    }
}

#[test]
fn resumption_within_a_run_costs_a_fraction_of_the_bytes() {
    let pki = Pki::new("mem-resume");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::Rsa2048, ALWAYS);
    let client = client_for(&ca.issued.cert).build().expect("client");
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let config = server_config(
            &server_cert,
            &ServerOpts {
                versions: versions(version),
                ..ServerOpts::default()
            },
        );
        let mut sizes = Vec::new();
        for round in 0..3 {
            let mut tls = client.connect("localhost").expect("connect");
            let mut server = MemServer::new(&config);
            pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
            let info = tls.session().expect("info").clone();
            assert_eq!(info.resumed, round > 0, "{version} round {round}");
            assert!(
                info.server_cert.is_some(),
                "kept from the session's first handshake"
            );
            sizes.push(info.handshake_sent + info.handshake_received);
            tls.close();
            pump(&mut tls, &mut server, &Feed::modem()).expect("close");
        }
        eprintln!("{version}: full {} B, resumed {} B", sizes[0], sizes[1]);
        assert!(
            sizes[1] * 2 < sizes[0],
            "{version}: a resumed handshake ({} B) costs less than half a full one ({} B)",
            sizes[1],
            sizes[0]
        );
    }
}

#[test]
fn resumption_off_means_full_handshakes() {
    let pki = Pki::new("mem-noresume");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(&server_cert, &ServerOpts::default());
    let client = TlsConfig {
        resumption: false,
        ..client_for(&ca.issued.cert)
    }
    .build()
    .expect("client");
    for _ in 0..2 {
        let mut tls = client.connect("localhost").expect("connect");
        let mut server = MemServer::new(&config);
        pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
        assert!(!tls.session().expect("info").resumed);
    }
}

#[test]
fn the_session_cache_file_saves_the_hello_retry_round_trip_on_the_next_run() {
    let pki = Pki::new("mem-cache");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(
        &server_cert,
        &ServerOpts {
            p256_only: true,
            ..ServerOpts::default()
        },
    );
    let cache = pki.dir.join("tls-session.cache");
    let settings = TlsConfig {
        session_cache: Some(cache.clone()),
        ..client_for(&ca.issued.cert)
    };

    let run = |expect_retry: bool| -> u64 {
        // A new TlsClient per "run", as a new process would build.
        let client: TlsClient = settings.build().expect("client");
        let mut tls = client.connect("localhost").expect("connect");
        let mut server = MemServer::new(&config);
        pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
        let info = tls.session().expect("info").clone();
        assert_eq!(info.hello_retry, expect_retry, "{info}");
        assert_eq!(info.key_exchange.as_deref(), Some("secp256r1"));
        assert!(
            !info.resumed,
            "tickets do not survive the process (see tls::session)"
        );
        client.save_session_cache().expect("save cache");
        info.handshake_sent + info.handshake_received
    };
    let first = run(true);
    let text = std::fs::read_to_string(&cache).expect("cache file written");
    assert!(text.contains("kx localhost 23"), "{text}");
    assert!(!text.contains("SECRET"), "no secret in the cache file");
    let second = run(false);
    eprintln!("P-256-only server: first run {first} B, next run {second} B");
    assert!(second < first, "the next run skips the HelloRetryRequest");
}

#[test]
fn sni_follows_host_override_and_switch_and_ips_send_none() {
    let pki = Pki::new("mem-sni");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(
        &ca,
        "server",
        &["broker.test", "127.0.0.1"],
        Alg::EcdsaP256,
        ALWAYS,
    );
    let config = server_config(&server_cert, &ServerOpts::default());
    let cases: [(TlsConfig, &str, Option<&str>); 4] = [
        (
            client_for(&ca.issued.cert),
            "broker.test",
            Some("broker.test"),
        ),
        (client_for(&ca.issued.cert), "127.0.0.1", None),
        (
            TlsConfig {
                server_name: Some("broker.test".into()),
                ..client_for(&ca.issued.cert)
            },
            "127.0.0.1",
            Some("broker.test"),
        ),
        (
            TlsConfig {
                sni: false,
                ..client_for(&ca.issued.cert)
            },
            "broker.test",
            None,
        ),
    ];
    for (settings, host, sni) in cases {
        let client = settings.build().expect("client");
        let mut tls = client.connect(host).expect("connect");
        let mut server = MemServer::new(&config);
        pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
        assert_eq!(server.conn.server_name(), sni, "host {host}");
        assert_eq!(tls.state(), TlsState::Open);
    }
}

#[test]
fn alpn_is_offered_and_reported() {
    let pki = Pki::new("mem-alpn");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(
        &server_cert,
        &ServerOpts {
            alpn: vec![b"x-amzn-mqtt-ca".to_vec()],
            ..ServerOpts::default()
        },
    );
    let client = TlsConfig {
        alpn: vec!["mqtt".into(), "x-amzn-mqtt-ca".into()],
        ..client_for(&ca.issued.cert)
    }
    .build()
    .expect("client");
    let mut tls = client.connect("localhost").expect("connect");
    let mut server = MemServer::new(&config);
    pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
    let info = tls.session().expect("info");
    assert_eq!(info.alpn.as_deref(), Some("x-amzn-mqtt-ca"));
    assert!(info.to_string().contains("ALPN x-amzn-mqtt-ca"), "{info}");
}

#[test]
fn mutual_tls_with_pkcs8_sec1_and_rsa_keys() {
    let pki = Pki::new("mem-mtls");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(
        &server_cert,
        &ServerOpts {
            client_ca: Some(ca.issued.cert_pem.clone()),
            ..ServerOpts::default()
        },
    );
    let ec = pki.client(&ca, "device-ec", "device-ec", Alg::EcdsaP256);
    let rsa = pki.client(&ca, "device-rsa", "device-rsa", Alg::Rsa2048);
    pki.openssl(&[
        "pkey",
        "-in",
        "device-ec.key",
        "-traditional",
        "-out",
        "device-ec.sec1.key",
    ]);
    pki.openssl(&[
        "pkey",
        "-in",
        "device-rsa.key",
        "-traditional",
        "-out",
        "device-rsa.pkcs1.key",
    ]);
    let sec1 = std::fs::read_to_string(pki.dir.join("device-ec.sec1.key")).expect("sec1");
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
    let pkcs1 = std::fs::read_to_string(pki.dir.join("device-rsa.pkcs1.key")).expect("pkcs1");
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    let cases = [
        (&ec.cert, ec.key.clone(), "PKCS#8 EC"),
        (&ec.cert, pki.dir.join("device-ec.sec1.key"), "SEC1"),
        (&rsa.cert, rsa.key.clone(), "PKCS#8 RSA"),
        (
            &rsa.cert,
            pki.dir.join("device-rsa.pkcs1.key"),
            "PKCS#1 RSA",
        ),
    ];
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        for (cert, key, label) in &cases {
            let client = TlsConfig {
                client_cert: Some(cert.to_path_buf()),
                client_key: Some(key.clone()),
                min_version: version,
                max_version: version,
                ..client_for(&ca.issued.cert)
            }
            .build()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut tls = client.connect("localhost").expect("connect");
            let mut server = MemServer::new(&config);
            pump(&mut tls, &mut server, &Feed::split()).unwrap_or_else(|e| panic!("{label}: {e}"));
            tls.write(b"hello").expect("write");
            pump(&mut tls, &mut server, &Feed::split()).expect("data");
            assert_eq!(server.plain_in, b"hello", "{label} {version}");
            assert!(tls.session().expect("info").client_cert_sent, "{label}");
            let peer = server.conn.peer_certificates().expect("client certificate");
            assert_eq!(peer.len(), 1);
        }
    }
}

#[test]
fn observation_shows_records_and_plaintext_both_ways() {
    let pki = Pki::new("mem-observe");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(
        &server_cert,
        &ServerOpts {
            versions: vec![&rustls::version::TLS12],
            ..ServerOpts::default()
        },
    );
    let client = client_for(&ca.issued.cert).build().expect("client");
    let mut tls = client.connect("localhost").expect("connect");
    tls.set_observe(true);
    let mut server = MemServer::new(&config);
    pump(&mut tls, &mut server, &Feed::drip()).expect("handshake");
    tls.write(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        .expect("write");
    server.write(b"\x20\x02\x00\x00");
    pump(&mut tls, &mut server, &Feed::drip()).expect("data");
    tls.close();
    pump(&mut tls, &mut server, &Feed::drip()).expect("close");
    let events = tls.take_events();
    let records = |sent: bool| -> Vec<TlsRecord> {
        events
            .iter()
            .filter_map(|e| match (e, sent) {
                (TlsEvent::RecordSent(r), true) | (TlsEvent::RecordReceived(r), false) => {
                    Some(r.clone())
                }
                _ => None,
            })
            .collect()
    };
    let sent = records(true);
    let received = records(false);
    assert_eq!(
        sent[0].to_string(),
        format!("handshake ClientHello, {} B", sent[0].length)
    );
    assert_eq!(
        received[0].detail,
        RecordDetail::Handshake(vec![
            "ServerHello",
            "Certificate",
            "ServerKeyExchange",
            "ServerHelloDone"
        ])
        .clone(),
        "rustls sends the TLS 1.2 server flight in one record: {:?}",
        received[0]
    );
    assert!(
        sent.iter()
            .any(|r| r.content_type == ContentType::ChangeCipherSpec)
    );
    assert!(
        sent.iter().any(
            |r| r.content_type == ContentType::Handshake && r.detail == RecordDetail::Encrypted
        ),
        "the client Finished is shown as encrypted"
    );
    let plain_sent: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            TlsEvent::PlaintextSent(p) => Some(p.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let plain_received: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            TlsEvent::PlaintextReceived(p) => Some(p.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(plain_sent, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00");
    assert_eq!(plain_received, b"\x20\x02\x00\x00");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TlsEvent::HandshakeComplete(_)))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TlsEvent::CloseNotifySent))
    );
    // The sent records add up to every byte queued.
    let wire: u64 = sent.iter().map(|r| r.wire_len() as u64).sum();
    assert_eq!(wire, tls.byte_counts().0);
}

#[test]
fn the_peers_close_notify_makes_a_clean_close() {
    let pki = Pki::new("mem-close");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(&server_cert, &ServerOpts::default());
    let client = client_for(&ca.issued.cert).build().expect("client");

    let mut tls = client.connect("localhost").expect("connect");
    let mut server = MemServer::new(&config);
    pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
    server.conn.send_close_notify();
    pump(&mut tls, &mut server, &Feed::modem()).expect("close_notify");
    assert_eq!(tls.state(), TlsState::Closed);
    assert_eq!(tls.socket_closed(), Ok(CloseKind::Clean));

    let mut tls = client.connect("localhost").expect("connect");
    let mut server = MemServer::new(&config);
    pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
    assert_eq!(tls.socket_closed(), Ok(CloseKind::Truncated));
}

#[test]
fn one_client_serves_a_fleet_of_threads_and_they_resume_each_others_sessions() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<TlsClient>();
    send::<sim7k::tls::TlsStream>();
    send_sync::<sim7k::tls::TlsFailure>();

    let pki = Pki::new("mem-fleet");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(&server_cert, &ServerOpts::default());
    let client = std::sync::Arc::new(client_for(&ca.issued.cert).build().expect("client"));
    // The first device makes the session (and its tickets)...
    let mut tls = client.connect("localhost").expect("connect");
    let mut server = MemServer::new(&config);
    pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
    assert!(!tls.session().expect("info").resumed);
    // ...the next ones, on their own threads, resume with them (rustls' server issues
    // two TLS 1.3 tickets per connection, each used once).
    let resumed: Vec<bool> = (0..2)
        .map(|_| {
            let client = client.clone();
            let config = config.clone();
            std::thread::spawn(move || {
                let mut tls = client.connect("localhost").expect("connect");
                let mut server = MemServer::new(&config);
                pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
                tls.session().expect("info").resumed
            })
            .join()
            .expect("thread")
        })
        .collect();
    assert_eq!(resumed, [true, true]);
}
