//! Hostile peers against a *connected* engine. A minimal in-memory OpenVPN server (plain TLS control
//! channel: reliability layer, a rustls server, key-method 2, PUSH_REPLY, legacy PRF data keys, AES-256-GCM)
//! brings the engine up with no sockets; then an attacker who sees the traffic replays data packets,
//! rewrites their key_id, forges ACKs and control packets for the live session, sends a control message
//! far over the 2048-byte limit through the real TLS session, and floods garbage. The tunnel must stay up,
//! replays and forgeries must be dropped and counted, and the heap must stay flat.

use openvpn::engine::{Received, ReceivedAt};
use openvpn::wire::{AckBlock, ControlRepr, KeyId, Opcode, SessionId};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "support/mem_server.rs"]
mod mem_server;
use mem_server::{World, PEER_ID};

// --- heap accounting --------------------------------------------------------------------------------------

#[path = "support/heap_meter.rs"]
mod heap_meter;
use heap_meter::{live, peak, reset_peak};

// --- tests ------------------------------------------------------------------------------------------------

fn ip_packet(seq: u8) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 40, 0, seq, 0, 0, 64, 17, 0, 0, 10, 8, 0, 1, 10, 8, 0, 2,
    ];
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
fn receive_in_place_names_where_the_packet_was_decrypted() {
    let mut w = World::connect();
    for seq in 0..10u8 {
        let mut d = w.server.seal(&ip_packet(seq));
        let len = d.len();
        let ReceivedAt::Packet(range) = w.engine.receive_in_place(w.now(), &mut d) else {
            panic!("data packet {seq} not decrypted");
        };
        assert!(
            range.end <= len && range.start >= 14,
            "{range:?} of {len}: room for a frame header"
        );
        assert_eq!(&d[range], &ip_packet(seq)[..]);
    }
    // Replays, garbage and the empty datagram: dropped, never a range.
    let mut replay = w.server.seal(&ip_packet(50));
    let mut again = replay.clone();
    assert!(matches!(
        w.engine.receive_in_place(w.now(), &mut replay),
        ReceivedAt::Packet(_)
    ));
    assert_eq!(
        w.engine.receive_in_place(w.now(), &mut again),
        ReceivedAt::Dropped
    );
    assert_eq!(
        w.engine.receive_in_place(w.now(), &mut []),
        ReceivedAt::Dropped
    );
    let mut garbage = vec![0x48u8; 100];
    assert_eq!(
        w.engine.receive_in_place(w.now(), &mut garbage),
        ReceivedAt::Dropped
    );
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
        assert_eq!(
            w.engine.receive(w.now(), &mut d),
            Received::Dropped,
            "replay accepted"
        );
    }
    assert_eq!(
        w.engine.stats().data_dropped,
        before + 20,
        "replays are counted"
    );
    // The same packets with another key_id: no such key, dropped and counted.
    for (i, d) in recorded.iter().enumerate() {
        let mut d = d.clone();
        let key_id = 1 + u8::try_from(i % 7).expect("small");
        d[0] = (d[0] & !7) | key_id;
        assert_eq!(
            w.engine.receive(w.now(), &mut d),
            Received::Dropped,
            "wrong key_id accepted"
        );
    }
    assert_eq!(
        w.engine.stats().data_dropped,
        before + 40,
        "wrong key_id packets are counted"
    );
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
        let session_id = if i % 2 == 0 {
            w.server.sid
        } else {
            SessionId([0x66; 8])
        };
        let repr = ControlRepr {
            opcode,
            key_id: KeyId::ZERO,
            session_id,
            acks,
            message_id,
            payload: &payload,
        };
        let mut pkt = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut pkt).expect("emit");
        let _ = w.engine.receive(w.now(), &mut pkt[..n]);
        if i % 50 == 0 {
            w.now_ms += 10;
            w.step();
        }
    }
    assert!(
        w.engine.is_connected(),
        "forged control traffic tore the tunnel down"
    );
    assert!(
        w.events.is_empty(),
        "forged control traffic made the engine act: {:?}",
        w.events
    );
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
    assert!(
        w.server.pending.is_empty() && w.server.send.is_idle(),
        "the client took all of it"
    );
    assert!(w.engine.is_connected());
    assert_eq!(w.server_sends(&ip_packet(8)), vec![ip_packet(8)]);
    // What the engine holds afterwards, against an engine that saw only the handshake.
    let baseline = engine_heap(World::connect());
    let after = engine_heap(w);
    println!("engine heap: {baseline} B after the handshake, {after} B after 649 KiB of oversized messages");
    // What remains is buffer capacity (a TLS record's worth, the same after 64 KiB or 640 KiB), not the
    // messages themselves.
    assert!(
        after - baseline < 48 * 1024,
        "the engine keeps {} bytes of it",
        after - baseline
    );
}

