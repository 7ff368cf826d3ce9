//! NAPT66: the IPv6 half of the NAT, for when the server pushed one IPv6 address (`ifconfig-ipv6`) and
//! the LAN uses the router's own prefix. Same table, timeouts and filtering as IPv4; the rewrite differs:
//! IPv6 has no header checksum, and ICMPv6 checksums cover the pseudo-header (RFC 4443 section 2.3).
//!
//! Layer: in-place packet rewriting, no allocation. Only packets whose first next-header is TCP, UDP or
//! ICMPv6 are translated; extension headers are refused (`UnsupportedProtocol`).

use rand_core::RngCore;
use smoltcp::time::Instant;
use smoltcp::wire::{IpProtocol, Ipv6Address};

use super::{initial_state, next_state, End, FlowKey, NatError, NatTable, Proto};
use crate::checksum::{be16, patch16, set_be16};
use crate::icmp6::{self, ECHO_REPLY, ECHO_REQUEST, HEADER_LEN};
use crate::ip::{ICMP_CHECKSUM, TCP_CHECKSUM, UDP_CHECKSUM};

/// The transport facts of an IPv6 packet without extension headers.
#[derive(Debug, Clone, Copy)]
struct Flow {
    proto: Proto,
    protocol: IpProtocol,
    src: Ipv6Address,
    dst: Ipv6Address,
    src_port: u16,
    dst_port: u16,
    /// First byte of the transport header: the ICMPv6 type, or unused.
    icmp_type: u8,
    tcp_flags: u8,
}

fn address(packet: &[u8], at: usize) -> Option<Ipv6Address> {
    Some(Ipv6Address::from(
        <[u8; 16]>::try_from(packet.get(at..at + 16)?).ok()?,
    ))
}

/// Reads the flow of `packet`; for a quoted packet `whole` is false and the payload may be cut short.
fn flow(packet: &[u8], whole: bool) -> Result<Flow, NatError> {
    let protocol = IpProtocol::from(*packet.get(6).ok_or(NatError::Truncated)?);
    let proto = match protocol {
        IpProtocol::Tcp => Proto::Tcp,
        IpProtocol::Udp => Proto::Udp,
        IpProtocol::Icmpv6 => Proto::Icmp,
        _ => return Err(NatError::UnsupportedProtocol),
    };
    let src = address(packet, 8).ok_or(NatError::Truncated)?;
    let dst = address(packet, 24).ok_or(NatError::Truncated)?;
    let l4 = packet.get(HEADER_LEN..).ok_or(NatError::Truncated)?;
    let min = match (proto, whole) {
        (Proto::Tcp, true) => 20,
        _ => 8,
    };
    if l4.len() < min {
        return Err(NatError::Truncated);
    }
    let first = be16(l4, 0).ok_or(NatError::Truncated)?;
    let second = be16(l4, 2).ok_or(NatError::Truncated)?;
    let icmp_type = *l4.first().ok_or(NatError::Truncated)?;
    let (src_port, dst_port) = match proto {
        Proto::Icmp => (be16(l4, 4).ok_or(NatError::Truncated)?, 0),
        _ => (first, second),
    };
    let tcp_flags = if proto == Proto::Tcp {
        l4.get(13).copied().unwrap_or(0)
    } else {
        0
    };
    Ok(Flow {
        proto,
        protocol,
        src,
        dst,
        src_port,
        dst_port,
        icmp_type,
        tcp_flags,
    })
}

/// Rewrites one end's address and port (ICMPv6 echo identifier) of the IPv6 packet at the start of
/// `packet`, patching the transport checksum incrementally (pseudo-header included for all three).
fn rewrite(packet: &mut [u8], protocol: IpProtocol, end: End, addr: Ipv6Address, port: u16) {
    let at = if end == End::Source { 8 } else { 24 };
    let Some(old) = address(packet, at) else {
        return;
    };
    let Some(field) = packet.get_mut(at..at + 16) else {
        return;
    };
    field.copy_from_slice(&addr.octets());
    let (port_at, check_at, udp) = match protocol {
        IpProtocol::Tcp => (if end == End::Source { 0 } else { 2 }, TCP_CHECKSUM, false),
        IpProtocol::Udp => (if end == End::Source { 0 } else { 2 }, UDP_CHECKSUM, true),
        IpProtocol::Icmpv6 => (4, ICMP_CHECKSUM, false),
        _ => return,
    };
    let Some(l4) = packet.get_mut(HEADER_LEN..) else {
        return;
    };
    let (old, new) = (old.octets(), addr.octets());
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        if let (Ok(o), Ok(n)) = (<[u8; 2]>::try_from(o), <[u8; 2]>::try_from(n)) {
            patch16(
                l4,
                check_at,
                u16::from_be_bytes(o),
                u16::from_be_bytes(n),
                udp,
            );
        }
    }
    if let Some(old_port) = be16(l4, port_at) {
        if set_be16(l4, port_at, port).is_some() {
            patch16(l4, check_at, old_port, port, udp);
        }
    }
}

