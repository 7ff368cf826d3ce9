//! x86_64 instructions the drivers need (port I/O, CPUID, RDTSC, RDRAND/RDSEED) and the CPU feature report.
//!
//! Layer: thin wrappers over single instructions plus a pure decoder of CPUID values ([`Features::from_leaves`],
//! unit-tested on the host). The image is compiled for SSE4.2 + AES-NI + PCLMULQDQ (x86_64-target.json), so
//! [`Features::missing_required`] lets the kernel refuse to run on a CPU without them instead of faulting
//! with #UD in the middle of a TLS handshake.

use core::arch::asm;
use core::fmt;

/// Reads a byte from an I/O port.
///
/// # Safety
/// Port reads can have side effects on devices; the caller must own the port.
#[inline]
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: per the function contract.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// The caller must own the port and know what the write does to the device.
#[inline]
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: per the function contract.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a 16-bit value from an I/O port.
///
/// # Safety
/// As [`inb`].
#[inline]
pub unsafe fn inw(port: u16) -> u16 {
    let v: u16;
    // SAFETY: per the function contract.
    unsafe {
        asm!("in ax, dx", in("dx") port, out("ax") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes a 16-bit value to an I/O port.
///
/// # Safety
/// As [`outb`].
#[inline]
pub unsafe fn outw(port: u16, value: u16) {
    // SAFETY: per the function contract.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a 32-bit value from an I/O port.
///
/// # Safety
/// As [`inb`].
#[inline]
pub unsafe fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: per the function contract.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// As [`outb`].
#[inline]
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: per the function contract.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

/// The four registers CPUID returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Executes CPUID for `leaf`/`subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    CpuidResult {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects (CR4.TSD is clear, we are ring 0 anyway).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One RDSEED attempt (None when the CPU had no entropy ready; callers retry).
///
/// # Safety
/// The CPU must support RDSEED ([`Features::rdseed`]), or this faults with #UD.
#[inline]
pub unsafe fn rdseed64() -> Option<u64> {
    let v: u64;
    let ok: u8;
    // SAFETY: per the function contract.
    unsafe {
        asm!("rdseed {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack))
    };
    (ok != 0).then_some(v)
}

/// One RDRAND attempt (None on the rare transient failure; callers retry).
///
/// # Safety
/// The CPU must support RDRAND ([`Features::rdrand`]).
#[inline]
pub unsafe fn rdrand64() -> Option<u64> {
    let v: u64;
    let ok: u8;
    // SAFETY: per the function contract.
    unsafe {
        asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack))
    };
    (ok != 0).then_some(v)
}

/// CPU features the image uses or reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// Vendor string from leaf 0, e.g. "GenuineIntel".
    pub vendor: [u8; 12],
    /// Hypervisor signature from leaf 0x40000000, e.g. "KVMKVMKVM\0\0\0" or "TCGTCGTCGTCG".
    pub hypervisor: Option<[u8; 12]>,
    pub sse3: bool,
    pub ssse3: bool,
    pub sse4_1: bool,
    pub sse4_2: bool,
    pub popcnt: bool,
    pub aes: bool,
    pub pclmulqdq: bool,
    pub avx: bool,
    pub avx2: bool,
    pub rdrand: bool,
    pub rdseed: bool,
    pub mtrr: bool,
    pub apic: bool,
    pub x2apic: bool,
    pub tsc_deadline: bool,
    /// Invariant TSC (leaf 0x80000007 EDX bit 8): constant rate across power states.
    pub invariant_tsc: bool,
    /// 1 GiB pages (leaf 0x80000001 EDX bit 26).
    pub pages_1g: bool,
    /// TSC frequency in kHz from the hypervisor timing leaf 0x40000010, when offered.
    pub hypervisor_tsc_khz: Option<u32>,
    /// Leaf 0x15 (TSC/crystal ratio): `(eax denominator, ebx numerator, ecx crystal Hz)`, when the CPU has
    /// the leaf and the ratio is not zero.
    pub tsc_crystal: Option<(u32, u32, u32)>,
    /// Leaf 0x16 EAX: the processor base frequency in MHz, when offered.
    pub base_mhz: Option<u32>,
    /// Leaf 0x40000001 EAX when the hypervisor is KVM ("KVMKVMKVM"): its paravirtual features
    /// (bit 3: kvmclock at the new MSRs, bit 0: at the old ones).
    pub kvm_features: Option<u32>,
    /// The highest basic CPUID leaf (leaf 0 EAX), for the log.
    pub max_leaf: u32,
}

fn bit(reg: u32, n: u32) -> bool {
    reg & (1 << n) != 0
}

fn regs_to_name(a: u32, b: u32, c: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..4].copy_from_slice(&a.to_le_bytes());
    out[4..8].copy_from_slice(&b.to_le_bytes());
    out[8..].copy_from_slice(&c.to_le_bytes());
    out
}

impl Features {
    /// Detects the running CPU's features.
    pub fn detect() -> Features {
        Features::from_leaves(cpuid)
    }

    /// Decodes features from a CPUID function (the real instruction, or a table in tests).
    pub fn from_leaves(cpuid: impl Fn(u32, u32) -> CpuidResult) -> Features {
        let l0 = cpuid(0, 0);
        let l1 = if l0.eax >= 1 {
            cpuid(1, 0)
        } else {
            CpuidResult::default()
        };
        let l7 = if l0.eax >= 7 {
            cpuid(7, 0)
        } else {
            CpuidResult::default()
        };
        let ext_max = cpuid(0x8000_0000, 0).eax;
        let e1 = if ext_max >= 0x8000_0001 {
            cpuid(0x8000_0001, 0)
        } else {
            CpuidResult::default()
        };
        let e7 = if ext_max >= 0x8000_0007 {
            cpuid(0x8000_0007, 0)
        } else {
            CpuidResult::default()
        };
        let tsc_crystal = (l0.eax >= 0x15)
            .then(|| cpuid(0x15, 0))
            .filter(|r| r.eax != 0 && r.ebx != 0)
            .map(|r| (r.eax, r.ebx, r.ecx));
        let base_mhz = (l0.eax >= 0x16)
            .then(|| cpuid(0x16, 0).eax & 0xffff)
            .filter(|&mhz| mhz != 0);
        let in_vm = bit(l1.ecx, 31);
        let (hypervisor, hypervisor_tsc_khz, kvm_features) = if in_vm {
            let h = cpuid(0x4000_0000, 0);
            let khz = if h.eax >= 0x4000_0010 {
                Some(cpuid(0x4000_0010, 0).eax).filter(|&k| k != 0)
            } else {
                None
            };
            let name = regs_to_name(h.ebx, h.ecx, h.edx);
            // Old KVM hosts report 0 as the highest hypervisor leaf; 0x40000001 is there all the same.
            let kvm = (&name == b"KVMKVMKVM\0\0\0").then(|| cpuid(0x4000_0001, 0).eax);
            (Some(name), khz, kvm)
        } else {
            (None, None, None)
        };
        Features {
            vendor: regs_to_name(l0.ebx, l0.edx, l0.ecx),
            hypervisor,
            sse3: bit(l1.ecx, 0),
            pclmulqdq: bit(l1.ecx, 1),
            ssse3: bit(l1.ecx, 9),
            sse4_1: bit(l1.ecx, 19),
            sse4_2: bit(l1.ecx, 20),
            x2apic: bit(l1.ecx, 21),
            popcnt: bit(l1.ecx, 23),
            tsc_deadline: bit(l1.ecx, 24),
            aes: bit(l1.ecx, 25),
            avx: bit(l1.ecx, 28),
            rdrand: bit(l1.ecx, 30),
            mtrr: bit(l1.edx, 12),
            apic: bit(l1.edx, 9),
            avx2: bit(l7.ebx, 5),
            rdseed: bit(l7.ebx, 18),
            pages_1g: bit(e1.edx, 26),
            invariant_tsc: bit(e7.edx, 8),
            hypervisor_tsc_khz,
            tsc_crystal,
            base_mhz,
            kvm_features,
            max_leaf: l0.eax,
        }
    }

    /// Whether KVM offers kvmclock at its new MSRs (`KVM_FEATURE_CLOCKSOURCE2`).
    pub fn kvmclock(&self) -> bool {
        self.kvm_features.is_some_and(|f| bit(f, 3))
    }

    /// Features the image was compiled to assume (x86_64-target.json) and which are absent: the kernel must
    /// not run past this check when the list is not empty.
    pub fn missing_required(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("sse3", self.sse3),
            ("ssse3", self.ssse3),
            ("sse4.1", self.sse4_1),
            ("sse4.2", self.sse4_2),
            ("popcnt", self.popcnt),
            ("aes", self.aes),
            ("pclmulqdq", self.pclmulqdq),
            ("apic", self.apic),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
    }
}

fn name_str(name: &[u8; 12]) -> &str {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    core::str::from_utf8(name.get(..end).unwrap_or(&[])).unwrap_or("?")
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", name_str(&self.vendor))?;
        if let Some(h) = &self.hypervisor {
            write!(f, " on {}", name_str(h))?;
        }
        write!(f, ":")?;
        for (name, present) in [
            ("sse4.2", self.sse4_2),
            ("aes-ni", self.aes),
            ("pclmulqdq", self.pclmulqdq),
            ("avx", self.avx),
            ("avx2", self.avx2),
            ("rdrand", self.rdrand),
            ("rdseed", self.rdseed),
            ("invariant-tsc", self.invariant_tsc),
            ("x2apic", self.x2apic),
            ("1g-pages", self.pages_1g),
        ] {
            if present {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn table(leaf: u32, _sub: u32) -> CpuidResult {
        match leaf {
            0 => CpuidResult {
                eax: 7,
                ebx: 0x756e_6547,
                edx: 0x4965_6e69,
                ecx: 0x6c65_746e,
            },
            // ecx: sse3, pclmulqdq, ssse3, sse4.1, sse4.2, popcnt, aes, rdrand, hypervisor
            1 => CpuidResult {
                ecx: 1
                    | 1 << 1
                    | 1 << 9
                    | 1 << 19
                    | 1 << 20
                    | 1 << 23
                    | 1 << 25
                    | 1 << 30
                    | 1 << 31,
                edx: 1 << 9 | 1 << 12,
                ..Default::default()
            },
            7 => CpuidResult {
                ebx: 1 << 18,
                ..Default::default()
            },
            0x4000_0000 => CpuidResult {
                eax: 0x4000_0010,
                ebx: 0x4b4d_564b,
                ecx: 0x564b_4d56,
                edx: 0x4d,
            },
            0x4000_0010 => CpuidResult {
                eax: 2_100_000,
                ..Default::default()
            },
            0x8000_0000 => CpuidResult {
                eax: 0x8000_0008,
                ..Default::default()
            },
            0x8000_0001 => CpuidResult {
                edx: 1 << 26,
                ..Default::default()
            },
            0x8000_0007 => CpuidResult {
                edx: 1 << 8,
                ..Default::default()
            },
            _ => CpuidResult::default(),
        }
    }

    #[test]
    fn decodes_leaves() {
        let f = Features::from_leaves(table);
        assert_eq!(&f.vendor, b"GenuineIntel");
        assert_eq!(f.hypervisor.as_ref().map(name_str), Some("KVMKVMKVM"));
        assert!(
            f.aes
                && f.pclmulqdq
                && f.sse4_2
                && f.rdrand
                && f.rdseed
                && f.pages_1g
                && f.invariant_tsc
        );
        assert!(!f.avx && !f.x2apic);
        assert_eq!(f.hypervisor_tsc_khz, Some(2_100_000));
        assert_eq!(f.missing_required().count(), 0);
    }

    #[test]
    fn reports_missing_aes() {
        let f = Features::from_leaves(|leaf, sub| {
            let mut r = table(leaf, sub);
            if leaf == 1 {
                r.ecx &= !(1 << 25);
            }
            r
        });
        assert_eq!(f.missing_required().collect::<Vec<_>>(), ["aes"]);
    }

    #[test]
    fn no_hypervisor_leaf_without_bit() {
        let f = Features::from_leaves(|leaf, sub| {
            let mut r = table(leaf, sub);
            if leaf == 1 {
                r.ecx &= !(1 << 31);
            }
            r
        });
        assert_eq!(f.hypervisor, None);
        assert_eq!(f.hypervisor_tsc_khz, None);
    }
}
