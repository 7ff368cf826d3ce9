//! Finding Xen and calling it: the CPUID signature leaves, the hypercall page, and typed wrappers for the
//! hypercalls the image uses.
//!
//! Layer: the only place that enters the hypervisor. Xen advertises itself at CPUID leaf `0x40000000 +
//! 0x100 * i` with the signature "XenVMMXenVMM" (`arch-x86/cpuid.h`; a viridian-enabled guest sees Hyper-V
//! first and Xen at `0x40000100`). Leaf base+2 names the MSR that, written with a page's physical address,
//! makes Xen fill that page with one 32-byte stub per hypercall (`vmcall`/`vmmcall` as the CPU needs). A
//! hypercall is a `call` into stub `nr` with the arguments in rdi, rsi, rdx, r10, r8 and the result in rax
//! (negative errno on failure).
//!
//! Every argument structure below is `#[repr(C)]` with the layout of the public header named beside it.

use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

use super::{DomId, XenError};
use crate::cpu::cpuid;

/// `__HYPERVISOR_memory_op`.
pub const MEMORY_OP: usize = 12;
/// `__HYPERVISOR_xen_version`.
pub const XEN_VERSION: usize = 17;
/// `__HYPERVISOR_console_io`.
pub const CONSOLE_IO: usize = 18;
/// `__HYPERVISOR_grant_table_op`.
pub const GRANT_TABLE_OP: usize = 20;
/// `__HYPERVISOR_sched_op`.
pub const SCHED_OP: usize = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const EVENT_CHANNEL_OP: usize = 32;
/// `__HYPERVISOR_hvm_op`.
pub const HVM_OP: usize = 34;

/// `DOMID_SELF`.
pub const DOMID_SELF: DomId = 0x7ff0;

/// What CPUID says about the Xen we run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenCpuid {
    /// The leaf holding the signature (0x40000000 or 0x40000100, ...).
    pub base: u32,
    /// Major and minor version (leaf base+1).
    pub version: (u16, u16),
    /// The MSR that installs the hypercall page (leaf base+2 EBX).
    pub hypercall_msr: u32,
    /// HVM features (leaf base+4 EAX, 0 when absent): bit 6 = per-vCPU upcall vector.
    pub hvm_features: u32,
}

/// `XEN_HVM_CPUID_UPCALL_VECTOR`: HVMOP_set_evtchn_upcall_vector is available.
pub const HVM_CPUID_UPCALL_VECTOR: u32 = 1 << 6;

/// "XenVMMXenVMM" in EBX, ECX, EDX.
const SIGNATURE: (u32, u32, u32) = (0x566e_6558, 0x6558_4d4d, 0x4d4d_566e);

/// Looks for Xen's CPUID leaves through `cpuid` (the instruction, or a table in tests).
pub fn detect_with(cpuid: impl Fn(u32, u32) -> (u32, u32, u32, u32)) -> Option<XenCpuid> {
    (0..16u32)
        .map(|i| 0x4000_0000 + i * 0x100)
        .find_map(|base| {
            let (max, b, c, d) = cpuid(base, 0);
            if (b, c, d) != SIGNATURE || max < base + 2 {
                return None;
            }
            let (version, ..) = cpuid(base + 1, 0);
            let (pages, msr, ..) = cpuid(base + 2, 0);
            if pages == 0 {
                return None;
            }
            let hvm_features = if max >= base + 4 {
                cpuid(base + 4, 0).0
            } else {
                0
            };
            Some(XenCpuid {
                base,
                version: ((version >> 16) as u16, version as u16),
                hypercall_msr: msr,
                hvm_features,
            })
        })
}

/// Looks for Xen on this CPU (only when CPUID.1:ECX.hypervisor is set).
pub fn detect() -> Option<XenCpuid> {
    if cpuid(1, 0).ecx & (1 << 31) == 0 {
        return None;
    }
    detect_with(|leaf, sub| {
        let r = cpuid(leaf, sub);
        (r.eax, r.ebx, r.ecx, r.edx)
    })
}

