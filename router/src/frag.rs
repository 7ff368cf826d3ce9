//! IPv4 fragmentation to a link MTU and reassembly with bounded memory (RFC 791 section 3.2, RFC 815).
//!
//! Layer: algorithms over caller buffers. The reassembler holds at most `max_datagrams` partial datagrams
//! and `max_bytes` of fragment data in total; a datagram not completed by its deadline is dropped.
//! Never reads a clock.

use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Address;

use crate::checksum::{be16, set_be16};
use crate::ip::{self, Ipv4Info};

/// Largest IPv4 datagram (total length is a 16-bit field).
pub const MAX_DATAGRAM: usize = 65535;
/// How long a partial datagram is kept (RFC 791 suggests 15 s; Linux uses 30 s).
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Most fragments accepted for one datagram: bounds the work per datagram against tiny-fragment floods.
pub const MAX_FRAGMENTS: usize = 64;

/// Which side a fragment came from; keeps the two directions' keys apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    FromLan,
    FromTunnel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    direction: Direction,
    src: Ipv4Address,
    dst: Ipv4Address,
    ident: u16,
    protocol: u8,
}

#[derive(Debug)]
struct Partial {
    key: Key,
    deadline: Instant,
    /// Header of the fragment at offset 0, once received.
    header: Vec<u8>,
    /// Fragment data, indexed by fragment offset.
    data: Vec<u8>,
    /// Received `[start, end)` byte ranges of the data.
    ranges: Vec<(usize, usize)>,
    /// Data length, known once the last fragment (MF clear) arrived.
    total: Option<usize>,
}

impl Partial {
    fn bytes(&self) -> usize {
        self.header.capacity() + self.data.capacity()
    }

    fn complete(&mut self) -> Option<usize> {
        let total = self.total?;
        if self.header.is_empty() {
            return None;
        }
        self.ranges.sort_unstable();
        let mut covered = 0;
        for &(s, e) in &self.ranges {
            if s > covered {
                return None;
            }
            covered = covered.max(e);
        }
        (covered >= total).then_some(total)
    }
}

/// What happened to a fragment handed to [`Reassembler::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reassembly {
    /// Stored; the datagram is not complete yet.
    Pending,
    /// The whole datagram (of this length) is now in the output buffer.
    Complete(usize),
    /// Dropped: inconsistent, oversized, or over the memory bound.
    Dropped,
}

/// Bounded store of partial datagrams.
#[derive(Debug)]
pub(crate) struct Reassembler {
    partials: Vec<Partial>,
    max_datagrams: usize,
    max_bytes: usize,
}

impl Reassembler {
    pub(crate) fn new(max_datagrams: usize, max_bytes: usize) -> Self {
        Reassembler {
            partials: Vec::with_capacity(max_datagrams),
            max_datagrams,
            max_bytes,
        }
    }

    fn bytes_in_use(&self) -> usize {
        self.partials.iter().map(Partial::bytes).sum()
    }

