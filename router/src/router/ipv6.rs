//! IPv6 through the tunnel: forwarded only when the server pushed IPv6 and routes the destination, hop
//! limit decremented, MSS clamped; answers reach LAN hosts learned from their own traffic. There is no
//! Neighbor Discovery, Router Advertisement or ICMPv6 error here: refused IPv6 is dropped silently.
//!
//! Layer: part of the [`Router`] state machine.

use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, EthernetProtocol, IpProtocol, Ipv6Packet};

use super::{DropReason, Router, Sink, Verdict, ETH};
use crate::arp;
use crate::mss;

impl Router {
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
        let (src, dst, hop_limit, len) = (p.src_addr(), p.dst_addr(), p.hop_limit(), p.total_len());
        if dst.is_multicast()
            || dst.is_unicast_link_local()
            || dst.is_unspecified()
            || dst.is_loopback()
        {
            return Verdict::Dropped(DropReason::NotForUs);
        }
        if src.is_multicast()
            || src.is_unicast_link_local()
            || src.is_unspecified()
            || src.is_loopback()
        {
            return Verdict::Dropped(DropReason::Martian);
        }
        let Some(tunnel) = self.tunnel_config() else {
            return Verdict::Dropped(DropReason::TunnelDown);
        };
        if !tunnel.routes_ipv6(dst) {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        }
        let mtu = tunnel.effective_mtu();
        let max_mss = tunnel.ipv4_mss().saturating_sub(20);
        if hop_limit <= 1 {
            return Verdict::Dropped(DropReason::TtlExceeded);
        }
        if len > usize::from(mtu) {
            return Verdict::Dropped(DropReason::TooBig);
        }
        let next_header = p.next_header();
        self.neighbours6.learn(src, src_mac, now);
        let Some(datagram) = self.work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        datagram.copy_from_slice(payload.get(..len).unwrap_or(&[]));
        if let Some(h) = datagram.get_mut(7) {
            *h = hop_limit - 1;
        }
        if next_header == IpProtocol::Tcp {
            if let Some(segment) = datagram.get_mut(40..) {
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
        let (dst, hop_limit, len) = (p.dst_addr(), p.hop_limit(), p.total_len());
        if self.tunnel_config().is_none_or(|t| t.ipv6.is_none()) {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        }
        let Some(mac) = self.neighbours6.lookup(dst, now) else {
            return Verdict::Dropped(DropReason::Ipv6NotRouted);
        };
        if hop_limit <= 1 {
            return Verdict::Dropped(DropReason::TtlExceeded);
        }
        if len > usize::from(self.config.lan_mtu) {
            return Verdict::Dropped(DropReason::TooBig);
        }
        let max_mss = self
            .tunnel_config()
            .map_or(1440, |t| t.ipv4_mss().saturating_sub(20))
            .min(mss::ipv6_mss_for_mtu(self.config.lan_mtu));
        let next_header = p.next_header();
        let Some(datagram) = self.work.get_mut(ETH..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        datagram.copy_from_slice(packet.get(..len).unwrap_or(&[]));
        if let Some(h) = datagram.get_mut(7) {
            *h = hop_limit - 1;
        }
        if next_header == IpProtocol::Tcp {
            if let Some(segment) = datagram.get_mut(40..) {
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
