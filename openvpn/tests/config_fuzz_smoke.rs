//! A stable-Rust stand-in for the `fuzz/` targets, run by `cargo test`: mutated corpus configs (bit flips,
//! byte insertions, truncations, line shuffles, splices) go through the parser the image runs. It must never
//! panic, and whatever it accepts must survive print -> parse.

use openvpn::config::{self, InlineOnly, KeepPaths};
use std::path::PathBuf;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"'",
    b"\\",
    b"#",
    b";",
    b"<",
    b">",
    b"</ca>",
    b"<connection>",
    b"</connection>",
    b"\r\n",
    b"\n",
    b"\0",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xc3",
    b" ",
    b"--",
    b"[inline]",
    b"setenv opt ",
    b"ignore-unknown-option ",
    b"-----BEGIN ",
    b"-----END ",
    b"=",
    b"0",
    b"65536",
    b"99999999999999999999",
    b"tls-auth [inline] 1\n",
];

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, piece.iter().copied());
            }
            2 => data.truncate(at),
            3 if !data.is_empty() => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at.min(end)..end);
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(200).min(other.len() - from);
                data.splice(at..at, other[from..from + len].iter().copied());
            }
            _ => {
                // Swap two lines.
                let text = String::from_utf8_lossy(&data).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                if lines.len() > 2 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                }
                data = lines.join("\n").into_bytes();
            }
        }
    }
    data
}

fn seeds() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![
        root.join("tests/configs/valid"),
        root.join("tests/configs/invalid"),
    ];
    dirs.push(root.join("../../shared/corpus/real-configs"));
    let mut seeds = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "ovpn") {
                seeds.push(std::fs::read(path).unwrap());
            }
        }
    }
    seeds
}

#[test]
fn mutated_configs_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;
    for round in 0..20000 {
        let a = &seeds[round % seeds.len()];
        let b = &seeds[rng.below(seeds.len())];
        let data = mutate(&mut rng, a, b);
        let _ = config::parse_bytes(&data, &mut InlineOnly);
        let _ = config_disk_like(&data);
        if let Ok(parsed) = config::parse_bytes(&data, &mut KeepPaths) {
            accepted += 1;
            let text = config::print(&parsed.config);
            let again = config::parse(&text, &mut KeepPaths)
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{text}"));
            assert_eq!(again.config, parsed.config, "round {round}");
        }
    }
    assert!(
        accepted > 100,
        "the mutations should keep many configs valid ({accepted})"
    );
}

/// What the image does with a disk: cut at the first NUL, then parse.
fn config_disk_like(data: &[u8]) -> Option<()> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let text = std::str::from_utf8(&data[..end]).ok()?;
    config::parse(text, &mut InlineOnly).ok().map(|_| ())
}

#[test]
fn pathological_inputs_stay_bounded() {
    // Deep `setenv opt` chains must not recurse; huge lines and many blocks must not blow up.
    let chain = "setenv opt ".repeat(100_000) + "verb 3\n";
    let e = config::parse(&format!("client\n{chain}"), &mut InlineOnly).unwrap_err();
    assert_eq!((e.line, e.kind), (2, config::ErrorKind::InvalidArgument));
    let blocks = "<connection>\nremote a\n</connection>\n".repeat(20_000);
    let e = config::parse(&format!("client\n{blocks}"), &mut InlineOnly).unwrap_err();
    assert_eq!(e.kind, config::ErrorKind::NoServerVerification);
    let long = format!("client\nremote {}\n", "x".repeat(1 << 20));
    assert!(config::parse(&long, &mut InlineOnly).is_err());
    let unclosed = "<ca>\n".repeat(10_000);
    assert_eq!(
        config::parse(&unclosed, &mut InlineOnly).unwrap_err().kind,
        config::ErrorKind::UnclosedBlock
    );
}
