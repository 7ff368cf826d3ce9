//! The 8-byte session id that names each side of a connection (wire reference §2.1).

use super::{Error, Field};
use core::fmt;
use rand_core::CryptoRngCore;

/// An 8-byte OpenVPN session id. All-zero means "undefined" on the wire.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 8]);

impl SessionId {
    /// Length on the wire.
    pub const LEN: usize = 8;
    /// The all-zero ("undefined") session id.
    pub const ZERO: SessionId = SessionId([0; 8]);

    /// A fresh random, non-zero session id from the caller's CSPRNG.
    pub fn random<R: CryptoRngCore + ?Sized>(rng: &mut R) -> SessionId {
        loop {
            let mut id = [0u8; 8];
            rng.fill_bytes(&mut id);
            if id != [0; 8] {
                return SessionId(id);
            }
        }
    }

    /// Reads a session id from the first 8 bytes of `buf`.
    pub fn parse(buf: &[u8], field: Field) -> Result<SessionId, Error> {
        let bytes: [u8; 8] = buf
            .get(..Self::LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(Error::Truncated(field))?;
        Ok(SessionId(bytes))
    }

    /// True for the reserved all-zero id.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
