//! QubesDB at boot (Xen only, `--qubesdb`): connects to dom0's QubesDB over vchan port 111, logs the
//! keys, and keeps the client for the main loop ([`poll`]) and for the router ([`firewall_rules`]).
//! [`uplink`] gives `/qubes-ip`, `/qubes-gateway`, `/qubes-primary-dns` to the network bring-up when no
//! `--ipv4` was given.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use drivers::clock;
use drivers::xen::gnttab::MappedPage;
use drivers::xen::qubesdb::{Change, QubesDbClient, Uplink};
use drivers::xen::{Hypervisor, Store};
use log::{info, warn};

/// How long dom0's QubesDB may take to appear and to send its dump (nested emulation is slow).
const TIMEOUT_US: u64 = 30_000_000;

struct State {
    client: QubesDbClient<MappedPage>,
    hv: Hypervisor,
}

struct Cell(UnsafeCell<Option<State>>);

// SAFETY: set once by `start` during single-threaded boot; afterwards only the main loop (one thread,
// never an interrupt handler) reaches it, never reentrantly.
unsafe impl Sync for Cell {}

static STATE: Cell = Cell(UnsafeCell::new(None));

fn state() -> Option<&'static mut State> {
    // SAFETY: see `Cell`: one thread, and no caller holds the reference across another call here.
    unsafe { (*STATE.0.get()).as_mut() }
}

fn log_changes(changes: &[Change], client: &QubesDbClient<MappedPage>) {
    for change in changes {
        match change {
            Change::Set(key) => {
                info!(
                    "qubesdb: {key} = {:?}",
                    client.db().get(key).unwrap_or_default()
                )
            }
            Change::Removed(key) => info!("qubesdb: {key} removed"),
            Change::Synced => info!(
                "qubesdb: initial dump complete ({} keys)",
                client.db().entries().count()
            ),
            Change::FirewallCommitted(ip) => {
                let rules = client.db().firewall_rules(ip).unwrap_or_default();
                info!(
                    "qubesdb: firewall rules for {ip} complete ({} entries)",
                    rules.len()
                );
                for (name, value) in rules {
                    info!("qubesdb: firewall {ip} {name}: {value}");
                }
            }
        }
    }
}

/// Connects to dom0's QubesDB (we are domain `me`) and waits for its dump; logs and keeps it.
pub fn start(mut hv: Hypervisor, store: &mut impl Store, me: drivers::xen::DomId) {
    let t0 = clock::now_us();
    let mut now = clock::now_us;
    let mut idle = || crate::idle::wait_until(clock::now_us() + 1_000);
    match QubesDbClient::connect(&mut hv, store, me, &mut now, TIMEOUT_US, &mut idle) {
        Ok((client, changes)) => {
            info!(
                "qubesdb: connected to dom0 (vchan port 111, event channel {}) in {} ms",
                client.port(),
                (clock::now_us() - t0) / 1000
            );
            log_changes(&changes, &client);
            // SAFETY: single-threaded boot; nothing has borrowed STATE yet (see `Cell`).
            unsafe { *STATE.0.get() = Some(State { client, hv }) };
        }
        Err(e) => warn!("qubesdb: {e}; running without it"),
    }
}

/// Applies and logs dom0's updates; returns the clients whose firewall rules dom0 committed. Cheap
/// when none came; called on every main-loop pass.
pub fn poll() -> Vec<String> {
    let Some(s) = state() else {
        return Vec::new();
    };
    match s.client.poll(&mut s.hv) {
        Ok(changes) => {
            log_changes(&changes, &s.client);
            changes
                .into_iter()
                .filter_map(|c| match c {
                    Change::FirewallCommitted(ip) => Some(ip),
                    _ => None,
                })
                .collect()
        }
        Err(e) => {
            warn!("qubesdb: {e}; disconnected (the last rules stay)");
            // Keep the database for the accessors, stop polling a broken stream.
            s.client.close(&mut s.hv);
            Vec::new()
        }
    }
}

/// True once connected to dom0's QubesDB (`--qubesdb`): client ports then take their firewall rules
/// from it, and fail closed without them.
pub fn connected() -> bool {
    state().is_some()
}

/// Writes `/qubes-iptables-error` (Qubes' way to tell dom0 a client's rules were refused).
pub fn report_error(text: &str) {
    let Some(s) = state() else { return };
    if let Err(e) = s.client.write(&mut s.hv, "/qubes-iptables-error", text) {
        warn!("qubesdb: writing /qubes-iptables-error: {e}");
    }
}

/// The uplink configuration from QubesDB, when connected and `/qubes-ip` is set.
pub fn uplink() -> Option<Uplink> {
    state()?.client.db().uplink()
}

/// The firewall rules for client `ip` as dom0 last completed them: raw `(name, value)` pairs (`"0000"`,
/// `"action=accept proto=tcp dstports=443-443"`; `"policy"`, `"drop"`).
pub fn firewall_rules(ip: &str) -> Option<Vec<(String, String)>> {
    state()?.client.db().firewall_rules(ip).map(<[_]>::to_vec)
}
