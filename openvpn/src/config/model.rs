//! The typed client configuration and its parts, with OpenVPN 2.6 defaults (wire reference §13).
//!
//! Layer: plain data. Nothing here parses or prints; `directives.rs` fills it and `printer.rs` writes it.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::keys::{Certificate, KeyDirection, PrivateKey, StaticKey, TlsCryptV2ClientKey};

/// The transport and address family of a connection (`proto`, or the third argument of `remote`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proto {
    /// `udp`: UDP over IPv4 or IPv6 (the default).
    #[default]
    Udp,
    /// `udp4`.
    Udp4,
    /// `udp6`.
    Udp6,
    /// `tcp` / `tcp-client`: TCP over IPv4 or IPv6.
    Tcp,
    /// `tcp4` / `tcp4-client`.
    Tcp4,
    /// `tcp6` / `tcp6-client`.
    Tcp6,
}

/// The transport below OpenVPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One OpenVPN packet per datagram.
    Udp,
    /// A stream with a 2-byte length before each packet (wire reference §1.1).
    Tcp,
}

/// Which address families a connection may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4 or IPv6, whatever the name resolves to.
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Proto {
    /// Parses `udp|udp4|udp6|tcp|tcp4|tcp6` with an optional `-client` on the TCP forms. `None` otherwise
    /// (the `-server` forms are handled by the caller as server mode).
    pub fn from_arg(arg: &str) -> Option<Self> {
        Some(match arg.to_ascii_lowercase().as_str() {
            "udp" => Proto::Udp,
            "udp4" => Proto::Udp4,
            "udp6" => Proto::Udp6,
            "tcp" | "tcp-client" => Proto::Tcp,
            "tcp4" | "tcp4-client" => Proto::Tcp4,
            "tcp6" | "tcp6-client" => Proto::Tcp6,
            _ => return None,
        })
    }

    /// The config-file spelling.
    pub fn as_arg(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Udp4 => "udp4",
            Proto::Udp6 => "udp6",
            Proto::Tcp => "tcp-client",
            Proto::Tcp4 => "tcp4-client",
            Proto::Tcp6 => "tcp6-client",
        }
    }

    /// UDP or TCP.
    pub fn transport(self) -> Transport {
        match self {
            Proto::Udp | Proto::Udp4 | Proto::Udp6 => Transport::Udp,
            Proto::Tcp | Proto::Tcp4 | Proto::Tcp6 => Transport::Tcp,
        }
    }

    /// The address families allowed.
    pub fn family(self) -> AddressFamily {
        match self {
            Proto::Udp | Proto::Tcp => AddressFamily::Any,
            Proto::Udp4 | Proto::Tcp4 => AddressFamily::V4,
            Proto::Udp6 | Proto::Tcp6 => AddressFamily::V6,
        }
    }
}

/// One server to try, from a `remote` line or a `<connection>` block, with the global `port`/`proto`
/// already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Host name or IP address literal, as written.
    pub host: String,
    /// Server port (default 1194).
    pub port: u16,
    /// Transport and family.
    pub proto: Proto,
    /// A `<connection>` block's own tls-auth/tls-crypt/tls-crypt-v2, overriding [`Config::control_channel`].
    pub control_channel: Option<ControlChannel>,
    /// A `<connection>` block's own `connect-timeout`/`server-poll-timeout`, seconds, overriding
    /// [`Config::server_poll_timeout`] for this remote only.
    pub server_poll_timeout: Option<u32>,
}

/// A data-channel cipher oxvpn implements (wire reference §6.2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-128-GCM (AEAD).
    Aes128Gcm,
    /// AES-192-GCM (AEAD).
    Aes192Gcm,
    /// AES-256-GCM (AEAD).
    Aes256Gcm,
    /// CHACHA20-POLY1305 (AEAD).
    ChaCha20Poly1305,
    /// AES-128-CBC with the `auth` HMAC (legacy).
    Aes128Cbc,
    /// AES-192-CBC with the `auth` HMAC (legacy).
    Aes192Cbc,
    /// AES-256-CBC with the `auth` HMAC (legacy).
    Aes256Cbc,
}

