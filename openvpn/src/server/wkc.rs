//! The server's policy for tls-crypt-v2 client keys, applied right after a WKc unwraps (wire reference §2.7;
//! OpenVPN `tls_crypt.c` `tls_crypt_v2_check_client_key_age`): `tls-crypt-v2-max-age DAYS`, then a
//! revocation list, and a log-friendly display of the metadata.
//!
//! The revocation list is an oxvpn extension standing in for OpenVPN's `tls-crypt-v2-verify` script (a
//! unikernel runs no scripts): the SHA-256 digests of revoked WKc, as `ovpn-keys` can print them.
//!
//! Layer: pure checks over the unwrapped metadata, the WKc bytes and a caller-supplied Unix time. The list
//! comes from the config disk, never from the network, and is only ever searched. The policy types live in
//! [`crate::crypto::tls_crypt_v2`], beside the server key they go with in the configured control-channel
//! protection ([`crate::crypto::control::ControlProtection`]); they are re-exported here.

use crate::keys::Metadata;
use core::fmt;

pub use crate::crypto::tls_crypt_v2::{
    wkc_digest, RevocationList, WkcPolicy, WkcRefusal, WKC_DIGEST_LEN,
};

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
    use std::vec::Vec;

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
