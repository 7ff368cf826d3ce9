//! Source NAT of the private LAN to the tunnel address (NAPT, RFC 3022), with conntrack-like idle
//! timeouts and least-recently-used eviction when the table is full.
//!
//! Layer: a fixed-capacity table plus in-place packet rewriting. The table is allocated once in
//! [`NatTable::new`]; translating a packet never allocates. Lookups go through two chained hash indexes
//! (outbound 5-tuple, inbound protocol + public port) keyed with a random seed so remote peers cannot
//! aim collisions. Inbound packets must come from the remote the mapping was made for
//! (address-and-port-dependent filtering, RFC 4787 section 5), like Linux conntrack.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use rand_core::RngCore;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpProtocol, Ipv4Address};

use crate::checksum::{be16, bytes4, internet, patch16, patch32, set_be16, set_bytes4};
use crate::icmp::{is_error_type, ECHO_REPLY, ECHO_REQUEST};
use crate::ip::{self, Ipv4Info, CHECKSUM, DST, ICMP_CHECKSUM, SRC, TCP_CHECKSUM, UDP_CHECKSUM};

/// TCP flow that has not seen an answer from the remote yet (conntrack `syn_sent`: 120 s).
pub const TCP_OPENING_TIMEOUT: Duration = Duration::from_secs(120);
/// Established TCP flow (RFC 5382 REQ-5: at least 2 h 4 min).
pub const TCP_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(7440);
/// TCP flow after a FIN (conntrack `time_wait`: 120 s).
pub const TCP_CLOSING_TIMEOUT: Duration = Duration::from_secs(120);
/// TCP flow after a RST (conntrack `close`: 10 s).
pub const TCP_RESET_TIMEOUT: Duration = Duration::from_secs(10);
/// UDP flow with traffic in one direction only (conntrack `udp`: 30 s).
pub const UDP_TIMEOUT: Duration = Duration::from_secs(30);
/// UDP flow that got replies (conntrack `udp_stream`: 120 s; RFC 4787 REQ-5 asks for at least 2 min).
pub const UDP_STREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// ICMP echo identifier mapping (conntrack `icmp`: 30 s).
pub const ICMP_TIMEOUT: Duration = Duration::from_secs(30);
/// Public ports (and ICMP identifiers) handed out by the NAT. The DNS forwarder uses the ports above.
pub const PORT_FIRST: u16 = 1024;
/// Last public port of the NAT range.
pub const PORT_LAST: u16 = 49151;
/// Largest table the port range can serve.
pub const MAX_TABLE_SIZE: usize = 32768;

const NONE: u32 = u32::MAX;

/// Why a packet could not be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatError {
    /// Not TCP, UDP, ICMP echo or an ICMP error about one of those.
    UnsupportedProtocol,
    /// The transport header is missing or cut short.
    Truncated,
    /// Inbound: no mapping for this public port and remote.
    NoMapping,
    /// Outbound: no free public port found.
    PortsExhausted,
}

impl fmt::Display for NatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatError::UnsupportedProtocol => "protocol cannot be translated",
            NatError::Truncated => "transport header truncated",
            NatError::NoMapping => "no NAT mapping for inbound packet",
            NatError::PortsExhausted => "no free public port",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    fn of(p: IpProtocol) -> Option<Proto> {
        match p {
            IpProtocol::Tcp => Some(Proto::Tcp),
            IpProtocol::Udp => Some(Proto::Udp),
            IpProtocol::Icmp => Some(Proto::Icmp),
            _ => None,
        }
    }

    /// (source port, destination port) of a TCP or UDP header at the start of `l4`, which must hold the
    /// whole fixed header (20 bytes for TCP, 8 for UDP).
    fn ports(self, l4: &[u8]) -> Result<(u16, u16), NatError> {
        let min = if self == Proto::Tcp { 20 } else { 8 };
        if l4.len() < min {
            return Err(NatError::Truncated);
        }
        Ok((
            be16(l4, 0).ok_or(NatError::Truncated)?,
            be16(l4, 2).ok_or(NatError::Truncated)?,
        ))
    }
}

