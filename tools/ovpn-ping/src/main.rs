//! ovpn-ping: connects to an OpenVPN server with oxvpn's sans-IO engine over a real UDP socket, prints the
//! handshake time and the pushed configuration, then pings the server's tunnel address through the tunnel
//! with hand-built ICMP echo requests (`--target IP` pings another address through the tunnel; see
//! `target.rs` for how the server's address is found in each topology). Exit status 0 only if echo replies
//! came back.
//!
//! Usage: ovpn-ping CONFIG [--count N] [--timeout S] [--interval S] [--impair PCT] [--ipv6] [--target IP]

mod conf;
mod icmp;
mod impair;
mod target;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openvpn::engine::{Action, Engine, Received, ReconnectReason, RemoteSpec, StreamDeframer};
use openvpn::session::PushedConfig;
use openvpn::session::Transport;
use openvpn::time::Instant;
use rand_core::OsRng;

/// Engine log lines to stderr; `OVPN_PING_LOG=debug|info|warn` (default warn).
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{}] {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

/// The connection to the server: a UDP socket, or a TCP stream with its frame reassembly.
enum Link {
    /// Not opened yet.
    None,
    Udp(UdpSocket),
    Tcp(TcpStream, Box<StreamDeframer>),
}

impl Link {
    /// Resolves and opens a transport to the remote the engine asked for.
    fn open(remote: &RemoteSpec) -> Result<Link, String> {
        let tcp = matches!(remote.transport, Transport::Tcp4 | Transport::Tcp6);
        let want_v6 = matches!(remote.transport, Transport::Udp6 | Transport::Tcp6);
        let addr = (remote.host.as_str(), remote.port)
            .to_socket_addrs()
            .map_err(|e| format!("remote {}: {e}", remote.host))?
            .find(|a| a.is_ipv6() == want_v6)
            .ok_or(format!(
                "remote {}: no address of the wanted family",
                remote.host
            ))?;
        println!(
            "connecting to {addr} over {}",
            if tcp { "TCP" } else { "UDP" }
        );
        Self::connect(addr, tcp)
    }

    fn connect(remote: SocketAddr, tcp: bool) -> Result<Link, String> {
        if tcp {
            let s = TcpStream::connect_timeout(&remote, Duration::from_secs(10))
                .map_err(|e| format!("connect {remote}: {e}"))?;
            let _ = s.set_nodelay(true);
            Ok(Link::Tcp(s, Box::new(StreamDeframer::new())))
        } else {
            let any = if remote.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let s = UdpSocket::bind(any).map_err(|e| format!("bind: {e}"))?;
            s.connect(remote)
                .map_err(|e| format!("connect {remote}: {e}"))?;
            Ok(Link::Udp(s))
        }
    }

    /// Sends bytes the engine produced (already framed for TCP), through the UDP impairment if any.
    fn send_impaired(&mut self, impair: &mut impair::Impair, bytes: &[u8]) {
        if let Link::Udp(_) = self {
            for d in impair.outgoing(bytes) {
                self.send(&d);
            }
        } else {
            self.send(bytes);
        }
    }

    /// Sends bytes the engine produced (already framed for TCP).
    fn send(&mut self, bytes: &[u8]) {
        let _ = match self {
            Link::Udp(s) => s.send(bytes).map(|_| ()),
            Link::Tcp(s, _) => s.write_all(bytes),
            Link::None => Ok(()),
        };
    }

    /// Waits up to `wait` for input and hands every received packet to `handle`. Returns false when the
    /// TCP connection was closed or broke (the link is then gone).
    fn receive(
        &mut self,
        wait: Duration,
        buf: &mut [u8],
        mut handle: impl FnMut(&mut [u8]),
    ) -> Result<bool, String> {
        let wait = wait.max(Duration::from_millis(1));
        let quiet = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionRefused
            )
        };
        match self {
            Link::None => std::thread::sleep(wait),
            Link::Udp(s) => {
                s.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
                match s.recv(buf) {
                    Ok(n) => handle(&mut buf[..n]),
                    Err(e) if quiet(&e) => {}
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
            Link::Tcp(s, deframer) => {
                s.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
                match s.read(deframer.free_space()) {
                    Ok(0) => {
                        println!("server closed the TCP connection");
                        *self = Link::None;
                        return Ok(false);
                    }
                    Ok(n) => deframer.commit(n),
                    Err(e) if quiet(&e) => {}
                    Err(e) => {
                        println!("TCP: {e}");
                        *self = Link::None;
                        return Ok(false);
                    }
                }
                loop {
                    match deframer.next_frame() {
                        Ok(Some(frame)) => handle(frame),
                        Ok(None) => break,
                        Err(e) => {
                            println!("{e}");
                            *self = Link::None;
                            return Ok(false);
                        }
                    }
                }
            }
        }
        Ok(true)
    }
}

struct Args {
    config: PathBuf,
    count: u32,
    timeout: Duration,
    interval: Duration,
    impair: u32,
    ipv6: bool,
    target: Option<IpAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut config = None;
    let mut args = Args {
        config: PathBuf::new(),
        count: 3,
        timeout: Duration::from_secs(30),
        interval: Duration::from_secs(1),
        impair: 0,
        ipv6: false,
        target: None,
    };
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<f64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name}: expects a number"))
        };
        match a.as_str() {
            "--count" => args.count = num("--count")? as u32,
            "--timeout" => args.timeout = Duration::from_secs_f64(num("--timeout")?),
            "--interval" => args.interval = Duration::from_secs_f64(num("--interval")?),
            "--impair" => args.impair = num("--impair")? as u32,
            "--ipv6" => args.ipv6 = true,
            "--target" => {
                let v = it.next().ok_or("--target: expects an IP address")?;
                args.target = Some(
                    v.parse()
                        .map_err(|_| format!("--target: '{v}' is not an IP address"))?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            _ if config.is_none() && !a.starts_with("--") => config = Some(PathBuf::from(a)),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    args.config = config.ok_or("missing CONFIG")?;
    Ok(args)
}

fn print_pushed(c: &PushedConfig) {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("pushed: topology {:?}", c.topology);
    println!(
        "pushed: ifconfig {}",
        opt(c.ifconfig.map(|(a, b)| format!("{a} {b}")))
    );
    println!(
        "pushed: gateway {}",
        opt(c.gateway().map(|g| g.to_string()))
    );
    for r in &c.routes {
        println!(
            "pushed: route {} {} {}",
            r.network,
            r.netmask,
            opt(r.gateway.map(|g| g.to_string()))
        );
    }
    if let Some((a, bits, _)) = c.ifconfig_ipv6 {
        println!("pushed: ifconfig-ipv6 {a}/{bits}");
    }
    for r in &c.routes_ipv6 {
        println!("pushed: route-ipv6 {}/{}", r.network, r.prefix_len);
    }
    if let Some(r) = c.redirect_gateway {
        println!("pushed: redirect-gateway {r:?}");
    }
    for d in &c.dns {
        println!("pushed: dns {d}");
    }
    println!(
        "pushed: cipher {} peer-id {} ping {} ping-restart {} tun-mtu {}",
        opt(c.cipher.clone()),
        opt(c.peer_id.map(|p| p.to_string())),
        opt(c.ping.map(|p| p.to_string())),
        opt(c.ping_restart.map(|p| p.to_string())),
        opt(c.tun_mtu.map(|p| p.to_string()))
    );
}

fn main() -> ExitCode {
    let level = match std::env::var("OVPN_PING_LOG").as_deref() {
        Ok("trace") => log::LevelFilter::Trace,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("ovpn-ping: {e}");
            }
            eprintln!(
                "usage: ovpn-ping CONFIG [--count N] [--timeout S] [--interval S] [--impair PCT] [--ipv6] [--target IP]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ovpn-ping: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    let cfg = conf::load(&args.config)?;
    let mut link = Link::None;
    let mut impair = impair::Impair::new(args.impair, 0x5eed_0f0c_7a00);
    let start = std::time::Instant::now();
    let now = || Instant::from_millis(start.elapsed().as_millis() as u64);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rng = OsRng;
    let mut engine = Engine::new(cfg, now(), unix, &mut rng).map_err(|e| e.to_string())?;

    let deadline = start + args.timeout;
    let ident = (std::process::id() & 0xffff) as u16;
    let mut tunnel: Option<(IpAddr, IpAddr)> = None;
    let mut sent: Vec<std::time::Instant> = Vec::new();
    let mut rtts: Vec<Duration> = Vec::new();
    let mut next_echo = std::time::Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut out = vec![0u8; 4096];

    loop {
        let t = std::time::Instant::now();
        if t >= deadline {
            println!("timeout after {:.1} s", args.timeout.as_secs_f64());
            break;
        }
        // Engine actions.
        while let Some(action) = engine.poll_action(now(), &mut rng) {
            match action {
                Action::Connect(remote) => match Link::open(&remote) {
                    Ok(l) => {
                        link = l;
                        engine.transport_ready(now());
                    }
                    Err(e) => {
                        println!("{e}");
                        link = Link::None;
                        engine.transport_failed(now());
                    }
                },
                Action::SendToRemote(bytes) => link.send_impaired(&mut impair, &bytes),
                Action::TunnelUp(config) => {
                    println!("handshake {} ms", start.elapsed().as_millis());
                    print_pushed(&config);
                    let t = target::pick(&config, args.ipv6, args.target)?;
                    println!("pinging {} from {} ({})", t.remote, t.local, t.why);
                    tunnel = Some((t.local, t.remote));
                }
                Action::Reconnect(reason) => {
                    println!("reconnect: {reason:?}");
                    tunnel = None;
                    // The engine would retry (as OpenVPN does); a test client reports it at once.
                    if let ReconnectReason::CertificateRejected(what) = reason {
                        return Err(what.to_string());
                    }
                }
                Action::Exit(reason) => {
                    println!("exit: {reason:?}");
                    return Err(format!("engine stopped: {reason:?}"));
                }
            }
        }
        // Echo requests.
        if let Some((local, gw)) = tunnel {
            if sent.len() < args.count as usize && t >= next_echo {
                let seq = sent.len() as u16;
                let pkt = match (local, gw) {
                    (IpAddr::V6(a), IpAddr::V6(g)) => icmp::echo_request_v6(a, g, ident, seq),
                    (IpAddr::V4(a), IpAddr::V4(g)) => icmp::echo_request(a, g, ident, seq),
                    _ => return Err("mixed address families".into()),
                };
                // Odd echoes go through the zero-copy path, even ones through the copying one.
                let result = match engine.data_headroom() {
                    Some(head) if seq % 2 == 1 => {
                        out[head..head + pkt.len()].copy_from_slice(&pkt);
                        engine.encapsulate_in_place(now(), &mut out, pkt.len(), &mut rng)
                    }
                    _ => engine
                        .encapsulate(now(), &pkt, &mut out, &mut rng)
                        .map(|n| 0..n),
                };
                match result {
                    Ok(range) => {
                        // Timestamp before the send: the reply may be read before this thread runs again.
                        sent.push(std::time::Instant::now());
                        link.send_impaired(&mut impair, &out[range]);
                    }
                    Err(e) => println!("send failed: {e}"),
                }
                next_echo = t + args.interval;
            }
            if sent.len() == args.count as usize && rtts.len() == sent.len() {
                break;
            }
            if sent.len() == args.count as usize && t >= next_echo + Duration::from_secs(2) {
                break; // the last reply had its chance
            }
        }
        // Wait for a datagram until the next deadline.
        let mut wait = Duration::from_millis(200);
        if let Some(at) = engine.poll_at() {
            wait = wait.min(Duration::from_millis(
                at.as_millis().saturating_sub(now().as_millis()),
            ));
        }
        if tunnel.is_some() && sent.len() < args.count as usize {
            wait = wait.min(next_echo.saturating_duration_since(t));
        }
        let udp = matches!(link, Link::Udp(_));
        let alive = link.receive(wait, &mut buf, |packet| {
            let delivered = if udp {
                impair.incoming(packet)
            } else {
                vec![packet.to_vec()]
            };
            for mut packet in delivered {
                let Received::Packet(ip) = engine.receive(now(), &mut packet) else {
                    continue;
                };
                let Some((_, gw)) = tunnel else { continue };
                let reply = match gw {
                    IpAddr::V4(g) => icmp::echo_reply_seq(ip, g, ident),
                    IpAddr::V6(g) => icmp::echo_reply_seq_v6(ip, g, ident),
                };
                let Some(seq) = reply else {
                    continue;
                };
                if let Some(at) = sent.get(usize::from(seq)) {
                    let rtt = at.elapsed();
                    println!(
                        "reply from {gw}: icmp_seq={seq} time={:.3} ms",
                        rtt.as_secs_f64() * 1e3
                    );
                    rtts.push(rtt);
                }
            }
        })?;
        if !alive {
            engine.transport_failed(now());
        }
    }
    // Explicit exit notification (OCC EXIT, as `explicit-exit-notify`): the server drops our session now
    // instead of after its ping-restart.
    if let Some(exit) = engine.shutdown(now(), &mut rng) {
        link.send_impaired(&mut impair, &exit);
        println!("exit notification sent");
    }
    let stats = engine.stats();
    println!(
        "stats: renegotiations {} pings sent {} received {} control dropped {} data dropped {}",
        stats.renegotiations,
        stats.pings_sent,
        stats.pings_received,
        stats.control_dropped,
        stats.data_dropped
    );
    if rtts.is_empty() {
        println!("rtt summary: 0/{} replies", sent.len());
        return Ok(false);
    }
    let avg = rtts.iter().map(Duration::as_secs_f64).sum::<f64>() / rtts.len() as f64;
    println!(
        "rtt summary: {}/{} replies, avg {:.3} ms",
        rtts.len(),
        sent.len(),
        avg * 1e3
    );
    Ok(true)
}
