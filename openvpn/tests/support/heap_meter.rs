//! A counting global allocator for the hostile-input tests: live heap bytes of this thread and their
//! high-water mark, so a test can assert that hostile traffic leaves the heap flat. Included with
//! `#[path = "support/heap_meter.rs"] mod heap_meter;`; it installs itself as the global allocator.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Live bytes allocated by this thread, and the most it ever held (since the last reset).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    // `try_with`: thread-local storage may already be gone while a thread exits.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn size(bytes: usize) -> isize {
    isize::try_from(bytes).unwrap_or(isize::MAX)
}

// SAFETY: forwards every call unchanged to the system allocator; the counters are const-initialised
// thread-local Cells, whose access never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(size(new_size) - size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

pub fn live() -> isize {
    LIVE.with(Cell::get)
}

pub fn reset_peak() {
    PEAK.with(|p| p.set(live()));
}

pub fn peak() -> isize {
    PEAK.with(Cell::get)
}
