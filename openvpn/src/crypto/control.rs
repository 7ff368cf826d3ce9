//! One entry point for control-channel protection: none, tls-auth, tls-crypt, tls-crypt-v2 or dynamic
//! tls-crypt, together with the replay-id sender and the receive replay window (wire reference §2.3–2.9).
//!
//! The reliability layer builds plain packets with `wire::control::Repr::emit`, passes them to
//! [`ControlWrap::wrap`], and feeds received datagrams to [`ControlWrap::unwrap`], which returns the plain
//! packet for `wire::control::Packet::new_checked`. Control path only: this may be called with any
//! buffer sizes; nothing here allocates.
//!
//! [`ControlProtection`] is the configured protection of either role (key bytes); [`Protection`] the live
//! wrapper built from it for a [`Role`]; [`ControlWrap`] adds the replay state.

pub use super::wrap_error::{UnwrapError, WrapError};

use super::data::Role;
use super::key2::{Digest, KeyDirection, KEY2_LEN};
use super::replay::{ReplayError, ReplayWindow};
use super::tls_auth::TlsAuth;
use super::tls_crypt::{self, TlsCrypt};
use super::tls_crypt_v2::{TlsCryptV2Client, WkcError, WkcPolicy};
use crate::time::Instant;
use crate::wire::{OpKey, Opcode, ReplayId, ReplayIdSender};
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

/// The control-channel protection a peer is configured with, with its key bytes (§2.3-2.7), for either
/// role: the one description of "how is the control channel protected" that a client config
/// (`EngineConfig::protection`) and a server (`StatelessHandshake`) are built from. The live wrapper is
/// [`Protection`], made from this by [`Protection::new`] for a [`Role`]. Key bytes are wiped on drop.
// One value per config (not per packet): the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum ControlProtection {
    /// Plain TLS.
    None,
    /// `tls-auth` with `key-direction` and `auth` digest (either role: the direction picks the slices).
    TlsAuth {
        /// The 256-byte static key.
        key: [u8; KEY2_LEN],
        /// `key-direction` (or the `tls-auth` file argument).
        direction: KeyDirection,
        /// `auth` digest.
        digest: Digest,
    },
    /// `tls-crypt` (either role: the role picks the direction).
    TlsCrypt {
        /// The 256-byte static key.
        key: [u8; KEY2_LEN],
    },
    /// `tls-crypt-v2` client key (client role only).
    TlsCryptV2 {
        /// Kc, the client's tls-crypt key.
        kc: [u8; KEY2_LEN],
        /// WKc, the wrapped client key sent to the server.
        wkc: Vec<u8>,
    },
    /// `tls-crypt-v2` server key (server role only): it unwraps each client's WKc, whose Kc then protects
    /// that client's channel as tls-crypt in the server role; the policy judges the client key first.
    TlsCryptV2Server {
        /// The 128-byte body of the `tls-crypt-v2` server key file.
        key: [u8; 128],
        /// `tls-crypt-v2-max-age` and the revocation list.
        policy: WkcPolicy,
    },
}

impl ControlProtection {
    /// The opcode of a client's first packet under this protection (V3 announces a WKc, §2.7).
    pub fn reset_opcode(&self) -> Opcode {
        match self {
            ControlProtection::TlsCryptV2 { .. } | ControlProtection::TlsCryptV2Server { .. } => {
                Opcode::ControlHardResetClientV3
            }
            _ => Opcode::ControlHardResetClientV2,
        }
    }
}

impl fmt::Debug for ControlProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ControlProtection::None => "None",
            ControlProtection::TlsAuth { .. } => "TlsAuth",
            ControlProtection::TlsCrypt { .. } => "TlsCrypt",
            ControlProtection::TlsCryptV2 { .. } => "TlsCryptV2",
            ControlProtection::TlsCryptV2Server { .. } => "TlsCryptV2Server",
        })
    }
}

impl Zeroize for ControlProtection {
    fn zeroize(&mut self) {
        match self {
            ControlProtection::None => {}
            ControlProtection::TlsAuth { key, .. } | ControlProtection::TlsCrypt { key } => {
                key.zeroize()
            }
            ControlProtection::TlsCryptV2 { kc, wkc } => {
                kc.zeroize();
                wkc.zeroize();
            }
            ControlProtection::TlsCryptV2Server { key, .. } => key.zeroize(),
        }
    }
}

/// The control-channel keys are wiped when dropped.
impl Drop for ControlProtection {
    fn drop(&mut self) {
        self.zeroize();
    }
}

