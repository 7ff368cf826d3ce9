//! Key hygiene across the crate: secrets are wiped by their `Zeroize` impls (which their `Drop` runs) and
//! never printed by `Debug`.

extern crate std;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use zeroize::Zeroize;

use crate::config::Credentials;
use crate::crypto::{Digest, KeyDirection};
use crate::engine::{ControlProtection, EngineConfig};
use crate::keys::StaticKey;
use crate::session::{ClientKeySource, KeyMethod2, PushedConfig, ServerKeySource};
use crate::tls::{KeyDer, TlsSettings};

const PASSWORD: &str = "hunter2-s3cret";
/// How `Debug` prints the start of [`PASSWORD`] as bytes.
const PASSWORD_BYTES: &str = "104, 117, 110, 116, 101, 114";
/// How `Debug` prints a run of [`key_bytes`].
const KEY_RUN: &str = "128, 129, 130";

fn key_bytes<const N: usize>() -> [u8; N] {
    core::array::from_fn(|i| 0x80 | (i as u8 & 0x7f))
}

fn assert_no_secret(text: &str) {
    for secret in [PASSWORD, PASSWORD_BYTES, KEY_RUN] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn debug_output_shows_no_key_password_or_token() {
    let der = KeyDer::Pkcs8(key_bytes::<200>().to_vec());
    let tls = TlsSettings {
        key: Some(der.clone()),
        ..Default::default()
    };
    let mut config = EngineConfig::new(
        ControlProtection::TlsAuth {
            key: key_bytes(),
            direction: KeyDirection::Inverse,
            digest: Digest::Sha1,
        },
        tls.clone(),
    );
    config.auth_user_pass = Some(("alice".into(), PASSWORD.into()));
    config.remote_protection = vec![Some(ControlProtection::TlsCrypt { key: key_bytes() })];
    for text in [
        format!("{der:?}"),
        format!("{tls:?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
    ] {
        assert_no_secret(&text);
    }
    // What is not secret is still shown.
    let text = format!("{config:?}");
    assert!(
        text.contains("alice") && text.contains("reneg_secs: 3600"),
        "{text}"
    );
    assert!(format!("{der:?}").contains("200 bytes"));

    let keys = ClientKeySource {
        pre_master: key_bytes(),
        random1: key_bytes(),
        random2: key_bytes(),
    };
    let msg =
        crate::session::emit_key_method2(&keys, "V4", Some("alice"), Some(PASSWORD), "IV_VER=1\n")
            .unwrap();
    let parsed = KeyMethod2::parse(&msg, true).unwrap();
    let server = ServerKeySource {
        random1: key_bytes(),
        random2: key_bytes(),
    };
    let pushed = PushedConfig {
        auth_token: Some(PASSWORD.into()),
        ..Default::default()
    };
    let credentials = Credentials {
        username: "alice".into(),
        password: PASSWORD.into(),
    };
    for text in [
        format!("{keys:?}"),
        format!("{parsed:?}"),
        format!("{server:?}"),
        format!("{pushed:?}"),
        format!("{credentials:?}"),
    ] {
        assert_no_secret(&text);
    }
    assert!(format!("{parsed:?}").contains("alice"));
}

#[test]
fn zeroize_wipes_key_material() {
    let mut keys = ClientKeySource {
        pre_master: key_bytes(),
        random1: key_bytes(),
        random2: key_bytes(),
    };
    keys.zeroize();
    assert!(keys
        .pre_master
        .iter()
        .chain(&keys.random1)
        .chain(&keys.random2)
        .all(|&b| b == 0));

    let mut server = ServerKeySource {
        random1: key_bytes(),
        random2: key_bytes(),
    };
    server.zeroize();
    assert!(server
        .random1
        .iter()
        .chain(&server.random2)
        .all(|&b| b == 0));

    let mut key = StaticKey::from_bytes(key_bytes());
    key.zeroize();
    assert!(key.as_bytes().iter().all(|&b| b == 0));

    for mut protection in [
        ControlProtection::TlsAuth {
            key: key_bytes(),
            direction: KeyDirection::Normal,
            digest: Digest::Sha256,
        },
        ControlProtection::TlsCrypt { key: key_bytes() },
        ControlProtection::TlsCryptV2 {
            kc: key_bytes(),
            wkc: vec![9; 300],
        },
        ControlProtection::TlsCryptV2Server {
            key: key_bytes(),
            policy: Default::default(),
        },
    ] {
        protection.zeroize();
        match &protection {
            ControlProtection::TlsAuth { key, .. } | ControlProtection::TlsCrypt { key } => {
                assert!(key.iter().all(|&b| b == 0))
            }
            ControlProtection::TlsCryptV2 { kc, wkc } => {
                assert!(kc.iter().all(|&b| b == 0) && wkc.is_empty())
            }
            ControlProtection::TlsCryptV2Server { key, .. } => {
                assert!(key.iter().all(|&b| b == 0))
            }
            ControlProtection::None => unreachable!(),
        }
    }

    let mut der = KeyDer::Sec1(key_bytes::<100>().to_vec());
    der.zeroize();
    let (KeyDer::Pkcs8(d) | KeyDer::Sec1(d) | KeyDer::Pkcs1(d)) = &der;
    assert!(d.is_empty());

    let mut config = EngineConfig::new(
        ControlProtection::TlsCrypt { key: key_bytes() },
        TlsSettings {
            key: Some(KeyDer::Pkcs8(key_bytes::<64>().to_vec())),
            ..Default::default()
        },
    );
    config.auth_user_pass = Some(("alice".into(), PASSWORD.into()));
    config.zeroize();
    let (user, pass) = config.auth_user_pass.clone().unwrap_or_default();
    assert!(user.is_empty() && pass.is_empty());
    assert!(matches!(
        &config.protection,
        ControlProtection::TlsCrypt { key } if key.iter().all(|&b| b == 0)
    ));
    assert!(matches!(&config.tls.key, Some(KeyDer::Pkcs8(d)) if d.is_empty()));

    let mut credentials = Credentials {
        username: "alice".into(),
        password: String::from(PASSWORD),
    };
    credentials.zeroize();
    assert!(credentials.password.is_empty());

    // Derived data keys are handed out in a wrapper that wipes them on drop.
    let key2: zeroize::Zeroizing<[u8; 256]> = crate::crypto::prf::derive_key2_legacy(
        &key_bytes(),
        &crate::crypto::prf::Km2Randoms {
            random1: key_bytes(),
            random2: key_bytes(),
        },
        &crate::crypto::prf::Km2Randoms {
            random1: key_bytes(),
            random2: key_bytes(),
        },
        &crate::wire::SessionId([1; 8]),
        &crate::wire::SessionId([2; 8]),
    );
    assert!(key2.iter().any(|&b| b != 0));
}
