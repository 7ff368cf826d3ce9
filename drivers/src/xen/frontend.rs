//! What netfront and blkfront share: pages granted to a backend, and the xenbus handshake's xenstore
//! reads and writes.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use core::ops::Range;
use core::ptr::NonNull;
use core::str::FromStr;

use super::{DomId, GrantRef, Grants, Page, Store, XenError, XenbusState, PAGE_SIZE};

/// A page of ours that a backend may be granted access to.
///
/// The page is heap-allocated once and never moves. While a grant is live the other domain may map it
/// at any time, so dropping a still-granted page leaks it rather than handing the memory back to the
/// allocator; [`end_grant`](Self::end_grant) first, and the memory is freed on drop.
pub struct SharedPage {
    page: NonNull<Page>,
    gref: Option<GrantRef>,
}

impl SharedPage {
    /// A zeroed, ungranted page.
    pub fn new() -> Self {
        let page = Box::<Page>::new_zeroed();
        // SAFETY: an all-zero `Page` is a valid value (a byte array).
        let page = unsafe { page.assume_init() };
        Self {
            page: NonNull::from(Box::leak(page)),
            gref: None,
        }
    }

    /// The page, for a shared ring or for raw access.
    pub fn ptr(&self) -> NonNull<Page> {
        self.page
    }

    /// The guest frame number (the image's memory is identity-mapped).
    pub fn frame(&self) -> u64 {
        (self.page.as_ptr() as u64) >> 12
    }

    /// The live grant, if any.
    pub fn gref(&self) -> Option<GrantRef> {
        self.gref
    }

    /// Grants `domid` access to the page (read-only when `readonly`); a page is granted at most once.
    pub fn grant<G: Grants + ?Sized>(
        &mut self,
        grants: &mut G,
        domid: DomId,
        readonly: bool,
    ) -> Result<GrantRef, XenError> {
        if let Some(gref) = self.gref {
            return Ok(gref);
        }
        let gref = grants.grant(domid, self.frame(), readonly)?;
        self.gref = Some(gref);
        Ok(gref)
    }

    /// Ends the grant (if any). On an error (the backend still maps the page) the grant stays recorded
    /// and the page will be leaked, not freed.
    pub fn end_grant<G: Grants + ?Sized>(&mut self, grants: &mut G) -> Result<(), XenError> {
        if let Some(gref) = self.gref {
            grants.end_grant(gref)?;
            self.gref = None;
        }
        Ok(())
    }

    /// The page's bytes.
    ///
    /// # Safety
    /// The peer must not be writing the page: either it was never granted write access, or no request
    /// that lets it write here is outstanding. (A backend that breaks the protocol and writes anyway
    /// can only change the bytes under us, like a device doing DMA; it cannot make us access memory
    /// outside the page.)
    pub unsafe fn bytes_mut(&mut self) -> &mut [u8; PAGE_SIZE] {
        // SAFETY: the page is ours, allocated in `new`, alive until drop; `&mut self` makes this the
        // only reference from our side; the caller vouches for the peer.
        unsafe { &mut (*self.page.as_ptr()).0 }
    }

    /// The bytes at `range` of the page, or None when the range leaves the page.
    ///
    /// # Safety
    /// As for [`bytes_mut`](Self::bytes_mut), for the bytes in `range` only.
    pub unsafe fn range_mut(&mut self, range: Range<usize>) -> Option<&mut [u8]> {
        let len = range.end.checked_sub(range.start)?;
        if range.end > PAGE_SIZE {
            return None;
        }
        // SAFETY: `range` lies inside the page (checked above), which is ours and alive; `&mut self`
        // makes this the only reference from our side; the caller vouches for the peer.
        Some(unsafe {
            core::slice::from_raw_parts_mut(self.page.as_ptr().cast::<u8>().add(range.start), len)
        })
    }

