//! Step-by-step output of a single run: an indicatif spinner on a terminal, plain lines
//! otherwise. Progress goes to stderr; `say:` messages go to stdout.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::color::{Paint, paint};
use crate::job::{ReceivedMessage, RunOutcome, StepResult, StepStatus, Verdict};
use crate::runner::Observer;

/// The console observer.
pub struct Console {
    quiet: bool,
    verbose: u8,
    tty: bool,
    color: bool,
    bar: Option<ProgressBar>,
    total: usize,
    recipe: String,
}

impl Console {
    /// Output for one run of `recipe`.
    pub fn new(quiet: bool, verbose: u8, recipe: &str) -> Console {
        Console {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
            color: super::color::enabled(),
            bar: None,
            total: 0,
            recipe: recipe.to_string(),
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
        use std::io::Write;
        let m = &m.message;
        let print = || {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(m.topic.as_bytes());
            let _ = out.write_all(b" ");
            let _ = out.write_all(&m.payload);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn say(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }
}
