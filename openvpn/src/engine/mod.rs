//! The sans-IO OpenVPN client engine: one entry point for the whole protocol.
//!
//! Layer: protocol state machine. Events in: [`Engine::receive`] (a datagram, or one TCP frame, from the
//! remote), [`Engine::encapsulate`] / [`Engine::encapsulate_in_place`] (an IP packet for the tunnel),
//! [`Engine::transport_ready`] / [`Engine::transport_failed`], and [`Engine::poll_action`] (time passes).
//! Actions out: [`Action`]s (open a transport, bytes for the remote, tunnel up, reconnect, exit) and
//! decrypted IP packets returned in place from `receive`. [`Engine::poll_at`] says when to call again. The
//! engine never reads a clock, a random source or a socket: `now` is an argument, randomness comes from the
//! caller's `CryptoRngCore` (rustls draws its own from ring's `SystemRandom`), and the data path writes
//! into caller buffers without allocating.
//!
//! Time: `now` is the caller's monotonic [`Instant`]; the wall clock (Unix seconds, for replay ids and
//! certificate validity) is given once at construction and advanced with `now`.
//!
//! The I/O loop around it:
//!
//! ```ignore
//! let mut engine = Engine::new(EngineConfig::from_config(&config)?, now, unix_secs, &mut rng)?;
//! loop {
//!     while let Some(action) = engine.poll_action(now, &mut rng) {
//!         match action {
//!             Action::Connect(remote) => { /* resolve, bind UDP or connect TCP */ engine.transport_ready(now) }
//!             Action::SendToRemote(bytes) => socket.send(&bytes),        // TCP: already length-prefixed
//!             Action::TunnelUp(pushed) => { /* addresses, routes, DNS, MTU from `pushed` */ }
//!             Action::Reconnect(reason) => { /* drop tunnel state; a Connect follows */ }
//!             Action::Exit(reason) => return,
//!         }
//!     }
//!     // Wait for a datagram, a packet from the LAN, or engine.poll_at().
//!     if let Received::Packet(ip) = engine.receive(now, &mut datagram) { lan.send(ip) }  // in place
//!     let n = engine.encapsulate(now, ip_from_lan, &mut out, &mut rng)?; socket.send(&out[..n]);
//! }
//! ```

mod config;
mod connect;
mod control;
mod data_path;
pub(crate) mod from_config;
mod rekey;
mod stream;
mod timers;

pub use crate::peer::{HandshakeError, KeyEvent, KeyStart, KeyState, Phase};
pub use config::{ControlProtection, EngineConfig};
pub use connect::RemoteSpec;
use control::new_wrap;
pub use from_config::{tls_settings_of, FromConfigError};
pub use stream::{BadFrame, StreamDeframer};

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use rand_core::CryptoRngCore;
use rustls::ClientConfig;

use crate::crypto::control::ControlWrap;
use crate::crypto::{DataChannel, DataCipher, DataError};
use crate::session::PushError;
use crate::session::{
    self, occ_options_string, ClientKeySource, PeerInfo, PushAccumulator, PushedConfig,
    ServerKeySource,
};
use crate::time::Instant;
use crate::tls::{self, CertRejection, TlsConfigError, TlsError, TlsSession, WallClock};
use crate::wire::tcp::{emit_prefix, PREFIX_LEN};
use crate::wire::{KeyId, OpKey, SessionId};

/// Why the engine could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    /// The TLS configuration was rejected.
    Tls(TlsConfigError),
    /// The control-channel protection cannot be used by a client (a malformed tls-crypt-v2 client key,
    /// or a tls-crypt-v2 server key).
    ControlKey(crate::crypto::control::ProtectionError),
    /// `data-ciphers` names no cipher the data channel implements.
    NoDataCipher,
    /// No `remote` is configured.
    NoRemote,
    /// `auth-user-pass` or the peer-info strings contain a NUL byte (the server would cut the string
    /// there and pass the rest on).
    EmbeddedNul,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Tls(e) => write!(f, "{e}"),
            EngineError::ControlKey(e) => write!(f, "{e}"),
            EngineError::NoDataCipher => f.write_str("data-ciphers: no supported cipher"),
            EngineError::NoRemote => f.write_str("remote: none configured"),
            EngineError::EmbeddedNul => {
                f.write_str("auth-user-pass or peer-info: NUL byte in a string sent to the server")
            }
        }
    }
}

