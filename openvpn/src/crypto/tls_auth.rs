//! tls-auth: an HMAC "firewall" over every control packet (wire reference §2.3).
//!
//! ```text
//! wire:  [op|kid 1][session id 8][HMAC hlen][replay counter 4][replay time 4][ACK block][msg-id][payload]
//! HMAC(key, replay id || op || session id || ACK block || msg-id || payload)
//! ```
//!
//! This module converts between that layout and the plain layout of `wire::control`; replay state is kept
//! by the caller (see `crypto::control`).

use super::key2::{hmac_slot, Digest, KeyDirection, KEY2_LEN};
use super::wrap_error::{UnwrapError, WrapError};
use crate::wire::control::HEADER_LEN;
use crate::wire::ReplayId;
use ring::hmac;

/// tls-auth keys for both directions.
#[derive(Clone, Debug)]
pub struct TlsAuth {
    digest: Digest,
    send: hmac::Key,
    recv: hmac::Key,
}

impl TlsAuth {
    /// Keys from a 256-byte static key (`tls-auth` file) with the configured `key-direction` and `auth`.
    pub fn new(key2: &[u8; KEY2_LEN], direction: KeyDirection, digest: Digest) -> TlsAuth {
        TlsAuth {
            digest,
            send: digest.hmac_key(hmac_slot(key2, direction.send_index())),
            recv: digest.hmac_key(hmac_slot(key2, direction.recv_index())),
        }
    }

    /// The HMAC digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Bytes added to a plain control packet: HMAC plus the 8-byte replay id.
    pub fn overhead(&self) -> usize {
        self.digest.output_len() + ReplayId::LEN
    }

    fn mac(key: &hmac::Key, id: &[u8], header: &[u8], rest: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(id);
        ctx.update(header);
        ctx.update(rest);
        ctx.sign()
    }

    /// Wraps the plain control packet `plain` with replay id `id` into `out`; returns the wire length.
    pub fn wrap(&self, plain: &[u8], id: ReplayId, out: &mut [u8]) -> Result<usize, WrapError> {
        let header = plain.get(..HEADER_LEN).ok_or(WrapError::Truncated)?;
        let rest = plain.get(HEADER_LEN..).unwrap_or(&[]);
        let hlen = self.digest.output_len();
        let total = plain.len() + self.overhead();
        let out = out.get_mut(..total).ok_or(WrapError::BufferTooSmall)?;
        let idb = id.to_bytes();
        let tag = Self::mac(&self.send, &idb, header, rest);
        let (o_header, o_rest) = out.split_at_mut(HEADER_LEN);
        o_header.copy_from_slice(header);
        let (o_mac, o_rest) = o_rest.split_at_mut(hlen);
        o_mac.copy_from_slice(tag.as_ref());
        let (o_id, o_body) = o_rest.split_at_mut(ReplayId::LEN);
        o_id.copy_from_slice(&idb);
        o_body.copy_from_slice(rest);
        Ok(total)
    }

