//! Hand-built IPv4 + ICMP echo packets for the tunnel test (RFC 791, RFC 792).

use std::net::Ipv4Addr;

/// Bytes of payload after the 8-byte ICMP header.
const PAYLOAD_LEN: usize = 56;

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 ICMP echo request from `src` to `dst`.
pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq: u16) -> Vec<u8> {
    let total = 20 + 8 + PAYLOAD_LEN;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&seq.to_be_bytes());
    p[8] = 64; // TTL
    p[9] = 1; // ICMP
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 8; // echo request
    p[24..26].copy_from_slice(&ident.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let c = checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

/// If `packet` is an IPv4 ICMP echo reply from `from` with identifier `ident`, its sequence number.
pub fn echo_reply_seq(packet: &[u8], from: Ipv4Addr, ident: u16) -> Option<u16> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || *packet.get(9)? != 1 || packet.get(12..16)? != from.octets() {
        return None;
    }
    let icmp = packet.get(ihl..)?;
    if *icmp.first()? != 0 || checksum(icmp) != 0 {
        return None;
    }
    if icmp.get(4..6)? != ident.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksums_verify_and_reply_parses() {
        let (a, b) = (Ipv4Addr::new(10, 8, 0, 2), Ipv4Addr::new(10, 8, 0, 1));
        let mut p = echo_request(a, b, 0x1234, 7);
        assert_eq!(checksum(&p[..20]), 0);
        assert_eq!(checksum(&p[20..]), 0);
        // Turn it into the reply the server would send.
        p[12..16].copy_from_slice(&b.octets());
        p[16..20].copy_from_slice(&a.octets());
        p[20] = 0;
        p[22..24].copy_from_slice(&[0, 0]);
        let c = checksum(&p[20..]);
        p[22..24].copy_from_slice(&c.to_be_bytes());
        assert_eq!(echo_reply_seq(&p, b, 0x1234), Some(7));
        assert_eq!(echo_reply_seq(&p, b, 0x1235), None);
    }
}

/// An ICMPv6 echo request from `src` to `dst` (RFC 4443; checksum over the RFC 8200 pseudo-header).
pub fn echo_request_v6(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    ident: u16,
    seq: u16,
) -> Vec<u8> {
    let icmp_len = 8 + PAYLOAD_LEN;
    let mut p = vec![0u8; 40 + icmp_len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
    p[6] = 58; // ICMPv6
    p[7] = 64; // hop limit
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[40] = 128; // echo request
    p[44..46].copy_from_slice(&ident.to_be_bytes());
    p[46..48].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[48..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let c = checksum_v6(&p[8..40], &p[40..]);
    p[42..44].copy_from_slice(&c.to_be_bytes());
    p
}

fn checksum_v6(addrs: &[u8], icmp: &[u8]) -> u16 {
    let mut pseudo = addrs.to_vec();
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(icmp);
    checksum(&pseudo)
}

/// If `packet` is an ICMPv6 echo reply from `from` with identifier `ident`, its sequence number.
pub fn echo_reply_seq_v6(packet: &[u8], from: std::net::Ipv6Addr, ident: u16) -> Option<u16> {
    if packet.first()? >> 4 != 6 || *packet.get(6)? != 58 || packet.get(8..24)? != from.octets() {
        return None;
    }
    let icmp = packet.get(40..)?;
    if *icmp.first()? != 129 || checksum_v6(packet.get(8..40)?, icmp) != 0 {
        return None;
    }
    if icmp.get(4..6)? != ident.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]))
}

#[cfg(test)]
mod tests_v6 {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn v6_request_and_reply() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "fd00:8::1000".parse().unwrap(),
            "fd00:8::1".parse().unwrap(),
        );
        let mut p = echo_request_v6(a, b, 0x4242, 3);
        assert_eq!(checksum_v6(&p[8..40], &p[40..]), 0);
        // The reply the server's kernel would send.
        p[8..24].copy_from_slice(&b.octets());
        p[24..40].copy_from_slice(&a.octets());
        p[40] = 129;
        p[42..44].copy_from_slice(&[0, 0]);
        let c = checksum_v6(&p[8..40], &p[40..]);
        p[42..44].copy_from_slice(&c.to_be_bytes());
        assert_eq!(echo_reply_seq_v6(&p, b, 0x4242), Some(3));
        assert_eq!(echo_reply_seq_v6(&p, a, 0x4242), None);
    }
}
