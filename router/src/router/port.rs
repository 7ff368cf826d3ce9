//! One LAN port: its configuration and the state that belongs to its link (ARP cache, DHCP leases,
//! IPv6 neighbours and router advertisements), and putting frames on it: fragmenting IPv4 to the
//! port's MTU, resolving the next hop by ARP (queueing while it resolves), writing the Ethernet header
//! in front of the packet in place, counting what leaves.
//!
//! Layer: part of the [`Router`](super::Router) state machine; methods over one port, so a caller can
//! hold the router's packet buffers while the port sends from one of them.

use rand_chacha::rand_core::CryptoRngCore;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr,
};

use super::{
    random_ula, DropReason, PortConfig, PortId, Sink, SourceRule, Verdict, ETH, L2, MAX_VIRTUAL_DNS,
};
use crate::arp::{self, ArpCache, QueueOutcome};
use crate::checksum::be16;
use crate::dhcp::DhcpServer;
use crate::forward::Ipv6Neighbours;
use crate::frag::Fragmenter;
use crate::icmp6;
use crate::ip::{self, Ipv4Info};

/// IPv6 neighbours remembered per port.
const IPV6_NEIGHBOURS: usize = 64;

/// A LAN port and its link's state.
pub(crate) struct LanPort {
    pub(super) id: PortId,
    pub(super) config: PortConfig,
    pub(super) arp: ArpCache,
    pub(super) dhcp: DhcpServer,
    pub(super) neighbours6: Ipv6Neighbours,
    /// The port's IPv6 prefix (the gateway is `::1`) and the gateway's link-local address.
    pub(super) lan6: Ipv6Cidr,
    pub(super) link_local6: Ipv6Address,
    /// When the next router advertisement is due, and whether the last one made us a default router.
    pub(super) next_ra: Option<Instant>,
    pub(super) advertised: bool,
    /// Frames sent on this port.
    pub(super) frames_out: u64,
    /// `config.ipv4` as numbers, for the checks every packet makes.
    prefix: Prefix4,
    /// False once [`Router::remove_port`](super::Router::remove_port) took the port away: its slot
    /// answers nothing and routes nothing until [`Router::add_port`](super::Router::add_port) reuses it.
    pub(super) active: bool,
}

/// An IPv4 prefix and the gateway's address in it, precomputed.
#[derive(Debug, Clone, Copy)]
struct Prefix4 {
    mask: u32,
    network: u32,
    gateway: u32,
    /// `None` for /31 and /32, as [`Ipv4Cidr::broadcast`](smoltcp::wire::Ipv4Cidr::broadcast).
    broadcast: Option<u32>,
    /// [`SourceRule::Exact`]: the one host on the port; the prefix is then only the link's.
    client: Option<u32>,
}

impl Prefix4 {
    fn new(cidr: Ipv4Cidr, sources: SourceRule) -> Self {
        let mask = u32::from(cidr.netmask());
        Prefix4 {
            mask,
            network: u32::from(cidr.address()) & mask,
            gateway: u32::from(cidr.address()),
            broadcast: cidr.broadcast().map(u32::from),
            client: match sources {
                SourceRule::Prefix => None,
                SourceRule::Exact(addr) => Some(u32::from(addr)),
            },
        }
    }
}

impl LanPort {
    /// Allocates the port's tables now; draws a random unique local prefix when none is configured.
    pub(super) fn new(id: PortId, mut config: PortConfig, rng: &mut impl CryptoRngCore) -> Self {
        config.policy.virtual_dns.truncate(MAX_VIRTUAL_DNS);
        let mut dhcp = DhcpServer::new(config.ipv4, config.dhcp_max_leases, config.dhcp_lease_time);
        if let SourceRule::Exact(client) = config.policy.sources {
            dhcp.only(client);
        }
        LanPort {
            id,
            arp: ArpCache::new(
                config.arp_cache_size,
                config.arp_pending_destinations,
                config.arp_pending_per_destination,
            ),
            dhcp,
            neighbours6: Ipv6Neighbours::new(IPV6_NEIGHBOURS),
            lan6: config.ipv6_prefix.unwrap_or_else(|| random_ula(rng)),
            link_local6: icmp6::link_local(config.mac),
            next_ra: None,
            advertised: false,
            frames_out: 0,
            prefix: Prefix4::new(config.ipv4, config.policy.sources),
            active: true,
            config,
        }
    }

    /// The gateway's IPv4 address on this port.
    pub(super) fn gateway(&self) -> Ipv4Address {
        self.config.ipv4.address()
    }

    /// The gateway's address in the port's IPv6 prefix (`::1`).
    pub(super) fn gateway6(&self) -> Ipv6Address {
        Ipv6Address::from(u128::from(icmp6::network(self.lan6)) | 1)
    }

    /// True if `addr` is in the port's prefix (a client port's: the client's address).
    pub(super) fn in_prefix(&self, addr: Ipv4Address) -> bool {
        match self.prefix.client {
            None => u32::from(addr) & self.prefix.mask == self.prefix.network,
            Some(client) => u32::from(addr) == client,
        }
    }

    /// True for one of the port's virtual DNS addresses.
    pub(super) fn is_virtual_dns(&self, addr: Ipv4Address) -> bool {
        let dns = &self.config.policy.virtual_dns;
        !dns.is_empty() && dns.contains(&addr)
    }

    /// On a client port, a source that is neither the client's address nor unspecified (DHCP).
    pub(super) fn client_spoofs(&self, src: Ipv4Address) -> bool {
        self.prefix
            .client
            .is_some_and(|c| u32::from(src) != c && !src.is_unspecified())
    }

