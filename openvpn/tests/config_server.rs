//! Server configs: the role, the server directives, the refusals naming the line, the extension blocks,
//! and print -> parse giving the same config.

use openvpn::config::*;
use std::path::PathBuf;

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs/keys")
}

struct Dir(PathBuf);
impl FileResolver for Dir {
    fn read(&mut self, path: &str) -> Result<Resolved, FileErrorKind> {
        std::fs::read_to_string(self.0.join(path))
            .map(Resolved::Contents)
            .map_err(|_| FileErrorKind::NotFound)
    }
}

const USERS: &str = "<auth-user-pass-db>
# comment
alice pbkdf2-sha256:10000:c2FsdHNhbHQ=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
bob pbkdf2-sha256:600000:YmJiYg==:AQIDBAUGBwgJCgsMDQ4PEA==
</auth-user-pass-db>
";

/// A typical OpenVPN 2.6/2.7 server.conf, with both extension blocks.
fn full_server() -> String {
    format!(
        "port 1194
proto udp
dev tun
ca ca.crt
cert server.crt
key server.key
crl-verify ca.crl
dh none
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:8::/64
topology subnet
ifconfig-pool 10.8.0.50 10.8.0.99
max-clients 50
duplicate-cn
client-to-client
push \"route 192.168.10.0 255.255.255.0\"
push \"dhcp-option DNS 10.8.0.1\"
push \"redirect-gateway def1 bypass-dhcp\"
push-reset
keepalive 10 120
auth-gen-token 3600
tls-crypt-v2 tc-v2-server.key force-cookie
tls-crypt-v2-max-age 365
verify-client-cert optional
remote-cert-tls client
local 0.0.0.0 1194 udp
local :: 443 tcp-server
connect-freq-initial 50 10
hand-window 30
reneg-sec 600
status openvpn-status.log 20
explicit-exit-notify 1
data-ciphers AES-256-GCM:CHACHA20-POLY1305
persist-key
persist-tun
verb 3
<tls-crypt-v2-revoked>
00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
</tls-crypt-v2-revoked>
{USERS}"
    )
}

