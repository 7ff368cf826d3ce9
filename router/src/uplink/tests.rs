use super::*;
use crate::nat::{PORT_FIRST, PORT_LAST};
use crate::testutil::{checksums_ok, echo_request, ipv4, tcp, udp};
use alloc::vec;
use alloc::vec::Vec;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Duration;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Ipv4Packet, TcpControl, TcpPacket};

const SERVER: Ipv4Address = Ipv4Address::new(10, 77, 0, 1);
const ALICE: Ipv4Address = Ipv4Address::new(10, 77, 0, 2);
const BOB: Ipv4Address = Ipv4Address::new(10, 77, 0, 3);
const PUBLIC: Ipv4Address = Ipv4Address::new(198, 51, 100, 7);
const REMOTE: Ipv4Address = Ipv4Address::new(93, 184, 216, 34);
const PRIVATE_GW: Ipv4Address = Ipv4Address::new(192, 168, 50, 1);
const WORKSTATION: Ipv4Address = Ipv4Address::new(192, 168, 50, 20);
const OPENVPN_PORT: u16 = 1194;

fn config() -> ForwarderConfig {
    let mut c = ForwarderConfig::new(SERVER, Ipv4Cidr::new(Ipv4Address::new(10, 77, 0, 0), 24));
    c.public = Some(PUBLIC);
    c.private_net = Some(Ipv4Cidr::new(PRIVATE_GW, 24));
    c.reserved_ports = vec![OPENVPN_PORT, 443];
    c
}

fn forwarder(config: ForwarderConfig) -> (ClientForwarder, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    (ClientForwarder::new(config, &mut rng), rng)
}

fn now() -> Instant {
    Instant::from_secs(100)
}

fn with_ttl(mut p: Vec<u8>, ttl: u8) -> Vec<u8> {
    let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
    ip.set_hop_limit(ttl);
    ip.fill_checksum();
    p
}

/// Refills the header checksum over the header length the packet claims (as much of it as is there).
fn refill(p: &mut [u8]) {
    let hl = (usize::from(p[0] & 0x0f) * 4).min(p.len());
    crate::ip::fill_header_checksum(p, hl);
}

fn ttl(p: &[u8]) -> u8 {
    Ipv4Packet::new_checked(p).unwrap().hop_limit()
}

fn src_dst(p: &[u8]) -> (Ipv4Address, Ipv4Address) {
    let ip = Ipv4Packet::new_checked(p).unwrap();
    (ip.src_addr(), ip.dst_addr())
}

/// (source port, destination port) of a TCP/UDP packet with a 20-byte IP header.
fn ports(p: &[u8]) -> (u16, u16) {
    (
        u16::from_be_bytes([p[20], p[21]]),
        u16::from_be_bytes([p[22], p[23]]),
    )
}

fn send(
    f: &mut ClientForwarder,
    rng: &mut ChaCha20Rng,
    packet: &mut [u8],
) -> (ClientDecision, Vec<u8>) {
    let mut reply = vec![0u8; 1500];
    let d = f.from_client(now(), packet, &mut reply, rng);
    if let ClientDecision::Reply { len } = d {
        reply.truncate(len);
    } else {
        reply.clear();
    }
    (d, reply)
}

