//! End-to-end tests of the two entry points with real-looking frames built by smoltcp.

use super::*;
extern crate std;
use crate::testutil::{checksums_ok, echo_request, ethernet, tcp, udp};
use alloc::vec::Vec;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use smoltcp::wire::{
    ArpPacket, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetRepr, Icmpv4Packet, Icmpv6Packet,
    Icmpv6Repr, IpAddress, Ipv4Packet, Ipv6Address, Ipv6Cidr, Ipv6Packet, Ipv6Repr, NdiscRepr,
    RawHardwareAddress, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const HOST_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const GW: Ipv4Address = Ipv4Address::new(10, 8, 0, 1);
const HOST: Ipv4Address = Ipv4Address::new(10, 8, 0, 50);
const TUN: Ipv4Address = Ipv4Address::new(10, 200, 0, 2);
const TUN_DNS: Ipv4Address = Ipv4Address::new(10, 200, 0, 1);
const REMOTE: Ipv4Address = Ipv4Address::new(93, 184, 216, 34);

#[derive(Default)]
struct Out {
    lan: Vec<Vec<u8>>,
    /// The port each of `lan` went out on.
    ports: Vec<PortId>,
    tunnel: Vec<Vec<u8>>,
}

impl Sink for Out {
    fn lan_frame(&mut self, port: PortId, frame: &[u8]) {
        self.lan.push(frame.to_vec());
        self.ports.push(port);
    }
    fn tunnel_packet(&mut self, packet: &[u8]) {
        self.tunnel.push(packet.to_vec());
    }
}

fn router_with(f: impl FnOnce(&mut RouterConfig)) -> Router {
    let mut config = RouterConfig::new(GW_MAC, Ipv4Cidr::new(GW, 24));
    f(&mut config);
    Router::new(config, &mut ChaCha8Rng::seed_from_u64(42))
}

fn tunnel() -> TunnelConfig {
    let mut t = TunnelConfig::new(Ipv4Cidr::new(TUN, 24));
    t.redirect_gateway = true;
    t.dns_servers.push(IpAddr::V4(TUN_DNS));
    t
}

fn up_router() -> Router {
    let mut r = router_with(|_| {});
    r.set_tunnel(TunnelState::Up(tunnel()));
    r
}

fn from_host(packet: &[u8]) -> Vec<u8> {
    ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv4, packet)
}

fn t0() -> Instant {
    Instant::from_secs(100)
}

/// The IPv4 packet inside a LAN frame, checking the Ethernet header on the way.
fn lan_ip(frame: &[u8], dst: EthernetAddress) -> Vec<u8> {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(eth.src_addr(), GW_MAC);
    assert_eq!(eth.dst_addr(), dst);
    assert_eq!(eth.ethertype(), EthernetProtocol::Ipv4);
    eth.payload().to_vec()
}

fn icmp_type_code(packet: &[u8]) -> (u8, u8) {
    let p = Ipv4Packet::new_checked(packet).unwrap();
    let i = Icmpv4Packet::new_checked(p.payload()).unwrap();
    (i.msg_type().into(), i.msg_code())
}

fn arp_frame(
    op: ArpOperation,
    sha: EthernetAddress,
    spa: Ipv4Address,
    tha: EthernetAddress,
    tpa: Ipv4Address,
    dst: EthernetAddress,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    };
    let mut body = [0u8; 28];
    repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
    ethernet(sha, dst, EthernetProtocol::Arp, &body)
}

#[test]
fn answers_arp_for_the_gateway_only() {
    let mut r = router_with(|_| {});
    let mut out = Out::default();
    let who_has = who_has_gateway();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &who_has, &mut out),
        Verdict::Answered
    );
    assert_eq!(out.lan.len(), 1);
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    assert_eq!(eth.dst_addr(), HOST_MAC);
    let ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    } = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr
        ),
        (ArpOperation::Reply, GW_MAC, GW, HOST)
    );

    let other = arp_frame(
        ArpOperation::Request,
        HOST_MAC,
        HOST,
        EthernetAddress([0; 6]),
        Ipv4Address::new(10, 8, 0, 9),
        EthernetAddress::BROADCAST,
    );
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &other, &mut out),
        Verdict::Consumed
    );
    assert!(out.lan.is_empty());
}

#[test]
fn answers_ping_to_the_gateway_even_while_the_tunnel_is_down() {
    let mut r = router_with(|_| {});
    let mut out = Out::default();
    let ping = from_host(&echo_request(HOST, GW, 7, b"0123456789abcdef"));
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &ping, &mut out),
        Verdict::Answered
    );
    let reply = lan_ip(&out.lan[0], HOST_MAC);
    assert!(checksums_ok(&reply));
    assert_eq!(icmp_type_code(&reply), (0, 0));
    assert!(out.tunnel.is_empty());
}

#[test]
fn nat_forwarding_both_ways_with_arp_resolution() {
    let mut r = up_router();
    let mut out = Out::default();
    let query = udp((HOST, 40000), (REMOTE, 7777), b"hello");
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&query), &mut out),
        Verdict::Forwarded
    );
    assert_eq!(out.tunnel.len(), 1);
    let sent = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
    assert_eq!(sent.src_addr(), TUN, "source NAT to the tunnel address");
    assert_eq!(sent.dst_addr(), REMOTE);
    assert_eq!(sent.hop_limit(), 63, "TTL decremented");
    assert!(checksums_ok(&out.tunnel[0]));
    let public_port = UdpPacket::new_checked(sent.payload()).unwrap().src_port();

    // The answer: the LAN host is not in the ARP cache yet, so the router asks and queues.
    let answer = udp((REMOTE, 7777), (TUN, public_port), b"world");
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &answer, &mut out),
        Verdict::Queued
    );
    assert_eq!(out.lan.len(), 1);
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    assert_eq!(
        (eth.ethertype(), eth.dst_addr()),
        (EthernetProtocol::Arp, EthernetAddress::BROADCAST)
    );
    assert!(r.poll_at().is_some());

    let is_at = arp_frame(ArpOperation::Reply, HOST_MAC, HOST, GW_MAC, GW, GW_MAC);
    let mut out = Out::default();
    r.handle_lan_frame(PortId::FIRST, t0(), &is_at, &mut out);
    assert_eq!(out.lan.len(), 1, "the queued packet is flushed");
    let delivered = lan_ip(&out.lan[0], HOST_MAC);
    assert!(checksums_ok(&delivered));
    let p = Ipv4Packet::new_checked(&delivered[..]).unwrap();
    assert_eq!(p.dst_addr(), HOST);
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    assert_eq!((u.dst_port(), u.payload()), (40000, &b"world"[..]));

    // Now resolved: the next answer goes straight out.
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &answer, &mut out),
        Verdict::Forwarded
    );
    // A packet to an unmapped port is dropped.
    let stray = udp((REMOTE, 7777), (TUN, public_port ^ 1), b"x");
    assert_eq!(
        r.handle_tunnel_packet(t0(), &stray, &mut out),
        Verdict::Dropped(DropReason::Nat(NatError::NoMapping))
    );
    assert_eq!(r.nat_mappings(), 1);
}

