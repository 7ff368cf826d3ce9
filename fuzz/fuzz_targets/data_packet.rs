//! Arbitrary datagrams into the data-channel receive path (header codec, AEAD and CBC opening, replay
//! window, compression unframing, ping/OCC classification), plus an encrypt -> decrypt round trip of the
//! input as a payload under every compression framing. Nothing may panic; the round trip must be exact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::crypto::channel::fuzz_decrypt;
use openvpn::crypto::payload::{OCC_MAGIC, PING_MAGIC};
use openvpn::crypto::{
    Compression, DataChannel, DataCipher, DataKey, Digest, Inbound, ReplayWindow, Role,
};
use openvpn::time::Instant;
use openvpn::wire::{data, KeyId};
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|input: &[u8]| {
    data::fuzz_parse(input);
    fuzz_decrypt(input);

    if input.len() > 2000 {
        return;
    }
    let key2 = [0x77u8; 256];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for (cipher, compression) in [
        (DataCipher::Aes256Gcm, Compression::None),
        (DataCipher::ChaCha20Poly1305, Compression::StubV2),
        (DataCipher::Aes128Cbc(Digest::Sha1), Compression::Stub),
        (DataCipher::Aes256Cbc(Digest::Sha512), Compression::LzoStub),
    ] {
        let new = |role| {
            DataKey::new(
                cipher,
                &key2,
                role,
                KeyId::ZERO,
                Some(5),
                ReplayWindow::default(),
            )
        };
        let (Ok(c), Ok(s)) = (new(Role::Client), new(Role::Server)) else {
            panic!("fixed keys are valid")
        };
        let (mut client, mut server) = (DataChannel::new(), DataChannel::new());
        for (ch, key) in [(&mut client, c), (&mut server, s)] {
            ch.set_compression(compression);
            ch.install(key);
        }
        let mut buf = vec![0u8; input.len() + DataChannel::MAX_OVERHEAD];
        let n = client
            .encrypt(input, &mut buf, &mut rng)
            .expect("sized buffer");
        match server
            .decrypt(&mut buf[..n], Instant::ZERO)
            .expect("own packet decrypts")
        {
            Inbound::Ip(r) => assert_eq!(&buf[r], input),
            Inbound::Ping => assert_eq!(input, PING_MAGIC),
            Inbound::Occ { .. } => assert!(input.starts_with(&OCC_MAGIC)),
        }
    }
});
