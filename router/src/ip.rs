//! IPv4 (and IPv6) header checks and in-place edits shared by the forwarding, NAT, ICMP and service
//! paths.
//!
//! Layer: wire helpers over raw bytes (smoltcp's `Ipv4Packet` is used for the checked view). Nothing here
//! keeps state, allocates or panics on short input.

use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet};

use crate::checksum::{be16, internet, patch16, set_be16, set_bytes4};

/// Offset of the IPv4 header checksum (RFC 791 section 3.1).
pub(crate) const CHECKSUM: usize = 10;
/// Offset of the source address.
pub(crate) const SRC: usize = 12;
/// Offset of the destination address.
pub(crate) const DST: usize = 16;
/// Offset of the TTL.
pub(crate) const TTL: usize = 8;
/// Length of an IPv4 header without options.
pub(crate) const HEADER_LEN: usize = 20;
/// Offset of the TCP checksum inside the TCP header (RFC 9293 section 3.1).
pub(crate) const TCP_CHECKSUM: usize = 16;
/// Offset of the UDP checksum inside the UDP header (RFC 768).
pub(crate) const UDP_CHECKSUM: usize = 6;
/// Offset of the ICMP checksum inside the ICMP header (RFC 792).
pub(crate) const ICMP_CHECKSUM: usize = 2;

/// The facts about a validated IPv4 packet that every path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv4Info {
    /// Header length in bytes (20..=60).
    pub header_len: usize,
    /// Total length from the header; the packet slice is cut to it.
    pub total_len: usize,
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub protocol: IpProtocol,
    pub ttl: u8,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in bytes.
    pub frag_offset: usize,
    pub ident: u16,
}

impl Ipv4Info {
    /// True for any fragment (first, middle or last) of a fragmented datagram.
    pub(crate) fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }
}

/// Validates an IPv4 packet: version 4, header length >= 20, total length within the buffer, header
/// checksum correct. Bytes past the total length (Ethernet padding) are ignored.
pub(crate) fn parse(bytes: &[u8]) -> Option<Ipv4Info> {
    let packet = Ipv4Packet::new_checked(bytes).ok()?;
    let header_len = usize::from(packet.header_len());
    if packet.version() != 4 || header_len < HEADER_LEN {
        return None;
    }
    let total_len = usize::from(packet.total_len());
    if internet(bytes.get(..header_len)?) != 0 {
        return None;
    }
    Some(Ipv4Info {
        header_len,
        total_len,
        src: packet.src_addr(),
        dst: packet.dst_addr(),
        protocol: packet.next_header(),
        ttl: packet.hop_limit(),
        dont_frag: packet.dont_frag(),
        more_frags: packet.more_frags(),
        frag_offset: usize::from(packet.frag_offset()),
        ident: packet.ident(),
    })
}

/// The facts about a validated IPv6 packet that every path needs (the fixed header only: extension
/// headers are the payload's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv6Info {
    /// Header (40 bytes) plus payload length; the packet slice is cut to it.
    pub total_len: usize,
    pub src: Ipv6Address,
    pub dst: Ipv6Address,
    pub next_header: IpProtocol,
    pub hop_limit: u8,
}

/// Validates an IPv6 packet: version 6, the whole fixed header and the payload length within the
/// buffer. Bytes past the payload (Ethernet padding) are ignored.
pub(crate) fn parse6(bytes: &[u8]) -> Option<Ipv6Info> {
    let packet = Ipv6Packet::new_checked(bytes).ok()?;
    if packet.version() != 6 {
        return None;
    }
    Some(Ipv6Info {
        total_len: packet.total_len(),
        src: packet.src_addr(),
        dst: packet.dst_addr(),
        next_header: packet.next_header(),
        hop_limit: packet.hop_limit(),
    })
}

/// Writes a 20-byte IPv4 header (no options, DF clear) for a payload of `payload_len` bytes and fills
/// its checksum. Returns the header length, or `None` if `buf` is too short or the length overflows.
pub(crate) fn write_header(
    buf: &mut [u8],
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: IpProtocol,
    payload_len: usize,
    ttl: u8,
    ident: u16,
) -> Option<usize> {
    let total = u16::try_from(payload_len.checked_add(HEADER_LEN)?).ok()?;
    let h: &mut [u8; HEADER_LEN] = buf.get_mut(..HEADER_LEN)?.try_into().ok()?;
    h.fill(0);
    h[0] = 0x45;
    set_be16(h, 2, total)?;
    set_be16(h, 4, ident)?;
    h[TTL] = ttl;
    h[9] = protocol.into();
    set_bytes4(h, SRC, src.octets())?;
    set_bytes4(h, DST, dst.octets())?;
    let c = internet(h);
    set_be16(h, CHECKSUM, c)?;
    Some(HEADER_LEN)
}