#[test]
fn busy_neighbours_are_reprobed_before_they_expire() {
    let mut r = router_with(|c| c.nat = false);
    r.set_tunnel(TunnelState::Up(tunnel()));
    let is_at = arp_frame(ArpOperation::Reply, HOST_MAC, HOST, GW_MAC, GW, GW_MAC);
    r.handle_lan_frame(PortId::FIRST, t0(), &is_at, &mut Out::default());
    let inbound = udp((REMOTE, 1), (HOST, 2), b"data");
    let mut out = Out::default();
    r.handle_tunnel_packet(t0() + Duration::from_secs(110), &inbound, &mut out);
    assert_eq!(out.lan.len(), 2, "a unicast probe, then the packet itself");
    let probe = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    assert_eq!(
        (probe.ethertype(), probe.dst_addr()),
        (EthernetProtocol::Arp, HOST_MAC)
    );
    assert_eq!(
        EthernetFrame::new_checked(&out.lan[1][..])
            .unwrap()
            .dst_addr(),
        HOST_MAC
    );
}

#[test]
fn no_leak_while_the_tunnel_is_down() {
    let mut r = router_with(|_| {});
    let mut out = Out::default();
    let v = r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &from_host(&udp((HOST, 1234), (REMOTE, 53), b"q")),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::TunnelDown));
    assert!(out.tunnel.is_empty());
    let err = lan_ip(&out.lan[0], HOST_MAC);
    assert_eq!(
        icmp_type_code(&err),
        (3, 0),
        "network unreachable, not silence"
    );
    assert!(checksums_ok(&err));
    // Tunnel packets are refused while down.
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &udp((REMOTE, 1), (HOST, 2), b""), &mut out),
        Verdict::Dropped(DropReason::TunnelDown)
    );
    // Back up, then down again (a reconnect): refused again.
    r.set_tunnel(TunnelState::Up(tunnel()));
    r.set_tunnel(TunnelState::Down);
    let mut out = Out::default();
    r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &from_host(&udp((HOST, 1234), (REMOTE, 53), b"q")),
        &mut out,
    );
    assert!(out.tunnel.is_empty());
}

#[test]
fn only_pushed_routes_enter_the_tunnel() {
    let mut r = router_with(|_| {});
    let mut t = tunnel();
    t.redirect_gateway = false;
    t.routes
        .push(Ipv4Cidr::new(Ipv4Address::new(192, 168, 77, 0), 24));
    r.set_tunnel(TunnelState::Up(t));
    let mut out = Out::default();
    let v = r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &from_host(&udp((HOST, 1), (REMOTE, 2), b"x")),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::NoRoute));
    assert!(out.tunnel.is_empty(), "never leaked");
    assert_eq!(icmp_type_code(&lan_ip(&out.lan[0], HOST_MAC)), (3, 0));
    let mut out = Out::default();
    let routed = udp((HOST, 1), (Ipv4Address::new(192, 168, 77, 5), 2), b"x");
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&routed), &mut out),
        Verdict::Forwarded
    );
    let in_subnet = udp((HOST, 1), (Ipv4Address::new(10, 200, 0, 1), 2), b"x");
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&in_subnet), &mut out),
        Verdict::Forwarded
    );
    assert_eq!(out.tunnel.len(), 2);
}

#[test]
fn ttl_expiry_both_ways() {
    let mut r = up_router();
    let mut out = Out::default();
    let mut p = udp((HOST, 1), (REMOTE, 33434), b"trace");
    p[8] = 1;
    ip::fill_header_checksum(&mut p, 20);
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&p), &mut out),
        Verdict::Dropped(DropReason::TtlExceeded)
    );
    assert!(out.tunnel.is_empty());
    let err = lan_ip(&out.lan[0], HOST_MAC);
    assert_eq!(icmp_type_code(&err), (11, 0));
    assert_eq!(Ipv4Packet::new_checked(&err[..]).unwrap().src_addr(), GW);

    // From the tunnel to a LAN host (routed, no NAT needed) with TTL 1: time exceeded back into the tunnel.
    let mut q = udp((REMOTE, 1), (HOST, 2), b"x");
    q[8] = 1;
    ip::fill_header_checksum(&mut q, 20);
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &q, &mut out),
        Verdict::Dropped(DropReason::TtlExceeded)
    );
    assert!(out.lan.is_empty());
    assert_eq!(icmp_type_code(&out.tunnel[0]), (11, 0));
    assert_eq!(
        Ipv4Packet::new_checked(&out.tunnel[0][..])
            .unwrap()
            .src_addr(),
        TUN
    );
}

fn big_udp(len: usize, df: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..len - 28).map(|i| i as u8).collect();
    let mut p = udp((HOST, 5000), (REMOTE, 6000), &payload);
    if df {
        p[6] |= 0x40;
    } else {
        p[6] &= !0x40;
    }
    ip::fill_header_checksum(&mut p, 20);
    p
}

#[test]
fn df_too_big_gets_fragmentation_needed_with_the_tunnel_mtu() {
    let mut r = router_with(|_| {});
    let mut t = tunnel();
    t.mtu = 1400;
    r.set_tunnel(TunnelState::Up(t));
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(
            PortId::FIRST,
            t0(),
            &from_host(&big_udp(1500, true)),
            &mut out
        ),
        Verdict::Dropped(DropReason::TooBig)
    );
    assert!(out.tunnel.is_empty());
    let err = lan_ip(&out.lan[0], HOST_MAC);
    assert!(checksums_ok(&err));
    assert_eq!(icmp_type_code(&err), (3, 4));
    let p = Ipv4Packet::new_checked(&err[..]).unwrap();
    assert_eq!(u16::from_be_bytes([p.payload()[6], p.payload()[7]]), 1400);
}

#[test]
fn fragments_to_the_tunnel_mtu_and_reassembles_from_the_lan() {
    let mut r = router_with(|_| {});
    let mut t = tunnel();
    t.mtu = 1000;
    r.set_tunnel(TunnelState::Up(t));
    let original = big_udp(2500, false);
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&original), &mut out),
        Verdict::Forwarded
    );
    assert_eq!(out.tunnel.len(), 3);
    assert!(out
        .tunnel
        .iter()
        .all(|f| f.len() <= 1000 && checksums_ok(f)));
    // Reassemble what went into the tunnel: the NATed datagram, payload intact.
    let mut reasm = Reassembler::new(4, 1 << 20);
    let mut buf = vec![0u8; 65535];
    let mut done = None;
    for f in &out.tunnel {
        let info = ip::parse(f).unwrap();
        if let Reassembly::Complete(n) = reasm.push(t0(), Direction::FromTunnel, &info, f, &mut buf)
        {
            done = Some(n);
        }
    }
    let n = done.expect("fragments reassemble");
    assert!(
        checksums_ok(&buf[..n]),
        "UDP checksum of the whole NATed datagram verifies"
    );
    assert_eq!(&buf[28..n], &original[28..]);

    // The LAN sends fragments: reassembled (needed for NAT), then fragmented again to the tunnel MTU.
    let mut lan_side = Reassembler::new(1, 1);
    let _ = &mut lan_side;
    let info = ip::parse(&original).unwrap();
    let mut fr = Fragmenter::new(&original, &info, 1500).unwrap();
    let mut pieces = Vec::new();
    let mut fbuf = vec![0u8; 1500];
    while let Some(n) = fr.next_into(&mut fbuf) {
        pieces.push(fbuf[..n].to_vec());
    }
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&pieces[0]), &mut out),
        Verdict::Queued
    );
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&pieces[1]), &mut out),
        Verdict::Forwarded
    );
    assert_eq!(out.tunnel.len(), 3);
}

