//! An in-memory Xen for host tests: a grant table, event channels and xenstore in one struct, and
//! backends (netback, blkback) that play the other domain. A backend reaches the frontend's granted
//! pages through the frame -> address identity (`frame << 12` is the page's address on the host too),
//! checking the grant first, the way a real backend maps a grant reference.
//!
//! Test code: it panics on a frontend that breaks the protocol (that is a failed test).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ptr::NonNull;

use super::blkfront::{BlkRequest, BlkResponse, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY};
use super::gnttab::{CopyPtr, GnttabCopy};
use super::netfront::{RxRequest, RxResponse, TxRequest, TxResponse};
use super::ring::{layout, BackRing};
use super::{
    DomId, EventChannels, ForeignGrants, GrantRef, Grants, InterdomainEvents, Page, Port, Store,
    XenError, PAGE_SIZE,
};

/// The backends' domain.
pub const BACKEND: DomId = 0;

/// When `.0` is written with `.1`, the writes in `.2` follow.
pub type Trigger = (String, String, Vec<(String, String)>);

/// One grant-table entry.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub domid: DomId,
    pub frame: u64,
    pub readonly: bool,
    /// The backend "maps" it: ending the grant fails.
    pub mapped: bool,
}

/// One event channel, seen from the frontend.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortState {
    pub remote: DomId,
    /// The backend signalled it.
    pub pending: bool,
    pub unmasked: bool,
    /// Times the frontend signalled the backend.
    pub kicks: u32,
    /// The other end, once a backend bound to this port (`bind_interdomain`): a kick makes it pending.
    pub peer: Option<Port>,
}

/// The whole fake platform.
#[derive(Debug, Default)]
pub struct FakeXen {
    pub grants: BTreeMap<GrantRef, Grant>,
    next_gref: GrantRef,
    /// At most this many live grants (0: no limit).
    pub grant_limit: usize,
    pub ports: BTreeMap<Port, PortState>,
    next_port: Port,
    pub store: BTreeMap<String, String>,
    /// When `path` is written with `value`, these writes follow (a backend reacting to a state).
    pub triggers: Vec<Trigger>,
    /// Foreign mappings live (`ForeignGrants`).
    pub mapped: usize,
    /// Grant-copy ops and hypercalls made.
    pub copy_ops: u64,
    pub copy_calls: u64,
}

/// A shared handle, as the kernel's hypervisor handle would be.
#[derive(Clone, Default)]
pub struct Fake(pub Rc<RefCell<FakeXen>>);

impl Fake {
    pub fn new() -> Self {
        let fake = Self::default();
        fake.with(|xen| {
            xen.next_gref = 8; // the first entries are reserved in a real table
            xen.next_port = 3;
        });
        fake
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeXen) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }

    pub fn set(&self, path: &str, value: &str) {
        self.with(|xen| xen.store.insert(path.to_string(), value.to_string()));
    }

    pub fn get(&self, path: &str) -> Option<String> {
        self.with(|xen| xen.store.get(path).cloned())
    }

    pub fn remove(&self, path: &str) {
        self.with(|xen| xen.store.remove(path));
    }

    /// When `path` becomes `value`, set `then`.
    pub fn on_write(&self, path: &str, value: &str, then: &[(&str, &str)]) {
        let then = then
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        self.with(|xen| {
            xen.triggers
                .push((path.to_string(), value.to_string(), then))
        });
    }

    pub fn live_grants(&self) -> usize {
        self.with(|xen| xen.grants.len())
    }

    pub fn port(&self, port: Port) -> PortState {
        self.with(|xen| xen.ports.get(&port).copied().unwrap_or_default())
    }

    /// The backend signals `port`.
    pub fn signal(&self, port: Port) {
        self.with(|xen| xen.ports.entry(port).or_default().pending = true);
    }

    /// The page behind `gref`, as the backend maps it: must be granted to the backend, and writable
    /// when `write`.
    pub fn map(&self, gref: GrantRef, write: bool) -> NonNull<Page> {
        let grant = self.with(|xen| xen.grants.get(&gref).copied());
        let grant = grant.unwrap_or_else(|| panic!("grant {gref} does not exist"));
        assert_eq!(grant.domid, BACKEND, "grant {gref} is for another domain");
        assert!(!(write && grant.readonly), "grant {gref} is read-only");
        NonNull::new((grant.frame << 12) as *mut Page).expect("frame 0")
    }

    /// Copies `data` into the page behind `gref` at `offset`.
    pub fn write_granted(&self, gref: GrantRef, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= PAGE_SIZE);
        let page = self.map(gref, true);
        // SAFETY: the frontend granted us write access to this live page (checked by `map`), and
        // the range is inside it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                page.as_ptr().cast::<u8>().add(offset),
                data.len(),
            )
        }
    }

    /// Copies `len` bytes at `offset` out of the page behind `gref`.
    pub fn read_granted(&self, gref: GrantRef, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= PAGE_SIZE, "{offset}+{len} leaves the page");
        let page = self.map(gref, false);
        let mut out = alloc::vec![0; len];
        // SAFETY: the frontend granted us this live page (checked by `map`); the range is inside it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                page.as_ptr().cast::<u8>().add(offset),
                out.as_mut_ptr(),
                len,
            )
        }
        out
    }

    /// Writes a ring header field of the page behind `gref` (a misbehaving backend).
    pub fn poke_ring(&self, gref: GrantRef, offset: usize, value: u32) {
        assert!(offset < layout::ENTRIES);
        self.write_granted(gref, offset, &value.to_le_bytes());
    }

    fn store_error(path: &str) -> XenError {
        XenError::Store {
            path: path.to_string(),
            error: "ENOENT".to_string(),
        }
    }
}

