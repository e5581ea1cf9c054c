//! MQTT codec throughput: encode, one-shot decode and streaming decode of small and large
//! packets (criterion; `cargo bench --bench codec`). Figures and their reading are in
//! docs/performance.md.
//!
//! Every benchmark reports bytes of encoded packet per second, so encode and decode of the
//! same packet are directly comparable; `views` the bytes of the packet shown, and `follow`
//! the bytes of transcript read.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sim7k::follow::Follower;
use sim7k::mqtt::{Connect, Packet, Protocol, Publish, QoS, StreamDecoder, decode};
use sim7k::util::escape::escape_bytes;

/// The packets measured: name, packet, protocol.
fn packets() -> Vec<(&'static str, Packet, Protocol)> {
    let mut connect = Connect::new(Protocol::V311, "sim7k-869951031234564");
    connect.keep_alive = 60;
    connect.username = Some("device".into());
    connect.password = Some(b"secret".to_vec());
    let publish = |n: usize| {
        let mut p = Publish::new("sim7k/demo/telemetry", payload(n));
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some(7);
        Packet::Publish(p)
    };
    vec![
        ("connect", Packet::Connect(connect), Protocol::V311),
        ("publish_64B", publish(64), Protocol::V311),
        ("publish_16KiB", publish(16 << 10), Protocol::V311),
        ("publish_16KiB_v5", publish(16 << 10), Protocol::V5),
        // Last: freeing 1 MiB buffers moves glibc's mmap threshold, which slowed the 16 KiB
        // cases measured after it by 5x in an earlier ordering.
        ("publish_1MiB", publish(1 << 20), Protocol::V311),
    ]
}

/// A payload with every byte value (0x1A included).
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn config() -> Criterion {
    // Short runs: the machine is shared (2 cores). Medians are what we report.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (name, packet, v) in packets() {
        let len = packet.encode(v).map(|b| b.len()).unwrap_or(0);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &packet, |b, p| {
            b.iter(|| black_box(p).encode(v))
        });
    }
    g.finish();
}

fn decode_whole(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, packet, v) in packets() {
        let Ok(bytes) = packet.encode(v) else {
            continue;
        };
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| decode(black_box(bytes), v))
        });
    }
    g.finish();
}

/// Feed `stream` to a fresh decoder in `chunk`-byte pieces, draining after each push.
fn stream_decode(stream: &[u8], chunk: usize, v: Protocol) -> usize {
    let mut d = StreamDecoder::new(v).with_max_packet_size(4 << 20);
    let mut n = 0;
    for piece in stream.chunks(chunk) {
        d.push(piece);
        while let Ok(Some(p)) = d.next_packet() {
            black_box(&p);
            n += 1;
        }
    }
    n
}

fn decode_streaming(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_decode");
    let v = Protocol::V311;
    // Many small packets (64-byte payloads), as a subscriber receives them.
    let small = packets()
        .into_iter()
        .find(|(n, ..)| *n == "publish_64B")
        .and_then(|(_, p, v)| p.encode(v).ok())
        .unwrap_or_default();
    let many_small: Vec<u8> = small.repeat(1000);
    let big = |name: &str| {
        packets()
            .into_iter()
            .find(|(n, ..)| *n == name)
            .and_then(|(_, p, v)| p.encode(v).ok())
            .unwrap_or_default()
    };
    let cases = [
        ("1000x_publish_64B", many_small, 16),
        ("1000x_publish_64B", small.repeat(1000), 1460),
        ("publish_16KiB", big("publish_16KiB"), 16),
        ("publish_16KiB", big("publish_16KiB"), 1460),
        ("publish_1MiB", big("publish_1MiB"), 1460),
    ];
    for (name, stream, chunk) in cases {
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(name, format!("chunks_of_{chunk}")),
            &stream,
            |b, s| b.iter(|| stream_decode(black_box(s), chunk, v)),
        );
    }
    g.finish();
}

/// The views `sim7k mqtt decode` and `follow` print: shortened (the default) and full.
fn views(c: &mut Criterion) {
    let mut g = c.benchmark_group("views");
    let v = Protocol::V311;
    for (name, packet, _) in packets()
        .into_iter()
        .filter(|(n, ..)| matches!(*n, "publish_64B" | "publish_1MiB"))
    {
        let len = packet.encode(v).map(|b| b.len()).unwrap_or(0);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("summary", name), &packet, |b, p| {
            b.iter(|| black_box(p).summary(v, Some(200)))
        });
        g.bench_with_input(BenchmarkId::new("describe_short", name), &packet, |b, p| {
            b.iter(|| black_box(p).describe_with(v, Some(200)))
        });
        g.bench_with_input(BenchmarkId::new("describe_full", name), &packet, |b, p| {
            b.iter(|| black_box(p).describe(v))
        });
        g.bench_with_input(BenchmarkId::new("json_short", name), &packet, |b, p| {
            b.iter(|| black_box(p).to_json_with(v, Some(4096)))
        });
    }
    g.finish();
}

/// A transcript of `n` QoS 1 publishes each way, as sim7k writes it: binary `AT+CIPSEND`,
/// `AT+CIPRXGET=2` reads.
fn transcript(n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut t = 0.0;
    let mut push = |dir: char, bytes: &[u8]| {
        t += 0.001;
        lines.push(format!("{t:>8.3} {dir} {}", escape_bytes(bytes)));
    };
    push('>', b"AT+CIPRXGET=1\r");
    push('<', b"\r\nOK\r\n");
    push('>', b"AT+CIPSTART=\"TCP\",\"broker\",1883\r");
    push('<', b"\r\nOK\r\n\r\nCONNECT OK\r\n");
    for i in 0..n {
        let mut p = Publish::new("sim7k/demo/telemetry", payload(64));
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some((i % 60_000 + 1) as u16);
        let bytes = Packet::Publish(p)
            .encode(Protocol::V311)
            .unwrap_or_default();
        push('>', format!("AT+CIPSEND={}\r", bytes.len()).as_bytes());
        push('<', b"\r\n> ");
        push('>', &bytes);
        push('<', b"\r\nSEND OK\r\n\r\n+CIPRXGET: 1\r\n");
        push('>', b"AT+CIPRXGET=2,1460\r");
        let mut rx = format!("\r\n+CIPRXGET: 2,{},0\r\n", bytes.len()).into_bytes();
        rx.extend_from_slice(&bytes);
        rx.extend_from_slice(b"\r\nOK\r\n");
        push('<', &rx);
    }
    lines
}

fn follow(c: &mut Criterion) {
    let mut g = c.benchmark_group("follow");
    let lines = transcript(1000);
    let size: usize = lines.iter().map(|l| l.len() + 1).sum();
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("1000x_publish_64B_each_way", |b| {
        b.iter(|| {
            let mut f = Follower::new(Protocol::V311);
            let mut n = 0;
            for l in &lines {
                n += f.line(black_box(l)).len();
            }
            n + f.finish().len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = encode, decode_whole, decode_streaming, views, follow
}
criterion_main!(benches);
