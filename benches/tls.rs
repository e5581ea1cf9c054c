//! What TLS on the host costs on the air: bytes of full and resumed handshakes (TLS 1.2 and
//! 1.3, RSA-2048 and ECDSA P-256 server keys) against a real mosquitto, the per-publish
//! overhead against plaintext for 100 B and 16 KB payloads, the HelloRetryRequest round trip
//! the session cache file saves, and the time at 115200 baud (computed).
//!
//! `cargo bench --bench tls` (needs mosquitto and the openssl CLI). Prints markdown tables.
//!
//! Serial bytes are computed from the TCP payload with the SIM7000's framing in binary
//! manual-receive mode (ATE0): each send of n ≤ 1460 bytes costs `AT+CIPSEND=n\r`, the
//! `\r\n> ` prompt and `\r\nSEND OK\r\n`; each read of n ≤ 1460 bytes costs
//! `AT+CIPRXGET=2,1460\r`, `\r\n+CIPRXGET: 2,n,0\r\n`, the data, `\r\nOK\r\n`, plus one
//! `\r\n+CIPRXGET: 1\r\n` URC (counted per read: an upper bound). The send and read counts are
//! the ones the driver really made (≤ 1460-byte writes and reads on a real socket). Time at
//! 115200 baud = serial bytes × 10 bits / 115200 (8N1), both directions added (the AT
//! exchange is request/response, so they do not overlap much).

#[path = "../tests/tls_support/mod.rs"]
mod tls_support;

use sim7k::mqtt::{Connect, Disconnect, Packet, Protocol, Publish, QoS, StreamDecoder};
use sim7k::tls::{TlsClient, TlsConfig, TlsVersion};
use tls_support::memory::Feed;
use tls_support::net::Link;
use tls_support::peers::{MosquittoTls, OpensslServer};
use tls_support::{ALWAYS, Alg, Pki};

const PROTOCOL: Protocol = Protocol::V311;
const BAUD: f64 = 115_200.0;

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// Serial bytes for `sends` of the given sizes and `reads` of the given sizes.
fn serial(sends: &[usize], reads: &[usize]) -> usize {
    let send: usize = sends
        .iter()
        .map(|n| "AT+CIPSEND=\r".len() + digits(*n) + "\r\n> ".len() + n + "\r\nSEND OK\r\n".len())
        .sum();
    let read: usize = reads
        .iter()
        .map(|n| {
            "\r\n+CIPRXGET: 1\r\n".len()
                + "AT+CIPRXGET=2,1460\r".len()
                + "\r\n+CIPRXGET: 2,,0\r\n".len()
                + digits(*n)
                + n
                + "\r\nOK\r\n".len()
        })
        .sum();
    send + read
}

fn seconds(bytes: usize) -> f64 {
    bytes as f64 * 10.0 / BAUD
}

/// A link that records the size of every send and read.
struct Metered {
    link: Link,
    decoder: StreamDecoder,
}

impl Metered {
    fn open(client: &TlsClient, addr: std::net::SocketAddr) -> Metered {
        let tls = client.connect("localhost").expect("connect");
        let mut link = Link::connect(addr, tls, Feed::modem());
        link.handshake().expect("handshake");
        Metered {
            link,
            decoder: StreamDecoder::new(PROTOCOL).with_max_packet_size(4 << 20),
        }
    }

    fn packet(&mut self) -> Packet {
        loop {
            if let Some(p) = self.decoder.next_packet().expect("decode") {
                return p;
            }
            let bytes = self.link.recv_until(|b| !b.is_empty()).expect("recv");
            assert!(!bytes.is_empty(), "closed");
            self.decoder.push(&bytes);
        }
    }

    fn send(&mut self, p: Packet) {
        self.link
            .send(&p.encode(PROTOCOL).expect("encode"))
            .expect("send");
    }
}

/// Bytes and the real sends and reads of a stretch of a link's life.
struct Counts {
    up: usize,
    down: usize,
    sends: Vec<usize>,
    reads: Vec<usize>,
}

fn counts(link: &Link) -> Counts {
    Counts {
        up: link.sent,
        down: link.received,
        sends: link.send_sizes.clone(),
        reads: link.read_sizes.clone(),
    }
}

fn diff(a: &Counts, b: &Counts) -> Counts {
    Counts {
        up: b.up - a.up,
        down: b.down - a.down,
        sends: b.sends[a.sends.len()..].to_vec(),
        reads: b.reads[a.reads.len()..].to_vec(),
    }
}

fn serial_of(c: &Counts) -> usize {
    serial(&c.sends, &c.reads)
}

/// `total` bytes cut in ≤ 1460-byte sends.
fn pieces(total: usize) -> Vec<usize> {
    (0..total.div_ceil(1460))
        .map(|i| (total - i * 1460).min(1460))
        .collect()
}