/// Why the engine is reconnecting (a new session with new session ids follows automatically). Texts the
/// server sent (`RESTART`, `AUTH_FAILED`) are kept as received; our own failures are typed.
#[derive(Debug, Clone, PartialEq)]
pub enum ReconnectReason {
    /// Nothing authenticated arrived for `ping-restart` seconds.
    PingRestart,
    /// The handshake did not finish within `hand-window`.
    HandshakeTimeout,
    /// The handshake failed (TLS, key-method 2).
    Handshake(HandshakeError),
    /// The server sent `RESTART` (text after the comma, as sent).
    ServerRestart(String),
    /// The server sent `EXIT` (cc-exit) or an OCC exit.
    ServerExit,
    /// The PUSH_REPLY was unusable.
    BadPush(PushFailure),
    /// A data packet failed to decrypt over TCP (fatal there, §1.1).
    DataError(DataError),
    /// The caller reported that the transport could not be opened.
    TransportFailed,
    /// The server did not answer within `server-poll-timeout` (its first reset never came).
    ServerPollTimeout,
    /// The server certificate failed verification (chain, validity at the wall-clock time,
    /// `remote-cert-tls`, `verify-x509-name`, `peer-fingerprint`, `crl-verify`, ...); its `Display` names
    /// the check (a revocation reads "server certificate revoked (crl-verify)").
    CertificateRejected(CertRejection),
    /// `AUTH_FAILED` while an auth-token was in use, or `AUTH_FAILED,SESSION:`/`TEMP`: the token is
    /// dropped and the configured credentials are tried again. The server's text, as sent.
    AuthRetry(String),
}

impl fmt::Display for ReconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReconnectReason::PingRestart => f.write_str("ping-restart: nothing received"),
            ReconnectReason::HandshakeTimeout => f.write_str("hand-window: handshake too slow"),
            ReconnectReason::Handshake(e) => write!(f, "handshake failed: {e}"),
            ReconnectReason::ServerRestart(msg) => write!(f, "server RESTART {msg}"),
            ReconnectReason::ServerExit => f.write_str("server EXIT"),
            ReconnectReason::BadPush(e) => write!(f, "PUSH_REPLY refused: {e}"),
            ReconnectReason::DataError(e) => write!(f, "data packet over TCP: {e}"),
            ReconnectReason::TransportFailed => f.write_str("transport failed"),
            ReconnectReason::ServerPollTimeout => {
                f.write_str("server-poll-timeout: no answer from the server")
            }
            ReconnectReason::CertificateRejected(why) => write!(f, "{why}"),
            ReconnectReason::AuthRetry(msg) => write!(f, "AUTH_FAILED {msg}: retrying"),
        }
    }
}

/// Why a PUSH_REPLY could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushFailure {
    /// The PUSH_REPLY did not parse.
    Parse(PushError),
    /// The pushed cipher (without one, the fallback) is not in `data-ciphers`: its name, as pushed.
    CipherNotAllowed(String),
    /// The server requires `tls-ekm`, which was not announced.
    TlsEkmRequired,
    /// The data key could not be installed.
    DataKeyRejected,
}

impl fmt::Display for PushFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushFailure::Parse(e) => write!(f, "{e}"),
            PushFailure::CipherNotAllowed(name) => write!(f, "cipher {name} not in data-ciphers"),
            PushFailure::TlsEkmRequired => f.write_str("server requires tls-ekm, not announced"),
            PushFailure::DataKeyRejected => f.write_str("data key rejected"),
        }
    }
}

