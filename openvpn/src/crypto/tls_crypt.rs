//! tls-crypt: AES-256-CTR + HMAC-SHA256 over every control packet, SIV-style (wire reference §2.6).
//!
//! ```text
//! wire = [op|kid 1][session id 8][replay id 8] || tag (32) || AES-256-CTR(Ke, IV = tag[0..16], body)
//! tag  = HMAC-SHA256(Ka, header17 || body)         body = [ACK block][msg-id][payload]
//! ```
//!
//! The same construction (with an empty header) protects renegotiations under dynamic tls-crypt (§2.9).
//! Directions are fixed by role: the client sends with keys[1] and receives with keys[0] (§2.5).

use super::data::Role;
use super::key2::{cipher_slot, hmac_slot, KeyDirection, KEY2_LEN};
use super::wrap_error::{UnwrapError, WrapError};
use crate::wire::control::HEADER_LEN;
use crate::wire::ReplayId;
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::Aes256;
use ring::hmac;

/// Length of the authentication tag.
pub const TAG_LEN: usize = 32;
/// Bytes tls-crypt adds to a plain control packet (replay id + tag).
pub const OVERHEAD: usize = ReplayId::LEN + TAG_LEN;

/// XORs the AES-256-CTR keystream (128-bit big-endian counter starting at `iv`, as OpenSSL) into `data`.
pub(crate) fn ctr_xor(cipher: &Aes256, iv: [u8; 16], data: &mut [u8]) {
    let core =
        ctr::CtrCore::<Aes256, ctr::flavors::Ctr128BE>::inner_iv_init(cipher.clone(), &iv.into());
    ctr::Ctr128BE::<Aes256>::from_core(core).apply_keystream(data);
}

#[derive(Clone)]
struct DirectionKeys {
    cipher: Aes256,
    auth: hmac::Key,
}

impl DirectionKeys {
    fn new(key2: &[u8; KEY2_LEN], index: usize) -> Option<DirectionKeys> {
        let ke = cipher_slot(key2, index).get(..32)?;
        let ka = hmac_slot(key2, index).get(..32)?;
        Some(DirectionKeys {
            cipher: Aes256::new_from_slice(ke).ok()?,
            auth: hmac::Key::new(hmac::HMAC_SHA256, ka),
        })
    }

    fn tag(&self, header: &[u8], body: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.auth);
        ctx.update(header);
        ctx.update(body);
        ctx.sign()
    }

    fn apply_ctr(&self, tag: &[u8], data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(tag.get(..16).unwrap_or(&[0; 16]));
        super::tls_crypt::ctr_xor(&self.cipher, iv, data);
    }
}

/// tls-crypt keys for both directions.
#[derive(Clone)]
pub struct TlsCrypt {
    send: DirectionKeys,
    recv: DirectionKeys,
}

impl core::fmt::Debug for TlsCrypt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TlsCrypt { .. }")
    }
}

impl TlsCrypt {
    /// Keys from a 256-byte tls-crypt key (or tls-crypt-v2 Kc, or dynamic key) for the given direction.
    pub fn new(key2: &[u8; KEY2_LEN], direction: KeyDirection) -> TlsCrypt {
        // Slots are 64 bytes, so both lookups succeed; the fallback only keeps this total.
        let make = |i| {
            DirectionKeys::new(key2, i).unwrap_or_else(|| DirectionKeys {
                cipher: Aes256::new(&[0u8; 32].into()),
                auth: hmac::Key::new(hmac::HMAC_SHA256, &[]),
            })
        };
        TlsCrypt {
            send: make(direction.send_index()),
            recv: make(direction.recv_index()),
        }
    }

    /// Client-role keys: send with keys[1], receive with keys[0].
    pub fn client(key2: &[u8; KEY2_LEN]) -> TlsCrypt {
        TlsCrypt::new(key2, KeyDirection::Inverse)
    }

    /// Server-role keys: send with keys[0], receive with keys[1].
    pub fn server(key2: &[u8; KEY2_LEN]) -> TlsCrypt {
        TlsCrypt::new(key2, KeyDirection::Normal)
    }

    /// Keys for `role`: the direction of tls-crypt, tls-crypt-v2 Kc and dynamic tls-crypt is fixed by role
    /// (§2.5), never by `key-direction`.
    pub fn for_role(key2: &[u8; KEY2_LEN], role: Role) -> TlsCrypt {
        match role {
            Role::Client => TlsCrypt::client(key2),
            Role::Server => TlsCrypt::server(key2),
        }
    }