/// Why [`Protection::new`] could not build the live wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectionError {
    /// The tls-crypt-v2 client key is unusable.
    Wkc(WkcError),
    /// A tls-crypt-v2 client key for the server role, or a server key for the client role.
    WrongRole,
    /// The server's tls-crypt-v2 protection has no shared wrapper: each client's comes from its WKc
    /// (see `server::handshake`).
    PerClient,
}

impl fmt::Display for ProtectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtectionError::Wkc(e) => write!(f, "tls-crypt-v2: client key rejected: {e}"),
            ProtectionError::WrongRole => {
                f.write_str("tls-crypt-v2: a client key on a server or a server key on a client")
            }
            ProtectionError::PerClient => {
                f.write_str("tls-crypt-v2: the server's protection is per client (from its WKc)")
            }
        }
    }
}

/// The live control-channel wrapper (keys expanded), built from a [`ControlProtection`] by
/// [`Protection::new`].
#[derive(Clone, Debug)]
pub enum Protection {
    /// Plain TLS over the reliability layer (§2.2).
    None,
    /// HMAC firewall (§2.3).
    TlsAuth(TlsAuth),
    /// tls-crypt, or dynamic tls-crypt for renegotiations (§2.6, §2.9).
    TlsCrypt(TlsCrypt),
    /// tls-crypt-v2 client key (§2.7). A server holds the unwrapped Kc as [`Protection::TlsCrypt`] in the
    /// server role instead: it never appends a WKc.
    TlsCryptV2(TlsCryptV2Client),
}

impl Protection {
    /// The live wrapper of `config` for `role` (§2.5: tls-crypt's direction follows the role; tls-auth's
    /// follows `key-direction`). A server's tls-crypt-v2 has no shared wrapper ([`ProtectionError::PerClient`]):
    /// each client's is [`Protection::TlsCrypt`] with its unwrapped Kc in the server role.
    pub fn new(config: &ControlProtection, role: Role) -> Result<Protection, ProtectionError> {
        Ok(match (config, role) {
            (ControlProtection::None, _) => Protection::None,
            (
                ControlProtection::TlsAuth {
                    key,
                    direction,
                    digest,
                },
                _,
            ) => Protection::TlsAuth(TlsAuth::new(key, *direction, *digest)),
            (ControlProtection::TlsCrypt { key }, role) => {
                Protection::TlsCrypt(TlsCrypt::for_role(key, role))
            }
            (ControlProtection::TlsCryptV2 { kc, wkc }, Role::Client) => Protection::TlsCryptV2(
                TlsCryptV2Client::new(kc, wkc).map_err(ProtectionError::Wkc)?,
            ),
            (ControlProtection::TlsCryptV2Server { .. }, Role::Server) => {
                return Err(ProtectionError::PerClient)
            }
            (ControlProtection::TlsCryptV2 { .. }, Role::Server)
            | (ControlProtection::TlsCryptV2Server { .. }, Role::Client) => {
                return Err(ProtectionError::WrongRole)
            }
        })
    }

    /// Wraps the plain control packet `plain` with replay id `id` (ignored without protection) into `out`;
    /// returns the wire length. Stateless: [`ControlWrap`] supplies the ids, a stateless server its own.
    pub fn seal(&self, plain: &[u8], id: ReplayId, out: &mut [u8]) -> Result<usize, WrapError> {
        match self {
            Protection::None => {
                let out = out
                    .get_mut(..plain.len())
                    .ok_or(WrapError::BufferTooSmall)?;
                out.copy_from_slice(plain);
                Ok(plain.len())
            }
            Protection::TlsAuth(a) => a.wrap(plain, id, out),
            Protection::TlsCrypt(c) => c.wrap(plain, id, out),
            Protection::TlsCryptV2(c) => c.wrap(plain, id, out),
        }
    }

    /// Authenticates (and decrypts) a received control packet into its plain form in `out` without any
    /// replay check. Returns the replay id (`None` without protection) and the plain length.
    pub fn open(
        &self,
        wire: &[u8],
        out: &mut [u8],
    ) -> Result<(Option<ReplayId>, usize), UnwrapError> {
        let (id, len) = match self {
            Protection::None => {
                let o = out
                    .get_mut(..wire.len())
                    .ok_or(UnwrapError::BufferTooSmall)?;
                o.copy_from_slice(wire);
                return Ok((None, wire.len()));
            }
            Protection::TlsAuth(a) => a.unwrap(wire, out)?,
            Protection::TlsCrypt(c) => c.unwrap(wire, out)?,
            Protection::TlsCryptV2(c) => c.unwrap(wire, out)?,
        };
        Ok((Some(id), len))
    }
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

