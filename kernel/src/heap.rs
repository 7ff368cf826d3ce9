//! The kernel heap: the largest RAM region of the PVH memory map above the image.
//!
//! Layer: kernel glue. The heap is not a `.bss` array (QEMU would have to zero it at load and the image
//! would fix its size); it is whatever RAM the VM has (`-m`), minus the image and the loader's data.
//! Allocator: `linked_list_allocator` (first fit). Its spin lock is never contended: single core, and
//! interrupt handlers do not allocate. The data path is expected not to allocate per packet.

use boot::pvh::MemmapEntry;
use linked_list_allocator::LockedHeap;
use oxvpn_kernel::heap_region::{self, HeapRegion};

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Smallest heap worth starting with. With the tunnel up about 2.5 MiB are in use (virtio buffers
/// 1 MiB, the TCP transport's socket 512 KiB, the router's and the tunnel's work buffers, the UDP
/// socket's rings, TLS); the rest is room for what the network can make the router hold, each bounded:
/// reassembly (512 KiB), packets waiting for ARP, NAT and DNS tables, a renegotiation's second TLS
/// session.
pub const MIN_HEAP: u64 = 6 << 20;

/// Picks the heap region from the PVH memory map (see `oxvpn_kernel::heap_region::choose`).
pub fn choose(
    memmap: &[MemmapEntry],
    floor: u64,
    limit: u64,
    avoid: &[(u64, u64)],
) -> Option<HeapRegion> {
    let ram = memmap
        .iter()
        .filter(|e| e.is_ram())
        .map(|e| (e.addr, e.end()));
    heap_region::choose(ram, floor, limit, avoid)
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
