//! The OpenVPN tunnel in the main loop: the engine between the remote's sockets (public side) and the
//! router (private side).
//!
//! Layer: kernel glue. It feeds the sans-IO engine (`openvpn::engine`) with what the remote sent and the
//! LAN's packets, and carries out its actions: open the transport, send bytes, tunnel up (the router gets
//! the pushed config), reconnect (the router's tunnel goes down: the LAN keeps its ARP, DHCP and DNS
//! answers and gets ICMP unreachable for tunnel traffic), exit (a documented exit code). It decides
//! nothing about the protocol or about forwarding.
//!
//! ```text
//! public NIC <-> smoltcp <-> Remote (UDP/TCP socket) <-> Engine <-> Router <-> private NIC
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use drivers::clock;
use openvpn::config::{self, InlineOnly};
use openvpn::crypto::DataChannel;
use openvpn::engine::{Action, Engine, EngineConfig, EngineState, Received, ReceivedAt, SendError};
use openvpn::time::Instant as EngineInstant;
use oxvpn_kernel::args::BootArgs;
use oxvpn_kernel::exit::ExitCode;
use oxvpn_kernel::pushed;
use router::outer::UdpFlow;
use router::{Instant, PortId, Router, Sink, TunnelState};
use smoltcp::iface::{Interface, SocketSet};
use smoltcp::wire::EthernetAddress;

use crate::entropy::KernelRng;
use crate::fastpath::{self, Taken};
use crate::platform::exit;
use crate::public::Nic;
use crate::remote::{Remote, RemoteEvent};
use crate::status::{State, Status};

/// Largest datagram taken from the remote: any UDP payload (a pushed `tun-mtu` may exceed 1500).
const RX_BUF: usize = 65536;
/// Largest encrypted packet: any IP packet (up to the tunnel MTU the router enforces) plus the data
/// channel's overhead (`Engine::encapsulate` asks for 106 bytes) and the TCP length prefix.
const TX_BUF: usize = 65536 + 128;
/// Datagrams taken from the remote per main-loop pass before the LAN gets its turn.
const RX_BURST: usize = 128;
/// Packets the router may address to the tunnel while it handles a packet from it (ICMP errors).
const ECHO_QUEUE: usize = 16;

/// The engine, the remote transport and what the tunnel has told the console.
pub struct Tunnel {
    engine: Engine,
    remote: Remote,
    status: Status,
    tun_mtu: u16,
    mssfix: u32,
    /// `--resolver=IP`; else the DHCP lease's DNS server is used.
    resolver: Option<Ipv4Addr>,
    up: bool,
    rx: Box<[u8]>,
    tx: Box<[u8]>,
    /// Router output for the tunnel produced while handling tunnel input (sent right after).
    echo: Vec<Vec<u8>>,
    /// The part of the engine's data headroom the last sealed packet did not use (see `seal_in_slot`).
    seal_skip: usize,
    /// Datagrams of the tunnel's UDP flow dropped by the fast path for a bad IPv4 or UDP checksum.
    bad_checksums: u64,
    /// Where frames to the server go: the source MAC of its last datagram that the engine accepted as an
    /// authentic data packet (the server itself or the public side's gateway). Forgotten on every
    /// `Connect` (the fast path needs a ready transport, so a closed one never uses a stale value).
    next_hop: Option<EthernetAddress>,
    /// The config's `<qubes-firewall>` lines, until the network takes them.
    qubes_firewall: Vec<openvpn::config::QubesFirewallLine>,
}

fn engine_now(now_us: u64) -> EngineInstant {
    EngineInstant::from_micros(now_us)
}

fn router_now(now_us: u64) -> Instant {
    Instant::from_micros(i64::try_from(now_us).unwrap_or(i64::MAX))
}

use crate::init::bad_config;