/// An address family the table can translate: IPv4 (NAPT) or IPv6 (NAPT66 to the one tunnel address).
pub(crate) trait NatAddress: Copy + Eq + fmt::Debug {
    /// 64 bits of the address for the hash indexes.
    fn hash_bits(self) -> u64;
}

impl NatAddress for Ipv4Address {
    fn hash_bits(self) -> u64 {
        u64::from(u32::from(self))
    }
}

impl NatAddress for smoltcp::wire::Ipv6Address {
    fn hash_bits(self) -> u64 {
        let v = u128::from(self);
        let low = u64::try_from(v & u128::from(u64::MAX)).unwrap_or(0);
        let high = u64::try_from(v >> 64).unwrap_or(0);
        low ^ mix(high)
    }
}

/// One translated flow, as seen from the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey<A> {
    proto: Proto,
    private: A,
    /// Source port, or ICMP echo identifier.
    private_port: u16,
    remote: A,
    /// Destination port; 0 for ICMP.
    remote_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowState {
    TcpOpening,
    TcpEstablished,
    TcpClosing,
    TcpReset,
    UdpUnreplied,
    UdpReplied,
    Icmp,
}

impl FlowState {
    fn timeout(self) -> Duration {
        match self {
            FlowState::TcpOpening => TCP_OPENING_TIMEOUT,
            FlowState::TcpEstablished => TCP_ESTABLISHED_TIMEOUT,
            FlowState::TcpClosing => TCP_CLOSING_TIMEOUT,
            FlowState::TcpReset => TCP_RESET_TIMEOUT,
            FlowState::UdpUnreplied => UDP_TIMEOUT,
            FlowState::UdpReplied => UDP_STREAM_TIMEOUT,
            FlowState::Icmp => ICMP_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry<A> {
    key: FlowKey<A>,
    public_port: u16,
    state: FlowState,
    last_used: Instant,
    expires: Instant,
    next_out: u32,
    next_in: u32,
}

/// The NAT table: `capacity` entries, allocated up front.
#[derive(Debug)]
pub(crate) struct NatTable<A: NatAddress = Ipv4Address> {
    slots: Vec<Option<Entry<A>>>,
    free: Vec<u32>,
    out_heads: Vec<u32>,
    in_heads: Vec<u32>,
    mask: usize,
    seed: u64,
    len: usize,
    /// A lower bound of the earliest expiry (may be early, never late).
    next_expiry: Option<Instant>,
    /// TCP/UDP ports never handed out (sorted): the host's own listeners on the public address.
    reserved: Vec<u16>,
}

/// Which end of a packet a rewrite applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Source,
    Destination,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl<A: NatAddress> NatTable<A> {
    /// A table of `capacity` flows (clamped to 1..=[`MAX_TABLE_SIZE`]); `seed` keys the hash indexes.
    pub(crate) fn new(capacity: usize, seed: u64) -> Self {
        let capacity = capacity.clamp(1, MAX_TABLE_SIZE);
        let buckets = capacity.next_power_of_two();
        NatTable {
            slots: vec![None; capacity],
            free: (0..capacity)
                .rev()
                .filter_map(|i| u32::try_from(i).ok())
                .collect(),
            out_heads: vec![NONE; buckets],
            in_heads: vec![NONE; buckets],
            mask: buckets - 1,
            seed,
            len: 0,
            next_expiry: None,
            reserved: Vec::new(),
        }
    }

    /// Keeps `ports` out of TCP and UDP allocation, so inbound traffic to them never matches a mapping
    /// and stays the host's (the OpenVPN server's listeners). ICMP identifiers are not affected.
    pub(crate) fn with_reserved_ports(mut self, ports: &[u16]) -> Self {
        self.reserved = ports.to_vec();
        self.reserved.sort_unstable();
        self.reserved.dedup();
        self
    }

    /// True when `port` is reserved for TCP and UDP.
    pub(crate) fn is_reserved(&self, port: u16) -> bool {
        self.reserved.binary_search(&port).is_ok()
    }

    /// Forgets every mapping (the tunnel address changed). Does not allocate.
    pub(crate) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.out_heads.iter_mut().for_each(|h| *h = NONE);
        self.in_heads.iter_mut().for_each(|h| *h = NONE);
        self.free.clear();
        self.free.extend(
            (0..self.slots.len())
                .rev()
                .filter_map(|i| u32::try_from(i).ok()),
        );
        self.len = 0;
        self.next_expiry = None;
    }

    /// Number of live mappings.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn out_bucket(&self, k: &FlowKey<A>) -> usize {
        let a = k.private.hash_bits() ^ mix(k.remote.hash_bits()).rotate_left(32);
        let b = u64::from(k.private_port) << 32 | u64::from(k.remote_port) << 8 | k.proto as u64;
        let h = mix(mix(a ^ self.seed) ^ b);
        usize::try_from(h).unwrap_or(0) & self.mask
    }

    fn in_bucket(&self, proto: Proto, port: u16) -> usize {
        let h = mix(self.seed.rotate_left(17) ^ (u64::from(port) << 8 | proto as u64));
        usize::try_from(h).unwrap_or(0) & self.mask
    }

    fn entry(&self, i: u32) -> Option<&Entry<A>> {
        self.slots.get(usize::try_from(i).ok()?)?.as_ref()
    }

    fn entry_mut(&mut self, i: u32) -> Option<&mut Entry<A>> {
        self.slots.get_mut(usize::try_from(i).ok()?)?.as_mut()
    }

    fn find_out(&self, k: &FlowKey<A>) -> Option<u32> {
        let mut i = *self.out_heads.get(self.out_bucket(k))?;
        while i != NONE {
            let e = self.entry(i)?;
            if e.key == *k {
                return Some(i);
            }
            i = e.next_out;
        }
        None
    }

    fn find_in(&self, proto: Proto, port: u16) -> Option<u32> {
        let mut i = *self.in_heads.get(self.in_bucket(proto, port))?;
        while i != NONE {
            let e = self.entry(i)?;
            if e.key.proto == proto && e.public_port == port {
                return Some(i);
            }
            i = e.next_in;
        }
        None
    }

    fn remove(&mut self, idx: u32) {
        let Some(e) = self.entry(idx).copied() else {
            return;
        };
        let ob = self.out_bucket(&e.key);
        let ib = self.in_bucket(e.key.proto, e.public_port);
        // Unlink from the outbound chain.
        let mut prev = NONE;
        let mut i = self.out_heads.get(ob).copied().unwrap_or(NONE);
        while i != NONE && i != idx {
            prev = i;
            i = self.entry(i).map_or(NONE, |x| x.next_out);
        }
        if i == idx {
            if prev == NONE {
                if let Some(h) = self.out_heads.get_mut(ob) {
                    *h = e.next_out;
                }
            } else if let Some(p) = self.entry_mut(prev) {
                p.next_out = e.next_out;
            }
        }
        let mut prev = NONE;
        let mut i = self.in_heads.get(ib).copied().unwrap_or(NONE);
        while i != NONE && i != idx {
            prev = i;
            i = self.entry(i).map_or(NONE, |x| x.next_in);
        }
        if i == idx {
            if prev == NONE {
                if let Some(h) = self.in_heads.get_mut(ib) {
                    *h = e.next_in;
                }
            } else if let Some(p) = self.entry_mut(prev) {
                p.next_in = e.next_in;
            }
        }
        if let Some(s) = usize::try_from(idx)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
        {
            *s = None;
        }
        self.free.push(idx);
        self.len -= 1;
    }

    fn evict_lru(&mut self) {
        let victim = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (e.last_used, i)))
            .min()
            .and_then(|(_, i)| u32::try_from(i).ok());
        if let Some(v) = victim {
            self.remove(v);
        }
    }

    fn insert(
        &mut self,
        key: FlowKey<A>,
        public_port: u16,
        state: FlowState,
        now: Instant,
    ) -> Option<u32> {
        if self.free.is_empty() {
            self.evict_lru();
        }
        let idx = self.free.pop()?;
        let ob = self.out_bucket(&key);
        let ib = self.in_bucket(key.proto, public_port);
        let next_out = self.out_heads.get(ob).copied().unwrap_or(NONE);
        let next_in = self.in_heads.get(ib).copied().unwrap_or(NONE);
        let expires = now + state.timeout();
        *self.slots.get_mut(usize::try_from(idx).ok()?)? = Some(Entry {
            key,
            public_port,
            state,
            last_used: now,
            expires,
            next_out,
            next_in,
        });
        *self.out_heads.get_mut(ob)? = idx;
        *self.in_heads.get_mut(ib)? = idx;
        self.len += 1;
        self.note_expiry(expires);
        Some(idx)
    }

    fn note_expiry(&mut self, at: Instant) {
        self.next_expiry = Some(self.next_expiry.map_or(at, |n| n.min(at)));
    }

    fn allocate_port(&self, proto: Proto, rng: &mut dyn RngCore) -> Option<u16> {
        let span = u32::from(PORT_LAST - PORT_FIRST) + 1;
        for _ in 0..64 {
            let port = PORT_FIRST + u16::try_from(rng.next_u32() % span).ok()?;
            if proto != Proto::Icmp && self.is_reserved(port) {
                continue;
            }
            if self.find_in(proto, port).is_none() {
                return Some(port);
            }
        }
        None
    }

    fn touch(&mut self, idx: u32, state: FlowState, now: Instant) {
        let Some(e) = self.entry_mut(idx) else { return };
        e.state = state;
        e.last_used = now;
        e.expires = now + state.timeout();
        let at = e.expires;
        self.note_expiry(at);
    }

    /// Drops expired mappings.
    pub(crate) fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|t| t > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        for i in 0..self.slots.len() {
            let Some(e) = self.slots.get(i).copied().flatten() else {
                continue;
            };
            if e.expires <= now {
                if let Ok(i) = u32::try_from(i) {
                    self.remove(i);
                }
            } else {
                next = Some(next.map_or(e.expires, |n| n.min(e.expires)));
            }
        }
        self.next_expiry = next;
    }

    /// When [`NatTable::expire`] next has work (may be early).
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.next_expiry
    }
}

