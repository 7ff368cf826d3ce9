//! The server role's forwarding: where an IPv4 packet goes after the OpenVPN server engine decrypted it
//! from one of its clients, and which packets from the public and private NICs go back to a client.
//!
//! Layer: sans-IO routing decisions over caller buffers. Never reads a clock (`now` is an argument),
//! draws randomness only from the caller's RNG (NAT port choice), never touches a device or the engine,
//! and never allocates after [`ClientForwarder::new`]: packets are rewritten in place and replies are
//! written into a buffer the caller owns. It reuses the crate's pieces: [`NatTable`] (the same source
//! NAT the LAN router uses, here clients -> public address), `icmp` (echo replies, time exceeded,
//! rate limit), `ip::parse`, `mss` clamping.
//!
//! Per decrypted client packet ([`ClientForwarder::from_client`]):
//! - to one of the server's own addresses (tunnel address, public address, private NIC address): an
//!   ICMP echo request is answered ([`ClientDecision::Reply`]); anything else is dropped. The server's
//!   own TCP/UDP services are not reachable through the tunnel.
//! - to another address inside the tunnel network: [`ClientDecision::ToClient`] when
//!   `client_to_client` is on, dropped otherwise.
//! - inside `private_net`: [`ClientDecision::ToPrivate`], routed without NAT.
//! - anywhere else: source NAT to the public address ([`ClientDecision::ToPublic`]), or dropped when
//!   there is none.
//!
//! Every forwarded packet has its TTL decremented (RFC 1812 section 5.3.1); at TTL <= 1 ICMP time
//! exceeded is answered from the server's tunnel address (rate-limited). TCP SYNs have their MSS clamped
//! to fit `mtu`.
//!
//! Not handled yet, each dropped with its own reason: IPv6 from clients ([`ClientDropReason::Ipv6`]);
//! fragments that would need NAT ([`ClientDropReason::Fragment`]; there is no reassembly on this path,
//! fragments between clients and to the private network pass); client-side networks (`iroute`): a
//! client's source must be inside the tunnel network. Packets larger than the next hop's MTU are not
//! fragmented here: the caller's NICs must carry the tunnel MTU.

use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRngCore;
use smoltcp::time::Instant;
use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv4Cidr};

use crate::checksum::be16;
use crate::icmp::{self, ErrorRateLimit, IcmpError, ECHO_REQUEST};
use crate::ip::{self, Ipv4Info, HEADER_LEN};
use crate::mss;
use crate::nat::{NatError, NatTable};
use crate::router::clamp_and_age;

/// The longest ICMP error the forwarder writes (RFC 1812 section 4.3.2.3): a reply buffer of
/// this size always has room for time exceeded.
pub const MAX_ERROR_LEN: usize = 576;

/// Configuration of the server's forwarding (from the server config and the NICs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// The server's own tunnel address (`server 10.77.0.0 255.255.255.0` gives 10.77.0.1).
    pub server_addr: Ipv4Address,
    /// The tunnel network the clients' addresses come from, e.g. 10.77.0.0/24.
    pub tunnel_net: Ipv4Cidr,
    /// The public NIC's address: client traffic to anywhere else is source-NATed to it. `None`: no NAT,
    /// and such packets are dropped ([`ClientDropReason::NoRoute`]).
    pub public: Option<Ipv4Address>,
    /// A private network behind a second NIC, routed without NAT. If its address is not the network
    /// address, it is the server's own address on that NIC (answered like `server_addr`).
    pub private_net: Option<Ipv4Cidr>,
    /// Forward packets between clients (OpenVPN's `client-to-client`; default off).
    pub client_to_client: bool,
    /// NAT table capacity (default 4096, at most 32768).
    pub nat_table_size: usize,
    /// TCP/UDP ports the server listens on at the public address: never handed out by the NAT, so
    /// inbound traffic to them always stays the server's.
    pub reserved_ports: Vec<u16>,
    /// The tunnel MTU: TCP SYNs crossing the forwarder have their MSS clamped to fit it (default 1500).
    pub mtu: u16,
}

impl ForwarderConfig {
    /// Defaults: no public address (no NAT), no private network, no client-to-client.
    pub fn new(server_addr: Ipv4Address, tunnel_net: Ipv4Cidr) -> Self {
        ForwarderConfig {
            server_addr,
            tunnel_net,
            public: None,
            private_net: None,
            client_to_client: false,
            nat_table_size: 4096,
            reserved_ports: Vec::new(),
            mtu: 1500,
        }
    }
}

