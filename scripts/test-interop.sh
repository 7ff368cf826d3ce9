#!/usr/bin/env bash
# Interop: oxvpn's engine (build/ovpn-ping) against Debian's unmodified `openvpn` 2.6 server.
# A throwaway ECDSA PKI and tls-crypt-v2 keys are made with openssl and `openvpn --genkey`; the server runs
# in namespace oxv-interop-srv, ovpn-ping in oxv-interop-cli, joined by a veth pair (10.99.0.0/24).
# Cases: AES-256-GCM, AES-128-GCM, and a server certificate without EKU serverAuth that
# `remote-cert-tls server` must refuse. One result line per case; non-zero exit if any case fails.
set -u
cd "$(dirname "$0")/.."
root=$PWD
NS_SRV=oxv-interop-srv
NS_CLI=oxv-interop-cli
SRV_ADDR=10.99.0.1
CLI_ADDR=10.99.0.2

# OVPN_PING overrides the client binary; otherwise build (a no-op after `make tools`) and use the release one.
ping_bin=${OVPN_PING:-}
if [ -z "$ping_bin" ]; then
    cargo build --release -q -p ovpn-ping || { echo "interop: FAILED (cannot build ovpn-ping)"; exit 1; }
    ping_bin=$root/target/release/ovpn-ping
fi
command -v openvpn >/dev/null || { echo "interop: FAILED (openvpn not installed)"; exit 1; }

work=$(mktemp -d /tmp/oxv-interop.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    ip netns del $NS_SRV 2>/dev/null
    ip netns del $NS_CLI 2>/dev/null
    if [ -n "${KEEP_WORK:-}" ]; then echo "interop: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns del $NS_SRV 2>/dev/null; ip netns del $NS_CLI 2>/dev/null
ip netns add $NS_SRV && ip netns add $NS_CLI || { echo "interop: FAILED (netns)"; exit 1; }
ip link add oxvi-s netns $NS_SRV type veth peer name oxvi-c netns $NS_CLI
ip -n $NS_SRV addr add $SRV_ADDR/24 dev oxvi-s
ip -n $NS_CLI addr add $CLI_ADDR/24 dev oxvi-c
for ns in $NS_SRV $NS_CLI; do
    ip -n $ns link set lo up
done
ip -n $NS_SRV link set oxvi-s up
ip -n $NS_CLI link set oxvi-c up

scripts/interop/make-pki.sh "$work/pki" || { echo "interop: FAILED (PKI generation)"; exit 1; }

start_server() { # name ciphers [cert]
    local conf
    conf=$(scripts/interop/server.sh "$work/pki" "$work" "$1" $SRV_ADDR "$2" "${3:-server}")
    ip netns exec $NS_SRV openvpn --config "$conf" --log "$work/$1.server.log" &
    server_pid=$!
    for _ in $(seq 50); do
        grep -q "Initialization Sequence Completed" "$work/$1.server.log" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

stop_server() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    server_pid=
}

failed=0
run_case() { # name server-ciphers expect(ok|refused) [server-cert]
    local name=$1 ciphers=$2 expect=$3 cert=${4:-server} client out rc detail
    if ! start_server "$name" "$ciphers" "$cert"; then
        echo "interop $name: FAILED (server did not start)"; failed=1; stop_server; return
    fi
    client=$(scripts/interop/client.sh "$work/pki" "$work" "$name" $SRV_ADDR)
    out=$work/$name.ping.log
    timeout 60 ip netns exec $NS_CLI "$ping_bin" "$client" --count 3 --timeout 20 >"$out" 2>&1
    rc=$?
    stop_server
    if [ "$expect" = ok ]; then
        if [ $rc -eq 0 ]; then
            detail=$(grep -E "^(handshake|rtt summary)" "$out" | tr '\n' ' ')
            echo "interop $name: ok ($detail)"
        else
            echo "interop $name: FAILED (ovpn-ping exit $rc)"; sed 's/^/    /' "$out" | tail -20
            tail -15 "$work/$name.server.log" | sed 's/^/    server: /'
            failed=1
        fi
    else
        if [ $rc -ne 0 ] && grep -qi "certificate" "$out"; then
            echo "interop $name: ok (refused: $(grep -i -m1 certificate "$out"))"
        else
            echo "interop $name: FAILED (expected a certificate refusal, exit $rc)"; tail -10 "$out" | sed 's/^/    /'
            failed=1
        fi
    fi
}

run_case aes-256-gcm AES-256-GCM ok
run_case aes-128-gcm AES-128-GCM ok
run_case no-server-eku AES-256-GCM refused badserver

if [ $failed -eq 0 ]; then echo "interop: ok"; else echo "interop: FAILED"; exit 1; fi
