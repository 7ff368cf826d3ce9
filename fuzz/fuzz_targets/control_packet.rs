//! Arbitrary datagrams into the control-channel receive path: every unwrap (none, tls-auth SHA1/SHA512,
//! tls-crypt, tls-crypt-v2 with fixed keys), the plain control-packet codec, the early-negotiation TLVs and
//! the TCP framing. Nothing may panic; a packet that parses must re-emit to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::crypto::control::{fuzz_unwrap, ControlWrap, Protection};
use openvpn::crypto::{Digest, KeyDirection, TlsCrypt};
use openvpn::time::Instant;
use openvpn::wire::{control, tcp, tlv::EarlyNegotiation, ControlRepr};

fuzz_target!(|data: &[u8]| {
    fuzz_unwrap(data);
    control::fuzz_parse(data);
    let _ = EarlyNegotiation::parse(data);
    if let Ok(Some((packet, used))) = tcp::split_frame(data) {
        assert_eq!(packet.len() + tcp::PREFIX_LEN, used);
    }
    wrap_round_trip(data);
    if let Ok(repr) = ControlRepr::parse_bytes(data) {
        let mut out = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut out).expect("a parsed packet must emit");
        // P_ACK_V1 ignores trailing bytes; everything else is reproduced exactly.
        assert_eq!(&out[..n], &data[..n]);
        if repr.opcode.is_reliable() {
            assert_eq!(n, data.len());
        }
    }
});

/// Treats the input as a plain control packet: every protection must wrap it and the peer must unwrap it
/// back to the same bytes (this drives the decrypt-and-verify paths with authentic packets).
fn wrap_round_trip(plain: &[u8]) {
    if plain.len() < 9 || plain.len() > 1500 {
        return;
    }
    let key = [0x5au8; 256];
    let pairs = [
        (
            ControlWrap::tls_auth(&key, KeyDirection::Inverse, Digest::Sha256),
            ControlWrap::tls_auth(&key, KeyDirection::Normal, Digest::Sha256),
        ),
        (
            ControlWrap::tls_crypt(&key),
            ControlWrap::new(Protection::TlsCrypt(TlsCrypt::server(&key))),
        ),
    ];
    let mut wire = vec![0u8; plain.len() + 100];
    let mut back = vec![0u8; plain.len() + 100];
    for (mut client, mut server) in pairs {
        let n = client
            .wrap(plain, 1_700_000_000, &mut wire)
            .expect("sized buffer");
        let m = server
            .unwrap(&wire[..n], Instant::ZERO, &mut back)
            .expect("authentic packet");
        assert_eq!(&back[..m], plain);
        assert!(
            server.unwrap(&wire[..n], Instant::ZERO, &mut back).is_err(),
            "replay accepted"
        );
    }
}
