//! Xen blkfront (`xen/include/public/io/blkif.h`): reads the config disk, the Xen counterpart of
//! `virtio::blk::read_disk`.
//!
//! The disk is small and read once at boot, so the driver is simple: one request in flight at a time,
//! each reading up to [`SEGMENTS`] pages (44 KiB) into pages granted to the backend (write access),
//! then copied out. Every response is checked (its id, operation and status); a backend that answers
//! wrongly or not at all is an error that names what it did, never a panic.
//!
//! Handshake (as Linux's blkfront): wait for the backend's InitWait, write `ring-ref`,
//! `event-channel`, `protocol`, switch to Initialised, wait for the backend's Connected, read
//! `sectors`, `sector-size` and `info`, switch to Connected. The waits take the caller's clock and
//! deadline: [`Blkfront::poll_connect`] is one step; [`Blkfront::connect`] and [`read_disk`] loop with
//! an idle hook.
//!
//! The hypervisor handle `H` is owned (see the netfront module's notes on sharing it).

use alloc::format;
use alloc::vec::Vec;
use core::fmt;

use super::frontend::{
    backend_closing, backend_ready_for_rings, close_handshake, read_number, read_state, read_value,
    write_state, DevicePaths, Frontend, SharedPage,
};
use super::ring::{FrontRing, RingEntry};
use super::{EventChannels, GrantRef, Grants, Port, Store, XenError, XenbusState, PAGE_SIZE};

/// blkif's unit of sectors and offsets, whatever the disk's own sector size.
pub const SECTOR_SIZE: usize = 512;
/// Segments (pages) per request.
pub const SEGMENTS: usize = 11;
const SECTORS_PER_PAGE: usize = PAGE_SIZE / SECTOR_SIZE;

/// `BLKIF_OP_READ`.
pub const BLKIF_OP_READ: u8 = 0;
/// `BLKIF_RSP_OKAY`.
pub const BLKIF_RSP_OKAY: i16 = 0;
/// `BLKIF_RSP_ERROR`.
pub const BLKIF_RSP_ERROR: i16 = -1;

/// `blkif_request_segment`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub gref: GrantRef,
    /// First 512-byte sector of the page to transfer.
    pub first_sect: u8,
    /// Last 512-byte sector of the page to transfer (inclusive).
    pub last_sect: u8,
    pub pad: u16,
}

/// `blkif_request` (x86_64 layout: the padding after `handle` is explicit).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkRequest {
    pub operation: u8,
    pub nr_segments: u8,
    pub handle: u16,
    pub pad: u32,
    pub id: u64,
    /// In 512-byte units.
    pub sector_number: u64,
    pub seg: [Segment; SEGMENTS],
}

/// `blkif_response`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkResponse {
    pub id: u64,
    pub operation: u8,
    pub pad: u8,
    pub status: i16,
    pub pad2: u32,
}

const _: () = assert!(core::mem::size_of::<BlkRequest>() == 112);
const _: () = assert!(core::mem::size_of::<BlkResponse>() == 16);

// SAFETY: repr(C) structs of integers (padding explicit): every bit pattern is a value.
unsafe impl RingEntry for BlkRequest {}
// SAFETY: as above.
unsafe impl RingEntry for BlkResponse {}

/// The block ring (32 slots).
pub type BlkRing = FrontRing<BlkRequest, BlkResponse>;

/// Why the disk could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskReadError {
    /// Connecting failed, xenstore or the hypervisor failed, the backend broke the protocol (a wrong
    /// response id or operation, bad ring indices, bad keys) or did not answer in time.
    Xen(XenError),
    /// The backend answered a read with an error status.
    Io {
        /// The first sector (512-byte units) of the failed request.
        sector: u64,
        /// The `BLKIF_RSP_*` status.
        status: i16,
    },
    /// No memory for the disk image.
    OutOfMemory,
}

impl fmt::Display for DiskReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xen(error) => write!(f, "xen block device: {error}"),
            Self::Io { sector, status } => {
                write!(f, "read error at sector {sector} (status {status})")
            }
            Self::OutOfMemory => f.write_str("out of memory for the disk image"),
        }
    }
}

