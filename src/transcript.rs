//! Transcripts (work in progress).
