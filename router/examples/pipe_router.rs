//! The router on a host, for tests against real Linux network stacks: frames and packets come and go
//! as records on stdin/stdout (`[kind: u8][len: u16 BE][bytes]`, kind 0 = Ethernet frame of the LAN,
//! kind 1 = IP packet of the tunnel); `scripts/test-router-netns.sh` attaches a TAP device (the LAN) and
//! a TUN device (standing in for the OpenVPN tunnel) to those pipes.
//!
//! Usage: `pipe_router GATEWAY/PREFIX TUNNEL/PREFIX DNS MTU [--no-nat] [--route NET/PREFIX]...
//! [--ipv6 TUNNEL6/PREFIX]`
//! (without `--route`, redirect-gateway is on). Send `kind 2` (any length) to bring the tunnel down and
//! `kind 3` to bring it back up.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc;
use std::time::{Duration as WallDuration, Instant as WallClock};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use router::{
    EthernetAddress, Instant, Ipv4Cidr, Ipv6Cidr, PortId, Router, RouterConfig, Sink, TunnelConfig,
    TunnelState, Verdict,
};

struct Records<W: Write>(W);

impl<W: Write> Records<W> {
    fn put(&mut self, kind: u8, bytes: &[u8]) {
        let len = u16::try_from(bytes.len()).expect("record fits u16");
        let _ = self.0.write_all(&[kind]);
        let _ = self.0.write_all(&len.to_be_bytes());
        let _ = self.0.write_all(bytes);
    }
}

impl<W: Write> Sink for Records<W> {
    fn lan_frame(&mut self, _port: PortId, frame: &[u8]) {
        self.put(0, frame);
    }
    fn tunnel_packet(&mut self, packet: &[u8]) {
        self.put(1, packet);
    }
}

fn cidr(s: &str) -> Ipv4Cidr {
    let (a, p) = s.split_once('/').expect("ADDRESS/PREFIX");
    Ipv4Cidr::new(
        a.parse().expect("IPv4 address"),
        p.parse().expect("prefix length"),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert!(args.len() >= 4, "usage: pipe_router GATEWAY/PREFIX TUNNEL/PREFIX DNS MTU [--no-nat] [--route NET/PREFIX]...");
    let mut config = RouterConfig::new(
        EthernetAddress([0x02, 0x6f, 0x78, 0x76, 0x70, 0x01]),
        cidr(&args[0]),
    );
    let mut tunnel = TunnelConfig::new(cidr(&args[1]));
    tunnel
        .dns_servers
        .push(IpAddr::V4(args[2].parse::<Ipv4Addr>().expect("DNS server")));
    tunnel.mtu = args[3].parse().expect("MTU");
    tunnel.redirect_gateway = true;
    let mut rest = args[4..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--no-nat" => config.nat = false,
            "--ipv6" => {
                let (a, p) = rest
                    .next()
                    .expect("--ipv6 ADDRESS/PREFIX")
                    .split_once('/')
                    .expect("ADDRESS/PREFIX");
                tunnel.ipv6 = Some(Ipv6Cidr::new(
                    a.parse().expect("IPv6 address"),
                    p.parse().expect("prefix"),
                ));
                tunnel.redirect_gateway_ipv6 = true;
            }
            "--route" => {
                tunnel.redirect_gateway = false;
                tunnel
                    .routes
                    .push(cidr(rest.next().expect("--route NET/PREFIX")));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let mut seed = [0u8; 32];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos());
    seed[..16].copy_from_slice(&nanos.to_le_bytes());
    let mut router = Router::new(config, &mut ChaCha20Rng::from_seed(seed));
    router.set_tunnel(TunnelState::Up(tunnel.clone()));

    let (tx, rx) = mpsc::sync_channel::<(u8, Vec<u8>)>(1024);
    std::thread::spawn(move || {
        let mut input = BufReader::new(io::stdin().lock());
        loop {
            let mut head = [0u8; 3];
            if input.read_exact(&mut head).is_err() {
                break;
            }
            let mut body = vec![0u8; usize::from(u16::from_be_bytes([head[1], head[2]]))];
            if input.read_exact(&mut body).is_err() || tx.send((head[0], body)).is_err() {
                break;
            }
        }
    });
    let start = WallClock::now();
    let mut out = Records(BufWriter::new(io::stdout().lock()));
    loop {
        let wait = WallDuration::from_millis(100);
        let received = rx.recv_timeout(wait);
        let now =
            Instant::from_micros(i64::try_from(start.elapsed().as_micros()).unwrap_or(i64::MAX));
        match received {
            Ok((0, frame)) => {
                let v = router.handle_lan_frame(PortId::FIRST, now, &frame, &mut out);
                if v != Verdict::Forwarded {
                    eprintln!("lan {} bytes: {v:?}", frame.len());
                }
            }
            Ok((1, packet)) => {
                let v = router.handle_tunnel_packet(now, &packet, &mut out);
                if v != Verdict::Forwarded {
                    eprintln!("tunnel {} bytes: {v:?}", packet.len());
                }
            }
            Ok((2, _)) => {
                eprintln!("tunnel down");
                router.set_tunnel(TunnelState::Down);
            }
            Ok((_, _)) => {
                eprintln!("tunnel up");
                router.set_tunnel(TunnelState::Up(tunnel.clone()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if router.poll_at().is_some_and(|at| at <= now) {
            router.tick(now, &mut out);
        }
        let _ = out.0.flush();
    }
}
