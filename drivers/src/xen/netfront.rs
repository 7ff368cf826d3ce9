//! Xen netfront (`xen/include/public/io/netif.h`): a NIC whose backend (netback in dom0 or a driver
//! domain) moves frames through two shared rings, implementing [`NetDevice`] like virtio-net.
//!
//! Every buffer is a page of ours granted to the backend once, at bring-up, and kept granted (the
//! backend copies: `request-rx-copy`); the data path only moves slot numbers and ring entries.
//!
//! - Receive: [`RX_BUFFERS`] pages, one per posted `netif_rx_request` (write access for the backend).
//!   The backend answers in the ring slot of the request (netif.h guarantees that; Linux's netfront
//!   relies on it), so a response always names its buffer even when its `id` is wrong. The frame is
//!   handed out where the backend wrote it; the buffer is posted again on the next call.
//! - Transmit: [`TX_BUFFERS`] buffers of 2 KiB, two per page (read-only grants), one `netif_tx_request`
//!   per frame (no scatter-gather: a 1514-byte frame fits), reclaimed by `id` from the responses.
//! - One event channel for both rings; [`NetDevice::flush`] publishes what was queued and notifies
//!   once, and only when the ring's event threshold asks for it.
//!
//! A backend that breaks the protocol (a response producer index beyond what we asked for, a bad id,
//! a frame outside its page, an error status) costs it the frame, a counter and one log line (the
//! first anomaly; later ones at debug level), never a panic. A broken response index stops that ring:
//! nothing more is read from it.
//!
//! # Sharing the hypervisor
//! [`NetDevice`]'s methods take only `&mut self`, so a `Netfront` owns a handle `H` to the grant table
//! and event channels. Two NICs share one hypervisor: `H` is meant to be a cheap handle onto global
//! state (a zero-sized type in the image; `Rc<RefCell<..>>` in the host tests), cloned into each
//! device. xenstore is only needed to connect and disconnect, so it is passed to those calls.
//!
//! # Connecting
//! [`Netfront::new`] reads the device's keys, allocates and grants every page, allocates the event
//! channel and posts the receive buffers. Then [`Netfront::poll_connect`] is called until it returns
//! true (or use [`Netfront::connect`], which loops with the caller's clock and idle hook): it waits for
//! the backend to reach InitWait, writes the ring references, event channel and features, switches us
//! to Connected, and waits for the backend to be Connected; past the caller's deadline it is a
//! [`XenError::Timeout`]. The device may be polled before that; it just receives nothing.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use log::{debug, warn};
use smoltcp::phy::{self, DeviceCapabilities};

use super::frontend::{
    backend_closing, backend_ready_for_rings, close_handshake, read_state, read_value, write_state,
    DevicePaths, Frontend, SharedPage,
};
use super::ring::{FrontRing, RingEntry, RingError};
use super::{EventChannels, GrantRef, Grants, Port, Store, XenError, XenbusState, PAGE_SIZE};
use crate::netdev::{FrameTx, NetDevice};

/// Receive buffers (pages) posted to the backend.
pub const RX_BUFFERS: usize = 128;
/// Transmit buffers (two per page).
pub const TX_BUFFERS: usize = 128;
/// Bytes per transmit buffer: half a page.
const TX_BUFFER_LEN: usize = PAGE_SIZE / 2;
/// The Ethernet MTU smoltcp sees: 1500 bytes of payload plus the 14-byte header.
pub use crate::netdev::ETHERNET_MTU;

/// `netif_tx_request`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxRequest {
    pub gref: GrantRef,
    pub offset: u16,
    pub flags: u16,
    pub id: u16,
    pub size: u16,
}

/// `netif_tx_response`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxResponse {
    pub id: u16,
    pub status: i16,
}

/// `netif_rx_request`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxRequest {
    pub id: u16,
    pub pad: u16,
    pub gref: GrantRef,
}

/// `netif_rx_response`; when it carries extra info, `id`'s low byte is the type and its high byte the
/// flags.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxResponse {
    pub id: u16,
    pub offset: u16,
    pub flags: u16,
    /// The frame's length, or a negative `NETIF_RSP_*`.
    pub status: i16,
}

// SAFETY: repr(C) structs of integers: every bit pattern is a value.
unsafe impl RingEntry for TxRequest {}
// SAFETY: as above.
unsafe impl RingEntry for TxResponse {}
// SAFETY: as above.
unsafe impl RingEntry for RxRequest {}
// SAFETY: as above.
unsafe impl RingEntry for RxResponse {}

/// The transmit ring (256 slots).
pub type TxRing = FrontRing<TxRequest, TxResponse>;
/// The receive ring (256 slots).
pub type RxRing = FrontRing<RxRequest, RxResponse>;

/// `NETRXF_*` and `NETIF_RSP_*` values.
pub mod flags {
    /// The packet's checksum has been validated.
    pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
    /// The protocol checksum field is blank (offload).
    pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
    /// The packet continues in the next slot.
    pub const NETRXF_MORE_DATA: u16 = 1 << 2;
    /// Extra-info slots follow.
    pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
    /// In an extra-info slot's flags: another extra-info slot follows.
    pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;
    /// Success.
    pub const NETIF_RSP_OKAY: i16 = 0;
    /// No response (the answer to an extra-info request).
    pub const NETIF_RSP_NULL: i16 = 1;
    /// The backend failed.
    pub const NETIF_RSP_ERROR: i16 = -1;
    /// The backend dropped the packet.
    pub const NETIF_RSP_DROPPED: i16 = -2;
}

