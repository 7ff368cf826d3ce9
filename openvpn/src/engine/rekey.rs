//! Renegotiation (§9): a SOFT_RESET on the next key_id, from the server or at our `reneg-sec`, runs a
//! fresh TLS handshake and key-method-2 exchange; the new data key is installed next to the old one
//! (the lame duck), and sending moves to it the way OpenVPN 2.6 does.
//!
//! Send-key rule: the newest key with generated keys is used, except while it is younger than its
//! deferred-auth window (`min(hand-window, reneg-sec / 2)` after its key state started) and the lame duck
//! is past its own window: then the lame duck is used. So by default a client keeps sending on the old key
//! for 60 s after a renegotiation starts, giving the server time for deferred authentication, and switches
//! at once when renegotiations come faster than that.

use core::time::Duration;

use rand_core::CryptoRngCore;

use super::{Engine, KeyStart, KeyState, ReconnectReason, State};
use crate::crypto::prf::{derive_key2_legacy, Km2Randoms};
use crate::crypto::{DataKey, ReplayWindow, Role};
use crate::session::{ClientKeySource, ServerKeySource};
use crate::time::Instant;
use crate::tls::TlsClient;
use crate::wire::{ControlRepr, KeyId, Opcode};

/// A data key the engine may send with: its key_id and when its deferred-auth window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SendKey {
    pub key_id: KeyId,
    pub deferred_until: Instant,
}

/// The newest data key and the lame duck of the previous negotiation.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SendKeys {
    pub newest: Option<SendKey>,
    pub previous: Option<(SendKey, Instant)>,
}

impl SendKeys {
    /// The key_id to encrypt with at `now`.
    pub fn select(&self, now: Instant) -> Option<KeyId> {
        let newest = self.newest?;
        match self.previous {
            Some((prev, _)) if now < newest.deferred_until && now >= prev.deferred_until => {
                Some(prev.key_id)
            }
            _ => Some(newest.key_id),
        }
    }
}

impl Engine {
    /// The key_id to encrypt with at `now`: [`SendKeys::select`], except that a lame duck that is worn
    /// out (packet-id near its wrap, usage limit reached) is given up for the newest key at once, even
    /// inside the newest key's deferred window. Only a lookup while the lame duck is chosen.
    pub(super) fn send_key_id(&self, now: Instant) -> Option<KeyId> {
        let id = self.send_keys.select(now)?;
        match self.send_keys.newest {
            Some(newest)
                if newest.key_id != id
                    && self
                        .data
                        .as_ref()
                        .and_then(|d| d.key(id))
                        .is_none_or(DataKey::needs_renegotiation) =>
            {
                Some(newest.key_id)
            }
            _ => Some(id),
        }
    }

    /// `min(hand-window, reneg-sec / 2)`: how long a new key waits before it is preferred for sending.
    fn deferred_window(&self) -> Duration {
        let reneg = if self.config.reneg_secs == 0 {
            u64::MAX
        } else {
            self.config.reneg_secs / 2
        };
        Duration::from_secs(self.config.hand_window_secs.min(reneg))
    }

    /// Derives key2 for the key state `key` (legacy PRF, §5.6) and installs its data key.
    pub(super) fn install_data_key(
        &mut self,
        now: Instant,
        key: &KeyState,
        server: &ServerKeySource,
    ) -> bool {
        let (Some((cipher, peer_id)), Some(server_sid)) = (self.negotiated, key.remote_sid())
        else {
            return false;
        };
        let ck: &ClientKeySource = key.client_keys();
        let key2 = derive_key2_legacy(
            &ck.pre_master,
            &Km2Randoms {
                random1: ck.random1,
                random2: ck.random2,
            },
            &Km2Randoms {
                random1: server.random1,
                random2: server.random2,
            },
            &key.local_sid(),
            &server_sid,
        );
        let data_key = match DataKey::new(
            cipher,
            &key2,
            Role::Client,
            key.key_id(),
            peer_id,
            ReplayWindow::new(
                self.config.replay_window.0,
                core::time::Duration::from_secs(self.config.replay_window.1),
            ),
        ) {
            Ok(k) => k,
            Err(e) => {
                log::warn!("data key for key_id {} rejected: {e}", key.key_id());
                return false;
            }
        };
        let deferred_until = self.key_started + self.deferred_window();
        let Some(data) = self.data.as_mut() else {
            return false;
        };
        // Keep only the new key and the current one (the lame duck); older ones are gone on the server too.
        let keep = self.send_keys.newest.map(|k| k.key_id);
        if let Some((old, _)) = self.send_keys.previous {
            if Some(old.key_id) != keep && old.key_id != key.key_id() {
                data.remove(old.key_id);
            }
        }
        data.install(data_key);
        let new = SendKey {
            key_id: key.key_id(),
            deferred_until,
        };
        let tran_window = Duration::from_secs(self.config.tran_window_secs);
        self.send_keys.previous = self
            .send_keys
            .newest
            .filter(|k| k.key_id != new.key_id)
            .map(|k| (k, now + tran_window));
        self.send_keys.newest = Some(new);
        if self.send_keys.previous.is_none() {
            data.set_primary(new.key_id);
        }
        true
    }

