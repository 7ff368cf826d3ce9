//! TLS over the control channel (OpenVPN wire reference §5.1), with rustls' unbuffered client API.
//!
//! Layer: TLS only. [`TlsSession`] eats the in-order control-channel byte stream and produces TLS ciphertext
//! for the reliability layer plus decrypted application records; it never touches packets or sockets.
//! The wall clock reaches rustls through [`WallClock`], which the engine sets from its caller's time.
//! Certificate checks (chain to `ca` at the wall-clock time, `remote-cert-tls server`) live in [`verifier`].

mod clock;
mod session;
pub mod suites;
pub mod verifier;
pub mod x509;

pub use clock::WallClock;
pub use session::{TlsError, TlsSession};
pub use verifier::{
    peer_rejection_reason, rejection_reason, CertProblem, CertPurpose, CertRejection, PeerChecks,
    X509NameCheck,
};

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ServerConfig};

/// Why a TLS configuration (client or server) could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsConfigError {
    /// The `ca` certificate is not a usable trust anchor.
    BadCa,
    /// No `ca` certificate was given.
    NoCa,
    /// The `cert`/`key` pair was rejected (unsupported key type or mismatch).
    BadKey,
    /// The TLS protocol versions could not be set.
    Versions,
    /// `tls-cipher`/`tls-ciphersuites` leave no cipher suite for the allowed TLS versions.
    NoSuites,
    /// `tls-groups` names no key exchange group rustls implements.
    NoGroups,
    /// A `crl-verify` list is not a usable CRL (the config parser refuses these first).
    BadCrl,
    /// `crl-verify` without `ca`: a CRL's signature can only be checked with the chain's keys.
    CrlWithoutCa,
    /// A server needs `cert` and `key`.
    NoServerCert,
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsConfigError::BadCa => "ca: certificate is not a usable trust anchor",
            TlsConfigError::NoCa => "ca: no certificate given",
            TlsConfigError::BadKey => {
                "cert/key: key rejected (unsupported type or not matching cert)"
            }
            TlsConfigError::Versions => "tls-version: unsupported protocol versions",
            TlsConfigError::NoSuites => {
                "tls-cipher/tls-ciphersuites: no supported cipher suite for the allowed TLS versions"
            }
            TlsConfigError::NoGroups => "tls-groups: no supported key exchange group",
            TlsConfigError::BadCrl => "crl-verify: not a usable certificate revocation list",
            TlsConfigError::NoServerCert => "a server needs cert and key",
            TlsConfigError::CrlWithoutCa => {
                "crl-verify needs ca: a CRL's signature is checked with the CA chain's keys"
            }
        })
    }
}

/// What the TLS layer needs from the configuration, all as DER. `Debug` shows the certificates' count
/// and the key's type and length, not the key.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// `ca`: trust anchors for the peer's chain.
    pub ca: Vec<Vec<u8>>,
    /// `cert` (and `extra-certs`): our certificate chain, leaf first. Empty = no certificate (a client
    /// authenticating with a password only; a server always has one).
    pub cert_chain: Vec<Vec<u8>>,
    /// `key`: our private key (PKCS#8, SEC1 or PKCS#1 DER).
    pub key: Option<KeyDer>,
    /// `remote-cert-tls`, `remote-cert-ku`, `remote-cert-eku`, `verify-x509-name`, `peer-fingerprint`,
    /// `crl-verify`.
    pub checks: PeerChecks,
    /// `tls-version-max 1.2`: offer TLS 1.2 only.
    pub tls12_only: bool,
    /// `tls-version-min 1.3`: offer TLS 1.3 only.
    pub tls13_only: bool,
    /// `tls-cipher`: the TLS 1.2 suites to offer, as IANA ids in preference order ([`suites`]); `None` =
    /// rustls' defaults, empty = TLS 1.2 is not offered.
    pub tls12_suites: Option<Vec<u16>>,
    /// `tls-ciphersuites`: the TLS 1.3 suites, as for [`tls12_suites`](Self::tls12_suites).
    pub tls13_suites: Option<Vec<u16>>,
    /// `tls-groups`: the key exchange groups to offer, as IANA NamedGroup ids in preference order
    /// ([`suites::groups`]); `None` = rustls' defaults (X25519, P-256, P-384).
    pub kx_groups: Option<Vec<u16>>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca", &format_args!("{} certificates", self.ca.len()))
            .field(
                "cert_chain",
                &format_args!("{} certificates", self.cert_chain.len()),
            )
            .field("key", &self.key)
            .field("checks", &self.checks)
            .field("tls12_only", &self.tls12_only)
            .field("tls13_only", &self.tls13_only)
            .field("tls12_suites", &self.tls12_suites)
            .field("tls13_suites", &self.tls13_suites)
            .field("kx_groups", &self.kx_groups)
            .finish()
    }
}

