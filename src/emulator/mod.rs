//! A faithful SIM7000 emulator: a sans-IO modem core plus pseudo-terminal, TCP and in-memory
//! edges.
//!
//! * [`Modem`]: the core (bytes and network events in, bytes and network requests out; the
//!   caller passes the time in, the core never reads a clock).
//! * [`EmulatorConfig`], [`Network`], [`Fault`]: what the emulated module is like.
//! * [`PtyEmulator`]: the module on a pseudo-terminal, dialling real TCP connections, with
//!   its own transcript (secrets redacted, [`PtyEmulator::spawn_redacted`]).
//! * [`memory::Bench`]: the module in memory under a virtual clock, its connections served
//!   by a [`memory::MemoryNetwork`] (no threads, no pty, no sockets).
//! * The `sim7k emulate` command line lives in `crate::cli` (this module knows no clap).
//!
//! What the real module prints, with its public sources, is in `docs/sim7000.md`; the
//! emulator follows it. Where that page marks a point inferred or open, the emulator chooses
//! as follows (configurable where noted):
//!
//! * Start-up: autobaud by default, no `RDY`; `+CFUN: 1`, `+CPIN: READY` and `SMS Ready`
//!   follow the `OK` of the first command line. Fixed baud prints `RDY`, `+CFUN: 1`,
//!   `+CPIN: READY`, `SMS Ready` at once. `AT+IPR` is saved and decides the mode after the
//!   next reboot. `AT+CFUN=1,1` prints `OK`, then reboots.
//! * `CMEE` is 0 at power-on. Unknown commands and syntax errors answer plain `ERROR` whatever
//!   CMEE says; wrong-state commands `+CME ERROR: 3` (operation not allowed); bad parameters
//!   `+CME ERROR: 50` (Incorrect parameters); injected errors `+CME ERROR: 767`.
//! * Multi-line information (`AT+CBANDCFG?`, `AT+CGDCONT?`) is one block:
//!   `\r\n<l1>\r\n<l2>\r\n`.
//! * While a command is in progress (CIICR, SEND OK pending, SMCONN...) input is echoed and
//!   dropped: the module "only echoes", as when a host does not wait for the final result.
//! * Network time (CLTS=1): `DST: 0` then `*PSUTTZ: ...` when the module registers; the
//!   `urc-in-response` fault puts `DST: 1` / `*PSUTTZ` inside replies.
//! * `AT+CIFSR` ends a line without a final result; `AT+CIFSR;E0` gives the IP then `OK`.
//!   `AT+CIPSTATUS` prints `OK` and then `STATE:` and ends the line.
//! * CIPSTART: accepted in IP INITIAL (brings the context up itself), IP STATUS and, by
//!   default, TCP CLOSED ([`EmulatorConfig::cipstart_from_closed`]); in TCP CONNECTING /
//!   CONNECT OK → `ERROR` then `ALREADY CONNECT`. A failed CIICR leaves `PDP DEACT`.
//!   `CONNECT FAIL` comes [`Latency::connect_fail`] after a refusal and
//!   [`Latency::connect_timeout`] after `AT+CIPSTART` to a host that does not answer (75 s
//!   in the `nbiot` profile; the module's own timer, whatever the edge does).
//! * CIPSEND: prompt `\r\n> `; payload bytes echoed while echo is on (not the Ctrl-Z/ESC);
//!   ESC → `OK` ([`EmulatorConfig::cancel_reply`]); an empty Ctrl-Z send → `ERROR`; hex mode
//!   decodes pairs, ignores spaces/CR/LF, the pair `1A` or a raw 0x1A sends, ESC cancels,
//!   anything else → `ERROR`; in fixed-length hex mode `<len>` counts decoded bytes.
//! * Push mode (`CIPRXGET=0`): `\r\n` + payload ([`PushFraming`]); `RECV FROM:<ip>:<port>`
//!   (no space) on its own line; chunks of at most 1460 bytes.
//! * Manual mode: `+CIPRXGET: 1` once per empty→non-empty transition (with CIPSRIP=1:
//!   `+CIPRXGET: 1,<ip>:<port>`); reads answer `\r\n+CIPRXGET: 2,<n>,<left>\r\n<bytes>\r\nOK\r\n`
//!   (also when empty: `2,0,0`); unread data survives a peer close until CIPSTART/CIPSHUT.
//! * `SEND OK` comes when the bytes were handed to the host's TCP stack (plus the `send`
//!   latency); a peer close while waiting gives `SEND FAIL` then `CLOSED`. `+PDP: DEACT` is
//!   printed alone (no `CLOSED`) and also drops a CNACT bearer (`+APP PDP: DEACTIVE`) and the
//!   MQTT session (`+SMSTATE: 0`).
//! * Native MQTT: `AT+SMCONF?` prints `+SMCONF: ` then one `TAG: value` line per tag;
//!   `+SMSUB: "<topic>","<payload>"` carries the raw payload bytes; SMPUB waits for PUBACK /
//!   PUBCOMP (QoS 1/2) or for the bytes to leave (QoS 0). When the broker drops the link
//!   meanwhile: `+SMSTATE: 0` then `OK`, as in the AWS log; a subscribe cut short gets
//!   `+SMSTATE: 0` then `ERROR`. A refused CONNACK or SUBACK 0x80 answers `ERROR` /
//!   `+CME ERROR: 767`. `AT+SMSSL` and `AT+CSSLCFG` are accepted, but TLS is not emulated:
//!   `AT+SMCONN` with SMSSL on fails and says so in the log.
//! * Not emulated (answer `+CME ERROR: 4`): multi-connection mode (`CIPMUX=1`), transparent
//!   mode (`CIPMODE=1`), UDP. Not implemented (answer `ERROR` like unknown commands):
//!   `CIPSERVER`, `SAPBR`, HTTP/FTP, SMS, GNSS, `ATO`/`+++`, V.25 `D`.

mod config;
mod fault;
pub mod memory;
mod modem;
mod net;
mod pty;
mod transcript;

pub use config::{
    BootMode, EmulatorConfig, Identity, Latency, Network, PushFraming, Rat, Registration, Route,
    Span, Target,
};
pub use fault::{Fault, FaultParseError, Faults};
pub use memory::{Bench, MemoryNetwork};
pub use modem::{ConnId, Modem, NetEvent, NetRequest};
pub use pty::PtyEmulator;
pub use transcript::{Direction, Transcript, escape};
