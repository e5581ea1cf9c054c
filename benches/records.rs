//! Scale benchmark of the record sinks (issue 15 point 5; not a test):
//! S stations × D devices, each station a separate process pushing each device's record
//! through the real sink code (`records::Sinks`, PostgreSQL and MQTT at once, with the MQTT
//! ledger next to a JSONL file) to one PostgreSQL and one mosquitto started here.
//!
//! An observer measures when each record becomes visible: a subscriber on the broker (the
//! time the PUBLISH arrives) and a poller of `device_runs` every 2 ms (the time a committed
//! row is first seen). Latency = visible − the moment the device's record was made (wall
//! clock, same machine).
//!
//!     cargo bench --bench records                          # 10 × 64, burst and spread
//!     cargo bench --bench records -- --stations 4 --devices 16 --spread-ms 0
//!
//! "burst": every device of every station finishes at the same instant (640 records at
//! once, the worst case). "spread": devices finish at random over `--spread-ms` (a line
//! where devices finish over some seconds). PostgreSQL runs with its defaults (fsync on).

#[path = "../tests/records_support/mod.rs"]
mod records_support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use records_support::{Mosquitto, PgAuth, PgServer, TempDir, device_record};
use sim7k::mqtt::{
    Connect, Packet, Protocol, PubAck, QoS, StreamDecoder, Subscribe, SubscribeFilter,
};
use sim7k::records::{SinkUrl, Sinks};

const PREFIX: &str = "bench";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    if let Ok(station) = std::env::var("SIM7K_BENCH_STATION") {
        station_main(&station);
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is expected.
    let stations: usize = arg("--stations").and_then(|v| v.parse().ok()).unwrap_or(10);
    let devices: usize = arg("--devices").and_then(|v| v.parse().ok()).unwrap_or(64);
    let spreads: Vec<u64> = match arg("--spread-ms").and_then(|v| v.parse().ok()) {
        Some(s) => vec![s],
        None => vec![0, 10_000],
    };
    let Some(pg) = PgServer::start_with(PgAuth::Password, "-c max_connections=200") else {
        return;
    };
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    println!(
        "records bench: {stations} stations × {devices} devices, PostgreSQL (fsync on) + mosquitto on 127.0.0.1"
    );
    println!();
    println!(
        "| scenario | sink | records | records/s | visible p50 | p95 | max | push p50 | push p95 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (round, spread) in spreads.iter().enumerate() {
        let run = format!("bench-{}-{round}", std::process::id());
        one_round(&pg, &broker, &run, stations, devices, *spread);
    }
}