/// Why the engine stopped for good. Texts the server sent (`AUTH_FAILED`, `HALT`, the pushed compression)
/// are kept as received; our own failures are typed.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitReason {
    /// `AUTH_FAILED` (reason text, as sent) for the configured credentials.
    AuthFailed(String),
    /// Nothing authenticated arrived for `ping-exit` seconds.
    PingExit,
    /// No (or too little) tunnel traffic for `inactive` seconds.
    Inactive,
    /// The caller shut the engine down ([`Engine::shutdown`]).
    Shutdown,
    /// `HALT` (message, as sent).
    Halt(String),
    /// The TLS client could not be set up from the configuration.
    TlsSetup(TlsError),
    /// `connect-retry-max` rounds over the remotes failed.
    RetriesExhausted,
    /// The server pushed real compression (`compress lz4`, `comp-lzo yes`, ...: the pushed words), which
    /// oxvpn does not implement: set `compress stub-v2` or `allow-compression no` on the server.
    CompressionRequired(String),
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::AuthFailed(msg) => write!(f, "AUTH_FAILED {msg}"),
            ExitReason::PingExit => f.write_str("ping-exit: nothing received"),
            ExitReason::Inactive => f.write_str("inactive: no tunnel traffic"),
            ExitReason::Shutdown => f.write_str("shut down"),
            ExitReason::Halt(msg) => write!(f, "server HALT {msg}"),
            ExitReason::TlsSetup(e) => write!(f, "TLS setup failed: {e}"),
            ExitReason::RetriesExhausted => f.write_str("connect-retry-max: retries exhausted"),
            ExitReason::CompressionRequired(words) => write!(
                f,
                "server requires compression ({words}): set `compress stub-v2` or \
                 `allow-compression no` on the server"
            ),
        }
    }
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open a transport to this remote (resolve the host, bind UDP or connect TCP), then call
    /// [`Engine::transport_ready`] (or [`Engine::transport_failed`]). Replaces any previous transport.
    Connect(RemoteSpec),
    /// Send these bytes to the remote: one UDP datagram, or over TCP one packet with its 2-byte length
    /// prefix already in place.
    SendToRemote(Vec<u8>),
    /// The tunnel is up with this configuration: set addresses and routes, then pass IP packets.
    TunnelUp(PushedConfig),
    /// The session was torn down: tear down tunnel state. A [`Action::Connect`] for the next attempt
    /// follows after the retry delay.
    Reconnect(ReconnectReason),
    /// Stop: the engine will not reconnect.
    Exit(ExitReason),
}

/// What [`Engine::receive`] found in a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// An IP packet from the tunnel, decrypted in place inside the caller's datagram buffer.
    Packet(&'a [u8]),
    /// A control packet or keepalive was consumed; call [`Engine::poll_action`].
    Consumed,
    /// Dropped (authentication, replay, unknown key, malformed); counted.
    Dropped,
}

/// What [`Engine::receive_in_place`] found: [`Received`] with the packet named by where it lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceivedAt {
    /// An IP packet from the tunnel, decrypted in place at this range of the caller's datagram buffer.
    /// The bytes before it (headers, IV, tag) are free for the caller to overwrite, e.g. with the
    /// Ethernet header of the frame that carries the packet on.
    Packet(core::ops::Range<usize>),
    /// A control packet or keepalive was consumed; call [`Engine::poll_action`].
    Consumed,
    /// Dropped (authentication, replay, unknown key, malformed); counted.
    Dropped,
}

/// Why [`Engine::encapsulate`] could not encrypt a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The tunnel is not up yet (no data keys).
    NotConnected,
    /// The output buffer is too small.
    BufferTooSmall,
    /// The data channel refused (packet-id exhausted, ...).
    Crypto,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NotConnected => "tunnel not up",
            SendError::BufferTooSmall => "output buffer too small",
            SendError::Crypto => "data channel refused the packet",
        })
    }
}

/// The connection state, named as OpenVPN's management interface names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineState {
    /// Waiting for the caller to open the transport ([`Action::Connect`]).
    Connecting,
    /// Our reset is out; waiting for the server's (`WAIT`).
    Wait,
    /// TLS handshake and key-method 2 running (`AUTH`).
    Auth,
    /// Key-method 2 done; waiting for the PUSH_REPLY (`GET_CONFIG`).
    GetConfig,
    /// The tunnel is up (`CONNECTED`).
    Connected,
    /// Waiting out the retry delay before the next attempt (`RECONNECTING`).
    Reconnecting,
    /// Stopped for good (`EXITING`).
    Exiting,
}

