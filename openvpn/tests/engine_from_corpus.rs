//! Every real-world config of the shared corpus that the parser accepts must drive the engine once its
//! files are inlined (as `config-disk make` does): `EngineConfig::from_config` and `Engine::new` accept it.
//! Files are stood in for: referenced credentials and a missing `ca` get test values, an unread
//! control-channel key file is dropped.

use openvpn::config::{self, AuthUserPass, ControlChannel, Credentials, KeepPaths};
use openvpn::engine::{Action, Engine, EngineConfig};
use openvpn::keys::Certificate;
use openvpn::time::Instant;
use rand_chacha::rand_core::SeedableRng;

const CA_DER: &[u8] = include_bytes!("../src/engine/testdata/ca.der");

#[test]
fn corpus_configs_drive_the_engine() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/real-configs"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("corpus not present at {dir}; skipping");
        return;
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (mut parsed_ok, mut driven, mut failures) = (0, 0, Vec::new());
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("ovpn") {
            continue;
        }
        let Ok(parsed) = config::parse_bytes(&std::fs::read(&path).unwrap(), &mut KeepPaths) else {
            continue;
        };
        parsed_ok += 1;
        let mut c = parsed.config;
        if matches!(
            c.auth_user_pass,
            Some(AuthUserPass::Path(_) | AuthUserPass::Prompt)
        ) {
            c.auth_user_pass = Some(AuthUserPass::Credentials(Credentials {
                username: "u".into(),
                password: "p".into(),
            }));
        }
        if c.tls.ca.is_empty() && c.tls.peer_fingerprints.is_empty() {
            c.tls
                .ca
                .push(Certificate::from_der(CA_DER.to_vec()).unwrap());
        }
        // Files by path stand in as read (`config-disk make` inlines them); the engine refuses unread ones.
        c.tls.unread_files.clear();
        if matches!(c.control_channel, ControlChannel::Unread { .. }) {
            c.control_channel = ControlChannel::None;
        }
        for r in &mut c.remotes {
            if matches!(r.control_channel, Some(ControlChannel::Unread { .. })) {
                r.control_channel = None;
            }
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match EngineConfig::from_config(&c)
            .map_err(|e| e.to_string())
            .and_then(|ec| {
                Engine::new(ec, Instant::ZERO, 1_800_000_000, &mut rng).map_err(|e| e.to_string())
            }) {
            Ok(mut engine) => {
                assert!(
                    matches!(
                        engine.poll_action(Instant::ZERO, &mut rng),
                        Some(Action::Connect(_))
                    ),
                    "{name}"
                );
                driven += 1;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("{driven} of {parsed_ok} parsed corpus configs drive the engine");
    assert!(
        failures.is_empty(),
        "configs the parser accepts but the engine refuses:\n{}",
        failures.join("\n")
    );
    assert!(driven >= 30, "only {driven} corpus configs were checked");
}
