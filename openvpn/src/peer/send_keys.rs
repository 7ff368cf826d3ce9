//! Which data key to send with, and installing a new one beside the lame duck (§9), the same on both
//! sides.
//!
//! Send-key rule: the newest key with generated keys is used, except while it is younger than its
//! deferred-auth window (`min(hand-window, reneg-sec / 2)` after its key state started) and the lame duck
//! is past its own window: then the lame duck is used. So by default a client keeps sending on the old key
//! for 60 s after a renegotiation starts, giving the server time for deferred authentication, and switches
//! at once when renegotiations come faster than that. A lame duck that is worn out (packet-id near its
//! wrap, usage limit reached) is given up for the newest key at once.

use core::time::Duration;

use crate::crypto::{DataChannel, DataKey};
use crate::time::Instant;
use crate::wire::KeyId;

/// A data key the peer may send with: its key_id and when its deferred-auth window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendKey {
    /// The key's key_id.
    pub key_id: KeyId,
    /// Until then the lame duck is preferred (see the module docs).
    pub deferred_until: Instant,
}

/// The newest data key and the lame duck of the previous negotiation (with when it expires).
#[derive(Debug, Clone, Copy, Default)]
pub struct SendKeys {
    /// The newest installed key.
    pub newest: Option<SendKey>,
    /// The previous key and the end of its transition window (`tran-window`).
    pub previous: Option<(SendKey, Instant)>,
}

impl SendKeys {
    /// The key_id to encrypt with at `now` by the deferred-window rule alone.
    pub fn select(&self, now: Instant) -> Option<KeyId> {
        let newest = self.newest?;
        match self.previous {
            Some((prev, _)) if now < newest.deferred_until && now >= prev.deferred_until => {
                Some(prev.key_id)
            }
            _ => Some(newest.key_id),
        }
    }

    /// The key_id to encrypt with at `now`: [`select`](Self::select), except that a worn-out lame duck
    /// is given up for the newest key at once. Only a lookup while the lame duck is chosen.
    pub fn send_key_id(&self, data: Option<&DataChannel>, now: Instant) -> Option<KeyId> {
        let id = self.select(now)?;
        match self.newest {
            Some(newest)
                if newest.key_id != id
                    && data
                        .and_then(|d| d.key(id))
                        .is_none_or(DataKey::needs_renegotiation) =>
            {
                Some(newest.key_id)
            }
            _ => Some(id),
        }
    }

    /// Installs `key` into `data` as the newest key, keeping only it and the current one (the lame duck,
    /// valid for `tran_window` more); older keys are gone on the peer too.
    pub fn install(
        &mut self,
        data: &mut DataChannel,
        key: DataKey,
        now: Instant,
        deferred_until: Instant,
        tran_window: Duration,
    ) {
        let key_id = key.key_id();
        let keep = self.newest.map(|k| k.key_id);
        if let Some((old, _)) = self.previous {
            if Some(old.key_id) != keep && old.key_id != key_id {
                data.remove(old.key_id);
            }
        }
        data.install(key);
        let new = SendKey {
            key_id,
            deferred_until,
        };
        self.previous = self
            .newest
            .filter(|k| k.key_id != new.key_id)
            .map(|k| (k, now + tran_window));
        self.newest = Some(new);
        if self.previous.is_none() {
            data.set_primary(new.key_id);
        }
    }

    /// Drops the lame duck from `data` once its transition window is over; true if it was dropped.
    pub fn expire_lame_duck(&mut self, data: Option<&mut DataChannel>, now: Instant) -> bool {
        match self.previous {
            Some((prev, expires)) if now >= expires => {
                if let Some(d) = data {
                    d.remove(prev.key_id);
                }
                self.previous = None;
                true
            }
            _ => false,
        }
    }

    /// The next time the send key or the lame duck changes (for `poll_at`).
    pub fn poll_at(&self) -> Option<Instant> {
        let lame_duck_expires = self.previous.map(|(_, expires)| expires);
        let deferred = match (self.newest, self.previous) {
            (Some(n), Some(_)) if n.deferred_until > Instant::ZERO => Some(n.deferred_until),
            _ => None,
        };
        [lame_duck_expires, deferred].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8, until: u64) -> SendKey {
        SendKey {
            key_id: KeyId::new(id).unwrap(),
            deferred_until: Instant::from_secs(until),
        }
    }

    #[test]
    fn send_key_follows_the_deferred_window() {
        let mut k = SendKeys {
            newest: Some(key(0, 60)),
            previous: None,
        };
        assert_eq!(k.select(Instant::from_secs(1)), KeyId::new(0));
        // Renegotiation at 3600 s: keep the old key until the new one's window ends at 3660 s.
        k.previous = Some((key(0, 60), Instant::from_secs(7200)));
        k.newest = Some(key(1, 3660));
        assert_eq!(k.select(Instant::from_secs(3605)), KeyId::new(0));
        assert_eq!(k.select(Instant::from_secs(3660)), KeyId::new(1));
        // Fast renegotiations: the lame duck is itself still in its window, so the new key is used.
        k.previous = Some((key(1, 3660), Instant::from_secs(7200)));
        k.newest = Some(key(2, 3680));
        assert_eq!(k.select(Instant::from_secs(3620)), KeyId::new(2));
    }
}
