//! The errors of wrapping and unwrapping a control packet, shared by every protection (tls-auth,
//! tls-crypt, tls-crypt-v2) and by [`ControlWrap`](super::control::ControlWrap), which re-exports them.
//! They live apart so that the wrapping modules do not import the module that dispatches to them.

use core::fmt;

use super::replay::ReplayError;
use crate::wire::packet_id::PacketIdExhausted;

/// A control packet could not be wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapError {
    /// The plain packet is shorter than its 9-byte header.
    Truncated,
    /// The output buffer is too small for the wrapped packet.
    BufferTooSmall,
    /// The replay packet-id counter is exhausted (needs a later time).
    PacketIdExhausted,
}

impl fmt::Display for WrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WrapError::Truncated => "control packet shorter than its header",
            WrapError::BufferTooSmall => "output buffer too small for the wrapped control packet",
            WrapError::PacketIdExhausted => "control replay packet-id exhausted",
        })
    }
}

/// A received control packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnwrapError {
    /// Too short for the wrapping's header, HMAC or tag.
    Truncated,
    /// The HMAC or tag did not verify (wrong key, wrong direction, or tampering).
    Auth,
    /// The replay packet-id was rejected.
    Replay(ReplayError),
    /// The output buffer is too small for the plain packet.
    BufferTooSmall,
}

impl fmt::Display for UnwrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnwrapError::Truncated => f.write_str("control packet truncated"),
            UnwrapError::Auth => f.write_str("control packet failed authentication"),
            UnwrapError::Replay(e) => write!(f, "control packet replay: {e}"),
            UnwrapError::BufferTooSmall => {
                f.write_str("output buffer too small for the plain control packet")
            }
        }
    }
}

impl From<PacketIdExhausted> for WrapError {
    fn from(_: PacketIdExhausted) -> Self {
        WrapError::PacketIdExhausted
    }
}
