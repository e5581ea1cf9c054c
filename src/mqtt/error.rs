//! Codec errors: [`DecodeError`] names the byte offset and the field, [`EncodeError`] the field.

use std::fmt;

/// Coarse class of a [`DecodeError`], for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The bytes break a rule of the MQTT specification (format, flags, lengths, values).
    Malformed,
    /// The packet is larger than the decoder's configured maximum packet size.
    PacketTooLarge,
}

/// A decoding failure: which byte (0-based offset), which field, and what is wrong.
///
/// Displays as `byte 8, CONNECT protocol level: unsupported level 7 (expected 3, 4 or 5)`.
/// Offsets from [`decode`](super::decode) count from the start of the buffer given to it; offsets
/// from a [`StreamDecoder`](super::StreamDecoder) count from the first byte ever pushed into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    offset: usize,
    field: String,
    message: String,
    kind: DecodeErrorKind,
}

impl DecodeError {
    /// A [`DecodeErrorKind::Malformed`] error at `offset` about `field`.
    pub fn new(offset: usize, field: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError {
            offset,
            field: field.into(),
            message: message.into(),
            kind: DecodeErrorKind::Malformed,
        }
    }

    /// A [`DecodeErrorKind::PacketTooLarge`] error.
    pub(crate) fn too_large(
        offset: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DecodeError {
            kind: DecodeErrorKind::PacketTooLarge,
            ..DecodeError::new(offset, field, message)
        }
    }

    /// The 0-based offset of the offending byte.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The field, prefixed with the packet name (e.g. `CONNECT protocol level`).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with the field.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The coarse class of the error.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The same error with `by` added to its offset (used to report stream offsets).
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        self.offset = self.offset.saturating_add(by);
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}, {}: {}", self.offset, self.field, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// An encoding refusal: the packet as given breaks a rule, and this field is why.
///
/// Displays as `PUBLISH topic: wildcard '+' not allowed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    field: String,
    message: String,
}

impl EncodeError {
    /// An error about `field` (prefixed with the packet name, e.g. `PUBLISH topic`).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        EncodeError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field, prefixed with the packet name.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with the field.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for EncodeError {}

/// What a [`Warning`] means for the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// The packet is well-formed, but the spec makes the server refuse it with this CONNACK
    /// return code (e.g. `0x02`, identifier rejected) instead of closing the connection as for
    /// a malformed packet.
    Refused {
        /// The CONNACK return code the server answers with.
        code: u8,
    },
    /// Outside the letter of the spec, but accepted by the common brokers.
    Tolerated,
}

/// A remark about a well-formed packet's values: see [`Packet::warnings`](super::Packet::warnings).
///
/// Anything wrong with the bytes themselves is a [`DecodeError`]; a warning is about values
/// that decode fine but that a server may (or must) refuse. Displays as
/// `CONNECT client id: 24 characters; MQTT 3.1 allows at most 23 …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    field: String,
    message: String,
    kind: WarningKind,
}

impl Warning {
    /// A warning about `field` (prefixed with the packet name).
    pub(crate) fn new(
        field: impl Into<String>,
        message: impl Into<String>,
        kind: WarningKind,
    ) -> Self {
        Warning {
            field: field.into(),
            message: message.into(),
            kind,
        }
    }

    /// The field, prefixed with the packet name (e.g. `CONNECT client id`).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is remarkable about it, and what a server does with it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a server must refuse the packet, or commonly tolerates it.
    pub fn kind(&self) -> WarningKind {
        self.kind
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
