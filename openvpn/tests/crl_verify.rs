//! `crl-verify` end to end in memory: a config parsed as the image parses it (everything inline) drives the
//! engine against the in-memory server of `support/mem_server.rs`, which presents a certificate from the
//! fixtures in `data/crl/` (made by `data/crl/make.sh`). A revoked server certificate, a revoked intermediate,
//! an expired CRL and a forged CRL turn the server away with a line naming the check; a CRL that revokes
//! other serials lets it in; unusable `crl-verify` lines are config errors naming the line.

use openvpn::config::{Config, ErrorKind};
use openvpn::engine::{Action, EngineConfig, ReconnectReason};
use openvpn::keys::crl::Crl;
use openvpn::keys::{pem, CrlProblem, KeyError};

// The shared in-memory server; this test uses only part of it.
#[allow(dead_code)]
#[path = "support/mem_server.rs"]
mod mem_server;
use mem_server::{Server, World, UNIX};

const ROOT: &str = include_str!("data/crl/root.crt");
const INT: &str = include_str!("data/crl/int.crt");
const GOOD: (&str, &str) = (
    include_str!("data/crl/server-good.crt"),
    include_str!("data/crl/server-good.key"),
);
const REVOKED: (&str, &str) = (
    include_str!("data/crl/server-revoked.crt"),
    include_str!("data/crl/server-revoked.key"),
);
const UNDER_INT: (&str, &str) = (
    include_str!("data/crl/server-int.crt"),
    include_str!("data/crl/server-int.key"),
);
const REVOKES_SERVER: &str = include_str!("data/crl/root-revokes-server.crl");
const REVOKES_OTHER: &str = include_str!("data/crl/root-revokes-other.crl");
const REVOKES_INT: &str = include_str!("data/crl/root-revokes-int.crl");
const EXPIRED: &str = include_str!("data/crl/root-expired.crl");
const V1_REVOKES_SERVER: &str = include_str!("data/crl/root-v1-revokes-server.crl");
const V1_REVOKES_OTHER: &str = include_str!("data/crl/root-v1-revokes-other.crl");
const INT_EMPTY: &str = include_str!("data/crl/int-empty.crl");
const FORGED: &str = include_str!("data/crl/impostor-revokes-other.crl");

const REVOKED_LINE: &str = "server certificate revoked (crl-verify)";

fn config_text(crls: &[&str]) -> String {
    let mut text = String::from(
        "client\ndev tun\nremote 192.0.2.1 1194 udp\nremote-cert-tls server\n\
         <auth-user-pass>\nuser\npass\n</auth-user-pass>\n",
    );
    text.push_str(&format!("<ca>\n{ROOT}</ca>\n"));
    if !crls.is_empty() {
        text.push_str(&format!("<crl-verify>\n{}</crl-verify>\n", crls.concat()));
    }
    text
}

fn der_blocks(text: &str) -> Vec<Vec<u8>> {
    pem::blocks(text)
        .unwrap()
        .into_iter()
        .map(|b| b.der)
        .collect()
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Connected,
    Rejected(String),
}

/// Connects a client with these CRLs to a server presenting `server` (leaf PEM, key PEM) plus `extra`
/// chain certificates, at Unix time `unix`.
fn connect_at(crls: &[&str], server: (&str, &str), extra: &[&str], unix: u64) -> Outcome {
    let parsed = Config::parse_inline(&config_text(crls)).expect("config");
    let config = EngineConfig::from_config(&parsed.config).expect("engine config");
    let mut chain = der_blocks(server.0);
    for cert in extra {
        chain.extend(der_blocks(cert));
    }
    let key = der_blocks(server.1).remove(0);
    let mut w = World::with(config, unix, Server::with_cert(chain, key));
    for _ in 0..300 {
        w.step();
        if w.engine.is_connected() {
            return Outcome::Connected;
        }
        for event in &w.events {
            if let Action::Reconnect(ReconnectReason::CertificateRejected(what)) = event {
                return Outcome::Rejected(what.to_string());
            }
        }
        w.now_ms += 10;
    }
    panic!("neither connected nor rejected: {:?}", w.events);
}

fn connect(crls: &[&str], server: (&str, &str), extra: &[&str]) -> Outcome {
    connect_at(crls, server, extra, UNIX)
}

fn rejected(text: &str) -> Outcome {
    Outcome::Rejected(text.into())
}

#[test]
fn revoked_server_certificate_is_refused() {
    assert_eq!(
        connect(&[REVOKES_SERVER], REVOKED, &[]),
        rejected(REVOKED_LINE)
    );
    // The same server without crl-verify connects: the refusal is the CRL's doing.
    assert_eq!(connect(&[], REVOKED, &[]), Outcome::Connected);
}

#[test]
fn crl_revoking_other_serials_lets_the_server_in() {
    assert_eq!(connect(&[REVOKES_SERVER], GOOD, &[]), Outcome::Connected);
    assert_eq!(connect(&[REVOKES_OTHER], REVOKED, &[]), Outcome::Connected);
    assert_eq!(
        connect(&[V1_REVOKES_OTHER], REVOKED, &[]),
        Outcome::Connected
    );
}

/// Version 1 CRLs (no extensions; easy-rsa 2 and some providers) are enforced as well.
#[test]
fn version1_crl_revocation_is_refused() {
    assert_eq!(
        connect(&[V1_REVOKES_SERVER], REVOKED, &[]),
        rejected(REVOKED_LINE)
    );
    // Among several CRLs, any one revoking the server is enough.
    assert_eq!(
        connect(&[INT_EMPTY, V1_REVOKES_OTHER, REVOKES_SERVER], REVOKED, &[]),
        rejected(REVOKED_LINE)
    );
}

