//! A server config turned into what the server runs with: the `server`/`server-ipv6` helpers expanded the
//! way OpenVPN's `helper.c` does (server address, pool, pushed routes per topology), listeners with their
//! defaults, keepalive split into the server's and the pushed timers, and the cipher negotiation rule.
//!
//! Layer: plain data and arithmetic on addresses; no I/O, no clock.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::users::UserDb;
use crate::config::{
    AddressFamily, AuthGenToken, Cipher, Config, ControlChannel, Proto, ServerOptions, Topology,
    Transport, VerifyClientCert,
};
use crate::keys::ServerKey;

/// OpenVPN's default `max-clients`.
pub const DEFAULT_MAX_CLIENTS: u32 = 1024;
/// OpenVPN's default `connect-freq-initial`: 100 initial replies per 10 seconds.
pub const DEFAULT_CONNECT_FREQ_INITIAL: (u32, u32) = (100, 10);
/// The offset of the first IPv6 pool address in a `server-ipv6` network (helper.c: `+ 0x1000`).
const IPV6_POOL_OFFSET: u128 = 0x1000;

/// Why a server config cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerConfigErrorKind {
    /// The config is a client config.
    NotAServerConfig,
    /// Neither the `server` helper nor `ifconfig` + `ifconfig-pool`: no address to give clients.
    NoAddresses,
    /// The netmask is not contiguous.
    BadNetmask,
    /// The network is too small for the topology (subnet needs /30 or larger, net30 /29 or larger).
    NetworkTooSmall,
    /// The network address has host bits set.
    NotANetworkAddress,
    /// `ifconfig-pool` leaves the server's network, or holds the server's own address.
    PoolOutsideNetwork,
    /// The IPv6 prefix is too long for a pool (at most /112).
    Ipv6PrefixTooLong,
    /// `topology p2p` with the `server` helper is not supported (use subnet).
    UnsupportedTopology,
}

/// A refused server config: the directive and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfigError {
    /// The directive at fault (`server`, `ifconfig-pool`, …; empty for the config as a whole).
    pub directive: &'static str,
    /// Why.
    pub kind: ServerConfigErrorKind,
}

impl ServerConfigError {
    fn new(directive: &'static str, kind: ServerConfigErrorKind) -> Self {
        ServerConfigError { directive, kind }
    }
}

impl fmt::Display for ServerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.kind {
            ServerConfigErrorKind::NotAServerConfig => "not a server config",
            ServerConfigErrorKind::NoAddresses => {
                "no client addresses: give `server NET MASK` (or `ifconfig` and `ifconfig-pool`)"
            }
            ServerConfigErrorKind::BadNetmask => "the netmask is not contiguous",
            ServerConfigErrorKind::NetworkTooSmall => {
                "the network is too small (subnet needs at least a /30, net30 a /29)"
            }
            ServerConfigErrorKind::NotANetworkAddress => "the network address has host bits set",
            ServerConfigErrorKind::PoolOutsideNetwork => {
                "the pool is outside the server's network or holds the server's address"
            }
            ServerConfigErrorKind::Ipv6PrefixTooLong => {
                "the IPv6 prefix is too long for a pool (at most /112)"
            }
            ServerConfigErrorKind::UnsupportedTopology => {
                "topology p2p is not supported: use subnet"
            }
        };
        match self.directive {
            "" => write!(f, "server config: {reason}"),
            d => write!(f, "server config: `{d}`: {reason}"),
        }
    }
}

/// One socket to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The address (`None` = every address of the allowed families).
    pub address: Option<IpAddr>,
    /// The port.
    pub port: u16,
    /// UDP or TCP.
    pub transport: Transport,
    /// IPv4, IPv6 or both.
    pub family: AddressFamily,
}

/// The IPv4 side of the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Tunnel {
    /// How client addresses are given: subnet (one address each) or net30 (a /30 each).
    pub topology: Topology,
    /// The server's own tunnel address.
    pub local: Ipv4Addr,
    /// The VPN network and its mask (the server's on-link route).
    pub network: Ipv4Addr,
    /// The netmask of `network`; pushed with `ifconfig` in topology subnet.
    pub netmask: Ipv4Addr,
    /// The dynamic pool `(first, last)`, inclusive (`None` with `nopool`).
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Routes pushed to every client by the helper (net30: the server's address, or the whole network
    /// with `client-to-client`); `(network, netmask)`.
    pub pushed_routes: Vec<(Ipv4Addr, Ipv4Addr)>,
}

/// The IPv6 side of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Tunnel {
    /// The server's own tunnel address.
    pub local: Ipv6Addr,
    /// The prefix length pushed with every client's `ifconfig-ipv6`.
    pub prefix_len: u8,
    /// The first pool address.
    pub pool_start: Ipv6Addr,
    /// How many pool addresses there are (capped at `u32::MAX`).
    pub pool_size: u32,
}

