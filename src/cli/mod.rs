//! cli (work in progress).

/// Entry point of the `sim7k` binary.
pub fn main() -> std::process::ExitCode {
    crate::exit::Exit::Success.into()
}
