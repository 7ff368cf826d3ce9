//! vchan: libxenvchan's byte-stream channel between two domains over shared memory, the **client** side
//! (QubesDB's VM end: dom0's `qubesdb-daemon` is the vchan server, the VM's daemon the client; so is
//! mirage-qubes' `Qubes.DB`).
//!
//! The protocol (`xen/include/public/io/libxenvchan.h`, libxenvchan's `init.c`/`io.c`):
//! - The **server** allocates a control page (`struct vchan_interface`) and the ring pages, grants them
//!   to the client, allocates an unbound event channel for it, and writes
//!   `/local/domain/<server>/data/vchan/<client>/<port>/{ring-ref,event-channel}`.
//! - The control page: `left {cons, prod}` at 0 (client writes, server reads), `right {cons, prod}` at 8
//!   (server writes, client reads), `u16 left_order` at 16, `u16 right_order` at 18, `u8 cli_live` at 20,
//!   `u8 srv_live` at 21, `u8 cli_notify` at 22, `u8 srv_notify` at 23, then `u32 grants[]` at 24: the
//!   left ring's pages, then the right ring's.
//! - A ring of order 10 lives in the control page at offset 1024, order 11 at 2048 (only one ring may use
//!   each), order 12 and up in `2^(order-12)` granted pages.
//! - Live bytes: 0 gone, 1 connected, 2 (client only) not yet connected.
//! - Notify bytes: `cli_notify` holds the bits the **server** asked the client for (`1`: tell me when you
//!   wrote, `2`: tell me when you read); the client clears a bit atomically and signals only when it was
//!   set. `srv_notify` is the same the other way: the client sets its requests there.
//! - Client connect: map the control page, check the orders, map the rings (the read ring read-only),
//!   bind the event channel, set `cli_live = 1` and `srv_notify = WRITE`, signal the server.
//!
//! Layer: protocol logic over [`VchanHost`] (mapping, event channels) and [`Store`], so the host tests
//! run it against an in-memory server. The server is not trusted: orders outside 10..=[`MAX_ORDER`],
//! grant lists that would run into a ring, indices further apart than a ring, all are errors.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU8, Ordering};

use super::gnttab::MappedPage;
use super::{DomId, EventChannels, GrantRef, Port, Store, XenError, PAGE_SIZE};

/// QubesDB's vchan port.
pub const QUBESDB_PORT: u32 = 111;
/// `VCHAN_NOTIFY_WRITE`.
pub const NOTIFY_WRITE: u8 = 1;
/// `VCHAN_NOTIFY_READ`.
pub const NOTIFY_READ: u8 = 2;
/// The smallest ring: 1 KiB at offset 1024 of the control page.
pub const SMALL_ORDER: u16 = 10;
/// 2 KiB at offset 2048 of the control page.
pub const LARGE_ORDER: u16 = 11;
/// The largest ring accepted: 4 pages (libxenvchan allows more; QubesDB uses one page each way).
pub const MAX_ORDER: u16 = 14;

/// Offsets in the control page.
pub mod layout {
    pub const LEFT_CONS: usize = 0;
    pub const LEFT_PROD: usize = 4;
    pub const RIGHT_CONS: usize = 8;
    pub const RIGHT_PROD: usize = 12;
    pub const LEFT_ORDER: usize = 16;
    pub const RIGHT_ORDER: usize = 18;
    pub const CLI_LIVE: usize = 20;
    pub const SRV_LIVE: usize = 21;
    pub const CLI_NOTIFY: usize = 22;
    pub const SRV_NOTIFY: usize = 23;
    pub const GRANTS: usize = 24;
}

/// A page of another domain mapped into ours (or, in tests, a page the test's server shares).
pub trait SharedPage {
    /// The page's first byte. Must stay valid for [`PAGE_SIZE`] bytes, 4096-aligned, while `self` lives.
    fn base(&self) -> *const u8;
}

impl SharedPage for MappedPage {
    fn base(&self) -> *const u8 {
        self.as_ptr()
    }
}