impl Cipher {
    /// Every supported cipher.
    pub const ALL: [Cipher; 7] = [
        Cipher::Aes128Gcm,
        Cipher::Aes192Gcm,
        Cipher::Aes256Gcm,
        Cipher::ChaCha20Poly1305,
        Cipher::Aes128Cbc,
        Cipher::Aes192Cbc,
        Cipher::Aes256Cbc,
    ];

    /// OpenVPN's name, as sent in `IV_CIPHERS` and pushed in `cipher`.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aes192Gcm => "AES-192-GCM",
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::ChaCha20Poly1305 => "CHACHA20-POLY1305",
            Cipher::Aes128Cbc => "AES-128-CBC",
            Cipher::Aes192Cbc => "AES-192-CBC",
            Cipher::Aes256Cbc => "AES-256-CBC",
        }
    }

    /// Looks a name up case-insensitively (OpenVPN accepts `aes-256-gcm`).
    pub fn from_name(name: &str) -> Option<Self> {
        Cipher::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// True for the AEAD ciphers.
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Cipher::Aes128Gcm | Cipher::Aes192Gcm | Cipher::Aes256Gcm | Cipher::ChaCha20Poly1305
        )
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm | Cipher::Aes128Cbc => 16,
            Cipher::Aes192Gcm | Cipher::Aes192Cbc => 24,
            Cipher::Aes256Gcm | Cipher::Aes256Cbc | Cipher::ChaCha20Poly1305 => 32,
        }
    }
}

/// OpenVPN 2.6's default `data-ciphers`.
pub const DEFAULT_DATA_CIPHERS: [Cipher; 3] = [
    Cipher::Aes256Gcm,
    Cipher::Aes128Gcm,
    Cipher::ChaCha20Poly1305,
];

/// The `auth` digest: tls-auth HMAC and the CBC data-channel HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Digest {
    /// SHA1 (OpenVPN's default; 20-byte HMAC).
    #[default]
    Sha1,
    /// SHA256.
    Sha256,
    /// SHA384.
    Sha384,
    /// SHA512.
    Sha512,
}

impl Digest {
    /// OpenVPN's name.
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "SHA1",
            Digest::Sha256 => "SHA256",
            Digest::Sha384 => "SHA384",
            Digest::Sha512 => "SHA512",
        }
    }

    /// Looks a name up case-insensitively (`SHA-256` and `sha256` both work).
    pub fn from_name(name: &str) -> Option<Self> {
        let compact: String = name.chars().filter(|&c| c != '-').collect();
        [Digest::Sha1, Digest::Sha256, Digest::Sha384, Digest::Sha512]
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(&compact))
    }

    /// Output (and HMAC key) length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 => 64,
        }
    }
}

/// How the control channel is protected before TLS (wire reference §2.2–2.7), with the decoded key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ControlChannel {
    /// Plain control packets (no tls-auth or tls-crypt).
    #[default]
    None,
    /// `tls-auth`: HMAC with the `auth` digest; the direction decides the key slices.
    TlsAuth {
        /// The static key.
        key: StaticKey,
        /// From `tls-auth FILE DIR` or `key-direction`; bidirectional when neither is given.
        direction: KeyDirection,
    },
    /// `tls-crypt`: AES-256-CTR + HMAC-SHA256 with the client's fixed "inverse" direction.
    TlsCrypt(StaticKey),
    /// `tls-crypt-v2`: like tls-crypt with Kc, plus the wrapped key sent in the first packet.
    TlsCryptV2(TlsCryptV2ClientKey),
    /// A key file not read yet (only with [`super::KeepPaths`]): directive, path and direction.
    Unread {
        /// `tls-auth`, `tls-crypt` or `tls-crypt-v2`.
        directive: String,
        /// The path as written.
        path: String,
        /// The tls-auth direction.
        direction: KeyDirection,
    },
}

/// The `remote-cert-tls` requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCertTls {
    /// The server certificate must carry the TLS Web Server Authentication EKU (and a suitable key usage).
    Server,
    /// On a server: client certificates must carry the TLS Web Client Authentication EKU.
    Client,
}

/// What `verify-x509-name` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X509NameType {
    /// The whole subject DN (`subject`, the default), e.g. `C=KG, O=Acme, CN=Server-1`.
    Subject,
    /// The common name (`name`).
    Name,
    /// A prefix of the common name (`name-prefix`).
    NamePrefix,
}

