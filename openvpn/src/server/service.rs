//! The server as a provider runs it: the [`Server`] engine plus the decisions a config makes: who may
//! connect (certificate CN, the `<auth-user-pass-db>` passwords), which tunnel address each client gets
//! (the [`AddressPool`]: sticky per CN, `duplicate-cn`), and what it is pushed ([`build_push_reply`]).
//! The caller (the kernel) only moves datagrams and tunnel packets, and learns which tunnel address
//! belongs to which client from [`ServiceEvent::ClientUp`].
//!
//! Every log line about a client starts with `CN/address:port`, as OpenVPN's do.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr};

use rand_core::CryptoRngCore;

use super::config::{ServerConfigError, ServerSettings};
use super::cookie::{CookieJar, InitialRateLimit, SECRET_LEN};
use super::engine::{GoneReason, Server, ServerAction, ServerParams, ServerReceived};
use super::handshake::StatelessHandshake;
use super::pool::{AddressPool, Allocation, Lease};
use super::token::{TokenKey, DEFAULT_LIFETIME_SECS, TOKEN_PREFIX};
use super::users::verify_password;
use super::wkc::{RevocationList, WkcPolicy};
use crate::config::{Config, VerifyClientCert};
use crate::engine::{ControlProtection, FromConfigError};
use crate::peer::ClientHelloInfo;
use crate::session::{build_push_reply, PeerInfoFromClient, PushReplyParams};
use crate::time::Instant;
use crate::tls::{self, TlsConfigError, WallClock};

/// Why the server could not be set up from a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// A server directive is unusable.
    Settings(ServerConfigError),
    /// The TLS part of the config (`ca`, `cert`, `key`, `crl-verify`, ...).
    TlsOptions(FromConfigError),
    /// rustls refused the TLS settings.
    Tls(TlsConfigError),
    /// tls-crypt-v2 together with tls-auth/tls-crypt: one control-channel mode per server.
    TwoControlModes,
    /// A `tls-auth`/`tls-crypt` key that is not a usable 2048-bit static key.
    BadStaticKey,
}

impl core::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServiceError::Settings(e) => write!(f, "{e}"),
            ServiceError::TlsOptions(e) => write!(f, "{e}"),
            ServiceError::Tls(e) => write!(f, "{e}"),
            ServiceError::TwoControlModes => {
                f.write_str("tls-crypt-v2 and tls-auth/tls-crypt: use one control-channel mode")
            }
            ServiceError::BadStaticKey => f.write_str("tls-auth/tls-crypt: unusable static key"),
        }
    }
}

/// The largest `replay-window` a server keeps per client and key: 8 bytes a slot, so 32 KiB (a client's
/// two keys 64 KiB) instead of the 512 KiB per key of the client's limit, with thousands of clients.
pub const SERVER_MAX_REPLAY_WINDOW: u32 = 4096;

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceEvent {
    /// Send these bytes to that address (one UDP datagram).
    SendTo(SocketAddr, Vec<u8>),
    /// A client is up: packets to `address` go to `peer_id`.
    ClientUp {
        /// Its peer-id.
        peer_id: u32,
        /// Its tunnel address.
        address: Ipv4Addr,
    },
    /// A client is gone: forget its address (and close its TCP connection).
    ClientGone {
        /// Its peer-id.
        peer_id: u32,
        /// The tunnel address it had.
        address: Option<Ipv4Addr>,
        /// Where it connected from.
        remote: SocketAddr,
    },
}

/// Per-client facts kept for log lines and the push.
#[derive(Debug, Clone, Default)]
struct Known {
    name: String,
    lease: Option<Lease>,
    cc_exit: bool,
    /// The user name it authenticated with (a pushed `auth-token` is bound to it).
    username: Option<String>,
}

/// The server engine with its config's policy. See the module docs.
pub struct Service {
    engine: Server,
    settings: ServerSettings,
    tokens: TokenKey,
    pool: AddressPool,
    known: Vec<Option<Known>>,
    events: alloc::collections::VecDeque<ServiceEvent>,
}

impl core::fmt::Debug for Service {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Service")
            .field("engine", &self.engine)
            .finish()
    }
}

