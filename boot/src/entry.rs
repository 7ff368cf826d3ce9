//! PVH entry: the ELF note that tells QEMU where to start, and the 32->64-bit trampoline.
//!
//! Layer: the first instructions the CPU runs. It must not touch anything but the CPU and its own static
//! tables; everything that needs the memory map or devices happens later in Rust.
//!
//! PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h, "x86/HVM direct boot ABI"): the loader enters
//! `XEN_ELFNOTE_PHYS32_ENTRY` in 32-bit protected mode, paging off, flat 4 GiB CS/DS/ES/SS, interrupts off,
//! `ebx` = physical address of `struct hvm_start_info`. There is no stack.
//!
//! The trampoline:
//! 0. checks CPUID for the instruction sets the whole image is compiled with (x86_64-target.json: SSE3,
//!    SSSE3, SSE4.1, SSE4.2, POPCNT, AES-NI, PCLMULQDQ). Rust code may use them anywhere, even while
//!    formatting the first log line, so this check cannot be written in Rust: on a CPU without them the
//!    trampoline prints a message on COM1 and leaves with exit code 0x14 ("unsupported machine", see
//!    kernel/src/exit.rs), instead of dying on an invalid-opcode fault,
//! 1. zeroes `.bss` (QEMU's loader already does, but the page tables must be zero whoever loads us),
//! 2. builds identity-mapped page tables: PML4[0] -> PDPT[0..4] -> 4 PDs of 2 MiB pages = 0..4 GiB
//!    (RAM and the 32-bit PCI hole; `paging` later marks non-RAM uncached and maps above 4 GiB),
//! 3. enables PAE, SSE (CR4.OSFXSR|OSXMMEXCPT, CR0.EM off, MP on, so Rust code may use SSE from its first
//!    instruction), long mode (EFER.LME) and paging,
//! 4. far-jumps to 64-bit code, loads the data segments and the boot stack, and calls
//!    [`crate::rust_entry`] with the `hvm_start_info` address.

use core::arch::global_asm;

/// Size of the boot stack, which is the only kernel stack (single core, no threads).
pub const BOOT_STACK_SIZE: usize = 512 * 1024;

/// Page-table pages built by the trampoline: PML4, PDPT, then 4 page directories.
#[repr(C, align(4096))]
pub(crate) struct BootPageTables {
    pub pml4: [u64; 512],
    pub pdpt: [u64; 512],
    pub pd: [[u64; 512]; 4],
}

#[no_mangle]
pub(crate) static mut BOOT_PAGE_TABLES: BootPageTables = BootPageTables {
    pml4: [0; 512],
    pdpt: [0; 512],
    pd: [[0; 512]; 4],
};

/// CPUID.1:ECX bits the image cannot run without: SSE3 (0), PCLMULQDQ (1), SSSE3 (9), SSE4.1 (19),
/// SSE4.2 (20), POPCNT (23), AES (25).
const REQUIRED_CPUID1_ECX: u32 = 1 | 1 << 1 | 1 << 9 | 1 << 19 | 1 << 20 | 1 << 23 | 1 << 25;

#[repr(C, align(16))]
struct BootStack([u8; BOOT_STACK_SIZE]);

#[link_section = ".boot_stack"]
#[no_mangle]
static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

global_asm!(
    r#"
    /* XEN_ELFNOTE_PHYS32_ENTRY (type 18): name "Xen", 4-byte desc = 32-bit physical entry address. */
    .pushsection .note.pvh, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .long pvh_start32
    .popsection

    .pushsection .text.boot32, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi                  /* hvm_start_info, kept in esi until the call into Rust */

    mov $1, %eax
    cpuid
    and ${required_ecx}, %ecx
    cmp ${required_ecx}, %ecx
    jne pvh_unsupported_cpu

    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT */
    mov ${tables}, %edi
    lea 0x1003(%edi), %eax          /* PDPT is the next page; P | RW */
    mov %eax, (%edi)
    /* PDPT[0..4] -> the four page directories */
    lea 0x1000(%edi), %ebx
    lea 0x2003(%edi), %eax
    mov $4, %ecx
1:  mov %eax, (%ebx)
    add $0x1000, %eax
    add $8, %ebx
    loop 1b
    /* PD entries: 2048 x 2 MiB pages, P | RW | PS */
    lea 0x2000(%edi), %ebx
    mov $0x83, %eax
    mov $2048, %ecx
2:  mov %eax, (%ebx)
    add $0x200000, %eax
    add $8, %ebx
    loop 2b

    /* CR4: PAE (5), OSFXSR (9), OSXMMEXCPT (10) */
    mov %cr4, %eax
    or $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    mov %eax, %cr4
    mov %edi, %cr3

    /* EFER.LME */
    mov $0xC0000080, %ecx
    rdmsr
    or $(1 << 8), %eax
    wrmsr

    /* CR0: clear EM (2) and TS (3); set PE (0), MP (1), NE (5), WP (16), PG (31) */
    mov %cr0, %eax
    and $~((1 << 2) | (1 << 3)), %eax
    or $((1 << 0) | (1 << 1) | (1 << 5) | (1 << 16) | (1 << 31)), %eax
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $pvh_start64

    .code64
pvh_start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    lea {stack}+{stack_size}(%rip), %rsp
    xor %ebp, %ebp
    mov %esi, %edi                  /* zero-extends: first argument = hvm_start_info address */
    call {rust_entry}
3:  cli
    hlt
    jmp 3b

pvh_unsupported_cpu:
    mov $pvh_unsupported_msg, %esi
    mov $0x3f8, %dx
4:  lodsb
    test %al, %al
    jz 5f
    out %al, %dx
    jmp 4b
5:  mov $0xf4, %dx                  /* isa-debug-exit */
    mov $0x14, %eax                 /* ExitCode::Unsupported */
    out %eax, %dx
6:  hlt
    jmp 6b
    .popsection

    .pushsection .rodata.boot_msg, "a"
pvh_unsupported_msg:
    .ascii "oxvpn: this CPU lacks SSE3/SSSE3/SSE4.1/SSE4.2/POPCNT/AES-NI/PCLMULQDQ, which the image is built for "
    .asciz "(use -cpu max under TCG, -cpu host on a recent x86_64 under KVM)\n"
    .popsection

    /* Transition GDT: null, 64-bit code (0x08), data (0x10). `gdt` replaces it with one that has a TSS. */
    .pushsection .rodata.boot_gdt, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_ptr:
    .word boot_gdt_ptr - boot_gdt - 1
    .long boot_gdt
    .popsection
    "#,
    tables = sym BOOT_PAGE_TABLES,
    stack = sym BOOT_STACK,
    stack_size = const BOOT_STACK_SIZE,
    rust_entry = sym crate::rust_entry,
    required_ecx = const REQUIRED_CPUID1_ECX,
    options(att_syntax)
);
