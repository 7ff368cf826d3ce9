//! The router's two entry points: Ethernet frames from the private LAN and IP packets from the tunnel,
//! plus timers. Ties ARP, ICMP, forwarding policy, NAT, fragmentation, MSS clamping, DHCP and DNS
//! together.
//!
//! Layer: sans-IO state machine. Every output goes through the caller's [`Sink`] as a byte slice that is
//! only valid during the call; the router never reads a clock (`now` is an argument), never draws
//! randomness after construction except from its own seeded ChaCha20 stream, and on the forwarding path
//! works in two buffers allocated once in [`Router::new`].

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use rand_chacha::rand_core::{CryptoRngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol,
    Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr,
};

use self::port::LanPort;
use crate::arp;
use crate::dns::DnsForwarder;
use crate::firewall::{Action, Firewall, Packet4};
use crate::forward::{TunnelConfig, TunnelState};
use crate::frag::{Direction, Fragmenter, Reassembler, Reassembly};
use crate::icmp::{ErrorRateLimit, IcmpError, ECHO_REQUEST};
use crate::ip::{self, Ipv4Info};
use crate::mss;
use crate::nat::{NatError, NatTable};

const ETH: usize = 14;
/// Room for an Ethernet header and the largest IPv4 datagram.
const BUFFER_LEN: usize = ETH + 65535;
const DHCP_SERVER_PORT: u16 = 67;
const DHCP_CLIENT_PORT: u16 = 68;
const DNS_PORT: u16 = 53;

/// Where the router's output goes. Each slice is valid only during the call; copy it into a device
/// transmit buffer.
pub trait Sink {
    /// An Ethernet frame to send on LAN port `port` (no FCS, not padded to 60 bytes).
    fn lan_frame(&mut self, port: PortId, frame: &[u8]);
    /// An IPv4 or IPv6 packet for the OpenVPN engine to encrypt and send (at most the tunnel MTU).
    fn tunnel_packet(&mut self, packet: &[u8]);
}

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Sent on (into the tunnel or onto the LAN), possibly as several fragments.
    Forwarded,
    /// The router answered it itself (ARP, ping, DHCP, DNS SERVFAIL, relayed DNS query).
    Answered,
    /// Held: a fragment waiting for the rest, or a packet waiting for ARP.
    Queued,
    /// Accepted with nothing to send (an ARP reply learned, a DHCP RELEASE, ...).
    Consumed,
    /// Dropped; an ICMP error may have been sent back.
    Dropped(DropReason),
}

/// Why an input was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A header failed validation (length, version, checksum).
    Malformed,
    /// Addressed to another host on the LAN or to a multicast group.
    NotForUs,
    /// Source or destination address that must not be forwarded (RFC 1812 section 5.3.7).
    Martian,
    /// The tunnel is down; ICMP network unreachable was sent.
    TunnelDown,
    /// The tunnel does not route this destination; ICMP network unreachable was sent.
    NoRoute,
    /// IPv6 the tunnel does not carry (no IPv6 pushed, not routed, or no known LAN neighbour); from the
    /// LAN, ICMPv6 destination unreachable was sent.
    Ipv6NotRouted,
    /// TTL (hop limit) ran out; ICMP time exceeded was sent (IPv4).
    TtlExceeded,
    /// DF set and larger than the next hop's MTU; ICMP fragmentation needed was sent.
    TooBig,
    /// NAT could not translate it.
    Nat(NatError),
    /// A fragment was inconsistent or over the reassembly memory bound.
    Reassembly,
    /// Too many packets already wait for ARP resolution.
    ArpQueueFull,
    /// A protocol or message the router does not handle.
    Unsupported,
    /// A frame for a LAN port the router does not have.
    UnknownPort,
    /// From a client port, with a source address that is not the client's (anti-spoofing).
    Spoofed,
    /// Refused by the client's firewall rules (dropped silently, as Qubes does).
    Firewall,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Malformed => f.write_str("malformed header"),
            DropReason::NotForUs => f.write_str("not addressed to the router"),
            DropReason::Martian => f.write_str("martian address"),
            DropReason::TunnelDown => f.write_str("tunnel down"),
            DropReason::NoRoute => f.write_str("no route through the tunnel"),
            DropReason::Ipv6NotRouted => f.write_str("IPv6 not routed by the tunnel"),
            DropReason::TtlExceeded => f.write_str("TTL exceeded"),
            DropReason::TooBig => f.write_str("DF set and too big"),
            DropReason::Nat(e) => write!(f, "NAT: {e}"),
            DropReason::Reassembly => f.write_str("fragment dropped"),
            DropReason::ArpQueueFull => f.write_str("ARP queue full"),
            DropReason::Unsupported => f.write_str("unsupported protocol"),
            DropReason::UnknownPort => f.write_str("no such LAN port"),
            DropReason::Spoofed => f.write_str("source is not the client's address"),
            DropReason::Firewall => f.write_str("refused by the client's firewall rules"),
        }
    }
}

/// A LAN port's number: the index of its [`PortConfig`] in [`RouterConfig::ports`]. Frames come in
/// with it ([`Router::handle_lan_frame`]) and go out with it ([`Sink::lan_frame`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u16);

impl PortId {
    /// The first port: the only one of a single-LAN router ([`RouterConfig::new`]).
    pub const FIRST: PortId = PortId(0);

    fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

/// Most LAN ports a router has; ports past this in [`RouterConfig::ports`] are not created.
pub const MAX_PORTS: usize = 256;

/// Which source addresses a port's hosts may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceRule {
    /// Any host address of the port's IPv4 prefix (not the gateway, network or broadcast address).
    #[default]
    Prefix,
    /// This address only: the port is one client's link (a Qubes vif). The port then holds this one
    /// host: traffic for other addresses of its prefix is not routed to it, DHCP offers only this
    /// address, and a packet with another source is dropped as [`DropReason::Spoofed`].
    Exact(Ipv4Address),
}

/// Most virtual DNS addresses a port answers on.
pub const MAX_VIRTUAL_DNS: usize = 4;

