//! Xen: the PVH guest platform (hypercalls, shared info, event channels, grant tables, xenstore, PV
//! console, pvclock) and the split-driver frontends (netfront, blkfront).
//!
//! Layer: hardware access. The frontends are written against the small contract below ([`Grants`],
//! [`EventChannels`], [`Store`]) so that they can be tested on the host against a fake backend; the
//! hypervisor-backed implementation lives beside them.

pub mod byte_ring;
pub mod console;
pub mod events;
pub mod gnttab;
pub mod hypercall;
pub mod memmap;
pub mod shared_info;
pub mod xenstore;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub mod blkfront;
#[cfg(test)]
pub mod fake;
pub mod frontend;
pub mod netback;
pub mod netfront;
pub mod qubesdb;
pub mod ring;
pub mod vchan;

/// A domain id (0 is dom0).
pub type DomId = u16;
/// A grant reference in our grant table.
pub type GrantRef = u32;
/// An event-channel port.
pub type Port = u32;

/// The size of a Xen page and of every shared ring and granted buffer.
pub const PAGE_SIZE: usize = 4096;

/// A page-aligned page. The image identity-maps its memory, so a page's guest frame number is its
/// address divided by the page size.
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    /// A zeroed page.
    pub const fn zeroed() -> Page {
        Page([0; PAGE_SIZE])
    }

    /// The guest frame number (address / 4096; the image's memory is identity-mapped).
    pub fn frame(&self) -> u64 {
        (self as *const Page as u64) >> 12
    }
}

/// What went wrong talking to the hypervisor, xenstore or a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XenError {
    /// A hypercall returned this negative errno.
    Hypercall { op: &'static str, errno: i64 },
    /// No free grant-table entry.
    GrantTableFull,
    /// A grant-table op ran but Xen refused it: its `GNTST_*` status (negative).
    Grant { op: &'static str, status: i16 },
    /// Every frame of the grant-map pool holds a mapping.
    MapPoolFull,
    /// xenstore answered with an error string (e.g. "ENOENT").
    Store { path: String, error: String },
    /// A backend broke the protocol (index out of range, bad state, bad id): what it did.
    Backend(String),
    /// Waited too long for a backend or xenstore.
    Timeout(&'static str),
}

impl fmt::Display for XenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hypercall { op, errno } => write!(f, "hypercall {op} failed: errno {errno}"),
            Self::GrantTableFull => f.write_str("grant table full"),
            Self::Grant { op, status } => {
                write!(f, "grant {op}: {} ({status})", gnttab::status_name(*status))
            }
            Self::MapPoolFull => write!(
                f,
                "grant-map pool full ({} frames mapped)",
                gnttab::MAP_POOL_FRAMES
            ),
            Self::Store { path, error } => write!(f, "xenstore {path}: {error}"),
            Self::Backend(what) => write!(f, "backend misbehaved: {what}"),
            Self::Timeout(what) => write!(f, "timed out waiting for {what}"),
        }
    }
}

/// Granting our pages to another domain (grant table v1).
pub trait Grants {
    /// Grants `domid` access to our page `frame`; read-only when `readonly`.
    fn grant(&mut self, domid: DomId, frame: u64, readonly: bool) -> Result<GrantRef, XenError>;
    /// Ends a grant; an error when the other side still has it mapped (the entry then stays in use).
    fn end_grant(&mut self, gref: GrantRef) -> Result<(), XenError>;
}

/// Event channels.
pub trait EventChannels {
    /// A new port that `remote` may bind to (EVTCHNOP_alloc_unbound).
    fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, XenError>;
    /// Signals the other end of `port`.
    fn notify(&mut self, port: Port);
    /// Whether `port` is pending; clears it.
    fn take_pending(&mut self, port: Port) -> bool;
    /// Masks (`false`) or unmasks (`true`) upcalls for `port`.
    fn set_unmasked(&mut self, port: Port, unmasked: bool);
}

/// The xenstore operations a frontend needs.
pub trait Store {
    /// The value at `path`.
    fn read(&mut self, path: &str) -> Result<String, XenError>;
    /// Writes `value` at `path`.
    fn write(&mut self, path: &str, value: &str) -> Result<(), XenError>;
    /// The children of `path`.
    fn directory(&mut self, path: &str) -> Result<Vec<String>, XenError>;
    /// Removes `path` and everything below it (a backend removing its device directory).
    fn remove(&mut self, path: &str) -> Result<(), XenError> {
        Err(XenError::Store {
            path: path.into(),
            error: "remove not supported".into(),
        })
    }
}