impl From<XenError> for DiskReadError {
    fn from(error: XenError) -> Self {
        Self::Xen(error)
    }
}

/// What the backend says about the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskInfo {
    /// The disk's size in 512-byte units.
    pub sectors: u64,
    /// The disk's logical sector size in bytes (a power of two, 512 to 4096).
    pub sector_size: u32,
    /// `VDISK_*` flags (cdrom 1, removable 2, read-only 4).
    pub info: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    WaitBackend,
    WaitConnected,
    Connected,
}

/// A Xen block frontend.
pub struct Blkfront<H: Grants + EventChannels> {
    hv: H,
    paths: DevicePaths,
    handle: u16,
    port: Port,
    phase: Phase,
    ring: BlkRing,
    ring_page: SharedPage,
    pages: Vec<SharedPage>,
    info: Option<DiskInfo>,
    next_id: u64,
}

impl<H: Grants + EventChannels> Frontend<H> for Blkfront<H> {
    /// Sets up vbd `index` (`device/vbd/<index>`, the index being the virtual device number): reads
    /// its backend and backend-id, allocates and grants the ring and the data pages, allocates the
    /// event channel (masked). Then drive [`poll_connect`](Self::poll_connect).
    fn new<S: Store + ?Sized>(hv: H, store: &mut S, index: u32) -> Result<Self, XenError> {
        let paths = DevicePaths::read(store, "vbd", index)?;
        let ring_page = SharedPage::new();
        // SAFETY: the page is heap-allocated by `SharedPage` and never moves; it lives in this struct
        // beside the ring and is never freed while granted (a granted page is leaked on drop).
        let ring = unsafe { BlkRing::init(ring_page.ptr()) };
        let mut blk = Self {
            hv,
            paths,
            handle: u16::try_from(index).unwrap_or(0),
            port: 0,
            phase: Phase::WaitBackend,
            ring,
            ring_page,
            pages: (0..SEGMENTS).map(|_| SharedPage::new()).collect(),
            info: None,
            next_id: 1,
        };
        if let Err(error) = blk.grant_all() {
            blk.end_grants();
            return Err(error);
        }
        blk.hv.set_unmasked(blk.port, false);
        Ok(blk)
    }

    /// Ends every grant; returns how many the backend still holds (those pages are leaked).
    fn end_grants(&mut self) -> usize {
        let pages = core::iter::once(&mut self.ring_page).chain(self.pages.iter_mut());
        super::frontend::end_all_grants(&mut self.hv, pages)
    }

    /// One step of the xenbus handshake; true once connected (then [`info`](Self::info) is known).
    /// `now` and `deadline` are in any one monotonic unit; at or past the deadline it is a
    /// [`XenError::Timeout`]. Bad disk keys or a backend that starts closing are a
    /// [`XenError::Backend`].
    fn poll_connect<S: Store + ?Sized>(
        &mut self,
        store: &mut S,
        now: u64,
        deadline: u64,
    ) -> Result<bool, XenError> {
        if self.phase == Phase::WaitBackend
            && backend_ready_for_rings(read_state(store, &self.paths.backend))
        {
            let gref = self.ring_page.gref().ok_or_else(|| {
                XenError::Backend(format!("{}: ring not granted", self.paths.frontend))
            })?;
            store.write(&self.paths.front("ring-ref"), &format!("{gref}"))?;
            store.write(
                &self.paths.front("event-channel"),
                &format!("{}", self.port),
            )?;
            store.write(&self.paths.front("protocol"), "x86_64-abi")?;
            write_state(store, &self.paths.frontend, XenbusState::Initialised)?;
            self.phase = Phase::WaitConnected;
        }
        if self.phase == Phase::WaitConnected {
            let state = read_state(store, &self.paths.backend);
            if state == Some(XenbusState::Connected) {
                self.info = Some(self.read_info(store)?);
                write_state(store, &self.paths.frontend, XenbusState::Connected)?;
                self.phase = Phase::Connected;
            } else if backend_closing(state) {
                return Err(XenError::Backend(format!(
                    "{} went to {state:?} while connecting",
                    self.paths.backend
                )));
            }
        }
        if self.phase == Phase::Connected {
            return Ok(true);
        }
        if now >= deadline {
            return Err(XenError::Timeout("the vbd backend to connect"));
        }
        Ok(false)
    }
}

