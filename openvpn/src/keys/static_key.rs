//! The "OpenVPN Static key V1" file (`openvpn --genkey secret`), used by tls-auth and tls-crypt, and the key
//! direction that picks its send and receive slices (wire reference §2.5).
//!
//! Layer: pure text parser; holds 256 secret bytes and hands out slices. It never panics.

use alloc::string::String;
use core::fmt;

use super::error::KeyError;

const HEADER: &str = "-----BEGIN OpenVPN Static key V1-----";
const FOOTER: &str = "-----END OpenVPN Static key V1-----";

/// Size of a full static key ("key2"): two `struct key` of 64 cipher + 64 HMAC bytes each.
pub const STATIC_KEY_LEN: usize = 256;

/// Which half of a static key each direction uses (wire reference §2.5, `key_direction_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyDirection {
    /// No direction given: both directions use keys[0].
    #[default]
    Bidirectional,
    /// Direction 0 ("normal", the server's convention): send with keys[0], receive with keys[1].
    Normal,
    /// Direction 1 ("inverse", the client's convention): send with keys[1], receive with keys[0].
    Inverse,
}

impl KeyDirection {
    /// Parses the `0`/`1` argument of `key-direction` or `tls-auth FILE DIR`.
    pub fn from_arg(arg: &str) -> Option<Self> {
        match arg {
            "0" => Some(KeyDirection::Normal),
            "1" => Some(KeyDirection::Inverse),
            _ => None,
        }
    }

    /// The config-file argument (`None` for bidirectional, which has no argument).
    pub fn as_arg(self) -> Option<&'static str> {
        match self {
            KeyDirection::Bidirectional => None,
            KeyDirection::Normal => Some("0"),
            KeyDirection::Inverse => Some("1"),
        }
    }
}

/// The four 64-byte slots of a static key in the order one side uses them. A cipher uses the first keylen
/// bytes of its cipher slot, an HMAC the first digest-size bytes of its HMAC slot.
#[derive(Clone, Copy)]
pub struct KeySlices<'a> {
    /// Cipher key for outgoing packets (tls-crypt: Ke, first 32 bytes).
    pub send_cipher: &'a [u8; 64],
    /// HMAC key for outgoing packets (tls-auth HMAC, tls-crypt Ka).
    pub send_hmac: &'a [u8; 64],
    /// Cipher key for incoming packets.
    pub recv_cipher: &'a [u8; 64],
    /// HMAC key for incoming packets.
    pub recv_hmac: &'a [u8; 64],
}

/// A 2048-bit OpenVPN static key.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKey {
    bytes: [u8; STATIC_KEY_LEN],
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material into logs.
        f.write_str("StaticKey(..)")
    }
}

impl zeroize::Zeroize for StaticKey {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
    }
}

/// Wiped when dropped.
impl Drop for StaticKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self);
    }
}

