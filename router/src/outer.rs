//! The tunnel's own IPv4/UDP frames on the public NIC: picking the OpenVPN server's datagrams out of
//! received Ethernet frames, so that the engine decrypts them in the NIC's receive buffer instead of
//! smoltcp copying them into a socket, and filling in the UDP checksum of the frames smoltcp sends
//! without one.
//!
//! Layer: stateless frame codec, smoltcp-independent apart from the address type. Used by the kernel's
//! public side only; the private side is the [`Router`](crate::Router).
//!
//! Both use the 8-bytes-per-step checksum of [`crate::checksum`] rather than smoltcp's 2-byte one: under
//! TCG the UDP checksum of every 1.4 KB data datagram was about a tenth of the router's instructions.

use core::ops::Range;

use smoltcp::wire::{EthernetAddress, EthernetProtocol, IpProtocol, Ipv4Address};

use crate::arp;
use crate::checksum::{be16, bytes4, internet, patch16, set_be16};
use crate::ip::{self, UDP_CHECKSUM};

const ETH: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_UDP: u8 = 17;
const UDP_HEADER: usize = 8;
/// The IPv4 flags/fragment-offset word and its DF bit.
const FLAGS_FRAGMENT: usize = 6;
const DONT_FRAGMENT: u16 = 0x4000;

/// The UDP flow of the tunnel transport, as seen from the router: what a received frame must carry to
/// go to the engine directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFlow {
    /// The public NIC's MAC address (frames to other addresses are not ours).
    pub local_mac: EthernetAddress,
    /// The public NIC's address and the tunnel's UDP port.
    pub local: (Ipv4Address, u16),
    /// The OpenVPN server's address and port.
    pub remote: (Ipv4Address, u16),
}

/// What [`match_datagram`] found in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// A datagram of the flow with valid checksums: its UDP payload lies at this range of the frame.
    Flow(Range<usize>),
    /// A datagram of the flow whose IPv4 header or UDP checksum is wrong: drop it (and count it).
    BadChecksum,
    /// Anything else (ARP, other addresses or ports, fragments, TCP, ...): hand it to smoltcp.
    Other,
}

/// Whether `frame` (Ethernet, no FCS) is an unfragmented IPv4/UDP datagram from `flow.remote` to
/// `flow.local` and `flow.local_mac`, with a valid header checksum and a valid (or absent, RFC 768)
/// UDP checksum. Never panics on any input.
pub fn match_datagram(frame: &[u8], flow: &UdpFlow) -> Matched {
    match_inner(frame, flow).unwrap_or(Matched::Other)
}

fn match_inner(frame: &[u8], flow: &UdpFlow) -> Option<Matched> {
    match_udp(frame, flow.local_mac, flow.local, Some(flow.remote)).map(|(m, _)| m)
}

/// What [`match_listener`] found in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listened {
    /// A datagram to the listening port with valid checksums, from `from` (sent by `source_mac`, the
    /// peer itself or the router in front of it): its UDP payload lies at `payload`.
    Datagram {
        /// The sender's address and port.
        from: (Ipv4Address, u16),
        /// The Ethernet source of the frame: where answers to `from` go.
        source_mac: EthernetAddress,
        /// The UDP payload's range in the frame.
        payload: Range<usize>,
    },
    /// A datagram to the port whose IPv4 header or UDP checksum is wrong: drop it.
    BadChecksum,
    /// Anything else: hand it to smoltcp.
    Other,
}

/// [`match_datagram`] for a server: an unfragmented IPv4/UDP datagram to `local` (address and listening
/// port) and `local_mac` from any sender, with valid checksums. Never panics on any input.
pub fn match_listener(
    frame: &[u8],
    local_mac: EthernetAddress,
    local: (Ipv4Address, u16),
) -> Listened {
    match match_udp(frame, local_mac, local, None) {
        Some((Matched::Flow(payload), Some(from))) => {
            let source_mac = frame
                .get(6..12)
                .map_or(EthernetAddress([0; 6]), EthernetAddress::from_bytes);
            Listened::Datagram {
                from,
                source_mac,
                payload,
            }
        }
        Some((Matched::BadChecksum, _)) => Listened::BadChecksum,
        _ => Listened::Other,
    }
}

