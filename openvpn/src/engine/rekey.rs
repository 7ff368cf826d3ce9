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
use crate::crypto::{DataKey, ReplayWindow, Role};
use crate::session::ClientKeySource;
use crate::time::Instant;
use crate::tls::TlsSession;
use crate::wire::{ControlRepr, KeyId, Opcode};

impl Engine {
    /// The key_id to encrypt with at `now` ([`SendKeys::send_key_id`]).
    pub(super) fn send_key_id(&self, now: Instant) -> Option<KeyId> {
        self.send_keys.send_key_id(self.data.as_ref(), now)
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
    pub(super) fn install_data_key(&mut self, now: Instant, key: &KeyState) -> bool {
        let (Some((cipher, peer_id)), Some(key2)) = (self.negotiated, key.derive_key2()) else {
            return false;
        };
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
        let tran_window = Duration::from_secs(self.config.tran_window_secs);
        self.send_keys
            .install(data, data_key, now, deferred_until, tran_window);
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
        let tls = match TlsSession::client(self.tls_config.clone()) {
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
    pub(super) fn finish_renegotiation(&mut self, now: Instant) {
        let Some(key) = self.key.take() else { return };
        let ok = self.install_data_key(now, &key);
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
        if self.send_keys.expire_lame_duck(self.data.as_mut(), now) {
            self.old_key = None;
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
        [reneg, self.send_keys.poll_at()]
            .into_iter()
            .flatten()
            .min()
    }
}
