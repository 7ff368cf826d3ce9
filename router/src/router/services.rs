//! The gateway's own services, reached through the two entry points: ping of the gateway and tunnel
//! addresses, DHCP, the DNS forwarder (queries out, answers back), and the ICMP errors the router sends.
//!
//! Layer: part of the [`Router`] state machine (same rules: no clock, no I/O, replies built in `aux`).

use smoltcp::time::Instant;
use smoltcp::wire::{DhcpMessageType, EthernetAddress, EthernetProtocol, IpProtocol, Ipv4Address};

use super::port::udp_payload;
use super::{
    DropReason, PortId, Router, Sink, Verdict, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DNS_PORT, ETH,
    L2,
};
use crate::checksum::be16;
use crate::dns::{self, DnsClient};
use crate::forward::TunnelConfig;
use crate::icmp::{self, IcmpError, ECHO_REQUEST};
use crate::ip::{self, Ipv4Info};

impl Router {
    /// Packets for the gateway of port `id` itself: ping, DHCP, DNS.
    pub(super) fn lan_local<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        info: &Ipv4Info,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        if info.is_fragment() {
            return Verdict::Dropped(DropReason::Unsupported);
        }
        let Some(port) = self.port(id) else {
            return Verdict::Dropped(DropReason::UnknownPort);
        };
        // A virtual DNS address answers as the gateway does, from its own address.
        let gateway = if port.is_virtual_dns(info.dst) {
            info.dst
        } else {
            port.gateway()
        };
        let (dhcp, dns_forwarder) = (port.config.dhcp, port.config.dns_forwarder);
        let to_gateway = info.dst == gateway;
        let Some(l4) = packet.get(info.header_len..) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        match info.protocol {
            IpProtocol::Icmp if to_gateway && l4.first() == Some(&ECHO_REQUEST) => {
                self.echo_reply_to_lan(id, now, src_mac, gateway, packet, out)
            }
            IpProtocol::Udp => {
                let Some((sport, dport, payload)) = udp_payload(info, l4) else {
                    return Verdict::Dropped(DropReason::Malformed);
                };
                if dport == DHCP_SERVER_PORT && sport == DHCP_CLIENT_PORT && dhcp {
                    self.lan_dhcp(id, now, payload, out)
                } else if dport == DNS_PORT
                    && to_gateway
                    && dns_forwarder
                    && self.port(id).is_some_and(|p| p.admits_source(info.src))
                {
                    self.lan_dns(id, now, src_mac, (info.src, sport), gateway, payload, out)
                } else if to_gateway {
                    self.lan_error(
                        id,
                        now,
                        src_mac,
                        packet,
                        IcmpError::PortUnreachable,
                        DropReason::Unsupported,
                        out,
                    )
                } else {
                    Verdict::Consumed
                }
            }
            IpProtocol::Tcp if to_gateway => {
                // No TCP service on the gateway: refuse like a closed port so clients (DNS over TCP
                // after a truncated answer, for one) fail fast instead of timing out.
                let ident = self.next_ident();
                let Some(len) = self
                    .aux
                    .get_mut(ETH..)
                    .and_then(|b| build_tcp_reset(b, info, l4, ident))
                else {
                    return Verdict::Dropped(DropReason::Unsupported);
                };
                self.emit_aux_to_lan(id, now, L2::Mac(src_mac), len, out);
                Verdict::Dropped(DropReason::Unsupported)
            }
            _ if to_gateway => Verdict::Dropped(DropReason::Unsupported),
            _ => Verdict::Consumed,
        }
    }

    /// Answers the echo request `packet` from `src_mac` on port `id` with a reply from `from`.
    pub(super) fn echo_reply_to_lan<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        from: Ipv4Address,
        packet: &[u8],
        out: &mut S,
    ) -> Verdict {
        let ident = self.next_ident();
        let Some(len) = self
            .aux
            .get_mut(ETH..)
            .and_then(|b| icmp::build_echo_reply(b, from, packet, ident))
        else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        self.emit_aux_to_lan(id, now, L2::Mac(src_mac), len, out);
        Verdict::Answered
    }

    pub(super) fn lan_dhcp<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        payload: &[u8],
        out: &mut S,
    ) -> Verdict {
        let ident = self.next_ident();
        let Router { ports, aux, .. } = self;
        let Some(port) = ports.get_mut(id.index()) else {
            return Verdict::Dropped(DropReason::UnknownPort);
        };
        let Some(reply) = port.dhcp.handle_payload(now, payload) else {
            return Verdict::Consumed;
        };
        // dnsmasq-style lines: what a LAN user looks for when a host has no address.
        let mac = reply.client_mac;
        match reply.message_type {
            DhcpMessageType::Ack if !reply.your_ip.is_unspecified() => {
                log::info!("DHCPACK {} to {mac}", reply.your_ip)
            }
            DhcpMessageType::Offer => log::debug!("DHCPOFFER {} to {mac}", reply.your_ip),
            DhcpMessageType::Nak => log::info!("DHCPNAK to {mac}"),
            _ => {}
        }
        let gateway = port.gateway();
        let dns = port.config.dns_forwarder.then_some(gateway);
        let Some(len) = aux
            .get_mut(ETH + 28..)
            .and_then(|b| port.dhcp.emit(&reply, dns, b))
        else {
            return Verdict::Consumed;
        };
        let Some(total) = aux.get_mut(ETH..).and_then(|b| {
            ip::write_udp(
                b,
                (gateway, DHCP_SERVER_PORT),
                (reply.dst_ip, DHCP_CLIENT_PORT),
                len,
                ident,
            )
        }) else {
            return Verdict::Consumed;
        };
        self.emit_aux_to_lan(id, now, L2::Mac(reply.dst_mac), total, out);
        Verdict::Answered
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn lan_dns<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        (client_ip, client_port): (Ipv4Address, u16),
        asked: Ipv4Address,
        query: &[u8],
        out: &mut S,
    ) -> Verdict {
        if !dns::is_query(query) {
            return Verdict::Dropped(DropReason::Malformed);
        }
        let client = DnsClient {
            lan: id,
            mac: src_mac,
            ip: client_ip,
            port: client_port,
            asked,
            id: be16(query, 0).unwrap_or(0),
        };
        let tunnel = self
            .tunnel_config()
            .map(|t| (t.ipv4.map(|c| c.address()), t.effective_mtu()));
        let relay = match tunnel {
            Some((Some(public), mtu)) if usize::from(mtu) >= query.len() + 28 => self
                .dns
                .relay(now, client, &self.dns_servers, &mut self.rng)
                .map(|r| (r, public)),
            _ => None,
        };
        let ident = self.next_ident();
        let Some((relay, public)) = relay else {
            // No tunnel or no pushed DNS server: answer SERVFAIL rather than let the query leak.
            let Some(len) = self
                .aux
                .get_mut(ETH + 28..)
                .and_then(|b| dns::servfail(query, b))
            else {
                return Verdict::Dropped(DropReason::Malformed);
            };
            let Some(total) = self.aux.get_mut(ETH..).and_then(|b| {
                ip::write_udp(b, (asked, DNS_PORT), (client_ip, client_port), len, ident)
            }) else {
                return Verdict::Dropped(DropReason::Malformed);
            };
            self.emit_aux_to_lan(id, now, L2::Mac(src_mac), total, out);
            return Verdict::Answered;
        };
        let Some(body) = self.aux.get_mut(ETH + 28..ETH + 28 + query.len()) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        body.copy_from_slice(query);
        let _ = dns::set_id(body, relay.id);
        let Some(total) = self.aux.get_mut(ETH..).and_then(|b| {
            ip::write_udp(
                b,
                (public, relay.port),
                (relay.server, DNS_PORT),
                query.len(),
                ident,
            )
        }) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        self.stats.to_tunnel += 1;
        out.tunnel_packet(self.aux.get(ETH..ETH + total).unwrap_or(&[]));
        Verdict::Answered
    }

    /// Sends an ICMP error about `original` back to the host at `src_mac` on port `id`, and reports
    /// `reason`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lan_error<S: Sink>(
        &mut self,
        id: PortId,
        now: Instant,
        src_mac: EthernetAddress,
        original: &[u8],
        error: IcmpError,
        reason: DropReason,
        out: &mut S,
    ) -> Verdict {
        if !self.icmp_limit.allow(now) {
            return Verdict::Dropped(reason);
        }
        let ident = self.next_ident();
        let Router { ports, aux, .. } = self;
        let Some(port) = ports.get_mut(id.index()) else {
            return Verdict::Dropped(reason);
        };
        if let Some(len) = aux
            .get_mut(ETH..)
            .and_then(|b| icmp::build_error(b, port.gateway(), original, error, ident))
        {
            port.send_ethernet(aux, len, src_mac, EthernetProtocol::Ipv4, out);
        }
        Verdict::Dropped(reason)
    }

    /// Sends an ICMP error about `original` back into the tunnel, from the tunnel address.
    pub(super) fn tunnel_error<S: Sink>(
        &mut self,
        now: Instant,
        original: &[u8],
        error: IcmpError,
        reason: DropReason,
        out: &mut S,
    ) -> Verdict {
        if !self.icmp_limit.allow(now) {
            return Verdict::Dropped(reason);
        }
        let ident = self.next_ident();
        if let Some(src) = self.tunnel_ipv4() {
            if let Some(len) = self
                .aux
                .get_mut(ETH..)
                .and_then(|b| icmp::build_error(b, src, original, error, ident))
            {
                self.stats.to_tunnel += 1;
                out.tunnel_packet(self.aux.get(ETH..ETH + len).unwrap_or(&[]));
            }
        }
        Verdict::Dropped(reason)
    }

    /// Traffic for the router's own tunnel address or gateway address: ping and DNS answers. `None` if
    /// it is none of those (NAT gets a go next).
    pub(super) fn tunnel_local<S: Sink>(
        &mut self,
        now: Instant,
        info: &Ipv4Info,
        len: usize,
        out: &mut S,
    ) -> Option<Verdict> {
        let datagram = self.work.get(ETH..ETH + len)?;
        let l4 = datagram.get(info.header_len..)?;
        match info.protocol {
            IpProtocol::Icmp if l4.first() == Some(&ECHO_REQUEST) => {
                let ident = self.next_ident();
                let datagram = self.work.get(ETH..ETH + len)?;
                let Some(n) = self
                    .aux
                    .get_mut(ETH..)
                    .and_then(|b| icmp::build_echo_reply(b, info.dst, datagram, ident))
                else {
                    return Some(Verdict::Dropped(DropReason::Malformed));
                };
                let mtu = self
                    .tunnel_config()
                    .map_or(1500, TunnelConfig::effective_mtu);
                if n > usize::from(mtu) {
                    return Some(Verdict::Dropped(DropReason::TooBig));
                }
                self.stats.to_tunnel += 1;
                out.tunnel_packet(self.aux.get(ETH..ETH + n).unwrap_or(&[]));
                Some(Verdict::Answered)
            }
            IpProtocol::Udp => {
                let (sport, dport, payload) = udp_payload(info, l4)?;
                if sport != DNS_PORT
                    || dport < dns::PORT_FIRST
                    || Some(info.dst) != self.tunnel_ipv4()
                {
                    return None;
                }
                let client = self.dns.answer(now, info.src, dport, payload)?;
                // The field itself: `payload` borrows `self.work`.
                self.ident = self.ident.wrapping_add(1);
                let ident = self.ident;
                let answer_len = payload.len();
                let body = self.aux.get_mut(ETH + 28..ETH + 28 + answer_len)?;
                body.copy_from_slice(payload);
                dns::set_id(body, client.id)?;
                let total = self.aux.get_mut(ETH..).and_then(|b| {
                    ip::write_udp(
                        b,
                        (client.asked, DNS_PORT),
                        (client.ip, client.port),
                        answer_len,
                        ident,
                    )
                })?;
                Some(
                    match self.emit_aux_to_lan(client.lan, now, L2::Mac(client.mac), total, out) {
                        Verdict::Forwarded => Verdict::Answered,
                        v => v,
                    },
                )
            }
            _ => None,
        }
    }
}

