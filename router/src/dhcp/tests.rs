use super::*;
use alloc::vec;

const GW: Ipv4Address = Ipv4Address::new(10, 8, 0, 1);
const MAC_A: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0xa]);
const MAC_B: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0xb]);

fn server(max: usize) -> DhcpServer {
    DhcpServer::new(Ipv4Cidr::new(GW, 24), max, Duration::from_secs(3600))
}

fn msg(
    t: DhcpMessageType,
    mac: EthernetAddress,
    requested: Option<Ipv4Address>,
    ciaddr: Ipv4Address,
    sid: Option<Ipv4Address>,
) -> DhcpRepr<'static> {
    DhcpRepr {
        message_type: t,
        transaction_id: 0x1234_5678,
        secs: 0,
        client_hardware_address: mac,
        client_ip: ciaddr,
        your_ip: Ipv4Address::UNSPECIFIED,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip: requested,
        client_identifier: None,
        server_identifier: sid,
        parameter_request_list: Some(&[1, 3, 6, 51]),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    }
}

fn wire(repr: &DhcpRepr<'_>) -> alloc::vec::Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut buf[..]))
        .unwrap();
    buf
}

#[test]
fn full_exchange_over_the_wire() {
    let mut s = server(16);
    let t0 = Instant::from_secs(0);
    let offer = s
        .handle_payload(
            t0,
            &wire(&msg(
                DhcpMessageType::Discover,
                MAC_A,
                None,
                Ipv4Address::UNSPECIFIED,
                None,
            )),
        )
        .unwrap();
    assert_eq!(offer.message_type, DhcpMessageType::Offer);
    let ip = offer.your_ip;
    assert_eq!(
        ip,
        Ipv4Address::new(10, 8, 0, 2),
        "first pool address, gateway excluded"
    );
    assert_eq!(
        (offer.dst_ip, offer.dst_mac),
        (ip, MAC_A),
        "unicast to yiaddr without the broadcast flag"
    );

    // The emitted OFFER parses back with the options a client needs.
    let mut buf = [0u8; 576];
    let n = s.emit(&offer, Some(GW), &mut buf).unwrap();
    let p = DhcpPacket::new_checked(&buf[..n]).unwrap();
    let r = DhcpRepr::parse(&p).unwrap();
    assert_eq!(r.message_type, DhcpMessageType::Offer);
    assert_eq!(r.your_ip, ip);
    assert_eq!(r.router, Some(GW));
    assert_eq!(r.subnet_mask, Some(Ipv4Address::new(255, 255, 255, 0)));
    assert_eq!(r.server_identifier, Some(GW));
    assert_eq!(r.lease_duration, Some(3600));
    assert_eq!(
        r.dns_servers.as_ref().map(|d| d.as_slice()),
        Some(&[GW][..])
    );
    assert!(p
        .options()
        .any(|o| o.kind == OPT_RENEWAL && o.data == 1800u32.to_be_bytes()));

    let ack = s
        .handle_payload(
            t0,
            &wire(&msg(
                DhcpMessageType::Request,
                MAC_A,
                Some(ip),
                Ipv4Address::UNSPECIFIED,
                Some(GW),
            )),
        )
        .unwrap();
    assert_eq!((ack.message_type, ack.your_ip), (DhcpMessageType::Ack, ip));

    // Another client gets another address; asking for A's address is refused.
    let offer_b = s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Discover,
                MAC_B,
                Some(ip),
                Ipv4Address::UNSPECIFIED,
                None,
            ),
        )
        .unwrap();
    assert_ne!(offer_b.your_ip, ip);
    let nak = s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Request,
                MAC_B,
                Some(ip),
                Ipv4Address::UNSPECIFIED,
                Some(GW),
            ),
        )
        .unwrap();
    assert_eq!(nak.message_type, DhcpMessageType::Nak);
    assert_eq!(nak.dst_ip, Ipv4Address::BROADCAST);

    // Renewal (ciaddr set) is ACKed by unicast to ciaddr.
    let renew = s
        .handle(
            t0 + Duration::from_secs(1800),
            &msg(DhcpMessageType::Request, MAC_A, None, ip, None),
        )
        .unwrap();
    assert_eq!(
        (renew.message_type, renew.dst_ip),
        (DhcpMessageType::Ack, ip)
    );

    // Release frees the address for others.
    assert!(s
        .handle(
            t0,
            &msg(DhcpMessageType::Release, MAC_A, None, ip, Some(GW))
        )
        .is_none());
    let ack_b = s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Request,
                MAC_B,
                Some(ip),
                Ipv4Address::UNSPECIFIED,
                Some(GW),
            ),
        )
        .unwrap();
    assert_eq!(ack_b.message_type, DhcpMessageType::Ack);

    // Requests for an address outside the LAN get a NAK.
    let nak = s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Request,
                MAC_A,
                Some(Ipv4Address::new(192, 168, 1, 5)),
                Ipv4Address::UNSPECIFIED,
                None,
            ),
        )
        .unwrap();
    assert_eq!(nak.message_type, DhcpMessageType::Nak);
    // A request for another server is not answered.
    assert!(s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Request,
                MAC_A,
                Some(ip),
                Ipv4Address::UNSPECIFIED,
                Some(Ipv4Address::new(10, 8, 0, 99))
            )
        )
        .is_none());
}

