//! virtio-net (virtio 1.2 §5.1) as a `smoltcp::phy::Device`.
//!
//! Every receive and transmit buffer is allocated once, at bring-up; the data path only moves slot
//! numbers around. The receive queue is kept full: smoltcp's `Interface::poll` drains every used
//! buffer (one `receive` call per frame) and each drained buffer goes back to the device on the next
//! call into this driver, so the device never runs dry while frames are waiting.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::net_raw::NetQueues;
use super::Transport;
use crate::netdev::{FrameTx, NetDevice, ETHERNET_MTU};
use smoltcp::phy::{self, DeviceCapabilities};
use smoltcp::time::Instant;

/// Descriptors per virtqueue; each buffer uses exactly one.
pub const QUEUE_SIZE: usize = 128;
/// A virtio-net header (12 bytes) plus the largest Ethernet frame, rounded up: at least the 1526 bytes
/// `virtio-drivers` demands of a receive buffer.
const BUFFER_LEN: usize = 2048;

type Buffer = [u8; BUFFER_LEN];

/// Why a NIC could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetInitError {
    /// Feature negotiation or virtqueue setup failed.
    Device,
    /// The device refused one of the initial receive buffers.
    RxFill,
}

impl fmt::Display for NetInitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Device => "virtio-net initialisation failed",
            Self::RxFill => "virtio-net refused a receive buffer",
        })
    }
}

/// Which buffer slot each in-flight descriptor chain (named by its head index, the "token") carries.
struct TokenSlots {
    slot_of: [Option<u16>; QUEUE_SIZE],
}

impl TokenSlots {
    fn new() -> Self {
        Self {
            slot_of: [None; QUEUE_SIZE],
        }
    }

    fn insert(&mut self, token: u16, slot: u16) -> bool {
        match self.slot_of.get_mut(usize::from(token)) {
            Some(entry @ None) => {
                *entry = Some(slot);
                true
            }
            _ => false,
        }
    }

    fn take(&mut self, token: u16) -> Option<u16> {
        self.slot_of.get_mut(usize::from(token))?.take()
    }
}

struct RxState {
    buffers: Box<[Buffer]>,
    posted: TokenSlots,
    /// Slots handed to smoltcp and not yet given back to the device.
    to_refill: Vec<u16>,
}

struct TxState {
    buffers: Box<[Buffer]>,
    /// Slot and submitted length per in-flight token.
    in_flight: [Option<(u16, u16)>; QUEUE_SIZE],
    free: Vec<u16>,
    /// Where a frame that cannot be queued is written and forgotten: smoltcp's emitters need a buffer
    /// of the length they asked for.
    scratch: Box<Buffer>,
}

/// A virtio-net device driven through smoltcp's `phy::Device`.
pub struct VirtioNet<T: Transport> {
    raw: NetQueues<T, QUEUE_SIZE>,
    rx: RxState,
    tx: TxState,
    /// Frames dropped because the transmit queue was full or refused them.
    pub tx_dropped: u64,
}

fn slot_index(slot: usize) -> u16 {
    // QUEUE_SIZE < u16::MAX, so every slot index fits.
    u16::try_from(slot).unwrap_or(u16::MAX)
}

impl<T: Transport> VirtioNet<T> {
    /// Initialises the device and posts every receive buffer.
    pub fn new(transport: T) -> Result<Self, NetInitError> {
        let raw = NetQueues::new(transport).map_err(|_| NetInitError::Device)?;
        let mut net = Self {
            raw,
            rx: RxState {
                buffers: vec![[0; BUFFER_LEN]; QUEUE_SIZE].into_boxed_slice(),
                posted: TokenSlots::new(),
                to_refill: (0..QUEUE_SIZE).map(slot_index).rev().collect(),
            },
            tx: TxState {
                buffers: vec![[0; BUFFER_LEN]; QUEUE_SIZE].into_boxed_slice(),
                in_flight: [None; QUEUE_SIZE],
                free: (0..QUEUE_SIZE).map(slot_index).rev().collect(),
                scratch: Box::new([0; BUFFER_LEN]),
            },
            tx_dropped: 0,
        };
        net.refill();
        if !net.rx.to_refill.is_empty() {
            return Err(NetInitError::RxFill);
        }
        Ok(net)
    }

    /// The device's MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// Acknowledges the device's interrupt (reads and clears its ISR status). Call from the interrupt
    /// handler or after waking; the driver itself never waits for interrupts.
    pub fn ack_interrupt(&mut self) {
        self.raw.ack_interrupt();
    }

    /// Asks the device to interrupt when it uses a buffer (virtio 1.2 §2.7.10).
    pub fn enable_interrupts(&mut self) {
        self.raw.set_interrupts(true);
    }

    /// Turns the device's used-buffer interrupts on (before the CPU halts) or off (while the main loop
    /// is busy and polls anyway: no interrupt per burst). Then check [`rx_pending`](Self::rx_pending).
    pub fn set_interrupts(&mut self, on: bool) {
        self.raw.set_interrupts(on);
    }