#[repr(C, align(4096))]
struct HypercallPage(UnsafeCell<[u8; 4096]>);

// SAFETY: written once by Xen (through the MSR) before any hypercall; afterwards only executed.
unsafe impl Sync for HypercallPage {}

static HYPERCALL_PAGE: HypercallPage = HypercallPage(UnsafeCell::new([0xc3; 4096]));
/// 0 until [`install`] ran: hypercalls before then fail with ENOSYS instead of jumping into nothing.
static INSTALLED: AtomicU32 = AtomicU32::new(0);

/// Asks Xen to fill the hypercall page (write its address to the MSR from CPUID).
pub fn install(xen: &XenCpuid) {
    let addr = HYPERCALL_PAGE.0.get() as u64;
    // SAFETY: the MSR is the one Xen named in its CPUID leaf; the page is ours, page-aligned, identity
    // mapped and executable, and nothing else uses it.
    unsafe {
        asm!("wrmsr", in("ecx") xen.hypercall_msr, in("eax") addr as u32, in("edx") (addr >> 32) as u32,
             options(nostack, preserves_flags));
    }
    INSTALLED.store(1, Ordering::SeqCst);
}

/// Whether [`install`] ran (we are on Xen and hypercalls work).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed) != 0
}

const ENOSYS: i64 = -38;

/// Calls hypercall `nr` with up to five arguments. Returns rax.
///
/// # Safety
/// The arguments must be what hypercall `nr` expects: pointers must point at live, correctly laid out
/// structures that Xen may read and write for the duration of the call.
unsafe fn hypercall(nr: usize, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    if !installed() || nr >= 4096 / 32 {
        return ENOSYS;
    }
    let entry = HYPERCALL_PAGE.0.get() as u64 + nr as u64 * 32;
    let ret: i64;
    // SAFETY: `entry` is stub `nr` of the page Xen filled; the stubs clobber only the argument registers
    // (declared as clobbered here) and return with `ret`. Memory effects are the caller's contract.
    unsafe {
        asm!("call {entry}",
             entry = in(reg) entry,
             inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, inlateout("rdx") a3 => _,
             inlateout("r10") a4 => _, inlateout("r8") a5 => _,
             lateout("rax") ret, lateout("rcx") _, lateout("r11") _);
    }
    ret
}

fn check(op: &'static str, ret: i64) -> Result<i64, XenError> {
    if ret < 0 {
        Err(XenError::Hypercall { op, errno: ret })
    } else {
        Ok(ret)
    }
}

/// `CONSOLEIO_write`: bytes to Xen's own console (dom0, or any domain on a debug build).
pub fn console_write(bytes: &[u8]) -> Result<(), XenError> {
    // SAFETY: CONSOLEIO_write (0) reads `len` bytes at `ptr`.
    let ret = unsafe {
        hypercall(
            CONSOLE_IO,
            0,
            bytes.len() as u64,
            bytes.as_ptr() as u64,
            0,
            0,
        )
    };
    check("console_io write", ret).map(|_| ())
}

/// `SCHEDOP_yield`: gives the CPU to another vCPU for a moment.
pub fn sched_yield() {
    // SAFETY: SCHEDOP_yield (0) takes no argument.
    let _ = unsafe { hypercall(SCHED_OP, 0, 0, 0, 0, 0) };
}

/// `SHUTDOWN_poweroff`.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;

/// `SCHEDOP_shutdown` with `reason`; returns only if Xen refused.
pub fn sched_shutdown(reason: u32) -> XenError {
    let arg = reason; // struct sched_shutdown { unsigned int reason; }
                      // SAFETY: SCHEDOP_shutdown (2) reads one u32 at the pointer.
    let ret = unsafe { hypercall(SCHED_OP, 2, &arg as *const u32 as u64, 0, 0, 0) };
    XenError::Hypercall {
        op: "sched_op shutdown",
        errno: ret.min(-1),
    }
}

