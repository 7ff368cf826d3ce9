//! PUSH_REPLY parsing (§8.2, §8.3): continuation handling and the typed options a routed-tun client uses.
//! Unknown options are logged and ignored, as a robust 2.6 client does.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a PUSH_REPLY could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The message does not start with `PUSH_REPLY`.
    NotPushReply,
    /// A known option has a malformed argument; the option name says which.
    BadOption(&'static str),
    /// The continuation parts exceeded the size limit.
    TooLong,
    /// A `pull-filter reject` matched a pushed option.
    Rejected,
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::NotPushReply => f.write_str("pushed options: not a PUSH_REPLY"),
            PushError::BadOption(name) => write!(f, "pushed option `{name}`: bad argument"),
            PushError::TooLong => f.write_str("pushed options: reply too long"),
            PushError::Rejected => f.write_str("pushed option refused by pull-filter reject"),
        }
    }
}

/// `topology` (§8.3): how `ifconfig` is read. The default without a push is net30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Topology {
    /// `ifconfig local remote` with a /30 per client.
    #[default]
    Net30,
    /// `ifconfig local remote`, point to point.
    P2p,
    /// `ifconfig local netmask`.
    Subnet,
}

/// A pushed IPv4 `route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Network address.
    pub network: Ipv4Addr,
    /// Netmask (default 255.255.255.255).
    pub netmask: Ipv4Addr,
    /// Explicit gateway; `None` = the tunnel gateway (`vpn_gateway`).
    pub gateway: Option<Ipv4Addr>,
    /// Metric, if given.
    pub metric: Option<u32>,
}

/// A pushed `route-ipv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route6 {
    /// Prefix.
    pub network: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Explicit gateway; `None` = the ifconfig-ipv6 remote.
    pub gateway: Option<Ipv6Addr>,
}

/// `redirect-gateway` flags that matter to a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedirectGateway {
    /// `def1`: use 0.0.0.0/1 + 128.0.0.0/1.
    pub def1: bool,
    /// `ipv6`: also redirect IPv6.
    pub ipv6: bool,
    /// `!ipv4`: do not redirect IPv4.
    pub no_ipv4: bool,
    /// `local`: the server is on the local network, no host route needed.
    pub local: bool,
    /// `block-local`: block access to the local network.
    pub block_local: bool,
}

/// The configuration the server pushed, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushedConfig {
    /// `topology`.
    pub topology: Topology,
    /// `ifconfig A B`: (local address, netmask for subnet / remote endpoint for net30 and p2p).
    pub ifconfig: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `ifconfig-ipv6 addr/bits [remote]`.
    pub ifconfig_ipv6: Option<(Ipv6Addr, u8, Option<Ipv6Addr>)>,
    /// `route-gateway G` (`None` also for `dhcp`).
    pub route_gateway: Option<Ipv4Addr>,
    /// `route` entries.
    pub routes: Vec<Route>,
    /// `route-ipv6` entries.
    pub routes_ipv6: Vec<Route6>,
    /// `redirect-gateway`.
    pub redirect_gateway: Option<RedirectGateway>,
    /// `dhcp-option DNS` / `DNS6` servers.
    pub dns: Vec<IpAddr>,
    /// `dhcp-option DOMAIN` / `DOMAIN-SEARCH`.
    pub domains: Vec<String>,
    /// `peer-id N`: use P_DATA_V2 with this id.
    pub peer_id: Option<u32>,
    /// `cipher NAME`: the negotiated data cipher.
    pub cipher: Option<String>,
    /// `ping n` seconds.
    pub ping: Option<u32>,
    /// `ping-restart n` seconds.
    pub ping_restart: Option<u32>,
    /// `ping-exit n` seconds.
    pub ping_exit: Option<u32>,
    /// `tun-mtu n`.
    pub tun_mtu: Option<u16>,
    /// `protocol-flags tls-ekm` or `key-derivation tls-ekm`: data keys from the TLS exporter.
    pub tls_ekm: bool,
    /// `protocol-flags cc-exit`.
    pub cc_exit: bool,
    /// `protocol-flags dyn-tls-crypt`.
    pub dyn_tls_crypt: bool,
    /// `auth-token T`.
    pub auth_token: Option<AuthToken>,
    /// `comp-lzo`/`compress` was pushed (framing requested).
    pub compression: Option<String>,
}

/// A pushed `auth-token`: it stands in for the password, so it is wiped when dropped and `Debug` does not
/// show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthToken(String);

