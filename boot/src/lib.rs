//! oxvpn boot: from the PVH entry point to the kernel's Rust `main`, plus the CPU tables the kernel keeps.
//!
//! Layer: the lowest one, x86_64 only; all `unsafe` that sets up the CPU lives here. It knows nothing about
//! serial consoles, clocks or the VPN: the kernel receives the `hvm_start_info` address through the function
//! named with [`entry_point!`] and drives the rest (`paging::finish` once it read the memory map,
//! `apic::init` once it calibrated the TSC).
//!
//! Boot order: `entry` (32-bit trampoline, SSE on, long mode) -> [`rust_entry`] (GDT/TSS, IDT) -> kernel.
#![no_std]

pub mod apic;
mod entry;
pub mod gdt;
pub mod interrupts;
pub mod paging;
pub mod pvh;

pub use entry::BOOT_STACK_SIZE;

extern "C" {
    /// Defined by [`entry_point!`] in the kernel.
    fn oxvpn_kernel_main(start_info_paddr: u64) -> !;
}

/// First Rust code, called by the trampoline on the boot stack with `ebx` from the loader.
extern "C" fn rust_entry(start_info_paddr: u64) -> ! {
    gdt::init();
    interrupts::init();
    // SAFETY: provided by the kernel binary through entry_point!.
    unsafe { oxvpn_kernel_main(start_info_paddr) }
}

/// Start and end of the loaded image (`__image_start`/`__image_end` from `linker.ld`).
pub fn image_range() -> (u64, u64) {
    extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    // Linker-defined symbols: only their addresses are taken, never their contents.
    (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__image_end) as u64,
    )
}

/// Declares the kernel's main function: `fn(start_info_paddr: u64) -> !`, called with interrupts off on the
/// boot stack after the GDT and IDT are loaded.
#[macro_export]
macro_rules! entry_point {
    ($path:path) => {
        #[export_name = "oxvpn_kernel_main"]
        extern "C" fn __oxvpn_kernel_main(start_info_paddr: u64) -> ! {
            let main: fn(u64) -> ! = $path;
            main(start_info_paddr)
        }
    };
}
