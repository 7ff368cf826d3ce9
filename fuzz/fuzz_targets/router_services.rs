//! The router's services and NAT with the fuzzer's bytes *inside* valid frames. Random frames rarely pass
//! the IPv4/UDP/ICMP checksums, so `router_frame` seldom reaches the DHCP server, the DNS forwarder or the
//! NAT's ICMP error translation; here the harness builds correct Ethernet/IPv4/UDP/ICMP around the input.
//! Records `[kind, len_hi, len_lo, bytes...]`:
//!   0  a DHCP message from a LAN host (UDP 68 -> 67, broadcast), the bytes as the BOOTP payload
//!   1  a DNS query from a LAN host to the gateway (UDP 53), the bytes as the DNS message
//!   2  a DNS answer from the tunnel's DNS server to the last query the router forwarded (addresses and
//!      ports swapped; the first two bytes become the query's id unless the record's first byte is odd)
//!   3  an ICMP error from the tunnel quoting the last packet the router sent into the tunnel (type and
//!      code from the first two bytes)
//!   4  an IPv4 packet from a LAN host with fuzzed identification, flags/fragment offset and protocol
//!      (bytes 0..5) and payload: fragments and reassembly, valid header checksum
//!   5  the same from the tunnel towards the tunnel address (NAT lookups, reassembly)
//!   6  a UDP datagram from a LAN host to a public address (a NAT mapping), ports from bytes 0..4
//!   7  time passes: `hi` * 256 + `lo` ms, no payload (lease and NAT expiry, DNS timeouts)
//! Nothing may panic; every emitted frame or packet must fit the LAN and tunnel MTUs.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use router::{PortId, 
    Duration, EthernetAddress, Instant, Ipv4Address, Ipv4Cidr, Router, RouterConfig, Sink,
    TunnelConfig, TunnelState,
};

const MTU: u16 = 1400;
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x42];
const HOST: [u8; 4] = [10, 8, 0, 50];
const GATEWAY: [u8; 4] = [10, 8, 0, 1];
const TUNNEL_ADDR: [u8; 4] = [10, 200, 0, 2];
const TUNNEL_DNS: [u8; 4] = [10, 200, 0, 1];

/// Checks sizes and remembers the last packet sent into the tunnel (and the last UDP one).
#[derive(Default)]
struct Out {
    last_tunnel: Vec<u8>,
    last_udp_to_tunnel: Vec<u8>,
}