#[test]
fn a_full_server_config_parses() {
    let parsed = parse(&full_server(), &mut Dir(keys_dir())).unwrap();
    let c = &parsed.config;
    assert_eq!(c.role(), Role::Server);
    let s = c.server.as_ref().unwrap();
    assert_eq!(
        s.server.unwrap().network,
        "10.8.0.0".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(s.server_ipv6.unwrap().prefix_len, 64);
    assert_eq!(s.topology, Some(Topology::Subnet));
    assert_eq!(s.max_clients, Some(50));
    assert!(s.duplicate_cn && s.client_to_client);
    assert_eq!(s.push.len(), 3);
    assert_eq!(s.push[2], "redirect-gateway def1 bypass-dhcp");
    assert_eq!(s.keepalive, Some((10, 120)));
    assert_eq!((c.ping, c.ping_restart), (10, 240));
    assert_eq!(s.auth_gen_token.unwrap().lifetime, 3600);
    assert!(s.tls_crypt_v2_key.is_some() && s.tls_crypt_v2_force_cookie);
    assert_eq!(c.control_channel, ControlChannel::None);
    assert_eq!(s.tls_crypt_v2_max_age, Some(365));
    assert_eq!(s.verify_client_cert, VerifyClientCert::Optional);
    assert_eq!(c.tls.remote_cert_tls, Some(RemoteCertTls::Client));
    assert_eq!(s.listeners.len(), 2);
    assert_eq!(s.listeners[1].proto, Some(Proto::Tcp));
    assert_eq!(s.connect_freq_initial, Some((50, 10)));
    assert_eq!((c.hand_window, c.reneg_sec), (30, 600));
    assert_eq!(s.status_interval, Some(20));
    assert_eq!(s.tls_crypt_v2_revoked.len(), 1);
    assert_eq!(s.users.len(), 2);
    assert_eq!(
        c.data_ciphers,
        [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305]
    );
    assert!(!c.tls.cert_chain.is_empty() && c.tls.key.is_some() && !c.tls.crls.is_empty());
    let reasons: Vec<_> = parsed.warnings.iter().map(|w| w.reason).collect();
    assert!(reasons.contains(&WarningKind::DhNotUsed));
    assert!(reasons.contains(&WarningKind::ServerNoEffect));
    assert!(reasons.contains(&WarningKind::StatusToConsole));
}

#[test]
fn server_configs_round_trip() {
    let first = parse(&full_server(), &mut Dir(keys_dir())).unwrap().config;
    let text = print(&first);
    let second = parse(&text, &mut KeepPaths)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .config;
    assert_eq!(second, first, "{text}");
    // Unread files, net30, mode server + tls-server, nopool, manual ifconfig, tls-auth with direction 0.
    let other =
        "mode server\ntls-server\ndev tun0\nca ca.crt\ncert s.crt\nkey s.key\ntopology net30\n\
                 server 10.9.0.0 255.255.0.0 nopool\nifconfig 10.9.0.1 10.9.0.2\n\
                 ifconfig-pool 10.9.1.0 10.9.2.255 255.255.0.0\nifconfig-ipv6-pool fd00::1000/64\n\
                 tls-auth ta.key 0\nproto tcp6-server\nport 443\nlocal 192.0.2.1\n\
                 tls-crypt-v2-max-age 7\nauth-gen-token\nverify-client-cert require\n\
                 push \"dhcp-option DOMAIN \\\"x y\\\"\"\nkeepalive 5 30\nping 7\n";
    let first = parse(other, &mut KeepPaths).unwrap().config;
    assert_eq!(first.ping, 7);
    let text = print(&first);
    let second = parse(&text, &mut KeepPaths)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .config;
    assert_eq!(second, first, "{text}");
}

fn error(text: &str) -> (u32, String, ErrorKind) {
    let e = parse(text, &mut KeepPaths).unwrap_err();
    (e.line, e.directive.to_string(), e.kind)
}

const HEAD: &str = "server 10.8.0.0 255.255.255.0\nca ca.crt\ncert s.crt\nkey s.key\n";

#[test]
fn refusals_name_the_line() {
    let cases = [
        (
            "auth-user-pass-verify /bin/check via-env\n",
            "auth-user-pass-verify",
            ErrorKind::NeedsScript,
        ),
        (
            "client-connect /bin/x\n",
            "client-connect",
            ErrorKind::NeedsScript,
        ),
        (
            "learn-address /bin/x\n",
            "learn-address",
            ErrorKind::NeedsScript,
        ),
        (
            "tls-crypt-v2-verify /bin/x\n",
            "tls-crypt-v2-verify",
            ErrorKind::NeedsScript,
        ),
        (
            "client-config-dir ccd\n",
            "client-config-dir",
            ErrorKind::NeedsFilesystem,
        ),
        (
            "ifconfig-pool-persist ipp.txt\n",
            "ifconfig-pool-persist",
            ErrorKind::NeedsFilesystem,
        ),
        ("client\n", "client", ErrorKind::ClientDirectiveInServer),
        (
            "remote vpn.example.net\n",
            "remote",
            ErrorKind::ClientDirectiveInServer,
        ),
        ("proto tcp-client\n", "proto", ErrorKind::InvalidArgument),
        (
            "local vpn.example.net\n",
            "local",
            ErrorKind::InvalidArgument,
        ),
        ("topology star\n", "topology", ErrorKind::InvalidArgument),
        (
            "server-ipv6 fd00::/129\n",
            "server-ipv6",
            ErrorKind::InvalidArgument,
        ),
        (
            "push \"comp-lzo yes\"\n",
            "push",
            ErrorKind::InvalidArgument,
        ),
        ("keepalive 10 15\n", "keepalive", ErrorKind::InvalidNumber),
        ("max-clients 0\n", "max-clients", ErrorKind::InvalidNumber),
        (
            "remote-cert-tls server\n",
            "remote-cert-tls",
            ErrorKind::InvalidArgument,
        ),
    ];
    for (line, directive, kind) in cases {
        assert_eq!(
            error(&format!("{HEAD}{line}")),
            (5, directive.to_string(), kind),
            "{line}"
        );
    }
    // Inside the extension blocks, the line of the bad entry.
    let text = format!(
        "{HEAD}<auth-user-pass-db>\nalice pbkdf2-sha256:10000:c2FsdA==:AAAAAAAAAAAAAAAAAAAAAA==\n\
         bob pbkdf2-sha256:1000:c2FsdA==:AAAAAAAAAAAAAAAAAAAAAA==\n</auth-user-pass-db>\n"
    );
    assert_eq!(
        error(&text),
        (7, "auth-user-pass-db".into(), ErrorKind::WeakPasswordHash)
    );
    let text = format!("{HEAD}<tls-crypt-v2-revoked>\n\nABCD\n</tls-crypt-v2-revoked>\n");
    assert_eq!(
        error(&text),
        (
            7,
            "tls-crypt-v2-revoked".into(),
            ErrorKind::BadRevokedKeyHash
        )
    );
    // Whole-config checks.
    assert_eq!(
        error("server 10.8.0.0 255.255.255.0\nca ca.crt\n").2,
        ErrorKind::NoServerCertificate
    );
    assert_eq!(
        error("server 10.8.0.0 255.255.255.0\ncert s.crt\nkey s.key\n").2,
        ErrorKind::NoClientVerification
    );
    assert_eq!(
        error(&format!("{HEAD}verify-client-cert none\n")).2,
        ErrorKind::NoClientVerification
    );
    // Passwords only: no `ca` needed.
    let c = parse(
        &format!("server 10.8.0.0 255.255.255.0\ncert s.crt\nkey s.key\nverify-client-cert none\n{USERS}"),
        &mut KeepPaths,
    )
    .unwrap();
    assert_eq!(c.config.server.unwrap().users.len(), 2);
}

#[test]
fn client_configs_still_refuse_server_directives() {
    let client = "client\nremote vpn.example.net\nca ca.crt\nauth-user-pass up.txt\n";
    for (body, directive) in [
        ("push \"route 10.0.0.0\"\n", "push"),
        ("tls-server\n", "tls-server"),
        ("mode server\n", "mode"),
        ("max-clients 3\n", "max-clients"),
        (
            "<auth-user-pass-db>\nx\n</auth-user-pass-db>\n",
            "auth-user-pass-db",
        ),
        (
            "<tls-crypt-v2-revoked>\nx\n</tls-crypt-v2-revoked>\n",
            "tls-crypt-v2-revoked",
        ),
        ("tls-crypt-v2-max-age 3\n", "tls-crypt-v2-max-age"),
    ] {
        assert_eq!(
            error(&format!("{client}{body}")),
            (5, directive.to_string(), ErrorKind::ServerMode),
            "{body}"
        );
    }
    let c = parse(client, &mut KeepPaths).unwrap().config;
    assert_eq!((c.role(), c.server), (Role::Client, None));
}
