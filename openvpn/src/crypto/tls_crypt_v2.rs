//! tls-crypt-v2 (wire reference §2.7): tls-crypt with a per-client key Kc, plus the wrapped client key
//! WKc that the client appends, unencrypted, to its P_CONTROL_HARD_RESET_CLIENT_V3 and (when the server
//! asks for it with EARLY_NEG_FLAG_RESEND_WKC) to its P_CONTROL_WKC_V1.
//!
//! ```text
//! WKc = T (32) || AES-256-CTR(Ke_srv, IV = T[0..16], Kc || metadata) || len (2)
//! T   = HMAC-SHA256(Ka_srv, len || Kc || metadata)
//! ```
//!
//! The client never opens WKc; the server does with [`TlsCryptV2ServerKey`], then judges the client key with
//! [`WkcPolicy`] (both configured through `crypto::control::ControlProtection::TlsCryptV2Server`).

use super::key2::KEY2_LEN;
use super::tls_crypt::TlsCrypt;
use super::wrap_error::{UnwrapError, WrapError};
use crate::wire::{OpKey, ReplayId};
use aes::cipher::KeyInit;
use aes::Aes256;
use alloc::vec::Vec;
use core::fmt;
use ring::hmac;

/// Largest WKc OpenVPN accepts.
pub const MAX_WKC_LEN: usize = 1024;
/// Smallest possible WKc: tag, Kc and the length field, no metadata.
pub const MIN_WKC_LEN: usize = 32 + KEY2_LEN + 2;
/// Metadata type byte: free-form user data.
pub const METADATA_TYPE_USER: u8 = 0x00;
/// Metadata type byte: 64-bit creation timestamp (the default).
pub const METADATA_TYPE_TIMESTAMP: u8 = 0x01;

/// A tls-crypt-v2 wrapped client key (WKc) could not be split off a packet, unwrapped or made: the wire-side
/// operations on WKc. (Reading key *files* fails with [`crate::keys::KeyError`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WkcError {
    /// The WKc is shorter than 290 or longer than 1024 bytes.
    WkcLength,
    /// The WKc's trailing length field does not equal its length.
    WkcLengthField,
    /// The WKc tag did not verify under the server key (server side only).
    WkcAuth,
    /// Metadata longer than fits in a 1024-byte WKc.
    MetadataTooLong,
}

impl fmt::Display for WkcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WkcError::WkcLength => "tls-crypt-v2 WKc length out of range (290..=1024 bytes)",
            WkcError::WkcLengthField => "tls-crypt-v2 WKc length field does not match its size",
            WkcError::WkcAuth => "tls-crypt-v2 WKc does not authenticate under the server key",
            WkcError::MetadataTooLong => "tls-crypt-v2 metadata too long",
        })
    }
}

/// The client side of tls-crypt-v2: Kc used as a tls-crypt key (client role) and the opaque WKc.
#[derive(Clone, Debug)]
pub struct TlsCryptV2Client {
    crypt: TlsCrypt,
    wkc: Vec<u8>,
}

impl TlsCryptV2Client {
    /// Builds the client from Kc (256 bytes) and WKc (the rest of the client key file's body).
    pub fn new(kc: &[u8; KEY2_LEN], wkc: &[u8]) -> Result<TlsCryptV2Client, WkcError> {
        if wkc.len() < MIN_WKC_LEN || wkc.len() > MAX_WKC_LEN {
            return Err(WkcError::WkcLength);
        }
        let field = wkc
            .get(wkc.len() - 2..)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .ok_or(WkcError::WkcLength)?;
        if usize::from(u16::from_be_bytes(field)) != wkc.len() {
            return Err(WkcError::WkcLengthField);
        }
        Ok(TlsCryptV2Client {
            crypt: TlsCrypt::client(kc),
            wkc: wkc.to_vec(),
        })
    }

    /// The wrapped client key appended to the first packets.
    pub fn wkc(&self) -> &[u8] {
        &self.wkc
    }

    /// The underlying tls-crypt keys (client role).
    pub fn tls_crypt(&self) -> &TlsCrypt {
        &self.crypt
    }

    /// Bytes added to a plain control packet with this first byte: tls-crypt overhead, plus WKc for
    /// P_CONTROL_HARD_RESET_CLIENT_V3 and P_CONTROL_WKC_V1.
    pub fn overhead(&self, op: OpKey) -> usize {
        super::tls_crypt::OVERHEAD
            + if op.opcode.carries_wkc() {
                self.wkc.len()
            } else {
                0
            }
    }

