//! The meaning of each directive: applies [`Statement`]s to a [`Config`] in file order, then resolves the
//! files that won, decodes key material and checks the whole (client mode, a server to reach, a way to verify
//! it, a cipher to use).
//!
//! Layer: semantics only; tokens come from `syntax.rs`. Every refusal names the line and the directive.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::str::FromStr;

use super::error::{ConfigError, ErrorKind, FileErrorKind, Warning, WarningKind};
use super::model::*;
use super::syntax::{Body, Statement};
use super::{FileResolver, Parsed, Resolved};
use crate::keys::{self, KeyDirection, KeyError, PrivateKey, StaticKey, TlsCryptV2ClientKey};

/// Where a file-valued directive's contents are.
#[derive(Debug, Clone)]
enum Source {
    Inline(String),
    Path(String),
}

#[derive(Debug, Clone)]
struct FileDirective {
    line: u32,
    source: Option<Source>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CcKind {
    TlsAuth,
    TlsCrypt,
    TlsCryptV2,
}

impl CcKind {
    fn name(self) -> &'static str {
        match self {
            CcKind::TlsAuth => "tls-auth",
            CcKind::TlsCrypt => "tls-crypt",
            CcKind::TlsCryptV2 => "tls-crypt-v2",
        }
    }
}

#[derive(Debug, Clone)]
struct PendingCc {
    kind: CcKind,
    file: FileDirective,
    direction: Option<KeyDirection>,
}

/// Options that can be set globally and inside a `<connection>` block.
#[derive(Debug, Clone, Default)]
struct Scope {
    cc: Option<PendingCc>,
    key_direction: Option<KeyDirection>,
    port: Option<u16>,
    proto: Option<Proto>,
}

#[derive(Debug, Clone)]
struct PendingRemote {
    host: String,
    port: Option<u16>,
    proto: Option<Proto>,
    /// The block's scope, for remotes from `<connection>`.
    block: Option<Scope>,
}

/// The directives that only matter to an OpenVPN process on a host.
const HOST_ONLY: &[&str] = &[
    "persist-tun", "persist-key", "persist-remote-ip", "persist-local-ip", "nobind", "resolv-retry", "user",
    "group", "script-security", "up", "down", "down-pre", "up-delay", "up-restart", "route-up",
    "route-pre-down", "ipchange", "mute-replay-warnings", "block-outside-dns", "route-method", "route-delay",
    "route-metric", "route-noexec", "ifconfig-noexec", "ifconfig-nowarn", "dhcp-option", "mute", "status",
    "status-version", "log", "log-append", "daemon", "writepid", "fast-io", "txqueuelen", "ping-timer-rem",
    "passtos", "service", "register-dns", "ip-win32", "win-sys", "chroot", "cd", "setenv-safe",
    "machine-readable-output", "suppress-timestamps", "echo", "syslog", "plugin", "management",
    "management-hold", "management-query-passwords", "management-client", "management-signal",
    "management-forget-disconnect", "management-up-down", "management-log-cache", "push-peer-info",
    "tls-exit", "single-session", "nice", "iproute", "keying-material-exporter", "dev-node", "lladdr",
    "lport", "bind", "local", "mark", "socket-flags", "tcp-nodelay", "mtu-disc", "mtu-test", "replay-persist",
    "windows-driver", "disable-dco", "allow-pull-fqdn", "show-net-up", "compat-mode", "dns", "block-ipv6",
    "redirect-private", "remote-random-hostname", "http-proxy-option", "http-proxy-retry",
    "http-proxy-timeout", "auth-token-user", "tls-export-cert", "providers", "engine", "client-nat",
    "dhcp-renew", "dhcp-pre-release", "dhcp-release", "tap-sleep", "pause-exit", "route-nopull-ipv6",
    "connect-freq", "pull-filter-ipv6", "ifconfig-ipv6-noexec", "max-routes", "tun-ipv6", "mssfix-ipv6",
    "http-proxy-user-pass",
];

/// Directives with no effect in OpenVPN 2.6 (or with none on a client).
const NO_EFFECT: &[&str] =
    &["keysize", "tun-mtu-extra", "link-mtu", "ncp-disable", "disable-occ", "comp-noadapt", "prng", "dh",
      "no-replay", "opt-verify", "no-iv", "use-prediction-resistance", "occ-mtu-test"];

/// TLS tuning rustls decides itself.
const TLS_TUNING: &[&str] = &["tls-groups", "ecdh-curve", "tls-cert-profile"];

/// Pushed by the server in client mode; a client-side value is ignored.
const PUSHED: &[&str] = &["ifconfig", "ifconfig-ipv6", "route-gateway", "route-ipv6-gateway", "topology"];

/// Server-mode directives: given to a client they mean the config is for the wrong side.
const SERVER_ONLY: &[&str] = &[
    "server", "server-ipv6", "server-bridge", "tls-server", "client-to-client", "duplicate-cn",
    "ifconfig-pool", "ifconfig-pool-persist", "ifconfig-ipv6-pool", "push", "push-reset", "client-config-dir",
    "ccd-exclusive", "tls-crypt-v2-verify", "auth-user-pass-verify", "client-connect", "client-disconnect",
    "learn-address", "iroute", "iroute-ipv6", "max-clients", "verify-client-cert", "auth-gen-token",
    "auth-gen-token-secret", "username-as-common-name", "stale-routes-check", "port-share", "vlan-tagging",
    "x509-username-field", "client-cert-not-required", "push-remove", "max-routes-per-client", "tcp-queue-limit",
    "bcast-buffers", "hash-size", "connect-freq-initial", "force-tls-key-material-export",
];

