//! Virtio devices: the DMA HAL, the two transports (PCI, MMIO), the config-disk reader over virtio-blk
//! and virtio-net as a `smoltcp::phy::Device`.
//!
//! Layer: hardware access on top of the `virtio-drivers` crate (virtio 1.2). The kernel decides which
//! device plays which role; nothing here reads the command line except the virtio-mmio device list.

pub mod blk;
pub mod hal;
pub mod mmio;
pub mod net;
pub mod net_raw;
pub mod pci;

pub use hal::IdentityHal;
pub use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};
