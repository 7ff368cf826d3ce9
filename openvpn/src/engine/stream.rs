//! Stream reassembly for `proto tcp` (§1.1): TCP bytes in, whole OpenVPN packets out, from one buffer
//! allocated once. The engine itself always takes and emits whole packets; over TCP its
//! [`Action::SendToRemote`](super::Action) bytes and [`Engine::encapsulate`](super::Engine::encapsulate)
//! output already carry the 2-byte length prefix, and received bytes go through a [`StreamDeframer`].

use alloc::vec::Vec;
use core::fmt;

use crate::wire::tcp::{split_frame, PREFIX_LEN};

/// Largest frame a 2-byte length can announce, plus its prefix.
const CAPACITY: usize = PREFIX_LEN + u16::MAX as usize;

/// The stream carried a zero-length frame: OpenVPN never sends one, so the connection is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFrame;

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TCP stream: zero-length OpenVPN frame")
    }
}

/// Reassembles OpenVPN packets from a TCP byte stream.
#[derive(Debug, Clone)]
pub struct StreamDeframer {
    buf: Vec<u8>,
    /// Bytes of `buf` holding stream data.
    filled: usize,
    /// Bytes at the front of `buf` already handed out.
    consumed: usize,
}

impl Default for StreamDeframer {
    fn default() -> Self {
        StreamDeframer {
            buf: alloc::vec![0; CAPACITY * 2],
            filled: 0,
            consumed: 0,
        }
    }
}

impl StreamDeframer {
    /// An empty deframer (allocates its buffer once).
    pub fn new() -> Self {
        Self::default()
    }

    /// Room available for [`fill`](Self::fill) after compacting.
    pub fn free_space(&mut self) -> &mut [u8] {
        self.compact();
        self.buf.get_mut(self.filled..).unwrap_or_default()
    }

    /// Records that `n` bytes were written into [`free_space`](Self::free_space).
    pub fn commit(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }

    /// Copies received stream bytes in; returns how many fitted (call [`next_frame`](Self::next_frame)
    /// until `None`, then fill the rest).
    pub fn fill(&mut self, bytes: &[u8]) -> usize {
        let space = self.free_space();
        let n = bytes.len().min(space.len());
        if let (Some(dst), Some(src)) = (space.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.commit(n);
        n
    }

    /// The next complete packet (without its prefix), mutable so the engine can decrypt in place.
    pub fn next_frame(&mut self) -> Result<Option<&mut [u8]>, BadFrame> {
        let pending = self.buf.get(self.consumed..self.filled).unwrap_or_default();
        match split_frame(pending) {
            Ok(Some((packet, used))) => {
                let start = self.consumed + PREFIX_LEN;
                let end = start + packet.len();
                self.consumed += used;
                Ok(self.buf.get_mut(start..end))
            }
            Ok(None) => Ok(None),
            Err(_) => Err(BadFrame),
        }
    }

    /// Drops all buffered bytes (a new TCP connection).
    pub fn reset(&mut self) {
        self.filled = 0;
        self.consumed = 0;
    }

    fn compact(&mut self) {
        if self.consumed > 0 {
            self.buf.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_split_and_coalesced_frames() {
        let mut d = StreamDeframer::new();
        let stream = [0u8, 3, 0x38, 1, 2, 0, 2, 0x28, 9, 0, 1];
        // Byte by byte.
        let mut got = Vec::new();
        for b in stream {
            assert_eq!(d.fill(&[b]), 1);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got, [alloc::vec![0x38, 1, 2], alloc::vec![0x28, 9]]);
        // All at once, after a reset.
        d.reset();
        d.fill(&stream[..9]);
        assert_eq!(
            d.next_frame().unwrap().map(|f| f.to_vec()),
            Some(alloc::vec![0x38, 1, 2])
        );
        assert_eq!(d.next_frame().unwrap().map(|f| f.len()), Some(2));
        assert_eq!(d.next_frame().unwrap(), None);
        d.reset();
        d.fill(&[0, 0, 1]);
        assert_eq!(d.next_frame(), Err(BadFrame));
    }

    #[test]
    fn largest_frames_fit() {
        let mut d = StreamDeframer::new();
        let mut frame = alloc::vec![0xaa; CAPACITY];
        frame[0] = 0xff;
        frame[1] = 0xff;
        for _ in 0..3 {
            let mut rest = &frame[..];
            while !rest.is_empty() {
                let n = d.fill(rest);
                rest = &rest[n..];
                if let Some(f) = d.next_frame().unwrap() {
                    assert_eq!(f.len(), 65535);
                }
            }
        }
    }
}
