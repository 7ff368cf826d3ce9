//! IPv6 on the LAN ports and through the tunnel. On each port with IPv6 the gateway answers Neighbor
//! Discovery for its link-local and `::1` addresses, and while the tunnel carries IPv6 it advertises
//! the port's prefix (SLAAC) and itself as default router. LAN packets are forwarded only to destinations the tunnel routes, with
//! NAT66 to the tunnel's one IPv6 address when `nat` is on, hop limit decremented, MSS clamped; what is
//! refused gets the RFC 4443 error (unreachable, time exceeded, packet too big), never a silent leak.
//! Answers reach LAN hosts known from their own traffic or solicitations.
//!
//! Layer: part of the [`Router`] state machine (no clock, no I/O; replies built in `aux`).

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, EthernetProtocol, IpProtocol, Ipv6Address};

use super::{DropReason, PortId, Router, Sink, Verdict, ETH};
use crate::icmp6::{self, Incoming};
use crate::ip::{self, Ipv6Info};
use crate::mss;

/// Interval between unsolicited router advertisements (RFC 4861 section 6.2.1 allows 4..1800 s).
pub(crate) const RA_INTERVAL: Duration = Duration::from_secs(200);

impl Router {
    /// The port with IPv6 whose prefix has `addr` (not the gateway's `::1`) as a host.
    fn port_of_host6(&self, addr: Ipv6Address) -> Option<PortId> {
        self.ports
            .iter()
            .find(|p| p.config.ipv6 && p.lan6.contains_addr(&addr) && addr != p.gateway6())
            .map(|p| p.id)
    }

    /// The port with IPv6 whose prefix has `addr`.
    fn port_of_prefix6(&self, addr: Ipv6Address) -> Option<PortId> {
        self.ports
            .iter()
            .find(|p| p.config.ipv6 && p.lan6.contains_addr(&addr))
            .map(|p| p.id)
    }

    /// Sends the ICMPv6 packet at `aux[ETH..ETH + len]` to `to` on port `id`.
    fn emit_aux6<S: Sink>(&mut self, id: PortId, to: EthernetAddress, len: usize, out: &mut S) {
        let Router { ports, aux, .. } = self;
        if let Some(port) = ports.get_mut(id.index()) {
            port.send_ethernet(aux, len, to, EthernetProtocol::Ipv6, out);
        }
    }

    /// Sends the router advertisement that is due on port `id`: default router while the tunnel
    /// carries IPv6, else one last advertisement with lifetime 0 that withdraws the default route.
    pub(super) fn send_router_advert<S: Sink>(&mut self, id: PortId, now: Instant, out: &mut S) {
        let carrying = self.tunnel_ipv6().is_some();
        let Some(port) = self.ports.get_mut(id.index()) else {
            return;
        };
        port.next_ra = carrying.then(|| now + RA_INTERVAL);
        if !carrying && !port.advertised {
            return;
        }
        port.advertised = carrying;
        self.advertise(id, icmp6::ALL_NODES, icmp6::ALL_NODES_MAC, out);
    }

    fn advertise<S: Sink>(
        &mut self,
        id: PortId,
        dst: Ipv6Address,
        dst_mac: EthernetAddress,
        out: &mut S,
    ) {
        let lifetime = if self.tunnel_ipv6().is_some() {
            icmp6::ROUTER_LIFETIME
        } else {
            0
        };
        let tunnel_mtu = self.tunnel_config().map_or(1500, |t| t.effective_mtu());
        let Some(port) = self.port(id) else {
            return;
        };
        let mtu = tunnel_mtu.min(port.config.mtu);
        let (mac, src, prefix) = (port.config.mac, port.link_local6, port.lan6);
        let Some(len) = self.aux.get_mut(ETH..).and_then(|b| {
            icmp6::build_router_advert(b, mac, src, dst, lifetime, u32::from(mtu), prefix)
        }) else {
            return;
        };
        self.emit_aux6(id, dst_mac, len, out);
    }