    /// Seals `header || id || body` as `header || id || tag || CTR(body)` into `out`; returns the length.
    /// `header` is the 9-byte opcode/session-id prefix for control packets, or empty for the bare
    /// construction.
    pub fn seal(
        &self,
        header: &[u8],
        id: ReplayId,
        body: &[u8],
        out: &mut [u8],
    ) -> Result<usize, WrapError> {
        let hdr_len = header.len() + ReplayId::LEN;
        let total = hdr_len + TAG_LEN + body.len();
        let out = out.get_mut(..total).ok_or(WrapError::BufferTooSmall)?;
        let (o_hdr, o_rest) = out.split_at_mut(hdr_len);
        let (o_h, o_id) = o_hdr.split_at_mut(header.len());
        o_h.copy_from_slice(header);
        o_id.copy_from_slice(&id.to_bytes());
        let tag = self.send.tag(o_hdr, body);
        let (o_tag, o_body) = o_rest.split_at_mut(TAG_LEN);
        o_tag.copy_from_slice(tag.as_ref());
        o_body.copy_from_slice(body);
        self.send.apply_ctr(tag.as_ref(), o_body);
        Ok(total)
    }

    /// Opens a sealed packet whose clear header is `header_len` bytes followed by the replay id: decrypts
    /// the body into `out` and verifies the tag. Returns the replay id and the body length.
    pub fn open(
        &self,
        header_len: usize,
        wire: &[u8],
        out: &mut [u8],
    ) -> Result<(ReplayId, usize), UnwrapError> {
        let hdr_len = header_len + ReplayId::LEN;
        let header = wire.get(..hdr_len).ok_or(UnwrapError::Truncated)?;
        let tag = wire
            .get(hdr_len..hdr_len + TAG_LEN)
            .ok_or(UnwrapError::Truncated)?;
        let body = wire.get(hdr_len + TAG_LEN..).unwrap_or(&[]);
        let out = out
            .get_mut(..body.len())
            .ok_or(UnwrapError::BufferTooSmall)?;
        out.copy_from_slice(body);
        self.recv.apply_ctr(tag, out);
        let expected = self.recv.tag(header, out);
        if !super::ct_eq(expected.as_ref(), tag) {
            out.fill(0);
            return Err(UnwrapError::Auth);
        }
        let id = ReplayId::parse(header.get(header_len..).unwrap_or(&[]))
            .map_err(|_| UnwrapError::Truncated)?;
        Ok((id, body.len()))
    }

    /// Wraps the plain control packet `plain` into `out`; returns the wire length.
    pub fn wrap(&self, plain: &[u8], id: ReplayId, out: &mut [u8]) -> Result<usize, WrapError> {
        let header = plain.get(..HEADER_LEN).ok_or(WrapError::Truncated)?;
        let body = plain.get(HEADER_LEN..).unwrap_or(&[]);
        self.seal(header, id, body, out)
    }

    /// Verifies and decrypts a tls-crypt control packet into its plain form in `out`.
    /// Returns the replay id (for the caller's replay check) and the plain length.
    pub fn unwrap(&self, wire: &[u8], out: &mut [u8]) -> Result<(ReplayId, usize), UnwrapError> {
        let header = wire.get(..HEADER_LEN).ok_or(UnwrapError::Truncated)?;
        let (o_header, o_body) = out
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(UnwrapError::BufferTooSmall)?;
        let (id, n) = self.open(HEADER_LEN, wire, o_body)?;
        o_header.copy_from_slice(header);
        Ok((id, HEADER_LEN + n))
    }
}

/// The dynamic tls-crypt key for renegotiations (§2.9): the 256-byte TLS-EKM output
/// (label "EXPORTER-OpenVPN-dynamic-tls-crypt") XORed with the original wrapping key, if any.
/// Wiped when the returned wrapper is dropped.
pub fn dynamic_key(
    ekm: &[u8; KEY2_LEN],
    original: Option<&[u8; KEY2_LEN]>,
) -> zeroize::Zeroizing<[u8; KEY2_LEN]> {
    let mut key = zeroize::Zeroizing::new(*ekm);
    if let Some(orig) = original {
        for (k, o) in key.iter_mut().zip(orig) {
            *k ^= o;
        }
    }
    key
}

