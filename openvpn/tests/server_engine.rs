//! The server engine against the client engine, in memory: the same session core on both sides. A
//! tls-crypt-v2 client goes through the stateless cookie handshake, TLS, key-method 2 and the push, then
//! data flows both ways; float, anti-spoofing, renegotiation from either side, EXIT and max-clients.

#[path = "support/server_world.rs"]
#[allow(dead_code)]
mod server_world;

use std::net::SocketAddr;

use openvpn::engine::Received;
use openvpn::server::engine::{ClientState, GoneReason, ServerReceived};
use server_world::*;

#[test]
fn tls_crypt_v2_clients_connect_through_the_cookie_and_pass_data() {
    let mut w = World::new(3, 8, 0);
    w.connect_all();
    assert_eq!(w.server.client_count(), 3);
    assert_eq!(w.server.handshake_counters().accepted, 3);
    for i in 0..3 {
        let peer_id = w.server.peer_at(addr(i)).expect("client known");
        assert_eq!(w.server.client(peer_id).unwrap().0, ClientState::Connected);
        // Client to server.
        let packet = ip(vaddr(peer_id), [10, 8, 0, 1], i as u8);
        assert!(matches!(
            client_sends(&mut w, i, &packet, addr(i)),
            ServerReceived::Packet(id, _) if id == peer_id
        ));
        // Server to client.
        let back = ip([10, 8, 0, 1], vaddr(peer_id), 0xee);
        let now = w.now();
        let mut out = vec![0u8; 2048];
        let (to, n) = w
            .server
            .encapsulate(now, peer_id, &back, &mut out, &mut w.rng)
            .expect("server encapsulates");
        assert_eq!(to, addr(i));
        let (engine, _, _) = &mut w.clients[i];
        assert_eq!(
            engine.receive(now, &mut out[..n]),
            Received::Packet(&back[..])
        );
    }
}

#[test]
fn a_spoofed_inner_source_is_dropped_and_counted() {
    let mut w = World::new(2, 8, 0);
    w.connect_all();
    let other = w.server.peer_at(addr(1)).unwrap();
    let packet = ip(vaddr(other), [10, 8, 0, 1], 1);
    assert_eq!(
        client_sends(&mut w, 0, &packet, addr(0)),
        ServerReceived::Dropped
    );
    assert_eq!(w.server.stats().spoofed_dropped, 1);
}

#[test]
fn a_client_floats_to_a_new_port_and_keeps_its_session() {
    let mut w = World::new(1, 8, 0);
    w.connect_all();
    let peer_id = w.server.peer_at(addr(0)).unwrap();
    let moved: SocketAddr = "192.0.2.10:50000".parse().unwrap();
    let packet = ip(vaddr(peer_id), [10, 8, 0, 1], 9);
    assert!(matches!(
        client_sends(&mut w, 0, &packet, moved),
        ServerReceived::Packet(..)
    ));
    assert_eq!(w.server.peer_at(moved), Some(peer_id));
    assert_eq!(w.server.peer_at(addr(0)), None);
    assert_eq!(w.server.stats().floats, 1);
    // The server now sends there.
    let mut out = vec![0u8; 2048];
    let now = w.now();
    let (to, _) = w
        .server
        .encapsulate(
            now,
            peer_id,
            &ip([10, 8, 0, 1], vaddr(peer_id), 1),
            &mut out,
            &mut w.rng,
        )
        .unwrap();
    assert_eq!(to, moved);
}

#[test]
fn max_clients_refuses_the_next_third_packet() {
    let mut w = World::new(3, 2, 0);
    w.run_ms(5_000);
    assert_eq!(w.server.client_count(), 2);
    assert!(w.server.stats().full >= 1);
    assert_eq!(w.clients.iter().filter(|c| c.0.is_connected()).count(), 2);
}

/// Connects client 0 of `w`, then sends a packet every 6 s for 24 s: every one arrives, at least two
/// renegotiations happen (`reneg-sec 10` on one side) and no client is dropped.
fn data_flows_across_renegotiations(mut w: World) {
    w.connect_all();
    let peer_id = w.server.peer_at(addr(0)).unwrap();
    for round in 0..4u8 {
        w.run_ms(6_000);
        let packet = ip(vaddr(peer_id), [10, 8, 0, 1], round);
        assert!(
            matches!(
                client_sends(&mut w, 0, &packet, addr(0)),
                ServerReceived::Packet(..)
            ),
            "round {round}"
        );
    }
    assert!(
        w.clients[0].0.stats().renegotiations >= 2,
        "{:?}",
        w.clients[0].0.stats()
    );
    assert!(w.gone.is_empty(), "{:?}", w.gone);
}

