//! Hostile peers against a *connected* engine. A minimal in-memory OpenVPN server (plain TLS control
//! channel: reliability layer, a rustls server, key-method 2, PUSH_REPLY, legacy PRF data keys, AES-256-GCM)
//! brings the engine up with no sockets; then an attacker who sees the traffic replays data packets,
//! rewrites their key_id, forges ACKs and control packets for the live session, sends a control message
//! far over the 2048-byte limit through the real TLS session, and floods garbage. The tunnel must stay up,
//! replays and forgeries must be dropped and counted, and the heap must stay flat.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use openvpn::crypto::prf::{derive_key2_legacy, Km2Randoms};
use openvpn::crypto::{DataChannel, DataCipher, DataKey, Inbound, ReplayWindow, Role};
use openvpn::engine::{Action, ControlProtection, Engine, EngineConfig, Received, RemoteSpec};
use openvpn::reliable::{ReliableRecv, ReliableSend};
use openvpn::session::key_method2::KeyMethod2;
use openvpn::session::Transport;
use openvpn::time::Instant;
use openvpn::tls::TlsSettings;
use openvpn::wire::{AckBlock, ControlRepr, KeyId, Opcode, SessionId};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CA_DER: &[u8] = include_bytes!("data/hostile/ca.der");
const SERVER_DER: &[u8] = include_bytes!("data/hostile/server.der");
const SERVER_KEY_DER: &[u8] = include_bytes!("data/hostile/server.key.der");
/// 2027-01-15: inside the test certificates' validity (2026-11-25 .. 2126).
const UNIX: u64 = 1_800_000_000;
const PEER_ID: u32 = 3;

// --- heap accounting --------------------------------------------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn size(bytes: usize) -> isize {
    isize::try_from(bytes).unwrap_or(isize::MAX)
}

// SAFETY: forwards every call unchanged to the system allocator; the counters are const-initialised
// thread-local Cells, whose access never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(size(new_size) - size(layout.size()));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

// --- the in-memory server ---------------------------------------------------------------------------------

/// The server half of one plain-TLS OpenVPN session (key_id 0), just enough to bring a client up.
struct Server {
    tls: rustls::ServerConnection,
    sid: SessionId,
    client_sid: Option<SessionId>,
    send: ReliableSend,
    recv: ReliableRecv,
    plain: Vec<u8>,
    /// Plaintext waiting for room in the TLS send buffer.
    pending: Vec<u8>,
    randoms: Km2Randoms,
    sent_km2: bool,
    pushed: bool,
    data: Option<DataChannel>,
    rng: ChaCha8Rng,
}

