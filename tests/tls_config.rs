//! Loading TLS settings: every file problem is named with the file and what to do; keys and
//! session secrets never show in Debug/Display; the key log and verification-off are loud.

mod tls_support;

use sim7k::exit::Exit;
use sim7k::tls::{TlsConfig, TlsConfigError, TlsVersion};
use tls_support::memory::{Feed, MemServer, ServerOpts, pump, server_config};
use tls_support::{ALWAYS, Alg, Pki};

fn err(config: &TlsConfig) -> String {
    let e = config.build().expect_err("must not load");
    assert_eq!(e.kind(), Exit::Usage);
    e.to_string()
}

fn assert_has(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "{n:?} missing from: {msg}");
    }
}

#[test]
fn ca_file_problems_are_named() {
    let pki = Pki::new("cfg-ca");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let with = |path: std::path::PathBuf| TlsConfig {
        ca_file: Some(path),
        ..TlsConfig::default()
    };
    let missing = pki.dir.join("nope.pem");
    assert_has(
        &err(&with(missing)),
        &["TLS CA file", "nope.pem", "cannot read it"],
    );

    let empty = pki.file("empty.pem", b"just text\n");
    assert_has(
        &err(&with(empty)),
        &["no certificate in it", "BEGIN CERTIFICATE"],
    );

    assert_has(
        &err(&with(ca.issued.key.clone())),
        &["no certificate", "it holds a private key"],
    );

    let der = pki.file("ca.der", &ca.issued.der);
    assert_has(
        &err(&with(der)),
        &["DER (binary), not PEM", "openssl x509 -inform der -in"],
    );

    let cut = &ca.issued.cert_pem[..ca.issued.cert_pem.len() - 30];
    let cut = pki.file("cut.pem", cut.as_bytes());
    assert_has(&err(&with(cut)), &["not closed", "cut short"]);

    let junk = pki.file(
        "junk.pem",
        b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
    );
    assert_has(
        &err(&with(junk)),
        &["certificate 1 of 1 is not a readable X.509 certificate"],
    );

    // Many certificates in one file: all trusted, all named.
    let other = pki.ca("other", Alg::EcdsaP256);
    let both = pki.file(
        "both.pem",
        format!("{}{}", ca.issued.cert_pem, other.issued.cert_pem).as_bytes(),
    );
    let client = with(both).build().expect("two CAs");
    assert_has(
        client.trust(),
        &["2 certificates", "CN=ca test CA", "CN=other test CA"],
    );
}

#[test]
fn client_key_problems_are_named() {
    let pki = Pki::new("cfg-key");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let device = pki.client(&ca, "device", "device-1", Alg::EcdsaP256);
    let other = pki.client(&ca, "other", "device-2", Alg::EcdsaP256);
    let with = |cert: &std::path::Path, key: &std::path::Path| TlsConfig {
        ca_file: Some(ca.issued.cert.clone()),
        client_cert: Some(cert.to_path_buf()),
        client_key: Some(key.to_path_buf()),
        ..TlsConfig::default()
    };

    assert_has(
        &err(&with(&device.cert, &other.key)),
        &[
            "client key file",
            "other.key",
            "does not match the certificate in",
            "CN=device-1",
        ],
    );

    pki.openssl(&[
        "pkey",
        "-in",
        "device.key",
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        "enc8.key",
    ]);
    pki.openssl(&[
        "pkey",
        "-in",
        "device.key",
        "-traditional",
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        "enc-legacy.key",
    ]);
    for enc in ["enc8.key", "enc-legacy.key"] {
        assert_has(
            &err(&with(&device.cert, &pki.dir.join(enc))),
            &[
                "encrypted PEM keys are not supported",
                "openssl pkey -in",
                enc,
            ],
        );
    }

    assert_has(
        &err(&with(&device.cert, &device.cert)),
        &["no private key in it", "it holds a certificate"],
    );
    assert_has(
        &err(&with(&device.key, &device.key)),
        &["client certificate file", "no certificate"],
    );

    let only_cert = TlsConfig {
        client_cert: Some(device.cert.clone()),
        ..TlsConfig::default()
    };
    assert_has(&err(&only_cert), &["needs its private key too"]);
    let only_key = TlsConfig {
        client_key: Some(device.key.clone()),
        ..TlsConfig::default()
    };
    assert_has(&err(&only_key), &["needs its certificate too"]);
}

#[test]
fn settings_that_cannot_work() {
    let backwards = TlsConfig {
        min_version: TlsVersion::V1_3,
        max_version: TlsVersion::V1_2,
        ..TlsConfig::default()
    };
    assert_has(
        &err(&backwards),
        &["lowest version (TLS 1.3) is above the highest (TLS 1.2)"],
    );
    let alpn = TlsConfig {
        alpn: vec![String::new()],
        ..TlsConfig::default()
    };
    assert_has(&err(&alpn), &["ALPN"]);
    let name = TlsConfig {
        server_name: Some("a b".into()),
        ..TlsConfig::default()
    };
    assert_has(&err(&name), &["neither a DNS name nor an IP address"]);

    assert_eq!("1.2".parse(), Ok(TlsVersion::V1_2));
    assert_eq!("TLSv1.3".parse(), Ok(TlsVersion::V1_3));
    assert_eq!("tls1.2".parse(), Ok(TlsVersion::V1_2));
    assert!(
        "1.1"
            .parse::<TlsVersion>()
            .unwrap_err()
            .contains("obsolete")
    );
}

