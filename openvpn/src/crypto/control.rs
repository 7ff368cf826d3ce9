//! One entry point for control-channel protection: none, tls-auth, tls-crypt, tls-crypt-v2 or dynamic
//! tls-crypt, together with the replay-id sender and the receive replay window (wire reference §2.3–2.9).
//!
//! The reliability layer builds plain packets with `wire::control::Repr::emit`, passes them to
//! [`ControlWrap::wrap`], and feeds received datagrams to [`ControlWrap::unwrap`], which returns the plain
//! packet for `wire::control::Packet::new_checked`. Control path only: this may be called with any
//! buffer sizes; nothing here allocates.

pub use super::wrap_error::{UnwrapError, WrapError};

use super::key2::{Digest, KeyDirection, KEY2_LEN};
use super::replay::{ReplayError, ReplayWindow};
use super::tls_auth::TlsAuth;
use super::tls_crypt::{self, TlsCrypt};
use super::tls_crypt_v2::{KeyError, TlsCryptV2Client};
use crate::time::Instant;
use crate::wire::{OpKey, ReplayId, ReplayIdSender};

/// The protection configured for a control channel.
#[derive(Clone, Debug)]
pub enum Protection {
    /// Plain TLS over the reliability layer (§2.2).
    None,
    /// HMAC firewall (§2.3).
    TlsAuth(TlsAuth),
    /// tls-crypt, or dynamic tls-crypt for renegotiations (§2.6, §2.9).
    TlsCrypt(TlsCrypt),
    /// tls-crypt-v2 client key (§2.7).
    TlsCryptV2(TlsCryptV2Client),
}

/// Control-channel protection with its replay state: one per connection (shared by all key_ids), plus a
/// separate one for dynamic tls-crypt.
#[derive(Clone, Debug)]
pub struct ControlWrap {
    protection: Protection,
    sender: ReplayIdSender,
    window: ReplayWindow,
}

impl ControlWrap {
    /// Wraps `protection` with a fresh replay-id sender (counter 1) and a default replay window.
    pub fn new(protection: Protection) -> ControlWrap {
        ControlWrap {
            protection,
            sender: ReplayIdSender::new(),
            window: ReplayWindow::default(),
        }
    }

    /// No protection.
    pub fn none() -> ControlWrap {
        ControlWrap::new(Protection::None)
    }

    /// tls-auth with a 256-byte static key, `key-direction` and `auth` digest.
    pub fn tls_auth(key2: &[u8; KEY2_LEN], direction: KeyDirection, digest: Digest) -> ControlWrap {
        ControlWrap::new(Protection::TlsAuth(TlsAuth::new(key2, direction, digest)))
    }

    /// tls-crypt with a 256-byte key, client role.
    pub fn tls_crypt(key2: &[u8; KEY2_LEN]) -> ControlWrap {
        ControlWrap::new(Protection::TlsCrypt(TlsCrypt::client(key2)))
    }

    /// tls-crypt-v2 client with Kc and WKc. Announces early negotiation: the first replay counter is
    /// 0x0F000001 (§2.7), so the server may answer with EARLY_NEG_FLAG_RESEND_WKC.
    pub fn tls_crypt_v2(kc: &[u8; KEY2_LEN], wkc: &[u8]) -> Result<ControlWrap, KeyError> {
        let client = TlsCryptV2Client::new(kc, wkc)?;
        Ok(ControlWrap {
            protection: Protection::TlsCryptV2(client),
            sender: ReplayIdSender::early_negotiation(),
            window: ReplayWindow::default(),
        })
    }

    /// Dynamic tls-crypt for key_id > 0 (§2.9): `ekm` is the 256-byte export with label
    /// [`tls_crypt::DYNAMIC_TLS_CRYPT_LABEL`], `original` the connection's tls-auth / tls-crypt key or Kc.
    pub fn dynamic_tls_crypt(
        ekm: &[u8; KEY2_LEN],
        original: Option<&[u8; KEY2_LEN]>,
    ) -> ControlWrap {
        let key = tls_crypt::dynamic_key(ekm, original);
        ControlWrap::new(Protection::TlsCrypt(TlsCrypt::client(&key)))
    }

    /// The configured protection.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// Bytes the wrapping adds to a plain control packet whose first byte is `op` (for control-MTU math).
    pub fn overhead(&self, op: OpKey) -> usize {
        match &self.protection {
            Protection::None => 0,
            Protection::TlsAuth(a) => a.overhead(),
            Protection::TlsCrypt(_) => tls_crypt::OVERHEAD,
            Protection::TlsCryptV2(c) => c.overhead(op),
        }
    }

    /// Number of received packets dropped by the replay window.
    pub fn replays_rejected(&self) -> u64 {
        self.window.rejected()
    }

    /// Wraps one transmission (retransmissions too: each gets a new replay id) of the plain packet
    /// `plain` into `out`. `now_unix` is the wall-clock Unix time, latched into the replay id on first use.
    pub fn wrap(
        &mut self,
        plain: &[u8],
        now_unix: u32,
        out: &mut [u8],
    ) -> Result<usize, WrapError> {
        if let Protection::None = self.protection {
            let out = out
                .get_mut(..plain.len())
                .ok_or(WrapError::BufferTooSmall)?;
            out.copy_from_slice(plain);
            return Ok(plain.len());
        }
        let id = self.sender.next(now_unix)?;
        match &self.protection {
            Protection::None => Ok(0),
            Protection::TlsAuth(a) => a.wrap(plain, id, out),
            Protection::TlsCrypt(c) => c.wrap(plain, id, out),
            Protection::TlsCryptV2(c) => c.wrap(plain, id, out),
        }
    }