impl EngineState {
    /// OpenVPN's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            EngineState::Connecting => "CONNECTING",
            EngineState::Wait => "WAIT",
            EngineState::Auth => "AUTH",
            EngineState::GetConfig => "GET_CONFIG",
            EngineState::Connected => "CONNECTED",
            EngineState::Reconnecting => "RECONNECTING",
            EngineState::Exiting => "EXITING",
        }
    }
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Control packets dropped by the wrapping (authentication or replay).
    pub control_dropped: u64,
    /// Data packets dropped (authentication, replay, unknown key).
    pub data_dropped: u64,
    /// Keepalive pings sent.
    pub pings_sent: u64,
    /// Keepalive pings received.
    pub pings_received: u64,
    /// Completed renegotiations (new data keys installed after the first).
    pub renegotiations: u64,
    /// Tunnel packets received (decrypted IP packets returned by `receive`).
    pub packets_in: u64,
    /// Bytes of those IP packets.
    pub bytes_in: u64,
    /// Tunnel packets sent (`encapsulate`, `encapsulate_in_place`).
    pub packets_out: u64,
    /// Bytes of those IP packets.
    pub bytes_out: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the caller's transport ([`Action::Connect`]).
    Connecting,
    Handshake,
    Connected,
    Exited,
}

/// Implicit `ping-restart` of a UDP pull client until the push (§7.1).
const PRE_PUSH_PING_RESTART_SECS: u64 = 120;
/// PUSH_REQUEST interval (§8.2).
const PUSH_REQUEST_INTERVAL: Duration = Duration::from_secs(5);
/// First PUSH_REQUEST this long after key-method 2 if the server did not push by itself.
const PUSH_REQUEST_FIRST: Duration = Duration::from_secs(1);

/// The OpenVPN client engine. See the module docs for the event/action contract.
pub struct Engine {
    config: EngineConfig,
    tls_config: Arc<ClientConfig>,
    clock: WallClock,
    /// `now` and Unix seconds at construction: the wall clock advances with `now`.
    wall_origin: (Instant, u64),
    state: State,
    wrap: ControlWrap,
    key: Option<KeyState>,
    server_keys: Option<ServerKeySource>,
    push: PushAccumulator,
    pushed: Option<PushedConfig>,
    data: Option<DataChannel>,
    /// The cipher and peer-id from the PUSH_REPLY, reused for every renegotiated key.
    negotiated: Option<(DataCipher, Option<u32>)>,
    /// The data keys to send with (newest, lame duck).
    send_keys: crate::peer::SendKeys,
    /// When the current key state started (reneg-sec, deferred window).
    key_started: Instant,
    /// When the running renegotiation started (hand-window), if one runs.
    reneg_started: Option<Instant>,
    /// The previous key state's control channel during the transition window.
    old_key: Option<KeyState>,
    /// A server SOFT_RESET (key_id, plain packet) waiting for `poll_action`'s randomness.
    pending_soft_reset: Option<(KeyId, Vec<u8>)>,
    actions: VecDeque<Action>,
    /// When the current session's handshake must be done (hand-window, extended by AUTH_PENDING).
    handshake_deadline: Instant,
    /// When the session gives up waiting for the server's first answer (`server-poll-timeout`).
    server_poll_deadline: Instant,
    /// The `auth-token` pushed by the server: replaces the password on renegotiations and reconnects.
    auth_token: Option<session::AuthToken>,
    /// When the next attempt starts after a reconnect.
    restart_at: Option<Instant>,
    /// Whether that attempt moves to the next remote.
    advance_remote: bool,
    /// Index into `config.remotes` of the current attempt.
    remote_index: usize,
    /// Set by [`Engine::transport_ready`].
    transport_up: bool,
    /// Failed attempts since the last working tunnel (retry backoff, connect-retry-max).
    failures: u32,
    /// Last tunnel packet in or out (`inactive`).
    last_activity: Instant,
    /// Start of the current `inactive N BYTES` window and the bytes seen in it.
    window_start: Instant,
    window_bytes: u64,
    last_received: Instant,
    last_sent: Instant,
    next_push_request: Option<Instant>,
    plain: Vec<u8>,
    stats: Stats,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("state", &self.state)
            .field("key", &self.key)
            .finish()
    }
}

