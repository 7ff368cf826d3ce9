//! PEM (RFC 7468) blocks: find `-----BEGIN <label>-----` … `-----END <label>-----` in text that may also hold
//! other lines (`openssl x509 -text` output, comments), and decode the base64 body.
//!
//! Layer: pure text parser. RFC 1421 header lines (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`) are recognised so
//! that a passphrase-protected key is reported as such rather than as bad base64.

use alloc::string::String;
use alloc::vec::Vec;

use super::base64;
use super::error::KeyError;

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock<'a> {
    /// The text between `-----BEGIN ` and `-----`, e.g. `CERTIFICATE`.
    pub label: &'a str,
    /// True when an RFC 1421 `Proc-Type: 4,ENCRYPTED` header is present.
    pub encrypted: bool,
    /// The decoded body.
    pub der: Vec<u8>,
}

/// Every PEM block in `text`, in order. Text outside the blocks is ignored.
pub fn blocks(text: &str) -> Result<Vec<PemBlock<'_>>, KeyError> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let mut body = String::new();
        let mut encrypted = false;
        let mut ended = false;
        for inner in lines.by_ref() {
            let inner = inner.trim();
            if let Some(end) = inner
                .strip_prefix("-----END ")
                .and_then(|l| l.strip_suffix("-----"))
            {
                if end != label {
                    return Err(KeyError::UnterminatedPem);
                }
                ended = true;
                break;
            }
            if inner.contains(':') {
                // RFC 1421 encapsulated header, e.g. `Proc-Type: 4,ENCRYPTED`.
                if inner.starts_with("Proc-Type:") && inner.contains("ENCRYPTED") {
                    encrypted = true;
                }
                continue;
            }
            body.push_str(inner);
        }
        if !ended {
            return Err(KeyError::UnterminatedPem);
        }
        let der = base64::decode(&body).ok_or(KeyError::BadBase64)?;
        out.push(PemBlock {
            label,
            encrypted,
            der,
        });
    }
    Ok(out)
}

/// Writes `der` as a PEM block with `label`.
pub fn encode(label: &str, der: &[u8], out: &mut String) {
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    out.push_str(&base64::encode_lines(der));
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_among_text() {
        let text = "Certificate:\n  Data: x\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n\
                    junk\n-----BEGIN X-----\r\nAw==\r\n-----END X-----\r\n";
        let b = blocks(text).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].label, &b[0].der[..]),
            ("CERTIFICATE", &[0u8, 1, 2][..])
        );
        assert_eq!((b[1].label, &b[1].der[..]), ("X", &[3u8][..]));
    }

    #[test]
    fn flags_encrypted_and_unterminated() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        assert!(blocks(text).unwrap()[0].encrypted);
        assert_eq!(
            blocks("-----BEGIN A-----\nAAEC\n"),
            Err(KeyError::UnterminatedPem)
        );
        assert_eq!(
            blocks("-----BEGIN A-----\nAAEC\n-----END B-----\n"),
            Err(KeyError::UnterminatedPem)
        );
    }

    #[test]
    fn encode_round_trips() {
        let mut s = String::new();
        encode("CERTIFICATE", &[9u8; 100], &mut s);
        let b = blocks(&s).unwrap();
        assert_eq!(b[0].der, alloc::vec![9u8; 100]);
    }
}
