//! DNS forwarder on the gateway address (UDP 53): relays LAN queries through the tunnel to the DNS
//! servers the OpenVPN server pushed, and maps the answers back, so LAN clients never query a resolver
//! on the public side. Without a pushed server it answers SERVFAIL instead of leaking.
//!
//! Layer: a bounded table of queries in flight plus header edits (RFC 1035 section 4.1.1). Each relayed
//! query gets a fresh random source port and ID (RFC 5452 section 9) so off-path answers are unlikely to
//! be accepted. The router builds the UDP/IPv4 packets around the payloads.

use alloc::vec::Vec;

use rand_core::RngCore;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address};

use crate::checksum::{be16, set_be16};
use crate::router::PortId;

/// First source port used for relayed queries (the NAT uses the ports below).
pub const PORT_FIRST: u16 = 49152;
/// How long a relayed query waits for its answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// DNS header length (RFC 1035 section 4.1.1).
const HEADER_LEN: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const OPCODE_MASK: u16 = 0x7800;
const RCODE_SERVFAIL: u16 = 2;

/// The LAN client a query came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DnsClient {
    /// The LAN port the query came in on.
    pub lan: PortId,
    pub mac: EthernetAddress,
    pub ip: Ipv4Address,
    pub port: u16,
    /// The address the client sent the query to (the gateway's, or a virtual DNS address): the
    /// answer comes from it.
    pub asked: Ipv4Address,
    /// The client's query ID, restored in the answer.
    pub id: u16,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    client: DnsClient,
    server: Ipv4Address,
    port: u16,
    id: u16,
    deadline: Instant,
}

/// Where a query is relayed to and under which port and ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relay {
    pub server: Ipv4Address,
    pub port: u16,
    pub id: u16,
}

/// Queries in flight, at most `capacity`.
#[derive(Debug)]
pub(crate) struct DnsForwarder {
    in_flight: Vec<InFlight>,
    capacity: usize,
}

/// True for a DNS query header (QR clear) of at least 12 bytes.
pub(crate) fn is_query(payload: &[u8]) -> bool {
    payload.len() >= HEADER_LEN && be16(payload, 2).is_some_and(|f| f & FLAG_QR == 0)
}

impl DnsForwarder {
    pub(crate) fn new(capacity: usize) -> Self {
        DnsForwarder {
            in_flight: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// Records a query from `client` and chooses the server, port and ID to relay it with. A client's
    /// retransmission (same client, same ID) goes to the next server in `servers`.
    pub(crate) fn relay(
        &mut self,
        now: Instant,
        client: DnsClient,
        servers: &[Ipv4Address],
        rng: &mut dyn RngCore,
    ) -> Option<Relay> {
        self.expire(now);
        if servers.is_empty() {
            return None;
        }
        let retries = self.in_flight.iter().filter(|q| q.client == client).count();
        let server = *servers.get(retries % servers.len())?;
        let (port, id) = loop {
            let r = rng.next_u32();
            let port = PORT_FIRST | u16::try_from(r >> 16).ok()?;
            let id = u16::try_from(r & 0xffff).ok()?;
            if !self.in_flight.iter().any(|q| q.port == port && q.id == id) {
                break (port, id);
            }
        };
        if self.in_flight.len() >= self.capacity {
            if let Some(oldest) = self
                .in_flight
                .iter()
                .enumerate()
                .min_by_key(|(_, q)| q.deadline)
                .map(|(i, _)| i)
            {
                self.in_flight.swap_remove(oldest);
            }
        }
        self.in_flight.push(InFlight {
            client,
            server,
            port,
            id,
            deadline: now + QUERY_TIMEOUT,
        });
        Some(Relay { server, port, id })
    }

    /// Matches an answer from `server` to our `port`; returns the client to deliver it to and forgets the
    /// query. Answers from anyone else, or with the wrong ID, match nothing.
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        server: Ipv4Address,
        port: u16,
        payload: &[u8],
    ) -> Option<DnsClient> {
        if payload.len() < HEADER_LEN || be16(payload, 2)? & FLAG_QR == 0 {
            return None;
        }
        let id = be16(payload, 0)?;
        let i = self
            .in_flight
            .iter()
            .position(|q| q.port == port && q.id == id && q.server == server && q.deadline > now)?;
        Some(self.in_flight.swap_remove(i).client)
    }

    /// Drops queries past their deadline.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.in_flight.retain(|q| q.deadline > now);
    }

