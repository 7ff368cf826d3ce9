#!/usr/bin/env bash
# The server role (issue 15) against real clients, on the namespaced network of scripts/server-lab.sh.
#
#   SERVER=image   (default) build/oxvpn.elf in QEMU as the server: one server, UDP and TCP listeners on
#                  192.0.2.1:1194, tunnel 10.77.0.0/24; a second image with `max-clients 2` on 192.0.2.2.
#   SERVER=openvpn the reference: Debian's openvpn 2.6 in namespace $SL-srv. 2.6 has one transport per
#                  process, so a UDP server (tunnel 10.77.0.0/24) and a TCP server (10.78.0.0/24) both on
#                  192.0.2.1:1194, and a third (max-clients 2, 10.79.0.0/24) on 192.0.2.2; NAT with nft.
# Server configs: `ovpn-keys server-config` (tls-crypt-v2, topology subnet, keepalive 10 60,
# explicit-exit-notify, crl-verify) plus client-to-client and a pushed host route to the inet host.
#
# Cases (one network, built once; `ok - ...` / `not ok - ...`, a tally, non-zero exit on a failure):
#  1 CLIENTS (20) Debian openvpn clients, half UDP half TCP, tls-crypt-v2 with per-client keys: all connect;
#    each pings the server's tunnel address and another client (client-to-client); one fetches a page from
#    the inet host through the tunnel, which sees the server's public address (NAT)
#  2 build/ovpn-ping as a client pings the server
#  3 a client restarts and gets the same tunnel address
#  4 float: a UDP client behind scripts/relay/relay.py; the relay restarts on a new source port mid-session
#    and pings go on
#  5 max-clients 2: the third client gets no tunnel, the server log names the reason
#  6 refusals named in the server log: revoked certificate (CRL), tls-crypt-v2 key wrapped by another
#    server key, certificate from another CA
#  7 scripts/server-probe.py: a third packet echoing the right cookie creates state, a wrong one is refused;
#    10,000 spoofed (validly wrapped) resets from random ports create no state; a real client still connects
#  8 iperf3 through a client to the inet host; a client with reneg-sec 10 under iperf3 load keeps every ping
#  9 remote worker (SL_PRIVATE=1, the default): the main server has a private network 192.168.77.0/24 (image:
#    a second NIC and --private-ipv4=192.168.77.1/24; openvpn: a veth, Linux routes) and pushes a route to
#    it; c1 pings the LAN host 192.168.77.10 and fetches a page from it, the LAN host sees c1's tunnel
#    address (routed, no NAT) and pings c1's tunnel address back (its route to 10.77.0.0/24 is the server)
#
# Environment: SERVER, CLIENTS, CONNECT_TIMEOUT (60), KEEP_WORK=1 (keep logs), MACHINE/ACCEL (image mode),
# SERVER_TEST_TIMEOUT (600), SL_PRIVATE (1; 0 leaves out the private network and case 9). The image-mode
# log patterns are the IMAGE_* variables below.
set -u
cd "$(dirname "$0")/.."
SERVER=${SERVER:-image}
CLIENTS=${CLIENTS:-20}
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-60}
SL=oxs-$$
SL_PRIVATE=${SL_PRIVATE:-1}
# shellcheck source=scripts/server-lab.sh
source scripts/server-lab.sh

READY="Initialization Sequence Completed"
# What the server logs for each refusal. openvpn: what 2.6.14 logs at verb 3. image: to be settled by the
# server's implementation; adjust here.
if [ "$SERVER" = openvpn ]; then
    LOG_REVOKED=${LOG_REVOKED:-"VERIFY ERROR.*certificate revoked"}
    LOG_BAD_WKC=${LOG_BAD_WKC:-"tls-crypt-v2.*(unwrap|authentication failed|can not)|client key authentication error"}
    LOG_WRONG_CA=${LOG_WRONG_CA:-"VERIFY ERROR.*unable to get local issuer certificate"}
    LOG_MAX_CLIENTS=${LOG_MAX_CLIENTS:-"would exceed maximum number of clients"}
    # No state for a peer: the stateful path logs this once per new peer.
    LOG_NEW_PEER=${LOG_NEW_PEER:-"Initial packet from \[AF_INET\]$SL_PROBE:"}
