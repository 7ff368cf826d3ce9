//! The virtio-net device's two virtqueues (virtio 1.2 §5.1), with notifications batched.
//!
//! `virtio-drivers`' `VirtIONetRaw` notifies the device inside every `transmit_begin` and
//! `receive_begin` whenever its `should_notify` says so, and with `VIRTIO_F_EVENT_IDX` that test is
//! `avail_idx >= avail_event + 1`, true for every buffer added while the device is still behind: in a
//! burst, one notification per frame, each three register accesses on virtio-pci (queue select, notify
//! offset, notify), each a VM exit under KVM. This device adds buffers without notifying and
//! [`NetQueues::flush`] notifies once per batch, only when the device asked for it: without
//! `VIRTIO_F_EVENT_IDX` the device says so in the used ring's `VIRTQ_USED_F_NO_NOTIFY` flag, which it
//! clears before it looks at the ring a last time (§2.7.10), so a batch is never left unseen.
//!
//! Layer: hardware access over `virtio-drivers`' `VirtQueue` and transports; buffers are the caller's
//! (see `net`).

use core::fmt::Debug;
use core::sync::atomic::{fence, Ordering};

use bitflags::bitflags;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;

use super::IdentityHal;

bitflags! {
    /// The feature bits this driver negotiates (virtio 1.2 §5.1.3, §6).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Features: u64 {
        /// The device has a MAC address in its config space.
        const MAC = 1 << 5;
        /// Virtio 1.x: the 12-byte header with `num_buffers`.
        const VERSION_1 = 1 << 32;
    }
}

const QUEUE_RECEIVE: u16 = 0;
const QUEUE_TRANSMIT: u16 = 1;
/// `struct virtio_net_hdr` with `VIRTIO_F_VERSION_1` (§5.1.6): flags, gso_type, hdr_len, gso_size,
/// csum_start, csum_offset, num_buffers; all zero on transmit (no offloads).
pub const HEADER_LEN: usize = 12;
/// Buffers added without a notification before one is sent anyway, so that a long pass does not keep
/// the device waiting.
const BATCH: u16 = 32;

/// Why the device or a queue operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueError;

/// The receive and transmit virtqueues of one virtio-net device.
pub struct NetQueues<T: Transport, const N: usize> {
    transport: T,
    mac: [u8; 6],
    rx: VirtQueue<IdentityHal, N>,
    tx: VirtQueue<IdentityHal, N>,
    /// Buffers added to each queue since the device was last notified.
    rx_unnotified: u16,
    tx_unnotified: u16,
}

impl<T: Transport, const N: usize> NetQueues<T, N> {
    /// Negotiates the features (MAC, VERSION_1; no offloads, no event index, no indirect
    /// descriptors), reads the MAC address and sets up both queues.
    pub fn new(mut transport: T) -> Result<Self, QueueError> {
        let negotiated = transport.begin_init(Features::MAC | Features::VERSION_1);
        if !negotiated.contains(Features::VERSION_1) {
            return Err(QueueError);
        }
        let mut mac = [0u8; 6];
        for (offset, byte) in mac.iter_mut().enumerate() {
            *byte = transport
                .read_config_space::<u8>(offset)
                .map_err(|_| QueueError)?;
        }
        let tx =
            VirtQueue::new(&mut transport, QUEUE_TRANSMIT, false, false).map_err(|_| QueueError)?;
        let rx =
            VirtQueue::new(&mut transport, QUEUE_RECEIVE, false, false).map_err(|_| QueueError)?;
        transport.finish_init();
        Ok(Self {
            transport,
            mac,
            rx,
            tx,
            rx_unnotified: 0,
            tx_unnotified: 0,
        })
    }

    /// The MAC address from the config space.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// Reads and clears the interrupt status.
    pub fn ack_interrupt(&mut self) {
        let _ = self.transport.ack_interrupt();
    }

    /// Asks the device for used-buffer interrupts or tells it not to send them
    /// (`VIRTQ_AVAIL_F_NO_INTERRUPT`, §2.7.7): off while the driver polls anyway.
    pub fn set_interrupts(&mut self, on: bool) {
        self.rx.set_dev_notify(on);
        self.tx.set_dev_notify(on);
        // Visible before the caller looks at the used rings a last time before it halts.
        fence(Ordering::SeqCst);
    }

    /// Whether a transmit descriptor is free.
    pub fn can_send(&self) -> bool {
        self.tx.available_desc() >= 1
    }

