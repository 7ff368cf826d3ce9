//! The two network sides: NIC roles, the public smoltcp interface (static or DHCPv4) and the private
//! NIC served by the `router` crate.
//!
//! Layer: kernel glue. It owns the interfaces and the devices and runs them when the main loop calls
//! [`Network::poll`]; it never waits, and [`Network::poll_at`] tells the loop how long it may sleep.
//!
//! The private NIC's frames go to the `router` crate (ARP, ICMP echo, DHCP and DNS for the LAN, and
//! forwarding once the tunnel is up); the public NIC is a smoltcp interface. Until the OpenVPN engine
//! joins, packets the router sends toward the tunnel are dropped here.

use alloc::vec::Vec;
use core::fmt;

use crate::platform::NicTx;
use drivers::clock;
use drivers::netdev::{FrameTx, NetDevice};
use drivers::virtio::net::QUEUE_SIZE;
use oxvpn_kernel::args::{BootArgs, Ipv4Cidr as ArgCidr};
use oxvpn_kernel::nic_roles::{self, RoleError};
use router::outer::UdpFlow;
use router::{PortId, Router, RouterConfig, Sink};
use smoltcp::iface::SocketSet;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, Ipv4Cidr};

use crate::entropy::KernelRng;
use crate::public::{Nic, PublicSide};
use crate::tunnel::Tunnel;

/// Why the network could not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// The NICs could not be given their roles.
    Roles(RoleError),
    /// `--private-ipv4` is required.
    NoPrivateAddress,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Roles(e) => write!(f, "{e}"),
            Self::NoPrivateAddress => f.write_str("--private-ipv4=CIDR is required"),
        }
    }
}

fn cidr(c: ArgCidr) -> Ipv4Cidr {
    Ipv4Cidr::new(c.address, c.prefix_len)
}

/// Where the LAN's packets for the tunnel go: the tunnel, its sockets and, for the fast path, the public
/// NIC and the tunnel's UDP flow on it.
struct TunnelOut<'a> {
    tunnel: &'a mut Tunnel,
    sockets: &'a mut SocketSet<'static>,
    public: &'a mut Nic,
    flow: Option<UdpFlow>,
}

/// The router's output while it serves a private NIC: LAN frames (the router's one port, this NIC)
/// into the NIC's transmit queue, packets toward the tunnel to `to_tunnel`.
pub(crate) struct LanTx<'a, 'b, T: FnMut(&[u8])> {
    tx: Option<&'a mut NicTx<'b>>,
    to_tunnel: &'a mut T,
}

impl<'a, 'b, T: FnMut(&[u8])> LanTx<'a, 'b, T> {
    pub(crate) fn new(tx: Option<&'a mut NicTx<'b>>, to_tunnel: &'a mut T) -> Self {
        Self { tx, to_tunnel }
    }
}

impl<T: FnMut(&[u8])> Sink for LanTx<'_, '_, T> {
    fn lan_frame(&mut self, _port: PortId, frame: &[u8]) {
        if let Some(tx) = self.tx.as_deref_mut() {
            tx.send(frame);
        }
    }

    fn tunnel_packet(&mut self, packet: &[u8]) {
        (self.to_tunnel)(packet);
    }
}

/// Serves a private NIC as the router's port [`PortId::FIRST`] (both roles): at most one queue's worth
/// of received frames per pass, so a flood on the LAN cannot starve the public side, then the router's
/// timers. The router rewrites forwarded packets in the receive buffer and gives them to `to_tunnel`.
pub(crate) fn serve_lan(
    device: &mut Nic,
    router: &mut Router,
    now: Instant,
    to_tunnel: &mut impl FnMut(&[u8]),
) {
    device.ack_interrupt();
    for _ in 0..QUEUE_SIZE {
        let Some((frame, mut tx)) = device.receive_mut() else {
            break;
        };
        let mut sink = LanTx {
            tx: Some(&mut tx),
            to_tunnel: &mut *to_tunnel,
        };
        router.handle_lan_frame_in_place(PortId::FIRST, now, frame, &mut sink);
    }
    if router.poll_at().is_some_and(|at| at <= now) {
        let mut tx = device.transmit();
        router.tick(
            now,
            &mut LanTx {
                tx: tx.as_mut(),
                to_tunnel,
            },
        );
    }
    device.refill();
}

/// The private NIC and the router that answers on it.
struct PrivateSide {
    device: Nic,
    router: Router,
}

