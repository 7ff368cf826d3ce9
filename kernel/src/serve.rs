//! The server role in the main loop: the OpenVPN server (`openvpn::server::service`) on the public
//! NIC's UDP socket, and the client forwarder (`router::ClientForwarder`) between the clients, the server
//! itself (echo) and the outside (source NAT to the public address).
//!
//! Layer: kernel glue. It moves datagrams and packets and carries out what the two sans-IO halves
//! decide; it decides nothing about the protocol, addresses or forwarding.
//!
//! ```text
//! clients <-> public NIC <-> smoltcp UDP socket <-> Service <-> ClientForwarder <-> raw IP out / NAT in
//! ```

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::net::{serve_lan, LanTx};
use drivers::clock;
use drivers::netdev::NetDevice;
use openvpn::config::Config;
use openvpn::config::Transport;
use openvpn::engine::StreamDeframer;
use openvpn::server::engine::ServerReceived;
use openvpn::server::service::{Service, ServiceEvent};
use openvpn::time::Instant as EngineInstant;
use oxvpn_kernel::args::BootArgs;
use rand_core::RngCore;
use router::outer::UdpFlow;
use router::EthernetAddress;
use router::{
    ClientDecision, ClientForwarder, ForwarderConfig, Ipv4Address, Ipv4Cidr, PortConfig, Router,
    RouterConfig, TunnelConfig, TunnelState,
};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{raw, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, IpEndpoint, IpProtocol, IpVersion};

use crate::entropy::KernelRng;
use crate::fastpath;
use crate::public::Nic;
use crate::public::PublicSide;

/// Datagrams the UDP socket holds each way (many clients send at once).
const UDP_PACKETS: usize = 512;
/// Bytes of datagram payload the UDP socket holds each way.
const UDP_BYTES: usize = 512 * 1024;
/// Packets each raw socket (TCP, UDP, ICMP out through the NAT) holds.
const RAW_PACKETS: usize = 128;
/// Largest datagram taken from a client.
const RX_BUF: usize = 65536;
/// Largest encrypted packet sent to a client.
const TX_BUF: usize = 2048 + 128;
/// Datagrams handled per pass before the timers get their turn.
const RX_BURST: usize = 256;
/// Datagrams the fast path queues per interface poll (more are dropped, as a full socket would).
const DATAGRAM_QUEUE: usize = 512;
/// UDP peers whose MAC address is remembered (clients and peers in their handshake); the table is
/// emptied when full (peers are learnt again from their next datagram).
const MAX_MACS: usize = 8192;
/// TCP connections served at once (each a listening socket until a client connects): the bound on
/// half-open and established TCP clients together.
const MAX_TCP: usize = 32;
/// Bytes each TCP socket buffers each way.
const TCP_BYTES: usize = 32 * 1024;

/// One TCP connection slot: a smoltcp socket (listening or connected) and its packet deframer.
struct TcpConn {
    handle: SocketHandle,
    deframer: Box<StreamDeframer>,
    /// The client's address once connected.
    peer: Option<SocketAddr>,
    /// When it connected (a connection that never becomes a client is closed after hand-window).
    since_us: u64,
    /// The listening port of this slot.
    port: u16,
}

/// Longest sleep when a NIC has no interrupt route.
const POLL_INTERVAL_US: u64 = 1_000;

fn engine_now(now_us: u64) -> EngineInstant {
    EngineInstant::from_micros(now_us)
}

fn smol_now(now_us: u64) -> Instant {
    Instant::from_micros(i64::try_from(now_us).unwrap_or(i64::MAX))
}

use crate::init::bad_config;

/// A private network behind the server (`--private-ipv4` and a second NIC, the remote-worker case): the
/// router crate's `Router` on that NIC, with the server's clients as its "tunnel" side. Routed, not
/// NATed (LAN hosts see the clients' tunnel addresses and reach them through the server); no DHCP, DNS
/// forwarder or IPv6 on that LAN: it has its own.
struct ServerLan {
    device: Nic,
    router: Router,
}

