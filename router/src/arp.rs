//! ARP on the private LAN (RFC 826): answers for the gateway address, a bounded neighbour cache, and a
//! bounded queue of packets waiting for a neighbour to be resolved.
//!
//! Layer: state + frame builders; the router decides when to call. Never reads a clock (`now` is passed)
//! and holds at most `capacity` neighbours and `max_pending` destinations of `per_destination` packets.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, Ipv4Address,
};

/// How long a resolved neighbour stays valid without being refreshed by an ARP packet.
pub const NEIGHBOUR_LIFETIME: Duration = Duration::from_secs(120);
/// A neighbour in use this close to expiry is re-probed with a unicast request (RFC 1122 section
/// 2.3.2.1), so a long flow never stalls on a fresh resolution.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(15);
/// Interval between ARP requests for one unresolved destination.
pub const REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// Requests sent before the queued packets of an unresolved destination are dropped.
pub const MAX_REQUESTS: u8 = 3;

const ETHERNET_HEADER_LEN: usize = 14;
/// Length of an Ethernet + ARP (IPv4) frame, before padding.
pub(crate) const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + 28;

#[derive(Debug, Clone, Copy)]
struct Neighbour {
    ip: Ipv4Address,
    mac: EthernetAddress,
    expires: Instant,
    /// When the last refresh probe went out.
    probed: Option<Instant>,
}

#[derive(Debug)]
struct Pending {
    ip: Ipv4Address,
    /// IPv4 packets (no Ethernet header) waiting for `ip`.
    packets: VecDeque<Vec<u8>>,
    next_request: Instant,
    requests_sent: u8,
}

/// What [`ArpCache::queue`] did with a packet for an unresolved neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueOutcome {
    /// Queued; send an ARP request now.
    QueuedSendRequest,
    /// Queued; a request is already outstanding.
    Queued,
    /// The queue for this destination (or the table of destinations) is full: dropped.
    Full,
}

/// The neighbour cache and the pending queue.
#[derive(Debug)]
pub(crate) struct ArpCache {
    neighbours: Vec<Neighbour>,
    capacity: usize,
    pending: Vec<Pending>,
    max_pending: usize,
    per_destination: usize,
}

impl ArpCache {
    pub(crate) fn new(capacity: usize, max_pending: usize, per_destination: usize) -> Self {
        ArpCache {
            neighbours: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
            pending: Vec::new(),
            max_pending,
            per_destination,
        }
    }

    /// The MAC address of `ip`, if resolved and not expired.
    pub(crate) fn lookup(&self, ip: Ipv4Address, now: Instant) -> Option<EthernetAddress> {
        self.neighbours
            .iter()
            .find(|n| n.ip == ip && n.expires > now)
            .map(|n| n.mac)
    }

    /// [`ArpCache::lookup`] for a packet about to be sent: also says whether to send a unicast refresh
    /// probe now (the entry is close to expiry and was not probed in the last second).
    pub(crate) fn lookup_for_send(
        &mut self,
        ip: Ipv4Address,
        now: Instant,
    ) -> Option<(EthernetAddress, bool)> {
        let n = self
            .neighbours
            .iter_mut()
            .find(|n| n.ip == ip && n.expires > now)?;
        let due = n.expires <= now + REFRESH_BEFORE_EXPIRY
            && n.probed.is_none_or(|at| at + REQUEST_INTERVAL <= now);
        if due {
            n.probed = Some(now);
        }
        Some((n.mac, due))
    }

    fn has_entry(&self, ip: Ipv4Address) -> bool {
        self.neighbours.iter().any(|n| n.ip == ip)
    }

    /// Records `ip` at `mac`; when full, replaces the entry closest to expiry.
    pub(crate) fn insert(&mut self, ip: Ipv4Address, mac: EthernetAddress, now: Instant) {
        let expires = now + NEIGHBOUR_LIFETIME;
        let fresh = Neighbour {
            ip,
            mac,
            expires,
            probed: None,
        };
        if let Some(n) = self.neighbours.iter_mut().find(|n| n.ip == ip) {
            *n = fresh;
            return;
        }
        if self.neighbours.len() >= self.capacity {
            if let Some(oldest) = self.neighbours.iter_mut().min_by_key(|n| n.expires) {
                *oldest = fresh;
            }
            return;
        }
        self.neighbours.push(fresh);
    }

