//! A router with two LAN ports: each port answers ARP, DHCP, ping and DNS with its own MAC and
//! gateway address, its hosts' traffic leaves and comes back on that port, and ports never reach each
//! other.

use super::*;

const P0: PortId = PortId::FIRST;
const P1: PortId = PortId(1);
const GW2_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
const HOST2_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x99]);
const GW2: Ipv4Address = Ipv4Address::new(10, 9, 0, 1);
const HOST2: Ipv4Address = Ipv4Address::new(10, 9, 0, 50);

fn two_ports(f: impl FnOnce(&mut RouterConfig)) -> Router {
    let mut config = RouterConfig::with_ports(vec![
        PortConfig::new(GW_MAC, Ipv4Cidr::new(GW, 24)),
        PortConfig::new(GW2_MAC, Ipv4Cidr::new(GW2, 24)),
    ]);
    f(&mut config);
    Router::new(config, &mut ChaCha8Rng::seed_from_u64(42))
}

fn from_host2(packet: &[u8]) -> Vec<u8> {
    ethernet(HOST2_MAC, GW2_MAC, EthernetProtocol::Ipv4, packet)
}

/// The IPv4 packet of a frame the router sent on `port`, checking its Ethernet header.
fn sent_on(
    out: &Out,
    i: usize,
    port: PortId,
    src: EthernetAddress,
    dst: EthernetAddress,
) -> Vec<u8> {
    assert_eq!(out.ports[i], port, "frame {i} on the wrong port");
    let eth = EthernetFrame::new_checked(&out.lan[i][..]).unwrap();
    assert_eq!((eth.src_addr(), eth.dst_addr()), (src, dst));
    assert_eq!(eth.ethertype(), EthernetProtocol::Ipv4);
    eth.payload().to_vec()
}

fn arp_reply_of(frame: &[u8]) -> (EthernetAddress, Ipv4Address, Ipv4Address) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let Ok(ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    }) = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap())
    else {
        panic!("not ARP")
    };
    assert_eq!(operation, ArpOperation::Reply);
    (
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
    )
}

#[test]
fn each_port_answers_arp_for_its_own_gateway() {
    let mut r = two_ports(|_| {});
    let who_has = |sha, spa, tpa| {
        arp_frame(
            ArpOperation::Request,
            sha,
            spa,
            EthernetAddress([0; 6]),
            tpa,
            EthernetAddress::BROADCAST,
        )
    };
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &who_has(HOST2_MAC, HOST2, GW2), &mut out),
        Verdict::Answered
    );
    assert_eq!(out.ports, [P1]);
    assert_eq!(arp_reply_of(&out.lan[0]), (GW2_MAC, GW2, HOST2));

    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(P0, t0(), &who_has(HOST_MAC, HOST, GW), &mut out),
        Verdict::Answered
    );
    assert_eq!(out.ports, [P0]);
    assert_eq!(arp_reply_of(&out.lan[0]), (GW_MAC, GW, HOST));

    // Port 1's gateway is not on port 0's link, and the reverse.
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(P0, t0(), &who_has(HOST_MAC, HOST, GW2), &mut out),
        Verdict::Consumed
    );
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &who_has(HOST2_MAC, HOST2, GW), &mut out),
        Verdict::Consumed
    );
    assert!(out.lan.is_empty());
}

#[test]
fn each_port_leases_from_its_own_prefix() {
    let mut r = two_ports(|_| {});
    for (port, mac, gateway) in [(P1, GW2_MAC, GW2), (P0, GW_MAC, GW)] {
        let mut out = Out::default();
        let discover = dhcp_frame(DhcpMessageType::Discover, None, None);
        assert_eq!(
            r.handle_lan_frame(port, t0(), &discover, &mut out),
            Verdict::Answered
        );
        let ip = sent_on(&out, 0, port, mac, EthernetAddress::BROADCAST);
        assert!(checksums_ok(&ip));
        let p = Ipv4Packet::new_checked(&ip[..]).unwrap();
        assert_eq!(p.src_addr(), gateway);
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        let dhcp = DhcpPacket::new_checked(u.payload()).unwrap();
        let offer = DhcpRepr::parse(&dhcp).unwrap();
        assert_eq!(offer.message_type, DhcpMessageType::Offer);
        assert!(Ipv4Cidr::new(gateway, 24).contains_addr(&offer.your_ip));
        assert_ne!(offer.your_ip, gateway);
        assert_eq!(offer.router, Some(gateway));
        assert_eq!(offer.server_identifier, Some(gateway));
        assert_eq!(
            offer.dns_servers.as_ref().and_then(|d| d.first().copied()),
            Some(gateway)
        );
    }
    assert_eq!(r.dhcp_leases(), 2, "one lease per port for the same MAC");

    // DHCP off on port 1 only.
    let mut r = two_ports(|c| c.ports[1].dhcp = false);
    let discover = dhcp_frame(DhcpMessageType::Discover, None, None);
    let mut out = Out::default();
    r.handle_lan_frame(P1, t0(), &discover, &mut out);
    assert!(out.lan.is_empty());
    r.handle_lan_frame(P0, t0(), &discover, &mut out);
    assert_eq!(out.ports, [P0]);
}

