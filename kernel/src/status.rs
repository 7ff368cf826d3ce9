//! OpenVPN-style connection state lines on the console.
//!
//! Layer: kernel glue, logging only. OpenVPN reports its client state as one of a fixed set of names
//! (its management interface's `>STATE:` values); oxvpn prints the same names so that people and scripts
//! that read OpenVPN logs can read these, plus `Initialization Sequence Completed` once the tunnel
//! carries traffic. It never decides anything: the tunnel glue tells it what happened.

use core::fmt;

/// A client state, named as OpenVPN names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Resolving the `remote` host name.
    Resolve,
    /// Opening the transport to the remote.
    Connecting,
    /// Waiting for the server's first reply.
    Wait,
    /// TLS handshake and key exchange in progress.
    Auth,
    /// Keys are up; waiting for the server's PUSH_REPLY.
    GetConfig,
    /// Applying the pushed address and routes.
    AssignIp,
    /// The tunnel carries traffic.
    Connected,
    /// The session broke; a new attempt follows.
    Reconnecting,
    /// Stopping for good.
    Exiting,
}

impl State {
    /// The name OpenVPN uses for this state.
    pub fn name(self) -> &'static str {
        match self {
            State::Resolve => "RESOLVE",
            State::Connecting => "CONNECTING",
            State::Wait => "WAIT",
            State::Auth => "AUTH",
            State::GetConfig => "GET_CONFIG",
            State::AssignIp => "ASSIGN_IP",
            State::Connected => "CONNECTED",
            State::Reconnecting => "RECONNECTING",
            State::Exiting => "EXITING",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The current state, logged on every change.
#[derive(Debug)]
pub struct Status {
    state: Option<State>,
}

impl Status {
    /// No state reported yet.
    pub const fn new() -> Self {
        Status { state: None }
    }

    /// Reports `state` with a detail (remote, reason, address), once per change.
    pub fn set(&mut self, state: State, detail: fmt::Arguments<'_>) {
        if self.state == Some(state) {
            return;
        }
        self.state = Some(state);
        match state {
            State::Reconnecting | State::Exiting => log::warn!("STATE {state} {detail}"),
            _ => log::info!("STATE {state} {detail}"),
        }
        if state == State::Connected {
            log::info!("Initialization Sequence Completed");
        }
    }
}
