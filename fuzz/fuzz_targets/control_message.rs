//! Arbitrary decrypted TLS records into the text layer of the control channel: message splitting and
//! classification (§8.1), PUSH_REPLY accumulation across continuation messages (§8.2), key-method 2
//! parsing in both directions (§5) and the early-negotiation TLVs of a server reset (§2.7).
//! Nothing may panic; an accumulator that finished must not take more input as part of the same push.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::session::key_method2::KeyMethod2;
use openvpn::session::{split_messages, ControlMessage, PushAccumulator};
use openvpn::wire::tlv::EarlyNegotiation;

fuzz_target!(|record: &[u8]| {
    let _ = KeyMethod2::parse(record, true);
    if let Ok(km2) = KeyMethod2::parse(record, false) {
        let _ = km2.server_key_source();
    }
    let _ = EarlyNegotiation::parse(record);
    let mut push = PushAccumulator::new();
    let mut messages = 0usize;
    for message in split_messages(record) {
        messages += 1;
        match ControlMessage::parse(message) {
            ControlMessage::PushReply(text) => {
                if let Ok(Some(pushed)) = push.feed(text) {
                    let _ = (pushed.local_address(), pushed.netmask(), pushed.gateway());
                    push = PushAccumulator::new();
                }
            }
            ControlMessage::Invalid => {}
            _ => {}
        }
    }
    assert!(messages <= record.len(), "more messages than bytes");
    // The same bytes as one message, whatever they contain.
    if let Ok(text) = core::str::from_utf8(record) {
        let _ = PushAccumulator::new().feed(text);
    }
});
