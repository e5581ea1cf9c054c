//! at (work in progress).
