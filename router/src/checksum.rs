//! Internet checksum arithmetic and bounds-checked big-endian field access on raw packet bytes.
//!
//! Layer: byte helpers only. Every accessor returns `Option` so that code reached by untrusted bytes never
//! indexes out of range; nothing here allocates or panics.

/// RFC 1071 one's-complement sums (not complemented). smoltcp keeps its own `checksum` module private.
pub(crate) mod sum {
    /// Folds carries of a 32-bit accumulator into 16 bits.
    fn fold(mut sum: u32) -> u16 {
        while sum > 0xffff {
            sum = (sum >> 16) + (sum & 0xffff);
        }
        u16::try_from(sum).unwrap_or(0xffff)
    }

    /// The one's-complement sum of `data` taken as big-endian 16-bit words, an odd last byte padded.
    ///
    /// Eight bytes per addition: native-endian (little-endian) `u64` words are added with their carries
    /// counted (2^64 and 2^16 are both 1 modulo 0xffff), then folded to 16 bits and byte-swapped back
    /// (RFC 1071 section 2(B): the sum is byte-order independent up to a final swap), four words per loop
    /// step, then the last whole words, then the last 0-7 bytes. smoltcp's `checksum::data` adds two bytes
    /// at a time; this one is used for the public NIC's UDP checksums (see `outer`) and every checksum the
    /// router computes.
    pub(crate) fn data(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        let mut carries: u64 = 0;
        let mut add = |word: u64| {
            let (sum, carry) = acc.overflowing_add(word);
            acc = sum;
            carries += u64::from(carry);
        };
        // `chunks_exact` yields whole words: each conversion is a plain load, never a copy call.
        let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        let mut blocks = data.chunks_exact(32);
        for block in &mut blocks {
            for w in block.chunks_exact(8) {
                add(word(w));
            }
        }
        let mut words = blocks.remainder().chunks_exact(8);
        for w in &mut words {
            add(word(w));
        }
        // The last 0-7 bytes, zero-padded to a whole word (word boundaries stay where they were, and an
        // odd last byte is padded as RFC 1071 pads it); built byte by byte so that no length-dependent
        // copy (a `memcpy` call per packet for 20-byte headers and 4-byte addresses) is emitted.
        let tail = words.remainder();
        if !tail.is_empty() {
            add(tail
                .iter()
                .rev()
                .fold(0u64, |word, &b| (word << 8) | u64::from(b)));
        }
        let mut folded = (acc >> 32) + (acc & 0xffff_ffff) + carries;
        while folded > 0xffff {
            folded = (folded >> 16) + (folded & 0xffff);
        }
        u16::try_from(folded).unwrap_or(0xffff).swap_bytes()
    }

    /// The same sum two bytes at a time (the RFC 1071 reference), for tests.
    #[cfg(test)]
    pub(crate) fn data_reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        let mut chunks = data.chunks_exact(2);
        for w in &mut chunks {
            let &[hi, lo] = w else { continue };
            acc += u32::from(u16::from_be_bytes([hi, lo]));
            if acc > 0x8000_0000 {
                acc = u32::from(fold(acc));
            }
        }
        if let Some(&b) = chunks.remainder().first() {
            acc += u32::from(b) << 8;
        }
        fold(acc)
    }

    /// Combines partial sums.
    pub(crate) fn combine(sums: &[u16]) -> u16 {
        fold(sums.iter().map(|&s| u32::from(s)).sum())
    }

    /// The sum of the IPv4 pseudo-header (RFC 768, RFC 9293 section 3.1).
    pub(crate) fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> u16 {
        let [s0, s1, s2, s3] = src;
        let [d0, d1, d2, d3] = dst;
        combine(&[
            u16::from_be_bytes([s0, s1]),
            u16::from_be_bytes([s2, s3]),
            u16::from_be_bytes([d0, d1]),
            u16::from_be_bytes([d2, d3]),
            u16::from(protocol),
            length,
        ])
    }
}

/// Reads the big-endian `u16` at `at`, if the slice holds it.
pub(crate) fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Writes the big-endian `u16` at `at`; `None` when the slice is too short.
pub(crate) fn set_be16(buf: &mut [u8], at: usize, value: u16) -> Option<()> {
    buf.get_mut(at..at.checked_add(2)?)?
        .copy_from_slice(&value.to_be_bytes());
    Some(())
}

