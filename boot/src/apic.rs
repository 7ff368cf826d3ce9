//! Local APIC: the one-shot timer that wakes the main loop from `hlt` at its next deadline.
//!
//! Layer: one device register block, no policy. Supports xAPIC (MMIO at the IA32_APIC_BASE address) and
//! x2APIC (MSRs 0x800+) when a firmware left the APIC in that mode. The timer runs in one-shot mode with
//! divide-by-1 (SDM Vol. 3A 11.5.4); its rate is calibrated against the TSC at [`init`]. Interrupt stubs write
//! EOI themselves (see `interrupts`).

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::interrupts::{OXVPN_LAPIC_EOI, SPURIOUS_VECTOR, TIMER_VECTOR};

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_ENABLE: u64 = 1 << 11;
const X2APIC_ENABLE: u64 = 1 << 10;

const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_LVT_TIMER: u32 = 0x320;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;

static X2APIC: AtomicBool = AtomicBool::new(false);
static MMIO_BASE: AtomicU64 = AtomicU64::new(0xfee0_0000);
/// Timer ticks per millisecond (divide-by-1).
static TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only architectural APIC MSRs are read, after CPUID reported an APIC.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

fn wrmsr(msr: u32, value: u64) {
    // SAFETY: only architectural APIC MSRs are written, with values from the SDM.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    };
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        wrmsr(0x800 + (reg >> 4), u64::from(value));
    } else {
        let addr = MMIO_BASE.load(Ordering::Relaxed) + u64::from(reg);
        // SAFETY: identity-mapped, uncached LAPIC register page.
        unsafe { core::ptr::write_volatile(addr as *mut u32, value) };
    }
}

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        rdmsr(0x800 + (reg >> 4)) as u32
    } else {
        let addr = MMIO_BASE.load(Ordering::Relaxed) + u64::from(reg);
        // SAFETY: identity-mapped, uncached LAPIC register page.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }
}

fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Enables the LAPIC, routes its timer to [`TIMER_VECTOR`] and calibrates it for 1 ms against the TSC
/// (`tsc_hz`, from the clock driver). Returns the timer rate in Hz.
pub fn init(tsc_hz: u64) -> u64 {
    let base = rdmsr(IA32_APIC_BASE);
    wrmsr(IA32_APIC_BASE, base | APIC_ENABLE);
    if base & X2APIC_ENABLE != 0 {
        X2APIC.store(true, Ordering::Relaxed);
    } else {
        let mmio = base & 0x000f_ffff_ffff_f000;
        MMIO_BASE.store(mmio, Ordering::Relaxed);
        // SAFETY: written once before interrupts are enabled; read by the interrupt stubs.
        unsafe { *core::ptr::addr_of_mut!(OXVPN_LAPIC_EOI) = mmio + u64::from(REG_EOI) };
    }
    // With x2APIC the stubs' MMIO EOI write would be wrong; x2APIC is only ever enabled by a firmware, which
    // QEMU's SeaBIOS/qboot do not do. Fall back to xAPIC then: clearing EXTD needs a full disable first.
    if X2APIC.load(Ordering::Relaxed) {
        wrmsr(IA32_APIC_BASE, base & !(APIC_ENABLE | X2APIC_ENABLE));
        wrmsr(IA32_APIC_BASE, (base & !X2APIC_ENABLE) | APIC_ENABLE);
        X2APIC.store(false, Ordering::Relaxed);
        let mmio = base & 0x000f_ffff_ffff_f000;
        MMIO_BASE.store(mmio, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { *core::ptr::addr_of_mut!(OXVPN_LAPIC_EOI) = mmio + u64::from(REG_EOI) };
    }

    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_TIMER_DIVIDE, 0b1011); // divide by 1
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));

    // Count down for 1 ms of TSC time with the timer masked.
    let tsc_per_ms = (tsc_hz / 1000).max(1);
    write(REG_TIMER_INITIAL, u32::MAX);
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < tsc_per_ms {
        core::hint::spin_loop();
    }
    let elapsed = u64::from(u32::MAX - read(REG_TIMER_CURRENT));
    write(REG_TIMER_INITIAL, 0);
    TICKS_PER_MS.store(elapsed.max(1), Ordering::Relaxed);
    write(REG_LVT_TIMER, u32::from(TIMER_VECTOR)); // one-shot, unmasked
    elapsed * 1000
}

/// Arms the one-shot timer to fire in `us` microseconds (clamped to the 32-bit counter; 0 disarms).
pub fn arm_oneshot_us(us: u64) {
    let ticks = us.saturating_mul(TICKS_PER_MS.load(Ordering::Relaxed)) / 1000;
    write(
        REG_TIMER_INITIAL,
        ticks.clamp(u64::from(us > 0), u64::from(u32::MAX)) as u32,
    );
}

/// Stops the timer.
pub fn disarm() {
    write(REG_TIMER_INITIAL, 0);
}

/// Acknowledges an interrupt from Rust code (the stubs do it themselves).
pub fn eoi() {
    write(REG_EOI, 0);
}