/// Recomputes the checksum of the ICMPv6 message of `packet` (after its quoted packet changed).
fn refill_icmp6_checksum(packet: &mut [u8]) {
    let (Some(src), Some(dst)) = (address(packet, 8), address(packet, 24)) else {
        return;
    };
    let Some(icmp) = packet.get_mut(HEADER_LEN..) else {
        return;
    };
    if set_be16(icmp, ICMP_CHECKSUM, 0).is_some() {
        let c = icmp6::checksum(src, dst, IpProtocol::Icmpv6.into(), icmp);
        let _ = set_be16(icmp, ICMP_CHECKSUM, c);
    }
}

fn is_error(icmp_type: u8) -> bool {
    (1..=4).contains(&icmp_type)
}

impl NatTable<Ipv6Address> {
    /// Translates an outbound IPv6 packet (exactly its header and payload) in place: source to `public`
    /// and a public port, creating the mapping if needed.
    pub(crate) fn outbound6(
        &mut self,
        now: Instant,
        packet: &mut [u8],
        public: Ipv6Address,
        rng: &mut dyn RngCore,
    ) -> Result<(), NatError> {
        let f = flow(packet, true)?;
        if f.proto == Proto::Icmp {
            if is_error(f.icmp_type) {
                return self.outbound_error6(packet, public);
            }
            if f.icmp_type != ECHO_REQUEST {
                return Err(NatError::UnsupportedProtocol);
            }
        }
        let key = FlowKey {
            proto: f.proto,
            private: f.src,
            private_port: f.src_port,
            remote: f.dst,
            remote_port: f.dst_port,
        };
        let idx = match self.find_out(&key) {
            Some(idx) => {
                let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
                let from = if e.expires <= now {
                    initial_state(f.proto)
                } else {
                    e.state
                };
                self.touch(idx, next_state(from, f.tcp_flags, false), now);
                idx
            }
            None => {
                let port = self
                    .allocate_port(f.proto, rng)
                    .ok_or(NatError::PortsExhausted)?;
                let state = next_state(initial_state(f.proto), f.tcp_flags, false);
                self.insert(key, port, state, now)
                    .ok_or(NatError::PortsExhausted)?
            }
        };
        let public_port = self
            .entry(idx)
            .map(|e| e.public_port)
            .ok_or(NatError::NoMapping)?;
        rewrite(packet, f.protocol, End::Source, public, public_port);
        Ok(())
    }

    /// Translates an inbound IPv6 packet addressed to the public address; returns the private destination.
    pub(crate) fn inbound6(
        &mut self,
        now: Instant,
        packet: &mut [u8],
    ) -> Result<Ipv6Address, NatError> {
        let f = flow(packet, true)?;
        if f.proto == Proto::Icmp {
            if is_error(f.icmp_type) {
                return self.inbound_error6(now, packet);
            }
            if f.icmp_type != ECHO_REPLY {
                return Err(NatError::UnsupportedProtocol);
            }
        }
        // For an echo reply the identifier is our public port; for TCP/UDP the destination port is.
        let (public_port, remote_port) = if f.proto == Proto::Icmp {
            (f.src_port, 0)
        } else {
            (f.dst_port, f.src_port)
        };
        let idx = self
            .find_in(f.proto, public_port)
            .ok_or(NatError::NoMapping)?;
        let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
        if e.expires <= now || e.key.remote != f.src || e.key.remote_port != remote_port {
            return Err(NatError::NoMapping);
        }
        self.touch(idx, next_state(e.state, f.tcp_flags, true), now);
        rewrite(
            packet,
            f.protocol,
            End::Destination,
            e.key.private,
            e.key.private_port,
        );
        Ok(e.key.private)
    }

    fn outbound_error6(&mut self, packet: &mut [u8], public: Ipv6Address) -> Result<(), NatError> {
        let quoted = packet.get(HEADER_LEN + 8..).ok_or(NatError::Truncated)?;
        let inner = flow(quoted, false)?;
        let key = FlowKey {
            proto: inner.proto,
            private: inner.dst,
            private_port: inner.dst_port,
            remote: inner.src,
            remote_port: inner.src_port,
        };
        let idx = self.find_out(&key).ok_or(NatError::NoMapping)?;
        let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
        let quoted = packet
            .get_mut(HEADER_LEN + 8..)
            .ok_or(NatError::Truncated)?;
        rewrite(
            quoted,
            inner.protocol,
            End::Destination,
            public,
            e.public_port,
        );
        rewrite(packet, IpProtocol::Unknown(0), End::Source, public, 0);
        refill_icmp6_checksum(packet);
        Ok(())
    }

