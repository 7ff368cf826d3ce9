#!/usr/bin/env bash
# Bad config disks in the image (complements test-devices.sh, which covers an empty and a binary disk, and
# test-boot.sh, which covers unknown boot arguments): a config whose inline <ca> block is cut off (a
# truncated disk) and one whose <cert> and <key> do not belong together. The image must print one line
# naming the config line and the problem, and leave with the bad-configuration code 0x12 (QEMU status 37).
# Boots build/oxvpn.elf on microvm with the disk and two virtio-net NICs on unconnected hub ports (the
# config is parsed when the network comes up). Bounded: each boot is killed after $BOOT_TIMEOUT seconds.
set -u
cd "$(dirname "$0")/.."
ELF=${ELF:-build/oxvpn.elf}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
ACCEL=${ACCEL:-tcg}
[ -f "$ELF" ] || { echo "bad-disks: FAILED ($ELF missing: run make image)"; exit 1; }
if [ "$ACCEL" = kvm ]; then cpu=host; else cpu=max; fi
tmp=$(mktemp -d /tmp/oxv-bad-disks.XXXXXX)
qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# disk TEXT IMAGE: the MirageVPN format (config text, NUL-padded to 512-byte sectors, at least one NUL).
disk() {
    cp "$1" "$2"
    truncate -s %512 "$2"
    [ "$(stat -c %s "$1")" -eq "$(stat -c %s "$2")" ] && truncate -s +512 "$2"
}

# boot IMAGE LOG: boots until the VM exits (or the timeout); sets qemu_status.
boot() {
    qemu-system-x86_64 -M microvm,acpi=off -accel "$ACCEL" -cpu "$cpu" -m 256M -nodefaults -no-user-config \
        -display none -no-reboot -serial "file:$2" -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$ELF" -append "--verb=3 --ipv4=10.97.0.2/24 --ipv4-gateway=10.97.0.1 --private-ipv4=10.97.1.1/24" \
        -global virtio-mmio.force-legacy=false \
        -netdev hubport,id=pub,hubid=0 -netdev hubport,id=lan,hubid=1 \
        -device virtio-net-device,netdev=lan,mac=02:00:00:00:01:02 \
        -device virtio-net-device,netdev=pub,mac=02:00:00:00:01:01 \
        -drive "file=$1,if=none,format=raw,id=cfg,readonly=on" -device virtio-blk-device,drive=cfg \
        2>>"$tmp/qemu.err" &
    qemu_pid=$!
    local deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
    while kill -0 "$qemu_pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    qemu_status=$?
    qemu_pid=
}

invalid=openvpn/tests/configs/invalid
# The truncated disk: a real config cut in the middle of its <ca> block (what a short write leaves).
head -c 300 "$invalid/key-cert-mismatch.ovpn" >"$tmp/truncated.ovpn"
grep -q '^<ca>' "$tmp/truncated.ovpn" && ! grep -q '^</ca>' "$tmp/truncated.ovpn" \
    || { echo "bad-disks: FAILED (truncated config does not stop inside <ca>)"; exit 1; }
cp "$invalid/key-cert-mismatch.ovpn" "$tmp/mismatch.ovpn"

failed=0
# name: expected console line (ERE)
for c in "truncated:config: line [0-9]+: \`ca\`: inline block is never closed" \
         "mismatch:config: line [0-9]+: \`key\`: the client certificate and the private key do not belong together"; do
    name=${c%%:*} want=${c#*:}
    disk "$tmp/$name.ovpn" "$tmp/$name.img"
    boot "$tmp/$name.img" "$tmp/$name.log"
    line=$(grep -m1 -oE "$want" "$tmp/$name.log")
    if [ -n "$line" ] && [ "$qemu_status" = 37 ] && grep -q 'exit: bad configuration' "$tmp/$name.log"; then
        echo "bad-disks $name: ok (QEMU status 37: $line)"
    else
        echo "bad-disks $name: FAILED (QEMU status ${qemu_status:-none}, expected 37 and /$want/)"
        grep -E "ERROR|WARN|config|exit" "$tmp/$name.log" | tail -8 | sed 's/^/    /'
        tail -3 "$tmp/qemu.err" 2>/dev/null | sed 's/^/    qemu: /'
        failed=1
    fi
done
if [ $failed -eq 0 ]; then echo "bad-disks: ok"; else echo "bad-disks: FAILED"; exit 1; fi
