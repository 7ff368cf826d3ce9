//! IPv6 on the LAN and through the tunnel. The gateway answers Neighbor Discovery for its link-local
//! and `::1` addresses, and while the tunnel carries IPv6 it advertises the LAN prefix (SLAAC) and
//! itself as default router. LAN packets are forwarded only to destinations the tunnel routes, with
//! NAT66 to the tunnel's one IPv6 address when `nat` is on, hop limit decremented, MSS clamped; what is
//! refused gets the RFC 4443 error (unreachable, time exceeded, packet too big), never a silent leak.
//! Answers reach LAN hosts known from their own traffic or solicitations.
//!
//! Layer: part of the [`Router`] state machine (no clock, no I/O; replies built in `aux`).

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, EthernetProtocol, IpProtocol, Ipv6Address, Ipv6Packet};

use super::{DropReason, Router, Sink, Verdict, ETH};
use crate::arp;
use crate::icmp6::{self, Incoming};
use crate::mss;

/// Interval between unsolicited router advertisements (RFC 4861 section 6.2.1 allows 4..1800 s).
pub(crate) const RA_INTERVAL: Duration = Duration::from_secs(200);

impl Router {
    /// The gateway's address in the LAN prefix (`::1`).
    pub(super) fn gateway6(&self) -> Ipv6Address {
        Ipv6Address::from(u128::from(icmp6::network(self.lan6)) | 1)
    }

    fn emit_aux6<S: Sink>(&mut self, to: EthernetAddress, len: usize, out: &mut S) {
        if arp::write_ethernet(
            &mut self.aux,
            self.config.private_mac,
            to,
            EthernetProtocol::Ipv6,
        )
        .is_some()
        {
            self.stats.to_lan += 1;
            out.lan_frame(self.aux.get(..ETH + len).unwrap_or(&[]));
        }
    }

    /// Sends the router advertisement that is due: default router while the tunnel carries IPv6, else
    /// one last advertisement with lifetime 0 that withdraws the default route.
    pub(super) fn send_router_advert<S: Sink>(&mut self, now: Instant, out: &mut S) {
        let carrying = self.tunnel_ipv6().is_some();
        self.next_ra = carrying.then(|| now + RA_INTERVAL);
        if !carrying && !self.advertised {
            return;
        }
        self.advertised = carrying;
        self.advertise(icmp6::ALL_NODES, icmp6::ALL_NODES_MAC, out);
    }

    fn advertise<S: Sink>(&mut self, dst: Ipv6Address, dst_mac: EthernetAddress, out: &mut S) {
        let lifetime = if self.tunnel_ipv6().is_some() {
            icmp6::ROUTER_LIFETIME
        } else {
            0
        };
        let mtu = self
            .tunnel_config()
            .map_or(1500, |t| t.effective_mtu())
            .min(self.config.lan_mtu);
        let (mac, src, prefix) = (self.config.private_mac, self.link_local6, self.lan6);
        let Some(len) = self.aux.get_mut(ETH..).and_then(|b| {
            icmp6::build_router_advert(b, mac, src, dst, lifetime, u32::from(mtu), prefix)
        }) else {
            return;
        };
        self.emit_aux6(dst_mac, len, out);
    }