/// What to do with a packet a client sent ([`ClientForwarder::from_client`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientDecision {
    /// The server answered it: encrypt `reply[..len]` to the client that sent the packet.
    Reply {
        /// Length of the IPv4 packet written at the start of the caller's reply buffer.
        len: usize,
    },
    /// Encrypt the (rewritten) packet to the client with this tunnel address; drop it if none has it.
    ToClient(Ipv4Address),
    /// Send the packet, now from the public address, out of the public NIC.
    ToPublic,
    /// Send the packet out of the private NIC.
    ToPrivate,
    /// Dropped.
    Drop(ClientDropReason),
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientDropReason {
    /// A header failed validation (version, header length, total length, checksum).
    Malformed,
    /// IPv6 is not forwarded yet.
    Ipv6,
    /// The source address is not allowed on the side it came from (a client's outside the tunnel
    /// network or one of the server's; from the private NIC, inside the tunnel network or martian).
    Spoofed,
    /// The destination must not be forwarded (RFC 1812 section 5.3.7, or the tunnel or private
    /// network's own network and broadcast addresses).
    Martian,
    /// For one of the server's own addresses and not an ICMP echo request.
    ToServer,
    /// For another client while `client_to_client` is off.
    ClientToClientOff,
    /// Outside the tunnel and private networks, and there is no public address to NAT to.
    NoRoute,
    /// TTL ran out; ICMP time exceeded was not sent (rate limit, or not allowed for this packet).
    TtlExceeded,
    /// A fragment that would need NAT, or an echo request in fragments (no reassembly here).
    Fragment,
    /// NAT could not translate it.
    Nat(NatError),
    /// The caller's reply buffer was too short for the answer.
    NoRoomForReply,
}

impl fmt::Display for ClientDropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientDropReason::Malformed => f.write_str("malformed header"),
            ClientDropReason::Ipv6 => f.write_str("IPv6 not forwarded"),
            ClientDropReason::Spoofed => f.write_str("source address not allowed"),
            ClientDropReason::Martian => f.write_str("martian destination"),
            ClientDropReason::ToServer => {
                f.write_str("server service not reachable through the tunnel")
            }
            ClientDropReason::ClientToClientOff => f.write_str("client-to-client is off"),
            ClientDropReason::NoRoute => f.write_str("no route (no public address)"),
            ClientDropReason::TtlExceeded => f.write_str("TTL exceeded"),
            ClientDropReason::Fragment => f.write_str("fragment not reassembled"),
            ClientDropReason::Nat(e) => write!(f, "NAT: {e}"),
            ClientDropReason::NoRoomForReply => f.write_str("reply buffer too short"),
        }
    }
}

/// A packet to encrypt to one client: the first `len` bytes of the caller's buffer (a frame's padding
/// is not part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPacket {
    /// The client's tunnel address.
    pub client: Ipv4Address,
    /// Length of the IPv4 packet.
    pub len: usize,
}

/// Drops counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`ClientDropReason::Malformed`].
    pub malformed: u64,
    /// [`ClientDropReason::Ipv6`].
    pub ipv6: u64,
    /// [`ClientDropReason::Spoofed`].
    pub spoofed: u64,
    /// [`ClientDropReason::Martian`].
    pub martian: u64,
    /// [`ClientDropReason::ToServer`].
    pub to_server: u64,
    /// [`ClientDropReason::ClientToClientOff`].
    pub client_to_client_off: u64,
    /// [`ClientDropReason::NoRoute`].
    pub no_route: u64,
    /// [`ClientDropReason::TtlExceeded`].
    pub ttl_exceeded: u64,
    /// [`ClientDropReason::Fragment`].
    pub fragment: u64,
    /// [`ClientDropReason::Nat`].
    pub nat: u64,
    /// [`ClientDropReason::NoRoomForReply`].
    pub no_room_for_reply: u64,
}

impl DropCounts {
    fn count(&mut self, reason: ClientDropReason) {
        let c = match reason {
            ClientDropReason::Malformed => &mut self.malformed,
            ClientDropReason::Ipv6 => &mut self.ipv6,
            ClientDropReason::Spoofed => &mut self.spoofed,
            ClientDropReason::Martian => &mut self.martian,
            ClientDropReason::ToServer => &mut self.to_server,
            ClientDropReason::ClientToClientOff => &mut self.client_to_client_off,
            ClientDropReason::NoRoute => &mut self.no_route,
            ClientDropReason::TtlExceeded => &mut self.ttl_exceeded,
            ClientDropReason::Fragment => &mut self.fragment,
            ClientDropReason::Nat(_) => &mut self.nat,
            ClientDropReason::NoRoomForReply => &mut self.no_room_for_reply,
        };
        *c += 1;
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.ipv6
            + self.spoofed
            + self.martian
            + self.to_server
            + self.client_to_client_off
            + self.no_route
            + self.ttl_exceeded
            + self.fragment
            + self.nat
            + self.no_room_for_reply
    }
}