impl Tunnel {
    /// Parses the config text (everything inline), builds the engine and adds the remote's sockets to
    /// the public socket set. Exits with [`ExitCode::BadConfig`] when the config cannot be used.
    pub fn new(text: &str, args: &BootArgs, sockets: &mut SocketSet<'static>) -> Tunnel {
        let parsed = match config::parse(text, &mut InlineOnly) {
            Ok(p) => p,
            Err(e) => bad_config(format_args!("{e}")),
        };
        for warning in &parsed.warnings {
            log::warn!("config: {warning}");
        }
        let engine_config = match EngineConfig::from_config(&parsed.config) {
            Ok(c) => c,
            Err(e) => bad_config(format_args!("{e}")),
        };
        for remote in &engine_config.remotes {
            log::info!(
                "config: remote {} {} {:?}",
                remote.host,
                remote.port,
                remote.transport
            );
        }
        let tun_mtu = engine_config.tun_mtu;
        let now_us = clock::now_us();
        let unix = crate::init::wall_clock_for_certificates();
        let engine = match Engine::new(engine_config, engine_now(now_us), unix, &mut KernelRng) {
            Ok(e) => e,
            Err(e) => bad_config(format_args!("{e}")),
        };
        Tunnel {
            engine,
            remote: Remote::new(sockets),
            status: Status::new(),
            tun_mtu,
            mssfix: parsed.config.mssfix,
            resolver: args.resolver,
            up: false,
            rx: alloc::vec![0; RX_BUF].into_boxed_slice(),
            tx: alloc::vec![0; TX_BUF].into_boxed_slice(),
            echo: Vec::new(),
            seal_skip: 0,
            bad_checksums: 0,
            next_hop: None,
            qubes_firewall: parsed.config.qubes_firewall.clone(),
        }
    }

    /// The config's `<qubes-firewall>` lines (once).
    pub fn take_qubes_firewall(&mut self) -> Vec<openvpn::config::QubesFirewallLine> {
        core::mem::take(&mut self.qubes_firewall)
    }

    /// Encrypts one IP packet from the LAN (the router's `tunnel_packet`) and sends it to the remote.
    /// Dropped while the tunnel is down or the socket is full.
    ///
    /// With `fast` (the public NIC and the tunnel's UDP flow) and the next hop's MAC address known (from
    /// the server's authenticated datagrams), the packet is copied once, behind the frame headers and the
    /// engine's data headroom in a transmit buffer of the public NIC, sealed there in place
    /// (`Engine::encapsulate_in_place_at`) and sent with headers written by `fastpath`: no
    /// smoltcp socket, no other copy. Otherwise over UDP the same happens in a slot of smoltcp's UDP
    /// transmit ring (smoltcp then copies the datagram into a transmit buffer). Over TCP (and before the
    /// tunnel is up) it goes through `Engine::encapsulate`.
    pub fn send_packet(
        &mut self,
        now_us: u64,
        packet: &[u8],
        sockets: &mut SocketSet<'static>,
        fast: Option<(&mut Nic, &UdpFlow)>,
    ) {
        if let Some(headroom) = self.engine.data_headroom() {
            let now = engine_now(now_us);
            let max = headroom
                .saturating_add(packet.len())
                .saturating_add(DataChannel::MAX_OVERHEAD);
            if let (Some((nic, flow)), Some(next_hop)) = (fast, self.next_hop) {
                // `max` is the worst case of any cipher; the frame gets what the MTU allows, and sealing
                // finds out whether this key's real overhead fits.
                let engine = &mut self.engine;
                let skip = &mut self.seal_skip;
                fastpath::send_datagram(nic, flow, next_hop, max, |slot| {
                    match seal_in_slot(engine, now, slot, headroom, skip, packet) {
                        Ok(n) => n,
                        Err(SendError::BufferTooSmall) => {
                            log::trace!("tunnel: datagram over the public MTU dropped");
                            0
                        }
                        Err(e) => {
                            log::warn!("tunnel: packet not sealed: {e}");
                            0
                        }
                    }
                });
                return;
            }
            if self.remote.udp_ready() {
                let engine = &mut self.engine;
                let skip = &mut self.seal_skip;
                self.remote.send_udp_with(sockets, max, |slot| {
                    seal_in_slot(engine, now, slot, headroom, skip, packet).unwrap_or_else(|e| {
                        log::warn!("tunnel: packet not sealed: {e}");
                        0
                    })
                });
                return;
            }
        }
        match self
            .engine
            .encapsulate(engine_now(now_us), packet, &mut self.tx, &mut KernelRng)
        {
            Ok(n) => {
                if let Some(bytes) = self.tx.get(..n) {
                    self.remote.send(sockets, bytes);
                }
            }
            Err(e) => log::trace!("tunnel: packet dropped: {e}"),
        }
    }

