//! Building an [`EngineConfig`] from the parsed `.ovpn` [`Config`](crate::config::Config).
//!
//! Layer: plain mapping, no I/O. Options the engine does not implement yet are refused with an error
//! naming the directive, rather than silently weakening the connection.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::{ControlProtection, EngineConfig, RemoteSpec};
use crate::config::{
    self, AuthUserPass, Config, ControlChannel, Proto, RemoteCertTls, TlsVersion, X509NameType,
};
use crate::crypto::{Compression, Digest, KeyDirection};
use crate::keys::{self, PrivateKeyFormat};
use crate::session::{FilterAction, PullFilter, Transport};
use crate::tls::{suites, CertPurpose, KeyDer, PeerChecks, TlsSettings, X509NameCheck};

/// Why a config cannot drive the engine; each names the directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromConfigError {
    /// No `remote` at the requested index.
    NoRemote,
    /// A key file was referenced by path and not read (`tls-auth`, `tls-crypt`, `tls-crypt-v2`).
    UnreadKeyFile,
    /// Neither `ca` nor `peer-fingerprint` is given.
    NoCa,
    /// `auth-user-pass` without inline credentials (a prompt or an unread file).
    AuthUserPassNotInline,
    /// A certificate file (`ca`, `cert`, `key`, `extra-certs`, `crl-verify`) was referenced by path and not
    /// read: running without it would drop a check (or the client certificate).
    UnreadCertificateFile,
}

impl fmt::Display for FromConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromConfigError::NoRemote => f.write_str("remote: no server configured"),
            FromConfigError::UnreadKeyFile => {
                f.write_str("tls-auth/tls-crypt/tls-crypt-v2: key file not read")
            }
            FromConfigError::NoCa => f.write_str("ca: required (or peer-fingerprint)"),
            FromConfigError::AuthUserPassNotInline => {
                f.write_str("auth-user-pass: credentials must be inline")
            }
            FromConfigError::UnreadCertificateFile => {
                f.write_str("ca/cert/key/extra-certs/crl-verify: file not read")
            }
        }
    }
}

