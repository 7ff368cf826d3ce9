//! The sans-IO OpenVPN client engine: one entry point for the whole protocol.
//!
//! Layer: protocol state machine. Events in: [`Engine::receive`] (a datagram from the remote),
//! [`Engine::encapsulate`] (an IP packet for the tunnel), [`Engine::poll_action`] (time passes).
//! Actions out: [`Action`]s (bytes for the remote, tunnel up, reconnect, exit) and decrypted IP packets
//! returned in place from `receive`. [`Engine::poll_at`] says when to call again. The engine never reads
//! a clock, a random source or a socket: `now` is an argument, randomness comes from the caller's
//! `CryptoRngCore`, and the data path writes into caller buffers without allocating.
//!
//! Time: `now` is the caller's monotonic [`Instant`]; the wall clock (Unix seconds, for replay ids and
//! certificate validity) is given once at construction and advanced with `now`.

mod config;
mod connect;
mod from_config;
mod key_state;
mod rekey;
mod stream;

pub use config::{ControlProtection, EngineConfig};
pub use connect::RemoteSpec;
pub use from_config::FromConfigError;
pub use key_state::{HandshakeError, KeyEvent, KeyStart, KeyState, Phase};
pub use stream::{BadFrame, StreamDeframer};

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use rand_core::CryptoRngCore;
use rustls::ClientConfig;

use crate::crypto::control::ControlWrap;
use crate::crypto::{Compression, DataChannel, DataCipher, Digest, Inbound};
use crate::session::{
    self, occ_options_string, ClientKeySource, ControlMessage, PeerInfo, PushAccumulator,
    PushedConfig, ServerKeySource,
};
use crate::time::Instant;
use crate::tls::{self, TlsClient, TlsConfigError, WallClock};
use crate::wire::tcp::{emit_prefix, PREFIX_LEN};
use crate::wire::{ControlRepr, KeyId, OpKey, Opcode, SessionId};

/// Why the engine could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    /// The TLS configuration was rejected.
    Tls(TlsConfigError),
    /// The tls-crypt-v2 client key was rejected.
    TlsCryptV2Key,
    /// `data-ciphers` names no cipher the data channel implements.
    NoDataCipher,
    /// No `remote` is configured.
    NoRemote,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Tls(e) => write!(f, "{e}"),
            EngineError::TlsCryptV2Key => f.write_str("tls-crypt-v2: client key rejected"),
            EngineError::NoDataCipher => f.write_str("data-ciphers: no supported cipher"),
            EngineError::NoRemote => f.write_str("remote: none configured"),
        }
    }
}

/// Why the engine is reconnecting (a new session with new session ids follows automatically).
#[derive(Debug, Clone, PartialEq)]
pub enum ReconnectReason {
    /// Nothing authenticated arrived for `ping-restart` seconds.
    PingRestart,
    /// The handshake did not finish within `hand-window`.
    HandshakeTimeout,
    /// The handshake failed (TLS, key-method 2).
    Handshake(HandshakeError),
    /// The server sent `RESTART` (text after the comma).
    ServerRestart(String),
    /// The server sent `EXIT` (cc-exit) or an OCC exit.
    ServerExit,
    /// The PUSH_REPLY was unusable.
    BadPush(String),
    /// A data packet failed to decrypt over TCP (fatal there, §1.1).
    DataError(String),
    /// The caller reported that the transport could not be opened.
    TransportFailed,
}

