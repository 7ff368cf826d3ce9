//! The network's start: reads and fingerprints the config disk the platform found, decides the role the
//! config asks for (router or server) and brings that network up on the platform's NICs.
//!
//! Layer: kernel glue over `platform`. Runs once at boot, before the main loop; it decides nothing about
//! NIC roles (that is `net`) or about the config's meaning (that is `config_disk` and `openvpn`).

use alloc::string::String;
use core::fmt::{self, Write};

use drivers::clock;
use oxvpn_kernel::args::BootArgs;
use oxvpn_kernel::exit::ExitCode;
use rand_core::RngCore;
use smoltcp::time::Instant;

use crate::entropy::KernelRng;
use crate::net::Network;
use crate::platform::{self, exit, DiskError};
use crate::serve::{self, ServerNet};

/// What the network does, decided by the config: route a LAN through a tunnel, or serve clients.
pub enum NetRole {
    /// The router (client) role: two NICs, the OpenVPN client and the LAN router.
    Router(Network),
    /// The server role: the public NIC and the OpenVPN server.
    Server(ServerNet),
}

/// Why the config disk was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigDiskError {
    /// The disk could not be read.
    Read(DiskError),
    /// The bytes are not a config disk (empty, too large, not text).
    Format(config_disk::DiskError),
}

impl fmt::Display for ConfigDiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "{e}"),
            Self::Format(e) => write!(f, "{e}"),
        }
    }
}

/// With `--qubesdb` and no `--ipv4`: the public address, gateway and resolver from QubesDB's
/// `/qubes-ip`, `/qubes-gateway`, `/qubes-primary-dns`.
fn apply_qubesdb(args: &mut BootArgs) {
    if !args.qubesdb || args.ipv4.is_some() {
        return;
    }
    let Some(up) = platform::qubesdb_uplink() else {
        log::warn!("qubesdb: no /qubes-ip: the public address comes from DHCP");
        return;
    };
    args.ipv4 = Some(oxvpn_kernel::args::Ipv4Cidr {
        address: up.address,
        prefix_len: up.prefix_len,
    });
    args.ipv4_gateway = args.ipv4_gateway.or(up.gateway);
    args.resolver = args.resolver.or(up.dns);
    args.dhcp = Some(false);
    log::info!(
        "qubesdb: public {}/{} gateway {:?} resolver {:?} (from /qubes-ip, /qubes-gateway, /qubes-primary-dns)",
        up.address,
        up.prefix_len,
        up.gateway,
        up.dns
    );
}

/// The boot step after the CPU and memory: find the devices, read and fingerprint the config disk, and
/// bring up both network sides. Exits with [`ExitCode::BadConfig`] when a config disk is present but
/// unusable. Returns the config text (if there was a disk) and the network: a server config serves on
/// the first NIC; otherwise the router needs two NICs.
pub fn start(cmdline: &str, args: &mut BootArgs) -> (Option<String>, Option<NetRole>) {
    let devices = platform::bring_up(cmdline);
    apply_qubesdb(args);
    let config = match devices.disk {
        None => {
            log::warn!(
                "config disk: none found (attach the .ovpn as a virtio-blk disk, or a Xen vbd)"
            );
            None
        }
        Some(disk) => match disk.map_err(ConfigDiskError::Read).and_then(|d| {
            config_disk::read(&d)
                .map(String::from)
                .map_err(ConfigDiskError::Format)
        }) {
            Ok(text) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
                let mut hex = String::with_capacity(64);
                for byte in digest.as_ref() {
                    let _ = write!(hex, "{byte:02x}");
                }
                log::info!("config: sha256={hex} bytes={}", text.len());
                Some(text)
            }
            Err(e) => {
                log::error!("config disk: {e}");
                log::error!("exit: {}", ExitCode::BadConfig);
                exit(ExitCode::BadConfig)
            }
        },
    };
    let server = config.as_deref().and_then(|text| {
        let parsed = openvpn::config::parse(text, &mut openvpn::config::InlineOnly).ok()?;
        serve::is_server_config(&parsed.config).then_some(parsed)
    });
    if let Some(parsed) = server {
        for warning in &parsed.warnings {
            log::warn!("config: {warning}");
        }
        if devices.nics.is_empty() {
            log::warn!("no NIC found: server not started");
            return (config, None);
        }
        let net = ServerNet::new(
            devices.nics,
            args,
            &parsed.config,
            devices.all_interrupts_routed,
        );
        return (config, Some(NetRole::Server(net)));
    }
    if devices.nics.len() < 2 {
        log::warn!(
            "{} NIC(s) found, two are needed: network not started",
            devices.nics.len()
        );
        return (config, None);
    }
    let now = Instant::from_micros(i64::try_from(clock::now_us()).unwrap_or(i64::MAX));
    let seed = KernelRng.next_u64();
    match Network::new(devices.nics, args, now, seed, devices.all_interrupts_routed) {
        Ok(network) => (config, Some(NetRole::Router(network))),
        Err(e) => {
            log::error!("{e}");
            log::error!("exit: {}", ExitCode::BadArguments);
            exit(ExitCode::BadArguments)
        }
    }
}
