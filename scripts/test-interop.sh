#!/usr/bin/env bash
# Interop: oxvpn's engine (build/ovpn-ping) against Debian's unmodified `openvpn` 2.6 server.
# A throwaway ECDSA PKI and tls-crypt-v2 keys are made with openssl and `openvpn --genkey`; the server runs
# in namespace oxv-interop-srv, ovpn-ping in oxv-interop-cli, joined by a veth pair (10.99.0.0/24).
# Cases: AES-256-GCM and AES-128-GCM over tls-crypt-v2 (the core path), a server certificate without EKU
# serverAuth that `remote-cert-tls server` must refuse, verify-x509-name and peer-fingerprint, crl-verify (a revoked
# server certificate refused), then ChaCha20, tls-crypt, tls-auth SHA256, plain TLS, topologies net30 / net30 with
# client-to-client / p2p with --target, a TLS 1.2-only server, AES-256-CBC, pushed compression stubs, IPv6 and TCP transports, renegotiation under traffic (server- and client-initiated), a server
# restart under a running client, and username/password (right and wrong).
# One result line per case; non-zero exit if any case fails.
set -u
cd "$(dirname "$0")/.."
root=$PWD
NS_SRV=oxv-interop-srv
NS_CLI=oxv-interop-cli
SRV_ADDR=10.99.0.1
CLI_ADDR=10.99.0.2
SRV_ADDR6=fd99::1
CLI_ADDR6=fd99::2

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
ip -n $NS_SRV addr add $SRV_ADDR6/64 dev oxvi-s nodad
ip -n $NS_CLI addr add $CLI_ADDR6/64 dev oxvi-c nodad
for ns in $NS_SRV $NS_CLI; do
    ip -n $ns link set lo up
done
ip -n $NS_SRV link set oxvi-s up
ip -n $NS_CLI link set oxvi-c up

scripts/interop/make-pki.sh "$work/pki" || { echo "interop: FAILED (PKI generation)"; exit 1; }

start_server() { # name ciphers cert protection [extra server lines...]
    local name=$1 conf
    conf=$(scripts/interop/server.sh "$work/pki" "$work" "$@" ) || return 1
    ip netns exec $NS_SRV openvpn --config "$conf" --log "$work/$name.server.log" >"$work/$name.server.out" 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do
        grep -q "Initialization Sequence Completed" "$work/$name.server.log" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

stop_server() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    server_pid=
}

CLIENT_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
USERPASS=$'<auth-user-pass>\nalice\nsecret123\n</auth-user-pass>'
BADPASS=$'<auth-user-pass>\nalice\nwrong\n</auth-user-pass>'
VERIFY=("script-security 2" "auth-user-pass-verify $root/scripts/interop/check-user.sh via-file")