impl EngineConfig {
    /// The engine configuration for `config` with all its remotes; a `<connection>` block's own
    /// control-channel key applies to that remote only.
    pub fn from_config(config: &Config) -> Result<EngineConfig, FromConfigError> {
        if config.remotes.is_empty() {
            return Err(FromConfigError::NoRemote);
        }
        let remotes = config
            .remotes
            .iter()
            .map(|r| RemoteSpec {
                host: r.host.clone(),
                port: r.port,
                transport: match r.proto {
                    Proto::Udp | Proto::Udp4 => Transport::Udp4,
                    Proto::Udp6 => Transport::Udp6,
                    Proto::Tcp | Proto::Tcp4 => Transport::Tcp4,
                    Proto::Tcp6 => Transport::Tcp6,
                },
                server_poll_timeout_secs: r.server_poll_timeout.map(|s| u64::from(s.max(1))),
            })
            .collect();
        let protection = protection_of(&config.control_channel, config.auth)?;
        let remote_protection = config
            .remotes
            .iter()
            .map(|r| {
                r.control_channel
                    .as_ref()
                    .map(|c| protection_of(c, config.auth))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let t = &config.tls;
        if t.ca.is_empty() && t.peer_fingerprints.is_empty() {
            return Err(FromConfigError::NoCa);
        }
        let tls = tls_settings_of(config)?;
        let mut e = EngineConfig::new(protection, tls);
        e.remotes = remotes;
        e.remote_protection = remote_protection;
        e.remote_random = config.remote_random;
        e.route_nopull = config.route_nopull;
        e.pull_filters = config
            .pull_filters
            .iter()
            .map(|f| PullFilter {
                action: match f.action {
                    config::PullFilterAction::Accept => FilterAction::Accept,
                    config::PullFilterAction::Ignore => FilterAction::Ignore,
                    config::PullFilterAction::Reject => FilterAction::Reject,
                },
                text: f.text.clone(),
            })
            .collect();
        e.connect_retry_secs = u64::from(config.connect_retry);
        e.connect_retry_max_delay_secs = u64::from(config.connect_retry_max_delay);
        e.connect_retry_max = config.connect_retry_max;
        e.server_poll_timeout_secs = u64::from(config.server_poll_timeout.max(1));
        e.data_ciphers = config
            .data_ciphers
            .iter()
            .map(|c| String::from(c.name()))
            .collect::<Vec<_>>();
        e.auth = digest(config.auth);
        e.data_ciphers_fallback = config.data_ciphers_fallback.map(|c| String::from(c.name()));
        e.auth_user_pass = match &config.auth_user_pass {
            None => None,
            Some(AuthUserPass::Credentials(c)) => Some((c.username.clone(), c.password.clone())),
            Some(_) => return Err(FromConfigError::AuthUserPassNotInline),
        };
        e.compression = match config.compression {
            config::Compression::None => Compression::None,
            config::Compression::CompLzo | config::Compression::Lzo => Compression::LzoStub,
            config::Compression::Stub | config::Compression::Lz4 => Compression::Stub,
            config::Compression::StubV2 | config::Compression::Lz4V2 => Compression::StubV2,
        };
        e.tls_timeout_ms = u64::from(config.tls_timeout.max(1)) * 1000;
        e.hand_window_secs = u64::from(config.hand_window.max(1));
        e.reneg_secs = u64::from(config.reneg_sec);
        e.reneg_bytes = config.reneg_bytes;
        e.reneg_packets = config.reneg_pkts;
        e.tran_window_secs = u64::from(config.tran_window.max(1));
        e.replay_window = (config.replay_window.0, u64::from(config.replay_window.1));
        e.ping_secs = Some(config.ping).filter(|p| *p > 0);
        e.ping_restart_secs = Some(config.ping_restart).filter(|p| *p > 0);
        e.ping_exit_secs = Some(config.ping_exit).filter(|p| *p > 0);
        e.inactive = config.inactive.map(|i| (u64::from(i.seconds), i.bytes));
        e.tun_mtu = u16::try_from(config.tun_mtu).unwrap_or(1500);
        e.max_packet_size = u16::try_from(config.max_packet_size.clamp(154, 2048)).unwrap_or(1250);
        Ok(e)
    }
}

/// The engine's form of a control-channel setting.
pub(crate) fn protection_of(
    channel: &ControlChannel,
    auth: config::Digest,
) -> Result<ControlProtection, FromConfigError> {
    let protection = match channel {
        ControlChannel::None => ControlProtection::None,
        ControlChannel::TlsAuth { key, direction } => ControlProtection::TlsAuth {
            key: *key.as_bytes(),
            direction: match direction {
                keys::KeyDirection::Bidirectional => KeyDirection::Bidirectional,
                keys::KeyDirection::Normal => KeyDirection::Normal,
                keys::KeyDirection::Inverse => KeyDirection::Inverse,
            },
            digest: digest(auth),
        },
        ControlChannel::TlsCrypt(key) => ControlProtection::TlsCrypt {
            key: *key.as_bytes(),
        },
        ControlChannel::TlsCryptV2(key) => ControlProtection::TlsCryptV2 {
            kc: *key.kc.as_bytes(),
            wkc: key.wkc.clone(),
        },
        ControlChannel::Unread { .. } => return Err(FromConfigError::UnreadKeyFile),
    };
    Ok(protection)
}

pub(crate) fn digest(d: config::Digest) -> Digest {
    match d {
        config::Digest::Sha1 => Digest::Sha1,
        config::Digest::Sha256 => Digest::Sha256,
        config::Digest::Sha384 => Digest::Sha384,
        config::Digest::Sha512 => Digest::Sha512,
    }
}

/// The TLS settings of a config (`ca`, `cert`, `key`, the peer checks, versions, suites, groups), the same
/// for a client and a server; the caller decides whether `ca` may be missing.
pub fn tls_settings_of(config: &Config) -> Result<TlsSettings, FromConfigError> {
    let t = &config.tls;
    if !t.unread_files.is_empty() {
        return Err(FromConfigError::UnreadCertificateFile);
    }
    Ok(TlsSettings {
        ca: t.ca.iter().map(|c| c.der().to_vec()).collect(),
        cert_chain: t.cert_chain.iter().map(|c| c.der().to_vec()).collect(),
        key: t.key.as_ref().map(|k| {
            let der = k.der().to_vec();
            match k.format {
                PrivateKeyFormat::Pkcs8 => KeyDer::Pkcs8(der),
                PrivateKeyFormat::Sec1 => KeyDer::Sec1(der),
                PrivateKeyFormat::Pkcs1 => KeyDer::Pkcs1(der),
            }
        }),
        checks: PeerChecks {
            remote_cert_tls: t.remote_cert_tls.map(|purpose| match purpose {
                RemoteCertTls::Server => CertPurpose::Server,
                RemoteCertTls::Client => CertPurpose::Client,
            }),
            remote_cert_ku: t.remote_cert_ku.clone(),
            remote_cert_eku: t.remote_cert_eku.clone(),
            verify_x509_name: t.verify_x509_name.as_ref().map(|v| {
                let kind = match v.kind {
                    X509NameType::Subject => X509NameCheck::Subject,
                    X509NameType::Name => X509NameCheck::Name,
                    X509NameType::NamePrefix => X509NameCheck::NamePrefix,
                };
                (v.name.clone(), kind)
            }),
            peer_fingerprints: t.peer_fingerprints.clone(),
            crls: t.crls.clone(),
        },
        tls12_only: t.version_max.is_some_and(|v| v <= TlsVersion::V1_2),
        tls13_only: t.version_min.is_some_and(|v| v >= TlsVersion::V1_3),
        // Names rustls lacks were reported by the parser (a warning naming the line); a list that
        // leaves no suite at all was refused there.
        tls12_suites: t
            .cipher_list
            .as_deref()
            .map(|l| suites::tls12_suites(l).ids),
        tls13_suites: t
            .ciphersuites
            .as_deref()
            .map(|l| suites::tls13_suites(l).ids),
        kx_groups: t.groups.as_deref().map(|l| suites::groups(l).ids),
    })
}