/// `xen_version(XENVER_version)`: major << 16 | minor.
pub fn xen_version() -> Result<u32, XenError> {
    // SAFETY: XENVER_version (0) takes no buffer.
    let ret = unsafe { hypercall(XEN_VERSION, 0, 0, 0, 0, 0) };
    check("xen_version", ret).map(|v| v as u32)
}

/// A memory_op with one argument structure.
///
/// # Safety
/// `arg` must be the structure `cmd` expects, with any buffer it points to live and large enough.
pub unsafe fn memory_op<T>(cmd: u64, arg: &mut T) -> i64 {
    // SAFETY: per the caller's contract.
    unsafe { hypercall(MEMORY_OP, cmd, arg as *mut T as u64, 0, 0, 0) }
}

/// `struct xen_add_to_physmap` (`memory.h`).
#[repr(C)]
struct AddToPhysmap {
    domid: u16,
    size: u16,
    space: u32,
    idx: u64,
    gpfn: u64,
}

/// `XENMAPSPACE_shared_info`.
pub const MAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const MAPSPACE_GRANT_TABLE: u32 = 1;

/// `XENMEM_add_to_physmap`: puts page `idx` of `space` at our frame `gpfn` (the RAM page there, if any, is
/// given back to Xen).
pub fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<(), XenError> {
    let mut arg = AddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    // SAFETY: XENMEM_add_to_physmap (7) with its structure; Xen only changes our physmap at `gpfn`, which
    // the callers reserve for this.
    let ret = unsafe { memory_op(7, &mut arg) };
    check("memory_op add_to_physmap", ret).map(|_| ())
}

/// `struct xen_memory_reservation` (`memory.h`).
#[repr(C)]
struct MemoryReservation {
    extent_start: u64,
    nr_extents: u64,
    extent_order: u32,
    mem_flags: u32,
    domid: u16,
}

/// A reservation op (`XENMEM_increase_reservation` 0, `decrease_reservation` 1, `populate_physmap` 6) on
/// single pages at our frames `frames`. Returns how many Xen did (it stops at the first it cannot do).
fn reservation_op(cmd: u64, name: &'static str, frames: &mut [u64]) -> Result<usize, XenError> {
    if frames.is_empty() {
        return Ok(0);
    }
    let mut arg = MemoryReservation {
        extent_start: frames.as_mut_ptr() as u64,
        nr_extents: frames.len() as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    };
    // SAFETY: the reservation ops read (and for a non-translated guest write) `nr_extents` frame numbers
    // at `extent_start`, which is `frames`, live and writable for the call. Xen only changes our physmap at
    // those frames, which the callers reserve for this.
    let ret = unsafe { memory_op(cmd, &mut arg) };
    check(name, ret).map(|done| (done as usize).min(frames.len()))
}

/// `XENMEM_decrease_reservation`: gives the RAM pages at our frames `frames` back to Xen, leaving holes.
/// Returns how many were released (a frame that already is a hole stops the batch there).
pub fn decrease_reservation(frames: &mut [u64]) -> Result<usize, XenError> {
    reservation_op(1, "memory_op decrease_reservation", frames)
}

/// `XENMEM_populate_physmap`: puts fresh RAM pages at our frames `frames` (holes). Returns how many were
/// populated (Xen stops when the domain would exceed its maximum).
pub fn populate_physmap(frames: &mut [u64]) -> Result<usize, XenError> {
    reservation_op(6, "memory_op populate_physmap", frames)
}

/// `struct xen_hvm_param` (`hvm/hvm_op.h`).
#[repr(C)]
struct HvmParam {
    domid: u16,
    index: u32,
    value: u64,
}

