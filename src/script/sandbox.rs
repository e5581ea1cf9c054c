//! The Rhai sandbox: every limit in one place.

use std::time::{Duration, Instant};

use rhai::Engine;
use rhai::module_resolvers::DummyModuleResolver;

/// Most operations one script run may take.
pub const MAX_OPERATIONS: u64 = 5_000_000;
/// Wall-clock limit of one script run, in seconds.
pub const MAX_SECONDS: u64 = 10;
/// Longest string (bytes). A 1 MB MQTT payload must fit.
pub const MAX_STRING: usize = 4 << 20;
/// Largest array or BLOB (items). A 1 MB publish plus headers must fit.
pub const MAX_ARRAY: usize = 8 << 20;
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

/// Apply sim7k's limits to an engine: no module imports, no `eval`, bounded operations,
/// sizes, call depth, and a wall-clock limit per run.
pub fn harden(engine: &mut Engine) {
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
    // Wall-clock bound: on_progress is called every operation; checking the clock every
    // 4096 operations keeps it cheap. The start time resets when a new run begins
    // (operation count 1).
    let started = std::sync::Mutex::new(Instant::now());
    let limit = Duration::from_secs(MAX_SECONDS);
    engine.on_progress(move |ops| {
        if ops == 1 {
            if let Ok(mut s) = started.lock() {
                *s = Instant::now();
            }
            return None;
        }
        if ops % 4096 != 0 {
            return None;
        }
        match started.lock() {
            Ok(s) if s.elapsed() > limit => Some("time limit".into()),
            _ => None,
        }
    });
}
