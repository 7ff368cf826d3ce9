use super::*;
use crate::config::{parse, KeepPaths};

pub(crate) fn settings(body: &str) -> ServerSettings {
    let text = alloc::format!("ca ca.crt\ncert s.crt\nkey s.key\n{body}");
    let parsed = parse(&text, &mut KeepPaths).unwrap();
    ServerSettings::from_config(&parsed.config).unwrap()
}

fn error(body: &str) -> ServerConfigError {
    let text = alloc::format!("ca ca.crt\ncert s.crt\nkey s.key\n{body}");
    let parsed = parse(&text, &mut KeepPaths).unwrap();
    ServerSettings::from_config(&parsed.config).unwrap_err()
}

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn server_helper_subnet_is_the_2_7_default() {
    let s = settings("server 10.8.0.0 255.255.255.0\n");
    assert_eq!(s.ipv4.topology, Topology::Subnet);
    assert_eq!(s.ipv4.local, a("10.8.0.1"));
    assert_eq!(s.ipv4.netmask, a("255.255.255.0"));
    assert_eq!(s.ipv4.pool, Some((a("10.8.0.2"), a("10.8.0.254"))));
    assert!(s.ipv4.pushed_routes.is_empty());
    assert_eq!(
        s.listeners,
        [Listener {
            address: None,
            port: 1194,
            transport: Transport::Udp,
            family: AddressFamily::Any
        }]
    );
    assert_eq!(
        (
            s.max_clients,
            s.connect_freq_initial,
            s.hand_window,
            s.reneg_secs
        ),
        (1024, (100, 10), 60, 3600)
    );
    assert_eq!(s.push_ping, None);
    assert!(s.ipv6.is_none());
    // nopool and a custom pool.
    assert_eq!(
        settings("server 10.8.0.0 255.255.255.0 nopool\n").ipv4.pool,
        None
    );
    let s = settings("server 10.8.0.0 255.255.255.0\nifconfig-pool 10.8.0.100 10.8.0.150\n");
    assert_eq!(s.ipv4.pool, Some((a("10.8.0.100"), a("10.8.0.150"))));
}

#[test]
fn server_helper_net30() {
    let s = settings("server 10.8.0.0 255.255.255.0\ntopology net30\n");
    assert_eq!(s.ipv4.local, a("10.8.0.1"));
    assert_eq!(s.ipv4.pool, Some((a("10.8.0.4"), a("10.8.0.255"))));
    assert_eq!(
        s.ipv4.pushed_routes,
        [(a("10.8.0.1"), a("255.255.255.255"))]
    );
    let s = settings("server 10.8.0.0 255.255.255.0\ntopology net30\nclient-to-client\n");
    assert_eq!(s.ipv4.pushed_routes, [(a("10.8.0.0"), a("255.255.255.0"))]);
}