/// Everything the server runs with, from a parsed server [`Config`].
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// IPv4 tunnel addressing.
    pub ipv4: Ipv4Tunnel,
    /// IPv6 tunnel addressing (`server-ipv6` or `ifconfig-ipv6` + `ifconfig-ipv6-pool`).
    pub ipv6: Option<Ipv6Tunnel>,
    /// Sockets to listen on (default: UDP 1194 on every address).
    pub listeners: Vec<Listener>,
    /// `max-clients` (default 1024).
    pub max_clients: u32,
    /// The server's own ping interval, seconds (0 = off).
    pub ping: u32,
    /// The server's own ping-restart, seconds (`keepalive`: twice the pushed one; 0 = off).
    pub ping_restart: u32,
    /// `ping`/`ping-restart` pushed to clients (from `keepalive`).
    pub push_ping: Option<(u32, u32)>,
    /// The config's `push` lines, in order.
    pub push: Vec<String>,
    /// `data-ciphers`, in the server's preference order.
    pub data_ciphers: Vec<Cipher>,
    /// `data-ciphers-fallback` for clients that cannot negotiate.
    pub data_ciphers_fallback: Option<Cipher>,
    /// `hand-window`, seconds.
    pub hand_window: u32,
    /// `reneg-sec` (0 = the server starts no renegotiation).
    pub reneg_secs: u32,
    /// `connect-freq-initial`: at most N initial replies per SECS seconds.
    pub connect_freq_initial: (u32, u32),
    /// Control-channel protection with a shared key (tls-auth / tls-crypt), else `None`.
    pub control_channel: ControlChannel,
    /// The tls-crypt-v2 server key.
    pub tls_crypt_v2_key: Option<ServerKey>,
    /// `tls-crypt-v2 … force-cookie`.
    pub tls_crypt_v2_force_cookie: bool,
    /// `tls-crypt-v2-max-age`, days.
    pub tls_crypt_v2_max_age_days: Option<u32>,
    /// Revoked WKc hashes (SHA-256), sorted: use [`ServerSettings::is_revoked`].
    pub tls_crypt_v2_revoked: Vec<[u8; 32]>,
    /// `<auth-user-pass-db>`.
    pub users: UserDb,
    /// `auth-user-pass-optional`.
    pub auth_user_pass_optional: bool,
    /// `username-as-common-name`.
    pub username_as_common_name: bool,
    /// `client-to-client`.
    pub client_to_client: bool,
    /// `duplicate-cn`.
    pub duplicate_cn: bool,
    /// `auth-gen-token`.
    pub auth_gen_token: Option<AuthGenToken>,
    /// `verify-client-cert`.
    pub verify_client_cert: VerifyClientCert,
    /// `explicit-exit-notify` (0 = off).
    pub explicit_exit_notify: u32,
    /// Seconds between client lists on the console.
    pub status_interval: Option<u32>,
}

fn mask_bits(mask: Ipv4Addr) -> Option<u32> {
    let m = u32::from(mask);
    let bits = m.leading_ones();
    (m.checked_shl(bits).unwrap_or(0) == 0).then_some(bits)
}

fn v4(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(n)
}

impl ServerSettings {
    /// Expands a parsed server config.
    pub fn from_config(config: &Config) -> Result<ServerSettings, ServerConfigError> {
        let s = config.server.as_ref().ok_or(ServerConfigError::new(
            "",
            ServerConfigErrorKind::NotAServerConfig,
        ))?;
        let ipv4 = ipv4_tunnel(s)?;
        let ipv6 = ipv6_tunnel(s)?;
        let mut revoked = s.tls_crypt_v2_revoked.clone();
        revoked.sort_unstable();
        revoked.dedup();
        let (ping, ping_restart) = (config.ping, config.ping_restart);
        Ok(ServerSettings {
            ipv4,
            ipv6,
            listeners: listeners(s),
            max_clients: s.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS),
            ping,
            ping_restart,
            push_ping: s.keepalive,
            push: s.push.clone(),
            data_ciphers: config.data_ciphers.clone(),
            data_ciphers_fallback: config.data_ciphers_fallback,
            hand_window: config.hand_window,
            reneg_secs: config.reneg_sec,
            connect_freq_initial: s
                .connect_freq_initial
                .unwrap_or(DEFAULT_CONNECT_FREQ_INITIAL),
            control_channel: config.control_channel.clone(),
            tls_crypt_v2_key: s.tls_crypt_v2_key.clone(),
            tls_crypt_v2_force_cookie: s.tls_crypt_v2_force_cookie,
            tls_crypt_v2_max_age_days: s.tls_crypt_v2_max_age,
            tls_crypt_v2_revoked: revoked,
            users: UserDb::new(s.users.clone()),
            auth_user_pass_optional: s.auth_user_pass_optional,
            username_as_common_name: s.username_as_common_name,
            client_to_client: s.client_to_client,
            duplicate_cn: s.duplicate_cn,
            auth_gen_token: s.auth_gen_token,
            verify_client_cert: s.verify_client_cert,
            explicit_exit_notify: config.explicit_exit_notify,
            status_interval: s.status_interval,
        })
    }

    /// Whether a client's wrapped key (by the SHA-256 of its WKc) is in `<tls-crypt-v2-revoked>`.
    pub fn is_revoked(&self, wkc_sha256: &[u8; 32]) -> bool {
        self.tls_crypt_v2_revoked.binary_search(wkc_sha256).is_ok()
    }
}