    /// The earliest query deadline.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.in_flight.iter().map(|q| q.deadline).min()
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// Replaces the ID of a DNS message.
pub(crate) fn set_id(payload: &mut [u8], id: u16) -> Option<()> {
    set_be16(payload, 0, id)
}

/// Builds a SERVFAIL answer to `query` into `out`: the header and question section echoed, QR and RA set,
/// no records (RFC 1035 section 4.1.1). Returns its length, or `None` for a malformed query.
pub(crate) fn servfail(query: &[u8], out: &mut [u8]) -> Option<usize> {
    if !is_query(query) {
        return None;
    }
    let qdcount = be16(query, 4)?;
    let mut end = HEADER_LEN;
    for _ in 0..qdcount.min(1) {
        end = skip_name(query, end)?.checked_add(4)?;
    }
    let question_count = qdcount.min(1);
    let body = query.get(..end)?;
    out.get_mut(..end)?.copy_from_slice(body);
    let flags = be16(query, 2)?;
    set_be16(
        out,
        2,
        FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | RCODE_SERVFAIL,
    )?;
    set_be16(out, 4, question_count)?;
    set_be16(out, 6, 0)?;
    set_be16(out, 8, 0)?;
    set_be16(out, 10, 0)?;
    Some(end)
}

/// Returns the offset just past the (uncompressed, as in a question) domain name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            1..=63 => at = at.checked_add(1 + usize::from(len))?,
            // A compression pointer ends the name (RFC 1035 section 4.1.4).
            0xc0..=0xff => {
                msg.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use smoltcp::wire::{DnsPacket, DnsRcode};

    /// A real query for example.com A, as sent by `dig` (with an EDNS OPT record).
    pub(crate) const QUERY: [u8; 40] = [
        0xab, 0xcd, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07, b'e', b'x',
        b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    fn client() -> DnsClient {
        DnsClient {
            lan: PortId::FIRST,
            mac: EthernetAddress([2, 0, 0, 0, 0, 5]),
            ip: Ipv4Address::new(10, 8, 0, 5),
            asked: Ipv4Address::new(10, 8, 0, 1),
            port: 40001,
            id: 0xabcd,
        }
    }

    #[test]
    fn relay_and_answer_mapping() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut f = DnsForwarder::new(4);
        let servers = [
            Ipv4Address::new(10, 200, 0, 1),
            Ipv4Address::new(10, 200, 0, 2),
        ];
        let now = Instant::from_secs(1);
        let r = f.relay(now, client(), &servers, &mut rng).unwrap();
        assert_eq!(r.server, servers[0]);
        assert!(r.port >= PORT_FIRST);
        // A retransmission goes to the second server.
        let r2 = f.relay(now, client(), &servers, &mut rng).unwrap();
        assert_eq!(r2.server, servers[1]);

        let mut answer = QUERY;
        set_id(&mut answer, r.id).unwrap();
        answer[2] |= 0x80;
        assert_eq!(
            f.answer(now, servers[1], r.port, &answer),
            None,
            "wrong server"
        );
        assert_eq!(
            f.answer(now, servers[0], r.port ^ 1, &answer),
            None,
            "wrong port"
        );
        assert_eq!(
            f.answer(now, servers[0], r.port, &QUERY),
            None,
            "a query is not an answer"
        );
        assert_eq!(f.answer(now, servers[0], r.port, &answer), Some(client()));
        assert_eq!(
            f.answer(now, servers[0], r.port, &answer),
            None,
            "answered once"
        );
        f.expire(now + QUERY_TIMEOUT);
        assert_eq!(f.in_flight(), 0);
    }

    #[test]
    fn bounded_in_flight() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let mut f = DnsForwarder::new(4);
        let servers = [Ipv4Address::new(10, 200, 0, 1)];
        for i in 0..100u16 {
            let c = DnsClient { id: i, ..client() };
            f.relay(Instant::from_millis(i64::from(i)), c, &servers, &mut rng)
                .unwrap();
            assert!(f.in_flight() <= 4);
        }
        assert!(f.relay(Instant::ZERO, client(), &[], &mut rng).is_none());
    }

    #[test]
    fn servfail_parses_with_smoltcp() {
        let mut out = vec![0u8; 512];
        let n = servfail(&QUERY, &mut out).unwrap();
        let p = DnsPacket::new_checked(&out[..n]).unwrap();
        assert_eq!(p.transaction_id(), 0xabcd);
        assert_eq!(p.rcode(), DnsRcode::ServFail);
        assert_eq!(p.question_count(), 1);
        assert_eq!(p.answer_record_count(), 0);
        assert_eq!(&out[12..n], &QUERY[12..29], "question echoed");
        assert!(servfail(&QUERY[..20], &mut out).is_none());
        assert!(servfail(&[], &mut out).is_none());
    }
}
