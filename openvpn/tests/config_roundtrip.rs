//! print -> parse round trip: a hand-rolled generator builds random valid `Config`s (every field, every
//! variant, tokens that need quoting), prints them and parses the text back; the result must be equal.
//! The corpus configs are round-tripped too.

use openvpn::config::*;
use openvpn::keys::{self, KeyDirection, PrivateKey, StaticKey, TlsCryptV2ClientKey};
use std::path::PathBuf;

/// xorshift64*: deterministic, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn u32(&mut self) -> u32 {
        match self.below(3) {
            0 => 0,
            1 => self.below(100_000) as u32,
            _ => self.next() as u32,
        }
    }
    fn text(&mut self) -> String {
        let words = [
            "vpn",
            "a b",
            "q\"uote",
            "back\\slash",
            "#hash",
            ";semi",
            "it's",
            "ünï",
            "x",
            "tab\tbed",
        ];
        let mut s = String::new();
        for _ in 0..1 + self.below(3) {
            let word: &str = self.pick::<&str>(&words);
            s.push_str(word);
        }
        s
    }
}

struct Material {
    ca: Vec<keys::Certificate>,
    cert: Vec<keys::Certificate>,
    key: PrivateKey,
    static_key: StaticKey,
    v2: TlsCryptV2ClientKey,
    crl: Vec<u8>,
}

fn material() -> Material {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs/keys");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    Material {
        ca: keys::parse_chain(&read("ca.crt")).unwrap(),
        cert: keys::parse_chain(&read("client-rsa.crt")).unwrap(),
        key: PrivateKey::parse(&read("client-rsa.key")).unwrap(),
        static_key: StaticKey::parse(&read("ta.key")).unwrap(),
        v2: TlsCryptV2ClientKey::parse(&read("tc-v2-client.key")).unwrap(),
        crl: keys::pem::blocks(&read("ca.crl")).unwrap().remove(0).der,
    }
}

fn control_channel(rng: &mut Rng, m: &Material) -> ControlChannel {
    let direction = *rng.pick(&[
        KeyDirection::Bidirectional,
        KeyDirection::Normal,
        KeyDirection::Inverse,
    ]);
    match rng.below(5) {
        0 => ControlChannel::None,
        1 => ControlChannel::TlsAuth {
            key: m.static_key.clone(),
            direction,
        },
        2 => ControlChannel::TlsCrypt(m.static_key.clone()),
        3 => ControlChannel::TlsCryptV2(m.v2.clone()),
        _ => {
            let directive = rng
                .pick(&["tls-auth", "tls-crypt", "tls-crypt-v2"])
                .to_string();
            let direction = if directive == "tls-auth" {
                direction
            } else {
                KeyDirection::Bidirectional
            };
            ControlChannel::Unread {
                directive,
                path: rng.text(),
                direction,
            }
        }
    }
}

