//! Netback vifs of client domains (a Qubes-style driver domain's downstream), managed from the main loop.
//!
//! Layer: kernel glue. xenstore's `backend/vif` is watched (on the control connection, see
//! [`super::xen::shutdown_request`]); each watch event marks the vifs dirty and the next pass lists
//! `backend/vif/<domid>/<devid>`, takes on new ones (`drivers::xen::netback`) and drives every handshake.
//! A vif that connects is handed to the router ([`ClientPorts::attach`]: a client port, served with the
//! other ports); its handshake is still followed here, and when it is gone the router drops the port.
//! Without a router (the server role) vifs are not taken on.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use drivers::netdev::NetDevice;
use drivers::xen::netback::{self, format_mac, Netback, NetbackState};
use drivers::xen::{DomId, Hypervisor, Store};
use log::{info, warn};

/// The watch token for `backend/vif` and the client frontends' states.
pub const TOKEN: &str = "netback";

/// Where connected vifs go: the router's client ports (`net::Network`).
pub trait ClientPorts {
    /// Takes a connected vif as a client port; gives it back when it cannot (no address, no room).
    fn attach(&mut self, net: Box<Netback<Hypervisor>>) -> Result<(), Box<Netback<Hypervisor>>>;
    /// Runs `f` over the attached vifs (their handshakes: a vif closes, reconnects or goes).
    fn each_attached(&mut self, f: &mut dyn FnMut(&mut Netback<Hypervisor>));
    /// Drops the ports of the attached vifs that are gone; returns their names.
    fn detach_gone(&mut self) -> Vec<String>;
    /// dom0 committed new firewall rules for client `ip` (QubesDB).
    fn firewall_changed(&mut self, ip: &str);
}

/// A vif being set up (not yet handed to the router).
struct Pending {
    net: Box<Netback<Hypervisor>>,
    key: (DomId, u32),
}

/// A vif the router holds.
struct Attached {
    key: (DomId, u32),
    name: String,
}

/// All client vifs (at most `netback::MAX_VIFS`) and the frontend state paths watched for them.
pub struct Vifs {
    hv: Hypervisor,
    pending: Vec<Pending>,
    attached: Vec<Attached>,
    watched: Vec<((DomId, u32), String)>,
    /// A watch fired since the last handshake pass.
    pub dirty: bool,
}

impl Vifs {
    pub fn new(hv: Hypervisor) -> Self {
        Self {
            hv,
            pending: Vec::new(),
            attached: Vec::new(),
            watched: Vec::new(),
            dirty: true,
        }
    }

    fn unwatch<S: WatchStore>(&mut self, store: &mut S, key: (DomId, u32)) {
        self.watched.retain(|(k, path)| {
            if *k == key {
                store.unwatch_path(path);
            }
            *k != key
        });
    }

    /// The handshake pass: new vifs, state changes, connected vifs to `ports`, vifs gone.
    pub fn rescan<S: Store + WatchStore>(&mut self, store: &mut S, ports: &mut dyn ClientPorts) {
        self.dirty = false;
        for key in netback::list_vifs(store) {
            let known = self.pending.iter().any(|v| v.key == key)
                || self.attached.iter().any(|v| v.key == key);
            if known || self.pending.len() + self.attached.len() >= netback::MAX_VIFS {
                continue;
            }
            match Netback::new(self.hv, store, key.0, key.1) {
                Ok(net) => {
                    let path = net.paths().front("state");
                    if store.watch_path(&path) {
                        self.watched.push((key, path));
                    }
                    info!(
                        "netback {}: client domain {} mac {} ip {}: InitWait",
                        net.name(),
                        key.0,
                        format_mac(net.client_mac()),
                        net.client_ip().unwrap_or("unknown")
                    );
                    self.pending.push(Pending {
                        net: Box::new(net),
                        key,
                    });
                }
                Err(e) => warn!("netback vif{}.{}: {e}", key.0, key.1),
            }
        }
        ports.each_attached(&mut |net| {
            if net.poll(store) == NetbackState::Connected {
                net.set_interrupts(true);
            }
        });
        for name in ports.detach_gone() {
            if let Some(i) = self.attached.iter().position(|a| a.name == name) {
                let a = self.attached.swap_remove(i);
                self.unwatch(store, a.key);
            }
        }
        let mut still = Vec::with_capacity(self.pending.len());
        for mut vif in core::mem::take(&mut self.pending) {
            match vif.net.poll(store) {
                NetbackState::Gone => {
                    info!("netback {}: gone before it connected", vif.net.name());
                    self.unwatch(store, vif.key);
                }
                NetbackState::Connected => {
                    vif.net.set_interrupts(true);
                    let name = String::from(vif.net.name());
                    match ports.attach(vif.net) {
                        Ok(()) => self.attached.push(Attached { key: vif.key, name }),
                        Err(net) => {
                            // Kept (unserved) so its handshake still ends cleanly when it goes.
                            vif.net = net;
                            still.push(vif);
                        }
                    }
                }
                _ => still.push(vif),
            }
        }
        self.pending = still;
    }
}

/// No router: vifs are followed but never served.
pub struct NoPorts;

impl ClientPorts for NoPorts {
    fn attach(&mut self, net: Box<Netback<Hypervisor>>) -> Result<(), Box<Netback<Hypervisor>>> {
        Err(net)
    }
    fn each_attached(&mut self, _: &mut dyn FnMut(&mut Netback<Hypervisor>)) {}
    fn detach_gone(&mut self) -> Vec<String> {
        Vec::new()
    }
    fn firewall_changed(&mut self, _: &str) {}
}

/// What the vifs need of xenstore beyond [`Store`]: watches (the control connection's).
pub trait WatchStore {
    fn watch_path(&mut self, path: &str) -> bool;
    fn unwatch_path(&mut self, path: &str);
}

impl WatchStore for drivers::xen::xenstore::XenStore<drivers::xen::xenstore::RingTransport> {
    fn watch_path(&mut self, path: &str) -> bool {
        match self.watch(path, TOKEN) {
            Ok(()) => true,
            Err(e) => {
                warn!("netback: watching {path}: {e}");
                false
            }
        }
    }

    fn unwatch_path(&mut self, path: &str) {
        let _ = self.unwatch(path, TOKEN);
    }
}
