//! A minimal DER reader (X.690 §8.1, definite lengths only), enough to walk certificates and private keys.
//!
//! Layer: pure byte parser over key-file contents. It never panics and never allocates; every accessor
//! returns `None` on malformed input.

/// ASN.1 universal tags this crate looks at.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// `[0]` context-specific, constructed.
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[1]` context-specific, constructed.
    pub const CONTEXT_1: u8 = 0xa1;
}

/// One tag-length-value element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet (only single-octet tags are supported).
    pub tag: u8,
    /// The contents octets.
    pub content: &'a [u8],
    /// The whole element: identifier, length and contents.
    pub raw: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the bytes after it.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // Multi-octet tags (low five bits all set) never occur in the structures read here.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..count {
            let (&b, r) = rest.split_first()?;
            len = len.checked_mul(256)?.checked_add(usize::from(b))?;
            rest = r;
        }
        len
    };
    let header = input.len() - rest.len();
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    let raw = input.get(..header + len)?;
    Some((Tlv { tag, content, raw }, after))
}

/// Reads one element that must carry `expected` as its tag.
pub fn expect(input: &[u8], expected: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (tlv, rest) = read(input)?;
    (tlv.tag == expected).then_some((tlv, rest))
}

/// The value bytes of an INTEGER without leading zero octets, so two encodings of one number compare equal.
pub fn unsigned_integer(content: &[u8]) -> &[u8] {
    let start = content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(content.len());
    content.get(start..).unwrap_or(&[])
}

/// The bits of a BIT STRING whose unused-bits octet is 0 (the only form keys use).
pub fn bit_string_bytes(content: &[u8]) -> Option<&[u8]> {
    let (&unused, bits) = content.split_first()?;
    (unused == 0).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        let (tlv, rest) = read(&[0x02, 0x01, 0x05, 0xff]).unwrap();
        assert_eq!(
            (tlv.tag, tlv.content, rest),
            (0x02, &[5u8][..], &[0xffu8][..])
        );
        let mut long = alloc::vec![0x04, 0x81, 0x80];
        long.extend_from_slice(&[7u8; 0x80]);
        let (tlv, rest) = read(&long).unwrap();
        assert_eq!(
            (tlv.content.len(), rest.len(), tlv.raw.len()),
            (0x80, 0, 0x83)
        );
    }

    #[test]
    fn truncated_inputs_are_none() {
        assert!(read(&[]).is_none());
        assert!(read(&[0x30]).is_none());
        assert!(read(&[0x30, 0x05, 0x00]).is_none());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read(&[0x1f, 0x01, 0x00]).is_none());
    }

    #[test]
    fn integers_compare_without_leading_zeros() {
        assert_eq!(unsigned_integer(&[0, 0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(unsigned_integer(&[0]), &[] as &[u8]);
    }
}