/// EKM label of the dynamic tls-crypt key.
pub const DYNAMIC_TLS_CRYPT_LABEL: &[u8] = b"EXPORTER-OpenVPN-dynamic-tls-crypt";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::test_util::{hex, test_pkt_static_key};

    /// `sample/sample-keys/ta.key` of the OpenVPN tree (§10.8).
    pub(crate) const SAMPLE_TA_KEY: &str = "21d94830510107f8753d3b6f3145e01ded37075115afcb0538ecdd8503ee96637218c9ed38d908d594231d7d143c73da5055310f89d336da99c8b3dcb18909c79dd44f540670ebc0f120beb7211e96839cb542572c48bfa7ffaa9a22cb8304b7869b92f4442918e598745bb78ac8877f02b00a7cdef3f2446c130d39a7c451269ef399fd6029cdfc80a7c604041312ab0a969bc906bdee6e6d707afdcbe8c7fb97beb66049c3d328340775025433ceba1e38008a826cf92443d903106199373bdadd9c2c735cf481e580db4e81b99f12e3f46b6159c687cd1b9e689f7712573c0f02735a45573dfb5cd55cf4649423892c7e91f439bdd7337a8ceebd302cfbfa";

    fn check_round_trip(sender: &TlsCrypt, receiver: &TlsCrypt, wire: &[u8], plain: &[u8]) {
        let mut out = [0u8; 128];
        let (id, n) = receiver.unwrap(wire, &mut out).unwrap();
        assert_eq!(&out[..n], plain);
        let mut again = [0u8; 128];
        let m = sender.wrap(&out[..n], id, &mut again).unwrap();
        assert_eq!(&again[..m], wire);
    }

    #[test]
    fn t2_tls_crypt_reset() {
        let key = test_pkt_static_key();
        let wire = hex("38f419cb12d1f9e48f0000000161d3f8e1330206f56802be44fbed905064e3db43416bec5e526719462b7eb90c96defc9b05c44879f7");
        let plain = hex("38f419cb12d1f9e48f0000000000");
        check_round_trip(
            &TlsCrypt::client(&key),
            &TlsCrypt::server(&key),
            &wire,
            &plain,
        );
        // The client cannot open its own packet (wrong direction), nor a flipped one.
        let mut out = [0u8; 128];
        assert_eq!(
            TlsCrypt::client(&key).unwrap(&wire, &mut out),
            Err(UnwrapError::Auth)
        );
        for i in 0..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                TlsCrypt::server(&key).unwrap(&bad, &mut out),
                Err(UnwrapError::Auth),
                "byte {i}"
            );
        }
    }

    #[test]
    fn l1_real_handshake_packets() {
        let key: [u8; 256] = hex(SAMPLE_TA_KEY).try_into().unwrap();
        let client = TlsCrypt::client(&key);
        let server = TlsCrypt::server(&key);
        let reset = hex("38df0b478d923bae6f000000016b071c067484b908cb08343b292c8ea5f694ea1882c7bc0beb0273930424ede9d2216662198b5b5430");
        check_round_trip(
            &client,
            &server,
            &reset,
            &hex("38df0b478d923bae6f0000000000"),
        );
        let sreset = hex("401938daee5f45d390000000016b071c0621998572243651331bf4f82ff87a67118eaa4dc9432af55331f4dbf3c5d812f5d6593405acf11f881575403f8b764530db");
        check_round_trip(
            &server,
            &client,
            &sreset,
            &hex("401938daee5f45d3900100000000df0b478d923bae6f00000000"),
        );
        let ack = hex("28df0b478d923bae6f000000036b071c06fa62da5f0079954e77d12fba63d6790f2e07d579c0c67bffa3f39a315fd9210aefb8be00d3491f9950c068f09919ec7bff");
        check_round_trip(
            &client,
            &server,
            &ack,
            &hex("28df0b478d923bae6f0200000001000000001938daee5f45d390"),
        );
        assert_eq!(ack.len(), 66);
    }

    #[test]
    fn t5_dynamic_tls_crypt() {
        let ekm = [0xbau8; 256];
        let expected = hex("0000000100000000e319277f1c8d6e6a7796a855337b9cfb56e1f13a870e6647dfa195c92c17a015ba4967a11d55ea1a06a7");
        let id = ReplayId {
            counter: 1,
            time: 0,
        };
        let mut out = [0u8; 64];
        let n = TlsCrypt::client(&dynamic_key(&ekm, None))
            .seal(&[], id, b"1234567890", &mut out)
            .unwrap();
        assert_eq!(out[..n], expected[..]);
        let n = TlsCrypt::client(&dynamic_key(&ekm, Some(&[0; 256])))
            .seal(&[], id, b"1234567890", &mut out)
            .unwrap();
        assert_eq!(out[..n], expected[..]);
        let n = TlsCrypt::client(&dynamic_key(&ekm, Some(&[0x42; 256])))
            .seal(&[], id, b"1234567890", &mut out)
            .unwrap();
        assert_eq!(out[..8], expected[..8]);
        assert_ne!(out[8..n], expected[8..]);
        let mut body = [0u8; 16];
        let (rid, m) = TlsCrypt::server(&dynamic_key(&ekm, None))
            .open(0, &expected, &mut body)
            .unwrap();
        assert_eq!((rid, &body[..m]), (id, &b"1234567890"[..]));
    }

    #[test]
    fn truncated_and_small_buffers() {
        let key = test_pkt_static_key();
        let server = TlsCrypt::server(&key);
        let wire = hex("38f419cb12d1f9e48f0000000161d3f8e1330206f56802be44fbed905064e3db43416bec5e526719462b7eb90c96defc9b05c44879f7");
        let mut out = [0u8; 128];
        for len in 0..49 {
            assert_eq!(
                server.unwrap(&wire[..len], &mut out),
                Err(UnwrapError::Truncated),
                "len {len}"
            );
        }
        assert_eq!(
            server.unwrap(&wire, &mut out[..13]),
            Err(UnwrapError::BufferTooSmall)
        );
        assert_eq!(
            server.wrap(&[0x38; 5], ReplayId::default(), &mut out),
            Err(WrapError::Truncated)
        );
    }
}
