//! PUSH_REPLY building (§8.2, §8.3), the server side of `push.rs`: the options one client gets, split into
//! several `PUSH_REPLY,…` messages with `push-continuation 2` (more follow) / `1` (last) when they would not
//! fit in one, as OpenVPN's `push.c` does. Compression is never pushed.
//!
//! Layer: codec over TLS plaintext only; the addresses and timers come from the caller.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::push::Topology;

/// The longest PUSH_REPLY message built (OpenVPN's `PUSH_BUNDLE_SIZE`); continuation splits beyond it.
pub const MAX_PUSH_MESSAGE: usize = 1024;
/// Room kept in each message for `,push-continuation N`.
const CONTINUATION_ROOM: usize = ",push-continuation 2".len();

/// What one client is pushed.
#[derive(Debug, Clone)]
pub struct PushReplyParams<'a> {
    /// Topology of the server's tunnel.
    pub topology: Topology,
    /// subnet: `(client address, netmask)`; net30/p2p: `(client address, server-side peer address)`.
    pub ifconfig: (Ipv4Addr, Ipv4Addr),
    /// subnet: the server's tunnel address, pushed as `route-gateway`.
    pub route_gateway: Option<Ipv4Addr>,
    /// Routes the server helper pushes (net30): `(network, netmask)`.
    pub routes: &'a [(Ipv4Addr, Ipv4Addr)],
    /// `ifconfig-ipv6 ADDR/BITS SERVER`: `(client address, prefix length, server address)`.
    pub ifconfig_ipv6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    /// The client's peer-id for P_DATA_V2.
    pub peer_id: u32,
    /// The negotiated data cipher's name.
    pub cipher: &'a str,
    /// `ping`/`ping-restart` from `keepalive`.
    pub ping: Option<(u32, u32)>,
    /// Push `protocol-flags cc-exit` (the client announced IV_PROTO cc-exit).
    pub cc_exit: bool,
    /// A generated `auth-token`.
    pub auth_token: Option<&'a str>,
    /// The config's `push` lines, in order (the parser refuses commas and compression in them).
    pub extra: &'a [String],
}

/// The options in push order.
fn options(p: &PushReplyParams<'_>) -> Vec<String> {
    let mut out = Vec::with_capacity(12 + p.extra.len());
    // The config's own lines first, as OpenVPN does (`push` lines, then what the server adds).
    for line in p.extra {
        let name = line.split_ascii_whitespace().next().unwrap_or("");
        if !matches!(name, "comp-lzo" | "compress") && !line.contains(',') {
            out.push(line.clone());
        }
    }
    match p.topology {
        Topology::Subnet => {
            out.push(String::from("topology subnet"));
            if let Some(g) = p.route_gateway {
                out.push(format!("route-gateway {g}"));
            }
        }
        Topology::Net30 => out.push(String::from("topology net30")),
        Topology::P2p => out.push(String::from("topology p2p")),
    }
    for (network, netmask) in p.routes {
        if *netmask == Ipv4Addr::BROADCAST {
            out.push(format!("route {network}"));
        } else {
            out.push(format!("route {network} {netmask}"));
        }
    }
    if let Some((ping, restart)) = p.ping {
        out.push(format!("ping {ping}"));
        out.push(format!("ping-restart {restart}"));
    }
    out.push(format!("ifconfig {} {}", p.ifconfig.0, p.ifconfig.1));
    if let Some((addr, bits, server)) = p.ifconfig_ipv6 {
        out.push(format!("ifconfig-ipv6 {addr}/{bits} {server}"));
    }
    out.push(format!("peer-id {}", p.peer_id));
    out.push(format!("cipher {}", p.cipher));
    if p.cc_exit {
        out.push(String::from("protocol-flags cc-exit"));
    }
    if let Some(token) = p.auth_token {
        out.push(format!("auth-token {token}"));
    }
    out
}