/// What a netfront has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetfrontStats {
    /// Frames received and handed out.
    pub rx_frames: u64,
    /// Received responses dropped: error status, bad id, frame outside its page, multi-slot frames.
    pub rx_dropped: u64,
    /// Frames queued for the backend.
    pub tx_frames: u64,
    /// Frames dropped on transmit (no free buffer, ring full, longer than the MTU).
    pub tx_dropped: u64,
    /// Transmit responses with an error status, or naming no frame in flight.
    pub tx_errors: u64,
    /// Notifications sent to the backend.
    pub notifications: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the backend to probe the device (InitWait) before writing our keys.
    WaitBackend,
    /// Our keys are written and we are Connected: waiting for the backend to be Connected.
    WaitConnected,
    /// Both ends connected.
    Connected,
}

/// Logs a backend anomaly: the first at warning level, later ones at debug level.
fn report(logged: &mut bool, what: core::fmt::Arguments<'_>) {
    if *logged {
        debug!("netfront: {what}");
    } else {
        *logged = true;
        warn!("netfront: {what} (further backend errors are only counted)");
    }
}

struct RxSide {
    ring: RxRing,
    ring_page: SharedPage,
    pages: Vec<SharedPage>,
    /// Which buffer the request at each ring slot (free-running index mod ring size) carries.
    posted_at: Vec<Option<u16>>,
    /// Buffers drained (handed out or dropped) and not yet posted again.
    to_refill: Vec<u16>,
    /// The backend asked to hear about the posted buffers; sent on the next flush.
    notify: bool,
    /// The slots still to skip: extra-info slots, and the rest of a multi-slot frame.
    extras_follow: bool,
    dropping_chain: bool,
    /// The ring's response index went bad: nothing more is read from it.
    broken: bool,
    logged: bool,
    frames: u64,
    dropped: u64,
}

struct TxSide {
    ring: TxRing,
    ring_page: SharedPage,
    pages: Vec<SharedPage>,
    in_flight: Vec<bool>,
    free: Vec<u16>,
    /// Where a frame that cannot be queued is written and forgotten: smoltcp's emitters need a buffer
    /// of the length they asked for.
    scratch: Box<[u8; TX_BUFFER_LEN]>,
    broken: bool,
    logged: bool,
    frames: u64,
    dropped: u64,
    errors: u64,
}

fn slot_u16(slot: usize) -> u16 {
    u16::try_from(slot).unwrap_or(u16::MAX)
}

/// The position of free-running ring index `idx` in a ring of `RxRing::SIZE` slots.
fn rx_ring_slot(idx: u32) -> usize {
    (idx % RxRing::SIZE) as usize
}

impl RxSide {
    fn new() -> Self {
        let ring_page = SharedPage::new();
        // SAFETY: the page is heap-allocated by `SharedPage` and never moves; it lives in this struct
        // beside the ring and is never freed while granted (a granted page is leaked on drop).
        let ring = unsafe { RxRing::init(ring_page.ptr()) };
        Self {
            ring,
            ring_page,
            pages: (0..RX_BUFFERS).map(|_| SharedPage::new()).collect(),
            posted_at: vec![None; RxRing::SIZE as usize],
            to_refill: (0..RX_BUFFERS).map(slot_u16).rev().collect(),
            notify: false,
            extras_follow: false,
            dropping_chain: false,
            broken: false,
            logged: false,
            frames: 0,
            dropped: 0,
        }
    }

    /// Posts every drained buffer and publishes the requests (the notification waits for `flush`).
    fn refill(&mut self) {
        if self.broken {
            return;
        }
        while let Some(&slot) = self.to_refill.last() {
            let Some(gref) = self.pages.get(usize::from(slot)).and_then(SharedPage::gref) else {
                self.to_refill.pop();
                continue;
            };
            let request = RxRequest {
                id: slot,
                pad: 0,
                gref,
            };
            let Some(idx) = self.ring.put_request(request) else {
                break;
            };
            if let Some(entry) = self.posted_at.get_mut(rx_ring_slot(idx)) {
                *entry = Some(slot);
            }
            self.to_refill.pop();
        }
        if self.ring.has_unpushed_requests() {
            self.notify |= self.ring.push_requests_and_check_notify();
        }
    }

    fn fail(&mut self, error: RingError) {
        self.broken = true;
        warn!("netfront: receive ring: {error}; the receive ring is stopped");
    }

    fn drop_frame(&mut self, what: core::fmt::Arguments<'_>) {
        self.dropped += 1;
        report(&mut self.logged, format_args!("receive: dropped {what}"));
    }

    /// Consumes responses until one carries a good frame: its buffer and where the frame lies in it.
    /// Bad ones are dropped and counted; every consumed buffer is queued to be posted again.
    fn next(&mut self) -> Option<(u16, Range<usize>)> {
        if self.broken {
            return None;
        }
        for _ in 0..RxRing::SIZE {
            let (idx, rsp) = match self.ring.take_response() {
                Ok(Some(next)) => next,
                Ok(None) => return None,
                Err(error) => {
                    self.fail(error);
                    return None;
                }
            };
            if let Some(found) = self.accept(idx, rsp) {
                return Some(found);
            }
        }
        None
    }