/// Allowed inside `<connection>` (OpenVPN's connection-entry options).
const CONNECTION_SCOPE: &[&str] = &[
    "remote", "proto", "port", "rport", "lport", "nobind", "bind", "local", "connect-retry", "connect-retry-max",
    "connect-timeout", "server-poll-timeout", "explicit-exit-notify", "float", "tun-mtu", "tun-mtu-extra",
    "link-mtu", "mssfix", "fragment", "key-direction", "tls-auth", "tls-crypt", "tls-crypt-v2", "http-proxy",
    "http-proxy-option", "socks-proxy", "setenv", "remote-random-hostname", "mtu-disc",
];

pub(super) struct Builder<'r> {
    config: Config,
    warnings: Vec<Warning>,
    resolver: &'r mut dyn FileResolver,
    ignore_unknown: BTreeSet<String>,
    client: bool,
    tls_client: bool,
    pull: bool,
    dev: Option<(u32, String)>,
    dev_type_tun: bool,
    global: Scope,
    remotes: Vec<PendingRemote>,
    ca: Option<FileDirective>,
    cert: Option<FileDirective>,
    key: Option<FileDirective>,
    extra_certs: Option<FileDirective>,
    crl: Option<FileDirective>,
    /// `source: None` is the bare form (ask on the console).
    auth_user_pass: Option<FileDirective>,
    cipher: Option<(u32, String)>,
    data_ciphers: Option<(u32, String)>,
    fallback: Option<(u32, String)>,
    peer_fingerprints: Option<(u32, Source)>,
    last_line: u32,
}

type Result<T> = core::result::Result<T, ConfigError>;

fn err(st: &Statement, kind: ErrorKind) -> ConfigError {
    ConfigError::new(st.line, &st.name, kind)
}

fn arg(st: &Statement, index: usize) -> Result<&str> {
    st.args.get(index).map(String::as_str).ok_or_else(|| err(st, ErrorKind::MissingArgument))
}

fn max_args(st: &Statement, n: usize) -> Result<()> {
    if st.args.len() > n {
        return Err(err(st, ErrorKind::TooManyArguments));
    }
    Ok(())
}

fn number<T: FromStr>(st: &Statement, index: usize) -> Result<T> {
    arg(st, index)?.parse().map_err(|_| err(st, ErrorKind::InvalidNumber))
}

fn optional_number<T: FromStr>(st: &Statement, index: usize) -> Result<Option<T>> {
    match st.args.get(index) {
        None => Ok(None),
        Some(_) => number(st, index).map(Some),
    }
}

fn port(st: &Statement, index: usize) -> Result<u16> {
    match arg(st, index)?.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(err(st, ErrorKind::InvalidPort)),
    }
}

fn proto(st: &Statement, value: &str) -> Result<Proto> {
    let lower = value.to_ascii_lowercase();
    if lower.ends_with("-server") {
        return Err(err(st, ErrorKind::ServerMode));
    }
    Proto::from_arg(&lower).ok_or_else(|| err(st, ErrorKind::InvalidArgument))
}

/// `[inline]` is the placeholder some exporters write before the block.
fn file_source(st: &Statement) -> Result<Option<Source>> {
    match &st.body {
        Body::Inline(text) => Ok(Some(Source::Inline(text.clone()))),
        Body::Connection(_) => Err(err(st, ErrorKind::BlockNotAllowedHere)),
        Body::None => {
            let path = arg(st, 0)?;
            Ok((path != "[inline]").then(|| Source::Path(String::from(path))))
        }
    }
}

impl<'r> Builder<'r> {
    pub(super) fn new(resolver: &'r mut dyn FileResolver) -> Self {
        Builder {
            config: Config::default(),
            warnings: Vec::new(),
            resolver,
            ignore_unknown: BTreeSet::new(),
            client: false,
            tls_client: false,
            pull: false,
            dev: None,
            dev_type_tun: false,
            global: Scope::default(),
            remotes: Vec::new(),
            ca: None,
            cert: None,
            key: None,
            extra_certs: None,
            crl: None,
            auth_user_pass: None,
            cipher: None,
            data_ciphers: None,
            fallback: None,
            peer_fingerprints: None,
            last_line: 0,
        }
    }

    fn warn(&mut self, st: &Statement, reason: WarningKind) {
        self.warnings.push(Warning { line: st.line, directive: super::DirectiveName::new(&st.name), reason });
    }

    pub(super) fn apply_all(&mut self, statements: &[Statement]) -> Result<()> {
        for st in statements {
            self.last_line = st.line;
            self.apply(st, None)?;
        }
        Ok(())
    }

