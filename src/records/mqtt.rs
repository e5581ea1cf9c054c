//! The MQTT sink: each record as JSON, QoS 1, on `<prefix>/<station>/<imei>` (the device
//! label when there is no IMEI), published with the crate's own codec over a `TcpStream`
//! (`mqtt://`) or through sim7k's TLS client on that stream (`mqtts://`: the bundled web
//! roots, or `?ca=FILE`), with every read and write bounded by the push deadline.
//!
//! A push waits for the PUBACK; acknowledged records go to the [`Ledger`] next to the JSONL
//! so `records push` later sends only the rest. The connection is kept between pushes and
//! replaced when it has been idle for longer than half the keep-alive (no background thread
//! pings for it) or when it fails.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::ledger::{self, Ledger};
use super::record::{Record, RecordId};
use super::sink::{Delivery, Sink, SinkError, SinkErrorKind};
use super::url::{MqttUrl, SinkUrl};
use crate::mqtt::{Connect, Packet, Protocol, Publish, QoS, StreamDecoder};

/// Keep-alive announced in CONNECT.
const KEEP_ALIVE: u16 = 60;

/// A connection idle for longer than this is replaced before the next publish.
const IDLE_REPLACE: Duration = Duration::from_secs(KEEP_ALIVE as u64 / 2);

/// The topic of a record: `<prefix>/<station>/<imei or device>`, each level cleaned of the
/// characters a topic name cannot hold (`+`, `#`, `/`, NUL become `_`).
pub fn topic(prefix: &str, station: &str, record: &Record) -> String {
    let leaf = record.imei().unwrap_or(&record.id.device);
    format!("{prefix}/{}/{}", level(station), level(leaf))
}

fn level(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| match c {
            '+' | '#' | '/' | '\0' => '_',
            c => c,
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

/// An MQTT broker as a record sink.
pub struct MqttSink {
    url: MqttUrl,
    conn: Option<Conn>,
    ledger: Option<Ledger>,
}

struct Conn {
    stream: TcpStream,
    /// `mqtts://`: the TLS session on `stream` (sans IO: ciphertext in and out here).
    tls: Option<crate::tls::TlsStream>,
    decoder: StreamDecoder,
    next_id: u16,
    last_used: Instant,
    place: String,
}

impl MqttSink {
    /// A sink for `url`; it connects on first use.
    pub fn new(url: MqttUrl) -> MqttSink {
        MqttSink {
            url,
            conn: None,
            ledger: None,
        }
    }

    fn place(&self) -> String {
        format!("MQTT broker at {}:{}", self.url.host, self.url.port)
    }

    fn connection(&mut self, deadline: Instant) -> Result<(&mut Conn, bool), SinkError> {
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.last_used.elapsed() > IDLE_REPLACE)
        {
            self.conn = None;
        }
        let reused = self.conn.is_some();
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.url, &self.place(), deadline)?);
        }
        self.conn
            .as_mut()
            .map(|c| (c, reused))
            .ok_or_else(|| SinkError::new(SinkErrorKind::Protocol, "no connection"))
    }

    fn publish(&mut self, topic: &str, payload: &[u8], deadline: Instant) -> Result<(), SinkError> {
        for attempt in 0..2 {
            let (conn, reused) = self.connection(deadline)?;
            match conn.publish(topic, payload, deadline) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.conn = None;
                    // A kept connection the broker dropped meanwhile: one fresh try.
                    let stale = reused
                        && attempt == 0
                        && matches!(e.kind, SinkErrorKind::Unreachable | SinkErrorKind::Protocol);
                    if !stale {
                        return Err(e);
                    }
                }
            }
        }
        Err(SinkError::new(
            SinkErrorKind::Unreachable,
            format!("{}: the connection keeps failing", self.place()),
        ))
    }
}

impl Sink for MqttSink {
    fn name(&self) -> String {
        SinkUrl::Mqtt(self.url.clone()).redacted()
    }

    fn timeout(&self) -> Duration {
        self.url.timeout
    }

    fn push(
        &mut self,
        record: &Record,
        station: &str,
        deadline: Instant,
    ) -> Result<Delivery, SinkError> {
        let topic = topic(&self.url.prefix, station, record);
        let payload = serde_json::to_vec(&record.json_for(station)).map_err(|e| {
            SinkError::new(
                SinkErrorKind::Rejected,
                format!("cannot encode the record: {e}"),
            )
        })?;
        self.publish(&topic, &payload, deadline)?;
        if let Some(l) = self.ledger.as_mut() {
            l.add(&record.id).map_err(|e| {
                SinkError::new(
                    SinkErrorKind::Rejected,
                    format!(
                        "published, but the ledger {} could not be written ({e}): a later `records push` sends it again",
                        l.path().display()
                    ),
                )
            })?;
        }
        Ok(Delivery::Published)
    }

