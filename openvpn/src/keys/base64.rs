//! Standard base64 (RFC 4648 §4) for PEM bodies: decoding skips whitespace, encoding wraps at 64 columns.
//!
//! Layer: pure byte codec over key-file text. Never panics on any input.

use alloc::string::String;
use alloc::vec::Vec;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes base64 text, ignoring ASCII whitespace. `None` on a character outside the alphabet, on data after
/// the `=` padding, or on a length that is not a whole number of 4-character groups.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut count = 0u8;
    let mut padding = 0u8;
    for c in text.bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding += 1;
            if padding > 2 {
                return None;
            }
            acc <<= 6;
        } else {
            if padding > 0 {
                return None;
            }
            acc = (acc << 6) | value(c)?;
        }
        count += 1;
        if count == 4 {
            let bytes = acc.to_be_bytes();
            let keep = 3 - usize::from(padding);
            out.extend_from_slice(bytes.get(1..1 + keep)?);
            acc = 0;
            count = 0;
            if padding > 0 {
                // Padding ends the data; only whitespace may follow (checked by the `padding > 0` rule above,
                // because the next character would reset nothing).
                padding = 3;
            }
        }
    }
    if count != 0 {
        return None;
    }
    Some(out)
}

/// Encodes `data` as base64 in lines of 64 characters, each ending in `\n`.
pub fn encode_lines(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 48 + 4);
    let mut column = 0;
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4 {
            let c = if i <= chunk.len() {
                let index = (n >> (18 - 6 * i)) & 0x3f;
                ALPHABET.get(index as usize).copied().unwrap_or(b'A')
            } else {
                b'='
            };
            out.push(char::from(c));
        }
        column += 4;
        if column == 64 {
            out.push('\n');
            column = 0;
        }
    }
    if column != 0 {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for len in 0..200usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let text = encode_lines(&data);
            assert_eq!(decode(&text).as_deref(), Some(&data[..]), "len {len}");
        }
    }

    #[test]
    fn rfc4648_vectors() {
        assert_eq!(decode("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(decode("Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        assert_eq!(decode("Zm9vYmE=\n").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(encode_lines(b"fooba"), "Zm9vYmE=\n");
    }

    #[test]
    fn rejects_junk() {
        assert_eq!(decode("Zm9v!mFy"), None);
        assert_eq!(decode("Zm9vY"), None);
        assert_eq!(decode("Zg==Zm9v"), None);
        assert_eq!(decode("Z==="), None);
    }
}