    fn accept(&mut self, idx: u32, rsp: RxResponse) -> Option<(u16, Range<usize>)> {
        let Some(slot) = self
            .posted_at
            .get_mut(rx_ring_slot(idx))
            .and_then(Option::take)
        else {
            // Responses never outrun the requests we published, each of which recorded its buffer.
            self.drop_frame(format_args!(
                "a response in ring slot {idx} that holds no request"
            ));
            return None;
        };
        self.to_refill.push(slot);
        if self.extras_follow {
            let [_, extra_flags] = rsp.id.to_le_bytes();
            self.extras_follow = extra_flags & flags::XEN_NETIF_EXTRA_FLAG_MORE != 0;
            return None;
        }
        if self.dropping_chain {
            self.dropping_chain = rsp.flags & flags::NETRXF_MORE_DATA != 0;
            return None;
        }
        if rsp.flags & (flags::NETRXF_EXTRA_INFO | flags::NETRXF_MORE_DATA) != 0 {
            self.extras_follow = rsp.flags & flags::NETRXF_EXTRA_INFO != 0;
            self.dropping_chain = rsp.flags & flags::NETRXF_MORE_DATA != 0;
            self.drop_frame(format_args!(
                "a frame with flags {:#x} (extra info or several slots: not negotiated)",
                rsp.flags
            ));
            return None;
        }
        if rsp.id != slot {
            self.drop_frame(format_args!(
                "a response with id {} in the slot of request {slot}",
                rsp.id
            ));
            return None;
        }
        let Ok(len) = usize::try_from(rsp.status) else {
            self.drop_frame(format_args!("a frame with error status {}", rsp.status));
            return None;
        };
        let start = usize::from(rsp.offset);
        let Some(end) = start.checked_add(len).filter(|&end| end <= PAGE_SIZE) else {
            self.drop_frame(format_args!(
                "a {len}-byte frame at offset {start}: beyond its page"
            ));
            return None;
        };
        if len == 0 {
            self.drop_frame(format_args!("an empty frame"));
            return None;
        }
        self.frames += 1;
        Some((slot, start..end))
    }
}

impl TxSide {
    fn new() -> Self {
        let ring_page = SharedPage::new();
        // SAFETY: as for the receive ring in `RxSide::new`.
        let ring = unsafe { TxRing::init(ring_page.ptr()) };
        Self {
            ring,
            ring_page,
            pages: (0..TX_BUFFERS.div_ceil(2))
                .map(|_| SharedPage::new())
                .collect(),
            in_flight: vec![false; TX_BUFFERS],
            free: (0..TX_BUFFERS).map(slot_u16).rev().collect(),
            scratch: Box::new([0; TX_BUFFER_LEN]),
            broken: false,
            logged: false,
            frames: 0,
            dropped: 0,
            errors: 0,
        }
    }

    /// Takes the backend's transmit responses and frees their buffers.
    fn reclaim(&mut self) {
        if self.broken {
            return;
        }
        for _ in 0..TxRing::SIZE {
            let rsp = match self.ring.take_response() {
                Ok(Some((_, rsp))) => rsp,
                Ok(None) => return,
                Err(error) => {
                    self.broken = true;
                    warn!("netfront: transmit ring: {error}; the transmit ring is stopped");
                    return;
                }
            };
            match self.in_flight.get_mut(usize::from(rsp.id)) {
                Some(in_flight @ true) => {
                    *in_flight = false;
                    self.free.push(rsp.id);
                    if rsp.status < 0 {
                        self.errors += 1;
                        report(
                            &mut self.logged,
                            format_args!(
                                "transmit: frame {} failed with status {}",
                                rsp.id, rsp.status
                            ),
                        );
                    }
                }
                _ => {
                    self.errors += 1;
                    report(
                        &mut self.logged,
                        format_args!("transmit: a response for id {}, not in flight", rsp.id),
                    );
                }
            }
        }
    }

    fn can_send(&self) -> bool {
        !self.free.is_empty() && !self.ring.is_full()
    }

    /// Lets `f` write a frame of at most `max` bytes (clamped to the MTU) into a free buffer and
    /// queues it with the length `f` returns (0 queues nothing). Without a free buffer `f` writes into
    /// scratch space and the frame is dropped and counted.
    fn emit_sized<R>(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> (R, usize)) -> (R, bool) {
        let max = max.min(ETHERNET_MTU);
        if self.free.is_empty() {
            self.reclaim();
        }
        let slot = if self.ring.is_full() {
            None
        } else {
            self.free.pop()
        };
        let target = slot.and_then(|slot| {
            let page = self.pages.get_mut(usize::from(slot) / 2)?;
            let gref = page.gref()?;
            let offset = (usize::from(slot) % 2) * TX_BUFFER_LEN;
            // SAFETY: the backend only has read access to transmit pages, and this half-page is not
            // in flight (its slot was free).
            let buffer = unsafe { page.range_mut(offset..offset + max) }?;
            Some((slot, gref, offset, buffer))
        });
        let Some((slot, gref, offset, buffer)) = target else {
            self.free.extend(slot);
            self.dropped += 1;
            return (f(self.scratch.get_mut(..max).unwrap_or(&mut [])).0, false);
        };
        let (result, len) = f(buffer);
        let len = len.min(max);
        if len == 0 {
            self.free.push(slot);
            return (result, false);
        }
        let request = TxRequest {
            gref,
            offset: u16::try_from(offset).unwrap_or(0),
            flags: 0,
            id: slot,
            size: u16::try_from(len).unwrap_or(0),
        };
        match (
            self.in_flight.get_mut(usize::from(slot)),
            self.ring.put_request(request),
        ) {
            (Some(in_flight), Some(_)) => {
                *in_flight = true;
                self.frames += 1;
                (result, true)
            }
            _ => {
                // Unreachable: the slot is in range and the ring had room.
                self.free.push(slot);
                self.dropped += 1;
                (result, false)
            }
        }
    }
}

