//! The data channel of a connection: the installed [`DataKey`]s (current, lame duck, new), key selection
//! by the received key_id, compression framing and payload classification (wire reference §6, §7, §9).
//!
//! Layer: per-packet crypto state only. When to install, promote or retire keys is decided by the session
//! state machine; this type just follows. No allocation per packet.

use super::data::{DataError, DataKey};
use super::payload::{classify, Compression, Inbound, OCC_EXIT_MESSAGE, PING_MAGIC};
use crate::time::Instant;
use crate::wire::{KeyId, OpKey};
use core::ops::Range;
use rand_core::CryptoRngCore;

/// Most keys held at once: the primary, the lame duck of the last renegotiation and a key being installed.
pub const MAX_KEYS: usize = 3;

/// The keys of a connection and the framing they share.
#[derive(Debug, Default)]
pub struct DataChannel {
    keys: [Option<DataKey>; MAX_KEYS],
    primary: Option<KeyId>,
    compression: Compression,
}

impl DataChannel {
    /// An empty channel with no keys and no compression framing.
    pub fn new() -> DataChannel {
        DataChannel::default()
    }

    /// Sets the compression framing (from `comp-lzo` / `compress`, configured or pushed).
    pub fn set_compression(&mut self, compression: Compression) {
        self.compression = compression;
    }

    /// The compression framing in effect.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Installs `key`, replacing a key with the same key_id, else filling a free slot, else evicting a
    /// non-primary key. The first key installed becomes primary.
    pub fn install(&mut self, key: DataKey) {
        let id = key.key_id();
        let slot = self
            .keys
            .iter()
            .position(|k| k.as_ref().is_some_and(|k| k.key_id() == id))
            .or_else(|| self.keys.iter().position(Option::is_none))
            .or_else(|| {
                self.keys
                    .iter()
                    .position(|k| k.as_ref().is_some_and(|k| Some(k.key_id()) != self.primary))
            });
        if let Some(s) = slot.and_then(|i| self.keys.get_mut(i)) {
            *s = Some(key);
        }
        if self.primary.is_none() {
            self.primary = Some(id);
        }
    }

    /// Makes the key with `key_id` the one used for sending; false if it is not installed.
    pub fn set_primary(&mut self, key_id: KeyId) -> bool {
        if self.key(key_id).is_some() {
            self.primary = Some(key_id);
            true
        } else {
            false
        }
    }

    /// Drops the key with `key_id` (e.g. when the lame duck's transition window ends).
    pub fn remove(&mut self, key_id: KeyId) {
        for slot in &mut self.keys {
            if slot.as_ref().is_some_and(|k| k.key_id() == key_id) {
                *slot = None;
            }
        }
        if self.primary == Some(key_id) {
            self.primary = None;
        }
    }

    /// Drops every key (reconnect).
    pub fn clear(&mut self) {
        self.keys = Default::default();
        self.primary = None;
    }

    /// The key with `key_id`, if installed.
    pub fn key(&self, key_id: KeyId) -> Option<&DataKey> {
        self.keys.iter().flatten().find(|k| k.key_id() == key_id)
    }

    pub(crate) fn key_mut(&mut self, key_id: KeyId) -> Option<&mut DataKey> {
        self.keys
            .iter_mut()
            .flatten()
            .find(|k| k.key_id() == key_id)
    }

    /// The key used for sending.
    pub fn primary(&self) -> Option<&DataKey> {
        self.primary.and_then(|id| self.key(id))
    }

    /// Upper bound of the bytes the data channel adds around a payload: P_DATA_V2 header, HMAC-SHA512,
    /// CBC IV, packet-id, a full padding block and two framing bytes. A buffer of
    /// `payload + MAX_OVERHEAD` always suffices for [`encrypt`](Self::encrypt).
    pub const MAX_OVERHEAD: usize = 4 + 64 + 16 + 4 + 16 + Compression::MAX_PREFIX;

    /// Where [`encrypt_in_place`](Self::encrypt_in_place) expects the payload: the primary key's headroom
    /// plus room for the compression prefix. `None` without a primary key.
    pub fn headroom(&self) -> Option<usize> {
        self.primary()
            .map(|k| k.headroom() + Compression::MAX_PREFIX)
    }

    /// Frames and encrypts in place, without copying the payload: the payload lies at
    /// `buf[self.headroom()..][..payload_len]` and `buf` has at least [`MAX_OVERHEAD`](Self::MAX_OVERHEAD)
    /// bytes beyond it in total. Returns where the sealed packet lies in `buf` (it starts 0..2 bytes in).
    pub fn encrypt_in_place<R: CryptoRngCore + ?Sized>(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        rng: &mut R,
    ) -> Result<Range<usize>, DataError> {
        let at = self.headroom().ok_or(DataError::NoKey)?;
        self.encrypt_in_place_at(buf, at, payload_len, rng)
    }

