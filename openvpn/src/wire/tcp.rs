//! TCP transport framing (wire reference §1.1): every OpenVPN packet is preceded by a 2-byte big-endian
//! length that counts the packet only.
//!
//! Stream reassembly (keeping partial frames between reads) belongs to the caller's transport; these helpers
//! only cut and prefix frames.

use super::{read_u16, write_at, Error, Field};

/// Length of the prefix.
pub const PREFIX_LEN: usize = 2;

/// Splits the first complete frame off the front of a TCP byte stream.
///
/// Returns `Ok(None)` when more bytes are needed, or `Ok(Some((packet, consumed)))` where `consumed`
/// includes the prefix. A zero length is an error: no OpenVPN packet is empty.
pub fn split_frame(stream: &[u8]) -> Result<Option<(&[u8], usize)>, Error> {
    let len = match read_u16(stream, 0, Field::Length) {
        Ok(len) => usize::from(len),
        Err(_) => return Ok(None),
    };
    if len == 0 {
        return Err(Error::Truncated(Field::Length));
    }
    Ok(stream
        .get(PREFIX_LEN..PREFIX_LEN + len)
        .map(|packet| (packet, PREFIX_LEN + len)))
}

/// Writes the 2-byte prefix for a packet of `packet_len` bytes at the start of `buf`.
pub fn emit_prefix(packet_len: usize, buf: &mut [u8]) -> Result<usize, Error> {
    let len = u16::try_from(packet_len).map_err(|_| Error::ValueTooLarge(Field::Length))?;
    write_at(buf, 0, &len.to_be_bytes())?;
    Ok(PREFIX_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_partial_reads() {
        let stream = [0, 3, 0x38, 1, 2, 0, 1];
        assert_eq!(split_frame(&stream), Ok(Some((&stream[2..5], 5))));
        assert_eq!(split_frame(&stream[5..]), Ok(None));
        assert_eq!(split_frame(&stream[..1]), Ok(None));
        assert_eq!(split_frame(&[0, 0]), Err(Error::Truncated(Field::Length)));
        let mut prefix = [0u8; 2];
        assert_eq!(emit_prefix(54, &mut prefix), Ok(2));
        assert_eq!(prefix, [0, 0x36]);
        assert_eq!(
            emit_prefix(70_000, &mut prefix),
            Err(Error::ValueTooLarge(Field::Length))
        );
    }
}