/// Our private key with its DER container type. Wiped when dropped; `Debug` shows the type and
/// length only.
#[derive(Clone)]
pub enum KeyDer {
    /// PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`).
    Pkcs8(Vec<u8>),
    /// SEC1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    Sec1(Vec<u8>),
    /// PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    Pkcs1(Vec<u8>),
}

impl KeyDer {
    fn der(&self) -> &Vec<u8> {
        match self {
            KeyDer::Pkcs8(d) | KeyDer::Sec1(d) | KeyDer::Pkcs1(d) => d,
        }
    }
}

impl fmt::Debug for KeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            KeyDer::Pkcs8(_) => "Pkcs8",
            KeyDer::Sec1(_) => "Sec1",
            KeyDer::Pkcs1(_) => "Pkcs1",
        };
        write!(f, "{kind}(<redacted, {} bytes>)", self.der().len())
    }
}

impl zeroize::Zeroize for KeyDer {
    fn zeroize(&mut self) {
        match self {
            KeyDer::Pkcs8(d) | KeyDer::Sec1(d) | KeyDer::Pkcs1(d) => d.zeroize(),
        }
    }
}

impl Drop for KeyDer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self);
    }
}

impl KeyDer {
    fn to_rustls(&self) -> PrivateKeyDer<'static> {
        match self {
            KeyDer::Pkcs8(d) => PrivateKeyDer::Pkcs8(d.clone().into()),
            KeyDer::Sec1(d) => PrivateKeyDer::Sec1(d.clone().into()),
            KeyDer::Pkcs1(d) => PrivateKeyDer::Pkcs1(d.clone().into()),
        }
    }
}

