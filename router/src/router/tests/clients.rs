//! Client ports (one client's link per port, as Qubes vifs are): anti-spoofing, isolation, per-client
//! firewall rules, the virtual DNS, DHCP of the client's fixed address, fail-closed.

use super::*;
use crate::firewall::{Action, Firewall, Rule};
use crate::testutil::icmp;
use smoltcp::wire::Icmpv4Repr;

const QGW: Ipv4Address = Ipv4Address::new(10, 137, 0, 1);
const VDNS1: Ipv4Address = Ipv4Address::new(10, 139, 1, 1);
const VDNS2: Ipv4Address = Ipv4Address::new(10, 139, 1, 2);
const BEHIND: Ipv4Address = Ipv4Address::new(10, 9, 0, 1);

fn client_ip(i: u8) -> Ipv4Address {
    Ipv4Address::new(10, 137, 0, 10 + i)
}

fn gw_mac(i: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0x10, i])
}

fn client_mac(i: u8) -> EthernetAddress {
    EthernetAddress([0x52, 0x54, 0, 0, 0x20, i])
}

fn firewall(policy: Action, rules: &[&str]) -> Firewall {
    let mut fw = Firewall::new(policy);
    for r in rules {
        fw.push(Rule::parse(r).unwrap()).unwrap();
    }
    fw
}

/// Three client ports; client 1 has `fw1`.
fn clients(fw1: Option<Firewall>) -> Router {
    let ports = (0..3)
        .map(|i| {
            let mut p = PortConfig::new(gw_mac(i), Ipv4Cidr::new(QGW, 24));
            let fw = if i == 1 { fw1.clone() } else { None };
            p.policy = PortPolicy::client(client_ip(i), fw, vec![VDNS1, VDNS2]);
            p.ipv6 = false;
            p
        })
        .collect();
    Router::new(
        RouterConfig::with_ports(ports),
        &mut ChaCha8Rng::seed_from_u64(7),
    )
}

fn up(r: &mut Router) {
    let mut t = tunnel();
    t.routes.push(Ipv4Cidr::new(BEHIND, 24));
    r.set_tunnel(TunnelState::Up(t));
}

fn from_client(i: u8, packet: &[u8]) -> Vec<u8> {
    ethernet(client_mac(i), gw_mac(i), EthernetProtocol::Ipv4, packet)
}

fn send(r: &mut Router, i: u8, packet: &[u8]) -> (Verdict, Out) {
    let mut out = Out::default();
    let v = r.handle_lan_frame(PortId(i.into()), t0(), &from_client(i, packet), &mut out);
    (v, out)
}

fn syn(src: Ipv4Address, dst: Ipv4Address, port: u16) -> Vec<u8> {
    tcp(
        (src, 40000),
        (dst, port),
        TcpControl::Syn,
        false,
        Some(1460),
    )
}

#[test]
fn a_clients_own_address_goes_through_and_a_spoofed_one_is_dropped_and_counted() {
    let mut r = clients(None);
    up(&mut r);
    let (v, out) = send(&mut r, 0, &syn(client_ip(0), BEHIND, 80));
    assert_eq!(v, Verdict::Forwarded);
    assert_eq!(out.tunnel.len(), 1);
    // Another client's address, another address of the link's /24, the gateway's: all spoofed.
    for src in [client_ip(1), Ipv4Address::new(10, 137, 0, 99), QGW] {
        let (v, out) = send(&mut r, 0, &syn(src, BEHIND, 80));
        assert_eq!(v, Verdict::Dropped(DropReason::Spoofed), "{src}");
        assert!(out.tunnel.is_empty() && out.lan.is_empty());
    }
    // DNS from a spoofed source is not relayed either.
    let (v, out) = send(
        &mut r,
        0,
        &udp((client_ip(2), 5353), (VDNS1, 53), &DNS_QUERY),
    );
    assert_eq!(v, Verdict::Dropped(DropReason::Spoofed));
    assert!(out.tunnel.is_empty() && out.lan.is_empty());
    assert_eq!(r.stats().spoofed, 4);
    assert_eq!(r.stats().dropped, 4);
    // ARP from a spoofed address teaches the router nothing: the real client is asked for.
    let mut out = Out::default();
    let lie = arp_frame(
        ArpOperation::Request,
        client_mac(0),
        client_ip(1),
        EthernetAddress([0; 6]),
        QGW,
        EthernetAddress::BROADCAST,
    );
    r.handle_lan_frame(PortId(0), t0(), &lie, &mut out);
    let mut out = Out::default();
    let reply = udp((BEHIND, 80), (client_ip(1), 40000), b"x");
    r.handle_tunnel_packet(t0(), &reply, &mut out);
    assert_eq!(
        out.ports,
        [PortId(1)],
        "client 1's traffic stays on its own port"
    );
}

