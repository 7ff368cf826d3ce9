//! Grant tables, version 1 (`grant_table.h`): granting our pages to another domain, grant copy, and
//! mapping another domain's grant into a pool of our frames ([`map`], [`MappedPage`]).
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

    /// Sets the status (what Xen does; for a fake hypervisor in tests).
    pub fn set_status(&mut self, status: i16) {
        self.status = status;
    }

    /// The bytes to copy.
    pub fn len(&self) -> u16 {
        self.len
    }

    /// Whether the copy is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The source and destination, as given to [`new`](Self::new).
    pub fn sides(&self) -> (CopyPtr, CopyPtr) {
        let side = |raw: &CopyPtrRaw, grant: bool| {
            if grant {
                CopyPtr::Grant {
                    domid: raw.domid,
                    gref: raw.ref_or_gmfn as GrantRef,
                    offset: raw.offset,
                }
            } else {
                CopyPtr::Local {
                    frame: raw.ref_or_gmfn,
                    offset: raw.offset,
                }
            }
        };
        (
            side(&self.source, self.flags & GNTCOPY_SOURCE_GREF != 0),
            side(&self.dest, self.flags & GNTCOPY_DEST_GREF != 0),
        )
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

// Mapping another domain's grant (GNTTABOP_map_grant_ref / GNTTABOP_unmap_grant_ref).
//
// For an auto-translated guest (PVH) `host_addr` is a guest-physical address: Xen puts the granted frame
// into our p2m at that frame number (`create_grant_p2m_mapping`), and the unmap leaves a hole there. The
// RAM page that was at the frame is not freed by the map, only dropped from the p2m (stranded until the
// domain dies), and any other use of the frame would read the foreign page or, once unmapped, a hole. So
// mappings go only into the frames of one dedicated pool: `MAP_POOL_FRAMES` page-aligned pages of `.bss`
// (identity-mapped write-back like all RAM, so a mapping is cached normally) that nothing but a
// `MappedPage` ever touches, and whose RAM `map_pool_init` gives back to Xen first (as Linux maps into
// ballooned-out pages). A slot is free only while its frame is a hole.

/// `GNTTABOP_map_grant_ref`.
const GNTTABOP_MAP_GRANT_REF: u64 = 0;
/// `GNTTABOP_unmap_grant_ref`.
const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
/// `GNTMAP_host_map`: map for the CPU (the only kind an HVM/PVH guest may ask for).
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// Frames in the grant-map pool: the most foreign pages mapped at once (a netback needs two ring pages
/// per client vif, a vchan one or two).
pub const MAP_POOL_FRAMES: usize = 32;

/// The name of a `GNTST_*` status (`grant_table.h`).
pub fn status_name(status: i16) -> &'static str {
    match status {
        0 => "GNTST_okay",
        -1 => "GNTST_general_error",
        -2 => "GNTST_bad_domain",
        -3 => "GNTST_bad_gntref",
        -4 => "GNTST_bad_handle",
        -5 => "GNTST_bad_virt_addr",
        -6 => "GNTST_bad_dev_addr",
        -7 => "GNTST_no_device_space",
        -8 => "GNTST_permission_denied",
        -9 => "GNTST_bad_page",
        -10 => "GNTST_bad_copy_arg",
        -11 => "GNTST_address_too_big",
        -12 => "GNTST_eagain",
        -13 => "GNTST_no_space",
        _ => "unknown GNTST status",
    }
}

/// A hypercall's return and the op's own status, as one result.
fn op_result(op: &'static str, ret: i64, status: i16) -> Result<(), XenError> {
    if ret < 0 {
        Err(XenError::Hypercall {
            op: "grant_table_op",
            errno: ret,
        })
    } else if status != 0 {
        Err(XenError::Grant { op, status })
    } else {
        Ok(())
    }
}

/// `struct gnttab_map_grant_ref`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapGrantRef {
    host_addr: u64,
    flags: u32,
    gref: u32,
    dom: u16,
    status: i16,
    handle: u32,
    dev_bus_addr: u64,
}

impl MapGrantRef {
    /// Maps `domid`'s grant `gref` at our frame `frame` (host mapping; read-only when `readonly`).
    pub fn new(domid: DomId, gref: GrantRef, frame: u64, readonly: bool) -> MapGrantRef {
        MapGrantRef {
            host_addr: frame << 12,
            flags: GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 },
            gref,
            dom: domid,
            ..MapGrantRef::default()
        }
    }

    /// Xen's `GNTST_*` status after the op (0 okay).
    pub fn status(&self) -> i16 {
        self.status
    }

    /// The handle that unmaps it (valid when the status is 0).
    pub fn handle(&self) -> u32 {
        self.handle
    }
}