#[test]
fn echo_to_the_server_is_answered() {
    let (mut f, mut rng) = forwarder(config());
    let mut req = echo_request(ALICE, SERVER, 0x4242, b"ping payload");
    let (d, reply) = send(&mut f, &mut rng, &mut req);
    assert_eq!(d, ClientDecision::Reply { len: reply.len() });
    assert!(checksums_ok(&reply), "IP and ICMP checksums verify");
    assert_eq!(src_dst(&reply), (SERVER, ALICE));
    let ip = Ipv4Packet::new_checked(&reply[..]).unwrap();
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x4242,
            seq_no: 1,
            data: b"ping payload"
        }
    );

    // The public and private addresses are the server's too: answered from them, never NATed.
    for own in [PUBLIC, PRIVATE_GW] {
        let mut req = echo_request(ALICE, own, 1, b"x");
        let (d, reply) = send(&mut f, &mut rng, &mut req);
        assert!(matches!(d, ClientDecision::Reply { .. }));
        assert_eq!(src_dst(&reply), (own, ALICE));
    }
    assert_eq!(f.stats().echo_replies, 3);
    assert_eq!(f.nat_mappings(), 0);

    // The server's own services are not reachable through the tunnel.
    let mut to_openvpn = udp((ALICE, 5000), (SERVER, OPENVPN_PORT), b"x");
    let mut to_ssh = tcp((ALICE, 5000), (PUBLIC, 22), TcpControl::Syn, false, None);
    for p in [&mut to_openvpn, &mut to_ssh] {
        assert_eq!(
            send(&mut f, &mut rng, p).0,
            ClientDecision::Drop(ClientDropReason::ToServer)
        );
    }
    assert_eq!(f.stats().dropped.to_server, 2);

    // A bad ICMP checksum is not answered; a reply buffer too short is said so.
    let mut bad = echo_request(ALICE, SERVER, 1, b"abcd");
    bad[30] ^= 0xff;
    assert_eq!(
        send(&mut f, &mut rng, &mut bad).0,
        ClientDecision::Drop(ClientDropReason::Malformed)
    );
    let mut req = echo_request(ALICE, SERVER, 1, b"abcd");
    let mut short = [0u8; 20];
    assert_eq!(
        f.from_client(now(), &mut req, &mut short, &mut rng),
        ClientDecision::Drop(ClientDropReason::NoRoomForReply)
    );
}

#[test]
fn client_to_client_follows_the_switch() {
    let (mut f, mut rng) = forwarder(config());
    let original = udp((ALICE, 5000), (BOB, 6000), b"hello bob");
    let mut p = original.clone();
    assert_eq!(
        send(&mut f, &mut rng, &mut p).0,
        ClientDecision::Drop(ClientDropReason::ClientToClientOff)
    );
    assert_eq!(f.stats().dropped.client_to_client_off, 1);

    let mut c = config();
    c.client_to_client = true;
    let (mut f, mut rng) = forwarder(c);
    let mut p = original.clone();
    assert_eq!(
        send(&mut f, &mut rng, &mut p).0,
        ClientDecision::ToClient(BOB)
    );
    assert_eq!(ttl(&p), 63);
    assert!(checksums_ok(&p));
    assert_eq!(src_dst(&p), (ALICE, BOB), "no NAT between clients");
    assert_eq!(ports(&p), (5000, 6000));
    assert_eq!(f.stats().to_clients, 1);

    // The tunnel network's own network and broadcast addresses are nobody's.
    for dst in [
        Ipv4Address::new(10, 77, 0, 0),
        Ipv4Address::new(10, 77, 0, 255),
    ] {
        let mut p = udp((ALICE, 5000), (dst, 6000), b"x");
        assert_eq!(
            send(&mut f, &mut rng, &mut p).0,
            ClientDecision::Drop(ClientDropReason::Martian)
        );
    }
}

