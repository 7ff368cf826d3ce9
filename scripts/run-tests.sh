#!/usr/bin/env bash
# Runs every scripts/test-*.sh in name order; prints one result line each and a closing tally.
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0; failed=()
for t in scripts/test-*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    echo "=== $name"
    start=$(date +%s)
    if bash "$t"; then
        pass=$((pass + 1)); echo "=== $name: ok ($(( $(date +%s) - start ))s)"
    else
        fail=$((fail + 1)); failed+=("$name"); echo "=== $name: FAILED ($(( $(date +%s) - start ))s)"
    fi
done
echo "scripts: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
