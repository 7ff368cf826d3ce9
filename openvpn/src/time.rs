//! Time as the engine sees it: a monotonic instant supplied by the caller.
//!
//! Layer: shared vocabulary type. Nothing in this crate reads a clock; every `now` is an argument of this
//! type, so timers, replay windows and retransmissions are testable with plain numbers.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the caller's monotonic clock, in milliseconds since an arbitrary origin (e.g. boot).
///
/// Arithmetic saturates instead of overflowing, so a hostile or buggy caller cannot make the engine panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    millis: u64,
}

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant { millis: 0 };

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant { millis }
    }

    /// An instant `micros` microseconds after the origin (truncated to the millisecond), for callers
    /// whose clock counts microseconds (the kernel's `clock::now_us`, smoltcp's `Instant`).
    pub const fn from_micros(micros: u64) -> Instant {
        Instant {
            millis: micros / 1000,
        }
    }

    /// An instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Whole seconds since the origin.
    pub const fn as_secs(self) -> u64 {
        self.millis / 1000
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(earlier.millis))
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_add(duration_millis(rhs)),
        }
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_sub(duration_millis(rhs)),
        }
    }
}

impl core::fmt::Display for Instant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:03}s", self.millis / 1000, self.millis % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_secs(2);
        assert_eq!(t.as_millis(), 2000);
        assert_eq!(Instant::from_micros(2_000_999), t);
        assert_eq!((t + Duration::from_millis(1500)).as_millis(), 3500);
        assert_eq!(t - Duration::from_secs(5), Instant::ZERO);
        assert_eq!(
            Instant::from_millis(u64::MAX) + Duration::from_secs(1),
            Instant::from_millis(u64::MAX)
        );
        assert_eq!(Instant::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_duration_since(Instant::ZERO),
            Duration::from_secs(2)
        );
    }
}
