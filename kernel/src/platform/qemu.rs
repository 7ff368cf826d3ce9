//! QEMU and other VMMs with virtio devices: COM1, the PIT-calibrated TSC and the CMOS RTC, virtio on PCI
//! and virtio-mmio, interrupts through MSI-X or the I/O APIC, the ACPI power button (polled, see
//! [`arm_power_button`]) and the ways out: ACPI S5 after the power button, isa-debug-exit otherwise.
//!
//! Discovery order: PCI functions in bus order (QEMU numbers `-device` entries in command-line order),
//! then `virtio_mmio.device=` entries in command-line order (`-M microvm,acpi=off` lists them in
//! `-device` order).

use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};

use boot::pvh::MemmapEntry;
use drivers::acpi::{self, PowerInfo, PM1_CNT_SCI_EN, PM1_CNT_SLP_EN, PM1_PWRBTN};
use drivers::cpu::{inw, outb, outw};

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

/// Leaves the VM with `code`. After the host's power button: ACPI S5 first (the VMM sees a normal poweroff),
/// and if the VM is still here after [`S5_WAIT_US`], on as for any other code: isa-debug-exit (QEMU exits
/// with `(code << 1) | 1`); without that device the write is ignored and the CPU halts with interrupts off.
pub fn exit(code: ExitCode) -> ! {
    if code == ExitCode::Clean && POWER_BUTTON_PRESSED.load(Ordering::Relaxed) {
        enter_s5();
    }
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

/// How long [`exit`] waits for the VMM to act on S5 before it falls back to isa-debug-exit: the VMM handles
/// the sleep request asynchronously (QEMU in its main loop), so the CPU keeps running for a while.
const S5_WAIT_US: u64 = 2_000_000;

/// PM1a event block (0: the power button is not armed), PM1a control block, and the PM1a_CNT bits of S5.
static PM1A_EVT: AtomicU16 = AtomicU16::new(0);
static PM1A_CNT: AtomicU16 = AtomicU16::new(0);
static S5_VALUE: AtomicU16 = AtomicU16::new(0);
/// Set when [`shutdown_request`] saw the power button: the clean exit that follows goes through S5.
static POWER_BUTTON_PRESSED: AtomicBool = AtomicBool::new(false);
/// When [`shutdown_request`] reads the status register next (monotonic microseconds).
static NEXT_POLL_US: AtomicU64 = AtomicU64::new(0);
/// How often the power button is polled: one port read (a VM exit under KVM) per this much time, not per
/// main-loop pass. The idle halt is at most `idle::MAX_IDLE_US` (100 ms), so a press is seen within that.
const POLL_INTERVAL_US: u64 = 10_000;
/// How long bring-up waits for SCI_EN after writing ACPI_ENABLE to SMI_CMD.
const ACPI_ENABLE_WAIT_US: u64 = 100_000;

/// Writes SLP_TYPa(S5) | SLP_EN to PM1a_CNT and waits up to [`S5_WAIT_US`] for the VMM to power off.
fn enter_s5() {
    let cnt = PM1A_CNT.load(Ordering::Relaxed);
    if cnt == 0 {
        return;
    }
    info!("acpi: powering off (S5)");
    // SAFETY: PM1a_CNT is the FADT's, owned by this kernel since `arm_power_button`; entering S5 is the
    // intent (the VM ends).
    unsafe {
        let keep = inw(cnt) & !(0x7 << 10 | PM1_CNT_SLP_EN);
        outw(cnt, keep | S5_VALUE.load(Ordering::Relaxed));
    }
    let until = clock::now_us() + S5_WAIT_US;
    while clock::now_us() < until {
        core::hint::spin_loop();
    }
    warn!(
        "acpi: still running {} ms after S5: isa-debug-exit",
        S5_WAIT_US / 1000
    );
}

/// Physical memory for the ACPI parser: the identity map, restricted to the low MiB's BIOS areas and to
/// the memory map's RAM, ACPI and reserved entries below the PCI hole (never device memory), and never
/// the stack guard page.
struct AcpiMemory<'a> {
    memmap: &'a [MemmapEntry],
}

/// Where the PCI hole (MMCONFIG, BARs, the APICs, the BIOS flash) starts at the lowest on QEMU's machines.
const PCI_HOLE: u64 = 0xb000_0000;

