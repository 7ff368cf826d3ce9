//! The IDT: a handler for every CPU exception, the LAPIC timer and device wake-up vectors.
//!
//! Layer: CPU interrupt plumbing, no policy. Exceptions are fatal: the stub saves every general-purpose
//! register into an [`ExceptionFrame`] and calls the hook the kernel registered with [`set_exception_hook`]
//! (it prints the frame and exits through isa-debug-exit). Exception handlers never return, so they do not
//! save SIMD state: clobbering the interrupted code's XMM registers is harmless when it never resumes.
//!
//! External interrupts ([`TIMER_VECTOR`], [`WAKE_VECTORS`], [`SPURIOUS_VECTOR`]) only exist to end a `hlt`:
//! their stubs are a few instructions of assembly that acknowledge the LAPIC (write EOI) and `iretq`. They
//! run no Rust code and touch no SIMD register, so they preserve all SIMD state without fxsave/fxrstor.
//! The main loop then polls everything and computes the next deadline; no work happens in interrupt context.
//! All vectors run on IST stacks (see `gdt`), so the red zone of interrupted code is never overwritten.

use core::arch::{asm, global_asm};
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::gdt::{IST_CRITICAL, IST_EXCEPTION, IST_INTERRUPT, KERNEL_CS};

/// Vector of the LAPIC timer (see `apic`).
pub const TIMER_VECTOR: u8 = 0x20;
/// Vectors whose only effect is to wake the CPU from `hlt` (for device MSI/MSI-X or IOAPIC routes).
pub const WAKE_VECTORS: core::ops::RangeInclusive<u8> = 0x30..=0x3f;
/// LAPIC spurious-interrupt vector (no EOI).
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Registers at the time of a CPU exception, in the order the assembly stub pushes them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExceptionFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Exception vector (0..=31).
    pub vector: u64,
    /// CPU error code, 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Mnemonic and name of a CPU exception vector (Intel SDM Vol. 3A table 6-1).
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        9 => "coprocessor segment overrun",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 floating point",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD floating point",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        28 => "#HV hypervisor injection",
        29 => "#VC VMM communication",
        30 => "#SX security",
        _ => "reserved",
    }
}

impl ExceptionFrame {
    /// CR2 (faulting linear address of the last page fault).
    pub fn cr2() -> u64 {
        let cr2: u64;
        // SAFETY: reading CR2 has no side effects.
        unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags)) };
        cr2
    }
}

impl fmt::Display for ExceptionFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "CPU exception {} ({}) error code {:#x} at rip {:#018x} cr2 {:#018x}",
            self.vector,
            exception_name(self.vector),
            self.error_code,
            self.rip,
            Self::cr2()
        )?;
        writeln!(
            f,
            "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}",
            self.rax, self.rbx, self.rcx, self.rdx
        )?;
        writeln!(
            f,
            "  rsi {:#018x} rdi {:#018x} rbp {:#018x} rsp {:#018x}",
            self.rsi, self.rdi, self.rbp, self.rsp
        )?;
        writeln!(
            f,
            "  r8  {:#018x} r9  {:#018x} r10 {:#018x} r11 {:#018x}",
            self.r8, self.r9, self.r10, self.r11
        )?;
        writeln!(
            f,
            "  r12 {:#018x} r13 {:#018x} r14 {:#018x} r15 {:#018x}",
            self.r12, self.r13, self.r14, self.r15
        )?;
        write!(
            f,
            "  rflags {:#010x} cs {:#06x} ss {:#06x}",
            self.rflags, self.cs, self.ss
        )
    }
}

/// What the kernel does with a CPU exception: print the frame and leave. Must not return.
pub type ExceptionHook = fn(&ExceptionFrame) -> !;

static HOOK: AtomicUsize = AtomicUsize::new(0);

/// Registers the exception hook. Before this, exceptions print a short line on COM1 and halt.
pub fn set_exception_hook(hook: ExceptionHook) {
    HOOK.store(hook as usize, Ordering::SeqCst);
}

extern "C" fn exception_entry(frame: &ExceptionFrame) -> ! {
    let hook = HOOK.load(Ordering::SeqCst);
    if hook != 0 {
        // SAFETY: HOOK only ever holds an `ExceptionHook` stored by set_exception_hook.
        let hook: ExceptionHook = unsafe { core::mem::transmute::<usize, ExceptionHook>(hook) };
        hook(frame);
    }
    early_serial_write(b"early CPU exception before the kernel hook; halting\n");
    loop {
        // SAFETY: halting with interrupts off is the end of the road.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Writes to COM1 without initialising it (the firmware or QEMU's reset state is enough for QEMU).
fn early_serial_write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: port 0x3f8 is COM1's data register; writing it has no effect beyond the serial line.
        unsafe {
            asm!("out dx, al", in("dx") 0x3f8u16, in("al") b, options(nomem, nostack, preserves_flags))
        };
    }
}

/// Physical address of the LAPIC EOI register (xAPIC mode) written by the interrupt stubs; set by `apic`.
#[no_mangle]
pub(crate) static mut OXVPN_LAPIC_EOI: u64 = 0xfee0_00b0;

