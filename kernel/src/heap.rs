//! The kernel heap: the largest RAM region of the PVH memory map above the image.
//!
//! Layer: kernel glue. The heap is not a `.bss` array (QEMU would have to zero it at load and the image
//! would fix its size); it is whatever RAM the VM has (`-m`), minus the image and the loader's data.
//! Allocator: `linked_list_allocator` (first fit). Its spin lock is never contended: single core, and
//! interrupt handlers do not allocate. The data path is expected not to allocate per packet.

use boot::pvh::MemmapEntry;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Smallest heap worth starting with (TLS, packet buffers, NAT table).
pub const MIN_HEAP: u64 = 8 << 20;

/// The region given to the allocator.
#[derive(Debug, Clone, Copy)]
pub struct HeapRegion {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Picks the heap region: the largest RAM run at or above `floor` (the image end), below `limit` (the end of
/// the identity map), not overlapping `avoid` (loader data). Pure, so the choice is easy to reason about.
pub fn choose(
    memmap: &[MemmapEntry],
    floor: u64,
    limit: u64,
    avoid: &[(u64, u64)],
) -> Option<HeapRegion> {
    let mut best: Option<HeapRegion> = None;
    for e in memmap.iter().filter(|e| e.is_ram()) {
        let mut start = e.addr.max(floor);
        let end = e.end().min(limit);
        // Loader data sits low in memory; if a range falls inside, start after it.
        for &(a, b) in avoid {
            if a < end && start < b {
                start = start.max(b);
            }
        }
        let start = (start + 0xfff) & !0xfff;
        let end = end & !0xfff;
        if start < end && best.is_none_or(|b| end - start > b.end - b.start) {
            best = Some(HeapRegion { start, end });
        }
    }
    best
}

/// Hands `region` to the global allocator. Call once.
pub fn init(region: HeapRegion) {
    // SAFETY: `region` is identity-mapped RAM not used by the image or the loader data (see `choose`), and
    // this is called once, before the first allocation.
    unsafe {
        HEAP.lock().init(
            region.start as *mut u8,
            (region.end - region.start) as usize,
        )
    };
}

/// Bytes in use and free.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