/// `struct gnttab_unmap_grant_ref`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnmapGrantRef {
    host_addr: u64,
    dev_bus_addr: u64,
    handle: u32,
    status: i16,
}

impl UnmapGrantRef {
    /// Unmaps the host mapping `handle` at our frame `frame`.
    pub fn new(frame: u64, handle: u32) -> UnmapGrantRef {
        UnmapGrantRef {
            host_addr: frame << 12,
            handle,
            ..UnmapGrantRef::default()
        }
    }

    /// Xen's `GNTST_*` status after the op (0 okay).
    pub fn status(&self) -> i16 {
        self.status
    }
}

/// Which frames of the grant-map pool hold a mapping (pure bookkeeping, host-tested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapPool {
    frames: usize,
    used: u64,
}

impl MapPool {
    /// A pool of `frames` slots (at most 64), all free.
    pub const fn new(frames: usize) -> MapPool {
        MapPool {
            frames: if frames > 64 { 64 } else { frames },
            used: 0,
        }
    }

    /// Slots without a mapping.
    pub fn free(&self) -> usize {
        self.frames - self.used.count_ones() as usize
    }

    /// Takes the lowest free slot.
    pub fn take(&mut self) -> Result<usize, XenError> {
        let slot = (!self.used).trailing_zeros() as usize;
        if slot >= self.frames {
            return Err(XenError::MapPoolFull);
        }
        self.used |= 1 << slot;
        Ok(slot)
    }

    /// Gives `slot` back (its frame is a hole again).
    pub fn release(&mut self, slot: usize) -> Result<(), XenError> {
        if slot >= self.frames || self.used & (1 << slot) == 0 {
            return Err(XenError::Backend(alloc::format!(
                "grant-map slot {slot} is not in use"
            )));
        }
        self.used &= !(1 << slot);
        Ok(())
    }
}

#[repr(C, align(4096))]
struct MapFrames(UnsafeCell<[u8; MAP_POOL_FRAMES * PAGE_SIZE]>);

// SAFETY: Rust code never forms a reference to these frames: a `MappedPage` reaches its own frame only
// through volatile accesses of a raw pointer, and only while it holds the mapping there.
unsafe impl Sync for MapFrames {}

static MAP_FRAMES: MapFrames = MapFrames(UnsafeCell::new([0; MAP_POOL_FRAMES * PAGE_SIZE]));

struct PoolCell(RefCell<MapPool>);

// SAFETY: the image runs on one CPU and never maps or unmaps from interrupt context.
unsafe impl Sync for PoolCell {}

static POOL: PoolCell = PoolCell(RefCell::new(MapPool::new(MAP_POOL_FRAMES)));

/// Our frame number of pool slot `slot`.
fn pool_frame(slot: usize) -> u64 {
    (MAP_FRAMES.0.get() as u64 >> 12) + slot as u64
}

fn with_pool<R>(f: impl FnOnce(&mut MapPool) -> Result<R, XenError>) -> Result<R, XenError> {
    let mut pool = POOL.0.try_borrow_mut().map_err(|_| busy())?;
    f(&mut pool)
}

/// The first frame of the grant-map pool (for the boot log).
pub fn map_pool_base() -> u64 {
    pool_frame(0)
}

/// Free slots of the grant-map pool.
pub fn map_pool_free() -> usize {
    with_pool(|p| Ok(p.free())).unwrap_or(0)
}

/// Gives the RAM behind the pool's frames back to Xen (`XENMEM_decrease_reservation`), so that the first
/// mapping into each frame strands no page. Run once, before the first [`map`]; returns how many frames
/// were released. Without it mapping still works, but each frame's first mapping strands its RAM page.
pub fn map_pool_init() -> Result<usize, XenError> {
    let mut frames = [0u64; MAP_POOL_FRAMES];
    for (slot, f) in frames.iter_mut().enumerate() {
        *f = pool_frame(slot);
    }
    with_pool(|p| {
        if p.free() != MAP_POOL_FRAMES {
            return Err(XenError::Backend("grant-map pool already in use".into()));
        }
        Ok(())
    })?;
    hypercall::decrease_reservation(&mut frames)
}

/// An integer that can be read or written whole in a mapped page.
pub trait Word: Copy + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

impl Word for u8 {}
impl Word for u16 {}
impl Word for u32 {}
impl Word for u64 {}

/// Another domain's granted page, mapped at one of our pool frames. It owns the mapping: [`unmap`]
/// ends it (and frees the frame); dropping it unmaps too, and when that fails the frame stays taken
/// forever rather than being reused while it may still hold the foreign page.
///
/// The other domain can change the page at any time, so every access is volatile and nothing read can be
/// trusted beyond its bounds-checked offset.
///
/// [`unmap`]: MappedPage::unmap
#[derive(Debug)]
pub struct MappedPage {
    slot: usize,
    frame: u64,
    handle: u32,
    domid: DomId,
    gref: GrantRef,
    readonly: bool,
}