impl NatTable<Ipv4Address> {
    /// Translates an outbound (LAN to tunnel) IPv4 packet in place: source address to `public`, source
    /// port (ICMP echo identifier) to the flow's public port, creating the mapping if needed.
    pub(crate) fn outbound(
        &mut self,
        now: Instant,
        packet: &mut [u8],
        info: &Ipv4Info,
        public: Ipv4Address,
        rng: &mut dyn RngCore,
    ) -> Result<(), NatError> {
        let proto = Proto::of(info.protocol).ok_or(NatError::UnsupportedProtocol)?;
        let hl = info.header_len;
        let l4 = packet.get(hl..info.total_len).ok_or(NatError::Truncated)?;
        let (private_port, remote_port) = match proto {
            Proto::Tcp | Proto::Udp => proto.ports(l4)?,
            Proto::Icmp => match l4.first() {
                Some(&ECHO_REQUEST) if l4.len() >= 8 => {
                    (be16(l4, 4).ok_or(NatError::Truncated)?, 0)
                }
                Some(&t) if is_error_type(t) => return self.outbound_error(packet, info, public),
                Some(_) => return Err(NatError::UnsupportedProtocol),
                None => return Err(NatError::Truncated),
            },
        };
        let key = FlowKey {
            proto,
            private: info.src,
            private_port,
            remote: info.dst,
            remote_port,
        };
        let tcp_flags = if proto == Proto::Tcp {
            l4.get(13).copied().unwrap_or(0)
        } else {
            0
        };
        let idx = match self.find_out(&key) {
            Some(idx) => {
                let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
                let expired = e.expires <= now;
                let state = next_state(
                    if expired {
                        initial_state(proto)
                    } else {
                        e.state
                    },
                    tcp_flags,
                    false,
                );
                self.touch(idx, state, now);
                idx
            }
            None => {
                let port = self
                    .allocate_port(proto, rng)
                    .ok_or(NatError::PortsExhausted)?;
                let state = next_state(initial_state(proto), tcp_flags, false);
                self.insert(key, port, state, now)
                    .ok_or(NatError::PortsExhausted)?
            }
        };
        let public_port = self
            .entry(idx)
            .map(|e| e.public_port)
            .ok_or(NatError::NoMapping)?;
        rewrite(packet, hl, info.protocol, End::Source, public, public_port);
        Ok(())
    }

