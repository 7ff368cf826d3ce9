//! The `<auth-user-pass-db>` password check (an oxvpn extension: no `auth-user-pass-verify` script on a
//! unikernel): PBKDF2-HMAC-SHA256 from `ring`, compared in constant time by `ring::pbkdf2::verify`.
//!
//! Layer: pure computation over the parsed entries; no I/O.

use alloc::vec::Vec;
use core::num::NonZeroU32;

use ring::pbkdf2;

use crate::config::{UserEntry, MIN_PBKDF2_ITERATIONS};

/// The users allowed to log in with a password, from `<auth-user-pass-db>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDb {
    users: Vec<UserEntry>,
}

impl UserDb {
    /// A database of `users` (usernames are unique: the config parser refuses duplicates).
    pub fn new(users: Vec<UserEntry>) -> Self {
        UserDb { users }
    }

    /// True when there are no users (password login is off).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }
}

/// Whether `pass` is `user`'s password. The hash comparison is constant-time (`ring::pbkdf2::verify`);
/// an unknown user still costs one derivation, so the time does not tell which usernames exist.
pub fn verify_password(db: &UserDb, user: &str, pass: &str) -> bool {
    let entry = db.users.iter().find(|u| u.username == user);
    match entry {
        Some(e) => {
            let Some(iterations) = NonZeroU32::new(e.iterations) else {
                return false;
            };
            pbkdf2::verify(
                pbkdf2::PBKDF2_HMAC_SHA256,
                iterations,
                &e.salt,
                pass.as_bytes(),
                &e.hash,
            )
            .is_ok()
        }
        None => {
            // Same work as a typical entry, result thrown away.
            let iterations = db
                .users
                .first()
                .map_or(MIN_PBKDF2_ITERATIONS, |u| u.iterations);
            let mut out = [0u8; 32];
            if let Some(n) = NonZeroU32::new(iterations) {
                pbkdf2::derive(
                    pbkdf2::PBKDF2_HMAC_SHA256,
                    n,
                    b"oxvpn-unknown-user",
                    pass.as_bytes(),
                    &mut out,
                );
            }
            false
        }
    }
}

/// Makes an `<auth-user-pass-db>` entry for `username` (for tools and tests; the salt comes from the
/// caller's random source).
pub fn hash_password(username: &str, pass: &str, salt: &[u8], iterations: NonZeroU32) -> UserEntry {
    let mut hash = alloc::vec![0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        pass.as_bytes(),
        &mut hash,
    );
    UserEntry {
        username: alloc::string::String::from(username),
        iterations: iterations.get(),
        salt: salt.to_vec(),
        hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_right_password_only() {
        let n = NonZeroU32::new(10_000).unwrap();
        let db = UserDb::new(alloc::vec![
            hash_password("alice", "correct horse", b"salt-a", n),
            hash_password("bob", "hunter2", b"salt-b", n),
        ]);
        assert!(verify_password(&db, "alice", "correct horse"));
        assert!(verify_password(&db, "bob", "hunter2"));
        assert!(!verify_password(&db, "alice", "hunter2"));
        assert!(!verify_password(&db, "alice", ""));
        assert!(!verify_password(&db, "carol", "hunter2"));
        assert!(!verify_password(&UserDb::default(), "alice", "x"));
    }

    #[test]
    fn known_vector() {
        // PBKDF2-HMAC-SHA256("password", "salt", 4096, 32) (RFC 7914 style test vector).
        let expected = [
            0xc5, 0xe4, 0x78, 0xd5, 0x92, 0x88, 0xc8, 0x41, 0xaa, 0x53, 0x0d, 0xb6, 0x84, 0x5c,
            0x4c, 0x8d, 0x96, 0x28, 0x93, 0xa0, 0x01, 0xce, 0x4e, 0x11, 0xa4, 0x96, 0x38, 0x73,
            0xaa, 0x98, 0x13, 0x4a,
        ];
        let e = hash_password("u", "password", b"salt", NonZeroU32::new(4096).unwrap());
        assert_eq!(e.hash, expected);
    }
}
