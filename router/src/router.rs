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

use self::emit::send_to_lan;
use crate::arp::{self, ArpCache};
use crate::dhcp::DhcpServer;
use crate::dns::DnsForwarder;
use crate::forward::{Ipv6Neighbours, TunnelConfig, TunnelState};
use crate::frag::{Direction, Fragmenter, Reassembler, Reassembly};
use crate::icmp::{self, ErrorRateLimit, IcmpError, ECHO_REQUEST};
use crate::icmp6;
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
    /// An Ethernet frame for the private NIC (no FCS, not padded to 60 bytes).
    fn lan_frame(&mut self, frame: &[u8]);
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
        }
    }
}

/// Static configuration of the private side (MirageVPN's `--private-ipv4`, `--nat`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// MAC address of the private NIC.
    pub private_mac: EthernetAddress,
    /// The gateway's address on the LAN with the LAN prefix, e.g. 10.8.0.1/24.
    pub private_ipv4: Ipv4Cidr,
    /// Source NAT LAN traffic to the tunnel address (default true). Off: plain routing, the server must
    /// `iroute` the LAN prefix.
    pub nat: bool,
    /// NAT table capacity (default 2048, at most 32768).
    pub nat_table_size: usize,
    /// Run the DHCPv4 server (default true).
    pub dhcp: bool,
    /// DHCP lease time (default 1 hour).
    pub dhcp_lease_time: Duration,
    /// Most DHCP leases held (default 253).
    pub dhcp_max_leases: usize,
    /// Run the DNS forwarder on the gateway address and announce it by DHCP (default true).
    pub dns_forwarder: bool,
    /// Most DNS queries in flight (default 256).
    pub dns_max_in_flight: usize,
    /// MTU of the LAN (default 1500).
    pub lan_mtu: u16,
    /// ARP cache entries (default 256).
    pub arp_cache_size: usize,
    /// Destinations that may wait for ARP at once (default 32) ...
    pub arp_pending_destinations: usize,
    /// ... and packets queued per destination (default 4).
    pub arp_pending_per_destination: usize,
    /// Partial datagrams reassembled at once (default 32) ...
    pub reassembly_max_datagrams: usize,
    /// ... and bytes they may hold in total (default 512 KiB).
    pub reassembly_max_bytes: usize,
    /// IPv6 on the LAN (default true): answer Neighbor Discovery for the gateway and, while the tunnel
    /// carries IPv6, advertise `private_ipv6` for SLAAC and route (NAT66 when `nat`) into the tunnel.
    pub ipv6: bool,
    /// The LAN's IPv6 /64; the gateway is its `::1`. `None` (default): a random unique local prefix
    /// (RFC 4193) drawn in [`Router::new`].
    pub private_ipv6: Option<Ipv6Cidr>,
}

