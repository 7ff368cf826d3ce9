#!/usr/bin/env bash
# Fuzz smoke test inside `make test`: every cargo-fuzz target in fuzz/ runs for FUZZ_SECONDS (default 10)
# through scripts/fuzz.sh (which installs cargo-fuzz if missing and builds with RUSTC_BOOTSTRAP=1 on the
# pinned stable toolchain). Bounded: the build plus the runs are killed after 30 minutes.
# Result: "fuzz-smoke: ok (N targets, M runs)" or FAILED with the reproducer of the crashing input.
set -u
cd "$(dirname "$0")/.."
out=$(mktemp /tmp/oxv-fuzz-smoke.XXXXXX)
trap 'rm -f "$out"' EXIT
FUZZ_SECONDS=${FUZZ_SECONDS:-10} timeout 1800 scripts/fuzz.sh smoke >"$out" 2>&1
rc=$?
grep -E "^fuzz |^    " "$out"
if [ $rc -eq 0 ]; then
    echo "fuzz-smoke: ok ($(sed -n 's/^fuzz: ok (\(.*\))$/\1/p' "$out"))"
else
    tail -5 "$out"
    echo "fuzz-smoke: FAILED (exit $rc)"
    exit 1
fi