#[test]
fn tunnel_to_lan_fragments_to_the_lan_mtu_or_reports_frag_needed() {
    let mut r = router_with(|c| c.ports[0].mtu = 1000);
    r.set_tunnel(TunnelState::Up(tunnel()));
    let is_at = arp_frame(ArpOperation::Reply, HOST_MAC, HOST, GW_MAC, GW, GW_MAC);
    r.handle_lan_frame(PortId::FIRST, t0(), &is_at, &mut Out::default());
    let payload: Vec<u8> = (0..1372).map(|i| i as u8).collect();
    let mut big = udp((REMOTE, 9), (HOST, 9), &payload);
    big[6] &= !0x40;
    ip::fill_header_checksum(&mut big, 20);
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &big, &mut out),
        Verdict::Forwarded
    );
    assert_eq!(out.lan.len(), 2);
    let mut reasm = Reassembler::new(2, 1 << 20);
    let mut buf = vec![0u8; 65535];
    let mut whole = None;
    for f in &out.lan {
        assert!(f.len() <= 14 + 1000);
        let p = lan_ip(f, HOST_MAC);
        assert!(checksums_ok(&p));
        if let Reassembly::Complete(n) = reasm.push(
            t0(),
            Direction::FromLan,
            &ip::parse(&p).unwrap(),
            &p,
            &mut buf,
        ) {
            whole = Some(n);
        }
    }
    let n = whole.unwrap();
    assert!(checksums_ok(&buf[..n]));
    assert_eq!(&buf[28..n], &payload[..]);

    // DF set: fragmentation needed goes back into the tunnel with the LAN MTU.
    big[6] |= 0x40;
    ip::fill_header_checksum(&mut big, 20);
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &big, &mut out),
        Verdict::Dropped(DropReason::TooBig)
    );
    assert!(out.lan.is_empty());
    assert_eq!(icmp_type_code(&out.tunnel[0]), (3, 4));
    let p = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
    assert_eq!(u16::from_be_bytes([p.payload()[6], p.payload()[7]]), 1000);
}

#[test]
fn path_mtu_errors_from_beyond_the_tunnel_reach_the_lan_host() {
    let mut r = up_router();
    let is_at = arp_frame(ArpOperation::Reply, HOST_MAC, HOST, GW_MAC, GW, GW_MAC);
    r.handle_lan_frame(PortId::FIRST, t0(), &is_at, &mut Out::default());
    let mut out = Out::default();
    let syn = tcp(
        (HOST, 40000),
        (REMOTE, 443),
        TcpControl::Syn,
        false,
        Some(1460),
    );
    r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&syn), &mut out);
    let sent = out.tunnel[0].clone();
    // A router behind the server says the path MTU is 1280, quoting our (translated) packet.
    let mut body = vec![0u8; 8 + 28];
    body[0] = 3;
    body[1] = 4;
    body[6..8].copy_from_slice(&1280u16.to_be_bytes());
    body[8..36].copy_from_slice(&sent[..28]);
    let c = crate::checksum::internet(&body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let err = crate::testutil::ipv4(
        Ipv4Address::new(172, 16, 9, 1),
        TUN,
        IpProtocol::Icmp,
        60,
        &body,
    );
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &err, &mut out),
        Verdict::Forwarded
    );
    let delivered = lan_ip(&out.lan[0], HOST_MAC);
    assert!(checksums_ok(&delivered));
    let p = Ipv4Packet::new_checked(&delivered[..]).unwrap();
    assert_eq!(p.dst_addr(), HOST);
    let quoted = &p.payload()[8..];
    assert_eq!(
        &quoted[12..16],
        &HOST.octets(),
        "the host sees its own packet quoted"
    );
    assert_eq!(u16::from_be_bytes([quoted[20], quoted[21]]), 40000);
}

#[test]
fn mss_is_clamped_both_ways_with_valid_checksums() {
    let mut r = router_with(|_| {});
    let mut t = tunnel();
    t.mtu = 1400;
    r.set_tunnel(TunnelState::Up(t));
    let mut out = Out::default();
    let syn = tcp(
        (HOST, 40000),
        (REMOTE, 443),
        TcpControl::Syn,
        false,
        Some(1460),
    );
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&syn), &mut out),
        Verdict::Forwarded
    );
    let sent = &out.tunnel[0];
    assert!(checksums_ok(sent));
    let p = Ipv4Packet::new_checked(&sent[..]).unwrap();
    let seg = TcpPacket::new_checked(p.payload()).unwrap();
    let repr = TcpRepr::parse(
        &seg,
        &IpAddress::Ipv4(TUN),
        &IpAddress::Ipv4(REMOTE),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(repr.max_seg_size, Some(1360));
    let public_port = seg.src_port();

    // SYN-ACK from the server side, MSS 1460: clamped on the way to the LAN too.
    let is_at = arp_frame(ArpOperation::Reply, HOST_MAC, HOST, GW_MAC, GW, GW_MAC);
    r.handle_lan_frame(PortId::FIRST, t0(), &is_at, &mut Out::default());
    let synack = tcp(
        (REMOTE, 443),
        (TUN, public_port),
        TcpControl::Syn,
        true,
        Some(1460),
    );
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &synack, &mut out),
        Verdict::Forwarded
    );
    let delivered = lan_ip(&out.lan[0], HOST_MAC);
    assert!(checksums_ok(&delivered));
    let p = Ipv4Packet::new_checked(&delivered[..]).unwrap();
    let repr = TcpRepr::parse(
        &TcpPacket::new_checked(p.payload()).unwrap(),
        &IpAddress::Ipv4(REMOTE),
        &IpAddress::Ipv4(HOST),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(repr.max_seg_size, Some(1360));
    assert_eq!(repr.dst_port, 40000);

    // An explicit mssfix-derived clamp wins when lower.
    let mut t = tunnel();
    t.mss_clamp = Some(1400);
    r.set_tunnel(TunnelState::Up(t));
    let mut out = Out::default();
    r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&syn), &mut out);
    let p = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
    let seg = TcpPacket::new_checked(p.payload()).unwrap();
    let repr = TcpRepr::parse(
        &seg,
        &IpAddress::Ipv4(TUN),
        &IpAddress::Ipv4(REMOTE),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(repr.max_seg_size, Some(1400));
    assert!(checksums_ok(&out.tunnel[0]));
}

fn dhcp_frame(
    t: DhcpMessageType,
    requested: Option<Ipv4Address>,
    sid: Option<Ipv4Address>,
) -> Vec<u8> {
    let repr = DhcpRepr {
        message_type: t,
        transaction_id: 0xdead_beef,
        secs: 0,
        client_hardware_address: HOST_MAC,
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: Ipv4Address::UNSPECIFIED,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: true,
        requested_ip: requested,
        client_identifier: Some(HOST_MAC),
        server_identifier: sid,
        parameter_request_list: Some(&[1, 3, 6, 15, 51]),
        dns_servers: None,
        max_size: Some(1500),
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut body = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut body[..]))
        .unwrap();
    let packet = udp(
        (Ipv4Address::UNSPECIFIED, 68),
        (Ipv4Address::BROADCAST, 67),
        &body,
    );
    ethernet(
        HOST_MAC,
        EthernetAddress::BROADCAST,
        EthernetProtocol::Ipv4,
        &packet,
    )
}

