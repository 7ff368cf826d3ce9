#!/usr/bin/env bash
# The demo (`make run`). For now: boots the image, which prints its banner, the memory map, the CPU features
# it uses, the clock reading and its entropy source, waits once on its idle timer, and shuts down cleanly
# because it has nothing to serve yet. The full VPN demo (OpenVPN server in a namespace, LAN host) comes later.
#
# Environment: MACHINE=pc|q35|microvm (default q35), ARGS="boot arguments", plus scripts/qemu.sh's (ACCEL...).
set -u
cd "$(dirname "$0")/.."
echo "demo: booting build/oxvpn.elf on ${MACHINE:-q35} (${ACCEL:-tcg}); serial console follows"
scripts/qemu.sh -M "${MACHINE:-q35}" -a "${ARGS:-}"
status=$?
case $status in
    33) echo "demo: clean shutdown (QEMU status 33)"; exit 0 ;;
    *) echo "demo: image ended with QEMU status $status (see README, Exit codes)"; exit 1 ;;
esac
