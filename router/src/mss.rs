//! TCP MSS clamping (`mssfix`): lowers the MSS option of SYN segments crossing the router so that TCP
//! peers never build segments that would need fragmenting to fit the tunnel.
//!
//! Layer: in-place edit of one TCP header, checksum patched incrementally (RFC 1624). Never grows a
//! packet: a SYN without an MSS option is left alone (the peer then assumes 536, RFC 9293 section 3.7.1).

use crate::checksum::{be16, patch16, set_be16};
use crate::ip::TCP_CHECKSUM;

/// TCP option kinds (RFC 9293 section 3.1).
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const SYN: u8 = 0x02;

/// The largest MSS that fits an IPv4 packet of `mtu` bytes (20-byte IP and TCP headers).
pub(crate) fn ipv4_mss_for_mtu(mtu: u16) -> u16 {
    mtu.saturating_sub(40).max(536)
}

/// The largest MSS that fits an IPv6 packet of `mtu` bytes (40-byte IP header, 20-byte TCP header).
pub(crate) fn ipv6_mss_for_mtu(mtu: u16) -> u16 {
    mtu.saturating_sub(60).max(1220)
}

/// Clamps the MSS option of `segment` (a whole TCP header and payload) to `max_mss` if the segment is a
/// SYN carrying a larger MSS. Returns true when the segment was changed.
pub(crate) fn clamp(segment: &mut [u8], max_mss: u16) -> bool {
    let Some(&flags) = segment.get(13) else {
        return false;
    };
    let Some(&offset_byte) = segment.get(12) else {
        return false;
    };
    if flags & SYN == 0 {
        return false;
    }
    let header_len = usize::from(offset_byte >> 4) * 4;
    if header_len < 20 || header_len > segment.len() {
        return false;
    }
    let mut i = 20;
    while i < header_len {
        let Some(&kind) = segment.get(i) else {
            return false;
        };
        match kind {
            OPT_END => return false,
            OPT_NOP => i += 1,
            _ => {
                let Some(&len) = segment.get(i + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || i + len > header_len {
                    return false;
                }
                if kind == OPT_MSS && len == 4 {
                    let Some(mss) = be16(segment, i + 2) else {
                        return false;
                    };
                    if mss <= max_mss {
                        return false;
                    }
                    if set_be16(segment, i + 2, max_mss).is_none() {
                        return false;
                    }
                    // The option starts at an even or odd offset; patch the aligned words it touches.
                    if (i + 2) % 2 == 0 {
                        patch16(segment, TCP_CHECKSUM, mss, max_mss, false);
                    } else {
                        // Odd alignment (after a single NOP): the MSS straddles two 16-bit words.
                        let old0 = u16::from_be_bytes([OPT_MSS_LEN_BYTE, mss.to_be_bytes()[0]]);
                        let new0 = u16::from_be_bytes([OPT_MSS_LEN_BYTE, max_mss.to_be_bytes()[0]]);
                        patch16(segment, TCP_CHECKSUM, old0, new0, false);
                        let next = segment.get(i + 4).copied().unwrap_or(0);
                        let old1 = u16::from_be_bytes([mss.to_be_bytes()[1], next]);
                        let new1 = u16::from_be_bytes([max_mss.to_be_bytes()[1], next]);
                        patch16(segment, TCP_CHECKSUM, old1, new1, false);
                    }
                    return true;
                }
                i += len;
            }
        }
    }
    false
}

/// The length byte of an MSS option, which shares a 16-bit word with the MSS high byte at odd offsets.
const OPT_MSS_LEN_BYTE: u8 = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip;
    use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Address, TcpPacket};

    fn syn(options: &[u8]) -> alloc::vec::Vec<u8> {
        let mut seg = alloc::vec![0u8; 20 + options.len()];
        seg[0..2].copy_from_slice(&40000u16.to_be_bytes());
        seg[2..4].copy_from_slice(&443u16.to_be_bytes());
        seg[12] = (((20 + options.len()) / 4) as u8) << 4;
        seg[13] = SYN;
        seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
        seg[20..].copy_from_slice(options);
        let c = ip::l4_checksum(SRC, DST, IpProtocol::Tcp, &seg);
        seg[16..18].copy_from_slice(&c.to_be_bytes());
        seg
    }

    const SRC: Ipv4Address = Ipv4Address::new(10, 8, 0, 20);
    const DST: Ipv4Address = Ipv4Address::new(93, 184, 216, 34);

    fn verifies(seg: &[u8]) -> bool {
        TcpPacket::new_checked(seg)
            .unwrap()
            .verify_checksum(&IpAddress::Ipv4(SRC), &IpAddress::Ipv4(DST))
    }

    #[test]
    fn clamps_aligned_mss_and_checksum_verifies() {
        let mut seg = syn(&[2, 4, 0x05, 0xb4, 1, 1, 4, 2]); // MSS 1460, NOP NOP SACK-permitted
        assert!(verifies(&seg));
        assert!(clamp(&mut seg, 1360));
        assert_eq!(u16::from_be_bytes([seg[22], seg[23]]), 1360);
        assert!(verifies(&seg), "checksum must verify after clamping");
        assert!(!clamp(&mut seg, 1400), "never raises the MSS");
    }

    #[test]
    fn clamps_odd_aligned_mss() {
        let mut seg = syn(&[1, 2, 4, 0x05, 0xb4, 0, 0, 0]);
        assert!(clamp(&mut seg, 1200));
        assert_eq!(u16::from_be_bytes([seg[23], seg[24]]), 1200);
        assert!(verifies(&seg));
    }

    #[test]
    fn leaves_non_syn_and_malformed_alone() {
        let mut seg = syn(&[2, 4, 0x05, 0xb4]);
        seg[13] = 0x10; // ACK only
        assert!(!clamp(&mut seg, 1000));
        let mut bad = syn(&[2, 0, 0x05, 0xb4]); // option length 0
        assert!(!clamp(&mut bad, 1000));
        let mut bad = syn(&[2, 9, 0x05, 0xb4]); // runs past the header
        assert!(!clamp(&mut bad, 1000));
        assert!(!clamp(&mut [], 1000));
    }
}