failed=0
# run_case NAME EXPECT SERVER_CIPHERS CERT PROTECTION CLIENT_CIPHERS [server lines...] [-- client lines...]
#   EXPECT: ok (replies must come back) or refuse:REGEX (ovpn-ping must fail with output matching REGEX)
run_case() {
    local name=$1 expect=$2 sciphers=$3 cert=$4 prot=$5 cciphers=$6 client out rc detail
    shift 6
    # INTEROP_ONLY=REGEX runs only the matching cases (for debugging).
    [[ $name =~ ${INTEROP_ONLY:-.} ]] || return 0
    local server_extra=() client_extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do server_extra+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    client_extra=("$@")
    if ! start_server "$name" $SRV_ADDR "$sciphers" "$cert" "$prot" "${server_extra[@]}"; then
        echo "interop $name: FAILED (server did not start)"; failed=1; stop_server; return
    fi
    client=$(scripts/interop/client.sh "$work/pki" "$work" "$name" "${CLIENT_REMOTE:-$SRV_ADDR}" "$cciphers" "$prot" "${client_extra[@]}")
    out=$work/$name.ping.log
    # shellcheck disable=SC2086
    timeout 60 ip netns exec $NS_CLI "$ping_bin" "$client" ${PING_ARGS:---count 3 --timeout 20} >"$out" 2>&1
    rc=$?
    stop_server
    case $expect in
        ok)
            if [ $rc -eq 0 ]; then
                detail=$(grep -E "^(handshake|pushed: cipher|pinging|rtt summary)" "$out" | sed 's/^pushed: //' | tr '\n' ' ')
                echo "interop $name: ok ($detail)"
            else
                echo "interop $name: FAILED (ovpn-ping exit $rc)"; sed 's/^/    /' "$out" | tail -20
                tail -15 "$work/$name.server.log" | sed 's/^/    server: /'
                failed=1
            fi ;;
        rekey)
            # Every echo answered across at least two renegotiations.
            local replies reneg
            replies=$(sed -n 's/^rtt summary: \([0-9]*\/[0-9]*\) replies.*/\1/p' "$out")
            reneg=$(sed -n 's/^stats: renegotiations \([0-9]*\).*/\1/p' "$out")
            if [ $rc -eq 0 ] && [ "${replies%/*}" = "${replies#*/}" ] && [ "${reneg:-0}" -ge 2 ]; then
                echo "interop $name: ok ($replies replies, $reneg renegotiations, no loss)"
            else
                echo "interop $name: FAILED (exit $rc, replies $replies, renegotiations ${reneg:-0})"
                tail -12 "$out" | sed 's/^/    /'; failed=1
            fi ;;
        refuse:*)
            if [ $rc -ne 0 ] && grep -Eq "${expect#refuse:}" "$out"; then
                echo "interop $name: ok (refused: $(grep -E -m1 "${expect#refuse:}" "$out"))"
            else
                echo "interop $name: FAILED (expected a refusal matching '${expect#refuse:}', exit $rc)"
                tail -10 "$out" | sed 's/^/    /'
                failed=1
            fi ;;
    esac
}

