//! Xen netback (`xen/include/public/io/netif.h`, the backend half): serves one client domain's vif, the
//! downstream link of a driver domain (a Qubes net VM), implementing [`NetDevice`].
//!
//! The toolstack (libxl in dom0, for a client whose xl config says `vif = ['backend=<us>,...']`) writes
//! our directory `backend/vif/<client domid>/<devid>` (`frontend`, `frontend-id`, `mac`, `handle`,
//! `online`, `state` = 1, optionally `ip`) and the client's `device/vif/<devid>`. [`Netback::new`]
//! reads ours, publishes the features (`feature-rx-copy` 1, `feature-rx-flip` 0, no scatter-gather, no
//! GSO, no split event channels, one queue), writes `hotplug-status` = `connected` (what a driver
//! domain's hotplug script would write) and switches to InitWait, which is what `xl create` waits for.
//! [`Netback::poll`] then follows the handshake: when the frontend is Initialised or Connected it reads
//! `tx-ring-ref`, `rx-ring-ref`, `event-channel` and `request-rx-copy` (must be 1), maps both ring pages,
//! binds the event channel and switches to Connected. When the frontend closes, vanishes (its domain
//! died) or the toolstack asks (`online` 0, our `state` set to Closing) the rings are unmapped, the port
//! closed and we are Closed; when the toolstack asked, our directory is removed too (libxl waits for that
//! from a driver domain before it finishes `xl destroy`/`network-detach`).
//!
//! Data: nothing of the client's is mapped but the two ring pages; frames move by grant copy
//! (`GNTTABOP_copy`), one hypercall per batch, into and out of our own buffers (2 KiB halves of pages).
//! - Frames the client transmits (its tx requests) are copied into free receive buffers and handed out
//!   in place; a request is taken only when a buffer is free (back-pressure on the client's ring).
//! - Frames we transmit are written into our transmit buffers and copied into the client's posted rx
//!   buffers at [`NetDevice::flush`]; with no rx buffer posted the frame is dropped and counted.
//! - Responses are published as they are made; the event channel is notified once per flush, and only
//!   when a ring's event threshold asks for it.
//!
//! A hostile client: a request with a bad size, offset, gref, or flags we did not negotiate gets an error
//! response and is counted (the first logged); a ring index out of range, or a slot chain longer than
//! netif allows, disconnects the vif (logged once). Never a panic; every table is bounded.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use log::{debug, info, warn};
use smoltcp::phy::{self, DeviceCapabilities};

use super::frontend::{read_number, read_value};
use super::gnttab::{CopyPtr, GnttabCopy};
use super::netfront::{flags, RxRequest, RxResponse, TxRequest, TxResponse, ETHERNET_MTU};
use super::ring::{BackRing, RingError};
use super::{
    DomId, EventChannels, ForeignGrants, InterdomainEvents, Page, Port, Store, XenError,
    XenbusState, PAGE_SIZE,
};
use crate::netdev::{FrameTx, NetDevice};

/// Client vifs one image serves at most (each maps two ring pages from the grant-map pool).
pub const MAX_VIFS: usize = 8;
/// Receive buffers: frames from the client held at once.
pub const RX_BUFFERS: usize = 64;
/// Transmit buffers: frames to the client queued between flushes.
pub const TX_BUFFERS: usize = 64;
/// Bytes per buffer: half a page.
const BUFFER_LEN: usize = PAGE_SIZE / 2;
/// The longest chain of slots netif allows one packet (`XEN_NETBK_LEGACY_SLOTS_MAX`); a longer one is
/// a protocol violation.
const MAX_SLOTS_PER_PACKET: u32 = 18;
/// `NETTXF_more_data`, `NETTXF_extra_info` (tx request flags).
const NETTXF_MORE_DATA: u16 = 1 << 2;
const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// The backend ends of the client's transmit and receive rings.
pub type ClientTxRing = BackRing<TxRequest, TxResponse>;
/// The client's receive ring.
pub type ClientRxRing = BackRing<RxRequest, RxResponse>;

/// Where a client vif lives in xenstore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendPaths {
    /// Our directory, relative to our home: `backend/vif/<domid>/<devid>`.
    pub backend: String,
    /// The client's directory (absolute, from our `frontend` key).
    pub frontend: String,
    /// The client's domain.
    pub frontend_id: DomId,
    /// The device id (the client's `device/vif/<devid>`).
    pub devid: u32,
}

impl BackendPaths {
    /// The key `name` in our directory.
    pub fn back(&self, name: &str) -> String {
        format!("{}/{name}", self.backend)
    }

    /// The key `name` in the client's directory.
    pub fn front(&self, name: &str) -> String {
        format!("{}/{name}", self.frontend)
    }
}

/// What a netback has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetbackStats {
    /// Frames received from the client and handed out.
    pub rx_frames: u64,
    /// Client transmit requests refused (bad size/offset/gref/flags, failed copy).
    pub rx_errors: u64,
    /// Frames sent to the client.
    pub tx_frames: u64,
    /// Frames to the client dropped: no rx buffer posted, no free buffer, failed copy, too long.
    pub tx_dropped: u64,
    /// Grant-copy hypercalls.
    pub copy_calls: u64,
    /// Notifications sent to the client.
    pub notifications: u64,
    /// Protocol violations that disconnected the vif.
    pub violations: u64,
}

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetbackState {
    /// InitWait published: waiting for the frontend's rings.
    WaitFrontend,
    /// Rings mapped, event channel bound, Connected.
    Connected,
    /// Disconnected (the frontend closed, or broke the protocol); may reconnect when the frontend
    /// initialises again.
    Closed,
    /// Gone for good (the toolstack removed the device, or the client's domain died): drop it.
    Gone,
}

/// The mapped rings and the bound port of a connected vif.
struct Rings<M> {
    tx: ClientTxRing,
    rx: ClientRxRing,
    // The rings point into these pages: they are unmapped only after the rings are dropped.
    tx_map: M,
    rx_map: M,
    port: Port,
}

/// A pool of 2 KiB buffers in our own pages (never granted: grant copy reaches them by frame).
struct Buffers {
    pages: Vec<Box<Page>>,
    free: Vec<u16>,
}

