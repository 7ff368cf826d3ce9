//! The stateless HMAC session-id cookie of a UDP server, and the rate limit of the replies it sends before
//! any state exists (wire reference §2.8; OpenVPN `ssl_pkt.c` `calculate_session_id_hmac`,
//! `check_session_hmac_and_pkt_id`, `reflect_filter.c`).
//!
//! Layer: pure functions over a caller-supplied secret and time. Nothing here reads a clock or a random
//! source, allocates, or keeps per-client state: the whole point of the cookie is that a flood of spoofed
//! resets costs the server no memory. The [`InitialRateLimit`] is one global token bucket (O(1) memory).
//!
//! The server's session id in its reset is `HMAC-SHA256(secret, slot || client address || client sid)`
//! truncated to 8 bytes, with `slot = now / ((hand_window + 1) / 2)`. A third packet is accepted only if the
//! session id it echoes equals the cookie of the current slot or one of the two before it, compared in
//! constant time and **exactly** (OpenVPN 2.6.0–2.6.15 accepted any value: CVE-2025-13086).

use crate::time::Instant;
use crate::wire::SessionId;
use core::fmt;
use core::net::SocketAddr;
use ring::hmac;

/// Length of the cookie secret.
pub const SECRET_LEN: usize = 32;
/// `hand-window` default in seconds (OpenVPN `--hand-window`).
pub const DEFAULT_HAND_WINDOW: u32 = 60;
/// How many slots before the current one a cookie stays valid (§2.8: offsets −2..=0).
const PAST_SLOTS: u64 = 2;

/// Derives and checks the server's session ids of the stateless handshake from one secret.
///
/// The secret must be random and private to this server process (32 bytes from the caller's CSPRNG); it
/// may be replaced at any time, which only invalidates handshakes in flight.
#[derive(Clone)]
pub struct CookieJar {
    key: hmac::Key,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieJar { .. }")
    }
}