    /// Translates an inbound (tunnel to LAN) IPv4 packet addressed to the public address in place and
    /// returns the private destination it now carries.
    pub(crate) fn inbound(
        &mut self,
        now: Instant,
        packet: &mut [u8],
        info: &Ipv4Info,
    ) -> Result<Ipv4Address, NatError> {
        let proto = Proto::of(info.protocol).ok_or(NatError::UnsupportedProtocol)?;
        let hl = info.header_len;
        let l4 = packet.get(hl..info.total_len).ok_or(NatError::Truncated)?;
        let (public_port, remote_port) = match proto {
            Proto::Tcp | Proto::Udp => {
                // Inbound, the destination port is ours (the public one) and the source the remote's.
                let (source, destination) = proto.ports(l4)?;
                (destination, source)
            }
            Proto::Icmp => match l4.first() {
                Some(&ECHO_REPLY) if l4.len() >= 8 => (be16(l4, 4).ok_or(NatError::Truncated)?, 0),
                Some(&t) if is_error_type(t) => return self.inbound_error(now, packet, info),
                Some(_) => return Err(NatError::UnsupportedProtocol),
                None => return Err(NatError::Truncated),
            },
        };
        let tcp_flags = if proto == Proto::Tcp {
            l4.get(13).copied().unwrap_or(0)
        } else {
            0
        };
        let idx = self
            .find_in(proto, public_port)
            .ok_or(NatError::NoMapping)?;
        let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
        if e.expires <= now || e.key.remote != info.src || e.key.remote_port != remote_port {
            return Err(NatError::NoMapping);
        }
        self.touch(idx, next_state(e.state, tcp_flags, true), now);
        rewrite(
            packet,
            hl,
            info.protocol,
            End::Destination,
            e.key.private,
            e.key.private_port,
        );
        Ok(e.key.private)
    }

