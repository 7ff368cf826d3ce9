//! Sliding-window replay protection, shared by the data channel (short packet-ids, §6.4) and the
//! tls-auth / tls-crypt control channel (long form `time:counter`, §2.4).
//!
//! Semantics (OpenVPN's `--replay-window n t`, default 64 packets / 15 s):
//! - a packet-id is identified by `(epoch, counter)`; the data channel always uses epoch 0, the control
//!   channel uses the sender's Unix time. A later epoch starts a new sequence, an earlier one is rejected;
//! - counter 0 is never valid;
//! - a counter above the highest seen is accepted; one up to `n - 1` below is accepted once;
//! - a late counter is also rejected once any packet with a *higher* counter was received more than `t`
//!   ago (reordering older than the time window).
//!
//! State is allocated once at construction; checks and updates never allocate.

use crate::time::Instant;
use alloc::boxed::Box;
use alloc::vec;
use core::fmt;
use core::time::Duration;

/// Default window size in packets.
pub const DEFAULT_WINDOW: u32 = 64;
/// Default time window.
pub const DEFAULT_TIME_WINDOW: Duration = Duration::from_secs(15);
/// Largest window size OpenVPN accepts (`--replay-window` 0..65536).
pub const MAX_WINDOW: u32 = 65536;

/// Why a packet-id was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Counter 0, which no sender ever uses.
    ZeroId,
    /// This packet-id was already received.
    Duplicate,
    /// The counter is further behind the highest seen than the window size.
    OutsideWindow,
    /// The counter is inside the window but a newer packet arrived more than the time window ago.
    Expired,
    /// The epoch (long-form time) is older than the current sequence.
    OldEpoch,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayError::ZeroId => "packet-id 0",
            ReplayError::Duplicate => "replayed packet-id",
            ReplayError::OutsideWindow => "packet-id older than the replay window",
            ReplayError::Expired => "packet-id arrived after the replay time window",
            ReplayError::OldEpoch => "packet-id time older than the current sequence",
        })
    }
}

/// A receive-side replay window for one key (data) or one session (control).
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    size: u32,
    time_window_ms: u64,
    started: bool,
    epoch: u32,
    highest: u32,
    /// `slots[counter % size]` = local receive time in ms + 1 of a counter within the window, 0 if unseen.
    slots: Box<[u64]>,
    rejected: u64,
}

impl ReplayWindow {
    /// A window of `size` packets (clamped to 65536) and a reordering time limit of `time_window`.
    pub fn new(size: u32, time_window: Duration) -> ReplayWindow {
        let size = size.min(MAX_WINDOW);
        let slots = vec![0u64; usize::try_from(size).unwrap_or(0)].into_boxed_slice();
        ReplayWindow {
            size,
            time_window_ms: u64::try_from(time_window.as_millis()).unwrap_or(u64::MAX),
            started: false,
            epoch: 0,
            highest: 0,
            slots,
            rejected: 0,
        }
    }

    /// Number of packet-ids rejected by [`update`](Self::update) so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The highest counter accepted in the current epoch (0 before the first packet).
    pub fn highest(&self) -> u32 {
        self.highest
    }

    fn index(&self, counter: u32) -> usize {
        match counter.checked_rem(self.size) {
            Some(i) => usize::try_from(i).unwrap_or(0),
            None => 0,
        }
    }

    fn slot(&self, counter: u32) -> u64 {
        self.slots.get(self.index(counter)).copied().unwrap_or(0)
    }

    /// Would `(epoch, counter)` received at `now` be accepted? Does not change any state.
    pub fn check(&self, epoch: u32, counter: u32, now: Instant) -> Result<(), ReplayError> {
        if counter == 0 {
            return Err(ReplayError::ZeroId);
        }
        if !self.started || epoch > self.epoch {
            return Ok(());
        }
        if epoch < self.epoch {
            return Err(ReplayError::OldEpoch);
        }
        if counter > self.highest {
            return Ok(());
        }
        let behind = self.highest - counter;
        if behind >= self.size {
            return Err(ReplayError::OutsideWindow);
        }
        if self.slot(counter) != 0 {
            return Err(ReplayError::Duplicate);
        }
        // Reject reordering that arrives more than the time window after a newer packet.
        let now_ms = now.as_millis();
        let mut newer = counter;
        while newer < self.highest {
            newer += 1;
            let seen = self.slot(newer);
            if seen != 0 && now_ms.saturating_sub(seen - 1) > self.time_window_ms {
                return Err(ReplayError::Expired);
            }
        }
        Ok(())
    }

