#!/usr/bin/env bash
# Interop matrix (issue 6): oxvpn's engine (build/ovpn-ping) against Debian's unmodified `openvpn` 2.6 server,
# {udp, tcp} x {tls-crypt-v2, tls-crypt, tls-auth SHA256, none} x {AES-256-GCM, CHACHA20-POLY1305, AES-256-CBC},
# each client's explicit exit notification (OCC EXIT from Engine::shutdown) seen by the server,
# tls-cipher / tls-ciphersuites restrictions checked in the server's log, and reneg-sec 10 under load.
# Key types, user/password, the TLS 1.2-only server, server-initiated renegotiation and the server restart
# are cases of scripts/test-interop.sh and not repeated here.
#
# One server per (protection, transport): eight `openvpn` processes, each on its own address and pool, all
# offering the three ciphers; each client offers one cipher in `data-ciphers`, so NCP must pick that one
# (the pushed cipher is checked). Servers run in namespace oxv-matrix-srv, ovpn-ping in oxv-matrix-cli,
# joined by veth oxvm-s/oxvm-c (10.96.0.0/24; server N listens on 10.96.0.1N port 1194).
# One result line per case; non-zero exit if any case fails.
# MATRIX_ONLY=REGEX runs only the matching cases; KEEP_WORK=1 keeps the logs.
set -u
cd "$(dirname "$0")/.."
root=$PWD
NS_SRV=oxv-matrix-srv
NS_CLI=oxv-matrix-cli
SRV_ADDR=10.96.0.1
CLI_ADDR=10.96.0.2

ping_bin=${OVPN_PING:-}
if [ -z "$ping_bin" ]; then
    cargo build --release -q -p ovpn-ping || { echo "interop-matrix: FAILED (cannot build ovpn-ping)"; exit 1; }
    ping_bin=$root/target/release/ovpn-ping
fi
command -v openvpn >/dev/null || { echo "interop-matrix: FAILED (openvpn not installed)"; exit 1; }

