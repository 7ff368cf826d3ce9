//! The network-device seam: what the kernel needs of a NIC, whatever the platform (virtio-net under
//! QEMU and other VMMs, Xen netfront under Xen).
//!
//! Layer: the contract between `drivers` and the kernel. A device receives in place (the frame stays in
//! the buffer the device wrote, mutable, until the next call), transmits into one of its own buffers
//! (the caller writes the frame where the device will read it), batches notifications until `flush`, and
//! signals work through an interrupt or event that `set_interrupts` turns on before the CPU halts.

use smoltcp::phy::{DeviceCapabilities, Medium, RxToken};

/// Permission to queue frames on a device's transmit ring. It stays usable after a send, so one
/// received frame may be answered with several. A device provides [`emit_sized`](Self::emit_sized) and
/// [`count_drop`](Self::count_drop); the three ways to send are written once, here.
pub trait FrameTx {
    /// Lets `f` write a frame of at most `max` bytes (clamped to [`ETHERNET_MTU`]; an Ethernet frame
    /// without FCS) straight into a transmit buffer and queues it with the length `f` returns (0 queues
    /// nothing and is no drop). Returns `f`'s result and whether a frame was queued; without a free buffer
    /// `f` writes into scratch space and the frame is dropped and counted.
    fn emit_sized<R>(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> (R, usize)) -> (R, bool);

    /// Counts a frame dropped before it reached a buffer (longer than the MTU).
    fn count_drop(&mut self);

    /// [`emit_sized`](Self::emit_sized) for a caller that only needs to know whether the frame went.
    fn send_with(&mut self, max: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> bool {
        self.emit_sized(max, |buffer| ((), fill(buffer))).1
    }

    /// Copies `frame` into a transmit buffer and queues it. False when it was dropped (queue full, or
    /// longer than the MTU).
    fn send(&mut self, frame: &[u8]) -> bool {
        if frame.len() > ETHERNET_MTU {
            self.count_drop();
            return false;
        }
        self.emit_sized(frame.len(), |buffer| match buffer.get_mut(..frame.len()) {
            // `emit_sized` hands out exactly `frame.len()` bytes for a frame up to the MTU.
            Some(dst) => {
                dst.copy_from_slice(frame);
                ((), frame.len())
            }
            None => ((), 0),
        })
        .1
    }

    /// smoltcp's one-shot form: `f` writes exactly `len` bytes (clamped to the MTU), then the frame is
    /// queued or dropped and counted.
    fn emit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, f: F) -> R {
        let len = len.min(ETHERNET_MTU);
        self.emit_sized(len, |buffer| (f(buffer), len)).0
    }
}

/// A NIC the kernel drives.
pub trait NetDevice {
    /// A received frame for smoltcp.
    type Rx<'a>: RxToken
    where
        Self: 'a;
    /// A transmit permission on this device.
    type Tx<'a>: FrameTx
    where
        Self: 'a;

    /// The MAC address the host gave the device.
    fn mac_address(&self) -> [u8; 6];

    /// Medium Ethernet, the MTU (1514: a 1500-byte payload) and the burst size.
    fn capabilities(&self) -> DeviceCapabilities;

    /// The next received frame, after offering each one, mutable where it lies, to `take`: frames `take`
    /// consumes (returns true for) go back to the device without a copy; the first one it declines is
    /// returned for smoltcp, with a transmit permission. Arrival order is kept.
    fn receive_unless(
        &mut self,
        take: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Option<(Self::Rx<'_>, Self::Tx<'_>)>;

    /// The next received frame, mutable in its receive buffer (for a caller that rewrites it where it
    /// lies), with a transmit permission for the answers. The buffer goes back to the device on the next
    /// call.
    fn receive_mut(&mut self) -> Option<(&mut [u8], Self::Tx<'_>)>;

    /// A transmit permission, or None when no buffer is free.
    fn transmit(&mut self) -> Option<Self::Tx<'_>>;

    /// Whether a received frame is waiting, so an idle loop must not halt.
    fn rx_pending(&self) -> bool;

    /// Gives every drained receive buffer back to the device.
    fn refill(&mut self);

    /// Tells the device about the frames queued and the receive buffers posted since the last call (one
    /// notification per batch). Call when a burst of work ends.
    fn flush(&mut self);

    /// Acknowledges the device's interrupt or event.
    fn ack_interrupt(&mut self);

    /// Turns the device's interrupts/events on (before the CPU halts) or off (while the loop is busy).
    /// After turning them on, check [`rx_pending`](Self::rx_pending).
    fn set_interrupts(&mut self, on: bool);

    /// Frames dropped on transmit (queue full or refused).
    fn tx_dropped(&self) -> u64;
}

/// The Ethernet MTU every device offers: a 1500-byte payload plus the 14-byte header.
pub const ETHERNET_MTU: usize = 1514;

/// The capabilities of an Ethernet device with that MTU that takes up to `burst` frames at once.
pub fn ethernet_capabilities(burst: usize) -> DeviceCapabilities {
    let mut caps = DeviceCapabilities::default();
    caps.medium = Medium::Ethernet;
    caps.max_transmission_unit = ETHERNET_MTU;
    caps.max_burst_size = Some(burst);
    caps
}
