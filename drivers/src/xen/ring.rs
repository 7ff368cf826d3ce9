//! The Xen shared-ring protocol (`xen/include/public/io/ring.h`), both ends.
//!
//! A shared ring is one page: four 32-bit indices (`req_prod`, `req_event`, `rsp_prod`, `rsp_event`),
//! padding up to byte 64, then the entries. An entry is the union of a request and a response; the ring
//! holds the largest power of two of entries that fits the rest of the page. Indices are free-running
//! 32-bit counters, masked to find a slot.
//!
//! The front end produces requests and consumes responses ([`FrontRing`]); the back end the reverse
//! ([`BackRing`]). The page is shared with another domain that may write anything into it at any time,
//! so every index read from the other side is checked against what we produced before it is used, and
//! a bad one is a [`RingError`] (never a panic or an access outside the page). Entries are copied out
//! of the page once (volatile reads) and only the copy is looked at.
//!
//! Ordering follows the C macros: `xen_wmb` before publishing a producer index (a release store),
//! `xen_rmb` after reading the other side's producer index (an acquire load), `xen_mb` between
//! publishing an index and reading the other side's event threshold (a sequentially consistent fence).

use alloc::format;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use super::{Page, XenError, PAGE_SIZE};

/// Byte offsets of the shared ring header's fields (`struct <name>_sring`).
pub mod layout {
    /// The front end's request producer index.
    pub const REQ_PROD: usize = 0;
    /// The back end wants a notification when `req_prod` passes this.
    pub const REQ_EVENT: usize = 4;
    /// The back end's response producer index.
    pub const RSP_PROD: usize = 8;
    /// The front end wants a notification when `rsp_prod` passes this.
    pub const RSP_EVENT: usize = 12;
    /// Where the entries start (the header is padded to 64 bytes).
    pub const ENTRIES: usize = 64;
}

/// A request or response type that may live in a shared ring.
///
/// # Safety
/// The type must be `#[repr(C)]` plain data made of integers only: every bit pattern is a valid value
/// (a misbehaving peer writes whatever it likes into the page).
pub unsafe trait RingEntry: Copy {}

/// The size of one ring slot: the union of the request and the response.
const fn entry_size(req: usize, rsp: usize) -> usize {
    if req > rsp {
        req
    } else {
        rsp
    }
}

/// The number of slots of a ring whose entries are `entry` bytes: the largest power of two that fits
/// the page after the header (`__RING_SIZE`).
pub const fn ring_size(entry: usize) -> u32 {
    if entry == 0 {
        return 0;
    }
    let fit = (PAGE_SIZE - layout::ENTRIES) / entry;
    if fit == 0 {
        return 0;
    }
    let mut size = 1usize;
    while size * 2 <= fit {
        size *= 2;
    }
    size as u32
}

/// The peer broke the ring protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingError {
    /// Which index was bad: "rsp_prod" or "req_prod".
    pub index: &'static str,
    /// The value the peer published.
    pub value: u32,
    /// Our consumer index at the time.
    pub consumer: u32,
    /// How many entries the peer could legitimately have produced past `consumer`.
    pub allowed: u32,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is {} entries past our consumer index {} (at most {} allowed)",
            self.index,
            self.value,
            self.value.wrapping_sub(self.consumer),
            self.consumer,
            self.allowed
        )
    }
}

impl From<RingError> for XenError {
    fn from(error: RingError) -> Self {
        XenError::Backend(format!("shared ring: {error}"))
    }
}

/// The shared page, accessed only through raw pointers (the other domain writes it concurrently).
struct Shared<Req, Rsp> {
    page: NonNull<Page>,
    _entries: PhantomData<(Req, Rsp)>,
}