/// Builds the rustls client configuration: ring provider, the caller's wall clock, our verifier.
/// OpenVPN sends no SNI and no ALPN (§5.1); [`TlsSession::new`] uses an IP server name so none is sent.
pub fn client_config(
    settings: &TlsSettings,
    clock: WallClock,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let (provider, versions) = provider(settings)?;
    let algs = provider.signature_verification_algorithms;
    let verifier = verifier::PeerVerifier::new(&settings.ca, algs, settings.checks.clone())?;
    let builder = ClientConfig::builder_with_details(provider, Arc::new(clock))
        .with_protocol_versions(versions)
        .map_err(|_| TlsConfigError::Versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match &settings.key {
        Some(key) if !settings.cert_chain.is_empty() => {
            let chain: Vec<CertificateDer<'static>> = settings
                .cert_chain
                .iter()
                .map(|c| CertificateDer::from(c.clone()))
                .collect();
            builder
                .with_client_auth_cert(chain, key.to_rustls())
                .map_err(|_| TlsConfigError::BadKey)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.enable_sni = false;
    // Every OpenVPN renegotiation is a fresh full handshake (§5.1): no resumption state.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
const ONLY_13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const ONLY_12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// The ring provider restricted to the configured suites and groups, and the TLS versions to offer or
/// accept: the same rules for both roles.
fn provider(
    settings: &TlsSettings,
) -> Result<
    (
        Arc<rustls::crypto::CryptoProvider>,
        &'static [&'static rustls::SupportedProtocolVersion],
    ),
    TlsConfigError,
> {
    let mut provider = rustls::crypto::ring::default_provider();
    let tls13 = restrict(
        &provider.cipher_suites,
        rustls::ProtocolVersion::TLSv1_3,
        settings.tls13_suites.as_deref(),
    );
    let tls12 = restrict(
        &provider.cipher_suites,
        rustls::ProtocolVersion::TLSv1_2,
        settings.tls12_suites.as_deref(),
    );
    let offer13 = !settings.tls12_only && !tls13.is_empty();
    let offer12 = !settings.tls13_only && !tls12.is_empty();
    let versions: &[&rustls::SupportedProtocolVersion] = match (offer13, offer12) {
        (true, true) => BOTH,
        (true, false) => ONLY_13,
        (false, true) => ONLY_12,
        (false, false) => return Err(TlsConfigError::NoSuites),
    };
    provider.cipher_suites = tls13.into_iter().chain(tls12).collect();
    if let Some(ids) = &settings.kx_groups {
        let all = core::mem::take(&mut provider.kx_groups);
        provider.kx_groups = ids
            .iter()
            .filter_map(|id| all.iter().find(|g| u16::from(g.name()) == *id).copied())
            .collect();
        if provider.kx_groups.is_empty() {
            return Err(TlsConfigError::NoGroups);
        }
    }
    Ok((Arc::new(provider), versions))
}

/// Builds the rustls server configuration: ring provider, the caller's wall clock, our certificate and
/// key, and client certificates checked by [`verifier::PeerVerifier`] (`ca`, CRLs, `remote-cert-tls
/// client`). `client_cert`: `verify-client-cert require` (`Some(true)`), `optional` (`Some(false)`) or
/// `none` (`None`: no certificate is asked for). No session tickets or resumption: every OpenVPN
/// renegotiation is a full handshake (§5.1).
pub fn server_config(
    settings: &TlsSettings,
    clock: WallClock,
    client_cert: Option<bool>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let (provider, versions) = provider(settings)?;
    let algs = provider.signature_verification_algorithms;
    let builder = ServerConfig::builder_with_details(provider, Arc::new(clock))
        .with_protocol_versions(versions)
        .map_err(|_| TlsConfigError::Versions)?;
    let builder = match client_cert {
        None => builder.with_no_client_auth(),
        Some(mandatory) => {
            let verifier =
                verifier::PeerVerifier::new(&settings.ca, algs, settings.checks.clone())?
                    .with_client_cert_mandatory(mandatory);
            builder.with_client_cert_verifier(Arc::new(verifier))
        }
    };
    let chain: Vec<CertificateDer<'static>> = settings
        .cert_chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let Some(key) = settings.key.as_ref().filter(|_| !chain.is_empty()) else {
        return Err(TlsConfigError::NoServerCert);
    };
    let mut config = builder
        .with_single_cert(chain, key.to_rustls())
        .map_err(|_| TlsConfigError::BadKey)?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The provider's suites of one TLS version: all of them in the provider's order, or those `ids` names in
/// the order of `ids` (unknown ids were dropped by [`suites`] already; any left are ignored here).
fn restrict(
    all: &[rustls::SupportedCipherSuite],
    version: rustls::ProtocolVersion,
    ids: Option<&[u16]>,
) -> Vec<rustls::SupportedCipherSuite> {
    let of_version = all.iter().filter(|s| s.version().version == version);
    match ids {
        None => of_version.copied().collect(),
        Some(ids) => ids
            .iter()
            .filter_map(|id| {
                of_version
                    .clone()
                    .find(|s| u16::from(s.suite()) == *id)
                    .copied()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tls12: Option<&[u16]>, tls13: Option<&[u16]>) -> TlsSettings {
        TlsSettings {
            checks: PeerChecks {
                peer_fingerprints: alloc::vec![[0; 32]],
                ..Default::default()
            },
            tls12_suites: tls12.map(<[u16]>::to_vec),
            tls13_suites: tls13.map(<[u16]>::to_vec),
            ..Default::default()
        }
    }

    fn offered(settings: &TlsSettings) -> Vec<u16> {
        let config = client_config(settings, WallClock::new(0)).unwrap();
        config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| u16::from(s.suite()))
            .collect()
    }

    #[test]
    fn default_offers_every_ring_suite() {
        assert_eq!(offered(&settings(None, None)).len(), 9);
    }

    #[test]
    fn restricted_lists_keep_their_order_and_version() {
        // tls-cipher ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384, TLS 1.3 untouched.
        let ids = offered(&settings(Some(&[0xcca8, 0xc02c]), None));
        assert_eq!(ids, [0x1302, 0x1301, 0x1303, 0xcca8, 0xc02c]);
        // tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256 and an empty TLS 1.2 list: one suite in all.
        assert_eq!(offered(&settings(Some(&[]), Some(&[0x1303]))), [0x1303]);
    }

    #[test]
    fn tls_groups_restrict_the_key_exchange() {
        let groups = |ids: Option<&[u16]>| {
            let mut s = settings(None, None);
            s.kx_groups = ids.map(<[u16]>::to_vec);
            client_config(&s, WallClock::new(0)).map(|c| {
                c.crypto_provider()
                    .kx_groups
                    .iter()
                    .map(|g| u16::from(g.name()))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(groups(None), Ok(alloc::vec![0x001d, 0x0017, 0x0018]));
        assert_eq!(
            groups(Some(&[0x0018, 0x001d])),
            Ok(alloc::vec![0x0018, 0x001d])
        );
        assert_eq!(groups(Some(&[0x0019])), Err(TlsConfigError::NoGroups));
    }

    #[test]
    fn no_suite_for_any_allowed_version_is_an_error() {
        let both_empty = settings(Some(&[]), Some(&[]));
        assert_eq!(
            client_config(&both_empty, WallClock::new(0)).err(),
            Some(TlsConfigError::NoSuites)
        );
        let mut tls12_only = settings(Some(&[]), None);
        tls12_only.tls12_only = true;
        assert_eq!(
            client_config(&tls12_only, WallClock::new(0)).err(),
            Some(TlsConfigError::NoSuites)
        );
    }
}