    /// Tells the device about the frames queued and the receive buffers posted since the last call (one
    /// notification per batch rather than per frame; see `net_raw`). Call when a burst of work ends.
    pub fn flush(&mut self) {
        self.refill();
        self.raw.flush();
    }

    /// Whether a received frame is waiting, so an idle loop must not halt.
    pub fn rx_pending(&self) -> bool {
        self.raw.poll_receive().is_some()
    }

    /// Whether frames queued for transmission are still with the device (those it finished are reclaimed
    /// first). Before the VM ends: a frame still in flight may never leave.
    pub fn tx_in_flight(&mut self) -> bool {
        Self::reclaim_tx(&mut self.raw, &mut self.tx);
        self.tx.in_flight.iter().any(Option::is_some)
    }

    /// Gives every drained receive buffer back to the device.
    pub fn refill(&mut self) {
        while let Some(&slot) = self.rx.to_refill.last() {
            let Some(buffer) = self.rx.buffers.get_mut(usize::from(slot)) else {
                self.rx.to_refill.pop();
                continue;
            };
            // SAFETY: the buffer lives in `self.rx.buffers` (never moved or freed while the device
            // exists) and is not touched again until the device returns its token in `receive`.
            let Ok(token) = (unsafe { self.raw.receive_begin(buffer) }) else {
                break;
            };
            if !self.rx.posted.insert(token, slot) {
                break;
            }
            self.rx.to_refill.pop();
        }
    }

    /// Returns finished transmit buffers to the free list.
    fn reclaim_tx(raw: &mut NetQueues<T, QUEUE_SIZE>, tx: &mut TxState) {
        while let Some(token) = raw.poll_transmit() {
            let Some((slot, len)) = tx
                .in_flight
                .get_mut(usize::from(token))
                .and_then(Option::take)
            else {
                break;
            };
            let Some(buffer) = tx.buffers.get(usize::from(slot)) else {
                break;
            };
            let Some(frame) = buffer.get(..usize::from(len)) else {
                break;
            };
            // SAFETY: `frame` is exactly the slice passed to `transmit_begin` for `token`.
            if unsafe { raw.transmit_complete(token, frame) }.is_err() {
                break;
            }
            tx.free.push(slot);
        }
    }
}

impl<T: Transport> VirtioNet<T> {
    /// [`phy::Device::receive`] with a fast path in front: each received frame is first offered to
    /// `take`, mutable, where the device put it; a frame `take` consumes (returns true for) goes back to
    /// the device without a copy, and the first one it declines is returned as the usual token pair.
    /// Frames stay in arrival order either way.
    pub fn receive_unless(
        &mut self,
        _now: Instant,
        take: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Option<(VirtioRxToken<'_>, VirtioTxToken<'_, T>)> {
        let (slot, frame) = self.next_frame(take)?;
        let frame = self.rx.buffers.get(usize::from(slot))?.get(frame)?;
        Some((
            VirtioRxToken { frame },
            VirtioTxToken {
                raw: &mut self.raw,
                tx: &mut self.tx,
                dropped: &mut self.tx_dropped,
            },
        ))
    }

    /// The next received frame, mutable in its receive buffer (for a caller that rewrites it where it
    /// lies), with a transmit token for the answers. The buffer goes back to the device on the next call.
    pub fn receive_mut(&mut self, _now: Instant) -> Option<(&mut [u8], VirtioTxToken<'_, T>)> {
        let (slot, frame) = self.next_frame(&mut |_| false)?;
        let frame = self.rx.buffers.get_mut(usize::from(slot))?.get_mut(frame)?;
        Some((
            frame,
            VirtioTxToken {
                raw: &mut self.raw,
                tx: &mut self.tx,
                dropped: &mut self.tx_dropped,
            },
        ))
    }

    /// Takes used receive buffers until `take` declines one: its slot and where the frame lies in it.
    fn next_frame(
        &mut self,
        take: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Option<(u16, core::ops::Range<usize>)> {
        loop {
            self.refill();
            Self::reclaim_tx(&mut self.raw, &mut self.tx);
            let token = self.raw.poll_receive()?;
            let slot = self.rx.posted.take(token)?;
            let buffer = self.rx.buffers.get_mut(usize::from(slot))?;
            // SAFETY: `buffer` is the one posted with `token`.
            let completed = unsafe { self.raw.receive_complete(token, buffer) };
            // Whatever happened, the buffer is ours again and goes back on the next call.
            self.rx.to_refill.push(slot);
            let (header_len, frame_len) = completed.ok()?;
            let frame = header_len..header_len.checked_add(frame_len)?;
            if !take(buffer.get_mut(frame.clone())?) {
                return Some((slot, frame));
            }
        }
    }
}

/// A received frame, borrowed from its receive buffer until consumed.
pub struct VirtioRxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for VirtioRxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Permission to send one frame.
pub struct VirtioTxToken<'a, T: Transport> {
    raw: &'a mut NetQueues<T, QUEUE_SIZE>,
    tx: &'a mut TxState,
    dropped: &'a mut u64,
}

impl<T: Transport> VirtioTxToken<'_, T> {
    /// `FrameTx::emit_sized`: `f` gets `max` bytes and returns its result and the frame's length (at
    /// most `max`; 0 queues nothing and is not counted as a drop).
    fn emit_sized_raw<R, F: FnOnce(&mut [u8]) -> (R, usize)>(
        &mut self,
        max: usize,
        f: F,
    ) -> (R, bool) {
        let max = max.min(ETHERNET_MTU);
        Self::reclaim(self);
        let slot = self.tx.free.pop();
        let prepared = slot.and_then(|slot| {
            let buffer = self.tx.buffers.get_mut(usize::from(slot))?;
            let header_len = self.raw.fill_buffer_header(buffer).ok()?;
            Some((slot, buffer, header_len))
        });
        let Some((slot, buffer, header_len)) = prepared else {
            *self.dropped += 1;
            self.tx.free.extend(slot);
            return (
                f(self.tx.scratch.get_mut(..max).unwrap_or(&mut [])).0,
                false,
            );
        };
        let end = header_len.saturating_add(max).min(BUFFER_LEN);
        let (result, len) = f(buffer.get_mut(header_len..end).unwrap_or(&mut []));
        if len == 0 {
            self.tx.free.push(slot);
            return (result, false);
        }
        let total = header_len.saturating_add(len.min(max)).min(BUFFER_LEN);
        let submitted = buffer.get(..total).unwrap_or(&[]);
        // SAFETY: the slot stays out of the free list, untouched, until `reclaim_tx` sees its token.
        let queued = match unsafe { self.raw.transmit_begin(submitted) } {
            Ok(token) => match self.tx.in_flight.get_mut(usize::from(token)) {
                Some(entry) => {
                    *entry = Some((slot, slot_index(total)));
                    true
                }
                None => false,
            },
            Err(_) => {
                self.tx.free.push(slot);
                false
            }
        };
        if !queued {
            *self.dropped += 1;
        }
        (result, queued)
    }