impl PrivateSide {
    fn poll(&mut self, now: Instant, mut tunnel: Option<TunnelOut<'_>>) {
        let Self { device, router } = self;
        let now_us = u64::try_from(now.total_micros()).unwrap_or(0);
        // The tunnel seals what the router forwards in a transmit buffer of the public NIC (one copy,
        // see `Tunnel::send_packet`); without a tunnel (no config disk) it is dropped.
        serve_lan(device, router, now, &mut |packet: &[u8]| {
            if let Some(out) = tunnel.as_mut() {
                let fast = out.flow.as_ref().map(|flow| (&mut *out.public, flow));
                out.tunnel.send_packet(now_us, packet, out.sockets, fast);
            }
        });
    }

    fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        if self.device.rx_pending() {
            return Some(now);
        }
        self.router.poll_at()
    }
}

/// Both sides of the router's network presence.
pub struct Network {
    public: PublicSide,
    private: PrivateSide,
    /// The OpenVPN tunnel, once a config is attached ([`Network::attach_tunnel`]).
    tunnel: Option<Tunnel>,
    /// Some NIC raises no interrupt: never sleep longer than [`POLL_INTERVAL_US`].
    polled: bool,
}

/// Longest sleep when a NIC has no interrupt route.
const POLL_INTERVAL_US: u64 = 1_000;

impl Network {
    /// Assigns the NIC roles, logs them and configures both interfaces.
    pub fn new(
        nics: Vec<Nic>,
        args: &BootArgs,
        now: Instant,
        seed: u64,
        interrupts_routed: bool,
    ) -> Result<Self, NetError> {
        let macs: Vec<[u8; 6]> = nics.iter().map(Nic::mac_address).collect();
        let (service, private) =
            nic_roles::pick(&macs, args.service_mac, args.private_mac).map_err(NetError::Roles)?;
        let private_cidr = args
            .private_ipv4
            .map(cidr)
            .ok_or(NetError::NoPrivateAddress)?;
        for (index, mac) in macs.iter().enumerate() {
            let role = if index == service {
                "service (public)"
            } else if index == private {
                "private"
            } else {
                "unused"
            };
            let [a, b, c, d, e, f] = *mac;
            log::info!(
                "nic{index} mac={a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x} role={role}"
            );
        }
        let mut slots: Vec<Option<Nic>> = nics.into_iter().map(Some).collect();
        let (Some(public_nic), Some(private_nic)) = (
            slots.get_mut(service).and_then(Option::take),
            slots.get_mut(private).and_then(Option::take),
        ) else {
            return Err(NetError::Roles(RoleError::SameNic));
        };

        let public = PublicSide::new(public_nic, args, now, seed);

        // The LAN's gateway address is --private-ipv4-gateway when given, else the --private-ipv4 address.
        let gateway = match args.private_ipv4_gateway {
            Some(gw) => Ipv4Cidr::new(gw, private_cidr.prefix_len()),
            None => private_cidr,
        };
        let mut config = RouterConfig::new(EthernetAddress(private_nic.mac_address()), gateway);
        config.nat = args.nat;
        config.nat_table_size = args.nat_table_size;
        let private = PrivateSide {
            device: private_nic,
            router: Router::new(config, &mut KernelRng),
        };
        log::info!("private gateway {gateway}");
        log::info!("ready");
        Ok(Self {
            public,
            private,
            tunnel: None,
            polled: !interrupts_routed,
        })
    }

    /// Runs both interfaces: drains every received frame, answers what must be answered, sends what is
    /// queued, and applies DHCP events.
    pub fn poll(&mut self, now: Instant) {
        self.poll_public(now);
        self.flush();
        if self.public.poll_dhcp() {
            // Answer ARP for the new address right away rather than at the next wake-up.
            self.poll_public(now);
        }
        let now_us = u64::try_from(now.total_micros()).unwrap_or(0);
        if let Some(tunnel) = &mut self.tunnel {
            let PrivateSide { device, router } = &mut self.private;
            let mut tx = device.transmit();
            let mut lan = |frame: &[u8]| {
                if let Some(tx) = tx.as_mut() {
                    tx.send(frame);
                }
            };
            tunnel.poll(
                now_us,
                &mut self.public.iface,
                &mut self.public.sockets,
                router,
                &mut lan,
                self.public.dhcp_dns,
            );
        }
        let flow = self
            .tunnel
            .as_ref()
            .and_then(|t| t.udp_flow(&self.public.iface));
        let tunnel = self.tunnel.as_mut().map(|tunnel| TunnelOut {
            tunnel,
            sockets: &mut self.public.sockets,
            public: &mut self.public.device,
            flow,
        });
        self.private.poll(now, tunnel);
        self.flush();
        if self.tunnel.is_some() {
            // Send what the tunnel queued on the public sockets now rather than at the next wake-up.
            self.poll_public(now);
        }
        self.flush();
    }

