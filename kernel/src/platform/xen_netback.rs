//! Netback vifs of client domains (a Qubes-style driver domain's downstream), managed from the main loop.
//!
//! Layer: kernel glue. xenstore's `backend/vif` is watched (on the control connection, see
//! [`super::xen::shutdown_request`]); each watch event marks the vifs dirty and the next [`poll`] lists
//! `backend/vif/<domid>/<devid>`, takes on new ones (`drivers::xen::netback`), drives every handshake and
//! drops the vifs that are gone. Frames of connected vifs are served here too, until the router has ports
//! for them (another change): a stand-in that answers ARP for any address but the client's own (proxy ARP,
//! with the backend MAC) and ICMP echo requests sent to us, and logs the first frame of each client.

use alloc::vec::Vec;

use drivers::netdev::{FrameTx, NetDevice};
use drivers::xen::netback::{self, format_mac, Netback, NetbackState, BACKEND_MAC};
use drivers::xen::{DomId, Hypervisor, Store};
use log::{info, warn};

/// The watch token for `backend/vif` and the client frontends' states.
pub const TOKEN: &str = "netback";

/// One client vif and what the stand-in has seen of it.
pub struct Vif {
    pub net: Netback<Hypervisor>,
    key: (DomId, u32),
    watched: Option<alloc::string::String>,
    frames: u64,
    answered: u64,
}

/// All client vifs (at most `netback::MAX_VIFS`).
pub struct Vifs {
    hv: Hypervisor,
    vifs: Vec<Vif>,
    /// A watch fired since the last handshake pass.
    pub dirty: bool,
}

impl Vifs {
    pub fn new(hv: Hypervisor) -> Self {
        Self {
            hv,
            vifs: Vec::new(),
            dirty: true,
        }
    }

    /// The handshake pass: new vifs, state changes, vifs gone.
    pub fn rescan<S: Store + WatchStore>(&mut self, store: &mut S) {
        self.dirty = false;
        for key in netback::list_vifs(store) {
            if self.vifs.iter().any(|v| v.key == key) || self.vifs.len() >= netback::MAX_VIFS {
                continue;
            }
            match Netback::new(self.hv, store, key.0, key.1) {
                Ok(net) => {
                    let path = net.paths().front("state");
                    let watched = store.watch_path(&path).then_some(path);
                    info!(
                        "netback {}: client domain {} mac {} ip {}: InitWait",
                        net.name(),
                        key.0,
                        format_mac(net.client_mac()),
                        net.client_ip().unwrap_or("unknown")
                    );
                    self.vifs.push(Vif {
                        net,
                        key,
                        watched,
                        frames: 0,
                        answered: 0,
                    });
                }
                Err(e) => warn!("netback vif{}.{}: {e}", key.0, key.1),
            }
        }
        for vif in &mut self.vifs {
            if vif.net.poll(store) == NetbackState::Connected {
                vif.net.set_interrupts(true);
            }
        }
        self.vifs.retain_mut(|vif| {
            if vif.net.state() != NetbackState::Gone {
                return true;
            }
            if let Some(path) = vif.watched.take() {
                store.unwatch_path(&path);
            }
            let s = vif.net.stats();
            info!(
                "netback {}: gone ({} frames from the client, {} to it, {} answered, {} errors, {} dropped)",
                vif.net.name(),
                s.rx_frames,
                s.tx_frames,
                vif.answered,
                s.rx_errors,
                s.tx_dropped
            );
            false
        });
    }

    /// Serves the connected vifs' frames (bounded per call).
    pub fn serve(&mut self) {
        for vif in &mut self.vifs {
            if !vif.net.is_connected() {
                continue;
            }
            vif.net.ack_interrupt();
            for _ in 0..4 {
                let mut handled = 0;
                while handled < 64 {
                    let Some((frame, mut tx)) = vif.net.receive_mut() else {
                        break;
                    };
                    handled += 1;
                    vif.frames += 1;
                    if vif.frames == 1 {
                        info!(
                            "netback vif{}.{}: first frame from the client: {} bytes, ethertype {:#06x}",
                            vif.key.0,
                            vif.key.1,
                            frame.len(),
                            u16::from_be_bytes([
                                frame.get(12).copied().unwrap_or(0),
                                frame.get(13).copied().unwrap_or(0)
                            ])
                        );
                    }
                    if let Some(len) = answer(frame) {
                        if tx.send(frame.get(..len).unwrap_or(&[])) {
                            vif.answered += 1;
                            if vif.answered == 1 || vif.answered == 3 {
                                info!(
                                    "netback vif{}.{}: answered {} frames (ARP, ping)",
                                    vif.key.0, vif.key.1, vif.answered
                                );
                            }
                        }
                    }
                }
                vif.net.flush();
                vif.net.set_interrupts(true);
                if handled == 0 && !vif.net.rx_pending() {
                    break;
                }
            }
        }
    }
}

/// What the vifs need of xenstore beyond [`Store`]: watches (the control connection's).
pub trait WatchStore {
    fn watch_path(&mut self, path: &str) -> bool;
    fn unwatch_path(&mut self, path: &str);
}

fn be16(frame: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Rewrites `frame` into the answer to it, where it lies: an ARP reply for an ARP request (any target
/// but the sender's own address), an ICMP echo reply for an echo request sent to our MAC. Returns the
/// answer's length, or None when there is nothing to answer.
pub fn answer(frame: &mut [u8]) -> Option<usize> {
    let src_mac: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    match be16(frame, 12)? {
        0x0806 => {
            let arp = frame.get_mut(14..42)?;
            // Ethernet/IPv4 request; not gratuitous, not a duplicate-address probe (sender 0.0.0.0).
            if arp[0..8] != [0, 1, 8, 0, 6, 4, 0, 1]
                || arp[14..18] == arp[24..28]
                || arp[14..18] == [0; 4]
            {
                return None;
            }
            let sender: [u8; 10] = arp[8..18].try_into().ok()?;
            let target_ip: [u8; 4] = arp[24..28].try_into().ok()?;
            arp[7] = 2;
            arp[8..14].copy_from_slice(&BACKEND_MAC);
            arp[14..18].copy_from_slice(&target_ip);
            arp[18..28].copy_from_slice(&sender);
        }
        0x0800 => {
            if frame.get(0..6)? != BACKEND_MAC {
                return None;
            }
            let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
            let total = usize::from(be16(frame, 16)?);
            if frame.get(14)? >> 4 != 4 || ihl < 20 || *frame.get(23)? != 1 || total < ihl + 8 {
                return None;
            }
            let end = 14 + total;
            let icmp = frame.get_mut(14 + ihl..end)?;
            if icmp[0] != 8 {
                return None;
            }
            icmp[0] = 0;
            icmp[2..4].fill(0);
            let sum = checksum(icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            let ip = frame.get_mut(14..34)?;
            let (src, dst): ([u8; 4], [u8; 4]) =
                (ip[12..16].try_into().ok()?, ip[16..20].try_into().ok()?);
            ip[12..16].copy_from_slice(&dst);
            ip[16..20].copy_from_slice(&src);
            frame.get_mut(0..6)?.copy_from_slice(&src_mac);
            frame.get_mut(6..12)?.copy_from_slice(&BACKEND_MAC);
            return Some(end.max(60).min(frame.len()));
        }
        _ => return None,
    }
    frame.get_mut(0..6)?.copy_from_slice(&src_mac);
    frame.get_mut(6..12)?.copy_from_slice(&BACKEND_MAC);
    Some(42.max(frame.len().min(60)))
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
