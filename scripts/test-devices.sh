#!/usr/bin/env bash
# In-QEMU test of the config disk: boots build/oxvpn.elf with a virtio-blk config disk (a real .ovpn,
# NUL-padded to a multiple of 512 bytes, MirageVPN's format) and checks that the SHA-256 the kernel prints
# of the config it read equals `sha256sum` of the config text. Runs on `-M pc` (SeaBIOS) and `-M q35`
# with qboot (BARs left empty, assigned by the kernel), both virtio-blk-pci, and on `-M microvm,acpi=off`
# (virtio-mmio, found through the command line). Also checks that an empty or binary disk is refused
# with a clear error and the bad-configuration exit code. Needs `make image`. Bounded: each boot is killed after $BOOT_TIMEOUT seconds.
set -u
cd "$(dirname "$0")/.."
ELF=${ELF:-build/oxvpn.elf}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
ACCEL=${ACCEL:-tcg}
[ -f "$ELF" ] || { echo "test-devices: FAIL: $ELF missing (run make image)"; exit 1; }
tmp=$(mktemp -d /tmp/oxv-devices.XXXXXX)
qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$ACCEL" = kvm ]; then cpu=host; else cpu=max; fi
QBOOT=/usr/share/qemu/qboot.rom

# boot MACHINE DISK LOG PATTERN: boots until PATTERN appears in the serial log (0) or the VM exits or the
# timeout passes (1).
boot() {
    local machine=$1 disk=$2 log=$3 pattern=$4 blk
    case $machine in
        pc) blk="-device virtio-blk-pci,drive=cfg" ;;
        # qboot leaves the BARs empty: the kernel assigns them.
        q35) blk="-device virtio-blk-pci,drive=cfg"; [ -f "$QBOOT" ] && blk="-bios $QBOOT $blk" ;;
        microvm) machine="microvm,acpi=off"; blk="-global virtio-mmio.force-legacy=false -device virtio-blk-device,drive=cfg" ;;
    esac
    # shellcheck disable=SC2086
    qemu-system-x86_64 -M "$machine" -accel "$ACCEL" -cpu "$cpu" -m 256M -nodefaults -no-user-config \
        -display none -no-reboot -serial "file:$log" -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$ELF" -append "--verb=3" \
        -drive "file=$disk,if=none,format=raw,id=cfg,readonly=on" $blk 2>>"$tmp/qemu.err" &
    qemu_pid=$!
    local deadline=$(( $(date +%s) + BOOT_TIMEOUT )) rc=1
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if grep -qE "$pattern" "$log" 2>/dev/null; then rc=0; break; fi
        kill -0 "$qemu_pid" 2>/dev/null || { grep -qE "$pattern" "$log" 2>/dev/null && rc=0; break; }
        sleep 0.2
    done
    if [ "${WAIT_EXIT:-0}" = 1 ]; then
        # Let the kernel leave through isa-debug-exit on its own; record QEMU's status.
        local i
        for i in $(seq 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; qemu_status=$?; qemu_pid=
    return $rc
}

# make_disk TEXT IMAGE: the MirageVPN disk format, TEXT then NULs up to a multiple of 512 bytes (at least one).
make_disk() {
    cp "$1" "$2"
    truncate -s %512 "$2"
    [ "$(stat -c %s "$1")" -eq "$(stat -c %s "$2")" ] && truncate -s +512 "$2"
}

# A small real config, and a large one (a real config with inline keys plus comment lines, ~80 KiB) whose
# disk takes several virtio-blk requests.
corpus=$PWD/../shared/corpus/real-configs  # shared/ beside the checkout, as in CI
small=$corpus/blackvpn--australia-tcp.ovpn
large_src=$corpus/cryptostorm--sydney-tcp-ecc.ovpn
if [ ! -f "$small" ] || [ ! -f "$large_src" ]; then
    printf 'client\ndev tun\nproto udp\nremote 10.0.0.1 1194\n' > "$tmp/small.ovpn"; small=$tmp/small.ovpn
    large_src=$small
fi
cp "$large_src" "$tmp/large.ovpn"
for i in $(seq 1400); do printf '# padding line %05d to make the disk span several requests\n' "$i"; done >> "$tmp/large.ovpn"
make_disk "$small" "$tmp/small.img"
make_disk "$tmp/large.ovpn" "$tmp/large.img"
: > "$tmp/empty.img"; truncate -s 4096 "$tmp/empty.img"
printf 'client\nremote 10.0.0.1\n\x01\x02\x7f binary\n' > "$tmp/binary.ovpn"; make_disk "$tmp/binary.ovpn" "$tmp/binary.img"

fail=0
for machine in pc q35 microvm; do
    for size in small large; do
        log=$tmp/$machine-$size.log
        if [ $size = small ]; then text=$small; else text=$tmp/large.ovpn; fi
        want=$(sha256sum < "$text" | cut -d' ' -f1)
        if boot "$machine" "$tmp/$size.img" "$log" "config: sha256=[0-9a-f]{64}"; then
            got=$(grep -oE "config: sha256=[0-9a-f]{64}" "$log" | head -1 | cut -d= -f2)
            if [ "$got" = "$want" ]; then
                echo "test-devices: $machine: $size config ($(stat -c %s "$text") bytes): sha256 matches ($want)"
            else
                echo "test-devices: $machine: $size config: sha256 mismatch: kernel $got, sha256sum $want"; fail=1
            fi
        else
            echo "test-devices: $machine: $size config: no sha256 line within ${BOOT_TIMEOUT}s; serial log:"
            sed 's/^/    /' "$log" | tail -20; fail=1
        fi
    done
    # A disk without a usable config must be refused by name, with the bad-configuration exit code
    # (0x12: QEMU status 37).
    for bad in empty binary; do
        [ $bad = binary ] && [ $machine != pc ] && continue  # the reader is the same on every machine
        log=$tmp/$machine-$bad.log
        if WAIT_EXIT=1 boot "$machine" "$tmp/$bad.img" "$log" "config disk: .*$bad" && [ "$qemu_status" = 37 ]; then
            echo "test-devices: $machine: $bad disk refused (QEMU status 37): $(grep -m1 -oE 'config disk: .*' "$log")"
        else
            echo "test-devices: $machine: $bad disk not refused with status 37 (got ${qemu_status:-none}); serial log:"
            sed 's/^/    /' "$log" | tail -20; fail=1
        fi
    done
done
if [ $fail -eq 0 ]; then echo "test-devices: PASS"; else echo "test-devices: FAIL"; fi
exit $fail
