//! What travels inside a decrypted data packet besides IP: compression framing markers (wire reference
//! §6.5), the keepalive ping (§7.1) and OCC messages such as OCC_EXIT (§7.2, §7.3).
//!
//! oxvpn never compresses; it only understands the "no compression" framings so it can talk to servers
//! configured with `comp-lzo` / `compress` stubs. Pure functions over caller buffers; no allocation.

use super::data::DataError;
use core::ops::Range;

/// Plaintext of a keepalive ping (discarded by the receiver, never echoed).
pub const PING_MAGIC: [u8; 16] = [
    0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb, 0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48,
];
/// Prefix of every OCC message; the OCC opcode byte follows.
pub const OCC_MAGIC: [u8; 16] = [
    0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81, 0x2d, 0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c,
];
/// OCC opcode: request the peer's options string.
pub const OCC_REQUEST: u8 = 0;
/// OCC opcode: options string reply (NUL-terminated string follows).
pub const OCC_REPLY: u8 = 1;
/// OCC opcode: MTU load test request.
pub const OCC_MTU_LOAD_REQUEST: u8 = 2;
/// OCC opcode: MTU load test filler.
pub const OCC_MTU_LOAD: u8 = 3;
/// OCC opcode: MTU request.
pub const OCC_MTU_REQUEST: u8 = 4;
/// OCC opcode: MTU reply.
pub const OCC_MTU_REPLY: u8 = 5;
/// OCC opcode: the peer is exiting (explicit-exit-notify without cc-exit); a client reconnects.
pub const OCC_EXIT: u8 = 6;

/// The full OCC_EXIT plaintext (magic || 0x06).
// Evaluated at compile time: an out-of-bounds index would fail the build, it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
pub const OCC_EXIT_MESSAGE: [u8; 17] = {
    let mut m = [0u8; 17];
    let mut i = 0;
    while i < 16 {
        m[i] = OCC_MAGIC[i];
        i += 1;
    }
    m[16] = OCC_EXIT;
    m
};

/// comp-lzo framing: uncompressed packet marker.
pub const NO_COMPRESS_BYTE: u8 = 0xFA;
/// compress (v1) framing: uncompressed packet marker, first byte swapped to the end.
pub const NO_COMPRESS_BYTE_SWAP: u8 = 0xFB;
/// comp-lzo framing: LZO-compressed packet.
pub const LZO_COMPRESS_BYTE: u8 = 0x66;
/// compress lz4 framing: LZ4-compressed packet.
pub const LZ4_COMPRESS_BYTE: u8 = 0x69;
/// compress stub-v2 / lz4-v2 escape byte.
pub const COMP_V2_ESCAPE: u8 = 0x50;

/// The compression framing in effect (from `comp-lzo` / `compress` in the config or pushed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No framing: the plaintext is the IP packet (2.6 default).
    #[default]
    None,
    /// `comp-lzo [no]`: a 0xFA byte precedes every packet.
    LzoStub,
    /// `compress` / `compress stub` / `compress lz4`: 0xFB replaces the first byte, which moves to the end.
    Stub,
    /// `compress stub-v2` / `lz4-v2`: raw packets; a leading 0x50 is escaped as 0x50 0x00.
    StubV2,
}

impl Compression {
    /// Bytes the framing adds to `payload`.
    pub fn overhead(self, payload: &[u8]) -> usize {
        match self {
            Compression::None => 0,
            Compression::LzoStub => 1,
            Compression::Stub => usize::from(!payload.is_empty()),
            Compression::StubV2 => {
                if payload.first() == Some(&COMP_V2_ESCAPE) {
                    2
                } else {
                    0
                }
            }
        }
    }

    /// Writes the framed (uncompressed) form of `payload` at the start of `out`; returns its length.
    pub fn frame(self, payload: &[u8], out: &mut [u8]) -> Result<usize, DataError> {
        let len = payload.len() + self.overhead(payload);
        let out = out.get_mut(..len).ok_or(DataError::BufferTooSmall)?;
        match self {
            Compression::None => out.copy_from_slice(payload),
            Compression::LzoStub => {
                let (marker, rest) = out.split_at_mut(1);
                marker.copy_from_slice(&[NO_COMPRESS_BYTE]);
                rest.copy_from_slice(payload);
            }
            Compression::Stub => {
                if let Some((&first, tail)) = payload.split_first() {
                    let (marker, rest) = out.split_at_mut(1);
                    marker.copy_from_slice(&[NO_COMPRESS_BYTE_SWAP]);
                    let (middle, last) = rest.split_at_mut(tail.len());
                    middle.copy_from_slice(tail);
                    last.copy_from_slice(&[first]);
                }
            }
            Compression::StubV2 => {
                if payload.first() == Some(&COMP_V2_ESCAPE) {
                    let (marker, rest) = out.split_at_mut(2);
                    marker.copy_from_slice(&[COMP_V2_ESCAPE, 0]);
                    rest.copy_from_slice(payload);
                } else {
                    out.copy_from_slice(payload);
                }
            }
        }
        Ok(len)
    }