/// Counters since construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwarderStats {
    /// Echo requests to the server answered.
    pub echo_replies: u64,
    /// ICMP time exceeded sent to clients.
    pub time_exceeded: u64,
    /// Client packets forwarded to another client.
    pub to_clients: u64,
    /// Client packets NATed out of the public NIC.
    pub to_public: u64,
    /// Client packets routed out of the private NIC.
    pub to_private: u64,
    /// Public-NIC packets translated back to a client.
    pub from_public: u64,
    /// Private-NIC packets routed to a client.
    pub from_private: u64,
    /// Drops of client packets, and of private-NIC packets for clients, by reason.
    pub dropped: DropCounts,
}

/// Where a client's packet goes once it is known not to be for the server itself.
#[derive(Debug, Clone, Copy)]
enum Route {
    Client(Ipv4Address),
    Private,
    Public(Ipv4Address),
}

/// The server's forwarding for its clients. See the module docs.
pub struct ClientForwarder {
    config: ForwarderConfig,
    nat: NatTable,
    icmp_limit: ErrorRateLimit,
    ident: u16,
    stats: ForwarderStats,
}

impl fmt::Debug for ClientForwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientForwarder")
            .field("config", &self.config)
            .field("nat_mappings", &self.nat.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl ClientForwarder {
    /// Builds the forwarder and allocates the NAT table; `rng` keys the table's hash indexes.
    pub fn new(config: ForwarderConfig, rng: &mut impl CryptoRngCore) -> Self {
        let nat = NatTable::new(config.nat_table_size, rng.next_u64())
            .with_reserved_ports(&config.reserved_ports);
        ClientForwarder {
            config,
            nat,
            icmp_limit: ErrorRateLimit::new(),
            ident: 0,
            stats: ForwarderStats::default(),
        }
    }

    /// The configuration (with the current public address).
    pub fn config(&self) -> &ForwarderConfig {
        &self.config
    }

    /// Counters since construction.
    pub fn stats(&self) -> ForwarderStats {
        self.stats
    }

    /// Number of live NAT mappings.
    pub fn nat_mappings(&self) -> usize {
        self.nat.len()
    }

    /// The public address changed (DHCP) or went away. A change forgets every NAT mapping: they were
    /// made for the old address.
    pub fn set_public(&mut self, public: Option<Ipv4Address>) {
        if public != self.config.public {
            self.nat.clear();
            self.config.public = public;
        }
    }

    /// The next instant at which [`ClientForwarder::tick`] has work (may be early).
    pub fn poll_at(&self) -> Option<Instant> {
        self.nat.poll_at()
    }

    /// Expires idle NAT mappings.
    pub fn tick(&mut self, now: Instant) {
        self.nat.expire(now);
    }

    /// Decides what happens to `packet`, an IP packet the engine decrypted from a client (exactly the
    /// packet: trailing bytes are refused as malformed). Forwarded packets are rewritten in place (TTL,
    /// MSS, NAT); an answer is written into `reply`, which needs room for the request (echo) or
    /// [`MAX_ERROR_LEN`] bytes (time exceeded). `rng` picks new NAT ports.
    pub fn from_client(
        &mut self,
        now: Instant,
        packet: &mut [u8],
        reply: &mut [u8],
        rng: &mut impl CryptoRngCore,
    ) -> ClientDecision {
        let decision = self.decide(now, packet, reply, rng);
        match decision {
            ClientDecision::Reply { .. } => {}
            ClientDecision::ToClient(_) => self.stats.to_clients += 1,
            ClientDecision::ToPublic => self.stats.to_public += 1,
            ClientDecision::ToPrivate => self.stats.to_private += 1,
            ClientDecision::Drop(reason) => self.stats.dropped.count(reason),
        }
        decision
    }

    fn decide(
        &mut self,
        now: Instant,
        packet: &mut [u8],
        reply: &mut [u8],
        rng: &mut impl CryptoRngCore,
    ) -> ClientDecision {
        use ClientDecision::Drop;
        match packet.first().map(|b| b >> 4) {
            Some(4) => {}
            Some(6) => return Drop(ClientDropReason::Ipv6),
            _ => return Drop(ClientDropReason::Malformed),
        }
        let Some(info) = ip::parse(packet) else {
            return Drop(ClientDropReason::Malformed);
        };
        if info.total_len != packet.len() {
            return Drop(ClientDropReason::Malformed);
        }
        let tunnel = self.config.tunnel_net;
        if !tunnel.contains_addr(&info.src)
            || self.own_address(info.src).is_some()
            || is_network_or_broadcast(tunnel, info.src)
        {
            return Drop(ClientDropReason::Spoofed);
        }
        if let Some(own) = self.own_address(info.dst) {
            return self.answer_echo(own, &info, packet, reply);
        }
        let route = match self.route(info.dst) {
            Ok(route) => route,
            Err(reason) => return Drop(reason),
        };
        if info.ttl <= 1 {
            return self.time_exceeded(now, &info, packet, reply);
        }
        if let Route::Public(public) = route {
            if info.is_fragment() {
                return Drop(ClientDropReason::Fragment);
            }
            if let Err(e) = self.nat.outbound(now, packet, &info, public, rng) {
                return Drop(ClientDropReason::Nat(e));
            }
        }
        // A packet for the private network is aged by the router that puts it on that LAN (the kernel
        // hands it to `Router::handle_tunnel_packet`, which checks the TTL, the MTU and the MSS again):
        // aging it here too would count this hop twice.
        if !matches!(route, Route::Private) {
            self.age(packet, &info);
        }
        match route {
            Route::Client(dst) => ClientDecision::ToClient(dst),
            Route::Private => ClientDecision::ToPrivate,
            Route::Public(_) => ClientDecision::ToPublic,
        }
    }

    /// The route for a destination that is not one of the server's addresses.
    fn route(&self, dst: Ipv4Address) -> Result<Route, ClientDropReason> {
        let tunnel = self.config.tunnel_net;
        if ip::is_martian(dst) || is_network_or_broadcast(tunnel, dst) {
            return Err(ClientDropReason::Martian);
        }
        if tunnel.contains_addr(&dst) {
            return if self.config.client_to_client {
                Ok(Route::Client(dst))
            } else {
                Err(ClientDropReason::ClientToClientOff)
            };
        }
        if let Some(private) = self.config.private_net {
            if private.contains_addr(&dst) {
                return if is_network_or_broadcast(private, dst) {
                    Err(ClientDropReason::Martian)
                } else {
                    Ok(Route::Private)
                };
            }
        }
        self.config
            .public
            .map(Route::Public)
            .ok_or(ClientDropReason::NoRoute)
    }

    /// `addr` if it is one of the server's own addresses.
    fn own_address(&self, addr: Ipv4Address) -> Option<Ipv4Address> {
        let private_host = self
            .config
            .private_net
            .map(|c| c.address())
            .filter(|&a| Some(a) != self.config.private_net.map(|c| c.network().address()));
        (addr == self.config.server_addr
            || Some(addr) == self.config.public
            || Some(addr) == private_host)
            .then_some(addr)
    }

    /// An echo request to one of the server's addresses is answered from that address; nothing else
    /// addressed to the server is served through the tunnel.
    fn answer_echo(
        &mut self,
        own: Ipv4Address,
        info: &Ipv4Info,
        packet: &[u8],
        reply: &mut [u8],
    ) -> ClientDecision {
        let l4 = packet.get(info.header_len..).unwrap_or(&[]);
        if info.protocol != IpProtocol::Icmp || l4.first() != Some(&ECHO_REQUEST) {
            return ClientDecision::Drop(ClientDropReason::ToServer);
        }
        if info.is_fragment() {
            return ClientDecision::Drop(ClientDropReason::Fragment);
        }
        if reply.len() < HEADER_LEN + l4.len() {
            return ClientDecision::Drop(ClientDropReason::NoRoomForReply);
        }
        let ident = self.next_ident();
        match icmp::build_echo_reply(reply, own, packet, ident) {
            Some(len) => {
                self.stats.echo_replies += 1;
                ClientDecision::Reply { len }
            }
            // Too short for an echo header, or a bad ICMP checksum.
            None => ClientDecision::Drop(ClientDropReason::Malformed),
        }
    }

    /// RFC 1812 section 5.3.1: a packet whose TTL runs out here is answered with time exceeded, from
    /// the server's tunnel address (the address the client knows as its gateway).
    fn time_exceeded(
        &mut self,
        now: Instant,
        info: &Ipv4Info,
        packet: &[u8],
        reply: &mut [u8],
    ) -> ClientDecision {
        let needed = HEADER_LEN + 8 + info.total_len.min(MAX_ERROR_LEN - HEADER_LEN - 8);
        if reply.len() < needed {
            return ClientDecision::Drop(ClientDropReason::NoRoomForReply);
        }
        if !self.icmp_limit.allow(now) {
            return ClientDecision::Drop(ClientDropReason::TtlExceeded);
        }
        let ident = self.next_ident();
        let server = self.config.server_addr;
        match icmp::build_error(reply, server, packet, IcmpError::TtlExceeded, ident) {
            Some(len) => {
                self.stats.time_exceeded += 1;
                ClientDecision::Reply { len }
            }
            // RFC 1122 section 3.2.2: no error about an error or a non-initial fragment.
            None => ClientDecision::Drop(ClientDropReason::TtlExceeded),
        }
    }

    /// TTL decrement, and MSS clamp where the packet holds a TCP header (not in later fragments).
    fn age(&self, packet: &mut [u8], info: &Ipv4Info) {
        if info.frag_offset == 0 {
            clamp_and_age(packet, info, mss::ipv4_mss_for_mtu(self.config.mtu));
        } else {
            ip::decrement_ttl(packet);
        }
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// An IPv4 packet received on the public NIC (the frame's payload; Ethernet padding allowed).
    /// When it is addressed to the public address and answers a client's NAT mapping, it is translated
    /// in place (destination now the client, TTL decremented, SYN-ACK MSS clamped) and returned: the
    /// caller encrypts `packet[..len]` to `client`. `None`: not for a client, the buffer is unchanged and
    /// the caller hands the frame to its own IP stack (this covers the reserved ports, inbound ICMP
    /// echo requests, replies from a remote other than the mapping's, fragments and TTL <= 1).
    pub fn from_public(&mut self, now: Instant, packet: &mut [u8]) -> Option<ClientPacket> {
        let public = self.config.public?;
        let info = ip::parse(packet)?;
        if info.dst != public || info.is_fragment() || info.ttl <= 1 {
            return None;
        }
        if matches!(info.protocol, IpProtocol::Tcp | IpProtocol::Udp) {
            let port = packet
                .get(info.header_len..info.total_len)
                .and_then(|l4| be16(l4, 2))?;
            if self.nat.is_reserved(port) {
                return None;
            }
        }
        let datagram = packet.get_mut(..info.total_len)?;
        let client = self.nat.inbound(now, datagram, &info).ok()?;
        self.age(datagram, &info);
        self.stats.from_public += 1;
        Some(ClientPacket {
            client,
            len: info.total_len,
        })
    }

    /// An IPv4 packet received on the private NIC (Ethernet padding allowed). When it is addressed to
    /// a client (inside the tunnel network, not the server's address) its TTL is decremented (SYN MSS
    /// clamped) and the caller encrypts `packet[..len]` to `client`. `None`: not for a client (the
    /// caller hands it to its own IP stack), or dropped and counted (a source inside the tunnel
    /// network or martian, TTL <= 1). `now` is unused today (no state on this path).
    pub fn from_private(&mut self, _now: Instant, packet: &mut [u8]) -> Option<ClientPacket> {
        self.config.private_net?;
        let info = ip::parse(packet)?;
        let tunnel = self.config.tunnel_net;
        if !tunnel.contains_addr(&info.dst)
            || self.own_address(info.dst).is_some()
            || is_network_or_broadcast(tunnel, info.dst)
        {
            return None;
        }
        if tunnel.contains_addr(&info.src) || ip::is_martian(info.src) {
            self.stats.dropped.count(ClientDropReason::Spoofed);
            return None;
        }
        if info.ttl <= 1 {
            self.stats.dropped.count(ClientDropReason::TtlExceeded);
            return None;
        }
        let datagram = packet.get_mut(..info.total_len)?;
        self.age(datagram, &info);
        self.stats.from_private += 1;
        Some(ClientPacket {
            client: info.dst,
            len: info.total_len,
        })
    }
}

/// True for the network and broadcast addresses of `net` (prefixes up to /30; a /31 or /32 has none).
fn is_network_or_broadcast(net: Ipv4Cidr, addr: Ipv4Address) -> bool {
    net.prefix_len() <= 30 && (addr == net.network().address() || Some(addr) == net.broadcast())
}

#[cfg(test)]
mod tests;
