//! The client address pool: one IPv4 address (subnet) or one /30 (net30) per client, plus an IPv6
//! address at the same index, bounded by the pool and `max-clients`.
//!
//! Sticky: a freed slot remembers the common name that held it, so the same CN gets the same address
//! back; when no never-used slot is left, the least recently released remembered slot is reused (LRU over
//! a logical counter, never a clock). Memory is one small record per slot, at most [`MAX_POOL_SLOTS`].
//!
//! Layer: a data structure; no I/O, no clock.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::config::ServerSettings;
use crate::config::Topology;

/// The most slots a pool keeps (a /16 in topology subnet); a larger pool uses its first addresses.
pub const MAX_POOL_SLOTS: u32 = 65_536;

/// The caller's handle of one client session.
pub type ClientId = u64;

/// The addresses of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The slot index (stable for as long as the lease lives).
    pub slot: u32,
    /// The client's tunnel IPv4 address.
    pub ipv4: Ipv4Addr,
    /// net30: the server-side end of the client's /30 (pushed as the `ifconfig` remote).
    pub ipv4_peer: Option<Ipv4Addr>,
    /// The client's tunnel IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
}

/// A successful allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// A lease for the new client.
    New(Lease),
    /// Without `duplicate-cn`: the common name was connected already; its lease moves to the new client
    /// and the caller must drop the session `previous`.
    TakenOver {
        /// The lease, now the new client's.
        lease: Lease,
        /// The session that held it.
        previous: ClientId,
    },
}

impl Allocation {
    /// The lease either way.
    pub fn lease(&self) -> Lease {
        match *self {
            Allocation::New(lease) | Allocation::TakenOver { lease, .. } => lease,
        }
    }
}

/// Why no address could be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// `max-clients` clients are connected.
    MaxClients,
    /// Every address of the pool is in use.
    Exhausted,
    /// The config has no pool (`server … nopool`).
    NoPool,
    /// The client id holds a lease already.
    AlreadyLeased,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolError::MaxClients => "max-clients reached",
            PoolError::Exhausted => "address pool exhausted",
            PoolError::NoPool => "no address pool configured",
            PoolError::AlreadyLeased => "client already has an address",
        })
    }
}

#[derive(Debug, Clone, Default)]
struct Slot {
    /// The session using the slot.
    owner: Option<ClientId>,
    /// The common name that holds (or last held) the slot.
    common_name: Option<String>,
    /// When the slot was last released (logical time), for LRU reuse.
    released_at: u64,
}

/// The address pool of one server.
#[derive(Debug, Clone)]
pub struct AddressPool {
    topology: Topology,
    /// First address (subnet) or first /30 base (net30).
    start: u32,
    ipv6_start: Option<u128>,
    slots: Vec<Slot>,
    max_clients: u32,
    in_use: u32,
    duplicate_cn: bool,
    clock: u64,
}

impl AddressPool {
    /// A pool for `settings` (its pool range, topology, IPv6 pool, `max-clients`, `duplicate-cn`).
    pub fn new(settings: &ServerSettings) -> Self {
        let t = &settings.ipv4;
        let (start, count) = match t.pool {
            None => (0, 0),
            Some((first, last)) => {
                let (first, last) = (u32::from(first), u32::from(last));
                match t.topology {
                    Topology::Net30 => {
                        // Whole /30 blocks inside the range.
                        let base = first.saturating_add(3) & !3;
                        let blocks = last.saturating_sub(base).saturating_add(1) / 4;
                        (base, if last >= base { blocks } else { 0 })
                    }
                    _ => (first, last.saturating_sub(first).saturating_add(1)),
                }
            }
        };
        let mut count = count.min(MAX_POOL_SLOTS);
        if let Some(v6) = &settings.ipv6 {
            count = count.min(v6.pool_size);
        }
        AddressPool {
            topology: t.topology,
            start,
            ipv6_start: settings.ipv6.map(|v6| u128::from(v6.pool_start)),
            slots: alloc::vec![Slot::default(); usize::try_from(count).unwrap_or(0)],
            max_clients: settings.max_clients,
            in_use: 0,
            duplicate_cn: settings.duplicate_cn,
            clock: 0,
        }
    }

