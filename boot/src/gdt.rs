//! The long-mode GDT with a TSS whose interrupt stack table gives every interrupt its own stack.
//!
//! Layer: CPU descriptor tables; no policy. Why IST for everything: ring's assembly and the C compiled by
//! its build script may use the 128-byte red zone below `rsp`, so an interrupt must never push its frame on
//! the interrupted stack. IST switches stacks unconditionally. Vectors never nest on the same IST stack:
//! interrupt gates clear IF, and exception handlers do not return.

use core::arch::asm;
use core::mem::size_of;
use core::ptr::addr_of;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
const TSS_SEL: u16 = 0x18;

/// IST index (1-based, as in the IDT entry) for CPU exceptions.
pub const IST_EXCEPTION: u8 = 1;
/// IST index for double fault, NMI and machine check, which may arrive while an exception stack is in use.
pub const IST_CRITICAL: u8 = 2;
/// IST index for external interrupts (timer, device wake-ups).
pub const IST_INTERRUPT: u8 = 3;

const IST_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static mut IST_STACKS: [IstStack; 3] = [const { IstStack([0; IST_STACK_SIZE]) }; 3];

/// 64-bit TSS (Intel SDM Vol. 3A 8.7).
#[repr(C, packed(4))]
struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

static mut TSS: Tss = Tss {
    reserved0: 0,
    rsp: [0; 3],
    reserved1: 0,
    ist: [0; 7],
    reserved2: 0,
    reserved3: 0,
    iomap_base: 0,
};

static mut GDT: [u64; 5] = [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0, 0];

#[repr(C, packed(2))]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Installs the GDT and TSS. Called once, first thing in Rust.
pub(crate) fn init() {
    // SAFETY: single-threaded early boot; these statics are written only here, before `lgdt`/`ltr`.
    unsafe {
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        let stacks = &mut *core::ptr::addr_of_mut!(IST_STACKS);
        for (slot, stack) in stacks.iter_mut().enumerate() {
            tss.ist[slot] = stack.0.as_mut_ptr() as u64 + IST_STACK_SIZE as u64;
        }
        tss.iomap_base = size_of::<Tss>() as u16;

        // 64-bit available TSS descriptor (type 0x9), 16 bytes (SDM Vol. 3A 8.2.3).
        let base = addr_of!(TSS) as u64;
        let limit = (size_of::<Tss>() - 1) as u64;
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt[3] = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        gdt[4] = base >> 32;

        let ptr = DescriptorPointer {
            limit: (size_of::<[u64; 5]>() - 1) as u16,
            base: addr_of!(GDT) as u64,
        };
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov {tmp:e}, {ds:e}",
            "mov ds, {tmp:e}",
            "mov es, {tmp:e}",
            "mov ss, {tmp:e}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = const KERNEL_CS as u64,
            ds = in(reg) u32::from(KERNEL_DS),
            tss = in(reg) TSS_SEL,
            tmp = out(reg) _,
        );
    }
}
