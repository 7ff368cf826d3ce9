//! Arbitrary bytes into the config parser the image runs (decode, tokens, blocks, directives, key material).
//! Whatever it returns, it must not panic; an accepted config must survive print -> parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::config::{self, InlineOnly, KeepPaths};

fuzz_target!(|data: &[u8]| {
    let _ = config::parse_bytes(data, &mut InlineOnly);
    if let Ok(parsed) = config::parse_bytes(data, &mut KeepPaths) {
        let text = config::print(&parsed.config);
        let again = config::parse(&text, &mut KeepPaths).expect("printed config must parse");
        assert_eq!(
            again.config, parsed.config,
            "print -> parse must round-trip"
        );
    }
});