#[test]
fn server_renegotiation_keeps_data_flowing() {
    data_flows_across_renegotiations(World::new(1, 8, 10));
}

#[test]
fn a_client_exit_frees_its_slot_at_once() {
    let mut w = World::new(1, 8, 0);
    w.connect_all();
    let peer_id = w.server.peer_at(addr(0)).unwrap();
    let now = w.now();
    let (engine, from, rng) = &mut w.clients[0];
    let from = *from;
    if let Some(mut bye) = engine.shutdown(now, rng) {
        w.server.receive(now, from, &mut bye, &mut w.rng);
    }
    w.step();
    assert_eq!(w.server.client_count(), 0, "gone: {:?}", w.gone);
    assert!(
        w.gone.contains(&(peer_id, GoneReason::Exit)),
        "{:?}",
        w.gone
    );
}

#[test]
fn a_flood_of_spoofed_resets_creates_no_client() {
    let mut w = World::new(0, 8, 0);
    let now = w.now();
    for i in 0..2000u32 {
        let mut d = vec![0x3du8 /* HARD_RESET_CLIENT_V3, key 0 */; 100];
        d[1..5].copy_from_slice(&i.to_be_bytes());
        let from: SocketAddr = format!("198.51.100.{}:{}", i % 250, 1024 + i)
            .parse()
            .unwrap();
        w.server.receive(now, from, &mut d, &mut w.rng);
    }
    assert_eq!(w.server.client_count(), 0);
    assert_eq!(w.server.handshake_counters().replies, 0);
    assert!(w.server.handshake_counters().refused_total() >= 2000);
}

#[test]
fn client_renegotiation_keeps_data_flowing() {
    let mut w = World::new(1, 8, 0);
    w.clients[0].0 = client_with(1, 10);
    data_flows_across_renegotiations(w);
}

#[test]
fn an_idle_client_gets_keepalive_pings_and_stays() {
    let mut w = World::new(1, 8, 0);
    w.connect_all();
    let before = w.clients[0].0.stats().pings_received;
    w.run_ms(35_000);
    assert!(
        w.clients[0].0.stats().pings_received >= before + 3,
        "{:?}",
        w.clients[0].0.stats()
    );
    assert_eq!(w.server.client_count(), 1, "{:?}", w.gone);
}

#[test]
fn tls_crypt_tls_auth_and_plain_clients_connect_and_renegotiate() {
    use openvpn::crypto::{Digest, KeyDirection};
    use openvpn::engine::ControlProtection;
    let key = [0x5a; 256];
    let modes = [
        (
            ControlProtection::TlsCrypt { key },
            ControlProtection::TlsCrypt { key },
        ),
        (
            ControlProtection::TlsAuth {
                key,
                direction: KeyDirection::Normal,
                digest: Digest::Sha256,
            },
            ControlProtection::TlsAuth {
                key,
                direction: KeyDirection::Inverse,
                digest: Digest::Sha256,
            },
        ),
        (ControlProtection::None, ControlProtection::None),
    ];
    for (server_side, client_side) in modes {
        let name = format!("{server_side:?}");
        let mut w = World::new(0, 8, 10);
        w.server = server_with(server_side, 8, 10);
        w.clients = vec![(
            client_protected(1, 0, client_side),
            addr(0),
            rand_chacha::rand_core::SeedableRng::seed_from_u64(5),
        )];
        w.client_got = vec![Vec::new()];
        w.connect_all();
        let peer_id = w.server.peer_at(addr(0)).expect(&name);
        w.run_ms(12_000);
        let packet = ip(vaddr(peer_id), [10, 8, 0, 1], 1);
        assert!(
            matches!(
                client_sends(&mut w, 0, &packet, addr(0)),
                ServerReceived::Packet(..)
            ),
            "{name}"
        );
        assert!(
            w.clients[0].0.stats().renegotiations >= 1,
            "{name}: {:?}",
            w.clients[0].0.stats()
        );
        assert!(w.gone.is_empty(), "{name}: {:?}", w.gone);
    }
}
