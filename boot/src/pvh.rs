//! The PVH `hvm_start_info` the loader hands us in `ebx`: command line and memory map.
//!
//! Layer: read-only view of loader-provided memory. Layout from Xen's
//! `xen/include/public/arch-x86/hvm/start_info.h` (version 1 adds the memory map, which QEMU provides).
//! It validates the magic and version before anything is read, and never writes.

use core::fmt;

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const START_MAGIC: u32 = 0x336e_c578;

/// `struct hvm_start_info` (version 1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StartInfo {
    /// Must be [`START_MAGIC`].
    pub magic: u32,
    /// 0 (no memory map) or 1.
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Number of `hvm_modlist_entry` (unused here).
    pub nr_modules: u32,
    /// Physical address of the module list.
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line (0: none).
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP (0: none).
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (version >= 1).
    pub memmap_paddr: u64,
    /// Number of memory map entries (version >= 1).
    pub memmap_entries: u32,
    reserved: u32,
}

/// `struct hvm_memmap_table_entry`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemmapEntry {
    /// Physical start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820 type: 1 RAM, 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 unusable.
    pub kind: u32,
    reserved: u32,
}

/// `XEN_HVM_MEMMAP_TYPE_RAM`.
pub const MEMMAP_RAM: u32 = 1;

impl MemmapEntry {
    /// An entry from another source of the memory map (Xen's `XENMEM_memory_map`).
    pub const fn new(addr: u64, size: u64, kind: u32) -> MemmapEntry {
        MemmapEntry {
            addr,
            size,
            kind,
            reserved: 0,
        }
    }

    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// Usable RAM.
    pub fn is_ram(&self) -> bool {
        self.kind == MEMMAP_RAM
    }

    /// Human name of the E820 type.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            1 => "ram",
            2 => "reserved",
            3 => "acpi",
            4 => "acpi-nvs",
            5 => "unusable",
            _ => "other",
        }
    }
}

impl fmt::Display for MemmapEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#011x}-{:#011x} {:>9} KiB {}",
            self.addr,
            self.end(),
            self.size / 1024,
            self.kind_name()
        )
    }
}

/// Why the start info cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvhError {
    /// `magic` is not [`START_MAGIC`]: not booted through PVH.
    BadMagic(u32),
    /// Version 0 has no memory map, which we need for the heap.
    NoMemoryMap(u32),
    /// The command line is not valid UTF-8 or longer than [`MAX_CMDLINE`].
    BadCmdline,
}

impl fmt::Display for PvhError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PvhError::BadMagic(m) => {
                write!(f, "hvm_start_info magic {m:#x}, expected {START_MAGIC:#x}")
            }
            PvhError::NoMemoryMap(v) => write!(f, "hvm_start_info version {v} has no memory map"),
            PvhError::BadCmdline => write!(
                f,
                "command line is not UTF-8 or longer than {MAX_CMDLINE} bytes"
            ),
        }
    }
}

/// Longest command line accepted.
pub const MAX_CMDLINE: usize = 4096;

impl StartInfo {
    /// Validates and borrows the start info at `paddr` (the value of `ebx` at entry). A start info without
    /// a memory map (version 0, as Xen gives a PVH dom0) is accepted: [`StartInfo::memmap`] is then empty
    /// and the platform asks the hypervisor.
    ///
    /// # Safety
    /// `paddr` must be the address the PVH loader passed; it must be identity mapped and stay untouched
    /// (the heap allocator must exclude it, see [`StartInfo::loader_ranges`]).
    pub unsafe fn from_paddr(paddr: u64) -> Result<&'static StartInfo, PvhError> {
        // SAFETY: per the caller's contract the loader put a hvm_start_info here.
        let info = unsafe { &*(paddr as *const StartInfo) };
        if info.magic != START_MAGIC {
            return Err(PvhError::BadMagic(info.magic));
        }
        Ok(info)
    }

    /// The memory map; empty when the loader gave none (version 0, or no entries).
    pub fn memmap(&self) -> &'static [MemmapEntry] {
        if self.version < 1 || self.memmap_paddr == 0 {
            return &[];
        }
        // SAFETY: version >= 1 with a map address: the loader guarantees memmap_entries entries there.
        unsafe {
            core::slice::from_raw_parts(
                self.memmap_paddr as *const MemmapEntry,
                self.memmap_entries as usize,
            )
        }
    }

    /// The boot command line (QEMU `-append`), empty when there is none.
    pub fn cmdline(&self) -> Result<&'static str, PvhError> {
        if self.cmdline_paddr == 0 {
            return Ok("");
        }
        let base = self.cmdline_paddr as *const u8;
        let mut len = 0;
        // SAFETY: NUL-terminated string from the loader; the scan is bounded by MAX_CMDLINE.
        while len < MAX_CMDLINE && unsafe { base.add(len).read() } != 0 {
            len += 1;
        }
        if len == MAX_CMDLINE {
            return Err(PvhError::BadCmdline);
        }
        // SAFETY: len bytes were just read.
        let bytes = unsafe { core::slice::from_raw_parts(base, len) };
        core::str::from_utf8(bytes).map_err(|_| PvhError::BadCmdline)
    }

    /// Physical ranges the loader's data occupies (start info, memory map, command line), which must not be
    /// handed to the allocator.
    pub fn loader_ranges(&self) -> [(u64, u64); 3] {
        let info = self as *const StartInfo as u64;
        let memmap_len = self.memmap().len() as u64 * core::mem::size_of::<MemmapEntry>() as u64;
        let cmdline_len = self
            .cmdline()
            .map(|c| c.len() as u64 + 1)
            .unwrap_or(MAX_CMDLINE as u64);
        [
            (info, info + core::mem::size_of::<StartInfo>() as u64),
            (self.memmap_paddr, self.memmap_paddr + memmap_len),
            (self.cmdline_paddr, self.cmdline_paddr + cmdline_len),
        ]
    }
}