fn dhcp_reply(
    frame: &[u8],
) -> (
    DhcpMessageType,
    Ipv4Address,
    Option<Ipv4Address>,
    Option<Ipv4Address>,
) {
    let ip = lan_ip(frame, EthernetAddress::BROADCAST);
    assert!(checksums_ok(&ip));
    let p = Ipv4Packet::new_checked(&ip[..]).unwrap();
    assert_eq!(p.src_addr(), GW);
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    assert_eq!((u.src_port(), u.dst_port()), (67, 68));
    let d = DhcpPacket::new_checked(u.payload()).unwrap();
    let r = DhcpRepr::parse(&d).unwrap();
    assert_eq!(r.transaction_id, 0xdead_beef);
    (
        r.message_type,
        r.your_ip,
        r.router,
        r.dns_servers.as_ref().and_then(|d| d.first().copied()),
    )
}

#[test]
fn dhcp_full_exchange_over_frames() {
    let mut r = router_with(|_| {});
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(
            PortId::FIRST,
            t0(),
            &dhcp_frame(DhcpMessageType::Discover, None, None),
            &mut out
        ),
        Verdict::Answered
    );
    let (t, offered, router, dns) = dhcp_reply(&out.lan[0]);
    assert_eq!(t, DhcpMessageType::Offer);
    assert!(Ipv4Cidr::new(GW, 24).contains_addr(&offered) && offered != GW);
    assert_eq!(
        (router, dns),
        (Some(GW), Some(GW)),
        "router and DNS point at the gateway"
    );
    let mut out = Out::default();
    r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &dhcp_frame(DhcpMessageType::Request, Some(offered), Some(GW)),
        &mut out,
    );
    let (t, acked, _, _) = dhcp_reply(&out.lan[0]);
    assert_eq!((t, acked), (DhcpMessageType::Ack, offered));
    assert_eq!(r.dhcp_leases(), 1);
    // Leases expire on tick.
    r.tick(t0() + Duration::from_secs(3601), &mut Out::default());
    assert_eq!(r.dhcp_leases(), 0);
}

#[test]
fn tcp_to_the_gateway_is_refused_with_a_reset() {
    let mut r = up_router();
    let mut out = Out::default();
    let syn = tcp((HOST, 40001), (GW, 53), TcpControl::Syn, false, Some(1460));
    assert!(matches!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&syn), &mut out),
        Verdict::Dropped(_)
    ));
    let rst = lan_ip(&out.lan[0], HOST_MAC);
    assert!(checksums_ok(&rst));
    let p = Ipv4Packet::new_checked(&rst[..]).unwrap();
    let seg = TcpPacket::new_checked(p.payload()).unwrap();
    assert!(seg.rst() && seg.ack());
    assert_eq!((seg.src_port(), seg.dst_port()), (53, 40001));
    assert_eq!(seg.ack_number(), TcpSeqNumber(1001), "acknowledges the SYN");
    assert!(out.tunnel.is_empty());
    // No reset in answer to a reset.
    let mut out = Out::default();
    let rst_in = tcp((HOST, 40001), (GW, 53), TcpControl::Rst, false, None);
    r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&rst_in), &mut out);
    assert!(out.lan.is_empty());
}

#[test]
fn dhcp_can_be_turned_off() {
    let mut r = router_with(|c| c.ports[0].dhcp = false);
    let mut out = Out::default();
    r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &dhcp_frame(DhcpMessageType::Discover, None, None),
        &mut out,
    );
    assert!(out.lan.is_empty());
}

const DNS_QUERY: [u8; 29] = [
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, b'e', b'x', b'a',
    b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, 0x00, 0x01, 0x00, 0x01,
];

#[test]
fn dns_is_relayed_through_the_tunnel_and_mapped_back() {
    let mut r = up_router();
    let mut out = Out::default();
    let q = from_host(&udp((HOST, 45000), (GW, 53), &DNS_QUERY));
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &q, &mut out),
        Verdict::Answered
    );
    assert!(out.lan.is_empty());
    let relayed = &out.tunnel[0];
    assert!(checksums_ok(relayed));
    let p = Ipv4Packet::new_checked(&relayed[..]).unwrap();
    assert_eq!(
        (p.src_addr(), p.dst_addr()),
        (TUN, TUN_DNS),
        "from the tunnel address to the pushed server"
    );
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    assert_eq!(u.dst_port(), 53);
    assert_eq!(&u.payload()[2..], &DNS_QUERY[2..]);
    let (port, id) = (
        u.src_port(),
        u16::from_be_bytes([u.payload()[0], u.payload()[1]]),
    );

    let mut answer = DNS_QUERY.to_vec();
    answer[0..2].copy_from_slice(&id.to_be_bytes());
    answer[2] |= 0x80;
    answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
    answer[7] = 1;
    // An answer from someone else is not accepted.
    let mut out = Out::default();
    let forged = udp((Ipv4Address::new(6, 6, 6, 6), 53), (TUN, port), &answer);
    assert!(matches!(
        r.handle_tunnel_packet(t0(), &forged, &mut out),
        Verdict::Dropped(_)
    ));
    assert!(out.lan.is_empty());

    let reply = udp((TUN_DNS, 53), (TUN, port), &answer);
    assert_eq!(
        r.handle_tunnel_packet(t0(), &reply, &mut out),
        Verdict::Answered
    );
    let delivered = lan_ip(&out.lan[0], HOST_MAC);
    assert!(checksums_ok(&delivered));
    let p = Ipv4Packet::new_checked(&delivered[..]).unwrap();
    assert_eq!((p.src_addr(), p.dst_addr()), (GW, HOST));
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    assert_eq!((u.src_port(), u.dst_port()), (53, 45000));
    assert_eq!(
        &u.payload()[..2],
        &[0x12, 0x34],
        "client's query ID restored"
    );
    assert_eq!(&u.payload()[2..], &answer[2..]);
}

fn servfail_of(frame: &[u8]) -> u8 {
    let ip = lan_ip(frame, HOST_MAC);
    assert!(checksums_ok(&ip));
    let p = Ipv4Packet::new_checked(&ip[..]).unwrap();
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    u.payload()[3] & 0x0f
}

#[test]
fn dns_without_tunnel_or_server_is_servfail_not_leak() {
    let mut r = router_with(|_| {});
    let q = from_host(&udp((HOST, 45000), (GW, 53), &DNS_QUERY));
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &q, &mut out),
        Verdict::Answered
    );
    assert!(out.tunnel.is_empty());
    assert_eq!(servfail_of(&out.lan[0]), 2);

    let mut t = tunnel();
    t.dns_servers.clear();
    r.set_tunnel(TunnelState::Up(t));
    let mut out = Out::default();
    r.handle_lan_frame(PortId::FIRST, t0(), &q, &mut out);
    assert!(out.tunnel.is_empty());
    assert_eq!(servfail_of(&out.lan[0]), 2);
}