impl acpi::PhysMem for AcpiMemory<'_> {
    fn read(&self, paddr: u64, len: usize) -> Option<&[u8]> {
        let end = paddr.checked_add(u64::try_from(len).ok()?)?;
        let within = |start: u64, stop: u64| paddr >= start && end <= stop;
        let low = within(0x400, 0xa_0000) || within(acpi::BIOS_AREA.0, acpi::BIOS_AREA.1);
        let listed = self
            .memmap
            .iter()
            .any(|e| matches!(e.kind, 1..=4) && e.end() <= PCI_HOLE && within(e.addr, e.end()));
        let (guard_start, guard_end) = boot::paging::stack_guard();
        if !(low || listed) || (paddr < guard_end && end > guard_start) || len == 0 {
            return None;
        }
        // SAFETY: the range is below 4 GiB (identity-mapped by the boot page tables), clear of the
        // unmapped stack guard page, and in memory the firmware described as RAM, ACPI tables or BIOS
        // areas: reading it has no side effects. Nothing writes it while the slice lives (bring-up, one
        // thread, before the heap is carved out).
        Some(unsafe { core::slice::from_raw_parts(paddr as usize as *const u8, len) })
    }
}

/// Finds the FADT and `_S5_` (through the PVH start info's RSDP, else the EBDA and BIOS area), puts the
/// machine in ACPI mode if it is not, and enables the power button's PM1 event (no SCI is routed: the
/// main loop polls the status bit through [`shutdown_request`]). Logs one line either way; never fails.
pub fn arm_power_button(rsdp_hint: u64, memmap: &[MemmapEntry]) {
    let started = clock::now_us();
    let info = match acpi::find_power_info(&AcpiMemory { memmap }, rsdp_hint) {
        Ok(info) => info,
        Err(e) => {
            info!(
                "acpi: power button not armed: {e} ({} us)",
                clock::now_us() - started
            );
            return;
        }
    };
    let found_us = clock::now_us() - started;
    let source = if rsdp_hint != 0 && info.rsdp == rsdp_hint {
        "PVH start info"
    } else {
        "BIOS area"
    };
    let sci = enable_acpi_mode(&info);
    let enable = info.pm1a_enable();
    // SAFETY: the FADT's PM1a event block: status bits are write-1-to-clear; the enable register is
    // read-modify-written to add the power button. Nothing else owns these ports.
    unsafe {
        outw(info.pm1a_evt, PM1_PWRBTN);
        outw(enable, inw(enable) | PM1_PWRBTN);
    }
    PM1A_CNT.store(info.pm1a_cnt, Ordering::Relaxed);
    S5_VALUE.store(info.s5_value(), Ordering::Relaxed);
    PM1A_EVT.store(info.pm1a_evt, Ordering::Relaxed);
    info!(
        "acpi: power button armed (PM1a_EVT {:#x}, PM1a_CNT {:#x}, S5 SLP_TYP {}; RSDP {:#x} from the {source}, tables read in {found_us} us{sci}; {} us in all)",
        info.pm1a_evt,
        info.pm1a_cnt,
        info.s5_slp_typ,
        info.rsdp,
        clock::now_us() - started
    );
}

/// Enters ACPI mode (SCI_EN) through SMI_CMD when the firmware left the machine in legacy mode; what
/// happened, for the log line.
fn enable_acpi_mode(info: &PowerInfo) -> &'static str {
    // SAFETY: PM1a_CNT and SMI_CMD are the FADT's; writing ACPI_ENABLE to SMI_CMD is how the spec has the
    // OS take the machine into ACPI mode.
    let sci_en = || unsafe { inw(info.pm1a_cnt) } & PM1_CNT_SCI_EN != 0;
    if sci_en() {
        return "";
    }
    if info.smi_cmd == 0 || info.acpi_enable == 0 {
        return ", SCI_EN off and no SMI_CMD";
    }
    // SAFETY: as above.
    unsafe { outb(info.smi_cmd, info.acpi_enable) };
    let until = clock::now_us() + ACPI_ENABLE_WAIT_US;
    while clock::now_us() < until {
        if sci_en() {
            return ", ACPI mode entered";
        }
        core::hint::spin_loop();
    }
    ", SCI_EN still off after ACPI_ENABLE"
}

/// The power button, polled (at most every [`POLL_INTERVAL_US`]): a press (PWRBTN_STS, cleared here) is a
/// Poweroff request.
pub fn shutdown_request() -> Option<super::xen::ShutdownRequest> {
    let evt = PM1A_EVT.load(Ordering::Relaxed);
    if evt == 0 {
        return None;
    }
    let now = clock::now_us();
    if now < NEXT_POLL_US.load(Ordering::Relaxed) {
        return None;
    }
    NEXT_POLL_US.store(now + POLL_INTERVAL_US, Ordering::Relaxed);
    // SAFETY: the PM1a status register armed by `arm_power_button`; write-1-to-clear.
    let pressed = unsafe { inw(evt) } & PM1_PWRBTN != 0;
    if !pressed {
        return None;
    }
    // SAFETY: as above.
    unsafe { outw(evt, PM1_PWRBTN) };
    POWER_BUTTON_PRESSED.store(true, Ordering::Relaxed);
    info!("acpi: power button pressed");
    Some(super::xen::ShutdownRequest::Poweroff)
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
