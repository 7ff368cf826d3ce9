//! The server's policy for tls-crypt-v2 client keys, applied right after a WKc unwraps (wire reference §2.7;
//! OpenVPN `tls_crypt.c` `tls_crypt_v2_check_client_key_age`): `tls-crypt-v2-max-age DAYS`, then a
//! revocation list, and a log-friendly display of the metadata.
//!
//! The revocation list is an oxvpn extension standing in for OpenVPN's `tls-crypt-v2-verify` script (a
//! unikernel runs no scripts): the SHA-256 digests of revoked WKc, as `ovpn-keys` can print them.
//!
//! Layer: pure checks over the unwrapped metadata, the WKc bytes and a caller-supplied Unix time. The list
//! comes from the config disk, never from the network, and is only ever searched.

use crate::keys::Metadata;
use alloc::vec::Vec;
use core::fmt;
use ring::digest;

/// Length of a WKc digest in the revocation list.
pub const WKC_DIGEST_LEN: usize = 32;
const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// The SHA-256 digest of a WKc: how the revocation list names a client key.
pub fn wkc_digest(wkc: &[u8]) -> [u8; WKC_DIGEST_LEN] {
    let mut out = [0u8; WKC_DIGEST_LEN];
    out.copy_from_slice(digest::digest(&digest::SHA256, wkc).as_ref());
    out
}

/// Revoked client keys, by the SHA-256 digest of their WKc. Sorted, so a lookup is a binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    digests: Vec<[u8; WKC_DIGEST_LEN]>,
}

impl RevocationList {
    /// A list of the given digests (duplicates are kept once).
    pub fn new(digests: impl IntoIterator<Item = [u8; WKC_DIGEST_LEN]>) -> RevocationList {
        let mut digests: Vec<_> = digests.into_iter().collect();
        digests.sort_unstable();
        digests.dedup();
        RevocationList { digests }
    }

    /// Revokes one more key.
    pub fn insert(&mut self, digest: [u8; WKC_DIGEST_LEN]) {
        if let Err(at) = self.digests.binary_search(&digest) {
            self.digests.insert(at, digest);
        }
    }

    /// True when the client key whose WKc is `wkc` is revoked.
    pub fn contains_wkc(&self, wkc: &[u8]) -> bool {
        self.digests.binary_search(&wkc_digest(wkc)).is_ok()
    }

    /// Number of revoked keys.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// What the server requires of a client key after its WKc unwrapped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WkcPolicy {
    /// `tls-crypt-v2-max-age DAYS`: refuse keys created more than this many days ago; the metadata must
    /// then be a timestamp (type 0x01 and a 64-bit big-endian Unix time, nothing else).
    pub max_age_days: Option<u32>,
    /// Revoked keys.
    pub revoked: RevocationList,
}

/// Why a client key was refused by the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WkcRefusal {
    /// `tls-crypt-v2-max-age` is set and the metadata is not a creation timestamp.
    NoTimestamp,
    /// The key was created more than `max_age_days` days before now.
    TooOld {
        /// Creation time in the metadata (Unix seconds).
        created: u64,
        /// The configured maximum age.
        max_age_days: u32,
    },
    /// The WKc is on the revocation list.
    Revoked,
}

impl fmt::Display for WkcRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WkcRefusal::NoTimestamp => {
                f.write_str("tls-crypt-v2 client key has no creation timestamp (tls-crypt-v2-max-age)")
            }
            WkcRefusal::TooOld {
                created,
                max_age_days,
            } => write!(
                f,
                "tls-crypt-v2 client key created at {created} is older than tls-crypt-v2-max-age {max_age_days} days"
            ),
            WkcRefusal::Revoked => f.write_str("tls-crypt-v2 client key is revoked"),
        }
    }
}

impl WkcPolicy {
    /// Checks an unwrapped client key: first the age (if configured), then the revocation list.
    /// `metadata` is the unwrapped metadata (type byte first), `wkc` the wrapped key as received.
    pub fn check(&self, metadata: &[u8], wkc: &[u8], now_unix: u64) -> Result<(), WkcRefusal> {
        if let Some(max_age_days) = self.max_age_days {
            let created = match Metadata::decode(metadata) {
                Ok(Metadata::Timestamp(t)) => t,
                _ => return Err(WkcRefusal::NoTimestamp),
            };
            // A key from the future has age 0, as in OpenVPN.
            let age = now_unix.saturating_sub(created);
            if age > u64::from(max_age_days).saturating_mul(SECS_PER_DAY) {
                return Err(WkcRefusal::TooOld {
                    created,
                    max_age_days,
                });
            }
        }
        if !self.revoked.is_empty() && self.revoked.contains_wkc(wkc) {
            return Err(WkcRefusal::Revoked);
        }
        Ok(())
    }
}

