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
