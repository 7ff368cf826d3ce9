//! ICMPv6 the router originates and answers on the LAN: Neighbor Discovery for its own addresses
//! (RFC 4861: NS -> NA, RS -> RA with the LAN prefix for SLAAC), echo replies, and the errors of a
//! forwarding router (RFC 4443: packet too big, time exceeded, destination unreachable).
//!
//! Layer: packet parsers and builders over caller buffers, no state. Neighbor Discovery messages are
//! only accepted with hop limit 255 (RFC 4861 section 6.1.1, 7.1.1), so they cannot come from off-link.

use smoltcp::wire::{EthernetAddress, IpProtocol, Ipv6Address, Ipv6Cidr};

use crate::checksum::{be16, set_be16, sum};

/// ICMPv6 message types (RFC 4443, RFC 4861).
pub(crate) const DST_UNREACHABLE: u8 = 1;
pub(crate) const PACKET_TOO_BIG: u8 = 2;
pub(crate) const TIME_EXCEEDED: u8 = 3;
pub(crate) const ECHO_REQUEST: u8 = 128;
pub(crate) const ECHO_REPLY: u8 = 129;
const ROUTER_SOLICIT: u8 = 133;
const ROUTER_ADVERT: u8 = 134;
const NEIGHBOR_SOLICIT: u8 = 135;
const NEIGHBOR_ADVERT: u8 = 136;
/// NDP option types (RFC 4861 section 4.6).
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;
const OPT_PREFIX_INFO: u8 = 3;
const OPT_MTU: u8 = 5;
/// Length of an IPv6 header.
pub(crate) const HEADER_LEN: usize = 40;
/// RFC 8200 section 5: the minimum MTU, and so the most an ICMPv6 error may carry.
const MIN_MTU: usize = 1280;
/// Prefix lifetimes announced (RFC 4861 defaults: valid 30 days, preferred 7 days, shortened here so a
/// replaced router's prefix ages out within a day).
const VALID_LIFETIME: u32 = 86400;
const PREFERRED_LIFETIME: u32 = 14400;
/// Router lifetime announced while the tunnel carries IPv6 (RFC 4861 default 3 x MaxRtrAdvInterval).
pub(crate) const ROUTER_LIFETIME: u16 = 1800;

/// The all-nodes multicast address ff02::1 and its Ethernet mapping (RFC 2464 section 7).
pub(crate) const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub(crate) const ALL_NODES_MAC: EthernetAddress = EthernetAddress([0x33, 0x33, 0, 0, 0, 1]);

/// A Neighbor Discovery or echo message addressed to the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Who has `target`? (`source_mac` from the source link-layer address option).
    NeighborSolicit {
        target: Ipv6Address,
        source_mac: Option<EthernetAddress>,
    },
    /// Please send a router advertisement.
    RouterSolicit { source_mac: Option<EthernetAddress> },
    /// Ping.
    EchoRequest,
}

