//! Which tunnel address to ping: the server's own address inside the tunnel, whatever the topology, and
//! why that one (printed, so that a failing ping can be told apart from a wrong guess).
//!
//! - `topology subnet`: `route-gateway` (the server's address on the tunnel subnet), else the subnet's
//!   first address (what `server` gives itself).
//! - `topology net30` / `p2p`: the `ifconfig` remote is a /30 peer endpoint that nothing answers, so the
//!   server's address comes from what it pushes: the host route OpenVPN's `server` helper pushes to its own
//!   address (`route 10.8.0.1`), or, with `client-to-client`, the whole tunnel network (`route 10.8.0.0
//!   255.255.255.0`), whose first address is the server's. Only when neither is pushed is the peer used.
//! - IPv6: the `ifconfig-ipv6` remote, the server's address on the tunnel's IPv6 network.

use std::net::{IpAddr, Ipv4Addr};

use openvpn::session::{PushedConfig, Topology};

/// The address to ping and a few words on why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Our tunnel address (the echo requests' source).
    pub local: IpAddr,
    /// The address pinged.
    pub remote: IpAddr,
    /// Why `remote`.
    pub why: String,
}

/// Picks the target in the pushed config; `chosen` (from `--target`) overrides the choice but not the
/// family's source address. `None` when the config has no address of the wanted family.
pub fn pick(config: &PushedConfig, ipv6: bool, chosen: Option<IpAddr>) -> Result<Target, String> {
    if ipv6 || matches!(chosen, Some(IpAddr::V6(_))) {
        let (local, _, gateway) = config
            .ifconfig_ipv6
            .ok_or("pushed config has no ifconfig-ipv6")?;
        let (remote, why) = match (chosen, gateway) {
            (Some(IpAddr::V6(t)), _) => (t, "given with --target".to_string()),
            (Some(IpAddr::V4(_)), _) => return Err("--target is IPv4 but --ipv6 was asked".into()),
            (None, Some(g)) => (g, "the server's address from ifconfig-ipv6".to_string()),
            (None, None) => return Err("pushed ifconfig-ipv6 names no server address".into()),
        };
        return Ok(Target {
            local: IpAddr::V6(local),
            remote: IpAddr::V6(remote),
            why,
        });
    }
    let local = config
        .local_address()
        .ok_or("pushed config has no ifconfig")?;
    let (remote, why) = match chosen {
        Some(IpAddr::V4(t)) => (t, "given with --target".to_string()),
        _ => server_v4(config, local)?,
    };
    Ok(Target {
        local: IpAddr::V4(local),
        remote: IpAddr::V4(remote),
        why,
    })
}