    /// Most bytes the framing ever puts in front of a payload.
    pub const MAX_PREFIX: usize = 2;

    /// Frames the payload at `buf[range]` in place, using up to [`MAX_PREFIX`](Self::MAX_PREFIX) bytes
    /// before it and one byte after it; returns the range of the framed payload.
    pub fn frame_in_place(
        self,
        buf: &mut [u8],
        range: Range<usize>,
    ) -> Result<Range<usize>, DataError> {
        let data = buf.get(range.clone()).ok_or(DataError::BufferTooSmall)?;
        let first = data.first().copied();
        let prefix: &[u8] = match self {
            Compression::None => &[],
            Compression::LzoStub => &[NO_COMPRESS_BYTE],
            Compression::StubV2 if first == Some(COMP_V2_ESCAPE) => &[COMP_V2_ESCAPE, 0],
            Compression::StubV2 => &[],
            Compression::Stub => {
                let Some(first) = first else { return Ok(range) };
                *buf.get_mut(range.end).ok_or(DataError::BufferTooSmall)? = first;
                *buf.get_mut(range.start).ok_or(DataError::BufferTooSmall)? = NO_COMPRESS_BYTE_SWAP;
                return Ok(range.start..range.end + 1);
            }
        };
        let start = range
            .start
            .checked_sub(prefix.len())
            .ok_or(DataError::BufferTooSmall)?;
        buf.get_mut(start..range.start)
            .ok_or(DataError::BufferTooSmall)?
            .copy_from_slice(prefix);
        Ok(start..range.end)
    }

    /// Removes the framing from the plaintext at `buf[range]` in place; returns the range of the payload.
    /// Really compressed packets are refused with [`DataError::Compressed`].
    pub fn unframe(self, buf: &mut [u8], range: Range<usize>) -> Result<Range<usize>, DataError> {
        let data = buf.get(range.clone()).ok_or(DataError::Truncated)?;
        let Some(&first) = data.first() else {
            return Ok(range);
        };
        match self {
            Compression::None => Ok(range),
            Compression::LzoStub | Compression::Stub => match first {
                NO_COMPRESS_BYTE => Ok(range.start + 1..range.end),
                NO_COMPRESS_BYTE_SWAP if self == Compression::Stub => {
                    let last = range.end - 1;
                    let moved = *buf.get(last).ok_or(DataError::Truncated)?;
                    if let Some(b) = buf.get_mut(range.start) {
                        *b = moved;
                    }
                    Ok(range.start..last)
                }
                LZO_COMPRESS_BYTE | LZ4_COMPRESS_BYTE => Err(DataError::Compressed),
                _ => Err(DataError::BadFraming),
            },
            Compression::StubV2 => {
                if first != COMP_V2_ESCAPE {
                    return Ok(range);
                }
                match data.get(1) {
                    Some(0) => Ok(range.start + 2..range.end),
                    _ => Err(DataError::Compressed),
                }
            }
        }
    }
}

/// What a decrypted, unframed data payload is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A tunnelled IP packet at this range of the caller's buffer.
    Ip(Range<usize>),
    /// A keepalive ping: resets the ping-restart timer and is otherwise discarded.
    Ping,
    /// An OCC message with its opcode and the range of its data after the opcode byte.
    Occ {
        /// The OCC opcode ([`OCC_EXIT`] etc.).
        opcode: u8,
        /// The message data following the opcode.
        data: Range<usize>,
    },
}

impl Inbound {
    /// True for an OCC_EXIT message: the server is going away and the client should reconnect.
    pub fn is_exit(&self) -> bool {
        matches!(
            self,
            Inbound::Occ {
                opcode: OCC_EXIT,
                ..
            }
        )
    }
}