impl AuthToken {
    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for AuthToken {
    fn from(token: &str) -> Self {
        AuthToken(String::from(token))
    }
}

impl core::ops::Deref for AuthToken {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthToken(<redacted, {} bytes>)", self.0.len())
    }
}

impl zeroize::Zeroize for AuthToken {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for AuthToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self);
    }
}

impl PushedConfig {
    /// Our tunnel IPv4 address.
    pub fn local_address(&self) -> Option<Ipv4Addr> {
        self.ifconfig.map(|(a, _)| a)
    }

    /// The tunnel netmask (subnet) or /30 (net30) or /32 (p2p).
    pub fn netmask(&self) -> Option<Ipv4Addr> {
        match (self.topology, self.ifconfig) {
            (Topology::Subnet, Some((_, mask))) => Some(mask),
            (Topology::Net30, Some(_)) => Some(Ipv4Addr::new(255, 255, 255, 252)),
            (Topology::P2p, Some(_)) => Some(Ipv4Addr::new(255, 255, 255, 255)),
            _ => None,
        }
    }

    /// The tunnel gateway (`vpn_gateway`): `route-gateway`, else the net30/p2p remote, else the first
    /// address of the subnet.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        if let Some(g) = self.route_gateway {
            return Some(g);
        }
        match (self.topology, self.ifconfig) {
            (Topology::Subnet, Some((a, mask))) => {
                Some(Ipv4Addr::from((u32::from(a) & u32::from(mask)) | 1))
            }
            (_, Some((_, remote))) => Some(remote),
            _ => None,
        }
    }

    /// Applies one option line; unknown options are logged and ignored.
    fn apply(&mut self, line: &str) -> Result<(), PushError> {
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next() else {
            return Ok(());
        };
        let args: Vec<&str> = words.collect();
        let a = |i: usize| args.get(i).copied();
        match name {
            "topology" => {
                self.topology = match a(0) {
                    Some("subnet") => Topology::Subnet,
                    Some("net30") => Topology::Net30,
                    Some("p2p") => Topology::P2p,
                    _ => return Err(PushError::BadOption("topology")),
                }
            }
            "ifconfig" => self.ifconfig = Some((ip4(a(0), "ifconfig")?, ip4(a(1), "ifconfig")?)),
            "ifconfig-ipv6" => {
                let (addr, bits) = ip6_prefix(a(0), "ifconfig-ipv6")?;
                let remote = a(1)
                    .map(|r| r.parse().map_err(|_| PushError::BadOption("ifconfig-ipv6")))
                    .transpose()?;
                self.ifconfig_ipv6 = Some((addr, bits, remote));
            }
            "route-gateway" => {
                self.route_gateway = match a(0) {
                    Some("dhcp") => None,
                    g => Some(ip4(g, "route-gateway")?),
                }
            }
            "route" => {
                let network = ip4(a(0), "route")?;
                let netmask = match a(1) {
                    None | Some("default") => Ipv4Addr::BROADCAST,
                    m => ip4(m, "route")?,
                };
                let gateway = match a(2) {
                    None | Some("vpn_gateway") | Some("default") => None,
                    g => Some(ip4(g, "route")?),
                };
                let metric = a(3).and_then(|m| m.parse().ok());
                self.routes.push(Route {
                    network,
                    netmask,
                    gateway,
                    metric,
                });
            }
            "route-ipv6" => {
                let (network, prefix_len) = ip6_prefix(a(0), "route-ipv6")?;
                let gateway = a(1).and_then(|g| g.parse().ok());
                self.routes_ipv6.push(Route6 {
                    network,
                    prefix_len,
                    gateway,
                });
            }
            "redirect-gateway" | "redirect-private" => {
                let mut r = RedirectGateway::default();
                for flag in &args {
                    match *flag {
                        "def1" => r.def1 = true,
                        "ipv6" => r.ipv6 = true,
                        "!ipv4" => r.no_ipv4 = true,
                        "local" => r.local = true,
                        "block-local" => r.block_local = true,
                        _ => {}
                    }
                }
                if name == "redirect-gateway" {
                    self.redirect_gateway = Some(r);
                }
            }
            "dhcp-option" => match (a(0), a(1)) {
                (Some("DNS") | Some("DNS6"), Some(addr)) => self.dns.push(
                    addr.parse()
                        .map_err(|_| PushError::BadOption("dhcp-option DNS"))?,
                ),
                (Some("DOMAIN") | Some("DOMAIN-SEARCH"), Some(d)) => {
                    self.domains.push(d.to_string())
                }
                _ => log::debug!("pushed option ignored: {line}"),
            },
            // 2.6 `dns` option: `dns server N address A[:port] [A ...]`, `dns search-domains D ...`.
            // Other `dns server N` settings (dnssec, transport, sni, resolve-domains) are ignored.
            "dns" => match (a(0), a(2)) {
                (Some("server"), Some("address")) => {
                    for addr in args.iter().skip(3) {
                        self.dns.push(
                            dns_address(addr).ok_or(PushError::BadOption("dns server address"))?,
                        );
                    }
                }
                (Some("search-domains"), _) => self
                    .domains
                    .extend(args.iter().skip(1).map(|d| d.to_string())),
                _ => log::debug!("pushed option ignored: {line}"),
            },
            "peer-id" => {
                let id: u32 = num(a(0), "peer-id")?;
                if id > 0x00ff_ffff {
                    return Err(PushError::BadOption("peer-id"));
                }
                self.peer_id = Some(id);
            }
            "cipher" => self.cipher = Some(a(0).ok_or(PushError::BadOption("cipher"))?.to_string()),
            "ping" => self.ping = Some(num(a(0), "ping")?),
            "ping-restart" => self.ping_restart = Some(num(a(0), "ping-restart")?),
            "ping-exit" => self.ping_exit = Some(num(a(0), "ping-exit")?),
            "tun-mtu" => self.tun_mtu = Some(num(a(0), "tun-mtu")?),
            "protocol-flags" => {
                for flag in &args {
                    match *flag {
                        "tls-ekm" => self.tls_ekm = true,
                        "cc-exit" => self.cc_exit = true,
                        "dyn-tls-crypt" => self.dyn_tls_crypt = true,
                        other => log::warn!("pushed protocol-flags: unknown flag {other}"),
                    }
                }
            }
            "key-derivation" => self.tls_ekm = a(0) == Some("tls-ekm"),
            "auth-token" => self.auth_token = a(0).map(AuthToken::from),
            "comp-lzo" | "compress" => self.compression = Some(line.to_string()),
            "push-continuation" => {}
            _ => log::info!("pushed option ignored: {name}"),
        }
        Ok(())
    }
}