fn server_v4(c: &PushedConfig, local: Ipv4Addr) -> Result<(Ipv4Addr, String), String> {
    let topology = match c.topology {
        Topology::Subnet => "subnet",
        Topology::Net30 => "net30",
        Topology::P2p => "p2p",
    };
    if c.topology == Topology::Subnet {
        if let Some(g) = c.route_gateway {
            return Ok((
                g,
                format!("the server's address: route-gateway, topology {topology}"),
            ));
        }
        let g = c.gateway().ok_or("pushed config has no tunnel gateway")?;
        return Ok((
            g,
            format!(
                "the tunnel subnet's first address (no route-gateway pushed), topology {topology}"
            ),
        ));
    }
    let peer = c.ifconfig.map(|(_, p)| p);
    let own = |r: &&openvpn::session::Route| r.gateway.is_none();
    // The host route to the server's own address (`push "route 10.8.0.1"`): of several host routes, the
    // one closest to our address (a host behind the server can be pushed as a host route too).
    let host = c
        .routes
        .iter()
        .filter(own)
        .filter(|r| r.netmask == Ipv4Addr::BROADCAST)
        .filter(|r| r.network != local && Some(r.network) != peer)
        .max_by_key(|r| (u32::from(r.network) ^ u32::from(local)).leading_zeros());
    if let Some(r) = host {
        return Ok((
            r.network,
            format!("the server's address: the host route it pushed, topology {topology}"),
        ));
    }
    // client-to-client: the tunnel network itself is pushed; the server holds its first address.
    let network = c.routes.iter().filter(own).find(|r| {
        let mask = u32::from(r.netmask);
        mask != u32::MAX && u32::from(local) & mask == u32::from(r.network) & mask
    });
    if let Some(r) = network {
        let first = Ipv4Addr::from((u32::from(r.network) & u32::from(r.netmask)) | 1);
        if first != local {
            return Ok((
                first,
                format!(
                    "the first address of the pushed tunnel network {}/{}, topology {topology}",
                    r.network,
                    u32::from(r.netmask).leading_ones()
                ),
            ));
        }
    }
    let peer = peer.ok_or("pushed ifconfig has no peer address")?;
    Ok((
        peer,
        format!(
            "the {topology} peer (the server pushed no route to its own address; see --target)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvpn::session::PushAccumulator;

    fn pushed(reply: &str) -> PushedConfig {
        PushAccumulator::new()
            .feed(reply)
            .expect("valid reply")
            .expect("complete reply")
    }

    fn v4(reply: &str) -> (IpAddr, IpAddr) {
        let t = pick(&pushed(reply), false, None).expect("target");
        (t.local, t.remote)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_pings_the_route_gateway() {
        let (local, remote) =
            v4("PUSH_REPLY,topology subnet,route-gateway 10.8.0.1,ifconfig 10.8.0.2 255.255.255.0");
        assert_eq!((local, remote), (ip("10.8.0.2"), ip("10.8.0.1")));
    }

    #[test]
    fn net30_pings_the_servers_host_route_not_the_peer() {
        // What `server 10.8.0.0 255.255.255.0` + `topology net30` pushes to its second client.
        let reply = "PUSH_REPLY,route 10.9.0.0 255.255.255.0,route 10.8.0.1,topology net30,ifconfig 10.8.0.6 10.8.0.5";
        assert_eq!(v4(reply), (ip("10.8.0.6"), ip("10.8.0.1")));
        let t = pick(&pushed(reply), false, None).unwrap();
        assert!(t.why.contains("host route"), "{}", t.why);
        // A host behind the server pushed as a host route too: the one next to our address wins.
        let reply =
            "PUSH_REPLY,route 172.16.5.9,route 10.8.0.1,topology net30,ifconfig 10.8.0.6 10.8.0.5";
        assert_eq!(v4(reply).1, ip("10.8.0.1"));
    }

    #[test]
    fn net30_with_client_to_client_pings_the_networks_first_address() {
        let reply =
            "PUSH_REPLY,route 10.8.0.0 255.255.255.0,topology net30,ifconfig 10.8.0.10 10.8.0.9";
        assert_eq!(v4(reply).1, ip("10.8.0.1"));
    }

    #[test]
    fn p2p_without_any_route_falls_back_to_the_peer_and_says_so() {
        let t = pick(
            &pushed("PUSH_REPLY,topology p2p,ifconfig 10.8.0.6 10.8.0.5"),
            false,
            None,
        )
        .unwrap();
        assert_eq!(t.remote, ip("10.8.0.5"));
        assert!(t.why.contains("--target"), "{}", t.why);
    }

    #[test]
    fn target_overrides_and_ipv6_uses_the_ifconfig_ipv6_remote() {
        let c = pushed("PUSH_REPLY,topology subnet,route-gateway 10.8.0.1,ifconfig 10.8.0.2 255.255.255.0,ifconfig-ipv6 fd00:8::1000/64 fd00:8::1");
        let t = pick(&c, false, Some(ip("10.9.0.2"))).unwrap();
        assert_eq!((t.local, t.remote), (ip("10.8.0.2"), ip("10.9.0.2")));
        assert_eq!(t.why, "given with --target");
        let t = pick(&c, true, None).unwrap();
        assert_eq!((t.local, t.remote), (ip("fd00:8::1000"), ip("fd00:8::1")));
        let t = pick(&c, false, Some(ip("fd00:8::1"))).unwrap();
        assert_eq!(t.local, ip("fd00:8::1000"));
        assert!(pick(&c, true, Some(ip("10.8.0.1"))).is_err());
    }
}
