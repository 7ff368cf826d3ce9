//! Hostile peers against the whole engine, in memory: garbage datagrams, a flood of spoofed first packets
//! (server resets from random session ids), forged ACKs, reliable packets at and beyond the receive window
//! with maximum-size payloads, data packets for every key_id before any key exists, and TCP frames of every
//! length. Nothing may panic, drops are counted, and the heap stays flat: a counting global allocator
//! measures the engine's live bytes and high-water mark before and after 60 000 hostile datagrams.

use openvpn::engine::{Action, ControlProtection, Engine, EngineConfig, Received, RemoteSpec};
use openvpn::session::Transport;
use openvpn::time::Instant;
use openvpn::tls::TlsSettings;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CA_DER: &[u8] = include_bytes!("../src/engine/testdata/ca.der");
const V2_CLIENT_KEY: &str = include_str!("../src/engine/testdata/v2-client.key");
const UNIX: u64 = 1_800_000_000;

#[path = "support/heap_meter.rs"]
mod heap_meter;
use heap_meter::{live, peak, reset_peak};

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn engine(
    protection: ControlProtection,
    transport: Transport,
    rng: &mut ChaCha8Rng,
) -> (Engine, [u8; 8]) {
    let tls = TlsSettings {
        ca: vec![CA_DER.to_vec()],
        ..Default::default()
    };
    let mut config = EngineConfig::new(protection, tls);
    config.remotes = vec![RemoteSpec {
        host: "192.0.2.1".into(),
        port: 1194,
        transport,
        server_poll_timeout_secs: None,
    }];
    let mut engine = Engine::new(config, at(0), UNIX, rng).expect("valid config");
    assert!(matches!(
        engine.poll_action(at(0), rng),
        Some(Action::Connect(_))
    ));
    engine.transport_ready(at(0));
    let reset = match engine.poll_action(at(0), rng) {
        Some(Action::SendToRemote(p)) => p,
        other => panic!("expected the client reset, got {other:?}"),
    };
    // Over TCP the packet starts after the 2-byte length.
    let skip = if transport == Transport::Tcp4 { 2 } else { 0 };
    let sid: [u8; 8] = reset[skip + 1..skip + 9].try_into().expect("session id");
    (engine, sid)
}

/// Runs the engine's actions for `now`; a reconnect is answered with a ready transport, and the session id
/// of a new client reset is written to `sid` (an on-path attacker sees it). Bounded: an engine that never
/// stops producing actions is a bug.
fn drain(engine: &mut Engine, now: Instant, rng: &mut ChaCha8Rng, sid: &mut [u8; 8]) {
    for _ in 0..1000 {
        match engine.poll_action(now, rng) {
            None => return,
            Some(Action::Connect(_)) => engine.transport_ready(now),
            Some(Action::SendToRemote(p)) => {
                assert!(p.len() <= 4096, "{} byte datagram", p.len());
                // P_CONTROL_HARD_RESET_CLIENT_V2 / V3, possibly behind a TCP length prefix.
                for skip in [0, 2] {
                    if let (Some(op), Some(id)) = (p.get(skip), p.get(skip + 1..skip + 9)) {
                        if matches!(op >> 3, 7 | 10) && id.len() == 8 {
                            sid.copy_from_slice(id);
                        }
                    }
                }
            }
            Some(Action::Exit(reason)) => panic!("hostile input made the engine exit: {reason:?}"),
            Some(_) => {}
        }
    }
    panic!("engine produced 1000 actions for one event");
}

/// The session id of the "server" whose reset the client takes.
const SERVER_SID: [u8; 8] = [0x5e; 8];

