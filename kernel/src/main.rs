//! oxvpn: the unikernel image. Boots from PVH, brings up the machine, then runs the main loop.
//!
//! Layer: the top. `init` does each step once and reports it on the console; any missing requirement ends
//! the boot with a documented exit code (`oxvpn_kernel::exit`). [`MainLoop::poll`] is where devices, the
//! OpenVPN engine and the router get polled with `now`; it returns the next deadline, and `idle::wait_until`
//! halts until then (or until a device interrupt).
#![no_std]
#![no_main]

extern crate alloc;

mod devices;
mod entropy;
mod fatal;
mod heap;
mod idle;
mod logger;
mod net;

use core::fmt::Write;

use boot::pvh::StartInfo;
use drivers::clock;
use drivers::cpu::Features;
use drivers::rng::HardwareEntropy;
use drivers::serial::Com1;
use log::{error, info, warn};
use oxvpn_kernel::args::{self, BootArgs};
use oxvpn_kernel::exit::{exit, ExitCode};

boot::entry_point!(kernel_main);

/// Reseed the CSPRNG from hardware this often.
const RESEED_INTERVAL_US: u64 = 300 * 1_000_000;

fn fail(code: ExitCode, what: core::fmt::Arguments<'_>) -> ! {
    error!("{what}");
    error!("exit: {code}");
    exit(code)
}

fn kernel_main(start_info_paddr: u64) -> ! {
    clock::start();
    Com1::init();
    boot::interrupts::set_exception_hook(fatal::on_exception);
    logger::init(oxvpn_kernel::args::Verb::DEFAULT.level_filter());
    info!("oxvpn {} booting", env!("CARGO_PKG_VERSION"));

    // SAFETY: the trampoline passes ebx from the PVH loader unchanged.
    let start_info = match unsafe { StartInfo::from_paddr(start_info_paddr) } {
        Ok(info) => info,
        Err(e) => fail(ExitCode::Unsupported, format_args!("not started through PVH: {e}")),
    };
    let cmdline = match start_info.cmdline() {
        Ok(c) => c,
        Err(e) => fail(ExitCode::BadArguments, format_args!("{e}")),
    };
    let args = match args::parse(cmdline) {
        Ok(a) => a,
        Err(e) => fail(ExitCode::BadArguments, format_args!("{e}")),
    };
    if args.help {
        let _ = Com1.write_str(args::HELP);
        info!("exit: {}", ExitCode::Clean);
        exit(ExitCode::Clean);
    }
    log::set_max_level(args.verb.level_filter());
    info!("boot arguments: {}", if cmdline.trim().is_empty() { "(none)" } else { cmdline.trim() });

    let features = init_cpu();
    let tsc_hz = init_clocks(&features);
    init_memory(start_info, &features);
    init_entropy(&features);
    let timer_hz = boot::apic::init(tsc_hz);
    info!("timer: LAPIC one-shot at {} MHz, wakes hlt for deadlines", timer_hz / 1_000_000);
    prove_crypto();

    if args.test_panic {
        panic!("--test-panic given");
    }
    if args.test_stack_overflow {
        let (guard, _) = boot::paging::stack_guard();
        info!("--test-stack-overflow: recursing into the guard page at {guard:#x}");
        let depth = recurse(0);
        fail(ExitCode::Panic, format_args!("--test-stack-overflow: recursion returned at depth {depth}"));
    }
    if args.test_fault {
        info!("--test-fault: reading unmapped address {:#x}", TEST_FAULT_ADDR);
        // SAFETY: deliberately not safe: the read must fault (this address is not mapped) to show the
        // exception handler at work. It never returns.
        let v = unsafe { core::ptr::read_volatile(TEST_FAULT_ADDR as *const u64) };
        fail(ExitCode::Panic, format_args!("--test-fault: read of an unmapped address returned {v:#x}"));
    }

    let (_config, network) = devices::start(cmdline, &args);
    MainLoop::new(args, network).run()
}

/// Unbounded recursion with a frame the optimiser cannot remove, for `--test-stack-overflow`.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    if depth == core::hint::black_box(u64::MAX) {
        return depth;
    }
    core::hint::black_box(recurse(depth + 1)) + frame[0]
}

/// Not mapped: beyond the identity map (512 GiB at most) and canonical, so the CPU raises #PF (not #GP).
const TEST_FAULT_ADDR: u64 = 0x0000_7000_0000_0000;

fn init_cpu() -> Features {
    let features = Features::detect();
    info!("cpu: {features}");
    let mut missing = features.missing_required().peekable();
    if missing.peek().is_some() {
        let mut list = heapless_list();
        for name in missing {
            let _ = write!(list, " {name}");
        }
        fail(
            ExitCode::Unsupported,
            format_args!(
                "cpu lacks features the image is built for:{} (use -cpu max under TCG, -cpu host under KVM)",
                list.as_str()
            ),
        );
    }
    features
}

/// A small stack string for messages written before the heap exists.
fn heapless_list() -> StackString {
    StackString { buf: [0; 128], len: 0 }
}

struct StackString {
    buf: [u8; 128],
    len: usize,
}

