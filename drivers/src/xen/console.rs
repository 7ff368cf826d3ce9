//! Console output under Xen: the `HYPERVISOR_console_io` hypercall (Xen's own console: dom0, or any
//! domain on a debug build of Xen) and the PV console ring a domU's toolstack sets up
//! (`HVM_PARAM_CONSOLE_PFN` / `HVM_PARAM_CONSOLE_EVTCHN`, `io/console.h`; xenconsoled reads it).
//!
//! Layer: byte output only. [`XenConsole`] has no state of its own: like COM1 it may be written from the
//! fatal paths without a lock. Output goes to the ring when there is one, else through the hypercall.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::byte_ring::ByteRing;
use super::hypercall::{self, PARAM_CONSOLE_EVTCHN, PARAM_CONSOLE_PFN};
use super::{events, XenError};

/// Physical address of the console ring page (0: none).
static RING: AtomicU64 = AtomicU64::new(0);
/// Set when a full ring did not drain within the bounded wait (see `ring_write`).
static STALLED: AtomicBool = AtomicBool::new(false);
static PORT: AtomicU32 = AtomicU32::new(0);

/// `struct xencons_interface`: `in[1024]`, `out[2048]`, then in_cons, in_prod, out_cons, out_prod.
const OUT: usize = 1024;
const OUT_SIZE: usize = 2048;
const OUT_CONS: usize = 3072 + 8;
const OUT_PROD: usize = 3072 + 12;

/// Looks for the PV console ring (a domU has one; dom0 does not). Returns the frame and port.
pub fn init_ring() -> Result<Option<(u64, u32)>, XenError> {
    let pfn = hypercall::hvm_get_param(PARAM_CONSOLE_PFN)?;
    let port = hypercall::hvm_get_param(PARAM_CONSOLE_EVTCHN)?;
    if pfn == 0 {
        return Ok(None);
    }
    // The boot page tables identity-map the low 4 GiB, where Xen puts a PVH guest's special pages.
    if pfn >= (1 << 20) || port == 0 || port >= u64::from(super::shared_info::MAX_PORTS) {
        return Err(XenError::Backend(alloc::format!(
            "console ring at frame {pfn:#x}, port {port}: outside what the image can use"
        )));
    }
    RING.store(pfn << 12, Ordering::SeqCst);
    PORT.store(port as u32, Ordering::SeqCst);
    Ok(Some((pfn, port as u32)))
}

/// Whether output goes to the PV console ring.
pub fn has_ring() -> bool {
    RING.load(Ordering::Relaxed) != 0
}

fn ring() -> Option<ByteRing<'static>> {
    let base = RING.load(Ordering::Relaxed);
    if base == 0 {
        return None;
    }
    let base = base as *const u8;
    // SAFETY: `base` is the console page Xen named, identity-mapped (checked in init_ring); the fields
    // are at their header offsets and only accessed through atomics, xenconsoled being the other side.
    unsafe {
        let data = core::slice::from_raw_parts(base.add(OUT).cast::<AtomicU8>(), OUT_SIZE);
        Some(ByteRing::new(
            data,
            &*base.add(OUT_CONS).cast::<AtomicU32>(),
            &*base.add(OUT_PROD).cast::<AtomicU32>(),
        ))
    }
}

/// Writes to the console ring, waiting (bounded) for xenconsoled to make room; drops what does not fit.
/// xenconsoled is told at each line end (and when the ring is full), not at every fragment.
fn ring_write(ring: &ByteRing<'_>, mut bytes: &[u8]) {
    let line_end = bytes.contains(&b'\n');
    let port = PORT.load(Ordering::Relaxed);
    let mut stalls = 0;
    while !bytes.is_empty() {
        match ring.write(bytes) {
            Ok(0) => {
                events::send(port);
                stalls += 1;
                // A console daemon that stopped reading costs one bounded wait, then output is dropped
                // at once until the ring drains: the image never crawls because of its console.
                if stalls > 10_000 || STALLED.load(Ordering::Relaxed) {
                    STALLED.store(true, Ordering::Relaxed);
                    return;
                }
                hypercall::sched_yield();
            }
            Ok(n) => {
                bytes = bytes.get(n..).unwrap_or(&[]);
                stalls = 0;
                STALLED.store(false, Ordering::Relaxed);
            }
            Err(_) => return, // broken indices: nothing sensible to write to
        }
    }
    if line_end {
        events::send(port);
    }
}

/// Xen's console (ring or hypercall). Zero-sized; every value writes to the same place.
#[derive(Debug, Clone, Copy, Default)]
pub struct XenConsole;

impl XenConsole {
    /// Writes bytes as they are.
    pub fn write_bytes(&self, bytes: &[u8]) {
        if let Some(ring) = ring() {
            ring_write(&ring, bytes);
        } else {
            for chunk in bytes.chunks(1024) {
                let _ = hypercall::console_write(chunk);
            }
        }
    }
}

impl fmt::Write for XenConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