    /// Applies one statement; `block` is the enclosing `<connection>` scope, if any.
    fn apply(&mut self, st: &Statement, mut block: Option<&mut BlockState>) -> Result<()> {
        let name = st.name.as_str();
        if block.is_some() && !CONNECTION_SCOPE.contains(&name) {
            return Err(err(st, ErrorKind::NotAllowedInConnection));
        }
        if !matches!(st.body, Body::None)
            && block.is_some()
            && !matches!(name, "connection" | "tls-auth" | "tls-crypt" | "tls-crypt-v2")
        {
            return Err(err(st, ErrorKind::BlockNotAllowedHere));
        }
        match name {
            "connection" => {
                let Body::Connection(inner) = &st.body else {
                    return Err(err(st, ErrorKind::UnknownDirective));
                };
                let mut state = BlockState { scope: Scope::default(), remote: None };
                for inner_st in inner {
                    self.apply(inner_st, Some(&mut state))?;
                }
                let Some(mut remote) = state.remote else {
                    return Err(err(st, ErrorKind::NoRemote));
                };
                remote.port = remote.port.or(state.scope.port);
                remote.proto = remote.proto.or(state.scope.proto);
                remote.block = Some(state.scope);
                self.remotes.push(remote);
            }
            "client" => {
                max_args(st, 0)?;
                self.client = true;
            }
            "pull" => self.pull = true,
            "tls-client" => self.tls_client = true,
            "dev" => {
                max_args(st, 1)?;
                let dev = arg(st, 0)?;
                if dev.starts_with("tap") {
                    return Err(err(st, ErrorKind::TapDevice));
                }
                if dev == "null" {
                    return Err(err(st, ErrorKind::Unsupported));
                }
                self.dev = Some((st.line, String::from(dev)));
            }
            "dev-type" => match arg(st, 0)? {
                "tun" => self.dev_type_tun = true,
                _ => return Err(err(st, ErrorKind::TapDevice)),
            },
            "proto" => {
                max_args(st, 1)?;
                let p = proto(st, arg(st, 0)?)?;
                scope(&mut self.global, &mut block).proto = Some(p);
            }
            "port" | "rport" => {
                max_args(st, 1)?;
                let p = port(st, 0)?;
                scope(&mut self.global, &mut block).port = Some(p);
            }
            "remote" => {
                max_args(st, 3)?;
                let host = arg(st, 0)?;
                if host.is_empty() {
                    return Err(err(st, ErrorKind::InvalidArgument));
                }
                let port = match st.args.get(1) {
                    Some(_) => Some(port(st, 1)?),
                    None => None,
                };
                let proto = match st.args.get(2) {
                    Some(p) => Some(proto(st, p)?),
                    None => None,
                };
                let remote = PendingRemote { host: String::from(host), port, proto, block: None };
                match block {
                    Some(state) => state.remote = Some(remote),
                    None => self.remotes.push(remote),
                }
            }
            "remote-random" => self.config.remote_random = true,
            "connect-retry" => {
                max_args(st, 2)?;
                self.config.connect_retry = number(st, 0)?;
                if let Some(max) = optional_number(st, 1)? {
                    self.config.connect_retry_max_delay = max;
                }
                self.in_block_warning(st, block.is_some());
            }
            "connect-retry-max" => {
                max_args(st, 1)?;
                self.config.connect_retry_max = Some(number(st, 0)?);
                self.in_block_warning(st, block.is_some());
            }
            "server-poll-timeout" | "connect-timeout" => {
                max_args(st, 1)?;
                self.config.server_poll_timeout = number(st, 0)?;
                self.in_block_warning(st, block.is_some());
            }
            "cipher" => self.cipher = Some((st.line, String::from(arg(st, 0)?))),
            "data-ciphers" | "ncp-ciphers" => {
                max_args(st, 1)?;
                self.data_ciphers = Some((st.line, String::from(arg(st, 0)?)));
            }
            "data-ciphers-fallback" => {
                max_args(st, 1)?;
                self.fallback = Some((st.line, String::from(arg(st, 0)?)));
            }
            "auth" => {
                max_args(st, 1)?;
                self.config.auth = Digest::from_name(arg(st, 0)?).ok_or_else(|| err(st, ErrorKind::UnsupportedDigest))?;
            }
            "key-method" => match arg(st, 0)? {
                "2" => self.warn(st, WarningKind::NoEffect),
                _ => return Err(err(st, ErrorKind::Unsupported)),
            },
            "key-direction" => {
                max_args(st, 1)?;
                let d = KeyDirection::from_arg(arg(st, 0)?).ok_or_else(|| err(st, ErrorKind::InvalidArgument))?;
                scope(&mut self.global, &mut block).key_direction = Some(d);
            }
            "tls-auth" | "tls-crypt" | "tls-crypt-v2" => {
                let kind = match name {
                    "tls-auth" => CcKind::TlsAuth,
                    "tls-crypt" => CcKind::TlsCrypt,
                    _ => CcKind::TlsCryptV2,
                };
                let source = file_source(st)?;
                let direction = match (kind, matches!(st.body, Body::None)) {
                    (CcKind::TlsAuth, true) => {
                        max_args(st, 2)?;
                        match st.args.get(1) {
                            Some(d) => {
                                Some(KeyDirection::from_arg(d).ok_or_else(|| err(st, ErrorKind::InvalidArgument))?)
                            }
                            None => None,
                        }
                    }
                    // tls-crypt-v2 may carry the server-only `force-cookie`/`allow-noncookie` mode.
                    (CcKind::TlsCryptV2, true) => {
                        max_args(st, 2)?;
                        None
                    }
                    (_, true) => {
                        max_args(st, 1)?;
                        None
                    }
                    (_, false) => None,
                };
                let target = scope(&mut self.global, &mut block);
                match &mut target.cc {
                    Some(cc) if cc.kind != kind => return Err(err(st, ErrorKind::ConflictingControlChannel)),
                    Some(cc) => {
                        if source.is_some() {
                            cc.file = FileDirective { line: st.line, source };
                        }
                        if direction.is_some() {
                            cc.direction = direction;
                        }
                    }
                    None => {
                        target.cc = Some(PendingCc { kind, file: FileDirective { line: st.line, source }, direction })
                    }
                }
            }
            "secret" => return Err(err(st, ErrorKind::StaticKeyMode)),
            "ca" => set_file(&mut self.ca, st)?,
            "cert" => set_file(&mut self.cert, st)?,
            "key" => set_file(&mut self.key, st)?,
            "extra-certs" => set_file(&mut self.extra_certs, st)?,
            "crl-verify" => {
                if st.args.get(1).is_some_and(|a| a == "dir") {
                    return Err(err(st, ErrorKind::Unsupported));
                }
                set_file(&mut self.crl, st)?;
            }
            "pkcs12" => return Err(err(st, ErrorKind::Pkcs12)),
            "askpass" => return Err(err(st, ErrorKind::Askpass)),
            "remote-cert-tls" => match arg(st, 0)? {
                "server" => self.config.tls.remote_cert_tls = Some(RemoteCertTls::Server),
                _ => return Err(err(st, ErrorKind::InvalidArgument)),
            },
            "ns-cert-type" => match arg(st, 0)? {
                "server" => {
                    self.config.tls.remote_cert_tls = Some(RemoteCertTls::Server);
                    self.warn(st, WarningKind::Obsolete);
                }
                _ => return Err(err(st, ErrorKind::InvalidArgument)),
            },
            "remote-cert-ku" => {
                let mut usages = Vec::new();
                for value in &st.args {
                    let hex = value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")).unwrap_or(value);
                    usages.push(u16::from_str_radix(hex, 16).map_err(|_| err(st, ErrorKind::InvalidArgument))?);
                }
                self.config.tls.remote_cert_ku = usages;
            }
            "remote-cert-eku" => {
                max_args(st, 1)?;
                self.config.tls.remote_cert_eku = Some(String::from(arg(st, 0)?));
            }
            "verify-x509-name" => {
                max_args(st, 2)?;
                let kind = match st.args.get(1).map(String::as_str) {
                    None | Some("subject") => X509NameType::Subject,
                    Some("name") => X509NameType::Name,
                    Some("name-prefix") => X509NameType::NamePrefix,
                    Some(_) => return Err(err(st, ErrorKind::InvalidArgument)),
                };
                self.config.tls.verify_x509_name = Some(VerifyX509Name { name: String::from(arg(st, 0)?), kind });
            }
            "tls-remote" => {
                // Removed in 2.4; its argument was a common name, or an X.509 subject when it holds `=`.
                max_args(st, 1)?;
                let name = arg(st, 0)?;
                let kind = if name.contains('=') { X509NameType::Subject } else { X509NameType::Name };
                self.config.tls.verify_x509_name = Some(VerifyX509Name { name: String::from(name), kind });
                self.warn(st, WarningKind::Obsolete);
            }
            "peer-fingerprint" => {
                let source = match &st.body {
                    Body::Inline(text) => Source::Inline(text.clone()),
                    _ => Source::Inline(String::from(arg(st, 0)?)),
                };
                self.peer_fingerprints = Some((st.line, source));
            }
            "tls-version-min" => {
                max_args(st, 2)?;
                let v = TlsVersion::from_arg(arg(st, 0)?).ok_or_else(|| err(st, ErrorKind::InvalidArgument))?;
                // `or-highest` only matters when the library lacks `v`; rustls has 1.2 and 1.3.
                self.config.tls.version_min = Some(v);
            }
            "tls-version-max" => {
                max_args(st, 1)?;
                let v = TlsVersion::from_arg(arg(st, 0)?).ok_or_else(|| err(st, ErrorKind::InvalidArgument))?;
                if v < TlsVersion::V1_2 {
                    return Err(err(st, ErrorKind::TlsVersionTooOld));
                }
                self.config.tls.version_max = Some(v);
            }
            "tls-cipher" => self.config.tls.cipher_list = Some(String::from(arg(st, 0)?)),
            "tls-ciphersuites" => self.config.tls.ciphersuites = Some(String::from(arg(st, 0)?)),
            "auth-user-pass" => {
                let source = match &st.body {
                    Body::Inline(text) => Some(Source::Inline(text.clone())),
                    _ => {
                        max_args(st, 1)?;
                        match st.args.first() {
                            None => None,
                            Some(p) if p == "[inline]" => {
                                // Keep an earlier inline block; a later one replaces this placeholder.
                                self.auth_user_pass.as_ref().and_then(|f| f.source.clone())
                            }
                            Some(p) => Some(Source::Path(p.clone())),
                        }
                    }
                };
                self.auth_user_pass = Some(FileDirective { line: st.line, source });
            }
            "auth-nocache" => self.config.auth_nocache = true,
            "auth-retry" => {
                self.config.auth_retry = match arg(st, 0)? {
                    "none" => AuthRetry::None,
                    "nointeract" => AuthRetry::NoInteract,
                    "interact" => AuthRetry::Interact,
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                }
            }
            "static-challenge" | "cryptoapicert" | "pkcs11-providers" | "pkcs11-id" | "management-external-key"
            | "management-external-cert" | "verify-hash" | "tls-verify" => {
                return Err(err(st, ErrorKind::Unsupported))
            }
            "reneg-sec" => {
                max_args(st, 2)?;
                self.config.reneg_sec = number(st, 0)?;
            }
            "reneg-bytes" => self.config.reneg_bytes = number(st, 0)?,
            "reneg-pkts" => self.config.reneg_pkts = number(st, 0)?,
            "hand-window" => self.config.hand_window = number(st, 0)?,
            "tran-window" => self.config.tran_window = number(st, 0)?,
            "tls-timeout" => self.config.tls_timeout = number(st, 0)?,
            "ping" => self.config.ping = number(st, 0)?,
            "ping-restart" => {
                max_args(st, 1)?;
                self.config.ping_restart = number(st, 0)?;
            }
            "ping-exit" => self.config.ping_exit = number(st, 0)?,
            "keepalive" => {
                max_args(st, 2)?;
                self.config.ping = number(st, 0)?;
                self.config.ping_restart = number(st, 1)?;
            }
            "inactive" => {
                max_args(st, 2)?;
                let seconds = number(st, 0)?;
                let bytes = optional_number(st, 1)?.unwrap_or(0);
                self.config.inactive = Some(Inactive { seconds, bytes });
            }
            "explicit-exit-notify" => {
                max_args(st, 1)?;
                self.config.explicit_exit_notify = optional_number(st, 0)?.unwrap_or(1);
                self.in_block_warning(st, block.is_some());
            }
            "comp-lzo" => {
                max_args(st, 1)?;
                match st.args.first().map(String::as_str) {
                    None | Some("yes" | "no" | "adaptive") => {}
                    Some(_) => return Err(err(st, ErrorKind::InvalidArgument)),
                }
                self.config.compression = Compression::CompLzo;
                self.warn(st, WarningKind::CompressionFramingOnly);
            }
            "compress" => {
                max_args(st, 1)?;
                self.config.compression = match st.args.first().map(String::as_str) {
                    None | Some("stub") => Compression::Stub,
                    Some("stub-v2") => Compression::StubV2,
                    Some("lzo") => Compression::Lzo,
                    Some("lz4") => Compression::Lz4,
                    Some("lz4-v2") => Compression::Lz4V2,
                    Some(_) => return Err(err(st, ErrorKind::InvalidArgument)),
                };
                self.warn(st, WarningKind::CompressionFramingOnly);
            }
            "allow-compression" => {
                self.config.allow_compression = match arg(st, 0)? {
                    "no" => AllowCompression::No,
                    "asym" => AllowCompression::Asym,
                    "yes" => AllowCompression::Yes,
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                }
            }
            "tun-mtu" => {
                max_args(st, 2)?;
                self.config.tun_mtu = number(st, 0)?;
                self.in_block_warning(st, block.is_some());
            }
            "mssfix" => {
                max_args(st, 2)?;
                self.config.mssfix = optional_number(st, 0)?.unwrap_or(1492);
                if let Some(flag) = st.args.get(1) {
                    if flag != "mtu" && flag != "fixed" {
                        return Err(err(st, ErrorKind::InvalidArgument));
                    }
                }
                self.in_block_warning(st, block.is_some());
            }
            "max-packet-size" => {
                let size: u32 = number(st, 0)?;
                if !(154..=2048).contains(&size) {
                    return Err(err(st, ErrorKind::InvalidNumber));
                }
                self.config.max_packet_size = size;
            }
            "fragment" => return Err(err(st, ErrorKind::Fragment)),
            "http-proxy" | "socks-proxy" => return Err(err(st, ErrorKind::Proxy)),
            "replay-window" => {
                max_args(st, 2)?;
                let packets = number(st, 0)?;
                let secs = optional_number(st, 1)?.unwrap_or(15);
                self.config.replay_window = (packets, secs);
            }
            "route" => {
                max_args(st, 4)?;
                // `default` in a position keeps that position's default value.
                let given = |i: usize| st.args.get(i).filter(|a| *a != "default").cloned();
                let route = Route {
                    network: String::from(arg(st, 0)?),
                    netmask: given(1),
                    gateway: given(2),
                    metric: optional_number(st, 3)?,
                };
                if let Some(mask) = &route.netmask {
                    if mask.parse::<core::net::Ipv4Addr>().is_err() {
                        return Err(err(st, ErrorKind::InvalidArgument));
                    }
                }
                self.config.routes.push(route);
            }
            "route-ipv6" => {
                max_args(st, 3)?;
                let network = String::from(arg(st, 0)?);
                let (addr, prefix) = network.split_once('/').unwrap_or((&network, "128"));
                if addr.parse::<core::net::Ipv6Addr>().is_err() || prefix.parse::<u8>().map_or(true, |p| p > 128) {
                    return Err(err(st, ErrorKind::InvalidArgument));
                }
                let gateway = st.args.get(1).filter(|a| *a != "default").cloned();
                if let Some(gw) = &gateway {
                    if gw.parse::<core::net::Ipv6Addr>().is_err() {
                        return Err(err(st, ErrorKind::InvalidArgument));
                    }
                }
                self.config.routes_ipv6.push(RouteIpv6 { network, gateway, metric: optional_number(st, 2)? });
            }
            "redirect-gateway" => self.config.redirect_gateway = Some(st.args.clone()),
            "route-nopull" => self.config.route_nopull = true,
            "pull-filter" => {
                max_args(st, 2)?;
                let action = match arg(st, 0)? {
                    "accept" => PullFilterAction::Accept,
                    "ignore" => PullFilterAction::Ignore,
                    "reject" => PullFilterAction::Reject,
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                };
                self.config.pull_filters.push(PullFilter { action, text: String::from(arg(st, 1)?) });
            }
            "sndbuf" => self.config.sndbuf = Some(number(st, 0)?),
            "rcvbuf" => self.config.rcvbuf = Some(number(st, 0)?),
            "float" => self.config.float = true,
            "verb" => {
                let v: u8 = number(st, 0)?;
                self.config.verb = v.min(11);
            }
            "mode" => match arg(st, 0)? {
                "p2p" => {}
                _ => return Err(err(st, ErrorKind::ServerMode)),
            },
            "ignore-unknown-option" => self.ignore_unknown.extend(st.args.iter().cloned()),
            "setenv" => {
                if st.args.first().is_some_and(|a| a == "opt") {
                    let mut inner = st.clone();
                    inner.args.remove(0);
                    if inner.args.is_empty() {
                        return Err(err(st, ErrorKind::MissingArgument));
                    }
                    inner.name = inner.args.remove(0);
                    // `setenv opt setenv opt …` would recurse once per pair of tokens.
                    if inner.name == "setenv" {
                        return Err(err(st, ErrorKind::InvalidArgument));
                    }
                    return self.apply_optional(&inner, block);
                }
                self.warn(st, WarningKind::HostOnly);
            }
            _ => return self.apply_other(st),
        }
        Ok(())
    }

