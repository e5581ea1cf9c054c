//! Library diagnostics through `tracing`: `RUST_LOG` (a list of `target=level` directives or
//! a bare level, e.g. `RUST_LOG=sim7k=debug` or `RUST_LOG=sim7k::runner=trace,warn`) selects
//! them; without it, `-vvv` turns on sim7k's own debug and trace events (the engine's events
//! and the driver's actions). They go to stderr, uncoloured, after sim7k's own lines.
//!
//! The filter is tracing-subscriber's `Targets` (targets and levels), not the full
//! `EnvFilter` (span and field matching): sim7k's events need no more, and it keeps the
//! binary smaller.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// Install the subscriber when `RUST_LOG` is set or `verbose` is 3 or more; otherwise none
/// (the `tracing` macros then cost a relaxed load each).
pub(super) fn init(verbose: u8) {
    let filter: Targets = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match spec.trim().parse() {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "warning: RUST_LOG `{spec}` is not a valid filter ({e}; expected `target=level,…` or a level); ignored"
                );
                return;
            }
        },
        _ if verbose >= 3 => Targets::new().with_target("sim7k", tracing::Level::TRACE),
        _ => return,
    };
    let subscriber = tracing_subscriber::fmt()
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_max_level(tracing::Level::TRACE)
        .finish()
        .with(filter);
    let _ = tracing::subscriber::set_global_default(subscriber);
}