    /// An ICMP error from a LAN host about a packet that came in through the NAT (RFC 5508 section 4.2):
    /// the quoted packet went remote -> private, so it is rewritten as remote -> public.
    fn outbound_error(
        &mut self,
        packet: &mut [u8],
        info: &Ipv4Info,
        public: Ipv4Address,
    ) -> Result<(), NatError> {
        let hl = info.header_len;
        let inner = quoted(packet, info)?;
        let key = FlowKey {
            proto: inner.proto,
            private: inner.dst,
            private_port: inner.dst_port,
            remote: inner.src,
            remote_port: inner.src_port,
        };
        let idx = self.find_out(&key).ok_or(NatError::NoMapping)?;
        let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
        let icmp = packet
            .get_mut(hl..info.total_len)
            .ok_or(NatError::Truncated)?;
        let quoted_packet = icmp.get_mut(8..).ok_or(NatError::Truncated)?;
        rewrite(
            quoted_packet,
            inner.header_len,
            inner.protocol,
            End::Destination,
            public,
            e.public_port,
        );
        refill_icmp_checksum(icmp);
        rewrite(packet, hl, IpProtocol::Unknown(0), End::Source, public, 0);
        Ok(())
    }

    /// An ICMP error from the far side about a packet we translated (time exceeded, fragmentation
    /// needed, unreachable): the quoted packet went public -> remote and becomes private -> remote.
    fn inbound_error(
        &mut self,
        now: Instant,
        packet: &mut [u8],
        info: &Ipv4Info,
    ) -> Result<Ipv4Address, NatError> {
        let hl = info.header_len;
        let inner = quoted(packet, info)?;
        let idx = self
            .find_in(inner.proto, inner.src_port)
            .ok_or(NatError::NoMapping)?;
        let e = self.entry(idx).copied().ok_or(NatError::NoMapping)?;
        if e.expires <= now
            || e.key.remote != inner.dst
            || e.key.remote_port != inner.dst_port
            || info.dst != inner.src
        {
            return Err(NatError::NoMapping);
        }
        let icmp = packet
            .get_mut(hl..info.total_len)
            .ok_or(NatError::Truncated)?;
        let quoted_packet = icmp.get_mut(8..).ok_or(NatError::Truncated)?;
        rewrite(
            quoted_packet,
            inner.header_len,
            inner.protocol,
            End::Source,
            e.key.private,
            e.key.private_port,
        );
        refill_icmp_checksum(icmp);
        rewrite(
            packet,
            hl,
            IpProtocol::Unknown(0),
            End::Destination,
            e.key.private,
            0,
        );
        Ok(e.key.private)
    }
}

