//! pvclock: the time record Xen (`vcpu_time_info`) and KVM (kvmclock's `pvclock_vcpu_time_info`) both
//! publish: a TSC timestamp, the system time in ns at it, and a multiplier and shift from TSC ticks to ns;
//! plus the version protocol both use for their records (odd: being updated; changed: read again).
//!
//! Layer: pure arithmetic and the read protocol (host-tested). Where the record lives is the caller's:
//! Xen's shared-info page (`xen::shared_info`) or a page registered with KVM's MSRs (`kvmclock`).

use core::sync::atomic::{fence, AtomicU32, Ordering};

/// Reads a record guarded by `version` with the version protocol: `read` runs while the version is even
/// and unchanged around it (bounded retries; None when the writer never let go).
pub fn read_consistent<T>(version: &AtomicU32, read: impl Fn() -> T) -> Option<T> {
    for _ in 0..10_000 {
        let v1 = version.load(Ordering::Acquire);
        if v1 & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        fence(Ordering::SeqCst);
        let value = read();
        fence(Ordering::SeqCst);
        if version.load(Ordering::Acquire) == v1 {
            return Some(value);
        }
    }
    None
}

/// A consistent copy of `vcpu_time_info` (Xen) / `pvclock_vcpu_time_info` (KVM): the same 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeInfo {
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    pub flags: u8,
}

/// `XEN_PVCLOCK_TSC_STABLE_BIT` / `PVCLOCK_TSC_STABLE_BIT`.
pub const PVCLOCK_TSC_STABLE: u8 = 1;

impl TimeInfo {
    /// Decodes the record's words after the version: `tsc_timestamp`, `system_time`, and the word holding
    /// `tsc_to_system_mul` (low 32 bits), `tsc_shift` (next byte) and `flags`.
    pub fn from_words(tsc_timestamp: u64, system_time: u64, mul_shift_flags: u64) -> TimeInfo {
        TimeInfo {
            tsc_timestamp,
            system_time,
            tsc_to_system_mul: mul_shift_flags as u32,
            tsc_shift: (mul_shift_flags >> 32) as u8 as i8,
            flags: (mul_shift_flags >> 40) as u8,
        }
    }

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

/// Unix time from a wall-clock base and the system time: whole seconds.
pub fn unix_seconds(base_sec: u64, base_nsec: u32, system_ns: u64) -> u64 {
    let ns = u128::from(base_nsec) + u128::from(system_ns);
    base_sec.saturating_add(u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Xen's (and KVM's) computation for a 2 GHz TSC: mul = 2^31 (0.5 ns per tick), shift 0.
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
    fn decodes_words() {
        let t = TimeInfo::from_words(7, 9, (1 << 40) | (0xff << 32) | 0x8000_0000);
        assert_eq!(t.tsc_to_system_mul, 0x8000_0000);
        assert_eq!(t.tsc_shift, -1);
        assert_eq!(t.flags, PVCLOCK_TSC_STABLE);
        assert_eq!(unix_seconds(100, 600_000_000, 1_500_000_000), 102);
    }

    #[test]
    fn version_protocol() {
        let v = AtomicU32::new(2);
        assert_eq!(read_consistent(&v, || 5), Some(5));
        let busy = AtomicU32::new(3);
        assert_eq!(read_consistent(&busy, || 5), None);
    }
}
