//! Directive semantics on small inline configs (no certificates: `peer-fingerprint` verifies the server and
//! inline credentials authenticate the client).

use alloc::format;
use alloc::string::String;

use crate::config::{parse, Cipher, ControlChannel, ErrorKind, KeepPaths, Parsed, WarningKind};
use crate::keys::{KeyDirection, StaticKey};

const FP: &str = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";

fn key_block(name: &str) -> String {
    format!(
        "<{name}>\n{}</{name}>\n",
        StaticKey::from_bytes([7; 256]).to_pem()
    )
}

/// `body` starts at line 8.
fn config(body: &str) -> Result<Parsed, crate::config::ConfigError> {
    let text = format!(
        "client\nremote vpn.example.net\npeer-fingerprint {FP}\n<auth-user-pass>\nu\np\n</auth-user-pass>\n{body}"
    );
    parse(&text, &mut KeepPaths)
}

#[test]
fn cipher_rules_of_2_6() {
    // Without data-ciphers, `cipher` is appended to the default list and is the fallback.
    let c = config("cipher AES-256-CBC\n").unwrap().config;
    assert_eq!(c.data_ciphers.last(), Some(&Cipher::Aes256Cbc));
    assert_eq!(c.data_ciphers_fallback, Some(Cipher::Aes256Cbc));
    // With data-ciphers, `cipher` is only the fallback; `?` marks an optional cipher.
    let c = config("data-ciphers ?AES-128-GCM:aes-256-gcm\ncipher AES-256-CBC\n")
        .unwrap()
        .config;
    assert_eq!(c.data_ciphers, [Cipher::Aes128Gcm, Cipher::Aes256Gcm]);
    assert_eq!(c.data_ciphers_fallback, Some(Cipher::Aes256Cbc));
    // data-ciphers-fallback wins over cipher; an unsupported cipher is dropped with a warning.
    let p = config(
        "data-ciphers BF-CBC:AES-128-GCM\ndata-ciphers-fallback AES-128-CBC\ncipher AES-256-CBC\n",
    )
    .unwrap();
    assert_eq!(p.config.data_ciphers, [Cipher::Aes128Gcm]);
    assert_eq!(p.config.data_ciphers_fallback, Some(Cipher::Aes128Cbc));
    assert!(p
        .warnings
        .iter()
        .any(|w| w.reason == WarningKind::CipherDropped));
    let e = config("data-ciphers-fallback BF-CBC\n").unwrap_err();
    assert_eq!((e.line, e.kind), (8, ErrorKind::NoUsableCipher));
}

#[test]
fn key_direction_precedence() {
    let direction = |body: &str| match config(body).unwrap().config.control_channel {
        ControlChannel::TlsAuth { direction, .. } => direction,
        other => panic!("{other:?}"),
    };
    let block = key_block("tls-auth");
    assert_eq!(direction(&block), KeyDirection::Bidirectional);
    assert_eq!(
        direction(&format!("{block}key-direction 1\n")),
        KeyDirection::Inverse
    );
    assert_eq!(
        direction(&format!("key-direction 1\ntls-auth [inline] 0\n{block}")),
        KeyDirection::Normal
    );
    // In a <connection> block the block's key-direction applies, else the global one.
    let c = config(&format!(
        "key-direction 0\n<connection>\nremote b\nkey-direction 1\n{block}</connection>\n<connection>\nremote c\n{block}</connection>\n"
    ))
    .unwrap()
    .config;
    let dirs: alloc::vec::Vec<_> = c
        .remotes
        .iter()
        .map(|r| match &r.control_channel {
            Some(ControlChannel::TlsAuth { direction, .. }) => Some(*direction),
            _ => None,
        })
        .collect();
    assert_eq!(
        dirs,
        [
            None,
            Some(KeyDirection::Inverse),
            Some(KeyDirection::Normal)
        ]
    );
}

#[test]
fn inline_placeholder_keeps_an_earlier_block() {
    let c = config(&format!("{}tls-crypt [inline]\n", key_block("tls-crypt")))
        .unwrap()
        .config;
    assert!(matches!(c.control_channel, ControlChannel::TlsCrypt(_)));
    let e = config("tls-crypt [inline]\n").unwrap_err();
    assert_eq!((e.line, e.kind), (8, ErrorKind::MissingArgument));
}

#[test]
fn setenv_opt_and_ignore_unknown_option() {
    let p = config("setenv opt verb 5\nsetenv opt block-ipv6-hack\n").unwrap();
    assert_eq!(p.config.verb, 5);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.directive.as_str() == "block-ipv6-hack"
            && w.reason == WarningKind::IgnoredUnknown));
    // ignore-unknown-option applies to later lines only, as in OpenVPN.
    let e = config("frobnicate\nignore-unknown-option frobnicate\n").unwrap_err();
    assert_eq!((e.line, e.kind), (8, ErrorKind::UnknownDirective));
    assert!(config("ignore-unknown-option frobnicate\nfrobnicate 1 2\n").is_ok());
    let e = config("setenv opt setenv opt verb 3\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
}

#[test]
fn global_port_and_proto_apply_whatever_their_position() {
    let c = config("remote b 1195\nport 443\nproto tcp\n")
        .unwrap()
        .config;
    let r: alloc::vec::Vec<_> = c
        .remotes
        .iter()
        .map(|r| (r.port, r.proto.as_arg()))
        .collect();
    assert_eq!(r, [(443, "tcp-client"), (1195, "tcp-client")]);
}

