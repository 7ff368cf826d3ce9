//! Arbitrary datagrams into the control-channel receive path: every unwrap (none, tls-auth SHA1/SHA512,
//! tls-crypt, tls-crypt-v2 with fixed keys), the plain control-packet codec, the early-negotiation TLVs and
//! the TCP framing. Nothing may panic; a packet that parses must re-emit to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::crypto::control::fuzz_unwrap;
use openvpn::wire::{control, tcp, tlv::EarlyNegotiation, ControlRepr};

fuzz_target!(|data: &[u8]| {
    fuzz_unwrap(data);
    control::fuzz_parse(data);
    let _ = EarlyNegotiation::parse(data);
    if let Ok(Some((packet, used))) = tcp::split_frame(data) {
        assert_eq!(packet.len() + tcp::PREFIX_LEN, used);
    }
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
