//! DHCPv4 server for the private LAN (RFC 2131): leases from the private prefix (the gateway excluded),
//! router and DNS options pointing at the gateway, DISCOVER/OFFER, REQUEST/ACK/NAK, RELEASE, DECLINE,
//! INFORM, and a bounded lease table.
//!
//! Layer: state machine + message builder on smoltcp's `DhcpRepr`. Never reads a clock; the router
//! passes `now` and wraps the reply in UDP/IPv4/Ethernet.

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    DhcpMessageType, DhcpOpCode, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, Ipv4Address,
    Ipv4Cidr,
};

/// How long an offered (not yet requested) address is held for the client.
pub const OFFER_HOLD: Duration = Duration::from_secs(60);
/// How long a declined address (RFC 2131 section 4.3.3: in use by someone else) is kept out of the pool.
pub const DECLINE_HOLD: Duration = Duration::from_secs(600);
/// DHCP option codes used beyond what `DhcpRepr` emits (RFC 2132).
const OPT_DNS: u8 = 6;
const OPT_RENEWAL: u8 = 58;
const OPT_REBINDING: u8 = 59;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    Offered,
    Bound,
    /// DECLINEd by a client: an unknown host uses it. `mac` is then zero.
    Declined,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    mac: EthernetAddress,
    ip: Ipv4Address,
    expires: Instant,
    state: LeaseState,
}

/// Where and what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DhcpReply {
    pub message_type: DhcpMessageType,
    pub transaction_id: u32,
    pub client_mac: EthernetAddress,
    /// `ciaddr` echoed (INFORM, renewals).
    pub client_ip: Ipv4Address,
    /// `yiaddr`: the leased address (unspecified for NAK and INFORM).
    pub your_ip: Ipv4Address,
    pub broadcast_flag: bool,
    /// IPv4 destination of the reply (RFC 2131 section 4.1).
    pub dst_ip: Ipv4Address,
    /// Ethernet destination of the reply.
    pub dst_mac: EthernetAddress,
}

/// The lease table and pool.
#[derive(Debug)]
pub(crate) struct DhcpServer {
    server: Ipv4Address,
    prefix: Ipv4Cidr,
    first: u32,
    last: u32,
    leases: Vec<Lease>,
    max_leases: usize,
    lease_time: Duration,
}

impl DhcpServer {
    /// A server for `gateway` (address + prefix of the LAN). Pools smaller than one host hand out nothing.
    pub(crate) fn new(gateway: Ipv4Cidr, max_leases: usize, lease_time: Duration) -> Self {
        let network = u32::from(gateway.network().address());
        let host_bits = 32 - u32::from(gateway.prefix_len().min(32));
        let size = if host_bits >= 32 {
            u32::MAX
        } else {
            (1u32 << host_bits) - 1
        };
        let (first, last) = if host_bits < 2 {
            (1, 0)
        } else {
            (network + 1, (network | size) - 1)
        };
        DhcpServer {
            server: gateway.address(),
            prefix: gateway,
            first,
            last,
            leases: Vec::with_capacity(max_leases),
            max_leases,
            lease_time: Duration::from_secs(lease_time.secs().max(60)),
        }
    }

    /// Hands out `addr` only (a client port: one host whose address is fixed).
    pub(crate) fn only(&mut self, addr: Ipv4Address) {
        self.first = u32::from(addr);
        self.last = u32::from(addr);
    }

    fn in_pool(&self, ip: Ipv4Address) -> bool {
        let v = u32::from(ip);
        v >= self.first && v <= self.last && ip != self.server
    }

    fn holder(&self, ip: Ipv4Address, now: Instant) -> Option<&Lease> {
        self.leases.iter().find(|l| l.ip == ip && l.expires > now)
    }

    fn free_for(&self, ip: Ipv4Address, mac: EthernetAddress, now: Instant) -> bool {
        self.in_pool(ip)
            && self
                .holder(ip, now)
                .is_none_or(|l| l.mac == mac && l.state != LeaseState::Declined)
    }

