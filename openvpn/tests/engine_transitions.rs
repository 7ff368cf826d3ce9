//! Engine state transitions driven by control messages that arrive through a real TLS session: the
//! in-memory OpenVPN server (`support/mem_server.rs`: reliability layer, rustls server, key-method 2,
//! PUSH_REPLY, data keys) brings the engine up, then writes `RESTART`, `HALT`, `AUTH_FAILED,SESSION:` or an
//! `INFO` into its TLS session the way OpenVPN 2.6 does (NUL-terminated text, §8.1). After a reconnect a
//! fresh server (a restarted OpenVPN) must see a new session from the engine and bring the tunnel up again.

#[path = "support/mem_server.rs"]
#[allow(dead_code)]
mod mem_server;

use mem_server::{Server, World, CA_DER, UNIX};
use openvpn::engine::{
    Action, ControlProtection, Engine, EngineConfig, ExitReason, ReconnectReason, RemoteSpec,
};
use openvpn::session::Transport;
use openvpn::time::Instant;
use openvpn::tls::TlsSettings;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn remote(host: &str) -> RemoteSpec {
    RemoteSpec {
        host: host.into(),
        port: 1194,
        transport: Transport::Udp4,
        server_poll_timeout_secs: None,
    }
}

/// A world whose engine knows two remotes, `192.0.2.1` then `192.0.2.2`.
fn two_remotes() -> World {
    let tls = TlsSettings {
        ca: vec![CA_DER.to_vec()],
        ..Default::default()
    };
    let mut config = EngineConfig::new(ControlProtection::None, tls);
    config.remotes = vec![remote("192.0.2.1"), remote("192.0.2.2")];
    config.auth_user_pass = Some(("alice".into(), "secret123".into()));
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let engine = Engine::new(config, Instant::ZERO, UNIX, &mut rng).expect("engine");
    World {
        engine,
        server: Server::new(),
        rng,
        now_ms: 0,
        events: Vec::new(),
    }
}

/// Steps 10 ms at a time until the tunnel is up; returns the time it took.
fn bring_up(w: &mut World) -> u64 {
    let start = w.now_ms;
    for _ in 0..2000 {
        w.step();
        if w.engine.is_connected() {
            w.now_ms += 10;
            w.step();
            return w.now_ms - start;
        }
        w.now_ms += 10;
    }
    panic!("tunnel not up; events {:?}", w.events);
}

/// Steps until an event (reconnect or exit) is recorded; returns it.
fn next_event(w: &mut World) -> Action {
    let seen = w.events.len();
    for _ in 0..2000 {
        w.step();
        if let Some(e) = w.events.get(seen) {
            return e.clone();
        }
        w.now_ms += 10;
    }
    panic!("no event; state {}", w.engine.state().name());
}

/// The server writes one control message into its TLS session.
fn server_says(w: &mut World, text: &str) {
    let mut msg = text.as_bytes().to_vec();
    msg.push(0);
    w.server.write_tls(&msg);
}

#[test]
fn restart_with_n_reconnects_to_the_next_remote_with_a_new_session() {
    let mut w = two_remotes();
    bring_up(&mut w);
    assert_eq!(w.engine.current_remote(), Some(&remote("192.0.2.1")));
    let first_sid = w.server.client_sid;
    server_says(&mut w, "RESTART,[N]server moving");
    assert_eq!(
        next_event(&mut w),
        Action::Reconnect(ReconnectReason::ServerRestart("[N]server moving".into()))
    );
    assert_eq!(w.engine.state().name(), "RECONNECTING");
    assert!(!w.engine.is_connected());
    // The restarted "server": a fresh process that only knows new sessions.
    w.server = Server::new();
    bring_up(&mut w);
    assert_eq!(w.engine.current_remote(), Some(&remote("192.0.2.2")));
    assert_ne!(w.server.client_sid, first_sid, "a new session id");
    assert_eq!(w.engine.state().name(), "CONNECTED");
    assert_eq!(
        w.client_sends(&[0x45; 28]),
        Some(vec![0x45; 28]),
        "data flows on the new session"
    );
}

#[test]
fn restart_without_n_stays_on_the_same_remote() {
    let mut w = two_remotes();
    bring_up(&mut w);
    server_says(&mut w, "RESTART,going down");
    assert_eq!(
        next_event(&mut w),
        Action::Reconnect(ReconnectReason::ServerRestart("going down".into()))
    );
    w.server = Server::new();
    let took = bring_up(&mut w);
    assert_eq!(w.engine.current_remote(), Some(&remote("192.0.2.1")));
    // The reconnect waits 1 s after a working session, not connect-retry.
    assert!((1000..5000).contains(&took), "reconnected after {took} ms");
}

#[test]
fn halt_stops_the_engine_for_good() {
    let mut w = two_remotes();
    bring_up(&mut w);
    server_says(&mut w, "HALT,maintenance window");
    assert_eq!(
        next_event(&mut w),
        Action::Exit(ExitReason::Halt("maintenance window".into()))
    );
    assert_eq!(w.engine.state().name(), "EXITING");
    assert_eq!(w.engine.poll_at(), None);
    w.now_ms += 600_000;
    w.step();
    assert_eq!(w.events.len(), 1, "nothing after the exit: {:?}", w.events);
}

#[test]
fn auth_failed_session_reconnects_and_authenticates_again() {
    let mut w = two_remotes();
    bring_up(&mut w);
    server_says(&mut w, "AUTH_FAILED,SESSION:session expired");
    assert_eq!(
        next_event(&mut w),
        Action::Reconnect(ReconnectReason::AuthRetry("SESSION:session expired".into()))
    );
    w.server = Server::new();
    bring_up(&mut w);
    assert!(w.engine.is_connected());
}

#[test]
fn auth_failed_for_the_credentials_exits_with_the_reason() {
    let mut w = two_remotes();
    bring_up(&mut w);
    server_says(&mut w, "AUTH_FAILED,bad password");
    assert_eq!(
        next_event(&mut w),
        Action::Exit(ExitReason::AuthFailed("bad password".into()))
    );
    assert_eq!(w.engine.poll_at(), None);
}

#[test]
fn info_keeps_the_tunnel_up() {
    let mut w = two_remotes();
    bring_up(&mut w);
    server_says(&mut w, "INFO,WEB_AUTH::https://example.invalid/");
    for _ in 0..20 {
        w.step();
        w.now_ms += 10;
    }
    assert!(w.events.is_empty(), "{:?}", w.events);
    assert!(w.engine.is_connected());
    assert_eq!(w.client_sends(&[0x45; 28]), Some(vec![0x45; 28]));
}
