//! The 49 real client configs in `../shared/corpus/real-configs/` (read at test time relative to the repository
//! root; skipped with a printed note when the folder is absent). Each one is accepted or refused with a line
//! and a reason, never a panic. Files they reference by path are not present, so they are parsed with
//! `KeepPaths`; the image-side refusal of those paths is tested in `config_corpus.rs`.

use openvpn::config::{self, ControlChannel, ErrorKind, KeepPaths};
use openvpn::keys::KeyError;
use std::path::PathBuf;

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/real-configs");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "note: {} is absent; real-config tests skipped",
            dir.display()
        );
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Accepted with this many remotes and this control-channel protection.
    Accepted(usize, Cc),
    /// Refused at this line with this reason.
    Refused(u32, ErrorKind),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cc {
    Plain,
    TlsAuth,
    TlsCrypt,
    /// A tls-auth/tls-crypt file referenced by path.
    File,
}

use Cc::*;
use Outcome::*;

const EXPECTED: &[(&str, Outcome)] = &[
    // `route-ipv6 ::/128 ::1ping-restart 30`: two directives glued together; the gateway is not an address.
    (
        "blackvpn--australia-tcp.ovpn",
        Refused(25, ErrorKind::InvalidArgument),
    ),
    ("cryptostorm--sydney-tcp-ecc.ovpn", Accepted(3, TlsCrypt)),
    ("cypherpunk--chennai.ovpn", Accepted(1, Plain)),
    ("fastestvpn--australia2-udp-tab.ovpn", Accepted(1, TlsAuth)),
    // Misspelled `data-ciphers-fallbacks`: stock OpenVPN stops on it too.
    (
        "freedomip--ch-typo.ovpn",
        Refused(12, ErrorKind::UnknownDirective),
    ),
    ("getflix--angola-smart-bf-cbc.ovpn", Accepted(1, Plain)),
    ("hideme--melbourne.ovpn", Accepted(1, TlsAuth)),
    ("ipvanish--tirana-tls-remote.ovpn", Accepted(1, Plain)),
    ("ironsocket--argentina.ovpn", Accepted(8, File)),
    ("ivpn--australia.ovpn", Accepted(1, TlsAuth)),
    (
        "miragevpn--client-tcp-certauth-passauth.ovpn",
        Accepted(1, File),
    ),
    ("miragevpn--e2e-tls-crypt-client.ovpn", Accepted(4, File)),
    (
        "miragevpn--e2e-tls-crypt-v2-client.ovpn",
        Refused(13, ErrorKind::Pkcs12),
    ),
    (
        "miragevpn--inline-secret-direction.ovpn",
        Refused(4, ErrorKind::StaticKeyMode),
    ),
    (
        "miragevpn--ipredator-cli-password.ovpn",
        Accepted(3, TlsAuth),
    ),
    ("miragevpn--riseup-windows-client.ovpn", Accepted(1, File)),
    ("miragevpn--wild-client.ovpn", Accepted(1, File)),
    ("mullvad--at-all-windows-service.ovpn", Accepted(1, Plain)),
    ("mullvad--de-all-trailing-comments.ovpn", Accepted(9, Plain)),
    ("mullvad--default-utf16le-bom.ovpn", Accepted(236, Plain)),
    (
        "nordvpn--ae49-html-404-page.ovpn",
        Refused(1, ErrorKind::UnknownBlock),
    ),
    ("nordvpn--al10-tcp-2018.ovpn", Accepted(1, TlsAuth)),
    ("nordvpn--al18-udp-2022.ovpn", Accepted(1, TlsAuth)),
    (
        "openvpn--keying-material-exporter-client.ovpn",
        Accepted(1, Plain),
    ),
    ("openvpn--sample-client-2.6.ovpn", Accepted(1, Plain)),
    ("openvpn--sample-client-2012.ovpn", Accepted(1, Plain)),
    (
        "openvpn--static-home-2.1.ovpn",
        Refused(27, ErrorKind::StaticKeyMode),
    ),
    (
        "ovpn--multihop-allow-compression.ovpn",
        Accepted(1, TlsAuth),
    ),
    ("ovpn--multihop-toronto-crlf.ovpn", Accepted(1, TlsAuth)),
    // A template: a script appends the `remote` line.
    (
        "pia--manual-connections-strong.ovpn",
        Refused(0, ErrorKind::NoRemote),
    ),
    ("pia--nextgen-albania.ovpn", Accepted(1, Plain)),
    ("pia--tunnelkit-hungary.ovpn", Accepted(2, Plain)),
    ("privado--akl-routes.ovpn", Accepted(1, Plain)),
    ("privatevpn--dubai-pull-filter.ovpn", Accepted(1, TlsAuth)),
    (
        "privatevpn--dubai-tcp-strong-tls-crypt.ovpn",
        Accepted(1, TlsCrypt),
    ),
    ("protonvpn--af-tcp-tls-crypt.ovpn", Accepted(9, TlsCrypt)),
    (
        "protonvpn--legacy-us-ca-01-udp-two-cas.ovpn",
        Accepted(5, TlsAuth),
    ),
    (
        "smartvpn--de001-connection-blocks.ovpn",
        Accepted(4, TlsAuth),
    ),
    ("surfshark--tcp-ip.ovpn", Accepted(1, TlsAuth)),
    ("torguard--melbourne-mixed-eol.ovpn", Accepted(1, Plain)),
    ("torguard--sydney-crlf.ovpn", Accepted(2, TlsAuth)),
    ("trustzone--albania-softether.ovpn", Accepted(1, Plain)),
    ("tunnelbear--argentina.ovpn", Accepted(1, Plain)),
    ("tunnelbear--switzerland-legacy.ovpn", Accepted(1, Plain)),
    ("vpnht--au.ovpn", Accepted(4, TlsAuth)),
    ("vyprvpn--algeria-compress-stub-v2.ovpn", Accepted(1, Plain)),
    ("wevpn--dubai-tcp.ovpn", Accepted(1, TlsCrypt)),
    ("windscribe--accra-tcp.ovpn", Accepted(1, TlsAuth)),
    // `scramble` comes from a patched OpenVPN fork.
    (
        "zoogvpn--nl-free-obfusc.ovpn",
        Refused(43, ErrorKind::UnknownDirective),
    ),
];