#[test]
fn clients_never_reach_each_other() {
    let mut r = clients(None);
    up(&mut r);
    for (a, b) in [(0u8, 1u8), (1, 2), (2, 0)] {
        for packet in [
            echo_request(client_ip(a), client_ip(b), 1, b"hi"),
            syn(client_ip(a), client_ip(b), 22),
            udp((client_ip(a), 1), (client_ip(b), 2), b"x"),
        ] {
            let (v, out) = send(&mut r, a, &packet);
            assert_eq!(v, Verdict::Dropped(DropReason::NotForUs));
            assert!(out.lan.is_empty() && out.tunnel.is_empty());
        }
    }
    // Nor through the tunnel: a packet from the tunnel with a client's source is martian.
    let mut out = Out::default();
    let bounced = udp((client_ip(0), 1), (client_ip(1), 2), b"x");
    assert_eq!(
        r.handle_tunnel_packet(t0(), &bounced, &mut out),
        Verdict::Dropped(DropReason::Martian)
    );
    assert!(out.lan.is_empty());
}

#[test]
fn replies_find_their_client_through_nat() {
    let mut r = clients(None);
    up(&mut r);
    for i in 0..3u8 {
        let (v, out) = send(&mut r, i, &udp((client_ip(i), 7000), (BEHIND, 9), b"q"));
        assert_eq!(v, Verdict::Forwarded);
        let p = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        let reply = udp((BEHIND, 9), (TUN, u.src_port()), b"a");
        // Resolve the client by ARP on its port, then deliver.
        let mut out = Out::default();
        assert_eq!(
            r.handle_tunnel_packet(t0(), &reply, &mut out),
            Verdict::Queued
        );
        assert_eq!(out.ports, [PortId(i.into())]);
        let mut out = Out::default();
        let is_at = arp_frame(
            ArpOperation::Reply,
            client_mac(i),
            client_ip(i),
            gw_mac(i),
            QGW,
            gw_mac(i),
        );
        r.handle_lan_frame(PortId(i.into()), t0(), &is_at, &mut out);
        assert_eq!(out.ports, [PortId(i.into())]);
        let ip = Ipv4Packet::new_checked(
            EthernetFrame::new_checked(&out.lan[0][..])
                .unwrap()
                .payload()
                .to_vec(),
        )
        .unwrap()
        .dst_addr();
        assert_eq!(ip, client_ip(i));
    }
}

#[test]
fn firewall_rules_first_match_then_policy_silently_and_counted() {
    let fw = firewall(
        Action::Drop,
        &[
            "action=drop proto=tcp dst4=10.9.0.0/24 dstports=81-81",
            "action=accept proto=tcp dst4=10.9.0.0/24 dstports=1-1024",
            "action=accept proto=icmp icmptype=8",
            "action=accept specialtarget=dns",
        ],
    );
    let mut r = clients(Some(fw));
    up(&mut r);
    let c = client_ip(1);
    let cases = [
        (syn(c, BEHIND, 80), true),
        (syn(c, BEHIND, 81), false),
        (syn(c, BEHIND, 8080), false),
        (syn(c, REMOTE, 80), false),
        (udp((c, 1), (BEHIND, 80), b"x"), false),
        (echo_request(c, REMOTE, 1, b"p"), true),
        (
            icmp(
                c,
                REMOTE,
                &Icmpv4Repr::EchoReply {
                    ident: 1,
                    seq_no: 1,
                    data: b"",
                },
            ),
            false,
        ),
    ];
    let mut dropped = 0;
    for (packet, pass) in &cases {
        let (v, out) = send(&mut r, 1, packet);
        if *pass {
            assert_eq!(v, Verdict::Forwarded);
            assert_eq!(out.tunnel.len(), 1);
        } else {
            dropped += 1;
            assert_eq!(v, Verdict::Dropped(DropReason::Firewall));
            assert!(
                out.tunnel.is_empty() && out.lan.is_empty(),
                "dropped silently"
            );
        }
    }
    assert_eq!(r.stats().firewall_dropped, dropped);
    // The other clients have no rules.
    let (v, _) = send(&mut r, 0, &syn(client_ip(0), BEHIND, 81));
    assert_eq!(v, Verdict::Forwarded);
    // A first fragment too short to carry the port is refused; later fragments wait for it.
    let mut tiny = syn(c, BEHIND, 80);
    tiny.truncate(20 + 2);
    let mut p = Ipv4Packet::new_unchecked(&mut tiny[..]);
    p.set_total_len(22);
    p.set_more_frags(true);
    p.fill_checksum();
    let (v, _) = send(&mut r, 1, &tiny);
    assert_eq!(v, Verdict::Dropped(DropReason::Firewall));
}