    /// `setenv opt X`: X applies when known, is ignored with a warning otherwise.
    fn apply_optional(&mut self, st: &Statement, block: Option<&mut BlockState>) -> Result<()> {
        match self.apply(st, block) {
            Err(e) if e.kind == ErrorKind::UnknownDirective && e.line == st.line => {
                self.warn(st, WarningKind::IgnoredUnknown);
                Ok(())
            }
            other => other,
        }
    }

    /// Directives handled only by category: ignored with a warning, or refused.
    fn apply_other(&mut self, st: &Statement) -> Result<()> {
        let name = st.name.as_str();
        if HOST_ONLY.contains(&name) {
            self.warn(st, WarningKind::HostOnly);
        } else if NO_EFFECT.contains(&name) {
            self.warn(st, WarningKind::NoEffect);
        } else if TLS_TUNING.contains(&name) {
            self.warn(st, WarningKind::NotApplied);
        } else if PUSHED.contains(&name) {
            self.warn(st, WarningKind::PushedInstead);
        } else if SERVER_ONLY.contains(&name) {
            return Err(err(st, ErrorKind::ServerMode));
        } else if self.ignore_unknown.contains(name) {
            self.warn(st, WarningKind::IgnoredUnknown);
        } else {
            return Err(err(st, ErrorKind::UnknownDirective));
        }
        Ok(())
    }

