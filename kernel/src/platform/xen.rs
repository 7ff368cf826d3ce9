//! Xen PVH (domU, or dom0 for quick tests): the bring-up steps in order, each logged.
//!
//! 1. [`detect`] (first thing at boot, before any output): the Xen CPUID leaves, the hypercall page, the PV
//!    console ring when there is one (a domU's; else output goes through `HYPERVISOR_console_io`, which
//!    dom0 and debug builds of Xen print), the shared-info page.
//! 2. [`clocks`]: the TSC rate from vCPU 0's pvclock (`tsc_to_system_mul`/`tsc_shift`; a PVH domU has no
//!    PIT to calibrate against) and the wall clock from shared info (`wc_sec`/`wc_nsec` + system time).
//! 3. [`memmap`]: `XENMEM_memory_map` when the start info carries no memory map.
//! 4. [`bring_up`] (after the LAPIC timer is on): the event upcall on [`EVENT_VECTOR`], the grant table,
//!    xenstore, then device discovery in xenstore (`device/vif/*`, `device/vbd/*`).
//!
//! Shutdown is `SCHEDOP_shutdown`: poweroff for a clean exit, crash for anything else (the exit code does
//! not cross; the caller logged it). A misbehaving hypervisor or backend answer is logged; the step is
//! skipped or the boot stops cleanly, never with a panic.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use boot::pvh::MemmapEntry;
use drivers::clock;
use drivers::netdev::NetDevice;
use drivers::xen::blkfront;
use drivers::xen::console::{self as xcons, XenConsole};
use drivers::xen::events::{self, XenEvents};
use drivers::xen::frontend::Frontend;
use drivers::xen::gnttab::{self, XenGrants};
use drivers::xen::hypercall::{self, XenCpuid};
use drivers::xen::memmap::{self, E820Entry};
use drivers::xen::netfront::Netfront;
use drivers::xen::shared_info;
use drivers::xen::xenstore::{RingTransport, XenStore};
use drivers::xen::{Hypervisor, Store, XenError};
use log::{error, info, warn};
use oxvpn_kernel::exit::ExitCode;

/// The wake vector event-channel upcalls arrive on (one of `boot::interrupts::WAKE_VECTORS`; 0x30 is the
/// virtio devices').
pub const EVENT_VECTOR: u8 = 0x31;

/// What [`detect`] found, packed for a static: Xen version, CPUID base, HVM feature bits.
static VERSION: AtomicU32 = AtomicU32::new(0);
static CPUID_BASE: AtomicU32 = AtomicU32::new(0);
static HVM_FEATURES: AtomicU32 = AtomicU32::new(0);
/// errno of a failed shared-info mapping (0: mapped or not tried).
static SHARED_INFO_ERRNO: AtomicU64 = AtomicU64::new(0);

/// Looks for Xen; when found, installs the hypercall page, finds the console ring and maps shared info.
/// Runs before the logger: what it finds is logged by [`clocks`].
pub fn detect() -> bool {
    let Some(xen) = hypercall::detect() else {
        return false;
    };
    hypercall::install(&xen);
    record(&xen);
    // Without a ring (dom0), output goes through the console_io hypercall.
    let _ = xcons::init_ring();
    if let Err(XenError::Hypercall { errno, .. }) = shared_info::map() {
        SHARED_INFO_ERRNO.store(errno.unsigned_abs(), Ordering::Relaxed);
    }
    true
}

fn record(xen: &XenCpuid) {
    VERSION.store(
        u32::from(xen.version.0) << 16 | u32::from(xen.version.1),
        Ordering::Relaxed,
    );
    CPUID_BASE.store(xen.base, Ordering::Relaxed);
    HVM_FEATURES.store(xen.hvm_features, Ordering::Relaxed);
}

/// Writes to the PV console ring, or through the console_io hypercall.
pub fn console_write(s: &str) -> fmt::Result {
    XenConsole.write_bytes(s.as_bytes());
    Ok(())
}

