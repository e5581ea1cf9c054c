//! The `sim7k` command: everything is in the library (`sim7k::cli`).

/// Counts the memory each thread holds, so a recipe script is stopped at its
/// `limits.script_memory` (see `sim7k::script::memory`).
#[global_allocator]
static ALLOC: sim7k::script::memory::CountingAllocator = sim7k::script::memory::CountingAllocator;

fn main() -> std::process::ExitCode {
    sim7k::cli::main()
}
