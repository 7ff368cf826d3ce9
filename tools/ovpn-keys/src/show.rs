//! `show FILE [--server-key FILE]`: what a key, certificate or CRL file is, read with the engine's parsers
//! (`genkey` for the key files, the certificate and CRL descriptions here).

use std::path::Path;

use crate::fail::{Failure, Outcome};
use crate::files;
use openvpn::crypto::TlsCryptV2ServerKey;
use openvpn::keys::{
    crl, Metadata, PrivateKey, ServerKey, ServerKeyKind, StaticKey, TlsCryptV2ClientKey,
};

use crate::genkey::{describe_kind, describe_metadata, format_time, read_server_key};
use crate::pki::hex;

/// `show FILE [--server-key FILE]`.
pub fn show(file: &Path, server_key: Option<&Path>) -> Outcome {
    let text = files::read_text(file)?;
    let kind = describe_kind(&text).ok_or_else(|| {
        Failure::input(
            file,
            "not a key, certificate or CRL file (no PEM block found)",
        )
    })?;
    println!("{}: {kind}", file.display());
    let bad = |e: openvpn::keys::KeyError| Failure::input(file, e);
    match kind.as_str() {
        k if k.starts_with("OpenVPN static key") => {
            StaticKey::parse(&text).map_err(bad)?;
            println!(
                "  2048 bits (256 bytes), usable with tls-auth (any key-direction) and tls-crypt"
            );
        }
        "tls-crypt-v2 server key" => {
            ServerKey::parse(&text, ServerKeyKind::TlsCryptV2).map_err(bad)?;
            println!("  128 bytes; wraps client keys (genkey tls-crypt-v2-client --server-key)");
        }
        "auth-token server key" => {
            ServerKey::parse(&text, ServerKeyKind::AuthToken).map_err(bad)?;
            println!("  128 bytes; signs auth-tokens (`auth-gen-token-secret` on a server)");
        }
        "tls-crypt-v2 client key" => {
            let key = TlsCryptV2ClientKey::parse(&text).map_err(bad)?;
            println!(
                "  Kc 256 bytes, WKc {} bytes (metadata {} bytes, type byte included)",
                key.wkc.len(),
                key.wkc.len().saturating_sub(290)
            );
            match server_key {
                Some(path) => {
                    let server = read_server_key(path)?;
                    let (kc, raw) = TlsCryptV2ServerKey::new(server.as_bytes())
                        .unwrap_client_key(&key.wkc)
                        .map_err(|e| {
                            Failure::input(
                                file,
                                format!("{e} ({} is not the key that wrapped it)", path.display()),
                            )
                        })?;
                    if kc != *key.kc.as_bytes() {
                        return Err(Failure::input(
                            file,
                            "the wrapped Kc differs from the Kc in the file",
                        ));
                    }
                    println!("  wrapped by {}: yes", path.display());
                    match Metadata::decode(&raw) {
                        Ok(meta) => println!("  metadata: {}", describe_metadata(&meta)),
                        Err(_) => println!("  metadata: none"),
                    }
                }
                None => println!("  metadata: encrypted (give --server-key FILE to decode it)"),
            }
        }
        "X.509 certificate" => {
            let chain = openvpn::keys::parse_chain(&text).map_err(bad)?;
            println!("  {} certificate(s)", chain.len());
            describe_certificates(&text);
        }
        "certificate revocation list" => {
            for der in crl::parse_crls(&text).map_err(bad)? {
                let list = crl::Crl::from_der(&der).map_err(|e| Failure::input(file, e))?;
                println!(
                    "  version {}, this update {}, next update {}",
                    if list.v1().is_some() { 1 } else { 2 },
                    format_time(list.this_update()),
                    list.next_update()
                        .map(format_time)
                        .unwrap_or_else(|| "none".into())
                );
            }
            describe_crl(&text);
        }
        "private key" => {
            let key = PrivateKey::parse(&text).map_err(bad)?;
            let algorithm = match key.public_key().map_err(bad)? {
                Some(k) => key_algorithm(&k),
                None => "EC (public point not stored)".into(),
            };
            println!("  {algorithm}, {:?} encoding", key.format);
        }
        _ => {}
    }
    Ok(())
}

fn key_algorithm(key: &openvpn::keys::PublicKey) -> String {
    use openvpn::keys::PublicKey;
    match key {
        PublicKey::Ed25519(_) => "Ed25519".into(),
        PublicKey::Rsa { modulus, .. } => format!("RSA {} bits", modulus.len() * 8),
        PublicKey::Ec(point) if point.len() == 65 => "ECDSA P-256".into(),
        PublicKey::Ec(point) if point.len() == 97 => "ECDSA P-384".into(),
        PublicKey::Ec(_) => "ECDSA".into(),
    }
}

/// Prints subject, issuer, serial, validity and EKU of each certificate in `text` (for `show`).
pub fn describe_certificates(text: &str) {
    for pem in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()).flatten() {
        let Ok(cert) = pem.parse_x509() else { continue };
        println!("  subject {}", cert.subject());
        println!("    issuer {}", cert.issuer());
        println!(
            "    serial {}",
            cert.raw_serial_as_string().replace(':', "")
        );
        println!(
            "    valid {} .. {}",
            cert.validity().not_before,
            cert.validity().not_after
        );
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            let e = eku.value;
            println!(
                "    extended key usage:{}{}",
                if e.server_auth { " serverAuth" } else { "" },
                if e.client_auth { " clientAuth" } else { "" }
            );
        }
        if cert.is_ca() {
            println!("    CA certificate");
        }
    }
}

/// Prints the revoked serials of each CRL in `text` (for `show`).
pub fn describe_crl(text: &str) {
    for pem in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()).flatten() {
        let Ok((_, crl)) = x509_parser::parse_x509_crl(&pem.contents) else {
            continue;
        };
        println!("  issuer {}", crl.issuer());
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect();
        println!(
            "  revoked serials: {}",
            if serials.is_empty() {
                "none".into()
            } else {
                serials.join(", ")
            }
        );
    }
}
