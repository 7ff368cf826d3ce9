//! The byte rings of the PV console and xenstore: a power-of-two byte array with free-running 32-bit
//! producer and consumer indices (`io/console.h`, `io/xs_wire.h`).
//!
//! Layer: pure logic over shared memory given as atomics, so the host tests run it on ordinary memory.
//! The other side is not trusted: indices further apart than the ring size are an error, never a panic
//! or an out-of-bounds access, and every copy is bounded by the ring size.

use core::sync::atomic::{fence, AtomicU32, AtomicU8, Ordering};

use super::XenError;

/// One direction of a byte ring.
pub struct ByteRing<'a> {
    data: &'a [AtomicU8],
    cons: &'a AtomicU32,
    prod: &'a AtomicU32,
}

impl<'a> ByteRing<'a> {
    /// A ring over `data` (its length must be a power of two) with its two indices.
    pub fn new(data: &'a [AtomicU8], cons: &'a AtomicU32, prod: &'a AtomicU32) -> ByteRing<'a> {
        debug_assert!(data.len().is_power_of_two());
        ByteRing { data, cons, prod }
    }

    fn size(&self) -> u32 {
        self.data.len() as u32
    }

    /// Bytes between the indices; an error when the other side moved them apart by more than the ring.
    fn used(&self, cons: u32, prod: u32) -> Result<u32, XenError> {
        let used = prod.wrapping_sub(cons);
        if used > self.size() {
            return Err(XenError::Backend(alloc::format!(
                "ring indices out of range: consumer {cons}, producer {prod}, size {}",
                self.size()
            )));
        }
        Ok(used)
    }

    fn slot(&self, index: u32) -> Option<&AtomicU8> {
        self.data.get((index & (self.size() - 1)) as usize)
    }

    /// Producer side: copies as much of `bytes` as fits; returns how many were queued.
    pub fn write(&self, bytes: &[u8]) -> Result<usize, XenError> {
        let cons = self.cons.load(Ordering::Acquire);
        let prod = self.prod.load(Ordering::Relaxed);
        let used = self.used(cons, prod)?;
        let n = (self.size() - used).min(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        for (i, &b) in bytes.iter().take(n as usize).enumerate() {
            if let Some(slot) = self.slot(prod.wrapping_add(i as u32)) {
                slot.store(b, Ordering::Relaxed);
            }
        }
        fence(Ordering::SeqCst); // the bytes before the index (wmb)
        self.prod.store(prod.wrapping_add(n), Ordering::Release);
        Ok(n as usize)
    }

    /// Consumer side: copies up to `buf.len()` waiting bytes; returns how many.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, XenError> {
        let prod = self.prod.load(Ordering::Acquire);
        let cons = self.cons.load(Ordering::Relaxed);
        let used = self.used(cons, prod)?;
        fence(Ordering::SeqCst); // the index before the bytes (rmb)
        let n = used.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        for (i, out) in buf.iter_mut().take(n as usize).enumerate() {
            *out = self
                .slot(cons.wrapping_add(i as u32))
                .map_or(0, |s| s.load(Ordering::Relaxed));
        }
        fence(Ordering::SeqCst); // the bytes before giving the space back (mb)
        self.cons.store(cons.wrapping_add(n), Ordering::Release);
        Ok(n as usize)
    }

    /// Bytes waiting to be read (0 when the indices are broken).
    pub fn available(&self) -> usize {
        let prod = self.prod.load(Ordering::Acquire);
        let cons = self.cons.load(Ordering::Relaxed);
        self.used(cons, prod).unwrap_or(0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn mem(n: usize) -> Vec<AtomicU8> {
        (0..n).map(|_| AtomicU8::new(0)).collect()
    }

    #[test]
    fn wraps_around() {
        let data = mem(8);
        let (cons, prod) = (AtomicU32::new(u32::MAX - 2), AtomicU32::new(u32::MAX - 2));
        let ring = ByteRing::new(&data, &cons, &prod);
        assert_eq!(ring.write(b"hello world").unwrap(), 8);
        assert_eq!(ring.write(b"x").unwrap(), 0);
        let mut buf = [0u8; 5];
        assert_eq!(ring.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf, b"hello");
        assert_eq!(ring.write(b"12345").unwrap(), 5);
        let mut buf = [0u8; 16];
        assert_eq!(ring.read(&mut buf).unwrap(), 8);
        assert_eq!(&buf[..8], b" wo12345");
        assert_eq!(ring.available(), 0);
    }

    #[test]
    fn broken_indices_are_an_error() {
        let data = mem(8);
        let (cons, prod) = (AtomicU32::new(0), AtomicU32::new(9));
        let ring = ByteRing::new(&data, &cons, &prod);
        assert!(ring.read(&mut [0u8; 4]).is_err());
        assert!(ring.write(b"a").is_err());
        assert_eq!(ring.available(), 0);
        // a consumer ahead of the producer is the same error
        let (cons, prod) = (AtomicU32::new(5), AtomicU32::new(4));
        let ring = ByteRing::new(&data, &cons, &prod);
        assert!(ring.read(&mut [0u8; 4]).is_err());
    }
}