impl<H: Grants + EventChannels> Blkfront<H> {
    fn grant_all(&mut self) -> Result<(), XenError> {
        let domid = self.paths.backend_id;
        let hv = &mut self.hv;
        self.ring_page.grant(hv, domid, false)?;
        for page in &mut self.pages {
            page.grant(hv, domid, false)?;
        }
        self.port = hv.alloc_unbound(domid)?;
        Ok(())
    }

    fn read_info<S: Store + ?Sized>(&self, store: &mut S) -> Result<DiskInfo, XenError> {
        let sectors = read_number(store, &self.paths.back("sectors"))?;
        let sector_size: u32 = read_number(store, &self.paths.back("sector-size"))?;
        if !sector_size.is_power_of_two() || !(512..=4096).contains(&sector_size) {
            return Err(XenError::Backend(format!(
                "{} is {sector_size}: not a sector size this driver can read",
                self.paths.back("sector-size")
            )));
        }
        // `info` is optional (0: a plain writable disk).
        let info = match read_value(store, &self.paths.back("info")) {
            Ok(_) => read_number(store, &self.paths.back("info"))?,
            Err(_) => 0,
        };
        Ok(DiskInfo {
            sectors,
            sector_size,
            info,
        })
    }

    /// The disk's geometry, once connected.
    pub fn info(&self) -> Option<DiskInfo> {
        self.info
    }

    /// The device's xenstore paths and backend domain.
    pub fn paths(&self) -> &DevicePaths {
        &self.paths
    }

    /// The event channel.
    pub fn port(&self) -> Port {
        self.port
    }

    /// Reads `buf.len()` bytes (a multiple of 512, at most [`SEGMENTS`] pages) starting at `sector`
    /// (512-byte units): one request, waited for with the caller's clock (`timeout` from the first
    /// `now()`) and idle hook. The event channel is unmasked while waiting, so an idle hook that halts
    /// until an interrupt wakes up.
    pub fn read_sectors(
        &mut self,
        sector: u64,
        buf: &mut [u8],
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<(), DiskReadError> {
        if self.phase != Phase::Connected {
            return Err(
                XenError::Backend(format!("{} is not connected", self.paths.frontend)).into(),
            );
        }
        let request = self.build_read(sector, buf.len())?;
        if self.ring.put_request(request).is_none() {
            // Only one request is ever in flight; a full ring means an earlier one was never answered.
            return Err(XenError::Backend(format!("{}: ring full", self.paths.frontend)).into());
        }
        if self.ring.push_requests_and_check_notify() {
            self.hv.notify(self.port);
        }
        self.hv.set_unmasked(self.port, true);
        let response = self.wait_response(now, timeout, idle);
        self.hv.set_unmasked(self.port, false);
        self.hv.take_pending(self.port);
        let response = response?;
        if response.id != request.id || response.operation != BLKIF_OP_READ {
            return Err(XenError::Backend(format!(
                "{}: response id {} op {} to read request id {}",
                self.paths.backend, response.id, response.operation, request.id
            ))
            .into());
        }
        if response.status != BLKIF_RSP_OKAY {
            return Err(DiskReadError::Io {
                sector,
                status: response.status,
            });
        }
        for (chunk, page) in buf.chunks_mut(PAGE_SIZE).zip(&mut self.pages) {
            // SAFETY: the backend has answered the only request that let it write these pages.
            let data = unsafe { page.range(0..chunk.len()) };
            let Some(data) = data else {
                // Unreachable: a chunk is at most a page.
                return Err(XenError::Backend(format!("a {}-byte segment", chunk.len())).into());
            };
            chunk.copy_from_slice(data);
        }
        Ok(())
    }

    fn build_read(&mut self, sector: u64, len: usize) -> Result<BlkRequest, XenError> {
        let segments = len.div_ceil(PAGE_SIZE);
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) || segments > SEGMENTS {
            return Err(XenError::Backend(format!(
                "a {len}-byte read: not 1 to {SEGMENTS} pages of whole sectors"
            )));
        }
        let mut request = BlkRequest {
            operation: BLKIF_OP_READ,
            nr_segments: u8::try_from(segments).unwrap_or(0),
            handle: self.handle,
            pad: 0,
            id: self.next_id,
            sector_number: sector,
            seg: [Segment::default(); SEGMENTS],
        };
        self.next_id = self.next_id.wrapping_add(1);
        let mut left = len / SECTOR_SIZE;
        for (segment, page) in request.seg.iter_mut().zip(&self.pages).take(segments) {
            let sectors = left.min(SECTORS_PER_PAGE);
            left -= sectors;
            *segment = Segment {
                gref: page.gref().ok_or_else(|| {
                    XenError::Backend(format!("{}: page not granted", self.paths.frontend))
                })?,
                first_sect: 0,
                last_sect: u8::try_from(sectors.saturating_sub(1)).unwrap_or(0),
                pad: 0,
            };
        }
        Ok(request)
    }