fn ip4(s: Option<&str>, opt: &'static str) -> Result<Ipv4Addr, PushError> {
    s.and_then(|s| s.parse().ok())
        .ok_or(PushError::BadOption(opt))
}

fn ip6_prefix(s: Option<&str>, opt: &'static str) -> Result<(Ipv6Addr, u8), PushError> {
    let s = s.ok_or(PushError::BadOption(opt))?;
    let (addr, bits) = s.split_once('/').unwrap_or((s, "128"));
    let addr = addr.parse().map_err(|_| PushError::BadOption(opt))?;
    let bits: u8 = bits.parse().map_err(|_| PushError::BadOption(opt))?;
    if bits > 128 {
        return Err(PushError::BadOption(opt));
    }
    Ok((addr, bits))
}

/// A `dns server` address: `1.2.3.4`, `1.2.3.4:53`, `fd00::1`, `[fd00::1]:53`.
fn dns_address(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    s.rsplit_once(':').and_then(|(ip, port)| {
        port.parse::<u16>()
            .ok()
            .and(ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
    })
}

fn num<T: core::str::FromStr>(s: Option<&str>, opt: &'static str) -> Result<T, PushError> {
    s.and_then(|s| s.parse().ok())
        .ok_or(PushError::BadOption(opt))
}

/// What a `pull-filter` does with the pushed options it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    /// Apply the option (and stop looking at later filters).
    Accept,
    /// Drop the option silently.
    Ignore,
    /// Refuse the whole push (the client reconnects).
    Reject,
}

/// A `pull-filter ACTION "text"`: matches pushed options that start with `text`; the first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFilter {
    /// What to do.
    pub action: FilterAction,
    /// The option prefix to match.
    pub text: String,
}

/// Options `route-nopull` drops: routes, redirection and DNS settings.
const ROUTE_NOPULL: &[&str] = &[
    "route",
    "route-ipv6",
    "redirect-gateway",
    "redirect-private",
    "dhcp-option",
    "block-outside-dns",
    "dns",
];

/// Collects PUSH_REPLY parts (`push-continuation 2` = more follow, `1` = last) and yields the config
/// once the final part arrives. `pull-filter`s and `route-nopull` apply to every option.
#[derive(Debug, Clone, Default)]
pub struct PushAccumulator {
    config: PushedConfig,
    bytes: usize,
    filters: Vec<PullFilter>,
    route_nopull: bool,
}