/// What the client needs from the platform besides xenstore.
pub trait VchanHost {
    /// A mapped foreign page.
    type Page: SharedPage;
    /// Maps `domid`'s grant `gref` (read-only when `readonly`).
    fn map(&mut self, domid: DomId, gref: GrantRef, readonly: bool)
        -> Result<Self::Page, XenError>;
    /// Binds to `domid`'s unbound port `remote` (EVTCHNOP_bind_interdomain).
    fn bind(&mut self, domid: DomId, remote: Port) -> Result<Port, XenError>;
    /// Signals `port`.
    fn notify(&mut self, port: Port);
    /// Whether `port` is pending; clears it.
    fn take_pending(&mut self, port: Port) -> bool;
    /// Lets `port` wake the CPU (unmask).
    fn unmask(&mut self, port: Port);
}

impl VchanHost for super::Hypervisor {
    type Page = MappedPage;

    fn map(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        readonly: bool,
    ) -> Result<MappedPage, XenError> {
        super::gnttab::map(domid, gref, readonly)
    }

    fn bind(&mut self, domid: DomId, remote: Port) -> Result<Port, XenError> {
        self.events.bind_interdomain(domid, remote)
    }

    fn notify(&mut self, port: Port) {
        self.events.notify(port)
    }

    fn take_pending(&mut self, port: Port) -> bool {
        self.events.take_pending(port)
    }

    fn unmask(&mut self, port: Port) {
        self.events.set_unmasked(port, true)
    }
}

fn protocol(what: String) -> XenError {
    XenError::Backend(what)
}

/// The atomic `T` at `offset` of `page` (checked: inside the page and aligned).
fn atomic_at<T>(page: &impl SharedPage, offset: usize) -> Result<&T, XenError> {
    let size = core::mem::size_of::<T>();
    if offset.checked_add(size).is_none_or(|end| end > PAGE_SIZE) || !offset.is_multiple_of(size) {
        return Err(protocol(format!(
            "vchan: field at {offset} outside the page"
        )));
    }
    // SAFETY: `base` is a live, 4096-aligned page for as long as `page` is borrowed (SharedPage's
    // contract); `offset` keeps the `T` inside it and aligned (checked above). `T` is only ever an atomic
    // integer here (the callers below), valid for any bits and safe to share with the other domain.
    Ok(unsafe { &*page.base().add(offset).cast::<T>() })
}

/// The bytes of `page` as atomics (the other domain writes them concurrently).
fn bytes_of(page: &impl SharedPage) -> &[AtomicU8] {
    // SAFETY: a live page of PAGE_SIZE bytes (SharedPage's contract), shared with the other domain, so
    // only accessed as atomics.
    unsafe { core::slice::from_raw_parts(page.base().cast::<AtomicU8>(), PAGE_SIZE) }
}

/// Where a ring's bytes are: a window of the control page, or whole mapped pages.
enum RingData<P> {
    /// `(offset, len)` in the control page.
    InPage(usize, usize),
    Pages(Vec<P>),
}

struct Ring<P> {
    data: RingData<P>,
    size: u32,
    cons: usize,
    prod: usize,
}

impl<P: SharedPage> Ring<P> {
    fn slot<'a>(&'a self, ctrl: &'a P, index: u32) -> Option<&'a AtomicU8> {
        let i = (index & (self.size - 1)) as usize;
        match &self.data {
            RingData::InPage(offset, len) => bytes_of(ctrl).get(offset + i.min(*len)),
            RingData::Pages(pages) => bytes_of(pages.get(i / PAGE_SIZE)?).get(i % PAGE_SIZE),
        }
    }

    fn indices(&self, ctrl: &P) -> Result<(u32, u32), XenError> {
        let cons = atomic_at::<AtomicU32>(ctrl, self.cons)?.load(Ordering::Acquire);
        let prod = atomic_at::<AtomicU32>(ctrl, self.prod)?.load(Ordering::Acquire);
        if prod.wrapping_sub(cons) > self.size {
            return Err(protocol(format!(
                "vchan: ring indices out of range: consumer {cons}, producer {prod}, size {}",
                self.size
            )));
        }
        Ok((cons, prod))
    }
}

