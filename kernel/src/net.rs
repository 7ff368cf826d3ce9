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
use router::{PortId, Router, RouterConfig, RouterStats, Sink};
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

/// A client port's gateway prefix: the client's /24 when the gateway is in it, else the longest prefix
/// holding both (what DHCP tells the client; routing on the port is the client's address only).
fn client_prefix(client: core::net::Ipv4Addr, gateway: core::net::Ipv4Addr) -> u8 {
    let common = (u32::from(client) ^ u32::from(gateway)).leading_zeros();
    u8::try_from(common.min(24)).unwrap_or(24)
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
    /// The port `tx` sends on.
    port: PortId,
    to_tunnel: &'a mut T,
}

impl<'a, 'b, T: FnMut(&[u8])> LanTx<'a, 'b, T> {
    /// The output of a router with one port, [`PortId::FIRST`], on `tx`.
    pub(crate) fn new(tx: Option<&'a mut NicTx<'b>>, to_tunnel: &'a mut T) -> Self {
        Self {
            tx,
            port: PortId::FIRST,
            to_tunnel,
        }
    }
}

impl<T: FnMut(&[u8])> Sink for LanTx<'_, '_, T> {
    fn lan_frame(&mut self, port: PortId, frame: &[u8]) {
        // Only the port the frame came in on answers it (ports never reach each other).
        if let (Some(tx), true) = (self.tx.as_deref_mut(), port == self.port) {
            tx.send(frame);
        }
    }

    fn tunnel_packet(&mut self, packet: &[u8]) {
        (self.to_tunnel)(packet);
    }
}