    fn in_block_warning(&mut self, st: &Statement, in_block: bool) {
        if in_block {
            self.warn(st, WarningKind::AppliesToAllConnections);
        }
    }

    /// Checks the whole config, resolves the files that won and decodes key material.
    pub(super) fn finish(mut self) -> Result<Parsed> {
        if !(self.client || (self.tls_client && self.pull)) {
            return Err(ConfigError::whole_file(ErrorKind::NotAClient));
        }
        if let Some((line, dev)) = self.dev.take() {
            if !dev.starts_with("tun") && !self.dev_type_tun {
                return Err(ConfigError::new(line, "dev", ErrorKind::TapDevice));
            }
            self.config.dev = dev;
        }
        if self.remotes.is_empty() {
            return Err(ConfigError::whole_file(ErrorKind::NoRemote));
        }
        self.ciphers()?;
        self.read_files_in_line_order()?;

        let global_cc = self.global.cc.take();
        let global_direction = self.global.key_direction;
        self.config.control_channel = match &global_cc {
            Some(cc) => self.control_channel(cc, global_direction)?,
            None => ControlChannel::None,
        };
        let pending = core::mem::take(&mut self.remotes);
        for remote in pending {
            let (block_cc, block_direction) = match &remote.block {
                Some(scope) => (scope.cc.clone(), scope.key_direction),
                None => (None, None),
            };
            let control_channel = match block_cc {
                Some(cc) => Some(self.control_channel(&cc, block_direction.or(global_direction))?),
                None => None,
            };
            self.config.remotes.push(Remote {
                host: remote.host,
                port: remote.port.or(self.global.port).unwrap_or(1194),
                proto: remote.proto.or(self.global.proto).unwrap_or_default(),
                control_channel,
            });
        }

        if let Some(ca) = self.ca.take() {
            if let Some(text) = self.read(&ca, "ca")? {
                self.config.tls.ca = keys::parse_chain(&text).map_err(|e| key_error(ca.line, "ca", e))?;
            }
        }
        if let Some(crl) = self.crl.take() {
            if let Some(text) = self.read(&crl, "crl-verify")? {
                let blocks = keys::pem::blocks(&text).map_err(|e| key_error(crl.line, "crl-verify", e))?;
                let crls: Vec<Vec<u8>> = blocks.into_iter().filter(|b| b.label == "X509 CRL").map(|b| b.der).collect();
                if crls.is_empty() {
                    return Err(key_error(crl.line, "crl-verify", KeyError::MissingPemBlock("X509 CRL")));
                }
                self.config.tls.crls = crls;
            }
        }
        if let Some((line, source)) = self.peer_fingerprints.take() {
            let Source::Inline(text) = source else { return Err(ConfigError::new(line, "peer-fingerprint", ErrorKind::InvalidArgument)) };
            for entry in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                let fp = parse_fingerprint(entry).ok_or_else(|| key_error(line, "peer-fingerprint", KeyError::BadFingerprint))?;
                self.config.tls.peer_fingerprints.push(fp);
            }
            if self.config.tls.peer_fingerprints.is_empty() {
                return Err(key_error(line, "peer-fingerprint", KeyError::BadFingerprint));
            }
        }
        let has_ca = self.config.tls.ca.len() + self.config.tls.peer_fingerprints.len() > 0
            || self.config.tls.unread_files.iter().any(|(d, _)| d == "ca");
        if !has_ca {
            return Err(ConfigError::whole_file(ErrorKind::NoServerVerification));
        }

