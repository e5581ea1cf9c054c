//! An embedded MQTT broker for the offline first run (`sim7k run --emulate`) and for tests
//! (feature `embedded-broker`, on by default), built on the crate's own MQTT codec.
//!
//! * [`Broker`] is the sans-IO core: no sockets, no threads, no clock reads. An edge feeds it
//!   connections and bytes and takes the bytes to send (see `core.rs` for the protocol).
//! * [`EmbeddedBroker`] is the TCP edge: [`EmbeddedBroker::start`] listens on a free
//!   `127.0.0.1` port ([`EmbeddedBroker::addr`]) and records every PUBLISH a client sends as a
//!   [`ReceivedMessage`] (topic, payload, the QoS and RETAIN flag the client used), observed
//!   with [`EmbeddedBroker::received`] and [`EmbeddedBroker::wait_for`]. Dropping it (or
//!   [`EmbeddedBroker::stop`]) closes every connection and joins every thread.
//! * [`memory`] serves the in-memory emulator (`emulator::memory::Bench`) from the core: no
//!   sockets, no threads, the bench's virtual clock; one core shared by many benches.
//!
//! What it speaks: MQTT 3.1, 3.1.1 and 5.0 on one port; CONNECT/CONNACK with any credentials
//! (or only configured ones: [`BrokerConfig::credentials`]); clean and persistent sessions
//! (3.x clean session 0, 5.0 session expiry) with session present; keep-alive (1.5 times the
//! client's value; any byte received counts); wills; SUBSCRIBE with `+` and `#` and the
//! `$`-topic rule; retained messages; QoS 0, 1 and 2 both ways; UNSUBSCRIBE; PINGREQ;
//! DISCONNECT; 5.0 topic aliases from clients, subscription identifiers, no-local,
//! retain-as-published and retain handling; payloads up to 16 MiB. Malformed input closes
//! the connection (a 5.0 client first gets DISCONNECT with the reason code).
//!
//! What it leaves out, being a test broker: shared subscriptions (5.0 SUBACK 0x9E), AUTH
//! exchanges, will delay and message expiry (forwarded unchanged), persistence to disk,
//! authorization per topic. Messages queued for one client are capped at 1,000, 64 in flight.
//!
//! Why our own broker rather than rumqttd 0.20 behind a recording proxy (as before): under
//! load rumqttd disconnected healthy clients. Its router frees a connection's id as soon as
//! it handles the client's DISCONNECT, and the connection task, seeing the socket close,
//! then sends a second disconnect event for the same id; when another client connected in
//! between and was given that id (slab reuse), that client is disconnected right after its
//! CONNACK. 64 emulated devices failed in about a third of runs. rumqttd also rewrote the
//! QoS of forwarded messages and brought tokio, axum and hyper into the binary.

mod core;
#[cfg(test)]
mod core_tests;
pub mod memory;
mod record;
mod route;
mod session;
mod tcp;
mod tls;
mod topic;

pub use self::core::{Broker, BrokerConfig, ConnId, Credentials, MAX_PAYLOAD};
pub use record::{JSON_PAYLOAD_MAX, ReceivedMessage, fnv1a64};
pub use tcp::{ByteStream, EmbeddedBroker};
pub use topic::matches as topic_matches;