    fn reclaim(&mut self) {
        if self.tx.free.is_empty() {
            VirtioNet::<T>::reclaim_tx(self.raw, self.tx);
        }
    }
}

impl<T: Transport> phy::TxToken for VirtioTxToken<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, len: usize, f: F) -> R {
        FrameTx::emit(&mut self, len, f)
    }
}

impl<T: Transport> phy::Device for VirtioNet<T> {
    type RxToken<'a>
        = VirtioRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = VirtioTxToken<'a, T>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.receive_unless(now, &mut |_| false)
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        Self::reclaim_tx(&mut self.raw, &mut self.tx);
        if self.tx.free.is_empty() || !self.raw.can_send() {
            return None;
        }
        Some(VirtioTxToken {
            raw: &mut self.raw,
            tx: &mut self.tx,
            dropped: &mut self.tx_dropped,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        crate::netdev::ethernet_capabilities(QUEUE_SIZE)
    }
}

impl<T: Transport> FrameTx for VirtioTxToken<'_, T> {
    fn emit_sized<R>(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> (R, usize)) -> (R, bool) {
        self.emit_sized_raw(max, f)
    }

    fn count_drop(&mut self) {
        *self.dropped += 1;
    }
}

impl<T: Transport> NetDevice for VirtioNet<T> {
    type Rx<'a>
        = VirtioRxToken<'a>
    where
        Self: 'a;
    type Tx<'a>
        = VirtioTxToken<'a, T>
    where
        Self: 'a;

    fn mac_address(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    fn capabilities(&self) -> DeviceCapabilities {
        phy::Device::capabilities(self)
    }

    fn receive_unless(
        &mut self,
        take: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Option<(Self::Rx<'_>, Self::Tx<'_>)> {
        VirtioNet::receive_unless(self, Instant::ZERO, take)
    }

    fn receive_mut(&mut self) -> Option<(&mut [u8], Self::Tx<'_>)> {
        VirtioNet::receive_mut(self, Instant::ZERO)
    }

    fn transmit(&mut self) -> Option<Self::Tx<'_>> {
        phy::Device::transmit(self, Instant::ZERO)
    }

    fn rx_pending(&self) -> bool {
        VirtioNet::rx_pending(self)
    }

    fn refill(&mut self) {
        VirtioNet::refill(self)
    }

    fn flush(&mut self) {
        VirtioNet::flush(self)
    }

    fn ack_interrupt(&mut self) {
        VirtioNet::ack_interrupt(self)
    }

    fn set_interrupts(&mut self, on: bool) {
        VirtioNet::set_interrupts(self, on)
    }

    fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_slots_reject_out_of_range_and_reused_tokens() {
        let mut slots = TokenSlots::new();
        assert!(slots.insert(3, 7));
        assert!(
            !slots.insert(3, 8),
            "a token still in flight cannot be posted twice"
        );
        assert!(!slots.insert(QUEUE_SIZE as u16, 1));
        assert_eq!(slots.take(3), Some(7));
        assert_eq!(slots.take(3), None);
        assert_eq!(slots.take(u16::MAX), None);
    }
}
