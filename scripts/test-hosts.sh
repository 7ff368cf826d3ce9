#!/usr/bin/env bash
# The image on machines shaped like the minimal VMMs (docs/HOSTS.md), on the namespaced network of
# scripts/netlab.sh (namespaces oxv-hosts-PID-*), Debian's openvpn 2.6 as the server. Firecracker and Cloud
# Hypervisor need KVM, which this machine lacks, so QEMU reproduces their device models under TCG:
#   Firecracker-like: -M microvm with pit=off,rtc=off and acpi=off: no PIT, no CMOS RTC, no PCI, the virtio-mmio
#     devices announced only on the kernel command line as virtio_mmio.device=SIZE@ADDR:IRQ (Firecracker's form)
#   Cloud Hypervisor-like: -M q35,pit=off: virtio-pci, no PIT (a CMOS RTC, as Cloud Hypervisor has)
# TCG has no kvmclock and no CPUID TSC leaf (on the real VMMs kvmclock gives both the TSC rate and the wall
# clock), so with the PIT gone the host states the TSC rate with --tsc-khz (measured first by one boot of the
# image on a machine with a PIT), and without an RTC the time with --wall-clock. One line per assertion:
#   refusals: no PIT and no --tsc-khz -> exit 0x14 naming every missing source; no wall clock at all -> exit
#     0x14 before any handshake, naming --wall-clock
#   for each machine: the clock lines name their sources; the NICs and disk were found the machine's way;
#     tunnel up; the LAN host pings the server's tunnel address and the host behind; DNS through the tunnel;
#     one TCP download with a SHA-256 compare
# Settings: HOSTS_SIZE_MB (download size, default 4), KEEP_WORK=1. Bounded; cleans up in a trap.
set -u
cd "$(dirname "$0")/.."
NETLAB=oxv-hosts-$$
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh
SIZE_MB=${HOSTS_SIZE_MB:-4}
fails=0 passes=0
pass() { echo "hosts: PASS: $*"; passes=$((passes + 1)); }
fail() { echo "hosts: FAIL: $*"; fails=$((fails + 1)); }