/// The server's network: the public side, the OpenVPN server on it, and the forwarder.
pub struct ServerNet {
    public: PublicSide,
    lan: Option<ServerLan>,
    /// Packets the private router sent toward the clients, sealed after its pass.
    from_lan: Vec<Vec<u8>>,
    udp: SocketHandle,
    /// Raw IPv4 sockets for TCP, UDP and ICMP: clients' packets out through the NAT.
    raw: [(IpProtocol, SocketHandle); 3],
    /// The first UDP port (smoltcp's socket, for peers whose MAC address is unknown).
    port: u16,
    udp_ports: Vec<u16>,
    tcp: Vec<TcpConn>,
    tcp_ports: Vec<u16>,
    hand_window_us: u64,
    service: Service,
    forwarder: ClientForwarder,
    /// Tunnel address -> peer-id of the connected clients.
    routes: BTreeMap<Ipv4Addr, u32>,
    /// The public address the forwarder NATs to (follows DHCP).
    public_addr: Option<Ipv4Addr>,
    rx: Box<[u8]>,
    tx: Box<[u8]>,
    reply: Box<[u8]>,
    /// Packets the public fast path translated back for a client, sent after the interface poll.
    inbound: Vec<(u32, Vec<u8>)>,
    /// Datagrams to the UDP listeners the fast path took (sender, its frame's source MAC and the port it
    /// came to, payload).
    datagrams: Vec<(SocketAddr, (EthernetAddress, u16), Vec<u8>)>,
    /// Where answers to a UDP peer go: the source MAC of its last datagram the server accepted. The
    /// server sends its datagrams itself (no smoltcp socket, no ARP): a peer that never answers ARP
    /// cannot hold up the others, and no neighbour cache limits how many clients are on-link.
    /// The local port is the listener the peer talks to: answers come from it.
    macs: BTreeMap<SocketAddr, (EthernetAddress, u16)>,
    listening: bool,
    status_every_us: Option<u64>,
    next_status_us: u64,
    polled: bool,
}

/// Whether a config text is a server config (`server`, or `mode server` + `tls-server`).
pub fn is_server_config(config: &Config) -> bool {
    config.role() == openvpn::config::Role::Server
}

