//! The module's modes as the engine believes them: command echo and the result-code
//! format. One owner, changed only through [`Effect`]s of successful commands.

use crate::at::effects::Effect;

/// What sim7k believes about the modem's command echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Not known yet.
    Unknown,
    /// Echo on (the SIM7000's power-on default).
    On,
    /// Echo off (`ATE0`).
    Off,
}

/// Echo and result-code format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Modes {
    /// Command echo.
    pub echo: Echo,
    /// `ATV0`: result codes come as digits (`0` for OK, `4` for ERROR).
    pub numeric: bool,
    /// Echo is off and a command came back without its echo since: the recipe's `ATE0`
    /// is in force (a later echo means the setting is gone).
    pub echo_verified_off: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Modes {
            echo: Echo::Unknown,
            numeric: false,
            echo_verified_off: false,
        }
    }
}

impl Modes {
    /// Follow a successful command's effect.
    pub(super) fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Echo(on) => {
                self.echo = if on { Echo::On } else { Echo::Off };
                self.echo_verified_off = false;
            }
            Effect::Verbose(v) => self.numeric = !v,
            Effect::FactoryDefaults | Effect::Reboot => self.power_on(),
            _ => {}
        }
    }

    /// After a reset: verbose codes (V1 is the power-on default); echo is on unless a
    /// saved profile (`AT&W`) says otherwise, so it is unknown until seen.
    pub(super) fn power_on(&mut self) {
        *self = Modes {
            echo: Echo::Unknown,
            numeric: false,
            echo_verified_off: false,
        };
    }
}
