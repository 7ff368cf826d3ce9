//! The server as a config makes it (`Service::from_config`): a server config text with the
//! `<auth-user-pass-db>` extension, `verify-client-cert none`, `auth-gen-token` and the `server` helper,
//! against client engines in memory. Checks the policy half of the server: the password decides, the
//! pool and the push give the client its address, a pushed token replaces the password on the next
//! connection, and a wrong password ends in AUTH_FAILED.

use std::net::SocketAddr;

use openvpn::config;
use openvpn::crypto::TlsCryptV2ServerKey;
use openvpn::engine::{Action, ControlProtection, Engine, EngineConfig, ExitReason, RemoteSpec};
use openvpn::keys::pem;
use openvpn::server::service::{Service, ServiceEvent};
use openvpn::session::Transport;
use openvpn::time::Instant;
use openvpn::tls::TlsSettings;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CA_DER: &[u8] = include_bytes!("data/hostile/ca.der");
const SERVER_DER: &[u8] = include_bytes!("data/hostile/server.der");
const SERVER_KEY_DER: &[u8] = include_bytes!("data/hostile/server.key.der");
const UNIX: u64 = 1_800_000_000;
const SERVER_KEY: [u8; 128] = [0x42; 128];

fn pem_of(label: &str, der: &[u8]) -> String {
    let mut out = String::new();
    pem::encode(label, der, &mut out);
    out
}

/// `alice`'s password is "open sesame" (PBKDF2-HMAC-SHA256, 10,000 iterations).
fn user_line() -> String {
    let salt = b"saltsalt";
    let mut hash = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(10_000).unwrap(),
        salt,
        b"open sesame",
        &mut hash,
    );
    let b64 = |b: &[u8]| openvpn::keys::base64::encode_lines(b).replace('\n', "");
    format!("alice pbkdf2-sha256:10000:{}:{}", b64(salt), b64(&hash))
}

fn server_config() -> String {
    format!(
        "server 10.8.0.0 255.255.255.0\nproto udp\nport 1194\ndev tun\nkeepalive 10 60\n\
         verify-client-cert none\nauth-gen-token 3600\ndata-ciphers AES-256-GCM:AES-128-GCM\n\
         push \"dhcp-option DNS 10.8.0.1\"\n<ca>\n{}</ca>\n<cert>\n{}</cert>\n<key>\n{}</key>\n\
         <tls-crypt-v2>\n{}</tls-crypt-v2>\n<auth-user-pass-db>\n{}\n</auth-user-pass-db>\n",
        pem_of("CERTIFICATE", CA_DER),
        pem_of("CERTIFICATE", SERVER_DER),
        pem_of("PRIVATE KEY", SERVER_KEY_DER),
        pem_of("OpenVPN tls-crypt-v2 server key", &SERVER_KEY),
        user_line(),
    )
}

fn service() -> Service {
    let parsed = config::parse(&server_config(), &mut config::InlineOnly).expect("server config");
    Service::from_config(&parsed.config, Instant::ZERO, UNIX, &[9; 32]).expect("service")
}

fn client(seed: u64, user: &str, pass: &str) -> Engine {
    let kc = [seed as u8; 256];
    let wkc = TlsCryptV2ServerKey::new(&SERVER_KEY)
        .wrap_client_key(&kc, &[0x00, b'c'])
        .expect("wkc");
    let tls = TlsSettings {
        ca: vec![CA_DER.to_vec()],
        ..Default::default()
    };
    let mut config = EngineConfig::new(ControlProtection::TlsCryptV2 { kc, wkc }, tls);
    config.remotes = vec![RemoteSpec {
        host: "192.0.2.1".into(),
        port: 1194,
        transport: Transport::Udp4,
        server_poll_timeout_secs: None,
    }];
    config.auth_user_pass = Some((user.into(), pass.into()));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Engine::new(config, Instant::ZERO, UNIX, &mut rng).expect("client engine")
}

/// Runs one client against the service until it is up, exits, or `ms` pass; returns what happened.
struct Run {
    service: Service,
    rng: ChaCha8Rng,
    now_ms: u64,
    ups: Vec<(u32, std::net::Ipv4Addr)>,
}