fn one_round(
    pg: &PgServer,
    broker: &Mosquitto,
    run: &str,
    stations: usize,
    devices: usize,
    spread_ms: u64,
) {
    let total = stations * devices;
    let (tx, rx) = mpsc::channel::<(&'static str, String, u64)>();
    let sub = subscriber(broker, tx.clone());
    let poll = poller(pg, run, total, tx);
    let dir = TempDir::new("bench");
    // All stations start together, a moment from now.
    let start_at = now_us() + 1_500_000;
    let mut children = Vec::new();
    for s in 0..stations {
        let child = Command::new(std::env::current_exe().expect("exe"))
            .env("SIM7K_BENCH_STATION", format!("station-{s:02}"))
            .env("SIM7K_BENCH_RUN", run)
            .env("SIM7K_BENCH_DEVICES", devices.to_string())
            .env("SIM7K_BENCH_SPREAD_MS", spread_ms.to_string())
            .env("SIM7K_BENCH_START_US", start_at.to_string())
            .env(
                "SIM7K_BENCH_JSONL",
                dir.path().join(format!("station-{s:02}.jsonl")),
            )
            .env("SIM7K_BENCH_PG", pg.url("&timeout=30s"))
            .env("SIM7K_BENCH_MQTT", broker.url("", PREFIX, "?timeout=30s"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn station");
        children.push(child);
    }
    // Per-record push durations (µs) from the stations; created times by record id.
    let mut push_us = Vec::new();
    let mut created: HashMap<String, u64> = HashMap::new();
    let mut behind = 0usize;
    for mut c in children {
        let mut out = String::new();
        if let Some(mut so) = c.stdout.take() {
            let _ = so.read_to_string(&mut out);
        }
        let _ = c.wait();
        for line in out.lines() {
            let mut it = line.split(' ');
            let (Some(id), Some(made), Some(took), Some(ok)) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            created.insert(id.to_string(), made.parse().unwrap_or(0));
            push_us.push(took.parse::<u64>().unwrap_or(0));
            if ok != "ok" {
                behind += 1;
            }
        }
    }
    // Wait for every record to be seen by both observers (bounded).
    let mut seen: HashMap<&'static str, HashMap<String, u64>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.values().map(HashMap::len).sum::<usize>() < 2 * total && Instant::now() < deadline {
        if let Ok((sink, id, at)) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.entry(sink).or_default().entry(id).or_insert(at);
        }
    }
    drop(sub);
    drop(poll);
    let first = created.values().copied().min().unwrap_or(0);
    let scenario = if spread_ms == 0 {
        "burst".to_string()
    } else {
        format!("spread {} s", spread_ms / 1000)
    };
    push_us.sort_unstable();
    for sink in ["postgres", "mqtt"] {
        let Some(m) = seen.get(sink) else {
            println!("| {scenario} | {sink} | 0 | – | – | – | – | – | – |");
            continue;
        };
        let mut lat: Vec<u64> = m
            .iter()
            .filter_map(|(id, at)| created.get(id).map(|c| at.saturating_sub(*c)))
            .collect();
        lat.sort_unstable();
        let last = m.values().copied().max().unwrap_or(first);
        let secs = (last.saturating_sub(first)) as f64 / 1e6;
        let rate = if secs > 0.0 {
            m.len() as f64 / secs
        } else {
            0.0
        };
        println!(
            "| {scenario} | {sink} | {}/{total} | {rate:.0} | {} | {} | {} | {} | {} |",
            m.len(),
            ms(pct(&lat, 50)),
            ms(pct(&lat, 95)),
            ms(lat.last().copied().unwrap_or(0)),
            ms(pct(&push_us, 50)),
            ms(pct(&push_us, 95)),
        );
    }
    if behind > 0 {
        println!("({behind} pushes reported a sink behind)");
    }
}

fn pct(v: &[u64], p: usize) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let i = ((v.len() - 1) * p).div_ceil(100);
    v.get(i).copied().unwrap_or(0)
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// A station: D device threads, each pushing its record when its device "finishes".
fn station_main(station: &str) {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let run = env("SIM7K_BENCH_RUN");
    let devices: usize = env("SIM7K_BENCH_DEVICES").parse().unwrap_or(64);
    let spread_ms: u64 = env("SIM7K_BENCH_SPREAD_MS").parse().unwrap_or(0);
    let start_us: u64 = env("SIM7K_BENCH_START_US").parse().unwrap_or(0);
    let sinks = Sinks::from_urls(&[env("SIM7K_BENCH_PG"), env("SIM7K_BENCH_MQTT")], station)
        .expect("sink URLs");
    sinks
        .keep_ledgers_next_to(std::path::Path::new(&env("SIM7K_BENCH_JSONL")))
        .expect("ledger");
    // Connect (and check the schema) before the clock starts, as a run does at its start.
    for (name, r) in sinks.probe() {
        if let Err(e) = r {
            eprintln!("{station}: {name}: {e}");
        }
    }
    let mut seed = station.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let delays: Vec<u64> = (0..devices)
        .map(|_| {
            if spread_ms == 0 {
                0
            } else {
                next() % (spread_ms * 1000)
            }
        })
        .collect();
    let wait = start_us.saturating_sub(now_us());
    std::thread::sleep(Duration::from_micros(wait));
    let t0 = now_us();
    let lines = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (n, delay) in delays.iter().enumerate() {
            let (sinks, lines, run) = (&sinks, &lines, &run);
            s.spawn(move || {
                let due = t0 + delay;
                std::thread::sleep(Duration::from_micros(due.saturating_sub(now_us())));
                let mut r = device_record(run, n);
                r.device = format!("{station}-emu{n:02}");
                r.imei = Some(format!("{}{:03}", &station[station.len() - 2..], n));
                let mut v = serde_json::to_value(&r).expect("record");
                let made = now_us();
                v["bench_created_us"] = made.into();
                let t = Instant::now();
                let report = sinks.push_value(v);
                let took = t.elapsed().as_micros();
                let ok = if report.behind() { "behind" } else { "ok" };
                if let Ok(mut l) = lines.lock() {
                    l.push(format!("{run}/{} {made} {took} {ok}", r.device));
                }
            });
        }
    });
    let mut out = std::io::stdout().lock();
    for l in lines.into_inner().unwrap_or_default() {
        let _ = writeln!(out, "{l}");
    }
}

