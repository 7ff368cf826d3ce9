//! virtio-mmio discovery from the kernel command line (virtio 1.2 §4.2: MMIO transport).
//!
//! QEMU's `-M microvm` appends one `virtio_mmio.device=<size>@<base>:<irq>` entry per populated
//! transport to the command line of a `-kernel` boot when ACPI is off (`-M microvm,acpi=off`; with ACPI
//! the same devices are described only in the DSDT, which this kernel does not interpret). This is
//! Linux's `virtio_mmio.device=` syntax, so Firecracker-style hosts that pass it work too.

use core::fmt;
use core::ptr::NonNull;

use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};

const PARAM: &str = "virtio_mmio.device=";

/// One `virtio_mmio.device=` entry: where a transport's registers are and which interrupt it raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioDeviceSpec {
    /// Physical base address of the register block.
    pub base: u64,
    /// Size of the register block in bytes.
    pub size: u64,
    /// The GSI (I/O APIC input) the device interrupts on.
    pub irq: u32,
}

/// Why a `virtio_mmio.device=` entry was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioSpecError {
    /// The `<size>` before `@` is missing or not a number.
    Size,
    /// The `<base>` between `@` and `:` is missing or not a number.
    Base,
    /// The `<irq>` after `:` is missing or not a number.
    Irq,
    /// The register block is too small for a virtio-mmio header, or wraps the address space.
    Range,
}

impl fmt::Display for MmioSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Size => "virtio_mmio.device=: bad <size>",
            Self::Base => "virtio_mmio.device=: bad @<base>",
            Self::Irq => "virtio_mmio.device=: bad :<irq>",
            Self::Range => "virtio_mmio.device=: region too small or wrapping",
        })
    }
}

/// Every `virtio_mmio.device=` entry of `cmdline`, in order.
pub fn parse_cmdline(
    cmdline: &str,
) -> impl Iterator<Item = Result<MmioDeviceSpec, MmioSpecError>> + '_ {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix(PARAM))
        .map(parse_spec)
}

/// Parses `<size>@<base>:<irq>[:<id>]` (sizes and addresses in Linux `memparse` syntax).
pub fn parse_spec(spec: &str) -> Result<MmioDeviceSpec, MmioSpecError> {
    let (size, rest) = spec.split_once('@').ok_or(MmioSpecError::Size)?;
    let (base, rest) = rest.split_once(':').ok_or(MmioSpecError::Base)?;
    let irq = rest.split(':').next().unwrap_or(rest);
    let size = memparse(size).ok_or(MmioSpecError::Size)?;
    let base = memparse(base).ok_or(MmioSpecError::Base)?;
    let irq = parse_number(irq)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(MmioSpecError::Irq)?;
    // The header alone is 0x100 bytes (§4.2.2); anything smaller cannot be a transport.
    if size < 0x100 || base.checked_add(size).is_none() {
        return Err(MmioSpecError::Range);
    }
    Ok(MmioDeviceSpec { base, size, irq })
}

/// A number with an optional K/M/G suffix.
fn memparse(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (text.get(..text.len() - 1)?, 10),
        b'm' | b'M' => (text.get(..text.len() - 1)?, 20),
        b'g' | b'G' => (text.get(..text.len() - 1)?, 30),
        _ => (text, 0),
    };
    parse_number(digits)?.checked_mul(1 << shift)
}

/// Decimal, or hexadecimal with `0x`.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Opens the transport described by `spec`.
///
/// # Safety
///
/// `spec` must describe a virtio-mmio register block that is identity-mapped, and that no other
/// transport uses for as long as the returned transport lives.
pub unsafe fn open(spec: &MmioDeviceSpec) -> Result<MmioTransport<'static>, MmioError> {
    let size = usize::try_from(spec.size).map_err(|_| MmioError::MmioRegionTooSmall)?;
    let header = NonNull::new(spec.base as usize as *mut VirtIOHeader)
        .ok_or(MmioError::MmioRegionTooSmall)?;
    // SAFETY: the caller vouches for the region.
    unsafe { MmioTransport::new(header, size) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn qemu_microvm_cmdline() {
        // What QEMU 7.2 `-M microvm,acpi=off` appends for a disk and two NICs.
        let cmdline = "console=ttyS0 --ipv4=10.0.0.2/24 virtio_mmio.device=512@0xfeb00e00:12 \
                       virtio_mmio.device=512@0xfeb00c00:11 virtio_mmio.device=512@0xfeb00a00:10";
        let specs: Vec<_> = parse_cmdline(cmdline).collect();
        assert_eq!(
            specs,
            [
                Ok(MmioDeviceSpec {
                    base: 0xfeb0_0e00,
                    size: 512,
                    irq: 12
                }),
                Ok(MmioDeviceSpec {
                    base: 0xfeb0_0c00,
                    size: 512,
                    irq: 11
                }),
                Ok(MmioDeviceSpec {
                    base: 0xfeb0_0a00,
                    size: 512,
                    irq: 10
                }),
            ]
        );
    }

    #[test]
    fn linux_syntax_variants() {
        assert_eq!(
            parse_spec("4K@0x10000000000:10:3"),
            Ok(MmioDeviceSpec {
                base: 1 << 40,
                size: 4096,
                irq: 10
            })
        );
        assert_eq!(
            parse_spec("1M@4096:5"),
            Ok(MmioDeviceSpec {
                base: 4096,
                size: 1 << 20,
                irq: 5
            })
        );
    }

    #[test]
    fn malformed_entries_are_errors() {
        assert_eq!(parse_spec(""), Err(MmioSpecError::Size));
        assert_eq!(parse_spec("512"), Err(MmioSpecError::Size));
        assert_eq!(parse_spec("x@0x1000:1"), Err(MmioSpecError::Size));
        assert_eq!(parse_spec("512@0x1000"), Err(MmioSpecError::Base));
        assert_eq!(parse_spec("512@zz:1"), Err(MmioSpecError::Base));
        assert_eq!(parse_spec("512@0x1000:"), Err(MmioSpecError::Irq));
        assert_eq!(
            parse_spec("512@0x1000:99999999999"),
            Err(MmioSpecError::Irq)
        );
        assert_eq!(parse_spec("16@0x1000:1"), Err(MmioSpecError::Range));
        assert_eq!(
            parse_spec("512@0xffffffffffffff00:1"),
            Err(MmioSpecError::Range)
        );
        assert_eq!(parse_spec("99999999999G@0:1"), Err(MmioSpecError::Size));
        assert_eq!(parse_spec("K@0:1"), Err(MmioSpecError::Size));
    }
}
