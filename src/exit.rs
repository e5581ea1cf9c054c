//! Process exit codes a shell script or a factory line can act on: the one table the help
//! text (`sim7k --help`, `sim7k run --help`, `sim7k man`) and the README's table follow.

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

/// Every exit code with its meaning, in order: what help text and docs are made from.
pub const TABLE: &[(Exit, &str)] = &[
    (Exit::Success, "every step passed"),
    (
        Exit::StepFailed,
        "a step failed: ERROR, abort pattern, expectation not met, validation, URC handler, \
         MQTT refusal, modem restart",
    ),
    (
        Exit::Usage,
        "usage error (contradictory options too), a recipe or script that does not load, \
         a script error at run time",
    ),
    (
        Exit::Timeout,
        "a step or the recipe deadline timed out (e.g. the modem went silent)",
    ),
    (
        Exit::Io,
        "I/O error: the port is missing, busy, or vanished mid-run, or an output file \
         (transcript, report, JUnit, CSV) could not be written (the message names the file)",
    ),
    (
        Exit::Interrupted,
        "interrupted (Ctrl-C, SIGTERM, SIGHUP); the teardown runs, the transcript and `--json` \
         are still written",
    ),
];

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means (from [`TABLE`]).
    pub fn meaning(self) -> &'static str {
        TABLE
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("", |(_, m)| m)
    }

    /// The `Exit codes:` block of `--help`, generated from [`TABLE`].
    pub fn help_text() -> String {
        let mut s = String::from("Exit codes:");
        for (e, meaning) in TABLE {
            s.push_str(&format!("\n  {:<4} {meaning}", e.code()));
        }
        s
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_code_once_in_order() {
        let codes: Vec<u8> = TABLE.iter().map(|(e, _)| e.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 130]);
        assert!(
            TABLE
                .iter()
                .all(|(e, m)| !m.is_empty() && e.meaning() == *m)
        );
    }

    #[test]
    fn help_text_is_made_from_the_table() {
        let text = Exit::help_text();
        assert!(text.starts_with("Exit codes:\n  0    every step passed"));
        assert!(text.contains("\n  130  interrupted"));
    }
}
