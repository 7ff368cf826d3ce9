//! The virtio PCI transport (virtio 1.2 §4.1) on functions found by `crate::pci`.

use alloc::vec::Vec;
use core::fmt;

use virtio_drivers::transport::pci::{virtio_device_type, PciTransport, VirtioPciError};

use super::{DeviceType, IdentityHal};
use crate::pci::{
    BarInfo, ConfigurationAccess, DeviceFunction, MsixCapability, MsixError, PciFunction, PciRoot,
};

/// Vendor-specific capability ID, which virtio uses for its structures (§4.1.4).
const CAP_ID_VENDOR: u8 = 0x09;
/// `cfg_type` of the common configuration structure (§4.1.4).
const CFG_TYPE_COMMON: u8 = 1;
/// Offsets in `virtio_pci_common_cfg` (§4.1.4.3).
const COMMON_QUEUE_SELECT: usize = 0x16;
const COMMON_QUEUE_MSIX_VECTOR: usize = 0x1a;
/// Bound on the capability walk (a cyclic list must not hang the boot).
const MAX_CAPABILITIES: usize = 48;

/// Offset of the dword holding Interrupt Line (bits 7:0) and Interrupt Pin (bits 15:8).
const INTERRUPT_LINE_PIN: u8 = 0x3c;

/// A virtio function on the PCI bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioPciFunction {
    /// Where it is.
    pub address: DeviceFunction,
    /// What kind of virtio device it is.
    pub device_type: DeviceType,
}

/// The virtio functions among `functions`, in bus order (which is the order of QEMU's `-device` list
/// when no `addr=` is given).
pub fn virtio_functions(functions: &[PciFunction]) -> Vec<VirtioPciFunction> {
    functions
        .iter()
        .filter_map(|f| {
            virtio_device_type(&f.info).map(|device_type| VirtioPciFunction {
                address: f.address,
                device_type,
            })
        })
        .collect()
}

/// The legacy INTx line the firmware routed `function` to (the ISA IRQ / I/O APIC input), if any.
pub fn interrupt_line<C: ConfigurationAccess>(config: &C, function: DeviceFunction) -> Option<u8> {
    let word = config.read_word(function, INTERRUPT_LINE_PIN);
    let (line, pin) = (word as u8, (word >> 8) as u8);
    // Pin 0: no INTx; line 0xff: "unknown / not connected" (PCI 3.0 §6.2.4).
    (pin != 0 && line != 0xff).then_some(line)
}

/// Opens the modern virtio transport of `function`, whose memory BARs must already be assigned.
pub fn open<C: ConfigurationAccess>(
    root: &mut PciRoot<C>,
    function: DeviceFunction,
) -> Result<PciTransport, VirtioPciError> {
    PciTransport::new::<IdentityHal, C>(root, function)
}

/// Why a virtio PCI function's queue interrupts could not be routed through MSI-X.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsixRouteError {
    /// Setting up the MSI-X table failed.
    Msix(MsixError),
    /// No usable common configuration structure.
    NoCommonConfig,
    /// The device answered NO_VECTOR: it could not allocate the vector (§4.1.5.1.2).
    Refused,
}

impl fmt::Display for MsixRouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Msix(e) => write!(f, "{e}"),
            Self::NoCommonConfig => f.write_str("no virtio common configuration"),
            Self::Refused => f.write_str("device refused the MSI-X vector"),
        }
    }
}

/// The physical address of `function`'s `virtio_pci_common_cfg`.
fn common_cfg_address<C: ConfigurationAccess>(
    root: &mut PciRoot<C>,
    config: &C,
    function: DeviceFunction,
) -> Option<u64> {
    let cap = root
        .capabilities(function)
        .take(MAX_CAPABILITIES)
        .find(|cap| {
            cap.id == CAP_ID_VENDOR && (cap.private_header >> 8) as u8 == CFG_TYPE_COMMON
        })?;
    let bar = config.read_word(function, cap.offset.wrapping_add(4)) as u8;
    let offset = config.read_word(function, cap.offset.wrapping_add(8));
    match root.bar_info(function, bar).ok()?? {
        BarInfo::Memory { address, size, .. }
            if address != 0 && u64::from(offset) + 0x38 <= size =>
        {
            Some(address + u64::from(offset))
        }
        _ => None,
    }
}

/// Delivers the used-buffer notifications of queues `0..queues` to `vector` on LAPIC `apic_id` through
/// MSI-X table entry 0 (§4.1.5.1.2). Call after the driver set the queues up: a device reset forgets
/// queue vectors. Configuration-change interrupts stay off.
///
/// # Safety
///
/// `function` must be a virtio PCI function whose memory BARs are assigned and identity-mapped, with its
/// queues set up by a driver that does not use MSI-X itself.
pub unsafe fn route_queue_interrupts<C: ConfigurationAccess>(
    root: &mut PciRoot<C>,
    config: &mut C,
    function: DeviceFunction,
    queues: u16,
    vector: u8,
    apic_id: u8,
) -> Result<(), MsixRouteError> {
    let msix = MsixCapability::find(root, config, function).map_err(MsixRouteError::Msix)?;
    // SAFETY: the caller's guarantees are `route`'s.
    unsafe { msix.route(root, config, function, 0, vector, apic_id) }
        .map_err(MsixRouteError::Msix)?;
    let common =
        common_cfg_address(root, config, function).ok_or(MsixRouteError::NoCommonConfig)?;
    let common = common as usize as *mut u8;
    for queue in 0..queues {
        // SAFETY: `common` is the device's common configuration structure (checked against its BAR);
        // queue_select and queue_msix_vector are 16-bit registers at their §4.1.4.3 offsets.
        let vector_set = unsafe {
            common
                .add(COMMON_QUEUE_SELECT)
                .cast::<u16>()
                .write_volatile(queue);
            let msix_vector = common.add(COMMON_QUEUE_MSIX_VECTOR).cast::<u16>();
            msix_vector.write_volatile(0);
            msix_vector.read_volatile()
        };
        if vector_set != 0 {
            return Err(MsixRouteError::Refused);
        }
    }
    Ok(())
}
