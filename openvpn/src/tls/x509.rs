//! The certificate fields OpenVPN's own checks look at (RFC 5280 §4.1, §4.2.1.3, §4.2.1.12): the subject
//! name for `verify-x509-name`, the key usage for `remote-cert-ku` and the extended key usages for
//! `remote-cert-eku`. Chain validation itself is webpki's.
//!
//! Layer: pure DER walk over the server's certificate; never panics, returns `None` on malformed input.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::keys::der::{self, tag};

const BOOLEAN: u8 = 0x01;
const SET: u8 = 0x31;
/// id-ce-keyUsage 2.5.29.15.
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// id-ce-extKeyUsage 2.5.29.37.
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// id-at-commonName 2.5.4.3.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// The TBSCertificate fields after the version: (subject element content, extensions content if any).
fn tbs_parts(cert: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let tbs = crate::keys::cert::tbs_fields(cert)?;
    Some((tbs.subject, tbs.extensions.ok()?))
}

/// Short names OpenVPN prints for the usual attribute types (2.5.4.x and emailAddress).
fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        other => oid_dotted(other),
    }
}

/// Dotted form of an OID's content bytes.
pub fn oid_dotted(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (acc / 40).min(2);
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(|p| format!("{p}"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The subject's attributes in certificate order as (short name, value) pairs.
pub fn subject_attributes(cert: &[u8]) -> Option<Vec<(String, String)>> {
    let (mut rdns, _) = tbs_parts(cert)?;
    let mut out = Vec::new();
    while let Some((set, rest)) = der::expect(rdns, SET) {
        let mut atvs = set.content;
        while let Some((atv, more)) = der::expect(atvs, tag::SEQUENCE) {
            let (oid, value) = der::expect(atv.content, tag::OID)?;
            let (value, _) = der::read(value)?;
            let text = String::from_utf8_lossy(value.content).into_owned();
            out.push((attribute_name(oid.content), text));
            atvs = more;
        }
        rdns = rest;
    }
    Some(out)
}

/// The subject as OpenVPN 2.6 prints it: `C=US, ST=CA, O=Example, CN=server`.
pub fn subject_string(cert: &[u8]) -> Option<String> {
    let attrs = subject_attributes(cert)?;
    Some(
        attrs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The (last) common name of the subject.
pub fn common_name(cert: &[u8]) -> Option<String> {
    let (mut rdns, _) = tbs_parts(cert)?;
    let mut cn = None;
    while let Some((set, rest)) = der::expect(rdns, SET) {
        let mut atvs = set.content;
        while let Some((atv, more)) = der::expect(atvs, tag::SEQUENCE) {
            if let Some((oid, value)) = der::expect(atv.content, tag::OID) {
                if oid.content == OID_CN {
                    cn = der::read(value)
                        .map(|(v, _)| String::from_utf8_lossy(v.content).into_owned());
                }
            }
            atvs = more;
        }
        rdns = rest;
    }
    cn
}

/// The value of the extension `oid`, if present.
fn extension<'a>(cert: &'a [u8], oid: &[u8]) -> Option<&'a [u8]> {
    let (_, mut exts) = tbs_parts(cert)?;
    let mut list = exts.take()?;
    while let Some((ext, rest)) = der::expect(list, tag::SEQUENCE) {
        let (id, body) = der::expect(ext.content, tag::OID)?;
        if id.content == oid {
            let body = match der::read(body) {
                Some((critical, after)) if critical.tag == BOOLEAN => after,
                _ => body,
            };
            return Some(der::expect(body, tag::OCTET_STRING)?.0.content);
        }
        list = rest;
    }
    None
}

/// The key usage as OpenVPN compares it: bit 0 (digitalSignature) = 0x80, … bit 7 = 0x01, bit 8 = 0x8000.
pub fn key_usage(cert: &[u8]) -> Option<u16> {
    let value = extension(cert, OID_KEY_USAGE)?;
    let (bits, _) = der::expect(value, tag::BIT_STRING)?;
    let bytes = bits.content.get(1..)?;
    let first = u16::from(bytes.first().copied().unwrap_or(0));
    let second = u16::from(bytes.get(1).copied().unwrap_or(0));
    Some(first | (second << 8))
}

/// The extended key usage OIDs (content bytes), if the extension is present.
pub fn extended_key_usages(cert: &[u8]) -> Option<Vec<&[u8]>> {
    let value = extension(cert, OID_EXT_KEY_USAGE)?;
    let (seq, _) = der::expect(value, tag::SEQUENCE)?;
    let mut list = seq.content;
    let mut out = Vec::new();
    while let Some((oid, rest)) = der::expect(list, tag::OID) {
        out.push(oid.content);
        list = rest;
    }
    Some(out)
}

/// Whether the certificate's EKU list contains `wanted`: a dotted OID, or a long or short name
/// ("TLS Web Server Authentication", "serverAuth", …) as `remote-cert-eku` accepts.
pub fn has_extended_key_usage(cert: &[u8], wanted: &str) -> bool {
    let dotted = match wanted {
        "TLS Web Server Authentication" | "serverAuth" => "1.3.6.1.5.5.7.3.1",
        "TLS Web Client Authentication" | "clientAuth" => "1.3.6.1.5.5.7.3.2",
        "Code Signing" | "codeSigning" => "1.3.6.1.5.5.7.3.3",
        "E-mail Protection" | "emailProtection" => "1.3.6.1.5.5.7.3.4",
        other => other,
    };
    extended_key_usages(cert).is_some_and(|list| list.iter().any(|oid| oid_dotted(oid) == dotted))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &[u8] = include_bytes!("testdata/server-eku.der");
    const PLAIN: &[u8] = include_bytes!("testdata/plain.der");

    #[test]
    fn reads_subject_usages_and_names() {
        assert_eq!(
            subject_string(SERVER).as_deref(),
            Some("C=US, ST=CA, O=oxvpn test, CN=vpn.example.org")
        );
        assert_eq!(common_name(SERVER).as_deref(), Some("vpn.example.org"));
        assert_eq!(
            key_usage(SERVER),
            Some(0x88),
            "digitalSignature | keyAgreement"
        );
        assert!(has_extended_key_usage(
            SERVER,
            "TLS Web Server Authentication"
        ));
        assert!(has_extended_key_usage(SERVER, "1.3.6.1.5.5.7.3.1"));
        assert!(!has_extended_key_usage(SERVER, "clientAuth"));
        assert_eq!(common_name(PLAIN).as_deref(), Some("plain"));
        assert_eq!((key_usage(PLAIN), extended_key_usages(PLAIN)), (None, None));
    }

    #[test]
    fn malformed_certificates_yield_nothing() {
        for n in 0..SERVER.len() {
            let cut = &SERVER[..n];
            let _ = (
                subject_string(cut),
                key_usage(cut),
                extended_key_usages(cut),
                common_name(cut),
            );
        }
        let mut flipped = SERVER.to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = (
                subject_string(&flipped),
                key_usage(&flipped),
                has_extended_key_usage(&flipped, "serverAuth"),
            );
            flipped[i] ^= 0xff;
        }
        assert_eq!(
            oid_dotted(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]),
            "1.3.6.1.5.5.7.3.1"
        );
    }
}
