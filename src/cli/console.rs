//! Step-by-step output of a single run: an indicatif spinner on a terminal, plain lines
//! otherwise. Progress goes to stderr; `say:` messages and received MQTT messages go to
//! stdout, or to stderr with `--json` (stdout then carries exactly one JSON document). A
//! closed stdout (`sim7k run … | head -1`) stops the run through its teardown
//! ([`Interrupt::BrokenPipe`]) instead of panicking.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::job::{Interrupt, ReceivedMessage, RunOutcome, StepResult, StepStatus, Verdict};
use crate::runner::Observer;

/// The console observer.
pub struct Console {
    quiet: bool,
    verbose: u8,
    tty: bool,
    bar: Option<ProgressBar>,
    total: usize,
    recipe: String,
    /// `--json`: stdout is the JSON document's; `say:` and messages go to stderr.
    json: bool,
    /// Stdout's reader went away: print nothing more there, stop the run.
    closed: bool,
}

impl Console {
    /// Output for one run of `recipe`.
    pub fn new(quiet: bool, verbose: u8, recipe: &str) -> Console {
        Console {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
            bar: None,
            total: 0,
            recipe: recipe.to_string(),
            json: false,
            closed: false,
        }
    }

    /// With `--json`: `say:` lines and messages go to stderr, stdout keeps only the JSON.
    pub fn json(mut self, json: bool) -> Console {
        self.json = json;
        self
    }

    /// Write `bytes` to stdout (or to stderr with `--json`); a closed stdout is remembered
    /// (the run then stops) and nothing more is written there.
    fn out(&mut self, bytes: &[u8]) {
        if self.json {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(bytes).and_then(|()| err.flush());
            return;
        }
        if self.closed {
            return;
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        };
        let result = match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        if result.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            self.closed = true;
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
    pub fn finish(&mut self, report: &RunOutcome, transcript: Option<&Path>) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match &report.failure {
            None => {
                if !self.quiet {
                    eprintln!(
                        "PASSED {} on {} in {:.1}s",
                        self.recipe, report.port, report.seconds
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
                eprintln!("{what}: step `{}`{at}: {}", f.step, f.reason);
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
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
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
        let text = match record.status {
            StepStatus::Passed => format!("ok    {label} ({:.2}s)", record.seconds),
            StepStatus::Skipped => format!("skip  {label}"),
            StepStatus::FailedContinued => format!(
                "fail  {label} (continuing): {}",
                record.reason.as_deref().unwrap_or("")
            ),
            StepStatus::Failed => format!(
                "FAIL  {label} ({:.2}s): {}",
                record.seconds,
                record.reason.as_deref().unwrap_or("")
            ),
        };
        if self.quiet && record.status == StepStatus::FailedContinued {
            eprintln!("{text}");
            return;
        }
        if record.status == StepStatus::Failed {
            // The verdict block repeats the reason.
            eprintln!("FAIL  {label} ({:.2}s)", record.seconds);
        } else {
            eprintln!("{text}");
        }
    }

    fn traffic(&mut self, line: &str) {
        if self.verbose > 0 && !self.quiet {
            self.line(&format!("      {line}"));
        }
    }

    fn message(&mut self, m: &ReceivedMessage) {
        let m = &m.message;
        let mut line = m.topic.as_bytes().to_vec();
        line.push(b' ');
        // A terminal (or stderr) shows control bytes escaped; a pipe gets the payload as it is.
        if self.json || std::io::stdout().is_terminal() {
            line = crate::util::escape::escape_bytes(&line).into_bytes();
            line.extend_from_slice(crate::util::escape::escape_bytes(&m.payload).as_bytes());
        } else {
            line.extend_from_slice(&m.payload);
        }
        line.push(b'\n');
        self.out(&line);
    }

    fn say(&mut self, text: &str) {
        self.out(format!("{text}\n").as_bytes());
    }

    fn stop(&mut self) -> Option<Interrupt> {
        self.closed.then_some(Interrupt::BrokenPipe)
    }
}
