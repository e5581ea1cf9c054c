//! A faithful SIM7000 emulator: a sans-IO modem core plus pseudo-terminal and TCP edges.
//!
//! * [`Modem`]: the core (bytes and network events in, bytes and network requests out).
//! * [`EmulatorConfig`], [`Network`], [`Fault`]: what the emulated module is like.
//! * [`PtyEmulator`]: the module on a pseudo-terminal, dialling real TCP connections.
//! * [`EmulateArgs`] / [`run`]: the `sim7k emulate` subcommand.

mod cli;
mod config;
mod fault;
mod modem;
mod net;
mod pty;
mod transcript;

pub use cli::{BootArg, EmulateArgs, Profile, RatArg, run};
pub use config::{
    BootMode, EmulatorConfig, Identity, Latency, Network, PushFraming, Rat, Registration, Route,
    Span, Target,
};
pub use fault::{Fault, FaultParseError, Faults};
pub use modem::{ConnId, Modem, NetEvent, NetRequest};
pub use pty::PtyEmulator;
pub use transcript::{Direction, Transcript, escape};