#[test]
fn without_nat_packets_are_routed_unchanged() {
    let mut r = router_with(|c| c.nat = false);
    r.set_tunnel(TunnelState::Up(tunnel()));
    let mut out = Out::default();
    let p = udp((HOST, 40000), (REMOTE, 7777), b"hi");
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&p), &mut out),
        Verdict::Forwarded
    );
    let sent = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
    assert_eq!(sent.src_addr(), HOST);
    assert_eq!(
        UdpPacket::new_checked(sent.payload()).unwrap().src_port(),
        40000
    );
    assert!(checksums_ok(&out.tunnel[0]));
    assert_eq!(r.nat_mappings(), 0);
    // To the tunnel address with NAT off: not for the LAN.
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &udp((REMOTE, 1), (TUN, 2), b""), &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    // Tunnel -> tunnel is never routed.
    assert_eq!(
        r.handle_tunnel_packet(t0(), &udp((REMOTE, 1), (REMOTE, 2), b""), &mut out),
        Verdict::Dropped(DropReason::NoRoute)
    );
}

#[test]
fn the_tunnel_address_answers_ping() {
    let mut r = up_router();
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &echo_request(TUN_DNS, TUN, 3, b"ping"), &mut out),
        Verdict::Answered
    );
    assert!(checksums_ok(&out.tunnel[0]));
    assert_eq!(icmp_type_code(&out.tunnel[0]), (0, 0));
    // And from the LAN, without looping into the tunnel.
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(
            PortId::FIRST,
            t0(),
            &from_host(&echo_request(HOST, TUN, 4, b"ping")),
            &mut out
        ),
        Verdict::Answered
    );
    assert!(out.tunnel.is_empty());
    let reply = lan_ip(&out.lan[0], HOST_MAC);
    assert_eq!(Ipv4Packet::new_checked(&reply[..]).unwrap().src_addr(), TUN);
}

const LAN6: Ipv6Address = Ipv6Address::new(0xfd6f, 0x7876, 1, 0, 0, 0, 0, 0);
const HOST6: Ipv6Address = Ipv6Address::new(0xfd6f, 0x7876, 1, 0, 0x5054, 0xff, 0xfe12, 0x3456);
const REMOTE6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const TUN6: Ipv6Address = Ipv6Address::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x1000);

/// A UDP/IPv6 packet with a valid checksum.
fn udp6(
    src: (Ipv6Address, u16),
    dst: (Ipv6Address, u16),
    payload: &[u8],
    hop_limit: u8,
) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Udp,
        payload_len: 8 + payload.len(),
        hop_limit,
    };
    let mut buf = vec![0u8; 48 + payload.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut buf[40..]),
        &IpAddress::Ipv6(src.0),
        &IpAddress::Ipv6(dst.0),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &Default::default(),
    );
    buf
}

fn ipv6_frame(src: Ipv6Address, dst: Ipv6Address) -> Vec<u8> {
    ethernet(
        HOST_MAC,
        GW_MAC,
        EthernetProtocol::Ipv6,
        &udp6((src, 4000), (dst, 53), b"q", 64),
    )
}

fn udp6_ok(p: &[u8]) -> bool {
    let ip = Ipv6Packet::new_checked(p).unwrap();
    UdpPacket::new_checked(ip.payload())
        .unwrap()
        .verify_checksum(
            &IpAddress::Ipv6(ip.src_addr()),
            &IpAddress::Ipv6(ip.dst_addr()),
        )
}

fn icmp6_of(frame_or_packet: &[u8]) -> Icmpv6Repr<'_> {
    let p = Ipv6Packet::new_checked(frame_or_packet).unwrap();
    let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
    Icmpv6Repr::parse(&p.src_addr(), &p.dst_addr(), &icmp, &Default::default()).unwrap()
}

fn v6_router() -> Router {
    let mut r = router_with(|c| c.ports[0].ipv6_prefix = Some(Ipv6Cidr::new(LAN6, 64)));
    let mut t = tunnel();
    t.ipv6 = Some(Ipv6Cidr::new(TUN6, 64));
    t.redirect_gateway_ipv6 = true;
    r.set_tunnel(TunnelState::Up(t));
    r
}

#[test]
fn ipv6_enters_the_tunnel_only_when_pushed() {
    let mut r = router_with(|c| c.ports[0].ipv6_prefix = Some(Ipv6Cidr::new(LAN6, 64)));
    r.set_tunnel(TunnelState::Up(tunnel()));
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &ipv6_frame(HOST6, REMOTE6), &mut out),
        Verdict::Dropped(DropReason::Ipv6NotRouted)
    );
    assert!(
        out.tunnel.is_empty(),
        "no IPv6 pushed: nothing enters the tunnel"
    );
    assert!(matches!(
        icmp6_of(&out.lan[0][14..]),
        Icmpv6Repr::DstUnreachable { .. }
    ));
    // Link-local traffic is never forwarded.
    let ll = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    let mut r = v6_router();
    let mut out = Out::default();
    assert!(matches!(
        r.handle_lan_frame(PortId::FIRST, t0(), &ipv6_frame(ll, REMOTE6), &mut out),
        Verdict::Dropped(_)
    ));
    assert!(out.tunnel.is_empty());
}

#[test]
fn ipv6_nat66_round_trip() {
    let mut r = v6_router();
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &ipv6_frame(HOST6, REMOTE6), &mut out),
        Verdict::Forwarded
    );
    let sent = &out.tunnel[0];
    assert!(udp6_ok(sent));
    let p = Ipv6Packet::new_checked(&sent[..]).unwrap();
    assert_eq!((p.src_addr(), p.hop_limit()), (TUN6, 63));
    let port = UdpPacket::new_checked(p.payload()).unwrap().src_port();
    let answer = udp6((REMOTE6, 53), (TUN6, port), b"answer", 60);
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &answer, &mut out),
        Verdict::Forwarded
    );
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    assert_eq!(
        (eth.dst_addr(), eth.ethertype()),
        (HOST_MAC, EthernetProtocol::Ipv6)
    );
    assert!(udp6_ok(eth.payload()));
    let p = Ipv6Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(p.dst_addr(), HOST6);
    assert_eq!(
        UdpPacket::new_checked(p.payload()).unwrap().dst_port(),
        4000
    );
    // Without a mapping: dropped.
    let stray = udp6((REMOTE6, 53), (TUN6, port ^ 1), b"x", 60);
    assert!(matches!(
        r.handle_tunnel_packet(t0(), &stray, &mut Out::default()),
        Verdict::Dropped(_)
    ));
}