#[test]
fn a_drop_policy_with_no_rules_keeps_only_the_links_own_services() {
    let mut r = clients(Some(firewall(Action::Drop, &[])));
    up(&mut r);
    let c = client_ip(1);
    assert_eq!(
        send(&mut r, 1, &syn(c, BEHIND, 80)).0,
        Verdict::Dropped(DropReason::Firewall)
    );
    let (v, out) = send(&mut r, 1, &udp((c, 5353), (VDNS1, 53), &DNS_QUERY));
    assert_eq!(
        v,
        Verdict::Dropped(DropReason::Firewall),
        "DNS is specialtarget=dns"
    );
    assert!(out.tunnel.is_empty());
    // Ping of the gateway is the link's own.
    let (v, out) = send(&mut r, 1, &echo_request(c, QGW, 1, b"p"));
    assert_eq!(v, Verdict::Answered);
    assert_eq!(out.ports, [PortId(1)]);
}

#[test]
fn virtual_dns_is_answered_through_the_tunnel_from_the_address_asked() {
    let fw = firewall(Action::Accept, &["action=drop specialtarget=dns proto=tcp"]);
    let mut r = clients(Some(fw));
    up(&mut r);
    for (i, vdns) in [(0u8, VDNS1), (1, VDNS2)] {
        let (v, out) = send(
            &mut r,
            i,
            &udp((client_ip(i), 45000), (vdns, 53), &DNS_QUERY),
        );
        assert_eq!(v, Verdict::Answered);
        assert!(out.lan.is_empty());
        let p = Ipv4Packet::new_checked(&out.tunnel[0][..]).unwrap();
        assert_eq!((p.src_addr(), p.dst_addr()), (TUN, TUN_DNS));
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        let mut answer = u.payload().to_vec();
        answer[2] |= 0x80;
        let reply = udp((TUN_DNS, 53), (TUN, u.src_port()), &answer);
        let mut out = Out::default();
        assert_eq!(
            r.handle_tunnel_packet(t0(), &reply, &mut out),
            Verdict::Answered
        );
        assert_eq!(out.ports, [PortId(i.into())]);
        let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
        assert_eq!(eth.dst_addr(), client_mac(i));
        let ip = eth.payload().to_vec();
        assert!(checksums_ok(&ip));
        let p = Ipv4Packet::new_checked(&ip[..]).unwrap();
        assert_eq!(
            (p.src_addr(), p.dst_addr()),
            (vdns, client_ip(i)),
            "from the address asked"
        );
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (53, 45000));
        assert_eq!(&u.payload()[..2], &DNS_QUERY[..2]);
    }
    // Client 1's rule drops DNS over TCP to the virtual DNS; client 0 gets the gateway's reset.
    let (v, _) = send(&mut r, 1, &syn(client_ip(1), VDNS1, 53));
    assert_eq!(v, Verdict::Dropped(DropReason::Firewall));
    let (v, out) = send(&mut r, 0, &syn(client_ip(0), VDNS1, 53));
    assert_eq!(v, Verdict::Dropped(DropReason::Unsupported));
    assert_eq!(out.lan.len(), 1, "a reset from the virtual DNS address");
    // Without the tunnel: SERVFAIL from the virtual address, nothing toward the tunnel.
    r.set_tunnel(TunnelState::Down);
    let (v, out) = send(
        &mut r,
        0,
        &udp((client_ip(0), 45000), (VDNS1, 53), &DNS_QUERY),
    );
    assert_eq!(v, Verdict::Answered);
    assert!(out.tunnel.is_empty());
    let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
    let p = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(p.src_addr(), VDNS1);
    let u = UdpPacket::new_checked(p.payload()).unwrap();
    assert_eq!(u.payload()[3] & 0x0f, 2, "SERVFAIL");
}

#[test]
fn nothing_from_a_client_enters_the_tunnel_before_during_or_after_a_reconnect() {
    let mut r = clients(Some(firewall(Action::Accept, &[])));
    let traffic = |i: u8| {
        [
            syn(client_ip(i), BEHIND, 80),
            udp((client_ip(i), 1), (REMOTE, 53), b"q"),
            echo_request(client_ip(i), REMOTE, 1, b"p"),
        ]
    };
    let check_closed = |r: &mut Router| {
        for i in 0..3u8 {
            for packet in traffic(i) {
                let (v, out) = send(r, i, &packet);
                assert_eq!(v, Verdict::Dropped(DropReason::TunnelDown));
                assert!(out.tunnel.is_empty());
                // The client is told at once (network unreachable), on its own port.
                assert!(out.ports.iter().all(|&p| p == PortId(i.into())));
            }
            let (v, out) = send(r, i, &udp((client_ip(i), 4), (VDNS1, 53), &DNS_QUERY));
            assert_eq!(v, Verdict::Answered);
            assert!(
                out.tunnel.is_empty(),
                "DNS is SERVFAIL, never sent in clear"
            );
        }
    };
    check_closed(&mut r);
    up(&mut r);
    for i in 0..3u8 {
        for packet in traffic(i) {
            assert_eq!(send(&mut r, i, &packet).0, Verdict::Forwarded);
        }
    }
    r.set_tunnel(TunnelState::Down);
    check_closed(&mut r);
    up(&mut r);
    r.set_tunnel(TunnelState::Down);
    check_closed(&mut r);
}

