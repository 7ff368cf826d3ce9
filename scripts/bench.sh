#!/usr/bin/env bash
# make bench: oxvpn next to Debian's openvpn 2.6 client, measured in one run on this machine; prints one table
# and rewrites the generated part of BENCHMARKS.md (scripts/bench/report.py) with it, the machine and the
# commands. Not part of `make test`: it asserts nothing, it measures.
#
# Network: scripts/netlab.sh with NETLAB=oxv-bench (the openvpn 2.6 server with tls-crypt-v2 and AES-256-GCM,
# the image in QEMU between br-pub and br-lan, a LAN host) plus oxv-bench-ref, a namespace on br-pub
# (10.60.0.3) where the reference client runs: `openvpn` with the same client .ovpn as the image's config
# disk. iperf3 -s runs in the server's namespace and is reached on its tunnel address 10.8.0.1: from the
# LAN host through the router VM (--nat), and from oxv-bench-ref through the reference client's tun.
#
# Figures, each for both clients (see BENCHMARKS.md for what each one means):
#   iperf3 TCP LAN -> server and back (-R); iperf3 UDP with 64-byte payloads at a rate neither side can carry
#   (received packets/s, loss); ping RTT through the tunnel next to the RTT without a tunnel; time from
#   start (QEMU / the openvpn process) to `Initialization Sequence Completed`; host CPU when idle over 10 s;
#   wall and CPU time of one connect (handshake) of oxvpn's engine (build/ovpn-ping) and of openvpn; the
#   smallest guest memory that still passes traffic (bisection); image size; and the data channel next to
#   the raw AEAD (cargo bench -p openvpn: criterion at 1400 bytes and the interleaved ratio bench), and the
#   client-side CPU of one TLS handshake against an in-memory server (cargo bench --bench handshake).
#
# Environment: BENCH_SECONDS (iperf3 run length, default 5), BENCH_MEM_LOW/BENCH_MEM_HIGH (bisection range in
# MiB, default 4..64), BENCH_CARGO=0 (skip cargo bench), ACCEL (tcg|kvm, passed to scripts/qemu.sh),
# KEEP_WORK=1 (keep the logs), BENCH_OUT (default BENCHMARKS.md).
set -u
cd "$(dirname "$0")/.."
root=$PWD
NETLAB=oxv-bench
# shellcheck source=scripts/netlab.sh
source scripts/netlab.sh
SECS=${BENCH_SECONDS:-5}
MEM_LOW=${BENCH_MEM_LOW:-4}
MEM_HIGH=${BENCH_MEM_HIGH:-64}
NS_REF=$NETLAB-ref
REF_ADDR=10.60.0.3

for tool in qemu-system-x86_64 openvpn iperf3 busybox python3; do
    command -v $tool >/dev/null || { echo "bench: FAILED (missing $tool: run scripts/setup.sh)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench: FAILED (needs root for network namespaces)"; exit 1; }
[ -f build/oxvpn.elf ] && [ -x build/config-disk ] && [ -x build/ovpn-ping ] \
    || { echo "bench: FAILED (run make image tools)"; exit 1; }

work=$(mktemp -d /tmp/oxv-bench.XXXXXX)
netlab_init "$work"
# A private copy: other builds may replace build/oxvpn.elf while the bench boots it again and again.
cp build/oxvpn.elf "$work/oxvpn.elf"
export KERNEL=$work/oxvpn.elf
results=$work/results
ref_pid=
cleanup() {
    [ -n "$ref_pid" ] && kill "$ref_pid" 2>/dev/null && wait "$ref_pid" 2>/dev/null
    netlab_down
    ip netns del "$NS_REF" 2>/dev/null
    if [ -n "${KEEP_WORK:-}" ]; then echo "bench: logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started=$(date +%s)

put() { echo "$1=$2" >> "$results"; }
say() { echo "bench: $*"; }
in_ns() { local ns=$1; shift; timeout "${T:-60}" ip netns exec "$ns" "$@"; }

# --- the machine ------------------------------------------------------------------------------------
put machine.nproc "$(nproc)"
put machine.cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
put machine.kernel "$(uname -sr)"
put machine.qemu "$(qemu-system-x86_64 --version | head -1)"
put machine.openvpn "$(openvpn --version 2>/dev/null | head -1 | cut -d' ' -f1-2)"
put machine.accel "${ACCEL:-tcg}"
put machine.load "$(cut -d' ' -f1-3 /proc/loadavg)"
put machine.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put machine.commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# --- sizes -------------------------------------------------------------------------------------------
strip -o "$work/oxvpn.stripped" "$KERNEL"
put image.elf "$(stat -c %s "$KERNEL")"
put image.stripped "$(stat -c %s "$work/oxvpn.stripped")"
put ref.binary "$(stat -c %s "$(command -v openvpn)")"

# --- network -----------------------------------------------------------------------------------------
say "network setup"
netlab_up >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; echo "bench: FAILED (network setup)"; exit 1; }
netlab_server_start >>"$work/setup.log" 2>&1 || { cat "$work/setup.log"; echo "bench: FAILED (server)"; exit 1; }
netlab_bg iperf ip netns exec "$NS_SRV" iperf3 -s
ip netns del "$NS_REF" 2>/dev/null
ip netns add "$NS_REF"
ip -n "$NS_REF" link set lo up
ip link add ref0 netns "$NS_VM" type veth peer name eth0 netns "$NS_REF"
ip -n "$NS_VM" link set ref0 master br-pub up
ip -n "$NS_REF" addr add $REF_ADDR/24 dev eth0
ip -n "$NS_REF" link set eth0 up
ovpn=$work/lab.client.ovpn    # written by netlab_up next to the config disk made from it