    fn lease_of(&self, mac: EthernetAddress, now: Instant) -> Option<Lease> {
        self.leases
            .iter()
            .find(|l| l.mac == mac && l.expires > now && l.state != LeaseState::Declined)
            .copied()
    }

    /// Records `ip` for `mac`. `false` if the table is full of live leases.
    fn record(
        &mut self,
        mac: EthernetAddress,
        ip: Ipv4Address,
        state: LeaseState,
        expires: Instant,
        now: Instant,
    ) -> bool {
        self.leases
            .retain(|l| l.expires > now && !(l.mac == mac && l.state != LeaseState::Declined));
        self.leases
            .retain(|l| l.ip != ip || l.state == LeaseState::Declined && l.mac != mac);
        if self.leases.len() >= self.max_leases {
            return false;
        }
        self.leases.push(Lease {
            mac,
            ip,
            expires,
            state,
        });
        true
    }

    fn pick_address(
        &self,
        mac: EthernetAddress,
        requested: Option<Ipv4Address>,
        now: Instant,
    ) -> Option<Ipv4Address> {
        if let Some(l) = self.lease_of(mac, now) {
            return Some(l.ip);
        }
        if let Some(r) = requested.filter(|&r| self.free_for(r, mac, now)) {
            return Some(r);
        }
        // At most `max_leases + 1` addresses are taken, so this scan ends within that many steps.
        (self.first..=self.last)
            .map(Ipv4Address::from)
            .find(|&ip| self.free_for(ip, mac, now))
    }

    /// Parses and handles the UDP payload of a client message (BOOTREQUEST with a message type).
    pub(crate) fn handle_payload(&mut self, now: Instant, payload: &[u8]) -> Option<DhcpReply> {
        let packet = DhcpPacket::new_checked(payload).ok()?;
        if packet.opcode() != DhcpOpCode::Request {
            return None;
        }
        let repr = DhcpRepr::parse(&packet).ok()?;
        self.handle(now, &repr)
    }

    /// Handles one client message; returns the reply to send, if any.
    pub(crate) fn handle(&mut self, now: Instant, msg: &DhcpRepr<'_>) -> Option<DhcpReply> {
        let mac = msg.client_hardware_address;
        if !mac.is_unicast() {
            return None;
        }
        let ours = msg.server_identifier.is_none_or(|s| s == self.server);
        let reply = |message_type, your_ip: Ipv4Address, client_ip: Ipv4Address| {
            let (dst_ip, dst_mac) = if message_type == DhcpMessageType::Nak {
                (Ipv4Address::BROADCAST, EthernetAddress::BROADCAST)
            } else if !client_ip.is_unspecified() {
                (client_ip, mac)
            } else if msg.broadcast {
                (Ipv4Address::BROADCAST, EthernetAddress::BROADCAST)
            } else {
                (your_ip, mac)
            };
            Some(DhcpReply {
                message_type,
                transaction_id: msg.transaction_id,
                client_mac: mac,
                client_ip,
                your_ip,
                broadcast_flag: msg.broadcast,
                dst_ip,
                dst_mac,
            })
        };
        match msg.message_type {
            DhcpMessageType::Discover => {
                let ip = self.pick_address(mac, msg.requested_ip, now)?;
                let bound = self
                    .lease_of(mac, now)
                    .filter(|l| l.ip == ip && l.state == LeaseState::Bound);
                let (state, expires) = match bound {
                    Some(l) => (LeaseState::Bound, l.expires),
                    None => (LeaseState::Offered, now + OFFER_HOLD),
                };
                if !self.record(mac, ip, state, expires, now) {
                    return None;
                }
                reply(DhcpMessageType::Offer, ip, Ipv4Address::UNSPECIFIED)
            }
            DhcpMessageType::Request => {
                if !ours {
                    // The client chose another server (RFC 2131 section 4.3.2): forget our offer.
                    self.leases
                        .retain(|l| !(l.mac == mac && l.state == LeaseState::Offered));
                    return None;
                }
                // SELECTING / INIT-REBOOT name the address in option 50; RENEWING / REBINDING in ciaddr.
                let wanted = msg.requested_ip.unwrap_or(msg.client_ip);
                if wanted.is_unspecified() {
                    return None;
                }
                if !self.prefix.contains_addr(&wanted) || !self.free_for(wanted, mac, now) {
                    return reply(
                        DhcpMessageType::Nak,
                        Ipv4Address::UNSPECIFIED,
                        Ipv4Address::UNSPECIFIED,
                    );
                }
                if !self.record(mac, wanted, LeaseState::Bound, now + self.lease_time, now) {
                    return None;
                }
                reply(DhcpMessageType::Ack, wanted, msg.client_ip)
            }
            DhcpMessageType::Release => {
                if ours {
                    self.leases
                        .retain(|l| !(l.mac == mac && l.ip == msg.client_ip));
                }
                None
            }
            DhcpMessageType::Decline => {
                if let (true, Some(ip)) = (ours, msg.requested_ip) {
                    if self.lease_of(mac, now).is_some_and(|l| l.ip == ip) {
                        self.leases.retain(|l| l.mac != mac);
                        self.leases.push(Lease {
                            mac: EthernetAddress([0; 6]),
                            ip,
                            expires: now + DECLINE_HOLD,
                            state: LeaseState::Declined,
                        });
                    }
                }
                None
            }
            DhcpMessageType::Inform if !msg.client_ip.is_unspecified() => reply(
                DhcpMessageType::Ack,
                Ipv4Address::UNSPECIFIED,
                msg.client_ip,
            ),
            _ => None,
        }
    }

