//! Step-by-step output of a single run: an indicatif spinner on a terminal, plain lines
//! otherwise. Progress goes to stderr; `say:` lines and received messages go to stdout, or
//! to stderr with `--json` (stdout then carries exactly one JSON document, which holds them
//! too). A closed stdout stops the run through its teardown (never a panic).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::color::{Paint, paint};
use crate::job::{Interrupt, ReceivedMessage, RunOutcome, StepResult, StepStatus, Verdict};
use crate::runner::Observer;

/// The console observer.
pub(super) struct Console {
    quiet: bool,
    verbose: u8,
    tty: bool,
    color: bool,
    bar: Option<ProgressBar>,
    total: usize,
    recipe: String,
    /// `--json`: stdout is the JSON document's alone.
    json: bool,
    /// Stdout is a terminal: payload bytes are escaped there.
    stdout_tty: bool,
    /// The reader of stdout went away.
    stdout_gone: bool,
}

impl Console {
    /// Output for one run of `recipe`.
    pub(super) fn new(quiet: bool, verbose: u8, recipe: &str) -> Console {
        Console {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
            color: super::color::enabled(),
            bar: None,
            total: 0,
            recipe: recipe.to_string(),
            json: false,
            stdout_tty: std::io::stdout().is_terminal(),
            stdout_gone: false,
        }
    }

    /// With `--json`: `say:` lines and messages go to stderr, stdout is left to the JSON.
    pub(super) fn json(mut self, json: bool) -> Console {
        self.json = json;
        self
    }

    /// Write one line of output for the user: stdout (stderr with `--json`). A closed
    /// stdout is remembered (the run then stops, see [`Observer::stop`]), never a panic.
    fn user_line(&mut self, bytes: &[u8]) {
        use std::io::Write;
        if self.json {
            if self.quiet {
                return;
            }
            let text = String::from_utf8_lossy(bytes);
            self.line(&text);
            return;
        }
        if self.stdout_gone {
            return;
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
        };
        let result = match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        if result.is_err() {
            // EPIPE (the reader closed the pipe) or any other failure to write: nobody reads
            // any more; stop printing and let the run end through its teardown.
            self.stdout_gone = true;
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn label(&self, record: &StepResult) -> String {
        match record.index {
            Some(i) => format!("[{}/{}] {}", i + 1, self.total, record.name),
            None => record.name.clone(),
        }
    }

    /// Print the verdict (and the failure with the transcript tail).
    pub(super) fn finish(&mut self, report: &RunOutcome, transcript: Option<&Path>) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match &report.failure {
            None => {
                if !self.quiet {
                    eprintln!(
                        "{} {} on {} in {:.1}s",
                        paint("PASSED", Paint::Green, self.color),
                        self.recipe,
                        report.port,
                        report.seconds
                    );
                }
            }
            Some(f) => {
                let what = match report.verdict {
                    Verdict::Timeout => "TIMEOUT",
                    Verdict::IoError => "I/O ERROR",
                    Verdict::RecipeError => "RECIPE ERROR",
                    Verdict::Interrupted => "INTERRUPTED",
                    _ => "FAILED",
                };
                let at = f
                    .origin
                    .as_ref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default();
                eprintln!(
                    "{}: step `{}`{at}: {}",
                    paint(what, Paint::Red, self.color),
                    f.step,
                    f.reason
                );
                if !f.tail.is_empty() {
                    eprintln!("last transcript lines:");
                    for l in &f.tail {
                        eprintln!("  {l}");
                    }
                }
                if let Some(p) = transcript {
                    eprintln!("transcript: {}", p.display());
                }
            }
        }
    }
}

impl Observer for Console {
    fn step_started(&mut self, index: usize, total: usize, name: &str) {
        self.total = total;
        if self.quiet || !self.tty {
            return;
        }
        let label = if name == "sync" {
            "sync".to_string()
        } else {
            format!("[{}/{}] {}", index + 1, total, name)
        };
        let bar = ProgressBar::new_spinner();
        let template = if self.color {
            "{spinner} {msg} {elapsed:.dim}"
        } else {
            "{spinner} {msg} {elapsed}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(label);
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Some(old) = self.bar.replace(bar) {
            old.finish_and_clear();
        }
    }

    fn step_finished(&mut self, record: &StepResult) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet && record.status != StepStatus::FailedContinued {
            return;
        }
        let label = self.label(record);
        let c = self.color;
        let text = match record.status {
            StepStatus::Passed => format!(
                "{}    {label} ({:.2}s)",
                paint("ok", Paint::Green, c),
                record.seconds
            ),
            StepStatus::Skipped => format!("{}  {label}", paint("skip", Paint::Yellow, c)),
            StepStatus::FailedContinued => format!(
                "{}  {label} (continuing): {}",
                paint("fail", Paint::Yellow, c),
                record.reason.as_deref().unwrap_or("")
            ),
            // The verdict block repeats the reason.
            StepStatus::Failed => format!(
                "{}  {label} ({:.2}s)",
                paint("FAIL", Paint::Red, c),
                record.seconds
            ),
        };
        eprintln!("{text}");
    }

    fn traffic(&mut self, line: &str) {
        if self.verbose > 0 && !self.quiet {
            self.line(&format!("      {line}"));
        }
    }

    fn wants_packets(&self) -> bool {
        self.verbose >= 2 && !self.quiet
    }

    fn packet(&mut self, line: &str) {
        self.line(&format!("      {line}"));
    }

    fn message(&mut self, m: &ReceivedMessage) {
        let m = &m.message;
        // Raw payload bytes (a pipe may want them as they are) never reach a terminal raw:
        // on a terminal, and on stderr, control bytes are escaped.
        let mut line = m.topic.as_bytes().to_vec();
        line.push(b' ');
        if self.json || self.stdout_tty {
            line.extend_from_slice(crate::util::escape::escape_bytes(&m.payload).as_bytes());
        } else {
            line.extend_from_slice(&m.payload);
        }
        self.user_line(&line);
    }

    fn say(&mut self, text: &str) {
        self.user_line(text.as_bytes());
    }

    fn stop(&mut self) -> Option<Interrupt> {
        self.stdout_gone.then_some(Interrupt::BrokenPipe)
    }
}