/// helper.c's `server` expansion, or the manual `ifconfig` + `ifconfig-pool` form.
fn ipv4_tunnel(s: &ServerOptions) -> Result<Ipv4Tunnel, ServerConfigError> {
    use ServerConfigErrorKind as K;
    // OpenVPN 2.7 defaults to subnet (2.6 and older: net30).
    let topology = s.topology.unwrap_or(Topology::Subnet);
    let Some(helper) = s.server else {
        let ((local, second), Some(pool)) = (
            s.ifconfig
                .ok_or(ServerConfigError::new("ifconfig", K::NoAddresses))?,
            s.ifconfig_pool,
        ) else {
            return Err(ServerConfigError::new("ifconfig-pool", K::NoAddresses));
        };
        // Subnet: `ifconfig LOCAL NETMASK`; net30/p2p: `ifconfig LOCAL REMOTE` (a /30 around them).
        let netmask = match topology {
            Topology::Subnet => second,
            _ => pool.netmask.unwrap_or(Ipv4Addr::new(255, 255, 255, 252)),
        };
        mask_bits(netmask).ok_or(ServerConfigError::new("ifconfig", K::BadNetmask))?;
        let network = v4(u32::from(local) & u32::from(netmask));
        let (start, end) = (u32::from(pool.start), u32::from(pool.end));
        if (start..=end).contains(&u32::from(local)) {
            return Err(ServerConfigError::new(
                "ifconfig-pool",
                K::PoolOutsideNetwork,
            ));
        }
        return Ok(Ipv4Tunnel {
            topology,
            local,
            network,
            netmask: pool.netmask.unwrap_or(netmask),
            pool: Some((pool.start, pool.end)),
            pushed_routes: Vec::new(),
        });
    };
    let bits = mask_bits(helper.netmask).ok_or(ServerConfigError::new("server", K::BadNetmask))?;
    let net = u32::from(helper.network);
    let mask = u32::from(helper.netmask);
    if net & !mask != 0 {
        return Err(ServerConfigError::new("server", K::NotANetworkAddress));
    }
    let broadcast = net | !mask;
    let (local, pool, pushed_routes) = match topology {
        Topology::Subnet => {
            if bits > 30 {
                return Err(ServerConfigError::new("server", K::NetworkTooSmall));
            }
            (net + 1, (net + 2, broadcast - 1), Vec::new())
        }
        Topology::Net30 => {
            if bits > 29 {
                return Err(ServerConfigError::new("server", K::NetworkTooSmall));
            }
            // The server takes the first /30 (NET+1 <-> NET+2); clients get the following /30s.
            let route = if s.client_to_client {
                (helper.network, helper.netmask)
            } else {
                (v4(net + 1), Ipv4Addr::new(255, 255, 255, 255))
            };
            (net + 1, (net + 4, broadcast), alloc::vec![route])
        }
        Topology::P2p => return Err(ServerConfigError::new("topology", K::UnsupportedTopology)),
    };
    let mut pool = (!helper.nopool).then_some((v4(pool.0), v4(pool.1)));
    if let (Some(custom), Some(_)) = (s.ifconfig_pool, pool) {
        let inside = |a: Ipv4Addr| u32::from(a) & mask == net && u32::from(a) != local;
        if !inside(custom.start) || !inside(custom.end) || u32::from(custom.start) <= local {
            return Err(ServerConfigError::new(
                "ifconfig-pool",
                K::PoolOutsideNetwork,
            ));
        }
        pool = Some((custom.start, custom.end));
    }
    Ok(Ipv4Tunnel {
        topology,
        local: v4(local),
        network: helper.network,
        netmask: helper.netmask,
        pool,
        pushed_routes,
    })
}

