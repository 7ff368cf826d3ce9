#!/usr/bin/env bash
# Fault injection end to end: oxvpn's engine (ovpn-ping) against Debian's unmodified openvpn 2.6 server
# through scripts/relay/relay.py, which drops, duplicates, reorders and delays UDP packets (fixed seeds) or
# cuts TCP connections. Namespaces oxv-faults-srv (server 10.98.0.1, relay 10.98.0.3) and oxv-faults-cli
# (client 10.98.0.2); the PKI and configs come from scripts/interop/.
# Cases:
#   lossy-rekey   5% loss, 1% duplication, 2% reordering, 5 ms + 0..50 ms jitter each way, server
#                 reneg-sec 10: ~30 s of echoes, >= 2 renegotiations complete, >= 80% of echoes answered.
#   restart       the server is killed and restarted under the same faults: the client notices through
#                 ping-restart, reconnects by itself and echoes are answered again.
#   hostile       garbage datagrams and replayed data packets towards the client: replies keep coming and
#                 the replays are dropped and counted (ovpn-ping's "data dropped").
#   tcp-cut       over TCP the relay cuts the connection after 6 s: the client reconnects, echoes resume.
# One result line per case with the faults injected; non-zero exit if any case fails.
set -u
cd "$(dirname "$0")/.."
root=$PWD
NS_SRV=oxv-faults-srv
NS_CLI=oxv-faults-cli
SRV_ADDR=10.98.0.1
RELAY_ADDR=10.98.0.3
CLI_ADDR=10.98.0.2
CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305

ping_bin=${OVPN_PING:-}
if [ -z "$ping_bin" ]; then
    cargo build --release -q -p ovpn-ping || { echo "faults: FAILED (cannot build ovpn-ping)"; exit 1; }
    ping_bin=$root/target/release/ovpn-ping
fi
command -v openvpn >/dev/null || { echo "faults: FAILED (openvpn not installed)"; exit 1; }
command -v python3 >/dev/null || { echo "faults: FAILED (python3 not installed)"; exit 1; }

