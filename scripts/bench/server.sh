#!/usr/bin/env bash
# make bench-server: the server role (issue 15), the image next to Debian's openvpn 2.6 server, measured side
# by side in one run on the namespaced network of scripts/server-lab.sh. Asserts nothing, measures; not part
# of `make test`. Prints one table (medians over the rounds, ratio image/openvpn) and rewrites the part of
# BENCHMARKS.md between the `bench-server:begin`/`bench-server:end` markers (BENCH_OUT; BENCH_OUT=- : no file).
#
# Network: scripts/server-lab.sh with both servers on 192.0.2.1 in turn: the image in QEMU on tap-s1, and the
# namespace $SL-srv (openvpn, one UDP process, NAT with nft); the one not under test is down (QEMU stopped,
# $SL-srv's eth0 down) and every namespace's neighbour cache is flushed at each switch. Both serve the same
# ovpn-keys server config (UDP, tls-crypt-v2 with per-client keys, topology subnet, keepalive 10 60,
# explicit-exit-notify) to the same client profiles; the image's gets `status-interval 5` (its console client
# list), openvpn's `local 192.0.2.1`. The clients are Debian's openvpn 2.6, one namespace each.
#
# Rounds alternate image, openvpn, image, openvpn, ... (BENCH_ROUNDS pairs, default 3). In each round:
#  connect  BENCH_CONNECT (20) clients started at once; seconds until every one logs `Initialization
#           Sequence Completed`; connects/s = N / that; server CPU per connect = the server process's
#           run time over that window / N (QEMU's for the image, all its threads; /proc/PID/task/*/schedstat,
#           with utime+stime from /proc/PID/stat recorded next to it)
#  tput     iperf3 -c 192.0.2.250 (the inet host, through the tunnel and the server's NAT) for BENCH_SECONDS
#           (5): from one client, then from 10 clients at once (one iperf3 server per client on the inet
#           host), the receivers' Mbit/s summed
#  flood    the clients stopped, scripts/server-probe.py flood --count 10000 (validly wrapped tls-crypt-v2
#           resets from random ports and session ids) from the probe host; server CPU from before the flood to
#           1 s after it
# Then memory, once per server:
#  openvpn  BENCH_MEM_CLIENTS (100) clients at once; VmRSS of the server process before and after all
#           connected, growth / N
#  image    the smallest QEMU -m (MiB, bisection over BENCH_MEM_LOW..BENCH_MEM_HIGH, 8..96) at which all N
#           clients connect within BENCH_MEM_TIMEOUT (180 s) and QEMU still runs: with the config as it is
#           (default max-clients 1024), with `max-clients N`, and with `max-clients N` and 1 client; the last
#           two give memory per connected client, (min(N) - min(1)) / (N - 1), in 1 MiB steps. Each trial's
#           console is kept. (The image logs its heap use only at exit, and a server never exits, so -m is
#           the figure.)
#
# Environment: BENCH_ROUNDS, BENCH_CONNECT, BENCH_SECONDS, BENCH_MEM_CLIENTS (0: skip memory),
# BENCH_MEM_LOW, BENCH_MEM_HIGH, BENCH_MEM_TIMEOUT, BENCH_OUT, KEEP_WORK=1 (keep logs; kept anyway when a server fails),
# MACHINE/ACCEL (scripts/qemu.sh).
set -u
cd "$(dirname "$0")/../.."
SL=oxsb-$$
# shellcheck source=scripts/server-lab.sh
source scripts/server-lab.sh
ROUNDS=${BENCH_ROUNDS:-3}
NCONN=${BENCH_CONNECT:-20}
SECS=${BENCH_SECONDS:-5}
NMEM=${BENCH_MEM_CLIENTS:-100}
MEM_LOW=${BENCH_MEM_LOW:-8}
MEM_HIGH=${BENCH_MEM_HIGH:-96}
MEM_TIMEOUT=${BENCH_MEM_TIMEOUT:-180}
NTPUT=10
READY="Initialization Sequence Completed"
HZ=$(getconf CLK_TCK)

for tool in openvpn python3 iperf3 qemu-system-x86_64 nft; do
    command -v $tool >/dev/null || { echo "bench-server: FAILED (missing $tool: run scripts/setup.sh)"; exit 1; }
