use super::*;
use crate::ip;
use crate::testutil::{checksums_ok, echo_request, icmp, tcp, udp};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoltcp::wire::{Icmpv4Repr, Icmpv4TimeExceeded, Ipv4Packet, Ipv4Repr, TcpControl};

const LAN: Ipv4Address = Ipv4Address::new(10, 8, 0, 20);
const PUBLIC: Ipv4Address = Ipv4Address::new(10, 200, 0, 2);
const REMOTE: Ipv4Address = Ipv4Address::new(93, 184, 216, 34);

fn out(t: &mut NatTable, now: Instant, p: &mut [u8], rng: &mut ChaCha8Rng) -> Result<(), NatError> {
    let info = ip::parse(p).unwrap();
    t.outbound(now, p, &info, PUBLIC, rng)
}

fn inb(t: &mut NatTable, now: Instant, p: &mut [u8]) -> Result<Ipv4Address, NatError> {
    let info = ip::parse(p).unwrap();
    t.inbound(now, p, &info)
}

fn ports(p: &[u8]) -> (u16, u16) {
    let ip = Ipv4Packet::new_checked(p).unwrap();
    let l4 = ip.payload();
    (
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
    )
}

#[test]
fn udp_round_trip_and_filtering() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut t = NatTable::new(16, 7);
    let now = Instant::from_secs(10);
    let mut q = udp((LAN, 5353), (REMOTE, 53), b"query");
    out(&mut t, now, &mut q, &mut rng).unwrap();
    let p = Ipv4Packet::new_checked(&q[..]).unwrap();
    assert_eq!(p.src_addr(), PUBLIC);
    let (public_port, _) = ports(&q);
    assert!((PORT_FIRST..=PORT_LAST).contains(&public_port));
    assert!(checksums_ok(&q));

    let mut r = udp((REMOTE, 53), (PUBLIC, public_port), b"answer");
    assert_eq!(inb(&mut t, now, &mut r), Ok(LAN));
    assert_eq!(ports(&r), (53, 5353));
    assert!(checksums_ok(&r));

    let mut stranger = udp(
        (Ipv4Address::new(6, 6, 6, 6), 53),
        (PUBLIC, public_port),
        b"spoof",
    );
    assert_eq!(inb(&mut t, now, &mut stranger), Err(NatError::NoMapping));
    // Same flow again keeps its port.
    let mut q2 = udp((LAN, 5353), (REMOTE, 53), b"query2");
    out(&mut t, now, &mut q2, &mut rng).unwrap();
    assert_eq!(ports(&q2).0, public_port);
    // A replied UDP flow lives 120 s, then expires.
    t.expire(now + UDP_STREAM_TIMEOUT + Duration::from_secs(1));
    assert_eq!(t.len(), 0);
    let mut late = udp((REMOTE, 53), (PUBLIC, public_port), b"late");
    assert_eq!(
        inb(
            &mut t,
            now + UDP_STREAM_TIMEOUT + Duration::from_secs(1),
            &mut late
        ),
        Err(NatError::NoMapping)
    );
}

#[test]
fn tcp_states_pick_timeouts() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut t = NatTable::new(16, 7);
    let t0 = Instant::from_secs(0);
    let mut syn = tcp(
        (LAN, 40000),
        (REMOTE, 443),
        TcpControl::Syn,
        false,
        Some(1460),
    );
    out(&mut t, t0, &mut syn, &mut rng).unwrap();
    assert!(checksums_ok(&syn));
    let public_port = ports(&syn).0;
    let mut synack = tcp(
        (REMOTE, 443),
        (PUBLIC, public_port),
        TcpControl::Syn,
        true,
        Some(1460),
    );
    assert_eq!(inb(&mut t, t0, &mut synack), Ok(LAN));
    assert!(checksums_ok(&synack));
    // Established: still there after an hour of silence.
    let hour = t0 + Duration::from_secs(3600);
    t.expire(hour);
    assert_eq!(t.len(), 1);
    let mut rst = tcp(
        (REMOTE, 443),
        (PUBLIC, public_port),
        TcpControl::Rst,
        true,
        None,
    );
    assert_eq!(inb(&mut t, hour, &mut rst), Ok(LAN));
    t.expire(hour + TCP_RESET_TIMEOUT);
    assert_eq!(t.len(), 0, "a reset flow goes after 10 s");
}