    /// RFC 826 "merge" rule: learn the sender when we already know it, when the packet is addressed to us,
    /// or when we are waiting for it.
    pub(crate) fn learn(
        &mut self,
        ip: Ipv4Address,
        mac: EthernetAddress,
        for_us: bool,
        now: Instant,
    ) {
        if for_us || self.has_entry(ip) || self.pending.iter().any(|p| p.ip == ip) {
            self.insert(ip, mac, now);
        }
    }

    /// Queues `packet` (an IPv4 packet) for `ip`. Allocates: this is the slow path taken once per
    /// unresolved neighbour, bounded by the queue limits.
    pub(crate) fn queue(&mut self, ip: Ipv4Address, packet: &[u8], now: Instant) -> QueueOutcome {
        if let Some(p) = self.pending.iter_mut().find(|p| p.ip == ip) {
            if p.packets.len() >= self.per_destination {
                return QueueOutcome::Full;
            }
            p.packets.push_back(packet.to_vec());
            return QueueOutcome::Queued;
        }
        if self.pending.len() >= self.max_pending || self.per_destination == 0 {
            return QueueOutcome::Full;
        }
        let mut packets = VecDeque::with_capacity(self.per_destination);
        packets.push_back(packet.to_vec());
        self.pending.push(Pending {
            ip,
            packets,
            next_request: now + REQUEST_INTERVAL,
            requests_sent: 1,
        });
        QueueOutcome::QueuedSendRequest
    }

    /// Removes and returns the packets waiting for `ip` once it resolved.
    pub(crate) fn take_pending(&mut self, ip: Ipv4Address) -> Option<VecDeque<Vec<u8>>> {
        let i = self.pending.iter().position(|p| p.ip == ip)?;
        Some(self.pending.swap_remove(i).packets)
    }

    /// Expires neighbours, gives up on destinations that never answered, and returns the destinations
    /// that need another ARP request now (written into `requests`, up to its length). Returns how many.
    pub(crate) fn tick(&mut self, now: Instant, requests: &mut [Ipv4Address]) -> usize {
        self.neighbours.retain(|n| n.expires > now);
        self.pending
            .retain(|p| !(p.requests_sent >= MAX_REQUESTS && p.next_request <= now));
        let mut count = 0;
        for p in self.pending.iter_mut().filter(|p| p.next_request <= now) {
            let Some(slot) = requests.get_mut(count) else {
                break;
            };
            *slot = p.ip;
            count += 1;
            p.requests_sent = p.requests_sent.saturating_add(1);
            p.next_request = now + REQUEST_INTERVAL;
        }
        count
    }

    /// The earliest instant at which [`ArpCache::tick`] has work.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        let n = self.neighbours.iter().map(|n| n.expires).min();
        let p = self.pending.iter().map(|p| p.next_request).min();
        match (n, p) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    #[cfg(test)]
    pub(crate) fn pending_destinations(&self) -> usize {
        self.pending.len()
    }
}

/// Writes an Ethernet header at the front of `frame`.
pub(crate) fn write_ethernet(
    frame: &mut [u8],
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EthernetProtocol,
) -> Option<()> {
    let mut f = EthernetFrame::new_checked(frame.get_mut(..ETHERNET_HEADER_LEN)?).ok()?;
    f.set_src_addr(src);
    f.set_dst_addr(dst);
    f.set_ethertype(ethertype);
    Some(())
}

/// Builds an Ethernet + ARP frame into `frame`; returns its length.
pub(crate) fn build_frame(
    frame: &mut [u8],
    eth_dst: EthernetAddress,
    repr: &ArpRepr,
) -> Option<usize> {
    let ArpRepr::EthernetIpv4 {
        source_hardware_addr,
        ..
    } = *repr
    else {
        return None;
    };
    write_ethernet(frame, source_hardware_addr, eth_dst, EthernetProtocol::Arp)?;
    let body = frame.get_mut(ETHERNET_HEADER_LEN..ARP_FRAME_LEN)?;
    repr.emit(&mut ArpPacket::new_checked(body).ok()?);
    Some(ARP_FRAME_LEN)
}

/// Builds a broadcast who-has request for `target`.
pub(crate) fn build_request(
    frame: &mut [u8],
    our_mac: EthernetAddress,
    our_ip: Ipv4Address,
    target: Ipv4Address,
) -> Option<usize> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: our_mac,
        source_protocol_addr: our_ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    build_frame(frame, EthernetAddress::BROADCAST, &repr)
}

