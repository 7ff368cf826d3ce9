#!/usr/bin/env bash
# End-to-end check of the config disk tool: make a disk from a config whose files are referenced by path,
# check its size and summary, check that a bad config is refused with its line and a non-zero exit code,
# and that every config in the project corpus either makes a disk the image accepts or is refused cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/oxv-config-disk.XXXXXX)
ns=oxv-cfgdisk-$$
trap 'rm -rf "$tmp"; ip netns del "$ns" 2>/dev/null || true' EXIT
fail() { echo "test-config-disk: FAIL: $*"; exit 1; }

timeout 900 cargo build -q -p config-disk
tool=target/debug/config-disk
corpus=openvpn/tests/configs

# 1. Files by path (ca, cert, key, tls-auth relative to the config's folder) are inlined.
"$tool" make "$corpus/valid/easyrsa-selfhosted-paths.ovpn" -o "$tmp/disk.img" >"$tmp/make.out" 2>"$tmp/make.err" \
    || fail "make failed: $(cat "$tmp/make.err")"
size=$(stat -c %s "$tmp/disk.img")
[ $((size % 512)) -eq 0 ] || fail "disk size $size is not a multiple of 512"
[ "$size" -gt 0 ] || fail "empty disk"
grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp/disk.img" || fail "the certificate was not inlined"
grep -q -- '-----BEGIN OpenVPN Static key V1-----' "$tmp/disk.img" || fail "ta.key was not inlined"
[ "$(tail -c 1 "$tmp/disk.img" | od -An -tx1 | tr -d ' ')" = "00" ] || fail "the disk does not end in NUL padding"
grep -q 'persist-key' "$tmp/make.err" || fail "host-only directives were not reported as warnings"

"$tool" check "$tmp/disk.img" >"$tmp/check.out" 2>&1 || fail "check of the new disk failed: $(cat "$tmp/check.out")"
for want in 'remotes:' 'myvpn.example.com 1194 udp' 'protocol: udp' 'data ciphers: AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:AES-256-CBC' \
            'control channel: tls-auth (HMAC-SHA1, key-direction 1)' 'server verification: ca (1 certificate), remote-cert-tls server' \
            'client auth: certificate'; do
    grep -qF -- "$want" "$tmp/check.out" || fail "summary lacks '$want': $(cat "$tmp/check.out")"
done

# 2. Credentials by path and by --auth-user-pass.
"$tool" make "$corpus/valid/mullvad-style-files-by-path.ovpn" -o "$tmp/mullvad.img" >/dev/null 2>&1 || fail "mullvad-style make"
grep -q 's3cret pass' "$tmp/mullvad.img" || fail "auth-user-pass file not inlined"
if "$tool" make "$corpus/valid/bom-utf8.ovpn" -o "$tmp/bom.img" 2>"$tmp/bom.err"; then fail "bare auth-user-pass accepted"; fi
grep -q 'line 4: `auth-user-pass`' "$tmp/bom.err" || fail "bare auth-user-pass error lacks its line: $(cat "$tmp/bom.err")"
"$tool" make "$corpus/valid/bom-utf8.ovpn" -o "$tmp/bom.img" --auth-user-pass "$corpus/files/userpass.txt" >/dev/null 2>&1 \
    || fail "--auth-user-pass not used"
"$tool" check "$tmp/bom.img" | grep -q 'username "alice"' || fail "credentials missing from the bom disk"
# UTF-16LE (Windows editors) is decoded; the disk holds UTF-8.
"$tool" make "$corpus/valid/utf16le-windows.ovpn" -o "$tmp/utf16.img" --auth-user-pass "$corpus/files/userpass.txt" >/dev/null 2>&1 \
    || fail "UTF-16LE config not converted"
head -c 5 "$tmp/utf16.img" | grep -q '^# oxv' || fail "the UTF-16 disk does not start with UTF-8 text"
grep -aq '^client$' "$tmp/utf16.img" || fail "the UTF-16 disk lacks the client directive"

# 3. A bad config exits 1 and names the line; a junk disk exits 4; usage errors exit 2.
set +e
"$tool" make "$corpus/invalid/unknown-directive.ovpn" -o "$tmp/bad.img" 2>"$tmp/bad.err"; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "bad config exit code $rc, expected 1"
grep -q 'line 3: `data-ciphers-fallbacks`: unknown directive' "$tmp/bad.err" || fail "bad config message: $(cat "$tmp/bad.err")"
[ ! -e "$tmp/bad.img" ] || fail "a disk was written for a refused config"
head -c 1000 /dev/urandom >"$tmp/junk.img"; head -c 24 /dev/zero >>"$tmp/junk.img"
set +e
"$tool" check "$tmp/junk.img" >/dev/null 2>&1; rc=$?
"$tool" make >/dev/null 2>&1; rc2=$?
set -e
[ "$rc" -eq 4 ] || fail "junk disk exit code $rc, expected 4"
[ "$rc2" -eq 2 ] || fail "usage error exit code $rc2, expected 2"
"$tool" --help | grep -q 'EXIT CODES' || fail "--help lacks the exit codes"

# 4. Every invalid corpus config is refused with a line number or a whole-file reason, never a crash.
for f in "$corpus"/invalid/*.ovpn; do
    set +e
    "$tool" check "$f" >/dev/null 2>"$tmp/err"; rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "$f: exit code $rc, expected 1 ($(cat "$tmp/err"))"
    grep -qE ': (line [0-9]+|config): ' "$tmp/err" || fail "$f: message names no line: $(cat "$tmp/err")"
done

# 5. Stock OpenVPN 2.6 accepts the syntax of every disk the tool makes (it gets past option parsing and tries
#    to connect; run in an empty network namespace so nothing leaves the machine).
checked=0
if command -v openvpn >/dev/null && ip netns add "$ns" 2>/dev/null; then
    for f in "$corpus"/valid/*.ovpn; do
        name=$(basename "$f" .ovpn)
        "$tool" make "$f" -o "$tmp/$name.img" --auth-user-pass "$corpus/files/userpass.txt" >/dev/null 2>&1 \
            || fail "$f: make failed"
        tr -d '\0' <"$tmp/$name.img" >"$tmp/$name.printed.ovpn"
        set +e
        ip netns exec "$ns" timeout 2 openvpn --config "$tmp/$name.printed.ovpn" --verb 3 --connect-retry-max 1 \
            >"$tmp/$name.openvpn.log" 2>&1
        set -e
        if grep -qE 'Options error|Unrecognized option|Use --help for more information' "$tmp/$name.openvpn.log"; then
            fail "stock openvpn refuses the printed $name: $(grep -m3 -E 'error|Unrecognized' "$tmp/$name.openvpn.log")"
        fi
        checked=$((checked + 1))
    done
else
    echo "test-config-disk: note: openvpn or network namespaces unavailable; stock-parser check skipped"
fi

echo "test-config-disk: ok (disk $size bytes; $(ls "$corpus"/invalid/*.ovpn | wc -l) invalid configs refused with their line; $checked printed configs accepted by stock openvpn)"