#[test]
fn each_port_answers_ping_to_its_gateway() {
    let mut r = two_ports(|_| {});
    let mut out = Out::default();
    let ping = from_host2(&echo_request(HOST2, GW2, 7, b"port one"));
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &ping, &mut out),
        Verdict::Answered
    );
    let reply = sent_on(&out, 0, P1, GW2_MAC, HOST2_MAC);
    assert_eq!(Ipv4Packet::new_checked(&reply[..]).unwrap().src_addr(), GW2);
    assert_eq!(icmp_type_code(&reply), (0, 0));
}

/// Traffic from a host on each port leaves through the tunnel and its answers come back on that
/// port (ARP resolved there), by the copying and the in-place path alike.
#[test]
fn answers_go_back_out_on_the_port_their_host_is_on() {
    for in_place in [false, true] {
        let mut r = two_ports(|_| {});
        r.set_tunnel(TunnelState::Up(tunnel()));
        let mut public_ports = Vec::new();
        for (port, frame) in [
            (P0, from_host(&udp((HOST, 40000), (REMOTE, 7777), b"zero"))),
            (P1, from_host2(&udp((HOST2, 40000), (REMOTE, 7777), b"one"))),
        ] {
            let mut out = Out::default();
            let mut buf = frame.clone();
            let v = if in_place {
                r.handle_lan_frame_in_place(port, t0(), &mut buf, &mut out)
            } else {
                r.handle_lan_frame(port, t0(), &frame, &mut out)
            };
            assert_eq!(v, Verdict::Forwarded);
            let sent = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
            assert_eq!(sent.src_addr(), TUN, "NAT to the tunnel address");
            public_ports.push(UdpPacket::new_checked(sent.payload()).unwrap().src_port());
        }
        assert_ne!(public_ports[0], public_ports[1]);

        // The answer to port 1's host: ARP asks on port 1 only, from port 1's gateway.
        let answer = udp((REMOTE, 7777), (TUN, public_ports[1]), b"for one");
        let mut out = Out::default();
        let v = if in_place {
            let mut buf = vec![0u8; 14 + answer.len()];
            buf[14..].copy_from_slice(&answer);
            let len = buf.len();
            r.handle_tunnel_packet_in_place(t0(), &mut buf, 14..len, &mut out)
        } else {
            r.handle_tunnel_packet(t0(), &answer, &mut out)
        };
        assert_eq!(v, Verdict::Queued);
        assert_eq!(out.ports, [P1]);
        let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
        assert_eq!(eth.src_addr(), GW2_MAC);
        let ArpRepr::EthernetIpv4 {
            source_protocol_addr,
            target_protocol_addr,
            ..
        } = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap()
        else {
            panic!()
        };
        assert_eq!((source_protocol_addr, target_protocol_addr), (GW2, HOST2));
        let is_at = arp_frame(ArpOperation::Reply, HOST2_MAC, HOST2, GW2_MAC, GW2, GW2_MAC);
        let mut out = Out::default();
        r.handle_lan_frame(P1, t0(), &is_at, &mut out);
        let delivered = sent_on(&out, 0, P1, GW2_MAC, HOST2_MAC);
        assert!(checksums_ok(&delivered));
        let p = Ipv4Packet::new_checked(&delivered[..]).unwrap();
        assert_eq!(p.dst_addr(), HOST2);
        assert_eq!(
            UdpPacket::new_checked(p.payload()).unwrap().dst_port(),
            40000
        );

        // Port 1's ARP entry is not port 0's: the answer to port 0's host asks on port 0.
        let answer = udp((REMOTE, 7777), (TUN, public_ports[0]), b"for zero");
        let mut out = Out::default();
        assert_eq!(
            r.handle_tunnel_packet(t0(), &answer, &mut out),
            Verdict::Queued
        );
        assert_eq!(out.ports, [P0]);
        let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
        assert_eq!(
            (eth.src_addr(), eth.dst_addr()),
            (GW_MAC, EthernetAddress::BROADCAST)
        );
    }
}