impl StackString {
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl Write for StackString {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn init_memory(start_info: &StartInfo, features: &Features) {
    let memmap = start_info.memmap();
    info!("memory map ({} entries):", memmap.len());
    for entry in memmap {
        info!("  {entry}");
    }
    boot::paging::finish(memmap, features.pages_1g, features.mtrr);
    let (image_start, image_end) = boot::image_range();
    let limit = boot::paging::mapped_limit(features.pages_1g);
    let Some(region) = heap::choose(memmap, image_end, limit, &start_info.loader_ranges()) else {
        fail(ExitCode::Unsupported, format_args!("no RAM above the image for a heap"));
    };
    let size = region.end - region.start;
    if size < heap::MIN_HEAP {
        fail(
            ExitCode::Unsupported,
            format_args!("heap of {} KiB is below the {} MiB minimum: give the VM more memory (-m)", size >> 10, heap::MIN_HEAP >> 20),
        );
    }
    heap::init(region);
    info!(
        "memory: image {:#x}-{:#x} ({} KiB), heap {:#x}-{:#x} ({} MiB), identity map to {} GiB",
        image_start,
        image_end,
        (image_end - image_start) >> 10,
        region.start,
        region.end,
        size >> 20,
        limit >> 30
    );
}

fn init_clocks(features: &Features) -> u64 {
    let (hz, source) = match clock::tsc_frequency(features) {
        Ok(f) => f,
        Err(e) => fail(ExitCode::Unsupported, format_args!("no usable clock: {e}")),
    };
    clock::set_frequency(hz);
    info!(
        "clock: TSC {}.{:03} MHz from {}{}, monotonic now {} us",
        hz / 1_000_000,
        (hz / 1000) % 1000,
        source,
        if features.invariant_tsc { " (invariant)" } else { "" },
        clock::now_us()
    );
    match clock::read_rtc() {
        Ok(t) => {
            clock::set_wall_clock(t.unix_seconds());
            info!("wall clock: {t} (CMOS RTC, unix {})", t.unix_seconds());
        }
        Err(e) => warn!("wall clock unknown: {e}; certificate dates cannot be checked"),
    }
    hz
}

fn init_entropy(features: &Features) {
    let source = match HardwareEntropy::probe(features) {
        Ok(s) => s,
        Err(e) => fail(ExitCode::Unsupported, format_args!("{e}; refusing to run with predictable keys")),
    };
    if let Err(e) = entropy::init(source) {
        fail(ExitCode::Unsupported, format_args!("{e}; refusing to run with predictable keys"));
    }
    info!("entropy: {source} seeds a ChaCha20 CSPRNG (reseeded every 1 MiB and every 5 min)");
}

/// Shows the ring build path works in the image: a SHA-256 and ring's system RNG (getrandom -> our CSPRNG).
fn prove_crypto() {
    use ring::rand::SecureRandom;
    let digest = ring::digest::digest(&ring::digest::SHA256, b"oxvpn");
    let mut hex = heapless_list();
    for b in digest.as_ref() {
        let _ = write!(hex, "{b:02x}");
    }
    info!("crypto: ring SHA-256(\"oxvpn\") = {}", hex.as_str());
    let mut buf = [0u8; 16];
    match ring::rand::SystemRandom::new().fill(&mut buf) {
        Ok(()) => info!("crypto: ring SystemRandom served by the kernel CSPRNG"),
        Err(_) => fail(ExitCode::Unsupported, format_args!("ring SystemRandom failed")),
    }
}

/// What one pass of the main loop asks for next.
enum Next {
    /// Sleep until this monotonic time (microseconds) or the next interrupt.
    WakeAt(u64),
    /// Leave the VM.
    Shutdown(ExitCode),
}

/// The main loop's state. Devices, the OpenVPN engine and the router join here as fields and get polled
/// in [`MainLoop::poll`]; each reports its own next deadline and the loop sleeps until the earliest.
struct MainLoop {
    #[allow(dead_code)] // read by the device and engine code that joins the loop
    args: BootArgs,
    next_reseed: u64,
    /// Idle-timer self-test: when it was armed and for when (until devices give the loop real work).
    idle_probe: Option<(u64, u64)>,
    /// Both NICs and their interfaces (`devices::start`), when there are two.
    network: Option<net::Network>,
}

impl MainLoop {
    fn new(args: BootArgs, network: Option<net::Network>) -> MainLoop {
        let now = clock::now_us();
        MainLoop { args, next_reseed: now + RESEED_INTERVAL_US, idle_probe: Some((now, now + 10_000)), network }
    }

    fn run(mut self) -> ! {
        loop {
            let now = clock::now_us();
            match self.poll(now) {
                Next::WakeAt(deadline) => idle::wait_until(deadline),
                Next::Shutdown(code) => {
                    let (used, free) = heap::usage();
                    info!("heap: {} KiB used, {} MiB free", used >> 10, free >> 20);
                    info!("exit: {code}");
                    exit(code)
                }
            }
        }
    }

    /// One pass: do everything that is due at `now`, return what comes next.
    fn poll(&mut self, now: u64) -> Next {
        let mut deadline = now + idle::MAX_IDLE_US;

        if now >= self.next_reseed {
            if let Err(e) = entropy::reseed() {
                warn!("entropy: reseed failed: {e}");
            }
            self.next_reseed = now + RESEED_INTERVAL_US;
        }
        deadline = deadline.min(self.next_reseed);

        if let Some(network) = &mut self.network {
            if let Some(at) = network.run(now) {
                deadline = deadline.min(at);
            }
            return Next::WakeAt(deadline);
        }

        // Until devices join the loop there is nothing to serve: show one timed halt, then shut down.
        if let Some((armed, due)) = self.idle_probe {
            if now < due {
                return Next::WakeAt(deadline.min(due));
            }
            info!("idle: woke from hlt {} us after arming a {} us deadline", now - armed, due - armed);
            self.idle_probe = None;
            info!("nothing to do yet (no devices): shutting down");
            return Next::Shutdown(ExitCode::Clean);
        }
        Next::WakeAt(deadline)
    }
}
