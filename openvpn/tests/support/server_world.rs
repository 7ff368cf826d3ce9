//! The server engine and client engines joined by an in-memory network, for `tests/server_engine.rs` and
//! the `server_connected` fuzz target (`#[path]` include): tls-crypt-v2 clients of the test PKI, a server
//! that accepts everyone (addresses 10.8.0.2 + peer-id) and pushes a fixed reply.

use std::net::SocketAddr;

use openvpn::crypto::{Digest, TlsCryptV2ServerKey};
use openvpn::engine::{Action, ControlProtection, Engine, EngineConfig, Received, RemoteSpec};
use openvpn::server::cookie::{CookieJar, InitialRateLimit};
use openvpn::server::engine::{GoneReason, Server, ServerAction, ServerParams, ServerReceived};
use openvpn::server::handshake::StatelessHandshake;
use openvpn::server::wkc::WkcPolicy;
use openvpn::session::Transport;
use openvpn::time::Instant;
use openvpn::tls::{self, KeyDer, TlsSettings, WallClock};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub const CA_DER: &[u8] = include_bytes!("../data/hostile/ca.der");
const SERVER_DER: &[u8] = include_bytes!("../data/hostile/server.der");
const SERVER_KEY_DER: &[u8] = include_bytes!("../data/hostile/server.key.der");
/// Inside the test certificates' validity.
pub const UNIX: u64 = 1_800_000_000;
pub const SERVER_KEY: [u8; 128] = [0x42; 128];

pub fn params(max_clients: u32, reneg_secs: u64) -> ServerParams {
    ServerParams {
        data_ciphers: vec!["AES-256-GCM".into(), "AES-128-GCM".into()],
        data_ciphers_fallback: None,
        auth: Digest::Sha1,
        hand_window_secs: 60,
        reneg_secs,
        tran_window_secs: 3600,
        tls_timeout_ms: 2000,
        ping_secs: 10,
        ping_restart_secs: 120,
        max_clients,
        replay_window: (64, 15),
        options: "V4,dev-type tun,link-mtu 1521,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server".into(),
        control_payload: 1250,
    }
}

pub fn server(max_clients: u32, reneg_secs: u64) -> Server {
    server_with(
        ControlProtection::TlsCryptV2Server {
            key: SERVER_KEY,
            policy: WkcPolicy::default(),
        },
        max_clients,
        reneg_secs,
    )
}

/// A server with another control-channel protection (the shared-key modes, or none).
pub fn server_with(control: ControlProtection, max_clients: u32, reneg_secs: u64) -> Server {
    let settings = TlsSettings {
        ca: vec![CA_DER.to_vec()],
        cert_chain: vec![SERVER_DER.to_vec()],
        key: Some(KeyDer::Pkcs8(SERVER_KEY_DER.to_vec())),
        ..Default::default()
    };
    let tls = tls::server_config(&settings, WallClock::new(UNIX), None).expect("server tls");
    let handshake = StatelessHandshake::new(control, CookieJar::new(&[3; 32])).unwrap();
    Server::new(
        params(max_clients, reneg_secs),
        tls,
        (handshake, InitialRateLimit::new(100, 10)),
        Instant::ZERO,
        UNIX,
    )
}

pub fn client(seed: u64) -> Engine {
    client_with(seed, 0)
}

/// A client engine that starts renegotiations itself every `reneg_secs` (0 = never).
pub fn client_with(seed: u64, reneg_secs: u64) -> Engine {
    let kc = [seed as u8; 256];
    let wkc = TlsCryptV2ServerKey::new(&SERVER_KEY)
        .wrap_client_key(&kc, &[0x00, b'c'])
        .expect("wkc");
    client_protected(seed, reneg_secs, ControlProtection::TlsCryptV2 { kc, wkc })
}

/// A client engine with the given control-channel protection.
pub fn client_protected(seed: u64, reneg_secs: u64, protection: ControlProtection) -> Engine {
    let tls = TlsSettings {
        ca: vec![CA_DER.to_vec()],
        ..Default::default()
    };
    let mut config = EngineConfig::new(protection, tls);
    config.reneg_secs = reneg_secs;
    config.remotes = vec![RemoteSpec {
        host: "192.0.2.1".into(),
        port: 1194,
        transport: Transport::Udp4,
        server_poll_timeout_secs: None,
    }];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Engine::new(config, Instant::ZERO, UNIX, &mut rng).expect("client engine")
}