    /// The tunnel's UDP flow on the public NIC once the transport is a ready UDP socket: frames matching
    /// it go to [`take_frame`](Self::take_frame) instead of through smoltcp's socket.
    pub fn udp_flow(&self, iface: &Interface) -> Option<UdpFlow> {
        let (server, port, local_port) = self.remote.udp_flow()?;
        Some(UdpFlow {
            local_mac: fastpath::local_mac(iface),
            local: (iface.ipv4_addr()?, local_port),
            remote: (server, port),
        })
    }

    /// The public side's fast path, for one frame in the NIC's receive buffer: a datagram of `flow` is
    /// handed to the engine where it lies (decrypted in place) and a decrypted packet to the router in
    /// place too (`Router::handle_tunnel_packet_in_place`: its LAN frame is built in the same buffer and
    /// copied once, into the private NIC's transmit buffer by `lan`). Returns false for any other frame,
    /// which smoltcp then gets. This is [`poll`](Self::poll)'s input half without the socket's two copies
    /// (into smoltcp's receive ring, out into `rx`) and without smoltcp's checksum and socket work.
    pub fn take_frame(
        &mut self,
        now_us: u64,
        frame: &mut [u8],
        flow: &UdpFlow,
        router: &mut Router,
        lan: &mut dyn FnMut(PortId, &[u8]),
    ) -> bool {
        let (payload, source_mac) = match fastpath::take_flow(frame, flow) {
            Taken::Other => return false,
            Taken::BadChecksum => {
                self.bad_checksums += 1;
                log::trace!("remote: datagram with a bad checksum dropped");
                return true;
            }
            Taken::Datagram {
                payload,
                source_mac,
            } => (payload, source_mac),
        };
        let Some(datagram) = frame.get_mut(payload.clone()) else {
            return true;
        };
        match self.engine.receive_in_place(engine_now(now_us), datagram) {
            ReceivedAt::Packet(range) => {
                self.next_hop = Some(source_mac);
                let packet = payload.start + range.start..payload.start + range.end;
                let mut sink = EchoSink {
                    lan,
                    echo: &mut self.echo,
                };
                router.handle_tunnel_packet_in_place(router_now(now_us), frame, packet, &mut sink);
            }
            ReceivedAt::Consumed => show_handshake(&mut self.status, self.engine.state()),
            ReceivedAt::Dropped => {}
        }
        true
    }

