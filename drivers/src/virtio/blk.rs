//! Reads a whole virtio-blk device (virtio 1.2 §5.2) into memory: the config disk.
//!
//! The disk is small (an `.ovpn` file NUL-padded to 512-byte sectors), so it is read once at boot with
//! blocking requests, up to a caller-given bound (a larger disk cannot hold a valid config beyond it);
//! interpreting the bytes is `config_disk::read`'s job.

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
            Self::Io { sector } => write!(f, "read error at sector {sector}"),
            Self::OutOfMemory => f.write_str("out of memory for the disk image"),
        }
    }
}

/// Reads the block device behind `transport`: all of it, or its first `max_bytes` (rounded up to whole
/// sectors) when it is larger.
pub fn read_disk<T: Transport>(transport: T, max_bytes: usize) -> Result<Vec<u8>, DiskReadError> {
    let mut blk = VirtIOBlk::<IdentityHal, T>::new(transport).map_err(|_| DiskReadError::Init)?;
    let max_sectors = max_bytes.div_ceil(SECTOR_SIZE);
    let sectors = usize::try_from(blk.capacity()).map_or(max_sectors, |n| n.min(max_sectors));
    let len = sectors.saturating_mul(SECTOR_SIZE);
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