impl Engine {
    /// Creates the engine: the first [`poll_action`](Self::poll_action) returns [`Action::Connect`] for the
    /// first remote; after [`transport_ready`](Self::transport_ready) the next ones carry the client reset.
    /// `unix_secs` is the wall-clock time at `now`.
    pub fn new(
        config: EngineConfig,
        now: Instant,
        unix_secs: u64,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Engine, EngineError> {
        if config.remotes.is_empty() {
            return Err(EngineError::NoRemote);
        }
        if config
            .data_ciphers
            .iter()
            .all(|c| DataCipher::from_name(c, config.auth).is_none())
        {
            return Err(EngineError::NoDataCipher);
        }
        let sent = [
            config.auth_user_pass.as_ref().map(|(u, _)| u.as_str()),
            config.auth_user_pass.as_ref().map(|(_, p)| p.as_str()),
            Some(config.peer_info_version.as_str()),
            Some(config.peer_info_platform.as_str()),
        ];
        if sent.iter().flatten().any(|s| s.contains('\0')) {
            return Err(EngineError::EmbeddedNul);
        }
        let clock = WallClock::new(unix_secs);
        let tls_config =
            tls::client_config(&config.tls, clock.clone()).map_err(EngineError::Tls)?;
        let wrap = new_wrap(&config.protection)?;
        for p in config.remote_protection.iter().flatten() {
            new_wrap(p)?;
        }
        let mut engine = Engine {
            config,
            tls_config,
            clock,
            wall_origin: (now, unix_secs),
            state: State::Connecting,
            wrap,
            key: None,
            server_keys: None,
            push: PushAccumulator::new(),
            pushed: None,
            data: None,
            negotiated: None,
            send_keys: crate::peer::SendKeys::default(),
            key_started: now,
            reneg_started: None,
            pending_soft_reset: None,
            old_key: None,
            actions: VecDeque::new(),
            handshake_deadline: now,
            server_poll_deadline: now,
            auth_token: None,
            restart_at: None,
            advance_remote: false,
            remote_index: 0,
            transport_up: false,
            failures: 0,
            last_activity: now,
            window_start: now,
            window_bytes: 0,
            last_received: now,
            last_sent: now,
            next_push_request: None,
            plain: Vec::with_capacity(crate::peer::control::CONTROL_BUF),
            stats: Stats::default(),
        };
        if engine.config.remote_random {
            // Fisher-Yates with the caller's randomness.
            let n = engine.config.remotes.len();
            engine.config.remote_protection.resize(n, None);
            for i in (1..n).rev() {
                let j = usize::try_from(rng.next_u32()).unwrap_or(0) % (i + 1);
                engine.config.remotes.swap(i, j);
                engine.config.remote_protection.swap(i, j);
            }
        }
        engine.request_connect();
        Ok(engine)
    }

    /// Where the connection is, in OpenVPN's state names (for status output).
    pub fn state(&self) -> EngineState {
        if self.restart_at.is_some() {
            return EngineState::Reconnecting;
        }
        match self.state {
            State::Connecting => EngineState::Connecting,
            State::Connected => EngineState::Connected,
            State::Exited => EngineState::Exiting,
            State::Handshake => match self.key.as_ref().map(KeyState::phase) {
                None | Some(Phase::PreStart) => EngineState::Wait,
                Some(Phase::Tls) | Some(Phase::SentKey) => EngineState::Auth,
                Some(Phase::GotKey) => EngineState::GetConfig,
            },
        }
    }

    /// The configuration pushed by the server, once the tunnel is up.
    pub fn pushed_config(&self) -> Option<&PushedConfig> {
        self.pushed.as_ref()
    }

    /// True once data keys are installed.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Diagnostic counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn unix_now(&self, now: Instant) -> u64 {
        self.wall_origin.1 + now.saturating_duration_since(self.wall_origin.0).as_secs()
    }

    fn unix_now_u32(&self, now: Instant) -> u32 {
        u32::try_from(self.unix_now(now)).unwrap_or(u32::MAX)
    }