    /// Drops expired leases.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.leases.retain(|l| l.expires > now);
    }

    /// The earliest lease expiry.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.leases.iter().map(|l| l.expires).min()
    }

    /// Number of leases held (offered, bound or declined).
    pub(crate) fn lease_count(&self) -> usize {
        self.leases.len()
    }

    /// Emits the DHCP message of `reply` into `buf` (the UDP payload); returns its length.
    /// `dns` is the DNS server to announce (the gateway when the forwarder runs).
    pub(crate) fn emit(
        &self,
        reply: &DhcpReply,
        dns: Option<Ipv4Address>,
        buf: &mut [u8],
    ) -> Option<usize> {
        let nak = reply.message_type == DhcpMessageType::Nak;
        let lease = u32::try_from(self.lease_time.secs()).unwrap_or(u32::MAX);
        let t1 = (lease / 2).to_be_bytes();
        let t2 = (lease / 8 * 7).to_be_bytes();
        let dns_octets = dns.map(|d| d.octets()).unwrap_or_default();
        let mut extra: [DhcpOption<'_>; 3] = [
            DhcpOption {
                kind: OPT_RENEWAL,
                data: &t1,
            },
            DhcpOption {
                kind: OPT_REBINDING,
                data: &t2,
            },
            DhcpOption {
                kind: OPT_DNS,
                data: &dns_octets,
            },
        ];
        let inform = reply.your_ip.is_unspecified();
        let extra_len = match (nak, inform, dns.is_some()) {
            (true, _, _) => 0,
            (false, true, true) => {
                extra.swap(0, 2);
                1
            }
            (false, true, false) => 0,
            (false, false, true) => 3,
            (false, false, false) => 2,
        };
        let repr = DhcpRepr {
            message_type: reply.message_type,
            transaction_id: reply.transaction_id,
            secs: 0,
            client_hardware_address: reply.client_mac,
            client_ip: reply.client_ip,
            your_ip: reply.your_ip,
            server_ip: Ipv4Address::UNSPECIFIED,
            router: (!nak).then_some(self.server),
            subnet_mask: (!nak).then_some(self.prefix.netmask()),
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: reply.broadcast_flag,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(self.server),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: (!nak && !inform).then_some(lease),
            renew_duration: None,
            rebind_duration: None,
            additional_options: extra.get(..extra_len)?,
        };
        let len = repr.buffer_len();
        let out = buf.get_mut(..len)?;
        out.fill(0);
        let mut packet = DhcpPacket::new_unchecked(out);
        repr.emit(&mut packet).ok()?;
        Some(len)
    }
}

#[cfg(test)]
mod tests;