    /// How many slots the pool has.
    pub fn capacity(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// How many clients hold a lease.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    fn lease_at(&self, slot: u32) -> Lease {
        let (ipv4, ipv4_peer) = match self.topology {
            Topology::Net30 => {
                let base = self.start.wrapping_add(slot.wrapping_mul(4));
                (
                    Ipv4Addr::from(base.wrapping_add(2)),
                    Some(Ipv4Addr::from(base.wrapping_add(1))),
                )
            }
            _ => (Ipv4Addr::from(self.start.wrapping_add(slot)), None),
        };
        Lease {
            slot,
            ipv4,
            ipv4_peer,
            ipv6: self
                .ipv6_start
                .map(|s| Ipv6Addr::from(s.wrapping_add(u128::from(slot)))),
        }
    }

    fn index(i: usize) -> u32 {
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    /// Gives `client` (common name `common_name`) an address: its remembered one when free; without
    /// `duplicate-cn` the one its CN holds now (taken over); else the lowest never-used slot, else the
    /// least recently released one.
    pub fn allocate(
        &mut self,
        common_name: &str,
        client: ClientId,
    ) -> Result<Allocation, PoolError> {
        if self.slots.is_empty() {
            return Err(PoolError::NoPool);
        }
        if self.slots.iter().any(|s| s.owner == Some(client)) {
            return Err(PoolError::AlreadyLeased);
        }
        let same_cn = |s: &Slot| s.common_name.as_deref() == Some(common_name);
        if !self.duplicate_cn {
            if let Some(i) = self
                .slots
                .iter()
                .position(|s| same_cn(s) && s.owner.is_some())
            {
                let slot = self.slots.get_mut(i).ok_or(PoolError::Exhausted)?;
                let previous = slot.owner.replace(client).ok_or(PoolError::Exhausted)?;
                return Ok(Allocation::TakenOver {
                    lease: self.lease_at(Self::index(i)),
                    previous,
                });
            }
        }
        if self.in_use >= self.max_clients {
            return Err(PoolError::MaxClients);
        }
        let free = |s: &Slot| s.owner.is_none();
        let chosen = self
            .slots
            .iter()
            .position(|s| free(s) && same_cn(s))
            .or_else(|| {
                self.slots
                    .iter()
                    .position(|s| free(s) && s.common_name.is_none())
            })
            .or_else(|| {
                self.slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| free(s))
                    .min_by_key(|(_, s)| s.released_at)
                    .map(|(i, _)| i)
            })
            .ok_or(PoolError::Exhausted)?;
        let slot = self.slots.get_mut(chosen).ok_or(PoolError::Exhausted)?;
        slot.owner = Some(client);
        if slot.common_name.as_deref() != Some(common_name) {
            slot.common_name = Some(String::from(common_name));
        }
        self.in_use = self.in_use.saturating_add(1);
        Ok(Allocation::New(self.lease_at(Self::index(chosen))))
    }

    /// Frees `client`'s lease; the slot remembers the common name for its next connection. Returns the
    /// freed lease (`None` when the client had none, e.g. after a takeover).
    pub fn release(&mut self, client: ClientId) -> Option<Lease> {
        let i = self.slots.iter().position(|s| s.owner == Some(client))?;
        self.clock = self.clock.wrapping_add(1);
        let clock = self.clock;
        let slot = self.slots.get_mut(i)?;
        slot.owner = None;
        slot.released_at = clock;
        self.in_use = self.in_use.saturating_sub(1);
        Some(self.lease_at(Self::index(i)))
    }

    /// `client`'s lease.
    pub fn lease_of(&self, client: ClientId) -> Option<Lease> {
        let i = self.slots.iter().position(|s| s.owner == Some(client))?;
        Some(self.lease_at(Self::index(i)))
    }

    /// Which client holds the tunnel address `addr` (for routing and anti-spoofing).
    pub fn owner_of(&self, addr: Ipv4Addr) -> Option<ClientId> {
        let a = u32::from(addr);
        let offset = a.checked_sub(self.start)?;
        let slot = match self.topology {
            // Any address of a client's /30 routes to it; its base and broadcast are never sources.
            Topology::Net30 => offset / 4,
            _ => offset,
        };
        self.slots.get(usize::try_from(slot).ok()?)?.owner
    }
}

#[cfg(test)]
mod tests;