/// Parses `00:16:3e:01:02:03`.
fn parse_mac(value: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = value.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A Xen network frontend.
pub struct Netfront<H: Grants + EventChannels> {
    hv: H,
    paths: DevicePaths,
    mac: [u8; 6],
    port: Port,
    phase: Phase,
    rx: RxSide,
    tx: TxSide,
    /// A notification owed to the backend (the ring asked for one), sent by the next flush once
    /// connected.
    notify_pending: bool,
    notifications: u64,
}

impl<H: Grants + EventChannels> Frontend<H> for Netfront<H> {
    /// Sets up vif `index` (`device/vif/<index>`): reads its backend, backend-id and MAC, allocates
    /// and grants the rings and every buffer to the backend's domain, allocates the event channel
    /// (masked) and posts the receive buffers. Then drive [`poll_connect`](Self::poll_connect).
    fn new<S: Store + ?Sized>(hv: H, store: &mut S, index: u32) -> Result<Self, XenError> {
        let paths = DevicePaths::read(store, "vif", index)?;
        let mac_path = paths.front("mac");
        let mac_value = read_value(store, &mac_path)?;
        let mac = parse_mac(&mac_value).ok_or_else(|| {
            XenError::Backend(format!("{mac_path} is {mac_value:?}, not a MAC address"))
        })?;
        let mut net = Self {
            hv,
            paths,
            mac,
            port: 0,
            phase: Phase::WaitBackend,
            rx: RxSide::new(),
            tx: TxSide::new(),
            notify_pending: false,
            notifications: 0,
        };
        if let Err(error) = net.grant_all() {
            net.end_grants();
            return Err(error);
        }
        net.hv.set_unmasked(net.port, false);
        net.rx.refill();
        Ok(net)
    }

    /// Ends every grant; returns how many the backend still holds (those pages are leaked).
    fn end_grants(&mut self) -> usize {
        let pages = [&mut self.tx.ring_page, &mut self.rx.ring_page]
            .into_iter()
            .chain(self.rx.pages.iter_mut())
            .chain(self.tx.pages.iter_mut());
        super::frontend::end_all_grants(&mut self.hv, pages)
    }

    /// One step of the xenbus handshake; true once both ends are Connected. Call it until then (it
    /// only reads xenstore and maybe writes our keys); `now` and `deadline` are in any one monotonic
    /// unit: at or past the deadline without a connection it is [`XenError::Timeout`]. A backend
    /// that starts closing, or lacks `feature-rx-copy`, is a [`XenError::Backend`].
    fn poll_connect<S: Store + ?Sized>(
        &mut self,
        store: &mut S,
        now: u64,
        deadline: u64,
    ) -> Result<bool, XenError> {
        if self.phase == Phase::WaitBackend
            && backend_ready_for_rings(read_state(store, &self.paths.backend))
        {
            self.check_backend_features(store)?;
            self.write_keys(store)?;
            write_state(store, &self.paths.frontend, XenbusState::Connected)?;
            self.phase = Phase::WaitConnected;
        }
        if self.phase == Phase::WaitConnected {
            let state = read_state(store, &self.paths.backend);
            if state == Some(XenbusState::Connected) {
                self.phase = Phase::Connected;
                // The backend may have missed what was published before it connected.
                self.notify_pending = true;
                self.flush();
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
            return Err(XenError::Timeout("the vif backend to connect"));
        }
        Ok(false)
    }
}

impl<H: Grants + EventChannels> Netfront<H> {
    fn grant_all(&mut self) -> Result<(), XenError> {
        let domid = self.paths.backend_id;
        let hv = &mut self.hv;
        self.tx.ring_page.grant(hv, domid, false)?;
        self.rx.ring_page.grant(hv, domid, false)?;
        for page in &mut self.rx.pages {
            page.grant(hv, domid, false)?;
        }
        for page in &mut self.tx.pages {
            page.grant(hv, domid, true)?;
        }
        self.port = hv.alloc_unbound(domid)?;
        Ok(())
    }

    fn check_backend_features<S: Store + ?Sized>(&self, store: &mut S) -> Result<(), XenError> {
        let path = self.paths.back("feature-rx-copy");
        match read_value(store, &path).as_deref() {
            Ok("1") => Ok(()),
            _ => Err(XenError::Backend(format!(
                "{path} is not 1: the backend cannot copy received frames"
            ))),
        }
    }

    fn write_keys<S: Store + ?Sized>(&self, store: &mut S) -> Result<(), XenError> {
        let not_granted = || XenError::Backend(String::from("ring page not granted"));
        let tx_ref = self.tx.ring_page.gref().ok_or_else(not_granted)?;
        let rx_ref = self.rx.ring_page.gref().ok_or_else(not_granted)?;
        let keys = [
            ("tx-ring-ref", format!("{tx_ref}")),
            ("rx-ring-ref", format!("{rx_ref}")),
            ("event-channel", format!("{}", self.port)),
            ("request-rx-copy", String::from("1")),
            ("feature-rx-notify", String::from("1")),
            ("feature-sg", String::from("0")),
            ("feature-gso-tcpv4", String::from("0")),
            ("feature-gso-tcpv6", String::from("0")),
            // The backend fills in checksums: our stack verifies every one it receives.
            ("feature-no-csum-offload", String::from("1")),
            ("feature-ipv6-csum-offload", String::from("0")),
        ];
        for (key, value) in keys {
            store.write(&self.paths.front(key), &value)?;
        }
        Ok(())
    }

    /// Disconnects: masks the event channel, switches us to Closing, waits (up to `timeout` after
    /// the first `now()`, calling `idle` in between) for the backend to close or vanish, switches us
    /// to Closed and ends every grant. Pages the backend still maps are leaked, never freed (an
    /// error says how many).
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

    /// Whether the handshake has completed.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// The device's xenstore paths and backend domain.
    pub fn paths(&self) -> &DevicePaths {
        &self.paths
    }

    /// The event channel shared by both rings.
    pub fn port(&self) -> Port {
        self.port
    }

    /// What the device has counted.
    pub fn stats(&self) -> NetfrontStats {
        NetfrontStats {
            rx_frames: self.rx.frames,
            rx_dropped: self.rx.dropped,
            tx_frames: self.tx.frames,
            tx_dropped: self.tx.dropped,
            tx_errors: self.tx.errors,
            notifications: self.notifications,
        }
    }

    /// Takes received frames until `take` declines one: its buffer and where the frame lies in it.
    fn next_frame(
        &mut self,
        take: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Option<(u16, Range<usize>)> {
        self.tx.reclaim();
        for _ in 0..RxRing::SIZE {
            self.rx.refill();
            let (slot, range) = self.rx.next()?;
            let page = self.rx.pages.get_mut(usize::from(slot))?;
            // SAFETY: the backend answered the request for this buffer; it is posted again only on
            // the next call into the driver.
            let frame = unsafe { page.range_mut(range.clone()) }?;
            if !take(frame) {
                return Some((slot, range));
            }
        }
        None
    }
}

/// A received frame, borrowed from its receive buffer until consumed.
pub struct NetfrontRx<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for NetfrontRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Permission to queue frames on the transmit ring (published and notified by `flush`).
pub struct NetfrontTx<'a> {
    tx: &'a mut TxSide,
}

impl FrameTx for NetfrontTx<'_> {
    fn emit_sized<R>(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> (R, usize)) -> (R, bool) {
        self.tx.emit_sized(max, f)
    }

    fn count_drop(&mut self) {
        self.tx.dropped += 1;
    }
}

impl phy::TxToken for NetfrontTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, len: usize, f: F) -> R {
        FrameTx::emit(&mut self, len, f)
    }
}

