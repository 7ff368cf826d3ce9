//! The meaning of each directive: applies [`Statement`]s to a [`Config`] in file order, then resolves the
//! files that won, decodes key material and checks the whole (client mode, a server to reach, a way to verify
//! it, a cipher to use).
//!
//! Layer: semantics only; tokens come from `syntax.rs`. Every refusal names the line and the directive.

mod categories;
mod finish;
mod finish_server;
mod server;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::str::FromStr;

use super::error::{ConfigError, ErrorKind, Warning, WarningKind};
use super::model::*;
use super::server_model::ServerOptions;
use super::syntax::{Body, Statement};
use super::FileResolver;
use crate::keys::KeyDirection;
use categories::*;

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
    /// `connect-timeout` / `server-poll-timeout` inside a `<connection>` block (the global one is in
    /// [`Config::server_poll_timeout`]).
    server_poll_timeout: Option<u32>,
}

#[derive(Debug, Clone)]
struct PendingRemote {
    host: String,
    port: Option<u16>,
    proto: Option<Proto>,
    /// The block's scope, for remotes from `<connection>`.
    block: Option<Scope>,
}

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
    /// Lines of the `tls-cipher` / `tls-ciphersuites` that won (checked in `finish`).
    tls_cipher_line: u32,
    tls_ciphersuites_line: u32,
    /// Line of the `tls-groups` that won.
    tls_groups_line: u32,
    last_line: u32,
    /// `Some` for a server config (decided before the first statement is applied).
    server: Option<ServerOptions>,
}

type Result<T> = core::result::Result<T, ConfigError>;

fn err(st: &Statement, kind: ErrorKind) -> ConfigError {
    ConfigError::new(st.line, &st.name, kind)
}

fn arg(st: &Statement, index: usize) -> Result<&str> {
    st.args
        .get(index)
        .map(String::as_str)
        .ok_or_else(|| err(st, ErrorKind::MissingArgument))
}

fn max_args(st: &Statement, n: usize) -> Result<()> {
    if st.args.len() > n {
        return Err(err(st, ErrorKind::TooManyArguments));
    }
    Ok(())
}

