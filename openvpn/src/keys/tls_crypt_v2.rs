//! The tls-crypt-v2 client key file (`openvpn --genkey tls-crypt-v2-client`): PEM label
//! `OpenVPN tls-crypt-v2 client key`, body `Kc (256 bytes) || WKc` (wire reference §2.7).
//!
//! Layer: pure text parser. The WKc is opaque to the client: it is sent as is after the first packet.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::error::KeyError;
use super::pem;
use super::static_key::{StaticKey, STATIC_KEY_LEN};

const CLIENT_LABEL: &str = "OpenVPN tls-crypt-v2 client key";
const SERVER_LABEL: &str = "OpenVPN tls-crypt-v2 server key";

/// The largest wrapped client key a server accepts (wire reference §2.7).
pub const WKC_MAX_LEN: usize = 1024;
/// The smallest WKc: tag (32) + encrypted Kc (256) + length (2), with empty metadata.
pub const WKC_MIN_LEN: usize = 32 + STATIC_KEY_LEN + 2;

/// A tls-crypt-v2 client key: the tls-crypt key Kc and the server-wrapped copy WKc.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsCryptV2ClientKey {
    /// Kc, used like a tls-crypt key with the client's fixed "inverse" direction.
    pub kc: StaticKey,
    /// WKc = tag || AES-256-CTR(Kc || metadata) || len; appended to P_CONTROL_HARD_RESET_CLIENT_V3.
    pub wkc: Vec<u8>,
}

/// The largest metadata (type byte included) that fits in a WKc.
pub const METADATA_MAX_LEN: usize = WKC_MAX_LEN - WKC_MIN_LEN;

/// The metadata a server wraps into a client key (wire reference §2.7; `doc/tls-crypt-v2.txt`): one type byte
/// and its payload. The server's `tls-crypt-v2-verify` script sees the type and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    /// Type 0x00: free-form bytes (`openvpn --genkey tls-crypt-v2-client FILE BASE64`).
    User(Vec<u8>),
    /// Type 0x01: creation time, seconds since 1970 as a 64-bit big-endian integer (OpenVPN's default).
    Timestamp(u64),
    /// Any other type byte, with its payload; or a timestamp whose payload is not 8 bytes.
    Other(u8, Vec<u8>),
}

impl Metadata {
    /// Type byte of [`Metadata::User`].
    pub const TYPE_USER: u8 = 0x00;
    /// Type byte of [`Metadata::Timestamp`].
    pub const TYPE_TIMESTAMP: u8 = 0x01;

    /// Decodes metadata as unwrapped from a WKc (type byte first). Empty metadata has no type and is refused.
    pub fn decode(bytes: &[u8]) -> Result<Metadata, KeyError> {
        let (&kind, payload) = bytes.split_first().ok_or(KeyError::BadTlsCryptV2Metadata)?;
        if bytes.len() > METADATA_MAX_LEN {
            return Err(KeyError::BadTlsCryptV2Metadata);
        }
        Ok(match (kind, <[u8; 8]>::try_from(payload)) {
            (Self::TYPE_USER, _) => Metadata::User(payload.to_vec()),
            (Self::TYPE_TIMESTAMP, Ok(time)) => Metadata::Timestamp(u64::from_be_bytes(time)),
            _ => Metadata::Other(kind, payload.to_vec()),
        })
    }

    /// The bytes to wrap (type byte first). Fails when they would not fit in a WKc.
    pub fn encode(&self) -> Result<Vec<u8>, KeyError> {
        let (kind, payload): (u8, &[u8]) = match self {
            Metadata::User(bytes) => (Self::TYPE_USER, bytes),
            Metadata::Timestamp(time) => {
                let mut out = Vec::with_capacity(9);
                out.push(Self::TYPE_TIMESTAMP);
                out.extend_from_slice(&time.to_be_bytes());
                return Ok(out);
            }
            Metadata::Other(kind, bytes) => (*kind, bytes),
        };
        if payload.len() >= METADATA_MAX_LEN {
            return Err(KeyError::BadTlsCryptV2Metadata);
        }
        let mut out = Vec::with_capacity(1 + payload.len());
        out.push(kind);
        out.extend_from_slice(payload);
        Ok(out)
    }
}

impl fmt::Debug for TlsCryptV2ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TlsCryptV2ClientKey {{ wkc: {} bytes, .. }}",
            self.wkc.len()
        )
    }
}

