//! Event channels (2-level ABI) and the upcall that wakes the CPU.
//!
//! Layer: hypercalls plus the bitmaps in shared info. Upcalls go to vCPU 0 as a LAPIC interrupt on a
//! vector of our choosing (`HVMOP_set_evtchn_upcall_vector`): the boot crate's wake stub acknowledges it
//! with a LAPIC EOI and returns, which ends `hlt`; the main loop then polls. Xen injects the vector only when
//! vCPU 0's `evtchn_upcall_pending` goes from 0 to 1, so [`rearm`] clears it after every wake-up, before
//! the loop polls again: an event arriving after that raises a new interrupt, which stays pending in the
//! LAPIC while interrupts are off and ends the next `hlt` at once. A port's own pending bit only signals
//! again after [`EventChannels::take_pending`] cleared it, so a driver takes its port before looking at
//! its rings.
//!
//! (The older `HVM_PARAM_CALLBACK_IRQ` vector type is not used: Xen re-injects that vector for as long as
//! `evtchn_upcall_pending` is set, which an EOI-and-return stub cannot clear.)

use core::sync::atomic::{AtomicU32, Ordering};

use super::hypercall::{self, DOMID_SELF};
use super::shared_info;
use super::{DomId, EventChannels, Port, XenError};

static UPCALL_VECTOR: AtomicU32 = AtomicU32::new(0);

/// Routes event upcalls for vCPU 0 to `vector` (a wake vector). The LAPIC must be enabled first (Xen
/// does not mark the vector pending on a disabled LAPIC).
pub fn set_upcall_vector(vector: u8) -> Result<(), XenError> {
    if !shared_info::mapped() {
        return Err(XenError::Backend("shared info not mapped".into()));
    }
    shared_info::upcall_mask().store(0, Ordering::SeqCst);
    hypercall::hvm_set_upcall_vector(0, vector)?;
    UPCALL_VECTOR.store(u32::from(vector), Ordering::Relaxed);
    Ok(())
}

/// Whether events wake the CPU from `hlt` ([`set_upcall_vector`] succeeded).
pub fn upcalls_enabled() -> bool {
    UPCALL_VECTOR.load(Ordering::Relaxed) != 0
}

/// Lets the next event raise an upcall again: call after each wake-up, before polling the devices.
pub fn rearm() {
    if shared_info::mapped() {
        shared_info::upcall_pending().store(0, Ordering::SeqCst);
        shared_info::pending_sel().store(0, Ordering::SeqCst);
    }
}

/// The hypervisor's event channels, as the frontends use them. A handle: copies share the one set of
/// channels, so each frontend may own one.
#[derive(Debug, Clone, Copy)]
pub struct XenEvents(());

impl XenEvents {
    /// The event channels, once shared info is mapped.
    pub fn new() -> Result<XenEvents, XenError> {
        if shared_info::mapped() {
            Ok(XenEvents(()))
        } else {
            Err(XenError::Backend("shared info not mapped".into()))
        }
    }

    /// Connects to `remote_port` of `remote` (EVTCHNOP_bind_interdomain, for a backend's offer).
    pub fn bind_interdomain(&mut self, remote: DomId, remote_port: Port) -> Result<Port, XenError> {
        #[repr(C)]
        struct BindInterdomain {
            remote_dom: u16,
            remote_port: u32,
            local_port: u32,
        }
        let mut arg = BindInterdomain {
            remote_dom: remote,
            remote_port,
            local_port: 0,
        };
        // SAFETY: EVTCHNOP_bind_interdomain (0) with its structure.
        let ret = unsafe { hypercall::event_channel_op(0, &mut arg) };
        check("evtchn bind_interdomain", ret)?;
        checked_port(arg.local_port)
    }

    /// Closes `port` (EVTCHNOP_close).
    pub fn close(&mut self, port: Port) -> Result<(), XenError> {
        let mut arg = port;
        // SAFETY: EVTCHNOP_close (3): struct evtchn_close { evtchn_port_t port; }.
        let ret = unsafe { hypercall::event_channel_op(3, &mut arg) };
        check("evtchn close", ret)
    }
}

fn check(op: &'static str, ret: i64) -> Result<(), XenError> {
    if ret < 0 {
        Err(XenError::Hypercall { op, errno: ret })
    } else {
        Ok(())
    }
}

fn checked_port(port: u32) -> Result<Port, XenError> {
    if port == 0 || port >= shared_info::MAX_PORTS {
        Err(XenError::Backend(alloc::format!(
            "Xen returned event channel {port}, outside 1..{}",
            shared_info::MAX_PORTS
        )))
    } else {
        Ok(port)
    }
}

/// Signals `port` (EVTCHNOP_send), for users that hold no handle (the console).
pub fn send(port: Port) {
    let mut arg = port;
    // SAFETY: EVTCHNOP_send (4): struct evtchn_send { evtchn_port_t port; }.
    let _ = unsafe { hypercall::event_channel_op(4, &mut arg) };
}

impl EventChannels for XenEvents {
    fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, XenError> {
        #[repr(C)]
        struct AllocUnbound {
            dom: u16,
            remote_dom: u16,
            port: u32,
        }
        let mut arg = AllocUnbound {
            dom: DOMID_SELF,
            remote_dom: remote,
            port: 0,
        };
        // SAFETY: EVTCHNOP_alloc_unbound (6) with its structure.
        let ret = unsafe { hypercall::event_channel_op(6, &mut arg) };
        check("evtchn alloc_unbound", ret)?;
        checked_port(arg.port)
    }

    fn notify(&mut self, port: Port) {
        send(port);
    }

    fn take_pending(&mut self, port: Port) -> bool {
        match shared_info::pending_word(port) {
            Some((word, bit)) => word.fetch_and(!bit, Ordering::SeqCst) & bit != 0,
            None => false,
        }
    }

    fn set_unmasked(&mut self, port: Port, unmasked: bool) {
        let Some((word, bit)) = shared_info::mask_word(port) else {
            return;
        };
        if unmasked {
            // EVTCHNOP_unmask re-raises the upcall when the port became pending while masked.
            let mut arg = port;
            // SAFETY: EVTCHNOP_unmask (9): struct evtchn_unmask { evtchn_port_t port; }.
            let ret = unsafe { hypercall::event_channel_op(9, &mut arg) };
            if ret < 0 {
                word.fetch_and(!bit, Ordering::SeqCst);
            }
        } else {
            word.fetch_or(bit, Ordering::SeqCst);
        }
    }
}
