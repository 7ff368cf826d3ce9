//! Reads a whole virtio-blk device (virtio 1.2 §5.2) into memory: the config disk.
//!
//! The disk is small (an `.ovpn` file NUL-padded to 512-byte sectors), so it is read once at boot with
//! blocking requests; interpreting the bytes is `config_disk::read`'s job.

use alloc::vec::Vec;
use core::fmt;

use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};

use super::{IdentityHal, Transport};

/// Sectors per request: 64 KiB, well under any queue's segment limit.
const SECTORS_PER_REQUEST: usize = 128;

/// Why the disk could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskReadError {
    /// The device did not initialise.
    Init,
    /// The disk holds more than the caller's limit.
    TooLarge {
        /// The disk's size in bytes.
        bytes: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// A read request failed.
    Io {
        /// The first sector of the failed request.
        sector: usize,
    },
    /// No memory for the disk image.
    OutOfMemory,
}

impl fmt::Display for DiskReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Init => f.write_str("virtio-blk device did not initialise"),
            Self::TooLarge { bytes, limit } => {
                write!(f, "disk is {bytes} bytes, more than the {limit}-byte limit")
            }
            Self::Io { sector } => write!(f, "read error at sector {sector}"),
            Self::OutOfMemory => f.write_str("out of memory for the disk image"),
        }
    }
}

/// Reads every sector of the block device behind `transport`, refusing disks larger than `limit` bytes.
pub fn read_whole_disk<T: Transport>(transport: T, limit: usize) -> Result<Vec<u8>, DiskReadError> {
    let mut blk = VirtIOBlk::<IdentityHal, T>::new(transport).map_err(|_| DiskReadError::Init)?;
    let bytes = blk.capacity().saturating_mul(SECTOR_SIZE as u64);
    let len = usize::try_from(bytes)
        .ok()
        .filter(|&len| len <= limit)
        .ok_or(DiskReadError::TooLarge { bytes, limit })?;
    let mut disk = Vec::new();
    disk.try_reserve_exact(len)
        .map_err(|_| DiskReadError::OutOfMemory)?;
    disk.resize(len, 0);
    for (index, chunk) in disk
        .chunks_mut(SECTORS_PER_REQUEST * SECTOR_SIZE)
        .enumerate()
    {
        let sector = index * SECTORS_PER_REQUEST;
        blk.read_blocks(sector, chunk)
            .map_err(|_| DiskReadError::Io { sector })?;
    }
    Ok(disk)
}