#[test]
fn dhcp_on_a_client_port_offers_the_clients_address_only() {
    let mut r = clients(None);
    let discover = |mac: EthernetAddress| {
        let mut f = dhcp_frame(
            DhcpMessageType::Discover,
            Some(Ipv4Address::new(10, 137, 0, 99)),
            None,
        );
        // Same frame from this client's MAC (the DHCP body names HOST_MAC; the lease is per chaddr).
        f[6..12].copy_from_slice(&mac.0);
        f
    };
    for i in 0..3u8 {
        let mut out = Out::default();
        assert_eq!(
            r.handle_lan_frame(PortId(i.into()), t0(), &discover(client_mac(i)), &mut out),
            Verdict::Answered
        );
        let eth = EthernetFrame::new_checked(&out.lan[0][..]).unwrap();
        let p = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(p.src_addr(), QGW);
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        let packet = DhcpPacket::new_checked(u.payload()).unwrap();
        let d = DhcpRepr::parse(&packet).unwrap();
        assert_eq!(d.message_type, DhcpMessageType::Offer);
        assert_eq!(d.your_ip, client_ip(i));
        assert_eq!(d.router, Some(QGW));
    }
}

#[test]
fn a_single_lan_keeps_its_prefix_rule_and_no_firewall() {
    let r = up_router();
    let port = &r.config().ports[0];
    assert_eq!(port.policy, PortPolicy::default());
    assert!(port.policy.firewall.is_none() && port.policy.virtual_dns.is_empty());
}

#[test]
fn set_firewall_applies_to_that_port_only() {
    let mut r = clients(None);
    up(&mut r);
    let fw = firewall(
        Action::Drop,
        &["action=accept proto=tcp dst4=10.9.0.0/24 dstports=80-80"],
    );
    assert!(r.set_firewall(PortId(1), Some(fw)));
    assert!(!r.set_firewall(PortId(9), None));
    assert_eq!(
        send(&mut r, 0, &syn(client_ip(0), BEHIND, 81)).0,
        Verdict::Forwarded
    );
    assert_eq!(
        send(&mut r, 2, &syn(client_ip(2), BEHIND, 81)).0,
        Verdict::Forwarded
    );
    assert_eq!(
        send(&mut r, 1, &syn(client_ip(1), BEHIND, 81)).0,
        Verdict::Dropped(DropReason::Firewall)
    );
    assert_eq!(
        send(&mut r, 1, &syn(client_ip(1), BEHIND, 80)).0,
        Verdict::Forwarded
    );
}

#[test]
fn ports_added_and_removed_at_run_time() {
    let mut r = clients(None);
    up(&mut r);
    let mut p = PortConfig::new(gw_mac(3), Ipv4Cidr::new(QGW, 24));
    p.policy = PortPolicy::client(client_ip(5), None, vec![VDNS1]);
    p.ipv6 = false;
    let id = r.add_port(p.clone()).unwrap();
    assert_eq!(id, PortId(3));
    assert_eq!(
        send(&mut r, 3, &syn(client_ip(5), BEHIND, 80)).0,
        Verdict::Forwarded
    );
    assert_eq!(
        send(&mut r, 3, &syn(client_ip(1), BEHIND, 80)).0,
        Verdict::Dropped(DropReason::Spoofed)
    );
    assert!(r.remove_port(PortId(1)));
    assert!(!r.remove_port(PortId(1)) && !r.has_port(PortId(1)));
    assert_eq!(
        send(&mut r, 1, &syn(client_ip(1), BEHIND, 80)).0,
        Verdict::Dropped(DropReason::UnknownPort)
    );
    // Traffic from the tunnel for the removed client goes nowhere; the slot is reused.
    p.policy = PortPolicy::client(client_ip(6), None, vec![]);
    p.mac = gw_mac(1);
    assert_eq!(r.add_port(p.clone()), Some(PortId(1)));
    assert_eq!(
        send(&mut r, 1, &syn(client_ip(6), BEHIND, 80)).0,
        Verdict::Forwarded
    );
    // Bounded: at most MAX_PORTS.
    while r.add_port(p.clone()).is_some() {}
    assert_eq!(r.config().ports.len(), MAX_PORTS);
    assert!(!r.set_firewall(PortId(u16::MAX), None));
}