/// One hostile datagram of kind `i % 8`, aimed at a client with session id `client_sid`.
fn hostile(i: u64, client_sid: [u8; 8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut random = |n: usize| {
        let mut v = vec![0u8; n];
        rng.fill_bytes(&mut v);
        v
    };
    let mut p = Vec::with_capacity(1600);
    match i % 8 {
        // Garbage of any length, any first byte.
        0 => {
            let len = usize::from(random(1)[0]) * 6;
            p = random(len);
        }
        // A spoofed server reset ACKing the client reset, from a fresh session id (or the one the
        // control packets below use, so that some session takes them in).
        1 => {
            p.push(8 << 3);
            p.extend(if i % 16 == 1 {
                SERVER_SID.to_vec()
            } else {
                random(8)
            });
            p.push(1);
            p.extend([0, 0, 0, 0]);
            p.extend(client_sid);
            p.extend([0, 0, 0, 0]);
        }
        // A forged P_ACK_V1 for up to 8 random ids, with our session id or a random one.
        2 => {
            p.push(5 << 3);
            p.extend(random(8));
            let n = random(1)[0] % 9;
            p.push(n);
            for _ in 0..n {
                p.extend(random(4));
            }
            if n > 0 {
                p.extend(if i % 16 == 2 {
                    client_sid.to_vec()
                } else {
                    random(8)
                });
            }
        }
        // A P_CONTROL_V1 at a message id in or beyond the receive window, with a maximum-size payload.
        // Never (but rarely) id 1, the next in order: the window fills and stays full instead of the
        // garbage reaching TLS and ending the session at once.
        3 => {
            p.push(4 << 3);
            p.extend(SERVER_SID);
            p.push(0);
            let id = if i % 4096 == 4091 {
                1
            } else {
                2 + u32::from(random(1)[0] % 38)
            };
            p.extend(id.to_be_bytes());
            p.extend(random(1400));
        }
        // A data packet (P_DATA_V1 / V2) for any key_id: no data key exists.
        4 => {
            let key_id = u8::try_from(i % 8).unwrap_or(0) & 7;
            p.push(if i % 16 == 4 {
                (6 << 3) | key_id
            } else {
                (9 << 3) | key_id
            });
            p.extend(random(60));
        }
        // A control packet for a wrong key_id (a SOFT_RESET before any session is up).
        5 => {
            p.push((3 << 3) | (1 + u8::try_from(i % 7).unwrap_or(0)));
            p.extend(random(8));
            p.push(0);
            p.extend([0, 0, 0, 1]);
        }
        // Truncations of a valid-looking reset.
        6 => {
            p.push(8 << 3);
            p.extend(random(8));
            p.push(1);
            p.extend([0, 0, 0, 0]);
            p.extend(client_sid);
            let cut = usize::from(random(1)[0]) % p.len();
            p.truncate(cut);
        }
        // A reset with an ACK count far beyond the packet.
        _ => {
            p.push(8 << 3);
            p.extend(random(8));
            p.push(255);
            p.extend(random(40));
        }
    }
    p
}

/// 60 000 hostile datagrams over 100 s of engine time (hand-window reconnects included): returns the live
/// heap before and after and the high-water mark above the "before" level.
fn flood(protection: ControlProtection, transport: Transport) -> (isize, isize, isize, Engine) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut attacker = ChaCha8Rng::seed_from_u64(0xbad);
    let (mut engine, mut sid) = engine(protection, transport, &mut rng);
    // Warm up: the first few thousand datagrams reach every lazily allocated buffer.
    let mut t = 0;
    for i in 0..5_000u64 {
        let mut d = hostile(i, sid, &mut attacker);
        let _ = engine.receive(at(t), &mut d);
        drain(&mut engine, at(t), &mut rng, &mut sid);
        t += 1;
    }
    let before = live();
    reset_peak();
    for i in 0..60_000u64 {
        let mut d = hostile(i, sid, &mut attacker);
        // Over TCP the caller deframes (StreamDeframer): the engine gets whole packets either way.
        let _ = engine.receive(at(t), &mut d);
        if i % 4 == 0 {
            drain(&mut engine, at(t), &mut rng, &mut sid);
        }
        t += 2;
    }
    drain(&mut engine, at(t), &mut rng, &mut sid);
    let high = peak() - before;
    (before, live(), high, engine)
}

const LIVE_GROWTH_BOUND: isize = 256 * 1024;
const HIGH_WATER_BOUND: isize = 512 * 1024;

#[test]
fn plain_tls_flood_keeps_memory_flat() {
    let (before, after, high, engine) = flood(ControlProtection::None, Transport::Udp4);
    let stats = engine.stats();
    println!(
        "plain TLS flood: heap before {before} B, after {after} B, high-water +{high} B, {stats:?}"
    );
    assert!(
        after - before < LIVE_GROWTH_BOUND,
        "heap grew by {} bytes",
        after - before
    );
    assert!(high < HIGH_WATER_BOUND, "heap high-water +{high} bytes");
    assert!(
        stats.control_dropped > 1000,
        "malformed control packets are counted: {stats:?}"
    );
    assert!(!engine.is_connected());
}

#[test]
fn tls_crypt_v2_flood_is_rejected_and_counted() {
    let key =
        openvpn::keys::tls_crypt_v2::TlsCryptV2ClientKey::parse(V2_CLIENT_KEY).expect("test key");
    let protection = ControlProtection::TlsCryptV2 {
        kc: *key.kc.as_bytes(),
        wkc: key.wkc.clone(),
    };
    let (before, after, high, engine) = flood(protection, Transport::Udp4);
    let stats = engine.stats();
    println!("tls-crypt-v2 flood: heap before {before} B, after {after} B, high-water +{high} B, {stats:?}");
    assert!(
        after - before < LIVE_GROWTH_BOUND,
        "heap grew by {} bytes",
        after - before
    );
    assert!(high < HIGH_WATER_BOUND, "heap high-water +{high} bytes");
    // Every control datagram fails authentication: 5 of the 8 kinds are control packets, plus garbage.
    assert!(
        stats.control_dropped >= 60_000 * 5 / 8,
        "unauthenticated control packets are counted: {stats:?}"
    );
}

#[test]
fn tcp_flood_keeps_memory_flat() {
    let (before, after, high, _) = flood(ControlProtection::None, Transport::Tcp4);
    println!("TCP flood: heap before {before} B, after {after} B, high-water +{high} B");
    assert!(
        after - before < LIVE_GROWTH_BOUND,
        "heap grew by {} bytes",
        after - before
    );
    assert!(high < HIGH_WATER_BOUND, "heap high-water +{high} bytes");
}

#[test]
fn data_packets_without_keys_are_dropped_and_counted() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (mut engine, _) = engine(ControlProtection::None, Transport::Udp4, &mut rng);
    let mut n = 0;
    for key_id in 0..8u8 {
        for op in [6u8, 9] {
            let mut p = vec![(op << 3) | key_id, 0, 0, 7, 0, 0, 0, 1];
            p.extend([0x45; 40]);
            // The same packet twice: a replay must not be treated differently from a forgery.
            for _ in 0..2 {
                let mut d = p.clone();
                assert_eq!(engine.receive(at(10), &mut d), Received::Dropped);
                n += 1;
            }
        }
    }
    assert_eq!(
        engine.stats().data_dropped,
        n,
        "every drop before the first data key is counted"
    );
}