    fn present(
        &mut self,
        _records: &[Record],
        _deadline: Instant,
    ) -> Result<HashSet<RecordId>, SinkError> {
        Ok(self
            .ledger
            .as_ref()
            .map(|l| l.sent().clone())
            .unwrap_or_default())
    }

    fn keep_ledger_next_to(&mut self, jsonl: &Path) -> io::Result<()> {
        let path = ledger::path_for(jsonl, &self.url.destination());
        self.ledger = Some(Ledger::open(&path)?);
        Ok(())
    }

    fn probe(&mut self, deadline: Instant) -> Result<(), SinkError> {
        self.connection(deadline).map(|_| ())
    }
}

/// Client ids must differ between the connections of one broker: the process id and a
/// counter make them unique on a machine; the station's name is in the topic.
fn client_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

impl Conn {
    fn open(url: &MqttUrl, place: &str, deadline: Instant) -> Result<Conn, SinkError> {
        // mqtts://: the TLS client first, so a bad CA file is a configuration error before
        // any connection.
        let tls = if url.tls {
            let config = crate::tls::TlsConfig {
                ca_file: url.ca_file.clone(),
                ..crate::tls::TlsConfig::default()
            };
            let client = config
                .build()
                .map_err(|e| SinkError::new(SinkErrorKind::Config, format!("{place}: TLS: {e}")))?;
            let stream = client
                .connect(&url.host)
                .map_err(|f| tls_error(place, &f))?;
            Some(stream)
        } else {
            None
        };
        let stream = super::sink::connect_tcp(&url.host, url.port, place, deadline)?;
        let _ = stream.set_nodelay(true);
        let mut c = Conn {
            stream,
            tls,
            decoder: StreamDecoder::new(Protocol::V311),
            next_id: 0,
            last_used: Instant::now(),
            place: place.to_string(),
        };
        let mut connect = Connect::new(Protocol::V311, client_id(&url.client_id));
        connect.keep_alive = KEEP_ALIVE;
        connect.username = url.username.clone();
        connect.password = url.password.as_ref().map(|p| p.as_bytes().to_vec());
        if connect.password.is_some() && connect.username.is_none() {
            // MQTT 3.1.1 allows a password only with a user name.
            connect.username = Some(String::new());
        }
        c.send(&Packet::Connect(connect), deadline)?;
        loop {
            match c.next_packet(deadline, "waiting for CONNACK")? {
                Packet::ConnAck(ack) if ack.is_success() => return Ok(c),
                Packet::ConnAck(ack) => {
                    let hint = match ack.code {
                        4 | 5 => {
                            " — check the user name and password in the URL (mqtt://USER:PASSWORD@host, or {{env.NAME}}) and the broker's ACL"
                        }
                        2 => " — the broker refused the client id; set another with ?client_id=",
                        _ => "",
                    };
                    return Err(SinkError::new(
                        SinkErrorKind::Refused,
                        format!(
                            "{place} refused the connection: {}{hint}",
                            ack.reason_text(Protocol::V311)
                        ),
                    ));
                }
                _ => {}
            }
        }
    }

    fn publish(&mut self, topic: &str, payload: &[u8], deadline: Instant) -> Result<(), SinkError> {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let id = self.next_id;
        let mut p = Publish::new(topic.to_string(), payload.to_vec());
        p.qos = QoS::AtLeastOnce;
        p.packet_id = Some(id);
        self.send(&Packet::Publish(p), deadline)?;
        loop {
            match self.next_packet(deadline, "waiting for PUBACK")? {
                Packet::PubAck(ack) if ack.packet_id == id => {
                    self.last_used = Instant::now();
                    return if ack.is_success() {
                        Ok(())
                    } else {
                        Err(SinkError::new(
                            SinkErrorKind::Refused,
                            format!(
                                "{} refused the record: {}",
                                self.place,
                                ack.reason_text(Protocol::V311)
                            ),
                        ))
                    };
                }
                _ => {}
            }
        }
    }