/// `HVM_PARAM_STORE_PFN`.
pub const PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`.
pub const PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_CONSOLE_PFN`.
pub const PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`.
pub const PARAM_CONSOLE_EVTCHN: u32 = 18;

/// `HVMOP_get_param` for our domain.
pub fn hvm_get_param(index: u32) -> Result<u64, XenError> {
    let mut arg = HvmParam {
        domid: DOMID_SELF,
        index,
        value: 0,
    };
    // SAFETY: HVMOP_get_param (1) reads and writes this structure.
    let ret = unsafe { hypercall(HVM_OP, 1, &mut arg as *mut HvmParam as u64, 0, 0, 0) };
    check("hvm_op get_param", ret).map(|_| arg.value)
}

/// `HVMOP_set_evtchn_upcall_vector`: event-channel upcalls for `vcpu` arrive as LAPIC interrupt `vector`
/// (edge, acknowledged with a LAPIC EOI).
pub fn hvm_set_upcall_vector(vcpu: u32, vector: u8) -> Result<(), XenError> {
    #[repr(C)]
    struct UpcallVector {
        vcpu: u32,
        vector: u8,
    }
    let mut arg = UpcallVector { vcpu, vector };
    // SAFETY: HVMOP_set_evtchn_upcall_vector (23) reads this structure.
    let ret = unsafe { hypercall(HVM_OP, 23, &mut arg as *mut UpcallVector as u64, 0, 0, 0) };
    check("hvm_op set_evtchn_upcall_vector", ret).map(|_| ())
}

/// An event_channel_op on one argument structure.
///
/// # Safety
/// `arg` must be the structure `cmd` expects.
pub unsafe fn event_channel_op<T>(cmd: u64, arg: &mut T) -> i64 {
    // SAFETY: per the caller's contract.
    unsafe { hypercall(EVENT_CHANNEL_OP, cmd, arg as *mut T as u64, 0, 0, 0) }
}

/// A grant_table_op on `count` argument structures.
///
/// # Safety
/// `args` must be `count` structures of the kind `cmd` expects.
pub unsafe fn grant_table_op<T>(cmd: u64, args: &mut [T]) -> i64 {
    // SAFETY: per the caller's contract.
    unsafe {
        hypercall(
            GRANT_TABLE_OP,
            cmd,
            args.as_mut_ptr() as u64,
            args.len() as u64,
            0,
            0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_xen_behind_viridian() {
        let table = |leaf: u32, _sub: u32| match leaf {
            0x4000_0000 => (0x4000_0005, 0x7263_694d, 0x666f_736f, 0x7648_2074), // "Microsoft Hv"
            0x4000_0100 => (0x4000_0105, SIGNATURE.0, SIGNATURE.1, SIGNATURE.2),
            0x4000_0101 => (0x0004_0011, 0, 0, 0),
            0x4000_0102 => (1, 0x4000_0000, 0, 0),
            0x4000_0104 => (0x7c, 0, 0, 0),
            _ => (0, 0, 0, 0),
        };
        let xen = detect_with(table).unwrap();
        assert_eq!(xen.base, 0x4000_0100);
        assert_eq!(xen.version, (4, 17));
        assert_eq!(xen.hypercall_msr, 0x4000_0000);
        assert!(xen.hvm_features & HVM_CPUID_UPCALL_VECTOR != 0);
    }

    #[test]
    fn no_xen_on_kvm_or_tcg() {
        let kvm = |leaf: u32, _sub: u32| match leaf {
            0x4000_0000 => (0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
            _ => (0, 0, 0, 0),
        };
        assert_eq!(detect_with(kvm), None);
        // signature but no hypercall page offered
        let broken = |leaf: u32, _sub: u32| match leaf {
            0x4000_0000 => (0x4000_0002, SIGNATURE.0, SIGNATURE.1, SIGNATURE.2),
            _ => (0, 0, 0, 0),
        };
        assert_eq!(detect_with(broken), None);
    }

    #[test]
    fn argument_layouts_match_the_headers() {
        assert_eq!(core::mem::size_of::<AddToPhysmap>(), 24);
        assert_eq!(core::mem::size_of::<HvmParam>(), 16);
        assert_eq!(core::mem::size_of::<MemoryReservation>(), 32);
        assert_eq!(core::mem::offset_of!(MemoryReservation, domid), 24);
        assert_eq!(core::mem::offset_of!(HvmParam, index), 4);
    }
}
