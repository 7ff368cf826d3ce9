//! What the engine needs to know, independent of the `.ovpn` syntax: the config parser's `Config` is
//! turned into this by the caller (see the integrator notes), so the engine can be tested on its own.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroize;

use super::RemoteSpec;
use crate::crypto::{Compression, Digest};
use crate::session::PullFilter;
use crate::tls::TlsSettings;

/// The configured control-channel protection, shared with the server role: see
/// [`crate::crypto::control::ControlProtection`]. A client uses every variant but `TlsCryptV2Server`.
pub use crate::crypto::control::ControlProtection;

/// Engine configuration. Wiped when dropped (password, control-channel keys, client key); `Debug` shows
/// everything else.
#[derive(Clone)]
pub struct EngineConfig {
    /// The `remote` list, tried in order.
    pub remotes: Vec<RemoteSpec>,
    /// Per-remote control-channel protection (`<connection>` blocks), index-aligned with `remotes`;
    /// `None` or a missing entry means `protection`.
    pub remote_protection: Vec<Option<ControlProtection>>,
    /// `remote-random`: shuffle the remotes once at start.
    pub remote_random: bool,
    /// `pull-filter`s, in config order.
    pub pull_filters: Vec<PullFilter>,
    /// `route-nopull`: drop pushed routes, redirection and DNS settings.
    pub route_nopull: bool,
    /// `connect-retry N`: seconds between attempts after a failure.
    pub connect_retry_secs: u64,
    /// `connect-retry N MAX`: cap of the doubling retry delay.
    pub connect_retry_max_delay_secs: u64,
    /// `connect-retry-max N`: give up after N rounds over the remotes (`None` = never).
    pub connect_retry_max: Option<u32>,
    /// `server-poll-timeout N` (`connect-timeout`): seconds to wait for the server's first answer before
    /// trying the next remote.
    pub server_poll_timeout_secs: u64,
    /// Control-channel protection.
    pub protection: ControlProtection,
    /// TLS trust and client credentials.
    pub tls: TlsSettings,
    /// `data-ciphers`, canonical names, in preference order (only ciphers the data channel implements).
    pub data_ciphers: Vec<String>,
    /// `data-ciphers-fallback` (or `cipher`): the cipher for servers that push none.
    pub data_ciphers_fallback: Option<String>,
    /// `auth`: the HMAC digest of CBC data ciphers (ignored by AEAD ciphers).
    pub auth: Digest,
    /// `auth-user-pass` (username, password).
    pub auth_user_pass: Option<(String, String)>,
    /// Compression framing (`comp-lzo`, `compress`): stubs only, oxvpn never compresses.
    pub compression: Compression,
    /// `tls-timeout`: initial control retransmit timeout, milliseconds.
    pub tls_timeout_ms: u64,
    /// `reneg-sec`: renegotiate the data key after this many seconds (0 = never from our side).
    pub reneg_secs: u64,
    /// `reneg-bytes`: renegotiate after this many data bytes on a key (0 = off).
    pub reneg_bytes: u64,
    /// `reneg-pkts`: renegotiate after this many data packets on a key (0 = off).
    pub reneg_packets: u64,
    /// `tran-window`: how long the previous data key stays valid after a renegotiation, seconds.
    pub tran_window_secs: u64,
    /// `replay-window N [T]`: the data channel's replay window, packets and seconds (OpenVPN's 64, 15).
    pub replay_window: (u32, u64),
    /// `hand-window`: the whole handshake (through PUSH_REPLY) must finish within this, seconds.
    pub hand_window_secs: u64,
    /// Local `ping` (overridden by a pushed one).
    pub ping_secs: Option<u32>,
    /// Local `ping-restart` (overridden by a pushed one).
    pub ping_restart_secs: Option<u32>,
    /// Local `ping-exit` (overridden by a pushed one).
    pub ping_exit_secs: Option<u32>,
    /// `inactive SECONDS [BYTES]`.
    pub inactive: Option<(u64, u64)>,
    /// `tun-mtu`.
    pub tun_mtu: u16,
    /// `max-packet-size` (control-channel MTU, §4), bytes.
    pub max_packet_size: u16,
    /// `IV_VER` announced in peer-info.
    pub peer_info_version: String,
    /// `IV_PLAT` announced in peer-info.
    pub peer_info_platform: String,
}

