//! Randomness: hardware entropy (RDSEED, else RDRAND) feeding a ChaCha20 CSPRNG.
//!
//! Layer: entropy device plus a pure generator. [`Csprng`] is the `rand_core::RngCore + CryptoRng` the
//! kernel passes to the engine. It never runs unseeded: [`Csprng::new`] fails without an entropy source,
//! and the kernel then refuses to boot (predictable keys are worse than no VPN).
//!
//! Reseeding: after [`RESEED_BYTES`] of output, and whenever the owner calls [`Csprng::reseed`] (the kernel
//! does every few minutes). A reseed hashes nothing: the new key is 32 fresh hardware bytes XORed with 32
//! bytes of the current stream, so a weak hardware read can never make the state worse than it was.

use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use crate::cpu::{rdrand64, rdseed64, Features};

/// Output after which the generator reseeds itself from hardware.
pub const RESEED_BYTES: u64 = 1 << 20;

/// A source of seed material.
pub trait EntropySource {
    /// Fills `seed` with fresh entropy.
    fn fill_seed(&mut self, seed: &mut [u8; 32]) -> Result<(), EntropyError>;
}

/// Why no seed could be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyError {
    /// The CPU has neither RDSEED nor RDRAND.
    NoHardwareSource,
    /// The instruction kept reporting "not ready" (CF=0) past the retry budget.
    Exhausted,
}

impl fmt::Display for EntropyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntropyError::NoHardwareSource => {
                f.write_str("no hardware entropy source: the CPU has neither RDSEED nor RDRAND")
            }
            EntropyError::Exhausted => {
                f.write_str("hardware entropy source kept failing (RDSEED/RDRAND CF=0)")
            }
        }
    }
}

/// The CPU instruction used for seeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwareEntropy {
    /// RDSEED: output of the conditioned entropy source itself (preferred for seeding).
    Rdseed,
    /// RDRAND: output of the CPU's DRBG, reseeded by the same source.
    Rdrand,
}

impl HardwareEntropy {
    /// The best instruction the CPU offers.
    pub fn probe(features: &Features) -> Result<HardwareEntropy, EntropyError> {
        if features.rdseed {
            Ok(HardwareEntropy::Rdseed)
        } else if features.rdrand {
            Ok(HardwareEntropy::Rdrand)
        } else {
            Err(EntropyError::NoHardwareSource)
        }
    }
}

impl fmt::Display for HardwareEntropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HardwareEntropy::Rdseed => "RDSEED",
            HardwareEntropy::Rdrand => "RDRAND",
        })
    }
}

impl EntropySource for HardwareEntropy {
    fn fill_seed(&mut self, seed: &mut [u8; 32]) -> Result<(), EntropyError> {
        for chunk in seed.chunks_exact_mut(8) {
            // Intel recommends up to 10 RDRAND retries; RDSEED may need many more under contention.
            let mut word = None;
            for _ in 0..1024 {
                // SAFETY: `probe` only yields the variants whose instruction CPUID reported.
                word = unsafe {
                    match self {
                        HardwareEntropy::Rdseed => rdseed64(),
                        HardwareEntropy::Rdrand => rdrand64(),
                    }
                };
                if word.is_some() {
                    break;
                }
                core::hint::spin_loop();
            }
            chunk.copy_from_slice(&word.ok_or(EntropyError::Exhausted)?.to_le_bytes());
        }
        Ok(())
    }
}

/// ChaCha20 CSPRNG seeded and periodically reseeded from an [`EntropySource`].
pub struct Csprng<S: EntropySource = HardwareEntropy> {
    source: S,
    rng: ChaCha20Rng,
    since_reseed: u64,
    reseeds: u64,
    failed_reseeds: u64,
}

impl<S: EntropySource> Csprng<S> {
    /// Seeds a generator; fails if the source cannot produce a seed.
    pub fn new(mut source: S) -> Result<Csprng<S>, EntropyError> {
        let mut seed = [0u8; 32];
        source.fill_seed(&mut seed)?;
        Ok(Csprng {
            source,
            rng: ChaCha20Rng::from_seed(seed),
            since_reseed: 0,
            reseeds: 0,
            failed_reseeds: 0,
        })
    }