    /// Checks `(epoch, counter)` and, if accepted, records it. Call only for packets that authenticated.
    pub fn update(&mut self, epoch: u32, counter: u32, now: Instant) -> Result<(), ReplayError> {
        if let Err(e) = self.check(epoch, counter, now) {
            self.rejected = self.rejected.saturating_add(1);
            return Err(e);
        }
        if !self.started || epoch > self.epoch {
            self.started = true;
            self.epoch = epoch;
            self.highest = 0;
            self.slots.fill(0);
        }
        if counter > self.highest {
            let advance = counter - self.highest;
            if advance >= self.size {
                self.slots.fill(0);
            } else {
                for k in 1..=advance {
                    let i = self.index(self.highest.wrapping_add(k));
                    if let Some(s) = self.slots.get_mut(i) {
                        *s = 0;
                    }
                }
            }
            self.highest = counter;
        }
        let i = self.index(counter);
        if let Some(s) = self.slots.get_mut(i) {
            *s = now.as_millis().saturating_add(1);
        }
        Ok(())
    }
}

impl Default for ReplayWindow {
    /// 64 packets, 15 seconds.
    fn default() -> Self {
        ReplayWindow::new(DEFAULT_WINDOW, DEFAULT_TIME_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use rand_core::{RngCore, SeedableRng};
    use std::collections::BTreeMap;

    #[test]
    fn basic_window() {
        let mut w = ReplayWindow::default();
        let t = Instant::from_secs(1);
        assert_eq!(w.update(0, 0, t), Err(ReplayError::ZeroId));
        assert_eq!(w.update(0, 5, t), Ok(()));
        assert_eq!(w.update(0, 5, t), Err(ReplayError::Duplicate));
        assert_eq!(w.update(0, 3, t), Ok(()));
        assert_eq!(w.update(0, 100, t), Ok(()));
        assert_eq!(w.update(0, 36, t), Err(ReplayError::OutsideWindow));
        assert_eq!(w.update(0, 37, t), Ok(()));
        assert_eq!(w.rejected(), 3);
        // 15 s after packet 100 arrived, holes below it expire.
        assert_eq!(w.update(0, 99, Instant::from_secs(16)), Ok(()));
        assert_eq!(
            w.update(0, 98, Instant::from_millis(16_001)),
            Err(ReplayError::Expired)
        );
        assert_eq!(w.update(0, 101, Instant::from_secs(17)), Ok(()));
    }

    #[test]
    fn epochs_for_the_control_channel() {
        let mut w = ReplayWindow::default();
        let t = Instant::ZERO;
        assert_eq!(w.update(1000, 0x0F00_0001, t), Ok(()));
        assert_eq!(w.update(1000, 0x0F00_0002, t), Ok(()));
        assert_eq!(w.update(999, 0x0F00_0003, t), Err(ReplayError::OldEpoch));
        assert_eq!(w.update(1001, 1, t), Ok(()));
        assert_eq!(w.update(1001, 1, t), Err(ReplayError::Duplicate));
    }

    #[test]
    fn zero_sized_window_accepts_only_increasing() {
        let mut w = ReplayWindow::new(0, DEFAULT_TIME_WINDOW);
        assert_eq!(w.update(0, 2, Instant::ZERO), Ok(()));
        assert_eq!(
            w.update(0, 1, Instant::ZERO),
            Err(ReplayError::OutsideWindow)
        );
        assert_eq!(
            w.update(0, 2, Instant::ZERO),
            Err(ReplayError::OutsideWindow)
        );
        assert_eq!(w.update(0, 3, Instant::ZERO), Ok(()));
    }

    /// The reference model: the set of every accepted counter with its receive time, and the rules spelled
    /// out literally.
    struct Model {
        size: u32,
        window_ms: u64,
        seen: BTreeMap<u32, u64>,
    }

    impl Model {
        fn accept(&mut self, id: u32, now: u64) -> bool {
            if id == 0 {
                return false;
            }
            let highest = self.seen.keys().next_back().copied().unwrap_or(0);
            let ok = if self.seen.is_empty() || id > highest {
                true
            } else if highest - id >= self.size || self.seen.contains_key(&id) {
                false
            } else {
                !self
                    .seen
                    .range(id + 1..)
                    .any(|(_, &t)| now - t > self.window_ms)
            };
            if ok {
                self.seen.insert(id, now);
            }
            ok
        }
    }

    #[test]
    fn matches_reference_model_on_random_sequences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x0e7_5eed);
        for round in 0..200 {
            let size = [0u32, 1, 8, 64, 100][round % 5];
            let mut w = ReplayWindow::new(size, Duration::from_millis(1500));
            let mut m = Model {
                size,
                window_ms: 1500,
                seen: BTreeMap::new(),
            };
            let mut now = 0u64;
            let mut next = 1u32;
            for _ in 0..2000 {
                now += u64::from(rng.next_u32() % 50);
                let r = rng.next_u32() % 100;
                let id = match r {
                    0..=59 => {
                        next += 1 + rng.next_u32() % 3;
                        next
                    }
                    60..=79 => next.saturating_sub(rng.next_u32() % (size + 8)),
                    80..=89 => next.saturating_sub(rng.next_u32() % 3),
                    90..=97 => next.saturating_sub(rng.next_u32() % 10_000),
                    _ => 0,
                };
                let got = w.update(0, id, Instant::from_millis(now)).is_ok();
                assert_eq!(
                    got,
                    m.accept(id, now),
                    "round {round} id {id} next {next} now {now}"
                );
            }
        }
    }
}
