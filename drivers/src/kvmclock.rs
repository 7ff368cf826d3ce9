//! kvmclock: KVM's paravirtual clock, which Firecracker, Cloud Hypervisor and QEMU/KVM all offer. The guest
//! registers a page of its own through two MSRs; KVM writes there the pvclock time record (the TSC rate and
//! the system time, [`crate::pvclock`]) and the wall clock at system time 0.
//!
//! Layer: hardware (two MSR writes, a static record) over the pure pvclock arithmetic. Only used when CPUID
//! says the hypervisor is KVM and offers the clock ([`Features::kvmclock`]); nothing here guesses.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::cpu::Features;
use crate::pvclock::{self, TimeInfo};

/// `MSR_KVM_WALL_CLOCK_NEW`: the guest-physical address of a `pvclock_wall_clock`.
const MSR_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
/// `MSR_KVM_SYSTEM_TIME_NEW`: the guest-physical address of a `pvclock_vcpu_time_info`, bit 0 = enable.
const MSR_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;

/// The two records KVM writes: `pvclock_vcpu_time_info` (32 bytes: version, pad, tsc_timestamp,
/// system_time, mul/shift/flags) then `pvclock_wall_clock` (version, sec, nsec). 64-byte aligned, so the
/// time record never crosses a page, as KVM requires.
#[repr(C, align(64))]
struct Records {
    time_version: AtomicU32,
    _pad: AtomicU32,
    tsc_timestamp: AtomicU64,
    system_time: AtomicU64,
    mul_shift_flags: AtomicU64,
    wall_version: AtomicU32,
    wall_sec: AtomicU32,
    wall_nsec: AtomicU32,
}

struct Shared(UnsafeCell<Records>);

// SAFETY: every field is an atomic; KVM is the other writer.
unsafe impl Sync for Shared {}

static RECORDS: Shared = Shared(UnsafeCell::new(Records {
    time_version: AtomicU32::new(0),
    _pad: AtomicU32::new(0),
    tsc_timestamp: AtomicU64::new(0),
    system_time: AtomicU64::new(0),
    mul_shift_flags: AtomicU64::new(0),
    wall_version: AtomicU32::new(0),
    wall_sec: AtomicU32::new(0),
    wall_nsec: AtomicU32::new(0),
}));

fn records() -> &'static Records {
    // SAFETY: a shared reference to a static whose fields are all atomics.
    unsafe { &*RECORDS.0.get() }
}

/// Why kvmclock gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmclockError {
    /// The hypervisor is not KVM or does not offer the clock at the new MSRs.
    NotOffered,
    /// The record stayed mid-update, or its TSC rate is implausible.
    Unusable,
}

impl core::fmt::Display for KvmclockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KvmclockError::NotOffered => {
                "no kvmclock (CPUID: not KVM, or no KVM_FEATURE_CLOCKSOURCE2)"
            }
            KvmclockError::Unusable => {
                "kvmclock's record is unreadable or gives no plausible TSC rate"
            }
        })
    }
}

/// Registers the records with KVM (when CPUID offers kvmclock) and returns the TSC rate it publishes.
pub fn enable(features: &Features) -> Result<u64, KvmclockError> {
    if !features.kvmclock() {
        return Err(KvmclockError::NotOffered);
    }
    // The image's statics are identity-mapped: their address is their guest-physical address.
    let base = RECORDS.0.get() as u64;
    let wall = base + 32;
    // SAFETY: CPUID says KVM implements these MSRs; the records are static, aligned and stay registered
    // for the life of the VM (nothing else uses the memory).
    unsafe {
        wrmsr(MSR_SYSTEM_TIME_NEW, base | 1);
        wrmsr(MSR_WALL_CLOCK_NEW, wall);
    }
    time_info()
        .and_then(|t| t.tsc_hz())
        .ok_or(KvmclockError::Unusable)
}

fn time_info() -> Option<TimeInfo> {
    let r = records();
    pvclock::read_consistent(&r.time_version, || {
        TimeInfo::from_words(
            r.tsc_timestamp.load(Ordering::Relaxed),
            r.system_time.load(Ordering::Relaxed),
            r.mul_shift_flags.load(Ordering::Relaxed),
        )
    })
}

/// The wall clock KVM wrote at [`enable`] plus kvmclock's system time: Unix seconds now. None before
/// [`enable`], or when KVM wrote no time (0).
pub fn unix_time_now() -> Option<u64> {
    let r = records();
    let (sec, nsec) = pvclock::read_consistent(&r.wall_version, || {
        (
            r.wall_sec.load(Ordering::Relaxed),
            r.wall_nsec.load(Ordering::Relaxed),
        )
    })?;
    let system_ns = time_info()?.system_time_at(crate::cpu::rdtsc());
    Some(pvclock::unix_seconds(u64::from(sec), nsec, system_ns)).filter(|&s| s != 0)
}

/// # Safety
/// `msr` must exist on this CPU and accept `value`.
unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: per the function contract.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
                         options(nostack, preserves_flags));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_kvm() {
        assert_eq!(core::mem::offset_of!(Records, tsc_timestamp), 8);
        assert_eq!(core::mem::offset_of!(Records, mul_shift_flags), 24);
        assert_eq!(core::mem::offset_of!(Records, wall_version), 32);
        assert_eq!(core::mem::offset_of!(Records, wall_nsec), 40);
        assert_eq!(core::mem::align_of::<Records>(), 64);
    }

    #[test]
    fn not_offered_without_cpuid() {
        assert_eq!(enable(&Features::default()), Err(KvmclockError::NotOffered));
    }
}
