//! The server-only part of a parsed config ([`ServerOptions`]), as written: the directives of a server
//! config (`server`, `mode server` + `tls-server`) before `server::config` expands the `server` helper.
//!
//! Layer: plain data. `directives/server.rs` fills it and `printer.rs` writes it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::model::Proto;
use crate::keys::ServerKey;
pub use crate::session::Topology;

/// Upper bound on `push` lines in one config (each is sent to every client).
pub const MAX_PUSH_LINES: usize = 1024;
/// Longest `push` option (so that each fits in one PUSH_REPLY message).
pub const MAX_PUSH_OPTION_LEN: usize = 512;
/// Upper bound on entries of `<tls-crypt-v2-revoked>`.
pub const MAX_REVOKED_KEYS: usize = 100_000;
/// Upper bound on users in `<auth-user-pass-db>`.
pub const MAX_USERS: usize = 100_000;
/// Upper bound on `local` lines (listeners).
pub const MAX_LISTENERS: usize = 16;
/// The lowest PBKDF2 iteration count `<auth-user-pass-db>` accepts.
pub const MIN_PBKDF2_ITERATIONS: u32 = 10_000;

/// Which side of the connection a config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `client` (or `tls-client` + `pull`): connects to a `remote`.
    Client,
    /// `server`, or `mode server` + `tls-server`: accepts clients.
    Server,
}

/// `server NETWORK NETMASK [nopool]`: the helper OpenVPN expands into `mode server`, `tls-server`,
/// `ifconfig`, `ifconfig-pool` and (net30) `route`/`push route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHelper {
    /// The VPN network.
    pub network: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// `nopool`: no dynamic pool (addresses only from elsewhere; oxvpn then has none to give).
    pub nopool: bool,
}

/// `server-ipv6 NETWORK/BITS` or `ifconfig-ipv6-pool START/BITS`: an IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Prefix {
    /// The address (network address, or the first pool address).
    pub address: Ipv6Addr,
    /// Prefix length (up to 128).
    pub prefix_len: u8,
}

/// `ifconfig-pool START END [NETMASK]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Pool {
    /// First address handed out.
    pub start: Ipv4Addr,
    /// Last address handed out.
    pub end: Ipv4Addr,
    /// The netmask pushed with topology subnet (default: the server's own).
    pub netmask: Option<Ipv4Addr>,
}

/// `verify-client-cert` (default `require`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyClientCert {
    /// No client certificate is asked for (authentication by username/password only).
    None,
    /// A certificate is checked if the client sends one.
    Optional,
    /// Every client must present a certificate that chains to `ca`.
    #[default]
    Require,
}

impl VerifyClientCert {
    /// The config-file spelling.
    pub fn as_arg(self) -> &'static str {
        match self {
            VerifyClientCert::None => "none",
            VerifyClientCert::Optional => "optional",
            VerifyClientCert::Require => "require",
        }
    }
}

/// One `local ADDR [PORT [PROTO]]` line (several are OpenVPN 2.7's multi-socket listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLine {
    /// The address to listen on (an IP literal: the image resolves no names).
    pub address: IpAddr,
    /// The port, when given on the line (else the global `port`).
    pub port: Option<u16>,
    /// The protocol, when given on the line (else the global `proto`).
    pub proto: Option<Proto>,
}

/// `auth-gen-token [LIFETIME [RENEWAL]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthGenToken {
    /// Seconds a token stays valid (0 = until the session ends, OpenVPN's default).
    pub lifetime: u32,
    /// Renewal interval in seconds (None = `reneg-sec`).
    pub renewal: Option<u32>,
}

/// One `<auth-user-pass-db>` line: `USERNAME pbkdf2-sha256:ITERATIONS:SALT_B64:HASH_B64`.
#[derive(Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// The username (compared exactly).
    pub username: String,
    /// PBKDF2 iterations (at least [`MIN_PBKDF2_ITERATIONS`]).
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// The derived PBKDF2-HMAC-SHA256 output (its length is the derived length).
    pub hash: Vec<u8>,
}

impl fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UserEntry {{ username: {:?}, iterations: {}, .. }}",
            self.username, self.iterations
        )
    }
}

/// The server-only directives of a server config, as written (defaults are applied by
/// `server::config::ServerSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerOptions {
    /// `server NETWORK NETMASK [nopool]`.
    pub server: Option<ServerHelper>,
    /// `server-ipv6 NETWORK/BITS`.
    pub server_ipv6: Option<Ipv6Prefix>,
    /// `mode server` was given.
    pub mode_server: bool,
    /// `tls-server` was given.
    pub tls_server: bool,
    /// `topology` (OpenVPN 2.7 defaults to subnet).
    pub topology: Option<Topology>,
    /// `ifconfig LOCAL MASK|REMOTE`: the server's own address without the `server` helper.
    pub ifconfig: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `ifconfig-ipv6 ADDR/BITS`: the server's own IPv6 address without `server-ipv6`.
    pub ifconfig_ipv6: Option<Ipv6Prefix>,
    /// `ifconfig-pool`.
    pub ifconfig_pool: Option<Ipv4Pool>,
    /// `ifconfig-ipv6-pool START/BITS`.
    pub ifconfig_ipv6_pool: Option<Ipv6Prefix>,
    /// `max-clients`.
    pub max_clients: Option<u32>,
    /// `duplicate-cn`.
    pub duplicate_cn: bool,
    /// `client-to-client`.
    pub client_to_client: bool,
    /// `push "..."` lines in config order (at most [`MAX_PUSH_LINES`]).
    pub push: Vec<String>,
    /// `keepalive PING TIMEOUT` (server: ping PING, ping-restart 2×TIMEOUT; pushes ping PING and
    /// ping-restart TIMEOUT).
    pub keepalive: Option<(u32, u32)>,
    /// `auth-gen-token`.
    pub auth_gen_token: Option<AuthGenToken>,
    /// `auth-user-pass-optional`: a client may connect without username/password.
    pub auth_user_pass_optional: bool,
    /// `username-as-common-name`.
    pub username_as_common_name: bool,
    /// `verify-client-cert`.
    pub verify_client_cert: VerifyClientCert,
    /// The global `port` (listeners without their own).
    pub port: Option<u16>,
    /// The global `proto` (listeners without their own); TCP means listening.
    pub proto: Option<Proto>,
    /// `local` lines in config order (at most [`MAX_LISTENERS`]).
    pub listeners: Vec<ListenerLine>,
    /// `connect-freq-initial N SECS`.
    pub connect_freq_initial: Option<(u32, u32)>,
    /// `tls-crypt-v2-max-age DAYS`.
    pub tls_crypt_v2_max_age: Option<u32>,
    /// `tls-crypt-v2` with a server key (the client-key slot [`super::Config::control_channel`] stays
    /// `None`, or `Unread` when the file is kept unread).
    pub tls_crypt_v2_key: Option<ServerKey>,
    /// `tls-crypt-v2 KEY force-cookie`: refuse clients that cannot resend their wrapped key.
    pub tls_crypt_v2_force_cookie: bool,
    /// `status FILE N` / `status-interval N`: seconds between client lists on the console.
    pub status_interval: Option<u32>,
    /// oxvpn extension `<tls-crypt-v2-revoked>`: SHA-256 of refused clients' wrapped keys (WKc).
    pub tls_crypt_v2_revoked: Vec<[u8; 32]>,
    /// oxvpn extension `<auth-user-pass-db>`: the users allowed to log in with a password.
    pub users: Vec<UserEntry>,
}