/// What a port's hosts may do: per-port anti-spoofing and firewall rules. The default is a single
/// LAN's behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortPolicy {
    /// Sources accepted for forwarding and for the gateway's DNS forwarder; others are dropped as
    /// [`DropReason::Martian`] ([`SourceRule::Prefix`]) or [`DropReason::Spoofed`]
    /// ([`SourceRule::Exact`]).
    pub sources: SourceRule,
    /// Rules for what the port's hosts send toward the tunnel and to the DNS addresses (first match
    /// wins, else the policy); `None`: everything the tunnel routes (no per-packet check).
    pub firewall: Option<Firewall>,
    /// Further addresses the gateway answers DNS (and ping) on as if they were its own, e.g. Qubes'
    /// virtual DNS 10.139.1.1 and 10.139.1.2; at most [`MAX_VIRTUAL_DNS`] (the rest are ignored).
    pub virtual_dns: Vec<Ipv4Address>,
}

impl PortPolicy {
    /// One client's link: source `client` only, these rules, these virtual DNS addresses.
    pub fn client(
        client: Ipv4Address,
        firewall: Option<Firewall>,
        virtual_dns: Vec<Ipv4Address>,
    ) -> Self {
        PortPolicy {
            sources: SourceRule::Exact(client),
            firewall,
            virtual_dns,
        }
    }
}

/// One LAN port: its link (MAC address, MTU), the gateway's addresses on it and its services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// The router's MAC address on this port (the private NIC's).
    pub mac: EthernetAddress,
    /// The gateway's address on the port with the port's prefix, e.g. 10.8.0.1/24 (MirageVPN's
    /// `--private-ipv4`).
    pub ipv4: Ipv4Cidr,
    /// MTU of the port's link (default 1500).
    pub mtu: u16,
    /// Run the DHCPv4 server on this port (default true).
    pub dhcp: bool,
    /// DHCP lease time (default 1 hour).
    pub dhcp_lease_time: Duration,
    /// Most DHCP leases held (default 253).
    pub dhcp_max_leases: usize,
    /// Run the DNS forwarder on the gateway address and announce it by DHCP (default true).
    pub dns_forwarder: bool,
    /// ARP cache entries (default 256).
    pub arp_cache_size: usize,
    /// Destinations that may wait for ARP at once (default 32) ...
    pub arp_pending_destinations: usize,
    /// ... and packets queued per destination (default 4).
    pub arp_pending_per_destination: usize,
    /// IPv6 on the port (default true): answer Neighbor Discovery for the gateway and, while the tunnel
    /// carries IPv6, advertise `ipv6_prefix` for SLAAC and route (NAT66 when `nat`) into the tunnel.
    pub ipv6: bool,
    /// The port's IPv6 /64; the gateway is its `::1`. `None` (default): a random unique local prefix
    /// (RFC 4193) drawn in [`Router::new`].
    pub ipv6_prefix: Option<Ipv6Cidr>,
    /// What the port's hosts may do.
    pub policy: PortPolicy,
}

impl PortConfig {
    /// The defaults for a port whose gateway is `ipv4` (address + prefix).
    pub fn new(mac: EthernetAddress, ipv4: Ipv4Cidr) -> Self {
        PortConfig {
            mac,
            ipv4,
            mtu: 1500,
            dhcp: true,
            dhcp_lease_time: Duration::from_secs(3600),
            dhcp_max_leases: 253,
            dns_forwarder: true,
            arp_cache_size: 256,
            arp_pending_destinations: 32,
            arp_pending_per_destination: 4,
            ipv6: true,
            ipv6_prefix: None,
            policy: PortPolicy::default(),
        }
    }
}

/// Static configuration of the private side (MirageVPN's `--private-ipv4`, `--nat`, ...): its LAN
/// ports and what they share (NAT, DNS forwarder, reassembly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// The LAN ports, numbered by their index ([`PortId`]); at most [`MAX_PORTS`].
    pub ports: Vec<PortConfig>,
    /// Source NAT LAN traffic to the tunnel address (default true). Off: plain routing, the server must
    /// `iroute` the LAN prefixes.
    pub nat: bool,
    /// NAT table capacity (default 2048, at most 32768).
    pub nat_table_size: usize,
    /// Most DNS queries in flight (default 256).
    pub dns_max_in_flight: usize,
    /// Partial datagrams reassembled at once (default 32) ...
    pub reassembly_max_datagrams: usize,
    /// ... and bytes they may hold in total (default 512 KiB).
    pub reassembly_max_bytes: usize,
}

impl RouterConfig {
    /// A single LAN (one port, [`PortId::FIRST`]) whose gateway is `private_ipv4` (address + prefix),
    /// with the defaults.
    pub fn new(private_mac: EthernetAddress, private_ipv4: Ipv4Cidr) -> Self {
        Self::with_ports(vec![PortConfig::new(private_mac, private_ipv4)])
    }

    /// These ports, with the defaults for the rest.
    pub fn with_ports(ports: Vec<PortConfig>) -> Self {
        RouterConfig {
            ports,
            nat: true,
            nat_table_size: 2048,
            dns_max_in_flight: 256,
            reassembly_max_datagrams: 32,
            reassembly_max_bytes: 512 * 1024,
        }
    }
}

/// Counters for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Packets sent into the tunnel (fragments counted one by one).
    pub to_tunnel: u64,
    /// Frames sent onto the LAN.
    pub to_lan: u64,
    /// Inputs dropped.
    pub dropped: u64,
    /// Of those, packets from a client port whose source was not the client's address.
    pub spoofed: u64,
    /// Of those, packets a client's firewall rules refused.
    pub firewall_dropped: u64,
}

/// Where a LAN frame goes at layer 2.
#[derive(Debug, Clone, Copy)]
enum L2 {
    Mac(EthernetAddress),
    Resolve(Ipv4Address),
}

/// An input the router reads and, on the in-place entry points, may rewrite.
trait Input {
    /// The input: a LAN frame, or a packet from the tunnel.
    fn bytes(&self) -> &[u8];
    /// The buffer with the IP packet at offset [`ETH`] and room for an Ethernet header in front of it
    /// (a LAN frame has its own), for the router to rewrite; `None` on the copying path.
    fn writable(&mut self) -> Option<&mut [u8]>;
}