impl<A: NatAddress> NatTable<A> {
    #[cfg(test)]
    fn check_invariants(&self) {
        let live: Vec<u32> = (0..self.slots.len())
            .filter(|&i| self.slots[i].is_some())
            .map(|i| i as u32)
            .collect();
        assert_eq!(live.len(), self.len);
        assert_eq!(self.len + self.free.len(), self.slots.len());
        for &i in &live {
            let e = self.entry(i).unwrap();
            assert_eq!(
                self.find_out(&e.key),
                Some(i),
                "outbound index reaches every entry"
            );
            assert_eq!(
                self.find_in(e.key.proto, e.public_port),
                Some(i),
                "inbound index reaches every entry"
            );
            assert!((PORT_FIRST..=PORT_LAST).contains(&e.public_port));
            if let Some(n) = self.next_expiry {
                assert!(n <= e.expires, "poll_at is never late");
            }
        }
        let mut in_chained = 0;
        for &h in &self.in_heads {
            let mut i = h;
            while i != NONE {
                in_chained += 1;
                i = self.entry(i).unwrap().next_in;
            }
        }
        assert_eq!(in_chained, self.len, "chains hold only live entries");
    }
}

fn initial_state(proto: Proto) -> FlowState {
    match proto {
        Proto::Tcp => FlowState::TcpOpening,
        Proto::Udp => FlowState::UdpUnreplied,
        Proto::Icmp => FlowState::Icmp,
    }
}

/// Conntrack-like state transitions that pick the idle timeout.
fn next_state(state: FlowState, tcp_flags: u8, inbound: bool) -> FlowState {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    match state {
        FlowState::TcpOpening
        | FlowState::TcpEstablished
        | FlowState::TcpClosing
        | FlowState::TcpReset => {
            if tcp_flags & RST != 0 {
                FlowState::TcpReset
            } else if tcp_flags & FIN != 0 {
                FlowState::TcpClosing
            } else if !inbound && tcp_flags & SYN != 0 && tcp_flags & ACK == 0 {
                FlowState::TcpOpening
            } else if inbound && state == FlowState::TcpOpening && tcp_flags & ACK != 0 {
                FlowState::TcpEstablished
            } else {
                state
            }
        }
        FlowState::UdpUnreplied if inbound => FlowState::UdpReplied,
        s => s,
    }
}

