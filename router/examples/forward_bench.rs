//! Forwarding throughput of the router alone (no crypto, no devices): NAT + TTL + checksum updates for
//! 1400-byte UDP datagrams LAN -> tunnel and back, through the copying and the in-place entry points. Run with
//! `cargo run --release -p router --example forward_bench`.

use std::time::Instant as WallClock;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use router::{
    EthernetAddress, Instant, Ipv4Address, Ipv4Cidr, PortId, Router, RouterConfig, Sink,
    TunnelConfig, TunnelState,
};

/// Keeps the last output so the work cannot be optimised away, counting bytes.
#[derive(Default)]
struct Counter {
    lan_bytes: usize,
    tunnel_bytes: usize,
    last_tunnel: Vec<u8>,
}

impl Sink for Counter {
    fn lan_frame(&mut self, _port: PortId, frame: &[u8]) {
        self.lan_bytes += frame.len();
    }
    fn tunnel_packet(&mut self, packet: &[u8]) {
        self.tunnel_bytes += packet.len();
        self.last_tunnel.clear();
        self.last_tunnel.extend_from_slice(packet);
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum >> 16) + (sum & 0xffff);
    }
    !(sum as u16)
}

fn udp_packet(
    src: Ipv4Address,
    sport: u16,
    dst: Ipv4Address,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let total = 28 + payload_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    p
}

fn main() {
    let gw_mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
    let host_mac = EthernetAddress([2, 0, 0, 0, 0, 2]);
    let host = Ipv4Address::new(10, 8, 0, 50);
    let tun = Ipv4Address::new(10, 200, 0, 2);
    let remote = Ipv4Address::new(93, 184, 216, 34);
    let mut router = Router::new(
        RouterConfig::new(gw_mac, Ipv4Cidr::new(Ipv4Address::new(10, 8, 0, 1), 24)),
        &mut ChaCha20Rng::from_seed([1; 32]),
    );
    let mut t = TunnelConfig::new(Ipv4Cidr::new(tun, 24));
    t.redirect_gateway = true;
    router.set_tunnel(TunnelState::Up(t));
    let mut out = Counter::default();
    let now = Instant::from_secs(1);

    // Make the host known to ARP (it asks for the gateway).
    let mut arp = vec![0u8; 42];
    arp[0..6].copy_from_slice(&[0xff; 6]);
    arp[6..12].copy_from_slice(&host_mac.0);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    arp[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp[22..28].copy_from_slice(&host_mac.0);
    arp[28..32].copy_from_slice(&host.octets());
    arp[38..42].copy_from_slice(&Ipv4Address::new(10, 8, 0, 1).octets());
    router.handle_lan_frame(PortId::FIRST, now, &arp, &mut out);

    let mut frame = vec![0u8; 14];
    frame[0..6].copy_from_slice(&gw_mac.0);
    frame[6..12].copy_from_slice(&host_mac.0);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&udp_packet(host, 40000, remote, 5201, 1372));
    router.handle_lan_frame(PortId::FIRST, now, &frame, &mut out);
    let public_port = u16::from_be_bytes([out.last_tunnel[20], out.last_tunnel[21]]);
    let reply = udp_packet(remote, 5201, tun, public_port, 1372);

    let rounds = 2_000_000u32;
    let start = WallClock::now();
    for _ in 0..rounds {
        router.handle_lan_frame(PortId::FIRST, now, &frame, &mut out);
    }
    let up = start.elapsed();
    let start = WallClock::now();
    for _ in 0..rounds {
        router.handle_tunnel_packet(now, &reply, &mut out);
    }
    let down = start.elapsed();
    // The in-place entry points the image uses: the frame rewritten where it lies (a fresh copy of the
    // frame each time, as a NIC's receive buffer would hold), the tunnel packet behind 14 free bytes.
    let mut buf = frame.clone();
    let start = WallClock::now();
    for _ in 0..rounds {
        buf.copy_from_slice(&frame);
        router.handle_lan_frame_in_place(PortId::FIRST, now, &mut buf, &mut out);
    }
    let up_in_place = start.elapsed();
    let mut framed = vec![0u8; 14 + reply.len()];
    let start = WallClock::now();
    for _ in 0..rounds {
        framed[14..].copy_from_slice(&reply);
        let end = framed.len();
        router.handle_tunnel_packet_in_place(now, &mut framed, 14..end, &mut out);
    }
    let down_in_place = start.elapsed();
    let stats = router.stats();
    assert_eq!(stats.dropped, 0, "benchmark traffic must all be forwarded");
    for (name, d) in [
        ("LAN -> tunnel", up),
        ("tunnel -> LAN", down),
        ("LAN -> tunnel, in place", up_in_place),
        ("tunnel -> LAN, in place", down_in_place),
    ] {
        let pps = f64::from(rounds) / d.as_secs_f64();
        println!(
            "{name}: {:.2} Mpps, {:.1} Gbit/s of 1400-byte packets ({:.0} ns/packet)",
            pps / 1e6,
            pps * 1400.0 * 8.0 / 1e9,
            d.as_nanos() as f64 / f64::from(rounds),
        );
    }
    println!(
        "{} MB into the tunnel, {} MB onto the LAN",
        out.tunnel_bytes / 1_000_000,
        out.lan_bytes / 1_000_000
    );
}
