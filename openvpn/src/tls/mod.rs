//! TLS over the control channel (OpenVPN wire reference §5.1), with rustls' unbuffered client API.
//!
//! Layer: TLS only. [`TlsClient`] eats the in-order control-channel byte stream and produces TLS ciphertext
//! for the reliability layer plus decrypted application records; it never touches packets or sockets.
//! The wall clock reaches rustls through [`WallClock`], which the engine sets from its caller's time.
//! Certificate checks (chain to `ca` at the wall-clock time, `remote-cert-tls server`) live in [`verifier`].

mod clock;
mod session;
pub mod verifier;
pub mod x509;

pub use clock::WallClock;
pub use session::{TlsClient, TlsError};
pub use verifier::{ServerChecks, X509NameCheck};

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ClientConfig;

/// Why a TLS client configuration could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsConfigError {
    /// The `ca` certificate is not a usable trust anchor.
    BadCa,
    /// No `ca` certificate was given.
    NoCa,
    /// The `cert`/`key` pair was rejected (unsupported key type or mismatch).
    BadClientKey,
    /// The TLS protocol versions could not be set.
    Versions,
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsConfigError::BadCa => "ca: certificate is not a usable trust anchor",
            TlsConfigError::NoCa => "ca: no certificate given",
            TlsConfigError::BadClientKey => {
                "cert/key: client key rejected (unsupported type or not matching cert)"
            }
            TlsConfigError::Versions => "tls-version: unsupported protocol versions",
        })
    }
}

/// What the TLS layer needs from the configuration, all as DER.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `ca`: trust anchors for the server chain.
    pub ca: Vec<Vec<u8>>,
    /// `cert` (and `extra-certs`): the client certificate chain, leaf first. Empty = no client certificate.
    pub client_chain: Vec<Vec<u8>>,
    /// `key`: the client private key (PKCS#8, SEC1 or PKCS#1 DER).
    pub client_key: Option<ClientKeyDer>,
    /// `remote-cert-tls`, `remote-cert-ku`, `remote-cert-eku`, `verify-x509-name`, `peer-fingerprint`.
    pub checks: ServerChecks,
    /// `tls-version-max 1.2`: offer TLS 1.2 only.
    pub tls12_only: bool,
    /// `tls-version-min 1.3`: offer TLS 1.3 only.
    pub tls13_only: bool,
}

/// The client private key with its DER container type.
#[derive(Debug, Clone)]
pub enum ClientKeyDer {
    /// PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`).
    Pkcs8(Vec<u8>),
    /// SEC1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    Sec1(Vec<u8>),
    /// PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    Pkcs1(Vec<u8>),
}

impl ClientKeyDer {
    fn to_rustls(&self) -> PrivateKeyDer<'static> {
        match self {
            ClientKeyDer::Pkcs8(d) => PrivateKeyDer::Pkcs8(d.clone().into()),
            ClientKeyDer::Sec1(d) => PrivateKeyDer::Sec1(d.clone().into()),
            ClientKeyDer::Pkcs1(d) => PrivateKeyDer::Pkcs1(d.clone().into()),
        }
    }
}

/// Builds the rustls client configuration: ring provider, the caller's wall clock, our verifier.
/// OpenVPN sends no SNI and no ALPN (§5.1); [`TlsClient::new`] uses an IP server name so none is sent.
pub fn client_config(
    settings: &TlsSettings,
    clock: WallClock,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algs = provider.signature_verification_algorithms;
    let verifier =
        verifier::OpenVpnServerVerifier::new(&settings.ca, algs, settings.checks.clone())?;
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.tls13_only {
        &[&rustls::version::TLS13]
    } else if settings.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ClientConfig::builder_with_details(provider, Arc::new(clock))
        .with_protocol_versions(versions)
        .map_err(|_| TlsConfigError::Versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match &settings.client_key {
        Some(key) if !settings.client_chain.is_empty() => {
            let chain: Vec<CertificateDer<'static>> = settings
                .client_chain
                .iter()
                .map(|c| CertificateDer::from(c.clone()))
                .collect();
            builder
                .with_client_auth_cert(chain, key.to_rustls())
                .map_err(|_| TlsConfigError::BadClientKey)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.enable_sni = false;
    // Every OpenVPN renegotiation is a fresh full handshake (§5.1): no resumption state.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