impl Input for &[u8] {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn writable(&mut self) -> Option<&mut [u8]> {
        None
    }
}

/// The Ethernet payload of a LAN frame.
fn payload<I: Input>(frame: &I) -> &[u8] {
    frame.bytes().get(ETH..).unwrap_or(&[])
}

/// A buffer the caller lets the router rewrite: the input is `buf[at..]`, the IP packet `buf[ETH..]`.
struct InPlace<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Input for InPlace<'_> {
    fn bytes(&self) -> &[u8] {
        self.buf.get(self.at..).unwrap_or(&[])
    }

    fn writable(&mut self) -> Option<&mut [u8]> {
        Some(&mut *self.buf)
    }
}

/// Where an IPv4 packet from a LAN port goes: decided once from its header
/// ([`Router::decide_lan_v4`]), before anything is copied or changed; the copying and the in-place
/// path both execute it.
#[derive(Debug, Clone, Copy)]
enum LanRoute {
    /// For the gateway (its address or a broadcast): the gateway's services.
    Gateway,
    /// For the router's tunnel address: an echo request is answered, nothing else.
    TunnelAddress(Ipv4Address),
    /// Into the tunnel.
    Tunnel(ToTunnel),
    /// Refused with an ICMP error to the sender.
    Refuse(IcmpError, DropReason),
    /// Dropped without an answer.
    Drop(DropReason),
}

/// How a LAN packet enters the tunnel.
#[derive(Debug, Clone, Copy)]
struct ToTunnel {
    /// Source NAT to this address (NAT on).
    nat_to: Option<Ipv4Address>,
    /// The tunnel MTU: larger packets are fragmented to it.
    mtu: u16,
    /// MSS clamp for TCP SYNs.
    max_mss: u16,
}

/// Where an IPv4 packet from the tunnel goes: decided once from its header
/// ([`Router::decide_tunnel_v4`]); the copying and the in-place path both execute it.
#[derive(Debug, Clone, Copy)]
enum TunnelRoute {
    /// To a host on this port, routed as it is.
    Host(PortId),
    /// To the router's tunnel address or a gateway address: the router's own services, then (`nat`)
    /// back to the LAN host its NAT mapping names.
    Router { nat: bool },
}