/// Reads the four bytes at `at` (an IPv4 address field).
pub(crate) fn bytes4(buf: &[u8], at: usize) -> Option<[u8; 4]> {
    let b = buf.get(at..at.checked_add(4)?)?;
    let mut out = [0u8; 4];
    out.copy_from_slice(b);
    Some(out)
}

/// Writes four bytes at `at`.
pub(crate) fn set_bytes4(buf: &mut [u8], at: usize, value: [u8; 4]) -> Option<()> {
    buf.get_mut(at..at.checked_add(4)?)?.copy_from_slice(&value);
    Some(())
}

/// The complemented RFC 1071 checksum of `data`, ready to store in a header.
pub(crate) fn internet(data: &[u8]) -> u16 {
    !sum::data(data)
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changed from `old` to `new`:
/// `HC' = ~(~HC + ~m + m')`.
pub(crate) fn update16(check: u16, old: u16, new: u16) -> u16 {
    !sum::combine(&[!check, !old, new])
}

/// Applies a 16-bit change to the checksum stored at `at` in `buf`, if the field is present.
///
/// `udp` keeps the UDP rules of RFC 768: a stored zero means "no checksum" and stays zero, and a computed
/// zero is sent as `0xffff`.
pub(crate) fn patch16(buf: &mut [u8], at: usize, old: u16, new: u16, udp: bool) {
    if let Some(check) = be16(buf, at) {
        if udp && check == 0 {
            return;
        }
        let mut c = update16(check, old, new);
        if udp && c == 0 {
            c = 0xffff;
        }
        let _ = set_be16(buf, at, c);
    }
}

/// [`patch16`] for a 4-byte field.
pub(crate) fn patch32(buf: &mut [u8], at: usize, old: [u8; 4], new: [u8; 4], udp: bool) {
    patch16(
        buf,
        at,
        u16::from_be_bytes([old[0], old[1]]),
        u16::from_be_bytes([new[0], new[1]]),
        udp,
    );
    patch16(
        buf,
        at,
        u16::from_be_bytes([old[2], old[3]]),
        u16::from_be_bytes([new[2], new[3]]),
        udp,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_matches_recomputed() {
        let mut data = [
            0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 10, 0, 0, 2, 8, 8,
            8, 8,
        ];
        let c = internet(&data);
        set_be16(&mut data, 10, c).unwrap();
        assert_eq!(internet(&data), 0);
        let old = bytes4(&data, 12).unwrap();
        let new = [192, 168, 77, 201];
        set_bytes4(&mut data, 12, new).unwrap();
        patch32(&mut data, 10, old, new, false);
        assert_eq!(
            internet(&data),
            0,
            "header must verify after an incremental update"
        );
        let old_ttl = be16(&data, 8).unwrap();
        data[8] -= 1;
        let new_ttl = be16(&data, 8).unwrap();
        patch16(&mut data, 10, old_ttl, new_ttl, false);
        assert_eq!(internet(&data), 0);
    }

    #[test]
    fn eight_byte_sum_matches_the_two_byte_reference() {
        // Every length 0..=200 and a few large ones, over bytes that exercise carries (0xff runs).
        let mut state = 0x1234_5678u32;
        let mut bytes = [0u8; 70000];
        for b in bytes.iter_mut() {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = if state >> 31 == 1 {
                0xff
            } else {
                (state >> 16) as u8
            };
        }
        for len in (0..=200).chain([1399, 1400, 1401, 8191, 65535, 70000]) {
            for start in 0..3 {
                let d = &bytes[start..start + len.min(70000 - start)];
                assert_eq!(
                    sum::data(d),
                    sum::data_reference(d),
                    "len {} start {start}",
                    d.len()
                );
            }
        }
        assert_eq!(
            sum::data(&[0xff; 65535]),
            sum::data_reference(&[0xff; 65535])
        );
        assert_eq!(sum::data(&[]), 0);
    }

    #[test]
    fn accessors_never_panic_on_short_buffers() {
        let mut b = [1u8, 2, 3];
        assert_eq!(be16(&b, 2), None);
        assert_eq!(be16(&b, usize::MAX), None);
        assert_eq!(set_be16(&mut b, 2, 7), None);
        assert_eq!(bytes4(&b, 0), None);
        patch16(&mut b, 2, 1, 2, false);
        assert_eq!(b, [1, 2, 3]);
    }
}