impl<H: Grants + EventChannels> NetDevice for Netfront<H> {
    type Rx<'a>
        = NetfrontRx<'a>
    where
        Self: 'a;
    type Tx<'a>
        = NetfrontTx<'a>
    where
        Self: 'a;

    fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    fn capabilities(&self) -> DeviceCapabilities {
        crate::netdev::ethernet_capabilities(TX_BUFFERS)
    }

    fn receive_unless(
        &mut self,
        take: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Option<(Self::Rx<'_>, Self::Tx<'_>)> {
        let (slot, range) = self.next_frame(take)?;
        let page = self.rx.pages.get(usize::from(slot))?;
        // SAFETY: as in `next_frame`: the buffer is not posted until the next call.
        let frame = unsafe { page.range(range) }?;
        Some((NetfrontRx { frame }, NetfrontTx { tx: &mut self.tx }))
    }

    fn receive_mut(&mut self) -> Option<(&mut [u8], Self::Tx<'_>)> {
        let (slot, range) = self.next_frame(&mut |_| false)?;
        let page = self.rx.pages.get_mut(usize::from(slot))?;
        // SAFETY: as in `next_frame`: the buffer is not posted until the next call.
        let frame = unsafe { page.range_mut(range) }?;
        Some((frame, NetfrontTx { tx: &mut self.tx }))
    }

    fn transmit(&mut self) -> Option<Self::Tx<'_>> {
        self.tx.reclaim();
        if !self.tx.can_send() {
            return None;
        }
        Some(NetfrontTx { tx: &mut self.tx })
    }

    fn rx_pending(&self) -> bool {
        !self.rx.broken && self.rx.ring.unconsumed_responses().is_ok_and(|n| n > 0)
    }

    fn refill(&mut self) {
        self.rx.refill();
    }

    fn flush(&mut self) {
        self.rx.refill();
        let tx_notify = self.tx.ring.push_requests_and_check_notify();
        let rx_notify = core::mem::take(&mut self.rx.notify);
        self.notify_pending |= tx_notify || rx_notify;
        if self.notify_pending && self.phase == Phase::Connected {
            self.notify_pending = false;
            self.notifications += 1;
            self.hv.notify(self.port);
        }
    }

    fn ack_interrupt(&mut self) {
        self.hv.take_pending(self.port);
    }

    fn set_interrupts(&mut self, on: bool) {
        self.hv.set_unmasked(self.port, on);
        if on {
            // Ask for an event at the next received frame (checked by the caller's `rx_pending`).
            if let Err(error) = self.rx.ring.final_check_for_responses() {
                self.rx.fail(error);
            }
        }
    }

    fn tx_dropped(&self) -> u64 {
        self.tx.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::fake::{Fake, FakeNetback};
    use crate::xen::ring::layout;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use smoltcp::phy::RxToken;

    const FRONT: &str = "device/vif/0";
    const BACK: &str = "/local/domain/0/backend/vif/7/0";

    /// A fake platform with vif 0 and a backend in InitWait that connects when we do.
    fn platform() -> Fake {
        let xen = Fake::new();
        xen.set(&format!("{FRONT}/backend"), BACK);
        xen.set(&format!("{FRONT}/backend-id"), "0");
        xen.set(&format!("{FRONT}/mac"), "00:16:3e:5e:6c:0a");
        xen.set(&format!("{FRONT}/state"), "1");
        xen.set(&format!("{BACK}/state"), "2");
        xen.set(&format!("{BACK}/feature-rx-copy"), "1");
        xen.on_write(
            &format!("{FRONT}/state"),
            "4",
            &[(&format!("{BACK}/state"), "4")],
        );
        xen.on_write(
            &format!("{FRONT}/state"),
            "5",
            &[(&format!("{BACK}/state"), "6")],
        );
        xen
    }

    /// A clock that advances one unit per reading.
    fn clock() -> impl FnMut() -> u64 {
        let mut t = 0;
        move || {
            t += 1;
            t
        }
    }

    fn connected() -> (Fake, Netfront<Fake>, FakeNetback) {
        let xen = platform();
        let mut store = xen.clone();
        let net = Netfront::connect(xen.clone(), &mut store, 0, &mut clock(), 100, &mut || {})
            .expect("connects");
        let back = FakeNetback::attach(&xen, FRONT);
        (xen, net, back)
    }

    fn frame(tag: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| tag ^ (i as u8)).collect()
    }

    fn receive_one(net: &mut Netfront<Fake>) -> Option<Vec<u8>> {
        let (rx, _tx) = net.receive_unless(&mut |_| false)?;
        Some(rx.consume(|bytes| bytes.to_vec()))
    }

