//! The Rhai sandbox: every limit in one place.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::Engine;
use rhai::module_resolvers::DummyModuleResolver;

/// Most operations one script run may take.
pub const MAX_OPERATIONS: u64 = 5_000_000;
/// Wall-clock limit of one script run, in seconds.
pub const MAX_SECONDS: u64 = 10;
/// Longest string (bytes). A 1 MB MQTT payload must fit.
pub const MAX_STRING: usize = 4 << 20;
/// Largest payload a script hands out for a publish: 8 MiB.
pub const MAX_PAYLOAD: usize = 8 << 20;
/// Largest array or BLOB (items): a [`MAX_PAYLOAD`] publish with its header and a topic of
/// up to 64 KiB fits.
pub const MAX_ARRAY: usize = MAX_PAYLOAD + (64 << 10) + 16;
/// Largest object map.
pub const MAX_MAP: usize = 4096;
/// Deepest call nesting.
pub const MAX_CALL_LEVELS: usize = 48;

/// Keywords that cannot be variable names.
pub fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "let"
            | "const"
            | "if"
            | "else"
            | "switch"
            | "do"
            | "while"
            | "until"
            | "loop"
            | "for"
            | "in"
            | "continue"
            | "break"
            | "return"
            | "throw"
            | "try"
            | "catch"
            | "fn"
            | "private"
            | "import"
            | "export"
            | "as"
            | "global"
            | "true"
            | "false"
            | "this"
            | "eval"
            | "print"
            | "debug"
            | "type_of"
            | "Fn"
            | "call"
            | "curry"
            | "is_def_var"
            | "is_def_fn"
            | "is_shared"
    )
}

/// What stops a running script, set by the host before each run.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// The run may take until then (start + [`MAX_SECONDS`]).
    pub time_limit: Instant,
    /// The step's or recipe's deadline, if sooner.
    pub deadline: Option<Instant>,
    /// [`memory::live_bytes`](super::memory::live_bytes) when the run started.
    pub memory_base: i64,
    /// Most bytes the run may add.
    pub memory_cap: u64,
    /// Whether the counting allocator is installed.
    pub counting: bool,
}

impl Guard {
    /// A guard for a run starting now.
    pub fn start(deadline: Option<Instant>, memory_cap: u64, counting: bool) -> Guard {
        let now = Instant::now();
        Guard {
            time_limit: now + Duration::from_secs(MAX_SECONDS),
            deadline,
            memory_base: super::memory::live_bytes(),
            memory_cap,
            counting,
        }
    }

    /// Why the run must stop now, if it must.
    pub fn breach(&self) -> Option<Stop> {
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Some(Stop::Deadline);
        }
        if now >= self.time_limit {
            return Some(Stop::TimeLimit);
        }
        if self.counting {
            let grown = super::memory::live_bytes().saturating_sub(self.memory_base);
            if u64::try_from(grown).is_ok_and(|g| g > self.memory_cap) {
                return Some(Stop::Memory);
            }
        }
        None
    }
}

/// Why the sandbox stopped a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The step's or the recipe's deadline passed.
    Deadline,
    /// [`MAX_SECONDS`] passed.
    TimeLimit,
    /// The script holds more than `limits.script_memory`.
    Memory,
}

impl Stop {
    /// The token the progress callback ends a run with.
    pub fn token(self) -> &'static str {
        match self {
            Stop::Deadline => "sim7k:deadline",
            Stop::TimeLimit => "sim7k:time-limit",
            Stop::Memory => "sim7k:memory",
        }
    }

    /// The stop a token stands for.
    pub fn from_token(token: &str) -> Option<Stop> {
        [Stop::Deadline, Stop::TimeLimit, Stop::Memory]
            .into_iter()
            .find(|s| s.token() == token)
    }
}

/// How often (in operations) the progress callback looks at the clock and the memory count.
const CHECK_EVERY: u64 = 16;

/// Apply sim7k's limits to an engine: no module imports, no `eval`, bounded operations,
/// sizes and call depth, and per run (through `guard`, which the host sets before each
/// run) a wall-clock limit, the caller's deadline and a memory cap.
pub fn harden(engine: &mut Engine, guard: Arc<Mutex<Option<Guard>>>) {
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_ARRAY)
        .set_max_map_size(MAX_MAP)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(64, 32)
        .set_max_variables(1024)
        .set_max_functions(1024)
        .set_max_modules(0)
        .set_module_resolver(DummyModuleResolver::new())
        .set_fail_on_invalid_map_property(true)
        .disable_symbol("eval");
    engine.on_progress(move |ops| {
        if ops % CHECK_EVERY != 0 {
            return None;
        }
        let stop = guard.lock().ok().and_then(|g| g.and_then(|g| g.breach()))?;
        Some(stop.token().into())
    });
}
