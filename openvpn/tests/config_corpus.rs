//! The project's own corpus (`tests/configs/valid`, `tests/configs/invalid`, made by `make-corpus.py` from
//! the test keys in `tests/configs/keys`): each valid config's expected parse, each invalid config's expected
//! error line and reason, and what the image (inline files only) says about each.

use openvpn::config::{
    self, AllowCompression, AuthRetry, AuthUserPass, Cipher, Compression, Config, ControlChannel,
    Digest, ErrorKind, FileErrorKind, FileResolver, InlineOnly, Parsed, Proto, PullFilterAction,
    Resolved, TlsVersion, WarningKind, X509NameType,
};
use openvpn::keys::{KeyDirection, KeyError, PrivateKeyFormat};
use std::path::{Path, PathBuf};

fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

/// Reads files relative to `tests/configs` (what the host tool does relative to the config's folder).
struct Dir(PathBuf);

impl FileResolver for Dir {
    fn read(&mut self, path: &str) -> Result<Resolved, FileErrorKind> {
        std::fs::read_to_string(self.0.join(path))
            .map(Resolved::Contents)
            .map_err(|_| FileErrorKind::NotFound)
    }
    fn allows_prompt(&self) -> bool {
        true
    }
}

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(configs().join(path)).unwrap()
}