#[test]
fn nat_round_trip_returns_to_the_right_client() {
    let (mut f, mut rng) = forwarder(config());
    let mut a = udp((ALICE, 5353), (REMOTE, 53), b"alice's query");
    let mut b = udp((BOB, 5353), (REMOTE, 53), b"bob's query");
    assert_eq!(send(&mut f, &mut rng, &mut a).0, ClientDecision::ToPublic);
    assert_eq!(send(&mut f, &mut rng, &mut b).0, ClientDecision::ToPublic);
    for p in [&a, &b] {
        assert_eq!(src_dst(p), (PUBLIC, REMOTE));
        assert!(checksums_ok(p));
        assert_eq!(ttl(p), 63);
        assert!((PORT_FIRST..=PORT_LAST).contains(&ports(p).0));
    }
    let (port_a, port_b) = (ports(&a).0, ports(&b).0);
    assert_ne!(port_a, port_b);
    assert_eq!(f.stats().to_public, 2);
    assert_eq!(f.nat_mappings(), 2);

    // Answers come back translated to the client that asked, with Ethernet padding tolerated.
    for (port, client) in [(port_b, BOB), (port_a, ALICE)] {
        let answer = udp((REMOTE, 53), (PUBLIC, port), b"answer");
        let mut frame = answer.clone();
        frame.resize(answer.len() + 6, 0);
        let got = f.from_public(now(), &mut frame).unwrap();
        assert_eq!(
            got,
            ClientPacket {
                client,
                len: answer.len()
            }
        );
        let p = &frame[..got.len];
        assert_eq!(src_dst(p), (REMOTE, client));
        assert_eq!(ports(p), (53, 5353));
        assert!(checksums_ok(p));
        assert_eq!(ttl(p), 63);
    }
    assert_eq!(f.stats().from_public, 2);

    // The same public port from another remote (or remote port) is refused and left untouched.
    for from in [(Ipv4Address::new(203, 0, 113, 9), 53), (REMOTE, 5353)] {
        let spoof = udp(from, (PUBLIC, port_a), b"forged");
        let mut p = spoof.clone();
        assert_eq!(f.from_public(now(), &mut p), None);
        assert_eq!(p, spoof, "handed to the server's own stack unchanged");
    }
    // Not addressed to the public address: not ours to translate.
    let mut other = udp(
        (REMOTE, 53),
        (Ipv4Address::new(198, 51, 100, 8), port_a),
        b"x",
    );
    assert_eq!(f.from_public(now(), &mut other), None);

    // A router on the path reports the translated query: the error goes back to Alice, quote restored.
    let hop = Ipv4Address::new(203, 0, 113, 1);
    let mut err = vec![0u8; 576];
    let n = crate::icmp::build_error(&mut err, hop, &a, IcmpError::TtlExceeded, 1).unwrap();
    err.truncate(n);
    assert_eq!(
        f.from_public(now(), &mut err).map(|c| c.client),
        Some(ALICE)
    );
    assert!(checksums_ok(&err));
    assert_eq!(src_dst(&err), (hop, ALICE));
    assert_eq!(
        src_dst(&err[28..]),
        (ALICE, REMOTE),
        "quoted packet translated back"
    );
    assert_eq!(ports(&err[28..]), (5353, 53));

    let mut ping = echo_request(ALICE, REMOTE, 0x77, b"hi");
    assert_eq!(
        send(&mut f, &mut rng, &mut ping).0,
        ClientDecision::ToPublic
    );
    assert!(checksums_ok(&ping));
    let id = u16::from_be_bytes([ping[24], ping[25]]);
    let mut pong = crate::testutil::icmp(
        REMOTE,
        PUBLIC,
        &Icmpv4Repr::EchoReply {
            ident: id,
            seq_no: 1,
            data: b"hi",
        },
    );
    assert_eq!(
        f.from_public(now(), &mut pong).map(|c| c.client),
        Some(ALICE)
    );
    assert!(checksums_ok(&pong));
    assert_eq!(u16::from_be_bytes([pong[24], pong[25]]), 0x77);
    // An echo request to the public address is the server's own stack's to answer.
    let mut inbound_ping = echo_request(REMOTE, PUBLIC, 9, b"x");
    assert_eq!(f.from_public(now(), &mut inbound_ping), None);
}

