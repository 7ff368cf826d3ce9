//! Server certificate verification as OpenVPN does it: the chain must lead to a `ca` certificate at the
//! current wall-clock time (or, without `ca`, the certificate must match a `peer-fingerprint`); the server
//! name is NOT checked against the `remote` (OpenVPN has no SNI) but only by `verify-x509-name`;
//! `remote-cert-tls server` requires the extended key usage TLS Web Server Authentication and a key usage
//! to be present (plain webpki would accept a certificate without EKU); `remote-cert-ku` and
//! `remote-cert-eku` check those extensions explicitly.

use alloc::string::String;
use alloc::vec::Vec;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use super::{x509, TlsConfigError};

/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1, DER value bytes.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// Which part of the certificate `verify-x509-name` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X509NameCheck {
    /// The whole subject, as OpenVPN prints it (`C=US, O=Example, CN=server`).
    Subject,
    /// The common name, exactly.
    Name,
    /// The common name starts with the given text.
    NamePrefix,
}

/// The checks OpenVPN applies to the server certificate beyond the chain.
#[derive(Debug, Clone, Default)]
pub struct ServerChecks {
    /// `remote-cert-tls server`: EKU serverAuth and a key usage must be present.
    pub remote_cert_tls_server: bool,
    /// `remote-cert-ku`: the key usage must contain one of these values (bitwise).
    pub remote_cert_ku: Vec<u16>,
    /// `remote-cert-eku`: this EKU (OID or name) must be present.
    pub remote_cert_eku: Option<String>,
    /// `verify-x509-name`.
    pub verify_x509_name: Option<(String, X509NameCheck)>,
    /// `peer-fingerprint`: SHA-256 fingerprints of acceptable server certificates.
    pub peer_fingerprints: Vec<[u8; 32]>,
}

/// The verifier installed into rustls by [`super::client_config`].
#[derive(Debug)]
pub struct OpenVpnServerVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    algs: WebPkiSupportedAlgorithms,
    checks: ServerChecks,
}

/// Accepts any extended key usage: without `remote-cert-tls`/`remote-cert-eku` OpenVPN does not look.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

impl OpenVpnServerVerifier {
    /// Trusts the given `ca` certificates (DER); with none, `peer-fingerprint` must be given.
    pub fn new(
        ca: &[Vec<u8>],
        algs: WebPkiSupportedAlgorithms,
        checks: ServerChecks,
    ) -> Result<Self, TlsConfigError> {
        if ca.is_empty() && checks.peer_fingerprints.is_empty() {
            return Err(TlsConfigError::NoCa);
        }
        let mut anchors = Vec::with_capacity(ca.len());
        for der in ca {
            let cert = CertificateDer::from(der.as_slice());
            let anchor =
                webpki::anchor_from_trusted_cert(&cert).map_err(|_| TlsConfigError::BadCa)?;
            anchors.push(anchor.to_owned());
        }
        Ok(OpenVpnServerVerifier {
            anchors,
            algs,
            checks,
        })
    }

    /// OpenVPN's own checks on the end-entity certificate (after the chain, or instead of it).
    fn check_leaf(&self, der: &[u8]) -> Result<(), CertificateError> {
        let c = &self.checks;
        if !c.peer_fingerprints.is_empty() {
            let digest = ring::digest::digest(&ring::digest::SHA256, der);
            if !c
                .peer_fingerprints
                .iter()
                .any(|f| f[..] == *digest.as_ref())
            {
                return Err(CertificateError::ApplicationVerificationFailure);
            }
        }
        if c.remote_cert_tls_server {
            // OpenVPN: EKU "TLS Web Server Authentication" and some key usage present.
            if !x509::has_extended_key_usage(der, "serverAuth") || x509::key_usage(der).is_none() {
                return Err(CertificateError::InvalidPurpose);
            }
        }
        if !c.remote_cert_ku.is_empty() {
            let ku = x509::key_usage(der).ok_or(CertificateError::InvalidPurpose)?;
            if !c
                .remote_cert_ku
                .iter()
                .any(|want| *want != 0 && ku & want == *want)
            {
                return Err(CertificateError::InvalidPurpose);
            }
        }
        if let Some(eku) = &c.remote_cert_eku {
            if !x509::has_extended_key_usage(der, eku) {
                return Err(CertificateError::InvalidPurpose);
            }
        }
        if let Some((name, kind)) = &c.verify_x509_name {
            let ok = match kind {
                X509NameCheck::Subject => x509::subject_string(der).is_some_and(|s| s == *name),
                X509NameCheck::Name => x509::common_name(der).is_some_and(|cn| cn == *name),
                X509NameCheck::NamePrefix => {
                    x509::common_name(der).is_some_and(|cn| cn.starts_with(name.as_str()))
                }
            };
            if !ok {
                return Err(CertificateError::NotValidForName);
            }
        }
        Ok(())
    }
}

