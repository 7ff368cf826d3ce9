//! Grant tables, version 1 (`grant_table.h`): granting our pages to another domain, and grant copy.
//!
//! Layer: the table frames Xen shares with us plus a free list. The frames are pages of the image's own
//! `.bss` (identity-mapped write-back, outside the heap) that `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`
//! replaces with the table. An entry is `{ u16 flags, u16 domid, u32 frame }`; it is written in one 64-bit
//! store with its flags, and ended with a compare-exchange that fails while Xen has the page mapped
//! (`GTF_reading`/`GTF_writing`), so an entry in use is never freed.
//!
//! [`GrantTable`] is the pure bookkeeping over any `[AtomicU64]` (host-tested); [`XenGrants`] is the
//! handle over the one hypervisor table that the frontends use.

use alloc::vec::Vec;
use core::cell::{RefCell, UnsafeCell};
use core::sync::atomic::{AtomicU64, Ordering};

use super::hypercall::{self, DOMID_SELF, MAPSPACE_GRANT_TABLE};
use super::{DomId, GrantRef, Grants, XenError, PAGE_SIZE};

/// `GTF_permit_access`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_readonly`.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`.
pub const GTF_WRITING: u16 = 1 << 4;
/// `GNTTAB_NR_RESERVED_ENTRIES`: 0 is the console's, 1 xenstore's (set by the toolstack).
pub const RESERVED_ENTRIES: u32 = 8;
/// Entries per table frame (8 bytes each).
pub const ENTRIES_PER_FRAME: usize = PAGE_SIZE / 8;
/// Table frames the image maps: 2048 grants (two NICs' rings of 256 + 256 and a disk fit with room).
pub const FRAMES: usize = 4;

/// The 64-bit value of a v1 entry.
pub fn encode_entry(flags: u16, domid: DomId, frame: u32) -> u64 {
    u64::from(flags) | u64::from(domid) << 16 | u64::from(frame) << 32
}

/// The flags of an entry value.
pub fn entry_flags(value: u64) -> u16 {
    value as u16
}

/// Grant bookkeeping over a table of v1 entries.
pub struct GrantTable<'a> {
    entries: &'a [AtomicU64],
    free: Vec<GrantRef>,
}

