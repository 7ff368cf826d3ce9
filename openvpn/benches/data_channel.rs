//! Data-channel throughput: oxvpn's `DataChannel` (framing, header, packet-id, replay window included)
//! next to the raw ring AEAD on the same buffers, for 64/512/1400-byte payloads.
//!
//! Run with `cargo bench -p openvpn --bench data_channel`.

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use openvpn::crypto::{DataChannel, DataCipher, Digest};
use openvpn::time::Instant;
use rand_core::SeedableRng;
use ring::aead;

#[path = "support/channel.rs"]
mod channel;
use channel::channel_pair;

const SIZES: [usize; 3] = [64, 512, 1400];

fn bench_data_channel(c: &mut Criterion) {
    let ciphers = [
        DataCipher::Aes128Gcm,
        DataCipher::Aes256Gcm,
        DataCipher::ChaCha20Poly1305,
        DataCipher::Aes256Cbc(Digest::Sha256),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut group = c.benchmark_group("data_channel");
    for cipher in ciphers {
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let payload = vec![0x45u8; size];
            let mut buf = vec![0u8; size + DataChannel::MAX_OVERHEAD];

            let (mut client, _) = channel_pair(cipher);
            group.bench_function(BenchmarkId::new(format!("{cipher}/encrypt"), size), |b| {
                // The zero-copy path: the payload already sits in the packet buffer.
                let at = client.headroom().unwrap();
                buf[at..at + size].copy_from_slice(&payload);
                b.iter(|| {
                    client
                        .encrypt_in_place(black_box(&mut buf), size, &mut rng)
                        .unwrap()
                })
            });

            let (mut client, _) = channel_pair(cipher);
            group.bench_function(
                BenchmarkId::new(format!("{cipher}/encrypt_copy"), size),
                |b| {
                    b.iter(|| {
                        client
                            .encrypt(black_box(&payload), &mut buf, &mut rng)
                            .unwrap()
                    })
                },
            );

            let (mut client, mut server) = channel_pair(cipher);
            let mut now = 0u64;
            group.bench_function(BenchmarkId::new(format!("{cipher}/decrypt"), size), |b| {
                b.iter_batched_ref(
                    || {
                        let mut packet = vec![0u8; size + DataChannel::MAX_OVERHEAD];
                        let n = client.encrypt(&payload, &mut packet, &mut rng).unwrap();
                        packet.truncate(n);
                        packet
                    },
                    |packet| {
                        now += 1;
                        server.decrypt(packet, Instant::from_millis(now)).unwrap()
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

fn bench_raw_ring(c: &mut Criterion) {
    let algs: [(&str, &'static aead::Algorithm); 3] = [
        ("AES-128-GCM", &aead::AES_128_GCM),
        ("AES-256-GCM", &aead::AES_256_GCM),
        ("CHACHA20-POLY1305", &aead::CHACHA20_POLY1305),
    ];
    let mut group = c.benchmark_group("raw_ring_aead");
    for (name, alg) in algs {
        let key_bytes = vec![0x42u8; alg.key_len()];
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &key_bytes).unwrap());
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let mut buf = vec![0x45u8; size];
            let ad = [0x48u8, 0, 0, 0, 0, 0, 0, 1];
            let nonce = || aead::Nonce::assume_unique_for_key([7u8; 12]);
            group.bench_function(BenchmarkId::new(format!("{name}/seal"), size), |b| {
                b.iter(|| {
                    key.seal_in_place_separate_tag(
                        nonce(),
                        aead::Aad::from(ad),
                        black_box(&mut buf),
                    )
                    .unwrap()
                })
            });
            group.bench_function(BenchmarkId::new(format!("{name}/open"), size), |b| {
                b.iter_batched_ref(
                    || {
                        let mut sealed = vec![0x45u8; size];
                        let tag = key
                            .seal_in_place_separate_tag(nonce(), aead::Aad::from(ad), &mut sealed)
                            .unwrap();
                        (sealed, tag)
                    },
                    |(sealed, tag)| {
                        key.open_in_place_separate_tag(
                            nonce(),
                            aead::Aad::from(ad),
                            *tag,
                            sealed,
                            0..,
                        )
                        .map(|p| p.len())
                        .unwrap()
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_data_channel, bench_raw_ring);
criterion_main!(benches);