fn outcome(bytes: &[u8]) -> Outcome {
    match config::parse_bytes(bytes, &mut KeepPaths) {
        Ok(parsed) => {
            let cc = match parsed.config.control_channel {
                ControlChannel::None => Plain,
                ControlChannel::TlsAuth { .. } => TlsAuth,
                ControlChannel::TlsCrypt(_) => TlsCrypt,
                ControlChannel::TlsCryptV2(_) => {
                    panic!("no real config carries an inline tls-crypt-v2 key")
                }
                ControlChannel::Unread { .. } => File,
            };
            Accepted(parsed.config.remotes.len(), cc)
        }
        Err(e) => Refused(e.line, e.kind),
    }
}

#[test]
fn every_real_config_has_its_expected_outcome() {
    let Some(dir) = corpus_dir() else { return };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".ovpn"))
        .collect();
    names.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, listed, "the table must list every corpus file");
    let mut failures = Vec::new();
    for (name, expected) in EXPECTED {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let got = outcome(&bytes);
        if got != *expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_name_the_line_and_directive() {
    let Some(dir) = corpus_dir() else { return };
    let bytes = std::fs::read(dir.join("freedomip--ch-typo.ovpn")).unwrap();
    let e = config::parse_bytes(&bytes, &mut KeepPaths).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 12: `data-ciphers-fallbacks`: unknown directive"),
        "{e}"
    );
    let bytes = std::fs::read(dir.join("nordvpn--ae49-html-404-page.ovpn")).unwrap();
    let e = config::parse_bytes(&bytes, &mut KeepPaths).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: `<html>`: not an OpenVPN inline block (is this file really a config?)"
    );
}

