//! Security directives the parser accepts are applied, not just parsed (the audit in docs/ROBUSTNESS.md):
//! `remote-cert-ku` without values, `replay-window`, `tls-groups`, `tls-cert-profile`, `ecdh-curve` and
//! `auth-nocache` against the in-memory server of `support/mem_server.rs` or at the config/engine boundary.
//! (`crl-verify` has its own file, `crl_verify.rs`.)

use openvpn::config::{Config, ErrorKind, WarningKind};
use openvpn::engine::{Action, EngineConfig, ReconnectReason};
use openvpn::keys::pem;

// The shared in-memory server; this test uses only part of it.
#[allow(dead_code)]
#[path = "support/mem_server.rs"]
mod mem_server;
use mem_server::{Server, World, UNIX};

const ROOT: &str = include_str!("data/crl/root.crt");
const GOOD: (&str, &str) = (
    include_str!("data/crl/server-good.crt"),
    include_str!("data/crl/server-good.key"),
);
const NO_KU: (&str, &str) = (
    include_str!("data/crl/server-noku.crt"),
    include_str!("data/crl/server-noku.key"),
);

/// A client config verifying the fixtures' root CA, with `extra` lines (the first at line 10 + the CA's lines).
fn text(extra: &str) -> String {
    format!(
        "client\ndev tun\nremote 192.0.2.1 1194 udp\n<auth-user-pass>\nuser\npass\n</auth-user-pass>\n\
         <ca>\n{ROOT}</ca>\n{extra}"
    )
}

fn der(pem_text: &str) -> Vec<u8> {
    pem::blocks(pem_text).unwrap().remove(0).der
}

fn world(extra: &str, server: (&str, &str)) -> World {
    let parsed = Config::parse_inline(&text(extra)).expect("config");
    let config = EngineConfig::from_config(&parsed.config).expect("engine config");
    World::with(
        config,
        UNIX,
        Server::with_cert(vec![der(server.0)], der(server.1)),
    )
}

/// Steps until the tunnel is up (`Ok`) or the server certificate is refused (`Err` with the reason).
fn run(w: &mut World) -> Result<(), String> {
    for _ in 0..300 {
        w.step();
        if w.engine.is_connected() {
            w.now_ms += 10;
            w.step();
            return Ok(());
        }
        for event in &w.events {
            if let Action::Reconnect(ReconnectReason::CertificateRejected(what)) = event {
                return Err(what.to_string());
            }
        }
        w.now_ms += 10;
    }
    panic!("neither connected nor rejected: {:?}", w.events);
}

/// `remote-cert-ku` without values requires the key usage extension (OpenVPN's OPENVPN_KU_REQUIRED); it was
/// parsed into an empty list and not checked at all.
#[test]
fn bare_remote_cert_ku_requires_a_key_usage() {
    assert_eq!(
        run(&mut world("remote-cert-ku\n", NO_KU)),
        Err("server certificate rejected: InvalidPurpose".into())
    );
    assert_eq!(run(&mut world("remote-cert-ku\n", GOOD)), Ok(()));
    assert_eq!(
        run(&mut world("", NO_KU)),
        Ok(()),
        "no check without the directive"
    );
    // With values, one of them must be contained in the key usage (digitalSignature | keyAgreement here).
    assert_eq!(run(&mut world("remote-cert-ku a0 88\n", GOOD)), Ok(()));
    assert!(run(&mut world("remote-cert-ku a0\n", GOOD)).is_err());
}

fn ip_packet(seq: u8) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 40, 0, seq, 0, 0, 64, 17, 0, 0, 10, 8, 0, 1, 10, 8, 0, 2,
    ];
    p.extend([seq; 20]);
    p
}

/// How many of four data packets arrive when the server's 2nd..4th are delivered before its 1st.
fn reordered_delivered(extra: &str) -> usize {
    let mut w = world(extra, GOOD);
    run(&mut w).expect("tunnel up");
    let sealed: Vec<Vec<u8>> = (1..=4).map(|i| w.server.seal(&ip_packet(i))).collect();
    let mut received = Vec::new();
    for i in [1, 2, 3, 0] {
        w.deliver(sealed[i].clone(), &mut received);
    }
    received.len()
}