impl CookieJar {
    /// A jar keyed with `secret`.
    pub fn new(secret: &[u8; SECRET_LEN]) -> CookieJar {
        CookieJar {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The time slot `now_secs` falls in: slots last `(hand_window + 1) / 2` seconds (at least one).
    pub fn slot(now_secs: u64, hand_window: u32) -> u64 {
        let len = u64::from(hand_window).saturating_add(1) / 2;
        now_secs / len.max(1)
    }

    /// The session id the server puts in its reset to the client `client_sid` at `peer`, for the slot of
    /// `now_secs` (any clock in seconds, the same one for [`check`](Self::check)).
    pub fn server_session_id(
        &self,
        client_sid: SessionId,
        peer: SocketAddr,
        now_secs: u64,
        hand_window: u32,
    ) -> SessionId {
        self.cookie(Self::slot(now_secs, hand_window), peer, client_sid)
    }

    /// True only if `echoed` (the session id a third packet names as ours) equals the cookie of
    /// `client_sid` at `peer` for the current slot or one of the two before it. Never a future slot; every
    /// candidate is compared in constant time, with no early exit.
    pub fn check(
        &self,
        echoed: SessionId,
        client_sid: SessionId,
        peer: SocketAddr,
        now_secs: u64,
        hand_window: u32,
    ) -> bool {
        let now_slot = Self::slot(now_secs, hand_window);
        let mut ok = false;
        for back in 0..=PAST_SLOTS {
            if let Some(slot) = now_slot.checked_sub(back) {
                let expected = self.cookie(slot, peer, client_sid);
                ok |= crate::crypto::ct_eq(expected.as_bytes(), echoed.as_bytes());
            }
        }
        ok
    }

    fn cookie(&self, slot: u64, peer: SocketAddr, client_sid: SessionId) -> SessionId {
        let mut addr = [0u8; ADDR_BYTES_MAX];
        let used = encode_peer(peer, &mut addr);
        // OpenVPN writes the slot as 4 bytes; keep the low 32 bits (a slot of 30 s wraps after 4000 years).
        let slot32 = u32::try_from(slot & u64::from(u32::MAX)).unwrap_or(0);
        let mut sid = self.mac(slot32, addr.get(..used).unwrap_or(&[]), client_sid);
        // All-zero means "undefined" on the wire; map that one value (chance 2^-64) to a valid id.
        if sid.is_zero() {
            sid.0 = [0, 0, 0, 0, 0, 0, 0, 1];
        }
        sid
    }

    /// HMAC-SHA256 over `slot (4 bytes BE) || address bytes || client sid`, truncated to 8 bytes: the
    /// construction of OpenVPN 2.6 (which hashes the raw `sockaddr`; ours is a portable encoding).
    fn mac(&self, slot: u32, addr: &[u8], client_sid: SessionId) -> SessionId {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&slot.to_be_bytes());
        ctx.update(addr);
        ctx.update(client_sid.as_bytes());
        let tag = ctx.sign();
        let mut id = [0u8; SessionId::LEN];
        if let Some(head) = tag.as_ref().get(..SessionId::LEN) {
            id.copy_from_slice(head);
        }
        SessionId(id)
    }
}

/// Family byte, port and the longest address (IPv6).
const ADDR_BYTES_MAX: usize = 1 + 2 + 16;

/// Writes `family (4 or 6) || port BE || address` into `out`; returns the length.
fn encode_peer(peer: SocketAddr, out: &mut [u8; ADDR_BYTES_MAX]) -> usize {
    let mut ip = [0u8; 16];
    let (family, ip_len) = match peer {
        SocketAddr::V4(a) => {
            if let Some(dst) = ip.get_mut(..4) {
                dst.copy_from_slice(&a.ip().octets());
            }
            (4u8, 4)
        }
        SocketAddr::V6(a) => {
            ip = a.ip().octets();
            (6u8, 16)
        }
    };
    let port = peer.port().to_be_bytes();
    let bytes = core::iter::once(family)
        .chain(port)
        .chain(ip.into_iter().take(ip_len));
    let mut used = 0;
    for (slot, b) in out.iter_mut().zip(bytes) {
        *slot = b;
        used += 1;
    }
    used
}

/// `connect-freq-initial N S`: at most `N` replies to initial packets per `S` seconds (default 100 per
/// 10 s), so the server cannot be used to reflect or amplify traffic towards a spoofed source. A token
/// bucket with O(1) memory: it starts full, refills continuously at `N / S` and holds at most `N`.
#[derive(Clone, Debug)]
pub struct InitialRateLimit {
    /// Tokens are counted in units of 1/period_ms of a reply, so refilling needs no division.
    capacity: u64,
    cost: u64,
    refill_per_ms: u64,
    units: u64,
    last: Option<Instant>,
    allowed: u64,
    dropped: u64,
}

/// `connect-freq-initial` default: replies per period.
pub const DEFAULT_INITIAL_REPLIES: u32 = 100;
/// `connect-freq-initial` default: period in seconds.
pub const DEFAULT_INITIAL_PERIOD_SECS: u32 = 10;

impl InitialRateLimit {
    /// At most `replies` replies per `period_secs` seconds (a period of 0 counts as 1 s).
    pub fn new(replies: u32, period_secs: u32) -> InitialRateLimit {
        let period_ms = u64::from(period_secs.max(1)).saturating_mul(1000);
        let capacity = u64::from(replies).saturating_mul(period_ms);
        InitialRateLimit {
            capacity,
            cost: period_ms,
            refill_per_ms: u64::from(replies),
            units: capacity,
            last: None,
            allowed: 0,
            dropped: 0,
        }
    }

