//! Hostile LAN hosts and a hostile tunnel against the router's state: DHCP DISCOVERs from random MACs,
//! ARP from random addresses, UDP and TCP flows to random destinations (NAT), DNS queries with random ids,
//! IPv4 first fragments that never complete, packets from the tunnel to LAN hosts nobody answers ARP for,
//! and garbage frames. Every table has a configured bound; this proves they hold together: a counting
//! global allocator measures the router's live heap once the tables are full and again after 150 000 more
//! hostile frames, and the high-water mark in between.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use router::{
    Duration, EthernetAddress, Instant, Ipv4Address, Ipv4Cidr, PortId, Router, RouterConfig, Sink,
    TunnelConfig, TunnelState,
};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn size(bytes: usize) -> isize {
    isize::try_from(bytes).unwrap_or(isize::MAX)
}

// SAFETY: forwards every call unchanged to the system allocator; the counters are const-initialised
// thread-local Cells, whose access never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(size(new_size) - size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Counts what the router emits (and checks its sizes).
#[derive(Default)]
struct Counter {
    lan: u64,
    tunnel: u64,
}

impl Sink for Counter {
    fn lan_frame(&mut self, _port: PortId, frame: &[u8]) {
        assert!(
            frame.len() >= 14 && frame.len() <= 1514,
            "LAN frame of {} bytes",
            frame.len()
        );
        self.lan += 1;
    }
    fn tunnel_packet(&mut self, packet: &[u8]) {
        assert!(
            !packet.is_empty() && packet.len() <= 1400,
            "tunnel packet of {} bytes",
            packet.len()
        );
        self.tunnel += 1;
    }
}

const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const TUNNEL_ADDR: [u8; 4] = [10, 200, 0, 2];

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

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8], id: u16, frag: u16) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("small packet");
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
    p
}