/// The server's options (OCC) string, as an OpenVPN 2.6 server sends it for these settings.
fn options_string(cipher: &str, tcp: bool) -> String {
    alloc::format!(
        "V4,dev-type tun,link-mtu 1521,tun-mtu 1500,proto {},cipher {cipher},auth [null-digest],keysize 256,key-method 2,tls-server",
        if tcp { "TCPv4_SERVER" } else { "UDPv4" }
    )
}

impl Service {
    /// Builds the server for a parsed server config. `unix_secs` is the wall clock at `now`;
    /// `cookie_secret` must be random and private (32 bytes from the caller's CSPRNG).
    pub fn from_config(
        config: &Config,
        now: Instant,
        unix_secs: u64,
        cookie_secret: &[u8; SECRET_LEN],
    ) -> Result<Service, ServiceError> {
        let settings = ServerSettings::from_config(config).map_err(ServiceError::Settings)?;
        let tls_settings =
            crate::engine::tls_settings_of(config).map_err(ServiceError::TlsOptions)?;
        let client_cert = match settings.verify_client_cert {
            VerifyClientCert::None => None,
            VerifyClientCert::Optional => Some(false),
            VerifyClientCert::Require => Some(true),
        };
        let tls = tls::server_config(&tls_settings, WallClock::new(unix_secs), client_cert)
            .map_err(ServiceError::Tls)?;
        let shared =
            crate::engine::from_config::protection_of(&config.control_channel, config.auth)
                .map_err(ServiceError::TlsOptions)?;
        let control = match (&settings.tls_crypt_v2_key, shared) {
            (Some(_), ControlProtection::TlsAuth { .. } | ControlProtection::TlsCrypt { .. }) => {
                return Err(ServiceError::TwoControlModes)
            }
            (Some(key), _) => {
                let policy = WkcPolicy {
                    max_age_days: settings.tls_crypt_v2_max_age_days,
                    revoked: RevocationList::new(settings.tls_crypt_v2_revoked.iter().copied()),
                };
                ControlProtection::TlsCryptV2Server {
                    key: *key.as_bytes(),
                    policy,
                }
            }
            // A client key in a server config: the parser refuses it; treat as no shared key.
            (
                None,
                ControlProtection::TlsCryptV2 { .. } | ControlProtection::TlsCryptV2Server { .. },
            ) => return Err(ServiceError::TwoControlModes),
            (None, shared) => shared,
        };
        let mut handshake = StatelessHandshake::new(control, CookieJar::new(cookie_secret))
            .map_err(|_| ServiceError::TwoControlModes)?;
        handshake.hand_window = settings.hand_window;
        let (replies, secs) = settings.connect_freq_initial;
        let limit = InitialRateLimit::new(replies, secs);
        let ciphers: Vec<String> = settings
            .data_ciphers
            .iter()
            .map(|c| String::from(c.name()))
            .collect();
        let first = ciphers
            .first()
            .cloned()
            .unwrap_or_else(|| String::from("AES-256-GCM"));
        let params = ServerParams {
            data_ciphers: ciphers,
            data_ciphers_fallback: settings
                .data_ciphers_fallback
                .map(|c| String::from(c.name())),
            auth: crate::engine::from_config::digest(config.auth),
            hand_window_secs: u64::from(settings.hand_window),
            reneg_secs: u64::from(settings.reneg_secs),
            tran_window_secs: 3600,
            tls_timeout_ms: 2000,
            ping_secs: u64::from(settings.ping),
            ping_restart_secs: u64::from(settings.ping_restart),
            max_clients: settings.max_clients,
            replay_window: (
                config.replay_window.0.min(SERVER_MAX_REPLAY_WINDOW),
                u64::from(config.replay_window.1),
            ),
            options: options_string(&first, false),
            control_payload: 1250,
        };
        if config.replay_window.0 > SERVER_MAX_REPLAY_WINDOW {
            log::warn!(
                "replay-window {}: a server keeps at most {SERVER_MAX_REPLAY_WINDOW} per client and key",
                config.replay_window.0
            );
        }
        let pool = AddressPool::new(&settings);
        let engine = Server::new(params, tls, (handshake, limit), now, unix_secs);
        let mut known = Vec::new();
        known.resize_with(usize::try_from(settings.max_clients).unwrap_or(0), || None);
        // The token key is derived from the cookie secret: both are random per process.
        let derived = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, cookie_secret),
            b"oxvpn auth-gen-token key",
        );
        let mut token_secret = [0u8; 32];
        token_secret.copy_from_slice(derived.as_ref().get(..32).unwrap_or(&[0; 32]));
        Ok(Service {
            engine,
            settings,
            tokens: TokenKey::new(&token_secret),
            pool,
            known,
            events: alloc::collections::VecDeque::new(),
        })
    }

    /// The settings the server runs with.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// The engine (counters, client states).
    pub fn engine(&self) -> &Server {
        &self.engine
    }

    /// `CN/address:port` of a client, for log lines.
    pub fn client_name(&self, peer_id: u32) -> String {
        let name = self
            .known
            .get(usize::try_from(peer_id).unwrap_or(usize::MAX))
            .and_then(Option::as_ref)
            .map_or("UNDEF", |k| k.name.as_str());
        match self.engine.client(peer_id) {
            Some((_, addr)) => alloc::format!("{name}/{addr}"),
            None => String::from(name),
        }
    }

    /// The client whose tunnel address is `address`.
    pub fn peer_for(&self, address: Ipv4Addr) -> Option<u32> {
        self.pool
            .owner_of(address)
            .and_then(|id| u32::try_from(id).ok())
    }

    /// A datagram from `from` (see [`Server::receive`]).
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
        rng: &mut dyn CryptoRngCore,
    ) -> ServerReceived {
        self.engine.receive(now, from, datagram, rng)
    }

    /// Encrypts a tunnel packet for a client (see [`Server::encapsulate`]).
    pub fn encapsulate(
        &mut self,
        now: Instant,
        peer_id: u32,
        ip: &[u8],
        out: &mut [u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Option<(SocketAddr, usize)> {
        self.engine.encapsulate(now, peer_id, ip, out, rng)
    }

    /// When to call [`poll`](Self::poll) next.
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.events.is_empty() {
            return Some(Instant::ZERO);
        }
        self.engine.poll_at()
    }

    /// Tells every client the server goes away (RESTART); send what [`poll`](Self::poll) returns.
    pub fn shutdown(&mut self, now: Instant) {
        self.engine.shutdown(now);
    }

    /// Runs the engine and applies the config's policy; returns the next event for the caller.
    pub fn poll(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Option<ServiceEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            match self.engine.poll(now, rng)? {
                ServerAction::SendTo(to, bytes) => return Some(ServiceEvent::SendTo(to, bytes)),
                ServerAction::Authenticate {
                    peer_id,
                    common_name,
                    info,
                } => self.authenticate(now, peer_id, common_name, &info),
                ServerAction::PushRequest(peer_id) => self.push(now, peer_id),
                ServerAction::ClientGone(peer_id, reason, remote) => {
                    self.gone(peer_id, &reason, remote)
                }
            }
        }
    }

    fn known_mut(&mut self, peer_id: u32) -> Option<&mut Option<Known>> {
        self.known.get_mut(usize::try_from(peer_id).ok()?)
    }

    fn authenticate(
        &mut self,
        now: Instant,
        peer_id: u32,
        common_name: Option<String>,
        info: &ClientHelloInfo,
    ) {
        let addr = self.engine.client(peer_id).map(|(_, a)| a);
        let who = |name: &str| match addr {
            Some(a) => alloc::format!("{name}/{a}"),
            None => String::from(name),
        };
        let unix = self.engine.unix_at(now);
        let lifetime = self.settings.auth_gen_token.map(|t| match t.lifetime {
            0 => DEFAULT_LIFETIME_SECS,
            n => u64::from(n),
        });
        // A token this server pushed stands for the password it was issued for (auth-gen-token).
        let token_ok = lifetime.is_some_and(|life| {
            info.password.starts_with(TOKEN_PREFIX)
                && self
                    .tokens
                    .check(&info.password, &info.username, unix, life)
        });
        if !self.settings.users.is_empty() && !token_ok {
            let optional = self.settings.auth_user_pass_optional && info.username.is_empty();
            if !optional && !verify_password(&self.settings.users, &info.username, &info.password) {
                let name = common_name.as_deref().unwrap_or(&info.username);
                log::warn!(
                    "{} TLS Auth Error: Auth Username/Password verification failed for peer",
                    who(name)
                );
                self.engine.refuse(now, peer_id, "");
                return;
            }
        }
        let name = match (&common_name, self.settings.username_as_common_name) {
            (_, true) if !info.username.is_empty() => info.username.clone(),
            (Some(cn), _) => cn.clone(),
            (None, _) if !info.username.is_empty() => info.username.clone(),
            _ => String::from("UNDEF"),
        };
        let peer_info = PeerInfoFromClient::parse(&info.peer_info);
        let lease = match self.pool.allocate(&name, u64::from(peer_id)) {
            Ok(Allocation::New(lease)) => lease,
            Ok(Allocation::TakenOver { lease, previous }) => {
                // Without duplicate-cn a CN has one session: the new one takes the address.
                if let Ok(old) = u32::try_from(previous) {
                    log::info!(
                        "{} replaced by a new session of the same CN",
                        self.client_name(old)
                    );
                    self.engine.disconnect(old, GoneReason::Replaced);
                }
                lease
            }
            Err(e) => {
                log::warn!("{}: no tunnel address: {e}", who(&name));
                self.engine.refuse(now, peer_id, "");
                return;
            }
        };
        log::info!(
            "{} peer-id {peer_id}, {} {}, tunnel address {}",
            who(&name),
            peer_info.version.as_deref().unwrap_or("IV_VER?"),
            peer_info.platform.as_deref().unwrap_or(""),
            lease.ipv4
        );
        let octets = lease.ipv4.octets();
        self.engine.accept(peer_id, octets);
        let username = (!info.username.is_empty() && !self.settings.users.is_empty())
            .then(|| info.username.clone());
        if let Some(slot) = self.known_mut(peer_id) {
            *slot = Some(Known {
                name,
                lease: Some(lease),
                cc_exit: peer_info.has_proto(crate::session::peer_info::IV_PROTO_CC_EXIT_NOTIFY),
                username,
            });
        }
        // A client that announces request-push (IV_PROTO bit 2, every 2.5+ client) gets its PUSH_REPLY at
        // once instead of after its first PUSH_REQUEST, a second later (as OpenVPN 2.6 servers do).
        if peer_info.has_proto(crate::session::peer_info::IV_PROTO_REQUEST_PUSH) {
            self.push(now, peer_id);
        }
    }

    fn push(&mut self, now: Instant, peer_id: u32) {
        let Some(Some(known)) = self
            .known
            .get(usize::try_from(peer_id).unwrap_or(usize::MAX))
        else {
            return;
        };
        let Some(lease) = known.lease else { return };
        let cipher = self
            .engine
            .cipher(peer_id)
            .map_or("AES-256-GCM", |c| c.name());
        let v4 = &self.settings.ipv4;
        let ifconfig = match v4.topology {
            crate::session::Topology::Subnet => (lease.ipv4, v4.netmask),
            _ => (lease.ipv4, lease.ipv4_peer.unwrap_or(v4.local)),
        };
        let ipv6 = match (&self.settings.ipv6, lease.ipv6) {
            (Some(t), Some(a)) => Some((a, t.prefix_len, t.local)),
            _ => None,
        };
        // auth-gen-token: a client that authenticated with a password gets a token for later connections.
        let token = match (&self.settings.auth_gen_token, &known.username) {
            (Some(_), Some(user)) => Some(self.tokens.issue(user, self.engine.unix_at(now))),
            _ => None,
        };
        let params = PushReplyParams {
            topology: v4.topology,
            ifconfig,
            route_gateway: Some(v4.local),
            routes: &v4.pushed_routes,
            ifconfig_ipv6: ipv6,
            peer_id,
            cipher,
            ping: self.settings.push_ping,
            cc_exit: known.cc_exit,
            auth_token: token.as_deref(),
            extra: &self.settings.push,
        };
        let messages = build_push_reply(&params);
        log::info!(
            "{} PUSH_REPLY sent ({} message(s)), cipher {cipher}",
            self.client_name(peer_id),
            messages.len()
        );
        self.engine.push_reply(peer_id, &messages);
        self.events.push_back(ServiceEvent::ClientUp {
            peer_id,
            address: lease.ipv4,
        });
    }

    fn gone(&mut self, peer_id: u32, reason: &GoneReason, remote: SocketAddr) {
        let name = self
            .known
            .get(usize::try_from(peer_id).unwrap_or(usize::MAX))
            .and_then(Option::as_ref)
            .map_or("UNDEF", |k| k.name.as_str());
        let name = alloc::format!("{name}/{remote}");
        log::info!("{name} disconnected: {reason:?}");
        let lease = self.pool.release(u64::from(peer_id));
        if let Some(slot) = self.known_mut(peer_id) {
            *slot = None;
        }
        self.events.push_back(ServiceEvent::ClientGone {
            peer_id,
            address: lease.map(|l| l.ipv4),
            remote,
        });
    }

    /// The transport of the client at `remote` closed (TCP): it is gone at once.
    pub fn transport_closed(&mut self, remote: SocketAddr) {
        if let Some(peer_id) = self.engine.peer_at(remote) {
            self.engine.disconnect(peer_id, GoneReason::TransportClosed);
        }
    }

    /// The client list in the format of OpenVPN's status file version 3 (`--status-version 3`: tab
    /// separated, one `CLIENT_LIST` line per connected client, then the routing table), at Unix time
    /// `now_unix`. Scripts that read OpenVPN's status file read these lines.
    pub fn status_v3(&self, now_unix: u64) -> Vec<String> {
        use alloc::format;
        let mut out = Vec::new();
        out.push(format!("TITLE\toxvpn {}", env!("CARGO_PKG_VERSION")));
        out.push(format!("TIME\t{}\t{now_unix}", civil_time(now_unix)));
        out.push(String::from(
            "HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher",
        ));
        let mut routes = Vec::new();
        for peer_id in self.engine.peer_ids() {
            let Some(snap) = self.engine.snapshot(peer_id) else {
                continue;
            };
            let Some(Some(known)) = self
                .known
                .get(usize::try_from(peer_id).unwrap_or(usize::MAX))
            else {
                continue;
            };
            let Some(lease) = &known.lease else { continue };
            if snap.state != super::engine::ClientState::Connected {
                continue;
            }
            let v6 = lease.ipv6.map(|a| format!("{a}")).unwrap_or_default();
            out.push(format!(
                "CLIENT_LIST\t{}\t{}\t{}\t{v6}\t{}\t{}\t{}\t{}\tUNDEF\t{peer_id}\t{peer_id}\t{}",
                known.name,
                snap.addr,
                lease.ipv4,
                snap.bytes_in,
                snap.bytes_out,
                civil_time(snap.since_unix),
                snap.since_unix,
                snap.cipher.map_or("-", |c| c.name()),
            ));
            routes.push(format!(
                "ROUTING_TABLE\t{}\t{}\t{}\t{}\t{}",
                lease.ipv4,
                known.name,
                snap.addr,
                civil_time(snap.since_unix),
                snap.since_unix
            ));
        }
        out.push(String::from(
            "HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref\tLast Ref (time_t)",
        ));
        out.extend(routes);
        out.push(String::from(
            "GLOBAL_STATS\tMax bcast/mcast queue length\t0",
        ));
        out.push(String::from("END"));
        out
    }

    /// Counters of the engine, as `key=value` text for the console.
    pub fn status_line(&self) -> String {
        let s = self.engine.stats();
        let h = self.engine.handshake_counters();
        alloc::format!(
            "clients={} resets_answered={} sessions_created={} refused={} data_dropped={} spoofed_dropped={} floats={}",
            self.engine.client_count(),
            h.replies,
            h.accepted,
            h.refused_total(),
            s.data_dropped,
            s.spoofed_dropped,
            s.floats
        )
        .to_string()
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time, as the status file shows dates (days to civil date after
/// Howard Hinnant's algorithm).
fn civil_time(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    alloc::format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::civil_time;

    #[test]
    fn civil_time_matches_known_dates() {
        assert_eq!(civil_time(0), "1970-01-01 00:00:00");
        assert_eq!(civil_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(civil_time(1_800_000_000), "2027-01-15 08:00:00");
        assert_eq!(civil_time(1_796_437_346), "2026-12-05 02:22:26");
    }
}
