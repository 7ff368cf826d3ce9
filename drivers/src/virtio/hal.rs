//! The `virtio_drivers::Hal` for the kernel's identity map: physical address == virtual address.
//!
//! DMA pages come from the global allocator with page alignment; MMIO regions and shared buffers are
//! used in place. This is only sound while every heap, stack and MMIO address the devices see is
//! identity-mapped, which is how `boot` sets up the page tables.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::ptr::NonNull;

use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// DMA and MMIO on an identity-mapped address space.
#[derive(Debug)]
pub struct IdentityHal;

fn dma_layout(pages: usize) -> Option<Layout> {
    let size = pages.checked_mul(PAGE_SIZE)?;
    Layout::from_size_align(size, PAGE_SIZE)
        .ok()
        .filter(|l| l.size() != 0)
}

// SAFETY: `dma_alloc` returns fresh, zeroed, page-aligned allocations that nothing else aliases; on an
// identity map the pointer value is also the address the device uses.
unsafe impl Hal for IdentityHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(layout) = dma_layout(pages) else {
            return (0, NonNull::dangling());
        };
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        match NonNull::new(ptr) {
            Some(ptr) => (ptr.as_ptr() as usize as PhysAddr, ptr),
            // `Dma::new` turns a zero physical address into `Error::DmaError`.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let Some(layout) = dma_layout(pages) else {
            return -1;
        };
        // SAFETY: the caller passes back what `dma_alloc` returned for the same page count.
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // A zero BAR address is rejected by the PCI transport before it asks; keep a non-null fallback
        // anyway rather than a panic path.
        NonNull::new(paddr as usize as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_pages_are_zeroed_aligned_and_identity_addressed() {
        let (paddr, vaddr) = IdentityHal::dma_alloc(3, BufferDirection::Both);
        assert_ne!(paddr, 0);
        assert_eq!(paddr, vaddr.as_ptr() as u64);
        assert_eq!(paddr % PAGE_SIZE as u64, 0);
        // SAFETY: three pages were just allocated at `vaddr`.
        let bytes = unsafe { core::slice::from_raw_parts(vaddr.as_ptr(), 3 * PAGE_SIZE) };
        assert!(bytes.iter().all(|&b| b == 0));
        // SAFETY: values straight from `dma_alloc`.
        assert_eq!(unsafe { IdentityHal::dma_dealloc(paddr, vaddr, 3) }, 0);
    }

    #[test]
    fn zero_pages_is_a_dma_error_not_a_panic() {
        assert_eq!(IdentityHal::dma_alloc(0, BufferDirection::Both).0, 0);
    }
}
