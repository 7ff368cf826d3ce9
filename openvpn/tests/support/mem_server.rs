//! An in-memory OpenVPN 2.6 server for tests and fuzzing: one plain-TLS session (key_id 0) with the
//! reliability layer, a rustls server, key-method 2, a PUSH_REPLY and legacy PRF data keys (AES-256-GCM),
//! just enough to bring the engine up with no sockets, and a [`World`] that joins the two.
//! Shared by `tests/hostile_connected.rs` and the `engine_connected` fuzz target (`#[path]` include).
//! Client bytes the server cannot use mark the session broken instead of panicking (the fuzz target
//! makes the engine reconnect at will).

use std::sync::Arc;

use openvpn::crypto::prf::{derive_key2_legacy, Km2Randoms};
use openvpn::crypto::{DataChannel, DataCipher, DataKey, Inbound, ReplayWindow, Role};
use openvpn::engine::{Action, ControlProtection, Engine, EngineConfig, Received, RemoteSpec};
use openvpn::reliable::{RecvOutcome, ReliableRecv, ReliableSend};
use openvpn::session::key_method2::KeyMethod2;
use openvpn::session::Transport;
use openvpn::time::Instant;
use openvpn::tls::TlsSettings;
use openvpn::wire::{AckBlock, ControlRepr, KeyId, Opcode, SessionId};
use rand_chacha::rand_core::{CryptoRngCore, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub const CA_DER: &[u8] = include_bytes!("../data/hostile/ca.der");
const SERVER_DER: &[u8] = include_bytes!("../data/hostile/server.der");
const SERVER_KEY_DER: &[u8] = include_bytes!("../data/hostile/server.key.der");
/// 2027-01-15: inside the test certificates' validity (2026-11-25 .. 2126).
pub const UNIX: u64 = 1_800_000_000;
/// The peer-id the server pushes.
pub const PEER_ID: u32 = 3;

/// The server half of one plain-TLS OpenVPN session (key_id 0), just enough to bring a client up.
pub struct Server {
    tls: rustls::ServerConnection,
    /// The server's session id.
    pub sid: SessionId,
    /// The client's session id, from its reset.
    pub client_sid: Option<SessionId>,
    /// The sending half of the reliability layer.
    pub send: ReliableSend,
    recv: ReliableRecv,
    plain: Vec<u8>,
    /// Plaintext waiting for room in the TLS send buffer.
    pub pending: Vec<u8>,
    /// The client sent something this one-session server cannot follow (a new session, bad TLS).
    pub broken: bool,
    randoms: Km2Randoms,
    sent_km2: bool,
    pushed: bool,
    data: Option<DataChannel>,
    rng: ChaCha8Rng,
}

impl Server {
    /// A server waiting for a client reset.
    pub fn new() -> Server {
        Server::with_cert(vec![SERVER_DER.to_vec()], SERVER_KEY_DER.to_vec())
    }

    /// A server presenting `chain` (DER, leaf first) with its PKCS#8 DER key.
    pub fn with_cert(chain: Vec<Vec<u8>>, key_pkcs8: Vec<u8>) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                chain.into_iter().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8)),
            )
            .expect("server certificate");
        let mut rng = ChaCha8Rng::seed_from_u64(0x5e);
        let mut randoms = Km2Randoms {
            random1: [0; 32],
            random2: [0; 32],
        };
        rng.fill_bytes(&mut randoms.random1);
        rng.fill_bytes(&mut randoms.random2);
        Server {
            tls: rustls::ServerConnection::new(Arc::new(config)).expect("server connection"),
            sid: SessionId([0x5e, 1, 2, 3, 4, 5, 6, 7]),
            client_sid: None,
            send: ReliableSend::new(Opcode::ControlV1 as u8),
            recv: ReliableRecv::new(),
            plain: Vec::new(),
            pending: Vec::new(),
            broken: false,
            randoms,
            sent_km2: false,
            pushed: false,
            data: None,
            rng,
        }
    }

    /// A datagram from the client; returns a decrypted IP packet if it was one.
    pub fn receive(&mut self, datagram: &mut [u8]) -> Option<Vec<u8>> {
        if datagram.first().map(|b| b >> 3) == Some(Opcode::DataV2 as u8) {
            let channel = self.data.as_mut()?;
            return match channel.decrypt(datagram, Instant::ZERO) {
                Ok(Inbound::Ip(range)) => Some(datagram[range].to_vec()),
                _ => None,
            };
        }
        let repr = ControlRepr::parse_bytes(datagram).ok()?;
        if self.client_sid.is_some_and(|c| c != repr.session_id) {
            self.broken = true; // a new client session: this server serves one
            return None;
        }
        for id in repr.acks.ids() {
            self.send.on_ack(*id);
        }
        let id = repr.message_id?;
        match repr.opcode {
            Opcode::ControlHardResetClientV2 => {
                self.client_sid.get_or_insert(repr.session_id);
                if self.recv.on_packet(id, &[]) == RecvOutcome::Accepted {
                    let _ = self.recv.pop_in_order();
                    self.send
                        .queue_packet(Opcode::ControlHardResetServerV2 as u8, Vec::new());
                }
            }
            Opcode::ControlV1 => {
                self.recv.on_packet(id, repr.payload);
                let mut stream = Vec::new();
                self.recv.drain_in_order(&mut stream);
                let mut rd = &stream[..];
                while !rd.is_empty() {
                    if self.tls.read_tls(&mut rd).is_err() {
                        self.broken = true;
                        return None;
                    }
                }
                if self.tls.process_new_packets().is_err() {
                    self.broken = true;
                    return None;
                }
                let mut buf = [0u8; 4096];
                while let Ok(n) = std::io::Read::read(&mut self.tls.reader(), &mut buf) {
                    if n == 0 {
                        break;
                    }
                    self.plain.extend_from_slice(&buf[..n]);
                }
                self.on_plaintext();
            }
            _ => {}
        }
        None
    }

    fn on_plaintext(&mut self) {
        if !self.sent_km2 {
            let Ok(km2) = KeyMethod2::parse(&self.plain, true) else {
                return;
            };
            let (Some(Ok(pre_master)), Ok(random1), Ok(random2), Some(client_sid)) = (
                km2.pre_master.map(<[u8; 48]>::try_from),
                km2.random1.try_into(),
                km2.random2.try_into(),
                self.client_sid,
            ) else {
                self.broken = true;
                return;
            };
            let client = Km2Randoms { random1, random2 };
            let key2 =
                derive_key2_legacy(&pre_master, &client, &self.randoms, &client_sid, &self.sid);
            let key = DataKey::new(
                DataCipher::Aes256Gcm,
                &key2,
                Role::Server,
                KeyId::ZERO,
                Some(PEER_ID),
                ReplayWindow::default(),
            )
            .expect("data key");
            let mut channel = DataChannel::new();
            channel.install(key);
            self.data = Some(channel);
            self.plain.clear();
            // The server's key-method-2 message (§5.2): no pre-master, its randoms, an options string.
            let options = b"V4,dev-type tun,link-mtu 1521,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server\0";
            let mut msg = vec![0, 0, 0, 0, 2];
            msg.extend(self.randoms.random1);
            msg.extend(self.randoms.random2);
            msg.extend(u16::try_from(options.len()).expect("short").to_be_bytes());
            msg.extend(options);
            self.write_tls(&msg);
            self.sent_km2 = true;
        }
        if self.sent_km2 && !self.pushed && self.plain.windows(12).any(|w| w == b"PUSH_REQUEST") {
            self.plain.clear();
            self.write_tls(
                format!(
                    "PUSH_REPLY,topology subnet,ifconfig 10.8.0.2 255.255.255.0,route-gateway 10.8.0.1,\
                     ping 10,ping-restart 60,cipher AES-256-GCM,peer-id {PEER_ID}\0"
                )
                .as_bytes(),
            );
            self.pushed = true;
        }
    }

    /// Queues plaintext for the TLS session (a control message); `poll` feeds it to TLS as it has room.
    pub fn write_tls(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Control packets due for the client.
    pub fn poll(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut stream = Vec::new();
        // Plaintext goes into TLS 16 KiB at a time while little is queued, so that the TLS output stays
        // under the reliability layer's send-queue cap.
        if !self.pending.is_empty() && self.send.stream_len() < 16 * 1024 {
            let chunk = self.pending.len().min(16 * 1024);
            let n =
                std::io::Write::write(&mut self.tls.writer(), &self.pending[..chunk]).unwrap_or(0);
            self.pending.drain(..n);
        }
        while self.tls.wants_write() {
            self.tls.write_tls(&mut stream).expect("TLS output");
        }
        self.send
            .queue_stream(&stream)
            .expect("server send queue under its cap");
        let Some(client_sid) = self.client_sid.filter(|_| !self.broken) else {
            return out;
        };
        while let Some(p) = self.send.poll_transmit(now_ms, 1000) {
            let mut acks = AckBlock::new(client_sid);
            for id in self.recv.take_acks(4, false) {
                acks.try_push(id);
            }
            let repr = ControlRepr {
                opcode: Opcode::from_u8(p.opcode).expect("control opcode"),
                key_id: KeyId::ZERO,
                session_id: self.sid,
                acks,
                message_id: Some(p.id),
                payload: p.payload,
            };
            let mut pkt = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut pkt).expect("emit");
            pkt.truncate(n);
            out.push(pkt);
        }
        if self.recv.has_pending_acks() {
            let mut acks = AckBlock::new(client_sid);
            for id in self.recv.take_acks(8, true) {
                acks.try_push(id);
            }
            let repr = ControlRepr {
                opcode: Opcode::AckV1,
                key_id: KeyId::ZERO,
                session_id: self.sid,
                acks,
                message_id: None,
                payload: &[],
            };
            let mut pkt = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut pkt).expect("emit");
            pkt.truncate(n);
            out.push(pkt);
        }
        out
    }

    /// An IP packet from the server into the tunnel.
    pub fn seal(&mut self, ip: &[u8]) -> Vec<u8> {
        let Some(channel) = self.data.as_mut() else {
            return Vec::new();
        };
        let mut out = vec![0u8; ip.len() + DataChannel::MAX_OVERHEAD];
        let n = channel.encrypt(ip, &mut out, &mut self.rng).unwrap_or(0);
        out.truncate(n);
        out
    }
}