#[cfg(feature = "web-roots")]
#[test]
fn without_a_ca_file_the_bundled_web_roots_are_trusted() {
    let client = TlsConfig::default().build().expect("web roots");
    assert_has(client.trust(), &["bundled Mozilla roots"]);
    assert!(client.warnings().is_empty());
}

#[test]
fn no_private_key_or_secret_in_debug_or_display() {
    let pki = Pki::new("cfg-secrets");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let device = pki.client(&ca, "device", "device-1", Alg::Rsa2048);
    let keylog = pki.dir.join("keys.log");
    let settings = TlsConfig {
        ca_file: Some(ca.issued.cert.clone()),
        client_cert: Some(device.cert.clone()),
        client_key: Some(device.key.clone()),
        key_log: Some(keylog.clone()),
        ..TlsConfig::default()
    };
    let client = settings.build().expect("client");
    let mut shown = vec![format!("{settings:?}"), format!("{client:?}")];
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let config = server_config(
            &server_cert,
            &ServerOpts {
                versions: vec![match version {
                    TlsVersion::V1_2 => &rustls::version::TLS12,
                    TlsVersion::V1_3 => &rustls::version::TLS13,
                }],
                client_ca: Some(ca.issued.cert_pem.clone()),
                ..ServerOpts::default()
            },
        );
        let mut tls = client.connect("localhost").expect("connect");
        tls.set_observe(true);
        let mut server = MemServer::new(&config);
        pump(&mut tls, &mut server, &Feed::modem()).expect("handshake");
        tls.write(b"data").expect("write");
        pump(&mut tls, &mut server, &Feed::modem()).expect("data");
        shown.push(format!("{tls:?}"));
        shown.push(format!("{:?}", tls.take_events()));
        shown.push(format!("{:?}", tls.session()));
        shown.push(tls.session().expect("info").to_string());
    }
    let log = std::fs::read_to_string(&keylog).expect("key log written");
    let secrets: Vec<&str> = log.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert!(
        log.contains("CLIENT_RANDOM "),
        "TLS 1.2 master secret: {log}"
    );
    assert!(
        log.contains("CLIENT_TRAFFIC_SECRET_0 "),
        "TLS 1.3 secrets: {log}"
    );
    assert!(secrets.len() >= 6);
    let key_lines: Vec<&str> = device
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect();
    assert!(!key_lines.is_empty());
    for text in &shown {
        for line in &key_lines {
            assert!(!text.contains(line), "a key line shows in: {text}");
        }
        for secret in &secrets {
            assert!(
                !text.to_lowercase().contains(secret),
                "a session secret shows in: {text}"
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keylog)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key log is owner-only");
    }
    assert!(
        client
            .warnings()
            .iter()
            .any(|w| w.contains("keys.log") && w.contains("decrypt"))
    );
}

#[test]
fn verification_off_connects_to_anything_and_says_so() {
    let pki = Pki::new("cfg-insecure");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server_cert = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let config = server_config(&server_cert, &ServerOpts::default());
    let client = TlsConfig {
        insecure_skip_verify: true,
        ..TlsConfig::default()
    }
    .build()
    .expect("client");
    assert!(
        client
            .warnings()
            .iter()
            .any(|w| w.contains("verification is OFF"))
    );
    let mut tls = client.connect("wrong.name.test").expect("connect");
    let mut server = MemServer::new(&config);
    pump(&mut tls, &mut server, &Feed::modem()).expect("any certificate passes");
    let info = tls.session().expect("info");
    assert!(!info.verified);
    assert!(info.to_string().contains("SERVER NOT VERIFIED"), "{info}");
}

#[test]
fn a_session_cache_that_cannot_be_read_is_named_a_garbled_one_is_ignored() {
    let pki = Pki::new("cfg-cache");
    let garbled = pki.file(
        "cache",
        b"kx\nkx a b c\n\xff\xfe\nkx host 99999\nkx ok.test 23\n",
    );
    let client = TlsConfig {
        session_cache: Some(garbled),
        ..TlsConfig::default()
    }
    .build()
    .expect("a garbled cache is an empty cache");
    assert_eq!(client.remembered_group("ok.test"), Some(23));
    assert_eq!(client.remembered_group("host"), None);

    let dir_as_file = TlsConfig {
        session_cache: Some(pki.dir.path().to_path_buf()),
        ..TlsConfig::default()
    };
    let e: TlsConfigError = dir_as_file.build().expect_err("a directory");
    assert!(e.to_string().contains("session cache file"), "{e}");
}
