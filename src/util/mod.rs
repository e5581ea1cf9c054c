//! Small leaf helpers shared by every layer: hex text, escaping of outside text for
//! terminals and records, and saturating time arithmetic. Nothing here depends on another
//! sim7k module.

pub mod escape;
pub mod hex;
pub mod time;
