//! The server's PUSH_REPLY as the router needs it: addresses, routes, DNS servers, MTU and MSS clamp.
//!
//! Layer: pure translation between the `openvpn` and `router` crates' types (neither depends on the other),
//! host-tested in the kernel lib. It also logs the pushed configuration, one option per line, as OpenVPN
//! does at verb 3.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};

use openvpn::session::{PushedConfig, Topology};
use router::{Ipv4Cidr, Ipv6Cidr, TunnelConfig};

/// Outer IPv4 (20) + UDP (8) headers around every data packet.
const OUTER_HEADERS: u16 = 28;
/// Inner IPv4 (20) + TCP (20) headers the MSS leaves out.
const INNER_HEADERS: u16 = 40;
/// Data-channel bytes per packet with an AEAD cipher: opcode/peer-id (4), packet id (4), tag (16).
const AEAD_OVERHEAD: u16 = 24;
/// With CBC + HMAC: opcode (1..4), HMAC (up to 64), IV (16), packet id (4), padding (up to 16).
const CBC_OVERHEAD: u16 = 4 + 64 + 16 + 4 + 16;

/// The prefix length of a contiguous netmask, `None` for a non-contiguous one.
fn prefix_len(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then(|| u8::try_from(ones).unwrap_or(32))
}

/// The router's tunnel configuration for `pushed`. `tun_mtu` is the config's `tun-mtu` (a pushed one wins),
/// `mssfix` the config's `mssfix` (0: off). Routes with a non-contiguous netmask are skipped with a warning.
pub fn tunnel_config(pushed: &PushedConfig, tun_mtu: u16, mssfix: u32) -> TunnelConfig {
    let ipv4 = pushed
        .ifconfig
        .and_then(|(local, other)| match pushed.topology {
            Topology::Subnet => prefix_len(other).map(|len| Ipv4Cidr::new(local, len)),
            Topology::Net30 => Some(Ipv4Cidr::new(local, 30)),
            Topology::P2p => Some(Ipv4Cidr::new(local, 32)),
        });
    let mut routes: Vec<Ipv4Cidr> = Vec::new();
    if let (Topology::P2p, Some((_, peer))) = (pushed.topology, pushed.ifconfig) {
        routes.push(Ipv4Cidr::new(peer, 32));
    }
    for route in &pushed.routes {
        match prefix_len(route.netmask) {
            Some(len) => routes.push(Ipv4Cidr::new(route.network, len)),
            None => log::warn!(
                "pushed route {} {}: netmask not contiguous, ignored",
                route.network,
                route.netmask
            ),
        }
    }
    let redirect = pushed.redirect_gateway;
    let mtu = pushed.tun_mtu.unwrap_or(tun_mtu);
    let aead = pushed
        .cipher
        .as_deref()
        .is_none_or(|c| c.ends_with("GCM") || c.eq_ignore_ascii_case("CHACHA20-POLY1305"));
    let overhead = if aead { AEAD_OVERHEAD } else { CBC_OVERHEAD };
    let mss_clamp = u16::try_from(mssfix)
        .ok()
        .filter(|&m| m > 0)
        .map(|m| m.saturating_sub(OUTER_HEADERS + overhead + INNER_HEADERS));
    TunnelConfig {
        ipv4,
        ipv6: pushed
            .ifconfig_ipv6
            .map(|(addr, len, _)| Ipv6Cidr::new(addr, len.min(128))),
        routes,
        routes_ipv6: pushed
            .routes_ipv6
            .iter()
            .map(|r| Ipv6Cidr::new(r.network, r.prefix_len.min(128)))
            .collect(),
        redirect_gateway: redirect.is_some_and(|r| !r.no_ipv4),
        redirect_gateway_ipv6: redirect.is_some_and(|r| r.ipv6),
        dns_servers: pushed.dns.clone(),
        mtu,
        mss_clamp,
    }
}