#[test]
fn icmp_echo_and_quoted_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut t = NatTable::new(16, 7);
    let now = Instant::from_secs(0);
    let mut ping = echo_request(LAN, REMOTE, 0x0101, b"abcdefgh");
    out(&mut t, now, &mut ping, &mut rng).unwrap();
    assert!(checksums_ok(&ping));
    let id = {
        let p = Ipv4Packet::new_checked(&ping[..]).unwrap();
        u16::from_be_bytes([p.payload()[4], p.payload()[5]])
    };
    let mut pong = icmp(
        REMOTE,
        PUBLIC,
        &Icmpv4Repr::EchoReply {
            ident: id,
            seq_no: 1,
            data: b"abcdefgh",
        },
    );
    assert_eq!(inb(&mut t, now, &mut pong), Ok(LAN));
    assert!(checksums_ok(&pong));
    let p = Ipv4Packet::new_checked(&pong[..]).unwrap();
    assert_eq!(u16::from_be_bytes([p.payload()[4], p.payload()[5]]), 0x0101);

    // A router on the way reports TTL exceeded about our translated UDP packet.
    let mut q = udp((LAN, 5000), (REMOTE, 33434), b"trace");
    out(&mut t, now, &mut q, &mut rng).unwrap();
    let translated = q.clone();
    let hop = Ipv4Address::new(172, 16, 0, 1);
    let info = ip::parse(&translated).unwrap();
    let header = Ipv4Repr {
        src_addr: info.src,
        dst_addr: info.dst,
        next_header: IpProtocol::Udp,
        payload_len: info.total_len - 20,
        hop_limit: 1,
    };
    let mut err = icmp(
        hop,
        PUBLIC,
        &Icmpv4Repr::TimeExceeded {
            reason: Icmpv4TimeExceeded::TtlExpired,
            header,
            data: &translated[20..28],
        },
    );
    assert_eq!(inb(&mut t, now, &mut err), Ok(LAN));
    assert!(checksums_ok(&err));
    let p = Ipv4Packet::new_checked(&err[..]).unwrap();
    let quoted = &p.payload()[8..];
    assert_eq!(&quoted[12..16], &LAN.octets(), "quoted source restored");
    assert_eq!(
        u16::from_be_bytes([quoted[20], quoted[21]]),
        5000,
        "quoted source port restored"
    );
    assert_eq!(
        crate::checksum::internet(&quoted[..20]),
        0,
        "quoted header checksum fixed"
    );
}

#[test]
fn full_table_evicts_the_least_recently_used_flow() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut t = NatTable::new(3, 7);
    let mut ports_of = alloc::vec::Vec::new();
    for (i, sport) in [1001u16, 1002, 1003].into_iter().enumerate() {
        let mut p = udp((LAN, sport), (REMOTE, 53), b"q");
        out(&mut t, Instant::from_secs(i as i64), &mut p, &mut rng).unwrap();
        ports_of.push(ports(&p).0);
    }
    // Flow 1001 is used again, so 1002 is now the least recently used.
    let mut again = udp((LAN, 1001), (REMOTE, 53), b"q");
    out(&mut t, Instant::from_secs(5), &mut again, &mut rng).unwrap();
    let mut newcomer = udp((LAN, 1004), (REMOTE, 53), b"q");
    out(&mut t, Instant::from_secs(6), &mut newcomer, &mut rng).unwrap();
    assert_eq!(t.len(), 3);
    let now = Instant::from_secs(6);
    let mut r = udp((REMOTE, 53), (PUBLIC, ports_of[1]), b"a");
    assert_eq!(
        inb(&mut t, now, &mut r),
        Err(NatError::NoMapping),
        "the LRU flow was evicted"
    );
    for &port in [ports_of[0], ports_of[2], ports(&newcomer).0].iter() {
        let mut r = udp((REMOTE, 53), (PUBLIC, port), b"a");
        assert_eq!(inb(&mut t, now, &mut r), Ok(LAN));
    }
    t.check_invariants();
}

