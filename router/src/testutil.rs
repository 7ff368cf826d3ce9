//! Test-only builders of real-looking frames and packets, made with smoltcp's wire `Repr`s so the tests
//! do not grade the router's codecs with the router's own code.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber, UdpPacket, UdpRepr,
};

pub(crate) fn ipv4(
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: IpProtocol,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit: ttl,
    };
    let mut buf = vec![0u8; 20 + payload.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut p, &ChecksumCapabilities::default());
    p.payload_mut().copy_from_slice(payload);
    buf
}

pub(crate) fn udp(src: (Ipv4Address, u16), dst: (Ipv4Address, u16), payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let mut seg = vec![0u8; 8 + payload.len()];
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut seg[..]),
        &IpAddress::Ipv4(src.0),
        &IpAddress::Ipv4(dst.0),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    ipv4(src.0, dst.0, IpProtocol::Udp, 64, &seg)
}

pub(crate) fn tcp(
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    control: TcpControl,
    ack: bool,
    mss: Option<u16>,
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control,
        seq_number: TcpSeqNumber(1000),
        ack_number: ack.then_some(TcpSeqNumber(2000)),
        window_len: 64240,
        window_scale: None,
        max_seg_size: mss,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let mut seg = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut seg[..]),
        &IpAddress::Ipv4(src.0),
        &IpAddress::Ipv4(dst.0),
        &ChecksumCapabilities::default(),
    );
    ipv4(src.0, dst.0, IpProtocol::Tcp, 64, &seg)
}

pub(crate) fn icmp(src: Ipv4Address, dst: Ipv4Address, repr: &Icmpv4Repr) -> Vec<u8> {
    let mut body = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut body[..]),
        &ChecksumCapabilities::default(),
    );
    ipv4(src, dst, IpProtocol::Icmp, 64, &body)
}

pub(crate) fn echo_request(src: Ipv4Address, dst: Ipv4Address, ident: u16, data: &[u8]) -> Vec<u8> {
    icmp(
        src,
        dst,
        &Icmpv4Repr::EchoRequest {
            ident,
            seq_no: 1,
            data,
        },
    )
}

pub(crate) fn ethernet(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut buf = vec![0u8; 14 + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

/// True when the IPv4 header checksum and the TCP/UDP/ICMP checksum of `packet` verify.
pub(crate) fn checksums_ok(packet: &[u8]) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(packet) else {
        return false;
    };
    if !p.verify_checksum() {
        return false;
    }
    if p.more_frags() || p.frag_offset() != 0 {
        return true;
    }
    let (s, d) = (IpAddress::Ipv4(p.src_addr()), IpAddress::Ipv4(p.dst_addr()));
    match p.next_header() {
        IpProtocol::Udp => {
            UdpPacket::new_checked(p.payload()).is_ok_and(|u| u.verify_checksum(&s, &d))
        }
        IpProtocol::Tcp => {
            TcpPacket::new_checked(p.payload()).is_ok_and(|t| t.verify_checksum(&s, &d))
        }
        IpProtocol::Icmp => {
            Icmpv4Packet::new_checked(p.payload()).is_ok_and(|i| i.verify_checksum())
        }
        _ => true,
    }
}