/// Maps `domid`'s grant `gref` into a free pool frame (read-only when `readonly`; the grant itself must
/// allow writing otherwise).
pub fn map(domid: DomId, gref: GrantRef, readonly: bool) -> Result<MappedPage, XenError> {
    let slot = with_pool(|p| p.take())?;
    let frame = pool_frame(slot);
    let mut op = [MapGrantRef::new(domid, gref, frame, readonly)];
    // SAFETY: GNTTABOP_map_grant_ref on one structure laid out as the header's; Xen changes our physmap
    // only at `frame`, a pool frame nothing else uses.
    let ret = unsafe { hypercall::grant_table_op(GNTTABOP_MAP_GRANT_REF, &mut op) };
    if let Err(e) = op_result("map", ret, op[0].status) {
        // Nothing was mapped (Xen undoes a failed map), so the frame is still a hole.
        let _ = with_pool(|p| p.release(slot));
        return Err(e);
    }
    Ok(MappedPage {
        slot,
        frame,
        handle: op[0].handle,
        domid,
        gref,
        readonly,
    })
}

impl MappedPage {
    /// Our frame number where the page is mapped.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Xen's handle for the mapping.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The granting domain and its grant reference.
    pub fn grant(&self) -> (DomId, GrantRef) {
        (self.domid, self.gref)
    }

    /// Whether it is mapped read-only.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// The page's first byte, for code that lays shared structures (rings) over it. Valid while `self`
    /// lives; access it only with volatile reads and writes (and none when [`readonly`](Self::readonly)).
    pub fn as_ptr(&self) -> *mut u8 {
        (self.frame << 12) as *mut u8
    }

    fn check(&self, offset: usize, len: usize, align: usize, write: bool) -> Result<(), XenError> {
        if write && self.readonly {
            return Err(XenError::Backend(alloc::format!(
                "grant {} of domain {} is mapped read-only",
                self.gref,
                self.domid
            )));
        }
        if offset.checked_add(len).is_none_or(|end| end > PAGE_SIZE)
            || !offset.is_multiple_of(align)
        {
            return Err(XenError::Backend(alloc::format!(
                "{len} bytes at offset {offset} do not fit a mapped page"
            )));
        }
        Ok(())
    }

    /// The `T` at `offset` (aligned to its size).
    pub fn load<T: Word>(&self, offset: usize) -> Result<T, XenError> {
        let size = core::mem::size_of::<T>();
        self.check(offset, size, size, false)?;
        // SAFETY: in bounds and aligned (checked); the frame holds our live mapping of a whole page, and
        // `T` is a plain integer, valid for any bits the other domain wrote.
        Ok(unsafe { self.as_ptr().add(offset).cast::<T>().read_volatile() })
    }

