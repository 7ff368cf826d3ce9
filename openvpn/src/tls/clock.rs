//! The wall clock rustls sees: a shared cell the engine updates from the caller's time (rustls' no_std
//! builds need a `TimeProvider`; certificate validity is checked against it).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;

/// Unix time in seconds, set by the engine, read by rustls. Cloning shares the cell.
#[derive(Debug, Clone, Default)]
pub struct WallClock(Arc<AtomicU64>);

impl WallClock {
    /// A clock reading `unix_secs`.
    pub fn new(unix_secs: u64) -> Self {
        WallClock(Arc::new(AtomicU64::new(unix_secs)))
    }

    /// Sets the current Unix time in seconds.
    pub fn set(&self, unix_secs: u64) {
        self.0.store(unix_secs, Ordering::Relaxed);
    }

    /// The current Unix time in seconds as last set.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TimeProvider for WallClock {
    fn current_time(&self) -> Option<UnixTime> {
        match self.get() {
            // 0 = the caller never told us the time: certificate validity cannot be checked.
            0 => None,
            secs => Some(UnixTime::since_unix_epoch(Duration::from_secs(secs))),
        }
    }
}