/// The PUSH_REPLY message(s) for one client, each at most [`MAX_PUSH_MESSAGE`] bytes (an option longer
/// than that on its own goes alone in its message). Send them in order.
pub fn build_push_reply(p: &PushReplyParams<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::from("PUSH_REPLY");
    let mut has_options = false;
    for opt in options(p) {
        let fits = current.len() + 1 + opt.len() + CONTINUATION_ROOM <= MAX_PUSH_MESSAGE;
        if has_options && !fits {
            current.push_str(",push-continuation 2");
            messages.push(core::mem::replace(&mut current, String::from("PUSH_REPLY")));
        }
        current.push(',');
        current.push_str(&opt);
        has_options = true;
    }
    if !messages.is_empty() {
        current.push_str(",push-continuation 1");
    }
    messages.push(current);
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::push::{PushAccumulator, PushedConfig, Route};

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn feed_all(messages: &[String]) -> PushedConfig {
        let mut acc = PushAccumulator::new();
        let (last, first) = messages.split_last().unwrap();
        for m in first {
            assert!(m.len() <= MAX_PUSH_MESSAGE, "{}", m.len());
            assert_eq!(acc.feed(m).unwrap(), None);
        }
        acc.feed(last).unwrap().unwrap()
    }

    #[test]
    fn subnet_reply_parses_back() {
        let extra = [
            String::from("dhcp-option DNS 10.8.0.1"),
            String::from("route 192.168.10.0 255.255.255.0"),
        ];
        let p = PushReplyParams {
            topology: Topology::Subnet,
            ifconfig: (a("10.8.0.2"), a("255.255.255.0")),
            route_gateway: Some(a("10.8.0.1")),
            routes: &[],
            ifconfig_ipv6: Some((
                "fd00:8::1000".parse().unwrap(),
                64,
                "fd00:8::1".parse().unwrap(),
            )),
            peer_id: 3,
            cipher: "AES-256-GCM",
            ping: Some((10, 60)),
            cc_exit: true,
            auth_token: Some("SESS_ID_AT_abc"),
            extra: &extra,
        };
        let messages = build_push_reply(&p);
        assert_eq!(messages.len(), 1);
        assert!(!messages[0].contains("comp"));
        let c = feed_all(&messages);
        assert_eq!(c.topology, Topology::Subnet);
        assert_eq!(c.ifconfig, Some((a("10.8.0.2"), a("255.255.255.0"))));
        assert_eq!(c.route_gateway, Some(a("10.8.0.1")));
        assert_eq!(
            c.ifconfig_ipv6,
            Some((
                "fd00:8::1000".parse().unwrap(),
                64,
                Some("fd00:8::1".parse().unwrap())
            ))
        );
        assert_eq!(
            (c.peer_id, c.cipher.as_deref()),
            (Some(3), Some("AES-256-GCM"))
        );
        assert_eq!(
            (c.ping, c.ping_restart, c.cc_exit),
            (Some(10), Some(60), true)
        );
        assert_eq!(c.auth_token.as_deref(), Some("SESS_ID_AT_abc"));
        assert_eq!(c.dns, [core::net::IpAddr::V4(a("10.8.0.1"))]);
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.compression, None);
    }

    #[test]
    fn net30_reply_and_continuation() {
        let extra: Vec<String> = (0..200)
            .map(|i| format!("route 172.16.{i}.0 255.255.255.0"))
            .collect();
        let p = PushReplyParams {
            topology: Topology::Net30,
            ifconfig: (a("10.8.0.6"), a("10.8.0.5")),
            route_gateway: None,
            routes: &[(a("10.8.0.1"), Ipv4Addr::BROADCAST)],
            ifconfig_ipv6: None,
            peer_id: 0,
            cipher: "CHACHA20-POLY1305",
            ping: None,
            cc_exit: false,
            auth_token: None,
            extra: &extra,
        };
        let messages = build_push_reply(&p);
        assert!(messages.len() > 1);
        for (i, m) in messages.iter().enumerate() {
            let last = i + 1 == messages.len();
            assert!(m.starts_with("PUSH_REPLY,"));
            assert!(m.ends_with(if last {
                ",push-continuation 1"
            } else {
                ",push-continuation 2"
            }));
        }
        let c = feed_all(&messages);
        assert_eq!(c.topology, Topology::Net30);
        assert_eq!(c.ifconfig, Some((a("10.8.0.6"), a("10.8.0.5"))));
        assert_eq!(c.routes.len(), 201);
        assert_eq!(
            c.routes[200],
            Route {
                network: a("10.8.0.1"),
                netmask: Ipv4Addr::BROADCAST,
                gateway: None,
                metric: None
            }
        );
        assert_eq!(
            (c.peer_id, c.cipher.as_deref(), c.ping, c.cc_exit),
            (Some(0), Some("CHACHA20-POLY1305"), None, false)
        );
    }
}
