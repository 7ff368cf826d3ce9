//! The private side of the oxvpn router: the LAN gateway that sends its hosts' traffic through the
//! OpenVPN tunnel.
//!
//! Layer: sans-IO L2/L3. Never reads a clock (every entry point takes `now`), never reads a random
//! source after [`Router::new`], never touches a device: Ethernet frames from the private NIC go into
//! [`Router::handle_lan_frame`], decrypted IP packets from the tunnel into
//! [`Router::handle_tunnel_packet`], and everything the router wants to send comes out through the
//! caller's [`Sink`]. [`Router::poll_at`] says when to call [`Router::tick`].
//!
//! Files, one concern each: `arp` (neighbour cache, pending queue), `icmp` (echo replies, errors), `ip`
//! and `checksum` (header checks, incremental checksums), `forward` (pushed routes, tunnel state),
//! `nat` (source NAT), `frag` (fragmentation, reassembly), `mss` (MSS clamping), `dhcp` (DHCPv4
//! server), `dns` (DNS forwarder), `router` (the entry points tying them together).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod arp;
mod checksum;
mod dhcp;
mod dns;
mod forward;
mod frag;
mod icmp;
mod ip;
mod mss;
mod nat;
mod router;
#[cfg(test)]
mod testutil;

pub use forward::{TunnelConfig, TunnelState, MIN_TUNNEL_MTU};
pub use nat::NatError;
pub use router::{DropReason, Router, RouterConfig, RouterStats, Sink, Verdict};
/// The smoltcp wire types that appear in this crate's API (addresses, prefixes, time).
pub use smoltcp::time::{Duration, Instant};
pub use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};