    /// The wrapper of a configured protection for `role`, with a fresh replay state. A tls-crypt-v2
    /// client announces early negotiation: its first replay counter is 0x0F000001 (§2.7), so the server
    /// may answer with EARLY_NEG_FLAG_RESEND_WKC.
    pub fn for_role(
        config: &ControlProtection,
        role: Role,
    ) -> Result<ControlWrap, ProtectionError> {
        let protection = Protection::new(config, role)?;
        let sender = match protection {
            Protection::TlsCryptV2(_) => ReplayIdSender::early_negotiation(),
            _ => ReplayIdSender::new(),
        };
        Ok(ControlWrap {
            protection,
            sender,
            window: ReplayWindow::default(),
        })
    }

    /// No protection.
    pub fn none() -> ControlWrap {
        ControlWrap::new(Protection::None)
    }

    /// Shorthand (tests, fuzzing): tls-auth with a 256-byte static key, `key-direction` and `auth` digest.
    pub fn tls_auth(key2: &[u8; KEY2_LEN], direction: KeyDirection, digest: Digest) -> ControlWrap {
        ControlWrap::new(Protection::TlsAuth(TlsAuth::new(key2, direction, digest)))
    }

    /// Shorthand (tests, fuzzing): tls-crypt with a 256-byte key, client role.
    pub fn tls_crypt(key2: &[u8; KEY2_LEN]) -> ControlWrap {
        ControlWrap::tls_crypt_for(key2, Role::Client)
    }

    /// Shorthand (tests, fuzzing): tls-crypt with a 256-byte key for either side: the direction is fixed by
    /// role (§2.5), the server sends with keys[0], the client with keys[1]; `key-direction` does not apply.
    pub fn tls_crypt_for(key2: &[u8; KEY2_LEN], role: Role) -> ControlWrap {
        ControlWrap::new(Protection::TlsCrypt(TlsCrypt::for_role(key2, role)))
    }

    /// Shorthand (tests, fuzzing): tls-crypt-v2 client with Kc and WKc, as [`for_role`](Self::for_role).
    pub fn tls_crypt_v2(kc: &[u8; KEY2_LEN], wkc: &[u8]) -> Result<ControlWrap, ProtectionError> {
        let config = ControlProtection::TlsCryptV2 {
            kc: *kc,
            wkc: wkc.to_vec(),
        };
        ControlWrap::for_role(&config, Role::Client)
    }

    /// Dynamic tls-crypt for key_id > 0 (§2.9): `ekm` is the 256-byte export with label
    /// [`tls_crypt::DYNAMIC_TLS_CRYPT_LABEL`], `original` the connection's tls-auth / tls-crypt key or Kc.
    pub fn dynamic_tls_crypt(
        ekm: &[u8; KEY2_LEN],
        original: Option<&[u8; KEY2_LEN]>,
    ) -> ControlWrap {
        ControlWrap::dynamic_tls_crypt_for(ekm, original, Role::Client)
    }

    /// Dynamic tls-crypt (§2.9) for either side; see [`dynamic_tls_crypt`](Self::dynamic_tls_crypt).
    pub fn dynamic_tls_crypt_for(
        ekm: &[u8; KEY2_LEN],
        original: Option<&[u8; KEY2_LEN]>,
        role: Role,
    ) -> ControlWrap {
        let key = tls_crypt::dynamic_key(ekm, original);
        ControlWrap::new(Protection::TlsCrypt(TlsCrypt::for_role(&key, role)))
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
        let id = match self.protection {
            // Plain packets carry no replay id: do not consume one.
            Protection::None => ReplayId::default(),
            _ => self.sender.next(now_unix)?,
        };
        self.protection.seal(plain, id, out)
    }