    fn inbound_error6(&mut self, now: Instant, packet: &mut [u8]) -> Result<Ipv6Address, NatError> {
        let outer_dst = address(packet, 24).ok_or(NatError::Truncated)?;
        let quoted = packet.get(HEADER_LEN + 8..).ok_or(NatError::Truncated)?;
        let inner = flow(quoted, false)?;
        let idx = self
            .find_in(inner.proto, inner.src_port)
            .ok_or(NatError::NoMapping)?;
        let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
        if e.expires <= now
            || e.key.remote != inner.dst
            || e.key.remote_port != inner.dst_port
            || outer_dst != inner.src
        {
            return Err(NatError::NoMapping);
        }
        let quoted = packet
            .get_mut(HEADER_LEN + 8..)
            .ok_or(NatError::Truncated)?;
        rewrite(
            quoted,
            inner.protocol,
            End::Source,
            e.key.private,
            e.key.private_port,
        );
        rewrite(
            packet,
            IpProtocol::Unknown(0),
            End::Destination,
            e.key.private,
            0,
        );
        refill_icmp6_checksum(packet);
        Ok(e.key.private)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmp6::write_header;
    use alloc::vec;
    use alloc::vec::Vec;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpAddress, Ipv6Packet, UdpPacket, UdpRepr};

    const LAN: Ipv6Address = Ipv6Address::new(0xfd6f, 0x7876, 1, 0, 0, 0, 0, 0x50);
    const PUBLIC: Ipv6Address = Ipv6Address::new(0xfd00, 0x1234, 0, 0, 0, 0, 0, 0x1000);
    const REMOTE: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    fn udp6(src: (Ipv6Address, u16), dst: (Ipv6Address, u16), payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN + 8 + payload.len()];
        write_header(&mut p, src.0, dst.0, IpProtocol::Udp, 8 + payload.len(), 64).unwrap();
        UdpRepr {
            src_port: src.1,
            dst_port: dst.1,
        }
        .emit(
            &mut UdpPacket::new_unchecked(&mut p[HEADER_LEN..]),
            &IpAddress::Ipv6(src.0),
            &IpAddress::Ipv6(dst.0),
            payload.len(),
            |b| b.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        p
    }

    fn udp_ok(p: &[u8]) -> bool {
        let ip = Ipv6Packet::new_checked(p).unwrap();
        UdpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(
                &IpAddress::Ipv6(ip.src_addr()),
                &IpAddress::Ipv6(ip.dst_addr()),
            )
    }

    #[test]
    fn udp6_round_trip_and_quoted_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut t: NatTable<Ipv6Address> = NatTable::new(8, 3);
        let now = Instant::from_secs(1);
        let mut q = udp6((LAN, 5353), (REMOTE, 53), b"query");
        t.outbound6(now, &mut q, PUBLIC, &mut rng).unwrap();
        assert!(udp_ok(&q));
        assert_eq!(Ipv6Packet::new_checked(&q[..]).unwrap().src_addr(), PUBLIC);
        let port = u16::from_be_bytes([q[40], q[41]]);
        let mut a = udp6((REMOTE, 53), (PUBLIC, port), b"answer");
        assert_eq!(t.inbound6(now, &mut a), Ok(LAN));
        assert!(udp_ok(&a));
        assert_eq!(u16::from_be_bytes([a[42], a[43]]), 5353);
        let mut spoof = udp6((PUBLIC, 53), (PUBLIC, port), b"x");
        assert_eq!(t.inbound6(now, &mut spoof), Err(NatError::NoMapping));

        // Packet too big from a router on the path, quoting the translated query.
        let hop = Ipv6Address::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
        let mut err = vec![0u8; 1280];
        let n = icmp6::build_error(&mut err, hop, &q, icmp6::PACKET_TOO_BIG, 0, 1280).unwrap();
        err.truncate(n);
        // build_error addresses it to the quoted source (PUBLIC), as the far router would.
        assert_eq!(t.inbound6(now, &mut err), Ok(LAN));
        let ip = Ipv6Packet::new_checked(&err[..]).unwrap();
        assert_eq!(ip.dst_addr(), LAN);
        assert_eq!(
            icmp6::checksum(ip.src_addr(), ip.dst_addr(), 58, ip.payload()),
            0
        );
        assert_eq!(
            &ip.payload()[8 + 8..8 + 24],
            &LAN.octets(),
            "quoted source restored"
        );
    }
}