/// Ends the domain: poweroff for a clean exit, crash otherwise.
pub fn exit(code: ExitCode) -> ! {
    let reason = if code == ExitCode::Clean {
        if REBOOT_REQUESTED.load(Ordering::Relaxed) != 0 {
            hypercall::SHUTDOWN_REBOOT
        } else {
            hypercall::SHUTDOWN_POWEROFF
        }
    } else {
        hypercall::SHUTDOWN_CRASH
    };
    let e = hypercall::sched_shutdown(reason);
    let _ = console_write(&format!("xen: shutdown refused ({e}); halting\n"));
    loop {
        // SAFETY: halting with interrupts disabled stops this CPU for good, which is the intent.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Reports what [`detect`] found, then sets the monotonic clock's rate from pvclock and the wall clock
/// from shared info.
/// (`--tsc-khz` wins). Runs before the heap.
pub fn clocks(tsc_khz: Option<u32>) -> Result<(u64, &'static str), &'static str> {
    let version = VERSION.load(Ordering::Relaxed);
    info!(
        "xen: Xen {}.{} (CPUID leaves at {:#x}), hypercall page installed, console: {}",
        version >> 16,
        version & 0xffff,
        CPUID_BASE.load(Ordering::Relaxed),
        if xcons::has_ring() {
            "PV console ring"
        } else {
            "console_io hypercall"
        }
    );
    if !shared_info::mapped() {
        error!(
            "xen: mapping shared info failed (errno -{})",
            SHARED_INFO_ERRNO.load(Ordering::Relaxed)
        );
        return Err("no Xen shared info page, so no pvclock");
    }
    info!("xen: shared info at {:#x}", shared_info::frame_address());
    let time = match shared_info::time_info() {
        Ok(t) => t,
        Err(e) => {
            error!("xen: pvclock: {e}");
            return Err("Xen pvclock unreadable");
        }
    };
    if let Some(khz) = tsc_khz {
        let hz = u64::from(khz) * 1000;
        clock::set_frequency(hz);
        return Ok((hz, "the --tsc-khz boot argument"));
    }
    let Some(hz) = time.tsc_hz() else {
        error!(
            "xen: pvclock gives no plausible TSC rate (mul {:#x}, shift {})",
            time.tsc_to_system_mul, time.tsc_shift
        );
        return Err("Xen pvclock gives no plausible TSC rate");
    };
    clock::set_frequency(hz);
    info!(
        "xen: pvclock system time {} ms{}",
        shared_info::system_time_ns().unwrap_or(0) / 1_000_000,
        if time.flags & shared_info::PVCLOCK_TSC_STABLE != 0 {
            ", TSC stable"
        } else {
            ""
        }
    );
    Ok((hz, "Xen pvclock"))
}

/// The wall clock at boot from shared info (None, said why, when Xen set none). Runs before the heap.
pub fn wall_clock() -> Option<(u64, &'static str)> {
    match shared_info::unix_time_now() {
        Ok(unix) if unix > 0 => return Some((unix, "Xen shared info")),
        Ok(_) => warn!("wall clock: Xen set none"),
        Err(e) => warn!("wall clock: {e}"),
    }
    None
}

const MAX_MEMMAP: usize = memmap::MAX_ENTRIES;

struct MemmapBuf(UnsafeCell<[MemmapEntry; MAX_MEMMAP]>);

// SAFETY: written once by `memmap` during single-threaded boot, read-only afterwards.
unsafe impl Sync for MemmapBuf {}

static MEMMAP: MemmapBuf = MemmapBuf(UnsafeCell::new([MemmapEntry::new(0, 0, 0); MAX_MEMMAP]));

/// The memory map from `XENMEM_memory_map` (empty, after logging why, when Xen refuses).
pub fn memmap() -> &'static [MemmapEntry] {
    let mut raw = [E820Entry::default(); MAX_MEMMAP];
    let n = match memmap::fetch(&mut raw) {
        Ok(n) => n,
        Err(e) => {
            error!("xen: no memory map from the start info and {e}");
            return &[];
        }
    };
    info!("xen: memory map from XENMEM_memory_map ({n} entries)");
    // SAFETY: boot is single-threaded and this runs once, before anything borrows the buffer.
    let buf = unsafe { &mut *MEMMAP.0.get() };
    for (slot, e) in buf.iter_mut().zip(raw.iter().take(n)) {
        *slot = MemmapEntry::new(e.addr, e.size, e.kind);
    }
    buf.get(..n).unwrap_or(&[])
}

/// Lets events raise the next upcall (see `drivers::xen::events`).
pub fn after_wake() {
    events::rearm();
}

/// The hypervisor services the Xen frontends are built on.
pub struct XenServices {
    /// xenstore (None as a dom0 without xenstored).
    pub store: Option<XenStore<RingTransport>>,
    /// The grant table (a handle; copies share it).
    pub grants: Option<XenGrants>,
    /// Event channels (a handle; copies share them).
    pub events: XenEvents,
}

/// Checks that an event wakes `hlt`: a channel from us to ourselves, one send, a halt with a 1 s timer.
/// Returns how long the halt lasted.
fn event_loopback(mut events: XenEvents) -> Result<u64, XenError> {
    use drivers::xen::EventChannels;
    let a = events.alloc_unbound(hypercall::DOMID_SELF)?;
    let b = match events.bind_interdomain(hypercall::DOMID_SELF, a) {
        Ok(b) => b,
        Err(e) => {
            let _ = events.close(a);
            return Err(e);
        }
    };
    events.set_unmasked(b, true);
    events::rearm();
    let start = clock::now_us();
    events.notify(a);
    boot::apic::arm_oneshot_us(1_000_000);
    boot::interrupts::wait_for_interrupt();
    let elapsed = clock::now_us() - start;
    boot::apic::disarm();
    events::rearm();
    let pending = events.take_pending(b);
    let _ = events.close(b);
    let _ = events.close(a);
    if !pending {
        return Err(XenError::Backend(
            "the loopback event never became pending".into(),
        ));
    }
    if elapsed >= 1_000_000 {
        return Err(XenError::Timeout(
            "the loopback event's upcall (woke by the timer)",
        ));
    }
    Ok(elapsed)
}

/// The page the grant-map loopback grants to ourselves; nothing else touches it. x86 Xen puts a grant
/// mapping into our physmap with `p2m_add_page`, which treats one of our own pages appearing at a second
/// frame as an alias and takes it out of its first frame: while mapped, this frame is a hole (the page is
/// reached only through the mapping and the grant), and afterwards its old memory stays stranded with the
/// domain, so the check gives the frame back (if Xen left it) and refills it with a fresh page.
#[repr(C, align(4096))]
struct LoopbackPage(UnsafeCell<[u8; drivers::xen::PAGE_SIZE]>);

// SAFETY: only `grant_map_loopback` uses it, once, through volatile accesses of a raw pointer.
unsafe impl Sync for LoopbackPage {}

static LOOPBACK_PAGE: LoopbackPage = LoopbackPage(UnsafeCell::new([0; drivers::xen::PAGE_SIZE]));
static GRANT_LOOPBACK_RAN: AtomicU32 = AtomicU32::new(0);

/// Word `i` of the loopback's pattern `n` (every word of every pattern differs).
fn pattern(n: u64, i: usize) -> u64 {
    (n << 56 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What the grant-map loopback found.
struct GrantLoopback {
    gref: drivers::xen::GrantRef,
    address: u64,
    us: u64,
    /// Whether Xen had taken the source page out of its frame (the alias rule above).
    source_moved: bool,
}

/// Checks mapping a grant: one of our pages granted to ourselves (`domid` is our real id: Xen checks the
/// entry's domain against the mapper's, and its map op does not take DOMID_SELF), mapped into the pool,
/// a pattern compared each way (source page -> mapping, mapping -> grant copy, grant copy -> mapping),
/// unmapped, the grant ended, the source frame refilled. Runs at most once per boot.
fn grant_map_loopback(
    mut grants: XenGrants,
    domid: drivers::xen::DomId,
) -> Result<GrantLoopback, XenError> {
    use drivers::xen::gnttab::{CopyPtr, GnttabCopy};
    use drivers::xen::{Grants, Page, PAGE_SIZE};
    if GRANT_LOOPBACK_RAN.swap(1, Ordering::SeqCst) != 0 {
        return Err(XenError::Backend(
            "the grant-map loopback already ran".into(),
        ));
    }
    let start = clock::now_us();
    const WORDS: usize = PAGE_SIZE / 8;
    let source = LOOPBACK_PAGE.0.get().cast::<u64>();
    let frame = source as u64 >> 12;
    for i in 0..WORDS {
        // SAFETY: within our static page, which nothing else uses; it is still RAM (not yet granted).
        unsafe { source.add(i).write_volatile(pattern(1, i)) };
    }
    let gref = grants.grant(domid, frame, false)?;
    let mut scratch = alloc::boxed::Box::new(Page::zeroed());
    let scratch_ptr = scratch.0.as_mut_ptr().cast::<u64>();
    let scratch_frame = scratch.frame();
    let mismatch = |what: &str| XenError::Backend(format!("grant map loopback: {what} differs"));
    let checked = gnttab::map(domid, gref, false).and_then(|page| {
        let through = (|| {
            for i in 0..WORDS {
                if page.load::<u64>(i * 8)? != pattern(1, i) {
                    return Err(mismatch("the granted page read through the mapping"));
                }
            }
            for i in 0..WORDS {
                page.store::<u64>(i * 8, pattern(2, i))?;
            }
            let grant = CopyPtr::Grant {
                domid,
                gref,
                offset: 0,
            };
            let local = CopyPtr::Local {
                frame: scratch_frame,
                offset: 0,
            };
            let len = PAGE_SIZE as u16;
            let mut op = [GnttabCopy::new(grant, local, len)?];
            gnttab::copy(&mut op)?;
            if op[0].status() != 0 {
                return Err(XenError::Grant {
                    op: "copy from the loopback grant",
                    status: op[0].status(),
                });
            }
            for i in 0..WORDS {
                // SAFETY: within the scratch page, which Xen wrote during the copy (hence volatile).
                if unsafe { scratch_ptr.add(i).read_volatile() } != pattern(2, i) {
                    return Err(mismatch("the mapping read through a grant copy"));
                }
                // SAFETY: as above; the next copy reads it.
                unsafe { scratch_ptr.add(i).write_volatile(pattern(3, i)) };
            }
            let mut op = [GnttabCopy::new(local, grant, len)?];
            gnttab::copy(&mut op)?;
            if op[0].status() != 0 {
                return Err(XenError::Grant {
                    op: "copy to the loopback grant",
                    status: op[0].status(),
                });
            }
            for i in 0..WORDS {
                if page.load::<u64>(i * 8)? != pattern(3, i) {
                    return Err(mismatch("a grant copy read through the mapping"));
                }
            }
            Ok(page.frame() << 12)
        })();
        // On failure the page is dropped, which retries the unmap and otherwise keeps its frame taken.
        let unmapped = page.unmap().map_err(|(_, e)| e);
        let address = through?;
        unmapped.map(|()| address)
    });
    // While still mapped (the unmap failed) this fails too, and the entry stays in use.
    let ended = grants.end_grant(gref);
    drop(scratch);
    // Once the grant is ended nothing maps the source page: give its frame back (if Xen left it there)
    // and refill it, whatever the check found. A frame left a hole is harmless: nothing else uses it.
    let refilled = ended.and_then(|()| {
        let mut frames = [frame];
        let released = hypercall::decrease_reservation(&mut frames)?;
        let mut frames = [frame];
        if hypercall::populate_physmap(&mut frames)? != 1 {
            return Err(XenError::Backend(
                "grant map loopback: Xen gave no page to refill the source frame".into(),
            ));
        }
        Ok(released)
    });
    let address = checked?;
    let released = refilled?;
    Ok(GrantLoopback {
        gref,
        address,
        us: clock::now_us() - start,
        source_moved: released == 0,
    })
}

/// A device found in xenstore.
#[derive(Debug, Clone)]
pub struct FoundDevice {
    /// `vif` or `vbd`.
    pub kind: &'static str,
    /// The id under `device/<kind>/`.
    pub id: String,
    /// Our frontend directory, `device/<kind>/<id>`.
    pub frontend: String,
}

/// Brings up events, the grant table and xenstore (each step logged), then lists the devices in xenstore.
pub fn bring_up() -> Option<(XenServices, Vec<FoundDevice>)> {
    let events = match XenEvents::new() {
        Ok(e) => e,
        Err(e) => {
            error!("xen: event channels unusable: {e}");
            return None;
        }
    };
    if HVM_FEATURES.load(Ordering::Relaxed) & hypercall::HVM_CPUID_UPCALL_VECTOR == 0 {
        warn!("xen: this Xen does not advertise the per-vCPU upcall vector; trying anyway");
    }
    match events::set_upcall_vector(EVENT_VECTOR) {
        Ok(()) => {
            info!("xen: event upcalls on vector {EVENT_VECTOR:#x} (vCPU 0, LAPIC EOI)");
            match event_loopback(events) {
                Ok(us) => info!("xen: a loopback event woke hlt after {us} us"),
                Err(e) => warn!("xen: event loopback check: {e}"),
            }
        }
        Err(e) => warn!("xen: no event upcall ({e}): events are seen only at timer wake-ups"),
    }
    let grants = match gnttab::init().and_then(|n| XenGrants::new().map(|g| (n, g))) {
        Ok((n, g)) => {
            info!("xen: grant table v1 with {n} entries ({} free)", g.free());
            match gnttab::map_pool_init() {
                Ok(n) => info!(
                    "xen: grant-map pool: {} frames at {:#x}, RAM of {n} returned to Xen",
                    gnttab::MAP_POOL_FRAMES,
                    gnttab::map_pool_base() << 12
                ),
                Err(e) => warn!(
                    "xen: grant-map pool keeps its RAM ({e}): a frame's first mapping strands a page"
                ),
            }
            Some(g)
        }
        Err(e) => {
            warn!("xen: no grant table: {e}");
            None
        }
    };
    let mut store = match RingTransport::from_params(clock::now_us) {
        Ok(ring) => {
            info!("xen: xenstore ring, event channel {}", ring.port());
            let mut store = XenStore::new(ring);
            match store.read("name") {
                Ok(name) => info!("xen: xenstore answers: domain name {name:?}"),
                Err(e) => warn!("xen: xenstore: reading our name: {e}"),
            }
            Some(store)
        }
        Err(XenError::Backend(what)) if what.contains("is 0") => {
            info!("xen: no xenstore (a dom0 before xenstored runs)");
            None
        }
        Err(e) => {
            warn!("xen: no xenstore: {e}");
            None
        }
    };
    if let (Some(store), Some(grants)) = (store.as_mut(), grants) {
        match store.read("domid").map(|v| v.trim_end_matches('\0').trim().parse()) {
            Ok(Ok(domid)) => match grant_map_loopback(grants, domid) {
                Ok(r) => info!(
                    "xen: grant map loopback ok (gref {} of domain {domid} mapped at {:#x}, {} us{})",
                    r.gref,
                    r.address,
                    r.us,
                    if r.source_moved {
                        "; Xen had moved the source page, refilled"
                    } else {
                        ""
                    }
                ),
                Err(e) => warn!("xen: grant map loopback: {e}"),
            },
            Ok(Err(_)) => warn!("xen: grant map loopback skipped: xenstore domid is not a number"),
            Err(e) => warn!("xen: grant map loopback skipped: reading our domid: {e}"),
        }
    }
    let mut devices = Vec::new();
    if let Some(store) = store.as_mut() {
        discover(store, &mut devices);
    }
    Some((
        XenServices {
            store,
            grants,
            events,
        },
        devices,
    ))
}

/// Lists `device/vif/*` and `device/vbd/*`, logging each with its backend.
fn discover(store: &mut impl Store, found: &mut Vec<FoundDevice>) {
    for kind in ["vif", "vbd"] {
        let dir = format!("device/{kind}");
        let ids = match store.directory(&dir) {
            Ok(ids) => ids,
            Err(XenError::Store { error, .. }) if error == "ENOENT" => Vec::new(),
            Err(e) => {
                warn!("xen: listing {dir}: {e}");
                continue;
            }
        };
        if ids.is_empty() {
            info!("xen: no {kind} devices");
        }
        for id in ids.into_iter().take(16) {
            let frontend = format!("{dir}/{id}");
            let backend = store.read(&format!("{frontend}/backend"));
            let backend_id = store
                .read(&format!("{frontend}/backend-id"))
                .ok()
                .and_then(|v| v.trim().parse::<u16>().ok());
            let (Ok(backend), Some(backend_id)) = (backend, backend_id) else {
                warn!("xen: {frontend}: no usable backend/backend-id; skipped");
                continue;
            };
            let state = store
                .read(&format!("{backend}/state"))
                .ok()
                .and_then(|s| drivers::xen::XenbusState::parse(&s));
            let detail = if kind == "vif" {
                format!(
                    "mac {}",
                    store
                        .read(&format!("{frontend}/mac"))
                        .unwrap_or_else(|e| format!("unknown ({e})"))
                )
            } else {
                format!(
                    "virtual-device {}, {}",
                    store
                        .read(&format!("{frontend}/virtual-device"))
                        .unwrap_or_else(|_| id.clone()),
                    store
                        .read(&format!("{frontend}/device-type"))
                        .unwrap_or_else(|_| "disk".into())
                )
            };
            info!(
                "xen: {frontend}: {detail}, backend {backend} (domain {backend_id}, state {state:?})"
            );
            found.push(FoundDevice {
                kind: if kind == "vif" { "vif" } else { "vbd" },
                id,
                frontend,
            });
        }
    }
}

/// How long a backend may take to connect (nested emulation is slow; a real host takes milliseconds).
const CONNECT_TIMEOUT_US: u64 = 30_000_000;

/// Sleeps a millisecond (or until an event) while a backend is connecting.
fn idle_a_little() {
    crate::idle::wait_until(clock::now_us() + 1_000);
}

/// The Xen side of `platform::bring_up`: the hypervisor services, then the first vbd read whole through
/// blkfront (the config disk) and every vif connected through netfront, in `device/vif` order (the
/// first is the service NIC unless boot arguments pick by MAC, as with virtio). A device whose backend
/// misbehaves or never connects is logged and left out.
pub fn bring_up_devices(cmdline: &str) -> super::Devices {
    let mut devices = super::Devices {
        disk: None,
        nics: Vec::new(),
        all_interrupts_routed: true,
    };
    let Some((services, found)) = bring_up() else {
        error!("xen: hypervisor services unusable: no devices");
        return devices;
    };
    let XenServices {
        store,
        grants,
        events,
    } = services;
    let (Some(mut store), Some(grants)) = (store, grants) else {
        warn!("xen: no xenstore or no grant table: no devices");
        return devices;
    };
    devices.all_interrupts_routed = events::upcalls_enabled();
    let hv = Hypervisor { grants, events };
    let mut now = clock::now_us;
    for dev in &found {
        let Ok(index) = dev.id.parse::<u32>() else {
            warn!("xen: {}: not a numeric device id; skipped", dev.frontend);
            continue;
        };
        match dev.kind {
            "vbd" if devices.disk.is_none() => {
                info!("xen: {}: blkfront (config disk)", dev.frontend);
                devices.disk = Some(
                    blkfront::read_disk(
                        hv,
                        &mut store,
                        index,
                        super::MAX_DISK_BYTES,
                        &mut now,
                        CONNECT_TIMEOUT_US,
                        &mut idle_a_little,
                    )
                    .map_err(super::DiskError::Xen),
                );
            }
            "vif" => match Netfront::connect(
                hv,
                &mut store,
                index,
                &mut now,
                CONNECT_TIMEOUT_US,
                &mut idle_a_little,
            ) {
                Ok(nic) => {
                    let [a, b, c, d, e, f] = nic.mac_address();
                    info!(
                        "xen: {}: netfront connected, mac {a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}, event channel {}",
                        dev.frontend,
                        nic.port()
                    );
                    devices.nics.push(super::Nic::Xen(nic));
                }
                Err(e) => warn!("xen: {}: netfront: {e}; left out", dev.frontend),
            },
            _ => info!("xen: {}: ignored", dev.frontend),
        }
    }
    if cmdline.split_ascii_whitespace().any(|t| t == "--qubesdb") {
        match store
            .read("domid")
            .map(|v| v.trim_end_matches('\0').trim().parse())
        {
            Ok(Ok(me)) => super::qubesdb::start(hv, &mut store, me),
            _ => warn!("qubesdb: our domid is not in xenstore; running without QubesDB"),
        }
    }
    control_start(store, events, Some(hv));
    devices
}

/// What dom0's toolstack asked for in `control/shutdown` (`xl shutdown`, `xl reboot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// `poweroff` or `halt`.
    Poweroff,
    /// `reboot`: the toolstack restarts the domain (its `on_reboot`).
    Reboot,
}

/// xenstore after bring-up: the watch on `control/shutdown`, and the client vifs we serve (netback).
struct Control {
    store: XenStore<RingTransport>,
    vifs: Option<super::xen_netback::Vifs>,
}

struct ControlCell(UnsafeCell<Option<Control>>);

// SAFETY: set once by `control_start` during single-threaded boot; afterwards only the main loop (one
// thread, never an interrupt handler) reaches it through `shutdown_request`.
unsafe impl Sync for ControlCell {}

static CONTROL: ControlCell = ControlCell(UnsafeCell::new(None));
/// The reboot request that the next clean exit turns into SHUTDOWN_reboot.
static REBOOT_REQUESTED: AtomicU32 = AtomicU32::new(0);

const SHUTDOWN_NODE: &str = "control/shutdown";

/// Announces the PV shutdown protocol (`control/feature-poweroff`, `-reboot`) and watches
/// `control/shutdown`, with its event channel unmasked so a request wakes `hlt`. xenstore stays open for
/// the life of the image.
fn control_start(
    mut store: XenStore<RingTransport>,
    mut events: XenEvents,
    hv: Option<Hypervisor>,
) {
    use drivers::xen::EventChannels;
    for feature in ["control/feature-poweroff", "control/feature-reboot"] {
        if let Err(e) = store.write(feature, "1") {
            warn!("xen: writing {feature}: {e}");
        }
    }
    match store.watch(SHUTDOWN_NODE, "shutdown") {
        Ok(()) => {
            events.set_unmasked(store.transport().port(), true);
            info!("xen: watching {SHUTDOWN_NODE} (xl shutdown / reboot)");
        }
        Err(e) => warn!("xen: watching {SHUTDOWN_NODE}: {e}; xl shutdown will not be heard"),
    }
    // Client domains whose vifs name us as their backend (`backend=<our name>` in their xl config).
    let vifs = hv.and_then(
        |hv| match store.watch("backend/vif", super::xen_netback::TOKEN) {
            Ok(()) => {
                info!("xen: watching backend/vif (netback for client domains)");
                Some(super::xen_netback::Vifs::new(hv))
            }
            Err(e) => {
                warn!("xen: watching backend/vif: {e}; no netback");
                None
            }
        },
    );
    // SAFETY: single-threaded boot; nothing has borrowed CONTROL yet (see ControlCell).
    unsafe { *CONTROL.0.get() = Some(Control { store, vifs }) };
}

/// A shutdown request from the toolstack, if one arrived: cheap when none did (the xenstore ring's
/// indices are read, nothing more). The request is acknowledged by clearing the node, as Linux does.
pub fn shutdown_request() -> Option<ShutdownRequest> {
    // SAFETY: only the main loop calls this, never reentrantly (see ControlCell).
    let control = unsafe { (*CONTROL.0.get()).as_mut() }?;
    let mut fired = false;
    loop {
        match control.store.poll_watch() {
            Ok(Some(event)) if event.token == super::xen_netback::TOKEN => {
                if let Some(vifs) = control.vifs.as_mut() {
                    vifs.dirty = true;
                }
            }
            Ok(Some(event)) => fired |= event.path.ends_with(SHUTDOWN_NODE),
            Ok(None) => break,
            Err(e) => {
                warn!("xen: xenstore watch: {e}");
                break;
            }
        }
    }
    if !fired {
        return None;
    }
    let value = match control.store.read(SHUTDOWN_NODE) {
        Ok(v) => v,
        Err(XenError::Store { error, .. }) if error == "ENOENT" => return None,
        Err(e) => {
            warn!("xen: reading {SHUTDOWN_NODE}: {e}");
            return None;
        }
    };
    let request = match value.trim_end_matches('\0') {
        "" => return None,
        "poweroff" | "halt" => ShutdownRequest::Poweroff,
        "reboot" => ShutdownRequest::Reboot,
        other => {
            warn!("xen: {SHUTDOWN_NODE} = {other:?} is not supported; ignored");
            let _ = control.store.write(SHUTDOWN_NODE, "");
            return None;
        }
    };
    if let Err(e) = control.store.write(SHUTDOWN_NODE, "") {
        warn!("xen: acknowledging {SHUTDOWN_NODE}: {e}");
    }
    if request == ShutdownRequest::Reboot {
        REBOOT_REQUESTED.store(1, Ordering::Relaxed);
    }
    Some(request)
}

/// The netback side of the main loop: a handshake pass when a watch fired (connected vifs go to
/// `ports`).
pub fn poll_backends(ports: &mut dyn super::ClientPorts) {
    // SAFETY: only the main loop calls this, never reentrantly, and not while `shutdown_request` runs
    // (see ControlCell).
    let Some(control) = (unsafe { (*CONTROL.0.get()).as_mut() }) else {
        return;
    };
    let Some(vifs) = control.vifs.as_mut() else {
        return;
    };
    if vifs.dirty {
        vifs.rescan(&mut control.store, ports);
    }
}
