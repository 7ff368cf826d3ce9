//! Shared by the data-channel benches: a client/server `DataChannel` pair keyed from a fixed key2, so both
//! benches measure the same keys. Included with `#[path = "support/channel.rs"] mod channel;`.

use openvpn::crypto::{DataChannel, DataCipher, DataKey, ReplayWindow, Role};
use openvpn::wire::KeyId;

/// A client and a server channel holding the two directions of one key.
pub fn channel_pair(cipher: DataCipher) -> (DataChannel, DataChannel) {
    let mut key2 = [0u8; 256];
    for (i, b) in key2.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    let key = |role| {
        DataKey::new(
            cipher,
            &key2,
            role,
            KeyId::ZERO,
            Some(0),
            ReplayWindow::default(),
        )
        .unwrap()
    };
    let (mut c, mut s) = (DataChannel::new(), DataChannel::new());
    c.install(key(Role::Client));
    s.install(key(Role::Server));
    (c, s)
}
