//! The config disk format: raw OpenVPN config text, NUL-padded to a multiple of 512 bytes (MirageVPN's format:
//! the unikernel reads every sector, cuts at the first NUL and parses the text).
//!
//! Layer: a pure reader and writer of that format, `no_std`. The image calls [`read`] on the sectors it read
//! from the virtio block device; the host tool (`src/main.rs`) calls [`pad`] to make a disk. Neither panics on
//! any input.
#![no_std]
#![forbid(unsafe_code)]
// Panics must be unreachable from the network and the config disk (STYLE.md rule 6): outside tests no
// unwrap/expect/panic!, no unchecked indexing and no lossy `as` casts.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// The sector size the disk is padded to.
pub const SECTOR_SIZE: usize = 512;

/// The largest config text accepted (1 MiB). Real configs with every file inline are 5-25 KiB.
pub const MAX_CONFIG_LEN: usize = 1 << 20;

/// Why a disk does not hold a usable config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskError {
    /// The disk is empty or starts with a NUL: no config was written to it.
    Empty,
    /// The text before the first NUL is longer than [`MAX_CONFIG_LEN`].
    TooLarge,
    /// The text starts with a UTF-16 byte-order mark; `config-disk make` converts such files to UTF-8.
    Utf16,
    /// The text is not UTF-8; `offset` is the first bad byte.
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A control character other than tab, CR, LF, VT or FF: binary data, not a config (1-based line).
    Binary {
        /// 1-based line of the first control character.
        line: usize,
    },
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Empty => {
                f.write_str("the config disk is empty (no text before the first NUL byte)")
            }
            DiskError::TooLarge => {
                write!(f, "the config text is larger than {MAX_CONFIG_LEN} bytes")
            }
            DiskError::Utf16 => {
                f.write_str("the config is UTF-16 text; make the disk with `config-disk make`")
            }
            DiskError::NotUtf8 { offset } => {
                write!(f, "the config disk is not UTF-8 text (byte {offset})")
            }
            DiskError::Binary { line } => {
                write!(
                    f,
                    "the config disk holds binary data, not config text (line {line})"
                )
            }
        }
    }
}

/// The config text on a disk: everything before the first NUL byte.
///
/// ```
/// let disk = config_disk::pad("client\ndev tun\n").unwrap();
/// assert_eq!(disk.len(), 512);
/// assert_eq!(config_disk::read(&disk), Ok("client\ndev tun\n"));
/// assert_eq!(config_disk::read(&[0; 512]), Err(config_disk::DiskError::Empty));
/// ```
pub fn read(disk: &[u8]) -> Result<&str, DiskError> {
    let end = disk.iter().position(|&b| b == 0).unwrap_or(disk.len());
    let bytes = disk.get(..end).unwrap_or(&[]);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DiskError::Empty);
    }
    if bytes.len() > MAX_CONFIG_LEN {
        return Err(DiskError::TooLarge);
    }
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(DiskError::Utf16);
    }
    let text = core::str::from_utf8(bytes).map_err(|e| DiskError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut line = 1;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        } else if c.is_control() && !matches!(c, '\t' | '\r' | '\x0b' | '\x0c') {
            return Err(DiskError::Binary { line });
        }
    }
    Ok(text)
}

/// Makes a disk image from config text: the UTF-8 bytes, then NULs up to the next multiple of
/// [`SECTOR_SIZE`] (at least one NUL, so the reader always finds the end).
pub fn pad(text: &str) -> Result<Vec<u8>, DiskError> {
    if text.len() > MAX_CONFIG_LEN {
        return Err(DiskError::TooLarge);
    }
    if text.contains('\0') {
        return Err(DiskError::Binary {
            line: 1 + text.split('\0').next().unwrap_or("").matches('\n').count(),
        });
    }
    let sectors = text.len() / SECTOR_SIZE + 1;
    let mut disk = Vec::with_capacity(sectors * SECTOR_SIZE);
    disk.extend_from_slice(text.as_bytes());
    disk.resize(sectors * SECTOR_SIZE, 0);
    Ok(disk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_then_read_round_trips() {
        for len in [1usize, 100, 511, 512, 513, 4000] {
            let text = "a".repeat(len);
            let disk = pad(&text).unwrap();
            assert_eq!(disk.len() % SECTOR_SIZE, 0);
            assert!(disk.len() > len);
            assert_eq!(read(&disk), Ok(text.as_str()));
        }
    }

    #[test]
    fn reads_up_to_the_first_nul() {
        assert_eq!(
            read(b"client\ndev tun\n\0\0garbage\xff"),
            Ok("client\ndev tun\n")
        );
        // A disk filled to the last byte has no NUL: the whole disk is the text.
        assert_eq!(read(b"client\n"), Ok("client\n"));
    }

    #[test]
    fn refuses_empty_binary_and_non_utf8() {
        assert_eq!(read(&[]), Err(DiskError::Empty));
        assert_eq!(read(&[0u8; 1024]), Err(DiskError::Empty));
        assert_eq!(read(b"  \n\0"), Err(DiskError::Empty));
        assert_eq!(
            read(b"client\n\xc3\x28\n\0"),
            Err(DiskError::NotUtf8 { offset: 7 })
        );
        assert_eq!(
            read(b"client\ndev\x01tun\n\0"),
            Err(DiskError::Binary { line: 2 })
        );
        assert_eq!(read(b"\xff\xfec\0l\0"), Err(DiskError::Utf16));
        let elf = [0x7fu8, b'E', b'L', b'F', 2, 1, 1, 0, 0];
        assert_eq!(read(&elf), Err(DiskError::Binary { line: 1 }));
    }

    #[test]
    fn refuses_oversized_text() {
        let big = alloc::vec![b'a'; MAX_CONFIG_LEN + 1];
        assert_eq!(read(&big), Err(DiskError::TooLarge));
        let text = core::str::from_utf8(&big).unwrap();
        assert_eq!(pad(text), Err(DiskError::TooLarge));
        let exact = alloc::vec![b'a'; MAX_CONFIG_LEN];
        assert!(read(&exact).is_ok());
    }

    #[test]
    fn pad_refuses_embedded_nul() {
        assert_eq!(pad("client\nx\0y"), Err(DiskError::Binary { line: 2 }));
    }
}