    /// Verifies a received tls-auth packet and writes its plain form into `out`.
    /// Returns the replay id (for the caller's replay check) and the plain length.
    pub fn unwrap(&self, wire: &[u8], out: &mut [u8]) -> Result<(ReplayId, usize), UnwrapError> {
        let hlen = self.digest.output_len();
        let header = wire.get(..HEADER_LEN).ok_or(UnwrapError::Truncated)?;
        let mac = wire
            .get(HEADER_LEN..HEADER_LEN + hlen)
            .ok_or(UnwrapError::Truncated)?;
        let idb = wire
            .get(HEADER_LEN + hlen..HEADER_LEN + hlen + ReplayId::LEN)
            .ok_or(UnwrapError::Truncated)?;
        let rest = wire.get(HEADER_LEN + hlen + ReplayId::LEN..).unwrap_or(&[]);
        let expected = Self::mac(&self.recv, idb, header, rest);
        if !super::ct_eq(expected.as_ref(), mac) {
            return Err(UnwrapError::Auth);
        }
        let id = ReplayId::parse(idb).map_err(|_| UnwrapError::Truncated)?;
        let total = HEADER_LEN + rest.len();
        let out = out.get_mut(..total).ok_or(UnwrapError::BufferTooSmall)?;
        let (o_header, o_rest) = out.split_at_mut(HEADER_LEN);
        o_header.copy_from_slice(header);
        o_rest.copy_from_slice(rest);
        Ok((id, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_util::{hex, test_pkt_static_key};

    #[test]
    fn t2_sha1_reset_verifies_and_rewraps() {
        let wire = hex(
            "38de694c5c7bfba27493537c1ded4e781529ae7cfe4b8c6d6b2b51f05a0000000161d3bf6c0000000000",
        );
        let key = test_pkt_static_key();
        // The server verifies with direction 0.
        let server = TlsAuth::new(&key, KeyDirection::Normal, Digest::Sha1);
        let mut plain = [0u8; 64];
        let (id, len) = server.unwrap(&wire, &mut plain).unwrap();
        assert_eq!(
            id,
            ReplayId {
                counter: 1,
                time: 0x61d3bf6c
            }
        );
        assert_eq!(plain[..len], hex("38de694c5c7bfba2740000000000")[..]);
        // The client (direction 1) produces the identical packet.
        let client = TlsAuth::new(&key, KeyDirection::Inverse, Digest::Sha1);
        let mut out = [0u8; 64];
        let n = client.wrap(&plain[..len], id, &mut out).unwrap();
        assert_eq!(out[..n], wire[..]);
        // Wrong direction and flipped bytes are rejected.
        assert_eq!(client.unwrap(&wire, &mut plain), Err(UnwrapError::Auth));
        for i in 0..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                server.unwrap(&bad, &mut plain),
                Err(UnwrapError::Auth),
                "byte {i}"
            );
        }
        for len in 0..wire.len() {
            assert!(server.unwrap(&wire[..len], &mut plain).is_err());
        }
    }

    #[test]
    fn l1_real_sha256_reset() {
        let ta = hex(crate::crypto::tls_crypt::tests::SAMPLE_TA_KEY);
        let key: [u8; 256] = ta.try_into().unwrap();
        let wire = hex("38b458f0b327b9a9e14c897193c03b5abd4ea0afe2475d08984c484e90ac669b90179ef197d4849322000000016b071c480000000000");
        let server = TlsAuth::new(&key, KeyDirection::Normal, Digest::Sha256);
        let mut plain = [0u8; 64];
        let (id, len) = server.unwrap(&wire, &mut plain).unwrap();
        assert_eq!(
            id,
            ReplayId {
                counter: 1,
                time: 0x6b071c48
            }
        );
        assert_eq!(len, 14);
        let client = TlsAuth::new(&key, KeyDirection::Inverse, Digest::Sha256);
        let mut out = [0u8; 64];
        let n = client.wrap(&plain[..len], id, &mut out).unwrap();
        assert_eq!(out[..n], wire[..]);
        assert_eq!(n, 54);
    }

    #[test]
    fn sha512_round_trip_bidirectional() {
        let key = test_pkt_static_key();
        let a = TlsAuth::new(&key, KeyDirection::Bidirectional, Digest::Sha512);
        let plain = hex("206891923fa3103437000000000548656c6c6f");
        let mut wire = [0u8; 128];
        let n = a
            .wrap(
                &plain,
                ReplayId {
                    counter: 9,
                    time: 1,
                },
                &mut wire,
            )
            .unwrap();
        assert_eq!(n, plain.len() + 72);
        let mut back = [0u8; 128];
        let (id, m) = a.unwrap(&wire[..n], &mut back).unwrap();
        assert_eq!((id.counter, &back[..m]), (9, &plain[..]));
        assert_eq!(
            a.wrap(&plain, id, &mut [0u8; 10]),
            Err(WrapError::BufferTooSmall)
        );
    }
}