    /// Adds one validated fragment `packet` (described by `info`). When this completes the datagram, the
    /// reassembled packet (header of the first fragment, flags cleared, lengths and checksum fixed) is
    /// written to `out` and its length returned.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        direction: Direction,
        info: &Ipv4Info,
        packet: &[u8],
        out: &mut [u8],
    ) -> Reassembly {
        self.expire(now);
        let key = Key {
            direction,
            src: info.src,
            dst: info.dst,
            ident: info.ident,
            protocol: info.protocol.into(),
        };
        let Some(payload) = packet.get(info.header_len..info.total_len) else {
            return Reassembly::Dropped;
        };
        let start = info.frag_offset;
        let end = start + payload.len();
        // RFC 791: every fragment but the last carries a multiple of 8 data bytes.
        if end + info.header_len > MAX_DATAGRAM
            || (info.more_frags && payload.len() % 8 != 0)
            || payload.is_empty()
        {
            return Reassembly::Dropped;
        }
        let index = match self.partials.iter().position(|p| p.key == key) {
            Some(i) => i,
            None => {
                if self.partials.len() >= self.max_datagrams {
                    // Make room by dropping the datagram closest to its deadline: new traffic wins over stale.
                    let Some(oldest) = self
                        .partials
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, p)| p.deadline)
                        .map(|(i, _)| i)
                    else {
                        return Reassembly::Dropped;
                    };
                    self.partials.swap_remove(oldest);
                }
                self.partials.push(Partial {
                    key,
                    deadline: now + REASSEMBLY_TIMEOUT,
                    header: Vec::new(),
                    data: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                });
                self.partials.len() - 1
            }
        };
        let growth = end.saturating_sub(self.partials.get(index).map_or(0, |p| p.data.len()))
            + if start == 0 { info.header_len } else { 0 };
        if self.bytes_in_use() + growth > self.max_bytes {
            self.partials.swap_remove(index);
            return Reassembly::Dropped;
        }
        let Some(partial) = self.partials.get_mut(index) else {
            return Reassembly::Dropped;
        };
        let bad = partial.ranges.len() >= MAX_FRAGMENTS
            || (!info.more_frags && partial.total.is_some_and(|t| t != end))
            || partial.total.is_some_and(|t| end > t)
            || (!info.more_frags && partial.ranges.iter().any(|&(_, e)| e > end));
        if bad {
            self.partials.swap_remove(index);
            return Reassembly::Dropped;
        }
        if partial.data.len() < end {
            partial.data.reserve_exact(end - partial.data.len());
            partial.data.resize(end, 0);
        }
        if let Some(dst) = partial.data.get_mut(start..end) {
            dst.copy_from_slice(payload);
        }
        partial.ranges.push((start, end));
        if !info.more_frags {
            partial.total = Some(end);
        }
        if start == 0 {
            partial.header.clear();
            partial
                .header
                .extend_from_slice(packet.get(..info.header_len).unwrap_or(&[]));
        }
        let Some(total) = partial.complete() else {
            return Reassembly::Pending;
        };
        let header_len = partial.header.len();
        let len = header_len + total;
        let out_len = out.len();
        let result = match (out.get_mut(..header_len), partial.data.get(..total)) {
            (Some(h), Some(data)) if len <= MAX_DATAGRAM && out_len >= len => {
                h.copy_from_slice(&partial.header);
                if let Some(d) = out.get_mut(header_len..len) {
                    d.copy_from_slice(data);
                }
                // Clear MF and the offset, keep DF; fix the total length and checksum.
                let flags = be16(out, 6).unwrap_or(0) & 0x4000;
                let _ = set_be16(out, 6, flags);
                let _ = set_be16(out, 2, u16::try_from(len).unwrap_or(0));
                ip::fill_header_checksum(out, header_len);
                Reassembly::Complete(len)
            }
            _ => Reassembly::Dropped,
        };
        self.partials.swap_remove(index);
        result
    }

    /// Drops partial datagrams past their deadline.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.partials.retain(|p| p.deadline > now);
    }

    /// The earliest deadline of a partial datagram.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.partials.iter().map(|p| p.deadline).min()
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> (usize, usize) {
        (self.partials.len(), self.bytes_in_use())
    }
}

/// Splits a validated, unfragmented-or-reassembled IPv4 `packet` into fragments of at most `mtu` bytes,
/// writing one fragment at a time into a caller buffer (RFC 791 section 3.2 "fragmentation").
#[derive(Debug)]
pub(crate) struct Fragmenter<'a> {
    packet: &'a [u8],
    header_len: usize,
    /// Options copied into non-first fragments (those with the copy flag), padded to 4 bytes.
    copied: [u8; 40],
    copied_len: usize,
    /// Next data offset to emit.
    offset: usize,
    data_len: usize,
    mtu: usize,
    /// The datagram itself is a fragment of a bigger one (offset/MF must be preserved).
    base_offset: usize,
    base_more: bool,
}

impl<'a> Fragmenter<'a> {
    /// `None` if the MTU cannot carry 8 data bytes after the header.
    pub(crate) fn new(packet: &'a [u8], info: &Ipv4Info, mtu: usize) -> Option<Self> {
        let options = packet.get(ip::HEADER_LEN..info.header_len)?;
        let mut copied = [0u8; 40];
        let mut copied_len = 0;
        let mut i = 0;
        while let Some(&kind) = options.get(i) {
            let len = match kind {
                0 => break,
                1 => 1,
                _ => usize::from(*options.get(i + 1)?).max(2),
            };
            let opt = options.get(i..i + len)?;
            if kind & 0x80 != 0 {
                copied
                    .get_mut(copied_len..copied_len + len)?
                    .copy_from_slice(opt);
                copied_len += len;
            }
            i += len;
        }
        copied_len = copied_len.div_ceil(4) * 4;
        let worst_header = info.header_len.max(ip::HEADER_LEN + copied_len);
        if mtu < worst_header + 8 {
            return None;
        }
        Some(Fragmenter {
            packet,
            header_len: info.header_len,
            copied,
            copied_len,
            offset: 0,
            data_len: info.total_len.checked_sub(info.header_len)?,
            mtu,
            base_offset: info.frag_offset,
            base_more: info.more_frags,
        })
    }

