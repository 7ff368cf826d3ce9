#!/usr/bin/env bash
# Prepares build/ring-none: a copy of cargo's registry `ring` 0.17 that also assembles its asm for
# target_os = "none" (the kernel target), used through kernel/Cargo.toml's [patch.crates-io].
#
# Why: ring's build.rs only builds its perlasm (AES-NI, GHASH, ChaCha20, SHA) for a fixed list of target_os
# values; on "none" it would fall back to no asm and miss symbols. x86_64 "none" has the same ELF/SysV ABI as
# Linux, so adding "none" to that list is all it takes. ring's source is never committed: this script copies it
# from the cargo registry (downloading it first with `cargo fetch` in a scratch project if needed).
#
# Usage: scripts/ring-none.sh [OUT_DIR]   (default build/ring-none)
set -eu
cd "$(dirname "$0")/.."
out=${1:-build/ring-none}
mkdir -p build

# The version the kernel resolves (kernel/Cargo.lock pins it); any 0.17 when there is no lock yet.
ver=$(awk '/^name = "ring"$/ { getline; gsub(/"/, "", $3); print $3; exit }' kernel/Cargo.lock 2>/dev/null || true)
req=${ver:+=$ver}
req=${req:-0.17}

# Fetch through a scratch project so this works before the kernel's lock file can resolve (the patch path
# must exist for cargo to resolve the kernel workspace at all).
scratch=build/ring-fetch
mkdir -p "$scratch/src"
cat >"$scratch/Cargo.toml" <<EOF
[package]
name = "ring-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
ring = { version = "$req", default-features = false }

[workspace]
EOF
echo 'fn main() {}' >"$scratch/src/main.rs"
(cd "$scratch" && cargo fetch -q)
if [ -z "$ver" ]; then
    ver=$(awk '/^name = "ring"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$scratch/Cargo.lock")
fi

cargo_home=${CARGO_HOME:-$HOME/.cargo}
src=$(ls -d "$cargo_home"/registry/src/*/ring-"$ver" 2>/dev/null | head -n1)
[ -n "$src" ] && [ -f "$src/build.rs" ] || { echo "ring-none: ring $ver not found in $cargo_home/registry/src" >&2; exit 1; }

# Bump when the edits below change, so existing copies are redone.
stamp="$ver none-asm allow-warnings"

# Already prepared for this version: keep the files (and their mtimes, so cargo does not rebuild ring).
if [ "$(cat "$out/.ring-none-version" 2>/dev/null)" = "$stamp" ]; then
    touch "$out/Cargo.toml"
    exit 0
fi

rm -rf "$out.tmp"
cp -a "$src" "$out.tmp"
# Add "none" to the Linux-ABI list of operating systems (first entry, so the edit is one line).
grep -q '^const LINUX_ABI: &\[&str\] = &\[$' "$out.tmp/build.rs" \
    || { echo "ring-none: ring $ver build.rs has no LINUX_ABI list; update this script" >&2; exit 1; }
sed -i 's/^const LINUX_ABI: &\[&str\] = &\[$/const LINUX_ABI: \&[\&str] = \&[\n    "none",/' "$out.tmp/build.rs"
grep -q '^    "none",$' "$out.tmp/build.rs" || { echo "ring-none: patch did not apply" >&2; exit 1; }
# As a path dependency ring is no longer "foreign" to cargo, so its lints would flood every kernel build.
sed -i '1i #![allow(warnings)]' "$out.tmp/src/lib.rs"
echo "$stamp" >"$out.tmp/.ring-none-version"
rm -rf "$out"
mv "$out.tmp" "$out"
touch "$out/Cargo.toml"
echo "ring-none: ring $ver with target_os \"none\" asm in $out"