    /// [`encrypt_in_place`](Self::encrypt_in_place) with the payload at `buf[at..][..payload_len]`, where
    /// `at` may be less than [`headroom`](Self::headroom) by the compression prefix this packet does not
    /// need (then the sealed packet starts closer to, or at, `buf[0]`). Too little room in front of the
    /// payload is [`DataError::BufferTooSmall`], found before anything is consumed (packet-id).
    pub fn encrypt_in_place_at<R: CryptoRngCore + ?Sized>(
        &mut self,
        buf: &mut [u8],
        at: usize,
        payload_len: usize,
        rng: &mut R,
    ) -> Result<Range<usize>, DataError> {
        let compression = self.compression;
        let key = self
            .primary
            .and_then(|id| self.keys.iter_mut().flatten().find(|k| k.key_id() == id));
        let key = key.ok_or(DataError::NoKey)?;
        let end = at
            .checked_add(payload_len)
            .ok_or(DataError::BufferTooSmall)?;
        let framed = compression.frame_in_place(buf, at..end)?;
        // The sealed packet starts `headroom` bytes before the framed payload.
        let start = framed
            .start
            .checked_sub(key.headroom())
            .ok_or(DataError::BufferTooSmall)?;
        let packet = buf.get_mut(start..).ok_or(DataError::BufferTooSmall)?;
        let len = key.seal_in_place(packet, framed.len(), rng)?;
        Ok(start..start + len)
    }

