//! Arbitrary disk contents into the image's boot path: `config_disk::read`, then the config parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::config::{self, InlineOnly};

fuzz_target!(|disk: &[u8]| {
    if let Ok(text) = config_disk::read(disk) {
        assert!(!text.contains('\0'));
        let _ = config::parse(text, &mut InlineOnly);
        if let Ok(padded) = config_disk::pad(text) {
            assert_eq!(padded.len() % config_disk::SECTOR_SIZE, 0);
            assert_eq!(config_disk::read(&padded), Ok(text));
        }
    }
});