impl RouterConfig {
    /// The defaults for a LAN whose gateway is `private_ipv4` (address + prefix).
    pub fn new(private_mac: EthernetAddress, private_ipv4: Ipv4Cidr) -> Self {
        RouterConfig {
            private_mac,
            private_ipv4,
            nat: true,
            nat_table_size: 2048,
            dhcp: true,
            dhcp_lease_time: Duration::from_secs(3600),
            dhcp_max_leases: 253,
            dns_forwarder: true,
            dns_max_in_flight: 256,
            lan_mtu: 1500,
            arp_cache_size: 256,
            arp_pending_destinations: 32,
            arp_pending_per_destination: 4,
            reassembly_max_datagrams: 32,
            reassembly_max_bytes: 512 * 1024,
            ipv6: true,
            private_ipv6: None,
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
}

/// Where a LAN frame goes at layer 2.
#[derive(Debug, Clone, Copy)]
enum L2 {
    Mac(EthernetAddress),
    Resolve(Ipv4Address),
}

/// The private-side router.
pub struct Router {
    config: RouterConfig,
    tunnel: TunnelState,
    dns_servers: Vec<Ipv4Address>,
    arp: ArpCache,
    nat: NatTable,
    reassembler: Reassembler,
    dhcp: DhcpServer,
    dns: DnsForwarder,
    neighbours6: Ipv6Neighbours,
    nat6: NatTable<Ipv6Address>,
    /// The LAN's IPv6 prefix (the gateway is `::1`) and the gateway's link-local address.
    lan6: Ipv6Cidr,
    link_local6: Ipv6Address,
    /// When the next router advertisement is due, and whether the last one made us a default router.
    next_ra: Option<Instant>,
    advertised: bool,
    rng: ChaCha20Rng,
    icmp_limit: ErrorRateLimit,
    ident: u16,
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
            .field("stats", &self.stats)
            .finish()
    }
}

impl Router {
    /// Builds the router; allocates every table and both packet buffers now. `rng` seeds the NAT port
    /// choice, DNS query IDs and hash keys.
    pub fn new(config: RouterConfig, rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let hash_key = rng.next_u64();
        Router {
            arp: ArpCache::new(
                config.arp_cache_size,
                config.arp_pending_destinations,
                config.arp_pending_per_destination,
            ),
            nat: NatTable::new(config.nat_table_size, hash_key),
            reassembler: Reassembler::new(
                config.reassembly_max_datagrams,
                config.reassembly_max_bytes,
            ),
            dhcp: DhcpServer::new(
                config.private_ipv4,
                config.dhcp_max_leases,
                config.dhcp_lease_time,
            ),
            dns: DnsForwarder::new(config.dns_max_in_flight),
            neighbours6: Ipv6Neighbours::new(64),
            nat6: NatTable::new(config.nat_table_size, hash_key.rotate_left(29)),
            lan6: config.private_ipv6.unwrap_or_else(|| random_ula(rng)),
            link_local6: icmp6::link_local(config.private_mac),
            next_ra: None,
            advertised: false,
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

    /// The configuration the router was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Counters since construction.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// Number of DHCP leases held (offered, bound or declined).
    pub fn dhcp_leases(&self) -> usize {
        self.dhcp.lease_count()
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
        if self.config.ipv6 && (self.advertised || self.tunnel_ipv6().is_some()) {
            // Announce (or withdraw) the default route at the next tick.
            self.next_ra = Some(Instant::ZERO);
        }
    }

    /// The next instant at which [`Router::tick`] has work, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        [
            self.arp.poll_at(),
            self.nat.poll_at(),
            self.reassembler.poll_at(),
            if self.config.dhcp {
                self.dhcp.poll_at()
            } else {
                None
            },
            self.dns.poll_at(),
            self.neighbours6.poll_at(),
            self.next_ra,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers: ARP retries (may emit requests) and expiry of neighbours, NAT mappings, partial
    /// datagrams, DHCP leases and DNS queries.
    pub fn tick<S: Sink>(&mut self, now: Instant, out: &mut S) {
        self.nat.expire(now);
        self.reassembler.expire(now);
        self.dhcp.expire(now);
        self.dns.expire(now);
        self.neighbours6.expire(now);
        self.nat6.expire(now);
        if self.next_ra.is_some_and(|at| at <= now) {
            self.send_router_advert(now, out);
        }
        let mut targets = [Ipv4Address::UNSPECIFIED; 8];
        let n = self.arp.tick(now, &mut targets);
        for &target in targets.get(..n).unwrap_or(&[]) {
            let mut frame = [0u8; arp::ARP_FRAME_LEN];
            if let Some(len) =
                arp::build_request(&mut frame, self.config.private_mac, self.gateway(), target)
            {
                self.stats.to_lan += 1;
                out.lan_frame(frame.get(..len).unwrap_or(&[]));
            }
        }
    }

    fn gateway(&self) -> Ipv4Address {
        self.config.private_ipv4.address()
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
            log::trace!("router: dropped {from} packet: {reason}");
        }
        v
    }

    /// Handles one Ethernet frame received on the private NIC.
    pub fn handle_lan_frame<S: Sink>(
        &mut self,
        now: Instant,
        frame: &[u8],
        out: &mut S,
    ) -> Verdict {
        let v = self.lan_frame(now, frame, out);
        self.count(v, "LAN")
    }

    /// [`handle_lan_frame`](Self::handle_lan_frame) for a frame the caller lets the router rewrite: an
    /// unfragmented IPv4 packet from a LAN host into the tunnel that fits the tunnel MTU is rewritten where
    /// it lies (NAT, MSS clamp, TTL) and given to [`Sink::tunnel_packet`] from `frame` itself. Everything
    /// else takes the copying path, and `frame` is then left unchanged.
    pub fn handle_lan_frame_in_place<S: Sink>(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        out: &mut S,
    ) -> Verdict {
        match self.lan_v4_in_place(now, frame, out) {
            Some(v) => self.count(v, "LAN"),
            None => self.handle_lan_frame(now, frame, out),
        }
    }

    /// The in-place case of [`handle_lan_frame_in_place`](Self::handle_lan_frame_in_place): the checks
    /// of `lan_frame`, `lan_v4` and `lan_forward` for a packet they would forward unfragmented, and their
    /// rewrites; `None` before anything is changed when the packet needs the copying path.
    fn lan_v4_in_place<S: Sink>(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        out: &mut S,
    ) -> Option<Verdict> {
        let eth = EthernetFrame::new_checked(&*frame).ok()?;
        let src_mac = eth.src_addr();
        if !src_mac.is_unicast()
            || src_mac == self.config.private_mac
            || eth.dst_addr() != self.config.private_mac
            || eth.ethertype() != EthernetProtocol::Ipv4
        {
            return None;
        }
        let info = ip::parse(frame.get(ETH..)?)?;
        let len = info.total_len;
        let lan = self.config.private_ipv4;
        if len < info.header_len
            || len > frame.len().saturating_sub(ETH)
            || info.is_fragment()
            || info.ttl <= 1
            || info.dst == lan.address()
            || info.dst.is_broadcast()
            || Some(info.dst) == lan.broadcast()
            || lan.contains_addr(&info.dst)
            || info.dst.is_multicast()
            || !self.is_lan_host(info.src)
            || ip::is_martian(info.dst)
            || Some(info.dst) == self.tunnel_ipv4()
        {
            return None;
        }
        let tunnel = self.tunnel_config()?;
        let public = tunnel.ipv4.map(|c| c.address());
        let mtu = tunnel.effective_mtu();
        let max_mss = tunnel.ipv4_mss();
        if !tunnel.routes_ipv4(info.dst)
            || (self.config.nat && public.is_none())
            || len > usize::from(mtu)
        {
            return None;
        }
        let datagram = frame.get_mut(ETH..ETH.checked_add(len)?)?;
        let nat_to = public.filter(|_| self.config.nat);
        if let Err(v) = rewrite_to_tunnel(
            &mut self.nat,
            &mut self.rng,
            now,
            datagram,
            &info,
            nat_to,
            max_mss,
        ) {
            return Some(v);
        }
        self.stats.to_tunnel += 1;
        out.tunnel_packet(datagram);
        Some(Verdict::Forwarded)
    }

    /// Handles one decrypted IP packet (IPv4 or IPv6) from the tunnel.
    pub fn handle_tunnel_packet<S: Sink>(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let v = match (&self.tunnel, packet.first().map(|b| b >> 4)) {
            (TunnelState::Down, _) => Verdict::Dropped(DropReason::TunnelDown),
            (_, Some(4)) => self.tunnel_v4(now, packet, out),
            (_, Some(6)) => self.tunnel_v6(now, packet, out),
            _ => Verdict::Dropped(DropReason::Malformed),
        };
        self.count(v, "tunnel")
    }

    /// [`handle_tunnel_packet`](Self::handle_tunnel_packet) for the packet at `buf[packet]`, forwarded
    /// without a copy where it can be: an unfragmented IPv4 packet for a LAN host (with NAT, for the
    /// tunnel address) that fits the LAN MTU is rewritten where it lies (NAT, MSS clamp, TTL) and leaves
    /// as the frame `buf[packet.start - 14..packet.end]`, its Ethernet header written over the 14 bytes in
    /// front of the packet (which must be free: the engine's headers, `Engine::receive_in_place`).
    /// Everything else (fragments, IPv6, the router's own services, errors) takes the copying path, and
    /// `buf` is then left unchanged.
    pub fn handle_tunnel_packet_in_place<S: Sink>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: core::ops::Range<usize>,
        out: &mut S,
    ) -> Verdict {
        match self.tunnel_v4_in_place(now, buf, packet.clone(), out) {
            Some(v) => self.count(v, "tunnel"),
            None => {
                let bytes = buf.get(packet).unwrap_or(&[]);
                self.handle_tunnel_packet(now, bytes, out)
            }
        }
    }

