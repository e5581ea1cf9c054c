//! Process exit codes a shell script or a factory line can act on.

/// Exit codes of `sim7k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Exit {
    /// Every step passed.
    Success = 0,
    /// A step failed: ERROR, an abort pattern, an expectation not met, a failed
    /// validation, a URC handler that fails the run, a refused MQTT session.
    StepFailed = 1,
    /// Usage error, or a recipe or script that does not load.
    Usage = 2,
    /// A step or the whole recipe ran out of time (the modem went silent).
    Timeout = 3,
    /// I/O error: the port is missing, busy, or vanished mid-run, or an output file
    /// (transcript, report, JUnit, CSV) could not be written.
    Io = 4,
    /// Stopped by Ctrl-C, SIGTERM or SIGHUP, or a closed output (the shell convention
    /// 128 + SIGINT).
    Interrupted = 130,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}
