//! Server certificate verification as OpenVPN does it: the chain must lead to a `ca` certificate at the
//! current wall-clock time (or, without `ca`, the certificate must match a `peer-fingerprint`); the server
//! name is NOT checked against the `remote` (OpenVPN has no SNI) but only by `verify-x509-name`;
//! `remote-cert-tls server` requires the extended key usage TLS Web Server Authentication and a key usage
//! to be present (plain webpki would accept a certificate without EKU); `remote-cert-ku` and
//! `remote-cert-eku` check those extensions explicitly.
//!
//! `crl-verify` as OpenVPN 2.6 with OpenSSL does it (`X509_V_FLAG_CRL_CHECK_ALL`, and its verify callback
//! letting "unable to get certificate CRL" pass): every certificate of the chain whose issuer has a CRL is
//! checked against it, at every depth; a revoked certificate, a CRL whose signature does not verify with its
//! issuer's key and a CRL past its nextUpdate refuse the server; a depth whose issuer has no CRL given is
//! not checked. Version 2 CRLs are webpki's (`RevocationOptions`); version 1 CRLs, which webpki does not
//! read, are checked here on the path webpki built.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{
    CertificateDer, ServerName, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertRevocationListError, CertificateError, DigitallySignedStruct, DistinguishedName, Error,
    SignatureScheme,
};
use webpki::{
    CertRevocationList, ExpirationPolicy, RevocationCheckDepth, RevocationOptions,
    RevocationOptionsBuilder, UnknownStatusPolicy, VerifiedPath,
};

use super::{x509, TlsConfigError};
use crate::keys::crl::{Crl, V1};
use crate::keys::der::{self, tag};

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

/// Which role `remote-cert-tls` requires of the peer's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertPurpose {
    /// `remote-cert-tls server` (a client checking its server): EKU TLS Web Server Authentication.
    Server,
    /// `remote-cert-tls client` (a server checking its clients): EKU TLS Web Client Authentication.
    Client,
}

impl CertPurpose {
    fn eku(self) -> &'static str {
        match self {
            CertPurpose::Server => "serverAuth",
            CertPurpose::Client => "clientAuth",
        }
    }
}

/// The checks OpenVPN applies to the peer's certificate beyond the chain (the server's on a client, a
/// client's on a server).
#[derive(Debug, Clone, Default)]
pub struct PeerChecks {
    /// `remote-cert-tls server|client`: that EKU and a key usage must be present.
    pub remote_cert_tls: Option<CertPurpose>,
    /// `remote-cert-ku`: the key usage must contain one of these values (bitwise); `Some` of an empty list
    /// (the directive without values) requires the key usage extension to be present.
    pub remote_cert_ku: Option<Vec<u16>>,
    /// `remote-cert-eku`: this EKU (OID or name) must be present.
    pub remote_cert_eku: Option<String>,
    /// `verify-x509-name`.
    pub verify_x509_name: Option<(String, X509NameCheck)>,
    /// `peer-fingerprint`: SHA-256 fingerprints of acceptable server certificates.
    pub peer_fingerprints: Vec<[u8; 32]>,
    /// `crl-verify`: revocation lists (DER, checked by the config parser), applied at every depth of the
    /// chain. Needs `ca`: the CRLs' signatures are checked with the keys of the chain.
    pub crls: Vec<Vec<u8>>,
}

/// A check webpki runs on each candidate path it built.
type PathCheck<'a> = dyn Fn(&VerifiedPath<'_>) -> Result<(), webpki::Error> + 'a;

/// The verifier installed into rustls by [`super::client_config`] and [`super::server_config`].
#[derive(Debug)]
pub struct PeerVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    algs: WebPkiSupportedAlgorithms,
    checks: PeerChecks,
    /// Version 2 CRLs, newest first: webpki checks a certificate against the first one from its issuer,
    /// and OpenSSL prefers the most recent CRL too.
    crls_v2: Vec<CertRevocationList<'static>>,
    /// Version 1 CRLs, newest first.
    crls_v1: Vec<Crl>,
    /// Server side: a client without a certificate is refused (`verify-client-cert require`, the
    /// default); `optional` lets it on (username/password then authenticate it).
    client_cert_mandatory: bool,
}

/// Accepts any extended key usage in the chain: `remote-cert-tls`/`remote-cert-eku` look at the server's own
/// certificate only, in [`PeerVerifier::check_leaf`], as OpenVPN does.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

