//! Arbitrary datagrams into the server's stateless first exchange (`on_initial`, `on_third`) under every
//! control protection, and the tls-crypt-v2 path behind a *valid* WKc: the input's first byte is the
//! metadata length, those bytes are wrapped as metadata under the server key, and the rest is a plain
//! control packet wrapped with the client key and sent with the WKc (the class of OpenVPN's 2025-2026
//! tls-crypt-v2 CVEs). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::server::handshake::fuzz_handshake;

fuzz_target!(|data: &[u8]| {
    fuzz_handshake(data);
});
