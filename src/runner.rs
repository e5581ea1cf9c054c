//! Runner (work in progress).
