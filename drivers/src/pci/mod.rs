//! PCI discovery: configuration-space access, the enumeration walk and BAR assignment.
//!
//! Layer: hardware access. Only [`PortIoCam`] touches hardware (the legacy 0xCF8/0xCFC configuration
//! mechanism, PCI Local Bus 3.0 §3.2.2.3.2); the walk and the BAR allocator run on any
//! [`ConfigurationAccess`], so host tests drive them with a fake configuration space. Nothing here knows
//! about virtio: `crate::virtio::pci` builds transports on top of what this module finds.
//!
//! ECAM (ACPI MCFG) is not used: every QEMU x86 machine with a PCI bus (`pc`, `q35`) also decodes the
//! I/O-port mechanism, and `-M microvm` is served by virtio-mmio instead (see `crate::virtio::mmio`).

mod bars;
mod enumerate;
#[cfg(test)]
mod fake;
mod msix;
mod port;

pub use bars::{assign_bars, BarAssignError, BarWindow};
pub use enumerate::{enumerate, PciFunction};
pub use msix::{message_address, message_data, MsixCapability, MsixError};
pub use port::PortIoCam;
pub use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType, PciRoot,
};
