//! The kernel's one CSPRNG and the handles other code uses to reach it.
//!
//! Layer: kernel glue around `drivers::rng::Csprng`. [`KernelRng`] is a zero-sized
//! `rand_core::RngCore + CryptoRng` handle the engine and router receive; ring (through rustls) reaches the
//! same generator via getrandom's custom backend registered here. The generator lives in a cell that is only
//! touched from the main loop (single core, interrupt handlers never use it), which is what makes the
//! `Sync` impl below sound.

use core::cell::RefCell;

use drivers::rng::{Csprng, EntropyError, HardwareEntropy};
use rand_core::{CryptoRng, RngCore};

struct MainLoopOnly(RefCell<Option<Csprng>>);

// SAFETY: single-core image; only main-loop code (never interrupt handlers) touches the generator.
unsafe impl Sync for MainLoopOnly {}

static RNG: MainLoopOnly = MainLoopOnly(RefCell::new(None));

/// Seeds the generator from `source`. Until this succeeds, every use of the generator panics, so nothing
/// can run with predictable randomness.
pub fn init(source: HardwareEntropy) -> Result<(), EntropyError> {
    let rng = Csprng::new(source)?;
    *RNG.0.borrow_mut() = Some(rng);
    Ok(())
}

/// Mixes fresh hardware entropy into the generator (the main loop calls it periodically).
pub fn reseed() -> Result<(), EntropyError> {
    with(|rng| rng.reseed())
}

fn with<R>(f: impl FnOnce(&mut Csprng) -> R) -> R {
    let mut cell = RNG.0.borrow_mut();
    match cell.as_mut() {
        Some(rng) => f(rng),
        None => panic!("randomness requested before the CSPRNG was seeded"),
    }
}

/// Handle to the kernel CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelRng;

impl RngCore for KernelRng {
    fn next_u32(&mut self) -> u32 {
        with(|r| r.next_u32())
    }

    fn next_u64(&mut self) -> u64 {
        with(|r| r.next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        with(|r| r.fill_bytes(dest))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for KernelRng {}

fn getrandom_from_csprng(dest: &mut [u8]) -> Result<(), getrandom::Error> {
    KernelRng.fill_bytes(dest);
    Ok(())
}

getrandom::register_custom_getrandom!(getrandom_from_csprng);