/// Classifies the payload at `buf[range]` as ping, OCC message or IP packet.
pub fn classify(buf: &[u8], range: Range<usize>) -> Inbound {
    let data = buf.get(range.clone()).unwrap_or(&[]);
    if data == PING_MAGIC {
        return Inbound::Ping;
    }
    if data.len() > OCC_MAGIC.len() && data.starts_with(&OCC_MAGIC) {
        let opcode = data.get(OCC_MAGIC.len()).copied().unwrap_or(0);
        return Inbound::Occ {
            opcode,
            data: range.start + OCC_MAGIC.len() + 1..range.end,
        };
    }
    Inbound::Ip(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(c: Compression, payload: &[u8]) {
        let mut buf = [0u8; 64];
        let n = c.frame(payload, &mut buf).unwrap();
        let r = c.unframe(&mut buf, 0..n).unwrap();
        assert_eq!(&buf[r], payload, "{c:?}");
    }

    #[test]
    fn framing_round_trips() {
        for c in [
            Compression::None,
            Compression::LzoStub,
            Compression::Stub,
            Compression::StubV2,
        ] {
            round(c, &[0x45, 0, 0, 20, 1, 2, 3]);
            round(c, &[0x50, 1, 2]);
            round(c, &[0x60]);
        }
        let mut buf = [0u8; 8];
        assert_eq!(Compression::LzoStub.frame(&[0x45, 1], &mut buf), Ok(3));
        assert_eq!(buf[..3], [0xFA, 0x45, 1]);
        assert_eq!(Compression::Stub.frame(&[0x45, 1, 2], &mut buf), Ok(4));
        assert_eq!(buf[..4], [0xFB, 1, 2, 0x45]);
    }

    #[test]
    fn in_place_framing_matches_copying_framing() {
        for c in [
            Compression::None,
            Compression::LzoStub,
            Compression::Stub,
            Compression::StubV2,
        ] {
            for payload in [&[0x45u8, 0, 0, 20, 1][..], &[0x50, 1][..], &[][..]] {
                let mut copied = [0u8; 16];
                let n = c.frame(payload, &mut copied).unwrap();
                let mut buf = [0u8; 16];
                buf[2..2 + payload.len()].copy_from_slice(payload);
                let r = c.frame_in_place(&mut buf, 2..2 + payload.len()).unwrap();
                assert_eq!(&buf[r], &copied[..n], "{c:?} {payload:?}");
            }
        }
        let mut buf = [0x50u8, 0];
        assert_eq!(
            Compression::StubV2.frame_in_place(&mut buf, 0..1),
            Err(DataError::BufferTooSmall)
        );
    }

    #[test]
    fn refuses_compressed_and_unknown_markers() {
        let mut b = [0x66u8, 1, 2];
        assert_eq!(
            Compression::LzoStub.unframe(&mut b, 0..3),
            Err(DataError::Compressed)
        );
        let mut b = [0x69u8, 1, 2];
        assert_eq!(
            Compression::Stub.unframe(&mut b, 0..3),
            Err(DataError::Compressed)
        );
        let mut b = [0x45u8, 1, 2];
        assert_eq!(
            Compression::LzoStub.unframe(&mut b, 0..3),
            Err(DataError::BadFraming)
        );
        let mut b = [0xFBu8, 1, 2];
        assert_eq!(
            Compression::LzoStub.unframe(&mut b, 0..3),
            Err(DataError::BadFraming)
        );
        let mut b = [0x50u8, 1, 2];
        assert_eq!(
            Compression::StubV2.unframe(&mut b, 0..3),
            Err(DataError::Compressed)
        );
        let mut b = [0x50u8];
        assert_eq!(
            Compression::StubV2.unframe(&mut b, 0..1),
            Err(DataError::Compressed)
        );
        assert_eq!(Compression::Stub.unframe(&mut b, 0..0), Ok(0..0));
        assert_eq!(
            Compression::Stub.unframe(&mut b, 0..5),
            Err(DataError::Truncated)
        );
    }

    #[test]
    fn classifies_ping_and_occ() {
        assert_eq!(classify(&PING_MAGIC, 0..16), Inbound::Ping);
        let exit = classify(&OCC_EXIT_MESSAGE, 0..17);
        assert!(exit.is_exit());
        assert_eq!(
            exit,
            Inbound::Occ {
                opcode: OCC_EXIT,
                data: 17..17
            }
        );
        assert_eq!(classify(&[0x45, 0], 0..2), Inbound::Ip(0..2));
        assert_eq!(classify(&OCC_MAGIC, 0..16), Inbound::Ip(0..16));
    }
}
