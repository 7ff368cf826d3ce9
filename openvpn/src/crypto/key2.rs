//! The 256-byte `key2` layout shared by static keys, tls-crypt(-v2) keys and derived data keys
//! (wire reference §2.5, §5.6), key directions, and the HMAC digests OpenVPN uses.

use core::fmt;

/// Length of a key2 block: two `cipher[64] || hmac[64]` keys.
pub const KEY2_LEN: usize = 256;
/// Length of one cipher or HMAC slot.
pub const SLOT_LEN: usize = 64;

/// Which of the two keys of a key2 block each direction uses (§2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDirection {
    /// No direction: both directions use keys[0].
    Bidirectional,
    /// Direction 0: send with keys[0], receive with keys[1] (servers, tls-crypt server role).
    Normal,
    /// Direction 1: send with keys[1], receive with keys[0] (clients, tls-crypt client role).
    Inverse,
}

impl KeyDirection {
    /// Index (0 or 1) of the key used for sending.
    pub const fn send_index(self) -> usize {
        match self {
            KeyDirection::Bidirectional | KeyDirection::Normal => 0,
            KeyDirection::Inverse => 1,
        }
    }

    /// Index (0 or 1) of the key used for receiving.
    pub const fn recv_index(self) -> usize {
        match self {
            KeyDirection::Bidirectional | KeyDirection::Inverse => 0,
            KeyDirection::Normal => 1,
        }
    }
}

/// The cipher slot (64 bytes) of key `index` (0 or 1) of a key2 block.
pub fn cipher_slot(key2: &[u8; KEY2_LEN], index: usize) -> &[u8] {
    let start = index.min(1) * 2 * SLOT_LEN;
    key2.get(start..start + SLOT_LEN).unwrap_or(&[])
}

/// The HMAC slot (64 bytes) of key `index` (0 or 1) of a key2 block.
pub fn hmac_slot(key2: &[u8; KEY2_LEN], index: usize) -> &[u8] {
    let start = index.min(1) * 2 * SLOT_LEN + SLOT_LEN;
    key2.get(start..start + SLOT_LEN).unwrap_or(&[])
}

/// An HMAC digest usable for `--auth` (tls-auth and CBC data packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Digest {
    /// SHA-1, OpenVPN's default `auth` (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl Digest {
    /// Output (and key) length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 => 64,
        }
    }

    /// The digest named as in an OpenVPN config (`auth SHA256`), case-insensitively; also accepts the
    /// dashed OpenSSL spellings (`SHA-256`).
    pub fn from_name(name: &str) -> Option<Digest> {
        let eq = |s: &str| name.eq_ignore_ascii_case(s);
        if eq("SHA1") || eq("SHA-1") {
            Some(Digest::Sha1)
        } else if eq("SHA256") || eq("SHA-256") || eq("SHA2-256") {
            Some(Digest::Sha256)
        } else if eq("SHA384") || eq("SHA-384") || eq("SHA2-384") {
            Some(Digest::Sha384)
        } else if eq("SHA512") || eq("SHA-512") || eq("SHA2-512") {
            Some(Digest::Sha512)
        } else {
            None
        }
    }

    /// The canonical OpenVPN name.
    pub const fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "SHA1",
            Digest::Sha256 => "SHA256",
            Digest::Sha384 => "SHA384",
            Digest::Sha512 => "SHA512",
        }
    }

    /// The ring HMAC algorithm.
    pub(crate) fn hmac_algorithm(self) -> ring::hmac::Algorithm {
        match self {
            Digest::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Digest::Sha256 => ring::hmac::HMAC_SHA256,
            Digest::Sha384 => ring::hmac::HMAC_SHA384,
            Digest::Sha512 => ring::hmac::HMAC_SHA512,
        }
    }

    /// An HMAC key from the first `len()` bytes of a 64-byte slot.
    pub(crate) fn hmac_key(self, slot: &[u8]) -> ring::hmac::Key {
        let key = slot.get(..self.output_len()).unwrap_or(slot);
        ring::hmac::Key::new(self.hmac_algorithm(), key)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_directions() {
        let mut key2 = [0u8; KEY2_LEN];
        for (i, b) in key2.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(cipher_slot(&key2, 0)[0], 0);
        assert_eq!(hmac_slot(&key2, 0)[0], 64);
        assert_eq!(cipher_slot(&key2, 1)[0], 128);
        assert_eq!(hmac_slot(&key2, 1)[0], 192);
        assert_eq!(hmac_slot(&key2, 1).len(), 64);
        assert_eq!(
            (
                KeyDirection::Inverse.send_index(),
                KeyDirection::Inverse.recv_index()
            ),
            (1, 0)
        );
        assert_eq!(
            (
                KeyDirection::Normal.send_index(),
                KeyDirection::Normal.recv_index()
            ),
            (0, 1)
        );
        assert_eq!(KeyDirection::Bidirectional.recv_index(), 0);
        assert_eq!(Digest::from_name("sha256"), Some(Digest::Sha256));
        assert_eq!(Digest::from_name("MD5"), None);
    }
}