    /// Frames and encrypts `payload` (an IP packet) with the primary key into `out`; returns the packet
    /// length. `out` must hold `payload.len() + MAX_OVERHEAD` bytes.
    pub fn encrypt<R: CryptoRngCore + ?Sized>(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, DataError> {
        let compression = self.compression;
        let key = self
            .primary
            .and_then(|id| self.keys.iter_mut().flatten().find(|k| k.key_id() == id));
        let key = key.ok_or(DataError::NoKey)?;
        let at = key.headroom();
        let framed =
            compression.frame(payload, out.get_mut(at..).ok_or(DataError::BufferTooSmall)?)?;
        key.seal_in_place(out, framed, rng)
    }

    /// Encrypts a keepalive ping.
    pub fn encrypt_ping<R: CryptoRngCore + ?Sized>(
        &mut self,
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, DataError> {
        self.encrypt(&PING_MAGIC, out, rng)
    }

    /// Encrypts an OCC_EXIT message (explicit-exit-notify without cc-exit).
    pub fn encrypt_occ_exit<R: CryptoRngCore + ?Sized>(
        &mut self,
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, DataError> {
        self.encrypt(&OCC_EXIT_MESSAGE, out, rng)
    }

    /// Decrypts a received data packet in place with the key its key_id selects, removes the compression
    /// framing and classifies the payload. Ranges in the result index into `packet`.
    pub fn decrypt(&mut self, packet: &mut [u8], now: Instant) -> Result<Inbound, DataError> {
        let op = OpKey::parse(packet).map_err(|_| DataError::NotData)?;
        if !op.opcode.is_data() {
            return Err(DataError::NotData);
        }
        let compression = self.compression;
        let key = self
            .key_mut(op.key_id)
            .ok_or(DataError::UnknownKeyId(op.key_id.value()))?;
        let range = key.open_in_place(packet, now)?;
        let range = compression.unframe(packet, range)?;
        Ok(classify(packet, range))
    }
}

/// Fuzzing entry point: decrypts untrusted bytes with fixed keys for every cipher; must never panic.
pub fn fuzz_decrypt(bytes: &[u8]) {
    use super::data::{DataCipher, Role};
    use super::key2::Digest;
    use super::replay::ReplayWindow;
    let key2 = [0x5au8; 256];
    let mut buf = [0u8; 2048];
    let Some(packet) = buf.get_mut(..bytes.len()) else {
        return;
    };
    for cipher in [
        DataCipher::Aes256Gcm,
        DataCipher::ChaCha20Poly1305,
        DataCipher::Aes256Cbc(Digest::Sha256),
    ] {
        for compression in [Compression::None, Compression::Stub] {
            let mut channel = DataChannel::new();
            channel.set_compression(compression);
            for kid in 0..2 {
                if let (Some(k), Ok(key)) = (
                    KeyId::new(kid),
                    DataKey::new(
                        cipher,
                        &key2,
                        Role::Client,
                        KeyId::new(kid).unwrap_or_default(),
                        Some(0),
                        ReplayWindow::default(),
                    ),
                ) {
                    let _ = k;
                    channel.install(key);
                }
            }
            packet.copy_from_slice(bytes);
            let _ = channel.decrypt(packet, Instant::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::data::{DataCipher, Role};
    use crate::crypto::payload::OCC_EXIT;
    use crate::crypto::replay::ReplayWindow;
    use rand_core::SeedableRng;

    fn pair(kid: u8, cipher: DataCipher, seed: u8) -> (DataKey, DataKey) {
        let key2 = [seed; 256];
        let k = KeyId::new(kid).unwrap();
        (
            DataKey::new(
                cipher,
                &key2,
                Role::Client,
                k,
                Some(7),
                ReplayWindow::default(),
            )
            .unwrap(),
            DataKey::new(
                cipher,
                &key2,
                Role::Server,
                k,
                Some(7),
                ReplayWindow::default(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn rekey_with_lame_duck() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut client, mut server) = (DataChannel::new(), DataChannel::new());
        for ch in [&mut client, &mut server] {
            ch.set_compression(Compression::LzoStub);
        }
        let (c0, s0) = pair(0, DataCipher::Aes256Gcm, 1);
        client.install(c0);
        server.install(s0);
        let mut buf = [0u8; 256];
        let n = client
            .encrypt(&[0x45, 1, 2, 3], &mut buf, &mut rng)
            .unwrap();
        let old_packet = buf;
        assert_eq!(
            server.decrypt(&mut buf[..n], Instant::ZERO),
            Ok(Inbound::Ip(25..29))
        );

        // Renegotiate to key_id 1; the server keeps key 0 as lame duck.
        let (c1, s1) = pair(1, DataCipher::ChaCha20Poly1305, 2);
        client.install(c1);
        server.install(s1);
        assert_eq!(client.primary().unwrap().key_id().value(), 0);
        assert!(client.set_primary(KeyId::new(1).unwrap()));
        let m = client.encrypt_ping(&mut buf, &mut rng).unwrap();
        assert_eq!(buf[0], 0x49);
        assert_eq!(
            server.decrypt(&mut buf[..m], Instant::ZERO),
            Ok(Inbound::Ping)
        );
        // A late old-key packet still decrypts until the lame duck is removed... once (replay protected).
        let mut late = old_packet;
        assert_eq!(
            server.decrypt(&mut late[..n], Instant::ZERO),
            Err(DataError::Replay(crate::crypto::ReplayError::Duplicate))
        );
        server.remove(KeyId::ZERO);
        let mut late = old_packet;
        assert_eq!(
            server.decrypt(&mut late[..n], Instant::ZERO),
            Err(DataError::UnknownKeyId(0))
        );

        let m = client.encrypt_occ_exit(&mut buf, &mut rng).unwrap();
        let got = server.decrypt(&mut buf[..m], Instant::ZERO).unwrap();
        assert!(got.is_exit());
        assert!(matches!(
            got,
            Inbound::Occ {
                opcode: OCC_EXIT,
                ..
            }
        ));
        assert_eq!(
            server.decrypt(&mut [0x20u8, 0, 0][..], Instant::ZERO),
            Err(DataError::NotData)
        );
        assert_eq!(
            DataChannel::new().encrypt(&[1], &mut buf, &mut rng),
            Err(DataError::NoKey)
        );
    }

    #[test]
    fn in_place_encryption_matches_copying_encryption() {
        for compression in [
            Compression::None,
            Compression::LzoStub,
            Compression::Stub,
            Compression::StubV2,
        ] {
            for cipher in [
                DataCipher::Aes256Gcm,
                DataCipher::Aes128Cbc(crate::crypto::Digest::Sha256),
            ] {
                let (c1, s1) = pair(2, cipher, 9);
                let (c2, _) = pair(2, cipher, 9);
                let (mut a, mut b, mut server) =
                    (DataChannel::new(), DataChannel::new(), DataChannel::new());
                for (ch, key) in [(&mut a, c1), (&mut b, c2), (&mut server, s1)] {
                    ch.set_compression(compression);
                    ch.install(key);
                }
                let payload = [0x50u8, 0x45, 1, 2, 3, 4, 5];
                let mut copied = [0u8; 200];
                let n = a
                    .encrypt(
                        &payload,
                        &mut copied,
                        &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
                    )
                    .unwrap();
                let mut buf = [0u8; 200];
                let at = b.headroom().unwrap();
                buf[at..at + payload.len()].copy_from_slice(&payload);
                let r = b
                    .encrypt_in_place(
                        &mut buf,
                        payload.len(),
                        &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
                    )
                    .unwrap();
                assert_eq!(buf[r.clone()], copied[..n], "{compression:?} {cipher}");
                let got = server.decrypt(&mut buf[r.clone()], Instant::ZERO).unwrap();
                let Inbound::Ip(p) = got else {
                    panic!("{got:?}")
                };
                assert_eq!(buf[r][p], payload);
            }
        }
    }

    #[test]
    fn install_evicts_non_primary() {
        let mut ch = DataChannel::new();
        for kid in 0..4 {
            ch.install(pair(kid, DataCipher::Aes128Gcm, kid + 1).0);
        }
        assert_eq!(ch.primary().unwrap().key_id().value(), 0);
        assert!(ch.key(KeyId::new(3).unwrap()).is_some());
        assert_eq!(ch.keys.iter().flatten().count(), 3);
    }

    #[test]
    fn fuzz_entry_survives_garbage() {
        fuzz_decrypt(&[]);
        fuzz_decrypt(&[0x48]);
        fuzz_decrypt(&[0x48, 0, 0, 0, 0, 0, 0, 1]);
        fuzz_decrypt(&[0x30; 100]);
        fuzz_decrypt(&[0x48; 3000]);
    }
}