/// A `verify-x509-name` check on the server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyX509Name {
    /// The expected name.
    pub name: String,
    /// What it is compared with.
    pub kind: X509NameType,
}

/// A TLS protocol version for `tls-version-min`/`-max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    V1_0,
    /// TLS 1.1.
    V1_1,
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl TlsVersion {
    /// Parses `1.0`..`1.3`.
    pub fn from_arg(arg: &str) -> Option<Self> {
        Some(match arg {
            "1.0" => TlsVersion::V1_0,
            "1.1" => TlsVersion::V1_1,
            "1.2" => TlsVersion::V1_2,
            "1.3" => TlsVersion::V1_3,
            _ => return None,
        })
    }

    /// The config-file spelling.
    pub fn as_arg(self) -> &'static str {
        match self {
            TlsVersion::V1_0 => "1.0",
            TlsVersion::V1_1 => "1.1",
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }
}

/// A username and password for `auth-user-pass`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username (first line).
    pub username: String,
    /// The password (second line).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: .. }}",
            self.username
        )
    }
}

impl zeroize::Zeroize for Credentials {
    fn zeroize(&mut self) {
        self.username.zeroize();
        self.password.zeroize();
    }
}

/// Wiped when dropped.
impl Drop for Credentials {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self);
    }
}

/// Where `auth-user-pass` credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthUserPass {
    /// Bare `auth-user-pass`: ask on the console. Only parsed with a resolver that keeps paths; the image
    /// refuses it.
    Prompt,
    /// The credentials, inline or read from the file.
    Credentials(Credentials),
    /// A file not read yet (only with [`super::KeepPaths`]).
    Path(String),
}

/// `auth-retry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthRetry {
    /// `none` (default): an AUTH_FAILED is fatal.
    #[default]
    None,
    /// `nointeract`: retry with the same credentials.
    NoInteract,
    /// `interact`: ask again (on the image, same as `nointeract`).
    Interact,
}

/// Data-channel compression framing (wire reference §6.5). oxvpn never compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression directive: no framing byte.
    #[default]
    None,
    /// `comp-lzo no|yes|adaptive` (or bare): LZO framing byte before each payload.
    CompLzo,
    /// `compress` (bare) or `compress stub`: v1 stub framing.
    Stub,
    /// `compress stub-v2`: v2 framing.
    StubV2,
    /// `compress lzo`: LZO framing with the `compress` syntax.
    Lzo,
    /// `compress lz4`: v1 framing.
    Lz4,
    /// `compress lz4-v2`: v2 framing.
    Lz4V2,
}

/// `allow-compression` (OpenVPN 2.6 default `no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowCompression {
    /// `no` (default): framing only, never compress.
    #[default]
    No,
    /// `asym`: decompress received packets, never compress.
    Asym,
    /// `yes`: compress in both directions (oxvpn still never compresses).
    Yes,
}

/// A client-side `route` (applied after the push unless `route-nopull`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Network (address, host name or `vpn_gateway`/`net_gateway`/`remote_host`).
    pub network: String,
    /// Netmask (default 255.255.255.255).
    pub netmask: Option<String>,
    /// Gateway (default: the tunnel gateway).
    pub gateway: Option<String>,
    /// Metric.
    pub metric: Option<u32>,
}

/// A client-side `route-ipv6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteIpv6 {
    /// `address/prefix`.
    pub network: String,
    /// Gateway address.
    pub gateway: Option<String>,
    /// Metric.
    pub metric: Option<u32>,
}

/// `pull-filter` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFilterAction {
    /// Keep pushed options starting with the text.
    Accept,
    /// Drop them.
    Ignore,
    /// Drop them and restart the connection.
    Reject,
}

/// One `pull-filter ACTION "text"`; the first matching filter decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFilter {
    /// What to do.
    pub action: PullFilterAction,
    /// Prefix of the pushed option text.
    pub text: String,
}

/// `inactive SECONDS [BYTES]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inactive {
    /// Exit after this many seconds of too little traffic.
    pub seconds: u32,
    /// Traffic threshold in bytes per period (0 = any traffic resets the timer).
    pub bytes: u64,
}