    /// Starts a fresh session: new session id, key_id 0, fresh wrapping replay state (§14.1).
    fn start_session(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        self.clock.set(self.unix_now(now));
        if let Ok(wrap) = new_wrap(self.protection()) {
            self.wrap = wrap;
        }
        self.key = None;
        self.server_keys = None;
        self.push = PushAccumulator::with_filters(
            self.config.pull_filters.clone(),
            self.config.route_nopull,
        );
        self.pushed = None;
        self.data = None;
        self.negotiated = None;
        self.send_keys = crate::peer::SendKeys::default();
        self.key_started = now;
        self.reneg_started = None;
        self.pending_soft_reset = None;
        self.old_key = None;
        self.next_push_request = None;
        self.handshake_deadline = now + Duration::from_secs(self.config.hand_window_secs);
        let poll_secs = self
            .current_remote()
            .and_then(|r| r.server_poll_timeout_secs)
            .unwrap_or(self.config.server_poll_timeout_secs);
        self.server_poll_deadline = now + Duration::from_secs(poll_secs);
        self.last_received = now;
        self.restart_at = None;
        self.state = State::Handshake;
        let tls = match TlsSession::client(self.tls_config.clone()) {
            Ok(t) => t,
            Err(e) => {
                self.exit(ExitReason::TlsSetup(e));
                return;
            }
        };
        let local_sid = SessionId::random(rng);
        let client_keys = ClientKeySource::random(rng);
        let km2 = match self.key_method2_message(&client_keys) {
            Ok(m) => m,
            Err(e) => {
                self.km2_refused(now, e);
                return;
            }
        };
        let reset = self.protection().reset_opcode();
        let start = KeyStart {
            key_id: KeyId::ZERO,
            local_sid,
            remote_sid: None,
            reset_opcode: reset,
            retransmit_ms: self.config.tls_timeout_ms,
        };
        self.key = Some(KeyState::new_client(start, tls, client_keys, km2));
    }

    /// Our key-method-2 message could not be built (a NUL byte in a string: only a pushed auth-token can
    /// still hold one once [`Engine::new`] checked the configuration). The token is dropped and the
    /// session starts again with the configured credentials.
    fn km2_refused(&mut self, now: Instant, e: session::Km2Error) {
        self.auth_token = None;
        self.reconnect(
            now,
            ReconnectReason::Handshake(HandshakeError::KeyMethod2(e)),
        );
    }

    fn key_method2_message(&self, keys: &ClientKeySource) -> Result<Vec<u8>, session::Km2Error> {
        let ciphers: Vec<&str> = self
            .config
            .data_ciphers
            .iter()
            .map(String::as_str)
            .filter(|c| DataCipher::from_name(c, self.config.auth).is_some())
            .collect();
        let ciphers = ciphers.join(":");
        let peer_info = PeerInfo {
            version: &self.config.peer_info_version,
            platform: &self.config.peer_info_platform,
            ciphers: &ciphers,
            mtu: self.config.tun_mtu.max(1600),
        }
        .to_text();
        let options = occ_options_string(self.transport(), self.config.tun_mtu);
        // A pushed auth-token replaces the password on renegotiations (§5.2).
        let token = self.auth_token.as_deref();
        let (user, pass) = match &self.config.auth_user_pass {
            Some((u, p)) => (Some(u.as_str()), Some(token.unwrap_or(p.as_str()))),
            None => (None, None),
        };
        session::emit_key_method2(keys, &options, user, pass, &peer_info)
    }

    fn exit(&mut self, reason: ExitReason) {
        if self.state != State::Exited {
            self.state = State::Exited;
            self.key = None;
            self.data = None;
            self.actions.push_back(Action::Exit(reason));
        }
    }

    fn reconnect(&mut self, now: Instant, reason: ReconnectReason) {
        // RESTART without the `N` flag keeps the server; every other failure tries the next remote.
        let advance = match &reason {
            ReconnectReason::ServerRestart(msg) => restart_flags(msg).contains('N'),
            _ => true,
        };
        self.reconnect_to(now, reason, advance);
    }