impl Grants for Fake {
    fn grant(&mut self, domid: DomId, frame: u64, readonly: bool) -> Result<GrantRef, XenError> {
        self.with(|xen| {
            if xen.grant_limit != 0 && xen.grants.len() >= xen.grant_limit {
                return Err(XenError::GrantTableFull);
            }
            let gref = xen.next_gref;
            xen.next_gref += 1;
            xen.grants.insert(
                gref,
                Grant {
                    domid,
                    frame,
                    readonly,
                    mapped: false,
                },
            );
            Ok(gref)
        })
    }

    fn end_grant(&mut self, gref: GrantRef) -> Result<(), XenError> {
        self.with(|xen| match xen.grants.get(&gref) {
            Some(grant) if grant.mapped => Err(XenError::Hypercall {
                op: "end_grant",
                errno: -16,
            }),
            Some(_) => {
                xen.grants.remove(&gref);
                Ok(())
            }
            None => Err(XenError::Hypercall {
                op: "end_grant",
                errno: -22,
            }),
        })
    }
}

impl EventChannels for Fake {
    fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, XenError> {
        self.with(|xen| {
            let port = xen.next_port;
            xen.next_port += 1;
            xen.ports.insert(
                port,
                PortState {
                    remote,
                    ..PortState::default()
                },
            );
            Ok(port)
        })
    }

    fn notify(&mut self, port: Port) {
        self.with(|xen| {
            let state = xen.ports.entry(port).or_default();
            state.kicks += 1;
            if let Some(peer) = state.peer {
                xen.ports.entry(peer).or_default().pending = true;
            }
        });
    }

    fn take_pending(&mut self, port: Port) -> bool {
        self.with(|xen| core::mem::take(&mut xen.ports.entry(port).or_default().pending))
    }

    fn set_unmasked(&mut self, port: Port, unmasked: bool) {
        self.with(|xen| xen.ports.entry(port).or_default().unmasked = unmasked);
    }
}

