//! The control channel around the key states, for either role: unwrap a received control packet into
//! its plain form, and build the next wrapped packet from the current key state or the lame duck.
//!
//! Layer: protocol; no I/O. The owner (client engine, server) decides what a packet means for the
//! session (a new key_id, a renegotiation); these functions only move bytes through the wrapping.

use alloc::vec::Vec;

use super::KeyState;
use crate::crypto::control::{ControlWrap, UnwrapError};
use crate::time::Instant;
use crate::wire::ControlRepr;

/// Largest wrapped control packet ever built or accepted (the control buffer bound, §4).
pub const CONTROL_BUF: usize = 4096;

/// Why a received control packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlDrop {
    /// The wrapping refused it (authentication, replay, length).
    Unwrap(UnwrapError),
    /// It unwrapped but is not a well-formed control packet.
    Malformed,
}

/// Unwraps `datagram` into `plain` (resized as needed) and parses it.
pub fn unwrap<'a>(
    wrap: &mut ControlWrap,
    datagram: &[u8],
    now: Instant,
    plain: &'a mut Vec<u8>,
) -> Result<ControlRepr<'a>, ControlDrop> {
    plain.resize(CONTROL_BUF, 0);
    let len = wrap
        .unwrap(datagram, now, plain)
        .map_err(ControlDrop::Unwrap)?;
    let bytes = plain.get(..len).unwrap_or_default();
    ControlRepr::parse_bytes(bytes).map_err(|_| ControlDrop::Malformed)
}

/// The next wrapped control packet at `now`: from the current key state first, else from the lame duck
/// (which still ACKs and retransmits, §9). `max_payload` is the TLS payload room per packet, `wkc_len`
/// the length of a tls-crypt-v2 client key appended to WKC packets, `unix` the wall-clock seconds for
/// the wrapping's replay id. `plain` is scratch space.
pub fn poll_packet(
    wrap: &mut ControlWrap,
    key: Option<&mut KeyState>,
    old: Option<&mut KeyState>,
    now: Instant,
    (max_payload, wkc_len): (usize, usize),
    unix: u32,
    plain: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    let now_ms = now.as_millis();
    let mut produced = key.is_some_and(|k| k.poll_packet(now_ms, max_payload, wkc_len, plain));
    if !produced {
        produced = old.is_some_and(|k| k.poll_packet(now_ms, max_payload, wkc_len, plain));
    }
    if !produced {
        return None;
    }
    let mut out = alloc::vec![0u8; plain.len() + 128 + wkc_len];
    match wrap.wrap(plain, unix, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Some(out)
        }
        Err(e) => {
            log::warn!("control packet not wrapped: {e}");
            None
        }
    }
}
