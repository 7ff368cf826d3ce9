//! The whole client engine *after a completed handshake*, against the in-memory OpenVPN server of
//! `openvpn/tests/support/mem_server.rs`: each input first brings a tunnel up (real TLS, key-method 2,
//! PUSH_REPLY, data keys), then is a sequence of records `[kind, len_hi, len_lo, bytes...]`:
//!   0-2  a raw datagram to the engine (unauthenticated: dropped and counted, never a panic)
//!   3    an IP packet the server encrypts: authenticated data, including ping and OCC payloads
//!   4    a control message the server writes through the live TLS session: PUSH_REPLY, RESTART,
//!        AUTH_FAILED, HALT, INFO ... as authenticated text (the NUL is appended when missing)
//!   5    time passes (`[5, secs, ms/4]`, no payload): keepalive, ping-restart, reneg timers
//!   6    an IP packet the client sends into the tunnel
//!   7    a server data packet replayed (the last one again)
//! Nothing may panic; a packet that the engine decrypts must be the one the server sealed.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../openvpn/tests/support/mem_server.rs"]
#[allow(dead_code)]
mod mem_server;

use mem_server::World;

fuzz_target!(|data: &[u8]| {
    let mut w = World::connect();
    let mut rest = data;
    let mut last_sealed: Option<Vec<u8>> = None;
    while let [kind, hi, lo, tail @ ..] = rest {
        if kind % 8 == 5 {
            w.now_ms += u64::from(*hi) * 1000 + u64::from(*lo) * 4;
            rest = tail;
            w.step();
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (record, next) = tail.split_at(len);
        rest = next;
        match kind % 8 {
            0..=2 => {
                let mut received = Vec::new();
                w.deliver(record.to_vec(), &mut received);
            }
            3 => {
                let sealed = w.server.seal(record);
                if sealed.is_empty() {
                    continue;
                }
                last_sealed = Some(sealed.clone());
                let mut received = Vec::new();
                w.deliver(sealed, &mut received);
                for ip in received {
                    assert_eq!(ip, record, "decrypted packet differs from the sealed one");
                }
            }
            4 => {
                let mut text = record.to_vec();
                if text.last() != Some(&0) {
                    text.push(0);
                }
                w.server.write_tls(&text);
            }
            6 => {
                let _ = w.client_sends(record);
            }
            _ => {
                if let Some(d) = last_sealed.clone() {
                    let mut received = Vec::new();
                    w.deliver(d, &mut received);
                    assert!(received.is_empty(), "a replayed data packet was accepted");
                }
            }
        }
        w.now_ms += 1;
        w.step();
        let _ = (
            w.engine.poll_at(),
            w.engine.stats(),
            w.engine.pushed_config(),
        );
    }
});
