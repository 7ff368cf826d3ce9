//! PCI configuration mechanism #1: the CONFIG_ADDRESS (0xCF8) / CONFIG_DATA (0xCFC) I/O-port pair.

use super::{ConfigurationAccess, DeviceFunction};

const CONFIG_ADDRESS: u16 = 0xCF8;
const CONFIG_DATA: u16 = 0xCFC;

/// Configuration-space access through I/O ports 0xCF8/0xCFC.
///
/// The port pair is one global register pair, so at most one `PortIoCam` may be used at a time (the
/// kernel is single-threaded and does not touch PCI from interrupt handlers).
#[derive(Debug)]
pub struct PortIoCam {
    _private: (),
}

impl PortIoCam {
    /// Takes the configuration-port pair.
    ///
    /// # Safety
    ///
    /// The machine must decode configuration mechanism #1 (every QEMU `pc`/`q35` machine does), and no
    /// other code may use ports 0xCF8/0xCFC while this value (or a clone made by `unsafe_clone`) is used.
    pub unsafe fn new() -> Self {
        Self { _private: () }
    }
}

/// The CONFIG_ADDRESS value selecting the dword at `register_offset` of `function` (PCI 3.0 §3.2.2.3.2:
/// enable bit 31, bus 23:16, device 15:11, function 10:8, register 7:2).
pub(crate) fn config_address(function: DeviceFunction, register_offset: u8) -> u32 {
    0x8000_0000
        | u32::from(function.bus) << 16
        | (u32::from(function.device) & 0x1f) << 11
        | (u32::from(function.function) & 0x7) << 8
        | u32::from(register_offset & 0xfc)
}

impl ConfigurationAccess for PortIoCam {
    fn read_word(&self, device_function: DeviceFunction, register_offset: u8) -> u32 {
        let address = config_address(device_function, register_offset);
        // SAFETY: `new`'s contract gives us exclusive use of the configuration ports, and a configuration
        // cycle has no side effect on memory.
        unsafe {
            outl(CONFIG_ADDRESS, address);
            inl(CONFIG_DATA)
        }
    }

    fn write_word(&mut self, device_function: DeviceFunction, register_offset: u8, data: u32) {
        let address = config_address(device_function, register_offset);
        // SAFETY: as in `read_word`; what the write does to the device is the caller's business.
        unsafe {
            outl(CONFIG_ADDRESS, address);
            outl(CONFIG_DATA, data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        Self { _private: () }
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller owns `port`.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: the caller owns `port`.
    unsafe {
        core::arch::asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_layout() {
        let f = DeviceFunction {
            bus: 0,
            device: 3,
            function: 0,
        };
        assert_eq!(config_address(f, 0x10), 0x8000_1810);
        let f = DeviceFunction {
            bus: 0xab,
            device: 31,
            function: 7,
        };
        assert_eq!(config_address(f, 0xff), 0x80ab_fffc);
    }
}