impl TlsCryptV2ClientKey {
    /// Parses the PEM file text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::blocks(text)?;
        if blocks.iter().any(|b| b.label == SERVER_LABEL) {
            return Err(KeyError::TlsCryptV2ServerKey);
        }
        let block = blocks
            .into_iter()
            .find(|b| b.label == CLIENT_LABEL)
            .ok_or(KeyError::MissingPemBlock(CLIENT_LABEL))?;
        Self::from_bytes(&block.der)
    }

    /// Splits a decoded body into Kc and WKc, checking the WKc's trailing length field.
    pub fn from_bytes(body: &[u8]) -> Result<Self, KeyError> {
        if body.len() < STATIC_KEY_LEN {
            return Err(KeyError::BadTlsCryptV2Key);
        }
        let (kc, wkc) = body.split_at(STATIC_KEY_LEN);
        if wkc.len() < WKC_MIN_LEN || wkc.len() > WKC_MAX_LEN {
            return Err(KeyError::BadTlsCryptV2Key);
        }
        let len_field = wkc.get(wkc.len() - 2..).ok_or(KeyError::BadTlsCryptV2Key)?;
        let len_field: [u8; 2] = len_field
            .try_into()
            .map_err(|_| KeyError::BadTlsCryptV2Key)?;
        let declared = usize::from(u16::from_be_bytes(len_field));
        if declared != wkc.len() {
            return Err(KeyError::BadTlsCryptV2Key);
        }
        let kc: [u8; STATIC_KEY_LEN] = kc.try_into().map_err(|_| KeyError::BadTlsCryptV2Key)?;
        Ok(TlsCryptV2ClientKey {
            kc: StaticKey::from_bytes(kc),
            wkc: wkc.to_vec(),
        })
    }

    /// A client key from Kc and the WKc a server wrapped for it (`crypto::TlsCryptV2ServerKey::wrap_client_key`).
    pub fn from_parts(kc: StaticKey, wkc: Vec<u8>) -> Result<Self, KeyError> {
        let mut body = Vec::with_capacity(STATIC_KEY_LEN + wkc.len());
        body.extend_from_slice(kc.as_bytes());
        body.extend_from_slice(&wkc);
        Self::from_bytes(&body)
    }

    /// The PEM text `openvpn --genkey tls-crypt-v2-client` writes for this key.
    pub fn to_pem(&self) -> String {
        let mut body = Vec::with_capacity(STATIC_KEY_LEN + self.wkc.len());
        body.extend_from_slice(self.kc.as_bytes());
        body.extend_from_slice(&self.wkc);
        let mut out = String::new();
        pem::encode(CLIENT_LABEL, &body, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips() {
        // wire reference §10.5: USER metadata from base64 `AABBCCDD`, and a zero TIMESTAMP.
        let user = Metadata::decode(&[0, 0, 0, 0x41, 0x08, 0x20, 0xc3]).unwrap();
        assert_eq!(
            user,
            Metadata::User(alloc::vec![0, 0, 0x41, 0x08, 0x20, 0xc3])
        );
        assert_eq!(user.encode().unwrap(), [0, 0, 0, 0x41, 0x08, 0x20, 0xc3]);
        let time = Metadata::decode(&[1, 0, 0, 0, 0, 0x6b, 0x07, 0x1c, 0x79]).unwrap();
        assert_eq!(time, Metadata::Timestamp(0x6b07_1c79));
        assert_eq!(
            time.encode().unwrap(),
            [1, 0, 0, 0, 0, 0x6b, 0x07, 0x1c, 0x79]
        );
        assert_eq!(
            Metadata::decode(&[1, 2, 3]),
            Ok(Metadata::Other(1, alloc::vec![2, 3]))
        );
        assert_eq!(Metadata::decode(&[]), Err(KeyError::BadTlsCryptV2Metadata));
        assert_eq!(
            Metadata::User(alloc::vec![0; METADATA_MAX_LEN]).encode(),
            Err(KeyError::BadTlsCryptV2Metadata)
        );
        assert_eq!(
            Metadata::User(alloc::vec![0; METADATA_MAX_LEN - 1])
                .encode()
                .map(|m| m.len()),
            Ok(METADATA_MAX_LEN)
        );
    }

    #[test]
    fn from_parts_checks_the_wkc() {
        let kc = StaticKey::from_bytes([3; STATIC_KEY_LEN]);
        assert_eq!(
            TlsCryptV2ClientKey::from_parts(kc.clone(), alloc::vec![0; 10]),
            Err(KeyError::BadTlsCryptV2Key)
        );
        let mut wkc = alloc::vec![0u8; WKC_MIN_LEN];
        wkc[WKC_MIN_LEN - 1] = 0x22;
        wkc[WKC_MIN_LEN - 2] = 0x01;
        let key = TlsCryptV2ClientKey::from_parts(kc, wkc.clone()).unwrap();
        assert_eq!(TlsCryptV2ClientKey::parse(&key.to_pem()).unwrap().wkc, wkc);
    }
}
