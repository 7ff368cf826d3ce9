//! Final page-table and memory-type setup once the memory map is known.
//!
//! Layer: CPU memory configuration, no allocation. The trampoline identity-maps 0..4 GiB with 2 MiB write-back
//! pages. Here:
//! - every 2 MiB page below 4 GiB that overlaps no RAM (the PCI hole, LAPIC, IOAPIC, virtio-mmio) becomes
//!   uncached (PCD|PWT = PAT entry 3, UC), so device registers are never cached whatever the MTRRs say;
//! - when the CPU has 1 GiB pages, 4 GiB..512 GiB is identity-mapped with 1 GiB pages (write-back where
//!   they overlap RAM, uncached otherwise), for RAM above 4 GiB and 64-bit PCI BARs;
//! - the 4 KiB page below the boot stack (`__stack_guard_start`) is unmapped, so a stack overflow raises a
//!   page fault (handled on its own IST stack) instead of silently overwriting `.bss`; its 2 MiB page is
//!   split into 4 KiB pages for that;
//! - the MTRR default type becomes write-back (IA32_MTRR_DEF_TYPE, SDM Vol. 3A 12.11.2.1). On `microvm` no
//!   firmware programs MTRRs, and with MTRRs disabled all memory is uncached, which is very slow under KVM.
//!   Variable MTRRs a firmware set up (SeaBIOS marks the PCI hole UC) are left alone.

use core::arch::asm;

use crate::entry::BOOT_PAGE_TABLES;
use crate::pvh::MemmapEntry;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;
const ADDR_MASK_2M: u64 = 0x000f_ffff_ffe0_0000;

/// The 4 KiB page table that splits the 2 MiB page holding the stack guard.
#[repr(C, align(4096))]
struct PageTable([u64; 512]);

static mut GUARD_PT: PageTable = PageTable([0; 512]);

/// The unmapped page below the boot stack, `[start, end)`.
pub fn stack_guard() -> (u64, u64) {
    extern "C" {
        static __stack_guard_start: u8;
        static __stack_guard_end: u8;
    }
    // Linker-defined symbols: only their addresses are taken.
    (
        core::ptr::addr_of!(__stack_guard_start) as u64,
        core::ptr::addr_of!(__stack_guard_end) as u64,
    )
}

/// Highest physical address (exclusive) that is identity mapped after [`finish`].
pub fn mapped_limit(has_1g_pages: bool) -> u64 {
    if has_1g_pages {
        512 * GIB
    } else {
        4 * GIB
    }
}

fn overlaps_ram(memmap: &[MemmapEntry], start: u64, end: u64) -> bool {
    memmap
        .iter()
        .any(|e| e.is_ram() && e.addr < end && start < e.end())
}

/// Applies the memory-type policy above. `has_1g_pages`: CPUID 0x80000001 EDX bit 26. `has_mtrr`: CPUID 1
/// EDX bit 12.
pub fn finish(memmap: &[MemmapEntry], has_1g_pages: bool, has_mtrr: bool) {
    // SAFETY: single-threaded; the tables are the live ones, and only cache attributes of non-RAM pages and
    // new mappings above 4 GiB change, so no memory in use moves. CR3 is reloaded to flush the TLB.
    unsafe {
        let tables = &mut *core::ptr::addr_of_mut!(BOOT_PAGE_TABLES);
        for (i, entry) in tables.pd.iter_mut().flatten().enumerate() {
            let start = i as u64 * MIB2;
            if !overlaps_ram(memmap, start, start + MIB2) {
                *entry |= PCD | PWT;
            }
        }
        let (guard, _) = stack_guard();
        let pde_index = (guard / MIB2) as usize;
        if let Some(pde) = tables.pd.iter_mut().flatten().nth(pde_index) {
            if *pde & HUGE != 0 {
                let flags = *pde & !(ADDR_MASK_2M | HUGE);
                let base = *pde & ADDR_MASK_2M;
                let pt = &mut *core::ptr::addr_of_mut!(GUARD_PT);
                for (i, pte) in pt.0.iter_mut().enumerate() {
                    let addr = base + i as u64 * 4096;
                    *pte = if addr == guard { 0 } else { addr | flags };
                }
                *pde = (pt.0.as_ptr() as u64) | PRESENT | WRITABLE;
            }
        }
        if has_1g_pages {
            for (i, entry) in tables.pdpt.iter_mut().enumerate().skip(4) {
                let start = i as u64 * GIB;
                let cache = if overlaps_ram(memmap, start, start + GIB) {
                    0
                } else {
                    PCD | PWT
                };
                *entry = start | PRESENT | WRITABLE | HUGE | cache;
            }
        }
        asm!("mov {tmp}, cr3", "mov cr3, {tmp}", tmp = out(reg) _, options(nostack, preserves_flags));

        if has_mtrr {
            const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
            const ENABLE: u64 = 1 << 11;
            const WRITE_BACK: u64 = 6;
            let (lo, hi): (u32, u32);
            asm!("rdmsr", in("ecx") IA32_MTRR_DEF_TYPE, out("eax") lo, out("edx") hi, options(nomem, nostack));
            let old = (u64::from(hi) << 32) | u64::from(lo);
            let new = (old & !0xff) | ENABLE | WRITE_BACK;
            if new != old {
                asm!("wbinvd", "wrmsr", in("ecx") IA32_MTRR_DEF_TYPE, in("eax") new as u32,
                     in("edx") (new >> 32) as u32, options(nostack));
            }
        }
    }
}
