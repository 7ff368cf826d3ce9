//! The engine's clocks: hand-window, the pre-push and pushed `ping-restart`, PUSH_REQUEST repetition,
//! keepalive intervals, and [`Engine::poll_at`], the one deadline the caller waits for (§3, §7, §8.2).

use core::time::Duration;

use super::{
    Engine, KeyState, ReconnectReason, State, PRE_PUSH_PING_RESTART_SECS, PUSH_REQUEST_INTERVAL,
};
use crate::time::Instant;

impl Engine {
    pub(super) fn run_timers(&mut self, now: Instant) {
        let since_rx = now.saturating_duration_since(self.last_received).as_secs();
        match self.state {
            State::Handshake => {
                if now >= self.handshake_deadline {
                    self.reconnect(now, ReconnectReason::HandshakeTimeout);
                    return;
                }
                if self.awaiting_server() && now >= self.server_poll_deadline {
                    self.reconnect(now, ReconnectReason::ServerPollTimeout);
                    return;
                }
                if since_rx >= PRE_PUSH_PING_RESTART_SECS {
                    self.reconnect(now, ReconnectReason::PingRestart);
                    return;
                }
                if let Some(at) = self.next_push_request {
                    if now >= at {
                        let all_acked = self.key.as_ref().is_some_and(KeyState::all_acked);
                        if all_acked {
                            if let Some(key) = self.key.as_mut() {
                                if let Err(e) = key.send_message("PUSH_REQUEST") {
                                    self.handshake_failed(now, e);
                                    return;
                                }
                            }
                            self.next_push_request = Some(now + PUSH_REQUEST_INTERVAL);
                        } else {
                            self.next_push_request = Some(now + Duration::from_millis(200));
                        }
                    }
                }
            }
            State::Connected => {
                if self.inactive_expired(now) {
                    self.exit(super::ExitReason::Inactive);
                } else if self.ping_exit_secs().is_some_and(|limit| since_rx >= limit) {
                    self.exit(super::ExitReason::PingExit);
                } else if self
                    .ping_restart_secs()
                    .is_some_and(|limit| since_rx >= limit)
                {
                    self.reconnect(now, ReconnectReason::PingRestart);
                }
            }
            State::Exited | State::Connecting => {}
        }
    }

    /// No answer from the server yet in this session: our reset is out, theirs has not come.
    pub(super) fn awaiting_server(&self) -> bool {
        self.key
            .as_ref()
            .is_some_and(|k| k.phase() == crate::peer::Phase::PreStart)
    }

    pub(super) fn ping_secs(&self) -> Option<u64> {
        self.pushed
            .as_ref()
            .and_then(|p| p.ping)
            .or(self.config.ping_secs)
            .filter(|s| *s > 0)
            .map(u64::from)
    }

    /// Records tunnel traffic for `inactive`.
    pub(super) fn tunnel_activity(&mut self, now: Instant, bytes: usize) {
        self.last_activity = now;
        self.window_bytes = self.window_bytes.saturating_add(bytes as u64);
    }

    /// `inactive N [BYTES]` (§ man page): no tunnel packet for N seconds, or fewer than BYTES in an
    /// N-second window.
    fn inactive_expired(&mut self, now: Instant) -> bool {
        let Some((secs, bytes)) = self.config.inactive.filter(|(s, _)| *s > 0) else {
            return false;
        };
        let window = Duration::from_secs(secs);
        if bytes == 0 {
            return now >= self.last_activity + window;
        }
        if now < self.window_start + window {
            return false;
        }
        if self.window_bytes < bytes {
            return true;
        }
        self.window_start = now;
        self.window_bytes = 0;
        false
    }

    /// `ping-exit` (pushed or configured): stop instead of reconnecting.
    pub(super) fn ping_exit_secs(&self) -> Option<u64> {
        self.pushed
            .as_ref()
            .and_then(|p| p.ping_exit)
            .or(self.config.ping_exit_secs)
            .filter(|s| *s > 0)
            .map(u64::from)
    }

    pub(super) fn ping_restart_secs(&self) -> Option<u64> {
        self.pushed
            .as_ref()
            .and_then(|p| p.ping_restart)
            .or(self.config.ping_restart_secs)
            .filter(|s| *s > 0)
            .map(u64::from)
    }

    /// When [`poll_action`](Self::poll_action) must be called next at the latest.
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.actions.is_empty() {
            return Some(Instant::ZERO);
        }
        if self.state == State::Exited {
            return None;
        }
        if let Some(at) = self.restart_at {
            return Some(at);
        }
        if self.state == State::Connecting {
            return self.transport_up.then_some(Instant::ZERO);
        }
        let mut at: Option<Instant> = None;
        let mut take = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        if let Some(ms) = self.key.as_ref().and_then(KeyState::poll_at_ms) {
            take(Instant::from_millis(ms));
        }
        if let Some(ms) = self.old_key.as_ref().and_then(KeyState::poll_at_ms) {
            take(Instant::from_millis(ms));
        }
        match self.state {
            State::Handshake => {
                take(self.handshake_deadline);
                if self.awaiting_server() {
                    take(self.server_poll_deadline);
                }
                take(self.last_received + Duration::from_secs(PRE_PUSH_PING_RESTART_SECS));
                if let Some(t) = self.next_push_request {
                    take(t);
                }
            }
            State::Connected => {
                if let Some(p) = self.ping_secs() {
                    take(self.last_sent + Duration::from_secs(p));
                }
                if let Some(r) = self.ping_restart_secs() {
                    take(self.last_received + Duration::from_secs(r));
                }
                if let Some(r) = self.ping_exit_secs() {
                    take(self.last_received + Duration::from_secs(r));
                }
                if let Some((secs, bytes)) = self.config.inactive.filter(|(s, _)| *s > 0) {
                    let from = if bytes == 0 {
                        self.last_activity
                    } else {
                        self.window_start
                    };
                    take(from + Duration::from_secs(secs));
                }
                if let Some(t) = self.rekey_poll_at() {
                    take(t);
                }
            }
            State::Exited | State::Connecting => {}
        }
        at
    }
}
