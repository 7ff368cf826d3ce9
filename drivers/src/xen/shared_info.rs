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
use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::hypercall::{self, MAPSPACE_SHARED_INFO};
use super::XenError;

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

/// A consistent copy of `vcpu_time_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeInfo {
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    pub flags: u8,
}

/// `XEN_PVCLOCK_TSC_STABLE_BIT`.
pub const PVCLOCK_TSC_STABLE: u8 = 1;

impl TimeInfo {
    /// Nanoseconds of Xen system time at TSC value `tsc`.
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        // Wrapping, as the guest TSC may have been "negative" (behind its offset) at the timestamp; a TSC
        // behind the timestamp (another vCPU's view, or a stale read) counts as no time.
        let mut delta = tsc.wrapping_sub(self.tsc_timestamp);
        if delta > u64::MAX / 2 {
            delta = 0;
        }
        if self.tsc_shift >= 0 {
            let shift = self.tsc_shift as u32;
            delta = if delta.leading_zeros() >= shift {
                delta << shift
            } else {
                u64::MAX
            };
        } else {
            delta = delta
                .checked_shr(u32::from(self.tsc_shift.unsigned_abs()))
                .unwrap_or(0);
        }
        let scaled = (u128::from(delta) * u128::from(self.tsc_to_system_mul)) >> 32;
        self.system_time
            .saturating_add(u64::try_from(scaled).unwrap_or(u64::MAX))
    }

    /// The TSC rate these parameters describe: `((10^9 << 32) / mul) >> shift`. None when implausible
    /// (mul 0, or outside 1 MHz..100 GHz).
    pub fn tsc_hz(&self) -> Option<u64> {
        if self.tsc_to_system_mul == 0 {
            return None;
        }
        let base = (1_000_000_000u128 << 32) / u128::from(self.tsc_to_system_mul);
        let hz = if self.tsc_shift >= 0 {
            base >> self.tsc_shift as u32
        } else {
            base.checked_shl(u32::from(self.tsc_shift.unsigned_abs()))?
        };
        u64::try_from(hz)
            .ok()
            .filter(|hz| (1_000_000..=100_000_000_000).contains(hz))
    }
}

/// Reads vCPU 0's time info with the version protocol (bounded retries).
pub fn time_info() -> Result<TimeInfo, XenError> {
    if !mapped() {
        return Err(XenError::Backend("shared info not mapped".into()));
    }
    for _ in 0..10_000 {
        let v1 = u32_at(offset::TIME).load(Ordering::Acquire);
        if v1 & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        fence(Ordering::SeqCst);
        let mul_shift = u64_at(offset::TIME + 24).load(Ordering::Relaxed);
        let info = TimeInfo {
            tsc_timestamp: u64_at(offset::TIME + 8).load(Ordering::Relaxed),
            system_time: u64_at(offset::TIME + 16).load(Ordering::Relaxed),
            tsc_to_system_mul: mul_shift as u32,
            tsc_shift: (mul_shift >> 32) as u8 as i8,
            flags: (mul_shift >> 40) as u8,
        };
        fence(Ordering::SeqCst);
        if u32_at(offset::TIME).load(Ordering::Acquire) == v1 {
            return Ok(info);
        }
    }
    Err(XenError::Timeout("a consistent vcpu_time_info"))
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
    for _ in 0..10_000 {
        let v1 = u32_at(offset::WC_VERSION).load(Ordering::Acquire);
        if v1 & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        fence(Ordering::SeqCst);
        let sec = u32_at(offset::WC_VERSION + 4).load(Ordering::Relaxed);
        let nsec = u32_at(offset::WC_VERSION + 8).load(Ordering::Relaxed);
        let sec_hi = u32_at(offset::WC_VERSION + 12).load(Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if u32_at(offset::WC_VERSION).load(Ordering::Acquire) == v1 {
            return Ok(((u64::from(sec_hi) << 32) | u64::from(sec), nsec));
        }
    }
    Err(XenError::Timeout("a consistent wall clock"))
}

/// Unix time from a wall-clock base and the system time: whole seconds.
pub fn unix_seconds(base_sec: u64, base_nsec: u32, system_ns: u64) -> u64 {
    let ns = u128::from(base_nsec) + u128::from(system_ns);
    base_sec.saturating_add(u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX))
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

    // Xen's own computation for a 2 GHz TSC: mul = 2^31 (0.5 ns per tick), shift 0.
    #[test]
    fn pvclock_2ghz() {
        let t = TimeInfo {
            tsc_timestamp: 1_000,
            system_time: 5_000_000,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 0,
            flags: PVCLOCK_TSC_STABLE,
        };
        assert_eq!(t.tsc_hz(), Some(2_000_000_000));
        assert_eq!(t.system_time_at(1_000), 5_000_000);
        assert_eq!(t.system_time_at(3_000), 5_001_000);
        // a TSC behind the timestamp (another vCPU's view) does not go backwards
        assert_eq!(t.system_time_at(10), 5_000_000);
        // a timestamp taken while the guest TSC was still "negative" (seen under Xen)
        let t = TimeInfo {
            tsc_timestamp: 0u64.wrapping_sub(2_000),
            ..t
        };
        assert_eq!(t.system_time_at(2_000), 5_002_000);
    }

    #[test]
    fn pvclock_shifts() {
        // 3.4 GHz expressed the way Xen scales it: shift -1, mul = 2^32 * 2 / 3.4
        let mul = ((2u128 << 32) * 1_000_000_000 / 3_400_000_000) as u32;
        let t = TimeInfo {
            tsc_to_system_mul: mul,
            tsc_shift: -1,
            ..Default::default()
        };
        let hz = t.tsc_hz().unwrap();
        assert!((3_399_999_000..=3_400_001_000).contains(&hz), "{hz}");
        let ns = t.system_time_at(3_400_000_000);
        assert!((999_999_000..=1_000_000_000).contains(&ns), "{ns}");
        // 500 MHz, 2 ns per tick: (tick << 2) * 2^31 >> 32
        let t = TimeInfo {
            tsc_to_system_mul: 0x8000_0000,
            tsc_shift: 2,
            ..Default::default()
        };
        assert_eq!(t.tsc_hz(), Some(500_000_000));
        assert_eq!(t.system_time_at(500_000_000), 1_000_000_000);
    }

    #[test]
    fn pvclock_rejects_nonsense() {
        let zero = TimeInfo::default();
        assert_eq!(zero.tsc_hz(), None);
        let huge_shift = TimeInfo {
            tsc_to_system_mul: 1,
            tsc_shift: -100,
            ..Default::default()
        };
        assert_eq!(huge_shift.tsc_hz(), None);
        let tiny = TimeInfo {
            tsc_to_system_mul: u32::MAX,
            tsc_shift: 60,
            ..Default::default()
        };
        assert_eq!(tiny.tsc_hz(), None);
        // overflowing shift saturates instead of wrapping
        let t = TimeInfo {
            tsc_to_system_mul: u32::MAX,
            tsc_shift: 127,
            ..Default::default()
        };
        assert!(t.system_time_at(1 << 40) > u64::MAX / 2);
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
