#!/usr/bin/env bash
# Guest profile of the router VM under load: where the image spends its instructions while iperf3 pushes
# TCP through it (TCG only: the profile comes from a QEMU TCG plugin, scripts/bench/tcg-profile.c).
#
# Usage: scripts/bench/profile.sh [up|down|udp64|idle] [SECONDS]
#   up     iperf3 TCP LAN -> server (default); down: -R; udp64: UDP, 64-byte payloads, -b 1G;
#   idle   no load: the tunnel up and nothing else (what wakes the VM)
# Boots build/oxvpn.elf (or $KERNEL) on the scripts/netlab.sh network (namespaces oxv-bench-p-*) with the plugin loaded,
# runs the load, stops QEMU (the plugin writes its counts at exit) and prints the top functions by executed
# guest instructions (scripts/bench/symbolize.py), plus the throughput iperf3 saw (the plugin's counters slow
# the guest down a little; compare runs with each other, not with make bench).
# PERF=1 instead records the host side with `perf record -p QEMU` during the load (no plugin) and prints where
# QEMU's time goes: translated guest code (perf shows it as unknown symbols), TCG helpers (AES-NI, softmmu
# loads/stores), the tap and virtio back ends.
set -u
cd "$(dirname "$0")/../.."
NETLAB=oxv-bench-p
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh
mode=${1:-up}
secs=${2:-10}
case $mode in
    up) iperf_args=() ;;
    down) iperf_args=(-R) ;;
    udp64) iperf_args=(-u -l 64 -b 1G) ;;
    idle) iperf_args=() ;;
    *) echo "profile: mode is up, down, udp64 or idle" >&2; exit 2 ;;
esac
[ "${ACCEL:-tcg}" = tcg ] || { echo "profile: needs ACCEL=tcg (TCG plugin)" >&2; exit 2; }

work=$(mktemp -d /tmp/oxv-bench-p.XXXXXX)
netlab_init "$work"
cleanup() {
    netlab_down
    if [ -n "${KEEP_WORK:-}" ]; then echo "profile: logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "${KERNEL:-build/oxvpn.elf}" "$work/oxvpn.elf"
export KERNEL=$work/oxvpn.elf
gcc -O2 -shared -fPIC -fvisibility=hidden -Wall -o "$work/tcg-profile.so" scripts/bench/tcg-profile.c || exit 1
# scripts/qemu.sh runs `qemu-system-x86_64` from PATH: a wrapper first in PATH adds the plugin.
mkdir -p "$work/bin"
cat > "$work/bin/qemu-system-x86_64" <<EOF
#!/bin/sh
exec $(command -v qemu-system-x86_64) -plugin "$work/tcg-profile.so,out=$work/profile.txt" "\$@"
EOF
chmod +x "$work/bin/qemu-system-x86_64"

netlab_up >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
netlab_server_start >>"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
netlab_bg iperf ip netns exec "$NS_SRV" iperf3 -s
if [ "${PERF:-0}" = 1 ]; then
    netlab_vm_start "--nat"
else
    PATH=$work/bin:$PATH netlab_vm_start "--nat"
fi
netlab_wait_tunnel 60 >/dev/null || { echo "profile: no tunnel"; tail -20 "$NETLAB_SERIAL"; exit 1; }
if [ "${PERF:-0}" = 1 ]; then
    perf record -q -F 2000 -p "$NETLAB_QEMU_PID" -o "$work/perf.data" -- sleep "$secs" >/dev/null 2>&1 &
    perf_pid=$!
fi
if [ "$mode" = idle ]; then
    sleep "$secs"
else
    timeout $((secs + 30)) ip netns exec "$NS_LAN" iperf3 -c $NETLAB_SRV_TUN -t "$secs" "${iperf_args[@]}" \
        >"$work/iperf.txt" 2>&1
    grep -E "receiver|sender" "$work/iperf.txt" | tail -2
fi
if [ "${PERF:-0}" = 1 ]; then
    wait "$perf_pid"
    netlab_vm_stop
    perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -"${TOP:-30}"
    exit 0
fi
# SIGTERM: QEMU shuts down normally and runs the plugin's exit callback.
kill -TERM "$NETLAB_QEMU_PID"
for _ in $(seq 100); do kill -0 "$NETLAB_QEMU_PID" 2>/dev/null || break; sleep 0.1; done
NETLAB_QEMU_PID=
[ -s "$work/profile.txt" ] || { echo "profile: the plugin wrote nothing"; exit 1; }
python3 scripts/bench/symbolize.py "$KERNEL" "$work/profile.txt" "${TOP:-30}"