impl<'a> GrantTable<'a> {
    /// A table over `entries`, all free except the reserved ones.
    pub fn new(entries: &'a [AtomicU64]) -> GrantTable<'a> {
        let n = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        GrantTable {
            entries,
            free: (RESERVED_ENTRIES..n).rev().collect(),
        }
    }

    /// Free entries left.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Grants `domid` access to `frame`.
    pub fn grant(
        &mut self,
        domid: DomId,
        frame: u64,
        readonly: bool,
    ) -> Result<GrantRef, XenError> {
        let frame = u32::try_from(frame).map_err(|_| {
            XenError::Backend(alloc::format!("frame {frame:#x} beyond grant v1's 32 bits"))
        })?;
        let gref = self.free.pop().ok_or(XenError::GrantTableFull)?;
        let Some(entry) = self.entries.get(gref as usize) else {
            return Err(XenError::GrantTableFull);
        };
        let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
        entry.store(encode_entry(flags, domid, frame), Ordering::SeqCst);
        Ok(gref)
    }

    /// Ends a grant: fails while the other domain has the page mapped.
    pub fn end_grant(&mut self, gref: GrantRef) -> Result<(), XenError> {
        if gref < RESERVED_ENTRIES || self.free.contains(&gref) {
            return Err(XenError::Backend(alloc::format!(
                "grant {gref} is not ours to end"
            )));
        }
        let entry = self
            .entries
            .get(gref as usize)
            .ok_or_else(|| XenError::Backend(alloc::format!("grant {gref} out of range")))?;
        let mut current = entry.load(Ordering::SeqCst);
        loop {
            if entry_flags(current) & (GTF_READING | GTF_WRITING) != 0 {
                return Err(XenError::Backend(alloc::format!(
                    "grant {gref} still mapped by domain {}",
                    (current >> 16) as u16
                )));
            }
            match entry.compare_exchange(current, 0, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        self.free.push(gref);
        Ok(())
    }
}

#[repr(C, align(4096))]
struct Frames(UnsafeCell<[u8; FRAMES * PAGE_SIZE]>);

// SAFETY: the frames are only accessed as atomics, through `GrantTable`, with Xen as the other side.
unsafe impl Sync for Frames {}

static FRAMES_MEM: Frames = Frames(UnsafeCell::new([0; FRAMES * PAGE_SIZE]));

/// The one table; `None` until [`init`].
struct Global(RefCell<Option<GrantTable<'static>>>);

// SAFETY: the image runs on one CPU and never touches the grant table from interrupt context.
unsafe impl Sync for Global {}

static TABLE: Global = Global(RefCell::new(None));

/// `struct gnttab_query_size`.
#[repr(C)]
struct QuerySize {
    dom: u16,
    nr_frames: u32,
    max_nr_frames: u32,
    status: i16,
}

/// Maps the table frames (as many of [`FRAMES`] as Xen allows). Returns the number of grant entries.
pub fn init() -> Result<usize, XenError> {
    let mut query = [QuerySize {
        dom: DOMID_SELF,
        nr_frames: 0,
        max_nr_frames: 0,
        status: 0,
    }];
    // SAFETY: GNTTABOP_query_size (6) on one structure.
    let ret = unsafe { hypercall::grant_table_op(6, &mut query) };
    if ret < 0 || query[0].status != 0 {
        return Err(XenError::Hypercall {
            op: "grant_table_op query_size",
            errno: if ret < 0 {
                ret
            } else {
                i64::from(query[0].status)
            },
        });
    }
    let frames = (query[0].max_nr_frames as usize).clamp(0, FRAMES);
    if frames == 0 {
        return Err(XenError::Backend("Xen allows no grant-table frames".into()));
    }
    let base = FRAMES_MEM.0.get() as u64;
    for i in 0..frames {
        hypercall::add_to_physmap(MAPSPACE_GRANT_TABLE, i as u64, (base >> 12) + i as u64)?;
    }
    // SAFETY: the frames are static, 8-aligned, and from now on only accessed as atomics.
    let entries = unsafe {
        core::slice::from_raw_parts(
            FRAMES_MEM.0.get().cast::<AtomicU64>(),
            frames * ENTRIES_PER_FRAME,
        )
    };
    let table = GrantTable::new(entries);
    let n = entries.len();
    *TABLE.0.try_borrow_mut().map_err(|_| busy())? = Some(table);
    Ok(n)
}

fn busy() -> XenError {
    XenError::Backend("grant table in use (re-entered)".into())
}

fn with<R>(f: impl FnOnce(&mut GrantTable<'static>) -> Result<R, XenError>) -> Result<R, XenError> {
    let mut table = TABLE.0.try_borrow_mut().map_err(|_| busy())?;
    match table.as_mut() {
        Some(t) => f(t),
        None => Err(XenError::Backend("grant table not set up".into())),
    }
}

/// The hypervisor's grant table, as the frontends use it. A handle: copies share the one table.
#[derive(Debug, Clone, Copy)]
pub struct XenGrants(());

impl XenGrants {
    /// The grant table, once [`init`] succeeded.
    pub fn new() -> Result<XenGrants, XenError> {
        with(|_| Ok(XenGrants(())))
    }

    /// Free entries left.
    pub fn free(&self) -> usize {
        with(|t| Ok(t.free())).unwrap_or(0)
    }
}

impl Grants for XenGrants {
    fn grant(&mut self, domid: DomId, frame: u64, readonly: bool) -> Result<GrantRef, XenError> {
        with(|t| t.grant(domid, frame, readonly))
    }

    fn end_grant(&mut self, gref: GrantRef) -> Result<(), XenError> {
        with(|t| t.end_grant(gref))
    }
}

/// One side of a grant copy: a grant reference of `domid`, or (for our own side) a frame of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPtr {
    /// Page `gref` that `domid` granted us.
    Grant {
        domid: DomId,
        gref: GrantRef,
        offset: u16,
    },
    /// Our own frame.
    Local { frame: u64, offset: u16 },
}

/// `struct gnttab_copy`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct GnttabCopy {
    source: CopyPtrRaw,
    dest: CopyPtrRaw,
    len: u16,
    flags: u16,
    status: i16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct CopyPtrRaw {
    ref_or_gmfn: u64,
    domid: u16,
    offset: u16,
}

/// `GNTCOPY_source_gref`, `GNTCOPY_dest_gref`.
const GNTCOPY_SOURCE_GREF: u16 = 1;
const GNTCOPY_DEST_GREF: u16 = 2;

impl GnttabCopy {
    /// A copy of `len` bytes; neither side may cross its page.
    pub fn new(source: CopyPtr, dest: CopyPtr, len: u16) -> Result<GnttabCopy, XenError> {
        let mut flags = 0;
        let mut raw = |p: CopyPtr, grant_flag: u16| {
            let (value, domid, offset) = match p {
                CopyPtr::Grant {
                    domid,
                    gref,
                    offset,
                } => {
                    flags |= grant_flag;
                    (u64::from(gref), domid, offset)
                }
                CopyPtr::Local { frame, offset } => (frame, DOMID_SELF, offset),
            };
            if usize::from(offset) + usize::from(len) > PAGE_SIZE {
                return Err(XenError::Backend(alloc::format!(
                    "grant copy of {len} bytes at offset {offset} crosses a page"
                )));
            }
            Ok(CopyPtrRaw {
                ref_or_gmfn: value,
                domid,
                offset,
            })
        };
        let source = raw(source, GNTCOPY_SOURCE_GREF)?;
        let dest = raw(dest, GNTCOPY_DEST_GREF)?;
        Ok(GnttabCopy {
            source,
            dest,
            len,
            flags,
            status: 0,
        })
    }

    /// Xen's `GNTST_*` status after [`copy`] (0 okay).
    pub fn status(&self) -> i16 {
        self.status
    }
}

/// `GNTTABOP_copy` on a batch; each op's own result is in its [`GnttabCopy::status`].
pub fn copy(ops: &mut [GnttabCopy]) -> Result<(), XenError> {
    if ops.is_empty() {
        return Ok(());
    }
    // SAFETY: GNTTABOP_copy (5) on `ops.len()` structures laid out as the header's.
    let ret = unsafe { hypercall::grant_table_op(5, ops) };
    if ret < 0 {
        return Err(XenError::Hypercall {
            op: "grant_table_op copy",
            errno: ret,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn entry_encoding() {
        let v = encode_entry(GTF_PERMIT_ACCESS | GTF_READONLY, 0x7ff0, 0x1234_5678);
        assert_eq!(
            v.to_le_bytes(),
            [0x05, 0, 0xf0, 0x7f, 0x78, 0x56, 0x34, 0x12]
        );
        assert_eq!(entry_flags(v), 5);
    }

    #[test]
    fn grant_and_end() {
        let mem = table(16);
        let mut t = GrantTable::new(&mem);
        assert_eq!(t.free(), 8);
        let g = t.grant(0, 0x1000, false).unwrap();
        assert!(g >= RESERVED_ENTRIES);
        assert_eq!(
            mem[g as usize].load(Ordering::SeqCst),
            encode_entry(1, 0, 0x1000)
        );
        let r = t.grant(3, 0x2000, true).unwrap();
        assert_eq!(entry_flags(mem[r as usize].load(Ordering::SeqCst)), 5);
        // the backend maps it: it stays granted
        mem[r as usize].fetch_or(u64::from(GTF_READING), Ordering::SeqCst);
        assert!(t.end_grant(r).is_err());
        mem[r as usize].fetch_and(!u64::from(GTF_READING), Ordering::SeqCst);
        t.end_grant(r).unwrap();
        assert_eq!(mem[r as usize].load(Ordering::SeqCst), 0);
        // ending twice, or a reserved or foreign ref, is refused
        assert!(t.end_grant(r).is_err());
        assert!(t.end_grant(1).is_err());
        assert!(t.end_grant(999).is_err());
        t.end_grant(g).unwrap();
        assert_eq!(t.free(), 8);
    }

    #[test]
    fn full_and_wide_frames() {
        let mem = table(10);
        let mut t = GrantTable::new(&mem);
        t.grant(0, 1, false).unwrap();
        t.grant(0, 2, false).unwrap();
        assert_eq!(t.grant(0, 3, false), Err(XenError::GrantTableFull));
        let mem = table(10);
        let mut t = GrantTable::new(&mem);
        assert!(t.grant(0, 1 << 32, false).is_err());
        assert_eq!(t.free(), 2);
    }

    #[test]
    fn copy_layout_and_bounds() {
        assert_eq!(core::mem::size_of::<GnttabCopy>(), 40);
        assert_eq!(core::mem::offset_of!(GnttabCopy, len), 32);
        assert_eq!(core::mem::offset_of!(GnttabCopy, status), 36);
        let op = GnttabCopy::new(
            CopyPtr::Grant {
                domid: 5,
                gref: 9,
                offset: 100,
            },
            CopyPtr::Local {
                frame: 0x42,
                offset: 0,
            },
            1500,
        )
        .unwrap();
        assert_eq!(op.flags, GNTCOPY_SOURCE_GREF);
        assert_eq!(op.dest.domid, DOMID_SELF);
        assert!(GnttabCopy::new(
            CopyPtr::Local {
                frame: 1,
                offset: 4000
            },
            CopyPtr::Local {
                frame: 2,
                offset: 0
            },
            200
        )
        .is_err());
    }
}
