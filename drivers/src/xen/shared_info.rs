//! The shared-info page: vCPU 0's time (pvclock) and event flags, the event-channel pending and mask
//! bitmaps, and the wall clock (`xen.h`: `struct shared_info`, `vcpu_info`, `vcpu_time_info`).
//!
//! Layer: one page Xen writes and we read, plus the pure pvclock arithmetic (host-tested). The page is a
//! page of the image's own `.bss`, so it is identity-mapped write-back and the heap never sees it;
//! `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)` puts the shared page at its frame (Xen takes back the
//! RAM page that was there, as Linux does for its shared-info page).
//!
//! Every field is read through atomics (the page changes under us); multi-field values are read with the
//! version protocol (odd version: update in progress; changed version: read again).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::hypercall::{self, MAPSPACE_SHARED_INFO};
use super::XenError;
use crate::pvclock;
pub use crate::pvclock::{unix_seconds, TimeInfo, PVCLOCK_TSC_STABLE};

/// Offsets in `struct shared_info` (x86_64).
mod offset {
    /// `vcpu_info[0].evtchn_upcall_pending` (u8).
    pub const UPCALL_PENDING: usize = 0;
    /// `vcpu_info[0].evtchn_upcall_mask` (u8).
    pub const UPCALL_MASK: usize = 1;
    /// `vcpu_info[0].evtchn_pending_sel` (u64).
    pub const PENDING_SEL: usize = 8;
    /// `vcpu_info[0].time` (`struct vcpu_time_info`, 32 bytes).
    pub const TIME: usize = 32;
    /// `evtchn_pending[64]` after 32 `vcpu_info` of 64 bytes.
    pub const EVTCHN_PENDING: usize = 32 * 64;
    /// `evtchn_mask[64]`.
    pub const EVTCHN_MASK: usize = EVTCHN_PENDING + 64 * 8;
    /// `wc_version`, `wc_sec`, `wc_nsec`, `wc_sec_hi` (u32 each).
    pub const WC_VERSION: usize = EVTCHN_MASK + 64 * 8;
}

/// Number of event-channel ports the 2-level ABI has on x86_64.
pub const MAX_PORTS: u32 = 64 * 64;

#[repr(C, align(4096))]
struct SharedPage(UnsafeCell<[u8; 4096]>);

// SAFETY: the page is only ever accessed through atomics (see `word`), Xen being the other writer.
unsafe impl Sync for SharedPage {}

static PAGE: SharedPage = SharedPage(UnsafeCell::new([0; 4096]));
static MAPPED: AtomicU32 = AtomicU32::new(0);

/// Maps the shared-info page (once; later calls do nothing).
pub fn map() -> Result<(), XenError> {
    if mapped() {
        return Ok(());
    }
    let frame = PAGE.0.get() as u64 >> 12;
    hypercall::add_to_physmap(MAPSPACE_SHARED_INFO, 0, frame)?;
    MAPPED.store(1, Ordering::SeqCst);
    Ok(())
}

/// Whether [`map`] succeeded.
pub fn mapped() -> bool {
    MAPPED.load(Ordering::Relaxed) != 0
}

/// The physical address of the shared-info page.
pub fn frame_address() -> u64 {
    PAGE.0.get() as u64
}

fn base() -> *mut u8 {
    PAGE.0.get().cast::<u8>()
}

fn u8_at(off: usize) -> &'static AtomicU8 {
    debug_assert!(off < 4096);
    // SAFETY: `off` is a constant offset inside the page; AtomicU8 has u8's layout; the page is static.
    unsafe { &*base().add(off).cast::<AtomicU8>() }
}

fn u32_at(off: usize) -> &'static AtomicU32 {
    debug_assert!(off + 4 <= 4096 && off.is_multiple_of(4));
    // SAFETY: as above, 4-aligned offsets only.
    unsafe { &*base().add(off).cast::<AtomicU32>() }
}