#[test]
fn routed_packets_and_dns_answers_reach_the_right_port() {
    let mut r = two_ports(|c| c.nat = false);
    r.set_tunnel(TunnelState::Up(tunnel()));
    let is_at = arp_frame(ArpOperation::Reply, HOST2_MAC, HOST2, GW2_MAC, GW2, GW2_MAC);
    r.handle_lan_frame(P1, t0(), &is_at, &mut Out::default());
    // Without NAT a packet from the tunnel to port 1's host is routed there as it is.
    let mut out = Out::default();
    let routed = udp((REMOTE, 7777), (HOST2, 40000), b"routed");
    assert_eq!(
        r.handle_tunnel_packet(t0(), &routed, &mut out),
        Verdict::Forwarded
    );
    let delivered = sent_on(&out, 0, P1, GW2_MAC, HOST2_MAC);
    assert_eq!(
        Ipv4Packet::new_checked(&delivered[..]).unwrap().hop_limit(),
        63
    );

    // A DNS query to port 1's gateway is relayed, and its answer comes back from that gateway.
    let mut r = two_ports(|_| {});
    r.set_tunnel(TunnelState::Up(tunnel()));
    let mut out = Out::default();
    let q = from_host2(&udp((HOST2, 45000), (GW2, 53), &DNS_QUERY));
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &q, &mut out),
        Verdict::Answered
    );
    let p = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    let mut answer = DNS_QUERY.to_vec();
    answer[0..2].copy_from_slice(&u.payload()[0..2]);
    answer[2] |= 0x80;
    let reply = udp((TUN_DNS, 53), (TUN, u.src_port()), &answer);
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &reply, &mut out),
        Verdict::Answered
    );
    let delivered = sent_on(&out, 0, P1, GW2_MAC, HOST2_MAC);
    let p = Ipv4Packet::new_checked(&delivered[..]).unwrap();
    assert_eq!((p.src_addr(), p.dst_addr()), (GW2, HOST2));
    assert_eq!(
        &UdpPacket::new_checked(p.payload()).unwrap().payload()[..2],
        &DNS_QUERY[..2]
    );
}

#[test]
fn ports_do_not_reach_each_other() {
    let mut r = two_ports(|_| {});
    r.set_tunnel(TunnelState::Up(tunnel()));
    let mut out = Out::default();
    // To a host (or the gateway) of the other port: not routed between ports, not into the tunnel.
    for dst in [HOST2, GW2] {
        let p = from_host(&udp((HOST, 40000), (dst, 7777), b"across"));
        assert_eq!(
            r.handle_lan_frame(P0, t0(), &p, &mut out),
            Verdict::Dropped(DropReason::NotForUs)
        );
    }
    // A source from the other port's prefix is spoofed.
    let spoofed = from_host(&udp((HOST2, 40000), (REMOTE, 7777), b"spoofed"));
    assert_eq!(
        r.handle_lan_frame(P0, t0(), &spoofed, &mut out),
        Verdict::Dropped(DropReason::Martian)
    );
    // A frame for port 0's MAC arriving on port 1 is not for us there.
    let wrong_link = from_host(&udp((HOST2, 40000), (REMOTE, 7777), b"wrong MAC"));
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &wrong_link, &mut out),
        Verdict::Dropped(DropReason::NotForUs)
    );
    // From the tunnel, either port's prefix as a source is spoofed.
    for src in [HOST, HOST2] {
        assert_eq!(
            r.handle_tunnel_packet(t0(), &udp((src, 1), (TUN, 2), b"x"), &mut out),
            Verdict::Dropped(DropReason::Martian)
        );
    }
    assert!(out.lan.is_empty() && out.tunnel.is_empty());
    // A port the router does not have.
    let ping = from_host(&echo_request(HOST, GW, 1, b"x"));
    assert_eq!(
        r.handle_lan_frame(PortId(2), t0(), &ping, &mut out),
        Verdict::Dropped(DropReason::UnknownPort)
    );
    let mut buf = ping.clone();
    assert_eq!(
        r.handle_lan_frame_in_place(PortId(2), t0(), &mut buf, &mut out),
        Verdict::Dropped(DropReason::UnknownPort)
    );
    assert!(out.lan.is_empty());
}

