//! The embedded broker with clients and a broker written by others: mosquitto_pub and
//! mosquitto_sub in every protocol version, rumqttc, a differential run against mosquitto
//! (the same script of packets must get the same answers), and 256 connections at once.
#![cfg(feature = "embedded-broker")]

mod broker_client;
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use broker_client::{Raw, publish};
use sim7k::broker::EmbeddedBroker;
use sim7k::mqtt::*;

fn tools_installed() -> bool {
    let ok = ["/usr/bin/mosquitto_pub", "/usr/bin/mosquitto_sub"]
        .iter()
        .all(|p| std::path::Path::new(p).exists());
    if !ok {
        assert!(
            !support::mosquitto_required(),
            "mosquitto clients are required (SIM7K_REQUIRE_MOSQUITTO=1)"
        );
        eprintln!("mosquitto_pub/mosquitto_sub not installed: skipping");
    }
    ok
}

fn pub_cmd(addr: SocketAddr, version: &str, qos: &str, topic: &str, msg: &str, retain: bool) {
    let mut c = Command::new("/usr/bin/mosquitto_pub");
    c.args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(["-V", version, "-q", qos, "-t", topic, "-m", msg]);
    if retain {
        c.arg("-r");
    }
    let out = c.output().expect("run mosquitto_pub");
    assert!(out.status.success(), "mosquitto_pub -V {version}: {out:?}");
}

