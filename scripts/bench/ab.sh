#!/usr/bin/env bash
# Before/after of a change to the image: boots two kernels alternately on the scripts/netlab.sh network
# (namespaces oxv-bench-ab-*) and measures each through the router VM, so that both see the same load on a
# shared machine. Prints one line per boot and the median per kernel.
#
# Usage: scripts/bench/ab.sh KERNEL_A KERNEL_B [ROUNDS]   (default 3 rounds; each boot ~2*SECS+5 s)
# Figures: iperf3 TCP LAN -> server and -R (Mbit/s), UDP 64-byte payloads received (packets/s), ping RTT to
# the server's tunnel address (ms). BENCH_SECONDS sets the iperf3 run length (default 5). ARGS_A and ARGS_B
# are each image's boot arguments (default --nat): the same image twice with ARGS_B="--nat --busy-poll-us=50"
# compares two settings.
set -u
cd "$(dirname "$0")/../.."
NETLAB=oxv-bench-ab
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh
[ $# -ge 2 ] || { echo "usage: $0 KERNEL_A KERNEL_B [ROUNDS]" >&2; exit 2; }
kernels=("$1" "$2")
rounds=${3:-3}
secs=${BENCH_SECONDS:-5}

work=$(mktemp -d /tmp/oxv-bench-ab.XXXXXX)
netlab_init "$work"
cleanup() {
    netlab_down
    if [ -n "${KEEP_WORK:-}" ]; then echo "ab: logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Private copies: a rebuild of either path during the run must not change what is measured.
cp "$1" "$work/a.elf" && cp "$2" "$work/b.elf" || exit 1

netlab_up >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
netlab_server_start >>"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
netlab_bg iperf ip netns exec "$NS_SRV" iperf3 -s

lan() { timeout $((secs + 30)) ip netns exec "$NS_LAN" "$@"; }
measure() { # LABEL ELF BOOT_ARGS
    local label=$1 up down udp rtt
    KERNEL=$2 netlab_vm_start "$3"
    if ! netlab_wait_tunnel 60 >/dev/null; then
        echo "$label: no tunnel"; netlab_vm_stop; return
    fi
    rtt=$(lan busybox ping -c 20 -i 0.05 -q $NETLAB_SRV_TUN 2>&1 | awk -F'[/ =]+' '/round-trip/ { print $(NF-2) }')
    lan iperf3 -c $NETLAB_SRV_TUN -t "$secs" --json >"$work/up.json" 2>&1
    up=$(python3 scripts/bench/iperf.py tcp "$work/up.json")
    lan iperf3 -c $NETLAB_SRV_TUN -t "$secs" -R --json >"$work/down.json" 2>&1
    down=$(python3 scripts/bench/iperf.py tcp "$work/down.json")
    lan iperf3 -c $NETLAB_SRV_TUN -t "$secs" -u -l 64 -b 1G --json >"$work/udp.json" 2>&1
    udp=$(python3 scripts/bench/iperf.py udp "$work/udp.json" 64 | cut -d' ' -f1)
    netlab_vm_stop
    echo "$label up=$up down=$down udp64_pps=$udp rtt_ms=${rtt:--}" | tee -a "$work/results"
}

for round in $(seq "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
    for k in $order; do
        if [ "$k" = a ]; then args=${ARGS_A:---nat}; else args=${ARGS_B:---nat}; fi
        measure "$k" "$work/$k.elf" "$args"
    done
done
echo "median of $rounds rounds (A = $1, B = $2):"
python3 - "$work/results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, *fields = line.split()
    for f in fields:
        k, _, v = f.partition("=")
        try:
            rows.setdefault((label, k), []).append(float(v))
        except ValueError:
            pass
for label in ("a", "b"):
    print(label.upper(), " ".join(f"{k}={statistics.median(v):g}" for (l, k), v in rows.items() if l == label))
EOF
