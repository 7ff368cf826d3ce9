//! Server certificate verification as OpenVPN does it: the chain must lead to a `ca` certificate at the
//! current wall-clock time; the server name is NOT checked (OpenVPN has no SNI and checks names only with
//! `verify-x509-name`); `remote-cert-tls server` requires the extended key usage TLS Web Server
//! Authentication (id-kp-serverAuth) to be present, where plain webpki would accept a certificate without EKU.

use alloc::vec::Vec;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use super::TlsConfigError;

/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1, DER value bytes.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// The verifier installed into rustls by [`super::client_config`].
#[derive(Debug)]
pub struct OpenVpnServerVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    algs: WebPkiSupportedAlgorithms,
    require_server_eku: bool,
}

impl OpenVpnServerVerifier {
    /// Trusts the given `ca` certificates (DER).
    pub fn new(
        ca: &[Vec<u8>],
        algs: WebPkiSupportedAlgorithms,
        require_server_eku: bool,
    ) -> Result<Self, TlsConfigError> {
        if ca.is_empty() {
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
            require_server_eku,
        })
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
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        let usage = if self.require_server_eku {
            webpki::KeyUsage::required(EKU_SERVER_AUTH)
        } else {
            webpki::KeyUsage::server_auth()
        };
        cert.verify_for_usage(
            self.algs.all,
            &self.anchors,
            intermediates,
            now,
            usage,
            None,
            None,
        )
        .map_err(pki_error)?;
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