    /// One pass: transport progress, everything the remote sent (decrypted packets go through the router
    /// to the LAN via `lan`), then the engine's timers and actions. `dhcp_dns` is the public lease's DNS
    /// server, for host names when no `--resolver` was given.
    pub fn poll(
        &mut self,
        now_us: u64,
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        router: &mut Router,
        lan: &mut dyn FnMut(PortId, &[u8]),
        dhcp_dns: Option<Ipv4Addr>,
    ) {
        let now = engine_now(now_us);
        let rnow = router_now(now_us);

        // Input from the remote first, so that its acks and replies shape what the engine sends next.
        let Self {
            engine,
            remote,
            rx,
            echo,
            status,
            ..
        } = self;
        let mut sink = EchoSink { lan, echo };
        let result = remote.receive(sockets, rx, RX_BURST, |datagram| {
            match engine.receive(now, datagram) {
                Received::Packet(ip) => {
                    router.handle_tunnel_packet(rnow, ip, &mut sink);
                }
                Received::Consumed => show_handshake(status, engine.state()),
                Received::Dropped => {}
            }
        });
        for packet in core::mem::take(&mut self.echo) {
            self.send_packet(now_us, &packet, sockets, None);
        }
        if let Err(e) = result {
            log::warn!("remote: {e}");
            self.remote.close(sockets);
            self.engine.transport_failed(now);
        }

        // Transport progress and the engine's actions, until neither has more to do right now.
        for _ in 0..4 {
            let resolver = self.resolver.or(dhcp_dns);
            let mut progressed = false;
            if let Some(event) = self.remote.poll(iface, sockets, resolver) {
                progressed = true;
                match event {
                    RemoteEvent::Resolved(addr) => log::info!("remote resolved to {addr}"),
                    RemoteEvent::Ready(endpoint) => {
                        self.status.set(State::Wait, format_args!("{endpoint}"));
                        self.engine.transport_ready(now);
                    }
                    RemoteEvent::Failed(e) => {
                        log::warn!("remote: {e}");
                        self.engine.transport_failed(now);
                    }
                }
            }
            while let Some(action) = self.engine.poll_action(now, &mut KernelRng) {
                progressed = true;
                self.act(now_us, action, sockets, router);
            }
            if !progressed {
                break;
            }
        }
        show_handshake(&mut self.status, self.engine.state());
    }

    fn act(
        &mut self,
        now_us: u64,
        action: Action,
        sockets: &mut SocketSet<'static>,
        router: &mut Router,
    ) {
        match action {
            Action::Connect(spec) => {
                let state = if spec.host.parse::<Ipv4Addr>().is_ok() {
                    State::Connecting
                } else {
                    State::Resolve
                };
                self.status.set(
                    state,
                    format_args!("{}:{} {:?}", spec.host, spec.port, spec.transport),
                );
                // A new transport, perhaps to another server: its next hop is learnt afresh.
                self.next_hop = None;
                self.remote.connect(spec, sockets);
            }
            Action::SendToRemote(bytes) => {
                self.remote.send(sockets, &bytes);
            }
            Action::TunnelUp(config) => {
                self.status.set(
                    State::AssignIp,
                    format_args!(
                        "{}",
                        config.local_address().unwrap_or(Ipv4Addr::UNSPECIFIED)
                    ),
                );
                let tunnel = pushed::tunnel_config(&config, self.tun_mtu, self.mssfix);
                pushed::log(&config, &tunnel);
                router.set_tunnel(TunnelState::Up(tunnel));
                self.up = true;
                self.status.set(
                    State::Connected,
                    format_args!("{} ms after boot", now_us / 1000),
                );
                let (used, free) = crate::heap::usage();
                log::info!("heap: {} KiB used, {} KiB free", used >> 10, free >> 10);
            }
            Action::Reconnect(reason) => {
                self.status
                    .set(State::Reconnecting, format_args!("{reason:?}"));
                log::info!("engine: {:?}", self.engine.stats());
                if self.bad_checksums > 0 {
                    log::info!(
                        "remote: {} datagrams with bad checksums",
                        self.bad_checksums
                    );
                }
                log::info!("router: {:?}", router.stats());
                if core::mem::take(&mut self.up) {
                    router.set_tunnel(TunnelState::Down);
                }
                self.remote.close(sockets);
            }
            Action::Exit(reason) => {
                self.status.set(State::Exiting, format_args!("{reason:?}"));
                router.set_tunnel(TunnelState::Down);
                log::error!("exit: {}", ExitCode::FatalProtocol);
                exit(ExitCode::FatalProtocol)
            }
        }
    }