impl Run {
    fn drive(&mut self, engine: &mut Engine, from: SocketAddr, ms: u64) -> Vec<Action> {
        let mut seen = Vec::new();
        let mut crng = ChaCha8Rng::seed_from_u64(self.rng.next_u64());
        for _ in 0..ms / 10 {
            let now = Instant::from_millis(self.now_ms);
            for _ in 0..1000 {
                let Some(action) = engine.poll_action(now, &mut crng) else {
                    break;
                };
                match action {
                    Action::Connect(_) => engine.transport_ready(now),
                    Action::SendToRemote(mut d) => {
                        self.service.receive(now, from, &mut d, &mut self.rng);
                    }
                    other => seen.push(other),
                }
            }
            while let Some(event) = self.service.poll(now, &mut self.rng) {
                match event {
                    ServiceEvent::SendTo(to, mut d) if to == from => {
                        engine.receive(now, &mut d);
                    }
                    ServiceEvent::ClientUp { peer_id, address } => {
                        self.ups.push((peer_id, address))
                    }
                    _ => {}
                }
            }
            if seen
                .iter()
                .any(|a| matches!(a, Action::TunnelUp(_) | Action::Exit(_)))
            {
                break;
            }
            self.now_ms += 10;
        }
        seen
    }
}

fn run() -> Run {
    Run {
        service: service(),
        rng: ChaCha8Rng::seed_from_u64(3),
        now_ms: 0,
        ups: Vec::new(),
    }
}

fn pushed(actions: &[Action]) -> Option<&openvpn::session::PushedConfig> {
    actions.iter().find_map(|a| match a {
        Action::TunnelUp(p) => Some(p),
        _ => None,
    })
}

#[test]
fn the_right_password_gets_an_address_the_push_and_a_token() {
    let mut r = run();
    let from: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let mut alice = client(1, "alice", "open sesame");
    let seen = r.drive(&mut alice, from, 10_000);
    let push = pushed(&seen).expect("tunnel up");
    assert_eq!(push.local_address(), Some("10.8.0.2".parse().unwrap()));
    assert_eq!(push.peer_id, Some(0));
    assert_eq!(push.cipher.as_deref(), Some("AES-256-GCM"));
    let token = push.auth_token.as_ref().expect("auth-gen-token pushed");
    assert!(token.as_str().starts_with("SESS_ID_AT_"));
    assert_eq!(r.ups, vec![(0, "10.8.0.2".parse().unwrap())]);
    // The status list shows her.
    let status = r.service.status_v3(UNIX + 10);
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("CLIENT_LIST\talice\t192.0.2.10:40000\t10.8.0.2\t")),
        "{status:?}"
    );

    // A second connection (a restart) with the token instead of the password gets the same address.
    let mut again = client(2, "alice", token.as_str());
    let from2: SocketAddr = "192.0.2.10:40001".parse().unwrap();
    let seen = r.drive(&mut again, from2, 10_000);
    let push = pushed(&seen).expect("the token is accepted");
    assert_eq!(push.local_address(), Some("10.8.0.2".parse().unwrap()));
}

#[test]
fn a_wrong_password_or_a_forged_token_ends_in_auth_failed() {
    for (seed, pass) in [
        (3, "open says me"),
        (4, "SESS_ID_AT_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let mut r = run();
        let from: SocketAddr = "192.0.2.11:40000".parse().unwrap();
        let mut mallory = client(seed, "alice", pass);
        let seen = r.drive(&mut mallory, from, 10_000);
        assert!(pushed(&seen).is_none(), "{pass}: {seen:?}");
        assert!(
            seen.iter()
                .any(|a| matches!(a, Action::Exit(ExitReason::AuthFailed(_)))),
            "{pass}: {seen:?}"
        );
        assert_eq!(r.service.engine().client_count(), 0);
        assert!(r.ups.is_empty());
    }
}

#[test]
fn an_unknown_user_is_refused_like_a_wrong_password() {
    let mut r = run();
    let from: SocketAddr = "192.0.2.12:40000".parse().unwrap();
    let mut bob = client(5, "bob", "open sesame");
    let seen = r.drive(&mut bob, from, 10_000);
    assert!(
        seen.iter()
            .any(|a| matches!(a, Action::Exit(ExitReason::AuthFailed(_)))),
        "{seen:?}"
    );
}
