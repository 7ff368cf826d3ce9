#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer) on the pinned stable toolchain: RUSTC_BOOTSTRAP=1 unlocks the -Z
# flags cargo-fuzz passes (sanitizer, coverage passes); the sanitizer runtimes ship with stable's rust-std.
#   scripts/fuzz.sh all   [TARGET...]   every target (or the named ones) for FUZZ_SECONDS each (default 60)
#   scripts/fuzz.sh smoke [TARGET...]   the same, FUZZ_SECONDS default 10 (run by scripts/test-fuzz-smoke.sh)
#   scripts/fuzz.sh build               build only
#   scripts/fuzz.sh seeds               regenerate fuzz/seeds/ (scripts/fuzz-seeds.py)
# Environment: FUZZ_SECONDS, FUZZ_SANITIZER (address, default, or none), FUZZ_MAX_LEN (default 8192).
# Targets are the [[bin]]s of fuzz/Cargo.toml. Each runs over fuzz/corpus/<target> (generated, git-ignored),
# seeded from fuzz/seeds/<target> (committed, small, real bytes) and, for the config targets, the config
# test corpus. Builds are release with debug assertions and overflow checks (cargo-fuzz's default).
# A crash, panic, failed assertion, leak, timeout or OOM leaves its input in fuzz/artifacts/<target>/, prints
# the command that reproduces it and makes the script exit 1. One summary line per target:
#   fuzz <target>: ok (<executions> runs in <seconds> s, cov <edges>, corpus <inputs>)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-smoke}
shift || true
case "$mode" in
    smoke) seconds=${FUZZ_SECONDS:-10} ;;
    all) seconds=${FUZZ_SECONDS:-60} ;;
    build) seconds=0 ;;
    seeds) exec python3 scripts/fuzz-seeds.py ;;
    *) echo "usage: scripts/fuzz.sh smoke|all|build|seeds [TARGET...]"; exit 2 ;;
esac
sanitizer=${FUZZ_SANITIZER:-address}
max_len=${FUZZ_MAX_LEN:-8192}
export RUSTC_BOOTSTRAP=1

# A fresh machine has no cargo-fuzz: install the pinned-lockfile release once.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked >/dev/null || { echo "fuzz: FAILED (cannot install cargo-fuzz)"; exit 1; }
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^oxvpn')
fi
build_args=(--sanitizer "$sanitizer")
[ "$sanitizer" = address ] || build_args=(--sanitizer none)

echo "fuzz: building ${#targets[@]} targets (sanitizer $sanitizer)"
start=$(date +%s)
build_log=$(mktemp /tmp/oxv-fuzz-build.XXXXXX)
# `cargo fuzz build` builds one target or, without a name, all of them.
built=1
if [ $# -eq 0 ]; then
    (cd fuzz && cargo fuzz build "${build_args[@]}" >"$build_log" 2>&1) || built=0
else
    for t in "${targets[@]}"; do
        (cd fuzz && cargo fuzz build "${build_args[@]}" "$t" >>"$build_log" 2>&1) || { built=0; break; }
    done
fi
if [ $built -eq 0 ]; then
    tail -30 "$build_log"; rm -f "$build_log"
    echo "fuzz: FAILED (build)"; exit 1
fi
rm -f "$build_log"
echo "fuzz: built in $(( $(date +%s) - start )) s"
[ "$mode" = build ] && exit 0

bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
failed=0
total_runs=0
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t artifacts=fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    inputs=("$corpus")
    [ -d "fuzz/seeds/$t" ] && inputs+=("fuzz/seeds/$t")
    case "$t" in config_*) inputs+=(openvpn/tests/configs/valid openvpn/tests/configs/invalid) ;; esac
    log=$artifacts/log.txt
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: runaway memory is a finding.
    ASAN_OPTIONS=detect_odr_violation=0 "$bin_dir/$t" -max_total_time="$seconds" -max_len="$max_len" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "${inputs[@]}" >"$log" 2>&1
    rc=$?
    runs=$(LC_ALL=C sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -1)
    secs=$(LC_ALL=C sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(grep -ao 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ $rc -ne 0 ]; then
        crash=$(grep -ao "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //')
        echo "fuzz $t: FAILED (exit $rc after ${runs:-?} runs; input ${crash:-?})"
        grep -aE -m3 "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /'
        echo "    reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t $root/${crash:-$artifacts/CRASH})"
        failed=1
    else
        total_runs=$((total_runs + ${runs:-0}))
        echo "fuzz $t: ok (${runs:-?} runs in ${secs:-$seconds} s, cov ${cov:-?}, corpus ${corp:-?})"
    fi
done
if [ $failed -eq 0 ]; then
    echo "fuzz: ok (${#targets[@]} targets, $total_runs runs, ${seconds} s each)"
else
    echo "fuzz: FAILED"
    exit 1
fi
