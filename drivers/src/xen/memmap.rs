//! The memory map from `XENMEM_memory_map`, for a PVH start without one (`hvm_start_info` version 0, as
//! Xen gives a PVH dom0, or `nr_memmap` 0).
//!
//! Layer: one hypercall plus a pure parser (host-tested). Xen fills the caller's buffer with E820
//! entries as the BIOS call returns them: packed 20-byte records (u64 address, u64 length, u32 type).

use super::hypercall;
use super::XenError;

/// One E820 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    /// 1 RAM, 2 reserved, 3 ACPI, 4 ACPI NVS, 5 unusable.
    pub kind: u32,
}

/// Size of one record in Xen's buffer.
pub const RECORD: usize = 20;
/// Most entries asked for.
pub const MAX_ENTRIES: usize = 128;

/// Parses `count` records from `raw` into `out`; returns how many were stored. Entries beyond `raw` or
/// `out`, and zero-length ones, are dropped; an address range that wraps is clamped to the top.
pub fn parse(raw: &[u8], count: usize, out: &mut [E820Entry]) -> usize {
    let mut n = 0;
    for record in raw.chunks_exact(RECORD).take(count) {
        let field = |at: usize, len: usize| {
            record
                .get(at..at + len)
                .map(|b| b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
                .unwrap_or(0)
        };
        let addr = field(0, 8);
        let size = field(8, 8).min(u64::MAX - addr);
        let kind = field(16, 4) as u32;
        if size == 0 {
            continue;
        }
        let Some(slot) = out.get_mut(n) else { break };
        *slot = E820Entry { addr, size, kind };
        n += 1;
    }
    n
}

/// `struct xen_memory_map`.
#[repr(C)]
struct MemoryMap {
    nr_entries: u32,
    buffer: u64,
}

/// Asks Xen for our memory map; fills `out` and returns the number of entries.
pub fn fetch(out: &mut [E820Entry]) -> Result<usize, XenError> {
    let mut raw = [0u8; MAX_ENTRIES * RECORD];
    let mut arg = MemoryMap {
        nr_entries: MAX_ENTRIES as u32,
        buffer: raw.as_mut_ptr() as u64,
    };
    // SAFETY: XENMEM_memory_map (9) writes at most nr_entries records of RECORD bytes into `raw`.
    let ret = unsafe { hypercall::memory_op(9, &mut arg) };
    if ret < 0 {
        return Err(XenError::Hypercall {
            op: "memory_op memory_map",
            errno: ret,
        });
    }
    let count = (arg.nr_entries as usize).min(MAX_ENTRIES);
    Ok(parse(&raw, count, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn record(addr: u64, size: u64, kind: u32) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&addr.to_le_bytes());
        r.extend_from_slice(&size.to_le_bytes());
        r.extend_from_slice(&kind.to_le_bytes());
        r
    }

    #[test]
    fn parses_packed_records() {
        let mut raw = record(0, 0x9f000, 1);
        raw.extend(record(0x10_0000, 0x0fef_0000, 1));
        raw.extend(record(0xfc00_0000, 0x400_0000, 2));
        let mut out = [E820Entry::default(); 8];
        assert_eq!(parse(&raw, 3, &mut out), 3);
        assert_eq!(
            out[1],
            E820Entry {
                addr: 0x10_0000,
                size: 0x0fef_0000,
                kind: 1
            }
        );
        assert_eq!(out[2].kind, 2);
    }

    #[test]
    fn bad_counts_and_entries_are_bounded() {
        let mut raw = record(0x1000, 0, 1); // empty: dropped
        raw.extend(record(u64::MAX - 10, 100, 1)); // wraps: clamped
        raw.extend(record(0x2000, 0x1000, 1));
        let mut out = [E820Entry::default(); 1];
        // Xen claims 1000 entries: only what the buffer holds, only what `out` holds.
        assert_eq!(parse(&raw, 1000, &mut out), 1);
        assert_eq!(out[0].addr + out[0].size, u64::MAX);
        let mut out = [E820Entry::default(); 8];
        assert_eq!(parse(&raw[..RECORD * 2 + 7], 1000, &mut out), 1);
        assert_eq!(parse(&raw, 0, &mut out), 0);
    }
}