    /// The host asked the VM to shut down: the tunnel says goodbye to the server and what it queued goes
    /// out before the caller exits.
    pub fn shutdown(&mut self, now: Instant) {
        let now_us = u64::try_from(now.total_micros()).unwrap_or(0);
        if let Some(tunnel) = &mut self.tunnel {
            tunnel.shutdown(now_us, &mut self.public.sockets);
            self.poll_public(now);
        }
        self.flush();
    }

    /// Tells both NICs about what was queued and posted since the last flush: one notification per NIC
    /// and burst rather than per frame, sent as each side's burst ends so that no frame waits for the
    /// rest of the pass.
    fn flush(&mut self) {
        self.public.device.flush();
        self.private.device.flush();
    }

    /// Polls the public side. Once the tunnel has a ready UDP transport, the server's datagrams take the
    /// fast path ([`Tunnel::take_frame`]) straight from the public NIC's receive buffers to the private
    /// NIC's transmit buffers, in arrival order with everything smoltcp gets.
    fn poll_public(&mut self, now: Instant) {
        let now_us = u64::try_from(now.total_micros()).unwrap_or(0);
        let Network {
            public,
            private,
            tunnel,
            ..
        } = self;
        let Some((tunnel, flow)) = tunnel
            .as_mut()
            .and_then(|t| t.udp_flow(&public.iface).map(|flow| (t, flow)))
        else {
            public.poll(now, &mut |_| false);
            return;
        };
        let PrivateSide { device, router } = private;
        let mut tx = device.transmit();
        let mut lan = |frame: &[u8]| {
            if let Some(tx) = tx.as_mut() {
                tx.send(frame);
            }
        };
        public.poll(now, &mut |frame: &mut [u8]| {
            tunnel.take_frame(now_us, frame, &flow, router, &mut lan)
        });
    }

    /// Starts the OpenVPN tunnel for the config text `config` (see [`Tunnel::new`]).
    pub fn attach_tunnel(&mut self, config: &str, args: &BootArgs) {
        self.tunnel = Some(Tunnel::new(config, args, &mut self.public.sockets));
    }

    /// The earliest time either interface needs [`poll`](Self::poll) again without a device interrupt:
    /// `Some(now)` when work is already waiting, `None` when only a frame can create work.
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        let now_us = u64::try_from(now.total_micros()).unwrap_or(0);
        let tunnel = self
            .tunnel
            .as_ref()
            .and_then(|t| t.poll_at(now_us, &mut self.public.sockets))
            .map(|us| Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX)));
        [self.public.poll_at(now), self.private.poll_at(now), tunnel]
            .into_iter()
            .flatten()
            .min()
    }

    /// Before the main loop halts until `deadline_us`: polls both NICs for up to `busy_poll_us`
    /// (`--busy-poll-us`; a frame ends it), then turns their interrupts back on. Returns whether the loop
    /// may halt: false when a frame is waiting (it arrived while polling, or before the interrupts were
    /// on and so raised none).
    pub fn prepare_halt(&mut self, deadline_us: u64, busy_poll_us: u32) -> bool {
        if busy_poll_us > 0 {
            let until = clock::now_us()
                .saturating_add(u64::from(busy_poll_us))
                .min(deadline_us);
            while clock::now_us() < until {
                if self.rx_pending() {
                    return false;
                }
                core::hint::spin_loop();
            }
        }
        self.public.device.set_interrupts(true);
        self.private.device.set_interrupts(true);
        !self.rx_pending()
    }

    fn rx_pending(&self) -> bool {
        self.public.device.rx_pending() || self.private.device.rx_pending()
    }

    /// One main-loop pass at `now_us` (monotonic microseconds): polls both sides and returns when the
    /// network next needs a pass if no device interrupt comes first (`None`: only a frame can create work).
    pub fn run(&mut self, now_us: u64) -> Option<u64> {
        let now = Instant::from_micros(i64::try_from(now_us).unwrap_or(i64::MAX));
        // Busy: the loop polls, the devices need not interrupt (on again in `prepare_halt`).
        self.public.device.set_interrupts(false);
        self.private.device.set_interrupts(false);
        self.poll(now);
        let at = self
            .poll_at(now)
            .map(|at| u64::try_from(at.total_micros()).unwrap_or(0).max(now_us));
        if self.polled {
            Some(
                at.unwrap_or(u64::MAX)
                    .min(now_us.saturating_add(POLL_INTERVAL_US)),
            )
        } else {
            at
        }
    }
}