impl Server {
    fn new() -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(SERVER_DER.to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(SERVER_KEY_DER.to_vec())),
            )
            .expect("server certificate");
        let mut rng = ChaCha8Rng::seed_from_u64(0x5e);
        let mut randoms = Km2Randoms { random1: [0; 32], random2: [0; 32] };
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
            randoms,
            sent_km2: false,
            pushed: false,
            data: None,
            rng,
        }
    }

    /// A datagram from the client; returns a decrypted IP packet if it was one.
    fn receive(&mut self, datagram: &mut [u8]) -> Option<Vec<u8>> {
        if datagram.first().map(|b| b >> 3) == Some(Opcode::DataV2 as u8) {
            let channel = self.data.as_mut()?;
            return match channel.decrypt(datagram, Instant::ZERO) {
                Ok(Inbound::Ip(range)) => Some(datagram[range].to_vec()),
                _ => None,
            };
        }
        let repr = ControlRepr::parse_bytes(datagram).ok()?;
        for id in repr.acks.ids() {
            self.send.on_ack(*id);
        }
        let id = repr.message_id?;
        match repr.opcode {
            Opcode::ControlHardResetClientV2 => {
                self.client_sid.get_or_insert(repr.session_id);
                if self.recv.on_packet(id, &[]) == openvpn::reliable::RecvOutcome::Accepted {
                    let _ = self.recv.pop_in_order();
                    self.send.queue_packet(Opcode::ControlHardResetServerV2 as u8, Vec::new());
                }
            }
            Opcode::ControlV1 => {
                self.recv.on_packet(id, repr.payload);
                let mut stream = Vec::new();
                self.recv.drain_in_order(&mut stream);
                let mut rd = &stream[..];
                while !rd.is_empty() {
                    self.tls.read_tls(&mut rd).expect("TLS bytes");
                }
                if let Err(e) = self.tls.process_new_packets() {
                    panic!("server TLS: {e:?}");
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
            let Ok(km2) = KeyMethod2::parse(&self.plain, true) else { return };
            let pre_master: [u8; 48] = km2.pre_master.expect("client pre-master").try_into().expect("48 bytes");
            let client = Km2Randoms {
                random1: km2.random1.try_into().expect("32 bytes"),
                random2: km2.random2.try_into().expect("32 bytes"),
            };
            let client_sid = self.client_sid.expect("client session id");
            let key2 = derive_key2_legacy(&pre_master, &client, &self.randoms, &client_sid, &self.sid);
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
    fn write_tls(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Control packets due for the client.
    fn poll(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut stream = Vec::new();
        if !self.pending.is_empty() {
            let n = std::io::Write::write(&mut self.tls.writer(), &self.pending).unwrap_or(0);
            self.pending.drain(..n);
        }
        while self.tls.wants_write() {
            self.tls.write_tls(&mut stream).expect("TLS output");
        }
        self.send.queue_stream(&stream);
        let Some(client_sid) = self.client_sid else { return out };
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
    fn seal(&mut self, ip: &[u8]) -> Vec<u8> {
        let channel = self.data.as_mut().expect("data key");
        let mut out = vec![0u8; ip.len() + DataChannel::MAX_OVERHEAD];
        let n = channel.encrypt(ip, &mut out, &mut self.rng).expect("encrypt");
        out.truncate(n);
        out
    }
}

// --- the test world ---------------------------------------------------------------------------------------

struct World {
    engine: Engine,
    server: Server,
    rng: ChaCha8Rng,
    now_ms: u64,
    /// Every datagram the server sent, as an on-path attacker records them.
    seen_from_server: Vec<Vec<u8>>,
}

impl World {
    fn new() -> World {
        let tls = TlsSettings { ca: vec![CA_DER.to_vec()], ..Default::default() };
        let mut config = EngineConfig::new(ControlProtection::None, tls);
        config.remotes = vec![RemoteSpec { host: "192.0.2.1".into(), port: 1194, transport: Transport::Udp4 }];
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let engine = Engine::new(config, Instant::ZERO, UNIX, &mut rng).expect("engine");
        World { engine, server: Server::new(), rng, now_ms: 0, seen_from_server: Vec::new() }
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.now_ms)
    }

    /// One round: client actions to the server, server packets to the client. Returns IP packets the
    /// client received.
    fn step(&mut self) -> Vec<Vec<u8>> {
        let now = self.now();
        let mut received = Vec::new();
        while let Some(action) = self.engine.poll_action(now, &mut self.rng) {
            match action {
                Action::Connect(_) => self.engine.transport_ready(now),
                Action::SendToRemote(mut d) => {
                    let _ = self.server.receive(&mut d);
                }
                Action::TunnelUp(_) => {}
                other => panic!("unexpected action {other:?}"),
            }
        }
        for d in self.server.poll(self.now_ms) {
            self.deliver(d, &mut received);
        }
        received
    }

    fn deliver(&mut self, d: Vec<u8>, received: &mut Vec<Vec<u8>>) {
        self.seen_from_server.push(d.clone());
        let mut d = d;
        let now = self.now();
        if let Received::Packet(ip) = self.engine.receive(now, &mut d) {
            received.push(ip.to_vec());
        }
    }

    fn connect() -> World {
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
    fn server_sends(&mut self, ip: &[u8]) -> Vec<Vec<u8>> {
        let d = self.server.seal(ip);
        let mut received = Vec::new();
        self.deliver(d, &mut received);
        received
    }

    /// An IP packet from the client through the tunnel, decrypted by the server.
    fn client_sends(&mut self, ip: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; 2048];
        let now = self.now();
        let n = self.engine.encapsulate(now, ip, &mut out, &mut self.rng).ok()?;
        self.server.receive(&mut out[..n])
    }
}

fn ip_packet(seq: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, u8::from(seq), 0, 0, 64, 17, 0, 0, 10, 8, 0, 1, 10, 8, 0, 2];
    p.extend([seq; 20]);
    p
}

#[test]
fn in_memory_server_brings_the_tunnel_up_both_ways() {
    let mut w = World::connect();
    let pushed = w.engine.pushed_config().expect("pushed config");
    assert_eq!(pushed.peer_id, Some(PEER_ID));
    assert_eq!(w.server_sends(&ip_packet(1)), vec![ip_packet(1)]);
    assert_eq!(w.client_sends(&ip_packet(2)), Some(ip_packet(2)));
}

#[test]
fn replayed_and_rekeyed_data_packets_are_dropped_and_counted() {
    let mut w = World::connect();
    let mut recorded = Vec::new();
    for seq in 0..20u8 {
        let d = w.server.seal(&ip_packet(seq));
        recorded.push(d.clone());
        let mut received = Vec::new();
        w.deliver(d, &mut received);
        assert_eq!(received, vec![ip_packet(seq)]);
    }
    let before = w.engine.stats().data_dropped;
    // Every recorded packet again, in reverse order: all replays.
    for d in recorded.iter().rev() {
        let mut d = d.clone();
        assert_eq!(w.engine.receive(w.now(), &mut d), Received::Dropped, "replay accepted");
    }
    assert_eq!(w.engine.stats().data_dropped, before + 20, "replays are counted");
    // The same packets with another key_id: no such key, dropped and counted.
    for (i, d) in recorded.iter().enumerate() {
        let mut d = d.clone();
        let key_id = 1 + u8::try_from(i % 7).expect("small");
        d[0] = (d[0] & !7) | key_id;
        assert_eq!(w.engine.receive(w.now(), &mut d), Received::Dropped, "wrong key_id accepted");
    }
    assert_eq!(w.engine.stats().data_dropped, before + 40, "wrong key_id packets are counted");
    // One flipped bit anywhere: authentication fails.
    let mut d = w.server.seal(&ip_packet(99));
    let last = d.len() - 1;
    d[last] ^= 1;
    assert_eq!(w.engine.receive(w.now(), &mut d), Received::Dropped);
    assert_eq!(w.engine.stats().data_dropped, before + 41);
    // The tunnel still works.
    assert_eq!(w.server_sends(&ip_packet(100)), vec![ip_packet(100)]);
    assert!(w.engine.is_connected());
}

#[test]
fn forged_acks_and_control_packets_for_the_live_session_change_nothing() {
    let mut w = World::connect();
    let client_sid = w.server.client_sid.expect("client sid");
    let mut attacker = ChaCha8Rng::seed_from_u64(0xf0);
    for i in 0..5000u32 {
        let mut acks = AckBlock::new(client_sid);
        for _ in 0..=(i % 8) {
            acks.try_push(attacker.next_u32() % 64);
        }
        let mut payload = vec![0u8; usize::try_from(attacker.next_u32() % 1200).expect("small")];
        attacker.fill_bytes(&mut payload);
        let (opcode, message_id) = match i % 4 {
            0 => (Opcode::AckV1, None),
            1 => (Opcode::ControlV1, Some(attacker.next_u32())),
            2 => (Opcode::ControlV1, Some(100 + attacker.next_u32() % 50)),
            _ => (Opcode::ControlHardResetServerV2, Some(0)),
        };
        let session_id = if i % 2 == 0 { w.server.sid } else { SessionId([0x66; 8]) };
        let repr = ControlRepr { opcode, key_id: KeyId::ZERO, session_id, acks, message_id, payload: &payload };
        let mut pkt = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut pkt).expect("emit");
        let _ = w.engine.receive(w.now(), &mut pkt[..n]);
        if i % 50 == 0 {
            w.now_ms += 10;
            w.step();
        }
    }
    assert!(w.engine.is_connected(), "forged control traffic tore the tunnel down");
    assert_eq!(w.server_sends(&ip_packet(7)), vec![ip_packet(7)]);
}

#[test]
fn oversized_control_message_through_tls_is_refused_without_harm() {
    let mut w = World::connect();
    // 640 KiB of printable text with no NUL, then a NUL: far over the 2048-byte limit (§8.1).
    let mut big = vec![b'A'; 640 * 1024];
    big.extend(b"\0");
    w.server.write_tls(&big);
    // And a huge PUSH_REPLY, which must not be taken as a new configuration either.
    let mut push = b"PUSH_REPLY,".to_vec();
    push.extend(std::iter::repeat_n(b"route 10.9.0.0 255.255.255.0,".as_slice(), 300).flatten());
    push.extend(b"\0");
    w.server.write_tls(&push);
    for _ in 0..2000 {
        w.now_ms += 10;
        w.step();
        if w.server.pending.is_empty() && w.server.send.is_idle() {
            break;
        }
    }
    assert!(w.server.pending.is_empty() && w.server.send.is_idle(), "the client took all of it");
    assert!(w.engine.is_connected());
    assert_eq!(w.server_sends(&ip_packet(8)), vec![ip_packet(8)]);
    // What the engine holds afterwards, against an engine that saw only the handshake.
    let baseline = engine_heap(World::connect());
    let after = engine_heap(w);
    println!("engine heap: {baseline} B after the handshake, {after} B after 649 KiB of oversized messages");
    // What remains is buffer capacity (a TLS record's worth, the same after 64 KiB or 640 KiB), not the
    // messages themselves.
    assert!(after - baseline < 48 * 1024, "the engine keeps {} bytes of it", after - baseline);
}

/// The bytes the engine owns: the live heap it frees when dropped (the test is single-threaded).
fn engine_heap(w: World) -> isize {
    let World { engine, server, seen_from_server, .. } = w;
    drop((server, seen_from_server));
    let with = live();
    drop(engine);
    with - live()
}

#[test]
fn garbage_flood_on_a_live_tunnel_keeps_memory_flat() {
    let mut w = World::connect();
    let mut attacker = ChaCha8Rng::seed_from_u64(0xdead);
    let flood = |w: &mut World, attacker: &mut ChaCha8Rng, n: u32| {
        for i in 0..n {
            let mut d = vec![0u8; usize::try_from(attacker.next_u32() % 1600).expect("small")];
            attacker.fill_bytes(&mut d);
            if let Some(b) = d.first_mut() {
                // Mostly valid opcodes with our peer-id framing, to get past the first byte.
                *b = [0x48, 0x20, 0x28, 0x40, *b][usize::try_from(i % 5).expect("small")];
            }
            let _ = w.engine.receive(w.now(), &mut d);
            if i % 100 == 0 {
                w.now_ms += 5;
                w.step();
            }
        }
    };
    flood(&mut w, &mut attacker, 5_000);
    let before = live();
    PEAK.with(|p| p.set(before));
    flood(&mut w, &mut attacker, 50_000);
    let after = live();
    let high = PEAK.with(Cell::get) - before;
    let stats = w.engine.stats();
    println!("live tunnel flood: heap before {before} B, after {after} B, high-water +{high} B, {stats:?}");
    assert!(after - before < 64 * 1024, "heap grew by {} bytes", after - before);
    assert!(high < 256 * 1024, "high-water +{high} bytes");
    assert!(stats.data_dropped >= 10_000, "garbage data packets are counted: {stats:?}");
    assert!(w.engine.is_connected());
    assert_eq!(w.server_sends(&ip_packet(9)), vec![ip_packet(9)]);
}