/// The datagram check of both matchers: to `local_mac` and `local`, from `remote` when given (else from
/// anyone, returned beside the result).
fn match_udp(
    frame: &[u8],
    local_mac: EthernetAddress,
    local: (Ipv4Address, u16),
    remote: Option<(Ipv4Address, u16)>,
) -> Option<(Matched, Option<(Ipv4Address, u16)>)> {
    if frame.get(..6)? != local_mac.as_bytes() {
        return Some((Matched::Other, None));
    }
    let (header, segment) = udp_unfragmented(frame)?;
    let from = (
        Ipv4Address::from(bytes4(header, ip::SRC)?),
        be16(segment, 0)?,
    );
    if header.get(16..20)? != local.0.octets()
        || be16(segment, 2)? != local.1
        || remote.is_some_and(|r| r != from)
    {
        return Some((Matched::Other, None));
    }
    Some((check_datagram(header, segment)?, Some(from)))
}

/// Checksums and length of a datagram already known to be ours.
fn check_datagram(header: &[u8], segment: &[u8]) -> Option<Matched> {
    // The flow's own datagram from here on: whatever is wrong with it is a bad checksum.
    if internet(header) != 0 {
        return Some(Matched::BadChecksum);
    }
    let udp_len = usize::from(be16(segment, 4)?);
    if udp_len < UDP_HEADER || udp_len > segment.len() {
        return Some(Matched::BadChecksum);
    }
    let segment = segment.get(..udp_len)?;
    if be16(segment, UDP_CHECKSUM)? != 0 && udp_checksum(header, segment)? != 0 {
        return Some(Matched::BadChecksum);
    }
    let start = ETH + header.len();
    Some(Matched::Flow(start + UDP_HEADER..start + udp_len))
}

/// The IPv4 header and the UDP part (up to the IPv4 total length) of an unfragmented Ethernet/IPv4/UDP
/// frame; `None` for anything else or a frame shorter than its headers say. No checksum is looked at.
fn udp_unfragmented(frame: &[u8]) -> Option<(&[u8], &[u8])> {
    if be16(frame, 12)? != ETHERTYPE_IPV4 {
        return None;
    }
    let packet = frame.get(ETH..)?;
    let first = *packet.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    let total_len = usize::from(be16(packet, 2)?);
    if first >> 4 != 4
        || header_len < ip::HEADER_LEN
        || *packet.get(9)? != PROTO_UDP
        || be16(packet, FLAGS_FRAGMENT)? & 0x3fff != 0
    // MF or a fragment offset
    {
        return None;
    }
    packet.get(..total_len)?.split_at_checked(header_len)
}

/// The complemented UDP checksum over the pseudo-header (addresses from the IPv4 `header`) and
/// `segment`: 0 for a valid segment, the value to store for one whose checksum field is zero.
fn udp_checksum(header: &[u8], segment: &[u8]) -> Option<u16> {
    let src = Ipv4Address::from(bytes4(header, ip::SRC)?);
    let dst = Ipv4Address::from(bytes4(header, ip::DST)?);
    Some(ip::l4_checksum(src, dst, IpProtocol::Udp, segment))
}

/// Fills in the UDP checksum of `frame` if it is an unfragmented Ethernet/IPv4/UDP frame with a zero
/// checksum field (what smoltcp emits when its device takes over UDP checksums on transmit); every
/// other frame is left as it is. Returns whether it wrote a checksum.
pub fn fill_udp_checksum(frame: &mut [u8]) -> bool {
    fill_inner(frame).is_some()
}

fn fill_inner(frame: &mut [u8]) -> Option<()> {
    let (header, segment) = udp_unfragmented(frame)?;
    let udp_len = usize::from(be16(segment, 4)?);
    let segment = segment.get(..udp_len)?;
    if udp_len < UDP_HEADER || be16(segment, UDP_CHECKSUM)? != 0 {
        return None;
    }
    let check = udp_checksum(header, segment)?;
    let at = ETH + header.len() + UDP_CHECKSUM;
    // A computed zero is sent as all ones (RFC 768): zero means "no checksum".
    set_be16(frame, at, if check == 0 { 0xffff } else { check })
}

/// Bytes in front of a datagram's payload in a frame [`write_udp_headers`] completes: Ethernet, IPv4
/// without options, UDP.
pub const HEADERS_LEN: usize = ETH + ip::HEADER_LEN + UDP_HEADER;