fn number<T: FromStr>(st: &Statement, index: usize) -> Result<T> {
    arg(st, index)?
        .parse()
        .map_err(|_| err(st, ErrorKind::InvalidNumber))
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
            tls_cipher_line: 0,
            tls_ciphersuites_line: 0,
            tls_groups_line: 0,
            last_line: 0,
            server: None,
        }
    }

    fn warn(&mut self, st: &Statement, reason: WarningKind) {
        self.warnings.push(Warning {
            line: st.line,
            directive: super::DirectiveName::new(&st.name),
            reason,
        });
    }

    pub(super) fn apply_all(&mut self, statements: &[Statement]) -> Result<()> {
        if server::is_server_config(statements) {
            self.server = Some(ServerOptions::default());
        }
        for st in statements {
            self.last_line = st.line;
            self.apply(st, None)?;
        }
        Ok(())
    }

    /// Applies one statement; `block` is the enclosing `<connection>` scope, if any.
    fn apply(&mut self, st: &Statement, mut block: Option<&mut BlockState>) -> Result<()> {
        let name = st.name.as_str();
        if block.is_none() && self.server.is_some() && self.apply_server(st)? {
            return Ok(());
        }
        if block.is_some() && !CONNECTION_SCOPE.contains(&name) {
            return Err(err(st, ErrorKind::NotAllowedInConnection));
        }
        if !matches!(st.body, Body::None)
            && block.is_some()
            && !matches!(
                name,
                "connection" | "tls-auth" | "tls-crypt" | "tls-crypt-v2"
            )
        {
            return Err(err(st, ErrorKind::BlockNotAllowedHere));
        }
        match name {
            "connection" => {
                let Body::Connection(inner) = &st.body else {
                    return Err(err(st, ErrorKind::UnknownDirective));
                };
                let mut state = BlockState {
                    scope: Scope::default(),
                    remote: None,
                };
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
                let remote = PendingRemote {
                    host: String::from(host),
                    port,
                    proto,
                    block: None,
                };
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
                let secs = number(st, 0)?;
                // A block's timeout stays in that block (OpenVPN's <connection> semantics).
                match block {
                    Some(state) => state.scope.server_poll_timeout = Some(secs),
                    None => self.config.server_poll_timeout = secs,
                }
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
                self.config.auth = Digest::from_name(arg(st, 0)?)
                    .ok_or_else(|| err(st, ErrorKind::UnsupportedDigest))?;
            }
            "key-method" => match arg(st, 0)? {
                "2" => self.warn(st, WarningKind::NoEffect),
                _ => return Err(err(st, ErrorKind::Unsupported)),
            },
            "key-direction" => {
                max_args(st, 1)?;
                let d = KeyDirection::from_arg(arg(st, 0)?)
                    .ok_or_else(|| err(st, ErrorKind::InvalidArgument))?;
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
                            Some(d) => Some(
                                KeyDirection::from_arg(d)
                                    .ok_or_else(|| err(st, ErrorKind::InvalidArgument))?,
                            ),
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
                    Some(cc) if cc.kind != kind => {
                        return Err(err(st, ErrorKind::ConflictingControlChannel))
                    }
                    Some(cc) => {
                        if source.is_some() {
                            cc.file = FileDirective {
                                line: st.line,
                                source,
                            };
                        }
                        if direction.is_some() {
                            cc.direction = direction;
                        }
                    }
                    None => {
                        target.cc = Some(PendingCc {
                            kind,
                            file: FileDirective {
                                line: st.line,
                                source,
                            },
                            direction,
                        })
                    }
                }
            }
            "secret" => return Err(err(st, ErrorKind::StaticKeyMode)),
            "ca" => set_file(&mut self.ca, st)?,
            "cert" => set_file(&mut self.cert, st)?,
            "key" => set_file(&mut self.key, st)?,
            "extra-certs" => set_file(&mut self.extra_certs, st)?,
            "crl-verify" => {
                match st.args.get(1).map(String::as_str) {
                    None => {}
                    Some("dir") => return Err(err(st, ErrorKind::CrlDirectory)),
                    Some(_) => return Err(err(st, ErrorKind::InvalidArgument)),
                }
                max_args(st, 2)?;
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
                    let hex = value
                        .strip_prefix("0x")
                        .or_else(|| value.strip_prefix("0X"))
                        .unwrap_or(value);
                    usages.push(
                        u16::from_str_radix(hex, 16)
                            .map_err(|_| err(st, ErrorKind::InvalidArgument))?,
                    );
                }
                // Without values OpenVPN requires the key usage extension to be present.
                self.config.tls.remote_cert_ku = Some(usages);
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
                self.config.tls.verify_x509_name = Some(VerifyX509Name {
                    name: String::from(arg(st, 0)?),
                    kind,
                });
            }
            "tls-remote" => {
                // Removed in 2.4; its argument was a common name, or an X.509 subject when it holds `=`.
                max_args(st, 1)?;
                let name = arg(st, 0)?;
                let kind = if name.contains('=') {
                    X509NameType::Subject
                } else {
                    X509NameType::Name
                };
                self.config.tls.verify_x509_name = Some(VerifyX509Name {
                    name: String::from(name),
                    kind,
                });
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
                let v = TlsVersion::from_arg(arg(st, 0)?)
                    .ok_or_else(|| err(st, ErrorKind::InvalidArgument))?;
                // `or-highest` only matters when the library lacks `v`; rustls has 1.2 and 1.3.
                self.config.tls.version_min = Some(v);
            }
            "tls-version-max" => {
                max_args(st, 1)?;
                let v = TlsVersion::from_arg(arg(st, 0)?)
                    .ok_or_else(|| err(st, ErrorKind::InvalidArgument))?;
                if v < TlsVersion::V1_2 {
                    return Err(err(st, ErrorKind::TlsVersionTooOld));
                }
                self.config.tls.version_max = Some(v);
            }
            "tls-cipher" => {
                self.config.tls.cipher_list = Some(String::from(arg(st, 0)?));
                self.tls_cipher_line = st.line;
            }
            "tls-ciphersuites" => {
                self.config.tls.ciphersuites = Some(String::from(arg(st, 0)?));
                self.tls_ciphersuites_line = st.line;
            }
            "tls-groups" => {
                max_args(st, 1)?;
                self.config.tls.groups = Some(String::from(arg(st, 0)?));
                self.tls_groups_line = st.line;
            }
            "tls-cert-profile" => {
                max_args(st, 1)?;
                match arg(st, 0)? {
                    // SHA-2 signatures, RSA of 2048 bits or more: exactly what rustls' verifier accepts.
                    "preferred" => {}
                    // These also allow SHA-1 (and `insecure` shorter RSA keys); rustls never does.
                    "legacy" | "insecure" => self.warn(st, WarningKind::CertProfileStricter),
                    // Suite B (ECDSA P-256/P-384 only) is not implemented: refusing it beats ignoring it.
                    "suiteb" => return Err(err(st, ErrorKind::Unsupported)),
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                }
            }
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
                self.auth_user_pass = Some(FileDirective {
                    line: st.line,
                    source,
                });
            }
            "auth-nocache" => {
                self.config.auth_nocache = true;
                self.warn(st, WarningKind::CredentialsStayInline);
            }
            "auth-retry" => {
                self.config.auth_retry = match arg(st, 0)? {
                    "none" => AuthRetry::None,
                    "nointeract" => AuthRetry::NoInteract,
                    "interact" => AuthRetry::Interact,
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                }
            }
            "static-challenge"
            | "cryptoapicert"
            | "pkcs11-providers"
            | "pkcs11-id"
            | "management-external-key"
            | "management-external-cert"
            | "verify-hash"
            | "tls-verify" => return Err(err(st, ErrorKind::Unsupported)),
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
                // OpenVPN's bounds (MAX_SEQ_BACKTRACK, MAX_TIME_BACKTRACK).
                if packets > 65_536 || secs > 600 {
                    return Err(err(st, ErrorKind::InvalidNumber));
                }
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
                if addr.parse::<core::net::Ipv6Addr>().is_err()
                    || prefix.parse::<u8>().map_or(true, |p| p > 128)
                {
                    return Err(err(st, ErrorKind::InvalidArgument));
                }
                let gateway = st.args.get(1).filter(|a| *a != "default").cloned();
                if let Some(gw) = &gateway {
                    if gw.parse::<core::net::Ipv6Addr>().is_err() {
                        return Err(err(st, ErrorKind::InvalidArgument));
                    }
                }
                self.config.routes_ipv6.push(RouteIpv6 {
                    network,
                    gateway,
                    metric: optional_number(st, 2)?,
                });
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
                self.config.pull_filters.push(PullFilter {
                    action,
                    text: String::from(arg(st, 1)?),
                });
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
            "qubes-firewall" => {
                if self.server.is_some() {
                    return Err(err(st, ErrorKind::ClientDirectiveInServer));
                }
                for (line, text) in server::block_lines(st)? {
                    let bad = || server::line_err(line, st, ErrorKind::BadQubesFirewallLine);
                    let mut words = text.split_ascii_whitespace();
                    let client = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
                    let rest: Vec<&str> = words.collect();
                    if rest.is_empty() || rest.iter().any(|w| !w.contains('=')) {
                        return Err(bad());
                    }
                    if self.config.qubes_firewall.len() >= MAX_QUBES_FIREWALL_LINES {
                        return Err(server::line_err(line, st, ErrorKind::TooManyEntries));
                    }
                    self.config.qubes_firewall.push(QubesFirewallLine {
                        line,
                        client,
                        rule: rest.join(" "),
                    });
                }
            }
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
        *slot = Some(FileDirective {
            line: st.line,
            source,
        });
    }
    Ok(())
}