/// The transport identifiers of the datagram quoted in an ICMP error.
#[derive(Debug, Clone, Copy)]
struct Quoted {
    proto: Proto,
    protocol: IpProtocol,
    header_len: usize,
    src: Ipv4Address,
    dst: Ipv4Address,
    src_port: u16,
    dst_port: u16,
}

fn quoted(packet: &[u8], info: &Ipv4Info) -> Result<Quoted, NatError> {
    let inner = packet
        .get(info.header_len + 8..info.total_len)
        .ok_or(NatError::Truncated)?;
    let &vihl = inner.first().ok_or(NatError::Truncated)?;
    let header_len = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || header_len < ip::HEADER_LEN || inner.len() < header_len + 8 {
        return Err(NatError::Truncated);
    }
    let protocol = IpProtocol::from(*inner.get(9).ok_or(NatError::Truncated)?);
    let proto = Proto::of(protocol).ok_or(NatError::UnsupportedProtocol)?;
    let src = Ipv4Address::from(bytes4(inner, SRC).ok_or(NatError::Truncated)?);
    let dst = Ipv4Address::from(bytes4(inner, DST).ok_or(NatError::Truncated)?);
    let l4 = inner.get(header_len..).ok_or(NatError::Truncated)?;
    let (src_port, dst_port) = match proto {
        Proto::Tcp | Proto::Udp => (
            be16(l4, 0).ok_or(NatError::Truncated)?,
            be16(l4, 2).ok_or(NatError::Truncated)?,
        ),
        // Only echo requests we sent out (or echo replies a LAN host sent) are quoted meaningfully.
        Proto::Icmp => match l4.first() {
            Some(&ECHO_REQUEST) | Some(&ECHO_REPLY) => {
                let id = be16(l4, 4).ok_or(NatError::Truncated)?;
                (id, 0)
            }
            _ => return Err(NatError::UnsupportedProtocol),
        },
    };
    Ok(Quoted {
        proto,
        protocol,
        header_len,
        src,
        dst,
        src_port,
        dst_port,
    })
}

fn refill_icmp_checksum(icmp: &mut [u8]) {
    if set_be16(icmp, ICMP_CHECKSUM, 0).is_some() {
        let c = internet(icmp);
        let _ = set_be16(icmp, ICMP_CHECKSUM, c);
    }
}

/// Rewrites one end's address and port (ICMP echo identifier for ICMP) of the IPv4 packet at the start
/// of `packet`, patching the IP header checksum and the transport checksum (pseudo-header included)
/// incrementally. Works on quoted, truncated packets: fields past the end are simply not touched.
fn rewrite(
    packet: &mut [u8],
    hl: usize,
    protocol: IpProtocol,
    end: End,
    addr: Ipv4Address,
    port: u16,
) {
    let addr_at = if end == End::Source { SRC } else { DST };
    let Some(old_addr) = bytes4(packet, addr_at) else {
        return;
    };
    let new_addr = addr.octets();
    if set_bytes4(packet, addr_at, new_addr).is_none() {
        return;
    }
    patch32(packet, CHECKSUM, old_addr, new_addr, false);
    let (port_at, check_at, udp, pseudo) = match protocol {
        IpProtocol::Tcp => (
            if end == End::Source { 0 } else { 2 },
            TCP_CHECKSUM,
            false,
            true,
        ),
        IpProtocol::Udp => (
            if end == End::Source { 0 } else { 2 },
            UDP_CHECKSUM,
            true,
            true,
        ),
        IpProtocol::Icmp => (4, ICMP_CHECKSUM, false, false),
        _ => return,
    };
    let Some(l4) = packet.get_mut(hl..) else {
        return;
    };
    if pseudo {
        patch32(l4, check_at, old_addr, new_addr, udp);
    }
    if let Some(old_port) = be16(l4, port_at) {
        if set_be16(l4, port_at, port).is_some() {
            patch16(l4, check_at, old_port, port, udp);
        }
    }
}

#[cfg(test)]
mod tests;
mod v6;
