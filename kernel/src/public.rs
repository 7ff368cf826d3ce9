//! The public (service) side, shared by the router and the server: the NIC, its smoltcp interface and
//! sockets, its address (static from the boot arguments or by DHCPv4), and the hook through which a fast
//! path takes received frames before smoltcp sees them.
//!
//! Layer: kernel glue; it never waits. The router's tunnel and the server put their sockets here.

use alloc::vec::Vec;

use drivers::netdev::{FrameTx, NetDevice};
use oxvpn_kernel::args::{BootArgs, Ipv4Cidr as ArgCidr};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{Checksum, Device, DeviceCapabilities, TxToken};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

pub use crate::platform::Nic;
use crate::platform::{NicRx, NicTx};

fn cidr(c: ArgCidr) -> Ipv4Cidr {
    Ipv4Cidr::new(c.address, c.prefix_len)
}

/// The service NIC with its smoltcp interface, its sockets (the tunnel's or the server's) and its
/// address (static or DHCPv4).
pub struct PublicSide {
    /// The NIC.
    pub device: Nic,
    /// Its smoltcp interface.
    pub iface: Interface,
    /// The sockets on it.
    pub sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    leased: bool,
    /// The DNS server of the public DHCP lease (for `remote` host names without `--resolver`).
    pub dhcp_dns: Option<core::net::Ipv4Addr>,
}

use crate::fastpath::FastPath;

/// The public NIC as smoltcp sees it. Received frames are offered to the tunnel's fast path first
/// (`Tunnel::take_frame`: the server's datagrams are decrypted in the receive buffer); smoltcp gets the
/// rest. smoltcp leaves UDP checksums on transmit to this device, which fills them in eight bytes a step
/// (`router::outer::fill_udp_checksum`) instead of smoltcp's two; it still verifies received ones.
struct PublicDevice<'a, 'f> {
    nic: &'a mut Nic,
    take: FastPath<'f>,
}

impl Device for PublicDevice<'_, '_> {
    type RxToken<'b>
        = NicRx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = ChecksumTx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.nic.receive_unless(&mut *self.take)?;
        Some((rx, ChecksumTx(tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        self.nic.transmit().map(ChecksumTx)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.nic.capabilities();
        caps.checksum.udp = Checksum::Rx;
        caps
    }
}

/// A public NIC transmit token that fills in the UDP checksum smoltcp left out.
struct ChecksumTx<'a>(NicTx<'a>);

impl TxToken for ChecksumTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, len: usize, f: F) -> R {
        self.0.emit(len, |frame| {
            let result = f(frame);
            router::outer::fill_udp_checksum(frame);
            result
        })
    }
}

impl PublicSide {
    /// Creates the interface on `device` with the address the boot arguments give (`--ipv4` and
    /// `--ipv4-gateway`, or DHCPv4), and logs it.
    pub fn new(mut device: Nic, args: &BootArgs, now: Instant, seed: u64) -> Self {
        let mac = EthernetAddress(device.mac_address());
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed;
        // The interface keeps the capabilities it is created with: create it through the wrapper.
        let iface = Interface::new(
            config,
            &mut PublicDevice {
                nic: &mut device,
                take: &mut |_| false,
            },
            now,
        );
        let storage: Vec<SocketStorage<'static>> = (0..2).map(|_| SocketStorage::EMPTY).collect();
        let mut public = Self {
            device,
            iface,
            sockets: SocketSet::new(storage),
            dhcp: None,
            leased: false,
            dhcp_dns: None,
        };
        let static_ipv4 = args.ipv4.map(cidr);
        let use_dhcp = args.dhcp.unwrap_or(static_ipv4.is_none());
        match static_ipv4.filter(|_| !use_dhcp) {
            Some(cidr) => {
                public.iface.update_ip_addrs(|addrs| {
                    let _ = addrs.push(IpCidr::Ipv4(cidr));
                });
                if let Some(gateway) = args.ipv4_gateway {
                    let _ = public.iface.routes_mut().add_default_ipv4_route(gateway);
                }
                match args.ipv4_gateway {
                    Some(gw) => log::info!("public {cidr} gateway {gw} (static)"),
                    None => log::info!("public {cidr} (static, no gateway)"),
                }
            }
            None => {
                public.dhcp = Some(public.sockets.add(dhcpv4::Socket::new()));
                log::info!("public address by DHCPv4");
            }
        }
        public
    }

    /// Applies the DHCP client's news (a lease: address, gateway, DNS; a lost lease). Returns true when a
    /// new address was configured: poll the interface again to answer ARP for it at once.
    pub fn poll_dhcp(&mut self) -> bool {
        let Some(handle) = self.dhcp else {
            return false;
        };
        match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            Some(dhcpv4::Event::Configured(config)) => {
                let cidr = config.address;
                self.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                    let _ = addrs.push(IpCidr::Ipv4(cidr));
                });
                let routes = self.iface.routes_mut();
                routes.remove_default_ipv4_route();
                match config.router {
                    Some(router) => {
                        let _ = routes.add_default_ipv4_route(router);
                        log::info!(
                            "dhcp lease {cidr} gateway {router} from {}",
                            config.server.address
                        );
                    }
                    None => log::info!(
                        "dhcp lease {cidr} (no gateway) from {}",
                        config.server.address
                    ),
                }
                self.dhcp_dns = config.dns_servers.first().copied();
                self.leased = true;
                true
            }
            Some(dhcpv4::Event::Deconfigured) => {
                self.iface.update_ip_addrs(|addrs| addrs.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                if core::mem::take(&mut self.leased) {
                    log::info!("dhcp lease lost");
                }
                false
            }
            None => false,
        }
    }

    /// Runs smoltcp over the NIC, `take` getting each received frame first.
    pub fn poll(&mut self, now: Instant, take: FastPath<'_>) {
        // Acknowledge first: an event after this raises a new edge (see drivers::ioapic).
        self.device.ack_interrupt();
        let mut device = PublicDevice {
            nic: &mut self.device,
            take,
        };
        self.iface.poll(now, &mut device, &mut self.sockets);
        self.device.refill();
    }

    /// When smoltcp needs a poll again (`Some(now)` while received frames wait).
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        if self.device.rx_pending() {
            return Some(now);
        }
        self.iface.poll_at(now, &self.sockets)
    }
}