fn generate(rng: &mut Rng, m: &Material) -> Config {
    let mut c = Config::default();
    let protos = [
        Proto::Udp,
        Proto::Udp4,
        Proto::Udp6,
        Proto::Tcp,
        Proto::Tcp4,
        Proto::Tcp6,
    ];
    for _ in 0..1 + rng.below(4) {
        let cc = match control_channel(rng, m) {
            ControlChannel::None => None,
            cc if rng.chance(30) => Some(cc),
            _ => None,
        };
        let host = if rng.chance(50) {
            format!("vpn{}.example.net", rng.below(9))
        } else {
            rng.text()
        };
        c.remotes.push(Remote {
            host,
            port: 1 + rng.below(65535) as u16,
            proto: *rng.pick(&protos),
            control_channel: cc,
            server_poll_timeout: rng.chance(30).then(|| rng.u32()),
        });
    }
    c.remote_random = rng.chance(50);
    c.connect_retry = rng.u32();
    c.connect_retry_max_delay = rng.u32();
    c.connect_retry_max = rng.chance(50).then(|| rng.u32());
    c.server_poll_timeout = rng.u32();
    c.dev = rng.pick(&["tun", "tun0", "vpn0"]).to_string();
    let mut ciphers: Vec<Cipher> = Cipher::ALL
        .iter()
        .copied()
        .filter(|_| rng.chance(50))
        .collect();
    if ciphers.is_empty() {
        ciphers.push(Cipher::Aes256Gcm);
    }
    if rng.chance(50) {
        ciphers.reverse();
    }
    c.data_ciphers = ciphers;
    c.data_ciphers_fallback = rng.chance(50).then(|| *rng.pick(&Cipher::ALL));
    c.auth = *rng.pick(&[Digest::Sha1, Digest::Sha256, Digest::Sha384, Digest::Sha512]);
    c.control_channel = control_channel(rng, m);

    let t = &mut c.tls;
    if rng.chance(80) {
        t.ca = m.ca.clone();
    } else if rng.chance(50) {
        t.unread_files.push(("ca".to_string(), rng.text()));
    } else {
        for _ in 0..1 + rng.below(3) {
            t.peer_fingerprints
                .push(std::array::from_fn(|_| rng.next() as u8));
        }
    }
    let with_cert = rng.chance(60);
    if with_cert {
        t.cert_chain = m.cert.clone();
        if rng.chance(30) {
            t.cert_chain.extend(m.ca.clone());
        }
        t.key = Some(m.key.clone());
    }
    // crl-verify needs `ca` (its signatures are checked with the chain's keys).
    if rng.chance(20) && (!t.ca.is_empty() || !t.unread_files.is_empty()) {
        t.crls = vec![m.crl.clone()];
    }
    t.remote_cert_tls = rng.chance(50).then_some(RemoteCertTls::Server);
    t.remote_cert_ku = rng
        .chance(60)
        .then(|| (0..rng.below(3)).map(|_| rng.next() as u16).collect());
    t.remote_cert_eku = rng.chance(30).then(|| rng.text());
    t.verify_x509_name = rng.chance(50).then(|| VerifyX509Name {
        name: rng.text(),
        kind: *rng.pick(&[
            X509NameType::Subject,
            X509NameType::Name,
            X509NameType::NamePrefix,
        ]),
    });
    let versions = [
        TlsVersion::V1_0,
        TlsVersion::V1_1,
        TlsVersion::V1_2,
        TlsVersion::V1_3,
    ];
    t.version_min = rng.chance(50).then(|| *rng.pick(&versions));
    t.version_max = rng.chance(30).then(|| *rng.pick(&versions[2..]));
    // Names rustls implements (others are dropped with a warning, see the config's tls-cipher test).
    let tls12 = [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ];
    let tls13 = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];
    t.groups = rng.chance(30).then(|| {
        rng.pick(&["X25519:secp384r1", "P-256", "prime256v1:X448"])
            .to_string()
    });
    t.cipher_list = rng.chance(30).then(|| rng.pick(&tls12).to_string());
    t.ciphersuites = rng.chance(30).then(|| rng.pick(&tls13).to_string());

    c.auth_user_pass = match rng.below(if with_cert { 4 } else { 3 }) {
        0 => Some(AuthUserPass::Prompt),
        1 => Some(AuthUserPass::Path(rng.text())),
        2 => Some(AuthUserPass::Credentials(Credentials {
            username: rng.text().replace('\t', "_"),
            password: if rng.chance(20) {
                String::new()
            } else {
                rng.text()
            },
        })),
        _ => None,
    };
    c.auth_nocache = rng.chance(50);
    c.auth_retry = *rng.pick(&[AuthRetry::None, AuthRetry::NoInteract, AuthRetry::Interact]);
    c.reneg_sec = rng.u32();
    c.reneg_bytes = rng.next();
    c.reneg_pkts = rng.next();
    c.hand_window = rng.u32();
    c.tran_window = rng.u32();
    c.tls_timeout = rng.u32();
    c.ping = rng.u32();
    c.ping_restart = rng.u32();
    c.ping_exit = rng.u32();
    c.inactive = rng.chance(30).then(|| Inactive {
        seconds: rng.u32(),
        bytes: rng.next(),
    });
    c.explicit_exit_notify = rng.u32();
    c.compression = *rng.pick(&[
        Compression::None,
        Compression::CompLzo,
        Compression::Stub,
        Compression::StubV2,
        Compression::Lzo,
        Compression::Lz4,
        Compression::Lz4V2,
    ]);
    c.allow_compression = *rng.pick(&[
        AllowCompression::No,
        AllowCompression::Asym,
        AllowCompression::Yes,
    ]);
    c.tun_mtu = rng.u32();
    c.mssfix = rng.u32();
    c.max_packet_size = 154 + rng.below(2048 - 154 + 1) as u32;
    // OpenVPN's bounds: at most 65536 packets and 600 seconds.
    c.replay_window = (rng.u32() % 65_537, rng.u32() % 601);
    for _ in 0..rng.below(4) {
        c.routes.push(Route {
            network: rng
                .pick(&["10.0.0.0", "vpn_gateway", "example.com"])
                .to_string(),
            netmask: rng.chance(50).then(|| "255.255.0.0".to_string()),
            gateway: rng
                .chance(50)
                .then(|| rng.pick(&["10.8.0.1", "net_gateway"]).to_string()),
            metric: rng.chance(50).then(|| rng.u32()),
        });
    }
    for _ in 0..rng.below(3) {
        c.routes_ipv6.push(RouteIpv6 {
            network: rng.pick(&["::/0", "2001:db8::/32", "fd00::1"]).to_string(),
            gateway: rng.chance(50).then(|| "fe80::1".to_string()),
            metric: rng.chance(50).then(|| rng.u32()),
        });
    }
    c.redirect_gateway = rng.chance(40).then(|| {
        ["def1", "bypass-dhcp", "ipv6", "!ipv4", "local", "autolocal"]
            .iter()
            .filter(|_| rng.chance(40))
            .map(|s| s.to_string())
            .collect()
    });
    for _ in 0..rng.below(4) {
        let action = *rng.pick(&[
            PullFilterAction::Accept,
            PullFilterAction::Ignore,
            PullFilterAction::Reject,
        ]);
        c.pull_filters.push(PullFilter {
            action,
            text: rng.text(),
        });
    }
    c.route_nopull = rng.chance(30);
    c.sndbuf = rng.chance(30).then(|| rng.u32());
    c.rcvbuf = rng.chance(30).then(|| rng.u32());
    c.float = rng.chance(30);
    c.verb = rng.below(12) as u8;
    c
}

#[test]
fn random_configs_round_trip() {
    let m = material();
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let config = generate(&mut rng, &m);
        let text = print(&config);
        let parsed =
            parse(&text, &mut KeepPaths).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        assert_eq!(parsed.config, config, "seed {seed}\n{text}");
        assert!(
            parsed.warnings.iter().all(|w| matches!(
                w.reason,
                WarningKind::CompressionFramingOnly
                    | WarningKind::CredentialsStayInline
                    | WarningKind::TlsGroupDropped
            )),
            "seed {seed}: {:?}",
            parsed.warnings
        );
    }
}

#[test]
fn corpus_configs_round_trip() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
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
    for entry in std::fs::read_dir(dir.join("valid")).unwrap() {
        let path = entry.unwrap().path();
        let first = parse_bytes(&std::fs::read(&path).unwrap(), &mut Dir(dir.join("valid")))
            .unwrap()
            .config;
        let text = print(&first);
        let second = parse(&text, &mut KeepPaths)
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        assert_eq!(second.config, first, "{}", path.display());
    }
}
