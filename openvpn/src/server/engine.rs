//! The sans-IO OpenVPN server: many clients, each one [`Client`] holding the same per-peer session core
//! the client engine uses (key states from [`crate::peer`], one control wrap with its own replay window,
//! a data channel with its send-key rule). UDP only for now: the first two packets of every client are
//! answered statelessly ([`super::handshake`], the HMAC cookie), and a client exists only once its third
//! packet proved it saw our reset.
//!
//! Events in: [`Server::receive`] (a datagram and its source), [`Server::encapsulate`] (an IP packet for
//! a client), [`Server::poll`] (time passes). Out: [`ServerAction`]s (bytes for an address, a client up or
//! gone) and decrypted packets returned in place with the client's peer-id. The server never reads a
//! clock or a random source: `now`, the wall clock and randomness are arguments.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use rand_core::CryptoRngCore;
use rustls::ServerConfig;

use super::cookie::InitialRateLimit;
use super::handshake::{Accepted, ClientKey, HandshakeCounters, Refused, StatelessHandshake};
use super::wkc::MetadataDisplay;
use crate::crypto::control::ControlWrap;
use crate::crypto::{DataChannel, DataCipher, DataKey, Digest, Inbound, ReplayWindow, Role};
use crate::peer::{self, ClientHelloInfo, KeyEvent, KeyStart, KeyState, Phase, SendKeys};
use crate::session::{self, ControlMessage, ServerKeySource};
use crate::time::Instant;
use crate::tls::TlsSession;
use crate::wire::{KeyId, OpKey, Opcode};

/// Refusal log lines allowed per 10 s.
pub const REFUSAL_LOG_BURST: u32 = 20;

/// What the server engine needs besides its TLS configuration.
#[derive(Debug, Clone)]
pub struct ServerParams {
    /// `data-ciphers`, in preference order.
    pub data_ciphers: Vec<String>,
    /// `data-ciphers-fallback`: the cipher of a client that cannot negotiate.
    pub data_ciphers_fallback: Option<String>,
    /// `auth` (CBC ciphers only).
    pub auth: Digest,
    /// `hand-window`, seconds.
    pub hand_window_secs: u64,
    /// `reneg-sec` (0 = never start one ourselves).
    pub reneg_secs: u64,
    /// `tran-window`, seconds.
    pub tran_window_secs: u64,
    /// `tls-timeout` (initial retransmit), milliseconds.
    pub tls_timeout_ms: u64,
    /// `ping` (keepalive's first value), seconds; 0 = none.
    pub ping_secs: u64,
    /// `ping-restart` (keepalive's second value, doubled on the server as OpenVPN does), seconds.
    pub ping_restart_secs: u64,
    /// `max-clients`: peer-ids are 0..max_clients.
    pub max_clients: u32,
    /// `replay-window N [T]`.
    pub replay_window: (u32, u64),
    /// The server's options (OCC) string in its key-method-2 message.
    pub options: String,
    /// TLS payload room per control packet.
    pub control_payload: usize,
}

/// A client's state as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// TLS and key-method 2 running.
    Handshake,
    /// Data keys installed; waiting for the PUSH_REQUEST.
    Authenticated,
    /// PUSH_REPLY sent: the client is up.
    Connected,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerAction {
    /// Send these bytes to that address (one UDP datagram).
    SendTo(SocketAddr, Vec<u8>),
    /// A client finished key-method 2: the caller decides (auth, address) and answers with
    /// [`Server::accept`] or [`Server::refuse`]. The client's certificate CN is given when it has one.
    Authenticate {
        /// The client's peer-id.
        peer_id: u32,
        /// The common name of its certificate.
        common_name: Option<String>,
        /// Username, password (or auth-token) and peer-info from its key-method-2 message.
        info: ClientHelloInfo,
    },
    /// The client asked for its configuration (PUSH_REQUEST) after being accepted: the caller answers
    /// with [`Server::push_reply`].
    PushRequest(u32),
    /// The client at that address is gone (EXIT, ping-restart, handshake timeout, refused); its peer-id
    /// is free again (a TCP caller closes the connection).
    ClientGone(u32, GoneReason, SocketAddr),
}

/// Why a client was removed.
#[derive(Debug, Clone, PartialEq)]
pub enum GoneReason {
    /// It sent EXIT (explicit-exit-notify).
    Exit,
    /// Nothing authenticated arrived for `ping-restart` seconds.
    PingRestart,
    /// The handshake did not finish within `hand-window`.
    HandshakeTimeout,
    /// TLS or key-method 2 failed.
    Handshake(peer::HandshakeError),
    /// The caller refused it ([`Server::refuse`]).
    Refused,
    /// No cipher both sides support.
    NoCipher,
    /// A new session with the same common name took its place (no `duplicate-cn`).
    Replaced,
    /// Its TCP connection closed.
    TransportClosed,
}

