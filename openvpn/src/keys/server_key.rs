//! The 128-byte server-only key files `openvpn --genkey` writes: `tls-crypt-v2-server` (PEM label
//! `OpenVPN tls-crypt-v2 server key`, wire reference §2.7: Ke = bytes 0..32, Ka = bytes 64..96) and
//! `auth-token` (`OpenVPN auth-token server key`). Both bodies are one OpenVPN `struct key` (64 cipher + 64 HMAC
//! bytes).
//!
//! Layer: pure text parser and printer; no crypto runs here (`crypto::TlsCryptV2ServerKey` wraps and opens
//! client keys with these bytes). The client engine never needs these files; server-side tools do.

use alloc::string::String;
use core::fmt;

use super::error::KeyError;
use super::pem;

/// Size of a server key body: one `struct key`.
pub const SERVER_KEY_LEN: usize = 128;

/// Which server key file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKeyKind {
    /// `openvpn --genkey tls-crypt-v2-server`: wraps the tls-crypt-v2 client keys.
    TlsCryptV2,
    /// `openvpn --genkey auth-token`: signs the server's `auth-token`s.
    AuthToken,
}

impl ServerKeyKind {
    /// The PEM label of the file.
    pub fn label(self) -> &'static str {
        match self {
            ServerKeyKind::TlsCryptV2 => "OpenVPN tls-crypt-v2 server key",
            ServerKeyKind::AuthToken => "OpenVPN auth-token server key",
        }
    }
}

/// A 128-byte server key of one [`ServerKeyKind`]. Wiped when dropped; never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey {
    kind: ServerKeyKind,
    bytes: [u8; SERVER_KEY_LEN],
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKey({:?}, ..)", self.kind)
    }
}

impl Drop for ServerKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

impl ServerKey {
    /// Wraps raw key bytes (fresh random bytes for a new key).
    pub fn from_bytes(kind: ServerKeyKind, bytes: [u8; SERVER_KEY_LEN]) -> Self {
        ServerKey { kind, bytes }
    }

    /// Parses the file text, which must hold a PEM block of `kind` with exactly 128 bytes.
    pub fn parse(text: &str, kind: ServerKeyKind) -> Result<Self, KeyError> {
        let blocks = pem::blocks(text)?;
        let block = blocks
            .into_iter()
            .find(|b| b.label == kind.label())
            .ok_or(KeyError::MissingPemBlock(kind.label()))?;
        let bytes: [u8; SERVER_KEY_LEN] = block
            .der
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadServerKeyLength)?;
        Ok(ServerKey { kind, bytes })
    }

    /// Which file this is.
    pub fn kind(&self) -> ServerKeyKind {
        self.kind
    }

    /// The 128 raw bytes.
    pub fn as_bytes(&self) -> &[u8; SERVER_KEY_LEN] {
        &self.bytes
    }

    /// The PEM text `openvpn --genkey` writes for this key.
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        pem::encode(self.kind.label(), &self.bytes, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by `openvpn --genkey auth-token` (2.6.14).
    const AUTH_TOKEN: &str = "-----BEGIN OpenVPN auth-token server key-----
3apK86/4paj4F42bz0wIUYtRMXA/FXOeqVckIljnItB8KKAhUjNn6a095tmcw/fp
AYpPlR0N+uW+K8Kx5dNiCFh85G775rGB+cEV3pgnuorldDj/SdXxBDRVqhTQZBDx
hx7cNZxKaym9COVcT5Ga+Owiwm3AmJe3j1izpKixbdc=
-----END OpenVPN auth-token server key-----
";

    #[test]
    fn openvpn_output_round_trips() {
        let key = ServerKey::parse(AUTH_TOKEN, ServerKeyKind::AuthToken).unwrap();
        assert_eq!(key.as_bytes()[..3], [0xdd, 0xaa, 0x4a]);
        assert_eq!(key.to_pem(), AUTH_TOKEN);
        let v2 = ServerKey::from_bytes(ServerKeyKind::TlsCryptV2, [7; 128]);
        assert_eq!(
            ServerKey::parse(&v2.to_pem(), ServerKeyKind::TlsCryptV2),
            Ok(v2)
        );
    }

    #[test]
    fn wrong_kind_or_length_is_refused() {
        assert_eq!(
            ServerKey::parse(AUTH_TOKEN, ServerKeyKind::TlsCryptV2),
            Err(KeyError::MissingPemBlock("OpenVPN tls-crypt-v2 server key"))
        );
        let mut short = String::new();
        pem::encode("OpenVPN tls-crypt-v2 server key", &[1; 100], &mut short);
        assert_eq!(
            ServerKey::parse(&short, ServerKeyKind::TlsCryptV2),
            Err(KeyError::BadServerKeyLength)
        );
    }
}
