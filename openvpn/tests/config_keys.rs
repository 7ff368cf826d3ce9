//! Key material parsers against keys made by `openssl` and `openvpn --genkey` (tests/configs/keys) and the
//! vectors in shared/docs/openvpn-vectors.json.

use openvpn::keys::{
    self, pem, KeyDirection, KeyError, PrivateKey, PrivateKeyFormat, PublicKey, StaticKey,
    TlsCryptV2ClientKey,
};
use std::path::PathBuf;

fn key_file(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/configs/keys")
            .join(name),
    )
    .unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The string value of `key` inside the object `object` (enough JSON for the vectors file).
fn vector(object: &str, key: &str) -> Option<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/docs/openvpn-vectors.json");
    let doc = std::fs::read_to_string(path).ok()?;
    let start = if object.is_empty() {
        0
    } else {
        doc.find(&format!("\"{object}\""))?
    };
    let at = start + doc[start..].find(&format!("\"{key}\""))?;
    let rest = &doc[at + key.len() + 2..];
    let open = rest.find('"')? + 1;
    let close = open + rest[open..].find('"')?;
    Some(rest[open..close].replace("\\n", "\n"))
}

#[test]
fn static_key_slices_match_openvpn_test_vectors() {
    let Some(key_hex) = vector("", "test_pkt_static_key_hex") else {
        println!("note: shared/docs/openvpn-vectors.json absent; skipped");
        return;
    };
    let bytes: [u8; 256] = hex(&key_hex).try_into().unwrap();
    let key = StaticKey::parse(&StaticKey::from_bytes(bytes).to_pem()).unwrap();
    // The client (key-direction 1) signs tls-auth packets with bytes 192.. (wire reference §2.5).
    let hmac_key = hex(&vector("tls_auth_sha1_reset", "hmac_key").unwrap());
    assert_eq!(
        &key.slices(KeyDirection::Inverse).send_hmac[..20],
        &hmac_key[..]
    );
    // tls-crypt: the client sends with Ke = bytes 128..160 and Ka = bytes 192..224.
    let ke = hex(&vector("tls_crypt_reset_test_pkt", "Ke").unwrap());
    let ka = hex(&vector("tls_crypt_reset_test_pkt", "Ka").unwrap());
    let slices = key.tls_crypt_client_slices();
    assert_eq!(
        (&slices.send_cipher[..32], &slices.send_hmac[..32]),
        (&ke[..], &ka[..])
    );
}

#[test]
fn real_tls_crypt_v2_client_key_from_vectors() {
    let Some(pem_text) = vector("real_v2", "client_key_pem") else {
        return;
    };
    let key = TlsCryptV2ClientKey::parse(&pem_text).unwrap();
    assert_eq!(key.wkc.len(), 299);
    // The real P_CONTROL_HARD_RESET_CLIENT_V3 ends with the raw WKc.
    let reset = hex(&vector("real_v2", "reset_v3").unwrap());
    assert!(reset.ends_with(&key.wkc));
    assert_eq!(TlsCryptV2ClientKey::parse(&key.to_pem()).unwrap(), key);
    let server = vector("real_v2", "server_key_pem").unwrap();
    assert_eq!(
        TlsCryptV2ClientKey::parse(&server).unwrap_err(),
        KeyError::TlsCryptV2ServerKey
    );
}

#[test]
fn openvpn_genkey_files() {
    let ta = StaticKey::parse(&key_file("ta.key")).unwrap();
    assert_eq!(StaticKey::parse(&ta.to_pem()).unwrap(), ta);
    let v2 = TlsCryptV2ClientKey::parse(&key_file("tc-v2-client.key")).unwrap();
    assert_eq!(v2.wkc.len(), 299);
    assert_eq!(
        &v2.wkc[297..],
        &[0x01, 0x2b],
        "WKc ends with its own length"
    );
    assert_eq!(
        TlsCryptV2ClientKey::parse(&key_file("tc-v2-server.key")).unwrap_err(),
        KeyError::TlsCryptV2ServerKey
    );
    // A static key is not a tls-crypt-v2 key and the reverse.
    assert!(matches!(
        TlsCryptV2ClientKey::parse(&key_file("ta.key")),
        Err(KeyError::MissingPemBlock(_))
    ));
    assert!(matches!(
        StaticKey::parse(&key_file("tc-v2-client.key")),
        Err(KeyError::MissingPemBlock(_))
    ));
}