impl<Req: RingEntry, Rsp: RingEntry> Shared<Req, Rsp> {
    const ENTRY: usize = entry_size(size_of::<Req>(), size_of::<Rsp>());
    const SIZE: u32 = ring_size(Self::ENTRY);
    /// Checked when a ring is made: entries are naturally aligned in the page and the ring is usable.
    const LAYOUT_OK: () = assert!(
        Self::SIZE > 0
            && Self::ENTRY.is_multiple_of(align_of::<Req>())
            && Self::ENTRY.is_multiple_of(align_of::<Rsp>())
            && layout::ENTRIES.is_multiple_of(align_of::<Req>())
            && layout::ENTRIES.is_multiple_of(align_of::<Rsp>())
    );

    fn index(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `offset` is one of the four header fields (4-byte aligned, inside the page); the page
        // outlives the ring (the constructor's contract), and the other domain only ever accesses these
        // words as 32-bit integers, so treating them as atomics is sound.
        unsafe { AtomicU32::from_ptr(self.page.as_ptr().cast::<u8>().add(offset).cast::<u32>()) }
    }

    fn load(&self, offset: usize, order: Ordering) -> u32 {
        self.index(offset).load(order)
    }

    fn store(&self, offset: usize, value: u32, order: Ordering) {
        self.index(offset).store(value, order)
    }

    /// The address of the slot for free-running index `idx`: always inside the page.
    fn slot(&self, idx: u32) -> *mut u8 {
        let slot = (idx & (Self::SIZE - 1)) as usize;
        // In bounds: ENTRIES + (SIZE - 1) * ENTRY + ENTRY <= PAGE_SIZE by the choice of SIZE.
        // SAFETY: the offset stays within the page (above), so the pointer arithmetic is in bounds.
        unsafe {
            self.page
                .as_ptr()
                .cast::<u8>()
                .add(layout::ENTRIES + slot * Self::ENTRY)
        }
    }

    fn write_req(&self, idx: u32, req: Req) {
        // SAFETY: the slot is inside the page and aligned for `Req` (LAYOUT_OK); volatile because the
        // page is shared with another domain.
        unsafe { self.slot(idx).cast::<Req>().write_volatile(req) }
    }

    fn read_req(&self, idx: u32) -> Req {
        // SAFETY: as in `write_req`; any bit pattern is a valid `Req` (RingEntry).
        unsafe { self.slot(idx).cast::<Req>().read_volatile() }
    }

    fn write_rsp(&self, idx: u32, rsp: Rsp) {
        // SAFETY: as in `write_req`, for `Rsp`.
        unsafe { self.slot(idx).cast::<Rsp>().write_volatile(rsp) }
    }

    fn read_rsp(&self, idx: u32) -> Rsp {
        // SAFETY: as in `read_req`, for `Rsp`.
        unsafe { self.slot(idx).cast::<Rsp>().read_volatile() }
    }
}