#[test]
fn unsupported_and_truncated() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut t = NatTable::new(4, 7);
    let now = Instant::from_secs(0);
    let mut gre = crate::testutil::ipv4(LAN, REMOTE, IpProtocol::Unknown(47), 64, &[0; 8]);
    assert_eq!(
        out(&mut t, now, &mut gre, &mut rng),
        Err(NatError::UnsupportedProtocol)
    );
    let mut short = crate::testutil::ipv4(LAN, REMOTE, IpProtocol::Tcp, 64, &[0; 10]);
    assert_eq!(
        out(&mut t, now, &mut short, &mut rng),
        Err(NatError::Truncated)
    );
}

/// Property: under a random mix of outbound flows, replies, spoofed replies and time passing, the table
/// never exceeds its capacity, both indexes stay consistent, public ports stay unique, and every accepted
/// reply maps back to the flow that created the mapping.
#[test]
fn table_bounded_and_consistent_under_random_traffic() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut nat_rng = ChaCha8Rng::seed_from_u64(0xface);
    let mut t = NatTable::new(32, 99);
    let mut now = Instant::from_secs(0);
    // (private host, private port, remote, remote port, proto) -> last public port seen.
    let mut recent: Vec<(Ipv4Address, u16, Ipv4Address, u16, bool, u16)> = Vec::new();
    for step in 0..20_000u32 {
        let r = rng.next_u32();
        match r % 10 {
            0..=5 => {
                let host = Ipv4Address::new(10, 8, 0, 2 + (rng.next_u32() % 8) as u8);
                let sport = 1000 + (rng.next_u32() % 20) as u16;
                let remote = Ipv4Address::new(1, 1, 1, 1 + (rng.next_u32() % 4) as u8);
                let dport = 50 + (rng.next_u32() % 3) as u16;
                let is_tcp = rng.next_u32() % 2 == 0;
                let mut p = if is_tcp {
                    tcp(
                        (host, sport),
                        (remote, dport),
                        TcpControl::Syn,
                        false,
                        Some(1460),
                    )
                } else {
                    udp((host, sport), (remote, dport), b"x")
                };
                out(&mut t, now, &mut p, &mut nat_rng).unwrap();
                assert!(checksums_ok(&p));
                let public_port = ports(&p).0;
                recent.push((host, sport, remote, dport, is_tcp, public_port));
                if recent.len() > 64 {
                    recent.remove(0);
                }
            }
            6..=7 => {
                if let Some(&(host, sport, remote, dport, is_tcp, public_port)) =
                    recent.get((rng.next_u32() as usize) % recent.len().max(1))
                {
                    let mut reply = if is_tcp {
                        tcp(
                            (remote, dport),
                            (PUBLIC, public_port),
                            TcpControl::None,
                            true,
                            None,
                        )
                    } else {
                        udp((remote, dport), (PUBLIC, public_port), b"y")
                    };
                    if let Ok(dst) = inb(&mut t, now, &mut reply) {
                        assert_eq!(dst, host);
                        assert_eq!(
                            ports(&reply).1,
                            sport,
                            "reply maps back to the flow's private port"
                        );
                        assert!(checksums_ok(&reply));
                    }
                }
            }
            8 => {
                let mut spoof = udp(
                    (Ipv4Address::new(9, 9, 9, 9), 53),
                    (PUBLIC, PORT_FIRST + (r % 2000) as u16),
                    b"z",
                );
                assert_eq!(inb(&mut t, now, &mut spoof), Err(NatError::NoMapping));
            }
            _ => {
                now += Duration::from_secs(u64::from(rng.next_u32() % 20));
                t.expire(now);
            }
        }
        if step % 50 == 0 {
            t.check_invariants();
        }
        assert!(t.len() <= 32);
    }
    t.check_invariants();
}
