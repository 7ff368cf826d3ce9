//! Engine tests without a server: the tls-crypt-v2 first packets (§2.7), retransmission timing,
//! hand-window reconnects, and robustness against arbitrary datagrams.

extern crate std;

use alloc::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::crypto::test_util::pem_body;
use crate::crypto::{DataCipher, DataKey, ReplayWindow, Role, TlsCrypt};
use crate::tls::TlsSettings;
use crate::wire::{AckBlock, ControlRepr, Opcode, ReplayId};

const CA_DER: &[u8] = include_bytes!("testdata/ca.der");
const V2_CLIENT_KEY: &str = include_str!("testdata/v2-client.key");
const UNIX: u64 = 1_800_000_000;

struct Setup {
    engine: Engine,
    kc: [u8; 256],
    wkc: Vec<u8>,
    rng: ChaCha8Rng,
}

fn setup() -> Setup {
    let body = pem_body(V2_CLIENT_KEY);
    let (kc, wkc) = body.split_at(256);
    let kc: [u8; 256] = kc.try_into().unwrap();
    let checks = crate::tls::PeerChecks {
        remote_cert_tls: Some(crate::tls::CertPurpose::Server),
        ..Default::default()
    };
    let tls = TlsSettings {
        ca: alloc::vec![CA_DER.to_vec()],
        checks,
        ..Default::default()
    };
    let mut config = EngineConfig::new(
        ControlProtection::TlsCryptV2 {
            kc,
            wkc: wkc.to_vec(),
        },
        tls,
    );
    config.remotes = alloc::vec![remote("192.0.2.1"), remote("192.0.2.2")];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut engine = Engine::new(config, Instant::ZERO, UNIX, &mut rng).unwrap();
    assert_eq!(
        engine.poll_action(Instant::ZERO, &mut rng),
        Some(Action::Connect(remote("192.0.2.1")))
    );
    assert_eq!(
        engine.poll_action(Instant::ZERO, &mut rng),
        None,
        "waits for the transport"
    );
    engine.transport_ready(Instant::ZERO);
    Setup {
        engine,
        kc,
        wkc: wkc.to_vec(),
        rng,
    }
}