/// Whether publishing `new` after `old` crosses the peer's event threshold `event`
/// (`RING_PUSH_*_AND_CHECK_NOTIFY`).
fn crosses(new: u32, old: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// The front end of a shared ring: produces requests, consumes responses.
pub struct FrontRing<Req, Rsp> {
    shared: Shared<Req, Rsp>,
    /// Requests written, published or not.
    req_prod_pvt: u32,
    /// What we last published in `req_prod` (never read back from the page).
    req_prod_pushed: u32,
    /// Responses consumed.
    rsp_cons: u32,
}

impl<Req: RingEntry, Rsp: RingEntry> FrontRing<Req, Rsp> {
    /// Slots in the ring.
    pub const SIZE: u32 = Shared::<Req, Rsp>::SIZE;

    /// Initialises the shared page (`SHARED_RING_INIT`: indices 0, event thresholds 1) and attaches
    /// the front end to it (`FRONT_RING_INIT`).
    ///
    /// # Safety
    /// `page` must stay valid, and be accessed by nobody but this ring and the peer domain, for as
    /// long as the ring exists.
    pub unsafe fn init(page: NonNull<Page>) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Shared::<Req, Rsp>::LAYOUT_OK;
        let shared = Shared {
            page,
            _entries: PhantomData,
        };
        for offset in [layout::REQ_PROD, layout::RSP_PROD] {
            shared.store(offset, 0, Ordering::Relaxed);
        }
        for offset in [layout::REQ_EVENT, layout::RSP_EVENT] {
            shared.store(offset, 1, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        Self {
            shared,
            req_prod_pvt: 0,
            req_prod_pushed: 0,
            rsp_cons: 0,
        }
    }

    /// Requests written and not yet answered (published or not).
    pub fn in_flight(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Free request slots (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        Self::SIZE.saturating_sub(self.in_flight())
    }

    /// Whether no request slot is free (`RING_FULL`).
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// The free-running index the next request will get.
    pub fn next_request_index(&self) -> u32 {
        self.req_prod_pvt
    }

    /// The free-running index of the next response to consume.
    pub fn response_index(&self) -> u32 {
        self.rsp_cons
    }

    /// Writes `req` into the next slot (not yet visible to the peer: see
    /// [`push_requests_and_check_notify`](Self::push_requests_and_check_notify)). Returns its
    /// free-running index, or None when the ring is full.
    pub fn put_request(&mut self, req: Req) -> Option<u32> {
        if self.is_full() {
            return None;
        }
        let idx = self.req_prod_pvt;
        self.shared.write_req(idx, req);
        self.req_prod_pvt = idx.wrapping_add(1);
        Some(idx)
    }

    /// Whether requests were written and not yet published.
    pub fn has_unpushed_requests(&self) -> bool {
        self.req_prod_pvt != self.req_prod_pushed
    }

    /// Publishes the requests written so far; true when the peer asked to be notified about them
    /// (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        let old = self.req_prod_pushed;
        let new = self.req_prod_pvt;
        if old == new {
            return false;
        }
        // Release: the entries are visible before the index (xen_wmb).
        self.shared.store(layout::REQ_PROD, new, Ordering::Release);
        self.req_prod_pushed = new;
        // xen_mb: the index is visible before we read the peer's threshold.
        fence(Ordering::SeqCst);
        let event = self.shared.load(layout::REQ_EVENT, Ordering::Relaxed);
        crosses(new, old, event)
    }

    /// The peer's `rsp_prod`, checked: it may run ahead of our consumer index by at most the number
    /// of requests we published.
    fn checked_rsp_prod(&self) -> Result<u32, RingError> {
        let rsp_prod = self.shared.load(layout::RSP_PROD, Ordering::Acquire);
        let allowed = self.req_prod_pushed.wrapping_sub(self.rsp_cons);
        if rsp_prod.wrapping_sub(self.rsp_cons) > allowed {
            return Err(RingError {
                index: "rsp_prod",
                value: rsp_prod,
                consumer: self.rsp_cons,
                allowed,
            });
        }
        Ok(rsp_prod)
    }

    /// Responses published by the peer and not yet consumed (`RING_HAS_UNCONSUMED_RESPONSES`).
    pub fn unconsumed_responses(&self) -> Result<u32, RingError> {
        Ok(self.checked_rsp_prod()?.wrapping_sub(self.rsp_cons))
    }

    /// Consumes the next response: its free-running index (the slot its request was written to, for
    /// protocols that answer in place) and a copy of it.
    pub fn take_response(&mut self) -> Result<Option<(u32, Rsp)>, RingError> {
        let rsp_prod = self.checked_rsp_prod()?;
        if rsp_prod == self.rsp_cons {
            return Ok(None);
        }
        let idx = self.rsp_cons;
        let rsp = self.shared.read_rsp(idx);
        self.rsp_cons = idx.wrapping_add(1);
        Ok(Some((idx, rsp)))
    }

    /// Asks for a notification at the next response and checks once more for responses that raced
    /// with the request (`RING_FINAL_CHECK_FOR_RESPONSES`). True when responses are waiting.
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_responses()? > 0 {
            return Ok(true);
        }
        self.shared.store(
            layout::RSP_EVENT,
            self.rsp_cons.wrapping_add(1),
            Ordering::Relaxed,
        );
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_responses()? > 0)
    }
}