        match (self.cert.take(), self.key.take()) {
            (Some(cert), Some(key)) => self.client_certificate(cert, key)?,
            (Some(only), None) => return Err(ConfigError::new(only.line, "cert", ErrorKind::CertWithoutKey)),
            (None, Some(only)) => return Err(ConfigError::new(only.line, "key", ErrorKind::CertWithoutKey)),
            (None, None) => {}
        }
        if let Some(extra) = self.extra_certs.take() {
            if let Some(text) = self.read(&extra, "extra-certs")? {
                let chain = keys::parse_chain(&text).map_err(|e| key_error(extra.line, "extra-certs", e))?;
                self.config.tls.cert_chain.extend(chain);
            }
        }

        if let Some(FileDirective { line, source }) = self.auth_user_pass.take() {
            self.config.auth_user_pass = Some(match source {
                None => {
                    if !self.resolver.allows_prompt() {
                        return Err(ConfigError::new(line, "auth-user-pass", ErrorKind::File(FileErrorKind::NeedsPrompt)));
                    }
                    AuthUserPass::Prompt
                }
                Some(source) => {
                    let file = FileDirective { line, source: Some(source.clone()) };
                    match self.read(&file, "auth-user-pass")? {
                        Some(text) => AuthUserPass::Credentials(
                            parse_credentials(&text).map_err(|e| key_error(line, "auth-user-pass", e))?,
                        ),
                        None => match source {
                            Source::Path(p) => AuthUserPass::Path(p),
                            Source::Inline(_) => AuthUserPass::Prompt,
                        },
                    }
                }
            });
        }
        let has_cert = !self.config.tls.cert_chain.is_empty()
            || self.config.tls.unread_files.iter().any(|(d, _)| d == "cert");
        if !has_cert && self.config.auth_user_pass.is_none() {
            return Err(ConfigError::whole_file(ErrorKind::NoClientAuth));
        }
        Ok(Parsed { config: self.config, warnings: self.warnings })
    }

    /// Reads every file the config references by path, in line order, so that the first bad file reported
    /// is the first in the config. Contents become inline sources; kept paths stay paths.
    fn read_files_in_line_order(&mut self) -> Result<()> {
        let mut files: Vec<(&mut FileDirective, &'static str)> = Vec::new();
        let singles = [
            (&mut self.ca, "ca"),
            (&mut self.cert, "cert"),
            (&mut self.key, "key"),
            (&mut self.extra_certs, "extra-certs"),
            (&mut self.crl, "crl-verify"),
            (&mut self.auth_user_pass, "auth-user-pass"),
        ];
        for (slot, name) in singles {
            if let Some(file) = slot.as_mut() {
                files.push((file, name));
            }
        }
        let scopes = core::iter::once(&mut self.global).chain(self.remotes.iter_mut().filter_map(|r| r.block.as_mut()));
        for scope in scopes {
            if let Some(cc) = scope.cc.as_mut() {
                files.push((&mut cc.file, cc.kind.name()));
            }
        }
        files.sort_by_key(|(file, _)| file.line);
        for (file, name) in files {
            let Some(Source::Path(path)) = &file.source else { continue };
            match self.resolver.read(path) {
                Ok(Resolved::Contents(text)) => file.source = Some(Source::Inline(text)),
                Ok(Resolved::KeepPath) => {}
                Err(kind) => return Err(ConfigError::new(file.line, name, ErrorKind::File(kind))),
            }
        }
        Ok(())
    }

    fn ciphers(&mut self) -> Result<()> {
        let mut explicit = false;
        if let Some((line, list)) = self.data_ciphers.take() {
            explicit = true;
            let mut ciphers = Vec::new();
            for name in list.split(':').filter(|n| !n.is_empty()) {
                let optional = name.strip_prefix('?');
                match Cipher::from_name(optional.unwrap_or(name)) {
                    Some(c) if !ciphers.contains(&c) => ciphers.push(c),
                    Some(_) => {}
                    None => self.warnings.push(Warning {
                        line,
                        directive: super::DirectiveName::new("data-ciphers"),
                        reason: WarningKind::CipherDropped,
                    }),
                }
            }
            if ciphers.is_empty() {
                return Err(ConfigError::new(line, "data-ciphers", ErrorKind::NoUsableCipher));
            }
            self.config.data_ciphers = ciphers;
        }
        let cipher = match self.cipher.take() {
            Some((line, name)) => match Cipher::from_name(&name) {
                Some(c) => Some(c),
                None => {
                    self.warnings.push(Warning {
                        line,
                        directive: super::DirectiveName::new("cipher"),
                        reason: WarningKind::CipherDropped,
                    });
                    None
                }
            },
            None => None,
        };
        // 2.6: without an explicit `data-ciphers`, `cipher` is appended to the default list, and it remains
        // the fallback for peers that cannot negotiate unless `data-ciphers-fallback` says otherwise.
        if let Some(c) = cipher {
            if !explicit && !self.config.data_ciphers.contains(&c) {
                self.config.data_ciphers.push(c);
            }
        }
        self.config.data_ciphers_fallback = match self.fallback.take() {
            Some((line, name)) => {
                Some(Cipher::from_name(&name).ok_or_else(|| {
                    ConfigError::new(line, "data-ciphers-fallback", ErrorKind::NoUsableCipher)
                })?)
            }
            None => cipher,
        };
        Ok(())
    }

    /// Reads a file-valued directive: inline text, or the resolver's answer for its path. `None` when the
    /// resolver keeps the path unread (recorded in `tls.unread_files` for the certificate directives).
    fn read(&mut self, file: &FileDirective, directive: &str) -> Result<Option<String>> {
        match &file.source {
            None => Err(ConfigError::new(file.line, directive, ErrorKind::MissingArgument)),
            Some(Source::Inline(text)) => Ok(Some(text.clone())),
            Some(Source::Path(path)) => match self.resolver.read(path) {
                Ok(Resolved::Contents(text)) => Ok(Some(text)),
                Ok(Resolved::KeepPath) => {
                    if matches!(directive, "ca" | "cert" | "key" | "extra-certs" | "crl-verify") {
                        self.config.tls.unread_files.push((directive.to_string(), path.clone()));
                    }
                    Ok(None)
                }
                Err(kind) => Err(ConfigError::new(file.line, directive, ErrorKind::File(kind))),
            },
        }
    }

    fn control_channel(&mut self, cc: &PendingCc, key_direction: Option<KeyDirection>) -> Result<ControlChannel> {
        let name = cc.kind.name();
        let direction = cc.direction.or(key_direction).unwrap_or_default();
        let Some(text) = self.read(&cc.file, name)? else {
            let path = match &cc.file.source {
                Some(Source::Path(p)) => p.clone(),
                _ => String::new(),
            };
            return Ok(ControlChannel::Unread { directive: name.to_string(), path, direction });
        };
        let line = cc.file.line;
        Ok(match cc.kind {
            CcKind::TlsAuth => ControlChannel::TlsAuth {
                key: StaticKey::parse(&text).map_err(|e| key_error(line, name, e))?,
                direction,
            },
            CcKind::TlsCrypt => ControlChannel::TlsCrypt(StaticKey::parse(&text).map_err(|e| key_error(line, name, e))?),
            CcKind::TlsCryptV2 => ControlChannel::TlsCryptV2(
                TlsCryptV2ClientKey::parse(&text).map_err(|e| key_error(line, name, e))?,
            ),
        })
    }

    fn client_certificate(&mut self, cert: FileDirective, key: FileDirective) -> Result<()> {
        let cert_text = self.read(&cert, "cert")?;
        let key_text = self.read(&key, "key")?;
        let chain = match cert_text {
            Some(text) => keys::parse_chain(&text).map_err(|e| key_error(cert.line, "cert", e))?,
            None => Vec::new(),
        };
        let private = match key_text {
            Some(text) => Some(PrivateKey::parse(&text).map_err(|e| key_error(key.line, "key", e))?),
            None => None,
        };
        if let (Some(leaf), Some(private)) = (chain.first(), &private) {
            // The check OpenVPN's SSL library does at load time (`SSL_CTX_check_private_key`).
            match private.matches(leaf) {
                Ok(true) => {}
                Ok(false) => self.warnings.push(Warning {
                    line: key.line,
                    directive: super::DirectiveName::new("key"),
                    reason: WarningKind::KeyMatchUnchecked,
                }),
                Err(e) => return Err(key_error(key.line, "key", e)),
            }
        }
        self.config.tls.cert_chain = chain;
        self.config.tls.key = private;
        Ok(())
    }
}