    fn wait_response(
        &mut self,
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<BlkResponse, XenError> {
        let deadline = now().saturating_add(timeout);
        loop {
            if let Some((_, response)) = self.ring.take_response()? {
                return Ok(response);
            }
            // Ask for an event at the next response, then look once more before idling.
            if self.ring.final_check_for_responses()? {
                continue;
            }
            if now() >= deadline {
                return Err(XenError::Timeout("the vbd backend to answer a read"));
            }
            idle();
            self.hv.take_pending(self.port);
        }
    }

    /// Reads the disk from its start: all of it, or its first `max_bytes` (rounded up to whole
    /// sectors) when it is larger.
    pub fn read_all(
        &mut self,
        max_bytes: usize,
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<Vec<u8>, DiskReadError> {
        let info = self.info.ok_or_else(|| {
            XenError::Backend(format!("{} is not connected", self.paths.frontend))
        })?;
        // Whole logical sectors: a 4 KiB-sector disk is read in 4 KiB units.
        let unit = (info.sector_size as usize / SECTOR_SIZE).max(1);
        let wanted = max_bytes
            .div_ceil(SECTOR_SIZE)
            .div_ceil(unit)
            .saturating_mul(unit);
        let sectors = usize::try_from(info.sectors).map_or(wanted, |n| n.min(wanted));
        let len = sectors.saturating_mul(SECTOR_SIZE);
        let mut disk = Vec::new();
        disk.try_reserve_exact(len)
            .map_err(|_| DiskReadError::OutOfMemory)?;
        disk.resize(len, 0);
        for (index, chunk) in disk.chunks_mut(SEGMENTS * PAGE_SIZE).enumerate() {
            let sector = (index * SEGMENTS * SECTORS_PER_PAGE) as u64;
            self.read_sectors(sector, chunk, now, timeout, idle)?;
        }
        Ok(disk)
    }

    /// Disconnects (Closing, wait for the backend, Closed) and ends every grant; pages the backend
    /// still maps are leaked, never freed (an error says how many).
    pub fn shutdown<S: Store + ?Sized>(
        mut self,
        store: &mut S,
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<(), XenError> {
        self.hv.set_unmasked(self.port, false);
        let mut result = close_handshake(store, &self.paths, now, timeout, idle);
        let kept = self.end_grants();
        if kept > 0 && result.is_ok() {
            result = Err(XenError::Backend(format!(
                "{kept} pages still mapped by the backend after it closed (leaked)"
            )));
        }
        result
    }
}

/// Reads the disk behind vbd `index` (`device/vbd/<index>`): connects, reads all of it or its first
/// `max_bytes` (rounded up to whole sectors), disconnects. `timeout` (in `now`'s unit) bounds the
/// connection and each request; `idle` runs between polls (e.g. sleep or halt until an event). A
/// failed disconnect is logged, not an error: the data is good.
pub fn read_disk<H: Grants + EventChannels, S: Store + ?Sized>(
    hv: H,
    store: &mut S,
    index: u32,
    max_bytes: usize,
    now: &mut dyn FnMut() -> u64,
    timeout: u64,
    idle: &mut dyn FnMut(),
) -> Result<Vec<u8>, DiskReadError> {
    let mut blk = Blkfront::connect(hv, store, index, now, timeout, idle)?;
    let disk = blk.read_all(max_bytes, now, timeout, idle);
    if let Err(error) = blk.shutdown(store, now, timeout, idle) {
        log::warn!("blkfront: vbd {index}: disconnecting: {error}");
    }
    disk
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::fake::{BlkMode, Fake, FakeBlkback};
    use alloc::vec::Vec;

    const INDEX: u32 = 51712;
    const FRONT: &str = "device/vbd/51712";
    const BACK: &str = "/local/domain/0/backend/vbd/7/51712";

    /// A fake platform with vbd 51712 whose backend connects (advertising `sectors` sectors of
    /// `sector_size` bytes) when we are Initialised, and closes when we close.
    fn platform(sectors: &str, sector_size: &str) -> Fake {
        let xen = Fake::new();
        xen.set(&format!("{FRONT}/backend"), BACK);
        xen.set(&format!("{FRONT}/backend-id"), "0");
        xen.set(&format!("{FRONT}/state"), "1");
        xen.set(&format!("{BACK}/state"), "2");
        xen.on_write(
            &format!("{FRONT}/state"),
            "3",
            &[
                (&format!("{BACK}/sectors"), sectors),
                (&format!("{BACK}/sector-size"), sector_size),
                (&format!("{BACK}/info"), "4"),
                (&format!("{BACK}/state"), "4"),
            ],
        );
        xen.on_write(
            &format!("{FRONT}/state"),
            "5",
            &[(&format!("{BACK}/state"), "6")],
        );
        xen
    }

    fn disk(sectors: usize) -> Vec<u8> {
        (0..sectors * 512)
            .map(|i| (i / 512) as u8 ^ (i as u8))
            .collect()
    }

    /// Runs `read_disk` against a fake blkback serving `image` in `mode`; the backend attaches once
    /// the frontend has written its ring details and answers whenever the driver idles.
    fn run(
        xen: &Fake,
        image: Vec<u8>,
        mode: BlkMode,
        max_bytes: usize,
    ) -> (Result<Vec<u8>, DiskReadError>, Vec<BlkRequest>) {
        let mut back: Option<FakeBlkback> = None;
        let mut requests = Vec::new();
        let mut t = 0u64;
        let result = {
            let mut idle = || {
                if back.is_none() {
                    back = FakeBlkback::try_attach(xen, FRONT, image.clone(), mode);
                }
                if let Some(back) = &mut back {
                    back.service();
                }
            };
            read_disk(
                xen.clone(),
                &mut xen.clone(),
                INDEX,
                max_bytes,
                &mut || {
                    t += 1;
                    t
                },
                100,
                &mut idle,
            )
        };
        if let Some(back) = back {
            requests = back.requests;
        }
        (result, requests)
    }

    #[test]
    fn reads_a_small_disk_and_disconnects() {
        let xen = platform("3", "512");
        let (result, requests) = run(&xen, disk(3), BlkMode::Good, 1 << 20);
        assert_eq!(result.unwrap(), disk(3));
        assert_eq!(requests.len(), 1);
        let request = requests[0];
        assert_eq!(
            (request.operation, request.nr_segments, request.handle),
            (0, 1, 51712)
        );
        assert_eq!(
            (request.seg[0].first_sect, request.seg[0].last_sect),
            (0, 2)
        );
        assert_eq!(xen.get(&format!("{FRONT}/protocol")).unwrap(), "x86_64-abi");
        assert_eq!(xen.get(&format!("{FRONT}/state")).unwrap(), "6");
        assert_eq!(xen.live_grants(), 0);
    }

    #[test]
    fn reads_in_chunks_up_to_the_limit() {
        let xen = platform("201", "512");
        let (result, requests) = run(&xen, disk(201), BlkMode::Good, 60_000);
        // 60 000 bytes round up to 118 sectors: one full request (88 sectors) and one of 30.
        assert_eq!(result.unwrap(), disk(201)[..118 * 512]);
        assert_eq!(requests.len(), 2);
        assert_eq!(
            (requests[0].nr_segments, requests[0].sector_number),
            (11, 0)
        );
        assert_eq!(
            (requests[1].nr_segments, requests[1].sector_number),
            (4, 88)
        );
        assert_eq!(requests[1].seg[3].last_sect, 5);
        assert_ne!(requests[0].id, requests[1].id);
        // A disk smaller than the limit is read whole.
        let xen = platform("201", "512");
        assert_eq!(
            run(&xen, disk(201), BlkMode::Good, 1 << 20).0.unwrap(),
            disk(201)
        );
    }

    #[test]
    fn a_4k_sector_disk_is_read_in_whole_sectors() {
        let xen = platform("16", "4096");
        let (result, requests) = run(&xen, disk(16), BlkMode::Good, 1000);
        assert_eq!(result.unwrap(), disk(16)[..4096]);
        assert_eq!(requests[0].seg[0].last_sect, 7);
    }

    #[test]
    fn failed_and_short_reads_are_errors() {
        let xen = platform("3", "512");
        let (result, _) = run(&xen, disk(3), BlkMode::Error, 1 << 20);
        assert_eq!(
            result,
            Err(DiskReadError::Io {
                sector: 0,
                status: BLKIF_RSP_ERROR
            })
        );
        assert_eq!(xen.live_grants(), 0);
        // The backend claims 40 sectors and has 30: the read past its end fails.
        let xen = platform("40", "512");
        let (result, requests) = run(&xen, disk(30), BlkMode::Good, 1 << 20);
        assert_eq!(
            result,
            Err(DiskReadError::Io {
                sector: 0,
                status: BLKIF_RSP_ERROR
            })
        );
        assert_eq!(requests.len(), 1);
    }

    #[test]
    fn wrong_answers_are_backend_errors() {
        for mode in [BlkMode::WrongId, BlkMode::WrongOperation, BlkMode::BadIndex] {
            let xen = platform("3", "512");
            let (result, _) = run(&xen, disk(3), mode, 1 << 20);
            assert!(
                matches!(result, Err(DiskReadError::Xen(XenError::Backend(_)))),
                "{mode:?}: {result:?}"
            );
            assert_eq!(xen.live_grants(), 0);
        }
    }

    #[test]
    fn a_backend_that_does_not_answer_or_connect_times_out() {
        let xen = platform("3", "512");
        let (result, requests) = run(&xen, disk(3), BlkMode::Silent, 1 << 20);
        assert!(
            matches!(result, Err(DiskReadError::Xen(XenError::Timeout(_)))),
            "{result:?}"
        );
        assert_eq!(requests.len(), 1);

        let xen = platform("3", "512");
        xen.with(|x| x.triggers.clear());
        let (result, requests) = run(&xen, disk(3), BlkMode::Good, 1 << 20);
        assert!(
            matches!(result, Err(DiskReadError::Xen(XenError::Timeout(_)))),
            "{result:?}"
        );
        assert!(requests.is_empty());
        assert_eq!(xen.live_grants(), 0);
    }

    #[test]
    fn bad_disk_keys_are_refused() {
        for (sectors, sector_size) in [("3", "1000"), ("3", "8192"), ("many", "512"), ("3", "")] {
            let xen = platform(sectors, sector_size);
            let (result, _) = run(&xen, disk(3), BlkMode::Good, 1 << 20);
            assert!(
                matches!(result, Err(DiskReadError::Xen(XenError::Backend(_)))),
                "{sectors} {sector_size}: {result:?}"
            );
        }
        let xen = platform("3", "512");
        xen.remove(&format!("{FRONT}/backend"));
        let (result, _) = run(&xen, disk(3), BlkMode::Good, 1 << 20);
        assert!(matches!(
            result,
            Err(DiskReadError::Xen(XenError::Store { .. }))
        ));
    }

    #[test]
    fn an_empty_disk_reads_as_nothing() {
        let xen = platform("0", "512");
        assert_eq!(
            run(&xen, Vec::new(), BlkMode::Good, 1 << 20).0.unwrap(),
            Vec::<u8>::new()
        );
    }
}
