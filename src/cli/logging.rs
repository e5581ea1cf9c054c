//! Library diagnostics through `tracing`: `RUST_LOG` (env-filter syntax, e.g.
//! `RUST_LOG=sim7k=debug` or `RUST_LOG=sim7k::runner=trace`) selects them; without it, `-vvv`
//! turns on sim7k's own debug and trace events (the engine's events and the driver's
//! actions). They go to stderr, uncoloured, after sim7k's own lines.

use tracing_subscriber::EnvFilter;

/// Install the subscriber when `RUST_LOG` is set or `verbose` is 3 or more; otherwise none
/// (the `tracing` macros then cost a relaxed load each).
pub(super) fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("warning: RUST_LOG `{spec}` is not a valid filter ({e}); ignored");
                return;
            }
        },
        _ if verbose >= 3 => EnvFilter::new("sim7k=trace"),
        _ => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
