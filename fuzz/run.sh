#!/usr/bin/env bash
# Builds and runs the fuzz targets in this crate with libFuzzer (nightly Rust; cargo-fuzz not required).
#   fuzz/run.sh smoke [TARGET...]   each target for 20 s   (FUZZ_SECONDS overrides)
#   fuzz/run.sh all   [TARGET...]   each target for 600 s
# Without TARGETs, every [[bin]] in fuzz/Cargo.toml runs. Seeds: fuzz/corpus/<target> plus the project's
# config corpus. A crash leaves its input in fuzz/artifacts/<target>/ and makes the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-smoke}; shift || true
case "$mode" in
    smoke) seconds=${FUZZ_SECONDS:-20} ;;
    all) seconds=${FUZZ_SECONDS:-600} ;;
    *) echo "usage: fuzz/run.sh smoke|all [TARGET...]"; exit 2 ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' Cargo.toml | grep -v '^oxvpn')
triple=x86_64-unknown-linux-gnu
# What cargo-fuzz passes; --target keeps the instrumentation out of build scripts.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo +nightly build --release --target "$triple" --bins
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=("corpus/$t")
    case "$t" in config_*) seeds+=(../openvpn/tests/configs/valid ../openvpn/tests/configs/invalid) ;; esac
    echo "=== fuzz $t for ${seconds}s"
    if ! "target/$triple/release/$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
            -artifact_prefix="artifacts/$t/" "${seeds[@]}" 2>"artifacts/$t/log.txt"; then
        echo "=== fuzz $t: CRASH (see fuzz/artifacts/$t/)"; tail -30 "artifacts/$t/log.txt"; failed=1
    else
        echo "=== fuzz $t: ok ($(grep -o 'Done [0-9]* runs' "artifacts/$t/log.txt" || true))"
    fi
done
exit $failed