else
    LOG_REVOKED=${IMAGE_LOG_REVOKED:-"client certificate revoked \(crl-verify\)"}
    LOG_BAD_WKC=${IMAGE_LOG_BAD_WKC:-"tls-crypt-v2 client key authentication failed"}
    LOG_WRONG_CA=${IMAGE_LOG_WRONG_CA:-"client certificate rejected: UnknownIssuer"}
    LOG_MAX_CLIENTS=${IMAGE_LOG_MAX_CLIENTS:-"refused: max-clients 2 reached"}
    LOG_NEW_PEER=${IMAGE_LOG_NEW_PEER:-"$SL_PROBE:[0-9]+.*(new|connect)"}
fi
# Image only: the server's periodic status line (`status-interval`): sessions created and datagrams refused
# by the stateless handshake.
IMAGE_STATUS="status: clients="

pass=0 fails=0 skips=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }
skip() { echo "skip - $*"; skips=$((skips + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }

case $SERVER in openvpn|image) ;; *) echo "test-server: SERVER must be openvpn or image"; exit 2 ;; esac
for tool in openvpn busybox python3 iperf3 qemu-system-x86_64; do
    command -v $tool >/dev/null || { echo "not ok - missing $tool: run scripts/setup.sh"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "not ok - needs root (network namespaces)"; exit 1; }
[ -x build/ovpn-keys ] && [ -x build/ovpn-ping ] && [ -x build/config-disk ] \
    || { echo "not ok - run make tools"; exit 1; }
[ "$SERVER" = openvpn ] || [ -f build/oxvpn.elf ] || { echo "not ok - run make image"; exit 1; }

