//! CONNECT (spec 3.1): protocol name and level, connect flags, keep alive, (5.0) properties,
//! then client id, will (properties, topic, payload), user name and password.

use super::error::{DecodeError, EncodeError, Warning, WarningKind};
use super::primitives::{Reader, check_binary, check_string, put_binary, put_string, put_u16};
use super::properties::{Context, Properties};
use super::topic::check_topic_name;
use super::{Protocol, QoS};

/// A CONNECT packet. Its `protocol` decides the encoding (`MQIsdp`/3, `MQTT`/4, `MQTT`/5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version (name and level on the wire).
    pub protocol: Protocol,
    /// Client identifier (3.1: 1 to 23 characters, longer ones tolerated; 3.1.1: empty only
    /// with a clean session). See [`Connect::warnings`].
    pub client_id: String,
    /// Clean session (3.1, 3.1.1) / clean start (5.0).
    pub clean_session: bool,
    /// Keep alive in seconds (0 = off).
    pub keep_alive: u16,
    /// User name.
    pub username: Option<String>,
    /// Password (binary). 3.1 and 3.1.1 need a user name with it.
    pub password: Option<Vec<u8>>,
    /// Last will.
    pub will: Option<LastWill>,
    /// CONNECT properties (5.0 only).
    pub properties: Properties,
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LastWill {
    /// Will topic (a topic name: no wildcards, not empty).
    pub topic: String,
    /// Will payload.
    pub payload: Vec<u8>,
    /// Will QoS.
    pub qos: QoS,
    /// Will retain.
    pub retain: bool,
    /// Will properties (5.0 only).
    pub properties: Properties,
}

impl Connect {
    /// A CONNECT with a clean session, keep alive 60 and nothing else.
    pub fn new(protocol: Protocol, client_id: impl Into<String>) -> Connect {
        Connect {
            protocol,
            client_id: client_id.into(),
            clean_session: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            properties: Properties::default(),
        }
    }

    /// The connect flags byte.
    pub fn flags(&self) -> u8 {
        let mut f = 0u8;
        if self.clean_session {
            f |= 0x02;
        }
        if let Some(w) = &self.will {
            f |= 0x04 | ((w.qos as u8) << 3);
            if w.retain {
                f |= 0x20;
            }
        }
        if self.password.is_some() {
            f |= 0x40;
        }
        if self.username.is_some() {
            f |= 0x80;
        }
        f
    }