/// The engine and the server joined in memory; time is `now_ms`, advanced by the caller.
pub struct World {
    /// The client under test.
    pub engine: Engine,
    /// Its server.
    pub server: Server,
    /// The engine's randomness (seeded: runs repeat).
    pub rng: ChaCha8Rng,
    /// The current time, milliseconds.
    pub now_ms: u64,
    /// Actions other than Connect / SendToRemote / TunnelUp (reconnects, exits), in order.
    pub events: Vec<Action>,
}

impl World {
    /// An engine configured for the server (plain TLS, the test CA), not started yet.
    pub fn new() -> World {
        let tls = TlsSettings {
            ca: vec![CA_DER.to_vec()],
            ..Default::default()
        };
        let mut config = EngineConfig::new(ControlProtection::None, tls);
        config.remotes = vec![RemoteSpec {
            host: "192.0.2.1".into(),
            port: 1194,
            transport: Transport::Udp4,
            server_poll_timeout_secs: None,
        }];
        World::with(config, UNIX, Server::new())
    }

    /// An engine made from `config`, started at Unix time `unix`, and its server.
    pub fn with(config: EngineConfig, unix: u64, server: Server) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let engine = Engine::new(config, Instant::ZERO, unix, &mut rng).expect("engine");
        World {
            engine,
            server,
            rng,
            now_ms: 0,
            events: Vec::new(),
        }
    }

    /// `now_ms` as an engine instant.
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.now_ms)
    }

    /// One round: client actions to the server, server packets to the client. Returns IP packets the
    /// client received.
    pub fn step(&mut self) -> Vec<Vec<u8>> {
        let now = self.now();
        let mut received = Vec::new();
        // Bounded: an engine that never stops producing actions is a bug.
        for _ in 0..1000 {
            let Some(action) = self.engine.poll_action(now, &mut self.rng) else {
                break;
            };
            match action {
                Action::Connect(_) => self.engine.transport_ready(now),
                Action::SendToRemote(mut d) => {
                    let _ = self.server.receive(&mut d);
                }
                Action::TunnelUp(_) => {}
                other => self.events.push(other),
            }
        }
        for d in self.server.poll(self.now_ms) {
            self.deliver(d, &mut received);
        }
        received
    }

    /// Hands a datagram to the engine; a decrypted IP packet goes to `received`.
    pub fn deliver(&mut self, d: Vec<u8>, received: &mut Vec<Vec<u8>>) {
        let mut d = d;
        let now = self.now();
        if let Received::Packet(ip) = self.engine.receive(now, &mut d) {
            received.push(ip.to_vec());
        }
    }

    /// A world whose tunnel is up (panics if the handshake does not complete: a harness bug).
    pub fn connect() -> World {
        let mut w = World::new();
        for _ in 0..200 {
            w.step();
            if w.engine.is_connected() {
                // Let the last ACKs cross.
                w.now_ms += 10;
                w.step();
                return w;
            }
            w.now_ms += 10;
        }
        panic!("engine did not connect to the in-memory server");
    }

    /// Sends `ip` from the server and returns what the client got out of it.
    pub fn server_sends(&mut self, ip: &[u8]) -> Vec<Vec<u8>> {
        let d = self.server.seal(ip);
        let mut received = Vec::new();
        self.deliver(d, &mut received);
        received
    }

    /// An IP packet from the client through the tunnel, decrypted by the server.
    pub fn client_sends(&mut self, ip: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; 2048];
        let now = self.now();
        let rng: &mut dyn CryptoRngCore = &mut self.rng;
        let n = self.engine.encapsulate(now, ip, &mut out, rng).ok()?;
        self.server.receive(&mut out[..n])
    }
}