#[test]
fn argument_checks_name_the_line() {
    for (body, kind) in [
        ("ping abc\n", ErrorKind::InvalidNumber),
        ("remote\n", ErrorKind::MissingArgument),
        ("remote a 1 udp extra\n", ErrorKind::TooManyArguments),
        ("remote \"\"\n", ErrorKind::InvalidArgument),
        ("max-packet-size 100\n", ErrorKind::InvalidNumber),
        ("route 10.0.0.0 255.255.0\n", ErrorKind::InvalidArgument),
        ("comp-lzo maybe\n", ErrorKind::InvalidArgument),
        ("remote-cert-tls client\n", ErrorKind::InvalidArgument),
        ("verify-x509-name x cn\n", ErrorKind::InvalidArgument),
        ("key-method 1\n", ErrorKind::Unsupported),
        ("client-to-client\n", ErrorKind::ServerMode),
    ] {
        let e = config(body).unwrap_err();
        assert_eq!((e.line, e.kind), (8, kind), "{body}");
    }
}

#[test]
fn tls_cipher_lists_against_rustls() {
    // Supported names pass silently, in OpenSSL and IANA form.
    let p = config("tls-cipher ECDHE-ECDSA-AES256-GCM-SHA384:TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384\ntls-ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n").unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // Unknown and unimplemented (DHE, CBC) names are dropped with a warning naming the line.
    let p =
        config("\ntls-cipher TLS-DHE-RSA-WITH-AES-256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256\n")
            .unwrap();
    let w: alloc::vec::Vec<_> = p
        .warnings
        .iter()
        .map(|w| (w.line, w.directive.as_str(), w.reason))
        .collect();
    assert_eq!(w, [(9, "tls-cipher", WarningKind::TlsSuiteDropped)]);
    // Nothing left for TLS 1.2 while TLS 1.3 is allowed: TLS 1.2 is not offered (real configs list only
    // DHE suites, and OpenVPN 2.6 then negotiates TLS 1.3 with a modern server).
    let p = config("tls-cipher TLS-DHE-RSA-WITH-AES-256-GCM-SHA384\n").unwrap();
    assert!(p
        .warnings
        .iter()
        .any(|w| w.line == 8 && w.reason == WarningKind::TlsVersionNotOffered));
    // ... but with `tls-version-max 1.2` nothing is left at all: an error naming the tls-cipher line.
    let e = config("tls-version-max 1.2\ntls-cipher DHE-RSA-AES256-SHA:AES256-SHA\n").unwrap_err();
    assert_eq!(
        (e.line, e.directive.as_str(), e.kind),
        (9, "tls-cipher", ErrorKind::NoUsableTlsSuite)
    );
    // The same for TLS 1.3 only.
    let e = config("tls-ciphersuites TLS_AES_128_CCM_SHA256\ntls-version-min 1.3\n").unwrap_err();
    assert_eq!(
        (e.line, e.directive.as_str(), e.kind),
        (8, "tls-ciphersuites", ErrorKind::NoUsableTlsSuite)
    );
    // Both lists empty: the first emptied list is named.
    let e = config("tls-cipher AES256-SHA\ntls-ciphersuites bogus\n").unwrap_err();
    assert_eq!((e.line, e.kind), (8, ErrorKind::NoUsableTlsSuite));
    // OpenSSL keywords are not errors.
    assert!(config("tls-cipher DEFAULT:@SECLEVEL=0\n")
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn qubes_firewall_block_lines_are_kept_printed_back_and_refused_naming_the_line() {
    let p = config(
        "<qubes-firewall>\n# client 10.137.0.11\n10.137.0.11 policy=drop\n10.137.0.11   action=accept proto=tcp dst4=10.9.0.0/24 dstports=80-80\n\n</qubes-firewall>\n",
    )
    .unwrap();
    let lines = &p.config.qubes_firewall;
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0].line, lines[0].client, lines[0].rule.as_str()),
        (10, core::net::Ipv4Addr::new(10, 137, 0, 11), "policy=drop")
    );
    assert_eq!(lines[1].line, 11);
    assert_eq!(
        lines[1].rule,
        "action=accept proto=tcp dst4=10.9.0.0/24 dstports=80-80"
    );
    let printed = crate::config::print(&p.config);
    assert!(
        printed.contains("<qubes-firewall>\n10.137.0.11 policy=drop\n10.137.0.11 action=accept proto=tcp dst4=10.9.0.0/24 dstports=80-80\n</qubes-firewall>"),
        "{printed}"
    );
    let again = parse(&printed, &mut KeepPaths).unwrap();
    assert_eq!(again.config.qubes_firewall.len(), 2);
    for bad in [
        "policy=drop",
        "10.137.0.300 policy=drop",
        "10.137.0.11",
        "10.137.0.11 drop",
        "10.137.0.11/32 policy=drop",
    ] {
        let e = config(&format!(
            "<qubes-firewall>\n10.137.0.11 policy=accept\n{bad}\n</qubes-firewall>\n"
        ))
        .unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (10, ErrorKind::BadQubesFirewallLine),
            "{bad}"
        );
    }
}
