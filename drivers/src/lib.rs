//! Hardware drivers for the oxvpn image.
#![no_std]

extern crate alloc;

pub mod pci;
pub mod virtio;
