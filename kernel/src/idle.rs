//! Sleeping until the next deadline: LAPIC one-shot timer + `hlt`.
//!
//! Layer: kernel glue. The main loop computes the earliest deadline of everything it drives and calls
//! [`wait_until`]: the LAPIC timer is armed for that instant (at most [`MAX_IDLE_US`] ahead) and the CPU halts
//! with interrupts enabled. Any interrupt ends the halt: the timer, or a device on one of
//! `boot::interrupts::WAKE_VECTORS` (route MSI-X/IOAPIC entries there). Handlers only acknowledge the LAPIC;
//! the loop then polls everything again, so waking early is always safe, only late is not.

use drivers::clock;

/// Longest single halt: a backstop so that a lost wake-up costs at most this much latency.
pub const MAX_IDLE_US: u64 = 100_000;

/// Halts until `deadline_us` (monotonic microseconds) or the next interrupt, whichever is first.
pub fn wait_until(deadline_us: u64) {
    let now = clock::now_us();
    if deadline_us <= now {
        return;
    }
    boot::apic::arm_oneshot_us((deadline_us - now).min(MAX_IDLE_US));
    boot::interrupts::wait_for_interrupt();
    crate::platform::after_wake();
}