    /// The bytes at `range` of the page, read-only, or None when the range leaves the page.
    ///
    /// # Safety
    /// As for [`bytes_mut`](Self::bytes_mut), for the bytes in `range` only.
    pub unsafe fn range(&self, range: Range<usize>) -> Option<&[u8]> {
        let len = range.end.checked_sub(range.start)?;
        if range.end > PAGE_SIZE {
            return None;
        }
        // SAFETY: as in `range_mut`, shared.
        Some(unsafe {
            core::slice::from_raw_parts(self.page.as_ptr().cast::<u8>().add(range.start), len)
        })
    }

    /// The page's bytes, read-only (see [`bytes_mut`](Self::bytes_mut) for the contract).
    ///
    /// # Safety
    /// As for [`bytes_mut`](Self::bytes_mut).
    pub unsafe fn bytes(&self) -> &[u8; PAGE_SIZE] {
        // SAFETY: as in `bytes_mut`, shared.
        unsafe { &(*self.page.as_ptr()).0 }
    }
}

impl Default for SharedPage {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        if self.gref.is_none() {
            // SAFETY: allocated by `Box::leak` in `new`, never freed before, no grant outstanding.
            drop(unsafe { Box::from_raw(self.page.as_ptr()) });
        }
        // Still granted: the other domain may map it, so the page is leaked on purpose.
    }
}

/// A xenstore value without the trailing NUL or whitespace some toolstacks leave.
pub fn read_value<S: Store + ?Sized>(store: &mut S, path: &str) -> Result<String, XenError> {
    Ok(store.read(path)?.trim_end_matches('\0').trim().to_string())
}

/// A numeric xenstore value; a value that does not parse is the backend's (or toolstack's) error.
pub fn read_number<S: Store + ?Sized, T: FromStr>(
    store: &mut S,
    path: &str,
) -> Result<T, XenError> {
    let value = read_value(store, path)?;
    value
        .parse()
        .map_err(|_| XenError::Backend(format!("{path} is {value:?}, not a number")))
}

/// The xenbus state at `dir/state`; None when it is missing or unreadable (the backend may not
/// exist yet) or not a state.
pub fn read_state<S: Store + ?Sized>(store: &mut S, dir: &str) -> Option<XenbusState> {
    let value = store.read(&format!("{dir}/state")).ok()?;
    XenbusState::parse(&value)
}

/// Writes our xenbus state.
pub fn write_state<S: Store + ?Sized>(
    store: &mut S,
    dir: &str,
    state: XenbusState,
) -> Result<(), XenError> {
    store.write(&format!("{dir}/state"), state.as_str())
}

/// Where a frontend device lives in xenstore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePaths {
    /// Our directory, relative to our domain's home: `device/<kind>/<index>`.
    pub frontend: String,
    /// The backend's directory (absolute, from our `backend` key).
    pub backend: String,
    /// The backend's domain (our `backend-id` key).
    pub backend_id: DomId,
}

impl DevicePaths {
    /// Reads `device/<kind>/<index>/backend` and `backend-id`.
    pub fn read<S: Store + ?Sized>(
        store: &mut S,
        kind: &str,
        index: u32,
    ) -> Result<Self, XenError> {
        let frontend = format!("device/{kind}/{index}");
        let backend = read_value(store, &format!("{frontend}/backend"))?;
        if backend.is_empty() {
            return Err(XenError::Backend(format!("{frontend}/backend is empty")));
        }
        let backend_id = read_number(store, &format!("{frontend}/backend-id"))?;
        Ok(Self {
            frontend,
            backend,
            backend_id,
        })
    }

    /// The key `name` in our directory.
    pub fn front(&self, name: &str) -> String {
        format!("{}/{name}", self.frontend)
    }

    /// The key `name` in the backend's directory.
    pub fn back(&self, name: &str) -> String {
        format!("{}/{name}", self.backend)
    }
}

/// Whether a backend in `state` is ready for our ring details (it has probed the device).
pub fn backend_ready_for_rings(state: Option<XenbusState>) -> bool {
    matches!(
        state,
        Some(XenbusState::InitWait | XenbusState::Initialised | XenbusState::Connected)
    )
}