work=$(mktemp -d /tmp/oxs-test.XXXXXX)
sl_init "$work"
cleanup() {
    touch "$work/.done"
    sl_down
    if [ -n "${KEEP_WORK:-}" ] || [ "$fails" -gt 0 ]; then echo "test-server: logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started=$(date +%s)
# The watchdog's sleep is in sl_pids itself (killing only its subshell would leave the sleep holding stdout).
sleep "${SERVER_TEST_TIMEOUT:-600}" &
sl_pids+=($!)
( wait_pid=$!; while kill -0 "$wait_pid" 2>/dev/null; do sleep 1; done
  kill -0 $$ 2>/dev/null && [ ! -e "$work/.done" ] && echo "not ok - over ${SERVER_TEST_TIMEOUT:-600}s" && kill -TERM $$ ) 2>/dev/null &
sl_pids+=($!)
L=$work/logs

sl_up >"$L/setup.log" 2>&1 || { cat "$L/setup.log"; echo "not ok - network setup"; exit 1; }
sl_pki || { cat "$L/pki.log"; echo "not ok - ovpn-keys pki"; exit 1; }

# --- keys for the refusal cases, made before the server reads its CRL ----------------------------------
P_RVK=$(sl_profile rvk udp $SL_SRV_PUB) && SL_KEYS pki revoke rvk --pki "$work/pki" >>"$L/pki.log" 2>&1
P_WKC=$(sl_profile wkc udp $SL_SRV_PUB)
SL_KEYS genkey tls-crypt-v2-client --server-key "$work/pki-other/tc-v2-server.key" "$work/wkc-other.key" >>"$L/pki.log" 2>&1
sl_swap_block "$P_WKC" tls-crypt-v2 "$work/wkc-other.key"
P_WCA=$(cd "$work" && SL_KEYS profile wca --pki pki-other --remote $SL_SRV_PUB $SL_PORT udp -o wca.ovpn >>"$L/pki.log" 2>&1 && echo "$work/wca.ovpn")
SL_KEYS genkey tls-crypt-v2-client --server-key "$work/pki/tc-v2-server.key" "$work/wca-tc.key" >>"$L/pki.log" 2>&1
sl_swap_block "$P_WCA" tls-crypt-v2 "$work/wca-tc.key"
sl_swap_block "$P_WCA" ca "$work/pki/ca.crt"
[ -s "$P_RVK" ] && [ -s "$P_WKC" ] && [ -s "$P_WCA" ] || { cat "$L/pki.log"; echo "not ok - refusal profiles"; exit 1; }
# Image only: the two oxvpn extensions. `pw` has a password in <auth-user-pass-db> (others need none:
# auth-user-pass-optional); `pwbad` sends a wrong one; `rk`'s tls-crypt-v2 client key is on
# <tls-crypt-v2-revoked> (the SHA-256 of its WKc, the bytes after Kc in the key's body).
EXTENSIONS=()
if [ "$SERVER" = image ]; then
    printf 'pw\nopen sesame\n' >"$work/pw.pass"; printf 'pw\nwrong\n' >"$work/pwbad.pass"
    P_PW=$(sl_profile pw udp $SL_SRV_PUB "auth-user-pass $work/pw.pass")
    P_PWBAD=$(sl_profile pwbad udp $SL_SRV_PUB "auth-user-pass $work/pwbad.pass")
    P_RK=$(sl_profile rk udp $SL_SRV_PUB)
    user_line=$(python3 -c 'import base64, hashlib, os
salt = os.urandom(16)
key = hashlib.pbkdf2_hmac("sha256", b"open sesame", salt, 10000)
print("pw pbkdf2-sha256:10000:%s:%s" % (base64.b64encode(salt).decode(), base64.b64encode(key).decode()))')
    rk_hash=$(python3 - "$P_RK" <<'PY'
import base64, hashlib, re, sys
text = open(sys.argv[1]).read()
block = re.search(r"<tls-crypt-v2>(.*?)</tls-crypt-v2>", text, re.S).group(1)
body = "".join(l for l in block.splitlines() if l and not l.startswith("-----"))
raw = base64.b64decode(body)
print(hashlib.sha256(raw[256:]).hexdigest())
PY
)
    [ -s "$P_PW" ] && [ -s "$P_PWBAD" ] && [ -n "$rk_hash" ] || { cat "$L/pki.log"; echo "not ok - extension profiles"; exit 1; }
    EXTENSIONS=("auth-user-pass-optional" "<auth-user-pass-db>
$user_line
</auth-user-pass-db>" "<tls-crypt-v2-revoked>
$rk_hash
</tls-crypt-v2-revoked>")
fi

# --- the servers ----------------------------------------------------------------------------------------
SRV_LOG=$L/server.log SRV_TCP_LOG=$L/server.log SRV_SMALL_LOG=$L/small.log
# Case 9: the main server pushes the route to its private network.
PUSH_LAN=()
[ "$SL_PRIVATE" = 1 ] && PUSH_LAN=("push \"route $SL_LAN_NET.0 255.255.255.0\"")
if [ "$SERVER" = openvpn ]; then
    TUN_UDP=$SL_NET_UDP.1 TUN_TCP=$SL_NET_TCP.1
    c_udp=$(sl_server_conf server udp $SL_SRV_PUB $SL_NET_UDP "local $SL_SRV_PUB" "${PUSH_LAN[@]}")
    c_tcp=$(sl_server_conf server-tcp tcp $SL_SRV_PUB $SL_NET_TCP "local $SL_SRV_PUB")
    c_small=$(sl_server_conf small udp $SL_SRV2_PUB $SL_NET_SMALL "local $SL_SRV2_PUB" "max-clients 2")
    SRV_TCP_LOG=$L/server-tcp.log
    sl_openvpn_server server "$c_udp" && sl_openvpn_server server-tcp "$c_tcp" && sl_openvpn_server small "$c_small" \
        || { echo "not ok - openvpn servers did not start"; exit 1; }
    if sl_nat; then NAT=1; else NAT=0; fi
else
    TUN_UDP=$SL_NET_UDP.1 TUN_TCP=$SL_NET_UDP.1 NAT=1
    c_main=$(sl_server_conf server udp $SL_SRV_PUB $SL_NET_UDP "$SL_IMAGE_LISTEN" "local $SL_SRV_PUB 1195 udp" "status-interval 2" "${PUSH_LAN[@]}" "${EXTENSIONS[@]}")
    c_small=$(sl_server_conf small udp $SL_SRV2_PUB $SL_NET_SMALL "max-clients 2")
    sl_image_server server 1 "$c_main" $SL_SRV_PUB || { echo "not ok - server config disk"; exit 1; }
    sl_image_server small 2 "$c_small" $SL_SRV2_PUB
    for i in $(seq $((CONNECT_TIMEOUT * 5))); do
        grep -q "$READY" "$SRV_LOG" && break
        if ! kill -0 "$(sl_pid server)" 2>/dev/null; then
            wait "$(sl_pid server)" 2>/dev/null; status=$?
            echo "not ok - server image stopped (QEMU status $status)"; tail -20 "$SRV_LOG"; fails=1; exit 1
        fi
        sleep 0.2
    done
    grep -q "$READY" "$SRV_LOG" || { echo "not ok - server image not ready in ${CONNECT_TIMEOUT}s"; tail -20 "$SRV_LOG"; fails=1; exit 1; }
    sl_wait_log "$SRV_SMALL_LOG" "$READY" 30 || { echo "not ok - max-clients server image not ready"; fails=1; exit 1; }
fi
ok "server up ($SERVER): UDP and TCP on $SL_SRV_PUB:$SL_PORT, max-clients 2 server on $SL_SRV2_PUB$([ "$SL_PRIVATE" = 1 ] && echo ", private network $SL_LAN_NET.0/24")"
sl_inet_services || { echo "not ok - inet host services"; exit 1; }
echo "Hello from the inet host." > "$work/www/hello.txt"
if [ "$SL_PRIVATE" = 1 ]; then
    sl_lan_services || { echo "not ok - LAN host services"; exit 1; }
    echo "Hello from the LAN host." > "$work/www-lan/hello.txt"
fi

# --- 1. CLIENTS clients, half UDP, half TCP -------------------------------------------------------------
half=$(( (CLIENTS + 1) / 2 ))
proto_of() { [ "$1" -le "$half" ] && echo udp || echo tcp; }
tun_of() { [ "$(proto_of "$1")" = udp ] && echo "$TUN_UDP" || echo "$TUN_TCP"; }
for i in $(seq "$CLIENTS"); do
    sl_host c$i 192.0.2.$((10 + i)) >>"$L/setup.log" 2>&1 || { echo "not ok - client namespace c$i"; exit 1; }
    sl_profile c$i "$(proto_of $i)" $SL_SRV_PUB >/dev/null || { echo "not ok - profile c$i"; exit 1; }
done
t0=$(date +%s.%N)
for i in $(seq "$CLIENTS"); do sl_client c$i "$work/c$i.ovpn"; done
deadline=$(( $(date +%s) + CONNECT_TIMEOUT ))
while :; do
    up=$(grep -l "$READY" "$L"/c[0-9]*.log 2>/dev/null | wc -l)
    [ "$up" -ge "$CLIENTS" ] || [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.3
done
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ "$up" -ge "$CLIENTS" ]; then
    ok "1: $CLIENTS openvpn clients ($half UDP, $((CLIENTS - half)) TCP, tls-crypt-v2, own keys) connected in $secs s"
else
    notok "1: $up/$CLIENTS clients connected in ${CONNECT_TIMEOUT}s (missing: $(for i in $(seq "$CLIENTS"); do grep -q "$READY" "$L/c$i.log" || printf 'c%s ' $i; done))"
fi
# Each client pings the server and its peer: the next client of the same transport (the openvpn reference
# runs UDP and TCP in two processes with two tunnel networks).
declare -A addr
for i in $(seq "$CLIENTS"); do addr[$i]=$(sl_tun_addr c$i); done
peer_of() { local i=$1; if [ "$(proto_of $i)" = udp ]; then echo $(( i % half + 1 )); else
    echo $(( (i - half) % (CLIENTS - half) + half + 1 )); fi; }
pingers=()
for i in $(seq "$CLIENTS"); do
    ( sl_ping "$SL-c$i" "$(tun_of $i)" && echo srv >> "$L/ping-c$i"
      p=$(peer_of $i); [ -n "${addr[$p]}" ] && sl_ping "$SL-c$i" "${addr[$p]}" && echo peer >> "$L/ping-c$i" ) &
    pingers+=($!)
done
for pid in "${pingers[@]}"; do wait "$pid"; done
nsrv=0 npeer=0 bad=""
for i in $(seq "$CLIENTS"); do
    grep -q srv "$L/ping-c$i" 2>/dev/null && nsrv=$((nsrv + 1)) || bad+="c$i->srv "
    grep -q peer "$L/ping-c$i" 2>/dev/null && npeer=$((npeer + 1)) || bad+="c$i->c$(peer_of $i) "
done
[ "$nsrv" = "$CLIENTS" ] && ok "1: every client pings the server's tunnel address ($TUN_UDP/$TUN_TCP)" \
    || notok "1: $nsrv/$CLIENTS clients ping the server ($bad)"
[ "$npeer" = "$CLIENTS" ] && ok "1: every client pings another client's tunnel address (client-to-client)" \
    || notok "1: $npeer/$CLIENTS clients ping their peer client ($bad)"
got=$(timeout 20 ip netns exec "$SL-c1" curl -s --max-time 15 "http://$SL_INET:8080/hello.txt")
if [ "$got" = "Hello from the inet host." ]; then
    src=$(grep "GET /hello.txt" "$L/http.log" | tail -1 | awk '{ print $1 }')
    if [ "$NAT" = 1 ]; then
        [ "$src" = "$SL_SRV_PUB" ] && ok "1: c1 fetches a page from the inet host $SL_INET through the tunnel; it sees $src (NAT)" \
            || notok "1: the inet host saw $src, not the server's $SL_SRV_PUB (NAT)"
    else
        ok "1: c1 fetches a page from the inet host through the tunnel (routed: no nft/iptables for NAT, source $src)"
        skip "1: NAT not checked (no nft or iptables in the openvpn reference)"
    fi
else
    notok "1: c1 cannot fetch a page from the inet host $SL_INET through the tunnel"
fi

# --- 2. ovpn-ping ---------------------------------------------------------------------------------------
sl_host op 192.0.2.100 >>"$L/setup.log" 2>&1
p_op=$(sl_profile op udp $SL_SRV_PUB)
OP_PORT=$SL_PORT
if [ "$SERVER" = image ]; then
    # The image's second UDP listener (`local ADDR 1195 udp`): ovpn-ping connects there.
    OP_PORT=1195
    sed -i "s/^remote $SL_SRV_PUB $SL_PORT udp/remote $SL_SRV_PUB $OP_PORT udp/" "$p_op"
fi
if timeout 60 ip netns exec "$SL-op" build/ovpn-ping "$p_op" --count 3 --timeout 40 >"$L/ovpn-ping.log" 2>&1; then
    ok "2: build/ovpn-ping connects to port $OP_PORT and pings the server ($(grep -oE '[0-9]+/[0-9]+ replies|[0-9]+ replies' "$L/ovpn-ping.log" | tail -1))"
else
    notok "2: build/ovpn-ping (exit $?): $(tail -2 "$L/ovpn-ping.log" | tr '\n' ' ')"
fi

# --- 3. restart, same address -------------------------------------------------------------------------
before=${addr[1]}
sl_stop c1
sleep 1
sl_client c1 "$work/c1.ovpn"
if sl_wait_log "$L/c1.log" "$READY" "$CONNECT_TIMEOUT"; then
    after=$(sl_tun_addr c1)
    [ -n "$before" ] && [ "$before" = "$after" ] && ok "3: c1 restarted and got its address $after back" \
        || notok "3: c1 had $before, got $after after a restart"
else
    notok "3: c1 did not reconnect after a restart"
fi

# --- 4. float: the source port changes mid-session ----------------------------------------------------------
FL_IP=192.0.2.101
sl_host fl $FL_IP >>"$L/setup.log" 2>&1
p_fl=$(sl_profile fl udp $FL_IP)
sed -i "s/^remote $FL_IP $SL_PORT udp/remote $FL_IP 11940 udp/" "$p_fl"
# The relay's upstream socket: its UDP socket other than the one the client talks to.
relay_port() { ip netns exec "$SL-fl" ss -Hunap 2>/dev/null | awk '/python/ { n = split($4, a, ":"); if (a[n] != 11940) { print a[n]; exit } }'; }
sl_bg relay ip netns exec "$SL-fl" python3 scripts/relay/relay.py --listen $FL_IP:11940 --upstream $SL_SRV_PUB:$SL_PORT
sleep 0.5
sl_client fl "$p_fl"
if sl_wait_log "$L/fl.log" "$READY" "$CONNECT_TIMEOUT" && sl_ping "$SL-fl" "$TUN_UDP"; then
    port1=$(relay_port)
    ( timeout 30 ip netns exec "$SL-fl" busybox ping -c 40 -i 0.25 -W 2 "$TUN_UDP" > "$L/float-ping.log" 2>&1 ) &
    fping=$!
    sleep 2
    sl_stop relay
    sl_bg relay2 ip netns exec "$SL-fl" python3 scripts/relay/relay.py --listen $FL_IP:11940 --upstream $SL_SRV_PUB:$SL_PORT
    sleep 1
    wait $fping
    port2=$(relay_port)
    rx=$(grep -oE "[0-9]+ packets received" "$L/float-ping.log" | cut -d' ' -f1)
    late=$(grep -oE "seq=(2[0-9]|3[0-9])" "$L/float-ping.log" | wc -l)
    if [ -n "$port1" ] && [ -n "$port2" ] && [ "$port1" != "$port2" ] && [ "$late" -ge 15 ] && sl_ping "$SL-fl" "$TUN_UDP"; then
        ok "4: float: the client's source port changed $port1 -> $port2 mid-session, pings went on ($rx/40, $late of the last 20)"
    else
        notok "4: float: ports $port1 -> $port2, $rx/40 replies, $late of the last 20"
    fi
else
    notok "4: float: the client behind the relay did not connect"
fi
sl_stop fl; sl_stop relay2

# --- 5. max-clients 2 -----------------------------------------------------------------------------------
for i in 1 2 3; do
    sl_host m$i 192.0.2.$((110 + i)) >>"$L/setup.log" 2>&1
    sl_profile m$i udp $SL_SRV2_PUB >/dev/null
done
sl_client m1 "$work/m1.ovpn"; sl_client m2 "$work/m2.ovpn"
if sl_wait_log "$L/m1.log" "$READY" "$CONNECT_TIMEOUT" && sl_wait_log "$L/m2.log" "$READY" "$CONNECT_TIMEOUT"; then
    sl_client m3 "$work/m3.ovpn"
    if ! sl_wait_log "$L/m3.log" "$READY" 15 && grep -qE "$LOG_MAX_CLIENTS" "$SRV_SMALL_LOG"; then
        ok "5: max-clients 2: two clients in, the third gets no tunnel in 15 s; server log: $(grep -ohE "$LOG_MAX_CLIENTS" "$SRV_SMALL_LOG" | head -1)"
    else
        notok "5: max-clients 2: third client connected or no '$LOG_MAX_CLIENTS' in the server log"
    fi
else
    notok "5: max-clients 2: the first two clients did not connect"
fi
sl_stop m1; sl_stop m2; sl_stop m3

# --- 6. refusals, each named in the server log -------------------------------------------------------------
n=120; for b in rvk wkc wca; do n=$((n + 1)); sl_host $b 192.0.2.$n >>"$L/setup.log" 2>&1; done
for b in rvk wkc wca; do sl_client $b "$work/$b.ovpn"; done
refused() { # NAME PATTERN WHAT
    if sl_wait_log "$SRV_LOG" "$2" 20 && ! grep -q "$READY" "$L/$1.log"; then
        ok "6: $3 refused; server log: $(grep -ohE "$2" "$SRV_LOG" | head -1)"
    else
        notok "6: $3: no '$2' in the server log, or the client connected"
    fi
}
refused rvk "$LOG_REVOKED" "revoked client certificate (crl-verify)"
refused wkc "$LOG_BAD_WKC" "tls-crypt-v2 client key wrapped by another server key"
refused wca "$LOG_WRONG_CA" "client certificate from another CA"
for b in rvk wkc wca; do sl_stop $b; done
if [ "$SERVER" = image ]; then
    n=130; for b in pw pwbad rk; do n=$((n + 1)); sl_host $b 192.0.2.$n >>"$L/setup.log" 2>&1; done
    for b in pw pwbad rk; do sl_client $b "$work/$b.ovpn"; done
    sl_wait_log "$L/pw.log" "$READY" "$CONNECT_TIMEOUT" && sl_ping "$SL-pw" "$TUN_UDP" \
        && ok "6: <auth-user-pass-db>: the right password connects and pings the server" \
        || notok "6: <auth-user-pass-db>: the client with the right password did not connect"
    refused pwbad "Auth Username/Password verification failed" "a wrong password (<auth-user-pass-db>)"
    refused rk "tls-crypt-v2 client key refused: tls-crypt-v2 client key is revoked" "a tls-crypt-v2 client key on <tls-crypt-v2-revoked>"
    for b in pw pwbad rk; do sl_stop $b; done
fi

# --- 7. cookies and spoofed resets ---------------------------------------------------------------------------
p_probe=$(sl_profile probe udp $SL_SRV_PUB)
probe() { timeout 60 ip netns exec "$SL_PROBE_NS" python3 scripts/server-probe.py "$@" --server $SL_SRV_PUB:$SL_PORT --key "$p_probe"; }
if ! python3 -c 'import cryptography' 2>/dev/null; then
    skip "7: scripts/server-probe.py needs python3-cryptography (AES-256-CTR): cookie and flood checks not run"
else
    probe cookie --echo wrong >"$L/probe-wrong.log" 2>&1; st=$?
    [ "$st" = 3 ] && ok "7: a third packet (P_CONTROL_WKC_V1 + ClientHello) echoing a wrong session id gets no answer in 3 s" \
        || notok "7: wrong cookie: probe exit $st: $(tail -1 "$L/probe-wrong.log")"
    probe cookie --echo right >"$L/probe-right.log" 2>&1; st=$?
    [ "$st" = 0 ] && ok "7: control: the same third packet with the right session id is answered" \
        || notok "7: right cookie: probe exit $st: $(tail -1 "$L/probe-right.log")"
    before=$(grep -cE "$LOG_NEW_PEER" "$SRV_LOG")
    sleep 2.5   # a status line after the cookie probes above (status-interval 2)
    status_before=$(grep -F "$IMAGE_STATUS" "$SRV_LOG" | tail -1)
    t0=$(date +%s.%N)
    probe flood --count 10000 >"$L/probe-flood.log" 2>&1
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    sleep 1
    after=$(grep -cE "$LOG_NEW_PEER" "$SRV_LOG")
    [ "$after" = "$before" ] && ok "7: 10,000 spoofed resets in $secs s create no state (no new '$LOG_NEW_PEER' lines; $(tail -1 "$L/probe-flood.log" | cut -d: -f2-))" \
        || notok "7: spoofed resets created state: $((after - before)) new-peer lines"
    if [ "$SERVER" = image ]; then
        # The status line two intervals after the flood: no session was created for the probe's resets, and
        # the refusals grew by the resets the rate limit (connect-freq-initial) did not answer (under TCG the
        # NIC drops part of a 12,000 packets/s flood before the server sees it: at least 1,000 must arrive).
        sleep 5
        status_after=$(grep -F "$IMAGE_STATUS" "$SRV_LOG" | tail -1)
        field() { echo "$1" | grep -oE "$2=[0-9]+" | cut -d= -f2; }
        s0=$(field "$status_before" sessions_created) s1=$(field "$status_after" sessions_created)
        r0=$(field "$status_before" refused) r1=$(field "$status_after" refused)
        if [ -n "$s1" ] && [ "$s0" = "$s1" ] && [ $((r1 - r0)) -ge 1000 ]; then
            ok "7: status line: sessions_created stayed $s1, refused grew by $((r1 - r0)) (rate limit), $(field "$status_after" resets_answered) resets answered in all"
        else
            notok "7: status line: sessions_created $s0 -> $s1, refused $r0 -> $r1 (before: '$status_before', after: '$status_after')"
        fi
    fi
    sl_stop c2
    sl_client c2 "$work/c2.ovpn"
    sl_wait_log "$L/c2.log" "$READY" "$CONNECT_TIMEOUT" && sl_ping "$SL-c2" "$TUN_UDP" \
        && ok "7: after the flood a real client reconnects and pings the server" \
        || notok "7: after the flood c2 did not reconnect"
fi

# --- 8. iperf3, and renegotiation under load -----------------------------------------------------------------
if timeout 30 ip netns exec "$SL-c3" iperf3 -c $SL_INET -t 5 -J >"$L/iperf.json" 2>"$L/iperf.err"; then
    mbps=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' "$L/iperf.json")
    # Through the tunnel means through the server's NAT: the inet host saw the server's public address.
    if [ "$NAT" = 1 ] && ! grep "Accepted connection" "$L/iperf3.log" | tail -1 | grep -q "from $SL_SRV_PUB,"; then
        notok "8: iperf3 c3 -> inet host did not come from the server's address: $(grep Accepted "$L/iperf3.log" | tail -1)"
    else
        ok "8: iperf3 c3 -> inet host through the tunnel: $mbps Mbit/s (5 s)"
    fi
else
    notok "8: iperf3 through c3: $(tail -1 "$L/iperf.err")"
fi
sl_host rn 192.0.2.102 >>"$L/setup.log" 2>&1
p_rn=$(sl_profile rn udp $SL_SRV_PUB "reneg-sec 10")
sl_client rn "$p_rn"
if sl_wait_log "$L/rn.log" "$READY" "$CONNECT_TIMEOUT"; then
    r0=$(grep -c "soft reset" "$L/rn.log")
    timeout 40 ip netns exec "$SL-rn" iperf3 -c $SL_INET -t 16 -b 20M >"$L/iperf-rn.log" 2>&1 &
    load=$!
    timeout 40 ip netns exec "$SL-rn" busybox ping -c 75 -i 0.2 -W 3 "$TUN_UDP" >"$L/reneg-ping.log" 2>&1
    wait $load
    rx=$(grep -oE "[0-9]+ packets received" "$L/reneg-ping.log" | cut -d' ' -f1)
    renegs=$(( $(grep -c "soft reset" "$L/rn.log") - r0 ))
    [ "${rx:-0}" = 75 ] && [ "$renegs" -ge 1 ] \
        && ok "8: reneg-sec 10 under iperf3 load (20 Mbit/s): $renegs renegotiation(s) in 15 s, 75/75 pings answered" \
        || notok "8: renegotiation under load: ${rx:-0}/75 pings, $renegs renegotiation(s)"
else
    notok "8: the reneg-sec 10 client did not connect"
fi

# --- 9. remote worker: the server's private network ----------------------------------------------------------
if [ "$SL_PRIVATE" = 1 ]; then
    a1=$(sl_tun_addr c1)
    if [ -z "$a1" ]; then
        notok "9: c1 has no tunnel address"
    else
        sl_ping "$SL-c1" $SL_LAN && ok "9: c1 ($a1) pings the LAN host $SL_LAN behind the server (pushed route)" \
            || notok "9: c1 ($a1) cannot ping the LAN host $SL_LAN (c1: $(ip -n "$SL-c1" route get $SL_LAN 2>&1 | head -1))"
        got=$(timeout 20 ip netns exec "$SL-c1" curl -s --max-time 15 "http://$SL_LAN:8080/hello.txt")
        src=$(grep "GET /hello.txt" "$L/http-lan.log" 2>/dev/null | tail -1 | awk '{ print $1 }')
        if [ "$got" = "Hello from the LAN host." ] && [ "$src" = "$a1" ]; then
            ok "9: c1 fetches a page from the LAN host, which sees c1's tunnel address $src (routed, no NAT)"
        elif [ "$got" = "Hello from the LAN host." ]; then
            notok "9: c1 fetches a page from the LAN host, but it saw $src, not c1's tunnel address $a1 (NAT?)"
        else
            notok "9: c1 cannot fetch a page from the LAN host $SL_LAN"
        fi
        sl_ping "$SL_LAN_NS" "$a1" && ok "9: the LAN host pings c1's tunnel address $a1 through the server" \
            || notok "9: the LAN host cannot ping c1's tunnel address $a1"
    fi
fi

echo "test-server ($SERVER): $pass ok, $fails not ok, $skips skipped in $(( $(date +%s) - started )) s"
[ "$fails" -eq 0 ]