/// Every depth is checked: the root's CRL revoking the intermediate refuses a server certificate issued by
/// that intermediate. A depth whose issuer has no CRL is not checked (as OpenVPN 2.6 lets OpenSSL's
/// "unable to get certificate CRL" pass).
#[test]
fn every_depth_of_the_chain_is_checked() {
    // The chain itself is fine under `remote-cert-tls server`: only the server's own certificate needs
    // serverAuth (the intermediate has no EKU at all).
    assert_eq!(connect(&[], UNDER_INT, &[INT]), Outcome::Connected);
    assert_eq!(
        connect(&[REVOKES_INT], UNDER_INT, &[INT]),
        rejected(REVOKED_LINE)
    );
    assert_eq!(
        connect(&[INT_EMPTY, REVOKES_INT], UNDER_INT, &[INT]),
        rejected(REVOKED_LINE)
    );
    assert_eq!(
        connect(&[REVOKES_OTHER, INT_EMPTY], UNDER_INT, &[INT]),
        Outcome::Connected
    );
    assert_eq!(
        connect(&[REVOKES_OTHER], UNDER_INT, &[INT]),
        Outcome::Connected
    );
    assert_eq!(connect(&[INT_EMPTY], UNDER_INT, &[INT]), Outcome::Connected);
}

/// A CRL past its nextUpdate refuses the server, as OpenSSL's "CRL has expired" does in OpenVPN; before
/// then it applies.
#[test]
fn expired_crl_refuses_the_server() {
    let Outcome::Rejected(why) = connect(&[EXPIRED], GOOD, &[]) else {
        panic!("an expired CRL must refuse the server");
    };
    assert!(
        why.contains("crl-verify CRL") && why.contains("expired"),
        "{why}"
    );
    let crl = Crl::from_der(&der_blocks(EXPIRED)[0]).unwrap();
    let before = crl.next_update().unwrap() - 60;
    assert_eq!(
        connect_at(&[EXPIRED], GOOD, &[], before),
        Outcome::Connected
    );
}

/// A CRL that names the CA as its issuer but is signed by another key is refused, not trusted.
#[test]
fn forged_crl_refuses_the_server() {
    let Outcome::Rejected(why) = connect(&[FORGED], GOOD, &[]) else {
        panic!("a forged CRL must refuse the server");
    };
    assert!(why.contains("not signed by that issuer's key"), "{why}");
}

#[test]
fn unusable_crl_verify_lines_are_config_errors_naming_the_line() {
    let refuse = |text: &str| Config::parse_inline(text).unwrap_err();
    let base = "client\ndev tun\nremote 192.0.2.1\n<auth-user-pass>\nu\np\n</auth-user-pass>\n";
    // Valid base64 that is not a CRL: the error names the `<crl-verify>` line.
    let e = refuse(&format!(
        "{base}<ca>\n{ROOT}</ca>\n<crl-verify>\n-----BEGIN X509 CRL-----\nMAMCAQE=\n-----END X509 CRL-----\n</crl-verify>\n"
    ));
    let line = 10 + ROOT.lines().count();
    assert_eq!(
        (e.line as usize, e.directive.as_str(), e.kind),
        (
            line,
            "crl-verify",
            ErrorKind::Key(KeyError::BadCrl(CrlProblem::Malformed))
        )
    );
    assert_eq!(
        e.to_string(),
        format!(
            "line {line}: `crl-verify`: certificate revocation list refused: not a valid X.509 CRL \
             (RFC 5280 CertificateList)"
        )
    );
    // A truncated CRL.
    let mut cut: Vec<&str> = REVOKES_SERVER.lines().collect();
    cut.remove(3);
    let e = refuse(&format!(
        "{base}<ca>\n{ROOT}</ca>\n<crl-verify>\n{}\n</crl-verify>\n",
        cut.join("\n")
    ));
    assert_eq!(
        (e.line as usize, e.directive.as_str()),
        (line, "crl-verify")
    );
    // No CRL in the block at all.
    let e = refuse(&format!(
        "{base}<ca>\n{ROOT}</ca>\n<crl-verify>\n{ROOT}</crl-verify>\n"
    ));
    assert_eq!(
        (e.line as usize, e.kind),
        (line, ErrorKind::Key(KeyError::MissingPemBlock("X509 CRL")))
    );
    // The directory form, and the file form on the image (files by path are never read there).
    let e = refuse(&format!("{base}crl-verify /etc/openvpn/crls dir\n"));
    assert_eq!((e.line, e.kind), (8, ErrorKind::CrlDirectory));
    let e = refuse(&format!("{base}<ca>\n{ROOT}</ca>\ncrl-verify crl.pem\n"));
    assert_eq!(
        (e.line as usize, e.kind),
        (
            line,
            ErrorKind::File(openvpn::config::FileErrorKind::NotInline)
        )
    );
    // Without `ca` there is no key to check a CRL's signature with.
    let fp = "peer-fingerprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\n";
    let e = refuse(&format!(
        "{base}{fp}<crl-verify>\n{REVOKES_SERVER}</crl-verify>\n"
    ));
    assert_eq!(
        (e.line, e.directive.as_str(), e.kind),
        (9, "crl-verify", ErrorKind::CrlWithoutCa)
    );
}
