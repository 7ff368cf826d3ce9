//! Hardware drivers for the oxvpn image.
#![no_std]

extern crate alloc;

pub mod acpi;
pub mod clock;
pub mod cpu;
pub mod ioapic;
pub mod kvmclock;
pub mod netdev;
pub mod pci;
pub mod pvclock;
pub mod rng;
pub mod serial;
pub mod virtio;
pub mod xen;