    #[test]
    fn connects_through_xenstore() {
        let (xen, net, back) = connected();
        assert!(net.is_connected());
        assert_eq!(net.mac_address(), [0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x0a]);
        assert_eq!(net.paths().backend, BACK);
        let key = |name: &str| xen.get(&format!("{FRONT}/{name}")).unwrap();
        assert_eq!(key("state"), "4");
        assert_eq!(key("request-rx-copy"), "1");
        assert_eq!(key("feature-rx-notify"), "1");
        assert_eq!(key("feature-sg"), "0");
        assert_eq!(key("feature-gso-tcpv4"), "0");
        assert_eq!(key("feature-gso-tcpv6"), "0");
        assert_eq!(key("feature-no-csum-offload"), "1");
        assert_eq!(key("event-channel"), net.port().to_string());
        // Both rings and every buffer granted to the backend; transmit buffers read-only.
        assert_eq!(xen.live_grants(), 2 + RX_BUFFERS + TX_BUFFERS / 2);
        let readonly = xen.with(|x| x.grants.values().filter(|g| g.readonly).count());
        assert_eq!(readonly, TX_BUFFERS / 2);
        // Every receive buffer is posted; the event channel starts masked.
        assert_eq!(back.rx_posted(), RX_BUFFERS as u32);
        assert!(!xen.port(net.port()).unmasked);
        // Connecting kicked the backend once.
        assert_eq!(xen.port(net.port()).kicks, 1);
    }

    #[test]
    fn waits_for_the_backend_to_probe_before_writing_keys() {
        let xen = platform();
        xen.set(&format!("{BACK}/state"), "1");
        let mut store = xen.clone();
        let mut net = Netfront::new(xen.clone(), &mut store, 0).unwrap();
        assert!(!net.poll_connect(&mut store, 0, 10).unwrap());
        assert!(xen.get(&format!("{FRONT}/tx-ring-ref")).is_none());
        assert_eq!(xen.get(&format!("{FRONT}/state")).unwrap(), "1");
        xen.set(&format!("{BACK}/state"), "2");
        assert!(net.poll_connect(&mut store, 1, 10).unwrap());
    }

    #[test]
    fn a_backend_that_never_connects_times_out_and_the_grants_end() {
        let xen = platform();
        xen.with(|x| x.triggers.clear());
        let mut store = xen.clone();
        let mut idles = 0;
        let error = Netfront::connect(xen.clone(), &mut store, 0, &mut clock(), 50, &mut || {
            idles += 1
        })
        .err()
        .unwrap();
        assert!(matches!(error, XenError::Timeout(_)), "{error:?}");
        assert!(idles > 0 && idles < 60);
        assert_eq!(xen.live_grants(), 0);
    }

    #[test]
    fn a_backend_that_closes_while_connecting_or_cannot_copy_is_refused() {
        let xen = platform();
        xen.with(|x| x.triggers.clear());
        xen.on_write(
            &format!("{FRONT}/state"),
            "4",
            &[(&format!("{BACK}/state"), "5")],
        );
        let mut store = xen.clone();
        let error = Netfront::connect(xen.clone(), &mut store, 0, &mut clock(), 50, &mut || {})
            .err()
            .unwrap();
        assert!(matches!(error, XenError::Backend(_)), "{error:?}");

        let xen = platform();
        xen.remove(&format!("{BACK}/feature-rx-copy"));
        let mut store = xen.clone();
        let error = Netfront::connect(xen.clone(), &mut store, 0, &mut clock(), 50, &mut || {})
            .err()
            .unwrap();
        assert!(matches!(error, XenError::Backend(_)), "{error:?}");
        assert_eq!(xen.live_grants(), 0);
    }

    #[test]
    fn missing_or_bad_device_keys_are_errors() {
        let xen = platform();
        xen.set(&format!("{FRONT}/mac"), "00:16:3e:5e:6c");
        assert!(Netfront::new(xen.clone(), &mut xen.clone(), 0).is_err());
        xen.set(&format!("{FRONT}/backend-id"), "dom0");
        assert!(Netfront::new(xen.clone(), &mut xen.clone(), 0).is_err());
        assert!(matches!(
            Netfront::new(xen.clone(), &mut xen.clone(), 1).err(),
            Some(XenError::Store { .. })
        ));
        let xen = platform();
        xen.with(|x| x.grant_limit = 10);
        assert_eq!(
            Netfront::new(xen.clone(), &mut xen.clone(), 0).err(),
            Some(XenError::GrantTableFull)
        );
        assert_eq!(xen.live_grants(), 0, "a failed bring-up ends its grants");
    }