impl Sink for Out {
    fn lan_frame(&mut self, _port: PortId, frame: &[u8]) {
        assert!(
            frame.len() >= 14 && frame.len() <= 14 + 1500,
            "LAN frame of {} bytes",
            frame.len()
        );
    }
    fn tunnel_packet(&mut self, packet: &[u8]) {
        assert!(
            !packet.is_empty() && packet.len() <= usize::from(MTU),
            "tunnel packet of {} bytes",
            packet.len()
        );
        self.last_tunnel = packet.to_vec();
        if packet.get(9) == Some(&17) {
            self.last_udp_to_tunnel = packet.to_vec();
        }
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet with a correct header checksum; `None` if it would not fit 16 bits of length.
fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    frag: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let total = u16::try_from(20 + payload.len()).ok()?;
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend(id.to_be_bytes());
    p.extend(frag.to_be_bytes());
    p.extend([64, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    Some(p)
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, body: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(8 + body.len()).ok()?;
    let mut seg = Vec::with_capacity(8 + body.len());
    seg.extend(sport.to_be_bytes());
    seg.extend(dport.to_be_bytes());
    seg.extend(len.to_be_bytes());
    seg.extend([0, 0]);
    seg.extend_from_slice(body);
    let mut pseudo = Vec::with_capacity(12 + seg.len());
    pseudo.extend(src);
    pseudo.extend(dst);
    pseudo.extend([0, 17]);
    pseudo.extend(len.to_be_bytes());
    pseudo.extend_from_slice(&seg);
    let c = match checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 17, 1, 0, &seg)
}

fn eth(dst: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend(dst);
    f.extend(HOST_MAC);
    f.extend(0x0800u16.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([
        b.get(at).copied().unwrap_or(0),
        b.get(at + 1).copied().unwrap_or(0),
    ])
}

fuzz_target!(|data: &[u8]| {
    let mut config = RouterConfig::new(
        EthernetAddress(ROUTER_MAC),
        Ipv4Cidr::new(Ipv4Address::new(10, 8, 0, 1), 24),
    );
    config.nat_table_size = 64;
    config.ports[0].dhcp_max_leases = 16;
    config.dns_max_in_flight = 8;
    config.nat = data.first().is_none_or(|b| b & 1 == 0);
    let mut router = Router::new(config, &mut ChaCha20Rng::from_seed([5; 32]));
    let mut tunnel = TunnelConfig::new(Ipv4Cidr::new(Ipv4Address::new(10, 200, 0, 2), 24));
    tunnel.redirect_gateway = true;
    tunnel.mtu = MTU;
    tunnel
        .dns_servers
        .push(IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1)));
    router.set_tunnel(TunnelState::Up(tunnel));
    let mut out = Out::default();
    let mut now = Instant::from_secs(1);
    let mut rest = data.get(1..).unwrap_or(&[]);
    while let [kind, hi, lo, tail @ ..] = rest {
        if kind % 8 == 7 {
            now += Duration::from_millis(u64::from(*hi) * 256 + u64::from(*lo));
            router.tick(now, &mut out);
            rest = tail;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo]))
            .min(tail.len())
            .min(1480);
        let (b, next) = tail.split_at(len);
        rest = next;
        match kind % 8 {
            0 => {
                if let Some(p) = udp([0; 4], [255; 4], 68, 67, b) {
                    router.handle_lan_frame(PortId::FIRST, now, &eth([0xff; 6], &p), &mut out);
                }
            }
            1 => {
                if let Some(p) = udp(HOST, GATEWAY, 40000 + u16::from(*kind), 53, b) {
                    router.handle_lan_frame(PortId::FIRST, now, &eth(ROUTER_MAC, &p), &mut out);
                }
            }
            2 => {
                let q = out.last_udp_to_tunnel.clone();
                let (sport, dport) = (be16(&q, 20), be16(&q, 22));
                let mut answer = b.to_vec();
                if b.first().is_some_and(|x| x & 1 == 0) && answer.len() >= 2 && q.len() >= 30 {
                    answer[..2].copy_from_slice(&q[28..30]);
                }
                let src = q
                    .get(16..20)
                    .and_then(|d| <[u8; 4]>::try_from(d).ok())
                    .unwrap_or(TUNNEL_DNS);
                if let Some(p) = udp(src, TUNNEL_ADDR, dport, sport, &answer) {
                    router.handle_tunnel_packet(now, &p, &mut out);
                }
            }
            3 => {
                let quoted = out
                    .last_tunnel
                    .get(..out.last_tunnel.len().min(28 + 64))
                    .unwrap_or(&[])
                    .to_vec();
                let mut icmp = vec![
                    b.first().copied().unwrap_or(3),
                    b.get(1).copied().unwrap_or(1),
                    0,
                    0,
                ];
                icmp.extend(b.get(2..6).unwrap_or(&[0, 0, 0x05, 0x78]));
                icmp.extend(quoted);
                let c = checksum(&icmp);
                icmp[2..4].copy_from_slice(&c.to_be_bytes());
                let src = out
                    .last_tunnel
                    .get(16..20)
                    .and_then(|d| <[u8; 4]>::try_from(d).ok())
                    .unwrap_or([8, 8, 8, 8]);
                if let Some(p) = ipv4(src, TUNNEL_ADDR, 1, 7, 0, &icmp) {
                    router.handle_tunnel_packet(now, &p, &mut out);
                }
            }
            4 | 5 => {
                let (id, frag, proto) = (be16(b, 0), be16(b, 2), b.get(4).copied().unwrap_or(17));
                let payload = b.get(5..).unwrap_or(&[]);
                if *kind % 8 == 4 {
                    if let Some(p) = ipv4(HOST, [1, 1, 1, 1], proto, id, frag, payload) {
                        router.handle_lan_frame(PortId::FIRST, now, &eth(ROUTER_MAC, &p), &mut out);
                    }
                } else if let Some(p) = ipv4([1, 1, 1, 1], TUNNEL_ADDR, proto, id, frag, payload) {
                    router.handle_tunnel_packet(now, &p, &mut out);
                }
            }
            _ => {
                let dst = [9, 9, b.first().copied().unwrap_or(9), 9];
                if let Some(p) = udp(HOST, dst, be16(b, 0), be16(b, 2), b.get(4..).unwrap_or(&[])) {
                    router.handle_lan_frame(PortId::FIRST, now, &eth(ROUTER_MAC, &p), &mut out);
                }
            }
        }
    }
    let _ = (
        router.poll_at(),
        router.stats(),
        router.nat_mappings(),
        router.dhcp_leases(),
    );
});
