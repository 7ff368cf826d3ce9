//! The transport to the OpenVPN server on the public side: a smoltcp UDP socket (or a TCP connection for
//! `proto tcp`), and the DNS lookup of a `remote` host name.
//!
//! Layer: kernel glue over smoltcp sockets. It opens what the engine asks for ([`Remote::connect`] on the
//! engine's `Action::Connect`), reports when the transport is usable or failed ([`Remote::poll`]), and moves
//! bytes: datagrams (or framed TCP packets) out with [`Remote::send`], in with [`Remote::receive`]. It
//! never interprets them: that is the engine's job.
//!
//! Host names are resolved over the public interface with smoltcp's DNS socket, asking `--resolver=IP` or
//! else the DNS server the DHCP lease named. Only IPv4 is used on the public side.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

use openvpn::engine::{RemoteSpec, StreamDeframer};
use openvpn::session::Transport;
use rand_core::RngCore;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::dns::{self, GetQueryResultError, QueryHandle};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use smoltcp::wire::{DnsQueryType, IpAddress, IpEndpoint};

use crate::entropy::KernelRng;

/// Datagrams the UDP socket's receive ring holds. Over a ready UDP transport the server's datagrams
/// bypass the socket (`Tunnel::take_frame` takes them from the NIC's receive buffers), so the ring only
/// sees datagrams from other endpoints (dropped) and what arrives before the transport is ready.
const UDP_PACKETS: usize = 64;
/// Bytes the UDP socket's receive ring holds.
const UDP_BYTES: usize = 64 << 10;
/// Bytes the UDP socket's transmit ring holds: control packets, and data packets until the fast path
/// knows the next hop (`Tunnel::send_packet`), sealed in place in it (smoltcp's `send_with`).
const UDP_TX_BYTES: usize = 32 << 10;
/// Datagrams the transmit ring holds: enough that its metadata ring never fills before its bytes do
/// (every datagram sent is at least 16 bytes; the smallest control packet has 22), because smoltcp
/// 0.12's `send_with` (`PacketBuffer::enqueue_with_infallible`) commits the bytes before it finds the
/// metadata ring full when it has to add wrap-around padding, and then leaves orphan bytes that shift
/// every later datagram (seen as an iperf3 UDP flood through the VM that stopped all upload traffic).
const UDP_TX_PACKETS: usize = UDP_TX_BYTES / 16 + 2;
/// Bytes the TCP socket buffers each way.
const TCP_BYTES: usize = 256 << 10;
/// Poll interval while a DNS query or a TCP handshake is in flight.
const CONNECTING_POLL_US: u64 = 5_000;
/// How long an unacknowledged send may wait before the TCP connection fails, and a TCP connect too unless
/// the remote has its own `connect-timeout` (OpenVPN's timeout for the TCP handshake).
const TCP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the transport could not be opened or broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteError {
    /// The remote asks for IPv6 (`proto udp6`/`tcp6`); the public side is IPv4 only.
    Ipv6Unsupported,
    /// A host name needs resolving but there is no resolver (`--resolver=IP` or a DHCP lease with DNS).
    NoResolver,
    /// The DNS lookup failed or found no IPv4 address.
    Resolve,
    /// The host name is not a valid DNS name.
    BadName,
    /// The TCP connection was refused, timed out or closed.
    TcpClosed,
    /// The TCP stream carried a frame longer than the engine accepts.
    BadFrame,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteError::Ipv6Unsupported => "IPv6 remotes are not supported on the public side",
            RemoteError::NoResolver => {
                "no DNS resolver for the remote host name (--resolver=IP or DHCP)"
            }
            RemoteError::Resolve => "DNS lookup found no IPv4 address",
            RemoteError::BadName => "remote host is not a valid DNS name",
            RemoteError::TcpClosed => "TCP connection refused, timed out or closed",
            RemoteError::BadFrame => "TCP stream framing broken",
        })
    }
}

/// What [`Remote::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteEvent {
    /// The host name resolved (the state line wants it).
    Resolved(Ipv4Addr),
    /// The transport is usable: tell the engine `transport_ready`.
    Ready(IpEndpoint),
    /// Opening failed or the transport broke: tell the engine `transport_failed`.
    Failed(RemoteError),
}

