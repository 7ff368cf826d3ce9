//! The `config-disk` binary end to end: make a disk from a config with files by path, check it, and the
//! documented exit codes.

use std::path::PathBuf;
use std::process::Command;

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_config-disk"))
}

fn corpus(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../openvpn/tests/configs")
        .join(path)
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("oxv-config-disk-{}-{name}", std::process::id()))
}

#[test]
fn make_then_check() {
    let disk = temp("easyrsa.img");
    let out = tool()
        .arg("make")
        .arg(corpus("valid/easyrsa-selfhosted-paths.ovpn"))
        .arg("-o")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&disk).unwrap();
    assert_eq!(bytes.len() % config_disk::SECTOR_SIZE, 0);
    let text = config_disk::read(&bytes).unwrap();
    let parsed = openvpn::config::Config::parse_inline(text).unwrap();
    assert_eq!(parsed.config.tls.cert_chain.len(), 1);
    let out = tool().arg("check").arg(&disk).output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(summary.contains("myvpn.example.com 1194 udp"), "{summary}");
    assert!(
        summary.contains("control channel: tls-auth (HMAC-SHA1, key-direction 1)"),
        "{summary}"
    );
    std::fs::remove_file(&disk).unwrap();
}

#[test]
fn exit_codes() {
    let disk = temp("bad.img");
    let out = tool()
        .arg("make")
        .arg(corpus("invalid/dev-tap.ovpn"))
        .arg("-o")
        .arg(&disk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2: `dev`: only `dev tun` is supported")
    );
    assert!(!disk.exists());
    let junk = temp("junk.img");
    let mut bytes = vec![0xffu8; 1000];
    bytes.extend_from_slice(&[0; 24]);
    std::fs::write(&junk, bytes).unwrap();
    assert_eq!(
        tool()
            .arg("check")
            .arg(&junk)
            .output()
            .unwrap()
            .status
            .code(),
        Some(4)
    );
    std::fs::remove_file(&junk).unwrap();
    assert_eq!(
        tool()
            .arg("check")
            .arg(temp("missing.ovpn"))
            .output()
            .unwrap()
            .status
            .code(),
        Some(3)
    );
    assert_eq!(tool().arg("make").output().unwrap().status.code(), Some(2));
    let help = tool().arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("EXIT CODES"));
}
