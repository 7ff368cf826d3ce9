//! X.509 certificates from PEM text (`ca`, `cert`, `extra-certs`): DER bytes plus the one field the loader
//! needs itself, the SubjectPublicKeyInfo (RFC 5280 §4.1).
//!
//! Layer: pure parser. Path validation and name checks belong to the TLS layer (rustls/webpki).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::der::{self, tag};
use super::error::KeyError;
use super::pem;

const LABELS: [&str; 3] = ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"];

/// One DER-encoded X.509 certificate whose outer structure has been checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate({} bytes DER)", self.der.len())
    }
}

impl Certificate {
    /// Checks the Certificate / TBSCertificate structure up to the SubjectPublicKeyInfo.
    pub fn from_der(der: Vec<u8>) -> Result<Self, KeyError> {
        spki_of(&der).ok_or(KeyError::BadCertificate)?;
        Ok(Certificate { der })
    }

    /// The DER bytes (what rustls takes as `CertificateDer`).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The whole SubjectPublicKeyInfo element.
    pub fn subject_public_key_info(&self) -> &[u8] {
        spki_of(&self.der).unwrap_or(&[])
    }
}

/// The TBSCertificate fields oxvpn looks at, as slices into the certificate's DER.
pub(crate) struct TbsFields<'a> {
    /// The subject Name element's content (its RDN SET elements).
    pub subject: &'a [u8],
    /// The whole SubjectPublicKeyInfo element.
    pub spki: &'a [u8],
    /// The content of the Extensions SEQUENCE: `Ok(None)` when absent, `Err(())` when the [3] element does
    /// not hold a SEQUENCE (the server certificate checks then fail closed; the key match does not care).
    pub extensions: Result<Option<&'a [u8]>, ()>,
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue };
/// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity, subject,
/// subjectPublicKeyInfo, …, [3] extensions OPTIONAL } (RFC 5280 §4.1). The one walk over a certificate that
/// both the cert/key match here and the server certificate checks in `tls::x509` use.
pub(crate) fn tbs_fields(der: &[u8]) -> Option<TbsFields<'_>> {
    /// [3] EXPLICIT Extensions.
    const EXTENSIONS: u8 = 0xa3;
    let (cert, _) = der::expect(der, tag::SEQUENCE)?;
    let (tbs, _) = der::expect(cert.content, tag::SEQUENCE)?;
    let mut fields = tbs.content;
    let (first, after) = der::read(fields)?;
    if first.tag == tag::CONTEXT_0 {
        fields = after;
    }
    let (_serial, fields) = der::expect(fields, tag::INTEGER)?;
    let (_signature, fields) = der::expect(fields, tag::SEQUENCE)?;
    let (_issuer, fields) = der::expect(fields, tag::SEQUENCE)?;
    let (_validity, fields) = der::expect(fields, tag::SEQUENCE)?;
    let (subject, fields) = der::expect(fields, tag::SEQUENCE)?;
    let (spki, mut fields) = der::expect(fields, tag::SEQUENCE)?;
    let mut extensions = Ok(None);
    while let Some((tlv, rest)) = der::read(fields) {
        if tlv.tag == EXTENSIONS {
            extensions = der::expect(tlv.content, tag::SEQUENCE)
                .map(|(seq, _)| Some(seq.content))
                .ok_or(());
        }
        fields = rest;
    }
    Some(TbsFields {
        subject: subject.content,
        spki: spki.raw,
        extensions,
    })
}

/// The SubjectPublicKeyInfo of a certificate that is exactly one DER element.
fn spki_of(der: &[u8]) -> Option<&[u8]> {
    let (_, rest) = der::expect(der, tag::SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    tbs_fields(der).map(|tbs| tbs.spki)
}

/// Parses every certificate in PEM `text` (text around the blocks, such as `openssl x509 -text` output, is
/// ignored). At least one certificate is required; a non-certificate PEM block is an error.
pub fn parse_chain(text: &str) -> Result<Vec<Certificate>, KeyError> {
    let mut chain = Vec::new();
    for block in pem::blocks(text)? {
        if !LABELS.contains(&block.label) {
            return Err(KeyError::UnexpectedPemLabel);
        }
        chain.push(Certificate::from_der(block.der)?);
    }
    if chain.is_empty() {
        return Err(KeyError::MissingPemBlock("CERTIFICATE"));
    }
    Ok(chain)
}

/// Writes a chain back as PEM.
pub fn chain_to_pem(chain: &[Certificate]) -> String {
    let mut out = String::new();
    for cert in chain {
        pem::encode("CERTIFICATE", cert.der(), &mut out);
    }
    out
}