#[test]
fn ipv6_too_big_and_hop_limit_get_icmpv6_errors() {
    let mut r = v6_router();
    let mut out = Out::default();
    let big = udp6((HOST6, 1), (REMOTE6, 2), &[0u8; 1500 - 48], 64);
    let frame = ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv6, &big);
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &frame, &mut out),
        Verdict::Forwarded,
        "fits MTU 1500"
    );
    let mut t = tunnel();
    t.ipv6 = Some(Ipv6Cidr::new(TUN6, 64));
    t.redirect_gateway_ipv6 = true;
    t.mtu = 1400;
    r.set_tunnel(TunnelState::Up(t));
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &frame, &mut out),
        Verdict::Dropped(DropReason::TooBig)
    );
    assert!(out.tunnel.is_empty());
    let Icmpv6Repr::PktTooBig { mtu, .. } = icmp6_of(&out.lan[0][14..]) else {
        panic!("not PTB")
    };
    assert_eq!(mtu, 1400);
    let last_hop = udp6((HOST6, 1), (REMOTE6, 2), b"x", 1);
    let mut out = Out::default();
    let v = r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv6, &last_hop),
        &mut out,
    );
    assert_eq!(v, Verdict::Dropped(DropReason::TtlExceeded));
    assert!(matches!(
        icmp6_of(&out.lan[0][14..]),
        Icmpv6Repr::TimeExceeded { .. }
    ));
}

#[test]
fn the_tunnel_ipv6_address_answers_ping_within_the_mtu() {
    let mut r = v6_router();
    let ping = |len: usize| {
        let repr = Icmpv6Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: &vec![7u8; len],
        };
        let mut icmp = vec![0u8; repr.buffer_len()];
        repr.emit(
            &REMOTE6,
            &TUN6,
            &mut Icmpv6Packet::new_unchecked(&mut icmp[..]),
            &Default::default(),
        );
        let ip = Ipv6Repr {
            src_addr: REMOTE6,
            dst_addr: TUN6,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.len(),
            hop_limit: 60,
        };
        let mut p = vec![0u8; 40 + icmp.len()];
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
        p[40..].copy_from_slice(&icmp);
        p
    };
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &ping(56), &mut out),
        Verdict::Answered
    );
    assert!(matches!(
        icmp6_of(&out.tunnel[0]),
        Icmpv6Repr::EchoReply { ident: 1, .. }
    ));
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &ping(1600), &mut out),
        Verdict::Dropped(DropReason::TooBig)
    );
    assert!(out.tunnel.is_empty(), "never more than the tunnel MTU");
}

#[test]
fn neighbor_and_router_discovery() {
    let mut r = v6_router();
    let gw_ll = crate::icmp6::link_local(GW_MAC);
    let host_ll = crate::icmp6::link_local(HOST_MAC);
    // The host resolves the gateway's link-local address.
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: gw_ll,
        lladdr: Some(RawHardwareAddress::from_bytes(&HOST_MAC.0)),
    });
    let group = Ipv6Address::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(GW_MAC.0[3]),
        u16::from_be_bytes([GW_MAC.0[4], GW_MAC.0[5]]),
    );
    let frame = ndp_frame(
        host_ll,
        group,
        &ns,
        EthernetAddress([0x33, 0x33, 0xff, GW_MAC.0[3], GW_MAC.0[4], GW_MAC.0[5]]),
    );
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &frame, &mut out),
        Verdict::Answered
    );
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    assert_eq!(eth.dst_addr(), HOST_MAC);
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        target_addr,
        lladdr,
        ..
    }) = icmp6_of(eth.payload())
    else {
        panic!("not NA")
    };
    assert_eq!(
        (target_addr, lladdr.unwrap().as_bytes()),
        (gw_ll, &GW_MAC.0[..])
    );

    // Router solicitation -> advertisement with the LAN prefix, default router while IPv6 is carried.
    let rs = Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
        lladdr: Some(RawHardwareAddress::from_bytes(&HOST_MAC.0)),
    });
    let all_routers = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    let frame = ndp_frame(
        host_ll,
        all_routers,
        &rs,
        EthernetAddress([0x33, 0x33, 0, 0, 0, 2]),
    );
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &frame, &mut out),
        Verdict::Answered
    );
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        router_lifetime,
        prefix_info,
        ..
    }) = icmp6_of(eth.payload())
    else {
        panic!("not RA")
    };
    assert_eq!(router_lifetime.secs(), 1800);
    assert_eq!(prefix_info.unwrap().prefix, LAN6);

    // Unsolicited advertisements come from tick; the tunnel going down withdraws the default route once.
    let mut out = Out::default();
    r.tick(t0(), &mut out);
    assert_eq!(out.lan.len(), 1, "the RA scheduled by set_tunnel");
    r.set_tunnel(TunnelState::Down);
    let mut out = Out::default();
    r.tick(t0() + Duration::from_secs(1), &mut out);
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        router_lifetime, ..
    }) = icmp6_of(eth.payload())
    else {
        panic!("not RA")
    };
    assert_eq!(router_lifetime.secs(), 0);
    let mut out = Out::default();
    r.tick(t0() + Duration::from_secs(1000), &mut out);
    assert!(
        out.lan.is_empty(),
        "no more advertisements while IPv6 is not carried"
    );
}

fn ndp_frame(
    src: Ipv6Address,
    dst: Ipv6Address,
    repr: &Icmpv6Repr<'_>,
    eth_dst: EthernetAddress,
) -> Vec<u8> {
    let mut icmp = vec![0u8; repr.buffer_len()];
    repr.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut icmp[..]),
        &Default::default(),
    );
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.len(),
        hop_limit: 255,
    };
    let mut packet = vec![0u8; 40 + icmp.len()];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut packet[..]));
    packet[40..].copy_from_slice(&icmp);
    ethernet(HOST_MAC, eth_dst, EthernetProtocol::Ipv6, &packet)
}

#[test]
fn lan_to_lan_and_martians_are_not_forwarded() {
    let mut r = up_router();
    let mut out = Out::default();
    let lan = udp((HOST, 1), (Ipv4Address::new(10, 8, 0, 9), 2), b"");
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&lan), &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    let spoofed = udp((Ipv4Address::new(172, 16, 0, 5), 1), (REMOTE, 2), b"");
    assert_eq!(
        r.handle_lan_frame(PortId::FIRST, t0(), &from_host(&spoofed), &mut out),
        Verdict::Dropped(DropReason::Martian)
    );
    assert!(out.tunnel.is_empty());
    // From the tunnel, a source inside the LAN prefix is spoofed.
    let spoofed_in = udp((Ipv4Address::new(10, 8, 0, 9), 1), (HOST, 2), b"");
    assert_eq!(
        r.handle_tunnel_packet(t0(), &spoofed_in, &mut out),
        Verdict::Dropped(DropReason::Martian)
    );
    assert!(out.lan.is_empty());
}

#[test]
fn arp_gives_up_and_timers_drain() {
    let mut r = up_router();
    let mut out = Out::default();
    // NAT mapping so the answer is accepted.
    r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &from_host(&udp((HOST, 4000), (REMOTE, 53), b"q")),
        &mut out,
    );
    let port = UdpPacket::new_checked(
        Ipv4Packet::new_checked(&out.tunnel[0][..])
            .unwrap()
            .payload(),
    )
    .unwrap()
    .src_port();
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &udp((REMOTE, 53), (TUN, port), b"a"), &mut out),
        Verdict::Queued
    );
    let mut requests = out.lan.len();
    let mut now = t0();
    for _ in 0..10 {
        now += Duration::from_secs(1);
        let mut out = Out::default();
        r.tick(now, &mut out);
        requests += out.lan.len();
    }
    assert_eq!(requests, 3, "three ARP requests, then the queue is dropped");
    r.tick(now + Duration::from_secs(10_000), &mut Out::default());
    assert_eq!(r.nat_mappings(), 0);
    assert_eq!(r.poll_at(), None, "nothing left to time out");
}