/// The state of one `<connection>` block while its statements are applied.
struct BlockState {
    scope: Scope,
    remote: Option<PendingRemote>,
}

fn scope<'a>(global: &'a mut Scope, block: &'a mut Option<&mut BlockState>) -> &'a mut Scope {
    match block {
        Some(state) => &mut state.scope,
        None => global,
    }
}

/// Records a file-valued directive; an `[inline]` placeholder keeps a block that came before it.
fn set_file(slot: &mut Option<FileDirective>, st: &Statement) -> Result<()> {
    let source = file_source(st)?;
    if source.is_some() || slot.is_none() {
        *slot = Some(FileDirective { line: st.line, source });
    }
    Ok(())
}

fn key_error(line: u32, directive: &str, e: KeyError) -> ConfigError {
    ConfigError::new(line, directive, ErrorKind::Key(e))
}

/// `AB:CD:…` (32 bytes, SHA-256).
pub(super) fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut parts = text.split(':');
    for slot in out.iter_mut() {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Username on line 1, password on line 2 (wire reference §11).
fn parse_credentials(text: &str) -> core::result::Result<Credentials, KeyError> {
    let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let username = lines.next().filter(|u| !u.is_empty()).ok_or(KeyError::MissingUsername)?;
    let password = lines.next().ok_or(KeyError::MissingPassword)?;
    Ok(Credentials { username: String::from(username), password: String::from(password) })
}
