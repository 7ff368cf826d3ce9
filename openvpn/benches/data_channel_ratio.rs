//! The data channel's cost next to the raw ring AEAD, measured interleaved: each round times a batch of
//! `DataChannel` packets and a batch of raw `LessSafeKey` seal/open calls on same-sized buffers, in
//! alternating order, and the best round of each counts. Criterion (`benches/data_channel.rs`) runs its
//! benches one after the other, so on a shared machine a load change between two benches moves their
//! ratio; interleaving exposes both sides to the same load.
//!
//! Run with `cargo bench -p openvpn --bench data_channel_ratio`. Prints one line per cipher and direction:
//! `ratio CIPHER encrypt|decrypt ENGINE_NS RAW_NS PERCENT`, where PERCENT is the engine's throughput as a
//! share of the raw AEAD's (raw ns / engine ns), for 1400-byte payloads. Target: >= 85.

use std::hint::black_box;
use std::time::Instant as Clock;

use openvpn::crypto::{DataChannel, DataCipher, Inbound};
use openvpn::time::Instant;
use rand_core::SeedableRng;
use ring::aead;

#[path = "support/channel.rs"]
mod channel;
use channel::channel_pair;

const SIZE: usize = 1400;
const BATCH: usize = 64;
const ROUNDS: usize = 400;

/// Nanoseconds per call of `f` over one batch.
fn per_call(mut f: impl FnMut(usize)) -> f64 {
    let t = Clock::now();
    for i in 0..BATCH {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / BATCH as f64
}

fn measure(cipher: DataCipher, alg: &'static aead::Algorithm) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let raw =
        aead::LessSafeKey::new(aead::UnboundKey::new(alg, &vec![0x42u8; alg.key_len()]).unwrap());
    let ad = [0x48u8, 0, 0, 0, 0, 0, 0, 1];
    let nonce = |i: usize| {
        let mut n = [7u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        aead::Nonce::assume_unique_for_key(n)
    };

    // Encrypt: the zero-copy path (payload already behind the headroom) vs seal_in_place_separate_tag.
    let (mut client, mut server) = channel_pair(cipher);
    let at = client.headroom().unwrap();
    let mut packet = vec![0u8; SIZE + DataChannel::MAX_OVERHEAD];
    // Later rounds re-seal the previous ciphertext where the payload was: same length, same work.
    packet[at..at + SIZE].fill(0x45);
    let mut plain = vec![0x45u8; SIZE];
    let (mut engine_best, mut raw_best) = (f64::MAX, f64::MAX);
    for round in 0..ROUNDS {
        let mut engine = || {
            per_call(|_| {
                black_box(
                    client
                        .encrypt_in_place(black_box(&mut packet), SIZE, &mut rng)
                        .unwrap(),
                );
            })
        };
        let mut raw_seal = || {
            per_call(|i| {
                let tag = raw
                    .seal_in_place_separate_tag(
                        nonce(i),
                        aead::Aad::from(ad),
                        black_box(&mut plain),
                    )
                    .unwrap();
                let _ = black_box(tag);
            })
        };
        let (e, r) = if round % 2 == 0 {
            (engine(), raw_seal())
        } else {
            let r = raw_seal();
            (engine(), r)
        };
        engine_best = engine_best.min(e);
        raw_best = raw_best.min(r);
    }
    report(cipher, "encrypt", engine_best, raw_best);

    // Decrypt: authenticate + decrypt + replay check vs open_in_place_separate_tag, on fresh packets.
    let mut packets = vec![vec![0u8; SIZE + DataChannel::MAX_OVERHEAD]; BATCH];
    let mut lens = [0usize; BATCH];
    let mut sealed = vec![vec![0u8; SIZE]; BATCH];
    let mut tags = Vec::with_capacity(BATCH);
    let (mut engine_best, mut raw_best) = (f64::MAX, f64::MAX);
    for round in 0..ROUNDS {
        let now = Instant::from_millis(round as u64);
        for (p, n) in packets.iter_mut().zip(lens.iter_mut()) {
            *n = client.encrypt(&plain, p, &mut rng).unwrap();
        }
        tags.clear();
        for (i, s) in sealed.iter_mut().enumerate() {
            s.fill(0x45);
            tags.push(
                raw.seal_in_place_separate_tag(nonce(i), aead::Aad::from(ad), s)
                    .unwrap(),
            );
        }
        let mut engine = || {
            per_call(|i| match server.decrypt(&mut packets[i][..lens[i]], now) {
                Ok(Inbound::Ip(r)) => {
                    black_box(r);
                }
                other => panic!("decrypt: {other:?}"),
            })
        };
        let mut raw_open = || {
            per_call(|i| {
                let p = raw
                    .open_in_place_separate_tag(
                        nonce(i),
                        aead::Aad::from(ad),
                        tags[i],
                        &mut sealed[i],
                        0..,
                    )
                    .unwrap();
                black_box(p.len());
            })
        };
        let (e, r) = if round % 2 == 0 {
            (engine(), raw_open())
        } else {
            let r = raw_open();
            (engine(), r)
        };
        engine_best = engine_best.min(e);
        raw_best = raw_best.min(r);
    }
    report(cipher, "decrypt", engine_best, raw_best);
}

fn report(cipher: DataCipher, op: &str, engine: f64, raw: f64) {
    println!(
        "ratio {cipher} {op} {engine:.0} {raw:.0} {:.0}",
        100.0 * raw / engine
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    measure(DataCipher::Aes128Gcm, &aead::AES_128_GCM);
    measure(DataCipher::Aes256Gcm, &aead::AES_256_GCM);
    measure(DataCipher::ChaCha20Poly1305, &aead::CHACHA20_POLY1305);
}