    fn send(&mut self, p: &Packet, deadline: Instant) -> Result<(), SinkError> {
        let bytes = p.encode(Protocol::V311).map_err(|e| {
            SinkError::new(
                SinkErrorKind::Rejected,
                format!("cannot encode the packet: {e}"),
            )
        })?;
        if let Some(t) = self.tls.as_mut() {
            // Before the handshake completes the packet waits inside the TLS session and
            // goes out after the client's Finished.
            t.write(&bytes).map_err(|f| tls_error(&self.place, &f))?;
        } else {
            self.write_wire(&bytes, deadline, "sending")?;
        }
        self.flush_tls(deadline)
    }

    /// Write bytes to the socket, bounded by the deadline.
    fn write_wire(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
        doing: &str,
    ) -> Result<(), SinkError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let left = left(deadline).ok_or_else(|| timeout(&self.place, doing))?;
        let _ = self.stream.set_write_timeout(Some(left));
        self.stream
            .write_all(bytes)
            .map_err(|e| io_error(&self.place, e, doing))
    }

    /// Send the ciphertext the TLS session has waiting (handshake flights, records).
    fn flush_tls(&mut self, deadline: Instant) -> Result<(), SinkError> {
        let out = match self.tls.as_mut() {
            Some(t) => t.take_all_send(),
            None => return Ok(()),
        };
        self.write_wire(&out, deadline, "sending TLS")
    }

    fn next_packet(&mut self, deadline: Instant, doing: &str) -> Result<Packet, SinkError> {
        loop {
            match self.decoder.next_packet() {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                Err(e) => {
                    return Err(SinkError::new(
                        SinkErrorKind::Protocol,
                        format!("{}: bad packet from the broker: {e}", self.place),
                    ));
                }
            }
            let left = left(deadline).ok_or_else(|| timeout(&self.place, doing))?;
            let _ = self.stream.set_read_timeout(Some(left));
            let mut buf = [0u8; 4096];
            let n = self
                .stream
                .read(&mut buf)
                .map_err(|e| io_error(&self.place, e, doing))?;
            if n == 0 {
                if let Some(Err(f)) = self.tls.as_mut().map(|t| t.socket_closed()) {
                    return Err(tls_error(&self.place, &f));
                }
                return Err(SinkError::new(
                    SinkErrorKind::Unreachable,
                    format!("{}: the broker closed the connection ({doing})", self.place),
                ));
            }
            let data = buf.get(..n).unwrap_or_default();
            match self.tls.as_mut() {
                Some(t) => {
                    let received = t.receive(data);
                    // Handshake answers (or the alert saying why it failed) go out first.
                    self.flush_tls(deadline)?;
                    received.map_err(|f| tls_error(&self.place, &f))?;
                    if let Some(t) = self.tls.as_mut() {
                        let plain = t.read();
                        self.decoder.push(&plain);
                    }
                }
                None => self.decoder.push(data),
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A clean DISCONNECT, never waited for.
        if let Ok(bytes) =
            Packet::Disconnect(crate::mqtt::Disconnect::default()).encode(Protocol::V311)
        {
            let _ = self
                .stream
                .set_write_timeout(Some(Duration::from_millis(100)));
            let bytes = match self.tls.as_mut() {
                Some(t) => {
                    let _ = t.write(&bytes);
                    t.close();
                    t.take_all_send()
                }
                None => bytes,
            };
            let _ = self.stream.write_all(&bytes);
        }
    }
}

fn left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn timeout(place: &str, doing: &str) -> SinkError {
    SinkError::new(
        SinkErrorKind::Timeout,
        format!("{place}: no answer in time ({doing})"),
    )
}

/// A TLS failure: the connection was refused for a reason the user can act on (the
/// failure says what to check: CA, name, validity…).
fn tls_error(place: &str, f: &crate::tls::TlsFailure) -> SinkError {
    SinkError::new(SinkErrorKind::Refused, format!("{place}: TLS: {f}"))
}

fn io_error(place: &str, e: io::Error, doing: &str) -> SinkError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timeout(place, doing),
        _ => SinkError::new(SinkErrorKind::Unreachable, format!("{place}: {doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topics_use_the_imei_or_the_device() {
        let mut v = json!({"run": "r", "device": "tty/USB#2", "verdict": "passed",
                           "started": "2025-11-25T15:32:00.000Z"});
        let r = Record::from_value(v.clone()).unwrap();
        assert_eq!(topic("f/l1", "st+1", &r), "f/l1/st_1/tty_USB_2");
        v["imei"] = json!("869951031234564");
        let r = Record::from_value(v).unwrap();
        assert_eq!(topic("f", "st", &r), "f/st/869951031234564");
        assert_eq!(topic("f", "", &r), "f/_/869951031234564");
    }
}