/// Decrements the TTL of a validated packet and patches the header checksum (RFC 1812 section 5.3.1,
/// incremental per RFC 1624). The caller has already checked that the TTL is above 1.
pub(crate) fn decrement_ttl(packet: &mut [u8]) {
    let Some(word) = be16(packet, TTL) else {
        return;
    };
    let Some(ttl) = packet.get_mut(TTL) else {
        return;
    };
    *ttl = ttl.saturating_sub(1);
    let Some(new) = be16(packet, TTL) else { return };
    patch16(packet, CHECKSUM, word, new, false);
}

/// Recomputes the header checksum of a packet whose header was rewritten wholesale.
pub(crate) fn fill_header_checksum(packet: &mut [u8], header_len: usize) {
    let _ = set_be16(packet, CHECKSUM, 0);
    if let Some(h) = packet.get(..header_len) {
        let c = internet(h);
        let _ = set_be16(packet, CHECKSUM, c);
    }
}

/// The UDP/TCP checksum over the pseudo-header and `segment` (whose checksum field must be zero).
pub(crate) fn l4_checksum(
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: IpProtocol,
    segment: &[u8],
) -> u16 {
    use crate::checksum::sum;
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    !sum::combine(&[
        sum::pseudo_header_v4(src.octets(), dst.octets(), protocol.into(), len),
        sum::data(segment),
    ])
}

/// Builds IPv4 + UDP headers around a payload already placed at `buf[28..28 + payload_len]`. Returns
/// the total packet length.
pub(crate) fn write_udp(
    buf: &mut [u8],
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    payload_len: usize,
    ident: u16,
) -> Option<usize> {
    let udp_len = payload_len.checked_add(8)?;
    let udp_len16 = u16::try_from(udp_len).ok()?;
    {
        let udp = buf.get_mut(HEADER_LEN..HEADER_LEN.checked_add(udp_len)?)?;
        set_be16(udp, 0, src.1)?;
        set_be16(udp, 2, dst.1)?;
        set_be16(udp, 4, udp_len16)?;
        set_be16(udp, UDP_CHECKSUM, 0)?;
        let mut c = l4_checksum(src.0, dst.0, IpProtocol::Udp, udp);
        if c == 0 {
            c = 0xffff;
        }
        set_be16(udp, UDP_CHECKSUM, c)?;
    }
    write_header(buf, src.0, dst.0, IpProtocol::Udp, udp_len, 64, ident)?;
    HEADER_LEN.checked_add(udp_len)
}

/// True for addresses that must never be forwarded (RFC 1812 section 5.3.7 martians): unspecified,
/// "this network", loopback, multicast and limited broadcast.
pub(crate) fn is_martian(addr: Ipv4Address) -> bool {
    addr.is_unspecified()
        || addr.octets()[0] == 0
        || addr.is_loopback()
        || addr.is_multicast()
        || addr.is_broadcast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_ttl() {
        let mut buf = [0u8; 28];
        let src = Ipv4Address::new(10, 0, 0, 2);
        let dst = Ipv4Address::new(1, 1, 1, 1);
        write_header(&mut buf, src, dst, IpProtocol::Udp, 8, 64, 7).unwrap();
        let info = parse(&buf).unwrap();
        assert_eq!(
            (info.src, info.dst, info.ttl, info.total_len),
            (src, dst, 64, 28)
        );
        decrement_ttl(&mut buf);
        assert_eq!(parse(&buf).unwrap().ttl, 63, "checksum must still verify");
    }

    #[test]
    fn rejects_bad_headers() {
        let mut buf = [0u8; 28];
        write_header(
            &mut buf,
            Ipv4Address::new(1, 2, 3, 4),
            Ipv4Address::new(5, 6, 7, 8),
            IpProtocol::Udp,
            8,
            64,
            0,
        )
        .unwrap();
        let mut bad = buf;
        bad[CHECKSUM] ^= 1;
        assert!(parse(&bad).is_none());
        let mut bad = buf;
        bad[0] = 0x44; // IHL 4
        assert!(parse(&bad).is_none());
        assert!(parse(&buf[..27]).is_none());
        assert!(parse(&[]).is_none());
    }

    #[test]
    fn parses_ipv6_headers() {
        let mut buf = [0u8; 48];
        buf[0] = 0x60;
        buf[5] = 8; // payload length
        buf[6] = 17; // UDP
        buf[7] = 64;
        buf[8..24].copy_from_slice(&Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).octets());
        buf[24..40].copy_from_slice(&Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        let info = parse6(&buf).unwrap();
        assert_eq!(
            (info.total_len, info.next_header, info.hop_limit),
            (48, IpProtocol::Udp, 64)
        );
        assert_eq!(info.dst, Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert!(parse6(&buf[..47]).is_none(), "payload cut short");
        let mut v4 = buf;
        v4[0] = 0x40;
        assert!(parse6(&v4).is_none(), "not version 6");
        assert!(parse6(&buf[..39]).is_none());
    }
}