#[test]
fn no_public_address_means_no_route_until_set() {
    let mut c = config();
    c.public = None;
    let (mut f, mut rng) = forwarder(c);
    let mut p = udp((ALICE, 5000), (REMOTE, 53), b"x");
    assert_eq!(
        send(&mut f, &mut rng, &mut p).0,
        ClientDecision::Drop(ClientDropReason::NoRoute)
    );
    let mut inbound = udp((REMOTE, 53), (PUBLIC, 2000), b"x");
    assert_eq!(f.from_public(now(), &mut inbound), None);

    f.set_public(Some(PUBLIC));
    let mut p = udp((ALICE, 5000), (REMOTE, 53), b"x");
    assert_eq!(send(&mut f, &mut rng, &mut p).0, ClientDecision::ToPublic);
    assert_eq!(f.nat_mappings(), 1);
    // A new DHCP address: the old mappings are gone.
    let new_public = Ipv4Address::new(198, 51, 100, 99);
    f.set_public(Some(new_public));
    assert_eq!(f.nat_mappings(), 0);
    let mut p = udp((ALICE, 5000), (REMOTE, 53), b"x");
    assert_eq!(send(&mut f, &mut rng, &mut p).0, ClientDecision::ToPublic);
    assert_eq!(src_dst(&p).0, new_public);
}

#[test]
fn reserved_ports_are_never_allocated_nor_translated() {
    let mut c = config();
    // Reserve most of the NAT range so a collision would be near certain if reservation were ignored.
    c.reserved_ports = (PORT_FIRST..=40000).collect();
    c.nat_table_size = 1024;
    let (mut f, mut rng) = forwarder(c);
    for i in 0..600u16 {
        let mut p = udp((ALICE, 10000 + i), (REMOTE, 53), b"q");
        assert_eq!(send(&mut f, &mut rng, &mut p).0, ClientDecision::ToPublic);
        assert!(
            ports(&p).0 > 40000,
            "reserved port {} handed out",
            ports(&p).0
        );
        let mut t = tcp(
            (BOB, 10000 + i),
            (REMOTE, 443),
            TcpControl::Syn,
            false,
            None,
        );
        assert_eq!(send(&mut f, &mut rng, &mut t).0, ClientDecision::ToPublic);
        assert!(ports(&t).0 > 40000);
    }

    let (mut f, mut rng) = forwarder(config());
    let mut p = udp((ALICE, 5000), (REMOTE, 53), b"q");
    send(&mut f, &mut rng, &mut p);
    for (proto_tcp, port) in [(false, OPENVPN_PORT), (true, 443)] {
        let packet = if proto_tcp {
            tcp(
                (REMOTE, 55555),
                (PUBLIC, port),
                TcpControl::Syn,
                false,
                None,
            )
        } else {
            udp((REMOTE, 55555), (PUBLIC, port), b"client hello")
        };
        let mut q = packet.clone();
        assert_eq!(f.from_public(now(), &mut q), None);
        assert_eq!(q, packet);
    }
}

#[test]
fn ttl_expiry_answers_time_exceeded() {
    let mut c = config();
    c.client_to_client = true;
    let (mut f, mut rng) = forwarder(c);
    for dst in [REMOTE, BOB, WORKSTATION] {
        let original = with_ttl(udp((ALICE, 33434), (dst, 33435), b"traceroute"), 1);
        let mut p = original.clone();
        let (d, reply) = send(&mut f, &mut rng, &mut p);
        assert_eq!(d, ClientDecision::Reply { len: reply.len() });
        assert_eq!(
            p, original,
            "the expired packet is not forwarded or rewritten"
        );
        assert!(checksums_ok(&reply));
        assert_eq!(src_dst(&reply), (SERVER, ALICE));
        let ip = Ipv4Packet::new_checked(&reply[..]).unwrap();
        assert_eq!(&ip.payload()[..2], &[11, 0], "time exceeded, in transit");
        assert_eq!(&ip.payload()[8..], &original[..], "quotes the packet");
    }
    assert_eq!(f.stats().time_exceeded, 3);
    assert_eq!(f.nat_mappings(), 0, "no mapping for a packet that expired");

    // TTL 2 still goes through, leaving with 1.
    let mut p = with_ttl(udp((ALICE, 33434), (REMOTE, 33435), b"x"), 2);
    assert_eq!(send(&mut f, &mut rng, &mut p).0, ClientDecision::ToPublic);
    assert_eq!(ttl(&p), 1);

    // Errors are rate-limited (RFC 1812 section 4.3.2.8).
    let mut limited = 0;
    for _ in 0..300 {
        let mut p = with_ttl(udp((ALICE, 1), (REMOTE, 2), b"x"), 1);
        if send(&mut f, &mut rng, &mut p).0 == ClientDecision::Drop(ClientDropReason::TtlExceeded) {
            limited += 1;
        }
    }
    assert!(limited >= 100);
    assert_eq!(f.stats().dropped.ttl_exceeded, limited);
}