/// The reset a closed port answers with (RFC 9293 section 3.10.7.1): to a segment without ACK,
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`; with ACK, `<SEQ=SEG.ACK><CTL=RST>`; nothing to a reset.
fn build_tcp_reset(buf: &mut [u8], info: &Ipv4Info, segment: &[u8], ident: u16) -> Option<usize> {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    let header_len = usize::from(*segment.get(12)? >> 4) * 4;
    let flags = *segment.get(13)?;
    let tcp_len = info.total_len.checked_sub(info.header_len)?;
    if header_len < 20 || header_len > tcp_len || flags & RST != 0 {
        return None;
    }
    let seq = u32::from_be_bytes(segment.get(4..8)?.try_into().ok()?);
    let ack = u32::from_be_bytes(segment.get(8..12)?.try_into().ok()?);
    let seg_len = u32::try_from(tcp_len - header_len).ok()?
        + u32::from(flags & SYN != 0)
        + u32::from(flags & FIN != 0);
    let (out_seq, out_ack, out_flags) = if flags & ACK != 0 {
        (ack, 0, RST)
    } else {
        (0, seq.wrapping_add(seg_len), RST | ACK)
    };
    {
        let tcp: &mut [u8; 20] = buf
            .get_mut(ip::HEADER_LEN..ip::HEADER_LEN + 20)?
            .try_into()
            .ok()?;
        tcp.fill(0);
        tcp[0..2].copy_from_slice(segment.get(2..4)?);
        tcp[2..4].copy_from_slice(segment.get(0..2)?);
        tcp[4..8].copy_from_slice(&out_seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&out_ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = out_flags;
        let c = ip::l4_checksum(info.dst, info.src, IpProtocol::Tcp, tcp);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
    }
    ip::write_header(buf, info.dst, info.src, IpProtocol::Tcp, 20, 64, ident)?;
    Some(ip::HEADER_LEN + 20)
}
