//! Putting IPv4 packets on the LAN: fragmenting to the LAN MTU, resolving the next hop by ARP (queueing
//! while it resolves), writing the Ethernet header in front of the packet in place.
//!
//! Layer: free functions over the router's disjoint parts, so a caller can hold one buffer while
//! fragmenting into the other.

use smoltcp::time::Instant;
use smoltcp::wire::{EthernetProtocol, IpProtocol};

use super::{DropReason, RouterConfig, RouterStats, Sink, Verdict, ETH, L2};
use crate::arp::{self, ArpCache, QueueOutcome};
use crate::checksum::be16;
use crate::frag::Fragmenter;
use crate::ip::{self, Ipv4Info};

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

/// Sends the IPv4 packet at `buf[ETH..ETH + len]` onto the LAN: in one frame when it fits the LAN MTU,
/// else fragmented through `frag_buf`; resolving the next hop by ARP (queueing) when `to` says so.
#[allow(clippy::too_many_arguments)]
pub(super) fn send_to_lan<S: Sink>(
    arp_cache: &mut ArpCache,
    config: &RouterConfig,
    stats: &mut RouterStats,
    now: Instant,
    to: L2,
    buf: &mut [u8],
    len: usize,
    frag_buf: &mut [u8],
    out: &mut S,
) -> Verdict {
    if len <= usize::from(config.lan_mtu) {
        let Some(frame) = buf.get_mut(..ETH + len) else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        return emit_frame(arp_cache, config, stats, now, to, frame, out);
    }
    let Some(datagram) = buf.get(ETH..ETH + len) else {
        return Verdict::Dropped(DropReason::Malformed);
    };
    let Some(info) = ip::parse(datagram) else {
        return Verdict::Dropped(DropReason::Malformed);
    };
    let Some(mut fragments) = Fragmenter::new(datagram, &info, usize::from(config.lan_mtu)) else {
        return Verdict::Dropped(DropReason::TooBig);
    };
    let mut verdict = Verdict::Forwarded;
    while let Some(n) = frag_buf.get_mut(ETH..).and_then(|b| fragments.next_into(b)) {
        let Some(frame) = frag_buf.get_mut(..ETH + n) else {
            break;
        };
        verdict = emit_frame(arp_cache, config, stats, now, to, frame, out);
    }
    verdict
}

/// Emits one frame (`frame[..ETH]` is filled here) or queues its packet for ARP.
pub(super) fn emit_frame<S: Sink>(
    arp_cache: &mut ArpCache,
    config: &RouterConfig,
    stats: &mut RouterStats,
    now: Instant,
    to: L2,
    frame: &mut [u8],
    out: &mut S,
) -> Verdict {
    let mac = match to {
        L2::Mac(mac) => mac,
        L2::Resolve(ip) => match arp_cache.lookup_for_send(ip, now) {
            Some((mac, refresh)) => {
                if refresh {
                    let mut probe = [0u8; arp::ARP_FRAME_LEN];
                    let our_ip = config.private_ipv4.address();
                    if let Some(n) =
                        arp::build_probe(&mut probe, config.private_mac, our_ip, mac, ip)
                    {
                        stats.to_lan += 1;
                        out.lan_frame(probe.get(..n).unwrap_or(&[]));
                    }
                }
                mac
            }
            None => {
                let packet = frame.get(ETH..).unwrap_or(&[]);
                return match arp_cache.queue(ip, packet, now) {
                    QueueOutcome::QueuedSendRequest => {
                        let mut request = [0u8; arp::ARP_FRAME_LEN];
                        if let Some(n) = arp::build_request(
                            &mut request,
                            config.private_mac,
                            config.private_ipv4.address(),
                            ip,
                        ) {
                            stats.to_lan += 1;
                            out.lan_frame(request.get(..n).unwrap_or(&[]));
                        }
                        Verdict::Queued
                    }
                    QueueOutcome::Queued => Verdict::Queued,
                    QueueOutcome::Full => Verdict::Dropped(DropReason::ArpQueueFull),
                };
            }
        },
    };
    if arp::write_ethernet(frame, config.private_mac, mac, EthernetProtocol::Ipv4).is_none() {
        return Verdict::Dropped(DropReason::Malformed);
    }
    stats.to_lan += 1;
    out.lan_frame(frame);
    Verdict::Forwarded
}