#[test]
fn private_network_is_routed_without_nat() {
    let (mut f, mut rng) = forwarder(config());
    let mut p = tcp(
        (ALICE, 40000),
        (WORKSTATION, 22),
        TcpControl::Syn,
        false,
        Some(1460),
    );
    assert_eq!(send(&mut f, &mut rng, &mut p).0, ClientDecision::ToPrivate);
    assert_eq!(src_dst(&p), (ALICE, WORKSTATION));
    assert_eq!(ports(&p), (40000, 22));
    // Not aged here: the private side's router ages it when it puts it on the LAN.
    assert_eq!(ttl(&p), 64);
    assert!(checksums_ok(&p));
    assert_eq!(f.nat_mappings(), 0);
    let mut bcast = udp((ALICE, 1), (Ipv4Address::new(192, 168, 50, 255), 2), b"x");
    assert_eq!(
        send(&mut f, &mut rng, &mut bcast).0,
        ClientDecision::Drop(ClientDropReason::Martian)
    );

    // And back: the private NIC's packets for a client.
    let answer = tcp(
        (WORKSTATION, 22),
        (ALICE, 40000),
        TcpControl::Syn,
        true,
        Some(1460),
    );
    let mut q = answer.clone();
    q.extend_from_slice(&[0; 4]); // padding
    assert_eq!(
        f.from_private(now(), &mut q),
        Some(ClientPacket {
            client: ALICE,
            len: answer.len()
        })
    );
    assert_eq!(ttl(&q[..answer.len()]), 63);
    assert!(checksums_ok(&q[..answer.len()]));
    assert_eq!(f.stats().from_private, 1);

    // Not for a client, or spoofing one, or expiring: not forwarded.
    let mut to_server = udp((WORKSTATION, 1), (SERVER, 2), b"x");
    let mut to_gw = udp((WORKSTATION, 1), (PRIVATE_GW, 2), b"x");
    let mut spoofed = udp((BOB, 1), (ALICE, 2), b"x");
    let mut expiring = with_ttl(udp((WORKSTATION, 1), (ALICE, 2), b"x"), 1);
    for p in [&mut to_server, &mut to_gw, &mut spoofed, &mut expiring] {
        assert_eq!(f.from_private(now(), p), None);
    }
    assert_eq!(f.stats().dropped.spoofed, 1);
    assert_eq!(f.stats().dropped.ttl_exceeded, 1);

    // Without a private network nothing is routed there: it goes out through the NAT instead.
    let mut c = config();
    c.private_net = None;
    let (mut f, mut rng) = forwarder(c);
    let mut p = udp((ALICE, 1), (WORKSTATION, 2), b"x");
    assert_eq!(send(&mut f, &mut rng, &mut p).0, ClientDecision::ToPublic);
    let mut q = udp((WORKSTATION, 1), (ALICE, 2), b"x");
    assert_eq!(f.from_private(now(), &mut q), None);
}