/// Writes the Ethernet, IPv4 and UDP headers of a datagram of `flow` (from `local` to `remote`, to the
/// next hop `next_hop_mac`) whose `payload_len`-byte payload is already at `frame[HEADERS_LEN..]`, with
/// both checksums, as smoltcp would send it (TTL 64, DF set, identification 0). Returns the frame's
/// length, `None` when `frame` is too short or the datagram too long for IPv4.
pub fn write_udp_headers(
    frame: &mut [u8],
    flow: &UdpFlow,
    next_hop_mac: EthernetAddress,
    payload_len: usize,
) -> Option<usize> {
    let packet = frame.get_mut(ETH..)?;
    let len = ip::write_udp(packet, flow.local, flow.remote, payload_len, 0)?;
    // `write_udp` leaves DF clear, as the router's own answers have it; smoltcp sets it.
    let flags = be16(packet, FLAGS_FRAGMENT)?;
    set_be16(packet, FLAGS_FRAGMENT, flags | DONT_FRAGMENT)?;
    patch16(packet, ip::CHECKSUM, flags, flags | DONT_FRAGMENT, false);
    arp::write_ethernet(frame, flow.local_mac, next_hop_mac, EthernetProtocol::Ipv4)?;
    ETH.checked_add(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use alloc::vec::Vec;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
        UdpPacket, UdpRepr,
    };

    const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 7]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 9]);
    const US: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

    #[test]
    fn a_listener_takes_datagrams_from_anyone_and_reports_the_sender() {
        let f = flow();
        let mut frame = alloc::vec![0u8; HEADERS_LEN + 5];
        frame[HEADERS_LEN..].copy_from_slice(b"hello");
        // A datagram from the "server" of `flow` to us, as a client would send one to a listener.
        write_udp_headers(
            &mut frame,
            &UdpFlow {
                local_mac: SERVER_MAC,
                local: f.remote,
                remote: f.local,
            },
            OUR_MAC,
            5,
        )
        .unwrap();
        let got = match_listener(&frame, OUR_MAC, f.local);
        assert_eq!(
            got,
            Listened::Datagram {
                from: f.remote,
                source_mac: SERVER_MAC,
                payload: HEADERS_LEN..HEADERS_LEN + 5
            }
        );
        // Another port, another MAC: not ours.
        assert_eq!(
            match_listener(&frame, OUR_MAC, (f.local.0, f.local.1 + 1)),
            Listened::Other
        );
        assert_eq!(match_listener(&frame, SERVER_MAC, f.local), Listened::Other);
        // A flipped payload bit breaks the UDP checksum.
        frame[HEADERS_LEN] ^= 1;
        assert_eq!(
            match_listener(&frame, OUR_MAC, f.local),
            Listened::BadChecksum
        );
        for n in 0..frame.len() {
            let _ = match_listener(&frame[..n], OUR_MAC, f.local);
        }
    }

    fn flow() -> UdpFlow {
        UdpFlow {
            local_mac: OUR_MAC,
            local: (US, 50000),
            remote: (SERVER, 1194),
        }
    }

    /// An Ethernet/IPv4/UDP frame built by smoltcp; `checksum` false leaves the UDP checksum zero.
    fn frame(
        src: (Ipv4Address, u16),
        dst: (Ipv4Address, u16),
        payload: &[u8],
        checksum: bool,
    ) -> Vec<u8> {
        let mut caps = ChecksumCapabilities::default();
        if !checksum {
            caps.udp = smoltcp::phy::Checksum::None;
        }
        let udp = UdpRepr {
            src_port: src.1,
            dst_port: dst.1,
        };
        let ip = Ipv4Repr {
            src_addr: src.0,
            dst_addr: dst.0,
            next_header: IpProtocol::Udp,
            payload_len: 8 + payload.len(),
            hop_limit: 64,
        };
        let mut buf = alloc::vec![0u8; 14 + 20 + 8 + payload.len()];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: SERVER_MAC,
            dst_addr: OUR_MAC,
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut eth);
        let mut p = Ipv4Packet::new_unchecked(eth.payload_mut());
        ip.emit(&mut p, &caps);
        udp.emit(
            &mut UdpPacket::new_unchecked(p.payload_mut()),
            &IpAddress::Ipv4(src.0),
            &IpAddress::Ipv4(dst.0),
            payload.len(),
            |b| b.copy_from_slice(payload),
            &caps,
        );
        buf
    }

    #[test]
    fn picks_the_flow_and_nothing_else() {
        let payload: Vec<u8> = (0..1400u32).map(|i| (i * 7) as u8).collect();
        let f = frame((SERVER, 1194), (US, 50000), &payload, true);
        let Matched::Flow(range) = match_datagram(&f, &flow()) else {
            panic!("the server's datagram is the flow");
        };
        assert_eq!(&f[range], &payload[..]);
        // Without a UDP checksum (RFC 768 allows it over IPv4) it is still the flow.
        let f0 = frame((SERVER, 1194), (US, 50000), b"x", false);
        assert_eq!(match_datagram(&f0, &flow()), Matched::Flow(42..43));
        // Other ports, addresses, MACs: smoltcp's.
        for other in [
            frame((SERVER, 1195), (US, 50000), b"x", true),
            frame((SERVER, 1194), (US, 50001), b"x", true),
            frame(
                (Ipv4Address::new(10, 0, 0, 3), 1194),
                (US, 50000),
                b"x",
                true,
            ),
            frame(
                (SERVER, 1194),
                (Ipv4Address::new(10, 0, 0, 4), 50000),
                b"x",
                true,
            ),
        ] {
            assert_eq!(match_datagram(&other, &flow()), Matched::Other);
        }
        let mut broadcast = f.clone();
        broadcast[..6].copy_from_slice(&[0xff; 6]);
        assert_eq!(match_datagram(&broadcast, &flow()), Matched::Other);
        let mut fragment = f.clone();
        fragment[14 + 6] |= 0x20; // MF
        assert_eq!(match_datagram(&fragment, &flow()), Matched::Other);
        let mut tcp = f.clone();
        tcp[14 + 9] = 6;
        assert_eq!(match_datagram(&tcp, &flow()), Matched::Other);
        // A flipped payload bit or header bit is a bad checksum, not a datagram for the engine.
        let mut flipped = f.clone();
        flipped[100] ^= 4;
        assert_eq!(match_datagram(&flipped, &flow()), Matched::BadChecksum);
        let mut ttl = f.clone();
        ttl[14 + 8] ^= 1;
        assert_eq!(match_datagram(&ttl, &flow()), Matched::BadChecksum);
        // Ethernet padding past the IPv4 total length is ignored.
        let mut padded = f0.clone();
        padded.extend_from_slice(&[0; 20]);
        assert_eq!(match_datagram(&padded, &flow()), Matched::Flow(42..43));
    }

    #[test]
    fn fills_what_smoltcp_would_have_computed() {
        for len in [0usize, 1, 2, 7, 8, 9, 63, 64, 65, 1399, 1400, 1472] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
            let with = frame((US, 50000), (SERVER, 1194), &payload, true);
            let mut without = frame((US, 50000), (SERVER, 1194), &payload, false);
            assert_ne!(with, without);
            assert!(fill_udp_checksum(&mut without));
            assert_eq!(with, without, "len {len}");
            // Already filled: left alone.
            assert!(!fill_udp_checksum(&mut without));
            assert_eq!(with, without);
        }
        let mut arp = alloc::vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!fill_udp_checksum(&mut arp));
    }

    #[test]
    fn never_panics_on_truncations_and_flips() {
        let f = frame((SERVER, 1194), (US, 50000), &[0x5a; 300], true);
        let mut state = 7u32;
        for cut in 0..f.len() {
            let _ = match_datagram(&f[..cut], &flow());
            let mut g = f[..cut].to_vec();
            let _ = fill_udp_checksum(&mut g);
        }
        for _ in 0..20_000 {
            let mut g = f.clone();
            for _ in 0..3 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = (state >> 8) as usize % g.len();
                g[i] ^= 1 << (state % 8);
            }
            if let Matched::Flow(r) = match_datagram(&g, &flow()) {
                assert!(r.end <= g.len() && r.start <= r.end);
            }
            let _ = fill_udp_checksum(&mut g);
        }
    }

    #[test]
    fn writes_the_headers_smoltcp_writes() {
        for len in [0usize, 1, 33, 1400, 1473] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            let mut expected = frame((US, 50000), (SERVER, 1194), &payload, true);
            expected[..6].copy_from_slice(SERVER_MAC.as_bytes());
            expected[6..12].copy_from_slice(OUR_MAC.as_bytes());
            let mut buf = alloc::vec![0xeeu8; HEADERS_LEN + len + 5];
            buf[HEADERS_LEN..HEADERS_LEN + len].copy_from_slice(&payload);
            let n = write_udp_headers(&mut buf, &flow(), SERVER_MAC, len).unwrap();
            assert_eq!(&buf[..n], &expected[..], "len {len}");
            // And the receiving side of the flow (addresses swapped) takes it.
            let back = UdpFlow {
                local_mac: SERVER_MAC,
                local: flow().remote,
                remote: flow().local,
            };
            assert_eq!(
                match_datagram(&buf[..n], &back),
                Matched::Flow(HEADERS_LEN..HEADERS_LEN + len)
            );
        }
        assert_eq!(
            write_udp_headers(&mut [0u8; 41], &flow(), SERVER_MAC, 0),
            None
        );
        assert_eq!(
            write_udp_headers(&mut alloc::vec![0u8; 70000], &flow(), SERVER_MAC, 65600),
            None
        );
    }
}
