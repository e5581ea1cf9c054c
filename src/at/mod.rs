//! The AT layer, sans-IO: what the SIM7000 prints and what the commands sent to it do.
//!
//! * [`mod@split`]: the one command-line splitter (chained `;` commands, `ATE0V1` runs);
//! * [`command`]: a command line's reply shape, response prefix, whether it prompts for data
//!   ([`command::prompts_for_data`]) and its [`effects`] (echo, result format, receive mode,
//!   hex sends, socket open/close, reset);
//! * [`framer`]: modem bytes into lines, prompts and data blocks (with [`push`] for MQTT
//!   packets pushed without a header);
//! * [`mod@line`]: result codes and URCs;
//! * [`dialect`]: the socket dialect seam (SIM7000 `AT+CIP*` first);
//! * [`limits`]: the SIM7000's limits.

pub mod command;
pub mod dialect;
pub mod effects;
pub mod framer;
pub mod limits;
pub mod line;
pub mod push;
pub mod split;

pub use command::{Command, Shape, prompts_for_data};
pub use dialect::{RxMode, Sim7000Cip, SocketDialect};
pub use effects::Effect;
pub use framer::{Frame, Framer};
pub use line::{ResultCode, Urc, known_urc, result_code};
pub use split::{Form, Part, split};