/// Builds a unicast who-has request re-validating `target` at `target_mac`.
pub(crate) fn build_probe(
    frame: &mut [u8],
    our_mac: EthernetAddress,
    our_ip: Ipv4Address,
    target_mac: EthernetAddress,
    target: Ipv4Address,
) -> Option<usize> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: our_mac,
        source_protocol_addr: our_ip,
        target_hardware_addr: target_mac,
        target_protocol_addr: target,
    };
    build_frame(frame, target_mac, &repr)
}

/// Parses the ARP payload of an Ethernet frame (Ethernet/IPv4 only).
pub(crate) fn parse(payload: &[u8]) -> Option<ArpRepr> {
    let packet = ArpPacket::new_checked(payload).ok()?;
    ArpRepr::parse(&packet).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);

    #[test]
    fn cache_is_bounded_and_expires() {
        let mut c = ArpCache::new(2, 2, 2);
        let t0 = Instant::from_secs(0);
        for i in 1..=5 {
            c.insert(
                Ipv4Address::new(10, 0, 0, i),
                MAC,
                t0 + Duration::from_secs(i.into()),
            );
        }
        assert_eq!(c.neighbours.len(), 2);
        assert!(c.lookup(Ipv4Address::new(10, 0, 0, 5), t0).is_some());
        let mut reqs = [Ipv4Address::UNSPECIFIED; 4];
        c.tick(t0 + Duration::from_secs(1000), &mut reqs);
        assert!(c.lookup(Ipv4Address::new(10, 0, 0, 5), t0).is_none());
    }

    #[test]
    fn pending_queue_is_bounded_and_retries_then_gives_up() {
        let mut c = ArpCache::new(4, 1, 2);
        let t0 = Instant::from_secs(0);
        let a = Ipv4Address::new(10, 0, 0, 7);
        assert_eq!(c.queue(a, &[1], t0), QueueOutcome::QueuedSendRequest);
        assert_eq!(c.queue(a, &[2], t0), QueueOutcome::Queued);
        assert_eq!(c.queue(a, &[3], t0), QueueOutcome::Full);
        assert_eq!(
            c.queue(Ipv4Address::new(10, 0, 0, 8), &[3], t0),
            QueueOutcome::Full
        );
        let mut reqs = [Ipv4Address::UNSPECIFIED; 4];
        assert_eq!(c.tick(t0 + Duration::from_secs(1), &mut reqs), 1);
        assert_eq!(c.tick(t0 + Duration::from_secs(2), &mut reqs), 1);
        assert_eq!(c.tick(t0 + Duration::from_secs(3), &mut reqs), 0);
        assert_eq!(c.pending_destinations(), 0);
    }

    #[test]
    fn entries_in_use_are_refreshed_before_expiry() {
        let mut c = ArpCache::new(4, 1, 1);
        let t0 = Instant::from_secs(0);
        let a = Ipv4Address::new(10, 0, 0, 7);
        c.insert(a, MAC, t0);
        assert_eq!(c.lookup_for_send(a, t0), Some((MAC, false)));
        let late = t0 + NEIGHBOUR_LIFETIME - REFRESH_BEFORE_EXPIRY;
        assert_eq!(
            c.lookup_for_send(a, late),
            Some((MAC, true)),
            "probe once close to expiry"
        );
        assert_eq!(
            c.lookup_for_send(a, late),
            Some((MAC, false)),
            "not again within a second"
        );
        c.learn(a, MAC, true, late);
        assert_eq!(
            c.lookup_for_send(a, late),
            Some((MAC, false)),
            "the answer refreshed it"
        );
    }

    #[test]
    fn request_frame_parses() {
        let mut f = [0u8; 64];
        let n = build_request(
            &mut f,
            MAC,
            Ipv4Address::new(10, 0, 0, 1),
            Ipv4Address::new(10, 0, 0, 2),
        )
        .unwrap();
        let eth = EthernetFrame::new_checked(&f[..n]).unwrap();
        assert!(eth.dst_addr().is_broadcast());
        let ArpRepr::EthernetIpv4 {
            operation,
            target_protocol_addr,
            ..
        } = parse(eth.payload()).unwrap()
        else {
            panic!()
        };
        assert_eq!(operation, ArpOperation::Request);
        assert_eq!(target_protocol_addr, Ipv4Address::new(10, 0, 0, 2));
    }
}