/// `replay-window N [T]` sizes the data channel's replay window (it was parsed and the default 64 used):
/// with 0 a packet older than the newest is dropped; the default window takes it.
#[test]
fn replay_window_is_applied_to_the_data_channel() {
    assert_eq!(reordered_delivered(""), 4);
    assert_eq!(reordered_delivered("replay-window 0\n"), 3);
    assert_eq!(reordered_delivered("replay-window 512 60\n"), 4);
    let c = Config::parse_inline(&text("replay-window 512 60\n")).unwrap();
    assert_eq!(
        EngineConfig::from_config(&c.config).unwrap().replay_window,
        (512, 60)
    );
    for bad in ["replay-window 65537\n", "replay-window 64 601\n"] {
        let e = Config::parse_inline(&text(bad)).unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (10 + ROOT.lines().count() as u32, ErrorKind::InvalidNumber)
        );
    }
}

/// `tls-groups` restricts the key exchange groups offered (it was ignored with a warning): names rustls
/// lacks are dropped with a warning, a list with none left is an error naming the line.
#[test]
fn tls_groups_restrict_the_offer() {
    let line = 10 + ROOT.lines().count() as u32;
    let p = Config::parse_inline(&text("tls-groups X448:secp384r1:x25519\n")).unwrap();
    assert!(p
        .warnings
        .iter()
        .any(|w| w.line == line && w.reason == WarningKind::TlsGroupDropped));
    let e = EngineConfig::from_config(&p.config).unwrap();
    assert_eq!(e.tls.kx_groups.as_deref(), Some(&[0x0018, 0x001d][..]));
    let e = Config::parse_inline(&text("tls-groups X448:secp521r1\n")).unwrap_err();
    assert_eq!((e.line, e.kind), (line, ErrorKind::NoUsableTlsGroup));
    // A client offering only P-384 still completes the handshake with the (rustls) server.
    assert_eq!(run(&mut world("tls-groups secp384r1\n", GOOD)), Ok(()));
}

/// `tls-cert-profile`: `preferred` is what rustls enforces; `legacy`/`insecure` get a warning that rustls is
/// stricter; `suiteb` (ECDSA only, not implemented) and unknown profiles are refused naming the line.
/// `ecdh-curve` is ignored as OpenVPN 2.6 with OpenSSL 3 ignores it; `auth-nocache` warns that inline
/// credentials stay in memory.
#[test]
fn profile_curve_and_nocache_are_applied_or_refused() {
    let line = 10 + ROOT.lines().count() as u32;
    let warnings = |extra: &str| -> Vec<WarningKind> {
        Config::parse_inline(&text(extra))
            .unwrap()
            .warnings
            .iter()
            .filter(|w| w.line == line)
            .map(|w| w.reason)
            .collect()
    };
    assert_eq!(warnings("tls-cert-profile preferred\n"), []);
    assert_eq!(
        warnings("tls-cert-profile legacy\n"),
        [WarningKind::CertProfileStricter]
    );
    assert_eq!(
        warnings("tls-cert-profile insecure\n"),
        [WarningKind::CertProfileStricter]
    );
    for (bad, kind) in [
        ("tls-cert-profile suiteb\n", ErrorKind::Unsupported),
        ("tls-cert-profile strongest\n", ErrorKind::InvalidArgument),
    ] {
        let e = Config::parse_inline(&text(bad)).unwrap_err();
        assert_eq!(
            (e.line, e.directive.as_str(), e.kind),
            (line, "tls-cert-profile", kind)
        );
    }
    assert_eq!(warnings("ecdh-curve secp384r1\n"), [WarningKind::NoEffect]);
    assert_eq!(
        warnings("auth-nocache\n"),
        [WarningKind::CredentialsStayInline]
    );
}
