//! QEMU and other VMMs with virtio devices: COM1, the PIT-calibrated TSC and the CMOS RTC, virtio on PCI
//! and virtio-mmio, interrupts through MSI-X or the I/O APIC, and isa-debug-exit.
//!
//! Discovery order: PCI functions in bus order (QEMU numbers `-device` entries in command-line order),
//! then `virtio_mmio.device=` entries in command-line order (`-M microvm,acpi=off` lists them in
//! `-device` order).

use alloc::vec::Vec;
use core::fmt::{self, Write};

use drivers::cpu::Features;
use drivers::ioapic::{self, IoApic};
use drivers::pci::{self, BarWindow, ConfigurationAccess, PciRoot, PortIoCam};
use drivers::serial::Com1;
use drivers::virtio::pci::MsixRouteError;
use drivers::virtio::{self, blk, mmio, net::VirtioNet, DeviceType, SomeTransport, Transport};
use drivers::{clock, kvmclock};
use log::{info, warn};
use oxvpn_kernel::exit::ExitCode;

use super::{Devices, DiskError, Nic, MAX_DISK_BYTES};

/// Programs COM1.
pub fn init_console() {
    Com1::init();
}

/// Writes to COM1.
pub fn console_write(s: &str) -> fmt::Result {
    Com1.write_str(s)
}

/// I/O port of QEMU's isa-debug-exit device as `scripts/qemu.sh` configures it.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Leaves the VM with `code` through isa-debug-exit (QEMU exits with `(code << 1) | 1`); without the
/// device the write is ignored and the CPU halts with interrupts off.
pub fn exit(code: ExitCode) -> ! {
    // SAFETY: writing the debug-exit port ends the VM (or is ignored when the device is absent).
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") DEBUG_EXIT_PORT, in("eax") u32::from(code.code()),
                         options(nomem, nostack));
    }
    loop {
        // SAFETY: halting with interrupts disabled stops this CPU for good, which is the intent.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// The TSC rate: the boot argument, CPUID, kvmclock (registered here when KVM offers it, which also gives
/// the wall clock), or the PIT as the last resort (`clock::tsc_frequency`). Runs before the heap.
pub fn clocks(
    features: &Features,
    tsc_khz: Option<u32>,
) -> Result<(u64, &'static str), &'static str> {
    let kvmclock_hz = match kvmclock::enable(features) {
        Ok(hz) => Some(hz),
        Err(kvmclock::KvmclockError::NotOffered) => None,
        Err(e) => {
            warn!("clock: {e}");
            None
        }
    };
    match clock::tsc_frequency(features, tsc_khz, kvmclock_hz) {
        Ok((hz, source)) => {
            clock::set_frequency(hz);
            Ok((hz, source.name()))
        }
        Err(e) => {
            warn!("clock: {e}");
            Err("no TSC rate (see above); on such a host give it with --tsc-khz=KHZ")
        }
    }
}

/// The wall clock at boot: kvmclock's when registered, else the CMOS RTC's (None, said why, when neither
/// has one). Runs before the heap.
pub fn wall_clock() -> Option<(u64, &'static str)> {
    if let Some(unix) = kvmclock::unix_time_now() {
        return Some((unix, "kvmclock"));
    }
    match clock::read_rtc() {
        Ok(t) => {
            info!("wall clock: {t} (CMOS RTC)");
            Some((t.unix_seconds(), "CMOS RTC"))
        }
        Err(e) => {
            warn!("wall clock: no kvmclock and {e}");
            None
        }
    }
}

/// Where BARs the firmware left empty go: the top of the 32-bit PCI hole, below the I/O APIC.
const BAR_WINDOW: (u64, u64) = (0xe000_0000, 0xfec0_0000);
/// The end of the boot identity map: BARs above it are moved into the window.
const MAPPED_LIMIT: u64 = 1 << 32;
/// The wake vector every device GSI is routed to (see `boot::interrupts::WAKE_VECTORS`).
const DEVICE_VECTOR: u8 = 0x30;

/// Where a transport came from, for the log and the interrupt route.
struct Found {
    transport: SomeTransport<'static>,
    gsi: Option<u32>,
    origin: Origin,
}

#[derive(Clone, Copy)]
enum Origin {
    Pci(pci::DeviceFunction),
    Mmio(u64),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pci(df) => write!(f, "pci {df}"),
            Self::Mmio(base) => write!(f, "mmio {base:#x}"),
        }
    }
}

/// PCI configuration access, kept for the whole bring-up (MSI-X is set up after the driver started).
struct Pci {
    cam: PortIoCam,
    root: PciRoot<PortIoCam>,
}

impl Pci {
    fn new() -> Self {
        // SAFETY: bring-up is the only user of the configuration ports, and runs once.
        let cam = unsafe { PortIoCam::new() };
        // SAFETY: both handles are used from this single thread, one call at a time.
        let root = PciRoot::new(unsafe { cam.unsafe_clone() });
        Self { cam, root }
    }

