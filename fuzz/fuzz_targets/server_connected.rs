//! The server engine *with connected clients*: two tls-crypt-v2 clients of
//! `openvpn/tests/support/server_world.rs` are brought up first (cookie handshake, TLS, key-method 2, push,
//! data keys), then each input is a sequence of records `[kind, len_hi, len_lo, bytes...]`:
//!   0-1  a raw datagram to the server from client 0's address (unauthenticated for its wrap and keys)
//!   2    a raw datagram from a new address (the stateless first/third packet path)
//!   3    an IP packet client 0 encrypts: authenticated data with any inner bytes (anti-spoofing, OCC, ping)
//!   4    time passes (`[4, secs, ms/4]`, no payload): keepalive, ping-restart, reneg, hand-window
//!   5    the last datagram again (a replay)
//!   6    client 0's last encrypted packet from another address (float with a replayed packet)
//! Nothing may panic; the client table stays within max-clients.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../openvpn/tests/support/server_world.rs"]
#[allow(dead_code)]
mod server_world;

use openvpn::engine::Received;
use server_world::World;
use std::net::SocketAddr;

fuzz_target!(|data: &[u8]| {
    let mut w = World::new(2, 4, 20);
    w.connect_all();
    let mut rest = data;
    let mut last: Vec<u8> = Vec::new();
    let mut sealed: Vec<u8> = Vec::new();
    let mut fresh = 0u16;
    while let [kind, hi, lo, tail @ ..] = rest {
        let kind = kind % 7;
        if kind == 4 {
            w.now_ms += u64::from(*hi) * 1000 + u64::from(*lo) * 4;
            w.step();
            rest = tail;
            continue;
        }
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let now = w.now();
        match kind {
            0 | 1 => {
                last = bytes.to_vec();
                let mut d = last.clone();
                let from = server_world::addr(0);
                w.server.receive(now, from, &mut d, &mut w.rng);
            }
            2 => {
                fresh = fresh.wrapping_add(1);
                last = bytes.to_vec();
                let mut d = last.clone();
                let from: SocketAddr = format!("198.51.100.7:{}", 1024 + fresh).parse().unwrap();
                w.server.receive(now, from, &mut d, &mut w.rng);
            }
            3 => {
                let (engine, _, rng) = &mut w.clients[0];
                let mut out = vec![0u8; bytes.len() + 256];
                if let Ok(n) = engine.encapsulate(now, bytes, &mut out, rng) {
                    out.truncate(n);
                    sealed = out.clone();
                    last = out.clone();
                    let from = server_world::addr(0);
                    w.server.receive(now, from, &mut out, &mut w.rng);
                }
            }
            5 => {
                let mut d = last.clone();
                let from = server_world::addr(0);
                w.server.receive(now, from, &mut d, &mut w.rng);
            }
            _ => {
                let mut d = sealed.clone();
                let from: SocketAddr = "198.51.100.8:4000".parse().unwrap();
                w.server.receive(now, from, &mut d, &mut w.rng);
            }
        }
        w.step();
        assert!(w.server.client_count() <= 4);
    }
    // The clients still get what the server sends them, or were dropped cleanly.
    let now = w.now();
    for (engine, _, _) in &mut w.clients {
        let mut junk = vec![0x48u8; 64];
        let _ = matches!(engine.receive(now, &mut junk), Received::Dropped);
    }
});