/// Stops its observer thread on drop.
struct Stop(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// A QoS 1 subscriber on `bench/#`: sends ("mqtt", record id, arrival µs).
fn subscriber(broker: &Mosquitto, tx: mpsc::Sender<(&'static str, String, u64)>) -> Stop {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut s = TcpStream::connect(broker.addr).expect("connect to mosquitto");
    let send = |s: &mut TcpStream, p: Packet| {
        let b = p.encode(Protocol::V311).expect("encode");
        s.write_all(&b).expect("write");
    };
    send(
        &mut s,
        Packet::Connect(Connect::new(Protocol::V311, "bench-observer")),
    );
    let sub = Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter::new(
            format!("{PREFIX}/#"),
            QoS::AtLeastOnce,
        )],
        ..Subscribe::default()
    };
    send(&mut s, Packet::Subscribe(sub));
    let mut dec = StreamDecoder::new(Protocol::V311);
    let mut buf = [0u8; 65536];
    // Wait for the SUBACK before the stations start.
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    'wait: loop {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "mosquitto closed the observer");
        dec.push(&buf[..n]);
        while let Ok(Some(p)) = dec.next_packet() {
            if matches!(p, Packet::SubAck(_)) {
                break 'wait;
            }
        }
    }
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let st = stop.clone();
    let t = std::thread::spawn(move || {
        while !st.load(std::sync::atomic::Ordering::SeqCst) {
            let n = match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => continue,
            };
            let at = now_us();
            dec.push(&buf[..n]);
            while let Ok(Some(p)) = dec.next_packet() {
                if let Packet::Publish(p) = p {
                    if let Some(id) = p.packet_id {
                        let b = Packet::PubAck(PubAck::new(id))
                            .encode(Protocol::V311)
                            .expect("encode");
                        let _ = s.write_all(&b);
                    }
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload)
                        && let Some(id) = v["record_id"].as_str()
                    {
                        let _ = tx.send(("mqtt", id.to_string(), at));
                    }
                }
            }
        }
    });
    Stop(stop, Some(t))
}

/// Polls `device_runs` every 2 ms: sends ("postgres", record id, first-seen µs).
fn poller(
    pg: &PgServer,
    run: &str,
    total: usize,
    tx: mpsc::Sender<(&'static str, String, u64)>,
) -> Stop {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let SinkUrl::Postgres(url) = SinkUrl::parse(&pg.url("")).expect("url") else {
        panic!("not postgres")
    };
    let run = run.to_string();
    let st = stop.clone();
    let t = std::thread::spawn(move || {
        let mut conn: Option<sim7k::records::pg::wire::Connection> = None;
        let mut known = std::collections::HashSet::new();
        while !st.load(std::sync::atomic::Ordering::SeqCst) && known.len() < total {
            std::thread::sleep(Duration::from_millis(2));
            if conn.is_none() {
                // The schema may not exist before the first station creates it.
                conn = sim7k::records::pg::wire::Connection::connect(
                    &url,
                    Instant::now() + Duration::from_secs(5),
                )
                .ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            c.set_deadline(Instant::now() + Duration::from_secs(5));
            let rows = c.query(
                "SELECT device FROM device_runs WHERE run_id = $1",
                &[Some(&run)],
            );
            let at = now_us();
            match rows {
                Ok(rows) => {
                    for row in rows {
                        if let Some(Some(d)) = row.into_iter().next()
                            && known.insert(d.clone())
                        {
                            let _ = tx.send(("postgres", format!("{run}/{d}"), at));
                        }
                    }
                }
                Err(sim7k::records::pg::wire::QueryError::Server(_)) => {}
                Err(_) => conn = None,
            }
        }
    });
    Stop(stop, Some(t))
}