/// A transport segment (`header` with a zero checksum at `csum_at`, then `body`) with its checksum.
fn l4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    mut header: Vec<u8>,
    csum_at: usize,
    body: &[u8],
) -> Vec<u8> {
    header.extend_from_slice(body);
    let len = u16::try_from(header.len()).expect("small segment");
    let mut pseudo = Vec::with_capacity(12 + header.len());
    pseudo.extend(src);
    pseudo.extend(dst);
    pseudo.extend([0, proto]);
    pseudo.extend(len.to_be_bytes());
    pseudo.extend_from_slice(&header);
    let mut c = checksum(&pseudo);
    if c == 0 && proto == 17 {
        c = 0xffff;
    }
    header[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, proto, &header, 1, 0)
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(sport.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h.extend(u16::try_from(8 + body.len()).expect("small").to_be_bytes());
    h.extend([0, 0]);
    l4(src, dst, 17, h, 6, body)
}

fn tcp_syn(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(sport.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    l4(src, dst, 6, h, 16, &[])
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend(dst);
    f.extend(src);
    f.extend(ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn dhcp_discover(mac: [u8; 6], xid: u32) -> Vec<u8> {
    let mut b = vec![1, 1, 6, 0];
    b.extend(xid.to_be_bytes());
    b.extend([0, 0, 0x80, 0]);
    b.extend([0u8; 16]);
    b.extend(mac);
    b.extend([0u8; 10 + 192]);
    b.extend([99, 130, 83, 99, 53, 1, 1, 255]);
    eth([0xff; 6], mac, 0x0800, &udp([0; 4], [255; 4], 68, 67, &b))
}

fn dns_query(id: u16, label: u32) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend(id.to_be_bytes());
    q.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let name = format!("h{label:08x}");
    q.push(u8::try_from(name.len()).expect("short"));
    q.extend(name.as_bytes());
    q.extend([3, b'c', b'o', b'm', 0, 0, 1, 0, 1]);
    q
}

/// One hostile event: a LAN frame, a tunnel packet, or nothing (garbage that parses as nothing).
enum Event {
    Lan(Vec<u8>),
    Tunnel(Vec<u8>),
}

fn hostile(i: u64, rng: &mut ChaCha20Rng) -> Event {
    let r = rng.next_u32();
    let mut mac = [2u8, 0x11, 0, 0, 0, 0];
    mac[2..].copy_from_slice(&rng.next_u32().to_be_bytes());
    let host = [10, 8, 0, 2 + u8::try_from(r % 250).unwrap_or(0)];
    let public = rng.next_u32().to_be_bytes();
    let port = u16::try_from(r >> 16).unwrap_or(0) | 1024;
    match i % 10 {
        0 => Event::Lan(dhcp_discover(mac, r)),
        1 => {
            let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1 + u8::from(r & 1 == 1)];
            arp.extend(mac);
            arp.extend(host);
            arp.extend([0u8; 6]);
            arp.extend([10, 8, 0, 1]);
            Event::Lan(eth([0xff; 6], mac, 0x0806, &arp))
        }
        2 => Event::Lan(eth(
            ROUTER_MAC,
            mac,
            0x0800,
            &udp(host, public, port, 53, b"flood"),
        )),
        3 => Event::Lan(eth(
            ROUTER_MAC,
            mac,
            0x0800,
            &tcp_syn(host, public, port, 443),
        )),
        4 => {
            let q = dns_query(u16::try_from(r & 0xffff).unwrap_or(0), rng.next_u32());
            Event::Lan(eth(
                ROUTER_MAC,
                mac,
                0x0800,
                &udp(host, [10, 8, 0, 1], port, 53, &q),
            ))
        }
        5 => {
            // A first fragment (MF set) of a datagram whose rest never comes, from either side.
            let id = u16::try_from(r & 0xffff).unwrap_or(0);
            let body = vec![0x5a; 1000];
            if r & 0x100 == 0 {
                Event::Lan(eth(
                    ROUTER_MAC,
                    mac,
                    0x0800,
                    &ipv4(host, public, 17, &body, id, 0x2000),
                ))
            } else {
                Event::Tunnel(ipv4(public, TUNNEL_ADDR, 17, &body, id, 0x2000))
            }
        }
        // From the tunnel: to random NAT ports (misses), and routed to LAN hosts that never answer ARP.
        6 => Event::Tunnel(udp(public, TUNNEL_ADDR, 53, port, b"reply?")),
        7 => Event::Tunnel(udp(public, host, 53, port, b"to a silent LAN host")),
        8 => {
            let mut junk = vec![0u8; usize::try_from(r % 1514).unwrap_or(0)];
            rng.fill_bytes(&mut junk);
            Event::Lan(junk)
        }
        _ => {
            let mut junk = vec![0u8; usize::try_from(r % 1400).unwrap_or(0)];
            rng.fill_bytes(&mut junk);
            if let Some(b) = junk.first_mut() {
                *b = 0x45;
            }
            Event::Tunnel(junk)
        }
    }
}

fn run(nat: bool) {
    let mut config = RouterConfig::new(
        EthernetAddress(ROUTER_MAC),
        Ipv4Cidr::new(Ipv4Address::new(10, 8, 0, 1), 24),
    );
    config.nat = nat;
    let mut router = Router::new(config, &mut ChaCha20Rng::from_seed([7; 32]));
    let mut tunnel = TunnelConfig::new(Ipv4Cidr::new(Ipv4Address::new(10, 200, 0, 2), 24));
    tunnel.redirect_gateway = true;
    tunnel.mtu = 1400;
    tunnel
        .dns_servers
        .push(IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1)));
    router.set_tunnel(TunnelState::Up(tunnel));
    let mut out = Counter::default();
    let mut rng = ChaCha20Rng::from_seed([0xba; 32]);
    let mut now = Instant::from_secs(1);
    let mut feed = |router: &mut Router, out: &mut Counter, n: u64, now: &mut Instant| {
        for i in 0..n {
            match hostile(i, &mut rng) {
                Event::Lan(f) => {
                    let _ = router.handle_lan_frame(PortId::FIRST, *now, &f, out);
                }
                Event::Tunnel(p) => {
                    let _ = router.handle_tunnel_packet(*now, &p, out);
                }
            }
            // 100 µs per frame: 10 000 frames per second, with timers running.
            *now += Duration::from_micros(100);
            if i % 64 == 0 {
                router.tick(*now, out);
            }
        }
    };
    // Warm-up: 150 000 frames fill every table (NAT 2048, leases 253, ARP 256, DNS 256, fragments 32).
    feed(&mut router, &mut out, 150_000, &mut now);
    let full = live();
    PEAK.with(|p| p.set(full));
    feed(&mut router, &mut out, 150_000, &mut now);
    let after = live();
    let high = PEAK.with(Cell::get) - full;
    let stats = router.stats();
    println!(
        "router flood (nat {nat}): live heap with full tables {full} B, after 150000 more frames {after} B, \
         high-water +{high} B; {} NAT mappings, {} DHCP leases; emitted {} LAN frames, {} tunnel packets; \
         {stats:?}",
        router.nat_mappings(),
        router.dhcp_leases(),
        out.lan,
        out.tunnel
    );
    assert!(router.nat_mappings() <= 2048 && router.dhcp_leases() <= 253);
    assert!(full < 8 << 20, "tables hold {full} bytes");
    assert!(
        after - full < 128 << 10,
        "heap grew by {} bytes once the tables were full",
        after - full
    );
    assert!(
        high < 1 << 20,
        "high-water +{high} bytes above the full tables"
    );
    assert!(out.tunnel > 0 && out.lan > 0, "the router kept working");
}

#[test]
fn nat_router_state_stays_bounded() {
    run(true);
}

#[test]
fn routing_router_state_stays_bounded() {
    run(false);
}
