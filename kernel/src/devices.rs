//! Device bring-up: finds the virtio devices on PCI and virtio-mmio, reads the config disk, opens the
//! NICs and routes their interrupts to the wake vectors.
//!
//! Layer: kernel glue over `drivers`. Runs once at boot, before the main loop; it decides nothing about
//! roles (that is `net`) or about the config's meaning (that is `config_disk` and `openvpn`).
//!
//! Discovery order: PCI functions in bus order (QEMU numbers `-device` entries in command-line order),
//! then `virtio_mmio.device=` entries in command-line order (`-M microvm,acpi=off` lists them in
//! `-device` order).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use drivers::clock;
use oxvpn_kernel::args::BootArgs;
use oxvpn_kernel::exit::{exit, ExitCode};
use rand_core::RngCore;
use smoltcp::time::Instant;

use drivers::ioapic::{self, IoApic};
use drivers::pci::{self, BarWindow, ConfigurationAccess, PciRoot, PortIoCam};
use drivers::virtio::pci::MsixRouteError;
use drivers::virtio::{self, blk, mmio, net::VirtioNet, DeviceType, SomeTransport, Transport};

use crate::entropy::KernelRng;
use crate::net::Network;
use crate::public::Nic;
use crate::serve::{self, ServerNet};

/// What the network does, decided by the config: route a LAN through a tunnel, or serve clients.
pub enum NetRole {
    /// The router (client) role: two NICs, the OpenVPN client and the LAN router.
    Router(Network),
    /// The server role: the public NIC and the OpenVPN server.
    Server(ServerNet),
}

/// How much of the config disk is read: the largest config text plus its terminating NUL. Anything on
/// a larger disk beyond this cannot belong to a valid config.
pub const MAX_DISK_BYTES: usize = config_disk::MAX_CONFIG_LEN + config_disk::SECTOR_SIZE;
/// Where BARs the firmware left empty go: the top of the 32-bit PCI hole, below the I/O APIC.
const BAR_WINDOW: (u64, u64) = (0xe000_0000, 0xfec0_0000);
/// The end of the boot identity map: BARs above it are moved into the window.
const MAPPED_LIMIT: u64 = 1 << 32;
/// The wake vector every device GSI is routed to (see `boot::interrupts::WAKE_VECTORS`).
const DEVICE_VECTOR: u8 = 0x30;

/// What bring-up found.
pub struct Devices {
    /// The whole config disk, if there was one.
    pub disk: Option<Result<Vec<u8>, blk::DiskReadError>>,
    /// The virtio-net devices in discovery order.
    pub nics: Vec<Nic>,
    /// False when some NIC has no interrupt route: the main loop must then poll on a short timer.
    pub all_interrupts_routed: bool,
}

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
                devices.disk = Some(blk::read_disk(transport, MAX_DISK_BYTES));
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
                    devices.nics.push(nic);
                }
                Err(e) => log::warn!("{origin}: {e}"),
            },
            other => log::info!("{origin}: {other:?} ignored"),
        }
    }
    devices
}

/// Why the config disk was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigDiskError {
    /// The disk could not be read.
    Read(blk::DiskReadError),
    /// The bytes are not a config disk (empty, too large, not text).
    Format(config_disk::DiskError),
}

impl fmt::Display for ConfigDiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "{e}"),
            Self::Format(e) => write!(f, "{e}"),
        }
    }
}

/// The boot step after the CPU and memory: find the devices, read and fingerprint the config disk, and
/// bring up both network sides. Exits with [`ExitCode::BadConfig`] when a config disk is present but
/// unusable. Returns the config text (if there was a disk) and the network: a server config serves on
/// the first NIC; otherwise the router needs two NICs.
pub fn start(cmdline: &str, args: &BootArgs) -> (Option<String>, Option<NetRole>) {
    let devices = bring_up(cmdline);
    let config = match devices.disk {
        None => {
            log::warn!("config disk: none found (attach the .ovpn as a virtio-blk disk)");
            None
        }
        Some(disk) => match disk.map_err(ConfigDiskError::Read).and_then(|d| {
            config_disk::read(&d)
                .map(String::from)
                .map_err(ConfigDiskError::Format)
        }) {
            Ok(text) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
                let mut hex = String::with_capacity(64);
                for byte in digest.as_ref() {
                    let _ = write!(hex, "{byte:02x}");
                }
                log::info!("config: sha256={hex} bytes={}", text.len());
                Some(text)
            }
            Err(e) => {
                log::error!("config disk: {e}");
                log::error!("exit: {}", ExitCode::BadConfig);
                exit(ExitCode::BadConfig)
            }
        },
    };
    let server = config.as_deref().and_then(|text| {
        let parsed = openvpn::config::parse(text, &mut openvpn::config::InlineOnly).ok()?;
        serve::is_server_config(&parsed.config).then_some(parsed)
    });
    if let Some(parsed) = server {
        for warning in &parsed.warnings {
            log::warn!("config: {warning}");
        }
        if devices.nics.is_empty() {
            log::warn!("no virtio-net NIC found: server not started");
            return (config, None);
        }
        let net = ServerNet::new(
            devices.nics,
            args,
            &parsed.config,
            devices.all_interrupts_routed,
        );
        return (config, Some(NetRole::Server(net)));
    }
    if devices.nics.len() < 2 {
        log::warn!(
            "{} virtio-net NIC(s) found, two are needed: network not started",
            devices.nics.len()
        );
        return (config, None);
    }
    let now = Instant::from_micros(i64::try_from(clock::now_us()).unwrap_or(i64::MAX));
    let seed = KernelRng.next_u64();
    match Network::new(devices.nics, args, now, seed, devices.all_interrupts_routed) {
        Ok(network) => (config, Some(NetRole::Router(network))),
        Err(e) => {
            log::error!("{e}");
            log::error!("exit: {}", ExitCode::BadArguments);
            exit(ExitCode::BadArguments)
        }
    }
}
