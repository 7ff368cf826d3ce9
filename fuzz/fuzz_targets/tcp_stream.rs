//! `proto tcp` stream reassembly (§1.1): the fuzzer's bytes are a TCP stream, delivered in chunks whose
//! sizes come from the first bytes of the input, through the engine's `StreamDeframer` (fill / next_frame /
//! compaction). Checks against a reference parse of the whole stream: the same packets in the same order,
//! and a zero-length frame refused at the same place. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvpn::engine::StreamDeframer;

/// Reference: the packets of a complete parse, and whether it stopped at a zero-length frame.
fn reference(stream: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 {
            return (frames, true);
        }
        if tail.len() < len {
            break;
        }
        frames.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunking, stream)) = data.split_first() else {
        return;
    };
    let (want, want_bad) = reference(stream);
    let mut deframer = StreamDeframer::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut bad = false;
    let mut rest = stream;
    let mut step = 0usize;
    'feed: while !rest.is_empty() {
        // Chunk sizes 1..=256, from the stream's own bytes (deterministic for a given input).
        let size = 1 + usize::from(
            stream.get(step % stream.len().max(1)).copied().unwrap_or(0) ^ chunking,
        );
        step += 1;
        let chunk = &rest[..size.min(rest.len())];
        let mut offered = chunk;
        while !offered.is_empty() {
            let n = deframer.fill(offered);
            offered = &offered[n..];
            loop {
                match deframer.next_frame() {
                    Ok(Some(frame)) => got.push(frame.to_vec()),
                    Ok(None) => break,
                    Err(_) => {
                        bad = true;
                        break 'feed;
                    }
                }
            }
            if n == 0 {
                // The buffer holds a whole frame's worth and yields nothing: only possible if broken.
                panic!("deframer full without a frame");
            }
        }
        rest = &rest[chunk.len()..];
    }
    assert_eq!(got, want, "packets differ from the reference parse");
    assert_eq!(bad, want_bad, "zero-length frame handling differs");
});
