//! The platform seam: what differs between the hosts the image runs on (QEMU and other VMMs with virtio,
//! Xen): the console, the clocks, the memory map, device discovery and how the VM ends.
//!
//! Layer: kernel glue, below everything that decides anything. The rest of the kernel sees one console
//! ([`Console`]) and one [`exit`]; which host provides them is decided once, at boot, by [`detect`].
//! (Minimal form from the `xen1` branch: QEMU's parts inline, Xen's in [`xen`].)

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use boot::pvh::{MemmapEntry, StartInfo};
use drivers::clock;
use drivers::cpu::Features;
use drivers::serial::Com1;
use log::{info, warn};
use oxvpn_kernel::exit::ExitCode;

pub mod xen;

/// The host the image runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Host {
    /// QEMU (pc, q35, microvm) or another VMM with virtio devices, a COM1 UART and isa-debug-exit.
    Qemu = 0,
    /// A Xen PVH guest (domU, or dom0): PV console, pvclock, event channels, xenstore.
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
        Com1::init();
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
            Host::Qemu => Com1.write_str(s),
            Host::Xen => xen::console_write(s),
        }
    }
}

/// Leaves the VM with `code` (the caller has logged it).
pub fn exit(code: ExitCode) -> ! {
    match host() {
        Host::Qemu => oxvpn_kernel::exit::exit(code),
        Host::Xen => xen::exit(code),
    }
}

/// Calibrates the monotonic clock (returns the TSC rate and where it came from) and sets the wall clock.
pub fn clocks(features: &Features) -> Result<(u64, &'static str), &'static str> {
    match host() {
        Host::Xen => xen::clocks(),
        Host::Qemu => {
            let (hz, source) = match clock::tsc_frequency(features) {
                Ok((hz, clock::FrequencySource::HypervisorLeaf)) => {
                    (hz, "hypervisor CPUID leaf 0x40000010")
                }
                Ok((hz, clock::FrequencySource::Pit)) => (hz, "PIT calibration"),
                Err(e) => {
                    warn!("clock: {e}");
                    return Err("no hypervisor timing leaf and no PIT");
                }
            };
            clock::set_frequency(hz);
            match clock::read_rtc() {
                Ok(t) => {
                    clock::set_wall_clock(t.unix_seconds());
                    info!("wall clock: {t} (CMOS RTC, unix {})", t.unix_seconds());
                }
                Err(e) => warn!("wall clock unknown: {e}; certificate dates cannot be checked"),
            }
            Ok((hz, source))
        }
    }
}

/// The memory map: the PVH start info's, or under Xen the hypervisor's when the start info has none.
pub fn memmap(start_info: &StartInfo) -> &'static [MemmapEntry] {
    match host() {
        Host::Xen if start_info.memmap().is_empty() => xen::memmap(),
        _ => start_info.memmap(),
    }
}

/// After each wake from `hlt`, before the main loop polls again.
pub fn after_wake() {
    if host() == Host::Xen {
        xen::after_wake();
    }
}
