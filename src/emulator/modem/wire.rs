//! A tiny private MQTT 3.1.1 encoder/parser for the emulated `AT+SM*` client.
//!
//! Only what the module's native client needs: CONNECT, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP,
//! SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT out; CONNACK, SUBACK, UNSUBACK, PUBLISH, the
//! publish acknowledgements and PINGRESP in. The crate's real codec lives in `crate::mqtt`.

/// Options of a CONNECT packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnectOpts {
    pub client_id: String,
    pub keepalive: u16,
    pub clean_session: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// (topic, message, qos, retain)
    pub will: Option<(String, Vec<u8>, u8, bool)>,
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&s[..n]);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    put_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

pub(crate) fn connect(o: &ConnectOpts) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, b"MQTT");
    b.push(4);
    let mut flags = 0u8;
    if o.clean_session {
        flags |= 0x02;
    }
    if let Some((_, _, qos, retain)) = &o.will {
        flags |= 0x04 | ((qos & 3) << 3);
        if *retain {
            flags |= 0x20;
        }
    }
    if o.username.is_some() {
        flags |= 0x80;
    }
    if o.password.is_some() {
        flags |= 0x40;
    }
    b.push(flags);
    b.extend_from_slice(&o.keepalive.to_be_bytes());
    put_str(&mut b, o.client_id.as_bytes());
    if let Some((t, m, _, _)) = &o.will {
        put_str(&mut b, t.as_bytes());
        put_str(&mut b, m);
    }
    if let Some(u) = &o.username {
        put_str(&mut b, u.as_bytes());
    }
    if let Some(p) = &o.password {
        put_str(&mut b, p.as_bytes());
    }
    packet(0x10, &b)
}

pub(crate) fn publish(topic: &str, payload: &[u8], qos: u8, retain: bool, pkid: u16) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, topic.as_bytes());
    if qos > 0 {
        b.extend_from_slice(&pkid.to_be_bytes());
    }
    b.extend_from_slice(payload);
    packet(0x30 | ((qos & 3) << 1) | u8::from(retain), &b)
}

pub(crate) fn ack(kind: AckKind, pkid: u16) -> Vec<u8> {
    let first = match kind {
        AckKind::Puback => 0x40,
        AckKind::Pubrec => 0x50,
        AckKind::Pubrel => 0x62,
        AckKind::Pubcomp => 0x70,
    };
    packet(first, &pkid.to_be_bytes())
}

pub(crate) fn subscribe(pkid: u16, topic: &str, qos: u8) -> Vec<u8> {
    let mut b = pkid.to_be_bytes().to_vec();
    put_str(&mut b, topic.as_bytes());
    b.push(qos & 3);
    packet(0x82, &b)
}

pub(crate) fn unsubscribe(pkid: u16, topic: &str) -> Vec<u8> {
    let mut b = pkid.to_be_bytes().to_vec();
    put_str(&mut b, topic.as_bytes());
    packet(0xA2, &b)
}

pub(crate) fn pingreq() -> Vec<u8> {
    vec![0xC0, 0]
}

pub(crate) fn disconnect() -> Vec<u8> {
    vec![0xE0, 0]
}

/// The four publish acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckKind {
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
}

/// A packet the client can receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    Connack {
        return_code: u8,
    },
    Suback {
        pkid: u16,
        codes: Vec<u8>,
    },
    Unsuback {
        pkid: u16,
    },
    Publish {
        topic: Vec<u8>,
        payload: Vec<u8>,
        qos: u8,
        pkid: u16,
    },
    Ack {
        kind: AckKind,
        pkid: u16,
    },
    Pingresp,
    Other {
        first: u8,
    },
}