/// The TLS credentials: server verification and client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// `ca`: the trust anchors (DER). Empty when only `peer-fingerprint` verifies the server.
    pub ca: Vec<Certificate>,
    /// `cert` plus `extra-certs`: the client's chain, leaf first. Empty without a client certificate.
    pub cert_chain: Vec<Certificate>,
    /// `key`: the client's private key.
    pub key: Option<PrivateKey>,
    /// `crl-verify`: certificate revocation lists (DER) the server certificate is checked against.
    pub crls: Vec<Vec<u8>>,
    /// `peer-fingerprint`: SHA-256 fingerprints of acceptable server certificates.
    pub peer_fingerprints: Vec<[u8; 32]>,
    /// `remote-cert-tls server` (or the obsolete `ns-cert-type server`).
    pub remote_cert_tls: Option<RemoteCertTls>,
    /// `remote-cert-ku`: acceptable key-usage values (any one must match); an empty list (the directive
    /// without values) requires the key usage extension to be present.
    pub remote_cert_ku: Option<Vec<u16>>,
    /// `remote-cert-eku`: required extended key usage (OID or OpenSSL name).
    pub remote_cert_eku: Option<String>,
    /// `verify-x509-name` (or the obsolete `tls-remote`, as `name`).
    pub verify_x509_name: Option<VerifyX509Name>,
    /// `tls-version-min` (OpenVPN default 1.2).
    pub version_min: Option<TlsVersion>,
    /// `tls-version-max`.
    pub version_max: Option<TlsVersion>,
    /// `tls-cipher` (TLS 1.2 suites, OpenSSL or IANA names), kept as written.
    pub cipher_list: Option<String>,
    /// `tls-ciphersuites` (TLS 1.3), kept as written.
    pub ciphersuites: Option<String>,
    /// `tls-groups` (key exchange groups), kept as written.
    pub groups: Option<String>,
    /// Paths not read yet (only with [`super::KeepPaths`]): `(directive, path)`.
    pub unread_files: Vec<(String, String)>,
}

/// A parsed client configuration, with OpenVPN 2.6's defaults for everything not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Servers in config order (`remote` lines and `<connection>` blocks).
    pub remotes: Vec<Remote>,
    /// `remote-random`: try the remotes in random order.
    pub remote_random: bool,
    /// `connect-retry N [MAX]`: first delay between attempts (default 5 s).
    pub connect_retry: u32,
    /// Upper bound of the backed-off delay (default 300 s).
    pub connect_retry_max_delay: u32,
    /// `connect-retry-max N`: give up after N rounds over the remotes (None = forever).
    pub connect_retry_max: Option<u32>,
    /// `server-poll-timeout`/`connect-timeout`: per-attempt timeout (default 120 s).
    pub server_poll_timeout: u32,
    /// `dev` name as written (always a tun device).
    pub dev: String,
    /// Data-channel ciphers to offer, in preference order (`data-ciphers`, plus `cipher` if given).
    pub data_ciphers: Vec<Cipher>,
    /// `data-ciphers-fallback` (or the deprecated `cipher`) for servers without cipher negotiation.
    pub data_ciphers_fallback: Option<Cipher>,
    /// `auth` digest (default SHA1).
    pub auth: Digest,
    /// Control-channel protection.
    pub control_channel: ControlChannel,
    /// TLS credentials and checks.
    pub tls: Tls,
    /// `auth-user-pass`.
    pub auth_user_pass: Option<AuthUserPass>,
    /// `auth-nocache`.
    pub auth_nocache: bool,
    /// `auth-retry`.
    pub auth_retry: AuthRetry,
    /// `reneg-sec` (default 3600; 0 = off).
    pub reneg_sec: u32,
    /// `reneg-bytes` (0 = off).
    pub reneg_bytes: u64,
    /// `reneg-pkts` (0 = off).
    pub reneg_pkts: u64,
    /// `hand-window` (default 60 s).
    pub hand_window: u32,
    /// `tran-window` (default 3600 s).
    pub tran_window: u32,
    /// `tls-timeout` (default 2 s).
    pub tls_timeout: u32,
    /// `ping` (0 = off; usually pushed).
    pub ping: u32,
    /// `ping-restart` (0 = not set; OpenVPN uses 120 s until the push arrives).
    pub ping_restart: u32,
    /// `ping-exit` (0 = off).
    pub ping_exit: u32,
    /// `inactive`.
    pub inactive: Option<Inactive>,
    /// `explicit-exit-notify N` (0 = off; bare = 1).
    pub explicit_exit_notify: u32,
    /// Compression framing.
    pub compression: Compression,
    /// `allow-compression`.
    pub allow_compression: AllowCompression,
    /// `tun-mtu` (default 1500).
    pub tun_mtu: u32,
    /// `mssfix` (default 1492; 0 = off).
    pub mssfix: u32,
    /// `max-packet-size` (control-channel packet size, default 1250).
    pub max_packet_size: u32,
    /// `replay-window N [T]` (default 64 packets, 15 s).
    pub replay_window: (u32, u32),
    /// `route`.
    pub routes: Vec<Route>,
    /// `route-ipv6`.
    pub routes_ipv6: Vec<RouteIpv6>,
    /// `redirect-gateway` flags, when given (`def1`, `bypass-dhcp`, `ipv6`, …).
    pub redirect_gateway: Option<Vec<String>>,
    /// `pull-filter`s in order.
    pub pull_filters: Vec<PullFilter>,
    /// `route-nopull`.
    pub route_nopull: bool,
    /// `sndbuf`.
    pub sndbuf: Option<u32>,
    /// `rcvbuf`.
    pub rcvbuf: Option<u32>,
    /// `float`: accept packets from another server address.
    pub float: bool,
    /// `verb` (default 1).
    pub verb: u8,
    /// The server-only directives; `None` for a client config (see [`Config::role`]).
    pub server: Option<super::ServerOptions>,
    /// oxvpn extension `<qubes-firewall>` (client configs): per-client firewall lines for the router's
    /// client ports, in file order. Their rule text is checked by the image (`router::firewall`).
    pub qubes_firewall: Vec<QubesFirewallLine>,
}