impl Buffers {
    fn new(count: usize) -> Self {
        let pages = (0..count.div_ceil(2))
            .map(|_| {
                let page = Box::<Page>::new_zeroed();
                // SAFETY: an all-zero `Page` is a valid value (a byte array).
                unsafe { page.assume_init() }
            })
            .collect();
        Self {
            pages,
            free: (0..count)
                .rev()
                .map(|i| u16::try_from(i).unwrap_or(0))
                .collect(),
        }
    }

    /// The frame and offset of buffer `slot`.
    fn place(&self, slot: u16) -> Option<(u64, u16)> {
        let page = self.pages.get(usize::from(slot) / 2)?;
        let offset = (usize::from(slot) % 2) * BUFFER_LEN;
        Some((
            (&**page as *const Page as u64) >> 12,
            u16::try_from(offset).ok()?,
        ))
    }

    fn bytes(&self, slot: u16, len: usize) -> Option<&[u8]> {
        let page = self.pages.get(usize::from(slot) / 2)?;
        let offset = (usize::from(slot) % 2) * BUFFER_LEN;
        page.0.get(offset..offset + len.min(BUFFER_LEN))
    }

    fn bytes_mut(&mut self, slot: u16, len: usize) -> Option<&mut [u8]> {
        let page = self.pages.get_mut(usize::from(slot) / 2)?;
        let offset = (usize::from(slot) % 2) * BUFFER_LEN;
        page.0.get_mut(offset..offset + len.min(BUFFER_LEN))
    }
}

/// Logs a client anomaly: the first at warning level, later ones at debug level.
fn report(logged: &mut bool, vif: &str, what: core::fmt::Arguments<'_>) {
    if *logged {
        debug!("netback {vif}: {what}");
    } else {
        *logged = true;
        warn!("netback {vif}: {what} (further errors of this client are only counted)");
    }
}

/// Parses `00:16:3e:01:02:03`.
pub fn parse_mac(value: &str) -> Option<[u8; 6]> {
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

/// The MAC a backend uses on the link (Qubes' and Linux netback's convention: the client owns the MAC
/// in xenstore, the backend end is `fe:ff:ff:ff:ff:ff`).
pub const BACKEND_MAC: [u8; 6] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff];

/// A refused packet whose further slots are still to come.
#[derive(Debug, Clone, Copy)]
struct Chain {
    /// The first request's id (answers for extra-info slots carry it).
    id: u16,
    slots: u32,
    /// Another data slot follows (`NETTXF_more_data`).
    more: bool,
    /// An extra-info slot follows.
    extras: bool,
}

/// How a consumed transmit request is answered: its id, and the receive buffer and length its frame is
/// copied into, or (None) the status of an answer without a copy.
type Answer = (u16, Option<(u16, u16)>, i16);

/// One client's vif.
pub struct Netback<H: ForeignGrants + InterdomainEvents + EventChannels> {
    hv: H,
    paths: BackendPaths,
    name: String,
    /// The client's MAC (`mac` in our directory).
    client_mac: [u8; 6],
    /// The client's address(es) (`ip`), as the toolstack wrote it.
    client_ip: Option<String>,
    state: NetbackState,
    rings: Option<Rings<H::Mapping>>,
    inbound: Buffers,
    /// Received frames (buffer, length) not yet handed out.
    ready: VecDeque<(u16, u16)>,
    /// The buffer handed out by the last receive call, freed on the next.
    held: Option<u16>,
    outbound: Buffers,
    /// Frames (buffer, length) queued for the client, copied at flush.
    queued: Vec<(u16, u16)>,
    /// The rest of a refused multi-slot packet still to answer.
    chain: Option<Chain>,
    notify_owed: bool,
    scratch: Box<[u8; BUFFER_LEN]>,
    logged: bool,
    stats: NetbackStats,
}

impl<H: ForeignGrants + InterdomainEvents + EventChannels> Netback<H> {
    /// Takes on vif `devid` of domain `frontend_id`: reads our directory, publishes our features and
    /// `hotplug-status`, and switches to InitWait.
    pub fn new<S: Store + ?Sized>(
        hv: H,
        store: &mut S,
        frontend_id: DomId,
        devid: u32,
    ) -> Result<Self, XenError> {
        let backend = format!("backend/vif/{frontend_id}/{devid}");
        let frontend = read_value(store, &format!("{backend}/frontend"))?;
        if frontend.is_empty() {
            return Err(XenError::Backend(format!("{backend}/frontend is empty")));
        }
        let listed: DomId = read_number(store, &format!("{backend}/frontend-id"))?;
        if listed != frontend_id {
            return Err(XenError::Backend(format!(
                "{backend}/frontend-id is {listed}, not {frontend_id}"
            )));
        }
        let mac_value = read_value(store, &format!("{backend}/mac"))?;
        let client_mac = parse_mac(&mac_value).ok_or_else(|| {
            XenError::Backend(format!("{backend}/mac is {mac_value:?}, not a MAC address"))
        })?;
        let client_ip = read_value(store, &format!("{backend}/ip"))
            .ok()
            .filter(|ip| !ip.is_empty());
        let paths = BackendPaths {
            backend,
            frontend,
            frontend_id,
            devid,
        };
        let net = Self {
            hv,
            name: format!("vif{frontend_id}.{devid}"),
            paths,
            client_mac,
            client_ip,
            state: NetbackState::WaitFrontend,
            rings: None,
            inbound: Buffers::new(RX_BUFFERS),
            ready: VecDeque::with_capacity(RX_BUFFERS),
            held: None,
            outbound: Buffers::new(TX_BUFFERS),
            queued: Vec::with_capacity(TX_BUFFERS),
            chain: None,
            notify_owed: false,
            scratch: Box::new([0; BUFFER_LEN]),
            logged: false,
            stats: NetbackStats::default(),
        };
        let features = [
            ("feature-rx-copy", "1"),
            ("feature-rx-flip", "0"),
            ("feature-sg", "0"),
            ("feature-gso-tcpv4", "0"),
            ("feature-gso-tcpv6", "0"),
            ("feature-ipv6-csum-offload", "0"),
            ("feature-split-event-channels", "0"),
            ("feature-multicast-control", "0"),
            ("feature-ctrl-ring", "0"),
            ("hotplug-status", "connected"),
        ];
        for (key, value) in features {
            store.write(&net.paths.back(key), value)?;
        }
        store.write(&net.paths.back("state"), XenbusState::InitWait.as_str())?;
        Ok(net)
    }