enum Phase {
    /// Nothing asked for.
    Idle,
    /// Waiting for a public address (DHCP) or for a resolver.
    WaitNetwork(RemoteSpec),
    /// DNS query in flight.
    Resolving(RemoteSpec, QueryHandle),
    /// Address known; open the transport once the interface has an address (the TCP connect timeout).
    Open(IpEndpoint, bool, Duration),
    /// TCP handshake in flight.
    TcpConnecting(IpEndpoint),
    /// Usable.
    Ready(IpEndpoint, bool),
}

/// The sockets to the remote and where the connection stands.
pub struct Remote {
    udp: SocketHandle,
    tcp: SocketHandle,
    dns: SocketHandle,
    phase: Phase,
    deframer: Box<StreamDeframer>,
    udp_port: u16,
}

/// An ephemeral port (RFC 6335 dynamic range).
fn ephemeral_port() -> u16 {
    49152 + u16::try_from(KernelRng.next_u32() % 16384).unwrap_or(0)
}

/// The TCP connect timeout for `spec`: its `<connection>` block's `connect-timeout`, else [`TCP_TIMEOUT`].
fn connect_timeout(spec: &RemoteSpec) -> Duration {
    spec.server_poll_timeout_secs
        .map_or(TCP_TIMEOUT, |s| Duration::from_secs(s.clamp(1, 300)))
}

