//! Ctrl-C / SIGTERM / SIGHUP (the terminal closed, an SSH session dropped): set a flag the runner polls, so transcripts and reports are flushed.

use std::sync::OnceLock;

use crate::runner::StopFlag;

static FLAG: OnceLock<StopFlag> = OnceLock::new();

extern "C" fn on_signal(sig: libc::c_int) {
    if let Some(f) = FLAG.get() {
        // An atomic compare-and-swap: async-signal-safe.
        f.signal(sig);
    }
}

/// Install SIGINT/SIGTERM/SIGHUP handlers (once) and return the flag they set (with the signal).
pub(super) fn install() -> StopFlag {
    let flag = FLAG.get_or_init(StopFlag::new).clone();
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, on_signal as *const () as libc::sighandler_t);
    }
    flag
}