fn handshakes() {
    println!("## TLS handshakes against mosquitto 2.0 (one-level test CA, ECDSA P-256 CA key)\n");
    println!(
        "TCP payload up + down until the handshake completes; then the whole minimal MQTT session"
    );
    println!(
        "(handshake, CONNECT/CONNACK, DISCONNECT, close_notify; TLS 1.3 session tickets included)"
    );
    println!("against the same session in plaintext.\n");
    println!(
        "| server key | TLS | handshake | handshake bytes (up + down) | session bytes (up + down) | serial bytes (session) | at 115200 baud (s) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|");
    let connect = Packet::from(Connect::new(PROTOCOL, "bench-device-0001"))
        .encode(PROTOCOL)
        .expect("encode");
    for alg in [Alg::Rsa2048, Alg::EcdsaP256] {
        let pki = Pki::new("bench-hs");
        let ca = pki.ca("ca", Alg::EcdsaP256);
        let server = pki.server(&ca, "server", &["localhost"], alg, ALWAYS);
        let Some(broker) = MosquittoTls::start(&ca.issued.cert, &server.cert, &server.key, "")
        else {
            return;
        };
        for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
            let client = TlsConfig {
                ca_file: Some(ca.issued.cert.clone()),
                min_version: version,
                max_version: version,
                ..TlsConfig::default()
            }
            .build()
            .expect("client");
            for round in ["full", "resumed"] {
                let mut m = Metered::open(&client, broker.addr);
                let info = m.link.tls.session().expect("info").clone();
                assert_eq!(info.resumed, round == "resumed");
                m.send(Connect::new(PROTOCOL, "bench-device-0001").into());
                assert!(matches!(m.packet(), Packet::ConnAck(_)));
                m.send(Disconnect::default().into());
                m.link.close();
                let c = counts(&m.link);
                let serial_bytes = serial_of(&c);
                println!(
                    "| {} | {} | {round} | {} + {} | {} + {} | {serial_bytes} | {:.2} |",
                    match alg {
                        Alg::Rsa2048 => "RSA-2048",
                        Alg::EcdsaP256 => "ECDSA P-256",
                    },
                    version.name(),
                    info.handshake_sent,
                    info.handshake_received,
                    c.up,
                    c.down,
                    seconds(serial_bytes)
                );
            }
        }
    }
    let plain_up = connect.len() + 2;
    let plain_serial = serial(&[connect.len(), 2], &[4]);
    println!(
        "| (plaintext MQTT) | – | – | – | {plain_up} + 4 | {plain_serial} | {:.2} |\n",
        seconds(plain_serial)
    );
}

fn publishes() {
    println!("## Per-publish overhead: QoS 1 PUBLISH + PUBACK inside an open session\n");
    println!(
        "| TLS | payload | plaintext bytes (up + down) | TLS bytes (up + down) | overhead | serial bytes plain → TLS | at 115200 baud plain → TLS (s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let pki = Pki::new("bench-pub");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let Some(broker) = MosquittoTls::start(&ca.issued.cert, &server.cert, &server.key, "") else {
        return;
    };
    for version in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let client = TlsConfig {
            ca_file: Some(ca.issued.cert.clone()),
            min_version: version,
            max_version: version,
            ..TlsConfig::default()
        }
        .build()
        .expect("client");
        let mut m = Metered::open(&client, broker.addr);
        m.send(Connect::new(PROTOCOL, "bench-pub").into());
        assert!(matches!(m.packet(), Packet::ConnAck(_)));
        let suite = m.link.tls.session().expect("info").cipher_suite.clone();
        for (n, size) in [(1u16, 100usize), (2, 16 * 1024)] {
            let mut p = Publish::new("devices/bench-pub/telemetry", vec![0x42; size]);
            p.qos = QoS::AtLeastOnce;
            p.packet_id = Some(n);
            let plain = Packet::from(p.clone()).encode(PROTOCOL).expect("encode");
            let before = counts(&m.link);
            m.send(p.into());
            assert!(matches!(m.packet(), Packet::PubAck(_)));
            let c = diff(&before, &counts(&m.link));
            let plain_serial = serial(&pieces(plain.len()), &[4]);
            let tls_serial = serial_of(&c);
            let overhead = (c.up + c.down) as f64 / (plain.len() + 4) as f64 - 1.0;
            println!(
                "| {} ({suite}) | {size} | {} + 4 | {} + {} | {:+.1} % ({} B) | {plain_serial} → {tls_serial} | {:.3} → {:.3} |",
                version.name(),
                plain.len(),
                c.up,
                c.down,
                overhead * 100.0,
                c.up + c.down - plain.len() - 4,
                seconds(plain_serial),
                seconds(tls_serial)
            );
        }
        m.send(Disconnect::default().into());
        m.link.close();
    }
    println!();
}

fn hello_retry() {
    println!(
        "## The session cache file against a server without X25519 (openssl s_server -groups P-256, TLS 1.3)\n"
    );
    println!("| run | HelloRetryRequest | handshake bytes (up + down) |");
    println!("|---|---|---:|");
    let pki = Pki::new("bench-hrr");
    let ca = pki.ca("ca", Alg::EcdsaP256);
    let server = pki.server(&ca, "server", &["localhost"], Alg::EcdsaP256, ALWAYS);
    let cert = server.cert.to_string_lossy().into_owned();
    let key = server.key.to_string_lossy().into_owned();
    let Some(s) = OpensslServer::start(&[
        "-cert", &cert, "-key", &key, "-groups", "P-256", "-tls1_3", "-rev",
    ]) else {
        return;
    };
    let settings = TlsConfig {
        ca_file: Some(ca.issued.cert.clone()),
        session_cache: Some(pki.dir.join("session.cache")),
        ..TlsConfig::default()
    };
    for run in ["first run", "next run (new process, cache file read)"] {
        let client = settings.build().expect("client");
        let tls = client.connect("localhost").expect("connect");
        let mut link = Link::connect(s.addr, tls, Feed::modem());
        link.handshake().expect("handshake");
        let info = link.tls.session().expect("info").clone();
        link.close();
        drop(link);
        client.save_session_cache().expect("save");
        println!(
            "| {run} | {} | {} + {} |",
            if info.hello_retry { "yes" } else { "no" },
            info.handshake_sent,
            info.handshake_received
        );
    }
    println!();
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: stay quick there.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    handshakes();
    publishes();
    hello_retry();
}