impl PeerVerifier {
    /// Trusts the given `ca` certificates (DER); with none, `peer-fingerprint` must be given.
    pub fn new(
        ca: &[Vec<u8>],
        algs: WebPkiSupportedAlgorithms,
        checks: PeerChecks,
    ) -> Result<Self, TlsConfigError> {
        if ca.is_empty() && checks.peer_fingerprints.is_empty() {
            return Err(TlsConfigError::NoCa);
        }
        if ca.is_empty() && !checks.crls.is_empty() {
            return Err(TlsConfigError::CrlWithoutCa);
        }
        let mut anchors = Vec::with_capacity(ca.len());
        for der in ca {
            let cert = CertificateDer::from(der.as_slice());
            let anchor =
                webpki::anchor_from_trusted_cert(&cert).map_err(|_| TlsConfigError::BadCa)?;
            anchors.push(anchor.to_owned());
        }
        let mut crls = checks
            .crls
            .iter()
            .map(|der| Crl::from_der(der).map_err(|_| TlsConfigError::BadCrl))
            .collect::<Result<Vec<_>, _>>()?;
        crls.sort_by_key(|c| core::cmp::Reverse(c.this_update()));
        let crls_v2 = crls
            .iter()
            .filter_map(|c| c.v2().cloned().map(CertRevocationList::from))
            .collect();
        crls.retain(|c| c.v1().is_some());
        Ok(PeerVerifier {
            anchors,
            algs,
            checks,
            crls_v2,
            crls_v1: crls,
            client_cert_mandatory: true,
        })
    }

    /// The version 1 CRLs against every certificate of a path webpki built: the newest CRL whose issuer is
    /// the certificate's issuer must verify with that issuer's key (an intermediate's key usage, if present,
    /// must allow cRLSign), must not be past its nextUpdate and must not list the certificate's serial.
    fn check_v1_crls(&self, path: &VerifiedPath<'_>, now: UnixTime) -> Result<(), webpki::Error> {
        let mut chain: Vec<&webpki::Cert<'_>> = Vec::new();
        chain.push(path.end_entity());
        chain.extend(path.intermediate_certificates());
        for (depth, cert) in chain.iter().enumerate() {
            let issuer = chain.get(depth + 1);
            // The newest CRL of the issuer (the list is sorted newest first), as OpenSSL picks it.
            if let Some(crl) = self.crls_v1.iter().find(|c| c.issuer() == cert.issuer()) {
                let Some(v1) = crl.v1() else { continue };
                let spki = match issuer {
                    Some(issuer) => {
                        let der = issuer.der();
                        if x509::key_usage(der.as_ref()).is_some_and(|ku| ku & KU_CRL_SIGN == 0) {
                            return Err(webpki::Error::IssuerNotCrlSigner);
                        }
                        let full = issuer.subject_public_key_info();
                        der::expect(full.as_ref(), tag::SEQUENCE)
                            .map(|(seq, _)| seq.content.to_vec())
                            .ok_or(webpki::Error::BadDer)?
                    }
                    None => path.anchor().subject_public_key_info.as_ref().to_vec(),
                };
                verify_v1_signature(self.algs.all, v1, &spki)?;
                if let Some(next) = crl.next_update() {
                    if now.as_secs() >= next {
                        return Err(webpki::Error::CrlExpired {
                            time: now,
                            next_update: UnixTime::since_unix_epoch(Duration::from_secs(next)),
                        });
                    }
                }
                if v1.revokes(cert.serial()) {
                    return Err(webpki::Error::CertRevoked);
                }
            }
        }
        Ok(())
    }