/// The private-side router.
pub struct Router {
    config: RouterConfig,
    /// The LAN ports, `ports[i].id == PortId(i)`.
    ports: Vec<LanPort>,
    /// The smallest MTU of the ports, and of the ports with IPv6: the bound for a packet whose port is
    /// known only once NAT has translated it.
    min_mtu: u16,
    min_mtu6: u16,
    tunnel: TunnelState,
    dns_servers: Vec<Ipv4Address>,
    nat: NatTable,
    reassembler: Reassembler,
    dns: DnsForwarder,
    nat6: NatTable<Ipv6Address>,
    rng: ChaCha20Rng,
    icmp_limit: ErrorRateLimit,
    ident: u16,
    /// `to_tunnel` and `dropped`; the ports count what they send.
    stats: RouterStats,
    /// The packet being forwarded, at offset [`ETH`] so a frame header fits in front.
    work: Vec<u8>,
    /// Replies, ICMP errors and fragments, also at offset [`ETH`].
    aux: Vec<u8>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.config)
            .field("tunnel", &self.tunnel)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Router {
    /// Builds the router; allocates every table and both packet buffers now. `rng` seeds the NAT port
    /// choice, DNS query IDs and hash keys, and draws the ports' IPv6 prefixes that are not configured.
    pub fn new(mut config: RouterConfig, rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let hash_key = rng.next_u64();
        if config.ports.len() > MAX_PORTS {
            log::warn!(
                "router: {} LAN ports configured, using the first {MAX_PORTS}",
                config.ports.len()
            );
            config.ports.truncate(MAX_PORTS);
        }
        let mut ports = Vec::with_capacity(config.ports.len());
        for (i, port) in config.ports.iter().enumerate() {
            if let Ok(id) = u16::try_from(i) {
                ports.push(LanPort::new(PortId(id), port.clone(), rng));
            }
        }
        let mtus = |ipv6: bool| {
            config
                .ports
                .iter()
                .filter(|p| p.ipv6 || !ipv6)
                .map(|p| p.mtu)
                .min()
                .unwrap_or(0)
        };
        Router {
            min_mtu: mtus(false),
            min_mtu6: mtus(true),
            ports,
            nat: NatTable::new(config.nat_table_size, hash_key),
            reassembler: Reassembler::new(
                config.reassembly_max_datagrams,
                config.reassembly_max_bytes,
            ),
            dns: DnsForwarder::new(config.dns_max_in_flight),
            nat6: NatTable::new(config.nat_table_size, hash_key.rotate_left(29)),
            rng: ChaCha20Rng::from_seed(seed),
            icmp_limit: ErrorRateLimit::new(),
            ident: 0,
            stats: RouterStats::default(),
            work: vec![0; BUFFER_LEN],
            aux: vec![0; BUFFER_LEN],
            tunnel: TunnelState::Down,
            dns_servers: Vec::new(),
            config,
        }
    }

    /// Replaces the firewall rules of `port` (a client's rules, e.g. when they change at run time);
    /// false for a port the router does not have.
    pub fn set_firewall(&mut self, port: PortId, firewall: Option<Firewall>) -> bool {
        match (
            self.ports.get_mut(port.index()),
            self.config.ports.get_mut(port.index()),
        ) {
            (Some(p), Some(c)) => {
                p.config.policy.firewall.clone_from(&firewall);
                c.policy.firewall = firewall;
                true
            }
            _ => false,
        }
    }

    /// Adds a LAN port at run time (a client's link that appeared, e.g. a Xen vif): the first slot a
    /// [`remove_port`](Self::remove_port) freed, else a new one; `None` when [`MAX_PORTS`] are in use.
    /// The port's tables are allocated now, empty.
    pub fn add_port(&mut self, config: PortConfig) -> Option<PortId> {
        let index = match self.ports.iter().position(|p| !p.active) {
            Some(i) => i,
            None if self.ports.len() < MAX_PORTS => self.ports.len(),
            None => return None,
        };
        let id = PortId(u16::try_from(index).ok()?);
        let port = LanPort::new(id, config.clone(), &mut self.rng);
        if let (Some(slot), Some(c)) = (self.ports.get_mut(index), self.config.ports.get_mut(index))
        {
            *slot = port;
            *c = config;
        } else {
            self.ports.push(port);
            self.config.ports.push(config);
        }
        self.update_min_mtu();
        if self.tunnel_ipv6().is_some() {
            if let Some(p) = self.ports.get_mut(index).filter(|p| p.config.ipv6) {
                p.next_ra = Some(Instant::ZERO);
            }
        }
        Some(id)
    }

    /// Takes a port away (the client's link is gone): its ARP cache, DHCP leases and neighbours are
    /// dropped and it neither answers nor receives anything until [`add_port`](Self::add_port) reuses
    /// the slot. False for a port the router does not have.
    pub fn remove_port(&mut self, id: PortId) -> bool {
        let Some(config) = self
            .ports
            .get(id.index())
            .filter(|p| p.active)
            .map(|p| p.config.clone())
        else {
            return false;
        };
        let mut port = LanPort::new(id, config, &mut self.rng);
        port.active = false;
        if let Some(slot) = self.ports.get_mut(id.index()) {
            *slot = port;
        }
        self.update_min_mtu();
        true
    }

    /// True for a port the router has (configured, or added and not removed).
    pub fn has_port(&self, id: PortId) -> bool {
        self.port(id).is_some()
    }

    fn update_min_mtu(&mut self) {
        let mtus = |ipv6: bool| {
            self.ports
                .iter()
                .filter(|p| p.active && (p.config.ipv6 || !ipv6))
                .map(|p| p.config.mtu)
                .min()
                .unwrap_or(0)
        };
        (self.min_mtu, self.min_mtu6) = (mtus(false), mtus(true));
    }

    /// The configuration the router was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Counters since construction.
    pub fn stats(&self) -> RouterStats {
        RouterStats {
            to_lan: self.ports.iter().map(|p| p.frames_out).sum(),
            ..self.stats
        }
    }

    /// Number of DHCP leases held (offered, bound or declined), on all ports.
    pub fn dhcp_leases(&self) -> usize {
        self.ports
            .iter()
            .filter(|p| p.active)
            .map(|p| p.dhcp.lease_count())
            .sum()
    }

    /// Number of live NAT mappings.
    pub fn nat_mappings(&self) -> usize {
        self.nat.len()
    }

    /// The current tunnel state.
    pub fn tunnel(&self) -> &TunnelState {
        &self.tunnel
    }

    /// Tunnel up (with the pushed configuration) or down. Any change clears the NAT table and the DNS
    /// queries in flight: their public address may be gone.
    pub fn set_tunnel(&mut self, state: TunnelState) {
        if state == self.tunnel {
            return;
        }
        self.nat.clear();
        self.nat6.clear();
        self.dns = DnsForwarder::new(self.config.dns_max_in_flight);
        self.dns_servers.clear();
        if let TunnelState::Up(t) = &state {
            self.dns_servers
                .extend(t.dns_servers.iter().filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                }));
        }
        self.tunnel = state;
        let carrying = self.tunnel_ipv6().is_some();
        for port in self.ports.iter_mut().filter(|p| p.active) {
            if port.config.ipv6 && (port.advertised || carrying) {
                // Announce (or withdraw) the default route at the next tick.
                port.next_ra = Some(Instant::ZERO);
            }
        }
    }

    /// The next instant at which [`Router::tick`] has work, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        let ports = self.ports.iter().filter(|p| p.active).flat_map(|p| {
            [
                p.arp.poll_at(),
                if p.config.dhcp {
                    p.dhcp.poll_at()
                } else {
                    None
                },
                p.neighbours6.poll_at(),
                p.next_ra,
            ]
        });
        [
            self.nat.poll_at(),
            self.reassembler.poll_at(),
            self.dns.poll_at(),
        ]
        .into_iter()
        .chain(ports)
        .flatten()
        .min()
    }

    /// Runs the timers: ARP retries (may emit requests), router advertisements, and expiry of
    /// neighbours, NAT mappings, partial datagrams, DHCP leases and DNS queries.
    pub fn tick<S: Sink>(&mut self, now: Instant, out: &mut S) {
        self.nat.expire(now);
        self.reassembler.expire(now);
        self.dns.expire(now);
        self.nat6.expire(now);
        for i in 0..self.ports.len() {
            let Some(port) = self.ports.get_mut(i) else {
                break;
            };
            if !port.active {
                continue;
            }
            port.dhcp.expire(now);
            port.neighbours6.expire(now);
            let id = port.id;
            if port.next_ra.is_some_and(|at| at <= now) {
                self.send_router_advert(id, now, out);
            }
            let Some(port) = self.ports.get_mut(i) else {
                break;
            };
            let mut targets = [Ipv4Address::UNSPECIFIED; 8];
            let n = port.arp.tick(now, &mut targets);
            for &target in targets.get(..n).unwrap_or(&[]) {
                let mut frame = [0u8; arp::ARP_FRAME_LEN];
                if let Some(len) =
                    arp::build_request(&mut frame, port.config.mac, port.gateway(), target)
                {
                    port.transmit(frame.get(..len).unwrap_or(&[]), out);
                }
            }
        }
    }

    fn port(&self, id: PortId) -> Option<&LanPort> {
        self.ports.get(id.index()).filter(|p| p.active)
    }

    /// The port whose prefix has `addr` as a host address.
    #[inline]
    fn port_of_host(&self, addr: Ipv4Address) -> Option<PortId> {
        self.ports
            .iter()
            .find(|p| p.active && p.is_host(addr))
            .map(|p| p.id)
    }

    /// True if `addr` is in some port's prefix.
    #[inline]
    fn on_a_port(&self, addr: Ipv4Address) -> bool {
        self.ports.iter().any(|p| p.active && p.in_prefix(addr))
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    fn tunnel_config(&self) -> Option<&TunnelConfig> {
        match &self.tunnel {
            TunnelState::Up(t) => Some(t),
            TunnelState::Down => None,
        }
    }

    /// The tunnel's IPv6 address, when the tunnel is up and carries IPv6.
    fn tunnel_ipv6(&self) -> Option<Ipv6Address> {
        self.tunnel_config()
            .and_then(|t| t.ipv6)
            .map(|c| c.address())
    }

    fn tunnel_ipv4(&self) -> Option<Ipv4Address> {
        self.tunnel_config()
            .and_then(|t| t.ipv4)
            .map(|c| c.address())
    }

    fn count(&mut self, v: Verdict, from: &str) -> Verdict {
        if let Verdict::Dropped(reason) = v {
            self.stats.dropped += 1;
            match reason {
                DropReason::Spoofed => self.stats.spoofed += 1,
                DropReason::Firewall => self.stats.firewall_dropped += 1,
                _ => {}
            }
            log::trace!("router: dropped {from} packet: {reason}");
        }
        v
    }

    /// Handles one Ethernet frame received on LAN port `port`.
    pub fn handle_lan_frame<S: Sink>(
        &mut self,
        port: PortId,
        now: Instant,
        frame: &[u8],
        out: &mut S,
    ) -> Verdict {
        let v = self.lan_frame(port, now, frame, out);
        self.count(v, "LAN")
    }

    /// [`handle_lan_frame`](Self::handle_lan_frame) for a frame the caller lets the router rewrite: an
    /// unfragmented IPv4 packet from a LAN host into the tunnel that fits the tunnel MTU is rewritten where
    /// it lies (NAT, MSS clamp, TTL) and given to [`Sink::tunnel_packet`] from `frame` itself. Everything
    /// else is copied, and `frame` is then left unchanged.
    pub fn handle_lan_frame_in_place<S: Sink>(
        &mut self,
        port: PortId,
        now: Instant,
        frame: &mut [u8],
        out: &mut S,
    ) -> Verdict {
        let v = self.lan_frame(port, now, InPlace { buf: frame, at: 0 }, out);
        self.count(v, "LAN")
    }

    /// Handles one decrypted IP packet (IPv4 or IPv6) from the tunnel.
    pub fn handle_tunnel_packet<S: Sink>(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let v = self.tunnel_packet(now, packet, out);
        self.count(v, "tunnel")
    }

    /// [`handle_tunnel_packet`](Self::handle_tunnel_packet) for the packet at `buf[packet]`, forwarded
    /// without a copy where it can be: an unfragmented IPv4 packet for a LAN host (with NAT, for the
    /// tunnel address) that fits the LAN MTU is rewritten where it lies (NAT, MSS clamp, TTL) and leaves
    /// as the frame `buf[packet.start - 14..packet.end]`, its Ethernet header written over the 14 bytes in
    /// front of the packet (which must be free: the engine's headers, `Engine::receive_in_place`).
    /// Everything else (fragments, IPv6, the router's own services, errors) is copied, and `buf` is then
    /// left unchanged.
    pub fn handle_tunnel_packet_in_place<S: Sink>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: core::ops::Range<usize>,
        out: &mut S,
    ) -> Verdict {
        let framed = packet
            .start
            .checked_sub(ETH)
            .filter(|&start| start <= packet.end && packet.end <= buf.len());
        let v = match framed {
            Some(start) => {
                let buf = buf.get_mut(start..packet.end).unwrap_or(&mut []);
                self.tunnel_packet(now, InPlace { buf, at: ETH }, out)
            }
            None => self.tunnel_packet(now, buf.get(packet).unwrap_or(&[]), out),
        };
        self.count(v, "tunnel")
    }

    fn tunnel_packet<I: Input, S: Sink>(&mut self, now: Instant, input: I, out: &mut S) -> Verdict {
        match (&self.tunnel, input.bytes().first().map(|b| b >> 4)) {
            (TunnelState::Down, _) => Verdict::Dropped(DropReason::TunnelDown),
            (_, Some(4)) => self.tunnel_v4(now, input, out),
            (_, Some(6)) => self.tunnel_v6(now, input.bytes(), out),
            _ => Verdict::Dropped(DropReason::Malformed),
        }
    }

    fn lan_frame<I: Input, S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        input: I,
        out: &mut S,
    ) -> Verdict {
        let Some(port) = self.port(id) else {
            return Verdict::Dropped(DropReason::UnknownPort);
        };
        let (our_mac, ipv6) = (port.config.mac, port.config.ipv6);
        let Ok(eth) = EthernetFrame::new_checked(input.bytes()) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let (src_mac, dst_mac, ethertype) = (eth.src_addr(), eth.dst_addr(), eth.ethertype());
        if !src_mac.is_unicast() || src_mac == our_mac {
            return Verdict::Dropped(DropReason::Malformed);
        }
        let to_us = dst_mac == our_mac;
        match ethertype {
            EthernetProtocol::Arp => self.lan_arp(id, now, payload(&input), out),
            EthernetProtocol::Ipv4 if to_us || dst_mac.is_broadcast() => {
                self.lan_v4(id, now, src_mac, input, out)
            }
            EthernetProtocol::Ipv6 if ipv6 && (to_us || dst_mac.0[..2] == [0x33, 0x33]) => {
                self.lan_v6(id, now, src_mac, payload(&input), out)
            }
            EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 => {
                Verdict::Dropped(DropReason::NotForUs)
            }
            _ => Verdict::Dropped(DropReason::Unsupported),
        }
    }

    fn lan_arp<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        payload: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Some(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = arp::parse(payload)
        else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Router { ports, work, .. } = self;
        let Some(port) = ports.get_mut(id.index()) else {
            return Verdict::Dropped(DropReason::UnknownPort);
        };
        let gateway = port.gateway();
        let for_us = tpa == gateway;
        if sha.is_unicast() && port.is_host(spa) {
            port.arp.learn(spa, sha, for_us, now);
            if let (Some(mac), Some(queued)) =
                (port.arp.lookup(spa, now), port.arp.take_pending(spa))
            {
                for packet in queued {
                    let len = packet.len();
                    if let Some(body) = work.get_mut(ETH..ETH + len) {
                        body.copy_from_slice(&packet);
                        port.send_ethernet(work, len, mac, EthernetProtocol::Ipv4, out);
                    }
                }
            }
        }
        if operation == ArpOperation::Request && for_us && sha.is_unicast() {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: port.config.mac,
                source_protocol_addr: gateway,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            let mut frame = [0u8; arp::ARP_FRAME_LEN];
            if let Some(len) = arp::build_frame(&mut frame, sha, &reply) {
                port.transmit(frame.get(..len).unwrap_or(&[]), out);
                return Verdict::Answered;
            }
        }
        Verdict::Consumed
    }

    /// Where an IPv4 packet from port `id` goes, from its header (and, on a port with firewall rules,
    /// its transport header `l4`).
    fn decide_lan_v4(&self, id: PortId, info: &Ipv4Info, l4: &[u8]) -> LanRoute {
        let Some(port) = self.port(id) else {
            return LanRoute::Drop(DropReason::UnknownPort);
        };
        let dst = info.dst;
        if port.is_gateway_or_broadcast(dst) || dst.is_broadcast() || port.is_virtual_dns(dst) {
            if port.client_spoofs(info.src) {
                return LanRoute::Drop(DropReason::Spoofed);
            }
            if let Some(firewall) = &port.config.policy.firewall {
                // DNS to the gateway or a virtual DNS address is `specialtarget=dns`; DHCP and ping
                // of the gateway are the link's own and never filtered.
                if info.protocol == IpProtocol::Udp || info.protocol == IpProtocol::Tcp {
                    if let Some(53) = crate::checksum::be16(l4, 2) {
                        let packet = Packet4 {
                            dst: u32::from(dst),
                            protocol: info.protocol.into(),
                            dst_port: Some(53),
                            icmp_type: None,
                            to_dns: true,
                        };
                        if firewall.decide(&packet) == Action::Drop {
                            return LanRoute::Drop(DropReason::Firewall);
                        }
                    }
                }
            }
            return LanRoute::Gateway;
        }
        if self.on_a_port(dst) || dst.is_multicast() {
            // Ports never reach each other (nor a host its own port's neighbours through us).
            return LanRoute::Drop(DropReason::NotForUs);
        }
        if !port.admits_source(info.src) {
            return LanRoute::Drop(port.spoof_reason());
        }
        if ip::is_martian(dst) {
            return LanRoute::Drop(DropReason::Martian);
        }
        if let Some(firewall) = &port.config.policy.firewall {
            if !firewall_admits(firewall, info, l4) {
                return LanRoute::Drop(DropReason::Firewall);
            }
        }
        let Some(tunnel) = self.tunnel_config() else {
            return LanRoute::Refuse(IcmpError::NetUnreachable, DropReason::TunnelDown);
        };
        let public = tunnel.ipv4.map(|c| c.address());
        if public == Some(dst) {
            return LanRoute::TunnelAddress(dst);
        }
        if !tunnel.routes_ipv4(dst) || (self.config.nat && public.is_none()) {
            return LanRoute::Refuse(IcmpError::NetUnreachable, DropReason::NoRoute);
        }
        if info.ttl <= 1 {
            return LanRoute::Refuse(IcmpError::TtlExceeded, DropReason::TtlExceeded);
        }
        let mtu = tunnel.effective_mtu();
        if info.dont_frag && info.total_len > usize::from(mtu) && !info.is_fragment() {
            return LanRoute::Refuse(IcmpError::FragmentationNeeded { mtu }, DropReason::TooBig);
        }
        LanRoute::Tunnel(ToTunnel {
            nat_to: public.filter(|_| self.config.nat),
            mtu,
            max_mss: tunnel.ipv4_mss(),
        })
    }

    fn lan_v4<I: Input, S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        mut input: I,
        out: &mut S,
    ) -> Verdict {
        let Some(info) = input.bytes().get(ETH..).and_then(ip::parse) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let len = info.total_len;
        let l4 = input
            .bytes()
            .get(ETH + info.header_len..ETH + len)
            .unwrap_or(&[]);
        let route = self.decide_lan_v4(id, &info, l4);
        if let LanRoute::Tunnel(to) = route {
            // The common case where it lies: unfragmented and within the tunnel MTU.
            if !info.is_fragment() && len <= usize::from(to.mtu) {
                if let Some(datagram) = input.writable().and_then(|f| f.get_mut(ETH..ETH + len)) {
                    return self.forward_to_tunnel(now, datagram, &info, to, out);
                }
            }
        }
        let Some(packet) = input.bytes().get(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        match route {
            LanRoute::Gateway => self.lan_local(id, now, src_mac, &info, packet, out),
            LanRoute::TunnelAddress(public) => {
                self.ping_tunnel_address(id, now, src_mac, &info, public, packet, out)
            }
            LanRoute::Tunnel(to) => self.lan_forward(now, &info, packet, to, out),
            LanRoute::Refuse(error, reason) => {
                self.lan_error(id, now, src_mac, packet, error, reason, out)
            }
            LanRoute::Drop(reason) => Verdict::Dropped(reason),
        }
    }

    /// The router's own tunnel address, from the LAN: answer ping like the gateway address; never loop
    /// it out.
    #[allow(clippy::too_many_arguments)]
    fn ping_tunnel_address<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        info: &Ipv4Info,
        public: Ipv4Address,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let l4 = packet.get(info.header_len..).unwrap_or(&[]);
        if info.protocol != IpProtocol::Icmp
            || l4.first() != Some(&ECHO_REQUEST)
            || info.is_fragment()
        {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        self.echo_reply_to_lan(id, now, src_mac, public, packet, out)
    }

    /// Puts `packet` (or the datagram it completes) into `work` at [`ETH`]; returns its length.
    fn load(
        &mut self,
        now: Instant,
        direction: Direction,
        info: &Ipv4Info,
        packet: &[u8],
    ) -> Result<usize, Verdict> {
        if info.is_fragment() {
            let Some(dst) = self.work.get_mut(ETH..) else {
                return Err(Verdict::Dropped(DropReason::Malformed));
            };
            match self.reassembler.push(now, direction, info, packet, dst) {
                Reassembly::Pending => Err(Verdict::Queued),
                Reassembly::Dropped => Err(Verdict::Dropped(DropReason::Reassembly)),
                Reassembly::Complete(len) => Ok(len),
            }
        } else {
            let Some(dst) = self.work.get_mut(ETH..ETH + packet.len()) else {
                return Err(Verdict::Dropped(DropReason::Malformed));
            };
            dst.copy_from_slice(packet);
            Ok(packet.len())
        }
    }

    /// [`LanRoute::Tunnel`], copying: the packet (or the datagram it completes) into `work`, then on.
    fn lan_forward<S: Sink>(
        &mut self,
        now: Instant,
        info: &Ipv4Info,
        packet: &[u8],
        to: ToTunnel,
        out: &mut S,
    ) -> Verdict {
        let len = match self.load(now, Direction::FromLan, info, packet) {
            Ok(len) => len,
            Err(v) => return v,
        };
        let mut work = core::mem::take(&mut self.work);
        let v = match work.get_mut(ETH..ETH + len) {
            Some(datagram) => match ip::parse(datagram) {
                Some(whole) => self.forward_to_tunnel(now, datagram, &whole, to, out),
                None => Verdict::Dropped(DropReason::Malformed),
            },
            None => Verdict::Dropped(DropReason::Malformed),
        };
        self.work = work;
        v
    }

    /// Executes [`LanRoute::Tunnel`] on the whole datagram where it lies (the caller's frame or
    /// `work`): NAT, MSS clamp, TTL, then into the tunnel, fragmented to the tunnel MTU through `aux`.
    fn forward_to_tunnel<S: Sink>(
        &mut self,
        now: Instant,
        datagram: &mut [u8],
        info: &Ipv4Info,
        to: ToTunnel,
        out: &mut S,
    ) -> Verdict {
        if let Some(public) = to.nat_to {
            if let Err(e) = self
                .nat
                .outbound(now, datagram, info, public, &mut self.rng)
            {
                return Verdict::Dropped(DropReason::Nat(e));
            }
        }
        clamp_and_age(datagram, info, to.max_mss);
        if datagram.len() <= usize::from(to.mtu) {
            self.stats.to_tunnel += 1;
            out.tunnel_packet(datagram);
            return Verdict::Forwarded;
        }
        let Some(mut fragments) = Fragmenter::new(datagram, info, usize::from(to.mtu)) else {
            return Verdict::Dropped(DropReason::TooBig);
        };
        while let Some(n) = fragments.next_into(&mut self.aux) {
            self.stats.to_tunnel += 1;
            out.tunnel_packet(self.aux.get(..n).unwrap_or(&[]));
        }
        Verdict::Forwarded
    }

    /// Sends the IPv4 packet at `aux[ETH..ETH + len]` (a router-made reply, at most the port's MTU or
    /// fragmented here) on port `id`.
    fn emit_aux_to_lan<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        to: L2,
        len: usize,
        out: &mut S,
    ) -> Verdict {
        let Router {
            aux, work, ports, ..
        } = self;
        match ports.get_mut(id.index()) {
            Some(port) => port.send_ipv4(now, to, aux, len, work, out),
            None => Verdict::Dropped(DropReason::UnknownPort),
        }
    }

    /// Where an IPv4 packet from the tunnel goes, from its header alone.
    #[inline]
    fn decide_tunnel_v4(&self, info: &Ipv4Info) -> Result<TunnelRoute, DropReason> {
        if self.on_a_port(info.src) || ip::is_martian(info.src) {
            // Anti-spoofing: LAN addresses live on the LAN, never behind the tunnel.
            return Err(DropReason::Martian);
        }
        if let Some(id) = self.port_of_host(info.dst) {
            return Ok(TunnelRoute::Host(id));
        }
        let to_public = self.tunnel_ipv4() == Some(info.dst);
        if to_public
            || self
                .ports
                .iter()
                .any(|p| p.active && p.gateway() == info.dst)
        {
            return Ok(TunnelRoute::Router {
                nat: to_public && self.config.nat,
            });
        }
        // Never route tunnel -> tunnel or to anything outside the LAN.
        Err(DropReason::NoRoute)
    }

    fn tunnel_v4<I: Input, S: Sink>(&mut self, now: Instant, mut input: I, out: &mut S) -> Verdict {
        let Some(info) = ip::parse(input.bytes()) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let route = match self.decide_tunnel_v4(&info) {
            Ok(route) => route,
            Err(reason) => return Verdict::Dropped(reason),
        };
        if let Some(buf) = input.writable() {
            if let Some(v) = self.tunnel_v4_in_place(now, buf, &info, route, out) {
                return v;
            }
        }
        let Some(packet) = input.bytes().get(..info.total_len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        self.tunnel_v4_copy(now, &info, packet, route, out)
    }

    /// A tunnel route executed where the packet lies, when it can be: unfragmented, with TTL left, within
    /// the MTU of the port it may go out on, not for the router's own services. `None`, with `buf`
    /// unchanged, when it must be copied.
    fn tunnel_v4_in_place<S: Sink>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        info: &Ipv4Info,
        route: TunnelRoute,
        out: &mut S,
    ) -> Option<Verdict> {
        let len = info.total_len;
        let mtu = match route {
            TunnelRoute::Host(id) => self.port(id)?.config.mtu,
            TunnelRoute::Router { nat: true } => self.min_mtu,
            TunnelRoute::Router { nat: false } => return None,
        };
        if info.is_fragment() || info.ttl <= 1 || len > usize::from(mtu) {
            return None;
        }
        let frame = buf.get_mut(..ETH.checked_add(len)?)?;
        if let TunnelRoute::Router { .. } = route {
            // Echo requests and DNS answers for the router (`tunnel_local`) are copied.
            let l4 = frame.get(ETH + info.header_len..)?;
            let own = match info.protocol {
                IpProtocol::Tcp => false,
                IpProtocol::Udp => crate::checksum::be16(l4, 0)? == DNS_PORT,
                IpProtocol::Icmp => l4.first() == Some(&ECHO_REQUEST),
                _ => true,
            };
            if own {
                return None;
            }
        }
        Some(
            self.deliver_v4(now, frame, info, route, out)
                .unwrap_or(Verdict::Dropped(DropReason::TooBig)),
        )
    }

    /// A tunnel route executed on a copy: the packet (or the datagram it completes) into `work`, the
    /// router's own services, then on to the LAN.
    fn tunnel_v4_copy<S: Sink>(
        &mut self,
        now: Instant,
        info: &Ipv4Info,
        packet: &[u8],
        route: TunnelRoute,
        out: &mut S,
    ) -> Verdict {
        let len = match self.load(now, Direction::FromTunnel, info, packet) {
            Ok(len) => len,
            Err(v) => return v,
        };
        let Some(whole) = self.work.get(ETH..ETH + len).and_then(ip::parse) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        if let TunnelRoute::Router { nat } = route {
            if let Some(v) = self.tunnel_local(now, &whole, len, out) {
                return v;
            }
            if !nat {
                return Verdict::Dropped(DropReason::NotForUs);
            }
        }
        if info.ttl <= 1 {
            return self.tunnel_error(
                now,
                packet,
                IcmpError::TtlExceeded,
                DropReason::TtlExceeded,
                out,
            );
        }
        let mut work = core::mem::take(&mut self.work);
        let delivered = match work.get_mut(..ETH + len) {
            Some(frame) => self.deliver_v4(now, frame, &whole, route, out),
            None => Ok(Verdict::Dropped(DropReason::Malformed)),
        };
        self.work = work;
        match delivered {
            Ok(v) => v,
            Err(mtu) => self.tunnel_error(
                now,
                packet,
                IcmpError::FragmentationNeeded { mtu },
                DropReason::TooBig,
                out,
            ),
        }
    }

    /// Executes a tunnel route on the whole datagram at `frame[ETH..]` (the caller's buffer or `work`):
    /// NAT back to the LAN host, MSS clamp for its port, TTL, onto the port (fragmented through `aux`).
    /// `Err(mtu)` if DF is set and the datagram exceeds the port's MTU; the caller reports it.
    fn deliver_v4<S: Sink>(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        info: &Ipv4Info,
        route: TunnelRoute,
        out: &mut S,
    ) -> Result<Verdict, u16> {
        let len = frame.len().saturating_sub(ETH);
        let Some(datagram) = frame.get_mut(ETH..) else {
            return Ok(Verdict::Dropped(DropReason::Malformed));
        };
        let (dst, id) = match route {
            TunnelRoute::Host(id) => (info.dst, Some(id)),
            TunnelRoute::Router { .. } => match self.nat.inbound(now, datagram, info) {
                Ok(dst) => (dst, self.port_of_host(dst)),
                Err(e) => return Ok(Verdict::Dropped(DropReason::Nat(e))),
            },
        };
        let tunnel_mss = self.tunnel_config().map_or(1460, TunnelConfig::ipv4_mss);
        let Router { ports, aux, .. } = self;
        let Some(port) = id.and_then(|id| ports.get_mut(id.index())) else {
            return Ok(Verdict::Dropped(DropReason::NoRoute));
        };
        let mtu = port.config.mtu;
        clamp_and_age(datagram, info, tunnel_mss.min(mss::ipv4_mss_for_mtu(mtu)));
        if len > usize::from(mtu) && info.dont_frag {
            return Err(mtu);
        }
        Ok(port.send_ipv4(now, L2::Resolve(dst), frame, len, aux, out))
    }
}