fn ipv6_tunnel(s: &ServerOptions) -> Result<Option<Ipv6Tunnel>, ServerConfigError> {
    use ServerConfigErrorKind as K;
    let (local, prefix_len, pool_start, pool_len) = match (s.server_ipv6, s.ifconfig_ipv6) {
        (Some(p), _) => {
            if p.prefix_len > 112 {
                return Err(ServerConfigError::new("server-ipv6", K::Ipv6PrefixTooLong));
            }
            let net = u128::from(p.address);
            let host_mask = u128::MAX.checked_shr(u32::from(p.prefix_len)).unwrap_or(0);
            if net & host_mask != 0 {
                return Err(ServerConfigError::new("server-ipv6", K::NotANetworkAddress));
            }
            let pool = s
                .ifconfig_ipv6_pool
                .map(|p| (u128::from(p.address), p.prefix_len))
                .unwrap_or((net + IPV6_POOL_OFFSET, p.prefix_len));
            (net + 1, p.prefix_len, pool.0, pool.1)
        }
        (None, Some(own)) => {
            let Some(pool) = s.ifconfig_ipv6_pool else {
                return Err(ServerConfigError::new("ifconfig-ipv6-pool", K::NoAddresses));
            };
            (
                u128::from(own.address),
                own.prefix_len,
                u128::from(pool.address),
                pool.prefix_len,
            )
        }
        (None, None) => return Ok(None),
    };
    if pool_len > 112 {
        return Err(ServerConfigError::new(
            "ifconfig-ipv6-pool",
            K::Ipv6PrefixTooLong,
        ));
    }
    // Addresses from the pool start to the end of its prefix.
    let host_mask = u128::MAX.checked_shr(u32::from(pool_len)).unwrap_or(0);
    let room = host_mask - (pool_start & host_mask);
    Ok(Some(Ipv6Tunnel {
        local: Ipv6Addr::from(local),
        prefix_len,
        pool_start: Ipv6Addr::from(pool_start),
        pool_size: u32::try_from(room).unwrap_or(u32::MAX),
    }))
}

fn listeners(s: &ServerOptions) -> Vec<Listener> {
    let default_port = s.port.unwrap_or(1194);
    let default_proto = s.proto.unwrap_or(Proto::Udp);
    let make = |address: Option<IpAddr>, port: u16, proto: Proto| Listener {
        address,
        port,
        transport: proto.transport(),
        family: match address {
            Some(IpAddr::V4(_)) => AddressFamily::V4,
            Some(IpAddr::V6(_)) => AddressFamily::V6,
            None => proto.family(),
        },
    };
    if s.listeners.is_empty() {
        return alloc::vec![make(None, default_port, default_proto)];
    }
    s.listeners
        .iter()
        .map(|l| {
            make(
                Some(l.address),
                l.port.unwrap_or(default_port),
                l.proto.unwrap_or(default_proto),
            )
        })
        .collect()
}

/// OpenVPN 2.6's cipher negotiation: the first cipher of the server's `data-ciphers` the client supports.
/// The client's list is `IV_CIPHERS` when sent; otherwise `IV_NCP >= 2` means AES-256-GCM and AES-128-GCM;
/// otherwise the client can only use `fallback` (its `cipher`), which the server must also accept.
/// Names compare case-insensitively; the server's spelling is returned.
pub fn negotiate_cipher<'a>(
    server_data_ciphers: &[&'a str],
    client_iv_ciphers: Option<&str>,
    iv_ncp: Option<u32>,
    fallback: Option<&'a str>,
) -> Option<&'a str> {
    let client_has = |name: &str| match client_iv_ciphers {
        Some(list) => list.split(':').any(|c| c.eq_ignore_ascii_case(name)),
        None => {
            iv_ncp.is_some_and(|n| n >= 2)
                && (name.eq_ignore_ascii_case("AES-256-GCM")
                    || name.eq_ignore_ascii_case("AES-128-GCM"))
        }
    };
    if let Some(c) = server_data_ciphers.iter().copied().find(|c| client_has(c)) {
        return Some(c);
    }
    // A client that cannot negotiate uses its configured cipher: acceptable if it is our fallback.
    match (client_iv_ciphers, iv_ncp) {
        (None, None | Some(0..=1)) => fallback,
        _ => None,
    }
}

/// [`negotiate_cipher`] with the typed lists of [`ServerSettings`].
pub fn negotiate_cipher_typed(
    server_data_ciphers: &[Cipher],
    client_iv_ciphers: Option<&str>,
    iv_ncp: Option<u32>,
    fallback: Option<Cipher>,
) -> Option<Cipher> {
    let names: Vec<&'static str> = server_data_ciphers.iter().map(|c| c.name()).collect();
    let chosen = negotiate_cipher(
        &names,
        client_iv_ciphers,
        iv_ncp,
        fallback.map(Cipher::name),
    )?;
    Cipher::from_name(chosen)
}

#[cfg(test)]
pub(crate) mod tests;