    #[test]
    fn frames_flow_both_ways_in_place() {
        let (xen, mut net, mut back) = connected();
        assert_eq!(receive_one(&mut net), None);
        for tag in 1..=4 {
            assert!(back.deliver(&frame(tag, 60 + usize::from(tag))));
        }
        assert!(net.rx_pending());
        // The first frame is consumed by the fast path in place; the second is returned.
        let mut taken = Vec::new();
        let (rx, _tx) = net
            .receive_unless(&mut |bytes| {
                if taken.is_empty() {
                    taken.push(bytes.to_vec());
                    true
                } else {
                    false
                }
            })
            .unwrap();
        assert_eq!(rx.consume(|bytes| bytes.to_vec()), frame(2, 62));
        assert_eq!(taken, [frame(1, 61)]);
        // The third is rewritten where it lies and answered with two frames.
        {
            let (bytes, mut tx) = net.receive_mut().unwrap();
            assert_eq!(bytes, &frame(3, 63)[..]);
            bytes[0] = 0xee;
            assert!(tx.send(bytes));
            assert!(tx.send_with(100, |buffer| {
                buffer[..10].fill(7);
                10
            }));
            assert!(!tx.send_with(100, |_| 0), "0 bytes queue nothing");
        }
        assert_eq!(receive_one(&mut net), Some(frame(4, 64)));
        assert_eq!(receive_one(&mut net), None);
        // Nothing reaches the backend before the flush; then everything, with one kick.
        assert!(back.take_tx_requests().is_empty());
        let kicks = xen.port(net.port()).kicks;
        net.flush();
        assert_eq!(xen.port(net.port()).kicks, kicks + 1);
        let mut expected = frame(3, 63);
        expected[0] = 0xee;
        assert_eq!(back.take_tx(), [expected, [7u8; 10].to_vec()]);
        // Every receive buffer went back to the backend.
        assert_eq!(back.rx_posted(), RX_BUFFERS as u32);
        let stats = net.stats();
        assert_eq!(
            (stats.rx_frames, stats.tx_frames, stats.rx_dropped),
            (4, 2, 0)
        );
        // smoltcp's one-shot form.
        let mut tx = net.transmit().unwrap();
        assert_eq!(
            FrameTx::emit(&mut tx, 2000, |buffer| buffer.len()),
            ETHERNET_MTU
        );
        net.flush();
        assert_eq!(back.take_tx()[0].len(), ETHERNET_MTU);
    }

    #[test]
    fn notifications_are_batched_and_follow_the_ring_thresholds() {
        let (xen, mut net, mut back) = connected();
        let kicks = xen.port(net.port()).kicks;
        {
            let mut tx = net.transmit().unwrap();
            for tag in 0..10 {
                assert!(tx.send(&frame(tag, 100)));
            }
        }
        net.flush();
        net.flush();
        assert_eq!(xen.port(net.port()).kicks, kicks + 1, "one kick per burst");
        // The backend has not re-armed req_event: more frames need no kick until it does.
        back.take_tx();
        net.transmit().unwrap().send(&frame(1, 60));
        net.flush();
        assert_eq!(xen.port(net.port()).kicks, kicks + 1);
        back.take_tx();
        back.tx.final_check_for_requests().unwrap();
        net.transmit().unwrap().send(&frame(1, 60));
        net.flush();
        assert_eq!(xen.port(net.port()).kicks, kicks + 2);
    }

    #[test]
    fn interrupts_unmask_and_arm_the_receive_ring() {
        let (xen, mut net, mut back) = connected();
        let port = net.port();
        net.set_interrupts(true);
        assert!(xen.port(port).unmasked);
        assert!(!net.rx_pending());
        back.deliver(&frame(1, 60));
        assert!(xen.port(port).pending, "rsp_event asked for an event");
        assert!(net.rx_pending());
        net.ack_interrupt();
        assert!(!xen.port(port).pending);
        net.set_interrupts(false);
        assert!(!xen.port(port).unmasked);
        assert_eq!(receive_one(&mut net), Some(frame(1, 60)));
        // Not re-armed while busy: the next frame raises no event.
        back.deliver(&frame(2, 60));
        assert!(!xen.port(port).pending);
        assert!(net.rx_pending());
    }

    #[test]
    fn a_full_transmit_queue_drops_and_counts() {
        let (_xen, mut net, mut back) = connected();
        {
            let mut tx = net.transmit().unwrap();
            for tag in 0..TX_BUFFERS {
                assert!(tx.send(&frame(tag as u8, 60)), "frame {tag}");
            }
            assert!(!tx.send(&frame(0, 60)));
            let written = FrameTx::emit(&mut tx, 60, |buffer| buffer.len());
            assert_eq!(written, 60, "a dropped frame is written to scratch space");
            assert!(!tx.send(&[0; ETHERNET_MTU + 1]));
        }
        assert_eq!(net.tx_dropped(), 3);
        assert!(net.transmit().is_none());
        net.flush();
        assert_eq!(back.take_tx().len(), TX_BUFFERS);
        assert!(net.transmit().unwrap().send(&frame(9, 60)));
        assert_eq!(net.stats().tx_frames, TX_BUFFERS as u64 + 1);
    }

    #[test]
    fn bad_receive_responses_are_dropped_and_their_buffers_recycled() {
        let (_xen, mut net, mut back) = connected();
        let bad = [
            // An id that is not the slot's request.
            RxResponse {
                id: 999,
                offset: 0,
                flags: 0,
                status: 60,
            },
            // A frame past the end of its page.
            RxResponse {
                id: 0,
                offset: 4000,
                flags: 0,
                status: 200,
            },
            RxResponse {
                id: 0,
                offset: 0,
                flags: 0,
                status: i16::MAX,
            },
            // Error statuses.
            RxResponse {
                id: 0,
                offset: 0,
                flags: 0,
                status: flags::NETIF_RSP_ERROR,
            },
            RxResponse {
                id: 0,
                offset: 0,
                flags: 0,
                status: i16::MIN,
            },
            RxResponse {
                id: 0,
                offset: 0,
                flags: 0,
                status: 0,
            },
        ];
        for response in bad {
            back.deliver_with(|request| {
                let id = if response.id == 999 { 999 } else { request.id };
                (RxResponse { id, ..response }, Vec::new())
            });
        }
        back.deliver(&frame(5, 80));
        assert_eq!(receive_one(&mut net), Some(frame(5, 80)));
        assert_eq!(net.stats().rx_dropped, bad.len() as u64);
        net.flush();
        assert_eq!(back.rx_posted(), RX_BUFFERS as u32, "no buffer lost");
        // The ring keeps working across many more frames than it has buffers.
        for round in 0..3 * RX_BUFFERS {
            assert!(back.deliver(&frame(round as u8, 64)));
            assert_eq!(receive_one(&mut net), Some(frame(round as u8, 64)));
        }
    }