/// Displays tls-crypt-v2 metadata for a log line: `created <unix time>`, `user "<escaped text>"` (at most
/// 64 bytes, non-printable bytes as `\xNN`), or `type 0xNN, N bytes`.
#[derive(Clone, Copy, Debug)]
pub struct MetadataDisplay<'a>(pub &'a [u8]);

/// User metadata bytes shown in a log line before it is cut.
const USER_SHOWN: usize = 64;

impl fmt::Display for MetadataDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((&kind, payload)) = self.0.split_first() else {
            return f.write_str("no metadata");
        };
        match (kind, <[u8; 8]>::try_from(payload)) {
            (Metadata::TYPE_TIMESTAMP, Ok(t)) => write!(f, "created {}", u64::from_be_bytes(t)),
            (Metadata::TYPE_USER, _) => {
                f.write_str("user \"")?;
                for &b in payload.iter().take(USER_SHOWN) {
                    match b {
                        b'"' | b'\\' => write!(f, "\\{}", char::from(b))?,
                        0x20..=0x7e => write!(f, "{}", char::from(b))?,
                        _ => write!(f, "\\x{b:02x}")?,
                    }
                }
                f.write_str("\"")?;
                if payload.len() > USER_SHOWN {
                    write!(f, "... ({} bytes)", payload.len())?;
                }
                Ok(())
            }
            _ => write!(f, "type 0x{kind:02x}, {} bytes", payload.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    const T: u64 = 0x6b07_1c79;

    fn stamp(t: u64) -> Vec<u8> {
        Metadata::Timestamp(t).encode().unwrap()
    }

    #[test]
    fn max_age_and_revocation() {
        let wkc = [7u8; 299];
        let mut policy = WkcPolicy::default();
        assert_eq!(policy.check(&[0, b'x'], &wkc, T), Ok(()));
        policy.max_age_days = Some(30);
        assert_eq!(policy.check(&stamp(T), &wkc, T + 30 * 86400), Ok(()));
        assert_eq!(
            policy.check(&stamp(T), &wkc, T + 30 * 86400 + 1),
            Err(WkcRefusal::TooOld {
                created: T,
                max_age_days: 30
            })
        );
        assert_eq!(policy.check(&stamp(T + 99), &wkc, T), Ok(()));
        for bad in [&[][..], &[0, 1, 2][..], &[1, 0, 0][..], &[2; 9][..]] {
            assert_eq!(policy.check(bad, &wkc, T), Err(WkcRefusal::NoTimestamp));
        }
        let mut long = stamp(T);
        long.push(0);
        assert_eq!(policy.check(&long, &wkc, T), Err(WkcRefusal::NoTimestamp));
        policy.max_age_days = Some(u32::MAX);
        assert_eq!(
            policy.check(&stamp(0), &wkc, u64::from(u32::MAX) * 86400),
            Ok(())
        );
        assert!(policy.check(&stamp(0), &wkc, u64::MAX).is_err());

        policy.revoked = RevocationList::new([[1; 32], wkc_digest(&wkc), [1; 32]]);
        assert_eq!(policy.revoked.len(), 2);
        assert_eq!(policy.check(&stamp(T), &wkc, T), Err(WkcRefusal::Revoked));
        assert_eq!(policy.check(&stamp(T), &[8u8; 299], T), Ok(()));
        policy.revoked.insert(wkc_digest(&[8u8; 299]));
        policy.revoked.insert(wkc_digest(&[8u8; 299]));
        assert_eq!(policy.revoked.len(), 3);
        assert_eq!(
            policy.check(&stamp(T), &[8u8; 299], T),
            Err(WkcRefusal::Revoked)
        );
    }

    #[test]
    fn metadata_for_logs() {
        assert_eq!(
            format!("{}", MetadataDisplay(&stamp(T))),
            "created 1795628153"
        );
        assert_eq!(
            format!("{}", MetadataDisplay(b"\x00al\"ice\\\n\xff")),
            "user \"al\\\"ice\\\\\\x0a\\xff\""
        );
        let long = [b'a'; 100];
        let shown = format!("{}", MetadataDisplay(&[&[0u8][..], &long[..]].concat()));
        assert!(shown.ends_with("\"... (100 bytes)"));
        assert_eq!(format!("{}", MetadataDisplay(&[])), "no metadata");
        assert_eq!(
            format!("{}", MetadataDisplay(&[1, 2])),
            "type 0x01, 1 bytes"
        );
        assert_eq!(format!("{}", MetadataDisplay(&[9])), "type 0x09, 0 bytes");
        assert!(format!(
            "{}",
            WkcRefusal::TooOld {
                created: 1,
                max_age_days: 2
            }
        )
        .contains("2 days"));
    }
}