# The core path (issue 5): tls-crypt-v2 with early negotiation, the two AES-GCM ciphers.
run_case aes-256-gcm ok AES-256-GCM server v2 $CLIENT_CIPHERS
run_case aes-128-gcm ok AES-128-GCM server v2 $CLIENT_CIPHERS
# remote-cert-tls server: a server certificate without EKU serverAuth is refused.
run_case no-server-eku 'refuse:CertificateRejected' AES-256-GCM badserver v2 $CLIENT_CIPHERS
# OpenVPN's own certificate checks: verify-x509-name (right and wrong), peer-fingerprint without a CA.
run_case x509-name ok AES-256-GCM server v2 $CLIENT_CIPHERS -- 'verify-x509-name "oxvpn interop server" name'
run_case x509-name-wrong 'refuse:CertificateRejected' AES-256-GCM server v2 $CLIENT_CIPHERS -- 'verify-x509-name oxvpn-other name'
FP=$(openssl x509 -in "$work/pki/server.crt" -noout -fingerprint -sha256 | cut -d= -f2)
NO_CA=1 run_case peer-fingerprint ok AES-256-GCM server v2 $CLIENT_CIPHERS -- "peer-fingerprint $FP"
# crl-verify (issue 13): a server certificate the CA's CRL revokes is refused with a line naming the
# revocation (version 2 and version 1 CRLs); the good server with the same CRL, and the revoked one with a
# CRL revoking another certificate, connect.
CRL=$'<crl-verify>\n'"$(cat "$work/pki/crl.pem")"$'\n</crl-verify>'
CRL_V1=$'<crl-verify>\n'"$(cat "$work/pki/crl-v1.pem")"$'\n</crl-verify>'
CRL_OTHER=$'<crl-verify>\n'"$(cat "$work/pki/crl-other.pem")"$'\n</crl-verify>'
run_case crl-revoked 'refuse:server certificate revoked \(crl-verify\)' AES-256-GCM revoked v2 $CLIENT_CIPHERS -- "$CRL"
run_case crl-v1-revoked 'refuse:server certificate revoked \(crl-verify\)' AES-256-GCM revoked v2 $CLIENT_CIPHERS -- "$CRL_V1"
run_case crl-good ok AES-256-GCM server v2 $CLIENT_CIPHERS -- "$CRL"
run_case crl-other ok AES-256-GCM revoked v2 $CLIENT_CIPHERS -- "$CRL_OTHER"
# Key types: an RSA-4096 server certificate, RSA-4096 / P-384 / Ed25519 client keys.
run_case rsa4096-server ok AES-256-GCM server-rsa v2 $CLIENT_CIPHERS
CLIENT_CERT=client-rsa run_case rsa4096-client ok AES-256-GCM server v2 $CLIENT_CIPHERS
CLIENT_CERT=client-p384 run_case p384-client ok AES-256-GCM server v2 $CLIENT_CIPHERS
CLIENT_CERT=client-ed25519 run_case ed25519-client ok AES-256-GCM server v2 $CLIENT_CIPHERS
# Other protections, ciphers and TLS versions the engine already drives.
run_case chacha20-poly1305 ok CHACHA20-POLY1305 server v2 $CLIENT_CIPHERS
run_case tls-crypt ok AES-256-GCM server crypt $CLIENT_CIPHERS
run_case tls-auth-sha256 ok AES-256-GCM server auth $CLIENT_CIPHERS
run_case plain-tls ok AES-256-GCM server none $CLIENT_CIPHERS
# Topologies: net30 (the ifconfig peer answers nothing: the server's address is the host route it pushes),
# net30 with client-to-client (the tunnel network is pushed), and --target picking the address by hand.
run_case net30 ok AES-256-GCM server v2 $CLIENT_CIPHERS "topology net30"
run_case net30-c2c ok AES-256-GCM server v2 $CLIENT_CIPHERS "topology net30" "client-to-client"
PING_ARGS="--count 3 --timeout 20 --target 10.8.0.1" run_case target ok AES-256-GCM server v2 $CLIENT_CIPHERS "topology p2p"
run_case tls12-server ok AES-256-GCM server v2 $CLIENT_CIPHERS "tls-version-max 1.2"
run_case aes-256-cbc ok AES-256-CBC server v2 AES-256-GCM:AES-256-CBC
run_case user-pass ok AES-256-GCM server v2 $CLIENT_CIPHERS "${VERIFY[@]}" -- "$USERPASS"
# Compression framing pushed by the server (oxvpn never compresses): stub-v2 and comp-lzo no.
run_case compress-stub-v2 ok AES-256-GCM server v2 $CLIENT_CIPHERS "compress stub-v2" 'push "compress stub-v2"'
run_case comp-lzo-no ok AES-256-GCM server v2 $CLIENT_CIPHERS "comp-lzo no" 'push "comp-lzo no"'
run_case compress-lz4-refused 'refuse:CompressionRequired' AES-256-GCM server v2 $CLIENT_CIPHERS "allow-compression yes" "compress lz4-v2" 'push "compress lz4-v2"'
# IPv6 inside the tunnel: ifconfig-ipv6 pushed, ICMPv6 echo to the server's tunnel address.
PING_ARGS="--count 3 --timeout 20 --ipv6" run_case ipv6-in-tunnel ok AES-256-GCM server v2 $CLIENT_CIPHERS "server-ipv6 fd00:8::/64"
# IPv6 outer transport (udp6, tcp6).
CLIENT_REMOTE=$SRV_ADDR6 run_case udp6 ok AES-256-GCM server v2 $CLIENT_CIPHERS "proto udp6" "local $SRV_ADDR6" -- "proto udp6"
CLIENT_REMOTE=$SRV_ADDR6 run_case tcp6 ok AES-256-GCM server v2 $CLIENT_CIPHERS "proto tcp6-server" "local $SRV_ADDR6" -- "proto tcp6"
# TCP transport (2-byte framing): tls-crypt-v2 and tls-auth.
run_case tcp-tls-crypt-v2 ok AES-256-GCM server v2 $CLIENT_CIPHERS "proto tcp4-server" -- "proto tcp"
run_case tcp-tls-auth ok AES-128-GCM server auth $CLIENT_CIPHERS "proto tcp4-server" -- "proto tcp"
# A lossy, duplicating, reordering link (15 %, simulated inside ovpn-ping): handshake and tunnel still work.
PING_ARGS="--count 20 --interval 0.3 --timeout 55 --impair 15" run_case impaired-15pct ok AES-256-GCM server v2 $CLIENT_CIPHERS
# Renegotiation under continuous traffic (one echo every 0.2 s for 16 s): server- and client-initiated.
PING_ARGS="--count 80 --interval 0.2 --timeout 40" run_case reneg-server rekey AES-256-GCM server v2 $CLIENT_CIPHERS "reneg-sec 6"
PING_ARGS="--count 80 --interval 0.2 --timeout 40" run_case reneg-client rekey AES-256-GCM server v2 $CLIENT_CIPHERS -- "reneg-sec 6"
PING_ARGS="--count 80 --interval 0.2 --timeout 40" run_case reneg-pkts rekey AES-256-GCM server v2 $CLIENT_CIPHERS -- "reneg-pkts 60"
# The server restarts under a running client: its explicit-exit-notify RESTART (or else ping-restart) makes
# the engine reconnect by itself, and the echoes come back on the new session.
server_restart_case() {
    local name=server-restart client out rc
    [[ $name =~ ${INTEROP_ONLY:-.} ]] || return 0
    start_server $name $SRV_ADDR AES-256-GCM server v2 "explicit-exit-notify 1" || { echo "interop $name: FAILED (server did not start)"; failed=1; return; }
    client=$(scripts/interop/client.sh "$work/pki" "$work" $name $SRV_ADDR $CLIENT_CIPHERS v2)
    out=$work/$name.ping.log
    timeout 90 ip netns exec $NS_CLI "$ping_bin" "$client" --count 40 --interval 1 --timeout 75 >"$out" 2>&1 &
    local ping_pid=$!
    for _ in $(seq 100); do grep -q "^reply" "$out" 2>/dev/null && break; sleep 0.1; done
    sleep 2
    stop_server
    sleep 3
    start_server $name-2 $SRV_ADDR AES-256-GCM server v2 || { echo "interop $name: FAILED (restart)"; failed=1; }
    wait $ping_pid
    rc=$?
    stop_server
    if [ $rc -eq 0 ] && sed -n '/^reconnect: /,$p' "$out" | grep -q "^reply"; then
        echo "interop $name: ok ($(grep -m1 '^reconnect: ' "$out"), then $(sed -n '/^reconnect: /,$p' "$out" | grep -c '^reply') replies; $(grep '^rtt summary' "$out"))"
    else
        echo "interop $name: FAILED (exit $rc)"; tail -15 "$out" | sed 's/^/    /'; failed=1
    fi
}
server_restart_case
# auth-gen-token: the password is accepted once, so the renegotiations must authenticate with the token.
rm -f "$work/oxv-check-user-once.done"
VERIFY_ONCE=("script-security 2" "auth-user-pass-verify $root/scripts/interop/check-user-once.sh via-file" "auth-gen-token" "hand-window 3" "tmp-dir $work/tmp")
mkdir -p "$work/tmp"
PING_ARGS="--count 70 --interval 0.2 --timeout 40" run_case auth-token-reneg rekey AES-256-GCM server v2 $CLIENT_CIPHERS "${VERIFY_ONCE[@]}" "reneg-sec 6" -- "$USERPASS"
run_case user-pass-wrong 'refuse:AuthFailed' AES-256-GCM server v2 $CLIENT_CIPHERS "${VERIFY[@]}" -- "$BADPASS"

if [ $failed -eq 0 ]; then echo "interop: ok"; else echo "interop: FAILED"; exit 1; fi