/// Take one complete packet from the front of `buf`. `Ok(None)` = need more bytes;
/// `Err(())` = malformed (the client drops the connection).
pub(crate) fn take_packet(buf: &mut Vec<u8>) -> Result<Option<Incoming>, ()> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len: usize = 0;
    let mut mult: usize = 1;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += usize::from(b & 0x7F) * mult;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        mult *= 128;
        if i > 4 {
            return Err(());
        }
    }
    if buf.len() < i + len {
        return Ok(None);
    }
    let body: Vec<u8> = buf[i..i + len].to_vec();
    buf.drain(..i + len);
    let pkid_at = |b: &[u8], at: usize| -> Result<u16, ()> {
        match (b.get(at), b.get(at + 1)) {
            (Some(h), Some(l)) => Ok(u16::from_be_bytes([*h, *l])),
            _ => Err(()),
        }
    };
    let p = match first >> 4 {
        2 => Incoming::Connack {
            return_code: *body.get(1).ok_or(())?,
        },
        3 => {
            let qos = (first >> 1) & 3;
            let tlen = usize::from(pkid_at(&body, 0)?);
            let topic = body.get(2..2 + tlen).ok_or(())?.to_vec();
            let mut at = 2 + tlen;
            let pkid = if qos > 0 {
                let id = pkid_at(&body, at)?;
                at += 2;
                id
            } else {
                0
            };
            Incoming::Publish {
                topic,
                payload: body.get(at..).ok_or(())?.to_vec(),
                qos,
                pkid,
            }
        }
        4 => Incoming::Ack {
            kind: AckKind::Puback,
            pkid: pkid_at(&body, 0)?,
        },
        5 => Incoming::Ack {
            kind: AckKind::Pubrec,
            pkid: pkid_at(&body, 0)?,
        },
        6 => Incoming::Ack {
            kind: AckKind::Pubrel,
            pkid: pkid_at(&body, 0)?,
        },
        7 => Incoming::Ack {
            kind: AckKind::Pubcomp,
            pkid: pkid_at(&body, 0)?,
        },
        9 => Incoming::Suback {
            pkid: pkid_at(&body, 0)?,
            codes: body.get(2..).unwrap_or_default().to_vec(),
        },
        11 => Incoming::Unsuback {
            pkid: pkid_at(&body, 0)?,
        },
        13 => Incoming::Pingresp,
        _ => Incoming::Other { first },
    };
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_connect_like_the_spec() {
        let c = connect(&ConnectOpts {
            client_id: "ab".into(),
            keepalive: 60,
            clean_session: true,
            ..Default::default()
        });
        assert_eq!(
            c,
            vec![
                0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'a', b'b'
            ]
        );
        let c = connect(&ConnectOpts {
            client_id: "c".into(),
            keepalive: 10,
            clean_session: false,
            username: Some("u".into()),
            password: Some("p".into()),
            will: Some(("w".into(), b"x".to_vec(), 1, true)),
        });
        assert_eq!(c[9], 0x80 | 0x40 | 0x20 | 0x08 | 0x04);
    }

    #[test]
    fn encodes_publish_subscribe() {
        assert_eq!(
            publish("a/b", b"hi", 0, false, 0),
            vec![0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i']
        );
        assert_eq!(
            publish("t", b"", 1, true, 7),
            vec![0x33, 5, 0, 1, b't', 0, 7]
        );
        assert_eq!(subscribe(1, "t", 1), vec![0x82, 6, 0, 1, 0, 1, b't', 1]);
        assert_eq!(unsubscribe(2, "t"), vec![0xA2, 5, 0, 2, 0, 1, b't']);
        assert_eq!(ack(AckKind::Pubrel, 9), vec![0x62, 2, 0, 9]);
    }

    #[test]
    fn long_remaining_length() {
        let p = publish("t", &[7u8; 300], 0, false, 0);
        assert_eq!(&p[..3], &[0x30, 0xAF, 0x02]); // 303 = 0x2F + 2*128
        let mut buf = p.clone();
        match take_packet(&mut buf).unwrap().unwrap() {
            Incoming::Publish { topic, payload, .. } => {
                assert_eq!(topic, b"t");
                assert_eq!(payload.len(), 300);
            }
            other => panic!("{other:?}"),
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn parses_incremental_and_malformed() {
        let mut buf = vec![0x20, 2, 0];
        assert_eq!(take_packet(&mut buf), Ok(None));
        buf.push(5);
        assert_eq!(
            take_packet(&mut buf),
            Ok(Some(Incoming::Connack { return_code: 5 }))
        );
        let mut buf = vec![0x90, 3, 0, 1, 0x80, 0xD0, 0];
        assert_eq!(
            take_packet(&mut buf),
            Ok(Some(Incoming::Suback {
                pkid: 1,
                codes: vec![0x80]
            }))
        );
        assert_eq!(take_packet(&mut buf), Ok(Some(Incoming::Pingresp)));
        let mut bad = vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        assert_eq!(take_packet(&mut bad), Err(()));
        let mut bad = vec![0x30, 2, 0, 9];
        assert_eq!(take_packet(&mut bad), Err(()));
        let mut qos1 = publish("x", b"y", 1, false, 3);
        assert_eq!(
            take_packet(&mut qos1),
            Ok(Some(Incoming::Publish {
                topic: b"x".to_vec(),
                payload: b"y".to_vec(),
                qos: 1,
                pkid: 3
            }))
        );
    }
}
