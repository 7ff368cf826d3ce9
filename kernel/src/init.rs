//! The machine set-up steps `kernel_main` runs once, in order, each reporting itself on the console.
//!
//! Layer: kernel glue. A missing requirement ends the boot through `fail` with the documented exit code
//! (`oxvpn_kernel::exit`): the image never runs half-configured.

use core::fmt::Write;

use boot::pvh::StartInfo;
use drivers::clock;
use drivers::cpu::Features;
use drivers::rng::HardwareEntropy;
use log::info;
use oxvpn_kernel::args::BootArgs;
use oxvpn_kernel::exit::ExitCode;

use crate::{entropy, fail, heap};

/// Detects CPU features and refuses CPUs without the ones the image is compiled for.
pub fn cpu() -> Features {
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
    StackString {
        buf: [0; 128],
        len: 0,
    }
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

/// Prints the memory map, finishes the page tables and starts the heap.
pub fn memory(start_info: &StartInfo, features: &Features) {
    let memmap = crate::platform::memmap(start_info);
    info!("memory map ({} entries):", memmap.len());
    // qboot's map ends with an empty entry; it is counted above but not worth a line.
    for entry in memmap.iter().filter(|e| e.size > 0) {
        info!("  {entry}");
    }
    boot::paging::finish(memmap, features.pages_1g, features.mtrr);
    let (image_start, image_end) = boot::image_range();
    let limit = boot::paging::mapped_limit(features.pages_1g);
    let Some(region) = heap::choose(memmap, image_end, limit, &start_info.loader_ranges()) else {
        fail(
            ExitCode::Unsupported,
            format_args!("no RAM above the image for a heap"),
        );
    };
    let size = region.end - region.start;
    if size < heap::MIN_HEAP {
        fail(
            ExitCode::Unsupported,
            format_args!(
                "heap of {} KiB is below the {} MiB minimum: give the VM more memory (-m)",
                size >> 10,
                heap::MIN_HEAP >> 20
            ),
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

/// Logs and leaves with [`ExitCode::BadConfig`].
pub fn bad_config(what: core::fmt::Arguments<'_>) -> ! {
    log::error!("config: {what}");
    log::error!("exit: {}", ExitCode::BadConfig);
    crate::exit(ExitCode::BadConfig)
}

/// The Unix time certificates are checked against, or leave with [`ExitCode::Unsupported`]: a peer's
/// certificate dates are never checked against a clock nobody set (rustls would see 1970 or no time).
pub fn wall_clock_for_certificates() -> u64 {
    clock::unix_time_now().unwrap_or_else(|| {
        fail(
            ExitCode::Unsupported,
            format_args!(
                "no wall clock (no CMOS RTC, kvmclock or Xen wall clock): certificate dates cannot be \
                 checked; give the time with --wall-clock=UNIX (e.g. --wall-clock=$(date +%s))"
            ),
        )
    })
}

/// Calibrates the TSC (returns its rate) and sets the wall clock, the platform's way; the boot arguments
/// `--tsc-khz` and `--wall-clock` win over what the platform finds.
pub fn clocks(features: &Features, args: &BootArgs) -> u64 {
    let (hz, source) = match crate::platform::clocks(features, args.tsc_khz, args.wall_clock) {
        Ok(f) => f,
        Err(e) => fail(ExitCode::Unsupported, format_args!("no usable clock: {e}")),
    };
    info!(
        "clock: TSC {}.{:03} MHz from {}{}, monotonic now {} us",
        hz / 1_000_000,
        (hz / 1000) % 1000,
        source,
        if features.invariant_tsc {
            " (invariant)"
        } else {
            ""
        },
        clock::now_us()
    );
    hz
}

/// Seeds the CSPRNG from hardware; refuses to go on without a source.
pub fn entropy(features: &Features) {
    let source = match HardwareEntropy::probe(features) {
        Ok(s) => s,
        Err(e) => fail(
            ExitCode::Unsupported,
            format_args!("{e}; refusing to run with predictable keys"),
        ),
    };
    if let Err(e) = entropy::init(source) {
        fail(
            ExitCode::Unsupported,
            format_args!("{e}; refusing to run with predictable keys"),
        );
    }
    info!("entropy: {source} seeds a ChaCha20 CSPRNG (reseeded every 1 MiB and every 5 min)");
}

/// Shows the ring build path works in the image: a SHA-256 and ring's system RNG (getrandom -> our CSPRNG).
pub fn prove_crypto() {
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
        Err(_) => fail(
            ExitCode::Unsupported,
            format_args!("ring SystemRandom failed"),
        ),
    }
}

/// Starts the LAPIC timer that wakes `hlt` at deadlines.
pub fn timer(tsc_hz: u64) {
    let timer_hz = boot::apic::init(tsc_hz);
    info!(
        "timer: LAPIC one-shot at {} MHz, wakes hlt for deadlines",
        timer_hz / 1_000_000
    );
}
