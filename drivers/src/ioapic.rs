//! The I/O APIC (Intel 82093AA datasheet §3.2): routes a device's GSI to a LAPIC vector, so that a
//! device interrupt ends the main loop's `hlt`.
//!
//! Layer: one register block, no policy. Routes are edge-triggered and active-high on purpose: the wake
//! vectors' stubs only write EOI, so a level-triggered line would re-fire until the main loop reads the
//! device's ISR. With edge triggering the main loop acknowledges every device (which deasserts its line)
//! *before* polling it; an event after that raises a new edge and a new wake-up, so none is lost.

/// Where QEMU's (and most PCs') first I/O APIC sits.
pub const DEFAULT_BASE: u64 = 0xfec0_0000;

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION_BASE: u32 = 0x10;

/// Low dword of a redirection entry: fixed delivery, physical destination, active-high, edge, unmasked.
pub(crate) fn redirection_low(vector: u8) -> u32 {
    u32::from(vector)
}

/// High dword of a redirection entry: the destination LAPIC ID in bits 31:24.
pub(crate) fn redirection_high(apic_id: u8) -> u32 {
    u32::from(apic_id) << 24
}

/// An I/O APIC register block.
#[derive(Debug)]
pub struct IoApic {
    base: u64,
}

impl IoApic {
    /// The I/O APIC whose registers are at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be an identity-mapped, uncached I/O APIC register block that nothing else programs.
    pub unsafe fn new(base: u64) -> Self {
        Self { base }
    }

    fn read(&self, register: u32) -> u32 {
        // SAFETY: `new`'s contract; IOREGSEL/IOWIN are the only registers and are 32-bit.
        unsafe {
            core::ptr::write_volatile((self.base + IOREGSEL) as *mut u32, register);
            core::ptr::read_volatile((self.base + IOWIN) as *const u32)
        }
    }

    fn write(&mut self, register: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            core::ptr::write_volatile((self.base + IOREGSEL) as *mut u32, register);
            core::ptr::write_volatile((self.base + IOWIN) as *mut u32, value);
        }
    }

    /// The number of redirection entries (GSIs this I/O APIC serves).
    pub fn inputs(&self) -> u32 {
        ((self.read(REG_VERSION) >> 16) & 0xff) + 1
    }

    /// Delivers `gsi` to `vector` on the LAPIC `apic_id`. Returns false if this I/O APIC has no such input.
    pub fn route(&mut self, gsi: u32, vector: u8, apic_id: u8) -> bool {
        if gsi >= self.inputs() {
            return false;
        }
        let register = REG_REDIRECTION_BASE + 2 * gsi;
        // Masked while the destination changes, then unmasked with the vector.
        self.write(register, 1 << 16);
        self.write(register + 1, redirection_high(apic_id));
        self.write(register, redirection_low(vector));
        true
    }
}

/// The LAPIC ID of the CPU running this code (CPUID leaf 1, EBX bits 31:24).
#[cfg(target_arch = "x86_64")]
pub fn current_apic_id() -> u8 {
    let leaf = core::arch::x86_64::__cpuid(1);
    (leaf.ebx >> 24) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirection_entry_layout() {
        // Vector in 7:0; delivery mode, destination mode, polarity, trigger and mask bits all zero.
        assert_eq!(redirection_low(0x31), 0x0000_0031);
        assert_eq!(redirection_high(3), 0x0300_0000);
    }
}