/// Upper bound on the total size of all parts of one reply.
const MAX_TOTAL: usize = 64 * 1024;

impl PushAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// An accumulator applying `pull-filter`s (in config order) and `route-nopull`.
    pub fn with_filters(filters: Vec<PullFilter>, route_nopull: bool) -> Self {
        PushAccumulator {
            filters,
            route_nopull,
            ..Self::default()
        }
    }

    /// Whether `opt` survives the filters; `Err` for a `reject` match.
    fn admit(&self, opt: &str) -> Result<bool, PushError> {
        if let Some(f) = self
            .filters
            .iter()
            .find(|f| opt.starts_with(f.text.as_str()))
        {
            match f.action {
                FilterAction::Accept => {}
                FilterAction::Ignore => {
                    log::info!("pushed option ignored by pull-filter: {opt}");
                    return Ok(false);
                }
                FilterAction::Reject => return Err(PushError::Rejected),
            }
        }
        let name = opt.split_ascii_whitespace().next().unwrap_or("");
        if self.route_nopull && ROUTE_NOPULL.contains(&name) {
            log::info!("pushed option ignored by route-nopull: {opt}");
            return Ok(false);
        }
        Ok(true)
    }

    /// Feeds one `PUSH_REPLY,...` message. Returns the complete config after the last part.
    pub fn feed(&mut self, message: &str) -> Result<Option<PushedConfig>, PushError> {
        let rest = message
            .strip_prefix("PUSH_REPLY")
            .ok_or(PushError::NotPushReply)?;
        self.bytes = self.bytes.saturating_add(message.len());
        if self.bytes > MAX_TOTAL {
            return Err(PushError::TooLong);
        }
        let mut more = false;
        for opt in rest.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if let Some(v) = opt.strip_prefix("push-continuation") {
                more = v.trim() == "2";
                continue;
            }
            if self.admit(opt)? {
                match self.config.apply(opt) {
                    Ok(()) => {}
                    // Without these the tunnel cannot work: refuse the push.
                    Err(
                        e @ PushError::BadOption("ifconfig" | "peer-id" | "cipher" | "topology"),
                    ) => return Err(e),
                    // OpenVPN only warns about other malformed pushed options and goes on.
                    Err(e) => log::warn!("{e}: `{opt}` ignored"),
                }
            }
        }
        if more {
            return Ok(None);
        }
        self.bytes = 0;
        Ok(Some(core::mem::take(&mut self.config)))
    }
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    #[test]
    fn pull_filters_and_route_nopull() {
        let filters = alloc::vec![
            PullFilter {
                action: FilterAction::Accept,
                text: "route 10.9.".into()
            },
            PullFilter {
                action: FilterAction::Ignore,
                text: "route".into()
            },
            PullFilter {
                action: FilterAction::Ignore,
                text: "dhcp-option DNS".into()
            },
        ];
        let mut acc = PushAccumulator::with_filters(filters, false);
        let c = acc
            .feed("PUSH_REPLY,route 10.9.0.0 255.255.255.0,route 10.10.0.0 255.255.0.0,dhcp-option DNS 1.1.1.1,ping 3")
            .unwrap()
            .unwrap();
        assert_eq!(c.routes.len(), 1);
        assert!(c.dns.is_empty());
        assert_eq!(c.ping, Some(3));
        let reject = alloc::vec![PullFilter {
            action: FilterAction::Reject,
            text: "redirect-gateway".into()
        }];
        assert_eq!(
            PushAccumulator::with_filters(reject, false).feed("PUSH_REPLY,redirect-gateway def1"),
            Err(PushError::Rejected)
        );
        let c = PushAccumulator::with_filters(Vec::new(), true)
            .feed("PUSH_REPLY,route 10.9.0.0,redirect-gateway def1,dhcp-option DNS 10.8.0.1,ifconfig 10.8.0.2 255.255.255.0")
            .unwrap()
            .unwrap();
        assert!(c.routes.is_empty() && c.redirect_gateway.is_none() && c.dns.is_empty());
        assert!(c.ifconfig.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testvec::{hex, REAL_PUSH_REPLY};

    #[test]
    fn parses_real_push_reply() {
        let bytes = hex(REAL_PUSH_REPLY);
        let msg = crate::session::split_messages(&bytes).next().unwrap();
        let crate::session::ControlMessage::PushReply(text) =
            crate::session::ControlMessage::parse(msg)
        else {
            panic!("not a push reply")
        };
        let c = PushAccumulator::new().feed(text).unwrap().unwrap();
        assert_eq!(c.topology, Topology::Subnet);
        assert_eq!(
            c.ifconfig,
            Some((Ipv4Addr::new(10, 8, 0, 2), Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(c.route_gateway, Some(Ipv4Addr::new(10, 8, 0, 1)));
        assert_eq!(c.gateway(), Some(Ipv4Addr::new(10, 8, 0, 1)));
        assert_eq!(
            c.routes,
            [Route {
                network: Ipv4Addr::new(10, 9, 0, 0),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                gateway: None,
                metric: None
            }]
        );
        assert_eq!(
            (c.ping, c.ping_restart, c.peer_id, c.tun_mtu),
            (Some(2), Some(10), Some(0), Some(1500))
        );
        assert_eq!(c.cipher.as_deref(), Some("AES-256-GCM"));
        assert!(c.tls_ekm && c.cc_exit && c.dyn_tls_crypt);
        assert!(c
            .auth_token
            .as_deref()
            .unwrap()
            .starts_with("SESS_ID_AT_sjKEVk2T"));
    }

    #[test]
    fn net30_ipv6_dns_redirect_and_continuation() {
        let mut acc = PushAccumulator::new();
        let part1 = "PUSH_REPLY,route 10.8.0.1,topology net30,dhcp-option DNS 10.8.0.1,redirect-gateway def1 ipv6,push-continuation 2";
        assert_eq!(acc.feed(part1), Ok(None));
        let part2 = "PUSH_REPLY,ifconfig-ipv6 fd00:8::1000/64 fd00:8::1,route-ipv6 2000::/3,ifconfig 10.8.0.6 10.8.0.5,dhcp-option DOMAIN example.org,unknown-thing 1,push-continuation 1";
        let c = acc.feed(part2).unwrap().unwrap();
        assert_eq!(c.topology, Topology::Net30);
        assert_eq!(c.gateway(), Some(Ipv4Addr::new(10, 8, 0, 5)));
        assert_eq!(c.netmask(), Some(Ipv4Addr::new(255, 255, 255, 252)));
        assert_eq!(c.routes[0].netmask, Ipv4Addr::BROADCAST);
        assert_eq!(c.dns, [IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1))]);
        assert_eq!(c.domains, ["example.org"]);
        assert_eq!(
            c.redirect_gateway,
            Some(RedirectGateway {
                def1: true,
                ipv6: true,
                ..Default::default()
            })
        );
        assert_eq!(c.ifconfig_ipv6.map(|(_, b, _)| b), Some(64));
        assert_eq!(c.routes_ipv6[0].prefix_len, 3);
        // Subnet without route-gateway: the first address of the network.
        let c = PushAccumulator::new()
            .feed("PUSH_REPLY,topology subnet,ifconfig 10.1.2.7 255.255.255.0")
            .unwrap()
            .unwrap();
        assert_eq!(c.gateway(), Some(Ipv4Addr::new(10, 1, 2, 1)));
        assert_eq!(
            PushAccumulator::new().feed("PUSH_REPLY").unwrap(),
            Some(PushedConfig::default())
        );
    }

    #[test]
    fn dns_option_servers_and_domains() {
        let c = PushAccumulator::new()
            .feed("PUSH_REPLY,dns server 0 address 10.8.0.1 [fd00::53]:5353 10.8.0.2:53,dns server 0 dnssec yes,dns search-domains a.example b.example")
            .unwrap()
            .unwrap();
        let v6: IpAddr = "fd00::53".parse().unwrap();
        assert_eq!(
            c.dns,
            [
                IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1)),
                v6,
                IpAddr::V4(Ipv4Addr::new(10, 8, 0, 2))
            ]
        );
        assert_eq!(c.domains, ["a.example", "b.example"]);
        // A malformed non-essential option is skipped, as OpenVPN does.
        let c = PushAccumulator::new()
            .feed("PUSH_REPLY,dns server 0 address nonsense,ping 5")
            .unwrap()
            .unwrap();
        assert!(c.dns.is_empty());
        assert_eq!(c.ping, Some(5));
    }

    #[test]
    fn rejects_bad_known_options() {
        assert_eq!(
            PushAccumulator::new().feed("PUSH_REPLY,peer-id 99999999"),
            Err(PushError::BadOption("peer-id"))
        );
        assert_eq!(
            PushAccumulator::new().feed("PUSH_REPLY,ifconfig 10.0.0"),
            Err(PushError::BadOption("ifconfig"))
        );
        assert_eq!(
            PushAccumulator::new().feed("AUTH_FAILED"),
            Err(PushError::NotPushReply)
        );
    }
}