work=$(mktemp -d /tmp/oxv-faults.XXXXXX)
server_pid= relay_pid= client_pid=
stop_pid() { # pid: TERM, wait
    [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null
    return 0
}
cleanup() {
    stop_pid "$client_pid"; stop_pid "$relay_pid"; stop_pid "$server_pid"
    ip netns del $NS_SRV 2>/dev/null
    ip netns del $NS_CLI 2>/dev/null
    if [ -n "${KEEP_WORK:-}" ]; then echo "faults: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns del $NS_SRV 2>/dev/null; ip netns del $NS_CLI 2>/dev/null
ip netns add $NS_SRV && ip netns add $NS_CLI || { echo "faults: FAILED (netns)"; exit 1; }
ip link add oxvf-s netns $NS_SRV type veth peer name oxvf-c netns $NS_CLI
ip -n $NS_SRV addr add $SRV_ADDR/24 dev oxvf-s
ip -n $NS_SRV addr add $RELAY_ADDR/24 dev oxvf-s
ip -n $NS_CLI addr add $CLI_ADDR/24 dev oxvf-c
for ns in $NS_SRV $NS_CLI; do ip -n $ns link set lo up; done
ip -n $NS_SRV link set oxvf-s up
ip -n $NS_CLI link set oxvf-c up

scripts/interop/make-pki.sh "$work/pki" >/dev/null 2>&1 || { echo "faults: FAILED (PKI generation)"; exit 1; }

count() { # regex file: matching lines (0 if the file does not exist yet)
    local n
    n=$(grep -c "$1" "$2" 2>/dev/null)
    echo "${n:-0}"
}

start_server() { # name [extra server lines...]: (re)starts the server, waits for its initialisation
    local name=$1 conf log before
    shift
    log=$work/$name.server.log
    before=$(count "Initialization Sequence Completed" "$log")
    conf=$(scripts/interop/server.sh "$work/pki" "$work" "$name" $SRV_ADDR AES-256-GCM server v2 "$@") || return 1
    ip netns exec $NS_SRV openvpn --config "$conf" --log-append "$log" &
    server_pid=$!
    for _ in $(seq 50); do
        [ "$(count "Initialization Sequence Completed" "$log")" -gt "$before" ] && return 0
        sleep 0.2
    done
    return 1
}

start_relay() { # name seed [relay args...]
    local name=$1 seed=$2
    shift 2
    ip netns exec $NS_SRV python3 scripts/relay/relay.py --listen $RELAY_ADDR:1194 --upstream $SRV_ADDR:1194 \
        --seed "$seed" --stats "$work/$name.relay.txt" "$@" 2>>"$work/$name.relay.log" &
    relay_pid=$!
    sleep 0.3
}

finish() { # stops the relay (it writes its counters) and the server
    stop_pid "$relay_pid"; relay_pid=
    stop_pid "$server_pid"; server_pid=
}

counter() { # name key: a relay counter (0 if absent)
    local v
    v=$(tr ' ' '\n' <"$work/$1.relay.txt" 2>/dev/null | sed -n "s/^$2=//p")
    echo "${v:-0}"
}

faults_of() { # name: the faults the relay injected, for the result line
    local n=$1
    echo "dropped $(( $(counter "$n" c2s_dropped) + $(counter "$n" s2c_dropped) )), duplicated $(( $(counter "$n" c2s_duplicated) + $(counter "$n" s2c_duplicated) )), reordered $(( $(counter "$n" c2s_reordered) + $(counter "$n" s2c_reordered) )) of $(( $(counter "$n" c2s_in) + $(counter "$n" s2c_in) )) packets"
}

replies_of() { # log: "answered/sent"
    sed -n 's/^rtt summary: \([0-9]*\/[0-9]*\) replies.*/\1/p' "$1"
}

client_conf() { # name [extra client lines...]
    local name=$1
    shift
    scripts/interop/client.sh "$work/pki" "$work" "$name" $RELAY_ADDR "$CIPHERS" v2 "$@"
}

LOSSY=(--loss 0.05 --dup 0.01 --reorder 0.02 --delay-ms 5 --jitter-ms 50)
failed=0
fail() { echo "faults $1: FAILED ($2)"; [ -f "$work/$1.ping.log" ] && tail -15 "$work/$1.ping.log" | sed 's/^/    /'; failed=1; }

# --- lossy-rekey -------------------------------------------------------------------------------------
case_lossy_rekey() {
    local n=lossy-rekey out replies reneg
    start_server $n "reneg-sec 10" || { fail $n "server did not start"; finish; return; }
    start_relay $n 21 "${LOSSY[@]}"
    out=$work/$n.ping.log
    timeout 90 ip netns exec $NS_CLI "$ping_bin" "$(client_conf $n)" --count 150 --interval 0.2 --timeout 75 >"$out" 2>&1
    local rc=$?
    finish
    replies=$(replies_of "$out")
    reneg=$(sed -n 's/^stats: renegotiations \([0-9]*\).*/\1/p' "$out")
    local got=${replies%/*} sent=${replies#*/}
    if [ $rc -eq 0 ] && [ "${reneg:-0}" -ge 2 ] && [ "${sent:-0}" -ge 120 ] && [ $(( ${got:-0} * 100 )) -ge $(( ${sent:-1} * 80 )) ]; then
        echo "faults $n: ok ($replies echoes answered, $reneg renegotiations; $(faults_of $n))"
    else
        fail $n "exit $rc, replies ${replies:-none}, renegotiations ${reneg:-0}"
    fi
}

# --- restart -----------------------------------------------------------------------------------------
case_restart() {
    local n=restart out t0 t1 handshakes
    start_server $n || { fail $n "server did not start"; finish; return; }
    start_relay $n 22 "${LOSSY[@]}"
    out=$work/$n.ping.log
    timeout 120 ip netns exec $NS_CLI "$ping_bin" "$(client_conf $n)" --count 300 --interval 0.2 --timeout 75 >"$out" 2>&1 &
    client_pid=$!
    for _ in $(seq 100); do grep -q '^handshake' "$out" 2>/dev/null && break; sleep 0.2; done
    sleep 5
    # Kill the server for 3 s; the relay stays (the client's address and port do not change).
    stop_pid "$server_pid"; server_pid=
    local before
    before=$(count '^reply' "$out")
    sleep 3
    t0=$(date +%s)
    start_server $n || { fail $n "server did not restart"; finish; return; }
    # The client must come back by itself: ping-restart (pushed by keepalive 2 10) plus connect-retry.
    local back=
    for _ in $(seq 300); do
        if [ "$(count '^handshake' "$out")" -ge 2 ] && [ "$(count '^reply' "$out")" -gt $((before + 5)) ]; then
            back=1; break
        fi
        sleep 0.1
    done
    t1=$(date +%s)
    stop_pid "$client_pid"; client_pid=
    finish
    handshakes=$(grep -c '^handshake' "$out")
    if [ -n "$back" ]; then
        echo "faults $n: ok (reconnected by itself $((t1 - t0)) s after the server came back: $(grep -m1 '^reconnect' "$out" | cut -c1-60); $handshakes handshakes; $(faults_of $n))"
    else
        fail $n "no second tunnel within 30 s (handshakes $handshakes)"
    fi
}

# --- hostile ------------------------------------------------------------------------------------------
case_hostile() {
    local n=hostile out replies dropped
    start_server $n || { fail $n "server did not start"; finish; return; }
    start_relay $n 13 --garbage 0.2 --replay 0.3
    out=$work/$n.ping.log
    timeout 60 ip netns exec $NS_CLI "$ping_bin" "$(client_conf $n)" --count 60 --interval 0.1 --timeout 40 >"$out" 2>&1
    local rc=$?
    finish
    replies=$(replies_of "$out")
    dropped=$(sed -n 's/^stats: .* data dropped \([0-9]*\).*/\1/p' "$out")
    local replayed garbage
    replayed=$(counter $n s2c_replayed) garbage=$(counter $n s2c_garbage)
    if [ $rc -eq 0 ] && [ "${replies%/*}" = "${replies#*/}" ] && [ "${dropped:-0}" -ge "$replayed" ] && [ "$replayed" -gt 0 ]; then
        echo "faults $n: ok ($replies echoes answered; $replayed replayed data packets and $garbage garbage datagrams injected, $dropped data packets dropped)"
    else
        fail $n "exit $rc, replies ${replies:-none}, replayed $replayed, dropped ${dropped:-?}"
    fi
}

# --- tcp-cut ------------------------------------------------------------------------------------------
case_tcp_cut() {
    local n=tcp-cut out handshakes replies
    start_server $n "proto tcp4-server" || { fail $n "server did not start"; finish; return; }
    start_relay $n 14 --tcp --cut-after 6 --cut-once
    out=$work/$n.ping.log
    timeout 90 ip netns exec $NS_CLI "$ping_bin" "$(client_conf $n "proto tcp")" --count 100 --interval 0.2 --timeout 60 >"$out" 2>&1
    local rc=$?
    finish
    handshakes=$(grep -c '^handshake' "$out")
    replies=$(replies_of "$out")
    local last_seq cuts
    last_seq=$(sed -n 's/^reply .*icmp_seq=\([0-9]*\).*/\1/p' "$out" | tail -1)
    cuts=$(counter $n tcp_cut)
    if [ $rc -eq 0 ] && [ "$cuts" -ge 1 ] && [ "$handshakes" -ge 2 ] && [ "${last_seq:-0}" -ge 90 ]; then
        echo "faults $n: ok (connection cut $cuts time(s), $handshakes handshakes, $replies echoes answered, last icmp_seq $last_seq)"
    else
        fail $n "exit $rc, cuts $cuts, handshakes $handshakes, replies ${replies:-none}, last seq ${last_seq:-none}"
    fi
}

for c in lossy_rekey restart hostile tcp_cut; do
    # FAULTS_ONLY=REGEX runs only the matching cases (for debugging).
    [[ $c =~ ${FAULTS_ONLY:-.} ]] || continue
    case_$c
done
if [ $failed -eq 0 ]; then echo "faults: ok"; else echo "faults: FAILED"; exit 1; fi
