//! The byte stream over the socket, with a slot for a [`Transform`] between the MQTT
//! session and the socket: plaintext out → bytes to send; bytes received → plaintext in.
//! The identity transform is the default; TLS done by sim7k on the host
//! ([`super::tls::TlsTransform`]) is installed by a recipe's `tls:` step for the
//! connection it runs on, and the next connection starts plain again.
//!
//! Bytes a transform produces must reach the socket in the order it produced them (a TLS
//! record sequence number is in each record's tag): the engine takes them in one place
//! ([`Stream::seal`] and [`Stream::poll_transmit`] each hand over everything queued) and
//! sends one buffer at a time, never two interleaved.

use std::sync::Arc;

use super::tls::TlsTransform;

/// Why a transform failed (a TLS alert, a bad record…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The TLS connection failed.
    Tls(crate::tls::TlsFailure),
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for TransformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransformError::Tls(t) => t.fmt(f),
            TransformError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for TransformError {}

/// A transformation of the byte stream, sans-IO.
pub trait Transform: std::fmt::Debug + Send {
    /// A short name for messages (`identity`, `TLS 1.3`).
    fn name(&self) -> &'static str;
    /// Plaintext to send → the bytes to put on the socket (shared: the identity hands the
    /// same buffer back, so a payload is never copied).
    fn seal(&mut self, plain: Arc<[u8]>) -> Result<Arc<[u8]>, TransformError>;
    /// Bytes received from the socket → plaintext (possibly empty while a record is
    /// incomplete).
    fn open(&mut self, wire: Vec<u8>) -> Result<Vec<u8>, TransformError>;
    /// Bytes the transform itself needs sent (a handshake), if any.
    fn poll_transmit(&mut self) -> Option<Arc<[u8]>> {
        None
    }
    /// A new connection: start over (a new handshake).
    fn reset(&mut self) {}
    /// The TLS transform, when this is one.
    fn tls(&mut self) -> Option<&mut TlsTransform> {
        None
    }
    /// The TLS transform, when this is one.
    fn tls_ref(&self) -> Option<&TlsTransform> {
        None
    }
}

/// The identity transform: plain TCP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl Transform for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }
    fn seal(&mut self, plain: Arc<[u8]>) -> Result<Arc<[u8]>, TransformError> {
        Ok(plain)
    }
    fn open(&mut self, wire: Vec<u8>) -> Result<Vec<u8>, TransformError> {
        Ok(wire)
    }
}

/// The byte stream: the transform in force.
#[derive(Debug)]
pub struct Stream {
    transform: Box<dyn Transform>,
}

impl Default for Stream {
    fn default() -> Self {
        Stream::new(Box::new(Identity))
    }
}

impl Stream {
    /// A stream through `transform`.
    pub fn new(transform: Box<dyn Transform>) -> Stream {
        Stream { transform }
    }

    /// The transform's name.
    pub fn transform_name(&self) -> &'static str {
        self.transform.name()
    }

    /// Plaintext out → bytes for the socket.
    pub fn seal(&mut self, plain: Arc<[u8]>) -> Result<Arc<[u8]>, TransformError> {
        self.transform.seal(plain)
    }

    /// Bytes from the socket → plaintext.
    pub fn open(&mut self, wire: Vec<u8>) -> Result<Vec<u8>, TransformError> {
        self.transform.open(wire)
    }

    /// Bytes the transform needs sent.
    pub fn poll_transmit(&mut self) -> Option<Arc<[u8]>> {
        self.transform.poll_transmit()
    }

    /// A new connection: a TLS connection ends with its socket, so the stream goes back
    /// to the identity; another transform starts over.
    pub fn reset(&mut self) {
        if self.transform.tls_ref().is_some() {
            self.transform = Box::new(Identity);
        } else {
            self.transform.reset();
        }
    }

    /// The TLS transform in force, if any.
    pub fn tls(&mut self) -> Option<&mut TlsTransform> {
        self.transform.tls()
    }

    /// The TLS transform in force, if any.
    pub fn tls_ref(&self) -> Option<&TlsTransform> {
        self.transform.tls_ref()
    }

    /// True while TLS runs over the connection.
    pub fn is_tls(&self) -> bool {
        self.tls_ref().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_passes_the_same_buffer() {
        let mut s = Stream::default();
        let plain: Arc<[u8]> = Arc::from(&b"abc"[..]);
        let sealed = s.seal(plain.clone()).unwrap();
        assert!(Arc::ptr_eq(&plain, &sealed));
        assert_eq!(s.open(b"xy".to_vec()).unwrap(), b"xy");
        assert_eq!(s.transform_name(), "identity");
        assert!(s.poll_transmit().is_none());
    }
}