impl Store for Fake {
    fn read(&mut self, path: &str) -> Result<String, XenError> {
        self.get(path).ok_or_else(|| Self::store_error(path))
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), XenError> {
        self.set(path, value);
        let follow: Vec<(String, String)> = self.with(|xen| {
            xen.triggers
                .iter()
                .filter(|(p, v, _)| p == path && v == value)
                .flat_map(|(_, _, then)| then.iter().cloned())
                .collect()
        });
        for (p, v) in follow {
            self.set(&p, &v);
        }
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Result<(), XenError> {
        let prefix = format!("{path}/");
        self.with(|xen| {
            xen.store
                .retain(|key, _| key != path && !key.starts_with(&prefix))
        });
        Ok(())
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, XenError> {
        let prefix = format!("{path}/");
        let children: Vec<String> = self.with(|xen| {
            let mut children: Vec<String> = xen
                .store
                .keys()
                .filter_map(|key| key.strip_prefix(&prefix))
                .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
                .collect();
            children.dedup();
            children
        });
        if children.is_empty() && self.get(path).is_none() {
            return Err(Self::store_error(path));
        }
        Ok(children)
    }
}

/// A mapping the fake hands out: the granted page itself (frame -> address identity).
#[derive(Debug)]
pub struct FakeMapping {
    pub gref: GrantRef,
    pub page: NonNull<Page>,
}

/// GNTST_bad_gntref, GNTST_permission_denied, GNTST_bad_copy_arg.
const GNTST_BAD_GNTREF: i16 = -3;
const GNTST_PERMISSION_DENIED: i16 = -8;
const GNTST_BAD_COPY_ARG: i16 = -10;

impl Fake {
    /// The address behind one side of a copy, or its `GNTST_*` error: a grant must exist, be for the
    /// backend and be writable when written; nothing may cross the page.
    fn copy_side(&self, side: CopyPtr, len: u16, write: bool) -> Result<*mut u8, i16> {
        let (frame, offset) = match side {
            CopyPtr::Local { frame, offset } => (frame, offset),
            CopyPtr::Grant { gref, offset, .. } => {
                let grant = self.with(|xen| xen.grants.get(&gref).copied());
                let grant = grant.ok_or(GNTST_BAD_GNTREF)?;
                if grant.domid != BACKEND || (write && grant.readonly) {
                    return Err(GNTST_PERMISSION_DENIED);
                }
                (grant.frame, offset)
            }
        };
        if usize::from(offset) + usize::from(len) > PAGE_SIZE || frame == 0 {
            return Err(GNTST_BAD_COPY_ARG);
        }
        Ok(((frame << 12) as *mut u8).wrapping_add(usize::from(offset)))
    }

    /// Copies made (ops, hypercalls).
    pub fn copies(&self) -> (u64, u64) {
        self.with(|xen| (xen.copy_ops, xen.copy_calls))
    }
}

impl ForeignGrants for Fake {
    type Mapping = FakeMapping;

    fn map_foreign(
        &mut self,
        _domid: DomId,
        gref: GrantRef,
        readonly: bool,
    ) -> Result<FakeMapping, XenError> {
        self.with(|xen| {
            let grant = xen.grants.get_mut(&gref).ok_or(XenError::Grant {
                op: "map",
                status: GNTST_BAD_GNTREF,
            })?;
            if grant.domid != BACKEND || (!readonly && grant.readonly) {
                return Err(XenError::Grant {
                    op: "map",
                    status: GNTST_PERMISSION_DENIED,
                });
            }
            grant.mapped = true;
            xen.mapped += 1;
            Ok(FakeMapping {
                gref,
                page: NonNull::new((grant.frame << 12) as *mut Page).ok_or(XenError::Grant {
                    op: "map",
                    status: GNTST_BAD_GNTREF,
                })?,
            })
        })
    }

    fn mapping_page(&self, mapping: &FakeMapping) -> Option<NonNull<Page>> {
        Some(mapping.page)
    }

    fn unmap_foreign(&mut self, mapping: FakeMapping) -> Result<(), XenError> {
        self.with(|xen| {
            if let Some(grant) = xen.grants.get_mut(&mapping.gref) {
                grant.mapped = false;
            }
            xen.mapped -= 1;
        });
        Ok(())
    }

    fn copy(&mut self, ops: &mut [GnttabCopy]) -> Result<(), XenError> {
        self.with(|xen| {
            xen.copy_calls += 1;
            xen.copy_ops += ops.len() as u64;
        });
        for op in ops.iter_mut() {
            let (source, dest) = op.sides();
            let len = op.len();
            let status = match (
                self.copy_side(source, len, false),
                self.copy_side(dest, len, true),
            ) {
                (Ok(from), Ok(to)) => {
                    // SAFETY: both ranges lie inside live pages (a granted page of the test's
                    // frontend, or a buffer page of the backend under test), checked above.
                    unsafe { core::ptr::copy(from, to, usize::from(len)) };
                    0
                }
                (Err(e), _) | (_, Err(e)) => e,
            };
            op.set_status(status);
        }
        Ok(())
    }
}

impl InterdomainEvents for Fake {
    fn bind_interdomain(&mut self, remote: DomId, remote_port: Port) -> Result<Port, XenError> {
        self.with(|xen| {
            if !xen.ports.contains_key(&remote_port) {
                return Err(XenError::Hypercall {
                    op: "evtchn bind_interdomain",
                    errno: -22,
                });
            }
            let port = xen.next_port;
            xen.next_port += 1;
            xen.ports.insert(
                port,
                PortState {
                    remote,
                    peer: Some(remote_port),
                    ..PortState::default()
                },
            );
            if let Some(theirs) = xen.ports.get_mut(&remote_port) {
                theirs.peer = Some(port);
            }
            Ok(port)
        })
    }

    fn close_port(&mut self, port: Port) {
        self.with(|xen| {
            if let Some(state) = xen.ports.remove(&port) {
                if let Some(theirs) = state.peer.and_then(|p| xen.ports.get_mut(&p)) {
                    theirs.peer = None;
                }
            }
        });
    }
}

/// Netback: attaches to the rings a netfront advertised in xenstore.
pub struct FakeNetback {
    pub xen: Fake,
    pub tx: BackRing<TxRequest, TxResponse>,
    pub rx: BackRing<RxRequest, RxResponse>,
    pub tx_ref: GrantRef,
    pub rx_ref: GrantRef,
    pub port: Port,
}

impl FakeNetback {
    /// Reads `tx-ring-ref`, `rx-ring-ref`, `event-channel` under `frontend` and maps the rings.
    pub fn attach(xen: &Fake, frontend: &str) -> Self {
        let key = |name: &str| -> u32 {
            xen.get(&format!("{frontend}/{name}"))
                .unwrap_or_else(|| panic!("{frontend}/{name} not written"))
                .parse()
                .unwrap()
        };
        let (tx_ref, rx_ref, port) = (key("tx-ring-ref"), key("rx-ring-ref"), key("event-channel"));
        // SAFETY: the frontend's ring pages stay allocated while granted (a granted page is leaked,
        // never freed), and the tests drop the backend before inspecting anything else.
        let tx = unsafe { BackRing::attach(xen.map(tx_ref, true)) };
        // SAFETY: as above.
        let rx = unsafe { BackRing::attach(xen.map(rx_ref, true)) };
        Self {
            xen: xen.clone(),
            tx,
            rx,
            tx_ref,
            rx_ref,
            port,
        }
    }

    /// Answers the next receive request with `respond(request)`: the response to write and the bytes
    /// to copy into the request's page at the response's offset first. False without a request.
    pub fn deliver_with(
        &mut self,
        respond: impl FnOnce(RxRequest) -> (RxResponse, Vec<u8>),
    ) -> bool {
        let Some((_, request)) = self.rx.take_request().expect("frontend rx req_prod") else {
            return false;
        };
        let (response, data) = respond(request);
        if !data.is_empty() {
            self.xen
                .write_granted(request.gref, usize::from(response.offset), &data);
        }
        self.rx.put_response(response).expect("a consumed request");
        if self.rx.push_responses_and_check_notify() {
            self.xen.signal(self.port);
        }
        true
    }

    /// Delivers `frame` like netback does (offset 0, status = length).
    pub fn deliver(&mut self, frame: &[u8]) -> bool {
        self.deliver_with(|request| {
            (
                RxResponse {
                    id: request.id,
                    offset: 0,
                    flags: 0,
                    status: i16::try_from(frame.len()).unwrap(),
                },
                frame.to_vec(),
            )
        })
    }

    /// Receive requests posted and not yet answered.
    pub fn rx_posted(&self) -> u32 {
        self.rx.unconsumed_requests().expect("frontend rx req_prod")
    }

    /// Takes every published transmit request (without answering).
    pub fn take_tx_requests(&mut self) -> Vec<(TxRequest, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((_, request)) = self.tx.take_request().expect("frontend tx req_prod") {
            let data = self.xen.read_granted(
                request.gref,
                usize::from(request.offset),
                usize::from(request.size),
            );
            out.push((request, data));
        }
        out
    }

    /// Answers transmit requests with these responses and signals when asked.
    pub fn respond_tx(&mut self, responses: impl IntoIterator<Item = TxResponse>) {
        for response in responses {
            self.tx.put_response(response).expect("a consumed request");
        }
        if self.tx.push_responses_and_check_notify() {
            self.xen.signal(self.port);
        }
    }

    /// Takes every transmit request, answers each with success, returns the frames.
    pub fn take_tx(&mut self) -> Vec<Vec<u8>> {
        let requests = self.take_tx_requests();
        self.respond_tx(requests.iter().map(|(request, _)| TxResponse {
            id: request.id,
            status: 0,
        }));
        requests.into_iter().map(|(_, data)| data).collect()
    }
}

/// How a fake blkback answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkMode {
    /// Correctly.
    Good,
    /// With `BLKIF_RSP_ERROR`.
    Error,
    /// With another request's id.
    WrongId,
    /// With a write's operation code.
    WrongOperation,
    /// Not at all.
    Silent,
    /// With `rsp_prod` far beyond the requests.
    BadIndex,
}

/// Blkback: serves a disk image to the blkfront that advertised `ring-ref` under `frontend`.
pub struct FakeBlkback {
    pub xen: Fake,
    pub ring: BackRing<BlkRequest, BlkResponse>,
    pub ring_ref: GrantRef,
    pub port: Port,
    pub disk: Vec<u8>,
    pub mode: BlkMode,
    /// Requests seen.
    pub requests: Vec<BlkRequest>,
}

impl FakeBlkback {
    /// Attaches when the frontend has written its ring details; None before.
    pub fn try_attach(xen: &Fake, frontend: &str, disk: Vec<u8>, mode: BlkMode) -> Option<Self> {
        let ring_ref: GrantRef = xen.get(&format!("{frontend}/ring-ref"))?.parse().ok()?;
        let port: Port = xen
            .get(&format!("{frontend}/event-channel"))?
            .parse()
            .ok()?;
        // SAFETY: the frontend's ring page stays allocated while granted (a granted page is leaked,
        // never freed), and the tests drop the backend with the frontend.
        let ring = unsafe { BackRing::attach(xen.map(ring_ref, true)) };
        Some(Self {
            xen: xen.clone(),
            ring,
            ring_ref,
            port,
            disk,
            mode,
            requests: Vec::new(),
        })
    }