    /// `vif<domid>.<devid>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The xenstore paths.
    pub fn paths(&self) -> &BackendPaths {
        &self.paths
    }

    /// The client's MAC address (from xenstore).
    pub fn client_mac(&self) -> [u8; 6] {
        self.client_mac
    }

    /// The client's address as the toolstack wrote it (`ip`), if any.
    pub fn client_ip(&self) -> Option<&str> {
        self.client_ip.as_deref()
    }

    /// Where the handshake is.
    pub fn state(&self) -> NetbackState {
        self.state
    }

    /// Whether the rings are connected.
    pub fn is_connected(&self) -> bool {
        self.rings.is_some()
    }

    /// Our event channel, when connected.
    pub fn port(&self) -> Option<Port> {
        self.rings.as_ref().map(|r| r.port)
    }

    /// What the vif has counted.
    pub fn stats(&self) -> NetbackStats {
        self.stats
    }

    /// One step of the xenbus handshake, after a xenstore watch fired (or on a timer): connects when
    /// the frontend has published its rings, disconnects when it closes or vanishes, and removes our
    /// directory when the toolstack takes the device away. Returns the state; at
    /// [`NetbackState::Gone`] the caller drops the vif.
    pub fn poll<S: Store + ?Sized>(&mut self, store: &mut S) -> NetbackState {
        if self.state == NetbackState::Gone {
            return self.state;
        }
        let ours = read_value(store, &self.paths.back("state")).ok();
        let online = read_value(store, &self.paths.back("online")).ok();
        let removing = ours.is_none()
            || online.as_deref() == Some("0")
            || ours.as_deref() == Some(XenbusState::Closing.as_str());
        let front = match read_value(store, &self.paths.front("state")) {
            Ok(value) => XenbusState::parse(&value),
            Err(_) => None,
        };
        let front_gone = front.is_none();
        if removing || front_gone {
            self.teardown();
            if ours.is_some() {
                let _ = store.write(&self.paths.back("state"), XenbusState::Closed.as_str());
            }
            if removing {
                info!("netback {}: removed by the toolstack", self.name);
                if ours.is_some() {
                    if let Err(e) = store.remove(&self.paths.backend) {
                        warn!(
                            "netback {}: removing {}: {e}",
                            self.name, self.paths.backend
                        );
                    }
                }
            } else {
                info!("netback {}: the client's vif vanished", self.name);
            }
            self.state = NetbackState::Gone;
            return self.state;
        }
        match (self.state, front) {
            (
                NetbackState::WaitFrontend,
                Some(XenbusState::Initialised | XenbusState::Connected),
            ) => {
                if let Err(e) = self.connect(store) {
                    warn!("netback {}: connecting: {e}", self.name);
                    self.teardown();
                    let _ = store.write(&self.paths.back("state"), XenbusState::Closed.as_str());
                    self.state = NetbackState::Closed;
                }
            }
            (
                NetbackState::WaitFrontend | NetbackState::Connected,
                Some(XenbusState::Closing | XenbusState::Closed),
            ) => {
                self.teardown();
                let _ = store.write(&self.paths.back("state"), XenbusState::Closed.as_str());
                info!("netback {}: the client closed", self.name);
                self.state = NetbackState::Closed;
            }
            (
                NetbackState::Closed,
                Some(XenbusState::Initialising | XenbusState::InitWait | XenbusState::Unknown),
            ) if store
                .write(&self.paths.back("state"), XenbusState::InitWait.as_str())
                .is_ok() =>
            {
                // The client starts over (a reloaded driver): so do we.
                self.state = NetbackState::WaitFrontend;
            }
            _ => {}
        }
        self.state
    }