    /// Writes `value` at `offset` (aligned to its size).
    pub fn store<T: Word>(&self, offset: usize, value: T) -> Result<(), XenError> {
        let size = core::mem::size_of::<T>();
        self.check(offset, size, size, true)?;
        // SAFETY: in bounds and aligned (checked), a writable mapping (checked) of a whole page.
        unsafe { self.as_ptr().add(offset).cast::<T>().write_volatile(value) };
        Ok(())
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), XenError> {
        self.check(offset, buf.len(), 1, false)?;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + i` is within the page (checked above) of our live mapping.
            *b = unsafe { self.as_ptr().add(offset + i).read_volatile() };
        }
        Ok(())
    }

    /// Copies `bytes` into the page at `offset`.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> Result<(), XenError> {
        self.check(offset, bytes.len(), 1, true)?;
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: `offset + i` is within the page (checked above) of our live, writable mapping.
            unsafe { self.as_ptr().add(offset + i).write_volatile(b) };
        }
        Ok(())
    }

    fn unmap_op(&self) -> Result<(), XenError> {
        let mut op = [UnmapGrantRef::new(self.frame, self.handle)];
        // SAFETY: GNTTABOP_unmap_grant_ref on one structure laid out as the header's, for the mapping
        // this page owns; Xen changes our physmap only at its pool frame.
        let ret = unsafe { hypercall::grant_table_op(GNTTABOP_UNMAP_GRANT_REF, &mut op) };
        op_result("unmap", ret, op[0].status)?;
        // The frame is a hole again: the slot may be reused.
        with_pool(|p| p.release(self.slot))
    }

    /// Ends the mapping and frees its frame. On failure the page comes back with the error: it is still
    /// mapped (retry, or drop it to leave the frame taken).
    pub fn unmap(self) -> Result<(), (MappedPage, XenError)> {
        match self.unmap_op() {
            Ok(()) => {
                core::mem::forget(self);
                Ok(())
            }
            Err(e) => Err((self, e)),
        }
    }
}

impl Drop for MappedPage {
    fn drop(&mut self) {
        // A failed unmap leaves the slot taken: the frame may still hold the foreign page.
        let _ = self.unmap_op();
    }
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

    #[test]
    fn map_ops_layout_and_encoding() {
        assert_eq!(core::mem::size_of::<MapGrantRef>(), 32);
        assert_eq!(core::mem::offset_of!(MapGrantRef, flags), 8);
        assert_eq!(core::mem::offset_of!(MapGrantRef, gref), 12);
        assert_eq!(core::mem::offset_of!(MapGrantRef, dom), 16);
        assert_eq!(core::mem::offset_of!(MapGrantRef, status), 18);
        assert_eq!(core::mem::offset_of!(MapGrantRef, handle), 20);
        assert_eq!(core::mem::offset_of!(MapGrantRef, dev_bus_addr), 24);
        assert_eq!(core::mem::size_of::<UnmapGrantRef>(), 24);
        assert_eq!(core::mem::offset_of!(UnmapGrantRef, handle), 16);
        assert_eq!(core::mem::offset_of!(UnmapGrantRef, status), 20);
        let op = MapGrantRef::new(7, 300, 0x1234, false);
        assert_eq!(op.host_addr, 0x123_4000);
        assert_eq!(op.flags, 2);
        assert_eq!((op.gref, op.dom, op.status), (300, 7, 0));
        assert_eq!(MapGrantRef::new(7, 300, 0x1234, true).flags, 6);
        let un = UnmapGrantRef::new(0x1234, 9);
        assert_eq!(
            (un.host_addr, un.dev_bus_addr, un.handle),
            (0x123_4000, 0, 9)
        );
    }

    #[test]
    fn statuses_have_names() {
        assert_eq!(status_name(0), "GNTST_okay");
        assert_eq!(status_name(-3), "GNTST_bad_gntref");
        assert_eq!(status_name(-13), "GNTST_no_space");
        assert_eq!(status_name(-99), "unknown GNTST status");
        assert_eq!(op_result("map", 0, 0), Ok(()));
        let e = op_result("map", 0, -2).unwrap_err();
        assert_eq!(
            e,
            XenError::Grant {
                op: "map",
                status: -2
            }
        );
        assert_eq!(alloc::format!("{e}"), "grant map: GNTST_bad_domain (-2)");
        assert!(matches!(
            op_result("unmap", -22, 0),
            Err(XenError::Hypercall { errno: -22, .. })
        ));
    }

    #[test]
    fn pool_is_bounded() {
        let mut p = MapPool::new(3);
        assert_eq!(p.free(), 3);
        assert_eq!(p.take(), Ok(0));
        assert_eq!(p.take(), Ok(1));
        assert_eq!(p.take(), Ok(2));
        assert_eq!(p.take(), Err(XenError::MapPoolFull));
        p.release(1).unwrap();
        assert_eq!(p.free(), 1);
        assert_eq!(p.take(), Ok(1));
        // releasing a free or foreign slot is refused
        p.release(0).unwrap();
        assert!(p.release(0).is_err());
        assert!(p.release(3).is_err());
        assert!(p.release(64).is_err());
        assert_eq!(p.free(), 1);
        let mut big = MapPool::new(1000);
        assert_eq!(big.free(), 64);
        for i in 0..64 {
            assert_eq!(big.take(), Ok(i));
        }
        assert_eq!(big.take(), Err(XenError::MapPoolFull));
    }

    #[test]
    fn mapping_without_xen_fails_cleanly() {
        let before = map_pool_free();
        assert_eq!(before, MAP_POOL_FRAMES);
        assert!(matches!(
            map(0, 8, false),
            Err(XenError::Hypercall { errno: -38, .. })
        ));
        assert_eq!(map_pool_free(), before);
        assert_eq!(map_pool_base() << 12, MAP_FRAMES.0.get() as u64);
    }

    #[test]
    fn mapped_page_access_is_checked() {
        let page = MappedPage {
            slot: 0,
            frame: 0,
            handle: 0,
            domid: 1,
            gref: 2,
            readonly: true,
        };
        assert!(page.check(0, PAGE_SIZE, 1, false).is_ok());
        assert!(page.check(1, PAGE_SIZE, 1, false).is_err());
        assert!(page.check(usize::MAX, 2, 1, false).is_err());
        assert!(page.check(4092, 4, 4, false).is_ok());
        assert!(page.check(4094, 4, 4, false).is_err());
        assert!(page.check(2, 4, 4, false).is_err());
        // read-only: no writes at all
        assert!(page.check(0, 1, 1, true).is_err());
        assert!(page.store(0, 1u32).is_err());
        // never touched the (unmapped) frame 0, and must not unmap on drop
        core::mem::forget(page);
    }
}