impl StaticKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; STATIC_KEY_LEN]) -> Self {
        StaticKey { bytes }
    }

    /// The 256 raw bytes.
    pub fn as_bytes(&self) -> &[u8; STATIC_KEY_LEN] {
        &self.bytes
    }

    /// Parses the file text. Anything before the header line is ignored; between header and footer only hex
    /// digits and whitespace are allowed (wire reference §2.5).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut lines = text.lines();
        lines
            .by_ref()
            .find(|l| l.trim_start().starts_with(HEADER))
            .ok_or(KeyError::MissingPemBlock("OpenVPN Static key V1"))?;
        let mut bytes = [0u8; STATIC_KEY_LEN];
        let mut count = 0usize;
        let mut high: Option<u8> = None;
        let mut ended = false;
        for line in lines {
            let line = line.trim();
            if line.starts_with('-') {
                if line != FOOTER {
                    return Err(KeyError::BadStaticKeyFooter);
                }
                ended = true;
                break;
            }
            for c in line.chars() {
                if c.is_whitespace() {
                    continue;
                }
                let nibble = c.to_digit(16).ok_or(KeyError::BadStaticKeyHex)?;
                let nibble = u8::try_from(nibble).map_err(|_| KeyError::BadStaticKeyHex)?;
                match high.take() {
                    None => high = Some(nibble),
                    Some(h) => {
                        // Bytes past 256 are ignored, as OpenVPN does for longer files.
                        if let Some(slot) = bytes.get_mut(count) {
                            *slot = (h << 4) | nibble;
                        }
                        count += 1;
                    }
                }
            }
        }
        if !ended {
            return Err(KeyError::BadStaticKeyFooter);
        }
        if high.is_some() {
            return Err(KeyError::BadStaticKeyHex);
        }
        if count < STATIC_KEY_LEN {
            return Err(KeyError::StaticKeyTooShort);
        }
        Ok(StaticKey { bytes })
    }

    /// The file text `openvpn --genkey secret` writes for this key.
    pub fn to_pem(&self) -> String {
        let mut out = String::with_capacity(700);
        out.push_str("#\n# 2048 bit OpenVPN static key\n#\n");
        out.push_str(HEADER);
        out.push('\n');
        for line in self.bytes.chunks(16) {
            for b in line {
                push_hex(&mut out, *b);
            }
            out.push('\n');
        }
        out.push_str(FOOTER);
        out.push('\n');
        out
    }

    fn slot(&self, index: usize) -> &[u8; 64] {
        // index is 0..4 from the match below, so the range is always inside the 256-byte array.
        let start = index * 64;
        self.bytes
            .get(start..start + 64)
            .and_then(|s| <&[u8; 64]>::try_from(s).ok())
            .unwrap_or(&[0; 64])
    }

    /// The slices one side uses with `direction` (wire reference §2.5 table).
    pub fn slices(&self, direction: KeyDirection) -> KeySlices<'_> {
        let (send, recv) = match direction {
            KeyDirection::Bidirectional => (0, 0),
            KeyDirection::Normal => (0, 2),
            KeyDirection::Inverse => (2, 0),
        };
        KeySlices {
            send_cipher: self.slot(send),
            send_hmac: self.slot(send + 1),
            recv_cipher: self.slot(recv),
            recv_hmac: self.slot(recv + 1),
        }
    }

    /// The client's tls-crypt slices: the direction is fixed by role ("inverse"), whatever `key-direction`
    /// says (wire reference §2.5).
    pub fn tls_crypt_client_slices(&self) -> KeySlices<'_> {
        self.slices(KeyDirection::Inverse)
    }
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(
        HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
    ));
    out.push(char::from(
        HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StaticKey {
        let mut bytes = [0u8; 256];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        StaticKey::from_bytes(bytes)
    }

    #[test]
    fn pem_round_trip() {
        let key = sample();
        assert_eq!(StaticKey::parse(&key.to_pem()), Ok(key));
    }

    #[test]
    fn direction_slices_follow_the_table() {
        let key = sample();
        let inverse = key.slices(KeyDirection::Inverse);
        assert_eq!(inverse.send_cipher[0], 128);
        assert_eq!(inverse.send_hmac[0], 192);
        assert_eq!(inverse.recv_cipher[0], 0);
        assert_eq!(inverse.recv_hmac[0], 64);
        let normal = key.slices(KeyDirection::Normal);
        assert_eq!((normal.send_hmac[0], normal.recv_hmac[0]), (64, 192));
        let bi = key.slices(KeyDirection::Bidirectional);
        assert_eq!((bi.send_hmac[0], bi.recv_hmac[0]), (64, 64));
    }

    #[test]
    fn rejects_bad_files() {
        let good = sample().to_pem();
        assert_eq!(
            StaticKey::parse("nothing"),
            Err(KeyError::MissingPemBlock("OpenVPN Static key V1"))
        );
        assert_eq!(
            StaticKey::parse(&good.replace("0a", "zz")),
            Err(KeyError::BadStaticKeyHex)
        );
        let short: String = good
            .lines()
            .filter(|l| !l.starts_with("f0"))
            .collect::<alloc::vec::Vec<_>>()
            .join("\n");
        assert_eq!(StaticKey::parse(&short), Err(KeyError::StaticKeyTooShort));
        assert_eq!(
            StaticKey::parse(&good.replace(FOOTER, "")),
            Err(KeyError::BadStaticKeyFooter)
        );
    }
}