fn remote(host: &str) -> RemoteSpec {
    RemoteSpec {
        host: host.into(),
        port: 1194,
        transport: crate::session::Transport::Udp4,
        server_poll_timeout_secs: None,
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Server-side view of a client packet: strips the WKc (if `op` carries one) and unwraps with Kc.
fn open_client_packet(kc: &[u8; 256], wkc: &[u8], pkt: &[u8]) -> (ReplayId, Vec<u8>) {
    let body = if matches!(pkt[0] >> 3, 10 | 11) {
        assert!(pkt.ends_with(wkc), "WKc appended");
        &pkt[..pkt.len() - wkc.len()]
    } else {
        pkt
    };
    let mut out = alloc::vec![0u8; pkt.len()];
    let (id, n) = TlsCrypt::server(kc).unwrap(body, &mut out).unwrap();
    out.truncate(n);
    (id, out)
}

fn send(action: Option<Action>) -> Vec<u8> {
    match action {
        Some(Action::SendToRemote(p)) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

#[test]
fn first_packet_is_v3_reset_with_wkc_and_early_negotiation() {
    let mut s = setup();
    assert_eq!(s.engine.state(), EngineState::Connecting);
    let pkt = send(s.engine.poll_action(at(0), &mut s.rng));
    assert_eq!(s.engine.state(), EngineState::Wait);
    assert_eq!(pkt[0], 0x50);
    assert_eq!(pkt.len(), 54 + s.wkc.len());
    let (id, plain) = open_client_packet(&s.kc, &s.wkc, &pkt);
    assert_eq!(
        id,
        ReplayId {
            counter: 0x0F00_0001,
            time: UNIX as u32
        }
    );
    let repr = ControlRepr::parse_bytes(&plain).unwrap();
    assert_eq!(
        (repr.opcode, repr.message_id, repr.acks.len()),
        (Opcode::ControlHardResetClientV3, Some(0), 0)
    );
    assert!(repr.payload.is_empty());
    assert!(s.engine.poll_action(at(0), &mut s.rng).is_none());
}

#[test]
fn reset_is_retransmitted_with_backoff_then_hand_window_reconnects() {
    let mut s = setup();
    let first = send(s.engine.poll_action(at(0), &mut s.rng));
    assert_eq!(s.engine.poll_at(), Some(at(2000)));
    assert!(s.engine.poll_action(at(1999), &mut s.rng).is_none());
    let again = send(s.engine.poll_action(at(2000), &mut s.rng));
    // Same session id, new replay counter (every transmission gets one, §2.1).
    assert_eq!(first[1..9], again[1..9]);
    let (id, _) = open_client_packet(&s.kc, &s.wkc, &again);
    assert_eq!(id.counter, 0x0F00_0002);
    assert_eq!(s.engine.poll_at(), Some(at(6000)));
    send(s.engine.poll_action(at(6000), &mut s.rng));
    assert_eq!(s.engine.poll_at(), Some(at(14000)));
    // No answer for hand-window (60 s): reconnect to the next remote after connect-retry (5 s).
    let mut t = 14000;
    let reason = loop {
        match s.engine.poll_action(at(t), &mut s.rng) {
            Some(Action::Reconnect(r)) => break r,
            Some(Action::SendToRemote(_)) => {}
            other => assert!(other.is_none(), "{other:?}"),
        }
        t = s.engine.poll_at().unwrap().as_millis().max(t + 1);
    };
    assert_eq!((reason, t), (ReconnectReason::HandshakeTimeout, 60_000));
    assert_eq!(s.engine.poll_at(), Some(at(65_000)));
    assert_eq!(
        s.engine.poll_action(at(65_000), &mut s.rng),
        Some(Action::Connect(remote("192.0.2.2")))
    );
    s.engine.transport_ready(at(65_000));
    let fresh = send(s.engine.poll_action(at(65_000), &mut s.rng));
    assert_eq!(fresh[0], 0x50);
    assert_ne!(fresh[1..9], first[1..9], "new session id");
}

/// Builds the server's HARD_RESET_SERVER_V2 with EARLY_NEG_FLAGS = RESEND_WKC, wrapped with Kc.
fn server_reset(
    kc: &[u8; 256],
    client_sid: SessionId,
    server_sid: SessionId,
    counter: u32,
) -> Vec<u8> {
    let mut acks = AckBlock::new(client_sid);
    acks.try_push(0);
    let tlv = [0x00, 0x01, 0x00, 0x02, 0x00, 0x01];
    let repr = ControlRepr {
        opcode: Opcode::ControlHardResetServerV2,
        key_id: KeyId::ZERO,
        session_id: server_sid,
        acks,
        message_id: Some(0),
        payload: &tlv,
    };
    let mut plain = alloc::vec![0u8; repr.buffer_len()];
    repr.emit(&mut plain).unwrap();
    let mut out = alloc::vec![0u8; plain.len() + 64];
    let n = TlsCrypt::server(kc)
        .wrap(
            &plain,
            ReplayId {
                counter,
                time: UNIX as u32,
            },
            &mut out,
        )
        .unwrap();
    out.truncate(n);
    out
}

#[test]
fn resend_wkc_makes_message_1_a_wkc_v1_with_ack_and_client_hello() {
    let mut s = setup();
    let reset = send(s.engine.poll_action(at(0), &mut s.rng));
    let client_sid = SessionId(reset[1..9].try_into().unwrap());
    let server_sid = SessionId([0xcf, 0x25, 0x1b, 0xd6, 0x10, 0xa8, 0xbd, 0xc4]);
    let mut pkt = server_reset(&s.kc, client_sid, server_sid, 1);
    assert_eq!(s.engine.receive(at(10), &mut pkt), Received::Consumed);
    let third = send(s.engine.poll_action(at(10), &mut s.rng));
    assert_eq!(s.engine.state(), EngineState::Auth);
    assert_eq!(third[0], 0x58, "P_CONTROL_WKC_V1");
    assert!(
        third.len() <= 1250 - 28,
        "fits the control MTU with the WKc"
    );
    let (_, plain) = open_client_packet(&s.kc, &s.wkc, &third);
    let repr = ControlRepr::parse_bytes(&plain).unwrap();
    assert_eq!(repr.message_id, Some(1));
    assert_eq!(repr.acks.ids(), [0]);
    assert_eq!(repr.acks.remote_session_id(), Some(server_sid));
    assert_eq!(
        repr.payload[..3],
        [0x16, 0x03, 0x01],
        "TLS ClientHello record"
    );
    // The rest of the ClientHello (if any) and later packets are ordinary P_CONTROL_V1.
    while let Some(a) = s.engine.poll_action(at(10), &mut s.rng) {
        let p = send(Some(a));
        assert_eq!(p[0], 0x20);
    }
    // A replayed server reset is dropped by the control replay window and counted.
    let mut replay = server_reset(&s.kc, client_sid, server_sid, 1);
    assert_eq!(s.engine.receive(at(20), &mut replay), Received::Consumed);
    assert_eq!(s.engine.stats().control_dropped, 1);
}

#[test]
fn arbitrary_datagrams_never_panic() {
    let mut s = setup();
    let reset = send(s.engine.poll_action(at(0), &mut s.rng));
    let client_sid = SessionId(reset[1..9].try_into().unwrap());
    let valid = server_reset(&s.kc, client_sid, SessionId([9; 8]), 1);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for i in 0..3000u64 {
        let mut d = match i % 3 {
            0 => {
                let mut d = alloc::vec![0u8; (rng.next_u32() % 1600) as usize];
                rng.fill_bytes(&mut d);
                d
            }
            1 => valid[..(rng.next_u32() as usize % valid.len())].to_vec(),
            _ => {
                let mut d = valid.clone();
                let at = rng.next_u32() as usize % d.len();
                d[at] ^= 1 << (rng.next_u32() % 8);
                d
            }
        };
        let _ = s.engine.receive(at(i), &mut d);
        while s.engine.poll_action(at(i), &mut s.rng).is_some() {}
    }
    assert!(s.engine.stats().control_dropped > 0);
}

#[test]
fn no_data_before_the_tunnel_is_up() {
    let mut s = setup();
    let mut out = [0u8; 256];
    assert_eq!(
        s.engine
            .encapsulate(at(0), &[0x45; 40], &mut out, &mut s.rng),
        Err(SendError::NotConnected)
    );
    let mut data = [
        0x48, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(s.engine.receive(at(0), &mut data), Received::Dropped);
}

/// An engine whose key_id 0 data key is installed as after a PUSH_REPLY with `ping 2, ping-restart 10`,
/// and the server's matching key.
fn connected() -> (Setup, DataKey) {
    let mut s = setup();
    let _ = send(s.engine.poll_action(at(0), &mut s.rng));
    let key2 = [0x5a; 256];
    let client = DataKey::new(
        DataCipher::Aes256Gcm,
        &key2,
        Role::Client,
        KeyId::ZERO,
        Some(7),
        ReplayWindow::default(),
    );
    let server = DataKey::new(
        DataCipher::Aes256Gcm,
        &key2,
        Role::Server,
        KeyId::ZERO,
        Some(7),
        ReplayWindow::default(),
    );
    let mut channel = DataChannel::new();
    channel.install(client.unwrap());
    let e = &mut s.engine;
    // The control channel is idle once connected; drop its unacknowledged reset.
    e.key = None;
    e.data = Some(channel);
    e.state = State::Connected;
    e.pushed = Some(PushedConfig {
        ping: Some(2),
        ping_restart: Some(10),
        peer_id: Some(7),
        ..Default::default()
    });
    e.last_received = at(0);
    e.last_sent = at(0);
    (s, server.unwrap())
}

fn seal(server: &mut DataKey, payload: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut buf = alloc::vec![0u8; payload.len() + 128];
    let at = server.headroom();
    buf[at..at + payload.len()].copy_from_slice(payload);
    let n = server.seal_in_place(&mut buf, payload.len(), rng).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn data_round_trip_in_caller_buffers() {
    let (mut s, mut server) = connected();
    let ip = [0x45u8; 60];
    let mut out = [0u8; 200];
    let n = s
        .engine
        .encapsulate(at(100), &ip, &mut out, &mut s.rng)
        .unwrap();
    assert_eq!(
        &out[..4],
        &[0x48, 0, 0, 7],
        "P_DATA_V2 with the pushed peer-id"
    );
    let mut wire = out[..n].to_vec();
    let range = server.open_in_place(&mut wire, at(100)).unwrap();
    assert_eq!(&wire[range], &ip[..]);

    let reply = [0x46u8; 52];
    let mut pkt = seal(&mut server, &reply, &mut s.rng);
    let replayed = pkt.clone();
    assert_eq!(
        s.engine.receive(at(200), &mut pkt),
        Received::Packet(&reply[..])
    );
    let mut replayed = replayed;
    assert_eq!(
        s.engine.receive(at(200), &mut replayed),
        Received::Dropped,
        "replay rejected"
    );
    assert_eq!(s.engine.stats().data_dropped, 1);
    let st = s.engine.stats();
    assert_eq!(
        (st.packets_out, st.bytes_out, st.packets_in, st.bytes_in),
        (1, 60, 1, 52)
    );
}

#[test]
fn keepalive_ping_after_idle_and_ping_restart_reconnects() {
    let (mut s, mut server) = connected();
    assert!(s.engine.poll_action(at(1999), &mut s.rng).is_none());
    assert_eq!(s.engine.poll_at(), Some(at(2000)));
    let mut ping = send(s.engine.poll_action(at(2000), &mut s.rng));
    let range = server.open_in_place(&mut ping, at(2000)).unwrap();
    assert_eq!(ping[range], crate::crypto::payload::PING_MAGIC);
    assert_eq!(s.engine.stats().pings_sent, 1);

    // A ping from the server at 9 s keeps the session alive past 10 s.
    let mut p = seal(&mut server, &crate::crypto::payload::PING_MAGIC, &mut s.rng);
    assert_eq!(s.engine.receive(at(9000), &mut p), Received::Consumed);
    assert_eq!(s.engine.stats().pings_received, 1);
    let mut t = 2000;
    let reason = loop {
        match s.engine.poll_action(at(t), &mut s.rng) {
            Some(Action::Reconnect(r)) => break r,
            Some(Action::SendToRemote(_)) => {}
            other => assert!(other.is_none(), "{other:?}"),
        }
        t = s.engine.poll_at().unwrap().as_millis().max(t + 1);
    };
    assert_eq!((reason, t), (ReconnectReason::PingRestart, 19_000));
    assert!(!s.engine.is_connected());
    let mut out = [0u8; 200];
    assert_eq!(
        s.engine
            .encapsulate(at(t), &[0x45; 20], &mut out, &mut s.rng),
        Err(SendError::NotConnected)
    );
    // A broken working session retries after 1 s, on the next remote.
    assert_eq!(s.engine.poll_at(), Some(at(t + 1000)));
    assert_eq!(
        s.engine.poll_action(at(t + 1000), &mut s.rng),
        Some(Action::Connect(remote("192.0.2.2")))
    );
    s.engine.transport_ready(at(t + 1000));
    assert_eq!(
        send(s.engine.poll_action(at(t + 1000), &mut s.rng))[0],
        0x50,
        "new session starts"
    );
}

#[test]
fn transport_failures_back_off_and_connect_retry_max_ends() {
    let mut s = setup();
    s.engine.config.connect_retry_max = Some(2);
    let mut t = 0;
    let mut connects = Vec::new();
    s.engine.transport_failed(at(0));
    'outer: loop {
        while let Some(a) = s.engine.poll_action(at(t), &mut s.rng) {
            match a {
                Action::Connect(r) => {
                    connects.push((t, r.host));
                    s.engine.transport_failed(at(t));
                }
                Action::Exit(r) => {
                    assert_eq!(r, ExitReason::RetriesExhausted);
                    break 'outer;
                }
                Action::Reconnect(r) => assert_eq!(r, ReconnectReason::TransportFailed),
                other => panic!("{other:?}"),
            }
        }
        t = s.engine.poll_at().unwrap().as_millis();
        assert!(t < 100_000);
    }
    // Two rounds over two remotes: 4 failures, alternating remotes, 5 s apart.
    assert_eq!(
        connects,
        [
            (5000, "192.0.2.2".into()),
            (10_000, "192.0.2.1".into()),
            (15_000, "192.0.2.2".into())
        ]
    );
    assert_eq!(s.engine.poll_at(), None);
}

#[test]
fn restart_flags_choose_the_remote() {
    assert_eq!(restart_flags("[N]going down"), "N");
    assert_eq!(restart_flags("[PN]"), "PN");
    assert_eq!(restart_flags("plain"), "");
    assert_eq!(restart_flags("[unterminated"), "");
}

#[test]
fn in_place_encapsulation_matches_the_copying_path() {
    let (mut s, mut server) = connected();
    let ip = [0x45u8; 100];
    let head = s.engine.data_headroom().unwrap();
    let mut buf = alloc::vec![0u8; head + ip.len() + crate::crypto::DataChannel::MAX_OVERHEAD];
    buf[head..head + ip.len()].copy_from_slice(&ip);
    let range = s
        .engine
        .encapsulate_in_place(at(5), &mut buf, ip.len(), &mut s.rng)
        .unwrap();
    let mut wire = buf[range].to_vec();
    assert_eq!(wire[..4], [0x48, 0, 0, 7]);
    let plain = server.open_in_place(&mut wire, at(5)).unwrap();
    assert_eq!(wire[plain], ip[..]);
}

#[test]
fn in_place_encapsulation_at_an_earlier_offset_starts_the_datagram_at_the_front() {
    let (mut s, mut server) = connected();
    let ip = [0x45u8; 100];
    let head = s.engine.data_headroom().unwrap();
    let mut buf = alloc::vec![0u8; head + ip.len() + crate::crypto::DataChannel::MAX_OVERHEAD];
    // At the full headroom the unused compression prefix room shows as the range's start.
    buf[head..head + ip.len()].copy_from_slice(&ip);
    let first = s
        .engine
        .encapsulate_in_place_at(at(5), &mut buf, head, ip.len(), &mut s.rng)
        .unwrap();
    let skip = first.start;
    let mut wire = buf[first].to_vec();
    let plain = server.open_in_place(&mut wire, at(5)).unwrap();
    assert_eq!(wire[plain], ip[..]);
    // Written that much earlier, the datagram starts at buf[0] and still opens.
    buf[head - skip..head - skip + ip.len()].copy_from_slice(&ip);
    let second = s
        .engine
        .encapsulate_in_place_at(at(5), &mut buf, head - skip, ip.len(), &mut s.rng)
        .unwrap();
    assert_eq!(second.start, 0);
    let mut wire = buf[second].to_vec();
    assert_eq!(wire[..4], [0x48, 0, 0, 7]);
    let plain = server.open_in_place(&mut wire, at(5)).unwrap();
    assert_eq!(wire[plain], ip[..]);
    // Less room than the key's header is refused before a packet-id is spent.
    let stats = s.engine.stats().packets_out;
    assert_eq!(
        s.engine
            .encapsulate_in_place_at(at(5), &mut buf, 1, ip.len(), &mut s.rng),
        Err(SendError::BufferTooSmall)
    );
    assert_eq!(s.engine.stats().packets_out, stats);
}

#[test]
fn auth_failed_retries_without_a_token_and_stops_with_real_credentials() {
    let (mut s, _) = connected();
    s.engine.auth_token = Some("SESS_ID_AT_x".into());
    s.engine
        .handle_message(at(10), b"AUTH_FAILED,token expired");
    assert!(matches!(
        s.engine.poll_action(at(10), &mut s.rng),
        Some(Action::Reconnect(ReconnectReason::AuthRetry(_)))
    ));
    assert_eq!(s.engine.auth_token, None);
    let (mut s, _) = connected();
    s.engine.handle_message(at(10), b"AUTH_FAILED,bad password");
    assert_eq!(
        s.engine.poll_action(at(10), &mut s.rng),
        Some(Action::Exit(ExitReason::AuthFailed("bad password".into())))
    );
    assert_eq!(s.engine.poll_at(), None);
}

#[test]
fn auth_pending_extends_the_handshake_deadline() {
    let mut s = setup();
    let _ = send(s.engine.poll_action(at(0), &mut s.rng));
    s.engine
        .handle_message(at(50_000), b"AUTH_PENDING,timeout 120");
    assert_eq!(s.engine.handshake_deadline, at(170_000));
}

#[test]
fn ping_exit_stops_and_shutdown_sends_occ_exit() {
    let (mut s, mut server) = connected();
    s.engine.pushed.as_mut().unwrap().ping_exit = Some(5);
    let mut t = 0;
    let action = loop {
        match s.engine.poll_action(at(t), &mut s.rng) {
            Some(Action::SendToRemote(_)) => continue,
            Some(a) => break a,
            None => t = s.engine.poll_at().unwrap().as_millis(),
        }
    };
    assert_eq!((action, t), (Action::Exit(ExitReason::PingExit), 5000));

    let (mut s, _) = connected();
    let mut pkt = s.engine.shutdown(at(1), &mut s.rng).unwrap();
    let range = server.open_in_place(&mut pkt, at(1)).unwrap();
    assert_eq!(pkt[range.clone()][..16], crate::crypto::payload::OCC_MAGIC);
    assert_eq!(pkt[range][16], 6, "OCC_EXIT");
    assert_eq!(
        s.engine.poll_action(at(1), &mut s.rng),
        Some(Action::Exit(ExitReason::Shutdown))
    );
    assert!(s.engine.shutdown(at(2), &mut s.rng).is_none());
}

#[test]
fn auth_failed_temp_honours_backoff_and_advance() {
    let (mut s, _) = connected();
    s.engine
        .handle_message(at(10), b"AUTH_FAILED,TEMP[backoff 30,advance no]:try later");
    assert!(matches!(
        s.engine.poll_action(at(10), &mut s.rng),
        Some(Action::Reconnect(ReconnectReason::AuthRetry(_)))
    ));
    assert_eq!(s.engine.poll_at(), Some(at(30_010)));
    assert_eq!(
        s.engine.poll_action(at(30_010), &mut s.rng),
        Some(Action::Connect(remote("192.0.2.1"))),
        "same remote"
    );
}

/// Wraps a plain server control packet with Kc (server role).
fn server_packet(kc: &[u8; 256], repr: &ControlRepr<'_>, counter: u32) -> Vec<u8> {
    let mut plain = alloc::vec![0u8; repr.buffer_len()];
    repr.emit(&mut plain).unwrap();
    let mut out = alloc::vec![0u8; plain.len() + 64];
    let n = TlsCrypt::server(kc)
        .wrap(
            &plain,
            ReplayId {
                counter,
                time: UNIX as u32,
            },
            &mut out,
        )
        .unwrap();
    out.truncate(n);
    out
}

#[test]
fn server_soft_reset_starts_a_renegotiation_on_the_next_key_id() {
    let mut s = setup();
    let reset = send(s.engine.poll_action(at(0), &mut s.rng));
    let client_sid = SessionId(reset[1..9].try_into().unwrap());
    let server_sid = SessionId([7; 8]);
    let mut pkt = server_reset(&s.kc, client_sid, server_sid, 1);
    s.engine.receive(at(1), &mut pkt);
    while s.engine.poll_action(at(1), &mut s.rng).is_some() {}
    // Pretend the tunnel came up on key_id 0.
    let key2 = [0x5a; 256];
    let client = DataKey::new(
        DataCipher::Aes256Gcm,
        &key2,
        Role::Client,
        KeyId::ZERO,
        Some(0),
        ReplayWindow::default(),
    );
    let mut channel = DataChannel::new();
    channel.install(client.unwrap());
    s.engine.data = Some(channel);
    s.engine.negotiated = Some((DataCipher::Aes256Gcm, Some(0)));
    s.engine.state = State::Connected;
    s.engine.pushed = Some(PushedConfig::default());

    let key1 = KeyId::new(1).unwrap();
    let soft = ControlRepr {
        opcode: Opcode::ControlSoftResetV1,
        key_id: key1,
        session_id: server_sid,
        acks: AckBlock::EMPTY,
        message_id: Some(0),
        payload: &[],
    };
    let mut pkt = server_packet(&s.kc, &soft, 2);
    assert_eq!(s.engine.receive(at(1000), &mut pkt), Received::Consumed);
    let ours = send(s.engine.poll_action(at(1000), &mut s.rng));
    let (_, plain) = open_client_packet(&s.kc, &s.wkc, &ours);
    let repr = ControlRepr::parse_bytes(&plain).unwrap();
    assert_eq!(
        (repr.opcode, repr.key_id, repr.message_id),
        (Opcode::ControlSoftResetV1, key1, Some(0))
    );
    assert_eq!(
        (repr.acks.ids(), repr.acks.remote_session_id()),
        (&[0u32][..], Some(server_sid))
    );
    let hello = send(s.engine.poll_action(at(1000), &mut s.rng));
    let (_, plain) = open_client_packet(&s.kc, &s.wkc, &hello);
    let repr = ControlRepr::parse_bytes(&plain).unwrap();
    assert_eq!(
        (repr.opcode, repr.key_id, repr.message_id),
        (Opcode::ControlV1, key1, Some(1))
    );
    assert_eq!(
        repr.payload[..3],
        [0x16, 0x03, 0x01],
        "fresh TLS ClientHello"
    );
    assert!(
        s.engine.is_connected(),
        "the old key keeps the tunnel up meanwhile"
    );
    // A late retransmission on the old key_id 0 is still acknowledged by its control channel.
    while s.engine.poll_action(at(1000), &mut s.rng).is_some() {}
    let mut late = server_reset(&s.kc, client_sid, server_sid, 4);
    assert_eq!(s.engine.receive(at(1002), &mut late), Received::Consumed);
    let ack = send(s.engine.poll_action(at(1002), &mut s.rng));
    let (_, plain) = open_client_packet(&s.kc, &s.wkc, &ack);
    let repr = ControlRepr::parse_bytes(&plain).unwrap();
    assert_eq!((repr.opcode, repr.key_id), (Opcode::AckV1, KeyId::ZERO));
    assert!(repr.acks.ids().contains(&0));
    // A SOFT_RESET that skips a key_id is out of sync and ignored.
    let mut stray = server_packet(
        &s.kc,
        &ControlRepr {
            key_id: KeyId::new(3).unwrap(),
            ..soft
        },
        3,
    );
    s.engine.receive(at(1001), &mut stray);
    assert!(s.engine.pending_soft_reset.is_none());
}

#[test]
fn server_without_cipher_push_uses_data_ciphers_fallback() {
    for fallback in [None, Some("AES-256-CBC")] {
        let mut s = setup();
        s.engine.config.data_ciphers_fallback = fallback.map(Into::into);
        let reset = send(s.engine.poll_action(at(0), &mut s.rng));
        let client_sid = SessionId(reset[1..9].try_into().unwrap());
        let mut pkt = server_reset(&s.kc, client_sid, SessionId([7; 8]), 1);
        s.engine.receive(at(1), &mut pkt);
        while s.engine.poll_action(at(1), &mut s.rng).is_some() {}
        let server = crate::session::ServerKeySource {
            random1: [1; 32],
            random2: [2; 32],
        };
        s.engine
            .key
            .as_mut()
            .unwrap()
            .set_server_keys(server.clone());
        s.engine.server_keys = Some(server);
        s.engine.apply_push(
            at(2),
            PushedConfig {
                peer_id: Some(1),
                ..Default::default()
            },
        );
        let action = s.engine.poll_action(at(2), &mut s.rng);
        match fallback {
            Some(_) => {
                assert!(matches!(action, Some(Action::TunnelUp(_))), "{action:?}");
                let key = s.engine.data.as_ref().unwrap().primary().unwrap();
                assert_eq!(key.cipher().name(), "AES-256-CBC");
            }
            None => assert!(
                matches!(action, Some(Action::Reconnect(ReconnectReason::BadPush(_)))),
                "{action:?}"
            ),
        }
    }
}

#[test]
fn real_compression_pushed_is_a_clear_exit() {
    let mut s = setup();
    let reset = send(s.engine.poll_action(at(0), &mut s.rng));
    let client_sid = SessionId(reset[1..9].try_into().unwrap());
    let mut pkt = server_reset(&s.kc, client_sid, SessionId([7; 8]), 1);
    s.engine.receive(at(1), &mut pkt);
    while s.engine.poll_action(at(1), &mut s.rng).is_some() {}
    s.engine.server_keys = Some(crate::session::ServerKeySource {
        random1: [1; 32],
        random2: [2; 32],
    });
    let pushed = PushedConfig {
        cipher: Some("AES-256-GCM".into()),
        compression: Some("compress lz4-v2".into()),
        ..Default::default()
    };
    s.engine.apply_push(at(2), pushed);
    assert_eq!(
        s.engine.poll_action(at(2), &mut s.rng),
        Some(Action::Exit(ExitReason::CompressionRequired(
            "compress lz4-v2".into()
        )))
    );
}

#[test]
fn connection_blocks_keep_their_own_control_protection() {
    let mut s = setup();
    // The second remote uses tls-crypt with its own key; the first keeps tls-crypt-v2.
    s.engine.config.remote_protection =
        alloc::vec![None, Some(ControlProtection::TlsCrypt { key: [0x42; 256] })];
    let first = send(s.engine.poll_action(at(0), &mut s.rng));
    assert_eq!(first[0], 0x50, "tls-crypt-v2 reset on the first remote");
    s.engine.transport_failed(at(1));
    let mut t = 1;
    loop {
        match s.engine.poll_action(at(t), &mut s.rng) {
            Some(Action::Connect(r)) => {
                assert_eq!(r.host, "192.0.2.2");
                s.engine.transport_ready(at(t));
            }
            Some(Action::SendToRemote(p)) => {
                assert_eq!(
                    p[0], 0x38,
                    "plain HARD_RESET_CLIENT_V2 wrapped with tls-crypt"
                );
                let mut out = alloc::vec![0u8; p.len()];
                assert!(TlsCrypt::server(&[0x42; 256]).unwrap(&p, &mut out).is_ok());
                break;
            }
            Some(_) => {}
            None => t = s.engine.poll_at().unwrap().as_millis(),
        }
    }
}

#[test]
fn inactive_exits_without_tunnel_traffic() {
    for packet_at in [None, Some(20_000u64)] {
        let (mut s, mut server) = connected();
        s.engine.pushed.as_mut().unwrap().ping_restart = Some(0);
        s.engine.config.inactive = Some((30, 0));
        let mut reply = seal(&mut server, &[0x45u8; 40], &mut s.rng);
        let mut t = 0;
        let action = loop {
            if packet_at.is_some_and(|p| t >= p) && !reply.is_empty() {
                // A tunnel packet (not a keepalive) restarts the inactivity timer.
                assert!(matches!(
                    s.engine.receive(at(t), &mut reply),
                    Received::Packet(_)
                ));
                reply.clear();
            }
            match s.engine.poll_action(at(t), &mut s.rng) {
                Some(Action::SendToRemote(_)) => continue,
                Some(a) => break a,
                None => t = s.engine.poll_at().unwrap().as_millis(),
            }
        };
        let expected = packet_at.map_or(30_000, |p| p + 30_000);
        assert_eq!((action, t), (Action::Exit(ExitReason::Inactive), expected));
    }
}

/// Runs the engine's clock from `from_ms` until it asks for a transport; returns when and which host, with
/// the reconnect reasons seen on the way.
fn next_connect(s: &mut Setup, from_ms: u64) -> (u64, String, Vec<ReconnectReason>) {
    let mut t = from_ms;
    let mut reasons = Vec::new();
    loop {
        match s.engine.poll_action(at(t), &mut s.rng) {
            Some(Action::Connect(r)) => return (t, r.host, reasons),
            Some(Action::Reconnect(r)) => reasons.push(r),
            Some(Action::SendToRemote(_)) => {}
            Some(other) => panic!("at {t} ms: {other:?}"),
            None => {
                t = s.engine.poll_at().unwrap().as_millis();
                assert!(t < 1_000_000, "no connect");
            }
        }
    }
}

#[test]
fn restart_with_n_moves_to_the_next_remote_and_without_keeps_it() {
    // `RESTART,[N]…` (§8.1 control messages): reconnect to the next remote, 1 s after a working session.
    let (mut s, _) = connected();
    assert_eq!(s.engine.state().name(), "CONNECTED");
    s.engine.handle_message(at(10), b"RESTART,[N]server moving");
    assert_eq!(s.engine.state().name(), "RECONNECTING");
    assert!(!s.engine.is_connected());
    assert_eq!(
        s.engine
            .encapsulate(at(10), &[0x45; 20], &mut [0; 256], &mut s.rng),
        Err(SendError::NotConnected)
    );
    let (t, host, reasons) = next_connect(&mut s, 10);
    assert_eq!(
        reasons,
        [ReconnectReason::ServerRestart("[N]server moving".into())]
    );
    assert_eq!((t, host.as_str()), (1010, "192.0.2.2"));
    // Plain `RESTART`: the same server again.
    let (mut s, _) = connected();
    s.engine
        .handle_message(at(10), b"RESTART,server restarting");
    let (t, host, reasons) = next_connect(&mut s, 10);
    assert_eq!(
        reasons,
        [ReconnectReason::ServerRestart("server restarting".into())]
    );
    assert_eq!((t, host.as_str()), (1010, "192.0.2.1"));
    assert_eq!(s.engine.state().name(), "CONNECTING");
}

#[test]
fn halt_stops_for_good_and_exit_reconnects() {
    let (mut s, _) = connected();
    s.engine.handle_message(at(10), b"HALT,maintenance");
    assert_eq!(
        s.engine.poll_action(at(10), &mut s.rng),
        Some(Action::Exit(ExitReason::Halt("maintenance".into())))
    );
    assert_eq!(s.engine.state().name(), "EXITING");
    assert_eq!(s.engine.poll_at(), None);
    assert_eq!(s.engine.poll_action(at(100_000), &mut s.rng), None);
    // cc-exit `EXIT`: the server is going away; try again (next remote) like OpenVPN's SIGUSR1.
    let (mut s, _) = connected();
    s.engine.handle_message(at(10), b"EXIT");
    let (t, host, reasons) = next_connect(&mut s, 10);
    assert_eq!(reasons, [ReconnectReason::ServerExit]);
    assert_eq!((t, host.as_str()), (1010, "192.0.2.2"));
}

#[test]
fn auth_failed_session_reconnects_with_the_configured_credentials() {
    // `AUTH_FAILED,SESSION:…` is retried even without a token (the session, not the password, failed).
    let (mut s, _) = connected();
    s.engine.config.auth_user_pass = Some(("alice".into(), "secret".into()));
    s.engine
        .handle_message(at(10), b"AUTH_FAILED,SESSION:session expired");
    let (_, _, reasons) = next_connect(&mut s, 10);
    assert_eq!(
        reasons,
        [ReconnectReason::AuthRetry("SESSION:session expired".into())]
    );
    assert_eq!(s.engine.auth_token, None);
}

#[test]
fn info_and_unknown_messages_change_nothing() {
    let (mut s, _) = connected();
    s.engine.handle_message(at(10), b"INFO,hello there");
    s.engine.handle_message(at(10), b"SOMETHING_NEW,x");
    assert!(s.engine.is_connected());
    assert!(!matches!(
        s.engine.poll_action(at(10), &mut s.rng),
        Some(Action::Reconnect(_) | Action::Exit(_))
    ));
}

#[test]
fn auth_pending_moves_the_hand_window_reconnect() {
    // Without AUTH_PENDING the handshake times out at hand-window (60 s); with `timeout 120` at 50 s it
    // lasts until 170 s, and then reconnects.
    let mut s = setup();
    // No server reset is simulated here, so server-poll-timeout (120 s) must not end the wait first.
    s.engine.config.server_poll_timeout_secs = 1000;
    let _ = send(s.engine.poll_action(at(0), &mut s.rng));
    s.engine
        .handle_message(at(50_000), b"AUTH_PENDING,timeout 120");
    s.engine.last_received = at(100_000); // the server keeps answering
    let (t, host, reasons) = next_connect(&mut s, 100_000);
    assert_eq!(reasons, [ReconnectReason::HandshakeTimeout]);
    // The deadline at 170 s, then connect-retry (5 s) to the next remote.
    assert_eq!((t, host.as_str()), (175_000, "192.0.2.2"));
}

#[test]
fn server_poll_timeout_tries_the_next_remote_when_the_server_is_silent() {
    let mut s = setup();
    s.engine.config.server_poll_timeout_secs = 10;
    assert_eq!(s.engine.state().name(), "CONNECTING");
    let _ = send(s.engine.poll_action(at(0), &mut s.rng));
    assert_eq!(s.engine.state().name(), "WAIT");
    let (t, host, reasons) = next_connect(&mut s, 0);
    assert_eq!(reasons, [ReconnectReason::ServerPollTimeout]);
    // 10 s of silence, then connect-retry (5 s) before the next remote.
    assert_eq!((t, host.as_str()), (15_000, "192.0.2.2"));
}

#[test]
fn a_connection_blocks_connect_timeout_applies_to_that_remote_only() {
    // Issue 13: the first block's `connect-timeout 3` gave up the second remote's attempt after 3 s too.
    let text = "client\n<connection>\nremote 192.0.2.1 1194\nconnect-timeout 3\n</connection>\n\
        <connection>\nremote 192.0.2.2 1194\n</connection>\n<auth-user-pass>\nu\np\n</auth-user-pass>\n\
        peer-fingerprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\n";
    let parsed = crate::config::parse(text, &mut crate::config::KeepPaths).unwrap();
    assert!(
        parsed.warnings.is_empty(),
        "no 'applies to every connection' warning: {:?}",
        parsed.warnings
    );
    let e = EngineConfig::from_config(&parsed.config).unwrap();
    assert_eq!(e.server_poll_timeout_secs, 120);
    assert_eq!(e.remotes[0].server_poll_timeout_secs, Some(3));
    assert_eq!(e.remotes[1].server_poll_timeout_secs, None);

    let mut s = setup();
    s.engine.config.remotes[0].server_poll_timeout_secs = Some(3);
    let _ = send(s.engine.poll_action(at(0), &mut s.rng));
    let (t, host, reasons) = next_connect(&mut s, 0);
    assert_eq!(reasons, [ReconnectReason::ServerPollTimeout]);
    // 3 s of silence, then connect-retry (5 s) before the second remote.
    assert_eq!((t, host.as_str()), (8_000, "192.0.2.2"));
    s.engine.transport_ready(at(t));
    let _ = send(s.engine.poll_action(at(t), &mut s.rng));
    // The second remote has the global 120 s, not the first block's 3 s: its attempt lasts until
    // hand-window (60 s) ends it.
    let (t2, host2, reasons2) = next_connect(&mut s, t);
    assert_eq!(reasons2, [ReconnectReason::HandshakeTimeout]);
    assert_eq!((t2, host2.as_str()), (t + 60_000 + 5_000, "192.0.2.1"));
}

#[test]
fn server_poll_timeout_does_not_apply_once_the_server_answered() {
    let (mut s, _) = connected();
    s.engine.config.server_poll_timeout_secs = 1;
    assert!(!s.engine.awaiting_server());
    assert!(!matches!(
        s.engine.poll_action(at(5_000), &mut s.rng),
        Some(Action::Reconnect(_))
    ));
    assert!(s.engine.is_connected());
}

#[test]
fn remote_random_shuffles_with_the_callers_rng() {
    let order = |random: bool, seed: u64| {
        let mut config = setup().engine.config.clone();
        config.remotes = (1..=8)
            .map(|i| remote(&alloc::format!("192.0.2.{i}")))
            .collect();
        config.remote_protection = Vec::new();
        config.remote_random = random;
        config.connect_retry_secs = 1;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut engine = Engine::new(config, Instant::ZERO, UNIX, &mut rng).unwrap();
        let mut hosts = Vec::new();
        let mut t = 0;
        while hosts.len() < 8 {
            match engine.poll_action(at(t), &mut rng) {
                Some(Action::Connect(r)) => {
                    hosts.push(r.host);
                    engine.transport_failed(at(t));
                }
                Some(_) => {}
                None => t = engine.poll_at().unwrap().as_millis(),
            }
        }
        hosts
    };
    let config_order: Vec<String> = (1..=8).map(|i| alloc::format!("192.0.2.{i}")).collect();
    assert_eq!(order(false, 1), config_order);
    let shuffled = order(true, 1);
    assert_ne!(shuffled, config_order);
    let mut sorted = shuffled.clone();
    sorted.sort();
    assert_eq!(
        sorted, config_order,
        "a permutation: every remote once per round"
    );
    assert_eq!(
        order(true, 1),
        shuffled,
        "deterministic for the caller's rng"
    );
    assert_ne!(order(true, 2), shuffled);
}

#[test]
fn from_config_maps_server_poll_timeout_connect_retry_and_tls_suites() {
    let text = "client\nremote vpn.example.net 1194\nremote vpn2.example.net 443 tcp\nremote-random\n\
        peer-fingerprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\n\
        <auth-user-pass>\nu\np\n</auth-user-pass>\nserver-poll-timeout 7\nconnect-retry 2 40\nconnect-retry-max 3\n\
        tls-cipher ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA\ntls-ciphersuites TLS_AES_128_GCM_SHA256\n";
    let parsed = crate::config::parse(text, &mut crate::config::KeepPaths).unwrap();
    let e = EngineConfig::from_config(&parsed.config).unwrap();
    assert_eq!(e.server_poll_timeout_secs, 7);
    assert_eq!(
        (
            e.connect_retry_secs,
            e.connect_retry_max_delay_secs,
            e.connect_retry_max
        ),
        (2, 40, Some(3))
    );
    assert!(e.remote_random);
    assert_eq!(e.remotes.len(), 2);
    assert_eq!(e.tls.tls12_suites.as_deref(), Some(&[0xc02f][..]));
    assert_eq!(e.tls.tls13_suites.as_deref(), Some(&[0x1301][..]));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    assert!(Engine::new(e, Instant::ZERO, UNIX, &mut rng).is_ok());
}

#[test]
fn connect_retry_doubles_every_five_failures_up_to_its_cap() {
    let mut s = setup();
    s.engine.config.connect_retry_secs = 2;
    s.engine.config.connect_retry_max_delay_secs = 7;
    let mut t = 0;
    let mut gaps = Vec::new();
    s.engine.transport_failed(at(0));
    while gaps.len() < 12 {
        match s.engine.poll_action(at(t), &mut s.rng) {
            Some(Action::Connect(_)) => {
                gaps.push(t);
                s.engine.transport_failed(at(t));
            }
            Some(_) => {}
            None => t = s.engine.poll_at().unwrap().as_millis(),
        }
    }
    let delays: Vec<u64> = core::iter::once(gaps[0])
        .chain(gaps.windows(2).map(|w| w[1] - w[0]))
        .collect();
    // Failures 1-4: 2 s; 5-9: 4 s; from 10: 8 s capped at 7 s.
    assert_eq!(
        delays,
        [2000, 2000, 2000, 2000, 4000, 4000, 4000, 4000, 4000, 7000, 7000, 7000]
    );
}

#[test]
fn nul_bytes_in_credentials_or_peer_info_are_refused_at_start() {
    let base = || {
        let mut config = EngineConfig::new(
            ControlProtection::None,
            TlsSettings {
                ca: alloc::vec![CA_DER.to_vec()],
                ..Default::default()
            },
        );
        config.remotes = alloc::vec![remote("192.0.2.1")];
        config
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut ok = base();
    ok.auth_user_pass = Some(("alice".into(), "pw".into()));
    assert!(Engine::new(ok, Instant::ZERO, UNIX, &mut rng).is_ok());
    let mut bad = [base(), base(), base(), base()];
    bad[0].auth_user_pass = Some(("al\0ice".into(), "pw".into()));
    bad[1].auth_user_pass = Some(("alice".into(), "p\0w".into()));
    bad[2].peer_info_version = "1\0IV_X=2".into();
    bad[3].peer_info_platform = "x\0".into();
    for config in bad {
        assert_eq!(
            Engine::new(config, Instant::ZERO, UNIX, &mut rng).err(),
            Some(EngineError::EmbeddedNul)
        );
    }
}

/// A connected engine whose key_id 0 control channel is live (the server's reset arrived), with an
/// AES-256-GCM data key on key_id 0 installed as the newest send key.
fn connected_with_control() -> Setup {
    let mut s = setup();
    let reset = send(s.engine.poll_action(at(0), &mut s.rng));
    let client_sid = SessionId(reset[1..9].try_into().unwrap());
    let mut pkt = server_reset(&s.kc, client_sid, SessionId([7; 8]), 1);
    s.engine.receive(at(1), &mut pkt);
    while s.engine.poll_action(at(1), &mut s.rng).is_some() {}
    let client = DataKey::new(
        DataCipher::Aes256Gcm,
        &[0x5a; 256],
        Role::Client,
        KeyId::ZERO,
        Some(0),
        ReplayWindow::default(),
    );
    let mut channel = DataChannel::new();
    channel.install(client.unwrap());
    let e = &mut s.engine;
    e.data = Some(channel);
    e.negotiated = Some((DataCipher::Aes256Gcm, Some(0)));
    e.send_keys.newest = Some(crate::peer::SendKey {
        key_id: KeyId::ZERO,
        deferred_until: at(0),
    });
    e.state = State::Connected;
    e.pushed = Some(PushedConfig::default());
    e.key_started = at(1);
    s
}

/// The server's key-method-2 answer for the running renegotiation: installs its data key.
fn finish_renegotiation(s: &mut Setup, now: Instant) {
    let server = ServerKeySource {
        random1: [1; 32],
        random2: [2; 32],
    };
    s.engine.key.as_mut().unwrap().set_server_keys(server);
    s.engine.finish_renegotiation(now);
    assert!(s.engine.reneg_started.is_none(), "renegotiation finished");
}

fn current_key_id(s: &Setup) -> u8 {
    s.engine.key.as_ref().unwrap().key_id().value()
}

fn data_key_mut(s: &mut Setup, key_id: u8) -> &mut DataKey {
    s.engine
        .data
        .as_mut()
        .unwrap()
        .key_mut(KeyId::new(key_id).unwrap())
        .unwrap()
}

#[test]
fn packet_id_near_wrap_starts_exactly_one_renegotiation() {
    let mut s = connected_with_control();
    assert_eq!(current_key_id(&s), 0);
    data_key_mut(&mut s, 0).set_next_packet_id(crate::crypto::data::PACKET_ID_RENEGOTIATE_AT);
    while s.engine.poll_action(at(2000), &mut s.rng).is_some() {}
    assert_eq!(current_key_id(&s), 1, "packet-id trigger renegotiates");
    finish_renegotiation(&mut s, at(3000));
    // The new key is younger than its deferred window, the old one is worn out: no second renegotiation,
    // and sending moves to the new key at once.
    for ms in [3000, 4000, 30_000] {
        while s.engine.poll_action(at(ms), &mut s.rng).is_some() {}
        assert_eq!(current_key_id(&s), 1, "a second renegotiation at {ms} ms");
    }
    assert_eq!(s.engine.stats().renegotiations, 1);
    let mut out = [0u8; 200];
    let n = s
        .engine
        .encapsulate(at(30_000), &[0x45; 40], &mut out, &mut s.rng)
        .unwrap();
    assert!(n > 40);
    assert_eq!(out[0] & 7, 1, "sent with the new key");
}

#[test]
fn aead_usage_limit_starts_exactly_one_renegotiation() {
    let mut s = connected_with_control();
    // A 1400-byte packet is 88 blocks plus one for the packet: 89 per packet, the trigger at 200.
    let limits = crate::crypto::UsageLimits {
        renegotiate_usage: 200,
        ..data_key_mut(&mut s, 0).usage_limits()
    };
    data_key_mut(&mut s, 0).set_usage_limits(limits);
    let mut out = [0u8; 1600];
    let ip = [0x45u8; 1400];
    for (i, ms) in [2000u64, 2100, 2200].into_iter().enumerate() {
        while s.engine.poll_action(at(ms), &mut s.rng).is_some() {}
        assert_eq!(current_key_id(&s), 0, "no renegotiation below the limit");
        s.engine
            .encapsulate(at(ms), &ip, &mut out, &mut s.rng)
            .unwrap();
        assert_eq!(
            s.engine
                .data
                .as_ref()
                .unwrap()
                .key(KeyId::ZERO)
                .unwrap()
                .stats()
                .sent_usage,
            89 * (i as u64 + 1)
        );
    }
    // 267 > 200: one renegotiation, however often the engine is polled and packets are sent meanwhile.
    for ms in [2300u64, 2400, 2500] {
        while s.engine.poll_action(at(ms), &mut s.rng).is_some() {}
        assert_eq!(current_key_id(&s), 1);
        s.engine
            .encapsulate(at(ms), &ip, &mut out, &mut s.rng)
            .unwrap();
    }
    finish_renegotiation(&mut s, at(3000));
    for ms in [3000u64, 4000, 30_000] {
        while s.engine.poll_action(at(ms), &mut s.rng).is_some() {}
        assert_eq!(current_key_id(&s), 1, "a second renegotiation at {ms} ms");
        s.engine
            .encapsulate(at(ms), &ip, &mut out, &mut s.rng)
            .unwrap();
        assert_eq!(out[0] & 7, 1, "the worn-out key is given up");
    }
    assert_eq!(s.engine.stats().renegotiations, 1);
}

#[test]
fn failed_decryptions_renegotiate_then_the_key_is_refused() {
    let mut s = connected_with_control();
    let limits = crate::crypto::UsageLimits {
        renegotiate_usage: u64::MAX,
        renegotiate_failures: 3,
        refuse_failures: 5,
    };
    data_key_mut(&mut s, 0).set_usage_limits(limits);
    let mut server = DataKey::new(
        DataCipher::Aes256Gcm,
        &[0x5a; 256],
        Role::Server,
        KeyId::ZERO,
        Some(0),
        ReplayWindow::default(),
    )
    .unwrap();
    let ip = [0x45u8; 40];
    for failures in 1..=5u64 {
        let good = seal(&mut server, &ip, &mut s.rng);
        let mut forged = good.clone();
        *forged.last_mut().unwrap() ^= 1;
        let now = at(2000 + failures);
        assert_eq!(s.engine.receive(now, &mut forged), Received::Dropped);
        while s.engine.poll_action(now, &mut s.rng).is_some() {}
        // Renegotiation from the third failure on, exactly one.
        assert_eq!(current_key_id(&s), u8::from(failures >= 3), "{failures}");
        let mut good = good;
        let got = s.engine.receive(now, &mut good);
        if failures < 5 {
            assert_eq!(got, Received::Packet(&ip[..]), "{failures}");
        } else {
            assert_eq!(got, Received::Dropped, "key refused after 5 failures");
        }
    }
    assert_eq!(s.engine.stats().data_dropped, 6);
}

#[test]
fn control_writes_stop_at_the_send_queue_cap_when_the_server_never_answers() {
    let mut s = setup();
    let _reset = send(s.engine.poll_action(at(0), &mut s.rng));
    let key = s.engine.key.as_mut().unwrap();
    // The server never answers nor ACKs: every write waits. 4 MB of messages are tried.
    let text = "x".repeat(1000);
    let mut result = Ok(());
    let mut accepted = 0;
    for _ in 0..4096 {
        result = key.send_message(&text);
        if result.is_err() {
            break;
        }
        accepted += 1;
    }
    assert_eq!(result, Err(HandshakeError::SendQueueFull));
    assert!(key.queued_bytes() <= crate::reliable::MAX_SEND_QUEUE);
    assert_eq!(accepted, crate::reliable::MAX_SEND_QUEUE / 1001);
    // The engine treats it as a failed handshake of the key state.
    s.engine
        .handshake_failed(at(1), HandshakeError::SendQueueFull);
    assert_eq!(
        s.engine.poll_action(at(1), &mut s.rng),
        Some(Action::Reconnect(ReconnectReason::Handshake(
            HandshakeError::SendQueueFull
        )))
    );
}