/// The bytes the engine owns: the live heap it frees when dropped (the test is single-threaded).
fn engine_heap(w: World) -> isize {
    let World {
        engine,
        server,
        events,
        ..
    } = w;
    assert!(events.is_empty(), "unexpected engine actions: {events:?}");
    drop(server);
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
    reset_peak();
    flood(&mut w, &mut attacker, 50_000);
    let after = live();
    let high = peak() - before;
    let stats = w.engine.stats();
    println!("live tunnel flood: heap before {before} B, after {after} B, high-water +{high} B, {stats:?}");
    assert!(
        after - before < 64 * 1024,
        "heap grew by {} bytes",
        after - before
    );
    assert!(high < 256 * 1024, "high-water +{high} bytes");
    assert!(
        stats.data_dropped >= 10_000,
        "garbage data packets are counted: {stats:?}"
    );
    assert!(w.engine.is_connected());
    assert_eq!(w.server_sends(&ip_packet(9)), vec![ip_packet(9)]);
}

/// Issue 13: without tls-auth/tls-crypt, a blind spoofer who knows only the server's address and port
/// sends one 14-byte HARD_RESET_SERVER_V2 (message id 0, empty ACK block) as soon as the client's reset
/// is out. The client must not adopt the spoofer's session id: the real server's reset, which
/// acknowledges our reset under our session id, still brings the tunnel up at once.
#[test]
fn a_spoofed_server_reset_without_our_session_id_is_ignored() {
    let spoofed = |sid: [u8; 8]| {
        let mut p = vec![(Opcode::ControlHardResetServerV2 as u8) << 3];
        p.extend(sid);
        p.push(0); // empty ACK block
        p.extend(0u32.to_be_bytes()); // message id 0
        assert_eq!(p.len(), 14);
        p
    };
    let mut w = World::new();
    let now = w.now();
    // The engine's reset goes out and reaches the server; the spoofer is faster than the server.
    while let Some(action) = w.engine.poll_action(now, &mut w.rng) {
        match action {
            openvpn::engine::Action::Connect(_) => w.engine.transport_ready(now),
            openvpn::engine::Action::SendToRemote(mut d) => {
                let _ = w.server.receive(&mut d);
            }
            _ => {}
        }
    }
    let mut sink = Vec::new();
    w.deliver(spoofed([0xee; 8]), &mut sink);
    // A spoofed reset that acknowledges id 0 but names another session is ignored too.
    let mut forged = ControlRepr {
        opcode: Opcode::ControlHardResetServerV2,
        key_id: KeyId::ZERO,
        session_id: SessionId([0xdd; 8]),
        acks: AckBlock::new(SessionId([0x11; 8])),
        message_id: Some(0),
        payload: &[],
    };
    forged.acks.try_push(0);
    let mut buf = vec![0u8; forged.buffer_len()];
    let n = forged.emit(&mut buf).unwrap();
    buf.truncate(n);
    w.deliver(buf, &mut sink);
    // The real server answers; the handshake completes in a few rounds, not at hand-window (60 s).
    for _ in 0..200 {
        w.step();
        if w.engine.is_connected() {
            break;
        }
        w.now_ms += 10;
    }
    assert!(
        w.engine.is_connected(),
        "handshake stalled after a spoofed reset (at {} ms)",
        w.now_ms
    );
    assert!(w.now_ms < 2_000);
}