/// The back end of a shared ring: consumes requests, produces responses.
pub struct BackRing<Req, Rsp> {
    shared: Shared<Req, Rsp>,
    /// Responses written, published or not.
    rsp_prod_pvt: u32,
    /// What we last published in `rsp_prod`.
    rsp_prod_pushed: u32,
    /// Requests consumed.
    req_cons: u32,
}

impl<Req: RingEntry, Rsp: RingEntry> BackRing<Req, Rsp> {
    /// Slots in the ring.
    pub const SIZE: u32 = Shared::<Req, Rsp>::SIZE;

    /// Attaches to a ring the front end initialised (`BACK_RING_INIT`: both private indices 0).
    ///
    /// # Safety
    /// `page` (the front end's page, mapped here) must stay valid, and be accessed by nobody but this
    /// ring and the peer domain, for as long as the ring exists.
    pub unsafe fn attach(page: NonNull<Page>) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Shared::<Req, Rsp>::LAYOUT_OK;
        Self {
            shared: Shared {
                page,
                _entries: PhantomData,
            },
            rsp_prod_pvt: 0,
            rsp_prod_pushed: 0,
            req_cons: 0,
        }
    }

    /// The peer's `req_prod`, checked: requests we have not answered can never exceed the ring.
    fn checked_req_prod(&self) -> Result<u32, RingError> {
        let req_prod = self.shared.load(layout::REQ_PROD, Ordering::Acquire);
        let answered_to = self.rsp_prod_pvt;
        // Slots the front end may fill past our consumer: those not holding an unanswered request.
        let allowed = Self::SIZE.saturating_sub(self.req_cons.wrapping_sub(answered_to));
        if req_prod.wrapping_sub(self.req_cons) > allowed {
            return Err(RingError {
                index: "req_prod",
                value: req_prod,
                consumer: self.req_cons,
                allowed,
            });
        }
        Ok(req_prod)
    }

    /// Requests published by the peer and not yet consumed (`RING_HAS_UNCONSUMED_REQUESTS`).
    pub fn unconsumed_requests(&self) -> Result<u32, RingError> {
        Ok(self.checked_req_prod()?.wrapping_sub(self.req_cons))
    }

    /// Consumes the next request: its free-running index and a copy of it.
    pub fn take_request(&mut self) -> Result<Option<(u32, Req)>, RingError> {
        let req_prod = self.checked_req_prod()?;
        if req_prod == self.req_cons {
            return Ok(None);
        }
        let idx = self.req_cons;
        let req = self.shared.read_req(idx);
        self.req_cons = idx.wrapping_add(1);
        Ok(Some((idx, req)))
    }

    /// Writes a response into the next slot (not yet visible: see
    /// [`push_responses_and_check_notify`](Self::push_responses_and_check_notify)). None when every
    /// consumed request has been answered already.
    pub fn put_response(&mut self, rsp: Rsp) -> Option<u32> {
        if self.rsp_prod_pvt == self.req_cons {
            return None;
        }
        let idx = self.rsp_prod_pvt;
        self.shared.write_rsp(idx, rsp);
        self.rsp_prod_pvt = idx.wrapping_add(1);
        Some(idx)
    }

    /// Publishes the responses written so far; true when the peer asked to be notified
    /// (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`).
    pub fn push_responses_and_check_notify(&mut self) -> bool {
        let old = self.rsp_prod_pushed;
        let new = self.rsp_prod_pvt;
        if old == new {
            return false;
        }
        self.shared.store(layout::RSP_PROD, new, Ordering::Release);
        self.rsp_prod_pushed = new;
        fence(Ordering::SeqCst);
        let event = self.shared.load(layout::RSP_EVENT, Ordering::Relaxed);
        crosses(new, old, event)
    }

    /// Asks for a notification at the next request and checks once more for requests that raced
    /// with it (`RING_FINAL_CHECK_FOR_REQUESTS`). True when requests are waiting.
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_requests()? > 0 {
            return Ok(true);
        }
        self.shared.store(
            layout::REQ_EVENT,
            self.req_cons.wrapping_add(1),
            Ordering::Relaxed,
        );
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_requests()? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Req {
        id: u32,
        value: u32,
        extra: u32,
    }
    // SAFETY: repr(C) integers.
    unsafe impl RingEntry for Req {}

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Rsp {
        id: u32,
    }
    // SAFETY: repr(C) integers.
    unsafe impl RingEntry for Rsp {}

    struct Pair {
        page: NonNull<Page>,
        front: FrontRing<Req, Rsp>,
        back: BackRing<Req, Rsp>,
    }

    impl Drop for Pair {
        fn drop(&mut self) {
            // SAFETY: allocated by Box::into_raw in `pair`, no ring uses it after this.
            drop(unsafe { Box::from_raw(self.page.as_ptr()) });
        }
    }

    fn pair() -> Pair {
        let page = NonNull::from(Box::leak(Box::new(Page::zeroed())));
        // SAFETY: the page lives until `Pair` drops, after both rings.
        let front = unsafe { FrontRing::init(page) };
        // SAFETY: as above.
        let back = unsafe { BackRing::attach(page) };
        Pair { page, front, back }
    }

    fn poke(page: NonNull<Page>, offset: usize, value: u32) {
        // SAFETY: a header field of a live test page.
        unsafe {
            page.as_ptr()
                .cast::<u8>()
                .add(offset)
                .cast::<u32>()
                .write_volatile(value)
        }
    }

    #[test]
    fn sizes_match_the_c_headers() {
        // netif tx (12-byte requests), netif rx (8), blkif (112): 256, 256, 32 slots.
        assert_eq!(ring_size(12), 256);
        assert_eq!(ring_size(8), 256);
        assert_eq!(ring_size(112), 32);
        assert_eq!(ring_size(4032), 1);
        assert_eq!(ring_size(4033), 0);
        assert_eq!(FrontRing::<Req, Rsp>::SIZE, 256);
    }

    #[test]
    fn requests_and_responses_round_trip_with_notifications() {
        let mut p = pair();
        assert_eq!(
            p.front.put_request(Req {
                id: 1,
                value: 10,
                extra: 0
            }),
            Some(0)
        );
        assert_eq!(
            p.front.put_request(Req {
                id: 2,
                value: 20,
                extra: 0
            }),
            Some(1)
        );
        // req_event starts at 1: the first push notifies.
        assert!(p.front.push_requests_and_check_notify());
        assert!(!p.front.push_requests_and_check_notify(), "nothing new");
        assert_eq!(p.back.unconsumed_requests(), Ok(2));
        let (_, a) = p.back.take_request().unwrap().unwrap();
        let (_, b) = p.back.take_request().unwrap().unwrap();
        assert_eq!((a.id, b.value), (1, 20));
        assert_eq!(p.back.take_request(), Ok(None));
        // The back end has not re-armed req_event: a further push does not notify...
        p.front.put_request(Req {
            id: 3,
            value: 0,
            extra: 0,
        });
        assert!(!p.front.push_requests_and_check_notify());
        assert_eq!(p.back.take_request().unwrap().unwrap().1.id, 3);
        // ...until it does.
        assert!(!p.back.final_check_for_requests().unwrap());
        p.front.put_request(Req {
            id: 4,
            value: 0,
            extra: 0,
        });
        assert!(p.front.push_requests_and_check_notify());
        assert_eq!(p.back.take_request().unwrap().unwrap().1.id, 4);

        for id in [1, 2, 3, 4] {
            assert!(p.back.put_response(Rsp { id }).is_some());
        }
        assert_eq!(
            p.back.put_response(Rsp { id: 5 }),
            None,
            "only answered requests"
        );
        // rsp_event starts at 1.
        assert!(p.back.push_responses_and_check_notify());
        let mut ids = alloc::vec::Vec::new();
        while let Some((_, rsp)) = p.front.take_response().unwrap() {
            ids.push(rsp.id);
        }
        assert_eq!(ids, [1, 2, 3, 4]);
        assert!(!p.front.final_check_for_responses().unwrap());
        assert_eq!(p.front.in_flight(), 0);
    }

    #[test]
    fn a_full_ring_refuses_requests() {
        let mut p = pair();
        for i in 0..FrontRing::<Req, Rsp>::SIZE {
            assert!(p
                .front
                .put_request(Req {
                    id: i,
                    value: 0,
                    extra: 0
                })
                .is_some());
        }
        assert!(p.front.is_full());
        assert_eq!(
            p.front.put_request(Req {
                id: 0,
                value: 0,
                extra: 0
            }),
            None
        );
    }

    #[test]
    fn indices_wrap_around_u32() {
        let mut p = pair();
        let start = u32::MAX - 2;
        p.front.req_prod_pvt = start;
        p.front.req_prod_pushed = start;
        p.front.rsp_cons = start;
        p.back.req_cons = start;
        p.back.rsp_prod_pvt = start;
        p.back.rsp_prod_pushed = start;
        for offset in [layout::REQ_PROD, layout::RSP_PROD] {
            poke(p.page, offset, start);
        }
        for round in 0..8u32 {
            p.front.put_request(Req {
                id: round,
                value: 0,
                extra: 0,
            });
            p.front.push_requests_and_check_notify();
            let (_, req) = p.back.take_request().unwrap().unwrap();
            p.back.put_response(Rsp { id: req.id });
            p.back.push_responses_and_check_notify();
            assert_eq!(p.front.take_response().unwrap().unwrap().1.id, round);
        }
    }

    #[test]
    fn a_response_producer_beyond_our_requests_is_an_error() {
        let mut p = pair();
        p.front.put_request(Req {
            id: 1,
            value: 0,
            extra: 0,
        });
        // Written but not published: the back end cannot answer it yet.
        poke(p.page, layout::RSP_PROD, 1);
        assert!(p.front.take_response().is_err());
        p.front.push_requests_and_check_notify();
        assert!(p.front.take_response().unwrap().is_some());
        // Far beyond the ring, and "negative" (behind our consumer index).
        for bad in [2, 1000, u32::MAX] {
            poke(p.page, layout::RSP_PROD, bad);
            let error = p.front.take_response().unwrap_err();
            assert_eq!(error.value, bad);
            assert!(p.front.final_check_for_responses().is_err());
            assert!(p.front.unconsumed_responses().is_err());
        }
        let xen: XenError = p.front.take_response().unwrap_err().into();
        assert!(matches!(xen, XenError::Backend(_)));
    }

    #[test]
    fn a_request_producer_beyond_the_ring_is_an_error() {
        let mut p = pair();
        poke(p.page, layout::REQ_PROD, FrontRing::<Req, Rsp>::SIZE);
        assert_eq!(p.back.unconsumed_requests(), Ok(256));
        poke(p.page, layout::REQ_PROD, FrontRing::<Req, Rsp>::SIZE + 1);
        assert!(p.back.take_request().is_err());
        poke(p.page, layout::REQ_PROD, 1);
        assert!(p.back.take_request().unwrap().is_some());
        // One request consumed and unanswered: only SIZE - 1 more may follow.
        poke(p.page, layout::REQ_PROD, FrontRing::<Req, Rsp>::SIZE + 1);
        assert!(p.back.take_request().is_err());
    }
}