    fn connect<S: Store + ?Sized>(&mut self, store: &mut S) -> Result<(), XenError> {
        let copy: String = read_value(store, &self.paths.front("request-rx-copy"))
            .unwrap_or_else(|_| String::from("0"));
        if copy != "1" {
            return Err(XenError::Backend(format!(
                "{} is {copy:?}: only receive-copy is supported",
                self.paths.front("request-rx-copy")
            )));
        }
        let tx_ref: u32 = read_number(store, &self.paths.front("tx-ring-ref"))?;
        let rx_ref: u32 = read_number(store, &self.paths.front("rx-ring-ref"))?;
        let remote_port: Port = read_number(store, &self.paths.front("event-channel"))?;
        let domid = self.paths.frontend_id;
        let tx_map = self.hv.map_foreign(domid, tx_ref, false)?;
        let rx_map = match self.hv.map_foreign(domid, rx_ref, false) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.hv.unmap_foreign(tx_map);
                return Err(e);
            }
        };
        let pages = (self.hv.mapping_page(&tx_map), self.hv.mapping_page(&rx_map));
        let (Some(tx_page), Some(rx_page)) = pages else {
            let _ = self.hv.unmap_foreign(tx_map);
            let _ = self.hv.unmap_foreign(rx_map);
            return Err(XenError::Backend(
                "a mapped ring page has no address".into(),
            ));
        };
        let port = match self.hv.bind_interdomain(domid, remote_port) {
            Ok(port) => port,
            Err(e) => {
                let _ = self.hv.unmap_foreign(tx_map);
                let _ = self.hv.unmap_foreign(rx_map);
                return Err(e);
            }
        };
        // SAFETY: the pages are the client's ring pages, mapped until `disconnect` unmaps them, which
        // drops these rings first; nothing but the rings and the client touches them.
        let (tx, rx) = unsafe { (ClientTxRing::attach(tx_page), ClientRxRing::attach(rx_page)) };
        self.rings = Some(Rings {
            tx,
            rx,
            tx_map,
            rx_map,
            port,
        });
        self.hv.set_unmasked(port, false);
        store.write(&self.paths.back("state"), XenbusState::Connected.as_str())?;
        self.state = NetbackState::Connected;
        // The client may have queued frames before we connected.
        self.notify_owed = true;
        info!(
            "netback {}: connected (client mac {}, ip {}, tx ring {tx_ref}, rx ring {rx_ref}, port {port})",
            self.name,
            format_mac(self.client_mac),
            self.client_ip.as_deref().unwrap_or("unknown")
        );
        Ok(())
    }

    /// Unmaps the rings and closes the port; frames queued for the client are dropped.
    fn teardown(&mut self) {
        let Some(Rings {
            tx,
            rx,
            tx_map,
            rx_map,
            port,
        }) = self.rings.take()
        else {
            return;
        };
        // The rings point into the mapped pages: gone before the pages are unmapped.
        let _ = (tx, rx);
        self.hv.set_unmasked(port, false);
        self.hv.close_port(port);
        for map in [tx_map, rx_map] {
            if let Err(e) = self.hv.unmap_foreign(map) {
                warn!("netback {}: unmapping a ring: {e}", self.name);
            }
        }
        // Received frames stay valid (our buffers); queued ones can no longer go anywhere.
        for (slot, _) in self.queued.drain(..) {
            self.outbound.free.push(slot);
            self.stats.tx_dropped += 1;
        }
        self.chain = None;
    }

    /// A protocol violation: the vif is disconnected (Closed; the client may start over).
    fn violation(&mut self, what: core::fmt::Arguments<'_>) {
        self.stats.violations += 1;
        warn!("netback {}: {what}; disconnected", self.name);
        self.teardown();
        self.state = NetbackState::Closed;
    }

    fn ring_violation(&mut self, ring: &str, error: RingError) {
        self.violation(format_args!("{ring} ring: {error}"));
    }

    /// Takes the client's transmit requests while receive buffers are free, copies the frames in one
    /// batch and answers every request.
    fn pull(&mut self) {
        if let Some(slot) = self.held.take() {
            self.inbound.free.push(slot);
        }
        if self.rings.is_none() || self.inbound.free.is_empty() {
            return;
        }
        let domid = self.paths.frontend_id;
        // (request id, buffer or None for an error/null answer, status when None)
        let mut answers: Vec<Answer> = Vec::new();
        let mut ops: Vec<GnttabCopy> = Vec::new();
        let budget = ClientTxRing::SIZE;
        for _ in 0..budget {
            if self.inbound.free.is_empty() {
                break;
            }
            let Some(rings) = self.rings.as_mut() else {
                return;
            };
            let request = match rings.tx.take_request() {
                Ok(Some((_, request))) => request,
                Ok(None) => break,
                Err(error) => {
                    self.ring_violation("transmit", error);
                    return;
                }
            };
            if let Some(mut chain) = self.chain {
                chain.slots += 1;
                if chain.slots > MAX_SLOTS_PER_PACKET {
                    self.violation(format_args!(
                        "transmit request {} spans more than {MAX_SLOTS_PER_PACKET} slots",
                        chain.id
                    ));
                    return;
                }
                if chain.extras {
                    // An extra-info slot: its type and flags overlay the gref; it gets a null answer.
                    let [_, extra_flags, _, _] = request.gref.to_le_bytes();
                    chain.extras = extra_flags & flags::XEN_NETIF_EXTRA_FLAG_MORE != 0;
                    answers.push((chain.id, None, flags::NETIF_RSP_NULL));
                } else {
                    // A further data slot of the refused packet.
                    chain.more = request.flags & NETTXF_MORE_DATA != 0;
                    answers.push((request.id, None, flags::NETIF_RSP_ERROR));
                }
                self.chain = (chain.more || chain.extras).then_some(chain);
                continue;
            }
            let refused = if request.flags & (NETTXF_MORE_DATA | NETTXF_EXTRA_INFO) != 0 {
                Some("several slots or extra info (not negotiated)")
            } else if request.size == 0 || usize::from(request.size) > ETHERNET_MTU {
                Some("a bad size")
            } else if usize::from(request.offset) + usize::from(request.size) > PAGE_SIZE {
                Some("a frame beyond its page")
            } else {
                None
            };
            if let Some(why) = refused {
                self.stats.rx_errors += 1;
                report(
                    &mut self.logged,
                    &self.name,
                    format_args!(
                        "transmit request {} refused: {why} (gref {}, offset {}, size {}, flags {:#x})",
                        request.id, request.gref, request.offset, request.size, request.flags
                    ),
                );
                answers.push((request.id, None, flags::NETIF_RSP_ERROR));
                let chain = Chain {
                    id: request.id,
                    slots: 1,
                    more: request.flags & NETTXF_MORE_DATA != 0,
                    extras: request.flags & NETTXF_EXTRA_INFO != 0,
                };
                self.chain = (chain.more || chain.extras).then_some(chain);
                continue;
            }
            let Some(slot) = self.inbound.free.pop() else {
                break;
            };
            let op = self.inbound.place(slot).and_then(|(frame, offset)| {
                GnttabCopy::new(
                    CopyPtr::Grant {
                        domid,
                        gref: request.gref,
                        offset: request.offset,
                    },
                    CopyPtr::Local { frame, offset },
                    request.size,
                )
                .ok()
            });
            match op {
                Some(op) => {
                    ops.push(op);
                    answers.push((request.id, Some((slot, request.size)), 0));
                }
                None => {
                    self.inbound.free.push(slot);
                    self.stats.rx_errors += 1;
                    answers.push((request.id, None, flags::NETIF_RSP_ERROR));
                }
            }
        }
        if answers.is_empty() {
            return;
        }
        let copied = if ops.is_empty() {
            Ok(())
        } else {
            self.stats.copy_calls += 1;
            self.hv.copy(&mut ops)
        };
        if let Err(e) = &copied {
            report(
                &mut self.logged,
                &self.name,
                format_args!("grant copy of {} frames failed: {e}", ops.len()),
            );
        }
        let mut statuses = ops.iter().map(GnttabCopy::status);
        let mut responses = Vec::with_capacity(answers.len());
        for (id, buffer, status) in answers {
            let status = match buffer {
                None => status,
                Some((slot, len)) => {
                    let op_status = statuses.next().unwrap_or(-1);
                    if copied.is_ok() && op_status == 0 {
                        self.ready.push_back((slot, len));
                        self.stats.rx_frames += 1;
                        flags::NETIF_RSP_OKAY
                    } else {
                        self.inbound.free.push(slot);
                        self.stats.rx_errors += 1;
                        if copied.is_ok() {
                            report(
                                &mut self.logged,
                                &self.name,
                                format_args!(
                                    "transmit request {id}: grant copy failed ({})",
                                    super::gnttab::status_name(op_status)
                                ),
                            );
                        }
                        flags::NETIF_RSP_ERROR
                    }
                }
            };
            responses.push(TxResponse { id, status });
        }
        if let Some(rings) = self.rings.as_mut() {
            for response in responses {
                // Never None: each response answers a request consumed above.
                let _ = rings.tx.put_response(response);
            }
            self.notify_owed |= rings.tx.push_responses_and_check_notify();
        }
    }

    /// Copies the queued frames into the client's posted rx buffers (one hypercall) and answers them;
    /// frames without a posted buffer are dropped and counted.
    fn push_out(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let domid = self.paths.frontend_id;
        let queued = core::mem::take(&mut self.queued);
        let mut ops: Vec<GnttabCopy> = Vec::with_capacity(queued.len());
        // (request id, frame length, whether an op was made)
        let mut answers: Vec<(u16, u16, bool)> = Vec::with_capacity(queued.len());
        let mut dropped = 0u64;
        for &(slot, len) in &queued {
            let Some(rings) = self.rings.as_mut() else {
                dropped += 1;
                continue;
            };
            let request = match rings.rx.take_request() {
                Ok(Some((_, request))) => request,
                Ok(None) => {
                    dropped += 1;
                    continue;
                }
                Err(error) => {
                    self.ring_violation("receive", error);
                    dropped += 1;
                    continue;
                }
            };
            let op = self.outbound.place(slot).and_then(|(frame, offset)| {
                GnttabCopy::new(
                    CopyPtr::Local { frame, offset },
                    CopyPtr::Grant {
                        domid,
                        gref: request.gref,
                        offset: 0,
                    },
                    len,
                )
                .ok()
            });
            match op {
                Some(op) => {
                    ops.push(op);
                    answers.push((request.id, len, true));
                }
                None => answers.push((request.id, len, false)),
            }
        }
        for (slot, _) in queued {
            self.outbound.free.push(slot);
        }
        if dropped > 0 {
            self.stats.tx_dropped += dropped;
            debug!(
                "netback {}: {dropped} frames dropped: no receive buffer posted",
                self.name
            );
        }
        let Some(rings) = self.rings.as_mut() else {
            return;
        };
        if answers.is_empty() {
            return;
        }
        let copied = if ops.is_empty() {
            Ok(())
        } else {
            self.stats.copy_calls += 1;
            self.hv.copy(&mut ops)
        };
        let mut statuses = ops.iter().map(GnttabCopy::status);
        let mut failed = None;
        for (id, len, made) in answers {
            let ok = made && statuses.next() == Some(0) && copied.is_ok();
            let status = if ok {
                self.stats.tx_frames += 1;
                i16::try_from(len).unwrap_or(flags::NETIF_RSP_ERROR)
            } else {
                self.stats.tx_dropped += 1;
                failed = Some(id);
                flags::NETIF_RSP_ERROR
            };
            let _ = rings.rx.put_response(RxResponse {
                id,
                offset: 0,
                flags: 0,
                status,
            });
        }
        self.notify_owed |= rings.rx.push_responses_and_check_notify();
        if let Some(id) = failed {
            let what = match &copied {
                Err(e) => format!("{e}"),
                Ok(()) => String::from("a bad grant"),
            };
            report(
                &mut self.logged,
                &self.name,
                format_args!("receive request {id}: copy to the client failed: {what}"),
            );
        }
    }

    /// Queues a frame for the client: `fill` writes at most `max` bytes into a buffer.
    fn emit_sized<R>(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> (R, usize)) -> (R, bool) {
        let max = max.min(ETHERNET_MTU);
        let slot = if self.rings.is_some() {
            self.outbound.free.pop()
        } else {
            None
        };
        let Some(slot) = slot else {
            self.stats.tx_dropped += 1;
            return (f(self.scratch.get_mut(..max).unwrap_or(&mut [])).0, false);
        };
        let Some(buffer) = self.outbound.bytes_mut(slot, max) else {
            self.outbound.free.push(slot);
            self.stats.tx_dropped += 1;
            return (f(self.scratch.get_mut(..max).unwrap_or(&mut [])).0, false);
        };
        let (result, len) = f(buffer);
        let len = len.min(max);
        if len == 0 {
            self.outbound.free.push(slot);
            return (result, false);
        }
        self.queued.push((slot, u16::try_from(len).unwrap_or(0)));
        (result, true)
    }

    /// The next received frame after offering each to `take`: its buffer and length.
    fn next_frame(&mut self, take: &mut dyn FnMut(&mut [u8]) -> bool) -> Option<(u16, usize)> {
        for _ in 0..RX_BUFFERS * 2 {
            if self.ready.is_empty() {
                self.pull();
            }
            let (slot, len) = self.ready.pop_front()?;
            let len = usize::from(len);
            let frame = self.inbound.bytes_mut(slot, len)?;
            if take(frame) {
                self.inbound.free.push(slot);
                continue;
            }
            self.held = Some(slot);
            return Some((slot, len));
        }
        None
    }
}