#[test]
fn timers_run_per_port() {
    let mut r = two_ports(|_| {});
    r.set_tunnel(TunnelState::Up(tunnel()));
    // Queue an answer for a host on each port: each port's ARP retries go out on that port.
    for (port, frame) in [
        (P0, from_host(&udp((HOST, 40000), (REMOTE, 7777), b"zero"))),
        (P1, from_host2(&udp((HOST2, 40000), (REMOTE, 7777), b"one"))),
    ] {
        let mut out = Out::default();
        r.handle_lan_frame(port, t0(), &frame, &mut out);
        let sent = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
        let public = UdpPacket::new_checked(sent.payload()).unwrap().src_port();
        let answer = udp((REMOTE, 7777), (TUN, public), b"answer");
        let mut out = Out::default();
        assert_eq!(
            r.handle_tunnel_packet(t0(), &answer, &mut out),
            Verdict::Queued
        );
        assert_eq!(out.ports, [port]);
    }
    let at = r.poll_at().unwrap();
    let mut out = Out::default();
    r.tick(at, &mut out);
    let mut ports = out.ports.clone();
    ports.sort();
    ports.dedup();
    assert_eq!(ports, [P0, P1], "ARP retries on both ports");
    for (frame, port) in out.lan.iter().zip(&out.ports) {
        let src = EthernetFrame::new_checked(&frame[..]).unwrap().src_addr();
        assert_eq!(src, if *port == P0 { GW_MAC } else { GW2_MAC });
    }
}

/// IPv6: each port advertises its own prefix from its own link-local address, answers Neighbor
/// Discovery for its own addresses only, and NAT66 answers go back to the port their host is on.
#[test]
fn ipv6_per_port() {
    let lan6_b = Ipv6Address::new(0xfd6f, 0x7876, 2, 0, 0, 0, 0, 0);
    let mut r = two_ports(|c| {
        c.ports[0].ipv6_prefix = Some(Ipv6Cidr::new(LAN6, 64));
        c.ports[1].ipv6_prefix = Some(Ipv6Cidr::new(lan6_b, 64));
    });
    let mut t = tunnel();
    t.ipv6 = Some(Ipv6Cidr::new(TUN6, 64));
    t.redirect_gateway_ipv6 = true;
    r.set_tunnel(TunnelState::Up(t));
    let mut out = Out::default();
    r.tick(t0(), &mut out);
    assert_eq!(out.ports, [P0, P1], "one router advertisement per port");
    for (i, (mac, prefix)) in [(GW_MAC, LAN6), (GW2_MAC, lan6_b)].into_iter().enumerate() {
        let eth = EthernetFrame::new_checked(&out.lan[i][..]).unwrap();
        assert_eq!(eth.src_addr(), mac);
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.src_addr(), crate::icmp6::link_local(mac));
        let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert { prefix_info, .. }) =
            icmp6_of(eth.payload())
        else {
            panic!("not RA")
        };
        assert_eq!(prefix_info.unwrap().prefix, prefix);
    }

    // Who has port 1's gateway link-local? Answered on port 1, with port 1's MAC; port 0's is not
    // port 1's business.
    let host_ll = crate::icmp6::link_local(HOST_MAC);
    let solicit = |target| {
        let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&HOST_MAC.0)),
        });
        let group = crate::icmp6::solicited_node(target);
        ndp_frame(host_ll, group, &ns, crate::icmp6::multicast_mac(group))
    };
    let mut out = Out::default();
    let gw2_ll = crate::icmp6::link_local(GW2_MAC);
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &solicit(gw2_ll), &mut out),
        Verdict::Answered
    );
    assert_eq!(out.ports, [P1]);
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    assert_eq!((eth.src_addr(), eth.dst_addr()), (GW2_MAC, HOST_MAC));
    let mut out = Out::default();
    let gw_ll = crate::icmp6::link_local(GW_MAC);
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &solicit(gw_ll), &mut out),
        Verdict::Consumed
    );
    assert!(out.lan.is_empty());

    // A host of port 1's prefix out through NAT66 and the answer back on port 1.
    let host6_b = Ipv6Address::new(0xfd6f, 0x7876, 2, 0, 0, 0, 0, 0x50);
    let mut frame = ipv6_frame(host6_b, REMOTE6);
    frame[0..6].copy_from_slice(&GW2_MAC.0);
    frame[6..12].copy_from_slice(&HOST2_MAC.0);
    let mut out = Out::default();
    assert_eq!(
        r.handle_lan_frame(P1, t0(), &frame, &mut out),
        Verdict::Forwarded
    );
    let sent = out.tunnel[0].clone();
    assert_eq!(Ipv6Packet::new_checked(&sent[..]).unwrap().src_addr(), TUN6);
    // The answer: swap addresses and ports of what was sent.
    let mut answer = sent.clone();
    answer[8..24].copy_from_slice(&sent[24..40]);
    answer[24..40].copy_from_slice(&sent[8..24]);
    answer[40..42].copy_from_slice(&sent[42..44]);
    answer[42..44].copy_from_slice(&sent[40..42]);
    let mut out = Out::default();
    assert_eq!(
        r.handle_tunnel_packet(t0(), &answer, &mut out),
        Verdict::Forwarded
    );
    assert_eq!(out.ports, [P1]);
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    assert_eq!((eth.src_addr(), eth.dst_addr()), (GW2_MAC, HOST2_MAC));
    let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ip.dst_addr(), host6_b);
}