done
python3 -c 'import cryptography' 2>/dev/null || { echo "bench-server: FAILED (python3-cryptography for server-probe.py)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-server: FAILED (needs root for network namespaces)"; exit 1; }
[ -f build/oxvpn.elf ] && [ -x build/ovpn-keys ] && [ -x build/config-disk ] \
    || { echo "bench-server: FAILED (run make image tools)"; exit 1; }

work=$(mktemp -d /tmp/oxs-bench.XXXXXX)
sl_init "$work"
L=$work/logs
# A private copy: a rebuild of build/oxvpn.elf during the run must not change what is measured.
cp build/oxvpn.elf "$work/oxvpn.elf"
export KERNEL=$work/oxvpn.elf
results=$work/results
keep=${KEEP_WORK:-}
cleanup() {
    sl_down
    if [ -n "$keep" ]; then echo "bench-server: logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started=$(date +%s)
put() { echo "$1=$2" >> "$results"; }
say() { echo "bench-server: $(date +%T) $*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# cpu_ms PID: user+system CPU of the process (all threads, live and exited) in ms, from /proc/PID/stat
# (10 ms ticks). run_ms PID: the run time of its live threads in ms, from /proc/PID/task/*/schedstat
# (nanoseconds): the figure in the table; both are recorded, they agree to a few ticks.
cpu_ms() { awk -v hz="$HZ" '{ sub(/^.*\) /, ""); print ($12 + $13) * 1000 / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
run_ms() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.1f", s / 1e6 }'; }
diff_ms() { awk -v a="$1" -v b="$2" -v n="${3:-1}" 'BEGIN { printf "%.1f", (b - a) / n }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

put machine.nproc "$(nproc)"
put machine.cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
put machine.kernel "$(uname -sr)"
put machine.qemu "$(qemu-system-x86_64 --version | head -1)"
put machine.openvpn "$(openvpn --version 2>/dev/null | head -1 | cut -d' ' -f1-2)"
put machine.accel "${ACCEL:-tcg}"
put machine.load "$(cut -d' ' -f1-3 /proc/loadavg)"
put machine.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put machine.commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# --- network: taps for the image and a namespace for openvpn, both 192.0.2.1 ---------------------------------
say "network setup"
nclients=$(( NMEM > NCONN ? NMEM : NCONN ))
[ "$nclients" -le 220 ] || { echo "bench-server: at most 220 clients (192.0.2.11-230)"; exit 2; }
[ "$nclients" -ge "$NTPUT" ] || nclients=$NTPUT
setup() {
    SERVER=image sl_up || return 1
    sl_host srv $SL_SRV_PUB || return 1
    sl_in "$SL_SRV" sysctl -qw net.ipv4.ip_forward=1
    sl_nat || return 1
    ip -n "$SL_SRV" link set eth0 down
    local i
    for i in $(seq "$nclients"); do sl_host c$i 192.0.2.$((10 + i)) || return 1; done
    for i in $(seq 0 $((NTPUT - 1))); do
        sl_bg iperf$i ip netns exec "$SL_INET_NS" iperf3 -s -B $SL_INET -p $((5201 + i))
    done
}
t=$(now)
setup >"$L/setup.log" 2>&1 || { cat "$L/setup.log"; echo "bench-server: FAILED (network setup)"; keep=1; exit 1; }
say "network with $nclients client namespaces in $(elapsed "$t" "$(now)") s"
t=$(now)
sl_pki || { cat "$L/pki.log"; echo "bench-server: FAILED (ovpn-keys pki)"; keep=1; exit 1; }
c_img=$(sl_server_conf img udp $SL_SRV_PUB $SL_NET_UDP "status-interval 5") \
    && c_ovpn=$(sl_server_conf ovpn udp $SL_SRV_PUB $SL_NET_UDP "local $SL_SRV_PUB") \
    && p_probe=$(sl_profile probe udp $SL_SRV_PUB) \
    || { cat "$L/pki.log"; echo "bench-server: FAILED (server configs)"; keep=1; exit 1; }
for i in $(seq "$nclients"); do
    sl_profile c$i udp $SL_SRV_PUB >/dev/null || { cat "$L/pki.log"; echo "bench-server: FAILED (profile c$i)"; keep=1; exit 1; }
done
say "PKI, configs and $nclients profiles in $(elapsed "$t" "$(now)") s"

flush_neigh() {
    local ns
    for ns in $(ip netns list | awk '{ print $1 }' | grep "^$SL-"); do ip -n "$ns" neigh flush all 2>/dev/null; done
}

# server_start KIND NAME: starts the image or openvpn as the server on 192.0.2.1 (MEM=... for the image's -m);
# sets SRV_PID (the QEMU or openvpn process) and SRV_LOG. Returns 1 if it did not get ready.
server_start() {
    local kind=$1 name=$2 i
    SRV_LOG=$L/$name.log SRV_NAME=$name
    flush_neigh
    if [ "$kind" = image ]; then
        sl_image_server "$name" 1 "$c_img" $SL_SRV_PUB || return 1
        SRV_PID=$(sl_pid "$name")
        for i in $(seq 600); do   # 60 s, or until QEMU exits (a -m too small stops it at boot)
            grep -q "$READY" "$SRV_LOG" && break
            kill -0 "$SRV_PID" 2>/dev/null || return 1
            sleep 0.1
        done
        grep -q "$READY" "$SRV_LOG" || return 1
    else
        ip -n "$SL_SRV" link set eth0 up
        sl_openvpn_server "$name" "$c_ovpn" || return 1
        SRV_PID=$(sl_pid "$name")
    fi
    # `ip netns exec` and scripts/qemu.sh exec, so the background job is the server process itself.
    case $(cat "/proc/$SRV_PID/comm" 2>/dev/null) in qemu-system-*|openvpn) ;; *)
        say "server $name: process $SRV_PID is $(cat "/proc/$SRV_PID/comm" 2>/dev/null), not the server"; return 1 ;;
    esac
}
server_stop() {
    sl_stop "$SRV_NAME"
    ip -n "$SL_SRV" link set eth0 down
    SRV_PID=
}

# clients_start N / clients_wait N TIMEOUT / clients_stop N: c1..cN all at once; wait until all logged READY
# (prints how many did); stop them all at once (each sends its explicit-exit-notify).
clients_start() { local i; for i in $(seq "$1"); do sl_client c$i "$work/c$i.ovpn"; done; }
clients_up() { grep -l "$READY" $(seq -f "$L/c%g.log" "$1") 2>/dev/null | wc -l; }
clients_wait() {
    local n=$1 limit=$2 start=$SECONDS up
    while up=$(clients_up "$n"); [ "$up" -lt "$n" ] && [ $((SECONDS - start)) -lt "$limit" ]; do sleep 0.02; done
    echo "$up"
}
clients_stop() {
    local i pid pids=()
    for i in $(seq "$1"); do
        pid=$(sl_pid c$i); [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null; pids+=("$pid"); eval "SL_PID_c$i="
    done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
}
missing() { local i; for i in $(seq "$1"); do grep -q "$READY" "$L/c$i.log" || printf 'c%s ' "$i"; done; }

# flood_drops KIND: datagrams to the server lost before it read them: for the image, the TX drops of its tap
# (the guest did not take the frame off the virtio queue in time); for openvpn, the UDP receive buffer errors of
# its namespace.
flood_drops() {
    if [ "$1" = image ]; then
        ip -n "$SL_SWL" -s -j link show tap-s1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["dropped"])'
    else
        ip netns exec "$SL_SRV" awk '/^Udp:/ { if (h) { print $6; exit } h = 1 }' /proc/net/snmp
    fi
}

# handshakes_seen: resets_answered + refused in the image's last status line (first packets it read).
handshakes_seen() {
    grep "status:" "$SRV_LOG" | tail -1 | sed -E 's/.*resets_answered=([0-9]+).* refused=([0-9]+).*/\1 \2/' \
        | awk '{ print $1 + $2 } END { if (!NR) print 0 }'
}

# --- the rounds: connect, throughput, flood ------------------------------------------------------------------
round() { # KIND N
    local kind=$1 r=$2 name="$1-r$2" t0 t1 c0 c1 u0 u1 d0 h0 up s0 s1 m i pids st
    say "round $r: $kind"
    if ! server_start "$kind" "$name"; then
        say "$kind server did not start (log: $L/$name.log)"; tail -5 "$L/$name.log"; keep=1; server_stop; return
    fi
    sleep 1
    # connect
    s0=$(rss_kib "$SRV_PID"); c0=$(cpu_ms "$SRV_PID"); u0=$(run_ms "$SRV_PID"); t0=$(now)
    clients_start "$NCONN"
    up=$(clients_wait "$NCONN" 120)
    t1=$(now); c1=$(cpu_ms "$SRV_PID"); u1=$(run_ms "$SRV_PID"); s1=$(rss_kib "$SRV_PID")
    if [ "$up" -lt "$NCONN" ]; then
        say "$kind: only $up/$NCONN clients connected in 120 s (missing: $(missing "$NCONN"))"; keep=1
        put "$kind.connect_fail.$r" "$up/$NCONN"
    else
        m=$(elapsed "$t0" "$t1")
        put "$kind.connect_s" "$m"
        put "$kind.connect_per_s" "$(awk -v n="$NCONN" -v s="$m" 'BEGIN { printf "%.2f", n / s }')"
        put "$kind.cpu_per_connect_ms" "$(diff_ms "$u0" "$u1" "$NCONN")"
        put "$kind.cpu_per_connect_ms_stat" "$(diff_ms "$c0" "$c1" "$NCONN")"
        [ "$kind" = openvpn ] && put "$kind.rss_per_client_kib_$NCONN" "$(( (s1 - s0) / NCONN ))"
        say "$kind: $NCONN clients in $m s, server CPU $(diff_ms "$u0" "$u1") ms (stat: $(diff_ms "$c0" "$c1") ms)"
    fi
    # throughput: 1 client, then NTPUT at once
    if [ "$up" -ge "$NTPUT" ]; then
        timeout $((SECS + 30)) ip netns exec "$SL-c1" iperf3 -c $SL_INET -p 5201 -t "$SECS" -J >"$L/$name-tput1.json" 2>&1
        put "$kind.tput1" "$(python3 scripts/bench/iperf.py tcp "$L/$name-tput1.json")"
        sleep 1
        pids=()
        for i in $(seq "$NTPUT"); do
            timeout $((SECS + 30)) ip netns exec "$SL-c$i" iperf3 -c $SL_INET -p $((5200 + i)) -t "$SECS" -J \
                >"$L/$name-tput$NTPUT-$i.json" 2>&1 &
            pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i"; done
        put "$kind.tput$NTPUT" "$(for i in $(seq "$NTPUT"); do python3 scripts/bench/iperf.py tcp "$L/$name-tput$NTPUT-$i.json"; done \
            | awk '$1 != "-" { s += $1; n++ } END { if (n == '"$NTPUT"') printf "%.1f", s; else printf "-" }')"
        say "$kind: iperf3 1 client $(tail -2 "$results" | head -1 | cut -d= -f2) Mbit/s, $NTPUT clients $(tail -1 "$results" | cut -d= -f2) Mbit/s"
    fi
    clients_stop "$NCONN"
    sleep 2
    # flood
    d0=$(flood_drops "$kind")
    [ "$kind" = image ] && h0=$(handshakes_seen)
    c0=$(cpu_ms "$SRV_PID"); u0=$(run_ms "$SRV_PID"); t0=$(now)
    timeout 120 ip netns exec "$SL_PROBE_NS" python3 scripts/server-probe.py flood --count 10000 \
        --server $SL_SRV_PUB:$SL_PORT --key "$p_probe" >"$L/$name-flood.log" 2>&1
    t1=$(now)
    sleep 1
    c1=$(cpu_ms "$SRV_PID"); u1=$(run_ms "$SRV_PID")
    [ "$kind" = image ] && st=$(grep -c "status:" "$SRV_LOG")
    put "$kind.flood_dropped" "$(( $(flood_drops "$kind") - d0 ))"
    [ "$kind" = openvpn ] && put openvpn.flood_seen "$(( 10000 - $(flood_drops "$kind") + d0 ))"
    put "$kind.flood_cpu_ms" "$(diff_ms "$u0" "$u1")"
    put "$kind.flood_cpu_ms_stat" "$(diff_ms "$c0" "$c1")"
    put "$kind.flood_s" "$(elapsed "$t0" "$t1")"
    put "$kind.flood_replies" "$(grep -oE '[0-9]+ server resets came back' "$L/$name-flood.log" | cut -d' ' -f1)"
    say "$kind: flood $(tail -1 "$L/$name-flood.log"); server CPU $(diff_ms "$u0" "$u1") ms (stat: $(diff_ms "$c0" "$c1") ms)"
    if [ "$kind" = image ]; then   # the image's counters after the flood: its first status line after the window
        sl_wait_log "$SRV_LOG" "status:" 7 $((st + 1))
        put image.flood_status "$(grep "status:" "$SRV_LOG" | tail -1 | sed 's/.*status: //')"
        put image.flood_seen "$(( $(handshakes_seen) - h0 ))"
        say "image after the flood: $(grep "status:" "$SRV_LOG" | tail -1 | sed 's/.*status: //')"
    fi
    kill -0 "$SRV_PID" 2>/dev/null || { say "$kind server died (log: $L/$name.log)"; keep=1; }
    [ "$kind" = image ] && grep -E "status:" "$SRV_LOG" | tail -1 > "$L/$name.status"
    server_stop
}
for r in $(seq "$ROUNDS"); do
    round image "$r"
    round openvpn "$r"
done

# --- memory with BENCH_MEM_CLIENTS clients ---------------------------------------------------------------------
if [ "$NMEM" -gt 0 ]; then
    say "memory: openvpn with $NMEM clients"
    if server_start openvpn ovpn-mem; then
        sleep 1
        s0=$(rss_kib "$SRV_PID"); t0=$(now)
        clients_start "$NMEM"
        up=$(clients_wait "$NMEM" "$MEM_TIMEOUT")
        t1=$(now); sleep 2; s1=$(rss_kib "$SRV_PID")
        put openvpn.mem_clients_up "$up"
        put openvpn.mem_connect_s "$(elapsed "$t0" "$t1")"
        put openvpn.rss0_kib "$s0"; put openvpn.rss1_kib "$s1"
        [ "$up" -gt 0 ] && put openvpn.rss_per_client_kib "$(awk -v a="$s0" -v b="$s1" -v n="$up" 'BEGIN { printf "%.1f", (b - a) / n }')"
        say "openvpn: $up/$NMEM clients in $(elapsed "$t0" "$t1") s, VmRSS $s0 -> $s1 KiB"
        clients_stop "$NMEM"
    else
        say "openvpn server did not start"; keep=1
    fi
    server_stop
    # mem_ok TAG CONF N MIB: the image with config CONF and -m MIB serves N clients (all connected within
    # BENCH_MEM_TIMEOUT, QEMU still running). Console in logs/img-TAG-MIB.log.
    mem_ok() {
        local tag=$1 conf=$2 n=$3 m=$4 up t0 t1 rc=1 name="img-$1-$4"
        say "memory ($tag): image -m $m MiB, $n clients"
        export MEM=${m}M
        c_img=$conf
        if server_start image "$name"; then
            t0=$(now)
            clients_start "$n"
            up=$(clients_wait "$n" "$MEM_TIMEOUT")
            t1=$(now)
            sleep 6   # one status-interval: the image's own client count
            put "image.mem.$tag.$m" "$up/$n in $(elapsed "$t0" "$t1") s ($(grep -E 'status:' "$SRV_LOG" | tail -1 | grep -oE 'clients=[0-9]+'))"
            say "image -m $m: $up/$n clients in $(elapsed "$t0" "$t1") s; $(grep -E 'status:' "$SRV_LOG" | tail -1 | sed 's/.*status: //')"
            [ "$up" -ge "$n" ] && kill -0 "$SRV_PID" 2>/dev/null && rc=0
            [ $rc = 0 ] || missing "$n" > "$L/$name.missing"
            clients_stop "$n"
        else
            put "image.mem.$tag.$m" "no service: $(grep -m1 -E 'PANIC|ERROR|FATAL' -A1 "$SRV_LOG" | tr '\n' ' ' | sed 's/\[ *[0-9.]*\] //g' | cut -c1-200)"
            say "image -m $m: no service: $(grep -m1 -E 'PANIC|ERROR|FATAL' -A1 "$SRV_LOG" | tr '\n' ' ')"
        fi
        server_stop
        unset MEM
        return $rc
    }
    # mem_min TAG CONF N: bisection (1 MiB) over BENCH_MEM_LOW..BENCH_MEM_HIGH; records image.min_mem.TAG.
    mem_min() {
        local tag=$1 conf=$2 n=$3 lo=$MEM_LOW hi=$MEM_HIGH mid
        if ! mem_ok "$tag" "$conf" "$n" "$hi"; then put "image.min_mem.$tag" ">$hi"; return; fi
        if mem_ok "$tag" "$conf" "$n" "$lo"; then put "image.min_mem.$tag" "<=$lo"; return; fi
        while [ $((hi - lo)) -gt 1 ]; do
            mid=$(( (lo + hi) / 2 ))
            if mem_ok "$tag" "$conf" "$n" "$mid"; then hi=$mid; else lo=$mid; fi
        done
        put "image.min_mem.$tag" "$hi"
        put "image.min_mem_fail.$tag" "$(grep "^image.mem.$tag.$lo=" "$results" | tail -1 | cut -d= -f2-)"
    }
    c_default=$c_img
    c_bounded=$(sl_server_conf img-max udp $SL_SRV_PUB $SL_NET_UDP "status-interval 5" "max-clients $NMEM")
    mem_min default "$c_default" "$NMEM"
    mem_min max$NMEM "$c_bounded" "$NMEM"
    mem_min max${NMEM}_1client "$c_bounded" 1
    put mem.clients "$NMEM"
fi

put bench.seconds "$(( $(date +%s) - started ))"
put bench.rounds "$ROUNDS"; put bench.connect "$NCONN"; put bench.tput_clients "$NTPUT"; put bench.secs "$SECS"
cp "$results" "$work/results.txt"
python3 - "$results" "${BENCH_OUT:-BENCHMARKS.md}" <<'EOF'
import re, statistics, sys
path, out = sys.argv[1:]
vals = {}
for line in open(path):
    k, _, v = line.rstrip("\n").partition("=")
    vals.setdefault(k, []).append(v)
def one(k, d="-"):
    return vals.get(k, [d])[-1]
def nums(k):
    r = []
    for v in vals.get(k, []):
        try: r.append(float(v))
        except ValueError: pass
    return r
def med(k):
    v = nums(k)
    return statistics.median(v) if v else None
def fmt(x, p=1):
    return "-" if x is None else f"{x:.{p}f}"
def runs(k, p=1):
    v = nums(k)
    return ", ".join(f"{x:.{p}f}" for x in v) if v else "-"
n, t = one("bench.connect"), one("bench.tput_clients")
rows = [
    (f"{n} clients at once: connects/s", "connect_per_s", 2),
    (f"{n} clients at once: s until all connected", "connect_s", 2),
    ("server CPU per connect, ms", "cpu_per_connect_ms", 1),
    ("TCP through the tunnel, 1 client, Mbit/s", "tput1", 1),
    (f"TCP through the tunnel, {t} clients summed, Mbit/s", f"tput{t}", 1),
    ("server CPU per 10,000 spoofed resets sent, ms", "flood_cpu_ms", 0),
    ("flood resets the server read (of 10,000 sent in about 1 s)", "flood_seen", 0),
    ("server CPU per 10,000 spoofed resets read, ms", "flood_cpu_per_10k_read", 0),
]
for kind in ("image", "openvpn"):
    for c, n in zip(nums(kind + ".flood_cpu_ms"), nums(kind + ".flood_seen")):
        if n > 0:
            vals.setdefault(kind + ".flood_cpu_per_10k_read", []).append(str(c * 10000 / n))
lines = [
    f"Measured {one('machine.date')} at commit {one('machine.commit')} by `make bench-server` ({one('bench.seconds')} s): "
    f"{one('bench.rounds')} rounds, each the image then openvpn; medians, every round's value in brackets. "
    f"Reference: Debian's `{one('machine.openvpn')}` server, native, in a namespace. "
    f"Clients: Debian's openvpn, UDP, tls-crypt-v2. Ratio = image / openvpn.",
    "",
    "| figure | image (QEMU, TCG) | openvpn (native) | ratio |",
    "|---|---:|---:|---:|",
]
for label, key, p in rows:
    a, b = med("image." + key), med("openvpn." + key)
    ratio = f"{a / b:.2f}" if a is not None and b else ""
    lines.append(f"| {label} | {fmt(a, p)} ({runs('image.' + key, p)}) | {fmt(b, p)} ({runs('openvpn.' + key, p)}) | {ratio} |")
fails = [f"{k.split('.')[0]} round {k.rsplit('.', 1)[1]}: {v[-1]}" for k, v in vals.items() if ".connect_fail." in k]
if fails:
    lines.append(f"| rounds where not every client connected in 120 s | {'; '.join(fails)} | | |")
rep = [("image flood: resets answered (probe)", "image.flood_replies"), ("openvpn flood: resets answered (probe)", "openvpn.flood_replies")]
lines.append(f"| server resets that came back to the flood (rate limit) | {runs('image.flood_replies', 0)} | {runs('openvpn.flood_replies', 0)} | |")
lines.append(f"| flood datagrams dropped before the server read them (image: tap TX drops; openvpn: UDP RcvbufErrors) | {runs('image.flood_dropped', 0)} | {runs('openvpn.flood_dropped', 0)} | |")
if "mem.clients" in vals:
    m = int(one("mem.clients"))
    def trials(tag):
        t = sorted((int(k.rsplit(".", 1)[1]), v[-1]) for k, v in vals.items() if k.startswith(f"image.mem.{tag}."))
        return "; ".join(f"{s} MiB: {re.sub(r'panicked at [^ ]*: ', 'panicked (alloc.rs): ', v).strip()}" for s, v in t)
    def mm(tag):
        return one(f"image.min_mem.{tag}")
    lines.append(f"| memory, {m} clients connected | smallest `-m` (1 MiB steps): **{mm('default')} MiB** with the default "
                 f"`max-clients` (1024), **{mm(f'max{m}')} MiB** with `max-clients {m}` | VmRSS {one('openvpn.rss0_kib')} -> "
                 f"{one('openvpn.rss1_kib')} KiB with {one('openvpn.mem_clients_up')} clients: "
                 f"**{one('openvpn.rss_per_client_kib')} KiB per client** | |")
    try:
        a, b = float(mm(f"max{m}")), float(mm(f"max{m}_1client"))
        if a > b:
            per = f"{(a - b) * 1024 / (m - 1):.0f} KiB per client (({a:g} - {b:g}) MiB / {m - 1}; 1 MiB steps)"
        else:
            per = (f"not resolved: {m} clients and 1 client both need {a:g} MiB, the image's boot floor (`MIN_HEAP`); "
                   f"so {m} clients fit in the heap of a {a:g} MiB VM")
    except ValueError:
        per = "-"
    lines.append(f"| memory per connected client (image: smallest `-m` for {m} clients minus that for 1, `max-clients {m}`) "
                 f"| {per} | {one('openvpn.rss_per_client_kib')} KiB (VmRSS growth / {m}) | |")
    ok_times = [v.split(" in ")[1].split(" s")[0] for k, vs in vals.items() if k.startswith("image.mem.default.")
                for v in vs if v.startswith(f"{m}/{m} ")]
    lines.append(f"| {m} clients at once: s until all connected (memory runs) | {', '.join(ok_times) or '-'} "
                 f"| {one('openvpn.mem_connect_s')} | |")
    lines.append("")
    lines.append("Memory trials (clients connected / started, time, the image's own count from its status line):")
    lines.append("")
    for tag in ("default", f"max{m}", f"max{m}_1client"):
        lines.append(f"- `{tag}`: {trials(tag)}")
        if f"image.min_mem_fail.{tag}" in vals:
            lines.append(f"  (at one MiB less: {re.sub(r'panicked at [^ ]*: ', 'panicked (alloc.rs): ', one(f'image.min_mem_fail.{tag}')).strip()})")
if "image.flood_status" in vals:
    lines += ["", "The image's status line after each flood (its counters since boot, 20 clients connected and gone before "
              "the flood): " + "; ".join(f"`{v}`" for v in vals["image.flood_status"]) + "."]
lines += ["",
    f"Machine: {one('machine.nproc')} CPUs ({one('machine.cpu')}), {one('machine.kernel')}, {one('machine.qemu')}, "
    f"accelerator {one('machine.accel').upper()}; load average at start {one('machine.load')}."]
text = "\n".join(lines)
print(text)
if out != "-":
    try:
        doc = open(out).read()
    except OSError:
        sys.exit(0)
    new, k = re.subn(r"(<!-- bench-server:begin -->\n).*?(<!-- bench-server:end -->)",
                     lambda mm: mm.group(1) + text + "\n" + mm.group(2), doc, flags=re.S)
    if k:
        open(out, "w").write(new)
        print(f"bench-server: wrote {out}")
    else:
        print(f"bench-server: no bench-server markers in {out}: not written")
EOF