    /// Posts a receive buffer (at least a header and a full frame long). The device is told at the
    /// next [`flush`](Self::flush).
    ///
    /// # Safety
    ///
    /// `buffer` must stay valid and untouched until its token comes back from
    /// [`poll_receive`](Self::poll_receive) and [`receive_complete`](Self::receive_complete) returns.
    pub unsafe fn receive_begin(&mut self, buffer: &mut [u8]) -> Result<u16, QueueError> {
        // SAFETY: the caller keeps `buffer` alive and untouched while the device owns it.
        let token = unsafe { self.rx.add(&[], &mut [buffer]) }.map_err(|_| QueueError)?;
        self.rx_unnotified = self.rx_unnotified.saturating_add(1);
        if self.rx_unnotified >= BATCH {
            self.notify_rx();
        }
        Ok(token)
    }

    /// The token of the next filled receive buffer, if any.
    pub fn poll_receive(&self) -> Option<u16> {
        self.rx.peek_used()
    }

    /// Takes back the receive buffer of `token`: the header length and the frame length in it.
    ///
    /// # Safety
    ///
    /// `buffer` must be the one posted with `token`.
    pub unsafe fn receive_complete(
        &mut self,
        token: u16,
        buffer: &mut [u8],
    ) -> Result<(usize, usize), QueueError> {
        // SAFETY: the caller passes the buffer posted with `token`.
        let len = unsafe { self.rx.pop_used(token, &[], &mut [buffer]) }.map_err(|_| QueueError)?;
        let len = usize::try_from(len).map_err(|_| QueueError)?;
        let frame = len.checked_sub(HEADER_LEN).ok_or(QueueError)?;
        Ok((HEADER_LEN, frame))
    }

    /// Writes the (all-zero) virtio-net header at the front of `buffer`; returns its length.
    pub fn fill_buffer_header(&self, buffer: &mut [u8]) -> Result<usize, QueueError> {
        // A copy of a constant rather than `fill(0)`: two stores instead of a `memset` call (`rep stosb`,
        // one emulated iteration per byte under TCG).
        buffer
            .get_mut(..HEADER_LEN)
            .ok_or(QueueError)?
            .copy_from_slice(&[0; HEADER_LEN]);
        Ok(HEADER_LEN)
    }

    /// Queues a frame (header included) for transmission. The device is told at the next
    /// [`flush`](Self::flush).
    ///
    /// # Safety
    ///
    /// `buffer` must stay valid and untouched until its token comes back from
    /// [`poll_transmit`](Self::poll_transmit) and [`transmit_complete`](Self::transmit_complete) returns.
    pub unsafe fn transmit_begin(&mut self, buffer: &[u8]) -> Result<u16, QueueError> {
        if buffer.len() < HEADER_LEN {
            return Err(QueueError);
        }
        // SAFETY: the caller keeps `buffer` alive and untouched while the device owns it.
        let token = unsafe { self.tx.add(&[buffer], &mut []) }.map_err(|_| QueueError)?;
        self.tx_unnotified = self.tx_unnotified.saturating_add(1);
        if self.tx_unnotified >= BATCH {
            self.notify_tx();
        }
        Ok(token)
    }

    /// The token of the next sent frame, if any.
    pub fn poll_transmit(&self) -> Option<u16> {
        self.tx.peek_used()
    }

    /// Takes back the transmit buffer of `token`.
    ///
    /// # Safety
    ///
    /// `buffer` must be the one queued with `token`.
    pub unsafe fn transmit_complete(
        &mut self,
        token: u16,
        buffer: &[u8],
    ) -> Result<(), QueueError> {
        // SAFETY: the caller passes the buffer queued with `token`.
        unsafe { self.tx.pop_used(token, &[buffer], &mut []) }.map_err(|_| QueueError)?;
        Ok(())
    }

    /// Tells the device about the buffers added since the last notification, if it wants to know.
    pub fn flush(&mut self) {
        if self.tx_unnotified > 0 {
            self.notify_tx();
        }
        if self.rx_unnotified > 0 {
            self.notify_rx();
        }
    }

    fn notify_tx(&mut self) {
        self.tx_unnotified = 0;
        // The store of the avail index must be visible before the flag is read (a store-load
        // barrier, §2.7.13.3.1; x86 may reorder those).
        fence(Ordering::SeqCst);
        if self.tx.should_notify() {
            self.transport.notify(QUEUE_TRANSMIT);
        }
    }

    fn notify_rx(&mut self) {
        self.rx_unnotified = 0;
        fence(Ordering::SeqCst);
        if self.rx.should_notify() {
            self.transport.notify(QUEUE_RECEIVE);
        }
    }
}

impl<T: Transport, const N: usize> Drop for NetQueues<T, N> {
    fn drop(&mut self) {
        // The device must not touch the rings after their memory is freed.
        self.transport.queue_unset(QUEUE_RECEIVE);
        self.transport.queue_unset(QUEUE_TRANSMIT);
    }
}

impl<T: Transport, const N: usize> Debug for NetQueues<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetQueues").field("mac", &self.mac).finish()
    }
}
