//! The virtio PCI transport (virtio 1.2 §4.1) on functions found by `crate::pci`.

use alloc::vec::Vec;

use virtio_drivers::transport::pci::{virtio_device_type, PciTransport, VirtioPciError};

use super::{DeviceType, IdentityHal};
use crate::pci::{ConfigurationAccess, DeviceFunction, PciFunction, PciRoot};

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
