//! script (work in progress).