    pub(crate) fn validate(&self) -> Result<(), EncodeError> {
        let v = self.protocol;
        check_string("CONNECT client id", &self.client_id)?;
        // A CONNECT the server must refuse is not built by the strict encoder; one it commonly
        // tolerates (a long MQTT 3.1 id) is, and [`Connect::warnings`] says so.
        if let Some(w) = self
            .warnings()
            .into_iter()
            .find(|w| matches!(w.kind(), WarningKind::Refused { .. }))
        {
            return Err(EncodeError::new(w.field(), w.message()));
        }
        self.properties.validate(Context::Connect, v, "CONNECT")?;
        if let Some(w) = &self.will {
            w.properties.validate(Context::Will, v, "CONNECT")?;
            check_string("CONNECT will topic", &w.topic)?;
            check_topic_name(&w.topic, false)
                .map_err(|(_, m)| EncodeError::new("CONNECT will topic", m))?;
            check_binary("CONNECT will payload", &w.payload)?;
        }
        if let Some(u) = &self.username {
            check_string("CONNECT user name", u)?;
        }
        if let Some(p) = &self.password {
            check_binary("CONNECT password", p)?;
            if self.username.is_none() && v != Protocol::V5 {
                return Err(EncodeError::new(
                    "CONNECT password",
                    format!("a password needs a user name in MQTT {}", v.name()),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let v = self.protocol;
        put_string(out, v.protocol_name());
        out.push(v.level());
        out.push(self.flags());
        put_u16(out, self.keep_alive);
        if v == Protocol::V5 {
            self.properties.write(out);
        }
        put_string(out, &self.client_id);
        if let Some(w) = &self.will {
            if v == Protocol::V5 {
                w.properties.write(out);
            }
            put_string(out, &w.topic);
            put_binary(out, &w.payload);
        }
        if let Some(u) = &self.username {
            put_string(out, u);
        }
        if let Some(p) = &self.password {
            put_binary(out, p);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
        let name_at = r.offset();
        let name = r.string("protocol name")?;
        let level_at = r.offset();
        let level = r.u8("protocol level")?;
        let protocol = match (name.as_str(), level) {
            ("MQIsdp", 3) => Protocol::V31,
            ("MQTT", 4) => Protocol::V311,
            ("MQTT", 5) => Protocol::V5,
            ("MQIsdp", l) => {
                return Err(r.err(
                    level_at,
                    "protocol level",
                    format!("level {l} does not match protocol name \"MQIsdp\" (expected 3)"),
                ));
            }
            ("MQTT", 3) => {
                return Err(r.err(
                    level_at,
                    "protocol level",
                    "level 3 (MQTT 3.1) needs protocol name \"MQIsdp\", got \"MQTT\"",
                ));
            }
            ("MQTT", l) => {
                return Err(r.err(
                    level_at,
                    "protocol level",
                    format!("unsupported level {l} (expected 3, 4 or 5)"),
                ));
            }
            (other, _) => {
                return Err(r.err(
                    name_at,
                    "protocol name",
                    format!("unknown protocol name {other:?} (expected \"MQTT\" or \"MQIsdp\")"),
                ));
            }
        };
        let flags_at = r.offset();
        let flags = r.u8("connect flags")?;
        if flags & 0x01 != 0 {
            return Err(r.err(
                flags_at,
                "connect flags",
                format!("reserved bit 0 must be 0 (flags 0x{flags:02X})"),
            ));
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        if will_qos == 3 {
            return Err(r.err(
                flags_at,
                "connect flags",
                format!("will QoS 3 is invalid (flags 0x{flags:02X})"),
            ));
        }
        if !will_flag && (will_qos != 0 || will_retain) {
            return Err(r.err(
                flags_at,
                "connect flags",
                format!("will QoS and will retain must be 0 when the will flag is 0 (flags 0x{flags:02X})"),
            ));
        }
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if has_password && !has_username && protocol != Protocol::V5 {
            return Err(r.err(
                flags_at,
                "connect flags",
                format!(
                    "password flag set without the user name flag, not allowed in MQTT {} (flags 0x{flags:02X})",
                    protocol.name()
                ),
            ));
        }
        let clean_session = flags & 0x02 != 0;
        let keep_alive = r.u16("keep alive")?;
        let properties = if protocol == Protocol::V5 {
            Properties::decode(r, Context::Connect)?
        } else {
            Properties::default()
        };
        // The client id rules are about values a server refuses with CONNACK 0x02, not about
        // well-formed bytes: they are warnings (see `Connect::warnings`), never decode errors.
        let client_id = r.string("client id")?;
        let will = if will_flag {
            let properties = if protocol == Protocol::V5 {
                Properties::decode(r, Context::Will)?
            } else {
                Properties::default()
            };
            let topic_at = r.offset();
            let topic = r.string("will topic")?;
            check_topic_name(&topic, false).map_err(|(i, m)| {
                r.err(
                    if topic.is_empty() {
                        topic_at
                    } else {
                        topic_at + 2 + i
                    },
                    "will topic",
                    m,
                )
            })?;
            let payload = r.binary("will payload")?;
            Some(LastWill {
                topic,
                payload,
                qos: QoS::from_u8(will_qos).unwrap_or_default(),
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string("user name")?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary("password")?)
        } else {
            None
        };
        Ok(Connect {
            protocol,
            client_id,
            clean_session,
            keep_alive,
            username,
            password,
            will,
            properties,
        })
    }
}

/// MQTT 3.1's limit on the client id (MQTT 3.1 §3.1, CONNECT payload, "Client Identifier").
pub(crate) const MQTT31_MAX_CLIENT_ID: usize = 23;

impl Connect {
    /// What a server makes of this CONNECT's values (see [`Warning`]):
    ///
    /// * MQTT 3.1, empty client id: the id is "between 1 and 23 characters long" and the
    ///   server answers CONNACK return code 2, identifier rejected (MQTT 3.1 §3.1, CONNECT
    ///   payload, <http://public.dhe.ibm.com/software/dw/webservices/ws-mqtt/mqtt-v3r1.html>).
    /// * MQTT 3.1, more than 23 characters: the same text asks for CONNACK 2, but mosquitto,
    ///   HiveMQ (since 1.4) and most brokers accept longer ids, so this is only tolerated.
    /// * MQTT 3.1.1, empty client id with clean session 0: the server MUST answer CONNACK
    ///   0x02, identifier rejected, and close the connection [MQTT-3.1.3-8].
    pub fn warnings(&self) -> Vec<Warning> {
        const FIELD: &str = "CONNECT client id";
        let id = &self.client_id;
        let mut out = Vec::new();
        match self.protocol {
            Protocol::V31 => {
                let n = id.chars().count();
                if n == 0 {
                    out.push(Warning::new(
                        FIELD,
                        "empty; MQTT 3.1 needs 1 to 23 characters: a server refuses this \
                         CONNECT with CONNACK 0x02 (identifier rejected) (MQTT 3.1 §3.1)",
                        WarningKind::Refused { code: 0x02 },
                    ));
                } else if n > MQTT31_MAX_CLIENT_ID {
                    out.push(Warning::new(
                        FIELD,
                        format!(
                            "{n} characters; MQTT 3.1 allows at most {MQTT31_MAX_CLIENT_ID} and lets \
                             a server refuse it with CONNACK 0x02 (identifier rejected), though \
                             mosquitto, HiveMQ and most brokers accept it (MQTT 3.1 §3.1)"
                        ),
                        WarningKind::Tolerated,
                    ));
                }
            }
            Protocol::V311 if id.is_empty() && !self.clean_session => out.push(Warning::new(
                FIELD,
                "empty with clean session 0: a server refuses this CONNECT with CONNACK 0x02 \
                 (identifier rejected) [MQTT-3.1.3-8]; give a client id or set clean session",
                WarningKind::Refused { code: 0x02 },
            )),
            _ => {}
        }
        out
    }
}
