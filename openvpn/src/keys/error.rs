//! Errors of the key and certificate file parsers.

use core::fmt;

/// Why a key, certificate or static key file could not be used. The config parser wraps it with the line of
/// the directive that named the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// No `-----BEGIN <label>-----` line of the expected kind was found.
    MissingPemBlock(&'static str),
    /// A `-----BEGIN` line has no matching `-----END` line.
    UnterminatedPem,
    /// The text between the PEM lines is not valid base64.
    BadBase64,
    /// The PEM block holds a kind of object that is not expected here (for example a key in `<ca>`).
    UnexpectedPemLabel,
    /// A certificate's DER does not have the X.509 structure.
    BadCertificate,
    /// A private key's DER does not have the PKCS#8, PKCS#1 or SEC1 structure.
    BadPrivateKey,
    /// A private key algorithm other than RSA, ECDSA (P-256, P-384) or Ed25519.
    UnsupportedKeyAlgorithm,
    /// The private key is encrypted with a passphrase; the image cannot prompt for it.
    EncryptedPrivateKey,
    /// The client certificate's public key is not the public half of the private key.
    KeyCertificateMismatch,
    /// A static key file has a character other than hex digits and whitespace between its PEM lines.
    BadStaticKeyHex,
    /// A static key file holds fewer than the 256 bytes needed for directional use.
    StaticKeyTooShort,
    /// The `-----END OpenVPN Static key V1-----` line is missing or different.
    BadStaticKeyFooter,
    /// The tls-crypt-v2 client key is shorter than Kc (256 bytes) plus a minimal WKc, or its WKc is longer
    /// than 1024 bytes, or the WKc's trailing length does not match.
    BadTlsCryptV2Key,
    /// This is a tls-crypt-v2 *server* key; the client needs the client key made from it.
    TlsCryptV2ServerKey,
    /// A tls-crypt-v2 server key or auth-token key file whose body is not 128 bytes.
    BadServerKeyLength,
    /// tls-crypt-v2 metadata (type byte included) is empty or longer than the 734 bytes a WKc can carry.
    BadTlsCryptV2Metadata,
    /// A `peer-fingerprint` is not 32 colon-separated hex bytes (SHA-256).
    BadFingerprint,
    /// An inline `<auth-user-pass>` or credentials file has no username line.
    MissingUsername,
    /// The credentials hold a username but no password line.
    MissingPassword,
    /// A `crl-verify` revocation list is not usable.
    BadCrl(CrlProblem),
}

/// Why a certificate revocation list (`crl-verify`) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlProblem {
    /// The DER is not an RFC 5280 CertificateList.
    Malformed,
    /// A version other than 1 and 2.
    UnsupportedVersion,
    /// A version 1 CRL carries extensions (only version 2 may).
    ExtensionsInVersion1,
    /// A version 2 CRL without nextUpdate (RFC 5280 §5.1.2.5 requires it).
    MissingNextUpdate,
    /// A delta CRL (only complete CRLs are supported).
    Delta,
    /// An indirect CRL (entries for another issuer's certificates).
    Indirect,
    /// A CRL partitioned by revocation reason.
    ReasonPartitioned,
    /// A critical extension the verifier does not understand.
    UnknownCriticalExtension,
}

impl fmt::Display for CrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CrlProblem::Malformed => "not a valid X.509 CRL (RFC 5280 CertificateList)",
            CrlProblem::UnsupportedVersion => "unsupported CRL version (1 and 2 are supported)",
            CrlProblem::ExtensionsInVersion1 => "a version 1 CRL must not carry extensions",
            CrlProblem::MissingNextUpdate => "a version 2 CRL without nextUpdate is not supported",
            CrlProblem::Delta => "delta CRLs are not supported: give the complete CRL",
            CrlProblem::Indirect => {
                "indirect CRLs (entries for another CA's certificates) are not supported"
            }
            CrlProblem::ReasonPartitioned => {
                "CRLs partitioned by revocation reason are not supported"
            }
            CrlProblem::UnknownCriticalExtension => {
                "the CRL has a critical extension that is not understood"
            }
        })
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::MissingPemBlock(label) => write!(f, "no `-----BEGIN {label}-----` block found"),
            KeyError::UnterminatedPem => f.write_str("a `-----BEGIN` line has no matching `-----END` line"),
            KeyError::BadBase64 => f.write_str("the PEM body is not valid base64"),
            KeyError::UnexpectedPemLabel => f.write_str("the PEM block holds a different kind of object than expected"),
            KeyError::BadCertificate => f.write_str("the certificate is not a valid X.509 DER structure"),
            KeyError::BadPrivateKey => f.write_str("the private key is not a valid PKCS#8, PKCS#1 or SEC1 structure"),
            KeyError::UnsupportedKeyAlgorithm => {
                f.write_str("unsupported private key algorithm (supported: RSA, ECDSA P-256/P-384, Ed25519)")
            }
            KeyError::EncryptedPrivateKey => f.write_str(
                "the private key is encrypted, which is not supported on the image: decrypt it on the host with \
                 `openssl pkey -in key.pem -out key-decrypted.pem` and use that file",
            ),
            KeyError::KeyCertificateMismatch => {
                f.write_str("the client certificate and the private key do not belong together")
            }
            KeyError::BadStaticKeyHex => f.write_str("the static key has a character other than hex digits"),
            KeyError::StaticKeyTooShort => {
                f.write_str("the static key is shorter than 2048 bits (256 bytes); generate one with `openvpn --genkey secret`")
            }
            KeyError::BadStaticKeyFooter => f.write_str("missing `-----END OpenVPN Static key V1-----`"),
            KeyError::BadTlsCryptV2Key => f.write_str("malformed tls-crypt-v2 client key (Kc || WKc)"),
            KeyError::TlsCryptV2ServerKey => f.write_str(
                "this is a tls-crypt-v2 server key; give the client key made with `openvpn --tls-crypt-v2 server.key --genkey tls-crypt-v2-client`",
            ),
            KeyError::BadServerKeyLength => f.write_str("the server key body is not 128 bytes (truncated or not a server key)"),
            KeyError::BadTlsCryptV2Metadata => {
                f.write_str("tls-crypt-v2 metadata must be 1..=734 bytes including its type byte")
            }
            KeyError::BadFingerprint => f.write_str("a fingerprint must be 32 hex bytes separated by colons (SHA-256)"),
            KeyError::MissingUsername => f.write_str("the credentials have no username line"),
            KeyError::MissingPassword => f.write_str(
                "the credentials have a username but no password line; the image cannot prompt for it",
            ),
            KeyError::BadCrl(problem) => write!(f, "certificate revocation list refused: {problem}"),
        }
    }
}