/// Clients and one server joined by an in-memory network.
pub struct World {
    pub server: Server,
    pub clients: Vec<(Engine, SocketAddr, ChaCha8Rng)>,
    pub rng: ChaCha8Rng,
    pub now_ms: u64,
    pub gone: Vec<(u32, GoneReason)>,
    /// Packets the server decrypted: (peer-id, IP packet).
    pub server_got: Vec<(u32, Vec<u8>)>,
    /// Packets each client decrypted.
    pub client_got: Vec<Vec<Vec<u8>>>,
}

pub fn addr(i: usize) -> SocketAddr {
    format!("192.0.2.{}:{}", 10 + i, 40000 + i).parse().unwrap()
}

pub fn vaddr(peer_id: u32) -> [u8; 4] {
    [10, 8, 0, 2 + peer_id as u8]
}

impl World {
    pub fn new(n: usize, max_clients: u32, reneg_secs: u64) -> World {
        World {
            server: server(max_clients, reneg_secs),
            clients: (0..n)
                .map(|i| {
                    (
                        client(i as u64 + 1),
                        addr(i),
                        ChaCha8Rng::seed_from_u64(100 + i as u64),
                    )
                })
                .collect(),
            rng: ChaCha8Rng::seed_from_u64(7),
            now_ms: 0,
            gone: Vec::new(),
            server_got: Vec::new(),
            client_got: vec![Vec::new(); n],
        }
    }

    pub fn now(&self) -> Instant {
        Instant::from_millis(self.now_ms)
    }

    pub fn step(&mut self) {
        let now = self.now();
        for i in 0..self.clients.len() {
            for _ in 0..1000 {
                let (engine, from, rng) = &mut self.clients[i];
                let Some(action) = engine.poll_action(now, rng) else {
                    break;
                };
                match action {
                    Action::Connect(_) => engine.transport_ready(now),
                    Action::SendToRemote(mut d) => {
                        let from = *from;
                        if let ServerReceived::Packet(id, r) =
                            self.server.receive(now, from, &mut d, &mut self.rng)
                        {
                            self.server_got.push((id, d[r].to_vec()));
                        }
                    }
                    _ => {}
                }
            }
        }
        for _ in 0..10_000 {
            let Some(action) = self.server.poll(now, &mut self.rng) else {
                break;
            };
            match action {
                ServerAction::SendTo(to, mut d) => {
                    if let Some(i) = self.clients.iter().position(|c| c.1 == to) {
                        if let Received::Packet(ip) = self.clients[i].0.receive(now, &mut d) {
                            self.client_got[i].push(ip.to_vec());
                        }
                    }
                }
                ServerAction::Authenticate { peer_id, .. } => {
                    self.server.accept(peer_id, vaddr(peer_id))
                }
                ServerAction::PushRequest(peer_id) => {
                    let [a, b, c, d] = vaddr(peer_id);
                    let reply = format!(
                        "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,ifconfig {a}.{b}.{c}.{d} 255.255.255.0,peer-id {peer_id},cipher AES-256-GCM"
                    );
                    self.server.push_reply(peer_id, &[reply]);
                }
                ServerAction::ClientGone(id, why, _) => self.gone.push((id, why)),
            }
        }
    }

    pub fn run_ms(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.step();
            self.now_ms += 10;
        }
    }

    pub fn connect_all(&mut self) {
        for _ in 0..500 {
            self.step();
            if self.clients.iter().all(|c| c.0.is_connected()) {
                self.now_ms += 10;
                self.step();
                return;
            }
            self.now_ms += 10;
        }
        panic!("clients did not connect: {:?}", self.gone);
    }
}

/// An ICMP-ish IPv4 packet from `src` to `dst` (the server engine checks only the source).
pub fn ip(src: [u8; 4], dst: [u8; 4], fill: u8) -> Vec<u8> {
    let mut p = vec![fill; 60];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&60u16.to_be_bytes());
    p[9] = 1;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p
}

pub fn client_sends(w: &mut World, i: usize, packet: &[u8], from: SocketAddr) -> ServerReceived {
    let now = w.now();
    let (engine, _, rng) = &mut w.clients[i];
    let mut out = vec![0u8; 2048];
    let n = engine
        .encapsulate(now, packet, &mut out, rng)
        .expect("encapsulate");
    let r = w.server.receive(now, from, &mut out[..n], &mut w.rng);
    if let ServerReceived::Packet(_, range) = &r {
        assert_eq!(&out[range.clone()], packet);
    }
    r
}