impl ServerCertVerifier for OpenVpnServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if !self.anchors.is_empty() {
            let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
            let chain = if self.checks.remote_cert_tls_server {
                cert.verify_for_usage(
                    self.algs.all,
                    &self.anchors,
                    intermediates,
                    now,
                    webpki::KeyUsage::required(EKU_SERVER_AUTH),
                    None,
                    None,
                )
            } else {
                cert.verify_for_usage(
                    self.algs.all,
                    &self.anchors,
                    intermediates,
                    now,
                    AnyEku,
                    None,
                    None,
                )
            };
            chain.map_err(pki_error)?;
        }
        self.check_leaf(end_entity.as_ref())
            .map_err(Error::InvalidCertificate)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

fn pki_error(e: webpki::Error) -> Error {
    use webpki::Error as E;
    Error::InvalidCertificate(match e {
        E::BadDer | E::BadDerTime => CertificateError::BadEncoding,
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::CertRevoked => CertificateError::Revoked,
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        E::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        _ => CertificateError::ApplicationVerificationFailure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &[u8] = include_bytes!("testdata/server-eku.der");
    const PLAIN: &[u8] = include_bytes!("testdata/plain.der");
    const FINGERPRINT: [u8; 32] = [
        0x2e, 0x1f, 0x5c, 0xb1, 0x41, 0xee, 0x45, 0xa0, 0xa3, 0xe3, 0x50, 0xad, 0x2d, 0xbd, 0xab,
        0xf1, 0x1f, 0x89, 0xc6, 0xf2, 0x9e, 0xe1, 0xc8, 0x06, 0x38, 0xe5, 0xc7, 0x9e, 0x45, 0x78,
        0x0c, 0xef,
    ];

    fn verifier(checks: ServerChecks) -> OpenVpnServerVerifier {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        OpenVpnServerVerifier::new(
            &[],
            algs,
            ServerChecks {
                peer_fingerprints: alloc::vec![FINGERPRINT],
                ..checks
            },
        )
        .unwrap()
    }

    #[test]
    fn openvpn_leaf_checks() {
        let v = verifier(ServerChecks {
            remote_cert_tls_server: true,
            ..Default::default()
        });
        assert_eq!(v.check_leaf(SERVER), Ok(()));
        assert_eq!(
            v.check_leaf(PLAIN),
            Err(CertificateError::ApplicationVerificationFailure),
            "fingerprint"
        );
        let name = |n: &str, k| {
            verifier(ServerChecks {
                verify_x509_name: Some((n.into(), k)),
                ..Default::default()
            })
            .check_leaf(SERVER)
        };
        assert_eq!(name("vpn.example.org", X509NameCheck::Name), Ok(()));
        assert_eq!(
            name("vpn.example", X509NameCheck::Name),
            Err(CertificateError::NotValidForName)
        );
        assert_eq!(name("vpn.ex", X509NameCheck::NamePrefix), Ok(()));
        assert_eq!(
            name(
                "C=US, ST=CA, O=oxvpn test, CN=vpn.example.org",
                X509NameCheck::Subject
            ),
            Ok(())
        );
        assert_eq!(
            name("CN=vpn.example.org", X509NameCheck::Subject),
            Err(CertificateError::NotValidForName)
        );
        let ku = |want: u16| {
            verifier(ServerChecks {
                remote_cert_ku: alloc::vec![want],
                ..Default::default()
            })
            .check_leaf(SERVER)
        };
        assert_eq!(ku(0x80), Ok(()));
        assert_eq!(ku(0x88), Ok(()));
        assert_eq!(ku(0xa0), Err(CertificateError::InvalidPurpose));
        let eku = |e: &str| {
            verifier(ServerChecks {
                remote_cert_eku: Some(e.into()),
                ..Default::default()
            })
            .check_leaf(SERVER)
        };
        assert_eq!(eku("TLS Web Server Authentication"), Ok(()));
        assert_eq!(
            eku("TLS Web Client Authentication"),
            Err(CertificateError::InvalidPurpose)
        );
    }

    #[test]
    fn needs_a_ca_or_a_fingerprint() {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        assert_eq!(
            OpenVpnServerVerifier::new(&[], algs, ServerChecks::default()).err(),
            Some(TlsConfigError::NoCa)
        );
        assert_eq!(
            OpenVpnServerVerifier::new(&[alloc::vec![1, 2, 3]], algs, ServerChecks::default())
                .err(),
            Some(TlsConfigError::BadCa)
        );
    }
}