#[test]
fn selected_real_configs_parse_in_detail() {
    use openvpn::config::{Cipher, Compression, Proto, X509NameType};
    let Some(dir) = corpus_dir() else { return };
    let parse = |name: &str| {
        config::parse_bytes(&std::fs::read(dir.join(name)).unwrap(), &mut KeepPaths).unwrap()
    };

    // UTF-16LE with BOM and CRLF, 236 remotes.
    let mullvad = parse("mullvad--default-utf16le-bom.ovpn").config;
    assert_eq!(mullvad.remotes.len(), 236);
    assert!(mullvad.remote_random);
    assert_eq!(mullvad.data_ciphers_fallback, Some(Cipher::Aes256Cbc));

    // Four <connection> blocks, proto per block.
    let smart = parse("smartvpn--de001-connection-blocks.ovpn").config;
    let remotes: Vec<(u16, Proto)> = smart.remotes.iter().map(|r| (r.port, r.proto)).collect();
    assert_eq!(
        remotes,
        [
            (1194, Proto::Udp),
            (80, Proto::Tcp),
            (443, Proto::Tcp),
            (53, Proto::Udp)
        ]
    );
    assert_eq!(smart.connect_retry_max, Some(1));

    // tls-remote becomes verify-x509-name ... name.
    let ipvanish = parse("ipvanish--tirana-tls-remote.ovpn");
    let v = ipvanish.config.tls.verify_x509_name.as_ref().unwrap();
    assert_eq!(
        (v.name.as_str(), v.kind),
        ("tia-c01.ipvanish.com", X509NameType::Name)
    );

    // Quoted names with spaces; proto per remote.
    let crypto = parse("cryptostorm--sydney-tcp-ecc.ovpn").config;
    assert_eq!(
        crypto.tls.verify_x509_name.unwrap().name,
        "cryptostorm sydney server"
    );
    assert!(crypto
        .remotes
        .iter()
        .all(|r| r.port == 443 && r.proto == Proto::Tcp));

    // rport with port-less remotes; tls-version 1.3 only; data-ciphers CHACHA20 only.
    let mirage = parse("miragevpn--e2e-tls-crypt-client.ovpn").config;
    assert!(mirage.remotes.iter().all(|r| r.port == 64333));
    assert_eq!(mirage.data_ciphers, [Cipher::ChaCha20Poly1305]);

    // Two CA certificates in one <ca> block; `compress` bare.
    let proton = parse("protonvpn--legacy-us-ca-01-udp-two-cas.ovpn").config;
    assert_eq!(proton.tls.ca.len(), 2);
    assert_eq!(proton.compression, Compression::Stub);

    // Inline CRL.
    let pia = parse("pia--nextgen-albania.ovpn").config;
    assert_eq!(pia.tls.crls.len(), 1);

    // A separate `port 443` applies to the port-less remote.
    let torguard = parse("torguard--sydney-crlf.ovpn").config;
    assert!(torguard.remotes.len() == 2 && torguard.tls.ca.len() == 1);

    // The static key's inline block has comment lines; the direction comes from key-direction after it.
    let privatevpn = parse("privatevpn--dubai-pull-filter.ovpn").config;
    assert!(matches!(
        privatevpn.control_channel,
        ControlChannel::TlsAuth {
            direction: openvpn::keys::KeyDirection::Inverse,
            ..
        }
    ));
    assert_eq!(privatevpn.pull_filters.len(), 2);
    let _ = KeyError::BadBase64;
}

#[test]
fn accepted_real_configs_round_trip_through_the_printer() {
    let Some(dir) = corpus_dir() else { return };
    for (name, expected) in EXPECTED {
        if !matches!(expected, Accepted(..)) {
            continue;
        }
        let first =
            config::parse_bytes(&std::fs::read(dir.join(name)).unwrap(), &mut KeepPaths).unwrap();
        let text = config::print(&first.config);
        let second =
            config::parse(&text, &mut KeepPaths).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(second.config, first.config, "{name}");
    }
}