    /// Wraps a plain control packet with Kc and appends WKc when the opcode calls for it.
    pub fn wrap(&self, plain: &[u8], id: ReplayId, out: &mut [u8]) -> Result<usize, WrapError> {
        let op = OpKey::parse(plain).map_err(|_| WrapError::Truncated)?;
        let n = self.crypt.wrap(plain, id, out)?;
        if !op.opcode.carries_wkc() {
            return Ok(n);
        }
        let tail = out
            .get_mut(n..n + self.wkc.len())
            .ok_or(WrapError::BufferTooSmall)?;
        tail.copy_from_slice(&self.wkc);
        Ok(n + self.wkc.len())
    }

    /// Unwraps a server packet (servers never append a WKc).
    pub fn unwrap(&self, wire: &[u8], out: &mut [u8]) -> Result<(ReplayId, usize), UnwrapError> {
        self.crypt.unwrap(wire, out)
    }
}

/// A tls-crypt-v2 server key (128 bytes: Ke = bytes 0..32, Ka = bytes 64..96). Used by tests and tools to
/// produce and check WKc; the oxvpn client itself never needs it.
#[derive(Clone)]
pub struct TlsCryptV2ServerKey {
    cipher: Aes256,
    auth: hmac::Key,
}

impl fmt::Debug for TlsCryptV2ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsCryptV2ServerKey { .. }")
    }
}

impl TlsCryptV2ServerKey {
    /// The key from the 128-byte body of an "OpenVPN tls-crypt-v2 server key" file.
    pub fn new(key: &[u8; 128]) -> TlsCryptV2ServerKey {
        let (ke, rest) = key.split_at(32);
        let ka = rest.get(32..64).unwrap_or(&[]);
        let mut k = [0u8; 32];
        k.copy_from_slice(ke);
        TlsCryptV2ServerKey {
            cipher: Aes256::new(&k.into()),
            auth: hmac::Key::new(hmac::HMAC_SHA256, ka),
        }
    }

    fn tag(&self, len: [u8; 2], plain: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.auth);
        ctx.update(&len);
        ctx.update(plain);
        ctx.sign()
    }

    fn ctr(&self, tag: &[u8], data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(tag.get(..16).unwrap_or(&[0; 16]));
        super::tls_crypt::ctr_xor(&self.cipher, iv, data);
    }

    /// Wraps Kc and `metadata` (type byte included) into a WKc.
    pub fn wrap_client_key(
        &self,
        kc: &[u8; KEY2_LEN],
        metadata: &[u8],
    ) -> Result<Vec<u8>, WkcError> {
        let total = MIN_WKC_LEN + metadata.len();
        if total > MAX_WKC_LEN {
            return Err(WkcError::MetadataTooLong);
        }
        let len = u16::try_from(total)
            .map_err(|_| WkcError::MetadataTooLong)?
            .to_be_bytes();
        let mut plain = Vec::with_capacity(KEY2_LEN + metadata.len());
        plain.extend_from_slice(kc);
        plain.extend_from_slice(metadata);
        let tag = self.tag(len, &plain);
        self.ctr(tag.as_ref(), &mut plain);
        let mut wkc = Vec::with_capacity(total);
        wkc.extend_from_slice(tag.as_ref());
        wkc.extend_from_slice(&plain);
        wkc.extend_from_slice(&len);
        Ok(wkc)
    }

    /// Opens a WKc: returns Kc and the metadata.
    pub fn unwrap_client_key(&self, wkc: &[u8]) -> Result<([u8; KEY2_LEN], Vec<u8>), WkcError> {
        if wkc.len() < MIN_WKC_LEN || wkc.len() > MAX_WKC_LEN {
            return Err(WkcError::WkcLength);
        }
        let len: [u8; 2] = wkc
            .get(wkc.len() - 2..)
            .and_then(|b| b.try_into().ok())
            .ok_or(WkcError::WkcLength)?;
        if usize::from(u16::from_be_bytes(len)) != wkc.len() {
            return Err(WkcError::WkcLengthField);
        }
        let tag = wkc.get(..32).ok_or(WkcError::WkcLength)?;
        let mut plain = wkc
            .get(32..wkc.len() - 2)
            .ok_or(WkcError::WkcLength)?
            .to_vec();
        self.ctr(tag, &mut plain);
        if !super::ct_eq(self.tag(len, &plain).as_ref(), tag) {
            return Err(WkcError::WkcAuth);
        }
        let mut kc = [0u8; KEY2_LEN];
        kc.copy_from_slice(plain.get(..KEY2_LEN).ok_or(WkcError::WkcLength)?);
        let metadata = plain.get(KEY2_LEN..).unwrap_or(&[]).to_vec();
        Ok((kc, metadata))
    }
}