/// What [`Server::receive`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerReceived {
    /// An IP packet from this client, decrypted in place at this range of the datagram.
    Packet(u32, core::ops::Range<usize>),
    /// Consumed (control, keepalive); call [`Server::poll`].
    Consumed,
    /// Dropped; counted.
    Dropped,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Datagrams that matched no client and were not a valid first or third packet.
    pub unknown_dropped: u64,
    /// Control packets of known clients refused by their wrap.
    pub control_dropped: u64,
    /// Data packets refused (authentication, replay, unknown peer-id).
    pub data_dropped: u64,
    /// Decrypted packets whose source is not the client's tunnel address.
    pub spoofed_dropped: u64,
    /// Clients that moved to a new address (float).
    pub floats: u64,
    /// Third packets refused for a table already holding `max-clients` clients.
    pub full: u64,
}

/// One connected (or connecting) client.
struct Client {
    addr: SocketAddr,
    wrap: ControlWrap,
    key: Option<KeyState>,
    old_key: Option<KeyState>,
    data: DataChannel,
    send_keys: SendKeys,
    cipher: Option<DataCipher>,
    state: ClientState,
    started: Instant,
    key_started: Instant,
    reneg_started: Option<Instant>,
    last_received: Instant,
    last_sent: Instant,
    /// The tunnel address the caller gave in [`Server::accept`] (anti-spoofing).
    vaddr: Option<[u8; 4]>,
    accepted: bool,
    /// The PUSH_REPLY message(s) for this client, whether they still wait for the client to acknowledge
    /// our key-method-2 message, and when they were last sent.
    push: Option<PushState>,
    /// A renegotiated data key waits for the client to acknowledge our key-method-2 message before the
    /// server sends with it.
    activate_on_ack: bool,
    /// Tunnel bytes (IP packets) received from and sent to the client.
    bytes_in: u64,
    bytes_out: u64,
    /// Wall-clock seconds when the client was created.
    since_unix: u64,
}

/// A client's PUSH_REPLY and its sending.
#[derive(Debug, Clone)]
struct PushState {
    messages: Vec<String>,
    /// Sent once the client acknowledged everything before it: a PUSH_REPLY in the same flight as our
    /// key-method-2 message is parked and lost by OpenVPN 3 clients (they read it before their key state
    /// is active).
    pending: bool,
    sent_at: Option<Instant>,
}

/// A client's figures for the status output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSnapshot {
    /// Where it connects from.
    pub addr: SocketAddr,
    /// Its state.
    pub state: ClientState,
    /// Tunnel bytes received from it.
    pub bytes_in: u64,
    /// Tunnel bytes sent to it.
    pub bytes_out: u64,
    /// Unix time it connected.
    pub since_unix: u64,
    /// Its data cipher, once negotiated.
    pub cipher: Option<DataCipher>,
}

impl Client {
    /// Starts the next key_id's server key state (a renegotiation, §9, begun by either side: its
    /// SOFT_RESET goes out first); the current key state becomes the lame duck. False when the TLS
    /// session or the key-method-2 message could not be made.
    fn renegotiate(
        &mut self,
        now: Instant,
        tls: Arc<ServerConfig>,
        (options, retransmit_ms): (&str, u64),
        rng: &mut dyn CryptoRngCore,
    ) -> bool {
        let Some(key) = self.key.as_ref() else {
            return false;
        };
        let (Some(remote), key_id, local_sid) = (key.remote_sid(), key.key_id(), key.local_sid())
        else {
            return false;
        };
        let Ok(tls) = TlsSession::server(tls) else {
            return false;
        };
        let keys = ServerKeySource::random(rng);
        let Ok(km2) = session::emit_server_key_method2(&keys, options) else {
            return false;
        };
        let start = KeyStart {
            key_id: key_id.next(),
            local_sid,
            remote_sid: Some(remote),
            reset_opcode: Opcode::ControlSoftResetV1,
            retransmit_ms,
        };
        self.old_key = self
            .key
            .replace(KeyState::new_server(start, tls, keys, km2));
        self.key_started = now;
        self.reneg_started = Some(now);
        true
    }
}