/// Logs what the server pushed and what the router makes of it.
pub fn log(pushed: &PushedConfig, tunnel: &TunnelConfig) {
    let topology = match pushed.topology {
        Topology::Subnet => "subnet",
        Topology::Net30 => "net30",
        Topology::P2p => "p2p",
    };
    match pushed.ifconfig {
        Some((a, b)) => log::info!("pushed: topology {topology}, ifconfig {a} {b}"),
        None => log::info!("pushed: topology {topology}, no IPv4 ifconfig"),
    }
    if let Some(gw) = pushed.gateway() {
        log::info!("pushed: route-gateway {gw}");
    }
    for r in &pushed.routes {
        log::info!("pushed: route {} {}", r.network, r.netmask);
    }
    if let Some((a, len, _)) = pushed.ifconfig_ipv6 {
        log::info!("pushed: ifconfig-ipv6 {a}/{len}");
    }
    for r in &pushed.routes_ipv6 {
        log::info!("pushed: route-ipv6 {}/{}", r.network, r.prefix_len);
    }
    if let Some(r) = pushed.redirect_gateway {
        log::info!("pushed: redirect-gateway {r:?}");
    }
    for d in &pushed.dns {
        match d {
            IpAddr::V4(a) => log::info!("pushed: dhcp-option DNS {a}"),
            IpAddr::V6(a) => log::info!("pushed: dhcp-option DNS6 {a}"),
        }
    }
    for d in &pushed.domains {
        log::info!("pushed: dhcp-option DOMAIN {d}");
    }
    if let Some(c) = &pushed.cipher {
        log::info!("pushed: cipher {c}");
    }
    if let Some(id) = pushed.peer_id {
        log::info!("pushed: peer-id {id}");
    }
    if let (Some(p), Some(r)) = (pushed.ping, pushed.ping_restart) {
        log::info!("pushed: ping {p} ping-restart {r}");
    }
    log::info!(
        "tunnel: {} mtu {} mss {} routes {} redirect-gateway {}",
        tunnel
            .ipv4
            .map_or(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0), |c| c),
        tunnel.mtu,
        tunnel.mss_clamp.unwrap_or(0),
        tunnel.routes.len(),
        tunnel.redirect_gateway,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvpn::session::push::RedirectGateway;
    use openvpn::session::Route;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    fn route(net: Ipv4Addr, mask: Ipv4Addr) -> Route {
        Route {
            network: net,
            netmask: mask,
            gateway: None,
            metric: None,
        }
    }

    /// What the e2e server (scripts/interop/server.sh) pushes.
    fn subnet_push() -> PushedConfig {
        PushedConfig {
            topology: Topology::Subnet,
            ifconfig: Some((v4(10, 8, 0, 2), v4(255, 255, 255, 0))),
            routes: alloc::vec![route(v4(10, 9, 0, 0), v4(255, 255, 255, 0))],
            dns: alloc::vec![IpAddr::V4(v4(10, 8, 0, 1))],
            cipher: Some("AES-256-GCM".into()),
            ..PushedConfig::default()
        }
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(prefix_len(v4(0, 0, 0, 0)), Some(0));
        assert_eq!(prefix_len(v4(255, 255, 255, 255)), Some(32));
        assert_eq!(prefix_len(v4(255, 255, 252, 0)), Some(22));
        assert_eq!(prefix_len(v4(255, 0, 255, 0)), None);
        assert_eq!(prefix_len(v4(0, 0, 0, 255)), None);
    }

    #[test]
    fn subnet_topology_as_openvpn_pushes_it() {
        let t = tunnel_config(&subnet_push(), 1500, 1492);
        assert_eq!(t.ipv4, Some(Ipv4Cidr::new(v4(10, 8, 0, 2), 24)));
        assert_eq!(t.routes, [Ipv4Cidr::new(v4(10, 9, 0, 0), 24)]);
        assert_eq!(t.dns_servers, [IpAddr::V4(v4(10, 8, 0, 1))]);
        assert!(!t.redirect_gateway && !t.redirect_gateway_ipv6);
        assert_eq!(t.mtu, 1500);
        // OpenVPN 2.6 with mssfix 1492 and AES-256-GCM: 1492 - 28 - 24 - 40.
        assert_eq!(t.mss_clamp, Some(1400));
        assert!(t.routes_ipv4(v4(10, 9, 0, 7)) && t.routes_ipv4(v4(10, 8, 0, 1)));
        assert!(!t.routes_ipv4(v4(10, 60, 0, 1)));
    }

    #[test]
    fn net30_and_p2p() {
        let mut p = subnet_push();
        p.topology = Topology::Net30;
        p.ifconfig = Some((v4(10, 8, 0, 6), v4(10, 8, 0, 5)));
        assert_eq!(
            tunnel_config(&p, 1500, 1492).ipv4,
            Some(Ipv4Cidr::new(v4(10, 8, 0, 6), 30))
        );
        p.topology = Topology::P2p;
        let t = tunnel_config(&p, 1500, 1492);
        assert_eq!(t.ipv4, Some(Ipv4Cidr::new(v4(10, 8, 0, 6), 32)));
        assert!(t.routes_ipv4(v4(10, 8, 0, 5)), "the p2p peer is routed");
    }

    #[test]
    fn malformed_masks_route_nothing() {
        let mut p = subnet_push();
        p.ifconfig = Some((v4(10, 8, 0, 2), v4(255, 0, 255, 0)));
        p.routes.push(route(v4(172, 16, 0, 0), v4(255, 0, 255, 0)));
        let t = tunnel_config(&p, 1500, 1492);
        assert_eq!(t.ipv4, None);
        assert_eq!(t.routes, [Ipv4Cidr::new(v4(10, 9, 0, 0), 24)]);
    }

    #[test]
    fn redirect_gateway_flags() {
        let mut p = subnet_push();
        p.redirect_gateway = Some(RedirectGateway {
            def1: true,
            ..RedirectGateway::default()
        });
        let t = tunnel_config(&p, 1500, 1492);
        assert!(t.redirect_gateway && !t.redirect_gateway_ipv6);
        assert!(t.routes_ipv4(v4(198, 51, 100, 7)));
        p.redirect_gateway = Some(RedirectGateway {
            ipv6: true,
            no_ipv4: true,
            ..RedirectGateway::default()
        });
        let t = tunnel_config(&p, 1500, 1492);
        assert!(!t.redirect_gateway && t.redirect_gateway_ipv6);
    }

    #[test]
    fn mtu_and_mss() {
        let mut p = subnet_push();
        assert_eq!(
            tunnel_config(&p, 1500, 0).mss_clamp,
            None,
            "mssfix 0 is off"
        );
        assert_eq!(
            tunnel_config(&p, 1500, 70_000).mss_clamp,
            None,
            "absurd mssfix ignored"
        );
        p.tun_mtu = Some(1400);
        assert_eq!(
            tunnel_config(&p, 1500, 1492).mtu,
            1400,
            "a pushed tun-mtu wins"
        );
        p.cipher = Some("AES-256-CBC".into());
        assert_eq!(
            tunnel_config(&p, 1500, 1492).mss_clamp,
            Some(1492 - 28 - CBC_OVERHEAD - 40)
        );
        assert_eq!(
            tunnel_config(&p, 1500, 60).mss_clamp,
            Some(0),
            "never underflows"
        );
    }
}