    /// An ICMPv6 error about `original` back to the host at `src_mac` on port `id`.
    #[allow(clippy::too_many_arguments)]
    fn lan_error6<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        original: &[u8],
        (kind, code, parameter): (u8, u8, u32),
        reason: DropReason,
        out: &mut S,
    ) -> Verdict {
        if self.icmp_limit.allow(now) {
            let Some(src) = self.port(id).map(|p| p.gateway6()) else {
                return Verdict::Dropped(reason);
            };
            if let Some(len) = self
                .aux
                .get_mut(ETH..)
                .and_then(|b| icmp6::build_error(b, src, original, kind, code, parameter))
            {
                self.emit_aux6(id, src_mac, len, out);
            }
        }
        Verdict::Dropped(reason)
    }

    /// An ICMPv6 error about `original` back into the tunnel, from the tunnel address.
    fn tunnel_error6<S: Sink>(
        &mut self,
        now: Instant,
        original: &[u8],
        (kind, code, parameter): (u8, u8, u32),
        reason: DropReason,
        out: &mut S,
    ) -> Verdict {
        if let (Some(src), true) = (self.tunnel_ipv6(), self.icmp_limit.allow(now)) {
            if let Some(len) = self
                .aux
                .get_mut(ETH..)
                .and_then(|b| icmp6::build_error(b, src, original, kind, code, parameter))
            {
                self.stats.to_tunnel += 1;
                out.tunnel_packet(self.aux.get(ETH..ETH + len).unwrap_or(&[]));
            }
        }
        Verdict::Dropped(reason)
    }

    /// Neighbor Discovery and ping for the gateway's own addresses on port `id`.
    fn lan_local6<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        info: &Ipv6Info,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Ipv6Info {
            src,
            dst,
            hop_limit,
            ..
        } = *info;
        if info.next_header != IpProtocol::Icmpv6 {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        let carrying = self.tunnel_ipv6().is_some();
        let Some(port) = self.ports.get_mut(id.index()) else {
            return Verdict::Dropped(DropReason::UnknownPort);
        };
        let (link_local6, gateway6, our_mac) = (port.link_local6, port.gateway6(), port.config.mac);
        let ours = |a: Ipv6Address| a == link_local6 || a == gateway6;
        let icmp = packet.get(icmp6::HEADER_LEN..).unwrap_or(&[]);
        match icmp6::parse(src, dst, hop_limit, icmp) {
            Some(Incoming::NeighborSolicit { target, source_mac }) if ours(target) => {
                let (reply_to, reply_mac) = if src.is_unspecified() {
                    (icmp6::ALL_NODES, icmp6::ALL_NODES_MAC)
                } else {
                    let mac = source_mac.unwrap_or(src_mac);
                    port.neighbours6.learn(src, mac, now);
                    (src, mac)
                };
                let Some(len) = self
                    .aux
                    .get_mut(ETH..)
                    .and_then(|b| icmp6::build_neighbor_advert(b, our_mac, target, reply_to))
                else {
                    return Verdict::Dropped(DropReason::Malformed);
                };
                self.emit_aux6(id, reply_mac, len, out);
                Verdict::Answered
            }
            Some(Incoming::RouterSolicit { source_mac }) if carrying => {
                if src.is_unspecified() {
                    self.advertise(id, icmp6::ALL_NODES, icmp6::ALL_NODES_MAC, out);
                } else {
                    let mac = source_mac.unwrap_or(src_mac);
                    port.neighbours6.learn(src, mac, now);
                    self.advertise(id, src, mac, out);
                }
                if let Some(port) = self.ports.get_mut(id.index()) {
                    port.advertised = true;
                }
                Verdict::Answered
            }
            Some(Incoming::EchoRequest)
                if ours(dst) && !src.is_unspecified() && !src.is_multicast() =>
            {
                let Some(len) = self
                    .aux
                    .get_mut(ETH..)
                    .and_then(|b| icmp6::build_echo_reply(b, dst, packet))
                else {
                    return Verdict::Dropped(DropReason::Malformed);
                };
                if len > usize::from(port.config.mtu) {
                    return Verdict::Dropped(DropReason::TooBig);
                }
                port.neighbours6.learn(src, src_mac, now);
                self.emit_aux6(id, src_mac, len, out);
                Verdict::Answered
            }
            _ => Verdict::Consumed,
        }
    }

    pub(super) fn lan_v6<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        payload: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Some(info) = ip::parse6(payload) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Ipv6Info {
            src,
            dst,
            hop_limit,
            total_len: len,
            next_header,
        } = info;
        let Some(packet) = payload.get(..len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(port) = self.port(id) else {
            return Verdict::Dropped(DropReason::UnknownPort);
        };
        if dst.is_multicast() || dst == port.link_local6 || dst == port.gateway6() {
            return self.lan_local6(id, now, src_mac, &info, packet, out);
        }
        if dst.is_unicast_link_local() || dst.is_unspecified() || dst.is_loopback() {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        if src.is_multicast()
            || src.is_unicast_link_local()
            || src.is_unspecified()
            || src.is_loopback()
        {
            return Verdict::Dropped(DropReason::Martian);
        }
        if self
            .ports
            .iter()
            .any(|p| p.config.ipv6 && p.lan6.contains_addr(&dst))
        {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        if self.config.nat && !port.lan6.contains_addr(&src) {
            // Only the port's own prefix is translated.
            return Verdict::Dropped(DropReason::Martian);
        }
        let Some(tunnel) = self.tunnel_config() else {
            return self.lan_error6(
                id,
                now,
                src_mac,
                packet,
                (icmp6::DST_UNREACHABLE, 0, 0),
                DropReason::TunnelDown,
                out,
            );
        };
        let (public, mtu, max_mss) = (
            tunnel.ipv6.map(|c| c.address()),
            tunnel.effective_mtu(),
            tunnel.ipv4_mss().saturating_sub(20),
        );
        if !tunnel.routes_ipv6(dst) {
            return self.lan_error6(
                id,
                now,
                src_mac,
                packet,
                (icmp6::DST_UNREACHABLE, 0, 0),
                DropReason::Ipv6NotRouted,
                out,
            );
        }
        if hop_limit <= 1 {
            return self.lan_error6(
                id,
                now,
                src_mac,
                packet,
                (icmp6::TIME_EXCEEDED, 0, 0),
                DropReason::TtlExceeded,
                out,
            );
        }
        if len > usize::from(mtu) {
            // IPv6 routers never fragment (RFC 8200 section 5): the sender must learn the path MTU.
            let too_big = (icmp6::PACKET_TOO_BIG, 0, u32::from(mtu));
            return self.lan_error6(id, now, src_mac, packet, too_big, DropReason::TooBig, out);
        }
        if let Some(port) = self.ports.get_mut(id.index()) {
            port.neighbours6.learn(src, src_mac, now);
        }
        let Some(datagram) = self.work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        datagram.copy_from_slice(packet);
        if let Some(h) = datagram.get_mut(7) {
            *h = hop_limit - 1;
        }
        if let (true, Some(public)) = (self.config.nat, public) {
            if let Err(e) = self.nat6.outbound6(now, datagram, public, &mut self.rng) {
                return Verdict::Dropped(DropReason::Nat(e));
            }
        }
        if next_header == IpProtocol::Tcp {
            if let Some(segment) = datagram.get_mut(icmp6::HEADER_LEN..) {
                mss::clamp(segment, max_mss);
            }
        }
        self.stats.to_tunnel += 1;
        out.tunnel_packet(self.work.get(ETH..ETH + len).unwrap_or(&[]));
        Verdict::Forwarded
    }

    pub(super) fn tunnel_v6<S: Sink>(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Some(Ipv6Info {
            src,
            dst,
            hop_limit,
            total_len: len,
            next_header,
        }) = ip::parse6(packet)
        else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(packet) = packet.get(..len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(public) = self.tunnel_ipv6() else {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        };
        if !self.ports.iter().any(|p| p.active && p.config.ipv6)
            || self
                .ports
                .iter()
                .any(|p| p.active && p.lan6.contains_addr(&src))
            || src.is_multicast()
            || src.is_unspecified()
        {
            return Verdict::Dropped(DropReason::Martian);
        }
        let to_public = dst == public;
        if to_public && next_header == IpProtocol::Icmpv6 {
            let icmp = packet.get(icmp6::HEADER_LEN..).unwrap_or(&[]);
            if let Some(Incoming::EchoRequest) = icmp6::parse(src, dst, hop_limit, icmp) {
                let Some(n) = self
                    .aux
                    .get_mut(ETH..)
                    .and_then(|b| icmp6::build_echo_reply(b, public, packet))
                else {
                    return Verdict::Dropped(DropReason::Malformed);
                };
                let mtu = self.tunnel_config().map_or(1500, |t| t.effective_mtu());
                if n > usize::from(mtu) {
                    return Verdict::Dropped(DropReason::TooBig);
                }
                self.stats.to_tunnel += 1;
                out.tunnel_packet(self.aux.get(ETH..ETH + n).unwrap_or(&[]));
                return Verdict::Answered;
            }
        }
        let to_port = self.port_of_host6(dst);
        if !(to_port.is_some() || (to_public && self.config.nat)) {
            return Verdict::Dropped(DropReason::NoRoute);
        }
        if hop_limit <= 1 {
            return self.tunnel_error6(
                now,
                packet,
                (icmp6::TIME_EXCEEDED, 0, 0),
                DropReason::TtlExceeded,
                out,
            );
        }
        // The port is known now when the packet is addressed to a host, else once NAT66 has translated
        // it: until then, the smallest MTU of the ports it may be for.
        let lan_mtu = match to_port {
            Some(id) => self.port(id).map_or(0, |p| p.config.mtu),
            None => self.min_mtu6,
        };
        if len > usize::from(lan_mtu) {
            let too_big = (icmp6::PACKET_TOO_BIG, 0, u32::from(lan_mtu));
            return self.tunnel_error6(now, packet, too_big, DropReason::TooBig, out);
        }
        let Some(datagram) = self.work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        datagram.copy_from_slice(packet);
        let (private, id) = match to_port {
            Some(id) => (dst, Some(id)),
            None => match self.nat6.inbound6(now, datagram) {
                Ok(private) => (private, self.port_of_prefix6(private)),
                Err(e) => return Verdict::Dropped(DropReason::Nat(e)),
            },
        };
        let tunnel_mss = self
            .tunnel_config()
            .map_or(1440, |t| t.ipv4_mss().saturating_sub(20));
        let Router { ports, work, .. } = self;
        let Some(port) = id.and_then(|id| ports.get_mut(id.index())) else {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        };
        let Some(mac) = port.neighbours6.lookup(private, now) else {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        };
        let max_mss = tunnel_mss.min(mss::ipv6_mss_for_mtu(port.config.mtu));
        let Some(datagram) = work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        if let Some(h) = datagram.get_mut(7) {
            *h = hop_limit - 1;
        }
        if next_header == IpProtocol::Tcp {
            if let Some(segment) = datagram.get_mut(icmp6::HEADER_LEN..) {
                mss::clamp(segment, max_mss);
            }
        }
        if !port.send_ethernet(work, len, mac, EthernetProtocol::Ipv6, out) {
            return Verdict::Dropped(DropReason::Malformed);
        }
        Verdict::Forwarded
    }
}