/// The server engine. See the module docs.
pub struct Server {
    params: ServerParams,
    tls: Arc<ServerConfig>,
    handshake: StatelessHandshake,
    limit: InitialRateLimit,
    /// Bounds the refusal lines on the console.
    log_limit: InitialRateLimit,
    counters: HandshakeCounters,
    /// Indexed by peer-id; boxed, so an empty slot costs a pointer, not a client (the table is as long
    /// as `max-clients` from the start).
    clients: Vec<Option<Box<Client>>>,
    /// Clients with control-channel work since the last poll (input, a push, a refusal): polled first.
    dirty: Vec<u32>,
    /// The earliest timer of any client, as of the last full sweep (and the dirty clients since): a poll
    /// before it looks at the dirty clients only, so a data packet costs no walk over every client.
    sweep_at: Instant,
    by_addr: BTreeMap<SocketAddr, u32>,
    actions: VecDeque<ServerAction>,
    wall_origin: (Instant, u64),
    plain: Vec<u8>,
    stats: ServerStats,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("clients", &self.by_addr.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Server {
    /// A server with no clients. `handshake` answers unknown peers statelessly; `limit` bounds its
    /// replies (`connect-freq-initial`). `unix_secs` is the wall-clock time at `now`.
    pub fn new(
        params: ServerParams,
        tls: Arc<ServerConfig>,
        (handshake, limit): (StatelessHandshake, InitialRateLimit),
        now: Instant,
        unix_secs: u64,
    ) -> Self {
        let slots = usize::try_from(params.max_clients).unwrap_or(0);
        let mut clients = Vec::new();
        clients.resize_with(slots, || None);
        Server {
            params,
            tls,
            handshake,
            limit,
            log_limit: InitialRateLimit::new(REFUSAL_LOG_BURST, 10),
            counters: HandshakeCounters::default(),
            clients,
            dirty: Vec::new(),
            sweep_at: now,
            by_addr: BTreeMap::new(),
            actions: VecDeque::new(),
            wall_origin: (now, unix_secs),
            plain: Vec::with_capacity(peer::control::CONTROL_BUF),
            stats: ServerStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// The stateless handshake's tallies (replies, sessions created, refusals by reason).
    pub fn handshake_counters(&self) -> &HandshakeCounters {
        &self.counters
    }

    /// How many clients exist (connecting or connected).
    pub fn client_count(&self) -> usize {
        self.by_addr.len()
    }

    /// A client's state, address and tunnel address.
    pub fn client(&self, peer_id: u32) -> Option<(ClientState, SocketAddr)> {
        let c = self.slot(peer_id)?;
        Some((c.state, c.addr))
    }

    /// Every client's peer-id, in order.
    pub fn peer_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some())
            .filter_map(|(i, _)| u32::try_from(i).ok())
    }

    /// A client's figures for the status output.
    pub fn snapshot(&self, peer_id: u32) -> Option<ClientSnapshot> {
        let c = self.slot(peer_id)?;
        Some(ClientSnapshot {
            addr: c.addr,
            state: c.state,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            since_unix: c.since_unix,
            cipher: c.cipher,
        })
    }

    /// The peer-id of the client at `addr`.
    pub fn peer_at(&self, addr: SocketAddr) -> Option<u32> {
        self.by_addr.get(&addr).copied()
    }

    fn slot(&self, peer_id: u32) -> Option<&Client> {
        self.clients
            .get(usize::try_from(peer_id).ok()?)
            .and_then(Option::as_deref)
    }

    fn slot_mut(&mut self, peer_id: u32) -> Option<&mut Client> {
        self.clients
            .get_mut(usize::try_from(peer_id).ok()?)
            .and_then(Option::as_deref_mut)
    }

    /// Unix seconds at `now` (the wall clock given at construction, advanced with `now`).
    pub fn unix_at(&self, now: Instant) -> u64 {
        self.unix_now(now)
    }

    fn unix_now(&self, now: Instant) -> u64 {
        self.wall_origin.1 + now.saturating_duration_since(self.wall_origin.0).as_secs()
    }

    /// A datagram from an address without a client: a first packet is answered statelessly (the cookie
    /// reset), a third packet that echoes the cookie creates the client; anything else is dropped and
    /// counted. No state is kept for a peer before its third packet.
    fn receive_unknown(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> ServerReceived {
        let unix = self.unix_now(now);
        let first = datagram
            .first()
            .and_then(|b| OpKey::from_byte(*b).ok())
            .is_some_and(|op| {
                matches!(
                    op.opcode,
                    Opcode::ControlHardResetClientV2 | Opcode::ControlHardResetClientV3
                )
            });
        if first {
            let mut out = alloc::vec![0u8; 256];
            let outcome =
                self.handshake
                    .on_initial(datagram, from, unix, now, &mut self.limit, &mut out);
            self.counters.note_initial(&outcome);
            return match outcome {
                Ok(reply) => {
                    out.truncate(reply.len);
                    self.actions.push_back(ServerAction::SendTo(from, out));
                    ServerReceived::Consumed
                }
                Err(refused) => {
                    self.log_refusal(now, from, refused);
                    ServerReceived::Dropped
                }
            };
        }
        let outcome = self.handshake.on_third(datagram, from, unix, now);
        self.counters.note_third(&outcome);
        if let Err(refused) = &outcome {
            self.log_refusal(now, from, *refused);
        }
        match outcome {
            Ok(accepted) => match self.add_client(now, from, accepted, rng) {
                Some(_) => ServerReceived::Consumed,
                None => ServerReceived::Dropped,
            },
            Err(_) => {
                self.stats.unknown_dropped += 1;
                ServerReceived::Dropped
            }
        }
    }

    /// Logs why a peer's first packets were refused, when the reason is one an operator must see (a
    /// client key that does not authenticate, a revoked or expired client key), at most
    /// [`REFUSAL_LOG_BURST`] lines per 10 s: a flood cannot fill the console.
    fn log_refusal(&mut self, now: Instant, from: SocketAddr, refused: Refused) {
        if !matches!(refused, Refused::Wkc(_) | Refused::Policy(_)) || !self.log_limit.allow(now) {
            return;
        }
        match refused {
            Refused::Wkc(e) => {
                log::warn!("{from} tls-crypt-v2 client key authentication failed: {e}")
            }
            Refused::Policy(p) => log::warn!("{from} tls-crypt-v2 client key refused: {p}"),
            _ => {}
        }
    }

    /// Creates a client from a third packet the stateless handshake accepted, then feeds it that packet
    /// (which may carry the start of the ClientHello). Refused (counted) when `max-clients` clients
    /// exist.
    fn add_client(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        accepted: Accepted,
        rng: &mut dyn CryptoRngCore,
    ) -> Option<u32> {
        let Accepted {
            client_sid,
            server_sid,
            wrap,
            plain,
            client_key,
        } = accepted;
        if let Some(ClientKey { metadata, .. }) = &client_key {
            log::info!(
                "{addr} tls-crypt-v2 client key: {}",
                MetadataDisplay(metadata)
            );
        }
        if let Some(old) = self.by_addr.get(&addr).copied() {
            // A new session from the same address replaces the old one (a client restarted).
            self.remove(old, GoneReason::Exit);
        }
        let Some(index) = self.clients.iter().position(Option::is_none) else {
            self.stats.full += 1;
            if self.log_limit.allow(now) {
                log::warn!("{addr} refused: max-clients {} reached", self.clients.len());
            }
            return None;
        };
        let peer_id = u32::try_from(index).ok()?;
        let tls = TlsSession::server(self.tls.clone()).ok()?;
        let keys = ServerKeySource::random(rng);
        let km2 = session::emit_server_key_method2(&keys, &self.params.options).ok()?;
        let start = KeyStart {
            key_id: KeyId::ZERO,
            local_sid: server_sid,
            remote_sid: Some(client_sid),
            reset_opcode: Opcode::ControlHardResetServerV2,
            retransmit_ms: self.params.tls_timeout_ms,
        };
        let mut key = KeyState::new_server(start, tls, keys, km2);
        key.resets_exchanged();
        let client = Client {
            addr,
            wrap,
            key: Some(key),
            old_key: None,
            data: DataChannel::new(),
            send_keys: SendKeys::default(),
            cipher: None,
            state: ClientState::Handshake,
            started: now,
            key_started: now,
            reneg_started: None,
            last_received: now,
            last_sent: now,
            vaddr: None,
            accepted: false,
            push: None,
            activate_on_ack: false,
            bytes_in: 0,
            bytes_out: 0,
            since_unix: self.unix_now(now),
        };
        if let Some(slot) = self.clients.get_mut(index) {
            *slot = Some(Box::new(client));
        }
        self.by_addr.insert(addr, peer_id);
        if let Ok(repr) = crate::wire::ControlRepr::parse_bytes(&plain) {
            self.dispatch(now, peer_id, &repr, rng);
        }
        Some(peer_id)
    }

    /// Handles one datagram from `from`. Data packets are decrypted in place and returned with the
    /// client's peer-id; control packets are consumed (those of unknown addresses by the stateless
    /// handshake).
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
        rng: &mut dyn CryptoRngCore,
    ) -> ServerReceived {
        let Some(op) = datagram.first().and_then(|b| OpKey::from_byte(*b).ok()) else {
            self.stats.unknown_dropped += 1;
            return ServerReceived::Dropped;
        };
        if op.opcode.is_data() {
            return self.receive_data(now, from, op.opcode, datagram);
        }
        let Some(peer_id) = self.by_addr.get(&from).copied() else {
            return self.receive_unknown(now, from, datagram, rng);
        };
        let mut plain = core::mem::take(&mut self.plain);
        let result = match self.slot_mut(peer_id) {
            Some(c) => peer::control::unwrap(&mut c.wrap, datagram, now, &mut plain),
            None => Err(peer::control::ControlDrop::Malformed),
        };
        let out = match result {
            Ok(repr) => {
                self.dispatch(now, peer_id, &repr, rng);
                ServerReceived::Consumed
            }
            Err(_) => {
                self.stats.control_dropped += 1;
                ServerReceived::Dropped
            }
        };
        self.plain = plain;
        out
    }

    fn receive_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        opcode: Opcode,
        datagram: &mut [u8],
    ) -> ServerReceived {
        // P_DATA_V2 names its client by peer-id (§6.1): that is what makes float possible.
        let peer_id = match opcode {
            Opcode::DataV2 => datagram
                .get(1..4)
                .and_then(|b| <[u8; 3]>::try_from(b).ok())
                .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c])),
            _ => self.by_addr.get(&from).copied(),
        };
        let Some(peer_id) = peer_id else {
            self.stats.data_dropped += 1;
            return ServerReceived::Dropped;
        };
        let Some(client) = self.slot_mut(peer_id) else {
            self.stats.data_dropped += 1;
            return ServerReceived::Dropped;
        };
        let inbound = match client.data.decrypt(datagram, now) {
            Ok(i) => i,
            Err(e) => {
                log::debug!("peer-id {peer_id}: data packet dropped: {e}");
                self.stats.data_dropped += 1;
                return ServerReceived::Dropped;
            }
        };
        client.last_received = now;
        let moved = client.addr != from;
        if moved {
            // Float: the packet authenticated under this client's key, so it is the client.
            let old = core::mem::replace(&mut client.addr, from);
            self.by_addr.remove(&old);
            if let Some(other) = self.by_addr.insert(from, peer_id) {
                if other != peer_id {
                    self.remove(other, GoneReason::Exit);
                    self.by_addr.insert(from, peer_id);
                }
            }
            self.stats.floats += 1;
            log::info!("peer-id {peer_id} floated to {from}");
        }
        let Some(client) = self.slot(peer_id) else {
            return ServerReceived::Dropped;
        };
        match inbound {
            Inbound::Ip(range) => {
                let ip = datagram.get(range.clone()).unwrap_or_default();
                // Anti-spoofing: an IPv4 packet's source must be the client's tunnel address.
                let src = ip.get(12..16);
                let ok = match (ip.first().map(|b| b >> 4), client.vaddr) {
                    (Some(4), Some(v)) => src == Some(&v[..]),
                    _ => false,
                };
                if !ok {
                    self.stats.spoofed_dropped += 1;
                    return ServerReceived::Dropped;
                }
                let len = u64::try_from(range.len()).unwrap_or(0);
                if let Some(c) = self.slot_mut(peer_id) {
                    c.bytes_in = c.bytes_in.saturating_add(len);
                }
                ServerReceived::Packet(peer_id, range)
            }
            // explicit-exit-notify: the client leaves now; its slot and address are free at once.
            exit if exit.is_exit() => {
                self.remove(peer_id, GoneReason::Exit);
                ServerReceived::Consumed
            }
            _ => ServerReceived::Consumed,
        }
    }

    /// Hands an unwrapped control packet of a client to the key state of its key_id.
    fn dispatch(
        &mut self,
        now: Instant,
        peer_id: u32,
        repr: &crate::wire::ControlRepr<'_>,
        rng: &mut dyn CryptoRngCore,
    ) {
        let params_timeout = self.params.tls_timeout_ms;
        let options = self.params.options.clone();
        let tls = self.tls.clone();
        let Some(c) = self.slot_mut(peer_id) else {
            return;
        };
        c.last_received = now;
        let current = c.key.as_ref().map(KeyState::key_id);
        let result = if Some(repr.key_id) == current {
            c.key.as_mut().map(|k| k.on_packet(repr, now.as_millis()))
        } else if c.old_key.as_ref().map(KeyState::key_id) == Some(repr.key_id) {
            c.old_key
                .as_mut()
                .map(|k| k.on_packet(repr, now.as_millis()))
        } else if repr.opcode == Opcode::ControlSoftResetV1
            && current.map(KeyId::next) == Some(repr.key_id)
            && c.state != ClientState::Handshake
        {
            // The client starts a renegotiation (§9): a new server key state answers its SOFT_RESET.
            if !c.renegotiate(now, tls, (&options, params_timeout), rng) {
                return;
            }
            c.key.as_mut().map(|k| k.on_packet(repr, now.as_millis()))
        } else {
            None
        };
        if let Some(Err(e)) = result {
            let why = match &e {
                peer::HandshakeError::Tls(crate::tls::TlsError::Tls(t)) => {
                    crate::tls::peer_rejection_reason(t, "client")
                }
                _ => None,
            };
            let addr = self.slot(peer_id).map(|c| c.addr);
            match (addr, why) {
                (Some(a), Some(why)) => log::warn!("{a} TLS handshake failed: {why}"),
                (Some(a), None) => log::warn!("{a} TLS handshake failed: {e}"),
                _ => {}
            }
            self.remove(peer_id, GoneReason::Handshake(e));
            return;
        }
        self.mark_dirty(peer_id);
        self.process_events(now, peer_id);
    }

    /// Notes that a client has control-channel work for the next [`poll`](Self::poll).
    fn mark_dirty(&mut self, peer_id: u32) {
        if !self.dirty.contains(&peer_id) {
            self.dirty.push(peer_id);
        }
    }

    fn process_events(&mut self, now: Instant, peer_id: u32) {
        loop {
            let Some(c) = self.slot_mut(peer_id) else {
                return;
            };
            let Some(event) = c.key.as_mut().and_then(KeyState::pop_event) else {
                return;
            };
            match event {
                KeyEvent::ClientKeys(info) => self.on_client_keys(now, peer_id, info),
                KeyEvent::ServerKeys(_) => {}
                KeyEvent::Message(bytes) => self.on_message(now, peer_id, &bytes),
            }
        }
    }

    /// The client's key-method-2 message arrived: negotiate the cipher and install the data key; the
    /// first time, ask the caller to authenticate the client.
    fn on_client_keys(&mut self, now: Instant, peer_id: u32, info: ClientHelloInfo) {
        let params = &self.params;
        let cipher = negotiate(
            &params.data_ciphers,
            params.data_ciphers_fallback.as_deref(),
            &info.peer_info,
            params.auth,
        );
        let deferred =
            Duration::from_secs(params.hand_window_secs.min(if params.reneg_secs == 0 {
                u64::MAX
            } else {
                params.reneg_secs / 2
            }));
        let tran_window = Duration::from_secs(params.tran_window_secs);
        let replay = params.replay_window;
        let Some(c) = self.slot_mut(peer_id) else {
            return;
        };
        // A renegotiation keeps the cipher of the session.
        let Some(cipher) = c.cipher.or(cipher) else {
            self.remove(peer_id, GoneReason::NoCipher);
            return;
        };
        c.cipher = Some(cipher);
        let Some(key) = c.key.as_ref() else { return };
        let (Some(key2), key_id) = (key.derive_key2(), key.key_id()) else {
            return;
        };
        let window = ReplayWindow::new(replay.0, Duration::from_secs(replay.1));
        let Ok(data_key) = DataKey::new(cipher, &key2, Role::Server, key_id, Some(peer_id), window)
        else {
            self.remove(peer_id, GoneReason::NoCipher);
            return;
        };
        // A server sends on a renegotiated key once the client has acknowledged our key-method-2 message
        // (it holds the key then: OpenVPN's S_ACTIVE), not after a client's deferred window: OpenVPN 3
        // drops its old key right after the handshake. The window stays the upper bound.
        let renegotiated = c.send_keys.newest.is_some();
        let deferred_until = if renegotiated {
            c.key_started + deferred
        } else {
            now
        };
        c.activate_on_ack = renegotiated;
        c.send_keys
            .install(&mut c.data, data_key, now, deferred_until, tran_window);
        c.reneg_started = None;
        if c.state == ClientState::Handshake {
            c.state = ClientState::Authenticated;
            let common_name = c
                .key
                .as_ref()
                .and_then(KeyState::peer_certificates)
                .and_then(|chain| chain.first())
                .and_then(|leaf| crate::tls::x509::common_name(leaf.as_ref()));
            self.actions.push_back(ServerAction::Authenticate {
                peer_id,
                common_name,
                info,
            });
        }
    }

    fn on_message(&mut self, now: Instant, peer_id: u32, bytes: &[u8]) {
        let Some(c) = self.slot(peer_id) else { return };
        let accepted = c.accepted;
        let connected = c.state == ClientState::Connected;
        match ControlMessage::parse(bytes) {
            ControlMessage::Unknown(text) if text.starts_with("PUSH_REQUEST") => {
                if accepted && !connected {
                    self.actions.push_back(ServerAction::PushRequest(peer_id));
                } else if connected {
                    // Asked again: the same PUSH_REPLY, at most once a second (OpenVPN 2.x answers every
                    // PUSH_REQUEST too; a client that lost or parked the first asks every few seconds).
                    self.resend_push(now, peer_id);
                }
            }
            ControlMessage::Exit => self.remove(peer_id, GoneReason::Exit),
            _ => log::debug!("peer-id {peer_id}: control message ignored"),
        }
    }

    /// The caller accepts the client that asked in [`ServerAction::Authenticate`], with its tunnel
    /// address (its packets must come from it).
    pub fn accept(&mut self, peer_id: u32, vaddr: [u8; 4]) {
        if let Some(c) = self.slot_mut(peer_id) {
            c.accepted = true;
            c.vaddr = Some(vaddr);
        }
        self.mark_dirty(peer_id);
    }

    /// The caller refuses the client: `AUTH_FAILED` is sent, and the client is removed.
    pub fn refuse(&mut self, now: Instant, peer_id: u32, reason: &str) {
        let mut text = String::from("AUTH_FAILED");
        if !reason.is_empty() {
            text.push(',');
            text.push_str(reason);
        }
        if let Some(k) = self.slot_mut(peer_id).and_then(|c| c.key.as_mut()) {
            let _ = k.send_message(&text);
        }
        // Flush the AUTH_FAILED before the state goes.
        while let Some(pkt) = self.poll_client(now, peer_id) {
            if let Some(c) = self.slot(peer_id) {
                self.actions.push_back(ServerAction::SendTo(c.addr, pkt));
            }
        }
        self.remove(peer_id, GoneReason::Refused);
    }

    /// Sends the client its PUSH_REPLY message(s) (built by the caller) once it has acknowledged our
    /// key-method-2 message; the client is up.
    pub fn push_reply(&mut self, peer_id: u32, messages: &[String]) {
        self.mark_dirty(peer_id);
        let Some(c) = self.slot_mut(peer_id) else {
            return;
        };
        c.push = Some(PushState {
            messages: messages.to_vec(),
            pending: true,
            sent_at: None,
        });
        c.state = ClientState::Connected;
    }

    /// Sends a pending PUSH_REPLY when the client's current key state has nothing unacknowledged.
    fn send_pending_push(&mut self, now: Instant, peer_id: u32) {
        let Some(c) = self.slot_mut(peer_id) else {
            return;
        };
        let (Some(push), Some(key)) = (c.push.as_mut(), c.key.as_mut()) else {
            return;
        };
        if !push.pending || !key.all_acked() {
            return;
        }
        for m in &push.messages {
            let _ = key.send_message(m);
        }
        push.pending = false;
        push.sent_at = Some(now);
    }

    /// A connected client asked for its configuration again.
    fn resend_push(&mut self, now: Instant, peer_id: u32) {
        let Some(c) = self.slot_mut(peer_id) else {
            return;
        };
        let (Some(push), Some(key)) = (c.push.as_mut(), c.key.as_mut()) else {
            return;
        };
        if push.pending
            || push
                .sent_at
                .is_some_and(|at| now < at + Duration::from_secs(1))
        {
            return;
        }
        for m in &push.messages {
            let _ = key.send_message(m);
        }
        push.sent_at = Some(now);
        self.mark_dirty(peer_id);
    }

    /// The cipher negotiated with a client.
    pub fn cipher(&self, peer_id: u32) -> Option<DataCipher> {
        self.slot(peer_id).and_then(|c| c.cipher)
    }

    /// Drops a client at once (its slot and address are free; a [`ServerAction::ClientGone`] follows).
    pub fn disconnect(&mut self, peer_id: u32, reason: GoneReason) {
        self.remove(peer_id, reason);
    }

    fn remove(&mut self, peer_id: u32, reason: GoneReason) {
        let Some(slot) = usize::try_from(peer_id)
            .ok()
            .and_then(|i| self.clients.get_mut(i))
        else {
            return;
        };
        if let Some(c) = slot.take() {
            if self.by_addr.get(&c.addr) == Some(&peer_id) {
                self.by_addr.remove(&c.addr);
            }
            self.actions
                .push_back(ServerAction::ClientGone(peer_id, reason, c.addr));
        }
    }

    /// Encrypts `ip` for client `peer_id` into `out`; returns the address to send to and the length.
    pub fn encapsulate(
        &mut self,
        now: Instant,
        peer_id: u32,
        ip: &[u8],
        out: &mut [u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Option<(SocketAddr, usize)> {
        let c = self.slot_mut(peer_id)?;
        if c.state != ClientState::Connected {
            return None;
        }
        let key_id = c.send_keys.send_key_id(Some(&c.data), now)?;
        c.data.set_primary(key_id);
        let n = c.data.encrypt(ip, out, rng).ok()?;
        c.last_sent = now;
        c.bytes_out = c
            .bytes_out
            .saturating_add(u64::try_from(ip.len()).unwrap_or(0));
        Some((c.addr, n))
    }

    fn poll_client(&mut self, now: Instant, peer_id: u32) -> Option<Vec<u8>> {
        let unix = u32::try_from(self.unix_now(now)).unwrap_or(u32::MAX);
        let room = self.params.control_payload;
        let mut plain = core::mem::take(&mut self.plain);
        let packet = self.slot_mut(peer_id).and_then(|c| {
            let p = peer::control::poll_packet(
                &mut c.wrap,
                c.key.as_mut(),
                c.old_key.as_mut(),
                now,
                (room, 0),
                unix,
                &mut plain,
            );
            if p.is_some() {
                c.last_sent = now;
            }
            p
        });
        self.plain = plain;
        packet
    }

    /// Runs the clients' timers and control channels and returns the next action: the clients with new
    /// control-channel work at once, every client when the earliest timer is due.
    pub fn poll(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Option<ServerAction> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        let dirty = core::mem::take(&mut self.dirty);
        for &peer_id in &dirty {
            self.service_client(now, peer_id, rng);
        }
        if now >= self.sweep_at {
            let ids: Vec<u32> = self.by_addr.values().copied().collect();
            for peer_id in ids {
                self.service_client(now, peer_id, rng);
            }
            self.sweep_at = self
                .earliest_timer()
                .unwrap_or(now + Duration::from_secs(3600));
        } else {
            for peer_id in dirty {
                if let Some(at) = self.slot(peer_id).and_then(|c| self.client_timer(c)) {
                    self.sweep_at = self.sweep_at.min(at);
                }
            }
        }
        self.actions.pop_front()
    }

    /// One client's timers, then every control packet it has to send.
    fn service_client(&mut self, now: Instant, peer_id: u32, rng: &mut dyn CryptoRngCore) {
        self.run_timers(now, peer_id, rng);
        self.send_pending_push(now, peer_id);
        if let Some(c) = self.slot_mut(peer_id) {
            if c.activate_on_ack && c.key.as_ref().is_some_and(KeyState::all_acked) {
                c.activate_on_ack = false;
                if let Some(newest) = c.send_keys.newest.as_mut() {
                    newest.deferred_until = now;
                }
            }
        }
        while let Some(pkt) = self.poll_client(now, peer_id) {
            if let Some(c) = self.slot(peer_id) {
                self.actions.push_back(ServerAction::SendTo(c.addr, pkt));
            }
        }
    }

    fn run_timers(&mut self, now: Instant, peer_id: u32, rng: &mut dyn CryptoRngCore) {
        let p = &self.params;
        let (hand, ping, restart, reneg) = (
            Duration::from_secs(p.hand_window_secs),
            p.ping_secs,
            p.ping_restart_secs,
            p.reneg_secs,
        );
        let options = p.options.clone();
        let timeout = p.tls_timeout_ms;
        let tls = self.tls.clone();
        let Some(c) = self.slot_mut(peer_id) else {
            return;
        };
        if c.state == ClientState::Handshake && now >= c.started + hand {
            self.remove(peer_id, GoneReason::HandshakeTimeout);
            return;
        }
        if let Some(started) = c.reneg_started {
            if now >= started + hand {
                self.remove(peer_id, GoneReason::HandshakeTimeout);
                return;
            }
        }
        if restart > 0 && now >= c.last_received + Duration::from_secs(restart) {
            self.remove(peer_id, GoneReason::PingRestart);
            return;
        }
        if c.send_keys.expire_lame_duck(Some(&mut c.data), now) {
            c.old_key = None;
        }
        // reneg-sec on the server too: a SOFT_RESET on the next key_id.
        if reneg > 0
            && c.state == ClientState::Connected
            && c.reneg_started.is_none()
            && now >= c.key_started + Duration::from_secs(reneg)
        {
            c.renegotiate(now, tls, (&options, timeout), rng);
        }
        // Keepalive: a ping when nothing was sent for `ping` seconds.
        if ping > 0
            && c.state == ClientState::Connected
            && now >= c.last_sent + Duration::from_secs(ping)
        {
            if let Some(key_id) = c.send_keys.send_key_id(Some(&c.data), now) {
                c.data.set_primary(key_id);
                let mut out = alloc::vec![0u8; 128];
                if let Ok(n) = c.data.encrypt_ping(&mut out, rng) {
                    out.truncate(n);
                    c.last_sent = now;
                    let addr = c.addr;
                    self.actions.push_back(ServerAction::SendTo(addr, out));
                }
            }
        }
    }

    /// When [`poll`](Self::poll) must be called next at the latest.
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.actions.is_empty() || !self.dirty.is_empty() {
            return Some(Instant::ZERO);
        }
        (!self.by_addr.is_empty()).then_some(self.sweep_at)
    }

    /// The earliest timer over every client (a full walk: after a sweep only).
    fn earliest_timer(&self) -> Option<Instant> {
        self.clients
            .iter()
            .flatten()
            .filter_map(|c| self.client_timer(c))
            .min()
    }

    /// A client's earliest timer: retransmissions and ACKs, keepalive, ping-restart, hand-window, the
    /// lame duck's end.
    fn client_timer(&self, c: &Client) -> Option<Instant> {
        let p = &self.params;
        let key_at = |k: &KeyState| k.poll_at_ms().map(Instant::from_millis);
        let ping = (p.ping_secs > 0 && c.state == ClientState::Connected)
            .then(|| c.last_sent + Duration::from_secs(p.ping_secs));
        let restart = (p.ping_restart_secs > 0)
            .then(|| c.last_received + Duration::from_secs(p.ping_restart_secs));
        let hand = (c.state == ClientState::Handshake)
            .then(|| c.started + Duration::from_secs(p.hand_window_secs));
        let reneg = (p.reneg_secs > 0 && c.state == ClientState::Connected).then(|| {
            match c.reneg_started {
                Some(started) => started + Duration::from_secs(p.hand_window_secs),
                None => c.key_started + Duration::from_secs(p.reneg_secs),
            }
        });
        [
            c.key.as_ref().and_then(key_at),
            c.old_key.as_ref().and_then(key_at),
            ping,
            restart,
            hand,
            reneg,
            c.send_keys.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Tells every connected client the server is going away (`RESTART`, cc-exit), so they reconnect
    /// at once instead of waiting for ping-restart.
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<u32> = self.by_addr.values().copied().collect();
        for peer_id in ids {
            if let Some(k) = self.slot_mut(peer_id).and_then(|c| c.key.as_mut()) {
                let _ = k.send_message("RESTART");
            }
            while let Some(pkt) = self.poll_client(now, peer_id) {
                if let Some(c) = self.slot(peer_id) {
                    self.actions.push_back(ServerAction::SendTo(c.addr, pkt));
                }
            }
        }
    }

    /// Whether the client's current key state finished key-method 2 (for tests and status).
    pub fn handshake_done(&self, peer_id: u32) -> bool {
        self.slot(peer_id)
            .and_then(|c| c.key.as_ref())
            .is_some_and(|k| k.phase() == Phase::GotKey)
    }
}

/// The data cipher for a client: [`super::config::negotiate_cipher`] over its peer-info.
fn negotiate(
    server: &[String],
    fallback: Option<&str>,
    peer_info: &str,
    auth: Digest,
) -> Option<DataCipher> {
    let info = crate::session::PeerInfoFromClient::parse(peer_info);
    let names: Vec<&str> = server.iter().map(String::as_str).collect();
    let chosen =
        super::config::negotiate_cipher(&names, info.ciphers.as_deref(), info.ncp, fallback)?;
    DataCipher::from_name(chosen, auth)
}