/// Why the engine stopped for good.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitReason {
    /// `AUTH_FAILED` (reason text).
    AuthFailed(String),
    /// `HALT` (message).
    Halt(String),
    /// The server certificate was refused: do not retry with the same configuration.
    CertificateRejected(String),
    /// `connect-retry-max` rounds over the remotes failed.
    RetriesExhausted,
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
/// Largest wrapped control packet we ever build (the control buffer bound, §4).
const CONTROL_BUF: usize = 4096;

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
    send_keys: rekey::SendKeys,
    /// When the current key state started (reneg-sec, deferred window).
    key_started: Instant,
    /// When the running renegotiation started (hand-window), if one runs.
    reneg_started: Option<Instant>,
    /// A server SOFT_RESET (key_id, plain packet) waiting for `poll_action`'s randomness.
    pending_soft_reset: Option<(KeyId, Vec<u8>)>,
    actions: VecDeque<Action>,
    /// When the current session started (hand-window).
    session_start: Instant,
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
        let clock = WallClock::new(unix_secs);
        let tls_config =
            tls::client_config(&config.tls, clock.clone()).map_err(EngineError::Tls)?;
        let wrap = new_wrap(&config)?;
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
            send_keys: rekey::SendKeys::default(),
            key_started: now,
            reneg_started: None,
            pending_soft_reset: None,
            actions: VecDeque::new(),
            session_start: now,
            restart_at: None,
            advance_remote: false,
            remote_index: 0,
            transport_up: false,
            failures: 0,
            last_received: now,
            last_sent: now,
            next_push_request: None,
            plain: Vec::with_capacity(CONTROL_BUF),
            stats: Stats::default(),
        };
        let _ = rng;
        engine.request_connect();
        Ok(engine)
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
        if let Ok(wrap) = new_wrap(&self.config) {
            self.wrap = wrap;
        }
        self.key = None;
        self.server_keys = None;
        self.push = PushAccumulator::new();
        self.pushed = None;
        self.data = None;
        self.negotiated = None;
        self.send_keys = rekey::SendKeys::default();
        self.key_started = now;
        self.reneg_started = None;
        self.pending_soft_reset = None;
        self.next_push_request = None;
        self.session_start = now;
        self.last_received = now;
        self.restart_at = None;
        self.state = State::Handshake;
        let tls = match TlsClient::new(self.tls_config.clone()) {
            Ok(t) => t,
            Err(e) => {
                self.exit(ExitReason::CertificateRejected(e.to_string()));
                return;
            }
        };
        let local_sid = SessionId::random(rng);
        let client_keys = ClientKeySource::random(rng);
        let km2 = self.key_method2_message(&client_keys);
        let reset = match self.config.protection {
            ControlProtection::TlsCryptV2 { .. } => Opcode::ControlHardResetClientV3,
            _ => Opcode::ControlHardResetClientV2,
        };
        let start = KeyStart {
            key_id: KeyId::ZERO,
            local_sid,
            remote_sid: None,
            reset_opcode: reset,
            retransmit_ms: self.config.tls_timeout_ms,
        };
        self.key = Some(KeyState::new_client(start, tls, client_keys, km2));
    }

    fn key_method2_message(&self, keys: &ClientKeySource) -> Vec<u8> {
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
        let token = self.pushed.as_ref().and_then(|p| p.auth_token.as_deref());
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

    fn transport(&self) -> session::Transport {
        self.current_remote()
            .map_or(session::Transport::Udp4, |r| r.transport)
    }

    /// Handles one datagram from the remote. Data packets are decrypted in place and returned;
    /// control packets are consumed (then call [`poll_action`](Self::poll_action)).
    pub fn receive<'a>(&mut self, now: Instant, datagram: &'a mut [u8]) -> Received<'a> {
        let Some(first) = datagram.first().copied() else {
            return Received::Dropped;
        };
        let Ok(op) = OpKey::from_byte(first) else {
            return Received::Dropped;
        };
        if op.opcode.is_data() {
            return self.receive_data(now, datagram);
        }
        self.receive_control(now, datagram);
        Received::Consumed
    }

    fn receive_data<'a>(&mut self, now: Instant, datagram: &'a mut [u8]) -> Received<'a> {
        let Some(data) = self.data.as_mut() else {
            return Received::Dropped;
        };
        match data.decrypt(datagram, now) {
            Ok(Inbound::Ip(range)) => {
                self.last_received = now;
                match datagram.get(range) {
                    Some(p) => Received::Packet(p),
                    None => Received::Dropped,
                }
            }
            Ok(Inbound::Ping) => {
                self.last_received = now;
                self.stats.pings_received += 1;
                Received::Consumed
            }
            Ok(inbound) => {
                self.last_received = now;
                if inbound.is_exit() {
                    self.reconnect(now, ReconnectReason::ServerExit);
                }
                Received::Consumed
            }
            Err(e) => {
                self.stats.data_dropped += 1;
                if self.is_tcp() {
                    // Over TCP nothing is lost or reordered: a failure means a broken session (§1.1).
                    self.reconnect(now, ReconnectReason::DataError(alloc::format!("{e}")));
                }
                Received::Dropped
            }
        }
    }

    fn receive_control(&mut self, now: Instant, datagram: &[u8]) {
        self.plain.resize(CONTROL_BUF, 0);
        let len = match self.wrap.unwrap(datagram, now, &mut self.plain) {
            Ok(len) => len,
            Err(e) => {
                log::debug!("control packet dropped: {e}");
                self.stats.control_dropped += 1;
                return;
            }
        };
        let Some(key) = self.key.as_mut() else { return };
        let plain = self.plain.get(..len).unwrap_or_default();
        let repr = match ControlRepr::parse_bytes(plain) {
            Ok(r) => r,
            Err(e) => {
                log::debug!("control packet malformed: {e}");
                self.stats.control_dropped += 1;
                return;
            }
        };
        if repr.key_id != key.key_id() {
            // A SOFT_RESET on the next key_id starts a server-initiated renegotiation (§9); anything else
            // is out of sync ("key IDs out of sync") and dropped.
            let next = key.key_id().next();
            if repr.opcode == Opcode::ControlSoftResetV1
                && repr.key_id == next
                && self.state == State::Connected
            {
                self.last_received = now;
                self.pending_soft_reset = Some((next, plain.to_vec()));
            } else {
                log::debug!("control packet for key_id {} ignored", repr.key_id);
            }
            return;
        }
        self.last_received = now;
        let result = key.on_packet(&repr, now.as_millis());
        if let Err(e) = result {
            self.handshake_failed(now, e);
            return;
        }
        self.process_key_events(now);
    }

    fn handshake_failed(&mut self, now: Instant, e: HandshakeError) {
        if let HandshakeError::Tls(tls::TlsError::Tls(rustls::Error::InvalidCertificate(c))) = &e {
            self.exit(ExitReason::CertificateRejected(alloc::format!(
                "server certificate rejected: {c:?}"
            )));
            return;
        }
        self.reconnect(now, ReconnectReason::Handshake(e));
    }

    fn process_key_events(&mut self, now: Instant) {
        loop {
            let Some(event) = self.key.as_mut().and_then(KeyState::pop_event) else {
                return;
            };
            match event {
                KeyEvent::ServerKeys(keys) if self.state == State::Connected => {
                    self.finish_renegotiation(now, &keys);
                }
                KeyEvent::ServerKeys(keys) => {
                    self.server_keys = Some(keys);
                    if self.pushed.is_none() {
                        self.next_push_request = Some(now + PUSH_REQUEST_FIRST);
                    }
                }
                KeyEvent::Message(bytes) => self.handle_message(now, &bytes),
            }
            if self.state == State::Exited {
                return;
            }
        }
    }

    fn handle_message(&mut self, now: Instant, bytes: &[u8]) {
        match ControlMessage::parse(bytes) {
            ControlMessage::PushReply(text) => match self.push.feed(text) {
                Ok(Some(config)) => self.apply_push(now, config),
                Ok(None) => {}
                Err(e) => self.reconnect(now, ReconnectReason::BadPush(e.to_string())),
            },
            ControlMessage::AuthFailed(reason) => {
                log::warn!("AUTH_FAILED {reason}");
                self.exit(ExitReason::AuthFailed(reason.to_string()));
            }
            ControlMessage::Restart(msg) => {
                self.reconnect(now, ReconnectReason::ServerRestart(msg.to_string()))
            }
            ControlMessage::Halt(msg) => self.exit(ExitReason::Halt(msg.to_string())),
            ControlMessage::Exit => self.reconnect(now, ReconnectReason::ServerExit),
            ControlMessage::Info(text) => log::info!("server INFO: {text}"),
            ControlMessage::AuthPending(text) => {
                log::info!("server AUTH_PENDING {text}");
            }
            ControlMessage::Unknown(text) => log::info!("unknown control message ignored: {text}"),
            ControlMessage::Invalid => log::debug!("invalid control message dropped"),
        }
    }

    fn apply_push(&mut self, now: Instant, config: PushedConfig) {
        if self.pushed.is_some() {
            // A later PUSH_REPLY (e.g. auth-token refresh) only updates the token.
            if let (Some(p), Some(t)) = (self.pushed.as_mut(), config.auth_token) {
                p.auth_token = Some(t);
            }
            return;
        }
        self.next_push_request = None;
        let cipher_name = config
            .cipher
            .clone()
            .unwrap_or_else(|| String::from("BF-CBC"));
        // Accept only a cipher from our own list (§5.5).
        let ours = self
            .config
            .data_ciphers
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&cipher_name));
        let Some(cipher) = DataCipher::from_name(&cipher_name, self.config.auth).filter(|_| ours)
        else {
            self.reconnect(
                now,
                ReconnectReason::BadPush(alloc::format!(
                    "cipher {cipher_name} not in data-ciphers"
                )),
            );
            return;
        };
        if config.tls_ekm {
            self.reconnect(
                now,
                ReconnectReason::BadPush(String::from("server requires tls-ekm, not announced")),
            );
            return;
        }
        let compression = match config
            .compression
            .as_deref()
            .map(|c| c.split_ascii_whitespace().collect::<Vec<_>>())
        {
            None => self.config.compression,
            Some(words) => match words.as_slice() {
                ["comp-lzo", ..] => Compression::LzoStub,
                ["compress", "stub-v2" | "lz4-v2"] => Compression::StubV2,
                ["compress"] | ["compress", "stub" | "lz4" | "lzo"] => Compression::Stub,
                _ => {
                    log::warn!(
                        "pushed compression `{}` not understood, none used",
                        words.join(" ")
                    );
                    Compression::None
                }
            },
        };
        let (Some(key), Some(server)) = (self.key.take(), self.server_keys.clone()) else {
            return;
        };
        self.negotiated = Some((cipher, config.peer_id));
        let mut channel = DataChannel::new();
        channel.set_compression(compression);
        self.data = Some(channel);
        let installed = self.install_data_key(now, &key, &server);
        self.key = Some(key);
        if !installed {
            self.reconnect(
                now,
                ReconnectReason::BadPush(String::from("data key rejected")),
            );
            return;
        }
        self.state = State::Connected;
        self.failures = 0;
        self.last_received = now;
        log::info!(
            "tunnel up: cipher {cipher_name}, peer-id {:?}",
            config.peer_id
        );
        self.pushed = Some(config.clone());
        self.actions.push_back(Action::TunnelUp(config));
    }

    /// Encrypts an IP packet for the tunnel into `out` (the whole datagram for the remote); returns its
    /// length. No allocation.
    /// `out` needs `ip_packet.len() + 106` bytes; over TCP the output starts with the length prefix.
    /// `rng` supplies CBC IVs (unused by AEAD ciphers).
    pub fn encapsulate(
        &mut self,
        now: Instant,
        ip_packet: &[u8],
        out: &mut [u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<usize, SendError> {
        let key_id = self.send_keys.select(now);
        let prefix = if self.is_tcp() { PREFIX_LEN } else { 0 };
        let data = self.data.as_mut().ok_or(SendError::NotConnected)?;
        if let Some(id) = key_id {
            data.set_primary(id);
        }
        let body = out.get_mut(prefix..).ok_or(SendError::BufferTooSmall)?;
        let n = data.encrypt(ip_packet, body, rng).map_err(|e| match e {
            crate::crypto::DataError::BufferTooSmall => SendError::BufferTooSmall,
            _ => SendError::Crypto,
        })?;
        if prefix > 0 {
            emit_prefix(n, out).map_err(|_| SendError::BufferTooSmall)?;
        }
        let n = n + prefix;
        self.last_sent = now;
        Ok(n)
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

    fn run_timers(&mut self, now: Instant) {
        let since_rx = now.saturating_duration_since(self.last_received).as_secs();
        match self.state {
            State::Handshake => {
                let elapsed = now.saturating_duration_since(self.session_start).as_secs();
                if elapsed >= self.config.hand_window_secs {
                    self.reconnect(now, ReconnectReason::HandshakeTimeout);
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
                if let Some(limit) = self.ping_restart_secs() {
                    if since_rx >= limit {
                        self.reconnect(now, ReconnectReason::PingRestart);
                    }
                }
            }
            State::Exited | State::Connecting => {}
        }
    }

    fn ping_secs(&self) -> Option<u64> {
        self.pushed
            .as_ref()
            .and_then(|p| p.ping)
            .or(self.config.ping_secs)
            .filter(|s| *s > 0)
            .map(u64::from)
    }

    fn ping_restart_secs(&self) -> Option<u64> {
        self.pushed
            .as_ref()
            .and_then(|p| p.ping_restart)
            .or(self.config.ping_restart_secs)
            .filter(|s| *s > 0)
            .map(u64::from)
    }

    fn poll_control_packet(&mut self, now: Instant) -> Option<Vec<u8>> {
        let max = self.control_payload_room();
        let wkc_len = match &self.config.protection {
            ControlProtection::TlsCryptV2 { wkc, .. } => wkc.len(),
            _ => 0,
        };
        let key = self.key.as_mut()?;
        let mut plain = core::mem::take(&mut self.plain);
        let produced = key.poll_packet(now.as_millis(), max, wkc_len, &mut plain);
        let result = if produced {
            let unix = self.unix_now_u32(now);
            let mut out = alloc::vec![0u8; plain.len() + 128 + wkc_len];
            match self.wrap.wrap(&plain, unix, &mut out) {
                Ok(n) => {
                    out.truncate(n);
                    Some(out)
                }
                Err(e) => {
                    log::warn!("control packet not wrapped: {e}");
                    None
                }
            }
        } else {
            None
        };
        self.plain = plain;
        result
    }

    /// TLS payload room per control packet (§4): `max-packet-size` minus IP/UDP, wrapping, header, a full
    /// piggy-backed ACK block and the message-id.
    fn control_payload_room(&self) -> usize {
        let wrap = match &self.config.protection {
            ControlProtection::None => 0,
            ControlProtection::TlsAuth { digest, .. } => {
                8 + match digest {
                    Digest::Sha1 => 20,
                    Digest::Sha256 => 32,
                    Digest::Sha384 => 48,
                    Digest::Sha512 => 64,
                }
            }
            _ => 56,
        };
        let ip_udp = match self.transport() {
            session::Transport::Udp6 | session::Transport::Tcp6 => 48,
            _ => 28,
        };
        let header = 1 + 8 + (1 + 4 * 4 + 8) + 4;
        usize::from(self.config.max_packet_size.min(2048))
            .saturating_sub(ip_udp + wrap + header)
            .max(64)
    }

    fn poll_keepalive(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Option<Vec<u8>> {
        if self.state != State::Connected {
            return None;
        }
        let ping = self.ping_secs()?;
        if now.saturating_duration_since(self.last_sent).as_secs() < ping {
            return None;
        }
        let key_id = self.send_keys.select(now);
        let data = self.data.as_mut()?;
        if let Some(id) = key_id {
            data.set_primary(id);
        }
        let mut out = alloc::vec![0u8; 128];
        let n = data.encrypt_ping(&mut out, rng).ok()?;
        out.truncate(n);
        self.last_sent = now;
        self.stats.pings_sent += 1;
        Some(out)
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
        match self.state {
            State::Handshake => {
                take(self.session_start + Duration::from_secs(self.config.hand_window_secs));
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
                if let Some(t) = self.rekey_poll_at() {
                    take(t);
                }
            }
            State::Exited | State::Connecting => {}
        }
        at
    }
}

fn new_wrap(config: &EngineConfig) -> Result<ControlWrap, EngineError> {
    Ok(match &config.protection {
        ControlProtection::None => ControlWrap::none(),
        ControlProtection::TlsAuth {
            key,
            direction,
            digest,
        } => ControlWrap::tls_auth(key, *direction, *digest),
        ControlProtection::TlsCrypt { key } => ControlWrap::tls_crypt(key),
        ControlProtection::TlsCryptV2 { kc, wkc } => {
            ControlWrap::tls_crypt_v2(kc, wkc).map_err(|_| EngineError::TlsCryptV2Key)?
        }
    })
}

#[cfg(test)]
mod tests;

/// The `[flags]` at the start of a RESTART message (`P` keep credentials, `N` next server, §8.1).
fn restart_flags(msg: &str) -> &str {
    msg.strip_prefix('[')
        .and_then(|m| m.split_once(']'))
        .map_or("", |(flags, _)| flags)
}