/// Most `<qubes-firewall>` lines.
pub const MAX_QUBES_FIREWALL_LINES: usize = 4096;

/// One `<qubes-firewall>` line: `CLIENT_IPV4 policy=accept|drop` or `CLIENT_IPV4 action=... ...`. Two
/// lines are equal when they say the same thing, wherever they stand (a printed config parses back equal).
#[derive(Debug, Clone, Eq)]
pub struct QubesFirewallLine {
    /// The line number in the config text.
    pub line: u32,
    /// The client the line is for.
    pub client: core::net::Ipv4Addr,
    /// The rest of the line: a `policy=` word or a rule, words separated by single spaces.
    pub rule: String,
}

impl PartialEq for QubesFirewallLine {
    fn eq(&self, other: &Self) -> bool {
        (self.client, &self.rule) == (other.client, &other.rule)
    }
}

impl Config {
    /// Client or server, from the config's mode directives.
    pub fn role(&self) -> super::Role {
        match self.server {
            Some(_) => super::Role::Server,
            None => super::Role::Client,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            remotes: Vec::new(),
            remote_random: false,
            connect_retry: 5,
            connect_retry_max_delay: 300,
            connect_retry_max: None,
            server_poll_timeout: 120,
            dev: String::from("tun"),
            data_ciphers: vec![
                Cipher::Aes256Gcm,
                Cipher::Aes128Gcm,
                Cipher::ChaCha20Poly1305,
            ],
            data_ciphers_fallback: None,
            auth: Digest::Sha1,
            control_channel: ControlChannel::None,
            tls: Tls::default(),
            auth_user_pass: None,
            auth_nocache: false,
            auth_retry: AuthRetry::None,
            reneg_sec: 3600,
            reneg_bytes: 0,
            reneg_pkts: 0,
            hand_window: 60,
            tran_window: 3600,
            tls_timeout: 2,
            ping: 0,
            ping_restart: 0,
            ping_exit: 0,
            inactive: None,
            explicit_exit_notify: 0,
            compression: Compression::None,
            allow_compression: AllowCompression::No,
            tun_mtu: 1500,
            mssfix: 1492,
            max_packet_size: 1250,
            replay_window: (64, 15),
            routes: Vec::new(),
            routes_ipv6: Vec::new(),
            redirect_gateway: None,
            pull_filters: Vec::new(),
            route_nopull: false,
            sndbuf: None,
            rcvbuf: None,
            float: false,
            verb: 1,
            server: None,
            qubes_firewall: Vec::new(),
        }
    }
}
