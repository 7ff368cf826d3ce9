#!/usr/bin/env bash
# Boots the oxvpn image in QEMU with the serial console on stdout; exits with QEMU's status, which the image
# sets through isa-debug-exit: (code << 1) | 1, e.g. 33 = clean shutdown (see README "Exit codes").
#
# Usage: scripts/qemu.sh [-M pc|q35|microvm] [-a "BOOT ARGS"] [-- EXTRA QEMU ARGS...]
#   -M MACHINE   machine type (default: $MACHINE or q35)
#   -a ARGS      kernel command line (boot arguments, see `-a --help`)
#   -- ...       passed to QEMU as they are (NICs, disks: e.g. -device virtio-net-pci,netdev=n0)
# Environment:
#   ACCEL=tcg|kvm    accelerator (default tcg with -cpu max; kvm uses -cpu host)
#   CPU=...          override the -cpu model
#   MEM=256M         guest memory
#   KERNEL=build/oxvpn.elf
#   FIRMWARE=qboot|seabios   pc/q35 firmware (default qboot: boots in a third of SeaBIOS's time)
#   QEMU_TIMEOUT=N   kill QEMU after N seconds (exit status 124), default: none
#   DEBUG_EXIT=off   leave out isa-debug-exit (the image then halts instead of exiting)
#   PIT=off          no i8254 PIT (any machine): Firecracker and Cloud Hypervisor have none
#   RTC=off          no CMOS RTC (microvm only; q35/pc always have one): Firecracker has none
#
# Fast boot: -nodefaults -no-user-config (no VGA, no default NIC or drives), qboot instead of SeaBIOS, and
# option ROMs disabled on virtio NICs (romfile=), since the image needs no PXE. microvm has no PCI probing at all.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
machine=${MACHINE:-q35}
append=
while [ $# -gt 0 ]; do
    case $1 in
        -M) machine=$2; shift 2 ;;
        -a) append=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "qemu.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done

accel=${ACCEL:-tcg}
case $accel in
    tcg) cpu=${CPU:-max} ;;
    kvm) cpu=${CPU:-host} ;;
    *) echo "qemu.sh: ACCEL must be tcg or kvm, not $accel" >&2; exit 2 ;;
esac
kernel=${KERNEL:-$here/build/oxvpn.elf}
[ -f "$kernel" ] || { echo "qemu.sh: $kernel missing: run 'make image'" >&2; exit 2; }

args=(-nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot
      -accel "$accel" -cpu "$cpu" -m "${MEM:-256M}"
      -kernel "$kernel" -append "$append")
if [ "${DEBUG_EXIT:-on}" != off ]; then
    args+=(-device isa-debug-exit,iobase=0xf4,iosize=0x04)
fi
case $machine in
    pc|q35)
        m=$machine; [ "${PIT:-on}" = off ] && m=$m,pit=off
        [ "${RTC:-on}" = off ] && { echo "qemu.sh: RTC=off needs -M microvm ($machine always has a CMOS RTC)" >&2; exit 2; }
        args+=(-M "$m" -global virtio-net-pci.romfile= -global e1000.romfile=)
        if [ "${FIRMWARE:-qboot}" = qboot ] && [ -f /usr/share/qemu/qboot.rom ]; then
            args+=(-bios /usr/share/qemu/qboot.rom)
        fi
        ;;
    microvm)
        # isa-serial for the console, rtc for the wall clock, pit for TSC calibration under TCG (PIT=off and
        # RTC=off take them away, as Firecracker has neither: the image then needs --tsc-khz and --wall-clock
        # under TCG, which has no kvmclock). acpi=off makes
        # QEMU list virtio-mmio devices on the command line (virtio_mmio.device=...), where the image finds
        # them; force-legacy=false gives modern (virtio 1.x) MMIO transports.
        args+=(-M microvm,x-option-roms=off,isa-serial=on,rtc=${RTC:-on},pit=${PIT:-on},acpi=off
               -global virtio-mmio.force-legacy=false)
        ;;
    *) echo "qemu.sh: machine must be pc, q35 or microvm, not $machine" >&2; exit 2 ;;
esac

if [ -n "${QEMU_TIMEOUT:-}" ]; then
    exec timeout --foreground -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 "${args[@]}" "$@"
fi
exec qemu-system-x86_64 "${args[@]}" "$@"