/// Robustness: arbitrary bytes, truncations and bit flips of valid frames never panic either entry point.
#[test]
fn never_panics_on_arbitrary_input() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xbad);
    let mut r = v6_router();
    let mut out = Out::default();
    let mut seeds: Vec<Vec<u8>> = vec![
        from_host(&udp((HOST, 45000), (GW, 53), &DNS_QUERY)),
        from_host(&big_udp(2500, false)),
        from_host(&tcp(
            (HOST, 40000),
            (REMOTE, 443),
            TcpControl::Syn,
            false,
            Some(1460),
        )),
        from_host(&echo_request(HOST, GW, 1, b"x")),
        dhcp_frame(DhcpMessageType::Discover, None, None),
        who_has_gateway(),
        ndp_frame(
            crate::icmp6::link_local(HOST_MAC),
            Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2),
            &Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
                lladdr: Some(RawHardwareAddress::from_bytes(&HOST_MAC.0)),
            }),
            EthernetAddress([0x33, 0x33, 0, 0, 0, 2]),
        ),
        ipv6_frame(
            Ipv6Address::new(0xfd00, 0, 0, 1, 0, 0, 0, 0x50),
            Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        ),
    ];
    seeds.extend(big_udp_fragments(from_host));
    let mut accepted = 0usize;
    for step in 0..40_000u32 {
        let now = Instant::from_millis(i64::from(step) * 10);
        let mut frame = seeds[(rng.next_u32() as usize) % seeds.len()].clone();
        match rng.next_u32() % 4 {
            0 => frame.truncate((rng.next_u32() as usize) % (frame.len() + 1)),
            1 => {
                for _ in 0..1 + rng.next_u32() % 4 {
                    let i = (rng.next_u32() as usize) % frame.len();
                    frame[i] ^= 1 << (rng.next_u32() % 8);
                }
            }
            2 => {
                let n = (rng.next_u32() % 200) as usize;
                frame = (0..n).map(|_| rng.next_u32() as u8).collect();
            }
            _ => {}
        }
        let v = r.handle_lan_frame(PortId::FIRST, now, &frame, &mut out);
        accepted += usize::from(!matches!(v, Verdict::Dropped(_)));
        let ip = frame.get(14..).unwrap_or(&[]);
        let v = r.handle_tunnel_packet(now, ip, &mut out);
        accepted += usize::from(!matches!(v, Verdict::Dropped(_)));
        if step % 1000 == 0 {
            r.tick(now, &mut out);
            out.lan.clear();
            out.tunnel.clear();
        }
    }
    // The mix must exercise the deep paths, not only the header checks.
    assert!(
        accepted > 5_000,
        "only {accepted} inputs got past validation"
    );
    std::println!("accepted {accepted} of 80000 inputs");
}

#[test]
fn ethernet_repr_round_trip_of_outputs() {
    // Every frame the router emits parses as Ethernet with our source MAC.
    let mut r = up_router();
    let mut out = Out::default();
    r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &from_host(&echo_request(HOST, GW, 1, b"x")),
        &mut out,
    );
    r.handle_lan_frame(
        PortId::FIRST,
        t0(),
        &dhcp_frame(DhcpMessageType::Discover, None, None),
        &mut out,
    );
    for f in &out.lan {
        let repr = EthernetRepr::parse(&EthernetFrame::new_checked(&f[..]).unwrap()).unwrap();
        assert_eq!(repr.src_addr, GW_MAC);
    }
}

/// The LAN host's broadcast ARP request for the gateway's address.
fn who_has_gateway() -> Vec<u8> {
    arp_frame(
        ArpOperation::Request,
        HOST_MAC,
        HOST,
        EthernetAddress([0; 6]),
        GW,
        EthernetAddress::BROADCAST,
    )
}

/// The 600-byte fragments of a 2500-byte UDP datagram from the LAN host, each as `wrap` makes it.
fn big_udp_fragments(wrap: impl Fn(&[u8]) -> Vec<u8>) -> Vec<Vec<u8>> {
    let big = big_udp(2500, false);
    let info = ip::parse(&big).unwrap();
    let mut fr = Fragmenter::new(&big, &info, 600).unwrap();
    let mut b = vec![0u8; 600];
    let mut out = Vec::new();
    while let Some(n) = fr.next_into(&mut b) {
        out.push(wrap(&b[..n]));
    }
    out
}

/// Truncates `input` or flips one of its bits (each a quarter of the time), or leaves it.
fn mutate(rng: &mut ChaCha8Rng, input: &mut Vec<u8>) {
    match rng.next_u32() % 4 {
        0 => input.truncate((rng.next_u32() as usize) % (input.len() + 1)),
        1 if !input.is_empty() => {
            let i = (rng.next_u32() as usize) % input.len();
            input[i] ^= 1 << (rng.next_u32() % 8);
        }
        _ => {}
    }
}

