//! Chunked data sends: the payload is one shared buffer, each chunk a range of it (no copy
//! of the whole payload per step, chunk or retry).

use std::ops::Range;
use std::sync::Arc;

use crate::at::dialect::SocketDialect;

/// Bytes to type after a prompt: a range of a shared buffer.
#[derive(Debug, Clone)]
pub(super) struct Typed {
    /// The buffer.
    pub data: Arc<[u8]>,
    /// The bytes of it to type.
    pub range: Range<usize>,
}

impl Typed {
    /// The whole of `data`.
    pub(super) fn all(data: Arc<[u8]>) -> Typed {
        let range = 0..data.len();
        Typed { data, range }
    }

    /// The bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        self.data.get(self.range.clone()).unwrap_or_default()
    }
}

/// The next exchange of a send.
#[derive(Debug)]
pub(super) enum Next {
    /// Ask the module for its largest block (`AT+CIPSEND?`).
    Query(String),
    /// Send one chunk: the command, and what to type after its prompt.
    Chunk(String, Typed),
    /// Everything was sent.
    Done,
}

/// A send in progress.
#[derive(Debug)]
pub(super) struct DataSend {
    payload: Arc<[u8]>,
    offset: usize,
    chunk: Option<usize>,
    hex: bool,
    in_flight: usize,
    /// Ranges no chunk boundary falls inside (secrets), in order, not overlapping.
    keep_whole: Vec<Range<usize>>,
}

impl DataSend {
    /// A send of `payload` (bytes for the wire, already through the stream's transform).
    pub(super) fn new(payload: Arc<[u8]>, chunk: Option<usize>, hex: bool) -> DataSend {
        DataSend {
            payload,
            offset: 0,
            chunk,
            hex,
            in_flight: 0,
            keep_whole: Vec::new(),
        }
    }

    /// Never end a chunk inside one of these ranges of the payload (in order, not
    /// overlapping) when the range fits in a chunk: each secret goes out in one piece, so no
    /// output (the transcript, `-v`, the module's echo, the emulator's log) shows a piece of
    /// it at a chunk boundary, where no redaction could recognise it.
    pub(super) fn keeping_whole(mut self, ranges: Vec<Range<usize>>) -> DataSend {
        self.keep_whole = ranges;
        self
    }

    /// The next exchange. `max_send`: what the module reported, if asked.
    pub(super) fn next(
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
        let mut end = start.saturating_add(chunk).min(self.payload.len());
        // End the chunk before a secret that would straddle its end (when the secret fits).
        if let Some(r) = self
            .keep_whole
            .iter()
            .find(|r| r.start < end && end < r.end && r.start > start && r.len() <= chunk)
        {
            end = r.start;
        }
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
    pub(super) fn unfinished(&self) -> bool {
        self.offset < self.payload.len()
    }

    /// The chunk in flight was accepted. Returns true when the whole payload is sent.
    pub(super) fn chunk_sent(&mut self) -> bool {
        self.offset = (self.offset + self.in_flight).min(self.payload.len());
        self.in_flight = 0;
        self.offset >= self.payload.len()
    }

    /// The chunk in flight failed: it is sent again on a retry.
    pub(super) fn chunk_failed(&mut self) {
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

    /// Regression (issue 11 point 5): a secret straddling two chunks showed as `…S3cr3t-`
    /// then `XYZ…` in the transcript, `-v` and the module's echo, in binary and hex mode.
    #[test]
    fn a_secret_is_never_split_between_chunks() {
        let payload: Arc<[u8]> = b"password S3cr3t-XYZ end, again S3cr3t-XYZ".to_vec().into();
        let secrets = crate::redact::Secrets::from_values(["S3cr3t-XYZ"]);
        for hex in [false, true] {
            let mut d = DataSend::new(payload.clone(), Some(16), hex)
                .keeping_whole(secrets.occurrences(&payload));
            let mut pieces: Vec<Vec<u8>> = Vec::new();
            loop {
                match d.next(&Sim7000Cip, None).unwrap() {
                    Next::Chunk(_, typed) => {
                        pieces.push(typed.bytes().to_vec());
                        if d.chunk_sent() {
                            break;
                        }
                    }
                    other => panic!("{other:?}"),
                }
            }
            let shown: Vec<String> = pieces
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let whole = if hex {
                crate::util::hex::hex(b"S3cr3t-XYZ", " ")
            } else {
                "S3cr3t-XYZ".to_string()
            };
            assert_eq!(
                shown.iter().filter(|p| p.contains(&whole)).count(),
                2,
                "{shown:?}"
            );
            assert!(pieces.iter().all(|p| !p.is_empty()));
        }
        // A secret longer than a chunk cannot be kept whole: the send still ends.
        let long: Arc<[u8]> = vec![b'x'; 40].into();
        let mut d =
            DataSend::new(long, Some(8), false).keeping_whole(std::iter::once(2..30).collect());
        let mut n = 0;
        while let Next::Chunk(..) = d.next(&Sim7000Cip, None).unwrap() {
            n += 1;
            if d.chunk_sent() {
                break;
            }
        }
        assert_eq!(n, 5);
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