    /// The in-place case of [`handle_tunnel_packet_in_place`](Self::handle_tunnel_packet_in_place):
    /// the same checks and rewrites as `tunnel_v4`, in the same order; `None` before anything is changed
    /// when the packet needs the copying path.
    fn tunnel_v4_in_place<S: Sink>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: core::ops::Range<usize>,
        out: &mut S,
    ) -> Option<Verdict> {
        let frame_start = packet.start.checked_sub(ETH)?;
        let bytes = buf.get(packet.clone())?;
        if bytes.first()? >> 4 != 4 {
            return None;
        }
        let public = self.tunnel_ipv4();
        let max_mss = self
            .tunnel_config()?
            .ipv4_mss()
            .min(mss::ipv4_mss_for_mtu(self.config.lan_mtu));
        let info = ip::parse(bytes)?;
        let len = info.total_len;
        if info.is_fragment()
            || info.ttl <= 1
            || len > usize::from(self.config.lan_mtu)
            || len < info.header_len
            || len > bytes.len()
            || self.config.private_ipv4.contains_addr(&info.src)
            || ip::is_martian(info.src)
        {
            return None;
        }
        let to_lan = self.is_lan_host(info.dst);
        if !to_lan {
            if !(self.config.nat && Some(info.dst) == public) {
                return None;
            }
            // Not for the router's own services (`tunnel_local`): echo requests to the tunnel address and
            // DNS answers for the forwarder take the copying path.
            let l4 = bytes.get(info.header_len..len)?;
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
        let frame = buf.get_mut(frame_start..packet.start.checked_add(len)?)?;
        let datagram = frame.get_mut(ETH..)?;
        let dst = match rewrite_from_tunnel(&mut self.nat, now, datagram, &info, to_lan, max_mss) {
            Ok(dst) => dst,
            Err(v) => return Some(v),
        };
        let Router {
            aux,
            arp,
            config,
            stats,
            ..
        } = self;
        Some(send_to_lan(
            arp,
            config,
            stats,
            now,
            L2::Resolve(dst),
            frame,
            len,
            aux,
            out,
        ))
    }

    fn lan_frame<S: Sink>(&mut self, now: Instant, frame: &[u8], out: &mut S) -> Verdict {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let src_mac = eth.src_addr();
        let dst_mac = eth.dst_addr();
        if !src_mac.is_unicast() || src_mac == self.config.private_mac {
            return Verdict::Dropped(DropReason::Malformed);
        }
        let to_us = dst_mac == self.config.private_mac;
        match eth.ethertype() {
            EthernetProtocol::Arp => self.lan_arp(now, eth.payload(), out),
            EthernetProtocol::Ipv4 if to_us || dst_mac.is_broadcast() => {
                self.lan_v4(now, src_mac, eth.payload(), out)
            }
            EthernetProtocol::Ipv6
                if self.config.ipv6 && (to_us || dst_mac.0[..2] == [0x33, 0x33]) =>
            {
                self.lan_v6(now, src_mac, eth.payload(), out)
            }
            EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 => {
                Verdict::Dropped(DropReason::NotForUs)
            }
            _ => Verdict::Dropped(DropReason::Unsupported),
        }
    }

    fn is_lan_host(&self, addr: Ipv4Address) -> bool {
        let lan = self.config.private_ipv4;
        lan.contains_addr(&addr)
            && addr != lan.address()
            && addr != lan.network().address()
            && Some(addr) != lan.broadcast()
    }

    fn lan_arp<S: Sink>(&mut self, now: Instant, payload: &[u8], out: &mut S) -> Verdict {
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
        let gateway = self.gateway();
        let for_us = tpa == gateway;
        if sha.is_unicast() && self.is_lan_host(spa) {
            self.arp.learn(spa, sha, for_us, now);
            if let (Some(mac), Some(queued)) =
                (self.arp.lookup(spa, now), self.arp.take_pending(spa))
            {
                for packet in queued {
                    let len = packet.len();
                    if let Some(body) = self.work.get_mut(ETH..ETH + len) {
                        body.copy_from_slice(&packet);
                        if arp::write_ethernet(
                            &mut self.work,
                            self.config.private_mac,
                            mac,
                            EthernetProtocol::Ipv4,
                        )
                        .is_some()
                        {
                            self.stats.to_lan += 1;
                            out.lan_frame(self.work.get(..ETH + len).unwrap_or(&[]));
                        }
                    }
                }
            }
        }
        if operation == ArpOperation::Request && for_us && sha.is_unicast() {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: self.config.private_mac,
                source_protocol_addr: gateway,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            let mut frame = [0u8; arp::ARP_FRAME_LEN];
            if let Some(len) = arp::build_frame(&mut frame, sha, &reply) {
                self.stats.to_lan += 1;
                out.lan_frame(frame.get(..len).unwrap_or(&[]));
                return Verdict::Answered;
            }
        }
        Verdict::Consumed
    }

    fn lan_v4<S: Sink>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        payload: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Some(info) = ip::parse(payload) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(packet) = payload.get(..info.total_len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let lan = self.config.private_ipv4;
        if info.dst == lan.address() || info.dst.is_broadcast() || Some(info.dst) == lan.broadcast()
        {
            return self.lan_local(now, src_mac, &info, packet, out);
        }
        if lan.contains_addr(&info.dst) || info.dst.is_multicast() {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        if !self.is_lan_host(info.src) || ip::is_martian(info.dst) {
            return Verdict::Dropped(DropReason::Martian);
        }
        if let Some(public) = self.tunnel_ipv4().filter(|&a| a == info.dst) {
            // The router's own tunnel address: answer ping like the gateway address; never loop it out.
            let l4 = packet.get(info.header_len..).unwrap_or(&[]);
            if info.protocol != IpProtocol::Icmp
                || l4.first() != Some(&ECHO_REQUEST)
                || info.is_fragment()
            {
                return Verdict::Dropped(DropReason::NotForUs);
            }
            let ident = self.next_ident();
            let Some(len) = self
                .aux
                .get_mut(ETH..)
                .and_then(|b| icmp::build_echo_reply(b, public, packet, ident))
            else {
                return Verdict::Dropped(DropReason::Malformed);
            };
            self.emit_aux_to_lan(now, L2::Mac(src_mac), len, out);
            return Verdict::Answered;
        }
        self.lan_forward(now, src_mac, &info, packet, out)
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

    /// LAN -> tunnel for a destination outside the LAN.
    fn lan_forward<S: Sink>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        info: &Ipv4Info,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Some(tunnel) = self.tunnel_config() else {
            return self.lan_error(
                now,
                src_mac,
                packet,
                IcmpError::NetUnreachable,
                DropReason::TunnelDown,
                out,
            );
        };
        let public = tunnel.ipv4.map(|c| c.address());
        let mtu = tunnel.effective_mtu();
        let max_mss = tunnel.ipv4_mss();
        if !tunnel.routes_ipv4(info.dst) || (self.config.nat && public.is_none()) {
            return self.lan_error(
                now,
                src_mac,
                packet,
                IcmpError::NetUnreachable,
                DropReason::NoRoute,
                out,
            );
        }
        if info.ttl <= 1 {
            return self.lan_error(
                now,
                src_mac,
                packet,
                IcmpError::TtlExceeded,
                DropReason::TtlExceeded,
                out,
            );
        }
        if info.dont_frag && info.total_len > usize::from(mtu) && !info.is_fragment() {
            return self.lan_error(
                now,
                src_mac,
                packet,
                IcmpError::FragmentationNeeded { mtu },
                DropReason::TooBig,
                out,
            );
        }
        let len = match self.load(now, Direction::FromLan, info, packet) {
            Ok(len) => len,
            Err(v) => return v,
        };
        let Some(datagram) = self.work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(whole) = ip::parse(datagram) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let nat_to = public.filter(|_| self.config.nat);
        if let Err(v) = rewrite_to_tunnel(
            &mut self.nat,
            &mut self.rng,
            now,
            datagram,
            &whole,
            nat_to,
            max_mss,
        ) {
            return v;
        }
        self.send_work_to_tunnel(len, &whole, mtu, out)
    }

    fn send_work_to_tunnel<S: Sink>(
        &mut self,
        len: usize,
        info: &Ipv4Info,
        mtu: u16,
        out: &mut S,
    ) -> Verdict {
        let Some(datagram) = self.work.get(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        if len <= usize::from(mtu) {
            self.stats.to_tunnel += 1;
            out.tunnel_packet(datagram);
            return Verdict::Forwarded;
        }
        let Some(mut fragments) = Fragmenter::new(datagram, info, usize::from(mtu)) else {
            return Verdict::Dropped(DropReason::TooBig);
        };
        while let Some(n) = fragments.next_into(&mut self.aux) {
            self.stats.to_tunnel += 1;
            out.tunnel_packet(self.aux.get(..n).unwrap_or(&[]));
        }
        Verdict::Forwarded
    }

    /// Sends the IPv4 packet at `aux[ETH..ETH + len]` (a router-made reply, at most LAN-MTU sized or
    /// fragmented here) to the LAN.
    fn emit_aux_to_lan<S: Sink>(
        &mut self,
        now: Instant,
        to: L2,
        len: usize,
        out: &mut S,
    ) -> Verdict {
        let Router {
            aux,
            work,
            arp,
            config,
            stats,
            ..
        } = self;
        send_to_lan(arp, config, stats, now, to, aux, len, work, out)
    }

    fn tunnel_v4<S: Sink>(&mut self, now: Instant, packet: &[u8], out: &mut S) -> Verdict {
        let Some(info) = ip::parse(packet) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(packet) = packet.get(..info.total_len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        if self.config.private_ipv4.contains_addr(&info.src) || ip::is_martian(info.src) {
            // Anti-spoofing: LAN addresses live on the LAN, never behind the tunnel.
            return Verdict::Dropped(DropReason::Martian);
        }
        let public = self.tunnel_ipv4();
        let gateway = self.gateway();
        let to_public = Some(info.dst) == public;
        let to_lan = self.is_lan_host(info.dst);
        if !(to_public || to_lan || info.dst == gateway) {
            // Never route tunnel -> tunnel or to anything outside the LAN.
            return Verdict::Dropped(DropReason::NoRoute);
        }
        let len = match self.load(now, Direction::FromTunnel, &info, packet) {
            Ok(len) => len,
            Err(v) => return v,
        };
        let Some(whole) = self.work.get(ETH..ETH + len).and_then(ip::parse) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        if !to_lan {
            if let Some(v) = self.tunnel_local(now, &whole, len, out) {
                return v;
            }
            if !(to_public && self.config.nat) {
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
        let max_mss = self
            .tunnel_config()
            .map_or(1460, TunnelConfig::ipv4_mss)
            .min(mss::ipv4_mss_for_mtu(self.config.lan_mtu));
        let Some(datagram) = self.work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let dst = match rewrite_from_tunnel(&mut self.nat, now, datagram, &whole, to_lan, max_mss) {
            Ok(dst) => dst,
            Err(v) => return v,
        };
        if len > usize::from(self.config.lan_mtu) && whole.dont_frag {
            let lan_mtu = self.config.lan_mtu;
            return self.tunnel_error(
                now,
                packet,
                IcmpError::FragmentationNeeded { mtu: lan_mtu },
                DropReason::TooBig,
                out,
            );
        }
        let Router {
            aux,
            work,
            arp,
            config,
            stats,
            ..
        } = self;
        send_to_lan(
            arp,
            config,
            stats,
            now,
            L2::Resolve(dst),
            work,
            len,
            aux,
            out,
        )
    }
}

/// The rewrites of an IPv4 packet from the LAN into the tunnel, where it lies (the copying and the
/// in-place path share them): source NAT to `nat_to` when NAT is on, MSS clamp, TTL.
fn rewrite_to_tunnel(
    nat: &mut NatTable,
    rng: &mut ChaCha20Rng,
    now: Instant,
    datagram: &mut [u8],
    info: &Ipv4Info,
    nat_to: Option<Ipv4Address>,
    max_mss: u16,
) -> Result<(), Verdict> {
    if let Some(public) = nat_to {
        nat.outbound(now, datagram, info, public, rng)
            .map_err(|e| Verdict::Dropped(DropReason::Nat(e)))?;
    }
    clamp_and_age(datagram, info, max_mss);
    Ok(())
}

/// The rewrites of an IPv4 packet from the tunnel onto the LAN, where it lies: NAT back to the LAN host
/// unless it is already addressed to one (`to_lan`), MSS clamp, TTL. Returns the LAN destination.
fn rewrite_from_tunnel(
    nat: &mut NatTable,
    now: Instant,
    datagram: &mut [u8],
    info: &Ipv4Info,
    to_lan: bool,
    max_mss: u16,
) -> Result<Ipv4Address, Verdict> {
    let dst = if to_lan {
        info.dst
    } else {
        nat.inbound(now, datagram, info)
            .map_err(|e| Verdict::Dropped(DropReason::Nat(e)))?
    };
    clamp_and_age(datagram, info, max_mss);
    Ok(dst)
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

mod emit;
mod ipv6;
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
