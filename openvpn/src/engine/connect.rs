//! Which server to talk to and when (§14 "Reconnection" in issue terms): the engine walks the `remote`
//! list, asks the caller to open a transport with [`Action::Connect`](super::Action::Connect) (resolving the
//! host name is the caller's job), waits for [`Engine::transport_ready`], and after a failure waits
//! `connect-retry` seconds (doubling every five failures up to the configured maximum) before the next
//! attempt. `connect-retry-max` rounds over the list end in [`ExitReason::RetriesExhausted`].

use alloc::string::String;
use core::time::Duration;

use super::{Action, Engine, ExitReason, ReconnectReason, State};
use crate::session::Transport;
use crate::time::Instant;

/// One `remote` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    /// Host name or address literal, as written in the config.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport and address family to use.
    pub transport: Transport,
    /// This remote's own `connect-timeout` (its `<connection>` block), seconds; `None` uses
    /// [`EngineConfig::server_poll_timeout_secs`](super::EngineConfig::server_poll_timeout_secs).
    pub server_poll_timeout_secs: Option<u64>,
}

impl Engine {
    /// The remote the current (or next) session uses.
    pub fn current_remote(&self) -> Option<&RemoteSpec> {
        self.config.remotes.get(self.remote_index)
    }

    /// The caller has a transport to [`current_remote`](Self::current_remote) (UDP socket bound, TCP
    /// connected): the session starts at the next [`poll_action`](Self::poll_action).
    pub fn transport_ready(&mut self, _now: Instant) {
        if self.state == State::Connecting {
            self.transport_up = true;
        }
    }

    /// The caller could not resolve or connect to the remote: try the next one after the retry delay.
    pub fn transport_failed(&mut self, now: Instant) {
        if self.state != State::Exited {
            self.reconnect_to(now, ReconnectReason::TransportFailed, true);
        }
    }

    /// Asks the caller to open a transport to the current remote.
    pub(super) fn request_connect(&mut self) {
        self.state = State::Connecting;
        self.transport_up = false;
        match self.config.remotes.get(self.remote_index) {
            Some(remote) => self.actions.push_back(Action::Connect(remote.clone())),
            None => self.exit(ExitReason::RetriesExhausted),
        }
    }

    /// The delay before the next attempt: 1 s after a working session broke, else `connect-retry`
    /// doubling every five failures, capped.
    pub(super) fn retry_delay(&self) -> Duration {
        if self.failures == 0 {
            return Duration::from_secs(1);
        }
        let doublings = (self.failures / 5).min(16);
        let secs = self
            .config
            .connect_retry_secs
            .max(1)
            .saturating_mul(1 << doublings);
        Duration::from_secs(secs.min(self.config.connect_retry_max_delay_secs.max(1)))
    }

    /// Moves to the next remote (if `advance`) and counts the failure against `connect-retry-max`.
    /// Returns false when the retries are exhausted.
    pub(super) fn next_attempt(&mut self, advance: bool) -> bool {
        let n = self.config.remotes.len().max(1);
        if advance {
            self.remote_index = (self.remote_index + 1) % n;
        }
        if let Some(max) = self.config.connect_retry_max {
            let rounds = self.failures / u32::try_from(n).unwrap_or(u32::MAX);
            if rounds >= max {
                return false;
            }
        }
        true
    }
}