work=$(mktemp -d /tmp/oxv-matrix.XXXXXX)
server_pids=()
cleanup() {
    for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${server_pids[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del $NS_SRV 2>/dev/null
    ip netns del $NS_CLI 2>/dev/null
    if [ -n "${KEEP_WORK:-}" ]; then echo "interop-matrix: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Whole-test bound (every client run has its own timeout too); the trap cleans up.
# Its sleep dies with it, so nothing holds this script's stdout open after the end.
(
    trap 'kill $sleeper 2>/dev/null; exit 0' TERM
    sleep "${MATRIX_TIMEOUT:-300}" & sleeper=$!
    wait $sleeper && echo "interop-matrix: FAILED (over ${MATRIX_TIMEOUT:-300}s)" && kill -TERM $$
) 2>/dev/null &
server_pids+=($!)

ip netns del $NS_SRV 2>/dev/null; ip netns del $NS_CLI 2>/dev/null
ip netns add $NS_SRV && ip netns add $NS_CLI || { echo "interop-matrix: FAILED (netns)"; exit 1; }
ip link add oxvm-s netns $NS_SRV type veth peer name oxvm-c netns $NS_CLI
ip -n $NS_SRV addr add $SRV_ADDR/24 dev oxvm-s
ip -n $NS_CLI addr add $CLI_ADDR/24 dev oxvm-c
for ns in $NS_SRV $NS_CLI; do ip -n $ns link set lo up; done
ip -n $NS_SRV link set oxvm-s up
ip -n $NS_CLI link set oxvm-c up

scripts/interop/make-pki.sh "$work/pki" || { echo "interop-matrix: FAILED (PKI generation)"; exit 1; }

SERVER_CIPHERS=AES-256-GCM:CHACHA20-POLY1305:AES-256-CBC
PROTECTIONS=(v2 crypt auth none)
TRANSPORTS=(udp tcp)
failed=0

# start_server NAME INDEX PROTECTION [extra server lines...]: listens on 10.96.0.1INDEX, pool 10.8.INDEX.0/24
# (in the background; wait_servers waits for it).
start_server() {
    local name=$1 index=$2 prot=$3 conf
    shift 3
    ip -n $NS_SRV addr add 10.96.0.1$index/24 dev oxvm-s
    conf=$(scripts/interop/server.sh "$work/pki" "$work" "$name" 10.96.0.1$index $SERVER_CIPHERS server "$prot" \
        "server 10.8.$index.0 255.255.255.0" "$@") || return 1
    ip netns exec $NS_SRV openvpn --config "$conf" --log "$work/$name.server.log" >"$work/$name.server.out" 2>&1 &
    server_pids+=($!)
}

wait_servers() { # NAME... : all must reach "Initialization Sequence Completed" within 20 s
    local name
    for name in "$@"; do
        for _ in $(seq 100); do
            grep -q "Initialization Sequence Completed" "$work/$name.server.log" 2>/dev/null && continue 2
            sleep 0.2
        done
        echo "interop-matrix: FAILED (server $name did not start)"; tail -5 "$work/$name.server.log" 2>/dev/null
        return 1
    done
}

# One server per protection and transport.
names=()
index=0
for prot in "${PROTECTIONS[@]}"; do
    for transport in "${TRANSPORTS[@]}"; do
        name=srv-$transport-$prot
        if [ "$transport" = tcp ]; then
            start_server "$name" $index "$prot" "proto tcp4-server"
        else
            start_server "$name" $index "$prot"
        fi
        names+=("$name")
        printf -v "addr_${transport}_${prot}" %s 10.96.0.1$index
        index=$((index + 1))
    done
done
# tls-cipher: a TLS 1.2-only server restricted to one suite (index 8).
start_server srv-tls12-suite 8 v2 "tls-version-max 1.2" "tls-cipher ECDHE-ECDSA-CHACHA20-POLY1305"
names+=(srv-tls12-suite)
wait_servers "${names[@]}" || exit 1

# run_client NAME ADDR PROTECTION CIPHERS TRANSPORT [client lines...] -> ovpn-ping exit status; log NAME.ping.log
run_client() {
    local name=$1 addr=$2 prot=$3 ciphers=$4 transport=$5 client
    shift 5
    client=$(scripts/interop/client.sh "$work/pki" "$work" "$name" "$addr" "$ciphers" "$prot" \
        "proto $transport" "$@") || return 99
    # shellcheck disable=SC2086
    timeout "${CLIENT_TIMEOUT:-30}" ip netns exec $NS_CLI "$ping_bin" "$client" ${PING_ARGS:---count 3 --interval 0.2 --timeout 15} \
        >"$work/$name.ping.log" 2>&1
}

report() { # NAME RC EXPECTED_CIPHER: replies back and the pushed cipher is the one offered
    local name=$1 rc=$2 cipher=$3 out=$work/$1.ping.log pushed summary
    pushed=$(sed -n 's/^pushed: cipher \([^ ]*\).*/\1/p' "$out" | head -1)
    summary=$(grep -m1 '^rtt summary' "$out")
    if [ "$rc" -eq 0 ] && [ "$pushed" = "$cipher" ]; then
        echo "interop-matrix $name: ok (cipher $pushed, $(grep -m1 '^handshake' "$out"), ${summary#rtt summary: })"
        return 0
    fi
    echo "interop-matrix $name: FAILED (ovpn-ping exit $rc, pushed cipher '${pushed}', want $cipher)"
    tail -12 "$out" | sed 's/^/    /'
    failed=1
    return 1
}

declare -A sessions=() # server name -> matrix clients run against it
for transport in "${TRANSPORTS[@]}"; do
    for prot in "${PROTECTIONS[@]}"; do
        for cipher in AES-256-GCM CHACHA20-POLY1305 AES-256-CBC; do
            name=$transport-$prot-$cipher
            [[ $name =~ ${MATRIX_ONLY:-.} ]] || continue
            addr_var=addr_${transport}_${prot}
            run_client "$name" "${!addr_var}" "$prot" "$cipher" "$transport"
            report "$name" $? "$cipher"
            sessions[srv-$transport-$prot]=$((${sessions[srv-$transport-$prot]:-0} + 1))
        done
    done
done

# Explicit exit notification: ovpn-ping ends with Engine::shutdown(), whose OCC EXIT the server must act on
# at once for every session of the matrix (its log: "OCC exit message received by peer", then
# "SIGUSR1[soft,remote-exit] received, client-instance restarting").
if [ ${#sessions[@]} -gt 0 ]; then
    sleep 0.5
    ended=0 total=0 missing=()
    for server in "${!sessions[@]}"; do
        n=$(grep -c "SIGUSR1\[soft,remote-exit\]" "$work/$server.server.log")
        total=$((total + sessions[$server]))
        ended=$((ended + (n < sessions[$server] ? n : sessions[$server])))
        [ "$n" -ge "${sessions[$server]}" ] || missing+=("$server: $n of ${sessions[$server]}")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "interop-matrix exit-notify: ok ($ended/$total sessions ended by the client's OCC EXIT: 'OCC exit message received by peer', '[soft,remote-exit]')"
    else
        echo "interop-matrix exit-notify: FAILED ($ended/$total sessions ended by OCC EXIT; ${missing[*]})"
        failed=1
    fi
fi

# check_suite NAME RC SERVER SUITE: replies came back and the server's log shows the suite negotiated.
check_suite() {
    local name=$1 rc=$2 server=$3 suite=$4 out=$work/$1.ping.log
    if [ "$rc" -eq 0 ] && grep -q "Control Channel: .*cipher .* $suite," "$work/$server.server.log"; then
        echo "interop-matrix $name: ok (server log: $(grep -m1 " $suite," "$work/$server.server.log" |
            grep -o "Control Channel: .*$suite"); $(grep -m1 '^rtt summary' "$out"))"
    else
        echo "interop-matrix $name: FAILED (ovpn-ping exit $rc, suite $suite not in $server's log)"
        tail -8 "$out" | sed 's/^/    /'; grep "Control Channel" "$work/$server.server.log" | tail -3 | sed 's/^/    server: /'
        failed=1
    fi
}
# The client's tls-cipher, with names rustls lacks (skipped with a warning), meets the server's one suite.
if [[ tls12-one-suite =~ ${MATRIX_ONLY:-.} ]]; then
    run_client tls12-one-suite 10.96.0.18 v2 AES-256-GCM udp \
        "tls-cipher TLS-DHE-RSA-WITH-AES-256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256"
    check_suite tls12-one-suite $? srv-tls12-suite ECDHE-ECDSA-CHACHA20-POLY1305
fi
# A client restricted to another TLS 1.2 suite shares none with that server: no tunnel.
if [[ tls12-no-shared-suite =~ ${MATRIX_ONLY:-.} ]]; then
    PING_ARGS="--count 1 --timeout 6" run_client tls12-no-shared-suite 10.96.0.18 v2 AES-256-GCM udp \
        "tls-cipher ECDHE-ECDSA-AES256-GCM-SHA384"
    rc=$?
    if [ $rc -ne 0 ] && ! grep -q '^handshake' "$work/tls12-no-shared-suite.ping.log" &&
        grep -q "no shared cipher" "$work/srv-tls12-suite.server.log"; then
        echo "interop-matrix tls12-no-shared-suite: ok (no tunnel; server: $(grep -o -m1 'no shared cipher' "$work/srv-tls12-suite.server.log"))"
    else
        echo "interop-matrix tls12-no-shared-suite: FAILED (exit $rc; expected no handshake and 'no shared cipher' in the server log)"
        tail -8 "$work/tls12-no-shared-suite.ping.log" | sed 's/^/    /'; failed=1
    fi
fi
# tls-ciphersuites: the client offers one TLS 1.3 suite, which a default server accepts.
if [[ tls13-one-suite =~ ${MATRIX_ONLY:-.} ]]; then
    run_client tls13-one-suite "$addr_udp_none" none AES-256-GCM udp "tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256"
    check_suite tls13-one-suite $? srv-udp-none TLS_CHACHA20_POLY1305_SHA256
fi

# server-poll-timeout: the first remote never answers (no host at 10.96.0.99), so after 2 s the engine
# moves on to the second one (connect-retry 1) and the tunnel comes up there.
if [[ server-poll-timeout =~ ${MATRIX_ONLY:-.} ]]; then
    PING_ARGS="--count 3 --interval 0.2 --timeout 20" run_client server-poll-timeout 10.96.0.99 v2 AES-256-GCM udp \
        "remote $addr_udp_v2 1194" "server-poll-timeout 2" "connect-retry 1"
    rc=$?
    out=$work/server-poll-timeout.ping.log
    if [ $rc -eq 0 ] && grep -q '^reconnect: ServerPollTimeout' "$out"; then
        echo "interop-matrix server-poll-timeout: ok (silent first remote left after 2 s, $(grep -m1 '^handshake' "$out") on the second; $(grep -m1 '^rtt summary' "$out"))"
    else
        echo "interop-matrix server-poll-timeout: FAILED (exit $rc)"; tail -8 "$out" | sed 's/^/    /'; failed=1
    fi
fi

# reneg-sec 10 under load (issue 6): 50 echoes a second for 24 s over the client's own 10-second
# renegotiations (UDP and TCP); every echo must come back.
for transport in udp tcp; do
    name=reneg-sec-10-load-$transport
    [[ $name =~ ${MATRIX_ONLY:-.} ]] || continue
    addr_var=addr_${transport}_v2
    CLIENT_TIMEOUT=55 PING_ARGS="--count 1200 --interval 0.02 --timeout 50" run_client $name "${!addr_var}" v2 AES-256-GCM $transport "reneg-sec 10"
    rc=$?
    replies=$(sed -n 's/^rtt summary: \([0-9]*\/[0-9]*\) replies.*/\1/p' "$work/$name.ping.log")
    reneg=$(sed -n 's/^stats: renegotiations \([0-9]*\).*/\1/p' "$work/$name.ping.log")
    if [ $rc -eq 0 ] && [ -n "$replies" ] && [ "${replies%/*}" = "${replies#*/}" ] && [ "${reneg:-0}" -ge 2 ]; then
        echo "interop-matrix $name: ok ($replies replies, $reneg renegotiations, no loss)"
    else
        echo "interop-matrix $name: FAILED (exit $rc, replies ${replies:-none}, renegotiations ${reneg:-0})"
        grep -v '^reply' "$work/$name.ping.log" | tail -8 | sed 's/^/    /'; failed=1
    fi
done

if [ $failed -eq 0 ]; then echo "interop-matrix: ok"; else echo "interop-matrix: FAILED"; exit 1; fi