impl Remote {
    /// Adds the UDP, TCP and DNS sockets to the public interface's socket set.
    pub fn new(sockets: &mut SocketSet<'static>) -> Self {
        let udp = udp::Socket::new(
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            ),
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_TX_PACKETS],
                vec![0; UDP_TX_BYTES],
            ),
        );
        let mut tcp = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_BYTES]),
            tcp::SocketBuffer::new(vec![0; TCP_BYTES]),
        );
        tcp.set_timeout(Some(TCP_TIMEOUT));
        tcp.set_nagle_enabled(false);
        let queries: Vec<Option<dns::DnsQuery>> = (0..1).map(|_| None).collect();
        let dns = dns::Socket::new(&[], queries);
        Remote {
            udp: sockets.add(udp),
            tcp: sockets.add(tcp),
            dns: sockets.add(dns),
            phase: Phase::Idle,
            deframer: Box::new(StreamDeframer::new()),
            udp_port: ephemeral_port(),
        }
    }

    /// Starts opening a transport to `spec`, closing any previous one. Progress comes from [`poll`].
    ///
    /// [`poll`]: Self::poll
    pub fn connect(&mut self, spec: RemoteSpec, sockets: &mut SocketSet<'static>) {
        self.close(sockets);
        self.phase = Phase::WaitNetwork(spec);
    }

    /// Closes the transport (TCP: reset; UDP: forget the endpoint, drop queued datagrams both ways).
    ///
    /// The UDP socket is unbound, which empties its transmit ring too: smoltcp keeps a datagram whose
    /// next hop never answers ARP at the head of the ring for good, and every datagram queued behind it,
    /// to the next remote as well, would wait with it (a dead on-link first remote stalled failover).
    pub fn close(&mut self, sockets: &mut SocketSet<'static>) {
        if let Phase::Resolving(_, query) = &self.phase {
            sockets
                .get_mut::<dns::Socket>(self.dns)
                .cancel_query(*query);
        }
        let tcp = sockets.get_mut::<tcp::Socket>(self.tcp);
        if tcp.is_open() {
            tcp.abort();
        }
        sockets.get_mut::<udp::Socket>(self.udp).close();
        self.deframer.reset();
        self.phase = Phase::Idle;
    }

    /// Advances resolution and connection; `resolver` is the DNS server to ask for host names.
    pub fn poll(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        resolver: Option<Ipv4Addr>,
    ) -> Option<RemoteEvent> {
        let has_address = iface.ipv4_addr().is_some();
        match core::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => None,
            Phase::WaitNetwork(spec) => {
                let tcp = match spec.transport {
                    Transport::Udp4 => false,
                    Transport::Tcp4 => true,
                    Transport::Udp6 | Transport::Tcp6 => {
                        return Some(RemoteEvent::Failed(RemoteError::Ipv6Unsupported))
                    }
                };
                let timeout = connect_timeout(&spec);
                if let Ok(addr) = spec.host.parse::<Ipv4Addr>() {
                    self.phase = Phase::Open(
                        IpEndpoint::new(IpAddress::Ipv4(addr), spec.port),
                        tcp,
                        timeout,
                    );
                    return self.poll(iface, sockets, resolver);
                }
                if !has_address {
                    self.phase = Phase::WaitNetwork(spec);
                    return None;
                }
                let Some(server) = resolver else {
                    return Some(RemoteEvent::Failed(RemoteError::NoResolver));
                };
                let dns = sockets.get_mut::<dns::Socket>(self.dns);
                dns.update_servers(&[IpAddress::Ipv4(server)]);
                match dns.start_query(iface.context(), &spec.host, DnsQueryType::A) {
                    Ok(query) => {
                        log::info!("resolving {} via {server}", spec.host);
                        self.phase = Phase::Resolving(spec, query);
                        None
                    }
                    Err(_) => Some(RemoteEvent::Failed(RemoteError::BadName)),
                }
            }
            Phase::Resolving(spec, query) => {
                let dns = sockets.get_mut::<dns::Socket>(self.dns);
                match dns.get_query_result(query) {
                    Err(GetQueryResultError::Pending) => {
                        self.phase = Phase::Resolving(spec, query);
                        None
                    }
                    Err(GetQueryResultError::Failed) => {
                        Some(RemoteEvent::Failed(RemoteError::Resolve))
                    }
                    Ok(addrs) => {
                        let Some(addr) = addrs.iter().find_map(|a| match a {
                            IpAddress::Ipv4(a) => Some(*a),
                            IpAddress::Ipv6(_) => None,
                        }) else {
                            return Some(RemoteEvent::Failed(RemoteError::Resolve));
                        };
                        let tcp = spec.transport == Transport::Tcp4;
                        self.phase = Phase::Open(
                            IpEndpoint::new(IpAddress::Ipv4(addr), spec.port),
                            tcp,
                            connect_timeout(&spec),
                        );
                        Some(RemoteEvent::Resolved(addr))
                    }
                }
            }
            Phase::Open(endpoint, tcp, timeout) => {
                if !has_address {
                    self.phase = Phase::Open(endpoint, tcp, timeout);
                    return None;
                }
                if tcp {
                    let socket = sockets.get_mut::<tcp::Socket>(self.tcp);
                    socket.set_timeout(Some(timeout));
                    match socket.connect(iface.context(), endpoint, ephemeral_port()) {
                        Ok(()) => {
                            self.phase = Phase::TcpConnecting(endpoint);
                            None
                        }
                        Err(_) => Some(RemoteEvent::Failed(RemoteError::TcpClosed)),
                    }
                } else {
                    let socket = sockets.get_mut::<udp::Socket>(self.udp);
                    if !socket.is_open() {
                        // A fresh source port for every connection (as OpenVPN's `nobind` client): a server
                        // that still holds the previous session for the old port would otherwise answer
                        // the new session's reset from the old one.
                        self.udp_port = ephemeral_port();
                        let _ = socket.bind(self.udp_port);
                    }
                    self.phase = Phase::Ready(endpoint, false);
                    Some(RemoteEvent::Ready(endpoint))
                }
            }
            Phase::TcpConnecting(endpoint) => {
                let socket = sockets.get_mut::<tcp::Socket>(self.tcp);
                if socket.may_send() {
                    socket.set_timeout(Some(TCP_TIMEOUT));
                    self.phase = Phase::Ready(endpoint, true);
                    Some(RemoteEvent::Ready(endpoint))
                } else if !socket.is_open() {
                    Some(RemoteEvent::Failed(RemoteError::TcpClosed))
                } else {
                    self.phase = Phase::TcpConnecting(endpoint);
                    None
                }
            }
            Phase::Ready(endpoint, tcp) => {
                self.phase = Phase::Ready(endpoint, tcp);
                if tcp && !sockets.get_mut::<tcp::Socket>(self.tcp).may_recv() {
                    self.close(sockets);
                    return Some(RemoteEvent::Failed(RemoteError::TcpClosed));
                }
                None
            }
        }
    }

    /// Sends one datagram (UDP) or one framed packet (TCP, length prefix included). Dropped when the
    /// transport is not ready or its buffer is full: the engine retransmits control packets, and the
    /// tunnel's own TCP flows recover lost data packets.
    pub fn send(&mut self, sockets: &mut SocketSet<'static>, bytes: &[u8]) -> bool {
        match self.phase {
            Phase::Ready(endpoint, false) => sockets
                .get_mut::<udp::Socket>(self.udp)
                .send_slice(bytes, endpoint)
                .is_ok(),
            Phase::Ready(_, true) => {
                let socket = sockets.get_mut::<tcp::Socket>(self.tcp);
                // Whole packets or nothing: a partial write would break the stream's framing.
                if socket.send_capacity() - socket.send_queue() < bytes.len() {
                    return false;
                }
                socket.send_slice(bytes).is_ok_and(|n| n == bytes.len())
            }
            _ => false,
        }
    }

    /// Whether the transport is a ready UDP socket ([`send_udp_with`](Self::send_udp_with) works).
    pub fn udp_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready(_, false))
    }

    /// The ready UDP transport's server endpoint and local port (`None` over TCP or before it is ready):
    /// what the public side's fast path picks out of received frames for the engine.
    pub fn udp_flow(&self) -> Option<(Ipv4Addr, u16, u16)> {
        match self.phase {
            Phase::Ready(
                IpEndpoint {
                    addr: IpAddress::Ipv4(addr),
                    port,
                },
                false,
            ) => Some((addr, port, self.udp_port)),
            _ => None,
        }
    }

    /// Sends one UDP datagram written in place in the socket's transmit ring: `fill` gets a slot of
    /// `max_size` bytes and returns the datagram's length, from the slot's start (no copy in between).
    /// Returns false (without calling `fill`) when the transport is not a ready UDP socket or the ring
    /// is full. `fill` returning 0 leaves an empty datagram: callers size the slot so that cannot happen.
    pub fn send_udp_with(
        &mut self,
        sockets: &mut SocketSet<'static>,
        max_size: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        match self.phase {
            Phase::Ready(endpoint, false) => sockets
                .get_mut::<udp::Socket>(self.udp)
                .send_with(max_size, endpoint, fill)
                .is_ok(),
            _ => false,
        }
    }

    /// Hands every packet received from the remote to `handle` (at most `limit` datagrams per call, so
    /// that the LAN side gets its turn). UDP datagrams from other endpoints are dropped.
    pub fn receive(
        &mut self,
        sockets: &mut SocketSet<'static>,
        buf: &mut [u8],
        limit: usize,
        mut handle: impl FnMut(&mut [u8]),
    ) -> Result<(), RemoteError> {
        match self.phase {
            Phase::Ready(endpoint, false) => {
                let socket = sockets.get_mut::<udp::Socket>(self.udp);
                for _ in 0..limit {
                    let Ok((n, meta)) = socket.recv_slice(buf) else {
                        break;
                    };
                    if meta.endpoint != endpoint {
                        continue;
                    }
                    if let Some(datagram) = buf.get_mut(..n) {
                        handle(datagram);
                    }
                }
                Ok(())
            }
            Phase::Ready(_, true) => {
                let socket = sockets.get_mut::<tcp::Socket>(self.tcp);
                for _ in 0..limit {
                    let space = self.deframer.free_space();
                    let n = socket.recv_slice(space).unwrap_or(0);
                    self.deframer.commit(n);
                    let mut frames = 0;
                    loop {
                        match self.deframer.next_frame() {
                            Ok(Some(frame)) => {
                                frames += 1;
                                handle(frame);
                            }
                            Ok(None) => break,
                            Err(_) => return Err(RemoteError::BadFrame),
                        }
                    }
                    if n == 0 && frames == 0 {
                        break;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether received data is waiting in the sockets.
    pub fn rx_pending(&self, sockets: &mut SocketSet<'static>) -> bool {
        match self.phase {
            Phase::Ready(_, false) => sockets.get_mut::<udp::Socket>(self.udp).can_recv(),
            Phase::Ready(_, true) => sockets.get_mut::<tcp::Socket>(self.tcp).can_recv(),
            _ => false,
        }
    }

    /// How soon [`poll`](Self::poll) should run again without new input, in microseconds: at once for a
    /// pending state change, every few milliseconds while a DNS answer or a TCP handshake may have landed
    /// in the sockets (smoltcp does not say when a query completes), else `None`.
    pub fn poll_delay_us(&self) -> Option<u64> {
        match self.phase {
            Phase::WaitNetwork(_) | Phase::Open(..) => Some(0),
            Phase::Resolving(..) | Phase::TcpConnecting(_) => Some(CONNECTING_POLL_US),
            Phase::Idle | Phase::Ready(..) => None,
        }
    }
}
