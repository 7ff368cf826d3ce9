//! The replay window at the top of the packet-id space, against a reference model: counters up to
//! `u32::MAX`, and a peer whose counter "wraps" to small values afterwards. A wrapped counter must never
//! reopen the window (OpenVPN renegotiates before the id wraps, §6; a receiver never accepts id 0 or an id
//! far behind the highest). The crate's own model test (`crypto::replay`) covers small counters; this adds
//! the wrap and a hostile sender that replays, reorders and jumps.

use std::collections::BTreeMap;
use std::time::Duration;

use openvpn::crypto::{ReplayError, ReplayWindow};
use openvpn::time::Instant;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Every accepted counter with its receive time; the rules written out literally.
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
        let highest = self.seen.keys().next_back().copied();
        let ok = match highest {
            None => true,
            Some(h) if id > h => true,
            Some(h) if h - id >= self.size || self.seen.contains_key(&id) => false,
            Some(_) => !self
                .seen
                .range(id + 1..)
                .any(|(_, &t)| now - t > self.window_ms),
        };
        if ok {
            self.seen.insert(id, now);
        }
        ok
    }
}

#[test]
fn window_matches_model_up_to_and_across_the_wrap() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x3a9);
    for round in 0..100 {
        let size = [1u32, 8, 64, 128][round % 4];
        let mut window = ReplayWindow::new(size, Duration::from_millis(2000));
        let mut model = Model {
            size,
            window_ms: 2000,
            seen: BTreeMap::new(),
        };
        let mut next = u32::MAX - 5000;
        let mut now = 0u64;
        for _ in 0..4000 {
            now += u64::from(rng.next_u32() % 40);
            let id = match rng.next_u32() % 100 {
                // In order, with small gaps; saturating at the top of the id space.
                0..=54 => {
                    next = next.saturating_add(1 + rng.next_u32() % 3);
                    next
                }
                // Reordered or replayed within and just beyond the window.
                55..=79 => next.saturating_sub(rng.next_u32() % (size + 8)),
                // A "wrapped" sender: small counters after the top.
                80..=89 => rng.next_u32() % 5000,
                // The very top.
                90..=94 => u32::MAX - rng.next_u32() % 4,
                // Far behind.
                _ => next.saturating_sub(rng.next_u32()),
            };
            let got = window.update(0, id, Instant::from_millis(now));
            assert_eq!(
                got.is_ok(),
                model.accept(id, now),
                "round {round} size {size} id {id} next {next}"
            );
        }
        // Whatever happened, once u32::MAX is in, nothing is ever accepted again.
        if window
            .update(0, u32::MAX, Instant::from_millis(now))
            .is_ok()
            || model.seen.contains_key(&u32::MAX)
        {
            for id in [0, 1, 2, size, u32::MAX - size, u32::MAX] {
                assert!(
                    window.update(0, id, Instant::from_millis(now)).is_err(),
                    "id {id} after u32::MAX"
                );
            }
        }
    }
}

#[test]
fn rejections_are_counted() {
    let mut window = ReplayWindow::default();
    let t = Instant::from_millis(1);
    assert_eq!(window.update(0, u32::MAX - 1, t), Ok(()));
    assert_eq!(
        window.update(0, u32::MAX - 1, t),
        Err(ReplayError::Duplicate)
    );
    assert_eq!(window.update(0, 0, t), Err(ReplayError::ZeroId));
    assert_eq!(window.update(0, 1, t), Err(ReplayError::OutsideWindow));
    assert_eq!(window.update(0, u32::MAX, t), Ok(()));
    assert_eq!(window.rejected(), 3);
}
