//! OpenVPN cryptography: key material layout, the legacy PRF, control-channel protection (tls-auth,
//! tls-crypt, tls-crypt-v2), replay protection and the data channel.
//!
//! Layer: pure functions and small per-key state. Nothing here reads a clock or a random source (both are
//! arguments), touches I/O, or allocates per data packet. Keys arrive as raw bytes; the key *file* parsers
//! live in `crate::keys`.
//!
//! Reference: shared/docs/openvpn-wire.md §2.3–2.9 (control wrapping), §5.6 (key2), §6 (data channel),
//! §7 (ping / OCC).
//!
//! - [`key2`]: the 256-byte `key2` layout, key directions and digests.
//! - [`prf`]: the TLS 1.0 PRF and the legacy key-method-2 derivation of key2.
//! - [`tls_auth`], [`tls_crypt`], [`tls_crypt_v2`]: control-packet wrap/unwrap.
//! - [`control`]: [`ControlWrap`], one entry point for all control-channel protections with replay state;
//!   its `WrapError` / `UnwrapError` live in `wrap_error`, which the wrapping modules import instead.
//! - [`replay`]: [`ReplayWindow`], the sliding replay window used by both channels.
//! - [`data`]: [`DataKey`], one key_id's data-channel cipher state (AEAD tag-first, CBC + HMAC).
//! - [`payload`]: compression framing markers, keepalive ping and OCC messages.
//! - [`channel`]: [`DataChannel`], key selection by key_id, framing and classification of payloads.

pub mod channel;
pub mod control;
pub mod data;
pub mod key2;
pub mod payload;
pub mod prf;
pub mod replay;
pub mod tls_auth;
pub mod tls_crypt;
pub mod tls_crypt_v2;
mod wrap_error;

pub use channel::DataChannel;
pub use control::{ControlWrap, UnwrapError, WrapError};
pub use data::{DataCipher, DataError, DataKey, Role, UsageLimits};
pub use key2::{Digest, KeyDirection, KEY2_LEN};
pub use payload::{Compression, Inbound};
pub use replay::{ReplayError, ReplayWindow};
pub use tls_auth::TlsAuth;
pub use tls_crypt::TlsCrypt;
pub use tls_crypt_v2::{TlsCryptV2Client, TlsCryptV2ServerKey};

/// Compares two byte strings in time independent of where they differ (lengths are public).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the optimiser from short-circuiting the loop on the accumulated value.
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
pub(crate) mod test_util {
    extern crate std;
    use std::vec::Vec;

    /// Decodes hex, ignoring whitespace.
    pub fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// Decodes standard base64, ignoring whitespace.
    pub fn base64(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => continue,
            };
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    /// The body of a PEM block with `label`.
    pub fn pem_body(pem: &str) -> Vec<u8> {
        let body: std::string::String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64(&body)
    }

    /// The 256-byte static key of `test_pkt.c` (§10.3).
    pub fn test_pkt_static_key() -> [u8; 256] {
        hex("37268ea8f95d7f71f9fb8fc03770c460daf714a483d815c013ce0a537efc18f28f4f172669d9e6a413bac6741d8ea05400f49b7fd6326470f23798c606bf53d4de63ebc64ec59d57ce5d04d5b62e68b53ca6e5354351097fa370446c4d269f187bb6ae54af2dc70ff7317fe2f8754b8282aad4202f9fa42c8640245d883e2c54a0c1c489a036cf3a8964d8d289c1583b9447c262b1da5fd167a5d27bd5ac514317bc2343a31a2efc38dd920d910375f51c2e27f3afd36c49269da079f7ce466ebb0f9ad13e9bbb4665974e6bc24b513c5700393bf4a3e7f967e2f384069ac8a8e78b18b15604993fd16515cce9c0f3e42b4126b999005ade802797b0eeb8b9e6")
            .try_into()
            .unwrap()
    }
}