/// The in-place entry point is the copying one without the copy: two routers fed the same inputs, one
/// through `handle_tunnel_packet`, one through `handle_tunnel_packet_in_place` with the packet at an
/// offset in a larger buffer, give the same verdicts, frames and tunnel packets, including for mutated
/// and hostile packets; and forwarded frames really are sent from the caller's buffer.
#[test]
fn in_place_tunnel_input_matches_the_copying_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1ace);
    let mut copying = up_router();
    let mut in_place = up_router();
    // NAT mappings and ARP entries, the same in both.
    let mut setup = vec![arp_frame(
        ArpOperation::Reply,
        HOST_MAC,
        HOST,
        GW_MAC,
        GW,
        GW_MAC,
    )];
    for port in 40000..40004u16 {
        setup.push(from_host(&udp((HOST, port), (REMOTE, 7777), b"q")));
        setup.push(from_host(&tcp(
            (HOST, port),
            (REMOTE, 443),
            TcpControl::Syn,
            false,
            Some(1460),
        )));
    }
    setup.push(from_host(&echo_request(HOST, REMOTE, 9, b"ping")));
    setup.push(from_host(&udp((HOST, 45000), (GW, 53), &DNS_QUERY)));
    let mut out_a = Out::default();
    let mut out_b = Out::default();
    for frame in &setup {
        copying.handle_lan_frame(PortId::FIRST, t0(), frame, &mut out_a);
        in_place.handle_lan_frame(PortId::FIRST, t0(), frame, &mut out_b);
    }
    assert_eq!(out_a.tunnel, out_b.tunnel);
    // The public ports NAT chose, from what went into the tunnel.
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for sent in &out_a.tunnel {
        let p = Ipv4Packet::new_checked(&sent[..]).unwrap();
        let (src, dst) = (p.dst_addr(), p.src_addr());
        match p.next_header() {
            IpProtocol::Udp => {
                let u = UdpPacket::new_checked(p.payload()).unwrap();
                seeds.push(udp((src, u.dst_port()), (dst, u.src_port()), b"answer"));
            }
            IpProtocol::Tcp => {
                let t = TcpPacket::new_checked(p.payload()).unwrap();
                seeds.push(tcp(
                    (src, t.dst_port()),
                    (dst, t.src_port()),
                    TcpControl::Syn,
                    true,
                    Some(1460),
                ));
            }
            _ => {}
        }
    }
    assert!(seeds.len() >= 8, "NAT mappings for the seeds");
    seeds.push(udp((REMOTE, 7777), (HOST, 40000), b"routed to a LAN host"));
    seeds.push(echo_request(REMOTE, TUN, 3, b"ping the tunnel address"));
    seeds.push(udp((TUN_DNS, 53), (TUN, 50000), &DNS_QUERY));
    seeds.push(big_udp(2500, false));
    seeds.push(udp((HOST, 1), (TUN, 2), b"martian source"));
    let mut ttl1 = udp((REMOTE, 7777), (HOST, 40000), b"ttl");
    ttl1[8] = 1;
    let c = crate::checksum::internet(&{
        let mut h = ttl1[..20].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    ttl1[10..12].copy_from_slice(&c.to_be_bytes());
    seeds.push(ttl1);
    seeds.extend(big_udp_fragments(<[u8]>::to_vec));
    let mut forwarded_in_place = 0;
    for step in 0..20_000u32 {
        let now = t0() + Duration::from_millis(u64::from(step));
        let mut packet = seeds[(rng.next_u32() as usize) % seeds.len()].clone();
        mutate(&mut rng, &mut packet);
        let mut out_a = Out::default();
        let mut out_b = Out::default();
        let va = copying.handle_tunnel_packet(now, &packet, &mut out_a);
        let offset = 14 + (rng.next_u32() as usize) % 40;
        let mut buf = vec![0xa5u8; offset + packet.len() + (rng.next_u32() as usize) % 20];
        buf[offset..offset + packet.len()].copy_from_slice(&packet);
        let vb = in_place.handle_tunnel_packet_in_place(
            now,
            &mut buf,
            offset..offset + packet.len(),
            &mut out_b,
        );
        assert_eq!(va, vb, "step {step}");
        assert_eq!(out_a.lan, out_b.lan, "step {step}");
        assert_eq!(out_a.tunnel, out_b.tunnel, "step {step}");
        if let [frame] = &out_b.lan[..] {
            if buf[offset - 14..].starts_with(frame) {
                forwarded_in_place += 1;
            }
        }
    }
    assert_eq!(copying.stats(), in_place.stats());
    assert!(
        forwarded_in_place > 2_000,
        "only {forwarded_in_place} packets forwarded in place"
    );
    // Without room for the Ethernet header the packet is copied, with the same result.
    let packet = udp((REMOTE, 7777), (HOST, 40000), b"no headroom");
    let mut buf = packet.clone();
    let mut out_a = Out::default();
    let mut out_b = Out::default();
    let len = buf.len();
    assert_eq!(
        copying.handle_tunnel_packet(t0(), &packet, &mut out_a),
        in_place.handle_tunnel_packet_in_place(t0(), &mut buf, 0..len, &mut out_b)
    );
    assert_eq!(out_a.lan, out_b.lan);
    assert_eq!(buf, packet, "left unchanged when copied");
}

/// The LAN side's in-place entry point against the copying one, as for the tunnel side: same verdicts,
/// outputs and counters for valid, mutated and hostile frames; forwarded packets come from the frame.
#[test]
fn in_place_lan_input_matches_the_copying_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1a4);
    for nat in [true, false] {
        let mut copying = router_with(|c| c.nat = nat);
        let mut in_place = router_with(|c| c.nat = nat);
        copying.set_tunnel(TunnelState::Up(tunnel()));
        in_place.set_tunnel(TunnelState::Up(tunnel()));
        let mut ttl1 = udp((HOST, 40001), (REMOTE, 7777), b"ttl");
        ttl1[8] = 1;
        ttl1[10..12].copy_from_slice(&[0, 0]);
        let c = crate::checksum::internet(&ttl1[..20]);
        ttl1[10..12].copy_from_slice(&c.to_be_bytes());
        let mut seeds: Vec<Vec<u8>> = vec![
            from_host(&udp((HOST, 40000), (REMOTE, 7777), b"hello")),
            from_host(&tcp(
                (HOST, 40000),
                (REMOTE, 443),
                TcpControl::Syn,
                false,
                Some(1460),
            )),
            from_host(&echo_request(HOST, REMOTE, 1, b"x")),
            from_host(&echo_request(HOST, TUN, 1, b"x")),
            from_host(&echo_request(HOST, GW, 1, b"x")),
            from_host(&udp((HOST, 45000), (GW, 53), &DNS_QUERY)),
            from_host(&udp(
                (HOST, 45000),
                (Ipv4Address::new(10, 8, 0, 9), 53),
                b"lan",
            )),
            from_host(&udp(
                (HOST, 1),
                (Ipv4Address::new(127, 0, 0, 1), 2),
                b"martian",
            )),
            from_host(&big_udp(2500, false)),
            from_host(&big_udp(1490, true)),
            from_host(&ttl1),
            dhcp_frame(DhcpMessageType::Discover, None, None),
            who_has_gateway(),
            ethernet(
                HOST_MAC,
                EthernetAddress([0x52, 0, 0, 0, 0, 9]),
                EthernetProtocol::Ipv4,
                &udp((HOST, 40000), (REMOTE, 7777), b"not to our MAC"),
            ),
            ipv6_frame(
                Ipv6Address::new(0xfd00, 0, 0, 1, 0, 0, 0, 0x50),
                Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            ),
        ];
        seeds.extend(big_udp_fragments(from_host));
        let mut forwarded_in_place = 0;
        for step in 0..20_000u32 {
            let now = t0() + Duration::from_millis(u64::from(step));
            let mut frame = seeds[(rng.next_u32() as usize) % seeds.len()].clone();
            mutate(&mut rng, &mut frame);
            // Different source ports now and then: new NAT mappings, drawn from each router's rng.
            if frame.len() > 36 && rng.next_u32() % 8 == 0 {
                frame[35] = frame[35].wrapping_add(1);
            }
            let mut out_a = Out::default();
            let mut out_b = Out::default();
            let va = copying.handle_lan_frame(PortId::FIRST, now, &frame, &mut out_a);
            let mut buf = frame.clone();
            let vb = in_place.handle_lan_frame_in_place(PortId::FIRST, now, &mut buf, &mut out_b);
            assert_eq!(va, vb, "nat {nat} step {step}");
            assert_eq!(out_a.lan, out_b.lan, "nat {nat} step {step}");
            assert_eq!(out_a.tunnel, out_b.tunnel, "nat {nat} step {step}");
            if let [packet] = &out_b.tunnel[..] {
                if buf.get(14..14 + packet.len()) == Some(&packet[..]) && buf != frame {
                    forwarded_in_place += 1;
                }
            }
            if va == Verdict::Dropped(DropReason::Malformed) || out_b.tunnel.is_empty() {
                // Whatever was not forwarded in place is left as it was.
                if !matches!(va, Verdict::Forwarded) {
                    assert_eq!(
                        buf, frame,
                        "nat {nat} step {step}: changed but not forwarded"
                    );
                }
            }
        }
        assert_eq!(copying.stats(), in_place.stats());
        assert_eq!(copying.nat_mappings(), in_place.nat_mappings());
        assert!(
            forwarded_in_place > 2_000,
            "nat {nat}: only {forwarded_in_place} packets forwarded in place"
        );
    }
}

mod clients;
mod ports;