    fn discover(&mut self, found: &mut Vec<Found>) {
        let functions = pci::enumerate(&self.root, &self.cam);
        let mut window = BarWindow::new(BAR_WINDOW.0, BAR_WINDOW.1);
        for function in virtio::pci::virtio_functions(&functions) {
            let address = function.address;
            match pci::assign_bars(&mut self.root, address, &mut window, MAPPED_LIMIT) {
                Ok(0) => {}
                Ok(n) => log::info!("pci {address}: assigned {n} BAR(s)"),
                Err(e) => {
                    log::warn!("pci {address}: {e}");
                    continue;
                }
            }
            match virtio::pci::open(&mut self.root, address) {
                Ok(transport) => found.push(Found {
                    transport: SomeTransport::Pci(transport),
                    gsi: virtio::pci::interrupt_line(&self.cam, address).map(u32::from),
                    origin: Origin::Pci(address),
                }),
                Err(e) => log::warn!("pci {address}: {:?}: {e}", function.device_type),
            }
        }
    }

    /// Routes a started virtio-net function's two queues to the wake vector through MSI-X.
    fn route_msix(
        &mut self,
        function: pci::DeviceFunction,
        apic_id: u8,
    ) -> Result<(), MsixRouteError> {
        // SAFETY: `function` is a virtio-net function opened by `discover` (BARs assigned, below the
        // identity-map limit) whose driver (`VirtioNet`) has set its queues up and does not use MSI-X.
        unsafe {
            virtio::pci::route_queue_interrupts(
                &mut self.root,
                &mut self.cam,
                function,
                2,
                DEVICE_VECTOR,
                apic_id,
            )
        }
    }
}

fn discover_mmio(cmdline: &str, found: &mut Vec<Found>) {
    for spec in mmio::parse_cmdline(cmdline) {
        let spec = match spec {
            Ok(spec) => spec,
            Err(e) => {
                log::warn!("{e}");
                continue;
            }
        };
        // SAFETY: the host told us a transport lives there; the boot identity map covers the low 4 GiB
        // and each entry is opened once.
        match unsafe { mmio::open(&spec) } {
            Ok(transport) => found.push(Found {
                transport: SomeTransport::Mmio(transport),
                gsi: Some(spec.irq),
                origin: Origin::Mmio(spec.base),
            }),
            Err(e) => log::warn!("mmio {:#x}: {e}", spec.base),
        }
    }
}

/// Finds every virtio device, reads the first block device whole and opens every NIC.
pub fn bring_up(cmdline: &str) -> Devices {
    let mut found = Vec::new();
    let mut pci = Pci::new();
    pci.discover(&mut found);
    discover_mmio(cmdline, &mut found);

    // SAFETY: QEMU's I/O APIC is at the standard address, identity-mapped; nothing else programs it.
    let mut io_apic = unsafe { IoApic::new(ioapic::DEFAULT_BASE) };
    let apic_id = ioapic::current_apic_id();
    let mut devices = Devices {
        disk: None,
        nics: Vec::new(),
        all_interrupts_routed: true,
    };
    for Found {
        transport,
        gsi,
        origin,
    } in found
    {
        let kind = transport.device_type();
        match kind {
            DeviceType::Block if devices.disk.is_none() => {
                log::info!("{origin}: virtio-blk (config disk)");
                devices.disk =
                    Some(blk::read_disk(transport, MAX_DISK_BYTES).map_err(DiskError::Virtio));
            }
            DeviceType::Network => match VirtioNet::new(transport) {
                Ok(mut nic) => {
                    nic.enable_interrupts();
                    // PCI: MSI-X, which needs no chipset routing (q35 firmware may leave INTx
                    // unrouted). Otherwise (virtio-mmio, or no MSI-X) the GSI through the I/O APIC.
                    let msix = match origin {
                        Origin::Pci(function) => match pci.route_msix(function, apic_id) {
                            Ok(()) => true,
                            Err(e) => {
                                log::warn!("{origin}: MSI-X: {e}; trying INTx");
                                false
                            }
                        },
                        Origin::Mmio(_) => false,
                    };
                    let routed =
                        !msix && gsi.is_some_and(|gsi| io_apic.route(gsi, DEVICE_VECTOR, apic_id));
                    match gsi {
                        _ if msix => log::info!("{origin}: virtio-net, MSI-X"),
                        Some(gsi) if routed => log::info!("{origin}: virtio-net, irq {gsi}"),
                        _ => {
                            log::warn!("{origin}: virtio-net without a routable interrupt: polled");
                            devices.all_interrupts_routed = false;
                        }
                    }
                    devices.nics.push(Nic::Virtio(nic));
                }
                Err(e) => log::warn!("{origin}: {e}"),
            },
            other => log::info!("{origin}: {other:?} ignored"),
        }
    }
    devices
}