/// The transmit queues of all the router's ports at once (port `i` is `devices[i]`): for the router's
/// timers and for frames from the tunnel. One port (the single LAN) needs no allocation.
pub(crate) enum LanOut<'a> {
    One(Option<NicTx<'a>>),
    Many(Vec<Option<NicTx<'a>>>),
}

impl<'a> LanOut<'a> {
    pub(crate) fn new(devices: &'a mut [Nic]) -> Self {
        match devices {
            [one] => LanOut::One(one.transmit()),
            many => LanOut::Many(many.iter_mut().map(Nic::transmit).collect()),
        }
    }

    /// Sends `frame` on `port`.
    pub(crate) fn send(&mut self, port: PortId, frame: &[u8]) {
        let tx = match self {
            LanOut::One(tx) if port == PortId::FIRST => tx.as_mut(),
            LanOut::One(_) => None,
            LanOut::Many(txs) => txs.get_mut(usize::from(port.0)).and_then(Option::as_mut),
        };
        if let Some(tx) = tx {
            tx.send(frame);
        }
    }
}

/// [`LanOut`] as the router's output, packets toward the tunnel to `to_tunnel`.
struct PortsTx<'a, 'b, T: FnMut(&[u8])> {
    lan: LanOut<'b>,
    to_tunnel: &'a mut T,
}

impl<T: FnMut(&[u8])> Sink for PortsTx<'_, '_, T> {
    fn lan_frame(&mut self, port: PortId, frame: &[u8]) {
        self.lan.send(port, frame);
    }

    fn tunnel_packet(&mut self, packet: &[u8]) {
        (self.to_tunnel)(packet);
    }
}

/// Serves the router's private NICs, `devices[i]` as port `i` (both roles; the server and the single
/// LAN have one): at most one queue's worth of received frames per NIC and pass, so a flood on one
/// link cannot starve the others or the public side, then the router's timers. The router rewrites
/// forwarded packets in the receive buffer and gives them to `to_tunnel`.
pub(crate) fn serve_lan(
    devices: &mut [Nic],
    router: &mut Router,
    now: Instant,
    to_tunnel: &mut impl FnMut(&[u8]),
) {
    for (i, device) in devices.iter_mut().enumerate() {
        let port = PortId(u16::try_from(i).unwrap_or(u16::MAX));
        device.ack_interrupt();
        for _ in 0..QUEUE_SIZE {
            let Some((frame, mut tx)) = device.receive_mut() else {
                break;
            };
            let mut sink = LanTx {
                tx: Some(&mut tx),
                port,
                to_tunnel: &mut *to_tunnel,
            };
            router.handle_lan_frame_in_place(port, now, frame, &mut sink);
        }
    }
    if router.poll_at().is_some_and(|at| at <= now) {
        router.tick(
            now,
            &mut PortsTx {
                lan: LanOut::new(devices),
                to_tunnel,
            },
        );
    }
    for device in devices.iter_mut() {
        device.refill();
    }
}

/// The private NICs (port `i` of the router is `devices[i]`) and the one router that answers on them.
struct PrivateSide {
    devices: Vec<Nic>,
    router: Router,
    /// Client ports: the last counters logged, and when.
    clients_log: Option<(RouterStats, Instant)>,
}

/// Client ports log their drop counters at most this often, when they change.
const CLIENT_STATS_INTERVAL_MS: u64 = 1_000;

impl PrivateSide {
    fn poll(&mut self, now: Instant, mut tunnel: Option<TunnelOut<'_>>) {
        let Self {
            devices, router, ..
        } = self;
        let now_us = u64::try_from(now.total_micros()).unwrap_or(0);
        // The tunnel seals what the router forwards in a transmit buffer of the public NIC (one copy,
        // see `Tunnel::send_packet`); without a tunnel (no config disk) it is dropped.
        serve_lan(devices, router, now, &mut |packet: &[u8]| {
            if let Some(out) = tunnel.as_mut() {
                let fast = out.flow.as_ref().map(|flow| (&mut *out.public, flow));
                out.tunnel.send_packet(now_us, packet, out.sockets, fast);
            }
        });
        if let Some((logged, at)) = &mut self.clients_log {
            let stats = self.router.stats();
            let changed = (stats.spoofed, stats.firewall_dropped)
                != (logged.spoofed, logged.firewall_dropped);
            if changed
                && now >= *at + smoltcp::time::Duration::from_millis(CLIENT_STATS_INTERVAL_MS)
            {
                log::info!(
                    "clients: spoofed_dropped={} firewall_dropped={} dropped={} to_tunnel={} to_lan={}",
                    stats.spoofed,
                    stats.firewall_dropped,
                    stats.dropped,
                    stats.to_tunnel,
                    stats.to_lan
                );
                *logged = stats;
                *at = now;
            }
        }
    }

    fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        if self.rx_pending() {
            return Some(now);
        }
        let log = self.clients_log.and_then(|(logged, at)| {
            let s = self.router.stats();
            ((s.spoofed, s.firewall_dropped) != (logged.spoofed, logged.firewall_dropped))
                .then(|| at + smoltcp::time::Duration::from_millis(CLIENT_STATS_INTERVAL_MS))
        });
        [self.router.poll_at(), log].into_iter().flatten().min()
    }

    fn rx_pending(&self) -> bool {
        self.devices.iter().any(Nic::rx_pending)
    }

    fn set_interrupts(&mut self, on: bool) {
        for d in &mut self.devices {
            d.set_interrupts(on);
        }
    }

    fn flush(&mut self) {
        for d in &mut self.devices {
            d.flush();
        }
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
    /// `--virtual-dns`, for client ports added at run time (Xen vifs).
    virtual_dns: Vec<core::net::Ipv4Addr>,
    /// `--vif-gateway`.
    vif_gateway: Option<core::net::Ipv4Addr>,
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
        if !args.clients.is_empty() {
            return Self::with_clients(nics, &macs, args, now, seed, interrupts_routed);
        }
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
            devices: alloc::vec![private_nic],
            router: Router::new(config, &mut KernelRng),
            clients_log: None,
        };
        log::info!("private gateway {gateway}");
        log::info!("ready");
        Ok(Self {
            public,
            private,
            tunnel: None,
            polled: !interrupts_routed,
            virtual_dns: args.virtual_dns.to_vec(),
            vif_gateway: args.vif_gateway,
        })
    }

    /// Client-port mode (`--client`): each client's NIC is a port of the one router, with the client's
    /// address as its only source and the virtual DNS; `--private-ipv4`, when given, is port 0.
    fn with_clients(
        nics: Vec<Nic>,
        macs: &[[u8; 6]],
        args: &BootArgs,
        now: Instant,
        seed: u64,
        interrupts_routed: bool,
    ) -> Result<Self, NetError> {
        let client_macs: Vec<_> = args.clients.iter().map(|c| c.mac).collect();
        let roles = nic_roles::pick_clients(
            macs,
            args.service_mac,
            args.private_mac,
            args.private_ipv4.is_some(),
            &client_macs,
        )
        .map_err(NetError::Roles)?;
        let mut slots: Vec<Option<Nic>> = nics.into_iter().map(Some).collect();
        let mut take = |i: usize| slots.get_mut(i).and_then(Option::take);
        let public_nic = take(roles.service).ok_or(NetError::Roles(RoleError::SameNic))?;
        let mut devices = Vec::new();
        let mut ports = Vec::new();
        if let (Some(i), Some(private_cidr)) = (roles.private, args.private_ipv4.map(cidr)) {
            let nic = take(i).ok_or(NetError::Roles(RoleError::SameNic))?;
            let gateway = match args.private_ipv4_gateway {
                Some(gw) => Ipv4Cidr::new(gw, private_cidr.prefix_len()),
                None => private_cidr,
            };
            log::info!("nic{i} role=private gateway {gateway}");
            ports.push(router::PortConfig::new(
                EthernetAddress(nic.mac_address()),
                gateway,
            ));
            devices.push(nic);
        }
        for (client, &i) in args.clients.iter().zip(&roles.clients) {
            let nic = take(i).ok_or(NetError::Roles(RoleError::SameNic))?;
            let prefix = client_prefix(client.address, client.gateway);
            let mut port = router::PortConfig::new(
                EthernetAddress(nic.mac_address()),
                Ipv4Cidr::new(client.gateway, prefix),
            );
            port.ipv6 = false;
            port.policy =
                router::PortPolicy::client(client.address, None, args.virtual_dns.to_vec());
            log::info!(
                "nic{i} mac={} role=client {} gateway {} (port {})",
                client.mac,
                client.address,
                client.gateway,
                ports.len()
            );
            ports.push(port);
            devices.push(nic);
        }
        let [a, b, c, d, e, f] = public_nic.mac_address();
        log::info!(
            "nic{} mac={a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x} role=service (public)",
            roles.service
        );
        let public = PublicSide::new(public_nic, args, now, seed);
        let mut config = RouterConfig::with_ports(ports);
        config.nat = args.nat;
        config.nat_table_size = args.nat_table_size;
        let private = PrivateSide {
            devices,
            router: Router::new(config, &mut KernelRng),
            clients_log: Some((RouterStats::default(), now)),
        };
        log::info!(
            "client ports: {} (virtual DNS {:?})",
            args.clients.len(),
            args.virtual_dns.as_slice()
        );
        log::info!("ready");
        Ok(Self {
            public,
            private,
            tunnel: None,
            polled: !interrupts_routed,
            virtual_dns: args.virtual_dns.to_vec(),
            vif_gateway: args.vif_gateway,
        })
    }

    /// The `<qubes-firewall>` lines of the config onto the client ports; a line for no `--client`, a
    /// rule the router cannot use or a `dst6` rule (client ports carry no IPv6) is refused naming the
    /// line.
    fn apply_firewall(
        &mut self,
        lines: &[openvpn::config::QubesFirewallLine],
    ) -> Result<(), alloc::string::String> {
        use alloc::format;
        use router::firewall::{parse_policy, Action, Firewall, Rule};
        let ports = &self.private.router.config().ports;
        let mut firewalls: Vec<Option<Firewall>> = alloc::vec![None; ports.len()];
        for l in lines {
            let at = |what: &dyn fmt::Display| {
                format!(
                    "line {}: <qubes-firewall> {} {}: {what}",
                    l.line, l.client, l.rule
                )
            };
            let port = ports
                .iter()
                .position(|p| p.policy.sources == router::SourceRule::Exact(l.client))
                .ok_or_else(|| at(&"no --client has this address"))?;
            let fw = firewalls
                .get_mut(port)
                .ok_or_else(|| at(&"no such port"))?
                .get_or_insert_with(|| Firewall::new(Action::Accept));
            if let Some(policy) = parse_policy(&l.rule) {
                fw.policy = policy.map_err(|e| at(&e))?;
                continue;
            }
            let rule = Rule::parse(&l.rule).map_err(|e| at(&e))?;
            if rule.is_ipv6() {
                return Err(at(
                    &"dst6: client ports carry IPv4 only (no IPv6 is forwarded from clients)",
                ));
            }
            fw.push(rule).map_err(|e| at(&e))?;
        }
        let mut set = Vec::new();
        for (i, fw) in firewalls.into_iter().enumerate() {
            if let (Some(fw), Some(p)) = (fw, ports.get(i)) {
                log::info!(
                    "firewall: {:?}: policy {} with {} rule(s)",
                    p.policy.sources,
                    fw.policy,
                    fw.rules().len()
                );
                set.push((PortId(u16::try_from(i).unwrap_or(u16::MAX)), fw));
            }
        }
        for (id, fw) in set {
            self.private.router.set_firewall(id, Some(fw));
        }
        Ok(())
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
            let PrivateSide {
                devices, router, ..
            } = &mut self.private;
            let mut out = LanOut::new(devices);
            let mut lan = |port: PortId, frame: &[u8]| out.send(port, frame);
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

    /// The public NIC (the shutdown path waits for its last frames to leave).
    pub fn public_nic(&mut self) -> &mut crate::platform::Nic {
        &mut self.public.device
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
        self.private.flush();
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
        let PrivateSide {
            devices, router, ..
        } = private;
        let mut out = LanOut::new(devices);
        let mut lan = |port: PortId, frame: &[u8]| out.send(port, frame);
        public.poll(now, &mut |frame: &mut [u8]| {
            tunnel.take_frame(now_us, frame, &flow, router, &mut lan)
        });
    }

    /// Starts the OpenVPN tunnel for the config text `config` (see [`Tunnel::new`]).
    pub fn attach_tunnel(&mut self, config: &str, args: &BootArgs) {
        let mut tunnel = Tunnel::new(config, args, &mut self.public.sockets);
        let lines = tunnel.take_qubes_firewall();
        if let Err(e) = self.apply_firewall(&lines) {
            log::error!("config: {e}");
            log::error!("exit: {}", oxvpn_kernel::exit::ExitCode::BadConfig);
            crate::platform::exit(oxvpn_kernel::exit::ExitCode::BadConfig)
        }
        self.tunnel = Some(tunnel);
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
        self.private.set_interrupts(true);
        !self.rx_pending()
    }

    fn rx_pending(&self) -> bool {
        self.public.device.rx_pending() || self.private.rx_pending()
    }

    /// One main-loop pass at `now_us` (monotonic microseconds): polls both sides and returns when the
    /// network next needs a pass if no device interrupt comes first (`None`: only a frame can create work).
    pub fn run(&mut self, now_us: u64) -> Option<u64> {
        let now = Instant::from_micros(i64::try_from(now_us).unwrap_or(i64::MAX));
        // Busy: the loop polls, the devices need not interrupt (on again in `prepare_halt`).
        self.public.device.set_interrupts(false);
        self.private.set_interrupts(false);
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

/// A Xen vif's `ip` key: its first IPv4 address (Qubes may list an IPv6 one after it).
fn vif_ipv4(value: &str) -> Option<core::net::Ipv4Addr> {
    value.split_ascii_whitespace().find_map(|w| w.parse().ok())
}

/// The gateway a vif's client uses: `--vif-gateway`; else, as in Qubes, the net VM's own address
/// (`/qubes-ip`, with `--qubesdb`); else the `.1` of the client's /24 (as `--client` defaults to).
fn vif_gateway(
    client: core::net::Ipv4Addr,
    configured: Option<core::net::Ipv4Addr>,
) -> core::net::Ipv4Addr {
    if let Some(gw) = configured {
        return gw;
    }
    match crate::platform::qubesdb_uplink() {
        Some(uplink) => uplink.address,
        None => core::net::Ipv4Addr::from(u32::from(client) & 0xffff_ff00 | 1),
    }
}

/// Client `ip`'s rules from QubesDB as the router's firewall; fail closed (policy drop, the error written
/// to `/qubes-iptables-error`) when a rule does not parse or dom0 has completed none yet.
fn qubesdb_firewall(ip: core::net::Ipv4Addr) -> router::firewall::Firewall {
    use alloc::format;
    use alloc::string::ToString;
    use router::firewall::{parse_policy, Action, Firewall, Rule};
    let key = ip.to_string();
    let Some(mut rules) = crate::platform::qubesdb::firewall_rules(&key) else {
        log::warn!("firewall: {ip}: no rules from QubesDB yet: policy drop until dom0 sends them");
        return Firewall::new(Action::Drop);
    };
    rules.sort();
    let mut fw = Firewall::new(Action::Accept);
    let mut error = None;
    for (name, value) in &rules {
        if name == "policy" {
            match parse_policy(&format!("policy={value}")) {
                Some(Ok(p)) => fw.policy = p,
                Some(Err(e)) => error = Some(format!("{key}: policy {value}: {e}")),
                None => error = Some(format!("{key}: policy {value}: not accept|drop")),
            }
        } else {
            match Rule::parse(value) {
                // Client ports carry no IPv6: a dst6 rule can match nothing.
                Ok(rule) if rule.is_ipv6() => {}
                Ok(rule) => {
                    if let Err(e) = fw.push(rule) {
                        error = Some(format!("{key}: rule {name}: {e}"));
                    }
                }
                Err(e) => error = Some(format!("{key}: rule {name} ({value}): {e}")),
            }
        }
        if error.is_some() {
            break;
        }
    }
    if let Some(e) = error {
        log::error!("firewall: {e}: client {ip} gets policy drop");
        crate::platform::qubesdb::report_error(&e);
        return Firewall::new(Action::Drop);
    }
    log::info!(
        "firewall: {ip}: policy {} with {} rule(s) from QubesDB",
        fw.policy,
        fw.rules().len()
    );
    fw
}

impl crate::platform::ClientPorts for Network {
    fn attach(
        &mut self,
        net: alloc::boxed::Box<drivers::xen::netback::Netback<drivers::xen::Hypervisor>>,
    ) -> Result<(), alloc::boxed::Box<drivers::xen::netback::Netback<drivers::xen::Hypervisor>>>
    {
        let Some(client) = net.client_ip().and_then(vif_ipv4) else {
            log::warn!(
                "netback {}: no IPv4 address in its ip key: not served",
                net.name()
            );
            return Err(net);
        };
        let gateway = vif_gateway(client, self.vif_gateway);
        if gateway == client {
            log::warn!(
                "netback {}: client {client} is its own gateway: not served",
                net.name()
            );
            return Err(net);
        }
        let devices = &mut self.private.devices;
        let router = &mut self.private.router;
        let mut port = router::PortConfig::new(
            EthernetAddress(net.mac_address()),
            Ipv4Cidr::new(gateway, client_prefix(client, gateway)),
        );
        port.ipv6 = false;
        let firewall = crate::platform::qubesdb::connected().then(|| qubesdb_firewall(client));
        port.policy = router::PortPolicy::client(client, firewall, self.virtual_dns.clone());
        let Some(id) = router.add_port(port) else {
            log::warn!("netback {}: no free router port: not served", net.name());
            return Err(net);
        };
        let index = usize::from(id.0);
        log::info!(
            "netback {}: client {client} gateway {gateway}: {id} of the router",
            net.name()
        );
        if index < devices.len() {
            if let Some(slot) = devices.get_mut(index) {
                *slot = crate::platform::Nic::XenBack(net);
            }
        } else {
            devices.resize_with(index, || crate::platform::Nic::Vacant);
            devices.push(crate::platform::Nic::XenBack(net));
        }
        if self.private.clients_log.is_none() {
            self.private.clients_log = Some((self.private.router.stats(), Instant::ZERO));
        }
        Ok(())
    }

    fn each_attached(
        &mut self,
        f: &mut dyn FnMut(&mut drivers::xen::netback::Netback<drivers::xen::Hypervisor>),
    ) {
        for d in &mut self.private.devices {
            if let crate::platform::Nic::XenBack(net) = d {
                f(net);
            }
        }
    }

    fn detach_gone(&mut self) -> Vec<alloc::string::String> {
        use drivers::xen::netback::NetbackState;
        let mut gone = Vec::new();
        for (i, d) in self.private.devices.iter_mut().enumerate() {
            let crate::platform::Nic::XenBack(net) = d else {
                continue;
            };
            if net.state() != NetbackState::Gone {
                continue;
            }
            let s = net.stats();
            log::info!(
                "netback {}: gone ({} frames from the client, {} to it, {} errors, {} dropped); port {i} removed",
                net.name(),
                s.rx_frames,
                s.tx_frames,
                s.rx_errors,
                s.tx_dropped
            );
            gone.push(alloc::string::String::from(net.name()));
            self.private
                .router
                .remove_port(PortId(u16::try_from(i).unwrap_or(u16::MAX)));
            *d = crate::platform::Nic::Vacant;
        }
        gone
    }

    fn firewall_changed(&mut self, ip: &str) {
        let Some(client) = vif_ipv4(ip) else { return };
        let ports = &self.private.router.config().ports;
        let found = self.private.devices.iter().enumerate().find_map(|(i, d)| {
            let vif = matches!(d, crate::platform::Nic::XenBack(_));
            let ours = ports
                .get(i)
                .is_some_and(|p| p.policy.sources == router::SourceRule::Exact(client));
            (vif && ours).then_some(i)
        });
        if let Some(i) = found {
            let fw = qubesdb_firewall(client);
            self.private
                .router
                .set_firewall(PortId(u16::try_from(i).unwrap_or(u16::MAX)), Some(fw));
        }
    }
}
