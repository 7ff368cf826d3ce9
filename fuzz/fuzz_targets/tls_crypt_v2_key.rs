//! Arbitrary bytes as tls-crypt-v2 key material (§2.7): the client key file (PEM text and decoded body:
//! Kc followed by WKc with its length and metadata), the client wrap built from Kc + WKc, and the server's
//! unwrapping of a WKc with a fixed server key. Nothing may panic; a parsed client key re-encodes to a PEM
//! that parses to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::crypto::tls_crypt_v2::{TlsCryptV2Client, TlsCryptV2ServerKey};
use openvpn::keys::tls_crypt_v2::TlsCryptV2ClientKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = TlsCryptV2ClientKey::parse(text);
    }
    if let Ok(key) = TlsCryptV2ClientKey::from_bytes(data) {
        let again = TlsCryptV2ClientKey::parse(&key.to_pem()).expect("own PEM parses");
        assert_eq!(again, key);
    }
    if let Some((kc, wkc)) = data.split_first_chunk::<256>() {
        if let Ok(client) = TlsCryptV2Client::new(kc, wkc) {
            assert_eq!(client.wkc(), wkc);
        }
    }
    let server = TlsCryptV2ServerKey::new(&[0x5a; 128]);
    let _ = server.unwrap_client_key(data);
});
