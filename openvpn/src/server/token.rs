//! `auth-gen-token`: the server hands a client that authenticated with a password a token (pushed as
//! `auth-token`), which the client sends instead of the password on later connections; the server checks
//! it without keeping any state.
//!
//! A token is `SESS_ID_AT_` (OpenVPN's prefix, which clients recognise) and the base64 of the issue time
//! (8 bytes, big-endian Unix seconds) and a 24-byte HMAC-SHA256 over the user name and that time, keyed
//! with a random per-process key: a restarted server asks for passwords again. Only this server reads its
//! tokens, so the format need not match OpenVPN's.
//!
//! Layer: pure functions over a caller-supplied key and time.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ring::hmac;

use crate::keys::base64;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "SESS_ID_AT_";
/// Bytes of the MAC kept in a token.
const MAC_LEN: usize = 24;
/// How long a token with `auth-gen-token 0` (OpenVPN: "the session's lifetime") stays valid here: a day.
pub const DEFAULT_LIFETIME_SECS: u64 = 86_400;

/// The key tokens are made and checked with.
pub struct TokenKey {
    key: hmac::Key,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey { .. }")
    }
}

impl TokenKey {
    /// A key from 32 random bytes.
    pub fn new(secret: &[u8; 32]) -> TokenKey {
        TokenKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn mac(&self, username: &str, issued: u64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"oxvpn auth-token v1\0");
        ctx.update(username.as_bytes());
        ctx.update(&[0]);
        ctx.update(&issued.to_be_bytes());
        ctx.sign()
    }

    /// A token for `username`, issued at `now_unix`.
    pub fn issue(&self, username: &str, now_unix: u64) -> String {
        let mut raw = Vec::with_capacity(8 + MAC_LEN);
        raw.extend_from_slice(&now_unix.to_be_bytes());
        raw.extend_from_slice(
            self.mac(username, now_unix)
                .as_ref()
                .get(..MAC_LEN)
                .unwrap_or(&[]),
        );
        let mut token = String::from(TOKEN_PREFIX);
        token.extend(
            base64::encode_lines(&raw)
                .chars()
                .filter(|c| !c.is_whitespace()),
        );
        token
    }

    /// Whether `token` is one of ours for `username`, issued no more than `lifetime_secs` before
    /// `now_unix` and not in the future. The MAC is compared in constant time.
    pub fn check(&self, token: &str, username: &str, now_unix: u64, lifetime_secs: u64) -> bool {
        let Some(body) = token.strip_prefix(TOKEN_PREFIX) else {
            return false;
        };
        if body.len() > 64 {
            return false;
        }
        let Some(raw) = base64::decode(body) else {
            return false;
        };
        let (Some(time), Some(mac)) = (raw.get(..8), raw.get(8..)) else {
            return false;
        };
        let Ok(time) = <[u8; 8]>::try_from(time) else {
            return false;
        };
        let issued = u64::from_be_bytes(time);
        if issued > now_unix || now_unix - issued > lifetime_secs || mac.len() != MAC_LEN {
            return false;
        }
        let expected = self.mac(username, issued);
        crate::crypto::ct_eq(expected.as_ref().get(..MAC_LEN).unwrap_or(&[]), mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_accepted_for_its_user_within_its_lifetime_only() {
        let key = TokenKey::new(&[7; 32]);
        let token = key.issue("alice", 1_000);
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(key.check(&token, "alice", 1_000, 60));
        assert!(key.check(&token, "alice", 1_060, 60));
        assert!(!key.check(&token, "alice", 1_061, 60), "expired");
        assert!(!key.check(&token, "alice", 999, 60), "from the future");
        assert!(!key.check(&token, "bob", 1_000, 60), "another user");
        assert!(
            !TokenKey::new(&[8; 32]).check(&token, "alice", 1_000, 60),
            "another server"
        );
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(!key.check(core::str::from_utf8(&tampered).unwrap(), "alice", 1_000, 60));
        for bad in [
            "",
            "SESS_ID_AT_",
            "SESS_ID_AT_!!!!",
            "password",
            "SESS_ID_AT_AAAA",
        ] {
            assert!(!key.check(bad, "alice", 1_000, 60));
        }
    }
}
