//! Recipe loading (placeholder, filled in by the loader work).