    fn reconnect_to(&mut self, now: Instant, reason: ReconnectReason, advance: bool) {
        if self.state == State::Exited {
            return;
        }
        log::warn!("reconnecting: {reason:?}");
        let was_connected = self.state == State::Connected;
        self.key = None;
        self.old_key = None;
        self.data = None;
        self.pushed = None;
        self.state = State::Connecting;
        self.transport_up = false;
        if !was_connected {
            self.failures = self.failures.saturating_add(1);
        }
        self.restart_at = Some(now + self.retry_delay());
        self.advance_remote = advance;
        self.actions.push_back(Action::Reconnect(reason));
    }

    /// The control-channel protection of the current remote (a `<connection>` block may have its own).
    fn protection(&self) -> &ControlProtection {
        self.config
            .remote_protection
            .get(self.remote_index)
            .and_then(Option::as_ref)
            .unwrap_or(&self.config.protection)
    }

    fn transport(&self) -> session::Transport {
        self.current_remote()
            .map_or(session::Transport::Udp4, |r| r.transport)
    }

    /// Handles one datagram from the remote. Data packets are decrypted in place and returned;
    /// control packets are consumed (then call [`poll_action`](Self::poll_action)).
    pub fn receive<'a>(&mut self, now: Instant, datagram: &'a mut [u8]) -> Received<'a> {
        match self.receive_in_place(now, datagram) {
            ReceivedAt::Packet(range) => datagram
                .get(range)
                .map_or(Received::Dropped, Received::Packet),
            ReceivedAt::Consumed => Received::Consumed,
            ReceivedAt::Dropped => Received::Dropped,
        }
    }

    /// [`receive`](Self::receive), returning where the decrypted packet lies in `datagram`, so that the
    /// caller can reuse the bytes in front of it (the router writes the LAN frame's Ethernet header there
    /// and sends the frame from the NIC's receive buffer the datagram arrived in).
    pub fn receive_in_place(&mut self, now: Instant, datagram: &mut [u8]) -> ReceivedAt {
        let Some(first) = datagram.first().copied() else {
            return ReceivedAt::Dropped;
        };
        let Ok(op) = OpKey::from_byte(first) else {
            return ReceivedAt::Dropped;
        };
        if op.opcode.is_data() {
            return self.receive_data(now, datagram);
        }
        self.receive_control(now, datagram);
        ReceivedAt::Consumed
    }

    /// Runs timers and returns the next action, or `None` when there is nothing to do before
    /// [`poll_at`](Self::poll_at).
    pub fn poll_action(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Option<Action> {
        self.clock.set(self.unix_now(now));
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        if self.state == State::Exited {
            return None;
        }
        if let Some(at) = self.restart_at {
            if now < at {
                return None;
            }
            self.restart_at = None;
            if !self.next_attempt(self.advance_remote) {
                self.exit(ExitReason::RetriesExhausted);
                return self.actions.pop_front();
            }
            self.request_connect();
            return self.actions.pop_front();
        }
        if self.state == State::Connecting {
            if !self.transport_up {
                return None;
            }
            self.start_session(now, rng);
        }
        self.run_timers(now);
        self.run_rekey_timers(now, rng);
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        if let Some(pkt) = self.poll_control_packet(now) {
            self.last_sent = now;
            return Some(Action::SendToRemote(self.frame(pkt)));
        }
        if let Some(pkt) = self.poll_keepalive(now, rng) {
            return Some(Action::SendToRemote(self.frame(pkt)));
        }
        None
    }

    fn is_tcp(&self) -> bool {
        matches!(
            self.transport(),
            session::Transport::Tcp4 | session::Transport::Tcp6
        )
    }

    /// Adds the TCP length prefix (§1.1) when the transport is TCP.
    fn frame(&self, packet: Vec<u8>) -> Vec<u8> {
        if !self.is_tcp() {
            return packet;
        }
        let mut framed = alloc::vec![0u8; PREFIX_LEN];
        if emit_prefix(packet.len(), &mut framed).is_err() {
            return Vec::new();
        }
        framed.extend_from_slice(&packet);
        framed
    }
}

#[cfg(test)]
mod tests;

/// The `[flags]` at the start of a RESTART message (`P` keep credentials, `N` next server, §8.1).
fn restart_flags(msg: &str) -> &str {
    msg.strip_prefix('[')
        .and_then(|m| m.split_once(']'))
        .map_or("", |(flags, _)| flags)
}
