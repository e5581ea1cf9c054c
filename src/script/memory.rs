//! Counting the memory a script holds.
//!
//! Rhai bounds each value (a string, a BLOB, an array) but not their total, so a script can
//! hold a thousand 4 MiB strings. [`CountingAllocator`] wraps the system allocator and keeps,
//! per thread, the bytes allocated minus the bytes freed; the sandbox reads that count
//! ([`live_bytes`]) while a script runs and stops the script when it has grown by more than
//! `limits.script_memory`. A script runs on one thread, so the count of that thread is the
//! script's.
//!
//! A program opts in by installing the allocator (the `sim7k` binary does):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: sim7k::script::memory::CountingAllocator = sim7k::script::memory::CountingAllocator;
//! ```
//!
//! Without it the count stays at zero and only the vars' total is capped (`set_var`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn add(delta: i64) {
    // `try_with`: during thread teardown the slot may be gone; the count then no longer
    // matters.
    let _ = LIVE.try_with(|c| c.set(c.get().wrapping_add(delta)));
}

fn size(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The system allocator, counting live bytes per thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the only addition is a thread-local counter update that does not allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(size(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(size(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (we forward every alloc).
        unsafe { System.dealloc(ptr, layout) };
        add(-size(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` comes from the caller.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(size(new_size) - size(layout.size()));
        }
        p
    }
}

/// Bytes allocated and not yet freed by this thread (0 when the allocator is not
/// installed). Only differences between two readings mean something.
pub fn live_bytes() -> i64 {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// True when the program installed [`CountingAllocator`] (an allocation moves the count).
pub fn counting() -> bool {
    let before = live_bytes();
    let probe = std::hint::black_box(vec![0u8; 4096]);
    let moved = live_bytes() != before;
    drop(probe);
    moved
}