// The server's policy for client keys, applied right after a WKc unwraps (OpenVPN `tls_crypt.c`
// `tls_crypt_v2_check_client_key_age`): `tls-crypt-v2-max-age DAYS`, then a revocation list (an oxvpn
// extension standing in for the `tls-crypt-v2-verify` script). It is part of the server's configured
// control-channel protection ([`super::control::ControlProtection::TlsCryptV2Server`]).

/// Length of a WKc digest in the revocation list.
pub const WKC_DIGEST_LEN: usize = 32;
const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// The SHA-256 digest of a WKc: how the revocation list names a client key.
pub fn wkc_digest(wkc: &[u8]) -> [u8; WKC_DIGEST_LEN] {
    let mut out = [0u8; WKC_DIGEST_LEN];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, wkc).as_ref());
    out
}

/// Revoked client keys, by the SHA-256 digest of their WKc. Sorted, so a lookup is a binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    digests: Vec<[u8; WKC_DIGEST_LEN]>,
}

impl RevocationList {
    /// A list of the given digests (duplicates are kept once).
    pub fn new(digests: impl IntoIterator<Item = [u8; WKC_DIGEST_LEN]>) -> RevocationList {
        let mut digests: Vec<_> = digests.into_iter().collect();
        digests.sort_unstable();
        digests.dedup();
        RevocationList { digests }
    }

    /// Revokes one more key.
    pub fn insert(&mut self, digest: [u8; WKC_DIGEST_LEN]) {
        if let Err(at) = self.digests.binary_search(&digest) {
            self.digests.insert(at, digest);
        }
    }

    /// True when the client key whose WKc is `wkc` is revoked.
    pub fn contains_wkc(&self, wkc: &[u8]) -> bool {
        self.digests.binary_search(&wkc_digest(wkc)).is_ok()
    }

    /// Number of revoked keys.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// What the server requires of a client key after its WKc unwrapped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WkcPolicy {
    /// `tls-crypt-v2-max-age DAYS`: refuse keys created more than this many days ago; the metadata must
    /// then be a timestamp (type 0x01 and a 64-bit big-endian Unix time, nothing else).
    pub max_age_days: Option<u32>,
    /// Revoked keys.
    pub revoked: RevocationList,
}

/// Why a client key was refused by the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WkcRefusal {
    /// `tls-crypt-v2-max-age` is set and the metadata is not a creation timestamp.
    NoTimestamp,
    /// The key was created more than `max_age_days` days before now.
    TooOld {
        /// Creation time in the metadata (Unix seconds).
        created: u64,
        /// The configured maximum age.
        max_age_days: u32,
    },
    /// The WKc is on the revocation list.
    Revoked,
}

impl fmt::Display for WkcRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WkcRefusal::NoTimestamp => {
                f.write_str("tls-crypt-v2 client key has no creation timestamp (tls-crypt-v2-max-age)")
            }
            WkcRefusal::TooOld {
                created,
                max_age_days,
            } => write!(
                f,
                "tls-crypt-v2 client key created at {created} is older than tls-crypt-v2-max-age {max_age_days} days"
            ),
            WkcRefusal::Revoked => f.write_str("tls-crypt-v2 client key is revoked"),
        }
    }
}

