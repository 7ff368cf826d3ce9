//! The platform seam: what differs between the hosts the image runs on (QEMU and other VMMs with virtio,
//! Xen PVH): the console, the clocks, the memory map, device discovery, wake-ups and how the VM ends.
//!
//! Layer: kernel glue, below everything that decides anything. The rest of the kernel sees one console
//! ([`Console`]), one [`exit`], one [`Nic`] type (a `drivers::netdev::NetDevice`) and one [`Devices`] list;
//! which host provides them is decided once, at boot, by [`detect`] (Xen's CPUID leaves), so one ELF
//! serves both.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use boot::pvh::{MemmapEntry, StartInfo};
use drivers::cpu::Features;
use drivers::virtio::blk;
use oxvpn_kernel::exit::ExitCode;

mod nic;
pub mod qemu;
pub mod qubesdb;
pub mod xen;
mod xen_netback;

pub use nic::{Nic, NicRx, NicTx};
pub use xen_netback::{ClientPorts, NoPorts};

/// The host the image runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Host {
    /// QEMU (pc, q35, microvm) or another VMM with virtio devices, a COM1 UART and isa-debug-exit.
    Qemu = 0,
    /// A Xen PVH guest (domU, or dom0): PV console, pvclock, event channels, xenstore, netfront, blkfront.
    Xen = 1,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Host::Qemu => "QEMU/virtio",
            Host::Xen => "Xen PVH",
        })
    }
}

static HOST: AtomicU8 = AtomicU8::new(Host::Qemu as u8);

/// Finds out which host this is and sets its console up. First thing at boot, before any output.
pub fn detect() -> Host {
    let host = if xen::detect() { Host::Xen } else { Host::Qemu };
    HOST.store(host as u8, Ordering::Relaxed);
    if host == Host::Qemu {
        qemu::init_console();
    }
    host
}

/// The host [`detect`] found.
pub fn host() -> Host {
    match HOST.load(Ordering::Relaxed) {
        1 => Host::Xen,
        _ => Host::Qemu,
    }
}

/// The console of the host: log lines, and the fatal paths (which write without a lock).
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match host() {
            Host::Qemu => qemu::console_write(s),
            Host::Xen => xen::console_write(s),
        }
    }
}

/// Leaves the VM with `code` (the caller has logged it).
pub fn exit(code: ExitCode) -> ! {
    match host() {
        Host::Qemu => qemu::exit(code),
        Host::Xen => xen::exit(code),
    }
}

/// Calibrates the monotonic clock (returns the TSC rate and where it came from) and sets the wall clock.
/// `tsc_khz` (`--tsc-khz`) and `wall_clock` (`--wall-clock`) are the host's word and win. Runs before the
/// heap: nothing here allocates.
pub fn clocks(
    features: &Features,
    tsc_khz: Option<u32>,
    wall_clock: Option<u64>,
) -> Result<(u64, &'static str), &'static str> {
    let found = match host() {
        Host::Qemu => qemu::clocks(features, tsc_khz),
        Host::Xen => xen::clocks(tsc_khz),
    }?;
    let wall = match wall_clock {
        Some(unix) => Some((unix, "--wall-clock")),
        None => match host() {
            Host::Qemu => qemu::wall_clock(),
            Host::Xen => xen::wall_clock(),
        },
    };
    match wall {
        Some((unix, source)) => {
            drivers::clock::set_wall_clock(unix);
            log::info!("wall clock: unix {unix} ({source})");
        }
        None => log::warn!(
            "wall clock unknown: the tunnel will refuse to check certificates; give --wall-clock=UNIX"
        ),
    }
    Ok(found)
}

/// The memory map: the PVH start info's, or under Xen the hypervisor's when the start info has none.
pub fn memmap(start_info: &StartInfo) -> &'static [MemmapEntry] {
    match host() {
        Host::Xen if start_info.memmap().is_empty() => xen::memmap(),
        _ => start_info.memmap(),
    }
}

/// A request from the host to shut the VM down (Xen's `xl shutdown`/`reboot`; under QEMU the ACPI power
/// button, when [`arm_power_button`] armed it). Checked by the main loop on every pass; cheap.
pub fn shutdown_request() -> Option<xen::ShutdownRequest> {
    match host() {
        Host::Qemu => qemu::shutdown_request(),
        Host::Xen => xen::shutdown_request(),
    }
}

/// Under QEMU: finds the ACPI power button (FADT, `_S5_`) and arms it, logging one line either way (Xen
/// has its own shutdown requests, through xenstore). Before the heap: it reads the firmware's tables.
pub fn arm_power_button(start_info: &StartInfo) {
    if host() == Host::Qemu {
        qemu::arm_power_button(start_info.rsdp_paddr, memmap(start_info));
    }
}

/// The host's services besides the NICs, every main-loop pass (cheap when idle). Under Xen: client
/// domains' vifs (netback: new ones taken on, handshakes followed, connected ones handed to `ports`, the
/// router's client ports) and QubesDB's updates (with `--qubesdb`; committed firewall rules to `ports`).
pub fn poll_host_services(ports: &mut dyn ClientPorts) {
    if host() == Host::Xen {
        xen::poll_backends(ports);
        for ip in qubesdb::poll() {
            ports.firewall_changed(&ip);
        }
    }
}

/// QubesDB's uplink configuration (Xen with `--qubesdb`, once connected).
pub fn qubesdb_uplink() -> Option<drivers::xen::qubesdb::Uplink> {
    match host() {
        Host::Xen => qubesdb::uplink(),
        Host::Qemu => None,
    }
}

/// After each wake from `hlt`, before the main loop polls again.
pub fn after_wake() {
    if host() == Host::Xen {
        xen::after_wake();
    }
}

/// What device bring-up found.
pub struct Devices {
    /// The whole config disk, if there was one.
    pub disk: Option<Result<Vec<u8>, DiskError>>,
    /// The NICs in discovery order.
    pub nics: Vec<Nic>,
    /// False when some NIC has no interrupt route: the main loop must then poll on a short timer.
    pub all_interrupts_routed: bool,
}

/// Why the config disk could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskError {
    /// The virtio-blk disk could not be read.
    Virtio(blk::DiskReadError),
    /// The Xen vbd could not be read.
    Xen(drivers::xen::blkfront::DiskReadError),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Virtio(e) => write!(f, "{e}"),
            Self::Xen(e) => write!(f, "{e}"),
        }
    }
}

/// How much of the config disk is read: the largest config text plus its terminating NUL. Anything on
/// a larger disk beyond this cannot belong to a valid config.
pub const MAX_DISK_BYTES: usize = config_disk::MAX_CONFIG_LEN + config_disk::SECTOR_SIZE;

/// Finds the host's devices: the config disk (read whole) and every NIC, with interrupts routed to the
/// wake vector.
pub fn bring_up(cmdline: &str) -> Devices {
    match host() {
        Host::Qemu => qemu::bring_up(cmdline),
        Host::Xen => xen::bring_up_devices(cmdline),
    }
}