impl<H: ForeignGrants + InterdomainEvents + EventChannels> Drop for Netback<H> {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// A frame received from the client, in our buffer until the next call.
pub struct NetbackRx<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for NetbackRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Permission to queue frames for the client (copied and notified by `flush`).
pub struct NetbackTx<'a, H: ForeignGrants + InterdomainEvents + EventChannels> {
    net: &'a mut Netback<H>,
}

impl<H: ForeignGrants + InterdomainEvents + EventChannels> FrameTx for NetbackTx<'_, H> {
    fn emit_sized<R>(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> (R, usize)) -> (R, bool) {
        self.net.emit_sized(max, f)
    }

    fn count_drop(&mut self) {
        self.net.stats.tx_dropped += 1;
    }
}

impl<H: ForeignGrants + InterdomainEvents + EventChannels> phy::TxToken for NetbackTx<'_, H> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, len: usize, f: F) -> R {
        FrameTx::emit(&mut self, len, f)
    }
}

impl<H: ForeignGrants + InterdomainEvents + EventChannels> NetDevice for Netback<H> {
    type Rx<'a>
        = NetbackRx<'a>
    where
        Self: 'a;
    type Tx<'a>
        = NetbackTx<'a, H>
    where
        Self: 'a;

    /// Our end of the link: [`BACKEND_MAC`] (the client's own MAC is [`Netback::client_mac`]).
    fn mac_address(&self) -> [u8; 6] {
        BACKEND_MAC
    }

    fn capabilities(&self) -> DeviceCapabilities {
        crate::netdev::ethernet_capabilities(TX_BUFFERS)
    }

