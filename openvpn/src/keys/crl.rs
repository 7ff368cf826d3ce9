//! Certificate revocation lists for `crl-verify` (RFC 5280 §5): PEM text into checked DER, and the fields
//! the verifier needs.
//!
//! Version 2 CRLs are parsed by webpki, which checks them during path building (`tls::verifier`). Version 1
//! CRLs (no version field, no extensions: what `openssl ca -gencrl` writes without a `crlnumber`, as easy-rsa 2
//! and some providers ship them) are refused by webpki, so their few fields are read here and
//! `tls::verifier` checks them itself. The header walk (issuer, thisUpdate, nextUpdate) serves both.
//!
//! Layer: pure parser of config contents; signatures are checked against the issuer's key at handshake time.

use alloc::string::String;
use alloc::vec::Vec;

use super::der::{self, tag};
use super::error::{CrlProblem, KeyError};
use super::pem;

const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One parsed revocation list.
#[derive(Debug, Clone)]
pub struct Crl {
    /// The issuer Name's content (its RDN SET elements), as webpki compares issuers.
    issuer: Vec<u8>,
    /// thisUpdate, Unix seconds.
    this_update: u64,
    /// nextUpdate, Unix seconds (always present in version 2).
    next_update: Option<u64>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    V2(webpki::OwnedCertRevocationList),
    V1(V1),
}

/// What a version 1 CRL holds beyond its header.
#[derive(Debug, Clone)]
pub struct V1 {
    /// The whole TBSCertList element: the signed bytes.
    pub tbs: Vec<u8>,
    /// The signatureAlgorithm AlgorithmIdentifier's content (as rustls' algorithm ids are written).
    pub algorithm: Vec<u8>,
    /// The signature bits.
    pub signature: Vec<u8>,
    /// Revoked serial numbers, without leading zero octets.
    revoked: Vec<Vec<u8>>,
}

impl V1 {
    /// Whether the certificate with this serial (INTEGER content) is listed.
    pub fn revokes(&self, serial: &[u8]) -> bool {
        let serial = der::unsigned_integer(serial);
        self.revoked.iter().any(|s| s.as_slice() == serial)
    }
}

/// The fields every version has, in TBSCertList order, and what follows them.
struct Header<'a> {
    version2: bool,
    issuer: &'a [u8],
    this_update: u64,
    next_update: Option<u64>,
    /// revokedCertificates and crlExtensions, if any.
    rest: &'a [u8],
    tbs: &'a [u8],
    algorithm: &'a [u8],
    signature: &'a [u8],
}

/// CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING };
/// TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL (v2 = 1), signature, issuer, thisUpdate,
/// nextUpdate OPTIONAL, revokedCertificates OPTIONAL, [0] crlExtensions OPTIONAL }.
fn header(input: &[u8]) -> Result<Header<'_>, CrlProblem> {
    use CrlProblem::Malformed;
    let (list, trailing) = der::expect(input, tag::SEQUENCE).ok_or(Malformed)?;
    let (tbs, after) = der::expect(list.content, tag::SEQUENCE).ok_or(Malformed)?;
    let (algorithm, after) = der::expect(after, tag::SEQUENCE).ok_or(Malformed)?;
    let (signature, after) = der::expect(after, tag::BIT_STRING).ok_or(Malformed)?;
    if !trailing.is_empty() || !after.is_empty() {
        return Err(Malformed);
    }
    let signature = der::bit_string_bytes(signature.content).ok_or(Malformed)?;
    let mut fields = tbs.content;
    let mut version2 = false;
    if let Some((version, rest)) = der::expect(fields, tag::INTEGER) {
        version2 = match version.content {
            // An explicit v1 is not DER, but OpenSSL reads it as v1.
            [0] => false,
            [1] => true,
            _ => return Err(CrlProblem::UnsupportedVersion),
        };
        fields = rest;
    }
    let (inner_algorithm, fields) = der::expect(fields, tag::SEQUENCE).ok_or(Malformed)?;
    if inner_algorithm.raw != algorithm.raw {
        return Err(Malformed);
    }
    let (issuer, fields) = der::expect(fields, tag::SEQUENCE).ok_or(Malformed)?;
    let (this_update, mut fields) = time(fields).ok_or(Malformed)?;
    let mut next_update = None;
    if matches!(fields.first(), Some(&(UTC_TIME | GENERALIZED_TIME))) {
        let (t, rest) = time(fields).ok_or(Malformed)?;
        next_update = Some(t);
        fields = rest;
    }
    Ok(Header {
        version2,
        issuer: issuer.content,
        this_update,
        next_update,
        rest: fields,
        tbs: tbs.raw,
        algorithm: algorithm.content,
        signature,
    })
}

