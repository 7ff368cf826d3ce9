//! BAR assignment for firmware that leaves memory BARs empty (qboot, `-M microvm` with PCIe) or places
//! them where the kernel's identity map does not reach.
//!
//! A memory BAR is naturally aligned to its size (PCI 3.0 §6.2.5.1), so the allocator is a bump pointer
//! that aligns up. I/O BARs are left alone: modern virtio devices need only memory BARs.

use core::fmt;

use super::{BarInfo, Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::bus::MemoryBarType;

/// Smallest block handed out: keeps every BAR on its own page.
const MIN_BAR_ALIGN: u64 = 0x1000;

/// A window of physical address space, reserved for PCI memory BARs, handed out front to back.
#[derive(Debug, Clone)]
pub struct BarWindow {
    next: u64,
    end: u64,
}

impl BarWindow {
    /// The window `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { next: start, end }
    }

    /// Takes a naturally aligned block of `size` bytes (rounded up to a page), if one is left.
    pub fn allocate(&mut self, size: u64) -> Option<u64> {
        let size = size.max(MIN_BAR_ALIGN).checked_next_power_of_two()?;
        let start = self.next.checked_add(size - 1)? & !(size - 1);
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(start)
    }
}

/// Why [`assign_bars`] could not give a function working memory BARs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarAssignError {
    /// The BAR window has no room left for a BAR of this size.
    WindowFull {
        /// The BAR that did not fit.
        bar: u8,
        /// Its size in bytes.
        size: u64,
    },
    /// A 32-bit BAR needs an address the window can only offer above 4 GiB.
    Above4GiB {
        /// The BAR concerned.
        bar: u8,
    },
    /// The BAR registers are malformed (a 64-bit BAR in slot 5, or a reserved type).
    InvalidBar,
}

impl fmt::Display for BarAssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WindowFull { bar, size } => {
                write!(f, "no room in the PCI window for BAR{bar} ({size} bytes)")
            }
            Self::Above4GiB { bar } => write!(f, "32-bit BAR{bar} cannot be placed below 4 GiB"),
            Self::InvalidBar => f.write_str("malformed BAR registers"),
        }
    }
}