    fn receive_unless(
        &mut self,
        take: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Option<(Self::Rx<'_>, Self::Tx<'_>)> {
        let (slot, len) = self.next_frame(take)?;
        // Hand out a copy-free view: the buffer is ours and stays held until the next call.
        let frame: *const [u8] = self.inbound.bytes(slot, len)?;
        // SAFETY: `frame` points into a page of `self.inbound`, which is neither freed nor written
        // while `held` names it (until the next call, which needs `&mut self` again); the transmit
        // permission only touches `outbound`, `queued`, `scratch` and counters.
        let frame = unsafe { &*frame };
        Some((NetbackRx { frame }, NetbackTx { net: self }))
    }

    fn receive_mut(&mut self) -> Option<(&mut [u8], Self::Tx<'_>)> {
        let (slot, len) = self.next_frame(&mut |_| false)?;
        let frame: *mut [u8] = self.inbound.bytes_mut(slot, len)?;
        // SAFETY: as in `receive_unless`; the transmit permission never reaches `inbound`.
        let frame = unsafe { &mut *frame };
        Some((frame, NetbackTx { net: self }))
    }

    fn transmit(&mut self) -> Option<Self::Tx<'_>> {
        if self.rings.is_none() || self.outbound.free.is_empty() {
            return None;
        }
        Some(NetbackTx { net: self })
    }

    fn rx_pending(&self) -> bool {
        !self.ready.is_empty()
            || (!self.inbound.free.is_empty()
                && self
                    .rings
                    .as_ref()
                    .is_some_and(|r| r.tx.unconsumed_requests().is_ok_and(|n| n > 0)))
    }

    fn refill(&mut self) {
        if let Some(slot) = self.held.take() {
            self.inbound.free.push(slot);
        }
    }

    fn flush(&mut self) {
        self.push_out();
        let Some(rings) = self.rings.as_mut() else {
            return;
        };
        self.notify_owed |= rings.tx.push_responses_and_check_notify();
        if core::mem::take(&mut self.notify_owed) {
            self.stats.notifications += 1;
            let port = rings.port;
            self.hv.notify(port);
        }
    }

    fn ack_interrupt(&mut self) {
        if let Some(port) = self.port() {
            self.hv.take_pending(port);
        }
    }

    fn set_interrupts(&mut self, on: bool) {
        let Some(port) = self.port() else {
            return;
        };
        self.hv.set_unmasked(port, on);
        if on {
            let checked = self.rings.as_mut().map(|r| r.tx.final_check_for_requests());
            if let Some(Err(error)) = checked {
                self.ring_violation("transmit", error);
            }
        }
    }

    fn tx_dropped(&self) -> u64 {
        self.stats.tx_dropped
    }
}