#[test]
fn server_ipv6_helper_and_manual_mode() {
    let s = settings("server 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n");
    let v6 = s.ipv6.unwrap();
    assert_eq!(v6.local, "fd00:8::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(v6.pool_start, "fd00:8::1000".parse::<Ipv6Addr>().unwrap());
    assert_eq!((v6.prefix_len, v6.pool_size), (64, u32::MAX));
    let s = settings(
        "mode server\ntls-server\ntopology subnet\nifconfig 10.9.0.1 255.255.255.0\nifconfig-pool 10.9.0.10 10.9.0.20\n\
         ifconfig-ipv6 fd00::1/112\nifconfig-ipv6-pool fd00::100/112\n",
    );
    assert_eq!(
        (s.ipv4.local, s.ipv4.network),
        (a("10.9.0.1"), a("10.9.0.0"))
    );
    assert_eq!(s.ipv4.pool, Some((a("10.9.0.10"), a("10.9.0.20"))));
    assert_eq!(s.ipv6.unwrap().pool_size, 0xffff - 0x100);
}

#[test]
fn errors_name_the_directive() {
    let e = error("server 10.8.0.1 255.255.255.0\n");
    assert_eq!(
        (e.directive, e.kind),
        ("server", ServerConfigErrorKind::NotANetworkAddress)
    );
    let e = error("server 10.8.0.0 255.0.255.0\n");
    assert_eq!(e.kind, ServerConfigErrorKind::BadNetmask);
    let e = error("server 10.8.0.0 255.255.255.252\ntopology net30\n");
    assert_eq!(e.kind, ServerConfigErrorKind::NetworkTooSmall);
    let e = error("server 10.8.0.0 255.255.255.0\nifconfig-pool 10.9.0.2 10.9.0.9\n");
    assert_eq!(
        (e.directive, e.kind),
        ("ifconfig-pool", ServerConfigErrorKind::PoolOutsideNetwork)
    );
    let e = error("mode server\ntls-server\n");
    assert_eq!(e.kind, ServerConfigErrorKind::NoAddresses);
    let e = error("server 10.8.0.0 255.255.255.0\nserver-ipv6 fd00::/120\n");
    assert_eq!(e.kind, ServerConfigErrorKind::Ipv6PrefixTooLong);
    assert!(alloc::format!("{e}").contains("`server-ipv6`"));
}

#[test]
fn listeners_keepalive_and_flags() {
    let s = settings(
        "server 10.8.0.0 255.255.255.0\nport 443\nproto tcp-server\nlocal 192.0.2.1\nlocal :: 1194 udp6\n\
         keepalive 10 60\nmax-clients 7\nduplicate-cn\nauth-gen-token 600\npush \"route 10.0.0.0 255.0.0.0\"\n\
         explicit-exit-notify 2\nconnect-freq-initial 5 20\ntls-crypt-v2-max-age 30\n\
         <tls-crypt-v2-revoked>\nffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n\
         0000000000000000000000000000000000000000000000000000000000000001\n</tls-crypt-v2-revoked>\n",
    );
    assert_eq!(s.listeners.len(), 2);
    assert_eq!(
        s.listeners[0],
        Listener {
            address: Some(a("192.0.2.1").into()),
            port: 443,
            transport: Transport::Tcp,
            family: AddressFamily::V4
        }
    );
    assert_eq!(
        (
            s.listeners[1].port,
            s.listeners[1].transport,
            s.listeners[1].family
        ),
        (1194, Transport::Udp, AddressFamily::V6)
    );
    assert_eq!(
        (s.ping, s.ping_restart, s.push_ping),
        (10, 120, Some((10, 60)))
    );
    assert_eq!(s.max_clients, 7);
    assert!(s.duplicate_cn && !s.client_to_client);
    assert_eq!(s.auth_gen_token.unwrap().lifetime, 600);
    assert_eq!(s.push, ["route 10.0.0.0 255.0.0.0"]);
    assert_eq!(
        (
            s.explicit_exit_notify,
            s.connect_freq_initial,
            s.tls_crypt_v2_max_age_days
        ),
        (2, (5, 20), Some(30))
    );
    let mut one = [0u8; 32];
    one[31] = 1;
    assert!(s.is_revoked(&one) && s.is_revoked(&[0xff; 32]) && !s.is_revoked(&[0; 32]));
}

#[test]
fn cipher_negotiation_follows_2_6() {
    let server = ["AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"];
    // First of the server's list that the client has.
    assert_eq!(
        negotiate_cipher(
            &server,
            Some("CHACHA20-POLY1305:AES-128-GCM"),
            Some(2),
            None
        ),
        Some("AES-128-GCM")
    );
    assert_eq!(
        negotiate_cipher(&server, Some("chacha20-poly1305"), None, None),
        Some("CHACHA20-POLY1305")
    );
    // IV_NCP=2 without IV_CIPHERS: the two AES-GCM ciphers.
    assert_eq!(
        negotiate_cipher(&["CHACHA20-POLY1305", "AES-128-GCM"], None, Some(2), None),
        Some("AES-128-GCM")
    );
    // No overlap.
    assert_eq!(
        negotiate_cipher(&server, Some("BF-CBC"), Some(2), Some("AES-256-CBC")),
        None
    );
    // A client that cannot negotiate gets the fallback.
    assert_eq!(
        negotiate_cipher(&server, None, None, Some("AES-256-CBC")),
        Some("AES-256-CBC")
    );
    assert_eq!(negotiate_cipher(&server, None, Some(1), None), None);
    assert_eq!(
        negotiate_cipher_typed(
            &[Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm],
            Some("AES-256-GCM:AES-128-GCM"),
            None,
            None
        ),
        Some(Cipher::Aes256Gcm)
    );
}
