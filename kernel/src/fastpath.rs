//! The public side's fast path, in one place for the router's tunnel and the server: OpenVPN datagrams
//! are taken from the public NIC's receive buffers before smoltcp sees them, and written straight into
//! its transmit buffers behind headers built here, to the MAC address the peer's datagrams came from.
//!
//! Layer: kernel glue on the kernel side of the platform seam: it works on any `platform::Nic` (virtio-net
//! or Xen netfront) through `drivers::netdev`. The frame parsing and header writing are the pure
//! `router::outer` functions; what to do with a datagram (decrypt it, hand it to the server) stays with
//! the caller.
//!
//! No ARP here: a datagram is only ever sent to a MAC address learned from an authenticated datagram of
//! the same peer, so a dead or spoofing neighbour cannot stall or redirect the flow.

use core::net::Ipv4Addr;
use core::ops::Range;

use drivers::netdev::{FrameTx, NetDevice};
use router::outer::{self, Listened, Matched, UdpFlow};
use smoltcp::iface::Interface;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use crate::platform::Nic;

/// A frame handler in front of smoltcp on the public NIC: true when it consumed the frame.
pub type FastPath<'a> = &'a mut dyn FnMut(&mut [u8]) -> bool;

/// The largest frame the fast path sends: a 1500-byte IPv4 packet in Ethernet.
pub const FRAME_MAX: usize = 1514;

/// The public interface's MAC address.
pub fn local_mac(iface: &Interface) -> EthernetAddress {
    match iface.hardware_addr() {
        HardwareAddress::Ethernet(mac) => mac,
        #[allow(unreachable_patterns)]
        _ => EthernetAddress([0; 6]),
    }
}

/// Sends one UDP datagram of `flow` to `next_hop` on `nic`, written in place: `fill` gets the payload's
/// room (at most `max_payload` bytes, less when the MTU allows less) and returns the payload's length
/// (0: nothing is sent). Returns whether a frame was queued (false also when the transmit queue is full:
/// dropped like a full socket).
#[inline]
pub fn send_datagram(
    nic: &mut Nic,
    flow: &UdpFlow,
    next_hop: EthernetAddress,
    max_payload: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> bool {
    let Some(mut tx) = nic.transmit() else {
        return false;
    };
    let frame_max = max_payload
        .saturating_add(outer::HEADERS_LEN)
        .min(FRAME_MAX);
    tx.send_with(frame_max, |frame| {
        let Some(slot) = frame.get_mut(outer::HEADERS_LEN..) else {
            return 0;
        };
        match fill(slot) {
            0 => 0,
            n => outer::write_udp_headers(frame, flow, next_hop, n).unwrap_or(0),
        }
    })
}

/// What a frame is to a flow's fast path.
pub enum Taken {
    /// Not the flow's: smoltcp gets it.
    Other,
    /// The flow's, but with a bad IPv4 or UDP checksum: dropped (count it).
    BadChecksum,
    /// The flow's datagram: its payload's place in the frame and the MAC address it came from.
    Datagram {
        payload: Range<usize>,
        source_mac: EthernetAddress,
    },
}

/// Whether `frame` is a datagram of the client's tunnel flow.
#[inline]
pub fn take_flow(frame: &[u8], flow: &UdpFlow) -> Taken {
    match outer::match_datagram(frame, flow) {
        Matched::Other => Taken::Other,
        Matched::BadChecksum => Taken::BadChecksum,
        Matched::Flow(payload) => match frame.get(6..12) {
            Some(mac) => Taken::Datagram {
                payload,
                source_mac: EthernetAddress::from_bytes(mac),
            },
            None => Taken::Other,
        },
    }
}

/// A datagram to one of a server's listening ports.
pub struct ToListener {
    /// The sender's address and port.
    pub from: (Ipv4Addr, u16),
    /// The MAC address it came from (where answers go).
    pub source_mac: EthernetAddress,
    /// The listening port it was sent to.
    pub port: u16,
    /// The payload's place in the frame.
    pub payload: Range<usize>,
}

/// Whether `frame` is a datagram to `ours` on one of `ports` (from anyone): `Ok(Some)` for one, `Err(())`
/// for one with a bad checksum (dropped), `Ok(None)` for any other frame.
pub fn take_listened(
    frame: &[u8],
    local_mac: EthernetAddress,
    ours: Ipv4Addr,
    ports: &[u16],
) -> Result<Option<ToListener>, ()> {
    for &port in ports {
        match outer::match_listener(frame, local_mac, (ours, port)) {
            Listened::Datagram {
                from,
                source_mac,
                payload,
            } => {
                return Ok(Some(ToListener {
                    from,
                    source_mac,
                    port,
                    payload,
                }))
            }
            Listened::BadChecksum => return Err(()),
            Listened::Other => {}
        }
    }
    Ok(None)
}
