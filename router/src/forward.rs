//! The forwarding policy: what the OpenVPN server pushed (tunnel addresses, routes, redirect-gateway,
//! DNS servers, MTU) and which destinations may therefore enter the tunnel.
//!
//! Layer: pure decisions, no packet I/O. A VPN router must not leak: a destination the tunnel does not
//! route is refused (the router answers ICMP unreachable), never sent anywhere else.

use alloc::vec::Vec;

use core::net::IpAddr;
use smoltcp::time::{Duration, Instant};

use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

/// Smallest tunnel MTU accepted (RFC 791: every IPv4 host handles 576-byte datagrams).
pub const MIN_TUNNEL_MTU: u16 = 576;

/// The tunnel as configured by the server's PUSH_REPLY (and the client config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// `ifconfig` address and netmask (topology subnet), e.g. 10.8.0.6/24. For `topology net30`/`p2p`
    /// give the local address with its /30 (or /32 and the peer in `routes`). `None` when the server
    /// pushed no IPv4: IPv4 from the LAN is then refused.
    pub ipv4: Option<Ipv4Cidr>,
    /// `ifconfig-ipv6` address and prefix; `None` when the server pushed no IPv6 (LAN IPv6 is dropped).
    pub ipv6: Option<Ipv6Cidr>,
    /// Pushed `route` networks.
    pub routes: Vec<Ipv4Cidr>,
    /// Pushed `route-ipv6` networks.
    pub routes_ipv6: Vec<Ipv6Cidr>,
    /// `redirect-gateway` (def1 or not): every IPv4 destination goes into the tunnel.
    pub redirect_gateway: bool,
    /// `redirect-gateway ipv6` (or a pushed `::/0`-covering route): every IPv6 destination goes in.
    pub redirect_gateway_ipv6: bool,
    /// `dhcp-option DNS` servers, in push order. The forwarder relays to the IPv4 ones.
    pub dns_servers: Vec<IpAddr>,
    /// Largest IP packet the tunnel carries (`tun-mtu`, usually 1500). Clamped to at least
    /// [`MIN_TUNNEL_MTU`]. Bigger packets are fragmented (or refused with ICMP when DF is set).
    pub mtu: u16,
    /// Largest TCP MSS announced in SYNs crossing the router, for IPv4 (`mssfix`). OpenVPN 2.6 derives it
    /// so that the encrypted packet fits `mssfix` bytes on the wire (default 1492): `mssfix` - 28 (outer
    /// IPv4 + UDP) - data-channel overhead - 40 (inner IPv4 + TCP). `None`: `mtu - 40`. IPv6 SYNs get
    /// 20 bytes less. Never raised above `mtu - 40`.
    pub mss_clamp: Option<u16>,
}

impl TunnelConfig {
    /// A tunnel with an IPv4 address, no routes, and MTU 1500.
    pub fn new(ipv4: Ipv4Cidr) -> Self {
        TunnelConfig {
            ipv4: Some(ipv4),
            ipv6: None,
            routes: Vec::new(),
            routes_ipv6: Vec::new(),
            redirect_gateway: false,
            redirect_gateway_ipv6: false,
            dns_servers: Vec::new(),
            mtu: 1500,
            mss_clamp: None,
        }
    }

    /// True if IPv4 `dst` goes into the tunnel: redirect-gateway, the tunnel's own subnet, or a pushed route.
    pub fn routes_ipv4(&self, dst: Ipv4Address) -> bool {
        self.redirect_gateway
            || self.ipv4.is_some_and(|c| c.contains_addr(&dst))
            || self.routes.iter().any(|r| r.contains_addr(&dst))
    }

    /// True if IPv6 `dst` goes into the tunnel; always false when the server pushed no IPv6.
    pub fn routes_ipv6(&self, dst: Ipv6Address) -> bool {
        self.ipv6.is_some()
            && (self.redirect_gateway_ipv6
                || self.ipv6.is_some_and(|c| c.contains_addr(&dst))
                || self.routes_ipv6.iter().any(|r| r.contains_addr(&dst)))
    }

    /// The MTU actually used.
    pub(crate) fn effective_mtu(&self) -> u16 {
        self.mtu.max(MIN_TUNNEL_MTU)
    }

    /// The IPv4 MSS clamp actually used (at least 536, RFC 9293 section 3.7.1).
    pub(crate) fn ipv4_mss(&self) -> u16 {
        let by_mtu = self.effective_mtu().saturating_sub(40);
        self.mss_clamp.map_or(by_mtu, |m| m.min(by_mtu)).max(536)
    }
}

/// Whether the tunnel is up, and with which pushed configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TunnelState {
    /// Not connected (or reconnecting): LAN traffic for the tunnel gets ICMP unreachable.
    #[default]
    Down,
    /// Connected with this configuration.
    Up(TunnelConfig),
}

/// How long a LAN IPv6 neighbour learned from its traffic stays valid.
pub const IPV6_NEIGHBOUR_LIFETIME: Duration = Duration::from_secs(300);

/// IPv6 neighbours on the LAN, learned from the packets and solicitations they send (the router does
/// not solicit them itself): answers from the tunnel reach hosts that talked first, which NAT66 flows
/// always did. Bounded; the stalest entry goes.
#[derive(Debug)]
pub(crate) struct Ipv6Neighbours {
    entries: Vec<(Ipv6Address, EthernetAddress, Instant)>,
    capacity: usize,
}

impl Ipv6Neighbours {
    pub(crate) fn new(capacity: usize) -> Self {
        Ipv6Neighbours {
            entries: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn learn(&mut self, ip: Ipv6Address, mac: EthernetAddress, now: Instant) {
        let expires = now + IPV6_NEIGHBOUR_LIFETIME;
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == ip) {
            *e = (ip, mac, expires);
        } else if self.entries.len() < self.capacity {
            self.entries.push((ip, mac, expires));
        } else if let Some(e) = self.entries.iter_mut().min_by_key(|e| e.2) {
            *e = (ip, mac, expires);
        }
    }

    pub(crate) fn lookup(&self, ip: Ipv6Address, now: Instant) -> Option<EthernetAddress> {
        self.entries
            .iter()
            .find(|e| e.0 == ip && e.2 > now)
            .map(|e| e.1)
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        self.entries.retain(|e| e.2 > now);
    }

    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.entries.iter().map(|e| e.2).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_policy() {
        let mut t = TunnelConfig::new(Ipv4Cidr::new(Ipv4Address::new(10, 200, 0, 6), 24));
        t.routes
            .push(Ipv4Cidr::new(Ipv4Address::new(192, 168, 50, 0), 24));
        assert!(
            t.routes_ipv4(Ipv4Address::new(10, 200, 0, 1)),
            "tunnel subnet"
        );
        assert!(
            t.routes_ipv4(Ipv4Address::new(192, 168, 50, 7)),
            "pushed route"
        );
        assert!(
            !t.routes_ipv4(Ipv4Address::new(8, 8, 8, 8)),
            "not pushed, no redirect-gateway"
        );
        t.redirect_gateway = true;
        assert!(t.routes_ipv4(Ipv4Address::new(8, 8, 8, 8)));
        let v6 = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        t.redirect_gateway_ipv6 = true;
        assert!(!t.routes_ipv6(v6), "no IPv6 pushed: never");
        t.ipv6 = Some(Ipv6Cidr::new(
            Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
            64,
        ));
        assert!(t.routes_ipv6(v6));
    }
}