    /// Why a packet whose source the port does not admit is dropped.
    pub(super) fn spoof_reason(&self) -> DropReason {
        match self.config.policy.sources {
            SourceRule::Prefix => DropReason::Martian,
            SourceRule::Exact(_) => DropReason::Spoofed,
        }
    }

    /// True for the gateway's address or the port's broadcast address.
    pub(super) fn is_gateway_or_broadcast(&self, addr: Ipv4Address) -> bool {
        let a = u32::from(addr);
        a == self.prefix.gateway || Some(a) == self.prefix.broadcast
    }

    /// A host address of the port's prefix: not the gateway, network or broadcast address.
    pub(super) fn is_host(&self, addr: Ipv4Address) -> bool {
        let a = u32::from(addr);
        let p = &self.prefix;
        if let Some(client) = p.client {
            return a == client && a != p.gateway;
        }
        a & p.mask == p.network && a != p.gateway && a != p.network && Some(a) != p.broadcast
    }

    /// The port's policy on the source address of a packet that is forwarded or served.
    pub(super) fn admits_source(&self, addr: Ipv4Address) -> bool {
        self.is_host(addr)
    }

    /// Sends `frame` on this port and counts it.
    pub(super) fn transmit<S: Sink>(&mut self, frame: &[u8], out: &mut S) {
        self.frames_out += 1;
        out.lan_frame(self.id, frame);
    }

    /// Writes our Ethernet header to `to` over `buf[..ETH]` and sends `buf[..ETH + len]`.
    pub(super) fn send_ethernet<S: Sink>(
        &mut self,
        buf: &mut [u8],
        len: usize,
        to: EthernetAddress,
        protocol: EthernetProtocol,
        out: &mut S,
    ) -> bool {
        if arp::write_ethernet(buf, self.config.mac, to, protocol).is_none() {
            return false;
        }
        let Some(frame) = buf.get(..ETH + len) else {
            return false;
        };
        self.transmit(frame, out);
        true
    }

    /// Sends the IPv4 packet at `buf[ETH..ETH + len]` on this port: in one frame when it fits the
    /// port's MTU, else fragmented through `frag_buf`; resolving the next hop by ARP (queueing) when
    /// `to` says so.
    pub(super) fn send_ipv4<S: Sink>(
        &mut self,
        now: Instant,
        to: L2,
        buf: &mut [u8],
        len: usize,
        frag_buf: &mut [u8],
        out: &mut S,
    ) -> Verdict {
        let mtu = usize::from(self.config.mtu);
        if len <= mtu {
            let Some(frame) = buf.get_mut(..ETH + len) else {
                return Verdict::Dropped(DropReason::Malformed);
            };
            return self.emit_frame(now, to, frame, out);
        }
        let Some(datagram) = buf.get(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(info) = ip::parse(datagram) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(mut fragments) = Fragmenter::new(datagram, &info, mtu) else {
            return Verdict::Dropped(DropReason::TooBig);
        };
        let mut verdict = Verdict::Forwarded;
        while let Some(n) = frag_buf.get_mut(ETH..).and_then(|b| fragments.next_into(b)) {
            let Some(frame) = frag_buf.get_mut(..ETH + n) else {
                break;
            };
            verdict = self.emit_frame(now, to, frame, out);
        }
        verdict
    }

    /// Emits one frame (`frame[..ETH]` is filled here) or queues its packet for ARP.
    fn emit_frame<S: Sink>(
        &mut self,
        now: Instant,
        to: L2,
        frame: &mut [u8],
        out: &mut S,
    ) -> Verdict {
        let (our_mac, our_ip) = (self.config.mac, self.gateway());
        let mac = match to {
            L2::Mac(mac) => mac,
            L2::Resolve(ip) => match self.arp.lookup_for_send(ip, now) {
                Some((mac, refresh)) => {
                    if refresh {
                        let mut probe = [0u8; arp::ARP_FRAME_LEN];
                        if let Some(n) = arp::build_probe(&mut probe, our_mac, our_ip, mac, ip) {
                            self.transmit(probe.get(..n).unwrap_or(&[]), out);
                        }
                    }
                    mac
                }
                None => {
                    let packet = frame.get(ETH..).unwrap_or(&[]);
                    return match self.arp.queue(ip, packet, now) {
                        QueueOutcome::QueuedSendRequest => {
                            let mut request = [0u8; arp::ARP_FRAME_LEN];
                            if let Some(n) = arp::build_request(&mut request, our_mac, our_ip, ip) {
                                self.transmit(request.get(..n).unwrap_or(&[]), out);
                            }
                            Verdict::Queued
                        }
                        QueueOutcome::Queued => Verdict::Queued,
                        QueueOutcome::Full => Verdict::Dropped(DropReason::ArpQueueFull),
                    };
                }
            },
        };
        if arp::write_ethernet(frame, our_mac, mac, EthernetProtocol::Ipv4).is_none() {
            return Verdict::Dropped(DropReason::Malformed);
        }
        self.transmit(frame, out);
        Verdict::Forwarded
    }
}

/// The UDP ports and payload of a validated, unfragmented IPv4 packet whose transport part is `l4`;
/// `None` if the UDP header is short, its length field is inconsistent, or its checksum is wrong.
pub(super) fn udp_payload<'a>(info: &Ipv4Info, l4: &'a [u8]) -> Option<(u16, u16, &'a [u8])> {
    let udp_len = usize::from(be16(l4, 4)?);
    let segment = l4.get(..udp_len)?;
    if udp_len < 8 {
        return None;
    }
    if be16(segment, 6)? != 0 && ip::l4_checksum(info.src, info.dst, IpProtocol::Udp, segment) != 0
    {
        return None;
    }
    Some((be16(segment, 0)?, be16(segment, 2)?, segment.get(8..)?))
}