impl Crl {
    /// Parses and checks one DER CRL (no signature check: the issuer's key is known at handshake time).
    pub fn from_der(input: &[u8]) -> Result<Crl, CrlProblem> {
        let h = header(input)?;
        let body = if h.version2 {
            if h.next_update.is_none() {
                return Err(CrlProblem::MissingNextUpdate);
            }
            Body::V2(webpki::OwnedCertRevocationList::from_der(input).map_err(webpki_problem)?)
        } else {
            Body::V1(V1 {
                tbs: h.tbs.to_vec(),
                algorithm: h.algorithm.to_vec(),
                signature: h.signature.to_vec(),
                revoked: v1_serials(h.rest)?,
            })
        };
        Ok(Crl {
            issuer: h.issuer.to_vec(),
            this_update: h.this_update,
            next_update: h.next_update,
            body,
        })
    }

    /// The issuer Name's content (without the SEQUENCE tag), as `webpki::Cert::issuer` gives it.
    pub fn issuer(&self) -> &[u8] {
        &self.issuer
    }

    /// thisUpdate in Unix seconds.
    pub fn this_update(&self) -> u64 {
        self.this_update
    }

    /// nextUpdate in Unix seconds, if present (a version 1 CRL may lack it: it then never expires).
    pub fn next_update(&self) -> Option<u64> {
        self.next_update
    }

    /// The version 1 body, checked by `tls::verifier`; `None` for version 2 (checked by webpki).
    pub fn v1(&self) -> Option<&V1> {
        match &self.body {
            Body::V1(v1) => Some(v1),
            Body::V2(_) => None,
        }
    }

    /// The webpki form of a version 2 CRL.
    pub fn v2(&self) -> Option<&webpki::OwnedCertRevocationList> {
        match &self.body {
            Body::V2(list) => Some(list),
            Body::V1(_) => None,
        }
    }
}

/// revokedCertificates ::= SEQUENCE OF SEQUENCE { userCertificate INTEGER, revocationDate Time,
/// crlEntryExtensions OPTIONAL }; a version 1 CRL has no extensions anywhere. The revocation date is not
/// needed and not checked (some CAs wrote it without seconds or `Z`; OpenSSL accepts those).
fn v1_serials(mut rest: &[u8]) -> Result<Vec<Vec<u8>>, CrlProblem> {
    let mut serials = Vec::new();
    if let Some((list, after)) = der::expect(rest, tag::SEQUENCE) {
        let mut entries = list.content;
        while !entries.is_empty() {
            let (entry, more) = der::expect(entries, tag::SEQUENCE).ok_or(CrlProblem::Malformed)?;
            let (serial, after_serial) =
                der::expect(entry.content, tag::INTEGER).ok_or(CrlProblem::Malformed)?;
            let (date, after_date) = der::read(after_serial).ok_or(CrlProblem::Malformed)?;
            if !matches!(date.tag, UTC_TIME | GENERALIZED_TIME) {
                return Err(CrlProblem::Malformed);
            }
            if !after_date.is_empty() {
                return Err(CrlProblem::ExtensionsInVersion1);
            }
            serials.push(der::unsigned_integer(serial.content).to_vec());
            entries = more;
        }
        rest = after;
    }
    match der::read(rest) {
        None if rest.is_empty() => Ok(serials),
        Some((ext, _)) if ext.tag == tag::CONTEXT_0 => Err(CrlProblem::ExtensionsInVersion1),
        _ => Err(CrlProblem::Malformed),
    }
}