impl ServerNet {
    /// Brings up the public side on the first NIC (or the `--service-mac` one) and the server for the
    /// parsed server `config`. Exits with [`ExitCode::BadConfig`] when the config cannot serve.
    pub fn new(
        nics: Vec<Nic>,
        args: &BootArgs,
        config: &Config,
        interrupts_routed: bool,
    ) -> ServerNet {
        let now_us = clock::now_us();
        let now = smol_now(now_us);
        let service_index = args
            .service_mac
            .and_then(|m| nics.iter().position(|n| n.mac_address() == m.0))
            .unwrap_or(0);
        let mut nics: Vec<Option<Nic>> = nics.into_iter().map(Some).collect();
        for (index, nic) in nics.iter().enumerate() {
            if let Some(nic) = nic {
                let [a, b, c, d, e, f] = nic.mac_address();
                let role = if index == service_index {
                    "service (public)"
                } else {
                    "unused"
                };
                log::info!(
                    "nic{index} mac={a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x} role={role}"
                );
            }
        }
        let Some(device) = nics.get_mut(service_index).and_then(Option::take) else {
            bad_config(format_args!("a server needs a NIC"))
        };
        // The private NIC: `--private-mac`, else the first other one, when `--private-ipv4` is given.
        let private_nic = args.private_ipv4.and_then(|_| {
            let index = match args.private_mac {
                Some(m) => nics
                    .iter()
                    .position(|n| n.as_ref().is_some_and(|n| n.mac_address() == m.0)),
                None => nics.iter().position(Option::is_some),
            }?;
            nics.get_mut(index).and_then(Option::take)
        });
        if args.private_ipv4.is_some() && private_nic.is_none() {
            bad_config(format_args!("--private-ipv4 needs a second NIC"));
        }
        let mut public = PublicSide::new(device, args, now, KernelRng.next_u64());

        let mut secret = [0u8; 32];
        KernelRng.fill_bytes(&mut secret);
        let unix = crate::init::wall_clock_for_certificates();
        let service = match Service::from_config(config, engine_now(now_us), unix, &secret) {
            Ok(s) => s,
            Err(e) => bad_config(format_args!("{e}")),
        };
        let settings = service.settings();
        // Every IPv4 listener (`local ADDR PORT PROTO` lines): the public NIC has one address, so a
        // listener's address only selects the family.
        let mut udp_ports: Vec<u16> = Vec::new();
        let mut tcp_ports: Vec<u16> = Vec::new();
        for l in &settings.listeners {
            let ports = match l.transport {
                Transport::Udp => &mut udp_ports,
                Transport::Tcp => &mut tcp_ports,
            };
            match l.address {
                None | Some(IpAddr::V4(_)) if !ports.contains(&l.port) => ports.push(l.port),
                None | Some(IpAddr::V4(_)) => {}
                Some(IpAddr::V6(a)) => log::warn!(
                    "config: listener [{a}]:{} {:?} not served (IPv4 only)",
                    l.port,
                    l.transport
                ),
            }
        }
        let hand_window_us = u64::from(settings.hand_window.max(1)) * 1_000_000;
        let port = udp_ports.first().copied().unwrap_or(0);
        let udp = udp::Socket::new(
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            ),
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            ),
        );
        let udp = public.sockets.add(udp);
        // The TCP slots are shared out among the TCP listeners.
        let mut tcp = Vec::new();
        let slots = if tcp_ports.is_empty() { 0 } else { MAX_TCP };
        for tport in tcp_ports.iter().cycle().take(slots) {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; TCP_BYTES]),
                tcp::SocketBuffer::new(vec![0; TCP_BYTES]),
            );
            let _ = socket.listen(*tport);
            tcp.push(TcpConn {
                handle: public.sockets.add(socket),
                deframer: Box::new(StreamDeframer::new()),
                peer: None,
                since_us: 0,
                port: *tport,
            });
        }
        let raw_socket = |proto| {
            raw::Socket::new(
                IpVersion::Ipv4,
                proto,
                raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; 1], vec![0; 1]),
                raw::PacketBuffer::new(
                    vec![raw::PacketMetadata::EMPTY; RAW_PACKETS],
                    vec![0; RAW_PACKETS * 1500],
                ),
            )
        };
        let raw = [IpProtocol::Tcp, IpProtocol::Udp, IpProtocol::Icmp]
            .map(|p| (p, public.sockets.add(raw_socket(p))));

        let v4 = &settings.ipv4;
        let prefix = u8::try_from(u32::from(v4.netmask).leading_ones()).unwrap_or(24);
        let mut fwd = ForwarderConfig::new(
            Ipv4Address::from(v4.local),
            Ipv4Cidr::new(Ipv4Address::from(v4.network), prefix),
        );
        fwd.client_to_client = settings.client_to_client;
        fwd.reserved_ports = settings.listeners.iter().map(|l| l.port).collect();
        fwd.nat_table_size = args.nat_table_size;
        let tunnel_cidr = Ipv4Cidr::new(Ipv4Address::from(v4.local), prefix);
        let lan = match (private_nic, args.private_ipv4) {
            (Some(device), Some(cidr)) => {
                let gateway = Ipv4Cidr::new(cidr.address, cidr.prefix_len);
                fwd.private_net = Some(gateway);
                let mut lan =
                    PortConfig::new(router::EthernetAddress(device.mac_address()), gateway);
                lan.dhcp = false;
                lan.dns_forwarder = false;
                lan.ipv6 = false;
                let mut config = RouterConfig::with_ports(vec![lan]);
                config.nat = false;
                let mut router = Router::new(config, &mut KernelRng);
                router.set_tunnel(TunnelState::Up(TunnelConfig::new(tunnel_cidr)));
                log::info!("private {gateway}: routed to and from the clients (no NAT)");
                Some(ServerLan { device, router })
            }
            _ => None,
        };
        let forwarder = ClientForwarder::new(fwd, &mut KernelRng);
        log::info!(
            "server {}/{prefix} on UDP port {port} and TCP port {}, max-clients {}, client-to-client {}",
            v4.local,
            tcp_ports.first().copied().unwrap_or(0),
            settings.max_clients,
            if settings.client_to_client { "on" } else { "off" }
        );
        let status_every_us = settings
            .status_interval
            .map(|s| u64::from(s.max(1)) * 1_000_000);
        ServerNet {
            public,
            lan,
            from_lan: Vec::new(),
            udp,
            raw,
            port,
            udp_ports,
            tcp,
            tcp_ports,
            hand_window_us,
            service,
            forwarder,
            routes: BTreeMap::new(),
            public_addr: None,
            rx: vec![0; RX_BUF].into_boxed_slice(),
            tx: vec![0; TX_BUF].into_boxed_slice(),
            reply: vec![0; 1600].into_boxed_slice(),
            inbound: Vec::new(),
            datagrams: Vec::new(),
            macs: BTreeMap::new(),
            listening: false,
            status_every_us,
            next_status_us: now_us,
            polled: !interrupts_routed,
        }
    }

    /// One main-loop pass at `now_us`; returns when the server next needs one.
    pub fn run(&mut self, now_us: u64) -> Option<u64> {
        self.public.device.set_interrupts(false);
        if let Some(lan) = &mut self.lan {
            lan.device.set_interrupts(false);
        }
        self.poll(now_us);
        let at = self.poll_at(now_us);
        if self.polled {
            Some(
                at.unwrap_or(u64::MAX)
                    .min(now_us.saturating_add(POLL_INTERVAL_US)),
            )
        } else {
            at
        }
    }

    /// The host asked the VM to shut down: every client is told the server goes away (RESTART, so they
    /// reconnect elsewhere or later) and what that queued goes out before the caller exits.
    pub fn shutdown(&mut self, now_us: u64) {
        self.service.shutdown(engine_now(now_us));
        self.run_service(now_us);
        self.poll_public(now_us);
        self.public.device.flush();
    }

    /// The public NIC (the shutdown path waits for its last frames to leave).
    pub fn public_nic(&mut self) -> &mut crate::platform::Nic {
        &mut self.public.device
    }

    /// Before the main loop halts: turn the NIC's interrupts on; false when a frame is already waiting.
    pub fn prepare_halt(&mut self) -> bool {
        self.public.device.set_interrupts(true);
        if let Some(lan) = &mut self.lan {
            lan.device.set_interrupts(true);
            if lan.device.rx_pending() {
                return false;
            }
        }
        !self.public.device.rx_pending()
    }

    fn poll(&mut self, now_us: u64) {
        let now = smol_now(now_us);
        self.poll_public(now_us);
        if self.public.poll_dhcp() {
            self.poll_public(now_us);
        }
        let addr = self.public.iface.ipv4_addr();
        if addr != self.public_addr {
            self.public_addr = addr;
            self.forwarder.set_public(addr.map(Ipv4Address::from));
        }
        if !self.listening {
            if let Some(a) = addr {
                let socket = self.public.sockets.get_mut::<udp::Socket>(self.udp);
                if self.port == 0 || socket.bind(self.port).is_ok() {
                    self.listening = true;
                    for p in &self.udp_ports {
                        log::info!("listening on {a}:{p} (UDP)");
                    }
                    for p in &self.tcp_ports {
                        log::info!("listening on {a}:{p} (TCP)");
                    }
                    log::info!("Initialization Sequence Completed");
                }
            }
        }
        self.receive_datagrams(now_us);
        self.receive_streams(now_us);
        self.poll_lan(now_us);
        self.send_inbound(now_us);
        self.run_service(now_us);
        if self.forwarder.poll_at().is_some_and(|at| at <= now) {
            self.forwarder.tick(now);
        }
        if let Some(every) = self.status_every_us {
            if now_us >= self.next_status_us {
                self.next_status_us = now_us.saturating_add(every);
                let (used, _) = crate::heap::usage();
                log::info!(
                    "status: {} heap_kib={}",
                    self.service.status_line(),
                    used >> 10
                );
                let unix = clock::unix_time_now().unwrap_or(0);
                for line in self.service.status_v3(unix) {
                    log::info!("{line}");
                }
            }
        }
        self.poll_public(now_us);
        self.public.device.flush();
    }

    /// Polls smoltcp; IPv4 frames to the public address that belong to a NAT mapping are translated back
    /// for their client first (queued in `inbound`, sealed after the poll).
    fn poll_public(&mut self, now_us: u64) {
        let now = smol_now(now_us);
        let listening = self.listening;
        let ServerNet {
            public,
            udp_ports,
            forwarder,
            routes,
            inbound,
            datagrams,
            public_addr,
            ..
        } = self;
        let Some(ours) = *public_addr else {
            public.poll(now, &mut |_| false);
            return;
        };
        let local_mac = fastpath::local_mac(&public.iface);
        let ports: &[u16] = if listening { udp_ports } else { &[] };
        public.poll(now, &mut |frame: &mut [u8]| {
            match fastpath::take_listened(frame, local_mac, ours, ports) {
                Ok(Some(d)) => {
                    if let Some(bytes) = frame.get(d.payload) {
                        if datagrams.len() < DATAGRAM_QUEUE {
                            let from = SocketAddr::new(IpAddr::V4(d.from.0), d.from.1);
                            datagrams.push((from, (d.source_mac, d.port), bytes.to_vec()));
                        }
                    }
                    return true;
                }
                Err(()) => return true,
                Ok(None) => {}
            }
            // Ethernet II, IPv4, addressed to us.
            if frame.get(12..14) != Some(&[0x08, 0x00]) || frame.get(30..34) != Some(&ours.octets())
            {
                return false;
            }
            let Some(packet) = frame.get_mut(14..) else {
                return false;
            };
            match forwarder.from_public(now, packet) {
                Some(p) => {
                    let dst: Ipv4Addr = p.client.into();
                    if let (Some(peer), Some(ip)) = (routes.get(&dst), packet.get(..p.len)) {
                        if inbound.len() < 1024 {
                            inbound.push((*peer, ip.to_vec()));
                        }
                    }
                    true
                }
                None => false,
            }
        });
    }

    /// The private NIC: its frames through the router (to the clients: queued, then sealed), the router's
    /// timers (ARP).
    fn poll_lan(&mut self, now_us: u64) {
        let now = smol_now(now_us);
        let Some(ServerLan { device, router }) = &mut self.lan else {
            return;
        };
        let from_lan = &mut self.from_lan;
        serve_lan(
            core::slice::from_mut(device),
            router,
            now,
            &mut |packet: &[u8]| {
                if from_lan.len() < DATAGRAM_QUEUE {
                    from_lan.push(packet.to_vec());
                }
            },
        );
        device.flush();
        for packet in core::mem::take(&mut self.from_lan) {
            let dst = packet.get(16..20).and_then(|d| <[u8; 4]>::try_from(d).ok());
            if let Some(peer) = dst.and_then(|d| self.routes.get(&Ipv4Addr::from(d)).copied()) {
                self.send_to_client(now_us, peer, &packet);
            }
        }
    }

    /// Seals the packets the NAT translated back and sends them to their clients.
    fn send_inbound(&mut self, now_us: u64) {
        for (peer, packet) in core::mem::take(&mut self.inbound) {
            self.send_to_client(now_us, peer, &packet);
        }
    }

    fn send_to_client(&mut self, now_us: u64, peer: u32, packet: &[u8]) {
        let mut tx = core::mem::take(&mut self.tx);
        if let Some((to, n)) =
            self.service
                .encapsulate(engine_now(now_us), peer, packet, &mut tx, &mut KernelRng)
        {
            if let Some(bytes) = tx.get(..n) {
                self.send_bytes(to, bytes);
            }
        }
        self.tx = tx;
    }

    /// Sends one OpenVPN packet to `to`: a datagram, or over its TCP connection with the 2-byte length
    /// prefix (a connection whose send buffer is full drops the packet, as a full UDP socket does).
    fn send_bytes(&mut self, to: SocketAddr, bytes: &[u8]) {
        if let Some(conn) = self.tcp.iter().find(|c| c.peer == Some(to)) {
            let socket = self.public.sockets.get_mut::<tcp::Socket>(conn.handle);
            let Ok(len) = u16::try_from(bytes.len()) else {
                return;
            };
            if socket.send_capacity() - socket.send_queue() >= bytes.len() + 2 {
                let _ = socket.send_slice(&len.to_be_bytes());
                let _ = socket.send_slice(bytes);
            }
            return;
        }
        if let (Some((mac, local_port)), Some(ours), IpAddr::V4(ip)) =
            (self.macs.get(&to).copied(), self.public_addr, to.ip())
        {
            let flow = UdpFlow {
                local_mac: fastpath::local_mac(&self.public.iface),
                local: (ours, local_port),
                remote: (ip, to.port()),
            };
            let sent = fastpath::send_datagram(
                &mut self.public.device,
                &flow,
                mac,
                bytes.len(),
                |payload| match payload.get_mut(..bytes.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(bytes);
                        bytes.len()
                    }
                    None => 0,
                },
            );
            if sent {
                return;
            }
        }
        let socket = self.public.sockets.get_mut::<udp::Socket>(self.udp);
        let _ = socket.send_slice(bytes, endpoint(to));
    }

    /// Reads every TCP connection: new connections, their packets (deframed, then handled like
    /// datagrams), closed ones (the client is gone, the slot listens again), and connections that did
    /// not become a client within hand-window.
    fn receive_streams(&mut self, now_us: u64) {
        for i in 0..self.tcp.len() {
            let Some(conn) = self.tcp.get_mut(i) else {
                continue;
            };
            let socket = self.public.sockets.get_mut::<tcp::Socket>(conn.handle);
            match (conn.peer, socket.state()) {
                (None, tcp::State::Established) => {
                    conn.peer = socket.remote_endpoint().and_then(socket_addr);
                    conn.since_us = now_us;
                }
                (Some(peer), tcp::State::Closed | tcp::State::CloseWait | tcp::State::TimeWait) => {
                    socket.abort();
                    conn.deframer.reset();
                    conn.peer = None;
                    self.service.transport_closed(peer);
                    self.run_service(now_us);
                    continue;
                }
                (None, tcp::State::Closed) => {
                    let _ = socket.listen(conn.port);
                    continue;
                }
                _ => {}
            }
            let Some(peer) = conn.peer else { continue };
            if now_us.saturating_sub(conn.since_us) > self.hand_window_us
                && self.service.engine().peer_at(peer).is_none()
            {
                // Connected, but no client after hand-window: a half-open slot is freed.
                socket.abort();
                conn.deframer.reset();
                conn.peer = None;
                continue;
            }
            while socket.can_recv() {
                let space = conn.deframer.free_space();
                if space.is_empty() {
                    break;
                }
                match socket.recv_slice(space) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => conn.deframer.commit(n),
                }
            }
            let mut frames: Vec<Vec<u8>> = Vec::new();
            loop {
                match conn.deframer.next_frame() {
                    Ok(Some(frame)) => frames.push(frame.to_vec()),
                    Ok(None) => break,
                    Err(_) => {
                        // A frame that cannot be an OpenVPN packet: the stream is lost.
                        socket.abort();
                        conn.deframer.reset();
                        conn.peer = None;
                        self.service.transport_closed(peer);
                        break;
                    }
                }
            }
            for mut frame in frames {
                let got =
                    self.service
                        .receive(engine_now(now_us), peer, &mut frame, &mut KernelRng);
                if let ServerReceived::Packet(client, range) = got {
                    if let Some(packet) = frame.get_mut(range) {
                        self.forward(now_us, client, packet);
                    }
                }
                self.run_service(now_us);
            }
        }
    }

    fn receive_datagrams(&mut self, now_us: u64) {
        for (from, mac, mut datagram) in core::mem::take(&mut self.datagrams) {
            let got = self
                .service
                .receive(engine_now(now_us), from, &mut datagram, &mut KernelRng);
            // Learn where answers go only from what the server accepted: an authenticated packet of a
            // client, or a peer's first packet (answered) when the address is no client's.
            // (A known client's address only passes with its own keys.)
            if got != ServerReceived::Dropped {
                if self.macs.len() >= MAX_MACS && !self.macs.contains_key(&from) {
                    self.macs.clear();
                }
                self.macs.insert(from, mac);
            }
            if let ServerReceived::Packet(peer, range) = got {
                if let Some(packet) = datagram.get_mut(range) {
                    self.forward(now_us, peer, packet);
                }
            }
            self.run_service(now_us);
        }
        for _ in 0..RX_BURST {
            let socket = self.public.sockets.get_mut::<udp::Socket>(self.udp);
            let Ok((n, meta)) = socket.recv_slice(&mut self.rx) else {
                break;
            };
            let Some(from) = socket_addr(meta.endpoint) else {
                continue;
            };
            let mut rx = core::mem::take(&mut self.rx);
            if let Some(datagram) = rx.get_mut(..n) {
                let got = self
                    .service
                    .receive(engine_now(now_us), from, datagram, &mut KernelRng);
                if let ServerReceived::Packet(peer, range) = got {
                    if let Some(packet) = datagram.get_mut(range) {
                        self.forward(now_us, peer, packet);
                    }
                }
            }
            self.rx = rx;
            self.run_service(now_us);
        }
    }

    /// A decrypted packet from client `peer`: the forwarder decides where it goes.
    fn forward(&mut self, now_us: u64, peer: u32, packet: &mut [u8]) {
        let now = smol_now(now_us);
        let mut reply = core::mem::take(&mut self.reply);
        match self
            .forwarder
            .from_client(now, packet, &mut reply, &mut KernelRng)
        {
            ClientDecision::Reply { len } => {
                if let Some(r) = reply.get(..len) {
                    self.send_to_client(now_us, peer, r);
                }
            }
            ClientDecision::ToClient(dst) => {
                if let Some(other) = self.routes.get(&Ipv4Addr::from(dst)).copied() {
                    self.send_to_client(now_us, other, packet);
                }
            }
            ClientDecision::ToPublic => {
                let proto = packet.get(9).copied().map(IpProtocol::from);
                if let Some((_, handle)) = self.raw.iter().find(|(p, _)| Some(*p) == proto) {
                    let _ = self
                        .public
                        .sockets
                        .get_mut::<raw::Socket>(*handle)
                        .send_slice(packet);
                }
            }
            ClientDecision::ToPrivate => {
                if let Some(ServerLan { device, router }) = &mut self.lan {
                    let mut tx = device.transmit();
                    let from_lan = &mut self.from_lan;
                    let mut to_clients = |packet: &[u8]| {
                        if from_lan.len() < DATAGRAM_QUEUE {
                            from_lan.push(packet.to_vec());
                        }
                    };
                    router.handle_tunnel_packet(
                        now,
                        packet,
                        &mut LanTx::new(tx.as_mut(), &mut to_clients),
                    );
                    drop(tx);
                    device.flush();
                }
            }
            ClientDecision::Drop(_) => {}
        }
        self.reply = reply;
    }

    fn run_service(&mut self, now_us: u64) {
        let now = engine_now(now_us);
        while let Some(event) = self.service.poll(now, &mut KernelRng) {
            match event {
                ServiceEvent::SendTo(to, bytes) => self.send_bytes(to, &bytes),
                ServiceEvent::ClientUp { peer_id, address } => {
                    log::info!(
                        "{} connected, tunnel address {address}",
                        self.service.client_name(peer_id)
                    );
                    self.routes.insert(address, peer_id);
                }
                ServiceEvent::ClientGone {
                    peer_id,
                    address,
                    remote,
                } => {
                    if let Some(a) = address {
                        if self.routes.get(&a) == Some(&peer_id) {
                            self.routes.remove(&a);
                        }
                    }
                    // Its TCP connection ends with it (after what was queued for it, e.g. AUTH_FAILED).
                    if let Some(conn) = self.tcp.iter_mut().find(|c| c.peer == Some(remote)) {
                        self.public
                            .sockets
                            .get_mut::<tcp::Socket>(conn.handle)
                            .close();
                    }
                }
            }
        }
    }

    fn poll_at(&mut self, now_us: u64) -> Option<u64> {
        if !self.datagrams.is_empty() || !self.inbound.is_empty() {
            return Some(now_us);
        }
        let now = smol_now(now_us);
        let smol = self
            .public
            .poll_at(now)
            .map(|at| u64::try_from(at.total_micros()).unwrap_or(0));
        let service = self
            .service
            .poll_at()
            .map(|at| at.as_millis().saturating_mul(1000));
        let forwarder = self
            .forwarder
            .poll_at()
            .map(|at| u64::try_from(at.total_micros()).unwrap_or(0));
        let status = self.status_every_us.map(|_| self.next_status_us);
        let lan = self.lan.as_mut().and_then(|l| {
            if l.device.rx_pending() || !self.from_lan.is_empty() {
                return Some(now_us);
            }
            l.router
                .poll_at()
                .map(|at| u64::try_from(at.total_micros()).unwrap_or(0))
        });
        [smol, service, forwarder, status, lan]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.max(now_us))
    }
}

fn endpoint(addr: SocketAddr) -> IpEndpoint {
    let ip = match addr.ip() {
        IpAddr::V4(a) => IpAddress::Ipv4(a),
        IpAddr::V6(_) => IpAddress::Ipv4(Ipv4Addr::UNSPECIFIED),
    };
    IpEndpoint::new(ip, addr.port())
}

fn socket_addr(ep: IpEndpoint) -> Option<SocketAddr> {
    match ep.addr {
        IpAddress::Ipv4(a) => Some(SocketAddr::new(IpAddr::V4(a), ep.port)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