    /// Answers every waiting request.
    pub fn service(&mut self) {
        while let Some((_, request)) = self.ring.take_request().expect("frontend req_prod") {
            self.requests.push(request);
            if self.mode == BlkMode::Silent {
                continue;
            }
            let mut status = BLKIF_RSP_OKAY;
            let mut sector = usize::try_from(request.sector_number).unwrap();
            let segments = usize::from(request.nr_segments);
            assert!(
                segments >= 1 && segments <= request.seg.len(),
                "nr_segments {segments}"
            );
            for segment in &request.seg[..segments] {
                assert!(segment.first_sect <= segment.last_sect && segment.last_sect < 8);
                let count = usize::from(segment.last_sect - segment.first_sect) + 1;
                let start = sector * 512;
                let end = start + count * 512;
                if end > self.disk.len() {
                    status = BLKIF_RSP_ERROR;
                    break;
                }
                let data = self.disk[start..end].to_vec();
                self.xen
                    .write_granted(segment.gref, usize::from(segment.first_sect) * 512, &data);
                sector += count;
            }
            let response = BlkResponse {
                id: if self.mode == BlkMode::WrongId {
                    request.id + 100
                } else {
                    request.id
                },
                operation: if self.mode == BlkMode::WrongOperation {
                    1
                } else {
                    request.operation
                },
                pad: 0,
                status: if self.mode == BlkMode::Error {
                    BLKIF_RSP_ERROR
                } else {
                    status
                },
                pad2: 0,
            };
            self.ring
                .put_response(response)
                .expect("a consumed request");
        }
        if self.ring.push_responses_and_check_notify() {
            self.xen.signal(self.port);
        }
        if self.mode == BlkMode::BadIndex {
            self.xen.poke_ring(self.ring_ref, layout::RSP_PROD, 77);
        }
    }
}