/// A connected vchan, client side.
pub struct Vchan<P: SharedPage> {
    ctrl: P,
    /// We write (left).
    write: Ring<P>,
    /// We read (right).
    read: Ring<P>,
    port: Port,
    server: DomId,
    closed: bool,
}

/// Parses a xenstore number.
fn number(path: &str, value: &str) -> Result<u32, XenError> {
    value
        .trim_end_matches('\0')
        .trim()
        .parse()
        .map_err(|_| protocol(format!("vchan: {path} = {value:?} is not a number")))
}

/// The xenstore directory of a vchan: `/local/domain/<server>/data/vchan/<client>/<port>`.
pub fn xs_path(server: DomId, client: DomId, port: u32) -> String {
    format!("/local/domain/{server}/data/vchan/{client}/{port}")
}

/// Pages a ring of `order` takes beyond the control page.
fn extra_pages(order: u16) -> usize {
    if order >= 12 {
        1 << (order - 12)
    } else {
        0
    }
}

impl<P: SharedPage> Vchan<P> {
    /// Connects as the client of `server`'s vchan `port`, we being domain `me`: waits (calling `idle`
    /// between attempts) until the server advertised it in xenstore, at most `timeout` after the first
    /// `now()`; then maps it and announces us.
    #[allow(clippy::too_many_arguments)]
    pub fn connect<H: VchanHost<Page = P>>(
        host: &mut H,
        store: &mut impl Store,
        server: DomId,
        me: DomId,
        port: u32,
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<Vchan<P>, XenError> {
        let dir = xs_path(server, me, port);
        let deadline = now().saturating_add(timeout);
        let (ring_ref, event) = loop {
            let ring = store.read(&format!("{dir}/ring-ref"));
            let event = store.read(&format!("{dir}/event-channel"));
            if let (Ok(r), Ok(e)) = (ring, event) {
                break (
                    number(&format!("{dir}/ring-ref"), &r)?,
                    number(&format!("{dir}/event-channel"), &e)?,
                );
            }
            if now() >= deadline {
                return Err(XenError::Timeout(
                    "the vchan server (its xenstore ring-ref)",
                ));
            }
            idle();
        };
        let ctrl = host.map(server, ring_ref, false)?;
        let left_order = atomic_at::<AtomicU16>(&ctrl, layout::LEFT_ORDER)?.load(Ordering::Acquire);
        let right_order =
            atomic_at::<AtomicU16>(&ctrl, layout::RIGHT_ORDER)?.load(Ordering::Acquire);
        for order in [left_order, right_order] {
            if !(SMALL_ORDER..=MAX_ORDER).contains(&order) {
                return Err(protocol(format!(
                    "vchan: ring order {order} outside {SMALL_ORDER}..={MAX_ORDER}"
                )));
            }
        }
        if left_order == right_order && left_order < 12 {
            return Err(protocol(format!(
                "vchan: both rings of order {left_order} in the control page"
            )));
        }
        let grants = extra_pages(left_order) + extra_pages(right_order);
        let in_page_start = [left_order, right_order]
            .iter()
            .filter(|&&o| o < 12)
            .map(|&o| 1usize << o)
            .min()
            .unwrap_or(PAGE_SIZE);
        if layout::GRANTS + 4 * grants > in_page_start {
            return Err(protocol(format!(
                "vchan: {grants} grant references run into a ring"
            )));
        }
        let mut next_grant = 0;
        let mut ring = |host: &mut H,
                        order: u16,
                        readonly: bool,
                        cons: usize,
                        prod: usize|
         -> Result<Ring<P>, XenError> {
            let data = if order < 12 {
                RingData::InPage(1 << order, 1 << order)
            } else {
                let mut pages = Vec::new();
                for _ in 0..extra_pages(order) {
                    let offset = layout::GRANTS + 4 * next_grant;
                    next_grant += 1;
                    let gref = atomic_at::<AtomicU32>(&ctrl, offset)?.load(Ordering::Acquire);
                    pages.push(host.map(server, gref, readonly)?);
                }
                RingData::Pages(pages)
            };
            Ok(Ring {
                data,
                size: 1 << order,
                cons,
                prod,
            })
        };
        let write = ring(
            host,
            left_order,
            false,
            layout::LEFT_CONS,
            layout::LEFT_PROD,
        )?;
        let read = ring(
            host,
            right_order,
            true,
            layout::RIGHT_CONS,
            layout::RIGHT_PROD,
        )?;
        let srv_live = atomic_at::<AtomicU8>(&ctrl, layout::SRV_LIVE)?.load(Ordering::Acquire);
        if srv_live != 1 {
            return Err(protocol(format!(
                "vchan: server not live (srv_live {srv_live})"
            )));
        }
        let local = host.bind(server, event)?;
        let vchan = Vchan {
            ctrl,
            write,
            read,
            port: local,
            server,
            closed: false,
        };
        vchan.byte(layout::CLI_LIVE)?.store(1, Ordering::SeqCst);
        vchan
            .byte(layout::SRV_NOTIFY)?
            .store(NOTIFY_WRITE, Ordering::SeqCst);
        host.unmask(local);
        host.notify(local);
        Ok(vchan)
    }

    fn byte(&self, offset: usize) -> Result<&AtomicU8, XenError> {
        atomic_at::<AtomicU8>(&self.ctrl, offset)
    }

    /// Our end of the event channel.
    pub fn port(&self) -> Port {
        self.port
    }

    /// The server's domain.
    pub fn server(&self) -> DomId {
        self.server
    }

    /// Whether the server is still there (`srv_live` is 1) and we did not close.
    pub fn is_open(&self) -> bool {
        !self.closed
            && self
                .byte(layout::SRV_LIVE)
                .is_ok_and(|b| b.load(Ordering::Acquire) == 1)
    }

    /// Signals the server when it asked for `bit` (clearing the request).
    fn tell(&self, host: &mut impl VchanHost, bit: u8) -> Result<(), XenError> {
        fence(Ordering::SeqCst); // the indices before the request bits
        if self
            .byte(layout::CLI_NOTIFY)?
            .fetch_and(!bit, Ordering::SeqCst)
            & bit
            != 0
        {
            host.notify(self.port);
        }
        Ok(())
    }

    /// Asks the server to signal us on `bit`.
    fn ask(&self, bit: u8) -> Result<(), XenError> {
        self.byte(layout::SRV_NOTIFY)?
            .fetch_or(bit, Ordering::SeqCst);
        fence(Ordering::SeqCst); // the request before re-reading the indices
        Ok(())
    }

    /// Bytes waiting to be read.
    pub fn available(&self) -> Result<usize, XenError> {
        let (cons, prod) = self.read.indices(&self.ctrl)?;
        Ok(prod.wrapping_sub(cons) as usize)
    }

    /// Copies up to `buf.len()` waiting bytes; returns how many (0: none now; the server is asked to
    /// signal when it writes).
    pub fn read(&mut self, host: &mut impl VchanHost, buf: &mut [u8]) -> Result<usize, XenError> {
        if self.closed {
            return Err(protocol("vchan: closed".into()));
        }
        self.ask(NOTIFY_WRITE)?;
        let (cons, prod) = self.read.indices(&self.ctrl)?;
        fence(Ordering::SeqCst); // the index before the bytes
        let n = (prod.wrapping_sub(cons) as usize).min(buf.len());
        for (i, out) in buf.iter_mut().take(n).enumerate() {
            *out = self
                .read
                .slot(&self.ctrl, cons.wrapping_add(i as u32))
                .map_or(0, |s| s.load(Ordering::Relaxed));
        }
        if n > 0 {
            fence(Ordering::SeqCst); // the bytes before giving the space back
            atomic_at::<AtomicU32>(&self.ctrl, self.read.cons)?
                .store(cons.wrapping_add(n as u32), Ordering::Release);
            self.tell(host, NOTIFY_READ)?;
        }
        Ok(n)
    }

    /// Queues as much of `bytes` as fits; returns how many (when short, the server is asked to signal
    /// when it has read).
    pub fn write(&mut self, host: &mut impl VchanHost, bytes: &[u8]) -> Result<usize, XenError> {
        if self.closed || !self.is_open() {
            return Err(protocol("vchan: closed".into()));
        }
        let (cons, prod) = self.write.indices(&self.ctrl)?;
        let space = self.write.size - prod.wrapping_sub(cons);
        let n = (space as usize).min(bytes.len());
        for (i, &b) in bytes.iter().take(n).enumerate() {
            if let Some(slot) = self.write.slot(&self.ctrl, prod.wrapping_add(i as u32)) {
                slot.store(b, Ordering::Relaxed);
            }
        }
        fence(Ordering::SeqCst); // the bytes before the index
        atomic_at::<AtomicU32>(&self.ctrl, self.write.prod)?
            .store(prod.wrapping_add(n as u32), Ordering::Release);
        if n < bytes.len() {
            self.ask(NOTIFY_READ)?;
        }
        if n > 0 {
            self.tell(host, NOTIFY_WRITE)?;
        }
        Ok(n)
    }

    /// Writes all of `bytes`, waiting (with `idle`) for the server to make room, at most `timeout` after
    /// the first `now()`.
    pub fn write_all(
        &mut self,
        host: &mut impl VchanHost,
        mut bytes: &[u8],
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<(), XenError> {
        let deadline = now().saturating_add(timeout);
        while !bytes.is_empty() {
            let n = self.write(host, bytes)?;
            bytes = bytes.get(n..).unwrap_or_default();
            if n == 0 {
                if now() >= deadline {
                    return Err(XenError::Timeout("the vchan server to read"));
                }
                idle();
            }
        }
        Ok(())
    }

    /// Whether the server signalled (clears it).
    pub fn take_event(&self, host: &mut impl VchanHost) -> bool {
        host.take_pending(self.port)
    }

    /// Tells the server we are gone (`cli_live = 0`); the mappings end when `self` drops.
    pub fn close(&mut self, host: &mut impl VchanHost) {
        if !self.closed {
            self.closed = true;
            if let Ok(b) = self.byte(layout::CLI_LIVE) {
                b.store(0, Ordering::SeqCst);
            }
            host.notify(self.port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::fake::Fake;
    use crate::xen::Page;
    use alloc::collections::BTreeMap;
    use alloc::rc::Rc;
    use core::cell::{Cell, RefCell, UnsafeCell};

    /// A page the test's server shares: both sides reach it through the same allocation.
    #[derive(Clone)]
    struct TestPage(Rc<UnsafeCell<Page>>);

    impl SharedPage for TestPage {
        fn base(&self) -> *const u8 {
            self.0.get().cast::<u8>()
        }
    }

    impl TestPage {
        fn new() -> TestPage {
            TestPage(Rc::new(UnsafeCell::new(Page::zeroed())))
        }
        fn b(&self, offset: usize) -> &AtomicU8 {
            &bytes_of(self)[offset]
        }
        fn w(&self, offset: usize) -> &AtomicU32 {
            atomic_at::<AtomicU32>(self, offset).unwrap()
        }
        fn h(&self, offset: usize) -> &AtomicU16 {
            atomic_at::<AtomicU16>(self, offset).unwrap()
        }
    }

    /// The server: the shared pages by grant, the event channel.
    #[derive(Clone, Default)]
    struct Server(Rc<RefCell<ServerState>>);

    #[derive(Default)]
    struct ServerState {
        pages: BTreeMap<GrantRef, (TestPage, bool)>,
        mapped: Vec<(GrantRef, bool)>,
        bound: Option<(DomId, Port)>,
        kicks: u32,
        pending: bool,
    }

    impl VchanHost for Server {
        type Page = TestPage;
        fn map(
            &mut self,
            domid: DomId,
            gref: GrantRef,
            readonly: bool,
        ) -> Result<TestPage, XenError> {
            assert_eq!(domid, 0);
            let mut s = self.0.borrow_mut();
            s.mapped.push((gref, readonly));
            s.pages
                .get(&gref)
                .map(|(p, _)| p.clone())
                .ok_or(XenError::Grant {
                    op: "map",
                    status: -4,
                })
        }
        fn bind(&mut self, domid: DomId, remote: Port) -> Result<Port, XenError> {
            self.0.borrow_mut().bound = Some((domid, remote));
            Ok(40)
        }
        fn notify(&mut self, _port: Port) {
            self.0.borrow_mut().kicks += 1;
        }
        fn take_pending(&mut self, _port: Port) -> bool {
            core::mem::take(&mut self.0.borrow_mut().pending)
        }
        fn unmask(&mut self, _port: Port) {}
    }

    const DIR: &str = "/local/domain/0/data/vchan/5/111";

    /// A server as libxenvchan's `server_init` leaves it: control page grant 10, rings of `left` and
    /// `right` order (pages from grant 11 on).
    fn serve(left: u16, right: u16) -> (Server, Fake, TestPage, Vec<TestPage>) {
        let server = Server::default();
        let ctrl = TestPage::new();
        let mut extra = Vec::new();
        {
            let mut s = server.0.borrow_mut();
            s.pages.insert(10, (ctrl.clone(), false));
            let mut gref = 11;
            for (i, order) in [left, right].into_iter().enumerate() {
                for _ in 0..extra_pages(order) {
                    let page = TestPage::new();
                    ctrl.w(layout::GRANTS + 4 * extra.len())
                        .store(gref, Ordering::SeqCst);
                    s.pages.insert(gref, (page.clone(), i == 1));
                    extra.push(page);
                    gref += 1;
                }
            }
        }
        ctrl.h(layout::LEFT_ORDER).store(left, Ordering::SeqCst);
        ctrl.h(layout::RIGHT_ORDER).store(right, Ordering::SeqCst);
        ctrl.b(layout::CLI_LIVE).store(2, Ordering::SeqCst);
        ctrl.b(layout::SRV_LIVE).store(1, Ordering::SeqCst);
        ctrl.b(layout::CLI_NOTIFY)
            .store(NOTIFY_WRITE, Ordering::SeqCst);
        let store = Fake::new();
        store.set(&format!("{DIR}/ring-ref"), "10");
        store.set(&format!("{DIR}/event-channel"), "7");
        (server, store, ctrl, extra)
    }

    fn connect(server: &mut Server, store: &mut Fake) -> Result<Vchan<TestPage>, XenError> {
        let t = Cell::new(0u64);
        Vchan::connect(
            server,
            store,
            0,
            5,
            QUBESDB_PORT,
            &mut || {
                t.set(t.get() + 1000);
                t.get()
            },
            100_000,
            &mut || {},
        )
    }

    /// The server's side of a ring: writes into `right`, reads from `left` (in-page or extra pages).
    fn server_write(
        ctrl: &TestPage,
        base: &dyn Fn(usize) -> (TestPage, usize),
        size: u32,
        data: &[u8],
    ) {
        let prod = ctrl.w(layout::RIGHT_PROD).load(Ordering::SeqCst);
        for (i, &b) in data.iter().enumerate() {
            let idx = (prod.wrapping_add(i as u32) & (size - 1)) as usize;
            let (page, off) = base(idx);
            page.b(off).store(b, Ordering::SeqCst);
        }
        ctrl.w(layout::RIGHT_PROD)
            .store(prod.wrapping_add(data.len() as u32), Ordering::SeqCst);
    }

    fn server_read(
        ctrl: &TestPage,
        base: &dyn Fn(usize) -> (TestPage, usize),
        size: u32,
    ) -> Vec<u8> {
        let cons = ctrl.w(layout::LEFT_CONS).load(Ordering::SeqCst);
        let prod = ctrl.w(layout::LEFT_PROD).load(Ordering::SeqCst);
        let out = (0..prod.wrapping_sub(cons))
            .map(|i| {
                let idx = (cons.wrapping_add(i) & (size - 1)) as usize;
                let (page, off) = base(idx);
                page.b(off).load(Ordering::SeqCst)
            })
            .collect();
        ctrl.w(layout::LEFT_CONS).store(prod, Ordering::SeqCst);
        out
    }

    #[test]
    fn connects_with_one_page_rings_and_moves_bytes_both_ways() {
        // qubesdb-daemon's server_init(4096, 4096): one page each way.
        let (mut server, mut store, ctrl, extra) = serve(12, 12);
        let mut v = connect(&mut server, &mut store).unwrap();
        assert_eq!(ctrl.b(layout::CLI_LIVE).load(Ordering::SeqCst), 1);
        assert_eq!(
            ctrl.b(layout::SRV_NOTIFY).load(Ordering::SeqCst),
            NOTIFY_WRITE
        );
        {
            let s = server.0.borrow();
            assert_eq!(s.bound, Some((0, 7)));
            assert_eq!(s.mapped, [(10, false), (11, false), (12, true)]);
            assert_eq!(s.kicks, 1, "the server is woken on connect");
        }
        let (left, right) = (extra[0].clone(), extra[1].clone());
        // client -> server, across the wrap
        ctrl.w(layout::LEFT_CONS).store(4090, Ordering::SeqCst);
        ctrl.w(layout::LEFT_PROD).store(4090, Ordering::SeqCst);
        assert_eq!(v.write(&mut server, b"hello vchan").unwrap(), 11);
        assert_eq!(
            server.0.borrow().kicks,
            2,
            "the server asked to hear of writes"
        );
        assert_eq!(ctrl.b(layout::CLI_NOTIFY).load(Ordering::SeqCst), 0);
        let l = left.clone();
        assert_eq!(
            server_read(&ctrl, &move |i| (l.clone(), i), 4096),
            b"hello vchan"
        );
        // a second write without a request: no kick
        assert_eq!(v.write(&mut server, b"x").unwrap(), 1);
        assert_eq!(server.0.borrow().kicks, 2);
        // server -> client
        let r = right.clone();
        server_write(&ctrl, &move |i| (r.clone(), i), 4096, b"answer");
        assert_eq!(v.available().unwrap(), 6);
        let mut buf = [0u8; 4];
        assert_eq!(v.read(&mut server, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"answ");
        assert_eq!(v.read(&mut server, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"er");
        assert_eq!(v.read(&mut server, &mut buf).unwrap(), 0);
        // a full ring writes short and asks to hear of reads
        let big = alloc::vec![7u8; 5000];
        assert_eq!(v.write(&mut server, &big).unwrap(), 4095);
        assert_ne!(
            ctrl.b(layout::SRV_NOTIFY).load(Ordering::SeqCst) & NOTIFY_READ,
            0
        );
        assert_eq!(v.write(&mut server, &big).unwrap(), 0);
        // close
        v.close(&mut server);
        assert_eq!(ctrl.b(layout::CLI_LIVE).load(Ordering::SeqCst), 0);
        assert!(v.write(&mut server, b"late").is_err());
    }

    #[test]
    fn in_page_rings() {
        let (mut server, mut store, ctrl, extra) = serve(10, 11);
        assert!(extra.is_empty());
        let mut v = connect(&mut server, &mut store).unwrap();
        assert_eq!(v.write(&mut server, &[1u8; 2000]).unwrap(), 1024);
        let c = ctrl.clone();
        let got = server_read(&ctrl, &move |i| (c.clone(), 1024 + i), 1024);
        assert_eq!(got.len(), 1024);
        let c = ctrl.clone();
        server_write(&ctrl, &move |i| (c.clone(), 2048 + i), 2048, &[9u8; 2048]);
        let mut buf = alloc::vec![0u8; 4096];
        assert_eq!(v.read(&mut server, &mut buf).unwrap(), 2048);
        assert!(buf[..2048].iter().all(|&b| b == 9));
    }

    #[test]
    fn hostile_server() {
        // orders out of range, both in the same in-page slot, too many grants
        for (left, right) in [
            (9, 12),
            (12, 15),
            (10, 10),
            (11, 11),
            (0, 0),
            (u16::MAX, 12),
        ] {
            let (mut server, mut store, ctrl, _) = serve(12, 12);
            ctrl.h(layout::LEFT_ORDER).store(left, Ordering::SeqCst);
            ctrl.h(layout::RIGHT_ORDER).store(right, Ordering::SeqCst);
            let e = connect(&mut server, &mut store)
                .err()
                .expect("accepted bad orders");
            assert!(matches!(e, XenError::Backend(_)), "{left}/{right}: {e}");
        }
        // grants running into an in-page ring: order 10 at 1024 leaves room for 250 grants only
        let (mut server, mut store, _, extra) = serve(10, 14);
        assert_eq!(extra.len(), 4);
        assert!(connect(&mut server, &mut store).is_ok(), "4 grants fit");
        // server not live
        let (mut server, mut store, ctrl, _) = serve(12, 12);
        ctrl.b(layout::SRV_LIVE).store(0, Ordering::SeqCst);
        assert!(connect(&mut server, &mut store).is_err());
        // garbage in xenstore
        let (mut server, mut store, _, _) = serve(12, 12);
        store.set(&format!("{DIR}/ring-ref"), "ten");
        assert!(connect(&mut server, &mut store).is_err());
        // a grant that does not exist
        let (mut server, mut store, _, _) = serve(12, 12);
        store.set(&format!("{DIR}/ring-ref"), "99");
        assert!(matches!(
            connect(&mut server, &mut store),
            Err(XenError::Grant { .. })
        ));
        // indices out of range after connecting: an error, never a panic
        let (mut server, mut store, ctrl, _) = serve(12, 12);
        let mut v = connect(&mut server, &mut store).unwrap();
        ctrl.w(layout::RIGHT_PROD).store(5000, Ordering::SeqCst);
        assert!(v.read(&mut server, &mut [0u8; 8]).is_err());
        assert!(v.available().is_err());
        ctrl.w(layout::LEFT_CONS).store(100, Ordering::SeqCst); // consumer ahead of the producer
        assert!(v.write(&mut server, b"x").is_err());
        // a server that went away
        ctrl.w(layout::LEFT_CONS).store(0, Ordering::SeqCst);
        ctrl.b(layout::SRV_LIVE).store(0, Ordering::SeqCst);
        assert!(!v.is_open());
        assert!(v.write(&mut server, b"x").is_err());
    }

    #[test]
    fn a_server_that_never_comes_times_out() {
        let mut server = Server::default();
        let mut store = Fake::new();
        let idles = Cell::new(0);
        let t = Cell::new(0u64);
        let r = Vchan::<TestPage>::connect(
            &mut server,
            &mut store,
            0,
            5,
            QUBESDB_PORT,
            &mut || {
                t.set(t.get() + 1000);
                t.get()
            },
            50_000,
            &mut || idles.set(idles.get() + 1),
        );
        assert!(matches!(r, Err(XenError::Timeout(_))));
        assert!(idles.get() > 10 && idles.get() < 100);
    }

    #[test]
    fn page_fields_are_bounds_checked() {
        let page = TestPage::new();
        assert!(atomic_at::<AtomicU32>(&page, PAGE_SIZE - 4).is_ok());
        assert!(atomic_at::<AtomicU32>(&page, PAGE_SIZE).is_err());
        assert!(atomic_at::<AtomicU32>(&page, 2).is_err());
        assert!(atomic_at::<AtomicU32>(&page, usize::MAX - 1).is_err());
    }
}