    /// Authenticates (and decrypts) a received control packet into its plain form in `out`, then checks
    /// and records its replay id. Returns the plain length.
    pub fn unwrap(
        &mut self,
        wire: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Result<usize, UnwrapError> {
        let (id, len) = self.protection.open(wire, out)?;
        if let Some(id) = id {
            self.window
                .update(id.time, id.counter, now)
                .map_err(UnwrapError::Replay)?;
        }
        Ok(len)
    }

    /// Takes over a connection whose first exchange ran without state (the server's HMAC cookie, §2.8):
    /// the server reset already went out with replay counter 1, so the next packet uses 2; and the client's
    /// packet `received` (already authenticated) is recorded together with every earlier counter of its
    /// sequence inside the window, so neither the client's reset nor the accepting packet replays later.
    pub(crate) fn resume_after_stateless(
        &mut self,
        received: Option<ReplayId>,
        now_unix: u32,
        now: Instant,
    ) -> Result<(), ReplayError> {
        if let Protection::None = self.protection {
            return Ok(());
        }
        // Counter 1 went out in the stateless reset; a fresh sender cannot be exhausted.
        let _ = self.sender.next(now_unix);
        let Some(id) = received else {
            return Ok(());
        };
        let first = id
            .counter
            .saturating_sub(super::replay::DEFAULT_WINDOW - 1)
            .max(1);
        for counter in first..id.counter {
            // Ascending counters in a fresh window are always accepted.
            let _ = self.window.update(id.time, counter, now);
        }
        self.window.update(id.time, id.counter, now)
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

    /// Client wrap -> server unwrap and back, for every protection, each side with its own window.
    #[test]
    fn client_and_server_sides_talk_in_every_mode() {
        use crate::crypto::tls_crypt_v2::TlsCryptV2ServerKey;
        let key = test_pkt_static_key();
        let kc: [u8; KEY2_LEN] = core::array::from_fn(|i| (i * 7) as u8);
        let server_key = TlsCryptV2ServerKey::new(&[0x11; 128]);
        let wkc = server_key
            .wrap_client_key(&kc, &[1, 0, 0, 0, 0, 0, 0, 0, 9])
            .unwrap();
        let (kc_srv, _) = server_key.unwrap_client_key(&wkc).unwrap();
        let pairs = [
            (ControlWrap::none(), ControlWrap::none()),
            (
                ControlWrap::tls_auth(&key, KeyDirection::Inverse, Digest::Sha256),
                ControlWrap::tls_auth(&key, KeyDirection::Normal, Digest::Sha256),
            ),
            (
                ControlWrap::tls_crypt(&key),
                ControlWrap::tls_crypt_for(&key, Role::Server),
            ),
            (
                ControlWrap::tls_crypt_v2(&kc, &wkc).unwrap(),
                ControlWrap::tls_crypt_for(&kc_srv, Role::Server),
            ),
            (
                ControlWrap::dynamic_tls_crypt(&[0xba; KEY2_LEN], Some(&key)),
                ControlWrap::dynamic_tls_crypt_for(&[0xba; KEY2_LEN], Some(&key), Role::Server),
            ),
        ];
        let c2s = hex("206891923fa31034370000000001160301");
        let s2c = hex("40aabbccddeeff00110100000000689192");
        for (i, (mut client, mut server)) in pairs.into_iter().enumerate() {
            let mut wire = [0u8; 1500];
            let mut back = [0u8; 1500];
            let n = client.wrap(&c2s, 1000, &mut wire).unwrap();
            let m = server.unwrap(&wire[..n], Instant::ZERO, &mut back).unwrap();
            assert_eq!(back[..m], c2s[..], "mode {i}");
            let n = server.wrap(&s2c, 1000, &mut wire).unwrap();
            assert_eq!(server.overhead(OpKey::parse(&s2c).unwrap()), n - s2c.len());
            let m = client.unwrap(&wire[..n], Instant::ZERO, &mut back).unwrap();
            assert_eq!(back[..m], s2c[..], "mode {i}");
            if i > 0 {
                // A side cannot open its own packets (directions differ), and replays are refused.
                assert!(server.unwrap(&wire[..n], Instant::ZERO, &mut back).is_err());
                assert!(client.unwrap(&wire[..n], Instant::ZERO, &mut back).is_err());
            }
        }
    }

    #[test]
    fn resume_after_stateless_marks_earlier_counters() {
        let key = test_pkt_static_key();
        let mut client = ControlWrap::tls_crypt(&key);
        let mut server = ControlWrap::tls_crypt_for(&key, Role::Server);
        let plain = hex("386891923fa31034370000000000");
        let mut wires = [[0u8; 64]; 3];
        for w in wires.iter_mut() {
            client.wrap(&plain, 77, w).unwrap();
        }
        let mut back = [0u8; 64];
        let (id, _) = server
            .protection()
            .open(&wires[2][..54], &mut back)
            .unwrap();
        assert_eq!(id.map(|i| i.counter), Some(3));
        server
            .resume_after_stateless(id, 80, Instant::ZERO)
            .unwrap();
        for w in &wires {
            assert!(server.unwrap(&w[..54], Instant::ZERO, &mut back).is_err());
        }
        // The server's next packet carries counter 2 (its stateless reset used 1).
        let n = server.wrap(&plain, 80, &mut back).unwrap();
        assert_eq!(back[9..13], [0, 0, 0, 2]);
        assert!(client
            .unwrap(&back[..n], Instant::ZERO, &mut [0u8; 64])
            .is_ok());
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