#[test]
fn mosquitto_clients_in_every_version() {
    if !tools_installed() {
        return;
    }
    let b = EmbeddedBroker::start().unwrap();
    let versions = [("mqttv31", "0"), ("mqttv311", "1"), ("mqttv5", "2")];
    // Retained first: a subscriber that connects later gets them at once, which also tells
    // us it has subscribed.
    for (v, q) in versions {
        pub_cmd(
            b.addr(),
            v,
            q,
            &format!("ix/{v}"),
            &format!("kept {v}"),
            true,
        );
    }
    for (v, _) in versions {
        let mut sub = Command::new("/usr/bin/mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &b.addr().port().to_string()])
            .args([
                "-V", v, "-q", "2", "-t", "ix/#", "-C", "4", "-W", "20", "-v",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run mosquitto_sub");
        let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
        let mut got: Vec<String> = (0..3)
            .map(|_| lines.next().expect("a line").expect("utf-8"))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "ix/mqttv31 kept mqttv31",
                "ix/mqttv311 kept mqttv311",
                "ix/mqttv5 kept mqttv5"
            ]
        );
        pub_cmd(b.addr(), v, "1", "ix/live", &format!("live {v}"), false);
        assert_eq!(lines.next().unwrap().unwrap(), format!("ix/live live {v}"));
        assert!(sub.wait().unwrap().success());
    }
    let qos: Vec<(String, u8, bool)> = b
        .received()
        .into_iter()
        .map(|m| (m.topic, m.qos, m.retain))
        .collect();
    assert_eq!(
        qos[..3],
        [
            ("ix/mqttv31".into(), 0, true),
            ("ix/mqttv311".into(), 1, true),
            ("ix/mqttv5".into(), 2, true)
        ]
    );
}

#[test]
fn rumqttc_publishes_and_receives_a_1_mib_message() {
    use rumqttc::{Client, Event, MqttOptions, Packet as RPacket, QoS as RQoS};
    let b = EmbeddedBroker::start().unwrap();
    let mut opts = MqttOptions::new("rumqttc-it", "127.0.0.1", b.addr().port());
    opts.set_max_packet_size(2 << 20, 2 << 20);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(opts, 10);
    client.subscribe("rc/#", RQoS::AtLeastOnce).unwrap();
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    client
        .publish("rc/big", RQoS::AtLeastOnce, false, payload.clone())
        .unwrap();
    let mut puback = false;
    let mut back = None;
    for event in conn.iter().take(50) {
        match event.expect("rumqttc connection") {
            Event::Incoming(RPacket::PubAck(_)) => puback = true,
            Event::Incoming(RPacket::Publish(p)) => back = Some(p),
            _ => {}
        }
        if puback && back.is_some() {
            break;
        }
    }
    let back = back.expect("rumqttc received its message back");
    assert!(puback);
    assert_eq!(back.topic, "rc/big");
    assert!(back.payload.as_ref() == payload.as_slice());
    assert_eq!(back.qos, RQoS::AtLeastOnce);
    assert_eq!(b.received()[0].qos, 1);
}

/// One scripted session: what the subscriber receives (packets decoded; CONNACK properties
/// dropped, as brokers advertise different limits; the packet ids the broker picks for its
/// PUBLISHes are its own business, so only their presence is compared).
fn script(addr: SocketAddr, v: Protocol, tag: &str) -> Vec<Packet> {
    let mut log = Vec::new();
    let strip = |p: Packet| match p {
        Packet::ConnAck(a) => Packet::ConnAck(ConnAck {
            properties: Properties::default(),
            ..a
        }),
        Packet::Publish(p) => Packet::Publish(Publish {
            packet_id: p.packet_id.map(|_| 1),
            ..p
        }),
        p => p,
    };
    let (mut sub, ack, _) = Raw::connect(addr, Connect::new(v, format!("{tag}-sub")));
    log.push(Packet::ConnAck(ack));
    let mut publ = Raw::client(addr, v, &format!("{tag}-pub"));
    // Nobody subscribed yet (5.0: PUBACK 0x10 from both).
    log.extend(publ.publish(publish(
        &format!("{tag}/r"),
        b"retained",
        QoS::AtLeastOnce,
        1,
        true,
    )));
    log.extend(publ.publish(publish(
        &format!("{tag}/n"),
        b"none",
        QoS::ExactlyOnce,
        2,
        false,
    )));
    // Not overlapping: for a message matching two subscriptions, 3.x brokers send one copy;
    // in 5.0 mosquitto sends one per subscription, we send one at the highest QoS (both are
    // allowed; broker_conformance.rs covers ours).
    for (i, (f, q)) in [("/+", QoS::ExactlyOnce), ("/x/#", QoS::AtLeastOnce)]
        .into_iter()
        .enumerate()
    {
        sub.send(&Packet::Subscribe(Subscribe::new(
            i as u16 + 1,
            format!("{tag}{f}"),
            q,
        )));
        log.extend(sub.sync());
    }
    for (i, q) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let p = publish(&format!("{tag}/q"), &[i as u8; 3], q, 20 + i as u16, false);
        log.extend(publ.publish(p));
        for p in sub.sync() {
            if let Packet::Publish(p) = &p {
                sub.ack(p);
            }
            log.push(p);
        }
    }
    sub.send(&Packet::Unsubscribe(Unsubscribe::new(
        9,
        format!("{tag}/+"),
    )));
    log.extend(sub.sync());
    log.extend(publ.publish(publish(
        &format!("{tag}/x/y"),
        b"deep",
        QoS::ExactlyOnce,
        30,
        false,
    )));
    for p in sub.sync() {
        if let Packet::Publish(p) = &p {
            sub.ack(p);
        }
        log.push(p);
    }
    // Clear the retained message so a rerun starts clean.
    publ.publish(publish(&format!("{tag}/r"), b"", QoS::AtMostOnce, 0, true));
    publ.sync();
    sub.send(&Packet::Disconnect(Disconnect::default()));
    log.extend(sub.closed());
    log.into_iter().map(strip).collect()
}

#[test]
fn same_answers_as_mosquitto() {
    let Some(m) = support::Mosquitto::start() else {
        return;
    };
    let b = EmbeddedBroker::start().unwrap();
    for v in [Protocol::V31, Protocol::V311, Protocol::V5] {
        let tag = format!("d{}", v.level());
        let theirs = script(m.addr, v, &tag);
        let ours = script(b.addr(), v, &tag);
        if let Some(i) = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i)) {
            panic!(
                "MQTT {v}: embedded broker vs mosquitto differ at packet {i}:\n ours:   {:?}\n theirs: {:?}\nall ours:   {ours:?}\nall theirs: {theirs:?}",
                ours.get(i),
                theirs.get(i)
            );
        }
        assert!(theirs.len() >= 8, "{theirs:?}");
    }
}