#[test]
fn table_is_bounded_and_leases_expire() {
    let mut s = server(3);
    let t0 = Instant::from_secs(0);
    for i in 0..10u8 {
        let mac = EthernetAddress([2, 0, 0, 0, 1, i]);
        let _ = s.handle(
            t0,
            &msg(
                DhcpMessageType::Discover,
                mac,
                None,
                Ipv4Address::UNSPECIFIED,
                None,
            ),
        );
        assert!(s.lease_count() <= 3);
    }
    assert!(s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Discover,
                MAC_A,
                None,
                Ipv4Address::UNSPECIFIED,
                None
            )
        )
        .is_none());
    // Offers lapse after OFFER_HOLD; the pool is usable again.
    s.expire(t0 + OFFER_HOLD);
    assert_eq!(s.lease_count(), 0);
    assert!(s
        .handle(
            t0 + OFFER_HOLD,
            &msg(
                DhcpMessageType::Discover,
                MAC_A,
                None,
                Ipv4Address::UNSPECIFIED,
                None
            )
        )
        .is_some());
}

#[test]
fn declined_address_is_skipped() {
    let mut s = server(8);
    let t0 = Instant::from_secs(0);
    let offer = s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Discover,
                MAC_A,
                None,
                Ipv4Address::UNSPECIFIED,
                None,
            ),
        )
        .unwrap();
    s.handle(
        t0,
        &msg(
            DhcpMessageType::Request,
            MAC_A,
            Some(offer.your_ip),
            Ipv4Address::UNSPECIFIED,
            Some(GW),
        ),
    )
    .unwrap();
    s.handle(
        t0,
        &msg(
            DhcpMessageType::Decline,
            MAC_A,
            Some(offer.your_ip),
            Ipv4Address::UNSPECIFIED,
            Some(GW),
        ),
    );
    let again = s
        .handle(
            t0,
            &msg(
                DhcpMessageType::Discover,
                MAC_A,
                None,
                Ipv4Address::UNSPECIFIED,
                None,
            ),
        )
        .unwrap();
    assert_ne!(again.your_ip, offer.your_ip);
}

#[test]
fn tiny_prefix_has_no_pool() {
    let mut s = DhcpServer::new(Ipv4Cidr::new(GW, 31), 8, Duration::from_secs(3600));
    assert!(s
        .handle(
            Instant::ZERO,
            &msg(
                DhcpMessageType::Discover,
                MAC_A,
                None,
                Ipv4Address::UNSPECIFIED,
                None
            )
        )
        .is_none());
    assert!(s.handle_payload(Instant::ZERO, &[0u8; 300]).is_none());
    assert!(s.handle_payload(Instant::ZERO, &[]).is_none());
}