fn webpki_problem(e: webpki::Error) -> CrlProblem {
    use webpki::Error as E;
    match e {
        E::UnsupportedCrlVersion => CrlProblem::UnsupportedVersion,
        E::UnsupportedDeltaCrl => CrlProblem::Delta,
        E::UnsupportedIndirectCrl => CrlProblem::Indirect,
        E::UnsupportedRevocationReasonsPartitioning => CrlProblem::ReasonPartitioned,
        E::UnsupportedCriticalExtension => CrlProblem::UnknownCriticalExtension,
        _ => CrlProblem::Malformed,
    }
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950..2049) or GeneralizedTime `YYYYMMDDHHMMSSZ` as Unix seconds.
fn time(input: &[u8]) -> Option<(u64, &[u8])> {
    let (t, rest) = der::read(input)?;
    let (year, digits) = match (t.tag, t.content) {
        (UTC_TIME, [y @ .., b'Z']) if y.len() == 12 => {
            let yy = number(y.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, y.get(2..)?)
        }
        (GENERALIZED_TIME, [y @ .., b'Z']) if y.len() == 14 => (number(y.get(..4)?)?, y.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| digits.get(i..i + 2).and_then(number);
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let secs = days
        .checked_mul(86_400)?
        .checked_add(hour * 3600 + minute * 60 + second)?;
    Some((secs, rest))
}

fn number(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (years from 1970 on).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if year < 1970 {
        return None;
    }
    // Count from March so that the leap day ends the year.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 = days from 0000-03-01 to 1970-01-01.
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

/// Every `X509 CRL` PEM block of a `crl-verify` file (several may be concatenated), each checked; other
/// blocks are skipped as OpenSSL does. At least one CRL is required.
pub fn parse_crls(text: &str) -> Result<Vec<Vec<u8>>, KeyError> {
    let mut out = Vec::new();
    for block in pem::blocks(text)? {
        if block.label != "X509 CRL" {
            continue;
        }
        Crl::from_der(&block.der).map_err(KeyError::BadCrl)?;
        out.push(block.der);
    }
    if out.is_empty() {
        return Err(KeyError::MissingPemBlock("X509 CRL"));
    }
    Ok(out)
}

/// Writes CRLs back as PEM.
pub fn crls_to_pem(crls: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for crl in crls {
        pem::encode("X509 CRL", crl, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = include_str!("../../tests/data/crl/root-revokes-server.crl");
    const V1_CRL: &str = include_str!("../../tests/data/crl/root-v1-revokes-server.crl");
    const EXPIRED: &str = include_str!("../../tests/data/crl/root-expired.crl");

    fn der(text: &str) -> Vec<u8> {
        parse_crls(text).unwrap().remove(0)
    }

    #[test]
    fn reads_both_versions() {
        let v2 = Crl::from_der(&der(V2)).unwrap();
        let v1 = Crl::from_der(&der(V1_CRL)).unwrap();
        assert!(v2.v2().is_some() && v2.v1().is_none());
        let body = v1.v1().unwrap();
        assert!(body.revokes(&[0x10, 0x02]));
        assert!(
            body.revokes(&[0x00, 0x10, 0x02]),
            "leading zero octets do not matter"
        );
        assert!(!body.revokes(&[0x10, 0x01]));
        assert_eq!(v1.issuer(), v2.issuer());
        // "CN=oxvpn crl root" as the RDN SET content webpki compares.
        assert!(v1.issuer().ends_with(b"oxvpn crl root"));
        // make.sh (first run 2026-12-04): nextUpdate 36500 days after thisUpdate.
        assert!(v1.this_update() >= 1_796_342_400);
        assert_eq!(v1.next_update(), Some(v1.this_update() + 36_500 * 86_400));
        let expired = Crl::from_der(&der(EXPIRED)).unwrap();
        assert_eq!(expired.next_update(), Some(expired.this_update() + 3600));
    }

    #[test]
    fn times_are_unix_seconds() {
        assert_eq!(time(b"\x17\x0d700101000000Z"), Some((0, &b""[..])));
        assert_eq!(
            time(b"\x17\x0d491231235959Z").map(|t| t.0),
            Some(2_524_607_999)
        );
        assert_eq!(
            time(b"\x18\x0f20270115080000Z").map(|t| t.0),
            Some(1_800_000_000)
        );
        assert_eq!(
            time(b"\x18\x0f20000229120000Z").map(|t| t.0),
            Some(951_825_600)
        );
        for bad in [
            &b"\x17\x0b7001010000Z"[..],
            b"\x17\x0c700101000000",
            b"\x17\x0d701301000000Z",
            b"\x18\x0f19691231235959Z",
            b"\x17\x0d7001010a0000Z",
        ] {
            assert_eq!(time(bad), None, "{bad:?}");
        }
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = alloc::vec![tag];
        match content.len() {
            n @ 0..=127 => out.push(u8::try_from(n).unwrap()),
            n => out.extend([0x81, u8::try_from(n).unwrap()]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A version 1 CertificateList with these revoked entries and these bytes after them (extensions).
    fn v1_list(entries: &[Vec<u8>], tail: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let algorithm = tlv(0x30, &tlv(0x06, &[0x2a])); // OID 1.2: never verified here
        let mut fields = algorithm.clone();
        fields.extend(tlv(0x30, &[])); // empty issuer
        fields.extend(b"\x17\x0d160708190046Z\x17\x0d360703190046Z");
        if !entries.is_empty() {
            fields.extend(tlv(0x30, &entries.concat()));
        }
        fields.extend_from_slice(tail);
        let tbs = tlv(0x30, &fields);
        let mut content = tbs.clone();
        content.extend(algorithm);
        content.extend(tlv(0x03, &[0x00, 0x55]));
        (tlv(0x30, &content), tbs)
    }

    /// A version 1 CRL as some CAs wrote it: revocation dates without seconds or `Z` (the PIA CRL), which
    /// OpenSSL accepts; the signature is not looked at here. Extensions make it something else.
    #[test]
    fn version1_lists_and_their_limits() {
        let entry = |serial: u8, ext: &[u8]| {
            let mut e = tlv(0x02, &[serial]);
            e.extend(tlv(0x17, b"160708190046"));
            e.extend_from_slice(ext);
            tlv(0x30, &e)
        };
        let (list, tbs) = v1_list(&[entry(1, &[]), entry(6, &[])], &[]);
        let crl = Crl::from_der(&list).unwrap();
        let v1 = crl.v1().unwrap();
        assert!(v1.revokes(&[6]) && v1.revokes(&[1]) && !v1.revokes(&[2]));
        assert_eq!(v1.tbs, tbs);
        assert_eq!(v1.signature, [0x55]);
        assert_eq!(crl.next_update(), Some(2_098_724_446));
        assert!(
            Crl::from_der(&v1_list(&[], &[]).0).unwrap().v1().is_some(),
            "nothing revoked"
        );
        let entry_ext = entry(1, &tlv(0x30, &[]));
        assert_eq!(
            Crl::from_der(&v1_list(&[entry_ext], &[]).0).err(),
            Some(CrlProblem::ExtensionsInVersion1)
        );
        let crl_ext = tlv(0xa0, &tlv(0x30, &[]));
        assert_eq!(
            Crl::from_der(&v1_list(&[entry(1, &[])], &crl_ext).0).err(),
            Some(CrlProblem::ExtensionsInVersion1)
        );
        let bad_date = tlv(0x30, &[tlv(0x02, &[1]), tlv(0x04, b"x")].concat());
        assert_eq!(
            Crl::from_der(&v1_list(&[bad_date], &[]).0).err(),
            Some(CrlProblem::Malformed)
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let good = der(V2);
        // Version 3 (INTEGER 2) in place of v2's INTEGER 1.
        let mut v3 = good.clone();
        let at = v3.windows(3).position(|w| w == [0x02, 0x01, 0x01]).unwrap();
        v3[at + 2] = 2;
        assert_eq!(
            Crl::from_der(&v3).err(),
            Some(CrlProblem::UnsupportedVersion)
        );
        for n in 0..good.len() {
            assert!(Crl::from_der(&good[..n]).is_err(), "cut at {n}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Crl::from_der(&trailing).err(), Some(CrlProblem::Malformed));
        let mut flipped = der(V1_CRL);
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = Crl::from_der(&flipped);
            flipped[i] ^= 0xff;
        }
        assert_eq!(
            parse_crls("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"),
            Err(KeyError::BadCrl(CrlProblem::Malformed))
        );
        assert_eq!(
            parse_crls("no PEM here"),
            Err(KeyError::MissingPemBlock("X509 CRL"))
        );
        let two = alloc::format!("{V2}{V1_CRL}");
        assert_eq!(parse_crls(&two).unwrap().len(), 2);
        assert_eq!(crls_to_pem(&parse_crls(&two).unwrap()), two);
    }
}