/// Gives every memory BAR of `function` an address, then enables memory decoding and bus mastering.
///
/// A BAR keeps the address the firmware gave it when that address is non-zero and its whole range lies
/// below `mapped_limit` (the end of the kernel's identity map); otherwise it is moved into `window`.
/// Returns how many BARs were (re)assigned.
pub fn assign_bars<C: ConfigurationAccess>(
    root: &mut PciRoot<C>,
    function: DeviceFunction,
    window: &mut BarWindow,
    mapped_limit: u64,
) -> Result<u8, BarAssignError> {
    let (_, command) = root.get_status_command(function);
    // No decoding while BARs move, so a half-written 64-bit BAR never claims a stray range.
    root.set_command(
        function,
        command & !(Command::MEMORY_SPACE | Command::IO_SPACE),
    );
    let bars = root.bars(function).map_err(|_| BarAssignError::InvalidBar);
    let bars = match bars {
        Ok(bars) => bars,
        Err(e) => {
            root.set_command(function, command);
            return Err(e);
        }
    };
    let mut assigned = 0;
    let mut result = Ok(());
    for (index, bar) in (0u8..).zip(bars.iter()) {
        let Some(BarInfo::Memory {
            address_type,
            address,
            size,
            ..
        }) = bar
        else {
            continue;
        };
        let usable = *address != 0
            && address
                .checked_add(*size)
                .is_some_and(|end| end <= mapped_limit);
        if usable || *size == 0 {
            continue;
        }
        let Some(new_address) = window.allocate(*size) else {
            result = Err(BarAssignError::WindowFull {
                bar: index,
                size: *size,
            });
            break;
        };
        match address_type {
            MemoryBarType::Width64 => root.set_bar_64(function, index, new_address),
            _ => match u32::try_from(new_address) {
                Ok(low) => root.set_bar_32(function, index, low),
                Err(_) => {
                    result = Err(BarAssignError::Above4GiB { bar: index });
                    break;
                }
            },
        }
        assigned += 1;
    }
    match result {
        Ok(()) => {
            root.set_command(
                function,
                command | Command::MEMORY_SPACE | Command::BUS_MASTER,
            );
            Ok(assigned)
        }
        Err(e) => {
            root.set_command(function, command);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeBar, FakeConfigSpace};
    use super::*;

    fn virtio_net(fake: &FakeConfigSpace, bar1: u64, bar4: u64) -> DeviceFunction {
        fake.add_function((0, 3, 0), 0x1af4, 0x1041, 0x0200_0000, 0);
        fake.add_bar((0, 3, 0), 0, FakeBar::Io, 0x20, 0xc040);
        fake.add_bar((0, 3, 0), 1, FakeBar::Mem32, 0x1000, bar1);
        fake.add_bar((0, 3, 0), 4, FakeBar::Mem64, 0x4000, bar4);
        DeviceFunction {
            bus: 0,
            device: 3,
            function: 0,
        }
    }

    #[test]
    fn window_aligns_naturally() {
        let mut w = BarWindow::new(0xc000_0800, 0xc010_0000);
        assert_eq!(w.allocate(0x100), Some(0xc000_1000));
        assert_eq!(w.allocate(0x4000), Some(0xc000_4000));
        assert_eq!(w.allocate(0x1000), Some(0xc000_8000));
        assert_eq!(w.allocate(0x10_0000), None);
        assert_eq!(w.allocate(u64::MAX), None);
    }

    #[test]
    fn assigns_empty_bars_and_enables_decoding() {
        let fake = FakeConfigSpace::new();
        let f = virtio_net(&fake, 0, 0);
        let mut root = PciRoot::new(fake.clone());
        let mut window = BarWindow::new(0xc000_0000, 0xd000_0000);
        assert_eq!(assign_bars(&mut root, f, &mut window, 1 << 32), Ok(2));
        let bars = root.bars(f).unwrap();
        assert_eq!(
            bars[1].as_ref().unwrap().memory_address_size(),
            Some((0xc000_0000, 0x1000))
        );
        assert_eq!(
            bars[4].as_ref().unwrap().memory_address_size(),
            Some((0xc000_4000, 0x4000))
        );
        // The I/O BAR keeps its firmware address.
        assert!(matches!(
            bars[0],
            Some(BarInfo::IO {
                address: 0xc040,
                size: 0x20
            })
        ));
        let (_, command) = root.get_status_command(f);
        assert!(command.contains(Command::MEMORY_SPACE | Command::BUS_MASTER));
    }

    #[test]
    fn keeps_firmware_bars_inside_the_map_and_moves_the_rest() {
        let fake = FakeConfigSpace::new();
        let f = virtio_net(&fake, 0xfebd_1000, 0x80_0000_0000);
        let mut root = PciRoot::new(fake.clone());
        let mut window = BarWindow::new(0xc000_0000, 0xd000_0000);
        assert_eq!(assign_bars(&mut root, f, &mut window, 1 << 32), Ok(1));
        let bars = root.bars(f).unwrap();
        assert_eq!(
            bars[1].as_ref().unwrap().memory_address_size(),
            Some((0xfebd_1000, 0x1000))
        );
        assert_eq!(
            bars[4].as_ref().unwrap().memory_address_size(),
            Some((0xc000_0000, 0x4000))
        );
    }

    #[test]
    fn full_window_is_an_error_and_leaves_decoding_off() {
        let fake = FakeConfigSpace::new();
        let f = virtio_net(&fake, 0, 0);
        let mut root = PciRoot::new(fake.clone());
        let mut window = BarWindow::new(0xc000_0000, 0xc000_2000);
        assert_eq!(
            assign_bars(&mut root, f, &mut window, 1 << 32),
            Err(BarAssignError::WindowFull {
                bar: 4,
                size: 0x4000
            })
        );
        let (_, command) = root.get_status_command(f);
        assert!(!command.contains(Command::MEMORY_SPACE));
    }
}
