//! Chunked data sends: the payload is one shared buffer, each chunk a range of it (no copy
//! of the whole payload per step, chunk or retry).

use std::ops::Range;
use std::sync::Arc;

use crate::at::dialect::SocketDialect;

/// Bytes to type after a prompt: a range of a shared buffer.
#[derive(Debug, Clone)]
pub struct Typed {
    /// The buffer.
    pub data: Arc<[u8]>,
    /// The bytes of it to type.
    pub range: Range<usize>,
}

impl Typed {
    /// The whole of `data`.
    pub fn all(data: Arc<[u8]>) -> Typed {
        let range = 0..data.len();
        Typed { data, range }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.get(self.range.clone()).unwrap_or_default()
    }
}

/// The next exchange of a send.
#[derive(Debug)]
pub enum Next {
    /// Ask the module for its largest block (`AT+CIPSEND?`).
    Query(String),
    /// Send one chunk: the command, and what to type after its prompt.
    Chunk(String, Typed),
    /// Everything was sent.
    Done,
}

/// A send in progress.
#[derive(Debug)]
pub struct DataSend {
    payload: Arc<[u8]>,
    offset: usize,
    chunk: Option<usize>,
    hex: bool,
    in_flight: usize,
}

impl DataSend {
    /// A send of `payload` (bytes for the wire, already through the stream's transform).
    pub fn new(payload: Arc<[u8]>, chunk: Option<usize>, hex: bool) -> DataSend {
        DataSend {
            payload,
            offset: 0,
            chunk,
            hex,
            in_flight: 0,
        }
    }

    /// The next exchange. `max_send`: what the module reported, if asked.
    pub fn next(
        &mut self,
        dialect: &dyn SocketDialect,
        max_send: Option<usize>,
    ) -> Result<Next, String> {
        if self.hex
            && let Some(pos) = self.payload.iter().position(|b| *b == 0x1A)
        {
            return Err(format!(
                "hex mode cannot send this payload: byte {pos} is 0x1A, which ends a hex-mode \
                 send early on the SIM7000; use binary mode (`AT+CIPSENDHEX=0`, no `hex: true`)"
            ));
        }
        if self.offset >= self.payload.len() {
            // All sent (an empty payload sends nothing at all).
            return Ok(Next::Done);
        }
        let chunk = match (self.chunk, max_send) {
            (Some(c), _) => c,
            (None, Some(m)) => m,
            (None, None) if !self.hex => match dialect.max_send_query() {
                Some(q) => return Ok(Next::Query(q.to_string())),
                None => dialect.max_send(),
            },
            (None, None) => dialect.max_send(),
        };
        let chunk = if self.hex {
            chunk.min(dialect.max_hex_send())
        } else {
            chunk
        }
        .max(1);
        let start = self.offset.min(self.payload.len());
        let end = start.saturating_add(chunk).min(self.payload.len());
        self.in_flight = end - start;
        if self.hex {
            let piece = self.payload.get(start..end).unwrap_or_default();
            match dialect.send_hex(piece) {
                Some((cmd, text)) => Ok(Next::Chunk(cmd, Typed::all(text.into()))),
                None => Err(format!("{} has no hex-mode send", dialect.name())),
            }
        } else {
            Ok(Next::Chunk(
                dialect.send_fixed(end - start),
                Typed {
                    data: self.payload.clone(),
                    range: start..end,
                },
            ))
        }
    }

    /// The payload (already through the stream's transform) is not all sent: nothing else
    /// may go out before it ends.
    pub fn unfinished(&self) -> bool {
        self.offset < self.payload.len()
    }

    /// The chunk in flight was accepted. Returns true when the whole payload is sent.
    pub fn chunk_sent(&mut self) -> bool {
        self.offset = (self.offset + self.in_flight).min(self.payload.len());
        self.in_flight = 0;
        self.offset >= self.payload.len()
    }

    /// The chunk in flight failed: it is sent again on a retry.
    pub fn chunk_failed(&mut self) {
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::dialect::Sim7000Cip;

    #[test]
    fn chunks_are_ranges_of_one_buffer() {
        let payload: Arc<[u8]> = (0..3000u32).map(|i| i as u8).collect::<Vec<_>>().into();
        let mut d = DataSend::new(payload.clone(), None, false);
        assert!(matches!(d.next(&Sim7000Cip, None), Ok(Next::Query(q)) if q == "AT+CIPSEND?"));
        let mut sent = Vec::new();
        loop {
            match d.next(&Sim7000Cip, Some(1460)).unwrap() {
                Next::Chunk(cmd, typed) => {
                    assert!(Arc::ptr_eq(&typed.data, &payload), "no copy");
                    assert_eq!(cmd, format!("AT+CIPSEND={}", typed.range.len()));
                    sent.extend_from_slice(typed.bytes());
                    if d.chunk_sent() {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(sent, &payload[..]);
        assert!(matches!(d.next(&Sim7000Cip, Some(1460)), Ok(Next::Done)));
    }

    #[test]
    fn hex_chunks_and_ctrl_z() {
        let mut d = DataSend::new(vec![1u8; 1000].into(), None, true);
        match d.next(&Sim7000Cip, None).unwrap() {
            Next::Chunk(cmd, typed) => {
                assert_eq!(cmd, "AT+CIPSEND");
                assert_eq!(typed.bytes().len(), 730 * 3 + 2);
            }
            other => panic!("{other:?}"),
        }
        let mut d = DataSend::new(vec![1u8, 0x1A].into(), None, true);
        assert!(
            d.next(&Sim7000Cip, None)
                .unwrap_err()
                .contains("byte 1 is 0x1A")
        );
    }
}
