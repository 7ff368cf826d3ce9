//! ICMPv4 messages the router originates: echo replies for its own addresses and the errors of a
//! forwarding router (destination unreachable, fragmentation needed, time exceeded).
//!
//! Layer: packet builders over caller buffers. Applies RFC 1122 section 3.2.2 and RFC 1812 section
//! 4.3.2.7 so that no error is ever sent about an error, a broadcast, or a non-initial fragment.

use smoltcp::time::Instant;
use smoltcp::wire::{IpProtocol, Ipv4Address};

use crate::checksum::{internet, set_be16};
use crate::ip::{self, Ipv4Info, HEADER_LEN};

/// Which ICMP error to send (RFC 792, RFC 1191 for the MTU field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcmpError {
    /// Type 3 code 0: no route into the tunnel for this destination (or the tunnel is down).
    NetUnreachable,
    /// Type 3 code 3: nothing listens on that UDP port of the gateway.
    PortUnreachable,
    /// Type 3 code 4: DF set and the packet exceeds `mtu` (RFC 1191 section 4 next-hop MTU).
    FragmentationNeeded { mtu: u16 },
    /// Type 11 code 0: TTL reached zero in transit.
    TtlExceeded,
}

impl IcmpError {
    fn type_code(self) -> (u8, u8) {
        match self {
            IcmpError::NetUnreachable => (3, 0),
            IcmpError::PortUnreachable => (3, 3),
            IcmpError::FragmentationNeeded { .. } => (3, 4),
            IcmpError::TtlExceeded => (11, 0),
        }
    }
}

/// Errors allowed in a burst.
pub const ERROR_BURST: u32 = 100;
/// Errors allowed per second once the burst is spent.
pub const ERROR_RATE: u32 = 100;

/// RFC 1812 section 4.3.2.8: a router must be able to limit the rate of the ICMP errors it sends. A token
/// bucket of [`ERROR_BURST`] refilled at [`ERROR_RATE`] per second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorRateLimit {
    tokens: u32,
    last_refill: Instant,
}

impl ErrorRateLimit {
    pub(crate) fn new() -> Self {
        ErrorRateLimit {
            tokens: ERROR_BURST,
            last_refill: Instant::ZERO,
        }
    }

    /// Takes a token if one is left.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if now > self.last_refill {
            let elapsed_ms = (now - self.last_refill).total_millis();
            let refill = elapsed_ms.saturating_mul(u64::from(ERROR_RATE)) / 1000;
            if refill > 0 {
                let refill = u32::try_from(refill).unwrap_or(u32::MAX);
                self.tokens = self.tokens.saturating_add(refill).min(ERROR_BURST);
                self.last_refill = now;
            }
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// ICMP type of an echo reply / echo request.
pub(crate) const ECHO_REPLY: u8 = 0;
pub(crate) const ECHO_REQUEST: u8 = 8;

/// True for ICMP types that are errors (RFC 792): never answered with another error, and carry an
/// embedded datagram.
pub(crate) fn is_error_type(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// RFC 1812 section 4.3.2.3: quote as much of the original as fits in 576 bytes.
const MAX_ERROR_LEN: usize = 576;

/// Builds an IPv4 ICMP error from `src` about `original` (the packet as received) into `buf`. Returns the
/// packet length, or `None` when RFC 1122 section 3.2.2 forbids an error for this packet or `buf` is short.
pub(crate) fn build_error(
    buf: &mut [u8],
    src: Ipv4Address,
    original: &[u8],
    error: IcmpError,
    ident: u16,
) -> Option<usize> {
    let info = ip::parse(original)?;
    if !may_send_error(&info, original) {
        return None;
    }
    let quoted_len = info.total_len.min(MAX_ERROR_LEN - HEADER_LEN - 8);
    let quoted = original.get(..quoted_len)?;
    let icmp_len = 8 + quoted_len;
    {
        let icmp = buf.get_mut(HEADER_LEN..HEADER_LEN + icmp_len)?;
        let (t, c) = error.type_code();
        icmp.fill(0);
        let head: &mut [u8; 8] = icmp.get_mut(..8)?.try_into().ok()?;
        head[0] = t;
        head[1] = c;
        if let IcmpError::FragmentationNeeded { mtu } = error {
            set_be16(icmp, 6, mtu)?;
        }
        icmp.get_mut(8..)?.copy_from_slice(quoted);
        let sum = internet(icmp);
        set_be16(icmp, 2, sum)?;
    }
    ip::write_header(buf, src, info.src, IpProtocol::Icmp, icmp_len, 64, ident)?;
    Some(HEADER_LEN + icmp_len)
}

fn may_send_error(info: &Ipv4Info, original: &[u8]) -> bool {
    if info.frag_offset != 0
        || ip::is_martian(info.src)
        || info.dst.is_multicast()
        || info.dst.is_broadcast()
    {
        return false;
    }
    if info.protocol == IpProtocol::Icmp {
        match original.get(info.header_len) {
            Some(&t) if !is_error_type(t) => {}
            _ => return false,
        }
    }
    true
}

/// Builds the echo reply from `src` for a validated echo request `request` (an IPv4 packet) into `buf`.
/// Returns the packet length, or `None` if the request is not an echo request or does not fit.
pub(crate) fn build_echo_reply(
    buf: &mut [u8],
    src: Ipv4Address,
    request: &[u8],
    ident: u16,
) -> Option<usize> {
    let info = ip::parse(request)?;
    let icmp_in = request.get(info.header_len..info.total_len)?;
    if icmp_in.len() < 8 || icmp_in.first() != Some(&ECHO_REQUEST) || internet(icmp_in) != 0 {
        return None;
    }
    let icmp_len = icmp_in.len();
    {
        let icmp = buf.get_mut(HEADER_LEN..HEADER_LEN.checked_add(icmp_len)?)?;
        icmp.copy_from_slice(icmp_in);
        let head: &mut [u8; 8] = icmp.get_mut(..8)?.try_into().ok()?;
        head[0] = ECHO_REPLY;
        head[1] = 0;
        set_be16(icmp, 2, 0)?;
        let sum = internet(icmp);
        set_be16(icmp, 2, sum)?;
    }
    ip::write_header(buf, src, info.src, IpProtocol::Icmp, icmp_len, 64, ident)?;
    HEADER_LEN.checked_add(icmp_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Ipv4Packet, Ipv4Repr};

    fn echo_request() -> [u8; 36] {
        let mut buf = [0u8; 36];
        let icmp = Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data: &[1, 2, 3, 4, 5, 6, 7, 8],
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 8, 0, 50),
            dst_addr: Ipv4Address::new(10, 8, 0, 1),
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let caps = ChecksumCapabilities::default();
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, &caps);
        icmp.emit(&mut Icmpv4Packet::new_unchecked(p.payload_mut()), &caps);
        buf
    }

