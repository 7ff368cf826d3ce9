//! Client private keys from PEM text (`key`): PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) and SEC1
//! (`EC PRIVATE KEY`), and the check that a key is the private half of the client certificate.
//!
//! Layer: pure parser. Encrypted keys are refused with a message telling the user how to decrypt them on the
//! host: the image has no console to ask for a passphrase.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::cert::Certificate;
use super::der::{self, tag};
use super::error::KeyError;
use super::pem;

mod oid {
    pub const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
}

/// The encoding a private key came in (it is kept as is: rustls takes all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateKeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (`-----BEGIN PRIVATE KEY-----`).
    Pkcs8,
    /// PKCS#1 `RSAPrivateKey` (`-----BEGIN RSA PRIVATE KEY-----`).
    Pkcs1,
    /// SEC1 `ECPrivateKey` (`-----BEGIN EC PRIVATE KEY-----`).
    Sec1,
}

impl PrivateKeyFormat {
    fn label(self) -> &'static str {
        match self {
            PrivateKeyFormat::Pkcs8 => "PRIVATE KEY",
            PrivateKeyFormat::Pkcs1 => "RSA PRIVATE KEY",
            PrivateKeyFormat::Sec1 => "EC PRIVATE KEY",
        }
    }
}

/// The public half of a key, in a form that compares equal however it was encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA modulus and public exponent, without leading zero bytes.
    Rsa {
        /// Modulus n.
        modulus: Vec<u8>,
        /// Public exponent e.
        exponent: Vec<u8>,
    },
    /// An uncompressed or compressed EC point, as in the certificate's BIT STRING.
    Ec(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// An unencrypted private key.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey {
    /// How `der` is encoded.
    pub format: PrivateKeyFormat,
    der: Vec<u8>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?}, ..)", self.format)
    }
}

impl zeroize::Zeroize for PrivateKey {
    fn zeroize(&mut self) {
        self.der.zeroize();
    }
}

/// Wiped when dropped.
impl Drop for PrivateKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self);
    }
}

impl PrivateKey {
    /// Parses the first private key in PEM `text` (an `EC PARAMETERS` block before it is skipped).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        for block in pem::blocks(text)? {
            let format = match block.label {
                "PRIVATE KEY" => PrivateKeyFormat::Pkcs8,
                "RSA PRIVATE KEY" => PrivateKeyFormat::Pkcs1,
                "EC PRIVATE KEY" => PrivateKeyFormat::Sec1,
                "ENCRYPTED PRIVATE KEY" => return Err(KeyError::EncryptedPrivateKey),
                "EC PARAMETERS" => continue,
                "DSA PRIVATE KEY" | "OPENSSH PRIVATE KEY" => {
                    return Err(KeyError::UnsupportedKeyAlgorithm)
                }
                _ => return Err(KeyError::UnexpectedPemLabel),
            };
            if block.encrypted {
                return Err(KeyError::EncryptedPrivateKey);
            }
            return Self::from_der(format, block.der);
        }
        Err(KeyError::MissingPemBlock("PRIVATE KEY"))
    }

    /// Checks the structure of `der` in `format`.
    pub fn from_der(format: PrivateKeyFormat, der: Vec<u8>) -> Result<Self, KeyError> {
        let key = PrivateKey { format, der };
        key.public_key()?;
        Ok(key)
    }

    /// The DER bytes in [`PrivateKey::format`].
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The key as PEM text with its original label.
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        pem::encode(self.format.label(), &self.der, &mut out);
        out
    }

    /// The public half; `Ok(None)` when an EC key does not carry its public point (it is optional in SEC1).
    pub fn public_key(&self) -> Result<Option<PublicKey>, KeyError> {
        let bad = KeyError::BadPrivateKey;
        match self.format {
            PrivateKeyFormat::Pkcs1 => rsa_private_public(&self.der).map(Some).ok_or(bad),
            PrivateKeyFormat::Sec1 => sec1_public(&self.der, None),
            PrivateKeyFormat::Pkcs8 => {
                // PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING privateKey,
                //   [0] attributes OPTIONAL, [1] publicKey OPTIONAL } (RFC 5958 §2)
                let (info, _) = der::expect(&self.der, tag::SEQUENCE).ok_or(bad)?;
                let (_version, rest) = der::expect(info.content, tag::INTEGER).ok_or(bad)?;
                let (alg, rest) = der::expect(rest, tag::SEQUENCE).ok_or(bad)?;
                let (inner, rest) = der::expect(rest, tag::OCTET_STRING).ok_or(bad)?;
                let (alg_oid, params) = der::expect(alg.content, tag::OID).ok_or(bad)?;
                match alg_oid.content {
                    oid::RSA | oid::RSA_PSS => {
                        rsa_private_public(inner.content).map(Some).ok_or(bad)
                    }
                    oid::EC_PUBLIC_KEY => {
                        let (curve, _) = der::expect(params, tag::OID).ok_or(bad)?;
                        sec1_public(inner.content, Some(curve.content))
                    }
                    oid::ED25519 => ed25519_public(inner.content, rest).map(Some),
                    _ => Err(KeyError::UnsupportedKeyAlgorithm),
                }
            }
        }
    }

    /// Checks that `cert` carries this key's public half. `Ok(false)` when that cannot be decided (an EC key
    /// without its public point); the caller reports it as a warning.
    pub fn matches(&self, cert: &Certificate) -> Result<bool, KeyError> {
        let Some(ours) = self.public_key()? else {
            return Ok(false);
        };
        let theirs =
            spki_public_key(cert.subject_public_key_info()).ok_or(KeyError::BadCertificate)?;
        if ours == theirs {
            Ok(true)
        } else {
            Err(KeyError::KeyCertificateMismatch)
        }
    }
}

/// RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, … } (RFC 8017 §A.1.2)
fn rsa_private_public(der: &[u8]) -> Option<PublicKey> {
    let (seq, _) = der::expect(der, tag::SEQUENCE)?;
    let (_version, rest) = der::expect(seq.content, tag::INTEGER)?;
    let (n, rest) = der::expect(rest, tag::INTEGER)?;
    let (e, _) = der::expect(rest, tag::INTEGER)?;
    Some(PublicKey::Rsa {
        modulus: der::unsigned_integer(n.content).to_vec(),
        exponent: der::unsigned_integer(e.content).to_vec(),
    })
}

/// ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters OPTIONAL,
/// [1] publicKey BIT STRING OPTIONAL } (RFC 5915 §3)
fn sec1_public(der: &[u8], outer_curve: Option<&[u8]>) -> Result<Option<PublicKey>, KeyError> {
    let bad = KeyError::BadPrivateKey;
    let (seq, _) = der::expect(der, tag::SEQUENCE).ok_or(bad)?;
    let (_version, rest) = der::expect(seq.content, tag::INTEGER).ok_or(bad)?;
    let (_private, mut rest) = der::expect(rest, tag::OCTET_STRING).ok_or(bad)?;
    let mut curve = outer_curve;
    let mut point = None;
    while let Some((field, after)) = der::read(rest) {
        match field.tag {
            tag::CONTEXT_0 => curve = der::expect(field.content, tag::OID).map(|(o, _)| o.content),
            tag::CONTEXT_1 => {
                let (bits, _) = der::expect(field.content, tag::BIT_STRING).ok_or(bad)?;
                point = Some(der::bit_string_bytes(bits.content).ok_or(bad)?.to_vec());
            }
            _ => return Err(bad),
        }
        rest = after;
    }
    match curve {
        Some(oid::P256) | Some(oid::P384) => Ok(point.map(PublicKey::Ec)),
        _ => Err(KeyError::UnsupportedKeyAlgorithm),
    }
}

/// Ed25519 PKCS#8: privateKey = OCTET STRING (32-byte seed) (RFC 8410 §7); v2 may carry `[1] publicKey`.
fn ed25519_public(inner: &[u8], attributes: &[u8]) -> Result<PublicKey, KeyError> {
    use ring::signature::KeyPair;
    let bad = KeyError::BadPrivateKey;
    let mut rest = attributes;
    while let Some((field, after)) = der::read(rest) {
        // [1] IMPLICIT BIT STRING: primitive context tag 0x81.
        if field.tag == 0x81 {
            return Ok(PublicKey::Ed25519(
                der::bit_string_bytes(field.content).ok_or(bad)?.to_vec(),
            ));
        }
        rest = after;
    }
    let (seed, _) = der::expect(inner, tag::OCTET_STRING).ok_or(bad)?;
    let pair =
        ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.content).map_err(|_| bad)?;
    Ok(PublicKey::Ed25519(pair.public_key().as_ref().to_vec()))
}

/// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
fn spki_public_key(spki: &[u8]) -> Option<PublicKey> {
    let (seq, _) = der::expect(spki, tag::SEQUENCE)?;
    let (alg, rest) = der::expect(seq.content, tag::SEQUENCE)?;
    let (bits, _) = der::expect(rest, tag::BIT_STRING)?;
    let key = der::bit_string_bytes(bits.content)?;
    let (alg_oid, _) = der::expect(alg.content, tag::OID)?;
    match alg_oid.content {
        oid::RSA | oid::RSA_PSS => {
            let (seq, _) = der::expect(key, tag::SEQUENCE)?;
            let (n, rest) = der::expect(seq.content, tag::INTEGER)?;
            let (e, _) = der::expect(rest, tag::INTEGER)?;
            Some(PublicKey::Rsa {
                modulus: der::unsigned_integer(n.content).to_vec(),
                exponent: der::unsigned_integer(e.content).to_vec(),
            })
        }
        oid::EC_PUBLIC_KEY => Some(PublicKey::Ec(key.to_vec())),
        oid::ED25519 => Some(PublicKey::Ed25519(key.to_vec())),
        _ => None,
    }
}