    /// Writes the next fragment into `out`; `None` when all were written (or `out` is too small).
    pub(crate) fn next_into(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.offset >= self.data_len {
            return None;
        }
        let first = self.offset == 0;
        let header_len = if first {
            self.header_len
        } else {
            ip::HEADER_LEN + self.copied_len
        };
        let room = (self.mtu - header_len) & !7;
        let chunk = room.min(self.data_len - self.offset);
        let last = self.offset + chunk >= self.data_len;
        let len = header_len + chunk;
        if first {
            out.get_mut(..header_len)?
                .copy_from_slice(self.packet.get(..header_len)?);
        } else {
            out.get_mut(..ip::HEADER_LEN)?
                .copy_from_slice(self.packet.get(..ip::HEADER_LEN)?);
            out.get_mut(ip::HEADER_LEN..header_len)?
                .copy_from_slice(self.copied.get(..self.copied_len)?);
            let vihl = out.first_mut()?;
            *vihl = 0x40 | u8::try_from(header_len / 4).ok()?;
        }
        let data_start = self.header_len + self.offset;
        out.get_mut(header_len..len)?
            .copy_from_slice(self.packet.get(data_start..data_start + chunk)?);
        let frag_offset = (self.base_offset + self.offset) / 8;
        let more = !last || self.base_more;
        let flags = (be16(self.packet, 6)? & 0x4000) | if more { 0x2000 } else { 0 };
        set_be16(out, 6, flags | u16::try_from(frag_offset).ok()?)?;
        set_be16(out, 2, u16::try_from(len).ok()?)?;
        ip::fill_header_checksum(out, header_len);
        self.offset += chunk;
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use smoltcp::wire::IpProtocol;

    fn datagram(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        for (i, b) in p.iter_mut().enumerate().skip(20) {
            *b = (i * 7) as u8;
        }
        ip::write_header(
            &mut p,
            Ipv4Address::new(10, 8, 0, 9),
            Ipv4Address::new(1, 1, 1, 1),
            IpProtocol::Udp,
            len - 20,
            64,
            0x4242,
        )
        .unwrap();
        p
    }

    fn split(p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let info = ip::parse(p).unwrap();
        let mut f = Fragmenter::new(p, &info, mtu).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; mtu];
        while let Some(n) = f.next_into(&mut buf) {
            assert!(n <= mtu);
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[test]
    fn round_trip_in_any_order() {
        let p = datagram(4000);
        let mut frags = split(&p, 1500);
        assert_eq!(frags.len(), 3);
        frags.reverse();
        let mut r = Reassembler::new(4, 1 << 20);
        let mut out = vec![0u8; MAX_DATAGRAM];
        let now = Instant::from_secs(1);
        let mut result = None;
        for f in &frags {
            let info = ip::parse(f).expect("fragment header must verify");
            assert!(info.is_fragment());
            result = Some(r.push(now, Direction::FromLan, &info, f, &mut out));
        }
        assert_eq!(result, Some(Reassembly::Complete(4000)));
        assert_eq!(
            &out[..4000],
            &p[..],
            "reassembled bytes equal the original datagram"
        );
        assert_eq!(r.in_flight(), (0, 0));
    }

    #[test]
    fn memory_is_bounded_and_times_out() {
        let mut r = Reassembler::new(2, 8192);
        let mut out = vec![0u8; MAX_DATAGRAM];
        let now = Instant::from_secs(1);
        for ident in 0..10u16 {
            let mut p = datagram(3000);
            crate::checksum::set_be16(&mut p, 4, ident).unwrap();
            ip::fill_header_checksum(&mut p, 20);
            let frags = split(&p, 1000);
            let info = ip::parse(&frags[0]).unwrap();
            assert_eq!(
                r.push(now, Direction::FromLan, &info, &frags[0], &mut out),
                Reassembly::Pending
            );
            let (n, bytes) = r.in_flight();
            assert!(n <= 2 && bytes <= 8192);
        }
        r.expire(now + REASSEMBLY_TIMEOUT);
        assert_eq!(r.in_flight().0, 0);
    }

    #[test]
    fn inconsistent_last_fragment_is_dropped() {
        let p = datagram(3000);
        let frags = split(&p, 1000);
        let mut r = Reassembler::new(2, 1 << 20);
        let mut out = vec![0u8; MAX_DATAGRAM];
        let now = Instant::from_secs(1);
        let last = frags.last().unwrap();
        let info = ip::parse(last).unwrap();
        assert_eq!(
            r.push(now, Direction::FromLan, &info, last, &mut out),
            Reassembly::Pending
        );
        // A middle fragment reaching past the end is inconsistent.
        let mut bogus = frags[0].clone();
        crate::checksum::set_be16(&mut bogus, 6, 0x2000 | (3000 / 8)).unwrap();
        ip::fill_header_checksum(&mut bogus, 20);
        let info = ip::parse(&bogus).unwrap();
        assert_eq!(
            r.push(now, Direction::FromLan, &info, &bogus, &mut out),
            Reassembly::Dropped
        );
    }
}