// Exception stubs: vectors with a CPU error code (8, 10-14, 17, 21, 29, 30) skip the dummy push.
global_asm!(
    r#"
    .macro EXC_NOERR vec
    .balign 16
exc_stub_\vec:
    push 0
    push \vec
    jmp exc_common
    .endm
    .macro EXC_ERR vec
    .balign 16
exc_stub_\vec:
    push \vec
    jmp exc_common
    .endm

    .pushsection .text.interrupts, "ax"
    EXC_NOERR 0
    EXC_NOERR 1
    EXC_NOERR 2
    EXC_NOERR 3
    EXC_NOERR 4
    EXC_NOERR 5
    EXC_NOERR 6
    EXC_NOERR 7
    EXC_ERR 8
    EXC_NOERR 9
    EXC_ERR 10
    EXC_ERR 11
    EXC_ERR 12
    EXC_ERR 13
    EXC_ERR 14
    EXC_NOERR 15
    EXC_NOERR 16
    EXC_ERR 17
    EXC_NOERR 18
    EXC_NOERR 19
    EXC_NOERR 20
    EXC_ERR 21
    EXC_NOERR 22
    EXC_NOERR 23
    EXC_NOERR 24
    EXC_NOERR 25
    EXC_NOERR 26
    EXC_NOERR 27
    EXC_NOERR 28
    EXC_ERR 29
    EXC_ERR 30
    EXC_NOERR 31

exc_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    and rsp, -16
    cld
    call {entry}
    ud2

    /* LAPIC timer and device wake-ups: acknowledge and return; the main loop does the work. */
    .balign 16
oxvpn_irq_eoi_stub:
    push rax
    mov rax, [rip + OXVPN_LAPIC_EOI]
    mov dword ptr [rax], 0
    pop rax
    iretq

    .balign 16
oxvpn_irq_spurious_stub:
    iretq
    .popsection

    .pushsection .rodata.interrupts, "a"
    .balign 8
oxvpn_exception_stubs:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exc_stub_\n
    .endr
oxvpn_irq_stubs:
    .quad oxvpn_irq_eoi_stub
    .quad oxvpn_irq_spurious_stub
    .popsection
    "#,
    entry = sym exception_entry,
);

extern "C" {
    static oxvpn_exception_stubs: [u64; 32];
    static oxvpn_irq_stubs: [u64; 2];
}

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct IdtEntry([u64; 2]);

impl IdtEntry {
    const MISSING: IdtEntry = IdtEntry([0, 0]);

    /// 64-bit interrupt gate (type 0xE, DPL 0, present) on the given IST stack (SDM Vol. 3A 6.14.1).
    fn interrupt_gate(handler: u64, ist: u8) -> IdtEntry {
        let low = (handler & 0xffff)
            | (u64::from(KERNEL_CS) << 16)
            | (u64::from(ist & 7) << 32)
            | (0x8e << 40)
            | (((handler >> 16) & 0xffff) << 48);
        IdtEntry([low, handler >> 32])
    }
}

static mut IDT: [IdtEntry; 256] = [IdtEntry::MISSING; 256];

/// Fills and loads the IDT and masks the legacy 8259 PICs (interrupts come through the LAPIC only).
pub(crate) fn init() {
    // SAFETY: single-threaded early boot with interrupts disabled; the stub tables are defined above.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        let stubs = &*core::ptr::addr_of!(oxvpn_exception_stubs);
        for (vector, &stub) in stubs.iter().enumerate() {
            let ist = match vector {
                2 | 8 | 18 => IST_CRITICAL,
                _ => IST_EXCEPTION,
            };
            idt[vector] = IdtEntry::interrupt_gate(stub, ist);
        }
        let irq = &*core::ptr::addr_of!(oxvpn_irq_stubs);
        idt[usize::from(TIMER_VECTOR)] = IdtEntry::interrupt_gate(irq[0], IST_INTERRUPT);
        for v in WAKE_VECTORS {
            idt[usize::from(v)] = IdtEntry::interrupt_gate(irq[0], IST_INTERRUPT);
        }
        idt[usize::from(SPURIOUS_VECTOR)] = IdtEntry::interrupt_gate(irq[1], IST_INTERRUPT);

        #[repr(C, packed(2))]
        struct Pointer {
            limit: u16,
            base: u64,
        }
        let ptr = Pointer {
            limit: (core::mem::size_of::<[IdtEntry; 256]>() - 1) as u16,
            base: idt.as_ptr() as u64,
        };
        asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags));

        // Mask both 8259 PICs (ICW sequence not needed just to mask). Harmless where there is no PIC.
        asm!("out 0x21, al", "out 0xa1, al", in("al") 0xffu8, options(nomem, nostack, preserves_flags));
    }
}

/// Enables interrupts and halts until the next one, atomically (the `sti` shadow covers `hlt`), then
/// disables them again. The caller must have armed a wake-up source (e.g. `apic::arm_oneshot_us`).
pub fn wait_for_interrupt() {
    // SAFETY: all enabled vectors have handlers; interrupts are off again on return.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}