impl Zeroize for EngineConfig {
    fn zeroize(&mut self) {
        if let Some((user, pass)) = self.auth_user_pass.as_mut() {
            user.zeroize();
            pass.zeroize();
        }
        self.protection.zeroize();
        for p in self.remote_protection.iter_mut().flatten() {
            p.zeroize();
        }
        if let Some(key) = self.tls.key.as_mut() {
            key.zeroize();
        }
    }
}

impl Drop for EngineConfig {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = self
            .auth_user_pass
            .as_ref()
            .map(|(user, _)| (user, "<redacted>"));
        f.debug_struct("EngineConfig")
            .field("remotes", &self.remotes)
            .field("remote_protection", &self.remote_protection)
            .field("remote_random", &self.remote_random)
            .field("pull_filters", &self.pull_filters)
            .field("route_nopull", &self.route_nopull)
            .field("connect_retry_secs", &self.connect_retry_secs)
            .field(
                "connect_retry_max_delay_secs",
                &self.connect_retry_max_delay_secs,
            )
            .field("connect_retry_max", &self.connect_retry_max)
            .field("server_poll_timeout_secs", &self.server_poll_timeout_secs)
            .field("protection", &self.protection)
            .field("tls", &self.tls)
            .field("data_ciphers", &self.data_ciphers)
            .field("data_ciphers_fallback", &self.data_ciphers_fallback)
            .field("auth", &self.auth)
            .field("auth_user_pass", &credentials)
            .field("compression", &self.compression)
            .field("tls_timeout_ms", &self.tls_timeout_ms)
            .field("reneg_secs", &self.reneg_secs)
            .field("reneg_bytes", &self.reneg_bytes)
            .field("reneg_packets", &self.reneg_packets)
            .field("tran_window_secs", &self.tran_window_secs)
            .field("hand_window_secs", &self.hand_window_secs)
            .field("ping_secs", &self.ping_secs)
            .field("ping_restart_secs", &self.ping_restart_secs)
            .field("ping_exit_secs", &self.ping_exit_secs)
            .field("inactive", &self.inactive)
            .field("tun_mtu", &self.tun_mtu)
            .field("max_packet_size", &self.max_packet_size)
            .field("peer_info_version", &self.peer_info_version)
            .field("peer_info_platform", &self.peer_info_platform)
            .finish()
    }
}

impl EngineConfig {
    /// A configuration with OpenVPN 2.6's defaults around the given protection and TLS settings.
    pub fn new(protection: ControlProtection, tls: TlsSettings) -> Self {
        EngineConfig {
            remotes: Vec::new(),
            remote_protection: Vec::new(),
            remote_random: false,
            pull_filters: Vec::new(),
            route_nopull: false,
            connect_retry_secs: 5,
            connect_retry_max_delay_secs: 300,
            connect_retry_max: None,
            server_poll_timeout_secs: 120,
            protection,
            tls,
            data_ciphers: alloc::vec![String::from("AES-256-GCM"), String::from("AES-128-GCM")],
            data_ciphers_fallback: None,
            auth: Digest::Sha1,
            auth_user_pass: None,
            compression: Compression::None,
            tls_timeout_ms: 2000,
            hand_window_secs: 60,
            reneg_secs: 3600,
            tran_window_secs: 3600,
            replay_window: (64, 15),
            reneg_bytes: 0,
            reneg_packets: 0,
            ping_secs: None,
            ping_restart_secs: None,
            ping_exit_secs: None,
            inactive: None,
            tun_mtu: 1500,
            max_packet_size: 1250,
            peer_info_version: String::from(concat!("oxvpn-", env!("CARGO_PKG_VERSION"))),
            peer_info_platform: String::from("oxvpn"),
        }
    }
}