    /// Mixes 32 fresh bytes from the source into the key. On failure the generator keeps its (still secure)
    /// state and counts the failure.
    pub fn reseed(&mut self) -> Result<(), EntropyError> {
        let mut fresh = [0u8; 32];
        let result = self.source.fill_seed(&mut fresh);
        if result.is_err() {
            self.failed_reseeds += 1;
        }
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        for (s, f) in seed.iter_mut().zip(fresh.iter()) {
            *s ^= f;
        }
        self.rng = ChaCha20Rng::from_seed(seed);
        self.since_reseed = 0;
        self.reseeds += 1;
        result
    }

    /// Number of reseeds so far (including failed ones) and how many could not read the source.
    pub fn reseed_counts(&self) -> (u64, u64) {
        (self.reseeds, self.failed_reseeds)
    }

    fn account(&mut self, bytes: usize) {
        self.since_reseed = self.since_reseed.saturating_add(bytes as u64);
        if self.since_reseed >= RESEED_BYTES {
            // A failed read leaves the generator rekeyed from its own stream; it stays unpredictable.
            let _ = self.reseed();
        }
    }
}

impl<S: EntropySource> RngCore for Csprng<S> {
    fn next_u32(&mut self) -> u32 {
        let v = self.rng.next_u32();
        self.account(4);
        v
    }

    fn next_u64(&mut self) -> u64 {
        let v = self.rng.next_u64();
        self.account(8);
        v
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest);
        self.account(dest.len());
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl<S: EntropySource> CryptoRng for Csprng<S> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic source: a counter, or failing after `budget` seeds.
    struct Counter {
        next: u8,
        budget: u32,
    }

    impl EntropySource for Counter {
        fn fill_seed(&mut self, seed: &mut [u8; 32]) -> Result<(), EntropyError> {
            if self.budget == 0 {
                return Err(EntropyError::Exhausted);
            }
            self.budget -= 1;
            seed.fill(self.next);
            self.next = self.next.wrapping_add(1);
            Ok(())
        }
    }

    #[test]
    fn refuses_without_entropy() {
        assert_eq!(
            Csprng::new(Counter { next: 0, budget: 0 }).err(),
            Some(EntropyError::Exhausted)
        );
        let none = Features::default();
        assert_eq!(
            HardwareEntropy::probe(&none),
            Err(EntropyError::NoHardwareSource)
        );
        let both = Features {
            rdseed: true,
            rdrand: true,
            ..Features::default()
        };
        assert_eq!(HardwareEntropy::probe(&both), Ok(HardwareEntropy::Rdseed));
    }

    #[test]
    fn reseeds_after_budget() {
        let mut rng = Csprng::new(Counter {
            next: 1,
            budget: 10,
        })
        .unwrap();
        let mut buf = [0u8; 4096];
        for _ in 0..(RESEED_BYTES / 4096) - 1 {
            rng.fill_bytes(&mut buf);
        }
        assert_eq!(rng.reseed_counts(), (0, 0));
        rng.fill_bytes(&mut buf);
        assert_eq!(rng.reseed_counts(), (1, 0));
    }

    #[test]
    fn reseed_changes_stream_and_survives_failure() {
        let mut a = Csprng::new(Counter { next: 7, budget: 1 }).unwrap();
        let mut b = Csprng::new(Counter { next: 7, budget: 1 }).unwrap();
        assert_eq!(a.next_u64(), b.next_u64());
        // Source exhausted: reseed reports it but still rekeys from the stream, deterministically.
        assert_eq!(a.reseed(), Err(EntropyError::Exhausted));
        assert_eq!(a.reseed_counts(), (1, 1));
        let x = a.next_u64();
        assert_ne!(x, b.next_u64());
    }
}
