//! The SIM7000's limits, in one place. Sources: SIM7000 Series AT Command Manual V1.06
//! (§1.4.4 line length, §8.2.3 `AT+CIPSEND?`, §8.2.27 `AT+CIPRXGET`) and the MQTT(S)
//! Application Note V1.02 (§3.2.5 `AT+SMPUB`); see docs/sim7000.md.

/// Largest `AT+CIPSEND=<len>` data block (what `AT+CIPSEND?` reports on most networks).
pub const MAX_SEND: usize = 1460;
/// Largest hex-mode send, in bytes before hex encoding (half of [`MAX_SEND`]).
pub const MAX_HEX_SEND: usize = 730;
/// Largest `AT+CIPRXGET=2,<len>` read.
pub const MAX_READ: usize = 1460;
/// Largest `AT+CIPRXGET=3,<len>` (hex) read.
pub const MAX_HEX_READ: usize = 730;
/// Size of the module's receive buffer (`AT+CIPRXGET=4` accepts up to this; inferred).
pub const RX_BUFFER: usize = 2920;
/// Longest command line the module accepts (more executes nothing and answers `ERROR`).
pub const MAX_COMMAND_LINE: usize = 559;
/// Most commands chained on one line with `;`.
pub const MAX_CHAINED: usize = 39;
/// Largest `AT+SMPUB` payload.
pub const MAX_SMPUB: usize = 512;
/// Longest APN, user or password of `AT+CSTT`.
pub const MAX_CSTT_FIELD: usize = 50;