#[test]
fn private_key_forms_and_certificate_match() {
    let cases = [
        ("client-rsa.key", "client-rsa.crt", PrivateKeyFormat::Pkcs8),
        (
            "client-rsa-pkcs1.key",
            "client-rsa.crt",
            PrivateKeyFormat::Pkcs1,
        ),
        (
            "client-rsa-pkcs1.key",
            "client-rsa-easyrsa.crt",
            PrivateKeyFormat::Pkcs1,
        ),
        ("client-ec.key", "client-ec.crt", PrivateKeyFormat::Sec1),
        (
            "client-ec-pkcs8.key",
            "client-ec.crt",
            PrivateKeyFormat::Pkcs8,
        ),
        (
            "client-ed25519.key",
            "client-ed25519.crt",
            PrivateKeyFormat::Pkcs8,
        ),
        ("server.key", "server.crt", PrivateKeyFormat::Pkcs8),
    ];
    for (key_name, cert_name, format) in cases {
        let key = PrivateKey::parse(&key_file(key_name)).unwrap();
        assert_eq!(key.format, format, "{key_name}");
        let chain = keys::parse_chain(&key_file(cert_name)).unwrap();
        assert_eq!(chain.len(), 1);
        assert_eq!(key.matches(&chain[0]), Ok(true), "{key_name} / {cert_name}");
        // PEM out and back in keeps the DER.
        assert_eq!(PrivateKey::parse(&key.to_pem()).unwrap(), key);
    }
    let rsa = PrivateKey::parse(&key_file("client-rsa.key")).unwrap();
    let Some(PublicKey::Rsa { modulus, exponent }) = rsa.public_key().unwrap() else {
        panic!()
    };
    assert_eq!(
        (modulus.len(), exponent.as_slice()),
        (256, &[1u8, 0, 1][..])
    );
    let ec_cert = &keys::parse_chain(&key_file("client-ec.crt")).unwrap()[0];
    assert_eq!(rsa.matches(ec_cert), Err(KeyError::KeyCertificateMismatch));
    let other_ec = PrivateKey::parse(&key_file("server.key")).unwrap();
    assert_eq!(
        other_ec.matches(ec_cert),
        Err(KeyError::KeyCertificateMismatch)
    );
}

#[test]
fn encrypted_and_wrong_keys_are_refused_clearly() {
    for name in ["client-rsa-encrypted.key", "client-rsa-encrypted-pkcs1.key"] {
        let e = PrivateKey::parse(&key_file(name)).unwrap_err();
        assert_eq!(e, KeyError::EncryptedPrivateKey, "{name}");
        assert!(e.to_string().contains(
            "decrypt it on the host with `openssl pkey -in key.pem -out key-decrypted.pem`"
        ));
    }
    assert_eq!(
        PrivateKey::parse(&key_file("ca.crt")).unwrap_err(),
        KeyError::UnexpectedPemLabel
    );
    assert_eq!(
        keys::parse_chain(&key_file("client-rsa.key")).unwrap_err(),
        KeyError::UnexpectedPemLabel
    );
    assert!(matches!(
        keys::parse_chain("no pem here"),
        Err(KeyError::MissingPemBlock(_))
    ));
    // A certificate whose DER is cut short.
    let cert = pem::blocks(&key_file("ca.crt")).unwrap().remove(0).der;
    let mut cut = String::new();
    pem::encode("CERTIFICATE", &cert[..cert.len() / 2], &mut cut);
    assert_eq!(
        keys::parse_chain(&cut).unwrap_err(),
        KeyError::BadCertificate
    );
}

#[test]
fn certificate_chain_with_text_and_two_certs() {
    let two = format!(
        "{}\n{}",
        key_file("ca.crt"),
        key_file("client-rsa-easyrsa.crt")
    );
    let chain = keys::parse_chain(&two).unwrap();
    assert_eq!(chain.len(), 2);
    assert!(chain[1].der().len() > 500);
    assert_eq!(chain[0].subject_public_key_info()[0], 0x30);
}