    /// Authenticates (and decrypts) a received control packet into its plain form in `out`, then checks
    /// and records its replay id. Returns the plain length.
    pub fn unwrap(
        &mut self,
        wire: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Result<usize, UnwrapError> {
        let (id, len) = match &self.protection {
            Protection::None => {
                let o = out
                    .get_mut(..wire.len())
                    .ok_or(UnwrapError::BufferTooSmall)?;
                o.copy_from_slice(wire);
                return Ok(wire.len());
            }
            Protection::TlsAuth(a) => a.unwrap(wire, out)?,
            Protection::TlsCrypt(c) => c.unwrap(wire, out)?,
            Protection::TlsCryptV2(c) => c.unwrap(wire, out)?,
        };
        self.window
            .update(id.time, id.counter, now)
            .map_err(UnwrapError::Replay)?;
        Ok(len)
    }

    /// How a received replay id would be judged now, without changing state (diagnostics and tests).
    pub fn check_replay(&self, id: ReplayId, now: Instant) -> Result<(), ReplayError> {
        self.window.check(id.time, id.counter, now)
    }
}

/// Fuzzing entry point: runs untrusted bytes through every control-channel unwrap (fixed keys) and parses
/// whatever authenticates as a plain control packet; must never panic.
pub fn fuzz_unwrap(bytes: &[u8]) {
    let key = [0x3cu8; KEY2_LEN];
    let mut wkc = [0u8; super::tls_crypt_v2::MIN_WKC_LEN];
    if let Some(len) = wkc.get_mut(super::tls_crypt_v2::MIN_WKC_LEN - 2..) {
        len.copy_from_slice(&[0x01, 0x22]);
    }
    let mut wraps = [
        Some(ControlWrap::none()),
        Some(ControlWrap::tls_auth(
            &key,
            KeyDirection::Inverse,
            Digest::Sha1,
        )),
        Some(ControlWrap::tls_auth(
            &key,
            KeyDirection::Normal,
            Digest::Sha512,
        )),
        Some(ControlWrap::tls_crypt(&key)),
        ControlWrap::tls_crypt_v2(&key, &wkc).ok(),
    ];
    let mut out = [0u8; 2048];
    for wrap in wraps.iter_mut().flatten() {
        if let Ok(n) = wrap.unwrap(bytes, Instant::ZERO, &mut out) {
            if let Some(plain) = out.get(..n) {
                crate::wire::control::fuzz_parse(plain);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_util::{hex, test_pkt_static_key};
    use crate::crypto::tls_crypt::tests::SAMPLE_TA_KEY;

    #[test]
    fn tls_crypt_session_with_replay_rejection() {
        let key: [u8; 256] = hex(SAMPLE_TA_KEY).try_into().unwrap();
        let mut client = ControlWrap::tls_crypt(&key);
        let sreset = hex("401938daee5f45d390000000016b071c0621998572243651331bf4f82ff87a67118eaa4dc9432af55331f4dbf3c5d812f5d6593405acf11f881575403f8b764530db");
        let mut plain = [0u8; 128];
        let n = client.unwrap(&sreset, Instant::ZERO, &mut plain).unwrap();
        assert_eq!(n, 26);
        assert_eq!(
            client.unwrap(&sreset, Instant::ZERO, &mut plain),
            Err(UnwrapError::Replay(ReplayError::Duplicate))
        );
        assert_eq!(client.replays_rejected(), 1);

        // The client's own reset is reproduced from its plain form and the logged replay time.
        let reset = hex("38df0b478d923bae6f000000016b071c067484b908cb08343b292c8ea5f694ea1882c7bc0beb0273930424ede9d2216662198b5b5430");
        let mut out = [0u8; 128];
        let m = client
            .wrap(&hex("38df0b478d923bae6f0000000000"), 0x6b071c06, &mut out)
            .unwrap();
        assert_eq!(out[..m], reset[..]);
        assert_eq!(client.overhead(OpKey::parse(&reset).unwrap()), 40);
    }

    #[test]
    fn tls_auth_and_none() {
        let key = test_pkt_static_key();
        let mut client = ControlWrap::tls_auth(&key, KeyDirection::Inverse, Digest::Sha1);
        let mut server = ControlWrap::tls_auth(&key, KeyDirection::Normal, Digest::Sha1);
        let plain = hex("38de694c5c7bfba2740000000000");
        let mut wire = [0u8; 64];
        let n = client.wrap(&plain, 0x61d3bf6c, &mut wire).unwrap();
        assert_eq!(wire[..n], hex("38de694c5c7bfba27493537c1ded4e781529ae7cfe4b8c6d6b2b51f05a0000000161d3bf6c0000000000")[..]);
        let mut back = [0u8; 64];
        assert_eq!(
            server.unwrap(&wire[..n], Instant::ZERO, &mut back),
            Ok(plain.len())
        );
        assert_eq!(client.overhead(OpKey::parse(&plain).unwrap()), 28);

        let mut none = ControlWrap::none();
        assert_eq!(none.wrap(&plain, 0, &mut wire), Ok(plain.len()));
        assert_eq!(
            none.unwrap(&plain, Instant::ZERO, &mut back),
            Ok(plain.len())
        );
        assert_eq!(
            none.wrap(&plain, 0, &mut [0u8; 4]),
            Err(WrapError::BufferTooSmall)
        );
    }

    #[test]
    fn fuzz_entry_survives_garbage() {
        use rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut buf = [0u8; 600];
        for len in 0..600 {
            rng.fill_bytes(&mut buf[..len]);
            fuzz_unwrap(&buf[..len]);
        }
        fuzz_unwrap(&hex("386891923fa31034370000000000"));
    }
}
