//! Choosing the heap: the largest RAM run of the memory map that the image and the loader do not use.
//!
//! Layer: pure arithmetic over address ranges, host-tested; `heap.rs` in the image feeds it the PVH memory
//! map and hands the result to the allocator.

/// A physical address range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapRegion {
    /// First byte (4 KiB aligned).
    pub start: u64,
    /// One past the last byte (4 KiB aligned).
    pub end: u64,
}

impl HeapRegion {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true for a chosen region.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// The largest page-aligned part of a `ram` range at or above `floor` (the image end) and below `limit` (the
/// end of the identity map) that overlaps none of `avoid` (loader data: start info, memory map, command
/// line). A range in the middle of a RAM run moves the start past it: loader data sits low in memory, so
/// this loses at most a little RAM and keeps the choice simple.
pub fn choose(
    ram: impl IntoIterator<Item = (u64, u64)>,
    floor: u64,
    limit: u64,
    avoid: &[(u64, u64)],
) -> Option<HeapRegion> {
    let mut best: Option<HeapRegion> = None;
    for (ram_start, ram_end) in ram {
        let mut start = ram_start.max(floor);
        let end = ram_end.min(limit);
        for &(a, b) in avoid {
            if a < end && start < b {
                start = start.max(b);
            }
        }
        let start = start.saturating_add(0xfff) & !0xfff;
        let end = end & !0xfff;
        if start < end && best.is_none_or(|b| end - start > b.len()) {
            best = Some(HeapRegion { start, end });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn takes_ram_above_the_image() {
        // pc with 128 MiB: low RAM below 640 KiB, main RAM from 1 MiB; image ends at 1.7 MiB.
        let ram = [(0, 0x9fc00), (MIB, 128 * MIB - 128 * 1024)];
        let r = choose(ram, 0x1b3000, 4 << 30, &[(0x6000, 0x6038)]).unwrap();
        assert_eq!(
            r,
            HeapRegion {
                start: 0x1b3000,
                end: 128 * MIB - 128 * 1024
            }
        );
    }

    #[test]
    fn picks_the_largest_run_and_respects_the_map_limit() {
        let ram = [(MIB, 2048 * MIB), (4096 * MIB, 8192 * MIB)];
        let r = choose(ram, 2 * MIB, 4096 * MIB, &[]).unwrap();
        assert_eq!(
            r,
            HeapRegion {
                start: 2 * MIB,
                end: 2048 * MIB
            }
        );
        let r = choose(ram, 2 * MIB, 512 << 30, &[]).unwrap();
        assert_eq!(
            r,
            HeapRegion {
                start: 4096 * MIB,
                end: 8192 * MIB
            }
        );
    }

    #[test]
    fn skips_loader_data_and_aligns() {
        let ram = [(MIB, 64 * MIB)];
        let r = choose(ram, 0x1b3456, 4 << 30, &[(0x200000, 0x200100)]).unwrap();
        assert_eq!(r.start, 0x201000);
        assert_eq!(r.end, 64 * MIB);
        assert!(!r.is_empty());
    }

    #[test]
    fn nothing_when_ram_ends_below_the_image() {
        assert_eq!(choose([(0, 0x9fc00)], 0x1b3000, 4 << 30, &[]), None);
        assert_eq!(choose([(MIB, MIB + 0x800)], MIB, 4 << 30, &[]), None);
    }
}
