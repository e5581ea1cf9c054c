//! sim7k: a job runner for SIMCom SIM7000-series AT-command modems.
//!
//! The crate is split into a sans-IO core and IO edges:
//!
//! * [`recipe`]: the YAML recipe model, loading with file:line:column errors, vars.
//! * [`at`]: the AT line framer and line classification (echo, final, URC, info).
//! * [`engine`]: the step engine, a state machine fed with framed lines and the clock.
//! * [`mqtt`]: an MQTT 3.1 / 3.1.1 / 5.0 codec with a streaming decoder.
//! * [`script`]: the sandboxed Rhai engine recipes use to build MQTT bytes.
//! * [`emulator`]: a SIM7000 emulator (sans-IO modem core plus pty and TCP edges).
//! * [`job`]: the sans-IO recipe interpreter (conditions, scripts, validation, hooks,
//!   teardown) and the result model ([`job::RunOutcome`]).
//! * [`transport`], [`transcript`], [`runner`]: the IO edges that drive the job.
//! * [`fleet`], [`report`]: one recipe on many modems at once, and a record per device.
//! * [`follow`]: the MQTT conversation inside a transcript (`sim7k mqtt follow`).

pub mod at;
#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod cli;
pub mod emulator;
pub mod engine;
pub mod exit;
pub mod fleet;
pub mod follow;
pub mod job;
pub mod mqtt;
pub mod output;
pub mod recipe;
pub mod records;
pub mod redact;
pub mod report;
pub mod runner;
pub mod script;
pub mod tls;
pub mod transcript;
pub mod transport;
pub mod util;