fn u64_at(off: usize) -> &'static AtomicU64 {
    debug_assert!(off + 8 <= 4096 && off.is_multiple_of(8));
    // SAFETY: as above, 8-aligned offsets only.
    unsafe { &*base().add(off).cast::<AtomicU64>() }
}

/// Reads vCPU 0's time info with the version protocol (bounded retries).
pub fn time_info() -> Result<TimeInfo, XenError> {
    if !mapped() {
        return Err(XenError::Backend("shared info not mapped".into()));
    }
    pvclock::read_consistent(u32_at(offset::TIME), || {
        TimeInfo::from_words(
            u64_at(offset::TIME + 8).load(Ordering::Relaxed),
            u64_at(offset::TIME + 16).load(Ordering::Relaxed),
            u64_at(offset::TIME + 24).load(Ordering::Relaxed),
        )
    })
    .ok_or(XenError::Timeout("a consistent vcpu_time_info"))
}

/// Xen system time now, in nanoseconds since the domain's boot.
pub fn system_time_ns() -> Result<u64, XenError> {
    Ok(time_info()?.system_time_at(crate::cpu::rdtsc()))
}

/// The wall-clock base: Unix seconds and nanoseconds at system time 0.
pub fn wall_clock_base() -> Result<(u64, u32), XenError> {
    if !mapped() {
        return Err(XenError::Backend("shared info not mapped".into()));
    }
    pvclock::read_consistent(u32_at(offset::WC_VERSION), || {
        let sec = u32_at(offset::WC_VERSION + 4).load(Ordering::Relaxed);
        let nsec = u32_at(offset::WC_VERSION + 8).load(Ordering::Relaxed);
        let sec_hi = u32_at(offset::WC_VERSION + 12).load(Ordering::Relaxed);
        ((u64::from(sec_hi) << 32) | u64::from(sec), nsec)
    })
    .ok_or(XenError::Timeout("a consistent wall clock"))
}

/// Current Unix time in seconds from the shared-info wall clock (0 when Xen never set one).
pub fn unix_time_now() -> Result<u64, XenError> {
    let (sec, nsec) = wall_clock_base()?;
    Ok(unix_seconds(sec, nsec, system_time_ns()?))
}

/// vCPU 0's `evtchn_upcall_pending`: set by Xen with each new upcall, cleared by us.
pub fn upcall_pending() -> &'static AtomicU8 {
    u8_at(offset::UPCALL_PENDING)
}

/// vCPU 0's `evtchn_upcall_mask`.
pub fn upcall_mask() -> &'static AtomicU8 {
    u8_at(offset::UPCALL_MASK)
}

/// vCPU 0's `evtchn_pending_sel`.
pub fn pending_sel() -> &'static AtomicU64 {
    u64_at(offset::PENDING_SEL)
}

/// The pending word holding `port` and the bit within it (None for a port beyond the 2-level ABI).
pub fn pending_word(port: u32) -> Option<(&'static AtomicU64, u64)> {
    (port < MAX_PORTS).then(|| {
        (
            u64_at(offset::EVTCHN_PENDING + (port / 64) as usize * 8),
            1u64 << (port % 64),
        )
    })
}

/// The mask word holding `port` and the bit within it.
pub fn mask_word(port: u32) -> Option<(&'static AtomicU64, u64)> {
    (port < MAX_PORTS).then(|| {
        (
            u64_at(offset::EVTCHN_MASK + (port / 64) as usize * 8),
            1u64 << (port % 64),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_header() {
        assert_eq!(offset::EVTCHN_PENDING, 2048);
        assert_eq!(offset::EVTCHN_MASK, 2560);
        assert_eq!(offset::WC_VERSION, 3072);
    }

    #[test]
    fn wall_clock_adds_system_time() {
        assert_eq!(
            unix_seconds(1_700_000_000, 900_000_000, 100_000_000),
            1_700_000_001
        );
        assert_eq!(unix_seconds(1_700_000_000, 0, 2_500_000_000), 1_700_000_002);
        assert_eq!(unix_seconds(u64::MAX, 999_999_999, u64::MAX), u64::MAX);
    }
}
