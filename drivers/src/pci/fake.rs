//! A fake PCI configuration space for host tests: present functions, BAR sizing semantics (writable
//! address bits only, read-only type bits), everything else plain storage.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use core::cell::RefCell;

use super::{ConfigurationAccess, DeviceFunction};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FakeBar {
    Io,
    Mem32,
    Mem64,
}

struct Function {
    regs: [u32; 64],
    /// Writable-bit mask of each BAR register (0 = unimplemented BAR).
    bar_masks: [u32; 6],
}

/// Bus, device, function.
pub type Bdf = (u8, u8, u8);

type Functions = Rc<RefCell<BTreeMap<Bdf, Function>>>;

/// Shared so that clones (as `PciRoot` and `unsafe_clone` make) see one space.
#[derive(Clone, Default)]
pub struct FakeConfigSpace {
    functions: Functions,
}

impl Default for Function {
    fn default() -> Self {
        Self {
            regs: [0; 64],
            bar_masks: [0; 6],
        }
    }
}

impl FakeConfigSpace {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_function(&self, at: Bdf, vendor: u16, device: u16, class: u32, header: u8) {
        let mut f = Function::default();
        f.regs[0] = u32::from(device) << 16 | u32::from(vendor);
        f.regs[2] = class;
        f.regs[3] = u32::from(header) << 16;
        self.functions.borrow_mut().insert(at, f);
    }

    pub fn set_register(&self, at: Bdf, offset: u8, value: u32) {
        if let Some(f) = self.functions.borrow_mut().get_mut(&at) {
            f.regs[usize::from(offset / 4)] = value;
        }
    }

    pub fn register(&self, at: Bdf, offset: u8) -> u32 {
        self.functions
            .borrow()
            .get(&at)
            .map_or(u32::MAX, |f| f.regs[usize::from(offset / 4)])
    }

    /// Declares BAR `index` of `size` bytes (a power of two) at `address` (0: left unassigned).
    pub fn add_bar(&self, at: Bdf, index: usize, kind: FakeBar, size: u64, address: u64) {
        let mut functions = self.functions.borrow_mut();
        let Some(f) = functions.get_mut(&at) else {
            return;
        };
        let size_mask = !(size - 1);
        match kind {
            FakeBar::Io => {
                f.bar_masks[index] = size_mask as u32 & !0x3;
                f.regs[4 + index] = address as u32 | 0x1;
            }
            FakeBar::Mem32 => {
                f.bar_masks[index] = size_mask as u32 & !0xf;
                f.regs[4 + index] = address as u32;
            }
            FakeBar::Mem64 => {
                f.bar_masks[index] = size_mask as u32 & !0xf;
                f.bar_masks[index + 1] = (size_mask >> 32) as u32;
                f.regs[4 + index] = address as u32 | 0x4 | 0x8;
                f.regs[5 + index] = (address >> 32) as u32;
            }
        }
    }
}

impl ConfigurationAccess for FakeConfigSpace {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        self.register((df.bus, df.device, df.function), offset)
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        let mut functions = self.functions.borrow_mut();
        let Some(f) = functions.get_mut(&(df.bus, df.device, df.function)) else {
            return;
        };
        let index = usize::from(offset / 4);
        match offset {
            0x04 => f.regs[1] = (f.regs[1] & 0xffff_0000) | (data & 0xffff),
            0x10..=0x27 => {
                let bar = index - 4;
                let mask = f.bar_masks[bar];
                // The high half of a 64-bit BAR has no type bits; the low dword keeps its low nibble.
                let is_high_half =
                    bar > 0 && f.regs[3 + bar] & 0x7 == 0x4 && f.bar_masks[bar - 1] != 0;
                let fixed = if is_high_half {
                    0
                } else {
                    f.regs[index] & !mask & 0xf
                };
                f.regs[index] = (data & mask) | fixed;
            }
            _ => f.regs[index] = data,
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        self.clone()
    }
}
