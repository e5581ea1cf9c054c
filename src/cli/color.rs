//! When output is coloured: `--color auto|always|never`, `NO_COLOR`, `TERM=dumb`.
//!
//! `auto` (the default) colours stderr only when it is a terminal, `NO_COLOR` is unset or
//! empty (<https://no-color.org>) and `TERM` is not `dumb`. `always` and `never` win over the
//! environment (an explicit option overrides a user-wide setting). The choice is made once,
//! at start-up, and applies to sim7k's own lines, clap's help and errors, and the recipe
//! diagnostics rendered by miette.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// The `--color` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`.
    #[default]
    Auto,
    /// Always colour (also into a pipe or a file).
    Always,
    /// Never colour.
    Never,
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether `NO_COLOR` asks for no colour (set and not empty).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether `TERM=dumb`.
pub fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// Whether `choice` means colour on stderr here.
pub fn resolve(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stderr().is_terminal() && !no_color() && !dumb_terminal(),
    }
}

/// Decide once for the process: sim7k's own lines and the miette hook follow it.
pub fn init(choice: ColorChoice) -> bool {
    let on = resolve(choice);
    ENABLED.store(on, Ordering::Relaxed);
    // Recipe diagnostics are rendered by `RecipeError::render(color)`; anything else that
    // goes through a miette `Report` follows the same choice. A second call keeps the first.
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(on)
                .unicode(on || std::io::stderr().is_terminal())
                .build(),
        )
    }));
    on
}

/// Whether sim7k colours its stderr lines (after [`init`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The colour for clap's own help and errors (clap's `auto` also honours `NO_COLOR` and
/// `TERM=dumb`, and looks at the stream it writes to: stdout for `--help`).
pub fn clap_choice(choice: ColorChoice) -> clap::ColorChoice {
    match choice {
        ColorChoice::Auto => clap::ColorChoice::Auto,
        ColorChoice::Always => clap::ColorChoice::Always,
        ColorChoice::Never => clap::ColorChoice::Never,
    }
}

/// Find `--color VALUE` / `--color=VALUE` in raw arguments, before clap parses them, so that
/// clap's own errors follow it. Unknown values are left to clap to reject.
pub fn from_args<I, S>(args: I) -> ColorChoice
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut choice = ColorChoice::Auto;
    let mut next_is_value = false;
    for a in args {
        let Some(a) = a.as_ref().to_str() else {
            next_is_value = false;
            continue;
        };
        let value = if next_is_value {
            Some(a)
        } else {
            a.strip_prefix("--color=")
        };
        next_is_value = a == "--color";
        if a == "--" {
            break;
        }
        if let Some(v) = value {
            choice = match v {
                "always" => ColorChoice::Always,
                "never" => ColorChoice::Never,
                _ => ColorChoice::Auto,
            };
        }
    }
    choice
}

/// An ANSI style for a word of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// Passed.
    Green,
    /// Failed.
    Red,
    /// Skipped, continued after a failure.
    Yellow,
}

/// `text` in `paint` when `on`, else unchanged.
pub fn paint(text: &str, paint: Paint, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match paint {
        Paint::Green => "32",
        Paint::Red => "1;31",
        Paint::Yellow => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_found_before_parsing() {
        assert_eq!(from_args(["sim7k", "run", "x"]), ColorChoice::Auto);
        assert_eq!(
            from_args(["sim7k", "--color", "never", "run"]),
            ColorChoice::Never
        );
        assert_eq!(
            from_args(["sim7k", "run", "--color=always"]),
            ColorChoice::Always
        );
        assert_eq!(
            from_args(["sim7k", "--", "--color=always"]),
            ColorChoice::Auto
        );
    }

    #[test]
    fn explicit_choices_win_and_paint_only_when_on() {
        assert!(resolve(ColorChoice::Always));
        assert!(!resolve(ColorChoice::Never));
        assert_eq!(paint("PASSED", Paint::Green, false), "PASSED");
        assert_eq!(paint("FAIL", Paint::Red, true), "\x1b[1;31mFAIL\x1b[0m");
    }
}