    /// webpki's revocation options for the version 2 CRLs (`None` without any).
    fn revocation<'a>(
        &self,
        crls: &'a [&'a CertRevocationList<'a>],
    ) -> Option<RevocationOptions<'a>> {
        Some(
            RevocationOptionsBuilder::new(crls)
                .ok()?
                .with_depth(RevocationCheckDepth::Chain)
                // A depth whose issuer has no CRL is not checked, as OpenVPN lets OpenSSL's "unable to
                // get certificate CRL" pass.
                .with_status_policy(UnknownStatusPolicy::Allow)
                // OpenSSL refuses a CRL past its nextUpdate ("CRL has expired"), so does OpenVPN.
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build(),
        )
    }

    /// Server side: whether a client must present a certificate (`verify-client-cert require|optional`).
    pub fn with_client_cert_mandatory(mut self, mandatory: bool) -> Self {
        self.client_cert_mandatory = mandatory;
        self
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
        if let Some(purpose) = c.remote_cert_tls {
            // OpenVPN: EKU "TLS Web Server/Client Authentication" and some key usage present.
            if !x509::has_extended_key_usage(der, purpose.eku()) || x509::key_usage(der).is_none() {
                return Err(CertificateError::InvalidPurpose);
            }
        }
        if let Some(wanted) = &c.remote_cert_ku {
            let ku = x509::key_usage(der).ok_or(CertificateError::InvalidPurpose)?;
            if !wanted.is_empty() && !wanted.iter().any(|want| *want != 0 && ku & want == *want) {
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

impl PeerVerifier {
    /// The chain to `ca` at `now` (with the CRLs), then OpenVPN's checks on the end entity: the same for
    /// a server's certificate seen by a client and a client's seen by a server.
    fn verify_peer(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), Error> {
        if !self.anchors.is_empty() {
            let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
            let crls: Vec<&CertRevocationList<'_>> = self.crls_v2.iter().collect();
            let revocation = self.revocation(&crls);
            let v1 = |path: &VerifiedPath<'_>| self.check_v1_crls(path, now);
            let verify_path: Option<&PathCheck<'_>> = (!self.crls_v1.is_empty()).then_some(&v1);
            // Extended key usage is OpenVPN's business at depth 0 only (`check_leaf`): webpki's
            // `KeyUsage::required` would also demand serverAuth from every intermediate, and CA
            // certificates usually carry no EKU at all.
            let chain = cert.verify_for_usage(
                self.algs.all,
                &self.anchors,
                intermediates,
                now,
                AnyEku,
                revocation,
                verify_path,
            );
            chain.map_err(pki_error)?;
        }
        self.check_leaf(end_entity.as_ref())
            .map_err(Error::InvalidCertificate)
    }
}

impl PeerVerifier {
    /// The handshake signature check of both sides (TLS 1.3 or 1.2 rules).
    fn signature(
        &self,
        tls13: bool,
        (message, cert, dss): (&[u8], &CertificateDer<'_>, &DigitallySignedStruct),
    ) -> Result<HandshakeSignatureValid, Error> {
        if tls13 {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
        } else {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
        }
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.verify_peer(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(false, (message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(true, (message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The server side: a client certificate is checked exactly like a server's, against the server's `ca`,
/// CRLs and `remote-cert-tls client`. No CA names are sent in the CertificateRequest (OpenVPN sends
/// OpenSSL's list; clients pick their one certificate anyway).
impl ClientCertVerifier for PeerVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.client_cert_mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.verify_peer(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(false, (message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(true, (message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Why a peer's certificate chain was refused: which check failed, typed, for the reconnect reason and the
/// log line. Its `Display` is the line the engine logs (a revocation reads "server certificate revoked
/// (crl-verify)", so the log says which directive turned the peer away).
#[derive(Debug, Clone, PartialEq)]
pub struct CertRejection {
    /// Whose certificate: "server" (on a client) or "client" (on a server).
    pub whose: &'static str,
    /// The check that failed.
    pub problem: CertProblem,
}

/// The check a refused certificate chain failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CertProblem {
    /// A `crl-verify` CRL lists the certificate.
    Revoked,
    /// The `crl-verify` CRL of its issuer is past its nextUpdate.
    CrlExpired,
    /// A `crl-verify` CRL naming its issuer is not signed by that issuer's key.
    CrlBadSignature,
    /// A `crl-verify` CRL is unusable for another reason.
    CrlUnusable(CertRevocationListError),
    /// Any other certificate check (chain, validity, `remote-cert-tls`, `verify-x509-name`,
    /// `peer-fingerprint`, ...), as rustls names it.
    Invalid(CertificateError),
}

impl fmt::Display for CertRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = self.whose;
        match &self.problem {
            CertProblem::Revoked => write!(f, "{whose} certificate revoked (crl-verify)"),
            CertProblem::CrlExpired => write!(
                f,
                "{whose} certificate rejected: the crl-verify CRL of its issuer has expired (past its \
                 nextUpdate): install a current CRL"
            ),
            CertProblem::CrlBadSignature => write!(
                f,
                "{whose} certificate rejected: a crl-verify CRL naming its issuer is not signed by that \
                 issuer's key"
            ),
            CertProblem::CrlUnusable(c) => {
                write!(f, "{whose} certificate rejected: crl-verify CRL unusable: {c:?}")
            }
            CertProblem::Invalid(c) => write!(f, "{whose} certificate rejected: {c:?}"),
        }
    }
}

/// Why the server's certificate chain was refused (`None` for other TLS errors).
pub fn rejection_reason(e: &Error) -> Option<CertRejection> {
    peer_rejection_reason(e, "server")
}

/// [`rejection_reason`] for either side: `whose` is "server" (on a client) or "client" (on a server).
pub fn peer_rejection_reason(e: &Error, whose: &'static str) -> Option<CertRejection> {
    let problem = match e {
        Error::InvalidCertificate(CertificateError::Revoked) => CertProblem::Revoked,
        Error::InvalidCertificate(
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. },
        ) => CertProblem::CrlExpired,
        Error::InvalidCertRevocationList(CertRevocationListError::BadSignature) => {
            CertProblem::CrlBadSignature
        }
        Error::InvalidCertRevocationList(c) => CertProblem::CrlUnusable(c.clone()),
        Error::InvalidCertificate(c) => CertProblem::Invalid(c.clone()),
        _ => return None,
    };
    Some(CertRejection { whose, problem })
}

/// keyUsage cRLSign (bit 6) in [`x509::key_usage`]'s representation.
const KU_CRL_SIGN: u16 = 0x02;

/// A version 1 CRL's signature with its issuer's SubjectPublicKeyInfo (content of the SEQUENCE), as webpki
/// verifies signed data: the algorithm whose signature and public-key identifiers both match.
fn verify_v1_signature(
    algs: &[&dyn SignatureVerificationAlgorithm],
    v1: &V1,
    spki: &[u8],
) -> Result<(), webpki::Error> {
    let (key_algorithm, rest) = der::expect(spki, tag::SEQUENCE).ok_or(webpki::Error::BadDer)?;
    let (key, _) = der::expect(rest, tag::BIT_STRING).ok_or(webpki::Error::BadDer)?;
    let key = der::bit_string_bytes(key.content).ok_or(webpki::Error::BadDer)?;
    let alg = algs.iter().find(|alg| {
        alg.signature_alg_id().as_ref() == v1.algorithm.as_slice()
            && alg.public_key_alg_id().as_ref() == key_algorithm.content
    });
    match alg {
        Some(alg) => alg
            .verify_signature(key, &v1.tbs, &v1.signature)
            .map_err(|_| webpki::Error::InvalidCrlSignatureForPublicKey),
        None => Err(webpki::Error::UnsupportedCrlSignatureAlgorithmContext(
            webpki::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: v1.algorithm.clone(),
                supported_algorithms: algs.iter().map(|a| a.signature_alg_id()).collect(),
            },
        )),
    }
}

fn pki_error(e: webpki::Error) -> Error {
    use webpki::Error as E;
    let crl = |e| Error::InvalidCertRevocationList(e);
    let cert = |e| Error::InvalidCertificate(e);
    match e {
        E::BadDer | E::BadDerTime => cert(CertificateError::BadEncoding),
        E::CertExpired { .. } => cert(CertificateError::Expired),
        E::CertNotValidYet { .. } => cert(CertificateError::NotValidYet),
        E::CertRevoked => cert(CertificateError::Revoked),
        E::UnknownRevocationStatus => cert(CertificateError::UnknownRevocationStatus),
        E::CrlExpired { time, next_update } => {
            cert(CertificateError::ExpiredRevocationListContext { time, next_update })
        }
        E::UnknownIssuer => cert(CertificateError::UnknownIssuer),
        E::InvalidSignatureForPublicKey => cert(CertificateError::BadSignature),
        E::RequiredEkuNotFoundContext(_) => cert(CertificateError::InvalidPurpose),
        E::InvalidCrlSignatureForPublicKey => crl(CertRevocationListError::BadSignature),
        E::IssuerNotCrlSigner => crl(CertRevocationListError::IssuerInvalidForCrl),
        E::UnsupportedCrlSignatureAlgorithmContext(cx) => crl(
            CertRevocationListError::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: cx.signature_algorithm_id,
                supported_algorithms: cx.supported_algorithms,
            },
        ),
        E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(cx) => crl(
            CertRevocationListError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: cx.signature_algorithm_id,
                public_key_algorithm_id: cx.public_key_algorithm_id,
            },
        ),
        _ => cert(CertificateError::ApplicationVerificationFailure),
    }
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

    fn verifier(checks: PeerChecks) -> PeerVerifier {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        PeerVerifier::new(
            &[],
            algs,
            PeerChecks {
                peer_fingerprints: alloc::vec![FINGERPRINT],
                ..checks
            },
        )
        .unwrap()
    }

    #[test]
    fn openvpn_leaf_checks() {
        let v = verifier(PeerChecks {
            remote_cert_tls: Some(crate::tls::CertPurpose::Server),
            ..Default::default()
        });
        assert_eq!(v.check_leaf(SERVER), Ok(()));
        assert_eq!(
            v.check_leaf(PLAIN),
            Err(CertificateError::ApplicationVerificationFailure),
            "fingerprint"
        );
        let name = |n: &str, k| {
            verifier(PeerChecks {
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
            verifier(PeerChecks {
                remote_cert_ku: Some(alloc::vec![want]),
                ..Default::default()
            })
            .check_leaf(SERVER)
        };
        assert_eq!(ku(0x80), Ok(()));
        assert_eq!(ku(0x88), Ok(()));
        assert_eq!(ku(0xa0), Err(CertificateError::InvalidPurpose));
        let eku = |e: &str| {
            verifier(PeerChecks {
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
            PeerVerifier::new(&[], algs, PeerChecks::default()).err(),
            Some(TlsConfigError::NoCa)
        );
        assert_eq!(
            PeerVerifier::new(&[alloc::vec![1, 2, 3]], algs, PeerChecks::default()).err(),
            Some(TlsConfigError::BadCa)
        );
    }
}