/// The link-local address derived from `mac` (RFC 4291 appendix A, modified EUI-64).
pub(crate) fn link_local(mac: EthernetAddress) -> Ipv6Address {
    let m = mac.0;
    Ipv6Address::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

/// The network address of `cidr` (host bits cleared).
pub(crate) fn network(cidr: Ipv6Cidr) -> Ipv6Address {
    let host_bits = 128 - u32::from(cidr.prefix_len().min(128));
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    Ipv6Address::from(u128::from(cidr.address()) & mask)
}

/// The solicited-node multicast address of `addr` (RFC 4291 section 2.7.1).
#[cfg(test)]
pub(crate) fn solicited_node(addr: Ipv6Address) -> Ipv6Address {
    let o = addr.octets();
    Ipv6Address::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address of an IPv6 multicast group (RFC 2464 section 7).
#[cfg(test)]
pub(crate) fn multicast_mac(group: Ipv6Address) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The ICMPv6 (or any upper-layer) checksum over the IPv6 pseudo-header (RFC 8200 section 8.1).
pub(crate) fn checksum(src: Ipv6Address, dst: Ipv6Address, next_header: u8, data: &[u8]) -> u16 {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let [l0, l1, l2, l3] = len.to_be_bytes();
    !sum::combine(&[
        sum::data(&src.octets()),
        sum::data(&dst.octets()),
        u16::from_be_bytes([l0, l1]),
        u16::from_be_bytes([l2, l3]),
        u16::from(next_header),
        sum::data(data),
    ])
}

/// Parses an ICMPv6 message (the IPv6 payload `icmp`) sent to the router; `None` for anything else or
/// anything malformed.
pub(crate) fn parse(
    src: Ipv6Address,
    dst: Ipv6Address,
    hop_limit: u8,
    icmp: &[u8],
) -> Option<Incoming> {
    if icmp.len() < 8 || checksum(src, dst, IpProtocol::Icmpv6.into(), icmp) != 0 {
        return None;
    }
    let (&kind, &code) = (icmp.first()?, icmp.get(1)?);
    match kind {
        ECHO_REQUEST => Some(Incoming::EchoRequest),
        NEIGHBOR_SOLICIT if hop_limit == 255 && code == 0 => {
            let target = Ipv6Address::from(<[u8; 16]>::try_from(icmp.get(8..24)?).ok()?);
            if target.is_multicast() {
                return None;
            }
            let source_mac = source_lladdr(icmp.get(24..)?)?;
            // RFC 4861 section 7.1.1: no source link-layer option from the unspecified address.
            if src.is_unspecified() && source_mac.is_some() {
                return None;
            }
            Some(Incoming::NeighborSolicit { target, source_mac })
        }
        ROUTER_SOLICIT if hop_limit == 255 && code == 0 => Some(Incoming::RouterSolicit {
            source_mac: source_lladdr(icmp.get(8..)?)?,
        }),
        _ => None,
    }
}

/// The source link-layer address option among `options`: `Some(None)` if absent, `None` if the options
/// are malformed (a zero length is invalid, RFC 4861 section 4.6).
fn source_lladdr(mut options: &[u8]) -> Option<Option<EthernetAddress>> {
    let mut found = None;
    while !options.is_empty() {
        let (&kind, &units) = (options.first()?, options.get(1)?);
        let len = usize::from(units) * 8;
        if len == 0 {
            return None;
        }
        let opt = options.get(..len)?;
        if kind == OPT_SOURCE_LLADDR {
            let mac = EthernetAddress(opt.get(2..8)?.try_into().ok()?);
            found = mac.is_unicast().then_some(mac);
        }
        options = options.get(len..)?;
    }
    Some(found)
}

/// Writes an IPv6 header for `payload_len` bytes of `next_header`.
pub(crate) fn write_header(
    buf: &mut [u8],
    src: Ipv6Address,
    dst: Ipv6Address,
    next_header: IpProtocol,
    payload_len: usize,
    hop_limit: u8,
) -> Option<()> {
    let h: &mut [u8; HEADER_LEN] = buf.get_mut(..HEADER_LEN)?.try_into().ok()?;
    h.fill(0);
    h[0] = 0x60;
    set_be16(h, 4, u16::try_from(payload_len).ok()?)?;
    h[6] = next_header.into();
    h[7] = hop_limit;
    h.get_mut(8..24)?.copy_from_slice(&src.octets());
    h.get_mut(24..40)?.copy_from_slice(&dst.octets());
    Some(())
}

/// Fills the checksum of the ICMPv6 message at `buf[40..40 + len]` and writes the IPv6 header.
fn finish(
    buf: &mut [u8],
    src: Ipv6Address,
    dst: Ipv6Address,
    len: usize,
    hop_limit: u8,
) -> Option<usize> {
    {
        let icmp = buf.get_mut(HEADER_LEN..HEADER_LEN.checked_add(len)?)?;
        set_be16(icmp, 2, 0)?;
        let c = checksum(src, dst, IpProtocol::Icmpv6.into(), icmp);
        set_be16(icmp, 2, c)?;
    }
    write_header(buf, src, dst, IpProtocol::Icmpv6, len, hop_limit)?;
    HEADER_LEN.checked_add(len)
}

/// A solicited Neighbor Advertisement for `target` at `our_mac` (RFC 4861 section 7.2.4); to the
/// all-nodes group when the solicitation came from the unspecified address (duplicate address detection).
pub(crate) fn build_neighbor_advert(
    buf: &mut [u8],
    our_mac: EthernetAddress,
    target: Ipv6Address,
    dst: Ipv6Address,
) -> Option<usize> {
    let solicited = !dst.is_multicast();
    let icmp: &mut [u8; 32] = buf.get_mut(HEADER_LEN..HEADER_LEN + 32)?.try_into().ok()?;
    icmp.fill(0);
    icmp[0] = NEIGHBOR_ADVERT;
    // Router and override flags; solicited when answering a unicast-addressable asker.
    icmp[4] = 0x80 | 0x20 | if solicited { 0x40 } else { 0 };
    icmp.get_mut(8..24)?.copy_from_slice(&target.octets());
    icmp[24] = OPT_TARGET_LLADDR;
    icmp[25] = 1;
    icmp.get_mut(26..32)?.copy_from_slice(&our_mac.0);
    finish(buf, target, dst, 32, 255)
}

/// A Router Advertisement from `src` (our link-local address) to `dst`: the LAN prefix for SLAAC, the
/// link MTU, and `router_lifetime` seconds as default router (0 while the tunnel carries no IPv6).
pub(crate) fn build_router_advert(
    buf: &mut [u8],
    our_mac: EthernetAddress,
    src: Ipv6Address,
    dst: Ipv6Address,
    router_lifetime: u16,
    mtu: u32,
    prefix: Ipv6Cidr,
) -> Option<usize> {
    let icmp: &mut [u8; 64] = buf.get_mut(HEADER_LEN..HEADER_LEN + 64)?.try_into().ok()?;
    icmp.fill(0);
    icmp[0] = ROUTER_ADVERT;
    icmp[4] = 64; // current hop limit
    set_be16(icmp, 6, router_lifetime)?;
    icmp[16] = OPT_SOURCE_LLADDR;
    icmp[17] = 1;
    icmp.get_mut(18..24)?.copy_from_slice(&our_mac.0);
    icmp[24] = OPT_MTU;
    icmp[25] = 1;
    icmp.get_mut(28..32)?.copy_from_slice(&mtu.to_be_bytes());
    icmp[32] = OPT_PREFIX_INFO;
    icmp[33] = 4;
    icmp[34] = prefix.prefix_len();
    icmp[35] = 0x80 | 0x40; // on-link, autonomous address configuration
    icmp.get_mut(36..40)?
        .copy_from_slice(&VALID_LIFETIME.to_be_bytes());
    icmp.get_mut(40..44)?
        .copy_from_slice(&PREFERRED_LIFETIME.to_be_bytes());
    icmp.get_mut(48..64)?
        .copy_from_slice(&network(prefix).octets());
    finish(buf, src, dst, 64, 255)
}

/// The echo reply from `src` to an echo request `request` (a whole IPv6 packet without extension
/// headers, already parsed by [`parse`]).
pub(crate) fn build_echo_reply(buf: &mut [u8], src: Ipv6Address, request: &[u8]) -> Option<usize> {
    let payload_len = usize::from(be16(request, 4)?);
    let icmp_in = request.get(HEADER_LEN..HEADER_LEN.checked_add(payload_len)?)?;
    let dst = Ipv6Address::from(<[u8; 16]>::try_from(request.get(8..24)?).ok()?);
    let icmp = buf.get_mut(HEADER_LEN..HEADER_LEN.checked_add(payload_len)?)?;
    icmp.copy_from_slice(icmp_in);
    *icmp.first_mut()? = ECHO_REPLY;
    finish(buf, src, dst, payload_len, 64)
}

/// An ICMPv6 error (`kind`, `code`, 32-bit `parameter`: the MTU for packet too big) from `src` about
/// `original` (an IPv6 packet as received), quoting as much as fits in 1280 bytes (RFC 4443 section
/// 2.4). `None` when RFC 4443 section 2.4 (e) forbids an error: about an error, or from/to multicast.
pub(crate) fn build_error(
    buf: &mut [u8],
    src: Ipv6Address,
    original: &[u8],
    kind: u8,
    code: u8,
    parameter: u32,
) -> Option<usize> {
    let orig_src = Ipv6Address::from(<[u8; 16]>::try_from(original.get(8..24)?).ok()?);
    let orig_dst = Ipv6Address::from(<[u8; 16]>::try_from(original.get(24..40)?).ok()?);
    if orig_src.is_unspecified() || orig_src.is_multicast() || orig_dst.is_multicast() {
        return None;
    }
    if *original.get(6)? == u8::from(IpProtocol::Icmpv6)
        && original.get(HEADER_LEN).is_none_or(|&t| t < 128)
    {
        return None;
    }
    let quoted_len = original.len().min(MIN_MTU - HEADER_LEN - 8);
    let len = 8 + quoted_len;
    {
        let icmp = buf.get_mut(HEADER_LEN..HEADER_LEN + len)?;
        icmp.fill(0);
        *icmp.first_mut()? = kind;
        *icmp.get_mut(1)? = code;
        icmp.get_mut(4..8)?
            .copy_from_slice(&parameter.to_be_bytes());
        icmp.get_mut(8..)?
            .copy_from_slice(original.get(..quoted_len)?);
    }
    finish(buf, src, orig_src, len, 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Icmpv6Packet, Icmpv6Repr, Ipv6Packet, NdiscRepr};

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    #[test]
    fn addresses() {
        assert_eq!(
            link_local(MAC),
            Ipv6Address::new(0xfe80, 0, 0, 0, 0x5054, 0x00ff, 0xfe12, 0x3456)
        );
        let a = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0x12, 0x3456);
        assert_eq!(
            solicited_node(a),
            Ipv6Address::new(0xff02, 0, 0, 0, 0, 1, 0xff12, 0x3456)
        );
        assert_eq!(
            multicast_mac(solicited_node(a)),
            EthernetAddress([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
        );
    }

    fn icmp_of(packet: &[u8]) -> Icmpv6Repr<'_> {
        let p = Ipv6Packet::new_checked(packet).unwrap();
        let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
        Icmpv6Repr::parse(
            &p.src_addr(),
            &p.dst_addr(),
            &icmp,
            &ChecksumCapabilities::default(),
        )
        .unwrap()
    }

    #[test]
    fn router_advert_and_neighbor_advert_parse_with_smoltcp() {
        let ours = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let prefix = Ipv6Cidr::new(Ipv6Address::new(0xfd6f, 0x7876, 1, 0, 0, 0, 0, 0), 64);
        let mut buf = [0u8; 200];
        let n = build_router_advert(
            &mut buf,
            ours,
            link_local(ours),
            ALL_NODES,
            1800,
            1400,
            prefix,
        )
        .unwrap();
        let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
            router_lifetime,
            mtu,
            prefix_info,
            lladdr,
            ..
        }) = icmp_of(&buf[..n])
        else {
            panic!("not an RA")
        };
        assert_eq!(router_lifetime.secs(), 1800);
        assert_eq!(mtu, Some(1400));
        assert_eq!(lladdr.unwrap().as_bytes(), &ours.0);
        let info = prefix_info.unwrap();
        assert_eq!((info.prefix, info.prefix_len), (prefix.address(), 64));

        let target = link_local(ours);
        let n = build_neighbor_advert(&mut buf, ours, target, link_local(MAC)).unwrap();
        let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        }) = icmp_of(&buf[..n])
        else {
            panic!("not an NA")
        };
        assert_eq!(target_addr, target);
        assert!(flags.contains(smoltcp::wire::NdiscNeighborFlags::SOLICITED));
        assert_eq!(lladdr.unwrap().as_bytes(), &ours.0);
    }

    #[test]
    fn parses_solicitations_and_rejects_forgeries() {
        let ours = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let src = link_local(MAC);
        let target = link_local(ours);
        let dst = solicited_node(target);
        let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: Some(smoltcp::wire::RawHardwareAddress::from_bytes(&MAC.0)),
        });
        let mut icmp = alloc::vec![0u8; repr.buffer_len()];
        repr.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(&mut icmp[..]),
            &ChecksumCapabilities::default(),
        );
        assert_eq!(
            parse(src, dst, 255, &icmp),
            Some(Incoming::NeighborSolicit {
                target,
                source_mac: Some(MAC)
            })
        );
        assert_eq!(
            parse(src, dst, 64, &icmp),
            None,
            "NDP from off-link (hop limit < 255)"
        );
        let mut bad = icmp.clone();
        bad[10] ^= 1;
        assert_eq!(parse(src, dst, 255, &bad), None, "checksum");
        let mut zero_len = icmp.clone();
        zero_len[25] = 0;
        assert_eq!(parse(src, dst, 255, &zero_len), None);
        assert_eq!(parse(src, dst, 255, &[]), None);
    }

    #[test]
    fn packet_too_big_quotes_the_original() {
        let src = Ipv6Address::new(0xfd6f, 0, 0, 0, 0, 0, 0, 0x50);
        let dst = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let mut original = alloc::vec![0u8; 1500];
        write_header(&mut original, src, dst, IpProtocol::Udp, 1460, 64).unwrap();
        let mut buf = [0u8; 1400];
        let n = build_error(
            &mut buf,
            link_local(MAC),
            &original,
            PACKET_TOO_BIG,
            0,
            1400,
        )
        .unwrap();
        assert!(n <= 1280);
        let Icmpv6Repr::PktTooBig { mtu, header, .. } = icmp_of(&buf[..n]) else {
            panic!("not PTB")
        };
        assert_eq!((mtu, header.src_addr, header.dst_addr), (1400, src, dst));
        // Never an error about an error.
        let copy = buf[..n].to_vec();
        assert!(build_error(&mut buf, link_local(MAC), &copy, PACKET_TOO_BIG, 0, 1400).is_none());
    }
}