/// Lists the client vifs the toolstack has given us: `(domid, devid)` under `backend/vif`, at most
/// [`MAX_VIFS`] of them (the rest are logged and ignored).
pub fn list_vifs<S: Store + ?Sized>(store: &mut S) -> Vec<(DomId, u32)> {
    let mut found = Vec::new();
    let Ok(domains) = store.directory("backend/vif") else {
        return found;
    };
    for domain in domains {
        let Ok(domid) = domain.parse::<DomId>() else {
            continue;
        };
        let Ok(devices) = store.directory(&format!("backend/vif/{domid}")) else {
            continue;
        };
        for device in devices {
            let Ok(devid) = device.parse::<u32>() else {
                continue;
            };
            if found.len() >= MAX_VIFS {
                warn!("netback: more than {MAX_VIFS} client vifs; vif{domid}.{devid} ignored");
                continue;
            }
            found.push((domid, devid));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::fake::{Fake, BACKEND};
    use crate::xen::frontend::Frontend;
    use crate::xen::frontend::SharedPage;
    use crate::xen::netfront::Netfront;
    use crate::xen::ring::{layout, FrontRing};
    use alloc::string::ToString;
    use smoltcp::phy::RxToken;

    const CLIENT: DomId = 5;
    const BACK: &str = "backend/vif/5/0";
    const FRONT: &str = "device/vif/0";

    /// What libxl writes for `vif = ['backend=<us>,mac=...,ip=...']`.
    fn platform() -> Fake {
        let xen = Fake::new();
        for (key, value) in [
            ("frontend", FRONT),
            ("frontend-id", "5"),
            ("mac", "00:16:3e:5e:6c:05"),
            ("ip", "10.137.0.5"),
            ("handle", "0"),
            ("online", "1"),
            ("state", "1"),
            ("type", "vif"),
        ] {
            xen.set(&format!("{BACK}/{key}"), value);
        }
        for (key, value) in [
            ("backend", BACK),
            ("backend-id", "0"),
            ("mac", "00:16:3e:5e:6c:05"),
            ("handle", "0"),
            ("state", "1"),
        ] {
            xen.set(&format!("{FRONT}/{key}"), value);
        }
        xen
    }

    /// The client's netfront and our netback, connected through the fake.
    fn connected() -> (Fake, Netfront<Fake>, Netback<Fake>) {
        let xen = platform();
        let mut store = xen.clone();
        let mut back = Netback::new(xen.clone(), &mut store, CLIENT, 0).expect("probes");
        let mut front = Netfront::new(xen.clone(), &mut store, 0).expect("frontend");
        assert!(!front.poll_connect(&mut store, 0, 100).unwrap());
        assert_eq!(back.poll(&mut store), NetbackState::Connected);
        assert!(front.poll_connect(&mut store, 1, 100).unwrap());
        (xen, front, back)
    }

    fn frame(tag: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| tag ^ (i as u8)).collect()
    }

    fn receive_all<D: NetDevice>(dev: &mut D) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((rx, _tx)) = dev.receive_unless(&mut |_| false) {
            out.push(rx.consume(|bytes| bytes.to_vec()));
        }
        out
    }

    #[test]
    fn handshake_publishes_features_and_connects() {
        let (xen, front, back) = connected();
        let key = |name: &str| xen.get(&format!("{BACK}/{name}")).unwrap();
        assert_eq!(key("state"), "4");
        assert_eq!(key("feature-rx-copy"), "1");
        assert_eq!(key("feature-rx-flip"), "0");
        assert_eq!(key("feature-sg"), "0");
        assert_eq!(key("hotplug-status"), "connected");
        assert_eq!(back.client_mac(), [0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x05]);
        assert_eq!(back.client_ip(), Some("10.137.0.5"));
        assert_eq!(back.name(), "vif5.0");
        assert!(front.is_connected() && back.is_connected());
        assert_eq!(xen.with(|x| x.mapped), 2);
        // Our port is bound to the frontend's.
        let port = back.port().unwrap();
        assert_eq!(xen.port(port).peer, Some(front.port()));
        assert_eq!(xen.port(front.port()).peer, Some(port));
        assert_eq!(list_vifs(&mut xen.clone()), [(5, 0)]);
    }

    #[test]
    fn waits_in_initwait_for_the_frontend() {
        let xen = platform();
        let mut store = xen.clone();
        let mut back = Netback::new(xen.clone(), &mut store, CLIENT, 0).unwrap();
        assert_eq!(xen.get(&format!("{BACK}/state")).unwrap(), "2");
        assert_eq!(back.poll(&mut store), NetbackState::WaitFrontend);
        assert!(!back.is_connected());
        // Nothing to send to yet: dropped and counted, never blocked.
        assert!(back.transmit().is_none());
    }

    #[test]
    fn frames_flow_both_ways_with_batched_copies() {
        let (xen, mut front, mut back) = connected();
        let sent: Vec<Vec<u8>> = (0..3)
            .map(|i| frame(i, 60 + usize::from(i) * 500))
            .collect();
        {
            let mut tx = front.transmit().unwrap();
            for f in &sent {
                assert!(tx.send(f));
            }
        }
        front.flush();
        // The client's kick reached our port.
        assert!(xen.port(back.port().unwrap()).pending);
        back.ack_interrupt();
        assert!(back.rx_pending());
        let calls = xen.copies().1;
        assert_eq!(receive_all(&mut back), sent);
        assert_eq!(xen.copies().1, calls + 1, "one grant copy for the batch");
        assert_eq!(back.stats().rx_frames, 3);
        back.flush();
        // The client's transmit buffers come back.
        front.transmit().unwrap();
        assert_eq!(front.stats().tx_errors, 0);

        let replies: Vec<Vec<u8>> = (0..4)
            .map(|i| frame(0x80 | i, 1514 - usize::from(i)))
            .collect();
        {
            let mut tx = back.transmit().unwrap();
            for f in &replies {
                assert!(tx.send(f));
            }
        }
        let calls = xen.copies().1;
        back.flush();
        assert_eq!(xen.copies().1, calls + 1);
        assert!(xen.port(front.port()).pending);
        assert_eq!(receive_all(&mut front), replies);
        assert_eq!(back.stats().tx_frames, 4);
        assert_eq!(back.tx_dropped(), 0);
        // Received in place and rewritten there.
        {
            let mut tx = front.transmit().unwrap();
            assert!(tx.send(&frame(9, 100)));
        }
        front.flush();
        let (bytes, _tx) = back.receive_mut().unwrap();
        bytes[0] = 0xee;
        assert_eq!(bytes.len(), 100);
    }

    #[test]
    fn frames_to_a_client_without_buffers_are_dropped() {
        let (_xen, _front, mut back) = connected();
        // The client posted 128 receive buffers and takes nothing back.
        let mut sent = 0;
        for _ in 0..3 {
            let mut tx = back.transmit().unwrap();
            for _ in 0..TX_BUFFERS {
                assert!(tx.send(&frame(1, 64)));
            }
            sent += TX_BUFFERS;
            back.flush();
        }
        let stats = back.stats();
        assert_eq!(stats.tx_frames, 128);
        assert_eq!(stats.tx_dropped, (sent - 128) as u64);
        // Queueing more than the buffers hold drops too, never blocks.
        let mut tx = back.transmit().unwrap();
        for _ in 0..TX_BUFFERS {
            tx.send(&frame(2, 64));
        }
        assert!(!tx.send(&frame(3, 64)));
        assert!(!tx.send(&[0; 2000]));
    }

    /// A hand-made frontend that writes whatever it likes into its rings.
    struct RawFront {
        xen: Fake,
        _pages: [SharedPage; 2],
        tx: FrontRing<TxRequest, TxResponse>,
        rx: FrontRing<RxRequest, RxResponse>,
        tx_ref: u32,
        data: SharedPage,
    }

    impl RawFront {
        fn connect(xen: &Fake) -> (Self, Netback<Fake>) {
            let mut store = xen.clone();
            let mut back = Netback::new(xen.clone(), &mut store, CLIENT, 0).unwrap();
            let mut g = xen.clone();
            let mut tx_page = SharedPage::new();
            let mut rx_page = SharedPage::new();
            let mut data = SharedPage::new();
            let tx_ref = tx_page.grant(&mut g, BACKEND, false).unwrap();
            let rx_ref = rx_page.grant(&mut g, BACKEND, false).unwrap();
            data.grant(&mut g, BACKEND, false).unwrap();
            // SAFETY: the pages live in the returned struct (granted pages are never freed).
            let tx = unsafe { FrontRing::init(tx_page.ptr()) };
            // SAFETY: as above.
            let rx = unsafe { FrontRing::init(rx_page.ptr()) };
            let port = g.alloc_unbound(BACKEND).unwrap();
            for (key, value) in [
                ("tx-ring-ref", tx_ref.to_string()),
                ("rx-ring-ref", rx_ref.to_string()),
                ("event-channel", port.to_string()),
                ("request-rx-copy", "1".into()),
                ("state", "4".into()),
            ] {
                xen.set(&format!("{FRONT}/{key}"), &value);
            }
            assert_eq!(back.poll(&mut store), NetbackState::Connected);
            (
                RawFront {
                    xen: xen.clone(),
                    _pages: [tx_page, rx_page],
                    tx,
                    rx,
                    tx_ref,
                    data,
                },
                back,
            )
        }

        fn send(&mut self, request: TxRequest) {
            self.tx.put_request(request).unwrap();
            self.tx.push_requests_and_check_notify();
        }

        fn responses(&mut self) -> Vec<TxResponse> {
            let mut out = Vec::new();
            while let Some((_, r)) = self.tx.take_response().unwrap() {
                out.push(r);
            }
            out
        }

        fn good(&mut self, id: u16, len: u16) -> TxRequest {
            let gref = self.data.gref().unwrap();
            self.xen
                .write_granted(gref, 0, &frame(id as u8, usize::from(len)));
            TxRequest {
                gref,
                offset: 0,
                flags: 0,
                id,
                size: len,
            }
        }
    }

    #[test]
    fn hostile_requests_get_error_responses() {
        let xen = platform();
        let (mut raw, mut back) = RawFront::connect(&xen);
        let good = raw.good(1, 80);
        let bad = [
            TxRequest {
                size: 0,
                id: 2,
                ..good
            },
            TxRequest {
                size: 2000,
                id: 3,
                ..good
            },
            TxRequest {
                offset: 4000,
                size: 200,
                id: 4,
                ..good
            },
            TxRequest {
                gref: 9999,
                id: 5,
                ..good
            },
            TxRequest {
                gref: raw.tx_ref + 100,
                id: 6,
                ..good
            },
        ];
        for request in bad {
            raw.send(request);
        }
        // A two-slot packet (not negotiated), then one with an extra-info slot.
        raw.send(TxRequest {
            flags: NETTXF_MORE_DATA,
            id: 7,
            ..good
        });
        raw.send(TxRequest { id: 8, ..good });
        raw.send(TxRequest {
            flags: NETTXF_EXTRA_INFO,
            id: 9,
            ..good
        });
        raw.send(TxRequest {
            gref: 0,
            id: 0,
            ..good
        });
        raw.send(good);
        let frames = receive_all(&mut back);
        assert_eq!(frames, [frame(1, 80)]);
        let statuses: Vec<(u16, i16)> = raw.responses().iter().map(|r| (r.id, r.status)).collect();
        assert_eq!(
            statuses,
            [
                (2, -1),
                (3, -1),
                (4, -1),
                (5, -1),
                (6, -1),
                (7, -1),
                (8, -1),
                (9, -1),
                (9, 1),
                (1, 0)
            ]
        );
        assert_eq!(back.stats().rx_errors, 7);
        assert_eq!(back.stats().violations, 0);
        assert!(back.is_connected());
        // A receive request with a bad gref: the frame is dropped, the request answered.
        raw.rx
            .put_request(RxRequest {
                id: 3,
                pad: 0,
                gref: 4242,
            })
            .unwrap();
        raw.rx.push_requests_and_check_notify();
        back.transmit().unwrap().send(&frame(1, 70));
        back.flush();
        let (_, rsp) = raw.rx.take_response().unwrap().unwrap();
        assert_eq!((rsp.id, rsp.status), (3, -1));
        assert_eq!(back.tx_dropped(), 1);
    }

    #[test]
    fn an_overlong_chain_or_a_bad_index_disconnects() {
        let xen = platform();
        let (mut raw, mut back) = RawFront::connect(&xen);
        let good = raw.good(1, 80);
        for id in 0..=MAX_SLOTS_PER_PACKET as u16 {
            raw.send(TxRequest {
                flags: NETTXF_MORE_DATA,
                id,
                ..good
            });
        }
        assert!(receive_all(&mut back).is_empty());
        assert_eq!(back.stats().violations, 1);
        assert!(!back.is_connected());
        assert_eq!(back.state(), NetbackState::Closed);
        assert_eq!(xen.with(|x| x.mapped), 0);

        let xen = platform();
        let (raw, mut back) = RawFront::connect(&xen);
        xen.poke_ring(raw.tx_ref, layout::REQ_PROD, 100_000);
        assert!(!back.rx_pending());
        assert!(receive_all(&mut back).is_empty());
        assert_eq!(back.stats().violations, 1);
        assert_eq!(xen.with(|x| x.mapped), 0);
        // Polling a broken vif again is harmless.
        back.flush();
        back.set_interrupts(true);
        assert!(back.transmit().is_none());
    }

    #[test]
    fn a_client_that_closes_or_dies_is_cleaned_up() {
        let (xen, _front, mut back) = connected();
        let mut store = xen.clone();
        xen.set(&format!("{FRONT}/state"), "5");
        assert_eq!(back.poll(&mut store), NetbackState::Closed);
        assert_eq!(xen.get(&format!("{BACK}/state")).unwrap(), "6");
        assert_eq!(xen.with(|x| x.mapped), 0);
        let port_count = xen.with(|x| x.ports.len());
        assert_eq!(port_count, 1, "only the frontend's port is left");
        // The client starts over.
        xen.set(&format!("{FRONT}/state"), "1");
        assert_eq!(back.poll(&mut store), NetbackState::WaitFrontend);
        xen.set(&format!("{FRONT}/state"), "4");
        assert_eq!(back.poll(&mut store), NetbackState::Connected);

        // The domain dies: its whole directory vanishes.
        Store::remove(&mut store, FRONT).unwrap();
        assert_eq!(back.poll(&mut store), NetbackState::Gone);
        assert_eq!(xen.with(|x| x.mapped), 0);
        assert!(back.transmit().is_none());
        assert!(receive_all(&mut back).is_empty());
        back.flush();
    }

    #[test]
    fn the_toolstack_removing_the_device_removes_our_directory() {
        let (xen, _front, mut back) = connected();
        let mut store = xen.clone();
        // What libxl does for `xl network-detach` / destroy of the client.
        xen.set(&format!("{BACK}/online"), "0");
        xen.set(&format!("{BACK}/state"), "5");
        assert_eq!(back.poll(&mut store), NetbackState::Gone);
        assert!(xen.get(&format!("{BACK}/state")).is_none());
        assert!(list_vifs(&mut store).is_empty());
        assert_eq!(xen.with(|x| x.mapped), 0);
    }

    #[test]
    fn bad_directories_are_refused() {
        let xen = platform();
        let mut store = xen.clone();
        xen.set(&format!("{BACK}/mac"), "nonsense");
        assert!(Netback::new(xen.clone(), &mut store, CLIENT, 0).is_err());
        let xen = platform();
        let mut store = xen.clone();
        assert!(Netback::new(xen.clone(), &mut store, 6, 0).is_err());
        xen.set(&format!("{FRONT}/request-rx-copy"), "0");
        let mut back = Netback::new(xen.clone(), &mut store, CLIENT, 0).unwrap();
        xen.set(&format!("{FRONT}/state"), "4");
        assert_eq!(back.poll(&mut store), NetbackState::Closed);
        assert_eq!(parse_mac("fe:ff:ff:ff:ff:ff"), Some(BACKEND_MAC));
    }
}
