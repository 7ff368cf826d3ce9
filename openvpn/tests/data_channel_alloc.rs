//! Proves the data path allocates nothing: encrypt + decrypt of 1400-byte packets for every cipher under a
//! counting global allocator.

use openvpn::crypto::{
    Compression, DataChannel, DataCipher, DataKey, Digest, Inbound, ReplayWindow, Role,
};
use openvpn::time::Instant;
use openvpn::wire::KeyId;
use rand_core::SeedableRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the counter is a const-initialised
// thread-local Cell, whose access never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn encrypt_and_decrypt_do_not_allocate() {
    let mut key2 = [0u8; 256];
    for (i, b) in key2.iter_mut().enumerate() {
        *b = i as u8 ^ 0xa5;
    }
    // The counter itself works.
    let start = allocations();
    let probe = std::hint::black_box(Box::new(1u64));
    assert_eq!(allocations(), start + 1);
    drop(probe);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let payload = [0x45u8; 1400];
    for cipher in [
        DataCipher::Aes128Gcm,
        DataCipher::Aes256Gcm,
        DataCipher::ChaCha20Poly1305,
        DataCipher::Aes128Cbc(Digest::Sha1),
        DataCipher::Aes256Cbc(Digest::Sha256),
        DataCipher::Aes256Cbc(Digest::Sha512),
    ] {
        for compression in [Compression::None, Compression::StubV2, Compression::LzoStub] {
            let mut client = DataChannel::new();
            let mut server = DataChannel::new();
            client.set_compression(compression);
            server.set_compression(compression);
            let new_key = |role| {
                DataKey::new(
                    cipher,
                    &key2,
                    role,
                    KeyId::ZERO,
                    Some(1),
                    ReplayWindow::default(),
                )
                .unwrap()
            };
            client.install(new_key(Role::Client));
            server.install(new_key(Role::Server));
            let mut buf = [0u8; 1600];

            let before = allocations();
            for i in 0..200u64 {
                let n = client.encrypt(&payload, &mut buf, &mut rng).unwrap();
                match server
                    .decrypt(&mut buf[..n], Instant::from_millis(i))
                    .unwrap()
                {
                    Inbound::Ip(r) => assert_eq!(r.len(), 1400),
                    other => panic!("unexpected {other:?}"),
                }
                let at = client.headroom().unwrap();
                buf[at..at + payload.len()].copy_from_slice(&payload);
                let r = client
                    .encrypt_in_place(&mut buf, payload.len(), &mut rng)
                    .unwrap();
                assert!(matches!(
                    server.decrypt(&mut buf[r], Instant::from_millis(i)),
                    Ok(Inbound::Ip(_))
                ));
                let n = server.encrypt_ping(&mut buf, &mut rng).unwrap();
                assert_eq!(
                    client.decrypt(&mut buf[..n], Instant::from_millis(i)),
                    Ok(Inbound::Ping)
                );
            }
            assert_eq!(
                allocations() - before,
                0,
                "{cipher} {compression:?} allocated on the data path"
            );
        }
    }
}
