//! The long-form replay packet-id of tls-auth / tls-crypt / tls-crypt-v2 (wire reference §2.4):
//! `counter (4) || time (4, Unix seconds)`, and the per-session sender counter that produces it.

use super::{read_u32, write_at, Error, Field};
use core::fmt;

/// tls-crypt-v2 early negotiation: a client that starts its counter here (first packet 0x0F000001)
/// announces it can re-send its WKc (§2.7).
pub const EARLY_NEG_START: u32 = 0x0F00_0000;
/// Mask the server applies to recognise [`EARLY_NEG_START`].
pub const EARLY_NEG_MASK: u32 = 0xFF00_0000;

/// An 8-byte replay packet-id as carried by wrapped control packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReplayId {
    /// Per-session counter, starting at 1 (0 is always invalid).
    pub counter: u32,
    /// Unix time of the first packet of the session; changes only when the counter wraps.
    pub time: u32,
}

impl ReplayId {
    /// Length on the wire.
    pub const LEN: usize = 8;

    /// Reads a replay id from the first 8 bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<ReplayId, Error> {
        Ok(ReplayId {
            counter: read_u32(buf, 0, Field::ReplayId)?,
            time: read_u32(buf, 4, Field::ReplayId)?,
        })
    }

    /// Writes the 8 bytes at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        write_at(buf, 0, &self.counter.to_be_bytes())?;
        write_at(buf, 4, &self.time.to_be_bytes())?;
        Ok(Self::LEN)
    }

    /// The wire bytes.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        let (c, t) = out.split_at_mut(4);
        c.copy_from_slice(&self.counter.to_be_bytes());
        t.copy_from_slice(&self.time.to_be_bytes());
        out
    }

    /// True when the counter carries the tls-crypt-v2 early-negotiation marker (§2.7).
    pub const fn is_early_negotiation(&self) -> bool {
        self.counter & EARLY_NEG_MASK == EARLY_NEG_START
    }
}

/// The replay packet-id could not be advanced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketIdExhausted;

impl fmt::Display for PacketIdExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("replay packet-id exhausted: counter wrapped without a later time")
    }
}

/// Produces the replay ids of one direction of a control channel: incremented for every transmission,
/// retransmissions included (§2.1, §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayIdSender {
    last_counter: u32,
    time: Option<u32>,
}

impl ReplayIdSender {
    /// A sender whose first id has counter 1 (tls-auth, tls-crypt, dynamic tls-crypt).
    pub const fn new() -> ReplayIdSender {
        ReplayIdSender {
            last_counter: 0,
            time: None,
        }
    }

    /// A tls-crypt-v2 client sender announcing early negotiation: the first id has counter 0x0F000001.
    pub const fn early_negotiation() -> ReplayIdSender {
        ReplayIdSender {
            last_counter: EARLY_NEG_START,
            time: None,
        }
    }

    /// The id for the next transmission. `now_unix` (Unix seconds) is latched on first use and only
    /// replaced when the counter wraps, which requires a later time.
    pub fn next(&mut self, now_unix: u32) -> Result<ReplayId, PacketIdExhausted> {
        let time = *self.time.get_or_insert(now_unix);
        match self.last_counter.checked_add(1) {
            Some(counter) => {
                self.last_counter = counter;
                Ok(ReplayId { counter, time })
            }
            None if now_unix > time => {
                self.last_counter = 1;
                self.time = Some(now_unix);
                Ok(ReplayId {
                    counter: 1,
                    time: now_unix,
                })
            }
            None => Err(PacketIdExhausted),
        }
    }
}

impl Default for ReplayIdSender {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_form_matches_test_packet_id() {
        let mut s = ReplayIdSender::new();
        let id = s.next(5010).unwrap();
        assert_eq!(id.to_bytes(), [0, 0, 0, 1, 0, 0, 0x13, 0x92]);
        assert_eq!(
            s.next(6000).unwrap(),
            ReplayId {
                counter: 2,
                time: 5010
            }
        );
        let mut buf = [0u8; 8];
        id.emit(&mut buf).unwrap();
        assert_eq!(ReplayId::parse(&buf), Ok(id));
        assert_eq!(
            ReplayId::parse(&buf[..7]),
            Err(Error::Truncated(Field::ReplayId))
        );
    }

    #[test]
    fn wrap_needs_a_later_time() {
        let mut s = ReplayIdSender {
            last_counter: u32::MAX - 1,
            time: Some(100),
        };
        assert_eq!(s.next(100).unwrap().counter, u32::MAX);
        assert_eq!(s.next(100), Err(PacketIdExhausted));
        assert_eq!(
            s.next(101),
            Ok(ReplayId {
                counter: 1,
                time: 101
            })
        );
    }

    #[test]
    fn early_negotiation_counter() {
        let mut s = ReplayIdSender::early_negotiation();
        let first = s.next(7).unwrap();
        assert_eq!(first.counter, 0x0F00_0001);
        assert!(first.is_early_negotiation());
        assert_eq!(s.next(7).unwrap().counter, 0x0F00_0002);
        assert!(!ReplayId {
            counter: 1,
            time: 0
        }
        .is_early_negotiation());
    }
}
