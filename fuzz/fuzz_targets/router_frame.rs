//! Arbitrary frames and packets into both router entry points (`handle_lan_frame`, `handle_tunnel_packet`,
//! and their in-place forms `handle_lan_frame_in_place`, `handle_tunnel_packet_in_place`) and its timers;
//! every record also goes through the public side's frame codec (`router::outer`). The input is a sequence of records `[kind, len_hi, len_lo, bytes...]` so state built by
//! one record (NAT mappings, fragments, ARP queues, DHCP leases, DNS queries) is exercised by the next.
//! Whatever arrives, the router must not panic and must never emit a packet over the tunnel MTU.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use router::outer;
use router::{PortId, 
    Duration, EthernetAddress, Instant, Ipv4Address, Ipv4Cidr, Ipv6Cidr, Router, RouterConfig,
    Sink, TunnelConfig, TunnelState,
};

const MTU: u16 = 1400;

struct Checked;

impl Sink for Checked {
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
    }
}

fuzz_target!(|data: &[u8]| {
    let mut config = RouterConfig::new(
        EthernetAddress([2, 0, 0, 0, 0, 1]),
        Ipv4Cidr::new(Ipv4Address::new(10, 8, 0, 1), 24),
    );
    config.nat_table_size = 64;
    let nat = data.first().is_none_or(|b| b & 1 == 0);
    config.nat = nat;
    config.ports[0].ipv6_prefix = Some(Ipv6Cidr::new(
        Ipv6Addr::new(0xfd6f, 0x7876, 1, 0, 0, 0, 0, 0),
        64,
    ));
    let mut router = Router::new(config, &mut ChaCha20Rng::from_seed([3; 32]));
    let mut tunnel = TunnelConfig::new(Ipv4Cidr::new(Ipv4Address::new(10, 200, 0, 2), 24));
    tunnel.redirect_gateway = true;
    tunnel.mtu = MTU;
    if data.first().is_some_and(|b| b & 2 != 0) {
        tunnel.ipv6 = Some(Ipv6Cidr::new(
            Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x1000),
            64,
        ));
        tunnel.redirect_gateway_ipv6 = true;
    }
    tunnel
        .dns_servers
        .push(IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1)));
    router.set_tunnel(TunnelState::Up(tunnel.clone()));
    let mut out = Checked;
    let mut now = Instant::from_secs(1);
    let mut rest = data.get(1..).unwrap_or(&[]);
    while let [kind, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (record, next) = tail.split_at(len);
        rest = next;
        let flow = outer::UdpFlow {
            local_mac: EthernetAddress([2, 0, 0, 0, 0, 9]),
            local: (Ipv4Address::new(10, 60, 0, 2), 50000),
            remote: (Ipv4Address::new(10, 60, 0, 1), 1194),
        };
        if let outer::Matched::Flow(range) = outer::match_datagram(record, &flow) {
            assert!(range.start <= range.end && range.end <= record.len());
        }
        let mut copy = record.to_vec();
        outer::fill_udp_checksum(&mut copy);
        match kind % 6 {
            0 => {
                router.handle_lan_frame(PortId::FIRST, now, record, &mut out);
            }
            1 => {
                router.handle_lan_frame_in_place(PortId::FIRST, now, &mut copy, &mut out);
            }
            2 => {
                router.handle_tunnel_packet(now, record, &mut out);
            }
            3 => {
                // The packet behind some headroom, as the engine leaves it in a NIC buffer.
                let at = usize::from(*hi % 48);
                let mut buf = vec![0u8; at];
                buf.extend_from_slice(record);
                let end = buf.len();
                router.handle_tunnel_packet_in_place(now, &mut buf, at..end, &mut out);
            }
            4 => {
                now += Duration::from_millis(u64::from(*hi) * 256 + u64::from(*lo));
                router.tick(now, &mut out);
            }
            _ => {
                if kind & 0x80 != 0 {
                    router.set_tunnel(TunnelState::Down);
                } else {
                    router.set_tunnel(TunnelState::Up(tunnel.clone()));
                }
            }
        }
    }
    let _ = router.poll_at();
});
