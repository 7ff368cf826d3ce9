//! The enumeration walk: every function on bus 0 and on the buses behind PCI-to-PCI bridges the firmware
//! numbered.
//!
//! Bus numbers are not assigned here: QEMU's firmware (SeaBIOS, qboot) numbers bridges, and the oxvpn
//! devices sit on bus 0 of `pc`/`q35` anyway. A bridge left unnumbered (secondary bus 0) is skipped.

use alloc::vec::Vec;

use super::{ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType, PciRoot};

/// Offset of the dword holding the bridge's primary/secondary/subordinate bus numbers (type 1 header).
const BRIDGE_BUS_NUMBERS: u8 = 0x18;

/// One present PCI function and its identification registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Where the function is.
    pub address: DeviceFunction,
    /// Its vendor/device IDs, class and header type.
    pub info: DeviceFunctionInfo,
}

/// Lists every present function, bus 0 first, then the buses behind bridges in discovery order.
pub fn enumerate<C: ConfigurationAccess>(root: &PciRoot<C>, config: &C) -> Vec<PciFunction> {
    let mut found = Vec::new();
    let mut buses: Vec<u8> = Vec::from([0]);
    let mut next = 0;
    while let Some(&bus) = buses.get(next) {
        next += 1;
        for (address, info) in root.enumerate_bus(bus) {
            if info.header_type == HeaderType::PciPciBridge {
                let secondary = (config.read_word(address, BRIDGE_BUS_NUMBERS) >> 8) as u8;
                // A bus already queued (or 0, "not numbered") would loop forever on a malformed topology.
                if secondary != 0 && !buses.contains(&secondary) {
                    buses.push(secondary);
                }
            }
            found.push(PciFunction { address, info });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeConfigSpace;
    use super::*;

    #[test]
    fn walks_bus_zero_and_numbered_bridges() {
        let fake = FakeConfigSpace::new();
        fake.add_function((0, 0, 0), 0x8086, 0x1237, 0x0600_0000, 0); // host bridge
        fake.add_function((0, 3, 0), 0x1af4, 0x1041, 0x0200_0000, 0); // virtio-net (modern)
        fake.add_function((0, 4, 0), 0x1b36, 0x0001, 0x0604_0000, 1); // PCI-PCI bridge
        fake.set_register((0, 4, 0), 0x18, 0x0002_0200); // secondary bus 2
        fake.add_function((0, 5, 0), 0x1b36, 0x0001, 0x0604_0000, 1); // unnumbered bridge: skipped
        fake.add_function((2, 1, 0), 0x1af4, 0x1042, 0x0100_0000, 0); // virtio-blk behind the bridge
        let root = PciRoot::new(fake.clone());
        let found = enumerate(&root, &fake);
        let ids: Vec<(u8, u8, u16)> = found
            .iter()
            .map(|f| (f.address.bus, f.address.device, f.info.device_id))
            .collect();
        assert_eq!(
            ids,
            [
                (0, 0, 0x1237),
                (0, 3, 0x1041),
                (0, 4, 0x0001),
                (0, 5, 0x0001),
                (2, 1, 0x1042)
            ]
        );
    }

    #[test]
    fn bridge_loop_terminates() {
        let fake = FakeConfigSpace::new();
        fake.add_function((0, 1, 0), 0x1b36, 0x0001, 0x0604_0000, 1);
        fake.set_register((0, 1, 0), 0x18, 0x0000_0100);
        fake.add_function((1, 0, 0), 0x1b36, 0x0001, 0x0604_0000, 1);
        fake.set_register((1, 0, 0), 0x18, 0x0000_0100); // points back at bus 1
        let root = PciRoot::new(fake.clone());
        assert_eq!(enumerate(&root, &fake).len(), 2);
    }
}
