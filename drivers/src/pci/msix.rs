//! MSI-X (PCI 3.0 §6.8.2): one table entry pointed at a LAPIC vector, so a device interrupt is an edge
//! message straight to the CPU, whatever the chipset's INTx routing (q35 with qboot leaves it unrouted).
//!
//! Layer: PCI capability handling. The capability walk and the message encoding are plain functions over
//! [`ConfigurationAccess`]; only [`MsixCapability::route`] writes the table in the device's BAR.

use core::fmt;

use super::{BarInfo, Command, ConfigurationAccess, DeviceFunction, PciRoot};

/// Capability ID of MSI-X.
const CAP_ID_MSIX: u8 = 0x11;
/// Message Control: MSI-X Enable.
const CONTROL_ENABLE: u16 = 1 << 15;
/// Message Control: Function Mask.
const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
/// Bytes per MSI-X table entry: address low, address high, data, vector control.
const TABLE_ENTRY_LEN: u64 = 16;
/// Bound on the capability walk, so a cyclic list in a broken device cannot hang the boot.
const MAX_CAPABILITIES: usize = 48;

/// Why MSI-X could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsixError {
    /// The function has no MSI-X capability.
    NoCapability,
    /// The requested table entry is beyond the table.
    NoSuchEntry,
    /// The table's BAR is not an assigned memory BAR.
    TableBar,
}

impl fmt::Display for MsixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoCapability => "no MSI-X capability",
            Self::NoSuchEntry => "MSI-X table too small",
            Self::TableBar => "MSI-X table BAR not assigned",
        })
    }
}

/// Where a function's MSI-X capability and table are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixCapability {
    /// Offset of the capability in configuration space.
    pub offset: u8,
    /// Number of table entries.
    pub table_len: u16,
    /// BAR holding the table.
    pub table_bar: u8,
    /// Offset of the table in that BAR.
    pub table_offset: u32,
}

/// The message address that delivers to the LAPIC `apic_id` in physical destination mode (SDM Vol. 3A
/// §11.11.1).
pub fn message_address(apic_id: u8) -> u32 {
    0xfee0_0000 | u32::from(apic_id) << 12
}

/// The message data for `vector`: fixed delivery, edge-triggered (SDM Vol. 3A §11.11.2).
pub fn message_data(vector: u8) -> u32 {
    u32::from(vector)
}

impl MsixCapability {
    /// Finds the MSI-X capability of `function`.
    pub fn find<C: ConfigurationAccess>(
        root: &PciRoot<C>,
        config: &C,
        function: DeviceFunction,
    ) -> Result<Self, MsixError> {
        let cap = root
            .capabilities(function)
            .take(MAX_CAPABILITIES)
            .find(|cap| cap.id == CAP_ID_MSIX)
            .ok_or(MsixError::NoCapability)?;
        let table = config.read_word(function, cap.offset.wrapping_add(4));
        Ok(Self {
            offset: cap.offset,
            // Table Size is N-1 in bits 10:0.
            table_len: (cap.private_header & 0x7ff) + 1,
            table_bar: (table & 0x7) as u8,
            table_offset: table & !0x7,
        })
    }

    /// Points table entry `entry` at `vector` on LAPIC `apic_id`, unmasks it and enables MSI-X (which
    /// turns the function's INTx off).
    ///
    /// # Safety
    ///
    /// The function's memory BARs must be assigned, identity-mapped and decoded, and nothing else may be
    /// using the MSI-X table.
    pub unsafe fn route<C: ConfigurationAccess>(
        &self,
        root: &mut PciRoot<C>,
        config: &mut C,
        function: DeviceFunction,
        entry: u16,
        vector: u8,
        apic_id: u8,
    ) -> Result<(), MsixError> {
        if entry >= self.table_len {
            return Err(MsixError::NoSuchEntry);
        }
        let Ok(Some(BarInfo::Memory { address, size, .. })) =
            root.bar_info(function, self.table_bar)
        else {
            return Err(MsixError::TableBar);
        };
        let entry_offset = u64::from(self.table_offset) + u64::from(entry) * TABLE_ENTRY_LEN;
        if address == 0 || entry_offset + TABLE_ENTRY_LEN > size {
            return Err(MsixError::TableBar);
        }
        let (_, command) = root.get_status_command(function);
        root.set_command(
            function,
            command | Command::MEMORY_SPACE | Command::BUS_MASTER,
        );
        let table_entry = (address + entry_offset) as usize as *mut u32;
        // SAFETY: the caller guarantees the BAR is mapped and ours; the entry lies inside it (checked).
        unsafe {
            table_entry.write_volatile(message_address(apic_id));
            table_entry.add(1).write_volatile(0);
            table_entry.add(2).write_volatile(message_data(vector));
            table_entry.add(3).write_volatile(0); // vector control: unmasked
        }
        let header = config.read_word(function, self.offset);
        let control = ((header >> 16) as u16 | CONTROL_ENABLE) & !CONTROL_FUNCTION_MASK;
        config.write_word(
            function,
            self.offset,
            (header & 0xffff) | u32::from(control) << 16,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeConfigSpace;
    use super::*;

    #[test]
    fn message_encoding() {
        assert_eq!(message_address(0), 0xfee0_0000);
        assert_eq!(message_address(3), 0xfee0_3000);
        assert_eq!(message_data(0x31), 0x31);
    }

    #[test]
    fn finds_the_capability_behind_a_vendor_one() {
        let fake = FakeConfigSpace::new();
        fake.add_function((0, 3, 0), 0x1af4, 0x1041, 0x0200_0000, 0);
        fake.set_register((0, 3, 0), 0x04, 1 << 20); // status: capabilities list
        fake.set_register((0, 3, 0), 0x34, 0x84);
        fake.set_register((0, 3, 0), 0x84, 0x0010_9809); // vendor cap, next 0x98
        fake.set_register((0, 3, 0), 0x98, 0x0002_0011); // MSI-X, 3 entries, last
        fake.set_register((0, 3, 0), 0x9c, 0x0000_0001); // table in BAR1 at 0
        let root = PciRoot::new(fake.clone());
        let f = DeviceFunction {
            bus: 0,
            device: 3,
            function: 0,
        };
        let cap = MsixCapability::find(&root, &fake, f).unwrap();
        assert_eq!(
            cap,
            MsixCapability {
                offset: 0x98,
                table_len: 3,
                table_bar: 1,
                table_offset: 0
            }
        );
    }

    #[test]
    fn missing_capability_is_an_error() {
        let fake = FakeConfigSpace::new();
        fake.add_function((0, 3, 0), 0x1af4, 0x1041, 0x0200_0000, 0);
        let root = PciRoot::new(fake.clone());
        let f = DeviceFunction {
            bus: 0,
            device: 3,
            function: 0,
        };
        assert_eq!(
            MsixCapability::find(&root, &fake, f),
            Err(MsixError::NoCapability)
        );
    }
}