    /// Starts a renegotiation on `key_id`; `server_reset` is the server's plain SOFT_RESET if it began it.
    pub(super) fn start_renegotiation(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        key_id: KeyId,
        server_reset: Option<&[u8]>,
    ) {
        let Some(old) = self.key.as_ref() else { return };
        let (local_sid, remote_sid) = (old.local_sid(), old.remote_sid());
        let tls = match TlsClient::new(self.tls_config.clone()) {
            Ok(t) => t,
            Err(_) => {
                self.reconnect(now, ReconnectReason::HandshakeTimeout);
                return;
            }
        };
        let client_keys = ClientKeySource::random(rng);
        let km2 = match self.key_method2_message(&client_keys) {
            Ok(m) => m,
            Err(e) => {
                self.km2_refused(now, e);
                return;
            }
        };
        log::info!(
            "renegotiating: key_id {key_id} ({})",
            if server_reset.is_some() {
                "server"
            } else {
                "reneg-sec"
            }
        );
        let start = KeyStart {
            key_id,
            local_sid,
            remote_sid,
            reset_opcode: Opcode::ControlSoftResetV1,
            retransmit_ms: self.config.tls_timeout_ms,
        };
        let mut key = KeyState::new_client(start, tls, client_keys, km2);
        self.reneg_started = Some(now);
        self.key_started = now;
        // The current key state becomes the lame duck's control channel (late ACKs, messages).
        self.old_key = self.key.take();
        if let Some(plain) = server_reset {
            if let Ok(repr) = ControlRepr::parse_bytes(plain) {
                if let Err(e) = key.on_packet(&repr, now.as_millis()) {
                    self.key = Some(key);
                    self.handshake_failed(now, e);
                    return;
                }
            }
        }
        self.key = Some(key);
    }

    /// The server's key-method-2 message of a renegotiation arrived: install the new data key.
    pub(super) fn finish_renegotiation(&mut self, now: Instant, server: &ServerKeySource) {
        let Some(key) = self.key.take() else { return };
        let ok = self.install_data_key(now, &key, server);
        self.key = Some(key);
        if ok {
            self.reneg_started = None;
            self.stats.renegotiations += 1;
        } else {
            self.reconnect(now, ReconnectReason::HandshakeTimeout);
        }
    }

    /// Renegotiation timers: our `reneg-sec`, packet-id exhaustion, a stalled renegotiation, the lame duck's
    /// transition window, and a SOFT_RESET from the server waiting for randomness.
    pub(super) fn run_rekey_timers(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        if self.state != State::Connected {
            return;
        }
        if let Some((key_id, plain)) = self.pending_soft_reset.take() {
            self.start_renegotiation(now, rng, key_id, Some(&plain));
            return;
        }
        if let Some(started) = self.reneg_started {
            if now >= started + Duration::from_secs(self.config.hand_window_secs) {
                self.reconnect(now, ReconnectReason::HandshakeTimeout);
            }
            return;
        }
        if let Some((prev, expires)) = self.send_keys.previous {
            if now >= expires {
                if let Some(data) = self.data.as_mut() {
                    data.remove(prev.key_id);
                }
                self.send_keys.previous = None;
                self.old_key = None;
            }
        }
        let due = self.config.reneg_secs > 0
            && now >= self.key_started + Duration::from_secs(self.config.reneg_secs);
        // Every trigger looks at the newest key only: the lame duck that triggered the renegotiation
        // before stays worn out until it expires, and must not start another one.
        let newest = self
            .send_keys
            .newest
            .and_then(|k| self.data.as_ref()?.key(k.key_id));
        // Packet-id near its wrap (§6.4).
        let exhausted = newest.is_some_and(DataKey::needs_renegotiation);
        // reneg-bytes / reneg-pkts count both directions of the newest key (§9).
        let used_up = newest.map(DataKey::stats).is_some_and(|st| {
            let bytes = st.sent_bytes.saturating_add(st.received_bytes);
            let packets = st.sent_packets.saturating_add(st.received_packets);
            (self.config.reneg_bytes > 0 && bytes >= self.config.reneg_bytes)
                || (self.config.reneg_packets > 0 && packets >= self.config.reneg_packets)
        });
        if due || exhausted || used_up {
            let next = self.key.as_ref().map_or(KeyId::ZERO, |k| k.key_id()).next();
            self.start_renegotiation(now, rng, next, None);
        }
    }

    /// The next renegotiation deadline.
    pub(super) fn rekey_poll_at(&self) -> Option<Instant> {
        if self.state != State::Connected {
            return None;
        }
        if self.pending_soft_reset.is_some() {
            return Some(Instant::ZERO);
        }
        if let Some(started) = self.reneg_started {
            return Some(started + Duration::from_secs(self.config.hand_window_secs));
        }
        // Called on every pass of the caller's I/O loop (through `poll_at`), so no allocation here.
        let reneg = (self.config.reneg_secs > 0)
            .then(|| self.key_started + Duration::from_secs(self.config.reneg_secs));
        let lame_duck_expires = self.send_keys.previous.map(|(_, expires)| expires);
        let deferred = match (self.send_keys.newest, self.send_keys.previous) {
            (Some(n), Some(_)) if n.deferred_until > Instant::ZERO => Some(n.deferred_until),
            _ => None,
        };
        [reneg, lame_duck_expires, deferred]
            .into_iter()
            .flatten()
            .min()
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