    #[test]
    fn multi_slot_frames_and_extra_info_are_skipped() {
        let (_xen, mut net, mut back) = connected();
        let respond = |flags: u16, id_override: Option<u16>| {
            move |request: RxRequest| {
                (
                    RxResponse {
                        id: id_override.unwrap_or(request.id),
                        offset: 0,
                        flags,
                        status: 60,
                    },
                    Vec::new(),
                )
            }
        };
        // A frame with two extra-info slots (the first says more follow) and a second fragment.
        back.deliver_with(respond(
            flags::NETRXF_EXTRA_INFO | flags::NETRXF_MORE_DATA,
            None,
        ));
        back.deliver_with(respond(
            0,
            Some(u16::from_le_bytes([1, flags::XEN_NETIF_EXTRA_FLAG_MORE])),
        ));
        back.deliver_with(respond(0, Some(u16::from_le_bytes([1, 0]))));
        back.deliver_with(respond(0, None));
        back.deliver(&frame(3, 70));
        assert_eq!(receive_one(&mut net), Some(frame(3, 70)));
        assert_eq!(net.stats().rx_dropped, 1);
        net.flush();
        assert_eq!(back.rx_posted(), RX_BUFFERS as u32);
    }

    #[test]
    fn a_response_index_beyond_the_ring_stops_the_ring_without_a_panic() {
        let (xen, mut net, mut back) = connected();
        back.deliver(&frame(1, 60));
        // rsp_prod far past the 128 requests posted.
        xen.poke_ring(back.rx_ref, layout::RSP_PROD, 1000);
        assert!(!net.rx_pending());
        assert_eq!(receive_one(&mut net), None);
        assert!(net.receive_mut().is_none());
        net.set_interrupts(true);
        net.flush();
        assert_eq!(receive_one(&mut net), None);
        // The transmit side still works; then its ring goes bad too.
        assert!(net.transmit().unwrap().send(&frame(2, 60)));
        net.flush();
        assert_eq!(back.take_tx(), [frame(2, 60)]);
        xen.poke_ring(back.tx_ref, layout::RSP_PROD, u32::MAX);
        let mut sent = 0;
        if let Some(mut tx) = net.transmit() {
            while tx.send(&frame(3, 60)) {
                sent += 1;
            }
        }
        // The answered frame was not reclaimed before the ring broke: its buffer is lost with it.
        assert_eq!(
            sent,
            TX_BUFFERS - 1,
            "no buffer comes back from a broken ring"
        );
        assert!(net.transmit().is_none());
    }

    #[test]
    fn bad_transmit_responses_are_counted() {
        let (_xen, mut net, mut back) = connected();
        net.transmit().unwrap().send(&frame(1, 60));
        net.transmit().unwrap().send(&frame(2, 60));
        net.flush();
        let requests = back.take_tx_requests();
        assert_eq!(requests.len(), 2);
        back.respond_tx([
            TxResponse {
                id: 5000,
                status: 0,
            },
            TxResponse {
                id: requests[1].0.id,
                status: flags::NETIF_RSP_ERROR,
            },
        ]);
        assert!(net.transmit().is_some());
        assert_eq!(net.stats().tx_errors, 2);
    }

    #[test]
    fn shutdown_closes_and_ends_every_grant() {
        let (xen, net, back) = connected();
        drop(back);
        net.shutdown(&mut xen.clone(), &mut clock(), 50, &mut || {})
            .unwrap();
        assert_eq!(xen.get(&format!("{FRONT}/state")).unwrap(), "6");
        assert_eq!(xen.live_grants(), 0);

        // A backend that keeps a page mapped: that page is leaked, and said so.
        let (xen, net, back) = connected();
        xen.with(|x| x.grants.get_mut(&back.rx_ref).unwrap().mapped = true);
        drop(back);
        let error = net.shutdown(&mut xen.clone(), &mut clock(), 50, &mut || {});
        assert!(matches!(error, Err(XenError::Backend(_))), "{error:?}");
        assert_eq!(xen.live_grants(), 1);
    }

    #[test]
    fn two_netfronts_share_one_hypervisor_handle() {
        let xen = platform();
        xen.set("device/vif/1/backend", "/local/domain/0/backend/vif/7/1");
        xen.set("device/vif/1/backend-id", "0");
        xen.set("device/vif/1/mac", "00:16:3e:5e:6c:0b");
        xen.set("/local/domain/0/backend/vif/7/1/state", "2");
        xen.set("/local/domain/0/backend/vif/7/1/feature-rx-copy", "1");
        xen.on_write(
            "device/vif/1/state",
            "4",
            &[("/local/domain/0/backend/vif/7/1/state", "4")],
        );
        let mut store = xen.clone();
        let a = Netfront::connect(xen.clone(), &mut store, 0, &mut clock(), 9, &mut || {}).unwrap();
        let b = Netfront::connect(xen.clone(), &mut store, 1, &mut clock(), 9, &mut || {}).unwrap();
        assert_ne!(a.port(), b.port());
        assert_ne!(a.mac_address(), b.mac_address());
        assert_eq!(xen.live_grants(), 2 * (2 + RX_BUFFERS + TX_BUFFERS / 2));
    }

    #[test]
    fn mac_addresses_parse() {
        assert_eq!(
            parse_mac("00:16:3e:5e:6c:0a"),
            Some([0, 0x16, 0x3e, 0x5e, 0x6c, 0x0a])
        );
        assert_eq!(
            parse_mac("0:16:3E:5e:6c:a"),
            Some([0, 0x16, 0x3e, 0x5e, 0x6c, 0x0a])
        );
        for bad in [
            "",
            "00:16:3e:5e:6c",
            "00:16:3e:5e:6c:0a:00",
            "00:16:3e:5e:6c:100",
            "00::3e:5e:6c:0a",
            "0x:16:3e:5e:6c:0a",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