fn valid(name: &str) -> Parsed {
    let path = format!("valid/{name}.ovpn");
    config::parse_bytes(&bytes(&path), &mut Dir(configs().join("valid")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn has_warning(p: &Parsed, directive: &str, reason: WarningKind) -> bool {
    p.warnings
        .iter()
        .any(|w| w.directive.as_str() == directive && w.reason == reason)
}

fn tls_auth_direction(c: &Config) -> Option<KeyDirection> {
    match &c.control_channel {
        ControlChannel::TlsAuth { direction, .. } => Some(*direction),
        _ => None,
    }
}

const DEFAULT: [Cipher; 3] = [
    Cipher::Aes256Gcm,
    Cipher::Aes128Gcm,
    Cipher::ChaCha20Poly1305,
];

#[test]
fn commercial_provider_styles() {
    let p = valid("nordvpn-style-udp");
    let c = &p.config;
    assert_eq!(
        (
            c.remotes[0].host.as_str(),
            c.remotes[0].port,
            c.remotes[0].proto
        ),
        ("203.0.113.10", 1194, Proto::Udp)
    );
    assert!(c.remote_random);
    assert_eq!(
        c.data_ciphers,
        [DEFAULT.as_slice(), &[Cipher::Aes256Cbc]].concat()
    );
    assert_eq!(c.data_ciphers_fallback, Some(Cipher::Aes256Cbc));
    assert_eq!(c.auth, Digest::Sha512);
    assert_eq!(tls_auth_direction(c), Some(KeyDirection::Inverse));
    assert_eq!(c.auth_user_pass, Some(AuthUserPass::Prompt));
    let v = c.tls.verify_x509_name.as_ref().unwrap();
    assert_eq!(
        (v.name.as_str(), v.kind),
        ("CN=nl123.example.com", X509NameType::Subject)
    );
    assert_eq!(
        (c.compression, c.ping, c.ping_restart, c.reneg_sec, c.mssfix),
        (Compression::CompLzo, 15, 0, 0, 1450)
    );
    assert!(has_warning(&p, "tun-mtu-extra", WarningKind::NoEffect));
    assert!(has_warning(&p, "persist-tun", WarningKind::HostOnly));

    let p = valid("protonvpn-style-tcp-tls-crypt");
    let c = &p.config;
    let remotes: Vec<(&str, u16, Proto)> = c
        .remotes
        .iter()
        .map(|r| (r.host.as_str(), r.port, r.proto))
        .collect();
    assert_eq!(remotes[2], ("198.51.100.22", 7770, Proto::Tcp));
    assert_eq!(remotes.len(), 4, "duplicates are kept, as OpenVPN does");
    assert_eq!((c.server_poll_timeout, c.mssfix), (20, 0));
    assert!(matches!(c.control_channel, ControlChannel::TlsCrypt(_)));
    let Some(AuthUserPass::Credentials(cred)) = &c.auth_user_pass else {
        panic!()
    };
    assert_eq!(
        (cred.username.as_str(), cred.password.as_str()),
        ("alice+pmp", "correct horse battery staple")
    );
    assert_eq!(c.data_ciphers, DEFAULT);
    assert_eq!(c.data_ciphers_fallback, Some(Cipher::Aes256Gcm));

    let p = valid("mullvad-style-files-by-path");
    let c = &p.config;
    assert_eq!(c.remotes.len(), 3);
    assert!(c
        .remotes
        .iter()
        .all(|r| r.port == 1301 && r.proto == Proto::Udp));
    assert_eq!(c.tls.ca.len(), 1);
    let Some(AuthUserPass::Credentials(cred)) = &c.auth_user_pass else {
        panic!()
    };
    assert_eq!(
        (cred.username.as_str(), cred.password.as_str()),
        ("alice", "s3cret pass")
    );
    assert_eq!((c.sndbuf, c.rcvbuf), (Some(524288), Some(524288)));
    assert!(c
        .tls
        .cipher_list
        .as_deref()
        .unwrap()
        .starts_with("TLS-DHE-RSA-WITH-AES-256-GCM-SHA384:"));

    let c = valid("windscribe-style").config;
    assert_eq!(
        c.data_ciphers,
        [Cipher::Aes256Gcm, Cipher::Aes256Cbc, Cipher::Aes128Gcm]
    );
    assert_eq!(c.data_ciphers_fallback, Some(Cipher::Aes256Cbc));
    assert_eq!(
        tls_auth_direction(&c),
        Some(KeyDirection::Inverse),
        "key-direction before the block"
    );
    assert_eq!(c.tls.verify_x509_name.unwrap().kind, X509NameType::Name);

    let p = valid("pia-style-crl");
    assert_eq!(p.config.dev, "tun06");
    assert_eq!(p.config.tls.crls.len(), 1);
    assert_eq!(p.config.compression, Compression::Stub);
    assert_eq!(
        p.config.data_ciphers.last(),
        Some(&Cipher::Aes128Cbc),
        "lower-case cipher name appended"
    );
    assert!(has_warning(&p, "disable-occ", WarningKind::NoEffect));
}

#[test]
fn router_exports_and_install_scripts() {
    let p = valid("pfsense-export");
    let c = &p.config;
    assert_eq!(c.remotes[0].proto, Proto::Udp4);
    assert_eq!(
        (c.data_ciphers.as_slice(), c.data_ciphers_fallback),
        (DEFAULT.as_slice(), Some(Cipher::Aes256Cbc))
    );
    assert_eq!(c.auth, Digest::Sha256);
    assert_eq!(c.tls.cert_chain.len(), 1);
    assert_eq!(c.tls.key.as_ref().unwrap().format, PrivateKeyFormat::Pkcs8);
    assert_eq!(c.explicit_exit_notify, 1);
    assert!(
        has_warning(&p, "block-outside-dns", WarningKind::HostOnly),
        "setenv opt of a known directive applies it"
    );

    let c = valid("opnsense-export").config;
    assert_eq!(
        c.data_ciphers,
        [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305]
    );
    assert_eq!(c.tls.key.as_ref().unwrap().format, PrivateKeyFormat::Sec1);
    assert!(matches!(c.control_channel, ControlChannel::TlsCrypt(_)));

    let c = valid("easyrsa-selfhosted-paths").config;
    assert_eq!(c.tls.key.as_ref().unwrap().format, PrivateKeyFormat::Pkcs1);
    assert_eq!(
        c.tls.cert_chain.len(),
        1,
        "`openssl x509 -text` output around the PEM is skipped"
    );
    assert_eq!(tls_auth_direction(&c), Some(KeyDirection::Inverse));

    let p = valid("openvpn-install-angristan");
    let c = &p.config;
    assert_eq!(
        (c.auth, c.auth_nocache, c.tls.version_min),
        (Digest::Sha256, true, Some(TlsVersion::V1_2))
    );
    assert_eq!(
        (c.data_ciphers.as_slice(), c.data_ciphers_fallback),
        (DEFAULT.as_slice(), Some(Cipher::Aes128Gcm))
    );
    assert_eq!(c.tls.key.as_ref().unwrap().format, PrivateKeyFormat::Pkcs8);

    let p = valid("openvpn-install-nyr");
    assert!(has_warning(&p, "block-outside-dns", WarningKind::HostOnly));

    let c = valid("access-server-style").config;
    assert_eq!(c.remotes.len(), 4);
    assert_eq!(c.remotes[2].proto, Proto::Tcp);
    assert_eq!(
        (c.server_poll_timeout, c.reneg_sec, c.tun_mtu),
        (4, 604800, 1420)
    );
}

#[test]
fn inline_key_variants() {
    let c = valid("inline-everything-tls-crypt-v2").config;
    let ControlChannel::TlsCryptV2(key) = &c.control_channel else {
        panic!()
    };
    assert_eq!(key.wkc.len(), 299, "default metadata: timestamp");
    assert_eq!(
        c.data_ciphers,
        [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305]
    );

    let c = valid("inline-ed25519").config;
    assert_eq!(
        (c.remotes[0].host.as_str(), c.remotes[0].proto),
        ("2001:db8::1", Proto::Udp6)
    );
    assert_eq!(c.tls.version_min, Some(TlsVersion::V1_3));
    assert!(c.tls.ciphersuites.is_some());

    let c = valid("peer-fingerprint").config;
    assert!(c.tls.ca.is_empty());
    assert_eq!(
        c.tls.peer_fingerprints.len(),
        2,
        "the later block replaces the single-line form"
    );
    assert_eq!(c.tls.peer_fingerprints[0][..2], [0x01, 0x23]);

    let c = valid("tls-auth-bidirectional").config;
    assert_eq!(tls_auth_direction(&c), Some(KeyDirection::Bidirectional));
    assert_eq!(c.tls.cert_chain.len(), 2, "cert + extra-certs");
}

#[test]
fn remotes_connection_blocks_and_global_defaults() {
    let p = valid("connection-blocks");
    let c = &p.config;
    let r: Vec<(&str, u16, Proto, bool)> = c
        .remotes
        .iter()
        .map(|r| {
            (
                r.host.as_str(),
                r.port,
                r.proto,
                r.control_channel.is_some(),
            )
        })
        .collect();
    assert_eq!(
        r,
        [
            ("vpn1.example.net", 1194, Proto::Udp, false),
            ("vpn1.example.net", 443, Proto::Tcp, false),
            ("vpn2.example.net", 8443, Proto::Tcp, true),
        ]
    );
    assert!(matches!(
        c.remotes[2].control_channel,
        Some(ControlChannel::TlsCrypt(_))
    ));
    assert_eq!(tls_auth_direction(c), Some(KeyDirection::Inverse));
    assert_eq!(c.connect_retry_max, Some(1));
    assert!(has_warning(
        &p,
        "connect-retry-max",
        WarningKind::AppliesToAllConnections
    ));

    let c = valid("multi-remote-global-port").config;
    let r: Vec<(u16, Proto)> = c.remotes.iter().map(|r| (r.port, r.proto)).collect();
    assert_eq!(
        r,
        [
            (443, Proto::Tcp),
            (1194, Proto::Udp),
            (1195, Proto::Tcp),
            (53, Proto::Udp4),
            (80, Proto::Tcp6)
        ]
    );
    assert_eq!(
        c.tls.key.as_ref().unwrap().format,
        PrivateKeyFormat::Pkcs1,
        "`key [inline]` then <key>"
    );
}

#[test]
fn encodings_and_line_endings() {
    for name in ["crlf-windows", "bom-utf8", "utf16le-windows"] {
        let c = valid(name).config;
        assert_eq!(c.remotes.len(), 1, "{name}");
        assert_eq!(c.tls.ca.len(), 1, "{name}");
    }
    assert_eq!(
        valid("crlf-windows").config.data_ciphers_fallback,
        Some(Cipher::Aes256Gcm)
    );
}

#[test]
fn quoting_routes_timers_and_legacy() {
    let c = valid("quoting-and-comments").config;
    assert_eq!(c.remotes[0].host, "vpn.example.com");
    assert_eq!(
        c.tls.remote_cert_eku.as_deref(),
        Some("TLS Web Server Authentication")
    );
    assert_eq!(
        c.tls.verify_x509_name.as_ref().unwrap().name,
        "C=DE, O=Example GmbH, CN=vpn server"
    );
    let filters: Vec<(PullFilterAction, &str)> = c
        .pull_filters
        .iter()
        .map(|f| (f.action, f.text.as_str()))
        .collect();
    assert_eq!(
        filters,
        [
            (PullFilterAction::Ignore, "route-gateway"),
            (PullFilterAction::Accept, "route 10."),
            (PullFilterAction::Reject, "dhcp-option DNS")
        ]
    );

    let c = valid("routes-compress-stub-v2").config;
    assert_eq!(
        (c.compression, c.allow_compression, c.route_nopull),
        (Compression::StubV2, AllowCompression::Asym, true)
    );
    assert_eq!(c.routes.len(), 2);
    assert_eq!(
        (c.routes[1].gateway.as_deref(), c.routes[1].metric),
        (Some("vpn_gateway"), Some(5))
    );
    assert_eq!(c.routes_ipv6[0].network, "2001:db8:77::/48");
    assert_eq!(
        c.redirect_gateway.as_deref(),
        Some(&["def1".to_string(), "bypass-dhcp".to_string()][..])
    );

    let p = valid("legacy-2.3");
    let c = &p.config;
    assert_eq!(
        c.tls.verify_x509_name.as_ref().unwrap().kind,
        X509NameType::Name
    );
    assert!(c.tls.remote_cert_tls.is_some());
    assert_eq!(
        (c.data_ciphers.as_slice(), c.data_ciphers_fallback),
        (DEFAULT.as_slice(), None)
    );
    assert!(has_warning(&p, "cipher", WarningKind::CipherDropped));
    assert!(has_warning(&p, "tls-remote", WarningKind::Obsolete));
    assert!(has_warning(&p, "ns-cert-type", WarningKind::Obsolete));
    assert!(has_warning(&p, "keysize", WarningKind::NoEffect));

    let c = valid("timers-and-keepalive").config;
    assert_eq!(
        (c.ping, c.ping_restart, c.explicit_exit_notify),
        (10, 120, 2)
    );
    assert_eq!(
        c.inactive.map(|i| (i.seconds, i.bytes)),
        Some((3600, 100000))
    );
    assert_eq!(
        (c.reneg_bytes, c.reneg_pkts, c.hand_window, c.tran_window),
        (64000000, 1000000, 180, 600)
    );
    assert_eq!(
        (
            c.connect_retry,
            c.connect_retry_max_delay,
            c.connect_retry_max
        ),
        (2, 30, Some(5))
    );
    assert_eq!(
        (c.auth_retry, c.float, c.replay_window, c.max_packet_size),
        (AuthRetry::NoInteract, true, (512, 60), 1400)
    );
    assert_eq!(c.verb, 4);
}

#[test]
fn defaults_are_openvpn_2_6() {
    let c = Config::default();
    assert_eq!(c.data_ciphers, DEFAULT);
    assert_eq!(
        (
            c.auth,
            c.reneg_sec,
            c.hand_window,
            c.tran_window,
            c.tls_timeout
        ),
        (Digest::Sha1, 3600, 60, 3600, 2)
    );
    assert_eq!(
        (c.tun_mtu, c.mssfix, c.max_packet_size, c.replay_window),
        (1500, 1492, 1250, (64, 15))
    );
    assert_eq!(
        (
            c.connect_retry,
            c.connect_retry_max_delay,
            c.server_poll_timeout
        ),
        (5, 300, 120)
    );
    assert_eq!((c.allow_compression, c.verb), (AllowCompression::No, 1));
}

/// What the image says about each valid corpus config (files must be inline; no console to prompt).
#[test]
fn image_accepts_inline_configs_and_names_the_line_otherwise() {
    // Files by path are reported in line order: the first one the config names.
    let expected: &[(&str, Option<(u32, ErrorKind)>)] = &[
        ("access-server-style", None),
        (
            "bom-utf8",
            Some((4, ErrorKind::File(FileErrorKind::NeedsPrompt))),
        ),
        (
            "connection-blocks",
            Some((6, ErrorKind::File(FileErrorKind::NeedsPrompt))),
        ),
        (
            "easyrsa-selfhosted-paths",
            Some((17, ErrorKind::File(FileErrorKind::NotInline))),
        ),
        ("inline-ed25519", None),
        ("inline-everything-tls-crypt-v2", None),
        (
            "mullvad-style-files-by-path",
            Some((20, ErrorKind::File(FileErrorKind::NotInline))),
        ),
        ("multi-remote-global-port", None),
        ("openvpn-install-angristan", None),
        ("openvpn-install-nyr", None),
        ("opnsense-export", None),
        ("peer-fingerprint", None),
        ("protonvpn-style-tcp-tls-crypt", None),
        ("tls-auth-bidirectional", None),
        (
            "timers-and-keepalive",
            Some((20, ErrorKind::File(FileErrorKind::NotInline))),
        ),
    ];
    for (name, outcome) in expected {
        let got = config::parse_bytes(&bytes(&format!("valid/{name}.ovpn")), &mut InlineOnly);
        match (outcome, got) {
            (None, Ok(_)) => {}
            (Some((line, kind)), Err(e)) => {
                assert_eq!((e.line, e.kind), (*line, *kind), "{name}: {e}")
            }
            (o, g) => panic!("{name}: expected {o:?}, got {g:?}"),
        }
    }
}

#[test]
fn corpus_has_at_least_twenty_valid_configs() {
    let count = std::fs::read_dir(configs().join("valid")).unwrap().count();
    assert!(count >= 20, "{count}");
    for entry in std::fs::read_dir(configs().join("valid")).unwrap() {
        let path = entry.unwrap().path();
        let parsed = config::parse_bytes(
            &std::fs::read(&path).unwrap(),
            &mut Dir(configs().join("valid")),
        );
        assert!(parsed.is_ok(), "{}: {:?}", path.display(), parsed.err());
    }
}

#[test]
fn invalid_configs_name_the_line_directive_and_reason() {
    use ErrorKind::*;
    let key = ErrorKind::Key;
    let expected: &[(&str, u32, &str, ErrorKind)] = &[
        ("askpass", 3, "askpass", Askpass),
        ("auth-user-pass-no-password", 0, "", Unsupported), // placeholder replaced below
        ("auth-user-pass-prompt", 0, "", Unsupported),
        ("bad-escape", 3, "ca", BadEscape),
        ("bad-key-direction", 2, "key-direction", InvalidArgument),
        ("bad-port", 2, "remote", InvalidPort),
        ("bad-proto", 2, "remote", InvalidArgument),
        ("binary-junk", 3, "", Binary),
        ("ca-is-a-key", 0, "", Unsupported),
        ("cert-without-key", 0, "", Unsupported),
        ("connection-without-remote", 2, "connection", NoRemote),
        ("dev-tap", 2, "dev", TapDevice),
        ("dev-tap-type", 3, "dev-type", TapDevice),
        ("encrypted-key-pkcs1", 0, "", Unsupported),
        ("encrypted-key-pkcs8", 0, "", Unsupported),
        (
            "file-by-path-on-image",
            4,
            "ca",
            File(FileErrorKind::NotInline),
        ),
        ("fragment", 4, "fragment", Fragment),
        ("glued-route-ipv6", 4, "route-ipv6", InvalidArgument),
        ("html-404", 1, "<html>", UnknownBlock),
        ("http-proxy", 3, "http-proxy", Proxy),
        ("key-cert-mismatch", 0, "", Unsupported),
        ("mode-server", 1, "mode", ServerMode),
        ("nested-connection", 4, "connection", NestedConnection),
        ("no-ca", 0, "", NoServerVerification),
        ("no-client-auth", 0, "", NoClientAuth),
        ("no-remote", 0, "", NoRemote),
        ("not-a-client", 0, "", NotAClient),
        ("not-allowed-in-connection", 4, "ca", NotAllowedInConnection),
        ("only-unsupported-cipher", 4, "data-ciphers", NoUsableCipher),
        ("pkcs12", 4, "pkcs12", Pkcs12),
        ("proto-tcp-server", 3, "proto", ServerMode),
        ("server-mode", 0, "", NoServerCertificate),
        ("static-key-bad-hex", 0, "", Unsupported),
        ("static-key-secret", 4, "secret", StaticKeyMode),
        (
            "tls-auth-and-tls-crypt",
            3,
            "tls-crypt",
            ConflictingControlChannel,
        ),
        ("tls-crypt-v2-server-key", 0, "", Unsupported),
        ("tls-server", 2, "tls-server", ServerMode),
        (
            "tls-version-max-old",
            2,
            "tls-version-max",
            TlsVersionTooOld,
        ),
        ("truncated-static-key", 0, "", Unsupported),
        ("unclosed-block", 3, "ca", UnclosedBlock),
        ("unclosed-quote", 2, "verify-x509-name", UnclosedQuote),
        ("unknown-after-ignore-list", 4, "baz", UnknownDirective),
        (
            "unknown-directive",
            3,
            "data-ciphers-fallbacks",
            UnknownDirective,
        ),
        ("unsupported-digest", 3, "auth", UnsupportedDigest),
    ];
    // Errors found in key material: the line of the block's opening tag, which depends on the CA's length.
    let block_line = |name: &str, tag: &str| -> u32 {
        let text = String::from_utf8(bytes(&format!("invalid/{name}.ovpn"))).unwrap();
        text.lines()
            .position(|l| l == tag)
            .map(|i| i as u32 + 1)
            .unwrap()
    };
    let key_cases: &[(&str, &str, &str, ErrorKind)] = &[
        (
            "auth-user-pass-no-password",
            "<auth-user-pass>",
            "auth-user-pass",
            key(KeyError::MissingPassword),
        ),
        (
            "ca-is-a-key",
            "<ca>",
            "ca",
            key(KeyError::UnexpectedPemLabel),
        ),
        ("cert-without-key", "<cert>", "cert", CertWithoutKey),
        (
            "encrypted-key-pkcs1",
            "<key>",
            "key",
            key(KeyError::EncryptedPrivateKey),
        ),
        (
            "encrypted-key-pkcs8",
            "<key>",
            "key",
            key(KeyError::EncryptedPrivateKey),
        ),
        (
            "key-cert-mismatch",
            "<key>",
            "key",
            key(KeyError::KeyCertificateMismatch),
        ),
        (
            "static-key-bad-hex",
            "<tls-auth>",
            "tls-auth",
            key(KeyError::BadStaticKeyHex),
        ),
        (
            "tls-crypt-v2-server-key",
            "<tls-crypt-v2>",
            "tls-crypt-v2",
            key(KeyError::TlsCryptV2ServerKey),
        ),
        (
            "truncated-static-key",
            "<tls-crypt>",
            "tls-crypt",
            key(KeyError::StaticKeyTooShort),
        ),
    ];
    let mut all: Vec<(String, u32, String, ErrorKind)> = Vec::new();
    for (name, line, directive, kind) in expected {
        if let Some((_, tag, d, k)) = key_cases.iter().find(|c| c.0 == *name) {
            all.push((name.to_string(), block_line(name, tag), d.to_string(), *k));
        } else if *name == "auth-user-pass-prompt" {
            all.push((
                name.to_string(),
                block_line(name, "auth-user-pass"),
                "auth-user-pass".into(),
                File(FileErrorKind::NeedsPrompt),
            ));
        } else {
            all.push((name.to_string(), *line, directive.to_string(), *kind));
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(configs().join("invalid"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .into_string()
                .unwrap()
                .trim_end_matches(".ovpn")
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        all.iter().map(|a| a.0.clone()).collect::<Vec<_>>(),
        "every invalid config is listed"
    );
    let mut failures = Vec::new();
    for (name, line, directive, kind) in &all {
        let e = config::parse_bytes(&bytes(&format!("invalid/{name}.ovpn")), &mut InlineOnly)
            .unwrap_err();
        if (e.line, e.directive.as_str(), e.kind) != (*line, directive.as_str(), *kind) {
            failures.push(format!(
                "{name}: expected line {line} `{directive}` {kind:?}, got {e:?} ({e})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_messages_read_well() {
    let e = config::parse_bytes(&bytes("invalid/encrypted-key-pkcs8.ovpn"), &mut InlineOnly)
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`key`: the private key is encrypted, which is not supported on the image"),
        "{text}"
    );
    assert!(
        text.contains("openssl pkey -in key.pem -out key-decrypted.pem"),
        "{text}"
    );
    let e = config::parse_bytes(&bytes("invalid/dev-tap.ovpn"), &mut InlineOnly).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: `dev`: only `dev tun` is supported (oxvpn routes IP packets, not Ethernet)"
    );
    let e = config::parse_bytes(&bytes("invalid/no-remote.ovpn"), &mut InlineOnly).unwrap_err();
    assert_eq!(
        e.to_string(),
        "config: no `remote`: the client has no server to connect to"
    );
    assert!(Path::new(&configs().join("make-corpus.py")).exists());
}