    /// The host asked the VM to shut down: tells the server (explicit exit notification, twice: it is a
    /// datagram and idempotent) when the tunnel is up, and shows EXITING. The caller sends what was
    /// queued before it exits.
    pub fn shutdown(&mut self, now_us: u64, sockets: &mut SocketSet<'static>) {
        if let Some(packet) = self.engine.shutdown(engine_now(now_us), &mut KernelRng) {
            for _ in 0..2 {
                self.remote.send(sockets, &packet);
            }
        }
        self.status.set(
            State::Exiting,
            format_args!("shutdown requested by the host"),
        );
    }

    /// When [`poll`](Self::poll) is next due without new input, in monotonic microseconds (`Some(now)`
    /// when work is waiting).
    pub fn poll_at(&self, now_us: u64, sockets: &mut SocketSet<'static>) -> Option<u64> {
        if self.remote.rx_pending(sockets) {
            return Some(now_us);
        }
        let remote = self
            .remote
            .poll_delay_us()
            .map(|d| now_us.saturating_add(d));
        let engine = self
            .engine
            .poll_at()
            .map(|at| at.as_millis().saturating_mul(1000));
        [remote, engine].into_iter().flatten().min()
    }
}

/// Writes `packet` into `slot` behind the engine's data headroom, seals it in place and returns the
/// datagram's length (it starts at `slot[0]`), or why sealing failed (the engine's data channel cannot
/// break down between the check for its headroom and this call; a slot too small for this key's
/// overhead is [`SendError::BufferTooSmall`]).
///
/// `data_headroom` leaves room for a compression prefix most packets do not get; `skip` is that unused
/// part as the previous packet found it, so the packet is written that much earlier and the datagram
/// starts at `slot[0]` without moving it. Should a packet need more room after all, it is written again at
/// the full headroom (and the datagram moved to the front).
fn seal_in_slot(
    engine: &mut Engine,
    now: EngineInstant,
    slot: &mut [u8],
    headroom: usize,
    skip: &mut usize,
    packet: &[u8],
) -> Result<usize, SendError> {
    let mut at = headroom.saturating_sub(*skip);
    let sealed = match seal_at(engine, now, slot, at, packet) {
        Err(SendError::BufferTooSmall) if at < headroom => {
            at = headroom;
            seal_at(engine, now, slot, at, packet)
        }
        other => other,
    };
    let range = sealed?;
    let n = range.len();
    if range.start > 0 {
        if range.end > slot.len() {
            return Err(SendError::BufferTooSmall);
        }
        slot.copy_within(range.clone(), 0);
    }
    *skip = headroom.saturating_sub(at).saturating_add(range.start);
    Ok(n)
}

fn seal_at(
    engine: &mut Engine,
    now: EngineInstant,
    slot: &mut [u8],
    at: usize,
    packet: &[u8],
) -> Result<core::ops::Range<usize>, SendError> {
    let payload = slot
        .get_mut(at..at.saturating_add(packet.len()))
        .ok_or(SendError::BufferTooSmall)?;
    payload.copy_from_slice(packet);
    engine.encapsulate_in_place_at(now, slot, at, packet.len(), &mut KernelRng)
}

/// Reports the handshake's inner states (the others come with the engine's actions).
fn show_handshake(status: &mut Status, state: EngineState) {
    match state {
        EngineState::Auth => status.set(State::Auth, format_args!("TLS handshake, key-method 2")),
        EngineState::GetConfig => status.set(State::GetConfig, format_args!("PUSH_REQUEST")),
        _ => {}
    }
}

/// The router's output while it handles a packet from the tunnel: frames to the LAN, and (rarely, ICMP
/// errors) packets back into the tunnel, queued because the engine is busy with the input.
struct EchoSink<'a> {
    lan: &'a mut dyn FnMut(PortId, &[u8]),
    echo: &'a mut Vec<Vec<u8>>,
}

impl Sink for EchoSink<'_> {
    fn lan_frame(&mut self, port: PortId, frame: &[u8]) {
        (self.lan)(port, frame);
    }

    fn tunnel_packet(&mut self, packet: &[u8]) {
        if self.echo.len() < ECHO_QUEUE {
            self.echo.push(packet.to_vec());
        }
    }
}