# rtt NS DEST: average ping RTT in ms over 20 echoes 50 ms apart ("-" if none came back).
rtt() {
    in_ns "$1" busybox ping -c 20 -i 0.05 -W 5 -q "$2" 2>&1 \
        | awk -F'[/ =]+' '/round-trip/ { print $(NF-2); found=1 } END { if (!found) print "-" }'
}
# iperf NAME NS [IPERF ARGS...]: one iperf3 client run against the server's tunnel address, JSON in NAME.json.
iperf() {
    local name=$1 ns=$2; shift 2
    T=$((SECS + 30)) in_ns "$ns" iperf3 -c $NETLAB_SRV_TUN -t "$SECS" --json "$@" >"$work/$name.json" 2>&1
}
# idle_cpu PID: the process's host CPU over 10 s, in % of one core: the run time of all its threads from
# /proc/PID/task/*/schedstat (nanoseconds; /proc/PID/stat counts 10 ms ticks, too coarse for an idle VPN).
idle_cpu() {
    local pid=$1 a b
    ns() { cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
    a=$(ns)
    sleep 10
    b=$(ns)
    awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.3f\n", (b - a) / 1e9 / 10 * 100; else print "-" }'
}
# throughput PREFIX NS: TCP both ways and UDP 64-byte packets; results under PREFIX.*.
throughput() {
    local p=$1 ns=$2 udp
    iperf "$p-tcp-up" "$ns"
    put "$p.tcp_up" "$(python3 scripts/bench/iperf.py tcp "$work/$p-tcp-up.json")"
    iperf "$p-tcp-down" "$ns" -R
    put "$p.tcp_down" "$(python3 scripts/bench/iperf.py tcp "$work/$p-tcp-down.json")"
    iperf "$p-udp64" "$ns" -u -l 64 -b 1G
    udp=$(python3 scripts/bench/iperf.py udp "$work/$p-udp64.json" 64)
    read -r pps loss sent <<<"$udp"
    put "$p.udp_pps" "$pps"; put "$p.udp_loss" "$loss"; put "$p.udp_sent" "$sent"
    sleep 1   # let queues drain before the next figure
}

say "direct RTT (no tunnel)"
put direct.rtt "$(rtt "$NS_REF" $NETLAB_SRV_PUB)"

# --- handshake cost: oxvpn's engine (ovpn-ping) and openvpn, alternating, 5 connects each ------------------
say "handshake cost, 5 connects each"
for i in 1 2 3 4 5; do
    python3 scripts/bench/connect-cost.py 20 "^handshake [0-9]+ ms" "$work/hs-engine-$i.log" \
        ip netns exec "$NS_REF" build/ovpn-ping "$ovpn" --count 1 >>"$work/hs-engine" || say "ovpn-ping connect $i failed"
    python3 scripts/bench/connect-cost.py 20 "Initialization Sequence Completed" "$work/hs-ref-$i.log" \
        ip netns exec "$NS_REF" openvpn --config "$ovpn" --ifconfig-noexec --route-noexec \
        >>"$work/hs-ref" || say "openvpn connect $i failed"
done
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
put engine.connect_ms "$(cut -d' ' -f1 "$work/hs-engine" 2>/dev/null | median)"
put engine.connect_cpu_ms "$(cut -d' ' -f2 "$work/hs-engine" 2>/dev/null | median)"
put ref.connect_ms "$(cut -d' ' -f1 "$work/hs-ref" 2>/dev/null | median)"
put ref.connect_cpu_ms "$(cut -d' ' -f2 "$work/hs-ref" 2>/dev/null | median)"

# --- reference: openvpn client in oxv-bench-ref ---------------------------------------------------------
say "reference: openvpn client"
ref_started=$(date +%s.%N)
ip netns exec "$NS_REF" openvpn --config "$ovpn" >"$work/ref.log" 2>&1 &
ref_pid=$!
for _ in $(seq 400); do
    grep -q "Initialization Sequence Completed" "$work/ref.log" && break
    sleep 0.05
done
if grep -q "Initialization Sequence Completed" "$work/ref.log"; then
    put ref.isc_s "$(awk -v a="$ref_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')"
    put ref.rtt "$(rtt "$NS_REF" $NETLAB_SRV_TUN)"
    throughput ref "$NS_REF"
    put ref.idle_cpu "$(idle_cpu "$ref_pid")"
else
    say "reference client did not connect"; tail -5 "$work/ref.log"
fi
kill "$ref_pid" 2>/dev/null; wait "$ref_pid" 2>/dev/null; ref_pid=

# --- oxvpn: the router VM -------------------------------------------------------------------------------
# wait_isc SECONDS: polls the console every 20 ms; prints seconds from starting QEMU to the ISC line.
wait_isc() {
    local limit=$1 start=$SECONDS
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        if grep -q "Initialization Sequence Completed" "$NETLAB_SERIAL"; then
            awk -v a="$NETLAB_VM_STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }'
            return 0
        fi
        kill -0 "$NETLAB_QEMU_PID" 2>/dev/null || return 1
        sleep 0.02
    done
    return 1
}
say "oxvpn: router VM (${ACCEL:-tcg})"
netlab_vm_start "--nat --verb=3"
if isc=$(wait_isc 60); then
    put vm.isc_s "$isc"
    put vm.isc_guest "$(grep -m1 'Initialization Sequence Completed' "$NETLAB_SERIAL" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p')"
    put vm.gw_rtt "$(rtt "$NS_LAN" $NETLAB_GW)"
    put vm.rtt "$(rtt "$NS_LAN" $NETLAB_SRV_TUN)"
    throughput vm "$NS_LAN"
    put vm.idle_cpu "$(idle_cpu "$NETLAB_QEMU_PID")"
else
    say "the router VM did not bring the tunnel up"; tail -20 "$NETLAB_SERIAL"
fi
netlab_vm_stop

# --- smallest guest memory that passes traffic (bisection) --------------------------------------------
# mem_ok MIB: boots with -m MIB, waits for the tunnel and pings through it.
mem_ok() {
    local ok=1
    MEM=${1}M netlab_vm_start "--nat --verb=3"
    if wait_isc 30 >/dev/null && in_ns "$NS_LAN" busybox ping -c 3 -W 3 $NETLAB_SRV_TUN >/dev/null 2>&1; then
        ok=0
    fi
    cp "$NETLAB_SERIAL" "$work/mem-$1.log"
    cat "$work/qemu.err" >>"$work/mem-$1.log"
    netlab_vm_stop
    return $ok
}
say "smallest -m, bisecting ${MEM_LOW}..${MEM_HIGH} MiB"
lo=$MEM_LOW hi=$MEM_HIGH
if mem_ok "$lo"; then
    put vm.min_mem "<=$lo"
elif ! mem_ok "$hi"; then
    put vm.min_mem ">$hi"
else
    while [ $((hi - lo)) -gt 1 ]; do
        mid=$(((lo + hi) / 2))
        if mem_ok "$mid"; then hi=$mid; else lo=$mid; fi
    done
    put vm.min_mem "$hi"
    put vm.min_mem_fail "$(grep -h -m1 'ERROR\|qemu' "$work/mem-$lo.log" | head -1 | cut -c1-120)"
fi
netlab_down >/dev/null 2>&1
ip netns del "$NS_REF" 2>/dev/null

# --- the data channel next to the raw AEAD ----------------------------------------------------------------
if [ "${BENCH_CARGO:-1}" != 0 ]; then
    say "cargo bench -p openvpn (criterion, 1400 bytes; interleaved ratio; handshake)"
    cargo bench -q -p openvpn --bench data_channel -- --warm-up-time 1 --measurement-time 2 '/1400$' \
        >"$work/criterion.log" 2>&1 || say "criterion bench failed (see $work/criterion.log)"
    cargo bench -q -p openvpn --bench data_channel_ratio >"$work/ratio.log" 2>&1 \
        || say "ratio bench failed (see $work/ratio.log)"
    cargo bench -q -p openvpn --bench handshake -- --warm-up-time 1 --measurement-time 3 \
        >"$work/handshake.log" 2>&1 || say "handshake bench failed (see $work/handshake.log)"
    grep '^ratio ' "$work/ratio.log" >"$work/ratio" 2>/dev/null
fi

put bench.seconds "$(( $(date +%s) - started ))"
python3 scripts/bench/report.py "$results" "${BENCH_OUT:-BENCHMARKS.md}" --criterion target/criterion \
    --ratio "$work/ratio"
