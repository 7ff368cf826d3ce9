//! The private side of the oxvpn router: the LAN gateway that sends its hosts' traffic through the
//! OpenVPN tunnel.
//!
//! Layer: sans-IO L2/L3. Never reads a clock (every entry point takes `now`), never reads a random
//! source after [`Router::new`], never touches a device: Ethernet frames from a LAN port (a private
//! NIC) go into [`Router::handle_lan_frame`] with the port's [`PortId`], decrypted IP packets from the
//! tunnel into [`Router::handle_tunnel_packet`], and everything the router wants to send comes out
//! through the caller's [`Sink`], LAN frames with the port to send them on. Each port has its own
//! gateway addresses, ARP cache, DHCP server, IPv6 neighbours and [`PortPolicy`]; ports never reach
//! each other. [`Router::poll_at`] says when to call [`Router::tick`].
//!
//! ```
//! use router::{EthernetAddress, Instant, Ipv4Address, Ipv4Cidr, PortId, Router, RouterConfig, Sink, TunnelConfig, TunnelState};
//!
//! struct Nics { lan: Vec<Vec<u8>>, tunnel: Vec<Vec<u8>> }
//! impl Sink for Nics {
//!     fn lan_frame(&mut self, _port: PortId, frame: &[u8]) { self.lan.push(frame.to_vec()) } // private NIC transmit
//!     fn tunnel_packet(&mut self, packet: &[u8]) { self.tunnel.push(packet.to_vec()) } // engine encrypt
//! }
//!
//! let mac = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
//! // One LAN port (PortId::FIRST); RouterConfig::with_ports(vec![PortConfig::new(..), ..]) for more.
//! let config = RouterConfig::new(mac, Ipv4Cidr::new(Ipv4Address::new(10, 8, 0, 1), 24));
//! # use rand_chacha::rand_core::SeedableRng;
//! # let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
//! let mut router = Router::new(config, &mut rng); // rng: any rand_core::CryptoRngCore
//! let mut out = Nics { lan: Vec::new(), tunnel: Vec::new() };
//!
//! // After PUSH_REPLY: the tunnel address, routes, DNS and MTU the server pushed.
//! let mut tunnel = TunnelConfig::new(Ipv4Cidr::new(Ipv4Address::new(10, 200, 0, 2), 24));
//! tunnel.redirect_gateway = true;
//! router.set_tunnel(TunnelState::Up(tunnel));
//!
//! let now = Instant::from_millis(1_000);
//! let frame = [0u8; 60]; // a frame received on the private NIC
//! let _verdict = router.handle_lan_frame(PortId::FIRST, now, &frame, &mut out);
//! // ... and every decrypted packet: router.handle_tunnel_packet(now, &packet, &mut out);
//! if router.poll_at().is_some_and(|at| at <= now) {
//!     router.tick(now, &mut out);
//! }
//! ```
//!
//! Files, one concern each: `arp` (neighbour cache, pending queue), `icmp` (echo replies, errors),
//! `icmp6` (Neighbor Discovery, router advertisements, ICMPv6 errors), `ip` and `checksum` (header
//! checks, incremental checksums), `forward` (pushed routes, tunnel state), `nat` (source NAT; `nat/v6`
//! NAT66), `frag` (fragmentation, reassembly), `mss` (MSS clamping), `dhcp` (DHCPv4 server), `dns` (DNS
//! forwarder), `router` (the entry points and the route decisions; `router/port` a LAN port's state
//! and output, `router/services` gateway services, `router/ipv6`); `outer` is the public side's fast path (the tunnel's UDP datagrams picked out
//! of received frames, UDP checksums filled in on transmit). `uplink` is the server role's forwarding:
//! [`ClientForwarder`] routes its clients' decrypted packets (echo to the server, client to client,
//! source NAT out of the public NIC, the private network) and sends NAT replies back to a client.
#![no_std]
#![forbid(unsafe_code)]
// Panics must be unreachable from the network and the config disk (STYLE.md rule 6): outside tests no
// unwrap/expect/panic!, no unchecked indexing and no lossy `as` casts.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

extern crate alloc;

mod arp;
mod checksum;
mod dhcp;
mod dns;
pub mod firewall;
mod forward;
mod frag;
mod icmp;
mod icmp6;
mod ip;
mod mss;
mod nat;
pub mod outer;
mod router;
#[cfg(test)]
mod testutil;
mod uplink;

pub use forward::{TunnelConfig, TunnelState, MIN_TUNNEL_MTU};
pub use nat::NatError;
pub use router::{
    DropReason, PortConfig, PortId, PortPolicy, Router, RouterConfig, RouterStats, Sink,
    SourceRule, Verdict, MAX_PORTS,
};
/// The smoltcp wire types that appear in this crate's API (addresses, prefixes, time).
pub use smoltcp::time::{Duration, Instant};
pub use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};
pub use uplink::{
    ClientDecision, ClientDropReason, ClientForwarder, ClientPacket, DropCounts, ForwarderConfig,
    ForwarderStats, MAX_ERROR_LEN,
};
