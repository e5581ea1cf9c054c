//! The AT layer, sans-IO: a byte framer ([`framer`]), result codes and URCs ([`line`]),
//! and what a command's reply looks like ([`command`]).

pub mod command;
pub mod framer;
pub mod limits;
pub mod line;

pub use command::{Command, Shape};
pub use framer::{Frame, Framer};
pub use line::{ResultCode, Urc, known_urc, result_code};
