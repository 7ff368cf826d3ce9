//! The whole client engine fed arbitrary datagrams after a fixed start: the engine is built (plain TLS,
//! tls-crypt, tls-crypt-v2 or TCP framing, chosen by the first byte), has sent its reset, and then the
//! input is a sequence of records `[kind, len_hi, len_lo, bytes...]`: a datagram from the "server", time
//! passing (`[5, secs, ms/4]`, no payload: timers, retransmits, hand-window reconnects), the transport
//! failing or an IP packet to send.
//! The randomness is a constant so the client session id is `11 11 11 11 11 11 11 11` and a seed can
//! answer the reset with a matching ACK. Nothing may panic, and no action may carry an oversized packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::engine::{Action, ControlProtection, Engine, EngineConfig, RemoteSpec};
use openvpn::session::Transport;
use openvpn::time::Instant;
use openvpn::tls::TlsSettings;
use rand_chacha::rand_core::{CryptoRng, RngCore};

const CA_DER: &[u8] = include_bytes!("../../openvpn/src/engine/testdata/ca.der");
const V2_CLIENT_KEY: &str = include_str!("../../openvpn/src/engine/testdata/v2-client.key");
const UNIX: u64 = 1_800_000_000;

/// Constant "randomness": deterministic session ids and key material for the fuzzer.
struct Constant;

impl RngCore for Constant {
    fn next_u32(&mut self) -> u32 {
        0x1111_1111
    }
    fn next_u64(&mut self) -> u64 {
        0x1111_1111_1111_1111
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0x11);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        dest.fill(0x11);
        Ok(())
    }
}

impl CryptoRng for Constant {}

fn v2_key() -> ([u8; 256], Vec<u8>) {
    let key =
        openvpn::keys::tls_crypt_v2::TlsCryptV2ClientKey::parse(V2_CLIENT_KEY).expect("test key");
    (*key.kc.as_bytes(), key.wkc)
}

fn drain(engine: &mut Engine, now: Instant, rng: &mut Constant) {
    // A bounded number of actions per event: an engine that produces actions forever is a bug too.
    for _ in 0..256 {
        match engine.poll_action(now, rng) {
            None => return,
            Some(Action::SendToRemote(bytes)) => {
                assert!(
                    !bytes.is_empty() && bytes.len() <= 4096 + 2,
                    "datagram of {} bytes",
                    bytes.len()
                );
            }
            Some(Action::Connect(_)) => engine.transport_ready(now),
            Some(_) => {}
        }
    }
    panic!("engine kept producing actions");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let protection = match mode % 4 {
        0 | 3 => ControlProtection::None,
        1 => ControlProtection::TlsCrypt { key: [0x3c; 256] },
        _ => {
            let (kc, wkc) = v2_key();
            ControlProtection::TlsCryptV2 { kc, wkc }
        }
    };
    let tls = TlsSettings {
        ca: vec![CA_DER.to_vec()],
        ..Default::default()
    };
    let mut config = EngineConfig::new(protection, tls);
    let transport = if mode % 4 == 3 {
        Transport::Tcp4
    } else {
        Transport::Udp4
    };
    config.remotes = vec![
        RemoteSpec {
            host: "192.0.2.1".into(),
            port: 1194,
            transport,
            server_poll_timeout_secs: None,
        },
        RemoteSpec {
            host: "192.0.2.2".into(),
            port: 1194,
            transport,
            server_poll_timeout_secs: None,
        },
    ];
    config.connect_retry_max = Some(3);
    let mut rng = Constant;
    let mut now = Instant::ZERO;
    let Ok(mut engine) = Engine::new(config, now, UNIX, &mut rng) else {
        panic!("fixed config is valid")
    };
    drain(&mut engine, now, &mut rng);

    let mut out = vec![0u8; 2048];
    while let [kind, hi, lo, tail @ ..] = rest {
        if kind % 8 == 5 {
            // Time passes: `hi` seconds and `lo` * 4 ms; no payload.
            now =
                now + core::time::Duration::from_millis(u64::from(*hi) * 1000 + u64::from(*lo) * 4);
            rest = tail;
            drain(&mut engine, now, &mut rng);
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (record, next) = tail.split_at(len);
        rest = next;
        match kind % 8 {
            0..=4 => {
                let mut datagram = record.to_vec();
                let _ = engine.receive(now, &mut datagram);
            }
            6 => {
                let _ = engine.encapsulate(now, record, &mut out, &mut rng);
            }
            _ => engine.transport_failed(now),
        }
        drain(&mut engine, now, &mut rng);
        let _ = (engine.poll_at(), engine.is_connected(), engine.stats());
    }
});
