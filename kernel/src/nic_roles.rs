//! Which NIC plays which role: the service (public) side and the private (LAN) side.
//!
//! Layer: pure policy, tested on the host. MirageVPN's rule: the first virtio-net device is the service
//! side and the second the private side, unless `--service-mac=` / `--private-mac=` name them; naming one
//! gives the other role to the first remaining NIC.

use core::fmt;

use crate::args::Mac;

/// Why no role assignment exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleError {
    /// Fewer than two NICs were found.
    MissingNic {
        /// How many there are.
        found: usize,
    },
    /// The MAC given with this option belongs to no NIC.
    UnknownMac(&'static str),
    /// `--service-mac` and `--private-mac` name the same NIC.
    SameNic,
}

impl fmt::Display for RoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingNic { found } => write!(f, "need two virtio-net NICs, found {found}"),
            Self::UnknownMac(option) => write!(f, "{option} matches no NIC"),
            Self::SameNic => f.write_str("--service-mac and --private-mac name the same NIC"),
        }
    }
}

/// Picks `(service, private)` indices into `macs` (the NICs in discovery order).
pub fn pick(
    macs: &[[u8; 6]],
    service_mac: Option<Mac>,
    private_mac: Option<Mac>,
) -> Result<(usize, usize), RoleError> {
    if macs.len() < 2 {
        return Err(RoleError::MissingNic { found: macs.len() });
    }
    let find = |mac: Option<Mac>, option| match mac {
        Some(Mac(mac)) => macs
            .iter()
            .position(|m| *m == mac)
            .map(Some)
            .ok_or(RoleError::UnknownMac(option)),
        None => Ok(None),
    };
    let service = find(service_mac, "--service-mac")?;
    let private = find(private_mac, "--private-mac")?;
    let (service, private) = match (service, private) {
        (Some(s), Some(p)) => (s, p),
        (Some(s), None) => (s, usize::from(s == 0)),
        (None, Some(p)) => (usize::from(p == 0), p),
        (None, None) => (0, 1),
    };
    if service == private {
        return Err(RoleError::SameNic);
    }
    Ok((service, private))
}

/// The NICs of client-port mode (`--client`): indices into the NICs in discovery order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRoles {
    /// The service (public) NIC: `--service-mac`, else the first NIC no `--client` names.
    pub service: usize,
    /// The single LAN beside the clients, when `want_private` (`--private-ipv4`): `--private-mac`,
    /// else the first NIC left.
    pub private: Option<usize>,
    /// The NIC of each `--client`, in the arguments' order.
    pub clients: alloc::vec::Vec<usize>,
}

/// Picks the NICs for client-port mode: each `--client` MAC must name a NIC.
pub fn pick_clients(
    macs: &[[u8; 6]],
    service_mac: Option<Mac>,
    private_mac: Option<Mac>,
    want_private: bool,
    client_macs: &[Mac],
) -> Result<ClientRoles, RoleError> {
    let position = |mac: Mac, option| {
        macs.iter()
            .position(|m| *m == mac.0)
            .ok_or(RoleError::UnknownMac(option))
    };
    let clients = client_macs
        .iter()
        .map(|&mac| position(mac, "--client"))
        .collect::<Result<alloc::vec::Vec<_>, _>>()?;
    let free = |taken: &[usize]| (0..macs.len()).find(|i| !taken.contains(i));
    let service = match service_mac {
        Some(mac) => position(mac, "--service-mac")?,
        None => free(&clients).ok_or(RoleError::MissingNic { found: macs.len() })?,
    };
    if clients.contains(&service) {
        return Err(RoleError::SameNic);
    }
    let private = if want_private {
        let mut taken = clients.clone();
        taken.push(service);
        let p = match private_mac {
            Some(mac) => position(mac, "--private-mac")?,
            None => free(&taken).ok_or(RoleError::MissingNic { found: macs.len() })?,
        };
        if taken.contains(&p) {
            return Err(RoleError::SameNic);
        }
        Some(p)
    } else {
        None
    };
    Ok(ClientRoles {
        service,
        private,
        clients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
    const B: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];
    const C: [u8; 6] = [0x52, 0x54, 0, 0, 0, 3];

    #[test]
    fn device_order_by_default() {
        assert_eq!(pick(&[A, B], None, None), Ok((0, 1)));
        assert_eq!(pick(&[A, B, C], None, None), Ok((0, 1)));
    }

    #[test]
    fn macs_override_the_order() {
        assert_eq!(pick(&[A, B], Some(Mac(B)), Some(Mac(A))), Ok((1, 0)));
        assert_eq!(pick(&[A, B, C], Some(Mac(C)), Some(Mac(B))), Ok((2, 1)));
    }

    #[test]
    fn one_mac_gives_the_other_role_to_the_first_remaining_nic() {
        assert_eq!(pick(&[A, B], Some(Mac(B)), None), Ok((1, 0)));
        assert_eq!(pick(&[A, B], None, Some(Mac(A))), Ok((1, 0)));
        assert_eq!(pick(&[A, B, C], None, Some(Mac(C))), Ok((0, 2)));
    }

    #[test]
    fn client_ports_by_mac() {
        const D: [u8; 6] = [0x52, 0x54, 0, 0, 0, 4];
        let roles = pick_clients(&[A, B, C, D], None, None, false, &[Mac(C), Mac(B)]).unwrap();
        assert_eq!(
            (roles.service, roles.private, roles.clients),
            (0, None, alloc::vec![2, 1])
        );
        let roles = pick_clients(&[A, B, C, D], None, None, true, &[Mac(A)]).unwrap();
        assert_eq!((roles.service, roles.private), (1, Some(2)));
        let roles = pick_clients(&[A, B, C], Some(Mac(C)), None, false, &[Mac(A)]).unwrap();
        assert_eq!(roles.service, 2);
        assert_eq!(
            pick_clients(&[A, B], None, None, false, &[Mac(D)]),
            Err(RoleError::UnknownMac("--client"))
        );
        assert_eq!(
            pick_clients(&[A, B], Some(Mac(A)), None, false, &[Mac(A)]),
            Err(RoleError::SameNic)
        );
        assert_eq!(
            pick_clients(&[A, B], None, None, true, &[Mac(B)]),
            Err(RoleError::MissingNic { found: 2 })
        );
        assert_eq!(
            pick_clients(&[A], None, None, false, &[Mac(A)]),
            Err(RoleError::MissingNic { found: 1 })
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            pick(&[A], None, None),
            Err(RoleError::MissingNic { found: 1 })
        );
        assert_eq!(
            pick(&[A, B], Some(Mac(C)), None),
            Err(RoleError::UnknownMac("--service-mac"))
        );
        assert_eq!(
            pick(&[A, B], None, Some(Mac(C))),
            Err(RoleError::UnknownMac("--private-mac"))
        );
        assert_eq!(
            pick(&[A, B], Some(Mac(A)), Some(Mac(A))),
            Err(RoleError::SameNic)
        );
    }
}