    /// Takes one reply from the bucket at `now`; false means: stay silent.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = match self.last {
            Some(last) => now.as_millis().saturating_sub(last.as_millis()),
            None => 0,
        };
        // A clock that steps back refills nothing and keeps the later reference.
        if self.last.is_none_or(|last| now >= last) {
            self.last = Some(now);
        }
        self.units = self
            .units
            .saturating_add(elapsed.saturating_mul(self.refill_per_ms))
            .min(self.capacity);
        if self.units >= self.cost && self.cost > 0 && self.capacity > 0 {
            self.units -= self.cost;
            self.allowed = self.allowed.saturating_add(1);
            true
        } else {
            self.dropped = self.dropped.saturating_add(1);
            false
        }
    }

    /// Gives one reply back: a completed three-way handshake does not count against the initial limit
    /// (as OpenVPN's `reflect_filter_rate_limit_decrease`).
    pub fn refund(&mut self) {
        self.units = self.units.saturating_add(self.cost).min(self.capacity);
    }

    /// Replies allowed so far.
    pub fn allowed(&self) -> u64 {
        self.allowed
    }

    /// Replies refused so far (the log line "dropped N initial handshake packets").
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Default for InitialRateLimit {
    /// 100 replies per 10 seconds.
    fn default() -> Self {
        InitialRateLimit::new(DEFAULT_INITIAL_REPLIES, DEFAULT_INITIAL_PERIOD_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_util::hex;
    use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), port))
    }

    const CSID: SessionId = SessionId([0, 1, 2, 3, 4, 5, 6, 7]);

    fn jar() -> CookieJar {
        let mut secret = [0u8; 32];
        secret[..3].copy_from_slice(&[1, 2, 3]);
        CookieJar::new(&secret)
    }

    /// §10.4 T3: the same HMAC construction as OpenVPN 2.6 over the same input bytes (its raw
    /// little-endian `sockaddr_in`) gives OpenVPN's value.
    #[test]
    fn t3_matches_openvpn_construction() {
        assert_eq!(CookieJar::slot(1005, 100), 20);
        let sockaddr = hex("020004ab0ff000ff0000000000000000");
        assert_eq!(
            jar().mac(20, &sockaddr, CSID).0[..],
            hex("8beb3d201453be0a")[..]
        );
    }

    #[test]
    fn exact_check_refuses_everything_but_the_cookie() {
        let jar = jar();
        let peer = v4([15, 240, 0, 255], 1195);
        let now = 1_700_000_000;
        let sid = jar.server_session_id(CSID, peer, now, 60);
        assert!(!sid.is_zero());
        // Same slot: the same cookie (a retransmitted reset gets the same answer).
        let same_slot = (CookieJar::slot(now, 60) * 30) + 29;
        assert_eq!(jar.server_session_id(CSID, peer, same_slot, 60), sid);
        assert!(jar.check(sid, CSID, peer, now, 60));
        // Later slots, up to two back.
        assert!(jar.check(sid, CSID, peer, now + 30, 60));
        assert!(jar.check(sid, CSID, peer, now + 60, 60));
        // Expired: three slots later.
        let slot = CookieJar::slot(now, 60);
        assert!(!jar.check(sid, CSID, peer, (slot + 3) * 30, 60));
        // A wrong echoed id (every single-bit flip), another address, port or client sid.
        for bit in 0..64 {
            let mut bad = sid;
            bad.0[bit / 8] ^= 1 << (bit % 8);
            assert!(!jar.check(bad, CSID, peer, now, 60), "bit {bit}");
        }
        assert!(!jar.check(SessionId::ZERO, CSID, peer, now, 60));
        assert!(!jar.check(sid, CSID, v4([15, 240, 0, 254], 1195), now, 60));
        assert!(!jar.check(sid, CSID, v4([15, 240, 0, 255], 1196), now, 60));
        let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1195, 0, 0));
        assert!(!jar.check(sid, CSID, v6, now, 60));
        assert!(!jar.check(sid, SessionId([0, 1, 2, 3, 4, 5, 6, 8]), peer, now, 60));
        // Another secret.
        assert!(!CookieJar::new(&[9; 32]).check(sid, CSID, peer, now, 60));
        // Degenerate windows and times do not panic.
        let _ = jar.server_session_id(CSID, v6, u64::MAX, u32::MAX);
        assert!(jar.check(jar.server_session_id(CSID, v6, 0, 0), CSID, v6, 0, 0));
    }

    #[test]
    fn future_slot_is_refused() {
        let jar = jar();
        let peer = v4([10, 0, 0, 1], 5000);
        let now = 3000;
        let next = jar.server_session_id(CSID, peer, now + 30, 60);
        assert!(!jar.check(next, CSID, peer, now, 60));
        assert!(jar.check(next, CSID, peer, now + 30, 60));
    }

    #[test]
    fn rate_limit_token_bucket() {
        let mut rl = InitialRateLimit::new(100, 10);
        let t0 = Instant::from_secs(50);
        assert!((0..100).all(|_| rl.allow(t0)));
        assert!(!rl.allow(t0));
        // 10 replies per second refill.
        assert!(rl.allow(Instant::from_millis(50_100)));
        assert!(!rl.allow(Instant::from_millis(50_100)));
        // A clock stepping back refills nothing.
        assert!(!rl.allow(Instant::from_secs(1)));
        rl.refund();
        assert!(rl.allow(Instant::from_millis(50_100)));
        // After a full period the bucket is full again, and never above capacity.
        let t1 = Instant::from_secs(1000);
        assert_eq!((0..150).filter(|_| rl.allow(t1)).count(), 100);
        assert_eq!(rl.allowed(), 202);
        assert_eq!(rl.dropped(), 53);
        let mut none = InitialRateLimit::new(0, 0);
        assert!(!none.allow(Instant::ZERO));
        let mut huge = InitialRateLimit::new(u32::MAX, u32::MAX);
        assert!(huge.allow(Instant::from_millis(u64::MAX)));
    }
}