/// Whether a backend in `state` is going away.
pub fn backend_closing(state: Option<XenbusState>) -> bool {
    matches!(state, Some(XenbusState::Closing | XenbusState::Closed))
}

/// The closing half of the xenbus handshake: switches us to Closing, waits (up to `timeout` after the
/// first `now()`, calling `idle` in between) for the backend to close or vanish, then switches us to
/// Closed. The grants are the caller's to end afterwards (the backend has unmapped them by then).
pub fn close_handshake<S: Store + ?Sized>(
    store: &mut S,
    paths: &DevicePaths,
    now: &mut dyn FnMut() -> u64,
    timeout: u64,
    idle: &mut dyn FnMut(),
) -> Result<(), XenError> {
    write_state(store, &paths.frontend, XenbusState::Closing)?;
    let deadline = now().saturating_add(timeout);
    let mut result = Ok(());
    loop {
        let state = read_state(store, &paths.backend);
        if state.is_none() || backend_closing(state) {
            break;
        }
        if now() >= deadline {
            result = Err(XenError::Timeout("the backend to close"));
            break;
        }
        idle();
    }
    write_state(store, &paths.frontend, XenbusState::Closed)?;
    // A backend that was Closing unmaps our pages on its way to Closed (Linux's blkback frees its
    // persistent grants there): wait for that too, within the same deadline.
    while result.is_ok() {
        let state = read_state(store, &paths.backend);
        if matches!(
            state,
            None | Some(XenbusState::Closed | XenbusState::Unknown)
        ) {
            break;
        }
        if now() >= deadline {
            result = Err(XenError::Timeout("the backend to reach Closed"));
            break;
        }
        idle();
    }
    result
}

/// Ends the grant of every page in `pages`; returns how many the other side still holds (those pages are
/// leaked by their owners, never freed or reused).
pub fn end_all_grants<'a, G: Grants + ?Sized>(
    grants: &mut G,
    pages: impl Iterator<Item = &'a mut SharedPage>,
) -> usize {
    let mut kept = 0;
    for page in pages {
        if page.end_grant(grants).is_err() {
            kept += 1;
        }
    }
    kept
}

/// A split-driver frontend (blkfront, netfront): set up (grants, event channel), one step of the xenbus
/// handshake at a time, and the grants ended when giving up. [`connect`](Self::connect) is the loop that
/// every frontend runs the same way.
pub trait Frontend<H>: Sized {
    /// Sets up device `index` of this kind (`device/<kind>/<index>`): reads its backend, allocates and
    /// grants what the backend needs, allocates the event channel (masked). Then drive
    /// [`poll_connect`](Self::poll_connect).
    fn new<S: Store + ?Sized>(hv: H, store: &mut S, index: u32) -> Result<Self, XenError>;

    /// One step of the xenbus handshake; true once both ends are Connected. `now` and `deadline` are in
    /// any one monotonic unit: at or past the deadline without a connection it is a
    /// [`XenError::Timeout`]; a backend that starts closing or offers bad keys is a [`XenError::Backend`].
    fn poll_connect<S: Store + ?Sized>(
        &mut self,
        store: &mut S,
        now: u64,
        deadline: u64,
    ) -> Result<bool, XenError>;

    /// Ends every grant; returns how many the backend still holds (those pages are leaked). Only for a
    /// device being given up: it cannot move data afterwards.
    fn end_grants(&mut self) -> usize;

    /// [`new`](Self::new), then [`poll_connect`](Self::poll_connect) until connected, calling `idle`
    /// between attempts (e.g. sleep a millisecond); gives up `timeout` after the first `now()`. On
    /// failure every grant is ended.
    fn connect<S: Store + ?Sized>(
        hv: H,
        store: &mut S,
        index: u32,
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<Self, XenError> {
        let mut device = Self::new(hv, store, index)?;
        let deadline = now().saturating_add(timeout);
        loop {
            match device.poll_connect(store, now(), deadline) {
                Ok(true) => return Ok(device),
                Ok(false) => idle(),
                Err(error) => {
                    device.end_grants();
                    return Err(error);
                }
            }
        }
    }
}