impl WkcPolicy {
    /// Checks an unwrapped client key: first the age (if configured), then the revocation list.
    /// `metadata` is the unwrapped metadata (type byte first), `wkc` the wrapped key as received.
    pub fn check(&self, metadata: &[u8], wkc: &[u8], now_unix: u64) -> Result<(), WkcRefusal> {
        if let Some(max_age_days) = self.max_age_days {
            let created = match metadata.split_first() {
                Some((&METADATA_TYPE_TIMESTAMP, t)) => <[u8; 8]>::try_from(t)
                    .map(u64::from_be_bytes)
                    .map_err(|_| WkcRefusal::NoTimestamp)?,
                _ => return Err(WkcRefusal::NoTimestamp),
            };
            // A key from the future has age 0, as in OpenVPN.
            let age = now_unix.saturating_sub(created);
            if age > u64::from(max_age_days).saturating_mul(SECS_PER_DAY) {
                return Err(WkcRefusal::TooOld {
                    created,
                    max_age_days,
                });
            }
        }
        if !self.revoked.is_empty() && self.revoked.contains_wkc(wkc) {
            return Err(WkcRefusal::Revoked);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::test_util::{hex, pem_body};
    use crate::wire::{
        control, tlv::EarlyNegotiation, AckBlock, ControlRepr, KeyId, Opcode, ReplayIdSender,
        SessionId,
    };

    fn counting<const N: usize>() -> [u8; N] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn t4_wkc_from_deterministic_keys() {
        let server = TlsCryptV2ServerKey::new(&counting::<128>());
        let kc = counting::<256>();
        let wkc = server
            .wrap_client_key(&kc, &hex("010000000000000000"))
            .unwrap();
        assert_eq!(wkc, hex(T4_WKC));
        let (kc2, meta) = server.unwrap_client_key(&wkc).unwrap();
        assert_eq!((kc2, meta), (kc, hex("010000000000000000")));

        let wkc = server.wrap_client_key(&kc, &hex("000000410820c3")).unwrap();
        assert_eq!(wkc.len(), 297);
        assert_eq!(&wkc[..16], &hex("69eda75582aa170b8c9418fe28248cdb")[..]);
        assert_eq!(&wkc[295..], &[0x01, 0x29]);

        assert_eq!(
            server.wrap_client_key(&kc, &[0; 735]),
            Err(WkcError::MetadataTooLong)
        );
        assert_eq!(server.wrap_client_key(&kc, &[0; 734]).unwrap().len(), 1024);
        let other = TlsCryptV2ServerKey::new(&[7; 128]);
        assert_eq!(
            other.unwrap_client_key(&hex(T4_WKC)),
            Err(WkcError::WkcAuth)
        );
    }

    #[test]
    fn server_side_client_key_generation() {
        use crate::keys::{Metadata, ServerKey, ServerKeyKind, StaticKey, TlsCryptV2ClientKey};
        let file = ServerKey::from_bytes(ServerKeyKind::TlsCryptV2, counting::<128>());
        let server = TlsCryptV2ServerKey::new(file.as_bytes());
        let meta = Metadata::User(b"alice".to_vec());
        let wkc = server
            .wrap_client_key(&counting::<256>(), &meta.encode().unwrap())
            .unwrap();
        let key =
            TlsCryptV2ClientKey::from_parts(StaticKey::from_bytes(counting::<256>()), wkc).unwrap();
        let parsed = TlsCryptV2ClientKey::parse(&key.to_pem()).unwrap();
        let (kc, raw) = server.unwrap_client_key(&parsed.wkc).unwrap();
        assert_eq!(kc, counting::<256>());
        assert_eq!(Metadata::decode(&raw), Ok(meta));
    }

    #[test]
    fn client_key_validation() {
        let kc = counting::<256>();
        assert!(TlsCryptV2Client::new(&kc, &hex(T4_WKC)).is_ok());
        assert_eq!(
            TlsCryptV2Client::new(&kc, &[0; 100]).err(),
            Some(WkcError::WkcLength)
        );
        let mut bad = hex(T4_WKC);
        bad[298] ^= 1;
        assert_eq!(
            TlsCryptV2Client::new(&kc, &bad).err(),
            Some(WkcError::WkcLengthField)
        );
    }

    #[test]
    fn l4_real_early_negotiation_handshake() {
        let server_key: [u8; 128] = pem_body(L4_SERVER_PEM).try_into().unwrap();
        let body = pem_body(L4_CLIENT_PEM);
        let kc: [u8; 256] = body[..256].try_into().unwrap();
        let wkc = &body[256..];
        assert_eq!(wkc.len(), 299);
        let (kc_srv, meta) = TlsCryptV2ServerKey::new(&server_key)
            .unwrap_client_key(wkc)
            .unwrap();
        assert_eq!((kc_srv, meta), (kc, hex("01000000006b071c79")));

        // Rebuild the client's V3 reset byte for byte: replay counter 0x0F000001, WKc appended.
        let client = TlsCryptV2Client::new(&kc, wkc).unwrap();
        let reset_v3 = hex(L4_RESET_V3);
        let csid = SessionId(reset_v3[1..9].try_into().unwrap());
        let mut ids = ReplayIdSender::early_negotiation();
        let id = ids.next(0x6b071dfe).unwrap();
        let repr = ControlRepr {
            opcode: Opcode::ControlHardResetClientV3,
            key_id: KeyId::ZERO,
            session_id: csid,
            acks: AckBlock::EMPTY,
            message_id: Some(0),
            payload: &[],
        };
        let mut plain = [0u8; 64];
        let n = repr.emit(&mut plain).unwrap();
        let mut out = [0u8; 1500];
        let m = client.wrap(&plain[..n], id, &mut out).unwrap();
        assert_eq!(m, 353);
        assert_eq!(
            client.overhead(OpKey::new(Opcode::ControlHardResetClientV3, KeyId::ZERO)),
            353 - 14
        );
        assert_eq!(out[..m], reset_v3[..]);

        // The server (tls-crypt server role on Kc) sees the same plain packet after stripping WKc.
        let srv = TlsCrypt::server(&kc);
        let (rid, k) = srv
            .unwrap(&reset_v3[..reset_v3.len() - 299], &mut plain)
            .unwrap();
        assert!(rid.is_early_negotiation());
        assert_eq!(k, n);

        // The server reset: ACK of the client's 0, msg-id 0, TLV RESEND_WKC.
        let sreset = hex(L4_SERVER_RESET);
        let (sid_id, k) = client.unwrap(&sreset, &mut plain).unwrap();
        assert_eq!(sid_id.counter, 1);
        assert_eq!(
            plain[9..k],
            hex("0100000000a4b7076dcd189cca00000000000100020001")[..]
        );
        let packet = control::Packet::new_checked(&plain[..k]).unwrap();
        assert_eq!(packet.opcode(), Opcode::ControlHardResetServerV2);
        assert_eq!(packet.acks().remote_session_id(), Some(csid));
        assert!(EarlyNegotiation::parse(packet.payload())
            .unwrap()
            .resend_wkc());
        let ssid = packet.session_id();

        // The client's P_CONTROL_WKC_V1 header and tag, from the logged plaintext prefix.
        let head = hex("58a4b7076dcd189cca0f0000026b071dfe4a5129b58f2cd480aa42a918eb187105dc48d5b76d26edfd26e66fbff5793225");
        let id2 = ids.next(0x6b071dfe).unwrap();
        assert_eq!(id2.counter, 0x0F00_0002);
        let mut acks = AckBlock::new(ssid);
        acks.try_push(0);
        let mut wkc_plain = [0u8; 64];
        let repr = ControlRepr {
            opcode: Opcode::ControlWkcV1,
            acks,
            message_id: Some(1),
            payload: &[],
            ..repr
        };
        let n = repr.emit(&mut wkc_plain).unwrap();
        assert_eq!(
            wkc_plain[9..n],
            hex("0100000000cf251bd610a8bdc400000001")[..]
        );
        // Only the header is reproducible without the full ClientHello; check it and the WKc trailer.
        let m = client.wrap(&wkc_plain[..n], id2, &mut out).unwrap();
        assert_eq!(out[..17], head[..17]);
        assert_eq!(out[m - 299..m], wkc[..]);
    }

    const T4_WKC: &str = "177da5c074a94619b16be4acb71f1a6ccf24f33c6bbaf498459d5f06c369d4952c78396efd93c2598f4771e068cafca3d2d387d87151392b1f74b43df29137072ca3ceae6bf741153c97b0cf6d8386b0ddd4baa201fd024693fa44510e035c29691009bc2624ad8995f9171c1c1b02d9a7efc02436e868e90085a8276a19a6f7ce1daf85e16a18c3dd1a9ba46c5ad3deb70edd52f151e1be45dcd788c4c2a494a8bc504fd650e46306093e7cfa75a1218f44f3277055aeef56dc2a68b5d36deeed3d927c407e90b18edacfdec7a6b037b0fe04c1b5c7d0fcea131721479cde64459faad7b482e276dadcfa7cfc5b34fa149bbf6b49a33a03f1212516aed221626c7224d887cabc7f9c90c6376de16c6efd9e70b4f080674b4ece3e08b5323bedf04e6114df11acb31e012b";

    pub(crate) const L4_SERVER_PEM: &str = "-----BEGIN OpenVPN tls-crypt-v2 server key-----
yioZ6BZejdbMb83KeczriiIiyCH6s/AlFuqAO96ZCQZ8O+DbwuSrINOaSualy+Ek
twRREkaGa/XyIfLGSR4+GKVppG+cxpJxf+S7VKYjPNlHA8IMRBnRNa7vcdkbG0N7
rJA85fXWlbFd4NCoUBEL+cAi7KPV6HAN6OAJN03MJtI=
-----END OpenVPN tls-crypt-v2 server key-----";

    pub(crate) const L4_CLIENT_PEM: &str = "-----BEGIN OpenVPN tls-crypt-v2 client key-----
uzpyCtWDb7a33uMO0/4cTHxrIrYEUbriaw21Rjz4E8spTnNi+zCCJxLytTTCSA3n
6LBxu8X08S27WIBChFwJ6J8+DtOsomKoCI9LL5Hu+UpUHxXnnT99vAjIqdZbFGGM
qHW2AVBVNvUxBhYRWd7l/SIhSuq1LySGp6Vtb8Orm38YDt9SPHCelePq8S/R7LQj
C36FCfwSs+3ErNfRhPowZuTR28uvlSdmjXpRrh2a5DQHeVIUJxJv0SRAQNqtN0H0
//GUnoq7N1kyWDWWxr0CgjlB5gpkqHCiy4/Xqd8U1lcsAbSEmv/3+4Um4ysS8kYM
3gCGJdY8C5PkJTO9QU7S7z5/SPjleaw5xaAVNlWwrg/OW8hGVvf28yYhpNH5TGaA
JUNnFv/kAxxOXiWO0mj8f5vkLOVfg2BT1CPTw9wxLcMDuYlmjoq1x2QvKLIIiouk
fJtMePTtlvqessQDIuha2jZ4CldPwhdRUKfypsUA6Wk3LsuV0tWp+YIUwIbm3dHh
UjbTKMnVeDoiDVUYIchYyq7dU6irOSpnpoJ5+LuFelu29FOE7U42RSrh1lI9gZKW
v8+Kvf+cnnb07c1KyTpXJsNYyrPqnBV69ErD0l73/N+dfmIuXJiVvUeiBj1IIEHt
6WCoTiVA+Nke2QHNkEbEQcUFqzogBM1EQgzTQWYGr6488BUytCQeLN5ngsgElWFj
GQ6v0UMfeitsvdgAOCh4VmdjHj+5QfP2QAEr
-----END OpenVPN tls-crypt-v2 client key-----";

    pub(crate) const L4_RESET_V3: &str = "50a4b7076dcd189cca0f0000016b071dfedfef7b8072124855c2af42c18230a94c093989f934d3936b5a23bdb812f5c5479d022e40ea3e7f48f8e579ac39c5a0153655b0ae0fce5bc84656f7f6f32621a4d1f94c668025436716ffe4031c4e5e258ed268fc7f9be42ce55f836053d423d3c3dc312dc303b989668e8ab5c7642f28b2088a8ba47c9b4c78f4ed96fa9eb2c40322e85ada36780a574fc2175150a7f2a6c500e969372ecb95d2d5a9f98214c086e6ddd1e15236d328c9d5783a220d551821c858caaedd53a8ab392a67a68279f8bb857a5bb6f45384ed4e36452ae1d6523d819296bfcf8abdff9c9e76f4edcd4ac93a5726c358cab3ea9c157af44ac3d25ef7fcdf9d7e622e5c9895bd47a2063d482041ede960a84e2540f8d91ed901cd9046c441c505ab3a2004cd44420cd3416606afae3cf01532b4241e2cde6782c804956163190eafd1431f7a2b6cbdd8003828785667631e3fb941f3f640012b";

    pub(crate) const L4_SERVER_RESET: &str = "40cf251bd610a8bdc4000000016b071dfe931cdccf218dd9ac20827572ea8d6d231251b15f74e8090dd2debc25e2d99e328d5496efb9f0518f7fc34c5510955a7a4413980699c6d9";
}