/// A client's firewall on a packet toward the tunnel. A later fragment (no transport header) passes:
/// the router forwards only whole datagrams, and the first fragment, which carries the ports, was
/// judged. A first fragment too short for the fields the rules look at is refused.
fn firewall_admits(firewall: &Firewall, info: &Ipv4Info, l4: &[u8]) -> bool {
    if info.frag_offset > 0 {
        return true;
    }
    let protocol: u8 = info.protocol.into();
    let (dst_port, icmp_type) = match info.protocol {
        IpProtocol::Tcp | IpProtocol::Udp => match crate::checksum::be16(l4, 2) {
            Some(port) => (Some(port), None),
            None => return false,
        },
        IpProtocol::Icmp => match l4.first() {
            Some(&t) => (None, Some(t)),
            None => return false,
        },
        _ => (None, None),
    };
    let packet = Packet4 {
        dst: u32::from(info.dst),
        protocol,
        dst_port,
        icmp_type,
        to_dns: false,
    };
    firewall.decide(&packet) == Action::Accept
}

/// MSS clamp (TCP) and TTL decrement of a forwarded packet.
pub(crate) fn clamp_and_age(datagram: &mut [u8], info: &Ipv4Info, max_mss: u16) {
    if info.protocol == IpProtocol::Tcp {
        if let Some(segment) = datagram.get_mut(info.header_len..) {
            mss::clamp(segment, max_mss);
        }
    }
    ip::decrement_ttl(datagram);
}

mod ipv6;
mod port;
mod services;
#[cfg(test)]
mod tests;

/// A random unique local /64 (RFC 4193 section 3.2: fd00::/8, 40-bit global ID, subnet 0).
fn random_ula(rng: &mut impl CryptoRngCore) -> Ipv6Cidr {
    let mut id = [0u8; 5];
    rng.fill_bytes(&mut id);
    let [a, b, c, d, e] = id;
    let address = Ipv6Address::new(
        u16::from_be_bytes([0xfd, a]),
        u16::from_be_bytes([b, c]),
        u16::from_be_bytes([d, e]),
        0,
        0,
        0,
        0,
        1,
    );
    Ipv6Cidr::new(address, 64)
}