/// A barrier that gives up (panics) after the hang guard instead of waiting forever when a
/// client thread failed.
struct Gate {
    n: usize,
    count: std::sync::Mutex<usize>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            n,
            count: std::sync::Mutex::new(0),
            cv: std::sync::Condvar::new(),
        }
    }

    /// Wait for all `n` threads to arrive at this round (rounds count on).
    fn wait(&self) {
        let mut c = self.count.lock().unwrap();
        *c += 1;
        let round_end = c.div_ceil(self.n) * self.n;
        self.cv.notify_all();
        let (c, t) = self
            .cv
            .wait_timeout_while(c, Duration::from_secs(120), |c| *c < round_end)
            .unwrap();
        assert!(
            !t.timed_out(),
            "only {} of {} clients arrived",
            *c,
            round_end
        );
    }
}

#[test]
fn two_hundred_fifty_six_connections_at_once() {
    let b = EmbeddedBroker::start().unwrap();
    let addr = b.addr();
    let n = 256;
    // All connected at the same time (each waits at a gate), each publishing to itself.
    let barrier = std::sync::Arc::new(Gate::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut c = Raw::client(addr, Protocol::V311, &format!("many{i}"));
                    assert_eq!(c.subscribe(1, &format!("many/{i}"), QoS::AtLeastOnce), [1]);
                    barrier.wait();
                    let topic = format!("many/{i}");
                    c.send(&Packet::Publish(publish(
                        &topic,
                        b"me",
                        QoS::AtLeastOnce,
                        9,
                        false,
                    )));
                    // Our PUBACK and the message coming back, in either order.
                    let mut got = [c.recv().0, c.recv().0];
                    got.sort_by_key(|p| p.packet_type() as u8);
                    let [Packet::Publish(p), Packet::PubAck(a)] = got else {
                        panic!("{got:?}")
                    };
                    assert_eq!((p.topic.as_str(), a.packet_id), (topic.as_str(), 9));
                    c.ack(&p);
                    barrier.wait();
                    c.send(&Packet::Disconnect(Disconnect::default()));
                    c.closed();
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().expect("a client failed");
    }
    assert_eq!(b.received().len(), n);
}

/// Throughput on loopback, for the record (docs, report): not an assertion.
/// `cargo test --release --test broker_interop -- --ignored --nocapture throughput`
#[test]
#[ignore]
fn throughput() {
    let b = EmbeddedBroker::start().unwrap();
    let n = 100_000u32;
    for (qos, label) in [(QoS::AtMostOnce, "QoS 0"), (QoS::AtLeastOnce, "QoS 1")] {
        let mut sub = Raw::client(b.addr(), Protocol::V311, "tp-sub");
        sub.subscribe(1, "tp/#", qos);
        let mut publ = Raw::client(b.addr(), Protocol::V311, "tp-pub");
        let start = std::time::Instant::now();
        let got = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = std::sync::Arc::clone(&got);
        let reader = std::thread::spawn(move || {
            for _ in 0..n {
                let (p, _) = sub.publish_in();
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(id) = p.packet_id {
                    sub.send(&Packet::PubAck(PubAck::new(id)));
                }
            }
        });
        // Batches of 200, at most two ahead of the subscriber, so its queue (1,000 messages)
        // never overflows.
        let mut batch = Vec::new();
        for start in (0..n).step_by(200) {
            while got.load(std::sync::atomic::Ordering::Relaxed) + 400 < start {
                std::thread::sleep(Duration::from_micros(200));
            }
            let end = (start + 200).min(n);
            for i in start..end {
                let id = (i % 60_000) as u16 + 1;
                let p = publish("tp/x", &[0u8; 64], qos, id, false);
                batch.extend(Packet::Publish(p).encode(Protocol::V311).unwrap());
            }
            publ.send_raw(&batch);
            batch.clear();
            if qos == QoS::AtLeastOnce {
                for _ in start..end {
                    assert!(matches!(publ.recv().0, Packet::PubAck(_)));
                }
            }
        }
        reader.join().unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{label}: {n} messages of 64 bytes, 1 publisher -> 1 subscriber: {:.0} msg/s",
            f64::from(n) / secs
        );
    }
}