#[test]
fn syn_mss_is_clamped_both_ways() {
    let mut c = config();
    c.mtu = 1400;
    let (mut f, mut rng) = forwarder(c);
    let mut syn = tcp(
        (ALICE, 40000),
        (REMOTE, 443),
        TcpControl::Syn,
        false,
        Some(1460),
    );
    assert_eq!(send(&mut f, &mut rng, &mut syn).0, ClientDecision::ToPublic);
    assert!(checksums_ok(&syn));
    let seg = TcpPacket::new_checked(&syn[20..]).unwrap();
    assert_eq!(seg.dst_port(), 443);
    let mss = |p: &[u8]| {
        let seg = TcpPacket::new_checked(&p[20..]).unwrap();
        let repr = smoltcp::wire::TcpRepr::parse(
            &seg,
            &smoltcp::wire::IpAddress::Ipv4(src_dst(p).0),
            &smoltcp::wire::IpAddress::Ipv4(src_dst(p).1),
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        repr.max_seg_size
    };
    assert_eq!(mss(&syn), Some(1360));
    let public_port = ports(&syn).0;
    let mut syn_ack = tcp(
        (REMOTE, 443),
        (PUBLIC, public_port),
        TcpControl::Syn,
        true,
        Some(1460),
    );
    assert_eq!(
        f.from_public(now(), &mut syn_ack).map(|c| c.client),
        Some(ALICE)
    );
    assert!(checksums_ok(&syn_ack));
    assert_eq!(mss(&syn_ack), Some(1360));
}

#[test]
fn refused_sources_ipv6_and_fragments() {
    let (mut f, mut rng) = forwarder(config());
    for src in [
        Ipv4Address::new(10, 99, 0, 5),
        SERVER,
        Ipv4Address::new(10, 77, 0, 255),
    ] {
        let mut p = udp((src, 1), (REMOTE, 2), b"x");
        assert_eq!(
            send(&mut f, &mut rng, &mut p).0,
            ClientDecision::Drop(ClientDropReason::Spoofed)
        );
    }
    let mut v6 = vec![0x60u8; 48];
    assert_eq!(
        send(&mut f, &mut rng, &mut v6).0,
        ClientDecision::Drop(ClientDropReason::Ipv6)
    );
    assert_eq!(f.stats().dropped.ipv6, 1);

    // A first fragment through the NAT: refused (no reassembly here); between clients it passes.
    let fragment = |dst| {
        let mut p = udp((ALICE, 5000), (dst, 53), &[7u8; 64]);
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.set_more_frags(true);
        ip.fill_checksum();
        p
    };
    let mut p = fragment(REMOTE);
    assert_eq!(
        send(&mut f, &mut rng, &mut p).0,
        ClientDecision::Drop(ClientDropReason::Fragment)
    );
    let mut c = config();
    c.client_to_client = true;
    let (mut f, mut rng) = forwarder(c);
    let mut p = fragment(BOB);
    assert_eq!(
        send(&mut f, &mut rng, &mut p).0,
        ClientDecision::ToClient(BOB)
    );
    assert_eq!(ttl(&p), 63);
}

#[test]
fn hostile_headers_are_refused() {
    let (mut f, mut rng) = forwarder(config());
    let good = udp((ALICE, 5000), (REMOTE, 53), b"query");
    let malformed = ClientDecision::Drop(ClientDropReason::Malformed);

    let mut empty: [u8; 0] = [];
    assert_eq!(send(&mut f, &mut rng, &mut empty).0, malformed);
    let mut truncated = good[..15].to_vec();
    assert_eq!(send(&mut f, &mut rng, &mut truncated).0, malformed);
    let mut cut = good[..good.len() - 1].to_vec(); // total_len > buffer
    assert_eq!(send(&mut f, &mut rng, &mut cut).0, malformed);
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(send(&mut f, &mut rng, &mut trailing).0, malformed);
    for ihl in [0u8, 4, 15] {
        let mut bad = good.clone();
        bad[0] = 0x40 | ihl;
        refill(&mut bad);
        assert_eq!(send(&mut f, &mut rng, &mut bad).0, malformed, "IHL {ihl}");
    }
    let mut checksum = good.clone();
    checksum[10] ^= 1;
    assert_eq!(send(&mut f, &mut rng, &mut checksum).0, malformed);
    let mut version = good.clone();
    version[0] = 0x55;
    assert_eq!(send(&mut f, &mut rng, &mut version).0, malformed);
    // A TCP header cut short by the IP length: the NAT refuses it.
    let mut short_tcp = ipv4(ALICE, REMOTE, IpProtocol::Tcp, 64, &[0u8; 10]);
    assert!(matches!(
        send(&mut f, &mut rng, &mut short_tcp).0,
        ClientDecision::Drop(ClientDropReason::Nat(NatError::Truncated))
    ));
    assert_eq!(f.stats().dropped.total(), f.stats().dropped.malformed + 1);
    assert_eq!(f.nat_mappings(), 0);
}

#[test]
fn mutated_inputs_never_panic() {
    let mut c = config();
    c.client_to_client = true;
    c.nat_table_size = 32;
    let (mut f, mut rng) = forwarder(c);
    let mut fuzz = ChaCha20Rng::seed_from_u64(99);
    let mut ping = echo_request(ALICE, REMOTE, 5, b"x");
    send(&mut f, &mut rng, &mut ping);
    let id = u16::from_be_bytes([ping[24], ping[25]]);
    let seeds: Vec<Vec<u8>> = vec![
        udp((ALICE, 5000), (REMOTE, 53), b"query"),
        udp((REMOTE, 53), (PUBLIC, id), b"answer"),
        tcp(
            (ALICE, 40000),
            (REMOTE, 443),
            TcpControl::Syn,
            false,
            Some(1460),
        ),
        tcp(
            (REMOTE, 443),
            (PUBLIC, id),
            TcpControl::Syn,
            true,
            Some(1460),
        ),
        echo_request(ALICE, SERVER, 1, b"ping"),
        echo_request(ALICE, REMOTE, 1, b"ping"),
        udp((ALICE, 1), (BOB, 2), b"c2c"),
        udp((WORKSTATION, 1), (ALICE, 2), b"private"),
        ping,
    ];
    let mut reply = vec![0u8; 1500];
    for step in 0..20_000u32 {
        let r = fuzz.next_u32();
        let mut p = seeds[r as usize % seeds.len()].clone();
        match (r >> 8) % 4 {
            0 => {
                let at = (r >> 12) as usize % p.len();
                p[at] ^= (r >> 24) as u8 | 1;
            }
            1 => p.truncate((r >> 12) as usize % (p.len() + 1)),
            2 => {
                // Consistent header checksum, hostile lengths.
                let at = [0usize, 2, 3, 9][(r >> 12) as usize % 4];
                p[at] = (r >> 24) as u8;
                refill(&mut p);
            }
            _ => {
                let at = 20 + (r >> 12) as usize % (p.len() - 20);
                p[at] = (r >> 24) as u8;
            }
        }
        let reply_len = [0usize, 8, 40, 576, 1500][(r >> 16) as usize % 5];
        let now = Instant::from_secs(100) + Duration::from_millis(u64::from(step));
        let mut a = p.clone();
        if let ClientDecision::Reply { len } =
            f.from_client(now, &mut a, &mut reply[..reply_len], &mut rng)
        {
            assert!(len <= reply_len);
            assert!(checksums_ok(&reply[..len]));
        }
        let mut b = p.clone();
        if let Some(c) = f.from_public(now, &mut b) {
            assert!(c.len <= b.len());
        }
        let mut c = p;
        if let Some(c2) = f.from_private(now, &mut c) {
            assert!(c2.len <= c.len());
        }
        assert!(f.nat_mappings() <= 32);
    }
}

#[test]
fn nat_table_stays_bounded_and_expires() {
    let mut c = config();
    c.nat_table_size = 64;
    let (mut f, mut rng) = forwarder(c);
    for i in 0..1000u16 {
        let mut p = udp((ALICE, 1024 + i), (REMOTE, 53), b"q");
        assert_eq!(send(&mut f, &mut rng, &mut p).0, ClientDecision::ToPublic);
        assert!(f.nat_mappings() <= 64);
    }
    assert_eq!(
        f.nat_mappings(),
        64,
        "least recently used evicted, table full"
    );
    let at = f.poll_at().unwrap();
    assert!(at <= now() + crate::nat::UDP_TIMEOUT);
    f.tick(now() + crate::nat::UDP_TIMEOUT);
    assert_eq!(f.nat_mappings(), 0);
    assert_eq!(f.poll_at(), None);
}