for tool in qemu-system-x86_64 openvpn dnsmasq busybox curl; do
    command -v $tool >/dev/null || { echo "hosts: FAIL (missing $tool: run scripts/setup.sh)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "hosts: FAIL (needs root for network namespaces)"; exit 1; }
[ -f build/oxvpn.elf ] && [ -x build/config-disk ] || { echo "hosts: FAIL (run make image tools)"; exit 1; }

work=$(mktemp -d /tmp/oxv-hosts.XXXXXX)
netlab_init "$work"
cleanup() {
    netlab_down
    if [ -n "${KEEP_WORK:-}" ] || [ "$fails" -gt 0 ]; then echo "hosts: logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started=$(date +%s)
( sleep "${HOSTS_TIMEOUT:-400}" && echo "hosts: FAIL (over ${HOSTS_TIMEOUT:-400}s)" && kill -TERM $$ ) 2>/dev/null &
netlab_pids+=($!)

# The TSC rate as the host knows it: one boot on a microvm that still has its PIT (no devices: the image
# calibrates, logs the rate and shuts down).
khz=$(PIT=on QEMU_TIMEOUT=30 scripts/qemu.sh -M microvm 2>&1 | tee "$work/calibrate.log" |
      sed -n 's/.*clock: TSC \([0-9]*\)\.\([0-9]*\) MHz from PIT calibration.*/\1\2/p' | head -1)
if [ -z "$khz" ]; then
    fail "no TSC rate from a calibration boot with a PIT"; tail -5 "$work/calibrate.log"; exit 1
fi

# Refusal 1: no PIT and nothing else states the TSC rate.
PIT=off RTC=off QEMU_TIMEOUT=30 scripts/qemu.sh -M microvm >"$work/refuse-tsc.log" 2>&1; status=$?
if [ "$status" = 41 ] && grep -q "no TSC rate: no --tsc-khz boot argument, no CPUID leaf 0x40000010, 0x15 or 0x16, no kvmclock, and the PIT does not count" "$work/refuse-tsc.log"; then
    pass "no PIT and no --tsc-khz: exit 0x14 (QEMU status 41), the console names every missing TSC source"
else
    fail "no PIT and no --tsc-khz: QEMU status $status, console: $(grep -m2 'clock' "$work/refuse-tsc.log" | tr '\n' ' ')"
fi

netlab_up >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; echo "hosts: FAIL (network setup)"; exit 1; }
netlab_services || { echo "hosts: FAIL (server side)"; exit 1; }

# Refusal 2: a TSC rate but no wall clock at all (no RTC, no kvmclock under TCG, no --wall-clock): the tunnel
# must not check certificates against a clock nobody set.
MACHINE=microvm PIT=off RTC=off netlab_vm_start "--tsc-khz=$khz"
netlab_vm_wait_exit 60
if [ "$NETLAB_VM_STATUS" = 41 ] && grep -q "no wall clock.*--wall-clock=UNIX" "$NETLAB_SERIAL" \
    && ! grep -q "STATE WAIT" "$NETLAB_SERIAL"; then
    pass "no wall clock: exit 0x14 before any handshake, the console asks for --wall-clock"
else
    fail "no wall clock: QEMU status $NETLAB_VM_STATUS, console: $(grep -m3 'wall clock\|exit' "$NETLAB_SERIAL" | tr '\n' ' ')"
fi
netlab_vm_stop

lan() { timeout "${T:-20}" ip netns exec "$NS_LAN" "$@"; }
ping_ok() { # DEST
    timeout 20 ip netns exec "$NS_LAN" busybox ping -c 3 -W 2 "$1" >"$work/ping.log" 2>&1 &&
        grep -q ", [1-9] packets received" "$work/ping.log"
}
head -c $((SIZE_MB << 20)) /dev/urandom > "$work/www/blob"
want=$(sha256sum < "$work/www/blob" | cut -d' ' -f1)

# machine LABEL MACHINE PIT RTC "ARGS" CLOCK_PATTERN DEVICE_PATTERN
machine() {
    local label=$1 m=$2 pit=$3 rtc=$4 args=$5 clocks=$6 devices=$7 t got
    MACHINE=$m PIT=$pit RTC=$rtc netlab_vm_start "$args"
    if ! t=$(netlab_wait_tunnel 60); then
        fail "$label: no tunnel within 60 s"; grep -v "^\[.*DEBUG" "$NETLAB_SERIAL" | tail -15
        netlab_vm_stop; return
    fi
    if grep -q "$clocks" "$NETLAB_SERIAL"; then
        pass "$label: clocks from their sources: $(grep -o 'clock: TSC.*from [^,]*\|wall clock: unix [0-9]* ([^)]*)' "$NETLAB_SERIAL" | tr '\n' ';')"
    else
        fail "$label: clock lines: $(grep 'clock' "$NETLAB_SERIAL" | tr '\n' ' ')"
    fi
    if [ "$(grep -c "$devices" "$NETLAB_SERIAL")" -ge 3 ]; then
        pass "$label: two NICs and the config disk found: $(grep -o "$devices[^,]*" "$NETLAB_SERIAL" | tr '\n' ';')"
    else
        fail "$label: devices: $(grep -i 'virtio' "$NETLAB_SERIAL" | head -4 | tr '\n' ' ')"
    fi
    pass "$label: tunnel up $t s after starting QEMU, console says 'Initialization Sequence Completed'"
    ping_ok "$NETLAB_SRV_TUN" && ping_ok "$NETLAB_BEHIND" \
        && pass "$label: the LAN host pings the server's tunnel address $NETLAB_SRV_TUN and the host behind $NETLAB_BEHIND" \
        || fail "$label: LAN pings through the tunnel: $(tail -2 "$work/ping.log" | tr '\n' ' ')"
    if lan busybox nslookup behind.oxvpn.test "$NETLAB_GW" 2>&1 | grep -q "Address.*$NETLAB_BEHIND"; then
        pass "$label: DNS: the LAN host asked the gateway, dnsmasq behind the tunnel answered"
    else
        fail "$label: DNS through the tunnel"
    fi
    got=$(T=90 lan curl -s "http://$NETLAB_BEHIND:8080/blob" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] && pass "$label: TCP download of $SIZE_MB MB from the host behind, sha256 equal" \
        || fail "$label: TCP download of $SIZE_MB MB: sha256 differs or transfer cut"
    netlab_vm_stop
}

machine "firecracker-like (microvm, pit=off, rtc=off, mmio from the command line)" microvm off off \
    "--tsc-khz=$khz --wall-clock=$(date +%s)" \
    "wall clock: unix [0-9]* (--wall-clock)" "mmio 0x[0-9a-f]*: virtio-"
machine "cloud-hypervisor-like (q35, pit=off, virtio-pci)" q35 off on "--tsc-khz=$khz" \
    "wall clock: unix [0-9]* (CMOS RTC)" "pci [0-9a-f:.]*: virtio-"

echo "hosts: $passes passed, $fails failed in $(( $(date +%s) - started )) s"
[ "$fails" -eq 0 ]