    /// An ICMPv6 error about `original` back to the LAN host at `src_mac`.
    fn lan_error6<S: Sink>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        original: &[u8],
        (kind, code, parameter): (u8, u8, u32),
        reason: DropReason,
        out: &mut S,
    ) -> Verdict {
        if self.icmp_limit.allow(now) {
            let src = self.gateway6();
            if let Some(len) = self
                .aux
                .get_mut(ETH..)
                .and_then(|b| icmp6::build_error(b, src, original, kind, code, parameter))
            {
                self.emit_aux6(src_mac, len, out);
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

    /// Neighbor Discovery and ping for the gateway's own addresses.
    fn lan_local6<S: Sink>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Ok(p) = Ipv6Packet::new_checked(packet) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let (src, dst, hop_limit) = (p.src_addr(), p.dst_addr(), p.hop_limit());
        if p.next_header() != IpProtocol::Icmpv6 {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        let ours = |a: Ipv6Address| a == self.link_local6 || a == self.gateway6();
        match icmp6::parse(src, dst, hop_limit, p.payload()) {
            Some(Incoming::NeighborSolicit { target, source_mac }) if ours(target) => {
                let (reply_to, reply_mac) = if src.is_unspecified() {
                    (icmp6::ALL_NODES, icmp6::ALL_NODES_MAC)
                } else {
                    let mac = source_mac.unwrap_or(src_mac);
                    self.neighbours6.learn(src, mac, now);
                    (src, mac)
                };
                let our_mac = self.config.private_mac;
                let Some(len) = self
                    .aux
                    .get_mut(ETH..)
                    .and_then(|b| icmp6::build_neighbor_advert(b, our_mac, target, reply_to))
                else {
                    return Verdict::Dropped(DropReason::Malformed);
                };
                self.emit_aux6(reply_mac, len, out);
                Verdict::Answered
            }
            Some(Incoming::RouterSolicit { source_mac }) if self.tunnel_ipv6().is_some() => {
                if src.is_unspecified() {
                    self.advertise(icmp6::ALL_NODES, icmp6::ALL_NODES_MAC, out);
                } else {
                    let mac = source_mac.unwrap_or(src_mac);
                    self.neighbours6.learn(src, mac, now);
                    self.advertise(src, mac, out);
                }
                self.advertised = true;
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
                if len > usize::from(self.config.lan_mtu) {
                    return Verdict::Dropped(DropReason::TooBig);
                }
                self.neighbours6.learn(src, src_mac, now);
                self.emit_aux6(src_mac, len, out);
                Verdict::Answered
            }
            _ => Verdict::Consumed,
        }
    }

    pub(super) fn lan_v6<S: Sink>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        payload: &[u8],
        out: &mut S,
    ) -> Verdict {
        let Ok(p) = Ipv6Packet::new_checked(payload) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        if p.version() != 6 {
            return Verdict::Dropped(DropReason::Malformed);
        }
        let (src, dst, hop_limit, len, next_header) = (
            p.src_addr(),
            p.dst_addr(),
            p.hop_limit(),
            p.total_len(),
            p.next_header(),
        );
        let Some(packet) = payload.get(..len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        if dst.is_multicast() || dst == self.link_local6 || dst == self.gateway6() {
            return self.lan_local6(now, src_mac, packet, out);
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
        if self.lan6.contains_addr(&dst) {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        if self.config.nat && !self.lan6.contains_addr(&src) {
            // Only the LAN's own prefix is translated.
            return Verdict::Dropped(DropReason::Martian);
        }
        let Some(tunnel) = self.tunnel_config() else {
            return self.lan_error6(
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
            return self.lan_error6(now, src_mac, packet, too_big, DropReason::TooBig, out);
        }
        self.neighbours6.learn(src, src_mac, now);
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
        let Ok(p) = Ipv6Packet::new_checked(packet) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let (src, dst, hop_limit, len, next_header) = (
            p.src_addr(),
            p.dst_addr(),
            p.hop_limit(),
            p.total_len(),
            p.next_header(),
        );
        let Some(packet) = packet.get(..len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(public) = self.tunnel_ipv6() else {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        };
        if !self.config.ipv6
            || self.lan6.contains_addr(&src)
            || src.is_multicast()
            || src.is_unspecified()
        {
            return Verdict::Dropped(DropReason::Martian);
        }
        let to_public = dst == public;
        if to_public && next_header == IpProtocol::Icmpv6 {
            if let Some(Incoming::EchoRequest) = icmp6::parse(src, dst, hop_limit, p.payload()) {
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
        let to_lan = self.lan6.contains_addr(&dst) && dst != self.gateway6();
        if !(to_lan || (to_public && self.config.nat)) {
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
        if len > usize::from(self.config.lan_mtu) {
            let too_big = (icmp6::PACKET_TOO_BIG, 0, u32::from(self.config.lan_mtu));
            return self.tunnel_error6(now, packet, too_big, DropReason::TooBig, out);
        }
        let max_mss = self
            .tunnel_config()
            .map_or(1440, |t| t.ipv4_mss().saturating_sub(20))
            .min(mss::ipv6_mss_for_mtu(self.config.lan_mtu));
        let Some(datagram) = self.work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        datagram.copy_from_slice(packet);
        let private = if to_lan {
            dst
        } else {
            match self.nat6.inbound6(now, datagram) {
                Ok(private) => private,
                Err(e) => return Verdict::Dropped(DropReason::Nat(e)),
            }
        };
        let Some(mac) = self.neighbours6.lookup(private, now) else {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        };
        if let Some(h) = datagram.get_mut(7) {
            *h = hop_limit - 1;
        }
        if next_header == IpProtocol::Tcp {
            if let Some(segment) = datagram.get_mut(icmp6::HEADER_LEN..) {
                mss::clamp(segment, max_mss);
            }
        }
        if arp::write_ethernet(
            &mut self.work,
            self.config.private_mac,
            mac,
            EthernetProtocol::Ipv6,
        )
        .is_none()
        {
            return Verdict::Dropped(DropReason::Malformed);
        }
        self.stats.to_lan += 1;
        out.lan_frame(self.work.get(..ETH + len).unwrap_or(&[]));
        Verdict::Forwarded
    }
}