/// Mapping another domain's grants and copying between its granted pages and ours (what a backend
/// needs: netback maps a frontend's ring pages and moves frames with grant copy).
pub trait ForeignGrants {
    /// A live mapping of another domain's page.
    type Mapping;
    /// Maps `domid`'s grant `gref` (read-only when `readonly`).
    fn map_foreign(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        readonly: bool,
    ) -> Result<Self::Mapping, XenError>;
    /// The mapped page (valid while the mapping lives; the other domain writes it concurrently).
    fn mapping_page(&self, mapping: &Self::Mapping) -> Option<core::ptr::NonNull<Page>>;
    /// Ends a mapping. When that fails the mapping's frame is never reused.
    fn unmap_foreign(&mut self, mapping: Self::Mapping) -> Result<(), XenError>;
    /// `GNTTABOP_copy` on a batch (one hypercall); each op's own result is in its status.
    fn copy(&mut self, ops: &mut [gnttab::GnttabCopy]) -> Result<(), XenError>;
}

/// The event-channel calls of a backend: connecting to the port a frontend offered, and closing it.
pub trait InterdomainEvents {
    /// Binds to `remote`'s unbound port `remote_port` (EVTCHNOP_bind_interdomain); our new port.
    fn bind_interdomain(&mut self, remote: DomId, remote_port: Port) -> Result<Port, XenError>;
    /// Closes our end of `port` (EVTCHNOP_close).
    fn close_port(&mut self, port: Port);
}

/// XenbusState (`io/xenbus.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum XenbusState {
    Unknown = 0,
    Initialising = 1,
    InitWait = 2,
    Initialised = 3,
    Connected = 4,
    Closing = 5,
    Closed = 6,
    Reconfiguring = 7,
    Reconfigured = 8,
}

impl XenbusState {
    /// Parses a xenstore `state` value.
    pub fn parse(value: &str) -> Option<XenbusState> {
        Some(match value.trim_end_matches('\0').trim() {
            "0" => Self::Unknown,
            "1" => Self::Initialising,
            "2" => Self::InitWait,
            "3" => Self::Initialised,
            "4" => Self::Connected,
            "5" => Self::Closing,
            "6" => Self::Closed,
            "7" => Self::Reconfiguring,
            "8" => Self::Reconfigured,
            _ => return None,
        })
    }

    /// The value written to xenstore.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"][self as usize]
    }
}

/// The hypervisor handle the frontends own a copy of: the grant table and the event channels (both
/// global-backed, so copies share them).
#[derive(Debug, Clone, Copy)]
pub struct Hypervisor {
    /// The grant table.
    pub grants: gnttab::XenGrants,
    /// The event channels.
    pub events: events::XenEvents,
}

impl Grants for Hypervisor {
    fn grant(&mut self, domid: DomId, frame: u64, readonly: bool) -> Result<GrantRef, XenError> {
        self.grants.grant(domid, frame, readonly)
    }

    fn end_grant(&mut self, gref: GrantRef) -> Result<(), XenError> {
        self.grants.end_grant(gref)
    }
}

impl EventChannels for Hypervisor {
    fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, XenError> {
        self.events.alloc_unbound(remote)
    }

    fn notify(&mut self, port: Port) {
        self.events.notify(port)
    }

    fn take_pending(&mut self, port: Port) -> bool {
        self.events.take_pending(port)
    }

    fn set_unmasked(&mut self, port: Port, unmasked: bool) {
        self.events.set_unmasked(port, unmasked)
    }
}

impl ForeignGrants for Hypervisor {
    type Mapping = gnttab::MappedPage;

    fn map_foreign(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        readonly: bool,
    ) -> Result<gnttab::MappedPage, XenError> {
        gnttab::map(domid, gref, readonly)
    }

    fn mapping_page(&self, mapping: &gnttab::MappedPage) -> Option<core::ptr::NonNull<Page>> {
        core::ptr::NonNull::new(mapping.as_ptr().cast::<Page>())
    }

    fn unmap_foreign(&mut self, mapping: gnttab::MappedPage) -> Result<(), XenError> {
        // On failure the page is dropped, whose own unmap leaves the pool frame taken for good.
        mapping.unmap().map_err(|(_page, e)| e)
    }

    fn copy(&mut self, ops: &mut [gnttab::GnttabCopy]) -> Result<(), XenError> {
        gnttab::copy(ops)
    }
}

impl InterdomainEvents for Hypervisor {
    fn bind_interdomain(&mut self, remote: DomId, remote_port: Port) -> Result<Port, XenError> {
        self.events.bind_interdomain(remote, remote_port)
    }

    fn close_port(&mut self, port: Port) {
        let _ = self.events.close(port);
    }
}