    #[test]
    fn echo_reply_verifies_with_smoltcp() {
        let req = echo_request();
        let mut out = [0u8; 64];
        let n = build_echo_reply(&mut out, Ipv4Address::new(10, 8, 0, 1), &req, 1).unwrap();
        let p = Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.dst_addr(), Ipv4Address::new(10, 8, 0, 50));
        let icmp = Icmpv4Packet::new_checked(p.payload()).unwrap();
        let repr = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(
            repr,
            Icmpv4Repr::EchoReply {
                ident: 0x1234,
                seq_no: 7,
                data: &[1, 2, 3, 4, 5, 6, 7, 8]
            }
        );
    }

    #[test]
    fn no_error_about_an_error() {
        let req = echo_request();
        let mut err = [0u8; 600];
        let n = build_error(
            &mut err,
            Ipv4Address::new(10, 8, 0, 1),
            &req,
            IcmpError::TtlExceeded,
            1,
        )
        .unwrap();
        let mut again = [0u8; 600];
        assert!(build_error(
            &mut again,
            Ipv4Address::new(10, 8, 0, 1),
            &err[..n],
            IcmpError::TtlExceeded,
            1
        )
        .is_none());
    }

    #[test]
    fn errors_are_rate_limited() {
        let mut limit = ErrorRateLimit::new();
        let t = Instant::from_secs(10);
        let sent = (0..1000).filter(|_| limit.allow(t)).count();
        assert_eq!(sent, ERROR_BURST as usize);
        assert!(
            limit.allow(t + smoltcp::time::Duration::from_millis(20)),
            "refills over time"
        );
    }

    #[test]
    fn frag_needed_carries_mtu() {
        let req = echo_request();
        let mut err = [0u8; 600];
        let n = build_error(
            &mut err,
            Ipv4Address::new(10, 8, 0, 1),
            &req,
            IcmpError::FragmentationNeeded { mtu: 1400 },
            1,
        )
        .unwrap();
        let p = Ipv4Packet::new_checked(&err[..n]).unwrap();
        let icmp = p.payload();
        assert_eq!((icmp[0], icmp[1]), (3, 4));
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1400);
        assert_eq!(internet(icmp), 0);
        assert_eq!(&icmp[8..], &req[..], "a short original is quoted whole");
    }
}
